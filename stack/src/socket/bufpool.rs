//! A lock-free pool of byte buffers that carry datagrams between applications and workers, so that the
//! steady state allocates nothing: buffers go round between the pool, the command queues and the
//! sockets' receive queues.

use crossbeam_queue::ArrayQueue;

/// Buffers larger than this are freed instead of pooled (reassembled datagrams can be 64 KiB).
const KEEP_CAPACITY: usize = 4096;

/// The pool. Shared by every thread of a stack.
#[derive(Debug)]
pub struct BufPool {
    free: ArrayQueue<Vec<u8>>,
}

impl BufPool {
    /// A pool that keeps at most `capacity` idle buffers.
    pub fn new(capacity: usize) -> BufPool {
        BufPool { free: ArrayQueue::new(capacity.max(1)) }
    }

    /// An empty buffer (length 0) with room for at least `len` bytes.
    #[inline]
    pub fn get(&self, len: usize) -> Vec<u8> {
        match self.free.pop() {
            Some(mut b) => {
                b.clear();
                b.reserve(len);
                b
            }
            None => Vec::with_capacity(len.max(2048)),
        }
    }

    /// A buffer holding a copy of `data`.
    #[inline]
    pub fn copy_of(&self, data: &[u8]) -> Vec<u8> {
        let mut b = self.get(data.len());
        b.extend_from_slice(data);
        b
    }

    /// Give a buffer back.
    #[inline]
    pub fn put(&self, buf: Vec<u8>) {
        if buf.capacity() <= KEEP_CAPACITY {
            let _ = self.free.push(buf);
        }
    }

    /// Idle buffers in the pool.
    pub fn idle(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused() {
        let pool = BufPool::new(4);
        let b = pool.copy_of(b"hello");
        let ptr = b.as_ptr();
        pool.put(b);
        let again = pool.get(3);
        assert_eq!(again.as_ptr(), ptr);
        assert!(again.is_empty());
    }

    #[test]
    fn huge_buffers_are_not_kept() {
        let pool = BufPool::new(4);
        pool.put(Vec::with_capacity(65536));
        assert_eq!(pool.idle(), 0);
    }
}

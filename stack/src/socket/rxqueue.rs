//! A datagram socket's receive queue: a bounded lock-free queue that also keeps the number of bytes
//! it holds, the Recv-Q that `ss` and `/proc/net/udp` show (in bytes, as Linux reports it). Keeping
//! the count inside the queue means no push or pop can forget it.

use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_queue::ArrayQueue;

/// Something with a size in bytes, for [`RxQueue`].
pub(crate) trait Queued {
    /// The bytes this item stands for.
    fn bytes(&self) -> usize;
}

/// A bounded queue of received items with their byte count.
#[derive(Debug)]
pub(crate) struct RxQueue<T> {
    items: ArrayQueue<T>,
    bytes: AtomicUsize,
}

impl<T: Queued> RxQueue<T> {
    /// An empty queue holding at most `cap` items (at least one).
    pub(crate) fn new(cap: usize) -> RxQueue<T> {
        RxQueue { items: ArrayQueue::new(cap.max(1)), bytes: AtomicUsize::new(0) }
    }

    /// Queue `item`, or hand it back when the queue is full.
    pub(crate) fn push(&self, item: T) -> Result<(), T> {
        let n = item.bytes();
        // Counted before the push, so that a reader that pops at once never takes the count below 0.
        self.bytes.fetch_add(n, Ordering::Relaxed);
        self.items.push(item).inspect_err(|_| {
            self.bytes.fetch_sub(n, Ordering::Relaxed);
        })
    }

    /// The oldest item, if any.
    pub(crate) fn pop(&self) -> Option<T> {
        let item = self.items.pop()?;
        self.bytes.fetch_sub(item.bytes(), Ordering::Relaxed);
        Some(item)
    }

    /// True when nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Bytes queued.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Queued for Vec<u8> {
        fn bytes(&self) -> usize {
            self.len()
        }
    }

    #[test]
    fn counts_the_bytes_of_what_it_holds() {
        let q: RxQueue<Vec<u8>> = RxQueue::new(2);
        q.push(vec![0; 10]).unwrap();
        q.push(vec![0; 20]).unwrap();
        assert_eq!(q.push(vec![0; 5]).unwrap_err().len(), 5, "full: handed back");
        assert_eq!(q.bytes(), 30);
        assert_eq!(q.pop().unwrap().len(), 10);
        assert_eq!(q.bytes(), 20);
        assert_eq!(q.pop().unwrap().len(), 20);
        assert!(q.is_empty() && q.pop().is_none());
        assert_eq!(q.bytes(), 0);
    }
}

//! `RxBatch`: received frames taken off an RX ring, owned until they are recycled into a pool.

use std::sync::Arc;

use super::pool::FramePool;
use super::umem::Umem;

/// One received frame: UMEM address of its first byte and its length.
#[derive(Debug, Clone, Copy)]
struct RxFrame {
    addr: u64,
    len: u32,
}

/// A reusable batch of received frames. It owns the frames it holds (no other place has their
/// addresses), which is what makes handing out `&mut [u8]` sound. Allocates only in `new`.
///
/// Dropping a batch that still holds frames loses them for the pools (the frame accounting shows
/// it); call [`recycle_into`](RxBatch::recycle_into) first.
#[derive(Debug)]
pub struct RxBatch {
    umem: Arc<Umem>,
    frames: Vec<RxFrame>,
}

impl RxBatch {
    /// An empty batch for frames of `umem`, holding at most `capacity` frames.
    pub fn new(umem: &Arc<Umem>, capacity: usize) -> Self {
        RxBatch { umem: Arc::clone(umem), frames: Vec::with_capacity(capacity) }
    }

    /// Most frames it can hold.
    pub fn capacity(&self) -> usize {
        self.frames.capacity()
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether it holds no frame.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Room for more frames.
    pub fn spare(&self) -> usize {
        self.capacity() - self.len()
    }

    /// Frame `i`, or `None` past the end.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let f = self.frames.get(i)?;
        let ptr = self.umem.frame_ptr(f.addr, f.len as usize)?;
        // Safety: the batch owns frame `f` (module invariant), its bounds were checked on `push` (and
        // again by `frame_ptr`), and `&self` keeps it from being recycled while the slice lives.
        Some(unsafe { std::slice::from_raw_parts(ptr.as_ptr(), f.len as usize) })
    }

    /// Frame `i` for in-place changes, or `None` past the end.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut [u8]> {
        let f = self.frames.get(i)?;
        let ptr = self.umem.frame_ptr(f.addr, f.len as usize)?;
        // Safety: as in `get`; `&mut self` makes this the only live slice of the batch, and frames of
        // a batch are distinct chunks, so no other reference to these bytes exists.
        Some(unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), f.len as usize) })
    }

    /// The 8 bytes right in front of frame `i` as a native-endian `u64`: where XDP metadata of that
    /// size lands (the steering program's stage-timing stamp). `None` past the end or when the frame
    /// starts less than 8 bytes into its chunk. Meaningful only when the XDP program wrote it.
    pub fn meta_u64(&self, i: usize) -> Option<u64> {
        let f = self.frames.get(i)?;
        let at = f.addr.checked_sub(8)?;
        if self.umem.chunk_base(at) != self.umem.chunk_base(f.addr) {
            return None;
        }
        let ptr = self.umem.frame_ptr(at, 8)?;
        let mut b = [0u8; 8];
        // Safety: the batch owns the chunk of frame `f` (module invariant), which holds these 8 bytes
        // (same chunk, checked above and by `frame_ptr`); `&self` keeps it from being recycled.
        unsafe { std::ptr::copy_nonoverlapping(ptr.as_ptr(), b.as_mut_ptr(), 8) };
        Some(u64::from_ne_bytes(b))
    }

    /// Frame `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn frame(&self, i: usize) -> &[u8] {
        let len = self.len();
        self.get(i).unwrap_or_else(|| panic!("frame index {i} out of range (batch of {len})"))
    }

    /// Frame `i` for in-place changes.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn frame_mut(&mut self, i: usize) -> &mut [u8] {
        let len = self.len();
        self.get_mut(i).unwrap_or_else(|| panic!("frame index {i} out of range (batch of {len})"))
    }

    /// The frames in receive order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// Return every frame to `pool` and empty the batch. Does nothing (and keeps the frames) if the
    /// pool belongs to another UMEM.
    pub fn recycle_into(&mut self, pool: &mut FramePool) {
        if !pool.belongs_to(&self.umem) {
            debug_assert!(false, "recycling frames into a pool of another UMEM");
            return;
        }
        for f in self.frames.drain(..) {
            pool.free(f.addr);
        }
    }

    pub(crate) fn umem(&self) -> &Arc<Umem> {
        &self.umem
    }

    /// Take ownership of a frame from the RX ring. A descriptor whose bytes do not lie inside one
    /// chunk (never from a correct kernel) is kept with length 0 if its address is inside the UMEM,
    /// so the frame is not lost; returns false if it is malformed.
    pub(crate) fn push(&mut self, addr: u64, len: u32) -> bool {
        debug_assert!(self.spare() > 0, "caller checks spare()");
        if self.spare() == 0 {
            return false;
        }
        if self.umem.frame_ptr(addr, len as usize).is_some() {
            self.frames.push(RxFrame { addr, len });
            true
        } else {
            if self.umem.frame_ptr(addr, 0).is_some() {
                self.frames.push(RxFrame { addr, len: 0 });
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xsk::{new_shared_pools, UmemConfig};

    #[test]
    fn frames_are_addressed_by_descriptor_and_recycled() {
        let umem =
            Umem::new(UmemConfig { frame_size: 2048, frame_count: 4, fill_size: 4, comp_size: 4 }).unwrap();
        let mut pools = new_shared_pools(&umem, 1).unwrap();
        let pool = &mut pools[0];
        let mut batch = RxBatch::new(&umem, 3);
        let a = pool.alloc().unwrap();
        let b = pool.alloc().unwrap();
        assert!(batch.push(a + 256, 60));
        assert!(!batch.push(b + 256, 1800), "crosses the chunk end: kept empty");
        assert_eq!(batch.len(), 2);
        batch.frame_mut(0).copy_from_slice(&[0xab; 60]);
        assert_eq!(batch.frame(0), &[0xab; 60][..]);
        assert_eq!(batch.frame(1).len(), 0);
        assert!(batch.get(2).is_none());
        assert_eq!(batch.iter().count(), 2);
        assert_eq!(pool.free_count(), 2);
        batch.recycle_into(pool);
        assert!(batch.is_empty());
        assert_eq!(pool.free_count(), 4);
        assert_eq!(batch.capacity(), 3);
    }
}

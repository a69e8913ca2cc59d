//! The no-frame-lost check: every frame of a UMEM is in exactly one place, so the places add up to
//! the frame count.

use super::batch::RxBatch;
use super::pool::FramePool;
use super::socket::XskSocket;
use super::umem::Umem;

/// Where the frames of one UMEM are. Take it while the workers are stopped (or while you hold all of
/// their pools, sockets and batches), since the global pool changes under running workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameAccount {
    /// In the pools: every local list, plus each distinct global pool once.
    pub free: u64,
    /// With the kernel on the receive side: fill rings and RX rings (sum of [`InFlight::fill`]).
    ///
    /// [`InFlight::fill`]: super::InFlight::fill
    pub fill: i64,
    /// With the kernel on the transmit side: TX rings and completion rings (sum of
    /// [`InFlight::tx`]).
    ///
    /// [`InFlight::tx`]: super::InFlight::tx
    pub tx: i64,
    /// Held by RX batches.
    pub batches: u64,
}

impl FrameAccount {
    /// Count the frames of `pools`, `sockets` and `batches` (all of one UMEM).
    pub fn of(pools: &[&FramePool], sockets: &[&XskSocket], batches: &[&RxBatch]) -> FrameAccount {
        let mut acc = FrameAccount::default();
        for (i, p) in pools.iter().enumerate() {
            acc.free += p.local_count() as u64;
            let first_with_this_global = pools[..i].iter().all(|q| q.global_id() != p.global_id());
            if first_with_this_global {
                acc.free += p.global_count() as u64;
            }
        }
        for s in sockets {
            let f = s.in_flight();
            acc.fill += f.fill;
            acc.tx += f.tx;
        }
        acc.batches = batches.iter().map(|b| b.len() as u64).sum();
        acc
    }

    /// Frames accounted for.
    pub fn total(&self) -> i64 {
        (self.free as i64) + self.fill + self.tx + (self.batches as i64)
    }

    /// Whether every frame of `umem` is accounted for exactly once.
    pub fn is_balanced(&self, umem: &Umem) -> bool {
        self.total() == i64::from(umem.frame_count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xsk::{new_shared_pools_with, PoolConfig, UmemConfig};

    #[test]
    fn pools_and_batches_add_up_and_a_lost_frame_shows() {
        let umem =
            Umem::new(UmemConfig { frame_size: 2048, frame_count: 40, fill_size: 8, comp_size: 8 }).unwrap();
        let cfg = PoolConfig { batch: 2, high_watermark: 8 };
        let mut pools = new_shared_pools_with(&umem, 3, cfg).unwrap();
        let mut batch = RxBatch::new(&umem, 4);
        let a = pools[1].alloc().unwrap();
        let b = pools[1].alloc().unwrap();
        assert!(batch.push(a + 256, 64));
        let refs: Vec<&FramePool> = pools.iter().collect();
        let acc = FrameAccount::of(&refs, &[], &[&batch]);
        assert_eq!(acc.batches, 1);
        assert_eq!(acc.total(), 39, "frame b is held by nobody");
        assert!(!acc.is_balanced(&umem));
        pools[2].free(b);
        let refs: Vec<&FramePool> = pools.iter().collect();
        let acc = FrameAccount::of(&refs, &[], &[&batch]);
        assert!(acc.is_balanced(&umem), "{acc:?}");
    }
}

//! Free UMEM frames: a local free list per worker plus one global pool shared by all workers.
//!
//! A worker takes and returns frames through its local list (no atomics). When the list runs empty it
//! pulls a batch from the global pool; when it grows above the high watermark it pushes a batch back.
//! That is how frames migrate between workers, which they must when several sockets share a queue:
//! the fill-ring owner feeds frames that arrive on another worker's RX ring, and completions of every
//! socket of a queue come back on the owner's completion ring.

use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use super::error::XskError;
use super::umem::Umem;

/// Batch size and watermark of the frame pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Frames moved between a local list and the global pool at a time.
    pub batch: usize,
    /// A local list longer than this returns a batch to the global pool (at least `batch`).
    pub high_watermark: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig { batch: 64, high_watermark: 512 }
    }
}

/// One worker's view of the free frames of a UMEM. Hands out and takes back frame addresses only
/// through the socket and batch APIs, which keeps every address in exactly one place.
#[derive(Debug)]
pub struct FramePool {
    umem: Arc<Umem>,
    /// Chunk addresses free for this worker; never longer than `high + 1`, so never reallocates.
    local: Vec<u64>,
    global: Arc<ArrayQueue<u64>>,
    batch: usize,
    high: usize,
}

/// Split all frames of `umem` among `n_workers` pools sharing one global pool, with the default
/// [`PoolConfig`]. Possible once per UMEM.
pub fn new_shared_pools(umem: &Arc<Umem>, n_workers: usize) -> Result<Vec<FramePool>, XskError> {
    new_shared_pools_with(umem, n_workers, PoolConfig::default())
}

/// [`new_shared_pools`] with an explicit configuration. Each worker starts with an equal share of
/// the frames (at most `high_watermark`), the rest waits in the global pool.
pub fn new_shared_pools_with(
    umem: &Arc<Umem>,
    n_workers: usize,
    config: PoolConfig,
) -> Result<Vec<FramePool>, XskError> {
    if n_workers == 0 {
        return Err(XskError::InvalidConfig("at least one frame pool is needed".into()));
    }
    if config.batch == 0 || config.high_watermark < config.batch {
        return Err(XskError::InvalidConfig(format!(
            "pool batch {} must be at least 1 and at most high_watermark {}",
            config.batch, config.high_watermark
        )));
    }
    if !umem.take_frames() {
        return Err(XskError::InvalidConfig("the frames of this UMEM were already split into pools".into()));
    }
    let count = umem.frame_count() as usize;
    let frame_size = u64::from(umem.frame_size());
    let global = Arc::new(ArrayQueue::new(count));
    let share = (count / n_workers).min(config.high_watermark);
    let mut addrs = (0..count as u64).map(|i| i * frame_size);
    let pools = (0..n_workers)
        .map(|_| {
            let mut local = Vec::with_capacity(config.high_watermark + 1);
            local.extend(addrs.by_ref().take(share));
            // Hand out lower addresses first (LIFO pop from the end).
            local.reverse();
            FramePool {
                umem: Arc::clone(umem),
                local,
                global: Arc::clone(&global),
                batch: config.batch,
                high: config.high_watermark,
            }
        })
        .collect();
    for addr in addrs {
        // Cannot fail: the queue holds `count` entries and there are `count` addresses.
        let _ = global.push(addr);
    }
    Ok(pools)
}

impl FramePool {
    /// Frames in this worker's local list.
    pub fn local_count(&self) -> usize {
        self.local.len()
    }

    /// Frames in the global pool shared by all workers (changes while other workers run).
    pub fn global_count(&self) -> usize {
        self.global.len()
    }

    /// Local plus global free frames. With several pools, count the global pool once:
    /// [`FrameAccount`](super::FrameAccount) does.
    pub fn free_count(&self) -> usize {
        self.local_count() + self.global_count()
    }

    /// The UMEM these frames belong to.
    pub fn umem(&self) -> &Arc<Umem> {
        &self.umem
    }

    pub(crate) fn belongs_to(&self, umem: &Arc<Umem>) -> bool {
        Arc::ptr_eq(&self.umem, umem)
    }

    /// Identity of the global pool, to count it once among several pools.
    pub(crate) fn global_id(&self) -> *const ArrayQueue<u64> {
        Arc::as_ptr(&self.global)
    }

    /// Take a free frame (its chunk address), pulling a batch from the global pool when the local
    /// list is empty.
    pub(crate) fn alloc(&mut self) -> Option<u64> {
        if self.local.is_empty() {
            self.pull(self.batch);
        }
        self.local.pop()
    }

    /// Give back the frame holding `addr` (any address inside its chunk), pushing a batch to the
    /// global pool when the local list passes the high watermark.
    pub(crate) fn free(&mut self, addr: u64) {
        if addr >= self.umem.len_bytes() as u64 {
            debug_assert!(false, "frame address {addr:#x} outside the UMEM");
            return;
        }
        self.local.push(self.umem.chunk_base(addr));
        if self.local.len() > self.high {
            self.spill(self.batch);
        }
    }

    /// Bring the local list back between empty and the high watermark, and refill an empty one with
    /// a batch from the global pool. The allocating and freeing paths do this on their own; call it
    /// when a worker goes idle so its surplus becomes available to others.
    pub fn rebalance(&mut self) {
        if self.local.len() > self.high {
            self.spill(self.local.len() - self.high);
        } else if self.local.is_empty() {
            self.pull(self.batch);
        }
    }

    /// Return every local frame to the global pool (a worker going away).
    pub fn release_all(&mut self) {
        self.spill(self.local.len());
    }

    fn pull(&mut self, n: usize) {
        let room = self.high - self.local.len().min(self.high);
        for _ in 0..n.min(room) {
            match self.global.pop() {
                Some(addr) => self.local.push(addr),
                None => break,
            }
        }
    }

    /// Move the `n` oldest (least recently freed, so cache-coldest) local frames to the global pool.
    fn spill(&mut self, n: usize) {
        let n = n.min(self.local.len());
        let mut kept = 0;
        for i in 0..n {
            if let Err(addr) = self.global.push(self.local[i]) {
                // Only possible if an address was freed twice: keep it local rather than lose it.
                debug_assert!(false, "global frame pool full: frame {addr:#x} freed twice?");
                self.local[kept] = addr;
                kept += 1;
            }
        }
        self.local.drain(kept..n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xsk::UmemConfig;
    use proptest::prelude::*;

    fn umem(frames: u32) -> Arc<Umem> {
        Umem::new(UmemConfig { frame_size: 2048, frame_count: frames, fill_size: 8, comp_size: 8 }).unwrap()
    }

    fn total_free(pools: &[FramePool]) -> usize {
        pools.iter().map(FramePool::local_count).sum::<usize>() + pools[0].global_count()
    }

    #[test]
    fn frames_are_split_and_each_address_appears_once() {
        let u = umem(100);
        let cfg = PoolConfig { batch: 4, high_watermark: 16 };
        let mut pools = new_shared_pools_with(&u, 3, cfg).unwrap();
        assert_eq!(pools.iter().map(FramePool::local_count).collect::<Vec<_>>(), [16, 16, 16]);
        assert_eq!(pools[0].global_count(), 100 - 48);
        let mut seen = Vec::new();
        for p in &mut pools {
            while let Some(a) = p.alloc() {
                seen.push(a);
            }
        }
        seen.sort_unstable();
        let want: Vec<u64> = (0..100).map(|i| i * 2048).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn frames_are_split_once_per_umem() {
        let u = umem(8);
        assert!(new_shared_pools(&u, 1).is_ok());
        assert!(new_shared_pools(&u, 1).is_err());
        assert!(new_shared_pools(&umem(8), 0).is_err());
        let bad = PoolConfig { batch: 8, high_watermark: 4 };
        assert!(new_shared_pools_with(&umem(8), 1, bad).is_err());
    }

    #[test]
    fn freed_frames_spill_to_the_global_pool_and_migrate() {
        let u = umem(64);
        let cfg = PoolConfig { batch: 4, high_watermark: 8 };
        let mut pools = new_shared_pools_with(&u, 2, cfg).unwrap();
        let (a, b) = pools.split_at_mut(1);
        let (a, b) = (&mut a[0], &mut b[0]);
        // Worker A fills a "fill ring" with everything it can get...
        let mut taken = Vec::new();
        while let Some(f) = a.alloc() {
            taken.push(f);
        }
        assert_eq!(taken.len(), 64 - 8, "A drained the global pool; B keeps its share");
        // ...and the frames arrive at worker B, which frees them.
        for f in taken.drain(..) {
            b.free(f + 256);
            assert!(b.local_count() <= 8);
        }
        assert_eq!(b.local_count() + b.global_count(), 64);
        // A gets them back from the global pool.
        assert!(a.alloc().is_some());
        a.rebalance();
        assert_eq!(total_free(&pools), 63);
    }

    #[test]
    fn free_normalises_to_the_chunk_base() {
        let u = umem(4);
        let mut pools = new_shared_pools_with(&u, 1, PoolConfig { batch: 1, high_watermark: 4 }).unwrap();
        let p = &mut pools[0];
        let f = p.alloc().unwrap();
        p.free(f + 300);
        assert_eq!(p.alloc(), Some(f));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Alloc(usize),
        Free { pool: usize, which: usize },
        Rebalance(usize),
        ReleaseAll(usize),
    }

    proptest! {
        /// Random alloc/free/rebalance across several pools: no frame is created, lost or duplicated,
        /// and allocation fails only when the pool and the global pool are both empty.
        #[test]
        fn frames_are_conserved(
            frames in 1u32..300,
            workers in 1usize..5,
            batch in 1usize..20,
            extra in 0usize..40,
            ops in proptest::collection::vec(
                prop_oneof![
                    (0usize..5).prop_map(Op::Alloc),
                    ((0usize..5), any::<usize>()).prop_map(|(pool, which)| Op::Free { pool, which }),
                    (0usize..5).prop_map(Op::Rebalance),
                    (0usize..5).prop_map(Op::ReleaseAll),
                ],
                0..400,
            ),
        ) {
            let u = umem(frames);
            let cfg = PoolConfig { batch, high_watermark: batch + extra };
            let mut pools = new_shared_pools_with(&u, workers, cfg).unwrap();
            let mut held: Vec<u64> = Vec::new();
            for op in ops {
                match op {
                    Op::Alloc(p) => {
                        let p = &mut pools[p % workers];
                        let was_empty = p.local_count() == 0 && p.global_count() == 0;
                        match p.alloc() {
                            Some(a) => held.push(a),
                            None => prop_assert!(was_empty),
                        }
                    }
                    Op::Free { pool, which } => {
                        if !held.is_empty() {
                            let a = held.swap_remove(which % held.len());
                            pools[pool % workers].free(a + (which % 2048) as u64);
                        }
                    }
                    Op::Rebalance(p) => pools[p % workers].rebalance(),
                    Op::ReleaseAll(p) => pools[p % workers].release_all(),
                }
                for p in &pools {
                    prop_assert!(p.local_count() <= cfg.high_watermark);
                    prop_assert_eq!(p.local.capacity(), cfg.high_watermark + 1, "no reallocation");
                }
                prop_assert_eq!(total_free(&pools) + held.len(), frames as usize);
            }
            // Every address exactly once.
            let mut all = held;
            for p in &mut pools {
                p.release_all();
            }
            while let Some(a) = pools[0].global.pop() {
                all.push(a);
            }
            all.sort_unstable();
            let want: Vec<u64> = (0..u64::from(frames)).map(|i| i * 2048).collect();
            prop_assert_eq!(all, want);
        }
    }
}

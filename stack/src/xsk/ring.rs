//! Single-producer / single-consumer rings shared with the kernel: the fill and TX rings (we produce)
//! and the RX and completion rings (we consume).
//!
//! A ring is a power-of-two array of entries plus a `producer` and a `consumer` index (free-running
//! `u32`s, compared with wrapping arithmetic) and a `flags` word. The ordering follows the kernel's
//! description in `net/xdp/xsk_queue.h`:
//!
//! ```text
//!   producer                              consumer
//!   if (LOAD consumer) {       (A)        LOAD.acquire producer   (C)
//!       STORE entries                     LOAD entries
//!       STORE.release producer (B)        STORE.release consumer  (D)
//!   }
//! ```
//!
//! Both sides keep cached copies of the indices and touch the shared words only when the cache says
//! "full" / "empty" or when a batch is published, so a batch of N entries costs one acquire load
//! and one release store, not N of each.
//!
//! The index logic runs over [`RingMem`], which is either a kernel mapping or (in tests) a heap
//! region laid out the same way, so it is unit-tested without a kernel.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use super::mmap::Mmap;
use super::sys::{XdpDesc, XdpRingOffset, XDP_RING_NEED_WAKEUP};

/// An entry type of a ring.
///
/// # Safety
/// Implementors are plain data: `Copy`, no padding that matters, every bit pattern a valid value
/// (the kernel, or a test, writes the bytes).
pub(crate) unsafe trait RingEntry: Copy {}
// Safety: u64 is plain data.
unsafe impl RingEntry for u64 {}
// Safety: XdpDesc is #[repr(C)] { u64, u32, u32 }: plain data, no padding.
unsafe impl RingEntry for XdpDesc {}

/// What keeps a ring's memory alive (held, never read).
#[derive(Debug)]
#[allow(dead_code)]
enum Backing {
    /// A mapping of an AF_XDP socket.
    Mapped(Mmap),
    /// A heap region standing in for the kernel in unit tests.
    #[cfg(test)]
    Heap(fake::HeapRegion),
}

/// The shared words and the entry array of one ring.
#[derive(Debug)]
pub(crate) struct RingMem<T: RingEntry> {
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    entries: NonNull<T>,
    size: u32,
    _backing: Backing,
}

// Safety: the pointers target memory owned by `_backing`, which moves with the value; the kernel
// side of the ring is not tied to a thread.
unsafe impl<T: RingEntry + Send> Send for RingMem<T> {}

impl<T: RingEntry> RingMem<T> {
    /// Ring memory of a kernel mapping laid out as `off` says, with `size` entries.
    pub(crate) fn mapped(map: Mmap, off: &XdpRingOffset, size: u32) -> io::Result<Self> {
        let (base, len) = (map.as_ptr(), map.len());
        Self::new(base, len, off, size, Backing::Mapped(map))
    }

    /// Check that every word and the entry array lie inside `len` bytes at `base` and are aligned,
    /// then keep pointers to them.
    fn new(base: *mut u8, len: usize, off: &XdpRingOffset, size: u32, backing: Backing) -> io::Result<Self> {
        let bad = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("ring {what} offset out of bounds or misaligned"),
            )
        };
        if !size.is_power_of_two() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "ring size must be a power of two"));
        }
        let word = |o: u64, what: &str| -> io::Result<NonNull<AtomicU32>> {
            let o = usize::try_from(o).map_err(|_| bad(what))?;
            if o.checked_add(4).is_none_or(|end| end > len) || o % 4 != 0 {
                return Err(bad(what));
            }
            // Safety: `o + 4 <= len`, so the pointer stays inside the region (and is non-null).
            Ok(unsafe { NonNull::new_unchecked(base.add(o).cast::<AtomicU32>()) })
        };
        let producer = word(off.producer, "producer")?;
        let consumer = word(off.consumer, "consumer")?;
        let flags = word(off.flags, "flags")?;
        let desc = usize::try_from(off.desc).map_err(|_| bad("descriptor"))?;
        let bytes = (size as usize).checked_mul(size_of::<T>());
        let end = bytes.and_then(|b| b.checked_add(desc));
        if end.is_none_or(|end| end > len) || desc % align_of::<T>() != 0 {
            return Err(bad("descriptor"));
        }
        // Safety: `desc + size * size_of::<T>() <= len`: the array lies inside the region.
        let entries = unsafe { NonNull::new_unchecked(base.add(desc).cast::<T>()) };
        Ok(RingMem { producer, consumer, flags, entries, size, _backing: backing })
    }

    fn producer(&self) -> &AtomicU32 {
        // Safety: checked in bounds and aligned in `new`; the backing lives as long as `self`.
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // Safety: as for `producer`.
        unsafe { self.consumer.as_ref() }
    }

    fn flags(&self) -> &AtomicU32 {
        // Safety: as for `producer`.
        unsafe { self.flags.as_ref() }
    }

    /// Pointer to the slot of free-running index `idx`.
    fn slot(&self, idx: u32) -> *mut T {
        // Safety: `idx & (size - 1) < size`, and the array of `size` entries is in bounds (`new`).
        unsafe { self.entries.as_ptr().add((idx & (self.size - 1)) as usize) }
    }

    fn needs_wakeup(&self) -> bool {
        self.flags().load(Ordering::Relaxed) & XDP_RING_NEED_WAKEUP != 0
    }
}

/// Our side of a ring we produce into (fill, TX).
#[derive(Debug)]
pub(crate) struct ProducerRing<T: RingEntry> {
    mem: RingMem<T>,
    /// Index of the next slot we write; entries up to here are written but maybe not published.
    cached_prod: u32,
    /// The producer index as we last published it.
    published: u32,
    /// The consumer index as we last read it.
    cached_cons: u32,
}

impl<T: RingEntry> ProducerRing<T> {
    /// Take over the producer side of `mem`.
    pub(crate) fn new(mem: RingMem<T>) -> Self {
        let prod = mem.producer().load(Ordering::Relaxed);
        let cons = mem.consumer().load(Ordering::Acquire);
        ProducerRing { mem, cached_prod: prod, published: prod, cached_cons: cons }
    }

    /// Number of entries.
    pub(crate) fn size(&self) -> u32 {
        self.mem.size
    }

    fn cached_free(&self) -> u32 {
        self.mem.size - self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// Free slots. Reads the kernel's consumer index only when the cached view has fewer than
    /// `want` free slots, so pass the batch size you hope to write.
    pub(crate) fn free(&mut self, want: u32) -> u32 {
        let free = self.cached_free();
        if free >= want {
            return free;
        }
        // (A): entries up to `consumer` have been read by the kernel; we may overwrite them.
        self.cached_cons = self.mem.consumer().load(Ordering::Acquire);
        self.cached_free()
    }

    /// Write one entry into the next slot (not visible to the kernel before [`submit`]). Returns
    /// false, writing nothing, when the ring is full.
    ///
    /// [`submit`]: ProducerRing::submit
    pub(crate) fn push(&mut self, entry: T) -> bool {
        if self.free(1) == 0 {
            return false;
        }
        // Safety: the slot lies between the consumer and the producer + size, so the kernel neither
        // reads nor writes it until we publish.
        unsafe { self.mem.slot(self.cached_prod).write(entry) };
        self.cached_prod = self.cached_prod.wrapping_add(1);
        true
    }

    /// Write up to `max` entries taken from `next` (stopping early when it returns `None` or the
    /// ring is full); returns how many were written. Call [`submit`](ProducerRing::submit) after.
    pub(crate) fn produce(&mut self, max: u32, mut next: impl FnMut() -> Option<T>) -> u32 {
        let n = self.free(max).min(max);
        for done in 0..n {
            match next() {
                Some(entry) => {
                    // Safety: as in `push`; `n` slots are free.
                    unsafe { self.mem.slot(self.cached_prod).write(entry) };
                    self.cached_prod = self.cached_prod.wrapping_add(1);
                }
                None => return done,
            }
        }
        n
    }

    /// Entries written but not yet published.
    pub(crate) fn pending(&self) -> u32 {
        self.cached_prod.wrapping_sub(self.published)
    }

    /// Publish every written entry to the kernel; returns how many were new.
    pub(crate) fn submit(&mut self) -> u32 {
        let n = self.pending();
        if n > 0 {
            // (B): the entries are written before the kernel can see the new producer index.
            self.mem.producer().store(self.cached_prod, Ordering::Release);
            self.published = self.cached_prod;
        }
        n
    }

    /// Published entries the kernel has not consumed yet (reads the consumer index).
    pub(crate) fn outstanding(&mut self) -> u32 {
        self.cached_cons = self.mem.consumer().load(Ordering::Acquire);
        self.published.wrapping_sub(self.cached_cons)
    }

    /// The kernel asked for a wakeup syscall before it looks at this ring again.
    pub(crate) fn needs_wakeup(&self) -> bool {
        self.mem.needs_wakeup()
    }
}

/// Our side of a ring we consume from (RX, completion).
#[derive(Debug)]
pub(crate) struct ConsumerRing<T: RingEntry> {
    mem: RingMem<T>,
    /// The producer index as we last read it.
    cached_prod: u32,
    /// Index of the next entry we read; entries before it are read but maybe not released.
    cached_cons: u32,
    /// The consumer index as we last published it.
    released: u32,
}

impl<T: RingEntry> ConsumerRing<T> {
    /// Take over the consumer side of `mem`.
    pub(crate) fn new(mem: RingMem<T>) -> Self {
        let prod = mem.producer().load(Ordering::Acquire);
        let cons = mem.consumer().load(Ordering::Relaxed);
        ConsumerRing { mem, cached_prod: prod, cached_cons: cons, released: cons }
    }

    /// Number of entries.
    pub(crate) fn size(&self) -> u32 {
        self.mem.size
    }

    /// Entries ready to read. Reads the kernel's producer index only when the cached view has fewer
    /// than `want`.
    pub(crate) fn available(&mut self, want: u32) -> u32 {
        let ready = self.cached_prod.wrapping_sub(self.cached_cons);
        if ready >= want {
            return ready;
        }
        // (C): entries before `producer` are written and visible after this acquire load.
        self.cached_prod = self.mem.producer().load(Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// Read up to `max` entries in ring order, handing each to `f`, without releasing their slots;
    /// returns how many were read.
    pub(crate) fn peek(&mut self, max: u32, mut f: impl FnMut(T)) -> u32 {
        let n = self.available(max).min(max);
        for _ in 0..n {
            // Safety: the entry lies between the consumer and the producer index we acquired: the
            // kernel wrote it and does not touch it until we release it.
            let entry = unsafe { self.mem.slot(self.cached_cons).read() };
            self.cached_cons = self.cached_cons.wrapping_add(1);
            f(entry);
        }
        n
    }

    /// Give every read slot back to the kernel; returns how many were released.
    pub(crate) fn release(&mut self) -> u32 {
        let n = self.cached_cons.wrapping_sub(self.released);
        if n > 0 {
            // (D): our reads of the entries happen before the kernel may overwrite them.
            self.mem.consumer().store(self.cached_cons, Ordering::Release);
            self.released = self.cached_cons;
        }
        n
    }

    /// [`peek`](ConsumerRing::peek) then [`release`](ConsumerRing::release).
    pub(crate) fn consume(&mut self, max: u32, f: impl FnMut(T)) -> u32 {
        let n = self.peek(max, f);
        self.release();
        n
    }

    /// The kernel asked for a wakeup syscall (meaningful for the fill ring's owner only).
    #[allow(dead_code)]
    pub(crate) fn needs_wakeup(&self) -> bool {
        self.mem.needs_wakeup()
    }
}

/// A heap region laid out like a kernel ring, and the kernel's side of the protocol, for tests.
#[cfg(test)]
pub(crate) mod fake {
    use super::*;
    use std::alloc::{alloc_zeroed, dealloc, Layout};

    const PRODUCER: u64 = 0;
    const CONSUMER: u64 = 64;
    const FLAGS: u64 = 128;
    const DESC: u64 = 192;

    /// Zeroed, 64-byte aligned heap memory, freed on drop.
    #[derive(Debug)]
    pub(crate) struct HeapRegion {
        ptr: NonNull<u8>,
        layout: Layout,
    }

    impl Drop for HeapRegion {
        fn drop(&mut self) {
            // Safety: allocated in `ring_mem` with this layout.
            unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
        }
    }

    /// Ring memory on the heap with `size` entries and both indices starting at `start`.
    pub(crate) fn ring_mem<T: RingEntry>(size: u32, start: u32) -> RingMem<T> {
        let len = DESC as usize + size as usize * size_of::<T>();
        let layout = Layout::from_size_align(len, 64).unwrap();
        // Safety: `layout` has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) }).expect("out of memory");
        let off = XdpRingOffset { producer: PRODUCER, consumer: CONSUMER, desc: DESC, flags: FLAGS };
        let mem =
            RingMem::new(ptr.as_ptr(), len, &off, size, Backing::Heap(HeapRegion { ptr, layout })).unwrap();
        mem.producer().store(start, Ordering::Relaxed);
        mem.consumer().store(start, Ordering::Relaxed);
        mem
    }

    /// The "kernel" consumes up to `max` entries of a ring we produce into.
    pub(crate) fn kernel_take<T: RingEntry>(ring: &ProducerRing<T>, max: u32) -> Vec<T> {
        let mem = &ring.mem;
        let prod = mem.producer().load(Ordering::Acquire);
        let cons = mem.consumer().load(Ordering::Relaxed);
        let n = prod.wrapping_sub(cons).min(max);
        // Safety: entries between consumer and producer are published; the test is single-threaded.
        let out = (0..n).map(|i| unsafe { mem.slot(cons.wrapping_add(i)).read() }).collect();
        mem.consumer().store(cons.wrapping_add(n), Ordering::Release);
        out
    }

    /// The "kernel" produces as many of `entries` as fit into a ring we consume; returns how many.
    pub(crate) fn kernel_put<T: RingEntry>(ring: &ConsumerRing<T>, entries: &[T]) -> usize {
        let mem = &ring.mem;
        let prod = mem.producer().load(Ordering::Relaxed);
        let cons = mem.consumer().load(Ordering::Acquire);
        let free = mem.size - prod.wrapping_sub(cons);
        let n = entries.len().min(free as usize);
        for (i, e) in entries[..n].iter().enumerate() {
            // Safety: slots between producer and consumer + size are free; single-threaded test.
            unsafe { mem.slot(prod.wrapping_add(i as u32)).write(*e) };
        }
        mem.producer().store(prod.wrapping_add(n as u32), Ordering::Release);
        n
    }

    /// Set or clear `XDP_RING_NEED_WAKEUP` as the kernel would.
    pub(crate) fn set_need_wakeup<T: RingEntry>(mem_of: &ProducerRing<T>, on: bool) {
        let v = if on { XDP_RING_NEED_WAKEUP } else { 0 };
        mem_of.mem.flags().store(v, Ordering::Relaxed);
    }

    /// The raw indices (producer, consumer) as the kernel sees them.
    pub(crate) fn indices<T: RingEntry>(mem: &RingMem<T>) -> (u32, u32) {
        (mem.producer().load(Ordering::Relaxed), mem.consumer().load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{indices, kernel_put, kernel_take, ring_mem, set_need_wakeup};
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    #[test]
    fn producer_fills_to_full_and_frees_what_the_kernel_consumed() {
        let mut ring = ProducerRing::<u64>::new(ring_mem(8, 0));
        assert_eq!(ring.free(8), 8);
        for v in 0..8 {
            assert!(ring.push(v));
        }
        assert!(!ring.push(99), "a full ring takes nothing");
        assert_eq!(ring.pending(), 8);
        assert!(kernel_take(&ring, 8).is_empty(), "nothing visible before submit");
        assert_eq!(ring.submit(), 8);
        assert_eq!(ring.submit(), 0);
        assert_eq!(kernel_take(&ring, 3), vec![0, 1, 2]);
        assert_eq!(ring.outstanding(), 5);
        assert_eq!(ring.free(1), 3);
        assert_eq!(
            ring.produce(10, {
                let mut v = 8;
                move || {
                    v += 1;
                    Some(v - 1)
                }
            }),
            3
        );
        ring.submit();
        assert_eq!(kernel_take(&ring, 100), vec![3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(ring.outstanding(), 0);
    }

    #[test]
    fn producer_reads_the_consumer_index_only_when_the_cache_runs_short() {
        let mut ring = ProducerRing::<u64>::new(ring_mem(16, 0));
        assert_eq!(ring.produce(12, || Some(1)), 12);
        ring.submit();
        kernel_take(&ring, 12);
        // The cache still believes 4 slots are free; asking for at most 4 does not look.
        assert_eq!(ring.free(4), 4);
        // Asking for more refreshes and sees all 16.
        assert_eq!(ring.free(5), 16);
    }

    #[test]
    fn produce_stops_when_the_source_runs_dry() {
        let mut ring = ProducerRing::<u64>::new(ring_mem(8, 0));
        let mut src = vec![7u64, 8, 9];
        assert_eq!(ring.produce(8, || src.pop()), 3);
        assert_eq!(ring.pending(), 3);
        ring.submit();
        assert_eq!(kernel_take(&ring, 8), vec![9, 8, 7]);
    }

    #[test]
    fn consumer_sees_nothing_on_an_empty_ring_and_batches_reads() {
        let mut ring = ConsumerRing::<XdpDesc>::new(ring_mem(4, 0));
        assert_eq!(ring.available(1), 0);
        assert_eq!(ring.consume(4, |_| panic!("empty")), 0);
        let descs: Vec<XdpDesc> =
            (0..6).map(|i| XdpDesc { addr: i * 2048, len: 60 + i as u32, options: 0 }).collect();
        assert_eq!(kernel_put(&ring, &descs), 4, "the kernel fills the ring and stops");
        let mut got = Vec::new();
        assert_eq!(ring.peek(3, |d| got.push(d)), 3);
        assert_eq!(kernel_put(&ring, &descs[4..]), 0, "unreleased slots stay ours");
        assert_eq!(ring.release(), 3);
        assert_eq!(kernel_put(&ring, &descs[4..]), 2);
        assert_eq!(ring.consume(10, |d| got.push(d)), 3);
        assert_eq!(got, descs);
        assert_eq!(ring.available(1), 0);
    }

    #[test]
    fn indices_wrap_around_u32() {
        let start = u32::MAX - 5;
        let mut prod = ProducerRing::<u64>::new(ring_mem(8, start));
        let mut cons = ConsumerRing::<u64>::new(ring_mem(8, start));
        let mut next = 0u64;
        let mut expect = 0u64;
        for _ in 0..10 {
            let n = prod.produce(8, || {
                next += 1;
                Some(next - 1)
            });
            assert_eq!(n, 8);
            prod.submit();
            let taken = kernel_take(&prod, 8);
            assert_eq!(kernel_put(&cons, &taken), 8);
            cons.consume(8, |v| {
                assert_eq!(v, expect);
                expect += 1;
            });
        }
        assert_eq!(expect, 80);
        let (p, c) = indices(&prod.mem);
        assert_eq!((p, c), (start.wrapping_add(80), start.wrapping_add(80)));
        assert!(p < start, "the indices wrapped past zero");
    }

    #[test]
    fn need_wakeup_flag_is_read_from_the_ring() {
        let ring = ProducerRing::<u64>::new(ring_mem(4, 0));
        assert!(!ring.needs_wakeup());
        set_need_wakeup(&ring, true);
        assert!(ring.needs_wakeup());
    }

    #[test]
    fn mapping_offsets_out_of_bounds_are_rejected() {
        let region = super::super::mmap::Mmap::anonymous(4096).unwrap();
        let off = XdpRingOffset { producer: 0, consumer: 64, flags: 128, desc: 256 };
        // 256 + 256 * 16 > 4096.
        assert!(RingMem::<XdpDesc>::mapped(region, &off, 256).is_err());
        let region = super::super::mmap::Mmap::anonymous(4096).unwrap();
        let off = XdpRingOffset { producer: 4094, ..off };
        assert!(RingMem::<u64>::mapped(region, &off, 8).is_err());
        let region = super::super::mmap::Mmap::anonymous(4096).unwrap();
        let off = XdpRingOffset { producer: 0, consumer: 64, flags: 128, desc: 256 };
        assert!(RingMem::<u64>::mapped(region, &off, 6).is_err(), "not a power of two");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Produce(u32),
        Submit,
        KernelTake(u32),
        KernelPut(u32),
        Peek(u32),
        Release,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u32..20).prop_map(Op::Produce),
            Just(Op::Submit),
            (0u32..20).prop_map(Op::KernelTake),
            (0u32..20).prop_map(Op::KernelPut),
            (0u32..20).prop_map(Op::Peek),
            Just(Op::Release),
        ]
    }

    proptest! {
        /// Both ring sides against a queue model, from start indices near the u32 wrap.
        #[test]
        fn rings_match_a_fifo_model(
            start in prop_oneof![Just(0u32), Just(u32::MAX - 7), any::<u32>()],
            ops in proptest::collection::vec(op(), 1..200),
        ) {
            const SIZE: u32 = 16;
            let mut prod = ProducerRing::<u64>::new(ring_mem(SIZE, start));
            let mut cons = ConsumerRing::<u64>::new(ring_mem(SIZE, start));
            // Model: entries written (unpublished), published (kernel not taken) on the producer ring;
            // kernel-produced (unread), read (unreleased) on the consumer ring.
            let (mut written, mut published) = (VecDeque::new(), VecDeque::new());
            let (mut ready, mut unreleased) = (VecDeque::new(), 0u32);
            let mut next = 0u64;
            for op in ops {
                match op {
                    Op::Produce(n) => {
                        let room = SIZE - (written.len() + published.len()) as u32;
                        let got = prod.produce(n, || { next += 1; Some(next - 1) });
                        prop_assert_eq!(got, n.min(room));
                        for i in 0..got { written.push_back(next - u64::from(got) + u64::from(i)); }
                    }
                    Op::Submit => {
                        prop_assert_eq!(prod.submit() as usize, written.len());
                        published.extend(written.drain(..));
                    }
                    Op::KernelTake(n) => {
                        let got = kernel_take(&prod, n);
                        let k = (n as usize).min(published.len());
                        let want: Vec<u64> = published.drain(..k).collect();
                        prop_assert_eq!(got, want);
                    }
                    Op::KernelPut(n) => {
                        let vals: Vec<u64> = (0..u64::from(n)).map(|i| 1_000_000 + next + i).collect();
                        next += u64::from(n);
                        let room = SIZE as usize - ready.len() - unreleased as usize;
                        let put = kernel_put(&cons, &vals);
                        prop_assert_eq!(put, vals.len().min(room));
                        ready.extend(vals[..put].iter().copied());
                    }
                    Op::Peek(n) => {
                        let mut got = Vec::new();
                        let k = cons.peek(n, |v| got.push(v));
                        prop_assert_eq!(k as usize, (n as usize).min(ready.len()));
                        let want: Vec<u64> = ready.drain(..k as usize).collect();
                        prop_assert_eq!(got, want);
                        unreleased += k;
                    }
                    Op::Release => {
                        prop_assert_eq!(cons.release(), unreleased);
                        unreleased = 0;
                    }
                }
                prop_assert_eq!(prod.pending() as usize, written.len());
                prop_assert_eq!(prod.outstanding() as usize, published.len());
                let (p, c) = indices(&prod.mem);
                prop_assert_eq!(p.wrapping_sub(c) as usize, published.len());
            }
        }
    }
}

//! `XskSocket`: one AF_XDP socket bound to (interface, queue), its four rings, and the data path.
//!
//! Setup order (the kernel insists on it): socket, `XDP_UMEM_REG` (first socket only), ring sizes,
//! `XDP_MMAP_OFFSETS`, mmap of every ring, bind. All mappings must exist before the bind.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use super::batch::RxBatch;
use super::error::{TxError, XskError};
use super::mmap::Mmap;
use super::pool::FramePool;
use super::ring::{ConsumerRing, ProducerRing, RingEntry, RingMem};
use super::sys::{self, SockaddrXdp, XdpDesc, XdpRingOffset};
use super::umem::Umem;

/// How to bind: zero-copy (the driver DMAs into the UMEM) or copy mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BindMode {
    /// Try zero-copy, fall back to copy mode if the driver cannot (veth cannot).
    #[default]
    Auto,
    /// Zero-copy or fail with [`XskError::ZeroCopyUnsupported`].
    ZeroCopy,
    /// Copy mode.
    Copy,
}

/// Per-socket configuration. Sockets that share a UMEM inherit the mode and the need-wakeup
/// setting of the socket that registered it (the kernel ignores theirs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketConfig {
    /// RX ring entries (a power of two, or 0 for no RX ring).
    pub rx_size: u32,
    /// TX ring entries (a power of two, or 0 for no TX ring).
    pub tx_size: u32,
    /// Zero-copy or copy mode.
    pub mode: BindMode,
    /// Bind with `XDP_USE_NEED_WAKEUP`: the kernel flags the rings that need a syscall, instead of
    /// user space kicking after every batch.
    pub need_wakeup: bool,
}

impl Default for SocketConfig {
    fn default() -> Self {
        SocketConfig { rx_size: 1024, tx_size: 1024, mode: BindMode::Auto, need_wakeup: true }
    }
}

impl SocketConfig {
    fn validate(&self) -> Result<(), XskError> {
        for (name, n) in [("rx_size", self.rx_size), ("tx_size", self.tx_size)] {
            if n != 0 && !n.is_power_of_two() {
                return Err(XskError::InvalidConfig(format!(
                    "{name} {n} must be a power of two (or 0 for no ring)"
                )));
            }
        }
        if self.rx_size == 0 && self.tx_size == 0 {
            return Err(XskError::InvalidConfig("a socket needs an RX or a TX ring".into()));
        }
        Ok(())
    }
}

/// How a socket relates to the stack's UMEM. Later sockets name an existing socket of the same
/// UMEM (not a bare fd), so that the UMEM and the queue can be checked before the kernel sees them.
#[derive(Debug, Clone, Copy)]
pub enum Share<'a> {
    /// The first socket of the UMEM: registers it and owns the fill and completion rings of its queue.
    First,
    /// A socket on an (interface, queue) that no socket of this UMEM uses yet: shares the UMEM of
    /// `umem_owner` (any socket of the UMEM) and gets its own fill and completion rings.
    NewQueue {
        /// A socket of the same UMEM.
        umem_owner: &'a XskSocket,
    },
    /// Another socket on the queue of `queue_owner`: shares that socket's fill and completion rings
    /// (the kernel refuses a second pair on one queue with EINVAL), so [`XskSocket::refill`] and
    /// [`XskSocket::reap`] do nothing here; the owner does them for the whole queue. Drop the owner
    /// last: completions of this socket's frames arrive on the owner's completion ring.
    SameQueue {
        /// The socket that owns the fill ring of this queue.
        queue_owner: &'a XskSocket,
    },
}

/// Frames a socket has handed to the kernel and not yet got back. Counted per socket; a socket
/// that shares a queue can have negative numbers (it receives frames the owner filled, and the owner
/// reaps its completions), and the sum over all sockets of a UMEM is what the kernel holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InFlight {
    /// Put on the fill ring minus taken from the RX ring.
    pub fill: i64,
    /// Put on the TX ring minus taken from the completion ring.
    pub tx: i64,
}

/// Event counters of one socket (monotonic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketCounters {
    /// Frames put on the fill ring.
    pub filled: u64,
    /// Descriptors taken from the RX ring.
    pub received: u64,
    /// Frames queued on the TX ring.
    pub tx_queued: u64,
    /// Frames taken from the completion ring.
    pub completed: u64,
    /// TX wakeup syscalls.
    pub tx_kicks: u64,
    /// RX wakeup syscalls.
    pub rx_kicks: u64,
    /// RX descriptors whose bytes were not inside one UMEM chunk (never from a correct kernel).
    pub rx_bad_desc: u64,
}

/// An AF_XDP socket bound to one queue of one interface.
#[derive(Debug)]
pub struct XskSocket {
    // Rings before `fd`: unmapped first, then the socket closed.
    rx: Option<ConsumerRing<XdpDesc>>,
    tx: Option<ProducerRing<XdpDesc>>,
    fill: Option<ProducerRing<u64>>,
    comp: Option<ConsumerRing<u64>>,
    fd: OwnedFd,
    umem: Arc<Umem>,
    ifindex: u32,
    queue_id: u32,
    zero_copy: bool,
    need_wakeup: bool,
    counters: SocketCounters,
}

/// Bind attempts while the queue reports EBUSY (a previous socket's teardown is asynchronous).
const BIND_ATTEMPTS: u32 = 6;
const BIND_FIRST_BACKOFF: Duration = Duration::from_millis(5);

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

fn os(op: &'static str, hint: &'static str) -> impl FnOnce(io::Error) -> XskError {
    move |source| XskError::Os { op, hint, source }
}

impl XskSocket {
    /// Create a socket on queue `queue_id` of interface `ifindex` (in the calling thread's network
    /// namespace) over `umem`.
    pub fn new(
        umem: &Arc<Umem>,
        ifindex: u32,
        queue_id: u32,
        cfg: &SocketConfig,
        share: Share<'_>,
    ) -> Result<XskSocket, XskError> {
        cfg.validate()?;
        let bad = |why: &str| Err(XskError::InvalidConfig(why.into()));
        match share {
            Share::First => {
                if !umem.claim_registration() {
                    return bad("this UMEM is already registered by a Share::First socket; later \
                         sockets use Share::NewQueue or Share::SameQueue");
                }
            }
            Share::NewQueue { umem_owner: o } | Share::SameQueue { queue_owner: o }
                if !Arc::ptr_eq(&o.umem, umem) =>
            {
                return bad("the owner socket uses another UMEM");
            }
            Share::NewQueue { umem_owner: o } if (o.ifindex, o.queue_id) == (ifindex, queue_id) => {
                return bad("this queue already has fill and completion rings: a further socket on \
                     it uses Share::SameQueue");
            }
            Share::SameQueue { queue_owner: o }
                if (o.ifindex, o.queue_id) != (ifindex, queue_id) || !o.owns_fill_ring() =>
            {
                return bad("Share::SameQueue must name the fill-ring owner of this very queue; a \
                     socket on another queue uses Share::NewQueue");
            }
            Share::NewQueue { .. } | Share::SameQueue { .. } => {}
        }
        let sock = Self::setup(umem, ifindex, queue_id, cfg, share);
        if sock.is_err() && matches!(share, Share::First) {
            umem.unclaim_registration();
        }
        sock
    }

    fn setup(
        umem: &Arc<Umem>,
        ifindex: u32,
        queue_id: u32,
        cfg: &SocketConfig,
        share: Share<'_>,
    ) -> Result<XskSocket, XskError> {
        if sys::if_name(ifindex).is_none() {
            return Err(XskError::NoSuchInterface { ifindex });
        }
        let fd = sys::xsk_socket().map_err(|source| match errno(&source) {
            libc::EPERM | libc::EACCES => XskError::NoPrivilege { op: "socket(AF_XDP)", source },
            libc::EAFNOSUPPORT => XskError::Unsupported,
            _ => XskError::Os { op: "socket(AF_XDP)", hint: "", source },
        })?;
        let first = matches!(share, Share::First);
        if first {
            sys::register_umem(fd.as_fd(), &umem.registration()).map_err(|source| match errno(&source) {
                libc::ENOBUFS | libc::ENOMEM | libc::EPERM | libc::EAGAIN => {
                    XskError::UmemMemory { bytes: umem.len_bytes(), source }
                }
                _ => XskError::Os { op: "XDP_UMEM_REG", hint: "", source },
            })?;
        }
        let owns_fill = !matches!(share, Share::SameQueue { .. });
        let ucfg = *umem.config();
        if owns_fill {
            sys::set_ring_size(fd.as_fd(), sys::XDP_UMEM_FILL_RING, ucfg.fill_size)
                .map_err(os("setsockopt(XDP_UMEM_FILL_RING)", ""))?;
            sys::set_ring_size(fd.as_fd(), sys::XDP_UMEM_COMPLETION_RING, ucfg.comp_size)
                .map_err(os("setsockopt(XDP_UMEM_COMPLETION_RING)", ""))?;
        }
        if cfg.rx_size > 0 {
            sys::set_ring_size(fd.as_fd(), sys::XDP_RX_RING, cfg.rx_size)
                .map_err(os("setsockopt(XDP_RX_RING)", ""))?;
        }
        if cfg.tx_size > 0 {
            sys::set_ring_size(fd.as_fd(), sys::XDP_TX_RING, cfg.tx_size)
                .map_err(os("setsockopt(XDP_TX_RING)", ""))?;
        }
        let off = sys::mmap_offsets(fd.as_fd()).map_err(os("getsockopt(XDP_MMAP_OFFSETS)", ""))?;
        let fdb = fd.as_fd();
        let fill = owns_fill
            .then(|| map_ring(fdb, sys::XDP_UMEM_PGOFF_FILL_RING, &off.fr, ucfg.fill_size))
            .transpose()?
            .map(ProducerRing::new);
        let comp = owns_fill
            .then(|| map_ring(fdb, sys::XDP_UMEM_PGOFF_COMPLETION_RING, &off.cr, ucfg.comp_size))
            .transpose()?
            .map(ConsumerRing::new);
        let rx = (cfg.rx_size > 0)
            .then(|| map_ring(fdb, sys::XDP_PGOFF_RX_RING, &off.rx, cfg.rx_size))
            .transpose()?
            .map(ConsumerRing::new);
        let tx = (cfg.tx_size > 0)
            .then(|| map_ring(fdb, sys::XDP_PGOFF_TX_RING, &off.tx, cfg.tx_size))
            .transpose()?
            .map(ProducerRing::new);

        bind(fdb, ifindex, queue_id, cfg, share)?;

        let options = sys::options(fdb).map_err(os("getsockopt(XDP_OPTIONS)", ""))?;
        // Shared sockets inherit the owner's need-wakeup mode from the kernel.
        let need_wakeup = match share {
            Share::First => cfg.need_wakeup,
            Share::NewQueue { umem_owner: o } | Share::SameQueue { queue_owner: o } => o.need_wakeup,
        };
        Ok(XskSocket {
            rx,
            tx,
            fill,
            comp,
            fd,
            umem: Arc::clone(umem),
            ifindex,
            queue_id,
            zero_copy: options.flags & sys::XDP_OPTIONS_ZEROCOPY != 0,
            need_wakeup,
            counters: SocketCounters::default(),
        })
    }

    /// The socket, for `poll` and for sharing the UMEM with later sockets.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Interface index it is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Queue it is bound to.
    pub fn queue_id(&self) -> u32 {
        self.queue_id
    }

    /// The UMEM it uses.
    pub fn umem(&self) -> &Arc<Umem> {
        &self.umem
    }

    /// Bound in zero-copy mode (as the kernel reports it).
    pub fn is_zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// Owns the fill and completion rings of its queue.
    pub fn owns_fill_ring(&self) -> bool {
        self.fill.is_some()
    }

    /// The kernel's drop counters for this socket.
    pub fn statistics(&self) -> io::Result<sys::XdpStatistics> {
        sys::statistics(self.fd())
    }

    /// Event counters.
    pub fn counters(&self) -> SocketCounters {
        self.counters
    }

    /// Frames given to the kernel and not yet back (see [`InFlight`]).
    pub fn in_flight(&self) -> InFlight {
        let c = &self.counters;
        InFlight {
            fill: (c.filled as i64).wrapping_sub(c.received as i64),
            tx: (c.tx_queued as i64).wrapping_sub(c.completed as i64),
        }
    }

    /// Move free frames from `pool` to the fill ring, as many as fit; returns how many. Does nothing
    /// on a socket without its own fill ring.
    pub fn refill(&mut self, pool: &mut FramePool) -> usize {
        self.refill_up_to(pool, usize::MAX)
    }

    /// Like [`refill`](XskSocket::refill), moving at most `max` frames (to keep some for TX).
    pub fn refill_up_to(&mut self, pool: &mut FramePool, max: usize) -> usize {
        let Some(fill) = self.fill.as_mut() else {
            return 0;
        };
        if !pool.belongs_to(&self.umem) {
            debug_assert!(false, "refill from a pool of another UMEM");
            return 0;
        }
        let max = u32::try_from(max).unwrap_or(u32::MAX).min(fill.size());
        let n = fill.produce(max, || pool.alloc());
        fill.submit();
        self.counters.filled += u64::from(n);
        n as usize
    }

    /// Move completed TX frames from the completion ring to `pool`; returns how many. Does nothing on
    /// a socket without its own completion ring (its owner reaps for the queue).
    pub fn reap(&mut self, pool: &mut FramePool) -> usize {
        let Some(comp) = self.comp.as_mut() else {
            return 0;
        };
        if !pool.belongs_to(&self.umem) {
            debug_assert!(false, "reap into a pool of another UMEM");
            return 0;
        }
        let n = comp.consume(comp.size(), |addr| pool.free(addr));
        self.counters.completed += u64::from(n);
        n as usize
    }

    /// True when the RX ring holds frames (one acquire load of the kernel's index when the cached view
    /// is empty).
    pub fn rx_ready(&mut self) -> bool {
        self.rx.as_mut().is_some_and(|rx| rx.available(1) > 0)
    }

    /// Take up to `max` received frames (bounded by the batch's spare room) into `batch` and release
    /// their ring slots; returns how many were added.
    pub fn recv(&mut self, batch: &mut RxBatch, max: usize) -> usize {
        let Some(rx) = self.rx.as_mut() else {
            return 0;
        };
        if !Arc::ptr_eq(batch.umem(), &self.umem) {
            debug_assert!(false, "receiving into a batch of another UMEM");
            return 0;
        }
        let max = u32::try_from(max.min(batch.spare())).unwrap_or(u32::MAX);
        let before = batch.len();
        let mut bad = 0;
        let n = rx.consume(max, |d| {
            if !batch.push(d.addr, d.len) {
                bad += 1;
            }
        });
        self.counters.received += u64::from(n);
        self.counters.rx_bad_desc += bad;
        batch.len() - before
    }

    /// Free TX ring slots (refreshing the view of the kernel's progress when it looks full).
    pub fn tx_space(&mut self) -> usize {
        self.tx.as_mut().map_or(0, |tx| tx.free(1) as usize)
    }

    /// Take a frame from `pool`, let `fill` write it (it gets a buffer of `min(max_len, frame_size)`
    /// bytes and returns the frame length), and queue it on the TX ring. The frame is published by
    /// the next [`flush`](XskSocket::flush). A length of 0 cancels: the frame goes back to the pool
    /// and `Ok` is returned with nothing queued.
    pub fn transmit<F: FnOnce(&mut [u8]) -> usize>(
        &mut self,
        pool: &mut FramePool,
        max_len: usize,
        fill: F,
    ) -> Result<(), TxError> {
        let tx = self.tx.as_mut().ok_or(TxError::NoTxRing)?;
        if !pool.belongs_to(&self.umem) {
            return Err(TxError::ForeignPool);
        }
        if tx.free(1) == 0 {
            return Err(TxError::RingFull);
        }
        let addr = pool.alloc().ok_or(TxError::NoFrame)?;
        let cap = max_len.min(self.umem.frame_size() as usize);
        let Some(ptr) = self.umem.frame_ptr(addr, cap) else {
            // Pool addresses are chunk bases inside the UMEM, so this does not happen.
            pool.free(addr);
            return Err(TxError::NoFrame);
        };
        // Safety: the frame just left the pool, so no other place holds its address: this is the only
        // reference to its bytes until it is queued below. `frame_ptr` checked the bounds.
        let buf = unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), cap) };
        let len = fill(buf);
        if len == 0 || len > cap {
            pool.free(addr);
            return if len == 0 { Ok(()) } else { Err(TxError::TooLong { len, max: cap }) };
        }
        let queued = tx.push(XdpDesc { addr, len: len as u32, options: 0 });
        debug_assert!(queued, "a slot was free above");
        if !queued {
            pool.free(addr);
            return Err(TxError::RingFull);
        }
        self.counters.tx_queued += 1;
        Ok(())
    }

    /// Publish queued TX frames and kick the kernel when it needs it: always in copy mode (where the
    /// `sendto` does the sending) and without need-wakeup, else when the TX ring asks. In copy mode
    /// the kernel sends a limited budget per call, so this kicks again while the kernel makes
    /// progress. `EAGAIN`/`EBUSY`/`ENOBUFS` are not errors: the kernel is out of room (reap the
    /// completion ring) and the rest goes on the next flush.
    pub fn flush(&mut self) -> io::Result<()> {
        let Some(tx) = self.tx.as_mut() else {
            return Ok(());
        };
        tx.submit();
        let mut outstanding = tx.outstanding();
        while outstanding > 0 {
            let kick = !self.zero_copy || !self.need_wakeup || tx.needs_wakeup();
            if !kick {
                break;
            }
            self.counters.tx_kicks += 1;
            if let Err(e) = sys::kick_tx(self.fd.as_fd()) {
                match errno(&e) {
                    libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::EINTR => {}
                    _ => return Err(e),
                }
            }
            if self.zero_copy {
                break; // The driver sends asynchronously.
            }
            let left = tx.outstanding();
            if left >= outstanding {
                break; // No progress: completion ring full or device busy.
            }
            outstanding = left;
        }
        Ok(())
    }

    /// If the fill ring asks for a wakeup (need-wakeup mode), poke the kernel so it resumes filling
    /// the RX ring.
    pub fn wake_rx(&mut self) {
        let Some(fill) = self.fill.as_ref() else {
            return;
        };
        if self.need_wakeup && fill.needs_wakeup() {
            self.counters.rx_kicks += 1;
            if let Err(e) = sys::kick_rx(self.fd.as_fd()) {
                if !matches!(errno(&e), libc::EAGAIN | libc::EBUSY | libc::EINTR) {
                    log::debug!("AF_XDP RX wakeup on queue {}: {e}", self.queue_id);
                }
            }
        }
    }
}

impl AsFd for XskSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for XskSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

fn map_ring<T: RingEntry>(
    fd: BorrowedFd<'_>,
    pgoff: u64,
    off: &XdpRingOffset,
    size: u32,
) -> Result<RingMem<T>, XskError> {
    let len = usize::try_from(off.desc)
        .ok()
        .and_then(|d| d.checked_add(size as usize * size_of::<T>()))
        .ok_or_else(|| XskError::InvalidConfig(format!("ring of {size} entries is too large")))?;
    let map = Mmap::socket_ring(fd, pgoff, len).map_err(os("mmap of an AF_XDP ring", ""))?;
    RingMem::mapped(map, off, size).map_err(os("AF_XDP ring layout", "unexpected offsets"))
}

/// Bind, retrying while the queue is busy; in `Auto` mode fall back from zero-copy to copy mode.
fn bind(
    fd: BorrowedFd<'_>,
    ifindex: u32,
    queue_id: u32,
    cfg: &SocketConfig,
    share: Share<'_>,
) -> Result<(), XskError> {
    let mut addr = SockaddrXdp {
        sxdp_family: sys::AF_XDP as u16,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue_id,
        ..SockaddrXdp::default()
    };
    let result = match share {
        Share::First => {
            let wake = if cfg.need_wakeup { sys::XDP_USE_NEED_WAKEUP } else { 0 };
            let zc = sys::XDP_ZEROCOPY | wake;
            let copy = sys::XDP_COPY | wake;
            match cfg.mode {
                BindMode::Copy => bind_retrying(fd, SockaddrXdp { sxdp_flags: copy, ..addr }),
                BindMode::ZeroCopy => bind_retrying(fd, SockaddrXdp { sxdp_flags: zc, ..addr }),
                BindMode::Auto => match bind_retrying(fd, SockaddrXdp { sxdp_flags: zc, ..addr }) {
                    Err(e) if matches!(errno(&e), libc::EOPNOTSUPP) => {
                        log::debug!("ifindex {ifindex} queue {queue_id}: no zero-copy, using copy mode");
                        bind_retrying(fd, SockaddrXdp { sxdp_flags: copy, ..addr })
                    }
                    r => r,
                },
            }
        }
        Share::NewQueue { umem_owner: owner } | Share::SameQueue { queue_owner: owner } => {
            // Shared sockets may not pass mode or wakeup flags: they inherit the owner's.
            addr.sxdp_flags = sys::XDP_SHARED_UMEM;
            addr.sxdp_shared_umem_fd = owner.fd.as_raw_fd() as u32;
            bind_retrying(fd, addr)
        }
    };
    result.map_err(|source| bind_error(source, ifindex, queue_id, share))
}

fn bind_retrying(fd: BorrowedFd<'_>, addr: SockaddrXdp) -> io::Result<()> {
    let mut backoff = BIND_FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match sys::bind(fd, &addr) {
            Err(e) if errno(&e) == libc::EBUSY && attempt < BIND_ATTEMPTS => {
                std::thread::sleep(backoff);
                backoff *= 2;
                attempt += 1;
            }
            r => return r,
        }
    }
}

fn bind_error(source: io::Error, ifindex: u32, queue_id: u32, share: Share<'_>) -> XskError {
    match errno(&source) {
        libc::EPERM | libc::EACCES => XskError::NoPrivilege { op: "bind(AF_XDP)", source },
        libc::ENODEV => XskError::NoSuchInterface { ifindex },
        libc::EBUSY => XskError::QueueBusy { ifindex, queue_id },
        libc::EOPNOTSUPP => XskError::ZeroCopyUnsupported { ifindex, queue_id },
        libc::EINVAL => {
            let queues = sys::queue_count(ifindex);
            if queues.is_some_and(|n| queue_id >= n) {
                return XskError::NoSuchQueue { ifindex, ifname: sys::if_name(ifindex), queue_id, queues };
            }
            let hint = match share {
                Share::First => "",
                Share::NewQueue { .. } => {
                    "on the UMEM owner's own queue use Share::SameQueue, not Share::NewQueue"
                }
                Share::SameQueue { .. } => {
                    "Share::SameQueue must name the fill-ring owner of this very queue; \
                     a socket on another queue uses Share::NewQueue"
                }
            };
            XskError::Os { op: "bind(AF_XDP)", hint, source }
        }
        _ => XskError::Os { op: "bind(AF_XDP)", hint: "", source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_move_to_worker_threads() {
        fn send<T: Send>() {}
        fn send_sync<T: Send + Sync>() {}
        send::<XskSocket>();
        send::<super::super::FramePool>();
        send::<RxBatch>();
        send_sync::<Umem>();
    }

    #[test]
    fn socket_config_rejects_what_the_kernel_would() {
        assert!(SocketConfig::default().validate().is_ok());
        let c = SocketConfig { rx_size: 0, ..SocketConfig::default() };
        assert!(c.validate().is_ok(), "TX-only is fine");
        let c = SocketConfig { rx_size: 0, tx_size: 0, ..SocketConfig::default() };
        assert!(c.validate().is_err());
        let c = SocketConfig { tx_size: 1000, ..SocketConfig::default() };
        assert!(c.validate().unwrap_err().to_string().contains("tx_size 1000"));
    }
}

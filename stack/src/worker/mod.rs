//! A worker: one thread, pinned to one core, owning its AF_XDP sockets, its frame pool and its share
//! of protocol state. No locks on the packet path: applications reach it only through its lock-free
//! command queue, and it reaches them only through their sockets' queues.
//!
//! One turn of the loop: drain commands; for each socket reap completions, refill the fill ring and
//! process a batch of received frames; run due timers; share learned neighbours; flush TX. With nothing
//! to do it spins briefly (yielding the core to any thread that wants it), then sleeps in poll(2) on
//! its sockets and its wake-up eventfd (unless busy-polling, when it never sleeps or yields).

mod command;
mod device;
mod endpoints;
mod inline;
pub(crate) mod tcp;
mod timewait;

pub(crate) use inline::InlineDriver;

use std::io;
use std::os::fd::BorrowedFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub(crate) use command::Command;
use device::XskTx;
use endpoints::{RawTable, UdpTable, WorkerEndpoints};

use crate::counters::Counters;
use crate::iface::Interface;
use crate::kneigh::KernelNeighbors;
use crate::phy::PcapSink;
use crate::socket::event::poll_readable;
use crate::stack::StackShared;
use crate::wire::EthernetAddress;
use crate::xsk::{self, FramePool, RxBatch, Umem, XdpStatistics, XskSocket};

/// Frames handled per RX batch.
const BATCH: usize = 64;
/// Commands handled per turn (so that a flood of sends cannot starve receive).
const COMMANDS_PER_TURN: usize = 256;
/// Idle spinning before sleeping, when not busy-polling. Each idle turn yields the core
/// (`sched_yield`): a worker usually shares its core with the application threads it serves, and a
/// hard spin kept the one it had just woken from running (blocking mode, one run each: connections/s
/// stack↔stack 14.0k → 21.1k, UDP echo per core 1.73× → 1.97× the kernel's, TCP bulk 0.59× → 0.68×).
const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(50);
/// Idle turns (no command, no frame) that reuse the last clock reading before the clock is read
/// again for the timers. A turn costs well under a microsecond, so timers fire at most a few
/// microseconds late, and a busy-polling worker spends its idle spin on the rings, not on
/// `clock_gettime` (it was 7–18 % of the samples in busy-poll profiles).
const IDLE_TURNS_PER_CLOCK_READ: u32 = 32;
/// Turns between refreshes of the frame gauges (`XskFramesInFill`, ...) that tools read; a worker
/// that never sleeps (busy-polling) refreshes them this way, one that sleeps also before each sleep.
const TURNS_PER_GAUGE_UPDATE: u32 = 4096;

/// Everything a worker is made of.
pub(crate) struct WorkerSetup {
    pub index: usize,
    pub core: Option<usize>,
    pub socks: Vec<XskSocket>,
    pub pool: FramePool,
    pub umem: Arc<Umem>,
    pub iface: Interface,
    pub shared: Arc<StackShared>,
    pub counters: Arc<Counters>,
    pub announce: bool,
    /// Shared-address mode: resolve neighbours through the kernel's table of this interface.
    pub kernel_neighbors: Option<u32>,
    /// TCP settings.
    pub tcp: Arc<crate::tcp::TcpConfig>,
    /// The capture every frame in and out is recorded to (Config::pcap; off by default).
    pub pcap: Option<Arc<PcapSink>>,
}

/// What a worker reports when it stops.
#[derive(Debug, Clone, Default)]
pub struct WorkerReport {
    /// Worker index.
    pub index: usize,
    /// Frames in the worker's own free list.
    pub frames_free: u64,
    /// Frames its sockets lent to the kernel's fill rings (negative when a socket shares a queue).
    pub frames_in_fill: i64,
    /// Frames on its TX rings not yet completed (same caveat).
    pub frames_in_tx: i64,
    /// The kernel's statistics of each of its sockets.
    pub xdp_stats: Vec<XdpStatistics>,
}

/// What a worker hands back when it stops: its report, and its parts, so that the stack can check
/// the frame accounting over all workers and close the sockets in a safe order.
pub(crate) struct WorkerExit {
    pub report: WorkerReport,
    pub socks: Vec<XskSocket>,
    pub pool: FramePool,
    pub batch: RxBatch,
}

/// A worker's state: everything one turn of the loop touches.
pub(crate) struct Worker {
    index: usize,
    socks: Vec<XskSocket>,
    pool: FramePool,
    batch: RxBatch,
    iface: Interface,
    udp: UdpTable,
    raw: RawTable,
    tcp: tcp::TcpTable,
    shared: Arc<StackShared>,
    counters: Arc<Counters>,
    busy_poll: bool,
    idle_since: Option<Instant>,
    /// Start of the current stretch of idle turns (for WorkerIdleNs).
    idle_from: Option<Instant>,
    /// The clock as the current turn sees it: read afresh when a turn has commands or frames to handle,
    /// else every [`IDLE_TURNS_PER_CLOCK_READ`] idle turns. Also serves the idle bookkeeping.
    turn_at: Instant,
    /// Idle turns since the clock was last read.
    idle_turns: u32,
    /// Turns taken (the frame gauges are refreshed every [`TURNS_PER_GAUGE_UPDATE`]).
    turns: u32,
    /// Stage timing on (Config::stage_timing).
    stage_timing: bool,
    /// Stage timing: when frames were last taken off an RX ring with no TX kick since (CLOCK_MONOTONIC).
    rx_at_ns: Option<u64>,
    kneigh: Option<KernelNeighbors>,
    resolve: Vec<std::net::Ipv4Addr>,
    /// The capture (a debugging tool, off by default): one branch per RX batch and per TX frame.
    pcap: Option<Arc<PcapSink>>,
}

/// Start a worker thread.
/// Start a worker thread.
pub(crate) fn spawn(setup: WorkerSetup) -> io::Result<JoinHandle<WorkerExit>> {
    std::thread::Builder::new().name(format!("xdpstack-w{}", setup.index)).spawn(move || {
        if let Some(core) = setup.core {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                log::warn!("worker {}: could not pin to core {core}", setup.index);
            }
        }
        let announce = setup.announce;
        let mut w = Worker::new(setup);
        let report = w.run(announce);
        w.exit(report)
    })
}

/// A worker for run-to-completion mode: primed, ready for [`Worker::turn`] from application threads.
pub(crate) fn inline(setup: WorkerSetup) -> Worker {
    let announce = setup.announce;
    let mut w = Worker::new(setup);
    w.prime(announce);
    w
}

impl Worker {
    fn new(setup: WorkerSetup) -> Worker {
        let busy_poll = setup.shared.config.busy_poll;
        let stage_timing = setup.shared.config.stage_timing;
        Worker {
            index: setup.index,
            batch: RxBatch::new(&setup.umem, BATCH),
            socks: setup.socks,
            pool: setup.pool,
            iface: setup.iface,
            udp: UdpTable::default(),
            raw: RawTable::default(),
            tcp: tcp::TcpTable::new(
                setup.index,
                setup.tcp.clone(),
                setup.counters.clone(),
                setup.shared.mss(),
                Instant::now(),
            ),
            shared: setup.shared,
            counters: setup.counters,
            busy_poll,
            idle_since: None,
            idle_from: None,
            turn_at: Instant::now(),
            idle_turns: 0,
            turns: 0,
            stage_timing,
            rx_at_ns: None,
            kneigh: setup.kernel_neighbors.and_then(|ifindex| match KernelNeighbors::open(ifindex) {
                Ok(k) => Some(k),
                Err(e) => {
                    log::warn!("worker {}: no rtnetlink socket for neighbour resolution: {e}", setup.index);
                    None
                }
            }),
            resolve: Vec::new(),
            pcap: setup.pcap,
        }
    }

    /// Take the worker apart at the end: its report, and the parts the stack accounts for.
    pub(crate) fn exit(mut self, report: WorkerReport) -> WorkerExit {
        self.tcp.abandon_all();
        WorkerExit { report, socks: self.socks, pool: self.pool, batch: self.batch }
    }

    /// The final report of a worker that ran inline.
    pub(crate) fn finish_inline(mut self) -> WorkerExit {
        let report = self.report();
        self.exit(report)
    }

    /// Fill the fill rings and announce our addresses: before the first turn.
    fn prime(&mut self, announce: bool) {
        for s in &mut self.socks {
            s.refill(&mut self.pool);
        }
        if announce {
            let mut tx = XskTx {
                sock: &mut self.socks[0],
                pool: &mut self.pool,
                counters: &self.counters,
                pcap: self.pcap.as_deref(),
            };
            self.iface.announce(&mut tx);
        }
    }

    fn run(&mut self, announce: bool) -> WorkerReport {
        self.prime(announce);
        while let Some(work) = self.turn() {
            if work > 0 {
                self.idle_since = None;
                if let Some(from) = self.idle_from.take() {
                    let idle = self.turn_at.saturating_duration_since(from);
                    self.counters.worker_idle_ns.add(idle.as_nanos() as u64);
                }
            } else {
                self.idle(self.turn_at);
            }
        }
        self.report()
    }

    /// One turn of the loop: commands, a receive batch per socket, timers, TCP output, TX flush.
    /// Returns how much work there was, or None when told to stop.
    pub(crate) fn turn(&mut self) -> Option<usize> {
        let busy =
            !self.shared.workers[self.index].cmds.is_empty() || self.socks.iter_mut().any(|s| s.rx_ready());
        self.idle_turns += 1;
        if busy || self.idle_turns >= IDLE_TURNS_PER_CLOCK_READ {
            self.turn_at = Instant::now();
            self.idle_turns = 0;
        }
        let now = self.turn_at;
        self.turns = self.turns.wrapping_add(1);
        if self.turns % TURNS_PER_GAUGE_UPDATE == 0 {
            self.publish_frame_gauges();
        }
        {
            let mut work = self.drain_commands(now)?;
            work += self.receive(now);
            if self.iface.poll_at().is_some_and(|t| t <= now) {
                let mut tx = XskTx {
                    sock: &mut self.socks[0],
                    pool: &mut self.pool,
                    counters: &self.counters,
                    pcap: self.pcap.as_deref(),
                };
                self.iface.poll(now, &mut tx);
            }
            self.tcp.run_timers(now, &self.shared);
            {
                let mut tx = XskTx {
                    sock: &mut self.socks[0],
                    pool: &mut self.pool,
                    counters: &self.counters,
                    pcap: self.pcap.as_deref(),
                };
                work += self.tcp.flush(now, &mut self.iface, &mut tx, &self.shared);
            }
            self.resolve_through_kernel(now);
            self.share_learned();
            if self.stage_timing {
                self.flush_timed();
            } else {
                for s in &mut self.socks {
                    let _ = s.flush();
                }
            }
            Some(work)
        }
    }

    /// Flush the TX rings, timing the kicks and the time since the last receive (stage timing).
    fn flush_timed(&mut self) {
        for s in &mut self.socks {
            let kicks = s.counters().tx_kicks;
            let t0 = xsk::monotonic_ns();
            let _ = s.flush();
            if s.counters().tx_kicks == kicks {
                continue;
            }
            let t1 = xsk::monotonic_ns();
            self.counters.stage_kick_ns.add(t1 - t0);
            if let Some(rx) = self.rx_at_ns.take() {
                self.counters.stage_user_ns.add(t0.saturating_sub(rx));
                self.counters.stage_turnarounds.inc();
            }
        }
    }

    /// Stage timing: what the XDP stamps in front of the `n` frames just received say.
    fn time_received(&mut self, n: usize) {
        let t = xsk::monotonic_ns();
        for j in 0..n {
            if let Some(stamp) = self.batch.meta_u64(j).filter(|&s| s != 0 && s <= t) {
                self.counters.stage_xdp_to_rx_ns.add(t - stamp);
                self.counters.stage_rx_frames.inc();
            }
        }
        self.rx_at_ns.get_or_insert(t);
    }

    fn receive(&mut self, now: Instant) -> usize {
        let mut total = 0;
        for i in 0..self.socks.len() {
            let n = {
                let s = &mut self.socks[i];
                s.reap(&mut self.pool);
                s.refill(&mut self.pool);
                // Drivers that set need_wakeup on the fill ring (zero-copy NICs) wait for this poke.
                s.wake_rx();
                s.recv(&mut self.batch, BATCH)
            };
            if n == 0 {
                continue;
            }
            if self.stage_timing {
                self.time_received(n);
            }
            total += n;
            self.counters.xsk_rx_frames.add(n as u64);
            if let Some(pcap) = &self.pcap {
                for j in 0..n {
                    pcap.record(self.batch.frame(j));
                }
            }
            let mut tx = XskTx {
                sock: &mut self.socks[0],
                pool: &mut self.pool,
                counters: &self.counters,
                pcap: self.pcap.as_deref(),
            };
            let mut ep = WorkerEndpoints {
                udp: &self.udp,
                raw: &self.raw,
                tcp: &mut self.tcp,
                bufs: &self.shared.bufs,
                stack: &self.shared,
                index: self.index,
            };
            for j in 0..n {
                self.iface.receive(now, self.batch.frame_mut(j), &mut tx, &mut ep);
            }
            self.batch.recycle_into(&mut self.pool);
        }
        total
    }

    /// Handle queued commands; None when told to stop.
    fn drain_commands(&mut self, now: Instant) -> Option<usize> {
        let link = &self.shared.workers[self.index];
        let mut n = 0;
        while n < COMMANDS_PER_TURN {
            let Some(cmd) = link.cmds.pop() else { break };
            n += 1;
            match cmd {
                Command::UdpSend { src, dst, buf } => {
                    let mut tx = XskTx {
                        sock: &mut self.socks[0],
                        pool: &mut self.pool,
                        counters: &self.counters,
                        pcap: self.pcap.as_deref(),
                    };
                    // Failures (no route, TX full) are counted by the engine; UDP may drop.
                    let _ = self.iface.send_udp(now, src, dst, &buf, &mut tx);
                    self.shared.bufs.put(buf);
                }
                Command::UdpRegister(sock) => {
                    self.udp.insert(sock.clone());
                    sock.registered.fetch_add(1, Ordering::AcqRel);
                    sock.event.notify();
                }
                Command::UdpUnregister { local, fd } => self.udp.remove(local, fd),
                Command::RawRegister(sock) => {
                    self.raw.insert(sock.clone());
                    sock.registered.fetch_add(1, Ordering::AcqRel);
                    sock.event.notify();
                }
                Command::RawUnregister { protocol, fd } => self.raw.remove(protocol, fd),
                Command::RawSend { src, dst, protocol, header_included, mut buf } => {
                    let mut tx = XskTx {
                        sock: &mut self.socks[0],
                        pool: &mut self.pool,
                        counters: &self.counters,
                        pcap: self.pcap.as_deref(),
                    };
                    // Failures (no route, bad header, TX full) are counted by the engine (RawOutErrors).
                    let _ = if header_included {
                        self.iface.send_raw_header_included(now, dst, &mut buf, &mut tx)
                    } else {
                        self.iface.send_raw(now, src, dst, protocol, &buf, &mut tx)
                    };
                    self.shared.bufs.put(buf);
                }
                Command::TcpConnect(req) => self.tcp.connect(now, *req, &self.shared),
                Command::TcpListen(l) => {
                    self.tcp.listen(l.clone());
                    l.registered.fetch_add(1, Ordering::AcqRel);
                    l.event.notify();
                }
                Command::TcpUnlisten { local, id } => self.tcp.unlisten(local, id),
                Command::TcpKick { tuple, id, what } => self.tcp.kick(now, tuple, id, what),
                Command::TcpForeign { src, dst, repr, payload } => {
                    let seg = crate::iface::TcpInput { src, dst, repr, payload: &payload };
                    self.tcp.input(now, seg, &self.shared);
                    self.shared.bufs.put(payload);
                }
                Command::Neighbor { ip, mac } => {
                    let mut tx = XskTx {
                        sock: &mut self.socks[0],
                        pool: &mut self.pool,
                        counters: &self.counters,
                        pcap: self.pcap.as_deref(),
                    };
                    self.iface.learn(now, ip, mac, &mut tx);
                }
                Command::Snapshot(reply) => {
                    let mut rows = Vec::new();
                    self.tcp.snapshot(self.index, &mut rows);
                    self.udp.snapshot(self.shared.workers.len(), &mut rows);
                    self.raw.snapshot(self.shared.workers.len(), &mut rows);
                    // The requester may have given up: then nobody listens any more.
                    let _ = reply.try_send(crate::observe::WorkerSnapshot { rows });
                }
                Command::Stop => return None,
            }
        }
        if n > 0 {
            self.counters.worker_commands.add(n as u64);
            link.space.notify();
        }
        Some(n)
    }

    /// Shared-address mode: look the engine's unresolved next hops up in the kernel's neighbour table,
    /// asking the kernel to resolve those it does not know (the engine asks again on its retry timer).
    fn resolve_through_kernel(&mut self, now: Instant) {
        let Some(kn) = self.kneigh.as_mut() else {
            return;
        };
        self.resolve.extend(self.iface.take_kernel_resolutions());
        for ip in self.resolve.drain(..) {
            match kn.lookup(ip) {
                Ok(Some(mac)) => {
                    let mut tx = XskTx {
                        sock: &mut self.socks[0],
                        pool: &mut self.pool,
                        counters: &self.counters,
                        pcap: self.pcap.as_deref(),
                    };
                    self.iface.learn_from_wire(now, ip, EthernetAddress(mac), &mut tx);
                }
                Ok(None) => {
                    if let Err(e) = kn.request(ip) {
                        log::debug!("kernel neighbour request for {ip}: {e}");
                    }
                }
                Err(e) => log::debug!("kernel neighbour lookup for {ip}: {e}"),
            }
        }
    }

    /// Tell the other workers about neighbours this one learned from the wire.
    fn share_learned(&mut self) {
        let n = self.shared.workers.len();
        for (ip, mac) in self.iface.take_learned() {
            for (w, link) in self.shared.workers.iter().enumerate() {
                if w != self.index && n > 1 && link.cmds.push(Command::Neighbor { ip, mac }).is_ok() {
                    link.wake.notify();
                }
            }
        }
    }

    fn idle(&mut self, now: Instant) {
        self.idle_from.get_or_insert(now);
        if self.busy_poll {
            std::hint::spin_loop();
            return;
        }
        let since = *self.idle_since.get_or_insert(now);
        if now.duration_since(since) < SPIN_BEFORE_SLEEP {
            std::thread::yield_now();
            return;
        }
        self.sleep(now);
        self.idle_since = None;
    }

    /// Sleep until a frame arrives, an application queues a command, or a timer is due.
    fn sleep(&mut self, now: Instant) {
        self.publish_frame_gauges();
        let link = &self.shared.workers[self.index];
        link.wake.register();
        if !link.cmds.is_empty() {
            link.wake.unregister();
            return;
        }
        let next = [self.iface.poll_at(), self.tcp.poll_at()].into_iter().flatten().min();
        let timeout_ms = match next {
            Some(t) if t <= now => 0,
            Some(t) => (t - now).as_micros().div_ceil(1000).min(1000) as i32,
            None => 1000,
        };
        // Sleeping is not the hot path, but it happens once per packet at low rates: no allocation.
        let mut fds: [Option<BorrowedFd<'_>>; 65] = [None; 65];
        for (slot, s) in fds.iter_mut().zip(&self.socks) {
            *slot = Some(s.fd());
        }
        fds[self.socks.len().min(64)] = link.wake.fd().ok(); // made when the stack started
        poll_readable(&fds, timeout_ms);
        link.wake.drain();
        link.wake.unregister();
        self.counters.worker_sleeps.inc();
        // Time has passed: the next turn reads the clock (a timer may be what woke us).
        self.idle_turns = IDLE_TURNS_PER_CLOCK_READ;
    }

    fn publish_frame_gauges(&self) {
        let (fill, tx) = self.in_flight();
        self.counters.xsk_frames_free.set(self.pool.local_count() as u64);
        self.counters.xsk_frames_in_fill.set(fill as u64);
        self.counters.xsk_frames_in_tx.set(tx as u64);
        if self.index == 0 {
            self.counters.xsk_frames_global.set(self.pool.global_count() as u64);
        }
    }

    fn in_flight(&self) -> (i64, i64) {
        self.socks.iter().fold((0, 0), |(f, t), s| {
            let i = s.in_flight();
            (f + i.fill, t + i.tx)
        })
    }

    fn report(&mut self) -> WorkerReport {
        // Take back everything the kernel has finished with before counting.
        for s in &mut self.socks {
            let _ = s.flush();
            s.reap(&mut self.pool);
        }
        self.publish_frame_gauges();
        let (fill, tx) = self.in_flight();
        WorkerReport {
            index: self.index,
            frames_free: self.pool.local_count() as u64,
            frames_in_fill: fill,
            frames_in_tx: tx,
            xdp_stats: self.socks.iter().filter_map(|s| s.statistics().ok()).collect(),
        }
    }
}

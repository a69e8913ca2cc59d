//! The state application threads share with each other and reach the workers through: descriptors,
//! ports, command queues, the run-to-completion driver, and the program's maps.

use std::io;
use std::net::Ipv4Addr;
use std::net::SocketAddrV4;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_queue::{ArrayQueue, SegQueue};
use xdp_prog::{L4Proto, Steering};

use crate::config::Config;
use crate::counters::Counters;
use crate::phy::PcapSink;
use crate::plan::Plan;
use crate::socket::bufpool::BufPool;
use crate::socket::event::Event;
use crate::socket::ring::RingPool;
use crate::socket::tcp::TcpShared;
use crate::socket::{FdTable, PortTable, Proto, SocketEntry, UdpShared};
use crate::worker::tcp::Kick;
use crate::worker::{Command, InlineDriver};

/// One worker as application threads see it: its command queue and wake-ups.
#[derive(Debug)]
pub(crate) struct WorkerLink {
    pub cmds: ArrayQueue<Command>,
    /// Wakes the worker when it sleeps.
    pub wake: Event,
    /// Wakes application threads waiting for room in `cmds`.
    pub space: Event,
    pub counters: Arc<Counters>,
}

/// The state application threads share with each other and reach the workers through.
#[derive(Debug)]
pub(crate) struct StackShared {
    pub config: Config,
    pub workers: Vec<WorkerLink>,
    pub bufs: BufPool,
    pub(super) running: AtomicBool,
    pub(super) fds: Mutex<FdTable>,
    pub(super) ports: Mutex<PortTable>,
    /// The loaded program and its maps; taken (closed) at shutdown.
    pub(super) steering: Mutex<Option<Steering>>,
    /// Which worker owns which flow.
    pub plan: Plan,
    /// TCP MSS we advertise (interface MTU - 40).
    pub mss: u16,
    pub(super) next_id: AtomicU64,
    /// Run-to-completion mode: the worker, driven by application threads.
    pub(super) inline: Option<InlineDriver>,
    /// connect()ed TCP connections the workers have finished with: their tuples go back to the port
    /// table (lock-free for the worker; drained by the next application call that takes a port).
    pub(super) released: SegQueue<(SocketAddrV4, SocketAddrV4)>,
    /// Memory of the TCP byte rings of closed connections, for the next ones.
    pub rings: Arc<RingPool>,
    /// The capture (its counters join the stack's).
    pub pcap: Option<Arc<PcapSink>>,
    /// Duplicates of the AF_XDP sockets' descriptors, for reading the kernel's per-socket drop
    /// counters (`XDP_STATISTICS`) from any thread. Closed at shutdown before the sockets themselves,
    /// so that they do not keep the sockets (and their queues) alive.
    pub xsk_fds: Mutex<Vec<std::os::fd::OwnedFd>>,
}

/// Run-to-completion waiters yield the core after this many turns with nothing to do.
const IDLE_TURNS_BEFORE_YIELD: u32 = 32;

/// How long application calls wait for room in a command queue.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    NonBlocking,
    Until(Instant),
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl StackShared {
    /// A number never used before by this stack (connection and listener ids).
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The TCP MSS to advertise.
    pub(crate) fn mss(&self) -> u16 {
        self.mss
    }

    /// The worker that owns a TCP flow: the XDP program steers it there by the same hash.
    pub(crate) fn tcp_owner(&self, local: SocketAddrV4, remote: SocketAddrV4) -> usize {
        self.plan.owner(xdp_prog::flow_hash(*remote.ip(), *local.ip(), 6, remote.port(), local.port()))
    }

    /// A worker finished with a connect()ed TCP connection.
    pub(crate) fn release_tcp_tuple(&self, tuple: (SocketAddrV4, SocketAddrV4)) {
        self.released.push(tuple);
    }

    /// Return finished connections' tuples to the port table.
    fn drain_released(&self, ports: &mut PortTable) {
        while let Some((local, remote)) = self.released.pop() {
            if ports.release_tuple(local, remote) && self.config.shared_ports.is_some() {
                if let Some(s) = lock(&self.steering).as_ref() {
                    let _ = s.remove_port(L4Proto::Tcp, local.port());
                }
            }
        }
    }

    /// Our address for talking to `dst`: the one on its prefix, else the one on the gateway's.
    pub(crate) fn source_for(&self, dst: Ipv4Addr) -> Ipv4Addr {
        let on = |a: Ipv4Addr| self.config.addrs.iter().find(|c| c.contains_addr(a)).map(|c| c.address());
        on(dst).or_else(|| self.config.gateway.and_then(on)).unwrap_or_else(|| self.config.addrs[0].address())
    }

    /// A descriptor and a local address for a TCP connection to `remote` (RFC 6056 ports).
    pub(crate) fn bind_connect(
        &self,
        bound: Option<SocketAddrV4>,
        remote: SocketAddrV4,
    ) -> io::Result<(i32, SocketAddrV4)> {
        let ip = match bound.map(|b| *b.ip()) {
            Some(ip) if !ip.is_unspecified() => {
                if !self.has_addr(ip) {
                    return Err(io::Error::from_raw_os_error(libc::EADDRNOTAVAIL));
                }
                ip
            }
            _ => self.source_for(*remote.ip()),
        };
        let local = {
            let mut ports = lock(&self.ports);
            self.drain_released(&mut ports);
            ports.connect(ip, bound.map(|b| b.port()), remote)?
        };
        if self.config.shared_ports.is_some() {
            let added = lock(&self.steering).as_ref().map(|s| s.add_port(L4Proto::Tcp, local.port()));
            if let Some(Err(e)) = added {
                self.release_tcp_tuple((local, remote));
                return Err(e.into());
            }
        }
        Ok((self.fd_alloc(SocketEntry::Reserved), local))
    }

    /// Tell the worker that owns `conn` what the application did.
    pub(crate) fn kick_tcp(&self, conn: &TcpShared, what: Kick) -> io::Result<()> {
        let cmd = Command::TcpKick { tuple: (conn.local, conn.remote), id: conn.id, what };
        self.push_command(conn.worker, cmd, Wait::Until(Instant::now() + Duration::from_secs(1)))
    }

    pub(crate) fn fd_alloc(&self, entry: SocketEntry) -> i32 {
        lock(&self.fds).alloc(entry)
    }

    pub(crate) fn fd_table_set(&self, fd: i32, entry: SocketEntry) {
        lock(&self.fds).set(fd, entry);
    }

    pub(crate) fn fd_free(&self, fd: i32) {
        lock(&self.fds).free(fd);
    }

    /// Wait until `ready()` or the deadline: in run-to-completion mode by driving the stack while
    /// spinning, in busy-poll mode by spinning, otherwise by sleeping on `event` until a worker wakes us.
    pub(crate) fn wait(
        &self,
        event: &Event,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> bool,
    ) -> bool {
        match &self.inline {
            Some(driver) => {
                let _waiting = driver.enter();
                let (mut n, mut idle) = (0u32, 0u32);
                // Start of the current stretch with nothing to do (for WorkerIdleNs).
                let mut idle_from: Option<Instant> = None;
                let idle_ns = &self.workers[0].counters.worker_idle_ns;
                // The stretch ends where the turn that found work began (or now, when there is none).
                let end_idle = |from: &mut Option<Instant>, at: Option<Instant>| {
                    if let Some(t) = from.take() {
                        let end = at.unwrap_or_else(Instant::now);
                        idle_ns.add(end.saturating_duration_since(t).as_nanos() as u64);
                    }
                };
                loop {
                    if ready() {
                        end_idle(&mut idle_from, None);
                        return true;
                    }
                    let (work, turn_at) = driver.drive_at();
                    if work == 0 {
                        idle_from.get_or_insert_with(Instant::now);
                        idle += 1;
                        // Several threads waiting on one core would otherwise take turns at it in
                        // scheduler slices of milliseconds: after a few idle turns, let the others run.
                        // Alone, there is nobody to yield to (and a yield is a system call).
                        if idle % IDLE_TURNS_BEFORE_YIELD == 0 && driver.crowded() {
                            std::thread::yield_now();
                        }
                    } else {
                        end_idle(&mut idle_from, turn_at);
                        idle = 0;
                    }
                    n = n.wrapping_add(1);
                    if n % 64 == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
                        end_idle(&mut idle_from, None);
                        return ready();
                    }
                }
            }
            None if self.config.busy_poll => Event::spin_until(deadline, ready),
            None => event.wait_until(deadline, ready),
        }
    }

    /// True in run-to-completion mode (no worker threads).
    pub(crate) fn is_inline(&self) -> bool {
        self.inline.is_some()
    }

    /// Give the connections of a socket table the descriptors the application holds for them.
    pub(crate) fn name_connections(&self, rows: &mut [crate::observe::SocketInfo]) {
        let by_id: std::collections::HashMap<u64, i32> = lock(&self.fds)
            .iter()
            .filter_map(|(fd, e)| match e {
                SocketEntry::Tcp(w) => w.upgrade().map(|s| (s.id, fd)),
                _ => None,
            })
            .collect();
        for r in rows.iter_mut().filter(|r| r.kind == crate::observe::SocketKind::Tcp && r.fd.is_none()) {
            r.fd = by_id.get(&r.id).copied();
        }
    }

    /// All counters, summed over workers, followed by the XDP program's counters and the UMEM size.
    pub(crate) fn counters(&self, frames: u32) -> Vec<(&'static str, u64)> {
        let mut all = Counters::sum(self.workers.iter().map(|w| &*w.counters));
        if let Some(Ok(x)) = lock(&self.steering).as_ref().map(Steering::counters) {
            all.extend([
                ("XdpSteered", x.steered),
                ("XdpPassed", x.passed),
                ("XdpMalformed", x.malformed),
                ("XdpNoSocket", x.no_socket),
                ("XdpDropped", x.dropped),
            ]);
        }
        all.push(("XskFramesTotal", u64::from(frames)));
        // The kernel's own counters of the AF_XDP sockets: what it dropped before the stack saw it.
        let mut k = crate::xsk::XdpStatistics::default();
        for fd in lock(&self.xsk_fds).iter() {
            if let Ok(s) = crate::xsk::sys_statistics(fd.as_fd()) {
                k.rx_dropped += s.rx_dropped;
                k.rx_invalid_descs += s.rx_invalid_descs;
                k.tx_invalid_descs += s.tx_invalid_descs;
                k.rx_ring_full += s.rx_ring_full;
                k.rx_fill_ring_empty_descs += s.rx_fill_ring_empty_descs;
                k.tx_ring_empty_descs += s.tx_ring_empty_descs;
            }
        }
        all.extend([
            ("XskRxDropped", k.rx_dropped),
            ("XskRxRingFull", k.rx_ring_full),
            ("XskFillRingEmpty", k.rx_fill_ring_empty_descs),
            ("XskRxInvalidDescs", k.rx_invalid_descs),
            ("XskTxInvalidDescs", k.tx_invalid_descs),
            ("XskTxRingEmpty", k.tx_ring_empty_descs),
        ]);
        all.extend(self.pcap_counters().into_iter().flatten());
        all
    }

    /// The capture's counters (none without a capture).
    pub(super) fn pcap_counters(&self) -> Option<[(&'static str, u64); 2]> {
        let (written, dropped) = self.pcap.as_ref()?.stats();
        Some([("PcapFrames", written), ("PcapFramesDropped", dropped)])
    }

    /// Run-to-completion mode: drive the stack for one turn (nothing otherwise).
    pub(crate) fn drive(&self) -> usize {
        self.inline.as_ref().map_or(0, InlineDriver::drive)
    }

    pub(crate) fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    pub(crate) fn check_running(&self) -> io::Result<()> {
        if self.is_running() {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::NotConnected, "the xdpstack stack has stopped"))
        }
    }

    /// The worker that sends for descriptor `fd`.
    pub(crate) fn home_worker(&self, fd: i32) -> usize {
        fd as usize % self.workers.len()
    }

    pub(crate) fn is_broadcast(&self, a: Ipv4Addr) -> bool {
        a == Ipv4Addr::BROADCAST || self.config.addrs.iter().any(|c| c.broadcast() == Some(a))
    }

    fn has_addr(&self, a: Ipv4Addr) -> bool {
        self.config.addrs.iter().any(|c| c.address() == a)
    }

    /// The synchronous part of routing, so that `send_to` fails the way a kernel socket does.
    pub(crate) fn check_route(&self, dst: Ipv4Addr) -> io::Result<()> {
        if self.has_addr(dst) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{dst} is the stack's own address; xdpstack does not loop traffic back to itself"),
            ));
        }
        if dst.is_multicast() {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "xdpstack does not send multicast"));
        }
        let on_link = dst == Ipv4Addr::BROADCAST || self.config.addrs.iter().any(|c| c.contains_addr(dst));
        if !on_link && self.config.gateway.is_none() {
            return Err(io::Error::from_raw_os_error(libc::ENETUNREACH));
        }
        Ok(())
    }

    /// Allocate a descriptor and bind `addr` for it.
    pub(crate) fn bind_port(&self, proto: Proto, addr: SocketAddrV4) -> io::Result<(i32, SocketAddrV4)> {
        let ip = *addr.ip();
        if !(ip.is_unspecified() || self.has_addr(ip) || self.is_broadcast(ip)) {
            return Err(io::Error::from_raw_os_error(libc::EADDRNOTAVAIL));
        }
        let fd = lock(&self.fds).alloc(SocketEntry::Reserved);
        let bound = {
            let mut ports = lock(&self.ports);
            self.drain_released(&mut ports);
            ports.bind(proto, addr, fd)
        };
        let local = match bound {
            Ok(l) => l,
            Err(e) => {
                lock(&self.fds).free(fd);
                return Err(e);
            }
        };
        // The XDP program must send this port to the stack: broadcasts to it in full-address mode, and
        // everything to it in shared-address mode.
        let added = match lock(&self.steering).as_ref() {
            Some(s) => s.add_port(l4(proto), local.port()).map_err(io::Error::from),
            None => self.check_running(),
        };
        if let Err(e) = added {
            self.release_port(proto, local, fd);
            return Err(e);
        }
        Ok((fd, local))
    }

    pub(crate) fn release_port(&self, proto: Proto, local: SocketAddrV4, fd: i32) {
        let still_bound = {
            let mut ports = lock(&self.ports);
            ports.release(proto, local, fd);
            ports.is_bound(proto, local.port())
        };
        let configured =
            self.config.shared_ports.as_ref().is_some_and(|p| p.contains(&(proto, local.port())));
        if !still_bound && !configured {
            if let Some(s) = lock(&self.steering).as_ref() {
                let _ = s.remove_port(l4(proto), local.port());
            }
        }
        lock(&self.fds).free(fd);
    }

    pub(crate) fn fd_table_set_udp(&self, fd: i32, s: &Arc<UdpShared>) {
        self.fd_table_set(fd, crate::socket::udp_entry(s));
    }

    /// Queue a command for worker `w`, waiting for room as `wait` allows.
    pub(crate) fn push_command(&self, w: usize, cmd: Command, wait: Wait) -> io::Result<()> {
        let link = &self.workers[w];
        let mut cmd = cmd;
        loop {
            match link.cmds.push(cmd) {
                Ok(()) => {
                    link.wake.notify();
                    // Run to completion: act on it now.
                    self.drive();
                    return Ok(());
                }
                Err(back) => cmd = back,
            }
            self.check_running()?;
            let deadline = match wait {
                Wait::NonBlocking => return Err(io::ErrorKind::WouldBlock.into()),
                Wait::Until(d) => d,
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "send timed out waiting for the worker"));
            }
            // Shutdown signals `space` too, so a stopped stack wakes us.
            self.wait(&link.space, Some(deadline), || !link.cmds.is_full() || !self.is_running());
        }
    }
}

pub(super) fn l4(p: Proto) -> L4Proto {
    match p {
        Proto::Udp => L4Proto::Udp,
        Proto::Tcp => L4Proto::Tcp,
    }
}

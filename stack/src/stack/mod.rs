//! `Stack`: start-up (XDP program, UMEM, AF_XDP sockets, pinned workers), the state
//! that application threads share (descriptors, ports, command queues), and clean shutdown.

use std::io;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_queue::{ArrayQueue, SegQueue};
use xdp_prog::{AddrKind, AttachedMode, SteerConfig, Steering, XdpLink};

use crate::config::Config;
use crate::counters::Counters;
use crate::iface::{IfaceConfig, Interface};
use crate::netdev::NetDev;
use crate::observe::control::{Claim, ControlServer};
use crate::phy::PcapSink;
use crate::plan::Plan;
use crate::rand::Rng;
use crate::socket::bufpool::BufPool;
use crate::socket::event::Event;
use crate::socket::ring::RingPool;
use crate::socket::{FdTable, PortTable};
use crate::wire::EthernetAddress;
use crate::worker::{self, Command, InlineDriver, WorkerExit, WorkerReport, WorkerSetup};
use crate::xsk::{self, FrameAccount, Share, SocketConfig, Umem, UmemConfig, XskSocket};

mod shared;

use shared::{l4, lock};
pub(crate) use shared::{StackShared, Wait, WorkerLink};

/// What start-up attached, for logs and tools.
#[derive(Debug, Clone)]
pub struct StackInfo {
    /// The interface.
    pub netdev: NetDev,
    /// XDP mode the program runs in.
    pub xdp_mode: AttachedMode,
    /// True when every AF_XDP socket is in zero-copy mode.
    pub zero_copy: bool,
    /// The socket plan (which worker owns which queue).
    pub plan: Plan,
    /// Core of each worker (None: not pinned).
    pub cores: Vec<Option<usize>>,
    /// Frames in the UMEM.
    pub frames: u32,
    /// Bytes per frame.
    pub frame_size: u32,
}

/// A running stack. Dropping it (or calling [`Stack::shutdown`]) detaches the XDP program, stops and
/// joins the workers and closes the AF_XDP sockets.
#[derive(Debug)]
pub struct Stack {
    shared: Arc<StackShared>,
    threads: Vec<JoinHandle<WorkerExit>>,
    link: Option<XdpLink>,
    umem: Arc<Umem>,
    info: StackInfo,
    /// The control socket's thread (stopped first at shutdown).
    control: Option<ControlServer>,
}

/// What shutdown found.
#[derive(Debug, Clone)]
pub struct ShutdownReport {
    /// Each worker's report.
    pub workers: Vec<WorkerReport>,
    /// Frames in the UMEM.
    pub frames_total: u64,
    /// Frames accounted for: free lists, the global pool, fill rings, TX rings.
    pub frames_accounted: i64,
    /// Counters at the end.
    pub counters: Vec<(&'static str, u64)>,
}

impl ShutdownReport {
    /// Frames that are nowhere (or, if negative, counted twice): must be zero.
    pub fn frames_lost(&self) -> i64 {
        self.frames_total as i64 - self.frames_accounted
    }
}

fn default_cores(workers: usize) -> Vec<Option<usize>> {
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    if ids.is_empty() {
        return vec![None; workers];
    }
    // The last cores, so that core 0 (interrupts, the shell) stays with applications.
    (0..workers).map(|i| Some(ids[(ids.len() - 1 - (i % ids.len())) % ids.len()].id)).collect()
}

impl Stack {
    /// Start a stack on `config.iface` in the calling thread's network namespace. Needs root (or
    /// CAP_NET_ADMIN, CAP_BPF, CAP_NET_RAW and CAP_IPC_LOCK).
    pub fn start(config: Config) -> io::Result<Stack> {
        config.validate()?;
        let netdev = NetDev::lookup(&config.iface)?;
        let frame_size = if netdev.mtu as usize + 18 + 256 <= 2048 { 2048 } else { 4096 };
        if netdev.mtu as usize + 18 + 256 > 4096 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "MTU {} of {} is too large for AF_XDP frames (at most 3822)",
                    netdev.mtu, netdev.name
                ),
            ));
        }
        // Claim the instance name before touching the interface: a second stack of the same name
        // fails here, with the first one's pid.
        let claim = match config.control {
            true => Some(Claim::take(&config.run_dir(), config.instance_name())?),
            false => None,
        };
        let plan = Plan::new(netdev.rx_queues, config.workers, xdp_prog::XSKMAP_SIZE)?;
        let pcap = config.pcap.as_ref().map(PcapSink::create).transpose()?.map(Arc::new);
        let shared_mode = config.shared_ports.is_some();

        let steering = Steering::load()?;
        steering
            .set_config(&SteerConfig { port_filter: shared_mode, socks_per_queue: plan.socks_per_queue })?;
        for cidr in &config.addrs {
            steering.add_addr(cidr.address(), AddrKind::Unicast)?;
            if let Some(b) = cidr.broadcast() {
                steering.add_addr(b, AddrKind::Broadcast)?;
            }
        }
        steering.add_addr(Ipv4Addr::BROADCAST, AddrKind::Broadcast)?;
        if config.stage_timing {
            steering.set_stamp(true)?;
        }
        for (proto, port) in config.shared_ports.iter().flatten() {
            steering.add_port(l4(*proto), *port)?;
        }

        let n_socks = plan.sockets.len() as u32;
        let frames = config.frames_per_socket * n_socks;
        let umem = Umem::new(UmemConfig {
            frame_size,
            frame_count: frames,
            fill_size: config.ring_size,
            comp_size: config.ring_size,
        })?;
        let mut pools = xsk::new_shared_pools(&umem, config.workers)?;
        let sock_cfg = SocketConfig {
            rx_size: config.ring_size,
            tx_size: config.ring_size,
            mode: config.bind_mode,
            need_wakeup: true,
        };
        // All sockets are made here, on one thread, in plan order (each queue's owner first); later
        // sockets name the socket whose UMEM or queue they share.
        let mut all: Vec<XskSocket> = Vec::with_capacity(plan.sockets.len());
        for slot in &plan.sockets {
            let owner = all.iter().find(|s| s.queue_id() == slot.queue);
            let share = match (all.first(), owner) {
                (None, _) => Share::First,
                (Some(_), Some(queue_owner)) => Share::SameQueue { queue_owner },
                (Some(umem_owner), None) => Share::NewQueue { umem_owner },
            };
            let sock = XskSocket::new(&umem, netdev.ifindex, slot.queue, &sock_cfg, share)?;
            steering.set_socket(slot.xskmap_index, sock.fd())?;
            all.push(sock);
        }
        let zero_copy = all.iter().all(|s| s.is_zero_copy());
        let xsk_fds = all.iter().map(|s| s.fd().try_clone_to_owned()).collect::<io::Result<Vec<_>>>()?;
        let link = steering.attach(netdev.ifindex, config.xdp_mode)?;
        let mut socks: Vec<Vec<XskSocket>> = (0..config.workers).map(|_| Vec::new()).collect();
        for (slot, sock) in plan.sockets.iter().zip(all) {
            socks[slot.worker].push(sock);
        }

        let cores = match &config.cores {
            Some(c) => c.iter().take(config.workers).map(|c| Some(*c)).collect(),
            None => default_cores(config.workers),
        };
        let counters: Vec<Arc<Counters>> =
            (0..config.workers).map(|_| Arc::new(Counters::default())).collect();
        let mut links = Vec::with_capacity(config.workers);
        for c in &counters {
            let wake = Event::new();
            wake.fd()?; // a sleeping worker polls it with its rings: made now, not on the worker's path
            links.push(WorkerLink {
                cmds: ArrayQueue::new(config.command_queue_len),
                wake,
                space: Event::new(),
                counters: c.clone(),
            });
        }
        let mut rng = Rng::from_entropy();
        let shared = Arc::new(StackShared {
            workers: links,
            bufs: BufPool::new(config.socket_queue_len * 2 + config.command_queue_len),
            running: AtomicBool::new(true),
            fds: Mutex::new(FdTable::default()),
            ports: Mutex::new(PortTable::new(Rng::with_seed(rng.next_u64()), shared_mode)),
            steering: Mutex::new(Some(steering)),
            plan: plan.clone(),
            mss: (netdev.mtu.saturating_sub(40)).clamp(536, 65535) as u16,
            next_id: AtomicU64::new(1),
            inline: config.inline.then(InlineDriver::new),
            released: SegQueue::new(),
            rings: Arc::new(RingPool::new(config.ring_cache_bytes)),
            pcap: pcap.clone(),
            xsk_fds: Mutex::new(xsk_fds),
            config,
        });
        let info = StackInfo {
            netdev: netdev.clone(),
            xdp_mode: link.mode(),
            zero_copy,
            plan,
            cores: cores.clone(),
            frames,
            frame_size,
        };
        let mut iface_cfg = IfaceConfig::new(EthernetAddress(netdev.mac), shared.config.addrs.clone());
        iface_cfg.gateway = shared.config.gateway;
        iface_cfg.mtu = netdev.mtu as usize;
        iface_cfg.vlan = shared.config.vlan;
        iface_cfg.shared_address = shared_mode;
        iface_cfg.arp = shared.config.arp.clone();
        if shared_mode {
            // Resolutions go through the kernel's table, which answers in microseconds once the
            // kernel's own ARP exchange is done: look again often, for about as long in all.
            iface_cfg.arp.retry_interval = Duration::from_millis(100);
            iface_cfg.arp.max_requests = 30;
        }
        iface_cfg.reasm = shared.config.reasm.clone();
        let tcp_config = Arc::new(shared.config.tcp.clone());

        let mut stack = Stack {
            shared: shared.clone(),
            threads: Vec::new(),
            link: Some(link),
            umem: umem.clone(),
            info,
            control: None,
        };
        for (index, sock_list) in socks.into_iter().enumerate().rev() {
            let setup = WorkerSetup {
                index,
                core: cores[index],
                socks: sock_list,
                pool: pools.pop().ok_or_else(|| io::Error::other("frame pools do not match the workers"))?,
                umem: umem.clone(),
                iface: Interface::new(iface_cfg.clone(), counters[index].clone(), rng.next_u64() as u16),
                shared: shared.clone(),
                counters: counters[index].clone(),
                announce: index == 0,
                kernel_neighbors: shared_mode.then_some(netdev.ifindex),
                tcp: tcp_config.clone(),
                pcap: pcap.clone(),
            };
            if let Some(driver) = &stack.shared.inline {
                driver.install(worker::inline(setup));
                continue;
            }
            match worker::spawn(setup) {
                Ok(h) => stack.threads.push(h),
                Err(e) => {
                    stack.stop();
                    return Err(e);
                }
            }
        }
        stack.threads.reverse();
        if let Some(claim) = claim {
            let cfg = &stack.shared.config;
            let name = cfg.instance_name().to_string();
            let refresh = cfg.net_files_refresh;
            match ControlServer::spawn(claim, stack.shared.clone(), stack.info.clone(), name, refresh) {
                Ok(c) => stack.control = Some(c),
                Err(e) => {
                    stack.stop();
                    return Err(e);
                }
            }
        }
        log::info!(
            "attached to {} (ifindex {}) in {:?} XDP mode, {} queue(s), {} socket(s), {} mode, {} worker(s) on cores {:?}",
            stack.info.netdev.name,
            stack.info.netdev.ifindex,
            stack.info.xdp_mode,
            stack.info.netdev.rx_queues,
            stack.info.plan.sockets.len(),
            if stack.info.zero_copy { "zero-copy" } else { "copy" },
            stack.shared.workers.len(),
            stack.info.cores,
        );
        Ok(stack)
    }

    pub(crate) fn shared(&self) -> &Arc<StackShared> {
        &self.shared
    }

    /// What start-up attached.
    pub fn info(&self) -> &StackInfo {
        &self.info
    }

    /// Worker threads this stack runs (none in run-to-completion mode).
    pub fn worker_threads(&self) -> usize {
        self.threads.len()
    }

    /// All counters, summed over workers, followed by the XDP program's counters.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        self.shared.counters(self.info.frames)
    }

    /// Every socket of the stack as the workers see it, as `ss -a` lists them: TCP connections in
    /// every state (including SYN-RECV and TIME-WAIT ones no descriptor names), listeners, UDP
    /// sockets, each with its descriptor (if the application holds one), its worker, and the TCP
    /// internals. Asks every worker (a command each) and waits up to 2 s for the answers; allocates,
    /// but only when called.
    pub fn socket_table(&self) -> io::Result<Vec<crate::observe::SocketInfo>> {
        crate::observe::socket_table(&self.shared, crate::observe::SNAPSHOT_TIMEOUT)
    }

    /// The directory of this stack's control socket and `/proc`-format files (`RUN_DIR/NAME`), if
    /// the control socket is running.
    pub fn control_dir(&self) -> Option<&std::path::Path> {
        self.control.as_ref().map(|c| c.dir())
    }

    /// The socket table: every open socket with its descriptor, addresses and queued data.
    pub fn sockets(&self) -> Vec<crate::socket::SocketSummary> {
        lock(&self.shared.fds).iter().filter_map(|(fd, e)| e.summary(fd)).collect()
    }

    /// Drop a seeded fraction (parts per million) of the frames steered to the stack, in the XDP
    /// program: loss on the real receive path, for tests and experiments (0 turns it off). Loss on the
    /// send path needs a program on the other end, e.g. `xdp_prog::Lossy` on the peer.
    pub fn set_loss(&self, drop_ppm: u32, seed: u64) -> io::Result<()> {
        match lock(&self.shared.steering).as_ref() {
            Some(s) => s.set_loss(drop_ppm, seed).map_err(io::Error::from),
            None => self.shared.check_running(),
        }
    }

    /// Run-to-completion mode: drive the stack for one turn (receive, timers, send) and return how
    /// much work there was. A no-op with worker threads. Applications that do not block on sockets call
    /// this in their loop.
    pub fn poll(&self) -> usize {
        self.shared.drive()
    }

    /// Each worker's own counters.
    pub fn worker_counters(&self) -> Vec<Vec<(&'static str, u64)>> {
        self.shared.workers.iter().map(|w| w.counters.iter().collect()).collect()
    }

    /// One counter by name (0 when unknown).
    pub fn counter(&self, name: &str) -> u64 {
        self.counters().into_iter().find(|(n, _)| *n == name).map_or(0, |(_, v)| v)
    }

    /// Detach, stop and join the workers, account for every frame, and close the sockets (those that
    /// share a queue before the queue's owner).
    fn stop(&mut self) -> (Vec<WorkerReport>, i64) {
        // The control thread talks to the workers: it goes first (and takes its socket with it).
        self.control.take();
        // Detach first: from here on the kernel gets the traffic again.
        self.link.take();
        lock(&self.shared.xsk_fds).clear();
        self.shared.running.store(false, Ordering::Release);
        // Wake every application thread blocked on a socket or on a full command queue.
        for (_, entry) in lock(&self.shared.fds).iter() {
            entry.wake();
        }
        for (w, link) in self.shared.workers.iter().enumerate() {
            link.space.signal();
            let _ = self.shared.push_command(
                w,
                Command::Stop,
                Wait::Until(Instant::now() + Duration::from_secs(1)),
            );
            link.wake.signal();
        }
        let mut exits: Vec<WorkerExit> = self.threads.drain(..).filter_map(|h| h.join().ok()).collect();
        if let Some(w) = self.shared.inline.as_ref().and_then(InlineDriver::take) {
            exits.push(w.finish_inline());
        }
        let pools: Vec<_> = exits.iter().map(|e| &e.pool).collect();
        let socks: Vec<_> = exits.iter().flat_map(|e| &e.socks).collect();
        let batches: Vec<_> = exits.iter().map(|e| &e.batch).collect();
        let accounted = FrameAccount::of(&pools, &socks, &batches).total();
        let reports = exits.iter().map(|e| e.report.clone()).collect();
        let (mut owners, mut others): (Vec<XskSocket>, Vec<XskSocket>) =
            exits.into_iter().flat_map(|e| e.socks).partition(|s| s.owns_fill_ring());
        others.clear();
        owners.clear();
        // Close the program and its maps now, even if applications still hold sockets.
        lock(&self.shared.steering).take();
        if let Some(p) = &self.shared.pcap {
            match p.flush() {
                Ok(()) => {
                    let (written, dropped) = p.stats();
                    log::info!("pcap: {written} frames in {} ({dropped} over the cap)", p.path().display());
                }
                Err(e) => log::warn!("pcap: flushing {} failed: {e}", p.path().display()),
            }
        }
        (reports, accounted)
    }

    /// Stop the stack and report what became of every frame.
    pub fn shutdown(mut self) -> ShutdownReport {
        let (workers, accounted) = self.stop();
        let mut counters = Counters::sum(self.shared.workers.iter().map(|w| &*w.counters));
        counters.extend(self.shared.pcap_counters().into_iter().flatten());
        ShutdownReport {
            frames_total: u64::from(self.umem.frame_count()),
            frames_accounted: accounted,
            counters,
            workers,
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if self.shared.is_running() {
            self.stop();
        }
    }
}

//! Who runs where. One veth testbed serves every pairing in turn:
//!
//! ```text
//!   netns <bed>-p (client side)                netns <bed>-s (server side)
//!   kernel 10.77.0.1 on xs<bed>p               kernel 10.77.0.2 on xs<bed>s   (kernel-kernel only)
//!   client stack 10.77.0.3 (stack-stack)  <->  server stack 10.77.0.2         (kernel-stack, stack-stack)
//!                                              bare AF_XDP reflector 10.77.0.2 (kernel-reflector)
//! ```
//!
//! Clients run on core 0, servers (and a server stack's worker) on core 1 of the 2-core machine; the
//! report prints the cores.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use xdpstack::testbed::Testbed;
use xdpstack::{Config, Stack};

use crate::results::Mode;

/// The server's address.
pub const SERVER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The kernel client's address.
pub const KERNEL_CLIENT: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The client stack's address (stack-stack).
pub const STACK_CLIENT: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 3);
/// Port of every benchmark server.
pub const PORT: u16 = 7777;

/// Cores: (client, server).
#[derive(Debug, Clone, Copy)]
pub struct Cores {
    /// Where clients run.
    pub client: usize,
    /// Where servers and server-side stacks run.
    pub server: usize,
}

impl Cores {
    /// The last two cores (0 and 1 on this machine kind).
    pub fn detect() -> Cores {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        Cores { client: n.saturating_sub(2), server: n.saturating_sub(1) }
    }
}

/// Pin the calling thread.
pub fn pin(core: usize) {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        log::warn!("could not pin to core {core}");
    }
}

/// The testbed for a whole run.
pub struct Bed {
    /// The namespaces and links.
    pub tb: Testbed,
    /// Core assignment.
    pub cores: Cores,
    /// Capture every stack's frames into this directory (`server-<n>.pcap`, `client-<n>.pcap`).
    pub pcap_dir: Option<std::path::PathBuf>,
    /// Stacks started so far (numbers the capture files).
    started: std::cell::Cell<u32>,
}

impl Bed {
    /// Make a fresh testbed.
    pub fn new() -> io::Result<Bed> {
        let tb = Testbed::unique(1)?;
        crate::cleanup::namespace(&tb.peer_ns);
        crate::cleanup::namespace(&tb.stack_ns);
        Ok(Bed { tb, cores: Cores::detect(), pcap_dir: None, started: std::cell::Cell::new(0) })
    }

    /// The server address.
    pub fn server(&self) -> SocketAddrV4 {
        SocketAddrV4::new(SERVER, PORT)
    }

    /// Give the server-side kernel the server address (kernel-kernel), or take it away.
    pub fn kernel_server_addr(&self, on: bool) -> io::Result<()> {
        let verb = if on { "add" } else { "del" };
        let st = self
            .tb
            .stack_cmd("ip")
            .args(["addr", verb, "10.77.0.2/24", "dev", &self.tb.stack_if])
            .status()?;
        if !st.success() && on {
            return Err(io::Error::other("cannot give the server namespace its kernel address"));
        }
        // A fresh address: let the peer forget any MAC it learned for 10.77.0.2 from a stack.
        let _ = self.tb.peer_cmd("ip").args(["neigh", "flush", "dev", &self.tb.peer_if]).status();
        Ok(())
    }

    /// Receive packet steering of the server end to the server core (on) or off. On veth, a frame's
    /// receive processing otherwise runs on the core that sent it, so the kernel server's core would
    /// not carry its own protocol work; the stack's is on its core anyway (only XDP runs before).
    pub fn server_rps(&self, on: bool) -> io::Result<()> {
        let mask = if on { format!("{:x}", 1u64 << self.cores.server) } else { "0".into() };
        let path = format!("/sys/class/net/{}/queues/rx-0/rps_cpus", self.tb.stack_if);
        let st = self.tb.stack_cmd("sh").args(["-c", &format!("echo {mask} > {path}")]).status()?;
        if !st.success() {
            return Err(io::Error::other(format!("cannot write {path} in the server namespace")));
        }
        Ok(())
    }

    /// A stack configuration for the server side in `mode`: run to completion when busy-polling (the
    /// server thread drives it, one core), a pinned worker that sleeps when blocking.
    pub fn server_stack_config(&self, mode: Mode) -> Config {
        let mut cfg = self.tb.stack_config();
        apply_mode(&mut cfg, mode, self.cores.server);
        cfg
    }

    /// Start the server-side stack.
    pub fn start_server_stack(&self, mode: Mode) -> io::Result<Stack> {
        self.start_server_stack_with(self.server_stack_config(mode))
    }

    /// Start the server-side stack with `cfg` (from [`Bed::server_stack_config`], adjusted).
    pub fn start_server_stack_with(&self, cfg: Config) -> io::Result<Stack> {
        let _ = self.tb.peer_cmd("ip").args(["neigh", "flush", "dev", &self.tb.peer_if]).status();
        let cfg = self.with_pcap(cfg, "server");
        self.tb.start_stack(cfg)
    }

    /// `cfg` capturing to the next `<side>-<n>.pcap` of `--pcap` (unchanged without it).
    fn with_pcap(&self, mut cfg: Config, side: &str) -> Config {
        if let Some(dir) = &self.pcap_dir {
            let n = self.started.get() + 1;
            self.started.set(n);
            let path = dir.join(format!("{side}-{n}.pcap"));
            eprintln!("  capturing the {side} stack's frames to {}", path.display());
            cfg.pcap = Some(xdpstack::phy::PcapConfig::new(path));
        }
        cfg
    }

    /// Start the client-side stack (stack-stack) on the peer's end, as 10.77.0.3.
    pub fn start_client_stack(&self, mode: Mode) -> io::Result<Stack> {
        self.start_client_stack_with(self.client_stack_config(mode)?)
    }

    /// A stack configuration for the client side (stack-stack) in `mode`.
    pub fn client_stack_config(&self, mode: Mode) -> io::Result<Config> {
        let cidr = xdpstack::wire::Ipv4Cidr::new(STACK_CLIENT, 24)
            .map_err(|e| io::Error::other(format!("{e:?}")))?;
        let mut cfg = Config::new(self.tb.peer_if.clone(), cidr);
        apply_mode(&mut cfg, mode, self.cores.client);
        Ok(cfg)
    }

    /// Start the client-side stack with `cfg` (from [`Bed::client_stack_config`], adjusted).
    pub fn start_client_stack_with(&self, cfg: Config) -> io::Result<Stack> {
        let cfg = self.with_pcap(cfg, "client");
        let peer_ns = self.tb.peer_ns.clone();
        xdpstack::testbed::in_netns(&peer_ns, move || Stack::start(cfg))?
    }

    /// Run `f` in the client namespace (kernel sockets there).
    pub fn in_client_ns<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> io::Result<R> {
        self.tb.in_peer_ns(f)
    }

    /// Run `f` in the server namespace.
    pub fn in_server_ns<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> io::Result<R> {
        self.tb.in_stack_ns(f)
    }
}

fn apply_mode(cfg: &mut Config, mode: Mode, core: usize) {
    match mode {
        Mode::BusyPoll => {
            cfg.inline = true;
            cfg.busy_poll = true;
        }
        Mode::Blocking => {
            cfg.cores = Some(vec![core]);
        }
    }
    // Faster neighbour resolution does not matter here; a large frame pool and rings do.
    cfg.tcp.delayed_ack = Duration::from_millis(40);
}

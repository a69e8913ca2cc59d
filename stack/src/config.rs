//! `Config`: everything needed to start a stack, with its defaults and the checks made before
//! anything is attached.

use std::io;
use std::net::Ipv4Addr;
use std::time::Duration;

use xdp_prog::XdpMode;

use crate::iface::{ArpConfig, ReasmConfig};
use crate::phy::PcapConfig;
use crate::socket::Proto;
use crate::tcp::TcpConfig;
use crate::wire::Ipv4Cidr;
use crate::xsk::BindMode;

/// Everything needed to start a stack.
#[derive(Debug, Clone)]
pub struct Config {
    /// The interface to attach to.
    pub iface: String,
    /// The stack's IPv4 addresses with their prefix lengths.
    pub addrs: Vec<Ipv4Cidr>,
    /// Next hop for destinations outside every prefix.
    pub gateway: Option<Ipv4Addr>,
    /// Worker threads (each pinned to a core).
    pub workers: usize,
    /// Cores to pin workers to, in worker order (default: the last cores of the machine).
    pub cores: Option<Vec<usize>>,
    /// XDP attach mode.
    pub xdp_mode: XdpMode,
    /// AF_XDP bind mode (zero-copy first by default).
    pub bind_mode: BindMode,
    /// Workers and blocked application calls spin instead of sleeping (lowest latency, full cores).
    pub busy_poll: bool,
    /// Run to completion: no worker thread; application threads drive the stack while they wait on
    /// its sockets (spinning), and [`Stack::poll`](crate::Stack::poll) drives it explicitly. One worker's worth of state.
    /// Lowest latency on few cores; the application must keep calling into the stack (timers only
    /// run when it does).
    pub inline: bool,
    /// Shared-address mode: the kernel keeps the address and only these ports (plus the ports the stack's
    /// sockets bind) go to the stack. `None`: the stack owns its addresses outright.
    pub shared_ports: Option<Vec<(Proto, u16)>>,
    /// 802.1Q VLAN of the stack's traffic.
    pub vlan: Option<u16>,
    /// UMEM frames per AF_XDP socket.
    pub frames_per_socket: u32,
    /// Entries of each AF_XDP ring.
    pub ring_size: u32,
    /// Datagrams a socket's receive queue holds.
    pub socket_queue_len: usize,
    /// Commands a worker's queue holds.
    pub command_queue_len: usize,
    /// ARP timings and limits.
    pub arp: ArpConfig,
    /// Reassembly limits.
    pub reasm: ReasmConfig,
    /// TCP settings.
    pub tcp: TcpConfig,
    /// Free TCP buffer memory kept for new connections, in bytes (0: allocate every buffer afresh).
    pub ring_cache_bytes: usize,
    /// Stage timing, for benchmarks: the XDP program stamps every frame it steers, and the workers
    /// add up how long frames waited between XDP and the RX ring, how long the stack took from
    /// receiving to the next TX kick, and how long the kicks took (the `Stage*` counters). Costs a
    /// few clock reads per packet; off by default.
    pub stage_timing: bool,
    /// Capture every frame received and sent to a pcap file, up to a size cap (a debugging tool: the
    /// workers share one file behind a mutex). Off by default.
    pub pcap: Option<PcapConfig>,
    /// The instance name for tools (`xdpstack ss --name NAME`); None: the interface name.
    pub name: Option<String>,
    /// Answer on the control socket `RUN_DIR/NAME/control` and keep the `/proc`-format files in
    /// `RUN_DIR/NAME/net/` (see [`crate::observe`]). On by default.
    pub control: bool,
    /// Where instance directories live; None: `XDPSTACK_RUN_DIR`, else `/run/xdpstack`.
    pub run_dir: Option<std::path::PathBuf>,
    /// How often the control thread rewrites the `/proc`-format files besides on every `sockets`
    /// request (None: only then). Each refresh is a snapshot command to every worker and allocates
    /// the table, off the packet path; a refresh that takes long (a table of many thousands of
    /// sockets) spaces the next ones out, to at most 2 % of the time.
    pub net_files_refresh: Option<Duration>,
}

impl Config {
    /// A configuration with defaults for everything but the interface and one address.
    pub fn new(iface: impl Into<String>, addr: Ipv4Cidr) -> Config {
        Config {
            iface: iface.into(),
            addrs: vec![addr],
            gateway: None,
            workers: 1,
            cores: None,
            xdp_mode: XdpMode::Auto,
            bind_mode: BindMode::Auto,
            busy_poll: false,
            inline: false,
            shared_ports: None,
            vlan: None,
            frames_per_socket: 4096,
            ring_size: 2048,
            socket_queue_len: 4096,
            command_queue_len: 8192,
            arp: ArpConfig::default(),
            reasm: ReasmConfig::default(),
            tcp: TcpConfig::default(),
            ring_cache_bytes: 64 << 20,
            stage_timing: false,
            pcap: None,
            name: None,
            control: true,
            run_dir: None,
            net_files_refresh: Some(Duration::from_millis(200)),
        }
    }

    /// The instance name: [`Config::name`], else the interface name.
    pub fn instance_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.iface)
    }

    /// The run directory: [`Config::run_dir`], else `XDPSTACK_RUN_DIR`, else `/run/xdpstack`.
    pub fn run_dir(&self) -> std::path::PathBuf {
        self.run_dir.clone().unwrap_or_else(crate::observe::control::default_run_dir)
    }

    pub(crate) fn validate(&self) -> io::Result<()> {
        let bad = |m: String| Err(io::Error::new(io::ErrorKind::InvalidInput, m));
        if self.addrs.is_empty() {
            return bad("the stack needs at least one address (--addr A.B.C.D/LEN)".into());
        }
        if self.inline && self.workers != 1 {
            return bad("run-to-completion (--inline) has exactly one worker's state; use --workers 1".into());
        }
        if self.workers == 0 {
            return bad("--workers must be at least 1".into());
        }
        if let Some(cores) = &self.cores {
            if cores.len() < self.workers {
                return bad(format!(
                    "{} workers need {} cores in --cores, got {}",
                    self.workers,
                    self.workers,
                    cores.len()
                ));
            }
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            if let Some(c) = cores.iter().find(|c| **c >= n) {
                return bad(format!("core {c} does not exist (this machine has cores 0..{})", n - 1));
            }
        }
        if !self.ring_size.is_power_of_two() || self.ring_size < 64 {
            return bad(format!("ring size {} must be a power of two >= 64", self.ring_size));
        }
        if self.frames_per_socket < 2 * self.ring_size {
            return bad(format!(
                "need at least {} frames per socket (twice the ring size)",
                2 * self.ring_size
            ));
        }
        Ok(())
    }
}

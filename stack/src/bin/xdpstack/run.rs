//! `xdpstack run`.

use std::io;
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use xdpstack::phy::PcapConfig;
use xdpstack::wire::Ipv4Cidr;
use xdpstack::xsk::BindMode;
use xdpstack::{Config, Proto, Stack, XdpMode};

use xdpstack::services::{self, Service};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum XdpModeArg {
    /// Native (driver) mode, falling back to generic.
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (SKB) mode.
    Generic,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum BindModeArg {
    /// Zero-copy where the driver supports it, copy otherwise.
    Auto,
    /// Copy mode.
    Copy,
    /// Zero-copy only.
    ZeroCopy,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Interface to attach to.
    #[arg(long)]
    iface: String,
    /// The stack's address with prefix length (repeat for more).
    #[arg(long = "addr", value_name = "A.B.C.D/LEN", required = true)]
    addrs: Vec<Ipv4Cidr>,
    /// Next hop for destinations outside the prefixes.
    #[arg(long)]
    gateway: Option<Ipv4Addr>,
    /// Worker threads, each pinned to a core.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Cores for the workers, e.g. 1 or 0,1.
    #[arg(long, value_delimiter = ',')]
    cores: Option<Vec<usize>>,
    /// XDP attach mode.
    #[arg(long, value_enum, default_value_t = XdpModeArg::Auto)]
    xdp_mode: XdpModeArg,
    /// AF_XDP bind mode.
    #[arg(long, value_enum, default_value_t = BindModeArg::Auto)]
    bind_mode: BindModeArg,
    /// Spin instead of sleeping (workers and blocked calls): lowest latency, full cores.
    #[arg(long)]
    busy_poll: bool,
    /// Run to completion: no worker thread; the service threads drive the stack while they wait
    /// (spinning). Lowest latency on few cores. Implies one worker.
    #[arg(long)]
    inline: bool,
    /// Built-in service, NAME:PORT (repeatable): echo-udp, discard-udp, echo-tcp, discard-tcp,
    /// chargen-tcp, http, sockperf (UDP and TCP).
    #[arg(long = "service", value_name = "SPEC")]
    services: Vec<Service>,
    /// Shared-address mode: the kernel keeps the address; only these ports (udp:P or tcp:P, comma
    /// separated) and the ports the stack's sockets bind go to the stack.
    #[arg(long, value_delimiter = ',', value_parser = parse_port)]
    ports: Option<Vec<(Proto, u16)>>,
    /// 802.1Q VLAN id of the stack's traffic.
    #[arg(long)]
    vlan: Option<u16>,
    /// Instance name for `xdpstack ss/stat --name` and the control socket RUN_DIR/NAME/control
    /// (default: the interface name).
    #[arg(long)]
    name: Option<String>,
    /// Directory of the instance directories (default: $XDPSTACK_RUN_DIR, else /run/xdpstack).
    #[arg(long, value_name = "DIR")]
    run_dir: Option<std::path::PathBuf>,
    /// Stop after this many seconds instead of waiting for Ctrl-C.
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Write every frame the stack receives and sends to FILE in pcap format (for tshark/Wireshark).
    #[arg(long, value_name = "FILE")]
    pcap: Option<std::path::PathBuf>,
    /// Stop writing the capture when the file would grow past N bytes.
    #[arg(long, value_name = "N", default_value_t = PcapConfig::DEFAULT_MAX_BYTES, requires = "pcap")]
    pcap_max_bytes: u64,
}

fn parse_port(s: &str) -> Result<(Proto, u16), String> {
    let (p, n) = s.split_once(':').ok_or_else(|| format!("{s:?}: expected udp:PORT or tcp:PORT"))?;
    let proto = match p {
        "udp" => Proto::Udp,
        "tcp" => Proto::Tcp,
        _ => return Err(format!("{s:?}: protocol must be udp or tcp")),
    };
    let port =
        n.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| format!("{s:?}: port must be 1..=65535"))?;
    Ok((proto, port))
}

/// Block SIGINT and SIGTERM in this thread (and so in every thread started after), so that they can be
/// taken synchronously with sigtimedwait.
pub(crate) fn block_signals() -> libc::sigset_t {
    // Safety: sigset_t is plain data; sigemptyset/sigaddset initialize it; pthread_sigmask only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Wait for SIGINT/SIGTERM, or until `limit` passes.
pub(crate) fn wait_for_signal(set: &libc::sigset_t, limit: Option<Duration>) -> Option<i32> {
    let deadline = limit.map(|d| std::time::Instant::now() + d);
    loop {
        let step = match deadline {
            Some(d) => match d.checked_duration_since(std::time::Instant::now()) {
                Some(left) => left.min(Duration::from_secs(1)),
                None => return None,
            },
            None => Duration::from_secs(1),
        };
        let ts = libc::timespec {
            tv_sec: step.as_secs() as libc::time_t,
            tv_nsec: step.subsec_nanos() as libc::c_long,
        };
        // Safety: `set` is an initialized sigset; a null siginfo pointer is allowed; `ts` is live.
        let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
        if sig > 0 {
            return Some(sig);
        }
    }
}

pub fn run(args: RunArgs) -> io::Result<ExitCode> {
    let mut cfg = Config::new(args.iface.clone(), args.addrs[0]);
    cfg.addrs = args.addrs.clone();
    cfg.gateway = args.gateway;
    cfg.workers = args.workers;
    cfg.cores = args.cores.clone();
    cfg.busy_poll = args.busy_poll;
    cfg.inline = args.inline;
    cfg.shared_ports = args.ports.clone();
    cfg.vlan = args.vlan;
    cfg.pcap = args.pcap.clone().map(|path| PcapConfig { path, max_bytes: args.pcap_max_bytes });
    cfg.name = args.name.clone();
    cfg.run_dir = args.run_dir.clone();
    cfg.xdp_mode = match args.xdp_mode {
        XdpModeArg::Auto => XdpMode::Auto,
        XdpModeArg::Native => XdpMode::Native,
        XdpModeArg::Generic => XdpMode::Generic,
    };
    cfg.bind_mode = match args.bind_mode {
        BindModeArg::Auto => BindMode::Auto,
        BindModeArg::Copy => BindMode::Copy,
        BindModeArg::ZeroCopy => BindMode::ZeroCopy,
    };
    if let Some(d) = args.duration {
        if !(d > 0.0 && d.is_finite()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "--duration must be a positive number of seconds",
            ));
        }
    }
    let signals = block_signals();
    let stack = Stack::start(cfg)?;
    let mut threads = Vec::new();
    for svc in &args.services {
        threads.push(services::start(&stack, *svc)?);
    }
    let info = stack.info();
    println!(
        "xdpstack running on {} ({}) as {}: {:?} XDP, {} mode, {} worker(s); Ctrl-C stops",
        info.netdev.name,
        info.netdev.ifindex,
        args.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", "),
        info.xdp_mode,
        if info.zero_copy { "zero-copy" } else { "copy" },
        args.workers,
    );
    let sig = wait_for_signal(&signals, args.duration.map(Duration::from_secs_f64));
    match sig {
        Some(s) => log::info!("signal {s}: shutting down"),
        None => log::info!("duration reached: shutting down"),
    }
    // The XDP program's counters and the ring gauges can only be read while the stack runs; the
    // workers' counters are final once it has stopped (frames that came during the shutdown included).
    let mut counters = stack.counters();
    let report = stack.shutdown();
    for (name, value) in &mut counters {
        if let Some((_, last)) = report.counters.iter().find(|(n, _)| n == name) {
            *value = *last;
        }
    }
    for t in threads {
        let _ = t.join();
    }
    println!("counters:");
    for (name, value) in counters.iter().filter(|(_, v)| *v != 0) {
        println!("  {name:<24} {value}");
    }
    println!(
        "frames: {} total, {} accounted for, {} lost",
        report.frames_total,
        report.frames_accounted,
        report.frames_lost()
    );
    Ok(if report.frames_lost() == 0 { ExitCode::SUCCESS } else { ExitCode::from(3) })
}

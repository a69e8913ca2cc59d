//! `xdpstack-bench`: the stack against the Linux kernel, side by side, in one run on the veth testbed.
//!
//! Pairings: kernel client and kernel server, kernel client and xdpstack server, xdpstack on both
//! ends, and the bare AF_XDP reflector as the floor; each in blocking and busy-poll mode. Latency by
//! UDP and TCP ping-pong (HdrHistogram, 3 significant digits, warm-up excluded), throughput by UDP
//! echo, TCP bulk and TCP connection rate, and the unmodified `sockperf` client against the kernel's
//! `sockperf server` and against xdpstack's sockperf service. Results go to the terminal (with every
//! figure's ratio to the kernel), to JSON, to `.hgrm` files and to SVG and PNG plots.

mod cleanup;
mod cpu;
mod demo;
mod hdr_text;
mod latency;
mod plot;
mod reflector;
mod report;
mod results;
mod sockperf;
mod stages;
mod throughput;
mod topo;

use std::io;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use latency::{Client, Rounds};
use results::{Latency, MachineInfo, Mode, Pairing, Proto, Report, Throughput, ThroughputKind};

use throughput::{Connector, Role, UdpFlows};
use topo::{Bed, KERNEL_CLIENT, PORT, SERVER, STACK_CLIENT};

/// Benchmarks: xdpstack against the Linux kernel on the veth testbed.
#[derive(Parser, Debug)]
#[command(name = "xdpstack-bench", version, about)]
struct Args {
    /// A few seconds per scenario: checks that every benchmark still runs (CI); the figures mean little.
    #[arg(long)]
    quick: bool,
    /// Where to write results.json, table.txt, the .hgrm files and the plots.
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
    /// Only these parts (comma separated): latency, udp-echo, tcp-bulk, conn-rate, sockperf;
    /// `throughput` means udp-echo, tcp-bulk and conn-rate.
    #[arg(long, value_delimiter = ',', default_values_t = ["latency".to_string(), "throughput".to_string(), "sockperf".to_string()])]
    only: Vec<String>,
    /// Only these pairings (comma separated): kernel-kernel, xdp-tx, reflector, afxdp-reflector,
    /// kernel-stack, stack-stack. Ratios need kernel-kernel; the floors and the stage breakdown need
    /// xdp-tx, reflector and afxdp-reflector (busy-poll latency only).
    #[arg(long, value_delimiter = ',', default_values_t = ["kernel-kernel", "xdp-tx", "reflector", "afxdp-reflector", "kernel-stack", "stack-stack"].map(String::from))]
    pairings: Vec<String>,
    /// Only these modes (comma separated): blocking, busy-poll.
    #[arg(long, value_delimiter = ',', default_values_t = ["blocking".to_string(), "busy-poll".to_string()])]
    modes: Vec<String>,
    /// Capture the frames of every stack the run starts into pcap files in this directory (to see
    /// what a scenario puts on the wire; capturing costs time, so the figures of such a run mean little).
    #[arg(long, value_name = "DIR")]
    pcap: Option<PathBuf>,
    /// Write the outputs of a made-up report into this directory and exit (to look at the formats).
    #[arg(long, hide = true, value_name = "DIR")]
    demo_report: Option<PathBuf>,
}

struct Plan {
    rounds: Rounds,
    duration: Duration,
    udp_flows: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                rounds: Rounds { warmup: 300, measured: 2000 },
                duration: Duration::from_millis(600),
                udp_flows: 4,
            }
        } else {
            Plan {
                rounds: Rounds { warmup: 10_000, measured: 100_000 },
                duration: Duration::from_secs(4),
                udp_flows: 8,
            }
        }
    }
}

fn machine_info() -> MachineInfo {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or_else(|| "unknown".into(), |s| s.trim().to_string());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    MachineInfo {
        cpu_model,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel,
        date,
        xdp: String::new(),
    }
}

struct Bench {
    bed: Bed,
    plan: Plan,
    report: Report,
}

impl Bench {
    fn cores(&self, pairing: Pairing, mode: Mode) -> String {
        let c = self.bed.cores;
        let server = match (pairing, mode) {
            (Pairing::KernelKernel, _) => "kernel server",
            (Pairing::Reflector | Pairing::AfXdpReflector, _) => "reflector",
            (Pairing::XdpTx, _) => "XDP_TX in the driver (softirq of the sending core)",
            (_, Mode::BusyPoll) => "stack server (run to completion)",
            (_, Mode::Blocking) => "stack worker + server thread",
        };
        let client = match pairing {
            Pairing::StackStack => "stack client",
            Pairing::AfXdpReflector => "bare AF_XDP client",
            _ => "kernel client",
        };
        format!("{client} on core {}, {server} on core {}", c.client, c.server)
    }

    fn record(
        &mut self,
        pairing: Pairing,
        mode: Mode,
        proto: Proto,
        size: usize,
        hist: hdrhistogram::Histogram<u64>,
    ) {
        let p50 = hist.value_at_quantile(0.5) as f64 / 1000.0;
        eprintln!(
            "  {:<16} {:<9} {} {:>5} B: p50 {p50:.2} us",
            pairing.label(),
            mode.label(),
            proto.label(),
            size
        );
        let cores = self.cores(pairing, mode);
        self.report.latency.push(Latency { pairing, mode, proto, size, cores, hist });
    }

    fn kernel_client(&self, proto: Proto, busy: bool) -> io::Result<Client> {
        let to = self.bed.server();
        let c = self.bed.in_client_ns(move || -> io::Result<Client> {
            Ok(match proto {
                Proto::Udp => {
                    let s = std::net::UdpSocket::bind((KERNEL_CLIENT, 0))?;
                    s.connect(to)?;
                    Client::KernelUdp(s)
                }
                Proto::Tcp => {
                    let s = std::net::TcpStream::connect(to)?;
                    s.set_nodelay(true)?;
                    Client::KernelTcp(s)
                }
            })
        })??;
        c.set_busy(busy)?;
        Ok(c)
    }

    /// Ping-pong for every size of `proto`, with `client` made fresh for each size.
    fn sizes(
        &mut self,
        pairing: Pairing,
        mode: Mode,
        proto: Proto,
        mut client: impl FnMut(&Self, usize) -> io::Result<Client>,
    ) -> io::Result<()> {
        for &size in latency::sizes(proto) {
            let c = client(self, size)?;
            let (_c, hist) = latency::measure(c, size, self.plan.rounds, self.bed.cores.client)?;
            self.record(pairing, mode, proto, size, hist);
        }
        Ok(())
    }

    fn throughput(
        &mut self,
        pairing: Pairing,
        mode: Mode,
        kind: ThroughputKind,
        value: f64,
        server_cores: Option<f64>,
        server_work: Option<f64>,
    ) {
        eprintln!(
            "  {:<16} {:<9} {}: {value:.3} {}",
            pairing.label(),
            mode.label(),
            kind.label(),
            kind.unit()
        );
        self.report.throughput.push(Throughput {
            pairing,
            mode,
            kind,
            value,
            server_cores,
            server_work,
            duration: self.plan.duration,
        });
    }

    // ---- kernel - kernel ----

    fn kernel_kernel(&mut self, parts: &Parts) -> io::Result<()> {
        eprintln!("kernel client - kernel server");
        self.bed.kernel_server_addr(true)?;
        let r = self.kernel_kernel_inner(parts);
        self.bed.kernel_server_addr(false)?;
        r
    }

    fn kernel_kernel_inner(&mut self, parts: &Parts) -> io::Result<()> {
        let (addr, core) = (self.bed.server(), self.bed.cores.server);
        for mode in parts.modes.clone() {
            if parts.latency {
                for proto in [Proto::Udp, Proto::Tcp] {
                    let server =
                        self.bed.in_server_ns(move || latency::kernel_server(addr, proto, mode, core))??;
                    let r = self.sizes(Pairing::KernelKernel, mode, proto, |b, _| {
                        b.kernel_client(proto, mode == Mode::BusyPoll)
                    });
                    server.stop();
                    r?;
                }
            }
            if parts.udp_echo {
                // UDP echo, measuring the server core.
                let server =
                    self.bed.in_server_ns(move || latency::kernel_server(addr, Proto::Udp, mode, core))??;
                let flows = self.kernel_udp_flows()?;
                // The server's receive processing on its own core (veth would run it on the client's).
                self.bed.server_rps(true)?;
                let meter = cpu::CoreMeter::start(core)?;
                let pps = throughput::udp_echo(flows, mode, self.plan.duration, self.bed.cores.client);
                let busy = meter.stop()?;
                self.bed.server_rps(false)?;
                let pps = pps?;
                let work = None;
                server.stop();
                self.throughput(
                    Pairing::KernelKernel,
                    mode,
                    ThroughputKind::UdpEcho { flows: self.plan.udp_flows },
                    pps,
                    Some(busy),
                    work,
                );
            }
            self.tcp_throughput(parts, Pairing::KernelKernel, mode, None)?;
        }
        Ok(())
    }

    fn kernel_udp_flows(&self) -> io::Result<UdpFlows> {
        let (n, to) = (self.plan.udp_flows, self.bed.server());
        let socks = self.bed.in_client_ns(move || -> io::Result<Vec<std::net::UdpSocket>> {
            (0..n)
                .map(|_| {
                    let s = std::net::UdpSocket::bind((KERNEL_CLIENT, 0))?;
                    s.connect(to)?;
                    Ok(s)
                })
                .collect()
        })??;
        Ok(UdpFlows::Kernel(socks))
    }

    /// TCP bulk (1 and 4 flows) and connection rate against the server of `pairing`: `stacks` holds the
    /// server stack (None: the kernel) and the client stack (None: the kernel).
    fn tcp_throughput(
        &mut self,
        parts: &Parts,
        pairing: Pairing,
        mode: Mode,
        stacks: Option<(&Arc<xdpstack::Stack>, Option<&Arc<xdpstack::Stack>>)>,
    ) -> io::Result<()> {
        let (core, client_core, to, d) = (
            self.bed.cores.server,
            self.bed.cores.client,
            SocketAddrV4::new(SERVER, PORT + 1),
            self.plan.duration,
        );
        let peer_ns = self.bed.tb.peer_ns.clone();
        let connector = || match stacks.and_then(|(_, c)| c) {
            Some(cs) => Connector::Stack(cs.clone()),
            None => Connector::Kernel { ns: peer_ns.clone(), busy: mode == Mode::BusyPoll },
        };
        let bed = &self.bed;
        let server = |role| -> io::Result<throughput::TcpServer> {
            match stacks {
                Some((s, _)) => throughput::stack_tcp_server(s, to, role, core),
                None => bed.in_server_ns(move || throughput::kernel_tcp_server(to, role, mode, core))?,
            }
        };
        let mut results = Vec::new();
        for flows in [1, 4].into_iter().filter(|_| parts.tcp_bulk) {
            let srv = server(Role::Discard)?;
            let gbps = throughput::tcp_bulk(connector(), to, &srv, flows, d, client_core);
            srv.stop();
            results.push((ThroughputKind::TcpBulk { flows }, gbps?));
        }
        if parts.conn_rate {
            let srv = server(Role::RequestResponse)?;
            let rate = throughput::tcp_conn_rate(connector(), to, d, client_core);
            srv.stop();
            results.push((ThroughputKind::TcpConnRate, rate?));
        }
        for (kind, value) in results {
            self.throughput(pairing, mode, kind, value, None, None);
        }
        Ok(())
    }

    // ---- the floor ----

    fn reflector(&mut self) -> io::Result<()> {
        eprintln!("kernel client - bare AF_XDP reflector");
        // The reflector answers no ARP: tell the peer where the server is.
        self.server_neighbour(true)?;
        let (ifname, core) = (self.bed.tb.stack_if.clone(), self.bed.cores.server);
        let refl = self.bed.in_server_ns(move || reflector::Reflector::start(&ifname, SERVER, core))??;
        let r = self
            .sizes(Pairing::Reflector, Mode::BusyPoll, Proto::Udp, |b, _| b.kernel_client(Proto::Udp, true));
        let _ = refl.stop();
        self.server_neighbour(false)?;
        r
    }

    /// The peer's static neighbour entry for the server address (the floors answer no ARP), or its
    /// removal.
    fn server_neighbour(&self, on: bool) -> io::Result<()> {
        let tb = &self.bed.tb;
        if !on {
            let _ = tb.peer_cmd("ip").args(["neigh", "del", "10.77.0.2", "dev", &tb.peer_if]).status();
            return Ok(());
        }
        let mac = tb.stack_mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
        let st = tb
            .peer_cmd("ip")
            .args(["neigh", "replace", "10.77.0.2", "lladdr", &mac, "dev", &tb.peer_if, "nud", "permanent"])
            .status()?;
        if !st.success() {
            return Err(io::Error::other("cannot set the neighbour entry for the server address"));
        }
        Ok(())
    }

    /// The in-driver floor: the kernel client against an XDP program that answers with XDP_TX.
    fn xdp_tx(&mut self) -> io::Result<()> {
        eprintln!("kernel client - XDP_TX in the driver");
        self.server_neighbour(true)?;
        // XDP_TX frames reach the other end of a veth only if that end runs NAPI, which it does with an
        // XDP program of its own: a bounce program without an address, which passes everything.
        let attach = |ifname: String, addr: Option<std::net::Ipv4Addr>| {
            move || -> io::Result<(xdp_prog::Bounce, xdp_prog::XdpLink)> {
                let dev = xdpstack::netdev::NetDev::lookup(&ifname)?;
                let b = xdp_prog::Bounce::load().map_err(io::Error::other)?;
                if let Some(a) = addr {
                    b.set_addr(a).map_err(io::Error::other)?;
                }
                let link = b.attach(dev.ifindex, xdp_prog::XdpMode::Auto).map_err(io::Error::other)?;
                Ok((b, link))
            }
        };
        let server = self.bed.in_server_ns(attach(self.bed.tb.stack_if.clone(), Some(SERVER)))?;
        let client = self.bed.in_client_ns(attach(self.bed.tb.peer_if.clone(), None))?;
        let r = server.and_then(|s| client.map(|c| (s, c))).and_then(|((bounce, _l1), _peer)| {
            self.sizes(Pairing::XdpTx, Mode::BusyPoll, Proto::Udp, |b, _| b.kernel_client(Proto::Udp, true))?;
            match bounce.counters() {
                Ok(c) if c.bounced > 0 => Ok(()),
                _ => Err(io::Error::other("the XDP_TX floor answered nothing")),
            }
        });
        self.server_neighbour(false)?;
        r
    }

    /// The stack-stack floor: a bare AF_XDP client against the bare AF_XDP reflector.
    fn afxdp_reflector(&mut self) -> io::Result<()> {
        eprintln!("bare AF_XDP client - bare AF_XDP reflector");
        let (ifname, core) = (self.bed.tb.stack_if.clone(), self.bed.cores.server);
        let refl = self.bed.in_server_ns(move || reflector::Reflector::start(&ifname, SERVER, core))??;
        let peer_mac = xdpstack::testbed::in_netns(&self.bed.tb.peer_ns, {
            let peer_if = self.bed.tb.peer_if.clone();
            move || xdpstack::netdev::NetDev::lookup(&peer_if).map(|d| d.mac)
        })??;
        let path = reflector::PingerPath {
            src_mac: peer_mac,
            dst_mac: self.bed.tb.stack_mac,
            src: SocketAddrV4::new(STACK_CLIENT, 40000),
            dst: self.bed.server(),
        };
        let r = self.sizes(Pairing::AfXdpReflector, Mode::BusyPoll, Proto::Udp, |b, size| {
            let (peer_if, ns) = (b.bed.tb.peer_if.clone(), b.bed.tb.peer_ns.clone());
            // Each size gets its own pinger (and frame); only one is alive at a time.
            let p =
                xdpstack::testbed::in_netns(&ns, move || reflector::Pinger::start(&peer_if, path, size))??;
            Ok(Client::AfXdp(Box::new(p)))
        });
        let _ = refl.stop();
        r
    }

    // ---- kernel - stack ----

    fn kernel_stack(&mut self, parts: &Parts) -> io::Result<()> {
        eprintln!("kernel client - xdpstack server");
        let (addr, core) = (self.bed.server(), self.bed.cores.server);
        for mode in parts.modes.clone() {
            let stack = Arc::new(self.bed.start_server_stack(mode)?);
            self.report.machine.xdp = format!(
                "{:?} XDP, {} AF_XDP",
                stack.info().xdp_mode,
                if stack.info().zero_copy { "zero-copy" } else { "copy-mode" }
            );
            if parts.latency {
                for proto in [Proto::Udp, Proto::Tcp] {
                    let server = latency::stack_server(&stack, addr, proto, core)?;
                    let r = self.sizes(Pairing::KernelStack, mode, proto, |b, _| {
                        b.kernel_client(proto, mode == Mode::BusyPoll)
                    });
                    server.stop();
                    r?;
                }
            }
            if parts.udp_echo {
                let server = latency::stack_server(&stack, addr, Proto::Udp, core)?;
                let flows = self.kernel_udp_flows()?;
                let meter = cpu::CoreMeter::start(core)?;
                let work_meter = cpu::WorkMeter::start(&stack);
                let pps = throughput::udp_echo(flows, mode, self.plan.duration, self.bed.cores.client)?;
                let busy = meter.stop()?;
                let work = (mode == Mode::BusyPoll).then(|| work_meter.stop(&stack));
                server.stop();
                self.throughput(
                    Pairing::KernelStack,
                    mode,
                    ThroughputKind::UdpEcho { flows: self.plan.udp_flows },
                    pps,
                    Some(busy),
                    work,
                );
            }
            self.tcp_throughput(parts, Pairing::KernelStack, mode, Some((&stack, None)))?;
            finish(stack)?;
        }
        Ok(())
    }

    // ---- stack - stack ----

    fn stack_stack(&mut self, parts: &Parts) -> io::Result<()> {
        eprintln!("xdpstack client - xdpstack server");
        let (addr, core) = (self.bed.server(), self.bed.cores.server);
        for mode in parts.modes.clone() {
            let server_stack = Arc::new(self.bed.start_server_stack(mode)?);
            let client_stack = Arc::new(self.bed.start_client_stack(mode)?);
            if parts.latency {
                for proto in [Proto::Udp, Proto::Tcp] {
                    let server = latency::stack_server(&server_stack, addr, proto, core)?;
                    let cs = client_stack.clone();
                    let r = self.sizes(Pairing::StackStack, mode, proto, move |b, _| {
                        stack_client(&cs, b.bed.server(), proto)
                    });
                    server.stop();
                    r?;
                }
            }
            if parts.udp_echo {
                let server = latency::stack_server(&server_stack, addr, Proto::Udp, core)?;
                let socks = (0..self.plan.udp_flows)
                    .map(|_| {
                        let s = xdpstack::UdpSocket::bind(&client_stack, (STACK_CLIENT, 0))?;
                        s.connect(addr)?;
                        Ok(s)
                    })
                    .collect::<io::Result<Vec<_>>>()?;
                let poll = (mode == Mode::BusyPoll).then(|| client_stack.clone());
                let meter = cpu::CoreMeter::start(core)?;
                let work_meter = cpu::WorkMeter::start(&server_stack);
                let pps = throughput::udp_echo(
                    UdpFlows::Stack(socks, poll),
                    mode,
                    self.plan.duration,
                    self.bed.cores.client,
                )?;
                let busy = meter.stop()?;
                let work = (mode == Mode::BusyPoll).then(|| work_meter.stop(&server_stack));
                server.stop();
                self.throughput(
                    Pairing::StackStack,
                    mode,
                    ThroughputKind::UdpEcho { flows: self.plan.udp_flows },
                    pps,
                    Some(busy),
                    work,
                );
            }
            self.tcp_throughput(
                parts,
                Pairing::StackStack,
                mode,
                Some((&server_stack, Some(&client_stack))),
            )?;
            finish(client_stack)?;
            finish(server_stack)?;
        }
        Ok(())
    }
}

fn stack_client(stack: &xdpstack::Stack, to: SocketAddrV4, proto: Proto) -> io::Result<Client> {
    let c = match proto {
        Proto::Udp => {
            let s = xdpstack::UdpSocket::bind(stack, (STACK_CLIENT, 0))?;
            s.connect(to)?;
            Client::StackUdp(s)
        }
        Proto::Tcp => {
            let s = xdpstack::TcpStream::connect(stack, to)?;
            s.set_nodelay(true)?;
            Client::StackTcp(s)
        }
    };
    // Sets the call timeouts (the stack's mode decides whether it spins).
    c.set_busy(false)?;
    Ok(c)
}

/// Shut a stack down, checking that no frame went missing.
fn finish(stack: Arc<xdpstack::Stack>) -> io::Result<()> {
    let stack =
        Arc::try_unwrap(stack).map_err(|_| io::Error::other("stack still in use at the end of a phase"))?;
    let r = stack.shutdown();
    if log::log_enabled!(log::Level::Info) {
        let nonzero: Vec<_> = r.counters.iter().filter(|(_, v)| *v != 0).collect();
        log::info!("stack counters at shutdown: {nonzero:?}");
    }
    if r.frames_lost() != 0 {
        return Err(io::Error::other(format!("{} UMEM frames lost", r.frames_lost())));
    }
    Ok(())
}

/// The pairings `--pairings` knows.
const PAIRINGS: &str = "kernel-kernel, xdp-tx, reflector, afxdp-reflector, kernel-stack, stack-stack";

/// What to run.
struct Parts {
    latency: bool,
    udp_echo: bool,
    tcp_bulk: bool,
    conn_rate: bool,
    sockperf: bool,
    pairings: Vec<Pairing>,
    modes: Vec<Mode>,
}

impl Parts {
    fn from_args(args: &Args) -> io::Result<Parts> {
        let bad = |what: &str, v: &str, known: &str| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{what}: unknown value {v:?} (known: {known})"),
            )
        };
        let mut p = Parts {
            latency: false,
            udp_echo: false,
            tcp_bulk: false,
            conn_rate: false,
            sockperf: false,
            pairings: Vec::new(),
            modes: Vec::new(),
        };
        for part in &args.only {
            match part.as_str() {
                "latency" => p.latency = true,
                "throughput" => (p.udp_echo, p.tcp_bulk, p.conn_rate) = (true, true, true),
                "udp-echo" => p.udp_echo = true,
                "tcp-bulk" => p.tcp_bulk = true,
                "conn-rate" => p.conn_rate = true,
                "sockperf" => p.sockperf = true,
                v => {
                    return Err(bad(
                        "--only",
                        v,
                        "latency, throughput, udp-echo, tcp-bulk, conn-rate, sockperf",
                    ))
                }
            }
        }
        for v in &args.pairings {
            p.pairings.push(match v.as_str() {
                "kernel-kernel" => Pairing::KernelKernel,
                "reflector" => Pairing::Reflector,
                "kernel-stack" => Pairing::KernelStack,
                "stack-stack" => Pairing::StackStack,
                "xdp-tx" => Pairing::XdpTx,
                "afxdp-reflector" => Pairing::AfXdpReflector,
                v => return Err(bad("--pairings", v, PAIRINGS)),
            });
        }
        for v in &args.modes {
            let m = match v.as_str() {
                "blocking" => Mode::Blocking,
                "busy-poll" => Mode::BusyPoll,
                v => return Err(bad("--modes", v, "blocking, busy-poll")),
            };
            if !p.modes.contains(&m) {
                p.modes.push(m);
            }
        }
        Ok(p)
    }

    fn runs(&self, pairing: Pairing) -> bool {
        self.pairings.contains(&pairing)
    }
}

fn run(args: &Args) -> io::Result<Report> {
    let parts = Parts::from_args(args)?;
    let mut bed = Bed::new()?;
    if let Some(dir) = &args.pcap {
        std::fs::create_dir_all(dir)?;
        bed.pcap_dir = Some(dir.clone());
    }
    let mut b = Bench { bed, plan: Plan::new(args.quick), report: Report::default() };
    b.report.quick = args.quick;
    b.report.machine = machine_info();
    if parts.runs(Pairing::KernelKernel) {
        b.kernel_kernel(&parts)?;
    }
    let floors = parts.latency && parts.modes.contains(&Mode::BusyPoll);
    if floors && parts.runs(Pairing::XdpTx) {
        b.xdp_tx()?;
    }
    if floors && parts.runs(Pairing::Reflector) {
        b.reflector()?;
    }
    if floors && parts.runs(Pairing::AfXdpReflector) {
        b.afxdp_reflector()?;
    }
    if parts.runs(Pairing::KernelStack) {
        b.kernel_stack(&parts)?;
    }
    if parts.runs(Pairing::StackStack) {
        b.stack_stack(&parts)?;
    }
    if parts.latency && parts.runs(Pairing::KernelStack) && parts.modes.contains(&Mode::BusyPoll) {
        b.stages()?;
    }
    if parts.conn_rate && parts.runs(Pairing::StackStack) && parts.modes.contains(&Mode::BusyPoll) {
        b.conn_stages()?;
    }
    if parts.sockperf {
        sockperf::run_all(&b.bed, args.quick, &mut b.report)?;
    }
    Ok(b.report)
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    cleanup::install();
    if let Some(dir) = &args.demo_report {
        return match demo::write_demo(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xdpstack-bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match run(&args) {
        Ok(report) => {
            let mut out = io::stdout();
            if let Err(e) = report::print_table(&report, &mut out) {
                eprintln!("xdpstack-bench: cannot print the table: {e}");
            }
            match report::write_all(&report, &args.out) {
                Ok(files) => eprintln!("wrote {} files to {}", files.len(), args.out.display()),
                Err(e) => {
                    eprintln!("xdpstack-bench: cannot write results to {}: {e}", args.out.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xdpstack-bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}

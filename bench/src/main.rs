//! `xdpstack-bench`: the stack against the Linux kernel, side by side, in one run on the veth testbed.
//!
//! Pairings: kernel client and kernel server, kernel client and xdpstack server, xdpstack on both
//! ends, and the bare AF_XDP reflector as the floor; each in blocking and busy-poll mode. Latency by
//! UDP and TCP ping-pong (HdrHistogram, 3 significant digits, warm-up excluded), throughput by UDP
//! echo, TCP bulk and TCP connection rate, and the unmodified `sockperf` client against the kernel's
//! `sockperf server` and against xdpstack's sockperf service. Results go to the terminal (with every
//! figure's ratio to the kernel), to JSON, to `.hgrm` files and to SVG and PNG plots.

mod cpu;
mod demo;
mod hdr_text;
mod latency;
mod plot;
mod reflector;
mod report;
mod results;
mod sockperf;
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
    /// Only these parts (comma separated): latency, throughput, sockperf.
    #[arg(long, value_delimiter = ',', default_values_t = ["latency".to_string(), "throughput".to_string(), "sockperf".to_string()])]
    only: Vec<String>,
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
            (Pairing::Reflector, _) => "reflector",
            (_, Mode::BusyPoll) => "stack server (run to completion)",
            (_, Mode::Blocking) => "stack worker + server thread",
        };
        let client = match pairing {
            Pairing::StackStack => "stack client",
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
        mut client: impl FnMut(&Self) -> io::Result<Client>,
    ) -> io::Result<()> {
        for &size in latency::sizes(proto) {
            if pairing == Pairing::Reflector && proto == Proto::Tcp {
                continue;
            }
            let c = client(self)?;
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
        for mode in [Mode::Blocking, Mode::BusyPoll] {
            if parts.latency {
                for proto in [Proto::Udp, Proto::Tcp] {
                    let server =
                        self.bed.in_server_ns(move || latency::kernel_server(addr, proto, mode, core))??;
                    let r = self.sizes(Pairing::KernelKernel, mode, proto, |b| {
                        b.kernel_client(proto, mode == Mode::BusyPoll)
                    });
                    server.stop();
                    r?;
                }
            }
            if parts.throughput {
                // UDP echo, measuring the server core.
                let server =
                    self.bed.in_server_ns(move || latency::kernel_server(addr, Proto::Udp, mode, core))??;
                let flows = self.kernel_udp_flows()?;
                let meter = cpu::CoreMeter::start(core)?;
                let pps = throughput::udp_echo(flows, self.plan.duration, self.bed.cores.client)?;
                let busy = meter.stop()?;
                server.stop();
                self.throughput(
                    Pairing::KernelKernel,
                    mode,
                    ThroughputKind::UdpEcho { flows: self.plan.udp_flows },
                    pps,
                    Some(busy),
                );
                self.tcp_throughput(Pairing::KernelKernel, mode, None)?;
            }
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
            None => Connector::Kernel(peer_ns.clone()),
        };
        let bed = &self.bed;
        let server = |role| -> io::Result<throughput::TcpServer> {
            match stacks {
                Some((s, _)) => throughput::stack_tcp_server(s, to, role, core),
                None => bed.in_server_ns(move || throughput::kernel_tcp_server(to, role, core))?,
            }
        };
        let mut results = Vec::new();
        for flows in [1, 4] {
            let srv = server(Role::Discard)?;
            let gbps = throughput::tcp_bulk(connector(), to, &srv, flows, d, client_core);
            srv.stop();
            results.push((ThroughputKind::TcpBulk { flows }, gbps?));
        }
        let srv = server(Role::RequestResponse)?;
        let rate = throughput::tcp_conn_rate(connector(), to, d, client_core);
        srv.stop();
        results.push((ThroughputKind::TcpConnRate, rate?));
        for (kind, value) in results {
            self.throughput(pairing, mode, kind, value, None);
        }
        Ok(())
    }

    // ---- the floor ----

    fn reflector(&mut self) -> io::Result<()> {
        eprintln!("kernel client - bare AF_XDP reflector");
        // The reflector answers no ARP: tell the peer where the server is.
        let mac = self.bed.tb.stack_mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
        let st = self
            .bed
            .tb
            .peer_cmd("ip")
            .args([
                "neigh",
                "replace",
                "10.77.0.2",
                "lladdr",
                &mac,
                "dev",
                &self.bed.tb.peer_if,
                "nud",
                "permanent",
            ])
            .status()?;
        if !st.success() {
            return Err(io::Error::other("cannot set the neighbour entry for the reflector"));
        }
        let (ifname, core) = (self.bed.tb.stack_if.clone(), self.bed.cores.server);
        let refl = self.bed.in_server_ns(move || reflector::Reflector::start(&ifname, SERVER, core))??;
        let r =
            self.sizes(Pairing::Reflector, Mode::BusyPoll, Proto::Udp, |b| b.kernel_client(Proto::Udp, true));
        let _ = refl.stop();
        let _ = self
            .bed
            .tb
            .peer_cmd("ip")
            .args(["neigh", "del", "10.77.0.2", "dev", &self.bed.tb.peer_if])
            .status();
        r
    }

    // ---- kernel - stack ----

    fn kernel_stack(&mut self, parts: &Parts) -> io::Result<()> {
        eprintln!("kernel client - xdpstack server");
        let (addr, core) = (self.bed.server(), self.bed.cores.server);
        for mode in [Mode::Blocking, Mode::BusyPoll] {
            let stack = Arc::new(self.bed.start_server_stack(mode)?);
            self.report.machine.xdp = format!(
                "{:?} XDP, {} AF_XDP",
                stack.info().xdp_mode,
                if stack.info().zero_copy { "zero-copy" } else { "copy-mode" }
            );
            if parts.latency {
                for proto in [Proto::Udp, Proto::Tcp] {
                    let server = latency::stack_server(&stack, addr, proto, core)?;
                    let r = self.sizes(Pairing::KernelStack, mode, proto, |b| {
                        b.kernel_client(proto, mode == Mode::BusyPoll)
                    });
                    server.stop();
                    r?;
                }
            }
            if parts.throughput {
                let server = latency::stack_server(&stack, addr, Proto::Udp, core)?;
                let flows = self.kernel_udp_flows()?;
                let meter = cpu::CoreMeter::start(core)?;
                let pps = throughput::udp_echo(flows, self.plan.duration, self.bed.cores.client)?;
                let busy = meter.stop()?;
                server.stop();
                self.throughput(
                    Pairing::KernelStack,
                    mode,
                    ThroughputKind::UdpEcho { flows: self.plan.udp_flows },
                    pps,
                    Some(busy),
                );
                self.tcp_throughput(Pairing::KernelStack, mode, Some((&stack, None)))?;
            }
            finish(stack)?;
        }
        Ok(())
    }

    // ---- stack - stack ----

    fn stack_stack(&mut self, parts: &Parts) -> io::Result<()> {
        eprintln!("xdpstack client - xdpstack server");
        let (addr, core) = (self.bed.server(), self.bed.cores.server);
        for mode in [Mode::Blocking, Mode::BusyPoll] {
            let server_stack = Arc::new(self.bed.start_server_stack(mode)?);
            let client_stack = Arc::new(self.bed.start_client_stack(mode)?);
            if parts.latency {
                for proto in [Proto::Udp, Proto::Tcp] {
                    let server = latency::stack_server(&server_stack, addr, proto, core)?;
                    let cs = client_stack.clone();
                    let r = self.sizes(Pairing::StackStack, mode, proto, move |b| {
                        stack_client(&cs, b.bed.server(), proto)
                    });
                    server.stop();
                    r?;
                }
            }
            if parts.throughput {
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
                let pps = throughput::udp_echo(
                    UdpFlows::Stack(socks, poll),
                    self.plan.duration,
                    self.bed.cores.client,
                )?;
                let busy = meter.stop()?;
                server.stop();
                self.throughput(
                    Pairing::StackStack,
                    mode,
                    ThroughputKind::UdpEcho { flows: self.plan.udp_flows },
                    pps,
                    Some(busy),
                );
                self.tcp_throughput(Pairing::StackStack, mode, Some((&server_stack, Some(&client_stack))))?;
            }
            finish(client_stack)?;
            finish(server_stack)?;
        }
        Ok(())
    }
}

fn stack_client(stack: &xdpstack::Stack, to: SocketAddrV4, proto: Proto) -> io::Result<Client> {
    Ok(match proto {
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
    })
}

/// Shut a stack down, checking that no frame went missing.
fn finish(stack: Arc<xdpstack::Stack>) -> io::Result<()> {
    let stack =
        Arc::try_unwrap(stack).map_err(|_| io::Error::other("stack still in use at the end of a phase"))?;
    let r = stack.shutdown();
    if r.frames_lost() != 0 {
        return Err(io::Error::other(format!("{} UMEM frames lost", r.frames_lost())));
    }
    Ok(())
}

struct Parts {
    latency: bool,
    throughput: bool,
    sockperf: bool,
}

fn run(args: &Args) -> io::Result<Report> {
    let parts = Parts {
        latency: args.only.iter().any(|p| p == "latency"),
        throughput: args.only.iter().any(|p| p == "throughput"),
        sockperf: args.only.iter().any(|p| p == "sockperf"),
    };
    if let Some(bad) = args.only.iter().find(|p| !["latency", "throughput", "sockperf"].contains(&p.as_str()))
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--only: unknown part {bad:?} (latency, throughput, sockperf)"),
        ));
    }
    let bed = Bed::new()?;
    let mut b = Bench { bed, plan: Plan::new(args.quick), report: Report::default() };
    b.report.quick = args.quick;
    b.report.machine = machine_info();
    b.kernel_kernel(&parts)?;
    if parts.latency {
        b.reflector()?;
    }
    b.kernel_stack(&parts)?;
    b.stack_stack(&parts)?;
    if parts.sockperf {
        sockperf::run_all(&b.bed, args.quick, &mut b.report)?;
    }
    Ok(b.report)
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
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

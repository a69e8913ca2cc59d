//! What a benchmark run measured: the data model every part of the report is made from.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Who talks to whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pairing {
    /// Linux client, Linux server: the baseline every figure is compared with.
    KernelKernel,
    /// Linux client, xdpstack server.
    KernelStack,
    /// xdpstack client, xdpstack server.
    StackStack,
    /// Linux client, bare AF_XDP reflector (no stack at all): the floor of this path.
    Reflector,
    /// Linux client, answered inside the driver by an XDP program (XDP_TX): the path without any
    /// user space on the server side.
    XdpTx,
    /// Bare AF_XDP client, bare AF_XDP reflector: the floor of the stack-stack path.
    AfXdpReflector,
}

impl Pairing {
    /// Short label for tables and plots.
    pub fn label(self) -> &'static str {
        match self {
            Pairing::KernelKernel => "kernel-kernel",
            Pairing::KernelStack => "kernel-stack",
            Pairing::StackStack => "stack-stack",
            Pairing::Reflector => "kernel-reflector",
            Pairing::XdpTx => "kernel-xdp-tx",
            Pairing::AfXdpReflector => "afxdp-reflector",
        }
    }

    /// The floor this pairing's figures are compared with: the bare AF_XDP reflector against the
    /// same kind of client.
    pub fn floor(self) -> Pairing {
        match self {
            Pairing::StackStack | Pairing::AfXdpReflector => Pairing::AfXdpReflector,
            _ => Pairing::Reflector,
        }
    }
}

/// How the endpoints wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// Blocking calls (threads sleep and are woken).
    Blocking,
    /// Spinning (kernel sockets: non-blocking calls in a loop; xdpstack: run to completion).
    BusyPoll,
}

impl Mode {
    /// Short label.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Blocking => "blocking",
            Mode::BusyPoll => "busy-poll",
        }
    }
}

/// Transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

impl Proto {
    /// Short label.
    pub fn label(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
        }
    }
}

/// The machine the numbers came from.
#[derive(Debug, Clone, Default)]
pub struct MachineInfo {
    /// CPU model (from /proc/cpuinfo).
    pub cpu_model: String,
    /// Online CPUs.
    pub cpus: usize,
    /// `uname -r`.
    pub kernel: String,
    /// When the run started (RFC 3339, UTC).
    pub date: String,
    /// XDP mode and AF_XDP mode used for the stack.
    pub xdp: String,
}

/// One ping-pong latency measurement.
#[derive(Debug, Clone)]
pub struct Latency {
    /// Who talked.
    pub pairing: Pairing,
    /// How they waited.
    pub mode: Mode,
    /// Over what.
    pub proto: Proto,
    /// Message size (bytes of payload each way).
    pub size: usize,
    /// Cores the client and the server (or their stacks) were pinned to, as printed in the report.
    pub cores: String,
    /// Round-trip times in nanoseconds, warm-up excluded (3 significant digits).
    pub hist: Histogram<u64>,
}

/// What a throughput run measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ThroughputKind {
    /// UDP echo: packets per second echoed, over `flows` client sockets.
    UdpEcho {
        /// Client flows.
        flows: usize,
    },
    /// TCP bulk: Gbit/s of payload over `flows` connections.
    TcpBulk {
        /// Connections.
        flows: usize,
    },
    /// TCP connection rate: connect, one request, close, per second.
    TcpConnRate,
}

impl ThroughputKind {
    /// Unit of `Throughput::value`.
    pub fn unit(self) -> &'static str {
        match self {
            ThroughputKind::UdpEcho { .. } => "pkt/s",
            ThroughputKind::TcpBulk { .. } => "Gbit/s",
            ThroughputKind::TcpConnRate => "conn/s",
        }
    }

    /// Label, e.g. "udp-echo 4 flows".
    pub fn label(self) -> String {
        match self {
            ThroughputKind::UdpEcho { flows } => format!("udp-echo {flows} flow(s)"),
            ThroughputKind::TcpBulk { flows } => format!("tcp-bulk {flows} flow(s)"),
            ThroughputKind::TcpConnRate => "tcp-conn-rate".into(),
        }
    }
}

/// One throughput measurement.
#[derive(Debug, Clone)]
pub struct Throughput {
    /// Who talked.
    pub pairing: Pairing,
    /// How they waited.
    pub mode: Mode,
    /// What was measured.
    pub kind: ThroughputKind,
    /// The figure, in `kind.unit()`.
    pub value: f64,
    /// CPU time the server side used, in cores (1.0 = one core busy for the whole run), when measured.
    pub server_cores: Option<f64>,
    /// For a busy-polling xdpstack server: the share of its worker's time spent on loop turns that
    /// found work (it spins the rest, so its CPU time is always a full core).
    pub server_work: Option<f64>,
    /// How long it ran.
    pub duration: Duration,
}

/// A run of the unmodified `sockperf` client.
#[derive(Debug, Clone)]
pub struct Sockperf {
    /// Against what ("kernel sockperf server" or "xdpstack sockperf service").
    pub target: String,
    /// Over what.
    pub proto: Proto,
    /// Message size.
    pub size: usize,
    /// Percentiles sockperf printed, in microseconds: (label, value) such as ("50.000", 5.2).
    pub percentiles: Vec<(String, f64)>,
    /// sockperf's own summary line(s).
    pub summary: String,
}

/// A named measured fraction of time, for the per-stage breakdown.
#[derive(Debug, Clone)]
pub struct Stage {
    /// The round trip it is part of (the stages of one path add up to its total).
    pub path: String,
    /// What.
    pub name: String,
    /// Nanoseconds per round trip (or per packet).
    pub nanos: f64,
}

/// Everything one run of `xdpstack-bench` measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Where.
    pub machine: MachineInfo,
    /// `--quick` (a few seconds a scenario: checks that nothing rots; the figures mean little).
    pub quick: bool,
    /// Ping-pong latencies.
    pub latency: Vec<Latency>,
    /// Throughputs.
    pub throughput: Vec<Throughput>,
    /// sockperf runs.
    pub sockperf: Vec<Sockperf>,
    /// Where the time of a stack round trip goes.
    pub stages: Vec<Stage>,
}

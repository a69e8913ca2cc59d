//! Ratios and targets: every figure's ratio to its baseline (the kernel pairing, or the floor), the
//! limits the floors put on this path, and the targets the stack is held to.

use std::collections::BTreeSet;

use crate::results::{Latency, Mode, Pairing, Proto, Report, Throughput, ThroughputKind};

/// One target the stack is held to, checked against a run.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetCheck {
    /// What is compared with what, and the bound's direction, e.g.
    /// `(1) busy-poll kernel-stack p50 <= 0.7 x kernel-kernel p50 [udp 64 B]`.
    pub name: String,
    /// The measured ratio, when both sides were measured.
    pub measured: Option<f64>,
    /// The bound on the ratio.
    pub bound: f64,
    /// `Some(true)` PASS, `Some(false)` MISS, `None` n/a (not measured).
    pub pass: Option<bool>,
}

impl TargetCheck {
    pub(super) fn new(name: String, measured: Option<f64>, bound: f64, at_most: bool) -> TargetCheck {
        let pass = measured.map(|m| if at_most { m <= bound } else { m >= bound });
        TargetCheck { name, measured, bound, pass }
    }

    /// `PASS`, `MISS` or `n/a`.
    pub fn status(&self) -> &'static str {
        match self.pass {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "n/a",
        }
    }
}

/// `a / b`, when both are finite and `b` is positive.
pub(super) fn ratio(a: f64, b: f64) -> Option<f64> {
    (a.is_finite() && b.is_finite() && b > 0.0).then(|| a / b)
}

/// The first latency measured for this pairing, mode, protocol and size.
pub(super) fn find_latency(
    report: &Report,
    pairing: Pairing,
    mode: Mode,
    proto: Proto,
    size: usize,
) -> Option<&Latency> {
    report
        .latency
        .iter()
        .find(|l| l.pairing == pairing && l.mode == mode && l.proto == proto && l.size == size)
}

/// The ratio of `l`'s value at `quantile` to the one of `baseline` in the same (mode, proto, size).
pub(super) fn latency_ratio_to(
    report: &Report,
    l: &Latency,
    baseline: Pairing,
    quantile: f64,
) -> Option<f64> {
    let base = find_latency(report, baseline, l.mode, l.proto, l.size)?;
    if l.hist.is_empty() || base.hist.is_empty() {
        return None;
    }
    ratio(l.hist.value_at_quantile(quantile) as f64, base.hist.value_at_quantile(quantile) as f64)
}

/// This latency's p50 over the kernel-kernel p50 of the same mode, protocol and size.
pub fn latency_vs_kernel(report: &Report, l: &Latency) -> Option<f64> {
    latency_ratio_to(report, l, Pairing::KernelKernel, 0.5)
}

/// For UDP: this latency's p50 over the p50 of its floor (the bare AF_XDP reflector with the same kind
/// of client, [`Pairing::floor`]) in the same mode and size.
pub fn latency_vs_floor(report: &Report, l: &Latency) -> Option<f64> {
    if l.proto != Proto::Udp {
        return None;
    }
    latency_ratio_to(report, l, l.pairing.floor(), 0.5)
}

/// The throughput per server core: over the busy-polling stack's work time when it reported one,
/// otherwise over the server core's CPU time, when measured.
pub fn per_core(t: &Throughput) -> Option<f64> {
    t.server_work.or(t.server_cores).and_then(|cores| ratio(t.value, cores))
}

/// The paths of the stage breakdown, in order of first appearance.
pub(super) fn stage_paths(report: &Report) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    for s in &report.stages {
        if !paths.contains(&s.path) {
            paths.push(s.path.clone());
        }
    }
    paths
}

/// The first throughput measured for this pairing, mode and kind.
pub(super) fn find_throughput(
    report: &Report,
    pairing: Pairing,
    mode: Mode,
    kind: ThroughputKind,
) -> Option<&Throughput> {
    report.throughput.iter().find(|t| t.pairing == pairing && t.mode == mode && t.kind == kind)
}

/// This throughput over kernel-kernel's of the same kind and mode.
pub fn throughput_vs_kernel(report: &Report, t: &Throughput) -> Option<f64> {
    let base = find_throughput(report, Pairing::KernelKernel, t.mode, t.kind)?;
    ratio(t.value, base.value)
}

/// The (proto, size) pairs measured in busy-poll mode, for `protos`.
pub(super) fn busy_poll_sizes(report: &Report, proto: Proto) -> BTreeSet<usize> {
    report.latency.iter().filter(|l| l.mode == Mode::BusyPoll && l.proto == proto).map(|l| l.size).collect()
}

/// The modes in which `kind` was measured.
pub(super) fn throughput_modes(
    report: &Report,
    kind: impl Fn(ThroughputKind) -> bool,
) -> BTreeSet<(ThroughputKind, Mode)> {
    report.throughput.iter().filter(|t| kind(t.kind)).map(|t| (t.kind, t.mode)).collect()
}

/// A busy-poll latency ratio `pairing / baseline` at `quantile` for one protocol and size.
pub(super) fn busy_poll_ratio(
    report: &Report,
    pairing: Pairing,
    baseline: Pairing,
    proto: Proto,
    size: usize,
    q: f64,
) -> Option<f64> {
    let l = find_latency(report, pairing, Mode::BusyPoll, proto, size)?;
    latency_ratio_to(report, l, baseline, q)
}

/// What the path itself allows, next to the latency targets: the floors as ratios to the kernel
/// pairing, and the stack server's round trip without the stack's own time (from stage timing). A
/// target below its limit cannot be met by any stack on this path.
pub fn limits(report: &Report) -> Vec<(String, Option<f64>)> {
    let mut out = Vec::new();
    let kk = Pairing::KernelKernel;
    for size in busy_poll_sizes(report, Proto::Udp) {
        for (floor, what) in [
            (Pairing::XdpTx, "answered in the driver, no user space (kernel-xdp-tx)"),
            (Pairing::Reflector, "bare AF_XDP reflector (kernel-reflector), the floor of target 1"),
            (Pairing::AfXdpReflector, "bare AF_XDP on both ends (afxdp-reflector), the floor of target 3"),
        ] {
            if let Some(m) = busy_poll_ratio(report, floor, kk, Proto::Udp, size, 0.5) {
                out.push((format!("udp {size} B: {what}, p50 over kernel-kernel p50"), Some(m)));
            }
        }
    }
    for proto in [Proto::Udp, Proto::Tcp] {
        let path = format!("kernel client -> xdpstack server, {} 64 B, busy-poll, mean", proto.label());
        let own = report.stages.iter().find(|s| s.path == path && s.name.starts_with("xdpstack"));
        let ks = find_latency(report, Pairing::KernelStack, Mode::BusyPoll, proto, 64);
        let base = find_latency(report, kk, Mode::BusyPoll, proto, 64);
        if let (Some(own), Some(ks), Some(base)) = (own, ks, base) {
            let without = ks.hist.value_at_quantile(0.5) as f64 - own.nanos;
            out.push((
                format!(
                    "{} 64 B: kernel-stack p50 minus the stack's own {:.2} µs, over kernel-kernel p50",
                    proto.label(),
                    own.nanos / 1000.0
                ),
                ratio(without, base.hist.value_at_quantile(0.5) as f64),
            ));
        }
    }
    out
}

/// Checks the run against the targets the stack is held to:
///
/// 1. busy-poll kernel-stack p50 <= 0.7 x kernel-kernel p50 (per UDP size, and per TCP size);
/// 2. busy-poll kernel-stack p50 <= 1.15 x kernel-reflector p50 (per UDP size);
/// 3. busy-poll stack-stack p50 <= 0.45 x kernel-kernel p50, and its p99.9 <= kernel-kernel p99.9
///    (per protocol and size);
/// 4. UDP echo per server core, kernel-stack >= 2 x kernel-kernel (per flow count and mode; the
///    client is Linux in both, so only the server differs; n/a unless both server CPU times are known);
/// 5. TCP bulk with 1 flow, the better of kernel-stack and stack-stack >= 1.0 x kernel-kernel (per mode);
/// 6. TCP connection rate, kernel-stack >= 2 x kernel-kernel (per mode).
///
/// A target with nothing measured appears once, as n/a.
pub fn targets(report: &Report) -> Vec<TargetCheck> {
    let mut out = Vec::new();
    let (kk, ks, ss) = (Pairing::KernelKernel, Pairing::KernelStack, Pairing::StackStack);

    for proto in [Proto::Udp, Proto::Tcp] {
        let name = |size: &str| {
            format!("(1) busy-poll kernel-stack p50 <= 0.7 x kernel-kernel p50 [{} {size}]", proto.label())
        };
        let sizes = busy_poll_sizes(report, proto);
        if sizes.is_empty() {
            out.push(TargetCheck::new(name("-"), None, 0.7, true));
        }
        for size in sizes {
            let m = busy_poll_ratio(report, ks, kk, proto, size, 0.5);
            out.push(TargetCheck::new(name(&format!("{size} B")), m, 0.7, true));
        }
    }

    let name =
        |size: &str| format!("(2) busy-poll kernel-stack p50 <= 1.15 x kernel-reflector p50 [udp {size}]");
    let sizes = busy_poll_sizes(report, Proto::Udp);
    if sizes.is_empty() {
        out.push(TargetCheck::new(name("-"), None, 1.15, true));
    }
    for size in sizes {
        let m = busy_poll_ratio(report, ks, Pairing::Reflector, Proto::Udp, size, 0.5);
        out.push(TargetCheck::new(name(&format!("{size} B")), m, 1.15, true));
    }

    let mut any = false;
    for proto in [Proto::Udp, Proto::Tcp] {
        for size in busy_poll_sizes(report, proto) {
            any = true;
            let at = format!("{} {size} B", proto.label());
            let m = busy_poll_ratio(report, ss, kk, proto, size, 0.5);
            out.push(TargetCheck::new(
                format!("(3) busy-poll stack-stack p50 <= 0.45 x kernel-kernel p50 [{at}]"),
                m,
                0.45,
                true,
            ));
            let m = busy_poll_ratio(report, ss, kk, proto, size, 0.999);
            out.push(TargetCheck::new(
                format!("(3) busy-poll stack-stack p99.9 <= 1.0 x kernel-kernel p99.9 [{at}]"),
                m,
                1.0,
                true,
            ));
        }
    }
    if !any {
        out.push(TargetCheck::new("(3) busy-poll stack-stack vs kernel-kernel [-]".into(), None, 0.45, true));
    }

    let name = |at: &str| {
        format!("(4) udp echo per server core: kernel-stack >= 2 x kernel-kernel's best per core [{at}]")
    };
    let runs = throughput_modes(report, |k| matches!(k, ThroughputKind::UdpEcho { .. }));
    if runs.is_empty() {
        out.push(TargetCheck::new(name("-"), None, 2.0, false));
    }
    for (kind, mode) in runs {
        let stack = find_throughput(report, ks, mode, kind).and_then(per_core);
        // The kernel in its better mode: a spinning kernel server is always a full core busy.
        let kernel = [Mode::Blocking, Mode::BusyPoll]
            .into_iter()
            .filter_map(|m| find_throughput(report, kk, m, kind).and_then(per_core))
            .reduce(f64::max);
        let m = stack.zip(kernel).and_then(|(s, k)| ratio(s, k));
        out.push(TargetCheck::new(name(&format!("{}, {}", kind.label(), mode.label())), m, 2.0, false));
    }

    // (5) and (6): the better of the two stack pairings against the kernel, per mode.
    let best_of_stack = |out: &mut Vec<TargetCheck>, what: ThroughputKind, factor: f64, label: &str| {
        let name = |at: &str| format!("{label} [{at}]");
        let runs = throughput_modes(report, |k| k == what);
        if runs.is_empty() {
            out.push(TargetCheck::new(name("-"), None, factor, false));
        }
        for (kind, mode) in runs {
            let best = [ks, ss]
                .into_iter()
                .filter_map(|p| {
                    find_throughput(report, p, mode, kind).and_then(|t| throughput_vs_kernel(report, t))
                })
                .reduce(f64::max);
            out.push(TargetCheck::new(name(mode.label()), best, factor, false));
        }
    };
    best_of_stack(
        &mut out,
        ThroughputKind::TcpBulk { flows: 1 },
        1.0,
        "(5) tcp bulk 1 flow: best of kernel-stack, stack-stack >= 1.0 x kernel-kernel",
    );
    best_of_stack(
        &mut out,
        ThroughputKind::TcpConnRate,
        2.0,
        "(6) tcp connection rate: best of kernel-stack, stack-stack >= 2 x kernel-kernel",
    );
    out
}

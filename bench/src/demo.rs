//! A made-up report, for looking at the outputs (`--demo-report DIR`) and for the reporting tests.

use std::path::Path;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::report;
use crate::results::{
    self, Latency, MachineInfo, Mode, Pairing, Proto, Report, Stage, Throughput, ThroughputKind,
};

/// Prints the table of a made-up run and writes all its outputs into `dir`.
pub fn write_demo(dir: &Path) -> std::io::Result<()> {
    let report = demo_report(1);
    report::print_table(&report, &mut std::io::stdout().lock())?;
    for path in report::write_all(&report, dir)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// xorshift64: a seeded generator for made-up figures.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// `n` round trips around `median_ns`: mostly within +-20%, 1% up to 5x, one in 10,000 up to 50x.
fn demo_histogram(rng: &mut XorShift, median_ns: u64, n: usize) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds");
    for _ in 0..n {
        let r = rng.next();
        let spread = median_ns * 4 / 10;
        let mut v = median_ns - median_ns / 5 + r % spread.max(1);
        match (r >> 32) % 10_000 {
            0 => v *= 5 + (r >> 48) % 45,
            1..=100 => v *= 1 + (r >> 48) % 4,
            _ => {}
        }
        let _ = h.record(v);
    }
    h
}

/// A made-up but plausible run: every pairing, both modes, two UDP sizes and one TCP size,
/// every throughput kind, a sockperf run and a stage breakdown.
pub fn demo_report(seed: u64) -> Report {
    let mut rng = XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut report = Report {
        machine: MachineInfo {
            cpu_model: "Demo CPU @ 3.0GHz".into(),
            cpus: 2,
            kernel: "6.18.0-demo".into(),
            date: "2025-01-01T00:00:00Z".into(),
            xdp: "native (veth), zero-copy".into(),
        },
        quick: true,
        ..Report::default()
    };
    let pairings = [
        Pairing::KernelKernel,
        Pairing::KernelStack,
        Pairing::StackStack,
        Pairing::Reflector,
        Pairing::XdpTx,
        Pairing::AfXdpReflector,
    ];
    for (proto, size) in [(Proto::Udp, 64), (Proto::Udp, 1400), (Proto::Tcp, 64)] {
        for mode in [Mode::Blocking, Mode::BusyPoll] {
            for pairing in pairings {
                let floor = matches!(pairing, Pairing::Reflector | Pairing::XdpTx | Pairing::AfXdpReflector);
                if floor && (proto == Proto::Tcp || mode == Mode::Blocking) {
                    continue;
                }
                let base = match (pairing, mode) {
                    (Pairing::KernelKernel, Mode::Blocking) => 30_000,
                    (Pairing::KernelKernel, Mode::BusyPoll) => 12_000,
                    (Pairing::KernelStack, _) => 8_000,
                    (Pairing::StackStack, _) => 4_500,
                    (Pairing::Reflector, _) => 7_500,
                    (Pairing::XdpTx, _) => 5_000,
                    (Pairing::AfXdpReflector, _) => 4_000,
                } + size as u64 * 2;
                report.latency.push(Latency {
                    pairing,
                    mode,
                    proto,
                    size,
                    cores: "client 0, server 1".into(),
                    hist: demo_histogram(&mut rng, base, 20_000),
                });
            }
        }
    }
    let kinds = [
        (ThroughputKind::UdpEcho { flows: 4 }, 900_000.0),
        (ThroughputKind::TcpBulk { flows: 1 }, 9.5),
        (ThroughputKind::TcpConnRate, 40_000.0),
    ];
    for (kind, kernel) in kinds {
        for mode in [Mode::Blocking, Mode::BusyPoll] {
            for (pairing, gain, cores) in [
                (Pairing::KernelKernel, 1.0, 1.6),
                (Pairing::KernelStack, 1.8, 1.0),
                (Pairing::StackStack, 2.4, 1.0),
            ] {
                let jitter = 0.9 + (rng.next() % 200) as f64 / 1000.0;
                report.throughput.push(Throughput {
                    pairing,
                    mode,
                    kind,
                    value: kernel * gain * jitter,
                    server_cores: Some(cores),
                    server_work: None,
                    duration: Duration::from_secs(2),
                });
            }
        }
    }
    report.sockperf.push(results::Sockperf {
        target: "xdpstack sockperf service".into(),
        proto: Proto::Udp,
        size: 64,
        percentiles: vec![("50.000".into(), 8.1), ("99.000".into(), 11.4), ("99.900".into(), 19.0)],
        summary: "sockperf: Summary: Latency is 8.230 usec".into(),
    });
    let path = "kernel client -> xdpstack server, udp 64 B, busy-poll, mean";
    report.stages = [
        ("XDP program to the stack's RX ring", 700.0),
        ("xdpstack: RX ring to TX kick", 400.0),
        ("TX kick, sendto", 1900.0),
        ("kernel client (the rest)", 3100.0),
    ]
    .into_iter()
    .map(|(name, nanos)| Stage { path: path.into(), name: name.into(), nanos })
    .collect();
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_support::TempDir;

    #[test]
    fn test_demo_writes_every_output() {
        let dir = TempDir::new("demo");
        let report = demo_report(7);
        let written = report::write_all(&report, dir.path()).unwrap();
        let names: Vec<String> =
            written.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert!(names.contains(&"results.json".to_string()));
        assert!(names.contains(&"table.txt".to_string()));
        assert_eq!(names.iter().filter(|n| n.ends_with(".hgrm")).count(), report.latency.len());
        // 6 latency figures (3 proto/size x 2 modes) and 3 throughput kinds, each SVG and PNG.
        assert_eq!(names.iter().filter(|n| n.ends_with(".svg")).count(), 9, "{names:?}");
        assert_eq!(names.iter().filter(|n| n.ends_with(".png")).count(), 9, "{names:?}");
        for path in &written {
            assert!(std::fs::metadata(path).unwrap().len() > 0, "{} is empty", path.display());
        }
    }
}

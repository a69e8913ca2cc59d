//! The unmodified `sockperf` client (Debian package `sockperf`), pinned to the client core, in
//! `ping-pong` mode with `--full-rtt` (round trips, as everything else here) and `--nonblocked`
//! (spinning), against the kernel's `sockperf server` and against xdpstack's sockperf service.

use std::io;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use xdpstack::services::{self, Service};

use crate::results::{Mode, Proto, Report, Sockperf};
use crate::topo::Bed;

const PORT: u16 = 11111;

fn sizes(quick: bool) -> &'static [usize] {
    if quick {
        &[64]
    } else {
        &[64, 512, 1400]
    }
}

/// Is the sockperf binary there?
fn available() -> bool {
    Command::new("sockperf")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One client run; the percentiles sockperf printed (microseconds) and its summary.
fn client(bed: &Bed, proto: Proto, size: usize, secs: u64) -> io::Result<(Vec<(String, f64)>, String)> {
    let mut cmd = bed.tb.peer_cmd("taskset");
    cmd.args([
        "-c",
        &bed.cores.client.to_string(),
        "sockperf",
        "ping-pong",
        "-i",
        "10.77.0.2",
        "-p",
        &PORT.to_string(),
    ]);
    cmd.args(["-t", &secs.to_string(), "-m", &size.to_string(), "--full-rtt", "--nonblocked"]);
    if proto == Proto::Tcp {
        cmd.arg("--tcp");
    }
    crate::cleanup::unblock_signals(&mut cmd);
    let out = cmd.stdin(Stdio::null()).output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(io::Error::other(format!("sockperf ping-pong failed: {}", text.trim())));
    }
    Ok(parse(&text))
}

/// Pull "percentile 50.000 = 5.123" lines and the "Summary" line out of sockperf's output.
fn parse(text: &str) -> (Vec<(String, f64)>, String) {
    let clean = strip_escapes(text);
    let mut pct = Vec::new();
    let mut summary = String::new();
    for line in clean.lines() {
        if let Some(rest) = line.split("percentile ").nth(1) {
            if let Some((p, v)) = rest.split_once('=') {
                if let Ok(v) = v.trim().parse::<f64>() {
                    pct.push((p.trim().to_string(), v));
                }
            }
        } else if line.contains("<MIN>") || line.contains("<MAX>") {
            if let Some((k, v)) = line.split_once('=') {
                let key = if k.contains("MIN") { "min" } else { "max" };
                if let Ok(v) = v.trim().parse::<f64>() {
                    pct.push((key.to_string(), v));
                }
            }
        } else if line.contains("Summary:") || line.contains("avg-") {
            summary.push_str(line.trim_start_matches("sockperf: ").trim());
            summary.push(' ');
        }
    }
    (pct, summary.trim().to_string())
}

/// Drops terminal escape sequences (`ESC [ ... letter`) and other control characters but newlines.
fn strip_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else if !c.is_control() || c == '\n' {
            out.push(c);
        }
    }
    out
}

struct KernelServer(Child);

impl Drop for KernelServer {
    fn drop(&mut self) {
        crate::cleanup::stop_child(&mut self.0);
    }
}

fn kernel_server(bed: &Bed, proto: Proto) -> io::Result<KernelServer> {
    let mut cmd = bed.tb.stack_cmd("taskset");
    cmd.args([
        "-c",
        &bed.cores.server.to_string(),
        "sockperf",
        "server",
        "-i",
        "10.77.0.2",
        "-p",
        &PORT.to_string(),
        "--nonblocked",
    ]);
    if proto == Proto::Tcp {
        cmd.arg("--tcp");
    }
    crate::cleanup::unblock_signals(&mut cmd);
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
    crate::cleanup::child(child.id());
    std::thread::sleep(Duration::from_millis(500));
    Ok(KernelServer(child))
}

/// sockperf against the kernel and against xdpstack, UDP and TCP.
pub fn run_all(bed: &Bed, quick: bool, report: &mut Report) -> io::Result<()> {
    if !available() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "sockperf is not installed (scripts/setup.sh installs it)",
        ));
    }
    let secs = if quick { 1 } else { 5 };
    eprintln!("sockperf ping-pong (--full-rtt --nonblocked)");
    bed.kernel_server_addr(true)?;
    for proto in [Proto::Udp, Proto::Tcp] {
        let _server = kernel_server(bed, proto)?;
        for &size in sizes(quick) {
            let (percentiles, summary) = client(bed, proto, size, secs)?;
            push(report, "kernel sockperf server", proto, size, percentiles, summary);
        }
    }
    bed.kernel_server_addr(false)?;
    for proto in [Proto::Udp, Proto::Tcp] {
        let stack = bed.start_server_stack(Mode::BusyPoll)?;
        let svc = match proto {
            Proto::Udp => Service::SockperfUdp(PORT),
            Proto::Tcp => Service::SockperfTcp(PORT),
        };
        let _t = services::start(&stack, svc)?;
        for &size in sizes(quick) {
            let (percentiles, summary) = client(bed, proto, size, secs)?;
            push(report, "xdpstack sockperf service", proto, size, percentiles, summary);
        }
        let lost = stack.shutdown().frames_lost();
        if lost != 0 {
            return Err(io::Error::other(format!("{lost} UMEM frames lost")));
        }
    }
    Ok(())
}

fn push(
    report: &mut Report,
    target: &str,
    proto: Proto,
    size: usize,
    percentiles: Vec<(String, f64)>,
    summary: String,
) {
    let p50 = percentiles.iter().find(|(p, _)| p.starts_with("50")).map_or(f64::NAN, |(_, v)| *v);
    eprintln!("  {target:<26} {} {size:>5} B: p50 {p50:.2} us", proto.label());
    report.sockperf.push(Sockperf { target: target.into(), proto, size, percentiles, summary });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sockperf_output() {
        let text = "sockperf: Summary: Round trip is 17.837 usec\nsockperf: \u{1b}[2;35mTotal 43433 observations\u{1b}[0m\n\
sockperf: ---> <MAX> observation = 2450.514\nsockperf: ---> percentile 99.999 = 2450.514\nsockperf: ---> percentile 50.000 =   17.981\n\
sockperf: ---> <MIN> observation =    6.464\n";
        let (p, s) = parse(text);
        assert!(p.contains(&("50.000".to_string(), 17.981)));
        assert!(p.contains(&("min".to_string(), 6.464)));
        assert!(p.contains(&("max".to_string(), 2450.514)));
        assert!(s.contains("Round trip is 17.837"));
        assert_eq!(strip_escapes("a\u{1b}[2;35mTotal\u{1b}[0m b\r\n"), "aTotal b\n");
    }
}

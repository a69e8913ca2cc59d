//! The unmodified `sockperf` client (Debian package) against the stack's sockperf service on the real
//! path, UDP and TCP, in `ping-pong` and `under-load` modes: the client must finish cleanly, count
//! every reply it asked for, and print its latency summary.

mod common;

use std::process::Stdio;

use common::*;
use xdpstack::services::{self, Service};

const PORT: u16 = 11111;

/// Runs `sockperf <mode>` from the peer namespace for one second; returns its output.
fn sockperf(tb: &xdpstack::testbed::Testbed, mode: &str, tcp: bool, extra: &[&str]) -> String {
    let mut cmd = tb.peer_cmd("sockperf");
    cmd.args([mode, "-i", "10.77.0.2", "-p", &PORT.to_string(), "-t", "1", "-m", "200"]);
    if tcp {
        cmd.arg("--tcp");
    }
    cmd.args(extra);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run sockperf (scripts/setup.sh installs it): {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sockperf {mode} (tcp: {tcp}) failed:\n{text}");
    text
}

/// The number after `label` in sockperf's "[Valid Duration] ... SentMessages=N; ReceivedMessages=M"
/// line.
fn field(text: &str, label: &str) -> u64 {
    let line = text.lines().find(|l| l.contains("Valid Duration")).unwrap_or_else(|| panic!("{text}"));
    let at = line.find(label).unwrap_or_else(|| panic!("no {label} in {line}")) + label.len();
    line[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap()
}

fn check(text: &str, mode: &str) {
    assert!(text.contains("Summary: Latency"), "{mode}: no latency summary:\n{text}");
    let (sent, received) = (field(text, "SentMessages="), field(text, "ReceivedMessages="));
    assert!(sent > 100, "{mode}: only {sent} messages sent:\n{text}");
    match mode {
        // Every message asks for a reply.
        "ping-pong" => assert!(received + 2 >= sent, "{mode}: {received} of {sent} came back:\n{text}"),
        // One message in --reply-every asks for one.
        _ => assert!(received >= sent / 100 / 2 && received > 0, "{mode}: {received} replies:\n{text}"),
    }
}

#[test]
fn the_sockperf_client_measures_the_service_over_udp_and_tcp() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let _svc = services::start(&stack, Service::Sockperf(PORT)).unwrap();
    for tcp in [false, true] {
        let text = sockperf(&tb, "ping-pong", tcp, &[]);
        check(&text, "ping-pong");
        let text = sockperf(&tb, "under-load", tcp, &["--mps", "20000", "--reply-every", "100"]);
        check(&text, "under-load");
    }
    finish(stack);
}

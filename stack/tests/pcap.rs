//! The pcap capture on the real path: the kernel peer pings the stack and sends UDP to an echo
//! socket while the stack records; `tshark` then reads the file with no malformed packet, and it
//! holds exactly the frames the stack received and sent. A second run with a small cap stops on a
//! whole record below the cap. The same two through the command line: `xdpstack run --pcap FILE
//! [--pcap-max-bytes N]`, stopped with SIGINT, checked against the counters it prints on exit.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use xdpstack::phy::PcapConfig;
use xdpstack::UdpSocket;

fn temp_pcap(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("xdpstack-test-{}-{tag}.pcap", std::process::id()))
}

/// Lines tshark prints for `filter` (every frame when empty), one per frame; panics with its stderr
/// when tshark fails.
fn tshark(file: &Path, filter: &str) -> Vec<String> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(file).args(["-T", "fields", "-e", "frame.number"]);
    if !filter.is_empty() {
        cmd.args(["-Y", filter]);
    }
    let out = cmd.output().expect("tshark is installed (scripts/setup.sh installs it)");
    assert!(out.status.success(), "tshark failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

fn value(counters: &[(&'static str, u64)], name: &str) -> u64 {
    counters.iter().find(|(n, _)| *n == name).map(|(_, v)| *v).unwrap_or_else(|| panic!("no {name}"))
}

/// Traffic: 4 pings from the kernel, 5 UDP datagrams echoed back.
fn traffic(tb: &xdpstack::testbed::Testbed, stack: &xdpstack::Stack) {
    let echo = UdpSocket::bind(stack, "0.0.0.0:7").unwrap();
    echo.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let out = peer_run(tb, "ping", &["-c", "4", "-i", "0.2", "-W", "2", &stack_ip(tb)]);
    assert!(out.contains("4 received"), "{out}");
    let k = peer_udp(tb, "10.77.0.1:0");
    let mut buf = [0u8; 2048];
    for i in 0..5u8 {
        k.send_to(&[i; 300], format!("{}:7", stack_ip(tb))).unwrap();
        let (n, from) = echo.recv_from(&mut buf).unwrap();
        echo.send_to(&buf[..n], from).unwrap();
        let (m, _) = k.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..m], &[i; 300]);
    }
}

#[test]
fn capture_holds_every_frame_in_and_out_and_tshark_reads_it() {
    let tb = testbed(1);
    let file = temp_pcap("full");
    let path = file.clone();
    let stack = start(&tb, move |c| c.pcap = Some(PcapConfig::new(path)));
    traffic(&tb, &stack);
    let report = finish(stack);
    let (rx, tx) = (value(&report.counters, "XskRxFrames"), value(&report.counters, "XskTxFrames"));
    assert_eq!(value(&report.counters, "PcapFrames"), rx + tx);
    assert_eq!(value(&report.counters, "PcapFramesDropped"), 0);

    let all = tshark(&file, "");
    assert_eq!(all.len() as u64, rx + tx, "every frame received ({rx}) and sent ({tx})");
    assert!(tshark(&file, "_ws.malformed").is_empty(), "malformed frames in the capture");
    assert_eq!(tshark(&file, "icmp.type == 8").len(), 4);
    assert_eq!(tshark(&file, "icmp.type == 0").len(), 4);
    assert_eq!(tshark(&file, "udp.port == 7 && udp.length == 308").len(), 10);
    assert!(!tshark(&file, "arp").is_empty(), "ARP is captured too");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn capture_stops_at_its_cap_on_a_whole_record() {
    let tb = testbed(1);
    let file = temp_pcap("capped");
    let path = file.clone();
    let cap = 1500;
    let stack = start(&tb, move |c| c.pcap = Some(PcapConfig { path, max_bytes: cap }));
    traffic(&tb, &stack);
    let report = finish(stack);
    let written = value(&report.counters, "PcapFrames");
    let dropped = value(&report.counters, "PcapFramesDropped");
    let (rx, tx) = (value(&report.counters, "XskRxFrames"), value(&report.counters, "XskTxFrames"));
    assert!(written > 0 && dropped > 0, "written {written}, dropped {dropped}");
    assert_eq!(written + dropped, rx + tx);
    let size = std::fs::metadata(&file).unwrap().len();
    assert!(size <= cap, "{size} bytes over the cap of {cap}");
    assert_eq!(tshark(&file, "").len() as u64, written);
    assert!(tshark(&file, "_ws.malformed").is_empty());
    let _ = std::fs::remove_file(&file);
}

/// Run `xdpstack run --pcap FILE EXTRA...` on the testbed's stack end, let the kernel peer ping it
/// `pings` times, stop it with SIGINT by its pid, and return its exit report's counters (it prints
/// only those that are not zero).
fn run_cli_capture(
    tb: &xdpstack::testbed::Testbed,
    file: &Path,
    extra: &[&str],
    pings: u32,
) -> HashMap<String, u64> {
    let rd = std::env::temp_dir().join(format!("xdpstack-pcap-run-{}", tb.config.name));
    let mut child = tb
        .stack_cmd(env!("CARGO_BIN_EXE_xdpstack"))
        .env("RUST_LOG", "warn")
        .args(["run", "--iface", &tb.stack_if, "--addr", &tb.stack_cidr(), "--name", "pcap-cli", "--run-dir"])
        .arg(&rd)
        .arg("--pcap")
        .arg(file)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run xdpstack");
    // `ip netns exec` execs the program, so the child's pid is xdpstack's.
    let pid = child.id();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    stdout.read_line(&mut banner).unwrap();
    if !banner.starts_with("xdpstack running on ") {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!("xdpstack run did not start: {banner}{}", String::from_utf8_lossy(&out.stderr));
    }
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim_end(), "xdpstack");

    let out = peer_run(tb, "ping", &["-c", &pings.to_string(), "-i", "0.2", "-W", "2", &stack_ip(tb)]);
    assert!(out.contains(&format!("{pings} received")), "{out}");

    // Safety: kill(2) on the pid of the child this test started and has not reaped yet.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) }, 0);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {rest}{stderr}", out.status);
    let _ = std::fs::remove_dir_all(&rd);
    let mut lines = rest.lines();
    assert!(lines.any(|l| l == "counters:"), "{rest}");
    let counters: HashMap<String, u64> = lines
        .map_while(|l| l.strip_prefix("  "))
        .map(|l| {
            let mut w = l.split_whitespace();
            (w.next().unwrap().to_string(), w.next().unwrap().parse().unwrap())
        })
        .collect();
    let frames = rest.lines().find(|l| l.starts_with("frames: ")).unwrap_or_else(|| panic!("{rest}"));
    assert!(frames.ends_with(" 0 lost"), "{frames}");
    counters
}

#[test]
fn xdpstack_run_pcap_records_the_pings_until_sigint() {
    let tb = testbed(1);
    let file = temp_pcap("cli");
    let c = run_cli_capture(&tb, &file, &[], 4);
    let get = |n: &str| c.get(n).copied().unwrap_or(0);
    let written = get("PcapFrames");
    assert_eq!(written, get("XskRxFrames") + get("XskTxFrames"), "{c:?}");
    assert_eq!(get("PcapFramesDropped"), 0, "{c:?}");
    assert_eq!(tshark(&file, "").len() as u64, written);
    assert!(tshark(&file, "_ws.malformed").is_empty(), "malformed frames in the capture");
    assert_eq!(tshark(&file, "icmp.type == 8").len(), 4);
    assert_eq!(tshark(&file, "icmp.type == 0").len(), 4);
    let _ = std::fs::remove_file(&file);
}

#[test]
fn xdpstack_run_pcap_max_bytes_stops_on_a_whole_record() {
    let tb = testbed(1);
    let file = temp_pcap("cli-capped");
    // Eight 98-byte ICMP frames and the ARP exchange do not fit in 600 bytes.
    let cap = 600;
    let c = run_cli_capture(&tb, &file, &["--pcap-max-bytes", &cap.to_string()], 4);
    let get = |n: &str| c.get(n).copied().unwrap_or(0);
    let (written, dropped) = (get("PcapFrames"), get("PcapFramesDropped"));
    assert!(written > 0 && dropped > 0, "{c:?}");
    assert_eq!(written + dropped, get("XskRxFrames") + get("XskTxFrames"), "{c:?}");
    let size = std::fs::metadata(&file).unwrap().len();
    assert!(size <= cap, "{size} bytes over the cap of {cap}");
    assert_eq!(tshark(&file, "").len() as u64, written);
    assert!(tshark(&file, "_ws.malformed").is_empty());
    let _ = std::fs::remove_file(&file);
}

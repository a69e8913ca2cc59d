//! Seeing a running stack: `xdpstack ss` and `xdpstack stat` (the real binary) against a stack on the
//! veth testbed with real kernel traffic, the `/proc/net`-format files read by a parser written here
//! (independent of the stack's formatter), the control socket's answers to malformed requests,
//! and the errors for unknown, stale, busy and forbidden instances; two stacks under one run
//! directory; raw sockets in `ss -w` and `net/raw`; ICMP and TCP counters against the traffic sent
//! (TCP segments against the stack's own capture of the exchange, counted by tshark).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::*;
use xdpstack::phy::PcapConfig;
use xdpstack::tcp::State;
use xdpstack::testbed::Testbed;
use xdpstack::{Config, RawSocket, SocketKind, Stack, TcpListener, UdpSocket};

fn run_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xdpstack-observe-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn xdpstack(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xdpstack")).args(args).output().expect("run xdpstack")
}

fn stdout_of(args: &[&str]) -> String {
    let out = xdpstack(args);
    assert!(out.status.success(), "xdpstack {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A failure: non-zero exit and exactly one line on stderr, which is returned.
fn one_line_error(out: &Output, code: Option<i32>) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected failure, got {}", String::from_utf8_lossy(&out.stdout));
    if let Some(c) = code {
        assert_eq!(out.status.code(), Some(c), "{err}");
    }
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    err
}

/// `ss` rows as (netid, state, recv-q, send-q, local, peer, fd, worker), header checked.
fn ss_rows(text: &str) -> Vec<Vec<String>> {
    let mut lines = text.lines().filter(|l| !l.starts_with('\t'));
    let header = lines.next().expect("header");
    assert!(header.starts_with("Netid State"), "{text}");
    lines.map(|l| l.split_whitespace().map(String::from).collect()).collect()
}

/// One row of a `/proc/net/{tcp,udp,raw}` file, read field by field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcRow {
    sl: u32,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    st: u8,
    tx_queue: u32,
    rx_queue: u32,
    inode: u64,
}

/// An independent reader of the kernel's /proc/net/{tcp,udp,raw} layout.
fn parse_proc_net(text: &str) -> Vec<ProcRow> {
    let mut lines = text.lines();
    let header = lines.next().expect("header line");
    let cols: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(&cols[..4], ["sl", "local_address", "rem_address", "st"], "{header}");
    let addr = |s: &str| {
        let (a, p) = s.split_once(':').expect("addr:port");
        assert_eq!((a.len(), p.len()), (8, 4), "{s}");
        let raw = u32::from_str_radix(a, 16).expect("hex address");
        // The kernel prints the network-order address as a native (little-endian) number.
        let ip = Ipv4Addr::from(raw.to_le_bytes());
        SocketAddrV4::new(ip, u16::from_str_radix(p, 16).expect("hex port"))
    };
    let hex_pair = |s: &str, widths: (usize, usize)| {
        let (a, b) = s.split_once(':').unwrap_or_else(|| panic!("a:b expected, got {s}"));
        assert_eq!((a.len(), b.len()), widths, "{s}");
        (u32::from_str_radix(a, 16).expect("hex"), u32::from_str_radix(b, 16).expect("hex"))
    };
    lines
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() >= 10, "{l}");
            let sl = f[0].strip_suffix(':').and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("sl: {l}"));
            let (tx_queue, rx_queue) = hex_pair(f[4], (8, 8));
            hex_pair(f[5], (2, 8)); // tr:tm->when
            assert!(f[6].len() == 8 && u32::from_str_radix(f[6], 16).is_ok(), "retrnsmt: {l}");
            assert!(f[7].parse::<u32>().is_ok(), "uid: {l}");
            assert!(f[8].parse::<u64>().is_ok(), "timeout: {l}");
            let st = u8::from_str_radix(f[3], 16).expect("hex state");
            assert_eq!(f[3].len(), 2, "{l}");
            let inode = f[9].parse().expect("inode");
            ProcRow { sl, local: addr(f[1]), remote: addr(f[2]), st, tx_queue, rx_queue, inode }
        })
        .collect()
}

/// (local, remote, state) of each row.
fn endpoints(rows: &[ProcRow]) -> Vec<(SocketAddrV4, SocketAddrV4, u8)> {
    rows.iter().map(|r| (r.local, r.remote, r.st)).collect()
}

fn stat_map(text: &str) -> HashMap<String, u64> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("#kernel"), "{text}");
    lines
        .map(|l| {
            let mut w = l.split_whitespace();
            (w.next().unwrap().to_string(), w.next().unwrap().parse().unwrap())
        })
        .collect()
}

fn control_request(dir: &Path, bytes: &[u8]) -> String {
    let mut s = UnixStream::connect(dir.join("control")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(bytes).unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    line
}

#[test]
fn ss_and_proc_files_show_exactly_the_sockets_that_exist() {
    let tb = testbed(1);
    let rd = run_dir("ss");
    let name = format!("obs-ss-{}", std::process::id());
    let (rd2, name2) = (rd.clone(), name.clone());
    let stack = start(&tb, move |c| {
        c.name = Some(name2);
        c.run_dir = Some(rd2);
    });
    let dir = rd.join(&name);
    assert_eq!(stack.control_dir(), Some(dir.as_path()));
    let mode = std::fs::metadata(dir.join("control")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let rds = rd.to_str().unwrap().to_string();
    let ss = |extra: &[&str]| {
        let mut a = vec!["ss", "--name", name.as_str(), "--run-dir", rds.as_str()];
        a.extend_from_slice(extra);
        stdout_of(&a)
    };

    let listener = TcpListener::bind(&stack, "0.0.0.0:5001").unwrap();
    let udp = UdpSocket::bind(&stack, "0.0.0.0:5002").unwrap();
    let mut kernel = tb.in_peer_ns(|| std::net::TcpStream::connect("10.77.0.2:5001")).unwrap().unwrap();
    kernel.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let kernel_addr = match kernel.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        other => panic!("{other}"),
    };
    let (mut conn, _) = listener.accept().unwrap();
    kernel.write_all(&[7u8; 100]).unwrap();
    let mut buf = [0u8; 100];
    conn.read_exact(&mut buf).unwrap();
    conn.write_all(&[9u8; 50]).unwrap();
    kernel.read_exact(&mut buf[..50]).unwrap();

    // ss -a: exactly the listener, the connection and the UDP socket, with their descriptors.
    let lfd = listener.descriptor().to_string();
    let cfd = conn.descriptor().to_string();
    let ufd = udp.descriptor().to_string();
    let rows: BTreeSet<Vec<String>> = ss_rows(&ss(&["-a"])).into_iter().collect();
    let expect: BTreeSet<Vec<String>> = [
        ["tcp", "LISTEN", "0", "128", "0.0.0.0:5001", "0.0.0.0:*", &lfd, "*"],
        ["tcp", "ESTAB", "0", "0", "10.77.0.2:5001", &kernel_addr.to_string(), &cfd, "0"],
        ["udp", "UNCONN", "0", "0", "0.0.0.0:5002", "0.0.0.0:*", &ufd, "0"],
    ]
    .iter()
    .map(|r| r.iter().map(|s| s.to_string()).collect())
    .collect();
    assert_eq!(rows, expect);

    // Default: connected sockets only; -l: listening ones; -t/-u select protocols; filters.
    let only = |args: &[&str]| ss_rows(&ss(args)).into_iter().map(|r| r[1].clone()).collect::<Vec<_>>();
    assert_eq!(only(&[]), ["ESTAB"]);
    assert_eq!(only(&["-l"]), ["LISTEN", "UNCONN"]);
    assert_eq!(only(&["-l", "-u"]), ["UNCONN"]);
    assert_eq!(only(&["-a", "-t", "sport", "=", ":5001", "and", "dst", "10.77.0.1"]), ["ESTAB"]);
    assert_eq!(only(&["-a", "state", "listening"]), ["LISTEN"]);
    assert_eq!(only(&["-a", &format!("dport = :{}", kernel_addr.port() + 1)]), Vec::<String>::new());

    // ss -i: TCP internals of the connection, plausible for a 1500-byte MTU path.
    let text = ss(&["-t", "-i"]);
    let info = text.lines().find(|l| l.starts_with('\t')).unwrap_or_else(|| panic!("no -i line: {text}"));
    let kv: HashMap<&str, &str> = info.split_whitespace().filter_map(|w| w.split_once(':')).collect();
    for k in ["rtt", "rto", "cwnd", "mss", "wscale", "retrans", "bytes_acked", "bytes_received"] {
        assert!(kv.contains_key(k), "{k} missing in {info}");
    }
    let mss: u32 = kv["mss"].parse().unwrap();
    assert!((1400..=1460).contains(&mss), "{info}");
    assert!(kv["cwnd"].parse::<u32>().unwrap() > 0, "{info}");
    assert_eq!(kv["bytes_received"], "100", "{info}");
    assert!(kv["rto"].parse::<f64>().unwrap() >= 200.0, "{info}");

    // The /proc-format files, rewritten by that request.
    let tcp = parse_proc_net(&std::fs::read_to_string(dir.join("net/tcp")).unwrap());
    let got: BTreeSet<_> = endpoints(&tcp).into_iter().collect();
    let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
    let stack_addr = SocketAddrV4::new(tb.config.stack_addr, 5001);
    let want: BTreeSet<_> =
        [("0.0.0.0:5001".parse().unwrap(), any, 0x0A), (stack_addr, kernel_addr, 0x01)].into_iter().collect();
    assert_eq!(got, want);
    let udp_rows = parse_proc_net(&std::fs::read_to_string(dir.join("net/udp")).unwrap());
    assert_eq!(endpoints(&udp_rows), [("0.0.0.0:5002".parse().unwrap(), any, 0x07)]);
    assert!(std::fs::read_to_string(dir.join("net/raw")).unwrap().starts_with("  sl  local_address"));

    // A malformed control request gets an error answer; the stack carries on.
    assert!(control_request(&dir, b"GET / HTTP/1.0\n").starts_with("XDPSTACK/1 ERR malformed"));
    assert!(control_request(&dir, b"XDPSTACK/9 sockets\n").starts_with("XDPSTACK/1 ERR unsupported"));
    assert!(control_request(&dir, &[b'x'; 10_000]).starts_with("XDPSTACK/1 ERR request longer"));
    assert!(control_request(&dir, b"\xff\xfe\n").starts_with("XDPSTACK/1 ERR"));
    assert!(control_request(&dir, b"XDPSTACK/1 info\n").starts_with("XDPSTACK/1 OK"));
    let peer = peer_udp(&tb, "10.77.0.1:0");
    peer.send_to(b"still here", "10.77.0.2:5002").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (n, _) = udp.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"still here");

    // Recv-Q of a datagram socket counts the bytes waiting, as Linux's does.
    peer.send_to(&[1u8; 10], "10.77.0.2:5002").unwrap();
    peer.send_to(&[2u8; 20], "10.77.0.2:5002").unwrap();
    let queued = || ss_rows(&ss(&["-u", "-a"]))[0][2].clone();
    assert!(wait_for(Duration::from_secs(3), || queued() == "30"), "Recv-Q {}", queued());
    assert_eq!(udp.recv_from(&mut buf).unwrap().0, 10);
    assert_eq!(udp.recv_from(&mut buf).unwrap().0, 20);
    assert_eq!(queued(), "0");

    // The stack closes first: its side ends in TIME-WAIT, with no descriptor, in ss and net/tcp.
    drop(conn);
    assert_eq!(kernel.read(&mut buf).unwrap(), 0);
    drop(kernel);
    let tw_seen = wait_for(Duration::from_secs(5), || {
        stack.socket_table().unwrap().iter().any(|s| s.state == Some(State::TimeWait) && s.fd.is_none())
    });
    assert!(tw_seen, "{:?}", stack.socket_table());
    let rows = ss_rows(&ss(&["-t", "state", "time-wait"]));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][..7], ["tcp", "TIME-WAIT", "0", "0", "10.77.0.2:5001", &kernel_addr.to_string(), "-"]);
    assert!(ss_rows(&ss(&[])).is_empty(), "TIME-WAIT is not shown without -a, as in ss");
    let tcp = parse_proc_net(&std::fs::read_to_string(dir.join("net/tcp")).unwrap());
    assert!(endpoints(&tcp).contains(&(stack_addr, kernel_addr, 0x06)), "{tcp:?}");
    let table = stack.socket_table().unwrap();
    assert_eq!(table.iter().filter(|s| s.kind == SocketKind::Tcp).count(), 2, "{table:?}");

    // Unknown filters and instances: one line, non-zero exit.
    let out = xdpstack(&["ss", "--name", &name, "--run-dir", &rds, "state", "bogus"]);
    assert!(one_line_error(&out, Some(2)).contains("unknown state"));
    let out = xdpstack(&["ss", "--name", &name, "--run-dir", &rds, "frobnicate"]);
    assert!(one_line_error(&out, Some(2)).contains("unknown filter \"frobnicate\""));
    let out = xdpstack(&["ss", "--name", "nosuch", "--run-dir", &rds]);
    let err = one_line_error(&out, None);
    assert!(err.contains(&format!("no stack named nosuch is running; running: {name}")), "{err}");

    // Another user may not read the socket (0660, directory 0750): told to use root or the group.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_xdpstack")])
        .args(["stat", "--name", &name, "--run-dir", &rds])
        .output()
        .unwrap();
    let err = one_line_error(&out, None);
    assert!(err.contains("permission denied") && err.contains("run as root or join group"), "{err}");

    drop((listener, udp));
    finish(stack);
    assert!(!dir.exists(), "the instance directory goes away at shutdown");
    let _ = std::fs::remove_dir_all(&rd);
}

#[test]
fn stat_counts_exactly_the_traffic_and_stale_or_busy_names_are_reported() {
    let tb = testbed(1);
    let rd = run_dir("stat");
    std::fs::create_dir_all(&rd).unwrap();
    std::fs::set_permissions(&rd, std::fs::Permissions::from_mode(0o755)).unwrap();
    let name = format!("obs-stat-{}", std::process::id());
    // A stale socket under our name, as a killed stack leaves it: the new stack replaces it.
    let make_stale = |n: &str| {
        let d = rd.join(n);
        std::fs::create_dir_all(&d).unwrap();
        drop(UnixListener::bind(d.join("control")).unwrap());
        std::fs::write(d.join("pid"), "2147483646\n").unwrap();
    };
    make_stale(&name);
    make_stale("ghost");
    // A live socket under another name: a stack of that name cannot start.
    std::fs::create_dir_all(rd.join("busy")).unwrap();
    let _busy = UnixListener::bind(rd.join("busy/control")).unwrap();
    std::fs::write(rd.join("busy/pid"), format!("{}\n", std::process::id())).unwrap();
    let mut cfg = tb.stack_config();
    cfg.name = Some("busy".into());
    cfg.run_dir = Some(rd.clone());
    let err = tb.start_stack(cfg).unwrap_err().to_string();
    assert!(err.contains(&format!("stack busy is already running (pid {})", std::process::id())), "{err}");

    let (rd2, name2) = (rd.clone(), name.clone());
    let stack = start(&tb, move |c| {
        c.name = Some(name2);
        c.run_dir = Some(rd2);
    });
    let rds = rd.to_str().unwrap().to_string();
    let stat = |z: bool| {
        let mut a = vec!["stat", "--name", name.as_str(), "--run-dir", rds.as_str()];
        if z {
            a.push("-z");
        }
        stat_map(&stdout_of(&a))
    };

    let sock = UdpSocket::bind(&stack, "0.0.0.0:6001").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let peer = peer_udp(&tb, "10.77.0.1:0");
    // Warm up ARP so that the counted traffic is only what follows.
    peer.send_to(b"warm", "10.77.0.2:6001").unwrap();
    let mut buf = [0u8; 64];
    sock.recv_from(&mut buf).unwrap();

    let before = stat(true);
    assert!(before.contains_key("UdpNoPorts") && before.contains_key("TcpActiveOpens"));
    // The stack's own: the XDP program's and the kernel's AF_XDP drop counters (XDP_STATISTICS).
    for name in
        ["XdpSteered", "XdpPassed", "XskRxRingFull", "XskFillRingEmpty", "XskRxDropped", "EthInFrames"]
    {
        assert!(before.contains_key(name), "{name} missing from stat -z");
    }
    assert!(before["XdpSteered"] > 0);
    // Frames in flight: the fill ring holds frames for the kernel to receive into.
    assert!(before["XskFramesInFill"] > 0, "XskFramesInFill {}", before["XskFramesInFill"]);
    let hidden = stat(false);
    assert!(hidden.values().all(|v| *v != 0), "zeros are hidden without -z");
    const N: u64 = 25;
    for i in 0..N {
        peer.send_to(&[i as u8; 10], "10.77.0.2:6001").unwrap();
        peer.send_to(&[i as u8; 10], "10.77.0.2:6002").unwrap();
    }
    for _ in 0..N {
        sock.recv_from(&mut buf).unwrap();
    }
    let mut after = stat(true);
    let done = wait_for(Duration::from_secs(5), || {
        after = stat(true);
        after["UdpNoPorts"] - before["UdpNoPorts"] >= N
    });
    assert!(done, "UdpNoPorts moved by {}", after["UdpNoPorts"] - before["UdpNoPorts"]);
    let delta = |k: &str| after[k] - before[k];
    assert_eq!(delta("UdpNoPorts"), N);
    assert_eq!(delta("UdpInDatagrams"), N);
    assert_eq!(delta("IpInReceives"), 2 * N);
    assert_eq!(delta("UdpInErrors"), 0);
    assert_eq!(after["XskFramesTotal"], before["XskFramesTotal"]);

    // The stale instance is reported as such; without --name the only live stack is chosen.
    let out = xdpstack(&["stat", "--name", "ghost", "--run-dir", &rds]);
    let err = one_line_error(&out, None);
    assert!(
        err.contains("stack ghost is not running: stale control socket") && err.contains("is dead"),
        "{err}"
    );
    drop(_busy);
    let _ = std::fs::remove_dir_all(rd.join("busy"));
    let chosen = stat_map(&stdout_of(&["stat", "--run-dir", &rds]));
    assert!(chosen.contains_key("UdpInDatagrams"));

    drop(sock);
    finish(stack);
    let _ = std::fs::remove_dir_all(&rd);
}

/// A stack on `tb` answering on `RUN_DIR/name/control`.
fn start_named(tb: &Testbed, rd: &Path, name: &str, tweak: impl FnOnce(&mut Config)) -> Stack {
    let (rd, name) = (rd.to_path_buf(), name.to_string());
    start(tb, move |c| {
        c.name = Some(name);
        c.run_dir = Some(rd);
        tweak(c);
    })
}

/// `xdpstack stat -z --name NAME` as a map.
fn stat_of(rd: &Path, name: &str) -> HashMap<String, u64> {
    stat_map(&stdout_of(&["stat", "-z", "--name", name, "--run-dir", rd.to_str().unwrap()]))
}

/// `xdpstack ss --name NAME EXTRA...` as rows.
fn ss_of(rd: &Path, name: &str, extra: &[&str]) -> Vec<Vec<String>> {
    let mut a = vec!["ss", "--name", name, "--run-dir", rd.to_str().unwrap()];
    a.extend_from_slice(extra);
    ss_rows(&stdout_of(&a))
}

/// How much each counter in `names` moved from `before` to `after`.
fn deltas(
    before: &HashMap<String, u64>,
    after: &HashMap<String, u64>,
    names: &[&'static str],
) -> Vec<(&'static str, u64)> {
    names.iter().map(|n| (*n, after[*n].wrapping_sub(before[*n]))).collect()
}

#[test]
fn two_stacks_under_one_run_directory_each_show_their_own() {
    let (tb_a, tb_b) = (testbed(1), testbed(1));
    let rd = run_dir("two");
    let pid = std::process::id();
    let (a, b) = (format!("obs-a-{pid}"), format!("obs-b-{pid}"));
    let stack_a = start_named(&tb_a, &rd, &a, |_| {});
    let stack_b = start_named(&tb_b, &rd, &b, |_| {});
    let udp = UdpSocket::bind(&stack_a, "0.0.0.0:6101").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let listener = TcpListener::bind(&stack_b, "0.0.0.0:6102").unwrap();

    // Each instance's socket table holds its own socket only.
    let brief = |rows: Vec<Vec<String>>| {
        rows.into_iter().map(|r| [&r[0], &r[1], &r[4], &r[6]].map(|c| c.to_string())).collect::<Vec<_>>()
    };
    let ufd = udp.descriptor().to_string();
    let lfd = listener.descriptor().to_string();
    assert_eq!(brief(ss_of(&rd, &a, &["-a"])), [["udp", "UNCONN", "0.0.0.0:6101", ufd.as_str()]]);
    assert_eq!(brief(ss_of(&rd, &b, &["-a"])), [["tcp", "LISTEN", "0.0.0.0:6102", lfd.as_str()]]);

    // Traffic to one stack moves that stack's counters only.
    const N: u64 = 7;
    const M: u64 = 3;
    let (before_a, before_b) = (stat_of(&rd, &a), stat_of(&rd, &b));
    let peer = peer_udp(&tb_a, "10.77.0.1:0");
    let mut buf = [0u8; 64];
    for i in 0..N {
        peer.send_to(&[i as u8; 12], "10.77.0.2:6101").unwrap();
        udp.recv_from(&mut buf).unwrap();
    }
    let out = peer_run(&tb_b, "ping", &["-c", &M.to_string(), "-i", "0.2", "-W", "2", &stack_ip(&tb_b)]);
    assert!(out.contains(&format!("{M} received")), "{out}");
    let (after_a, after_b) = (stat_of(&rd, &a), stat_of(&rd, &b));
    let names = ["UdpInDatagrams", "IcmpInEchos", "IcmpOutEchoReps"];
    assert_eq!(
        deltas(&before_a, &after_a, &names),
        [("UdpInDatagrams", N), ("IcmpInEchos", 0), ("IcmpOutEchoReps", 0)]
    );
    assert_eq!(
        deltas(&before_b, &after_b, &names),
        [("UdpInDatagrams", 0), ("IcmpInEchos", M), ("IcmpOutEchoReps", M)]
    );

    // Without --name there is no one stack to choose: one line, non-zero exit, for ss and stat.
    let rds = rd.to_str().unwrap();
    for cmd in ["ss", "stat"] {
        let out = xdpstack(&[cmd, "--run-dir", rds]);
        let err = one_line_error(&out, Some(1));
        assert_eq!(
            err,
            format!("xdpstack: error: several stacks are running ({a}, {b}): choose one with --name\n")
        );
        assert!(out.stdout.is_empty(), "{cmd}");
    }

    // Once one stops, the other is the one chosen.
    drop(listener);
    finish(stack_b);
    let rows = ss_rows(&stdout_of(&["ss", "-a", "--run-dir", rds]));
    assert_eq!(brief(rows), [["udp", "UNCONN", "0.0.0.0:6101", ufd.as_str()]]);
    drop(udp);
    finish(stack_a);
    let _ = std::fs::remove_dir_all(&rd);
}

#[test]
fn raw_sockets_in_ss_w_and_net_raw() {
    let tb = testbed(1);
    let rd = run_dir("raw");
    let name = format!("obs-raw-{}", std::process::id());
    let stack = start_named(&tb, &rd, &name, |_| {});
    let dir = rd.join(&name);
    // A TCP listener and a UDP socket too, so that the raw table is not the only one.
    let listener = TcpListener::bind(&stack, "0.0.0.0:5301").unwrap();
    let udp = UdpSocket::bind(&stack, "0.0.0.0:5302").unwrap();
    let icmp = RawSocket::open(&stack, 1).unwrap();
    icmp.bind(tb.config.stack_addr).unwrap();
    let exp = RawSocket::open(&stack, 253).unwrap();

    // The kernel peer's ping leaves a copy of its echo request (an 84-byte datagram: 20 bytes of IP
    // header, 8 of ICMP header, ping's 56 of data) waiting in the raw ICMP socket.
    let out = peer_run(&tb, "ping", &["-c", "1", "-W", "2", &stack_ip(&tb)]);
    assert!(out.contains("1 received"), "{out}");
    let queued = wait_for(Duration::from_secs(3), || {
        ss_of(&rd, &name, &["-a", "-w"]).iter().any(|r| r[4].ends_with(":1") && r[2] != "0")
    });
    assert!(queued, "{:?}", ss_of(&rd, &name, &["-a", "-w"]));

    // Unconnected raw sockets are in state CLOSE: as iproute2's ss, -w alone does not list them, -a
    // and -l do; -t and -u leave them out.
    assert!(ss_of(&rd, &name, &["-w"]).is_empty());
    let icmp_fd = icmp.descriptor().to_string();
    let exp_fd = exp.descriptor().to_string();
    let want = [
        ["raw", "UNCONN", "84", "0", "10.77.0.2:1", "0.0.0.0:*", icmp_fd.as_str(), "0"],
        ["raw", "UNCONN", "0", "0", "0.0.0.0:253", "0.0.0.0:*", exp_fd.as_str(), "0"],
    ];
    assert_eq!(ss_of(&rd, &name, &["-a", "-w"]), want);
    assert_eq!(ss_of(&rd, &name, &["-l", "-w"]), want);
    let all = ss_of(&rd, &name, &["-a"]);
    assert_eq!(all.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(), ["tcp", "udp", "raw", "raw"]);
    assert!(ss_of(&rd, &name, &["-a", "-t", "-u"]).iter().all(|r| r[0] != "raw"));

    // net/raw, rewritten by those requests: the protocol number in the port field, state 07, the
    // bytes waiting in rx_queue, and rows numbered from 0 in that file alone.
    let raw = parse_proc_net(&std::fs::read_to_string(dir.join("net/raw")).unwrap());
    let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
    assert_eq!(
        endpoints(&raw),
        [
            (SocketAddrV4::new(tb.config.stack_addr, 1), any, 0x07),
            ("0.0.0.0:253".parse().unwrap(), any, 0x07)
        ]
    );
    assert_eq!(raw.iter().map(|r| r.sl).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(raw.iter().map(|r| (r.tx_queue, r.rx_queue)).collect::<Vec<_>>(), [(0, 84), (0, 0)]);
    assert_ne!(raw[0].inode, raw[1].inode);
    for file in ["net/tcp", "net/udp"] {
        let rows = parse_proc_net(&std::fs::read_to_string(dir.join(file)).unwrap());
        assert_eq!(rows.iter().map(|r| r.sl).collect::<Vec<_>>(), [0], "{file}: {rows:?}");
    }

    // What rx_queue counted is the datagram the socket hands over.
    icmp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = icmp.recv_from(&mut buf).unwrap();
    assert_eq!((n, from), (84, tb.config.peer_addr));
    assert_eq!(ss_of(&rd, &name, &["-a", "-w"])[0][2], "0");

    drop((icmp, exp));
    assert!(ss_of(&rd, &name, &["-a", "-w"]).is_empty());
    let text = std::fs::read_to_string(dir.join("net/raw")).unwrap();
    assert!(parse_proc_net(&text).is_empty(), "{text}");
    drop((listener, udp));
    finish(stack);
    let _ = std::fs::remove_dir_all(&rd);
}

#[test]
fn icmp_counters_move_by_exactly_the_pings_sent() {
    let tb = testbed(1);
    let rd = run_dir("icmp");
    let name = format!("obs-icmp-{}", std::process::id());
    let stack = start_named(&tb, &rd, &name, |_| {});
    // One ping first, so that ARP is settled before the counted ones.
    let out = peer_run(&tb, "ping", &["-c", "1", "-W", "2", &stack_ip(&tb)]);
    assert!(out.contains("1 received"), "{out}");

    const N: u64 = 5;
    let before = stat_of(&rd, &name);
    let out = peer_run(&tb, "ping", &["-c", &N.to_string(), "-i", "0.2", "-W", "2", &stack_ip(&tb)]);
    assert!(out.contains(&format!("{N} packets transmitted, {N} received")), "{out}");
    let names = [
        "IcmpInMsgs",
        "IcmpInEchos",
        "IcmpOutMsgs",
        "IcmpOutEchoReps",
        "IcmpInErrors",
        "IcmpInEchoReps",
        "IpInReceives",
        "IpInDelivers",
        "IpOutRequests",
    ];
    let mut after = stat_of(&rd, &name);
    // The counters are written before each reply leaves; the wait only covers the reading side.
    wait_for(Duration::from_secs(3), || {
        after = stat_of(&rd, &name);
        after["IcmpOutEchoReps"] - before["IcmpOutEchoReps"] >= N
    });
    assert_eq!(
        deltas(&before, &after, &names),
        [
            ("IcmpInMsgs", N),
            ("IcmpInEchos", N),
            ("IcmpOutMsgs", N),
            ("IcmpOutEchoReps", N),
            ("IcmpInErrors", 0),
            ("IcmpInEchoReps", 0),
            ("IpInReceives", N),
            ("IpInDelivers", N),
            ("IpOutRequests", N),
        ]
    );
    finish(stack);
    let _ = std::fs::remove_dir_all(&rd);
}

/// Frames of the capture matching a display filter, counted by tshark.
fn tshark_count(file: &Path, filter: &str) -> u64 {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(file)
        .args(["-Y", filter, "-T", "fields", "-e", "frame.number"])
        .output()
        .expect("tshark is installed (scripts/setup.sh installs it)");
    assert!(out.status.success(), "tshark failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().count() as u64
}

#[test]
fn tcp_counters_match_the_segments_in_the_stacks_own_capture() {
    let tb = testbed(1);
    let rd = run_dir("tcp");
    let name = format!("obs-tcp-{}", std::process::id());
    let file = std::env::temp_dir().join(format!("xdpstack-observe-{}-tcp.pcap", std::process::id()));
    let path = file.clone();
    let stack = start_named(&tb, &rd, &name, move |c| c.pcap = Some(PcapConfig::new(path)));
    let listener = TcpListener::bind(&stack, "0.0.0.0:5401").unwrap();
    let out = peer_run(&tb, "ping", &["-c", "1", "-W", "2", &stack_ip(&tb)]);
    assert!(out.contains("1 received"), "{out}");
    let names = [
        "TcpActiveOpens",
        "TcpPassiveOpens",
        "TcpAttemptFails",
        "TcpEstabResets",
        "TcpOutRsts",
        "TcpInSegs",
        "TcpOutSegs",
    ];

    // One connection from the kernel: a request, an answer; the kernel closes first.
    let before = stat_of(&rd, &name);
    let mut kernel = tb.in_peer_ns(|| std::net::TcpStream::connect("10.77.0.2:5401")).unwrap().unwrap();
    kernel.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    let open = stat_of(&rd, &name);
    assert_eq!(open["TcpCurrEstab"], before["TcpCurrEstab"] + 1);
    kernel.write_all(b"request\n").unwrap();
    let mut buf = [0u8; 16];
    conn.read_exact(&mut buf[..8]).unwrap();
    conn.write_all(b"answer\n").unwrap();
    kernel.read_exact(&mut buf[..7]).unwrap();
    kernel.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(conn.read(&mut buf).unwrap(), 0);
    drop(conn);
    assert_eq!(kernel.read(&mut buf).unwrap(), 0);
    drop(kernel);
    // The stack's side ends when the kernel's last ACK arrives (LAST-ACK to CLOSED).
    let closed = wait_for(Duration::from_secs(5), || {
        stack.socket_table().unwrap().iter().all(|s| s.state == Some(State::Listen))
    });
    assert!(closed, "{:?}", stack.socket_table());
    let after = stat_of(&rd, &name);
    assert_eq!(after["TcpCurrEstab"], before["TcpCurrEstab"]);
    let conn_deltas = deltas(&before, &after, &names);

    // A kernel connect to a port the stack does not listen on: one SYN in, one RST out.
    let before = stat_of(&rd, &name);
    let refused = tb.in_peer_ns(|| std::net::TcpStream::connect("10.77.0.2:5402")).unwrap();
    assert_eq!(refused.unwrap_err().kind(), std::io::ErrorKind::ConnectionRefused);
    let mut after = stat_of(&rd, &name);
    wait_for(Duration::from_secs(3), || {
        after = stat_of(&rd, &name);
        after["TcpOutRsts"] > before["TcpOutRsts"]
    });
    assert_eq!(
        deltas(&before, &after, &names),
        [
            ("TcpActiveOpens", 0),
            ("TcpPassiveOpens", 0),
            ("TcpAttemptFails", 0),
            ("TcpEstabResets", 0),
            ("TcpOutRsts", 1),
            ("TcpInSegs", 1),
            ("TcpOutSegs", 1),
        ]
    );

    // A stack connect to a port the kernel does not listen on: one SYN out, the kernel's RST in.
    let before = stat_of(&rd, &name);
    let err = xdpstack::TcpStream::connect(&stack, "10.77.0.1:5403").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    let after = stat_of(&rd, &name);
    assert_eq!(
        deltas(&before, &after, &names),
        [
            ("TcpActiveOpens", 1),
            ("TcpPassiveOpens", 0),
            ("TcpAttemptFails", 1),
            ("TcpEstabResets", 0),
            ("TcpOutRsts", 0),
            ("TcpInSegs", 1),
            ("TcpOutSegs", 1),
        ]
    );
    drop(listener);
    finish(stack);

    // The connection's counters against the capture of the same exchange (flushed at shutdown).
    let seg = |dir: &str, more: &str| {
        tshark_count(&file, &format!("ip.{dir} == 10.77.0.2 && tcp.port == 5401{more}"))
    };
    let (in_segs, out_segs) = (seg("dst", ""), seg("src", ""));
    assert_eq!(
        conn_deltas,
        [
            ("TcpActiveOpens", 0),
            ("TcpPassiveOpens", 1),
            ("TcpAttemptFails", 0),
            ("TcpEstabResets", 0),
            ("TcpOutRsts", 0),
            ("TcpInSegs", in_segs),
            ("TcpOutSegs", out_segs),
        ]
    );
    // The capture is the exchange described: one SYN and one FIN each way and the payloads once
    // (not counting resends, which a slow machine may cause), and at least the handshake's ACK,
    // the request and the ACK of our FIN beside the kernel's SYN and FIN.
    let first = " && !tcp.analysis.retransmission";
    assert_eq!(seg("dst", &format!(" && tcp.flags.syn == 1 && tcp.flags.ack == 0{first}")), 1);
    assert_eq!(seg("src", &format!(" && tcp.flags.syn == 1 && tcp.flags.ack == 1{first}")), 1);
    assert_eq!(seg("dst", &format!(" && tcp.flags.fin == 1{first}")), 1);
    assert_eq!(seg("src", &format!(" && tcp.flags.fin == 1{first}")), 1);
    assert_eq!(seg("dst", &format!(" && tcp.len == 8{first}")), 1);
    assert_eq!(seg("src", &format!(" && tcp.len == 7{first}")), 1);
    assert!(in_segs >= 5 && out_segs >= 3, "in {in_segs}, out {out_segs}");
    assert_eq!(tshark_count(&file, "tcp.port == 5402"), 2);
    assert_eq!(tshark_count(&file, "tcp.port == 5403"), 2);
    assert_eq!(tshark_count(&file, "_ws.malformed"), 0);
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_dir_all(&rd);
}

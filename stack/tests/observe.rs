//! Seeing a running stack: `xdpstack ss` and `xdpstack stat` (the real binary) against a stack on the
//! veth testbed with real kernel traffic, the `/proc/net`-format files read by a parser written here
//! (independent of the stack's formatter), the control socket's answers to malformed requests,
//! and the errors for unknown, stale, busy and forbidden instances.

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
use xdpstack::tcp::State;
use xdpstack::{SocketKind, TcpListener, UdpSocket};

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

/// An independent reader of the kernel's /proc/net/{tcp,udp} layout: (local, remote, state, inode).
fn parse_proc_net(text: &str) -> Vec<(SocketAddrV4, SocketAddrV4, u8, u64)> {
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
    lines
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f[0].ends_with(':') && f[0].trim_end_matches(':').parse::<u32>().is_ok(), "{l}");
            let (tx, rx) = f[4].split_once(':').expect("tx:rx");
            assert!(u32::from_str_radix(tx, 16).is_ok() && u32::from_str_radix(rx, 16).is_ok(), "{l}");
            assert!(f[7].parse::<u32>().is_ok(), "uid: {l}");
            let st = u8::from_str_radix(f[3], 16).expect("hex state");
            (addr(f[1]), addr(f[2]), st, f[9].parse().expect("inode"))
        })
        .collect()
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
    let got: BTreeSet<_> = tcp.iter().map(|(l, r, st, _)| (*l, *r, *st)).collect();
    let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
    let stack_addr = SocketAddrV4::new(tb.config.stack_addr, 5001);
    let want: BTreeSet<_> =
        [("0.0.0.0:5001".parse().unwrap(), any, 0x0A), (stack_addr, kernel_addr, 0x01)].into_iter().collect();
    assert_eq!(got, want);
    let udp_rows = parse_proc_net(&std::fs::read_to_string(dir.join("net/udp")).unwrap());
    assert_eq!(
        udp_rows.iter().map(|(l, r, st, _)| (*l, *r, *st)).collect::<Vec<_>>(),
        [("0.0.0.0:5002".parse().unwrap(), any, 0x07)]
    );
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
    assert!(tcp.iter().any(|(l, r, st, _)| *l == stack_addr && *r == kernel_addr && *st == 0x06), "{tcp:?}");
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

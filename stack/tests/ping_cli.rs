//! `xdpstack ping` run as a program inside the testbed's stack namespace (it starts its own stack on
//! the stack's veth end), against the Linux kernel on the peer end.

mod common;

use std::process::Output;

use xdpstack::testbed::Testbed;

fn ping(tb: &Testbed, args: &[&str]) -> Output {
    let mut cmd = tb.stack_cmd(env!("CARGO_BIN_EXE_xdpstack"));
    cmd.env("RUST_LOG", "warn").arg("ping").args(["--iface", &tb.stack_if, "--addr", &tb.stack_cidr()]);
    cmd.args(args).output().expect("run xdpstack ping")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Run `xdpstack ping -c COUNT -s DATA` to the kernel peer; check the header, one line per reply as
/// iputils prints it (ICMP bytes: 8 of header plus the data), and the summary; return the output.
fn ping_peer(data: usize, count: usize) -> String {
    let tb = common::testbed(1);
    let peer = tb.config.peer_addr.to_string();
    let (c, s) = (count.to_string(), data.to_string());
    let out = ping(&tb, &["-c", &c, "-i", "0.2", "-W", "2", "-s", &s, &peer]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], format!("PING {peer} ({peer}) {data}({}) bytes of data.", data + 28));
    let replies: Vec<&&str> = lines.iter().filter(|l| l.contains(" bytes from ")).collect();
    assert_eq!(replies.len(), count, "{stdout}");
    for (i, l) in replies.iter().enumerate() {
        let prefix = format!("{} bytes from {peer}: icmp_seq={} ttl=64 time=", data + 8, i + 1);
        assert!(l.starts_with(&prefix) && l.ends_with(" ms"), "{l}");
        let t: f64 = l[prefix.len()..l.len() - 3].parse().unwrap_or_else(|_| panic!("time in {l:?}"));
        assert!(t > 0.0 && t < 2000.0, "{l}");
    }
    assert!(stdout.contains(&format!("--- {peer} ping statistics ---")), "{stdout}");
    let summary = format!("{count} packets transmitted, {count} received, 0% packet loss, time ");
    assert!(stdout.contains(&summary), "{stdout}");
    stdout
}

#[test]
fn ping_the_kernel_peer_three_times() {
    let stdout = ping_peer(56, 3);
    let rtt = stdout.lines().find(|l| l.starts_with("rtt min/avg/max/mdev = ")).expect("rtt line");
    let nums: Vec<f64> =
        rtt["rtt min/avg/max/mdev = ".len()..rtt.len() - 3].split('/').map(|n| n.parse().unwrap()).collect();
    assert_eq!(nums.len(), 4, "{rtt}");
    assert!(nums[0] <= nums[1] && nums[1] <= nums[2], "{rtt}");
}

/// `-s 1000`: 1000 bytes of data, so 1028-byte datagrams, and replies of 1008 ICMP bytes as iputils
/// counts them (header and data).
#[test]
fn ping_the_kernel_peer_with_1000_bytes_of_data() {
    ping_peer(1000, 2);
}

#[test]
fn ping_nobody_is_full_loss_and_exit_1() {
    let tb = common::testbed(1);
    let out = ping(&tb, &["-c", "2", "-i", "0.2", "-W", "1", "10.77.0.99"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(!stdout.contains(" bytes from "), "{stdout}");
    assert!(stdout.contains("2 packets transmitted, 0 received, 100% packet loss"), "{stdout}");
    assert!(!stdout.contains("rtt "), "{stdout}");
}

#[test]
fn bad_arguments_are_one_line_and_exit_2() {
    let tb = common::testbed(1);
    for (args, says) in [
        (&["-c", "0", "10.77.0.1"][..], "-c"),
        (&["-s", "70000", "10.77.0.1"][..], "-s"),
        (&["-c", "1", "no-such-host.invalid"][..], "unknown host"),
        (&["-i", "0", "10.77.0.1"][..], "-i"),
    ] {
        let out = ping(&tb, args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("xdpstack: error: ") && stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // No stack to send from: none running (an empty run directory), none to start.
    let empty = std::env::temp_dir().join(format!("xdpstack-ping-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xdpstack"))
        .args(["ping", "--run-dir", empty.to_str().unwrap(), "-c", "1", "10.77.0.1"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&empty);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no stack is running") && stderr.contains("--iface"), "{stderr}");
}

/// `xdpstack ping --name NAME`: the raw ICMP socket of a stack already running (here, in the test
/// process), reached through its control socket from another process.
#[test]
fn ping_through_a_running_stacks_control_socket() {
    let tb = common::testbed(1);
    let run_dir = std::env::temp_dir().join(format!("xdpstack-ping-{}", std::process::id()));
    let name = format!("ping-{}", std::process::id());
    let (rd, n) = (run_dir.clone(), name.clone());
    let stack = common::start(&tb, move |c| {
        c.name = Some(n);
        c.run_dir = Some(rd);
    });
    // While a raw socket is open, the socket table shows it as Linux's /proc/net/raw would.
    let raw = xdpstack::RawSocket::open(&stack, 1).unwrap();
    let table = stack.socket_table().unwrap();
    assert!(
        table.iter().any(|s| s.kind == xdpstack::SocketKind::Raw(1) && s.fd == Some(raw.descriptor())),
        "{table:?}"
    );
    drop(raw);

    let peer = tb.config.peer_addr.to_string();
    let rd = run_dir.to_str().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xdpstack"))
        .env("RUST_LOG", "warn")
        .args(["ping", "--name", &name, "--run-dir", rd, "-c", "3", "-i", "0.2", "-W", "2", &peer])
        .output()
        .expect("run xdpstack ping");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert_eq!(stdout.lines().filter(|l| l.contains(&format!(" bytes from {peer}: icmp_seq="))).count(), 3);
    assert!(stdout.contains("3 packets transmitted, 3 received, 0% packet loss"), "{stdout}");

    // An unknown instance is one line and exit 2.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xdpstack"))
        .args(["ping", "--name", "no-such-stack", "--run-dir", rd, "-c", "1", &peer])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no stack named no-such-stack"), "{err}");

    // The session's socket is gone once ping ends.
    assert!(common::wait_for(std::time::Duration::from_secs(3), || {
        !stack.socket_table().unwrap().iter().any(|s| matches!(s.kind, xdpstack::SocketKind::Raw(_)))
    }));
    common::finish(stack);
    let _ = std::fs::remove_dir_all(&run_dir);
}

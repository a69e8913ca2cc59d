//! The `xdpstack` binary's life: start, Ctrl-C, SIGKILL, and the one-line errors for bad arguments,
//! missing privileges and busy interfaces. Run against real veth testbeds.

mod common;

use std::process::{Child, Output, Stdio};
use std::time::Duration;

use common::*;
use xdpstack::testbed::Testbed;

const BIN: &str = env!("CARGO_BIN_EXE_xdpstack");

fn spawn_stack(tb: &Testbed, extra: &[&str]) -> Child {
    tb.stack_cmd(BIN)
        .args(["run", "--iface", &tb.stack_if, "--addr", &tb.stack_cidr(), "--service", "echo-udp:7"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn xdpstack")
}

fn wait_until_answering(tb: &Testbed) {
    let ip = stack_ip(tb);
    let ok = wait_for(Duration::from_secs(20), || {
        tb.peer_cmd("ping").args(["-c1", "-W1", &ip]).output().is_ok_and(|o| o.status.success())
    });
    assert!(ok, "the stack never answered ping");
}

fn xdp_on_stack_link(tb: &Testbed) -> bool {
    let out = tb.stack_cmd("ip").args(["link", "show", "dev", &tb.stack_if]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).contains("xdp")
}

fn signal(child: &Child, sig: i32) {
    // Safety: kill(2) on the PID of a child this test spawned and has not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

fn output_text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn sigkill_leaves_no_xdp_program_and_ctrl_c_shuts_down_cleanly() {
    let tb = testbed(1);
    let child = spawn_stack(&tb, &[]);
    wait_until_answering(&tb);
    assert!(xdp_on_stack_link(&tb), "XDP program attached while running");
    signal(&child, libc::SIGKILL);
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    // The BPF link died with the process: the interface is clean.
    assert!(wait_for(Duration::from_secs(5), || !xdp_on_stack_link(&tb)), "XDP program left behind");

    // ... so a new stack attaches (native mode again) and answers, and Ctrl-C stops it cleanly.
    let child = spawn_stack(&tb, &["--xdp-mode", "native"]);
    wait_until_answering(&tb);
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = output_text(&out);
    assert!(out.status.success(), "exit {:?}: {stdout}{stderr}", out.status);
    assert!(stdout.contains("IcmpInEchos"), "counters printed on exit: {stdout}");
    assert!(stdout.contains(" 0 lost"), "{stdout}");
    assert!(!xdp_on_stack_link(&tb), "XDP detached on exit");
}

#[test]
fn duration_flag_runs_and_exits() {
    let tb = testbed(1);
    let child = spawn_stack(&tb, &["--duration", "1.5"]);
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = output_text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("frames:"), "{stdout}");
}

fn run_bin(tb: &Testbed, args: &[&str]) -> (bool, String) {
    let out = tb.stack_cmd(BIN).args(args).env("RUST_LOG", "off").stdin(Stdio::null()).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).trim().to_string())
}

#[test]
fn bad_arguments_get_one_clear_line() {
    let tb = testbed(2);
    let cases: &[(&[&str], &str)] = &[
        (&["run", "--iface", "nosuch0", "--addr", "10.77.0.2/24"], "no interface named \"nosuch0\""),
        (&["run", "--iface", &tb.stack_if, "--addr", "10.77.0.2/24", "--workers", "40"], "XSKMAP"),
        (&["run", "--iface", &tb.stack_if, "--addr", "10.77.0.2/24", "--workers", "0"], "at least 1"),
        (
            &["run", "--iface", &tb.stack_if, "--addr", "10.77.0.2/24", "--cores", "0,99"],
            "core 99 does not exist",
        ),
        (
            &["run", "--iface", &tb.stack_if, "--addr", "10.77.0.2/24", "--service", "gopher:70"],
            "unknown service",
        ),
    ];
    for (args, needle) in cases {
        let (ok, err) = run_bin(&tb, args);
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(needle), "{args:?}: expected {needle:?} in: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line, got: {err}");
    }
    // Malformed values are rejected by the argument parser, naming the flag.
    let (ok, err) = run_bin(&tb, &["run", "--iface", &tb.stack_if, "--addr", "10.77.0.2"]);
    assert!(!ok && err.contains("--addr"), "{err}");
}

#[test]
fn missing_privileges_get_a_message_naming_the_fix() {
    let tb = testbed(1);
    // A run directory the unprivileged user may write, so that the refusal comes from what needs the
    // privilege (loading BPF, opening AF_XDP sockets), not from `/run/xdpstack`.
    let run_dir = std::env::temp_dir().join(format!("xdpstack-nopriv-{}", std::process::id()));
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::set_permissions(&run_dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let out = tb
        .stack_cmd("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            BIN,
        ])
        .args(["run", "--iface", &tb.stack_if, "--addr", &tb.stack_cidr()])
        .env("RUST_LOG", "off")
        .env("XDPSTACK_RUN_DIR", &run_dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&run_dir);
    let (_, stderr) = output_text(&out);
    assert!(!out.status.success());
    assert!(!stderr.contains("xdpstack-nopriv"), "the run directory was usable, yet: {stderr}");
    assert!(stderr.contains("CAP_BPF") && stderr.contains("root"), "names the fix: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn a_second_stack_on_a_busy_interface_is_refused_clearly() {
    let tb = testbed(1);
    let first = start(&tb, |_| {});
    // Under the same name the control socket refuses first ...
    let (ok, err) = run_bin(&tb, &["run", "--iface", &tb.stack_if, "--addr", &tb.stack_cidr()]);
    assert!(!ok);
    assert!(err.contains("is already running (pid"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // ... under another name the interface itself does: its XDP hook and its queue are taken.
    let (ok, err) =
        run_bin(&tb, &["run", "--iface", &tb.stack_if, "--addr", &tb.stack_cidr(), "--name", "second"]);
    assert!(!ok);
    assert!(err.contains("is busy") && err.contains("stop that one first"), "names the fix: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // The first stack is unharmed.
    let out = peer_run(&tb, "ping", &["-c", "2", "-W", "2", &stack_ip(&tb)]);
    assert!(out.contains("2 received"), "{out}");
    finish(first);
}

#[test]
fn another_xdp_program_and_a_too_large_mtu_get_clear_errors() {
    let tb = testbed(1);
    // Another program (here: a second instance of ours, loaded by this test) holds the interface.
    let ifname = tb.stack_if.clone();
    let other = tb
        .in_stack_ns(move || {
            let ifindex = xdpstack::netdev::NetDev::lookup(&ifname).unwrap().ifindex;
            let prog = xdp_prog::Steering::load().unwrap();
            let link = prog.attach(ifindex, xdp_prog::XdpMode::Native).unwrap();
            (prog, link)
        })
        .unwrap();
    let (ok, err) = run_bin(&tb, &["run", "--iface", &tb.stack_if, "--addr", &tb.stack_cidr()]);
    assert!(!ok);
    assert!(err.contains("xdp off"), "names the fix: {err}");
    drop(other);

    // Native XDP on veth refuses a peer MTU above ~3500; auto mode falls back to generic and works.
    peer_run(&tb, "ip", &["link", "set", "dev", &tb.peer_if, "mtu", "9000"]);
    let (ok, err) =
        run_bin(&tb, &["run", "--iface", &tb.stack_if, "--addr", &tb.stack_cidr(), "--xdp-mode", "native"]);
    assert!(!ok);
    assert!(err.to_lowercase().contains("mtu"), "{err}");
    let child = spawn_stack(&tb, &["--xdp-mode", "auto"]);
    wait_until_answering(&tb);
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = output_text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("Generic XDP"), "{stdout}");
}

#[test]
fn testbed_up_and_down_make_and_remove_the_namespaces() {
    // A name of our own (at most 10 characters), unique to this run.
    let name = format!("cli{}", std::process::id() % 10_000_000);
    let out = std::process::Command::new(BIN)
        .args(["testbed", "up", "--name", &name, "--queues", "2"])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let (stdout, stderr) = output_text(&out);
    let tb =
        Testbed::existing(&name).unwrap_or_else(|e| panic!("no testbed after `up` ({e}): {stdout}{stderr}"));
    // From here on the namespaces are ours to remove, whatever fails.
    let guard = TestbedGuard(name.clone());
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("netns {}", tb.stack_ns)) && stdout.contains("10.77.0.1/24"),
        "{stdout}"
    );
    let link = tb.peer_cmd("ip").args(["-o", "addr", "show", "dev", &tb.peer_if]).output().unwrap();
    assert!(String::from_utf8_lossy(&link.stdout).contains("10.77.0.1/24"), "peer address");
    let queues = tb.stack_cmd("ls").arg(format!("/sys/class/net/{}/queues", tb.stack_if)).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&queues.stdout).matches("rx-").count(), 2, "two RX queues");
    let offload = tb.peer_cmd("ethtool").args(["-k", &tb.peer_if]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&offload.stdout).contains("tx-checksumming: off"),
        "TX checksum offload off on the peer end"
    );
    // The stack runs on it, as the printed commands say.
    let child = spawn_stack(&tb, &[]);
    wait_until_answering(&tb);
    signal(&child, libc::SIGINT);
    assert!(child.wait_with_output().unwrap().status.success());

    let out = std::process::Command::new(BIN).args(["testbed", "down", "--name", &name]).output().unwrap();
    assert!(out.status.success(), "{:?}", output_text(&out));
    let list = std::process::Command::new("ip").args(["netns", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(!list.contains(&tb.stack_ns) && !list.contains(&tb.peer_ns), "namespaces left: {list}");
    // A second `down` names the problem.
    let out = std::process::Command::new(BIN).args(["testbed", "down", "--name", &name]).output().unwrap();
    assert!(!out.status.success());
    assert!(output_text(&out).1.contains("no testbed named"), "{:?}", output_text(&out));
    drop(guard);
}

/// Removes a testbed made through the CLI if the test fails half-way.
struct TestbedGuard(String);

impl Drop for TestbedGuard {
    fn drop(&mut self) {
        if let Ok(tb) = Testbed::existing(&self.0) {
            let _ = tb.down();
        }
    }
}

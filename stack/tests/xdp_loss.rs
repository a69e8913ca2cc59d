//! Seeded loss on the real path (root): the lossy XDP program on the kernel peer's veth end, and the
//! steering program's loss mode on the stack's end, with the Linux kernel's `ping` as the traffic.
//!
//! Each CPU has its own random stream, so the tests that compare patterns run `ping` pinned to one
//! CPU: on veth, a frame's receive processing (and so the XDP program) runs on the CPU that sent
//! it, which makes the whole run one stream.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::io;
use std::net::Ipv4Addr;
use std::process::{Command, Output, Stdio};

use xdp_prog::{AddrKind, LossConfig, LossCounters, Lossy, Steering, XdpLink, XdpMode};
use xdpstack::testbed::{run_cmd, Testbed};

const PEER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const STACK: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const ICMP: u8 = 1;
const PINGS: u64 = 200;
const TWENTY_PERCENT: u32 = 200_000;

fn testbed() -> Testbed {
    let tb = Testbed::unique(1).expect("veth testbed (tests run as root)");
    assert_eq!((tb.config.peer_addr, tb.config.stack_addr), (PEER, STACK));
    tb
}

/// Interface index of `name` in the calling thread's network namespace.
fn ifindex(name: &str) -> u32 {
    let c = CString::new(name).unwrap();
    // Safety: `c` is a NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    assert_ne!(index, 0, "no interface {name}: {}", io::Error::last_os_error());
    index
}

/// The first CPU this process may run on.
fn first_allowed_cpu() -> usize {
    // Safety: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // Safety: `set` is a valid cpu_set_t of the size given; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    assert_eq!(rc, 0, "sched_getaffinity: {}", io::Error::last_os_error());
    // Safety: CPU_ISSET reads the set for indices below CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize).find(|&c| unsafe { libc::CPU_ISSET(c, &set) }).expect("some CPU")
}

/// Run `cmd` from a thread pinned to `cpu`; the child inherits the affinity.
fn output_on_cpu(cpu: usize, mut cmd: Command) -> Output {
    std::thread::spawn(move || {
        // Safety: cpu_set_t is plain data; all-zero is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // Safety: `cpu` is below CPU_SETSIZE (from first_allowed_cpu).
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // Safety: `set` is a valid cpu_set_t of the size given; pid 0 is this thread.
        let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
        assert_eq!(rc, 0, "pin to CPU {cpu}: {}", io::Error::last_os_error());
        cmd.stdin(Stdio::null()).output().expect("run ping")
    })
    .join()
    .expect("pinned thread")
}

/// What one `ping` run saw.
#[derive(Debug)]
struct PingRun {
    transmitted: u64,
    /// Sequence numbers of the echo requests that got a reply.
    answered: BTreeSet<u64>,
}

impl PingRun {
    fn lost(&self) -> u64 {
        self.transmitted - self.answered.len() as u64
    }
}

/// `ping -c 200 -i 0.005` to `dst` by `cmd` (a `ping` in some namespace), pinned to `cpu`. When no
/// reply at all comes, ping waits `wait` seconds after the last request. (On this VM `-i 0.01` takes
/// 17 ms a request, 3.4 s a run; `-i 0.005` takes 6 ms.)
fn ping(cpu: usize, mut cmd: Command, dst: Ipv4Addr, wait: &str) -> PingRun {
    let count = PINGS.to_string();
    cmd.args(["-n", "-c", &count, "-i", "0.005", "-W", wait, &dst.to_string()]);
    let out = output_on_cpu(cpu, cmd);
    let text = String::from_utf8_lossy(&out.stdout);
    // "200 packets transmitted, 161 received, 19.5% packet loss, time 2012ms"
    let transmitted = text
        .lines()
        .find_map(|l| l.split_once(" packets transmitted")?.0.trim().parse().ok())
        .unwrap_or_else(|| {
            panic!("no summary from ping {dst}: {text}{}", String::from_utf8_lossy(&out.stderr))
        });
    let answered = text
        .lines()
        .filter_map(|l| l.split_once("icmp_seq=")?.1.split(' ').next()?.parse().ok())
        .collect::<BTreeSet<u64>>();
    let received: u64 = text
        .lines()
        .find_map(|l| l.split_once(" received")?.0.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no received count from ping {dst}: {text}"));
    assert_eq!(received, answered.len() as u64, "one reply line per answered request: {text}");
    PingRun { transmitted, answered }
}

/// 20% of 200 is 40 with a standard deviation of about 5.7: accept five of them either way.
#[track_caller]
fn assert_about_a_fifth(lost: u64) {
    assert!((12..=68).contains(&lost), "{lost} of {PINGS} lost: implausible for 20% loss");
}

fn attach_lossy(tb: &Testbed, cfg: LossConfig, mode: XdpMode) -> (Lossy, XdpLink) {
    let peer_if = tb.peer_if.clone();
    tb.in_peer_ns(move || {
        let lossy = Lossy::load().expect("load the lossy program");
        lossy.set(&cfg).unwrap();
        let link = lossy.attach(ifindex(&peer_if), mode).unwrap_or_else(|e| panic!("{mode:?} attach: {e}"));
        (lossy, link)
    })
    .unwrap()
}

/// Lossy on the peer's end drops 20% of the stack side's echo requests; with `replay`, the same
/// seed loses the same requests again. (That another seed loses others, and loss 0 none, the unit
/// tests of xdp-prog show; each ping run here costs over a second.)
fn lossy_on_the_peer(mode: XdpMode, seed: u64, replay: bool) {
    let tb = testbed();
    // A kernel address on the stack side, so that the stack namespace's ping has a source.
    let cidr = format!("{STACK}/24");
    run_cmd(Command::new("ip").args(["-n", &tb.stack_ns, "addr", "add", &cidr, "dev", &tb.stack_if]))
        .unwrap();
    let cpu = first_allowed_cpu();
    let lossy_pings =
        |seed| LossConfig { drop_ppm: TWENTY_PERCENT, seed, protocol: Some(ICMP), src: Some(STACK) };

    let (lossy, link) = attach_lossy(&tb, lossy_pings(seed), mode);
    let before = lossy.counters().unwrap();
    let first = ping(cpu, tb.stack_cmd("ping"), PEER, "1");
    let delta = lossy.counters().unwrap().since(&before);
    assert_eq!(first.transmitted, PINGS);
    // The echo requests, and nothing else, were candidates; the stack's ARP passed untouched.
    assert_eq!(delta.dropped + delta.passed, PINGS, "{delta:?}");
    assert!(delta.unmatched >= 1, "the stack's ARP request was seen: {delta:?}");
    // Loss is one-way (the program sees only what the peer receives): one lost reply per drop.
    assert_eq!(first.lost(), delta.dropped, "ping's loss is the program's drops");
    assert_about_a_fifth(first.lost());

    if replay {
        // The same settings again restart the stream: the same requests are lost.
        lossy.set(&lossy_pings(seed)).unwrap();
        let again = ping(cpu, tb.stack_cmd("ping"), PEER, "1");
        assert_eq!(again.answered, first.answered, "the same seed loses the same requests");
    }

    // Detached: no loss, and the program sees nothing more.
    drop(link);
    let before = lossy.counters().unwrap();
    let clean = ping(cpu, tb.stack_cmd("ping"), PEER, "1");
    assert_eq!((clean.transmitted, clean.lost()), (PINGS, 0), "loss after detaching");
    assert_eq!(lossy.counters().unwrap().since(&before), LossCounters::default());
}

#[test]
fn lossy_on_the_peer_native() {
    lossy_on_the_peer(XdpMode::Native, 0x5eed_0001, true);
}

#[test]
fn lossy_on_the_peer_generic() {
    lossy_on_the_peer(XdpMode::Generic, 0x5eed_0002, false);
}

/// Send echo requests from the peer to the stack's address via a static neighbour entry (the stack
/// side has no kernel address and answers no ARP); nothing answers them.
fn ping_stack_from_peer(tb: &Testbed, cpu: usize) {
    let mac = tb.stack_mac.map(|b| format!("{b:02x}")).join(":");
    let neigh = ["-n", &tb.peer_ns, "neigh", "replace", &STACK.to_string(), "lladdr", &mac];
    run_cmd(Command::new("ip").args(neigh).args(["dev", &tb.peer_if, "nud", "permanent"])).unwrap();
    // No reply ever comes: ping waits 0.2 s after the last request and exits non-zero.
    let run = ping(cpu, tb.peer_cmd("ping"), STACK, "0.2");
    assert_eq!((run.transmitted, run.answered.len()), (PINGS, 0), "{run:?}");
}

/// The steering program's loss mode drops 20% of the echo requests it would steer to the stack;
/// with `replay`, the same seed drops as many again.
fn steering_loss_mode(mode: XdpMode, seed: u64, replay: bool) {
    let tb = testbed();
    let cpu = first_allowed_cpu();
    let stack_if = tb.stack_if.clone();
    let (steering, _link) = tb
        .in_stack_ns(move || {
            let steering = Steering::load().expect("load the steering program");
            steering.add_addr(STACK, AddrKind::Unicast).unwrap();
            steering.set_loss(TWENTY_PERCENT, seed).unwrap();
            let link = steering.attach(ifindex(&stack_if), mode);
            (steering, link.unwrap_or_else(|e| panic!("{mode:?} attach: {e}")))
        })
        .unwrap();

    // No socket in the XSKMAP: what is not dropped is passed and counted no_socket.
    let before = steering.counters().unwrap();
    ping_stack_from_peer(&tb, cpu);
    let first = steering.counters().unwrap().since(&before);
    assert_eq!(first.dropped + first.no_socket, PINGS, "{first:?}");
    assert_eq!((first.steered, first.malformed), (0, 0), "{first:?}");
    assert_about_a_fifth(first.dropped);
    if !replay {
        return;
    }

    steering.set_loss(TWENTY_PERCENT, seed).unwrap();
    let before = steering.counters().unwrap();
    ping_stack_from_peer(&tb, cpu);
    let again = steering.counters().unwrap().since(&before);
    assert_eq!((again.dropped, again.no_socket), (first.dropped, first.no_socket), "same seed");
}

#[test]
fn steering_loss_mode_native() {
    steering_loss_mode(XdpMode::Native, 7, true);
}

#[test]
fn steering_loss_mode_generic() {
    steering_loss_mode(XdpMode::Generic, 8, false);
}

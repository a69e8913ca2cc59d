//! Helpers shared by the integration tests. The testbed itself is `xdpstack::testbed` (also used by
//! the CLI and the benchmarks); this adds the assertions every test repeats.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket as KernelUdp};
use std::time::{Duration, Instant};

use xdpstack::testbed::Testbed;
use xdpstack::{Config, ShutdownReport, Stack};

/// A fresh testbed; a failure to build one fails the test with the reason (never a skip).
pub fn testbed(queues: u32) -> Testbed {
    Testbed::unique(queues).unwrap_or_else(|e| panic!("cannot set up the veth testbed: {e}"))
}

/// Start a stack on the testbed, after `tweak` adjusts the default configuration.
pub fn start(tb: &Testbed, tweak: impl FnOnce(&mut Config)) -> Stack {
    let mut cfg = tb.stack_config();
    tweak(&mut cfg);
    tb.start_stack(cfg).unwrap_or_else(|e| panic!("stack did not start: {e}"))
}

/// Stop the stack and check that no UMEM frame went missing.
pub fn finish(stack: Stack) -> ShutdownReport {
    let report = stack.shutdown();
    assert_eq!(
        report.frames_lost(),
        0,
        "frames lost: {} of {} accounted for ({:?})",
        report.frames_accounted,
        report.frames_total,
        report.workers
    );
    report
}

/// A kernel UDP socket in the peer namespace, bound to `addr`.
pub fn peer_udp(tb: &Testbed, addr: &str) -> KernelUdp {
    let addr: SocketAddr = addr.parse().unwrap();
    let sock = tb.in_peer_ns(move || KernelUdp::bind(addr)).unwrap().unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    sock
}

/// The stack's address as a string.
pub fn stack_ip(tb: &Testbed) -> String {
    tb.config.stack_addr.to_string()
}

/// Poll `cond` until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Run a command in the peer namespace and return its output; panics with stderr when it fails.
pub fn peer_run(tb: &Testbed, program: &str, args: &[&str]) -> String {
    let out =
        tb.peer_cmd(program).args(args).output().unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A counter's value, with its name in the failure message.
pub fn counter(stack: &Stack, name: &str) -> u64 {
    let all = stack.counters();
    all.iter().find(|(n, _)| *n == name).map(|(_, v)| *v).unwrap_or_else(|| panic!("no counter {name}"))
}

/// The counters that are not zero, for failure messages.
pub fn nonzero(stack: &Stack) -> Vec<(&'static str, u64)> {
    stack.counters().into_iter().filter(|(_, v)| *v != 0).collect()
}

/// A kernel TCP connection from the peer namespace to `addr`.
pub fn kernel_connect(tb: &Testbed, addr: &str) -> std::io::Result<std::net::TcpStream> {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let s = tb
        .in_peer_ns(move || std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)))
        .unwrap()?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(s)
}

/// An Ethernet/IPv4 frame from `src` (on the peer's end) to the stack carrying `tcp` and `payload`.
pub fn tcp_frame(
    tb: &Testbed,
    src: std::net::Ipv4Addr,
    tcp: &xdpstack::wire::TcpRepr,
    payload: &[u8],
) -> Vec<u8> {
    use xdpstack::wire::*;
    let dst = tb.config.stack_addr;
    let tcp = TcpRepr { payload_len: payload.len(), ..*tcp };
    let mut seg = vec![0u8; tcp.header_len() + payload.len()];
    seg[tcp.header_len()..].copy_from_slice(payload);
    tcp.emit(&mut TcpPacket::new_unchecked(&mut seg[..]), src, dst, ChecksumMode::Full);
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::Tcp,
        payload_len: seg.len(),
        ttl: 64,
        ident: tcp.src_port,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        dscp_ecn: 0,
    };
    let mut f = vec![0u8; 14 + 20 + seg.len()];
    EthernetRepr {
        src: EthernetAddress(tb.peer_mac),
        dst: EthernetAddress(tb.stack_mac),
        ethertype: EtherType::Ipv4,
        vlan: None,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut f[..14]));
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut f[14..34]));
    f[34..].copy_from_slice(&seg);
    f
}

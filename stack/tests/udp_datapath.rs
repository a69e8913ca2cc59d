//! The data path end to end on a real veth testbed: the XDP program attached, AF_XDP sockets, and the
//! Linux kernel as the peer (ping, kernel UDP sockets).

mod common;

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use common::*;
use xdpstack::rand::Rng;
use xdpstack::services::{self, Service};
use xdpstack::UdpSocket;

#[test]
fn ping_from_the_kernel_gets_replies() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let out = peer_run(&tb, "ping", &["-c", "5", "-i", "0.2", "-W", "2", &stack_ip(&tb)]);
    assert!(out.contains("5 packets transmitted, 5 received"), "{out}");
    assert!(counter(&stack, "IcmpInEchos") >= 5);
    assert!(counter(&stack, "IcmpOutEchoReps") >= 5);
    // The peer's kernel found the stack's MAC by asking (ARP request answered by the stack): a fresh
    // testbed, and Linux does not create entries from our gratuitous ARP (arp_accept = 0).
    assert!(counter(&stack, "ArpInRequests") >= 1);
    assert!(counter(&stack, "ArpOutReplies") >= 1);
    // A large ping: 3000 bytes of payload arrive in fragments and the reply leaves in fragments.
    let out = peer_run(&tb, "ping", &["-c", "2", "-s", "3000", "-W", "2", &stack_ip(&tb)]);
    assert!(out.contains("2 received"), "{out}");
    assert!(counter(&stack, "IpReasmOKs") >= 2);
    assert!(counter(&stack, "IpFragOKs") >= 2);
    finish(stack);
}

#[test]
fn kernel_client_gets_every_byte_of_10000_datagrams_back() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let _svc = services::start(&stack, Service::EchoUdp(7)).unwrap();
    let sock = peer_udp(&tb, "10.77.0.1:0");
    sock.connect((tb.config.stack_addr, 7)).unwrap();
    let mut rng = Rng::with_seed(2024);
    let mut outstanding: VecDeque<Vec<u8>> = VecDeque::new();
    let (total, window) = (10_000, 32);
    let (mut sent, mut got, mut bytes) = (0, 0, 0usize);
    let mut buf = vec![0u8; 2048];
    while got < total {
        while sent < total && outstanding.len() < window {
            let len = 1 + rng.below(1472) as usize;
            let payload: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            sock.send(&payload).unwrap();
            outstanding.push_back(payload);
            sent += 1;
        }
        let n = sock
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("echo {got} of {total} missing: {e}; counters {:?}", nonzero(&stack)));
        // UDP keeps no order, and the peer kernel itself reorders the first window (datagrams queued
        // while it resolves the stack's MAC race later ones), so match by content; every one must come
        // back exactly once.
        let Some(pos) = outstanding.iter().position(|o| o[..] == buf[..n]) else {
            panic!("datagram of {n} bytes matches nothing outstanding; counters {:?}", nonzero(&stack));
        };
        outstanding.remove(pos);
        bytes += n;
        got += 1;
    }
    assert!(bytes > 5_000_000, "sizes are 1..=1472, about 7 MB in all");
    assert_eq!(counter(&stack, "UdpInDatagrams"), total as u64);
    assert_eq!(counter(&stack, "UdpOutDatagrams"), total as u64);
    assert_eq!(counter(&stack, "UdpInErrors"), 0);
    let report = finish(stack);
    assert!(report.workers[0].frames_free > 0);
}

#[test]
fn fragmented_4000_byte_datagrams_are_reassembled_and_echoed() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let _svc = services::start(&stack, Service::EchoUdp(7)).unwrap();
    let sock = peer_udp(&tb, "10.77.0.1:0");
    sock.connect((tb.config.stack_addr, 7)).unwrap();
    let mut buf = vec![0u8; 65536];
    for i in 0..5u8 {
        let payload: Vec<u8> = (0..4000u32).map(|j| (j as u8).wrapping_mul(31).wrapping_add(i)).collect();
        sock.send(&payload).unwrap();
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &payload[..]);
    }
    assert_eq!(counter(&stack, "IpReasmOKs"), 5);
    assert_eq!(counter(&stack, "IpFragOKs"), 5);
    assert_eq!(counter(&stack, "IpFragCreates"), 15, "4008 bytes of UDP in 1480-byte pieces: 3 each");
    finish(stack);
}

#[test]
fn stack_client_reaches_a_kernel_server_and_arp_resolves_both_ways() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let server = peer_udp(&tb, "10.77.0.1:5353");
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        for _ in 0..3 {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            server.send_to(&buf[..n], from).unwrap();
        }
    });
    let client = UdpSocket::bind(&stack, "0.0.0.0:0").unwrap();
    client.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let port = client.local_addr().unwrap().port();
    assert!(port >= 49152, "ephemeral port {port} from the dynamic range");
    let mut buf = [0u8; 2048];
    client.send_to(b"first, before ARP has resolved", "10.77.0.1:5353").unwrap();
    let (n, from) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"first, before ARP has resolved");
    assert_eq!(from, "10.77.0.1:5353".parse().unwrap());
    client.connect("10.77.0.1:5353").unwrap();
    for msg in [&b"connected send"[..], b"and again"] {
        client.send(msg).unwrap();
        let n = client.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], msg);
    }
    echo.join().unwrap();
    // The stack resolved the peer with ARP...
    assert!(counter(&stack, "ArpInReplies") >= 1);
    // ...and the peer resolved the stack (from the stack's request or its own), with no static entry.
    let neigh = peer_run(&tb, "ip", &["neigh", "show", &stack_ip(&tb)]);
    let mac: Vec<String> = tb.stack_mac.iter().map(|b| format!("{b:02x}")).collect();
    assert!(neigh.contains(&mac.join(":")), "peer neighbour table: {neigh}");
    assert!(!neigh.contains("PERMANENT"), "{neigh}");
    finish(stack);
}

#[test]
fn closed_port_gets_icmp_port_unreachable_and_errors_reach_stack_sockets() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    // Kernel -> stack closed port: the kernel's connected socket sees ECONNREFUSED.
    let sock = peer_udp(&tb, "10.77.0.1:0");
    sock.connect((tb.config.stack_addr, 9999)).unwrap();
    sock.send(b"anyone?").unwrap();
    let mut buf = [0u8; 64];
    let err = sock.recv(&mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    assert_eq!(counter(&stack, "UdpNoPorts"), 1);
    assert_eq!(counter(&stack, "IcmpOutDestUnreachs"), 1);

    // Stack -> kernel closed port: the kernel answers port unreachable, the stack's socket sees it.
    let client = UdpSocket::bind(&stack, "10.77.0.2:0").unwrap();
    client.connect("10.77.0.1:9").unwrap();
    client.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    client.send(b"discard me, if you can").unwrap();
    let err = client.recv(&mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    assert!(counter(&stack, "IcmpInDestUnreachs") >= 1);
    finish(stack);
}

#[test]
fn broadcast_datagrams_reach_a_wildcard_socket() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let _svc = services::start(&stack, Service::EchoUdp(7)).unwrap();
    let sock = peer_udp(&tb, "10.77.0.1:0");
    sock.set_broadcast(true).unwrap();
    let mut buf = [0u8; 64];
    for dst in ["10.77.0.255:7", "255.255.255.255:7"] {
        sock.send_to(b"hello, everyone", dst).unwrap();
        let (n, from) =
            sock.recv_from(&mut buf).unwrap_or_else(|e| panic!("no echo of broadcast to {dst}: {e}"));
        assert_eq!(&buf[..n], b"hello, everyone");
        assert_eq!(from, "10.77.0.2:7".parse().unwrap());
    }
    finish(stack);
}

#[test]
fn socket_modes_and_errors_follow_std() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let a = UdpSocket::bind(&stack, "10.77.0.2:4000").unwrap();
    assert_eq!(UdpSocket::bind(&stack, "10.77.0.2:4000").unwrap_err().kind(), ErrorKind::AddrInUse);
    assert_eq!(UdpSocket::bind(&stack, "0.0.0.0:4000").unwrap_err().kind(), ErrorKind::AddrInUse);
    assert_eq!(UdpSocket::bind(&stack, "10.9.9.9:4001").unwrap_err().kind(), ErrorKind::AddrNotAvailable);
    assert_eq!(a.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
    assert_eq!(a.send(b"x").unwrap_err().kind(), ErrorKind::NotConnected);
    assert_eq!(a.send_to(b"x", "192.0.2.1:9").unwrap_err().kind(), ErrorKind::NetworkUnreachable);
    assert_eq!(a.send_to(b"x", "10.77.0.255:9").unwrap_err().kind(), ErrorKind::PermissionDenied);
    assert_eq!(a.send_to(&vec![0; 70_000], "10.77.0.1:9").unwrap_err().raw_os_error(), Some(libc::EMSGSIZE));
    assert_eq!(a.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(), ErrorKind::InvalidInput);

    let mut buf = [0u8; 16];
    a.set_nonblocking(true).unwrap();
    assert_eq!(a.recv_from(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    a.set_nonblocking(false).unwrap();
    a.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let t = Instant::now();
    assert_eq!(a.recv_from(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
    assert!(t.elapsed() >= Duration::from_millis(200));

    // Descriptors are small integers, lowest first, reused after close.
    let b = UdpSocket::bind(&stack, "0.0.0.0:0").unwrap();
    let fd_b = b.descriptor();
    assert_ne!(fd_b, a.descriptor());
    drop(b);
    let c = UdpSocket::bind(&stack, "0.0.0.0:0").unwrap();
    assert_eq!(c.descriptor(), fd_b);
    // A closed port can be bound again at once.
    drop(a);
    let again = UdpSocket::bind(&stack, "10.77.0.2:4000").unwrap();
    // A datagram larger than the caller's buffer is truncated, as with kernel sockets.
    let peer = peer_udp(&tb, "10.77.0.1:0");
    peer.send_to(&[7u8; 100], "10.77.0.2:4000").unwrap();
    again.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let (n, _) = again.recv_from(&mut buf).unwrap();
    assert_eq!(n, 16);
    finish(stack);
}

#[test]
fn off_link_destinations_go_through_the_gateway() {
    let tb = testbed(1);
    // The peer also answers for 10.88.0.1, an address outside the testbed prefix.
    peer_run(&tb, "ip", &["addr", "add", "10.88.0.1/32", "dev", "lo"]);
    let stack = start(&tb, |c| c.gateway = Some(Ipv4Addr::new(10, 77, 0, 1)));
    let server = peer_udp(&tb, "10.88.0.1:6000");
    let client = UdpSocket::bind(&stack, "0.0.0.0:0").unwrap();
    client.send_to(b"via the gateway", SocketAddrV4::new(Ipv4Addr::new(10, 88, 0, 1), 6000)).unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"via the gateway");
    assert_eq!(from.ip().to_string(), "10.77.0.2");
    finish(stack);
}

#[test]
fn busy_poll_mode_echoes() {
    let tb = testbed(1);
    let stack = start(&tb, |c| c.busy_poll = true);
    let _svc = services::start(&stack, Service::EchoUdp(7)).unwrap();
    let sock = peer_udp(&tb, "10.77.0.1:0");
    sock.connect((tb.config.stack_addr, 7)).unwrap();
    let mut buf = [0u8; 2048];
    for i in 0..2000u32 {
        let msg = i.to_be_bytes().repeat(1 + (i as usize % 300));
        sock.send(&msg).unwrap();
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &msg[..]);
    }
    assert_eq!(counter(&stack, "WorkerSleeps"), 0, "a busy-polling worker never sleeps");
    finish(stack);
}

#[test]
fn shutdown_wakes_blocked_calls_and_later_calls_fail_clearly() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let sock = std::sync::Arc::new(UdpSocket::bind(&stack, "0.0.0.0:5000").unwrap());
    let blocked = {
        let sock = sock.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 16];
            let t = Instant::now();
            (sock.recv_from(&mut buf).map(|_| ()), t)
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let stopped_at = Instant::now();
    finish(stack);
    let (result, _) = blocked.join().unwrap();
    assert_eq!(result.unwrap_err().kind(), ErrorKind::NotConnected);
    assert!(stopped_at.elapsed() < Duration::from_millis(500), "woken at once, not by a periodic check");
    assert_eq!(sock.send_to(b"x", "10.77.0.1:9").unwrap_err().kind(), ErrorKind::NotConnected);
}

#[test]
fn run_to_completion_mode_echoes_with_no_worker_thread() {
    let tb = testbed(1);
    let stack = start(&tb, |c| c.inline = true);
    let _svc = services::start(&stack, Service::EchoUdp(7)).unwrap();
    let sock = peer_udp(&tb, "10.77.0.1:0");
    sock.connect((tb.config.stack_addr, 7)).unwrap();
    let mut buf = [0u8; 2048];
    for i in 0..2000u32 {
        let msg = i.to_be_bytes().repeat(1 + (i as usize % 300));
        sock.send(&msg).unwrap();
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &msg[..]);
    }
    // Other tests in this binary run stacks with worker threads at the same time, so the check is on
    // this stack's threads, not on the process's.
    assert_eq!(stack.worker_threads(), 0, "no worker thread in run-to-completion mode");
    finish(stack);
}

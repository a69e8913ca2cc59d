//! Shared-address mode: the kernel keeps the address; only the listed ports (and the ports the stack's
//! sockets bind) go to the stack, everything else stays with the kernel.

mod common;

use std::io::{Read, Write};
use std::net::UdpSocket as KernelUdp;
use std::time::Duration;

use common::*;
use xdpstack::services::{self, Service};
use xdpstack::{Proto, UdpSocket};

#[test]
fn listed_ports_go_to_the_stack_and_the_rest_to_the_kernel() {
    let tb = testbed(1);
    // The kernel on the stack side owns 10.77.0.2 too.
    tb.stack_cmd("ip").args(["addr", "add", &tb.stack_cidr(), "dev", &tb.stack_if]).status().unwrap();
    let kernel_server = tb.in_stack_ns(|| KernelUdp::bind("10.77.0.2:8")).unwrap().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok((n, from)) = kernel_server.recv_from(&mut buf) {
            let mut reply = b"kernel:".to_vec();
            reply.extend_from_slice(&buf[..n]);
            let _ = kernel_server.send_to(&reply, from);
        }
    });
    let stack = start(&tb, |c| c.shared_ports = Some(vec![(Proto::Udp, 7), (Proto::Tcp, 7)]));
    let _svc = services::start(&stack, Service::EchoUdp(7)).unwrap();
    let _tcp = services::start(&stack, Service::EchoTcp(7)).unwrap();

    // Ping is the kernel's business.
    let out = peer_run(&tb, "ping", &["-c", "2", "-W", "2", &stack_ip(&tb)]);
    assert!(out.contains("2 received"), "{out}");
    assert_eq!(counter(&stack, "IcmpInEchos"), 0);

    let sock = peer_udp(&tb, "10.77.0.1:0");
    let mut buf = [0u8; 256];
    sock.send_to(b"to the stack", "10.77.0.2:7").unwrap();
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"to the stack");
    sock.send_to(b"to the kernel", "10.77.0.2:8").unwrap();
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"kernel:to the kernel");

    // A stack client: its ephemeral port (above the kernel's range) is steered to the stack, and the
    // neighbour is resolved through the kernel, which owns ARP in this mode. 10.77.0.3 is an address
    // the kernel has never talked to, so it must be asked to resolve it.
    peer_run(&tb, "ip", &["addr", "add", "10.77.0.3/24", "dev", &tb.peer_if]);
    let server = peer_udp(&tb, "10.77.0.3:7777");
    let client = UdpSocket::bind(&stack, "0.0.0.0:0").unwrap();
    assert!(client.local_addr().unwrap().port() >= 61000);
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    client.send_to(b"from the stack", "10.77.0.3:7777").unwrap();
    let (n, from) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"from the stack");
    server.send_to(b"reply", from).unwrap();
    let n = client.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"reply");
    let neigh =
        String::from_utf8(tb.stack_cmd("ip").args(["neigh", "show", "10.77.0.3"]).output().unwrap().stdout)
            .unwrap();
    assert!(neigh.contains("lladdr"), "the kernel resolved it for the stack: {neigh}");
    assert_eq!(counter(&stack, "ArpOutRequests"), 0, "the stack sent no ARP of its own");

    // TCP: the listed port is the stack's; a stack client's port is steered to the stack as well.
    let mut k = tb.in_peer_ns(|| std::net::TcpStream::connect("10.77.0.2:7")).unwrap().unwrap();
    k.write_all(b"tcp to the stack").unwrap();
    let mut back = [0u8; 16];
    k.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"tcp to the stack");
    let kl = tb.in_peer_ns(|| std::net::TcpListener::bind("10.77.0.3:7200")).unwrap().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = kl.accept().unwrap();
        s.write_all(b"hello from the kernel").unwrap();
    });
    let mut c = xdpstack::TcpStream::connect(&stack, "10.77.0.3:7200").unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"hello from the kernel");
    server.join().unwrap();
    drop(c);
    finish(stack);
}

//! Hostile input on the real path: malformed frames injected from the peer (AF_PACKET) beside a live
//! echo flow are dropped and counted by name and change nothing else; heavy traffic loses no frame.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::*;
use xdpstack::services::{self, Service};
use xdpstack::testbed::Testbed;
use xdpstack::wire::{
    ChecksumMode, EtherType, EthernetAddress, EthernetFrame, EthernetRepr, Icmpv4Packet, Icmpv4Repr,
    IpProtocol, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr,
};

const COPIES: u64 = 5;

fn exchange(client: &std::net::UdpSocket, n: usize) {
    let mut buf = [0u8; 2048];
    for i in 0..n {
        let msg = format!("exchange {i}");
        client.send(msg.as_bytes()).unwrap();
        let len = client.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], msg.as_bytes());
    }
}

struct Frames<'a> {
    tb: &'a Testbed,
}

impl Frames<'_> {
    fn eth(&self, dst: [u8; 6], payload: &[u8]) -> Vec<u8> {
        let repr = EthernetRepr {
            src: EthernetAddress(self.tb.peer_mac),
            dst: EthernetAddress(dst),
            ethertype: EtherType::Ipv4,
            vlan: None,
        };
        let mut f = vec![0u8; 14 + payload.len()];
        repr.emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
        f[14..].copy_from_slice(payload);
        f
    }

    fn ip(&self, protocol: IpProtocol, payload: &[u8], frag: (bool, u16)) -> Vec<u8> {
        let repr = Ipv4Repr {
            src_addr: self.tb.config.peer_addr,
            dst_addr: self.tb.config.stack_addr,
            protocol,
            payload_len: payload.len(),
            ttl: 64,
            ident: 99,
            dont_frag: false,
            more_frags: frag.0,
            frag_offset: frag.1,
            dscp_ecn: 0,
        };
        let mut p = vec![0u8; 20 + payload.len()];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut p[..]));
        p[20..].copy_from_slice(payload);
        p
    }

    fn udp(&self, dport: u16, data: &[u8]) -> Vec<u8> {
        let repr = UdpRepr { src_port: 40000, dst_port: dport, payload_len: data.len() };
        let mut u = vec![0u8; 8 + data.len()];
        u[8..].copy_from_slice(data);
        let (s, d) = (self.tb.config.peer_addr, self.tb.config.stack_addr);
        repr.emit(&mut UdpPacket::new_unchecked(&mut u[..]), s, d, ChecksumMode::Full);
        u
    }

    fn to_stack(&self, ip_packet: &[u8]) -> Vec<u8> {
        self.eth(self.tb.stack_mac, ip_packet)
    }
}

#[test]
fn malformed_frames_are_counted_by_name_and_change_nothing_else() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let _svc = services::start(&stack, Service::EchoUdp(7)).unwrap();
    let client = peer_udp(&tb, "10.77.0.1:0");
    client.connect((tb.config.stack_addr, 7)).unwrap();
    exchange(&client, 20);

    let f = Frames { tb: &tb };
    let good = f.udp(7, b"a datagram that would be echoed");
    let good_ip = f.ip(IpProtocol::Udp, &good, (false, 0));
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    // Caught by the XDP program (it cannot even find the destination address): passed to the kernel,
    // which drops them.
    cases.push(("IPv4 header cut short", f.eth(tb.stack_mac, &good_ip[..12]), "XdpMalformed"));
    let mut v = good_ip.clone();
    v[0] = 0x44;
    cases.push(("IHL below 5", f.to_stack(&v), "XdpMalformed"));
    let mut v = good_ip.clone();
    v[0] = 0x65;
    cases.push(("version 6 in an IPv4 frame", f.to_stack(&v), "XdpMalformed"));
    let udp_cut = f.ip(IpProtocol::Udp, &good[..5], (false, 0));
    cases.push(("UDP header cut short", f.to_stack(&udp_cut), "XdpMalformed"));
    // Steered to the stack and dropped there.
    let mut v = good_ip.clone();
    v[10] ^= 0x5a;
    cases.push(("bad IPv4 header checksum", f.to_stack(&v), "IpInCsumErrors"));
    let mut v = good_ip.clone();
    v[2..4].copy_from_slice(&1400u16.to_be_bytes());
    let mut p = Ipv4Packet::new_unchecked(&mut v[..]);
    p.fill_checksum();
    cases.push(("total length beyond the frame", f.to_stack(&v), "IpInBadTotalLen"));
    let mut v = good.clone();
    let last = v.len() - 1;
    v[last] ^= 1;
    cases.push(("bad UDP checksum", f.to_stack(&f.ip(IpProtocol::Udp, &v, (false, 0))), "UdpInCsumErrors"));
    let mut v = good.clone();
    v[4..6].copy_from_slice(&300u16.to_be_bytes());
    cases.push((
        "UDP length beyond the datagram",
        f.to_stack(&f.ip(IpProtocol::Udp, &v, (false, 0))),
        "UdpInErrors",
    ));
    let mut v = good.clone();
    v[4..6].copy_from_slice(&4u16.to_be_bytes());
    cases.push(("UDP length below 8", f.to_stack(&f.ip(IpProtocol::Udp, &v, (false, 0))), "UdpInErrors"));
    let echo = Icmpv4Repr::EchoRequest { ident: 1, seq_no: 1, data: b"data" };
    let mut v = vec![0u8; echo.buffer_len()];
    echo.emit(&mut Icmpv4Packet::new_unchecked(&mut v[..]), ChecksumMode::Full);
    v[2] ^= 0xff;
    cases.push((
        "bad ICMP checksum",
        f.to_stack(&f.ip(IpProtocol::Icmp, &v, (false, 0))),
        "IcmpInCsumErrors",
    ));
    let frag = f.ip(IpProtocol::Udp, &[0u8; 64], (true, 65528));
    cases.push(("fragment past 64 KiB", f.to_stack(&frag), "IpReasmFails"));
    cases.push(("our IP, another MAC", f.eth([0x02, 1, 2, 3, 4, 5], &good_ip), "EthInNotForUs"));
    let to_other = {
        let mut v = good_ip.clone();
        v[16..20].copy_from_slice(&Ipv4Addr::new(10, 77, 0, 99).octets());
        Ipv4Packet::new_unchecked(&mut v[..]).fill_checksum();
        v
    };
    cases.push(("another host's address", f.to_stack(&to_other), "XdpPassed"));

    for (what, frame, counter) in &cases {
        let before = stack.counters();
        let frames: Vec<Vec<u8>> = (0..COPIES).map(|_| frame.clone()).collect();
        tb.inject_from_peer(frames).unwrap();
        let moved = wait_for(Duration::from_secs(3), || {
            let now = stack.counter(counter);
            now >= before.iter().find(|(n, _)| n == counter).map_or(0, |c| c.1) + COPIES
        });
        assert!(moved, "{what}: {counter} did not rise by {COPIES}; counters {:?}", nonzero(&stack));
        std::thread::sleep(Duration::from_millis(50));
        let after = stack.counters();
        let delta = |name: &str| {
            let get = |v: &Vec<(&str, u64)>| v.iter().find(|(n, _)| *n == name).map_or(0, |c| c.1);
            get(&after) - get(&before)
        };
        assert_eq!(delta(counter), COPIES, "{what}: exactly one count per frame");
        for unmoved in ["UdpInDatagrams", "UdpOutDatagrams", "IcmpOutMsgs", "IpReasmOKs", "EthOutFrames"] {
            assert_eq!(delta(unmoved), 0, "{what}: {unmoved} moved");
        }
    }
    // The flow beside the garbage is unharmed, and nothing was delivered but it.
    exchange(&client, 20);
    assert_eq!(counter(&stack, "UdpInDatagrams"), 40);
    assert_eq!(counter(&stack, "UdpOutDatagrams"), 40);
    finish(stack);
}

#[test]
fn heavy_traffic_loses_no_frame() {
    let tb = testbed(1);
    let stack = start(&tb, |c| {
        // A small UMEM, so the traffic laps it many times.
        c.frames_per_socket = 512;
        c.ring_size = 256;
    });
    let _svc = services::start(&stack, Service::EchoUdp(7)).unwrap();
    let blaster = peer_udp(&tb, "10.77.0.1:0");
    blaster.connect((tb.config.stack_addr, 7)).unwrap();
    blaster.set_nonblocking(true).unwrap();
    let payload = [0xabu8; 1200];
    let mut buf = [0u8; 2048];
    // Blast until the stack has received 100 laps of its UMEM (however fast this machine is today;
    // the frames the stack cannot take in time are dropped by the kernel, which is part of the test).
    const TARGET: u64 = 512 * 100;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut sent = 0u64;
    while counter(&stack, "XskRxFrames") < TARGET && Instant::now() < deadline {
        for _ in 0..1000 {
            if blaster.send(&payload).is_ok() {
                sent += 1;
            }
            while blaster.recv(&mut buf).is_ok() {}
        }
    }
    // Let the stack drain, then check that every frame is back where it belongs.
    std::thread::sleep(Duration::from_millis(300));
    let rx = counter(&stack, "XskRxFrames");
    assert!(rx >= TARGET, "{TARGET} frames should have reached the stack in 2 minutes: {rx} of {sent} sent");
    assert!(counter(&stack, "UdpOutDatagrams") > TARGET / 2, "the echo service answered");
    let report = finish(stack);
    assert!(report.frames_total == 512);
}

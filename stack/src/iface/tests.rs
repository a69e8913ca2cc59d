//! Scenario tests of the engine through in-memory devices and a virtual clock.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::phy::{FaultConfig, FaultInjector, RxDevice};
use crate::wire::icmp::dst_unreachable;
use crate::wire::{
    ArpOperation, ArpPacket, ArpRepr, ChecksumMode, EthernetRepr, Icmpv4Packet, Icmpv4Repr, Ipv4Packet,
    Ipv4Repr, UdpPacket, UdpRepr,
};

const MAC_US: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 2]);
const MAC_PEER: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 1]);
const IP_US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const IP_PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const IP_GW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);

/// Endpoints that record what the engine hands up; port 7 is bound and its queue holds `capacity`.
#[derive(Default)]
struct Recorder {
    datagrams: Vec<(SocketAddrV4, SocketAddrV4, bool, Vec<u8>)>,
    errors: Vec<IcmpError>,
    capacity: Option<usize>,
    tcp: Vec<(SocketAddrV4, SocketAddrV4, crate::wire::TcpRepr, Vec<u8>)>,
    /// Protocols with a raw socket open, and the datagrams (header included) they were given.
    raw_protocols: Vec<u8>,
    raw: Vec<Vec<u8>>,
}

impl Endpoints for Recorder {
    fn udp(&mut self, _now: Instant, d: UdpInput<'_>) -> Delivery {
        if d.dst.port() != 7 {
            return Delivery::NoSocket;
        }
        if self.capacity.is_some_and(|c| self.datagrams.len() >= c) {
            return Delivery::QueueFull;
        }
        self.datagrams.push((d.src, d.dst, d.broadcast, d.payload.to_vec()));
        Delivery::Delivered
    }
    fn icmp_error(&mut self, _now: Instant, err: IcmpError) {
        self.errors.push(err);
    }
    fn tcp(&mut self, _now: Instant, seg: TcpInput<'_>) {
        self.tcp.push((seg.src, seg.dst, seg.repr, seg.payload.to_vec()));
    }
    fn raw(&mut self, _now: Instant, d: RawInput<'_>) -> bool {
        if !self.raw_protocols.contains(&d.protocol) {
            return false;
        }
        self.raw.push([d.header, d.payload].concat());
        true
    }
}

fn iface_with(mac: EthernetAddress, ip: Ipv4Addr) -> Interface {
    let cfg = IfaceConfig::new(mac, vec![Ipv4Cidr::new(ip, 24).unwrap()]);
    Interface::new(cfg, Arc::new(Counters::default()), 100)
}

fn us() -> Interface {
    iface_with(MAC_US, IP_US)
}

fn eth(dst: EthernetAddress, ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
    let repr = EthernetRepr { src: MAC_PEER, dst, ethertype, vlan: None };
    let mut f = vec![0u8; repr.header_len() + payload.len()];
    repr.emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    f[repr.header_len()..].copy_from_slice(payload);
    f
}

fn arp(
    op: ArpOperation,
    sender: (EthernetAddress, Ipv4Addr),
    target: (EthernetAddress, Ipv4Addr),
) -> Vec<u8> {
    let repr = ArpRepr {
        operation: op,
        source_hardware_addr: sender.0,
        source_protocol_addr: sender.1,
        target_hardware_addr: target.0,
        target_protocol_addr: target.1,
    };
    let mut p = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut p[..]));
    let dst = if op == ArpOperation::Request { EthernetAddress::BROADCAST } else { target.0 };
    eth(dst, EtherType::Arp, &p)
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, payload: &[u8]) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol,
        payload_len: payload.len(),
        ttl: 64,
        ident: 7,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
        dscp_ecn: 0,
    };
    let mut p = vec![0u8; 20 + payload.len()];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut p[..]));
    p[20..].copy_from_slice(payload);
    p
}

fn udp_frame(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let repr = UdpRepr { src_port: sport, dst_port: dport, payload_len: data.len() };
    let mut u = vec![0u8; 8 + data.len()];
    u[8..].copy_from_slice(data);
    repr.emit(&mut UdpPacket::new_unchecked(&mut u[..]), src, dst, ChecksumMode::Full);
    eth(MAC_US, EtherType::Ipv4, &ipv4(src, dst, IpProtocol::Udp, &u))
}

fn echo_request(dst_ip: Ipv4Addr, data: &[u8]) -> Vec<u8> {
    let repr = Icmpv4Repr::EchoRequest { ident: 0x1234, seq_no: 9, data };
    let mut p = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut p[..]), ChecksumMode::Full);
    eth(MAC_US, EtherType::Ipv4, &ipv4(IP_PEER, dst_ip, IpProtocol::Icmp, &p))
}

/// Parse a frame we sent down to its IPv4 packet (checking the Ethernet header on the way).
fn ip_of(frame: &[u8]) -> Ipv4Packet<&[u8]> {
    let e = EthernetFrame::new_checked(frame).unwrap();
    assert_eq!(e.src_addr(), MAC_US);
    assert_eq!(e.ethertype(), EtherType::Ipv4);
    let p = Ipv4Packet::new_checked(&frame[14..]).unwrap();
    assert!(p.verify_checksum());
    p
}

fn arp_of(frame: &[u8]) -> ArpRepr {
    let e = EthernetFrame::new_checked(frame).unwrap();
    assert_eq!(e.ethertype(), EtherType::Arp);
    assert!(frame.len() >= 60, "padded to the Ethernet minimum");
    ArpRepr::parse(&ArpPacket::new_checked(&frame[14..]).unwrap()).unwrap()
}

/// Teach `i` the peer's MAC the way the wire would: an ARP request from the peer for us.
fn knows_peer(i: &mut Interface, now: Instant) {
    let mut tx = Vec::new();
    i.receive(
        now,
        &arp(ArpOperation::Request, (MAC_PEER, IP_PEER), (EthernetAddress([0; 6]), IP_US)),
        &mut tx,
        &mut Recorder::default(),
    );
}

#[test]
fn test_arp_request_for_us_is_answered_and_learned() {
    let mut i = us();
    let now = Instant::now();
    let mut tx = Vec::new();
    i.receive(
        now,
        &arp(ArpOperation::Request, (MAC_PEER, IP_PEER), (EthernetAddress([0; 6]), IP_US)),
        &mut tx,
        &mut Recorder::default(),
    );
    assert_eq!(tx.len(), 1);
    let r = arp_of(&tx[0]);
    assert_eq!(r.operation, ArpOperation::Reply);
    assert_eq!((r.source_hardware_addr, r.source_protocol_addr), (MAC_US, IP_US));
    assert_eq!((r.target_hardware_addr, r.target_protocol_addr), (MAC_PEER, IP_PEER));
    assert_eq!(EthernetFrame::new_checked(&tx[0][..]).unwrap().dst_addr(), MAC_PEER);
    assert_eq!(i.take_learned().collect::<Vec<_>>(), vec![(IP_PEER, MAC_PEER)]);
    assert_eq!(i.counters().arp_out_replies.get(), 1);
}

#[test]
fn test_arp_for_others_is_not_answered_nor_learned() {
    let mut i = us();
    let mut tx = Vec::new();
    let other = Ipv4Addr::new(10, 0, 0, 99);
    i.receive(
        Instant::now(),
        &arp(ArpOperation::Request, (MAC_PEER, IP_PEER), (EthernetAddress([0; 6]), other)),
        &mut tx,
        &mut Recorder::default(),
    );
    assert!(tx.is_empty());
    assert_eq!(i.take_learned().count(), 0);
    assert_eq!(i.counters().arp_in_not_for_us.get(), 1);
}

#[test]
fn test_echo_request_gets_a_reply_but_broadcast_does_not() {
    let mut i = us();
    let now = Instant::now();
    knows_peer(&mut i, now);
    let mut tx = Vec::new();
    i.receive(now, &echo_request(IP_US, b"ping data"), &mut tx, &mut Recorder::default());
    assert_eq!(tx.len(), 1);
    let ip = ip_of(&tx[0]);
    assert_eq!((ip.src_addr(), ip.dst_addr(), ip.protocol()), (IP_US, IP_PEER, IpProtocol::Icmp));
    let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum());
    assert_eq!(
        Icmpv4Repr::parse(&icmp, ChecksumMode::Full).unwrap(),
        Icmpv4Repr::EchoReply { ident: 0x1234, seq_no: 9, data: b"ping data" }
    );
    let mut tx = Vec::new();
    let mut bcast = echo_request(Ipv4Addr::new(10, 0, 0, 255), b"all");
    bcast[..6].copy_from_slice(&[0xff; 6]);
    i.receive(now, &bcast, &mut tx, &mut Recorder::default());
    assert!(tx.is_empty());
    assert_eq!(i.counters().icmp_in_echos.get(), 2);
}

#[test]
fn test_udp_is_delivered_and_closed_port_gets_port_unreachable() {
    let mut i = us();
    let now = Instant::now();
    knows_peer(&mut i, now);
    let mut rec = Recorder::default();
    let mut tx = Vec::new();
    i.receive(now, &udp_frame(IP_PEER, IP_US, 5000, 7, b"hello"), &mut tx, &mut rec);
    assert!(tx.is_empty());
    assert_eq!(
        rec.datagrams,
        vec![(SocketAddrV4::new(IP_PEER, 5000), SocketAddrV4::new(IP_US, 7), false, b"hello".to_vec())]
    );

    let frame = udp_frame(IP_PEER, IP_US, 5000, 9, b"closed");
    i.receive(now, &frame, &mut tx, &mut rec);
    assert_eq!(tx.len(), 1);
    let ip = ip_of(&tx[0]);
    let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
    let Icmpv4Repr::DstUnreachable { code, invoking, .. } =
        Icmpv4Repr::parse(&icmp, ChecksumMode::Full).unwrap()
    else {
        panic!("not a destination unreachable")
    };
    assert_eq!(code, dst_unreachable::PORT_UNREACHABLE);
    // The invoking datagram is quoted whole (it is small): header and UDP header and data.
    assert_eq!(invoking, &frame[14..]);
    assert_eq!(i.counters().udp_no_ports.get(), 1);
}

#[test]
fn test_port_unreachable_is_rate_limited() {
    let mut i = us();
    let now = Instant::now();
    knows_peer(&mut i, now);
    let mut tx = Vec::new();
    for _ in 0..100 {
        i.receive(now, &udp_frame(IP_PEER, IP_US, 5000, 9, b"x"), &mut tx, &mut Recorder::default());
    }
    assert_eq!(tx.len(), 50, "the burst");
    assert_eq!(i.counters().icmp_out_rate_limited.get(), 50);
    // A second later the bucket holds 50 again (1000/s, capped at the burst).
    let mut tx = Vec::new();
    for _ in 0..100 {
        i.receive(
            now + Duration::from_secs(1),
            &udp_frame(IP_PEER, IP_US, 5000, 9, b"x"),
            &mut tx,
            &mut Recorder::default(),
        );
    }
    assert_eq!(tx.len(), 50);
}

#[test]
fn test_full_socket_queue_is_counted() {
    let mut i = us();
    let mut rec = Recorder { capacity: Some(1), ..Default::default() };
    let mut tx = Vec::new();
    for _ in 0..3 {
        i.receive(Instant::now(), &udp_frame(IP_PEER, IP_US, 1, 7, b"x"), &mut tx, &mut rec);
    }
    assert_eq!(rec.datagrams.len(), 1);
    assert_eq!(i.counters().udp_rcvbuf_errors.get(), 2);
    assert!(tx.is_empty(), "a full queue is not a closed port");
}

#[test]
fn test_send_resolves_with_arp_then_flushes_the_queue() {
    let mut i = us();
    let now = Instant::now();
    let mut tx = Vec::new();
    for n in 0..3u8 {
        i.send_udp(now, SocketAddrV4::new(IP_US, 4000), SocketAddrV4::new(IP_PEER, 53), &[n; 10], &mut tx)
            .unwrap();
    }
    assert_eq!(tx.len(), 1, "one ARP request, datagrams queued");
    let req = arp_of(&tx[0]);
    assert_eq!(
        (req.operation, req.target_protocol_addr, req.source_protocol_addr),
        (ArpOperation::Request, IP_PEER, IP_US)
    );
    let mut tx = Vec::new();
    i.receive(
        now,
        &arp(ArpOperation::Reply, (MAC_PEER, IP_PEER), (MAC_US, IP_US)),
        &mut tx,
        &mut Recorder::default(),
    );
    assert_eq!(tx.len(), 3, "the queue is flushed in order");
    for (n, f) in tx.iter().enumerate() {
        assert_eq!(EthernetFrame::new_checked(&f[..]).unwrap().dst_addr(), MAC_PEER);
        let ip = ip_of(f);
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        assert!(udp.verify_checksum(IP_US, IP_PEER));
        assert_eq!(udp.payload(), &[n as u8; 10]);
    }
    assert_eq!(i.poll_at(), None, "nothing pending");
}

#[test]
fn test_unanswered_arp_retries_then_gives_up() {
    let mut i = us();
    let t0 = Instant::now();
    let mut tx = Vec::new();
    i.send_udp(t0, SocketAddrV4::new(IP_US, 4000), SocketAddrV4::new(IP_PEER, 53), b"lost", &mut tx).unwrap();
    assert_eq!(tx.len(), 1);
    assert_eq!(i.poll_at(), Some(t0 + Duration::from_secs(1)));
    // Virtual time: jump to each timeout.
    while let Some(t) = i.poll_at() {
        i.poll(t, &mut tx);
    }
    assert_eq!(tx.len(), 3, "max_requests = 3");
    assert_eq!(i.counters().arp_resolve_failed.get(), 1);
    assert_eq!(i.counters().arp_queue_drops.get(), 1);
}

#[test]
fn test_arp_queue_is_bounded() {
    let mut i = us();
    let now = Instant::now();
    let mut tx = Vec::new();
    for _ in 0..20 {
        i.send_udp(now, SocketAddrV4::new(IP_US, 4000), SocketAddrV4::new(IP_PEER, 53), b"q", &mut tx)
            .unwrap();
    }
    assert_eq!(i.counters().arp_queue_drops.get(), 4, "16 kept, 4 oldest dropped");
    let mut tx = Vec::new();
    i.receive(
        now,
        &arp(ArpOperation::Reply, (MAC_PEER, IP_PEER), (MAC_US, IP_US)),
        &mut tx,
        &mut Recorder::default(),
    );
    assert_eq!(tx.len(), 16);
}

#[test]
fn test_aged_entries_are_reconfirmed_with_a_unicast_request() {
    let mut i = us();
    let t0 = Instant::now();
    knows_peer(&mut i, t0);
    let later = t0 + DEFAULT_NEIGHBOR_REACHABLE + Duration::from_secs(1);
    let mut tx = Vec::new();
    i.send_udp(later, SocketAddrV4::new(IP_US, 1), SocketAddrV4::new(IP_PEER, 2), b"still goes", &mut tx)
        .unwrap();
    assert_eq!(tx.len(), 1, "the aged entry is still used");
    assert_eq!(i.poll_at(), Some(later));
    i.poll(later, &mut tx);
    let req = arp_of(&tx[1]);
    assert_eq!(req.operation, ArpOperation::Request);
    assert_eq!(EthernetFrame::new_checked(&tx[1][..]).unwrap().dst_addr(), MAC_PEER, "unicast poll");
    // No answer: the entry goes after the retries.
    while let Some(t) = i.poll_at() {
        i.poll(t, &mut tx);
    }
    let mut tx = Vec::new();
    i.send_udp(
        later + Duration::from_secs(10),
        SocketAddrV4::new(IP_US, 1),
        SocketAddrV4::new(IP_PEER, 2),
        b"x",
        &mut tx,
    )
    .unwrap();
    assert_eq!(arp_of(&tx[0]).target_protocol_addr, IP_PEER, "resolving afresh");
}

#[test]
fn test_routes_on_link_gateway_and_none() {
    let mut i = us();
    assert_eq!(i.route(IP_PEER), Ok((IP_US, ipv4::NextHop::Neighbor(IP_PEER))));
    assert_eq!(i.route(Ipv4Addr::new(10, 0, 0, 255)), Ok((IP_US, ipv4::NextHop::Broadcast)));
    assert_eq!(i.route(Ipv4Addr::BROADCAST), Ok((IP_US, ipv4::NextHop::Broadcast)));
    assert_eq!(i.route(Ipv4Addr::new(192, 0, 2, 1)), Err(SendError::NoRoute));
    assert_eq!(i.route(IP_US), Err(SendError::BadDestination));
    i.config.gateway = Some(IP_GW);
    assert_eq!(i.route(Ipv4Addr::new(192, 0, 2, 1)), Ok((IP_US, ipv4::NextHop::Neighbor(IP_GW))));
    let mut tx = Vec::new();
    assert_eq!(
        i.send_udp(Instant::now(), SocketAddrV4::new(IP_PEER, 1), SocketAddrV4::new(IP_GW, 2), b"", &mut tx),
        Err(SendError::BadSource)
    );
}

#[test]
fn test_malformed_frames_are_counted_by_name_and_answered_by_nothing() {
    let mut i = us();
    let now = Instant::now();
    knows_peer(&mut i, now);
    let good = udp_frame(IP_PEER, IP_US, 5000, 7, b"good datagram");
    let mut bad_ip_csum = good.clone();
    bad_ip_csum[14 + 10] ^= 0xff;
    let mut bad_version = good.clone();
    bad_version[14] = 0x65;
    let mut bad_ihl = good.clone();
    bad_ihl[14] = 0x44;
    let mut lying_total = good.clone();
    lying_total[14 + 2..14 + 4].copy_from_slice(&1400u16.to_be_bytes());
    let mut bad_udp_csum = good.clone();
    *bad_udp_csum.last_mut().unwrap() ^= 1;
    let mut lying_udp_len = good.clone();
    lying_udp_len[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&200u16.to_be_bytes());
    let mut not_for_us = good.clone();
    not_for_us[..6].copy_from_slice(&[0x02, 9, 9, 9, 9, 9]);
    let mut bad_icmp = echo_request(IP_US, b"x");
    *bad_icmp.last_mut().unwrap() ^= 0x55;
    let truncated_arp =
        arp(ArpOperation::Request, (MAC_PEER, IP_PEER), (EthernetAddress([0; 6]), IP_US))[..30].to_vec();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (good[..10].to_vec(), "EthInTruncated"),
        (not_for_us, "EthInNotForUs"),
        (eth(MAC_US, EtherType::Unknown(0x86dd), &[0; 40]), "EthInUnknownType"),
        (bad_ip_csum, "IpInCsumErrors"),
        (bad_version, "IpInBadVersion"),
        (bad_ihl, "IpInBadHeaderLen"),
        (lying_total, "IpInBadTotalLen"),
        (good[..14 + 12].to_vec(), "IpInBadTotalLen"),
        (bad_udp_csum, "UdpInCsumErrors"),
        (lying_udp_len, "UdpInErrors"),
        (bad_icmp, "IcmpInCsumErrors"),
        (truncated_arp, "ArpInMalformed"),
        (
            eth(
                MAC_US,
                EtherType::Ipv4,
                &ipv4(IP_PEER, Ipv4Addr::new(10, 0, 0, 77), IpProtocol::Udp, &[0; 8]),
            ),
            "IpInAddrErrors",
        ),
        (
            eth(MAC_US, EtherType::Ipv4, &ipv4(Ipv4Addr::BROADCAST, IP_US, IpProtocol::Udp, &[0; 8])),
            "IpInBadSrc",
        ),
    ];
    let mut rec = Recorder::default();
    for (frame, counter) in &cases {
        let before: Vec<(&str, u64)> = i.counters().iter().collect();
        let mut tx = Vec::new();
        i.receive(now, frame, &mut tx, &mut rec);
        assert!(tx.is_empty(), "{counter}: nothing is sent in answer");
        let after: Vec<(&str, u64)> = i.counters().iter().collect();
        let moved: Vec<&str> =
            before.iter().zip(&after).filter(|(b, a)| b.1 != a.1).map(|(b, _)| b.0).collect();
        assert!(moved.contains(counter), "{counter} did not move; moved: {moved:?}");
    }
    assert!(rec.datagrams.is_empty());
    // The good one still goes through.
    i.receive(now, &good, &mut Vec::new(), &mut rec);
    assert_eq!(rec.datagrams.len(), 1);
}

#[test]
fn test_received_icmp_errors_reach_the_flow() {
    let mut i = us();
    let now = Instant::now();
    let mut rec = Recorder::default();
    // The peer answers a datagram we sent (`sent`, an IPv4 packet) with a destination unreachable.
    let mut unreachable = |code: u8, sent: &[u8]| {
        let repr = Icmpv4Repr::DstUnreachable { code, next_hop_mtu: 0, invoking: sent };
        let mut p = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut p[..]), ChecksumMode::Full);
        let frame = eth(MAC_US, EtherType::Ipv4, &ipv4(IP_PEER, IP_US, IpProtocol::Icmp, &p));
        i.receive(now, &frame, &mut Vec::new(), &mut rec);
    };
    // An ICMP port unreachable quoting a datagram we sent from port 4000 to the peer's port 53.
    unreachable(
        dst_unreachable::PORT_UNREACHABLE,
        &ipv4(IP_US, IP_PEER, IpProtocol::Udp, &[0x0f, 0xa0, 0, 53, 0, 8, 0, 0]),
    );
    // A host unreachable quoting a TCP segment (ports 4000 -> 80, sequence number 0x01020304): the
    // sequence number rides along, for TCP's window check.
    unreachable(1, &ipv4(IP_US, IP_PEER, IpProtocol::Tcp, &[0x0f, 0xa0, 0, 80, 1, 2, 3, 4]));
    assert_eq!(rec.errors.len(), 2, "{:?}", rec.errors);
    assert_eq!(
        rec.errors[0],
        IcmpError {
            kind: IcmpErrorKind::PortUnreachable,
            protocol: IpProtocol::Udp,
            local: SocketAddrV4::new(IP_US, 4000),
            remote: SocketAddrV4::new(IP_PEER, 53),
            tcp_seq: None,
        }
    );
    assert_eq!(
        rec.errors[1],
        IcmpError {
            kind: IcmpErrorKind::HostUnreachable,
            protocol: IpProtocol::Tcp,
            local: SocketAddrV4::new(IP_US, 4000),
            remote: SocketAddrV4::new(IP_PEER, 80),
            tcp_seq: Some(TcpSeqNumber(0x0102_0304)),
        }
    );
}

#[test]
fn test_gratuitous_arp_announces_each_address() {
    let i = us();
    let mut tx = Vec::new();
    i.announce(&mut tx);
    assert_eq!(tx.len(), 1);
    let r = arp_of(&tx[0]);
    assert_eq!((r.source_protocol_addr, r.target_protocol_addr), (IP_US, IP_US));
}

/// Move every frame from `from` to `to`'s receive queue.
fn carry(from: &mut Vec<Vec<u8>>, to: &mut VecDeque<Vec<u8>>) {
    to.extend(from.drain(..));
}

/// Two engines on a link with reordering and duplication: datagrams of every size up to 9000 bytes
/// (fragmented on the way) arrive whole, and ARP resolves itself on the way.
#[test]
fn test_two_hosts_fragment_and_reassemble_through_faults() {
    let t0 = Instant::now();
    let mut a = iface_with(MAC_PEER, IP_PEER);
    let mut b = us();
    let faults = FaultConfig { reorder: 0.2, duplicate: 0.1, seed: 11, ..Default::default() };
    let mut a_tx = FaultInjector::new(Vec::new(), faults);
    let mut b_tx: Vec<Vec<u8>> = Vec::new();
    let (mut a_rx, mut b_rx) = (VecDeque::new(), VecDeque::new());
    let mut rec = Recorder::default();
    let mut rng = crate::rand::Rng::with_seed(5);
    let mut sent = Vec::new();
    for n in 0..200u32 {
        let len = 1 + rng.below(9000) as usize;
        let data: Vec<u8> = (0..len).map(|k| (k as u32 * 13 + n) as u8).collect();
        a.send_udp(t0, SocketAddrV4::new(IP_PEER, 9000), SocketAddrV4::new(IP_US, 7), &data, &mut a_tx)
            .unwrap();
        sent.push(data);
        // Pump both ways until quiet.
        for _ in 0..4 {
            a_tx.release_held().unwrap();
            carry(a_tx.inner_mut(), &mut b_rx);
            b_rx.receive(usize::MAX, |f| b.receive(t0, f, &mut b_tx, &mut rec));
            carry(&mut b_tx, &mut a_rx);
            a_rx.receive(usize::MAX, |f| a.receive(t0, f, &mut a_tx, &mut Recorder::default()));
        }
    }
    let mut got: Vec<Vec<u8>> = rec.datagrams.into_iter().map(|d| d.3).collect();
    got.dedup();
    let mut want = sent.clone();
    got.sort();
    want.sort();
    got.dedup();
    want.dedup();
    assert_eq!(got, want);
    assert!(b.counters().ip_reasm_oks.get() > 100);
    assert!(a.counters().ip_frag_oks.get() > 100);
}

#[test]
fn test_vlan_frames_are_accepted_on_our_vlan_and_answered_tagged() {
    let mut cfg = IfaceConfig::new(MAC_US, vec![Ipv4Cidr::new(IP_US, 24).unwrap()]);
    cfg.vlan = Some(100);
    let mut i = Interface::new(cfg, Arc::new(Counters::default()), 1);
    let request = arp(ArpOperation::Request, (MAC_PEER, IP_PEER), (EthernetAddress([0; 6]), IP_US));
    let tag = |vid: u16| {
        let mut f = request[..12].to_vec();
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&vid.to_be_bytes());
        f.extend_from_slice(&request[12..]);
        f
    };
    let mut tx = Vec::new();
    i.receive(Instant::now(), &request, &mut tx, &mut Recorder::default());
    i.receive(Instant::now(), &tag(200), &mut tx, &mut Recorder::default());
    assert!(tx.is_empty());
    assert_eq!(i.counters().eth_in_wrong_vlan.get(), 2);
    i.receive(Instant::now(), &tag(100), &mut tx, &mut Recorder::default());
    assert_eq!(tx.len(), 1);
    let reply = EthernetFrame::new_checked(&tx[0][..]).unwrap();
    assert_eq!(reply.vlan_id(), Some(100));
    assert_eq!(reply.ethertype(), EtherType::Arp);
}

#[test]
fn test_raw_icmp_socket_sees_echo_request_with_header_and_the_stack_still_replies() {
    let mut i = us();
    let now = Instant::now();
    knows_peer(&mut i, now);
    let mut rec = Recorder { raw_protocols: vec![1], ..Recorder::default() };
    let mut tx = Vec::new();
    let frame = echo_request(IP_US, b"raw data");
    i.receive(now, &frame, &mut tx, &mut rec);
    assert_eq!(rec.raw.len(), 1);
    assert_eq!(rec.raw[0], frame[14..], "the whole IP datagram, header first");
    let ip = Ipv4Packet::new_checked(&rec.raw[0][..]).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr(), ip.protocol()), (IP_PEER, IP_US, IpProtocol::Icmp));
    assert_eq!(tx.len(), 1, "echo request still answered");
    // A UDP datagram is not offered to the ICMP socket.
    i.receive(now, &udp_frame(IP_PEER, IP_US, 5000, 7, b"u"), &mut tx, &mut rec);
    assert_eq!(rec.raw.len(), 1);
}

#[test]
fn test_unknown_protocol_taken_by_a_raw_socket_is_not_answered_unreachable() {
    let mut i = us();
    let now = Instant::now();
    knows_peer(&mut i, now);
    let frame = eth(MAC_US, EtherType::Ipv4, &ipv4(IP_PEER, IP_US, IpProtocol::Unknown(253), b"exp"));
    let mut rec = Recorder { raw_protocols: vec![253], ..Recorder::default() };
    let mut tx = Vec::new();
    i.receive(now, &frame, &mut tx, &mut rec);
    assert_eq!(rec.raw, vec![frame[14..].to_vec()]);
    assert!(tx.is_empty(), "no protocol unreachable");
    assert_eq!(i.counters().ip_in_delivers.get(), 1);
    assert_eq!(i.counters().ip_in_unknown_protos.get(), 0);
    // Without the raw socket: protocol unreachable, as before.
    i.receive(now, &frame, &mut tx, &mut Recorder::default());
    assert_eq!(tx.len(), 1);
    assert_eq!(i.counters().ip_in_unknown_protos.get(), 1);
}

#[test]
fn test_reassembled_datagram_reaches_raw_socket_whole() {
    let mut i = us();
    let now = Instant::now();
    let payload: Vec<u8> = (0..100u8).collect();
    let whole = ipv4(IP_PEER, IP_US, IpProtocol::Unknown(253), &payload);
    let mut rec = Recorder { raw_protocols: vec![253], ..Recorder::default() };
    let mut tx = Vec::new();
    for (off, more) in [(0usize, true), (48, false)] {
        let end = if more { off + 48 } else { payload.len() };
        let mut p = ipv4(IP_PEER, IP_US, IpProtocol::Unknown(253), &payload[off..end]);
        let mut ip = Ipv4Packet::new_unchecked(&mut p[..]);
        ip.set_flags_frag(false, more, off as u16);
        ip.fill_checksum();
        i.receive(now, &eth(MAC_US, EtherType::Ipv4, &p), &mut tx, &mut rec);
    }
    assert_eq!(rec.raw.len(), 1);
    let got = Ipv4Packet::new_checked(&rec.raw[0][..]).unwrap();
    assert_eq!(got.total_len() as usize, whole.len());
    assert!(got.verify_checksum());
    assert_eq!(got.payload(), &payload[..]);
}

#[test]
fn test_send_raw_builds_the_header_with_the_sockets_protocol() {
    let mut i = us();
    let now = Instant::now();
    knows_peer(&mut i, now);
    let mut tx = Vec::new();
    i.send_raw(now, None, IP_PEER, 253, b"experiment", &mut tx).unwrap();
    assert_eq!(tx.len(), 1);
    let ip = ip_of(&tx[0]);
    assert_eq!(
        (ip.src_addr(), ip.dst_addr(), ip.protocol(), ip.ttl()),
        (IP_US, IP_PEER, IpProtocol::Unknown(253), 64)
    );
    assert_eq!(ip.payload(), b"experiment");
    assert_eq!(i.counters().raw_out_datagrams.get(), 1);
}

#[test]
fn test_header_included_is_completed_like_linux_and_waits_for_arp() {
    let mut i = us();
    let now = Instant::now();
    // The application's header: zero checksum, zero id, zero source, a wrong total length.
    let mut d = ipv4(Ipv4Addr::UNSPECIFIED, IP_PEER, IpProtocol::Unknown(253), b"hdrincl");
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut d[..]);
        ip.set_ident(0);
        ip.set_total_len(9999);
        ip.set_ttl(7);
        ip.set_checksum(0);
    }
    let mut tx = Vec::new();
    i.send_raw_header_included(now, IP_PEER, &mut d, &mut tx).unwrap();
    assert_eq!(tx.len(), 1, "an ARP request; the datagram waits");
    assert_eq!(arp_of(&tx[0]).target_protocol_addr, IP_PEER);
    let mut tx = Vec::new();
    i.receive(
        now,
        &arp(ArpOperation::Reply, (MAC_PEER, IP_PEER), (MAC_US, IP_US)),
        &mut tx,
        &mut Recorder::default(),
    );
    assert_eq!(tx.len(), 1);
    let ip = ip_of(&tx[0]); // checks the checksum
    assert_eq!(ip.src_addr(), IP_US, "source filled in");
    assert_ne!(ip.ident(), 0, "identification filled in");
    assert_eq!(ip.total_len() as usize, 20 + 7);
    assert_eq!(ip.ttl(), 7, "the rest is the application's");
    assert_eq!(ip.payload(), b"hdrincl");

    // Bad headers are refused and counted.
    for bad in [vec![0x45u8; 10], vec![0x65u8; 28], {
        let mut v = vec![0u8; 28];
        v[0] = 0x44;
        v
    }] {
        let mut bad = bad;
        assert!(i.send_raw_header_included(now, IP_PEER, &mut bad, &mut tx).is_err());
    }
    assert_eq!(i.counters().raw_out_errors.get(), 3);
    assert_eq!(check_header(&[0x46; 20]), Err(HeaderError::Truncated), "IHL 24 in 20 bytes");
    assert_eq!(check_header(&[0x65; 20]), Err(HeaderError::BadVersion));
    assert_eq!(check_header(&[0x44; 20]), Err(HeaderError::BadHeaderLen));
    assert_eq!(check_header(&[]), Err(HeaderError::Truncated));
}

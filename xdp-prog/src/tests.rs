//! The program itself, run on crafted frames with `BPF_PROG_TEST_RUN` (needs root).
//!
//! The XSKMAP is empty here, so a frame the program steers comes back as `XDP_PASS` and counts
//! `no_socket`: that is how "steered" is observed. A frame passed on purpose counts only `passed`,
//! a malformed one `malformed` and `passed`. (The redirect itself, with a real AF_XDP socket, is
//! covered by `stack/tests/xdp_steering.rs`.) BPF_PROG_TEST_RUN refuses frames shorter than an
//! Ethernet header, so truncation is tested from 14 bytes on.

use std::net::Ipv4Addr;

use crate::{AddrKind, Error, L4Proto, SteerConfig, SteerCounters, Steering, XdpAction};

pub(super) const PEER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
pub(super) const STACK: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
pub(super) const OTHER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 3);
const BCAST: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 255);
const ALL_ONES: Ipv4Addr = Ipv4Addr::BROADCAST;

pub(super) const ETH_IPV4: u16 = 0x0800;
pub(super) const ETH_ARP: u16 = 0x0806;
pub(super) const ETH_IPV6: u16 = 0x86dd;
pub(super) const ICMP: u8 = 1;
pub(super) const TCP: u8 = 6;
pub(super) const UDP: u8 = 17;
const GRE: u8 = 47;
const MF: u16 = 0x2000;

/// Listed ports: UDP 7 and TCP 80.
pub(super) const UDP_LISTED: u16 = 7;
pub(super) const TCP_LISTED: u16 = 80;
pub(super) const UNLISTED: u16 = 9;

// ---- frame builders (checksums are not looked at by the program) ----

pub(super) fn eth(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub(super) fn vlan(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut tagged = vec![0x00, 0x05]; // VLAN 5
    tagged.extend_from_slice(&ether_type.to_be_bytes());
    tagged.extend_from_slice(payload);
    eth(0x8100, &tagged)
}

pub(super) fn arp(htype: u16, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut a = Vec::with_capacity(28);
    a.extend_from_slice(&htype.to_be_bytes());
    a.extend_from_slice(&ETH_IPV4.to_be_bytes());
    a.extend_from_slice(&[6, 4, 0, 1]); // hlen, plen, request
    a.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    a.extend_from_slice(&sender.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target.octets());
    a
}

/// An IPv4 header (IHL 5 plus `options`, which must be a multiple of 4 bytes) and payload.
pub(super) fn ipv4_with(
    proto: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    frag: u16,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let ihl = 5 + options.len() / 4;
    let total = (ihl * 4 + payload.len()) as u16;
    let mut p = vec![0x40 | ihl as u8, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34]);
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(options);
    p.extend_from_slice(payload);
    p
}

pub(super) fn ipv4(proto: u8, src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    ipv4_with(proto, src, dst, 0, &[], payload)
}

pub(super) fn udp(src_port: u16, dst_port: u16) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&src_port.to_be_bytes());
    u.extend_from_slice(&dst_port.to_be_bytes());
    u.extend_from_slice(&[0, 12, 0, 0, b'p', b'i', b'n', b'g']);
    u
}

pub(super) fn tcp(src_port: u16, dst_port: u16) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&src_port.to_be_bytes());
    t.extend_from_slice(&dst_port.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]); // SYN
    t
}

pub(super) fn icmp(icmp_type: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![icmp_type, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(body);
    m
}

/// An ICMP error from PEER quoting a datagram the stack sent (RFC 792: IP header + 8 bytes).
fn icmp_error(icmp_type: u8, quoted_proto: u8, src_port: u16, dst_port: u16) -> Vec<u8> {
    let l4 = if quoted_proto == TCP { tcp(src_port, dst_port) } else { udp(src_port, dst_port) };
    let quoted = ipv4(quoted_proto, STACK, PEER, &l4[..8]);
    eth(ETH_IPV4, &ipv4(ICMP, PEER, STACK, &icmp(icmp_type, &quoted)))
}

pub(super) fn udp_frame(dst: Ipv4Addr, dst_port: u16) -> Vec<u8> {
    eth(ETH_IPV4, &ipv4(UDP, PEER, dst, &udp(40000, dst_port)))
}

pub(super) fn tcp_frame(dst: Ipv4Addr, dst_port: u16) -> Vec<u8> {
    eth(ETH_IPV4, &ipv4(TCP, PEER, dst, &tcp(40000, dst_port)))
}

// ---- harness ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    /// Chosen for the stack (with an empty XSKMAP: passed and counted `no_socket`).
    Steer,
    /// Passed to the kernel on purpose.
    Pass,
    /// Passed and counted `malformed`.
    Malformed,
}

/// A loaded program knowing STACK (unicast), BCAST and 255.255.255.255 (broadcast), UDP 7, TCP 80.
pub(super) fn steering(port_filter: bool) -> Steering {
    let s = Steering::load().expect("load the XDP program (tests run as root)");
    s.set_config(&SteerConfig { port_filter, socks_per_queue: 1 }).unwrap();
    s.add_addr(STACK, AddrKind::Unicast).unwrap();
    s.add_addr(BCAST, AddrKind::Broadcast).unwrap();
    s.add_addr(ALL_ONES, AddrKind::Broadcast).unwrap();
    s.add_port(L4Proto::Udp, UDP_LISTED).unwrap();
    s.add_port(L4Proto::Tcp, TCP_LISTED).unwrap();
    s
}

#[track_caller]
pub(super) fn check(s: &Steering, what: &str, frame: &[u8], expect: Expect) {
    let before = s.counters().unwrap();
    let action = s.test_run(frame).unwrap();
    let delta = s.counters().unwrap().since(&before);
    assert_eq!(action, XdpAction::Pass, "{what}: action");
    let want = SteerCounters {
        steered: 0,
        passed: 1,
        malformed: u64::from(expect == Expect::Malformed),
        no_socket: u64::from(expect == Expect::Steer),
        dropped: 0,
    };
    assert_eq!(delta, want, "{what}: expected {expect:?}");
}

// ---- Ethernet ----

#[test]
fn ethernet_other_ether_types_pass() {
    let s = steering(false);
    check(&s, "IPv6", &eth(ETH_IPV6, &[0x60; 40]), Expect::Pass);
    check(&s, "bare Ethernet header", &eth(ETH_IPV4, &[])[..14], Expect::Malformed);
}

#[test]
fn vlan_tagged_frames_are_parsed() {
    let s = steering(false);
    let ip = ipv4(UDP, PEER, STACK, &udp(40000, UNLISTED));
    check(&s, "tagged UDP to stack", &vlan(ETH_IPV4, &ip), Expect::Steer);
    let ip = ipv4(UDP, PEER, OTHER, &udp(40000, UNLISTED));
    check(&s, "tagged UDP to other", &vlan(ETH_IPV4, &ip), Expect::Pass);
    check(&s, "tagged ARP for stack", &vlan(ETH_ARP, &arp(1, PEER, STACK)), Expect::Steer);
    let tagged = vlan(ETH_IPV4, &ip);
    check(&s, "truncated 802.1Q tag", &tagged[..16], Expect::Malformed);
}

// ---- ARP ----

#[test]
fn arp_for_the_stack_is_steered_when_it_owns_the_address() {
    let s = steering(false);
    check(&s, "ARP for stack", &eth(ETH_ARP, &arp(1, PEER, STACK)), Expect::Steer);
    check(&s, "ARP for other", &eth(ETH_ARP, &arp(1, PEER, OTHER)), Expect::Pass);
    check(&s, "ARP for broadcast addr", &eth(ETH_ARP, &arp(1, PEER, BCAST)), Expect::Pass);
    check(&s, "ARP, not Ethernet", &eth(ETH_ARP, &arp(6, PEER, STACK)), Expect::Pass);
    let truncated = eth(ETH_ARP, &arp(1, PEER, STACK));
    check(&s, "ARP, 27 bytes", &truncated[..14 + 27], Expect::Malformed);
}

#[test]
fn arp_goes_to_the_kernel_in_port_filter_mode() {
    let s = steering(true);
    check(&s, "ARP for stack", &eth(ETH_ARP, &arp(1, PEER, STACK)), Expect::Pass);
}

// ---- IPv4 header checks ----

#[test]
fn bad_ipv4_headers_are_malformed() {
    let s = steering(false);
    let good = udp_frame(STACK, UNLISTED);
    check(&s, "good", &good, Expect::Steer);
    check(&s, "IPv4 header cut", &good[..14 + 19], Expect::Malformed);
    let mut v6 = good.clone();
    v6[14] = 0x65;
    check(&s, "version 6 under EtherType IPv4", &v6, Expect::Malformed);
    let mut ihl4 = good.clone();
    ihl4[14] = 0x44;
    check(&s, "IHL 4", &ihl4, Expect::Malformed);
    let mut ihl15 = good.clone();
    ihl15[14] = 0x4f; // a 60-byte header where the frame holds 20 + 12
    check(&s, "IHL beyond the frame", &ihl15, Expect::Malformed);
    // The address is checked before the ports, so a cut UDP header to someone else just passes.
    let other = udp_frame(OTHER, UNLISTED);
    check(&s, "UDP header cut, to other", &other[..14 + 20 + 4], Expect::Pass);
    check(&s, "UDP header cut, to stack", &good[..14 + 20 + 7], Expect::Malformed);
    let syn = tcp_frame(STACK, TCP_LISTED);
    check(&s, "TCP header cut, to stack", &syn[..14 + 20 + 19], Expect::Malformed);
}

#[test]
fn ipv4_options_are_skipped() {
    let s = steering(true);
    let opts = [1u8, 1, 1, 0]; // NOP NOP NOP EOL
    let ip = ipv4_with(UDP, PEER, STACK, 0, &opts, &udp(40000, UDP_LISTED));
    check(&s, "IHL 6, listed port", &eth(ETH_IPV4, &ip), Expect::Steer);
    let ip = ipv4_with(UDP, PEER, STACK, 0, &opts, &udp(40000, UNLISTED));
    check(&s, "IHL 6, unlisted port", &eth(ETH_IPV4, &ip), Expect::Pass);
}

// ---- the stack owns its address (port filter off) ----

#[test]
fn owned_address_takes_everything() {
    let s = steering(false);
    check(&s, "UDP unlisted", &udp_frame(STACK, UNLISTED), Expect::Steer);
    check(&s, "TCP unlisted", &tcp_frame(STACK, UNLISTED), Expect::Steer);
    let echo = eth(ETH_IPV4, &ipv4(ICMP, PEER, STACK, &icmp(8, b"abcd")));
    check(&s, "ICMP echo", &echo, Expect::Steer);
    let gre = eth(ETH_IPV4, &ipv4(GRE, PEER, STACK, &[0; 8]));
    check(&s, "GRE", &gre, Expect::Steer);
    let later = ipv4_with(UDP, PEER, STACK, 185, &[], &[0; 8]);
    check(&s, "later fragment", &eth(ETH_IPV4, &later), Expect::Steer);
    let first = ipv4_with(UDP, PEER, STACK, MF, &[], &udp(40000, UNLISTED));
    check(&s, "first fragment", &eth(ETH_IPV4, &first), Expect::Steer);
    check(&s, "UDP to other", &udp_frame(OTHER, UDP_LISTED), Expect::Pass);
    check(&s, "UDP to peer", &udp_frame(PEER, UDP_LISTED), Expect::Pass);
}

#[test]
fn stamp_mode_puts_the_time_in_front_of_steered_frames_only() {
    let now = || {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // Safety: a valid clock id and a live timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    };
    let s = steering(false);
    let frame = udp_frame(STACK, UNLISTED);
    let (_, out) = s.test_run_output(&frame).unwrap();
    assert_eq!(out, frame, "no stamp while the mode is off");
    s.set_stamp(true).unwrap();
    let before = now();
    let (_, out) = s.test_run_output(&frame).unwrap();
    let after = now();
    assert_eq!(out.len(), frame.len() + crate::STAMP_LEN);
    assert_eq!(&out[crate::STAMP_LEN..], &frame[..]);
    let stamp = u64::from_ne_bytes(out[..8].try_into().unwrap());
    assert!(before <= stamp && stamp <= after, "{before} <= {stamp} <= {after}");
    let (_, out) = s.test_run_output(&udp_frame(OTHER, UDP_LISTED)).unwrap();
    assert_eq!(out.len(), frame.len(), "frames for the kernel are not stamped");
    s.set_stamp(false).unwrap();
    assert_eq!(s.test_run_output(&frame).unwrap().1, frame);
}

#[test]
fn removed_address_and_port_pass() {
    let s = steering(true);
    check(&s, "listed", &udp_frame(STACK, UDP_LISTED), Expect::Steer);
    s.remove_port(L4Proto::Udp, UDP_LISTED).unwrap();
    check(&s, "port removed", &udp_frame(STACK, UDP_LISTED), Expect::Pass);
    s.remove_port(L4Proto::Udp, UDP_LISTED).unwrap(); // absent: not an error
    s.set_config(&SteerConfig { port_filter: false, socks_per_queue: 1 }).unwrap();
    check(&s, "filter off", &udp_frame(STACK, UDP_LISTED), Expect::Steer);
    s.remove_addr(STACK).unwrap();
    check(&s, "address removed", &udp_frame(STACK, UDP_LISTED), Expect::Pass);
    s.remove_addr(STACK).unwrap();
}

// ---- port filter on ----

#[test]
fn port_filter_steers_listed_ports_only() {
    let s = steering(true);
    check(&s, "UDP listed", &udp_frame(STACK, UDP_LISTED), Expect::Steer);
    check(&s, "UDP unlisted", &udp_frame(STACK, UNLISTED), Expect::Pass);
    check(&s, "TCP listed", &tcp_frame(STACK, TCP_LISTED), Expect::Steer);
    check(&s, "TCP to a UDP-only port", &tcp_frame(STACK, UDP_LISTED), Expect::Pass);
    check(&s, "UDP to a TCP-only port", &udp_frame(STACK, TCP_LISTED), Expect::Pass);
    let first = ipv4_with(UDP, PEER, STACK, MF, &[], &udp(40000, UDP_LISTED));
    check(&s, "first fragment, listed", &eth(ETH_IPV4, &first), Expect::Pass);
    let later = ipv4_with(UDP, PEER, STACK, 185, &[], &[0; 8]);
    check(&s, "later fragment", &eth(ETH_IPV4, &later), Expect::Pass);
    let echo = eth(ETH_IPV4, &ipv4(ICMP, PEER, STACK, &icmp(8, b"abcd")));
    check(&s, "ICMP echo", &echo, Expect::Pass);
    let gre = eth(ETH_IPV4, &ipv4(GRE, PEER, STACK, &[0; 8]));
    check(&s, "GRE", &gre, Expect::Pass);
}

#[test]
fn port_filter_steers_icmp_errors_about_listed_source_ports() {
    let s = steering(true);
    let unreach = icmp_error(3, UDP, UDP_LISTED, 5000);
    check(&s, "unreachable, UDP from 7", &unreach, Expect::Steer);
    let exceeded = icmp_error(11, TCP, TCP_LISTED, 5000);
    check(&s, "time exceeded, TCP from 80", &exceeded, Expect::Steer);
    let problem = icmp_error(12, UDP, UDP_LISTED, 5000);
    check(&s, "parameter problem, UDP from 7", &problem, Expect::Steer);
    let unlisted = icmp_error(3, UDP, UNLISTED, UDP_LISTED);
    check(&s, "unreachable, UDP to 7 from 9", &unlisted, Expect::Pass);
    let wrong_proto = icmp_error(3, TCP, UDP_LISTED, 5000);
    check(&s, "unreachable, TCP from 7", &wrong_proto, Expect::Pass);
    let redirect = icmp_error(5, UDP, UDP_LISTED, 5000);
    check(&s, "redirect is not an error we take", &redirect, Expect::Pass);
    let reply = eth(ETH_IPV4, &ipv4(ICMP, PEER, STACK, &icmp(0, b"abcd")));
    check(&s, "echo reply", &reply, Expect::Pass);

    let cut = icmp_error(3, UDP, UDP_LISTED, 5000);
    check(&s, "quoted ports cut", &cut[..cut.len() - 6], Expect::Malformed);
    check(&s, "quoted IPv4 header cut", &cut[..14 + 20 + 8 + 10], Expect::Malformed);
    check(&s, "ICMP header cut", &cut[..14 + 20 + 6], Expect::Malformed);
    let quoted = ipv4_with(UDP, STACK, PEER, 185, &[], &udp(UDP_LISTED, 5000)[..8]);
    let later = eth(ETH_IPV4, &ipv4(ICMP, PEER, STACK, &icmp(3, &quoted)));
    check(&s, "quoting a later fragment", &later, Expect::Pass);
}

// ---- broadcast ----

#[test]
fn broadcast_takes_udp_to_listed_ports() {
    for port_filter in [false, true] {
        let s = steering(port_filter);
        check(&s, "UDP listed", &udp_frame(BCAST, UDP_LISTED), Expect::Steer);
        check(&s, "UDP listed, all-ones", &udp_frame(ALL_ONES, UDP_LISTED), Expect::Steer);
        check(&s, "UDP unlisted", &udp_frame(BCAST, UNLISTED), Expect::Pass);
        check(&s, "TCP listed", &tcp_frame(BCAST, TCP_LISTED), Expect::Pass);
        let first = ipv4_with(UDP, PEER, BCAST, MF, &[], &udp(40000, UDP_LISTED));
        check(&s, "fragment", &eth(ETH_IPV4, &first), Expect::Pass);
        let echo = eth(ETH_IPV4, &ipv4(ICMP, PEER, BCAST, &icmp(8, b"abcd")));
        check(&s, "ICMP echo", &echo, Expect::Pass);
    }
}

// ---- API checks ----

#[test]
fn out_of_range_arguments_are_refused() {
    let s = Steering::load().unwrap();
    let too_many = SteerConfig { port_filter: false, socks_per_queue: crate::XSKMAP_SIZE + 1 };
    assert!(matches!(s.set_config(&too_many), Err(Error::InvalidArgument(_))));
    assert!(matches!(s.clear_socket(crate::XSKMAP_SIZE), Err(Error::InvalidArgument(_))));
    assert!(matches!(crate::attached_program_id(u32::MAX), Err(Error::NoSuchInterface { .. })));
    let err = s.attach(u32::MAX, crate::XdpMode::Generic).unwrap_err();
    assert!(matches!(err, Error::NoSuchInterface { ifindex: u32::MAX }), "{err}");
}

#[test]
fn steering_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Steering>();
    assert_send_sync::<crate::XdpLink>();
}

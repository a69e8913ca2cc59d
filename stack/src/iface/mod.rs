//! The host engine below TCP: Ethernet II, ARP (RFC 826), IPv4 (RFC 791, RFC 1122) with reassembly
//! (RFC 815) and fragmentation, ICMP (RFC 792) and UDP (RFC 768).
//!
//! The engine is sans-IO: it never reads a clock and never touches a ring. The worker drives it:
//!
//! 1. [`Interface::receive`] for each received frame, with `now`, somewhere to transmit replies
//!    ([`TxDevice`]) and the sockets ([`Endpoints`]) that datagrams and ICMP errors are handed to;
//! 2. [`Interface::send_udp`] for each datagram an application sends ([`Interface::send_raw`] and
//!    [`Interface::send_raw_header_included`] for raw sockets);
//! 3. [`Interface::poll`] whenever `now` reaches [`Interface::poll_at`] (ARP retries and expiry,
//!    reassembly timeouts);
//! 4. [`Interface::take_learned`] to share newly learned neighbours with the other workers, and
//!    [`Interface::learn`] to apply what they learned.
//!
//! Nothing here panics on input: every malformed or unexpected frame is dropped and counted in
//! [`Counters`] under its own name.

mod arp;
mod icmp;
mod ipv4;
mod raw;
mod reasm;
mod tcp;
pub mod udp;

#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use arp::ArpConfig;
pub use raw::{check_header, HeaderError, RawInput};
pub use reasm::ReasmConfig;

use crate::counters::Counters;
use crate::phy::TxDevice;
use crate::wire::{EtherType, EthernetAddress, EthernetFrame, IpProtocol, Ipv4Cidr, TcpSeqNumber};

/// Static configuration of one interface.
#[derive(Debug, Clone)]
pub struct IfaceConfig {
    /// Our MAC address (the interface's).
    pub mac: EthernetAddress,
    /// Our IPv4 addresses with their prefixes.
    pub addrs: Vec<Ipv4Cidr>,
    /// Next hop for destinations outside every prefix.
    pub gateway: Option<Ipv4Addr>,
    /// IP MTU (bytes of IP header + payload per frame).
    pub mtu: usize,
    /// 802.1Q VLAN to tag frames with and accept frames from (None: untagged only).
    pub vlan: Option<u16>,
    /// Shared-address mode: the kernel owns the address too, and with it ARP and ICMP echo. The stack
    /// learns neighbours from the frames it receives instead of answering ARP.
    pub shared_address: bool,
    /// TTL of datagrams we originate.
    pub ttl: u8,
    /// ARP timings and limits.
    pub arp: ArpConfig,
    /// Reassembly limits.
    pub reasm: ReasmConfig,
    /// ICMP error rate limit: tokens per second.
    pub icmp_rate_per_sec: u32,
    /// ICMP error rate limit: burst size.
    pub icmp_burst: u32,
}

impl IfaceConfig {
    /// Defaults for everything but the addresses.
    pub fn new(mac: EthernetAddress, addrs: Vec<Ipv4Cidr>) -> Self {
        IfaceConfig {
            mac,
            addrs,
            gateway: None,
            mtu: 1500,
            vlan: None,
            shared_address: false,
            ttl: 64,
            arp: ArpConfig::default(),
            reasm: ReasmConfig::default(),
            // Linux: net.ipv4.icmp_msgs_per_sec = 1000, icmp_msgs_burst = 50.
            icmp_rate_per_sec: 1000,
            icmp_burst: 50,
        }
    }
}

/// What an [`Endpoints`] implementation did with a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// A socket took it.
    Delivered,
    /// No socket is bound to the destination.
    NoSocket,
    /// A socket is bound but its receive queue is full.
    QueueFull,
}

/// A UDP datagram on its way up.
#[derive(Debug)]
pub struct UdpInput<'a> {
    /// Sender.
    pub src: SocketAddrV4,
    /// Destination (one of our addresses, or a broadcast address).
    pub dst: SocketAddrV4,
    /// True when sent to a broadcast address.
    pub broadcast: bool,
    /// The payload.
    pub payload: &'a [u8],
}

/// A TCP segment on its way up (checksum verified, options parsed).
#[derive(Debug)]
pub struct TcpInput<'a> {
    /// Sender.
    pub src: SocketAddrV4,
    /// Destination (one of our addresses).
    pub dst: SocketAddrV4,
    /// Header and options.
    pub repr: crate::wire::TcpRepr,
    /// The payload.
    pub payload: &'a [u8],
}

/// The kind of an ICMP error, as the socket API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpErrorKind {
    /// Destination unreachable: port (ECONNREFUSED).
    PortUnreachable,
    /// Destination unreachable: host, net or other (EHOSTUNREACH).
    HostUnreachable,
    /// Destination unreachable: protocol (ENOPROTOOPT in Linux; reported as refused here).
    ProtocolUnreachable,
    /// Fragmentation needed with this next-hop MTU (EMSGSIZE).
    FragNeeded(u16),
    /// Time exceeded in transit or reassembly.
    TimeExceeded,
    /// Parameter problem.
    ParameterProblem,
}

/// An ICMP error about a datagram we sent, identified by the flow it concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError {
    /// What went wrong.
    pub kind: IcmpErrorKind,
    /// Protocol of the datagram that caused it.
    pub protocol: IpProtocol,
    /// Our end of that datagram.
    pub local: SocketAddrV4,
    /// The far end of that datagram.
    pub remote: SocketAddrV4,
    /// For TCP, the sequence number of the quoted segment: TCP acts on the error only if it lies in
    /// its send window (RFC 5927 §4.1). None for other protocols.
    pub tcp_seq: Option<TcpSeqNumber>,
}

/// The sockets, as the engine sees them.
pub trait Endpoints {
    /// Hand a UDP datagram to the socket bound to its destination.
    fn udp(&mut self, now: Instant, dgram: UdpInput<'_>) -> Delivery;
    /// Hand an ICMP error to the socket whose flow it concerns (if any).
    fn icmp_error(&mut self, now: Instant, err: IcmpError);
    /// Hand a TCP segment to its connection or listener (or answer it with a reset).
    fn tcp(&mut self, now: Instant, seg: TcpInput<'_>);
    /// Offer a copy of a datagram to the raw sockets of its protocol, before its protocol handler
    /// sees it; true when at least one raw socket took it. The default: there are no raw sockets.
    fn raw(&mut self, _now: Instant, _datagram: RawInput<'_>) -> bool {
        false
    }
}

/// Why a datagram could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// No prefix contains the destination and there is no gateway.
    NoRoute,
    /// Larger than an IPv4 datagram can be.
    TooLong,
    /// The source address is not one of ours.
    BadSource,
    /// The destination is a broadcast address (the socket did not allow it) or is unusable.
    BadDestination,
    /// The TX ring or frame pool had no room.
    TxFull,
}

/// The engine's state for one interface of one worker.
#[derive(Debug)]
pub struct Interface {
    config: IfaceConfig,
    counters: Arc<Counters>,
    arp: arp::ArpCache,
    reasm: reasm::Reassembler,
    icmp_limit: icmp::TokenBucket,
    next_ident: u16,
    /// Neighbours learned since the last [`Interface::take_learned`].
    learned: Vec<(Ipv4Addr, EthernetAddress)>,
    /// Shared-address mode: next hops to resolve through the kernel.
    kernel_resolve: Vec<Ipv4Addr>,
    /// Reused buffer for datagrams that must be built before they can be sent (fragmentation, ARP queue).
    scratch: Vec<u8>,
}

/// Room for an Ethernet header with one VLAN tag.
const MAX_ETH_HEADER: usize = 18;

impl Interface {
    /// A new interface engine. `ident_seed` randomizes the IPv4 identification sequence.
    pub fn new(config: IfaceConfig, counters: Arc<Counters>, ident_seed: u16) -> Interface {
        Interface {
            arp: arp::ArpCache::new(config.arp.clone()),
            reasm: reasm::Reassembler::new(config.reasm.clone()),
            icmp_limit: icmp::TokenBucket::new(config.icmp_rate_per_sec, config.icmp_burst),
            next_ident: ident_seed,
            learned: Vec::new(),
            kernel_resolve: Vec::new(),
            scratch: Vec::new(),
            config,
            counters,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &IfaceConfig {
        &self.config
    }

    /// The counters this engine writes.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Largest frame this interface sends.
    pub fn max_frame_len(&self) -> usize {
        self.config.mtu + MAX_ETH_HEADER
    }

    /// Process one received Ethernet frame.
    pub fn receive<T: TxDevice, E: Endpoints>(&mut self, now: Instant, frame: &[u8], tx: &mut T, ep: &mut E) {
        let c = &self.counters;
        c.eth_in_frames.inc();
        let eth = match EthernetFrame::new_checked(frame) {
            Ok(eth) => eth,
            Err(_) => return c.eth_in_truncated.inc(),
        };
        if eth.vlan_id() != self.config.vlan {
            return c.eth_in_wrong_vlan.inc();
        }
        let dst = eth.dst_addr();
        if dst != self.config.mac && !dst.is_broadcast() {
            return c.eth_in_not_for_us.inc();
        }
        match eth.ethertype() {
            EtherType::Arp => self.process_arp(now, eth.payload(), tx),
            EtherType::Ipv4 => self.process_ipv4(now, eth.src_addr(), eth.payload(), tx, ep),
            _ => c.eth_in_unknown_type.inc(),
        }
    }

    /// Run the timers that are due. Call when `now >= poll_at()`.
    pub fn poll<T: TxDevice>(&mut self, now: Instant, tx: &mut T) {
        self.poll_arp(now, tx);
        self.reasm.expire(now, &self.counters);
    }

    /// When [`Interface::poll`] next has something to do.
    pub fn poll_at(&self) -> Option<Instant> {
        [self.arp.poll_at(), self.reasm.poll_at()].into_iter().flatten().min()
    }

    /// Neighbours learned from the wire since the last call (to share with other workers).
    pub fn take_learned(&mut self) -> impl Iterator<Item = (Ipv4Addr, EthernetAddress)> + '_ {
        self.learned.drain(..)
    }

    /// Is `addr` one of our unicast addresses?
    pub fn has_addr(&self, addr: Ipv4Addr) -> bool {
        self.config.addrs.iter().any(|c| c.address() == addr)
    }

    /// Is `addr` a broadcast address for us (limited, or directed to one of our prefixes)?
    pub fn is_broadcast(&self, addr: Ipv4Addr) -> bool {
        addr == Ipv4Addr::BROADCAST || self.config.addrs.iter().any(|c| c.broadcast() == Some(addr))
    }

    /// Ethernet header for a frame to `dst` carrying `ethertype`; returns its length.
    fn emit_eth(&self, buf: &mut [u8], dst: EthernetAddress, ethertype: EtherType) -> usize {
        let repr = crate::wire::EthernetRepr { src: self.config.mac, dst, ethertype, vlan: self.config.vlan };
        let len = repr.header_len();
        repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..len]));
        len
    }

    fn alloc_ident(&mut self) -> u16 {
        self.next_ident = self.next_ident.wrapping_add(1);
        self.next_ident
    }
}

/// The default lifetime of a learned neighbour before it must be confirmed again.
pub const DEFAULT_NEIGHBOR_REACHABLE: Duration = Duration::from_secs(60);

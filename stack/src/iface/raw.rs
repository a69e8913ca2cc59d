//! Raw IP: the engine's half of raw sockets (the Berkeley model's third socket type, `SOCK_RAW`).
//!
//! Input: every IPv4 datagram addressed to us is offered to [`Endpoints::raw`] with its header (the
//! rebuilt one after reassembly) before the protocol's own handler runs, as Linux's
//! `raw_local_deliver` does: a raw ICMP socket sees echo requests the engine still answers, and the
//! echo replies and errors nobody else consumes. A datagram for a protocol the engine does not speak
//! that a raw socket took is delivered, not answered with protocol unreachable.
//!
//! Output: [`Interface::send_raw`] wraps a payload in an IPv4 header the engine builds (the socket's
//! protocol, our TTL and identification), and [`Interface::send_raw_header_included`] sends a
//! datagram whose header the application wrote (`IP_HDRINCL`), completed as Linux's
//! `raw_send_hdrinc` does: total length and checksum always set, identification and source filled in
//! when zero. Both take the usual route and next-hop path (ARP, queueing while resolving).

use std::net::Ipv4Addr;
use std::time::Instant;

use super::arp::Enqueued;
use super::ipv4::{NextHop, Outgoing};
use super::{Interface, SendError};
use crate::phy::TxDevice;
use crate::wire::{EthernetAddress, IpProtocol, Ipv4Packet};

/// An IPv4 datagram offered to the raw sockets of its protocol.
#[derive(Debug, Clone, Copy)]
pub struct RawInput<'a> {
    /// IP protocol number.
    pub protocol: u8,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address (ours, or a broadcast address).
    pub dst: Ipv4Addr,
    /// The IPv4 header as received (options included), or rebuilt after reassembly.
    pub header: &'a [u8],
    /// The payload after the header.
    pub payload: &'a [u8],
}

/// Why an application-built IPv4 header (`IP_HDRINCL`) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// Shorter than 20 bytes, or than the header length field says.
    Truncated,
    /// The version field is not 4.
    BadVersion,
    /// The header length field is below 5 words.
    BadHeaderLen,
}

impl HeaderError {
    /// What is wrong, for the application's error message.
    pub fn describe(self) -> &'static str {
        match self {
            HeaderError::Truncated => "IP_HDRINCL datagram is shorter than its IPv4 header",
            HeaderError::BadVersion => "IP_HDRINCL header must have version 4",
            HeaderError::BadHeaderLen => "IP_HDRINCL header length (IHL) must be at least 5",
        }
    }
}

/// Check an application-built header: version 4, IHL at least 5 and within the datagram.
pub fn check_header(datagram: &[u8]) -> Result<(), HeaderError> {
    let first = *datagram.first().ok_or(HeaderError::Truncated)?;
    if datagram.len() < crate::wire::ipv4::HEADER_LEN {
        return Err(HeaderError::Truncated);
    }
    if first >> 4 != 4 {
        return Err(HeaderError::BadVersion);
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < crate::wire::ipv4::HEADER_LEN {
        return Err(HeaderError::BadHeaderLen);
    }
    if ihl > datagram.len() {
        return Err(HeaderError::Truncated);
    }
    Ok(())
}

impl Interface {
    /// Send `payload` to `dst` in an IPv4 datagram of `protocol`, with a header the engine builds
    /// (source `src`, or the route's when None). Fragmented when larger than the MTU.
    pub fn send_raw<T: TxDevice>(
        &mut self,
        now: Instant,
        src: Option<Ipv4Addr>,
        dst: Ipv4Addr,
        protocol: u8,
        payload: &[u8],
        tx: &mut T,
    ) -> Result<(), SendError> {
        let out = Outgoing { src, dst, protocol: IpProtocol::from(protocol), payload_len: payload.len() };
        let r = self.dispatch_ip(now, out, tx, |_, buf| buf.copy_from_slice(payload));
        self.count_raw_out(r)
    }

    /// Send a datagram whose IPv4 header the application wrote, routed towards `dst` (the address
    /// given to `send_to`, as in Linux; the header's destination is sent as written). `datagram` is
    /// completed in place: total length and checksum set, identification and source filled in when
    /// zero. Never fragmented: longer than the MTU is [`SendError::TooLong`].
    pub fn send_raw_header_included<T: TxDevice>(
        &mut self,
        now: Instant,
        dst: Ipv4Addr,
        datagram: &mut [u8],
        tx: &mut T,
    ) -> Result<(), SendError> {
        let r = self.dispatch_header_included(now, dst, datagram, tx);
        self.count_raw_out(r)
    }

    fn dispatch_header_included<T: TxDevice>(
        &mut self,
        now: Instant,
        dst: Ipv4Addr,
        datagram: &mut [u8],
        tx: &mut T,
    ) -> Result<(), SendError> {
        if check_header(datagram).is_err() {
            return Err(SendError::BadDestination);
        }
        if datagram.len() > self.config.mtu {
            return Err(SendError::TooLong);
        }
        let routed = self.route(dst);
        if routed.is_err() {
            self.counters.ip_out_no_routes.inc();
        }
        let (route_src, hop) = routed?;
        let ident = self.alloc_ident();
        let len = datagram.len() as u16;
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut datagram[..]);
            // Linux raw_send_hdrinc: saddr if zero, id if zero, then tot_len and the checksum, always.
            if ip.src_addr().is_unspecified() {
                ip.set_src_addr(route_src);
            }
            if ip.ident() == 0 {
                ip.set_ident(ident);
            }
            ip.set_total_len(len);
            ip.fill_checksum();
        }
        self.counters.ip_out_requests.inc();
        let mac = match hop {
            NextHop::Broadcast => Some(EthernetAddress::BROADCAST),
            NextHop::Neighbor(ip) => self.arp.lookup(now, ip),
        };
        match (mac, hop) {
            (Some(mac), _) => self.transmit_datagram(mac, datagram, tx),
            (None, NextHop::Neighbor(ip)) => {
                match self.arp.enqueue(now, ip, datagram.to_vec()) {
                    Enqueued::NewResolution => self.request_neighbor(ip, EthernetAddress::BROADCAST, tx),
                    Enqueued::Queued => {}
                    Enqueued::DroppedOldest | Enqueued::Refused => self.counters.arp_queue_drops.inc(),
                }
                Ok(())
            }
            (None, NextHop::Broadcast) => Err(SendError::BadDestination),
        }
    }

    fn count_raw_out(&self, r: Result<(), SendError>) -> Result<(), SendError> {
        match r {
            Ok(()) => self.counters.raw_out_datagrams.inc(),
            Err(_) => self.counters.raw_out_errors.inc(),
        }
        r
    }
}

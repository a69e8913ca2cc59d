//! IPv4 (RFC 791, RFC 1122 §3): input checks, delivery to raw sockets, ICMP, UDP and TCP, routing
//! (on-link or through the gateway), output with fragmentation. A host: nothing is ever forwarded.

use std::net::Ipv4Addr;
use std::time::Instant;

use super::{arp::Enqueued, Endpoints, Interface, SendError, MAX_ETH_HEADER};
use crate::phy::TxDevice;
use crate::wire::icmp::dst_unreachable;
use crate::wire::{self, EtherType, EthernetAddress, IpProtocol, Ipv4Packet, Ipv4Repr};

/// IPv4 header length of everything we send (no options).
pub(super) const IP_HEADER_LEN: usize = 20;

/// The largest IPv4 datagram.
const MAX_DATAGRAM: usize = 65535;

/// Where a datagram goes on the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NextHop {
    /// The Ethernet broadcast address.
    Broadcast,
    /// The MAC that `ip` resolves to.
    Neighbor(Ipv4Addr),
}

/// An IPv4 datagram to send: everything but its payload.
#[derive(Debug, Clone, Copy)]
pub(super) struct Outgoing {
    /// Source address; None (or unspecified) lets the route choose.
    pub src: Option<Ipv4Addr>,
    pub dst: Ipv4Addr,
    pub protocol: IpProtocol,
    pub payload_len: usize,
}

/// What the transport layer needs to know about the datagram that carried it.
#[derive(Debug, Clone, Copy)]
pub(super) struct IpMeta<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub broadcast: bool,
    /// The datagram's IPv4 header as received (or rebuilt after reassembly), for ICMP errors.
    pub header: &'a [u8],
}

impl Interface {
    pub(super) fn process_ipv4<T: TxDevice, E: Endpoints>(
        &mut self,
        now: Instant,
        src_mac: EthernetAddress,
        frame_payload: &[u8],
        tx: &mut T,
        ep: &mut E,
    ) {
        self.counters.ip_in_receives.inc();
        let pkt = match Ipv4Packet::new_checked(frame_payload) {
            Ok(p) => p,
            Err(e) => return self.count_header_error(e),
        };
        if !pkt.verify_checksum() {
            return self.count_header_error(wire::Error::BadChecksum);
        }
        let (src, dst) = (pkt.src_addr(), pkt.dst_addr());
        // RFC 1122 §3.2.1.3: silently discard a datagram whose source is broadcast or multicast.
        if src.is_broadcast() || src.is_multicast() || self.is_broadcast(src) {
            self.counters.ip_in_hdr_errors.inc();
            return self.counters.ip_in_bad_src.inc();
        }
        let broadcast = self.is_broadcast(dst);
        if !broadcast && !self.has_addr(dst) {
            return self.counters.ip_in_addr_errors.inc();
        }
        // RFC 1122 §3.2.1.7 says a host must not discard a datagram for a low TTL, so TTL is not checked
        // on input. In shared-address mode the kernel owns ARP; learn on-link senders from their frames.
        if self.config.shared_address
            && src_mac.is_unicast()
            && !src.is_unspecified()
            && self.config.addrs.iter().any(|c| c.contains_addr(src))
            && !self.arp.contains(src)
        {
            self.learn_from_wire(now, src, src_mac, tx);
        }

        let protocol = pkt.protocol();
        let header_len = pkt.header_len();
        if pkt.more_frags() || pkt.frag_offset() != 0 {
            self.counters.ip_reasm_reqds.inc();
            let key = super::reasm::Key { src, dst, protocol: protocol.into(), ident: pkt.ident() };
            let offset = pkt.frag_offset() as usize;
            let Some(datagram) =
                self.reasm.add(now, key, offset, pkt.more_frags(), pkt.payload(), &self.counters)
            else {
                return;
            };
            self.counters.ip_reasm_oks.inc();
            // Rebuild a header for ICMP errors about the reassembled datagram.
            let mut header = [0u8; IP_HEADER_LEN];
            let repr = Ipv4Repr {
                src_addr: src,
                dst_addr: dst,
                protocol,
                payload_len: datagram.len(),
                ttl: pkt.ttl(),
                ident: pkt.ident(),
                dont_frag: false,
                more_frags: false,
                frag_offset: 0,
                dscp_ecn: 0,
            };
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut header[..]));
            let meta = IpMeta { src, dst, broadcast, header: &header };
            self.deliver(now, meta, protocol, &datagram, tx, ep);
            self.reasm.recycle(datagram);
        } else {
            let meta = IpMeta { src, dst, broadcast, header: &frame_payload[..header_len] };
            self.deliver(now, meta, protocol, pkt.payload(), tx, ep);
        }
    }

    fn count_header_error(&self, e: wire::Error) {
        let c = &self.counters;
        c.ip_in_hdr_errors.inc();
        match e {
            wire::Error::BadVersion => c.ip_in_bad_version.inc(),
            wire::Error::BadHeaderLen => c.ip_in_bad_header_len.inc(),
            wire::Error::BadChecksum => c.ip_in_csum_errors.inc(),
            _ => c.ip_in_bad_total_len.inc(),
        }
    }

    fn deliver<T: TxDevice, E: Endpoints>(
        &mut self,
        now: Instant,
        meta: IpMeta<'_>,
        protocol: IpProtocol,
        payload: &[u8],
        tx: &mut T,
        ep: &mut E,
    ) {
        let raw = super::RawInput {
            protocol: protocol.into(),
            src: meta.src,
            dst: meta.dst,
            header: meta.header,
            payload,
        };
        let taken_raw = ep.raw(now, raw);
        match protocol {
            IpProtocol::Icmp => {
                self.counters.ip_in_delivers.inc();
                self.process_icmp(now, meta, payload, tx, ep);
            }
            IpProtocol::Udp => {
                self.counters.ip_in_delivers.inc();
                self.process_udp(now, meta, payload, tx, ep);
            }
            IpProtocol::Tcp => {
                self.counters.ip_in_delivers.inc();
                self.process_tcp(now, meta, payload, ep);
            }
            // A raw socket of this protocol took it: delivered, nothing to answer.
            _ if taken_raw => self.counters.ip_in_delivers.inc(),
            _ => {
                self.counters.ip_in_unknown_protos.inc();
                // RFC 1122 §3.2.2.1: a host SHOULD generate Destination Unreachable, protocol.
                self.send_icmp_unreachable(now, dst_unreachable::PROTOCOL_UNREACHABLE, meta, payload, tx);
            }
        }
    }

    /// Choose the source address and the link-layer next hop for `dst`.
    pub(super) fn route(&self, dst: Ipv4Addr) -> Result<(Ipv4Addr, NextHop), SendError> {
        let first = self.config.addrs.first().ok_or(SendError::NoRoute)?.address();
        if dst.is_unspecified() || dst.is_multicast() || self.has_addr(dst) {
            return Err(SendError::BadDestination);
        }
        if dst == Ipv4Addr::BROADCAST {
            return Ok((first, NextHop::Broadcast));
        }
        for cidr in &self.config.addrs {
            if cidr.contains_addr(dst) {
                let hop =
                    if cidr.broadcast() == Some(dst) { NextHop::Broadcast } else { NextHop::Neighbor(dst) };
                return Ok((cidr.address(), hop));
            }
        }
        let gw = self.config.gateway.ok_or(SendError::NoRoute)?;
        let src = self.config.addrs.iter().find(|c| c.contains_addr(gw)).map_or(first, |c| c.address());
        Ok((src, NextHop::Neighbor(gw)))
    }

    /// Send an IPv4 datagram. `emit_payload(src, buf)` writes exactly `payload_len` bytes of payload.
    /// `src` None (or unspecified) lets the route choose. Datagrams that wait on ARP are queued; ones
    /// larger than the MTU are fragmented.
    pub(super) fn dispatch_ip<T: TxDevice, F: FnOnce(Ipv4Addr, &mut [u8])>(
        &mut self,
        now: Instant,
        out: Outgoing,
        tx: &mut T,
        emit_payload: F,
    ) -> Result<(), SendError> {
        self.dispatch(now, out, false, tx, emit_payload)
    }

    /// [`Interface::dispatch_ip`] with Don't Fragment set (TCP: its segments fit the MTU by construction).
    pub(super) fn dispatch_ip_df<T: TxDevice, F: FnOnce(Ipv4Addr, &mut [u8])>(
        &mut self,
        now: Instant,
        out: Outgoing,
        tx: &mut T,
        emit_payload: F,
    ) -> Result<(), SendError> {
        self.dispatch(now, out, true, tx, emit_payload)
    }

    fn dispatch<T: TxDevice, F: FnOnce(Ipv4Addr, &mut [u8])>(
        &mut self,
        now: Instant,
        out: Outgoing,
        dont_frag: bool,
        tx: &mut T,
        emit_payload: F,
    ) -> Result<(), SendError> {
        let Outgoing { src, dst, protocol, payload_len } = out;
        let routed = self.route(dst);
        if routed.is_err() {
            self.counters.ip_out_no_routes.inc();
        }
        let (route_src, hop) = routed?;
        let src = match src {
            Some(s) if !s.is_unspecified() => {
                if !self.has_addr(s) {
                    return Err(SendError::BadSource);
                }
                s
            }
            _ => route_src,
        };
        let total = IP_HEADER_LEN + payload_len;
        if total > MAX_DATAGRAM {
            return Err(SendError::TooLong);
        }
        let repr = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            protocol,
            payload_len,
            ttl: self.config.ttl,
            ident: self.alloc_ident(),
            dont_frag,
            more_frags: false,
            frag_offset: 0,
            dscp_ecn: 0,
        };
        self.counters.ip_out_requests.inc();
        let mac = match hop {
            NextHop::Broadcast => Some(EthernetAddress::BROADCAST),
            NextHop::Neighbor(ip) => self.arp.lookup(now, ip),
        };
        if let (Some(mac), true) = (mac, total <= self.config.mtu) {
            // Fast path: build the frame in place in the TX buffer.
            let sent = tx.transmit(MAX_ETH_HEADER + total, |buf| {
                let h = self.emit_eth(buf, mac, EtherType::Ipv4);
                repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[h..h + IP_HEADER_LEN]));
                emit_payload(src, &mut buf[h + IP_HEADER_LEN..h + total]);
                h + total
            });
            return self.count_tx(sent);
        }
        let mut datagram = std::mem::take(&mut self.scratch);
        datagram.clear();
        datagram.resize(total, 0);
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut datagram[..IP_HEADER_LEN]));
        emit_payload(src, &mut datagram[IP_HEADER_LEN..]);
        match (mac, hop) {
            (Some(mac), _) => {
                let r = self.transmit_datagram(mac, &datagram, tx);
                self.scratch = datagram;
                r
            }
            (None, NextHop::Neighbor(ip)) => {
                match self.arp.enqueue(now, ip, datagram) {
                    Enqueued::NewResolution => self.request_neighbor(ip, EthernetAddress::BROADCAST, tx),
                    Enqueued::Queued => {}
                    Enqueued::DroppedOldest | Enqueued::Refused => self.counters.arp_queue_drops.inc(),
                }
                Ok(())
            }
            // A broadcast next hop always has a MAC; this arm only satisfies the type.
            (None, NextHop::Broadcast) => Err(SendError::BadDestination),
        }
    }

    fn count_tx(&self, sent: Result<(), crate::phy::TxFull>) -> Result<(), SendError> {
        match sent {
            Ok(()) => {
                self.counters.eth_out_frames.inc();
                Ok(())
            }
            Err(_) => {
                self.counters.eth_out_dropped.inc();
                Err(SendError::TxFull)
            }
        }
    }

    /// Send a complete datagram (20-byte header + payload) to `mac`, in fragments if it exceeds the MTU.
    pub(super) fn transmit_datagram<T: TxDevice>(
        &self,
        mac: EthernetAddress,
        datagram: &[u8],
        tx: &mut T,
    ) -> Result<(), SendError> {
        let mtu = self.config.mtu;
        if datagram.len() <= mtu {
            let sent = tx.transmit(MAX_ETH_HEADER + datagram.len(), |buf| {
                let h = self.emit_eth(buf, mac, EtherType::Ipv4);
                buf[h..h + datagram.len()].copy_from_slice(datagram);
                h + datagram.len()
            });
            return self.count_tx(sent);
        }
        let header = &datagram[..IP_HEADER_LEN];
        if Ipv4Packet::new_unchecked(header).dont_frag() {
            self.counters.ip_frag_fails.inc();
            return Err(SendError::TooLong);
        }
        // RFC 791: every fragment but the last carries a multiple of 8 bytes.
        let chunk = (mtu - IP_HEADER_LEN) & !7;
        let payload = &datagram[IP_HEADER_LEN..];
        for (i, piece) in payload.chunks(chunk).enumerate() {
            let offset = i * chunk;
            let last = offset + piece.len() == payload.len();
            let len = IP_HEADER_LEN + piece.len();
            let sent = tx.transmit(MAX_ETH_HEADER + len, |buf| {
                let h = self.emit_eth(buf, mac, EtherType::Ipv4);
                buf[h..h + IP_HEADER_LEN].copy_from_slice(header);
                buf[h + IP_HEADER_LEN..h + len].copy_from_slice(piece);
                let mut ip = Ipv4Packet::new_unchecked(&mut buf[h..h + len]);
                ip.set_total_len(len as u16);
                ip.set_flags_frag(false, !last, offset as u16);
                ip.fill_checksum();
                h + len
            });
            self.count_tx(sent)?;
            self.counters.ip_frag_creates.inc();
        }
        self.counters.ip_frag_oks.inc();
        Ok(())
    }
}

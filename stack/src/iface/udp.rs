//! UDP (RFC 768, RFC 1122 §4.1): checksum verification (zero means none) and generation, delivery to
//! the bound socket, port unreachable for closed ports.

use std::net::SocketAddrV4;
use std::time::Instant;

use super::ipv4::{IpMeta, Outgoing};
use super::{Delivery, Endpoints, Interface, SendError, UdpInput};
use crate::phy::TxDevice;
use crate::wire::icmp::dst_unreachable::PORT_UNREACHABLE;
use crate::wire::{ChecksumMode, IpProtocol, UdpPacket, UdpRepr};

/// The largest UDP payload in one IPv4 datagram.
pub const MAX_UDP_PAYLOAD: usize = 65535 - 20 - 8;

impl Interface {
    pub(super) fn process_udp<T: TxDevice, E: Endpoints>(
        &mut self,
        now: Instant,
        meta: IpMeta<'_>,
        data: &[u8],
        tx: &mut T,
        ep: &mut E,
    ) {
        let c = &self.counters;
        let pkt = match UdpPacket::new_checked(data) {
            Ok(p) => p,
            Err(_) => return c.udp_in_errors.inc(),
        };
        if !pkt.verify_checksum(meta.src, meta.dst) {
            c.udp_in_errors.inc();
            return c.udp_in_csum_errors.inc();
        }
        let dgram = UdpInput {
            src: SocketAddrV4::new(meta.src, pkt.src_port()),
            dst: SocketAddrV4::new(meta.dst, pkt.dst_port()),
            broadcast: meta.broadcast,
            payload: pkt.payload(),
        };
        match ep.udp(now, dgram) {
            Delivery::Delivered => c.udp_in_datagrams.inc(),
            Delivery::QueueFull => {
                c.udp_in_errors.inc();
                c.udp_rcvbuf_errors.inc();
            }
            Delivery::NoSocket => {
                c.udp_no_ports.inc();
                self.send_icmp_unreachable(now, PORT_UNREACHABLE, meta, data, tx);
            }
        }
    }

    /// Send a UDP datagram. An unspecified source address lets the route choose.
    pub fn send_udp<T: TxDevice>(
        &mut self,
        now: Instant,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        payload: &[u8],
        tx: &mut T,
    ) -> Result<(), SendError> {
        if payload.len() > MAX_UDP_PAYLOAD {
            return Err(SendError::TooLong);
        }
        let repr = UdpRepr { src_port: src.port(), dst_port: dst.port(), payload_len: payload.len() };
        let dst_ip = *dst.ip();
        self.dispatch_ip(
            now,
            Outgoing {
                src: Some(*src.ip()),
                dst: dst_ip,
                protocol: IpProtocol::Udp,
                payload_len: repr.header_len() + payload.len(),
            },
            tx,
            |src_ip, buf| {
                // The checksum covers the payload: copy it first.
                buf[repr.header_len()..].copy_from_slice(payload);
                repr.emit(&mut UdpPacket::new_unchecked(buf), src_ip, dst_ip, ChecksumMode::Full)
            },
        )?;
        self.counters.udp_out_datagrams.inc();
        Ok(())
    }
}

//! TCP in the IPv4 layer: checksums and counters on the way in, segments out through the normal
//! IPv4 output (with DF set, as Linux does for TCP). The protocol itself lives in `crate::tcp`.

use std::net::SocketAddrV4;
use std::time::Instant;

use super::ipv4::{IpMeta, Outgoing};
use super::{Endpoints, Interface, SendError, TcpInput};
use crate::phy::TxDevice;
use crate::wire::{ChecksumMode, IpProtocol, TcpPacket, TcpRepr};

impl Interface {
    pub(super) fn process_tcp<E: Endpoints>(
        &mut self,
        now: Instant,
        meta: IpMeta<'_>,
        data: &[u8],
        ep: &mut E,
    ) {
        let c = &self.counters;
        c.tcp_in_segs.inc();
        if meta.broadcast {
            // TCP is unicast only (RFC 1122 §4.2.3.10).
            return c.tcp_in_errs.inc();
        }
        let pkt = match TcpPacket::new_checked(data) {
            Ok(p) => p,
            Err(_) => return c.tcp_in_errs.inc(),
        };
        if !pkt.verify_checksum(meta.src, meta.dst) {
            c.tcp_in_errs.inc();
            return c.tcp_in_csum_errors.inc();
        }
        let repr = match TcpRepr::parse(&pkt, meta.src, meta.dst, ChecksumMode::Ignore) {
            Ok(r) => r,
            Err(_) => return c.tcp_in_errs.inc(),
        };
        let seg = TcpInput {
            src: SocketAddrV4::new(meta.src, repr.src_port),
            dst: SocketAddrV4::new(meta.dst, repr.dst_port),
            repr,
            payload: pkt.payload(),
        };
        ep.tcp(now, seg);
    }

    /// Send one TCP segment from `local` to `remote`; `fill` writes its `repr.payload_len` bytes of
    /// payload.
    pub fn send_tcp<T: TxDevice, F: FnOnce(&mut [u8])>(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        repr: &TcpRepr,
        tx: &mut T,
        fill: F,
    ) -> Result<(), SendError> {
        let hlen = repr.header_len();
        let out = Outgoing {
            src: Some(*local.ip()),
            dst: *remote.ip(),
            protocol: IpProtocol::Tcp,
            payload_len: hlen + repr.payload_len,
        };
        let dst = *remote.ip();
        self.dispatch_ip_df(now, out, tx, |src, buf| {
            // The checksum covers the payload: write it first.
            fill(&mut buf[hlen..hlen + repr.payload_len]);
            repr.emit(
                &mut TcpPacket::new_unchecked(&mut buf[..hlen + repr.payload_len]),
                src,
                dst,
                ChecksumMode::Full,
            );
        })
    }
}

//! ICMP (RFC 792, RFC 1122 §3.2.2): echo replies, destination-unreachable errors (rate limited), and
//! received errors handed to the socket whose flow they concern.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use super::ipv4::{IpMeta, Outgoing, IP_HEADER_LEN};
use super::{Endpoints, IcmpError, IcmpErrorKind, Interface};
use crate::phy::TxDevice;
use crate::wire::icmp::{dst_unreachable, invoking_flow, invoking_tcp_seq, Icmpv4Packet, Icmpv4Repr};
use crate::wire::{ChecksumMode, IpProtocol};

/// RFC 1812 §4.3.2.3: an ICMP error carries as much of the offending datagram as fits in 576 bytes.
const MAX_ICMP_ERROR_DATAGRAM: usize = 576;
const ICMP_HEADER_LEN: usize = 8;

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    pub(crate) fn new(rate_per_sec: u32, burst: u32) -> TokenBucket {
        TokenBucket { rate: rate_per_sec as f64, burst: burst as f64, tokens: burst as f64, last: None }
    }

    /// Take a token if there is one.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// RFC 1122 §3.2.2: no ICMP error about a datagram whose source does not define a single host.
fn is_unique_host(addr: Ipv4Addr) -> bool {
    !(addr.is_unspecified()
        || addr.is_broadcast()
        || addr.is_multicast()
        || addr.is_loopback()
        || addr.octets()[0] >= 240)
}

impl Interface {
    pub(super) fn process_icmp<T: TxDevice, E: Endpoints>(
        &mut self,
        now: Instant,
        meta: IpMeta<'_>,
        data: &[u8],
        tx: &mut T,
        ep: &mut E,
    ) {
        let c = &self.counters;
        c.icmp_in_msgs.inc();
        let pkt = match Icmpv4Packet::new_checked(data) {
            Ok(p) => p,
            Err(_) => return c.icmp_in_errors.inc(),
        };
        if !pkt.verify_checksum() {
            c.icmp_in_errors.inc();
            return c.icmp_in_csum_errors.inc();
        }
        // Types we do not handle (timestamps, redirects, ...) are counted in IcmpInMsgs and ignored.
        let Ok(repr) = Icmpv4Repr::parse(&pkt, ChecksumMode::Ignore) else {
            return;
        };
        let kind = match repr {
            Icmpv4Repr::EchoRequest { ident, seq_no, data } => {
                c.icmp_in_echos.inc();
                // Linux's default (icmp_echo_ignore_broadcasts = 1): no reply to a broadcast echo.
                if meta.broadcast {
                    return;
                }
                let reply = Icmpv4Repr::EchoReply { ident, seq_no, data };
                if self.answer_icmp(now, meta, &reply, tx) {
                    self.counters.icmp_out_echo_reps.inc();
                }
                return;
            }
            Icmpv4Repr::EchoReply { .. } => return c.icmp_in_echo_reps.inc(),
            Icmpv4Repr::DstUnreachable { code, next_hop_mtu, invoking } => {
                c.icmp_in_dest_unreachs.inc();
                let kind = match code {
                    dst_unreachable::PORT_UNREACHABLE => IcmpErrorKind::PortUnreachable,
                    dst_unreachable::PROTOCOL_UNREACHABLE => IcmpErrorKind::ProtocolUnreachable,
                    dst_unreachable::FRAG_NEEDED => IcmpErrorKind::FragNeeded(next_hop_mtu),
                    _ => IcmpErrorKind::HostUnreachable,
                };
                (kind, invoking)
            }
            Icmpv4Repr::TimeExceeded { invoking, .. } => {
                c.icmp_in_time_excds.inc();
                (IcmpErrorKind::TimeExceeded, invoking)
            }
            Icmpv4Repr::ParamProblem { invoking, .. } => (IcmpErrorKind::ParameterProblem, invoking),
        };
        let (kind, invoking) = kind;
        let Ok((src, dst, protocol, src_port, dst_port)) = invoking_flow(invoking) else {
            return c.icmp_in_errors.inc();
        };
        // The offending datagram was one of ours: its source is our address.
        if !self.has_addr(src) {
            return c.icmp_in_errors.inc();
        }
        ep.icmp_error(
            now,
            IcmpError {
                kind,
                protocol,
                local: SocketAddrV4::new(src, src_port),
                remote: SocketAddrV4::new(dst, dst_port),
                tcp_seq: invoking_tcp_seq(invoking),
            },
        );
    }

    /// Destination unreachable (`code`) about the datagram described by `meta` and `payload`, under
    /// the rules of RFC 1122 §3.2.2 and the rate limit.
    pub(super) fn send_icmp_unreachable<T: TxDevice>(
        &mut self,
        now: Instant,
        code: u8,
        meta: IpMeta<'_>,
        payload: &[u8],
        tx: &mut T,
    ) {
        if meta.broadcast || !is_unique_host(meta.src) {
            return;
        }
        if !self.icmp_limit.try_take(now) {
            return self.counters.icmp_out_rate_limited.inc();
        }
        let mut invoking = [0u8; MAX_ICMP_ERROR_DATAGRAM - IP_HEADER_LEN - ICMP_HEADER_LEN];
        let hlen = meta.header.len().min(invoking.len());
        invoking[..hlen].copy_from_slice(&meta.header[..hlen]);
        let dlen = payload.len().min(invoking.len() - hlen);
        invoking[hlen..hlen + dlen].copy_from_slice(&payload[..dlen]);
        let repr = Icmpv4Repr::DstUnreachable { code, next_hop_mtu: 0, invoking: &invoking[..hlen + dlen] };
        if self.answer_icmp(now, meta, &repr, tx) {
            self.counters.icmp_out_dest_unreachs.inc();
        }
    }

    /// Send `repr` back to the source of the datagram `meta` describes, from the address it was sent
    /// to. True when it went out (counted in IcmpOutMsgs).
    fn answer_icmp<T: TxDevice>(
        &mut self,
        now: Instant,
        meta: IpMeta<'_>,
        repr: &Icmpv4Repr<'_>,
        tx: &mut T,
    ) -> bool {
        let out = Outgoing {
            src: Some(meta.dst),
            dst: meta.src,
            protocol: IpProtocol::Icmp,
            payload_len: repr.buffer_len(),
        };
        let sent = self
            .dispatch_ip(now, out, tx, |_, buf| {
                repr.emit(&mut Icmpv4Packet::new_unchecked(buf), ChecksumMode::Full)
            })
            .is_ok();
        if sent {
            self.counters.icmp_out_msgs.inc();
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn token_bucket_limits_rate_and_refills() {
        let now = Instant::now();
        let mut b = TokenBucket::new(10, 3);
        assert!((0..3).all(|_| b.try_take(now)));
        assert!(!b.try_take(now));
        assert!(b.try_take(now + Duration::from_millis(100)));
        assert!(!b.try_take(now + Duration::from_millis(100)));
        // Refill is capped at the burst.
        let later = now + Duration::from_secs(10);
        assert_eq!((0..10).filter(|_| b.try_take(later)).count(), 3);
    }

    #[test]
    fn unique_hosts() {
        assert!(is_unique_host(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(!is_unique_host(Ipv4Addr::UNSPECIFIED));
        assert!(!is_unique_host(Ipv4Addr::new(224, 0, 0, 1)));
        assert!(!is_unique_host(Ipv4Addr::new(250, 0, 0, 1)));
    }
}

//! LISTEN (RFC 9293 §3.10.7.2): SYNs become half-open connections while the SYN queue has room, and
//! stateless SYN-ACKs carrying a SYN cookie (RFC 4987 §3.6) once it is full; an ACK that matches no
//! connection is checked as a cookie. Also the resets for segments that reach no socket at all
//! (RFC 9293 §3.10.7.1).

use std::net::SocketAddrV4;
use std::time::Instant;

use super::conn::wscale_for;
use super::isn::{decode_ts_options, encode_ts_options, SynCookies};
use crate::wire::{TcpFlags, TcpRepr, TcpSeqNumber as Seq};

/// A listening socket's protocol state in one worker.
#[derive(Debug)]
pub struct Listener {
    /// The address it listens on (`0.0.0.0:port` for all addresses).
    pub local: SocketAddrV4,
    /// Half-open connections it has in this worker.
    pub syn_queue: usize,
    /// Half-open connections allowed before SYN cookies take over.
    pub syn_queue_max: usize,
    /// Receive buffer of accepted connections (sets the window scale a cookie SYN-ACK offers).
    pub rcv_buf: usize,
    /// MSS we advertise.
    pub mss: u16,
}

/// What to do with a SYN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SynVerdict {
    /// Make a half-open connection (SYN-RECEIVED).
    HalfOpen,
    /// The SYN queue is full: answer with this stateless SYN-ACK.
    Cookie(TcpRepr),
}

/// What a cookie ACK carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieConn {
    /// The peer's MSS (from the cookie's table).
    pub mss: u16,
    /// The peer's window scale, if the cookie kept it.
    pub wscale: Option<u8>,
    /// The peer asked for SACK.
    pub sack: bool,
}

/// Cookie time ticks (64 s each) since `epoch`.
pub fn cookie_tick(epoch: Instant, now: Instant) -> u32 {
    (now.saturating_duration_since(epoch).as_secs() / 64) as u32
}

impl Listener {
    /// A listener on `local`.
    pub fn new(local: SocketAddrV4, syn_queue_max: usize, rcv_buf: usize, mss: u16) -> Listener {
        Listener { local, syn_queue: 0, syn_queue_max, rcv_buf, mss }
    }

    /// A SYN arrived from `remote` for `local` (the exact address it was sent to).
    #[allow(clippy::too_many_arguments)]
    pub fn on_syn(
        &self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        syn: &TcpRepr,
        cookies: &SynCookies,
        tick: u32,
        ts_now: u32,
        window_scaling: bool,
        sack: bool,
    ) -> SynVerdict {
        if self.syn_queue < self.syn_queue_max {
            return SynVerdict::HalfOpen;
        }
        let client_mss = syn.max_seg_size.unwrap_or(super::conn::DEFAULT_MSS);
        let iss = cookies.make(tick, local, remote, syn.seq, client_mss);
        // Without timestamps nothing can carry window scale and SACK back to us: offer neither (Linux
        // does the same). With them, the options ride in the low bits of our TSval.
        let ts = syn.timestamp.map(|(tsval, _)| {
            let peer_ws = syn.window_scale.filter(|_| window_scaling);
            (encode_ts_options(ts_now, peer_ws, sack && syn.sack_permitted), tsval)
        });
        let ws = ts.is_some() && window_scaling && syn.window_scale.is_some();
        SynVerdict::Cookie(TcpRepr {
            src_port: local.port(),
            dst_port: remote.port(),
            seq: iss,
            ack: Some(syn.seq + 1),
            flags: TcpFlags::SYN,
            window_len: self.rcv_buf.min(65535) as u16,
            max_seg_size: Some(self.mss),
            window_scale: ws.then(|| wscale_for(self.rcv_buf)),
            sack_permitted: ts.is_some() && sack && syn.sack_permitted,
            sack_ranges: [None; 3],
            timestamp: ts,
            payload_len: 0,
        })
    }

    /// An ACK (without SYN or RST) arrived for `local` from `remote` and matched no connection: is it
    /// the answer to one of our cookie SYN-ACKs?
    pub fn check_cookie(
        &self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        ack: &TcpRepr,
        cookies: &SynCookies,
        tick: u32,
    ) -> Option<CookieConn> {
        let cookie = ack.ack? - 1;
        let client_isn = ack.seq - 1;
        let mss = cookies.check(tick, local, remote, client_isn, cookie)?;
        let (wscale, sack) = match ack.timestamp {
            Some((_, tsecr)) => decode_ts_options(tsecr),
            None => (None, false),
        };
        Some(CookieConn { mss, wscale, sack })
    }
}

/// RFC 9293 §3.10.7.1: the reset answering a segment that reaches no socket (None for a RST, which is
/// never answered).
pub fn reset_for(seg: &TcpRepr, payload_len: usize) -> Option<TcpRepr> {
    if seg.flags.contains(TcpFlags::RST) {
        return None;
    }
    let (seq, ack) = match seg.ack {
        // "If the ACK bit is on, <SEQ=SEG.ACK><CTL=RST>".
        Some(a) => (a, None),
        // "If the ACK bit is off, <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>".
        None => {
            let len = payload_len
                + usize::from(seg.flags.contains(TcpFlags::SYN))
                + usize::from(seg.flags.contains(TcpFlags::FIN));
            (Seq(0), Some(seg.seq + len))
        }
    };
    Some(TcpRepr::new(seg.dst_port, seg.src_port, seq, ack, TcpFlags::RST, 0))
}

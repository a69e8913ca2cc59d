//! TIME-WAIT as a small record (RFC 9293 §3.10.7.4, with RFC 7323's PAWS and RFC 6191's reuse).
//!
//! A connection in TIME-WAIT has delivered everything and sent its last ACK. For 2·MSL all it still
//! does is answer a retransmitted FIN (and anything else that arrives out of place) with that ACK,
//! and keep its 4-tuple from being taken again too early. A busy server holds one per connection it
//! closed in the last minute — tens of thousands — so the worker keeps them as this record (under a
//! hundred bytes) instead of the whole connection, as Linux does with its timewait socks.
//!
//! [`TimeWait::on_segment`] decides what a segment does to the record; the caller sends the ACK it
//! returns and keeps the deadline.

use std::time::{Duration, Instant};

use super::conn::{ts_after, ts_clock, Connection};
use super::State;
use crate::wire::{TcpFlags, TcpRepr, TcpSeqNumber as Seq};

/// At most one ACK per this long for an out-of-window pure ACK or SYN (Linux's
/// `tcp_invalid_ratelimit`): two hosts in TIME-WAIT must not ACK each other forever.
pub const OOW_ACK_INTERVAL: Duration = Duration::from_millis(500);

/// What remains of a connection in TIME-WAIT.
#[derive(Debug, Clone)]
pub struct TimeWait {
    /// Our next sequence number (everything we sent, FIN included).
    snd_nxt: Seq,
    /// The peer's next sequence number (its FIN included).
    rcv_nxt: Seq,
    /// The window field of our ACKs (already scaled).
    window: u16,
    ts_enabled: bool,
    ts_recent: u32,
    ts_offset: u32,
    /// The connection's timestamp clock starts here.
    epoch: Instant,
    /// When the last rate-limited ACK went out.
    last_oow_ack: Option<Instant>,
    /// When the 4-tuple is free again.
    pub expires: Instant,
}

/// What a segment does to a TIME-WAIT record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeWaitVerdict {
    /// Nothing to do.
    Ignore,
    /// Send this ACK (the record may have restarted its 2·MSL wait: see [`TimeWait::expires`]).
    Ack(TcpRepr),
    /// A reset at exactly RCV.NXT: the record ends now (RFC 9293).
    Close,
    /// A new SYN beyond what the record knows (RFC 6191): end the record and let the SYN open a new
    /// connection.
    Reopen,
}

impl TimeWait {
    /// The record of `conn`, which has just entered TIME-WAIT and sent everything it had to send.
    /// Its wait ends 2·MSL from `now` unless the connection's own timer says otherwise.
    pub fn from_connection(conn: &Connection, now: Instant) -> TimeWait {
        debug_assert_eq!(conn.state, State::TimeWait);
        let wnd = (conn.rcv_adv - conn.rcv_nxt).max(0) as u32;
        TimeWait {
            snd_nxt: conn.snd_max.max(conn.snd_nxt),
            rcv_nxt: conn.rcv_nxt,
            window: (wnd >> conn.rcv_wscale).min(u32::from(u16::MAX)) as u16,
            ts_enabled: conn.ts_enabled,
            ts_recent: conn.ts_recent,
            ts_offset: conn.ts_offset,
            epoch: conn.epoch,
            last_oow_ack: None,
            expires: conn.poll_timeout().unwrap_or(now + conn.config.msl * 2),
        }
    }

    /// A segment for this 4-tuple arrived (checksum verified). `twice_msl` is the wait a
    /// retransmitted FIN restarts.
    pub fn on_segment(
        &mut self,
        now: Instant,
        seg: &TcpRepr,
        payload_len: usize,
        twice_msl: Duration,
    ) -> TimeWaitVerdict {
        let (syn, rst, fin) = (
            seg.flags.contains(TcpFlags::SYN),
            seg.flags.contains(TcpFlags::RST),
            seg.flags.contains(TcpFlags::FIN),
        );
        let seg_len = payload_len + usize::from(syn) + usize::from(fin);
        // RFC 7323 §5.3 (PAWS): a timestamp older than TS.Recent marks an old duplicate.
        let paws_reject = self.ts_enabled
            && !rst
            && seg.timestamp.is_some_and(|(tsval, _)| ts_after(self.ts_recent, tsval));
        if !paws_reject {
            if seg.seq == self.rcv_nxt && (seg_len == 0 || rst) {
                // In sequence, nothing in it: a bare ACK, or a reset that ends the wait.
                self.take_ts(seg);
                return if rst { TimeWaitVerdict::Close } else { TimeWaitVerdict::Ignore };
            }
            // RFC 6191: a SYN whose sequence number (or timestamp) is beyond the old connection's
            // cannot be one of its duplicates.
            let newer_ts =
                self.ts_enabled && seg.timestamp.is_some_and(|(tsval, _)| ts_after(tsval, self.ts_recent));
            if syn && !rst && seg.ack.is_none() && (seg.seq > self.rcv_nxt || newer_ts) {
                return TimeWaitVerdict::Reopen;
            }
        }
        if rst {
            // Not exactly at RCV.NXT (or an old duplicate): ignored, as Linux does in TIME-WAIT.
            return TimeWaitVerdict::Ignore;
        }
        // Anything else is out of place: a retransmitted FIN (its ACK was lost), data, an old SYN.
        // The peer gets our last ACK again; a retransmitted FIN, or anything acknowledging, restarts
        // the wait (RFC 9293: "restart the 2 MSL timeout").
        if fin || paws_reject || seg.ack.is_some() {
            self.expires = now + twice_msl;
        }
        if !paws_reject && seg.seq <= self.rcv_nxt && self.rcv_nxt <= seg.seq + seg_len {
            self.take_ts(seg);
        }
        // Segments without data or FIN (pure ACKs, SYNs) could be one half of an ACK loop: limited.
        let limited = seg_len == 0 || syn;
        if limited {
            if self.last_oow_ack.is_some_and(|t| now.saturating_duration_since(t) < OOW_ACK_INTERVAL) {
                return TimeWaitVerdict::Ignore;
            }
            self.last_oow_ack = Some(now);
        }
        TimeWaitVerdict::Ack(self.ack(now, seg))
    }

    fn take_ts(&mut self, seg: &TcpRepr) {
        if let (true, Some((tsval, _))) = (self.ts_enabled, seg.timestamp) {
            if ts_after(tsval, self.ts_recent) {
                self.ts_recent = tsval;
            }
        }
    }

    /// Our last ACK, again, in answer to `seg`.
    fn ack(&self, now: Instant, seg: &TcpRepr) -> TcpRepr {
        let ts_now = ts_clock(self.epoch, self.ts_offset, now);
        TcpRepr {
            timestamp: self.ts_enabled.then_some((ts_now, self.ts_recent)),
            ..TcpRepr::new(
                seg.dst_port,
                seg.src_port,
                self.snd_nxt,
                Some(self.rcv_nxt),
                TcpFlags::NONE,
                self.window,
            )
        }
    }

    /// A record with no timestamps, for the worker's table tests.
    #[cfg(test)]
    pub(crate) fn for_test(expires: Instant) -> TimeWait {
        TimeWait {
            snd_nxt: Seq(1),
            rcv_nxt: Seq(1),
            window: 0,
            ts_enabled: false,
            ts_recent: 0,
            ts_offset: 0,
            epoch: expires,
            last_oow_ack: None,
            expires,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSL2: Duration = Duration::from_secs(60);

    fn record(now: Instant, ts: bool) -> TimeWait {
        TimeWait {
            snd_nxt: Seq(5001),
            rcv_nxt: Seq(9001),
            window: 512,
            ts_enabled: ts,
            ts_recent: 1000,
            ts_offset: 7,
            epoch: now,
            last_oow_ack: None,
            expires: now + MSL2,
        }
    }

    fn seg(seq: u32, ack: Option<u32>, flags: TcpFlags, ts: Option<u32>) -> TcpRepr {
        TcpRepr {
            timestamp: ts.map(|v| (v, 0)),
            ..TcpRepr::new(40000, 80, Seq(seq), ack.map(Seq), flags, 100)
        }
    }

    #[test]
    fn a_retransmitted_fin_gets_the_last_ack_and_restarts_the_wait() {
        let t0 = Instant::now();
        let mut tw = record(t0, true);
        let later = t0 + Duration::from_secs(10);
        let v = tw.on_segment(later, &seg(9000, Some(5001), TcpFlags::FIN, Some(1500)), 0, MSL2);
        let TimeWaitVerdict::Ack(a) = v else { panic!("{v:?}") };
        assert_eq!((a.seq, a.ack, a.window_len), (Seq(5001), Some(Seq(9001)), 512));
        assert_eq!((a.src_port, a.dst_port), (80, 40000));
        // TSval from the connection's clock (10 s after its epoch, plus its offset); TSecr the newest.
        assert_eq!(a.timestamp, Some((10_007, 1500)));
        assert_eq!(tw.expires, later + MSL2);
        // FINs are not rate limited: every retransmission is answered.
        let again = tw.on_segment(later, &seg(9000, Some(5001), TcpFlags::FIN, Some(1600)), 0, MSL2);
        assert!(matches!(again, TimeWaitVerdict::Ack(_)));
    }

    #[test]
    fn a_bare_ack_in_sequence_changes_nothing() {
        let t0 = Instant::now();
        let mut tw = record(t0, false);
        assert_eq!(
            tw.on_segment(t0, &seg(9001, Some(5001), TcpFlags::NONE, None), 0, MSL2),
            TimeWaitVerdict::Ignore
        );
        assert_eq!(tw.expires, t0 + MSL2);
    }

    #[test]
    fn only_an_exact_reset_ends_the_record() {
        let t0 = Instant::now();
        let mut tw = record(t0, false);
        assert_eq!(
            tw.on_segment(t0, &seg(9100, None, TcpFlags::RST, None), 0, MSL2),
            TimeWaitVerdict::Ignore
        );
        assert_eq!(tw.on_segment(t0, &seg(9001, None, TcpFlags::RST, None), 0, MSL2), TimeWaitVerdict::Close);
    }

    #[test]
    fn a_new_syn_reopens_by_sequence_or_timestamp_but_an_old_one_gets_an_ack() {
        let t0 = Instant::now();
        let mut tw = record(t0, true);
        // Beyond RCV.NXT.
        assert_eq!(
            tw.on_segment(t0, &seg(20000, None, TcpFlags::SYN, None), 0, MSL2),
            TimeWaitVerdict::Reopen
        );
        // Behind RCV.NXT, but with a newer timestamp (RFC 6191).
        assert_eq!(
            tw.on_segment(t0, &seg(10, None, TcpFlags::SYN, Some(2000)), 0, MSL2),
            TimeWaitVerdict::Reopen
        );
        // Behind in both: an old duplicate; it gets our ACK (rate limited).
        let v = tw.on_segment(t0, &seg(10, None, TcpFlags::SYN, Some(900)), 0, MSL2);
        assert!(matches!(v, TimeWaitVerdict::Ack(_)), "{v:?}");
        let v = tw.on_segment(t0, &seg(10, None, TcpFlags::SYN, Some(900)), 0, MSL2);
        assert_eq!(v, TimeWaitVerdict::Ignore, "a second one within 500 ms is not answered");
        let v = tw.on_segment(t0 + OOW_ACK_INTERVAL, &seg(10, None, TcpFlags::SYN, Some(900)), 0, MSL2);
        assert!(matches!(v, TimeWaitVerdict::Ack(_)));
    }

    #[test]
    fn paws_rejects_old_segments_with_an_ack_and_keeps_ts_recent() {
        let t0 = Instant::now();
        let mut tw = record(t0, true);
        let v = tw.on_segment(t0, &seg(9000, Some(5001), TcpFlags::FIN, Some(999)), 0, MSL2);
        let TimeWaitVerdict::Ack(a) = v else { panic!("{v:?}") };
        assert_eq!(a.timestamp.map(|t| t.1), Some(1000), "TS.Recent is not moved back");
        // Not even a SYN far ahead reopens when PAWS rejects it.
        let v =
            tw.on_segment(t0 + Duration::from_secs(1), &seg(20000, None, TcpFlags::SYN, Some(5)), 0, MSL2);
        assert!(matches!(v, TimeWaitVerdict::Ack(_)), "{v:?}");
    }

    #[test]
    fn data_is_answered_without_rate_limit() {
        let t0 = Instant::now();
        let mut tw = record(t0, false);
        for _ in 0..3 {
            let v = tw.on_segment(t0, &seg(9001, Some(5001), TcpFlags::NONE, None), 100, MSL2);
            assert!(matches!(v, TimeWaitVerdict::Ack(_)));
        }
    }
}

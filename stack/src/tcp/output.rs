//! What to send next: handshake segments, retransmissions (timeout, fast retransmit, RFC 6675
//! NextSeg), new data under the windows with Nagle and sender-side silly-window avoidance, our FIN,
//! window and keepalive probes, and ACKs (immediate, delayed, window updates).

use std::time::Instant;

use super::conn::{Connection, Segment};
use super::timers::Timer;
use super::State;
use crate::wire::{TcpFlags, TcpRepr, TcpSeqNumber as Seq};

/// Largest advertised window in an unscaled field.
const MAX_WINDOW: usize = 65535;

/// Is this a resend after a timeout (snd_nxt rewound below snd_max)?
fn retransmit_pending(c: &Connection) -> bool {
    c.snd_nxt < c.snd_max
}

impl Connection {
    /// The next segment to send, or None. Call until None after every input, timeout or application
    /// activity; copy each segment's payload with [`Connection::copy_payload`].
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Segment> {
        if self.rst_pending {
            self.rst_pending = false;
            self.counters.tcp_out_rsts.inc();
            // RFC 9293 §3.10.5 ABORT: <SEQ=SND.NXT><CTL=RST> (with an ACK, as Linux sends it).
            let mut s = self.header(now, self.snd_nxt, TcpFlags::RST);
            s.repr.window_len = 0;
            s.repr.timestamp = None;
            s.repr.sack_ranges = [None; 3];
            return Some(s);
        }
        if let Some(seq) = self.reply_rst.take() {
            // A reset answering an unacceptable ACK: <SEQ=SEG.ACK><CTL=RST>, no ACK.
            self.counters.tcp_out_rsts.inc();
            let repr = TcpRepr::new(self.local.port(), self.remote.port(), seq, None, TcpFlags::RST, 0);
            self.counters.tcp_out_segs.inc();
            return Some(Segment { repr, payload_offset: 0 });
        }
        match self.state {
            State::Closed | State::Listen => return None,
            State::SynSent => return self.send_syn(now, false),
            State::SynReceived => {
                if self.snd_nxt == self.iss {
                    return self.send_syn(now, true);
                }
                // RFC 9293 §3.10.7.4: an unacceptable segment is answered with
                // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, in SYN-RECEIVED too (a lost SYN-ACK goes again
                // on its timeout, or at once for a retransmitted SYN).
                return self.ack_now.then(|| self.ack_segment(now));
            }
            State::TimeWait => return self.ack_now.then(|| self.ack_segment(now)),
            _ => {}
        }
        if let Some(s) = self.retransmission(now) {
            return Some(s);
        }
        if let Some(s) = self.send_data(now) {
            return Some(s);
        }
        if self.probe_pending {
            self.probe_pending = false;
            // A window or keepalive probe: an old sequence number, so the peer must answer with an ACK
            // that carries its current window (as Linux's tcp_xmit_probe_skb).
            let s = self.header(now, self.snd_una - 1, TcpFlags::NONE);
            return Some(s);
        }
        if self.ack_now {
            return Some(self.ack_segment(now));
        }
        None
    }

    /// A header for `seq` with `flags` (ACK added when synchronized), our window, timestamps and SACK
    /// blocks; records that an ACK went out.
    fn header(&mut self, now: Instant, seq: Seq, flags: TcpFlags) -> Segment {
        let window_len = self.advertise_window();
        let mut sack_ranges = [None; 3];
        if self.sack_enabled && !self.ooo.is_empty() {
            let mut blocks = [(0u32, 0u32); 3];
            let n = self.ooo.sack_blocks(self.last_ooo, &mut blocks);
            for (slot, b) in sack_ranges.iter_mut().zip(&blocks[..n]) {
                *slot = Some(*b);
            }
        }
        let repr = TcpRepr {
            sack_ranges,
            timestamp: self.ts_enabled.then(|| (self.ts_now(now), self.ts_recent)),
            ..TcpRepr::new(self.local.port(), self.remote.port(), seq, Some(self.rcv_nxt), flags, window_len)
        };
        self.last_ack_sent = self.rcv_nxt;
        self.ack_now = false;
        self.segs_unacked = 0;
        self.timers.stop(Timer::DelayedAck);
        self.counters.tcp_out_segs.inc();
        Segment { repr, payload_offset: 0 }
    }

    /// A pure ACK. Its sequence number is snd_max, not snd_nxt: after a timeout rewinds snd_nxt for
    /// retransmission, an ACK carrying the old snd_nxt would be out of the peer's window and dropped
    /// (4.4BSD makes the same choice, for the same reason).
    fn ack_segment(&mut self, now: Instant) -> Segment {
        self.header(now, self.snd_max.max(self.snd_nxt), TcpFlags::NONE)
    }

    /// The window to advertise, with receiver-side silly-window avoidance (RFC 9293 §3.8.6.2.2): the
    /// right edge moves only when it can move by min(buffer / 2, MSS); it never moves left.
    fn advertise_window(&mut self) -> u16 {
        let free = self.rx.free();
        let cur = (self.rcv_adv - self.rcv_nxt).max(0) as usize;
        let threshold = (self.rx.capacity() / 2).min(self.rcv_mss as usize).max(1);
        let wnd = if free >= cur + threshold { free } else { cur };
        let scaled = (wnd >> self.rcv_wscale).min(MAX_WINDOW);
        let edge = self.rcv_nxt + (scaled << self.rcv_wscale);
        if edge > self.rcv_adv {
            self.rcv_adv = edge;
        }
        scaled as u16
    }

    /// Should a window update go out now that the application has read? When the window it can offer
    /// has grown by the SWS threshold while the advertised one is less than half the buffer; but not
    /// while an ACK is being delayed and the peer still has room for two full segments: then either
    /// our answer carries the ACK (a request read after the handshake would otherwise get an ACK of
    /// its own before the answer), or the peer's next two segments bring it at once.
    pub(super) fn window_update_due(&self) -> bool {
        let free = self.rx.free();
        let cur = (self.rcv_adv - self.rcv_nxt).max(0) as usize;
        let threshold = (self.rx.capacity() / 2).min(self.rcv_mss as usize).max(1);
        let delaying = self.timers.is_running(Timer::DelayedAck) && cur >= 2 * self.rcv_mss as usize;
        free >= cur + threshold && cur < self.rx.capacity() / 2 && !delaying
    }

    /// SYN (active open) or SYN-ACK (`ack`), with our options; retransmitted after a timeout.
    fn send_syn(&mut self, now: Instant, ack: bool) -> Option<Segment> {
        if self.snd_nxt != self.iss {
            return None;
        }
        let first = self.snd_max == self.iss;
        let window_len = self.rx.free().min(MAX_WINDOW) as u16; // RFC 7323 §2.2: never scaled in a SYN
        let offer_ws = self.config.window_scaling && (!ack || self.ws_ok);
        let repr = TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq: self.iss,
            ack: ack.then_some(self.rcv_nxt),
            flags: TcpFlags::SYN,
            window_len,
            max_seg_size: Some(self.rcv_mss),
            window_scale: offer_ws.then_some(self.rcv_wscale),
            sack_permitted: if ack { self.sack_enabled } else { self.config.sack },
            sack_ranges: [None; 3],
            timestamp: if ack { self.ts_enabled } else { self.config.timestamps }
                .then(|| (self.ts_now(now), if ack { self.ts_recent } else { 0 })),
            payload_len: 0,
        };
        if ack {
            self.rcv_adv = self.rcv_nxt + window_len as usize;
            self.last_ack_sent = self.rcv_nxt;
            self.ack_now = false;
        }
        self.snd_nxt = self.iss + 1;
        self.snd_max = self.snd_max.max(self.snd_nxt);
        if first {
            self.rtt_timed = Some((self.iss + 1, now));
        } else {
            self.rtt_timed = None; // Karn's rule: the ACK of a sent-again SYN times neither copy.
            self.counters.tcp_retrans_segs.inc();
            self.retransmits += 1;
        }
        if !self.timers.is_running(Timer::Retransmit) {
            self.timers.set(Timer::Retransmit, now + self.rtt.rto());
        }
        self.rto_pending = false;
        self.counters.tcp_out_segs.inc();
        Some(Segment { repr, payload_offset: 0 })
    }

    /// The most payload a segment with this header can carry (RFC 6691: options come out of the MSS).
    fn max_payload(&self, header: &TcpRepr) -> usize {
        let mss = self.snd_mss.min(self.rcv_mss) as usize;
        mss.saturating_sub(header.header_len() - 20).max(1)
    }

    /// Fast retransmit, NewReno partial-ACK retransmission, and RFC 6675 NextSeg rules 1 and 3.
    fn retransmission(&mut self, now: Instant) -> Option<Segment> {
        if self.snd_una == self.snd_max {
            return None;
        }
        if self.recovery.retransmit_una {
            self.recovery.retransmit_una = false;
            let s = self.resend(now, self.snd_una, usize::MAX);
            if let Some(seg) = &s {
                let end = self.snd_una + seg.repr.payload_len;
                self.recovery.high_rxt = self.recovery.high_rxt.max(end);
            }
            return s;
        }
        if self.recovery.active && self.sack_enabled {
            let smss = self.smss();
            let pipe = self.scoreboard.pipe(self.snd_una, self.snd_max, self.recovery.high_rxt, smss);
            if self.cc.cwnd().saturating_sub(pipe) < smss {
                return None;
            }
            let (seq, len) =
                self.scoreboard.next_seg(self.snd_una, self.snd_max, self.recovery.high_rxt, smss, true)?;
            let s = self.resend(now, seq, len);
            if let Some(seg) = &s {
                self.recovery.high_rxt = self.recovery.high_rxt.max(seq + seg.repr.payload_len.max(1));
            }
            return s;
        }
        None
    }

    /// Send again the bytes at `seq` (at most `limit`); a FIN that ends there rides along.
    fn resend(&mut self, now: Instant, seq: Seq, limit: usize) -> Option<Segment> {
        if seq < self.snd_una_data() {
            return None;
        }
        let data_end = self.data_end();
        let avail = (data_end - seq).max(0) as usize;
        let mut seg = self.header(now, seq, TcpFlags::NONE);
        let len = avail.min(limit).min(self.max_payload(&seg.repr));
        let fin = self.fin_seq.is_some_and(|f| f == seq + len && f < self.snd_max);
        if len == 0 && !fin {
            return None;
        }
        seg.repr.payload_len = len;
        seg.payload_offset = (seq - self.snd_una_data()) as usize;
        if fin {
            seg.repr.flags |= TcpFlags::FIN;
        }
        if len > 0 && seq + len == data_end {
            seg.repr.flags |= TcpFlags::PSH;
        }
        self.counters.tcp_retrans_segs.inc();
        self.retransmits += 1;
        self.rtt_timed = None; // Karn's rule
        if !self.timers.is_running(Timer::Retransmit) {
            self.timers.set(Timer::Retransmit, now + self.rtt.rto());
        }
        Some(seg)
    }

    /// How much the congestion window allows beyond what is in flight.
    fn cwnd_room(&self) -> usize {
        let cwnd = self.cc.cwnd();
        if self.recovery.active {
            if self.sack_enabled {
                let pipe =
                    self.scoreboard.pipe(self.snd_una, self.snd_max, self.recovery.high_rxt, self.smss());
                cwnd.saturating_sub(pipe)
            } else {
                (cwnd + self.recovery.inflation).saturating_sub(self.flight())
            }
        } else {
            // After a timeout snd_nxt is rewound: what lies between it and snd_max counts as lost.
            cwnd.saturating_sub((self.snd_nxt - self.snd_una).max(0) as usize)
        }
    }

    /// New data (or data again after a timeout rewound snd_nxt), and our FIN.
    fn send_data(&mut self, now: Instant) -> Option<Segment> {
        if !matches!(
            self.state,
            State::Established | State::CloseWait | State::FinWait1 | State::Closing | State::LastAck
        ) {
            return None;
        }
        // Resending after a timeout: skip what the peer has SACKed.
        if self.sack_enabled && self.snd_nxt < self.snd_max {
            if let Some((_, end)) =
                self.scoreboard.ranges().find(|(s, e)| *s <= self.snd_nxt && self.snd_nxt < *e)
            {
                self.snd_nxt = end.min(self.snd_max);
            }
        }
        let data_end = self.data_end();
        let unsent = (data_end - self.snd_nxt).max(0) as usize;
        let fin_due = self.fin_seq.is_some_and(|f| self.snd_nxt <= f);
        if unsent == 0 && !fin_due {
            self.rto_pending = false;
            self.app_limited = true;
            return None;
        }
        let usable_wnd = ((self.snd_una + self.snd_wnd as usize) - self.snd_nxt).max(0) as usize;
        let mut room = self.cwnd_room();
        // RFC 3042 limited transmit: each of the first two duplicate ACKs lets one new segment out.
        if !self.recovery.active
            && !retransmit_pending(self)
            && self.recovery.dupacks > 0
            && self.recovery.dupacks < 3
        {
            let allowed = self.recovery.dupacks as usize * self.smss();
            let beyond = self.flight().saturating_sub(self.cc.cwnd());
            room = room.max(allowed.saturating_sub(beyond));
        }
        let mut seg = self.peek_header(now);
        let max_payload = self.max_payload(&seg.repr);
        let len = unsent.min(usable_wnd).min(room).min(max_payload);
        let retransmit = self.snd_nxt < self.snd_max;
        let nothing_in_flight = self.snd_nxt == self.snd_una;

        if len == 0 {
            if unsent == 0 && fin_due {
                // A FIN needs no window (it carries no data), as in Linux.
                return Some(self.commit_segment(now, seg, 0, true, retransmit));
            }
            self.app_limited = false;
            if usable_wnd == 0 && nothing_in_flight && !self.timers.is_running(Timer::Persist) {
                self.arm_persist(now);
            }
            return None;
        }
        // Nagle (RFC 1122 §4.2.3.4, with Minshall's refinement as in Linux: only a *short* segment in
        // flight holds back another short one) and sender SWS avoidance (RFC 9293 §3.8.6.2.1): a short
        // segment goes if it empties the queue and no short segment is unacknowledged (or Nagle is off),
        // or it is at least half the largest window the peer has offered, or nothing at all is in flight.
        if !retransmit && len < max_payload {
            let all_queued = len == unsent;
            let short_in_flight = self.snd_sml > self.snd_una;
            let nagle_ok = self.nodelay || nothing_in_flight || !short_in_flight;
            let big_enough = len >= self.max_snd_wnd as usize / 2;
            if !((all_queued && nagle_ok) || big_enough || (nothing_in_flight && len < unsent)) {
                self.app_limited = false;
                return None;
            }
        }
        let fin = self.fin_seq.is_some_and(|f| f == self.snd_nxt + len);
        seg.repr.payload_len = len;
        Some(self.commit_segment(now, seg, len, fin, retransmit))
    }

    /// The header the next data segment would carry (without recording anything yet).
    fn peek_header(&self, now: Instant) -> Segment {
        let mut sack_ranges = [None; 3];
        if self.sack_enabled && !self.ooo.is_empty() {
            let mut blocks = [(0u32, 0u32); 3];
            let n = self.ooo.sack_blocks(self.last_ooo, &mut blocks);
            for (slot, b) in sack_ranges.iter_mut().zip(&blocks[..n]) {
                *slot = Some(*b);
            }
        }
        let repr = TcpRepr {
            sack_ranges,
            timestamp: self.ts_enabled.then(|| (self.ts_now(now), self.ts_recent)),
            ..TcpRepr::new(
                self.local.port(),
                self.remote.port(),
                self.snd_nxt,
                Some(self.rcv_nxt),
                TcpFlags::NONE,
                0,
            )
        };
        Segment { repr, payload_offset: 0 }
    }

    /// Record and return a data/FIN segment of `len` bytes at snd_nxt.
    fn commit_segment(
        &mut self,
        now: Instant,
        peek: Segment,
        len: usize,
        fin: bool,
        retransmit: bool,
    ) -> Segment {
        let mut flags = TcpFlags::NONE;
        if fin {
            flags |= TcpFlags::FIN;
        }
        if len > 0 && self.snd_nxt + len == self.data_end() {
            flags |= TcpFlags::PSH;
        }
        let mut seg = self.header(now, self.snd_nxt, flags);
        seg.repr.sack_ranges = peek.repr.sack_ranges;
        seg.repr.payload_len = len;
        seg.payload_offset = (self.snd_nxt - self.snd_una_data()) as usize;
        if retransmit {
            self.counters.tcp_retrans_segs.inc();
            self.retransmits += 1;
        } else if self.rtt_timed.is_none() && len > 0 {
            self.rtt_timed = Some((self.snd_nxt + len, now));
        }
        self.snd_nxt = self.snd_nxt + len + usize::from(fin);
        self.snd_max = self.snd_max.max(self.snd_nxt);
        self.rto_pending = false;
        self.timers.stop(Timer::Persist);
        if !self.timers.is_running(Timer::Retransmit) {
            self.timers.set(Timer::Retransmit, now + self.rtt.rto());
        }
        if len > 0 && len < self.max_payload(&seg.repr) {
            self.snd_sml = self.snd_nxt;
        }
        let unsent_after = (self.data_end() - self.snd_nxt).max(0) as usize;
        self.app_limited = unsent_after == 0 && self.flight() < self.cc.cwnd();
        seg
    }

    /// Start the persist timer (zero-window probing), backing off like the RTO up to 60 s.
    pub(super) fn arm_persist(&mut self, now: Instant) {
        let base = self.rtt.rto();
        let factor = 1u32 << self.persist_backoff.min(10);
        let wait = base.saturating_mul(factor).min(std::time::Duration::from_secs(60));
        self.timers.set(Timer::Persist, now + wait);
    }
}

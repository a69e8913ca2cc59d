//! SEGMENT ARRIVES (RFC 9293 §3.10.7) for a connection, with RFC 5961's defences (challenge ACKs,
//! in-window RST and SYN checks, ACK validation) and RFC 7323's PAWS.

use std::time::{Duration, Instant};

use super::conn::{events, ts_after, Connection};
use super::recovery::DUP_THRESH;
use super::timers::Timer;
use super::{State, TcpError};
use crate::wire::{TcpFlags, TcpRepr, TcpSeqNumber as Seq};

impl Connection {
    /// A segment for this connection arrived. The caller has verified the checksum and demultiplexed
    /// by 4-tuple; everything else is checked here.
    pub fn on_segment(&mut self, now: Instant, seg: &TcpRepr, payload: &[u8]) {
        match self.state {
            State::Closed | State::Listen => {}
            State::SynSent => self.input_syn_sent(now, seg, payload),
            _ => self.input_synchronized(now, seg, payload),
        }
    }

    /// RFC 9293 §3.10.7.3.
    fn input_syn_sent(&mut self, now: Instant, seg: &TcpRepr, payload: &[u8]) {
        let rst = seg.flags.contains(TcpFlags::RST);
        if let Some(ack) = seg.ack {
            // "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset (unless the RST bit is set)".
            if ack <= self.iss || ack > self.snd_max {
                if !rst {
                    self.reply_rst = Some(ack);
                }
                return;
            }
        }
        if rst {
            // RFC 5961 §3.2 / RFC 9293: in SYN-SENT a RST counts only if it acknowledges our SYN.
            if seg.ack.is_some() {
                self.counters.tcp_attempt_fails.inc();
                self.enter_closed(Some(TcpError::Refused));
            }
            return;
        }
        if !seg.flags.contains(TcpFlags::SYN) {
            return;
        }
        self.irs = seg.seq;
        self.rcv_nxt = seg.seq + 1;
        self.rcv_adv = self.rcv_nxt;
        self.take_syn_options(seg);
        self.last_recv = now;
        match seg.ack {
            Some(ack) => {
                // Our SYN is acknowledged: ESTABLISHED, and the peer's SYN is acknowledged.
                self.establish_on_syn_ack(now, seg, ack);
                self.ack_now = true;
                if !payload.is_empty() {
                    self.process_text(now, seg.seq + 1, payload);
                }
                if seg.flags.contains(TcpFlags::FIN) {
                    self.peer_fin = Some(seg.seq + 1 + payload.len());
                    self.check_peer_fin(now);
                }
            }
            None => {
                // Simultaneous open: SYN-RECEIVED, and our SYN goes out again with an ACK.
                self.snd_wnd = u32::from(seg.window_len);
                self.max_snd_wnd = self.snd_wnd;
                self.snd_wl1 = seg.seq;
                self.snd_wl2 = self.iss;
                self.snd_nxt = self.iss;
                self.simultaneous_open = true;
                self.set_state(State::SynReceived);
            }
        }
    }

    /// A SYN-ACK whose ACK acknowledges our SYN (checked by the caller): take its ACK and its window
    /// and enter ESTABLISHED.
    fn establish_on_syn_ack(&mut self, now: Instant, seg: &TcpRepr, ack: Seq) {
        if let Some((end, sent)) = self.rtt_timed.take() {
            if ack >= end {
                self.rtt.on_sample(now.saturating_duration_since(sent));
            }
        }
        self.snd_una = ack;
        self.snd_nxt = self.snd_nxt.max(ack);
        // RFC 7323 §2.2: the window of a SYN-ACK is not scaled.
        self.snd_wnd = u32::from(seg.window_len);
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = seg.seq;
        self.snd_wl2 = ack;
        self.retries = 0;
        self.timers.stop(Timer::Retransmit);
        self.rto_pending = false;
        self.set_state(State::Established);
        self.events |= events::WRITABLE;
        self.arm_keepalive(now);
    }

    /// The peer's SYN again, in SYN-RECEIVED (SEG.SEQ = IRS). The first check of RFC 9293 §3.10.7.4
    /// would find it unacceptable (it lies before RCV.NXT) and answer with a bare ACK; two cases are
    /// better served. True when the segment was dealt with here.
    fn syn_in_syn_received(&mut self, now: Instant, seg: &TcpRepr, payload: &[u8]) -> bool {
        match seg.ack {
            None => {
                // A retransmitted SYN: our SYN-ACK was lost. It goes again at once (as Linux's
                // tcp_check_req does) instead of after its retransmission timeout.
                self.snd_nxt = self.iss;
                true
            }
            Some(ack)
                if self.simultaneous_open
                    && payload.is_empty()
                    && !seg.flags.contains(TcpFlags::FIN)
                    && self.snd_una < ack
                    && ack <= self.snd_max =>
            {
                // Simultaneous open: the peer's SYN-ACK, acknowledging our SYN. RFC 9293 §3.5
                // (Figure 7, lines 6-7) moves SYN-RECEIVED to ESTABLISHED on it, as Linux does
                // (tcp_validate_incoming lets it through in TCP_SYN_RECV). Answering it with a bare
                // ACK, as the event processing of §3.10.7.4 would, costs each side another half
                // round trip; answering with our SYN-ACK again, as we did, made two instances of
                // this stack bounce SYN-ACKs until the retries ran out.
                if let (true, Some((tsval, _))) = (self.ts_enabled, seg.timestamp) {
                    self.ts_recent = tsval;
                }
                self.last_recv = now;
                self.establish_on_syn_ack(now, seg, ack);
                true
            }
            // Anything else (a SYN-ACK that does not acknowledge our SYN, or one to a passive open)
            // is unacceptable: a bare ACK answers it.
            Some(_) => false,
        }
    }

    /// The current receive window: from rcv_nxt to the right edge we advertised.
    fn rcv_wnd(&self) -> u32 {
        (self.rcv_adv - self.rcv_nxt).max(0) as u32
    }

    /// RFC 9293 §3.10.7.4, for every state past SYN-SENT.
    fn input_synchronized(&mut self, now: Instant, seg: &TcpRepr, payload: &[u8]) {
        let rst = seg.flags.contains(TcpFlags::RST);
        let syn = seg.flags.contains(TcpFlags::SYN);
        let fin = seg.flags.contains(TcpFlags::FIN);
        let seg_len = payload.len() + usize::from(syn) + usize::from(fin);

        // RFC 7323 §5.3 R1 (PAWS): a segment whose timestamp is older than TS.Recent is a duplicate.
        if self.ts_enabled && !rst {
            if let Some((tsval, _)) = seg.timestamp {
                if ts_after(self.ts_recent, tsval) {
                    self.counters.tcp_paws_estab.inc();
                    self.ack_now = true;
                    return;
                }
            }
        }

        let syn_again = syn && !rst && self.state == State::SynReceived && seg.seq == self.irs;
        if syn_again && self.syn_in_syn_received(now, seg, payload) {
            return;
        }

        // First: is the sequence number acceptable?
        let wnd = self.rcv_wnd();
        let in_window = |s: Seq| s >= self.rcv_nxt && s < self.rcv_nxt + wnd as usize;
        let acceptable = match (seg_len, wnd) {
            (0, 0) => seg.seq == self.rcv_nxt,
            (0, _) => in_window(seg.seq),
            (_, 0) => false,
            (n, _) => in_window(seg.seq) || in_window(seg.seq + (n - 1)),
        };
        let mut payload = payload;
        if !acceptable {
            if rst {
                return;
            }
            // A retransmitted FIN in TIME-WAIT: acknowledge it and restart the 2·MSL timer.
            if self.state == State::TimeWait && fin {
                self.timers.set(Timer::Close, now + self.config.msl * 2);
            }
            self.ack_now = true;
            // RFC 9293: with a zero window, still process the ACK of an in-sequence segment.
            if !(wnd == 0 && seg.seq == self.rcv_nxt) {
                return;
            }
            payload = &[];
        }

        // Second: RST (RFC 5961 §3.2: only an exact match resets; in-window gets a challenge ACK).
        if rst {
            if seg.seq == self.rcv_nxt {
                self.on_reset();
            } else {
                self.challenge_ack(now);
            }
            return;
        }

        // Fourth: SYN in a synchronized state (RFC 5961 §4.2: challenge ACK). (The peer's SYN again,
        // in SYN-RECEIVED, was handled before the first check.)
        if syn {
            self.challenge_ack(now);
            return;
        }

        // Fifth: the ACK field.
        let Some(ack) = seg.ack else { return };
        if self.state == State::SynReceived {
            if self.snd_una < ack && ack <= self.snd_max {
                self.set_state(State::Established);
                if !self.simultaneous_open {
                    // A simultaneous open was counted as an active open (as in Linux).
                    self.counters.tcp_passive_opens.inc();
                }
                self.events |= events::WRITABLE;
                self.arm_keepalive(now);
            } else {
                self.reply_rst = Some(ack);
                return;
            }
        }
        // RFC 5961 §5.2: acceptable if SND.UNA - MAX.SND.WND =< SEG.ACK =< SND.NXT.
        if ack > self.snd_max {
            self.challenge_ack(now);
            return;
        }
        if ack < self.snd_una - self.max_snd_wnd.max(1) as usize {
            self.ack_now = true;
            return;
        }
        self.last_recv = now;
        self.keepalive_probes = 0;
        if self.keepalive.is_some() {
            self.arm_keepalive(now);
        }
        self.update_ts_recent(seg, seg_len);
        self.process_ack(now, seg, ack, payload.len());

        match self.state {
            State::FinWait1 if self.fin_acked() => {
                self.set_state(State::FinWait2);
                if self.orphaned {
                    self.timers.set(Timer::Close, now + self.config.fin_wait2_timeout);
                }
            }
            State::Closing if self.fin_acked() => self.enter_time_wait(now),
            State::LastAck if self.fin_acked() => {
                self.enter_closed(None);
                return;
            }
            _ => {}
        }

        // Seventh: segment text.
        if !payload.is_empty() {
            match self.state {
                State::Established | State::FinWait1 | State::FinWait2 => {
                    let new_data = seg.seq + payload.len() > self.rcv_nxt;
                    if self.orphaned && new_data {
                        // Data for an application that has gone: it can never be delivered.
                        self.counters.tcp_abort_on_data.inc();
                        self.abort(now);
                        return;
                    }
                    self.process_text(now, seg.seq, payload);
                }
                // The peer already sent its FIN; RFC 9293 says ignore the text.
                _ => {}
            }
        }

        // Eighth: FIN.
        if fin && self.peer_fin.is_none() {
            let at = seg.seq + payload.len();
            if at >= self.rcv_nxt {
                self.peer_fin = Some(at);
            }
        }
        self.check_peer_fin(now);
    }

    /// An acceptable RST (RFC 9293 §3.10.7.4, second check).
    fn on_reset(&mut self) {
        match self.state {
            State::SynReceived if !self.simultaneous_open => {
                // Passive open: the listener stays; this half-open connection just goes away.
                self.enter_closed(None);
            }
            State::SynReceived => {
                self.counters.tcp_attempt_fails.inc();
                self.enter_closed(Some(TcpError::Refused));
            }
            State::Established | State::CloseWait => {
                self.counters.tcp_estab_resets.inc();
                self.enter_closed(Some(TcpError::Reset));
            }
            State::FinWait1 | State::FinWait2 => self.enter_closed(Some(TcpError::Reset)),
            _ => self.enter_closed(None),
        }
    }

    /// RFC 5961 §7: an ACK that makes a blind attacker's guess visible to the real peer, rate limited.
    fn challenge_ack(&mut self, now: Instant) {
        let (start, count) = self.challenge_window;
        let (start, count) = if now.saturating_duration_since(start) >= Duration::from_secs(1) {
            (now, 0)
        } else {
            (start, count)
        };
        if count < self.config.challenge_acks_per_sec {
            self.ack_now = true;
            self.counters.tcp_challenge_ack.inc();
            self.challenge_window = (start, count + 1);
        } else {
            self.challenge_window = (start, count);
        }
    }

    /// RFC 7323 §4.3: TS.Recent follows the segment that covers Last.ACK.sent.
    fn update_ts_recent(&mut self, seg: &TcpRepr, seg_len: usize) {
        if let (true, Some((tsval, _))) = (self.ts_enabled, seg.timestamp) {
            if seg.seq <= self.last_ack_sent && self.last_ack_sent <= seg.seq + seg_len {
                self.ts_recent = tsval;
            }
        }
    }

    fn fin_acked(&self) -> bool {
        self.fin_seq.is_some_and(|f| self.snd_una > f)
    }

    /// Process SEG.ACK (RFC 9293 §3.10.7.4 fifth check, ESTABLISHED): acknowledged data, RTT, the
    /// congestion window, duplicate ACKs and recovery, SACK, and the send window.
    fn process_ack(&mut self, now: Instant, seg: &TcpRepr, ack: Seq, data_len: usize) {
        let smss = self.smss();
        let new_wnd = u32::from(seg.window_len) << self.snd_wscale;
        let mut sacked_new = 0;
        if self.sack_enabled {
            let mut blocks = [(Seq(0), Seq(0)); 3];
            let mut n = 0;
            for (l, r) in seg.sack_ranges.iter().flatten() {
                blocks[n] = (Seq(*l), Seq(*r));
                n += 1;
            }
            if n > 0 {
                sacked_new = self.scoreboard.on_sack(self.snd_una, self.snd_max, &blocks[..n]);
            }
        }
        if ack > self.snd_una {
            let mut data_acked = (ack - self.snd_una) as usize;
            if self.snd_una == self.iss {
                data_acked -= 1; // our SYN
            }
            if let Some(f) = self.fin_seq {
                if ack > f && self.snd_una <= f {
                    data_acked = data_acked.saturating_sub(1); // our FIN
                }
            }
            let data_acked = data_acked.min(self.tx.len());
            self.tx.consume(data_acked);
            self.bytes_acked += data_acked as u64;
            if data_acked > 0 {
                self.events |= events::WRITABLE;
            }
            match self.rtt_timed {
                Some((end, sent)) if ack >= end => {
                    self.rtt.on_sample(now.saturating_duration_since(sent));
                    self.rtt_timed = None;
                }
                _ if self.rtt.backoff() > 0 => {
                    // RFC 7323 §4 (RTTM): the timestamp echo identifies which transmission is being
                    // acknowledged, so even after a retransmission it gives a valid sample (at the
                    // timestamp clock's 1 ms granularity), ending the backoff. But only for a
                    // transmission made since the timer fired: an echo from before it means the
                    // ACK of the original was lost (the duplicate that answered our resend did not
                    // update the peer's TS.Recent, RFC 7323 §4.3), and the "RTT" then includes the
                    // whole timeout. Taken as a sample it fed each RTO into the next.
                    if let (true, Some((_, tsecr))) = (self.ts_enabled, seg.timestamp) {
                        let ms = self.ts_now(now).wrapping_sub(tsecr);
                        if ms < 60_000 && !ts_after(self.rto_tsval, tsecr) {
                            self.rtt.on_sample(Duration::from_millis(u64::from(ms)));
                        }
                    }
                }
                _ => {}
            }
            self.snd_una = ack;
            if self.snd_nxt < ack {
                self.snd_nxt = ack;
            }
            self.scoreboard.on_cumulative_ack(ack);
            self.retries = 0;
            self.persist_backoff = 0;
            if self.recovery.active {
                if ack >= self.recovery.point {
                    self.recovery.exit();
                    self.cc.on_recovery_exit(now);
                } else if !self.sack_enabled {
                    self.recovery.on_partial_ack(data_acked, smss);
                }
            } else {
                self.recovery.dupacks = 0;
                self.cc.on_ack(now, data_acked, self.rtt.info(), self.app_limited);
            }
            // RFC 6298 §5.2/§5.3: stop the timer when everything is acknowledged, else restart it.
            if self.snd_una == self.snd_max {
                self.timers.stop(Timer::Retransmit);
            } else {
                self.timers.set(Timer::Retransmit, now + self.rtt.rto());
            }
        } else if ack == self.snd_una && self.snd_una != self.snd_max {
            // RFC 5681 §2: a duplicate ACK carries no data, no SYN/FIN and the same window; with SACK
            // (RFC 6675 §2) an ACK that SACKs new data counts too.
            let plain_dup = data_len == 0 && !seg.flags.contains(TcpFlags::FIN) && new_wnd == self.snd_wnd;
            if plain_dup || sacked_new > 0 {
                self.recovery.dupacks += 1;
                if self.recovery.active {
                    if !self.sack_enabled {
                        self.recovery.inflation += smss;
                    }
                } else if self.recovery.may_enter(self.snd_una)
                    && (self.recovery.dupacks >= DUP_THRESH
                        || (self.sack_enabled && self.scoreboard.is_lost(self.snd_una, smss)))
                {
                    self.cc.on_congestion(now, self.flight());
                    self.recovery.enter(self.snd_una, self.snd_max, smss);
                    self.counters.tcp_fast_retrans.inc();
                    self.rtt_timed = None;
                }
            }
        }
        // Window update: "If SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK)".
        if self.snd_wl1 < seg.seq || (self.snd_wl1 == seg.seq && self.snd_wl2 <= ack) {
            self.snd_wnd = new_wnd;
            self.max_snd_wnd = self.max_snd_wnd.max(new_wnd);
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = ack;
            if new_wnd > 0 {
                self.timers.stop(Timer::Persist);
                self.persist_backoff = 0;
            }
        }
    }

    /// Segment text (RFC 9293 §3.10.7.4 seventh check): in-order data is published to the application,
    /// out-of-order data is written at its place in the receive buffer and remembered as a range.
    pub(super) fn process_text(&mut self, now: Instant, seq: Seq, payload: &[u8]) {
        let (mut start, mut data) = (seq, payload);
        if start < self.rcv_nxt {
            let skip = (self.rcv_nxt - start) as usize;
            if skip >= data.len() {
                self.ack_now = true; // a duplicate: tell the peer where we are
                return;
            }
            data = &data[skip..];
            start = self.rcv_nxt;
        }
        let offset = (start - self.rcv_nxt) as usize;
        let room = self.rx.free();
        if offset >= room {
            self.counters.tcp_ofo_drop.inc();
            self.ack_now = true;
            return;
        }
        let take = data.len().min(room - offset);
        let written = self.rx.write_at(offset, &data[..take]);
        if written == 0 {
            return;
        }
        if offset == 0 {
            let had_gap = !self.ooo.is_empty();
            let end = start + written;
            let new_nxt = self.ooo.advance(end).unwrap_or(end);
            let n = (new_nxt - self.rcv_nxt) as usize;
            self.rx.commit(n);
            self.rcv_nxt = new_nxt;
            self.bytes_received += n as u64;
            self.events |= events::READABLE;
            if had_gap {
                // RFC 5681 §4.2: ACK at once when a segment fills (part of) a gap.
                self.ack_now = true;
            } else {
                // Delayed ACK: at least every second full-sized segment, and within the delay.
                self.segs_unacked += 1;
                if self.segs_unacked >= 2 {
                    self.ack_now = true;
                } else {
                    self.delay_ack(now);
                }
            }
        } else {
            // RFC 5681 §4.2: an out-of-order segment is acknowledged at once (a duplicate ACK).
            let end = start + written;
            if self.ooo.is_empty() {
                self.ooo.reset(self.rcv_nxt);
            }
            if self.ooo.insert(start, end) {
                self.last_ooo = Some((start, end));
                self.counters.tcp_ofo_queue.inc();
            } else {
                // Too many holes to track: the bytes stay unpublished and will be overwritten.
                self.counters.tcp_ofo_drop.inc();
            }
            self.ack_now = true;
        }
    }

    /// Once every byte before the peer's FIN has arrived, take the FIN (RFC 9293 §3.10.7.4 eighth check).
    pub(super) fn check_peer_fin(&mut self, now: Instant) {
        let Some(at) = self.peer_fin else { return };
        if self.peer_fin_done || at != self.rcv_nxt {
            return;
        }
        self.peer_fin_done = true;
        self.rcv_nxt += 1;
        self.rx.close();
        self.events |= events::READABLE;
        // In ESTABLISHED the application is likely to close now that it has read the end of the
        // stream: the ACK of this FIN waits (at most the delayed-ACK time) to ride on our own FIN, as
        // Linux's pingpong mode does. Every other state ACKs the FIN at once.
        if matches!(self.state, State::SynReceived | State::Established) {
            self.set_state(State::CloseWait);
            self.delay_ack(now);
            return;
        }
        self.ack_now = true;
        match self.state {
            State::FinWait1 if self.fin_acked() => self.enter_time_wait(now),
            State::FinWait1 => self.set_state(State::Closing),
            State::FinWait2 => self.enter_time_wait(now),
            State::TimeWait => self.timers.set(Timer::Close, now + self.config.msl * 2),
            _ => {}
        }
    }

    /// Start the delayed-ACK timer unless it runs already (an earlier segment set the deadline).
    fn delay_ack(&mut self, now: Instant) {
        if !self.timers.is_running(Timer::DelayedAck) {
            self.timers.set(Timer::DelayedAck, now + self.config.delayed_ack);
        }
    }
}

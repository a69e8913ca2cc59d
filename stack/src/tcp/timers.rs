//! Timers are data: one `Option<Instant>` per kind, and the next timeout is their minimum. The worker
//! keeps connections in its own heap keyed by [`Timers::next`].

use std::time::{Duration, Instant};

use super::conn::Connection;
use super::{State, TcpError};

/// The timers of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Retransmission (RFC 6298), also for SYN and FIN.
    Retransmit = 0,
    /// Zero-window probe (RFC 9293 §3.8.6.1).
    Persist = 1,
    /// Delayed ACK (RFC 1122 §4.2.3.2).
    DelayedAck = 2,
    /// Keepalive (RFC 1122 §4.2.3.6).
    Keepalive = 3,
    /// 2·MSL in TIME-WAIT, or the FIN-WAIT-2 timeout of an orphaned connection.
    Close = 4,
}

const KINDS: usize = 5;

/// When each timer fires (None: not running).
#[derive(Debug, Clone, Default)]
pub struct Timers {
    at: [Option<Instant>; KINDS],
}

impl Timers {
    /// Start (or restart) `t` to fire at `when`.
    pub fn set(&mut self, t: Timer, when: Instant) {
        self.at[t as usize] = Some(when);
    }

    /// Stop `t`.
    pub fn stop(&mut self, t: Timer) {
        self.at[t as usize] = None;
    }

    /// Stop every timer.
    pub fn stop_all(&mut self) {
        self.at = [None; KINDS];
    }

    /// Is `t` running?
    pub fn is_running(&self, t: Timer) -> bool {
        self.at[t as usize].is_some()
    }

    /// When `t` fires.
    pub fn get(&self, t: Timer) -> Option<Instant> {
        self.at[t as usize]
    }

    /// If `t` is due at `now`, stop it and return true.
    pub fn expire(&mut self, t: Timer, now: Instant) -> bool {
        match self.at[t as usize] {
            Some(when) if when <= now => {
                self.at[t as usize] = None;
                true
            }
            _ => false,
        }
    }

    /// The earliest running timer.
    pub fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }
}

impl Connection {
    /// Run the timers that are due at `now` (call when `now >= poll_timeout()`), then drain
    /// `poll_transmit`.
    pub fn on_timeout(&mut self, now: Instant) {
        if self.timers.expire(Timer::Close, now) {
            // End of TIME-WAIT, or an orphan that waited in FIN-WAIT-2 long enough.
            self.enter_closed(None);
            return;
        }
        if self.timers.expire(Timer::Retransmit, now) {
            self.on_retransmit_timeout(now);
            if self.state == State::Closed {
                return;
            }
        }
        if self.timers.expire(Timer::DelayedAck, now) {
            self.ack_now = true;
        }
        if self.timers.expire(Timer::Persist, now) {
            let unsent = (self.data_end() - self.snd_nxt).max(0) as usize;
            if self.snd_wnd == 0 && unsent > 0 {
                self.probe_pending = true;
                self.persist_backoff = self.persist_backoff.saturating_add(1);
                self.arm_persist(now);
            }
        }
        if self.timers.expire(Timer::Keepalive, now) {
            self.on_keepalive_timeout(now);
        }
    }

    /// RFC 6298 §5.4-5.7 (and SYN/SYN-ACK retransmission): resend from snd_una, back off, and give up
    /// after the configured number of tries.
    fn on_retransmit_timeout(&mut self, now: Instant) {
        if self.snd_una == self.snd_max && !matches!(self.state, State::SynSent | State::SynReceived) {
            return;
        }
        self.counters.tcp_timeouts.inc();
        self.retries += 1;
        let limit = match self.state {
            State::SynSent => self.config.syn_retries,
            State::SynReceived => self.config.synack_retries,
            _ => self.config.max_retries,
        };
        if self.retries > limit {
            let err = self.soft_error.unwrap_or(TcpError::TimedOut);
            if self.state == State::SynSent {
                self.counters.tcp_attempt_fails.inc();
            } else {
                self.counters.tcp_abort_on_timeout.inc();
            }
            // A passive half-open connection simply goes; everything else reports the timeout.
            let report = self.state != State::SynReceived || self.simultaneous_open;
            self.enter_closed(report.then_some(err));
            return;
        }
        self.rtt.back_off();
        self.rtt_timed = None;
        self.rto_tsval = self.ts_now(now);
        if self.state.is_synchronized() {
            self.cc.on_rto(now, self.flight());
        }
        self.recovery.on_timeout(self.snd_max);
        // The SACK scoreboard is kept (RFC 6675 §5.1 allows it, Linux does it): what the peer holds is
        // skipped while resending. Go back: the rest from snd_una goes again as the window allows.
        self.snd_nxt = self.snd_una;
        self.rto_pending = true;
        self.timers.set(Timer::Retransmit, now + self.rtt.rto());
    }

    /// RFC 1122 §4.2.3.6: probe an idle connection; drop it after `count` unanswered probes.
    fn on_keepalive_timeout(&mut self, now: Instant) {
        let Some(k) = self.keepalive else { return };
        if !matches!(self.state, State::Established | State::CloseWait | State::FinWait2) {
            return;
        }
        if self.flight() > 0 {
            // Retransmissions are already testing the path.
            self.timers.set(Timer::Keepalive, now + k.interval);
            return;
        }
        if self.keepalive_probes >= k.count {
            self.counters.tcp_abort_on_timeout.inc();
            let err = self.soft_error.unwrap_or(TcpError::TimedOut);
            self.enter_closed(Some(err));
            return;
        }
        let idle = now.saturating_duration_since(self.last_recv);
        if idle + Duration::from_millis(1) >= k.idle || self.keepalive_probes > 0 {
            self.probe_pending = true;
            self.keepalive_probes += 1;
            self.timers.set(Timer::Keepalive, now + k.interval);
        } else {
            self.timers.set(Timer::Keepalive, self.last_recv + k.idle);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn next_is_the_minimum_and_expiry_stops() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        assert_eq!(t.next(), None);
        t.set(Timer::Retransmit, t0 + Duration::from_secs(1));
        t.set(Timer::DelayedAck, t0 + Duration::from_millis(40));
        assert_eq!(t.next(), Some(t0 + Duration::from_millis(40)));
        assert!(!t.expire(Timer::Retransmit, t0 + Duration::from_millis(40)));
        assert!(t.expire(Timer::DelayedAck, t0 + Duration::from_millis(40)));
        assert!(!t.is_running(Timer::DelayedAck));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(1)));
        t.stop_all();
        assert_eq!(t.next(), None);
    }
}

//! NewReno window sizing: RFC 5681 §3.1 slow start and congestion avoidance, with RFC 3465
//! appropriate byte counting (L = 1 SMSS), the RFC 5681 eq. (4) reduction on loss, and RFC 6582's
//! full-window deflation when recovery ends.
//!
//! RFC 6582's recovery itself (the `recover` point, partial ACKs, retransmitting the next hole) and
//! the temporary inflation of the window by the duplicate ACKs that arrive during fast recovery are
//! the connection's: it counts them through its `pipe` estimate (RFC 6675), so this controller
//! never inflates `cwnd` and only reports the window the connection sends against.

use std::time::Instant;

use super::{initial_window, CongestionControl, RttInfo};

/// The largest SMSS taken: the MSS option is 16 bits (RFC 9293 §3.2). Keeps window arithmetic on
/// absurd inputs from overflowing.
const MAX_MSS: usize = u16::MAX as usize;

/// RFC 5681 / RFC 6582 NewReno.
#[derive(Debug, Clone)]
pub struct NewReno {
    mss: usize,
    cwnd: usize,
    ssthresh: usize,
    /// RFC 3465 `bytes_acked`: bytes acknowledged in congestion avoidance since `cwnd` last grew.
    bytes_acked: usize,
    /// Between `on_congestion` and `on_recovery_exit` (or an RTO, which ends recovery).
    in_recovery: bool,
    /// An RTO fired and no new data has been acknowledged since: a further RTO is a backoff.
    rto_backoff: bool,
    /// No ACK or congestion event yet, so a new SMSS may still resize the initial window.
    pristine: bool,
}

impl NewReno {
    /// A controller for SMSS `mss`: `cwnd` is the RFC 6928 initial window, `ssthresh` unbounded.
    pub fn new(mss: usize) -> NewReno {
        let mss = mss.clamp(1, MAX_MSS);
        NewReno {
            mss,
            cwnd: initial_window(mss),
            ssthresh: usize::MAX,
            bytes_acked: 0,
            in_recovery: false,
            rto_backoff: false,
            pristine: true,
        }
    }

    /// RFC 5681 eq. (4): `ssthresh = max(FlightSize / 2, 2 * SMSS)`.
    fn halved(&self, flight: usize) -> usize {
        (flight / 2).max(2 * self.mss)
    }
}

impl CongestionControl for NewReno {
    fn cwnd(&self) -> usize {
        self.cwnd
    }

    fn ssthresh(&self) -> usize {
        self.ssthresh
    }

    fn on_ack(&mut self, _now: Instant, acked: usize, _rtt: RttInfo, app_limited: bool) {
        if acked == 0 {
            return;
        }
        self.pristine = false;
        self.rto_backoff = false;
        // RFC 7661: a window that is not being filled is not being validated; do not grow it.
        if app_limited {
            return;
        }
        if self.cwnd < self.ssthresh {
            // RFC 5681 eq. (2), RFC 3465 with L = 1 SMSS: cwnd += min(N, SMSS).
            self.cwnd = self.cwnd.saturating_add(acked.min(self.mss));
        } else {
            // RFC 5681 §3.1 / RFC 3465 §2.1: one SMSS for every cwnd bytes acknowledged. This is
            // the exact form of the per-ACK approximation `cwnd += SMSS * SMSS / cwnd`.
            self.bytes_acked = self.bytes_acked.saturating_add(acked);
            if self.bytes_acked >= self.cwnd {
                self.bytes_acked -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(self.mss);
            }
        }
    }

    fn on_congestion(&mut self, _now: Instant, flight: usize) {
        self.pristine = false;
        // RFC 5681 §3.2 step 2 (RFC 6582 §3.2 step 2 refers to it): eq. (4). The RFC's
        // `cwnd = ssthresh + 3 * SMSS` inflation is left to the connection: the three segments that
        // left the network are already out of its `pipe`.
        self.ssthresh = self.halved(flight);
        self.cwnd = self.ssthresh;
        self.bytes_acked = 0;
        self.in_recovery = true;
    }

    fn on_recovery_exit(&mut self, _now: Instant) {
        // RFC 6582 §3.2 step 3 option (2): "Set cwnd to ssthresh" (the "min(ssthresh, FlightSize +
        // SMSS)" variant needs FlightSize, which the controller does not see here). After an RTO
        // the window is the loss window and recovery is already over: nothing to deflate.
        if self.in_recovery {
            self.cwnd = self.ssthresh;
            self.in_recovery = false;
        }
    }

    fn on_rto(&mut self, _now: Instant, flight: usize) {
        self.pristine = false;
        // RFC 5681 §3.1: "If the segment has already been retransmitted by the retransmission timer
        // at least once, the value of ssthresh is held constant." A second RTO with no new data
        // acknowledged in between is that backoff.
        if !self.rto_backoff {
            self.ssthresh = self.halved(flight);
        }
        // RFC 5681 eq. (5): LW = 1 SMSS.
        self.cwnd = self.mss;
        self.bytes_acked = 0;
        self.in_recovery = false;
        self.rto_backoff = true;
    }

    fn set_mss(&mut self, mss: usize) {
        self.mss = mss.clamp(1, MAX_MSS);
        // Before anything was sent against it, the initial window follows the settled SMSS.
        if self.pristine {
            self.cwnd = initial_window(self.mss);
        }
    }

    fn name(&self) -> &'static str {
        "newreno"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MSS: usize = 1000;
    const RTT: Duration = Duration::from_millis(50);

    fn rtt() -> RttInfo {
        RttInfo { srtt: Some(RTT), min_rtt: Some(RTT) }
    }

    /// One round trip of a full window: every segment of `cwnd` (as it was when the round began)
    /// is acknowledged by its own ACK, spread over the RTT.
    fn round(cc: &mut NewReno, now: &mut Instant) {
        let segments = cc.cwnd() / MSS;
        for _ in 0..segments {
            cc.on_ack(*now, MSS, rtt(), false);
        }
        *now += RTT;
    }

    /// A controller in congestion avoidance at `cwnd` segments, via a loss at twice that.
    fn in_avoidance(segments: usize, now: Instant) -> NewReno {
        let mut cc = NewReno::new(MSS);
        cc.on_congestion(now, 2 * segments * MSS);
        cc.on_recovery_exit(now);
        assert_eq!(cc.cwnd(), segments * MSS);
        assert!(!cc.in_slow_start());
        cc
    }

    #[test]
    fn test_new_starts_at_initial_window() {
        let cc = NewReno::new(1460);
        assert_eq!(cc.cwnd(), 14600);
        assert_eq!(cc.ssthresh(), usize::MAX);
        assert!(cc.in_slow_start());
        assert_eq!(cc.name(), "newreno");
    }

    #[test]
    fn test_slow_start_doubles_per_rtt() {
        let mut now = Instant::now();
        let mut cc = NewReno::new(MSS);
        assert_eq!(cc.cwnd(), 10 * MSS);
        for expected in [20, 40, 80, 160] {
            round(&mut cc, &mut now);
            assert_eq!(cc.cwnd(), expected * MSS);
        }
    }

    #[test]
    fn test_slow_start_counts_at_most_one_mss_per_ack() {
        let mut cc = NewReno::new(MSS);
        // A stretch ACK for five segments still grows the window by one SMSS (RFC 3465 L = 1).
        cc.on_ack(Instant::now(), 5 * MSS, rtt(), false);
        assert_eq!(cc.cwnd(), 11 * MSS);
        // A partial segment grows it by what was acknowledged.
        cc.on_ack(Instant::now(), 100, rtt(), false);
        assert_eq!(cc.cwnd(), 11 * MSS + 100);
    }

    #[test]
    fn test_avoidance_grows_one_mss_per_window() {
        let mut now = Instant::now();
        let mut cc = in_avoidance(50, now);
        for rounds in 1..=20 {
            round(&mut cc, &mut now);
            assert_eq!(cc.cwnd(), (50 + rounds) * MSS);
        }
    }

    #[test]
    fn test_avoidance_byte_counting_needs_a_full_window() {
        let now = Instant::now();
        let mut cc = in_avoidance(10, now);
        for _ in 0..9 {
            cc.on_ack(now, MSS, rtt(), false);
        }
        assert_eq!(cc.cwnd(), 10 * MSS);
        // Half a segment short of a window, then the rest of it.
        cc.on_ack(now, MSS / 2, rtt(), false);
        assert_eq!(cc.cwnd(), 10 * MSS);
        cc.on_ack(now, MSS / 2, rtt(), false);
        assert_eq!(cc.cwnd(), 11 * MSS);
    }

    #[test]
    fn test_slow_start_ends_at_ssthresh() {
        let mut now = Instant::now();
        let mut cc = NewReno::new(MSS);
        cc.on_rto(now, 64 * MSS);
        assert_eq!(cc.ssthresh(), 32 * MSS);
        // 1, 2, 4, 8, 16, then 32 segments, then linear.
        for _ in 0..4 {
            round(&mut cc, &mut now);
            assert!(cc.cwnd() < 32 * MSS);
        }
        round(&mut cc, &mut now);
        assert_eq!(cc.cwnd(), 32 * MSS);
        assert!(!cc.in_slow_start());
        round(&mut cc, &mut now);
        assert_eq!(cc.cwnd(), 33 * MSS);
    }

    #[test]
    fn test_congestion_halves_flight() {
        let now = Instant::now();
        let mut cc = NewReno::new(MSS);
        cc.on_congestion(now, 100 * MSS);
        assert_eq!(cc.ssthresh(), 50 * MSS);
        assert_eq!(cc.cwnd(), 50 * MSS);
        cc.on_recovery_exit(now);
        assert_eq!(cc.cwnd(), 50 * MSS);
    }

    #[test]
    fn test_congestion_uses_flight_not_cwnd() {
        let now = Instant::now();
        let mut cc = NewReno::new(MSS);
        // cwnd is 10 segments, but the connection reports 30 in flight (RFC 5681 eq. (4) is on
        // FlightSize).
        cc.on_congestion(now, 30 * MSS);
        assert_eq!(cc.ssthresh(), 15 * MSS);
    }

    #[test]
    fn test_ssthresh_floor_is_two_mss() {
        let now = Instant::now();
        let mut cc = NewReno::new(MSS);
        cc.on_congestion(now, MSS);
        assert_eq!(cc.ssthresh(), 2 * MSS);
        assert_eq!(cc.cwnd(), 2 * MSS);
        let mut cc = NewReno::new(MSS);
        cc.on_rto(now, 0);
        assert_eq!(cc.ssthresh(), 2 * MSS);
        assert_eq!(cc.cwnd(), MSS);
    }

    #[test]
    fn test_rto_collapses_to_loss_window() {
        let mut now = Instant::now();
        let mut cc = in_avoidance(40, now);
        round(&mut cc, &mut now);
        cc.on_rto(now, 41 * MSS);
        assert_eq!(cc.cwnd(), MSS);
        assert_eq!(cc.ssthresh(), 41 * MSS / 2);
        assert!(cc.in_slow_start());
    }

    #[test]
    fn test_repeated_rto_holds_ssthresh() {
        let now = Instant::now();
        let mut cc = NewReno::new(MSS);
        cc.on_rto(now, 40 * MSS);
        assert_eq!(cc.ssthresh(), 20 * MSS);
        // The retransmission times out again: only one segment is in flight, yet ssthresh stays.
        cc.on_rto(now, MSS);
        assert_eq!(cc.ssthresh(), 20 * MSS);
        assert_eq!(cc.cwnd(), MSS);
        // New data acknowledged ends the backoff; the next RTO is a fresh loss.
        cc.on_ack(now, MSS, rtt(), false);
        cc.on_rto(now, 8 * MSS);
        assert_eq!(cc.ssthresh(), 4 * MSS);
    }

    #[test]
    fn test_rto_in_recovery_ends_it() {
        let now = Instant::now();
        let mut cc = NewReno::new(MSS);
        cc.on_congestion(now, 40 * MSS);
        cc.on_rto(now, 40 * MSS);
        assert_eq!(cc.cwnd(), MSS);
        // A late recovery exit does not undo the loss window.
        cc.on_recovery_exit(now);
        assert_eq!(cc.cwnd(), MSS);
    }

    #[test]
    fn test_app_limited_does_not_grow() {
        let mut now = Instant::now();
        let mut cc = NewReno::new(MSS);
        for _ in 0..100 {
            cc.on_ack(now, MSS, rtt(), true);
        }
        assert_eq!(cc.cwnd(), 10 * MSS);
        let mut cc = in_avoidance(10, now);
        for _ in 0..100 {
            cc.on_ack(now, MSS, rtt(), true);
        }
        assert_eq!(cc.cwnd(), 10 * MSS);
        // App-limited ACKs do not count towards the next increase either.
        round(&mut cc, &mut now);
        assert_eq!(cc.cwnd(), 11 * MSS);
    }

    #[test]
    fn test_set_mss_resizes_initial_window_only_before_use() {
        let now = Instant::now();
        let mut cc = NewReno::new(536);
        assert_eq!(cc.cwnd(), 5360);
        cc.set_mss(1460);
        assert_eq!(cc.cwnd(), 14600);
        cc.on_ack(now, 1460, rtt(), false);
        assert_eq!(cc.cwnd(), 16060);
        cc.set_mss(1000);
        assert_eq!(cc.cwnd(), 16060);
        cc.on_congestion(now, 10_000);
        assert_eq!(cc.ssthresh(), 5000);
    }

    #[test]
    fn test_degenerate_inputs_do_not_panic() {
        let now = Instant::now();
        let mut cc = NewReno::new(0);
        cc.on_ack(now, usize::MAX, RttInfo::default(), false);
        cc.on_congestion(now, usize::MAX);
        cc.on_recovery_exit(now);
        for _ in 0..3 {
            cc.on_ack(now, usize::MAX, RttInfo::default(), false);
        }
        cc.on_rto(now, 0);
        cc.set_mss(0);
        cc.on_ack(now, 0, RttInfo::default(), false);
        assert!(cc.cwnd() >= 1);
        assert!(cc.ssthresh() >= 2);
    }
}

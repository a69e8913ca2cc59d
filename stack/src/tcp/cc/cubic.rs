//! CUBIC window sizing, RFC 9438: the cubic window function W_cubic(t) = C * (t - K)^3 + W_max
//! (§4.2), the Reno-friendly region (§4.3), the concave and convex regions (§4.4, §4.5),
//! multiplicative decrease by beta_cubic = 0.7 (§4.6), fast convergence (§4.7) and the timeout
//! rules (§4.8). Slow start is RFC 5681's (§4.10 allows it; no HyStart).
//!
//! Windows are kept in bytes; the cubic function works in segments of the current SMSS, with time in
//! seconds, in `f64`. Growth uses byte counting: an ACK for `acked` bytes counts as `acked / SMSS`
//! of the RFC's per-segment ACKs, so `cwnd += (target - cwnd) / cwnd` per ACK becomes
//! `cwnd += (target - cwnd) * acked / cwnd` in bytes, with the fraction of a byte carried over.

use std::time::{Duration, Instant};

use super::{initial_window, CongestionControl, RttInfo};

/// The largest SMSS taken: the MSS option is 16 bits (RFC 9293 §3.2). Keeps window arithmetic on
/// absurd inputs from overflowing.
const MAX_MSS: usize = u16::MAX as usize;

/// RFC 9438 §4.2, §5.1: the cubic function's scaling constant C, in segments per second cubed.
pub const C: f64 = 0.4;
/// RFC 9438 §4.6: the multiplicative decrease factor beta_cubic.
pub const BETA_CUBIC: f64 = 0.7;
/// RFC 9438 §4.3: alpha_cubic = 3 * (1 - beta_cubic) / (1 + beta_cubic), so that CUBIC's average
/// window in the Reno-friendly region equals Reno's.
pub const ALPHA_CUBIC: f64 = 3.0 * (1.0 - BETA_CUBIC) / (1.0 + BETA_CUBIC);

/// One congestion-avoidance stage (RFC 9438 §4.2: it begins at `t_epoch`).
#[derive(Debug, Clone, Copy)]
struct Epoch {
    /// t_epoch, moved forward across application-limited stretches so that `now - start` counts
    /// only the time during which the window could grow (§4.2, §5.8).
    start: Instant,
    /// K in seconds (Figure 2).
    k: f64,
    /// W_est in bytes (§4.3).
    w_est: f64,
}

/// RFC 9438 CUBIC.
#[derive(Debug, Clone)]
pub struct Cubic {
    mss: usize,
    cwnd: usize,
    /// The fraction of a byte of growth not yet in `cwnd` (byte counting with small increments).
    carry: f64,
    ssthresh: usize,
    /// W_max in bytes: the window just before the last reduction (§4.6), lowered by fast
    /// convergence (§4.7). Zero before the first congestion event.
    w_max: f64,
    /// cwnd_prior in bytes: the window when ssthresh was last set (§4.3 switches alpha at it).
    cwnd_prior: f64,
    /// The current congestion-avoidance stage; None in slow start, in recovery and until the first
    /// ACK after them.
    epoch: Option<Epoch>,
    /// The time of the last ACK, to take application-limited time out of `t`.
    last_ack: Instant,
    /// An RTO happened: the next stage uses K = 0 and W_max = cwnd_epoch (§4.8).
    after_rto: bool,
    /// Between `on_congestion` and `on_recovery_exit` (or an RTO, which ends recovery).
    in_recovery: bool,
    /// An RTO fired and no new data has been acknowledged since: a further RTO is a backoff.
    rto_backoff: bool,
    /// No ACK or congestion event yet, so a new SMSS may still resize the initial window.
    pristine: bool,
}

impl Cubic {
    /// A controller for SMSS `mss` starting at `now`: `cwnd` is the RFC 6928 initial window and
    /// `ssthresh` unbounded. Time only ever comes from the `now` arguments.
    pub fn new(mss: usize, now: Instant) -> Cubic {
        let mss = mss.clamp(1, MAX_MSS);
        Cubic {
            mss,
            cwnd: initial_window(mss),
            carry: 0.0,
            ssthresh: usize::MAX,
            w_max: 0.0,
            cwnd_prior: 0.0,
            epoch: None,
            last_ack: now,
            after_rto: false,
            in_recovery: false,
            rto_backoff: false,
            pristine: true,
        }
    }

    /// W_max in bytes (zero before the first congestion event). After an RTO it keeps its old value
    /// until the next congestion-avoidance stage replaces it (§4.8).
    pub fn w_max(&self) -> usize {
        self.w_max as usize
    }

    /// K of the current congestion-avoidance stage, None outside one.
    pub fn k(&self) -> Option<Duration> {
        self.epoch.and_then(|e| Duration::try_from_secs_f64(e.k).ok())
    }

    /// The window with its carried fraction, in bytes.
    fn exact_cwnd(&self) -> f64 {
        self.cwnd as f64 + self.carry
    }

    /// Grows the window to `bytes` (never shrinks it on an ACK).
    fn grow_to(&mut self, bytes: f64) {
        if bytes > self.exact_cwnd() {
            let whole = bytes.floor();
            self.cwnd = whole as usize;
            self.carry = bytes - whole;
        }
    }

    /// Sets the window after a reduction.
    fn reduce_to(&mut self, bytes: usize) {
        self.cwnd = bytes;
        self.carry = 0.0;
    }

    /// RFC 9438 §4.6: `ssthresh = max(window * beta_cubic, 2 * SMSS)`.
    fn decreased(&self, window: f64) -> usize {
        ((window * BETA_CUBIC).round() as usize).max(2 * self.mss)
    }

    /// W_cubic(t) in bytes (Figure 1), with `t` in seconds since the epoch began.
    fn w_cubic(&self, epoch: &Epoch, t: f64) -> f64 {
        C * (t - epoch.k).powi(3) * self.mss as f64 + self.w_max
    }

    /// The first ACK of a congestion-avoidance stage (§4.2).
    fn start_epoch(&mut self, now: Instant) -> Epoch {
        let cwnd_epoch = self.exact_cwnd();
        let k = if self.after_rto || self.w_max <= cwnd_epoch {
            // §4.8, after a timeout, and §4.10, a stage that starts at or above W_max: "K is set
            // to 0, and W_max is set to the congestion window size at the beginning of the current
            // congestion avoidance stage".
            self.w_max = cwnd_epoch;
            self.after_rto = false;
            0.0
        } else {
            // Figure 2: K = cubic_root((W_max - cwnd_epoch) / C), in segments.
            ((self.w_max - cwnd_epoch) / self.mss as f64 / C).cbrt()
        };
        // §4.3: "W_est is set equal to cwnd_epoch at the start of the congestion avoidance stage".
        let epoch = Epoch { start: now, k, w_est: cwnd_epoch };
        self.epoch = Some(epoch);
        epoch
    }

    /// Takes application-limited time out of the current stage's clock (§4.2: "The elapsed time t
    /// in Figure 1 MUST NOT include periods during which cwnd has not been updated due to
    /// application-limited behavior").
    fn pause_epoch(&mut self, now: Instant) {
        if let Some(epoch) = self.epoch.as_mut() {
            let idle = now.saturating_duration_since(self.last_ack.max(epoch.start));
            epoch.start = epoch.start.checked_add(idle).unwrap_or(now).min(now);
        }
    }

    /// One ACK in congestion avoidance (§4.2 - §4.5).
    fn avoid(&mut self, now: Instant, acked: usize, rtt: RttInfo) {
        let mut epoch = match self.epoch {
            Some(epoch) => epoch,
            None => self.start_epoch(now),
        };
        let cwnd = self.exact_cwnd();
        let acked = acked as f64;
        let mss = self.mss as f64;
        let t = now.saturating_duration_since(epoch.start).as_secs_f64();

        // §4.3: W_est += alpha_cubic * segments_acked / cwnd, with alpha_cubic = 1 once W_est has
        // reached cwnd_prior.
        let alpha = if epoch.w_est >= self.cwnd_prior { 1.0 } else { ALPHA_CUBIC };
        epoch.w_est += alpha * acked * mss / cwnd;
        self.epoch = Some(epoch);

        if self.w_cubic(&epoch, t) < epoch.w_est {
            // §4.3: "If so, CUBIC is in the Reno-friendly region and cwnd SHOULD be set to W_est".
            self.grow_to(epoch.w_est);
        } else {
            // §4.2: target = W_cubic(t + RTT) clamped to [cwnd, 1.5 * cwnd]; §4.4 / §4.5: cwnd
            // grows by (target - cwnd) / cwnd per ACK. Without an RTT sample there is no look-ahead.
            let lookahead = rtt.srtt.map_or(0.0, |srtt| srtt.as_secs_f64());
            let target = self.w_cubic(&epoch, t + lookahead).clamp(cwnd, 1.5 * cwnd);
            let increase = ((target - cwnd) * acked / cwnd).min(target - cwnd);
            self.grow_to(cwnd + increase);
        }
    }
}

impl CongestionControl for Cubic {
    fn cwnd(&self) -> usize {
        self.cwnd
    }

    fn ssthresh(&self) -> usize {
        self.ssthresh
    }

    fn on_ack(&mut self, now: Instant, acked: usize, rtt: RttInfo, app_limited: bool) {
        if acked == 0 {
            return;
        }
        self.pristine = false;
        self.rto_backoff = false;
        if app_limited {
            // §5.8: "CUBIC does not increase its congestion window if a flow is application
            // limited", and that time does not count in t.
            self.pause_epoch(now);
        } else if self.cwnd < self.ssthresh {
            // §4.10 with RFC 5681 eq. (2) and RFC 3465 L = 1 SMSS: cwnd += min(N, SMSS).
            self.grow_to(self.exact_cwnd() + acked.min(self.mss) as f64);
        } else {
            self.avoid(now, acked, rtt);
        }
        self.last_ack = now;
    }

    fn on_congestion(&mut self, _now: Instant, _flight: usize) {
        self.pristine = false;
        let cwnd = self.exact_cwnd();
        // §4.7 fast convergence: a loss before the window got back to W_max means the available
        // share shrank, so give some of it up: W_max = cwnd * (1 + beta_cubic) / 2.
        self.w_max = if cwnd < self.w_max { cwnd * (1.0 + BETA_CUBIC) / 2.0 } else { cwnd };
        // §4.6: the reduction is from cwnd, not FlightSize ("Some implementations of CUBIC currently
        // use cwnd instead of flight_size"). Their MUST, "use other measures to prevent cwnd from
        // growing when the volume of bytes in flight is smaller than cwnd", is `app_limited`.
        self.cwnd_prior = cwnd;
        self.ssthresh = self.decreased(cwnd);
        self.reduce_to(self.ssthresh);
        // A new stage (and K) starts with the first ACK in congestion avoidance after recovery.
        self.epoch = None;
        self.after_rto = false;
        self.in_recovery = true;
    }

    fn on_recovery_exit(&mut self, _now: Instant) {
        // The connection did any inflation through `pipe`; the window is what §4.6 left. After an
        // RTO ended recovery the loss window stays.
        if self.in_recovery {
            self.reduce_to(self.ssthresh);
            self.in_recovery = false;
        }
    }

    fn on_rto(&mut self, _now: Instant, flight: usize) {
        self.pristine = false;
        // §4.8: "CUBIC follows Reno to reduce cwnd [RFC5681] but sets ssthresh using beta_cubic".
        // RFC 5681 §3.1 computes the timeout's ssthresh from FlightSize, and holds it constant for
        // a retransmission that times out again (an RTO with no new data acknowledged since).
        if !self.rto_backoff {
            self.cwnd_prior = self.exact_cwnd();
            self.ssthresh = self.decreased(flight as f64);
        }
        // RFC 5681 eq. (5): LW = 1 SMSS.
        self.reduce_to(self.mss);
        self.epoch = None;
        self.after_rto = true;
        self.in_recovery = false;
        self.rto_backoff = true;
    }

    fn set_mss(&mut self, mss: usize) {
        self.mss = mss.clamp(1, MAX_MSS);
        if self.pristine {
            self.reduce_to(initial_window(self.mss));
        }
        // K was in segments of the old SMSS: start the stage again from the current window.
        self.epoch = None;
    }

    fn name(&self) -> &'static str {
        "cubic"
    }
}

#[cfg(test)]
mod tests {
    use super::super::newreno::NewReno;
    use super::*;

    const MSS: usize = 1000;

    fn rtt_info(rtt: Duration) -> RttInfo {
        RttInfo { srtt: Some(rtt), min_rtt: Some(rtt) }
    }

    /// One round trip of a full window: every segment of `cwnd` (as it was when the round began) is
    /// acknowledged by its own ACK, the ACKs spread evenly over the RTT.
    fn round(cc: &mut dyn CongestionControl, now: &mut Instant, rtt: Duration) {
        let segments = (cc.cwnd() / MSS).max(1);
        let spacing = rtt / segments as u32;
        for i in 0..segments {
            cc.on_ack(*now + spacing * i as u32, MSS, rtt_info(rtt), false);
        }
        *now += rtt;
    }

    /// A controller that has just left recovery after a loss at `w_max` segments (the first loss,
    /// so no fast convergence).
    fn after_loss_at(w_max: usize, now: Instant) -> Cubic {
        let mut cc = Cubic::new(MSS, now);
        cc.cwnd = w_max * MSS;
        cc.on_congestion(now, w_max * MSS);
        cc.on_recovery_exit(now);
        cc
    }

    /// The RFC's Figure 1 in segments, computed here from the equations, not from the controller.
    fn figure_1(w_max: f64, k: f64, t: f64) -> f64 {
        C * (t - k).powi(3) + w_max
    }

    fn segments(bytes: usize) -> f64 {
        bytes as f64 / MSS as f64
    }

    #[test]
    fn test_new_starts_at_initial_window() {
        let cc = Cubic::new(1460, Instant::now());
        assert_eq!(cc.cwnd(), 14600);
        assert_eq!(cc.ssthresh(), usize::MAX);
        assert!(cc.in_slow_start());
        assert_eq!(cc.w_max(), 0);
        assert_eq!(cc.k(), None);
        assert_eq!(cc.name(), "cubic");
    }

    #[test]
    fn test_slow_start_doubles_per_rtt() {
        let mut now = Instant::now();
        let rtt = Duration::from_millis(50);
        let mut cc = Cubic::new(MSS, now);
        for expected in [20, 40, 80, 160] {
            round(&mut cc, &mut now, rtt);
            assert_eq!(cc.cwnd(), expected * MSS);
        }
    }

    #[test]
    fn test_congestion_reduces_by_beta() {
        let now = Instant::now();
        let mut cc = Cubic::new(MSS, now);
        cc.cwnd = 100 * MSS;
        // The reduction is from cwnd (§4.6), whatever the connection counts in flight.
        cc.on_congestion(now, 60 * MSS);
        assert_eq!(cc.w_max(), 100 * MSS);
        assert_eq!(cc.ssthresh(), 70 * MSS);
        assert_eq!(cc.cwnd(), 70 * MSS);
        cc.on_recovery_exit(now);
        assert_eq!(cc.cwnd(), 70 * MSS);
        assert!(!cc.in_slow_start());
    }

    #[test]
    fn test_ssthresh_floor_is_two_mss() {
        let now = Instant::now();
        let mut cc = Cubic::new(MSS, now);
        cc.cwnd = 2 * MSS;
        cc.on_congestion(now, 2 * MSS);
        assert_eq!(cc.ssthresh(), 2 * MSS);
        assert_eq!(cc.cwnd(), 2 * MSS);
        let mut cc = Cubic::new(MSS, now);
        cc.on_rto(now, MSS);
        assert_eq!(cc.ssthresh(), 2 * MSS);
    }

    #[test]
    fn test_k_follows_figure_2() {
        // W_max - cwnd_epoch = 0.3 * W_max = C * K^3: for W_max = 36 segments K is 3 s, for 288
        // segments 6 s.
        for (w_max, k) in [(36, 3.0), (288, 6.0)] {
            let now = Instant::now();
            let mut cc = after_loss_at(w_max, now);
            assert_eq!(cc.k(), None);
            cc.on_ack(now, MSS, rtt_info(Duration::from_millis(100)), false);
            let got = cc.k().unwrap().as_secs_f64();
            assert!((got - k).abs() < 1e-6, "W_max {w_max}: K {got}, want {k}");
        }
    }

    #[test]
    fn test_window_follows_w_cubic() {
        let rtt = Duration::from_millis(100);
        let start = Instant::now();
        let mut now = start;
        let mut cc = after_loss_at(288, now);
        // Two K of virtual time: the concave approach to W_max and the convex probe beyond it.
        while now - start < Duration::from_secs(12) {
            let t = (now - start).as_secs_f64();
            let want = figure_1(288.0, 6.0, t);
            let got = segments(cc.cwnd());
            // cwnd chases W_cubic(t + RTT) at (target - cwnd) / RTT, which keeps it on W_cubic(t).
            assert!((got - want).abs() <= 1.0, "t = {t:.1}s: cwnd {got:.1}, W_cubic {want:.1}");
            round(&mut cc, &mut now, rtt);
        }
        // And it ends well above the old W_max, where Reno would still be far below it.
        assert!(segments(cc.cwnd()) > 360.0);
    }

    #[test]
    fn test_plateau_near_w_max() {
        let rtt = Duration::from_millis(100);
        let start = Instant::now();
        let mut now = start;
        let mut cc = after_loss_at(288, now);
        let mut windows = Vec::new();
        while now - start <= Duration::from_secs(12) {
            windows.push(cc.cwnd());
            round(&mut cc, &mut now, rtt);
        }
        // One sample per 100 ms: index 60 is t = K = 6 s.
        let growth = |i: usize| segments(windows[i + 10]) - segments(windows[i]);
        let (early, plateau, late) = (growth(0), growth(55), growth(110));
        assert!(plateau < 1.0, "growth around K: {plateau}");
        assert!(early > 10.0 * plateau.max(0.1), "concave: {early} then {plateau}");
        assert!(late > 10.0 * plateau.max(0.1), "convex: {plateau} then {late}");
        // Concave region: below W_max until K, in it around K.
        assert!(windows[..55].iter().all(|&w| w < 288 * MSS));
        assert!((segments(windows[60]) - 288.0).abs() < 2.0);
    }

    #[test]
    fn test_reno_friendly_region_at_small_rtt() {
        // A small window and a 1 ms RTT: W_cubic hardly moves in 10 ms (K is 2.5 s), while Reno
        // would have added alpha_cubic segments per RTT.
        let rtt = Duration::from_millis(1);
        let start = Instant::now();
        let mut now = start;
        let mut cc = after_loss_at(20, now);
        for _ in 0..10 {
            round(&mut cc, &mut now, rtt);
        }
        let k = (6.0_f64 / C).cbrt();
        let w_cubic = figure_1(20.0, k, (now - start).as_secs_f64());
        let reno = 14.0 + 10.0 * ALPHA_CUBIC;
        let got = segments(cc.cwnd());
        assert!(w_cubic < 14.1, "W_cubic {w_cubic}");
        assert!(got > reno - 1.0 && got < reno + 0.5, "cwnd {got}, W_est {reno}");

        // Once W_est reaches cwnd_prior (20 segments) alpha_cubic becomes 1: a segment per RTT.
        while cc.cwnd() < 20 * MSS {
            round(&mut cc, &mut now, rtt);
        }
        let from = segments(cc.cwnd());
        for _ in 0..10 {
            round(&mut cc, &mut now, rtt);
        }
        let added = segments(cc.cwnd()) - from;
        assert!(added > 9.0 && added < 10.5, "added {added} segments in 10 RTTs");
    }

    #[test]
    fn test_target_is_at_most_one_and_a_half_cwnd() {
        // A 60 s RTT puts W_cubic(t + RTT) at tens of thousands of segments; §4.2 caps the target
        // at 1.5 * cwnd, so a window of ACKs adds at most half a window (half a segment per ACK).
        // The ACKs come 1 s into the stage, where W_cubic(t) (87 segments) is above W_est.
        let now = Instant::now();
        let rtt = rtt_info(Duration::from_secs(60));
        let mut cc = after_loss_at(100, now);
        cc.on_ack(now, MSS, rtt, false);
        let from = cc.cwnd();
        for _ in 0..70 {
            cc.on_ack(now + Duration::from_secs(1), MSS, rtt, false);
        }
        let added = cc.cwnd() - from;
        assert!((34_999..=35_000).contains(&added), "added {added} bytes");
    }

    #[test]
    fn test_fast_convergence_lowers_w_max() {
        let rtt = Duration::from_millis(100);
        let mut now = Instant::now();
        let mut cc = after_loss_at(100, now);
        for _ in 0..10 {
            round(&mut cc, &mut now, rtt);
        }
        let cwnd = cc.cwnd();
        assert!(cwnd > 70 * MSS && cwnd < 100 * MSS, "cwnd {cwnd}");
        // A second loss before W_max was reached: W_max = cwnd * (1 + 0.7) / 2.
        cc.on_congestion(now, cwnd);
        let want = cwnd as f64 * 0.85;
        assert!((cc.w_max() as f64 - want).abs() <= 1.0, "W_max {}, want {want}", cc.w_max());
        assert_eq!(cc.ssthresh(), (cwnd as f64 * 0.7).round() as usize);
    }

    #[test]
    fn test_loss_beyond_w_max_remembers_cwnd() {
        let rtt = Duration::from_millis(100);
        let start = Instant::now();
        let mut now = start;
        let mut cc = after_loss_at(36, now);
        // Past K = 3 s the window is beyond the old W_max.
        while now - start < Duration::from_secs(5) {
            round(&mut cc, &mut now, rtt);
        }
        let cwnd = cc.cwnd();
        assert!(cwnd > 36 * MSS);
        cc.on_congestion(now, cwnd);
        assert_eq!(cc.w_max(), cwnd);
    }

    #[test]
    fn test_rto_to_one_mss_then_k_zero() {
        let rtt = Duration::from_millis(100);
        let mut now = Instant::now();
        let mut cc = after_loss_at(100, now);
        for _ in 0..5 {
            round(&mut cc, &mut now, rtt);
        }
        cc.on_rto(now, 60 * MSS);
        assert_eq!(cc.cwnd(), MSS);
        assert_eq!(cc.ssthresh(), 42 * MSS);
        assert!(cc.in_slow_start());
        assert_eq!(cc.k(), None);
        // A second timeout of the retransmission keeps ssthresh (RFC 5681 §3.1).
        cc.on_rto(now, MSS);
        assert_eq!(cc.ssthresh(), 42 * MSS);
        // Slow start to ssthresh; until the next stage W_max is the one of before the timeout.
        while cc.in_slow_start() {
            assert_eq!(cc.w_max(), 100 * MSS);
            round(&mut cc, &mut now, rtt);
        }
        // §4.8: the first stage after the timeout (it began when cwnd reached ssthresh, 42
        // segments) has K = 0 and W_max = cwnd_epoch, so it grows from there at once (convex),
        // not towards the W_max of before the timeout.
        assert_eq!(cc.k(), Some(Duration::ZERO));
        assert_eq!(cc.w_max(), 42 * MSS);
        let from = cc.cwnd();
        round(&mut cc, &mut now, rtt);
        assert!(cc.cwnd() > from);
    }

    #[test]
    fn test_app_limited_neither_grows_nor_ages_the_curve() {
        let rtt = Duration::from_millis(100);
        let mut now = Instant::now();
        let mut busy = after_loss_at(200, now);
        let mut idle = busy.clone();
        let mut idle_now = now;
        for _ in 0..10 {
            round(&mut busy, &mut now, rtt);
            round(&mut idle, &mut idle_now, rtt);
        }
        // Ten seconds of application-limited ACKs: no growth in slow start or avoidance.
        let cwnd = idle.cwnd();
        for _ in 0..100 {
            idle_now += rtt;
            idle.on_ack(idle_now, MSS, rtt_info(rtt), true);
        }
        assert_eq!(idle.cwnd(), cwnd);
        // Afterwards it follows the same curve as a flow that was never limited: t did not run.
        for _ in 0..30 {
            round(&mut busy, &mut now, rtt);
            round(&mut idle, &mut idle_now, rtt);
        }
        let (b, i) = (segments(busy.cwnd()), segments(idle.cwnd()));
        assert!((b - i).abs() <= 1.0, "busy {b}, was idle {i}");

        let mut cc = Cubic::new(MSS, now);
        for _ in 0..100 {
            cc.on_ack(now, MSS, rtt_info(rtt), true);
        }
        assert_eq!(cc.cwnd(), 10 * MSS);
    }

    #[test]
    fn test_unknown_rtt_and_degenerate_inputs_do_not_panic() {
        let mut now = Instant::now();
        let mut cc = after_loss_at(50, now);
        for _ in 0..100 {
            now += Duration::from_millis(10);
            cc.on_ack(now, MSS, RttInfo::default(), false);
        }
        assert!(cc.cwnd() > 35 * MSS);

        let mut cc = Cubic::new(0, now);
        cc.on_congestion(now, 0);
        cc.on_recovery_exit(now);
        cc.on_ack(now, usize::MAX, RttInfo::default(), false);
        cc.on_ack(now + Duration::from_secs(1 << 40), usize::MAX, RttInfo::default(), false);
        // An ACK older than the epoch's start.
        cc.on_ack(now, 1, rtt_info(Duration::MAX), false);
        cc.on_rto(now, usize::MAX);
        cc.set_mss(0);
        cc.on_ack(now, 0, RttInfo::default(), false);
        assert!(cc.cwnd() >= 1);
    }

    #[test]
    fn test_set_mss_resizes_initial_window_only_before_use() {
        let now = Instant::now();
        let mut cc = Cubic::new(536, now);
        assert_eq!(cc.cwnd(), 5360);
        cc.set_mss(1460);
        assert_eq!(cc.cwnd(), 14600);
        cc.on_ack(now, 1460, rtt_info(Duration::from_millis(10)), false);
        cc.set_mss(1000);
        assert_eq!(cc.cwnd(), 16060);
    }

    /// The time-averaged window of a long flow over a path that holds `capacity` segments: a single
    /// loss whenever the window exceeds it, one RTT of recovery, then on. Averaged from the first
    /// loss on.
    fn sawtooth_average(cc: &mut dyn CongestionControl, capacity: usize, rtt: Duration) -> f64 {
        let start = Instant::now();
        let mut now = start;
        let mut sum = 0.0;
        let mut rounds = 0u32;
        let mut losses = 0u32;
        while now - start < Duration::from_secs(300) {
            if cc.cwnd() > capacity * MSS {
                cc.on_congestion(now, cc.cwnd());
                losses += 1;
                sum += segments(cc.cwnd());
                rounds += 1;
                now += rtt;
                cc.on_recovery_exit(now);
            } else {
                if losses > 0 {
                    sum += segments(cc.cwnd());
                    rounds += 1;
                }
                round(cc, &mut now, rtt);
            }
        }
        assert!(losses >= 3, "{}: only {losses} losses", cc.name());
        sum / rounds as f64
    }

    #[test]
    fn test_cubic_fills_a_large_bdp_better_than_newreno() {
        // 1000 segments of 1000 bytes at 100 ms: 80 Mbit/s. NewReno climbs back one segment per
        // RTT (50 s per sawtooth); CUBIC backs off less and returns to W_max in K (about 9 s).
        let rtt = Duration::from_millis(100);
        let now = Instant::now();
        let cubic = sawtooth_average(&mut Cubic::new(MSS, now), 1000, rtt);
        let newreno = sawtooth_average(&mut NewReno::new(MSS), 1000, rtt);
        assert!(newreno > 600.0 && newreno < 900.0, "NewReno average {newreno}");
        assert!(cubic > 1.1 * newreno, "CUBIC average {cubic}, NewReno {newreno}");
    }
}

//! Round-trip time estimation and the retransmission timeout (RFC 6298).

use std::time::Duration;

/// RFC 6298 §2 constants: alpha = 1/8, beta = 1/4, K = 4, G (clock granularity).
const K: u32 = 4;
const GRANULARITY: Duration = Duration::from_micros(1);

/// SRTT, RTTVAR and the RTO, with exponential backoff.
#[derive(Debug, Clone)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    latest: Option<Duration>,
    min_rtt: Option<Duration>,
    base_rto: Duration,
    backoff: u32,
    min_rto: Duration,
    max_rto: Duration,
}

impl RttEstimator {
    /// Before any sample the RTO is `initial` (RFC 6298 §2.1: 1 s), clamped to `[min, max]`.
    pub fn new(initial: Duration, min: Duration, max: Duration) -> RttEstimator {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            latest: None,
            min_rtt: None,
            base_rto: initial.clamp(min, max),
            backoff: 0,
            min_rto: min,
            max_rto: max,
        }
    }

    /// Take a measurement (RFC 6298 §2.2, §2.3). By Karn's rule the caller never measures a
    /// retransmitted segment. A valid sample also ends any backoff (§5.7).
    pub fn on_sample(&mut self, rtt: Duration) {
        self.latest = Some(rtt);
        self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
        match self.srtt {
            None => {
                // §2.2: SRTT <- R, RTTVAR <- R/2.
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                // §2.3: RTTVAR <- (1 - beta) * RTTVAR + beta * |SRTT - R'|, SRTT <- (1 - alpha) * SRTT + alpha * R'.
                let delta = srtt.abs_diff(rtt);
                self.rttvar = self.rttvar * 3 / 4 + delta / 4;
                self.srtt = Some(srtt * 7 / 8 + rtt / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(rtt);
        // RTO <- SRTT + max(G, K * RTTVAR), then §2.4/§2.5 bounds.
        self.base_rto = (srtt + GRANULARITY.max(self.rttvar * K)).clamp(self.min_rto, self.max_rto);
        self.backoff = 0;
    }

    /// The current RTO, backoff included.
    pub fn rto(&self) -> Duration {
        let factor = 1u32.checked_shl(self.backoff.min(16)).unwrap_or(u32::MAX);
        self.base_rto.saturating_mul(factor).min(self.max_rto)
    }

    /// §5.5: double the RTO after a timeout.
    pub fn back_off(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
    }

    /// How many times the RTO has been doubled since the last sample.
    pub fn backoff(&self) -> u32 {
        self.backoff
    }

    /// Smoothed RTT.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// RTT variation.
    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }

    /// Smallest sample.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    /// Latest sample.
    pub fn latest(&self) -> Option<Duration> {
        self.latest
    }

    /// SRTT and min RTT for congestion control.
    pub fn info(&self) -> super::cc::RttInfo {
        super::cc::RttInfo { srtt: self.srtt, min_rtt: self.min_rtt }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est() -> RttEstimator {
        RttEstimator::new(Duration::from_secs(1), Duration::from_millis(200), Duration::from_secs(60))
    }

    #[test]
    fn first_sample_sets_srtt_and_half_variance() {
        let mut e = est();
        assert_eq!(e.rto(), Duration::from_secs(1));
        e.on_sample(Duration::from_millis(100));
        assert_eq!(e.srtt(), Some(Duration::from_millis(100)));
        assert_eq!(e.rttvar(), Duration::from_millis(50));
        // 100 + 4 * 50 = 300 ms.
        assert_eq!(e.rto(), Duration::from_millis(300));
    }

    #[test]
    fn smoothing_follows_the_rfc_gains() {
        let mut e = est();
        e.on_sample(Duration::from_millis(100));
        e.on_sample(Duration::from_millis(200));
        // RTTVAR = 3/4 * 50 + 1/4 * 100 = 62.5; SRTT = 7/8 * 100 + 1/8 * 200 = 112.5.
        assert_eq!(e.rttvar(), Duration::from_micros(62_500));
        assert_eq!(e.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(e.rto(), Duration::from_micros(112_500 + 250_000));
    }

    #[test]
    fn bounds_and_backoff() {
        let mut e = est();
        e.on_sample(Duration::from_micros(50));
        assert_eq!(e.rto(), Duration::from_millis(200), "clamped to the minimum");
        e.back_off();
        e.back_off();
        assert_eq!(e.rto(), Duration::from_millis(800));
        for _ in 0..40 {
            e.back_off();
        }
        assert_eq!(e.rto(), Duration::from_secs(60), "clamped to the maximum, no overflow");
        e.on_sample(Duration::from_micros(50));
        assert_eq!(e.backoff(), 0, "a new sample ends the backoff");
        assert_eq!(e.min_rtt(), Some(Duration::from_micros(50)));
    }
}

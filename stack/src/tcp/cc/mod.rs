//! Congestion control: one trait, one file per algorithm, in the frame of RFC 5681. CUBIC (RFC 9438)
//! is the default; NewReno (RFC 5681 with RFC 6582's recovery) is selectable.
//!
//! The controller only sizes the congestion window. Deciding *what* to send in recovery (fast
//! retransmit, NewReno partial ACKs, the RFC 6675 SACK scoreboard and `pipe`) is the connection's job;
//! it tells the controller about the events below, and sends while `pipe < cwnd`.

use std::fmt;
use std::time::{Duration, Instant};

pub mod cubic;
pub mod newreno;

/// Which algorithm a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// RFC 9438.
    #[default]
    Cubic,
    /// RFC 5681 / RFC 6582.
    NewReno,
}

/// RTT facts a controller may use (CUBIC's TCP-friendly region and `t + RTT` target).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RttInfo {
    /// Smoothed RTT (RFC 6298), None before the first sample.
    pub srtt: Option<Duration>,
    /// Smallest RTT seen, None before the first sample.
    pub min_rtt: Option<Duration>,
}

/// RFC 6928: the initial window, `min(10 * MSS, max(2 * MSS, 14600))` bytes.
pub fn initial_window(mss: usize) -> usize {
    (10 * mss).min((2 * mss).max(14600))
}

/// A congestion controller. All sizes are in bytes; `mss` is the sender's SMSS.
pub trait CongestionControl: fmt::Debug + Send {
    /// The congestion window.
    fn cwnd(&self) -> usize;
    /// The slow-start threshold (`usize::MAX` until the first congestion event).
    fn ssthresh(&self) -> usize;
    /// True while in slow start (`cwnd < ssthresh`).
    fn in_slow_start(&self) -> bool {
        self.cwnd() < self.ssthresh()
    }
    /// `acked` bytes of new data were cumulatively acknowledged at `now`, outside loss recovery.
    /// `app_limited`: the sender did not have a full window in flight before this ACK (RFC 7661: do
    /// not grow a window that is not being used).
    fn on_ack(&mut self, now: Instant, acked: usize, rtt: RttInfo, app_limited: bool);
    /// A loss was detected by duplicate ACKs or SACK: fast recovery starts. `flight` is FlightSize.
    fn on_congestion(&mut self, now: Instant, flight: usize);
    /// Fast recovery ended (the recovery point was acknowledged).
    fn on_recovery_exit(&mut self, now: Instant);
    /// The retransmission timer expired. `flight` is FlightSize.
    fn on_rto(&mut self, now: Instant, flight: usize);
    /// The connection's SMSS (set once the handshake has settled it).
    fn set_mss(&mut self, mss: usize);
    /// A short name for tools (`cubic`, `newreno`).
    fn name(&self) -> &'static str;
}

/// A controller of kind `algo` for a connection with SMSS `mss`, starting at `now`.
pub fn new(algo: Algorithm, mss: usize, now: Instant) -> Box<dyn CongestionControl> {
    match algo {
        Algorithm::Cubic => Box::new(cubic::Cubic::new(mss, now)),
        Algorithm::NewReno => Box::new(newreno::NewReno::new(mss)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_window_follows_rfc_6928() {
        assert_eq!(initial_window(1460), 14600);
        assert_eq!(initial_window(536), 5360);
        assert_eq!(initial_window(9000), 18000);
        assert_eq!(initial_window(1000), 10000);
    }
}

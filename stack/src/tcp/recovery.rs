//! Loss recovery: fast retransmit and fast recovery (RFC 5681 §3.2), NewReno's partial ACKs
//! (RFC 6582) when the peer does not do SACK, and RFC 6675's conservative SACK-based recovery when it
//! does. The congestion controller sizes the window; this decides what to retransmit and how much may
//! be in flight.

use crate::wire::TcpSeqNumber as Seq;

/// RFC 5681 §3.2 / RFC 6675 §2: duplicate ACKs that start fast retransmit.
pub const DUP_THRESH: u32 = 3;

/// The recovery state of one connection.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// Duplicate ACKs in a row (RFC 5681 §2 definition).
    pub dupacks: u32,
    /// In fast recovery.
    pub active: bool,
    /// RFC 6582 "recover" / RFC 6675 "RecoveryPoint": the highest sequence number sent when recovery
    /// (or the last timeout) began; a new recovery starts only once the cumulative ACK passes it.
    pub point: Seq,
    /// RFC 6675 "HighRxt": the highest sequence number retransmitted in this recovery.
    pub high_rxt: Seq,
    /// RFC 6675 §4 NextSeg rule 4: one rescue retransmission per recovery.
    pub rescue_done: bool,
    /// Retransmit the segment at snd_una now (fast retransmit, or a NewReno partial ACK).
    pub retransmit_una: bool,
    /// NewReno (no SACK) window inflation: 3·SMSS at entry, one SMSS per further duplicate ACK,
    /// deflated by partial ACKs (RFC 6582 §3.2).
    pub inflation: usize,
}

impl Recovery {
    /// Idle recovery state for a connection whose ISS is `iss`.
    pub fn new(iss: Seq) -> Recovery {
        Recovery {
            dupacks: 0,
            active: false,
            point: iss,
            high_rxt: iss,
            rescue_done: false,
            retransmit_una: false,
            inflation: 0,
        }
    }

    /// Enter fast recovery: `snd_una` is presumed lost, `snd_max` is the recovery point.
    pub fn enter(&mut self, snd_una: Seq, snd_max: Seq, smss: usize) {
        self.active = true;
        self.point = snd_max;
        self.high_rxt = snd_una;
        self.rescue_done = false;
        self.retransmit_una = true;
        self.inflation = DUP_THRESH as usize * smss;
    }

    /// Leave fast recovery.
    pub fn exit(&mut self) {
        self.active = false;
        self.dupacks = 0;
        self.retransmit_una = false;
        self.inflation = 0;
    }

    /// A retransmission timeout: forget recovery, and do not fast-retransmit again until the
    /// cumulative ACK passes what was sent before the timeout (RFC 6582 §4 / RFC 6675 §5.1).
    pub fn on_timeout(&mut self, snd_max: Seq) {
        self.exit();
        self.point = snd_max;
        self.high_rxt = snd_max;
    }

    /// May a new recovery start with the cumulative ACK at `snd_una`? (RFC 6582 §3.2 step 2.)
    pub fn may_enter(&self, snd_una: Seq) -> bool {
        !self.active && snd_una >= self.point
    }

    /// RFC 6582 §3.2 step 5: a partial ACK acknowledged `acked` bytes; deflate the inflation by that
    /// amount and add back one SMSS, and retransmit the next unacknowledged segment.
    pub fn on_partial_ack(&mut self, acked: usize, smss: usize) {
        self.inflation = self.inflation.saturating_sub(acked) + smss;
        self.retransmit_una = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enter_partial_and_timeout() {
        let mut r = Recovery::new(Seq(100));
        assert!(r.may_enter(Seq(100)));
        r.enter(Seq(1000), Seq(9000), 1000);
        assert!(r.active && r.retransmit_una);
        assert_eq!(r.inflation, 3000);
        assert!(!r.may_enter(Seq(1000)));
        r.retransmit_una = false;
        r.on_partial_ack(2000, 1000);
        assert_eq!(r.inflation, 2000);
        assert!(r.retransmit_una);
        r.on_timeout(Seq(9500));
        assert!(!r.active);
        assert!(!r.may_enter(Seq(9000)), "no fast retransmit of what was sent before the timeout");
        assert!(r.may_enter(Seq(9500)));
    }
}

//! TCP (RFC 9293), sans-IO: the engine takes `now` and segments, returns segments and its next
//! timeout, and never reads a clock or touches a ring of the NIC.
//!
//! Split by code path:
//! - [`conn`]: the connection (TCB) and the calls an application makes (close, shutdown, abort);
//! - [`input`]: SEGMENT ARRIVES (RFC 9293 §3.10.7), with RFC 5961 and PAWS (RFC 7323) checks;
//! - [`output`]: what to send next: handshake, data (Nagle, silly-window avoidance), retransmissions,
//!   FIN, ACKs (delayed), window probes, keepalives;
//! - [`timers`]: the timer table (retransmission, persist, delayed ACK, keepalive, TIME-WAIT, FIN-WAIT-2);
//! - [`timewait`]: TIME-WAIT as a small record that replaces the connection once it has said everything;
//! - [`rtt`]: RFC 6298 RTO estimation; [`cc`]: congestion control (CUBIC default, NewReno);
//! - [`recovery`]: fast retransmit and recovery (RFC 5681, RFC 6582 NewReno, RFC 6675 SACK);
//! - [`sack`]: the SACK scoreboard and received ranges; [`listen`]: listeners, SYN queue, SYN cookies
//!   (RFC 4987); [`isn`]: initial sequence numbers (RFC 6528) and cookie MACs.
//!
//! Sequence arithmetic is `wire::TcpSeqNumber` (modulo 2^32 comparisons).

pub mod cc;
pub mod conn;
pub mod input;
pub mod isn;
pub mod listen;
pub mod output;
pub mod recovery;
pub mod rtt;
pub mod sack;
pub mod timers;
pub mod timewait;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use conn::{Connection, ConnectionParams, IcmpSignal, Segment};
pub use listen::Listener;

/// The states of RFC 9293 §3.3.2 (LISTEN belongs to [`Listener`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum State {
    /// No connection (initial, or final after a reset or the end of TIME-WAIT / LAST-ACK).
    Closed = 0,
    /// Listening (only listeners are in this state).
    Listen = 1,
    /// SYN sent, waiting for SYN-ACK.
    SynSent = 2,
    /// SYN received and SYN-ACK sent, waiting for the ACK.
    SynReceived = 3,
    /// Open.
    Established = 4,
    /// We closed (FIN sent), waiting for its ACK and the peer's FIN.
    FinWait1 = 5,
    /// Our FIN was acknowledged, waiting for the peer's FIN.
    FinWait2 = 6,
    /// The peer closed; we may still send.
    CloseWait = 7,
    /// Both closed at once; waiting for the ACK of our FIN.
    Closing = 8,
    /// The peer closed, then we did; waiting for the ACK of our FIN.
    LastAck = 9,
    /// Both closed; waiting 2·MSL for stray segments.
    TimeWait = 10,
}

impl State {
    /// The name `ss` prints (ESTAB, SYN-SENT, ...).
    pub fn ss_name(self) -> &'static str {
        match self {
            State::Closed => "CLOSE",
            State::Listen => "LISTEN",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECV",
            State::Established => "ESTAB",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
        }
    }

    /// The number Linux uses in /proc/net/tcp (include/net/tcp_states.h).
    pub fn linux_number(self) -> u8 {
        match self {
            State::Established => 1,
            State::SynSent => 2,
            State::SynReceived => 3,
            State::FinWait1 => 4,
            State::FinWait2 => 5,
            State::TimeWait => 6,
            State::Closed => 7,
            State::CloseWait => 8,
            State::LastAck => 9,
            State::Listen => 10,
            State::Closing => 11,
        }
    }

    /// From the `repr(u8)` value.
    pub fn from_u8(v: u8) -> State {
        match v {
            1 => State::Listen,
            2 => State::SynSent,
            3 => State::SynReceived,
            4 => State::Established,
            5 => State::FinWait1,
            6 => State::FinWait2,
            7 => State::CloseWait,
            8 => State::Closing,
            9 => State::LastAck,
            10 => State::TimeWait,
            _ => State::Closed,
        }
    }

    /// True once the three-way handshake is complete (and data may flow).
    pub fn is_synchronized(self) -> bool {
        !matches!(self, State::Closed | State::Listen | State::SynSent | State::SynReceived)
    }
}

/// Why a connection ended abnormally, as the socket API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpError {
    /// RST in answer to our SYN (ECONNREFUSED).
    Refused,
    /// RST on a synchronized connection (ECONNRESET).
    Reset,
    /// Retransmissions, the handshake or keepalive probes gave up (ETIMEDOUT).
    TimedOut,
    /// We aborted it (close with unread data, or an explicit abort) (ECONNABORTED).
    Aborted,
    /// An ICMP error said the peer cannot be reached (EHOSTUNREACH), reported when the connection
    /// times out (RFC 5927 soft error).
    HostUnreachable,
}

impl TcpError {
    /// The errno Linux would report.
    pub fn errno(self) -> i32 {
        match self {
            TcpError::Refused => libc::ECONNREFUSED,
            TcpError::Reset => libc::ECONNRESET,
            TcpError::TimedOut => libc::ETIMEDOUT,
            TcpError::Aborted => libc::ECONNABORTED,
            TcpError::HostUnreachable => libc::EHOSTUNREACH,
        }
    }
}

/// Keepalive timing (off unless set on a socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before the first probe (Linux default 7200 s).
    pub idle: Duration,
    /// Time between probes (Linux default 75 s).
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped (Linux default 9).
    pub count: u32,
}

/// Engine-wide TCP settings (per-socket ones are in [`ConnectionParams`]).
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// Maximum segment lifetime; TIME-WAIT lasts 2·MSL (Linux holds TIME-WAIT for 60 s).
    pub msl: Duration,
    /// Lower bound of the RTO (RFC 6298 says 1 s; Linux and this default use 200 ms).
    pub min_rto: Duration,
    /// Upper bound of the RTO.
    pub max_rto: Duration,
    /// The RTO before any RTT sample (RFC 6298: 1 s).
    pub initial_rto: Duration,
    /// SYN retransmissions before connect gives up (Linux tcp_syn_retries = 6).
    pub syn_retries: u32,
    /// SYN-ACK retransmissions before a half-open connection is dropped (Linux tcp_synack_retries = 5).
    pub synack_retries: u32,
    /// Retransmissions of data before the connection is dropped (Linux tcp_retries2 = 15).
    pub max_retries: u32,
    /// Longest delay of an ACK (RFC 1122 §4.2.3.2: at most 500 ms; RFC 9293 SHOULD be < 500 ms).
    pub delayed_ack: Duration,
    /// How long an orphaned connection waits in FIN-WAIT-2 for the peer's FIN (Linux tcp_fin_timeout).
    pub fin_wait2_timeout: Duration,
    /// Send and accept window scaling (RFC 7323).
    pub window_scaling: bool,
    /// Send and accept timestamps (RFC 7323).
    pub timestamps: bool,
    /// Offer and use SACK (RFC 2018, RFC 6675).
    pub sack: bool,
    /// Congestion control algorithm.
    pub cc: cc::Algorithm,
    /// Half-open connections per listener per worker before SYN cookies take over.
    pub syn_queue: usize,
    /// Challenge ACKs per connection per second (RFC 5961 §7).
    pub challenge_acks_per_sec: u32,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            msl: Duration::from_secs(30),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(120),
            initial_rto: Duration::from_secs(1),
            syn_retries: 6,
            synack_retries: 5,
            max_retries: 15,
            delayed_ack: Duration::from_millis(40),
            fin_wait2_timeout: Duration::from_secs(60),
            window_scaling: true,
            timestamps: true,
            sack: true,
            cc: cc::Algorithm::Cubic,
            syn_queue: 256,
            challenge_acks_per_sec: 100,
        }
    }
}

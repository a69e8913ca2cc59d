//! The connection: its TCB (RFC 9293 §3.3.1), how it is made, and what the application side can ask
//! of it.
//!
//! Call order, all with the same monotonic `now`:
//! 1. create with [`Connection::connect`] (active open), [`Connection::accept`] (a SYN reached a
//!    listener) or [`Connection::from_cookie`] (a valid SYN-cookie ACK);
//! 2. for each arriving segment, [`Connection::on_segment`] (in `input.rs`);
//! 3. after input, application activity ([`Connection::on_app_activity`]) or a timeout
//!    ([`Connection::on_timeout`] when `now >= poll_timeout()`), drain [`Connection::poll_transmit`] until
//!    it returns None, copying each segment's payload with [`Connection::copy_payload`];
//! 4. [`Connection::poll_timeout`] says when to call again; [`Connection::take_events`] what to tell the
//!    application; [`Connection::is_finished`] when to forget the connection.
//!
//! Bytes never pass through the engine: the send buffer is the consumer half of a lock-free byte ring
//! the application writes into (offset 0 = `snd_una`), and the receive buffer the producer half of a ring
//! the application reads from (offset 0 = `rcv_nxt`; out-of-order data is written at its offset ahead of
//! the published head).

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::Instant;

use super::cc::{self, CongestionControl};
use super::recovery::Recovery;
use super::rtt::RttEstimator;
use super::sack::{ReceivedRanges, Scoreboard};
use super::timers::{Timer, Timers};
use super::{Keepalive, State, TcpConfig, TcpError};
use crate::counters::Counters;
use crate::socket::ring::{ByteRing, Consumer, Producer};
use crate::wire::{TcpRepr, TcpSeqNumber as Seq};

/// Application-visible events, accumulated until [`Connection::take_events`].
pub mod events {
    /// New data (or end of stream) to read.
    pub const READABLE: u8 = 1;
    /// Room in the send buffer.
    pub const WRITABLE: u8 = 2;
    /// State changed (connected, closed, error).
    pub const STATE: u8 = 4;
}

/// What an ICMP error tells a connection ([`Connection::on_icmp`]). Apart from ending a connection
/// attempt on a refusal, these are soft errors (RFC 5927 §4.1, RFC 1122 §4.2.3.9): remembered and
/// reported only if the connection times out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpSignal {
    /// Port or protocol unreachable (ECONNREFUSED).
    Refused,
    /// Host or network unreachable, time exceeded, parameter problem (EHOSTUNREACH).
    Unreachable,
    /// Fragmentation needed, with this next-hop MTU (RFC 1191): the MSS is lowered to fit.
    PathMtu(u16),
}

/// RFC 9293 §3.7.1: the MSS assumed when the peer sends no MSS option.
pub const DEFAULT_MSS: u16 = 536;

/// Per-connection settings.
#[derive(Debug, Clone)]
pub struct ConnectionParams {
    /// Our address.
    pub local: SocketAddrV4,
    /// The peer's address.
    pub remote: SocketAddrV4,
    /// MSS we advertise (from the interface MTU).
    pub mss: u16,
    /// Disable Nagle's algorithm.
    pub nodelay: bool,
    /// Keepalive probing, off when None.
    pub keepalive: Option<Keepalive>,
}

/// A segment to send: the header, and where its payload lies in the send buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Header and options; `repr.payload_len` bytes of payload follow.
    pub repr: TcpRepr,
    /// Offset of the payload in the send buffer (relative to `snd_una`).
    pub payload_offset: usize,
}

/// What `ss -i` shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpInfo {
    /// Smoothed RTT, microseconds.
    pub rtt_us: u64,
    /// RTT variation, microseconds.
    pub rttvar_us: u64,
    /// Retransmission timeout, microseconds.
    pub rto_us: u64,
    /// Congestion window, bytes.
    pub cwnd: u64,
    /// Slow-start threshold, bytes (u64::MAX: not set).
    pub ssthresh: u64,
    /// Sender MSS.
    pub mss: u32,
    /// Window scale shifts (ours for receiving, the peer's for sending).
    pub rcv_wscale: u8,
    /// The peer's window scale.
    pub snd_wscale: u8,
    /// Segments retransmitted.
    pub retransmits: u64,
    /// Bytes the peer acknowledged.
    pub bytes_acked: u64,
    /// Bytes received in order.
    pub bytes_received: u64,
    /// Bytes in flight.
    pub unacked: u64,
}

/// One TCP connection.
#[derive(Debug)]
pub struct Connection {
    pub(super) local: SocketAddrV4,
    pub(super) remote: SocketAddrV4,
    pub(super) state: State,
    pub(super) config: Arc<TcpConfig>,
    pub(super) counters: Arc<Counters>,
    pub(super) nodelay: bool,
    pub(super) keepalive: Option<Keepalive>,
    pub(super) keepalive_probes: u32,

    // Send sequence space (RFC 9293 §3.3.1).
    pub(super) iss: Seq,
    pub(super) snd_una: Seq,
    pub(super) snd_nxt: Seq,
    /// Highest sequence number sent + 1 (snd_nxt is rewound after a timeout; this is not).
    pub(super) snd_max: Seq,
    /// The peer's window, scaled.
    pub(super) snd_wnd: u32,
    pub(super) max_snd_wnd: u32,
    pub(super) snd_wl1: Seq,
    pub(super) snd_wl2: Seq,
    /// End of the last short (less than a full segment) segment sent: Minshall's Nagle test.
    pub(super) snd_sml: Seq,
    /// The sequence number of our FIN, once the application closed its sending side.
    pub(super) fin_seq: Option<Seq>,

    // Receive sequence space.
    pub(super) irs: Seq,
    pub(super) rcv_nxt: Seq,
    /// Right edge of the window we last advertised (it never moves left).
    pub(super) rcv_adv: Seq,
    pub(super) peer_fin: Option<Seq>,
    pub(super) ooo: ReceivedRanges,
    /// The most recently received out-of-order range, for the first SACK block (RFC 2018 §4).
    pub(super) last_ooo: Option<(Seq, Seq)>,

    // Options.
    /// Our MSS (advertised).
    pub(super) rcv_mss: u16,
    /// The peer's MSS (from its SYN).
    pub(super) snd_mss: u16,
    pub(super) snd_wscale: u8,
    pub(super) rcv_wscale: u8,
    pub(super) ts_enabled: bool,
    pub(super) ts_recent: u32,
    pub(super) ts_offset: u32,
    pub(super) epoch: Instant,
    pub(super) last_ack_sent: Seq,
    pub(super) sack_enabled: bool,

    // Buffers shared with the application.
    pub(super) tx: Consumer,
    pub(super) rx: Producer,

    // Timers, RTT, congestion, recovery.
    pub(super) timers: Timers,
    pub(super) rtt: RttEstimator,
    /// Karn's rule: the segment being timed (its end, its send time), dropped on any retransmission.
    pub(super) rtt_timed: Option<(Seq, Instant)>,
    /// Our TSval clock when the retransmission timer last fired (see `process_ack`).
    pub(super) rto_tsval: u32,
    /// Retransmissions since the last forward progress (for giving up).
    pub(super) retries: u32,
    pub(super) persist_backoff: u32,
    pub(super) cc: Box<dyn CongestionControl>,
    pub(super) recovery: Recovery,
    pub(super) scoreboard: Scoreboard,

    // What to send.
    /// An ACK is owed now.
    pub(super) ack_now: bool,
    /// Full segments received since our last ACK.
    pub(super) segs_unacked: u32,
    /// A retransmission timeout fired: resend from snd_una.
    pub(super) rto_pending: bool,
    /// A persist or keepalive probe is owed.
    pub(super) probe_pending: bool,
    /// A RST is owed (abort, or data for a closed application); the connection closes after it.
    pub(super) rst_pending: bool,
    /// A RST answering an unacceptable segment, with this sequence number (no ACK).
    pub(super) reply_rst: Option<Seq>,
    pub(super) challenge_window: (Instant, u32),
    /// The sender had less than a window to send (RFC 7661: the window is not being used).
    pub(super) app_limited: bool,
    /// Our SYN crossed the peer's (simultaneous open).
    pub(super) simultaneous_open: bool,
    /// The peer offered window scaling.
    pub(super) ws_ok: bool,
    /// The peer's FIN has been taken (rcv_nxt moved past it).
    pub(super) peer_fin_done: bool,

    // Bookkeeping for the application and tools.
    pub(super) events: u8,
    pub(super) error: Option<TcpError>,
    /// A soft error (ICMP) reported if the connection later times out (RFC 5927).
    pub(super) soft_error: Option<TcpError>,
    /// The application closed the socket entirely (it will never read again).
    pub(super) orphaned: bool,
    pub(super) bytes_acked: u64,
    pub(super) bytes_received: u64,
    pub(super) retransmits: u64,
    pub(super) last_recv: Instant,
}

/// Window scale we ask for so that `buf` bytes fit in the 16-bit window field (RFC 7323 §2.3, ≤ 14).
pub(super) fn wscale_for(buf: usize) -> u8 {
    let mut s = 0u8;
    while s < 14 && (buf >> s) > 65535 {
        s += 1;
    }
    s
}

impl Connection {
    #[allow(clippy::too_many_arguments)]
    fn blank(
        now: Instant,
        params: &ConnectionParams,
        config: Arc<TcpConfig>,
        iss: Seq,
        tx: Consumer,
        rx: Producer,
        counters: Arc<Counters>,
        state: State,
    ) -> Connection {
        let rcv_wscale = if config.window_scaling { wscale_for(rx.capacity()) } else { 0 };
        Connection {
            local: params.local,
            remote: params.remote,
            state,
            nodelay: params.nodelay,
            keepalive: params.keepalive,
            keepalive_probes: 0,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_sml: iss,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: Seq(0),
            snd_wl2: Seq(0),
            fin_seq: None,
            irs: Seq(0),
            rcv_nxt: Seq(0),
            rcv_adv: Seq(0),
            peer_fin: None,
            ooo: ReceivedRanges::default(),
            last_ooo: None,
            rcv_mss: params.mss,
            snd_mss: DEFAULT_MSS,
            snd_wscale: 0,
            rcv_wscale,
            ts_enabled: false,
            ts_recent: 0,
            ts_offset: iss.0.rotate_left(13),
            epoch: now,
            last_ack_sent: Seq(0),
            sack_enabled: false,
            tx,
            rx,
            timers: Timers::default(),
            rtt: RttEstimator::new(config.initial_rto, config.min_rto, config.max_rto),
            rtt_timed: None,
            rto_tsval: 0,
            retries: 0,
            persist_backoff: 0,
            cc: cc::new(config.cc, DEFAULT_MSS as usize, now),
            recovery: Recovery::new(iss),
            scoreboard: Scoreboard::new(),
            ack_now: false,
            segs_unacked: 0,
            rto_pending: false,
            probe_pending: false,
            rst_pending: false,
            reply_rst: None,
            challenge_window: (now, 0),
            app_limited: true,
            simultaneous_open: false,
            ws_ok: false,
            peer_fin_done: false,
            events: 0,
            error: None,
            soft_error: None,
            orphaned: false,
            bytes_acked: 0,
            bytes_received: 0,
            retransmits: 0,
            last_recv: now,
            config,
            counters,
        }
    }

    /// Active open: a connection in SYN-SENT whose SYN goes out on the next `poll_transmit`.
    pub fn connect(
        now: Instant,
        params: &ConnectionParams,
        config: Arc<TcpConfig>,
        iss: Seq,
        tx: Consumer,
        rx: Producer,
        counters: Arc<Counters>,
    ) -> Connection {
        counters.tcp_active_opens.inc();
        let mut c = Connection::blank(now, params, config, iss, tx, rx, counters, State::SynSent);
        c.ts_enabled = c.config.timestamps;
        c.sack_enabled = c.config.sack;
        c
    }

    /// Passive open: `syn` reached a listener; the connection is in SYN-RECEIVED and its SYN-ACK goes
    /// out on the next `poll_transmit`.
    #[allow(clippy::too_many_arguments)]
    pub fn accept(
        now: Instant,
        params: &ConnectionParams,
        config: Arc<TcpConfig>,
        iss: Seq,
        syn: &TcpRepr,
        tx: Consumer,
        rx: Producer,
        counters: Arc<Counters>,
    ) -> Connection {
        let mut c = Connection::blank(now, params, config, iss, tx, rx, counters, State::SynReceived);
        c.take_syn_options(syn);
        c.irs = syn.seq;
        c.rcv_nxt = syn.seq + 1;
        c.rcv_adv = c.rcv_nxt;
        c.snd_wnd = u32::from(syn.window_len); // RFC 7323 §2.2: the window of a SYN is never scaled.
        c.max_snd_wnd = c.snd_wnd;
        c.snd_wl1 = syn.seq;
        c.snd_wl2 = iss;
        c
    }

    /// A connection made from a valid SYN-cookie ACK (RFC 4987 §3.6): straight to ESTABLISHED, with the
    /// MSS (and, if the cookie carried them, window scale and SACK) the cookie encoded.
    #[allow(clippy::too_many_arguments)]
    pub fn from_cookie(
        now: Instant,
        params: &ConnectionParams,
        config: Arc<TcpConfig>,
        ack: &TcpRepr,
        peer_mss: u16,
        peer_wscale: Option<u8>,
        peer_sack: bool,
        tx: Consumer,
        rx: Producer,
        counters: Arc<Counters>,
    ) -> Connection {
        let iss = ack.ack.unwrap_or_default() - 1;
        let mut c = Connection::blank(now, params, config, iss, tx, rx, counters, State::Established);
        c.irs = ack.seq - 1;
        c.rcv_nxt = ack.seq;
        c.rcv_adv = c.rcv_nxt;
        c.snd_una = iss + 1;
        c.snd_nxt = c.snd_una;
        c.snd_max = c.snd_una;
        c.snd_mss = peer_mss;
        match peer_wscale {
            Some(s) if c.config.window_scaling => c.snd_wscale = s.min(14),
            _ => c.rcv_wscale = 0,
        }
        c.ts_enabled = c.config.timestamps && ack.timestamp.is_some();
        if let Some((tsval, tsecr)) = ack.timestamp {
            c.ts_recent = tsval;
            // Our clock continues from the TSval the cookie SYN-ACK carried (the peer echoes it): a
            // fresh per-connection offset would jump, and the peer's PAWS check would drop everything.
            c.ts_offset = tsecr;
        }
        // The cookie SYN-ACK advertised an unscaled window of up to 64 KiB: the peer may already be
        // sending into it.
        c.rcv_adv = c.rcv_nxt + c.rx.free().min(65535);
        c.sack_enabled = c.config.sack && peer_sack;
        c.ws_ok = peer_wscale.is_some();
        c.snd_wnd = u32::from(ack.window_len) << c.snd_wscale;
        c.max_snd_wnd = c.snd_wnd;
        c.snd_wl1 = ack.seq;
        c.snd_wl2 = c.snd_una;
        c.cc.set_mss(c.smss());
        c.counters.tcp_passive_opens.inc();
        c.counters.tcp_curr_estab.add(1);
        c.events |= events::STATE;
        c.arm_keepalive(now);
        c
    }

    /// Take the MSS, window scale, SACK-permitted and timestamp options of the peer's SYN (RFC 7323:
    /// scaling and timestamps are used only when both sides send the option).
    pub(super) fn take_syn_options(&mut self, syn: &TcpRepr) {
        self.snd_mss = syn.max_seg_size.unwrap_or(DEFAULT_MSS).max(64);
        self.ws_ok = syn.window_scale.is_some();
        match syn.window_scale {
            Some(s) if self.config.window_scaling => self.snd_wscale = s.min(14),
            _ => self.rcv_wscale = 0,
        }
        self.sack_enabled = self.config.sack && syn.sack_permitted;
        self.ts_enabled = self.config.timestamps && syn.timestamp.is_some();
        if let Some((tsval, _)) = syn.timestamp {
            self.ts_recent = tsval;
        }
        self.cc.set_mss(self.smss());
    }

    /// The sender's maximum payload per segment without options beyond the timestamps (RFC 6691).
    pub fn smss(&self) -> usize {
        let mss = self.snd_mss.min(self.rcv_mss) as usize;
        if self.ts_enabled {
            mss.saturating_sub(12).max(1)
        } else {
            mss
        }
    }

    /// Our address.
    pub fn local(&self) -> SocketAddrV4 {
        self.local
    }

    /// The peer's address.
    pub fn remote(&self) -> SocketAddrV4 {
        self.remote
    }

    /// The RFC 9293 state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Why the connection ended, if it ended abnormally.
    pub fn error(&self) -> Option<TcpError> {
        self.error
    }

    /// Bytes sent and not yet acknowledged (FlightSize).
    pub fn flight(&self) -> usize {
        (self.snd_max - self.snd_una).max(0) as usize
    }

    /// Events for the application since the last call.
    pub fn take_events(&mut self) -> u8 {
        std::mem::take(&mut self.events)
    }

    /// True when nothing more will happen: CLOSED, with nothing left to send.
    pub fn is_finished(&self) -> bool {
        self.state == State::Closed && !self.rst_pending && self.reply_rst.is_none()
    }

    /// When to call [`Connection::on_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Receive-buffer free space (what the window can offer).
    pub fn rx_free(&self) -> usize {
        self.rx.free()
    }

    /// The window we last advertised, in bytes.
    pub fn advertised_window(&self) -> usize {
        (self.rcv_adv - self.rcv_nxt).max(0) as usize
    }

    /// RCV.NXT.
    pub fn rcv_nxt_seq(&self) -> Seq {
        self.rcv_nxt
    }

    /// Set the timestamp clock to `ts` at `now` (RFC 7323 §7.1: TSval = clock + offset), before the
    /// first segment goes out. Without it the clock starts at an offset drawn from the ISS. The
    /// worker gives every incarnation of a 4-tuple the same offset on one clock, so that a new
    /// connection's TSvals are newer than the old one's.
    pub fn set_ts_clock(&mut self, now: Instant, ts: u32) {
        self.epoch = now;
        self.ts_offset = ts;
    }

    /// An ICMP error about the segment with sequence number `seq` that we sent (the number is read
    /// from the TCP header the error quotes).
    ///
    /// RFC 5927 §4.1: an error is acted upon only if SND.UNA =< SEG.SEQ < SND.NXT (SND.NXT being the
    /// highest sequence number sent, not one rewound for retransmission); any other is ignored and
    /// counted (`OutOfWindowIcmps`, as Linux's tcp_v4_err), so that a blind attacker must guess a
    /// sequence number in the window.
    pub fn on_icmp(&mut self, seq: Seq, signal: IcmpSignal) {
        if !(self.snd_una <= seq && seq < self.snd_max) {
            self.counters.tcp_out_of_window_icmps.inc();
            return;
        }
        match signal {
            // Port or protocol unreachable ends a connection attempt, as in Linux; later it is soft.
            IcmpSignal::Refused if self.state == State::SynSent => self.fail_connect(TcpError::Refused),
            IcmpSignal::Refused => self.soft_error = Some(TcpError::Refused),
            IcmpSignal::Unreachable => self.soft_error = Some(TcpError::HostUnreachable),
            IcmpSignal::PathMtu(mtu) => self.on_path_mtu(mtu),
        }
    }

    /// A connection attempt failed for a reason outside TCP (an ICMP port unreachable in SYN-SENT).
    fn fail_connect(&mut self, err: TcpError) {
        if self.state == State::SynSent {
            self.counters.tcp_attempt_fails.inc();
            self.enter_closed(Some(err));
        }
    }

    /// ICMP "fragmentation needed" (RFC 1191): segments must fit a path MTU of `mtu`.
    fn on_path_mtu(&mut self, mtu: u16) {
        let mss = mtu.saturating_sub(40).max(536);
        if mss < self.snd_mss {
            self.snd_mss = mss;
            self.cc.set_mss(self.smss());
        }
    }

    /// Internals for `ss -i`.
    pub fn info(&self) -> TcpInfo {
        let us = |d: Option<std::time::Duration>| d.map_or(0, |d| d.as_micros() as u64);
        TcpInfo {
            rtt_us: us(self.rtt.srtt()),
            rttvar_us: self.rtt.rttvar().as_micros() as u64,
            rto_us: self.rtt.rto().as_micros() as u64,
            cwnd: self.cc.cwnd() as u64,
            ssthresh: self.cc.ssthresh() as u64,
            mss: self.smss() as u32,
            rcv_wscale: self.rcv_wscale,
            snd_wscale: self.snd_wscale,
            retransmits: self.retransmits,
            bytes_acked: self.bytes_acked,
            bytes_received: self.bytes_received,
            unacked: self.flight() as u64,
        }
    }

    /// Queued bytes: (received and unread, sent-or-unsent and unacknowledged), for `ss`.
    pub fn queues(&self) -> (usize, usize) {
        (self.rx.capacity() - self.rx.free(), self.tx.len())
    }

    /// Copy `out.len()` payload bytes at `offset` of the send buffer (a [`Segment`]'s payload).
    pub fn copy_payload(&self, offset: usize, out: &mut [u8]) {
        let (a, b) = self.tx.peek_slices(offset, out.len());
        out[..a.len()].copy_from_slice(a);
        out[a.len()..a.len() + b.len()].copy_from_slice(b);
    }

    /// The application wrote data, read data, or closed: see what that changes.
    pub fn on_app_activity(&mut self, now: Instant) {
        if self.tx.is_closed() && self.fin_seq.is_none() {
            self.app_close_send(now);
        }
        if self.rx.is_closed() && !self.orphaned {
            self.app_orphan(now);
        }
        if self.state.is_synchronized() && self.window_update_due() {
            self.ack_now = true;
        }
    }

    /// The application will send no more (shutdown(Write), or close): queue our FIN after the data
    /// (RFC 9293 §3.10.4 CLOSE).
    fn app_close_send(&mut self, now: Instant) {
        match self.state {
            State::SynSent | State::Closed | State::Listen => {
                // Nothing was ever synchronized: just go away.
                self.enter_closed(None);
            }
            State::SynReceived | State::Established => {
                self.fin_seq = Some(self.data_end());
                self.set_state(State::FinWait1);
            }
            State::CloseWait => {
                self.fin_seq = Some(self.data_end());
                self.set_state(State::LastAck);
            }
            _ => {}
        }
        let _ = now;
    }

    /// The application closed the socket entirely. Unread data (or data that arrives later) means the
    /// peer's data would be lost: reset instead of closing gracefully (RFC 2525 §2.17, as Linux does).
    fn app_orphan(&mut self, now: Instant) {
        self.orphaned = true;
        let unread = self.rx.capacity() - self.rx.free();
        if unread > 0 && self.state != State::TimeWait {
            self.counters.tcp_abort_on_close.inc();
            return self.abort(now);
        }
        if self.fin_seq.is_none() && (self.state.is_synchronized() || self.state == State::SynReceived) {
            self.app_close_send(now);
        }
        if self.state == State::FinWait2 {
            self.timers.set(Timer::Close, now + self.config.fin_wait2_timeout);
        }
    }

    /// Abort: send RST and close (RFC 9293 §3.10.5 ABORT).
    pub fn abort(&mut self, _now: Instant) {
        if matches!(self.state, State::Closed | State::Listen | State::SynSent | State::TimeWait) {
            self.enter_closed(Some(TcpError::Aborted));
            return;
        }
        self.rst_pending = true;
        self.enter_closed(Some(TcpError::Aborted));
    }

    /// The stack stops under the connection: if the peer's stream is not complete yet, go to CLOSED
    /// with ECONNABORTED for the application (not an end of stream it could take for the peer's FIN),
    /// sending nothing: the interface is no longer ours.
    pub fn abandon(&mut self) {
        if matches!(
            self.state,
            State::SynSent | State::SynReceived | State::Established | State::FinWait1 | State::FinWait2
        ) {
            self.enter_closed(Some(TcpError::Aborted));
        }
    }

    /// The sequence number just past the application's data (where our FIN goes).
    pub(super) fn data_end(&self) -> Seq {
        self.snd_una_data() + self.tx.len()
    }

    /// The sequence number of send-buffer offset 0: snd_una, past our SYN once it is acknowledged.
    pub(super) fn snd_una_data(&self) -> Seq {
        if self.snd_una == self.iss {
            self.iss + 1
        } else {
            self.snd_una
        }
    }

    pub(super) fn set_state(&mut self, s: State) {
        if s == self.state {
            return;
        }
        let was_estab = matches!(self.state, State::Established | State::CloseWait);
        let is_estab = matches!(s, State::Established | State::CloseWait);
        if was_estab && !is_estab {
            self.counters.tcp_curr_estab.add(u64::MAX); // -1, wrapping
        } else if !was_estab && is_estab {
            self.counters.tcp_curr_estab.add(1);
        }
        self.state = s;
        self.events |= events::STATE;
    }

    /// Go to CLOSED, recording `err` for the application; the receive side reports end of stream.
    pub(super) fn enter_closed(&mut self, err: Option<TcpError>) {
        if err.is_some() && self.error.is_none() {
            self.error = err;
        }
        self.set_state(State::Closed);
        self.timers.stop_all();
        // The reason rides with the close: a reader that sees the end sees why (the socket's shared
        // state gets the error only when the worker publishes, later in its turn).
        match self.error {
            Some(e) => self.rx.close_with_errno(e.errno()),
            None => self.rx.close(),
        }
        self.events |= events::READABLE | events::WRITABLE | events::STATE;
    }

    /// Enter TIME-WAIT for 2·MSL.
    pub(super) fn enter_time_wait(&mut self, now: Instant) {
        self.set_state(State::TimeWait);
        self.timers.stop_all();
        self.timers.set(Timer::Close, now + self.config.msl * 2);
        // TIME-WAIT needs no buffers (Linux, too, swaps the socket for a small timewait one): every
        // byte we sent is acknowledged, and what was received stays readable through the
        // application's half, which keeps that ring alive until it closes. Dropping our halves lets
        // the memory go back to the pool at once instead of after 2·MSL, so a server that closes
        // first does not hold two socket buffers per connection for a minute.
        let (rx, tx) = ByteRing::spent();
        self.rx = rx;
        self.tx = tx;
    }

    pub(super) fn arm_keepalive(&mut self, now: Instant) {
        if let Some(k) = self.keepalive {
            self.timers.set(Timer::Keepalive, now + k.idle);
        }
    }

    /// Change keepalive (the application's setsockopt).
    pub fn set_keepalive(&mut self, now: Instant, k: Option<Keepalive>) {
        self.keepalive = k;
        self.keepalive_probes = 0;
        match k {
            Some(_) if self.state.is_synchronized() => self.arm_keepalive(now),
            _ => self.timers.stop(Timer::Keepalive),
        }
    }

    /// Change Nagle's algorithm (TCP_NODELAY).
    pub fn set_nodelay(&mut self, on: bool) {
        self.nodelay = on;
    }

    /// One line of internals, for test failures.
    #[cfg(test)]
    pub(crate) fn debug_summary(&self) -> String {
        format!(
            "{:?} err={:?} retries={} una={} nxt={} max={} wnd={} fin={:?} tx_len={} rcv_nxt={} adv={} rx_free={} ooo_empty={} peer_fin={:?} timers={:?} rec={:?} ack_now={} cwnd={}",
            self.state, self.error, self.retries, self.snd_una, self.snd_nxt, self.snd_max, self.snd_wnd, self.fin_seq, self.tx.len(),
            self.rcv_nxt, self.rcv_adv, self.rx.free(), self.ooo.is_empty(), self.peer_fin, self.timers,
            self.recovery, self.ack_now, self.cc.cwnd()
        )
    }

    /// The TSval of a segment sent at `now`.
    pub(super) fn ts_now(&self, now: Instant) -> u32 {
        ts_clock(self.epoch, self.ts_offset, now)
    }
}

/// A timestamp clock that read `offset` at `epoch`, at `now` (milliseconds, wrapping).
pub(super) fn ts_clock(epoch: Instant, offset: u32, now: Instant) -> u32 {
    (now.saturating_duration_since(epoch).as_millis() as u32).wrapping_add(offset)
}

/// Timestamp `a` is later than `b` (RFC 7323 §5.3: modulo 2^32, as sequence numbers).
pub(super) fn ts_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

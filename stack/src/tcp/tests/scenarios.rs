//! One test per state and event (`test_<state>_<event>`), with hand-written segments.

use std::time::{Duration, Instant};

use super::harness::*;
use crate::tcp::listen::reset_for;
use crate::tcp::{IcmpSignal, Keepalive, State, TcpConfig, TcpError};
use crate::wire::{TcpFlags, TcpRepr, TcpSeqNumber as Seq};

const SYN: TcpFlags = TcpFlags::SYN;
const FIN: TcpFlags = TcpFlags::FIN;
const RST: TcpFlags = TcpFlags::RST;
const PSH: TcpFlags = TcpFlags::PSH;

/// SYN-ACK from the peer answering our SYN.
fn syn_ack() -> TcpRepr {
    TcpRepr { seq: REMOTE_ISS, ack: Some(LOCAL_ISS + 1), flags: SYN, max_seg_size: Some(1460), ..TEMPLATE }
}

/// An ACK from the peer, at its next sequence number.
fn ack(ack: Seq) -> TcpRepr {
    TcpRepr { seq: REMOTE_ISS + 1, ack: Some(ack), ..TEMPLATE }
}

fn synsent(now: Instant, config: TcpConfig) -> Endpoint {
    let mut ep = Endpoint::connect(now, config, params(LOCAL, REMOTE), LOCAL_ISS, 1 << 16);
    let (syn, _) = one(ep.output(now));
    assert_eq!(syn.flags, SYN);
    ep
}

fn established(now: Instant) -> Endpoint {
    established_with(now, plain_config())
}

fn established_with(now: Instant, config: TcpConfig) -> Endpoint {
    let mut ep = synsent(now, config);
    ep.conn.on_segment(now, &syn_ack(), &[]);
    assert_eq!(ep.conn.state(), State::Established);
    let (a, _) = one(ep.output(now));
    assert_eq!(a.ack, Some(REMOTE_ISS + 1));
    ep
}

/// Establish and send `data`; returns the segments that went out.
fn send(ep: &mut Endpoint, now: Instant, data: &[u8]) -> Vec<(TcpRepr, Vec<u8>)> {
    assert_eq!(ep.app_tx.write(data), data.len());
    ep.conn.on_app_activity(now);
    ep.output(now)
}

#[test]
fn test_closed_segment_gets_reset() {
    let syn = TcpRepr { seq: Seq(100), flags: SYN, ..TEMPLATE };
    let r = reset_for(&syn, 0).unwrap();
    assert_eq!((r.seq, r.ack, r.flags), (Seq(0), Some(Seq(101)), RST));
    let a = TcpRepr { seq: Seq(100), ack: Some(Seq(777)), ..TEMPLATE };
    let r = reset_for(&a, 10).unwrap();
    assert_eq!((r.seq, r.ack, r.flags), (Seq(777), None, RST));
    assert_eq!(reset_for(&TcpRepr { flags: RST, ..TEMPLATE }, 0), None, "a RST is never answered");
}

#[test]
fn test_syn_sent_syn_ack_establishes() {
    let now = Instant::now();
    let mut ep = synsent(now, plain_config());
    assert_eq!(ep.conn.state(), State::SynSent);
    ep.conn.on_segment(now + Duration::from_millis(10), &syn_ack(), &[]);
    assert_eq!(ep.conn.state(), State::Established);
    let (a, _) = one(ep.output(now));
    assert_eq!((a.seq, a.ack, a.flags), (LOCAL_ISS + 1, Some(REMOTE_ISS + 1), TcpFlags::NONE));
    assert_eq!(ep.conn.info().rtt_us, 10_000, "the SYN was timed");
    assert_eq!(ep.conn.poll_timeout(), None, "no timer while idle");
}

#[test]
fn test_syn_sent_rst_with_acceptable_ack_refuses() {
    let now = Instant::now();
    let mut ep = synsent(now, plain_config());
    ep.conn.on_segment(now, &TcpRepr { seq: Seq(0), ack: Some(LOCAL_ISS + 1), flags: RST, ..TEMPLATE }, &[]);
    assert_eq!(ep.conn.state(), State::Closed);
    assert_eq!(ep.conn.error(), Some(TcpError::Refused));
    assert!(ep.output(now).is_empty());
}

#[test]
fn test_syn_sent_rst_without_ack_is_ignored() {
    let now = Instant::now();
    let mut ep = synsent(now, plain_config());
    ep.conn.on_segment(now, &TcpRepr { seq: Seq(0), flags: RST, ..TEMPLATE }, &[]);
    assert_eq!(ep.conn.state(), State::SynSent);
}

#[test]
fn test_syn_sent_unacceptable_ack_gets_reset() {
    let now = Instant::now();
    let mut ep = synsent(now, plain_config());
    ep.conn.on_segment(now, &TcpRepr { seq: REMOTE_ISS, ack: Some(Seq(9)), flags: SYN, ..TEMPLATE }, &[]);
    assert_eq!(ep.conn.state(), State::SynSent);
    let (r, _) = one(ep.output(now));
    assert_eq!((r.seq, r.ack, r.flags), (Seq(9), None, RST));
}

#[test]
fn test_syn_sent_syn_is_a_simultaneous_open() {
    let now = Instant::now();
    let mut ep = synsent(now, plain_config());
    ep.conn.on_segment(now, &TcpRepr { seq: REMOTE_ISS, flags: SYN, ..TEMPLATE }, &[]);
    assert_eq!(ep.conn.state(), State::SynReceived);
    let (sa, _) = one(ep.output(now));
    assert_eq!((sa.seq, sa.ack, sa.flags), (LOCAL_ISS, Some(REMOTE_ISS + 1), SYN));
    ep.conn.on_segment(now, &ack(LOCAL_ISS + 1), &[]);
    assert_eq!(ep.conn.state(), State::Established);
}

/// SYN-SENT, then the peer's SYN (our SYNs crossed): SYN-RECEIVED, with our SYN-ACK sent.
fn simultaneous_syn_received(now: Instant) -> Endpoint {
    let mut ep = synsent(now, plain_config());
    let syn = TcpRepr { seq: REMOTE_ISS, flags: SYN, max_seg_size: Some(1460), ..TEMPLATE };
    ep.conn.on_segment(now, &syn, &[]);
    assert_eq!(ep.conn.state(), State::SynReceived);
    let (sa, _) = one(ep.output(now));
    assert_eq!((sa.seq, sa.ack, sa.flags), (LOCAL_ISS, Some(REMOTE_ISS + 1), SYN));
    ep
}

#[test]
fn test_syn_received_simultaneous_open_peer_syn_ack_establishes() {
    let now = Instant::now();
    let mut ep = simultaneous_syn_received(now);
    // What a real peer sends in a simultaneous open: its own SYN-ACK, acknowledging our SYN.
    ep.conn.on_segment(now, &TcpRepr { window_len: 1000, ..syn_ack() }, &[]);
    assert_eq!(ep.conn.state(), State::Established);
    assert!(ep.output(now).is_empty(), "no SYN-ACK again (RFC 9293 §3.5 Figure 7)");
    assert_eq!(ep.conn.poll_timeout(), None, "our SYN is acknowledged: no retransmission timer");
    assert_eq!((ep.counters.tcp_active_opens.get(), ep.counters.tcp_passive_opens.get()), (1, 0));
    // Data both ways; the SYN-ACK's window (1000, never scaled) limits what goes at once.
    let out = send(&mut ep, now, &[3u8; 1500]);
    let lens: Vec<(Seq, usize)> = out.iter().map(|(r, _)| (r.seq, r.payload_len)).collect();
    assert_eq!(lens, vec![(LOCAL_ISS + 1, 1000)]);
    ep.conn.on_segment(now, &TcpRepr { payload_len: 3, ..ack(LOCAL_ISS + 1001) }, b"yes");
    assert_eq!(ep.read_all(), b"yes");
}

#[test]
fn test_syn_received_unacceptable_segment_gets_a_bare_ack() {
    let now = Instant::now();
    let mut ep = simultaneous_syn_received(now);
    // A SYN-ACK that does not acknowledge our SYN, and an old segment: RFC 9293 §3.10.7.4 answers
    // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, not another SYN-ACK.
    let wrong_ack = TcpRepr { ack: Some(LOCAL_ISS + 7), ..syn_ack() };
    let old = TcpRepr { seq: REMOTE_ISS - 100, ack: Some(LOCAL_ISS + 1), ..TEMPLATE };
    for seg in [wrong_ack, old] {
        ep.conn.on_segment(now, &seg, &[]);
        assert_eq!(ep.conn.state(), State::SynReceived);
        let (a, _) = one(ep.output(now));
        assert_eq!((a.seq, a.ack, a.flags), (LOCAL_ISS + 1, Some(REMOTE_ISS + 1), TcpFlags::NONE), "{seg:?}");
    }
    // The peer's SYN again (without an ACK: it never got ours) still gets our SYN-ACK at once.
    ep.conn.on_segment(now, &TcpRepr { seq: REMOTE_ISS, flags: SYN, ..TEMPLATE }, &[]);
    let (sa, _) = one(ep.output(now));
    assert_eq!((sa.seq, sa.ack, sa.flags), (LOCAL_ISS, Some(REMOTE_ISS + 1), SYN));
    assert_eq!(ep.counters.tcp_timeouts.get(), 0);
}

#[test]
fn test_syn_received_passive_open_syn_ack_gets_a_bare_ack() {
    let now = Instant::now();
    let syn = TcpRepr { src_port: 4000, dst_port: 80, seq: Seq(300), flags: SYN, ..TEMPLATE };
    let mut ep = Endpoint::accept(now, plain_config(), params(REMOTE, LOCAL), Seq(9000), &syn, 1 << 16);
    one(ep.output(now));
    // We never sent a SYN of our own that a SYN-ACK could answer: unacceptable, a bare ACK.
    let sa = TcpRepr { ack: Some(Seq(9001)), ..syn };
    ep.conn.on_segment(now, &sa, &[]);
    assert_eq!(ep.conn.state(), State::SynReceived);
    let (a, _) = one(ep.output(now));
    assert_eq!((a.seq, a.ack, a.flags), (Seq(9001), Some(Seq(301)), TcpFlags::NONE));
}

#[test]
fn test_syn_sent_timeout_retransmits_with_backoff_then_gives_up() {
    let t0 = Instant::now();
    let mut ep = synsent(t0, plain_config());
    let mut sends = vec![t0];
    while let Some(t) = ep.conn.poll_timeout() {
        ep.conn.on_timeout(t);
        if !ep.output(t).is_empty() {
            sends.push(t);
        }
    }
    assert_eq!(sends.len(), 7, "the SYN and 6 retransmissions (tcp_syn_retries)");
    let gaps: Vec<u64> = sends.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
    assert_eq!(gaps, vec![1, 2, 4, 8, 16, 32]);
    assert_eq!(ep.conn.state(), State::Closed);
    assert_eq!(ep.conn.error(), Some(TcpError::TimedOut));
}

#[test]
fn test_syn_received_ack_establishes_and_bad_ack_resets() {
    let now = Instant::now();
    let syn = TcpRepr {
        src_port: 4000,
        dst_port: 80,
        seq: Seq(300),
        flags: SYN,
        max_seg_size: Some(1400),
        ..TEMPLATE
    };
    let mut ep = Endpoint::accept(now, plain_config(), params(REMOTE, LOCAL), Seq(9000), &syn, 1 << 16);
    assert_eq!(ep.conn.state(), State::SynReceived);
    let (sa, _) = one(ep.output(now));
    assert_eq!((sa.seq, sa.ack, sa.flags, sa.max_seg_size), (Seq(9000), Some(Seq(301)), SYN, Some(1460)));
    // A wrong ACK gets a reset and changes nothing.
    ep.conn.on_segment(now, &TcpRepr { seq: Seq(301), ack: Some(Seq(12345)), ..TEMPLATE }, &[]);
    let (r, _) = one(ep.output(now));
    assert_eq!((r.seq, r.flags), (Seq(12345), RST));
    assert_eq!(ep.conn.state(), State::SynReceived);
    // A duplicate SYN gets the SYN-ACK again.
    ep.conn.on_segment(now, &syn, &[]);
    let (sa2, _) = one(ep.output(now));
    assert_eq!(sa2.flags, SYN);
    ep.conn.on_segment(now, &TcpRepr { seq: Seq(301), ack: Some(Seq(9001)), ..TEMPLATE }, &[]);
    assert_eq!(ep.conn.state(), State::Established);
    assert_eq!(ep.conn.smss(), 1400, "the peer's MSS");
}

#[test]
fn test_syn_received_rst_closes_quietly() {
    let now = Instant::now();
    let syn = TcpRepr { seq: Seq(300), flags: SYN, ..TEMPLATE };
    let mut ep = Endpoint::accept(now, plain_config(), params(REMOTE, LOCAL), Seq(9000), &syn, 1 << 16);
    ep.output(now);
    ep.conn.on_segment(now, &TcpRepr { seq: Seq(301), flags: RST, ..TEMPLATE }, &[]);
    assert_eq!(ep.conn.state(), State::Closed);
    assert_eq!(ep.conn.error(), None, "a half-open connection from a listener goes without an error");
}

#[test]
fn test_established_in_order_data_gets_a_delayed_ack() {
    let now = Instant::now();
    let mut ep = established(now);
    ep.conn.on_segment(now, &TcpRepr { payload_len: 100, ..ack(LOCAL_ISS + 1) }, &[7u8; 100]);
    assert_eq!(ep.read_all(), vec![7u8; 100]);
    assert!(ep.output(now).is_empty(), "the ACK waits");
    let t = ep.conn.poll_timeout().unwrap();
    assert_eq!(t - now, Duration::from_millis(40));
    ep.conn.on_timeout(t);
    let (a, _) = one(ep.output(t));
    assert_eq!(a.ack, Some(REMOTE_ISS + 101));
}

#[test]
fn test_established_second_segment_is_acked_at_once() {
    let now = Instant::now();
    let mut ep = established(now);
    let s1 = TcpRepr { seq: REMOTE_ISS + 1, ..ack(LOCAL_ISS + 1) };
    let s2 = TcpRepr { seq: REMOTE_ISS + 1461, ..ack(LOCAL_ISS + 1) };
    ep.conn.on_segment(now, &s1, &[1u8; 1460]);
    ep.conn.on_segment(now, &s2, &[2u8; 1460]);
    let (a, _) = one(ep.output(now));
    assert_eq!(a.ack, Some(REMOTE_ISS + 2921));
}

#[test]
fn test_established_out_of_order_data_is_acked_at_once_and_held() {
    let now = Instant::now();
    let mut ep =
        established_with(now, TcpConfig { timestamps: false, window_scaling: false, ..TcpConfig::default() });
    // SACK was offered by us but the template SYN-ACK did not permit it: no SACK blocks.
    ep.conn.on_segment(now, &TcpRepr { seq: REMOTE_ISS + 101, ..ack(LOCAL_ISS + 1) }, &[2u8; 100]);
    let (a, _) = one(ep.output(now));
    assert_eq!(a.ack, Some(REMOTE_ISS + 1), "a duplicate ACK");
    assert!(ep.read_all().is_empty());
    ep.conn.on_segment(now, &TcpRepr { seq: REMOTE_ISS + 1, ..ack(LOCAL_ISS + 1) }, &[1u8; 100]);
    let (a, _) = one(ep.output(now));
    assert_eq!(a.ack, Some(REMOTE_ISS + 201), "the gap filled: ACK at once, covering both");
    let got = ep.read_all();
    assert_eq!(got.len(), 200);
    assert!(got[..100].iter().all(|b| *b == 1) && got[100..].iter().all(|b| *b == 2));
}

#[test]
fn test_established_out_of_order_data_reports_sack_blocks() {
    let now = Instant::now();
    let mut ep = synsent(now, TcpConfig { timestamps: false, window_scaling: false, ..TcpConfig::default() });
    ep.conn.on_segment(now, &TcpRepr { sack_permitted: true, ..syn_ack() }, &[]);
    ep.output(now);
    ep.conn.on_segment(now, &TcpRepr { seq: REMOTE_ISS + 201, ..ack(LOCAL_ISS + 1) }, &[2u8; 100]);
    ep.conn.on_segment(now, &TcpRepr { seq: REMOTE_ISS + 501, ..ack(LOCAL_ISS + 1) }, &[3u8; 100]);
    let out = ep.output(now);
    let last = &out.last().unwrap().0;
    let b = |l: usize, r: usize| Some(((REMOTE_ISS + l).0, (REMOTE_ISS + r).0));
    assert_eq!(last.sack_ranges, [b(501, 601), b(201, 301), None], "most recent block first (RFC 2018)");
}

#[test]
fn test_established_rst_in_window_gets_a_challenge_ack_and_exact_rst_resets() {
    let now = Instant::now();
    let mut ep = established(now);
    ep.conn.on_segment(now, &TcpRepr { seq: REMOTE_ISS + 100, flags: RST, ..TEMPLATE }, &[]);
    assert_eq!(ep.conn.state(), State::Established, "RFC 5961: not exactly rcv_nxt");
    let (a, _) = one(ep.output(now));
    assert_eq!(a.ack, Some(REMOTE_ISS + 1));
    ep.conn.on_segment(now, &TcpRepr { seq: REMOTE_ISS + 1_000_000, flags: RST, ..TEMPLATE }, &[]);
    assert!(ep.output(now).is_empty(), "outside the window: silently dropped");
    ep.conn.on_segment(now, &TcpRepr { seq: REMOTE_ISS + 1, flags: RST, ..TEMPLATE }, &[]);
    assert_eq!(ep.conn.state(), State::Closed);
    assert_eq!(ep.conn.error(), Some(TcpError::Reset));
    assert_eq!(ep.counters.tcp_estab_resets.get(), 1);
}

#[test]
fn test_established_syn_gets_a_challenge_ack() {
    let now = Instant::now();
    let mut ep = established(now);
    ep.conn.on_segment(now, &TcpRepr { seq: REMOTE_ISS + 50, flags: SYN, ..TEMPLATE }, &[]);
    assert_eq!(ep.conn.state(), State::Established);
    let (a, _) = one(ep.output(now));
    assert_eq!((a.flags, a.ack), (TcpFlags::NONE, Some(REMOTE_ISS + 1)));
    assert_eq!(ep.counters.tcp_challenge_ack.get(), 1);
}

#[test]
fn test_established_ack_of_unsent_data_gets_a_challenge_and_is_ignored() {
    let now = Instant::now();
    let mut ep = established(now);
    send(&mut ep, now, b"hello");
    ep.conn.on_segment(now, &ack(LOCAL_ISS + 5000), &[]);
    let (a, _) = one(ep.output(now));
    assert_eq!(a.ack, Some(REMOTE_ISS + 1));
    assert_eq!(ep.conn.flight(), 5, "nothing was acknowledged");
}

#[test]
fn test_established_challenge_acks_are_rate_limited() {
    let now = Instant::now();
    let mut ep = established(now);
    for i in 0..300 {
        ep.conn.on_segment(now, &TcpRepr { seq: REMOTE_ISS + 10 + i, flags: RST, ..TEMPLATE }, &[]);
        ep.output(now);
    }
    assert_eq!(ep.counters.tcp_challenge_ack.get(), 100);
}

#[test]
fn test_established_old_timestamp_is_dropped_by_paws() {
    let now = Instant::now();
    let mut ep = synsent(now, TcpConfig { sack: false, window_scaling: false, ..TcpConfig::default() });
    ep.conn.on_segment(now, &TcpRepr { timestamp: Some((1000, 0)), ..syn_ack() }, &[]);
    ep.output(now);
    let seg = |ts: u32, seq: usize| TcpRepr {
        seq: REMOTE_ISS + seq,
        timestamp: Some((ts, 0)),
        ..ack(LOCAL_ISS + 1)
    };
    ep.conn.on_segment(now, &seg(1010, 1), &[1u8; 10]);
    assert_eq!(ep.read_all().len(), 10);
    ep.conn.on_segment(now, &seg(900, 11), &[2u8; 10]);
    assert!(ep.read_all().is_empty(), "older than TS.Recent: dropped");
    assert_eq!(ep.counters.tcp_paws_estab.get(), 1);
    assert!(!ep.output(now).is_empty(), "and acknowledged");
}

#[test]
fn test_established_data_and_ack_flow() {
    let now = Instant::now();
    let mut ep = established(now);
    let out = send(&mut ep, now, &[9u8; 4000]);
    let lens: Vec<usize> = out.iter().map(|(r, _)| r.payload_len).collect();
    assert_eq!(lens, vec![1460, 1460, 1080], "IW10 lets all of it go");
    assert!(out.last().unwrap().0.flags.contains(PSH));
    assert_eq!(out[1].0.seq, LOCAL_ISS + 1461);
    ep.conn.on_segment(now, &ack(LOCAL_ISS + 4001), &[]);
    assert_eq!(ep.conn.flight(), 0);
    assert_eq!(ep.conn.poll_timeout(), None, "retransmission timer stopped");
    assert_eq!(ep.conn.info().bytes_acked, 4000);
}

#[test]
fn test_established_nagle_holds_small_segments_and_nodelay_does_not() {
    let now = Instant::now();
    let mut ep = established(now);
    assert_eq!(send(&mut ep, now, b"a").len(), 1);
    assert!(send(&mut ep, now, b"b").is_empty(), "Nagle: unacknowledged data outstanding");
    ep.conn.on_segment(now, &ack(LOCAL_ISS + 2), &[]);
    let (s, p) = one(ep.output(now));
    assert_eq!((s.seq, p.as_slice()), (LOCAL_ISS + 2, &b"b"[..]));
    ep.conn.set_nodelay(true);
    assert_eq!(send(&mut ep, now, b"c").len(), 1, "nodelay");
}

#[test]
fn test_established_timeout_retransmits_and_backs_off_then_gives_up() {
    let t0 = Instant::now();
    let mut ep = established(t0);
    send(&mut ep, t0, b"lost forever");
    let mut resends = 0;
    let mut last = t0;
    while let Some(t) = ep.conn.poll_timeout() {
        ep.conn.on_timeout(t);
        let out = ep.output(t);
        if !out.is_empty() {
            assert_eq!(out[0].0.seq, LOCAL_ISS + 1);
            assert_eq!(out[0].1, b"lost forever");
            resends += 1;
            assert!(t - last >= Duration::from_millis(200));
            last = t;
        }
    }
    assert_eq!(resends, 15, "tcp_retries2");
    assert_eq!(ep.conn.state(), State::Closed);
    assert_eq!(ep.conn.error(), Some(TcpError::TimedOut));
}

#[test]
fn test_established_three_duplicate_acks_start_fast_retransmit() {
    let now = Instant::now();
    let mut ep = established(now);
    let out = send(&mut ep, now, &[5u8; 1460 * 8]);
    assert_eq!(out.len(), 8);
    ep.conn.on_segment(now, &ack(LOCAL_ISS + 1461), &[]);
    for _ in 0..2 {
        ep.conn.on_segment(now, &ack(LOCAL_ISS + 1461), &[]);
        assert!(ep.output(now).iter().all(|(r, _)| r.seq != LOCAL_ISS + 1461), "not yet");
    }
    ep.conn.on_segment(now, &ack(LOCAL_ISS + 1461), &[]);
    let out = ep.output(now);
    assert_eq!(out[0].0.seq, LOCAL_ISS + 1461, "the third duplicate retransmits the hole");
    assert_eq!(ep.counters.tcp_fast_retrans.get(), 1);
    assert_eq!(ep.counters.tcp_retrans_segs.get(), 1);
    // A partial ACK (NewReno, no SACK): the next hole goes at once.
    ep.conn.on_segment(now, &ack(LOCAL_ISS + 2921), &[]);
    let out = ep.output(now);
    assert_eq!(out[0].0.seq, LOCAL_ISS + 2921);
    // Everything acknowledged: recovery ends.
    ep.conn.on_segment(now, &ack(LOCAL_ISS + 1 + 1460 * 8), &[]);
    assert_eq!(ep.conn.flight(), 0);
}

#[test]
fn test_established_zero_window_is_probed() {
    let now = Instant::now();
    let mut ep = established(now);
    ep.conn.on_segment(now, &TcpRepr { window_len: 0, ..ack(LOCAL_ISS + 1) }, &[]);
    assert!(send(&mut ep, now, b"waiting").is_empty(), "nothing fits a zero window");
    let t = ep.conn.poll_timeout().expect("persist timer");
    ep.conn.on_timeout(t);
    let (probe, p) = one(ep.output(t));
    assert_eq!((probe.seq, p.len()), (LOCAL_ISS, 0), "an old sequence number asks for an ACK");
    let t2 = ep.conn.poll_timeout().unwrap();
    assert!(t2 - t > t - now, "persist backs off");
    ep.conn.on_segment(t2, &TcpRepr { window_len: 1000, ..ack(LOCAL_ISS + 1) }, &[]);
    let (d, p) = one(ep.output(t2));
    assert_eq!((d.seq, p.as_slice()), (LOCAL_ISS + 1, &b"waiting"[..]));
}

#[test]
fn test_established_close_sends_fin_and_walks_to_time_wait() {
    let now = Instant::now();
    let mut ep = established(now);
    ep.app_tx.close();
    ep.conn.on_app_activity(now);
    assert_eq!(ep.conn.state(), State::FinWait1);
    let (f, _) = one(ep.output(now));
    assert_eq!((f.seq, f.flags), (LOCAL_ISS + 1, FIN));
    ep.conn.on_segment(now, &ack(LOCAL_ISS + 2), &[]);
    assert_eq!(ep.conn.state(), State::FinWait2);
    ep.conn.on_segment(now, &TcpRepr { flags: FIN, ..ack(LOCAL_ISS + 2) }, &[]);
    assert_eq!(ep.conn.state(), State::TimeWait);
    let (a, _) = one(ep.output(now));
    assert_eq!(a.ack, Some(REMOTE_ISS + 2));
    assert_eq!(ep.conn.poll_timeout(), Some(now + Duration::from_secs(60)), "2 MSL");
    // A retransmitted FIN is acknowledged again and restarts the wait.
    let later = now + Duration::from_secs(10);
    ep.conn.on_segment(later, &TcpRepr { flags: FIN, ..ack(LOCAL_ISS + 2) }, &[]);
    assert_eq!(one(ep.output(later)).0.ack, Some(REMOTE_ISS + 2));
    assert_eq!(ep.conn.poll_timeout(), Some(later + Duration::from_secs(60)));
    ep.conn.on_timeout(later + Duration::from_secs(60));
    assert!(ep.conn.is_finished());
    assert_eq!(ep.conn.error(), None);
}

#[test]
fn test_time_wait_lets_go_of_the_buffers_and_unread_data_stays_readable() {
    let now = Instant::now();
    let mut ep = established(now);
    ep.app_tx.close();
    ep.conn.on_app_activity(now);
    ep.output(now);
    ep.conn.on_segment(now, &ack(LOCAL_ISS + 2), &[]);
    assert_eq!(ep.conn.state(), State::FinWait2);
    ep.conn.on_segment(now, &ack(LOCAL_ISS + 2), b"late data");
    assert!(!ep.app_tx.is_closed(), "FIN-WAIT-2 still holds the send buffer's other half");
    ep.conn.on_segment(now, &TcpRepr { seq: REMOTE_ISS + 10, flags: FIN, ..ack(LOCAL_ISS + 2) }, &[]);
    assert_eq!(ep.conn.state(), State::TimeWait);
    assert!(ep.app_tx.is_closed(), "TIME-WAIT dropped its half of the send buffer");
    assert_eq!(ep.read_all(), b"late data", "what arrived is still there for the application");
    assert!(ep.app_rx.is_eof());
    let (a, _) = one(ep.output(now));
    assert_eq!(a.ack, Some(REMOTE_ISS + 11), "TIME-WAIT still acknowledges");
}

#[test]
fn test_fin_wait_1_fin_before_ack_is_a_simultaneous_close() {
    let now = Instant::now();
    let mut ep = established(now);
    ep.app_tx.close();
    ep.conn.on_app_activity(now);
    ep.output(now);
    ep.conn.on_segment(now, &TcpRepr { flags: FIN, ..ack(LOCAL_ISS + 1) }, &[]);
    assert_eq!(ep.conn.state(), State::Closing);
    ep.conn.on_segment(now, &TcpRepr { seq: REMOTE_ISS + 2, ..ack(LOCAL_ISS + 2) }, &[]);
    assert_eq!(ep.conn.state(), State::TimeWait);
}

#[test]
fn test_established_peer_fin_half_closes_and_we_can_still_send() {
    let now = Instant::now();
    let mut ep = established(now);
    ep.conn.on_segment(now, &TcpRepr { flags: FIN, payload_len: 3, ..ack(LOCAL_ISS + 1) }, b"bye");
    assert_eq!(ep.conn.state(), State::CloseWait);
    assert_eq!(ep.read_all(), b"bye");
    assert!(ep.app_rx.is_closed(), "end of stream");
    assert!(ep.output(now).is_empty(), "the ACK of the FIN waits for our own FIN ...");
    let t = ep.conn.poll_timeout().unwrap();
    assert_eq!(t, now + Duration::from_millis(40), "... for at most the delayed-ACK time");
    ep.conn.on_timeout(t);
    let (a, _) = one(ep.output(t));
    assert_eq!(a.ack, Some(REMOTE_ISS + 5));
    let out = send(&mut ep, now, b"still talking");
    assert_eq!(out[0].1, b"still talking");
    ep.app_tx.close();
    ep.conn.on_app_activity(now);
    assert_eq!(ep.conn.state(), State::LastAck);
    let out = ep.output(now);
    assert!(out.iter().any(|(r, _)| r.flags.contains(FIN)));
    ep.conn.on_segment(now, &TcpRepr { seq: REMOTE_ISS + 5, ..ack(LOCAL_ISS + 15) }, &[]);
    assert_eq!(ep.conn.state(), State::Closed);
    assert!(ep.conn.is_finished());
}

#[test]
fn test_close_wait_close_soon_after_the_peer_fin_acks_it_on_our_fin() {
    let now = Instant::now();
    let mut ep = established(now);
    ep.conn.on_segment(now, &TcpRepr { flags: FIN, ..ack(LOCAL_ISS + 1) }, &[]);
    assert!(ep.output(now).is_empty());
    ep.app_tx.close();
    ep.conn.on_app_activity(now);
    let (f, _) = one(ep.output(now));
    assert_eq!((f.flags, f.ack), (FIN, Some(REMOTE_ISS + 2)), "one segment: our FIN, acking theirs");
    assert_eq!(ep.conn.state(), State::LastAck);
}

#[test]
fn test_established_out_of_order_fin_waits_for_the_gap() {
    let now = Instant::now();
    let mut ep = established(now);
    ep.conn.on_segment(now, &TcpRepr { seq: REMOTE_ISS + 11, flags: FIN, ..ack(LOCAL_ISS + 1) }, b"end");
    assert_eq!(ep.conn.state(), State::Established);
    ep.conn.on_segment(now, &TcpRepr { seq: REMOTE_ISS + 1, ..ack(LOCAL_ISS + 1) }, b"0123456789");
    assert_eq!(ep.conn.state(), State::CloseWait);
    assert_eq!(ep.read_all(), b"0123456789end");
}

#[test]
fn test_established_abort_sends_rst() {
    let now = Instant::now();
    let mut ep = established(now);
    ep.conn.abort(now);
    let (r, _) = one(ep.output(now));
    assert!(r.flags.contains(RST));
    assert_eq!(r.seq, LOCAL_ISS + 1);
    assert!(ep.conn.is_finished());
    assert_eq!(ep.conn.error(), Some(TcpError::Aborted));
}

#[test]
fn test_established_close_with_unread_data_resets() {
    let now = Instant::now();
    let mut ep = established(now);
    ep.conn.on_segment(now, &ack(LOCAL_ISS + 1), b"never read");
    ep.output(now);
    ep.app_rx.close();
    ep.app_tx.close();
    ep.conn.on_app_activity(now);
    let out = ep.output(now);
    assert!(out.iter().any(|(r, _)| r.flags.contains(RST)), "{out:?}");
    assert_eq!(ep.counters.tcp_abort_on_close.get(), 1);
}

#[test]
fn test_established_keepalive_probes_then_times_out() {
    let t0 = Instant::now();
    let mut ep = established(t0);
    let k = Keepalive { idle: Duration::from_secs(10), interval: Duration::from_secs(2), count: 3 };
    ep.conn.set_keepalive(t0, Some(k));
    let mut probes = Vec::new();
    while let Some(t) = ep.conn.poll_timeout() {
        ep.conn.on_timeout(t);
        for (r, p) in ep.output(t) {
            assert_eq!((r.seq, p.len()), (LOCAL_ISS, 0));
            probes.push((t - t0).as_secs());
        }
    }
    assert_eq!(probes, vec![10, 12, 14]);
    assert_eq!(ep.conn.error(), Some(TcpError::TimedOut));
}

#[test]
fn test_established_window_follows_the_receive_buffer() {
    let now = Instant::now();
    let mut ep = established(now);
    // 65536-byte buffer; the peer fills most of it (less than two segments of room left).
    for i in 0..44 {
        ep.conn.on_segment(
            now,
            &TcpRepr { seq: REMOTE_ISS + 1 + i * 1460, ..ack(LOCAL_ISS + 1) },
            &[0u8; 1460],
        );
    }
    let out = ep.output(now);
    let w = out.last().unwrap().0.window_len as usize;
    // The unscaled window field tops out at 65535.
    assert_eq!(w, 65535 - 44 * 1460);
    // Reading a little does not re-open the window (receiver SWS avoidance) ...
    let mut small = [0u8; 100];
    ep.app_rx.read(&mut small);
    ep.conn.on_app_activity(now);
    assert!(ep.output(now).is_empty());
    // ... reading a lot does, with a window update.
    let mut big = vec![0u8; 20_000];
    ep.app_rx.read(&mut big);
    ep.conn.on_app_activity(now);
    let (u, _) = one(ep.output(now));
    assert_eq!(u.window_len as usize, 65536 - 44 * 1460 + 20_100);
}

#[test]
fn test_established_read_with_room_for_two_segments_sends_no_window_update() {
    let now = Instant::now();
    let mut ep = established(now);
    // A request well inside the window: the answer will carry the ACK, and the peer, with room for
    // more than two segments, is not waiting for a larger window.
    ep.conn.on_segment(now, &ack(LOCAL_ISS + 1), &[7u8; 64]);
    assert_eq!(ep.read_all(), [7u8; 64]);
    ep.conn.on_app_activity(now);
    assert!(ep.output(now).is_empty(), "no ACK of its own before the answer");
    let (a, p) = one(send(&mut ep, now, b"answer"));
    assert_eq!((a.ack, p.as_slice()), (Some(REMOTE_ISS + 65), &b"answer"[..]));
}

#[test]
fn test_established_icmp_error_is_soft_until_the_connection_times_out() {
    let t0 = Instant::now();
    let mut ep = established(t0);
    send(&mut ep, t0, b"into the void");
    // It quotes our segment: SND.UNA =< SEG.SEQ < SND.NXT (RFC 5927 §4.1).
    ep.conn.on_icmp(LOCAL_ISS + 1, IcmpSignal::Unreachable);
    assert_eq!(ep.conn.state(), State::Established, "RFC 5927: a soft error does not abort");
    while let Some(t) = ep.conn.poll_timeout() {
        ep.conn.on_timeout(t);
        ep.output(t);
    }
    assert_eq!(ep.conn.error(), Some(TcpError::HostUnreachable), "reported when the connection gives up");
    assert_eq!(ep.counters.tcp_out_of_window_icmps.get(), 0);
}

#[test]
fn test_established_icmp_error_outside_the_send_window_is_ignored_and_counted() {
    let t0 = Instant::now();
    let mut ep = established(t0);
    send(&mut ep, t0, b"into the void"); // LOCAL_ISS + 1 .. LOCAL_ISS + 14
    let outside = [
        LOCAL_ISS,             // our SYN: acknowledged, before SND.UNA
        LOCAL_ISS + 14,        // SND.NXT: nothing sent there yet
        LOCAL_ISS + 1_000_000, // a blind guess
        LOCAL_ISS - 70_000,    // another
    ];
    for seq in outside {
        ep.conn.on_icmp(seq, IcmpSignal::Unreachable);
        ep.conn.on_icmp(seq, IcmpSignal::PathMtu(576));
    }
    assert_eq!(ep.counters.tcp_out_of_window_icmps.get(), 8);
    assert_eq!(ep.conn.smss(), 1460, "the MSS was not lowered");
    while let Some(t) = ep.conn.poll_timeout() {
        ep.conn.on_timeout(t);
        ep.output(t);
    }
    assert_eq!(ep.conn.error(), Some(TcpError::TimedOut), "no soft error was recorded");
}

#[test]
fn test_established_icmp_fragmentation_needed_lowers_the_mss_even_after_a_timeout() {
    let t0 = Instant::now();
    let mut ep = established(t0);
    let out = send(&mut ep, t0, &[1u8; 3 * 1460]);
    assert_eq!(out.len(), 3);
    // A timeout rewinds snd_nxt; the third segment was still sent, and an error about it counts.
    let t = ep.conn.poll_timeout().unwrap();
    ep.conn.on_timeout(t);
    let resent = ep.output(t);
    assert_eq!((resent.len(), resent[0].0.seq), (1, LOCAL_ISS + 1), "one segment after the timeout");
    ep.conn.on_icmp(LOCAL_ISS + 1 + 2 * 1460, IcmpSignal::PathMtu(1000));
    assert_eq!(ep.conn.smss(), 960);
    assert_eq!(ep.counters.tcp_out_of_window_icmps.get(), 0);
}

#[test]
fn test_syn_sent_icmp_port_unreachable_refuses() {
    let now = Instant::now();
    let mut ep = synsent(now, plain_config());
    ep.conn.on_icmp(LOCAL_ISS + 1, IcmpSignal::Refused);
    ep.conn.on_icmp(Seq(12345), IcmpSignal::Refused);
    assert_eq!(ep.conn.state(), State::SynSent, "it does not quote our SYN");
    assert_eq!(ep.counters.tcp_out_of_window_icmps.get(), 2);
    ep.conn.on_icmp(LOCAL_ISS, IcmpSignal::Refused);
    assert_eq!((ep.conn.state(), ep.conn.error()), (State::Closed, Some(TcpError::Refused)));
}

/// A connection born from a SYN cookie takes data in the peer's first segment after the ACK (the
/// cookie SYN-ACK already advertised a window) and its timestamps continue from the cookie's TSval,
/// so that the peer's PAWS check accepts them.
#[test]
fn test_cookie_established_data_and_timestamps() {
    use crate::tcp::isn::SynCookies;
    use crate::tcp::listen::{Listener, SynVerdict};
    use crate::tcp::Connection;
    use std::sync::Arc;

    let now = Instant::now();
    let cookies = SynCookies::new([7; 16]);
    let listener = Listener::new(LOCAL, 0, 1 << 16, 1460);
    let syn = TcpRepr {
        seq: REMOTE_ISS,
        flags: SYN,
        max_seg_size: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamp: Some((2_731_854_619, 0)),
        ..TEMPLATE
    };
    // A worker clock far from any per-connection offset the connection could pick on its own.
    let cookie_ts = 698;
    let SynVerdict::Cookie(synack) = listener.on_syn(LOCAL, REMOTE, &syn, &cookies, 5, cookie_ts, true, true)
    else {
        panic!("a full SYN queue answers with a cookie")
    };
    let (our_tsval, _) = synack.timestamp.expect("timestamps kept");
    let ack = TcpRepr {
        seq: REMOTE_ISS + 1,
        ack: Some(synack.seq + 1),
        window_len: 63,
        timestamp: Some((2_731_854_620, our_tsval)),
        ..TEMPLATE
    };
    let cc = listener.check_cookie(LOCAL, REMOTE, &ack, &cookies, 5).expect("valid cookie");
    let ((app_tx, tx), (rx, app_rx)) = buffers(1 << 16);
    let counters = Arc::new(crate::counters::Counters::default());
    let mut conn = Connection::from_cookie(
        now,
        &params(LOCAL, REMOTE),
        Arc::new(TcpConfig::default()),
        &ack,
        cc.mss,
        cc.wscale,
        cc.sack,
        tx,
        rx,
        counters.clone(),
    );
    assert_eq!(conn.state(), State::Established);
    let data = TcpRepr { flags: PSH, payload_len: 18, ..ack };
    let later = now + Duration::from_millis(1);
    conn.on_segment(later, &data, b"through the cookie");
    let mut ep = Endpoint { conn, app_tx, app_rx, counters };
    let t = ep.conn.poll_timeout().expect("a delayed ACK is due");
    ep.conn.on_timeout(t);
    let (a, _) = one(ep.output(t));
    assert_eq!(a.ack, Some(REMOTE_ISS + 19), "the first data segment is in the window");
    let (tsval, tsecr) = a.timestamp.expect("timestamps on");
    assert!(
        tsval.wrapping_sub(our_tsval) as i32 >= 0,
        "TSval {tsval} went back from the cookie's {our_tsval}"
    );
    assert!(tsval.wrapping_sub(our_tsval) < 1000, "TSval {tsval} jumped from the cookie's {our_tsval}");
    assert_eq!(tsecr, 2_731_854_620);
    assert_eq!(ep.read_all(), b"through the cookie");
}

/// Payload lengths of what went out.
fn lens(out: &[(TcpRepr, Vec<u8>)]) -> Vec<usize> {
    out.iter().map(|(r, _)| r.payload_len).collect()
}

/// A passive open with `config`, answering `syn` from REMOTE's port 4000; the SYN-ACK is returned.
fn accepted(now: Instant, config: TcpConfig, syn: &TcpRepr, cap: usize) -> (Endpoint, TcpRepr) {
    let mut ep = Endpoint::accept(now, config, params(REMOTE, LOCAL), Seq(9000), syn, cap);
    let (sa, _) = one(ep.output(now));
    assert_eq!(sa.flags, SYN);
    (ep, sa)
}

/// The peer's SYN for [`accepted`].
const PEER_SYN: TcpRepr = TcpRepr { src_port: 4000, dst_port: 80, seq: Seq(300), flags: SYN, ..TEMPLATE };

#[test]
fn test_syn_sent_window_scale_offered_by_both_sides_scales_both_ways() {
    let now = Instant::now();
    let cfg = TcpConfig { timestamps: false, sack: false, ..TcpConfig::default() };
    let mut ep = Endpoint::connect(now, cfg, params(LOCAL, REMOTE), LOCAL_ISS, 1 << 20);
    let (syn, _) = one(ep.output(now));
    // RFC 7323 §2.3: 1 MiB fits the 16-bit field with a shift of 5; §2.2: a SYN's window is never scaled.
    assert_eq!((syn.window_scale, syn.window_len), (Some(5), 65535));
    ep.conn.on_segment(now, &TcpRepr { window_scale: Some(7), window_len: 1000, ..syn_ack() }, &[]);
    let (a, _) = one(ep.output(now));
    assert_eq!(a.window_len, ((1 << 20) >> 5) as u16, "our window, shifted by our scale");
    assert_eq!((ep.conn.info().rcv_wscale, ep.conn.info().snd_wscale), (5, 7));
    // The SYN-ACK's window is taken as it is: 1000 bytes, not 1000 << 7.
    assert_eq!(lens(&send(&mut ep, now, &[0u8; 4000])), vec![1000]);
    // Later windows are scaled: 100 << 7 = 12800 bytes lets the other 3000 go.
    ep.conn.on_segment(now, &TcpRepr { window_len: 100, ..ack(LOCAL_ISS + 1001) }, &[]);
    assert_eq!(lens(&ep.output(now)), vec![1460, 1460, 80]);
}

#[test]
fn test_syn_sent_window_scale_not_offered_by_the_peer_scales_neither_way() {
    let now = Instant::now();
    let cfg = TcpConfig { timestamps: false, sack: false, ..TcpConfig::default() };
    let mut ep = Endpoint::connect(now, cfg, params(LOCAL, REMOTE), LOCAL_ISS, 1 << 20);
    let (syn, _) = one(ep.output(now));
    assert_eq!(syn.window_scale, Some(5), "we offer");
    ep.conn.on_segment(now, &syn_ack(), &[]); // the peer does not
    let (a, _) = one(ep.output(now));
    assert_eq!(a.window_len, 65535, "our 1 MiB window, unscaled, tops out at 65535");
    assert_eq!((ep.conn.info().rcv_wscale, ep.conn.info().snd_wscale), (0, 0));
    ep.conn.on_segment(now, &TcpRepr { window_len: 100, ..ack(LOCAL_ISS + 1) }, &[]);
    assert_eq!(lens(&send(&mut ep, now, &[0u8; 300])), vec![100], "the peer's 100 is 100 bytes");
}

#[test]
fn test_syn_received_window_scale_offered_by_one_side_only_scales_neither_way() {
    let now = Instant::now();
    let on = TcpConfig { timestamps: false, sack: false, ..TcpConfig::default() };
    let off = TcpConfig { window_scaling: false, ..on.clone() };
    let offering = TcpRepr { window_scale: Some(7), ..PEER_SYN };
    // The peer offers and we do not; we would offer and the peer does not.
    for (cfg, syn) in [(off, offering), (on, PEER_SYN)] {
        let (mut ep, sa) = accepted(now, cfg, &syn, 1 << 20);
        assert_eq!((sa.window_scale, sa.window_len), (None, 65535), "{syn:?}");
        ep.conn.on_segment(
            now,
            &TcpRepr { seq: Seq(301), ack: Some(Seq(9001)), window_len: 100, ..TEMPLATE },
            &[],
        );
        assert_eq!(ep.conn.state(), State::Established);
        assert_eq!((ep.conn.info().rcv_wscale, ep.conn.info().snd_wscale), (0, 0));
        let out = send(&mut ep, now, &[0u8; 300]);
        assert_eq!(lens(&out), vec![100], "the peer's window is not scaled");
        assert_eq!(out[0].0.window_len, 65535, "nor is ours");
    }
}

#[test]
fn test_established_ack_of_a_retransmitted_segment_gives_no_rtt_sample() {
    let t0 = Instant::now();
    let mut ep = synsent(t0, plain_config());
    let t1 = t0 + Duration::from_millis(100);
    ep.conn.on_segment(t1, &syn_ack(), &[]);
    ep.output(t1);
    assert_eq!(ep.conn.info().rtt_us, 100_000);
    // A segment sent once is timed: SRTT = 7/8 * 100 + 1/8 * 60 = 95 ms.
    send(&mut ep, t1, b"once");
    let t2 = t1 + Duration::from_millis(60);
    ep.conn.on_segment(t2, &ack(LOCAL_ISS + 5), &[]);
    assert_eq!(ep.conn.info().rtt_us, 95_000);
    let rto = ep.conn.info().rto_us;
    // A segment sent twice is not (Karn): its ACK could be for either copy.
    send(&mut ep, t2, b"twice");
    let t3 = ep.conn.poll_timeout().unwrap();
    ep.conn.on_timeout(t3);
    assert_eq!(one(ep.output(t3)).1, b"twice");
    ep.conn.on_segment(t3 + Duration::from_millis(10), &ack(LOCAL_ISS + 10), &[]);
    assert_eq!(ep.conn.info().rtt_us, 95_000, "no sample from the retransmitted segment's ACK");
    assert_eq!(ep.conn.info().rto_us, 2 * rto, "the backed-off RTO stays until a valid sample");
}

#[test]
fn test_syn_sent_syn_ack_after_a_retransmitted_syn_gives_no_rtt_sample() {
    let t0 = Instant::now();
    let mut ep = synsent(t0, plain_config());
    let t = ep.conn.poll_timeout().unwrap();
    ep.conn.on_timeout(t);
    assert_eq!(one(ep.output(t)).0.flags, SYN);
    ep.conn.on_segment(t + Duration::from_millis(30), &syn_ack(), &[]);
    assert_eq!(ep.conn.state(), State::Established);
    assert_eq!(ep.conn.info().rtt_us, 0, "no RTT sample at all");
}

#[test]
fn test_syn_received_ack_of_a_resent_syn_ack_gives_no_rtt_sample() {
    let t0 = Instant::now();
    let last_ack = TcpRepr { seq: Seq(301), ack: Some(Seq(9001)), ..TEMPLATE };
    // Sent once: the ACK times it.
    let (mut ep, _) = accepted(t0, plain_config(), &PEER_SYN, 1 << 16);
    ep.conn.on_segment(t0 + Duration::from_millis(60), &last_ack, &[]);
    assert_eq!(ep.conn.info().rtt_us, 60_000);
    // The peer's SYN again: the SYN-ACK goes again, and the ACK no longer tells which one it answers.
    let (mut ep, _) = accepted(t0, plain_config(), &PEER_SYN, 1 << 16);
    let t1 = t0 + Duration::from_millis(50);
    ep.conn.on_segment(t1, &PEER_SYN, &[]);
    assert_eq!(one(ep.output(t1)).0.flags, SYN);
    ep.conn.on_segment(t0 + Duration::from_millis(60), &last_ack, &[]);
    assert_eq!(ep.conn.state(), State::Established);
    assert_eq!(ep.conn.info().rtt_us, 0);
}

#[test]
fn test_established_sender_holds_a_small_segment_for_a_small_window() {
    let now = Instant::now();
    let mut ep = established(now); // the largest window the peer offered: 65535
    ep.conn.on_segment(now, &TcpRepr { window_len: 2000, ..ack(LOCAL_ISS + 1) }, &[]);
    // RFC 9293 §3.8.6.2.1: a full segment goes; the 540 bytes left in the window do not, since more
    // is queued and 540 is less than half the largest window.
    assert_eq!(lens(&send(&mut ep, now, &[1u8; 5000])), vec![1460]);
    ep.conn.on_segment(now, &TcpRepr { window_len: 2000, ..ack(LOCAL_ISS + 1461) }, &[]);
    assert_eq!(lens(&ep.output(now)), vec![1460]);
    // With nothing in flight no ACK would come to reopen the window: the small segment goes now
    // (in place of the RFC's override timer).
    ep.conn.on_segment(now, &TcpRepr { window_len: 540, ..ack(LOCAL_ISS + 2921) }, &[]);
    assert_eq!(lens(&ep.output(now)), vec![540]);
}

#[test]
fn test_established_sender_sends_half_the_largest_window() {
    let now = Instant::now();
    let mut ep = synsent(now, plain_config());
    ep.conn.on_segment(now, &TcpRepr { window_len: 1000, ..syn_ack() }, &[]);
    ep.output(now);
    // A segment that fills the usable window goes when it is at least half the largest window
    // (1000): 1000, then 600 ...
    assert_eq!(lens(&send(&mut ep, now, &[1u8; 5000])), vec![1000]);
    ep.conn.on_segment(now, &TcpRepr { window_len: 1000, ..ack(LOCAL_ISS + 601) }, &[]);
    assert_eq!(lens(&ep.output(now)), vec![600]);
    // ... but not 300, with data in flight.
    ep.conn.on_segment(now, &TcpRepr { window_len: 1000, ..ack(LOCAL_ISS + 901) }, &[]);
    assert!(ep.output(now).is_empty());
    ep.conn.on_segment(now, &TcpRepr { window_len: 1000, ..ack(LOCAL_ISS + 1601) }, &[]);
    assert_eq!(lens(&ep.output(now)), vec![1000]);
}

#[test]
fn test_time_wait_lasts_twice_a_configured_msl() {
    use crate::tcp::timewait::TimeWait;
    let now = Instant::now();
    let mut ep = established_with(now, TcpConfig { msl: Duration::from_secs(2), ..plain_config() });
    ep.app_tx.close();
    ep.conn.on_app_activity(now);
    ep.output(now);
    ep.conn.on_segment(now, &TcpRepr { flags: FIN, ..ack(LOCAL_ISS + 2) }, &[]);
    assert_eq!(ep.conn.state(), State::TimeWait);
    ep.output(now);
    assert_eq!(ep.conn.poll_timeout(), Some(now + Duration::from_secs(4)));
    assert_eq!(TimeWait::from_connection(&ep.conn, now).expires, now + Duration::from_secs(4));
    let later = now + Duration::from_secs(1);
    ep.conn.on_segment(later, &TcpRepr { flags: FIN, ..ack(LOCAL_ISS + 2) }, &[]);
    ep.output(later);
    assert_eq!(ep.conn.poll_timeout(), Some(later + Duration::from_secs(4)), "a FIN restarts 2·MSL");
    ep.conn.on_timeout(later + Duration::from_secs(4));
    assert!(ep.conn.is_finished());
}

#[test]
fn test_established_rto_respects_a_configured_minimum() {
    // The handshake measures 10 ms: RTO = 10 + 4 * 5 = 30 ms before the bounds (RFC 6298 §2.2).
    for (min_rto, rto) in [(500, 500), (5, 30)] {
        let t0 = Instant::now();
        let cfg = TcpConfig { min_rto: Duration::from_millis(min_rto), ..plain_config() };
        let mut ep = synsent(t0, cfg);
        let t1 = t0 + Duration::from_millis(10);
        ep.conn.on_segment(t1, &syn_ack(), &[]);
        ep.output(t1);
        send(&mut ep, t1, b"timed");
        assert_eq!(ep.conn.poll_timeout(), Some(t1 + Duration::from_millis(rto)), "min_rto {min_rto} ms");
    }
}

#[test]
fn test_established_after_a_timeout_an_echo_from_before_it_gives_no_rtt_sample() {
    let t0 = Instant::now();
    let cfg = TcpConfig { sack: false, window_scaling: false, ..TcpConfig::default() };
    let mut ep = synsent(t0, cfg);
    let t1 = t0 + Duration::from_millis(10);
    ep.conn.on_segment(t1, &TcpRepr { timestamp: Some((1000, 0)), ..syn_ack() }, &[]);
    ep.output(t1);
    assert_eq!(ep.conn.info().rtt_us, 10_000);
    let tsval = |out: Vec<(TcpRepr, Vec<u8>)>| one(out).0.timestamp.unwrap().0;
    let peer_ack = |acked: usize, peer_ts: u32, echo: u32| TcpRepr {
        timestamp: Some((peer_ts, echo)),
        ..ack(LOCAL_ISS + acked)
    };

    // The segment arrives but its ACK is lost; the timer fires and the segment goes again. The
    // peer's answer to the duplicate echoes the first copy's TSval (RFC 7323 §4.3): the time since
    // then includes the whole timeout, and is no RTT.
    let first = tsval(send(&mut ep, t1, b"x"));
    let rto = ep.conn.poll_timeout().unwrap();
    ep.conn.on_timeout(rto);
    let resent = tsval(ep.output(rto));
    assert_ne!(first, resent);
    ep.conn.on_segment(rto + Duration::from_millis(10), &peer_ack(2, 1001, first), &[]);
    assert_eq!(ep.conn.info().rtt_us, 10_000, "no sample from an echo older than the timeout");
    assert_eq!(ep.conn.info().rto_us, 400_000, "and the RTO stays backed off (200 ms doubled)");

    // An echo of a copy sent after the timeout is a sample (RFC 7323 RTTM), and ends the backoff.
    let t2 = rto + Duration::from_millis(20);
    tsval(send(&mut ep, t2, b"y"));
    let rto2 = ep.conn.poll_timeout().unwrap();
    ep.conn.on_timeout(rto2);
    let resent = tsval(ep.output(rto2));
    ep.conn.on_segment(rto2 + Duration::from_millis(6), &peer_ack(3, 1002, resent), &[]);
    // SRTT = 7/8 * 10 + 1/8 * 6 = 9.5 ms.
    assert_eq!(ep.conn.info().rtt_us, 9_500);
    assert_eq!(ep.conn.info().rto_us, 200_000);
}

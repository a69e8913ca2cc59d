//! Counters: every frame the stack drops is counted by name.
//!
//! Names follow the SNMP MIB names Linux prints with `nstat` where one exists (`IpInReceives`,
//! `UdpNoPorts`, ...); the stack's own reasons get names in the same style (`EthInTruncated`,
//! `IpInBadChecksum`, ...). Each worker owns one [`Counters`] and is its only writer, so an increment is
//! a relaxed load and store, not a locked read-modify-write; readers (the `Stack`, `xdpstack stat`)
//! sum the workers' values.

use std::sync::atomic::{AtomicU64, Ordering};

/// A counter written by exactly one thread and read by any.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Add one. Only the owning worker calls this.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Add `n`. Only the owning worker calls this.
    #[inline]
    pub fn add(&self, n: u64) {
        // Single writer: a plain load + store is enough and avoids a locked instruction.
        self.0.store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Overwrite the value (gauges).
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// Current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

macro_rules! define_counters {
    ($( $(#[doc = $doc:literal])* $field:ident => $name:literal, )*) => {
        /// The counters of one worker. Field names are snake_case; [`Counters::iter`] gives the MIB-style names.
        #[derive(Debug, Default)]
        pub struct Counters {
            $( $(#[doc = $doc])* pub $field: Counter, )*
        }

        impl Counters {
            /// Every counter as (name, value), in declaration order.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
                [$( ($name, self.$field.get()), )*].into_iter()
            }

            /// All counter names, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($name,)*];
        }
    };
}

define_counters! {
    /// Frames handed to the stack by the device.
    eth_in_frames => "EthInFrames",
    /// Frames written to the device.
    eth_out_frames => "EthOutFrames",
    /// Frames too short for an Ethernet header.
    eth_in_truncated => "EthInTruncated",
    /// Frames whose destination MAC is neither ours nor broadcast.
    eth_in_not_for_us => "EthInNotForUs",
    /// Frames with an EtherType the stack does not handle.
    eth_in_unknown_type => "EthInUnknownType",
    /// Frames on a VLAN other than the configured one.
    eth_in_wrong_vlan => "EthInWrongVlan",
    /// Frames dropped because the TX ring or frame pool was full.
    eth_out_dropped => "EthOutDropped",

    /// ARP requests received.
    arp_in_requests => "ArpInRequests",
    /// ARP replies received.
    arp_in_replies => "ArpInReplies",
    /// ARP packets that failed to parse (truncated, not Ethernet/IPv4).
    arp_in_malformed => "ArpInMalformed",
    /// ARP packets about addresses that are not ours (ignored after learning).
    arp_in_not_for_us => "ArpInNotForUs",
    /// ARP requests sent (resolutions, retries, gratuitous).
    arp_out_requests => "ArpOutRequests",
    /// ARP replies sent.
    arp_out_replies => "ArpOutReplies",
    /// Resolutions that gave up after the last retry.
    arp_resolve_failed => "ArpResolveFailed",
    /// Packets dropped from (or refused by) the queue waiting on a resolution.
    arp_queue_drops => "ArpQueueDrops",

    /// IPv4 datagrams received (RFC 1213 ipInReceives).
    ip_in_receives => "IpInReceives",
    /// IPv4 datagrams discarded for header errors (all the reasons below).
    ip_in_hdr_errors => "IpInHdrErrors",
    /// ... of which: version is not 4.
    ip_in_bad_version => "IpInBadVersion",
    /// ... of which: IHL below 5 or beyond the total length.
    ip_in_bad_header_len => "IpInBadHeaderLen",
    /// ... of which: total length beyond the frame or below the header.
    ip_in_bad_total_len => "IpInBadTotalLen",
    /// ... of which: header checksum wrong.
    ip_in_csum_errors => "IpInCsumErrors",
    /// ... of which: a bad source address (broadcast, multicast).
    ip_in_bad_src => "IpInBadSrc",
    /// Datagrams not addressed to us (we never forward).
    ip_in_addr_errors => "IpInAddrErrors",
    /// Datagrams for a protocol the stack does not speak.
    ip_in_unknown_protos => "IpInUnknownProtos",
    /// Datagrams delivered to ICMP/UDP/TCP.
    ip_in_delivers => "IpInDelivers",
    /// Datagrams the stack sent (before fragmentation).
    ip_out_requests => "IpOutRequests",
    /// Datagrams dropped for lack of a route.
    ip_out_no_routes => "IpOutNoRoutes",
    /// Fragments received.
    ip_reasm_reqds => "IpReasmReqds",
    /// Datagrams reassembled.
    ip_reasm_oks => "IpReasmOKs",
    /// Reassembly failures (timeout, memory cap, inconsistent fragments).
    ip_reasm_fails => "IpReasmFails",
    /// ... of which: timed out.
    ip_reasm_timeout => "IpReasmTimeout",
    /// ... of which: evicted by the memory cap.
    ip_reasm_overflow => "IpReasmOverflow",
    /// Datagrams fragmented on output.
    ip_frag_oks => "IpFragOKs",
    /// Fragments created.
    ip_frag_creates => "IpFragCreates",
    /// Datagrams too big with DF set.
    ip_frag_fails => "IpFragFails",

    /// ICMP messages received.
    icmp_in_msgs => "IcmpInMsgs",
    /// ICMP messages with errors (truncated, bad checksum).
    icmp_in_errors => "IcmpInErrors",
    /// ... of which: bad checksum.
    icmp_in_csum_errors => "IcmpInCsumErrors",
    /// Echo requests received.
    icmp_in_echos => "IcmpInEchos",
    /// Echo replies received.
    icmp_in_echo_reps => "IcmpInEchoReps",
    /// Destination unreachable received.
    icmp_in_dest_unreachs => "IcmpInDestUnreachs",
    /// Time exceeded received.
    icmp_in_time_excds => "IcmpInTimeExcds",
    /// ICMP messages sent.
    icmp_out_msgs => "IcmpOutMsgs",
    /// Echo replies sent.
    icmp_out_echo_reps => "IcmpOutEchoReps",
    /// Destination unreachable sent.
    icmp_out_dest_unreachs => "IcmpOutDestUnreachs",
    /// ICMP errors not sent because of the rate limit.
    icmp_out_rate_limited => "IcmpOutRateLimited",

    /// UDP datagrams delivered to a socket.
    udp_in_datagrams => "UdpInDatagrams",
    /// UDP datagrams to a port with no socket.
    udp_no_ports => "UdpNoPorts",
    /// UDP datagrams dropped for errors (bad length, checksum, full socket).
    udp_in_errors => "UdpInErrors",
    /// ... of which: bad checksum.
    udp_in_csum_errors => "UdpInCsumErrors",
    /// ... of which: the socket's receive queue was full.
    udp_rcvbuf_errors => "UdpRcvbufErrors",
    /// UDP datagrams sent.
    udp_out_datagrams => "UdpOutDatagrams",

    /// Datagrams copied to raw sockets (one per datagram, however many sockets took it).
    raw_in_delivers => "RawInDelivers",
    /// Copies dropped because a raw socket's receive queue was full.
    raw_rcvbuf_errors => "RawRcvbufErrors",
    /// Datagrams sent from raw sockets.
    raw_out_datagrams => "RawOutDatagrams",
    /// Raw sends that failed in the worker (no route, bad header, too long, TX full).
    raw_out_errors => "RawOutErrors",

    /// TCP connections opened actively (RFC 4022 tcpActiveOpens).
    tcp_active_opens => "TcpActiveOpens",
    /// TCP connections opened passively.
    tcp_passive_opens => "TcpPassiveOpens",
    /// Connection attempts that failed (SYN-SENT/SYN-RECEIVED to CLOSED).
    tcp_attempt_fails => "TcpAttemptFails",
    /// Resets of ESTABLISHED or CLOSE-WAIT connections.
    tcp_estab_resets => "TcpEstabResets",
    /// Gauge: connections in ESTABLISHED or CLOSE-WAIT (per worker it may wrap; the sum is right).
    tcp_curr_estab => "TcpCurrEstab",
    /// Segments received (including errors).
    tcp_in_segs => "TcpInSegs",
    /// Segments sent, retransmissions included.
    tcp_out_segs => "TcpOutSegs",
    /// Segments retransmitted.
    tcp_retrans_segs => "TcpRetransSegs",
    /// Segments received with errors (checksum, header).
    tcp_in_errs => "TcpInErrs",
    /// ... of which: bad checksum.
    tcp_in_csum_errors => "TcpInCsumErrors",
    /// Resets sent.
    tcp_out_rsts => "TcpOutRsts",
    /// SYN cookies sent (TcpExt SyncookiesSent).
    syncookies_sent => "SyncookiesSent",
    /// Valid SYN cookies received.
    syncookies_recv => "SyncookiesRecv",
    /// Invalid SYN cookies received.
    syncookies_failed => "SyncookiesFailed",
    /// The accept queue was full.
    listen_overflows => "ListenOverflows",
    /// SYNs dropped at a listener.
    listen_drops => "ListenDrops",
    /// Challenge ACKs sent (RFC 5961).
    tcp_challenge_ack => "TCPChallengeACK",
    /// Segments dropped by PAWS.
    tcp_paws_estab => "PAWSEstab",
    /// ICMP errors ignored because the TCP sequence number they quote is outside the send window
    /// (RFC 5927 §4.1; TcpExt OutOfWindowIcmps).
    tcp_out_of_window_icmps => "OutOfWindowIcmps",
    /// Fast retransmits.
    tcp_fast_retrans => "TCPFastRetrans",
    /// Retransmission timeouts.
    tcp_timeouts => "TCPTimeouts",
    /// Out-of-order segments held.
    tcp_ofo_queue => "TCPOFOQueue",
    /// Out-of-order segments dropped (beyond the buffer).
    tcp_ofo_drop => "TCPOFODrop",
    /// Connections reset because the application closed with unread data.
    tcp_abort_on_close => "TCPAbortOnClose",
    /// Connections reset because data arrived after the application closed.
    tcp_abort_on_data => "TCPAbortOnData",
    /// Connections dropped after retransmission or keepalive timeouts.
    tcp_abort_on_timeout => "TCPAbortOnTimeout",
    /// TIME-WAIT records whose wait ended (TcpExt TW).
    tcp_tw => "TW",
    /// TIME-WAIT records ended early by a reset (TcpExt TWKilled).
    tcp_tw_killed => "TWKilled",

    /// Frames received from the AF_XDP RX rings.
    xsk_rx_frames => "XskRxFrames",
    /// Frames placed on the AF_XDP TX rings.
    xsk_tx_frames => "XskTxFrames",
    /// Times a frame could not be sent because the TX ring or the free pool was empty.
    xsk_tx_full => "XskTxFull",
    /// Gauge: frames in the worker's free list (published when the worker goes idle).
    xsk_frames_free => "XskFramesFree",
    /// Gauge: frames lent to the kernel's fill rings (per worker it can be negative when sockets
    /// share a queue; the sum over workers is the true figure).
    xsk_frames_in_fill => "XskFramesInFill",
    /// Gauge: frames on the TX rings, not yet completed (same caveat).
    xsk_frames_in_tx => "XskFramesInTx",
    /// Gauge: frames in the pool shared by all workers (published by worker 0).
    xsk_frames_global => "XskFramesGlobal",
    /// Commands received from applications.
    worker_commands => "WorkerCommands",
    /// Times the worker slept in poll(2).
    worker_sleeps => "WorkerSleeps",
    /// Nanoseconds the worker found nothing to do (spinning or sleeping; in run-to-completion mode,
    /// the time application threads spent waiting in the stack with nothing to do). The rest of the
    /// elapsed time is its work: a busy-polling core is always 100% busy to the OS, and this tells
    /// how much of it was real.
    worker_idle_ns => "WorkerIdleNs",
    /// Stage timing (Config::stage_timing): nanoseconds from the XDP program's stamp to the worker
    /// taking the frame off the RX ring, summed over `StageRxFrames`.
    stage_xdp_to_rx_ns => "StageXdpToRxNs",
    /// Stage timing: stamped frames received.
    stage_rx_frames => "StageRxFrames",
    /// Stage timing: nanoseconds from taking frames off the RX ring to starting the TX kick
    /// (sendto) that followed: protocol processing, the application, building the answer.
    stage_user_ns => "StageUserNs",
    /// Stage timing: nanoseconds spent in those TX kicks (copy-mode transmit in the kernel).
    stage_kick_ns => "StageKickNs",
    /// Stage timing: receive-to-kick intervals measured.
    stage_turnarounds => "StageTurnarounds",
}

impl Counters {
    /// Sum several workers' counters into (name, total) pairs.
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a Counters>) -> Vec<(&'static str, u64)> {
        let mut totals: Vec<(&'static str, u64)> = Counters::NAMES.iter().map(|n| (*n, 0)).collect();
        for c in all {
            for (slot, (_, v)) in totals.iter_mut().zip(c.iter()) {
                // Gauges of one worker may be negative (two's complement); the sum is right.
                slot.1 = slot.1.wrapping_add(v);
            }
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_sum_adds() {
        let mut names = Counters::NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Counters::NAMES.len());

        let a = Counters::default();
        let b = Counters::default();
        a.udp_no_ports.inc();
        b.udp_no_ports.add(2);
        b.ip_in_receives.inc();
        let sum = Counters::sum([&a, &b]);
        assert!(sum.contains(&("UdpNoPorts", 3)));
        assert!(sum.contains(&("IpInReceives", 1)));
        assert!(sum.contains(&("IpInDelivers", 0)));
    }
}

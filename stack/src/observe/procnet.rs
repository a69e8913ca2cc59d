//! The socket table in the text format of Linux's `/proc/net/tcp`, `/proc/net/udp` and
//! `/proc/net/raw`, so that scripts written for those files read the stack's sockets unchanged.
//!
//! The layouts follow the kernel's `tcp4_seq_show` (with `get_tcp4_sock`, `get_openreq4` and
//! `get_timewait4_sock`, lines padded to 149 characters), `udp4_seq_show` / `udp4_format_sock` (padded
//! to 127) and `raw_seq_show` (not padded). Addresses are the IPv4 address as a native-endian
//! (little-endian on x86) 32-bit number in hex, as the kernel prints the `__be32` it holds, so
//! `127.0.0.1:22` is `0100007F:0016`; states are the numbers of `include/net/tcp_states.h`. Fields the
//! stack has no equivalent for (kernel pointers, timers, reference counts) are zeros, as an
//! unprivileged reader of the kernel's files sees them. rx_queue of a UDP or raw socket counts
//! bytes, not datagrams: the bytes of the datagrams waiting (a raw socket's with their IP headers),
//! where the kernel counts the memory its buffers for them take. `sl` numbers each file's own rows
//! from 0 (the kernel prints a running count in `net/tcp` and the hash bucket in `net/udp` and
//! `net/raw`; scripts do not read it).

use std::fmt::Write as _;
use std::net::SocketAddrV4;

use super::{SocketInfo, SocketKind};
use crate::tcp::State;

/// Width the kernel pads `/proc/net/tcp` lines to (TMPSZ - 1).
const TCP_WIDTH: usize = 149;
/// Width the kernel pads `/proc/net/udp` lines to.
const UDP_WIDTH: usize = 127;
/// A kernel pointer as `%pK` prints it when pointers are hidden.
const NO_POINTER: &str = "0000000000000000";

/// `A.B.C.D:P` as `/proc/net` prints it: `%08X:%04X` of the address as a native-endian u32.
pub fn hex_addr(a: SocketAddrV4) -> String {
    format!("{:08X}:{:04X}", u32::from_ne_bytes(a.ip().octets()), a.port())
}

fn peer(s: &SocketInfo) -> SocketAddrV4 {
    s.peer.unwrap_or(SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0))
}

/// Microseconds in clock ticks (USER_HZ = 100), as `jiffies_to_clock_t` gives them.
fn clock_t(us: u64) -> u64 {
    us / 10_000
}

fn pad(out: &mut String, start: usize, width: usize) {
    let len = out.len() - start;
    if len < width {
        out.extend(std::iter::repeat_n(' ', width - len));
    }
    out.push('\n');
}

/// The contents of `net/tcp`: TCP connections and listeners of `rows` (others are skipped).
pub fn tcp_table(rows: &[SocketInfo], uid: u32) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<w$}",
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
        w = TCP_WIDTH
    );
    for (i, s) in rows.iter().filter(|s| s.kind == SocketKind::Tcp).enumerate() {
        let start = out.len();
        let (src, dst, st) = (hex_addr(s.local), hex_addr(peer(s)), s.linux_state());
        let _ = match s.state {
            // get_timewait4_sock: no queues, the TIME-WAIT timer (3), no uid or inode.
            Some(State::TimeWait) => write!(
                out,
                "{i:4}: {src} {dst} {st:02X} {:08X}:{:08X} {:02X}:{:08X} {:08X} {:5} {:8} {} {} {NO_POINTER}",
                0, 0, 3, 0, 0, 0, 0, 0, 0
            ),
            // get_openreq4: a half-open connection, with the SYN-ACK timer (1) and no inode.
            Some(State::SynReceived) => write!(
                out,
                "{i:4}: {src} {dst} {st:02X} {:08X}:{:08X} {:02X}:{:08X} {:08X} {uid:5} {:8} {} {} {NO_POINTER}",
                0, 0, 1, 0, 0, 0, 0, 0
            ),
            // get_tcp4_sock.
            _ => {
                let t = s.tcp.unwrap_or_default();
                let mss = u64::from(t.mss.max(1));
                let (cwnd, ssthresh) = match s.tcp {
                    None => (10, 0),
                    Some(t) => (
                        (t.cwnd / mss).max(1),
                        if t.ssthresh >= u64::from(u32::MAX) { -1 } else { (t.ssthresh / mss) as i64 },
                    ),
                };
                let rto = if s.tcp.is_some() { clock_t(t.rto_us) } else { 100 };
                let (tx_queue, rx_queue) = match s.state {
                    Some(State::Listen) => (0, s.recv_q),
                    _ => (s.send_q, s.recv_q),
                };
                write!(
                    out,
                    "{i:4}: {src} {dst} {st:02X} {tx_queue:08X}:{rx_queue:08X} {:02X}:{:08X} {:08X} {uid:5} {:8} {} {} {NO_POINTER} {rto} {} {} {cwnd} {ssthresh}",
                    0, 0, 0, 0, s.id, 1, 0, 0
                )
            }
        };
        pad(&mut out, start, TCP_WIDTH);
    }
    out
}

/// The contents of `net/udp`: the UDP sockets of `rows`.
pub fn udp_table(rows: &[SocketInfo], uid: u32) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<w$}",
        "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops",
        w = UDP_WIDTH
    );
    for (i, s) in rows.iter().filter(|s| s.kind == SocketKind::Udp).enumerate() {
        let start = out.len();
        let _ = write!(
            out,
            "{i:5}: {} {} {:02X} {:08X}:{:08X} {:02X}:{:08X} {:08X} {uid:5} {:8} {} {} {NO_POINTER} {}",
            hex_addr(s.local),
            hex_addr(peer(s)),
            s.linux_state(),
            s.send_q,
            s.recv_q,
            0,
            0,
            0,
            0,
            s.id,
            2,
            0
        );
        pad(&mut out, start, UDP_WIDTH);
    }
    out
}

/// The contents of `net/raw`: the raw sockets of `rows` (the local port column is the protocol).
pub fn raw_table(rows: &[SocketInfo], uid: u32) -> String {
    let mut out = String::from(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n",
    );
    let raw = rows.iter().filter_map(|s| match s.kind {
        SocketKind::Raw(proto) => Some((s, proto)),
        _ => None,
    });
    for (i, (s, proto)) in raw.enumerate() {
        let local = SocketAddrV4::new(*s.local.ip(), u16::from(proto));
        let remote = SocketAddrV4::new(*peer(s).ip(), 0);
        let _ = writeln!(
            out,
            "{i:4}: {} {} {:02X} {:08X}:{:08X} {:02X}:{:08X} {:08X} {uid:5} {:8} {} {} {NO_POINTER} {}",
            hex_addr(local),
            hex_addr(remote),
            s.linux_state(),
            s.send_q,
            s.recv_q,
            0,
            0,
            0,
            0,
            s.id,
            2,
            0
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::conn::TcpInfo;

    fn row(kind: SocketKind, state: Option<State>, local: &str, peer: Option<&str>) -> SocketInfo {
        SocketInfo {
            kind,
            state,
            local: local.parse().unwrap(),
            peer: peer.map(|p| p.parse().unwrap()),
            recv_q: 0,
            send_q: 0,
            fd: Some(3),
            worker: Some(0),
            id: 1197,
            tcp: None,
        }
    }

    #[test]
    fn addresses_print_as_the_kernel_prints_them() {
        assert_eq!(hex_addr("127.0.0.1:22".parse().unwrap()), "0100007F:0016");
        assert_eq!(hex_addr("10.77.0.2:8080".parse().unwrap()), "02004D0A:1F90");
    }

    #[test]
    fn a_listener_line_matches_the_kernel_layout() {
        // A real line of /proc/net/tcp (pointer zeroed): a listener on 0.0.0.0:2024, inode 1197.
        let kernel = "   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1197 1 0000000000000000 100 0 0 10 0";
        let t = tcp_table(&[row(SocketKind::Tcp, Some(State::Listen), "0.0.0.0:2024", None)], 0);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.len() == 149), "{t}");
        assert!(lines[0].starts_with("  sl  local_address rem_address   st tx_queue rx_queue tr"));
        assert_eq!(lines[1].trim_end(), kernel);
    }

    #[test]
    fn connections_time_wait_and_half_open() {
        let mut est = row(SocketKind::Tcp, Some(State::Established), "10.0.0.2:80", Some("10.0.0.1:40000"));
        est.tcp = Some(TcpInfo {
            rto_us: 204_000,
            cwnd: 14_480,
            mss: 1448,
            ssthresh: u64::MAX,
            ..TcpInfo::default()
        });
        est.send_q = 5;
        est.recv_q = 7;
        let tw = row(SocketKind::Tcp, Some(State::TimeWait), "10.0.0.2:80", Some("10.0.0.1:40001"));
        let sr = row(SocketKind::Tcp, Some(State::SynReceived), "10.0.0.2:80", Some("10.0.0.1:40002"));
        let t = tcp_table(&[est, tw, sr, row(SocketKind::Udp, None, "0.0.0.0:7", None)], 1000);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "UDP rows stay out of net/tcp");
        assert_eq!(
            lines[1].trim_end(),
            "   0: 0200000A:0050 0100000A:9C40 01 00000005:00000007 00:00000000 00000000  1000        0 1197 1 0000000000000000 20 0 0 10 -1"
        );
        assert_eq!(
            lines[2].trim_end(),
            "   1: 0200000A:0050 0100000A:9C41 06 00000000:00000000 03:00000000 00000000     0        0 0 0 0000000000000000"
        );
        assert_eq!(
            lines[3].trim_end(),
            "   2: 0200000A:0050 0100000A:9C42 03 00000000:00000000 01:00000000 00000000  1000        0 0 0 0000000000000000"
        );
    }

    #[test]
    fn udp_and_raw_layouts() {
        let unconn = row(SocketKind::Udp, None, "0.0.0.0:7", None);
        let mut conn = row(SocketKind::Udp, None, "10.0.0.2:5000", Some("10.0.0.1:53"));
        conn.recv_q = 2;
        let t = udp_table(&[unconn, conn], 0);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines.iter().all(|l| l.len() == 127), "{t}");
        assert!(lines[0].starts_with("   sl  local_address rem_address   st tx_queue rx_queue"));
        assert_eq!(
            lines[1].trim_end(),
            "    0: 00000000:0007 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1197 2 0000000000000000 0"
        );
        assert!(lines[2].starts_with("    1: 0200000A:1388 0100000A:0035 01 00000000:00000002 "));

        // Rows of other kinds before the raw one do not count in its `sl`.
        let raw = raw_table(
            &[
                row(SocketKind::Tcp, Some(State::Listen), "0.0.0.0:80", None),
                row(SocketKind::Raw(1), None, "0.0.0.0:0", None),
            ],
            0,
        );
        assert_eq!(
            raw,
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
             \x20  0: 00000000:0001 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1197 2 0000000000000000 0\n"
        );
    }
}

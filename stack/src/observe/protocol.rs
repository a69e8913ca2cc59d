//! The control socket's request/response format, version 1: lines of UTF-8 text.
//!
//! Text rather than a binary format so that `socat - UNIX-CONNECT:/run/xdpstack/NAME/control` is a
//! debugging tool, and versioned so that a tool and a stack of different builds can tell they do not
//! understand each other instead of misreading fields.
//!
//! ```text
//! request:   XDPSTACK/1 <command>\n          command: info | sockets | counters | raw <PROTO>
//! response:  XDPSTACK/1 OK <n>\n             followed by exactly n record lines
//!        or: XDPSTACK/1 ERR <message>\n
//! ```
//!
//! A connection may carry several requests, one after the other. Records:
//! - `info`: `key value` lines: `protocol`, `version`, `pid`, `name`, `iface`, `ifindex`, `addrs`
//!   (comma-separated CIDRs), `workers`, `xdp_mode`, `zero_copy`, `run_dir`.
//! - `counters`: `Name value` lines, with the SNMP MIB names `nstat` uses.
//! - `sockets`: one socket per line as space-separated `key=value` fields: `kind` (`tcp`, `udp`,
//!   `raw:PROTO`), `state` (`ss` name, `-` for datagram sockets), `local`, `peer` (`-` if none),
//!   `recv_q`, `send_q`, `fd` (`-` if none), `worker` (`*`: every worker), `id`, and for TCP
//!   connections `rtt_us rttvar_us rto_us cwnd ssthresh mss rcv_wscale snd_wscale retrans
//!   bytes_acked bytes_received unacked`. Readers ignore keys they do not know (later versions may
//!   add fields without a version change).
//!
//! - `raw PROTO` (1..=254) opens a raw IP socket for that protocol on the stack and answers
//!   `XDPSTACK/1 OK 0`; from then on the connection is a *raw session* in binary frames, both ways
//!   `[IPv4 address: 4 bytes][length: u16][bytes]`, big-endian. The client sends the payload to put
//!   after an IP header the stack builds (the address is the destination, e.g. an ICMP echo request
//!   for `xdpstack ping`); the stack sends every datagram the socket receives, IP header included
//!   (the address is the source). The session (and the socket) ends when either side closes.
//!   This is how `xdpstack ping` uses a running stack's raw ICMP socket from another process.
//!
//! Requests longer than [`MAX_REQUEST`] bytes, unknown versions and unknown commands get an `ERR`
//! line; the stack is not otherwise affected.

use std::fmt::Write as _;
use std::net::SocketAddrV4;

use super::{SocketInfo, SocketKind};
use crate::tcp::conn::TcpInfo;
use crate::tcp::State;

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;
/// The first word of every request and response line.
pub const MAGIC: &str = "XDPSTACK/1";
/// Longest request line accepted, in bytes.
pub const MAX_REQUEST: usize = 256;

/// A request the control socket understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Who the stack is: pid, interface, addresses, version.
    Info,
    /// The socket table.
    Sockets,
    /// All counters.
    Counters,
    /// Open a raw socket for this IP protocol and turn the connection into a raw session.
    Raw(u8),
}

/// Length of a raw-session frame header: IPv4 address and payload length.
pub const RAW_FRAME_HEADER: usize = 6;

/// The header of a raw-session frame.
pub fn raw_frame_header(addr: std::net::Ipv4Addr, len: usize) -> [u8; RAW_FRAME_HEADER] {
    let mut h = [0u8; RAW_FRAME_HEADER];
    h[..4].copy_from_slice(&addr.octets());
    h[4..].copy_from_slice(&(len.min(usize::from(u16::MAX)) as u16).to_be_bytes());
    h
}

/// Address and payload length from a raw-session frame header.
pub fn parse_raw_frame_header(h: &[u8; RAW_FRAME_HEADER]) -> (std::net::Ipv4Addr, usize) {
    (std::net::Ipv4Addr::new(h[0], h[1], h[2], h[3]), usize::from(u16::from_be_bytes([h[4], h[5]])))
}

impl Request {
    /// The request line (without the newline).
    pub fn line(self) -> String {
        let cmd = match self {
            Request::Info => "info",
            Request::Sockets => "sockets",
            Request::Counters => "counters",
            Request::Raw(p) => return format!("{MAGIC} raw {p}"),
        };
        format!("{MAGIC} {cmd}")
    }

    /// Parse a request line; the error is the message for the `ERR` response.
    pub fn parse(line: &str) -> Result<Request, String> {
        let line = line.trim_end_matches(['\r', '\n']);
        let mut words = line.split_ascii_whitespace();
        let version = words.next().ok_or("empty request")?;
        if version != MAGIC {
            return Err(if version.starts_with("XDPSTACK/") {
                format!("unsupported protocol version {version:?}; this stack speaks {MAGIC}")
            } else {
                format!("malformed request: lines start with {MAGIC:?}")
            });
        }
        let req = match words.next() {
            Some("info") => Request::Info,
            Some("sockets") => Request::Sockets,
            Some("counters") => Request::Counters,
            Some("raw") => match words.next().map(str::parse::<u8>) {
                Some(Ok(p @ 1..=254)) => Request::Raw(p),
                _ => return Err("raw needs an IP protocol number 1..=254 (e.g. raw 1 for ICMP)".into()),
            },
            Some(other) => {
                return Err(format!("unknown command {other:?} (known: info, sockets, counters, raw)"))
            }
            None => return Err("missing command (info, sockets, counters, raw)".into()),
        };
        match words.next() {
            Some(extra) => Err(format!("unexpected {extra:?} after the command")),
            None => Ok(req),
        }
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>, none: &str) -> String {
    v.map_or_else(|| none.to_string(), |v| v.to_string())
}

/// One `sockets` record line (without the newline).
pub fn encode_socket(s: &SocketInfo) -> String {
    let kind = match s.kind {
        SocketKind::Tcp => "tcp".to_string(),
        SocketKind::Udp => "udp".to_string(),
        SocketKind::Raw(p) => format!("raw:{p}"),
    };
    let mut line = format!(
        "kind={kind} state={} local={} peer={} recv_q={} send_q={} fd={} worker={} id={}",
        s.state.map_or("-", State::ss_name),
        s.local,
        opt(s.peer, "-"),
        s.recv_q,
        s.send_q,
        opt(s.fd, "-"),
        opt(s.worker, "*"),
        s.id
    );
    if let Some(t) = &s.tcp {
        let _ = write!(
            line,
            " rtt_us={} rttvar_us={} rto_us={} cwnd={} ssthresh={} mss={} rcv_wscale={} snd_wscale={} \
             retrans={} bytes_acked={} bytes_received={} unacked={}",
            t.rtt_us,
            t.rttvar_us,
            t.rto_us,
            t.cwnd,
            t.ssthresh,
            t.mss,
            t.rcv_wscale,
            t.snd_wscale,
            t.retransmits,
            t.bytes_acked,
            t.bytes_received,
            t.unacked
        );
    }
    line
}

/// The TCP state with this `ss` name.
pub fn state_from_ss_name(name: &str) -> Option<State> {
    (0..=10).map(State::from_u8).find(|s| s.ss_name() == name)
}

/// Parse a `sockets` record line.
pub fn decode_socket(line: &str) -> Result<SocketInfo, String> {
    let bad = |what: &str, v: &str| format!("bad {what} {v:?} in socket record {line:?}");
    let (mut kind, mut state, mut local, mut peer) = (None, None, None, None);
    let (mut recv_q, mut send_q, mut fd, mut worker, mut id) = (0, 0, None, None, 0);
    let mut t = TcpInfo::default();
    let mut has_tcp = false;
    for field in line.split_ascii_whitespace() {
        let Some((k, v)) = field.split_once('=') else { return Err(bad("field", field)) };
        let num = || v.parse::<u64>().map_err(|_| bad(k, v));
        let addr = || v.parse::<SocketAddrV4>().map_err(|_| bad(k, v));
        match k {
            "kind" => {
                kind = Some(match v {
                    "tcp" => SocketKind::Tcp,
                    "udp" => SocketKind::Udp,
                    _ => match v.strip_prefix("raw:").and_then(|p| p.parse().ok()) {
                        Some(p) => SocketKind::Raw(p),
                        None => return Err(bad(k, v)),
                    },
                })
            }
            "state" if v == "-" => state = None,
            "state" => state = Some(state_from_ss_name(v).ok_or_else(|| bad(k, v))?),
            "local" => local = Some(addr()?),
            "peer" if v == "-" => peer = None,
            "peer" => peer = Some(addr()?),
            "recv_q" => recv_q = num()? as usize,
            "send_q" => send_q = num()? as usize,
            "fd" if v == "-" => fd = None,
            "fd" => fd = Some(v.parse::<i32>().map_err(|_| bad(k, v))?),
            "worker" if v == "*" => worker = None,
            "worker" => worker = Some(num()? as usize),
            "id" => id = num()?,
            _ => {
                let n = match k {
                    "rtt_us" | "rttvar_us" | "rto_us" | "cwnd" | "ssthresh" | "mss" | "rcv_wscale"
                    | "snd_wscale" | "retrans" | "bytes_acked" | "bytes_received" | "unacked" => num()?,
                    _ => continue, // a field of a later version
                };
                has_tcp = true;
                match k {
                    "rtt_us" => t.rtt_us = n,
                    "rttvar_us" => t.rttvar_us = n,
                    "rto_us" => t.rto_us = n,
                    "cwnd" => t.cwnd = n,
                    "ssthresh" => t.ssthresh = n,
                    "mss" => t.mss = n as u32,
                    "rcv_wscale" => t.rcv_wscale = n as u8,
                    "snd_wscale" => t.snd_wscale = n as u8,
                    "retrans" => t.retransmits = n,
                    "bytes_acked" => t.bytes_acked = n,
                    "bytes_received" => t.bytes_received = n,
                    _ => t.unacked = n,
                }
            }
        }
    }
    Ok(SocketInfo {
        kind: kind.ok_or_else(|| format!("no kind in socket record {line:?}"))?,
        state,
        local: local.ok_or_else(|| format!("no local address in socket record {line:?}"))?,
        peer,
        recv_q,
        send_q,
        fd,
        worker,
        id,
        tcp: has_tcp.then_some(t),
    })
}

/// Parse a response header: Ok(record count) or Err(the stack's error message).
pub fn decode_header(line: &str) -> Result<usize, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let rest = line
        .strip_prefix(MAGIC)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or_else(|| format!("not an {MAGIC} response: {line:?} (a stack of another version?)"))?;
    if let Some(msg) = rest.strip_prefix("ERR ") {
        return Err(msg.to_string());
    }
    rest.strip_prefix("OK ")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("malformed response header {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_bad_ones_are_explained() {
        for r in [Request::Info, Request::Sockets, Request::Counters, Request::Raw(1), Request::Raw(254)] {
            assert_eq!(Request::parse(&r.line()), Ok(r));
        }
        assert!(Request::parse("").unwrap_err().contains("empty"));
        assert!(Request::parse("XDPSTACK/2 info").unwrap_err().contains("unsupported protocol version"));
        assert!(Request::parse("GET / HTTP/1.1").unwrap_err().contains("malformed"));
        assert!(Request::parse("XDPSTACK/1 frobnicate").unwrap_err().contains("unknown command"));
        assert!(Request::parse("XDPSTACK/1 info extra").unwrap_err().contains("unexpected"));
        assert!(Request::parse("XDPSTACK/1").unwrap_err().contains("missing command"));
        for bad in ["XDPSTACK/1 raw", "XDPSTACK/1 raw 0", "XDPSTACK/1 raw 255", "XDPSTACK/1 raw icmp"] {
            assert!(Request::parse(bad).unwrap_err().contains("protocol number"), "{bad}");
        }
    }

    #[test]
    fn raw_frame_headers_round_trip() {
        let h = raw_frame_header("10.77.0.1".parse().unwrap(), 1500);
        assert_eq!(h, [10, 77, 0, 1, 0x05, 0xdc]);
        assert_eq!(parse_raw_frame_header(&h), ("10.77.0.1".parse().unwrap(), 1500));
    }

    #[test]
    fn socket_records_round_trip() {
        let tcp = SocketInfo {
            kind: SocketKind::Tcp,
            state: Some(State::TimeWait),
            local: "10.0.0.2:80".parse().unwrap(),
            peer: Some("10.0.0.1:4000".parse().unwrap()),
            recv_q: 1,
            send_q: 2,
            fd: None,
            worker: Some(1),
            id: 9,
            tcp: Some(TcpInfo { rtt_us: 5, cwnd: 14480, mss: 1448, rcv_wscale: 7, ..TcpInfo::default() }),
        };
        let udp = SocketInfo {
            kind: SocketKind::Raw(1),
            state: None,
            peer: None,
            fd: Some(3),
            worker: None,
            tcp: None,
            ..tcp.clone()
        };
        for s in [tcp, udp] {
            assert_eq!(decode_socket(&encode_socket(&s)), Ok(s));
        }
        assert!(decode_socket("kind=tcp local=1.2.3.4:5 future=yes").is_ok());
        assert!(decode_socket("kind=sctp local=1.2.3.4:5").is_err());
        assert!(decode_socket("local=1.2.3.4:5").is_err());
        assert!(decode_socket("kind=udp local=nowhere").is_err());
    }

    #[test]
    fn headers() {
        assert_eq!(decode_header("XDPSTACK/1 OK 3\n"), Ok(3));
        assert_eq!(decode_header("XDPSTACK/1 ERR no such thing"), Err("no such thing".into()));
        assert!(decode_header("HTTP/1.1 200 OK").is_err());
    }
}

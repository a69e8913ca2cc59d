//! `xdpstack ping`: ICMP echo over the stack's raw ICMP socket, output shaped like iputils `ping`.
//!
//! The loop talks to an [`IcmpChannel`] (send an ICMP message, receive an IPv4 datagram with a
//! timeout), so it does not care where the raw socket lives: today a stack this command starts for the
//! purpose ([`RawChannel`]), later a running stack reached through its control socket.
//!
//! As iputils: the identifier is the process id, sequence numbers start at 1, the first 16 bytes of
//! the data are the send time (a `struct timeval`) and the rest the byte pattern 0, 1, 2, ...; replies
//! are matched by identifier and sequence number (anything else is ignored, duplicates are not counted
//! twice); after the last request ping waits up to `-W` seconds for the outstanding replies. Exit
//! status 0 when any reply arrived, 1 when none did, 2 on usage and other errors.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use xdpstack::testbed::Testbed;
use xdpstack::wire::{ChecksumMode, Icmpv4Packet, Icmpv4Repr, Ipv4Cidr, Ipv4Packet};
use xdpstack::{Config, RawSocket, Stack};

/// Largest ICMP echo data: 65535 - 20 (IPv4) - 8 (ICMP).
const MAX_SIZE: u32 = 65507;
/// Bytes of the send time at the start of the data (`struct timeval` on 64-bit Linux).
const TIMEVAL_LEN: usize = 16;

#[derive(Args, Debug)]
pub struct PingArgs {
    /// Stop after sending N echo requests (default: until Ctrl-C).
    #[arg(short = 'c', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Seconds between requests.
    #[arg(short = 'i', value_name = "SEC", default_value_t = 1.0)]
    interval: f64,
    /// Bytes of data in each request (0..=65507).
    #[arg(short = 's', value_name = "SIZE", default_value_t = 56,
          value_parser = clap::value_parser!(u32).range(0..=MAX_SIZE as i64))]
    size: u32,
    /// Seconds to wait for a response (after the last request).
    #[arg(short = 'W', value_name = "SEC", default_value_t = 10.0)]
    timeout: f64,
    /// Interface for the stack this command starts.
    #[arg(long, value_name = "IF", requires = "addr", conflicts_with = "testbed")]
    iface: Option<String>,
    /// The stack's address with prefix length.
    #[arg(long, value_name = "A.B.C.D/LEN", requires = "iface")]
    addr: Option<Ipv4Cidr>,
    /// Next hop for destinations outside the prefix.
    #[arg(long, value_name = "G")]
    gateway: Option<Ipv4Addr>,
    /// Start the stack on the stack end of `xdpstack testbed up --name NAME` (inside its namespace,
    /// with the testbed's stack address).
    #[arg(long, value_name = "NAME")]
    testbed: Option<String>,
    /// Use the raw ICMP socket of this running stack (through its control socket); the default when
    /// neither --iface nor --testbed is given (then: the only stack running).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["iface", "testbed"])]
    name: Option<String>,
    /// Where running stacks live (default: $XDPSTACK_RUN_DIR, else /run/xdpstack).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["iface", "testbed"])]
    run_dir: Option<std::path::PathBuf>,
    /// The host to ping (IPv4 address or name).
    #[arg(value_name = "HOST")]
    host: String,
}

/// Somewhere ICMP messages can be sent and IPv4 datagrams carrying ICMP received: a raw ICMP socket.
pub trait IcmpChannel {
    /// Send one ICMP message (no IP header) to `dst`.
    fn send(&mut self, dst: Ipv4Addr, icmp: &[u8]) -> io::Result<()>;
    /// Receive one IPv4 datagram (header included) into `buf`, waiting at most `timeout`; `None` when
    /// nothing came.
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>>;
}

/// A raw ICMP socket of a stack in this process.
pub struct RawChannel(pub RawSocket);

impl IcmpChannel for RawChannel {
    fn send(&mut self, dst: Ipv4Addr, icmp: &[u8]) -> io::Result<()> {
        self.0.send_to(icmp, dst).map(|_| ())
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        self.0.set_read_timeout(Some(timeout.max(Duration::from_micros(1))))?;
        match self.0.recv_from(buf) {
            Ok((n, _)) => Ok(Some(n)),
            Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A raw ICMP socket of a running stack, through its control socket.
pub struct ControlChannel(pub xdpstack::observe::client::RawSession);

impl IcmpChannel for ControlChannel {
    fn send(&mut self, dst: Ipv4Addr, icmp: &[u8]) -> io::Result<()> {
        self.0.send_to(icmp, dst)
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        Ok(self.0.recv_from(buf, timeout)?.map(|(n, _)| n))
    }
}

/// What one run of the loop asks for.
#[derive(Debug, Clone)]
pub struct PingPlan {
    pub host: String,
    pub dst: Ipv4Addr,
    pub count: Option<u64>,
    pub interval: Duration,
    pub size: usize,
    pub wait: Duration,
    pub ident: u16,
}

/// What came back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PingStats {
    pub transmitted: u64,
    pub received: u64,
    /// Round-trip times in milliseconds.
    pub rtts: Vec<f64>,
    pub elapsed_ms: u64,
}

/// An echo reply found in a received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub from: Ipv4Addr,
    pub ttl: u8,
    pub ident: u16,
    pub seq: u16,
    /// ICMP bytes (header and data), as iputils counts them.
    pub icmp_len: usize,
}

/// The echo reply in `datagram` (IPv4 header first), if it is one with a valid checksum.
pub fn parse_reply(datagram: &[u8]) -> Option<Reply> {
    let ip = Ipv4Packet::new_checked(datagram).ok()?;
    if u8::from(ip.protocol()) != 1 {
        return None;
    }
    let icmp = Icmpv4Packet::new_checked(ip.payload()).ok()?;
    match Icmpv4Repr::parse(&icmp, ChecksumMode::Full).ok()? {
        Icmpv4Repr::EchoReply { ident, seq_no, data } => {
            Some(Reply { from: ip.src_addr(), ttl: ip.ttl(), ident, seq: seq_no, icmp_len: 8 + data.len() })
        }
        _ => None,
    }
}

/// An echo request as iputils builds it: send time, then the pattern 0, 1, 2, ...
pub fn echo_request(ident: u16, seq: u16, size: usize, sent_at: SystemTime) -> Vec<u8> {
    let mut data: Vec<u8> = (0..size).map(|i| i as u8).collect();
    if size >= TIMEVAL_LEN {
        let t = sent_at.duration_since(UNIX_EPOCH).unwrap_or_default();
        data[..8].copy_from_slice(&(t.as_secs() as i64).to_ne_bytes());
        data[8..16].copy_from_slice(&i64::from(t.subsec_micros()).to_ne_bytes());
    }
    let repr = Icmpv4Repr::EchoRequest { ident, seq_no: seq, data: &data };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), ChecksumMode::Full);
    buf
}

/// A time in milliseconds the way iputils prints it: three significant decimals below 1 ms, fewer
/// above.
pub fn fmt_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 10.0 {
        format!("{ms:.1}")
    } else if ms >= 1.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.3}")
    }
}

/// A number as C's `%g` prints it (six significant digits, no trailing zeros): the loss percentage.
pub fn fmt_g(x: f64) -> String {
    if x == x.trunc() {
        return format!("{x:.0}");
    }
    let digits = if x.abs() >= 1.0 { x.abs().log10().floor() as i32 + 1 } else { 0 };
    let decimals = (6 - digits).max(0) as usize;
    let s = format!("{x:.decimals$}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The statistics lines iputils prints at the end.
pub fn summary(host: &str, s: &PingStats) -> String {
    let loss = if s.transmitted == 0 {
        0.0
    } else {
        (s.transmitted - s.received) as f64 * 100.0 / s.transmitted as f64
    };
    let mut out = format!(
        "--- {host} ping statistics ---\n{} packets transmitted, {} received, {}% packet loss, time {}ms\n",
        s.transmitted,
        s.received,
        fmt_g(loss),
        s.elapsed_ms
    );
    if !s.rtts.is_empty() {
        let n = s.rtts.len() as f64;
        let min = s.rtts.iter().copied().fold(f64::INFINITY, f64::min);
        let max = s.rtts.iter().copied().fold(0.0, f64::max);
        let avg = s.rtts.iter().sum::<f64>() / n;
        let mdev = (s.rtts.iter().map(|r| r * r).sum::<f64>() / n - avg * avg).max(0.0).sqrt();
        out += &format!("rtt min/avg/max/mdev = {min:.3}/{avg:.3}/{max:.3}/{mdev:.3} ms\n");
    }
    out
}

/// Set by Ctrl-C (SIGINT/SIGTERM): stop sending and print the statistics.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The loop: send a request every `interval`, print each matching reply, stop after `count` (and the
/// wait for outstanding replies) or on Ctrl-C.
pub fn ping_loop(ch: &mut dyn IcmpChannel, plan: &PingPlan, out: &mut dyn Write) -> io::Result<PingStats> {
    writeln!(out, "PING {} ({}) {}({}) bytes of data.", plan.host, plan.dst, plan.size, plan.size + 28)?;
    out.flush()?;
    let start = Instant::now();
    let mut stats = PingStats::default();
    let mut sent_at: Vec<Instant> = Vec::new();
    let mut answered: Vec<bool> = Vec::new();
    let mut next_send = start;
    let mut buf = vec![0u8; 65536];
    loop {
        if INTERRUPTED.load(Ordering::Relaxed) {
            break;
        }
        let now = Instant::now();
        let more = plan.count.is_none_or(|c| stats.transmitted < c);
        if more && now >= next_send {
            let seq = (stats.transmitted + 1) as u16;
            let req = echo_request(plan.ident, seq, plan.size, SystemTime::now());
            if let Err(e) = ch.send(plan.dst, &req) {
                writeln!(out, "ping: sendmsg: {e}")?;
            }
            stats.transmitted += 1;
            sent_at.push(now);
            answered.push(false);
            next_send += plan.interval;
            continue;
        }
        let until = if more {
            next_send
        } else {
            if stats.received == stats.transmitted {
                break;
            }
            let last = *sent_at.last().unwrap_or(&start);
            if now >= last + plan.wait {
                break;
            }
            last + plan.wait
        };
        // Wake at least every 100 ms to notice Ctrl-C.
        let timeout = until.saturating_duration_since(now).min(Duration::from_millis(100));
        let Some(n) = ch.recv(&mut buf, timeout)? else {
            continue;
        };
        let got = Instant::now();
        let Some(r) = parse_reply(&buf[..n]) else {
            continue;
        };
        // Sequence numbers wrap at 65536; match the most recent request with this number.
        let idx = (0..sent_at.len()).rev().find(|&i| (i + 1) as u16 == r.seq);
        let (true, Some(i)) = (r.ident == plan.ident && r.from == plan.dst, idx) else {
            continue;
        };
        if answered[i] {
            continue;
        }
        answered[i] = true;
        stats.received += 1;
        let rtt = got.duration_since(sent_at[i]).as_secs_f64() * 1000.0;
        stats.rtts.push(rtt);
        writeln!(
            out,
            "{} bytes from {}: icmp_seq={} ttl={} time={} ms",
            r.icmp_len,
            r.from,
            r.seq,
            r.ttl,
            fmt_ms(rtt)
        )?;
        out.flush()?;
    }
    stats.elapsed_ms = start.elapsed().as_millis() as u64;
    writeln!(out)?;
    write!(out, "{}", summary(&plan.host, &stats))?;
    out.flush()?;
    Ok(stats)
}

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("xdpstack: error: {msg}");
    ExitCode::from(2)
}

fn resolve(host: &str) -> Option<Ipv4Addr> {
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Some(ip);
    }
    (host, 0).to_socket_addrs().ok()?.find_map(|a| match a.ip() {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    })
}

/// Block SIGINT/SIGTERM here (before any thread starts, so every thread inherits it) and take them on
/// a thread of their own, which sets [`INTERRUPTED`].
fn catch_interrupt() {
    let set = crate::run::block_signals();
    std::thread::spawn(move || {
        if crate::run::wait_for_signal(&set, None).is_some() {
            INTERRUPTED.store(true, Ordering::Relaxed);
        }
    });
}

pub fn run(args: PingArgs) -> io::Result<ExitCode> {
    let secs = |name: &str, v: f64| {
        if v > 0.0 && v.is_finite() && v < 1e6 {
            Ok(Duration::from_secs_f64(v))
        } else {
            Err(format!("{name} {v}: must be a positive number of seconds"))
        }
    };
    let interval = match secs("-i", args.interval) {
        Ok(d) => d,
        Err(m) => return Ok(usage(m)),
    };
    let wait = match secs("-W", args.timeout) {
        Ok(d) => d,
        Err(m) => return Ok(usage(m)),
    };
    let Some(dst) = resolve(&args.host) else {
        return Ok(usage(format!(
            "unknown host {:?} (give an IPv4 address or a name that resolves)",
            args.host
        )));
    };
    let plan = PingPlan {
        host: args.host.clone(),
        dst,
        count: args.count,
        interval,
        size: args.size as usize,
        wait,
        ident: std::process::id() as u16,
    };
    let config = match (&args.iface, &args.addr, &args.testbed) {
        (None, None, None) => return ping_running_stack(&args, &plan),
        (Some(iface), Some(addr), None) => Config::new(iface.clone(), *addr),
        (None, None, Some(name)) => match Testbed::existing(name) {
            Ok(tb) => tb.stack_config(),
            Err(e) => return Ok(usage(format!("{e} (make it with `xdpstack testbed up --name {name}`)"))),
        },
        _ => {
            return Ok(usage(
                "ping needs a stack to send from: a running one (--name NAME), or one it starts (--iface IF --addr A.B.C.D/LEN, or --testbed NAME)",
            ))
        }
    };
    let mut config = config;
    config.gateway = args.gateway;
    config.workers = 1;
    catch_interrupt();
    let started = match &args.testbed {
        Some(name) => Testbed::existing(name).and_then(|tb| tb.start_stack(config)),
        None => Stack::start(config),
    };
    let stack = match started {
        Ok(s) => s,
        Err(e) => return Ok(usage(e)),
    };
    let result = RawSocket::open(&stack, 1)
        .and_then(|sock| ping_loop(&mut RawChannel(sock), &plan, &mut io::stdout().lock()));
    let report = stack.shutdown();
    if report.frames_lost() != 0 {
        log::warn!("frames lost: {} of {}", report.frames_lost(), report.frames_total);
    }
    match result {
        Ok(stats) if stats.received > 0 => Ok(ExitCode::SUCCESS),
        Ok(_) => Ok(ExitCode::from(1)),
        Err(e) => Ok(usage(e)),
    }
}

/// Ping through the raw ICMP socket of a running stack (its control socket's raw session).
fn ping_running_stack(args: &PingArgs, plan: &PingPlan) -> io::Result<ExitCode> {
    use xdpstack::observe::client::{self, Client};
    let run_dir = args.run_dir.clone().unwrap_or_else(xdpstack::observe::control::default_run_dir);
    let inst = match client::choose(&run_dir, args.name.as_deref()) {
        Ok(i) => i,
        Err(m) => {
            return Ok(usage(format!(
                "{m} (or let ping start a stack of its own: --iface IF --addr A.B.C.D/LEN, or --testbed NAME)"
            )))
        }
    };
    let session = match Client::connect(&inst.dir).and_then(|c| c.raw_session(1)) {
        Ok(s) => s,
        Err(e) => return Ok(usage(format!("stack {}: {e}", inst.name))),
    };
    catch_interrupt();
    match ping_loop(&mut ControlChannel(session), plan, &mut io::stdout().lock()) {
        Ok(stats) if stats.received > 0 => Ok(ExitCode::SUCCESS),
        Ok(_) => Ok(ExitCode::from(1)),
        Err(e) => Ok(usage(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use xdpstack::wire::{IpProtocol, Ipv4Repr};

    /// A peer that answers every request (except the sequence numbers in `drop`), with a stray reply
    /// of another identifier and a duplicate thrown in.
    struct Echoer {
        queue: VecDeque<Vec<u8>>,
        drop: Vec<u16>,
    }

    fn datagram(src: Ipv4Addr, icmp: &[u8]) -> Vec<u8> {
        let repr = Ipv4Repr {
            src_addr: src,
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            protocol: IpProtocol::Icmp,
            payload_len: icmp.len(),
            ttl: 61,
            ident: 1,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
            dscp_ecn: 0,
        };
        let mut d = vec![0u8; 20 + icmp.len()];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut d[..]));
        d[20..].copy_from_slice(icmp);
        d
    }

    impl IcmpChannel for Echoer {
        fn send(&mut self, dst: Ipv4Addr, icmp: &[u8]) -> io::Result<()> {
            let p = Icmpv4Packet::new_checked(icmp).unwrap();
            let Icmpv4Repr::EchoRequest { ident, seq_no, data } =
                Icmpv4Repr::parse(&p, ChecksumMode::Full).unwrap()
            else {
                panic!("not an echo request");
            };
            if self.drop.contains(&seq_no) {
                return Ok(());
            }
            for id in [ident.wrapping_add(1), ident, ident] {
                let reply = Icmpv4Repr::EchoReply { ident: id, seq_no, data };
                let mut b = vec![0u8; reply.buffer_len()];
                reply.emit(&mut Icmpv4Packet::new_unchecked(&mut b[..]), ChecksumMode::Full);
                self.queue.push_back(datagram(dst, &b));
            }
            Ok(())
        }
        fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
            match self.queue.pop_front() {
                Some(d) => {
                    buf[..d.len()].copy_from_slice(&d);
                    Ok(Some(d.len()))
                }
                None => {
                    std::thread::sleep(timeout);
                    Ok(None)
                }
            }
        }
    }

    fn plan(count: u64) -> PingPlan {
        PingPlan {
            host: "10.0.0.1".into(),
            dst: Ipv4Addr::new(10, 0, 0, 1),
            count: Some(count),
            interval: Duration::from_millis(10),
            size: 56,
            wait: Duration::from_millis(200),
            ident: 0x4242,
        }
    }

    #[test]
    fn replies_are_matched_printed_and_summed() {
        let mut ch = Echoer { queue: VecDeque::new(), drop: vec![2] };
        let mut out = Vec::new();
        let stats = ping_loop(&mut ch, &plan(3), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "PING 10.0.0.1 (10.0.0.1) 56(84) bytes of data.");
        let replies: Vec<&&str> = lines.iter().filter(|l| l.contains("bytes from")).collect();
        assert_eq!(replies.len(), 2, "{text}");
        assert!(replies[0].starts_with("64 bytes from 10.0.0.1: icmp_seq=1 ttl=61 time="), "{text}");
        assert!(replies[1].starts_with("64 bytes from 10.0.0.1: icmp_seq=3 ttl=61 time="), "{text}");
        assert!(replies.iter().all(|l| l.ends_with(" ms")));
        assert_eq!((stats.transmitted, stats.received, stats.rtts.len()), (3, 2, 2));
        assert!(text.contains("--- 10.0.0.1 ping statistics ---"));
        assert!(text.contains("3 packets transmitted, 2 received, 33.3333% packet loss, time "), "{text}");
        assert!(text.contains("rtt min/avg/max/mdev = "));
    }

    #[test]
    fn no_reply_is_full_loss_without_rtt_line() {
        let mut ch = Echoer { queue: VecDeque::new(), drop: vec![1, 2] };
        let mut out = Vec::new();
        let t = Instant::now();
        let stats = ping_loop(&mut ch, &plan(2), &mut out).unwrap();
        assert!(t.elapsed() >= Duration::from_millis(200), "waits -W after the last request");
        let text = String::from_utf8(out).unwrap();
        assert_eq!(stats.received, 0);
        assert!(text.contains("2 packets transmitted, 0 received, 100% packet loss"), "{text}");
        assert!(!text.contains("rtt"));
    }

    #[test]
    fn requests_carry_time_and_pattern() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 250_000_000);
        let req = echo_request(7, 9, 56, t);
        assert_eq!(req.len(), 64);
        let p = Icmpv4Packet::new_checked(&req[..]).unwrap();
        assert!(p.verify_checksum());
        let Icmpv4Repr::EchoRequest { ident: 7, seq_no: 9, data } =
            Icmpv4Repr::parse(&p, ChecksumMode::Full).unwrap()
        else {
            panic!()
        };
        assert_eq!(i64::from_ne_bytes(data[..8].try_into().unwrap()), 1_700_000_000);
        assert_eq!(i64::from_ne_bytes(data[8..16].try_into().unwrap()), 250_000);
        assert_eq!(&data[16..20], &[16, 17, 18, 19]);
        assert_eq!(echo_request(1, 1, 0, t).len(), 8);
    }

    #[test]
    fn numbers_print_like_iputils() {
        assert_eq!(fmt_g(0.0), "0");
        assert_eq!(fmt_g(100.0), "100");
        assert_eq!(fmt_g(100.0 / 3.0), "33.3333");
        assert_eq!(fmt_g(200.0 / 3.0), "66.6667");
        assert_eq!(fmt_g(0.5), "0.5");
        assert_eq!(fmt_ms(0.0456), "0.046");
        assert_eq!(fmt_ms(1.234), "1.23");
        assert_eq!(fmt_ms(12.34), "12.3");
        assert_eq!(fmt_ms(123.4), "123");
        let s = PingStats { transmitted: 2, received: 2, rtts: vec![1.0, 3.0], elapsed_ms: 1001 };
        assert_eq!(
            summary("h", &s),
            "--- h ping statistics ---\n2 packets transmitted, 2 received, 0% packet loss, time 1001ms\n\
             rtt min/avg/max/mdev = 1.000/2.000/3.000/1.000 ms\n"
        );
    }
}

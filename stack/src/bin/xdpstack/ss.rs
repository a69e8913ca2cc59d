//! `xdpstack ss` and `xdpstack stat`: the socket table and the counters of a running stack, read
//! through its control socket and printed the way iproute2's `ss` and `nstat` print the kernel's.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use xdpstack::observe::client::{self, Client};
use xdpstack::observe::control::default_run_dir;
use xdpstack::{SocketInfo, SocketKind};

use crate::filter::{self, Filter};

#[derive(Args, Debug)]
pub struct SsArgs {
    /// TCP sockets.
    #[arg(short = 't', long = "tcp")]
    tcp: bool,
    /// UDP sockets.
    #[arg(short = 'u', long = "udp")]
    udp: bool,
    /// Raw sockets.
    #[arg(short = 'w', long = "raw")]
    raw: bool,
    /// Listening sockets only (and unconnected datagram sockets).
    #[arg(short = 'l', long = "listening")]
    listening: bool,
    /// All sockets.
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// TCP internals: rtt, rto, cwnd, ssthresh, mss, window scales, retransmissions, bytes.
    #[arg(short = 'i', long = "info")]
    info: bool,
    #[command(flatten)]
    instance: InstanceArgs,
    /// ss-style filter: [state NAME]... [sport|dport OP :PORT] [src|dst ADDR[/LEN][:PORT]], with
    /// and, or, not and parentheses.
    #[arg(value_name = "FILTER", trailing_var_arg = true, allow_hyphen_values = true)]
    filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct InstanceArgs {
    /// The stack instance (default: the only one running).
    #[arg(long)]
    name: Option<String>,
    /// Where instances live (default: $XDPSTACK_RUN_DIR, else /run/xdpstack).
    #[arg(long, value_name = "DIR")]
    run_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct StatArgs {
    /// Show counters that are zero too.
    #[arg(short = 'z', long = "zeros")]
    zeros: bool,
    #[command(flatten)]
    instance: InstanceArgs,
}

fn connect(a: &InstanceArgs) -> io::Result<Client> {
    let run_dir = a.run_dir.clone().unwrap_or_else(default_run_dir);
    let inst = client::choose(&run_dir, a.name.as_deref()).map_err(io::Error::other)?;
    Client::connect(&inst.dir)
}

fn addr(s: &SocketInfo, a: Option<std::net::SocketAddrV4>) -> String {
    match (s.kind, a) {
        (SocketKind::Raw(p), Some(a)) => format!("{}:{p}", a.ip()),
        (_, Some(a)) => a.to_string(),
        (_, None) => "0.0.0.0:*".into(),
    }
}

/// The `-i` line of a TCP connection, in `ss -i`'s words and units (times in ms, cwnd in segments).
pub fn info_line(t: &xdpstack::TcpInfo) -> String {
    let ms = |us: u64| us as f64 / 1000.0;
    let mss = u64::from(t.mss.max(1));
    let mut l = format!(
        "rtt:{}/{} rto:{} cwnd:{}",
        ms(t.rtt_us),
        ms(t.rttvar_us),
        ms(t.rto_us),
        (t.cwnd / mss).max(1)
    );
    if t.ssthresh < u64::from(u32::MAX) {
        l += &format!(" ssthresh:{}", t.ssthresh / mss);
    }
    l += &format!(
        " mss:{} wscale:{},{} retrans:{} bytes_acked:{} bytes_received:{}",
        t.mss, t.snd_wscale, t.rcv_wscale, t.retransmits, t.bytes_acked, t.bytes_received
    );
    l
}

/// The table as `ss` prints it: columns as wide as their widest cell.
pub fn render(rows: &[&SocketInfo], info: bool) -> String {
    let header =
        ["Netid", "State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port", "Fd", "Worker"];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|s| {
            [
                s.kind.netid().to_string(),
                s.state_name().to_string(),
                s.recv_q.to_string(),
                s.send_q.to_string(),
                addr(s, Some(s.local)),
                addr(s, s.peer),
                s.fd.map_or("-".into(), |f| f.to_string()),
                s.worker.map_or("*".into(), |w| w.to_string()),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for c in &cells {
        for (w, cell) in width.iter_mut().zip(c) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |c: [&str; 8]| {
        let mut l = String::new();
        for (i, (cell, w)) in c.iter().zip(width).enumerate() {
            // Numbers right-aligned under their headings, as ss does for the queues.
            if i == 2 || i == 3 {
                l += &format!("{cell:>w$} ");
            } else {
                l += &format!("{cell:<w$} ");
            }
        }
        l.trim_end().to_string() + "\n"
    };
    let mut out = line(header);
    for (s, c) in rows.iter().zip(&cells) {
        out += &line([&c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6], &c[7]]);
        if let (true, Some(t)) = (info, &s.tcp) {
            out += &format!("\t {}\n", info_line(t));
        }
    }
    out
}

pub fn ss(args: SsArgs) -> io::Result<ExitCode> {
    let f: Filter = match filter::parse(&args.filter) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("xdpstack: error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let default_states = if args.all {
        filter::ALL
    } else if args.listening {
        filter::LISTENING
    } else {
        filter::DEFAULT
    };
    let any = !(args.tcp || args.udp || args.raw);
    let rows = connect(&args.instance)?.sockets()?;
    let shown: Vec<&SocketInfo> = rows
        .iter()
        .filter(|s| match s.kind {
            SocketKind::Tcp => any || args.tcp,
            SocketKind::Udp => any || args.udp,
            SocketKind::Raw(_) => any || args.raw,
        })
        .filter(|s| f.matches(s, default_states))
        .collect();
    print!("{}", render(&shown, args.info));
    Ok(ExitCode::SUCCESS)
}

/// Counters as `nstat -a` prints them: a `#kernel` line, then one `Name value` line each.
pub fn render_counters(counters: &[(String, u64)], zeros: bool) -> String {
    let mut out = String::from("#kernel\n");
    for (name, v) in counters.iter().filter(|(_, v)| zeros || *v != 0) {
        out += &format!("{name:<31} {v}\n");
    }
    out
}

pub fn stat(args: StatArgs) -> io::Result<ExitCode> {
    let counters = connect(&args.instance)?.counters()?;
    print!("{}", render_counters(&counters, args.zeros));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xdpstack::tcp::State;
    use xdpstack::TcpInfo;

    #[test]
    fn table_and_info_lines() {
        let est = SocketInfo {
            kind: SocketKind::Tcp,
            state: Some(State::Established),
            local: "10.77.0.2:7".parse().unwrap(),
            peer: Some("10.77.0.1:40000".parse().unwrap()),
            recv_q: 0,
            send_q: 12,
            fd: Some(4),
            worker: Some(0),
            id: 3,
            tcp: Some(TcpInfo {
                rtt_us: 250,
                rttvar_us: 125,
                rto_us: 200_000,
                cwnd: 14480,
                ssthresh: u64::MAX,
                mss: 1448,
                rcv_wscale: 3,
                snd_wscale: 7,
                retransmits: 1,
                bytes_acked: 100,
                bytes_received: 200,
                unacked: 0,
            }),
        };
        let udp = SocketInfo {
            kind: SocketKind::Udp,
            state: None,
            local: "0.0.0.0:7".parse().unwrap(),
            peer: None,
            send_q: 0,
            fd: Some(3),
            tcp: None,
            ..est.clone()
        };
        let out = render(&[&est, &udp], true);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(
            lines[0].starts_with("Netid State  Recv-Q Send-Q Local Address:Port Peer Address:Port"),
            "{out}"
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["tcp", "ESTAB", "0", "12", "10.77.0.2:7", "10.77.0.1:40000", "4", "0"]
        );
        assert_eq!(
            lines[2],
            "\t rtt:0.25/0.125 rto:200 cwnd:10 mss:1448 wscale:7,3 retrans:1 bytes_acked:100 bytes_received:200"
        );
        assert_eq!(
            lines[3].split_whitespace().collect::<Vec<_>>(),
            ["udp", "UNCONN", "0", "0", "0.0.0.0:7", "0.0.0.0:*", "3", "0"]
        );
    }

    #[test]
    fn counters_like_nstat() {
        let c = vec![("IpInReceives".to_string(), 5), ("UdpNoPorts".to_string(), 0)];
        assert_eq!(render_counters(&c, false), format!("#kernel\n{:<31} 5\n", "IpInReceives"));
        assert!(render_counters(&c, true).contains("UdpNoPorts"));
    }
}

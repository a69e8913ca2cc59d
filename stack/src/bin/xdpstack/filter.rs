//! The FILTER of `xdpstack ss`, in iproute2 `ss` syntax:
//!
//! ```text
//! [state NAME | exclude NAME]... [EXPR]
//! EXPR := TERM | EXPR [and] EXPR | EXPR or EXPR | not EXPR | ( EXPR )
//! TERM := sport OP :PORT | dport OP :PORT | src [OP] ADDR | dst [OP] ADDR
//! OP   := = == eq != ne neq < lt > gt <= le >= ge     (src/dst: equality only)
//! ADDR := A.B.C.D[/LEN][:PORT] | *[:PORT] | :PORT
//! ```
//!
//! State names are those of `ss` (`established`, `syn-sent`, `syn-recv`, `fin-wait-1`, `fin-wait-2`,
//! `time-wait`, `closed`, `close-wait`, `last-ack`, `listening`, `closing`, and the groups `all`,
//! `connected`, `synchronized`, `bucket`, `big`), or the names `ss` prints (`ESTAB`, `UNCONN`, ...).

use std::net::Ipv4Addr;

use xdpstack::SocketInfo;

/// A set of Linux state numbers (bit n: state n).
pub type States = u16;

const fn bit(n: u8) -> States {
    1 << n
}
/// Every state (1..=11).
pub const ALL: States = 0x0ffe;
const LISTEN: States = bit(10);
const CLOSE: States = bit(7);
const SYN_SENT: States = bit(2);
const BUCKET: States = bit(3) | bit(6);
/// `ss` without -l or -a: connected sockets, not TIME-WAIT or SYN-RECV.
pub const DEFAULT: States = ALL & !(LISTEN | CLOSE | BUCKET);
/// `ss -l`: listening TCP sockets and unconnected datagram sockets.
pub const LISTENING: States = LISTEN | CLOSE;

fn state_set(name: &str) -> Option<States> {
    let n = name.to_ascii_lowercase();
    Some(match n.as_str() {
        "all" => ALL,
        "connected" => ALL & !(LISTEN | CLOSE),
        "synchronized" => ALL & !(LISTEN | CLOSE | SYN_SENT),
        "bucket" => BUCKET,
        "big" => ALL & !BUCKET,
        "established" | "estab" => bit(1),
        "syn-sent" => bit(2),
        "syn-recv" | "syn-received" => bit(3),
        "fin-wait-1" => bit(4),
        "fin-wait-2" => bit(5),
        "time-wait" => bit(6),
        "closed" | "close" | "unconn" => bit(7),
        "close-wait" => bit(8),
        "last-ack" => bit(9),
        "listening" | "listen" => bit(10),
        "closing" => bit(11),
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Src,
    Dst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Port { side: Side, op: Op, port: u16 },
    Addr { side: Side, negate: bool, net: Net, port: Option<u16> },
}

/// A parsed FILTER.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    /// States from `state`/`exclude` (None: the default of the flags).
    pub states: Option<States>,
    expr: Option<Expr>,
}

const KNOWN: &str =
    "known: state NAME, exclude NAME, sport/dport OP :PORT, src/dst ADDR[/LEN][:PORT], and, or, not, ( )";

fn tokenize(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for arg in args {
        let mut cur = String::new();
        let mut in_op = false;
        for c in arg.chars() {
            let is_op = "=!<>".contains(c);
            if c.is_whitespace() || c == '(' || c == ')' || is_op != in_op {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                if c == '(' || c == ')' {
                    out.push(c.to_string());
                    in_op = false;
                    continue;
                }
            }
            if !c.is_whitespace() {
                cur.push(c);
            }
            in_op = is_op;
        }
        if !cur.is_empty() {
            out.push(cur);
        }
    }
    out
}

fn op(tok: &str) -> Option<Op> {
    Some(match tok {
        "=" | "==" | "eq" => Op::Eq,
        "!=" | "ne" | "neq" => Op::Ne,
        "<" | "lt" => Op::Lt,
        ">" | "gt" => Op::Gt,
        "<=" | "le" => Op::Le,
        ">=" | "ge" => Op::Ge,
        _ => return None,
    })
}

fn parse_port(s: &str) -> Option<u16> {
    s.parse().ok()
}

/// A prefix (None: any address).
type Net = Option<(Ipv4Addr, u8)>;

fn parse_addr(s: &str) -> Result<(Net, Option<u16>), String> {
    let bad = || format!("bad address {s:?} in filter (expected A.B.C.D[/LEN][:PORT], *:PORT or :PORT)");
    let (host, port) = match s.rsplit_once(':') {
        Some((h, "*")) => (h, None),
        Some((h, p)) => (h, Some(parse_port(p).ok_or_else(bad)?)),
        None => (s, None),
    };
    let net = match host {
        "" | "*" => None,
        h => {
            let (a, len) = match h.split_once('/') {
                Some((a, l)) => (a, l.parse::<u8>().ok().filter(|l| *l <= 32).ok_or_else(bad)?),
                None => (h, 32),
            };
            Some((a.parse::<Ipv4Addr>().map_err(|_| bad())?, len))
        }
    };
    Ok((net, port))
}

struct Parser {
    toks: Vec<String>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.pos).map(String::as_str)
    }
    fn next(&mut self) -> Option<String> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while matches!(self.peek(), Some("or" | "|" | "||")) {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        loop {
            match self.peek() {
                Some("and" | "&" | "&&") => self.pos += 1,
                None | Some(")" | "or" | "|" | "||") => return Ok(left),
                Some(_) => {}
            }
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        let tok = self.next().ok_or_else(|| format!("filter ends early ({KNOWN})"))?;
        match tok.as_str() {
            "not" | "!" => Ok(Expr::Not(Box::new(self.unary()?))),
            "(" => {
                let e = self.expr()?;
                match self.next().as_deref() {
                    Some(")") => Ok(e),
                    _ => Err("unbalanced parenthesis in filter".into()),
                }
            }
            "sport" | "dport" => {
                let side = if tok == "sport" { Side::Src } else { Side::Dst };
                let mut o = Op::Eq;
                if let Some(x) = self.peek().and_then(op) {
                    o = x;
                    self.pos += 1;
                }
                let v = self.next().ok_or_else(|| format!("{tok} needs a port, e.g. {tok} = :80"))?;
                let port = parse_port(v.strip_prefix(':').unwrap_or(&v))
                    .ok_or_else(|| format!("bad port {v:?} after {tok} (expected :NUMBER)"))?;
                Ok(Expr::Port { side, op: o, port })
            }
            "src" | "dst" => {
                let side = if tok == "src" { Side::Src } else { Side::Dst };
                let mut negate = false;
                if let Some(x) = self.peek().and_then(op) {
                    negate = match x {
                        Op::Eq => false,
                        Op::Ne => true,
                        _ => return Err(format!("{tok} compares with = or != only")),
                    };
                    self.pos += 1;
                }
                let v =
                    self.next().ok_or_else(|| format!("{tok} needs an address, e.g. {tok} 10.0.0.1:80"))?;
                let (net, port) = parse_addr(&v)?;
                Ok(Expr::Addr { side, negate, net, port })
            }
            other => Err(format!("unknown filter {other:?} ({KNOWN})")),
        }
    }
}

/// Parse the FILTER words of the command line.
pub fn parse(args: &[String]) -> Result<Filter, String> {
    let toks = tokenize(args);
    let mut states: Option<States> = None;
    let mut excluded: States = 0;
    let mut rest = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match toks[i].as_str() {
            w @ ("state" | "exclude" | "excl") => {
                let name =
                    toks.get(i + 1).ok_or_else(|| format!("{w} needs a state name, e.g. {w} established"))?;
                let set = state_set(name).ok_or_else(|| {
                    format!("unknown state {name:?} (known: established, syn-sent, syn-recv, fin-wait-1, fin-wait-2, time-wait, closed, close-wait, last-ack, listening, closing, all, connected, synchronized, bucket, big)")
                })?;
                if w == "state" {
                    *states.get_or_insert(0) |= set;
                } else {
                    excluded |= set;
                }
                i += 2;
            }
            _ => {
                rest.push(toks[i].clone());
                i += 1;
            }
        }
    }
    if excluded != 0 {
        states = Some(states.unwrap_or(ALL) & !excluded);
    }
    let expr = if rest.is_empty() {
        None
    } else {
        let mut p = Parser { toks: rest, pos: 0 };
        let e = p.expr()?;
        if let Some(t) = p.peek() {
            return Err(format!("unexpected {t:?} in filter ({KNOWN})"));
        }
        Some(e)
    };
    Ok(Filter { states, expr })
}

fn eval(e: &Expr, s: &SocketInfo) -> bool {
    let addr = |side: Side| match side {
        Side::Src => Some(s.local),
        Side::Dst => s.peer,
    };
    match e {
        Expr::And(a, b) => eval(a, s) && eval(b, s),
        Expr::Or(a, b) => eval(a, s) || eval(b, s),
        Expr::Not(a) => !eval(a, s),
        Expr::Port { side, op, port } => {
            let p = addr(*side).map_or(0, |a| a.port());
            match op {
                Op::Eq => p == *port,
                Op::Ne => p != *port,
                Op::Lt => p < *port,
                Op::Gt => p > *port,
                Op::Le => p <= *port,
                Op::Ge => p >= *port,
            }
        }
        Expr::Addr { side, negate, net, port } => {
            let a = addr(*side);
            let ip_ok = match (net, a) {
                (None, _) => true,
                (Some((n, len)), Some(a)) => {
                    let mask = if *len == 0 { 0 } else { u32::MAX << (32 - len) };
                    u32::from(*a.ip()) & mask == u32::from(*n) & mask
                }
                (Some(_), None) => false,
            };
            let port_ok = port.is_none_or(|p| a.is_some_and(|a| a.port() == p));
            (ip_ok && port_ok) != *negate
        }
    }
}

impl Filter {
    /// Does socket `s` pass, given the states the flags select when no `state` word is given?
    pub fn matches(&self, s: &SocketInfo, default_states: States) -> bool {
        let states = self.states.unwrap_or(default_states);
        states & bit(s.linux_state()) != 0 && self.expr.as_ref().is_none_or(|e| eval(e, s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xdpstack::tcp::State;
    use xdpstack::SocketKind;

    fn f(s: &str) -> Result<Filter, String> {
        parse(&s.split(' ').filter(|w| !w.is_empty()).map(String::from).collect::<Vec<_>>())
    }

    fn sock(state: Option<State>, local: &str, peer: Option<&str>) -> SocketInfo {
        SocketInfo {
            kind: if state.is_some() { SocketKind::Tcp } else { SocketKind::Udp },
            state,
            local: local.parse().unwrap(),
            peer: peer.map(|p| p.parse().unwrap()),
            recv_q: 0,
            send_q: 0,
            fd: None,
            worker: None,
            id: 0,
            tcp: None,
        }
    }

    #[test]
    fn tokens_split_operators_and_parentheses() {
        let t = tokenize(&["( sport=:80 or dport!=:22)".to_string(), "src".into(), "10.0.0.1:5".into()]);
        assert_eq!(t, ["(", "sport", "=", ":80", "or", "dport", "!=", ":22", ")", "src", "10.0.0.1:5"]);
    }

    #[test]
    fn states_and_defaults() {
        let est = sock(Some(State::Established), "10.0.0.2:80", Some("10.0.0.1:4000"));
        let listen = sock(Some(State::Listen), "0.0.0.0:80", None);
        let tw = sock(Some(State::TimeWait), "10.0.0.2:80", Some("10.0.0.1:4001"));
        let unconn = sock(None, "0.0.0.0:7", None);
        let none = f("").unwrap();
        assert!(
            none.matches(&est, DEFAULT) && !none.matches(&listen, DEFAULT) && !none.matches(&tw, DEFAULT)
        );
        assert!(
            none.matches(&listen, LISTENING)
                && none.matches(&unconn, LISTENING)
                && !none.matches(&est, LISTENING)
        );
        let t = f("state time-wait").unwrap();
        assert!(t.matches(&tw, DEFAULT) && !t.matches(&est, DEFAULT));
        let t = f("state TIME-WAIT state listening").unwrap();
        assert!(t.matches(&tw, DEFAULT) && t.matches(&listen, DEFAULT) && !t.matches(&est, DEFAULT));
        let t = f("exclude listening").unwrap();
        assert!(t.matches(&tw, DEFAULT) && !t.matches(&listen, DEFAULT));
        assert!(f("state connected").unwrap().matches(&est, LISTENING));
        assert!(f("state bogus").unwrap_err().contains("unknown state"));
    }

    #[test]
    fn ports_addresses_and_logic() {
        let est = sock(Some(State::Established), "10.0.0.2:80", Some("10.0.0.1:4000"));
        let m = |s: &str| f(s).unwrap().matches(&est, ALL);
        assert!(m("sport = :80") && m("sport == :80") && m("sport eq :80") && m("sport=:80"));
        assert!(!m("sport = :81") && m("sport != :81") && m("dport > :3999") && !m("dport lt :4000"));
        assert!(m("dport >= :4000") && m("dport <= :4000"));
        assert!(m("src 10.0.0.2") && m("src 10.0.0.0/24:80") && m("src *:80") && m("dst 10.0.0.1:4000"));
        assert!(!m("dst 10.0.0.1:4001") && m("dst != 10.0.0.9") && m("src :80") && !m("src 10.1.0.0/16"));
        assert!(m("sport = :80 and dport = :4000") && m("sport = :80 dport = :4000"));
        assert!(!m("sport = :80 and dport = :1") && m("sport = :1 or dport = :4000"));
        assert!(
            m("not sport = :1")
                && m("! ( sport = :1 or dport = :1 )")
                && m("(sport = :1 or sport = :80) and dst 10.0.0.1")
        );
        let listener = sock(Some(State::Listen), "0.0.0.0:80", None);
        assert!(!f("dst 10.0.0.1").unwrap().matches(&listener, ALL));
    }

    #[test]
    fn unknown_filters_are_explained() {
        assert!(f("frobnicate").unwrap_err().starts_with("unknown filter \"frobnicate\""));
        assert!(f("sport = :http").unwrap_err().contains("bad port"));
        assert!(f("src 10.0.0.300").unwrap_err().contains("bad address"));
        assert!(f("( sport = :80").unwrap_err().contains("parenthesis"));
        assert!(f("sport").unwrap_err().contains("needs a port"));
        assert!(f("src < 10.0.0.1").unwrap_err().contains("= or !="));
        assert!(f("sport = :80 )").unwrap_err().contains("unexpected"));
    }
}

//! Port ownership: which (address, port) pairs are bound, and ephemeral port choice (RFC 6056).

use std::collections::{HashMap, HashSet};
use std::hash::Hasher;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

use siphasher::sip::SipHasher13;

use super::Proto;
use crate::rand::Rng;

/// RFC 6056 §2.1 / IANA: the dynamic port range.
pub(crate) const EPHEMERAL: std::ops::RangeInclusive<u16> = 49152..=65535;
/// In shared-address mode, ports above Linux's default `ip_local_port_range` (32768-60999), so that the
/// stack's ephemeral ports do not collide with the kernel's on the same address.
pub(crate) const EPHEMERAL_SHARED: std::ops::RangeInclusive<u16> = 61000..=65535;

/// Bound ports per protocol. Two bindings conflict when their ports match and their addresses are
/// equal or either is the wildcard (no SO_REUSEADDR semantics yet).
#[derive(Debug)]
pub(crate) struct PortTable {
    bound: HashMap<(Proto, u16), Vec<(Ipv4Addr, i32)>>,
    rng: Rng,
    range: std::ops::RangeInclusive<u16>,
    /// TCP connections made with connect(): (local, remote). A local port may serve many of them,
    /// one per remote address (RFC 6056 §2.2: the 4-tuple must be unique).
    tcp_tuples: HashSet<(SocketAddrV4, SocketAddrV4)>,
    /// Connections per local TCP port (a listener cannot bind a port that connections use).
    tcp_port_use: HashMap<u16, usize>,
    /// RFC 6056 Algorithm 3: the secret of F() and the shared counter.
    secret: (u64, u64),
    next_ephemeral: u32,
}

impl PortTable {
    /// A table choosing ephemeral ports from the range fit for the address mode.
    pub(crate) fn new(rng: Rng, shared_address: bool) -> PortTable {
        let range = if shared_address { EPHEMERAL_SHARED } else { EPHEMERAL };
        let mut rng = rng;
        let secret = (rng.next_u64(), rng.next_u64());
        PortTable {
            bound: HashMap::new(),
            rng,
            range,
            tcp_tuples: HashSet::new(),
            tcp_port_use: HashMap::new(),
            secret,
            next_ephemeral: 0,
        }
    }

    /// Choose (or check) the local port of a TCP connection from `local_ip` to `remote` and record
    /// the 4-tuple. RFC 6056 §3.3.3, Algorithm 3 ("simple hash-based"): start at
    /// F(local IP, remote IP, remote port, secret) + counter, so that each destination sees its own
    /// unpredictable sequence of ports.
    pub(crate) fn connect(
        &mut self,
        local_ip: Ipv4Addr,
        port: Option<u16>,
        remote: SocketAddrV4,
    ) -> io::Result<SocketAddrV4> {
        if let Some(p) = port.filter(|p| *p != 0) {
            let local = SocketAddrV4::new(local_ip, p);
            if self.bound_conflict(Proto::Tcp, local_ip, p) || self.tcp_tuples.contains(&(local, remote)) {
                return Err(io::Error::from_raw_os_error(libc::EADDRINUSE));
            }
            return Ok(self.take_tuple(local, remote));
        }
        let mut h = SipHasher13::new_with_keys(self.secret.0, self.secret.1);
        h.write_u32(u32::from(local_ip));
        h.write_u32(u32::from(*remote.ip()));
        h.write_u16(remote.port());
        let offset = h.finish() as u32;
        let (lo, hi) = (*self.range.start() as u32, *self.range.end() as u32);
        let n = hi - lo + 1;
        for i in 0..n {
            let p = (lo + offset.wrapping_add(self.next_ephemeral).wrapping_add(i) % n) as u16;
            let local = SocketAddrV4::new(local_ip, p);
            if !self.bound_conflict(Proto::Tcp, local_ip, p) && !self.tcp_tuples.contains(&(local, remote)) {
                self.next_ephemeral = self.next_ephemeral.wrapping_add(i + 1);
                return Ok(self.take_tuple(local, remote));
            }
        }
        Err(io::Error::from_raw_os_error(libc::EADDRNOTAVAIL))
    }

    fn take_tuple(&mut self, local: SocketAddrV4, remote: SocketAddrV4) -> SocketAddrV4 {
        self.tcp_tuples.insert((local, remote));
        *self.tcp_port_use.entry(local.port()).or_default() += 1;
        local
    }

    /// A connect()ed TCP connection is gone. Returns true when its local port is now unused.
    pub(crate) fn release_tuple(&mut self, local: SocketAddrV4, remote: SocketAddrV4) -> bool {
        if !self.tcp_tuples.remove(&(local, remote)) {
            return false;
        }
        match self.tcp_port_use.get_mut(&local.port()) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => {
                self.tcp_port_use.remove(&local.port());
                !self.is_bound(Proto::Tcp, local.port())
            }
        }
    }

    /// Is any socket bound to `port`?
    pub(crate) fn is_bound(&self, proto: Proto, port: u16) -> bool {
        self.bound.contains_key(&(proto, port))
    }

    /// Would binding (addr, port) clash with a bound socket, or, for a TCP listener or bind, with a
    /// port that connect()ed connections use?
    fn conflicts(&self, proto: Proto, addr: Ipv4Addr, port: u16) -> bool {
        (proto == Proto::Tcp && self.tcp_port_use.contains_key(&port))
            || self.bound_conflict(proto, addr, port)
    }

    fn bound_conflict(&self, proto: Proto, addr: Ipv4Addr, port: u16) -> bool {
        self.bound
            .get(&(proto, port))
            .is_some_and(|v| v.iter().any(|(a, _)| *a == addr || a.is_unspecified() || addr.is_unspecified()))
    }

    /// Bind `addr` for descriptor `fd`; port 0 picks an ephemeral port. Returns the bound address.
    pub(crate) fn bind(&mut self, proto: Proto, addr: SocketAddrV4, fd: i32) -> io::Result<SocketAddrV4> {
        let port = if addr.port() != 0 {
            if self.conflicts(proto, *addr.ip(), addr.port()) {
                return Err(io::Error::from_raw_os_error(libc::EADDRINUSE));
            }
            addr.port()
        } else {
            self.ephemeral(proto, *addr.ip())?
        };
        self.bound.entry((proto, port)).or_default().push((*addr.ip(), fd));
        Ok(SocketAddrV4::new(*addr.ip(), port))
    }

    /// RFC 6056 §3.3.1, Algorithm 1 (simple port randomization): start at a random port of the
    /// range and step until a free one is found.
    fn ephemeral(&mut self, proto: Proto, addr: Ipv4Addr) -> io::Result<u16> {
        let (lo, hi) = (*self.range.start() as u32, *self.range.end() as u32);
        let n = hi - lo + 1;
        let start = self.rng.below(n as u64) as u32;
        for i in 0..n {
            let port = (lo + (start + i) % n) as u16;
            if !self.conflicts(proto, addr, port) {
                return Ok(port);
            }
        }
        Err(io::Error::from_raw_os_error(libc::EADDRINUSE))
    }

    /// Release the binding of descriptor `fd`.
    pub(crate) fn release(&mut self, proto: Proto, addr: SocketAddrV4, fd: i32) {
        if let Some(v) = self.bound.get_mut(&(proto, addr.port())) {
            v.retain(|(a, f)| !(*a == *addr.ip() && *f == fd));
            if v.is_empty() {
                self.bound.remove(&(proto, addr.port()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(a: [u8; 4], p: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(a), p)
    }

    #[test]
    fn conflicts_follow_wildcard_rules() {
        let mut t = PortTable::new(Rng::with_seed(1), false);
        t.bind(Proto::Udp, sa([10, 0, 0, 2], 7), 0).unwrap();
        assert_eq!(t.bind(Proto::Udp, sa([10, 0, 0, 2], 7), 1).unwrap_err().kind(), io::ErrorKind::AddrInUse);
        assert!(t.bind(Proto::Udp, sa([0, 0, 0, 0], 7), 1).is_err());
        assert!(t.bind(Proto::Udp, sa([10, 0, 0, 3], 7), 1).is_ok());
        assert!(t.bind(Proto::Tcp, sa([10, 0, 0, 2], 7), 2).is_ok(), "TCP and UDP ports are separate");
        t.release(Proto::Udp, sa([10, 0, 0, 2], 7), 0);
        assert!(t.bind(Proto::Udp, sa([10, 0, 0, 2], 7), 3).is_ok());
    }

    #[test]
    fn tcp_connect_ports_are_per_destination_and_unique_per_tuple() {
        let mut t = PortTable::new(Rng::with_seed(3), false);
        let ip = Ipv4Addr::new(10, 0, 0, 2);
        let r1 = sa([10, 0, 0, 1], 80);
        let r2 = sa([10, 0, 0, 9], 80);
        let a = t.connect(ip, None, r1).unwrap();
        let b = t.connect(ip, None, r1).unwrap();
        assert_ne!(a, b, "one 4-tuple per connection");
        assert!(EPHEMERAL.contains(&a.port()));
        // The same port may serve another destination, but an explicit reuse of a live tuple fails.
        assert!(t.connect(ip, Some(a.port()), r2).is_ok());
        assert_eq!(t.connect(ip, Some(a.port()), r1).unwrap_err().kind(), io::ErrorKind::AddrInUse);
        // A listener cannot take a port that connections use.
        assert!(t.bind(Proto::Tcp, SocketAddrV4::new(ip, a.port()), 9).is_err());
        assert!(!t.release_tuple(a, r1), "still used towards r2");
        assert!(t.release_tuple(a, r2));
        assert!(t.bind(Proto::Tcp, SocketAddrV4::new(ip, a.port()), 9).is_ok());
        // 1000 connections to one destination all get distinct ports.
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            assert!(seen.insert(t.connect(ip, None, r1).unwrap().port()));
        }
    }

    #[test]
    fn ephemeral_ports_are_random_and_in_range() {
        let mut t = PortTable::new(Rng::with_seed(99), false);
        let ports: Vec<u16> =
            (0..50).map(|fd| t.bind(Proto::Udp, sa([10, 0, 0, 2], 0), fd).unwrap().port()).collect();
        assert!(ports.iter().all(|p| EPHEMERAL.contains(p)));
        let mut shared = PortTable::new(Rng::with_seed(5), true);
        let p = shared.bind(Proto::Udp, sa([10, 0, 0, 2], 0), 0).unwrap().port();
        assert!(EPHEMERAL_SHARED.contains(&p));
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ports.len(), "no duplicates");
        assert!(ports.windows(2).any(|w| w[1] != w[0].wrapping_add(1)), "not sequential");
    }
}

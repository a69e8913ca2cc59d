//! Port ownership: which (address, port) pairs are bound, and ephemeral port choice (RFC 6056).

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

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
}

impl PortTable {
    /// A table choosing ephemeral ports from the range fit for the address mode.
    pub(crate) fn new(rng: Rng, shared_address: bool) -> PortTable {
        let range = if shared_address { EPHEMERAL_SHARED } else { EPHEMERAL };
        PortTable { bound: HashMap::new(), rng, range }
    }

    /// Is any socket bound to `port`?
    pub(crate) fn is_bound(&self, proto: Proto, port: u16) -> bool {
        self.bound.contains_key(&(proto, port))
    }

    fn conflicts(&self, proto: Proto, addr: Ipv4Addr, port: u16) -> bool {
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

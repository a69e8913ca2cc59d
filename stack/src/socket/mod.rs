//! The application side: sockets in the Berkeley model, each with an integer descriptor, talking to the
//! workers only through lock-free queues.

pub mod bufpool;
pub mod event;
pub mod poll;
mod ports;
mod raw;
pub mod ring;
mod rxqueue;
mod table;
pub mod tcp;
mod udp;

use std::io;
use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use poll::{Events, Interest, PollEvent, Pollable, Poller, Trigger};
pub(crate) use ports::PortTable;
pub(crate) use raw::{RawPacket, RawShared};
pub use raw::{RawSocket, IPPROTO_RAW};
pub use table::SocketSummary;
pub(crate) use table::{udp_entry, FdTable, SocketEntry};
pub use tcp::{TcpListener, TcpSocket, TcpStream};
pub use udp::UdpSocket;
pub(crate) use udp::{Datagram, UdpShared};

/// Transport protocols that own ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

/// The first IPv4 address `addr` resolves to; IPv6 is `InvalidInput` (the stack speaks IPv4).
pub(crate) fn first_v4(addr: impl ToSocketAddrs) -> io::Result<SocketAddrV4> {
    let mut saw_v6 = false;
    for a in addr.to_socket_addrs()? {
        match a {
            SocketAddr::V4(v4) => return Ok(v4),
            SocketAddr::V6(_) => saw_v6 = true,
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        if saw_v6 { "xdpstack speaks IPv4 only" } else { "address resolved to nothing" },
    ))
}

/// Blocking mode and timeouts, settable through `&self` as with `std::net`.
#[derive(Debug, Default)]
pub(crate) struct SocketOptions {
    nonblocking: AtomicBool,
    /// Nanoseconds; 0 means none.
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
}

fn to_nanos(t: Option<Duration>) -> io::Result<u64> {
    match t {
        Some(d) if d.is_zero() => {
            Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"))
        }
        Some(d) => Ok(d.as_nanos().clamp(1, u64::MAX as u128) as u64),
        None => Ok(0),
    }
}

fn from_nanos(n: u64) -> Option<Duration> {
    (n != 0).then(|| Duration::from_nanos(n))
}

impl SocketOptions {
    pub(crate) fn nonblocking(&self) -> bool {
        self.nonblocking.load(Ordering::Relaxed)
    }
    pub(crate) fn set_nonblocking(&self, on: bool) {
        self.nonblocking.store(on, Ordering::Relaxed);
    }
    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.read_timeout.store(to_nanos(t)?, Ordering::Relaxed);
        Ok(())
    }
    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.write_timeout.store(to_nanos(t)?, Ordering::Relaxed);
        Ok(())
    }
    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        from_nanos(self.read_timeout.load(Ordering::Relaxed))
    }
    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        from_nanos(self.write_timeout.load(Ordering::Relaxed))
    }
    /// When a blocking read gives up (None: never).
    pub(crate) fn read_deadline(&self) -> Option<Instant> {
        self.read_timeout().map(|t| Instant::now() + t)
    }
    /// When a blocking write gives up (far future when there is no timeout).
    pub(crate) fn write_deadline(&self) -> Instant {
        Instant::now() + self.write_timeout().unwrap_or(Duration::from_secs(86400 * 365))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_follow_std_rules() {
        let o = SocketOptions::default();
        assert_eq!(o.read_timeout(), None);
        assert_eq!(o.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        o.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        assert_eq!(o.read_timeout(), Some(Duration::from_millis(5)));
        o.set_read_timeout(None).unwrap();
        assert_eq!(o.read_timeout(), None);
    }

    #[test]
    fn ipv6_is_refused_clearly() {
        let e = first_v4("[::1]:80").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(first_v4("10.0.0.1:80").unwrap(), "10.0.0.1:80".parse().unwrap());
    }
}

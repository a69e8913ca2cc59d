//! UDP sockets in the shape of `std::net::UdpSocket`.
//!
//! A socket's receive side is a lock-free queue ([`UdpShared::rx`]) that every worker may push to
//! (datagrams for one port can arrive on any RX queue), plus an [`Event`] that wakes a blocked reader.
//! Its send side is the command queue of one worker (its *home*), so the datagrams of one socket leave
//! in the order they were sent.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::rxqueue::{Queued, RxQueue};

use super::event::Event;
use super::poll::{sealed, Probe, Ready};
use super::{first_v4, Proto, SocketOptions};
use crate::iface::udp::MAX_UDP_PAYLOAD;
use crate::stack::{Stack, StackShared, Wait};
use crate::worker::Command;

/// A received datagram waiting in a socket.
#[derive(Debug)]
pub(crate) struct Datagram {
    pub src: SocketAddrV4,
    pub buf: Vec<u8>,
}

impl Queued for Datagram {
    fn bytes(&self) -> usize {
        self.buf.len()
    }
}

/// The part of a UDP socket that workers see.
#[derive(Debug)]
pub(crate) struct UdpShared {
    pub fd: i32,
    /// Unique over the stack's life (tools show it as the inode).
    pub id: u64,
    pub local: SocketAddrV4,
    /// Connected peer, packed by [`pack`]; 0 when not connected.
    peer: AtomicU64,
    /// Datagrams waiting to be read, with their payload bytes (the Recv-Q).
    pub rx: RxQueue<Datagram>,
    pub event: Event,
    /// A pending asynchronous error (errno), reported once by the next call (`SO_ERROR`).
    error: AtomicI32,
    /// Workers that have the socket in their demultiplexing table.
    pub registered: AtomicUsize,
}

fn pack(addr: SocketAddrV4) -> u64 {
    (1 << 48) | (u64::from(u32::from(*addr.ip())) << 16) | u64::from(addr.port())
}

fn unpack(v: u64) -> Option<SocketAddrV4> {
    (v != 0).then(|| SocketAddrV4::new(Ipv4Addr::from((v >> 16) as u32), v as u16))
}

impl UdpShared {
    pub(crate) fn new(id: u64, fd: i32, local: SocketAddrV4, queue_len: usize) -> io::Result<UdpShared> {
        Ok(UdpShared {
            fd,
            id,
            local,
            peer: AtomicU64::new(0),
            rx: RxQueue::new(queue_len),
            event: Event::new(),
            error: AtomicI32::new(0),
            registered: AtomicUsize::new(0),
        })
    }

    /// The connected peer, if any.
    #[inline]
    pub(crate) fn peer(&self) -> Option<SocketAddrV4> {
        unpack(self.peer.load(Ordering::Acquire))
    }

    /// Record an asynchronous error for the application and wake it.
    pub(crate) fn set_error(&self, errno: i32) {
        self.error.store(errno, Ordering::Release);
        self.event.notify();
    }

    fn take_error(&self) -> Option<io::Error> {
        match self.error.swap(0, Ordering::AcqRel) {
            0 => None,
            e => Some(io::Error::from_raw_os_error(e)),
        }
    }
}

/// A UDP socket on an xdpstack [`Stack`].
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// # let stack: xdpstack::Stack = unimplemented!();
/// let sock = xdpstack::UdpSocket::bind(&stack, "10.77.0.2:7000")?;
/// let mut buf = [0u8; 1500];
/// let (n, from) = sock.recv_from(&mut buf)?;
/// sock.send_to(&buf[..n], from)?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct UdpSocket {
    shared: Arc<UdpShared>,
    stack: Arc<StackShared>,
    home: usize,
    opts: SocketOptions,
    broadcast: AtomicBool,
}

impl UdpSocket {
    /// Bind to `addr` (one of the stack's addresses or `0.0.0.0`; port 0 picks a random ephemeral
    /// port, RFC 6056). Fails with `AddrInUse` when the port is taken and `AddrNotAvailable` when the
    /// address is not the stack's.
    pub fn bind(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let addr = first_v4(addr)?;
        let shared_stack = stack.shared().clone();
        shared_stack.check_running()?;
        let (fd, local) = shared_stack.bind_port(Proto::Udp, addr)?;
        let queue_len = shared_stack.config.socket_queue_len;
        let shared = match UdpShared::new(shared_stack.next_id(), fd, local, queue_len) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                shared_stack.release_port(Proto::Udp, local, fd);
                return Err(e);
            }
        };
        let sock = UdpSocket {
            home: shared_stack.home_worker(fd),
            shared: shared.clone(),
            stack: shared_stack.clone(),
            opts: SocketOptions::default(),
            broadcast: AtomicBool::new(false),
        };
        // Register with every worker and wait until all have it, so that a datagram arriving right after
        // bind() returns finds the socket (no spurious port unreachable).
        let n = shared_stack.workers.len();
        for w in 0..n {
            let wait = Wait::Until(Instant::now() + Duration::from_secs(5));
            shared_stack.push_command(w, Command::UdpRegister(shared.clone()), wait)?;
        }
        let ready = || shared.registered.load(Ordering::Acquire) >= n;
        if !shared_stack.wait(&shared.event, Some(Instant::now() + Duration::from_secs(5)), ready) {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "workers did not register the socket"));
        }
        shared_stack.fd_table_set_udp(fd, &shared);
        Ok(sock)
    }

    /// This socket's integer descriptor (the Berkeley model's file descriptor, in the stack's own
    /// descriptor table).
    pub fn descriptor(&self) -> i32 {
        self.shared.fd
    }

    /// The address this socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(self.shared.local))
    }

    /// The connected peer; `NotConnected` when there is none.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.shared.peer().map(SocketAddr::V4).ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    /// Set the default destination and accept datagrams only from it.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let addr = first_v4(addr)?;
        if addr.ip().is_unspecified() || addr.port() == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        self.stack.check_route(*addr.ip())?;
        self.check_broadcast(*addr.ip())?;
        self.shared.peer.store(pack(addr), Ordering::Release);
        Ok(())
    }

    fn check_broadcast(&self, dst: Ipv4Addr) -> io::Result<()> {
        // Linux: sending to a broadcast address without SO_BROADCAST is EACCES.
        if self.stack.is_broadcast(dst) && !self.broadcast.load(Ordering::Relaxed) {
            return Err(io::Error::from_raw_os_error(libc::EACCES));
        }
        Ok(())
    }

    /// Send `buf` to `addr`. Returns the number of bytes sent (all of them).
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let dst = first_v4(addr)?;
        self.send_datagram(buf, dst)
    }

    /// Send `buf` to the connected peer (`NotConnected` when there is none).
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let dst = self.shared.peer().ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        self.send_datagram(buf, dst)
    }

    fn send_datagram(&self, buf: &[u8], dst: SocketAddrV4) -> io::Result<usize> {
        self.stack.check_running()?;
        if let Some(e) = self.shared.take_error() {
            return Err(e);
        }
        if buf.len() > MAX_UDP_PAYLOAD {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        if dst.port() == 0 || dst.ip().is_unspecified() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        self.stack.check_route(*dst.ip())?;
        self.check_broadcast(*dst.ip())?;
        let data = self.stack.bufs.copy_of(buf);
        let cmd = Command::UdpSend { src: self.shared.local, dst, buf: data };
        let wait =
            if self.opts.nonblocking() { Wait::NonBlocking } else { Wait::Until(self.opts.write_deadline()) };
        self.stack.push_command(self.home, cmd, wait)?;
        Ok(buf.len())
    }

    /// Receive one datagram into `buf` (excess bytes of a longer datagram are discarded, as with
    /// kernel sockets). Blocks unless non-blocking; `TimedOut` after the read timeout.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        loop {
            if let Some(d) = self.shared.rx.pop() {
                let n = d.buf.len().min(buf.len());
                buf[..n].copy_from_slice(&d.buf[..n]);
                self.stack.bufs.put(d.buf);
                return Ok((n, SocketAddr::V4(d.src)));
            }
            if let Some(e) = self.shared.take_error() {
                return Err(e);
            }
            self.stack.check_running()?;
            if self.opts.nonblocking() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let deadline = self.opts.read_deadline();
            // Shutdown signals every socket's event, so a stopped stack wakes us too.
            let ready = || {
                !self.shared.rx.is_empty()
                    || self.shared.error.load(Ordering::Relaxed) != 0
                    || !self.stack.is_running()
            };
            if !self.stack.wait(&self.shared.event, deadline, ready) {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "recv timed out"));
            }
        }
    }

    /// Receive one datagram from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_from(buf).map(|(n, _)| n)
    }

    /// Switch non-blocking mode (calls return `WouldBlock` instead of waiting).
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.opts.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Limit how long `recv`/`recv_from` wait (`None`: forever). A zero duration is `InvalidInput`, as
    /// with `std`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.opts.set_read_timeout(timeout)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.opts.read_timeout())
    }

    /// Limit how long `send`/`send_to` wait for room in the worker's queue.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.opts.set_write_timeout(timeout)
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.opts.write_timeout())
    }

    /// Allow sending to broadcast addresses (`SO_BROADCAST`).
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.broadcast.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Whether sending to broadcast addresses is allowed.
    pub fn broadcast(&self) -> io::Result<bool> {
        Ok(self.broadcast.load(Ordering::Relaxed))
    }

    /// Take the pending asynchronous error (an ICMP error on a connected socket), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(self.shared.take_error())
    }
}

/// A UDP socket's readiness: readable with a datagram or a pending error; always writable (datagrams
/// wait in the worker's command queue, and a full queue is `WouldBlock` on the send itself).
#[derive(Debug)]
struct UdpProbe(Arc<UdpShared>);

impl Probe for UdpProbe {
    fn readiness(&self, running: bool) -> Ready {
        let error = self.0.error.load(Ordering::Acquire) != 0;
        let mut r = Ready(Ready::WRITABLE);
        r.set(Ready::READABLE, !self.0.rx.is_empty() || error || !running);
        r.set(Ready::ERROR, error);
        r.set(Ready::HUP, !running);
        r
    }
}

#[allow(private_interfaces)] // sealed: see `poll::sealed`
impl sealed::Source for UdpSocket {
    fn event(&self) -> &Event {
        &self.shared.event
    }
    fn stack(&self) -> &Arc<StackShared> {
        &self.stack
    }
    fn probe(&self) -> Box<dyn Probe> {
        Box::new(UdpProbe(self.shared.clone()))
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        // Closing a descriptor removes it from its poller, as with epoll.
        self.shared.event.unlink(None);
        let s = &self.stack;
        for w in 0..s.workers.len() {
            // Best effort: if the stack has stopped, the workers are gone and so is the registration.
            let cmd = Command::UdpUnregister { local: self.shared.local, fd: self.shared.fd };
            let _ = s.push_command(w, cmd, Wait::Until(Instant::now() + Duration::from_secs(1)));
        }
        while let Some(d) = self.shared.rx.pop() {
            s.bufs.put(d.buf);
        }
        s.release_port(Proto::Udp, self.shared.local, self.shared.fd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_packing_round_trips() {
        let a = SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 1), 9);
        assert_eq!(unpack(pack(a)), Some(a));
        let z = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
        assert_eq!(unpack(pack(z)), Some(z));
        assert_eq!(unpack(0), None);
    }
}

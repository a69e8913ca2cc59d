//! Raw IP sockets, the Berkeley model's third socket type (`socket(AF_INET, SOCK_RAW, protocol)`).
//!
//! A raw socket is opened for one IP protocol number. It receives a copy of every IPv4 datagram of that
//! protocol addressed to the stack, **header included**, as Linux raw sockets do (the stack still
//! handles the datagram itself: an echo request is answered, a TCP segment reaches its connection).
//! It sends either a payload that the stack wraps in an IPv4 header of the socket's protocol, or, with
//! [`RawSocket::set_header_included`] (`IP_HDRINCL`), a whole datagram whose header the application
//! wrote. Protocol 255 (`IPPROTO_RAW`) is send-only with the header included, as in Linux.
//!
//! The plumbing is a UDP socket's: every worker has the socket in its table (datagrams arrive on any
//! RX queue) and pushes copies into its bounded lock-free queue (a full queue drops and counts
//! `RawRcvbufErrors`); sends go through the command queue of one *home* worker, so they leave in order.
//! With no raw socket open, a worker pays one branch per received datagram.
//!
//! In shared-address mode the kernel owns the address (and ICMP), so the XDP program steers only the
//! stack's ports to it: a raw socket then sees only ICMP errors about the stack's own flows.

use std::io;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::rxqueue::{Queued, RxQueue};

use super::event::Event;
use super::poll::{sealed, Probe, Ready};
use super::{SocketEntry, SocketOptions};
use crate::iface::check_header;
use crate::stack::{Stack, StackShared, Wait};
use crate::worker::Command;

/// `IPPROTO_RAW`: a send-only socket whose datagrams carry their own header.
pub const IPPROTO_RAW: u8 = 255;

/// Largest IPv4 datagram.
const MAX_DATAGRAM: usize = 65535;

/// A received datagram waiting in a raw socket: header and payload, as on the wire.
#[derive(Debug)]
pub(crate) struct RawPacket {
    pub src: Ipv4Addr,
    pub buf: Vec<u8>,
}

impl Queued for RawPacket {
    fn bytes(&self) -> usize {
        self.buf.len()
    }
}

/// The part of a raw socket that workers see.
#[derive(Debug)]
pub(crate) struct RawShared {
    pub fd: i32,
    pub protocol: u8,
    /// Bound local address (`bind`), as a u32; 0 receives datagrams to any of our addresses.
    local: AtomicU32,
    /// Datagrams waiting to be read, with their bytes, headers included (the Recv-Q).
    pub rx: RxQueue<RawPacket>,
    pub event: Event,
    /// Workers that have the socket in their table.
    pub registered: AtomicUsize,
}

impl RawShared {
    /// Does a datagram to `dst` belong to this socket (beyond its protocol)?
    #[inline]
    pub(crate) fn accepts(&self, dst: Ipv4Addr) -> bool {
        let local = self.local.load(Ordering::Relaxed);
        local == 0 || local == u32::from(dst)
    }

    /// The bound local address (0.0.0.0 when unbound).
    pub(crate) fn local(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.local.load(Ordering::Relaxed))
    }
}

/// A raw IPv4 socket on an xdpstack [`Stack`].
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// # let stack: xdpstack::Stack = unimplemented!();
/// let sock = xdpstack::RawSocket::open(&stack, 1)?; // ICMP
/// let mut buf = [0u8; 1500];
/// let (n, from) = sock.recv_from(&mut buf)?;         // buf[..n] starts with the IPv4 header
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RawSocket {
    shared: Arc<RawShared>,
    stack: Arc<StackShared>,
    home: usize,
    opts: SocketOptions,
    header_included: AtomicBool,
    broadcast: AtomicBool,
}

impl RawSocket {
    /// Open a raw socket for IP protocol `protocol` (1 ICMP, 6 TCP, 17 UDP, 253/254 experiments,
    /// 255 send-only with the header included). Protocol 0 is refused.
    pub fn open(stack: &Stack, protocol: u8) -> io::Result<RawSocket> {
        RawSocket::open_shared(stack.shared().clone(), protocol)
    }

    /// [`RawSocket::open`] for the stack's own threads (the control socket's raw sessions).
    pub(crate) fn open_shared(st: Arc<StackShared>, protocol: u8) -> io::Result<RawSocket> {
        if protocol == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a raw socket needs an IP protocol number 1..=255 (e.g. 1 for ICMP), not 0",
            ));
        }
        st.check_running()?;
        let fd = st.fd_alloc(SocketEntry::Reserved);
        let shared = Arc::new(RawShared {
            fd,
            protocol,
            local: AtomicU32::new(0),
            rx: RxQueue::new(st.config.socket_queue_len),
            event: Event::new(),
            registered: AtomicUsize::new(0),
        });
        let sock = RawSocket {
            home: st.home_worker(fd),
            shared: shared.clone(),
            stack: st.clone(),
            opts: SocketOptions::default(),
            header_included: AtomicBool::new(protocol == IPPROTO_RAW),
            broadcast: AtomicBool::new(false),
        };
        if protocol != IPPROTO_RAW {
            // Register with every worker and wait until all have it, so that a reply arriving right
            // after open() returns is not missed. (Dropping `sock` on failure unregisters and frees.)
            let n = st.workers.len();
            for w in 0..n {
                let wait = Wait::Until(Instant::now() + Duration::from_secs(5));
                st.push_command(w, Command::RawRegister(shared.clone()), wait)?;
            }
            let ready = || shared.registered.load(Ordering::Acquire) >= n;
            if !st.wait(&shared.event, Some(Instant::now() + Duration::from_secs(5)), ready) {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "workers did not register the socket"));
            }
        }
        st.fd_table_set(fd, SocketEntry::Raw(Arc::downgrade(&shared)));
        Ok(sock)
    }

    /// This socket's integer descriptor in the stack's descriptor table.
    pub fn descriptor(&self) -> i32 {
        self.shared.fd
    }

    /// The same as [`RawSocket::descriptor`] (the Berkeley model's file descriptor).
    pub fn fd(&self) -> i32 {
        self.shared.fd
    }

    /// The IP protocol number the socket was opened for.
    pub fn protocol(&self) -> u8 {
        self.shared.protocol
    }

    /// Receive only datagrams addressed to `addr` (one of the stack's addresses), and send from it;
    /// `0.0.0.0` undoes it. `AddrNotAvailable` for an address that is not the stack's.
    pub fn bind(&self, addr: Ipv4Addr) -> io::Result<()> {
        if !addr.is_unspecified() && !self.stack.config.addrs.iter().any(|c| c.address() == addr) {
            return Err(io::Error::from_raw_os_error(libc::EADDRNOTAVAIL));
        }
        self.shared.local.store(u32::from(addr), Ordering::Relaxed);
        Ok(())
    }

    /// The bound local address (`0.0.0.0` when unbound).
    pub fn local_addr(&self) -> io::Result<Ipv4Addr> {
        Ok(self.shared.local())
    }

    /// `IP_HDRINCL`: the application writes the IPv4 header of what it sends. The stack checks it
    /// (version 4, header length at least 20 bytes and within the datagram) and completes it as Linux
    /// does: total length and checksum always, identification and source address when zero.
    pub fn set_header_included(&self, on: bool) -> io::Result<()> {
        if !on && self.shared.protocol == IPPROTO_RAW {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a protocol 255 (IPPROTO_RAW) socket always includes the header",
            ));
        }
        self.header_included.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Whether the application writes the IPv4 header.
    pub fn header_included(&self) -> io::Result<bool> {
        Ok(self.header_included.load(Ordering::Relaxed))
    }

    /// Allow sending to broadcast addresses (`SO_BROADCAST`).
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.broadcast.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Send `buf` to `dst`: a payload (the stack adds the header) or, with the header included, a
    /// whole datagram. Returns the bytes sent (all of them).
    pub fn send_to(&self, buf: &[u8], dst: Ipv4Addr) -> io::Result<usize> {
        self.stack.check_running()?;
        let header_included = self.header_included.load(Ordering::Relaxed);
        if header_included {
            check_header(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.describe()))?;
            // The IP MTU (the stack's MSS is the MTU less 40 bytes of IPv4 and TCP header).
            let mtu = usize::from(self.stack.mss) + 40;
            if buf.len() > mtu {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("IP_HDRINCL datagram of {} bytes is larger than the MTU ({mtu})", buf.len()),
                ));
            }
        } else if buf.len() + crate::wire::ipv4::HEADER_LEN > MAX_DATAGRAM {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        if dst.is_unspecified() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        self.stack.check_route(dst)?;
        if self.stack.is_broadcast(dst) && !self.broadcast.load(Ordering::Relaxed) {
            return Err(io::Error::from_raw_os_error(libc::EACCES));
        }
        let local = self.shared.local();
        let cmd = Command::RawSend {
            src: (!local.is_unspecified()).then_some(local),
            dst,
            protocol: self.shared.protocol,
            header_included,
            buf: self.stack.bufs.copy_of(buf),
        };
        let wait =
            if self.opts.nonblocking() { Wait::NonBlocking } else { Wait::Until(self.opts.write_deadline()) };
        self.stack.push_command(self.home, cmd, wait)?;
        Ok(buf.len())
    }

    /// Receive one datagram, IPv4 header included, into `buf` (the excess of a longer one is
    /// discarded); returns its length here and its source. Blocks unless non-blocking; `TimedOut`
    /// after the read timeout.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, Ipv4Addr)> {
        loop {
            if let Some(p) = self.shared.rx.pop() {
                let n = p.buf.len().min(buf.len());
                buf[..n].copy_from_slice(&p.buf[..n]);
                self.stack.bufs.put(p.buf);
                return Ok((n, p.src));
            }
            self.stack.check_running()?;
            if self.opts.nonblocking() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let deadline = self.opts.read_deadline();
            // Shutdown signals every socket's event, so a stopped stack wakes us too.
            let ready = || !self.shared.rx.is_empty() || !self.stack.is_running();
            if !self.stack.wait(&self.shared.event, deadline, ready) {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "recv timed out"));
            }
        }
    }

    /// Switch non-blocking mode (calls return `WouldBlock` instead of waiting).
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.opts.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Limit how long `recv_from` waits (`None`: forever). Zero is `InvalidInput`, as with `std`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.opts.set_read_timeout(timeout)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.opts.read_timeout())
    }

    /// Limit how long `send_to` waits for room in the worker's queue.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.opts.set_write_timeout(timeout)
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.opts.write_timeout())
    }
}

/// A raw socket's readiness: readable with a datagram queued; always writable (datagrams wait in the
/// worker's command queue, and a full queue is `WouldBlock` on the send itself).
#[derive(Debug)]
struct RawProbe(Arc<RawShared>);

impl Probe for RawProbe {
    fn readiness(&self, running: bool) -> Ready {
        let mut r = Ready(Ready::WRITABLE);
        r.set(Ready::READABLE, !self.0.rx.is_empty() || !running);
        r.set(Ready::HUP, !running);
        r
    }
}

#[allow(private_interfaces)] // sealed: see `poll::sealed`
impl sealed::Source for RawSocket {
    fn event(&self) -> &Event {
        &self.shared.event
    }
    fn stack(&self) -> &Arc<StackShared> {
        &self.stack
    }
    fn probe(&self) -> Box<dyn Probe> {
        Box::new(RawProbe(self.shared.clone()))
    }
}

impl Drop for RawSocket {
    fn drop(&mut self) {
        // Closing a descriptor removes it from its poller, as with epoll.
        self.shared.event.unlink(None);
        let s = &self.stack;
        if self.shared.protocol != IPPROTO_RAW {
            for w in 0..s.workers.len() {
                // Best effort: if the stack has stopped, the workers are gone and so is the registration.
                let cmd = Command::RawUnregister { protocol: self.shared.protocol, fd: self.shared.fd };
                let _ = s.push_command(w, cmd, Wait::Until(Instant::now() + Duration::from_secs(1)));
            }
        }
        while let Some(p) = self.shared.rx.pop() {
            s.bufs.put(p.buf);
        }
        s.fd_free(self.shared.fd);
    }
}

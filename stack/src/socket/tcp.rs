//! TCP sockets in the shape of `std::net::{TcpListener, TcpStream}`.
//!
//! Bytes move between the application and the worker through two lock-free byte rings per connection
//! (the send buffer and the receive buffer themselves); the application wakes the worker with a
//! command only when it matters (new data to send when none was pending, a window update, a close),
//! and the worker wakes the application through the connection's eventfd only when it waits.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;

use super::event::Event;
use super::poll::{sealed, Probe, Ready};
use super::ring::{ByteRing, Consumer, Producer, RingProbe};
use super::{first_v4, Proto, SocketOptions};
use crate::stack::{Stack, StackShared, Wait};
use crate::tcp::{Connection, ConnectionParams, Keepalive, State};
use crate::worker::tcp::{ConnectRequest, Kick};
use crate::worker::Command;

/// Default buffer sizes (each direction).
pub const DEFAULT_BUFFER: usize = 256 << 10;
/// `std::net::TcpListener::bind`'s backlog.
pub const DEFAULT_BACKLOG: usize = 128;

/// The part of a connection that the worker and the application both see.
#[derive(Debug)]
pub(crate) struct TcpShared {
    /// Unique over the stack's life (commands carry it, so a stale one never hits a new connection).
    pub id: u64,
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    /// The worker that owns the connection.
    pub worker: usize,
    /// Made by connect() (its port belongs to the port table until the connection is gone).
    pub active_open: bool,
    pub state: AtomicU8,
    /// The errno to report (0: none).
    pub error: AtomicI32,
    pub event: Event,
    /// A kick command is queued and not yet handled.
    pub kick_pending: AtomicBool,
    /// The window last advertised (bytes), so that a reader knows when its read warrants an update.
    pub adv_window: AtomicUsize,
    pub mss: AtomicU32,
    /// Snapshot for tools: (Recv-Q, Send-Q).
    pub queues: AtomicU64,
}

impl TcpShared {
    pub(crate) fn new(id: u64, local: SocketAddrV4, remote: SocketAddrV4, worker: usize) -> TcpShared {
        TcpShared {
            id,
            local,
            remote,
            worker,
            active_open: false,
            state: AtomicU8::new(State::SynReceived as u8),
            error: AtomicI32::new(0),
            event: Event::new(),
            kick_pending: AtomicBool::new(false),
            adv_window: AtomicUsize::new(usize::MAX),
            mss: AtomicU32::new(536),
            queues: AtomicU64::new(0),
        }
    }

    /// The worker tells the application what changed.
    pub(crate) fn publish(&self, conn: &Connection, ev: u8) {
        self.state.store(conn.state() as u8, Ordering::Release);
        if let Some(e) = conn.error() {
            let _ = self.error.compare_exchange(0, e.errno(), Ordering::AcqRel, Ordering::Relaxed);
        }
        self.adv_window.store(conn.advertised_window(), Ordering::Relaxed);
        self.mss.store(conn.smss() as u32, Ordering::Relaxed);
        let (r, s) = conn.queues();
        self.queues.store(((r as u64) << 32) | s as u64, Ordering::Relaxed);
        if ev != 0 {
            self.event.notify();
        }
    }

    /// The connection could not even be set up.
    pub(crate) fn fail(&self, errno: i32) {
        let _ = self.error.compare_exchange(0, errno, Ordering::AcqRel, Ordering::Relaxed);
        self.state.store(State::Closed as u8, Ordering::Release);
        self.event.notify();
    }

    pub(crate) fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }
}

/// A connection the worker hands to a listener's accept queue, with the application's ends.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub shared: Arc<TcpShared>,
    pub tx: Producer,
    pub rx: Consumer,
}

/// Options a listener gives the connections it accepts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListenParams {
    pub recv_buf: usize,
    pub send_buf: usize,
    pub nodelay: bool,
    pub keepalive: Option<Keepalive>,
    pub backlog: usize,
}

/// The part of a listener that workers see.
#[derive(Debug)]
pub(crate) struct ListenerShared {
    pub id: u64,
    pub fd: i32,
    pub local: SocketAddrV4,
    pub params: ListenParams,
    accept: ArrayQueue<Accepted>,
    pub event: Event,
    pub registered: AtomicUsize,
}

impl ListenerShared {
    pub(crate) fn accept_full(&self) -> bool {
        self.accept.is_full()
    }

    pub(crate) fn push_accepted(&self, a: Accepted) -> Result<(), Accepted> {
        self.accept.push(a)?;
        self.event.notify();
        Ok(())
    }

    pub(crate) fn pending(&self) -> usize {
        self.accept.len()
    }
}

/// Set options before connecting or listening (buffer sizes cannot change afterwards: the buffers
/// *are* the rings), like tokio's `TcpSocket`.
#[derive(Debug)]
pub struct TcpSocket<'a> {
    stack: &'a Stack,
    params: ListenParams,
    bound: Option<SocketAddrV4>,
}

impl<'a> TcpSocket<'a> {
    /// A socket on `stack` with default options.
    pub fn new(stack: &'a Stack) -> TcpSocket<'a> {
        TcpSocket {
            stack,
            params: ListenParams {
                recv_buf: DEFAULT_BUFFER,
                send_buf: DEFAULT_BUFFER,
                nodelay: false,
                keepalive: None,
                backlog: DEFAULT_BACKLOG,
            },
            bound: None,
        }
    }

    /// Receive buffer (and so the largest window), bytes.
    pub fn set_recv_buffer_size(&mut self, size: usize) -> io::Result<()> {
        self.params.recv_buf = check_buffer(size)?;
        Ok(())
    }

    /// Send buffer, bytes.
    pub fn set_send_buffer_size(&mut self, size: usize) -> io::Result<()> {
        self.params.send_buf = check_buffer(size)?;
        Ok(())
    }

    /// TCP_NODELAY for the connection (or for every accepted one).
    pub fn set_nodelay(&mut self, on: bool) -> io::Result<()> {
        self.params.nodelay = on;
        Ok(())
    }

    /// SO_KEEPALIVE with its timings.
    pub fn set_keepalive(&mut self, k: Option<Keepalive>) -> io::Result<()> {
        self.params.keepalive = k;
        Ok(())
    }

    /// Bind to a local address before connecting (port 0: chosen at connect) or listening.
    pub fn bind(&mut self, addr: impl ToSocketAddrs) -> io::Result<()> {
        self.bound = Some(first_v4(addr)?);
        Ok(())
    }

    /// Listen with a backlog (the accept queue's length).
    pub fn listen(mut self, backlog: usize) -> io::Result<TcpListener> {
        let addr =
            self.bound.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bind before listen"))?;
        self.params.backlog = backlog.clamp(1, 65535);
        TcpListener::open(self.stack, addr, self.params)
    }

    /// Connect (blocking until established, refused or timed out).
    pub fn connect(self, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        TcpStream::open(self.stack, first_v4(addr)?, self.bound, self.params, None)
    }

    /// Send the SYN without waiting (for the async wrappers).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn start_connect(self, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        TcpStream::start_connect(self.stack, first_v4(addr)?, self.bound, self.params)
    }

    /// Connect, giving up after `timeout`.
    pub fn connect_timeout(self, addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"));
        }
        TcpStream::open(self.stack, first_v4(addr)?, self.bound, self.params, Some(timeout))
    }
}

fn check_buffer(size: usize) -> io::Result<usize> {
    if !(1024..=(1 << 30)).contains(&size) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "buffer size must be 1 KiB to 1 GiB"));
    }
    Ok(size)
}

/// A listening TCP socket.
#[derive(Debug)]
pub struct TcpListener {
    shared: Arc<ListenerShared>,
    stack: Arc<StackShared>,
    opts: SocketOptions,
}

impl TcpListener {
    /// Bind and listen on `addr` with the default backlog (128), as `std::net::TcpListener::bind`.
    pub fn bind(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let mut s = TcpSocket::new(stack);
        s.bind(addr)?;
        s.listen(DEFAULT_BACKLOG)
    }

    fn open(stack: &Stack, addr: SocketAddrV4, params: ListenParams) -> io::Result<TcpListener> {
        let st = stack.shared().clone();
        st.check_running()?;
        let (fd, local) = st.bind_port(Proto::Tcp, addr)?;
        let shared = Arc::new(ListenerShared {
            id: st.next_id(),
            fd,
            local,
            params,
            accept: ArrayQueue::new(params.backlog),
            event: Event::new(),
            registered: AtomicUsize::new(0),
        });
        let n = st.workers.len();
        for w in 0..n {
            let wait = Wait::Until(Instant::now() + Duration::from_secs(5));
            st.push_command(w, Command::TcpListen(shared.clone()), wait)?;
        }
        let ok = st.wait(&shared.event, Some(Instant::now() + Duration::from_secs(5)), || {
            shared.registered.load(Ordering::Acquire) >= n
        });
        if !ok {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "workers did not register the listener"));
        }
        st.fd_table_set(fd, super::SocketEntry::TcpListener(Arc::downgrade(&shared)));
        Ok(TcpListener { shared, stack: st, opts: SocketOptions::default() })
    }

    /// Accept a connection (blocking unless non-blocking; `TimedOut` after the read timeout).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        loop {
            if let Some(a) = self.shared.accept.pop() {
                let remote = a.shared.remote;
                let stream = TcpStream::adopt(&self.stack, a)?;
                return Ok((stream, SocketAddr::V4(remote)));
            }
            self.stack.check_running()?;
            if self.opts.nonblocking() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let deadline = self.opts.read_deadline();
            let ready = || !self.shared.accept.is_empty() || !self.stack.is_running();
            if !self.stack.wait(&self.shared.event, deadline, ready) {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "accept timed out"));
            }
        }
    }

    /// An endless iterator of accepted connections (as `std::net::TcpListener::incoming`).
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<TcpStream>> + '_ {
        std::iter::repeat_with(move || self.accept().map(|(s, _)| s))
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(self.shared.local))
    }

    /// The descriptor.
    pub fn descriptor(&self) -> i32 {
        self.shared.fd
    }

    /// Non-blocking accept.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.opts.set_nonblocking(on);
        Ok(())
    }

    /// How long `accept` waits (None: forever).
    pub fn set_accept_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.opts.set_read_timeout(t)
    }

    /// Connections waiting to be accepted.
    pub fn pending(&self) -> usize {
        self.shared.pending()
    }
}

/// A listener is readable when a connection waits to be accepted.
#[derive(Debug)]
struct ListenerProbe(Arc<ListenerShared>);

impl Probe for ListenerProbe {
    fn readiness(&self, running: bool) -> Ready {
        let mut r = Ready::default();
        r.set(Ready::READABLE, !self.0.accept.is_empty() || !running);
        r.set(Ready::HUP, !running);
        r
    }
}

#[allow(private_interfaces)] // sealed: see `poll::sealed`
impl sealed::Source for TcpListener {
    fn event(&self) -> &Event {
        &self.shared.event
    }
    fn stack(&self) -> &Arc<StackShared> {
        &self.stack
    }
    fn probe(&self) -> Box<dyn Probe> {
        Box::new(ListenerProbe(self.shared.clone()))
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        self.shared.event.unlink(None);
        let st = &self.stack;
        for w in 0..st.workers.len() {
            let cmd = Command::TcpUnlisten { local: self.shared.local, id: self.shared.id };
            let _ = st.push_command(w, cmd, Wait::Until(Instant::now() + Duration::from_secs(1)));
        }
        // Connections nobody will accept are reset, as Linux does when a listener closes.
        while let Some(a) = self.shared.accept.pop() {
            let _ = st.kick_tcp(&a.shared, Kick::Abort);
        }
        st.release_port(Proto::Tcp, self.shared.local, self.shared.fd);
    }
}

/// A TCP connection. Reads and writes take `&mut self`: each direction's buffer is a single-producer
/// single-consumer ring, so a stream is `Send` but not `Sync`.
#[derive(Debug)]
pub struct TcpStream {
    shared: Arc<TcpShared>,
    tx: Producer,
    rx: Consumer,
    stack: Arc<StackShared>,
    opts: SocketOptions,
    fd: i32,
    read_shut: AtomicBool,
    write_shut: AtomicBool,
    /// The reset was reported once; later writes see EPIPE.
    reported: AtomicBool,
}

impl TcpStream {
    /// Connect to `addr` (blocking until established or refused), as `std::net::TcpStream::connect`.
    pub fn connect(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        TcpSocket::new(stack).connect(addr)
    }

    /// Connect, giving up after `timeout`.
    pub fn connect_timeout(stack: &Stack, addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        TcpSocket::new(stack).connect_timeout(addr, timeout)
    }

    fn open(
        stack: &Stack,
        remote: SocketAddrV4,
        bound: Option<SocketAddrV4>,
        params: ListenParams,
        timeout: Option<Duration>,
    ) -> io::Result<TcpStream> {
        let stream = TcpStream::start_connect(stack, remote, bound, params)?;
        let deadline = timeout.map(|t| Instant::now() + t);
        let settled = || stream.connect_status().is_some();
        if !stream.stack.wait(&stream.shared.event, deadline, settled) {
            // Give up: the worker aborts the attempt when the stream drops.
            return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
        }
        match stream.connect_status() {
            Some(Ok(())) => Ok(stream),
            Some(Err(e)) => Err(e),
            None => unreachable!("settled"),
        }
    }

    /// Send the SYN and return at once, in SYN-SENT; [`TcpStream::connect_status`] tells the outcome.
    pub(crate) fn start_connect(
        stack: &Stack,
        remote: SocketAddrV4,
        bound: Option<SocketAddrV4>,
        params: ListenParams,
    ) -> io::Result<TcpStream> {
        let st = stack.shared().clone();
        st.check_running()?;
        if remote.port() == 0
            || remote.ip().is_unspecified()
            || st.is_broadcast(*remote.ip())
            || remote.ip().is_multicast()
        {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        st.check_route(*remote.ip())?;
        let (fd, local) = st.bind_connect(bound, remote)?;
        let worker = st.tcp_owner(local, remote);
        let mut shared = TcpShared::new(st.next_id(), local, remote, worker);
        shared.active_open = true;
        shared.state.store(State::SynSent as u8, Ordering::Relaxed);
        let shared = Arc::new(shared);
        let ((app_tx, tx), (rx, app_rx)) =
            (ByteRing::pooled(params.send_buf, &st.rings), ByteRing::pooled(params.recv_buf, &st.rings));
        let conn_params = ConnectionParams {
            local,
            remote,
            mss: st.mss(),
            nodelay: params.nodelay,
            keepalive: params.keepalive,
        };
        let req = ConnectRequest { shared: shared.clone(), params: conn_params, tx, rx };
        st.fd_table_set(fd, super::SocketEntry::Tcp(Arc::downgrade(&shared)));
        let stream = TcpStream {
            shared: shared.clone(),
            tx: app_tx,
            rx: app_rx,
            stack: st.clone(),
            opts: SocketOptions::default(),
            fd,
            read_shut: AtomicBool::new(false),
            write_shut: AtomicBool::new(false),
            reported: AtomicBool::new(false),
        };
        st.push_command(
            worker,
            Command::TcpConnect(Box::new(req)),
            Wait::Until(Instant::now() + Duration::from_secs(5)),
        )?;
        Ok(stream)
    }

    /// The outcome of a connect: `None` while the SYN is unanswered, then established or the error.
    pub(crate) fn connect_status(&self) -> Option<io::Result<()>> {
        if !self.stack.is_running() {
            return Some(self.stack.check_running());
        }
        match self.shared.state() {
            State::SynSent => None,
            State::Established | State::CloseWait | State::FinWait1 | State::FinWait2 => Some(Ok(())),
            _ => Some(Err(self
                .take_errno()
                .unwrap_or_else(|| io::Error::from_raw_os_error(libc::ECONNREFUSED)))),
        }
    }

    /// A connection from a listener's accept queue.
    fn adopt(stack: &Arc<StackShared>, a: Accepted) -> io::Result<TcpStream> {
        let fd = stack.fd_alloc(super::SocketEntry::Tcp(Arc::downgrade(&a.shared)));
        Ok(TcpStream {
            shared: a.shared,
            tx: a.tx,
            rx: a.rx,
            stack: stack.clone(),
            opts: SocketOptions::default(),
            fd,
            read_shut: AtomicBool::new(false),
            write_shut: AtomicBool::new(false),
            reported: AtomicBool::new(false),
        })
    }

    /// The connection's error: the receive ring carries it with its close, which the application
    /// can see before the worker has published it to the shared state (later in the same turn).
    fn error(&self) -> Option<io::Error> {
        self.take_errno().or_else(|| self.rx.close_errno().map(io::Error::from_raw_os_error))
    }

    fn take_errno(&self) -> Option<io::Error> {
        match self.shared.error.load(Ordering::Acquire) {
            0 => None,
            e => Some(io::Error::from_raw_os_error(e)),
        }
    }

    fn kick(&self, what: Kick) {
        if matches!(what, Kick::Activity) && self.shared.kick_pending.swap(true, Ordering::AcqRel) {
            return; // one is already queued
        }
        let _ = self.stack.kick_tcp(&self.shared, what);
    }

    /// Whether the connection still has a peer: not reset, timed out or fully closed (Linux's
    /// TCP_CLOSE), where `peer_addr` and `shutdown` give ENOTCONN.
    fn connected(&self) -> bool {
        self.error().is_none() && !matches!(self.shared.state(), State::Closed | State::SynSent)
    }

    /// The peer's address (NotConnected once the connection is gone, as getpeername(2)).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        if !self.connected() {
            return Err(io::ErrorKind::NotConnected.into());
        }
        Ok(SocketAddr::V4(self.shared.remote))
    }

    /// Our address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(self.shared.local))
    }

    /// The descriptor.
    pub fn descriptor(&self) -> i32 {
        self.fd
    }

    /// Shut down reading, writing or both (writing: our FIN goes after the queued data). On a
    /// connection that is gone the directions are still marked shut, and the answer is NotConnected,
    /// as shutdown(2) on Linux.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.read_shut.store(true, Ordering::Release);
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) && !self.write_shut.swap(true, Ordering::AcqRel) {
            self.tx.close();
            self.kick(Kick::Activity);
        }
        if !self.connected() {
            return Err(io::ErrorKind::NotConnected.into());
        }
        Ok(())
    }

    /// TCP_NODELAY: send small segments at once instead of coalescing them (Nagle).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.stack.kick_tcp(&self.shared, Kick::NoDelay(on))
    }

    /// Keepalive probing (None: off).
    pub fn set_keepalive(&self, k: Option<Keepalive>) -> io::Result<()> {
        self.stack.kick_tcp(&self.shared, Kick::Keepalive(k))
    }

    /// Limit how long reads wait.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.opts.set_read_timeout(t)
    }

    /// Limit how long writes wait for buffer space.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.opts.set_write_timeout(t)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.opts.read_timeout())
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.opts.write_timeout())
    }

    /// Non-blocking reads and writes.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.opts.set_nonblocking(on);
        Ok(())
    }

    /// Receive buffer size (bytes).
    pub fn recv_buffer_size(&self) -> usize {
        self.rx.capacity()
    }

    /// Send buffer size (bytes).
    pub fn send_buffer_size(&self) -> usize {
        self.tx.capacity()
    }

    /// The pending error, if any (SO_ERROR).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(self.error())
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.rx.read(buf);
            if n > 0 {
                self.after_read();
                return Ok(n);
            }
            if self.read_shut.load(Ordering::Acquire) {
                return Ok(0);
            }
            if self.rx.is_closed() && self.rx.is_empty() {
                // End of stream, or the connection died: report the error once, then end of stream.
                if let Some(e) = self.error() {
                    if !self.reported.swap(true, Ordering::AcqRel) {
                        return Err(e);
                    }
                }
                return Ok(0);
            }
            if !self.stack.is_running() {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the xdpstack stack has stopped",
                ));
            }
            if self.opts.nonblocking() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let ready = || !self.rx.is_empty() || self.rx.is_closed() || !self.stack.is_running();
            if !self.stack.wait(&self.shared.event, self.opts.read_deadline(), ready) {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "read timed out"));
            }
        }
    }

    /// After reading: if the window the worker last advertised is small and the read made room for a
    /// useful update, ask for one.
    fn after_read(&self) {
        let cap = self.rx.capacity();
        let adv = self.shared.adv_window.load(Ordering::Relaxed);
        let mss = self.shared.mss.load(Ordering::Relaxed) as usize;
        if adv < cap / 2 && self.rx.free() >= adv + (cap / 2).min(mss.max(1)) {
            self.kick(Kick::Activity);
        }
    }

    fn write_inner(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(e) = self.error() {
                return Err(if self.reported.swap(true, Ordering::AcqRel) {
                    io::Error::from_raw_os_error(libc::EPIPE)
                } else {
                    e
                });
            }
            if self.write_shut.load(Ordering::Acquire) || self.shared.state() == State::Closed {
                return Err(io::Error::from_raw_os_error(libc::EPIPE));
            }
            if !self.stack.is_running() {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the xdpstack stack has stopped",
                ));
            }
            let n = self.tx.write(buf);
            if n > 0 {
                self.kick(Kick::Activity);
                return Ok(n);
            }
            if self.opts.nonblocking() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let ready = || {
                self.tx.free() > 0
                    || self.shared.error.load(Ordering::Relaxed) != 0
                    || self.shared.state() == State::Closed
                    || !self.stack.is_running()
            };
            let deadline = self.opts.write_timeout().map(|t| Instant::now() + t);
            if !self.stack.wait(&self.shared.event, deadline, ready) {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out"));
            }
        }
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf)
    }

    /// Bytes are handed to the stack as they are written; there is nothing to flush.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A connection's readiness, from its shared state and its two rings (as epoll reports a kernel TCP
/// socket): readable with bytes, end of stream or an error; writable with send-buffer room once
/// connected (or when a write would fail at once); hang-up once both directions are closed.
#[derive(Debug)]
struct StreamProbe {
    shared: Arc<TcpShared>,
    rx: RingProbe,
    tx: RingProbe,
}

impl Probe for StreamProbe {
    fn readiness(&self, running: bool) -> Ready {
        let state = self.shared.state();
        let error = self.shared.error.load(Ordering::Acquire) != 0;
        let dead = state == State::Closed || !running;
        let mut r = Ready::default();
        r.set(Ready::READABLE, !self.rx.is_empty() || self.rx.producer_closed() || error || dead);
        r.set(
            Ready::WRITABLE,
            (state.is_synchronized() && self.tx.free() > 0) || self.tx.consumer_closed() || error || dead,
        );
        r.set(Ready::ERROR, error);
        r.set(Ready::HUP, dead || matches!(state, State::TimeWait | State::Closing | State::LastAck));
        r
    }
}

#[allow(private_interfaces)] // sealed: see `poll::sealed`
impl sealed::Source for TcpStream {
    fn event(&self) -> &Event {
        &self.shared.event
    }
    fn stack(&self) -> &Arc<StackShared> {
        &self.stack
    }
    fn probe(&self) -> Box<dyn Probe> {
        Box::new(StreamProbe { shared: self.shared.clone(), rx: self.rx.probe(), tx: self.tx.probe() })
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        self.shared.event.unlink(None);
        // close(): no more writes (FIN after the data) and no more reads (unread data means RST).
        self.tx.close();
        self.rx.close();
        if self.shared.state() != State::Closed || self.stack.is_running() {
            let _ = self.stack.kick_tcp(&self.shared, Kick::Activity);
        }
        self.stack.fd_free(self.fd);
    }
}

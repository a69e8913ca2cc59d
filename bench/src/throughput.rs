//! Throughput: UDP echo packets per second over several flows, TCP bulk Gbit/s over 1 and 4
//! connections, TCP connections per second (connect, one request, close).

use std::io::{self, Read, Write};
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use xdpstack::Stack;

use crate::results::Mode;
use crate::topo::pin;

/// Datagrams each flow keeps in flight (closed loop, so that nothing overruns a queue).
const WINDOW: usize = 32;

/// Client sockets for the UDP echo test.
pub enum UdpFlows {
    /// Kernel sockets, connected to the server.
    Kernel(Vec<std::net::UdpSocket>),
    /// xdpstack sockets, connected, and the stack to poll (run to completion) or not.
    Stack(Vec<xdpstack::UdpSocket>, Option<Arc<Stack>>),
}

/// What the UDP echo client needs of a connected socket: the kernel's or xdpstack's.
trait EchoSocket: Send + 'static {
    fn send(&self, msg: &[u8]) -> io::Result<usize>;
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn set_nonblocking(&self, on: bool) -> io::Result<()>;
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()>;
}

impl EchoSocket for std::net::UdpSocket {
    fn send(&self, msg: &[u8]) -> io::Result<usize> {
        std::net::UdpSocket::send(self, msg)
    }
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        std::net::UdpSocket::recv(self, buf)
    }
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        std::net::UdpSocket::set_nonblocking(self, on)
    }
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        std::net::UdpSocket::set_read_timeout(self, t)
    }
}

impl EchoSocket for xdpstack::UdpSocket {
    fn send(&self, msg: &[u8]) -> io::Result<usize> {
        xdpstack::UdpSocket::send(self, msg)
    }
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        xdpstack::UdpSocket::recv(self, buf)
    }
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        xdpstack::UdpSocket::set_nonblocking(self, on)
    }
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        xdpstack::UdpSocket::set_read_timeout(self, t)
    }
}

/// Echoed datagrams per second over `d`, with 64-byte payloads, from clients pinned to `core`. Busy-poll
/// mode: one thread spins over every flow with non-blocking calls (driving the client stack, if it runs
/// to completion). Blocking mode: a thread per flow, each blocked in `recv` between datagrams.
pub fn udp_echo(flows: UdpFlows, mode: Mode, d: Duration, core: usize) -> io::Result<f64> {
    match flows {
        UdpFlows::Kernel(socks) => echo_flows(socks, None, mode, d, core),
        UdpFlows::Stack(socks, stack) => echo_flows(socks, stack, mode, d, core),
    }
}

fn echo_flows<S: EchoSocket>(
    socks: Vec<S>,
    stack: Option<Arc<Stack>>,
    mode: Mode,
    d: Duration,
    core: usize,
) -> io::Result<f64> {
    let echoed = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + d / 10 + d;
    let start = Instant::now() + d / 10;
    // Counted only between `start` and `end`: the windows fill first.
    let count = move |echoed: &AtomicU64| {
        let now = Instant::now();
        if now >= start && now < end {
            echoed.fetch_add(1, Ordering::Relaxed);
        }
    };
    let mut threads = Vec::new();
    match mode {
        Mode::BusyPoll => {
            let e = echoed.clone();
            threads.push(std::thread::spawn(move || -> io::Result<()> {
                pin(core);
                let (msg, mut buf) = ([0x42u8; 64], [0u8; 2048]);
                for s in &socks {
                    s.set_nonblocking(true)?;
                    for _ in 0..WINDOW {
                        let _ = s.send(&msg);
                    }
                }
                while Instant::now() < end {
                    if let Some(st) = &stack {
                        st.poll();
                    }
                    for s in &socks {
                        while s.recv(&mut buf).is_ok() {
                            count(&e);
                            let _ = s.send(&msg);
                        }
                    }
                }
                Ok(())
            }));
        }
        Mode::Blocking => {
            for s in socks {
                let e = echoed.clone();
                threads.push(std::thread::spawn(move || -> io::Result<()> {
                    pin(core);
                    s.set_read_timeout(Some(Duration::from_millis(20)))?;
                    blocking_flow(|m| s.send(m), |b| s.recv(b), end, || count(&e))
                }));
            }
        }
    }
    for t in threads {
        t.join().map_err(|_| io::Error::other("udp client panicked"))??;
    }
    Ok(echoed.load(Ordering::Relaxed) as f64 / d.as_secs_f64())
}

/// One flow of the blocking UDP echo client: keep `WINDOW` datagrams in flight until `end` (a
/// datagram lost on the way is replaced after a receive timeout).
fn blocking_flow(
    send: impl Fn(&[u8]) -> io::Result<usize>,
    recv: impl Fn(&mut [u8]) -> io::Result<usize>,
    end: Instant,
    count: impl Fn(),
) -> io::Result<()> {
    let (msg, mut buf) = ([0x42u8; 64], [0u8; 2048]);
    for _ in 0..WINDOW {
        send(&msg)?;
    }
    while Instant::now() < end {
        match recv(&mut buf) {
            Ok(_) => count(),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(e),
        }
        send(&msg)?;
    }
    Ok(())
}

/// A TCP server that discards (bulk) or answers one request and closes (connection rate).
pub struct TcpServer {
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    thread: JoinHandle<()>,
}

impl TcpServer {
    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Stop and join.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// What a TCP server does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Read and drop everything.
    Discard,
    /// Read 64 bytes, write them back, close.
    RequestResponse,
}

/// Serve one connection with `buf` (a thread's own buffer, reused: a server does not allocate a
/// quarter megabyte per connection).
fn serve<S: Read + Write>(mut c: S, role: Role, buf: &mut [u8], stop: &AtomicBool, received: &AtomicU64) {
    match role {
        Role::Discard => {
            while !stop.load(Ordering::Relaxed) {
                match c.read(buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        received.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => {
                        std::hint::spin_loop()
                    }
                    Err(_) => return,
                }
            }
        }
        Role::RequestResponse => {
            let mut got = 0;
            while got < 64 && !stop.load(Ordering::Relaxed) {
                match c.read(&mut buf[got..64]) {
                    Ok(0) => return,
                    Ok(n) => got += n,
                    Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => {
                        std::hint::spin_loop()
                    }
                    Err(_) => return,
                }
            }
            let mut put = 0;
            while put < got {
                match c.write(&buf[put..got]) {
                    Ok(n) => put += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::hint::spin_loop(),
                    Err(_) => return,
                }
            }
            received.fetch_add(1, Ordering::Relaxed);
        }
    }
}

const POLL: Duration = Duration::from_millis(100);

/// A kernel TCP server (created in the calling thread's namespace), a thread per bulk connection, all
/// pinned to `core`. Blocking mode blocks in `accept` and `read` (with a timeout to notice the stop
/// flag); busy-poll mode spins on non-blocking calls.
pub fn kernel_tcp_server(addr: SocketAddrV4, role: Role, mode: Mode, core: usize) -> io::Result<TcpServer> {
    let busy = mode == Mode::BusyPoll;
    let l = std::net::TcpListener::bind(addr)?;
    if busy {
        l.set_nonblocking(true)?;
    } else {
        set_accept_timeout(&l, POLL)?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let (s, r) = (stop.clone(), received.clone());
    let thread = std::thread::spawn(move || {
        pin(core);
        let mut buf = vec![0u8; 256 << 10];
        let mut conns = Vec::new();
        while !s.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((c, _)) => {
                    let _ = c.set_nonblocking(busy);
                    let _ = c.set_read_timeout(Some(POLL));
                    if role == Role::RequestResponse {
                        serve(c, role, &mut buf, &s, &r);
                        continue;
                    }
                    let (s, r) = (s.clone(), r.clone());
                    conns.push(std::thread::spawn(move || {
                        pin(core);
                        serve(c, role, &mut vec![0u8; 256 << 10], &s, &r)
                    }));
                }
                Err(_) => std::hint::spin_loop(),
            }
        }
        for c in conns {
            let _ = c.join();
        }
    });
    Ok(TcpServer { stop, received, thread })
}

/// SO_RCVTIMEO on a listening socket bounds how long `accept` blocks.
fn set_accept_timeout(l: &std::net::TcpListener, d: Duration) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let tv = libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    // Safety: a valid socket descriptor and a timeval that lives across the call, with its size.
    let rc = unsafe {
        libc::setsockopt(
            l.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An xdpstack TCP server on `stack`, a thread per connection, all pinned to `core`.
pub fn stack_tcp_server(stack: &Stack, addr: SocketAddrV4, role: Role, core: usize) -> io::Result<TcpServer> {
    let l = xdpstack::TcpListener::bind(stack, addr)?;
    l.set_accept_timeout(Some(POLL))?;
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let (s, r) = (stop.clone(), received.clone());
    let thread = std::thread::spawn(move || {
        pin(core);
        let mut buf = vec![0u8; 256 << 10];
        let mut conns = Vec::new();
        while !s.load(Ordering::Relaxed) {
            let Ok((c, _)) = l.accept() else { continue };
            let _ = c.set_read_timeout(Some(POLL));
            if role == Role::RequestResponse {
                serve(c, role, &mut buf, &s, &r);
                continue;
            }
            let (s, r) = (s.clone(), r.clone());
            conns.push(std::thread::spawn(move || {
                pin(core);
                serve(c, role, &mut vec![0u8; 256 << 10], &s, &r)
            }));
        }
        for c in conns {
            let _ = c.join();
        }
    });
    Ok(TcpServer { stop, received, thread })
}

/// How the client side opens connections.
pub enum Connector {
    /// Kernel sockets, made by a thread that has entered the client namespace (`ns`), so that a
    /// connection costs a connect, not a thread; non-blocking (spun on) when `busy`.
    Kernel { ns: String, busy: bool },
    /// xdpstack client stack.
    Stack(Arc<Stack>),
}

impl Connector {
    /// Open a connection (the calling thread must be in the client namespace for `Kernel`).
    fn open(&self, to: SocketAddrV4) -> io::Result<Box<dyn ReadWrite>> {
        match self {
            Connector::Kernel { busy, .. } => {
                let s = std::net::TcpStream::connect(to)?;
                s.set_nodelay(true)?;
                s.set_nonblocking(*busy)?;
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                Ok(Box::new(s))
            }
            Connector::Stack(st) => {
                let s = xdpstack::TcpStream::connect(st, to)?;
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                Ok(Box::new(s))
            }
        }
    }

    /// Run `f` on a thread pinned to `core`, inside the client namespace when the client is the kernel.
    fn run<R: Send + 'static>(&self, core: usize, f: impl FnOnce() -> R + Send + 'static) -> io::Result<R> {
        let g = move || {
            pin(core);
            f()
        };
        match self {
            Connector::Kernel { ns, .. } => xdpstack::testbed::in_netns(ns, g),
            Connector::Stack(_) => {
                std::thread::spawn(g).join().map_err(|_| io::Error::other("client panicked"))
            }
        }
    }
}

/// A stream of either kind.
pub trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

/// Send as fast as possible over `flows` connections for `d`; returns Gbit/s the server received.
pub fn tcp_bulk(
    conn: Connector,
    to: SocketAddrV4,
    server: &TcpServer,
    flows: usize,
    d: Duration,
    core: usize,
) -> io::Result<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let conn = Arc::new(conn);
    let mut threads = Vec::new();
    for _ in 0..flows {
        let (stop, c2) = (stop.clone(), conn.clone());
        threads.push(std::thread::spawn(move || {
            let c3 = c2.clone();
            let _ = c2.run(core, move || -> io::Result<()> {
                let mut c = c3.open(to)?;
                let buf = vec![0x17u8; 256 << 10];
                while !stop.load(Ordering::Relaxed) {
                    spin(|| c.write(&buf))?;
                }
                Ok(())
            });
        }));
    }
    // Let the windows open before measuring.
    std::thread::sleep(d / 5);
    let (b0, t0) = (server.received(), Instant::now());
    std::thread::sleep(d);
    let bytes = server.received() - b0;
    let secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    Ok(bytes as f64 * 8.0 / secs / 1e9)
}

/// Connect, send 64 bytes, read the 64-byte answer and the server's close, close; repeated for `d`.
/// Returns connections per second.
pub fn tcp_conn_rate(conn: Connector, to: SocketAddrV4, d: Duration, core: usize) -> io::Result<f64> {
    let conn = Arc::new(conn);
    let c2 = conn.clone();
    conn.run(core, move || -> io::Result<f64> {
        let conn = c2;
        let msg = [0x33u8; 64];
        let mut buf = [0u8; 128];
        let mut n = 0u64;
        let t0 = Instant::now();
        while t0.elapsed() < d {
            let mut c = conn.open(to)?;
            if spin(|| c.write(&msg))? != msg.len() {
                return Err(io::Error::other("short request"));
            }
            let mut got = 0;
            while got < 64 {
                let k = spin(|| c.read(&mut buf[got..]))?;
                if k == 0 {
                    return Err(io::Error::other("short answer"));
                }
                got += k;
            }
            // The server closes first (it keeps TIME-WAIT); wait for its FIN.
            while spin(|| c.read(&mut buf))? > 0 {}
            n += 1;
        }
        Ok(n as f64 / t0.elapsed().as_secs_f64())
    })?
}

/// Retry `f` while it would block (a non-blocking socket in busy-poll mode), for at most 5 s.
fn spin<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut spins = 0u32;
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::hint::spin_loop();
                spins = spins.wrapping_add(1);
                if spins % 4096 == 0 && Instant::now() > deadline {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "no progress within 5 s"));
                }
            }
            r => return r,
        }
    }
}

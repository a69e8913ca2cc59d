//! Throughput: UDP echo packets per second over several flows, TCP bulk Gbit/s over 1 and 4
//! connections, TCP connections per second (connect, one request, close).

use std::io::{self, Read, Write};
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use xdpstack::Stack;

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

/// Echoed datagrams per second over `d`, with 64-byte payloads, from a client pinned to `core`.
pub fn udp_echo(flows: UdpFlows, d: Duration, core: usize) -> io::Result<f64> {
    let t = std::thread::spawn(move || -> io::Result<f64> {
        pin(core);
        let msg = [0x42u8; 64];
        let mut buf = [0u8; 2048];
        let mut echoed = 0u64;
        match flows {
            UdpFlows::Kernel(socks) => {
                for s in &socks {
                    s.set_nonblocking(true)?;
                    for _ in 0..WINDOW {
                        let _ = s.send(&msg);
                    }
                }
                let end = Instant::now() + d;
                while Instant::now() < end {
                    for s in &socks {
                        while s.recv(&mut buf).is_ok() {
                            echoed += 1;
                            let _ = s.send(&msg);
                        }
                    }
                }
            }
            UdpFlows::Stack(socks, stack) => {
                for s in &socks {
                    s.set_nonblocking(true)?;
                    for _ in 0..WINDOW {
                        let _ = s.send(&msg);
                    }
                }
                let end = Instant::now() + d;
                while Instant::now() < end {
                    if let Some(st) = &stack {
                        st.poll();
                    }
                    for s in &socks {
                        while s.recv(&mut buf).is_ok() {
                            echoed += 1;
                            let _ = s.send(&msg);
                        }
                    }
                }
            }
        }
        Ok(echoed as f64 / d.as_secs_f64())
    });
    t.join().map_err(|_| io::Error::other("udp client panicked"))?
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

fn serve<S: Read + Write>(mut c: S, role: Role, stop: &AtomicBool, received: &AtomicU64) {
    let mut buf = vec![0u8; 256 << 10];
    match role {
        Role::Discard => {
            while !stop.load(Ordering::Relaxed) {
                match c.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        received.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => {}
                    Err(_) => return,
                }
            }
        }
        Role::RequestResponse => {
            let mut got = 0;
            while got < 64 {
                match c.read(&mut buf[got..64]) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got += n,
                }
            }
            let _ = c.write_all(&buf[..64]);
            received.fetch_add(1, Ordering::Relaxed);
        }
    }
}

const POLL: Duration = Duration::from_millis(100);

/// A kernel TCP server (created in the calling thread's namespace), a thread per connection, all
/// pinned to `core`.
pub fn kernel_tcp_server(addr: SocketAddrV4, role: Role, core: usize) -> io::Result<TcpServer> {
    let l = std::net::TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let (s, r) = (stop.clone(), received.clone());
    let thread = std::thread::spawn(move || {
        pin(core);
        let mut conns = Vec::new();
        while !s.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((c, _)) => {
                    let _ = c.set_nonblocking(false);
                    let _ = c.set_read_timeout(Some(POLL));
                    if role == Role::RequestResponse {
                        serve(c, role, &s, &r);
                        continue;
                    }
                    let (s, r) = (s.clone(), r.clone());
                    conns.push(std::thread::spawn(move || {
                        pin(core);
                        serve(c, role, &s, &r)
                    }));
                }
                Err(_) => std::thread::sleep(Duration::from_micros(200)),
            }
        }
        for c in conns {
            let _ = c.join();
        }
    });
    Ok(TcpServer { stop, received, thread })
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
        let mut conns = Vec::new();
        while !s.load(Ordering::Relaxed) {
            let Ok((c, _)) = l.accept() else { continue };
            let _ = c.set_read_timeout(Some(POLL));
            if role == Role::RequestResponse {
                serve(c, role, &s, &r);
                continue;
            }
            let (s, r) = (s.clone(), r.clone());
            conns.push(std::thread::spawn(move || {
                pin(core);
                serve(c, role, &s, &r)
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
    /// connection costs a connect, not a thread.
    Kernel(String),
    /// xdpstack client stack.
    Stack(Arc<Stack>),
}

impl Connector {
    /// Open a connection (the calling thread must be in the client namespace for `Kernel`).
    fn open(&self, to: SocketAddrV4) -> io::Result<Box<dyn ReadWrite>> {
        match self {
            Connector::Kernel(_) => {
                let s = std::net::TcpStream::connect(to)?;
                s.set_nodelay(true)?;
                Ok(Box::new(s))
            }
            Connector::Stack(st) => Ok(Box::new(xdpstack::TcpStream::connect(st, to)?)),
        }
    }

    /// Run `f` on a thread pinned to `core`, inside the client namespace when the client is the kernel.
    fn run<R: Send + 'static>(&self, core: usize, f: impl FnOnce() -> R + Send + 'static) -> io::Result<R> {
        let g = move || {
            pin(core);
            f()
        };
        match self {
            Connector::Kernel(ns) => xdpstack::testbed::in_netns(ns, g),
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
                    c.write_all(&buf)?;
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
            c.write_all(&msg)?;
            let mut got = 0;
            while got < 64 {
                let k = c.read(&mut buf[got..])?;
                if k == 0 {
                    return Err(io::Error::other("short answer"));
                }
                got += k;
            }
            // The server closes first (it keeps TIME-WAIT); wait for its FIN.
            while c.read(&mut buf)? > 0 {}
            n += 1;
        }
        Ok(n as f64 / t0.elapsed().as_secs_f64())
    })?
}

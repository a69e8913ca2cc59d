//! Ping-pong round-trip times: one message at a time, the client waits for the echo before sending the
//! next. Clients and servers are either kernel sockets or xdpstack sockets (same shape of code), so
//! each pairing measures the same loop.

use std::io::{self, Read, Write};
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use xdpstack::Stack;

use crate::results::{Mode, Proto};
use crate::topo::pin;

/// How many round trips.
#[derive(Debug, Clone, Copy)]
pub struct Rounds {
    /// Not recorded.
    pub warmup: usize,
    /// Recorded.
    pub measured: usize,
}

/// A ping-pong client.
pub enum Client {
    /// Kernel UDP socket (connected).
    KernelUdp(std::net::UdpSocket),
    /// Kernel TCP connection.
    KernelTcp(std::net::TcpStream),
    /// xdpstack UDP socket (connected).
    StackUdp(xdpstack::UdpSocket),
    /// xdpstack TCP connection.
    StackTcp(xdpstack::TcpStream),
    /// Bare AF_XDP client (UDP frames, no stack).
    AfXdp(Box<crate::reflector::Pinger>),
}

/// How long one call of a round trip may take before the run fails (a lost message, a dead server):
/// a benchmark that hangs tells nobody anything.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

fn spin_retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut spins = 0u32;
    let mut deadline = None;
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::hint::spin_loop();
                spins = spins.wrapping_add(1);
                if spins % 4096 == 0 {
                    let d = *deadline.get_or_insert_with(|| Instant::now() + CALL_TIMEOUT);
                    if Instant::now() > d {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer within 5 s"));
                    }
                }
            }
            r => return r,
        }
    }
}

/// Fill `buf` from a reader, spinning on WouldBlock (a non-blocking socket in busy-poll mode).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        let n = spin_retry(|| r.read(&mut buf[got..]))?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        got += n;
    }
    Ok(())
}

fn write_full(w: &mut impl Write, buf: &[u8]) -> io::Result<()> {
    let mut put = 0;
    while put < buf.len() {
        put += spin_retry(|| w.write(&buf[put..]))?;
    }
    Ok(())
}

impl Client {
    /// Kernel sockets spin in busy-poll mode (non-blocking calls in a loop), as sockperf does.
    pub fn set_busy(&self, busy: bool) -> io::Result<()> {
        match self {
            Client::KernelUdp(s) => {
                s.set_read_timeout(Some(CALL_TIMEOUT))?;
                s.set_nonblocking(busy)
            }
            Client::KernelTcp(s) => {
                s.set_read_timeout(Some(CALL_TIMEOUT))?;
                s.set_nonblocking(busy)
            }
            // xdpstack sockets spin or not by the stack's mode; the bare client always spins.
            Client::StackUdp(s) => s.set_read_timeout(Some(CALL_TIMEOUT)),
            Client::StackTcp(s) => s.set_read_timeout(Some(CALL_TIMEOUT)),
            Client::AfXdp(_) => Ok(()),
        }
    }

    /// One round trip of `msg`; the echo lands in `buf`.
    pub fn round_trip(&mut self, msg: &[u8], buf: &mut [u8]) -> io::Result<()> {
        match self {
            Client::KernelUdp(s) => {
                spin_retry(|| s.send(msg))?;
                let n = spin_retry(|| s.recv(buf))?;
                check_len(n, msg.len())
            }
            Client::StackUdp(s) => {
                s.send(msg)?;
                let n = s.recv(buf)?;
                check_len(n, msg.len())
            }
            Client::KernelTcp(s) => {
                write_full(s, msg)?;
                read_full(s, &mut buf[..msg.len()])
            }
            Client::StackTcp(s) => {
                write_full(s, msg)?;
                read_full(s, &mut buf[..msg.len()])
            }
            // The pinger's frame has the payload size of the run; `msg` only sets that size.
            Client::AfXdp(p) => p.round_trip(),
        }
    }
}

fn check_len(got: usize, want: usize) -> io::Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(io::Error::other(format!("echo of {want} bytes came back as {got}")))
    }
}

/// Run `rounds` round trips of `size` bytes on a thread pinned to `core`; the histogram of the
/// measured ones, in nanoseconds.
pub fn measure(
    mut client: Client,
    size: usize,
    rounds: Rounds,
    core: usize,
) -> io::Result<(Client, Histogram<u64>)> {
    let t = std::thread::spawn(move || {
        pin(core);
        let msg: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
        let mut buf = vec![0u8; size.max(2048)];
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).map_err(io::Error::other)?;
        for _ in 0..rounds.warmup {
            client.round_trip(&msg, &mut buf)?;
        }
        for _ in 0..rounds.measured {
            let t0 = Instant::now();
            client.round_trip(&msg, &mut buf)?;
            let ns = t0.elapsed().as_nanos() as u64;
            h.record(ns.max(1)).map_err(io::Error::other)?;
        }
        Ok((client, h))
    });
    t.join().map_err(|_| io::Error::other("latency client panicked"))?
}

/// A running echo server and how to stop it.
pub struct Server {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Server {
    /// Stop and join.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// How long a server call waits before it looks at the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// A kernel echo server for `proto` on `addr`, created in the current thread's namespace (call from
/// the server namespace), serving on a thread pinned to `core`. One protocol at a time: two spinning
/// servers on one core would take turns at it.
pub fn kernel_server(addr: SocketAddrV4, proto: Proto, mode: Mode, core: usize) -> io::Result<Server> {
    let stop = Arc::new(AtomicBool::new(false));
    let busy = mode == Mode::BusyPoll;
    let s = stop.clone();
    let thread = match proto {
        Proto::Udp => {
            let udp = std::net::UdpSocket::bind(addr)?;
            udp.set_nonblocking(busy)?;
            udp.set_read_timeout(Some(POLL))?;
            std::thread::spawn(move || {
                pin(core);
                let mut buf = vec![0u8; 65536];
                while !s.load(Ordering::Relaxed) {
                    match udp.recv_from(&mut buf) {
                        Ok((n, from)) => {
                            let _ = spin_retry(|| udp.send_to(&buf[..n], from));
                        }
                        Err(_) => std::hint::spin_loop(),
                    }
                }
            })
        }
        Proto::Tcp => {
            let tcp = std::net::TcpListener::bind(addr)?;
            tcp.set_nonblocking(true)?;
            std::thread::spawn(move || {
                pin(core);
                while !s.load(Ordering::Relaxed) {
                    match tcp.accept() {
                        Ok((mut c, _)) => {
                            let _ = c.set_nodelay(true);
                            let _ = c.set_nonblocking(busy);
                            let _ = c.set_read_timeout(Some(POLL));
                            let mut buf = vec![0u8; 65536];
                            while !s.load(Ordering::Relaxed) {
                                match c.read(&mut buf) {
                                    Ok(0) => break,
                                    Ok(n) => {
                                        if write_full(&mut c, &buf[..n]).is_err() {
                                            break;
                                        }
                                    }
                                    Err(e)
                                        if matches!(
                                            e.kind(),
                                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                                        ) =>
                                    {
                                        std::hint::spin_loop()
                                    }
                                    Err(_) => break,
                                }
                            }
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(1)),
                    }
                }
            })
        }
    };
    Ok(Server { stop, threads: vec![thread] })
}

/// An xdpstack echo server for `proto` on `addr` of `stack`, on a thread pinned to `core` (in busy-poll
/// mode the stack runs to completion, driven by this thread).
pub fn stack_server(stack: &Stack, addr: SocketAddrV4, proto: Proto, core: usize) -> io::Result<Server> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let thread = match proto {
        Proto::Udp => {
            let udp = xdpstack::UdpSocket::bind(stack, addr)?;
            udp.set_read_timeout(Some(POLL))?;
            std::thread::spawn(move || {
                pin(core);
                let mut buf = vec![0u8; 65536];
                while !s.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = udp.recv_from(&mut buf) {
                        let _ = udp.send_to(&buf[..n], from);
                    }
                }
            })
        }
        Proto::Tcp => {
            let tcp = xdpstack::TcpListener::bind(stack, addr)?;
            tcp.set_accept_timeout(Some(POLL))?;
            std::thread::spawn(move || {
                pin(core);
                while !s.load(Ordering::Relaxed) {
                    let Ok((mut c, _)) = tcp.accept() else { continue };
                    let _ = c.set_nodelay(true);
                    let _ = c.set_read_timeout(Some(POLL));
                    let mut buf = vec![0u8; 65536];
                    while !s.load(Ordering::Relaxed) {
                        match c.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => {
                                if c.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                            Err(_) => break,
                        }
                    }
                }
            })
        }
    };
    Ok(Server { stop, threads: vec![thread] })
}

/// Sizes to measure for `proto`.
pub fn sizes(proto: Proto) -> &'static [usize] {
    match proto {
        Proto::Udp => &[64, 512, 1400],
        Proto::Tcp => &[64, 512, 1400, 16384],
    }
}

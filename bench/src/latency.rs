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

/// How long one call of a round trip may take before the run fails (a dead server): a benchmark that
/// hangs tells nobody anything.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a UDP client waits for an answer before it takes the datagram as lost and sends the
/// next one (stale answers that come later are recognized by their sequence number and ignored).
const UDP_WAIT: Duration = Duration::from_millis(200);

/// Retry `f` while it would block (a non-blocking socket in busy-poll mode, or a blocking one whose
/// receive timeout expired) for at most `limit`; then TimedOut.
fn spin_retry<T>(limit: Duration, mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut spins = 0u32;
    let mut deadline = None;
    loop {
        match f() {
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                std::hint::spin_loop();
                spins = spins.wrapping_add(1);
                if spins % 1024 == 0 || e.kind() == io::ErrorKind::TimedOut {
                    let d = *deadline.get_or_insert_with(|| Instant::now() + limit);
                    if Instant::now() > d {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer in time"));
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
        let n = spin_retry(CALL_TIMEOUT, || r.read(&mut buf[got..]))?;
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
        put += spin_retry(CALL_TIMEOUT, || w.write(&buf[put..]))?;
    }
    Ok(())
}

impl Client {
    /// Kernel sockets spin in busy-poll mode (non-blocking calls in a loop), as sockperf does.
    pub fn set_busy(&self, busy: bool) -> io::Result<()> {
        match self {
            Client::KernelUdp(s) => {
                s.set_read_timeout(Some(UDP_WAIT))?;
                s.set_nonblocking(busy)
            }
            Client::KernelTcp(s) => {
                s.set_read_timeout(Some(CALL_TIMEOUT))?;
                s.set_nonblocking(busy)
            }
            // xdpstack sockets spin or not by the stack's mode; the bare client always spins.
            Client::StackUdp(s) => s.set_read_timeout(Some(UDP_WAIT)),
            Client::StackTcp(s) => s.set_read_timeout(Some(CALL_TIMEOUT)),
            Client::AfXdp(_) => Ok(()),
        }
    }

    /// Whether a message can be lost (UDP): the round trip then times out and is tried again.
    fn lossy(&self) -> bool {
        matches!(self, Client::KernelUdp(_) | Client::StackUdp(_) | Client::AfXdp(_))
    }

    /// One round trip of `msg`, tagged with `seq` in its first 8 bytes (UDP); the echo lands in `buf`.
    /// A UDP answer that does not come within [`UDP_WAIT`] is an error of kind TimedOut.
    pub fn round_trip(&mut self, msg: &mut [u8], buf: &mut [u8], seq: u64) -> io::Result<()> {
        msg[..8].copy_from_slice(&seq.to_be_bytes());
        match self {
            Client::KernelUdp(s) => {
                spin_retry(CALL_TIMEOUT, || s.send(msg))?;
                let deadline = Instant::now() + UDP_WAIT;
                loop {
                    let n = spin_retry(UDP_WAIT, || s.recv(buf))?;
                    if is_answer(&buf[..n], msg) {
                        return Ok(());
                    }
                    if Instant::now() > deadline {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer in time"));
                    }
                }
            }
            Client::StackUdp(s) => {
                s.send(msg)?;
                let deadline = Instant::now() + UDP_WAIT;
                loop {
                    let n = s.recv(buf).map_err(|e| match e.kind() {
                        io::ErrorKind::WouldBlock => {
                            io::Error::new(io::ErrorKind::TimedOut, "no answer in time")
                        }
                        _ => e,
                    })?;
                    if is_answer(&buf[..n], msg) {
                        return Ok(());
                    }
                    if Instant::now() > deadline {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer in time"));
                    }
                }
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

/// The echo of `msg` (same length, same sequence number), not a late answer to an earlier one.
fn is_answer(got: &[u8], msg: &[u8]) -> bool {
    got.len() == msg.len() && got[..8] == msg[..8]
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
        let mut msg: Vec<u8> = (0..size.max(8)).map(|i| (i * 7) as u8).collect();
        let mut buf = vec![0u8; size.max(2048)];
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).map_err(io::Error::other)?;
        let (mut seq, mut lost) = (0u64, 0usize);
        let max_lost = (rounds.measured / 100).max(10);
        // One round trip; a lost UDP datagram is sent again (its time is not recorded).
        let mut one = |client: &mut Client| -> io::Result<u64> {
            loop {
                seq += 1;
                let t0 = Instant::now();
                match client.round_trip(&mut msg, &mut buf, seq) {
                    Ok(()) => return Ok(t0.elapsed().as_nanos() as u64),
                    Err(e) if e.kind() == io::ErrorKind::TimedOut && client.lossy() && lost < max_lost => {
                        lost += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        for _ in 0..rounds.warmup {
            one(&mut client)?;
        }
        for _ in 0..rounds.measured {
            let ns = one(&mut client)?;
            h.record(ns.max(1)).map_err(io::Error::other)?;
        }
        if lost > 0 {
            eprintln!("  ({lost} datagram(s) lost on the way and sent again)");
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
                            let _ = spin_retry(CALL_TIMEOUT, || udp.send_to(&buf[..n], from));
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

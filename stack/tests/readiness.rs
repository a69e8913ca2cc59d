//! The readiness API (`Poller`) on a real veth testbed: one application thread serving 10,000 UDP
//! sockets and a TCP listener with its connections, kernel clients in the peer namespace, and the level-
//! versus edge-triggered rules checked on real sockets.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream as KernelStream, UdpSocket as KernelUdp};
use std::time::{Duration, Instant};

use common::*;
use xdpstack::rand::Rng;
use xdpstack::{Events, Interest, Poller, Stack, TcpListener, TcpStream, Trigger, UdpSocket};

const FIRST_PORT: u16 = 20_000;
const SOCKETS: usize = 10_000;

/// 10,000 sockets need more than 10,000 descriptors (one eventfd each): raise the soft limit to the
/// hard one, and fail with the fix when even that is too low.
fn raise_fd_limit(need: u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // Safety: getrlimit/setrlimit write or read one rlimit on our stack.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < need {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
    assert!(
        lim.rlim_cur >= need,
        "this test needs {need} open files but the hard limit is {} (raise it: ulimit -Hn {need})",
        lim.rlim_max
    );
}

#[test]
fn one_thread_serves_10000_udp_sockets() {
    raise_fd_limit(SOCKETS as u64 + 1000);
    let tb = testbed(1);
    // Small per-socket queues: 10,000 sockets with the default 4096-datagram queue would hold 1.6 GB.
    let stack = start(&tb, |c| c.socket_queue_len = 16);
    let stack_ip = tb.config.stack_addr;
    let socks: Vec<UdpSocket> = (0..SOCKETS)
        .map(|i| {
            let s = UdpSocket::bind(&stack, (stack_ip, FIRST_PORT + i as u16)).unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    let poller = Poller::new().unwrap();
    for (i, s) in socks.iter().enumerate() {
        // Half level-, half edge-triggered: the server drains either way.
        let trigger = if i % 2 == 0 { Trigger::Level } else { Trigger::Edge };
        poller.register(s, i as u64, Interest::READABLE, trigger).unwrap();
    }
    let mut events = Events::with_capacity(256);
    assert_eq!(poller.wait(&mut events, Some(Duration::from_millis(50))).unwrap(), 0, "nothing sent yet");

    // The kernel client: one datagram to each port (resent if it or its echo went missing), in a window.
    let client = peer_udp(&tb, "10.77.0.1:0");
    client.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    let client_thread = std::thread::spawn(move || kernel_client(client, stack_ip));

    // The server: this thread, one poller, 10,000 sockets.
    let mut served: HashMap<u16, u32> = HashMap::new();
    let mut buf = [0u8; 2048];
    let (mut waits, mut max_batch) = (0usize, 0usize);
    let end = Instant::now() + Duration::from_secs(120);
    // Serve until the client has every echo (UDP may drop an echo; the client then asks again).
    while !client_thread.is_finished() {
        assert!(Instant::now() < end, "served {} of {SOCKETS} sockets before the deadline", served.len());
        let n = poller.wait(&mut events, Some(Duration::from_millis(100))).unwrap();
        waits += 1;
        max_batch = max_batch.max(n);
        for ev in events.iter() {
            assert!(ev.is_readable());
            let sock = &socks[ev.token() as usize];
            loop {
                match sock.recv_from(&mut buf) {
                    Ok((len, from)) => {
                        let port = FIRST_PORT + ev.token() as u16;
                        assert_eq!(&buf[..len], format!("port {port}").as_bytes());
                        *served.entry(port).or_default() += 1;
                        send_retrying(sock, &buf[..len], from);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("recv on port {}: {e}", FIRST_PORT + ev.token() as u16),
                }
            }
        }
    }
    let (echoed, resent) = client_thread.join().unwrap();
    assert_eq!(echoed, (0..SOCKETS as u16).map(|i| FIRST_PORT + i).collect::<BTreeSet<u16>>());
    assert_eq!(served.len(), SOCKETS);
    let received: u32 = served.values().sum();
    eprintln!("{SOCKETS} sockets: {received} datagrams served in {waits} waits (at most {max_batch} events in one), {resent} resent");
    assert!(
        (SOCKETS..=SOCKETS + resent).contains(&(received as usize)),
        "served {received}: at most what the client sent ({SOCKETS} + {resent} resent)"
    );
    assert!(waits < SOCKETS, "{waits} waits: events are batched ({max_batch} at most in one)");
    // Everything was drained: level-triggered sockets drop off the ready list after one more check.
    poller.wait(&mut events, Some(Duration::ZERO)).unwrap();
    assert_eq!(poller.wait(&mut events, Some(Duration::from_millis(50))).unwrap(), 0);
    drop(socks);
    finish(stack);
}

fn send_retrying(sock: &UdpSocket, data: &[u8], to: SocketAddr) {
    loop {
        match sock.send_to(data, to) {
            Ok(_) => return,
            // The worker's command queue is full: it drains within microseconds.
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => panic!("send_to {to}: {e}"),
        }
    }
}

/// Send "port N" to every port, at most 256 unanswered at once, resending after a second of silence;
/// return the ports whose echo came back and how many datagrams were resent.
fn kernel_client(sock: KernelUdp, stack_ip: std::net::Ipv4Addr) -> (BTreeSet<u16>, usize) {
    let mut resent = 0;
    let mut echoed = BTreeSet::new();
    let mut outstanding: HashMap<u16, (Instant, u32)> = HashMap::new();
    let mut next = 0usize;
    let mut buf = [0u8; 64];
    let end = Instant::now() + Duration::from_secs(120);
    while echoed.len() < SOCKETS && Instant::now() < end {
        while next < SOCKETS && outstanding.len() < 256 {
            let port = FIRST_PORT + next as u16;
            sock.send_to(format!("port {port}").as_bytes(), (stack_ip, port)).unwrap();
            outstanding.insert(port, (Instant::now(), 1));
            next += 1;
        }
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                assert_eq!(&buf[..n], format!("port {}", from.port()).as_bytes(), "echo from the right port");
                outstanding.remove(&from.port());
                echoed.insert(from.port());
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                let now = Instant::now();
                for (port, (sent, tries)) in outstanding.iter_mut() {
                    if now - *sent > Duration::from_secs(1) {
                        assert!(*tries < 5, "port {port}: no echo after {tries} tries");
                        sock.send_to(format!("port {port}").as_bytes(), (stack_ip, *port)).unwrap();
                        *sent = now;
                        *tries += 1;
                        resent += 1;
                    }
                }
            }
            Err(e) => panic!("client recv: {e}"),
        }
    }
    (echoed, resent)
}

/// Echo every connection's bytes back through one poller until `clients` connections have closed.
/// Returns how many hang-up events were seen.
fn serve_tcp(poller: &Poller, listener: &TcpListener, clients: usize) -> usize {
    const LISTENER: u64 = u64::MAX;
    poller.register(listener, LISTENER, Interest::READABLE, Trigger::Level).unwrap();
    let mut conns: HashMap<u64, TcpStream> = HashMap::new();
    let (mut next_token, mut closed, mut hups) = (0u64, 0usize, 0usize);
    let mut events = Events::with_capacity(64);
    let mut buf = vec![0u8; 64 << 10];
    let end = Instant::now() + Duration::from_secs(60);
    while closed < clients {
        assert!(Instant::now() < end, "{closed} of {clients} connections finished before the deadline");
        poller.wait(&mut events, Some(Duration::from_secs(1))).unwrap();
        for ev in events.iter() {
            if ev.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((s, _)) => {
                            s.set_nonblocking(true).unwrap();
                            poller.register(&s, next_token, Interest::READABLE, Trigger::Edge).unwrap();
                            conns.insert(next_token, s);
                            next_token += 1;
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => panic!("accept: {e}"),
                    }
                }
                continue;
            }
            hups += usize::from(ev.is_hup());
            let Some(s) = conns.get_mut(&ev.token()) else { continue };
            // Edge-triggered: read until WouldBlock (or end of stream).
            loop {
                match s.read(&mut buf) {
                    Ok(0) => {
                        poller.deregister(&*s).unwrap();
                        conns.remove(&ev.token());
                        closed += 1;
                        break;
                    }
                    Ok(n) => write_all_nonblocking(s, &buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("read: {e}"),
                }
            }
        }
    }
    hups
}

/// The clients send less than a send buffer before reading, so a write waits only for the worker to
/// take bytes out of a ring it is already draining.
fn write_all_nonblocking(s: &mut TcpStream, mut data: &[u8]) {
    while !data.is_empty() {
        match s.write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => panic!("write: {e}"),
        }
    }
}

fn kernel_tcp_client(stream: KernelStream, seed: u64) {
    let mut s = stream;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut rng = Rng::with_seed(seed);
    for _ in 0..50 {
        let len = 1 + rng.below(8000) as usize;
        let msg: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        s.write_all(&msg).unwrap();
        let mut back = vec![0u8; len];
        s.read_exact(&mut back).unwrap();
        assert!(back == msg, "echo differs");
    }
}

/// Close with SO_LINGER 0: the kernel sends RST.
fn abort(s: KernelStream) {
    use std::os::fd::AsRawFd;
    let lg = libc::linger { l_onoff: 1, l_linger: 0 };
    // Safety: sets one option from a live struct on a live socket.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&lg as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    drop(s);
}

fn tcp_echo_through_the_poller(stack: &Stack, tb: &xdpstack::testbed::Testbed, port: u16) {
    const CLIENTS: usize = 8;
    let listener = TcpListener::bind(stack, ("0.0.0.0", port)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr: SocketAddr = (tb.config.stack_addr, port).into();
    // Each client connects from its own thread (spawned inside the peer namespace, which new threads
    // inherit) while this thread serves: in run-to-completion mode only the server's waits move the stack.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            tb.in_peer_ns(move || {
                std::thread::spawn(move || {
                    let s = KernelStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
                    kernel_tcp_client(s, i as u64)
                })
            })
            .unwrap()
        })
        .collect();
    let poller = Poller::new().unwrap();
    let hups = serve_tcp(&poller, &listener, CLIENTS);
    for c in clients {
        c.join().unwrap();
    }
    // The clients closed first; our side is in CLOSE-WAIT until we close, so no hang-up yet.
    assert_eq!(hups, 0);
}

#[test]
fn one_thread_echoes_tcp_connections_through_the_poller() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    tcp_echo_through_the_poller(&stack, &tb, 7100);
    finish(stack);
}

#[test]
fn the_poller_works_in_busy_poll_and_run_to_completion_modes() {
    for inline in [false, true] {
        let tb = testbed(1);
        let stack = start(&tb, |c| {
            c.busy_poll = !inline;
            c.inline = inline;
        });
        tcp_echo_through_the_poller(&stack, &tb, 7200);
        finish(stack);
    }
}

#[test]
fn level_and_edge_triggers_behave_as_epoll_on_real_sockets() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let sock = UdpSocket::bind(&stack, "0.0.0.0:7300").unwrap();
    sock.set_nonblocking(true).unwrap();
    let poller = Poller::new().unwrap();
    poller.register(&sock, 1, Interest::READABLE, Trigger::Level).unwrap();
    let client = peer_udp(&tb, "10.77.0.1:0");
    let to = (tb.config.stack_addr, 7300);
    let mut events = Events::with_capacity(4);
    let short = Some(Duration::from_millis(100));
    let mut buf = [0u8; 64];
    let wait = |events: &mut Events, t: Option<Duration>| poller.wait(events, t).unwrap();

    assert_eq!(wait(&mut events, short), 0, "nothing to read");
    client.send_to(b"one", to).unwrap();
    client.send_to(b"two", to).unwrap();
    assert_eq!(wait(&mut events, Some(Duration::from_secs(5))), 1);
    assert!(common::wait_for(Duration::from_secs(5), || stack.counter("UdpInDatagrams") >= 2));
    // Level: reported again and again while unread.
    assert_eq!(wait(&mut events, short), 1);
    assert_eq!(wait(&mut events, short), 1);
    sock.recv_from(&mut buf).unwrap();
    assert_eq!(wait(&mut events, short), 1, "one datagram left");
    sock.recv_from(&mut buf).unwrap();
    assert_eq!(wait(&mut events, short), 0, "drained: level stops too");

    // Edge: once per arrival.
    poller.modify(&sock, 2, Interest::READABLE, Trigger::Edge).unwrap();
    assert_eq!(wait(&mut events, short), 0, "modify reports current readiness: none");
    client.send_to(b"three", to).unwrap();
    assert_eq!(wait(&mut events, Some(Duration::from_secs(5))), 1);
    assert_eq!(events.iter().next().unwrap().token(), 2);
    assert_eq!(wait(&mut events, short), 0, "edge: not again without a new arrival");
    client.send_to(b"four", to).unwrap();
    assert_eq!(wait(&mut events, Some(Duration::from_secs(5))), 1, "a new arrival is a new edge");
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"three");

    // Writable interest on UDP: always writable, reported at once.
    poller.modify(&sock, 3, Interest::WRITABLE, Trigger::Edge).unwrap();
    assert_eq!(wait(&mut events, short), 1);
    assert!(events.iter().next().unwrap().is_writable());

    // Deregistered: silence; registering twice: refused; a dropped socket leaves no trace.
    poller.deregister(&sock).unwrap();
    client.send_to(b"five", to).unwrap();
    assert_eq!(wait(&mut events, short), 0);
    poller.register(&sock, 4, Interest::READABLE, Trigger::Level).unwrap();
    let err = poller.register(&sock, 5, Interest::READABLE, Trigger::Level).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    drop(sock);
    client.send_to(b"six", to).unwrap();
    assert_eq!(wait(&mut events, short), 0, "a dropped socket is never reported, even if it was queued");

    // TCP: a connection that the peer resets shows up as readable + error + hang-up.
    let listener = TcpListener::bind(&stack, "0.0.0.0:7301").unwrap();
    let addr: SocketAddr = (tb.config.stack_addr, 7301).into();
    let kernel = tb.in_peer_ns(move || KernelStream::connect(addr)).unwrap().unwrap();
    let (conn, _) = listener.accept().unwrap();
    conn.set_nonblocking(true).unwrap();
    poller.register(&conn, 10, Interest::READABLE | Interest::WRITABLE, Trigger::Edge).unwrap();
    assert_eq!(wait(&mut events, Some(Duration::from_secs(5))), 1);
    let ev = *events.iter().next().unwrap();
    assert!(ev.is_writable() && !ev.is_readable() && !ev.is_hup(), "{ev:?}");
    abort(kernel);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = None;
    while Instant::now() < deadline && !last.is_some_and(|e: xdpstack::PollEvent| e.is_hup()) {
        if wait(&mut events, Some(Duration::from_millis(200))) > 0 {
            last = events.iter().next().copied();
        }
    }
    let ev = last.expect("the reset was reported");
    assert!(ev.is_hup() && ev.is_readable() && ev.is_error(), "{ev:?}");
    finish(stack);
}

//! TCP against the Linux kernel on a real veth testbed, both directions.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener as KernelListener, TcpStream as KernelStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::*;
use sha2::{Digest, Sha256};
use xdpstack::rand::Rng;
use xdpstack::services::{self, random_bytes, Service};
use xdpstack::testbed::Testbed;
use xdpstack::{TcpListener, TcpStream};

fn random_data(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::with_seed(seed);
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

#[test]
fn kernel_client_gets_its_bytes_back_from_echo_tcp() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let _svc = services::start(&stack, Service::EchoTcp(7)).unwrap();
    let mut s = kernel_connect(&tb, "10.77.0.2:7").unwrap();
    let data = random_data(1 << 20, 1);
    let writer = {
        let mut w = s.try_clone().unwrap();
        let d = data.clone();
        std::thread::spawn(move || {
            w.write_all(&d).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        })
    };
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echoed bytes differ");
    assert!(counter(&stack, "TcpPassiveOpens") >= 1);
    finish(stack);
}

#[test]
fn stack_client_talks_to_a_kernel_server() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let listener = tb.in_peer_ns(|| KernelListener::bind("10.77.0.1:5000")).unwrap().unwrap();
    let data = random_data(1 << 20, 2);
    let expect = data.clone();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert!(got == expect, "the kernel received different bytes");
        s.write_all(b"thanks").unwrap();
    });
    let mut c = TcpStream::connect(&stack, "10.77.0.1:5000").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(&data).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    c.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"thanks");
    server.join().unwrap();
    assert_eq!(counter(&stack, "TcpActiveOpens"), 1);
    drop(c);
    finish(stack);
}

#[test]
fn connecting_to_closed_ports_is_refused_both_ways() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let err = TcpStream::connect(&stack, "10.77.0.1:1").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    let err = kernel_connect(&tb, "10.77.0.2:1").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    assert!(counter(&stack, "TcpOutRsts") >= 1);
    finish(stack);
}

/// Bytes per direction for the bulk test: 1 GiB unless XDPSTACK_BULK_MB says otherwise.
fn bulk_bytes() -> u64 {
    std::env::var("XDPSTACK_BULK_MB").ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(1024) << 20
}

/// Send `total` bytes of the /bytes/N stream, hashing them.
fn send_hashed(w: &mut impl Write, total: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut off = 0;
    while off < total {
        let n = (total - off).min(buf.len() as u64) as usize;
        random_bytes(off, &mut buf[..n]);
        h.update(&buf[..n]);
        w.write_all(&buf[..n]).unwrap();
        off += n as u64;
    }
    h.finalize().into()
}

/// Read to end of stream, hashing; returns (bytes, hash).
fn recv_hashed(r: &mut impl Read) -> (u64, [u8; 32]) {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0;
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            return (total, h.finalize().into());
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
}

/// One bulk transfer each way at the same time, SHA-256 compared at both ends. Returns the time taken.
fn bulk_both_ways(tb: &Testbed, stack: &xdpstack::Stack, total: u64, port: u16) -> Duration {
    let t0 = Instant::now();
    // Kernel -> stack: a kernel client sends to a listener of the stack.
    let listener = TcpListener::bind(stack, ("10.77.0.2", port)).unwrap();
    let sender = {
        let addr = format!("10.77.0.2:{port}");
        let mut s = kernel_connect(tb, &addr).unwrap();
        std::thread::spawn(move || {
            let h = send_hashed(&mut s, total);
            s.shutdown(Shutdown::Write).unwrap();
            h
        })
    };
    let (mut accepted, _) = listener.accept().unwrap();
    let receiver = std::thread::spawn(move || recv_hashed(&mut accepted));
    // Stack -> kernel: the stack connects to a kernel listener and sends.
    let kl = tb.in_peer_ns(move || KernelListener::bind(("10.77.0.1", port))).unwrap().unwrap();
    let kernel_side = std::thread::spawn(move || {
        let (mut s, _) = kl.accept().unwrap();
        recv_hashed(&mut s)
    });
    let mut c = TcpStream::connect(stack, ("10.77.0.1", port)).unwrap();
    let sent_by_stack = send_hashed(&mut c, total);
    c.shutdown(Shutdown::Write).unwrap();

    let sent_by_kernel = sender.join().unwrap();
    let (n1, got_by_stack) = receiver.join().unwrap();
    let (n2, got_by_kernel) = kernel_side.join().unwrap();
    assert_eq!((n1, n2), (total, total));
    assert_eq!(got_by_stack, sent_by_kernel, "kernel -> stack: SHA-256 differs");
    assert_eq!(got_by_kernel, sent_by_stack, "stack -> kernel: SHA-256 differs");
    t0.elapsed()
}

#[test]
fn one_gib_each_way_with_equal_sha256_at_both_ends() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let total = bulk_bytes();
    let took = bulk_both_ways(&tb, &stack, total, 6000);
    eprintln!("{} MiB each way in {took:?}", total >> 20);
    finish(stack);
}

fn curl(tb: &Testbed, args: &[&str]) -> (String, String) {
    let out = tb
        .peer_cmd("curl")
        .args(["--silent", "--show-error", "--max-time", "30"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn curl_gets_pages_bytes_and_404s_over_keep_alive() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let _svc = services::start(&stack, Service::Http(80)).unwrap();
    let (page, _) = curl(&tb, &["http://10.77.0.2/"]);
    assert!(page.contains("<h1>xdpstack</h1>"), "{page}");
    // /bytes/N: the SHA-256 curl's bytes have must be that of the generator's bytes.
    let n = 5_000_000;
    let out = tb
        .peer_cmd("sh")
        .args(["-c", &format!("curl -s --max-time 30 http://10.77.0.2/bytes/{n} | sha256sum")])
        .output()
        .unwrap();
    let got = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string();
    let mut buf = vec![0u8; n];
    random_bytes(0, &mut buf);
    let want: String = Sha256::digest(&buf).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(got, want);
    let (code, _) = curl(&tb, &["-o", "/dev/null", "-w", "%{http_code}", "http://10.77.0.2/nope"]);
    assert_eq!(code, "404");
    // Two requests on one connection (HTTP/1.1 keep-alive).
    let (_, verbose) = curl(
        &tb,
        &["-v", "-o", "/dev/null", "-o", "/dev/null", "http://10.77.0.2/", "http://10.77.0.2/bytes/10"],
    );
    assert!(
        verbose.contains("Re-using existing connection") || verbose.contains("Reusing existing connection"),
        "{verbose}"
    );
    finish(stack);
}

#[test]
fn chargen_and_discard_follow_their_rfcs() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let _c = services::start(&stack, Service::ChargenTcp(19)).unwrap();
    let _d = services::start(&stack, Service::DiscardTcp(9)).unwrap();
    let mut s = kernel_connect(&tb, "10.77.0.2:19").unwrap();
    let mut lines = vec![0u8; 74 * 3];
    s.read_exact(&mut lines).unwrap();
    assert_eq!(
        &lines[..74],
        format!("{}\r\n", (b' '..=b'~').take(72).map(char::from).collect::<String>()).as_bytes()
    );
    assert_eq!(lines[74], b'!', "each line starts one character further");
    drop(s);
    let mut d = kernel_connect(&tb, "10.77.0.2:9").unwrap();
    d.write_all(&vec![1u8; 10 << 20]).unwrap();
    d.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    d.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "discard sends nothing");
    finish(stack);
}

#[test]
fn a_thousand_concurrent_connections() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let _svc = services::start(&stack, Service::EchoTcp(7)).unwrap();
    let conns = tb
        .in_peer_ns(|| {
            (0..1000)
                .map(|_| {
                    let s = KernelStream::connect("10.77.0.2:7").unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    s
                })
                .collect::<Vec<_>>()
        })
        .unwrap();
    assert!(wait_for(Duration::from_secs(10), || {
        stack.sockets().iter().filter(|s| s.state == Some(xdpstack::tcp::State::Established)).count() == 1000
    }));
    for (i, mut c) in conns.iter().enumerate() {
        let msg = format!("connection {i}");
        c.write_all(msg.as_bytes()).unwrap();
        let mut back = vec![0u8; msg.len()];
        c.read_exact(&mut back).unwrap();
        assert_eq!(back, msg.as_bytes());
    }
    assert_eq!(counter(&stack, "TcpPassiveOpens"), 1000);
    drop(conns);
    assert!(wait_for(Duration::from_secs(10), || counter(&stack, "TcpCurrEstab") == 0));
    finish(stack);
}

#[test]
fn threads_sharing_a_listener_accept_every_connection() {
    // A thread pool blocked in accept on one listener (as servers on std::net do): every connection
    // the kernel makes, in bursts, is accepted by one of them and answered.
    const THREADS: usize = 4;
    const CONNECTIONS: usize = 400;
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let listener = std::sync::Arc::new(TcpListener::bind(&stack, "10.77.0.2:6400").unwrap());
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pool: Vec<_> = (0..THREADS)
        .map(|_| {
            let (listener, done) = (listener.clone(), done.clone());
            std::thread::spawn(move || {
                let mut served = 0usize;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((mut s, _)) => {
                            s.write_all(b"hi").unwrap();
                            served += 1;
                        }
                        Err(e) => panic!("accept: {e}"),
                    }
                }
                served
            })
        })
        .collect();
    let clients = tb
        .in_peer_ns(|| {
            let bursts = (0..CONNECTIONS / 8).map(|_| {
                let burst: Vec<_> = (0..8)
                    .map(|_| std::thread::spawn(|| KernelStream::connect("10.77.0.2:6400").unwrap()))
                    .collect();
                burst.into_iter().map(|t| t.join().unwrap()).collect::<Vec<_>>()
            });
            bursts.flatten().collect::<Vec<_>>()
        })
        .unwrap();
    for mut c in clients {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut hi = [0u8; 2];
        c.read_exact(&mut hi).expect("every connection accepted and answered");
        assert_eq!(&hi, b"hi");
    }
    // One more connection per thread, each to release one accept after the flag.
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let last: Vec<_> = (0..THREADS).map(|_| kernel_connect(&tb, "10.77.0.2:6400").unwrap()).collect();
    let served: usize = pool.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(served, CONNECTIONS + THREADS);
    drop(last);
    drop(listener);
    finish(stack);
}

/// Abort a kernel socket: SO_LINGER with a zero timeout makes close() send RST.
fn abort_kernel(s: KernelStream) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // Safety: a valid socket fd and a live, correctly sized linger struct.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as u32,
        )
    };
    assert_eq!(rc, 0);
    drop(s);
}

#[test]
fn a_kernel_side_abort_resets_the_stack_connection() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let listener = TcpListener::bind(&stack, "10.77.0.2:6100").unwrap();
    let k = kernel_connect(&tb, "10.77.0.2:6100").unwrap();
    let (mut s, _) = listener.accept().unwrap();
    abort_kernel(k);
    let mut buf = [0u8; 16];
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let err = s.read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert_eq!(s.read(&mut buf).unwrap(), 0, "then end of stream");
    let err = s.write(b"x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    // As getpeername(2) and shutdown(2) on Linux: a reset connection has no peer.
    assert_eq!(s.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
    assert_eq!(s.shutdown(Shutdown::Both).unwrap_err().kind(), ErrorKind::NotConnected);
    assert_eq!(counter(&stack, "TcpEstabResets"), 1);

    // A connection whose stack stops under it is aborted, in both directions.
    let k = kernel_connect(&tb, "10.77.0.2:6100").unwrap();
    let (mut s, _) = listener.accept().unwrap();
    assert!(s.peer_addr().is_ok());
    drop(listener);
    finish(stack);
    // The error once (not an end of stream the application could take for the peer's FIN), then
    // as after a reset.
    assert_eq!(s.read(&mut buf).unwrap_err().kind(), ErrorKind::ConnectionAborted);
    assert_eq!(s.write(b"x").unwrap_err().kind(), ErrorKind::BrokenPipe);
    assert_eq!(s.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
    drop(k);
}

#[test]
fn modes_timeouts_and_options() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let listener = TcpListener::bind(&stack, "10.77.0.2:6300").unwrap();
    assert_eq!(TcpListener::bind(&stack, "0.0.0.0:6300").unwrap_err().kind(), ErrorKind::AddrInUse);
    listener.set_nonblocking(true).unwrap();
    assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    listener.set_nonblocking(false).unwrap();
    listener.set_accept_timeout(Some(Duration::from_millis(100))).unwrap();
    assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::TimedOut);
    listener.set_accept_timeout(None).unwrap();

    let _k = kernel_connect(&tb, "10.77.0.2:6300").unwrap();
    let (mut s, peer) = listener.accept().unwrap();
    assert_eq!(s.peer_addr().unwrap(), peer);
    assert_eq!(s.local_addr().unwrap(), "10.77.0.2:6300".parse::<SocketAddr>().unwrap());
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(s.read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(150))).unwrap();
    let t = Instant::now();
    assert_eq!(s.read(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
    assert!(t.elapsed() >= Duration::from_millis(150));
    s.set_nodelay(true).unwrap();

    // Nobody answers at 10.77.0.99: connect_timeout gives up.
    let t = Instant::now();
    let addr: SocketAddr = "10.77.0.99:80".parse().unwrap();
    let err = TcpStream::connect_timeout(&stack, &addr, Duration::from_millis(500)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(t.elapsed() < Duration::from_secs(3));
    drop(s);
    finish(stack);
}

/// Loss on the real path in both directions: the stack's XDP program drops a seeded fraction of what
/// it would steer to the stack, and a lossy XDP program on the peer's end drops the same fraction of
/// the stack's TCP segments. The transfer must still complete intact.
fn lossy_transfer(ppm: u32, mib: u64) {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    stack.set_loss(ppm, 11).unwrap();
    let ifname = tb.peer_if.clone();
    let _lossy = tb
        .in_peer_ns(move || {
            let ifindex = xdpstack::netdev::NetDev::lookup(&ifname).unwrap().ifindex;
            let lossy = xdp_prog::Lossy::load().unwrap();
            lossy
                .set(&xdp_prog::LossConfig {
                    drop_ppm: ppm,
                    seed: 12,
                    protocol: Some(6),
                    src: Some("10.77.0.2".parse().unwrap()),
                })
                .unwrap();
            let link = lossy.attach(ifindex, xdp_prog::XdpMode::Auto).unwrap();
            (lossy, link)
        })
        .unwrap();
    let took = bulk_both_ways(&tb, &stack, mib << 20, 6400);
    let dropped_in = counter(&stack, "XdpDropped");
    let dropped_out = _lossy.0.counters().unwrap().dropped;
    eprintln!(
        "{} ppm: {mib} MiB each way in {took:?}; dropped {dropped_in} inbound, {dropped_out} outbound; {} retransmitted, {} timeouts",
        ppm,
        counter(&stack, "TcpRetransSegs"),
        counter(&stack, "TCPTimeouts")
    );
    assert!(dropped_in > 0 && dropped_out > 0, "loss was applied both ways");
    assert!(counter(&stack, "TcpRetransSegs") > 0);
    finish(stack);
}

/// MiB each way for the lossy transfers (CI-sized by default; `scripts/tcp-full.sh` runs 1 GiB).
fn lossy_mib() -> u64 {
    std::env::var("XDPSTACK_LOSSY_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

#[test]
fn transfer_survives_1_percent_loss_both_ways() {
    lossy_transfer(10_000, lossy_mib());
}

#[test]
fn transfer_survives_5_percent_loss_both_ways() {
    lossy_transfer(50_000, lossy_mib());
}

#[test]
fn a_capture_of_the_interop_decodes_cleanly_in_tshark() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let _http = services::start(&stack, Service::Http(80)).unwrap();
    let _echo = services::start(&stack, Service::EchoTcp(7)).unwrap();
    let dir = std::env::temp_dir().join(format!("xdpstack-cap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("interop.pcap");
    let mut cap = tb
        .peer_cmd("dumpcap")
        .args(["-q", "-i", &tb.peer_if, "-w"])
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("dumpcap (tshark) is installed by scripts/setup.sh");
    std::thread::sleep(Duration::from_millis(700));
    curl(
        &tb,
        &["-o", "/dev/null", "http://10.77.0.2/", "http://10.77.0.2/bytes/2000000", "http://10.77.0.2/x"],
    );
    let mut s = kernel_connect(&tb, "10.77.0.2:7").unwrap();
    s.write_all(&random_data(300_000, 9)).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    assert_eq!(back.len(), 300_000);
    let listener = tb.in_peer_ns(|| KernelListener::bind("10.77.0.1:6500")).unwrap().unwrap();
    let srv = std::thread::spawn(move || recv_hashed(&mut listener.accept().unwrap().0));
    let mut c = TcpStream::connect(&stack, "10.77.0.1:6500").unwrap();
    send_hashed(&mut c, 3 << 20);
    drop(c);
    srv.join().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // Safety: SIGINT to the dumpcap child this test started.
    unsafe { libc::kill(cap.id() as i32, libc::SIGINT) };
    cap.wait().unwrap();

    let tshark = |filter: &str| {
        let out = std::process::Command::new("tshark")
            .args(["-n", "-r"])
            .arg(&file)
            .args([
                "-o",
                "ip.check_checksum:TRUE",
                "-o",
                "tcp.check_checksum:TRUE",
                "-o",
                "udp.check_checksum:TRUE",
            ])
            .args(["-Y", filter])
            .output()
            .expect("tshark");
        assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    let frames = tshark("frame");
    let tcp = tshark("tcp");
    assert!(frames > 1000 && tcp > 1000, "{frames} frames, {tcp} TCP");
    assert_eq!(tshark("_ws.malformed"), 0, "malformed packets");
    // The peer kernel now and then sends a TCP checksum of 0xffff where the computation gives 0x0000:
    // the same value in one's complement (RFC 1624 §3), which tshark flags. Allowed on the kernel's
    // frames only; every frame of the stack must check out exactly.
    let kernel_ffff = "(ip.src == 10.77.0.1 && tcp.checksum.ffff)";
    assert_eq!(
        tshark(&format!(
            "(ip.checksum.status == \"Bad\" || tcp.checksum.status == \"Bad\") && !{kernel_ffff}"
        )),
        0,
        "bad checksums"
    );
    assert_eq!(tshark(&format!("_ws.expert.severity == error && !{kernel_ffff}")), 0, "expert errors");
    assert!(tshark("http.response.code == 404") == 1 && tshark("http.response.code == 200") == 2);
    let _ = std::fs::remove_dir_all(&dir);
    finish(stack);
}

#[test]
fn syn_cookies_take_over_when_the_syn_queue_is_full() {
    let tb = testbed(1);
    let stack = start(&tb, |c| c.tcp.syn_queue = 4);
    let _echo = services::start(&stack, Service::EchoTcp(7)).unwrap();
    // SYNs from addresses that never answer: their SYN-ACKs wait on ARP forever, so they stay half-open.
    let mut frames = Vec::new();
    for i in 0..20u8 {
        let src = std::net::Ipv4Addr::new(10, 77, 0, 100 + i);
        frames.push(syn_frame(&tb, src, 40000 + u16::from(i)));
    }
    tb.inject_from_peer(frames).unwrap();
    assert!(wait_for(Duration::from_secs(3), || counter(&stack, "SyncookiesSent") >= 16));
    // A real client still gets through, on a cookie.
    let mut s = kernel_connect(&tb, "10.77.0.2:7").unwrap();
    s.write_all(b"through the cookie").unwrap();
    let mut back = [0u8; 18];
    if let Err(e) = s.read_exact(&mut back) {
        panic!("echo through the cookie: {e}; counters {:?}", nonzero(&stack));
    }
    assert_eq!(&back, b"through the cookie");
    assert!(counter(&stack, "SyncookiesRecv") >= 1, "{:?}", nonzero(&stack));
    drop(s);
    finish(stack);
}

/// An Ethernet/IPv4/TCP SYN from `src:port` to the stack's echo port, with MSS and timestamps.
fn syn_frame(tb: &Testbed, src: std::net::Ipv4Addr, port: u16) -> Vec<u8> {
    use xdpstack::wire::*;
    let syn = TcpRepr {
        src_port: port,
        dst_port: 7,
        seq: TcpSeqNumber(1000 + u32::from(port)),
        ack: None,
        flags: TcpFlags::SYN,
        window_len: 64240,
        max_seg_size: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        sack_ranges: [None; 3],
        timestamp: Some((12345, 0)),
        payload_len: 0,
    };
    tcp_frame(tb, src, &syn, &[])
}

#[test]
fn run_to_completion_mode_moves_tcp_both_ways() {
    let tb = testbed(1);
    let stack = start(&tb, |c| c.inline = true);
    // In this mode the stack runs only while someone calls into it: besides the threads blocked in
    // reads and writes, an event-loop thread polls it (as an application without a blocking call
    // would), so that ARP, handshakes and timers are served at all times.
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                stack.poll();
            }
        });
        let took = bulk_both_ways(&tb, &stack, 128 << 20, 6600);
        eprintln!("run-to-completion: 128 MiB each way in {took:?}");
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    finish(stack);
}

//! The tokio integration on a real veth testbed: the example's HTTP server served to `curl`, the async
//! TCP and UDP echo servers to kernel clients, and an async connect to a kernel server.
//! Runs with `cargo test -p xdpstack --features tokio --test tokio_async` (scripts/test.sh does).
#![cfg(feature = "tokio")]

mod common;
#[path = "../examples/common/tokio_servers.rs"]
mod servers;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener as KernelListener, TcpStream as KernelStream};
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xdpstack::rand::Rng;
use xdpstack::tokio::{TcpListener, TcpStream, UdpSocket};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn the_http_example_serves_curl() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let rt = runtime();
    let listener = rt.block_on(async { TcpListener::bind(&stack, "0.0.0.0:80") }).unwrap();
    let server = rt.spawn(servers::serve_http(listener));
    let base = format!("http://{}", stack_ip(&tb));

    let page = peer_run(&tb, "curl", &["-sS", "--max-time", "10", &format!("{base}/")]);
    assert_eq!(page, servers::INDEX);

    // 3 MB through the async writer, checked byte by byte, twice over one kept-alive connection.
    let n = 3_000_000u64;
    let out = tb
        .peer_cmd("curl")
        .args(["-sS", "--max-time", "30", "-v"])
        .arg(format!("{base}/bytes/{n}"))
        .arg(format!("{base}/bytes/{n}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "curl failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout.len() as u64, 2 * n);
    for (i, b) in out.stdout.iter().enumerate() {
        assert_eq!(*b, servers::body_byte(i as u64 % n), "byte {i}");
    }
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("Re-using existing connection") || log.contains("Reusing existing"),
        "keep-alive: {log}"
    );

    let code =
        peer_run(&tb, "curl", &["-sS", "-o", "/dev/null", "-w", "%{http_code}", &format!("{base}/nope")]);
    assert_eq!(code, "404");

    server.abort();
    drop(rt);
    finish(stack);
}

#[test]
fn async_echo_servers_answer_kernel_clients() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let rt = runtime();
    let (tcp, udp) =
        rt.block_on(async { (TcpListener::bind(&stack, "0.0.0.0:7"), UdpSocket::bind(&stack, "0.0.0.0:7")) });
    rt.spawn(servers::serve_tcp_echo(tcp.unwrap()));
    rt.spawn(servers::serve_udp_echo(udp.unwrap()));

    // TCP: 4 kernel clients at once, 1 MiB each, written and read concurrently.
    let addr: SocketAddr = (tb.config.stack_addr, 7).into();
    let clients: Vec<_> = (0..4u64)
        .map(|seed| {
            let s =
                tb.in_peer_ns(move || KernelStream::connect_timeout(&addr, Duration::from_secs(5))).unwrap();
            let mut s = s.unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            std::thread::spawn(move || {
                let mut rng = Rng::with_seed(seed);
                let data: Vec<u8> = (0..1 << 20).map(|_| rng.next_u64() as u8).collect();
                let mut w = s.try_clone().unwrap();
                let d = data.clone();
                let writer = std::thread::spawn(move || {
                    w.write_all(&d).unwrap();
                    w.shutdown(Shutdown::Write).unwrap();
                });
                let mut back = Vec::new();
                s.read_to_end(&mut back).unwrap();
                writer.join().unwrap();
                assert!(back == data, "client {seed}: echo differs ({} of {} bytes)", back.len(), data.len());
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }

    // UDP: 200 datagrams of different sizes, each echoed.
    let sock = peer_udp(&tb, "10.77.0.1:0");
    let mut buf = [0u8; 2048];
    for i in 0..200usize {
        let msg: Vec<u8> = (0..1 + i * 7).map(|k| (k + i) as u8).collect();
        sock.send_to(&msg, addr).unwrap();
        let (n, from) = sock.recv_from(&mut buf).unwrap_or_else(|e| panic!("datagram {i}: {e}"));
        assert_eq!((from, &buf[..n]), (addr, &msg[..]));
    }
    drop(rt);
    finish(stack);
}

#[test]
fn async_connect_reaches_a_kernel_server_and_reports_refusal() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let kl = tb.in_peer_ns(|| KernelListener::bind("10.77.0.1:5300")).unwrap().unwrap();
    let server = std::thread::spawn(move || {
        let (mut c, _) = kl.accept().unwrap();
        let mut got = [0u8; 5];
        c.read_exact(&mut got).unwrap();
        c.write_all(&got.map(|b| b.to_ascii_uppercase())).unwrap();
        got
    });
    let rt = runtime();
    let reply = rt.block_on(async {
        let mut s = TcpStream::connect(&stack, "10.77.0.1:5300").await.unwrap();
        s.write_all(b"hello").await.unwrap();
        let mut back = [0u8; 5];
        s.read_exact(&mut back).await.unwrap();
        s.shutdown().await.unwrap();
        back
    });
    assert_eq!(&reply, b"HELLO");
    assert_eq!(&server.join().unwrap(), b"hello");
    let err = rt.block_on(async { TcpStream::connect(&stack, "10.77.0.1:5301").await.unwrap_err() });
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    drop(rt);
    finish(stack);
}

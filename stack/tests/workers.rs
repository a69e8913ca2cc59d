//! Several workers. Every worker has a socket on every queue and the XDP program picks the worker by
//! flow hash, so each flow must land exactly on `flow_hash % workers`, on a one-queue and on a
//! two-queue veth. Many kernel flows; every datagram must come back, every worker must carry exactly the
//! flows predicted for it, and no UMEM frame may go missing as frames migrate between workers.

mod common;

use std::time::Duration;

use common::*;
use xdpstack::services::{self, Service};
use xdpstack::testbed::Testbed;
use xdpstack::Stack;

/// 32 kernel sockets (32 flows), each doing `rounds` echo exchanges of `size` bytes. Returns each
/// flow's source port.
fn many_flows(tb: &Testbed, rounds: usize, size: usize) -> Vec<u16> {
    let socks: Vec<_> = (0..32).map(|_| peer_udp(tb, "10.77.0.1:0")).collect();
    let ports = socks.iter().map(|s| s.local_addr().unwrap().port()).collect();
    let threads: Vec<_> = socks
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let dst = (tb.config.stack_addr, 7);
            std::thread::spawn(move || {
                s.connect(dst).unwrap();
                let mut buf = vec![0u8; 2048];
                for r in 0..rounds {
                    let msg: Vec<u8> = (0..size).map(|j| (i * 7 + r * 3 + j) as u8).collect();
                    s.send(&msg).unwrap();
                    let n = s.recv(&mut buf).unwrap_or_else(|e| panic!("flow {i} round {r}: {e}"));
                    assert_eq!(&buf[..n], &msg[..]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    ports
}

/// Datagrams each worker should have received: `rounds` per flow, on the flow's owner.
fn predicted(tb: &Testbed, stack: &Stack, ports: &[u16], rounds: u64) -> Vec<u64> {
    let mut per = vec![0u64; stack.worker_counters().len()];
    for p in ports {
        let h = xdp_prog::flow_hash(tb.config.peer_addr, tb.config.stack_addr, 17, *p, 7);
        per[stack.info().plan.owner(h)] += rounds;
    }
    per
}

fn per_worker_rx(stack: &Stack) -> Vec<u64> {
    stack
        .worker_counters()
        .iter()
        .map(|c| c.iter().find(|(n, _)| *n == "UdpInDatagrams").unwrap().1)
        .collect()
}

#[test]
fn two_workers_on_a_two_queue_veth() {
    let tb = testbed(2);
    let stack = start(&tb, |c| c.workers = 2);
    assert_eq!(stack.worker_threads(), 2, "one pinned thread per worker");
    assert_eq!(stack.info().plan.socks_per_queue, 2);
    assert_eq!(stack.info().netdev.rx_queues, 2);
    let _svc = services::start(&stack, Service::EchoUdp(7)).unwrap();
    let ports = many_flows(&tb, 100, 200);
    let rx = per_worker_rx(&stack);
    assert_eq!(rx, predicted(&tb, &stack, &ports, 100), "each flow on the worker its hash names");
    assert!(rx.iter().all(|n| *n > 0), "both workers carried flows: {rx:?}");
    finish(stack);
}

#[test]
fn two_workers_share_one_queue_by_flow_hash() {
    let tb = testbed(1);
    let stack = start(&tb, |c| {
        c.workers = 2;
        // Few frames, so that frames must migrate between the two workers' pools.
        c.frames_per_socket = 1024;
        c.ring_size = 256;
    });
    assert_eq!(stack.info().plan.socks_per_queue, 2);
    let _svc = services::start(&stack, Service::EchoUdp(7)).unwrap();
    let ports = many_flows(&tb, 150, 1400);
    let rx = per_worker_rx(&stack);
    assert_eq!(rx, predicted(&tb, &stack, &ports, 150), "each flow on the worker its hash names");
    assert!(rx.iter().all(|n| *n > 0), "the XDP program spread flows over both sockets: {rx:?}");
    assert!(wait_for(Duration::from_secs(1), || counter(&stack, "XdpNoSocket") == 0));
    finish(stack);
}

#[test]
fn tcp_connections_live_on_their_hash_owner() {
    use std::io::{Read, Write};
    let tb = testbed(2);
    let stack = start(&tb, |c| c.workers = 2);
    let _svc = services::start(&stack, Service::EchoTcp(7)).unwrap();
    // 24 kernel clients, each echoing 256 KiB.
    let conns = tb
        .in_peer_ns(|| {
            (0..24).map(|_| std::net::TcpStream::connect("10.77.0.2:7").unwrap()).collect::<Vec<_>>()
        })
        .unwrap();
    let ports: Vec<u16> = conns.iter().map(|c| c.local_addr().unwrap().port()).collect();
    let threads: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            std::thread::spawn(move || {
                let data: Vec<u8> = (0..256 * 1024).map(|j| (i * 31 + j) as u8).collect();
                let mut w = c.try_clone().unwrap();
                let d = data.clone();
                let wr = std::thread::spawn(move || w.write_all(&d).unwrap());
                let mut back = vec![0u8; data.len()];
                c.read_exact(&mut back).unwrap();
                wr.join().unwrap();
                assert!(back == data, "connection {i} echoed different bytes");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut want = vec![0u64; 2];
    for p in &ports {
        let h = xdp_prog::flow_hash(tb.config.peer_addr, tb.config.stack_addr, 6, *p, 7);
        want[stack.info().plan.owner(h)] += 1;
    }
    let got: Vec<u64> = stack
        .worker_counters()
        .iter()
        .map(|c| c.iter().find(|(n, _)| *n == "TcpPassiveOpens").unwrap().1)
        .collect();
    assert_eq!(got, want, "each connection was opened by the worker its hash names");
    assert!(got.iter().all(|n| *n > 0), "{got:?}");
    // Active opens from the stack go to their owners too, and work.
    let kl = tb.in_peer_ns(|| std::net::TcpListener::bind("10.77.0.1:7100")).unwrap().unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..16 {
            let (mut s, _) = kl.accept().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        }
    });
    for _ in 0..16 {
        let mut c = xdpstack::TcpStream::connect(&stack, "10.77.0.1:7100").unwrap();
        c.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
    }
    server.join().unwrap();
    let active: Vec<u64> = stack
        .worker_counters()
        .iter()
        .map(|c| c.iter().find(|(n, _)| *n == "TcpActiveOpens").unwrap().1)
        .collect();
    assert_eq!(active.iter().sum::<u64>(), 16);
    finish(stack);
}

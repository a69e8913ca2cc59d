//! Several workers: one per queue on a multi-queue veth, and two sharing one queue (shared UMEM, the
//! XDP program picking the socket by flow hash). Many kernel flows; every datagram must come back, every
//! worker must carry traffic, and no UMEM frame may go missing as frames migrate between workers.

mod common;

use std::time::Duration;

use common::*;
use xdpstack::services::{self, Service};
use xdpstack::testbed::Testbed;
use xdpstack::Stack;

/// 32 kernel sockets (32 flows), each doing `rounds` echo exchanges of `size` bytes.
fn many_flows(tb: &Testbed, rounds: usize, size: usize) {
    let socks: Vec<_> = (0..32).map(|_| peer_udp(tb, "10.77.0.1:0")).collect();
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
                    let n = s
                        .recv(&mut buf)
                        .unwrap_or_else(|e| panic!("flow {i} round {r}: {e}"));
                    assert_eq!(&buf[..n], &msg[..]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn per_worker_rx(stack: &Stack) -> Vec<u64> {
    stack
        .worker_counters()
        .iter()
        .map(|c| c.iter().find(|(n, _)| *n == "UdpInDatagrams").unwrap().1)
        .collect()
}

#[test]
fn one_worker_per_queue_on_a_two_queue_veth() {
    let tb = testbed(2);
    let stack = start(&tb, |c| c.workers = 2);
    assert_eq!(stack.info().plan.socks_per_queue, 1);
    assert_eq!(stack.info().netdev.rx_queues, 2);
    let _svc = services::start(&stack, Service::EchoUdp(7)).unwrap();
    many_flows(&tb, 100, 200);
    let rx = per_worker_rx(&stack);
    assert_eq!(rx.iter().sum::<u64>(), 3200);
    assert!(
        rx.iter().all(|n| *n > 0),
        "both queues carried flows: {rx:?}"
    );
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
    many_flows(&tb, 150, 1400);
    let rx = per_worker_rx(&stack);
    assert_eq!(rx.iter().sum::<u64>(), 32 * 150);
    assert!(
        rx.iter().all(|n| *n > 0),
        "the XDP program spread flows over both sockets: {rx:?}"
    );
    assert!(wait_for(Duration::from_secs(1), || counter(
        &stack,
        "XdpNoSocket"
    ) == 0));
    finish(stack);
}

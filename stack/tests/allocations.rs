//! Zero heap allocations per packet in steady state: a counting global allocator watches every thread
//! of the process (workers, services, the test) while a kernel client exchanges messages with the
//! stack over the real path. One test function, so that no other test allocates meanwhile. The test
//! harness's own main thread is not counted: it allocates to print "has been running for over 60
//! seconds" when busy-polling threads share the two cores slowly.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use xdpstack::services::{self, Service};
use xdpstack::Config;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// 0: not known yet, 1: the process's main thread (the test harness), 2: any other thread.
    static MAIN_THREAD: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
}

/// Count an allocation unless the harness's main thread made it.
fn count() {
    let main = MAIN_THREAD.with(|m| {
        if m.get() == 0 {
            // Safety: plain syscalls without arguments.
            let is_main = unsafe { libc::gettid() == libc::getpid() };
            m.set(if is_main { 1 } else { 2 });
        }
        m.get() == 1
    });
    if !main {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// Safety: every method forwards to the system allocator with the caller's arguments unchanged, so
// `System`'s guarantees carry over; the counter has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // Safety: forwarded as is (see the impl).
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // Safety: forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // Safety: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Safety: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made while `f` runs (by any thread).
fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    f();
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

fn udp_echo_round_trips(sock: &std::net::UdpSocket, n: usize) {
    let mut buf = [0u8; 2048];
    let msg = [0x5au8; 1000];
    for _ in 0..n {
        sock.send(&msg).unwrap();
        let got = sock.recv(&mut buf).unwrap();
        assert_eq!(got, msg.len());
    }
}

fn tcp_round_trips(s: &mut std::net::TcpStream, n: usize) {
    let msg = [0xa5u8; 512];
    let mut buf = [0u8; 512];
    for _ in 0..n {
        s.write_all(&msg).unwrap();
        s.read_exact(&mut buf).unwrap();
    }
}

fn check_mode(name: &str, tweak: impl FnOnce(&mut Config)) {
    let tb = testbed(1);
    let stack = start(&tb, |c| {
        // The control thread's periodic /proc-format refresh allocates a snapshot (off the packet
        // path, but on every thread this test counts).
        c.net_files_refresh = None;
        tweak(c);
    });
    let _u = services::start(&stack, Service::EchoUdp(7)).unwrap();
    let _t = services::start(&stack, Service::EchoTcp(7)).unwrap();
    let udp = peer_udp(&tb, "10.77.0.1:0");
    udp.connect((tb.config.stack_addr, 7)).unwrap();
    let mut tcp = tb.in_peer_ns(|| std::net::TcpStream::connect("10.77.0.2:7")).unwrap().unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.set_nodelay(true).unwrap();
    // Warm up: pools fill, tables and queues reach their working sizes.
    udp_echo_round_trips(&udp, 3000);
    tcp_round_trips(&mut tcp, 3000);
    let n = allocations_during(|| udp_echo_round_trips(&udp, 5000));
    assert_eq!(n, 0, "{name}: {n} allocations in 5000 UDP echo round trips");
    let n = allocations_during(|| tcp_round_trips(&mut tcp, 5000));
    assert_eq!(n, 0, "{name}: {n} allocations in 5000 TCP round trips");
    drop(tcp);
    finish(stack);
}

#[test]
fn no_allocation_per_packet_in_steady_state() {
    check_mode("worker, sleeping", |_| {});
    check_mode("worker, busy-polling", |c| c.busy_poll = true);
    check_mode("run to completion", |c| c.inline = true);
}

//! The loss mode of the steering program and the lossy program, run on crafted frames with
//! `BPF_PROG_TEST_RUN` (needs root).
//!
//! A test run executes the program on the calling thread's CPU, and each CPU has its own random
//! stream, so every test that looks at a pattern pins its thread to one CPU, and compares what the
//! program did with the stream [`LossStream`] predicts for that seed and CPU (the model is checked
//! against loss.h itself in `loss_model.rs`). The pattern tests run on every CPU this process may
//! use, so the CPU id's part in the stream is exercised wherever there is more than one.

use std::net::Ipv4Addr;

use crate::abi::PPM_ONE;
use crate::loss_model::LossStream;
use crate::tests::{
    arp, check, eth, icmp, ipv4, ipv4_with, steering, tcp, tcp_frame, udp, udp_frame, vlan, Expect, ETH_ARP,
    ETH_IPV4, ETH_IPV6, ICMP, OTHER, PEER, STACK, TCP, UDP, UDP_LISTED, UNLISTED,
};
use crate::{Error, LossConfig, LossCounters, Lossy, SteerConfig, SteerCounters, Steering, XdpAction};

/// Test runs per drop-rate measurement.
const RUNS: usize = 20_000;
const THIRTY_PERCENT: u32 = 300_000;

// ---- CPUs ----

/// The CPUs this process may run on (at most four: enough to see per-CPU streams).
fn allowed_cpus() -> Vec<u32> {
    // Safety: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // Safety: `set` is a valid cpu_set_t of the size given; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    assert_eq!(rc, 0, "sched_getaffinity: {}", std::io::Error::last_os_error());
    // Safety: CPU_ISSET reads the set for an index below CPU_SETSIZE.
    let cpus: Vec<u32> = (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .map(|c| c as u32)
        .collect();
    assert!(!cpus.is_empty());
    cpus.into_iter().take(4).collect()
}

/// Run `f` on a thread pinned to `cpu`.
fn on_cpu<R: Send>(cpu: u32, f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                // Safety: cpu_set_t is plain data; all-zero is the empty set.
                let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
                // Safety: `cpu` is below CPU_SETSIZE (it came from allowed_cpus).
                unsafe { libc::CPU_SET(cpu as usize, &mut set) };
                // Safety: `set` is a valid cpu_set_t of the size given; pid 0 is this thread.
                let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
                assert_eq!(rc, 0, "pin to CPU {cpu}: {}", std::io::Error::last_os_error());
                // Safety: plain query of the calling thread's CPU.
                assert_eq!(unsafe { libc::sched_getcpu() }, cpu as i32, "pinned to CPU {cpu}");
                f()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

// ---- helpers ----

/// Run `frame` `n` times through `run`; true where it was dropped. Anything but drop or pass fails.
fn pattern(n: usize, frame: &[u8], mut run: impl FnMut(&[u8]) -> XdpAction) -> Vec<bool> {
    (0..n)
        .map(|i| match run(frame) {
            XdpAction::Drop => true,
            XdpAction::Pass => false,
            other => panic!("run {i}: {other:?}"),
        })
        .collect()
}

fn dropped_count(pattern: &[bool]) -> u64 {
    pattern.iter().filter(|&&d| d).count() as u64
}

/// `dropped` of `n` is within five standard deviations of a binomial(n, ppm / 10^6) mean. (The
/// pattern of a seed is fixed, so this cannot flake; it catches a wrong rate, such as a threshold
/// on the wrong bits or a modulo slip, which the exact model comparison would also catch.)
#[track_caller]
fn assert_binomial(dropped: u64, n: usize, ppm: u32) {
    let (n, p) = (n as f64, f64::from(ppm) / f64::from(PPM_ONE));
    let (mean, sd) = (n * p, (n * p * (1.0 - p)).sqrt());
    let got = dropped as f64;
    assert!((got - mean).abs() <= 5.0 * sd, "dropped {dropped} of {n}: expected {mean} ± {}", 5.0 * sd);
}

/// A frame the steering program would steer (with an empty XSKMAP: passed, counted no_socket).
fn steerable() -> Vec<u8> {
    udp_frame(STACK, UNLISTED)
}

/// A frame the steering program passes to the kernel on purpose.
fn for_the_kernel() -> Vec<u8> {
    udp_frame(OTHER, UDP_LISTED)
}

#[track_caller]
fn check_dropped(s: &Steering, what: &str, frame: &[u8]) {
    let before = s.counters().unwrap();
    assert_eq!(s.test_run(frame).unwrap(), XdpAction::Drop, "{what}: action");
    let want = SteerCounters { dropped: 1, ..SteerCounters::default() };
    assert_eq!(s.counters().unwrap().since(&before), want, "{what}");
}

// ---- the steering program's loss mode ----

#[test]
fn steering_loss_off_drops_nothing() {
    let s = steering(false);
    for seed in [0, 1, u64::MAX] {
        s.set_loss(0, seed).unwrap();
        let before = s.counters().unwrap();
        let p = pattern(2000, &steerable(), |f| s.test_run(f).unwrap());
        assert_eq!(dropped_count(&p), 0, "seed {seed}");
        let delta = s.counters().unwrap().since(&before);
        assert_eq!(delta, SteerCounters { passed: 2000, no_socket: 2000, ..Default::default() });
    }
}

#[test]
fn steering_loss_drops_a_seeded_fraction_of_steered_frames() {
    const SEED: u64 = 0x5eed_0001;
    let s = steering(false);
    for cpu in allowed_cpus() {
        let (p, delta) = on_cpu(cpu, || {
            s.set_loss(THIRTY_PERCENT, SEED).unwrap();
            let before = s.counters().unwrap();
            let p = pattern(RUNS, &steerable(), |f| s.test_run(f).unwrap());
            (p, s.counters().unwrap().since(&before))
        });
        let dropped = dropped_count(&p);
        assert_binomial(dropped, RUNS, THIRTY_PERCENT);
        let kept = RUNS as u64 - dropped;
        assert_eq!(delta, SteerCounters { dropped, passed: kept, no_socket: kept, ..Default::default() });
        let predicted = LossStream::new(SEED, cpu, THIRTY_PERCENT).pattern(RUNS);
        assert!(p == predicted, "CPU {cpu}: the program's pattern is not the seeded stream's");
    }
}

#[test]
fn steering_loss_replays_a_seed_and_not_another() {
    let s = steering(false);
    let cpu = allowed_cpus()[0];
    on_cpu(cpu, || {
        let frame = steerable();
        let run = |f: &[u8]| s.test_run(f).unwrap();
        s.set_loss(THIRTY_PERCENT, 1).unwrap();
        let first = pattern(2000, &frame, run);
        let next = pattern(2000, &frame, run);
        assert_ne!(first, next, "the stream goes on while the settings stay");
        s.set_loss(THIRTY_PERCENT, 1).unwrap();
        assert_eq!(pattern(2000, &frame, run), first, "setting the same seed again replays");
        s.set_loss(THIRTY_PERCENT, 2).unwrap();
        assert_ne!(pattern(2000, &frame, run), first, "another seed, another pattern");

        // Every steered frame draws (whatever its flow); a frame for the kernel draws nothing.
        s.set_loss(THIRTY_PERCENT, 1).unwrap();
        let kinds = [steerable(), tcp_frame(STACK, 80), eth(ETH_ARP, &arp(1, PEER, STACK))];
        let mixed: Vec<bool> = (0..2000)
            .map(|i| {
                assert_eq!(run(&for_the_kernel()), XdpAction::Pass, "frame for the kernel {i}");
                match run(&kinds[i % kinds.len()]) {
                    XdpAction::Drop => true,
                    XdpAction::Pass => false,
                    other => panic!("frame {i}: {other:?}"),
                }
            })
            .collect();
        assert_eq!(mixed, first, "frames for the kernel took draws, or flows changed the stream");
    });
}

#[test]
fn steering_loss_never_drops_frames_for_the_kernel() {
    let s = steering(false);
    s.set_loss(PPM_ONE, 3).unwrap(); // everything that would be steered is dropped
    check_dropped(&s, "UDP to stack", &steerable());
    check_dropped(&s, "TCP to stack", &tcp_frame(STACK, 80));
    check_dropped(&s, "ICMP echo to stack", &eth(ETH_IPV4, &ipv4(ICMP, PEER, STACK, &icmp(8, b"abcd"))));
    check_dropped(&s, "ARP for stack", &eth(ETH_ARP, &arp(1, PEER, STACK)));
    check_dropped(&s, "tagged UDP to stack", &vlan(ETH_IPV4, &ipv4(UDP, PEER, STACK, &udp(1, 2))));
    check(&s, "UDP to other", &for_the_kernel(), Expect::Pass);
    check(&s, "ARP for other", &eth(ETH_ARP, &arp(1, PEER, OTHER)), Expect::Pass);
    check(&s, "IPv6", &eth(ETH_IPV6, &[0x60; 40]), Expect::Pass);
    check(&s, "IPv4 header cut", &steerable()[..14 + 19], Expect::Malformed);
    check(&s, "UDP header cut, to stack", &steerable()[..14 + 20 + 7], Expect::Malformed);

    s.set_config(&SteerConfig { port_filter: true, socks_per_queue: 1 }).unwrap();
    check_dropped(&s, "listed port, filter on", &udp_frame(STACK, UDP_LISTED));
    check(&s, "unlisted port, filter on", &udp_frame(STACK, UNLISTED), Expect::Pass);
    check(
        &s,
        "ICMP echo, filter on",
        &eth(ETH_IPV4, &ipv4(ICMP, PEER, STACK, &icmp(8, b"abcd"))),
        Expect::Pass,
    );
    check(&s, "ARP for stack, filter on", &eth(ETH_ARP, &arp(1, PEER, STACK)), Expect::Pass);
}

#[test]
fn steering_config_and_loss_are_set_independently() {
    let s = steering(true);
    s.set_loss(PPM_ONE, 9).unwrap();
    check_dropped(&s, "loss on, filter on", &udp_frame(STACK, UDP_LISTED));
    check(&s, "loss on, filter on, unlisted", &udp_frame(STACK, UNLISTED), Expect::Pass);
    s.set_config(&SteerConfig { port_filter: false, socks_per_queue: 1 }).unwrap();
    check_dropped(&s, "set_config kept the loss", &udp_frame(STACK, UNLISTED));
    s.set_config(&SteerConfig { port_filter: true, socks_per_queue: 1 }).unwrap();
    s.set_loss(0, 9).unwrap();
    check(&s, "set_loss kept the filter", &udp_frame(STACK, UNLISTED), Expect::Pass);
    check(&s, "loss off", &udp_frame(STACK, UDP_LISTED), Expect::Steer);

    let err = s.set_loss(PPM_ONE + 1, 9).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    check(&s, "a refused set_loss changes nothing", &udp_frame(STACK, UDP_LISTED), Expect::Steer);
}

// ---- the lossy program ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Dropped,
    Passed,
    Unmatched,
}

#[track_caller]
fn check_lossy(l: &Lossy, what: &str, frame: &[u8], fate: Fate) {
    let before = l.counters().unwrap();
    let action = l.test_run(frame).unwrap();
    let delta = l.counters().unwrap().since(&before);
    let want_action = if fate == Fate::Dropped { XdpAction::Drop } else { XdpAction::Pass };
    assert_eq!(action, want_action, "{what}: action");
    let want = LossCounters {
        dropped: u64::from(fate == Fate::Dropped),
        passed: u64::from(fate == Fate::Passed),
        unmatched: u64::from(fate == Fate::Unmatched),
    };
    assert_eq!(delta, want, "{what}: expected {fate:?}");
}

fn tcp_from(src: Ipv4Addr) -> Vec<u8> {
    eth(ETH_IPV4, &ipv4(TCP, src, STACK, &tcp(40000, 80)))
}

fn udp_from(src: Ipv4Addr) -> Vec<u8> {
    eth(ETH_IPV4, &ipv4(UDP, src, STACK, &udp(40000, 7)))
}

fn lossy(cfg: LossConfig) -> Lossy {
    let l = Lossy::load().expect("load the lossy XDP program (tests run as root)");
    l.set(&cfg).unwrap();
    l
}

#[test]
fn lossy_drops_nothing_until_told() {
    let l = Lossy::load().unwrap();
    check_lossy(&l, "TCP, never set", &tcp_from(PEER), Fate::Passed);
    check_lossy(&l, "ARP, never set", &eth(ETH_ARP, &arp(1, PEER, STACK)), Fate::Unmatched);
    l.set(&LossConfig { drop_ppm: 0, seed: 4, protocol: Some(TCP), src: None }).unwrap();
    let before = l.counters().unwrap();
    let p = pattern(2000, &tcp_from(PEER), |f| l.test_run(f).unwrap());
    assert_eq!(dropped_count(&p), 0);
    assert_eq!(l.counters().unwrap().since(&before), LossCounters { passed: 2000, ..Default::default() });
}

#[test]
fn lossy_drops_a_seeded_fraction() {
    const SEED: u64 = 0x1055_0002;
    let l = lossy(LossConfig::default());
    let cfg = LossConfig { drop_ppm: THIRTY_PERCENT, seed: SEED, protocol: Some(TCP), src: Some(PEER) };
    for cpu in allowed_cpus() {
        let (p, delta) = on_cpu(cpu, || {
            l.set(&cfg).unwrap();
            let before = l.counters().unwrap();
            let p = pattern(RUNS, &tcp_from(PEER), |f| l.test_run(f).unwrap());
            (p, l.counters().unwrap().since(&before))
        });
        let dropped = dropped_count(&p);
        assert_binomial(dropped, RUNS, THIRTY_PERCENT);
        assert_eq!(delta, LossCounters { dropped, passed: RUNS as u64 - dropped, unmatched: 0 });
        let predicted = LossStream::new(SEED, cpu, THIRTY_PERCENT).pattern(RUNS);
        assert!(p == predicted, "CPU {cpu}: the program's pattern is not the seeded stream's");
    }
}

#[test]
fn lossy_replays_a_seed_and_not_another() {
    let l = Lossy::load().unwrap();
    let cfg = |seed| LossConfig { drop_ppm: THIRTY_PERCENT, seed, protocol: Some(TCP), src: None };
    on_cpu(allowed_cpus()[0], || {
        let run = |f: &[u8]| l.test_run(f).unwrap();
        l.set(&cfg(1)).unwrap();
        let first = pattern(2000, &tcp_from(PEER), run);
        assert_ne!(pattern(2000, &tcp_from(PEER), run), first, "the stream goes on");
        l.set(&cfg(1)).unwrap();
        assert_eq!(pattern(2000, &tcp_from(PEER), run), first, "setting the same seed again replays");
        l.set(&cfg(2)).unwrap();
        assert_ne!(pattern(2000, &tcp_from(PEER), run), first, "another seed, another pattern");

        // Frames that are no candidate draw nothing.
        l.set(&cfg(1)).unwrap();
        let mixed: Vec<bool> = (0..2000)
            .map(|i| {
                assert_eq!(run(&udp_from(PEER)), XdpAction::Pass, "UDP {i}");
                assert_eq!(run(&eth(ETH_ARP, &arp(1, PEER, STACK))), XdpAction::Pass, "ARP {i}");
                run(&tcp_from(OTHER)) == XdpAction::Drop
            })
            .collect();
        assert_eq!(mixed, first, "unmatched frames took draws, or the source changed the stream");
    });
}

#[test]
fn lossy_filters_by_protocol_and_source() {
    let all = |protocol, src| lossy(LossConfig { drop_ppm: PPM_ONE, seed: 5, protocol, src });

    let l = all(Some(TCP), Some(PEER));
    check_lossy(&l, "TCP from peer", &tcp_from(PEER), Fate::Dropped);
    check_lossy(&l, "UDP from peer", &udp_from(PEER), Fate::Unmatched);
    check_lossy(&l, "TCP from other", &tcp_from(OTHER), Fate::Unmatched);
    check_lossy(&l, "ARP", &eth(ETH_ARP, &arp(1, PEER, STACK)), Fate::Unmatched);
    check_lossy(&l, "IPv6", &eth(ETH_IPV6, &[0x60; 40]), Fate::Unmatched);
    check_lossy(&l, "IPv4 header cut", &tcp_from(PEER)[..14 + 19], Fate::Unmatched);
    check_lossy(&l, "bare Ethernet header", &tcp_from(PEER)[..14], Fate::Unmatched);
    let tagged = vlan(ETH_IPV4, &ipv4(TCP, PEER, STACK, &tcp(40000, 80)));
    check_lossy(&l, "tagged TCP from peer", &tagged, Fate::Dropped);
    let opts = ipv4_with(TCP, PEER, STACK, 0, &[1, 1, 1, 0], &tcp(40000, 80));
    check_lossy(&l, "TCP from peer, IHL 6", &eth(ETH_IPV4, &opts), Fate::Dropped);
    // Only the IP header is looked at: a cut TCP header is still TCP.
    check_lossy(&l, "TCP header cut", &tcp_from(PEER)[..14 + 20 + 4], Fate::Dropped);

    let l = all(Some(TCP), None);
    check_lossy(&l, "protocol only: TCP from other", &tcp_from(OTHER), Fate::Dropped);
    check_lossy(&l, "protocol only: UDP from peer", &udp_from(PEER), Fate::Unmatched);

    let l = all(None, Some(PEER));
    check_lossy(&l, "source only: UDP from peer", &udp_from(PEER), Fate::Dropped);
    check_lossy(&l, "source only: TCP from other", &tcp_from(OTHER), Fate::Unmatched);

    let l = all(None, None);
    let echo = eth(ETH_IPV4, &ipv4(ICMP, OTHER, STACK, &icmp(8, b"abcd")));
    check_lossy(&l, "no filter: ICMP from other", &echo, Fate::Dropped);
    check_lossy(&l, "no filter: ARP", &eth(ETH_ARP, &arp(1, PEER, STACK)), Fate::Unmatched);

    let err = l.set(&LossConfig { drop_ppm: PPM_ONE + 1, ..LossConfig::default() }).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    check_lossy(&l, "a refused set changes nothing", &echo, Fate::Dropped);
}

#[test]
fn lossy_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Lossy>();
}

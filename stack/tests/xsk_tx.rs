//! AF_XDP sockets on a real veth pair (root): transmit to a kernel UDP socket in the peer namespace,
//! frame accounting after the traffic, and the setup errors we can provoke.
//!
//! No XDP program is attached here, so nothing is received through AF_XDP; RX is tested with the
//! XDP program elsewhere.

use std::net::{SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use xdpstack::testbed::{run_cmd, Testbed};
use xdpstack::xsk::{
    new_shared_pools, BindMode, FrameAccount, FramePool, RxBatch, Share, SocketConfig, TxError, Umem,
    UmemConfig, XskError, XskSocket,
};

const FRAMES: usize = 5_000;
/// Datagrams sent but not yet read by the peer socket: keeps the peer's receive buffer from
/// overflowing, so every loss is a real failure.
const WINDOW: usize = 64;
const SRC_PORT: u16 = 40_000;
const DEADLINE: Duration = Duration::from_secs(20);

fn ifindex(ns: &str, ifname: &str) -> u32 {
    let out = run_cmd(std::process::Command::new("ip").args(["-n", ns, "-o", "link", "show", "dev", ifname]))
        .expect("ip link show");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(':')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ifindex in {text:?}"))
}

fn small_umem(frame_count: u32) -> Arc<Umem> {
    Umem::new(UmemConfig { frame_size: 2048, frame_count, fill_size: 64, comp_size: 256 }).expect("umem")
}

fn copy_cfg(mode: BindMode) -> SocketConfig {
    SocketConfig { rx_size: 64, tx_size: 128, mode, need_wakeup: true }
}

/// RFC 1071 Internet checksum of `data` (one's complement of the one's complement sum).
fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[derive(Clone, Copy)]
struct Flow {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: SocketAddrV4,
    dst: SocketAddrV4,
}

/// The payload of datagram `seq`: its sequence number, then a pattern; lengths vary (odd and even).
fn payload(seq: u64) -> Vec<u8> {
    let len = 8 + (seq % 97) as usize * 3;
    let mut p = seq.to_be_bytes().to_vec();
    p.extend((8..len).map(|i| (seq as usize).wrapping_mul(31).wrapping_add(i) as u8));
    p
}

/// Write an Ethernet/IPv4/UDP frame carrying `data` into `buf`; returns its length. With
/// `bad_udp_checksum` the UDP checksum is off by one.
fn build_frame(buf: &mut [u8], flow: &Flow, ip_id: u16, data: &[u8], bad_udp_checksum: bool) -> usize {
    let udp_len = 8 + data.len();
    let ip_len = 20 + udp_len;
    let frame_len = 14 + ip_len;
    let f = &mut buf[..frame_len];
    f[0..6].copy_from_slice(&flow.dst_mac);
    f[6..12].copy_from_slice(&flow.src_mac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[1] = 0;
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&ip_id.to_be_bytes());
    ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF
    ip[8] = 64;
    ip[9] = 17;
    ip[10..12].fill(0);
    ip[12..16].copy_from_slice(&flow.src.ip().octets());
    ip[16..20].copy_from_slice(&flow.dst.ip().octets());
    let ip_sum = inet_checksum(ip);
    ip[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    let udp = &mut f[34..];
    udp[0..2].copy_from_slice(&flow.src.port().to_be_bytes());
    udp[2..4].copy_from_slice(&flow.dst.port().to_be_bytes());
    udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    udp[6..8].fill(0);
    udp[8..].copy_from_slice(data);
    let mut pseudo = Vec::with_capacity(12 + udp_len);
    pseudo.extend_from_slice(&flow.src.ip().octets());
    pseudo.extend_from_slice(&flow.dst.ip().octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(udp_len as u16).to_be_bytes());
    pseudo.extend_from_slice(udp);
    let mut sum = inet_checksum(&pseudo);
    if sum == 0 {
        sum = 0xffff; // RFC 768: a computed zero is sent as all ones.
    }
    if bad_udp_checksum {
        sum = sum.wrapping_add(1).max(1);
    }
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    frame_len
}

/// `Udp: InCsumErrors` of a namespace's /proc/net/snmp.
fn udp_csum_errors(tb: &Testbed) -> u64 {
    let out = run_cmd(tb.peer_cmd("cat").arg("/proc/net/snmp")).expect("read /proc/net/snmp");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next().expect("Udp header"), udp.next().expect("Udp values"));
    let col = names.split_whitespace().position(|n| n == "InCsumErrors").expect("InCsumErrors column");
    values.split_whitespace().nth(col).and_then(|v| v.parse().ok()).expect("InCsumErrors value")
}

/// What the peer's receiver saw.
#[derive(Default)]
struct Received {
    seen: Vec<bool>,
    count: usize,
    problems: Vec<String>,
}

#[test]
fn transmit_5000_udp_datagrams_to_the_kernel_peer_and_get_every_frame_back() {
    let tb = Testbed::unique(1).expect("testbed");
    let ifx = ifindex(&tb.stack_ns, &tb.stack_if);
    let peer_sock = tb
        .in_peer_ns({
            let addr = tb.config.peer_addr;
            move || UdpSocket::bind((addr, 0))
        })
        .expect("enter peer namespace")
        .expect("bind the peer UDP socket");
    let peer_port = peer_sock.local_addr().unwrap().port();
    let flow = Flow {
        src_mac: tb.stack_mac,
        dst_mac: tb.peer_mac,
        src: SocketAddrV4::new(tb.config.stack_addr, SRC_PORT),
        dst: SocketAddrV4::new(tb.config.peer_addr, peer_port),
    };
    let csum_errors_before = udp_csum_errors(&tb);

    // The peer: read every datagram, check source and bytes, count.
    let count = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(Mutex::new(Received { seen: vec![false; FRAMES], ..Received::default() }));
    let receiver = {
        let (count, received) = (Arc::clone(&count), Arc::clone(&received));
        peer_sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut buf = [0u8; 2048];
            while count.load(Ordering::Acquire) < FRAMES && start.elapsed() < DEADLINE {
                let Ok((n, from)) = peer_sock.recv_from(&mut buf) else {
                    continue;
                };
                let mut r = received.lock().unwrap();
                let seq = buf.get(..8).map(|b| u64::from_be_bytes(b.try_into().unwrap()));
                match seq {
                    Some(seq) if (seq as usize) < FRAMES && buf[..n] == payload(seq)[..] => {
                        if std::mem::replace(&mut r.seen[seq as usize], true) {
                            r.problems.push(format!("datagram {seq} arrived twice"));
                        }
                        if from != std::net::SocketAddr::V4(flow.src) {
                            r.problems.push(format!("datagram {seq} from {from}"));
                        }
                    }
                    _ => r
                        .problems
                        .push(format!("unexpected datagram of {n} bytes: {:02x?}", &buf[..n.min(16)])),
                }
                r.count += 1;
                count.fetch_add(1, Ordering::Release);
            }
        })
    };

    let sender_count = Arc::clone(&count);
    let result = tb
        .in_stack_ns(move || -> Result<String, String> {
            let umem = small_umem(256);
            let mut pools = new_shared_pools(&umem, 1).map_err(|e| e.to_string())?;
            let pool: &mut FramePool = &mut pools[0];
            // Auto must fall back to copy mode on veth.
            let mut sock = XskSocket::new(&umem, ifx, 0, &copy_cfg(BindMode::Auto), Share::First)
                .map_err(|e| e.to_string())?;
            if sock.is_zero_copy() {
                return Err("veth bound in zero-copy mode?".into());
            }
            assert!(sock.owns_fill_ring());

            // First a frame with a wrong UDP checksum: the kernel must drop it (and count it).
            let bad = payload(u64::MAX - 1);
            sock.transmit(pool, 2048, |buf| build_frame(buf, &flow, 0, &bad, true))
                .map_err(|e| e.to_string())?;
            sock.flush().map_err(|e| e.to_string())?;

            let start = Instant::now();
            let mut next = 0usize;
            while next < FRAMES {
                if start.elapsed() > DEADLINE {
                    return Err(format!("timed out after sending {next} frames"));
                }
                sock.reap(pool);
                let unread = next - sender_count.load(Ordering::Acquire);
                let mut progressed = false;
                for _ in 0..WINDOW.saturating_sub(unread).min(FRAMES - next) {
                    let data = payload(next as u64);
                    match sock.transmit(pool, 2048, |buf| build_frame(buf, &flow, next as u16, &data, false))
                    {
                        Ok(()) => {
                            next += 1;
                            progressed = true;
                        }
                        Err(TxError::RingFull | TxError::NoFrame) => break,
                        Err(e) => return Err(e.to_string()),
                    }
                }
                sock.flush().map_err(|e| e.to_string())?;
                if !progressed {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
            // Every frame comes back through the completion ring.
            while sock.in_flight().tx > 0 && start.elapsed() < DEADLINE {
                sock.flush().map_err(|e| e.to_string())?;
                if sock.reap(pool) == 0 {
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
            let stats = sock.statistics().map_err(|e| e.to_string())?;
            let acc = FrameAccount::of(&[pool], &[&sock], &[]);
            let c = sock.counters();
            if !acc.is_balanced(&umem) || acc.free != 256 || sock.in_flight().tx != 0 {
                return Err(format!("frames missing: {acc:?}, in flight {:?}", sock.in_flight()));
            }
            if stats.tx_invalid_descs != 0 {
                return Err(format!("kernel rejected descriptors: {stats:?}"));
            }
            if c.tx_queued != FRAMES as u64 + 1 || c.completed != c.tx_queued {
                return Err(format!("counters {c:?}"));
            }
            Ok(format!("{c:?}"))
        })
        .expect("enter stack namespace");
    receiver.join().expect("receiver thread");
    let summary = result.unwrap();
    let r = received.lock().unwrap();
    assert!(r.problems.is_empty(), "{:?}", &r.problems[..r.problems.len().min(10)]);
    let missing: Vec<usize> = (0..FRAMES).filter(|&i| !r.seen[i]).collect();
    assert!(
        missing.is_empty(),
        "{} datagrams missing, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert_eq!(r.count, FRAMES, "the bad-checksum frame must not arrive");
    assert_eq!(udp_csum_errors(&tb), csum_errors_before + 1, "the peer saw the bad checksum");
    eprintln!("sent {FRAMES} datagrams: {summary}");
}

#[test]
fn bogus_interface_index_is_reported_and_the_umem_stays_usable() {
    let tb = Testbed::unique(1).expect("testbed");
    let ifx = ifindex(&tb.stack_ns, &tb.stack_if);
    tb.in_stack_ns(move || {
        let umem = small_umem(64);
        let err = XskSocket::new(&umem, 999_999, 0, &copy_cfg(BindMode::Copy), Share::First).unwrap_err();
        assert!(matches!(err, XskError::NoSuchInterface { ifindex: 999_999 }), "{err:?}");
        let io: std::io::Error = err.into();
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        assert!(io.to_string().contains("index 999999"), "{io}");
        // The failed attempt gave the registration claim back.
        XskSocket::new(&umem, ifx, 0, &copy_cfg(BindMode::Copy), Share::First).expect("valid socket");
    })
    .unwrap();
}

#[test]
fn queue_beyond_the_queue_count_names_the_count() {
    let tb = Testbed::unique(2).expect("testbed");
    let ifx = ifindex(&tb.stack_ns, &tb.stack_if);
    tb.in_stack_ns(move || {
        let umem = small_umem(64);
        let err = XskSocket::new(&umem, ifx, 2, &copy_cfg(BindMode::Auto), Share::First).unwrap_err();
        assert!(matches!(err, XskError::NoSuchQueue { queue_id: 2, queues: Some(2), .. }), "{err:?}");
        assert!(err.to_string().contains("has 2 queue(s)"), "{err}");
        XskSocket::new(&umem, ifx, 1, &copy_cfg(BindMode::Auto), Share::First).expect("queue 1 exists");
    })
    .unwrap();
}

#[test]
fn zero_copy_on_veth_is_unsupported() {
    let tb = Testbed::unique(1).expect("testbed");
    let ifx = ifindex(&tb.stack_ns, &tb.stack_if);
    tb.in_stack_ns(move || {
        let umem = small_umem(64);
        let err = XskSocket::new(&umem, ifx, 0, &copy_cfg(BindMode::ZeroCopy), Share::First).unwrap_err();
        assert!(matches!(err, XskError::ZeroCopyUnsupported { .. }), "{err:?}");
        assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    })
    .unwrap();
}

#[test]
fn a_second_umem_on_a_busy_queue_gets_ebusy() {
    let tb = Testbed::unique(1).expect("testbed");
    let ifx = ifindex(&tb.stack_ns, &tb.stack_if);
    tb.in_stack_ns(move || {
        let (a, b) = (small_umem(64), small_umem(64));
        let _first =
            XskSocket::new(&a, ifx, 0, &copy_cfg(BindMode::Copy), Share::First).expect("first socket");
        let err = XskSocket::new(&b, ifx, 0, &copy_cfg(BindMode::Copy), Share::First).unwrap_err();
        assert!(matches!(err, XskError::QueueBusy { queue_id: 0, .. }), "{err:?}");
        assert_eq!(std::io::Error::from(err).kind(), std::io::ErrorKind::ResourceBusy);
    })
    .unwrap();
}

#[test]
fn sockets_share_one_umem_across_and_within_queues() {
    let tb = Testbed::unique(3).expect("testbed");
    let ifx = ifindex(&tb.stack_ns, &tb.stack_if);
    let flow = Flow {
        src_mac: tb.stack_mac,
        dst_mac: tb.peer_mac,
        src: SocketAddrV4::new(tb.config.stack_addr, SRC_PORT),
        dst: SocketAddrV4::new(tb.config.peer_addr, 9), // nobody listens: the kernel drops them
    };
    tb.in_stack_ns(move || {
        let umem = small_umem(256);
        let mut pools = new_shared_pools(&umem, 2).unwrap();
        let cfg = copy_cfg(BindMode::Auto);
        let mut owner = XskSocket::new(&umem, ifx, 0, &cfg, Share::First).expect("owner of queue 0");
        let mut same = XskSocket::new(&umem, ifx, 0, &cfg, Share::SameQueue { queue_owner: &owner })
            .expect("second socket on queue 0");
        let other = XskSocket::new(&umem, ifx, 1, &cfg, Share::NewQueue { umem_owner: &owner })
            .expect("socket on queue 1");
        assert!(owner.owns_fill_ring());
        assert!(!same.owns_fill_ring(), "the second socket of a queue gets no fill ring");
        assert!(other.owns_fill_ring(), "a new queue gets its own fill ring");
        assert!(!same.is_zero_copy() && !other.is_zero_copy());

        // Misuse is refused before the kernel sees it: a second fill/completion pair on a queue (the
        // kernel would say EINVAL), a "same queue" owner on another queue or without a fill ring, an
        // owner of another UMEM, and a second first socket.
        let bad = |share| match XskSocket::new(&umem, ifx, 0, &cfg, share) {
            Err(XskError::InvalidConfig(why)) => why,
            other => panic!("expected InvalidConfig, got {other:?}"),
        };
        assert!(bad(Share::NewQueue { umem_owner: &owner }).contains("Share::SameQueue"));
        assert!(bad(Share::SameQueue { queue_owner: &other }).contains("fill-ring owner"));
        assert!(bad(Share::SameQueue { queue_owner: &same }).contains("fill-ring owner"));
        assert!(bad(Share::First).contains("already registered"));
        // A queue that holds a socket of this UMEM is busy for a new fill/completion pair.
        let err = XskSocket::new(&umem, ifx, 1, &cfg, Share::NewQueue { umem_owner: &owner }).unwrap_err();
        assert!(matches!(err, XskError::QueueBusy { queue_id: 1, .. }), "{err:?}");
        let foreign = small_umem(64);
        let foreign_owner = XskSocket::new(&foreign, ifx, 2, &cfg, Share::First).expect("queue 2 is free");
        let err = XskSocket::new(&umem, ifx, 2, &cfg, Share::SameQueue { queue_owner: &foreign_owner });
        assert!(
            matches!(err, Err(XskError::InvalidConfig(ref why)) if why.contains("another UMEM")),
            "{err:?}"
        );
        drop(foreign_owner);

        // The owner fills for the queue; the other socket gets nothing to do.
        let (p0, p1) = pools.split_at_mut(1);
        let (p0, p1) = (&mut p0[0], &mut p1[0]);
        assert_eq!(same.refill(p1), 0);
        assert_eq!(owner.refill(p0), 64);

        // Frames sent through the second socket complete on the owner's completion ring.
        let data = payload(7);
        for i in 0..10 {
            same.transmit(p1, 2048, |buf| build_frame(buf, &flow, i, &data, false)).unwrap();
        }
        same.flush().unwrap();
        let start = Instant::now();
        let mut reaped = 0;
        while reaped < 10 && start.elapsed() < Duration::from_secs(5) {
            assert_eq!(same.reap(p1), 0, "no completion ring on the second socket");
            reaped += owner.reap(p0);
        }
        assert_eq!(reaped, 10);
        assert_eq!(same.in_flight().tx, 10);
        assert_eq!(owner.in_flight().tx, -10);
        let batch = RxBatch::new(&umem, 8);
        let acc = FrameAccount::of(&[p0, p1], &[&owner, &same, &other], &[&batch]);
        assert!(acc.is_balanced(&umem), "{acc:?}");
        assert_eq!(acc.fill, 64, "the owner's fill ring holds 64 frames");
    })
    .unwrap();
}

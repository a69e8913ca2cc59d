//! The XDP steering program on a real veth testbed (root): attach and detach through BPF links,
//! the errors a user can fix, counters under real traffic from the kernel peer, and a real AF_XDP
//! socket in the XSKMAP proving that the loaded program picks the slot `xdp_prog::xsk_index`
//! predicts from `xdp_prog::flow_hash`.

use std::ffi::CString;
use std::io::{self, BufRead, BufReader};
use std::mem::size_of;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use xdp_prog::{
    attached_program_id, flow_hash, xsk_index, AddrKind, AttachedMode, Error, SteerConfig, Steering,
    XdpAction, XdpLink, XdpMode,
};
use xdpstack::testbed::{in_netns, run_cmd, Testbed};

const PEER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const STACK: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const OTHER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 3);

fn testbed() -> Testbed {
    let tb = Testbed::unique(1).expect("veth testbed (tests run as root)");
    assert_eq!((tb.config.peer_addr, tb.config.stack_addr), (PEER, STACK));
    tb
}

/// Interface index of `name` in the calling thread's network namespace.
fn ifindex(name: &str) -> u32 {
    let c = CString::new(name).unwrap();
    // Safety: `c` is a NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    assert_ne!(index, 0, "no interface {name}: {}", io::Error::last_os_error());
    index
}

/// `ip -n <stack_ns> link show dev <stack_if>`.
fn ip_link_show(tb: &Testbed) -> String {
    let out =
        run_cmd(Command::new("ip").args(["-n", &tb.stack_ns, "link", "show", "dev", &tb.stack_if])).unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Load the program and attach it to the stack's veth end (inside the stack namespace).
fn load_and_attach(tb: &Testbed, mode: XdpMode) -> (Steering, Result<XdpLink, Error>) {
    let stack_if = tb.stack_if.clone();
    tb.in_stack_ns(move || {
        let steering = Steering::load().expect("load");
        let link = steering.attach(ifindex(&stack_if), mode);
        (steering, link)
    })
    .unwrap()
}

fn stack_attached_id(tb: &Testbed) -> Option<u32> {
    let stack_if = tb.stack_if.clone();
    tb.in_stack_ns(move || attached_program_id(ifindex(&stack_if)).unwrap()).unwrap()
}

#[test]
fn attach_native_and_generic_and_detach_on_drop() {
    let tb = testbed();
    for (mode, attached, ip_word, other_word) in [
        (XdpMode::Native, AttachedMode::Native, " xdp ", "xdpgeneric"),
        (XdpMode::Generic, AttachedMode::Generic, " xdpgeneric ", " xdp "),
    ] {
        let (steering, link) = load_and_attach(&tb, mode);
        let link = link.unwrap_or_else(|e| panic!("{mode:?} attach: {e}"));
        assert_eq!(link.mode(), attached);
        let id = steering.program_id().unwrap();
        let shown = ip_link_show(&tb);
        assert!(shown.contains(ip_word) && !shown.contains(other_word), "{mode:?}: {shown}");
        assert!(shown.contains(&format!("prog/xdp id {id} ")), "{mode:?}: {shown}");
        assert_eq!(stack_attached_id(&tb), Some(id));

        drop(link);
        let shown = ip_link_show(&tb);
        assert!(!shown.contains("prog/xdp"), "{mode:?} after drop: {shown}");
        assert_eq!(stack_attached_id(&tb), None);
    }
}

#[test]
fn second_attach_names_the_attached_program() {
    let tb = testbed();
    let (first, link) = load_and_attach(&tb, XdpMode::Native);
    let _link = link.unwrap();
    let first_id = first.program_id().unwrap();
    for mode in [XdpMode::Native, XdpMode::Generic, XdpMode::Auto] {
        let (_second, err) = load_and_attach(&tb, mode);
        match err {
            Err(e @ Error::AlreadyAttached { .. }) => {
                let msg = e.to_string();
                let Error::AlreadyAttached { program_id, ifname, .. } = e else { unreachable!() };
                assert_eq!(program_id, Some(first_id), "{mode:?}");
                assert_eq!(ifname, tb.stack_if);
                assert!(msg.contains(&format!("program {first_id}")), "{msg}");
                assert!(msg.contains(&format!("ip link set dev {} xdp off", tb.stack_if)), "{msg}");
            }
            other => panic!("{mode:?}: expected AlreadyAttached, got {other:?}"),
        }
    }
}

#[test]
fn large_peer_mtu_refuses_native_and_auto_falls_back_to_generic() {
    let tb = testbed();
    run_cmd(Command::new("ip").args(["-n", &tb.peer_ns, "link", "set", "dev", &tb.peer_if, "mtu", "9000"]))
        .unwrap();
    let (_steering, native) = load_and_attach(&tb, XdpMode::Native);
    match native {
        Err(e @ Error::MtuTooLarge { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("lower the MTU") && msg.contains("generic mode"), "{msg}");
            let io: io::Error = e.into();
            assert_eq!(io.kind(), io::ErrorKind::InvalidInput);
        }
        other => panic!("expected MtuTooLarge, got {other:?}"),
    }
    let (_steering, auto) = load_and_attach(&tb, XdpMode::Auto);
    let auto = auto.expect("Auto falls back to generic");
    assert_eq!(auto.mode(), AttachedMode::Generic);
    assert!(ip_link_show(&tb).contains(" xdpgeneric "));
}

/// Send three ICMP echo requests from the peer to `dst`, via a static neighbour entry pointing at
/// the stack's MAC (the stack side has no kernel address and answers no ARP).
fn ping_from_peer(tb: &Testbed, dst: Ipv4Addr) {
    let mac = tb.stack_mac.map(|b| format!("{b:02x}")).join(":");
    let neigh = ["-n", &tb.peer_ns, "neigh", "replace", &dst.to_string(), "lladdr", &mac];
    run_cmd(Command::new("ip").args(neigh).args(["dev", &tb.peer_if, "nud", "permanent"])).unwrap();
    // Nothing answers: ping exits non-zero, which is expected here.
    let out = tb
        .peer_cmd("ping")
        .args(["-n", "-c", "3", "-i", "0.05", "-W", "0.2", &dst.to_string()])
        .stdin(Stdio::null())
        .output()
        .expect("run ping in the peer namespace");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("3 packets transmitted"), "ping {dst}: {text}");
}

#[test]
fn ping_moves_the_counters() {
    let tb = testbed();
    for mode in [XdpMode::Native, XdpMode::Generic] {
        let (steering, link) = load_and_attach(&tb, mode);
        let _link = link.unwrap();
        steering.add_addr(STACK, AddrKind::Unicast).unwrap();

        let before = steering.counters().unwrap();
        ping_from_peer(&tb, STACK);
        let to_stack = steering.counters().unwrap().since(&before);
        // Steered to an empty XSKMAP slot: passed and counted no_socket. (Other frames, such as the
        // peer's IPv6 neighbour discovery, may add to `passed`.)
        assert_eq!(to_stack.no_socket, 3, "{mode:?}: {to_stack:?}");
        assert_eq!((to_stack.steered, to_stack.malformed), (0, 0), "{mode:?}: {to_stack:?}");
        assert!(to_stack.passed >= 3, "{mode:?}: {to_stack:?}");

        let before = steering.counters().unwrap();
        ping_from_peer(&tb, OTHER);
        let to_other = steering.counters().unwrap().since(&before);
        assert_eq!(to_other.no_socket, 0, "{mode:?}: {to_other:?}");
        assert_eq!((to_other.steered, to_other.malformed), (0, 0), "{mode:?}: {to_other:?}");
        assert!(to_other.passed >= 3, "{mode:?}: {to_other:?}");
    }
}

// ---- a real AF_XDP socket in the XSKMAP ----

/// A minimal AF_XDP socket: a 16-frame UMEM, rings sized but never mapped, bound in copy mode.
/// Frames redirected to it are counted as `rx_dropped` (its fill ring is empty), which is enough to
/// see that they reached this socket.
struct TestXsk {
    fd: OwnedFd,
    // Dropped after `fd` (declaration order): the socket goes before the memory it registered.
    _umem: UmemArea,
}

/// An anonymous mapping holding the UMEM, unmapped on drop.
struct UmemArea(NonNull<libc::c_void>);

impl Drop for UmemArea {
    fn drop(&mut self) {
        // Safety: the area was mapped with this length in TestXsk::bind and nothing uses it now.
        unsafe { libc::munmap(self.0.as_ptr(), UMEM_FRAMES * FRAME_SIZE) };
    }
}

// Safety: the pointer is only used to unmap the area, from whichever thread drops it.
unsafe impl Send for UmemArea {}

const UMEM_FRAMES: usize = 16;
const FRAME_SIZE: usize = 4096;

impl TestXsk {
    fn bind(ifindex: u32, queue: u32) -> io::Result<TestXsk> {
        fn check(rc: libc::c_int) -> io::Result<()> {
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }
        fn setsockopt<T>(fd: &OwnedFd, name: libc::c_int, value: &T) -> io::Result<()> {
            // Safety: `value` points to a live T of the given size for the duration of the call.
            check(unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_XDP,
                    name,
                    (value as *const T).cast(),
                    size_of::<T>() as libc::socklen_t,
                )
            })
        }
        // Safety: plain socket(2); the returned fd is owned below.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        check(raw)?;
        // Safety: `raw` is a new descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let len = UMEM_FRAMES * FRAME_SIZE;
        // Safety: an anonymous private mapping, unmapped by UmemArea's drop.
        let area = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if area == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let xsk =
            TestXsk { fd, _umem: UmemArea(NonNull::new(area).expect("mmap returned a non-null address")) };
        let reg = libc::xdp_umem_reg {
            addr: area as u64,
            len: len as u64,
            chunk_size: FRAME_SIZE as u32,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        setsockopt(&xsk.fd, libc::XDP_UMEM_REG, &reg)?;
        let ring = UMEM_FRAMES as u32;
        setsockopt(&xsk.fd, libc::XDP_UMEM_FILL_RING, &ring)?;
        setsockopt(&xsk.fd, libc::XDP_UMEM_COMPLETION_RING, &ring)?;
        setsockopt(&xsk.fd, libc::XDP_RX_RING, &ring)?;
        let addr = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: libc::XDP_COPY,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        // Safety: `addr` is a valid sockaddr_xdp of the given length.
        check(unsafe {
            libc::bind(
                xsk.fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_xdp).cast(),
                size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        })?;
        Ok(xsk)
    }

    /// Frames that reached this socket and were dropped for want of a fill-ring buffer.
    fn rx_dropped(&self) -> u64 {
        // Safety: xdp_statistics is plain integers; all-zero is a valid value.
        let mut stats: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::xdp_statistics>() as libc::socklen_t;
        // Safety: `stats` and `len` are valid for writes of the sizes given.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_STATISTICS,
                (&mut stats as *mut libc::xdp_statistics).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "XDP_STATISTICS: {}", io::Error::last_os_error());
        stats.rx_dropped
    }
}

fn eth_ipv4(proto: u8, src: Ipv4Addr, dst: Ipv4Addr, frag: u16, l4: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45, 0];
    f.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 1]);
    f.extend_from_slice(&frag.to_be_bytes());
    f.extend_from_slice(&[64, proto, 0, 0]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(l4);
    f
}

fn udp_frame(src_port: u16, dst_port: u16) -> Vec<u8> {
    let mut udp = src_port.to_be_bytes().to_vec();
    udp.extend_from_slice(&dst_port.to_be_bytes());
    udp.extend_from_slice(&[0, 8, 0, 0]);
    eth_ipv4(17, PEER, STACK, 0, &udp)
}

fn arp_frame(sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
    f.extend_from_slice(&sender.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f
}

#[test]
fn program_picks_the_slot_flow_hash_predicts() {
    const SPQ: u32 = 4;
    let tb = testbed();
    let stack_if = tb.stack_if.clone();
    let (steering, xsk) = tb
        .in_stack_ns(move || {
            let steering = Steering::load().unwrap();
            steering.set_config(&SteerConfig { port_filter: false, socks_per_queue: SPQ }).unwrap();
            steering.add_addr(STACK, AddrKind::Unicast).unwrap();
            let xsk = TestXsk::bind(ifindex(&stack_if), 0).expect("bind an AF_XDP socket");
            (steering, xsk)
        })
        .unwrap();

    // (frame, the flow the program must hash it as)
    let mut cases: Vec<(Vec<u8>, u32)> = (0..48u16)
        .map(|i| {
            let (sp, dp) = (40000 + 7 * i, 7 + i % 3);
            (udp_frame(sp, dp), flow_hash(PEER, STACK, 17, sp, dp))
        })
        .collect();
    // ICMP, fragments and ARP hash without ports (ARP: sender and target, protocol 0).
    let echo = [8, 0, 0, 0, 0, 1, 0, 1];
    cases.push((eth_ipv4(1, PEER, STACK, 0, &echo), flow_hash(PEER, STACK, 1, 0, 0)));
    let first_fragment = &udp_frame(40000, 7)[34..];
    cases.push((eth_ipv4(17, PEER, STACK, 0x2000, first_fragment), flow_hash(PEER, STACK, 17, 0, 0)));
    cases.push((arp_frame(PEER, STACK), flow_hash(PEER, STACK, 0, 0, 0)));

    let mut redirected = 0;
    let before = steering.counters().unwrap();
    for slot in 0..SPQ {
        steering.set_socket(slot, xsk.fd.as_fd()).unwrap();
        for (i, (frame, hash)) in cases.iter().enumerate() {
            let expected = if xsk_index(0, SPQ, *hash) == slot {
                redirected += 1;
                XdpAction::Redirect
            } else {
                XdpAction::Pass
            };
            assert_eq!(steering.test_run(frame).unwrap(), expected, "case {i}, socket in slot {slot}");
        }
        steering.clear_socket(slot).unwrap();
    }
    let delta = steering.counters().unwrap().since(&before);
    assert_eq!(redirected, cases.len() as u64, "each frame went to exactly one slot");
    assert_eq!(delta.steered, redirected);
    assert_eq!(delta.no_socket, cases.len() as u64 * u64::from(SPQ - 1));

    // Real traffic: the peer's echo requests reach the socket in the predicted slot.
    let slot = xsk_index(0, SPQ, flow_hash(PEER, STACK, 1, 0, 0));
    steering.set_socket(slot, xsk.fd.as_fd()).unwrap();
    let stack_if = tb.stack_if.clone();
    let (steering, link) = tb
        .in_stack_ns(move || {
            let link = steering.attach(ifindex(&stack_if), XdpMode::Auto).unwrap();
            (steering, link)
        })
        .unwrap();
    let (before, dropped_before) = (steering.counters().unwrap(), xsk.rx_dropped());
    ping_from_peer(&tb, STACK);
    let delta = steering.counters().unwrap().since(&before);
    assert_eq!((delta.steered, delta.no_socket), (3, 0), "{:?}: {delta:?}", link.mode());
    assert_eq!(xsk.rx_dropped() - dropped_before, 3, "the frames reached the socket");
}

/// A BPF link is detached when its process dies, even by SIGKILL. The test runs itself as the
/// child (selected by an environment variable), which attaches and waits to be killed.
#[test]
fn link_is_detached_when_the_process_is_killed() {
    const CHILD: &str = "XDP_STEERING_TEST_CHILD";
    if let Ok(spec) = std::env::var(CHILD) {
        let (ns, ifname) = spec.split_once(' ').expect("namespace and interface");
        let ifname = ifname.to_owned();
        in_netns(ns, move || {
            let steering = Steering::load().unwrap();
            let _link = steering.attach(ifindex(&ifname), XdpMode::Native).unwrap();
            println!("ATTACHED {}", steering.program_id().unwrap());
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        })
        .unwrap();
        return;
    }

    /// Kills (SIGKILL) and reaps the child however the test ends.
    struct Child(std::process::Child);
    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    let tb = testbed();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "link_is_detached_when_the_process_is_killed", "--nocapture"])
        .env(CHILD, format!("{} {}", tb.stack_ns, tb.stack_if))
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Child(child);
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let id: u32 = loop {
        let line = match lines.next() {
            Some(line) => line.unwrap(),
            None => {
                let status = child.0.wait().unwrap();
                panic!("child ended ({status}) without attaching");
            }
        };
        if let Some(id) = line.strip_prefix("ATTACHED ") {
            break id.trim().parse().unwrap();
        }
    };
    assert_eq!(stack_attached_id(&tb), Some(id));
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while stack_attached_id(&tb).is_some() {
        assert!(Instant::now() < deadline, "program {id} still attached after its process died");
        std::thread::sleep(Duration::from_millis(20));
    }
}

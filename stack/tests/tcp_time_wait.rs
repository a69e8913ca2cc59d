//! TIME-WAIT against the Linux kernel on the veth testbed: who holds it after each close order, the
//! records that replace our connections in it, and reconnecting over the kernel's.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener as KernelListener, TcpStream as KernelStream};
use std::time::{Duration, Instant};

use common::*;
use xdpstack::services::{self, Service};
use xdpstack::testbed::Testbed;
use xdpstack::{TcpListener, TcpStream};

/// Connections of the peer's kernel in `state`, from `ss`.
fn kernel_states(tb: &Testbed, state: &str) -> String {
    peer_run(tb, "ss", &["-tanH", "state", state])
}

#[test]
fn close_order_decides_who_holds_time_wait() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    // The stack closes first: it holds TIME-WAIT; the kernel's socket goes through LAST-ACK to CLOSED.
    let kl = tb.in_peer_ns(|| KernelListener::bind("10.77.0.1:6200")).unwrap().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = kl.accept().unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        drop(s); // the kernel's close, after our FIN
        rest
    });
    let mut c = TcpStream::connect(&stack, "10.77.0.1:6200").unwrap();
    c.write_all(b"bye").unwrap();
    drop(c);
    assert_eq!(server.join().unwrap(), b"bye");
    assert!(wait_for(Duration::from_secs(3), || kernel_states(&tb, "last-ack").is_empty()));
    assert!(kernel_states(&tb, "time-wait").is_empty(), "the passive closer does not enter TIME-WAIT");
    // The kernel closes first: the kernel holds TIME-WAIT.
    let _svc = services::start(&stack, Service::EchoTcp(7)).unwrap();
    let k = kernel_connect(&tb, "10.77.0.2:7").unwrap();
    k.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    (&k).read_to_end(&mut rest).unwrap();
    drop(k);
    assert!(
        wait_for(Duration::from_secs(3), || kernel_states(&tb, "time-wait").contains("10.77.0.2:7")),
        "{}",
        peer_run(&tb, "ss", &["-tan"])
    );
    finish(stack);
}

/// A kernel TCP connection from the peer namespace, from `10.77.0.1:port` (SO_REUSEADDR), to `addr`.
fn kernel_connect_from(tb: &Testbed, port: u16, addr: SocketAddr) -> std::io::Result<KernelStream> {
    use std::os::fd::FromRawFd;
    let s = tb
        .in_peer_ns(move || -> std::io::Result<KernelStream> {
            // Safety: a fresh socket descriptor, owned by the KernelStream made from it at once.
            let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Safety: fd is ours and not owned by anything else yet.
            let s = unsafe { KernelStream::from_raw_fd(fd) };
            let one: libc::c_int = 1;
            // Safety: a valid int option value of the right length.
            let r = unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_REUSEADDR,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let sin = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: port.to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from(ip).to_be() },
                sin_zero: [0; 8],
            };
            let SocketAddr::V4(to) = addr else { unreachable!("IPv4 only") };
            for (a, bind) in
                [(sin("10.77.0.1".parse().unwrap(), port), true), (sin(*to.ip(), to.port()), false)]
            {
                let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
                let p = (&a as *const libc::sockaddr_in).cast();
                // Safety: p points to a sockaddr_in of length len.
                let r = unsafe {
                    if bind {
                        libc::bind(fd, p, len)
                    } else {
                        libc::connect(fd, p, len)
                    }
                };
                if r != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(s)
        })
        .unwrap()?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(s)
}

#[test]
fn time_wait_records_answer_for_their_connection_and_yield_to_a_new_syn() {
    use xdpstack::tcp::State;
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let listener = TcpListener::bind(&stack, "0.0.0.0:6300").unwrap();
    // The stack's side speaks and closes first, so it is the one in TIME-WAIT.
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"hello").unwrap();
        }
    });
    let (port, to): (u16, SocketAddr) = (41234, "10.77.0.2:6300".parse().unwrap());
    let peer: std::net::SocketAddrV4 = format!("10.77.0.1:{port}").parse().unwrap();
    let in_time_wait = || {
        stack.socket_table().unwrap().iter().any(|s| s.state == Some(State::TimeWait) && s.peer == Some(peer))
    };
    let talk = || {
        let mut k = kernel_connect_from(&tb, port, to).unwrap();
        let mut got = Vec::new();
        k.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"hello");
        drop(k);
        assert!(wait_for(Duration::from_secs(3), || kernel_states(&tb, "last-ack").is_empty()));
        assert!(wait_for(Duration::from_secs(3), in_time_wait), "{:?}", stack.socket_table());
    };
    talk();
    // The kernel opens the same 4-tuple again at once: its SYN is newer than anything the record
    // knows (RFC 6191), so the record gives way and the new connection works.
    talk();
    server.join().unwrap();
    assert_eq!(counter(&stack, "TcpPassiveOpens"), 2);
    // Out-of-place data on the record's 4-tuple gets the record's last ACK. The kernel, whose
    // socket is gone, answers that ACK with a reset whose sequence number is the ACK's: exactly the
    // record's RCV.NXT, which ends the record (a wrong ACK would leave it in place).
    let stray = xdpstack::wire::TcpRepr::new(
        port,
        6300,
        xdpstack::wire::TcpSeqNumber(777),
        Some(xdpstack::wire::TcpSeqNumber(1)),
        xdpstack::wire::TcpFlags::PSH,
        64240,
    );
    tb.inject_from_peer(vec![tcp_frame(&tb, tb.config.peer_addr, &stray, b"stray")]).unwrap();
    assert!(
        wait_for(Duration::from_secs(3), || counter(&stack, "TWKilled") == 1 && !in_time_wait()),
        "TWKilled {}, table {:?}",
        counter(&stack, "TWKilled"),
        stack.socket_table()
    );
    assert_eq!(counter(&stack, "TW"), 0, "no record reached the end of its wait");
    finish(stack);
}

#[test]
fn reconnecting_over_a_kernel_time_wait_needs_no_retransmission() {
    let tb = testbed(1);
    let stack = start(&tb, |_| {});
    let kl = tb.in_peer_ns(|| KernelListener::bind("10.77.0.1:6400")).unwrap().unwrap();
    const ROUNDS: usize = 6;
    // The kernel speaks and closes first: it holds TIME-WAIT for each 4-tuple.
    let server = std::thread::spawn(move || {
        for _ in 0..ROUNDS {
            let (mut s, _) = kl.accept().unwrap();
            s.write_all(b"hi").unwrap();
        }
    });
    for round in 0..ROUNDS {
        // The same local port every time: the kernel's TIME-WAIT from the round before accepts the
        // new SYN only if its timestamp is newer (RFC 6191, PAWS); otherwise it answers with an ACK,
        // we reset, and the SYN goes again a second later. Some rounds come quickly, the last ones
        // after a pause longer than a second (a timestamp clock that restarts per connection at an
        // offset drawn from the ISN looks monotonic for under a second, then jumps back).
        if round >= ROUNDS - 2 {
            std::thread::sleep(Duration::from_millis(1500));
        }
        let mut c = None;
        let deadline = Instant::now() + Duration::from_secs(3);
        while c.is_none() {
            let mut sock = xdpstack::TcpSocket::new(&stack);
            sock.bind("10.77.0.2:45000").unwrap();
            match sock.connect("10.77.0.1:6400") {
                Ok(s) => c = Some(s),
                // The previous round's connection still holds the tuple (LAST-ACK).
                Err(e) if e.kind() == ErrorKind::AddrInUse && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        let mut c = c.unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"hi", "round {round}");
    }
    server.join().unwrap();
    assert!(kernel_states(&tb, "time-wait").contains("10.77.0.2:45000"));
    assert_eq!(counter(&stack, "TcpActiveOpens"), ROUNDS as u64);
    assert_eq!(counter(&stack, "TcpRetransSegs"), 0, "a SYN had to be sent again: {:?}", nonzero(&stack));
    finish(stack);
}

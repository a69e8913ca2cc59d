//! The floors: a bare AF_XDP reflector and a bare AF_XDP client, no stack at all.
//!
//! [`Reflector`]: the XDP program steers frames for the server address to one AF_XDP socket; a thread
//! busy-polls it, swaps the Ethernet, IPv4 and UDP addresses of each UDP frame and sends it straight
//! back. The IPv4 and UDP checksums stay valid: the one's-complement sums do not change when source
//! and destination swap. Whatever the stack's server costs on top of this loop is the stack's own
//! overhead.
//!
//! [`Pinger`]: the client side of the same idea, for the stack-stack floor: a prebuilt UDP frame goes
//! out of one AF_XDP socket and the caller spins on the socket until the answer is back. Against the
//! reflector, that is the shortest round trip user space can make over this path.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use xdp_prog::{AddrKind, SteerConfig, Steering, XdpLink, XdpMode};
use xdpstack::netdev::NetDev;
use xdpstack::xsk::{self, BindMode, RxBatch, Share, SocketConfig, Umem, UmemConfig, XskSocket};

use crate::topo::pin;

/// One AF_XDP socket on queue 0 of an interface, with the XDP program steering `addr` to it: what
/// the reflector and the pinger are built on.
struct Bare {
    sock: XskSocket,
    pool: xsk::FramePool,
    umem: Arc<Umem>,
    link: XdpLink,
    steering: Steering,
}

impl Bare {
    fn open(ifname: &str, addr: Ipv4Addr) -> io::Result<Bare> {
        let dev = NetDev::lookup(ifname)?;
        let steering = Steering::load()?;
        steering.set_config(&SteerConfig { port_filter: false, socks_per_queue: 1 })?;
        steering.add_addr(addr, AddrKind::Unicast)?;
        let umem =
            Umem::new(UmemConfig { frame_size: 2048, frame_count: 4096, fill_size: 2048, comp_size: 2048 })?;
        let mut pools = xsk::new_shared_pools(&umem, 1)?;
        let pool = pools.pop().ok_or_else(|| io::Error::other("no frame pool"))?;
        let cfg = SocketConfig { rx_size: 2048, tx_size: 2048, mode: BindMode::Auto, need_wakeup: true };
        let sock = XskSocket::new(&umem, dev.ifindex, 0, &cfg, Share::First)?;
        steering.set_socket(0, sock.fd())?;
        let link = steering.attach(dev.ifindex, XdpMode::Auto)?;
        Ok(Bare { sock, pool, umem, link, steering })
    }
}

/// A running reflector.
pub struct Reflector {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<u64>>>,
    _link: XdpLink,
    _steering: Steering,
}

impl Reflector {
    /// Start on `ifname` (in the calling thread's namespace) for `addr`, polling on `core`.
    pub fn start(ifname: &str, addr: Ipv4Addr, core: usize) -> io::Result<Reflector> {
        let Bare { mut sock, mut pool, umem, link, steering } = Bare::open(ifname, addr)?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || -> io::Result<u64> {
            pin(core);
            let mut batch = RxBatch::new(&umem, 64);
            let mut reflected = 0u64;
            sock.refill(&mut pool);
            while !s.load(Ordering::Relaxed) {
                sock.reap(&mut pool);
                sock.refill(&mut pool);
                let n = sock.recv(&mut batch, 64);
                for i in 0..n {
                    let frame = batch.frame_mut(i);
                    if reflect(frame) {
                        let len = frame.len();
                        let f: &[u8] = frame;
                        if sock
                            .transmit(&mut pool, len, |buf| {
                                buf[..len].copy_from_slice(f);
                                len
                            })
                            .is_ok()
                        {
                            reflected += 1;
                        }
                    }
                }
                batch.recycle_into(&mut pool);
                if n > 0 {
                    let _ = sock.flush();
                }
            }
            Ok(reflected)
        });
        Ok(Reflector { stop, thread: Some(thread), _link: link, _steering: steering })
    }

    /// Stop; returns how many frames were reflected.
    pub fn stop(mut self) -> io::Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| io::Error::other("reflector panicked"))?,
            None => Ok(0),
        }
    }
}

/// Where a [`Pinger`] sends from and to.
#[derive(Debug, Clone, Copy)]
pub struct PingerPath {
    /// Our MAC (the interface's).
    pub src_mac: [u8; 6],
    /// The server's MAC.
    pub dst_mac: [u8; 6],
    /// Our address and port (the XDP program steers this address to the pinger).
    pub src: SocketAddrV4,
    /// The server.
    pub dst: SocketAddrV4,
}

/// A bare AF_XDP UDP client: one socket, busy-polled by the caller's thread.
pub struct Pinger {
    sock: XskSocket,
    pool: xsk::FramePool,
    batch: RxBatch,
    frame: Vec<u8>,
    _link: XdpLink,
    _steering: Steering,
}

impl Pinger {
    /// Open on `ifname` (in the calling thread's namespace), steering `path.src`'s address to itself,
    /// with UDP payloads of `size` bytes.
    pub fn start(ifname: &str, path: PingerPath, size: usize) -> io::Result<Pinger> {
        if size > 1472 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the pinger sends single frames"));
        }
        let Bare { mut sock, mut pool, umem, link, steering } = Bare::open(ifname, *path.src.ip())?;
        sock.refill(&mut pool);
        let batch = RxBatch::new(&umem, 64);
        Ok(Pinger { sock, pool, batch, frame: udp_frame(&path, size), _link: link, _steering: steering })
    }

    /// Send the frame and spin until a UDP frame of the same length comes back.
    pub fn round_trip(&mut self) -> io::Result<()> {
        let f = &self.frame;
        self.sock
            .transmit(&mut self.pool, f.len(), |buf| {
                buf[..f.len()].copy_from_slice(f);
                f.len()
            })
            .map_err(|_| io::Error::other("pinger: no TX room"))?;
        self.sock.flush()?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            self.sock.reap(&mut self.pool);
            self.sock.refill(&mut self.pool);
            let n = self.sock.recv(&mut self.batch, 64);
            let back = (0..n).any(|i| self.batch.frame(i).len() == self.frame.len());
            self.batch.recycle_into(&mut self.pool);
            if back {
                return Ok(());
            }
            if n == 0 && std::time::Instant::now() > deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "pinger: no answer in 2 s"));
            }
        }
    }
}

/// An Ethernet/IPv4/UDP frame along `path` with `size` payload bytes and full checksums.
fn udp_frame(path: &PingerPath, size: usize) -> Vec<u8> {
    use xdpstack::wire::*;
    let (src, dst) = (*path.src.ip(), *path.dst.ip());
    let udp = UdpRepr { src_port: path.src.port(), dst_port: path.dst.port(), payload_len: size };
    let mut u = vec![0u8; 8 + size];
    for (i, b) in u[8..].iter_mut().enumerate() {
        *b = (i * 7) as u8;
    }
    udp.emit(&mut UdpPacket::new_unchecked(&mut u[..]), src, dst, ChecksumMode::Full);
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::Udp,
        payload_len: u.len(),
        ttl: 64,
        ident: 1,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        dscp_ecn: 0,
    };
    let mut f = vec![0u8; 14 + 20 + u.len()];
    EthernetRepr {
        src: EthernetAddress(path.src_mac),
        dst: EthernetAddress(path.dst_mac),
        ethertype: EtherType::Ipv4,
        vlan: None,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut f[..14]));
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut f[14..34]));
    f[34..].copy_from_slice(&u);
    f
}

/// Swap addresses of an untagged Ethernet/IPv4 (no options)/UDP frame in place; false for anything
/// else.
fn reflect(f: &mut [u8]) -> bool {
    if f.len() < 42 || f[12..14] != [0x08, 0x00] || f[14] != 0x45 || f[23] != 17 {
        return false;
    }
    for i in 0..6 {
        f.swap(i, 6 + i);
    }
    for i in 0..4 {
        f.swap(26 + i, 30 + i);
    }
    for i in 0..2 {
        f.swap(34 + i, 36 + i);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_swaps_and_keeps_checksums_valid() {
        use xdpstack::wire::*;
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let udp = UdpRepr { src_port: 1234, dst_port: 7777, payload_len: 5 };
        let mut u = vec![0u8; 13];
        u[8..].copy_from_slice(b"hello");
        udp.emit(&mut UdpPacket::new_unchecked(&mut u[..]), a, b, ChecksumMode::Full);
        let ip = Ipv4Repr {
            src_addr: a,
            dst_addr: b,
            protocol: IpProtocol::Udp,
            payload_len: 13,
            ttl: 64,
            ident: 1,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
            dscp_ecn: 0,
        };
        let mut f = vec![0u8; 14 + 20 + 13];
        EthernetRepr {
            src: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EtherType::Ipv4,
            vlan: None,
        }
        .emit(&mut EthernetFrame::new_unchecked(&mut f[..14]));
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut f[14..34]));
        f[34..].copy_from_slice(&u);
        assert!(reflect(&mut f));
        let p = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert_eq!((p.src_addr(), p.dst_addr()), (b, a));
        assert!(p.verify_checksum());
        let up = UdpPacket::new_checked(p.payload()).unwrap();
        assert_eq!((up.src_port(), up.dst_port()), (7777, 1234));
        assert!(up.verify_checksum(b, a));
        assert!(!reflect(&mut [0u8; 20]));
    }

    #[test]
    fn pinger_frames_are_valid_udp() {
        use xdpstack::wire::*;
        let path = PingerPath {
            src_mac: [2, 0, 0, 0, 0, 3],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src: "10.77.0.3:40000".parse().unwrap(),
            dst: "10.77.0.2:7777".parse().unwrap(),
        };
        let f = udp_frame(&path, 64);
        assert_eq!(f.len(), 14 + 20 + 8 + 64);
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(e.dst_addr(), EthernetAddress([2, 0, 0, 0, 0, 2]));
        let p = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.dst_addr(), Ipv4Addr::new(10, 77, 0, 2));
        let u = UdpPacket::new_checked(p.payload()).unwrap();
        assert!(u.verify_checksum(p.src_addr(), p.dst_addr()));
        assert_eq!((u.src_port(), u.dst_port()), (40000, 7777));
    }
}

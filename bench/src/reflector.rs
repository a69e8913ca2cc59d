//! The floor: a bare AF_XDP reflector with no stack at all. The XDP program steers frames for the
//! server address to one AF_XDP socket; a thread busy-polls it, swaps the Ethernet, IPv4 and UDP
//! addresses of each UDP frame and sends it straight back. The IPv4 and UDP checksums stay valid: the
//! one's-complement sums do not change when source and destination swap. Whatever the stack's server
//! costs on top of this loop is the stack's own overhead.

use std::io;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use xdp_prog::{AddrKind, SteerConfig, Steering, XdpLink, XdpMode};
use xdpstack::netdev::NetDev;
use xdpstack::xsk::{self, BindMode, RxBatch, Share, SocketConfig, Umem, UmemConfig, XskSocket};

use crate::topo::pin;

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
        let dev = NetDev::lookup(ifname)?;
        let steering = Steering::load()?;
        steering.set_config(&SteerConfig { port_filter: false, socks_per_queue: 1 })?;
        steering.add_addr(addr, AddrKind::Unicast)?;
        let umem =
            Umem::new(UmemConfig { frame_size: 2048, frame_count: 4096, fill_size: 2048, comp_size: 2048 })?;
        let mut pools = xsk::new_shared_pools(&umem, 1)?;
        let mut pool = pools.pop().ok_or_else(|| io::Error::other("no frame pool"))?;
        let cfg = SocketConfig { rx_size: 2048, tx_size: 2048, mode: BindMode::Auto, need_wakeup: true };
        let mut sock = XskSocket::new(&umem, dev.ifindex, 0, &cfg, Share::First)?;
        steering.set_socket(0, sock.fd())?;
        let link = steering.attach(dev.ifindex, XdpMode::Auto)?;
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
}

//! The worker's sockets as the protocol engine sees them: demultiplexing tables keyed by socket
//! address (hash lookups, never a scan) and delivery into the sockets' lock-free queues.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Instant;

use super::tcp::TcpTable;
use super::Command;
use crate::iface::{Delivery, Endpoints, IcmpError, IcmpErrorKind, RawInput, TcpInput, UdpInput};
use crate::observe::{SocketInfo, SocketKind};
use crate::socket::bufpool::BufPool;
use crate::socket::{Datagram, RawPacket, RawShared, UdpShared};
use crate::stack::{StackShared, Wait};
use crate::wire::IpProtocol;

/// A small, fast hasher for socket-address keys (not exposed to attacker-chosen collisions in a way
/// that matters: keys are our own bound addresses).
#[derive(Default, Clone, Copy)]
pub(crate) struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u8(*b);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64);
    }
    fn write_u16(&mut self, i: u16) {
        self.write_u64(i as u64);
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type AddrMap<K, V> = HashMap<K, V, BuildHasherDefault<AddrHasher>>;

/// UDP sockets by local address; `0.0.0.0:port` is the wildcard binding.
#[derive(Debug, Default)]
pub(crate) struct UdpTable {
    by_local: AddrMap<SocketAddrV4, Arc<UdpShared>>,
}

impl UdpTable {
    pub(crate) fn insert(&mut self, s: Arc<UdpShared>) {
        self.by_local.insert(s.local, s);
    }

    pub(crate) fn remove(&mut self, local: SocketAddrV4, fd: i32) {
        if self.by_local.get(&local).is_some_and(|s| s.fd == fd) {
            self.by_local.remove(&local);
        }
    }

    /// Describe every socket (for tools; allocates).
    pub(crate) fn snapshot(&self, workers: usize, out: &mut Vec<SocketInfo>) {
        out.extend(self.by_local.values().map(|s| SocketInfo {
            kind: SocketKind::Udp,
            state: None,
            local: s.local,
            peer: s.peer(),
            recv_q: s.rx.bytes(),
            send_q: 0,
            fd: Some(s.fd),
            // Datagrams arrive at any worker; they leave through the socket's home worker.
            worker: Some(s.fd as usize % workers.max(1)),
            id: s.id,
            tcp: None,
        }));
    }

    /// The socket for `dst`: the exact binding first, then the wildcard.
    #[inline]
    pub(crate) fn lookup(&self, dst: SocketAddrV4) -> Option<&Arc<UdpShared>> {
        self.by_local
            .get(&dst)
            .or_else(|| self.by_local.get(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, dst.port())))
    }
}

/// Raw sockets by IP protocol number. Usually empty: the engine checks [`RawTable::is_empty`] first.
#[derive(Debug, Default)]
pub(crate) struct RawTable {
    by_protocol: AddrMap<u8, Vec<Arc<RawShared>>>,
    count: usize,
}

impl RawTable {
    pub(crate) fn insert(&mut self, s: Arc<RawShared>) {
        self.by_protocol.entry(s.protocol).or_default().push(s);
        self.count += 1;
    }

    pub(crate) fn remove(&mut self, protocol: u8, fd: i32) {
        if let Some(list) = self.by_protocol.get_mut(&protocol) {
            let before = list.len();
            list.retain(|s| s.fd != fd);
            self.count -= before - list.len();
            if list.is_empty() {
                self.by_protocol.remove(&protocol);
            }
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Describe every raw socket (for `ss -w` and `net/raw`): the local "port" is the protocol, as
    /// Linux shows it.
    pub(crate) fn snapshot(&self, workers: usize, out: &mut Vec<SocketInfo>) {
        out.extend(self.by_protocol.values().flatten().map(|s| SocketInfo {
            kind: SocketKind::Raw(s.protocol),
            state: None,
            local: SocketAddrV4::new(s.local(), u16::from(s.protocol)),
            peer: None,
            recv_q: s.rx.bytes(),
            send_q: 0,
            fd: Some(s.fd),
            // Datagrams arrive at any worker; they leave through the socket's home worker.
            worker: Some(s.fd as usize % workers.max(1)),
            // Unique while the descriptor is open, which is as long as the socket is in the table.
            id: s.fd as u64,
            tcp: None,
        }));
    }

    /// Copy `d` into every raw socket of its protocol that accepts it; true when one matched.
    fn deliver(&self, d: &RawInput<'_>, bufs: &BufPool, counters: &crate::counters::Counters) -> bool {
        let Some(list) = self.by_protocol.get(&d.protocol) else {
            return false;
        };
        let mut matched = false;
        for sock in list.iter().filter(|s| s.accepts(d.dst)) {
            if !matched {
                // Counted before the copy becomes visible, so that a reader who got it sees the count.
                matched = true;
                counters.raw_in_delivers.inc();
            }
            let mut buf = bufs.get(d.header.len() + d.payload.len());
            buf.extend_from_slice(d.header);
            buf.extend_from_slice(d.payload);
            match sock.rx.push(RawPacket { src: d.src, buf }) {
                Ok(()) => sock.event.notify(),
                Err(rejected) => {
                    bufs.put(rejected.buf);
                    counters.raw_rcvbuf_errors.inc();
                }
            }
        }
        matched
    }
}

/// Borrowed view handed to the engine for one batch.
pub(crate) struct WorkerEndpoints<'a> {
    pub udp: &'a UdpTable,
    pub raw: &'a RawTable,
    pub tcp: &'a mut TcpTable,
    pub bufs: &'a BufPool,
    pub stack: &'a StackShared,
    pub index: usize,
}

impl Endpoints for WorkerEndpoints<'_> {
    #[inline]
    fn udp(&mut self, _now: Instant, d: UdpInput<'_>) -> Delivery {
        let Some(sock) = self.udp.lookup(d.dst) else {
            return Delivery::NoSocket;
        };
        // A connected socket only hears from its peer (as in Linux).
        if sock.peer().is_some_and(|p| p != d.src) {
            return Delivery::NoSocket;
        }
        let buf = self.bufs.copy_of(d.payload);
        match sock.rx.push(Datagram { src: d.src, buf }) {
            Ok(()) => {
                sock.event.notify();
                Delivery::Delivered
            }
            Err(rejected) => {
                self.bufs.put(rejected.buf);
                Delivery::QueueFull
            }
        }
    }

    #[inline]
    fn raw(&mut self, _now: Instant, d: RawInput<'_>) -> bool {
        // The common case, no raw socket open: one branch, no allocation.
        if self.raw.is_empty() {
            return false;
        }
        self.raw.deliver(&d, self.bufs, &self.stack.workers[self.index].counters)
    }

    fn tcp(&mut self, now: Instant, seg: TcpInput<'_>) {
        let owner = self.stack.tcp_owner(seg.dst, seg.src);
        if owner != self.index {
            // Only reassembled fragments (hashed without ports by the XDP program) land here.
            let cmd = Command::TcpForeign {
                src: seg.src,
                dst: seg.dst,
                repr: seg.repr,
                payload: self.bufs.copy_of(seg.payload),
            };
            let _ = self.stack.push_command(owner, cmd, Wait::NonBlocking);
            return;
        }
        self.tcp.input(now, seg, self.stack);
    }

    fn icmp_error(&mut self, _now: Instant, err: IcmpError) {
        if err.protocol == IpProtocol::Tcp {
            // Without the quoted sequence number (a non-first fragment) it cannot be checked.
            if let Some(seq) = err.tcp_seq {
                if self.stack.tcp_owner(err.local, err.remote) == self.index {
                    self.tcp.icmp_error(err.local, err.remote, seq, err.kind);
                }
            }
            return;
        }
        if err.protocol != IpProtocol::Udp {
            return;
        }
        // Linux reports ICMP errors on UDP only to connected sockets (without IP_RECVERR).
        let Some(sock) = self.udp.lookup(err.local) else {
            return;
        };
        if sock.peer() != Some(err.remote) {
            return;
        }
        let errno = match err.kind {
            IcmpErrorKind::PortUnreachable | IcmpErrorKind::ProtocolUnreachable => libc::ECONNREFUSED,
            IcmpErrorKind::HostUnreachable => libc::EHOSTUNREACH,
            IcmpErrorKind::FragNeeded(_) => libc::EMSGSIZE,
            IcmpErrorKind::TimeExceeded | IcmpErrorKind::ParameterProblem => libc::EHOSTUNREACH,
        };
        sock.set_error(errno);
    }
}

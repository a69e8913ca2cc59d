//! The descriptor table: every socket gets the lowest free integer, as in the Berkeley model.

use std::net::SocketAddrV4;
use std::sync::{Arc, Weak};

use super::tcp::{ListenerShared, TcpShared};
use super::{Proto, RawShared, UdpShared};

/// What a descriptor names.
#[derive(Debug, Clone)]
pub(crate) enum SocketEntry {
    /// Allocated while the socket is being set up.
    Reserved,
    /// A UDP socket.
    Udp(Weak<UdpShared>),
    /// A TCP connection.
    Tcp(Weak<TcpShared>),
    /// A TCP listener.
    TcpListener(Weak<ListenerShared>),
    /// A raw IP socket.
    Raw(Weak<RawShared>),
}

/// Descriptor -> socket.
#[derive(Debug, Default)]
pub(crate) struct FdTable {
    slots: Vec<Option<SocketEntry>>,
}

impl FdTable {
    /// Take the lowest free descriptor.
    pub(crate) fn alloc(&mut self, entry: SocketEntry) -> i32 {
        match self.slots.iter().position(Option::is_none) {
            Some(i) => {
                self.slots[i] = Some(entry);
                i as i32
            }
            None => {
                self.slots.push(Some(entry));
                (self.slots.len() - 1) as i32
            }
        }
    }

    pub(crate) fn set(&mut self, fd: i32, entry: SocketEntry) {
        if let Some(slot) = self.slots.get_mut(fd as usize) {
            *slot = Some(entry);
        }
    }

    pub(crate) fn free(&mut self, fd: i32) {
        if let Some(slot) = self.slots.get_mut(fd as usize) {
            *slot = None;
        }
    }

    /// Live entries, in descriptor order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (i32, &SocketEntry)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| s.as_ref().map(|e| (i as i32, e)))
    }
}

/// One row of the socket table, as tools show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketSummary {
    /// The descriptor.
    pub fd: i32,
    /// Transport protocol.
    pub proto: Proto,
    /// Local address.
    pub local: SocketAddrV4,
    /// Connected peer, if any.
    pub peer: Option<SocketAddrV4>,
    /// Bytes (UDP payloads, TCP) or connections (listener) waiting to be read.
    pub recv_queue: usize,
    /// Bytes not yet acknowledged (TCP).
    pub send_queue: usize,
    /// TCP state (None for UDP).
    pub state: Option<crate::tcp::State>,
}

impl SocketEntry {
    /// Wake whoever waits on this socket (at shutdown).
    pub(crate) fn wake(&self) {
        match self {
            SocketEntry::Udp(w) => w.upgrade().map(|s| s.event.wake_all()),
            SocketEntry::Tcp(w) => w.upgrade().map(|s| s.event.wake_all()),
            SocketEntry::TcpListener(w) => w.upgrade().map(|s| s.event.wake_all()),
            SocketEntry::Raw(w) => w.upgrade().map(|s| s.event.wake_all()),
            SocketEntry::Reserved => None,
        };
    }

    pub(crate) fn summary(&self, fd: i32) -> Option<SocketSummary> {
        match self {
            // The TCP/UDP table; raw sockets have no ports to show in it.
            SocketEntry::Reserved | SocketEntry::Raw(_) => None,
            SocketEntry::Udp(w) => w.upgrade().map(|s| SocketSummary {
                fd,
                proto: Proto::Udp,
                local: s.local,
                peer: s.peer(),
                recv_queue: s.rx.bytes(),
                send_queue: 0,
                state: None,
            }),
            SocketEntry::Tcp(w) => w.upgrade().map(|s| {
                let q = s.queues.load(std::sync::atomic::Ordering::Relaxed);
                SocketSummary {
                    fd,
                    proto: Proto::Tcp,
                    local: s.local,
                    peer: Some(s.remote),
                    recv_queue: (q >> 32) as usize,
                    send_queue: q as u32 as usize,
                    state: Some(s.state()),
                }
            }),
            SocketEntry::TcpListener(w) => w.upgrade().map(|s| SocketSummary {
                fd,
                proto: Proto::Tcp,
                local: s.local,
                peer: None,
                recv_queue: s.pending(),
                send_queue: s.params.backlog,
                state: Some(crate::tcp::State::Listen),
            }),
        }
    }
}

/// Convenience for the UDP socket.
pub(crate) fn udp_entry(s: &Arc<UdpShared>) -> SocketEntry {
    SocketEntry::Udp(Arc::downgrade(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_descriptor_first() {
        let mut t = FdTable::default();
        let e = || SocketEntry::Reserved;
        assert_eq!(t.alloc(e()), 0);
        assert_eq!(t.alloc(e()), 1);
        assert_eq!(t.alloc(e()), 2);
        t.free(1);
        assert_eq!(t.alloc(e()), 1);
        assert_eq!(t.iter().count(), 3);
    }
}

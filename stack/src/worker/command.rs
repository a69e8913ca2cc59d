//! Messages into a worker's command queue.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use super::tcp::{ConnectRequest, Kick};
use crate::socket::tcp::ListenerShared;
use crate::socket::{RawShared, UdpShared};
use crate::wire::{EthernetAddress, TcpRepr};

/// A request from an application thread (or another worker) to a worker.
#[derive(Debug)]
pub(crate) enum Command {
    /// Add a UDP socket to the demultiplexing table; acknowledged through `UdpShared::registered`.
    UdpRegister(Arc<UdpShared>),
    /// Remove the UDP socket with descriptor `fd` bound to `local`.
    UdpUnregister { local: SocketAddrV4, fd: i32 },
    /// Send a datagram; the buffer goes back to the stack's pool afterwards.
    UdpSend { src: SocketAddrV4, dst: SocketAddrV4, buf: Vec<u8> },
    /// Add a raw socket to the worker's table; acknowledged through `RawShared::registered`.
    RawRegister(Arc<RawShared>),
    /// Remove the raw socket with descriptor `fd` for `protocol`.
    RawUnregister { protocol: u8, fd: i32 },
    /// Send from a raw socket: a payload for the engine to wrap in a header (source `src` or the
    /// route's), or a datagram with the application's header; the buffer goes back to the pool.
    RawSend { src: Option<Ipv4Addr>, dst: Ipv4Addr, protocol: u8, header_included: bool, buf: Vec<u8> },
    /// Open a TCP connection (on the worker that owns its 4-tuple).
    TcpConnect(Box<ConnectRequest>),
    /// Add a TCP listener; acknowledged through `ListenerShared::registered`.
    TcpListen(Arc<ListenerShared>),
    /// Remove the listener with this id.
    TcpUnlisten { local: SocketAddrV4, id: u64 },
    /// The application acted on connection `id` at `tuple` (local, remote).
    TcpKick { tuple: (SocketAddrV4, SocketAddrV4), id: u64, what: Kick },
    /// A TCP segment that reached another worker (a reassembled fragment): process it here.
    TcpForeign { src: SocketAddrV4, dst: SocketAddrV4, repr: TcpRepr, payload: Vec<u8> },
    /// A neighbour another worker learned.
    Neighbor { ip: Ipv4Addr, mac: EthernetAddress },
    /// Describe every socket of the worker (allocates; only tools ask).
    Snapshot(std::sync::mpsc::SyncSender<crate::observe::WorkerSnapshot>),
    /// Leave the loop.
    Stop,
}

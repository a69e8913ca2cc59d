//! Messages into a worker's command queue.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use crate::socket::UdpShared;
use crate::wire::EthernetAddress;

/// A request from an application thread (or another worker) to a worker.
#[derive(Debug)]
pub(crate) enum Command {
    /// Add a UDP socket to the demultiplexing table; acknowledged through `UdpShared::registered`.
    UdpRegister(Arc<UdpShared>),
    /// Remove the UDP socket with descriptor `fd` bound to `local`.
    UdpUnregister { local: SocketAddrV4, fd: i32 },
    /// Send a datagram; the buffer goes back to the stack's pool afterwards.
    UdpSend { src: SocketAddrV4, dst: SocketAddrV4, buf: Vec<u8> },
    /// A neighbour another worker learned.
    Neighbor { ip: Ipv4Addr, mac: EthernetAddress },
    /// Leave the loop.
    Stop,
}

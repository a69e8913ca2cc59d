//! xdpstack: a kernel-bypass TCP/UDP/IPv4 network stack on AF_XDP.
//!
//! An XDP program steers the frames that belong to the stack into AF_XDP sockets; pinned worker threads
//! run Ethernet, ARP, IPv4, ICMP and UDP on them; applications use sockets shaped like `std::net`'s,
//! talking to the workers through lock-free queues. See `docs/design.md` for the map of the code.
#![warn(missing_docs)]

mod config;
pub mod counters;
pub mod iface;
mod kneigh;
pub mod netdev;
pub mod observe;
pub mod phy;
pub mod plan;
pub mod rand;
pub mod services;
pub mod socket;
mod stack;
mod sys;
pub mod tcp;
pub mod testbed;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod wire;
mod worker;
pub mod xsk;

pub use config::Config;
pub use observe::{SocketInfo, SocketKind};
pub use socket::{
    Events, Interest, PollEvent, Pollable, Poller, Proto, RawSocket, TcpListener, TcpSocket, TcpStream,
    Trigger, UdpSocket,
};
pub use stack::{ShutdownReport, Stack, StackInfo};
pub use tcp::conn::TcpInfo;
pub use worker::WorkerReport;
pub use xdp_prog::{AttachedMode, XdpMode};

//! xdpstack: a kernel-bypass TCP/UDP/IPv4 network stack on AF_XDP.
#![warn(missing_docs)]

pub mod testbed;
pub mod wire;
pub mod xsk;

//! Facts about a network interface, read with ioctls on a throw-away socket so that they answer for the
//! calling thread's network namespace (sysfs would answer for whoever mounted it).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use crate::sys::{self, IfReq, IfReqQuery};

/// What the stack needs to know about its interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetDev {
    /// Interface name.
    pub name: String,
    /// Kernel interface index.
    pub ifindex: u32,
    /// Hardware address.
    pub mac: [u8; 6],
    /// MTU (IP bytes per frame).
    pub mtu: u32,
    /// RX queues the driver uses (the AF_XDP sockets bind to these).
    pub rx_queues: u32,
}

fn control_socket() -> io::Result<OwnedFd> {
    sys::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
}

impl NetDev {
    /// Look up `name` in the calling thread's network namespace.
    pub fn lookup(name: &str) -> io::Result<NetDev> {
        let cname = CString::new(name).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("bad interface name {name:?}"))
        })?;
        let ifindex = sys::if_nametoindex(&cname).map_err(|_| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no interface named {name:?} in this network namespace (list them with `ip link`)"),
            )
        })?;
        let sock = control_socket()?;
        let mut req = IfReq::new(name)?;
        sys::ioctl_ifreq(sock.as_fd(), IfReqQuery::HwAddr, &mut req)?;
        // struct sockaddr: sa_family (2 bytes), then the address.
        let family = u16::from_ne_bytes([req.data[0], req.data[1]]);
        if family != libc::ARPHRD_ETHER {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "interface {name} is not Ethernet (ARPHRD {family}); xdpstack needs an Ethernet device"
                ),
            ));
        }
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&req.data[2..8]);

        let mut req = IfReq::new(name)?;
        sys::ioctl_ifreq(sock.as_fd(), IfReqQuery::Mtu, &mut req)?;
        let mtu = i32::from_ne_bytes([req.data[0], req.data[1], req.data[2], req.data[3]]) as u32;

        let rx_queues = channels(name).map_or(1, |c| (c.rx + c.combined).max(1));
        Ok(NetDev { name: name.to_string(), ifindex, mac, mtu, rx_queues })
    }
}

/// Channel counts of an interface (ETHTOOL_GCHANNELS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Channels {
    pub rx: u32,
    pub tx: u32,
    pub combined: u32,
}

/// The channel counts of `name` in the calling thread's network namespace.
pub(crate) fn channels(name: &str) -> io::Result<Channels> {
    let named = IfReq::new(name)?;
    let sock = control_socket()?;
    let ch = sys::ethtool_channels(sock.as_fd(), &named)?;
    Ok(Channels { rx: ch.rx_count, tx: ch.tx_count, combined: ch.combined_count })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_not_ethernet_and_missing_is_named() {
        let err = NetDev::lookup("lo").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        let err = NetDev::lookup("nosuchif0").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("ip link"));
        assert!(NetDev::lookup("this-name-is-far-too-long").is_err());
    }
}

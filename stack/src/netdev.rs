//! Facts about a network interface, read with ioctls on a throw-away socket so that they answer for the
//! calling thread's network namespace (sysfs would answer for whoever mounted it).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

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

// linux/sockios.h and linux/ethtool.h
const SIOCGIFMTU: libc::c_ulong = 0x8921;
const SIOCGIFHWADDR: libc::c_ulong = 0x8927;
const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// struct ethtool_channels (linux/ethtool.h).
#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

/// struct ifreq, with the union seen as raw bytes.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: [u8; 24],
}

impl IfReq {
    fn new(name: &str) -> io::Result<IfReq> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad interface name {name:?}")));
        }
        let mut req = IfReq { name: [0; libc::IFNAMSIZ], data: [0; 24] };
        for (d, s) in req.name.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        Ok(req)
    }
}

fn control_socket() -> io::Result<OwnedFd> {
    // Safety: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // Safety: `fd` is a new descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ioctl(sock: &OwnedFd, request: libc::c_ulong, req: &mut IfReq) -> io::Result<()> {
    // Safety: `req` is a properly sized, initialized struct ifreq that outlives the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), request as _, req as *mut IfReq) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl NetDev {
    /// Look up `name` in the calling thread's network namespace.
    pub fn lookup(name: &str) -> io::Result<NetDev> {
        let cname = CString::new(name).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("bad interface name {name:?}"))
        })?;
        // Safety: `cname` is a valid NUL-terminated string for the duration of the call.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no interface named {name:?} in this network namespace (list them with `ip link`)"),
            ));
        }
        let sock = control_socket()?;
        let mut req = IfReq::new(name)?;
        ioctl(&sock, SIOCGIFHWADDR, &mut req)?;
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
        ioctl(&sock, SIOCGIFMTU, &mut req)?;
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

/// `struct ifreq` (linux/if.h) with the `ifr_data` pointer member of its union, padded to 40 bytes.
#[repr(C)]
struct IfReqData {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

/// The channel counts of `name` in the calling thread's network namespace.
pub(crate) fn channels(name: &str) -> io::Result<Channels> {
    let named = IfReq::new(name)?;
    let mut ch = EthtoolChannels { cmd: ETHTOOL_GCHANNELS, ..Default::default() };
    let mut req =
        IfReqData { name: named.name, data: (&mut ch as *mut EthtoolChannels).cast(), _pad: [0; 16] };
    let sock = control_socket()?;
    // Safety: SIOCETHTOOL reads an ifreq whose ifr_data points at a `struct ethtool_channels`; both live
    // on this stack frame for the duration of the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL as _, &mut req as *mut IfReqData) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Channels { rx: ch.rx_count, tx: ch.tx_count, combined: ch.combined_count })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_struct_sizes() {
        assert_eq!(std::mem::size_of::<IfReq>(), 40);
        assert_eq!(std::mem::size_of::<IfReqData>(), 40);
        assert_eq!(std::mem::size_of::<EthtoolChannels>(), 36);
    }

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

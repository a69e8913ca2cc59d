//! The kernel's neighbour table over rtnetlink, for shared-address mode: there the kernel keeps the
//! address and owns ARP (the XDP program passes ARP to it), so the stack asks the kernel to resolve a
//! next hop (`RTM_NEWNEIGH` with `NTF_USE`, which makes the kernel send its own ARP request) and reads
//! the answer back (`RTM_GETNEIGH`). Formats from linux/netlink.h, linux/rtnetlink.h, linux/neighbour.h.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use crate::sys::{self, SockAddr};

const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const NTF_USE: u8 = 0x01;
/// NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT: states with a usable address.
const NUD_USABLE: u16 = 0x02 | 0x04 | 0x08 | 0x10 | 0x80;

const NLMSG_HDR: usize = 16;
const NDMSG: usize = 12;

/// An rtnetlink socket in the calling thread's network namespace.
#[derive(Debug)]
pub struct KernelNeighbors {
    fd: OwnedFd,
    ifindex: u32,
    seq: u32,
}

impl KernelNeighbors {
    /// Open a socket for interface `ifindex`.
    pub fn open(ifindex: u32) -> io::Result<KernelNeighbors> {
        let fd = sys::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE)?;
        // A reply that never comes fails the receive after 200 ms instead of hanging the caller.
        let _ = sys::set_recv_timeout(fd.as_fd(), Duration::from_millis(200));
        Ok(KernelNeighbors { fd, ifindex, seq: 1 })
    }

    fn message(&mut self, kind: u16, flags: u16, ip: Ipv4Addr) -> Vec<u8> {
        self.seq = self.seq.wrapping_add(1);
        let len = NLMSG_HDR + NDMSG + 8;
        let mut m = vec![0u8; len];
        m[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
        m[4..6].copy_from_slice(&kind.to_ne_bytes());
        m[6..8].copy_from_slice(&flags.to_ne_bytes());
        m[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        // struct ndmsg: family, pad, pad, ifindex, state, flags, type.
        let nd = &mut m[NLMSG_HDR..NLMSG_HDR + NDMSG];
        nd[0] = libc::AF_INET as u8;
        nd[4..8].copy_from_slice(&(self.ifindex as i32).to_ne_bytes());
        if kind == RTM_NEWNEIGH {
            nd[10] = NTF_USE;
        }
        // NDA_DST attribute.
        let a = &mut m[NLMSG_HDR + NDMSG..];
        a[0..2].copy_from_slice(&8u16.to_ne_bytes());
        a[2..4].copy_from_slice(&NDA_DST.to_ne_bytes());
        a[4..8].copy_from_slice(&ip.octets());
        m
    }

    fn send(&self, msg: &[u8]) -> io::Result<()> {
        // The kernel's address: all zero but the family.
        let mut sa = libc::sockaddr_nl::zeroed();
        sa.nl_family = libc::AF_NETLINK as u16;
        sys::sendto(self.fd.as_fd(), msg, &sa)?;
        Ok(())
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        sys::recv(self.fd.as_fd(), buf)
    }

    /// Ask the kernel to resolve `ip` (it sends an ARP request unless it already knows the answer).
    pub fn request(&mut self, ip: Ipv4Addr) -> io::Result<()> {
        let msg = self.message(RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK, ip);
        self.send(&msg)?;
        let mut buf = [0u8; 512];
        let n = self.recv(&mut buf)?;
        match parse_error(&buf[..n]) {
            Some(0) | None => Ok(()),
            Some(e) => Err(io::Error::from_raw_os_error(-e)),
        }
    }

    /// The MAC the kernel has for `ip`, if it has a usable one.
    pub fn lookup(&mut self, ip: Ipv4Addr) -> io::Result<Option<[u8; 6]>> {
        let msg = self.message(RTM_GETNEIGH, NLM_F_REQUEST, ip);
        self.send(&msg)?;
        let mut buf = [0u8; 1024];
        let n = self.recv(&mut buf)?;
        Ok(parse_neighbor(&buf[..n]))
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// The errno of an NLMSG_ERROR message (0 is an ACK), None for other messages.
fn parse_error(b: &[u8]) -> Option<i32> {
    if u16_at(b, 4)? != NLMSG_ERROR {
        return None;
    }
    Some(i32::from_ne_bytes(b.get(16..20)?.try_into().ok()?))
}

/// NDA_LLADDR of an RTM_NEWNEIGH reply, if the entry's state is usable.
fn parse_neighbor(b: &[u8]) -> Option<[u8; 6]> {
    if u16_at(b, 4)? != RTM_NEWNEIGH {
        return None;
    }
    let len = (u32::from_ne_bytes(b.get(0..4)?.try_into().ok()?) as usize).min(b.len());
    let state = u16_at(b, NLMSG_HDR + 8)?;
    if state & NUD_USABLE == 0 {
        return None;
    }
    let mut at = NLMSG_HDR + NDMSG;
    while at + 4 <= len {
        let alen = u16_at(b, at)? as usize;
        let kind = u16_at(b, at + 2)?;
        if alen < 4 {
            return None;
        }
        if kind == NDA_LLADDR && alen == 4 + 6 {
            return b.get(at + 4..at + 10)?.try_into().ok();
        }
        at += (alen + 3) & !3;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers_never_panic_and_read_replies() {
        for n in 0..64 {
            let junk: Vec<u8> = (0..n).map(|i| (i * 37) as u8).collect();
            let _ = parse_error(&junk);
            let _ = parse_neighbor(&junk);
        }
        // A reply: header, ndmsg with state REACHABLE, NDA_DST, NDA_LLADDR.
        let mut m = vec![0u8; NLMSG_HDR + NDMSG + 8 + 12];
        let len = m.len() as u32;
        m[0..4].copy_from_slice(&len.to_ne_bytes());
        m[4..6].copy_from_slice(&RTM_NEWNEIGH.to_ne_bytes());
        m[NLMSG_HDR + 8..NLMSG_HDR + 10].copy_from_slice(&0x02u16.to_ne_bytes());
        let a = NLMSG_HDR + NDMSG;
        m[a..a + 2].copy_from_slice(&8u16.to_ne_bytes());
        m[a + 2..a + 4].copy_from_slice(&NDA_DST.to_ne_bytes());
        m[a + 8..a + 10].copy_from_slice(&10u16.to_ne_bytes());
        m[a + 10..a + 12].copy_from_slice(&NDA_LLADDR.to_ne_bytes());
        m[a + 12..a + 18].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
        assert_eq!(parse_neighbor(&m), Some([2, 0, 0, 0, 0, 9]));
        // FAILED state: not usable.
        m[NLMSG_HDR + 8..NLMSG_HDR + 10].copy_from_slice(&0x20u16.to_ne_bytes());
        assert_eq!(parse_neighbor(&m), None);
    }
}

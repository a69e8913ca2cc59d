//! [`Bounce`]: answer UDP inside the driver (`src/bpf/bounce.bpf.c`), the in-kernel floor of a path
//! for benchmarks.

use std::mem::MaybeUninit;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};

use libbpf_rs::skel::{OpenSkel as _, SkelBuilder as _};
use libbpf_rs::{MapCore as _, MapFlags, MapHandle};

use crate::bounce_skel::BounceSkelBuilder;
use crate::prog::{self, map_handle};
use crate::{link, Error, XdpAction, XdpLink, XdpMode};

/// Indices of the per-CPU counters (`BOUNCE_CTR_*` in bounce.bpf.c).
const CTR_BOUNCED: usize = 0;
const CTR_PASSED: usize = 1;
const CTR_COUNT: usize = 2;

/// [`Bounce`]'s counters, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BounceCounters {
    /// UDP frames sent back (XDP_TX).
    pub bounced: u64,
    /// Everything else, passed to the kernel.
    pub passed: u64,
}

/// The bounce program, loaded, with its maps: attached to an interface, it sends every untagged IPv4
/// UDP frame for the configured address straight back with addresses and ports swapped (XDP_TX), and
/// passes everything else. Until [`set_addr`](Bounce::set_addr) it passes everything.
///
/// On veth, XDP_TX frames reach the other end only if that end runs an XDP program too (any: a
/// `Bounce` without an address passes everything); otherwise the kernel drops them silently.
#[derive(Debug)]
pub struct Bounce {
    prog: OwnedFd,
    config: MapHandle,
    counters: MapHandle,
}

impl Bounce {
    /// Load the program and create its maps. Needs root, or CAP_BPF + CAP_NET_ADMIN.
    pub fn load() -> Result<Bounce, Error> {
        prog::route_libbpf_messages();
        let mut storage = MaybeUninit::uninit();
        let open = BounceSkelBuilder::default()
            .open(&mut storage)
            .map_err(|e| Error::from_libbpf("open the bounce XDP program", e))?;
        let skel = open.load().map_err(|e| Error::from_libbpf("load the bounce XDP program", e))?;
        Ok(Bounce {
            prog: prog::program_fd(&skel.progs.xdp_bounce)?,
            config: map_handle(&skel.maps.config, "config")?,
            counters: map_handle(&skel.maps.counters, "counters")?,
        })
    }

    /// Answer UDP for `addr` (UNSPECIFIED: for nothing).
    pub fn set_addr(&self, addr: Ipv4Addr) -> Result<(), Error> {
        self.config
            .update(&0u32.to_ne_bytes(), &addr.octets(), MapFlags::ANY)
            .map_err(|e| Error::from_libbpf("update the bounce config map", e))
    }

    /// Attach to interface `ifindex` (in the calling thread's network namespace) through a BPF link.
    pub fn attach(&self, ifindex: u32, mode: XdpMode) -> Result<XdpLink, Error> {
        link::attach(self.prog.as_fd(), ifindex, mode)
    }

    /// The counters, summed over CPUs.
    pub fn counters(&self) -> Result<BounceCounters, Error> {
        let sums = prog::percpu_sums::<CTR_COUNT>(&self.counters)?;
        Ok(BounceCounters { bounced: sums[CTR_BOUNCED], passed: sums[CTR_PASSED] })
    }

    /// Run the program once on `frame` (`BPF_PROG_TEST_RUN`): its verdict and the frame it left.
    pub fn test_run(&self, frame: &[u8]) -> Result<(XdpAction, Vec<u8>), Error> {
        prog::test_run_output(self.prog.as_fd(), frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet/IPv4/UDP from 10.0.0.1:1234 to `dst`:7777 with a 4-byte payload; checksum fields are
    /// arbitrary (the program never looks at them).
    fn udp_frame(dst: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8 + 4];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&32u16.to_be_bytes());
        f[22] = 64;
        f[23] = 17;
        f[24..26].copy_from_slice(&[0xab, 0xcd]);
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&1234u16.to_be_bytes());
        f[36..38].copy_from_slice(&7777u16.to_be_bytes());
        f[38..40].copy_from_slice(&12u16.to_be_bytes());
        f[40..42].copy_from_slice(&[0x12, 0x34]);
        f[42..].copy_from_slice(b"ping");
        f
    }

    #[test]
    fn udp_for_the_address_goes_back_swapped_and_the_rest_passes() {
        let b = Bounce::load().expect("load the bounce program (needs root)");
        let frame = udp_frame([10, 0, 0, 2]);
        assert_eq!(b.test_run(&frame).unwrap().0, XdpAction::Pass, "no address set yet");
        b.set_addr(Ipv4Addr::new(10, 0, 0, 2)).unwrap();
        let (action, out) = b.test_run(&frame).unwrap();
        assert_eq!(action, XdpAction::Tx);
        let mut want = frame.clone();
        want[..6].copy_from_slice(&frame[6..12]);
        want[6..12].copy_from_slice(&frame[..6]);
        want[26..30].copy_from_slice(&frame[30..34]);
        want[30..34].copy_from_slice(&frame[26..30]);
        want[34..36].copy_from_slice(&frame[36..38]);
        want[36..38].copy_from_slice(&frame[34..36]);
        assert_eq!(out, want, "addresses and ports swapped, everything else (checksums) untouched");
        assert_eq!(b.test_run(&udp_frame([10, 0, 0, 3])).unwrap().0, XdpAction::Pass, "other address");
        let mut tcp = frame.clone();
        tcp[23] = 6;
        assert_eq!(b.test_run(&tcp).unwrap().0, XdpAction::Pass, "not UDP");
        assert_eq!(b.test_run(&frame[..40]).unwrap().0, XdpAction::Pass, "truncated UDP header");
        let c = b.counters().unwrap();
        assert_eq!((c.bounced, c.passed), (1, 4));
    }
}

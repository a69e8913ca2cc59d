//! [`Lossy`]: seeded packet loss on any interface, for tests (`src/bpf/lossy.bpf.c`).

use std::mem::{offset_of, size_of, MaybeUninit};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Mutex, PoisonError};

use libbpf_rs::skel::{OpenSkel as _, SkelBuilder as _};
use libbpf_rs::{MapCore as _, MapFlags, MapHandle};

use crate::abi::{self, LOSSY_CTR_COUNT, LOSSY_CTR_DROPPED, LOSSY_CTR_PASSED, LOSSY_CTR_UNMATCHED};
use crate::lossy_skel::{types, LossySkelBuilder};
use crate::prog::{self, map_handle};
use crate::{link, Error, XdpAction, XdpLink, XdpMode};

/// What [`Lossy`] drops.
///
/// The candidates are the IPv4 frames that pass both filters (a filter that is `None` passes
/// everything); of those, `drop_ppm` per million are dropped. Frames that are not IPv4 (ARP among
/// them), or too short for an IPv4 header, are never candidates. The default drops nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LossConfig {
    /// Candidates to drop per million, 0 (none) to 1,000,000 (all).
    pub drop_ppm: u32,
    /// Seed of the per-CPU random streams: the same seed replays the same pattern on each CPU.
    pub seed: u64,
    /// Only IPv4 frames with this IP protocol (1 ICMP, 6 TCP, 17 UDP, ...).
    pub protocol: Option<u8>,
    /// Only IPv4 frames from this source address.
    pub src: Option<Ipv4Addr>,
}

/// [`Lossy`]'s counters, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LossCounters {
    /// Candidates dropped.
    pub dropped: u64,
    /// Candidates passed.
    pub passed: u64,
    /// Frames that were no candidate (not IPv4, or filtered out): passed untouched.
    pub unmatched: u64,
}

impl LossCounters {
    /// What happened since `earlier` (field by field, saturating).
    pub fn since(&self, earlier: &LossCounters) -> LossCounters {
        LossCounters {
            dropped: self.dropped.saturating_sub(earlier.dropped),
            passed: self.passed.saturating_sub(earlier.passed),
            unmatched: self.unmatched.saturating_sub(earlier.unmatched),
        }
    }
}

/// The lossy program, loaded into the kernel, with its maps: attach it to any interface (typically
/// the kernel peer's end of a veth testbed) to drop a seeded fraction of the IPv4 frames it
/// receives. Until [`set`](Lossy::set) it drops nothing.
///
/// Which frames are dropped is drawn from a random stream per CPU that starts from the seed and the
/// CPU id, and restarts at every [`set`](Lossy::set), so the same settings replay the same pattern
/// on each CPU (BPF_PROG_TEST_RUN on a pinned thread, or traffic that one CPU handles).
///
/// Like [`Steering`](crate::Steering), it owns only file descriptors: dropping it closes them,
/// and an [`XdpLink`] still alive keeps the program running until the link is dropped too.
#[derive(Debug)]
pub struct Lossy {
    prog: OwnedFd,
    config: MapHandle,
    counters: MapHandle,
    /// The generation last written (loss.h); the lock orders concurrent `set` calls.
    generation: Mutex<u32>,
}

/// `struct lossy_config` of lossy.h, laid out by the BTF-generated type.
fn config_bytes(cfg: &LossConfig, generation: u32) -> [u8; size_of::<types::lossy_config>()] {
    fn put(value: &mut [u8], at: usize, bytes: &[u8]) {
        value[at..at + bytes.len()].copy_from_slice(bytes);
    }
    let mut value = [0u8; size_of::<types::lossy_config>()];
    put(&mut value, offset_of!(types::lossy_config, drop_ppm), &cfg.drop_ppm.to_ne_bytes());
    put(&mut value, offset_of!(types::lossy_config, generation), &generation.to_ne_bytes());
    put(&mut value, offset_of!(types::lossy_config, seed), &cfg.seed.to_ne_bytes());
    let mut match_flags = 0;
    if let Some(protocol) = cfg.protocol {
        match_flags |= abi::LOSSY_MATCH_PROTOCOL;
        value[offset_of!(types::lossy_config, protocol)] = protocol;
    }
    if let Some(src) = cfg.src {
        match_flags |= abi::LOSSY_MATCH_SRC;
        put(&mut value, offset_of!(types::lossy_config, src), &src.octets()); // network order
    }
    value[offset_of!(types::lossy_config, match_flags)] = match_flags;
    value
}

impl Lossy {
    /// Load the program and create its maps (no loss).
    ///
    /// Needs root, or CAP_BPF + CAP_NET_ADMIN. libbpf's own messages go to the `log` crate.
    pub fn load() -> Result<Lossy, Error> {
        prog::route_libbpf_messages();
        let mut storage = MaybeUninit::uninit();
        let open = LossySkelBuilder::default()
            .open(&mut storage)
            .map_err(|e| Error::from_libbpf("open the lossy XDP program", e))?;
        let skel = open.load().map_err(|e| Error::from_libbpf("load the lossy XDP program", e))?;
        Ok(Lossy {
            prog: prog::program_fd(&skel.progs.xdp_lossy)?,
            config: map_handle(&skel.maps.config, "config")?,
            counters: map_handle(&skel.maps.counters, "counters")?,
            generation: Mutex::new(0),
        })
    }

    /// Set what to drop; takes effect on the next frame and restarts the random streams.
    pub fn set(&self, cfg: &LossConfig) -> Result<(), Error> {
        abi::check_drop_ppm(cfg.drop_ppm)?;
        // The value is written whole and the generation only kept after a good write, so a lock
        // poisoned by a panic elsewhere still guards a consistent number.
        let mut current = self.generation.lock().unwrap_or_else(PoisonError::into_inner);
        let generation = abi::next_generation(*current);
        self.config
            .update(&0u32.to_ne_bytes(), &config_bytes(cfg, generation), MapFlags::ANY)
            .map_err(|e| Error::from_libbpf("update the lossy config map", e))?;
        *current = generation;
        Ok(())
    }

    /// Attach to interface `ifindex` (in the calling thread's network namespace) through a BPF link.
    /// The program stays attached while the returned [`XdpLink`] lives, and no longer.
    pub fn attach(&self, ifindex: u32, mode: XdpMode) -> Result<XdpLink, Error> {
        link::attach(self.prog.as_fd(), ifindex, mode)
    }

    /// The counters, summed over CPUs.
    pub fn counters(&self) -> Result<LossCounters, Error> {
        let sums = prog::percpu_sums::<{ LOSSY_CTR_COUNT as usize }>(&self.counters)?;
        Ok(LossCounters {
            dropped: sums[LOSSY_CTR_DROPPED as usize],
            passed: sums[LOSSY_CTR_PASSED as usize],
            unmatched: sums[LOSSY_CTR_UNMATCHED as usize],
        })
    }

    /// The kernel's id of the loaded program (as `ip link` and `bpftool` show it).
    pub fn program_id(&self) -> Result<u32, Error> {
        prog::program_id(self.prog.as_fd())
    }

    /// Run the program once on `frame` without any interface (`BPF_PROG_TEST_RUN`), on the calling
    /// thread's current CPU (which picks the random stream), and return its verdict. For tests.
    pub fn test_run(&self, frame: &[u8]) -> Result<XdpAction, Error> {
        prog::test_run(self.prog.as_fd(), frame)
    }
}

//! [`Steering`]: the loaded program and its maps.

use std::mem::{offset_of, size_of, MaybeUninit};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, PoisonError};

use libbpf_rs::skel::{OpenSkel as _, SkelBuilder as _};
use libbpf_rs::{MapCore as _, MapFlags, MapHandle};

use crate::abi::{self, CTR_COUNT, CTR_DROPPED, CTR_MALFORMED, CTR_NO_SOCKET, CTR_PASSED, CTR_STEERED};
use crate::prog::{self, map_handle};
use crate::skel::{types, SteerSkelBuilder};
use crate::{link, AddrKind, Error, L4Proto, SteerConfig, SteerCounters, XdpAction, XdpLink, XdpMode};

/// The steering program, loaded into the kernel, with its maps.
///
/// Configure it (`set_config`, `add_addr`, `add_port`, `set_socket`, and for tests `set_loss`)
/// before or after [`attach`](Steering::attach); map updates take effect on the next frame.
/// Dropping it closes the program and map file descriptors; an [`XdpLink`] still alive keeps the
/// program (and its maps) running until the link is dropped too. (How the skeleton's descriptors
/// become owned handles: see `prog.rs`.)
#[derive(Debug)]
pub struct Steering {
    prog: OwnedFd,
    xsks: MapHandle,
    addrs: MapHandle,
    ports: MapHandle,
    config: MapHandle,
    counters: MapHandle,
    /// What the `config` map holds. `set_config` and `set_loss` each change part of the one value,
    /// so each writes the whole value from here, under this lock.
    config_value: Mutex<ConfigValue>,
}

/// The value of the `config` map, as the Rust side knows it.
#[derive(Debug, Clone, Copy, Default)]
struct ConfigValue {
    steer: SteerConfig,
    drop_ppm: u32,
    loss_generation: u32,
    loss_seed: u64,
    stamp: bool,
}

/// `struct port_key` of steer.h, laid out by the BTF-generated type.
fn port_key(proto: L4Proto, port: u16) -> [u8; size_of::<types::port_key>()] {
    let mut key = [0u8; size_of::<types::port_key>()];
    let at = offset_of!(types::port_key, port);
    key[at..at + 2].copy_from_slice(&port.to_ne_bytes());
    key[offset_of!(types::port_key, proto)] = proto.number();
    key
}

/// `struct steer_config` of steer.h, laid out by the BTF-generated type.
fn config_bytes(cfg: &ConfigValue) -> [u8; size_of::<types::steer_config>()] {
    fn put(value: &mut [u8], at: usize, bytes: &[u8]) {
        value[at..at + bytes.len()].copy_from_slice(bytes);
    }
    let mut value = [0u8; size_of::<types::steer_config>()];
    let port_filter = u32::from(cfg.steer.port_filter);
    put(&mut value, offset_of!(types::steer_config, port_filter), &port_filter.to_ne_bytes());
    let spq = cfg.steer.socks_per_queue;
    put(&mut value, offset_of!(types::steer_config, socks_per_queue), &spq.to_ne_bytes());
    put(&mut value, offset_of!(types::steer_config, drop_ppm), &cfg.drop_ppm.to_ne_bytes());
    let generation = cfg.loss_generation;
    put(&mut value, offset_of!(types::steer_config, loss_generation), &generation.to_ne_bytes());
    put(&mut value, offset_of!(types::steer_config, loss_seed), &cfg.loss_seed.to_ne_bytes());
    put(&mut value, offset_of!(types::steer_config, stamp), &u32::from(cfg.stamp).to_ne_bytes());
    value
}

impl Steering {
    /// Load the program and create its maps (empty; port filter off, one socket per queue).
    ///
    /// Needs root, or CAP_BPF + CAP_NET_ADMIN. libbpf's own messages (a verifier rejection among
    /// them) go to the `log` crate: warnings at `warn`, the rest at `debug`.
    pub fn load() -> Result<Steering, Error> {
        prog::route_libbpf_messages();
        let mut storage = MaybeUninit::uninit();
        let open = SteerSkelBuilder::default()
            .open(&mut storage)
            .map_err(|e| Error::from_libbpf("open the XDP program", e))?;
        let skel = open.load().map_err(|e| Error::from_libbpf("load the XDP program", e))?;
        let maps = &skel.maps;
        Ok(Steering {
            prog: prog::program_fd(&skel.progs.xdp_steer)?,
            xsks: map_handle(&maps.xsks, "xsks")?,
            addrs: map_handle(&maps.addrs, "addrs")?,
            ports: map_handle(&maps.ports, "ports")?,
            config: map_handle(&maps.config, "config")?,
            counters: map_handle(&maps.counters, "counters")?,
            config_value: Mutex::new(ConfigValue::default()),
        })
        // `skel` (and with it the libbpf object in `storage`) is closed here; the kernel objects
        // live on through the duplicated descriptors.
    }

    /// Set the port filter and the number of sockets per RX queue (the loss mode stays as it is).
    pub fn set_config(&self, cfg: &SteerConfig) -> Result<(), Error> {
        if cfg.socks_per_queue > abi::XSKMAP_SIZE {
            return Err(Error::InvalidArgument(format!(
                "socks_per_queue {} exceeds the XSKMAP size {}",
                cfg.socks_per_queue,
                abi::XSKMAP_SIZE
            )));
        }
        self.update_config(|value| value.steer = *cfg)
    }

    /// Loss mode, for tests: drop `drop_ppm` per million (0 to 1,000,000) of the frames that would
    /// be steered to the stack, whether or not their XSKMAP slot holds a socket, and count them
    /// `dropped`; 0 turns it off. Frames for the kernel are never dropped.
    ///
    /// Which frames are dropped is drawn from a random stream per CPU that starts from `seed` and
    /// the CPU id, and restarts at every call, so the same seed replays the same pattern on each
    /// CPU (BPF_PROG_TEST_RUN on a pinned thread, or traffic that one CPU handles). Interleaving
    /// across CPUs follows the traffic.
    pub fn set_loss(&self, drop_ppm: u32, seed: u64) -> Result<(), Error> {
        abi::check_drop_ppm(drop_ppm)?;
        self.update_config(|value| {
            value.drop_ppm = drop_ppm;
            value.loss_seed = seed;
            value.loss_generation = abi::next_generation(value.loss_generation);
        })
    }

    /// Stage timing, for benchmarks: put the time the program saw each steered frame
    /// (`bpf_ktime_get_ns`, CLOCK_MONOTONIC in nanoseconds) into [`STAMP_LEN`](crate::STAMP_LEN)
    /// bytes of XDP metadata in front of it, where an AF_XDP reader finds it (copy mode copies it
    /// too). Off by default: it costs a helper call per frame.
    pub fn set_stamp(&self, on: bool) -> Result<(), Error> {
        self.update_config(|value| value.stamp = on)
    }

    /// Change the `config` value with `change` and write all of it; kept only if the write worked.
    fn update_config(&self, change: impl FnOnce(&mut ConfigValue)) -> Result<(), Error> {
        // A panic elsewhere while holding the lock cannot leave the value half-changed (it is
        // replaced whole, below), so a poisoned lock is still good.
        let mut current = self.config_value.lock().unwrap_or_else(PoisonError::into_inner);
        let mut value = *current;
        change(&mut value);
        self.config
            .update(&0u32.to_ne_bytes(), &config_bytes(&value), MapFlags::ANY)
            .map_err(|e| Error::from_libbpf("update the config map", e))?;
        *current = value;
        Ok(())
    }

    /// Claim `addr` for the stack (or replace its kind).
    pub fn add_addr(&self, addr: Ipv4Addr, kind: AddrKind) -> Result<(), Error> {
        let flags = match kind {
            AddrKind::Unicast => abi::ADDR_UNICAST,
            AddrKind::Broadcast => abi::ADDR_BROADCAST,
        };
        self.addrs
            .update(&addr.octets(), &flags.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| Error::from_libbpf(format!("add {addr} to the addrs map (64 at most)"), e))
    }

    /// Release `addr`; removing an address that is not there is not an error.
    pub fn remove_addr(&self, addr: Ipv4Addr) -> Result<(), Error> {
        delete_if_present(&self.addrs, &addr.octets())
            .map_err(|e| Error::from_libbpf(format!("remove {addr} from the addrs map"), e))
    }

    /// List a local port of the stack (used in port-filter mode and for broadcast UDP).
    pub fn add_port(&self, proto: L4Proto, port: u16) -> Result<(), Error> {
        self.ports
            .update(&port_key(proto, port), &[1], MapFlags::ANY)
            .map_err(|e| Error::from_libbpf(format!("add {proto:?} port {port} to the ports map"), e))
    }

    /// Unlist a port; removing a port that is not there is not an error.
    pub fn remove_port(&self, proto: L4Proto, port: u16) -> Result<(), Error> {
        delete_if_present(&self.ports, &port_key(proto, port))
            .map_err(|e| Error::from_libbpf(format!("remove {proto:?} port {port} from the ports map"), e))
    }

    /// Put a bound AF_XDP socket into XSKMAP slot `index` (see [`crate::xsk_index`]).
    pub fn set_socket(&self, index: u32, xsk: BorrowedFd<'_>) -> Result<(), Error> {
        check_index(index)?;
        let fd = xsk.as_raw_fd() as u32;
        self.xsks.update(&index.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY).map_err(|e| {
            Error::from_libbpf(format!("put the AF_XDP socket into XSKMAP slot {index} (is it bound?)"), e)
        })
    }

    /// Empty XSKMAP slot `index`; frames steered there are then passed (and counted `no_socket`).
    pub fn clear_socket(&self, index: u32) -> Result<(), Error> {
        check_index(index)?;
        delete_if_present(&self.xsks, &index.to_ne_bytes())
            .map_err(|e| Error::from_libbpf(format!("clear XSKMAP slot {index}"), e))
    }

    /// Attach to interface `ifindex` (in the calling thread's network namespace) through a BPF link.
    /// The program stays attached while the returned [`XdpLink`] lives, and no longer.
    pub fn attach(&self, ifindex: u32, mode: XdpMode) -> Result<XdpLink, Error> {
        link::attach(self.prog.as_fd(), ifindex, mode)
    }

    /// The counters, summed over CPUs.
    pub fn counters(&self) -> Result<SteerCounters, Error> {
        let sums = prog::percpu_sums::<{ CTR_COUNT as usize }>(&self.counters)?;
        Ok(SteerCounters {
            steered: sums[CTR_STEERED as usize],
            passed: sums[CTR_PASSED as usize],
            malformed: sums[CTR_MALFORMED as usize],
            no_socket: sums[CTR_NO_SOCKET as usize],
            dropped: sums[CTR_DROPPED as usize],
        })
    }

    /// The kernel's id of the loaded program (as `ip link` and `bpftool` show it).
    pub fn program_id(&self) -> Result<u32, Error> {
        prog::program_id(self.prog.as_fd())
    }

    /// Run the program once on `frame` without any interface (`BPF_PROG_TEST_RUN`), with the
    /// maps as they are, and return its verdict. The frame arrives on RX queue 0, on the calling
    /// thread's current CPU (which picks the loss mode's stream). For tests.
    pub fn test_run(&self, frame: &[u8]) -> Result<XdpAction, Error> {
        prog::test_run(self.prog.as_fd(), frame)
    }

    /// Like [`test_run`](Steering::test_run), also returning the frame as the program left it,
    /// XDP metadata (if any) included in front.
    pub fn test_run_output(&self, frame: &[u8]) -> Result<(XdpAction, Vec<u8>), Error> {
        prog::test_run_output(self.prog.as_fd(), frame)
    }
}

fn check_index(index: u32) -> Result<(), Error> {
    if index >= abi::XSKMAP_SIZE {
        return Err(Error::InvalidArgument(format!(
            "XSKMAP slot {index} out of range (0..{})",
            abi::XSKMAP_SIZE
        )));
    }
    Ok(())
}

/// Delete `key`, treating "not there" (ENOENT) as success.
fn delete_if_present(map: &MapHandle, key: &[u8]) -> libbpf_rs::Result<()> {
    match map.delete(key) {
        Err(e) if e.kind() == libbpf_rs::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

//! [`Steering`]: the loaded program and its maps.

use std::mem::{offset_of, size_of, MaybeUninit};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use libbpf_rs::skel::{OpenSkel as _, SkelBuilder as _};
use libbpf_rs::{MapCore as _, MapFlags, MapHandle};

use crate::abi::{self, CTR_COUNT, CTR_MALFORMED, CTR_NO_SOCKET, CTR_PASSED, CTR_STEERED};
use crate::skel::{types, SteerSkelBuilder};
use crate::{link, AddrKind, Error, L4Proto, SteerConfig, SteerCounters, XdpAction, XdpLink, XdpMode};

/// The steering program, loaded into the kernel, with its maps.
///
/// Configure it (`set_config`, `add_addr`, `add_port`, `set_socket`) before or after
/// [`attach`](Steering::attach); map updates take effect on the next frame. Dropping it closes the
/// program and map file descriptors; an [`XdpLink`] still alive keeps the program (and its maps)
/// running until the link is dropped too.
//
// Ownership: libbpf-cargo 0.27's skeleton borrows a caller-provided `MaybeUninit<OpenObject>` for
// its whole life, so keeping the skeleton here would make `Steering` self-referential (a lifetime
// parameter, or unsafe pinning with a hand-written drop order). Instead `load()` opens and loads
// through the skeleton with that storage on its own stack, duplicates the file descriptors of the
// program and of each map into owned handles, and lets the skeleton and its libbpf object close
// when `load()` returns. The kernel keeps a program or map alive while any descriptor refers to it,
// so `Steering` owns exactly what it uses: no self-reference, nothing leaked, `Send + Sync` by
// construction, and each handle closes on drop.
#[derive(Debug)]
pub struct Steering {
    prog: OwnedFd,
    xsks: MapHandle,
    addrs: MapHandle,
    ports: MapHandle,
    config: MapHandle,
    counters: MapHandle,
}

fn handle(map: &libbpf_rs::MapMut<'_>, name: &str) -> Result<MapHandle, Error> {
    MapHandle::try_from(map).map_err(|e| Error::from_libbpf(format!("take the {name} map"), e))
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
fn config_value(cfg: &SteerConfig) -> [u8; size_of::<types::steer_config>()] {
    let mut value = [0u8; size_of::<types::steer_config>()];
    let at = offset_of!(types::steer_config, port_filter);
    value[at..at + 4].copy_from_slice(&u32::from(cfg.port_filter).to_ne_bytes());
    let at = offset_of!(types::steer_config, socks_per_queue);
    value[at..at + 4].copy_from_slice(&cfg.socks_per_queue.to_ne_bytes());
    value
}

/// Send libbpf's messages to `log` instead of stderr, so that a failure reaches the user as one
/// clear error from us rather than libbpf's lines followed by ours.
fn route_libbpf_messages() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        fn print(level: libbpf_rs::PrintLevel, msg: String) {
            let msg = msg.trim_end();
            match level {
                libbpf_rs::PrintLevel::Warn => log::warn!(target: "libbpf", "{msg}"),
                _ => log::debug!(target: "libbpf", "{msg}"),
            }
        }
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, print)));
    });
}

impl Steering {
    /// Load the program and create its maps (empty; port filter off, one socket per queue).
    ///
    /// Needs root, or CAP_BPF + CAP_NET_ADMIN. libbpf's own messages (a verifier rejection among
    /// them) go to the `log` crate: warnings at `warn`, the rest at `debug`.
    pub fn load() -> Result<Steering, Error> {
        route_libbpf_messages();
        let mut storage = MaybeUninit::uninit();
        let open = SteerSkelBuilder::default()
            .open(&mut storage)
            .map_err(|e| Error::from_libbpf("open the XDP program", e))?;
        let skel = open.load().map_err(|e| Error::from_libbpf("load the XDP program", e))?;
        let prog = skel
            .progs
            .xdp_steer
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Error::Bpf { action: "duplicate the program fd".into(), source: e })?;
        let maps = &skel.maps;
        Ok(Steering {
            prog,
            xsks: handle(&maps.xsks, "xsks")?,
            addrs: handle(&maps.addrs, "addrs")?,
            ports: handle(&maps.ports, "ports")?,
            config: handle(&maps.config, "config")?,
            counters: handle(&maps.counters, "counters")?,
        })
        // `skel` (and with it the libbpf object in `storage`) is closed here; the kernel objects
        // live on through the duplicated descriptors.
    }

    /// Set the port filter and the number of sockets per RX queue.
    pub fn set_config(&self, cfg: &SteerConfig) -> Result<(), Error> {
        if cfg.socks_per_queue > abi::XSKMAP_SIZE {
            return Err(Error::InvalidArgument(format!(
                "socks_per_queue {} exceeds the XSKMAP size {}",
                cfg.socks_per_queue,
                abi::XSKMAP_SIZE
            )));
        }
        self.config
            .update(&0u32.to_ne_bytes(), &config_value(cfg), MapFlags::ANY)
            .map_err(|e| Error::from_libbpf("update the config map", e))
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
        let mut sums = [0u64; CTR_COUNT as usize];
        for (index, sum) in (0u32..).zip(sums.iter_mut()) {
            let per_cpu = self
                .counters
                .lookup_percpu(&index.to_ne_bytes(), MapFlags::ANY)
                .map_err(|e| Error::from_libbpf("read the counters map", e))?
                .unwrap_or_default();
            *sum = per_cpu
                .iter()
                .filter_map(|v| v.get(..8)?.try_into().ok().map(u64::from_ne_bytes))
                .fold(0, u64::wrapping_add);
        }
        Ok(SteerCounters {
            steered: sums[CTR_STEERED as usize],
            passed: sums[CTR_PASSED as usize],
            malformed: sums[CTR_MALFORMED as usize],
            no_socket: sums[CTR_NO_SOCKET as usize],
        })
    }

    /// The kernel's id of the loaded program (as `ip link` and `bpftool` show it).
    pub fn program_id(&self) -> Result<u32, Error> {
        libbpf_rs::Program::id_from_fd(self.prog.as_fd())
            .map_err(|e| Error::from_libbpf("query the program id", e))
    }

    /// Run the program once on `frame` without any interface (`BPF_PROG_TEST_RUN`), with the
    /// maps as they are, and return its verdict. The frame arrives on RX queue 0. For tests.
    pub fn test_run(&self, frame: &[u8]) -> Result<XdpAction, Error> {
        let mut opts = libbpf_sys::bpf_test_run_opts {
            sz: size_of::<libbpf_sys::bpf_test_run_opts>() as libbpf_sys::size_t,
            data_in: frame.as_ptr().cast(),
            data_size_in: u32::try_from(frame.len())
                .map_err(|_| Error::InvalidArgument("test frame larger than 4 GiB".into()))?,
            repeat: 1,
            ..Default::default()
        };
        // Safety: `opts` is properly sized; `data_in` points to `data_size_in` readable bytes that
        // outlive the call; no output buffers are given, so the kernel writes only into `opts`.
        let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(self.prog.as_raw_fd(), &mut opts) };
        if rc < 0 {
            return Err(Error::from_errno("test-run the XDP program", -rc));
        }
        Ok(XdpAction::from(opts.retval))
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

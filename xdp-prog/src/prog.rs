//! What every loaded program of this crate ([`Steering`](crate::Steering), [`Lossy`](crate::Lossy))
//! does the same way: route libbpf's messages, keep owned map and program descriptors, sum per-CPU
//! counters, ask the program's id, and run it on a frame with `BPF_PROG_TEST_RUN`.
//!
//! Ownership: libbpf-cargo 0.27's skeleton borrows a caller-provided `MaybeUninit<OpenObject>` for
//! its whole life, so keeping a skeleton in a struct would make it self-referential (a lifetime
//! parameter, or unsafe pinning with a hand-written drop order). Instead each `load()` opens and
//! loads through the skeleton with that storage on its own stack, duplicates the file descriptors of
//! the program and of each map into owned handles ([`program_fd`], [`map_handle`]), and lets the
//! skeleton and its libbpf object close when `load()` returns. The kernel keeps a program or map
//! alive while any descriptor refers to it, so the struct owns exactly what it uses: no
//! self-reference, nothing leaked, `Send + Sync` by construction, and each handle closes on drop.

use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use libbpf_rs::{MapCore as _, MapFlags, MapHandle};

use crate::{Error, XdpAction};

/// Send libbpf's messages to `log` instead of stderr, so that a failure reaches the user as one
/// clear error from us rather than libbpf's lines followed by ours.
pub(crate) fn route_libbpf_messages() {
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

/// An owned handle on a loaded skeleton's map.
pub(crate) fn map_handle(map: &libbpf_rs::MapMut<'_>, name: &str) -> Result<MapHandle, Error> {
    MapHandle::try_from(map).map_err(|e| Error::from_libbpf(format!("take the {name} map"), e))
}

/// An owned descriptor of a loaded skeleton's program.
pub(crate) fn program_fd(prog: &libbpf_rs::ProgramMut<'_>) -> Result<OwnedFd, Error> {
    prog.as_fd()
        .try_clone_to_owned()
        .map_err(|e| Error::Bpf { action: "duplicate the program fd".into(), source: e })
}

/// The first `N` slots of a per-CPU array of u64 counters, each summed over CPUs.
pub(crate) fn percpu_sums<const N: usize>(map: &MapHandle) -> Result<[u64; N], Error> {
    let mut sums = [0u64; N];
    for (index, sum) in (0u32..).zip(sums.iter_mut()) {
        let per_cpu = map
            .lookup_percpu(&index.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| Error::from_libbpf("read the counters map", e))?
            .unwrap_or_default();
        *sum = per_cpu
            .iter()
            .filter_map(|v| v.get(..8)?.try_into().ok().map(u64::from_ne_bytes))
            .fold(0, u64::wrapping_add);
    }
    Ok(sums)
}

/// The kernel's id of a loaded program (as `ip link` and `bpftool` show it).
pub(crate) fn program_id(prog: BorrowedFd<'_>) -> Result<u32, Error> {
    libbpf_rs::Program::id_from_fd(prog).map_err(|e| Error::from_libbpf("query the program id", e))
}

/// Run an XDP program once on `frame` like [`test_run`], and also return the frame as the program
/// left it.
pub(crate) fn test_run_output(prog: BorrowedFd<'_>, frame: &[u8]) -> Result<(XdpAction, Vec<u8>), Error> {
    let mut out = vec![0u8; frame.len() + 512];
    let mut opts = libbpf_sys::bpf_test_run_opts {
        sz: size_of::<libbpf_sys::bpf_test_run_opts>() as libbpf_sys::size_t,
        data_in: frame.as_ptr().cast(),
        data_size_in: u32::try_from(frame.len())
            .map_err(|_| Error::InvalidArgument("test frame larger than 4 GiB".into()))?,
        data_out: out.as_mut_ptr().cast(),
        data_size_out: out.len() as u32,
        repeat: 1,
        ..Default::default()
    };
    // Safety: `opts` is properly sized; `data_in` points to `data_size_in` readable bytes and
    // `data_out` to `data_size_out` writable bytes, both outliving the call.
    let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(prog.as_raw_fd(), &mut opts) };
    if rc < 0 {
        return Err(Error::from_errno("test-run the XDP program", -rc));
    }
    out.truncate(opts.data_size_out as usize);
    Ok((XdpAction::from(opts.retval), out))
}

/// Run an XDP program once on `frame` without any interface (`BPF_PROG_TEST_RUN`), on RX queue 0
/// and on the calling thread's current CPU, and return its verdict.
pub(crate) fn test_run(prog: BorrowedFd<'_>, frame: &[u8]) -> Result<XdpAction, Error> {
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
    let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(prog.as_raw_fd(), &mut opts) };
    if rc < 0 {
        return Err(Error::from_errno("test-run the XDP program", -rc));
    }
    Ok(XdpAction::from(opts.retval))
}

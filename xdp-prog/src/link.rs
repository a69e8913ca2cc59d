//! Attaching the program to an interface through a BPF link, and asking what is attached.
//!
//! A BPF link (`bpf_link_create` with `BPF_XDP`) is owned by its file descriptor: when the
//! [`XdpLink`] is dropped, or the process dies (even by SIGKILL), the last reference goes and the
//! kernel detaches the program. A netlink attach (`ip link set .. xdp`, `bpf_xdp_attach`) would
//! outlive the process and keep stealing traffic (PLATFORM.md).

use std::ffi::CStr;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::{AttachedMode, Error, XdpMode};

/// The attachment of the program to one interface. Dropping it detaches the program.
#[derive(Debug)]
pub struct XdpLink {
    fd: OwnedFd,
    ifindex: u32,
    mode: AttachedMode,
}

impl XdpLink {
    /// The mode the program runs in.
    pub fn mode(&self) -> AttachedMode {
        self.mode
    }

    /// The interface it is attached to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }
}

/// The link's file descriptor (dropping the [`XdpLink`] closes it).
impl AsFd for XdpLink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The name of interface `ifindex` in the calling thread's network namespace.
pub(crate) fn ifname(ifindex: u32) -> Result<String, Error> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // Safety: `buf` has the IF_NAMESIZE bytes if_indextoname may write, including the NUL.
    let name = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if name.is_null() {
        return Err(Error::NoSuchInterface { ifindex });
    }
    // Safety: on success if_indextoname wrote a NUL-terminated name into `buf`.
    let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
    Ok(name.to_string_lossy().into_owned())
}

/// Attach `prog` to `ifindex` in `mode`; `Auto` tries native first and falls back to generic when
/// the driver refuses native XDP for a reason generic mode does not have (MTU, queue count, no
/// driver support).
pub(crate) fn attach(prog: BorrowedFd<'_>, ifindex: u32, mode: XdpMode) -> Result<XdpLink, Error> {
    let name = ifname(ifindex)?;
    match mode {
        XdpMode::Native => attach_mode(prog, ifindex, &name, AttachedMode::Native),
        XdpMode::Generic => attach_mode(prog, ifindex, &name, AttachedMode::Generic),
        XdpMode::Auto => match attach_mode(prog, ifindex, &name, AttachedMode::Native) {
            Ok(link) => Ok(link),
            // Generic mode would fail the same way: report the native error.
            Err(
                e @ (Error::NoPrivilege { .. }
                | Error::AlreadyAttached { .. }
                | Error::NoSuchInterface { .. }),
            ) => Err(e),
            Err(_) => attach_mode(prog, ifindex, &name, AttachedMode::Generic),
        },
    }
}

fn attach_mode(
    prog: BorrowedFd<'_>,
    ifindex: u32,
    ifname: &str,
    mode: AttachedMode,
) -> Result<XdpLink, Error> {
    let flags = match mode {
        AttachedMode::Native => libbpf_sys::XDP_FLAGS_DRV_MODE,
        AttachedMode::Generic => libbpf_sys::XDP_FLAGS_SKB_MODE,
    };
    let opts = libbpf_sys::bpf_link_create_opts {
        sz: size_of::<libbpf_sys::bpf_link_create_opts>() as libbpf_sys::size_t,
        flags,
        ..Default::default()
    };
    // Safety: `prog` is a valid program fd for the duration of the call and `opts` is a properly
    // sized, initialised bpf_link_create_opts that libbpf only reads.
    let fd =
        unsafe { libbpf_sys::bpf_link_create(prog.as_raw_fd(), ifindex as i32, libbpf_sys::BPF_XDP, &opts) };
    if fd < 0 {
        let errno = -fd;
        return Err(match errno {
            libc::EEXIST | libc::EBUSY => Error::AlreadyAttached {
                ifindex,
                ifname: ifname.to_owned(),
                program_id: attached_program_id(ifindex).ok().flatten(),
            },
            libc::ERANGE => Error::MtuTooLarge { ifindex, ifname: ifname.to_owned() },
            libc::ENODEV => Error::NoSuchInterface { ifindex },
            libc::ENOSPC if mode == AttachedMode::Native => Error::Bpf {
                action: format!(
                    "attach native XDP to {ifname}: a veth end needs at least as many RX queues \
                     as its peer has TX queues; use generic mode or match the queue counts"
                ),
                source: std::io::Error::from_raw_os_error(errno),
            },
            _ => Error::from_errno(format!("attach {mode:?} XDP to {ifname}"), errno),
        });
    }
    // Safety: bpf_link_create returned a new file descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(XdpLink { fd, ifindex, mode })
}

/// The id of the XDP program attached to `ifindex` (in any mode), if any, in the calling thread's
/// network namespace.
pub fn attached_program_id(ifindex: u32) -> Result<Option<u32>, Error> {
    let mut opts = libbpf_sys::bpf_xdp_query_opts {
        sz: size_of::<libbpf_sys::bpf_xdp_query_opts>() as libbpf_sys::size_t,
        ..Default::default()
    };
    // Safety: `opts` is a properly sized bpf_xdp_query_opts that libbpf fills in.
    let rc = unsafe { libbpf_sys::bpf_xdp_query(ifindex as i32, 0, &mut opts) };
    if rc < 0 {
        return Err(match -rc {
            libc::ENODEV | libc::EINVAL if ifname(ifindex).is_err() => Error::NoSuchInterface { ifindex },
            errno => Error::from_errno(format!("query XDP on ifindex {ifindex}"), errno),
        });
    }
    let ids = [opts.prog_id, opts.drv_prog_id, opts.skb_prog_id, opts.hw_prog_id];
    Ok(ids.into_iter().find(|&id| id != 0))
}

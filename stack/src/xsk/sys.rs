//! The AF_XDP kernel ABI and thin syscall wrappers.
//!
//! Constants and `#[repr(C)]` structs mirror `include/uapi/linux/if_xdp.h` of Linux 6.18 (the system
//! header under /usr/include may be older: it lacks `tx_metadata_len`). Every wrapper returns
//! `io::Result` with the errno of the failing call; mapping errnos to advice is `error.rs`'s job.

use std::ffi::CStr;
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `AF_XDP` (linux/socket.h).
pub(crate) const AF_XDP: libc::c_int = 44;

/// CLOCK_MONOTONIC in nanoseconds: the clock of `bpf_ktime_get_ns`, so that user space can compare
/// its times with the XDP program's stamps.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // Safety: a valid clock id and a live timespec to write.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
/// `SOL_XDP` (linux/socket.h).
pub(crate) const SOL_XDP: libc::c_int = 283;

// sockaddr_xdp.sxdp_flags (if_xdp.h).
/// Bind to the UMEM of another socket (`sxdp_shared_umem_fd`).
pub(crate) const XDP_SHARED_UMEM: u16 = 1 << 0;
/// Force copy mode.
pub(crate) const XDP_COPY: u16 = 1 << 1;
/// Force zero-copy mode.
pub(crate) const XDP_ZEROCOPY: u16 = 1 << 2;
/// The kernel sets `XDP_RING_NEED_WAKEUP` in a ring's flags when user space must kick it.
pub(crate) const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;

/// Bit of a ring's `flags` word: the kernel waits for a syscall before it looks at the ring again.
pub(crate) const XDP_RING_NEED_WAKEUP: u32 = 1 << 0;

// Socket options at level SOL_XDP (if_xdp.h).
pub(crate) const XDP_MMAP_OFFSETS: libc::c_int = 1;
pub(crate) const XDP_RX_RING: libc::c_int = 2;
pub(crate) const XDP_TX_RING: libc::c_int = 3;
pub(crate) const XDP_UMEM_REG: libc::c_int = 4;
pub(crate) const XDP_UMEM_FILL_RING: libc::c_int = 5;
pub(crate) const XDP_UMEM_COMPLETION_RING: libc::c_int = 6;
pub(crate) const XDP_STATISTICS: libc::c_int = 7;
pub(crate) const XDP_OPTIONS: libc::c_int = 8;

/// `xdp_options.flags`: the socket is bound in zero-copy mode.
pub(crate) const XDP_OPTIONS_ZEROCOPY: u32 = 1 << 0;

// mmap offsets of the four rings (if_xdp.h).
pub(crate) const XDP_PGOFF_RX_RING: u64 = 0;
pub(crate) const XDP_PGOFF_TX_RING: u64 = 0x8000_0000;
pub(crate) const XDP_UMEM_PGOFF_FILL_RING: u64 = 0x1_0000_0000;
pub(crate) const XDP_UMEM_PGOFF_COMPLETION_RING: u64 = 0x1_8000_0000;

/// Headroom the kernel keeps in front of a received frame in copy mode (`XDP_PACKET_HEADROOM`,
/// linux/bpf.h): with a UMEM headroom of 0 a received frame starts this far into its chunk.
pub const XDP_PACKET_HEADROOM: u32 = 256;

/// `struct sockaddr_xdp` (if_xdp.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SockaddrXdp {
    pub sxdp_family: u16,
    pub sxdp_flags: u16,
    pub sxdp_ifindex: u32,
    pub sxdp_queue_id: u32,
    pub sxdp_shared_umem_fd: u32,
}

/// `struct xdp_ring_offset` (if_xdp.h): byte offsets inside a ring's mapping.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct XdpRingOffset {
    pub producer: u64,
    pub consumer: u64,
    pub desc: u64,
    pub flags: u64,
}

/// `struct xdp_mmap_offsets` (if_xdp.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct XdpMmapOffsets {
    pub rx: XdpRingOffset,
    pub tx: XdpRingOffset,
    /// Fill ring.
    pub fr: XdpRingOffset,
    /// Completion ring.
    pub cr: XdpRingOffset,
}

/// `struct xdp_umem_reg` (if_xdp.h, with `tx_metadata_len` added in Linux 6.8).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct XdpUmemReg {
    pub addr: u64,
    pub len: u64,
    pub chunk_size: u32,
    pub headroom: u32,
    pub flags: u32,
    /// Bytes of TX metadata in front of each TX frame; only read by the kernel when `flags` has
    /// `XDP_UMEM_TX_METADATA_LEN`. Zero until checksum offload is wired up.
    pub tx_metadata_len: u32,
}

/// `struct xdp_desc` (if_xdp.h): an RX or TX descriptor.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct XdpDesc {
    /// UMEM offset of the first byte of the frame.
    pub addr: u64,
    /// Frame length in bytes.
    pub len: u32,
    /// `XDP_PKT_CONTD`, `XDP_TX_METADATA`; zero for us.
    pub options: u32,
}

/// `struct xdp_statistics` (if_xdp.h): the kernel's drop counters of one socket.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpStatistics {
    /// Received frames dropped for other reasons.
    pub rx_dropped: u64,
    /// Received frames dropped because of an invalid fill-ring descriptor.
    pub rx_invalid_descs: u64,
    /// TX descriptors the kernel rejected as invalid (their frames do not come back).
    pub tx_invalid_descs: u64,
    /// Received frames dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty.
    pub rx_fill_ring_empty_descs: u64,
    /// Times the kernel found the TX ring empty.
    pub tx_ring_empty_descs: u64,
}

/// `struct xdp_options` (if_xdp.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct XdpOptions {
    pub flags: u32,
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// `socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0)`.
pub(crate) fn xsk_socket() -> io::Result<OwnedFd> {
    // Safety: plain syscall with constant arguments.
    let fd = cvt(unsafe { libc::socket(AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })?;
    // Safety: `fd` was just returned by socket() and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `setsockopt(fd, SOL_XDP, name, value)`.
///
/// # Safety
/// `T` must be the `#[repr(C)]` type (or `u32`) the kernel expects for option `name`.
unsafe fn set_xdp_opt<T>(fd: BorrowedFd<'_>, name: libc::c_int, value: &T) -> io::Result<()> {
    // Safety: `value` points to `size_of::<T>()` readable bytes for the duration of the call; the
    // caller guarantees that this is the layout the kernel reads for `name`.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            SOL_XDP,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    cvt(rc).map(drop)
}

/// `getsockopt(fd, SOL_XDP, name)` into a zeroed `T`; returns the value and the length written.
///
/// # Safety
/// `T` must be a `#[repr(C)]` plain-data type (every bit pattern valid) matching option `name`.
unsafe fn get_xdp_opt<T: Copy>(fd: BorrowedFd<'_>, name: libc::c_int) -> io::Result<(T, usize)> {
    let mut value = MaybeUninit::<T>::zeroed();
    let mut len = size_of::<T>() as libc::socklen_t;
    // Safety: `value` has room for `len` bytes; the kernel writes at most `len` bytes and updates it.
    let rc = unsafe { libc::getsockopt(fd.as_raw_fd(), SOL_XDP, name, value.as_mut_ptr().cast(), &mut len) };
    cvt(rc)?;
    // Safety: zeroed memory is a valid `T` (plain data, caller's promise), whatever the kernel wrote.
    Ok((unsafe { value.assume_init() }, len as usize))
}

/// Set the size (entries, a power of two) of one of the four rings: `XDP_RX_RING`, `XDP_TX_RING`,
/// `XDP_UMEM_FILL_RING` or `XDP_UMEM_COMPLETION_RING`.
pub(crate) fn set_ring_size(fd: BorrowedFd<'_>, ring: libc::c_int, entries: u32) -> io::Result<()> {
    debug_assert!(matches!(ring, XDP_RX_RING | XDP_TX_RING | XDP_UMEM_FILL_RING | XDP_UMEM_COMPLETION_RING));
    // Safety: the ring-size options take an `int` (u32 layout).
    unsafe { set_xdp_opt(fd, ring, &entries) }
}

/// `XDP_UMEM_REG`: register the frame area with this socket.
pub(crate) fn register_umem(fd: BorrowedFd<'_>, reg: &XdpUmemReg) -> io::Result<()> {
    // Safety: XDP_UMEM_REG takes a `struct xdp_umem_reg`, which `XdpUmemReg` mirrors. The kernel pins
    // the pages named by addr/len; the caller keeps that area mapped while the UMEM lives.
    unsafe { set_xdp_opt(fd, XDP_UMEM_REG, reg) }
}

/// `XDP_MMAP_OFFSETS`: where producer, consumer, flags and descriptors sit in each ring mapping.
pub(crate) fn mmap_offsets(fd: BorrowedFd<'_>) -> io::Result<XdpMmapOffsets> {
    // Safety: XDP_MMAP_OFFSETS returns a `struct xdp_mmap_offsets` (all u64).
    let (off, len) = unsafe { get_xdp_opt::<XdpMmapOffsets>(fd, XDP_MMAP_OFFSETS) }?;
    if len != size_of::<XdpMmapOffsets>() {
        // Kernels before 5.4 return the layout without `flags`; we do not support them.
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "XDP_MMAP_OFFSETS returned an old layout (kernel older than 5.4)",
        ));
    }
    Ok(off)
}

/// `XDP_STATISTICS`.
pub(crate) fn statistics(fd: BorrowedFd<'_>) -> io::Result<XdpStatistics> {
    // Safety: XDP_STATISTICS returns a `struct xdp_statistics` (all u64); older kernels write a
    // prefix and leave the rest zero.
    unsafe { get_xdp_opt::<XdpStatistics>(fd, XDP_STATISTICS) }.map(|(s, _)| s)
}

/// `XDP_OPTIONS`.
pub(crate) fn options(fd: BorrowedFd<'_>) -> io::Result<XdpOptions> {
    // Safety: XDP_OPTIONS returns a `struct xdp_options` (one u32).
    unsafe { get_xdp_opt::<XdpOptions>(fd, XDP_OPTIONS) }.map(|(o, _)| o)
}

/// `bind(fd, sockaddr_xdp)`.
pub(crate) fn bind(fd: BorrowedFd<'_>, addr: &SockaddrXdp) -> io::Result<()> {
    // Safety: `addr` is a valid `struct sockaddr_xdp` for the duration of the call.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (addr as *const SockaddrXdp).cast(),
            size_of::<SockaddrXdp>() as libc::socklen_t,
        )
    };
    cvt(rc).map(drop)
}

/// `sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0)`: ask the kernel to process the TX ring.
pub(crate) fn kick_tx(fd: BorrowedFd<'_>) -> io::Result<()> {
    // Safety: a zero-length send with null buffer and address is the documented AF_XDP TX kick.
    let rc =
        unsafe { libc::sendto(fd.as_raw_fd(), std::ptr::null(), 0, libc::MSG_DONTWAIT, std::ptr::null(), 0) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `recvfrom(fd, NULL, 0, MSG_DONTWAIT, NULL, NULL)`: wake the driver to process the fill ring.
pub(crate) fn kick_rx(fd: BorrowedFd<'_>) -> io::Result<()> {
    // Safety: a zero-length receive with null buffer and address is the documented AF_XDP RX kick.
    let rc = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            std::ptr::null_mut(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The name of interface `ifindex` in the calling thread's network namespace.
pub(crate) fn if_name(ifindex: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // Safety: `buf` has the IF_NAMESIZE bytes if_indextoname may write.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // Safety: on success `buf` holds a NUL-terminated name.
    let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

/// How many queues an AF_XDP socket can bind to on `ifindex` (the kernel accepts a queue id below
/// the larger of the real RX and TX queue counts). Asks ethtool (`ETHTOOL_GCHANNELS`, through
/// [`crate::netdev::channels`]) in the calling thread's namespace; falls back to counting
/// `/sys/class/net/<if>/queues/rx-*` when the interface found there has the same index (sysfs shows the
/// namespace it was mounted in, not the thread's).
pub(crate) fn queue_count(ifindex: u32) -> Option<u32> {
    let name = if_name(ifindex)?;
    let from_ethtool =
        crate::netdev::channels(&name).ok().map(|c| c.rx.max(c.tx).max(c.combined)).filter(|n| *n > 0);
    from_ethtool.or_else(|| sysfs_queue_count(&name, ifindex))
}

fn sysfs_queue_count(name: &str, ifindex: u32) -> Option<u32> {
    let dir = std::path::Path::new("/sys/class/net").join(name);
    let idx: u32 = std::fs::read_to_string(dir.join("ifindex")).ok()?.trim().parse().ok()?;
    if idx != ifindex {
        return None;
    }
    let n = std::fs::read_dir(dir.join("queues"))
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count();
    u32::try_from(n).ok().filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes from the uapi header (x86_64): a layout mistake here corrupts kernel I/O.
    #[test]
    fn struct_sizes_match_if_xdp_h() {
        assert_eq!(size_of::<SockaddrXdp>(), 16);
        assert_eq!(size_of::<XdpRingOffset>(), 32);
        assert_eq!(size_of::<XdpMmapOffsets>(), 128);
        assert_eq!(size_of::<XdpUmemReg>(), 32);
        assert_eq!(size_of::<XdpDesc>(), 16);
        assert_eq!(size_of::<XdpStatistics>(), 48);
        assert_eq!(size_of::<XdpOptions>(), 4);
    }

    #[test]
    fn loopback_has_a_name_and_bogus_index_has_none() {
        assert_eq!(if_name(1).as_deref(), Some("lo"));
        assert_eq!(if_name(u32::MAX), None);
    }
}

//! The libc calls outside AF_XDP, each behind a safe function; with `xsk/` and `socket/ring.rs` (and
//! `worker/inline.rs`, whose `UnsafeCell` is inherent to it), the only places in the library with
//! `unsafe`.
//!
//! Every wrapper makes one libc call and reports its failure as `io::Error::last_os_error()` (the errno
//! it set). None retries on `EINTR`: the callers decide (`rand::secret_u64` loops, a wake-up `poll`
//! simply returns and its caller re-checks).
//!
//! The wrappers are typed so that no safe caller can make the kernel read or write memory it should not.
//! There is no generic "ioctl with any pointer" or "sendto with any address": an ioctl request whose
//! argument embeds a pointer (`SIOCETHTOOL`) would turn any bytes into a kernel write. Instead:
//! - [`ioctl_ifreq`] takes an [`IfReq`] and one of the requests in [`IfReqQuery`], whose argument is the
//!   40-byte `struct ifreq` itself and nothing it points to;
//! - [`ethtool_channels`] builds the `SIOCETHTOOL` request and its pointer itself;
//! - [`sendto`] is generic over [`SockAddr`], a sealed trait implemented only for the plain-data
//!   `sockaddr_*` structs the crate uses, so that the address length is always `size_of` the struct.
//!
//! With the `tokio` feature this module also holds the one `unsafe` registration with tokio's reactor
//! (`async_fd`), for the same reason: to keep `unsafe` out of the rest of the crate.

use std::ffi::CStr;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// socket(2): a new descriptor, owned. Pass `SOCK_CLOEXEC` in `ty` as usual.
pub(crate) fn socket(domain: libc::c_int, ty: libc::c_int, protocol: libc::c_int) -> io::Result<OwnedFd> {
    // Safety: socket(2) takes no pointers.
    let raw = unsafe { libc::socket(domain, ty, protocol) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // Safety: `raw` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// `SO_RCVTIMEO`: a blocking receive fails with `EAGAIN` after `timeout` (zero: never times out).
pub(crate) fn set_recv_timeout(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // Safety: the option value is a live timeval and the length is its size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

mod sealed {
    pub trait Sealed {}
}

/// A socket address struct that [`sendto`] may pass with its full size as the address length.
///
/// Sealed: implemented here only for `#[repr(C)]` libc structs made of integers and integer arrays,
/// for which all-zero bytes are a valid value.
pub(crate) trait SockAddr: sealed::Sealed + Sized {
    /// The all-zero address (the usual starting point before the family and fields are set).
    fn zeroed() -> Self {
        // Safety: the trait is sealed and implemented only for plain C structs of integer fields, where
        // every bit pattern, zero included, is a valid value.
        unsafe { std::mem::zeroed() }
    }
}

impl sealed::Sealed for libc::sockaddr_nl {}
impl SockAddr for libc::sockaddr_nl {}
impl sealed::Sealed for libc::sockaddr_ll {}
impl SockAddr for libc::sockaddr_ll {}

/// sendto(2) of `buf` to `addr`, flags 0: the bytes sent.
pub(crate) fn sendto<A: SockAddr>(fd: BorrowedFd<'_>, buf: &[u8], addr: &A) -> io::Result<usize> {
    // Safety: `buf` is live and readable for its length; `addr` is a live sockaddr struct (see
    // `SockAddr`) and the length passed is its size.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            0,
            (addr as *const A).cast(),
            size_of::<A>() as libc::socklen_t,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// recv(2) into `buf`, flags 0: the bytes received.
pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // Safety: `buf` is live and writable for its length.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// if_nametoindex(3) in the calling thread's network namespace. An unknown name is an error with the
/// errno the C library set (`ENODEV`).
pub(crate) fn if_nametoindex(name: &CStr) -> io::Result<u32> {
    // Safety: `name` is a valid NUL-terminated string for the duration of the call.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ifindex)
}

/// `struct ifreq` (linux/if.h), with the union seen as raw bytes.
#[repr(C)]
pub(crate) struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    /// The union `ifr_ifru`, as the last ioctl left it.
    pub(crate) data: [u8; 24],
}

impl IfReq {
    /// A request for interface `name` with a zeroed union. Refuses names the kernel cannot hold.
    pub(crate) fn new(name: &str) -> io::Result<IfReq> {
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

/// The `struct ifreq` ioctls [`ioctl_ifreq`] may make: those whose argument is the ifreq alone (the
/// kernel copies its 40 bytes in and out and follows no pointer in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IfReqQuery {
    /// `SIOCGIFHWADDR`: `data` becomes a `struct sockaddr` (family, then the hardware address).
    HwAddr,
    /// `SIOCGIFMTU`: `data` starts with the MTU as a native-endian `int`.
    Mtu,
}

impl IfReqQuery {
    /// The request number (linux/sockios.h).
    fn request(self) -> libc::c_ulong {
        match self {
            IfReqQuery::HwAddr => 0x8927,
            IfReqQuery::Mtu => 0x8921,
        }
    }
}

/// ioctl(2) `query` on `req`, through any socket `fd` (the answer is for `fd`'s network namespace).
pub(crate) fn ioctl_ifreq(fd: BorrowedFd<'_>, query: IfReqQuery, req: &mut IfReq) -> io::Result<()> {
    // Safety: every `IfReqQuery` takes a `struct ifreq` and nothing it points to; `req` is a properly
    // sized, initialized and exclusively borrowed one that outlives the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), query.request() as _, req as *mut IfReq) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `SIOCETHTOOL` (linux/sockios.h).
const SIOCETHTOOL: libc::c_ulong = 0x8946;
/// `ETHTOOL_GCHANNELS` (linux/ethtool.h).
const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// `struct ethtool_channels` (linux/ethtool.h).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct EthtoolChannels {
    pub(crate) cmd: u32,
    pub(crate) max_rx: u32,
    pub(crate) max_tx: u32,
    pub(crate) max_other: u32,
    pub(crate) max_combined: u32,
    pub(crate) rx_count: u32,
    pub(crate) tx_count: u32,
    pub(crate) other_count: u32,
    pub(crate) combined_count: u32,
}

/// `struct ifreq` (linux/if.h) with the `ifr_data` pointer member of its union, padded to 40 bytes.
#[repr(C)]
struct IfReqData {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

/// `ETHTOOL_GCHANNELS` for the interface `ifname` names (its union is not used), through any socket `fd`.
pub(crate) fn ethtool_channels(fd: BorrowedFd<'_>, ifname: &IfReq) -> io::Result<EthtoolChannels> {
    let mut ch = EthtoolChannels { cmd: ETHTOOL_GCHANNELS, ..Default::default() };
    let mut req =
        IfReqData { name: ifname.name, data: (&mut ch as *mut EthtoolChannels).cast(), _pad: [0; 16] };
    // Safety: SIOCETHTOOL reads an ifreq whose ifr_data points at a `struct ethtool_channels` (the
    // command ETHTOOL_GCHANNELS says which struct); both live on this stack frame for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), SIOCETHTOOL as _, &mut req as *mut IfReqData) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ch)
}

/// eventfd(2) with a zero counter, `EFD_CLOEXEC | EFD_NONBLOCK`.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // Safety: eventfd(2) takes no pointers.
    let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // Safety: `raw` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Add 1 to an eventfd's counter (write(2) of an 8-byte 1). On a non-blocking eventfd whose counter is
/// full this fails with `WouldBlock`; the descriptor is readable then anyway.
pub(crate) fn eventfd_write(fd: BorrowedFd<'_>) -> io::Result<()> {
    let one: u64 = 1;
    // Safety: writes 8 bytes from a live u64.
    let n = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Read and reset an eventfd's counter (read(2) of 8 bytes). On a non-blocking eventfd whose counter is
/// zero this fails with `WouldBlock`.
pub(crate) fn eventfd_read(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut v: u64 = 0;
    // Safety: reads at most 8 bytes into a live u64.
    let n = unsafe { libc::read(fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v)
}

/// futex(2) `FUTEX_WAIT_PRIVATE`: sleep while `*word == expected`, for at most `timeout` (None: no
/// limit). Returns when woken, at once if the word already differs, on a signal or on timeout; callers
/// re-check their condition either way, so the result carries nothing.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // Safety: `word` is a live, aligned 32-bit atomic for the whole call and `tsp` is null or points to
    // a timespec that outlives it; the kernel only reads both.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            tsp,
        )
    };
}

/// futex(2) `FUTEX_WAKE_PRIVATE`: wake every thread sleeping in [`futex_wait`] on `word`.
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    // Safety: `word` is a live, aligned 32-bit atomic; FUTEX_WAKE only uses its address as a key.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, i32::MAX)
    };
}

/// poll(2) over `fds` for up to `timeout_ms` (-1: forever): how many have events (0 on timeout).
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout_ms: libc::c_int) -> io::Result<usize> {
    // Safety: `fds` is a live, exclusively borrowed array of initialized pollfds of the given length (a
    // descriptor number in it that is not open only gets POLLNVAL).
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// getrandom(2), flags 0, into `buf`: the bytes written (may be fewer than asked, or fail with
/// `Interrupted`; the caller loops).
pub(crate) fn getrandom(buf: &mut [u8]) -> io::Result<usize> {
    // Safety: `buf` is live and writable for its length.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// setns(2): move the calling thread into the namespace `fd` refers to (`nstype` as in the man page,
/// e.g. `CLONE_NEWNET`). Only this thread changes; the process's memory is untouched.
pub(crate) fn setns(fd: BorrowedFd<'_>, nstype: libc::c_int) -> io::Result<()> {
    // Safety: setns(2) takes no pointers; `fd` is open for the duration of the call (it is borrowed).
    let rc = unsafe { libc::setns(fd.as_raw_fd(), nstype) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Register an owned descriptor with the current tokio runtime's reactor (panics outside a runtime,
/// as tokio does). A failed registration closes `fd` and returns tokio's error.
///
/// `AsyncFd::register_with_interest` is `unsafe` (in tokio 1.54, which the lock file holds; the safe
/// `with_interest` is deprecated there as unsound) because a generic `T: AsRawFd` might close or change
/// its descriptor while registered. An `OwnedFd` cannot: this wrapper is safe because it takes only that.
#[cfg(feature = "tokio")]
pub(crate) fn async_fd(
    fd: OwnedFd,
    interest: ::tokio::io::Interest,
) -> io::Result<::tokio::io::unix::AsyncFd<OwnedFd>> {
    // Safety: an `OwnedFd` is an open descriptor that stays open, and its `as_raw_fd` returns the same
    // number, until the `AsyncFd` that owns it drops it or gives it back with `into_inner`.
    unsafe { ::tokio::io::unix::AsyncFd::register_with_interest(fd, interest) }.map_err(|e| e.into_parts().1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn kernel_struct_sizes() {
        assert_eq!(size_of::<IfReq>(), 40);
        assert_eq!(size_of::<IfReqData>(), 40);
        assert_eq!(size_of::<EthtoolChannels>(), 36);
    }

    #[test]
    fn ifreq_names_are_checked() {
        assert!(IfReq::new("veth0").is_ok());
        assert!(IfReq::new("").is_err());
        assert!(IfReq::new("sixteen-chars-ab").is_err());
        assert!(IfReq::new("a\0b").is_err());
    }

    #[test]
    fn eventfd_counts_writes_and_polls_readable() {
        let fd = eventfd().unwrap();
        let mut pfd = [libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        assert_eq!(poll(&mut pfd, 0).unwrap(), 0);
        assert_eq!(eventfd_read(fd.as_fd()).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        eventfd_write(fd.as_fd()).unwrap();
        eventfd_write(fd.as_fd()).unwrap();
        assert_eq!(poll(&mut pfd, 0).unwrap(), 1);
        assert_eq!(pfd[0].revents & libc::POLLIN, libc::POLLIN);
        assert_eq!(eventfd_read(fd.as_fd()).unwrap(), 2);
        assert_eq!(eventfd_read(fd.as_fd()).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn unknown_interface_is_an_os_error() {
        assert!(if_nametoindex(c"lo").unwrap() > 0);
        assert!(if_nametoindex(c"nosuchif0").unwrap_err().raw_os_error().is_some());
    }

    #[test]
    fn receive_timeout_ends_a_blocking_recv() {
        let fd = socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE).unwrap();
        set_recv_timeout(fd.as_fd(), Duration::from_millis(20)).unwrap();
        let start = std::time::Instant::now();
        let err = recv(fd.as_fd(), &mut [0u8; 64]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(start.elapsed() >= Duration::from_millis(15), "{:?}", start.elapsed());
    }
}

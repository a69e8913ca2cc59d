//! An owned memory mapping, unmapped on drop: the UMEM frame area (anonymous) and the four rings of
//! an AF_XDP socket (shared mappings of the socket fd at the `XDP_PGOFF_*` offsets).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;

/// A live `mmap` region of `len` bytes at `ptr`.
#[derive(Debug)]
pub(crate) struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// Safety: `Mmap` owns its mapping like a `Box<[u8]>` owns its allocation; it has no thread affinity.
// Access to the bytes goes through raw pointers whose users (rings, UMEM frames) enforce exclusivity.
unsafe impl Send for Mmap {}
// Safety: `&Mmap` only exposes the pointer and the length, never the bytes.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// A private anonymous read-write mapping, populated up front (`MAP_POPULATE`) so that the kernel
    /// does not fault pages in while it pins them for the UMEM.
    pub(crate) fn anonymous(len: usize) -> io::Result<Mmap> {
        // Safety: a fresh anonymous mapping aliases no existing memory.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        Self::from_raw(ptr, len)
    }

    /// A shared read-write mapping of one ring of AF_XDP socket `fd` at page offset `pgoff`
    /// (`XDP_PGOFF_RX_RING`, ...), `len` bytes long (descriptor offset + entries * entry size).
    pub(crate) fn socket_ring(fd: BorrowedFd<'_>, pgoff: u64, len: usize) -> io::Result<Mmap> {
        let offset = libc::off_t::try_from(pgoff)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ring offset too large"))?;
        // Safety: mapping kernel ring memory of a socket we own; the kernel checks offset and length.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                offset,
            )
        };
        Self::from_raw(ptr, len)
    }

    fn from_raw(ptr: *mut libc::c_void, len: usize) -> io::Result<Mmap> {
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned a null mapping"))?;
        Ok(Mmap { ptr, len })
    }

    /// First byte of the mapping (page aligned).
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // Safety: `ptr`/`len` describe a mapping this value created and nobody else unmaps; whoever
        // borrowed pointers into it (rings, frames) is owned by a value that owns this `Mmap` too and
        // is dropped with it.
        let rc = unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        debug_assert_eq!(rc, 0, "munmap failed: {}", io::Error::last_os_error());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_mapping_is_zeroed_writable_and_page_aligned() {
        let m = Mmap::anonymous(3 * 4096).unwrap();
        assert_eq!(m.as_ptr() as usize % 4096, 0);
        assert_eq!(m.len(), 3 * 4096);
        // Safety: the mapping is 3 pages long, private to this test, and alive until the end.
        let bytes = unsafe { std::slice::from_raw_parts_mut(m.as_ptr(), m.len()) };
        assert!(bytes.iter().all(|&b| b == 0));
        bytes[3 * 4096 - 1] = 7;
        assert_eq!(bytes[3 * 4096 - 1], 7);
    }

    #[test]
    fn zero_length_mapping_is_an_error() {
        let e = Mmap::anonymous(0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    }
}

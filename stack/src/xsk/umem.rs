//! The UMEM: one anonymous mapping split into fixed-size frames ("chunks"), registered with the
//! kernel by the first socket and shared by every socket of the stack.
//!
//! A frame is named by its UMEM address (byte offset). Chunk `i` spans `i * frame_size ..
//! (i + 1) * frame_size`. The UMEM headroom is 0, but in copy mode the kernel still puts a received
//! frame `XDP_PACKET_HEADROOM` (256) bytes into its chunk: always use the descriptor's address.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::error::XskError;
use super::mmap::Mmap;
use super::sys::XdpUmemReg;

/// Shape of a UMEM and of the fill and completion rings each queue gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UmemConfig {
    /// Bytes per frame: 2048 or 4096.
    pub frame_size: u32,
    /// Number of frames. Size it for every fill ring, every TX ring and the frames the workers hold:
    /// a fill ring as large as the whole UMEM starves TX (see PLATFORM.md).
    pub frame_count: u32,
    /// Entries of each fill ring (a power of two).
    pub fill_size: u32,
    /// Entries of each completion ring (a power of two; at least the TX ring size).
    pub comp_size: u32,
}

impl Default for UmemConfig {
    fn default() -> Self {
        UmemConfig { frame_size: 2048, frame_count: 4096, fill_size: 1024, comp_size: 1024 }
    }
}

impl UmemConfig {
    /// Check the values the kernel would reject.
    pub fn validate(&self) -> Result<(), XskError> {
        let bad = |why: String| Err(XskError::InvalidConfig(why));
        if !matches!(self.frame_size, 2048 | 4096) {
            return bad(format!("frame_size {} must be 2048 or 4096", self.frame_size));
        }
        if self.frame_count == 0 {
            return bad("frame_count must be at least 1".into());
        }
        if self.area_len().is_none() {
            return bad("frame_size * frame_count overflows the address space".into());
        }
        for (name, n) in [("fill_size", self.fill_size), ("comp_size", self.comp_size)] {
            if !n.is_power_of_two() {
                return bad(format!("{name} {n} must be a power of two"));
            }
        }
        Ok(())
    }

    fn area_len(&self) -> Option<usize> {
        (self.frame_size as usize).checked_mul(self.frame_count as usize)
    }
}

/// The frame area shared by all sockets of a stack. Create it once, share it as `Arc<Umem>`.
#[derive(Debug)]
pub struct Umem {
    area: Mmap,
    config: UmemConfig,
    /// A `Share::First` socket has registered (or is registering) the area with the kernel.
    registered: AtomicBool,
    /// The frame addresses have been handed to frame pools (which may happen once).
    frames_taken: AtomicBool,
}

impl Umem {
    /// Map a zeroed frame area of `frame_count * frame_size` bytes. No kernel object exists yet; the
    /// first socket registers the area.
    pub fn new(config: UmemConfig) -> Result<Arc<Umem>, XskError> {
        config.validate()?;
        let len = config.area_len().unwrap_or(0);
        let area = Mmap::anonymous(len).map_err(|source| XskError::Os {
            op: "mmap of the UMEM frame area",
            hint: "out of memory?",
            source,
        })?;
        Ok(Arc::new(Umem {
            area,
            config,
            registered: AtomicBool::new(false),
            frames_taken: AtomicBool::new(false),
        }))
    }

    /// The configuration it was made with.
    pub fn config(&self) -> &UmemConfig {
        &self.config
    }

    /// Bytes per frame.
    pub fn frame_size(&self) -> u32 {
        self.config.frame_size
    }

    /// Number of frames.
    pub fn frame_count(&self) -> u32 {
        self.config.frame_count
    }

    /// Size of the frame area in bytes.
    pub fn len_bytes(&self) -> usize {
        self.area.len()
    }

    /// The `XDP_UMEM_REG` argument for this area.
    pub(crate) fn registration(&self) -> XdpUmemReg {
        XdpUmemReg {
            addr: self.area.as_ptr() as u64,
            len: self.area.len() as u64,
            chunk_size: self.config.frame_size,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        }
    }

    /// Claim the right to register the area (one `Share::First` socket per UMEM).
    pub(crate) fn claim_registration(&self) -> bool {
        self.registered.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Give the claim back after a failed setup of the first socket.
    pub(crate) fn unclaim_registration(&self) {
        self.registered.store(false, Ordering::Release);
    }

    /// Claim all frame addresses for the frame pools (possible once per UMEM).
    pub(crate) fn take_frames(&self) -> bool {
        !self.frames_taken.swap(true, Ordering::AcqRel)
    }

    /// Address of the chunk holding `addr`.
    pub(crate) fn chunk_base(&self, addr: u64) -> u64 {
        addr & !(u64::from(self.config.frame_size) - 1)
    }

    /// Pointer to `len` bytes at UMEM address `addr`, if they lie inside one chunk of the area.
    /// Whoever turns it into a slice must own the frame (module doc of `xsk`).
    pub(crate) fn frame_ptr(&self, addr: u64, len: usize) -> Option<NonNull<u8>> {
        let start = usize::try_from(addr).ok()?;
        let end = start.checked_add(len)?;
        let chunk_end = (self.chunk_base(addr) as usize).checked_add(self.config.frame_size as usize)?;
        if end > chunk_end || end > self.area.len() {
            return None;
        }
        // Safety: `start <= end <= area.len()`: the pointer stays inside (or one past) the mapping.
        NonNull::new(unsafe { self.area.as_ptr().add(start) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(frame_size: u32, frame_count: u32) -> UmemConfig {
        UmemConfig { frame_size, frame_count, fill_size: 8, comp_size: 8 }
    }

    #[test]
    fn config_validation_names_the_bad_field() {
        assert!(cfg(2048, 16).validate().is_ok());
        assert!(cfg(4096, 16).validate().is_ok());
        let e = cfg(3000, 16).validate().unwrap_err().to_string();
        assert!(e.contains("frame_size 3000"), "{e}");
        assert!(cfg(2048, 0).validate().is_err());
        let e = UmemConfig { fill_size: 12, ..cfg(2048, 16) }.validate().unwrap_err().to_string();
        assert!(e.contains("fill_size 12"), "{e}");
        assert!(UmemConfig { comp_size: 0, ..cfg(2048, 16) }.validate().is_err());
    }

    #[test]
    fn frame_pointers_stay_inside_one_chunk_of_the_area() {
        let umem = Umem::new(cfg(2048, 4)).unwrap();
        assert_eq!(umem.len_bytes(), 8192);
        let base = umem.frame_ptr(0, 2048).unwrap();
        assert_eq!(umem.frame_ptr(2048 + 256, 1792).unwrap().as_ptr(), base.as_ptr().wrapping_add(2304));
        assert!(umem.frame_ptr(2048 + 256, 1793).is_none(), "crosses into the next chunk");
        assert!(umem.frame_ptr(3 * 2048, 2048).is_some());
        assert!(umem.frame_ptr(4 * 2048, 1).is_none(), "past the area");
        assert!(umem.frame_ptr(u64::MAX, 1).is_none());
        assert_eq!(umem.chunk_base(2048 + 256), 2048);
    }

    #[test]
    fn registration_and_frames_are_claimed_once() {
        let umem = Umem::new(cfg(2048, 4)).unwrap();
        assert!(umem.claim_registration());
        assert!(!umem.claim_registration());
        umem.unclaim_registration();
        assert!(umem.claim_registration());
        assert!(umem.take_frames());
        assert!(!umem.take_frames());
        let reg = umem.registration();
        assert_eq!((reg.len, reg.chunk_size, reg.headroom), (8192, 2048, 0));
    }
}

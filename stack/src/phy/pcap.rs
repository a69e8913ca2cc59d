//! A packet capture of everything the stack receives and sends, in the classic pcap format
//! (nanosecond variant, magic `0xa1b23c4d`, version 2.4, `LINKTYPE_ETHERNET`), which `tshark`,
//! Wireshark and `tcpdump -r` read.
//!
//! A bypass stack hides its traffic from `tcpdump` on the interface (AF_XDP takes frames before the
//! kernel's taps see them), so the stack records its own. This is a **debugging tool, off by
//! default**: with several workers every frame goes through one mutex around one buffered file, which
//! is fine for looking at a problem and wrong for measuring anything. When the capture is off the
//! workers pay one predictable branch per batch and per transmitted frame.
//!
//! The file is capped at a size: when the next record would pass the cap, writing stops for good
//! (the file stays valid, ending on a whole record), the first refusal is logged once and every
//! refused frame is counted (`PcapFramesDropped`).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Magic number of a pcap file with nanosecond timestamps (written in our byte order).
pub const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// `LINKTYPE_ETHERNET`: records start with an Ethernet II header.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Bytes of the file header.
pub const FILE_HEADER_LEN: usize = 24;
/// Bytes of each record header.
pub const RECORD_HEADER_LEN: usize = 16;
/// Largest frame length recorded in full (longer frames are truncated to it, and say so).
pub const SNAPLEN: u32 = 65535;

/// Where and how much to capture (`Config::pcap`, `xdpstack run --pcap FILE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapConfig {
    /// The file to write (created or truncated).
    pub path: PathBuf,
    /// Largest size of the file in bytes, headers included.
    pub max_bytes: u64,
}

impl PcapConfig {
    /// Default cap: 64 MiB.
    pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

    /// Capture to `path` with the default cap.
    pub fn new(path: impl Into<PathBuf>) -> PcapConfig {
        PcapConfig { path: path.into(), max_bytes: Self::DEFAULT_MAX_BYTES }
    }
}

/// Writes pcap records to any `Write`, stopping at a size cap.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    written: u64,
    max_bytes: u64,
    frames: u64,
    dropped: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Write the file header; records follow. `max_bytes` below the file header's size is refused.
    pub fn new(mut out: W, max_bytes: u64) -> io::Result<PcapWriter<W>> {
        if max_bytes < FILE_HEADER_LEN as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("pcap size cap {max_bytes} is below the {FILE_HEADER_LEN}-byte file header"),
            ));
        }
        let mut h = [0u8; FILE_HEADER_LEN];
        h[0..4].copy_from_slice(&MAGIC_NANOS.to_ne_bytes());
        h[4..6].copy_from_slice(&2u16.to_ne_bytes()); // version 2.4
        h[6..8].copy_from_slice(&4u16.to_ne_bytes());
        // thiszone and sigfigs: 0.
        h[16..20].copy_from_slice(&SNAPLEN.to_ne_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_ne_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out, written: FILE_HEADER_LEN as u64, max_bytes, frames: 0, dropped: 0 })
    }

    /// Record one frame seen at `ts` (since the Unix epoch). Returns false, and counts the frame as
    /// dropped, when it would pass the cap (then every later frame is dropped too).
    pub fn write_frame(&mut self, ts: std::time::Duration, frame: &[u8]) -> io::Result<bool> {
        let caplen = frame.len().min(SNAPLEN as usize);
        let size = (RECORD_HEADER_LEN + caplen) as u64;
        if self.dropped > 0 || self.written + size > self.max_bytes {
            self.dropped += 1;
            return Ok(false);
        }
        let mut h = [0u8; RECORD_HEADER_LEN];
        h[0..4].copy_from_slice(&(ts.as_secs() as u32).to_ne_bytes());
        h[4..8].copy_from_slice(&ts.subsec_nanos().to_ne_bytes());
        h[8..12].copy_from_slice(&(caplen as u32).to_ne_bytes());
        h[12..16].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&frame[..caplen])?;
        self.written += size;
        self.frames += 1;
        Ok(true)
    }

    /// Frames written.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Frames refused by the cap.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Bytes written, file header included.
    pub fn bytes(&self) -> u64 {
        self.written
    }

    /// Flush the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The capture a stack's workers share: a [`PcapWriter`] on a buffered file behind a mutex.
#[derive(Debug)]
pub struct PcapSink {
    path: PathBuf,
    max_bytes: u64,
    inner: Mutex<PcapWriter<BufWriter<File>>>,
}

impl PcapSink {
    /// Create (or truncate) the file and write its header.
    pub fn create(config: &PcapConfig) -> io::Result<PcapSink> {
        let err = |e: io::Error| {
            io::Error::new(e.kind(), format!("cannot write the pcap file {}: {e}", config.path.display()))
        };
        let file = File::create(&config.path).map_err(err)?;
        let writer = PcapWriter::new(BufWriter::with_capacity(1 << 16, file), config.max_bytes)?;
        Ok(PcapSink { path: config.path.clone(), max_bytes: config.max_bytes, inner: Mutex::new(writer) })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Record a frame, stamped now.
    pub fn record(&self, frame: &[u8]) {
        let ts = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut w = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let first_drop = w.dropped() == 0;
        match w.write_frame(ts, frame) {
            Ok(true) => {}
            Ok(false) if first_drop => log::warn!(
                "pcap: {} reached its cap of {} bytes; later frames are not written",
                self.path.display(),
                self.max_bytes
            ),
            Ok(false) => {}
            Err(e) if first_drop => {
                log::warn!("pcap: writing {} failed: {e}; capture stopped", self.path.display());
                // Stop for good: make every later frame count as dropped.
                w.max_bytes = 0;
                w.dropped += 1;
            }
            Err(_) => w.dropped += 1,
        }
    }

    /// Frames written and frames dropped so far.
    pub fn stats(&self) -> (u64, u64) {
        let w = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (w.frames(), w.dropped())
    }

    /// Push buffered records to the file.
    pub fn flush(&self) -> io::Result<()> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn file_header_and_records_follow_the_format() {
        let mut w = PcapWriter::new(Vec::new(), 1 << 20).unwrap();
        let frame: Vec<u8> = (0..60u8).collect();
        assert!(w.write_frame(Duration::new(1_700_000_000, 123_456_789), &frame).unwrap());
        assert!(w.write_frame(Duration::new(1_700_000_001, 5), &frame[..42]).unwrap());
        assert_eq!(w.frames(), 2);
        let b = w.into_inner();
        assert_eq!(b.len(), 24 + 16 + 60 + 16 + 42);
        assert_eq!(u32_at(&b, 0), 0xa1b2_3c4d);
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 2);
        assert_eq!(u16::from_ne_bytes([b[6], b[7]]), 4);
        assert_eq!(u32_at(&b, 8), 0); // thiszone
        assert_eq!(u32_at(&b, 12), 0); // sigfigs
        assert_eq!(u32_at(&b, 16), 65535);
        assert_eq!(u32_at(&b, 20), 1);
        let r = &b[24..];
        assert_eq!(u32_at(r, 0), 1_700_000_000);
        assert_eq!(u32_at(r, 4), 123_456_789);
        assert_eq!(u32_at(r, 8), 60);
        assert_eq!(u32_at(r, 12), 60);
        assert_eq!(&r[16..76], &frame[..]);
        let r = &r[76..];
        assert_eq!(u32_at(r, 0), 1_700_000_001);
        assert_eq!(u32_at(r, 4), 5);
        assert_eq!((u32_at(r, 8), u32_at(r, 12)), (42, 42));
    }

    #[test]
    fn cap_stops_writing_on_a_whole_record() {
        // Room for the header and exactly two 100-byte frames.
        let mut w = PcapWriter::new(Vec::new(), 24 + 2 * 116 + 50).unwrap();
        let frame = [0xabu8; 100];
        assert!(w.write_frame(Duration::ZERO, &frame).unwrap());
        assert!(w.write_frame(Duration::ZERO, &frame).unwrap());
        assert!(!w.write_frame(Duration::ZERO, &frame).unwrap());
        // A smaller frame that would fit is refused too: the capture has stopped.
        assert!(!w.write_frame(Duration::ZERO, &frame[..10]).unwrap());
        assert_eq!((w.frames(), w.dropped()), (2, 2));
        assert_eq!(w.into_inner().len(), 24 + 2 * 116);
    }

    #[test]
    fn a_cap_below_the_header_is_refused() {
        assert!(PcapWriter::new(Vec::new(), 10).is_err());
    }
}

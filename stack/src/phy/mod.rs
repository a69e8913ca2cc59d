//! The device boundary: a batch of frames in, frames out.
//!
//! The protocol engine only ever sees [`TxDevice`] (it writes whole Ethernet frames into buffers the
//! device lends it); frames come in as `&mut [u8]` from whatever the worker received. Implementations:
//! the AF_XDP socket (`xsk`), in-memory queues for tests (`Vec<Vec<u8>>` transmits, `VecDeque<Vec<u8>>`
//! receives), and middleware that wraps a device: a seeded fault injector ([`FaultInjector`]). The
//! pcap capture ([`pcap`]) sits at the same boundary: the workers record each frame as it comes off
//! the RX ring and as it goes onto the TX ring.

mod fault;
mod mem;
pub mod pcap;

pub use fault::{FaultConfig, FaultInjector};
pub use pcap::{PcapConfig, PcapSink, PcapWriter};

/// The TX ring (or frame pool) has no room; the frame was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxFull;

/// Somewhere to send Ethernet frames.
pub trait TxDevice {
    /// Send one frame: the device lends a buffer of at least `max_len` bytes, `fill` writes the frame
    /// and returns its length. Frames are queued and go out on [`TxDevice::flush`] (or sooner).
    fn transmit<F: FnOnce(&mut [u8]) -> usize>(&mut self, max_len: usize, fill: F) -> Result<(), TxFull>;

    /// Push queued frames to the wire.
    fn flush(&mut self) {}

    /// Is there room for another frame right now? (A TCP sender asks before it commits a segment.)
    fn can_transmit(&mut self) -> bool {
        true
    }
}

/// Somewhere frames come from, in batches.
pub trait RxDevice {
    /// Hand up to `max` received frames to `f`, one at a time; returns how many.
    fn receive<F: FnMut(&mut [u8])>(&mut self, max: usize, f: F) -> usize;
}

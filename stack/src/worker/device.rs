//! The AF_XDP socket as the engine's [`TxDevice`].

use crate::counters::Counters;
use crate::phy::{PcapSink, TxDevice, TxFull};
use crate::xsk::{FramePool, XskSocket};

/// One worker's transmit path: its first socket and its frame pool.
pub(crate) struct XskTx<'a> {
    pub sock: &'a mut XskSocket,
    pub pool: &'a mut FramePool,
    pub counters: &'a Counters,
    /// The capture, when one is configured (a debugging tool: off by default).
    pub pcap: Option<&'a PcapSink>,
}

impl TxDevice for XskTx<'_> {
    #[inline]
    fn transmit<F: FnOnce(&mut [u8]) -> usize>(&mut self, max_len: usize, fill: F) -> Result<(), TxFull> {
        if self.pool.free_count() == 0 || self.sock.tx_space() == 0 {
            // Push out what is queued and take back what the kernel has finished with.
            let _ = self.sock.flush();
            self.sock.reap(self.pool);
        }
        let sent = match self.pcap {
            None => self.sock.transmit(self.pool, max_len, fill),
            Some(pcap) => self.sock.transmit(self.pool, max_len, |buf| {
                let len = fill(buf);
                // A length the socket refuses (0, or past the buffer) is not sent: not recorded either.
                if len > 0 && len <= buf.len() {
                    pcap.record(&buf[..len]);
                }
                len
            }),
        };
        match sent {
            Ok(()) => {
                self.counters.xsk_tx_frames.inc();
                Ok(())
            }
            Err(_) => {
                self.counters.xsk_tx_full.inc();
                Err(TxFull)
            }
        }
    }

    fn flush(&mut self) {
        let _ = self.sock.flush();
    }

    fn can_transmit(&mut self) -> bool {
        if self.pool.free_count() == 0 || self.sock.tx_space() == 0 {
            let _ = self.sock.flush();
            self.sock.reap(self.pool);
        }
        self.pool.free_count() > 0 && self.sock.tx_space() > 0
    }
}

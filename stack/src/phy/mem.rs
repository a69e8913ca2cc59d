//! In-memory devices for tests: a `Vec` of frames is a transmit queue, a `VecDeque` a receive queue.

use std::collections::VecDeque;

use super::{RxDevice, TxDevice, TxFull};

impl TxDevice for Vec<Vec<u8>> {
    fn transmit<F: FnOnce(&mut [u8]) -> usize>(&mut self, max_len: usize, fill: F) -> Result<(), TxFull> {
        let mut frame = vec![0u8; max_len];
        let len = fill(&mut frame);
        frame.truncate(len);
        self.push(frame);
        Ok(())
    }
}

impl RxDevice for VecDeque<Vec<u8>> {
    fn receive<F: FnMut(&mut [u8])>(&mut self, max: usize, mut f: F) -> usize {
        let mut n = 0;
        while n < max {
            let Some(mut frame) = self.pop_front() else {
                break;
            };
            f(&mut frame);
            n += 1;
        }
        n
    }
}

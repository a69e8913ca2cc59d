//! IPv4 reassembly (RFC 791 §3.2, with the hole-descriptor algorithm of RFC 815), bounded in time (a
//! per-datagram timeout) and in memory (a byte cap and a datagram cap; the oldest datagram is evicted
//! first).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::counters::Counters;

/// Reassembly limits.
#[derive(Debug, Clone)]
pub struct ReasmConfig {
    /// Time from a datagram's first fragment until it is abandoned (Linux: 30 s).
    pub timeout: Duration,
    /// Bytes of buffer all datagrams in progress may use together.
    pub max_bytes: usize,
    /// Datagrams in progress at once.
    pub max_datagrams: usize,
}

impl Default for ReasmConfig {
    fn default() -> Self {
        ReasmConfig { timeout: Duration::from_secs(30), max_bytes: 4 << 20, max_datagrams: 64 }
    }
}

/// RFC 791: fragments of one datagram share source, destination, protocol and identification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub ident: u16,
}

/// The largest IPv4 payload (65535 minus the smallest header).
const MAX_PAYLOAD: usize = 65535 - 20;

/// An inclusive byte range not yet received (RFC 815 "hole descriptor").
#[derive(Debug, Clone, Copy)]
struct Hole {
    first: usize,
    last: usize,
}

#[derive(Debug)]
struct Datagram {
    key: Key,
    buf: Vec<u8>,
    holes: Vec<Hole>,
    /// Known once the fragment without MF has arrived.
    total: Option<usize>,
    deadline: Instant,
}

/// Datagrams being reassembled.
#[derive(Debug)]
pub(crate) struct Reassembler {
    config: ReasmConfig,
    datagrams: Vec<Datagram>,
    bytes: usize,
    spare: Vec<Vec<u8>>,
}

impl Reassembler {
    pub(crate) fn new(config: ReasmConfig) -> Reassembler {
        Reassembler { config, datagrams: Vec::new(), bytes: 0, spare: Vec::new() }
    }

    /// Add one fragment; returns the whole payload when this fragment completes it. Hand the buffer
    /// back with [`Reassembler::recycle`].
    pub(crate) fn add(
        &mut self,
        now: Instant,
        key: Key,
        offset: usize,
        more: bool,
        data: &[u8],
        counters: &Counters,
    ) -> Option<Vec<u8>> {
        let end = offset + data.len();
        // RFC 791: all but the last fragment carry a multiple of 8 octets; nothing may pass 64 KiB.
        let malformed = data.is_empty() || end > MAX_PAYLOAD || (more && data.len() % 8 != 0);
        let idx = match self.datagrams.iter().position(|d| d.key == key) {
            Some(i) => i,
            None if malformed => {
                counters.ip_reasm_fails.inc();
                return None;
            }
            None => self.start(now, key, counters),
        };
        if malformed {
            counters.ip_reasm_fails.inc();
            self.remove(idx);
            return None;
        }
        let d = &mut self.datagrams[idx];
        if let Some(total) = d.total {
            if end > total || (!more && end != total) {
                counters.ip_reasm_fails.inc();
                self.remove(idx);
                return None;
            }
        }
        if !more {
            if d.buf.len() > end {
                // Data already seen beyond what this "last" fragment says is the end.
                counters.ip_reasm_fails.inc();
                self.remove(idx);
                return None;
            }
            d.total = Some(end);
        }
        let grow = end.saturating_sub(d.buf.len());
        let mut idx = idx;
        if grow > 0 {
            // Make room by abandoning the oldest other datagrams; failing that, this one.
            while self.bytes + grow > self.config.max_bytes {
                counters.ip_reasm_overflow.inc();
                counters.ip_reasm_fails.inc();
                let victim = (0..self.datagrams.len())
                    .filter(|&i| self.datagrams[i].key != key)
                    .min_by_key(|&i| self.datagrams[i].deadline);
                match victim {
                    Some(v) => self.remove(v),
                    None => {
                        let me = self.datagrams.iter().position(|d| d.key == key)?;
                        self.remove(me);
                        return None;
                    }
                }
            }
            idx = self.datagrams.iter().position(|d| d.key == key)?;
            self.bytes += grow;
            self.datagrams[idx].buf.resize(end, 0);
        }
        let d = &mut self.datagrams[idx];
        d.buf[offset..end].copy_from_slice(data);
        fill_holes(&mut d.holes, offset, end - 1, more);
        if let Some(total) = d.total {
            d.holes.retain(|h| h.first < total);
        }
        if d.holes.is_empty() && d.total.is_some() {
            let done = self.datagrams.swap_remove(idx);
            self.bytes -= done.buf.len();
            return Some(done.buf);
        }
        None
    }

    fn start(&mut self, now: Instant, key: Key, counters: &Counters) -> usize {
        if self.datagrams.len() >= self.config.max_datagrams {
            self.evict_oldest(counters);
        }
        let buf = self.spare.pop().unwrap_or_default();
        self.datagrams.push(Datagram {
            key,
            buf,
            holes: vec![Hole { first: 0, last: usize::MAX }],
            total: None,
            deadline: now + self.config.timeout,
        });
        self.datagrams.len() - 1
    }

    fn remove(&mut self, idx: usize) {
        let d = self.datagrams.swap_remove(idx);
        self.bytes -= d.buf.len();
        self.recycle(d.buf);
    }

    fn evict_oldest(&mut self, counters: &Counters) {
        if let Some(idx) = (0..self.datagrams.len()).min_by_key(|&i| self.datagrams[i].deadline) {
            counters.ip_reasm_overflow.inc();
            counters.ip_reasm_fails.inc();
            self.remove(idx);
        }
    }

    /// Give back a buffer returned by [`Reassembler::add`].
    pub(crate) fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.spare.len() < 4 {
            buf.clear();
            self.spare.push(buf);
        }
    }

    /// Abandon datagrams whose time is up.
    pub(crate) fn expire(&mut self, now: Instant, counters: &Counters) {
        while let Some(idx) = self.datagrams.iter().position(|d| d.deadline <= now) {
            counters.ip_reasm_timeout.inc();
            counters.ip_reasm_fails.inc();
            self.remove(idx);
        }
    }

    pub(crate) fn poll_at(&self) -> Option<Instant> {
        self.datagrams.iter().map(|d| d.deadline).min()
    }

    /// Datagrams in progress.
    #[cfg(test)]
    pub(crate) fn in_progress(&self) -> usize {
        self.datagrams.len()
    }
}

/// RFC 815 steps 1-6: the fragment [first, last] fills (parts of) the holes it overlaps.
fn fill_holes(holes: &mut Vec<Hole>, first: usize, last: usize, more: bool) {
    let mut i = 0;
    while i < holes.len() {
        let h = holes[i];
        if first > h.last || last < h.first {
            i += 1;
            continue;
        }
        holes.swap_remove(i);
        if first > h.first {
            holes.push(Hole { first: h.first, last: first - 1 });
        }
        if last < h.last && more {
            holes.push(Hole { first: last + 1, last: h.last });
        }
        // swap_remove moved an unvisited hole into slot i: look at it next.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(ident: u16) -> Key {
        Key { src: Ipv4Addr::new(10, 0, 0, 1), dst: Ipv4Addr::new(10, 0, 0, 2), protocol: 17, ident }
    }

    fn payload(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn in_order_and_reverse_order() {
        let c = Counters::default();
        let now = Instant::now();
        let data = payload(4000);
        for reverse in [false, true] {
            let mut r = Reassembler::new(ReasmConfig::default());
            let mut pieces: Vec<(usize, &[u8])> =
                data.chunks(1480).enumerate().map(|(i, p)| (i * 1480, p)).collect();
            if reverse {
                pieces.reverse();
            }
            let n = pieces.len();
            let mut out = None;
            for (k, (off, p)) in pieces.into_iter().enumerate() {
                let more = off + p.len() < data.len();
                let res = r.add(now, key(1), off, more, p, &c);
                assert_eq!(res.is_some(), k == n - 1);
                out = out.or(res);
            }
            assert_eq!(out.unwrap(), data);
            assert_eq!(r.in_progress(), 0);
        }
    }

    #[test]
    fn timeout_abandons() {
        let c = Counters::default();
        let now = Instant::now();
        let mut r = Reassembler::new(ReasmConfig::default());
        assert!(r.add(now, key(2), 0, true, &[0; 8], &c).is_none());
        assert_eq!(r.poll_at(), Some(now + Duration::from_secs(30)));
        r.expire(now + Duration::from_secs(29), &c);
        assert_eq!(r.in_progress(), 1);
        r.expire(now + Duration::from_secs(30), &c);
        assert_eq!(r.in_progress(), 0);
        assert_eq!(c.ip_reasm_timeout.get(), 1);
    }

    #[test]
    fn memory_cap_evicts_oldest() {
        let c = Counters::default();
        let now = Instant::now();
        let mut r = Reassembler::new(ReasmConfig { max_bytes: 3000, ..Default::default() });
        assert!(r.add(now, key(1), 0, true, &[1; 1480], &c).is_none());
        assert!(r.add(now + Duration::from_millis(1), key(2), 0, true, &[2; 1480], &c).is_none());
        // A third datagram needs room: the oldest goes.
        assert!(r.add(now + Duration::from_millis(2), key(3), 0, true, &[3; 1480], &c).is_none());
        assert!(c.ip_reasm_overflow.get() >= 1);
        assert!(r.bytes <= 3000);
        // Datagram 2 can still complete.
        assert!(r.add(now, key(2), 1480, false, &[2; 100], &c).is_some());
    }

    #[test]
    fn inconsistent_and_malformed_fragments_are_dropped() {
        let c = Counters::default();
        let now = Instant::now();
        let mut r = Reassembler::new(ReasmConfig::default());
        // Not a multiple of 8 with MF set.
        assert!(r.add(now, key(1), 0, true, &[0; 7], &c).is_none());
        assert_eq!(r.in_progress(), 0);
        // Beyond 64 KiB.
        assert!(r.add(now, key(1), 65528, true, &[0; 16], &c).is_none());
        // Two different ends.
        assert!(r.add(now, key(4), 8, false, &[0; 8], &c).is_none());
        assert!(r.add(now, key(4), 16, false, &[0; 8], &c).is_none());
        assert_eq!(r.in_progress(), 0);
        assert_eq!(c.ip_reasm_fails.get(), 3);
    }

    proptest! {
        /// Any order, with duplicates and overlaps, yields exactly the original payload.
        #[test]
        fn any_order_with_overlaps(len in 9usize..6000, frag in 1usize..200, seed in any::<u64>(), dups in 0usize..5) {
            let frag = frag * 8;
            let data = payload(len);
            let mut pieces: Vec<(usize, usize)> = (0..len).step_by(frag).map(|o| (o, (o + frag).min(len))).collect();
            let mut rng = crate::rand::Rng::with_seed(seed);
            for _ in 0..dups {
                let i = rng.below(pieces.len() as u64) as usize;
                pieces.push(pieces[i]);
                // An overlapping piece, aligned to 8, same bytes.
                let (o, e) = pieces[i];
                let o2 = (o / 2) & !7;
                pieces.push((o2, e));
            }
            for i in (1..pieces.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                pieces.swap(i, j);
            }
            let c = Counters::default();
            let mut r = Reassembler::new(ReasmConfig::default());
            let now = Instant::now();
            let mut done = None;
            for (o, e) in pieces {
                if done.is_some() { break; }
                done = r.add(now, key(9), o, e < len, &data[o..e], &c);
            }
            prop_assert_eq!(done.expect("completed"), data);
        }
    }
}

//! A worker's TIME-WAIT records ([`crate::tcp::timewait`]) by 4-tuple, with their deadlines.
//!
//! Every record starts with the same wait (2·MSL), so the deadlines of new records arrive in order
//! and a FIFO holds them with no sorting. A record whose wait was restarted (a retransmitted FIN)
//! has a later deadline than its FIFO entry says; when that entry comes due, the record moves to a
//! small heap for the rest of its wait. Stale entries cost one lookup each.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddrV4;
use std::time::Instant;

use super::endpoints::AddrMap;
use crate::tcp::timewait::TimeWait;

pub(crate) type Tuple = (SocketAddrV4, SocketAddrV4);

/// A record and what the table needs besides.
#[derive(Debug)]
pub(crate) struct TimeWaitEntry {
    pub tw: TimeWait,
    /// The connection's stack-wide id (the socket table shows it).
    pub id: u64,
    /// An active open: its 4-tuple goes back to the port table when the record ends.
    pub release: bool,
}

#[derive(Debug, Default)]
pub(crate) struct TimeWaits {
    map: AddrMap<Tuple, TimeWaitEntry>,
    /// Deadlines as records were made, oldest first.
    fifo: VecDeque<(Instant, Tuple)>,
    /// Records whose wait was restarted, by deadline.
    later: BinaryHeap<Reverse<(Instant, Tuple)>>,
}

impl TimeWaits {
    /// Hold `e` for `tuple` until `e.tw.expires` (replacing any record it had).
    pub(crate) fn insert(&mut self, tuple: Tuple, e: TimeWaitEntry) {
        let at = e.tw.expires;
        match self.fifo.back() {
            Some(&(last, _)) if at < last => self.later.push(Reverse((at, tuple))),
            _ => self.fifo.push_back((at, tuple)),
        }
        self.map.insert(tuple, e);
    }

    pub(crate) fn get_mut(&mut self, tuple: &Tuple) -> Option<&mut TimeWaitEntry> {
        self.map.get_mut(tuple)
    }

    pub(crate) fn contains(&self, tuple: &Tuple) -> bool {
        self.map.contains_key(tuple)
    }

    /// End a record before its time; its queue entry goes stale.
    pub(crate) fn remove(&mut self, tuple: &Tuple) -> Option<TimeWaitEntry> {
        self.map.remove(tuple)
    }

    /// How many records there are.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Tuple, &TimeWaitEntry)> {
        self.map.iter()
    }

    /// The earliest deadline in the queues (possibly of a record that ended or was restarted: the
    /// caller then finds nothing due, which is harmless).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let fifo = self.fifo.front().map(|&(t, _)| t);
        let later = self.later.peek().map(|Reverse((t, _))| *t);
        fifo.into_iter().chain(later).min()
    }

    /// The next record whose wait is over at `now`, removed.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<(Tuple, TimeWaitEntry)> {
        loop {
            let t = self.next_deadline().filter(|&t| t <= now)?;
            let tuple = if self.fifo.front().is_some_and(|&(f, _)| f == t) {
                self.fifo.pop_front().expect("checked").1
            } else {
                let Reverse((_, tuple)) =
                    self.later.pop().expect("the earliest deadline is in one of the two");
                tuple
            };
            let Some(e) = self.map.get(&tuple) else { continue };
            if e.tw.expires > now {
                // Restarted since this entry was queued (or the tuple has a newer record): wait on.
                self.later.push(Reverse((e.tw.expires, tuple)));
                continue;
            }
            return self.map.remove(&tuple).map(|e| (tuple, e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::timewait::TimeWaitVerdict;
    use crate::wire::{TcpFlags, TcpRepr, TcpSeqNumber};
    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn tuple(port: u16) -> Tuple {
        (
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80),
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), port),
        )
    }

    fn entry(expires: Instant) -> TimeWaitEntry {
        TimeWaitEntry { tw: TimeWait::for_test(expires), id: 1, release: false }
    }

    fn fin() -> TcpRepr {
        TcpRepr::new(1, 80, TcpSeqNumber(0), Some(TcpSeqNumber(0)), TcpFlags::FIN, 0)
    }

    #[test]
    fn records_end_in_deadline_order_including_restarted_ones() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut tws = TimeWaits::default();
        for i in 0..4u16 {
            tws.insert(tuple(i), entry(t0 + s * (10 + u32::from(i))));
        }
        // Record 0 is restarted at t0 + 5 s: it now ends at 15 s, after records 1..3.
        let v = tws.get_mut(&tuple(0)).unwrap().tw.on_segment(t0 + s * 5, &fin(), 0, s * 10);
        assert!(matches!(v, TimeWaitVerdict::Ack(_)));
        // Record 2 ends early (a reset).
        assert!(tws.remove(&tuple(2)).is_some());
        assert_eq!(tws.next_deadline(), Some(t0 + s * 10), "the stale entry of record 0 is still first");
        assert!(tws.pop_expired(t0 + s * 10).is_none(), "record 0 was restarted");
        let mut ended = Vec::new();
        let mut t = t0 + s * 10;
        while tws.len() > 0 {
            t = tws.next_deadline().unwrap().max(t);
            while let Some((tu, _)) = tws.pop_expired(t) {
                ended.push((tu.1.port(), (t - t0).as_secs()));
            }
        }
        assert_eq!(ended, vec![(1, 11), (3, 13), (0, 15)]);
        assert_eq!(tws.next_deadline(), None);
    }

    #[test]
    fn an_early_deadline_goes_to_the_heap_and_still_comes_first() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut tws = TimeWaits::default();
        tws.insert(tuple(1), entry(t0 + s * 10));
        tws.insert(tuple(2), entry(t0 + s * 3));
        assert_eq!(tws.next_deadline(), Some(t0 + s * 3));
        assert_eq!(tws.pop_expired(t0 + s * 3).map(|(t, _)| t.1.port()), Some(2));
        assert!(tws.pop_expired(t0 + s * 9).is_none());
        assert!(tws.contains(&tuple(1)));
    }
}

//! Selective acknowledgment: the sender's scoreboard and the receiver's SACK blocks.
//!
//! Implements, for the data sender, the scoreboard of RFC 2018 §5 (which octets above `snd_una` the
//! receiver reported holding) and the helpers of RFC 6675 §4 that loss recovery is built from:
//! `IsLost`, `SetPipe` and `NextSeg` rules (1) and (3), plus the segment rule (4) would resend. For the
//! data receiver it keeps the out-of-order ranges held above `rcv_nxt` and chooses the SACK blocks of
//! each ACK by RFC 2018 §4. D-SACK (RFC 2883) is neither sent nor used: D-SACK blocks lie at or below
//! the cumulative ACK and the sender ignores every such block.
//!
//! Both sides keep a short, sorted list of disjoint, non-adjacent half-open ranges `[start, end)` in a
//! fixed array: nothing is allocated, ever. Order is taken as the distance above a base (`snd_una` or
//! `rcv_nxt`) modulo 2^32, so the lists work unchanged across the wrap of sequence space; everything
//! they hold lies within one window (less than 2^31) above the base.
//!
//! RFC 6675's `HighRxt` is passed as `high_rxt`, **one past** the highest retransmitted octet (the end
//! of the last retransmission), or `snd_una` when nothing has been retransmitted in this recovery. So
//! "S1 <= HighRxt" (SetPipe) reads `s1 < high_rxt` and "S2 > HighRxt" (NextSeg) reads `s2 >= high_rxt`.

use crate::wire::TcpSeqNumber;

/// RFC 6675 §2: DupThresh, "the number of duplicate acknowledgments required to trigger a fast
/// retransmission", 3 (RFC 5681).
pub const DUP_THRESH: usize = 3;

/// The most SACKed ranges a [`Scoreboard`] keeps (the highest are dropped past this).
pub const MAX_SACKED_RANGES: usize = 32;

/// The most out-of-order ranges a [`ReceivedRanges`] holds (new ones that would add a range are refused).
pub const MAX_RECEIVED_RANGES: usize = 16;

/// The most SACK blocks [`ReceivedRanges::sack_blocks`] fills. RFC 2018 §3: with the timestamp option
/// (10 bytes and 2 of padding) "a maximum of 3 SACK blocks will be allowed" (2 + 3 * 8 more: 38 of 40).
pub const MAX_SACK_BLOCKS: usize = 3;

/// How far `seq` lies above `base`, modulo 2^32.
fn above(base: TcpSeqNumber, seq: TcpSeqNumber) -> u32 {
    seq.0.wrapping_sub(base.0)
}

/// `snd_nxt - snd_una` as a window size; 0 when `snd_nxt` is not after `snd_una` (so nothing is in it).
fn window(snd_una: TcpSeqNumber, snd_nxt: TcpSeqNumber) -> u32 {
    u32::try_from(snd_nxt - snd_una).unwrap_or(0)
}

/// `seq` as an offset above `base`, clamped into `[0, limit]` (a `seq` before `base` gives 0).
fn clamp_above(base: TcpSeqNumber, seq: TcpSeqNumber, limit: u32) -> u32 {
    u32::try_from(seq - base).unwrap_or(0).min(limit)
}

/// A half-open range of sequence numbers, with the time it was last added to (receiver side only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Range {
    start: TcpSeqNumber,
    end: TcpSeqNumber,
    stamp: u64,
}

const EMPTY: Range = Range { start: TcpSeqNumber(0), end: TcpSeqNumber(0), stamp: 0 };

/// Up to `N` disjoint, non-adjacent ranges, sorted by distance above a base the caller passes.
#[derive(Clone, Copy, Debug)]
struct RangeList<const N: usize> {
    ranges: [Range; N],
    len: usize,
}

impl<const N: usize> RangeList<N> {
    const fn new() -> Self {
        RangeList { ranges: [EMPTY; N], len: 0 }
    }

    fn as_slice(&self) -> &[Range] {
        &self.ranges[..self.len]
    }

    /// For a new range of offsets `[l, r)` above `base`: the index of the first range it overlaps or
    /// touches (or would be inserted at), and one past the last.
    fn span(&self, base: TcpSeqNumber, l: u32, r: u32) -> (usize, usize) {
        let list = self.as_slice();
        let first = list.partition_point(|x| above(base, x.end) < l);
        let last = list.partition_point(|x| above(base, x.start) <= r);
        (first, last.max(first))
    }

    /// True when adding `[start, end)` would need a range more than there is room for.
    fn would_overflow(&self, base: TcpSeqNumber, start: TcpSeqNumber, end: TcpSeqNumber) -> bool {
        let (first, last) = self.span(base, above(base, start), above(base, end));
        first == last && self.len == N
    }

    /// Adds `[start, end)` (non-empty, above `base`), merging what it overlaps or touches. A range that
    /// would be the `N + 1`th makes room by dropping the highest (itself, if it is the highest).
    fn insert(&mut self, base: TcpSeqNumber, start: TcpSeqNumber, end: TcpSeqNumber, stamp: u64) {
        let (l, r) = (above(base, start), above(base, end));
        let (first, last) = self.span(base, l, r);
        if first == last {
            if first == N {
                return;
            }
            let moved = self.len.min(N - 1);
            self.ranges.copy_within(first..moved, first + 1);
            self.ranges[first] = Range { start, end, stamp };
            self.len = moved + 1;
            return;
        }
        let low = self.ranges[first];
        let high = self.ranges[last - 1];
        self.ranges[first] = Range {
            start: if above(base, low.start) < l { low.start } else { start },
            end: if above(base, high.end) > r { high.end } else { end },
            stamp,
        };
        self.ranges.copy_within(last..self.len, first + 1);
        self.len -= last - first - 1;
    }

    /// The base moves up to `new_base`: forgets what lies below it and clips a range straddling it.
    fn trim_below(&mut self, base: TcpSeqNumber, new_base: TcpSeqNumber) {
        let cut = above(base, new_base);
        let gone = self.as_slice().partition_point(|x| above(base, x.end) <= cut);
        self.ranges.copy_within(gone..self.len, 0);
        self.len -= gone;
        if self.len > 0 && above(base, self.ranges[0].start) < cut {
            self.ranges[0].start = new_base;
        }
    }

    fn remove_first(&mut self) {
        self.ranges.copy_within(1..self.len, 0);
        self.len -= 1;
    }

    /// Total octets held.
    fn octets(&self) -> usize {
        self.as_slice().iter().map(|x| above(x.start, x.end) as usize).sum()
    }

    /// Octets held both here and in `other` (both sorted above `base`).
    fn common_octets(&self, other: &Self, base: TcpSeqNumber) -> usize {
        let (a, b) = (self.as_slice(), other.as_slice());
        let (mut i, mut j, mut common) = (0, 0, 0);
        while i < a.len() && j < b.len() {
            let (a_end, b_end) = (above(base, a[i].end), above(base, b[j].end));
            let lo = above(base, a[i].start).max(above(base, b[j].start));
            common += a_end.min(b_end).saturating_sub(lo) as usize;
            if a_end < b_end {
                i += 1;
            } else {
                j += 1;
            }
        }
        common
    }
}

/// The sender's record of which octets above `snd_una` the receiver has SACKed (RFC 2018 §5, the
/// "scoreboard" of RFC 6675 §3), with the RFC 6675 §4 queries recovery is built from.
///
/// Call order per ACK: [`on_cumulative_ack`](Self::on_cumulative_ack) with the new `snd_una` (or let
/// [`on_sack`](Self::on_sack) do it), `on_sack` with the option's blocks, then [`pipe`](Self::pipe)
/// and [`next_seg`](Self::next_seg) while deciding what to send.
///
/// At most [`MAX_SACKED_RANGES`] ranges are kept; a range past that drops the highest one. That is
/// safe: SACK information only ever lets the sender skip or delay retransmissions, and the sender keeps
/// every octet until it is cumulatively acknowledged (RFC 2018 §8: "Since the data receiver may later
/// discard data reported in a SACK option, the sender MUST NOT discard data before it is acknowledged
/// by the Acknowledgment Number field in the TCP header."). An octet forgotten here is merely treated as not SACKed: it may be resent needlessly, it counts in
/// `pipe` (so the sender sends less, not more), and it can only make `is_lost` false for holes below
/// it (retransmitting later, not sooner). The lowest ranges are the ones kept because recovery works
/// upward from `snd_una`, and a receiver reports its most recent, usually highest, ranges again soon.
/// 33 ranges need 33 holes in one window, a rare event.
///
/// After a retransmission timeout, RFC 2018 §5 says the sender "SHOULD turn off all of the SACKed
/// bits, since the timeout might indicate that the data receiver has reneged" ([`clear`](Self::clear)),
/// while RFC 6675 §5.1 lets a sender keep using the SACK information during the recovery after an
/// RTO; the connection chooses.
#[derive(Clone, Debug)]
pub struct Scoreboard {
    /// The `snd_una` the ranges lie above (they may start at it after a trim, never below it).
    una: TcpSeqNumber,
    sacked: RangeList<MAX_SACKED_RANGES>,
}

impl Default for Scoreboard {
    fn default() -> Self {
        Scoreboard::new()
    }
}

impl Scoreboard {
    /// An empty scoreboard.
    pub const fn new() -> Self {
        Scoreboard { una: TcpSeqNumber(0), sacked: RangeList::new() }
    }

    /// Forgets all SACK information.
    pub fn clear(&mut self) {
        self.sacked.len = 0;
    }

    /// Records the SACK blocks of an incoming ACK (`(left, right)` half-open, as on the wire) and
    /// returns the number of octets newly SACKed by it (octets SACKed now that were not before).
    ///
    /// A block is used only when `snd_una < left < right <= snd_nxt`. RFC 2018 §3: "the bytes just
    /// below the block, (Left Edge of Block - 1), and just above the block, (Right Edge of Block), have
    /// not been received", so a genuine block starts above the cumulative ACK; blocks at or below it
    /// are D-SACKs (RFC 2883) or stale, and blocks past `snd_nxt` report data never sent (in the
    /// spirit of RFC 5961's checks). Ignoring a block is always safe (see the type's documentation).
    /// `snd_una` also trims the scoreboard as [`on_cumulative_ack`](Self::on_cumulative_ack) does.
    pub fn on_sack(
        &mut self,
        snd_una: TcpSeqNumber,
        snd_nxt: TcpSeqNumber,
        blocks: &[(TcpSeqNumber, TcpSeqNumber)],
    ) -> usize {
        self.on_cumulative_ack(snd_una);
        let before = self.sacked;
        let wnd = window(self.una, snd_nxt);
        for &(left, right) in blocks {
            let (l, r) = (above(self.una, left), above(self.una, right));
            if 0 < l && l < r && r <= wnd {
                self.sacked.insert(self.una, left, right, 0);
            }
        }
        self.sacked.octets() - self.sacked.common_octets(&before, self.una)
    }

    /// The cumulative ACK moved to `snd_una`: forgets everything below it. A `snd_una` that is not
    /// after the previous one (a stale ACK) changes nothing.
    pub fn on_cumulative_ack(&mut self, snd_una: TcpSeqNumber) {
        if self.sacked.len == 0 {
            self.una = snd_una;
        } else if snd_una > self.una {
            self.sacked.trim_below(self.una, snd_una);
            self.una = snd_una;
        }
    }

    /// True when octet `seq` has been SACKed (false below `snd_una`: that is acknowledged, not SACKed).
    pub fn is_sacked(&self, seq: TcpSeqNumber) -> bool {
        let s = above(self.una, seq);
        self.sacked.as_slice().iter().any(|x| above(self.una, x.start) <= s && s < above(self.una, x.end))
    }

    /// Total SACKed octets above `snd_una`.
    pub fn sacked_bytes(&self) -> usize {
        self.sacked.octets()
    }

    /// One past the highest SACKed octet, if any: RFC 6675's "highest octet covered by any received
    /// SACK", plus one.
    pub fn high_sacked(&self) -> Option<TcpSeqNumber> {
        self.sacked.as_slice().last().map(|x| x.end)
    }

    /// The SACKed ranges `[start, end)`, lowest first.
    pub fn ranges(&self) -> impl DoubleEndedIterator<Item = (TcpSeqNumber, TcpSeqNumber)> + '_ {
        self.sacked.as_slice().iter().map(|x| (x.start, x.end))
    }

    /// RFC 6675 §4 `IsLost (SeqNum)`: "The routine returns true when either DupThresh discontiguous
    /// SACKed sequences have arrived above 'SeqNum' or more than (DupThresh - 1) * SMSS bytes with
    /// sequence numbers greater than 'SeqNum' have been SACKed. Otherwise, the routine returns false."
    /// The discontiguous sequences are the merged SACKed ranges holding octets above `seq`. False for
    /// octets below `snd_una`.
    pub fn is_lost(&self, seq: TcpSeqNumber, smss: usize) -> bool {
        let (count, octets) = self.sacked_above(seq);
        lost(count, octets, smss)
    }

    /// The SACKed ranges with octets above `seq`, and how many octets above `seq` they hold.
    fn sacked_above(&self, seq: TcpSeqNumber) -> (usize, usize) {
        let Some(from) = above(self.una, seq).checked_add(1) else { return (0, 0) };
        let mut count = 0;
        let mut octets = 0;
        for x in self.sacked.as_slice().iter().rev() {
            let end = above(self.una, x.end);
            if end <= from {
                break;
            }
            count += 1;
            octets += (end - above(self.una, x.start).max(from)) as usize;
        }
        (count, octets)
    }

    /// The SACKed ranges as offsets above `base`, lowest first, with anything below `base` cut off.
    fn offsets(&self, base: TcpSeqNumber) -> impl DoubleEndedIterator<Item = (u32, u32)> + '_ {
        self.sacked.as_slice().iter().filter_map(move |x| {
            let end = u32::try_from(x.end - base).ok().filter(|&end| end > 0)?;
            Some((clamp_above(base, x.start, end), end))
        })
    }

    /// RFC 6675 §4 `SetPipe ()`: "This routine traverses the sequence space from HighACK to HighData
    /// and MUST set the "pipe" variable to an estimate of the number of octets that are currently in
    /// transit between the TCP sender and the TCP receiver. After initializing pipe to zero, the
    /// following steps are taken for each octet 'S1' in the sequence space between HighACK and
    /// HighData that has not been SACKed: (a) If IsLost (S1) returns false: Pipe is incremented by
    /// 1 octet. [...] (b) If S1 <= HighRxt: Pipe is incremented by 1 octet."
    ///
    /// Walked by holes, not octets: between two SACKed ranges no octet is SACKed, so the SACKed data
    /// above every octet of a hole is the same and `IsLost` has one answer for the whole hole.
    /// `high_rxt` is one past the highest retransmitted octet (see the module documentation).
    pub fn pipe(
        &self,
        snd_una: TcpSeqNumber,
        snd_nxt: TcpSeqNumber,
        high_rxt: TcpSeqNumber,
        smss: usize,
    ) -> usize {
        let wnd = window(snd_una, snd_nxt);
        let rxt = clamp_above(snd_una, high_rxt, wnd);
        let hole = |lo: u32, hi: u32, is_lost: bool| {
            let in_flight = if is_lost { 0 } else { hi - lo };
            (in_flight + hi.min(rxt).saturating_sub(lo)) as usize
        };
        let (mut count, mut octets, mut pipe) = (0, 0, 0);
        let mut top = wnd; // The hole under examination ends here.
        for (start, end) in self.offsets(snd_una).rev() {
            if end < top {
                pipe += hole(end, top, lost(count, octets, smss));
            }
            count += 1;
            octets += (end - start) as usize;
            top = top.min(start);
        }
        pipe + hole(0, top, lost(count, octets, smss))
    }

    /// RFC 6675 §4 `NextSeg ()` rules (1) and, when `rule3`, (3); the connection applies rule (2)
    /// (new data) itself, and rule (4) with [`rescue_candidate`](Self::rescue_candidate).
    ///
    /// "(1) If there exists a smallest unSACKed sequence number 'S2' that meets the following three
    /// criteria for determining loss, the sequence range of one segment of up to SMSS octets starting
    /// with S2 MUST be returned. (1.a) S2 is greater than HighRxt. (1.b) S2 is less than the highest
    /// octet covered by any received SACK. (1.c) IsLost (S2) returns true."
    ///
    /// "(3) If the conditions for rules (1) and (2) fail, but there exists an unSACKed sequence number
    /// 'S3' that meets the criteria for detecting loss given in steps (1.a) and (1.b) above
    /// (specifically excluding step (1.c)), then one segment of up to SMSS octets starting with S3
    /// SHOULD be returned."
    ///
    /// Both start at the lowest unSACKed octet at or above `high_rxt` (and `snd_una`): IsLost only
    /// weakens going up (less is SACKed above a higher octet), so if that octet is not lost, none
    /// above it is. Returns `(start, len)`, `len <= smss`, ending before the next SACKed range.
    pub fn next_seg(
        &self,
        snd_una: TcpSeqNumber,
        snd_nxt: TcpSeqNumber,
        high_rxt: TcpSeqNumber,
        smss: usize,
        rule3: bool,
    ) -> Option<(TcpSeqNumber, usize)> {
        let wnd = window(snd_una, snd_nxt);
        let mut s = clamp_above(snd_una, high_rxt, wnd);
        for (start, end) in self.offsets(snd_una) {
            if end <= s {
                continue;
            }
            if start <= s {
                s = end; // Inside a SACKed range: the candidate is just above it.
                continue;
            }
            // `s` is unSACKed and SACKed data lies above it (1.b).
            let len = (start.min(wnd).saturating_sub(s) as usize).min(smss);
            let seq = snd_una + s as usize;
            return (len > 0 && (rule3 || self.is_lost(seq, smss))).then_some((seq, len));
        }
        None
    }

    /// The segment of RFC 6675 §4 `NextSeg ()` rule (4), the rescue retransmission: "one segment of up
    /// to SMSS octets that MUST include the highest outstanding unSACKed sequence number". It ends
    /// with that octet and does not reach down into SACKed data. `None` when every outstanding octet
    /// is SACKed. Whether to send it (rules 1 to 3 failed, HighACK > RescueRxt) and RescueRxt itself
    /// are the connection's.
    pub fn rescue_candidate(
        &self,
        snd_una: TcpSeqNumber,
        snd_nxt: TcpSeqNumber,
        smss: usize,
    ) -> Option<(TcpSeqNumber, usize)> {
        let mut top = window(snd_una, snd_nxt); // One past the highest unSACKed octet.
        let mut floor = 0; // The end of the SACKed range below it.
        for (start, end) in self.offsets(snd_una).rev() {
            if start >= top {
                continue;
            }
            if end >= top {
                top = start;
                continue;
            }
            floor = end;
            break;
        }
        let len = ((top - floor) as usize).min(smss);
        (len > 0).then(|| (snd_una + (top as usize - len), len))
    }
}

/// IsLost's test, given the SACKed ranges above an octet and the octets in them.
fn lost(count: usize, octets: usize, smss: usize) -> bool {
    count >= DUP_THRESH || octets > (DUP_THRESH - 1).saturating_mul(smss)
}

/// The receiver's out-of-order data above `rcv_nxt`: which ranges it holds, and which to report in the
/// SACK blocks of its ACKs (RFC 2018 §4).
///
/// Call order: [`insert`](Self::insert) each out-of-order segment (and keep its payload only when that
/// returns true); after in-order data moves `rcv_nxt`, [`advance`](Self::advance) to it, which
/// pulls in a range it now reaches; build each ACK's option with [`sack_blocks`](Self::sack_blocks).
///
/// At most [`MAX_RECEIVED_RANGES`] ranges are held. A segment that would need one more is refused
/// rather than forgetting an older range: forgetting data already SACKed would be reneging (RFC 2018
/// §8, allowed but costly: the sender keeps it and waits for a timeout), while a refused segment is
/// just a drop the sender repairs by retransmission.
#[derive(Clone, Debug)]
pub struct ReceivedRanges {
    rcv_nxt: TcpSeqNumber,
    held: RangeList<MAX_RECEIVED_RANGES>,
    /// Stamps ranges with the order segments arrived in, for the recency of RFC 2018 §4.
    clock: u64,
}

impl Default for ReceivedRanges {
    fn default() -> Self {
        ReceivedRanges::new(TcpSeqNumber(0))
    }
}

impl ReceivedRanges {
    /// Nothing held, `rcv_nxt` as given (an empty set also takes any `rcv_nxt` from `advance`).
    pub const fn new(rcv_nxt: TcpSeqNumber) -> Self {
        ReceivedRanges { rcv_nxt, held: RangeList::new(), clock: 0 }
    }

    /// Forgets every range and restarts at `rcv_nxt`.
    pub fn reset(&mut self, rcv_nxt: TcpSeqNumber) {
        *self = ReceivedRanges::new(rcv_nxt);
    }

    /// The `rcv_nxt` the ranges lie above.
    pub fn rcv_nxt(&self) -> TcpSeqNumber {
        self.rcv_nxt
    }

    /// Records a received segment `[start, end)`; the part below `rcv_nxt` is ignored. Returns false
    /// when the segment is refused (it would need more than [`MAX_RECEIVED_RANGES`] ranges, or
    /// `end` precedes `start`): the caller must then drop its payload. True otherwise, including for a
    /// segment with nothing new in it.
    #[must_use]
    pub fn insert(&mut self, start: TcpSeqNumber, end: TcpSeqNumber) -> bool {
        if end - start < 0 {
            return false;
        }
        if end - start == 0 || end - self.rcv_nxt <= 0 {
            return true;
        }
        let start = if start - self.rcv_nxt < 0 { self.rcv_nxt } else { start };
        if self.held.would_overflow(self.rcv_nxt, start, end) {
            return false;
        }
        self.clock += 1;
        self.held.insert(self.rcv_nxt, start, end, self.clock);
        true
    }

    /// In-order data moved `rcv_nxt` here. Ranges below it are forgotten; when `rcv_nxt` reaches a
    /// range, that range is now in order too: it is removed and the new `rcv_nxt` (its end) returned.
    /// A `rcv_nxt` before the current one changes nothing (unless nothing is held: then it is taken).
    pub fn advance(&mut self, rcv_nxt: TcpSeqNumber) -> Option<TcpSeqNumber> {
        if self.held.len == 0 {
            self.rcv_nxt = rcv_nxt;
            return None;
        }
        if rcv_nxt - self.rcv_nxt < 0 {
            return None;
        }
        self.held.trim_below(self.rcv_nxt, rcv_nxt);
        self.rcv_nxt = rcv_nxt;
        let first = *self.held.as_slice().first()?;
        if first.start != rcv_nxt {
            return None;
        }
        self.held.remove_first();
        self.rcv_nxt = first.end;
        Some(first.end)
    }

    /// The held ranges `[start, end)`, lowest first.
    pub fn ranges(&self) -> impl DoubleEndedIterator<Item = (TcpSeqNumber, TcpSeqNumber)> + '_ {
        self.held.as_slice().iter().map(|x| (x.start, x.end))
    }

    /// True when nothing is held above `rcv_nxt`.
    pub fn is_empty(&self) -> bool {
        self.held.len == 0
    }

    /// Fills `out` from the front with up to three SACK blocks `(left, right)` and returns how many.
    /// `most_recent` is the segment that triggered this ACK, if it was out of order.
    ///
    /// RFC 2018 §4: "The first SACK block (i.e., the one immediately following the kind and length
    /// fields in the option) MUST specify the contiguous block of data containing the segment which
    /// triggered this ACK, unless that segment advanced the Acknowledgment Number field in the
    /// header." "The data receiver SHOULD include as many distinct SACK blocks as possible in the SACK
    /// option." "The SACK option SHOULD be filled out by repeating the most recently reported SACK
    /// blocks (based on first SACK blocks in previous SACK options) that are not subsets of a SACK
    /// block already included in the SACK option being constructed."
    ///
    /// So: the range holding `most_recent` first, then the others, most recently added to first (a
    /// range added to was the first block of the ACK that segment triggered). The ranges are
    /// disjoint, so none is a subset of another. A range at `rcv_nxt` is never reported (its data is
    /// in order; call [`advance`](Self::advance)).
    pub fn sack_blocks(
        &self,
        most_recent: Option<(TcpSeqNumber, TcpSeqNumber)>,
        out: &mut [(u32, u32); MAX_SACK_BLOCKS],
    ) -> usize {
        let held = self.held.as_slice();
        let base = self.rcv_nxt;
        let reportable = |i: usize| above(base, held[i].start) > 0;
        let mut chosen = [usize::MAX; MAX_SACK_BLOCKS];
        let mut n = 0;
        if let Some((start, end)) = most_recent.filter(|&(start, end)| end - start > 0 && end - base > 0) {
            // The segment's part above rcv_nxt, as offsets: [s, e).
            let (s, e) = (clamp_above(base, start, u32::MAX), above(base, end));
            let holds = |i: usize| above(base, held[i].start) < e && s < above(base, held[i].end);
            if let Some(i) = (0..held.len()).find(|&i| holds(i)).filter(|&i| reportable(i)) {
                chosen[0] = i;
                n = 1;
            }
        }
        while n < MAX_SACK_BLOCKS {
            let next = (0..held.len())
                .filter(|&i| reportable(i) && !chosen[..n].contains(&i))
                .max_by_key(|&i| held[i].stamp);
            let Some(i) = next else { break };
            chosen[n] = i;
            n += 1;
        }
        for (slot, &i) in out.iter_mut().zip(&chosen[..n]) {
            *slot = (held[i].start.0, held[i].end.0);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SMSS: usize = 1000;

    /// Initial sequence numbers for the scenarios: plain, and placed so the data crosses 2^32.
    const ISNS: [u32; 4] = [0, 1_000_000, u32::MAX - 2_500, u32::MAX - 9_999];

    fn seq(n: u32) -> TcpSeqNumber {
        TcpSeqNumber(n)
    }

    /// Segment `k` (counted from 1) of a flight of SMSS-sized segments starting at `isn`.
    fn seg(isn: u32, k: usize) -> (TcpSeqNumber, TcpSeqNumber) {
        (seq(isn) + (k - 1) * SMSS, seq(isn) + k * SMSS)
    }

    fn pairs(it: impl Iterator<Item = (TcpSeqNumber, TcpSeqNumber)>) -> Vec<(u32, u32)> {
        it.map(|(s, e)| (s.0, e.0)).collect()
    }

    #[test]
    fn test_recovery_one_loss_sacks_arrive_one_by_one() {
        // Ten segments sent, 1 and 2 acknowledged, 3 lost; SACKs for 4..=10 arrive one at a time.
        for isn in ISNS {
            let (una, nxt) = (seg(isn, 3).0, seg(isn, 10).1);
            let mut sb = Scoreboard::new();
            sb.on_cumulative_ack(una);
            for k in 4..=10 {
                let n = k - 3; // Segments SACKed so far.
                let ctx = format!("isn {isn}, SACK of segment {k}");
                assert_eq!(sb.on_sack(una, nxt, &[(seg(isn, 4).0, seg(isn, k).1)]), SMSS, "{ctx}");
                assert_eq!(sb.sacked_bytes(), n * SMSS, "{ctx}");
                assert_eq!(sb.high_sacked(), Some(seg(isn, k).1), "{ctx}");
                // One contiguous range above segment 3, so only the byte rule can fire: it does when
                // more than 2 * SMSS octets are SACKed, at the third SACK.
                let lost = n >= 3;
                assert_eq!(sb.is_lost(seg(isn, 3).0, SMSS), lost, "{ctx}");
                assert_eq!(sb.is_lost(seg(isn, 3).1 - 1, SMSS), lost, "{ctx}");
                assert!(!sb.is_lost(seg(isn, k).1, SMSS), "{ctx}: nothing SACKed above the highest SACK");
                // Eight segments outstanding from segment 3; SACKed ones leave the pipe, and so does
                // segment 3 once it is deemed lost.
                let in_flight = (8 - n - usize::from(lost)) * SMSS;
                assert_eq!(sb.pipe(una, nxt, una, SMSS), in_flight, "{ctx}");
                let seg3 = Some((seg(isn, 3).0, SMSS));
                assert_eq!(sb.next_seg(una, nxt, una, SMSS, false), if lost { seg3 } else { None }, "{ctx}");
                assert_eq!(sb.next_seg(una, nxt, una, SMSS, true), seg3, "{ctx}");
                // Segment 3 retransmitted (HighRxt past it): it is in the pipe once more, and nothing
                // unSACKed is left between it and the highest SACK.
                let rxt = seg(isn, 3).1;
                assert_eq!(sb.pipe(una, nxt, rxt, SMSS), in_flight + SMSS, "{ctx}");
                assert_eq!(sb.next_seg(una, nxt, rxt, SMSS, true), None, "{ctx}");
            }
            assert_eq!(sb.pipe(una, nxt, seg(isn, 3).1, SMSS), SMSS, "only the retransmission is in flight");
            sb.on_cumulative_ack(nxt);
            assert_eq!((sb.sacked_bytes(), sb.high_sacked(), sb.ranges().count()), (0, None, 0));
            assert_eq!(sb.pipe(nxt, nxt, nxt, SMSS), 0);
        }
    }

    #[test]
    fn test_recovery_two_holes_rule3_after_high_rxt_passes_the_first() {
        // Segments 3 and 6 lost out of ten; segment 1..=2 acknowledged.
        for isn in ISNS {
            let (una, nxt) = (seg(isn, 3).0, seg(isn, 10).1);
            let s = |k| seg(isn, k);
            let mut sb = Scoreboard::new();
            assert_eq!(sb.on_sack(una, nxt, &[(s(4).0, s(4).1)]), SMSS);
            assert_eq!(sb.on_sack(una, nxt, &[(s(4).0, s(5).1)]), SMSS);
            assert_eq!(sb.on_sack(una, nxt, &[(s(7).0, s(7).1), (s(4).0, s(5).1)]), SMSS);
            assert_eq!(pairs(sb.ranges()), [(s(4).0 .0, s(5).1 .0), (s(7).0 .0, s(7).1 .0)]);
            // Above segment 3: 2 ranges, 3000 octets (> 2 * SMSS). Above segment 6: 1 range, 1000.
            assert!(sb.is_lost(s(3).0, SMSS));
            assert!(!sb.is_lost(s(6).0, SMSS));
            // Pipe: segment 6 and segments 8..=10 (not lost), segment 3 lost.
            assert_eq!(sb.pipe(una, nxt, una, SMSS), 4 * SMSS);
            assert_eq!(sb.next_seg(una, nxt, una, SMSS, false), Some((s(3).0, SMSS)));
            // Segment 3 resent: rule (1) has nothing; rule (3) offers segment 6.
            let rxt = s(3).1;
            assert_eq!(sb.pipe(una, nxt, rxt, SMSS), 5 * SMSS);
            assert_eq!(sb.next_seg(una, nxt, rxt, SMSS, false), None);
            assert_eq!(sb.next_seg(una, nxt, rxt, SMSS, true), Some((s(6).0, SMSS)));
            // Segment 8 SACKed: 2000 octets above segment 6, not more than 2 * SMSS: still not lost.
            assert_eq!(sb.on_sack(una, nxt, &[(s(7).0, s(8).1), (s(4).0, s(5).1)]), SMSS);
            assert!(!sb.is_lost(s(6).0, SMSS));
            assert_eq!(sb.next_seg(una, nxt, rxt, SMSS, false), None);
            // Segment 9 SACKed: 3000 octets above segment 6: lost, rule (1) now picks it.
            assert_eq!(sb.on_sack(una, nxt, &[(s(7).0, s(9).1), (s(4).0, s(5).1)]), SMSS);
            assert!(sb.is_lost(s(6).0, SMSS));
            assert_eq!(sb.next_seg(una, nxt, rxt, SMSS, false), Some((s(6).0, SMSS)));
            // A partial resend of segment 6 (HighRxt inside it) leaves the rest of it as the next.
            let rxt = s(6).0 + 400;
            assert_eq!(sb.next_seg(una, nxt, rxt, SMSS, false), Some((rxt, 600)));
            // The cumulative ACK for segment 3's retransmission arrives with the same SACKs.
            assert_eq!(sb.on_sack(s(6).0, nxt, &[(s(7).0, s(9).1)]), 0);
            assert_eq!(pairs(sb.ranges()), [(s(7).0 .0, s(9).1 .0)]);
            assert_eq!(sb.sacked_bytes(), 3 * SMSS);
        }
    }

    #[test]
    fn test_is_lost_counts_discontiguous_ranges() {
        let (una, nxt) = (seq(0), seq(10_000));
        let mut sb = Scoreboard::new();
        sb.on_sack(una, nxt, &[(seq(100), seq(200)), (seq(300), seq(400))]);
        assert!(!sb.is_lost(seq(0), SMSS), "2 ranges, 200 octets");
        sb.on_sack(una, nxt, &[(seq(500), seq(600))]);
        assert!(sb.is_lost(seq(0), SMSS), "3 ranges");
        assert!(sb.is_lost(seq(99), SMSS));
        assert!(!sb.is_lost(seq(250), SMSS), "2 ranges above");
        // Touching blocks merge into one range: not discontiguous.
        let mut sb = Scoreboard::new();
        sb.on_sack(una, nxt, &[(seq(100), seq(200)), (seq(200), seq(300)), (seq(300), seq(400))]);
        assert_eq!(pairs(sb.ranges()), [(100, 400)]);
        assert!(!sb.is_lost(seq(0), SMSS));
        // The byte rule is "more than" (DupThresh - 1) * SMSS.
        let mut sb = Scoreboard::new();
        sb.on_sack(una, nxt, &[(seq(1000), seq(3000))]);
        assert!(!sb.is_lost(seq(999), SMSS));
        sb.on_sack(una, nxt, &[(seq(1000), seq(3001))]);
        assert!(sb.is_lost(seq(999), SMSS));
        assert!(!sb.is_lost(seq(999), SMSS + 1));
    }

    #[test]
    fn test_dsack_and_garbage_blocks_are_ignored() {
        for isn in ISNS {
            let (una, nxt) = (seq(isn) + 5000, seq(isn) + 15000);
            let at = |n: usize| seq(isn) + n;
            let mut sb = Scoreboard::new();
            let garbage = [
                (at(4000), at(5000)),         // D-SACK: a duplicate below snd_una (RFC 2883)
                (at(4500), at(6000)),         // straddles snd_una
                (at(5000), at(6000)),         // starts at snd_una: contradicts the cumulative ACK
                (at(14000), at(15001)),       // ends past snd_nxt
                (at(16000), at(17000)),       // never sent
                (at(7000), at(7000)),         // empty
                (at(8000), at(7000)),         // inverted
                (una + (1 << 31), una + 100), // half the sequence space away
                (una + 100, una + (1 << 31)), // wider than any window
            ];
            assert_eq!(sb.on_sack(una, nxt, &garbage), 0, "isn {isn}");
            assert_eq!((sb.sacked_bytes(), sb.high_sacked()), (0, None));
            // A D-SACK block first, then a genuine one: only the genuine one counts.
            assert_eq!(sb.on_sack(una, nxt, &[(at(4000), at(5000)), (at(9000), at(10000))]), 1000);
            // A block ending exactly at snd_nxt is fine.
            assert_eq!(sb.on_sack(una, nxt, &[(at(14000), at(15000))]), 1000);
            assert_eq!(pairs(sb.ranges()), [(at(9000).0, at(10000).0), (at(14000).0, at(15000).0)]);
        }
    }

    #[test]
    fn test_on_sack_counts_newly_sacked_octets_once() {
        let (una, nxt) = (seq(0), seq(10_000));
        let mut sb = Scoreboard::new();
        assert_eq!(sb.on_sack(una, nxt, &[(seq(1000), seq(3000)), (seq(2000), seq(4000))]), 3000);
        assert_eq!(sb.on_sack(una, nxt, &[(seq(2000), seq(4000)), (seq(1000), seq(3000))]), 0);
        assert_eq!(sb.on_sack(una, nxt, &[(seq(1000), seq(5000))]), 1000);
        assert_eq!(sb.on_sack(una, nxt, &[(seq(6000), seq(7000)), (seq(4500), seq(6500))]), 2000);
        assert_eq!(pairs(sb.ranges()), [(1000, 7000)]);
    }

    #[test]
    fn test_scoreboard_keeps_the_lowest_ranges() {
        let (una, nxt) = (seq(0), seq(1_000_000));
        let mut sb = Scoreboard::new();
        for i in 0..40u32 {
            let got = sb.on_sack(una, nxt, &[(seq(100 * i + 10), seq(100 * i + 20))]);
            assert_eq!(got, if (i as usize) < MAX_SACKED_RANGES { 10 } else { 0 }, "block {i}");
        }
        let want: Vec<(u32, u32)> = (0..32).map(|i| (100 * i + 10, 100 * i + 20)).collect();
        assert_eq!(pairs(sb.ranges()), want);
        assert_eq!((sb.sacked_bytes(), sb.high_sacked()), (320, Some(seq(3120))));
        // A new lowest range pushes out the highest; the count is of octets newly SACKed.
        assert_eq!(sb.on_sack(una, nxt, &[(seq(1), seq(5))]), 4);
        assert_eq!(sb.ranges().count(), MAX_SACKED_RANGES);
        assert_eq!((sb.ranges().next(), sb.high_sacked()), (Some((seq(1), seq(5))), Some(seq(3020))));
        // A block bridging two ranges frees a slot.
        assert_eq!(sb.on_sack(una, nxt, &[(seq(15), seq(115))]), 90);
        assert_eq!(sb.ranges().count(), MAX_SACKED_RANGES - 1);
        assert!(sb.is_sacked(seq(60)) && !sb.is_sacked(seq(5)) && !sb.is_sacked(seq(3110)));
    }

    #[test]
    fn test_cumulative_ack_trims() {
        for isn in ISNS {
            let at = |n: usize| seq(isn) + n;
            let mut sb = Scoreboard::new();
            sb.on_sack(at(0), at(10_000), &[(at(1000), at(2000)), (at(3000), at(4000))]);
            sb.on_cumulative_ack(at(1500));
            assert_eq!(pairs(sb.ranges()), [(at(1500).0, at(2000).0), (at(3000).0, at(4000).0)]);
            assert_eq!(sb.sacked_bytes(), 1500);
            sb.on_cumulative_ack(at(500));
            assert_eq!(sb.sacked_bytes(), 1500, "a stale ACK changes nothing");
            sb.on_cumulative_ack(at(2000));
            assert_eq!(pairs(sb.ranges()), [(at(3000).0, at(4000).0)]);
            // Octets below snd_una are acknowledged: neither SACKed nor lost.
            assert!(!sb.is_sacked(at(1800)) && !sb.is_lost(at(1800), 1));
            assert!(sb.is_sacked(at(3000)) && sb.is_sacked(at(3999)) && !sb.is_sacked(at(4000)));
            sb.on_cumulative_ack(at(4000));
            assert_eq!((sb.sacked_bytes(), sb.high_sacked()), (0, None));
            // Empty, it follows any snd_una (a new connection, a jump).
            sb.on_cumulative_ack(at(0));
            assert_eq!(sb.on_sack(at(0), at(100), &[(at(50), at(60))]), 10);
            sb.clear();
            assert_eq!((sb.sacked_bytes(), sb.ranges().count()), (0, 0));
        }
    }

    #[test]
    fn test_high_rxt_outside_the_window_is_clamped() {
        let (una, nxt) = (seq(u32::MAX - 99), seq(u32::MAX - 99) + 10_000);
        let mut sb = Scoreboard::new();
        sb.on_sack(una, nxt, &[(una + 1000, una + 2000), (una + 3000, una + 4000), (una + 5000, una + 6000)]);
        // A HighRxt left behind by the cumulative ACK is the same as none.
        let stale = una - 500;
        assert_eq!(sb.pipe(una, nxt, stale, SMSS), sb.pipe(una, nxt, una, SMSS));
        assert_eq!(sb.next_seg(una, nxt, stale, SMSS, false), Some((una, SMSS)));
        // Past snd_nxt: every unSACKed octet counts as retransmitted, and nothing is left to resend.
        let beyond = nxt + 500;
        assert_eq!(sb.pipe(una, nxt, beyond, SMSS), sb.pipe(una, nxt, nxt, SMSS));
        assert_eq!(sb.next_seg(una, nxt, beyond, SMSS, true), None);
    }

    #[test]
    fn test_rescue_candidate_ends_at_the_highest_unsacked_octet() {
        let (una, nxt) = (seq(0), seq(10_000));
        let mut sb = Scoreboard::new();
        assert_eq!(sb.rescue_candidate(una, nxt, SMSS), Some((seq(9000), SMSS)));
        sb.on_sack(una, nxt, &[(seq(2000), seq(3000)), (seq(8000), seq(10_000))]);
        assert_eq!(sb.rescue_candidate(una, nxt, SMSS), Some((seq(7000), SMSS)));
        assert_eq!(sb.rescue_candidate(una, nxt, 3 * SMSS), Some((seq(5000), 3 * SMSS)));
        assert_eq!(
            sb.rescue_candidate(una, nxt, 9 * SMSS),
            Some((seq(3000), 5 * SMSS)),
            "not into SACKed data"
        );
        sb.on_sack(seq(2000), nxt, &[(seq(3000), seq(8000))]);
        assert_eq!(sb.rescue_candidate(seq(2000), nxt, SMSS), None, "all outstanding data is SACKed");
        assert_eq!(sb.rescue_candidate(nxt, nxt, SMSS), None);
    }

    #[test]
    fn test_next_seg_stops_before_sacked_data_and_snd_nxt() {
        let (una, nxt) = (seq(0), seq(10_000));
        let mut sb = Scoreboard::new();
        sb.on_sack(una, nxt, &[(seq(300), seq(400)), (seq(500), seq(600)), (seq(700), seq(800))]);
        assert_eq!(sb.next_seg(una, nxt, una, SMSS, false), Some((seq(0), 300)));
        assert_eq!(sb.next_seg(una, nxt, seq(300), SMSS, false), None, "two ranges above: not lost");
        assert_eq!(sb.next_seg(una, nxt, seq(300), SMSS, true), Some((seq(400), 100)));
        assert_eq!(sb.next_seg(una, nxt, seq(450), SMSS, true), Some((seq(450), 50)));
        assert_eq!(sb.next_seg(una, nxt, seq(10), 64, false), Some((seq(10), 64)));
        assert_eq!(sb.next_seg(una, nxt, seq(800), SMSS, true), None, "nothing SACKed above");
        assert_eq!(sb.next_seg(una, nxt, una, 0, true), None);
    }

    /// Every ordering of `items`.
    fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
        if items.len() <= 1 {
            return vec![items.to_vec()];
        }
        let mut all = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.to_vec();
            let first = rest.remove(i);
            for mut p in permutations(&rest) {
                p.insert(0, first.clone());
                all.push(p);
            }
        }
        all
    }

    #[test]
    fn test_received_ranges_merge_in_any_order() {
        let segments = [(10, 20), (20, 30), (40, 50), (45, 60), (70, 80), (30, 32)];
        for isn in ISNS {
            let rcv_nxt = seq(isn);
            let want: Vec<(u32, u32)> = [(10, 32), (40, 60), (70, 80)]
                .iter()
                .map(|&(s, e)| ((rcv_nxt + s).0, (rcv_nxt + e).0))
                .collect();
            for order in permutations(&segments) {
                let mut rx = ReceivedRanges::new(rcv_nxt);
                for &(s, e) in &order {
                    assert!(rx.insert(rcv_nxt + s, rcv_nxt + e));
                }
                assert_eq!(pairs(rx.ranges()), want, "isn {isn}, order {order:?}");
                assert_eq!(rx.advance(rcv_nxt + 10), Some(rcv_nxt + 32), "order {order:?}");
            }
        }
    }

    #[test]
    fn test_received_ranges_advance() {
        for isn in ISNS {
            let at = |n: usize| seq(isn) + n;
            let mut rx = ReceivedRanges::new(at(100));
            assert!(rx.insert(at(200), at(300)) && rx.insert(at(400), at(500)));
            assert_eq!(rx.advance(at(150)), None);
            assert_eq!((rx.rcv_nxt(), rx.ranges().count()), (at(150), 2));
            assert_eq!(rx.advance(at(200)), Some(at(300)), "rcv_nxt reached a range");
            assert_eq!(pairs(rx.ranges()), [(at(400).0, at(500).0)]);
            assert_eq!(rx.advance(at(250)), None, "stale");
            assert_eq!(rx.rcv_nxt(), at(300));
            assert_eq!(rx.advance(at(450)), Some(at(500)), "in-order data overlapping a range");
            assert!(rx.is_empty());
            assert_eq!(rx.advance(at(50)), None);
            assert_eq!(rx.rcv_nxt(), at(50), "an empty set takes any rcv_nxt");
            // Data partly below rcv_nxt: only the part above is recorded; old data is accepted.
            assert!(rx.insert(at(20), at(80)));
            assert_eq!(pairs(rx.ranges()), [(at(50).0, at(80).0)]);
            assert!(rx.insert(at(0), at(50)) && rx.insert(at(30), at(30)));
            assert!(!rx.insert(at(60), at(55)), "inverted");
            let mut out = [(0, 0); MAX_SACK_BLOCKS];
            assert_eq!(rx.sack_blocks(Some((at(20), at(80))), &mut out), 0, "at rcv_nxt: in order");
            assert_eq!(rx.advance(at(50)), Some(at(80)));
        }
    }

    #[test]
    fn test_received_ranges_are_bounded_without_reneging() {
        let mut rx = ReceivedRanges::new(seq(0));
        for i in 0..MAX_RECEIVED_RANGES as u32 {
            assert!(rx.insert(seq(10 + 20 * i), seq(20 + 20 * i)), "range {i}");
        }
        let before = pairs(rx.ranges());
        assert!(!rx.insert(seq(1000), seq(1010)), "a 17th range above");
        assert!(!rx.insert(seq(1), seq(5)), "a 17th range below");
        assert_eq!(pairs(rx.ranges()), before);
        assert!(rx.insert(seq(15), seq(35)), "bridging two ranges");
        assert!(rx.insert(seq(1000), seq(1010)), "room again");
        assert!(rx.insert(seq(100), seq(105)), "inside or touching a range never needs room");
    }

    #[test]
    fn test_sack_blocks_follow_rfc2018_order() {
        // 500-octet segments from `isn`; the first arrives in order, then the 2nd, 4th, 6th and 8th
        // are lost and the others trigger ACKs with SACK options.
        for isn in ISNS {
            let s = |k: usize| (seq(isn) + (k - 1) * 500, seq(isn) + k * 500);
            let block = |a: usize, b: usize| (s(a).0 .0, s(b).1 .0);
            let mut rx = ReceivedRanges::new(s(2).0);
            let mut out = [(0, 0); MAX_SACK_BLOCKS];
            let mut arrive = |rx: &mut ReceivedRanges, k: usize| {
                assert!(rx.insert(s(k).0, s(k).1));
                let n = rx.sack_blocks(Some(s(k)), &mut out);
                out[..n].to_vec()
            };
            assert_eq!(arrive(&mut rx, 3), [block(3, 3)]);
            assert_eq!(arrive(&mut rx, 5), [block(5, 5), block(3, 3)]);
            assert_eq!(arrive(&mut rx, 7), [block(7, 7), block(5, 5), block(3, 3)]);
            assert_eq!(arrive(&mut rx, 9), [block(9, 9), block(7, 7), block(5, 5)], "the oldest left out");
            // The 4th arrives: its block (3..=5) first, then the most recently reported others.
            assert_eq!(arrive(&mut rx, 4), [block(3, 5), block(9, 9), block(7, 7)]);
            // A duplicate of the 7th: its block is first again.
            assert_eq!(arrive(&mut rx, 7), [block(7, 7), block(3, 5), block(9, 9)]);
            // The 2nd arrives in order and advances the ACK: no first block for it.
            assert_eq!(rx.advance(s(2).1), Some(s(5).1));
            let n = rx.sack_blocks(Some(s(2)), &mut out);
            assert_eq!(out[..n], [block(7, 7), block(9, 9)]);
            let n = rx.sack_blocks(None, &mut out);
            assert_eq!(out[..n], [block(7, 7), block(9, 9)]);
        }
    }

    /// The runs of set flags, as `[start, end)` offsets.
    fn runs(bits: &[bool]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < bits.len() {
            if bits[i] {
                let start = i;
                while i < bits.len() && bits[i] {
                    i += 1;
                }
                out.push((start, i));
            }
            i += 1;
        }
        out
    }

    /// Offsets the models use: the sequence space from `isn` up to this.
    const SPACE: usize = 1500;

    /// The scoreboard, octet by octet: one flag per offset from `isn`, rules as RFC 6675 words them.
    struct ScoreModel {
        isn: u32,
        una: usize,
        nxt: usize,
        sacked: Vec<bool>,
    }

    impl ScoreModel {
        fn seq(&self, off: i64) -> TcpSeqNumber {
            TcpSeqNumber(self.isn.wrapping_add(off as u32))
        }

        fn ack(&mut self, una: usize) {
            self.una = una;
            self.sacked[..una].fill(false);
        }

        fn on_sack(&mut self, blocks: &[(i64, i64)]) -> usize {
            let before = self.sacked.clone();
            for &(l, r) in blocks {
                if (self.una as i64) < l && l < r && r <= self.nxt as i64 {
                    self.sacked[l as usize..r as usize].fill(true);
                    // Over the bound: the highest range goes.
                    let all = runs(&self.sacked);
                    if all.len() > MAX_SACKED_RANGES {
                        let (s, e) = all[all.len() - 1];
                        self.sacked[s..e].fill(false);
                    }
                }
            }
            self.sacked.iter().zip(&before).filter(|&(now, was)| *now && !*was).count()
        }

        /// IsLost for every offset: DupThresh runs, or more than (DupThresh - 1) * SMSS octets, above.
        fn lost(&self, smss: usize) -> Vec<bool> {
            let mut lost = vec![false; SPACE];
            let (mut runs_above, mut octets_above) = (0, 0);
            for s in (0..SPACE).rev() {
                lost[s] = runs_above >= DUP_THRESH || octets_above > (DUP_THRESH - 1) * smss;
                if self.sacked[s] {
                    octets_above += 1;
                    if s + 1 == SPACE || !self.sacked[s + 1] {
                        runs_above += 1;
                    }
                }
            }
            lost
        }

        fn pipe(&self, rxt: usize, lost: &[bool]) -> usize {
            (self.una..self.nxt)
                .filter(|&s| !self.sacked[s])
                .map(|s| usize::from(!lost[s]) + usize::from(s < rxt)) // S1 <= HighRxt = rxt - 1
                .sum()
        }

        fn unsacked_from(&self, s: usize, smss: usize) -> usize {
            (s..self.nxt).take_while(|&x| !self.sacked[x]).take(smss).count()
        }

        fn next_seg(&self, rxt: usize, smss: usize, rule3: bool, lost: &[bool]) -> Option<(usize, usize)> {
            let highest_sacked = self.sacked.iter().rposition(|&b| b)?;
            let candidates =
                || (rxt.max(self.una)..self.nxt).filter(|&s| !self.sacked[s] && s < highest_sacked);
            let s = match candidates().find(|&s| lost[s]) {
                Some(s) => s,
                None if rule3 => candidates().next()?,
                None => return None,
            };
            Some((s, self.unsacked_from(s, smss))).filter(|&(_, len)| len > 0)
        }

        fn rescue(&self, smss: usize) -> Option<(usize, usize)> {
            let top = (self.una..self.nxt).rev().find(|&s| !self.sacked[s])?;
            let len = (self.una..=top).rev().take_while(|&x| !self.sacked[x]).take(smss).count();
            Some((top + 1 - len, len))
        }
    }

    #[derive(Debug, Clone)]
    enum SbOp {
        Send(usize),
        Ack(usize),
        /// Blocks as (left, length), left relative to snd_una.
        Sack(Vec<(i64, i64)>),
        /// A cumulative ACK carried by the SACK call itself.
        AckWithSack(usize, Vec<(i64, i64)>),
    }

    fn sack_blocks_strategy() -> impl Strategy<Value = Vec<(i64, i64)>> {
        let len = prop_oneof![2 => 1i64..12, 2 => 1i64..400, 1 => -5i64..=0];
        proptest::collection::vec((-100i64..1100, len), 1..5)
    }

    fn sb_op() -> impl Strategy<Value = SbOp> {
        prop_oneof![
            2 => (0usize..300).prop_map(SbOp::Send),
            2 => (0usize..200).prop_map(SbOp::Ack),
            6 => sack_blocks_strategy().prop_map(SbOp::Sack),
            // Many small scattered blocks, enough to reach the bound on ranges.
            1 => proptest::collection::vec((1i64..1100, 1i64..5), 8..40).prop_map(SbOp::Sack),
            1 => ((0usize..200), sack_blocks_strategy()).prop_map(|(n, b)| SbOp::AckWithSack(n, b)),
        ]
    }

    fn recv_model_runs(bits: &[bool], isn: u32) -> Vec<(u32, u32)> {
        runs(bits).iter().map(|&(s, e)| (isn.wrapping_add(s as u32), isn.wrapping_add(e as u32))).collect()
    }

    /// The receiver, octet by octet, with the arrival stamp of the last segment that held each.
    struct RecvModel {
        isn: u32,
        rcv_nxt: usize,
        held: Vec<bool>,
        stamp: Vec<u64>,
        clock: u64,
    }

    impl RecvModel {
        fn seq(&self, off: i64) -> TcpSeqNumber {
            TcpSeqNumber(self.isn.wrapping_add(off as u32))
        }

        fn insert(&mut self, l: i64, r: i64) -> bool {
            if r < l {
                return false;
            }
            if r == l || r <= self.rcv_nxt as i64 {
                return true;
            }
            let (l, r) = (l.max(self.rcv_nxt as i64) as usize, r as usize);
            let mut trial = self.held.clone();
            trial[l..r].fill(true);
            if runs(&trial).len() > MAX_RECEIVED_RANGES {
                return false;
            }
            self.held = trial;
            self.clock += 1;
            self.stamp[l..r].fill(self.clock);
            true
        }

        fn advance(&mut self, to: usize) -> Option<usize> {
            if !self.held.contains(&true) {
                self.rcv_nxt = to;
                return None;
            }
            if to < self.rcv_nxt {
                return None;
            }
            self.held[..to].fill(false);
            self.rcv_nxt = to;
            if !self.held[to] {
                return None;
            }
            let end = (to..SPACE).find(|&x| !self.held[x]).unwrap_or(SPACE);
            self.held[to..end].fill(false);
            self.rcv_nxt = end;
            Some(end)
        }

        fn blocks(&self, most_recent: Option<(i64, i64)>) -> Vec<(u32, u32)> {
            let nxt = self.rcv_nxt as i64;
            let runs = runs(&self.held);
            let reportable = |r: &(usize, usize)| r.0 > self.rcv_nxt;
            let mut out: Vec<(usize, usize)> = Vec::new();
            if let Some((s, e)) = most_recent.filter(|&(s, e)| e > s && e > nxt) {
                let s = s.max(nxt);
                if let Some(r) =
                    runs.iter().find(|r| (r.0 as i64) < e && s < r.1 as i64).filter(|r| reportable(r))
                {
                    out.push(*r);
                }
            }
            let mut rest: Vec<(usize, usize)> =
                runs.iter().copied().filter(|r| reportable(r) && !out.contains(r)).collect();
            rest.sort_by_key(|r| std::cmp::Reverse(self.stamp[r.0..r.1].iter().max().copied()));
            out.extend(rest);
            out.truncate(MAX_SACK_BLOCKS);
            out.iter().map(|&(s, e)| (self.seq(s as i64).0, self.seq(e as i64).0)).collect()
        }
    }

    #[derive(Debug, Clone)]
    enum RxOp {
        /// A segment (start relative to rcv_nxt, length).
        Insert(i64, i64),
        /// rcv_nxt moves by this much (negative: a stale value).
        Advance(i64),
        /// Several segments inserted in a row, as `Insert`.
        Scatter(Vec<(i64, i64)>),
        /// SACK blocks for an ACK triggered by the last inserted segment, or by none, or by this one.
        Blocks(Option<(i64, i64)>, bool),
    }

    fn rx_op() -> impl Strategy<Value = RxOp> {
        prop_oneof![
            6 => ((-50i64..600), prop_oneof![3 => 1i64..40, 1 => -3i64..=0, 1 => 1i64..200])
                .prop_map(|(s, l)| RxOp::Insert(s, l)),
            2 => (-20i64..120).prop_map(RxOp::Advance),
            // Bursts of small scattered segments, enough to reach the bound on ranges.
            1 => proptest::collection::vec((1i64..600, 1i64..4), 6..24).prop_map(RxOp::Scatter),
            2 => (proptest::option::of((-50i64..600, 1i64..60)), any::<bool>()).prop_map(|(o, l)| RxOp::Blocks(o, l)),
        ]
    }

    /// Inserts segment (start relative to rcv_nxt, length) into both; returns it as offsets.
    fn insert(
        m: &mut RecvModel,
        rx: &mut ReceivedRanges,
        s: i64,
        len: i64,
    ) -> Result<(i64, i64), TestCaseError> {
        let r = (m.rcv_nxt as i64 + s + len).min(SPACE as i64);
        let l = (m.rcv_nxt as i64 + s).min(r + 3);
        let want = m.insert(l, r);
        prop_assert_eq!(rx.insert(m.seq(l), m.seq(r)), want, "insert [{}, {})", l, r);
        Ok((l, r))
    }

    /// Applies SACK blocks (left relative to snd_una, length) to both, comparing the newly SACKed counts.
    fn sack_both(
        m: &mut ScoreModel,
        sb: &mut Scoreboard,
        blocks: &[(i64, i64)],
    ) -> Result<(), TestCaseError> {
        let una = m.una as i64;
        let offsets: Vec<(i64, i64)> = blocks.iter().map(|&(l, len)| (una + l, una + l + len)).collect();
        let seqs: Vec<(TcpSeqNumber, TcpSeqNumber)> =
            offsets.iter().map(|&(l, r)| (m.seq(l), m.seq(r))).collect();
        let want = m.on_sack(&offsets);
        prop_assert_eq!(sb.on_sack(m.seq(una), m.seq(m.nxt as i64), &seqs), want, "blocks {:?}", offsets);
        Ok(())
    }

    proptest! {
        /// Scoreboard against the octet-by-octet model, from sequence numbers near the 2^32 wrap.
        #[test]
        fn scoreboard_matches_an_octet_model(
            isn in prop_oneof![Just(0u32), Just(u32::MAX - 700), Just(u32::MAX - 1), any::<u32>()],
            first_flight in 0usize..1000,
            steps in proptest::collection::vec((sb_op(), any::<u16>(), 0usize..4), 1..60),
        ) {
            let mut m = ScoreModel { isn, una: 0, nxt: first_flight, sacked: vec![false; SPACE] };
            let mut sb = Scoreboard::new();
            sb.on_cumulative_ack(m.seq(0));
            for (op, rxt_pick, smss_pick) in steps {
                let smss = [1, 7, 100, 536][smss_pick];
                match op {
                    SbOp::Send(n) => m.nxt = (m.nxt + n).min(SPACE),
                    SbOp::Ack(n) => {
                        m.ack((m.una + n).min(m.nxt));
                        sb.on_cumulative_ack(m.seq(m.una as i64));
                    }
                    SbOp::Sack(blocks) => sack_both(&mut m, &mut sb, &blocks)?,
                    SbOp::AckWithSack(n, blocks) => {
                        m.ack((m.una + n).min(m.nxt));
                        sack_both(&mut m, &mut sb, &blocks)?;
                    }
                }
                let (una, nxt) = (m.seq(m.una as i64), m.seq(m.nxt as i64));
                prop_assert_eq!(pairs(sb.ranges()), recv_model_runs(&m.sacked, isn));
                prop_assert_eq!(sb.sacked_bytes(), m.sacked.iter().filter(|&&b| b).count());
                let high = m.sacked.iter().rposition(|&b| b).map(|s| m.seq(s as i64 + 1));
                prop_assert_eq!(sb.high_sacked(), high);
                let lost = m.lost(smss);
                let near = m.una.saturating_sub(3)..(m.nxt + 3).min(SPACE);
                for (s, (&sacked, &is_lost)) in m.sacked.iter().zip(&lost).enumerate().take(near.end).skip(near.start) {
                    prop_assert_eq!(sb.is_sacked(m.seq(s as i64)), sacked, "is_sacked({})", s);
                    prop_assert_eq!(sb.is_lost(m.seq(s as i64), smss), s >= m.una && is_lost, "is_lost({})", s);
                }
                let rxt = m.una + usize::from(rxt_pick) % (m.nxt - m.una + 1);
                let at = |o: Option<(usize, usize)>| o.map(|(s, len)| (m.seq(s as i64), len));
                prop_assert_eq!(sb.pipe(una, nxt, m.seq(rxt as i64), smss), m.pipe(rxt, &lost));
                for rule3 in [false, true] {
                    let want = at(m.next_seg(rxt, smss, rule3, &lost));
                    prop_assert_eq!(sb.next_seg(una, nxt, m.seq(rxt as i64), smss, rule3), want, "rule3 {}", rule3);
                }
                prop_assert_eq!(sb.rescue_candidate(una, nxt, smss), at(m.rescue(smss)));
            }
        }

        /// ReceivedRanges against the octet-by-octet model, from sequence numbers near the 2^32 wrap.
        #[test]
        fn received_ranges_match_an_octet_model(
            isn in prop_oneof![Just(0u32), Just(u32::MAX - 700), Just(u32::MAX - 1), any::<u32>()],
            ops in proptest::collection::vec(rx_op(), 1..80),
        ) {
            let mut m = RecvModel { isn, rcv_nxt: 0, held: vec![false; SPACE], stamp: vec![0; SPACE], clock: 0 };
            let mut rx = ReceivedRanges::new(m.seq(0));
            let mut last = None;
            let mut out = [(0, 0); MAX_SACK_BLOCKS];
            for op in ops {
                match op {
                    RxOp::Insert(s, len) => {
                        last = Some(insert(&mut m, &mut rx, s, len)?);
                    }
                    RxOp::Scatter(segments) => {
                        for (s, len) in segments {
                            last = Some(insert(&mut m, &mut rx, s, len)?);
                        }
                    }
                    RxOp::Advance(d) => {
                        let to = (m.rcv_nxt as i64 + d).clamp(0, SPACE as i64 - 1) as usize;
                        let want = m.advance(to).map(|e| m.seq(e as i64));
                        prop_assert_eq!(rx.advance(m.seq(to as i64)), want);
                    }
                    RxOp::Blocks(seg, use_last) => {
                        let recent = if use_last { last } else { seg.map(|(s, len)| (m.rcv_nxt as i64 + s, m.rcv_nxt as i64 + s + len)) };
                        let n = rx.sack_blocks(recent.map(|(s, e)| (m.seq(s), m.seq(e))), &mut out);
                        prop_assert_eq!(out[..n].to_vec(), m.blocks(recent));
                    }
                }
                prop_assert_eq!(rx.rcv_nxt(), m.seq(m.rcv_nxt as i64));
                prop_assert_eq!(pairs(rx.ranges()), recv_model_runs(&m.held, isn));
                prop_assert_eq!(rx.is_empty(), !m.held.contains(&true));
            }
        }
    }
}

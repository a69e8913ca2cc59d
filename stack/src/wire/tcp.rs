//! TCP segment headers, options and sequence numbers.
//!
//! Implements the header of RFC 9293 §3.1 (with the ECE and CWR flags of RFC 3168), the options:
//! End of Option List and No-Operation (RFC 9293 §3.2), Maximum Segment Size (RFC 9293 §3.7.1,
//! RFC 6691), Window Scale and Timestamps (RFC 7323), SACK-Permitted and SACK (RFC 2018), and
//! sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4).
//!
//! The view must cover exactly the IPv4 payload: TCP has no length field, the payload runs to the end
//! of the buffer.

use core::cmp::Ordering;
use core::fmt;
use core::ops;
use std::net::Ipv4Addr;

use super::{checksum, read_u16, read_u32, write_u16, write_u32, ChecksumMode, Error, IpProtocol};

/// A sequence number: arithmetic wraps, comparisons are modulo 2^32 (`a < b` iff `b - a`, taken as a
/// signed 32-bit number, is positive). Two numbers exactly 2^31 apart are incomparable
/// (`partial_cmp` is `None`, so `<`, `>`, `<=` and `>=` are all false).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpSeqNumber(pub u32);

impl TcpSeqNumber {
    /// The later of two numbers (`self` when incomparable).
    pub fn max(self, other: TcpSeqNumber) -> TcpSeqNumber {
        if other > self {
            other
        } else {
            self
        }
    }

    /// The earlier of two numbers (`self` when incomparable).
    pub fn min(self, other: TcpSeqNumber) -> TcpSeqNumber {
        if other < self {
            other
        } else {
            self
        }
    }
}

impl PartialOrd for TcpSeqNumber {
    fn partial_cmp(&self, other: &TcpSeqNumber) -> Option<Ordering> {
        match *self - *other {
            i32::MIN => None,
            diff => Some(diff.cmp(&0)),
        }
    }
}

impl ops::Add<usize> for TcpSeqNumber {
    type Output = TcpSeqNumber;
    /// Wrapping addition (the distance is taken modulo 2^32).
    fn add(self, rhs: usize) -> TcpSeqNumber {
        TcpSeqNumber(self.0.wrapping_add(rhs as u32))
    }
}

impl ops::Sub<usize> for TcpSeqNumber {
    type Output = TcpSeqNumber;
    /// Wrapping subtraction.
    fn sub(self, rhs: usize) -> TcpSeqNumber {
        TcpSeqNumber(self.0.wrapping_sub(rhs as u32))
    }
}

impl ops::AddAssign<usize> for TcpSeqNumber {
    fn add_assign(&mut self, rhs: usize) {
        *self = *self + rhs;
    }
}

impl ops::Sub for TcpSeqNumber {
    type Output = i32;
    /// The signed distance from `rhs` to `self`, modulo 2^32.
    fn sub(self, rhs: TcpSeqNumber) -> i32 {
        self.0.wrapping_sub(rhs.0) as i32
    }
}

impl fmt::Display for TcpSeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for TcpSeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The flag octet of a TCP header.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No flags.
    pub const NONE: TcpFlags = TcpFlags(0);
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// Acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// Urgent pointer field is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN-Echo (RFC 3168).
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion window reduced (RFC 3168).
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// `self` without the flags of `other`.
    pub const fn without(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & !other.0)
    }
}

impl ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        let mut first = true;
        for (bit, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

/// Field offsets.
mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ_NUM: usize = 4;
    pub const ACK_NUM: usize = 8;
    /// Data offset (high nibble, in 32-bit words); the low nibble is reserved (and AE, RFC 9768).
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
/// Longest header: data offset 15.
pub const MAX_HEADER_LEN: usize = 60;
/// Offset of the checksum field (for transmit checksum offload).
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM;

/// Option kinds.
mod kind {
    pub const END: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMP: u8 = 8;
}

/// A view of a TCP segment.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps a buffer without checks; accessors panic if it is short or the data offset lies.
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps a buffer after checking: at least 20 bytes ([`Error::Truncated`]) and a data offset of at
    /// least 5 words that stays within the buffer ([`Error::BadHeaderLen`]).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// See [`new_checked`](Self::new_checked).
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN || header_len > len {
            return Err(Error::BadHeaderLen);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn data(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        read_u16(self.data(), field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        read_u16(self.data(), field::DST_PORT)
    }

    /// Sequence number.
    pub fn seq_number(&self) -> TcpSeqNumber {
        TcpSeqNumber(read_u32(self.data(), field::SEQ_NUM))
    }

    /// Acknowledgment number (meaningful only with ACK).
    pub fn ack_number(&self) -> TcpSeqNumber {
        TcpSeqNumber(read_u32(self.data(), field::ACK_NUM))
    }

    /// Header length in bytes (data offset * 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.data()[field::DATA_OFF] >> 4) * 4
    }

    /// All eight flags.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.data()[field::FLAGS])
    }

    /// FIN flag.
    pub fn fin(&self) -> bool {
        self.flags().contains(TcpFlags::FIN)
    }

    /// SYN flag.
    pub fn syn(&self) -> bool {
        self.flags().contains(TcpFlags::SYN)
    }

    /// RST flag.
    pub fn rst(&self) -> bool {
        self.flags().contains(TcpFlags::RST)
    }

    /// PSH flag.
    pub fn psh(&self) -> bool {
        self.flags().contains(TcpFlags::PSH)
    }

    /// ACK flag.
    pub fn ack(&self) -> bool {
        self.flags().contains(TcpFlags::ACK)
    }

    /// URG flag.
    pub fn urg(&self) -> bool {
        self.flags().contains(TcpFlags::URG)
    }

    /// ECE flag.
    pub fn ece(&self) -> bool {
        self.flags().contains(TcpFlags::ECE)
    }

    /// CWR flag.
    pub fn cwr(&self) -> bool {
        self.flags().contains(TcpFlags::CWR)
    }

    /// Window field (unscaled).
    pub fn window_len(&self) -> u16 {
        read_u16(self.data(), field::WINDOW)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(self.data(), field::CHECKSUM)
    }

    /// Urgent pointer field.
    pub fn urgent_at(&self) -> u16 {
        read_u16(self.data(), field::URGENT)
    }

    /// Raw option bytes (parse them with [`TcpOptions`]).
    pub fn options(&self) -> &[u8] {
        &self.data()[HEADER_LEN..self.header_len()]
    }

    /// The data after the header (to the end of the buffer).
    pub fn payload(&self) -> &[u8] {
        &self.data()[self.header_len()..]
    }

    /// Sequence space taken by the segment: data length plus one for SYN and one for FIN.
    pub fn segment_len(&self) -> usize {
        self.payload().len() + usize::from(self.syn()) + usize::from(self.fin())
    }

    /// Whether the checksum over the pseudo-header and the whole buffer is correct.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        checksum::verify_l4(src, dst, IpProtocol::Tcp, self.data())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Sets the source port.
    pub fn set_src_port(&mut self, value: u16) {
        write_u16(self.data_mut(), field::SRC_PORT, value);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, value: u16) {
        write_u16(self.data_mut(), field::DST_PORT, value);
    }

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, value: TcpSeqNumber) {
        write_u32(self.data_mut(), field::SEQ_NUM, value.0);
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, value: TcpSeqNumber) {
        write_u32(self.data_mut(), field::ACK_NUM, value.0);
    }

    /// Sets the header length in bytes (a multiple of 4 from 20 to 60); the reserved bits are cleared.
    pub fn set_header_len(&mut self, len: usize) {
        self.data_mut()[field::DATA_OFF] = ((len / 4) as u8) << 4;
    }

    /// Sets all eight flags.
    pub fn set_flags(&mut self, flags: TcpFlags) {
        self.data_mut()[field::FLAGS] = flags.0;
    }

    /// Sets the window field.
    pub fn set_window_len(&mut self, value: u16) {
        write_u16(self.data_mut(), field::WINDOW, value);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.data_mut(), field::CHECKSUM, value);
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_at(&mut self, value: u16) {
        write_u16(self.data_mut(), field::URGENT, value);
    }

    /// Mutable option bytes.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.data_mut()[HEADER_LEN..end]
    }

    /// Mutable data after the header.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.data_mut()[start..]
    }

    /// Computes and stores the checksum over the pseudo-header and the whole buffer.
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let value = checksum::compute_l4(src, dst, IpProtocol::Tcp, self.data());
        self.set_checksum(value);
    }
}

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// Kind 0: end of the option list (the rest is padding).
    EndOfList,
    /// Kind 1: padding between options.
    NoOperation,
    /// Kind 2: maximum segment size.
    MaxSegmentSize(u16),
    /// Kind 3: window scale shift count (raw; see [`TcpRepr::window_scale`]).
    WindowScale(u8),
    /// Kind 4: SACK permitted.
    SackPermitted,
    /// Kind 5: up to four SACK blocks (left edge, right edge), in option order.
    SackRange([Option<(u32, u32)>; 4]),
    /// Kind 8: timestamps.
    Timestamp {
        /// Sender's timestamp value.
        tsval: u32,
        /// Echoed timestamp.
        tsecr: u32,
    },
    /// Any other kind with a well-formed length.
    Unknown {
        /// Option kind.
        kind: u8,
        /// Option data (after kind and length).
        data: &'a [u8],
    },
}

/// Iterator over the options of a header. Yields [`Error::BadOption`] once and stops on a length that
/// is missing, below 2, past the end, or wrong for a known kind; stops after End of Option List.
/// Never panics.
#[derive(Debug, Clone)]
pub struct TcpOptions<'a> {
    rest: &'a [u8],
}

impl<'a> TcpOptions<'a> {
    /// Iterates over raw option bytes (from [`TcpPacket::options`]).
    pub fn new(options: &'a [u8]) -> Self {
        TcpOptions { rest: options }
    }

    fn fail(&mut self) -> Option<Result<TcpOption<'a>, Error>> {
        self.rest = &[];
        Some(Err(Error::BadOption))
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<TcpOption<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, after_kind) = self.rest.split_first()?;
        match kind {
            kind::END => {
                self.rest = &[];
                return Some(Ok(TcpOption::EndOfList));
            }
            kind::NOP => {
                self.rest = after_kind;
                return Some(Ok(TcpOption::NoOperation));
            }
            _ => {}
        }
        // RFC 9293 §3.1 (MUST-7): be prepared for an illegal option length, e.g. zero.
        let Some(&len) = after_kind.first() else {
            return self.fail();
        };
        let len = usize::from(len);
        if len < 2 || len > self.rest.len() {
            return self.fail();
        }
        let body = &self.rest[2..len];
        let option = match (kind, len) {
            (kind::MSS, 4) => TcpOption::MaxSegmentSize(read_u16(body, 0)),
            (kind::WINDOW_SCALE, 3) => TcpOption::WindowScale(body[0]),
            (kind::SACK_PERMITTED, 2) => TcpOption::SackPermitted,
            (kind::SACK, _) if body.len() % 8 == 0 && (8..=32).contains(&body.len()) => {
                let mut blocks = [None; 4];
                for (slot, block) in blocks.iter_mut().zip(body.chunks_exact(8)) {
                    *slot = Some((read_u32(block, 0), read_u32(block, 4)));
                }
                TcpOption::SackRange(blocks)
            }
            (kind::TIMESTAMP, 10) => {
                TcpOption::Timestamp { tsval: read_u32(body, 0), tsecr: read_u32(body, 4) }
            }
            (kind::MSS | kind::WINDOW_SCALE | kind::SACK_PERMITTED | kind::SACK | kind::TIMESTAMP, _) => {
                return self.fail();
            }
            (kind, _) => TcpOption::Unknown { kind, data: body },
        };
        self.rest = &self.rest[len..];
        Some(Ok(option))
    }
}

/// A parsed TCP header with the options this stack uses.
///
/// `flags` never holds ACK: the ACK flag is set exactly when `ack` is `Some` (parse strips it from
/// `flags`, emit derives it from `ack`). MSS, window scale and SACK-permitted are reported on any
/// segment; RFC 7323 and RFC 2018 say to ignore them except on a SYN, which is the caller's call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: TcpSeqNumber,
    /// Acknowledgment number, when the ACK flag is set.
    pub ack: Option<TcpSeqNumber>,
    /// Flags other than ACK (FIN, SYN, RST, PSH, URG, ECE, CWR).
    pub flags: TcpFlags,
    /// Window field (unscaled).
    pub window_len: u16,
    /// MSS option.
    pub max_seg_size: Option<u16>,
    /// Window scale option, at most 14.
    pub window_scale: Option<u8>,
    /// SACK-permitted option.
    pub sack_permitted: bool,
    /// SACK blocks (left edge, right edge), filled from the front; a fourth received block is dropped.
    pub sack_ranges: [Option<(u32, u32)>; 3],
    /// Timestamps option (tsval, tsecr).
    pub timestamp: Option<(u32, u32)>,
    /// Data length.
    pub payload_len: usize,
}

/// Largest shift count of the window scale option.
pub const MAX_WINDOW_SCALE: u8 = 14;

impl TcpRepr {
    /// A segment header without options or payload; options and `payload_len` go on with struct update
    /// syntax (`TcpRepr { timestamp, ..TcpRepr::new(..) }`).
    pub const fn new(
        src_port: u16,
        dst_port: u16,
        seq: TcpSeqNumber,
        ack: Option<TcpSeqNumber>,
        flags: TcpFlags,
        window_len: u16,
    ) -> TcpRepr {
        TcpRepr {
            src_port,
            dst_port,
            seq,
            ack,
            flags,
            window_len,
            max_seg_size: None,
            window_scale: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload_len: 0,
        }
    }

    /// Parses a checked segment (the view covering exactly the IPv4 payload), verifying the checksum
    /// if `checksum` says so ([`Error::BadChecksum`]); malformed options give [`Error::BadOption`].
    /// Unknown options are skipped.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &TcpPacket<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        checksum: ChecksumMode,
    ) -> Result<TcpRepr, Error> {
        packet.check_len()?;
        if checksum.verify() && !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        let flags = packet.flags();
        let mut repr = TcpRepr {
            payload_len: packet.payload().len(),
            ..TcpRepr::new(
                packet.src_port(),
                packet.dst_port(),
                packet.seq_number(),
                flags.contains(TcpFlags::ACK).then(|| packet.ack_number()),
                flags.without(TcpFlags::ACK),
                packet.window_len(),
            )
        };
        for option in TcpOptions::new(packet.options()) {
            match option? {
                TcpOption::MaxSegmentSize(mss) => repr.max_seg_size = Some(mss),
                // RFC 7323 §2.3: a shift count above 14 "MUST use 14 instead".
                TcpOption::WindowScale(shift) => repr.window_scale = Some(shift.min(MAX_WINDOW_SCALE)),
                TcpOption::SackPermitted => repr.sack_permitted = true,
                TcpOption::SackRange(blocks) => {
                    repr.sack_ranges.copy_from_slice(&blocks[..3]);
                }
                TcpOption::Timestamp { tsval, tsecr } => repr.timestamp = Some((tsval, tsecr)),
                TcpOption::EndOfList | TcpOption::NoOperation | TcpOption::Unknown { .. } => {}
            }
        }
        Ok(repr)
    }

    /// SACK blocks emitted: those set, from the front, as many as fit in 40 option bytes.
    fn sack_blocks_to_emit(&self) -> usize {
        let wanted = self.sack_ranges.iter().take_while(|r| r.is_some()).count();
        let room = 40 - self.options_len_without_sack();
        // NOP NOP kind len + 8 bytes per block.
        wanted.min(room.saturating_sub(4) / 8)
    }

    fn options_len_without_sack(&self) -> usize {
        let mut len = 0;
        if self.max_seg_size.is_some() {
            len += 4;
        }
        if self.timestamp.is_some() {
            len += 12; // SACK-permitted rides in the timestamp's two padding bytes.
        } else if self.sack_permitted {
            len += 4;
        }
        if self.window_scale.is_some() {
            len += 4;
        }
        len
    }

    /// Header length with the options emit writes (each group padded to 4 bytes, at most 60).
    pub fn header_len(&self) -> usize {
        let sack = self.sack_blocks_to_emit();
        let sack_len = if sack > 0 { 4 + 8 * sack } else { 0 };
        HEADER_LEN + self.options_len_without_sack() + sack_len
    }

    /// Header plus data.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len
    }

    /// Sequence space of the segment: data plus one for SYN and one for FIN.
    pub fn segment_len(&self) -> usize {
        self.payload_len
            + usize::from(self.flags.contains(TcpFlags::SYN))
            + usize::from(self.flags.contains(TcpFlags::FIN))
    }

    /// Writes the header and options in the layout Linux uses (MSS, SACK-permitted, timestamps, NOP,
    /// window scale; NOP NOP timestamps; NOP NOP SACK). The `payload_len` data bytes must already sit
    /// after [`header_len`](Self::header_len) bytes: the checksum covers the first
    /// [`buffer_len`](Self::buffer_len) bytes ([`Full`](ChecksumMode::Full)), is zero
    /// ([`Ignore`](ChecksumMode::Ignore)), or is the pseudo-header sum
    /// ([`TxOffload`](ChecksumMode::TxOffload)). The urgent pointer is zero.
    ///
    /// # Panics
    /// If the buffer is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut TcpPacket<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        checksum: ChecksumMode,
    ) {
        let header_len = self.header_len();
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq);
        packet.set_ack_number(self.ack.unwrap_or_default());
        packet.set_header_len(header_len);
        let mut flags = self.flags.without(TcpFlags::ACK);
        if self.ack.is_some() {
            flags |= TcpFlags::ACK;
        }
        packet.set_flags(flags);
        packet.set_window_len(self.window_len);
        packet.set_urgent_at(0);
        packet.set_checksum(0);
        self.emit_options(packet.options_mut());

        let segment_len = header_len + self.payload_len;
        let segment = &packet.buffer.as_ref()[..segment_len];
        let value = match checksum {
            ChecksumMode::Full => checksum::compute_l4(src, dst, IpProtocol::Tcp, segment),
            ChecksumMode::Ignore => 0,
            ChecksumMode::TxOffload => checksum::pseudo_header(src, dst, IpProtocol::Tcp, segment_len as u16),
        };
        packet.set_checksum(value);
    }

    fn emit_options(&self, out: &mut [u8]) {
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        if let Some(mss) = self.max_seg_size {
            let [hi, lo] = mss.to_be_bytes();
            put(&[kind::MSS, 4, hi, lo]);
        }
        match (self.sack_permitted, self.timestamp) {
            (sack_ok, Some((tsval, tsecr))) => {
                if sack_ok {
                    put(&[kind::SACK_PERMITTED, 2]);
                } else {
                    put(&[kind::NOP, kind::NOP]);
                }
                put(&[kind::TIMESTAMP, 10]);
                put(&tsval.to_be_bytes());
                put(&tsecr.to_be_bytes());
            }
            (true, None) => put(&[kind::NOP, kind::NOP, kind::SACK_PERMITTED, 2]),
            (false, None) => {}
        }
        if let Some(shift) = self.window_scale {
            put(&[kind::NOP, kind::WINDOW_SCALE, 3, shift]);
        }
        let blocks = self.sack_blocks_to_emit();
        if blocks > 0 {
            put(&[kind::NOP, kind::NOP, kind::SACK, (2 + 8 * blocks) as u8]);
            for (left, right) in self.sack_ranges.iter().take(blocks).flatten() {
                put(&left.to_be_bytes());
                put(&right.to_be_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures;
    use proptest::prelude::*;

    const IP_A: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
    const IP_B: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 2);

    /// The TCP segment of a captured frame (Ethernet and 20-byte IPv4 header stripped).
    fn tcp(frame: &[u8]) -> &[u8] {
        &frame[34..]
    }

    fn parse(segment: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<TcpRepr, Error> {
        TcpRepr::parse(&TcpPacket::new_checked(segment)?, src, dst, ChecksumMode::Full)
    }

    /// Emits `repr` over a copy of `segment` (so the payload is in place) and returns the bytes.
    fn emit_over(repr: &TcpRepr, segment: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let mut buf = segment.to_vec();
        buf[..repr.header_len()].fill(0);
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), src, dst, ChecksumMode::Full);
        buf
    }

    #[test]
    fn captured_linux_syn() {
        // tshark: 40000 -> 8080, seq 1314285641, ack 0, header 40, SYN, window 64240, checksum 0x0dcd
        // [correct], urgent 0; MSS 1460, SACK_PERM, TSval 400072772 TSecr 0, NOP, WS 10.
        let seg = tcp(fixtures::TCP_SYN);
        let p = TcpPacket::new_checked(seg).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (40000, 8080));
        assert_eq!((p.seq_number(), p.ack_number()), (TcpSeqNumber(1314285641), TcpSeqNumber(0)));
        assert_eq!((p.header_len(), p.flags(), p.window_len()), (40, TcpFlags::SYN, 64240));
        assert_eq!((p.checksum(), p.urgent_at()), (0x0dcd, 0));
        assert!(p.syn() && !p.ack() && !p.fin() && !p.rst() && !p.psh() && !p.urg() && !p.ece() && !p.cwr());
        assert!(p.verify_checksum(IP_A, IP_B));
        assert_eq!(p.segment_len(), 1);
        let options: Vec<_> = TcpOptions::new(p.options()).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            options,
            [
                TcpOption::MaxSegmentSize(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamp { tsval: 400072772, tsecr: 0 },
                TcpOption::NoOperation,
                TcpOption::WindowScale(10),
            ]
        );
        let repr = parse(seg, IP_A, IP_B).unwrap();
        let expected = TcpRepr {
            src_port: 40000,
            dst_port: 8080,
            seq: TcpSeqNumber(1314285641),
            ack: None,
            flags: TcpFlags::SYN,
            window_len: 64240,
            max_seg_size: Some(1460),
            window_scale: Some(10),
            sack_permitted: true,
            sack_ranges: [None; 3],
            timestamp: Some((400072772, 0)),
            payload_len: 0,
        };
        assert_eq!(repr, expected);
        assert_eq!(repr.header_len(), 40);
        assert_eq!(emit_over(&repr, seg, IP_A, IP_B), seg);
    }

    #[test]
    fn captured_linux_syn_ack() {
        // tshark: 8080 -> 40000, seq 4217133205, ack 1314285642, SYN ACK, window 65160, checksum 0x6159
        // [correct]; MSS 1460, SACK_PERM, TSval 959454120 TSecr 400072772, NOP, WS 10.
        let seg = tcp(fixtures::TCP_SYN_ACK);
        let repr = parse(seg, IP_B, IP_A).unwrap();
        assert_eq!(repr.seq, TcpSeqNumber(4217133205));
        assert_eq!(repr.ack, Some(TcpSeqNumber(1314285642)));
        assert_eq!((repr.flags, repr.window_len), (TcpFlags::SYN, 65160));
        assert_eq!(repr.timestamp, Some((959454120, 400072772)));
        assert_eq!((repr.max_seg_size, repr.window_scale, repr.sack_permitted), (Some(1460), Some(10), true));
        assert_eq!(TcpPacket::new_checked(seg).unwrap().checksum(), 0x6159);
        assert_eq!(emit_over(&repr, seg, IP_B, IP_A), seg);
    }

    #[test]
    fn captured_data_segment() {
        // tshark: seq 1314285642, ack 4217133206, header 32, PSH ACK, window 63, checksum 0x0af0
        // [correct]; NOP NOP TSval 400072772 TSecr 959454120; 26 bytes "GET /xdpstack HTTP/1.0\r\n\r\n".
        let seg = tcp(fixtures::TCP_DATA);
        let p = TcpPacket::new_checked(seg).unwrap();
        assert_eq!((p.header_len(), p.flags(), p.checksum()), (32, TcpFlags::PSH | TcpFlags::ACK, 0x0af0));
        assert_eq!(p.payload(), b"GET /xdpstack HTTP/1.0\r\n\r\n");
        assert_eq!(p.segment_len(), 26);
        let repr = parse(seg, IP_A, IP_B).unwrap();
        assert_eq!((repr.seq, repr.ack), (TcpSeqNumber(1314285642), Some(TcpSeqNumber(4217133206))));
        assert_eq!((repr.flags, repr.window_len, repr.payload_len), (TcpFlags::PSH, 63, 26));
        assert_eq!(repr.timestamp, Some((400072772, 959454120)));
        assert_eq!((repr.max_seg_size, repr.window_scale, repr.sack_permitted), (None, None, false));
        assert_eq!(emit_over(&repr, seg, IP_A, IP_B), seg);
        // Swapped addresses change the pseudo-header sum? No: it is symmetric. Another address does.
        assert!(!p.verify_checksum(IP_A, Ipv4Addr::new(10, 88, 0, 3)));
    }

    #[test]
    fn corrupt_segments() {
        let seg = tcp(fixtures::TCP_DATA);
        let mut bad = seg.to_vec();
        bad[40] ^= 0x20; // a payload bit
        assert_eq!(parse(&bad, IP_A, IP_B), Err(Error::BadChecksum));
        let p = TcpPacket::new_checked(&bad[..]).unwrap();
        assert!(TcpRepr::parse(&p, IP_A, IP_B, ChecksumMode::Ignore).is_ok());
        for (offset_byte, expected) in
            [(0x40, Error::BadHeaderLen), (0x00, Error::BadHeaderLen), (0xf0, Error::BadHeaderLen)]
        {
            let mut bad = seg.to_vec();
            bad[12] = offset_byte;
            assert_eq!(TcpPacket::new_checked(&bad[..]).unwrap_err(), expected, "{offset_byte:#x}");
        }
        // Data offset 8 in a 32-byte buffer is fine (no payload); in 31 bytes it points past the end.
        assert!(TcpPacket::new_checked(&seg[..32]).is_ok());
        assert_eq!(TcpPacket::new_checked(&seg[..31]).unwrap_err(), Error::BadHeaderLen);
        for len in 0..20 {
            assert_eq!(TcpPacket::new_checked(&seg[..len]).unwrap_err(), Error::Truncated);
        }
        for len in 32..seg.len() {
            assert_eq!(parse(&seg[..len], IP_A, IP_B), Err(Error::BadChecksum), "len {len}");
        }
    }

    #[test]
    fn malformed_options() {
        let seg = tcp(fixtures::TCP_SYN);
        // Option bytes start at 20: MSS (2,4) at 20, SACK_PERM (4,2) at 24, TS (8,10) at 26, NOP at 36,
        // WS (3,3) at 37.
        for (at, value) in [(21, 0u8), (21, 1), (21, 3), (21, 41), (25, 3), (27, 9), (38, 2), (38, 4)] {
            let mut bad = seg.to_vec();
            bad[at] = value;
            let p = TcpPacket::new_checked(&bad[..]).unwrap();
            let parsed = TcpRepr::parse(&p, IP_A, IP_B, ChecksumMode::Ignore);
            assert_eq!(parsed, Err(Error::BadOption), "byte {at} = {value}");
        }
        // A kind with no length byte at the very end.
        let opts = [kind::NOP, kind::NOP, kind::NOP, kind::MSS];
        let items: Vec<_> = TcpOptions::new(&opts).collect();
        assert_eq!(items.last(), Some(&Err(Error::BadOption)));
        assert_eq!(items.len(), 4);
        // End of list stops the iteration; what follows is padding.
        let opts = [kind::END, 0xff, 0xff, 0xff];
        assert_eq!(TcpOptions::new(&opts).collect::<Vec<_>>(), [Ok(TcpOption::EndOfList)]);
        // Unknown kinds are skipped with their length.
        let opts = [30, 4, 0xaa, 0xbb, kind::WINDOW_SCALE, 3, 20];
        let items: Vec<_> = TcpOptions::new(&opts).collect::<Result<_, _>>().unwrap();
        assert_eq!(items, [TcpOption::Unknown { kind: 30, data: &[0xaa, 0xbb] }, TcpOption::WindowScale(20)]);
    }

    #[test]
    fn window_scale_above_14_is_clamped() {
        let mut seg = tcp(fixtures::TCP_SYN).to_vec();
        seg[39] = 15;
        let p = TcpPacket::new_checked(&seg[..]).unwrap();
        assert_eq!(TcpRepr::parse(&p, IP_A, IP_B, ChecksumMode::Ignore).unwrap().window_scale, Some(14));
    }

    #[test]
    fn sack_blocks_parse_and_emit() {
        let base = parse(tcp(fixtures::TCP_DATA), IP_A, IP_B).unwrap();
        let repr = TcpRepr { sack_ranges: [Some((1, 2)), Some((10, 20)), Some((u32::MAX - 5, 7))], ..base };
        // NOP NOP TS (12) + NOP NOP SACK with three blocks (4 + 24) = 40 option bytes.
        assert_eq!(repr.header_len(), 60);
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), IP_A, IP_B, ChecksumMode::Full);
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(&p.options()[12..16], &[1, 1, 5, 26]);
        assert_eq!(parse(&buf, IP_A, IP_B).unwrap(), repr);
        // With MSS and window scale too only two blocks fit in 40 bytes (4 + 12 + 4 + 4 + 16).
        let crowded =
            TcpRepr { max_seg_size: Some(1460), window_scale: Some(7), sack_permitted: true, ..repr };
        assert_eq!(crowded.header_len(), 60);
        let mut buf = vec![0u8; crowded.buffer_len()];
        crowded.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), IP_A, IP_B, ChecksumMode::Full);
        let parsed = parse(&buf, IP_A, IP_B).unwrap();
        assert_eq!(parsed.sack_ranges, [Some((1, 2)), Some((10, 20)), None]);
        // A fourth block on the wire is dropped, the first three kept.
        let mut opts = vec![kind::SACK, 34];
        for v in 1u32..=8 {
            opts.extend_from_slice(&v.to_be_bytes());
        }
        let Some(Ok(TcpOption::SackRange(blocks))) = TcpOptions::new(&opts).next() else { panic!() };
        assert_eq!(blocks, [Some((1, 2)), Some((3, 4)), Some((5, 6)), Some((7, 8))]);
    }

    #[test]
    fn tx_offload_and_ignore() {
        let seg = tcp(fixtures::TCP_DATA);
        let repr = parse(seg, IP_A, IP_B).unwrap();
        let mut buf = seg.to_vec();
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), IP_A, IP_B, ChecksumMode::TxOffload);
        let device = !checksum::sum(&buf);
        buf[16..18].copy_from_slice(&device.to_be_bytes());
        assert_eq!(&buf[..], seg);
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), IP_A, IP_B, ChecksumMode::Ignore);
        assert_eq!(TcpPacket::new_checked(&buf[..]).unwrap().checksum(), 0);
    }

    #[test]
    fn seq_number_arithmetic() {
        let a = TcpSeqNumber(u32::MAX - 10);
        let b = a + 20;
        assert_eq!(b, TcpSeqNumber(9));
        assert_eq!([a < b, b > a, a <= b, a != b, a > b, b < a], [true, true, true, true, false, false]);
        assert_eq!(b - a, 20);
        assert_eq!(a - b, -20);
        assert_eq!(b - 20, a);
        assert_eq!(a.max(b), b);
        assert_eq!(b.min(a), a);
        let half = a + (1usize << 31);
        assert_eq!(a.partial_cmp(&half), None);
        assert_eq!([a < half, a > half, a <= half, a >= half, a == half], [false; 5]);
        let mut c = a;
        c += 11;
        assert_eq!(c, TcpSeqNumber(0));
        assert_eq!(format!("{c} {:?}", TcpFlags::SYN | TcpFlags::ACK), "0 SYN|ACK");
    }

    fn arb_repr() -> impl Strategy<Value = TcpRepr> {
        let syn_like = (
            proptest::option::of(any::<u16>()),
            proptest::option::of(0u8..=14),
            any::<bool>(),
            proptest::option::of(any::<(u32, u32)>()),
        )
            .prop_map(|(mss, ws, sp, ts)| (mss, ws, sp, ts, [None; 3]));
        let data_like = (proptest::option::of(any::<(u32, u32)>()), 0usize..=3, any::<[(u32, u32); 3]>())
            .prop_map(|(ts, n, blocks)| {
                let mut sack = [None; 3];
                for i in 0..n {
                    sack[i] = Some(blocks[i]);
                }
                (None, None, false, ts, sack)
            });
        (
            any::<(u16, u16, u32)>(),
            proptest::option::of(any::<u32>()),
            any::<u8>(),
            any::<u16>(),
            prop_oneof![syn_like, data_like],
            0usize..64,
        )
            .prop_map(
                |((sp, dp, seq), ack, flags, win, (mss, ws, sack_ok, ts, sack), payload_len)| TcpRepr {
                    src_port: sp,
                    dst_port: dp,
                    seq: TcpSeqNumber(seq),
                    ack: ack.map(TcpSeqNumber),
                    flags: TcpFlags(flags).without(TcpFlags::ACK),
                    window_len: win,
                    max_seg_size: mss,
                    window_scale: ws,
                    sack_permitted: sack_ok,
                    sack_ranges: sack,
                    timestamp: ts,
                    payload_len,
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(repr in arb_repr(), fill in any::<u8>(), src in any::<u32>(), dst in any::<u32>()) {
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            let mut buf = vec![fill; repr.buffer_len()];
            repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), src, dst, ChecksumMode::Full);
            let p = TcpPacket::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(p.header_len() % 4, 0);
            prop_assert_eq!(p.payload().len(), repr.payload_len);
            prop_assert_eq!(TcpRepr::parse(&p, src, dst, ChecksumMode::Full).unwrap(), repr);
        }

        #[test]
        fn seq_comparisons_are_modular(a in any::<u32>(), d in 1u32..(1 << 31)) {
            let a = TcpSeqNumber(a);
            let b = a + d as usize;
            prop_assert_eq!([a < b, b > a, a <= b, b >= a, a != b], [true; 5]);
            prop_assert_eq!([a > b, b < a, a >= b, b <= a, a == b], [false; 5]);
            prop_assert_eq!(b - a, d as i32);
            prop_assert_eq!(a - b, (d as i32).wrapping_neg());
            prop_assert_eq!(b - d as usize, a);
            prop_assert_eq!(a.max(b), b);
            prop_assert_eq!(a.partial_cmp(&a), Some(Ordering::Equal));
        }

        #[test]
        fn options_never_panic(data in proptest::collection::vec(any::<u8>(), 0..44)) {
            let mut consumed = 0;
            for item in TcpOptions::new(&data) {
                consumed += 1;
                prop_assert!(consumed <= data.len());
                if item.is_err() {
                    break;
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut data in proptest::collection::vec(any::<u8>(), 0..80),
                                       doff in 0u8..16) {
            if data.len() > 12 {
                data[12] = (doff << 4) | (data[12] & 0x0f);
            }
            if let Ok(p) = TcpPacket::new_checked(&data[..]) {
                let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number(), p.flags());
                let _ = (p.window_len(), p.checksum(), p.urgent_at(), p.options(), p.payload());
                let _ = (p.segment_len(), p.verify_checksum(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST));
                if let Ok(repr) = TcpRepr::parse(&p, Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, ChecksumMode::Ignore) {
                    prop_assert_eq!(repr.payload_len, p.payload().len());
                }
            }
        }
    }
}

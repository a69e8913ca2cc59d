//! IPv4 headers and CIDR prefixes.
//!
//! Implements the IPv4 header of RFC 791 (§3.1), the header checksum (RFC 791, computed per RFC 1071),
//! the DSCP/ECN split of the old TOS octet (RFC 2474, RFC 3168), and CIDR notation (RFC 4632).
//! Options are exposed as raw bytes and skipped by [`Ipv4Repr`]; [`Ipv4Repr::emit`] writes a 20-byte
//! header without options.

use core::fmt;
use core::str::FromStr;
use std::net::Ipv4Addr;

use super::{checksum, read_u16, write_u16, ChecksumMode, Error};

/// The protocol carried by an IPv4 datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    /// ICMP, 1.
    Icmp,
    /// TCP, 6.
    Tcp,
    /// UDP, 17.
    Udp,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(value: u8) -> Self {
        match value {
            1 => IpProtocol::Icmp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            other => IpProtocol::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(value: IpProtocol) -> u8 {
        match value {
            IpProtocol::Icmp => 1,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Unknown(other) => other,
        }
    }
}

/// Field offsets.
mod field {
    use core::ops::Range;
    /// Version (high nibble) and IHL (low nibble, in 32-bit words).
    pub const VER_IHL: usize = 0;
    /// DSCP (high 6 bits) and ECN (low 2 bits).
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LEN: usize = 2;
    pub const IDENT: usize = 4;
    /// Flags (reserved, DF, MF) and the 13-bit fragment offset in 8-byte units.
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 datagram.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checks; accessors may panic on a short or inconsistent buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after checking: at least 20 bytes ([`Error::Truncated`]), version 4
    /// ([`Error::BadVersion`]), IHL >= 5 ([`Error::BadHeaderLen`]), the header within the buffer
    /// ([`Error::Truncated`]), total length >= header length ([`Error::BadHeaderLen`]), and total
    /// length <= buffer ([`Error::BadTotalLen`]). The buffer may be longer than the total length
    /// (Ethernet padding).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// See [`new_checked`](Self::new_checked).
    pub fn check_len(&self) -> Result<(), Error> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::BadVersion);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(Error::BadHeaderLen);
        }
        if data.len() < header_len {
            return Err(Error::Truncated);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len {
            return Err(Error::BadHeaderLen);
        }
        if total_len > data.len() {
            return Err(Error::BadTotalLen);
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

    /// Version (4).
    pub fn version(&self) -> u8 {
        self.data()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.data()[field::VER_IHL] & 0x0f) * 4
    }

    /// Differentiated services code point.
    pub fn dscp(&self) -> u8 {
        self.data()[field::DSCP_ECN] >> 2
    }

    /// Explicit congestion notification bits.
    pub fn ecn(&self) -> u8 {
        self.data()[field::DSCP_ECN] & 0x03
    }

    /// Total length (header and data).
    pub fn total_len(&self) -> u16 {
        read_u16(self.data(), field::TOTAL_LEN)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        read_u16(self.data(), field::IDENT)
    }

    /// Don't-fragment flag.
    pub fn dont_frag(&self) -> bool {
        read_u16(self.data(), field::FLAGS_FRAG) & FLAG_DF != 0
    }

    /// More-fragments flag.
    pub fn more_frags(&self) -> bool {
        read_u16(self.data(), field::FLAGS_FRAG) & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (read_u16(self.data(), field::FLAGS_FRAG) & FRAG_OFFSET_MASK) * 8
    }

    /// Whether this datagram is a fragment (MF set or a non-zero offset).
    pub fn is_fragment(&self) -> bool {
        read_u16(self.data(), field::FLAGS_FRAG) & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.data()[field::TTL]
    }

    /// Payload protocol.
    pub fn protocol(&self) -> IpProtocol {
        self.data()[field::PROTOCOL].into()
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(self.data(), field::CHECKSUM)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        let mut a = [0; 4];
        a.copy_from_slice(&self.data()[field::SRC_ADDR]);
        Ipv4Addr::from(a)
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let mut a = [0; 4];
        a.copy_from_slice(&self.data()[field::DST_ADDR]);
        Ipv4Addr::from(a)
    }

    /// Header options (raw).
    pub fn options(&self) -> &[u8] {
        &self.data()[HEADER_LEN..self.header_len()]
    }

    /// The payload, bounded by the total length (Ethernet padding after it is excluded).
    pub fn payload(&self) -> &[u8] {
        &self.data()[self.header_len()..usize::from(self.total_len())]
    }

    /// Whether the header checksum is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(&self.data()[..self.header_len()])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Sets the version nibble.
    pub fn set_version(&mut self, version: u8) {
        let b = &mut self.data_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (version << 4);
    }

    /// Sets the header length in bytes (a multiple of 4, at most 60).
    pub fn set_header_len(&mut self, len: usize) {
        let b = &mut self.data_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((len / 4) as u8 & 0x0f);
    }

    /// Sets DSCP and ECN from the whole octet.
    pub fn set_dscp_ecn(&mut self, value: u8) {
        self.data_mut()[field::DSCP_ECN] = value;
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, len: u16) {
        write_u16(self.data_mut(), field::TOTAL_LEN, len);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, ident: u16) {
        write_u16(self.data_mut(), field::IDENT, ident);
    }

    /// Sets flags and fragment offset: DF, MF, and the offset in bytes (a multiple of 8). The reserved
    /// flag is cleared.
    pub fn set_flags_frag(&mut self, dont_frag: bool, more_frags: bool, frag_offset: u16) {
        let mut v = (frag_offset / 8) & FRAG_OFFSET_MASK;
        if dont_frag {
            v |= FLAG_DF;
        }
        if more_frags {
            v |= FLAG_MF;
        }
        write_u16(self.data_mut(), field::FLAGS_FRAG, v);
    }

    /// Sets the time to live.
    pub fn set_ttl(&mut self, ttl: u8) {
        self.data_mut()[field::TTL] = ttl;
    }

    /// Sets the payload protocol.
    pub fn set_protocol(&mut self, protocol: IpProtocol) {
        self.data_mut()[field::PROTOCOL] = protocol.into();
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.data_mut(), field::CHECKSUM, value);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.data_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.data_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// Computes and stores the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let value = checksum::compute(&self.data()[..self.header_len()]);
        self.set_checksum(value);
    }

    /// Mutable payload, bounded by the total length.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &mut self.data_mut()[range]
    }
}

/// A parsed IPv4 header (options skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Payload protocol.
    pub protocol: IpProtocol,
    /// Payload length (total length minus header length).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub ident: u16,
    /// Don't fragment.
    pub dont_frag: bool,
    /// More fragments.
    pub more_frags: bool,
    /// Fragment offset in bytes (a multiple of 8).
    pub frag_offset: u16,
    /// The DSCP/ECN octet.
    pub dscp_ecn: u8,
}

impl Ipv4Repr {
    /// Parses a checked packet, verifying the header checksum if `checksum` says so
    /// ([`Error::BadChecksum`]).
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>, checksum: ChecksumMode) -> Result<Ipv4Repr, Error> {
        packet.check_len()?;
        if checksum.verify() && !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(packet.total_len()) - packet.header_len(),
            ttl: packet.ttl(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
            dscp_ecn: packet.data()[field::DSCP_ECN],
        })
    }

    /// 20: emit writes no options.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes a 20-byte header with its checksum.
    ///
    /// # Panics
    /// If the buffer is shorter than 20 bytes. `payload_len` must be at most 65515 (debug-asserted).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) {
        debug_assert!(self.payload_len <= usize::from(u16::MAX) - HEADER_LEN);
        debug_assert!(self.frag_offset % 8 == 0);
        packet.set_version(4);
        packet.set_header_len(HEADER_LEN);
        packet.set_dscp_ecn(self.dscp_ecn);
        packet.set_total_len(self.buffer_len() as u16);
        packet.set_ident(self.ident);
        packet.set_flags_frag(self.dont_frag, self.more_frags, self.frag_offset);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
    }
}

/// An IPv4 address with a prefix length, e.g. `10.0.0.2/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    address: Ipv4Addr,
    prefix_len: u8,
}

/// Why an [`Ipv4Cidr`] could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CidrError {
    /// The prefix length is above 32 or not a number.
    BadPrefixLen,
    /// The address part does not parse.
    BadAddress,
    /// No `/prefix` part.
    MissingPrefix,
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CidrError::BadPrefixLen => "prefix length must be a number from 0 to 32",
            CidrError::BadAddress => "bad IPv4 address",
            CidrError::MissingPrefix => "expected ADDRESS/PREFIX_LEN",
        })
    }
}

impl std::error::Error for CidrError {}

impl Ipv4Cidr {
    /// A CIDR; [`CidrError::BadPrefixLen`] if `prefix_len > 32`. The address keeps its host bits.
    pub const fn new(address: Ipv4Addr, prefix_len: u8) -> Result<Ipv4Cidr, CidrError> {
        if prefix_len > 32 {
            return Err(CidrError::BadPrefixLen);
        }
        Ok(Ipv4Cidr { address, prefix_len })
    }

    /// The address (with host bits).
    pub const fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// The prefix length.
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    fn mask_bits(&self) -> u32 {
        match self.prefix_len {
            0 => 0,
            n => u32::MAX << (32 - u32::from(n)),
        }
    }

    /// The netmask, e.g. 255.255.255.0 for /24.
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.mask_bits())
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) & self.mask_bits())
    }

    /// The directed broadcast address; `None` for /31 and /32, which have none (RFC 3021).
    pub fn broadcast(&self) -> Option<Ipv4Addr> {
        (self.prefix_len < 31).then(|| Ipv4Addr::from(u32::from(self.address) | !self.mask_bits()))
    }

    /// Whether `addr` is inside the prefix.
    pub fn contains_addr(&self, addr: Ipv4Addr) -> bool {
        (u32::from(addr) ^ u32::from(self.address)) & self.mask_bits() == 0
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, CidrError> {
        let (addr, prefix) = s.split_once('/').ok_or(CidrError::MissingPrefix)?;
        let address: Ipv4Addr = addr.parse().map_err(|_| CidrError::BadAddress)?;
        if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CidrError::BadPrefixLen);
        }
        let prefix_len: u8 = prefix.parse().map_err(|_| CidrError::BadPrefixLen)?;
        Ipv4Cidr::new(address, prefix_len)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures;
    use proptest::prelude::*;

    const IP_A: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
    const IP_B: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 2);

    fn ip(frame: &[u8]) -> &[u8] {
        &frame[14..]
    }

    #[test]
    fn captured_udp_datagram() {
        // tshark: total 43, id 0x48ab, DF, ttl 64, UDP, checksum 0xdd64 [correct], 10.88.0.1 -> .2.
        let p = Ipv4Packet::new_checked(ip(fixtures::UDP)).unwrap();
        assert_eq!((p.version(), p.header_len(), p.dscp(), p.ecn()), (4, 20, 0, 0));
        assert_eq!((p.total_len(), p.ident(), p.ttl()), (43, 0x48ab, 64));
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.protocol(), IpProtocol::Udp);
        assert_eq!(p.checksum(), 0xdd64);
        assert!(p.verify_checksum());
        assert_eq!((p.src_addr(), p.dst_addr()), (IP_A, IP_B));
        assert!(p.options().is_empty());
        assert_eq!(p.payload().len(), 23);
        let repr = Ipv4Repr::parse(&p, ChecksumMode::Full).unwrap();
        assert_eq!(repr.payload_len, 23);
    }

    #[test]
    fn captured_icmp_error_has_dscp() {
        // tshark: DSCP CS6 (48), ECN Not-ECT, no flags, total 71, checksum 0x0aa7 [correct].
        let p = Ipv4Packet::new_checked(ip(fixtures::ICMP_PORT_UNREACHABLE)).unwrap();
        assert_eq!((p.dscp(), p.ecn(), p.total_len(), p.checksum()), (48, 0, 71, 0x0aa7));
        assert!(!p.dont_frag() && p.verify_checksum());
        assert_eq!(p.protocol(), IpProtocol::Icmp);
    }

    #[test]
    fn captured_first_fragment() {
        // tshark: total 1500, id 0x48d1, flags MF, offset 0, UDP, checksum 0xf78d [correct].
        let p = Ipv4Packet::new_checked(ip(fixtures::IPV4_FIRST_FRAGMENT)).unwrap();
        assert_eq!((p.total_len(), p.ident(), p.checksum()), (1500, 0x48d1, 0xf78d));
        assert!(!p.dont_frag() && p.more_frags() && p.is_fragment());
        assert_eq!(p.frag_offset(), 0);
        let repr = Ipv4Repr::parse(&p, ChecksumMode::Full).unwrap();
        assert!(repr.more_frags);
        assert_eq!(repr.payload_len, 1480);
        // The second fragment was at offset 1480: the same datagram with the offset field set.
        let mut second = ip(fixtures::IPV4_FIRST_FRAGMENT).to_vec();
        let mut p = Ipv4Packet::new_unchecked(&mut second[..]);
        p.set_flags_frag(false, false, 1480);
        assert_eq!(p.frag_offset(), 1480);
        assert!(p.is_fragment() && !p.more_frags());
        assert_eq!(Ipv4Repr::parse(&p, ChecksumMode::Full).unwrap_err(), Error::BadChecksum);
        p.fill_checksum();
        assert_eq!(Ipv4Repr::parse(&p, ChecksumMode::Full).unwrap().frag_offset, 1480);
    }

    #[test]
    fn payload_excludes_ethernet_padding() {
        let mut padded = ip(fixtures::UDP).to_vec();
        padded.extend_from_slice(&[0xee; 7]);
        let p = Ipv4Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(p.payload(), &ip(fixtures::UDP)[20..]);
    }

    #[test]
    fn emit_reproduces_captured_headers() {
        for frame in
            [fixtures::UDP, fixtures::TCP_SYN, fixtures::ICMP_PORT_UNREACHABLE, fixtures::IPV4_FIRST_FRAGMENT]
        {
            let p = Ipv4Packet::new_checked(ip(frame)).unwrap();
            let repr = Ipv4Repr::parse(&p, ChecksumMode::Full).unwrap();
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
            assert_eq!(&buf[..20], &ip(frame)[..20]);
        }
    }

    #[test]
    fn lying_lengths_and_versions() {
        let good = ip(fixtures::UDP);
        let with = |at: usize, value: u8| {
            let mut b = good.to_vec();
            b[at] = value;
            Ipv4Packet::new_checked(b).map(|_| ())
        };
        assert_eq!(with(0, 0x65), Err(Error::BadVersion));
        assert_eq!(with(0, 0x44), Err(Error::BadHeaderLen)); // IHL 4
        assert_eq!(with(0, 0x40), Err(Error::BadHeaderLen)); // IHL 0
        assert_eq!(with(0, 0x4f), Err(Error::Truncated)); // 60-byte header in a 43-byte buffer
        assert_eq!(with(3, 44), Err(Error::BadTotalLen)); // one byte more than the buffer
        assert_eq!(with(3, 19), Err(Error::BadHeaderLen)); // total < header
        assert_eq!(with(3, 42), Ok(())); // shorter total length is fine: the rest is padding
                                         // IHL 6 with total 43: a header with 4 bytes of options; consistent, so accepted.
        let mut b = good.to_vec();
        b[0] = 0x46;
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.options().len(), p.payload().len()), (4, 19));
        assert_eq!(Ipv4Repr::parse(&p, ChecksumMode::Full), Err(Error::BadChecksum));
        assert_eq!(Ipv4Repr::parse(&p, ChecksumMode::Ignore).unwrap().payload_len, 19);
    }

    #[test]
    fn every_prefix_is_rejected_without_panic() {
        let good = ip(fixtures::UDP);
        for len in 0..good.len() {
            let expected = if len < 20 { Error::Truncated } else { Error::BadTotalLen };
            assert_eq!(Ipv4Packet::new_checked(&good[..len]).unwrap_err(), expected, "len {len}");
        }
    }

    #[test]
    fn every_bit_flip_in_the_header_is_detected() {
        let good = ip(fixtures::TCP_SYN);
        for bit in 0..160 {
            let mut b = good.to_vec();
            b[bit / 8] ^= 1 << (bit % 8);
            let parsed =
                Ipv4Packet::new_checked(&b[..]).and_then(|p| Ipv4Repr::parse(&p, ChecksumMode::Full));
            assert!(parsed.is_err(), "bit {bit}");
        }
    }

    #[test]
    fn cidr() {
        let c: Ipv4Cidr = "10.0.0.2/24".parse().unwrap();
        assert_eq!((c.address(), c.prefix_len()), (Ipv4Addr::new(10, 0, 0, 2), 24));
        assert_eq!(c.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(c.network(), Ipv4Addr::new(10, 0, 0, 0));
        assert_eq!(c.broadcast(), Some(Ipv4Addr::new(10, 0, 0, 255)));
        assert!(c.contains_addr(Ipv4Addr::new(10, 0, 0, 200)));
        assert!(!c.contains_addr(Ipv4Addr::new(10, 0, 1, 2)));
        assert_eq!(c.to_string(), "10.0.0.2/24");
        let all: Ipv4Cidr = "0.0.0.0/0".parse().unwrap();
        assert_eq!(all.netmask(), Ipv4Addr::UNSPECIFIED);
        assert!(all.contains_addr(Ipv4Addr::new(203, 0, 113, 9)));
        let host = Ipv4Cidr::new(Ipv4Addr::new(192, 0, 2, 7), 32).unwrap();
        assert_eq!(host.netmask(), Ipv4Addr::BROADCAST);
        assert_eq!(host.broadcast(), None);
        assert!(host.contains_addr(Ipv4Addr::new(192, 0, 2, 7)));
        assert!(!host.contains_addr(Ipv4Addr::new(192, 0, 2, 6)));
        let c20 = Ipv4Cidr::new(Ipv4Addr::new(172, 16, 21, 9), 20).unwrap();
        assert_eq!(c20.network(), Ipv4Addr::new(172, 16, 16, 0));
        assert_eq!(c20.broadcast(), Some(Ipv4Addr::new(172, 16, 31, 255)));
        assert_eq!(Ipv4Cidr::new(Ipv4Addr::LOCALHOST, 33), Err(CidrError::BadPrefixLen));
        assert_eq!("10.0.0.2/33".parse::<Ipv4Cidr>(), Err(CidrError::BadPrefixLen));
        assert_eq!("10.0.0.2/+8".parse::<Ipv4Cidr>(), Err(CidrError::BadPrefixLen));
        assert_eq!("10.0.0.2/".parse::<Ipv4Cidr>(), Err(CidrError::BadPrefixLen));
        assert_eq!("10.0.0.2".parse::<Ipv4Cidr>(), Err(CidrError::MissingPrefix));
        assert_eq!("10.0.0/8".parse::<Ipv4Cidr>(), Err(CidrError::BadAddress));
    }

    fn arb_repr() -> impl Strategy<Value = Ipv4Repr> {
        (
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            0usize..1500,
            any::<u8>(),
            any::<u16>(),
            any::<bool>(),
            any::<bool>(),
            0u16..8192,
            any::<u8>(),
        )
            .prop_map(|(s, d, proto, payload_len, ttl, ident, df, mf, off, dscp_ecn)| Ipv4Repr {
                src_addr: s.into(),
                dst_addr: d.into(),
                protocol: proto.into(),
                payload_len,
                ttl,
                ident,
                dont_frag: df,
                more_frags: mf,
                frag_offset: off * 8,
                dscp_ecn,
            })
    }

    proptest! {
        #[test]
        fn round_trip(repr in arb_repr()) {
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
            let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Ipv4Repr::parse(&p, ChecksumMode::Full).unwrap(), repr);
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut data in proptest::collection::vec(any::<u8>(), 0..80),
                                       force_v4 in any::<bool>()) {
            if force_v4 && !data.is_empty() {
                data[0] = 0x40 | (data[0] & 0x0f);
            }
            if let Ok(p) = Ipv4Packet::new_checked(&data[..]) {
                let _ = (p.dscp(), p.ecn(), p.ident(), p.dont_frag(), p.more_frags(), p.frag_offset());
                let _ = (p.ttl(), p.protocol(), p.checksum(), p.src_addr(), p.dst_addr(), p.is_fragment());
                let _ = (p.options(), p.payload(), p.verify_checksum());
                if let Ok(repr) = Ipv4Repr::parse(&p, ChecksumMode::Full) {
                    prop_assert_eq!(repr.payload_len, p.payload().len());
                }
            }
        }

        #[test]
        fn cidr_contains_its_network_and_broadcast(addr in any::<u32>(), prefix in 0u8..=32) {
            let c = Ipv4Cidr::new(addr.into(), prefix).unwrap();
            prop_assert!(c.contains_addr(c.address()));
            prop_assert!(c.contains_addr(c.network()));
            if let Some(b) = c.broadcast() {
                prop_assert!(c.contains_addr(b));
            }
            prop_assert_eq!(u32::from(c.netmask()).count_ones(), u32::from(prefix));
            prop_assert_eq!(c.to_string().parse::<Ipv4Cidr>().unwrap(), c);
        }
    }
}

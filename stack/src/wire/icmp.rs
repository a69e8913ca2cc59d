//! ICMP for IPv4.
//!
//! Implements RFC 792 (Internet Control Message Protocol): echo request and reply, destination
//! unreachable, time exceeded and parameter problem, with the next-hop MTU of "fragmentation needed"
//! from RFC 1191 §4 and the unreachable codes of RFC 1122 §3.2.2.1 and RFC 1812 §5.2.7.1. Other
//! message types are [`Error::Unsupported`].
//!
//! The checksum covers the whole ICMP message, so the view must cover exactly the IPv4 payload.

use std::net::Ipv4Addr;

use super::{checksum, read_u16, read_u32, write_u16, ChecksumMode, Error, IpProtocol, TcpSeqNumber};

/// ICMP message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4Message {
    /// 0.
    EchoReply,
    /// 3.
    DstUnreachable,
    /// 5.
    Redirect,
    /// 8.
    EchoRequest,
    /// 11.
    TimeExceeded,
    /// 12.
    ParamProblem,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for Icmpv4Message {
    fn from(value: u8) -> Self {
        match value {
            0 => Icmpv4Message::EchoReply,
            3 => Icmpv4Message::DstUnreachable,
            5 => Icmpv4Message::Redirect,
            8 => Icmpv4Message::EchoRequest,
            11 => Icmpv4Message::TimeExceeded,
            12 => Icmpv4Message::ParamProblem,
            other => Icmpv4Message::Unknown(other),
        }
    }
}

impl From<Icmpv4Message> for u8 {
    fn from(value: Icmpv4Message) -> u8 {
        match value {
            Icmpv4Message::EchoReply => 0,
            Icmpv4Message::DstUnreachable => 3,
            Icmpv4Message::Redirect => 5,
            Icmpv4Message::EchoRequest => 8,
            Icmpv4Message::TimeExceeded => 11,
            Icmpv4Message::ParamProblem => 12,
            Icmpv4Message::Unknown(other) => other,
        }
    }
}

/// Codes of destination unreachable messages.
pub mod dst_unreachable {
    /// Net unreachable.
    pub const NET_UNREACHABLE: u8 = 0;
    /// Host unreachable.
    pub const HOST_UNREACHABLE: u8 = 1;
    /// Protocol unreachable.
    pub const PROTOCOL_UNREACHABLE: u8 = 2;
    /// Port unreachable.
    pub const PORT_UNREACHABLE: u8 = 3;
    /// Fragmentation needed and DF set (carries the next-hop MTU, RFC 1191).
    pub const FRAG_NEEDED: u8 = 4;
    /// Source route failed.
    pub const SOURCE_ROUTE_FAILED: u8 = 5;
    /// Destination network unknown.
    pub const NET_UNKNOWN: u8 = 6;
    /// Destination host unknown.
    pub const HOST_UNKNOWN: u8 = 7;
    /// Source host isolated.
    pub const HOST_ISOLATED: u8 = 8;
    /// Communication with the destination network administratively prohibited.
    pub const NET_PROHIBITED: u8 = 9;
    /// Communication with the destination host administratively prohibited.
    pub const HOST_PROHIBITED: u8 = 10;
    /// Network unreachable for the type of service.
    pub const NET_UNREACHABLE_TOS: u8 = 11;
    /// Host unreachable for the type of service.
    pub const HOST_UNREACHABLE_TOS: u8 = 12;
    /// Communication administratively prohibited (RFC 1812).
    pub const COMM_PROHIBITED: u8 = 13;
    /// Host precedence violation (RFC 1812).
    pub const HOST_PRECEDENCE_VIOLATION: u8 = 14;
    /// Precedence cutoff in effect (RFC 1812).
    pub const PRECEDENCE_CUTOFF: u8 = 15;
}

/// Codes of time exceeded messages.
pub mod time_exceeded {
    /// Time to live exceeded in transit.
    pub const TTL_EXPIRED: u8 = 0;
    /// Fragment reassembly time exceeded.
    pub const REASSEMBLY_TIMEOUT: u8 = 1;
}

/// Field offsets.
mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    /// Echo: identifier. Others: first half of the "unused" word.
    pub const ECHO_IDENT: usize = 4;
    /// Echo: sequence number.
    pub const ECHO_SEQ_NO: usize = 6;
    /// Parameter problem: pointer to the offending octet.
    pub const POINTER: usize = 4;
    /// Fragmentation needed: next-hop MTU (RFC 1191).
    pub const NEXT_HOP_MTU: usize = 6;
    /// Echo data, or the invoking datagram of an error message.
    pub const DATA: usize = 8;
}

/// Length of the ICMP header (type, code, checksum and the 4-byte rest of header).
pub const HEADER_LEN: usize = 8;

/// A view of an ICMPv4 message.
#[derive(Debug, Clone)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps a buffer without checks; accessors panic if it is shorter than 8 bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }

    /// Wraps a buffer of at least 8 bytes ([`Error::Truncated`] otherwise).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// See [`new_checked`](Self::new_checked).
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type.
    pub fn msg_type(&self) -> Icmpv4Message {
        self.buffer.as_ref()[field::TYPE].into()
    }

    /// Message code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Echo identifier.
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// Echo sequence number.
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQ_NO)
    }

    /// Next-hop MTU of a "fragmentation needed" message (0 from pre-RFC 1191 routers).
    pub fn next_hop_mtu(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::NEXT_HOP_MTU)
    }

    /// Pointer of a parameter problem message.
    pub fn pointer(&self) -> u8 {
        self.buffer.as_ref()[field::POINTER]
    }

    /// Everything after the 8-byte header: echo data or the invoking datagram.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA..]
    }

    /// Whether the checksum over the whole message is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.buffer.as_ref())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Sets the message type.
    pub fn set_msg_type(&mut self, value: Icmpv4Message) {
        self.buffer.as_mut()[field::TYPE] = value.into();
    }

    /// Sets the message code.
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_IDENT, value);
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_SEQ_NO, value);
    }

    /// Sets the 4-byte rest of header of an error message: the pointer (parameter problem) and the
    /// next-hop MTU (fragmentation needed); the rest is zero.
    pub fn set_error_fields(&mut self, pointer: u8, next_hop_mtu: u16) {
        let data = self.buffer.as_mut();
        data[field::POINTER] = pointer;
        data[field::POINTER + 1] = 0;
        write_u16(data, field::NEXT_HOP_MTU, next_hop_mtu);
    }

    /// Mutable data after the header.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA..]
    }

    /// Computes and stores the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let value = checksum::compute(self.buffer.as_ref());
        self.set_checksum(value);
    }
}

/// A parsed ICMPv4 message of a supported type. The slices borrow the packet buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
    /// Echo request (type 8).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data, echoed back in the reply.
        data: &'a [u8],
    },
    /// Echo reply (type 0).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Destination unreachable (type 3).
    DstUnreachable {
        /// One of [`dst_unreachable`].
        code: u8,
        /// Next-hop MTU ([`dst_unreachable::FRAG_NEEDED`] only; 0 otherwise).
        next_hop_mtu: u16,
        /// The invoking datagram: its IPv4 header and at least 8 bytes of its data.
        invoking: &'a [u8],
    },
    /// Time exceeded (type 11).
    TimeExceeded {
        /// One of [`time_exceeded`].
        code: u8,
        /// The invoking datagram.
        invoking: &'a [u8],
    },
    /// Parameter problem (type 12, code 0).
    ParamProblem {
        /// Offset of the offending octet in the invoking datagram.
        pointer: u8,
        /// The invoking datagram.
        invoking: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Parses a checked message, verifying the checksum if `checksum` says so. Error messages must
    /// quote an IPv4 header and at least 8 bytes of data (see [`invoking_flow`] for the errors).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Icmpv4Packet<&'a T>,
        checksum: ChecksumMode,
    ) -> Result<Icmpv4Repr<'a>, Error> {
        packet.check_len()?;
        if checksum.verify() && !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        let buffer: &'a T = packet.buffer;
        let data: &'a [u8] = &buffer.as_ref()[field::DATA..];
        let repr = match packet.msg_type() {
            Icmpv4Message::EchoRequest => {
                Icmpv4Repr::EchoRequest { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data }
            }
            Icmpv4Message::EchoReply => {
                Icmpv4Repr::EchoReply { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data }
            }
            Icmpv4Message::DstUnreachable => {
                check_invoking(data)?;
                let code = packet.msg_code();
                let next_hop_mtu =
                    if code == dst_unreachable::FRAG_NEEDED { packet.next_hop_mtu() } else { 0 };
                Icmpv4Repr::DstUnreachable { code, next_hop_mtu, invoking: data }
            }
            Icmpv4Message::TimeExceeded => {
                check_invoking(data)?;
                Icmpv4Repr::TimeExceeded { code: packet.msg_code(), invoking: data }
            }
            Icmpv4Message::ParamProblem => {
                check_invoking(data)?;
                Icmpv4Repr::ParamProblem { pointer: packet.pointer(), invoking: data }
            }
            Icmpv4Message::Redirect | Icmpv4Message::Unknown(_) => return Err(Error::Unsupported),
        };
        Ok(repr)
    }

    /// 8.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus data or invoking datagram.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data().len()
    }

    fn data(&self) -> &'a [u8] {
        match *self {
            Icmpv4Repr::EchoRequest { data, .. } | Icmpv4Repr::EchoReply { data, .. } => data,
            Icmpv4Repr::DstUnreachable { invoking, .. }
            | Icmpv4Repr::TimeExceeded { invoking, .. }
            | Icmpv4Repr::ParamProblem { invoking, .. } => invoking,
        }
    }

    /// Writes the message (copying the data) and, unless `checksum` is
    /// [`Ignore`](ChecksumMode::Ignore), its checksum over the first [`buffer_len`](Self::buffer_len)
    /// bytes. The view should be exactly that long.
    ///
    /// # Panics
    /// If the buffer is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv4Packet<T>, checksum: ChecksumMode) {
        match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no, .. } | Icmpv4Repr::EchoReply { ident, seq_no, .. } => {
                let ty = match self {
                    Icmpv4Repr::EchoRequest { .. } => Icmpv4Message::EchoRequest,
                    _ => Icmpv4Message::EchoReply,
                };
                packet.set_msg_type(ty);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
            }
            Icmpv4Repr::DstUnreachable { code, next_hop_mtu, .. } => {
                packet.set_msg_type(Icmpv4Message::DstUnreachable);
                packet.set_msg_code(code);
                packet.set_error_fields(0, next_hop_mtu);
            }
            Icmpv4Repr::TimeExceeded { code, .. } => {
                packet.set_msg_type(Icmpv4Message::TimeExceeded);
                packet.set_msg_code(code);
                packet.set_error_fields(0, 0);
            }
            Icmpv4Repr::ParamProblem { pointer, .. } => {
                packet.set_msg_type(Icmpv4Message::ParamProblem);
                packet.set_msg_code(0);
                packet.set_error_fields(pointer, 0);
            }
        }
        let data = self.data();
        packet.data_mut()[..data.len()].copy_from_slice(data);
        packet.set_checksum(0);
        if checksum != ChecksumMode::Ignore {
            let value = checksum::compute(&packet.buffer.as_ref()[..self.buffer_len()]);
            packet.set_checksum(value);
        }
    }
}

/// Header length of the quoted IPv4 header, after checking it is there with 8 bytes of data.
fn check_invoking(invoking: &[u8]) -> Result<usize, Error> {
    let Some(&ver_ihl) = invoking.first() else {
        return Err(Error::Truncated);
    };
    if invoking.len() < 20 {
        return Err(Error::Truncated);
    }
    if ver_ihl >> 4 != 4 {
        return Err(Error::BadVersion);
    }
    let header_len = usize::from(ver_ihl & 0x0f) * 4;
    if header_len < 20 {
        return Err(Error::BadHeaderLen);
    }
    // RFC 792: "Internet Header + 64 bits of Original Data Datagram".
    if invoking.len() < header_len + 8 {
        return Err(Error::Truncated);
    }
    Ok(header_len)
}

/// The flow of the datagram quoted in an ICMP error: (source, destination, protocol, source port,
/// destination port), from the point of view of whoever sent the invoking datagram.
///
/// Ports are read for TCP and UDP from the first 4 bytes after the quoted header; they are 0 for
/// other protocols and for non-first fragments (whose data is not a transport header).
/// Errors: [`Error::Truncated`] (less than a 20-byte header, or less than header + 8 bytes),
/// [`Error::BadVersion`], [`Error::BadHeaderLen`] (IHL < 5). Never panics.
pub fn invoking_flow(invoking: &[u8]) -> Result<(Ipv4Addr, Ipv4Addr, IpProtocol, u16, u16), Error> {
    let header_len = check_invoking(invoking)?;
    let src = Ipv4Addr::new(invoking[12], invoking[13], invoking[14], invoking[15]);
    let dst = Ipv4Addr::new(invoking[16], invoking[17], invoking[18], invoking[19]);
    let protocol = IpProtocol::from(invoking[9]);
    let frag_offset = read_u16(invoking, 6) & 0x1fff;
    let (src_port, dst_port) = match protocol {
        IpProtocol::Tcp | IpProtocol::Udp if frag_offset == 0 => {
            (read_u16(invoking, header_len), read_u16(invoking, header_len + 2))
        }
        _ => (0, 0),
    };
    Ok((src, dst, protocol, src_port, dst_port))
}

/// The sequence number of the TCP segment quoted in an ICMP error (bytes 4-7 of its header, within
/// the 8 bytes RFC 792 guarantees), so that TCP can check it against its send window (RFC 5927
/// §4.1). None when the quoted datagram is not TCP, is a non-first fragment, or is malformed (the
/// errors of [`invoking_flow`]). Never panics.
pub fn invoking_tcp_seq(invoking: &[u8]) -> Option<TcpSeqNumber> {
    let header_len = check_invoking(invoking).ok()?;
    let frag_offset = read_u16(invoking, 6) & 0x1fff;
    if IpProtocol::from(invoking[9]) != IpProtocol::Tcp || frag_offset != 0 {
        return None;
    }
    Some(TcpSeqNumber(read_u32(invoking, header_len + 4)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{fixtures, Ipv4Packet};
    use proptest::prelude::*;

    /// The ICMP message of a captured frame (Ethernet and IPv4 header stripped).
    fn icmp(frame: &[u8]) -> &[u8] {
        let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
        assert_eq!(usize::from(ip.total_len()), frame.len() - 14);
        &frame[14 + ip.header_len()..]
    }

    #[test]
    fn captured_echo_request_and_reply() {
        // tshark: type 8 code 0, checksum 0x7031 [correct], id 0x3025, seq 1, 16 bytes of data.
        let p = Icmpv4Packet::new_checked(icmp(fixtures::ICMP_ECHO_REQUEST)).unwrap();
        assert_eq!((p.msg_type(), p.msg_code(), p.checksum()), (Icmpv4Message::EchoRequest, 0, 0x7031));
        assert!(p.verify_checksum());
        let data = &icmp(fixtures::ICMP_ECHO_REQUEST)[8..];
        assert_eq!(data.len(), 16);
        // tshark: data after ping's 8-byte timestamp is bb020f0000000000.
        assert_eq!(data[8..], [0xbb, 0x02, 0x0f, 0, 0, 0, 0, 0]);
        let request = Icmpv4Repr::parse(&p, ChecksumMode::Full).unwrap();
        assert_eq!(request, Icmpv4Repr::EchoRequest { ident: 0x3025, seq_no: 1, data });
        // tshark: type 0, checksum 0x7831 [correct], same id, seq and data.
        let p = Icmpv4Packet::new_checked(icmp(fixtures::ICMP_ECHO_REPLY)).unwrap();
        assert_eq!(p.checksum(), 0x7831);
        let reply = Icmpv4Repr::parse(&p, ChecksumMode::Full).unwrap();
        assert_eq!(reply, Icmpv4Repr::EchoReply { ident: 0x3025, seq_no: 1, data });
        // Emitting the reply reproduces the kernel's bytes, checksum included.
        let mut buf = vec![0u8; reply.buffer_len()];
        reply.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), ChecksumMode::Full);
        assert_eq!(&buf[..], icmp(fixtures::ICMP_ECHO_REPLY));
    }

    #[test]
    fn captured_port_unreachable() {
        // tshark: type 3 code 3, checksum 0x11d8 [correct], quoting 10.88.0.1:5555 -> 10.88.0.2:7777 UDP.
        let bytes = icmp(fixtures::ICMP_PORT_UNREACHABLE);
        let p = Icmpv4Packet::new_checked(bytes).unwrap();
        assert_eq!(p.checksum(), 0x11d8);
        let repr = Icmpv4Repr::parse(&p, ChecksumMode::Full).unwrap();
        let Icmpv4Repr::DstUnreachable { code, next_hop_mtu, invoking } = repr else {
            panic!("{repr:?}");
        };
        assert_eq!((code, next_hop_mtu), (dst_unreachable::PORT_UNREACHABLE, 0));
        assert_eq!(invoking, &fixtures::UDP[14..]);
        let flow = invoking_flow(invoking).unwrap();
        assert_eq!(
            flow,
            (Ipv4Addr::new(10, 88, 0, 1), Ipv4Addr::new(10, 88, 0, 2), IpProtocol::Udp, 5555, 7777)
        );
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), ChecksumMode::Full);
        assert_eq!(&buf[..], bytes);
    }

    #[test]
    fn bad_checksum_is_detected_unless_ignored() {
        let mut bytes = icmp(fixtures::ICMP_ECHO_REQUEST).to_vec();
        bytes[20] ^= 0x40;
        let p = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
        assert!(!p.verify_checksum());
        assert_eq!(Icmpv4Repr::parse(&p, ChecksumMode::Full), Err(Error::BadChecksum));
        assert!(Icmpv4Repr::parse(&p, ChecksumMode::Ignore).is_ok());
    }

    #[test]
    fn truncated_invoking_header() {
        let full = icmp(fixtures::ICMP_PORT_UNREACHABLE);
        // Quoting less than header + 8 bytes; the checksum is refreshed so only the length is wrong.
        for keep in [8, 9, 27, 28, 35] {
            let mut bytes = full[..keep].to_vec();
            Icmpv4Packet::new_unchecked(&mut bytes[..]).fill_checksum();
            let p = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
            assert_eq!(Icmpv4Repr::parse(&p, ChecksumMode::Full), Err(Error::Truncated), "keep {keep}");
            assert_eq!(invoking_flow(&bytes[8..]), Err(Error::Truncated));
        }
        let mut quoted = full[8..].to_vec();
        quoted[0] = 0x65;
        assert_eq!(invoking_flow(&quoted), Err(Error::BadVersion));
        quoted[0] = 0x43;
        assert_eq!(invoking_flow(&quoted), Err(Error::BadHeaderLen));
        quoted[0] = 0x46; // 24-byte header: 43 quoted bytes still hold it and 8 more.
        assert_eq!(invoking_flow(&quoted).unwrap().3, u16::from_be_bytes([quoted[24], quoted[25]]));
    }

    #[test]
    fn invoking_fragment_and_icmp_have_no_ports() {
        let mut quoted = icmp(fixtures::ICMP_PORT_UNREACHABLE)[8..].to_vec();
        quoted[7] = 185; // fragment offset 1480
        assert_eq!(invoking_flow(&quoted).unwrap().3, 0);
        let echo = &fixtures::ICMP_ECHO_REQUEST[14..];
        let (_, _, proto, sp, dp) = invoking_flow(echo).unwrap();
        assert_eq!((proto, sp, dp), (IpProtocol::Icmp, 0, 0));
        // The captured first fragment of a UDP datagram: ports come from its UDP header.
        let (_, _, proto, sp, dp) = invoking_flow(&fixtures::IPV4_FIRST_FRAGMENT[14..42]).unwrap();
        assert_eq!((proto, sp, dp), (IpProtocol::Udp, 5555, 7778));
    }

    #[test]
    fn invoking_tcp_seq_reads_the_quoted_sequence_number() {
        // A captured TCP data segment, quoted as an ICMP error quotes it: IP header and 8 bytes.
        let datagram = &fixtures::TCP_DATA[14..];
        let ip = Ipv4Packet::new_checked(datagram).unwrap();
        let tcp = crate::wire::TcpPacket::new_checked(&datagram[ip.header_len()..]).unwrap();
        let quoted = &datagram[..ip.header_len() + 8];
        assert_eq!(invoking_tcp_seq(quoted), Some(tcp.seq_number()));
        assert_eq!(invoking_tcp_seq(&quoted[..quoted.len() - 1]), None, "truncated");
        let mut fragment = quoted.to_vec();
        fragment[7] = 185; // a non-first fragment: its data is not a TCP header
        assert_eq!(invoking_tcp_seq(&fragment), None);
        assert_eq!(invoking_tcp_seq(&fixtures::UDP[14..]), None, "not TCP");
    }

    #[test]
    fn unsupported_types() {
        for ty in [5u8, 13, 42] {
            let mut bytes = icmp(fixtures::ICMP_ECHO_REQUEST).to_vec();
            bytes[0] = ty;
            let p = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
            assert_eq!(Icmpv4Repr::parse(&p, ChecksumMode::Ignore), Err(Error::Unsupported));
        }
    }

    #[test]
    fn every_prefix() {
        let full = icmp(fixtures::ICMP_ECHO_REQUEST);
        for len in 0..8 {
            assert_eq!(Icmpv4Packet::new_checked(&full[..len]).unwrap_err(), Error::Truncated);
        }
        for len in 8..full.len() {
            let p = Icmpv4Packet::new_checked(&full[..len]).unwrap();
            // Cutting off only zero bytes leaves the one's-complement sum, and so the checksum, intact.
            let still_valid = full[len..].iter().all(|&b| b == 0);
            let parsed = Icmpv4Repr::parse(&p, ChecksumMode::Full);
            assert_eq!(parsed.is_ok(), still_valid, "len {len}: {parsed:?}");
            if !still_valid {
                assert_eq!(parsed, Err(Error::BadChecksum));
            }
        }
    }

    fn arb_repr(data: &[u8]) -> impl Strategy<Value = Icmpv4Repr<'_>> {
        (0u8..5, any::<u16>(), any::<u16>(), any::<u8>()).prop_map(move |(kind, a, b, c)| match kind {
            0 => Icmpv4Repr::EchoRequest { ident: a, seq_no: b, data },
            1 => Icmpv4Repr::EchoReply { ident: a, seq_no: b, data },
            2 => Icmpv4Repr::DstUnreachable {
                code: dst_unreachable::FRAG_NEEDED,
                next_hop_mtu: a,
                invoking: data,
            },
            3 => Icmpv4Repr::TimeExceeded { code: c, invoking: data },
            _ => Icmpv4Repr::ParamProblem { pointer: c, invoking: data },
        })
    }

    proptest! {
        #[test]
        fn round_trip(repr in arb_repr(&fixtures::TCP_SYN[14..])) {
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), ChecksumMode::Full);
            let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Icmpv4Repr::parse(&p, ChecksumMode::Full).unwrap(), repr);
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut data in proptest::collection::vec(any::<u8>(), 0..80),
                                       ty in prop_oneof![Just(0u8), Just(3), Just(8), Just(11), Just(12)],
                                       v4 in any::<bool>()) {
            if let Some(b) = data.first_mut() {
                *b = ty;
            }
            if v4 && data.len() > 8 {
                data[8] = 0x40 | (data[8] & 0x0f);
            }
            if let Ok(p) = Icmpv4Packet::new_checked(&data[..]) {
                let _ = (p.msg_type(), p.msg_code(), p.checksum(), p.echo_ident(), p.echo_seq_no());
                let _ = (p.next_hop_mtu(), p.pointer(), p.data(), p.verify_checksum());
                let _ = Icmpv4Repr::parse(&p, ChecksumMode::Ignore);
                let _ = invoking_flow(p.data());
            }
            let _ = invoking_flow(&data);
        }
    }
}

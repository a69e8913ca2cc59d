//! UDP datagrams.
//!
//! Implements RFC 768 (User Datagram Protocol) over IPv4, with the checksum rules of RFC 1122
//! §4.1.3.4: a received checksum of zero means none was computed, and a computed zero is sent as
//! all ones.

use std::net::Ipv4Addr;

use super::{checksum, read_u16, write_u16, ChecksumMode, Error, IpProtocol};

/// Field offsets.
mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    /// Length of header and data.
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;
/// Offset of the checksum field (for transmit checksum offload).
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM;

/// A view of a UDP datagram. The buffer should be the IPv4 payload.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps a buffer without checks; accessors panic if it is short or the length field lies.
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps a buffer after checking: at least 8 bytes ([`Error::Truncated`]) and a length field
    /// between 8 and the buffer length ([`Error::BadLength`]). Bytes after the length are ignored.
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
        let len = usize::from(self.len());
        if len < HEADER_LEN || len > data.len() {
            return Err(Error::BadLength);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Length field (header and data).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Checksum field (0: none).
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The data, bounded by the length field.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// Whether the checksum is correct for these addresses; a zero checksum (none sent) is accepted.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let datagram = &self.buffer.as_ref()[..usize::from(self.len())];
        checksum::verify_l4(src, dst, IpProtocol::Udp, datagram)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, value);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, value);
    }

    /// Sets the length field.
    pub fn set_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, value);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Mutable data, bounded by the length field.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// Computes and stores the checksum over the pseudo-header, header and data (up to the length
    /// field). A computed 0 is stored as 0xFFFF.
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let datagram = &self.buffer.as_ref()[..usize::from(self.len())];
        let value = match checksum::compute_l4(src, dst, IpProtocol::Udp, datagram) {
            // RFC 768: "If the computed checksum is zero, it is transmitted as all ones".
            0 => 0xffff,
            value => value,
        };
        self.set_checksum(value);
    }
}

/// A parsed UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Data length (length field minus 8).
    pub payload_len: usize,
}

impl UdpRepr {
    /// Parses a checked datagram, verifying the checksum (unless zero) if `checksum` says so
    /// ([`Error::BadChecksum`]). Destination port 0 is left for the caller to reject.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &UdpPacket<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        checksum: ChecksumMode,
    ) -> Result<UdpRepr, Error> {
        packet.check_len()?;
        if checksum.verify() && !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload_len: usize::from(packet.len()) - HEADER_LEN,
        })
    }

    /// 8.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus data.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the header. The `payload_len` data bytes must already follow the header in the buffer:
    /// the checksum covers them ([`Full`](ChecksumMode::Full)); [`Ignore`](ChecksumMode::Ignore)
    /// writes 0 (no checksum), [`TxOffload`](ChecksumMode::TxOffload) the pseudo-header sum.
    ///
    /// # Panics
    /// If the buffer is shorter than [`buffer_len`](Self::buffer_len); `buffer_len` must fit in u16
    /// (debug-asserted).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut UdpPacket<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        checksum: ChecksumMode,
    ) {
        debug_assert!(self.buffer_len() <= usize::from(u16::MAX));
        let len = self.buffer_len() as u16;
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(len);
        match checksum {
            ChecksumMode::Full => packet.fill_checksum(src, dst),
            ChecksumMode::Ignore => packet.set_checksum(0),
            ChecksumMode::TxOffload => {
                packet.set_checksum(checksum::pseudo_header(src, dst, IpProtocol::Udp, len))
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

    fn udp() -> &'static [u8] {
        &fixtures::UDP[34..]
    }

    #[test]
    fn captured_datagram() {
        // tshark: 5555 -> 7777, length 23, checksum 0xa862 [correct], payload "hello xdpstack\n".
        let p = UdpPacket::new_checked(udp()).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len(), p.checksum()), (5555, 7777, 23, 0xa862));
        assert_eq!(p.payload(), b"hello xdpstack\n");
        assert!(p.verify_checksum(IP_A, IP_B));
        assert!(!p.verify_checksum(IP_A, Ipv4Addr::new(10, 88, 0, 3)));
        let repr = UdpRepr::parse(&p, IP_A, IP_B, ChecksumMode::Full).unwrap();
        assert_eq!(repr, UdpRepr { src_port: 5555, dst_port: 7777, payload_len: 15 });
        // Emitting over the same payload reproduces the kernel's header and checksum.
        let mut buf = udp().to_vec();
        buf[..8].fill(0);
        repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), IP_A, IP_B, ChecksumMode::Full);
        assert_eq!(&buf[..], udp());
    }

    #[test]
    fn first_fragment_length_exceeds_the_fragment() {
        // The UDP header in the captured first fragment: 5555 -> 7778, length 3008 (whole datagram).
        let frag = &fixtures::IPV4_FIRST_FRAGMENT[34..];
        let p = UdpPacket::new_unchecked(frag);
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (5555, 7778, 3008));
        assert_eq!(UdpPacket::new_checked(frag).unwrap_err(), Error::BadLength);
    }

    #[test]
    fn zero_checksum_means_none() {
        let mut buf = udp().to_vec();
        buf[6..8].fill(0);
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert!(UdpRepr::parse(&p, IP_A, IP_B, ChecksumMode::Full).is_ok());
    }

    #[test]
    fn corrupt_payload_is_detected() {
        let mut buf = udp().to_vec();
        buf[10] ^= 0x01;
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(UdpRepr::parse(&p, IP_A, IP_B, ChecksumMode::Full), Err(Error::BadChecksum));
        assert!(UdpRepr::parse(&p, IP_A, IP_B, ChecksumMode::Ignore).is_ok());
    }

    #[test]
    fn computed_zero_is_sent_as_all_ones() {
        // Choose the last two payload bytes so that the checksum computes to zero.
        let mut buf = vec![0u8; 12];
        let repr = UdpRepr { src_port: 1, dst_port: 2, payload_len: 4 };
        repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), IP_A, IP_B, ChecksumMode::Ignore);
        let partial = checksum::combine(&[
            checksum::pseudo_header(IP_A, IP_B, IpProtocol::Udp, 12),
            checksum::sum(&buf),
        ]);
        // Adding `!partial` makes the sum 0xffff, i.e. a computed checksum of 0.
        buf[10..12].copy_from_slice(&(!partial).to_be_bytes());
        repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), IP_A, IP_B, ChecksumMode::Full);
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum(IP_A, IP_B));
    }

    #[test]
    fn tx_offload_writes_the_pseudo_header_sum() {
        let mut buf = udp().to_vec();
        let repr = UdpRepr { src_port: 5555, dst_port: 7777, payload_len: 15 };
        repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), IP_A, IP_B, ChecksumMode::TxOffload);
        // What a device does: complement of the sum from the UDP header to the end.
        let device = !checksum::sum(&buf);
        buf[6..8].copy_from_slice(&device.to_be_bytes());
        assert_eq!(&buf[..], udp());
    }

    #[test]
    fn lying_lengths() {
        let with_len = |len: u16| {
            let mut b = udp().to_vec();
            b[4..6].copy_from_slice(&len.to_be_bytes());
            UdpPacket::new_checked(b).map(|p| p.payload().len())
        };
        assert_eq!(with_len(7), Err(Error::BadLength));
        assert_eq!(with_len(0), Err(Error::BadLength));
        assert_eq!(with_len(24), Err(Error::BadLength));
        assert_eq!(with_len(8), Ok(0));
        assert_eq!(with_len(20), Ok(12));
        for len in 0..udp().len() {
            let expected = if len < 8 { Error::Truncated } else { Error::BadLength };
            assert_eq!(UdpPacket::new_checked(&udp()[..len]).unwrap_err(), expected);
        }
    }

    proptest! {
        #[test]
        fn round_trip(src_port in any::<u16>(), dst_port in any::<u16>(),
                      payload in proptest::collection::vec(any::<u8>(), 0..100),
                      src in any::<u32>(), dst in any::<u32>()) {
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            let repr = UdpRepr { src_port, dst_port, payload_len: payload.len() };
            let mut buf = vec![0u8; repr.buffer_len()];
            buf[8..].copy_from_slice(&payload);
            repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), src, dst, ChecksumMode::Full);
            let p = UdpPacket::new_checked(&buf[..]).unwrap();
            prop_assert_ne!(p.checksum(), 0);
            prop_assert_eq!(UdpRepr::parse(&p, src, dst, ChecksumMode::Full).unwrap(), repr);
            prop_assert_eq!(p.payload(), &payload[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40),
                                       len in 0u16..48) {
            let mut data = data;
            if data.len() >= 6 {
                data[4..6].copy_from_slice(&len.to_be_bytes());
            }
            if let Ok(p) = UdpPacket::new_checked(&data[..]) {
                let _ = (p.src_port(), p.dst_port(), p.checksum(), p.payload());
                let _ = p.verify_checksum(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST);
                let _ = UdpRepr::parse(&p, Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, ChecksumMode::Full);
            }
        }
    }
}

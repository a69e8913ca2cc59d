//! ARP for IPv4 over Ethernet.
//!
//! Implements RFC 826 (An Ethernet Address Resolution Protocol) for hardware type 1 (Ethernet, 6-byte
//! addresses) and protocol type 0x0800 (IPv4, 4-byte addresses) only; anything else is
//! [`Error::Unsupported`]. Bytes after the 28-byte packet (Ethernet padding) are ignored.

use std::net::Ipv4Addr;

use super::{read_u16, write_u16, Error, EthernetAddress};

/// Field offsets.
mod field {
    use core::ops::Range;
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    /// End of the fixed part; the addresses follow.
    pub const FIXED_END: usize = 8;
    // Ethernet/IPv4 address layout.
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;
/// ARP hardware type of Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;
/// ARP protocol type of IPv4 (its EtherType).
pub const PTYPE_IPV4: u16 = 0x0800;

/// ARP operation code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    /// 1.
    Request,
    /// 2.
    Reply,
    /// Anything else.
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(value: u16) -> Self {
        match value {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            other => ArpOperation::Unknown(other),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(value: ArpOperation) -> u16 {
        match value {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Unknown(other) => other,
        }
    }
}

/// A view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps a buffer without checks; accessors panic if it is shorter than 28 bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Wraps a buffer after checking that the address lengths are 6 and 4 ([`Error::Unsupported`]
    /// otherwise) and that the 28 bytes are there ([`Error::Truncated`]).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// See [`new_checked`](Self::new_checked).
    pub fn check_len(&self) -> Result<(), Error> {
        let data = self.buffer.as_ref();
        if data.len() < field::FIXED_END {
            return Err(Error::Truncated);
        }
        if data[field::HLEN] != 6 || data[field::PLEN] != 4 {
            return Err(Error::Unsupported);
        }
        if data.len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Hardware type (1 for Ethernet).
    pub fn hardware_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::HTYPE)
    }

    /// Protocol type (0x0800 for IPv4).
    pub fn protocol_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PTYPE)
    }

    /// Hardware address length.
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Protocol address length.
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Operation.
    pub fn operation(&self) -> ArpOperation {
        read_u16(self.buffer.as_ref(), field::OPER).into()
    }

    /// Sender hardware address.
    pub fn source_hardware_addr(&self) -> EthernetAddress {
        self.mac(field::SHA)
    }

    /// Sender protocol address.
    pub fn source_protocol_addr(&self) -> Ipv4Addr {
        self.ip(field::SPA)
    }

    /// Target hardware address.
    pub fn target_hardware_addr(&self) -> EthernetAddress {
        self.mac(field::THA)
    }

    /// Target protocol address.
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        self.ip(field::TPA)
    }

    fn mac(&self, range: core::ops::Range<usize>) -> EthernetAddress {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[range]);
        EthernetAddress(a)
    }

    fn ip(&self, range: core::ops::Range<usize>) -> Ipv4Addr {
        let mut a = [0; 4];
        a.copy_from_slice(&self.buffer.as_ref()[range]);
        Ipv4Addr::from(a)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets hardware type, protocol type and address lengths to Ethernet/IPv4.
    pub fn set_ethernet_ipv4(&mut self) {
        let data = self.buffer.as_mut();
        write_u16(data, field::HTYPE, HTYPE_ETHERNET);
        write_u16(data, field::PTYPE, PTYPE_IPV4);
        data[field::HLEN] = 6;
        data[field::PLEN] = 4;
    }

    /// Sets the operation.
    pub fn set_operation(&mut self, op: ArpOperation) {
        write_u16(self.buffer.as_mut(), field::OPER, op.into());
    }

    /// Sets the sender hardware address.
    pub fn set_source_hardware_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&addr.0);
    }

    /// Sets the sender protocol address.
    pub fn set_source_protocol_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&addr.octets());
    }

    /// Sets the target hardware address.
    pub fn set_target_hardware_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&addr.0);
    }

    /// Sets the target protocol address.
    pub fn set_target_protocol_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&addr.octets());
    }
}

/// A parsed Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    /// Request, reply, or an unknown code (passed through; the caller decides).
    pub operation: ArpOperation,
    /// Sender MAC.
    pub source_hardware_addr: EthernetAddress,
    /// Sender IPv4 address.
    pub source_protocol_addr: Ipv4Addr,
    /// Target MAC (zero in a request).
    pub target_hardware_addr: EthernetAddress,
    /// Target IPv4 address.
    pub target_protocol_addr: Ipv4Addr,
}

impl ArpRepr {
    /// Parses a checked packet; [`Error::Unsupported`] unless it is Ethernet/IPv4.
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<ArpRepr, Error> {
        packet.check_len()?;
        if packet.hardware_type() != HTYPE_ETHERNET || packet.protocol_type() != PTYPE_IPV4 {
            return Err(Error::Unsupported);
        }
        Ok(ArpRepr {
            operation: packet.operation(),
            source_hardware_addr: packet.source_hardware_addr(),
            source_protocol_addr: packet.source_protocol_addr(),
            target_hardware_addr: packet.target_hardware_addr(),
            target_protocol_addr: packet.target_protocol_addr(),
        })
    }

    /// 28.
    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes the packet.
    ///
    /// # Panics
    /// If the buffer is shorter than 28 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        packet.set_ethernet_ipv4();
        packet.set_operation(self.operation);
        packet.set_source_hardware_addr(self.source_hardware_addr);
        packet.set_source_protocol_addr(self.source_protocol_addr);
        packet.set_target_hardware_addr(self.target_hardware_addr);
        packet.set_target_protocol_addr(self.target_protocol_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures;
    use proptest::prelude::*;

    const MAC_A: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x0a]);
    const MAC_B: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x0b]);
    const IP_A: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
    const IP_B: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 2);

    fn parse(frame: &[u8], eth_header: usize) -> Result<ArpRepr, Error> {
        ArpRepr::parse(&ArpPacket::new_checked(&frame[eth_header..])?)
    }

    #[test]
    fn captured_request_and_reply() {
        // tshark: request (1), sender 02:00:00:00:00:0a 10.88.0.1, target 00:00:00:00:00:00 10.88.0.2.
        let request = ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: MAC_A,
            source_protocol_addr: IP_A,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: IP_B,
        };
        assert_eq!(parse(fixtures::ARP_REQUEST, 14).unwrap(), request);
        assert_eq!(parse(fixtures::VLAN_ARP_REQUEST, 18).unwrap(), request);
        // tshark: reply (2), sender 02:00:00:00:00:0b 10.88.0.2, target 02:00:00:00:00:0a 10.88.0.1.
        let reply = ArpRepr {
            operation: ArpOperation::Reply,
            source_hardware_addr: MAC_B,
            source_protocol_addr: IP_B,
            target_hardware_addr: MAC_A,
            target_protocol_addr: IP_A,
        };
        assert_eq!(parse(fixtures::ARP_REPLY, 14).unwrap(), reply);
        let packet = ArpPacket::new_checked(&fixtures::ARP_REPLY[14..]).unwrap();
        assert_eq!((packet.hardware_type(), packet.protocol_type()), (1, 0x0800));
        assert_eq!((packet.hardware_len(), packet.protocol_len()), (6, 4));
    }

    #[test]
    fn emit_reproduces_capture() {
        for frame in [fixtures::ARP_REQUEST, fixtures::ARP_REPLY] {
            let repr = parse(frame, 14).unwrap();
            let mut buf = [0u8; PACKET_LEN];
            repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
            assert_eq!(&buf[..], &frame[14..]);
        }
    }

    #[test]
    fn padding_is_ignored() {
        let mut padded = fixtures::ARP_REQUEST[14..].to_vec();
        padded.extend_from_slice(&[0; 18]);
        let repr = ArpRepr::parse(&ArpPacket::new_checked(&padded[..]).unwrap()).unwrap();
        assert_eq!(repr.target_protocol_addr, IP_B);
    }

    #[test]
    fn prefixes_are_truncated() {
        let arp = &fixtures::ARP_REQUEST[14..];
        for len in 0..PACKET_LEN {
            assert_eq!(ArpPacket::new_checked(&arp[..len]).unwrap_err(), Error::Truncated, "len {len}");
        }
    }

    #[test]
    fn other_hardware_or_protocol_is_unsupported() {
        let arp = &fixtures::ARP_REQUEST[14..];
        for (at, value) in [(1, 6u8), (3, 0xdd), (4, 16), (5, 16)] {
            let mut bad = arp.to_vec();
            bad[at] = value;
            let result = ArpPacket::new_checked(&bad[..]).and_then(|p| ArpRepr::parse(&p));
            assert_eq!(result.unwrap_err(), Error::Unsupported, "byte {at}");
        }
    }

    proptest! {
        #[test]
        fn round_trip(op in any::<u16>(), sha in any::<[u8; 6]>(), spa in any::<u32>(),
                      tha in any::<[u8; 6]>(), tpa in any::<u32>()) {
            let repr = ArpRepr {
                operation: op.into(),
                source_hardware_addr: sha.into(),
                source_protocol_addr: spa.into(),
                target_hardware_addr: tha.into(),
                target_protocol_addr: tpa.into(),
            };
            let mut buf = [0u8; PACKET_LEN];
            repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
            prop_assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()).unwrap(), repr);
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut data in proptest::collection::vec(any::<u8>(), 0..40),
                                       eth_ipv4_lengths in any::<bool>()) {
            if eth_ipv4_lengths && data.len() > 5 {
                data[4] = 6;
                data[5] = 4;
            }
            if let Ok(p) = ArpPacket::new_checked(&data[..]) {
                let _ = (p.operation(), p.source_hardware_addr(), p.source_protocol_addr());
                let _ = (p.target_hardware_addr(), p.target_protocol_addr(), ArpRepr::parse(&p));
            }
        }
    }
}

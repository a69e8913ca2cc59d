//! Ethernet II frames with at most one 802.1Q VLAN tag.
//!
//! Implements Ethernet II framing (RFC 894, IP datagrams over Ethernet) and the IEEE 802.1Q tag
//! (TPID 0x8100, 12-bit VLAN ID). The frame check sequence is not part of the buffer (NICs and
//! AF_XDP strip it). Double tags (802.1ad) are not decoded: the inner TPID is reported as the
//! EtherType.

use core::fmt;

use super::{read_u16, write_u16, Error};

/// A 48-bit Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

    /// The address as bytes.
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// Whether this is the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Whether the group bit (least significant bit of the first octet) is set; broadcast included.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this is an individual (unicast) address.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

impl fmt::Debug for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<[u8; 6]> for EthernetAddress {
    fn from(bytes: [u8; 6]) -> Self {
        EthernetAddress(bytes)
    }
}

/// The EtherType of an Ethernet payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// IPv4, 0x0800.
    Ipv4,
    /// ARP, 0x0806.
    Arp,
    /// Anything else.
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(value: u16) -> Self {
        match value {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(value: EtherType) -> u16 {
        match value {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Unknown(other) => other,
        }
    }
}

/// Field offsets.
mod field {
    use core::ops::Range;
    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    /// EtherType of an untagged frame, or the 802.1Q TPID.
    pub const ETHERTYPE: usize = 12;
    /// 802.1Q tag control information: priority (3 bits), DEI (1), VLAN ID (12).
    pub const VLAN_TCI: usize = 14;
    /// EtherType of a tagged frame.
    pub const VLAN_ETHERTYPE: usize = 16;
}

/// Length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// Length of a header with one 802.1Q tag.
pub const VLAN_HEADER_LEN: usize = 18;
/// Tag protocol identifier of an 802.1Q tag.
pub const TPID_8021Q: u16 = 0x8100;
/// Mask of the VLAN ID within the tag control information.
const VID_MASK: u16 = 0x0fff;

/// A view of an Ethernet II frame (with at most one 802.1Q tag).
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps a buffer without checks; accessors panic if it is shorter than the header.
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer after checking it holds the whole header (tag included).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// [`Error::Truncated`] unless the buffer holds the whole header.
    pub fn check_len(&self) -> Result<(), Error> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if read_u16(data, field::ETHERTYPE) == TPID_8021Q && data.len() < VLAN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn is_tagged(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::ETHERTYPE) == TPID_8021Q
    }

    /// 14, or 18 with a VLAN tag.
    pub fn header_len(&self) -> usize {
        if self.is_tagged() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Destination address.
    pub fn dst_addr(&self) -> EthernetAddress {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::DESTINATION]);
        EthernetAddress(a)
    }

    /// Source address.
    pub fn src_addr(&self) -> EthernetAddress {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SOURCE]);
        EthernetAddress(a)
    }

    /// EtherType of the payload (behind the VLAN tag if there is one).
    pub fn ethertype(&self) -> EtherType {
        let at = if self.is_tagged() { field::VLAN_ETHERTYPE } else { field::ETHERTYPE };
        EtherType::from(read_u16(self.buffer.as_ref(), at))
    }

    /// The VLAN ID of a tagged frame (0 for a priority-tagged frame), `None` if untagged.
    pub fn vlan_id(&self) -> Option<u16> {
        self.is_tagged().then(|| read_u16(self.buffer.as_ref(), field::VLAN_TCI) & VID_MASK)
    }

    /// Everything after the header (for IPv4, possibly followed by Ethernet padding).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr.0);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr.0);
    }

    /// Sets the payload EtherType, behind the tag if the frame is already tagged.
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        let at = if self.is_tagged() { field::VLAN_ETHERTYPE } else { field::ETHERTYPE };
        write_u16(self.buffer.as_mut(), at, ethertype.into());
    }

    /// Mutable payload.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

/// A parsed Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    /// Source address.
    pub src: EthernetAddress,
    /// Destination address.
    pub dst: EthernetAddress,
    /// Payload EtherType.
    pub ethertype: EtherType,
    /// 802.1Q VLAN ID (12 bits), if tagged.
    pub vlan: Option<u16>,
}

impl EthernetRepr {
    /// Reads the header of a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<EthernetRepr, Error> {
        frame.check_len()?;
        Ok(EthernetRepr {
            src: frame.src_addr(),
            dst: frame.dst_addr(),
            ethertype: frame.ethertype(),
            vlan: frame.vlan_id(),
        })
    }

    /// 14, or 18 with a VLAN tag.
    pub fn header_len(&self) -> usize {
        if self.vlan.is_some() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Header plus `payload_len`.
    pub fn buffer_len(&self, payload_len: usize) -> usize {
        self.header_len() + payload_len
    }

    /// Writes the header (with the tag, priority 0, when `vlan` is set).
    ///
    /// # Panics
    /// If the buffer is shorter than [`header_len`](Self::header_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) {
        frame.set_dst_addr(self.dst);
        frame.set_src_addr(self.src);
        let data = frame.buffer.as_mut();
        match self.vlan {
            Some(vid) => {
                write_u16(data, field::ETHERTYPE, TPID_8021Q);
                write_u16(data, field::VLAN_TCI, vid & VID_MASK);
                write_u16(data, field::VLAN_ETHERTYPE, self.ethertype.into());
            }
            None => write_u16(data, field::ETHERTYPE, self.ethertype.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures;
    use proptest::prelude::*;

    const MAC_A: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x0a]);
    const MAC_B: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x0b]);

    #[test]
    fn address_classes_and_display() {
        assert!(EthernetAddress::BROADCAST.is_broadcast());
        assert!(EthernetAddress::BROADCAST.is_multicast());
        assert!(!EthernetAddress::BROADCAST.is_unicast());
        let mcast = EthernetAddress([0x01, 0x00, 0x5e, 0, 0, 1]);
        assert!(mcast.is_multicast() && !mcast.is_broadcast());
        assert!(MAC_A.is_unicast() && !MAC_A.is_multicast());
        assert_eq!(MAC_A.to_string(), "02:00:00:00:00:0a");
        assert_eq!(format!("{:?}", EthernetAddress([0xde, 0xad, 0xbe, 0xef, 0, 0xff])), "de:ad:be:ef:00:ff");
    }

    #[test]
    fn captured_untagged_frames() {
        // tshark: Dst Broadcast, Src 02:00:00:00:00:0a, Type ARP (0x0806).
        let f = EthernetFrame::new_checked(fixtures::ARP_REQUEST).unwrap();
        assert_eq!(f.dst_addr(), EthernetAddress::BROADCAST);
        assert_eq!(f.src_addr(), MAC_A);
        assert_eq!(f.ethertype(), EtherType::Arp);
        assert_eq!(f.vlan_id(), None);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload().len(), 28);
        // tshark: Dst 02:00:00:00:00:0b, Type IPv4 (0x0800).
        let f = EthernetFrame::new_checked(fixtures::UDP).unwrap();
        assert_eq!(f.dst_addr(), MAC_B);
        assert_eq!(f.ethertype(), EtherType::Ipv4);
    }

    #[test]
    fn captured_tagged_frames() {
        // tshark: Type 802.1Q, PRI 0, DEI 0, ID 100, inner Type ARP (0x0806).
        let f = EthernetFrame::new_checked(fixtures::VLAN_ARP_REQUEST).unwrap();
        assert_eq!(f.vlan_id(), Some(100));
        assert_eq!(f.ethertype(), EtherType::Arp);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &fixtures::ARP_REQUEST[14..]);
        let f = EthernetFrame::new_checked(fixtures::VLAN_ICMP_ECHO_REQUEST).unwrap();
        assert_eq!(f.vlan_id(), Some(100));
        assert_eq!(f.ethertype(), EtherType::Ipv4);
        assert_eq!(f.payload(), &fixtures::ICMP_ECHO_REQUEST[14..]);
    }

    #[test]
    fn truncated_headers() {
        assert_eq!(EthernetFrame::new_checked(&fixtures::ARP_REQUEST[..13]).unwrap_err(), Error::Truncated);
        assert!(EthernetFrame::new_checked(&fixtures::ARP_REQUEST[..14]).is_ok());
        // A tag announced but cut off.
        let f = &fixtures::VLAN_ARP_REQUEST[..17];
        assert_eq!(EthernetFrame::new_checked(f).unwrap_err(), Error::Truncated);
        assert!(EthernetFrame::new_checked(&fixtures::VLAN_ARP_REQUEST[..18]).is_ok());
    }

    #[test]
    fn emit_reproduces_captured_headers() {
        for frame in [fixtures::ARP_REQUEST, fixtures::VLAN_ARP_REQUEST, fixtures::TCP_DATA] {
            let repr = EthernetRepr::parse(&EthernetFrame::new_checked(frame).unwrap()).unwrap();
            let mut buf = vec![0u8; repr.header_len()];
            repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
            assert_eq!(&buf[..], &frame[..repr.header_len()]);
        }
    }

    #[test]
    fn setters() {
        let mut buf = fixtures::VLAN_ARP_REQUEST.to_vec();
        let mut f = EthernetFrame::new_checked(&mut buf[..]).unwrap();
        f.set_ethertype(EtherType::Ipv4);
        f.set_dst_addr(MAC_B);
        f.set_src_addr(MAC_A);
        assert_eq!(f.ethertype(), EtherType::Ipv4);
        assert_eq!(f.vlan_id(), Some(100));
        f.payload_mut()[0] = 0xaa;
        assert_eq!(buf[..18], [2, 0, 0, 0, 0, 0x0b, 2, 0, 0, 0, 0, 0x0a, 0x81, 0x00, 0x00, 0x64, 0x08, 0x00]);
        assert_eq!(buf[18], 0xaa);
    }

    proptest! {
        #[test]
        fn round_trip(src in any::<[u8; 6]>(), dst in any::<[u8; 6]>(), ty in any::<u16>(),
                      vlan in proptest::option::of(0u16..4096)) {
            // An untagged frame cannot carry the TPID as its EtherType (it would read as a tag).
            prop_assume!(ty != TPID_8021Q || vlan.is_some());
            let repr = EthernetRepr { src: src.into(), dst: dst.into(), ethertype: ty.into(), vlan };
            let mut buf = vec![0u8; repr.buffer_len(3)];
            repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
            let frame = EthernetFrame::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(EthernetRepr::parse(&frame).unwrap(), repr);
            prop_assert_eq!(frame.payload().len(), 3);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(f) = EthernetFrame::new_checked(&data[..]) {
                let _ = (f.dst_addr(), f.src_addr(), f.ethertype(), f.vlan_id(), f.payload());
                prop_assert!(f.header_len() <= data.len());
                let _ = EthernetRepr::parse(&f).unwrap();
            }
        }
    }
}

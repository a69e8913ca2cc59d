//! Wire formats: zero-copy views over packet bytes, and small parsed representations.
//!
//! Every protocol has a view `XxxPacket<T: AsRef<[u8]>>` (Ethernet: [`EthernetFrame`]) that reads and
//! writes header fields in place, and an `XxxRepr` that holds the parsed header:
//!
//! - `XxxPacket::new_unchecked(buffer)` wraps any buffer; accessors may panic if it is too short.
//! - `XxxPacket::new_checked(buffer)` validates lengths first; after it succeeds **no accessor panics**,
//!   whatever the bytes are. Receive paths use only this one.
//! - `XxxRepr::parse(&packet, ..)` checks the semantics (versions, supported types, checksums when asked)
//!   and `XxxRepr::emit(&self, &mut packet, ..)` writes a header into a buffer of at least
//!   `buffer_len()` bytes (emitting into a shorter buffer is a caller bug and panics).
//!
//! Nothing here allocates, keeps state or does I/O. Errors are a plain [`Error`] enum whose
//! [`Error::name`] is meant to be used as a drop-counter name.
//!
//! Layering: each view covers exactly its own protocol data unit. Pass `ipv4.payload()` (bounded by
//! the IPv4 total length, not by the frame length, because Ethernet padding may follow) to the UDP,
//! TCP and ICMP views.

use core::fmt;

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod tcp;
pub mod udp;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
pub use icmp::{invoking_flow, invoking_tcp_seq, Icmpv4Message, Icmpv4Packet, Icmpv4Repr};
pub use ipv4::{CidrError, IpProtocol, Ipv4Cidr, Ipv4Packet, Ipv4Repr};
pub use tcp::{TcpFlags, TcpOption, TcpOptions, TcpPacket, TcpRepr, TcpSeqNumber};
pub use udp::{UdpPacket, UdpRepr};

/// Why a packet was rejected. Each reason has a stable snake_case [`name`](Error::name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than the fixed header (or a header it must contain).
    Truncated,
    /// The IP version field is not 4.
    BadVersion,
    /// A header length field (IPv4 IHL, TCP data offset) is too small or points past the packet.
    BadHeaderLen,
    /// The IPv4 total length is larger than the buffer.
    BadTotalLen,
    /// A length field (UDP length) is below the header size or larger than the buffer.
    BadLength,
    /// A checksum does not verify.
    BadChecksum,
    /// A TCP option has an impossible length.
    BadOption,
    /// Well-formed, but a type or format this stack does not handle (non-Ethernet/IPv4 ARP, an ICMP
    /// message type other than echo and the error messages).
    Unsupported,
}

impl Error {
    /// Every reason, in declaration order (for building counter tables).
    pub const ALL: [Error; 8] = [
        Error::Truncated,
        Error::BadVersion,
        Error::BadHeaderLen,
        Error::BadTotalLen,
        Error::BadLength,
        Error::BadChecksum,
        Error::BadOption,
        Error::Unsupported,
    ];

    /// Stable snake_case name, usable as a counter name (`bad_checksum`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadVersion => "bad_version",
            Error::BadHeaderLen => "bad_header_len",
            Error::BadTotalLen => "bad_total_len",
            Error::BadLength => "bad_length",
            Error::BadChecksum => "bad_checksum",
            Error::BadOption => "bad_option",
            Error::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Error::Truncated => "packet truncated",
            Error::BadVersion => "bad IP version",
            Error::BadHeaderLen => "bad header length",
            Error::BadTotalLen => "IPv4 total length exceeds the buffer",
            Error::BadLength => "bad length field",
            Error::BadChecksum => "bad checksum",
            Error::BadOption => "malformed option",
            Error::Unsupported => "unsupported packet type",
        };
        f.write_str(text)
    }
}

impl std::error::Error for Error {}

/// What `parse` and `emit` do about checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumMode {
    /// Parse verifies checksums ([`Error::BadChecksum`]); emit computes them.
    #[default]
    Full,
    /// Parse does not verify (already checked, e.g. by a NIC); emit writes zero in the checksum field
    /// (for UDP that means "no checksum"; for others the caller fills it later with `fill_checksum`).
    Ignore,
    /// Transmit checksum offload for UDP and TCP: emit writes only the folded pseudo-header sum into
    /// the checksum field, for a device that sums from the start of the UDP/TCP header to the end of
    /// the packet and stores the complement (Linux `CHECKSUM_PARTIAL`, AF_XDP
    /// `XDP_TXMD_FLAGS_CHECKSUM` with `csum_start` = transport header, `csum_offset` = 6 (UDP) or
    /// 16 (TCP)). The IPv4 header and ICMP checksums are computed in full. Parse: like `Ignore`.
    TxOffload,
}

impl ChecksumMode {
    /// Whether `parse` should verify checksums.
    pub fn verify(self) -> bool {
        self == ChecksumMode::Full
    }
}

/// Big-endian u16 at `at`. Callers have checked the length.
#[inline]
fn read_u16(data: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([data[at], data[at + 1]])
}

/// Big-endian u32 at `at`. Callers have checked the length.
#[inline]
fn read_u32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

#[inline]
fn write_u16(data: &mut [u8], at: usize, value: u16) {
    data[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

#[inline]
fn write_u32(data: &mut [u8], at: usize, value: u32) {
    data[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

/// Frames captured from the Linux kernel for the tests.
///
/// Captured by `fixtures/capture.sh`: two network namespaces joined by a veth pair (MACs
/// 02:00:00:00:00:0a = 10.88.0.1 and 02:00:00:00:00:0b = 10.88.0.2), TX checksum offload off on both
/// ends (`ethtool -K IF tx off`) so checksums are complete, traffic from ping and python sockets,
/// `dumpcap -P` on the .2 end, one raw frame per `.bin` file. The expected field values in the tests
/// are what `tshark -V` decoded from the same capture (with checksum validation on). The kernel has
/// no 802.1Q support, so the two VLAN frames are captured frames with a tag (VID 100) inserted, sent
/// through an AF_PACKET socket on the veth and captured again.
#[cfg(test)]
pub(crate) mod fixtures {
    /// ARP request: who has 10.88.0.2? tell 10.88.0.1 (42 bytes, no padding on veth).
    pub const ARP_REQUEST: &[u8] = include_bytes!("fixtures/arp_request.bin");
    /// ARP reply: 10.88.0.2 is at 02:00:00:00:00:0b.
    pub const ARP_REPLY: &[u8] = include_bytes!("fixtures/arp_reply.bin");
    /// `ping -s 16`: echo request 10.88.0.1 -> 10.88.0.2, id 0x3025 seq 1.
    pub const ICMP_ECHO_REQUEST: &[u8] = include_bytes!("fixtures/icmp_echo_request.bin");
    /// The kernel's echo reply to it.
    pub const ICMP_ECHO_REPLY: &[u8] = include_bytes!("fixtures/icmp_echo_reply.bin");
    /// UDP 10.88.0.1:5555 -> 10.88.0.2:7777, payload "hello xdpstack\n".
    pub const UDP: &[u8] = include_bytes!("fixtures/udp.bin");
    /// ICMP port unreachable from 10.88.0.2 quoting that UDP datagram.
    pub const ICMP_PORT_UNREACHABLE: &[u8] = include_bytes!("fixtures/icmp_port_unreachable.bin");
    /// First fragment (MF, offset 0, 1500 bytes) of a 3000-byte UDP datagram to port 7778.
    pub const IPV4_FIRST_FRAGMENT: &[u8] = include_bytes!("fixtures/ipv4_first_fragment.bin");
    /// Linux SYN 10.88.0.1:40000 -> 10.88.0.2:8080: MSS, SACK-permitted, timestamps, NOP, window scale.
    pub const TCP_SYN: &[u8] = include_bytes!("fixtures/tcp_syn.bin");
    /// The kernel's SYN-ACK.
    pub const TCP_SYN_ACK: &[u8] = include_bytes!("fixtures/tcp_syn_ack.bin");
    /// PSH-ACK carrying "GET /xdpstack HTTP/1.0\r\n\r\n" (26 bytes) with NOP NOP timestamps.
    pub const TCP_DATA: &[u8] = include_bytes!("fixtures/tcp_data.bin");
    /// The ARP request with an 802.1Q tag, VID 100.
    pub const VLAN_ARP_REQUEST: &[u8] = include_bytes!("fixtures/vlan_arp_request.bin");
    /// The echo request with an 802.1Q tag, VID 100.
    pub const VLAN_ICMP_ECHO_REQUEST: &[u8] = include_bytes!("fixtures/vlan_icmp_echo_request.bin");

    /// Every fixture, with its name.
    pub const ALL: [(&str, &[u8]); 12] = [
        ("arp_request", ARP_REQUEST),
        ("arp_reply", ARP_REPLY),
        ("icmp_echo_request", ICMP_ECHO_REQUEST),
        ("icmp_echo_reply", ICMP_ECHO_REPLY),
        ("udp", UDP),
        ("icmp_port_unreachable", ICMP_PORT_UNREACHABLE),
        ("ipv4_first_fragment", IPV4_FIRST_FRAGMENT),
        ("tcp_syn", TCP_SYN),
        ("tcp_syn_ack", TCP_SYN_ACK),
        ("tcp_data", TCP_DATA),
        ("vlan_arp_request", VLAN_ARP_REQUEST),
        ("vlan_icmp_echo_request", VLAN_ICMP_ECHO_REQUEST),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_distinct_snake_case() {
        let names: Vec<&str> = Error::ALL.iter().map(Error::name).collect();
        for (i, name) in names.iter().enumerate() {
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{name}");
            assert!(!names[..i].contains(name), "duplicate {name}");
        }
        assert_eq!(Error::BadChecksum.name(), "bad_checksum");
        assert_eq!(Error::BadChecksum.to_string(), "bad checksum");
    }

    /// Decodes a frame through every layer as a receive path would, verifying every checksum and
    /// touching every accessor. Non-first fragments stop at IPv4; first fragments stop there too,
    /// since their UDP/TCP checksum covers the whole datagram.
    fn decode_all(frame: &[u8]) -> Result<(), Error> {
        let eth = EthernetFrame::new_checked(frame)?;
        EthernetRepr::parse(&eth)?;
        match eth.ethertype() {
            EtherType::Arp => ArpRepr::parse(&ArpPacket::new_checked(eth.payload())?).map(drop),
            EtherType::Ipv4 => {
                let ip = Ipv4Packet::new_checked(eth.payload())?;
                let ip_repr = Ipv4Repr::parse(&ip, ChecksumMode::Full)?;
                let _ = (ip.options(), ip.dscp(), ip.ecn());
                if ip.is_fragment() {
                    return Ok(());
                }
                let (src, dst) = (ip_repr.src_addr, ip_repr.dst_addr);
                match ip_repr.protocol {
                    IpProtocol::Icmp => {
                        let icmp = Icmpv4Packet::new_checked(ip.payload())?;
                        match Icmpv4Repr::parse(&icmp, ChecksumMode::Full)? {
                            Icmpv4Repr::DstUnreachable { invoking, .. }
                            | Icmpv4Repr::TimeExceeded { invoking, .. }
                            | Icmpv4Repr::ParamProblem { invoking, .. } => invoking_flow(invoking).map(drop),
                            _ => Ok(()),
                        }
                    }
                    IpProtocol::Udp => {
                        let udp = UdpPacket::new_checked(ip.payload())?;
                        UdpRepr::parse(&udp, src, dst, ChecksumMode::Full)
                            .map(|repr| assert_eq!(repr.payload_len, udp.payload().len()))
                    }
                    IpProtocol::Tcp => {
                        let tcp = TcpPacket::new_checked(ip.payload())?;
                        TcpRepr::parse(&tcp, src, dst, ChecksumMode::Full)
                            .map(|repr| assert_eq!(repr.payload_len, tcp.payload().len()))
                    }
                    IpProtocol::Unknown(_) => Err(Error::Unsupported),
                }
            }
            EtherType::Unknown(_) => Err(Error::Unsupported),
        }
    }

    #[test]
    fn every_fixture_decodes_and_every_prefix_is_rejected() {
        for (name, frame) in fixtures::ALL {
            assert_eq!(decode_all(frame), Ok(()), "{name}");
            // The captured frames carry no Ethernet padding, so every cut removes bytes some length
            // field or checksum accounts for.
            for len in 0..frame.len() {
                assert!(decode_all(&frame[..len]).is_err(), "{name} cut to {len}");
            }
        }
    }

    #[test]
    fn every_bit_flip_after_the_ethernet_header_is_detected() {
        for (name, frame) in fixtures::ALL {
            let eth = EthernetFrame::new_checked(frame).unwrap();
            let checked_from = eth.header_len();
            // ARP has no checksum; a first fragment's data is checked only after reassembly.
            if eth.ethertype() != EtherType::Ipv4 || name == "ipv4_first_fragment" {
                continue;
            }
            for bit in checked_from * 8..frame.len() * 8 {
                let mut bad = frame.to_vec();
                bad[bit / 8] ^= 1 << (bit % 8);
                assert!(decode_all(&bad).is_err(), "{name}: bit {bit}");
            }
        }
    }
}

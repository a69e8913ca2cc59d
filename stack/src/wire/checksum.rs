//! The Internet checksum.
//!
//! Implements RFC 1071 (computing the Internet checksum), with the IPv4 pseudo-header of RFC 768 (UDP)
//! and RFC 9293 §3.1 (TCP).
//!
//! A checksum field holds the one's complement of the one's-complement sum of the covered 16-bit
//! big-endian words (the field itself counted as zero). Data covered with a correct checksum therefore
//! sums to 0xFFFF.
//!
//! Speed: [`sum`] runs on every received and sent packet. It adds 32-bit native-endian words into a
//! 64-bit accumulator (no carry handling inside the loop, which the compiler vectorises), folds at the
//! end, and converts to network order once: RFC 1071 §2(B) shows the sum is byte-order independent.

use std::net::Ipv4Addr;

use super::IpProtocol;

/// Bytes summed between folds of the 64-bit accumulator: 2^14 words of at most 2^32 - 1 each stay far
/// below 2^64.
const BLOCK: usize = 1 << 16;

/// The one's-complement sum of `data` as big-endian 16-bit words, folded to 16 bits, not complemented.
/// An odd final byte counts as the high byte of a word whose low byte is zero.
///
/// Sums of pieces can be [`combine`]d if every piece but the last has an even length.
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    let mut total: u64 = 0;
    for block in data.chunks(BLOCK) {
        total += u64::from(fold32(sum_block(block)));
    }
    // `fold` gives the sum of native-endian words; its native bytes are the big-endian sum's bytes.
    u16::from_be_bytes(fold64(total).to_ne_bytes())
}

/// Native-endian word sum of at most [`BLOCK`] bytes, unfolded.
#[inline]
fn sum_block(block: &[u8]) -> u64 {
    let mut words = block.chunks_exact(4);
    let mut acc: u64 = 0;
    for w in &mut words {
        acc += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_ne_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    acc
}

#[inline]
fn fold32(x: u64) -> u32 {
    let x = (x & 0xffff_ffff) + (x >> 32);
    let x = (x & 0xffff_ffff) + (x >> 32);
    x as u32
}

#[inline]
fn fold64(x: u64) -> u16 {
    let x = fold32(x);
    let x = (x & 0xffff) + (x >> 16);
    let x = (x & 0xffff) + (x >> 16);
    x as u16
}

/// One's-complement sum of partial sums (from [`sum`] or [`pseudo_header`]), folded.
#[inline]
pub fn combine(sums: &[u16]) -> u16 {
    let total: u64 = sums.iter().map(|&s| u64::from(s)).sum();
    fold64(total)
}

/// The sum of the IPv4 pseudo-header used by UDP and TCP: source and destination address, zero,
/// protocol, and the UDP/TCP length (header plus data).
#[inline]
pub fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, length: u16) -> u16 {
    let s = src.octets();
    let d = dst.octets();
    combine(&[
        u16::from_be_bytes([s[0], s[1]]),
        u16::from_be_bytes([s[2], s[3]]),
        u16::from_be_bytes([d[0], d[1]]),
        u16::from_be_bytes([d[2], d[3]]),
        u16::from(u8::from(protocol)),
        length,
    ])
}

/// The value to store in a checksum field covering `data` (whose checksum field is zero).
#[inline]
pub fn compute(data: &[u8]) -> u16 {
    !sum(data)
}

/// Whether `data`, checksum field included, carries a correct checksum.
#[inline]
pub fn verify(data: &[u8]) -> bool {
    sum(data) == 0xffff
}

/// The value to store in a UDP or TCP checksum field: `segment` is the whole UDP/TCP header and data
/// with the checksum field zero. (UDP additionally sends a computed 0 as 0xFFFF.)
#[inline]
pub fn compute_l4(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, segment: &[u8]) -> u16 {
    !combine(&[pseudo_header(src, dst, protocol, segment.len() as u16), sum(segment)])
}

/// Whether a UDP or TCP `segment` (checksum field included) carries a correct checksum.
#[inline]
pub fn verify_l4(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, segment: &[u8]) -> bool {
    combine(&[pseudo_header(src, dst, protocol, segment.len() as u16), sum(segment)]) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The obvious definition: big-endian byte pairs, end-around carry after every addition.
    fn naive(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        let mut i = 0;
        while i < data.len() {
            let hi = u32::from(data[i]) << 8;
            let lo = data.get(i + 1).map_or(0, |&b| u32::from(b));
            acc += hi | lo;
            acc = (acc & 0xffff) + (acc >> 16);
            i += 2;
        }
        acc as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        assert_eq!(sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0xddf2);
    }

    #[test]
    fn odd_byte_is_high_byte() {
        assert_eq!(sum(&[0xab]), 0xab00);
        assert_eq!(sum(&[0x12, 0x34, 0xab]), 0x12 * 256 + 0x34 + 0xab00);
        assert_eq!(sum(&[]), 0);
    }

    #[test]
    fn large_buffers_fold_across_blocks() {
        let data = vec![0xffu8; 3 * BLOCK + 7];
        assert_eq!(sum(&data), naive(&data));
        let data: Vec<u8> = (0..200_001u32).map(|i| (i * 7 + 3) as u8).collect();
        assert_eq!(sum(&data), naive(&data));
    }

    #[test]
    fn compute_then_verify() {
        let mut data = vec![0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        let c = compute(&data);
        data[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(verify(&data));
        data[3] ^= 1;
        assert!(!verify(&data));
    }

    proptest! {
        #[test]
        fn sum_matches_naive(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
            prop_assert_eq!(sum(&data), naive(&data));
        }

        #[test]
        fn sum_matches_naive_at_every_alignment(data in proptest::collection::vec(any::<u8>(), 0..100),
                                                skip in 0usize..8) {
            let skip = skip.min(data.len());
            prop_assert_eq!(sum(&data[skip..]), naive(&data[skip..]));
        }

        #[test]
        fn combine_of_even_split_equals_whole(data in proptest::collection::vec(any::<u8>(), 0..600),
                                              cut in 0usize..300) {
            let cut = (cut * 2).min(data.len() & !1);
            prop_assert_eq!(combine(&[sum(&data[..cut]), sum(&data[cut..])]), naive(&data));
        }

        #[test]
        fn l4_round_trip(src in any::<u32>(), dst in any::<u32>(),
                         mut seg in proptest::collection::vec(any::<u8>(), 8..200)) {
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            seg[6] = 0;
            seg[7] = 0;
            let c = compute_l4(src, dst, IpProtocol::Udp, &seg);
            seg[6..8].copy_from_slice(&c.to_be_bytes());
            prop_assert!(verify_l4(src, dst, IpProtocol::Udp, &seg));
            prop_assert!(!verify_l4(src, dst, IpProtocol::Tcp, &seg));
        }
    }
}

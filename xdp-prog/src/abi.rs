//! The Rust mirror of `src/bpf/steer.h`, `loss.h` and `lossy.h`: constants, counter indices, the
//! flow hash, and how the loss settings are handed to a program.
//!
//! The map key and value structs come from the skeletons (generated from the programs' BTF, so from
//! the same headers). The tests below check every constant, every layout and the flow hash against
//! the headers compiled for the host (`src/bpf/steer_host.c`, built by `build.rs`), so the two sides
//! cannot drift apart silently. The integration test `stack/tests/xdp_steering.rs` additionally
//! checks, through a real AF_XDP socket in the XSKMAP, that the loaded program picks the slot
//! [`xsk_index`] predicts.

use std::net::Ipv4Addr;

/// Number of slots in the `xsks` XSKMAP (`STEER_XSKMAP_SIZE`).
pub const XSKMAP_SIZE: u32 = 64;

/// Bytes of XDP metadata in front of a frame stamped by [`Steering::set_stamp`](crate::Steering::set_stamp):
/// a `u64` in native byte order, nanoseconds of CLOCK_MONOTONIC (`STEER_STAMP_LEN`).
pub const STAMP_LEN: usize = 8;

/// `addrs` value: an address of the stack (`ADDR_UNICAST`).
pub(crate) const ADDR_UNICAST: u32 = 1;
/// `addrs` value: a broadcast address the stack listens on (`ADDR_BROADCAST`).
pub(crate) const ADDR_BROADCAST: u32 = 2;

/// IP protocol numbers used as `port_key.proto`.
pub(crate) const PROTO_TCP: u8 = 6;
pub(crate) const PROTO_UDP: u8 = 17;

/// Indices of the per-CPU `counters` array (`enum steer_counter`).
pub(crate) const CTR_STEERED: u32 = 0;
pub(crate) const CTR_PASSED: u32 = 1;
pub(crate) const CTR_MALFORMED: u32 = 2;
pub(crate) const CTR_NO_SOCKET: u32 = 3;
pub(crate) const CTR_DROPPED: u32 = 4;
pub(crate) const CTR_COUNT: u32 = 5;

/// `drop_ppm` that drops every candidate frame (`LOSS_PPM_ONE` in loss.h).
pub(crate) const PPM_ONE: u32 = 1_000_000;

/// `lossy_config.match_flags` (`LOSSY_MATCH_*`).
pub(crate) const LOSSY_MATCH_PROTOCOL: u8 = 1;
pub(crate) const LOSSY_MATCH_SRC: u8 = 2;

/// Indices of the lossy program's per-CPU `counters` array (`enum lossy_counter`).
pub(crate) const LOSSY_CTR_DROPPED: u32 = 0;
pub(crate) const LOSSY_CTR_PASSED: u32 = 1;
pub(crate) const LOSSY_CTR_UNMATCHED: u32 = 2;
pub(crate) const LOSSY_CTR_COUNT: u32 = 3;

/// Refuse a drop rate above one million parts per million.
pub(crate) fn check_drop_ppm(drop_ppm: u32) -> Result<(), crate::Error> {
    if drop_ppm > PPM_ONE {
        return Err(crate::Error::InvalidArgument(format!(
            "drop_ppm {drop_ppm} exceeds {PPM_ONE} (every frame)"
        )));
    }
    Ok(())
}

/// The loss generation to write after `current`: every change of the loss settings gets a new one,
/// which restarts the programs' per-CPU streams (loss.h). 0 is skipped: it is the generation of a
/// stream that was never started.
pub(crate) fn next_generation(current: u32) -> u32 {
    current.wrapping_add(1).max(1)
}

/// MurmurHash3's 32-bit finaliser, as `steer_mix32()` in steer.h.
const fn mix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// The XDP program's flow hash (`steer_flow_hash()` in steer.h), bit for bit.
///
/// `proto` is the IP protocol (0 for ARP, whose addresses are the sender and target protocol
/// addresses). Ports are 0 for ARP, ICMP and IP fragments.
pub fn flow_hash(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, src_port: u16, dst_port: u16) -> u32 {
    let mut h = 0x9e37_79b9 ^ u32::from(proto);
    h = mix32(h ^ u32::from(src));
    h = mix32(h ^ u32::from(dst));
    mix32(h ^ ((u32::from(src_port) << 16) | u32::from(dst_port)))
}

/// The XSKMAP slot the program redirects a frame to: `rx_queue * socks_per_queue +
/// flow_hash % socks_per_queue` in 32-bit arithmetic, with `socks_per_queue` 0 taken as 1.
pub fn xsk_index(rx_queue: u32, socks_per_queue: u32, flow_hash: u32) -> u32 {
    let spq = socks_per_queue.max(1);
    rx_queue.wrapping_mul(spq).wrapping_add(flow_hash % spq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{self, Facts, LossState};
    use crate::lossy_skel::types as lossy_types;
    use crate::skel::types;
    use std::mem::{offset_of, size_of};

    #[test]
    fn constants_and_layouts_match_steer_h() {
        let rust: Vec<(&str, u64)> = vec![
            ("STEER_XSKMAP_SIZE", XSKMAP_SIZE.into()),
            ("ADDR_UNICAST", ADDR_UNICAST.into()),
            ("ADDR_BROADCAST", ADDR_BROADCAST.into()),
            ("STEER_PROTO_TCP", PROTO_TCP.into()),
            ("STEER_PROTO_UDP", PROTO_UDP.into()),
            ("STEER_CTR_STEERED", CTR_STEERED.into()),
            ("STEER_CTR_PASSED", CTR_PASSED.into()),
            ("STEER_CTR_MALFORMED", CTR_MALFORMED.into()),
            ("STEER_CTR_NO_SOCKET", CTR_NO_SOCKET.into()),
            ("STEER_CTR_DROPPED", CTR_DROPPED.into()),
            ("STEER_CTR_COUNT", CTR_COUNT.into()),
            ("sizeof(struct port_key)", size_of::<types::port_key>() as u64),
            ("offsetof(struct port_key, port)", offset_of!(types::port_key, port) as u64),
            ("offsetof(struct port_key, proto)", offset_of!(types::port_key, proto) as u64),
            ("offsetof(struct port_key, pad)", offset_of!(types::port_key, pad) as u64),
            ("sizeof(struct steer_config)", size_of::<types::steer_config>() as u64),
            (
                "offsetof(struct steer_config, port_filter)",
                offset_of!(types::steer_config, port_filter) as u64,
            ),
            (
                "offsetof(struct steer_config, socks_per_queue)",
                offset_of!(types::steer_config, socks_per_queue) as u64,
            ),
            ("offsetof(struct steer_config, drop_ppm)", offset_of!(types::steer_config, drop_ppm) as u64),
            (
                "offsetof(struct steer_config, loss_generation)",
                offset_of!(types::steer_config, loss_generation) as u64,
            ),
            ("offsetof(struct steer_config, loss_seed)", offset_of!(types::steer_config, loss_seed) as u64),
            ("offsetof(struct steer_config, stamp)", offset_of!(types::steer_config, stamp) as u64),
            ("STEER_STAMP_LEN", STAMP_LEN as u64),
        ];
        host::assert_facts(Facts::Steer, &rust);
    }

    #[test]
    fn constants_and_layouts_match_loss_h_and_lossy_h() {
        use lossy_types::lossy_config as Cfg;
        let rust: Vec<(&str, u64)> = vec![
            ("LOSS_PPM_ONE", PPM_ONE.into()),
            ("sizeof(struct loss_state)", size_of::<LossState>() as u64),
            ("offsetof(struct loss_state, rng)", offset_of!(LossState, rng) as u64),
            ("offsetof(struct loss_state, seed)", offset_of!(LossState, seed) as u64),
            ("offsetof(struct loss_state, generation)", offset_of!(LossState, generation) as u64),
            ("LOSSY_MATCH_PROTOCOL", LOSSY_MATCH_PROTOCOL.into()),
            ("LOSSY_MATCH_SRC", LOSSY_MATCH_SRC.into()),
            ("LOSSY_CTR_DROPPED", LOSSY_CTR_DROPPED.into()),
            ("LOSSY_CTR_PASSED", LOSSY_CTR_PASSED.into()),
            ("LOSSY_CTR_UNMATCHED", LOSSY_CTR_UNMATCHED.into()),
            ("LOSSY_CTR_COUNT", LOSSY_CTR_COUNT.into()),
            ("sizeof(struct lossy_config)", size_of::<Cfg>() as u64),
            ("offsetof(struct lossy_config, drop_ppm)", offset_of!(Cfg, drop_ppm) as u64),
            ("offsetof(struct lossy_config, generation)", offset_of!(Cfg, generation) as u64),
            ("offsetof(struct lossy_config, seed)", offset_of!(Cfg, seed) as u64),
            ("offsetof(struct lossy_config, src)", offset_of!(Cfg, src) as u64),
            ("offsetof(struct lossy_config, protocol)", offset_of!(Cfg, protocol) as u64),
            ("offsetof(struct lossy_config, match_flags)", offset_of!(Cfg, match_flags) as u64),
            ("offsetof(struct lossy_config, pad)", offset_of!(Cfg, pad) as u64),
        ];
        host::assert_facts(Facts::Loss, &rust);
    }

    #[test]
    fn generations_skip_zero_and_drop_rates_are_bounded() {
        assert_eq!(next_generation(0), 1);
        assert_eq!(next_generation(41), 42);
        assert_eq!(next_generation(u32::MAX), 1);
        assert!(check_drop_ppm(0).is_ok() && check_drop_ppm(PPM_ONE).is_ok());
        assert!(matches!(check_drop_ppm(PPM_ONE + 1), Err(crate::Error::InvalidArgument(_))));
    }

    /// xorshift64: a deterministic stream of test inputs without a dependency.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn flow_hash_matches_steer_h() {
        let mut edge = vec![(0, 0, 0, 0, 0), (u32::MAX, u32::MAX, u8::MAX, u16::MAX, u16::MAX)];
        edge.push((0x0a4d_0001, 0x0a4d_0002, 17, 40000, 7));
        let mut state = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..100_000 {
            let r = xorshift(&mut state);
            let s = xorshift(&mut state);
            edge.push((r as u32, (r >> 32) as u32, s as u8, (s >> 8) as u16, (s >> 24) as u16));
        }
        for (src, dst, proto, sp, dp) in edge {
            let rust = flow_hash(Ipv4Addr::from(src), Ipv4Addr::from(dst), proto, sp, dp);
            assert_eq!(rust, host::flow_hash(src, dst, proto, sp, dp), "{src:#x} {dst:#x} {proto} {sp} {dp}");
        }
    }

    #[test]
    fn flow_hash_spreads_ports_over_sockets() {
        let (src, dst) = (Ipv4Addr::new(10, 77, 0, 1), Ipv4Addr::new(10, 77, 0, 2));
        for spq in [2u32, 3, 4, 8] {
            let mut buckets = vec![0u32; spq as usize];
            for port in 0..4096u16 {
                buckets[(flow_hash(src, dst, 17, 30000 + port, 7) % spq) as usize] += 1;
            }
            let mean = 4096 / spq;
            for &b in &buckets {
                assert!(b > mean * 8 / 10 && b < mean * 12 / 10, "spq {spq}: {buckets:?}");
            }
        }
    }

    #[test]
    fn flow_hash_depends_on_every_field() {
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let base = flow_hash(a, b, 17, 1000, 2000);
        assert_ne!(base, flow_hash(b, a, 17, 1000, 2000));
        assert_ne!(base, flow_hash(a, b, 6, 1000, 2000));
        assert_ne!(base, flow_hash(a, b, 17, 2000, 1000));
        assert_ne!(base, flow_hash(a, b, 17, 1001, 2000));
    }

    #[test]
    fn xsk_index_per_queue() {
        assert_eq!(xsk_index(3, 0, 12345), 3, "0 sockets per queue means 1");
        assert_eq!(xsk_index(3, 1, 12345), 3);
        assert_eq!(xsk_index(2, 4, 7), 2 * 4 + 3);
    }
}

//! The Rust mirror of `src/bpf/steer.h`: constants, counter indices and the flow hash.
//!
//! The map key and value structs come from the skeleton (generated from the program's BTF, so from
//! the same header). The tests below check every constant, every layout and the flow hash against
//! steer.h compiled for the host (`src/bpf/steer_host.c`, built by `build.rs`), so the two sides
//! cannot drift apart silently. The integration test `stack/tests/xdp_steering.rs` additionally
//! checks, through a real AF_XDP socket in the XSKMAP, that the loaded program picks the slot
//! [`xsk_index`] predicts.

use std::net::Ipv4Addr;

/// Number of slots in the `xsks` XSKMAP (`STEER_XSKMAP_SIZE`).
pub const XSKMAP_SIZE: u32 = 64;

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
pub(crate) const CTR_COUNT: u32 = 4;

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
    use crate::skel::types;
    use std::ffi::{c_char, CStr};
    use std::mem::{offset_of, size_of};

    /// `struct steer_host_fact` in steer_host.c.
    #[repr(C)]
    struct HostFact {
        name: *const c_char,
        value: u64, // unsigned long long
    }

    extern "C" {
        fn steer_host_flow_hash(src: u32, dst: u32, proto: u8, src_port: u16, dst_port: u16) -> u32;
        static steer_host_facts: [HostFact; 0];
    }

    fn host_flow_hash(src: u32, dst: u32, proto: u8, src_port: u16, dst_port: u16) -> u32 {
        // Safety: a pure C function over integers.
        unsafe { steer_host_flow_hash(src, dst, proto, src_port, dst_port) }
    }

    fn host_facts() -> Vec<(String, u64)> {
        let mut facts = Vec::new();
        // Safety: steer_host_facts is a static C array ended by an entry whose name is NULL; every
        // other name is a string literal.
        unsafe {
            let mut fact = steer_host_facts.as_ptr();
            while !(*fact).name.is_null() {
                let name = CStr::from_ptr((*fact).name).to_string_lossy().into_owned();
                facts.push((name, (*fact).value));
                fact = fact.add(1);
            }
        }
        facts
    }

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
        ];
        let host = host_facts();
        for (name, value) in &host {
            let mirrored = rust.iter().find(|(n, _)| n == name);
            assert_eq!(mirrored.map(|m| m.1), Some(*value), "steer.h {name}");
        }
        assert_eq!(host.len(), rust.len(), "every mirrored fact is exported");
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
            assert_eq!(rust, host_flow_hash(src, dst, proto, sp, dp), "{src:#x} {dst:#x} {proto} {sp} {dp}");
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

//! The shared headers compiled for the host (`src/bpf/steer_host.c`, built by `build.rs`), for the
//! tests that check the Rust mirrors against them.

use std::ffi::{c_char, c_int, CStr};

/// `struct loss_state` of loss.h (the per-CPU random stream); its layout is checked in `abi`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LossState {
    pub(crate) rng: u64,
    pub(crate) seed: u64,
    pub(crate) generation: u32,
    pub(crate) pad: u32,
}

/// `struct steer_host_fact` in steer_host.c.
#[repr(C)]
struct HostFact {
    name: *const c_char,
    value: u64, // unsigned long long
}

extern "C" {
    fn steer_host_flow_hash(src: u32, dst: u32, proto: u8, src_port: u16, dst_port: u16) -> u32;
    fn loss_host_draw(st: *mut LossState, drop_ppm: u32, seed: u64, generation: u32, cpu: u32) -> c_int;
    static steer_host_facts: [HostFact; 0];
    static loss_host_facts: [HostFact; 0];
}

/// `steer_flow_hash()` of steer.h.
pub(crate) fn flow_hash(src: u32, dst: u32, proto: u8, src_port: u16, dst_port: u16) -> u32 {
    // Safety: a pure C function over integers.
    unsafe { steer_host_flow_hash(src, dst, proto, src_port, dst_port) }
}

/// `loss_draw()` of loss.h.
pub(crate) fn loss_draw(st: &mut LossState, drop_ppm: u32, seed: u64, generation: u32, cpu: u32) -> bool {
    // Safety: `st` is a valid, exclusive `struct loss_state` (same layout, checked in abi's tests)
    // for the duration of the call; the C function only reads and writes it.
    unsafe { loss_host_draw(st, drop_ppm, seed, generation, cpu) != 0 }
}

/// Which table of facts to read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Facts {
    /// steer.h
    Steer,
    /// loss.h and lossy.h
    Loss,
}

/// The (name, value) facts the C side exports.
pub(crate) fn facts(which: Facts) -> Vec<(String, u64)> {
    let mut facts = Vec::new();
    // Safety: both tables are static C arrays ended by an entry whose name is NULL; every other
    // name is a string literal.
    unsafe {
        let mut fact = match which {
            Facts::Steer => steer_host_facts.as_ptr(),
            Facts::Loss => loss_host_facts.as_ptr(),
        };
        while !(*fact).name.is_null() {
            let name = CStr::from_ptr((*fact).name).to_string_lossy().into_owned();
            facts.push((name, (*fact).value));
            fact = fact.add(1);
        }
    }
    facts
}

/// Check that the Rust side mirrors exactly the facts the C side exports.
#[track_caller]
pub(crate) fn assert_facts(which: Facts, rust: &[(&str, u64)]) {
    let host = facts(which);
    for (name, value) in &host {
        let mirrored = rust.iter().find(|(n, _)| n == name);
        assert_eq!(mirrored.map(|m| m.1), Some(*value), "{which:?} {name}");
    }
    assert_eq!(host.len(), rust.len(), "every mirrored fact is exported");
}

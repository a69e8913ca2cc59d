//! Compile the XDP programs and generate their libbpf skeletons; compile the shared headers for the
//! host (tests).

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// The programs in src/bpf/, each becoming `$OUT_DIR/<name>.skel.rs`.
const PROGRAMS: [&str; 3] = ["steer", "lossy", "bounce"];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // libbpf's own headers (bpf_helpers.h, ...) as shipped by libbpf-sys.
    let libbpf = env::var("DEP_BPF_INCLUDE").expect("libbpf-sys exports DEP_BPF_INCLUDE");
    // With -target bpf clang does not search the multiarch directory that holds <asm/types.h>.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    for name in PROGRAMS {
        let source = format!("src/bpf/{name}.bpf.c");
        SkeletonBuilder::new()
            .source(&source)
            .clang_args(["-Wall", &format!("-I{libbpf}"), &format!("-I/usr/include/{arch}-linux-gnu")])
            .build_and_generate(out.join(format!("{name}.skel.rs")))
            .unwrap_or_else(|e| panic!("compiling {source} (needs clang, see scripts/setup.sh): {e:#}"));
    }
    cc::Build::new().file("src/bpf/steer_host.c").warnings(true).compile("steer_host");
    println!("cargo:rerun-if-changed=src/bpf");
}

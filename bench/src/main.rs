//! `xdpstack-bench`: the stack against the Linux kernel, side by side, in one run.

mod results;

fn main() {
    let _ = results::Report::default();
}

//! What a running stack holds — worker threads pinned to their cores, file descriptors, the XDP
//! program on the interface, its run directory — and that dropping a `Stack` without calling
//! `shutdown` gives all of it back. One test in its own binary, so that no other stack shares the
//! process whose threads and descriptors it counts.

mod common;

use std::time::Duration;

use common::*;

/// The threads of this process whose names start with `prefix`, with their allowed CPUs.
fn threads_named(prefix: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else { continue };
        let field = |key: &str| {
            status.lines().find_map(|l| l.strip_prefix(key)).map(|v| v.trim().to_string()).unwrap_or_default()
        };
        let name = field("Name:");
        if name.starts_with(prefix) {
            found.push((name, field("Cpus_allowed_list:")));
        }
    }
    found.sort();
    found
}

/// This process's open descriptors and what they point at.
fn open_fds() -> Vec<String> {
    let mut fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            std::fs::read_link(e.path())
                .ok()
                .map(|t| format!("{} -> {}", e.file_name().to_string_lossy(), t.display()))
        })
        .collect();
    fds.sort();
    fds
}

#[test]
fn workers_are_pinned_and_a_dropped_stack_gives_back_everything() {
    let tb = testbed(2);
    let fds_before = open_fds();
    assert!(threads_named("xdpstack-").is_empty(), "{:?}", threads_named("xdpstack-"));

    // Two workers on the cores in the opposite order of the default.
    let stack = start(&tb, |c| {
        c.workers = 2;
        c.cores = Some(vec![1, 0]);
    });
    // A new thread takes its name as it begins to run.
    wait_for(Duration::from_secs(5), || threads_named("xdpstack-w").len() == 2);
    let workers = threads_named("xdpstack-w");
    assert_eq!(
        workers,
        vec![("xdpstack-w0".to_string(), "1".to_string()), ("xdpstack-w1".to_string(), "0".to_string())],
        "each worker pinned to its own core"
    );
    let ping = peer_run(&tb, "ping", &["-c", "2", "-W", "2", &stack_ip(&tb)]);
    assert!(ping.contains("2 received"), "{ping}");
    assert!(
        open_fds().len() > fds_before.len(),
        "a running stack holds descriptors (AF_XDP sockets, BPF, eventfds)"
    );
    let control_dir = stack.control_dir().expect("control socket on by default").to_path_buf();
    assert!(control_dir.join("control").exists());
    let link = tb.stack_cmd("ip").args(["link", "show", "dev", &tb.stack_if]).output().unwrap();
    assert!(String::from_utf8_lossy(&link.stdout).contains("xdp"), "XDP attached");

    drop(stack);

    assert_eq!(threads_named("xdpstack-"), vec![], "every thread of the stack joined");
    let link = tb.stack_cmd("ip").args(["link", "show", "dev", &tb.stack_if]).output().unwrap();
    assert!(!String::from_utf8_lossy(&link.stdout).contains("xdp"), "XDP detached on drop");
    assert!(!control_dir.exists(), "run directory {} removed", control_dir.display());
    // The stack's address is the kernel's no more: pings go unanswered.
    let ping = tb.peer_cmd("ping").args(["-c", "1", "-W", "1", &stack_ip(&tb)]).output().unwrap();
    let text = String::from_utf8_lossy(&ping.stdout);
    assert!(!ping.status.success() && text.contains("0 received"), "{text}");
    // Every descriptor is closed: AF_XDP sockets, BPF objects, eventfds, the control socket.
    // (`read_dir` of /proc/self/fd holds one itself, the same one each time.)
    assert_eq!(open_fds(), fds_before, "descriptors left open after the drop");
}

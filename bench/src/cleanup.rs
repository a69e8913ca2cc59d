//! Ctrl-C and SIGTERM in the middle of a run: the testbed's namespaces (and with them the veth pair)
//! are deleted and the server processes this run started are stopped, by PID, before exiting. (The
//! stacks' XDP programs go away with the process: they are attached through BPF links.)

use std::sync::Mutex;

static NAMESPACES: Mutex<Vec<String>> = Mutex::new(Vec::new());
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Remember a namespace this run created.
pub fn namespace(name: &str) {
    lock(&NAMESPACES).push(name.to_string());
}

/// Remember a child process this run started (until [`forget_child`]).
pub fn child(pid: u32) {
    lock(&CHILDREN).push(pid);
}

/// The child has been waited for.
pub fn forget_child(pid: u32) {
    lock(&CHILDREN).retain(|&p| p != pid);
}

/// Let the process `cmd` starts take SIGINT and SIGTERM: the mask [`install`] sets would otherwise
/// be inherited through `exec`, and a server told to stop would never hear it.
pub fn unblock_signals(cmd: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    // Safety: the closure runs between fork and exec and only calls async-signal-safe functions
    // (sigemptyset, sigaddset, pthread_sigmask) on a set of its own.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            Ok(())
        })
    }
}

/// Stop a child this run started: SIGTERM, then SIGKILL if it has not exited within 2 s.
pub fn stop_child(child: &mut std::process::Child) {
    // Safety: signals to a process this run started and has not waited for yet.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let end = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::time::Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            forget_child(child.id());
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Safety: as above.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    let _ = child.wait();
    forget_child(child.id());
}

/// Block SIGINT and SIGTERM in the calling thread (call first in `main`, so that every thread started
/// later inherits the mask) and take them on a thread of their own, which cleans up and exits.
pub fn install() {
    // Safety: sigset_t is plain data, initialized by sigemptyset/sigaddset; pthread_sigmask only reads
    // it.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::spawn(move || {
        let mut sig: libc::c_int = 0;
        // Safety: `set` is initialized and `sig` is a valid place for the result.
        while unsafe { libc::sigwait(&set, &mut sig) } != 0 {}
        eprintln!("xdpstack-bench: signal {sig}: removing the testbed");
        for pid in lock(&CHILDREN).drain(..) {
            // Safety: a process this run started and has not waited for.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
        for ns in lock(&NAMESPACES).drain(..) {
            let _ = std::process::Command::new("ip").args(["netns", "del", &ns]).status();
        }
        std::process::exit(128 + sig);
    });
}

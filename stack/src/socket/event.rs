//! Wake-ups between threads without polling: an eventfd that is written only when someone waits.
//!
//! The producer (a worker delivering a datagram, an application queueing a command) makes its condition
//! true, then calls [`Event::notify`], which costs one atomic load when nobody sleeps. The consumer
//! announces itself in `waiters` *before* its last check of the condition, so a notification cannot fall
//! between that check and the sleep (the classic Dekker handshake; both sides use SeqCst fences).
//! Because the sleep is `poll(2)` on an eventfd, the same descriptor can be handed to epoll or tokio's
//! reactor (`crate::tokio` keeps the event "waited on" for as long as an async socket lives, so every
//! notification writes the eventfd).
//!
//! The eventfd is made the first time someone needs it (a sleeper, tokio, a worker), not with the
//! event: every TCP connection has an event, and a busy-polling application that never sleeps would
//! otherwise pay an `eventfd(2)` and a `close(2)` per connection for nothing (1.6 µs of a SYN's
//! handling, measured). A sleeper makes the descriptor *before* it registers, so a notifier that sees
//! the registration also sees the descriptor.
//!
//! An event can also be *linked* to one registration of a [`crate::Poller`]: then a notification also
//! puts the registration on the poller's ready list (see `socket/poll.rs`). The link is a flag bit in
//! the same word as the waiter count, so a socket that no poller watches still pays one relaxed load
//! per notification; a linked one takes the (uncontended) lock that guards its link.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::poll::Registration;
use crate::sys;

/// The bit of `waiters` that says "a poller registration is linked"; the rest counts sleepers.
const LINKED: u32 = 1 << 31;

/// A wake-up channel: many notifiers, any number of waiters.
#[derive(Debug)]
pub struct Event {
    /// The eventfd, made on first use ([`Event::fd`]).
    fd: OnceLock<OwnedFd>,
    /// Sleepers (low bits) and the [`LINKED`] flag.
    waiters: AtomicU32,
    /// The poller registration this event feeds, if any ([`LINKED`] is set exactly while it is `Some`).
    link: Mutex<Option<Arc<Registration>>>,
}

impl Event {
    /// A new event. No descriptor yet: see [`Event::fd`].
    pub fn new() -> Event {
        Event { fd: OnceLock::new(), waiters: AtomicU32::new(0), link: Mutex::new(None) }
    }

    /// The eventfd (made now if this is the first call), to poll or to hand to a reactor. Fails only
    /// when the process is out of descriptors.
    pub fn fd(&self) -> io::Result<BorrowedFd<'_>> {
        if let Some(fd) = self.fd.get() {
            return Ok(fd.as_fd());
        }
        let fresh = sys::eventfd()?;
        // Two first users at once: one descriptor wins, the other is closed here.
        let _ = self.fd.set(fresh);
        Ok(self.fd.get().expect("set above").as_fd())
    }

    /// Wake whoever waits. Call after making the awaited condition true.
    #[inline]
    pub fn notify(&self) {
        fence(Ordering::SeqCst);
        // Acquire: a sleeper made the descriptor before it registered; seeing it registered means
        // seeing the descriptor too.
        let w = self.waiters.load(Ordering::Acquire);
        if w != 0 {
            if w & !LINKED != 0 {
                self.signal();
            }
            if w & LINKED != 0 {
                self.notify_link();
            }
        }
    }

    /// Wake sleepers and the linked poller unconditionally (used when the stack stops).
    pub fn wake_all(&self) {
        self.signal();
        self.notify_link();
    }

    /// Put the linked registration, if any, on its poller's ready list.
    #[cold]
    fn notify_link(&self) {
        if let Some(reg) = self.lock_link().as_ref() {
            reg.wake();
        }
    }

    fn lock_link(&self) -> MutexGuard<'_, Option<Arc<Registration>>> {
        // A panic while holding this lock leaves nothing half-done (it only guards an Option).
        self.link.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Link a poller registration. Fails with the current one if another live registration holds the
    /// link (a registration whose poller is gone is replaced).
    pub(crate) fn link(&self, reg: Arc<Registration>) -> Result<(), Arc<Registration>> {
        let mut link = self.lock_link();
        if let Some(old) = link.as_ref() {
            if old.is_live() {
                return Err(old.clone());
            }
            old.kill();
        }
        *link = Some(reg);
        self.waiters.fetch_or(LINKED, Ordering::SeqCst);
        // Pairs with the fence in `notify`: a producer that made its condition true before this point
        // is seen by the readiness check the caller queues next; one after it sees LINKED.
        fence(Ordering::SeqCst);
        Ok(())
    }

    /// The linked registration, if any.
    pub(crate) fn linked(&self) -> Option<Arc<Registration>> {
        self.lock_link().clone()
    }

    /// Remove the link (if `only` is given, only when it is that registration) and retire it.
    pub(crate) fn unlink(&self, only: Option<&Arc<Registration>>) -> bool {
        let mut link = self.lock_link();
        match link.as_ref() {
            Some(cur) if only.is_none_or(|o| Arc::ptr_eq(o, cur)) => {
                cur.kill();
                *link = None;
                self.waiters.fetch_and(!LINKED, Ordering::SeqCst);
                true
            }
            _ => false,
        }
    }

    /// Write the eventfd unconditionally (nothing to do if it was never made: nobody can wait on it).
    pub fn signal(&self) {
        let Some(fd) = self.fd.get() else { return };
        // A full counter (EAGAIN) already means "readable", so the result needs no handling.
        let _ = sys::eventfd_write(fd.as_fd());
    }

    /// Consume a pending signal, if any.
    pub fn drain(&self) {
        let Some(fd) = self.fd.get() else { return };
        // Nothing pending (EAGAIN) is as good as drained.
        let _ = sys::eventfd_read(fd.as_fd());
    }

    /// Mark the caller as a sleeper: from now on every [`Event::notify`] writes the eventfd. Pair with
    /// [`Event::unregister`]. Used by the worker, which polls this eventfd together with its rings.
    /// Whoever registers must have made the descriptor first ([`Event::fd`]).
    pub fn register(&self) {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Undo [`Event::register`].
    pub fn unregister(&self) {
        self.waiters.fetch_sub(1, Ordering::SeqCst);
    }

    /// Block until `ready()` returns true (then true) or `deadline` passes (then false). A `None`
    /// deadline waits forever. `ready` is re-checked after every wake-up, so spurious wake-ups are fine.
    pub fn wait_until(&self, deadline: Option<Instant>, mut ready: impl FnMut() -> bool) -> bool {
        let mut warned = false;
        loop {
            if ready() {
                return true;
            }
            let fd = match self.fd() {
                Ok(fd) => fd,
                Err(e) => {
                    // Out of descriptors: wait by polling every millisecond rather than fail the call.
                    if !std::mem::replace(&mut warned, true) {
                        log::warn!("no eventfd to sleep on ({e}); polling every millisecond instead");
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return ready();
                    }
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
            };
            self.register();
            if ready() {
                self.unregister();
                return true;
            }
            let timeout_ms = match deadline {
                None => -1,
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        self.unregister();
                        return ready();
                    }
                    // Round up so that we never wake just before the deadline and spin.
                    (d - now).as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
                }
            };
            poll_one(fd, timeout_ms);
            self.drain();
            self.unregister();
        }
    }

    /// Spin (no system calls) until `ready()` or the deadline: the busy-poll counterpart of
    /// [`Event::wait_until`].
    pub fn spin_until(deadline: Option<Instant>, mut ready: impl FnMut() -> bool) -> bool {
        let mut n: u32 = 0;
        loop {
            if ready() {
                return true;
            }
            n = n.wrapping_add(1);
            if n % 1024 == 0 {
                if let Some(d) = deadline {
                    if Instant::now() >= d {
                        return ready();
                    }
                }
            }
            std::hint::spin_loop();
        }
    }
}

impl Default for Event {
    fn default() -> Event {
        Event::new()
    }
}

/// poll(2) one descriptor for readability; interrupted or failed polls simply return (callers re-check).
fn poll_one(fd: BorrowedFd<'_>, timeout_ms: i32) {
    poll_readable(&[Some(fd)], timeout_ms);
}

/// poll(2) several descriptors for readability, up to `timeout_ms` (-1: forever). Returns when any is
/// readable, on timeout, or on a signal; callers re-check their conditions either way.
pub(crate) fn poll_readable(fds: &[Option<BorrowedFd<'_>>], timeout_ms: i32) {
    const MAX: usize = 65;
    let mut pfds = [libc::pollfd { fd: -1, events: libc::POLLIN, revents: 0 }; MAX];
    let mut n = 0;
    for fd in fds.iter().flatten().take(MAX) {
        pfds[n].fd = fd.as_raw_fd();
        n += 1;
    }
    // The borrowed descriptors outlive the call. Errors (EINTR) need no handling: callers re-check.
    let _ = sys::poll(&mut pfds[..n], timeout_ms);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn wait_times_out_when_nothing_happens() {
        let ev = Event::new();
        let start = Instant::now();
        assert!(!ev.wait_until(Some(start + Duration::from_millis(30)), || false));
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn notify_wakes_a_waiter_and_no_wakeup_is_lost() {
        // Many rounds of a producer racing a consumer: a lost wake-up would hang a round until the
        // generous deadline and fail the assertion.
        let ev = Arc::new(Event::new());
        for _ in 0..200 {
            let flag = Arc::new(AtomicBool::new(false));
            let (ev2, flag2) = (ev.clone(), flag.clone());
            let t = std::thread::spawn(move || {
                flag2.store(true, Ordering::SeqCst);
                ev2.notify();
            });
            let ok =
                ev.wait_until(Some(Instant::now() + Duration::from_secs(10)), || flag.load(Ordering::SeqCst));
            assert!(ok);
            t.join().unwrap();
        }
    }

    #[test]
    fn notify_without_waiters_writes_nothing() {
        let ev = Event::new();
        ev.notify();
        let mut pfd = [libc::pollfd { fd: ev.fd().unwrap().as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        let n = sys::poll(&mut pfd, 0).unwrap();
        assert_eq!(n, 0, "no syscall-visible signal when nobody waits");
    }
}

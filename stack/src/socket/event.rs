//! Wake-ups between threads without polling: a futex for threads that block in a socket call, and an
//! eventfd, written only when someone polls it, for reactors.
//!
//! The producer (a worker delivering a datagram, an application queueing a command) makes its condition
//! true, then calls [`Event::notify`], which costs two atomic loads when nobody sleeps. A consumer
//! announces itself *before* its last check of the condition, so a notification cannot fall between
//! that check and the sleep (the classic Dekker handshake; both sides use SeqCst fences).
//!
//! Threads blocked in [`Event::wait_until`] sleep on a futex over a generation word: a notification
//! that sees sleepers bumps the generation and wakes them all, and a sleeper whose generation is stale
//! does not sleep at all. So any number of threads may wait on one event (several threads accepting on
//! one listener, or receiving on one UDP socket) and none can swallow another's wake-up, which a
//! shared eventfd counter, drained by whoever wakes first, allows.
//!
//! The eventfd serves those who poll descriptors: the worker (it polls its event together with its
//! rings), tokio's reactor (`crate::tokio` keeps the event registered for as long as an async socket
//! lives, so every notification writes the eventfd). It is made the first time one of them needs it,
//! not with the event: every TCP connection has an event, and one that only ever has blocking or
//! busy-polling users pays no `eventfd(2)` and `close(2)` (1.6 µs of a SYN's handling, measured). A
//! registrant makes the descriptor *before* it registers, so a notifier that sees the registration also
//! sees the descriptor.
//!
//! An event can also be *linked* to one registration of a [`crate::Poller`]: then a notification also
//! puts the registration on the poller's ready list (see `socket/poll.rs`). The link is a flag bit in
//! the same word as the registration count, so a socket that no poller watches still pays one relaxed
//! load per notification; a linked one takes the (uncontended) lock that guards its link.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use super::poll::Registration;
use crate::sys;

/// The bit of `waiters` that says "a poller registration is linked"; the rest counts registrations.
const LINKED: u32 = 1 << 31;

/// A wake-up channel: many notifiers, any number of waiters.
#[derive(Debug)]
pub struct Event {
    /// The eventfd, made on first use ([`Event::fd`]).
    fd: OnceLock<OwnedFd>,
    /// Eventfd registrations ([`Event::register`]; low bits) and the [`LINKED`] flag.
    waiters: AtomicU32,
    /// Threads asleep (or about to sleep) in [`Event::wait_until`].
    sleepers: AtomicU32,
    /// The futex word those threads sleep on: bumped by every notification that sees a sleeper.
    generation: AtomicU32,
    /// The poller registration this event feeds, if any ([`LINKED`] is set exactly while it is `Some`).
    link: Mutex<Option<Arc<Registration>>>,
}

impl Event {
    /// A new event. No descriptor yet: see [`Event::fd`].
    pub fn new() -> Event {
        Event {
            fd: OnceLock::new(),
            waiters: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
            generation: AtomicU32::new(0),
            link: Mutex::new(None),
        }
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
        if self.sleepers.load(Ordering::Relaxed) != 0 {
            self.wake_sleepers();
        }
        // Acquire: a registrant made the descriptor before it registered; seeing it registered means
        // seeing the descriptor too.
        let w = self.waiters.load(Ordering::Acquire);
        if w != 0 {
            if w & !LINKED != 0 {
                self.write_fd();
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

    /// A new generation, and every thread asleep in [`Event::wait_until`] wakes to re-check.
    #[cold]
    fn wake_sleepers(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        sys::futex_wake_all(&self.generation);
    }

    fn write_fd(&self) {
        let Some(fd) = self.fd.get() else { return };
        // A full counter (EAGAIN) already means "readable", so the result needs no handling.
        let _ = sys::eventfd_write(fd.as_fd());
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

    /// Wake whoever waits, without the notifier's handshake: write the eventfd (if it was ever made)
    /// and wake the threads asleep in [`Event::wait_until`].
    pub fn signal(&self) {
        self.write_fd();
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::Relaxed) != 0 {
            self.wake_sleepers();
        }
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
    /// Any number of threads may wait on one event at once.
    pub fn wait_until(&self, deadline: Option<Instant>, mut ready: impl FnMut() -> bool) -> bool {
        loop {
            if ready() {
                return true;
            }
            // The generation is read before announcing ourselves: a notification that sees us bumps it
            // after this read, so the futex refuses to sleep on the stale value.
            let generation = self.generation.load(Ordering::SeqCst);
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if ready() {
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
                return true;
            }
            let timeout = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => {
                        self.sleepers.fetch_sub(1, Ordering::SeqCst);
                        return ready();
                    }
                },
            };
            sys::futex_wait(&self.generation, generation, timeout);
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
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
    fn every_waiter_of_many_wakes_for_its_item() {
        // Several threads take items from one queue (a shared UDP socket, a listener accepting in a
        // thread pool); a producer adds items and notifies once per item. A waiter that swallowed the
        // wake-ups of others (as one draining a shared eventfd counter can) would leave an item waiting
        // with its taker asleep for good, and the round would never end.
        use std::sync::atomic::AtomicUsize;
        const WAITERS: usize = 3;
        const ROUNDS: usize = 20_000;
        let ev = Arc::new(Event::new());
        let items = Arc::new(AtomicUsize::new(0));
        let taken = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..WAITERS)
            .map(|_| {
                let (ev, items, taken, done) = (ev.clone(), items.clone(), taken.clone(), done.clone());
                std::thread::spawn(move || {
                    let take = || {
                        items.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
                    };
                    loop {
                        let mut got = false;
                        ev.wait_until(None, || {
                            got = take();
                            got || done.load(Ordering::SeqCst)
                        });
                        if !got {
                            return;
                        }
                        taken.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for round in 0..ROUNDS {
            for _ in 0..WAITERS {
                items.fetch_add(1, Ordering::SeqCst);
                ev.notify();
            }
            let all = (round + 1) * WAITERS;
            let deadline = Instant::now() + std::time::Duration::from_secs(10);
            while taken.load(Ordering::SeqCst) < all {
                assert!(Instant::now() < deadline, "round {round}: an item waits and its takers sleep");
                std::thread::yield_now();
            }
        }
        done.store(true, Ordering::SeqCst);
        ev.notify();
        for t in threads {
            t.join().unwrap();
        }
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

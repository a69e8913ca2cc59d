//! Run-to-completion mode: no worker thread. The engine is driven by the application threads that
//! wait on its sockets (each wait spins on one turn of the worker loop at a time), and by
//! [`crate::Stack::poll`]. On a machine with few cores this removes the hand-off between an
//! application thread and a worker thread, which costs more than the protocol processing itself.
//!
//! Exactly one thread runs a turn at a time: an atomic flag decides who, and a thread that finds the
//! flag taken does not wait for it (it goes back to checking its own socket), so no thread ever blocks
//! on another.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Instant;

use super::Worker;

/// The worker of a run-to-completion stack, and who is driving it.
pub(crate) struct InlineDriver {
    busy: AtomicBool,
    worker: UnsafeCell<Option<Worker>>,
    /// Threads waiting on a socket (and driving the stack meanwhile).
    waiting: AtomicU32,
}

/// A thread's presence among the waiters ([`InlineDriver::enter`]); leaving is dropping it.
pub(crate) struct Waiting<'a>(&'a AtomicU32);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

// Safety: the worker is reached only through `drive` and `with`, which hold `busy` (acquired with a
// compare-exchange, released with a Release store) for the whole access, so at most one thread at a
// time has a reference to it; `Worker` itself is `Send`.
unsafe impl Sync for InlineDriver {}

impl std::fmt::Debug for InlineDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineDriver").field("busy", &self.busy.load(Ordering::Relaxed)).finish()
    }
}

impl InlineDriver {
    /// An empty driver; [`InlineDriver::install`] puts the worker in.
    pub(crate) fn new() -> InlineDriver {
        InlineDriver {
            busy: AtomicBool::new(false),
            worker: UnsafeCell::new(None),
            waiting: AtomicU32::new(0),
        }
    }

    /// Run `f` on the worker slot with exclusive access, waiting for the current turn to end.
    fn with<R>(&self, f: impl FnOnce(&mut Option<Worker>) -> R) -> R {
        while self.busy.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            std::hint::spin_loop();
        }
        // Safety: we hold `busy`, so no other reference to the slot exists (see the `Sync` impl).
        let r = f(unsafe { &mut *self.worker.get() });
        self.busy.store(false, Ordering::Release);
        r
    }

    /// Count the calling thread among the waiters until the guard drops.
    pub(crate) fn enter(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(&self.waiting)
    }

    /// True when more than one thread waits: then idle waiters should let the others have the core.
    pub(crate) fn crowded(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 1
    }

    /// Put the worker in (at start).
    pub(crate) fn install(&self, w: Worker) {
        self.with(|slot| *slot = Some(w));
    }

    /// Take the worker out (at shutdown).
    pub(crate) fn take(&self) -> Option<Worker> {
        self.with(Option::take)
    }

    /// One turn of the worker loop, unless another thread is running one (then nothing). Returns the
    /// work done.
    pub(crate) fn drive(&self) -> usize {
        self.drive_at().0
    }

    /// As [`drive`](Self::drive), also returning when the turn began (the worker's clock, read at the
    /// start of a turn that finds work): where a stretch of idle turns ended.
    pub(crate) fn drive_at(&self) -> (usize, Option<Instant>) {
        if self.busy.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return (0, None);
        }
        // Safety: we hold `busy` (see the `Sync` impl).
        let r = unsafe { (*self.worker.get()).as_mut() }
            .map(|w| (w.turn().unwrap_or(0), Some(w.turn_at)))
            .unwrap_or((0, None));
        self.busy.store(false, Ordering::Release);
        r
    }
}

//! Readiness of many sockets on one thread, in the spirit of epoll: [`Poller`].
//!
//! A poller never scans its registrations. Each registered socket's [`Event`] is *linked* to its
//! `Registration`; when a worker notifies the event (data arrived, a connection was accepted, send
//! space freed, the state changed), the registration is pushed onto the poller's lock-free ready list,
//! once (its `queued` flag), and the poller's own event is notified. [`Poller::wait`] pops
//! registrations, checks the socket's *current* readiness through a `Probe` (notifications are hints;
//! the probe is the truth), and reports the ones that are ready for what they asked. The cost of a wait
//! is proportional to the sockets that became ready, not to the sockets registered, so one thread can
//! serve tens of thousands of sockets.
//!
//! - **Level-triggered** registrations that were reported go back on the ready list at the end of the
//!   wait, so the next wait checks them again and reports them again while they stay ready (a socket
//!   that is no longer ready simply drops off).
//! - **Edge-triggered** registrations are reported once per notification that finds them ready; the
//!   caller must then drain the socket until `WouldBlock`, as with `EPOLLET`.
//!
//! # No lost wake-ups
//!
//! Three handshakes, each of the "write mine, fence, read theirs" kind, so that of two racing threads at
//! least one sees the other:
//!
//! 1. *Link vs. notify*: [`Poller::register`] sets the link flag, fences, then queues the registration
//!    unconditionally, so its first check happens after the link is visible; a producer makes its
//!    condition true, fences, then reads the flag. Either the producer sees the flag and queues, or the
//!    registrar's first check sees the condition.
//! 2. *Queued flag*: the poller clears `queued` with an `AcqRel` swap *before* it checks readiness; the
//!    producer (after making its condition true) sets it with an `AcqRel` swap and pushes only if it was
//!    clear. The swaps are read-modify-writes on one word, so they are totally ordered: if the producer's
//!    comes first, it released the condition to the poller's swap and the check sees it; if the poller's
//!    comes first, the producer finds the flag clear and queues the registration again.
//! 3. *Ready list vs. sleep*: the poller sleeps through [`Event::wait_until`] (or the stack's busy-poll
//!    and run-to-completion waits) with "the ready list is not empty" as its condition; producers push,
//!    then notify the poller's event: the Dekker handshake of `event.rs`.
//!
//! A registration that is no longer wanted (deregistered, socket dropped, poller dropped) is marked dead
//! and skipped when it is popped; its token is never reported again.
//!
//! The notification path of a socket that is registered takes the mutex that guards the socket's link
//! (one uncontended lock, plus a push when the registration was not queued); sockets that no poller
//! watches pay one relaxed load, as before.

use std::fmt;
use std::io;
use std::ops::BitOr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use crossbeam_queue::SegQueue;

use super::event::Event;
use crate::stack::StackShared;

/// What a registration wants to hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest(u8);

impl Interest {
    /// Data to read, a connection to accept, or end of stream.
    pub const READABLE: Interest = Interest(Ready::READABLE);
    /// Room to write (TCP: in the send buffer; UDP: always, the stack queues datagrams).
    pub const WRITABLE: Interest = Interest(Ready::WRITABLE);

    /// True if `READABLE` is included.
    pub fn is_readable(self) -> bool {
        self.0 & Ready::READABLE != 0
    }

    /// True if `WRITABLE` is included.
    pub fn is_writable(self) -> bool {
        self.0 & Ready::WRITABLE != 0
    }
}

impl BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        Interest(self.0 | rhs.0)
    }
}

/// When a ready socket is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Every wait while the socket is ready (`epoll`'s default).
    Level,
    /// Once per new notification that finds it ready (`EPOLLET`): drain the socket until `WouldBlock`.
    Edge,
}

/// Readiness bits, as probes report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Ready(pub u8);

impl Ready {
    pub const READABLE: u8 = 1;
    pub const WRITABLE: u8 = 2;
    /// The connection is finished (or the stack stopped): nothing more will happen.
    pub const HUP: u8 = 4;
    /// A pending error (`take_error` returns it).
    pub const ERROR: u8 = 8;

    pub(crate) fn set(&mut self, bit: u8, on: bool) {
        if on {
            self.0 |= bit;
        }
    }
}

/// A socket's current readiness, computed from shared state only (atomics), on the poller's thread.
pub(crate) trait Probe: Send + Sync + fmt::Debug {
    /// What the socket is ready for now; `running` is false once the stack has stopped.
    fn readiness(&self, running: bool) -> Ready;
}

/// Sockets a [`Poller`] can watch: [`crate::UdpSocket`], [`crate::TcpStream`], [`crate::TcpListener`].
///
/// The trait is sealed; a new socket type implements the crate-private `Source` (its event, its stack,
/// and a `Probe` of its readiness).
pub trait Pollable: sealed::Source {}

// The sealed-trait pattern: `Source` is reachable as a supertrait but cannot be named (so neither called
// nor implemented) outside the crate, which is why its crate-private types are fine here.
#[allow(private_interfaces)]
pub(crate) mod sealed {
    use super::*;

    /// What a poller needs from a socket.
    pub trait Source {
        /// The event the workers notify on every readiness change.
        fn event(&self) -> &Event;
        /// The stack the socket belongs to.
        fn stack(&self) -> &Arc<StackShared>;
        /// A probe of the socket's readiness.
        fn probe(&self) -> Box<dyn Probe>;
    }
}

impl<T: sealed::Source> Pollable for T {}

/// One socket's entry in one poller.
pub(crate) struct Registration {
    token: AtomicU64,
    interest: AtomicU8,
    edge: AtomicBool,
    /// On the ready list (or about to be); set by whoever pushes, cleared by the poller before checking.
    queued: AtomicBool,
    /// Deregistered, socket gone or poller gone: never reported again.
    dead: AtomicBool,
    poller: Weak<Inner>,
    probe: Box<dyn Probe>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("token", &self.token.load(Ordering::Relaxed))
            .field("queued", &self.queued.load(Ordering::Relaxed))
            .field("dead", &self.dead.load(Ordering::Relaxed))
            .finish()
    }
}

impl Registration {
    /// A live registration with `poller`, not yet queued.
    fn new(
        token: u64,
        interest: Interest,
        trigger: Trigger,
        poller: &Arc<Inner>,
        probe: Box<dyn Probe>,
    ) -> Arc<Registration> {
        Arc::new(Registration {
            token: AtomicU64::new(token),
            interest: AtomicU8::new(interest.0),
            edge: AtomicBool::new(trigger == Trigger::Edge),
            queued: AtomicBool::new(false),
            dead: AtomicBool::new(false),
            poller: Arc::downgrade(poller),
            probe,
        })
    }

    /// A notification: queue this registration on its poller unless it is queued already.
    pub(crate) fn wake(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(p) = self.poller.upgrade() {
            p.ready.push(self.clone());
            p.event.notify();
        }
    }

    /// Still wanted by a live poller.
    pub(crate) fn is_live(&self) -> bool {
        !self.dead.load(Ordering::Acquire) && self.poller.strong_count() > 0
    }

    /// Retire: never reported again.
    pub(crate) fn kill(&self) {
        self.dead.store(true, Ordering::Release);
    }

    fn belongs_to(&self, inner: &Arc<Inner>) -> bool {
        std::ptr::eq(self.poller.as_ptr(), Arc::as_ptr(inner))
    }
}

/// The part of a poller that registrations point to.
#[derive(Debug)]
struct Inner {
    ready: SegQueue<Arc<Registration>>,
    event: Event,
}

/// Waits for readiness of many sockets at once, in the spirit of `epoll`.
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// # let stack: xdpstack::Stack = unimplemented!();
/// use xdpstack::{Events, Interest, Poller, Trigger, UdpSocket};
/// let poller = Poller::new()?;
/// let sock = UdpSocket::bind(&stack, "0.0.0.0:7")?;
/// sock.set_nonblocking(true)?;
/// poller.register(&sock, 7, Interest::READABLE, Trigger::Level)?;
/// let mut events = Events::with_capacity(1024);
/// poller.wait(&mut events, None)?;
/// for ev in events.iter() {
///     assert_eq!(ev.token(), 7);
///     let mut buf = [0u8; 1500];
///     let (n, from) = sock.recv_from(&mut buf)?;
///     sock.send_to(&buf[..n], from)?;
/// }
/// # Ok(()) }
/// ```
///
/// A socket belongs to at most one poller at a time (registering it in a second live one is
/// `AlreadyExists`), and all sockets of a poller belong to one stack. Dropping a socket removes it.
/// In busy-poll mode `wait` spins; in run-to-completion (`inline`) mode it drives the stack while it
/// waits, as blocking socket calls do.
pub struct Poller {
    inner: Arc<Inner>,
    stack: OnceLock<Arc<StackShared>>,
}

impl fmt::Debug for Poller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Poller").field("queued", &self.inner.ready.len()).finish()
    }
}

/// One ready socket, as [`Poller::wait`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollEvent {
    token: u64,
    ready: u8,
}

impl PollEvent {
    /// The token given at registration.
    pub fn token(&self) -> u64 {
        self.token
    }
    /// Data to read, a connection to accept, end of stream, or an error to collect by reading.
    pub fn is_readable(&self) -> bool {
        self.ready & Ready::READABLE != 0
    }
    /// Room to write (or an error a write will report).
    pub fn is_writable(&self) -> bool {
        self.ready & Ready::WRITABLE != 0
    }
    /// The connection is over (closed, reset, TIME-WAIT) or the stack has stopped.
    pub fn is_hup(&self) -> bool {
        self.ready & Ready::HUP != 0
    }
    /// A pending error.
    pub fn is_error(&self) -> bool {
        self.ready & Ready::ERROR != 0
    }
}

/// A buffer of [`PollEvent`]s, filled by [`Poller::wait`]; its capacity bounds one wait's report.
#[derive(Debug)]
pub struct Events {
    list: Vec<PollEvent>,
    /// Level-triggered registrations reported by this wait, queued again when it ends.
    again: Vec<Arc<Registration>>,
}

impl Events {
    /// Room for `capacity` events per wait (at least 1). Allocates here only, never in `wait`.
    pub fn with_capacity(capacity: usize) -> Events {
        let capacity = capacity.max(1);
        Events { list: Vec::with_capacity(capacity), again: Vec::with_capacity(capacity) }
    }
    /// The events of the last wait.
    pub fn iter(&self) -> impl Iterator<Item = &PollEvent> + '_ {
        self.list.iter()
    }
    /// How many events the last wait reported.
    pub fn len(&self) -> usize {
        self.list.len()
    }
    /// True when the last wait reported nothing.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    /// The most events one wait reports.
    pub fn capacity(&self) -> usize {
        self.list.capacity()
    }
    fn is_full(&self) -> bool {
        self.list.len() >= self.list.capacity()
    }
}

impl Poller {
    /// An empty poller (one eventfd).
    pub fn new() -> io::Result<Poller> {
        Ok(Poller {
            inner: Arc::new(Inner { ready: SegQueue::new(), event: Event::new() }),
            stack: OnceLock::new(),
        })
    }

    /// Watch `socket` for `interest`; its events carry `token`. The socket's current readiness is
    /// reported by the next wait (in both trigger modes). `AlreadyExists` if the socket is registered
    /// with a live poller already; `InvalidInput` if it belongs to another stack than earlier sockets.
    pub fn register(
        &self,
        socket: &impl Pollable,
        token: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        let stack = self.stack.get_or_init(|| socket.stack().clone());
        if !Arc::ptr_eq(stack, socket.stack()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a Poller serves the sockets of one stack; make one Poller per stack",
            ));
        }
        let reg = Registration::new(token, interest, trigger, &self.inner, socket.probe());
        if socket.event().link(reg.clone()).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the socket is registered already; use modify, or deregister it first",
            ));
        }
        // Handshake 1 of the module doc: the first check comes after the link is visible.
        reg.wake();
        Ok(())
    }

    /// Change a registration's token, interest and trigger; its current readiness is reported again.
    /// `NotFound` if the socket is not registered with this poller.
    pub fn modify(
        &self,
        socket: &impl Pollable,
        token: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        let reg = self.ours(socket)?;
        reg.token.store(token, Ordering::Relaxed);
        reg.interest.store(interest.0, Ordering::Relaxed);
        reg.edge.store(trigger == Trigger::Edge, Ordering::Relaxed);
        // Publishes the new settings to the poller thread (the swap in `wake` is a release).
        reg.wake();
        Ok(())
    }

    /// Stop watching `socket`. `NotFound` if it is not registered with this poller.
    pub fn deregister(&self, socket: &impl Pollable) -> io::Result<()> {
        let reg = self.ours(socket)?;
        socket.event().unlink(Some(&reg));
        Ok(())
    }

    fn ours(&self, socket: &impl Pollable) -> io::Result<Arc<Registration>> {
        match socket.event().linked() {
            Some(reg) if reg.belongs_to(&self.inner) && !reg.dead.load(Ordering::Acquire) => Ok(reg),
            _ => {
                Err(io::Error::new(io::ErrorKind::NotFound, "the socket is not registered with this poller"))
            }
        }
    }

    /// Wait until at least one registered socket is ready or `timeout` passes (`None`: forever;
    /// zero: just look). Fills `events` (up to its capacity; the rest stay queued for the next wait)
    /// and returns how many there are; 0 on timeout.
    pub fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        events.list.clear();
        let deadline = timeout.map(|t| Instant::now() + t);
        if let Some(stack) = self.stack.get() {
            // Run-to-completion: even a zero-timeout wait moves the stack one turn.
            stack.drive();
        }
        loop {
            self.collect(events);
            if !events.is_empty() {
                return Ok(events.len());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(0);
            }
            let inner = &self.inner;
            let ready = || !inner.ready.is_empty();
            match self.stack.get() {
                Some(stack) => stack.wait(&inner.event, deadline, ready),
                None => inner.event.wait_until(deadline, ready),
            };
        }
    }

    /// Pop queued registrations, check them, report the ready ones; requeue level-triggered reports.
    fn collect(&self, events: &mut Events) {
        let running = self.stack.get().is_none_or(|s| s.is_running());
        while !events.is_full() {
            let Some(reg) = self.inner.ready.pop() else { break };
            if reg.dead.load(Ordering::Acquire) {
                continue;
            }
            // Handshake 2: clear before checking, so a later notification queues it again.
            reg.queued.swap(false, Ordering::AcqRel);
            let interest = reg.interest.load(Ordering::Relaxed);
            let ready = reg.probe.readiness(running).0 & (interest | Ready::HUP | Ready::ERROR);
            if ready == 0 {
                continue;
            }
            events.list.push(PollEvent { token: reg.token.load(Ordering::Relaxed), ready });
            if !reg.edge.load(Ordering::Relaxed) {
                events.again.push(reg);
            }
        }
        for reg in events.again.drain(..) {
            if !reg.queued.swap(true, Ordering::AcqRel) {
                self.inner.ready.push(reg);
            }
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        // Registrations hold only a weak reference: once `inner` is gone they are dead, and the sockets
        // replace them when registered again. Queued ones are released here.
        while let Some(reg) = self.inner.ready.pop() {
            reg.kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A socket stand-in: an event and a counter of "datagrams" (readable while > 0).
    #[derive(Debug, Default)]
    struct FakeState {
        items: AtomicUsize,
    }

    #[derive(Debug)]
    struct FakeProbe(Arc<FakeState>);

    impl Probe for FakeProbe {
        fn readiness(&self, running: bool) -> Ready {
            let mut r = Ready(Ready::WRITABLE);
            r.set(Ready::READABLE, self.0.items.load(Ordering::Acquire) > 0);
            r.set(Ready::HUP, !running);
            r
        }
    }

    struct Fake {
        state: Arc<FakeState>,
        event: Event,
    }

    impl Fake {
        fn new() -> Fake {
            Fake { state: Arc::default(), event: Event::new() }
        }
        fn push(&self) {
            self.state.items.fetch_add(1, Ordering::AcqRel);
            self.event.notify();
        }
        fn pop(&self) -> bool {
            self.state.items.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)).is_ok()
        }
    }

    fn register(p: &Poller, f: &Fake, token: u64, interest: Interest, trigger: Trigger) {
        // The tests have no stack: link directly, as `register` does after its stack check.
        let reg = Registration::new(token, interest, trigger, &p.inner, Box::new(FakeProbe(f.state.clone())));
        f.event.link(reg.clone()).unwrap();
        reg.wake();
    }

    fn tokens(p: &Poller, ev: &mut Events, timeout_ms: u64) -> Vec<u64> {
        p.wait(ev, Some(Duration::from_millis(timeout_ms))).unwrap();
        let mut t: Vec<u64> = ev.iter().map(|e| e.token()).collect();
        t.sort_unstable();
        t
    }

    #[test]
    fn level_reports_while_ready_edge_once_per_notification() {
        let p = Poller::new().unwrap();
        let (lt, et) = (Fake::new(), Fake::new());
        register(&p, &lt, 1, Interest::READABLE, Trigger::Level);
        register(&p, &et, 2, Interest::READABLE, Trigger::Edge);
        let mut ev = Events::with_capacity(8);
        assert_eq!(tokens(&p, &mut ev, 0), Vec::<u64>::new(), "nothing readable yet");
        lt.push();
        et.push();
        assert_eq!(tokens(&p, &mut ev, 1000), vec![1, 2]);
        // Nobody read: level reports again, edge does not.
        assert_eq!(tokens(&p, &mut ev, 20), vec![1]);
        assert_eq!(tokens(&p, &mut ev, 20), vec![1]);
        // A new arrival is a new edge.
        et.push();
        assert_eq!(tokens(&p, &mut ev, 1000), vec![1, 2]);
        // Drained: level stops too.
        while lt.pop() {}
        assert_eq!(tokens(&p, &mut ev, 20), Vec::<u64>::new());
    }

    #[test]
    fn interest_filters_and_modify_and_deregister_apply() {
        let p = Poller::new().unwrap();
        let f = Fake::new();
        register(&p, &f, 5, Interest::READABLE, Trigger::Level);
        let mut ev = Events::with_capacity(4);
        assert_eq!(p.wait(&mut ev, Some(Duration::ZERO)).unwrap(), 0, "writable but not asked for");
        let reg = f.event.linked().unwrap();
        reg.interest.store((Interest::READABLE | Interest::WRITABLE).0, Ordering::Relaxed);
        reg.token.store(6, Ordering::Relaxed);
        reg.wake();
        p.wait(&mut ev, Some(Duration::ZERO)).unwrap();
        let e = ev.iter().next().copied().unwrap();
        assert_eq!((e.token(), e.is_writable(), e.is_readable()), (6, true, false));
        assert!(f.event.unlink(Some(&reg)));
        f.push();
        assert_eq!(p.wait(&mut ev, Some(Duration::from_millis(20))).unwrap(), 0, "deregistered");
    }

    #[test]
    fn second_poller_is_refused_until_the_first_is_gone() {
        let f = Fake::new();
        let p1 = Poller::new().unwrap();
        register(&p1, &f, 1, Interest::READABLE, Trigger::Level);
        let p2 = Poller::new().unwrap();
        let reg = Arc::new(Registration {
            token: AtomicU64::new(2),
            interest: AtomicU8::new(Ready::READABLE),
            edge: AtomicBool::new(false),
            queued: AtomicBool::new(false),
            dead: AtomicBool::new(false),
            poller: Arc::downgrade(&p2.inner),
            probe: Box::new(FakeProbe(f.state.clone())),
        });
        assert!(f.event.link(reg.clone()).is_err());
        drop(p1);
        assert!(f.event.link(reg).is_ok());
    }

    #[test]
    fn capacity_bounds_a_wait_and_the_rest_stay_queued() {
        let p = Poller::new().unwrap();
        let socks: Vec<Fake> = (0..10).map(|_| Fake::new()).collect();
        for (i, s) in socks.iter().enumerate() {
            register(&p, s, i as u64, Interest::READABLE, Trigger::Edge);
            s.push();
        }
        let mut ev = Events::with_capacity(4);
        let mut seen = Vec::new();
        while seen.len() < 10 {
            assert!(p.wait(&mut ev, Some(Duration::from_millis(100))).unwrap() <= 4);
            seen.extend(ev.iter().map(|e| e.token()));
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<u64>>());
    }

    #[test]
    fn no_wakeup_is_lost_under_racing_producers() {
        // Producers on other threads push items to many sockets while one poller thread consumes them
        // edge-triggered (draining each socket on every report). A lost wake-up leaves an item behind
        // with no report to come: the consumer then stalls and the generous timeout fails the test.
        const SOCKS: usize = 64;
        const PER_PRODUCER: usize = 20_000;
        let p = Poller::new().unwrap();
        let socks: Arc<Vec<Fake>> = Arc::new((0..SOCKS).map(|_| Fake::new()).collect());
        for (i, s) in socks.iter().enumerate() {
            register(&p, s, i as u64, Interest::READABLE, Trigger::Edge);
        }
        let producers: Vec<_> = (0..2)
            .map(|k| {
                let socks = socks.clone();
                std::thread::spawn(move || {
                    for i in 0..PER_PRODUCER {
                        socks[(i * 7 + k) % SOCKS].push();
                        if i % 64 == 0 {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut ev = Events::with_capacity(16);
        let mut got = 0;
        while got < 2 * PER_PRODUCER {
            let n = p.wait(&mut ev, Some(Duration::from_secs(10))).unwrap();
            assert!(n > 0, "stalled with {got} of {} items: a lost wake-up", 2 * PER_PRODUCER);
            for e in ev.iter() {
                while socks[e.token() as usize].pop() {
                    got += 1;
                }
            }
        }
        for t in producers {
            t.join().unwrap();
        }
        assert_eq!(got, 2 * PER_PRODUCER);
    }
}

//! The worker's TCP sockets: connections by 4-tuple, listeners by local address, a timer heap, and the
//! replies (resets, cookie SYN-ACKs) that belong to no connection.
//!
//! Input only records: segments go to their connection (or listener) and the connection is marked
//! dirty. Output happens afterwards, once per worker turn, so that a batch of segments is answered
//! by one ACK: [`TcpTable::flush`] drains every dirty connection's `poll_transmit`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddrV4;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::endpoints::AddrMap;
use super::timewait::{TimeWaitEntry, TimeWaits, Tuple};
use crate::counters::Counters;
use crate::iface::{IcmpErrorKind, Interface, TcpInput};
use crate::observe::{SocketInfo, SocketKind};
use crate::phy::TxDevice;
use crate::socket::ring::ByteRing;
use crate::socket::tcp::{Accepted, ListenerShared, TcpShared};
use crate::stack::StackShared;
use crate::tcp::conn::events;
use crate::tcp::isn::{IsnGenerator, SynCookies};
use crate::tcp::listen::{cookie_tick, reset_for, SynVerdict};
use crate::tcp::timewait::{TimeWait, TimeWaitVerdict};
use crate::tcp::{Connection, ConnectionParams, IcmpSignal, Listener, State, TcpConfig};
use crate::wire::{TcpFlags, TcpRepr, TcpSeqNumber};

/// Timer-heap entries one connection has at once: its live deadline, plus later ones left stale when a
/// deadline moved earlier. In steady traffic that is about one per delayed-ACK interval within a
/// retransmission timeout (200 ms / 40 ms), so 8 leaves room.
const HEAP_ENTRIES_PER_CONNECTION: usize = 8;

struct Entry {
    /// Boxed: the slot table stays small (it grows by copying, and a busy server holds many
    /// connections in TIME-WAIT), and a connection never moves.
    conn: Box<Connection>,
    shared: Arc<TcpShared>,
    /// The listener that made it, while it waits to be accepted.
    listener: Option<SocketAddrV4>,
    /// It counts against its listener's SYN queue (a half-open connection; not one born from a cookie).
    in_syn_queue: bool,
    /// Ends for the application, until the connection is handed over through the accept queue.
    ends: Option<Accepted>,
    /// The deadline this entry has in the heap.
    timer_at: Option<Instant>,
    dirty: bool,
    gen: u32,
}

impl Entry {
    /// An active open whose 4-tuple the port table holds for it (until it, or its TIME-WAIT
    /// record, ends).
    fn holds_tuple(&self) -> bool {
        self.listener.is_none() && self.ends.is_none() && self.shared.active_open
    }
}

struct ListenEntry {
    listener: Listener,
    shared: Arc<ListenerShared>,
}

/// A worker's TCP state.
pub(crate) struct TcpTable {
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    gens: Vec<u32>,
    by_tuple: AddrMap<Tuple, usize>,
    listeners: AddrMap<SocketAddrV4, ListenEntry>,
    /// Connections that reached TIME-WAIT, as records (their slots are free again).
    time_waits: TimeWaits,
    heap: BinaryHeap<Reverse<(Instant, usize, u32)>>,
    dirty: Vec<usize>,
    /// Segments that belong to no connection: (our address, theirs, segment).
    replies: Vec<(SocketAddrV4, SocketAddrV4, TcpRepr)>,
    isn: IsnGenerator,
    cookies: SynCookies,
    epoch: Instant,
    config: Arc<TcpConfig>,
    counters: Arc<Counters>,
    mss: u16,
    /// This worker's index (recorded in the connections it owns).
    index: usize,
}

impl TcpTable {
    pub(crate) fn new(
        index: usize,
        config: Arc<TcpConfig>,
        counters: Arc<Counters>,
        mss: u16,
        now: Instant,
    ) -> TcpTable {
        TcpTable {
            slots: Vec::new(),
            free: Vec::new(),
            gens: Vec::new(),
            by_tuple: AddrMap::default(),
            listeners: AddrMap::default(),
            time_waits: TimeWaits::default(),
            heap: BinaryHeap::new(),
            dirty: Vec::new(),
            replies: Vec::new(),
            isn: IsnGenerator::from_entropy(),
            cookies: SynCookies::from_entropy(),
            epoch: now,
            config,
            counters,
            mss,
            index,
        }
    }

    fn clock_us(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_micros() as u64
    }

    /// A new connection's timestamp clock at `now`: this worker's millisecond clock plus the
    /// 4-tuple's offset. Every incarnation of a 4-tuple lands on this worker and continues the same
    /// clock, so a reopened connection's TSvals are newer than its TIME-WAIT record's (RFC 6191).
    fn ts_clock(&self, now: Instant, local: SocketAddrV4, remote: SocketAddrV4) -> u32 {
        ((self.clock_us(now) / 1000) as u32).wrapping_add(self.isn.ts_offset(local, remote))
    }

    fn insert(&mut self, e: Entry) -> usize {
        let tuple = (e.conn.local(), e.conn.remote());
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.gens.push(0);
                self.slots.len() - 1
            }
        };
        let gen = self.gens[idx];
        self.slots[idx] = Some(Entry { gen, ..e });
        // Room for this connection's timer entries (a live one and a few stale ones), reserved now so
        // that the packet path does not grow the heap.
        self.heap.reserve(HEAP_ENTRIES_PER_CONNECTION);
        self.dirty.reserve(1);
        self.by_tuple.insert(tuple, idx);
        self.mark_dirty(idx);
        idx
    }

    fn mark_dirty(&mut self, idx: usize) {
        if let Some(e) = self.slots[idx].as_mut() {
            if !e.dirty {
                e.dirty = true;
                self.dirty.push(idx);
            }
        }
    }

    /// A segment from the wire.
    pub(crate) fn input(&mut self, now: Instant, seg: TcpInput<'_>, stack: &StackShared) {
        let tuple = (seg.dst, seg.src);
        let r = &seg.repr;
        if let Some(tw) = self.time_waits.get_mut(&tuple) {
            match tw.tw.on_segment(now, r, seg.payload.len(), self.config.msl * 2) {
                TimeWaitVerdict::Ignore => return,
                TimeWaitVerdict::Ack(ack) => {
                    self.replies.push((seg.dst, seg.src, ack));
                    return;
                }
                TimeWaitVerdict::Close => {
                    self.counters.tcp_tw_killed.inc();
                    self.end_time_wait(tuple, stack);
                    return;
                }
                // The SYN goes on to the listener.
                TimeWaitVerdict::Reopen => self.end_time_wait(tuple, stack),
            }
        }
        if let Some(&idx) = self.by_tuple.get(&tuple) {
            let e = self.slots[idx].as_mut().expect("indexed slot is live");
            let fresh_syn = r.flags.contains(TcpFlags::SYN) && r.ack.is_none();
            // RFC 6191-style reuse: a new SYN beyond what TIME-WAIT knows ends the TIME-WAIT (of a
            // connection not yet turned into a record).
            if e.conn.state() == State::TimeWait && fresh_syn && e.conn.rcv_nxt_seq() < r.seq {
                self.remove(idx, stack);
            } else {
                // Accept queue full: leave the handshake unfinished (the peer retransmits), as Linux does.
                if e.conn.state() == State::SynReceived && r.ack.is_some() {
                    if let Some(l) = e.listener.and_then(|l| self.listeners.get(&l)) {
                        if l.shared.accept_full() {
                            self.counters.listen_overflows.inc();
                            return;
                        }
                    }
                }
                e.conn.on_segment(now, r, seg.payload);
                self.mark_dirty(idx);
                return;
            }
        }
        let key = self.listener_key(seg.dst);
        let Some(key) = key else {
            if let Some(rst) = reset_for(r, seg.payload.len()) {
                self.replies.push((seg.dst, seg.src, rst));
            }
            return;
        };
        let (syn, ack, rst) =
            (r.flags.contains(TcpFlags::SYN), r.ack.is_some(), r.flags.contains(TcpFlags::RST));
        if rst {
            return;
        }
        if syn && !ack {
            self.on_syn(now, key, seg, stack);
        } else if ack && !syn {
            self.on_listener_ack(now, key, seg, stack);
        } else if let Some(rst) = reset_for(r, seg.payload.len()) {
            self.replies.push((seg.dst, seg.src, rst));
        }
    }

    fn listener_key(&self, local: SocketAddrV4) -> Option<SocketAddrV4> {
        if self.listeners.contains_key(&local) {
            return Some(local);
        }
        let any = SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, local.port());
        self.listeners.contains_key(&any).then_some(any)
    }

    fn on_syn(&mut self, now: Instant, key: SocketAddrV4, seg: TcpInput<'_>, stack: &StackShared) {
        let tick = cookie_tick(self.epoch, now);
        // A cookie connection continues the clock its SYN-ACK's TSval starts: the 4-tuple's clock.
        let ts_now = self.ts_clock(now, seg.dst, seg.src);
        let l = self.listeners.get_mut(&key).expect("listener_key found it");
        if l.shared.accept_full() {
            // Linux drops SYNs while the accept queue is full.
            self.counters.listen_overflows.inc();
            self.counters.listen_drops.inc();
            return;
        }
        let verdict = l.listener.on_syn(
            seg.dst,
            seg.src,
            &seg.repr,
            &self.cookies,
            tick,
            ts_now,
            self.config.window_scaling,
            self.config.sack,
        );
        match verdict {
            SynVerdict::Cookie(repr) => {
                self.counters.syncookies_sent.inc();
                self.replies.push((seg.dst, seg.src, repr));
            }
            SynVerdict::HalfOpen => {
                l.listener.syn_queue += 1;
                let p = l.shared.params;
                let iss = self.isn.isn(self.clock_us(now), seg.dst, seg.src);
                let params = ConnectionParams {
                    local: seg.dst,
                    remote: seg.src,
                    mss: self.mss,
                    nodelay: p.nodelay,
                    keepalive: p.keepalive,
                };
                let ((app_tx, tx), (rx, app_rx)) =
                    (ByteRing::pooled(p.send_buf, &stack.rings), ByteRing::pooled(p.recv_buf, &stack.rings));
                let mut conn = Connection::accept(
                    now,
                    &params,
                    self.config.clone(),
                    iss,
                    &seg.repr,
                    tx,
                    rx,
                    self.counters.clone(),
                );
                conn.set_ts_clock(now, self.ts_clock(now, seg.dst, seg.src));
                let shared = Arc::new(TcpShared::new(stack.next_id(), seg.dst, seg.src, self.index));
                let ends = Accepted { shared: shared.clone(), tx: app_tx, rx: app_rx };
                self.insert(Entry {
                    conn: Box::new(conn),
                    shared,
                    listener: Some(key),
                    in_syn_queue: true,
                    ends: Some(ends),
                    timer_at: None,
                    dirty: false,
                    gen: 0,
                });
            }
        }
    }

    fn on_listener_ack(&mut self, now: Instant, key: SocketAddrV4, seg: TcpInput<'_>, stack: &StackShared) {
        let tick = cookie_tick(self.epoch, now);
        let l = self.listeners.get(&key).expect("listener_key found it");
        let Some(cc) = l.listener.check_cookie(seg.dst, seg.src, &seg.repr, &self.cookies, tick) else {
            if l.listener.syn_queue >= l.listener.syn_queue_max {
                self.counters.syncookies_failed.inc();
            }
            if let Some(rst) = reset_for(&seg.repr, seg.payload.len()) {
                self.replies.push((seg.dst, seg.src, rst));
            }
            return;
        };
        if l.shared.accept_full() {
            self.counters.listen_overflows.inc();
            return;
        }
        self.counters.syncookies_recv.inc();
        let p = l.shared.params;
        let params = ConnectionParams {
            local: seg.dst,
            remote: seg.src,
            mss: self.mss,
            nodelay: p.nodelay,
            keepalive: p.keepalive,
        };
        let ((app_tx, tx), (rx, app_rx)) =
            (ByteRing::pooled(p.send_buf, &stack.rings), ByteRing::pooled(p.recv_buf, &stack.rings));
        let mut conn = Connection::from_cookie(
            now,
            &params,
            self.config.clone(),
            &seg.repr,
            cc.mss,
            cc.wscale,
            cc.sack,
            tx,
            rx,
            self.counters.clone(),
        );
        if !seg.payload.is_empty() || seg.repr.flags.contains(TcpFlags::FIN) {
            conn.on_segment(now, &seg.repr, seg.payload);
        }
        let shared = Arc::new(TcpShared::new(stack.next_id(), seg.dst, seg.src, self.index));
        let ends = Accepted { shared: shared.clone(), tx: app_tx, rx: app_rx };
        self.insert(Entry {
            conn: Box::new(conn),
            shared,
            listener: Some(key),
            in_syn_queue: false,
            ends: Some(ends),
            timer_at: None,
            dirty: false,
            gen: 0,
        });
    }

    /// An ICMP error about one of our flows, quoting a segment with sequence number `seq` (RFC 5927:
    /// soft errors, except that a port or protocol unreachable aborts a connection attempt, as in
    /// Linux; "fragmentation needed" lowers the MSS). The connection checks `seq` against its send
    /// window.
    pub(crate) fn icmp_error(
        &mut self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seq: TcpSeqNumber,
        kind: IcmpErrorKind,
    ) {
        let Some(&idx) = self.by_tuple.get(&(local, remote)) else { return };
        let e = self.slots[idx].as_mut().expect("indexed slot is live");
        let signal = match kind {
            IcmpErrorKind::PortUnreachable | IcmpErrorKind::ProtocolUnreachable => IcmpSignal::Refused,
            IcmpErrorKind::FragNeeded(mtu) => IcmpSignal::PathMtu(mtu),
            IcmpErrorKind::HostUnreachable
            | IcmpErrorKind::TimeExceeded
            | IcmpErrorKind::ParameterProblem => IcmpSignal::Unreachable,
        };
        e.conn.on_icmp(seq, signal);
        self.mark_dirty(idx);
    }

    /// An application opened a connection (its ends are already with it).
    pub(crate) fn connect(&mut self, now: Instant, req: ConnectRequest, stack: &StackShared) {
        let iss = self.isn.isn(self.clock_us(now), req.params.local, req.params.remote);
        let tuple = (req.params.local, req.params.remote);
        if self.by_tuple.contains_key(&tuple) || self.time_waits.contains(&tuple) {
            // A TIME-WAIT (or other) connection still holds this 4-tuple.
            req.shared.fail(libc::EADDRINUSE);
            stack.release_tcp_tuple((req.params.local, req.params.remote));
            return;
        }
        let mut conn = Connection::connect(
            now,
            &req.params,
            self.config.clone(),
            iss,
            req.tx,
            req.rx,
            self.counters.clone(),
        );
        conn.set_ts_clock(now, self.ts_clock(now, tuple.0, tuple.1));
        self.insert(Entry {
            conn: Box::new(conn),
            shared: req.shared,
            listener: None,
            in_syn_queue: false,
            ends: None,
            timer_at: None,
            dirty: false,
            gen: 0,
        });
    }

    /// The application wrote, read, closed or changed an option on connection `id` at `tuple`.
    pub(crate) fn kick(&mut self, now: Instant, tuple: Tuple, id: u64, what: Kick) {
        let Some(&idx) = self.by_tuple.get(&tuple) else { return };
        let e = self.slots[idx].as_mut().expect("indexed slot is live");
        if e.shared.id != id {
            return;
        }
        e.shared.kick_pending.store(false, Ordering::Release);
        match what {
            Kick::Activity => {}
            Kick::Abort => e.conn.abort(now),
            Kick::NoDelay(on) => e.conn.set_nodelay(on),
            Kick::Keepalive(k) => e.conn.set_keepalive(now, k),
        }
        e.conn.on_app_activity(now);
        self.mark_dirty(idx);
    }

    /// Describe every connection and listener (for tools; allocates). Connections carry no
    /// descriptor here: the stack adds them from its descriptor table.
    pub(crate) fn snapshot(&self, worker: usize, out: &mut Vec<SocketInfo>) {
        for e in self.slots.iter().flatten() {
            let (recv_q, send_q) = e.conn.queues();
            out.push(SocketInfo {
                kind: SocketKind::Tcp,
                state: Some(e.conn.state()),
                local: e.conn.local(),
                peer: Some(e.conn.remote()),
                recv_q,
                send_q,
                fd: None,
                worker: Some(worker),
                id: e.shared.id,
                tcp: Some(e.conn.info()),
            });
        }
        for (&(local, peer), e) in self.time_waits.iter() {
            out.push(SocketInfo {
                kind: SocketKind::Tcp,
                state: Some(State::TimeWait),
                local,
                peer: Some(peer),
                recv_q: 0,
                send_q: 0,
                fd: None,
                worker: Some(worker),
                id: e.id,
                tcp: None,
            });
        }
        for l in self.listeners.values() {
            out.push(SocketInfo {
                kind: SocketKind::Tcp,
                state: Some(State::Listen),
                local: l.shared.local,
                peer: None,
                recv_q: l.shared.pending(),
                send_q: l.shared.params.backlog,
                fd: Some(l.shared.fd),
                worker: None,
                id: l.shared.id,
                tcp: None,
            });
        }
    }

    pub(crate) fn listen(&mut self, shared: Arc<ListenerShared>) {
        let p = shared.params;
        let listener = Listener::new(shared.local, self.config.syn_queue.max(1), p.recv_buf, self.mss);
        self.listeners.insert(shared.local, ListenEntry { listener, shared });
    }

    pub(crate) fn unlisten(&mut self, local: SocketAddrV4, id: u64) {
        if self.listeners.get(&local).is_some_and(|l| l.shared.id == id) {
            self.listeners.remove(&local);
        }
    }

    /// Fire due timers.
    pub(crate) fn run_timers(&mut self, now: Instant, stack: &StackShared) {
        while let Some((tuple, e)) = self.time_waits.pop_expired(now) {
            self.counters.tcp_tw.inc();
            if e.release {
                stack.release_tcp_tuple(tuple);
            }
        }
        while let Some(&Reverse((t, idx, gen))) = self.heap.peek() {
            if t > now {
                break;
            }
            self.heap.pop();
            let Some(e) = self.slots.get_mut(idx).and_then(|s| s.as_mut()) else { continue };
            if e.gen != gen || e.timer_at != Some(t) {
                continue; // a stale heap entry
            }
            e.timer_at = None;
            if e.conn.poll_timeout().is_some_and(|due| due <= now) {
                e.conn.on_timeout(now);
            }
            // Either way the connection is flushed, which schedules its next deadline.
            self.mark_dirty(idx);
        }
    }

    /// When the next timer fires.
    pub(crate) fn poll_at(&self) -> Option<Instant> {
        let conns = self.heap.peek().map(|Reverse((t, _, _))| *t);
        conns.into_iter().chain(self.time_waits.next_deadline()).min()
    }

    /// Send what the dirty connections and the stateless replies have, publish events to the
    /// applications, hand established connections to their listeners, and forget finished ones.
    pub(crate) fn flush<T: TxDevice>(
        &mut self,
        now: Instant,
        iface: &mut Interface,
        tx: &mut T,
        stack: &StackShared,
    ) -> usize {
        let work = self.replies.len() + self.dirty.len();
        for (local, remote, repr) in self.replies.drain(..) {
            if repr.flags.contains(TcpFlags::RST) {
                self.counters.tcp_out_rsts.inc();
            }
            self.counters.tcp_out_segs.inc();
            let _ = iface.send_tcp(now, local, remote, &repr, tx, |_| {});
        }
        let mut i = 0;
        while i < self.dirty.len() {
            let idx = self.dirty[i];
            i += 1;
            let Some(e) = self.slots[idx].as_mut() else { continue };
            e.dirty = false;
            let (local, remote) = (e.conn.local(), e.conn.remote());
            while tx.can_transmit() {
                let Some(seg) = e.conn.poll_transmit(now) else { break };
                let conn = &e.conn;
                let _ = iface.send_tcp(now, local, remote, &seg.repr, tx, |buf| {
                    conn.copy_payload(seg.payload_offset, buf)
                });
            }
            if !tx.can_transmit() {
                // Out of TX room: come back next turn.
                e.dirty = true;
                self.dirty.push(idx);
            }
            let ev = e.conn.take_events();
            if ev != 0 {
                e.shared.publish(&e.conn, ev);
            }
            if e.listener.is_some() && e.ends.is_some() && e.conn.state().is_synchronized() {
                self.hand_over(idx, now);
            }
            let e = self.slots[idx].as_mut().expect("still live");
            if e.conn.is_finished() {
                self.remove(idx, stack);
                continue;
            }
            if e.conn.state() == State::TimeWait && tx.can_transmit() && e.ends.is_none() {
                // Everything is said (the last ACK went out): a record keeps the rest of the wait.
                self.retire(idx, now);
                continue;
            }
            // A deadline that moved later needs no new heap entry: the earlier one fires, finds nothing
            // due, and schedules the real one then. Only an earlier deadline is pushed, so the heap
            // does not grow with every ACK that restarts the retransmission timer.
            if let Some(t) = e.conn.poll_timeout() {
                if e.timer_at.is_none_or(|at| t < at) {
                    e.timer_at = Some(t);
                    self.heap.push(Reverse((t, idx, e.gen)));
                }
            }
        }
        self.dirty.clear();
        work
    }

    /// A passive connection finished its handshake: it leaves the SYN queue for the accept queue.
    fn hand_over(&mut self, idx: usize, now: Instant) {
        let e = self.slots[idx].as_mut().expect("live");
        let Some(key) = e.listener else { return };
        let Some(l) = self.listeners.get_mut(&key) else { return };
        let ends = e.ends.take().expect("checked");
        if std::mem::take(&mut e.in_syn_queue) {
            l.listener.syn_queue -= 1;
        }
        if let Err(back) = l.shared.push_accepted(ends) {
            // Cannot happen often (input checks the queue first); the connection cannot be delivered.
            self.counters.listen_overflows.inc();
            drop(back);
            e.conn.abort(now);
        }
        e.listener = None;
    }

    /// The worker stops: every connection still open tells its application that it was aborted.
    pub(crate) fn abandon_all(&mut self) {
        for e in self.slots.iter_mut().flatten() {
            e.conn.abandon();
            e.shared.publish(&e.conn, events::STATE | events::READABLE | events::WRITABLE);
        }
    }

    /// Free slot `idx` and tell the application the connection's final state.
    fn take(&mut self, idx: usize) -> Option<(Tuple, Entry)> {
        let e = self.slots[idx].take()?;
        let tuple = (e.conn.local(), e.conn.remote());
        self.by_tuple.remove(&tuple);
        if let (Some(key), true) = (e.listener, e.in_syn_queue) {
            if let Some(l) = self.listeners.get_mut(&key) {
                l.listener.syn_queue -= 1;
            }
        }
        e.shared.publish(&e.conn, events::STATE | events::READABLE | events::WRITABLE);
        self.gens[idx] = self.gens[idx].wrapping_add(1);
        self.free.push(idx);
        Some((tuple, e))
    }

    /// A connection is finished: forget it.
    fn remove(&mut self, idx: usize, stack: &StackShared) {
        let Some((tuple, e)) = self.take(idx) else { return };
        if e.holds_tuple() {
            stack.release_tcp_tuple(tuple);
        }
    }

    /// A connection in TIME-WAIT has sent its last ACK: a record replaces it (its buffers and
    /// timers go away now, its 4-tuple stays taken until the record ends).
    fn retire(&mut self, idx: usize, now: Instant) {
        let Some((tuple, e)) = self.take(idx) else { return };
        let entry = TimeWaitEntry {
            tw: TimeWait::from_connection(&e.conn, now),
            id: e.shared.id,
            release: e.holds_tuple(),
        };
        self.time_waits.insert(tuple, entry);
    }

    /// A TIME-WAIT record ends before its time (a reset, or a new SYN for its 4-tuple).
    fn end_time_wait(&mut self, tuple: Tuple, stack: &StackShared) {
        if let Some(e) = self.time_waits.remove(&tuple) {
            if e.release {
                stack.release_tcp_tuple(tuple);
            }
        }
    }
}

/// What an application asked of a connection.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kick {
    /// Wrote, read or closed.
    Activity,
    /// Abort with RST.
    Abort,
    /// TCP_NODELAY.
    NoDelay(bool),
    /// SO_KEEPALIVE and its timings.
    Keepalive(Option<crate::tcp::Keepalive>),
}

/// An active open, as the application hands it to the owning worker.
#[derive(Debug)]
pub(crate) struct ConnectRequest {
    pub shared: Arc<TcpShared>,
    pub params: ConnectionParams,
    pub tx: crate::socket::ring::Consumer,
    pub rx: crate::socket::ring::Producer,
}

//! ARP (RFC 826): answering for our addresses, resolving next hops with retried requests, a cache whose
//! entries are re-confirmed when they age, a bounded queue of datagrams waiting on a resolution, and a
//! gratuitous announcement at start.

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::{IfaceConfig, Interface};
use crate::counters::Counters;
use crate::phy::TxDevice;
use crate::wire::{ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress};

/// ARP timings and limits.
#[derive(Debug, Clone)]
pub struct ArpConfig {
    /// How long an entry is used without re-confirmation. After that it is still used while a
    /// refresh request goes out; it is removed only if the refresh goes unanswered.
    pub reachable: Duration,
    /// Time between requests for one address.
    pub retry_interval: Duration,
    /// Requests sent before a resolution (or refresh) gives up.
    pub max_requests: u32,
    /// Datagrams queued per address being resolved (older ones are dropped first).
    pub queue_per_neighbor: usize,
    /// Addresses being resolved at once.
    pub max_pending: usize,
    /// Cache entries.
    pub max_entries: usize,
}

impl Default for ArpConfig {
    fn default() -> Self {
        ArpConfig {
            reachable: super::DEFAULT_NEIGHBOR_REACHABLE,
            retry_interval: Duration::from_secs(1),
            max_requests: 3,
            queue_per_neighbor: 16,
            max_pending: 256,
            max_entries: 4096,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Probe {
    sent: u32,
    next: Instant,
}

#[derive(Debug)]
struct Neighbor {
    mac: EthernetAddress,
    confirmed: Instant,
    refresh: Option<Probe>,
}

#[derive(Debug)]
struct Pending {
    queue: VecDeque<Vec<u8>>,
    probe: Probe,
}

/// The neighbour cache and the resolutions in progress.
#[derive(Debug)]
pub(crate) struct ArpCache {
    config: ArpConfig,
    entries: HashMap<Ipv4Addr, Neighbor>,
    pending: HashMap<Ipv4Addr, Pending>,
}

/// What [`ArpCache::enqueue`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Enqueued {
    /// Queued behind a resolution already in progress.
    Queued,
    /// Queued and a new resolution started: send a request now.
    NewResolution,
    /// The queue was full; the oldest datagram was dropped to make room.
    DroppedOldest,
    /// Too many resolutions in progress; the datagram was dropped.
    Refused,
}

impl ArpCache {
    pub(crate) fn new(config: ArpConfig) -> ArpCache {
        ArpCache { config, entries: HashMap::new(), pending: HashMap::new() }
    }

    /// The MAC of `ip`, if known. An aged entry is still returned, and schedules a refresh.
    pub(crate) fn lookup(&mut self, now: Instant, ip: Ipv4Addr) -> Option<EthernetAddress> {
        let n = self.entries.get_mut(&ip)?;
        if n.refresh.is_none() && now.saturating_duration_since(n.confirmed) >= self.config.reachable {
            n.refresh = Some(Probe { sent: 0, next: now });
        }
        Some(n.mac)
    }

    /// Record `ip` at `mac`; returns the datagrams that waited on it, and whether the entry is new or
    /// changed (worth telling other workers).
    pub(crate) fn insert(
        &mut self,
        now: Instant,
        ip: Ipv4Addr,
        mac: EthernetAddress,
    ) -> (Option<VecDeque<Vec<u8>>>, bool) {
        if !self.entries.contains_key(&ip) && self.entries.len() >= self.config.max_entries {
            self.evict_oldest();
        }
        let changed = match self.entries.insert(ip, Neighbor { mac, confirmed: now, refresh: None }) {
            Some(old) => old.mac != mac,
            None => true,
        };
        (self.pending.remove(&ip).map(|p| p.queue), changed)
    }

    /// Is `ip` in the cache (whatever its age)?
    pub(crate) fn contains(&self, ip: Ipv4Addr) -> bool {
        self.entries.contains_key(&ip)
    }

    fn evict_oldest(&mut self) {
        if let Some(ip) = self.entries.iter().min_by_key(|(_, n)| n.confirmed).map(|(ip, _)| *ip) {
            self.entries.remove(&ip);
        }
    }

    /// Queue a datagram (a complete IPv4 datagram, possibly larger than the MTU) until `ip` resolves.
    pub(crate) fn enqueue(&mut self, now: Instant, ip: Ipv4Addr, datagram: Vec<u8>) -> Enqueued {
        if let Some(p) = self.pending.get_mut(&ip) {
            let dropped = p.queue.len() >= self.config.queue_per_neighbor;
            if dropped {
                p.queue.pop_front();
            }
            p.queue.push_back(datagram);
            return if dropped { Enqueued::DroppedOldest } else { Enqueued::Queued };
        }
        if self.pending.len() >= self.config.max_pending {
            return Enqueued::Refused;
        }
        let probe = Probe { sent: 1, next: now + self.config.retry_interval };
        self.pending.insert(ip, Pending { queue: VecDeque::from([datagram]), probe });
        Enqueued::NewResolution
    }

    pub(crate) fn poll_at(&self) -> Option<Instant> {
        let pending = self.pending.values().map(|p| p.probe.next);
        let refresh = self.entries.values().filter_map(|n| n.refresh.map(|r| r.next));
        pending.chain(refresh).min()
    }
}

/// Our address on the prefix that holds `target` (or our first address): the ARP sender address.
fn source_for(config: &IfaceConfig, target: Ipv4Addr) -> Option<Ipv4Addr> {
    config.addrs.iter().find(|c| c.contains_addr(target)).or(config.addrs.first()).map(|c| c.address())
}

/// Send one ARP packet.
fn send_arp<T: TxDevice>(
    config: &IfaceConfig,
    counters: &Counters,
    tx: &mut T,
    eth_dst: EthernetAddress,
    repr: &ArpRepr,
) {
    let eth = crate::wire::EthernetRepr {
        src: config.mac,
        dst: eth_dst,
        ethertype: EtherType::Arp,
        vlan: config.vlan,
    };
    let hlen = eth.header_len();
    // Pad to the Ethernet minimum (60 bytes without FCS) as a NIC would.
    let len = (hlen + repr.buffer_len()).max(60);
    let sent = tx.transmit(len, |buf| {
        buf[..len].fill(0);
        eth.emit(&mut crate::wire::EthernetFrame::new_unchecked(&mut buf[..hlen]));
        repr.emit(&mut ArpPacket::new_unchecked(&mut buf[hlen..hlen + repr.buffer_len()]));
        len
    });
    match sent {
        Ok(()) => counters.eth_out_frames.inc(),
        Err(_) => counters.eth_out_dropped.inc(),
    }
}

fn request_repr(config: &IfaceConfig, target: Ipv4Addr) -> Option<ArpRepr> {
    Some(ArpRepr {
        operation: ArpOperation::Request,
        source_hardware_addr: config.mac,
        source_protocol_addr: source_for(config, target)?,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target,
    })
}

impl Interface {
    pub(super) fn process_arp<T: TxDevice>(&mut self, now: Instant, payload: &[u8], tx: &mut T) {
        let c = self.counters.clone();
        let repr = match ArpPacket::new_checked(payload).and_then(|p| ArpRepr::parse(&p)) {
            Ok(r) => r,
            Err(_) => return c.arp_in_malformed.inc(),
        };
        match repr.operation {
            ArpOperation::Request => c.arp_in_requests.inc(),
            ArpOperation::Reply => c.arp_in_replies.inc(),
            _ => return c.arp_in_malformed.inc(),
        }
        let sender = repr.source_protocol_addr;
        let for_us = self.has_addr(repr.target_protocol_addr);
        let on_link = self.config.addrs.iter().any(|p| p.contains_addr(sender));
        let usable_sender = on_link
            && !sender.is_unspecified()
            && !self.is_broadcast(sender)
            && !self.has_addr(sender)
            && repr.source_hardware_addr.is_unicast();
        // RFC 826: update an existing entry from any ARP packet; add one only when we are the target.
        if usable_sender && (for_us || self.arp.contains(sender)) {
            self.learn_from_wire(now, sender, repr.source_hardware_addr, tx);
        }
        if !for_us {
            return c.arp_in_not_for_us.inc();
        }
        if repr.operation == ArpOperation::Request && !self.config.shared_address {
            let reply = ArpRepr {
                operation: ArpOperation::Reply,
                source_hardware_addr: self.config.mac,
                source_protocol_addr: repr.target_protocol_addr,
                target_hardware_addr: repr.source_hardware_addr,
                target_protocol_addr: repr.source_protocol_addr,
            };
            send_arp(&self.config, &c, tx, repr.source_hardware_addr, &reply);
            c.arp_out_replies.inc();
        }
    }

    /// A neighbour this worker learned first-hand (from the wire, or from the kernel's table in
    /// shared-address mode): cache it, flush what waited on it, and remember it for the other workers.
    pub fn learn_from_wire<T: TxDevice>(
        &mut self,
        now: Instant,
        ip: Ipv4Addr,
        mac: EthernetAddress,
        tx: &mut T,
    ) {
        if self.apply_neighbor(now, ip, mac, tx) {
            self.learned.push((ip, mac));
        }
    }

    /// A neighbour learned by another worker.
    pub fn learn<T: TxDevice>(&mut self, now: Instant, ip: Ipv4Addr, mac: EthernetAddress, tx: &mut T) {
        self.apply_neighbor(now, ip, mac, tx);
    }

    /// Returns true when the entry is new or its MAC changed.
    fn apply_neighbor<T: TxDevice>(
        &mut self,
        now: Instant,
        ip: Ipv4Addr,
        mac: EthernetAddress,
        tx: &mut T,
    ) -> bool {
        let (waiting, changed) = self.arp.insert(now, ip, mac);
        for datagram in waiting.into_iter().flatten() {
            // A failure (TX full) is counted where it happens; the datagram is gone either way.
            let _ = self.transmit_datagram(mac, &datagram, tx);
        }
        changed
    }

    /// Ask for `target`'s MAC now: an ARP request to `eth_dst` (broadcast, or the cached MAC when
    /// re-confirming), or in shared-address mode a resolution by the kernel, which the worker performs
    /// (see [`Interface::take_kernel_resolutions`]).
    pub(super) fn request_neighbor<T: TxDevice>(
        &mut self,
        target: Ipv4Addr,
        eth_dst: EthernetAddress,
        tx: &mut T,
    ) {
        if self.config.shared_address {
            if !self.kernel_resolve.contains(&target) {
                self.kernel_resolve.push(target);
            }
            return;
        }
        if let Some(req) = request_repr(&self.config, target) {
            send_arp(&self.config, &self.counters, tx, eth_dst, &req);
            self.counters.arp_out_requests.inc();
        }
    }

    /// Shared-address mode: addresses to resolve through the kernel's neighbour table. The worker looks
    /// each up (and asks the kernel to resolve it when missing) and reports answers with
    /// [`Interface::learn_from_wire`].
    pub fn take_kernel_resolutions(&mut self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.kernel_resolve.drain(..)
    }

    /// Gratuitous ARP (a request for our own address, RFC 5227 §3 "announcement") for each address, so
    /// that neighbours update stale entries. Not sent in shared-address mode (the kernel owns ARP).
    pub fn announce<T: TxDevice>(&self, tx: &mut T) {
        if self.config.shared_address {
            return;
        }
        for cidr in &self.config.addrs {
            let repr = ArpRepr {
                operation: ArpOperation::Request,
                source_hardware_addr: self.config.mac,
                source_protocol_addr: cidr.address(),
                target_hardware_addr: EthernetAddress([0; 6]),
                target_protocol_addr: cidr.address(),
            };
            send_arp(&self.config, &self.counters, tx, EthernetAddress::BROADCAST, &repr);
            self.counters.arp_out_requests.inc();
        }
    }

    /// Retries, refreshes and give-ups of resolutions.
    pub(super) fn poll_arp<T: TxDevice>(&mut self, now: Instant, tx: &mut T) {
        let cfg = &self.config.arp;
        let mut due: Vec<(Ipv4Addr, EthernetAddress)> = Vec::new();
        let mut failed: Vec<Ipv4Addr> = Vec::new();
        for (ip, p) in self.arp.pending.iter_mut().filter(|(_, p)| p.probe.next <= now) {
            if p.probe.sent >= cfg.max_requests {
                failed.push(*ip);
            } else {
                p.probe.sent += 1;
                p.probe.next = now + cfg.retry_interval;
                due.push((*ip, EthernetAddress::BROADCAST));
            }
        }
        let mut dead: Vec<Ipv4Addr> = Vec::new();
        for (ip, n) in self.arp.entries.iter_mut() {
            let Some(r) = n.refresh.as_mut().filter(|r| r.next <= now) else {
                continue;
            };
            if r.sent >= cfg.max_requests {
                dead.push(*ip);
            } else {
                r.sent += 1;
                r.next = now + cfg.retry_interval;
                // RFC 1122 §2.3.2.1: re-validate with a unicast poll to the cached address.
                due.push((*ip, n.mac));
            }
        }
        for ip in failed {
            if let Some(p) = self.arp.pending.remove(&ip) {
                self.counters.arp_resolve_failed.inc();
                self.counters.arp_queue_drops.add(p.queue.len() as u64);
            }
        }
        for ip in dead {
            self.arp.entries.remove(&ip);
            self.counters.arp_resolve_failed.inc();
        }
        for (ip, dst) in due {
            self.request_neighbor(ip, dst, tx);
        }
    }
}

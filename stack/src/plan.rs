//! Which worker binds which queue: the socket plan shared by the stack and the XDP program.
//!
//! Every worker has one AF_XDP socket on every RX queue, so each queue carries `workers` sockets
//! (`socks_per_queue` = workers) and the XDP program picks among them by flow hash:
//! `XSKMAP[queue * workers + flow_hash % workers]`, where the slot number *is* the worker index. A flow
//! therefore reaches the same worker whichever queue the NIC (or the veth peer) puts it on, and user
//! space knows its owner in advance: `flow_hash(..) % workers`. No frame ever moves between workers.
//!
//! The sockets of one queue share its fill and completion rings (shared UMEM); the first socket of
//! queue `q`, which owns them, belongs to worker `q % workers`, so that the ring work is spread.

use std::io;

/// One AF_XDP socket to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketSlot {
    /// The worker that owns it.
    pub worker: usize,
    /// The RX queue it binds.
    pub queue: u32,
    /// Its slot among the sockets of that queue (equal to `worker`).
    pub slot: u32,
    /// Its XSKMAP index.
    pub xskmap_index: u32,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Sockets per queue (= workers).
    pub socks_per_queue: u32,
    /// Every socket, in creation order: for each queue, the one that owns its fill ring first.
    pub sockets: Vec<SocketSlot>,
}

impl Plan {
    /// Plan `workers` workers over `queues` queues; the XSKMAP holds `max_sockets` entries.
    pub fn new(queues: u32, workers: usize, max_sockets: u32) -> io::Result<Plan> {
        let w = workers as u32;
        if w == 0 || queues == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "need at least one worker and one queue",
            ));
        }
        if queues.saturating_mul(w) > max_sockets {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{workers} workers on {queues} queues need {} AF_XDP sockets, more than the XSKMAP's \
                     {max_sockets}: use fewer workers, or fewer queues (ethtool -L)",
                    queues.saturating_mul(w)
                ),
            ));
        }
        let mut sockets = Vec::with_capacity((queues * w) as usize);
        for q in 0..queues {
            let owner = q % w;
            let order = std::iter::once(owner).chain((0..w).filter(|x| *x != owner));
            for wk in order {
                sockets.push(SocketSlot {
                    worker: wk as usize,
                    queue: q,
                    slot: wk,
                    xskmap_index: q * w + wk,
                });
            }
        }
        Ok(Plan { socks_per_queue: w, sockets })
    }

    /// The sockets of worker `w`.
    pub fn of_worker(&self, w: usize) -> impl Iterator<Item = &SocketSlot> {
        self.sockets.iter().filter(move |s| s.worker == w)
    }

    /// The worker that handles a flow with this hash (`xdp_prog::flow_hash`).
    pub fn owner(&self, flow_hash: u32) -> usize {
        (flow_hash % self.socks_per_queue) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_worker_has_a_socket_on_every_queue() {
        let p = Plan::new(4, 2, 64).unwrap();
        assert_eq!(p.socks_per_queue, 2);
        for w in 0..2 {
            let qs: Vec<u32> = p.of_worker(w).map(|s| s.queue).collect();
            assert_eq!(qs, vec![0, 1, 2, 3]);
        }
        let mut idx: Vec<u32> = p.sockets.iter().map(|s| s.xskmap_index).collect();
        idx.sort_unstable();
        assert_eq!(idx, (0..8).collect::<Vec<_>>());
        // The XDP program's slot is the worker.
        assert!(p
            .sockets
            .iter()
            .all(|s| s.slot as usize == s.worker && s.xskmap_index == s.queue * 2 + s.slot));
    }

    #[test]
    fn fill_ring_owners_are_spread_and_come_first() {
        let p = Plan::new(4, 2, 64).unwrap();
        for q in 0..4 {
            let first = p.sockets.iter().find(|s| s.queue == q).unwrap();
            assert_eq!(first.worker, (q % 2) as usize);
        }
        let one = Plan::new(1, 1, 64).unwrap();
        assert_eq!(one.sockets, vec![SocketSlot { worker: 0, queue: 0, slot: 0, xskmap_index: 0 }]);
    }

    #[test]
    fn oversized_and_empty_plans_are_refused() {
        assert!(Plan::new(64, 2, 64).unwrap_err().to_string().contains("XSKMAP"));
        assert!(Plan::new(1, 0, 64).is_err());
        assert_eq!(Plan::new(3, 2, 64).unwrap().sockets.len(), 6);
    }
}

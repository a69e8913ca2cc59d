//! Which worker binds which queue: the socket plan shared by the stack and the XDP program.
//!
//! With `W` workers and `Q` RX queues:
//! - `W <= Q`: worker `w` owns queues `q` with `q % W == w`, one socket each (`socks_per_queue` = 1);
//! - `W > Q` (and `W % Q == 0`): `W / Q` sockets share each queue through a shared UMEM; worker `w`
//!   binds queue `w % Q` in slot `w / Q`, and the XDP program picks the slot by flow hash.
//!
//! The XSKMAP index of a socket is `queue * socks_per_queue + slot`.

use std::io;

/// One AF_XDP socket to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketSlot {
    /// The worker that owns it.
    pub worker: usize,
    /// The RX queue it binds.
    pub queue: u32,
    /// Its slot among the sockets of that queue.
    pub slot: u32,
    /// Its XSKMAP index.
    pub xskmap_index: u32,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Sockets per queue.
    pub socks_per_queue: u32,
    /// Every socket, in creation order (the first socket on each queue comes first).
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
        let (spq, sockets) = if w <= queues {
            let s = (0..queues)
                .map(|q| SocketSlot {
                    worker: (q % w) as usize,
                    queue: q,
                    slot: 0,
                    xskmap_index: q,
                })
                .collect();
            (1, s)
        } else {
            if w % queues != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{workers} workers cannot share {queues} RX queues evenly: use a multiple of {queues} \
                         workers, or at most {queues}"
                    ),
                ));
            }
            let spq = w / queues;
            let mut s: Vec<SocketSlot> = (0..w)
                .map(|wk| {
                    let (q, slot) = (wk % queues, wk / queues);
                    SocketSlot {
                        worker: wk as usize,
                        queue: q,
                        slot,
                        xskmap_index: q * spq + slot,
                    }
                })
                .collect();
            s.sort_by_key(|x| (x.slot, x.queue));
            (spq, s)
        };
        if queues * spq > max_sockets {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} sockets exceed the XSKMAP size {max_sockets}",
                    queues * spq
                ),
            ));
        }
        Ok(Plan {
            socks_per_queue: spq,
            sockets,
        })
    }

    /// The sockets of worker `w`.
    pub fn of_worker(&self, w: usize) -> impl Iterator<Item = &SocketSlot> {
        self.sockets.iter().filter(move |s| s.worker == w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fewer_workers_than_queues() {
        let p = Plan::new(4, 2, 64).unwrap();
        assert_eq!(p.socks_per_queue, 1);
        let w0: Vec<u32> = p.of_worker(0).map(|s| s.queue).collect();
        let w1: Vec<u32> = p.of_worker(1).map(|s| s.queue).collect();
        assert_eq!((w0, w1), (vec![0, 2], vec![1, 3]));
        assert!(p.sockets.iter().all(|s| s.xskmap_index == s.queue));
    }

    #[test]
    fn more_workers_share_queues() {
        let p = Plan::new(1, 2, 64).unwrap();
        assert_eq!(p.socks_per_queue, 2);
        assert_eq!(
            p.sockets[0],
            SocketSlot {
                worker: 0,
                queue: 0,
                slot: 0,
                xskmap_index: 0
            }
        );
        assert_eq!(
            p.sockets[1],
            SocketSlot {
                worker: 1,
                queue: 0,
                slot: 1,
                xskmap_index: 1
            }
        );
        let p = Plan::new(2, 4, 64).unwrap();
        let mut idx: Vec<u32> = p.sockets.iter().map(|s| s.xskmap_index).collect();
        idx.sort_unstable();
        assert_eq!(idx, vec![0, 1, 2, 3]);
        // The first socket of every queue comes before the others (it owns the fill ring).
        assert!(p.sockets[..2].iter().all(|s| s.slot == 0));
    }

    #[test]
    fn uneven_and_oversized_plans_are_refused() {
        assert!(Plan::new(2, 3, 64)
            .unwrap_err()
            .to_string()
            .contains("multiple of 2"));
        assert!(Plan::new(64, 128, 64).is_err());
        assert!(Plan::new(1, 0, 64).is_err());
    }
}

//! Seeing a running stack from outside: the socket table, the control socket, and the
//! `/proc/net`-format files.
//!
//! A bypass stack hides its traffic from `ss`, `nstat` and `/proc/net/tcp`, because the kernel never
//! sees the sockets. So the stack brings its own, in the shapes people and scripts already know:
//!
//! - [`SocketInfo`] rows, gathered from the workers themselves ([`crate::Stack::socket_table`]): the
//!   workers own the TCP connections (including those no descriptor names any more, such as
//!   TIME-WAIT after a close, or SYN-RECV half-open ones), so a snapshot is a command to each worker,
//!   answered through a one-shot channel. The worker allocates the answer only when asked; nothing of
//!   this runs on the packet path.
//! - [`control`]: a Unix stream socket `RUN_DIR/NAME/control` that answers versioned text requests
//!   (`sockets`, `counters`, `info`); `xdpstack ss` and `xdpstack stat` are its clients
//!   ([`client`]).
//! - [`procnet`]: the tables in the exact text format of Linux's `/proc/net/tcp`, `/proc/net/udp` and
//!   `/proc/net/raw`, kept fresh under `RUN_DIR/NAME/net/`.

pub mod client;
pub mod control;
pub mod procnet;
pub mod protocol;

use std::io;
use std::net::SocketAddrV4;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::stack::{StackShared, Wait};
use crate::tcp::conn::TcpInfo;
use crate::tcp::State;
use crate::worker::Command;

/// What kind of socket a row describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SocketKind {
    /// A TCP connection or listener.
    Tcp,
    /// A UDP socket.
    Udp,
    /// A raw IP socket for this IP protocol number.
    Raw(u8),
}

impl SocketKind {
    /// The `Netid` column of `ss`.
    pub fn netid(self) -> &'static str {
        match self {
            SocketKind::Tcp => "tcp",
            SocketKind::Udp => "udp",
            SocketKind::Raw(_) => "raw",
        }
    }
}

/// One socket of a running stack, as `ss` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketInfo {
    /// Protocol.
    pub kind: SocketKind,
    /// TCP state (LISTEN for listeners); None for UDP and raw sockets.
    pub state: Option<State>,
    /// Local socket address (`0.0.0.0:port` for a wildcard binding).
    pub local: SocketAddrV4,
    /// Peer socket address of a connection or a connected datagram socket.
    pub peer: Option<SocketAddrV4>,
    /// Bytes received and not yet read (TCP; UDP and raw payload bytes queued), connections waiting
    /// to be accepted (listener).
    pub recv_q: usize,
    /// Bytes not yet acknowledged (TCP); the backlog (listener); 0 otherwise.
    pub send_q: usize,
    /// The descriptor, while the application holds one (None: TIME-WAIT after close, half-open or
    /// not yet accepted connections).
    pub fd: Option<i32>,
    /// The worker that owns the socket (None: every worker has it, as listeners).
    pub worker: Option<usize>,
    /// A number unique over the stack's life (the `inode` column of the `/proc` files).
    pub id: u64,
    /// TCP internals (connections only).
    pub tcp: Option<TcpInfo>,
}

impl SocketInfo {
    /// The state name `ss` prints: TCP states as `ss` names them, `UNCONN` for an unconnected
    /// datagram socket and `ESTAB` for a connected one.
    pub fn state_name(&self) -> &'static str {
        match self.state {
            Some(s) => s.ss_name(),
            None if self.peer.is_some() => "ESTAB",
            None => "UNCONN",
        }
    }

    /// The state as Linux numbers it (`include/net/tcp_states.h`): datagram sockets are
    /// ESTABLISHED (1) when connected, CLOSE (7) otherwise.
    pub fn linux_state(&self) -> u8 {
        match self.state {
            Some(s) => s.linux_number(),
            None if self.peer.is_some() => 1,
            None => 7,
        }
    }
}

/// One worker's answer to a snapshot command.
#[derive(Debug)]
pub(crate) struct WorkerSnapshot {
    pub rows: Vec<SocketInfo>,
}

/// How long a snapshot waits for the workers.
pub(crate) const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(2);

/// Ask every worker to describe its sockets, and put the rows together with the descriptors the
/// application holds. Listeners and UDP sockets, which every worker has, appear once.
pub(crate) fn socket_table(shared: &StackShared, timeout: Duration) -> io::Result<Vec<SocketInfo>> {
    let deadline = Instant::now() + timeout;
    let n = shared.workers.len();
    let (tx, rx) = mpsc::sync_channel(n);
    for w in 0..n {
        shared.push_command(w, Command::Snapshot(tx.clone()), Wait::Until(deadline))?;
    }
    drop(tx);
    let mut rows: Vec<SocketInfo> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut answered = 0;
    while answered < n {
        // Run to completion: the worker runs only when someone drives it.
        shared.drive();
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{} of {n} workers did not describe their sockets within {timeout:?}", n - answered),
            ));
        }
        let step = if shared.is_inline() { left.min(Duration::from_millis(1)) } else { left };
        match rx.recv_timeout(step) {
            Ok(snap) => {
                answered += 1;
                for row in snap.rows {
                    let dup = row.kind != SocketKind::Tcp || row.state == Some(State::Listen);
                    if dup && !seen.insert((row.kind, row.id)) {
                        continue;
                    }
                    rows.push(row);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                shared.check_running()?;
                return Err(io::Error::other("a worker dropped its snapshot answer"));
            }
        }
    }
    shared.name_connections(&mut rows);
    rows.sort_by_key(|r| (r.kind, r.state.map(State::linux_number), r.local, r.peer, r.id));
    Ok(rows)
}

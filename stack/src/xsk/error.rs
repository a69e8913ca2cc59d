//! Errors of AF_XDP setup and transmit, each with a message that names the fix.

use std::fmt;
use std::io;

/// Why an AF_XDP UMEM or socket could not be set up.
#[derive(Debug)]
#[non_exhaustive]
pub enum XskError {
    /// The kernel refused for lack of privilege (EPERM/EACCES).
    NoPrivilege {
        /// The operation that failed.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// Registering the UMEM failed because its pages could not be locked (ENOBUFS/ENOMEM/EPERM).
    UmemMemory {
        /// Size of the frame area.
        bytes: usize,
        /// The OS error.
        source: io::Error,
    },
    /// The kernel has no AF_XDP support (EAFNOSUPPORT).
    Unsupported,
    /// No interface has this index in the calling thread's network namespace.
    NoSuchInterface {
        /// The index asked for.
        ifindex: u32,
    },
    /// The interface has fewer queues than the queue id asked for.
    NoSuchQueue {
        /// The interface.
        ifindex: u32,
        /// Its name, if known.
        ifname: Option<String>,
        /// The queue id asked for.
        queue_id: u32,
        /// How many queues the interface has, if it could be read.
        queues: Option<u32>,
    },
    /// Another UMEM (another AF_XDP program or socket set) owns the queue (EBUSY after retries).
    QueueBusy {
        /// The interface.
        ifindex: u32,
        /// The queue.
        queue_id: u32,
    },
    /// `BindMode::ZeroCopy` was asked for and the driver cannot do it (EOPNOTSUPP).
    ZeroCopyUnsupported {
        /// The interface.
        ifindex: u32,
        /// The queue.
        queue_id: u32,
    },
    /// A configuration value the kernel would reject, or a misuse of the API.
    InvalidConfig(String),
    /// Any other failing system call.
    Os {
        /// The operation that failed.
        op: &'static str,
        /// A hint at the likely cause, or "".
        hint: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

impl fmt::Display for XskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XskError::NoPrivilege { op, source } => write!(
                f,
                "{op}: {source}; AF_XDP sockets need root or CAP_NET_RAW \
                 (and CAP_NET_ADMIN + CAP_BPF to attach the XDP program)"
            ),
            XskError::UmemMemory { bytes, source } => write!(
                f,
                "registering the {bytes}-byte UMEM failed: {source}; the frame area is locked memory: \
                 run as root with CAP_IPC_LOCK, raise RLIMIT_MEMLOCK (`ulimit -l`), or use fewer frames"
            ),
            XskError::Unsupported => {
                write!(f, "this kernel has no AF_XDP sockets (build it with CONFIG_XDP_SOCKETS=y)")
            }
            XskError::NoSuchInterface { ifindex } => write!(
                f,
                "no network interface with index {ifindex} in this network namespace; check \
                 `ip link` and create the socket inside the interface's namespace"
            ),
            XskError::NoSuchQueue { ifindex, ifname, queue_id, queues } => {
                let name = ifname.as_deref().unwrap_or("?");
                write!(f, "interface {name} (index {ifindex}) has no queue {queue_id}")?;
                if let Some(n) = queues {
                    write!(f, ": it has {n} queue(s), ids 0..={}", n.saturating_sub(1))?;
                }
                write!(
                    f,
                    "; use a smaller queue id or add queues (`ethtool -L {name} combined N`; \
                     `numrxqueues`/`numtxqueues` for veth)"
                )
            }
            XskError::QueueBusy { ifindex, queue_id } => write!(
                f,
                "queue {queue_id} of interface {ifindex} is busy: another AF_XDP socket owns it \
                 (another program or xdpstack instance on this interface, or one still tearing \
                 down); stop that one first"
            ),
            XskError::ZeroCopyUnsupported { ifindex, queue_id } => write!(
                f,
                "the driver of interface {ifindex} cannot do AF_XDP zero-copy on queue {queue_id}; \
                 use BindMode::Copy or BindMode::Auto"
            ),
            XskError::InvalidConfig(why) => write!(f, "invalid AF_XDP configuration: {why}"),
            XskError::Os { op, hint, source } => {
                write!(f, "{op}: {source}")?;
                if !hint.is_empty() {
                    write!(f, " ({hint})")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for XskError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            XskError::NoPrivilege { source, .. }
            | XskError::UmemMemory { source, .. }
            | XskError::Os { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl XskError {
    /// The `io::ErrorKind` this error converts to.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            XskError::NoPrivilege { .. } => io::ErrorKind::PermissionDenied,
            XskError::UmemMemory { .. } => io::ErrorKind::OutOfMemory,
            XskError::Unsupported | XskError::ZeroCopyUnsupported { .. } => io::ErrorKind::Unsupported,
            XskError::NoSuchInterface { .. } | XskError::NoSuchQueue { .. } => io::ErrorKind::NotFound,
            XskError::QueueBusy { .. } => io::ErrorKind::ResourceBusy,
            XskError::InvalidConfig(_) => io::ErrorKind::InvalidInput,
            XskError::Os { source, .. } => source.kind(),
        }
    }
}

impl From<XskError> for io::Error {
    fn from(e: XskError) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

/// Why [`XskSocket::transmit`](super::XskSocket::transmit) queued nothing. The frame, if one was
/// taken, is back in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxError {
    /// The socket was created without a TX ring.
    NoTxRing,
    /// The TX ring is full: flush, reap completions, and try again.
    RingFull,
    /// The frame pool is empty: reap completions (or recycle RX frames) and try again.
    NoFrame,
    /// The fill closure returned a length longer than the buffer it was given.
    TooLong {
        /// Length returned.
        len: usize,
        /// Buffer length.
        max: usize,
    },
    /// The pool belongs to another UMEM than the socket.
    ForeignPool,
}

impl fmt::Display for TxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxError::NoTxRing => write!(f, "the AF_XDP socket has no TX ring (tx_size 0)"),
            TxError::RingFull => write!(f, "the TX ring is full; flush and reap completions"),
            TxError::NoFrame => write!(f, "no free UMEM frame; reap completions first"),
            TxError::TooLong { len, max } => {
                write!(f, "frame length {len} exceeds the {max}-byte buffer")
            }
            TxError::ForeignPool => write!(f, "the frame pool belongs to another UMEM"),
        }
    }
}

impl std::error::Error for TxError {}

impl From<TxError> for io::Error {
    fn from(e: TxError) -> io::Error {
        let kind = match e {
            TxError::RingFull | TxError::NoFrame => io::ErrorKind::WouldBlock,
            TxError::NoTxRing => io::ErrorKind::Unsupported,
            TxError::TooLong { .. } | TxError::ForeignPool => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_keep_kind_and_message() {
        let e: io::Error = XskError::QueueBusy { ifindex: 3, queue_id: 1 }.into();
        assert_eq!(e.kind(), io::ErrorKind::ResourceBusy);
        assert!(e.to_string().contains("queue 1 of interface 3 is busy"));
        let e: io::Error =
            XskError::NoSuchQueue { ifindex: 4, ifname: Some("veth0".into()), queue_id: 9, queues: Some(2) }
                .into();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("has 2 queue(s), ids 0..=1"), "{e}");
        let e: io::Error = TxError::RingFull.into();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }
}

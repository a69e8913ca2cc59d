//! One error type, one clear message per failure a user can fix.

use std::fmt;
use std::io;

/// Why a [`Steering`](crate::Steering) or [`Lossy`](crate::Lossy) operation failed.
///
/// The common failures have their own variant whose message names the fix; everything else is
/// [`Error::Bpf`] with the operation and the kernel's (or libbpf's) error.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The kernel said EPERM: loading and attaching XDP needs privilege.
    NoPrivilege {
        /// What was being done, e.g. "load the XDP program".
        action: String,
    },
    /// Another XDP program (or link) already sits on the interface (EEXIST / EBUSY).
    AlreadyAttached {
        /// Interface index.
        ifindex: u32,
        /// Interface name.
        ifname: String,
        /// The program that is attached, if the query found one.
        program_id: Option<u32>,
    },
    /// Native XDP refused the interface's MTU (ERANGE: on veth, the peer's MTU is above what
    /// native XDP can handle).
    MtuTooLarge {
        /// Interface index.
        ifindex: u32,
        /// Interface name.
        ifname: String,
    },
    /// No interface with that index in the calling thread's network namespace.
    NoSuchInterface {
        /// The index asked for.
        ifindex: u32,
    },
    /// An argument out of range (a socket index beyond the XSKMAP, ...).
    InvalidArgument(String),
    /// Any other failure of a BPF operation.
    Bpf {
        /// What was being done.
        action: String,
        /// The underlying error.
        source: io::Error,
    },
}

/// The fix for missing privilege, shared by every message that needs it.
const PRIVILEGE_HINT: &str = "run as root, or grant CAP_BPF and CAP_NET_ADMIN";

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoPrivilege { action } => {
                write!(f, "cannot {action}: permission denied; {PRIVILEGE_HINT}")
            }
            Error::AlreadyAttached { ifname, ifindex, program_id } => {
                write!(f, "cannot attach XDP to {ifname} (ifindex {ifindex}): ")?;
                match program_id {
                    Some(id) => write!(f, "XDP program {id} is already attached")?,
                    None => write!(f, "another XDP program is already attached")?,
                }
                write!(
                    f,
                    "; remove it with `ip link set dev {ifname} xdp off` \
                     (or stop the process that holds its BPF link)"
                )
            }
            Error::MtuTooLarge { ifname, ifindex } => write!(
                f,
                "cannot attach native XDP to {ifname} (ifindex {ifindex}): the MTU is too large for \
                 native XDP (on veth the peer's MTU counts, ~3500 at most); lower the MTU of both \
                 ends or use generic mode"
            ),
            Error::NoSuchInterface { ifindex } => {
                write!(f, "no network interface with index {ifindex} in this network namespace")
            }
            Error::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            Error::Bpf { action, source } => write!(f, "cannot {action}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Bpf { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        let kind = match &err {
            Error::NoPrivilege { .. } => io::ErrorKind::PermissionDenied,
            Error::AlreadyAttached { .. } => io::ErrorKind::AlreadyExists,
            Error::MtuTooLarge { .. } | Error::InvalidArgument(_) => io::ErrorKind::InvalidInput,
            Error::NoSuchInterface { .. } => io::ErrorKind::NotFound,
            Error::Bpf { source, .. } => source.kind(),
        };
        io::Error::new(kind, err)
    }
}

impl Error {
    /// Wrap a libbpf-rs error of `action`, recognising missing privilege.
    pub(crate) fn from_libbpf(action: impl Into<String>, err: libbpf_rs::Error) -> Error {
        let action = action.into();
        if err.kind() == libbpf_rs::ErrorKind::PermissionDenied {
            return Error::NoPrivilege { action };
        }
        let kind = match err.kind() {
            libbpf_rs::ErrorKind::NotFound => io::ErrorKind::NotFound,
            libbpf_rs::ErrorKind::InvalidInput => io::ErrorKind::InvalidInput,
            libbpf_rs::ErrorKind::OutOfMemory => io::ErrorKind::OutOfMemory,
            _ => io::ErrorKind::Other,
        };
        // `{:#}` keeps libbpf-rs's whole context chain in the message.
        let source = io::Error::new(kind, format!("{err:#}"));
        Error::Bpf { action, source }
    }

    /// Wrap a negative errno returned by a libbpf C function.
    pub(crate) fn from_errno(action: impl Into<String>, errno: i32) -> Error {
        let action = action.into();
        if errno == libc::EPERM {
            return Error::NoPrivilege { action };
        }
        Error::Bpf { action, source: io::Error::from_raw_os_error(errno) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_fix() {
        let e = Error::AlreadyAttached { ifindex: 7, ifname: "veth0".into(), program_id: Some(42) };
        let msg = e.to_string();
        assert!(msg.contains("program 42"), "{msg}");
        assert!(msg.contains("ip link set dev veth0 xdp off"), "{msg}");

        let msg = Error::MtuTooLarge { ifindex: 7, ifname: "veth0".into() }.to_string();
        assert!(msg.contains("lower the MTU") && msg.contains("generic mode"), "{msg}");

        let msg = Error::from_errno("attach", libc::EPERM).to_string();
        assert!(msg.contains("CAP_BPF") && msg.contains("CAP_NET_ADMIN"), "{msg}");
    }

    #[test]
    fn converts_into_io_error_with_a_fitting_kind() {
        let io: io::Error = Error::NoSuchInterface { ifindex: 99 }.into();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        assert!(io.to_string().contains("index 99"));
        let io: io::Error = Error::from_errno("load", libc::EPERM).into();
        assert_eq!(io.kind(), io::ErrorKind::PermissionDenied);
        let io: io::Error = Error::from_errno("attach", libc::ENOSPC).into();
        assert_eq!(io.kind(), io::ErrorKind::StorageFull);
        assert!(io.to_string().starts_with("cannot attach: "), "{io}");
    }
}

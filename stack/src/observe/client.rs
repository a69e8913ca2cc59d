//! The client side of the control socket, for `xdpstack ss`, `xdpstack stat` and any other tool:
//! finding the running instances, telling a live stack from a stale socket, and typed requests.

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::control::{read_pid, SOCKET_FILE};
use super::protocol::{self, Request};
use super::SocketInfo;

/// What is found at an instance's control socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// A stack answers.
    Live,
    /// Nothing listens: the stack that made the socket died without removing it.
    Stale {
        /// The pid it recorded, if any.
        pid: Option<u32>,
    },
    /// The socket exists but this user may not connect to it.
    PermissionDenied {
        /// The group that may (the socket's group).
        group: String,
    },
}

/// A stack instance under a run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Its name (the directory's).
    pub name: String,
    /// `RUN_DIR/NAME`.
    pub dir: PathBuf,
    /// Whether it answers.
    pub status: Status,
}

/// The name of group `gid` from `/etc/group` (the number if it is not listed).
fn group_name(gid: u32) -> String {
    let listed = fs::read_to_string("/etc/group").ok().and_then(|text| {
        text.lines().find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id = f.nth(1)?.parse::<u32>().ok()?;
            (id == gid).then(|| name.to_string())
        })
    });
    listed.unwrap_or_else(|| gid.to_string())
}

fn probe(dir: &Path) -> Status {
    let sock = dir.join(SOCKET_FILE);
    match UnixStream::connect(&sock) {
        Ok(_) => Status::Live,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            let gid = fs::metadata(&sock).or_else(|_| fs::metadata(dir)).map_or(0, |m| m.gid());
            Status::PermissionDenied { group: group_name(gid) }
        }
        Err(_) => Status::Stale { pid: read_pid(dir) },
    }
}

/// Every instance under `run_dir` (directories holding a control socket), by name. A missing run
/// directory means none.
pub fn instances(run_dir: &Path) -> io::Result<Vec<Instance>> {
    let entries = match fs::read_dir(run_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io::Error::new(e.kind(), format!("cannot list {}: {e}", run_dir.display()))),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let dir = entry.path();
        // A denied directory still shows its socket's existence through the listing of run_dir.
        let has_socket = fs::symlink_metadata(dir.join(SOCKET_FILE)).is_ok()
            || matches!(fs::read_dir(&dir), Err(e) if e.kind() == io::ErrorKind::PermissionDenied);
        if !has_socket {
            continue;
        }
        let status = probe(&dir);
        out.push(Instance { name: entry.file_name().to_string_lossy().into_owned(), dir, status });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn names(list: &[Instance], live: bool) -> String {
    let n: Vec<&str> =
        list.iter().filter(|i| !live || i.status == Status::Live).map(|i| i.name.as_str()).collect();
    if n.is_empty() {
        "none".into()
    } else {
        n.join(", ")
    }
}

fn describe(i: &Instance) -> Result<(), String> {
    match &i.status {
        Status::Live => Ok(()),
        Status::Stale { pid } => {
            let pid = match pid {
                Some(p) if Path::new(&format!("/proc/{p}")).exists() => {
                    format!("pid {p} still exists but does not answer")
                }
                Some(p) => format!("pid {p} is dead"),
                None => "no pid recorded".into(),
            };
            Err(format!(
                "stack {} is not running: stale control socket {} ({pid}); it is replaced when a stack named {} starts",
                i.name,
                i.dir.join(SOCKET_FILE).display(),
                i.name
            ))
        }
        Status::PermissionDenied { group } => Err(format!(
            "permission denied on {}: run as root or join group {group}",
            i.dir.join(SOCKET_FILE).display()
        )),
    }
}

/// Pick the instance a tool talks to: `name` if given, else the only live one. Errors are one line
/// saying what is running and what to do.
pub fn choose(run_dir: &Path, name: Option<&str>) -> Result<Instance, String> {
    let list = instances(run_dir).map_err(|e| e.to_string())?;
    match name {
        Some(n) => {
            let Some(i) = list.iter().find(|i| i.name == n) else {
                return Err(format!(
                    "no stack named {n} is running; running: {} (run directory {})",
                    names(&list, true),
                    run_dir.display()
                ));
            };
            describe(i)?;
            Ok(i.clone())
        }
        None => {
            let live: Vec<&Instance> = list.iter().filter(|i| i.status == Status::Live).collect();
            match live.as_slice() {
                [one] => Ok((*one).clone()),
                [] => match list.as_slice() {
                    [only] => describe(only).map(|()| only.clone()),
                    _ => Err(format!(
                        "no stack is running (no live control socket under {}; start one with `xdpstack run`)",
                        run_dir.display()
                    )),
                },
                _ => Err(format!("several stacks are running ({}): choose one with --name", names(&list, true))),
            }
        }
    }
}

/// A connection to a stack's control socket.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connect to the control socket of the stack in `dir` (`RUN_DIR/NAME`).
    pub fn connect(dir: &Path) -> io::Result<Client> {
        let path = dir.join(SOCKET_FILE);
        let s = UnixStream::connect(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot connect to {}: {e}", path.display())))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.set_write_timeout(Some(Duration::from_secs(5)))?;
        Ok(Client { writer: s.try_clone()?, reader: BufReader::new(s) })
    }

    /// Send a raw request line and return the record lines of the answer (Err: the stack's message).
    pub fn raw(&mut self, line: &str) -> io::Result<Vec<String>> {
        self.writer.write_all(format!("{line}\n").as_bytes())?;
        let mut header = String::new();
        if self.reader.read_line(&mut header)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the stack closed the control connection",
            ));
        }
        let n = protocol::decode_header(&header).map_err(io::Error::other)?;
        let mut lines = Vec::with_capacity(n);
        for _ in 0..n {
            let mut l = String::new();
            if self.reader.read_line(&mut l)? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "truncated answer from the stack"));
            }
            lines.push(l.trim_end_matches('\n').to_string());
        }
        Ok(lines)
    }

    /// The socket table.
    pub fn sockets(&mut self) -> io::Result<Vec<SocketInfo>> {
        self.raw(&Request::Sockets.line())?
            .iter()
            .map(|l| protocol::decode_socket(l).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)))
            .collect()
    }

    /// All counters as (name, value).
    pub fn counters(&mut self) -> io::Result<Vec<(String, u64)>> {
        self.raw(&Request::Counters.line())?
            .iter()
            .map(|l| {
                l.split_once(' ').and_then(|(n, v)| Some((n.to_string(), v.parse().ok()?))).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("bad counter line {l:?}"))
                })
            })
            .collect()
    }

    /// Open a raw socket for IP protocol `proto` on the stack and turn this connection into a raw
    /// session (see [`protocol`]): the socket lives as long as the session.
    pub fn raw_session(mut self, proto: u8) -> io::Result<RawSession> {
        let lines = self.raw(&Request::Raw(proto).line())?;
        if !lines.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected records after a raw session's OK",
            ));
        }
        Ok(RawSession { reader: self.reader, writer: self.writer })
    }

    /// The stack's `info` as (key, value).
    pub fn info(&mut self) -> io::Result<Vec<(String, String)>> {
        Ok(self
            .raw(&Request::Info.line())?
            .iter()
            .map(|l| {
                let (k, v) = l.split_once(' ').unwrap_or((l, ""));
                (k.to_string(), v.to_string())
            })
            .collect())
    }
}

/// A raw IP socket of a running stack, reached through its control socket ([`Client::raw_session`]).
#[derive(Debug)]
pub struct RawSession {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl RawSession {
    /// Send `payload` to `dst`; the stack puts an IP header of the socket's protocol in front.
    pub fn send_to(&mut self, payload: &[u8], dst: std::net::Ipv4Addr) -> io::Result<()> {
        if payload.len() > usize::from(u16::MAX) {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        let mut frame = protocol::raw_frame_header(dst, payload.len()).to_vec();
        frame.extend_from_slice(payload);
        self.writer.write_all(&frame)
    }

    /// The next datagram the socket received (IP header included) and its source, waiting at most
    /// `timeout`; None when nothing came.
    pub fn recv_from(
        &mut self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> io::Result<Option<(usize, std::net::Ipv4Addr)>> {
        if self.reader.buffer().is_empty() {
            self.reader.get_ref().set_read_timeout(Some(timeout.max(Duration::from_micros(1))))?;
            match self.reader.fill_buf() {
                Ok([]) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the stack ended the raw session",
                    ))
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            }
        }
        // A frame has begun: the rest follows at once (the stack writes whole frames).
        self.reader.get_ref().set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut header = [0u8; protocol::RAW_FRAME_HEADER];
        io::Read::read_exact(&mut self.reader, &mut header)?;
        let (src, len) = protocol::parse_raw_frame_header(&header);
        let mut rest = len;
        let keep = len.min(buf.len());
        io::Read::read_exact(&mut self.reader, &mut buf[..keep])?;
        rest -= keep;
        // A datagram longer than `buf` is truncated, as recv(2) does.
        io::copy(&mut io::Read::take(&mut self.reader, rest as u64), &mut io::sink())?;
        Ok(Some((keep, src)))
    }
}

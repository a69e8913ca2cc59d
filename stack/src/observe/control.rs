//! The control socket: a Unix stream socket `RUN_DIR/NAME/control` that every running stack answers
//! on (format: [`super::protocol`]), and the `/proc`-format files beside it in `RUN_DIR/NAME/net/`.
//!
//! One thread per stack owns the socket. It serves one client at a time, each request with a time
//! limit, and reaches the workers only through their command queues (a snapshot command), so a slow
//! or malformed client delays nobody but the next client, and never the packet path.
//!
//! Instances: `NAME` (default: the interface name) names one stack, so several run at once under one
//! run directory. Starting a stack whose directory holds a socket that answers fails ("already
//! running"); a socket that refuses connections is what a dead stack leaves behind (a stale socket),
//! and is replaced. The directory is removed at shutdown. Permissions: the run directory is 0755 (so
//! anyone can list instances), an instance's directory 0750 and the socket 0660, so the owner's group
//! may query it.

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::protocol::{self, Request, MAGIC, MAX_REQUEST};
use super::{procnet, SocketInfo};
use crate::socket::event::poll_readable;
use crate::stack::{StackInfo, StackShared};

/// The run directory when neither the configuration nor `XDPSTACK_RUN_DIR` names one.
pub const DEFAULT_RUN_DIR: &str = "/run/xdpstack";
/// The environment variable that overrides [`DEFAULT_RUN_DIR`].
pub const RUN_DIR_ENV: &str = "XDPSTACK_RUN_DIR";
/// The socket's file name inside the instance directory.
pub const SOCKET_FILE: &str = "control";
/// The file holding the stack's process id.
pub const PID_FILE: &str = "pid";

/// How long a client may take to send a request or read an answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(1);
/// Requests served per connection (then the next client gets its turn).
const REQUESTS_PER_CONNECTION: usize = 64;
/// How often the thread looks at its stop flag.
const TICK: Duration = Duration::from_millis(200);
/// The periodic refresh of the `/proc`-format files takes at most 1/this of the time: a large table
/// (say 100,000 connections in TIME-WAIT after a burst of short connections) is rewritten less often
/// than `Config::net_files_refresh`, so that the control thread does not take a core from the workers.
/// A `sockets` request still refreshes at once.
const REFRESH_COST_RATIO: u32 = 50;
/// Raw sessions (`raw PROTO`) open at once; more get an `ERR`.
const MAX_RAW_SESSIONS: usize = 16;

/// The run directory: `XDPSTACK_RUN_DIR` if set, else [`DEFAULT_RUN_DIR`].
pub fn default_run_dir() -> PathBuf {
    std::env::var_os(RUN_DIR_ENV).map_or_else(|| PathBuf::from(DEFAULT_RUN_DIR), PathBuf::from)
}

/// Check an instance name: 1 to 64 characters of `A-Z a-z 0-9 . _ -`, not starting with a dot.
pub fn validate_name(name: &str) -> io::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("stack name {name:?} must be 1 to 64 letters, digits, '.', '_' or '-' (not starting with '.')"),
        ))
    }
}

fn annotate(e: io::Error, what: &str, path: &Path) -> io::Error {
    let hint = if e.kind() == io::ErrorKind::PermissionDenied {
        " (run as root, or choose a writable run directory with XDPSTACK_RUN_DIR)"
    } else {
        ""
    };
    io::Error::new(e.kind(), format!("cannot {what} {}: {e}{hint}", path.display()))
}

/// The pid recorded in an instance directory.
pub fn read_pid(dir: &Path) -> Option<u32> {
    fs::read_to_string(dir.join(PID_FILE)).ok()?.trim().parse().ok()
}

/// An instance directory with a bound control socket, not yet served. Dropping it removes what it
/// created.
#[derive(Debug)]
pub(crate) struct Claim {
    dir: PathBuf,
    listener: Option<UnixListener>,
}

impl Claim {
    /// Take `RUN_DIR/NAME`: fail if a live stack answers there, replace a stale socket.
    pub(crate) fn take(run_dir: &Path, name: &str) -> io::Result<Claim> {
        validate_name(name)?;
        let dir = run_dir.join(name);
        let sock = dir.join(SOCKET_FILE);
        // sockaddr_un holds 108 bytes with the terminating NUL.
        if sock.as_os_str().len() > 107 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "control socket path {} is longer than 107 bytes: use a shorter run directory or name",
                    sock.display()
                ),
            ));
        }
        if !run_dir.is_dir() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(run_dir)
                .map_err(|e| annotate(e, "create the run directory", run_dir))?;
        }
        if !dir.is_dir() {
            fs::DirBuilder::new().mode(0o750).create(&dir).map_err(|e| annotate(e, "create", &dir))?;
        }
        if sock.exists() {
            match UnixStream::connect(&sock) {
                Ok(_) => {
                    let pid = read_pid(&dir).map_or_else(|| "unknown".to_string(), |p| p.to_string());
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("stack {name} is already running (pid {pid}); stop it or choose another name (--name)"),
                    ));
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::ECONNREFUSED) | Some(libc::ENOENT)) => {
                    log::info!(
                        "replacing the stale control socket {} (pid {:?})",
                        sock.display(),
                        read_pid(&dir)
                    );
                    let _ = fs::remove_file(&sock);
                }
                Err(e) => return Err(annotate(e, "check the control socket", &sock)),
            }
        }
        let listener =
            UnixListener::bind(&sock).map_err(|e| annotate(e, "bind the control socket", &sock))?;
        let claim = Claim { dir: dir.clone(), listener: Some(listener) };
        fs::set_permissions(&sock, fs::Permissions::from_mode(0o660))
            .map_err(|e| annotate(e, "set the mode of", &sock))?;
        fs::write(dir.join(PID_FILE), format!("{}\n", std::process::id()))
            .map_err(|e| annotate(e, "write", &dir.join(PID_FILE)))?;
        let net = dir.join("net");
        if !net.is_dir() {
            fs::DirBuilder::new().mode(0o755).create(&net).map_err(|e| annotate(e, "create", &net))?;
        }
        Ok(claim)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Only what this stack made; a directory someone else put files in stays.
        let _ = fs::remove_file(self.dir.join(SOCKET_FILE));
        let _ = fs::remove_file(self.dir.join(PID_FILE));
        for f in ["tcp", "udp", "raw"] {
            let _ = fs::remove_file(self.dir.join("net").join(f));
        }
        let _ = fs::remove_dir(self.dir.join("net"));
        let _ = fs::remove_dir(&self.dir);
    }
}

/// The running control thread of a stack; stopping it removes the socket and its directory.
#[derive(Debug)]
pub(crate) struct ControlServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    claim: Claim,
}

/// What the control thread serves.
struct Server {
    listener: UnixListener,
    shared: Arc<StackShared>,
    info: StackInfo,
    name: String,
    dir: PathBuf,
    refresh: Option<Duration>,
    uid: u32,
    /// Raw sessions running (each on its own thread).
    raw_sessions: Arc<std::sync::atomic::AtomicUsize>,
}

impl ControlServer {
    /// Start serving `claim` for the stack.
    pub(crate) fn spawn(
        mut claim: Claim,
        shared: Arc<StackShared>,
        info: StackInfo,
        name: String,
        refresh: Option<Duration>,
    ) -> io::Result<ControlServer> {
        let listener =
            claim.listener.take().ok_or_else(|| io::Error::other("control socket already served"))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let uid = fs::metadata("/proc/self").map_or(0, |m| m.uid());
        let mut server = Server {
            listener,
            shared,
            info,
            name,
            dir: claim.dir.clone(),
            refresh,
            uid,
            raw_sessions: Arc::default(),
        };
        let flag = stop.clone();
        let thread =
            std::thread::Builder::new().name("xdpstack-ctl".into()).spawn(move || server.run(&flag))?;
        Ok(ControlServer { stop, thread: Some(thread), claim })
    }

    /// The instance directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.claim.dir
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Server {
    fn run(&mut self, stop: &AtomicBool) {
        let mut next_refresh = Instant::now();
        while !stop.load(Ordering::Acquire) {
            if let Some(every) = self.refresh {
                let t0 = Instant::now();
                if t0 >= next_refresh {
                    if let Ok(rows) = super::socket_table(&self.shared, super::SNAPSHOT_TIMEOUT) {
                        self.write_net_files(&rows);
                    }
                    let cost = t0.elapsed();
                    next_refresh = Instant::now() + every.max(cost * REFRESH_COST_RATIO);
                }
            }
            let wait = match self.refresh {
                Some(_) => next_refresh.saturating_duration_since(Instant::now()).min(TICK),
                None => TICK,
            };
            poll_readable(&[Some(self.listener.as_fd())], wait.as_millis() as i32);
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if let Err(e) = self.serve(stream) {
                        log::debug!("control client: {e}");
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    log::warn!("control socket accept: {e}");
                    std::thread::sleep(TICK);
                }
            }
        }
    }

    /// Answer one client's requests until it hangs up, errs, or has had its share.
    fn serve(&mut self, stream: UnixStream) -> io::Result<()> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
        stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
        let mut writer = stream.try_clone()?;
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::with_capacity(MAX_REQUEST + 1);
        for _ in 0..REQUESTS_PER_CONNECTION {
            buf.clear();
            let n = io::Read::take(&mut reader, MAX_REQUEST as u64 + 1).read_until(b'\n', &mut buf)?;
            if n == 0 {
                return Ok(());
            }
            if buf.last() != Some(&b'\n') {
                let msg = if buf.len() > MAX_REQUEST {
                    format!("request longer than {MAX_REQUEST} bytes")
                } else {
                    "request without a newline".to_string()
                };
                writer.write_all(format!("{MAGIC} ERR {msg}\n").as_bytes())?;
                return Ok(());
            }
            let request = match std::str::from_utf8(&buf) {
                Err(_) => Err("request is not UTF-8 text".to_string()),
                Ok(line) => Request::parse(line),
            };
            if let Ok(Request::Raw(proto)) = request {
                // The connection becomes a raw session with a thread of its own (or gets an ERR).
                return self.start_raw_session(proto, reader.into_inner(), writer);
            }
            let response = request.and_then(|r| self.answer(r));
            let text = match response {
                Ok(lines) => {
                    let mut t = format!("{MAGIC} OK {}\n", lines.len());
                    for l in lines {
                        t.push_str(&l);
                        t.push('\n');
                    }
                    t
                }
                Err(msg) => format!("{MAGIC} ERR {}\n", msg.replace('\n', " ")),
            };
            writer.write_all(text.as_bytes())?;
        }
        Ok(())
    }

    /// Open a raw socket and relay between it and the client (see [`protocol`]): a thread that reads
    /// the client's frames and sends them, and one that writes what the socket receives. Either side
    /// closing, or the stack stopping, ends both and closes the socket.
    fn start_raw_session(&mut self, proto: u8, stream: UnixStream, mut writer: UnixStream) -> io::Result<()> {
        let count = self.raw_sessions.clone();
        if count.fetch_add(1, Ordering::AcqRel) >= MAX_RAW_SESSIONS {
            count.fetch_sub(1, Ordering::AcqRel);
            let msg = format!("{MAGIC} ERR too many raw sessions (at most {MAX_RAW_SESSIONS})\n");
            return writer.write_all(msg.as_bytes());
        }
        let sock = match crate::socket::RawSocket::open_shared(self.shared.clone(), proto) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                count.fetch_sub(1, Ordering::AcqRel);
                return writer.write_all(format!("{MAGIC} ERR cannot open a raw socket: {e}\n").as_bytes());
            }
        };
        writer.write_all(format!("{MAGIC} OK 0\n").as_bytes())?;
        // The session is long-lived: no time limits on the client's side from here on.
        stream.set_read_timeout(None)?;
        writer.set_write_timeout(Some(Duration::from_secs(5)))?;
        sock.set_read_timeout(Some(TICK))?;
        let done = Arc::new(AtomicBool::new(false));
        let (sock2, done2) = (sock.clone(), done.clone());
        let mut reader = stream;
        let closer = writer.try_clone()?;
        std::thread::Builder::new().name("xdpstack-raw-in".into()).spawn(move || {
            let mut header = [0u8; protocol::RAW_FRAME_HEADER];
            let mut payload = vec![0u8; usize::from(u16::MAX)];
            loop {
                if io::Read::read_exact(&mut reader, &mut header).is_err() {
                    break;
                }
                let (dst, len) = protocol::parse_raw_frame_header(&header);
                if io::Read::read_exact(&mut reader, &mut payload[..len]).is_err() {
                    break;
                }
                if let Err(e) = sock2.send_to(&payload[..len], dst) {
                    log::debug!("raw session: send to {dst}: {e}");
                }
            }
            done2.store(true, Ordering::Release);
        })?;
        std::thread::Builder::new().name("xdpstack-raw-out".into()).spawn(move || {
            let mut buf = vec![0u8; usize::from(u16::MAX)];
            while !done.load(Ordering::Acquire) {
                match sock.recv_from(&mut buf) {
                    Ok((n, src)) => {
                        let mut frame = protocol::raw_frame_header(src, n).to_vec();
                        frame.extend_from_slice(&buf[..n]);
                        if writer.write_all(&frame).is_err() {
                            break;
                        }
                    }
                    Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => {}
                    Err(_) => break, // the stack stopped
                }
            }
            // Unblock the reading thread, if it still waits on the client.
            let _ = closer.shutdown(std::net::Shutdown::Both);
            drop(sock);
            count.fetch_sub(1, Ordering::AcqRel);
        })?;
        Ok(())
    }

    fn answer(&mut self, req: Request) -> Result<Vec<String>, String> {
        match req {
            Request::Info => Ok(self.info_lines()),
            Request::Raw(_) => Err("a raw session is started by serve()".into()),
            Request::Counters => Ok(self
                .shared
                .counters(self.info.frames)
                .into_iter()
                .map(|(n, v)| format!("{n} {v}"))
                .collect()),
            Request::Sockets => {
                let rows = super::socket_table(&self.shared, super::SNAPSHOT_TIMEOUT)
                    .map_err(|e| format!("socket table: {e}"))?;
                self.write_net_files(&rows);
                Ok(rows.iter().map(protocol::encode_socket).collect())
            }
        }
    }

    fn info_lines(&self) -> Vec<String> {
        let c = &self.shared.config;
        vec![
            format!("protocol {}", protocol::VERSION),
            format!("version {}", env!("CARGO_PKG_VERSION")),
            format!("pid {}", std::process::id()),
            format!("name {}", self.name),
            format!("iface {}", self.info.netdev.name),
            format!("ifindex {}", self.info.netdev.ifindex),
            format!("addrs {}", c.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",")),
            format!("workers {}", self.shared.workers.len()),
            format!("xdp_mode {:?}", self.info.xdp_mode),
            format!("zero_copy {}", self.info.zero_copy),
            format!("run_dir {}", self.dir.parent().unwrap_or(&self.dir).display()),
        ]
    }

    /// Rewrite `net/tcp`, `net/udp` and `net/raw` (each through a temporary file and a rename, so a
    /// reader sees either the old table or the new one).
    fn write_net_files(&self, rows: &[SocketInfo]) {
        let net = self.dir.join("net");
        for (file, text) in [
            ("tcp", procnet::tcp_table(rows, self.uid)),
            ("udp", procnet::udp_table(rows, self.uid)),
            ("raw", procnet::raw_table(rows, self.uid)),
        ] {
            let tmp = net.join(format!(".{file}.tmp"));
            let done = fs::write(&tmp, text).and_then(|()| fs::rename(&tmp, net.join(file)));
            if let Err(e) = done {
                log::warn!("cannot write {}: {e}", net.join(file).display());
            }
        }
    }
}

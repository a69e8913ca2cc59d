//! The veth testbed: two network namespaces joined by a veth pair.
//!
//! ```text
//!   netns <name>-s (stack)                 netns <name>-p (peer: the Linux kernel)
//!  +--------------------------+           +---------------------------+
//!  | xdpstack on xs<name>s    |  veth     | xs<name>p  10.77.0.1/24   |
//!  |  (XDP + AF_XDP)          |<--------->|  kernel sockets, ping, .. |
//!  |  stack address 10.77.0.2 |           |  tx checksum offload off  |
//!  +--------------------------+           +---------------------------+
//! ```
//!
//! The stack's end has no kernel address (the stack owns 10.77.0.2); the peer end is an ordinary kernel
//! interface. TX checksum offload is turned off on the peer end, because veth would otherwise hand the
//! stack frames whose UDP/TCP checksum holds only the pseudo-header sum (see PLATFORM.md).
//!
//! The same module serves `xdpstack testbed up|down`, the integration tests and the benchmarks, so that
//! everything runs on one harness. Every test uses [`Testbed::unique`], which picks names no other run
//! uses and removes the namespaces when the [`Testbed`] is dropped, pass or fail.

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::sys::{self, SockAddr};

/// How to build a testbed.
#[derive(Debug, Clone)]
pub struct TestbedConfig {
    /// Short name (letters and digits, at most 10 characters): namespaces are `<name>-s` and `<name>-p`,
    /// links `xs<name>s` and `xs<name>p`.
    pub name: String,
    /// RX and TX queues on each veth end.
    pub queues: u32,
    /// Address the peer's kernel gets.
    pub peer_addr: Ipv4Addr,
    /// Address the stack is meant to use (not configured in the kernel).
    pub stack_addr: Ipv4Addr,
    /// Prefix length of the testbed subnet.
    pub prefix_len: u8,
    /// MTU of both veth ends.
    pub mtu: u32,
}

impl Default for TestbedConfig {
    fn default() -> Self {
        TestbedConfig {
            name: "xdps".into(),
            queues: 1,
            peer_addr: Ipv4Addr::new(10, 77, 0, 1),
            stack_addr: Ipv4Addr::new(10, 77, 0, 2),
            prefix_len: 24,
            mtu: 1500,
        }
    }
}

/// A live testbed. Dropping it removes both namespaces (and with them the veth pair) unless
/// [`Testbed::persist`] was called.
#[derive(Debug)]
pub struct Testbed {
    /// The configuration it was built from.
    pub config: TestbedConfig,
    /// Namespace holding the stack's veth end.
    pub stack_ns: String,
    /// Namespace holding the kernel peer's veth end.
    pub peer_ns: String,
    /// The stack's veth end (inside `stack_ns`).
    pub stack_if: String,
    /// The peer's veth end (inside `peer_ns`).
    pub peer_if: String,
    /// MAC address of the stack's end.
    pub stack_mac: [u8; 6],
    /// MAC address of the peer's end.
    pub peer_mac: [u8; 6],
    remove_on_drop: bool,
}

fn validate_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name.len() > 10 || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("testbed name {name:?} must be 1 to 10 letters or digits"),
        ));
    }
    Ok(())
}

/// Run a command, turning a failure into an error that carries the command line and its stderr.
pub fn run_cmd(cmd: &mut Command) -> io::Result<Output> {
    let shown = format!("{cmd:?}");
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot run {shown}: {e} (is it installed? scripts/setup.sh installs it)"),
        )
    })?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

fn ip(args: &[&str]) -> io::Result<Output> {
    run_cmd(Command::new("ip").args(args))
}

impl Testbed {
    /// Names for the namespaces and links of a testbed called `name`.
    fn names(name: &str) -> (String, String, String, String) {
        (format!("{name}-s"), format!("{name}-p"), format!("xs{name}s"), format!("xs{name}p"))
    }

    /// Build a testbed. Fails with the reason (not root, `ip` missing, name taken, ...).
    pub fn up(config: TestbedConfig) -> io::Result<Testbed> {
        validate_name(&config.name)?;
        let (stack_ns, peer_ns, stack_if, peer_if) = Self::names(&config.name);
        if netns_exists(&stack_ns) || netns_exists(&peer_ns) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "testbed {:?} already exists; remove it with `xdpstack testbed down --name {}`",
                    config.name, config.name
                ),
            ));
        }
        let mut bed = Testbed {
            config,
            stack_ns,
            peer_ns,
            stack_if,
            peer_if,
            stack_mac: [0; 6],
            peer_mac: [0; 6],
            remove_on_drop: true,
        };
        // From here on, a failure drops `bed`, which removes whatever was created.
        bed.create().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot create the veth testbed (needs root: CAP_NET_ADMIN and CAP_SYS_ADMIN for `ip netns`): {e}"
                ),
            )
        })?;
        Ok(bed)
    }

    fn create(&mut self) -> io::Result<()> {
        let c = &self.config;
        let q = c.queues.max(1).to_string();
        let mtu = c.mtu.to_string();
        ip(&["netns", "add", &self.stack_ns])?;
        ip(&["netns", "add", &self.peer_ns])?;
        // IPv4 only: no IPv6 link-local chatter (router solicitations, MLD) on the test link, so that
        // every frame on it is one a test sent.
        for ns in [&self.stack_ns, &self.peer_ns] {
            run_cmd(Command::new("ip").args(["netns", "exec", ns, "sh", "-c"]).arg(
                "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6",
            ))?;
        }
        ip(&[
            "link",
            "add",
            &self.stack_if,
            "numrxqueues",
            &q,
            "numtxqueues",
            &q,
            "netns",
            &self.stack_ns,
            "type",
            "veth",
            "peer",
            "name",
            &self.peer_if,
            "numrxqueues",
            &q,
            "numtxqueues",
            &q,
            "netns",
            &self.peer_ns,
        ])?;
        let peer_cidr = format!("{}/{}", c.peer_addr, c.prefix_len);
        ip(&["-n", &self.stack_ns, "link", "set", "lo", "up"])?;
        ip(&["-n", &self.peer_ns, "link", "set", "lo", "up"])?;
        ip(&["-n", &self.stack_ns, "link", "set", &self.stack_if, "mtu", &mtu, "up"])?;
        ip(&["-n", &self.peer_ns, "link", "set", &self.peer_if, "mtu", &mtu, "up"])?;
        ip(&["-n", &self.peer_ns, "addr", "add", &peer_cidr, "dev", &self.peer_if])?;
        // PLATFORM.md: without this the kernel peer sends partial (pseudo-header only) checksums.
        run_cmd(Command::new("ip").args([
            "netns",
            "exec",
            &self.peer_ns,
            "ethtool",
            "-K",
            &self.peer_if,
            "tx",
            "off",
        ]))?;
        self.stack_mac = link_mac(&self.stack_ns, &self.stack_if)?;
        self.peer_mac = link_mac(&self.peer_ns, &self.peer_if)?;
        Ok(())
    }

    /// A testbed with a name no other test or run uses (process id and a counter), removed on drop.
    /// Fails with the reason when the namespaces cannot be made; tests must not skip on that.
    pub fn unique(queues: u32) -> io::Result<Testbed> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("t{}x{}", std::process::id() % 1_000_000, n % 100);
        Testbed::up(TestbedConfig { name, queues, ..TestbedConfig::default() })
    }

    /// Look up an existing testbed by name (for `testbed down` or a second process).
    pub fn existing(name: &str) -> io::Result<Testbed> {
        validate_name(name)?;
        let (stack_ns, peer_ns, stack_if, peer_if) = Self::names(name);
        if !netns_exists(&stack_ns) && !netns_exists(&peer_ns) {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("no testbed named {name:?}")));
        }
        let stack_mac = link_mac(&stack_ns, &stack_if).unwrap_or([0; 6]);
        let peer_mac = link_mac(&peer_ns, &peer_if).unwrap_or([0; 6]);
        Ok(Testbed {
            config: TestbedConfig { name: name.into(), ..TestbedConfig::default() },
            stack_ns,
            peer_ns,
            stack_if,
            peer_if,
            stack_mac,
            peer_mac,
            remove_on_drop: false,
        })
    }

    /// Keep the namespaces after this value is dropped (`xdpstack testbed up`).
    pub fn persist(mut self) {
        self.remove_on_drop = false;
    }

    /// Remove both namespaces now. Removing a namespace destroys the veth end inside it, and with it
    /// the pair.
    pub fn down(mut self) -> io::Result<()> {
        self.remove_on_drop = false;
        self.remove()
    }

    fn remove(&self) -> io::Result<()> {
        let mut first_err = None;
        for ns in [&self.stack_ns, &self.peer_ns] {
            if netns_exists(ns) {
                if let Err(e) = ip(&["netns", "del", ns]) {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// The stack's address with its prefix, as `--addr` takes it.
    pub fn stack_cidr(&self) -> String {
        format!("{}/{}", self.config.stack_addr, self.config.prefix_len)
    }

    /// A command that runs `program` inside the peer namespace.
    pub fn peer_cmd(&self, program: &str) -> Command {
        ns_cmd(&self.peer_ns, program)
    }

    /// A command that runs `program` inside the stack namespace.
    pub fn stack_cmd(&self, program: &str) -> Command {
        ns_cmd(&self.stack_ns, program)
    }

    /// Run `f` on a new thread that has entered the stack namespace. Sockets, BPF links and threads
    /// created inside `f` belong to that namespace for their whole life, whichever thread uses them.
    pub fn in_stack_ns<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> io::Result<R> {
        in_netns(&self.stack_ns, f)
    }

    /// Run `f` on a new thread that has entered the peer namespace (for kernel sockets on the peer).
    pub fn in_peer_ns<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> io::Result<R> {
        in_netns(&self.peer_ns, f)
    }

    /// A stack configuration for this testbed: the stack's interface and address, defaults otherwise.
    pub fn stack_config(&self) -> crate::Config {
        let cidr = crate::wire::Ipv4Cidr::new(self.config.stack_addr, self.config.prefix_len)
            .unwrap_or_else(|_| unreachable!("validated testbed prefix length"));
        crate::Config::new(self.stack_if.clone(), cidr)
    }

    /// Start a stack inside the stack namespace.
    pub fn start_stack(&self, config: crate::Config) -> io::Result<crate::Stack> {
        self.in_stack_ns(move || crate::Stack::start(config))?
    }

    /// Send raw Ethernet frames out of the peer's veth end (towards the stack), as a misbehaving or
    /// hostile neighbour would: through an AF_PACKET socket in the peer namespace.
    pub fn inject_from_peer(&self, frames: Vec<Vec<u8>>) -> io::Result<()> {
        let ifname = self.peer_if.clone();
        self.in_peer_ns(move || packet_send(&ifname, &frames))?
    }
}

/// Write `frames` verbatim to interface `ifname` (of the calling thread's namespace) with AF_PACKET.
fn packet_send(ifname: &str, frames: &[Vec<u8>]) -> io::Result<()> {
    let cname = std::ffi::CString::new(ifname).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let ifindex = sys::if_nametoindex(&cname)?;
    let fd = sys::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0)?;
    let mut sll = libc::sockaddr_ll::zeroed();
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_ifindex = ifindex as i32;
    sll.sll_halen = 6;
    for frame in frames {
        sys::sendto(fd.as_fd(), frame, &sll)?;
    }
    Ok(())
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if self.remove_on_drop {
            if let Err(e) = self.remove() {
                eprintln!("testbed {}: cleanup failed: {e}", self.config.name);
            }
        }
    }
}

fn ns_cmd(ns: &str, program: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, program]);
    cmd
}

fn netns_exists(ns: &str) -> bool {
    std::path::Path::new("/var/run/netns").join(ns).exists()
}

fn link_mac(ns: &str, link: &str) -> io::Result<[u8; 6]> {
    let out = ip(&["-n", ns, "-o", "link", "show", "dev", link])?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mac = text
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .ok_or_else(|| io::Error::other(format!("no MAC address in `ip link show {link}`: {text}")))?;
    parse_mac(mac).ok_or_else(|| io::Error::other(format!("bad MAC address {mac:?}")))
}

/// Parse `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in mac.iter_mut() {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Run `f` on a fresh thread inside network namespace `ns` (a name under /var/run/netns).
pub fn in_netns<R: Send + 'static>(ns: &str, f: impl FnOnce() -> R + Send + 'static) -> io::Result<R> {
    let path = std::path::Path::new("/var/run/netns").join(ns);
    let file = File::open(&path).map_err(|e| {
        io::Error::new(e.kind(), format!("cannot open network namespace {}: {e}", path.display()))
    })?;
    std::thread::spawn(move || {
        // Only this (new) thread changes namespace.
        sys::setns(file.as_fd(), libc::CLONE_NEWNET)?;
        Ok(f())
    })
    .join()
    .map_err(|_| io::Error::other("thread inside the namespace panicked"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parsing() {
        assert_eq!(parse_mac("02:00:0a:ff:00:01"), Some([2, 0, 10, 255, 0, 1]));
        assert_eq!(parse_mac("02:00:0a:ff:00"), None);
        assert_eq!(parse_mac("02:00:0a:ff:00:01:07"), None);
        assert_eq!(parse_mac("zz:00:0a:ff:00:01"), None);
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_name("abc1").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("has-dash").is_err());
        assert!(validate_name("elevenchars").is_err());
    }
}

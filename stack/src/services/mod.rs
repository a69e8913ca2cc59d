//! Built-in services, written on the public socket API like any application would be:
//! `echo-udp`/`echo-tcp` (RFC 862), `discard-udp`/`discard-tcp` (RFC 863), `chargen-tcp` (RFC 864) and
//! `http` (HTTP/1.1 with keep-alive: `GET /`, `GET /bytes/N`, 404 otherwise) and `sockperf` (UDP and
//! TCP, for the unmodified `sockperf` client).

mod http;
pub mod sockperf;
mod tcp;

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::str::FromStr;
use std::thread::JoinHandle;

use crate::{Stack, TcpListener, UdpSocket};

pub use http::random_bytes;

/// A service and its port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// RFC 862 over UDP: send back every datagram.
    EchoUdp(u16),
    /// RFC 863 over UDP: throw every datagram away.
    DiscardUdp(u16),
    /// RFC 862 over TCP: send back every byte.
    EchoTcp(u16),
    /// RFC 863 over TCP: read and drop every byte.
    DiscardTcp(u16),
    /// RFC 864 over TCP: send lines of characters until the client closes.
    ChargenTcp(u16),
    /// HTTP/1.1.
    Http(u16),
    /// sockperf server, UDP and TCP on the same port (one thread for all clients, through a poller:
    /// right for busy-poll and run-to-completion modes).
    Sockperf(u16),
    /// sockperf server, UDP only (a plain blocking loop: the shortest path).
    SockperfUdp(u16),
    /// sockperf server, TCP only.
    SockperfTcp(u16),
}

const KNOWN: &str =
    "echo-udp, discard-udp, echo-tcp, discard-tcp, chargen-tcp, http, sockperf, sockperf-udp, sockperf-tcp";

impl FromStr for Service {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, port) = s
            .split_once(':')
            .ok_or_else(|| format!("service {s:?} must look like NAME:PORT (for example echo-udp:7)"))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("service {s:?}: port must be 1..=65535"))?;
        match name {
            "echo-udp" => Ok(Service::EchoUdp(port)),
            "discard-udp" => Ok(Service::DiscardUdp(port)),
            "echo-tcp" => Ok(Service::EchoTcp(port)),
            "discard-tcp" => Ok(Service::DiscardTcp(port)),
            "chargen-tcp" => Ok(Service::ChargenTcp(port)),
            "http" => Ok(Service::Http(port)),
            "sockperf" => Ok(Service::Sockperf(port)),
            "sockperf-udp" => Ok(Service::SockperfUdp(port)),
            "sockperf-tcp" => Ok(Service::SockperfTcp(port)),
            _ => Err(format!("unknown service {name:?} (known: {KNOWN})")),
        }
    }
}

/// Did the stack stop under this call? (Services end quietly then.)
fn stack_gone(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotConnected | io::ErrorKind::ConnectionAborted)
}

/// Start `svc` on its own thread (TCP services add a thread per connection). It ends when the stack
/// stops.
pub fn start(stack: &Stack, svc: Service) -> io::Result<JoinHandle<()>> {
    let any = |p| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, p);
    match svc {
        Service::EchoUdp(p) | Service::DiscardUdp(p) => {
            let sock = UdpSocket::bind(stack, any(p))?;
            log::info!("service {svc:?} on {} (descriptor {})", sock.local_addr()?, sock.descriptor());
            let echo = matches!(svc, Service::EchoUdp(_));
            std::thread::Builder::new().name(format!("svc-udp-{p}")).spawn(move || udp_loop(sock, echo))
        }
        Service::SockperfUdp(p) => {
            let sock = UdpSocket::bind(stack, any(p))?;
            log::info!("service {svc:?} on {}", sock.local_addr()?);
            std::thread::Builder::new()
                .name(format!("svc-sockperf-udp-{p}"))
                .spawn(move || sockperf::udp_loop(sock))
        }
        Service::Sockperf(p) | Service::SockperfTcp(p) => {
            let udp = match svc {
                Service::Sockperf(_) => Some(UdpSocket::bind(stack, any(p))?),
                _ => None,
            };
            let listener = TcpListener::bind(stack, any(p))?;
            log::info!("service {svc:?} on port {p} (one thread, every client through one poller)");
            std::thread::Builder::new()
                .name(format!("svc-sockperf-{p}"))
                .spawn(move || sockperf::serve(udp, Some(listener)))
        }
        Service::EchoTcp(p) | Service::DiscardTcp(p) | Service::ChargenTcp(p) | Service::Http(p) => {
            let listener = TcpListener::bind(stack, any(p))?;
            log::info!(
                "service {svc:?} on {} (descriptor {})",
                listener.local_addr()?,
                listener.descriptor()
            );
            std::thread::Builder::new()
                .name(format!("svc-tcp-{p}"))
                .spawn(move || tcp::accept_loop(listener, svc))
        }
    }
}

fn udp_loop(sock: UdpSocket, echo: bool) {
    let mut buf = vec![0u8; 65536];
    loop {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) if echo => {
                if let Err(e) = sock.send_to(&buf[..n], from) {
                    log::debug!("echo to {from}: {e}");
                }
            }
            Ok(_) => {}
            Err(e) if stack_gone(&e) => return,
            Err(e) => log::debug!("udp service: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs_and_names_mistakes() {
        assert_eq!("echo-udp:7".parse(), Ok(Service::EchoUdp(7)));
        assert_eq!("discard-udp:9".parse(), Ok(Service::DiscardUdp(9)));
        assert_eq!("echo-tcp:7".parse(), Ok(Service::EchoTcp(7)));
        assert_eq!("discard-tcp:9".parse(), Ok(Service::DiscardTcp(9)));
        assert_eq!("chargen-tcp:19".parse(), Ok(Service::ChargenTcp(19)));
        assert_eq!("http:80".parse(), Ok(Service::Http(80)));
        assert_eq!("sockperf:11111".parse(), Ok(Service::Sockperf(11111)));
        assert!("echo-udp".parse::<Service>().unwrap_err().contains("NAME:PORT"));
        assert!("echo-udp:0".parse::<Service>().unwrap_err().contains("1..=65535"));
        assert!("gopher:70".parse::<Service>().unwrap_err().contains("unknown service"));
    }
}

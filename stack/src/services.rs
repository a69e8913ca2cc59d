//! Built-in services, written on the public socket API like any application would be.
//! `echo-udp:PORT` (RFC 862) and `discard-udp:PORT` (RFC 863).

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::str::FromStr;
use std::thread::JoinHandle;

use crate::{Stack, UdpSocket};

/// A service and its port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// RFC 862: send back every datagram.
    EchoUdp(u16),
    /// RFC 863: throw every datagram away.
    DiscardUdp(u16),
}

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
            _ => Err(format!("unknown service {name:?} (known: echo-udp, discard-udp)")),
        }
    }
}

/// Start `svc` on its own thread. The thread ends when the stack stops.
pub fn start(stack: &Stack, svc: Service) -> io::Result<JoinHandle<()>> {
    let (port, echo) = match svc {
        Service::EchoUdp(p) => (p, true),
        Service::DiscardUdp(p) => (p, false),
    };
    let sock = UdpSocket::bind(stack, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))?;
    log::info!("service {svc:?} on {} (descriptor {})", sock.local_addr()?, sock.descriptor());
    std::thread::Builder::new().name(format!("svc-{port}")).spawn(move || {
        let mut buf = vec![0u8; 65536];
        loop {
            match sock.recv_from(&mut buf) {
                Ok((n, from)) if echo => {
                    if let Err(e) = sock.send_to(&buf[..n], from) {
                        log::debug!("echo to {from}: {e}");
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => log::debug!("service {svc:?}: {e}"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs_and_names_mistakes() {
        assert_eq!("echo-udp:7".parse(), Ok(Service::EchoUdp(7)));
        assert_eq!("discard-udp:9".parse(), Ok(Service::DiscardUdp(9)));
        assert!("echo-udp".parse::<Service>().unwrap_err().contains("NAME:PORT"));
        assert!("echo-udp:0".parse::<Service>().unwrap_err().contains("1..=65535"));
        assert!("gopher:70".parse::<Service>().unwrap_err().contains("unknown service"));
    }
}

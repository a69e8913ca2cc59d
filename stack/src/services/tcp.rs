//! The TCP services: a thread per connection.

use std::io::{self, Read, Write};

use super::{http, stack_gone, Service};
use crate::{TcpListener, TcpStream};

/// Stack size of a connection thread: services keep little state.
const CONN_STACK: usize = 256 << 10;

pub(super) fn accept_loop(listener: TcpListener, svc: Service) {
    for stream in listener.incoming() {
        match stream {
            Ok(s) => {
                let spawned = std::thread::Builder::new().stack_size(CONN_STACK).spawn(move || {
                    let peer = s.peer_addr().ok();
                    if let Err(e) = serve(s, svc) {
                        log::debug!("{svc:?} with {peer:?}: {e}");
                    }
                });
                if let Err(e) = spawned {
                    log::warn!("{svc:?}: cannot start a connection thread: {e}");
                }
            }
            Err(e) if stack_gone(&e) => return,
            Err(e) => log::debug!("{svc:?}: accept: {e}"),
        }
    }
}

fn serve(mut s: TcpStream, svc: Service) -> io::Result<()> {
    match svc {
        Service::EchoTcp(_) => echo(&mut s),
        Service::DiscardTcp(_) => discard(&mut s),
        Service::ChargenTcp(_) => chargen(&mut s),
        Service::Http(_) => http::serve(&mut s),
        // sockperf clients are served by `sockperf::serve`, UDP services by their own loops.
        Service::Sockperf(_) | Service::SockperfTcp(_) | Service::SockperfUdp(_) => Ok(()),
        Service::EchoUdp(_) | Service::DiscardUdp(_) => Ok(()),
    }
}

/// RFC 862: "Once a connection is established any data received is sent back. This continues until
/// the calling user terminates the connection." After the client's FIN, we finish and close too.
fn echo(s: &mut TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        s.write_all(&buf[..n])?;
    }
}

/// RFC 863: "simply throws away any data it receives".
fn discard(s: &mut TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 64 << 10];
    while s.read(&mut buf)? > 0 {}
    Ok(())
}

/// RFC 864: lines of 72 printable characters, each starting one character further along the 95
/// printable ASCII characters, until the client goes away.
fn chargen(s: &mut TcpStream) -> io::Result<()> {
    let ring: Vec<u8> = (b' '..=b'~').collect();
    let mut block = Vec::with_capacity(ring.len() * 74);
    for start in 0..ring.len() {
        for i in 0..72 {
            block.push(ring[(start + i) % ring.len()]);
        }
        block.extend_from_slice(b"\r\n");
    }
    loop {
        match s.write_all(&block) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset) => {
                return Ok(())
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn chargen_lines_follow_rfc_864() {
        let ring: Vec<u8> = (b' '..=b'~').collect();
        assert_eq!(ring.len(), 95);
        let line0: Vec<u8> = (0..72).map(|i| ring[i % 95]).collect();
        assert_eq!(&line0[..5], b" !\"#$");
    }
}

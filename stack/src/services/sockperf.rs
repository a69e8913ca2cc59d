//! A server for the unmodified `sockperf` client (Debian package `sockperf`), in `ping-pong` and
//! `under-load` modes. Every sockperf message starts with a 14-byte header in network byte order: a
//! u64 sequence number, u16 flags (1: sent by the client, 2: pong requested, 4: warm-up) and the u32
//! length of the whole message. A message that requests a pong goes back unchanged but for the
//! client flag; others are only consumed. Over TCP messages are back to back, framed by their length.

use std::io::{self, Read, Write};
use std::time::Duration;

use crate::{Events, Interest, Poller, TcpListener, TcpStream, Trigger, UdpSocket};

/// Size of the header.
pub const HEADER: usize = 14;
/// Flag: the message comes from the client.
pub const FLAG_CLIENT: u16 = 1;
/// Flag: the client wants this message back.
pub const FLAG_PONG_REQUEST: u16 = 2;
/// Flag: a warm-up message.
pub const FLAG_WARMUP: u16 = 4;

/// The flags field of a message (None if it is shorter than a header).
fn flags(msg: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(msg.get(8..10)?.try_into().ok()?))
}

/// Turn a client message into its pong, if it asks for one.
pub fn pong(msg: &mut [u8]) -> bool {
    match flags(msg) {
        Some(f) if f & FLAG_PONG_REQUEST != 0 => {
            msg[8..10].copy_from_slice(&(f & !FLAG_CLIENT).to_be_bytes());
            true
        }
        _ => false,
    }
}

/// Serve UDP sockperf clients until the stack stops: a blocking loop, the shortest path when UDP is
/// all there is to serve.
pub(super) fn udp_loop(sock: UdpSocket) {
    // A blocking socket never runs dry: this returns only when the stack stops.
    let _ = serve_datagrams(&sock, &mut vec![0u8; 65536]);
}

const UDP_TOKEN: u64 = 0;
const LISTENER_TOKEN: u64 = 1;
/// Connection `i` of the slab has token `FIRST_CONN_TOKEN + i`.
const FIRST_CONN_TOKEN: u64 = 2;

/// One TCP client: the bytes of its partial message.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes of `buf` in use.
    have: usize,
}

/// Serve sockperf clients on `udp` and/or `listener` from this one thread, through a [`Poller`],
/// until the stack stops. One thread matters in busy-poll and run-to-completion modes: a second
/// spinning thread on the server's core (an acceptor beside a connection's thread) takes the core
/// for whole scheduler time slices, which showed as ~4 ms steps in the round trips.
pub(super) fn serve(udp: Option<UdpSocket>, listener: Option<TcpListener>) {
    if let Err(e) = serve_all(udp, listener) {
        if !super::stack_gone(&e) {
            log::warn!("sockperf service: {e}");
        }
    }
}

fn serve_all(udp: Option<UdpSocket>, listener: Option<TcpListener>) -> io::Result<()> {
    let poller = Poller::new()?;
    if let Some(u) = &udp {
        u.set_nonblocking(true)?;
        poller.register(u, UDP_TOKEN, Interest::READABLE, Trigger::Level)?;
    }
    if let Some(l) = &listener {
        l.set_nonblocking(true)?;
        poller.register(l, LISTENER_TOKEN, Interest::READABLE, Trigger::Level)?;
    }
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut events = Events::with_capacity(256);
    let mut datagram = vec![0u8; 65536];
    let mut ready: Vec<u64> = Vec::with_capacity(256);
    loop {
        poller.wait(&mut events, Some(Duration::from_secs(1)))?;
        ready.clear();
        ready.extend(events.iter().map(|e| e.token()));
        for &token in &ready {
            match token {
                UDP_TOKEN => {
                    if let Some(u) = &udp {
                        serve_datagrams(u, &mut datagram)?;
                    }
                }
                LISTENER_TOKEN => {
                    let Some(l) = &listener else { continue };
                    loop {
                        match l.accept() {
                            Ok((stream, _)) => {
                                stream.set_nonblocking(true)?;
                                let slot = conns.iter().position(Option::is_none).unwrap_or_else(|| {
                                    conns.push(None);
                                    conns.len() - 1
                                });
                                let token = FIRST_CONN_TOKEN + slot as u64;
                                poller.register(&stream, token, Interest::READABLE, Trigger::Level)?;
                                conns[slot] = Some(Conn { stream, buf: vec![0u8; 2 * 65536], have: 0 });
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => return Err(e),
                        }
                    }
                }
                t => {
                    let slot = (t - FIRST_CONN_TOKEN) as usize;
                    let Some(Some(c)) = conns.get_mut(slot) else { continue };
                    match serve_stream(c) {
                        Ok(true) => {}
                        Ok(false) => conns[slot] = None, // closed: dropping it deregisters it
                        Err(e) if super::stack_gone(&e) => return Err(e),
                        Err(e) => {
                            log::debug!("sockperf tcp client: {e}");
                            conns[slot] = None;
                        }
                    }
                }
            }
        }
    }
}

/// Answer every datagram waiting on `sock` (a non-blocking one until it runs dry; a blocking one
/// until the stack stops).
fn serve_datagrams(sock: &UdpSocket, buf: &mut [u8]) -> io::Result<()> {
    loop {
        match sock.recv_from(buf) {
            Ok((n, from)) => {
                if n >= HEADER && pong(&mut buf[..n]) {
                    if let Err(e) = sock.send_to(&buf[..n], from) {
                        log::debug!("sockperf pong to {from}: {e}");
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if super::stack_gone(&e) => return Err(e),
            Err(e) => log::debug!("sockperf udp: {e}"),
        }
    }
}

/// Read what `c` has sent and answer its complete messages; false when the client has closed.
fn serve_stream(c: &mut Conn) -> io::Result<bool> {
    loop {
        let n = match c.stream.read(&mut c.buf[c.have..]) {
            Ok(0) => return Ok(false),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) => return Err(e),
        };
        c.have += n;
        let mut start = 0;
        while c.have - start >= HEADER {
            let m = &c.buf[start..c.have];
            let len = u32::from_be_bytes([m[10], m[11], m[12], m[13]]) as usize;
            if !(HEADER..=65536).contains(&len) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("sockperf message length {len}"),
                ));
            }
            if m.len() < len {
                break;
            }
            if pong(&mut c.buf[start..start + len]) {
                // A pong is short and the send ring roomy: write it whole, blocking (which, in
                // run-to-completion mode, drives the stack).
                c.stream.set_nonblocking(false)?;
                let r = c.stream.write_all(&c.buf[start..start + len]);
                c.stream.set_nonblocking(true)?;
                r?;
            }
            start += len;
        }
        c.buf.copy_within(start..c.have, 0);
        c.have -= start;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: u64, flags: u16, len: u32) -> Vec<u8> {
        let mut m = vec![0xeeu8; len as usize];
        m[..8].copy_from_slice(&seq.to_be_bytes());
        m[8..10].copy_from_slice(&flags.to_be_bytes());
        m[10..14].copy_from_slice(&len.to_be_bytes());
        m
    }

    #[test]
    fn pongs_clear_only_the_client_flag() {
        let mut m = message(7, FLAG_CLIENT | FLAG_PONG_REQUEST | FLAG_WARMUP, 64);
        let orig = m.clone();
        assert!(pong(&mut m));
        assert_eq!(flags(&m), Some(FLAG_PONG_REQUEST | FLAG_WARMUP));
        assert_eq!(&m[..8], &orig[..8]);
        assert_eq!(&m[10..], &orig[10..]);
        let mut quiet = message(8, FLAG_CLIENT, 64);
        assert!(!pong(&mut quiet), "no pong requested (under-load mode)");
        assert!(!pong(&mut [0u8; 5]), "too short");
    }
}

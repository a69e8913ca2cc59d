//! A server for the unmodified `sockperf` client (Debian package `sockperf`), in `ping-pong` and
//! `under-load` modes. Every sockperf message starts with a 14-byte header in network byte order: a
//! u64 sequence number, u16 flags (1: sent by the client, 2: pong requested, 4: warm-up) and the u32
//! length of the whole message. A message that requests a pong goes back unchanged but for the
//! client flag; others are only consumed. Over TCP messages are back to back, framed by their length.

use std::io::{self, Read, Write};

use crate::{TcpStream, UdpSocket};

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

/// Serve UDP sockperf clients until the stack stops.
pub(super) fn udp_loop(sock: UdpSocket) {
    let mut buf = vec![0u8; 65536];
    loop {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                if n >= HEADER && pong(&mut buf[..n]) {
                    if let Err(e) = sock.send_to(&buf[..n], from) {
                        log::debug!("sockperf pong to {from}: {e}");
                    }
                }
            }
            Err(e) if super::stack_gone(&e) => return,
            Err(e) => log::debug!("sockperf udp: {e}"),
        }
    }
}

/// Serve one TCP sockperf client.
pub(super) fn serve_tcp(s: &mut TcpStream) -> io::Result<()> {
    let mut msg = vec![0u8; 65536];
    loop {
        // The header, then the rest of the message.
        if !read_full(s, &mut msg[..HEADER])? {
            return Ok(());
        }
        let len = u32::from_be_bytes([msg[10], msg[11], msg[12], msg[13]]) as usize;
        if !(HEADER..=msg.len()).contains(&len) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("sockperf message length {len}")));
        }
        if !read_full(s, &mut msg[HEADER..len])? {
            return Ok(());
        }
        if pong(&mut msg[..len]) {
            s.write_all(&msg[..len])?;
        }
    }
}

/// Fill `buf`; false at a clean end of stream before the first byte.
fn read_full(s: &mut TcpStream, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        let n = s.read(&mut buf[got..])?;
        if n == 0 {
            return if got == 0 { Ok(false) } else { Err(io::ErrorKind::UnexpectedEof.into()) };
        }
        got += n;
    }
    Ok(true)
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

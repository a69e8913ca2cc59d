//! A small HTTP/1.1 server (RFC 9112): persistent connections (keep-alive by default in 1.1, opt-in
//! in 1.0), pipelined requests, `GET`/`HEAD` of `/` (a small page) and `/bytes/N` (N pseudo-random
//! bytes with a Content-Length), 404 for anything else, 400/405/431 for bad requests.

use std::io::{self, Read, Write};

use crate::TcpStream;

/// The most header bytes we accept for one request.
const MAX_HEAD: usize = 16 << 10;
/// The largest `/bytes/N`.
const MAX_BYTES: u64 = 1 << 40;

const PAGE: &str = "<!doctype html>\n<html><head><title>xdpstack</title></head>\n<body><h1>xdpstack</h1>\
<p>Served by a kernel-bypass TCP/IP stack on AF_XDP.</p>\n\
<p>Try <a href=\"/bytes/1048576\">/bytes/1048576</a>.</p></body></html>\n";

/// The `n` bytes that `/bytes/N` sends, in order: a fixed SplitMix64 stream, so a client can check
/// what it received. `fill(offset, buf)` writes bytes `offset..offset + buf.len()`.
pub fn random_bytes(offset: u64, buf: &mut [u8]) {
    let mut word = offset / 8;
    let mut i = 0;
    let mut skip = (offset % 8) as usize;
    while i < buf.len() {
        let v = splitmix(word).to_le_bytes();
        let take = (8 - skip).min(buf.len() - i);
        buf[i..i + take].copy_from_slice(&v[skip..skip + take]);
        i += take;
        skip = 0;
        word += 1;
    }
}

fn splitmix(i: u64) -> u64 {
    let mut z = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(0x1234_5678_9ABC_DEF1);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One parsed request head.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    method: String,
    path: String,
    keep_alive: bool,
    body_len: u64,
}

/// Parse a request head (everything before the blank line).
fn parse(head: &str) -> Result<Request, u16> {
    let mut lines = head.split("\r\n");
    let mut first = lines.next().ok_or(400u16)?.split(' ');
    let (method, path, version) = match (first.next(), first.next(), first.next(), first.next()) {
        (Some(m), Some(p), Some(v), None) => (m, p, v),
        _ => return Err(400),
    };
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(505),
    };
    let mut keep_alive = http11;
    let mut body_len = 0;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(400u16)?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "connection" => {
                let v = value.to_ascii_lowercase();
                if v.split(',').any(|t| t.trim() == "close") {
                    keep_alive = false;
                } else if v.split(',').any(|t| t.trim() == "keep-alive") {
                    keep_alive = true;
                }
            }
            "content-length" => body_len = value.parse().map_err(|_| 400u16)?,
            "transfer-encoding" => return Err(501),
            _ => {}
        }
    }
    Ok(Request { method: method.into(), path: path.into(), keep_alive, body_len })
}

fn status_text(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

fn head(s: &mut TcpStream, code: u16, ctype: &str, len: u64, keep_alive: bool) -> io::Result<()> {
    let conn = if keep_alive { "keep-alive" } else { "close" };
    let h = format!(
        "HTTP/1.1 {code} {}\r\nServer: xdpstack\r\nContent-Type: {ctype}\r\nContent-Length: {len}\r\nConnection: {conn}\r\n\r\n",
        status_text(code)
    );
    s.write_all(h.as_bytes())
}

fn error(s: &mut TcpStream, code: u16) -> io::Result<()> {
    let body = format!("{code} {}\n", status_text(code));
    head(s, code, "text/plain", body.len() as u64, false)?;
    s.write_all(body.as_bytes())
}

/// Serve requests on one connection until it closes (or asks to).
pub(super) fn serve(s: &mut TcpStream) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        // Read until a complete head is buffered.
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if buf.len() > MAX_HEAD {
                return error(s, 431);
            }
            let n = s.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head_text = String::from_utf8_lossy(&buf[..end]).into_owned();
        let consumed = end + 4;
        let req = match parse(&head_text) {
            Ok(r) => r,
            Err(code) => return error(s, code),
        };
        // Skip a request body (GET and HEAD do not need one).
        let mut skip = req.body_len;
        let have = (buf.len() - consumed) as u64;
        let from_buf = skip.min(have) as usize;
        buf.drain(..consumed + from_buf);
        skip -= from_buf as u64;
        while skip > 0 {
            let want = skip.min(chunk.len() as u64) as usize;
            let n = s.read(&mut chunk[..want])?;
            if n == 0 {
                return Ok(());
            }
            skip -= n as u64;
        }
        let send_body = match req.method.as_str() {
            "GET" => true,
            "HEAD" => false,
            _ => return error(s, 405),
        };
        respond(s, &req, send_body, &mut chunk)?;
        if !req.keep_alive {
            return Ok(());
        }
    }
}

fn respond(s: &mut TcpStream, req: &Request, send_body: bool, chunk: &mut [u8]) -> io::Result<()> {
    if req.path == "/" {
        head(s, 200, "text/html; charset=utf-8", PAGE.len() as u64, req.keep_alive)?;
        return if send_body { s.write_all(PAGE.as_bytes()) } else { Ok(()) };
    }
    if let Some(n) =
        req.path.strip_prefix("/bytes/").and_then(|n| n.parse::<u64>().ok()).filter(|n| *n <= MAX_BYTES)
    {
        head(s, 200, "application/octet-stream", n, req.keep_alive)?;
        if send_body {
            let mut off = 0u64;
            while off < n {
                let len = (n - off).min(chunk.len() as u64) as usize;
                random_bytes(off, &mut chunk[..len]);
                s.write_all(&chunk[..len])?;
                off += len as u64;
            }
        }
        return Ok(());
    }
    let body = b"404 Not Found\n";
    head(s, 404, "text/plain", body.len() as u64, req.keep_alive)?;
    if send_body {
        s.write_all(body)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_with_keep_alive_rules() {
        let r = parse("GET /bytes/10 HTTP/1.1\r\nHost: x").unwrap();
        assert_eq!(
            r,
            Request { method: "GET".into(), path: "/bytes/10".into(), keep_alive: true, body_len: 0 }
        );
        assert!(!parse("GET / HTTP/1.1\r\nConnection: close").unwrap().keep_alive);
        assert!(!parse("GET / HTTP/1.0").unwrap().keep_alive);
        assert!(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive").unwrap().keep_alive);
        assert_eq!(parse("GET / HTTP/1.1\r\nContent-Length: 5").unwrap().body_len, 5);
        assert_eq!(parse("GET /").unwrap_err(), 400);
        assert_eq!(parse("GET / HTTP/2").unwrap_err(), 505);
        assert_eq!(parse("GET / HTTP/1.1\r\nbroken header").unwrap_err(), 400);
        assert_eq!(parse("GET / HTTP/1.1\r\nTransfer-Encoding: chunked").unwrap_err(), 501);
    }

    #[test]
    fn random_bytes_are_the_same_from_any_offset() {
        let mut whole = vec![0u8; 1000];
        random_bytes(0, &mut whole);
        for off in [0usize, 1, 7, 8, 9, 333] {
            let mut part = vec![0u8; 100];
            random_bytes(off as u64, &mut part);
            assert_eq!(&part[..], &whole[off..off + 100]);
        }
        assert!(whole.iter().filter(|b| **b == 0).count() < 20, "not trivially zero");
    }
}

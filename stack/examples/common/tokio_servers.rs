//! The servers of the tokio examples, shared with their integration test (`tests/tokio_async.rs`).

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xdpstack::tokio::{TcpListener, TcpStream, UdpSocket};

/// The largest body `GET /bytes/N` serves.
pub const MAX_BYTES: u64 = 1 << 30;

/// The page `GET /` serves.
pub const INDEX: &str = "<!doctype html>\n<title>xdpstack</title>\n<p>Served by tokio on xdpstack.</p>\n";

/// Byte `i` of every `/bytes/N` body (a pattern a client can check).
pub fn body_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// Accept connections forever, one task each, serving HTTP/1.1 with keep-alive.
pub async fn serve_http(listener: TcpListener) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(e) = http_connection(stream).await {
                eprintln!("http: {e}");
            }
        });
    }
}

async fn http_connection(mut s: TcpStream) -> io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        // Read one request head.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 16 << 10 {
                return respond(&mut s, "431 Request Header Fields Too Large", b"", false).await;
            }
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Ok(()); // the client closed
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let mut lines = head.split("\r\n");
        let mut parts = lines.next().unwrap_or("").split(' ');
        let (method, path, version) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
        let close = version == "HTTP/1.0"
            || lines.any(|l| {
                l.to_ascii_lowercase().starts_with("connection:") && l.to_ascii_lowercase().contains("close")
            });
        match (method, path) {
            (Some("GET"), Some("/")) => respond(&mut s, "200 OK", INDEX.as_bytes(), close).await?,
            (Some("GET"), Some(p)) if p.starts_with("/bytes/") => match p[7..].parse::<u64>() {
                Ok(n) if n <= MAX_BYTES => send_bytes(&mut s, n, close).await?,
                _ => respond(&mut s, "400 Bad Request", b"N must be 0..=1073741824\n", close).await?,
            },
            (Some("GET"), _) => respond(&mut s, "404 Not Found", b"not found\n", close).await?,
            _ => respond(&mut s, "405 Method Not Allowed", b"GET only\n", true).await?,
        }
        if close {
            s.shutdown().await?;
            return Ok(());
        }
    }
}

async fn respond(s: &mut TcpStream, status: &str, body: &[u8], close: bool) -> io::Result<()> {
    let conn = if close { "close" } else { "keep-alive" };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/html\r\nConnection: {conn}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await
}

async fn send_bytes(s: &mut TcpStream, n: u64, close: bool) -> io::Result<()> {
    let conn = if close { "close" } else { "keep-alive" };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nContent-Type: application/octet-stream\r\nConnection: {conn}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await?;
    let mut chunk = vec![0u8; 64 << 10];
    let mut sent = 0u64;
    while sent < n {
        let len = (n - sent).min(chunk.len() as u64) as usize;
        for (k, b) in chunk[..len].iter_mut().enumerate() {
            *b = body_byte(sent + k as u64);
        }
        s.write_all(&chunk[..len]).await?;
        sent += len as u64;
    }
    Ok(())
}

/// RFC 862 over TCP: every connection gets its bytes back, until it closes.
pub async fn serve_tcp_echo(listener: TcpListener) -> io::Result<()> {
    loop {
        let (mut s, _) = listener.accept().await?;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 << 10];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = s.shutdown().await;
        });
    }
}

/// RFC 862 over UDP: every datagram goes back to its sender.
pub async fn serve_udp_echo(sock: UdpSocket) -> io::Result<()> {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = sock.recv_from(&mut buf).await?;
        sock.send_to(&buf[..n], from).await?;
    }
}

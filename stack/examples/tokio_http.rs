//! An HTTP/1.1 server on tokio over xdpstack: `GET /` a small page, `GET /bytes/N` N bytes.
//!
//! ```sh
//! cargo run --release -p xdpstack --features tokio --example tokio_http -- --iface xsdemos --addr 10.77.0.2/24 [--port 80]
//! curl http://10.77.0.2/            # from the peer side
//! ```

#[path = "common/tokio_servers.rs"]
mod servers;

use std::process::ExitCode;

use xdpstack::wire::Ipv4Cidr;
use xdpstack::{Config, Stack};

/// `--iface IF --addr A.B.C.D/LEN [--port P] [--echo-port P]`, or the one-line error naming the fix.
fn parse_args() -> Result<(String, Ipv4Cidr, u16, Option<u16>), String> {
    let (mut iface, mut addr, mut port, mut echo) = (None, None, 80u16, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--iface" => iface = Some(value()?),
            "--addr" => {
                addr = Some(
                    value()?.parse::<Ipv4Cidr>().map_err(|e| format!("--addr: {e} (e.g. 10.77.0.2/24)"))?,
                )
            }
            "--port" => port = value()?.parse().map_err(|_| "--port takes a number 1-65535".to_string())?,
            "--echo-port" => {
                echo = Some(value()?.parse().map_err(|_| "--echo-port takes a number 1-65535".to_string())?)
            }
            _ => {
                return Err(format!(
                "unknown argument {a:?} (usage: --iface IF --addr A.B.C.D/LEN [--port P] [--echo-port P])"
            ))
            }
        }
    }
    Ok((iface.ok_or("--iface IF is required")?, addr.ok_or("--addr A.B.C.D/LEN is required")?, port, echo))
}

fn main() -> ExitCode {
    let (iface, addr, port, echo) = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tokio_http: error: {e}");
            return ExitCode::from(2);
        }
    };
    let stack = match Stack::start(Config::new(iface, addr)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tokio_http: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let result: std::io::Result<()> = rt.block_on(async {
        let http = xdpstack::tokio::TcpListener::bind(&stack, ("0.0.0.0", port))?;
        println!("serving http://{}:{port}/", addr.address());
        if let Some(p) = echo {
            let tcp = xdpstack::tokio::TcpListener::bind(&stack, ("0.0.0.0", p))?;
            let udp = xdpstack::tokio::UdpSocket::bind(&stack, ("0.0.0.0", p))?;
            tokio::spawn(servers::serve_tcp_echo(tcp));
            tokio::spawn(servers::serve_udp_echo(udp));
            println!("echo on tcp and udp port {p}");
        }
        tokio::select! {
            r = servers::serve_http(http) => r,
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    });
    drop(rt);
    let report = stack.shutdown();
    println!("frames: {} total, {} lost", report.frames_total, report.frames_lost());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio_http: error: {e}");
            ExitCode::FAILURE
        }
    }
}

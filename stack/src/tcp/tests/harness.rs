//! A connection with its application-side buffer halves, and segment templates.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Instant;

use crate::counters::Counters;
use crate::socket::ring::{ByteRing, Consumer, Producer};
use crate::tcp::{Connection, ConnectionParams, TcpConfig};
use crate::wire::{TcpFlags, TcpRepr, TcpSeqNumber as Seq};

pub const LOCAL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 4000);
pub const REMOTE: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 80);
pub const LOCAL_ISS: Seq = Seq(1000);
pub const REMOTE_ISS: Seq = Seq(5000);

/// A connection and the application's ends of its buffers.
pub struct Endpoint {
    pub conn: Connection,
    /// The application writes here.
    pub app_tx: Producer,
    /// The application reads here.
    pub app_rx: Consumer,
    pub counters: Arc<Counters>,
}

pub fn params(local: SocketAddrV4, remote: SocketAddrV4) -> ConnectionParams {
    ConnectionParams { local, remote, mss: 1460, nodelay: false, keepalive: None }
}

pub fn buffers(cap: usize) -> ((Producer, Consumer), (Producer, Consumer)) {
    (ByteRing::new(cap), ByteRing::new(cap))
}

impl Endpoint {
    /// An active open from LOCAL to REMOTE.
    pub fn connect(
        now: Instant,
        config: TcpConfig,
        params: ConnectionParams,
        iss: Seq,
        cap: usize,
    ) -> Endpoint {
        let ((app_tx, tx), (rx, app_rx)) = buffers(cap);
        let counters = Arc::new(Counters::default());
        let conn = Connection::connect(now, &params, Arc::new(config), iss, tx, rx, counters.clone());
        Endpoint { conn, app_tx, app_rx, counters }
    }

    /// A passive open answering `syn`.
    pub fn accept(
        now: Instant,
        config: TcpConfig,
        params: ConnectionParams,
        iss: Seq,
        syn: &TcpRepr,
        cap: usize,
    ) -> Endpoint {
        let ((app_tx, tx), (rx, app_rx)) = buffers(cap);
        let counters = Arc::new(Counters::default());
        let conn = Connection::accept(now, &params, Arc::new(config), iss, syn, tx, rx, counters.clone());
        Endpoint { conn, app_tx, app_rx, counters }
    }

    /// Drain the segments the connection wants to send, with their payloads.
    pub fn output(&mut self, now: Instant) -> Vec<(TcpRepr, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(s) = self.conn.poll_transmit(now) {
            let mut payload = vec![0u8; s.repr.payload_len];
            self.conn.copy_payload(s.payload_offset, &mut payload);
            out.push((s.repr, payload));
            assert!(out.len() < 100_000, "poll_transmit never returned None");
        }
        out
    }

    /// Everything the application can read now.
    pub fn read_all(&mut self) -> Vec<u8> {
        let mut out = vec![0u8; self.app_rx.len()];
        let n = self.app_rx.read(&mut out);
        out.truncate(n);
        out
    }
}

/// A segment template from REMOTE to LOCAL (`..TEMPLATE` style updates in the tests).
pub const TEMPLATE: TcpRepr = TcpRepr::new(80, 4000, Seq(0), None, TcpFlags::NONE, 65535);

/// A config without timestamps, SACK and window scaling, so that segments are easy to write by hand.
pub fn plain_config() -> TcpConfig {
    TcpConfig { timestamps: false, sack: false, window_scaling: false, ..TcpConfig::default() }
}

/// One segment, or a panic naming what came out instead.
pub fn one(mut v: Vec<(TcpRepr, Vec<u8>)>) -> (TcpRepr, Vec<u8>) {
    assert_eq!(v.len(), 1, "expected exactly one segment, got {v:?}");
    v.remove(0)
}

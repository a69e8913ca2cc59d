//! Where the time goes: the stage timing runs (a kernel client against a stack server per round
//! trip, and one connection between two stacks), added to the report as stages.

use std::io;
use std::net::SocketAddrV4;
use std::sync::Arc;

use crate::results::{self, Mode, Proto};
use crate::throughput::{self, Connector, Role};
use crate::topo::{PORT, SERVER};
use crate::{finish, latency, Bench};

impl Bench {
    /// A busy-poll kernel client against a stack server with stage timing on: the XDP program
    /// stamps each frame, the stack adds up how long frames waited between the stamp and its RX ring,
    /// how long its TX kicks took, and how long it sat idle. Per round trip: the server core's busy
    /// time (the round trip minus the idle time) is the kicks plus the stack's and the application's
    /// own work; the rest of the round trip is the frames' way to the stack's ring (the XDP wait) and
    /// the kernel client. Means over the run.
    pub(crate) fn stages(&mut self) -> io::Result<()> {
        eprintln!("stage timing: kernel client - xdpstack server");
        let (addr, core) = (self.bed.server(), self.bed.cores.server);
        let mut cfg = self.bed.server_stack_config(Mode::BusyPoll);
        cfg.stage_timing = true;
        let stack = Arc::new(self.bed.start_server_stack_with(cfg)?);
        // TCP 16 KiB too: where the stack's largest gap to the kernel is (no segmentation offload).
        for (proto, sizes) in [(Proto::Udp, &[64][..]), (Proto::Tcp, &[64, 16384][..])] {
            let server = latency::stack_server(&stack, addr, proto, core)?;
            let r = sizes.iter().try_for_each(|&size| self.stage_run(&stack, proto, size));
            server.stop();
            r?;
        }
        finish(stack)
    }

    /// The connection rate of stack client and stack server (busy-poll) with stage timing on both:
    /// per connection, each side's TX kicks and its own work (busy time, that is wall time minus
    /// idle time, minus the kicks), and what is left (frames between a kick and being noticed).
    pub(crate) fn conn_stages(&mut self) -> io::Result<()> {
        eprintln!("stage timing: xdpstack client - xdpstack server, connection rate");
        let mut cfg = self.bed.server_stack_config(Mode::BusyPoll);
        cfg.stage_timing = true;
        let server_stack = Arc::new(self.bed.start_server_stack_with(cfg)?);
        let mut cfg = self.bed.client_stack_config(Mode::BusyPoll)?;
        cfg.stage_timing = true;
        let client_stack = Arc::new(self.bed.start_client_stack_with(cfg)?);
        let to = SocketAddrV4::new(SERVER, PORT + 1);
        let srv =
            throughput::stack_tcp_server(&server_stack, to, Role::RequestResponse, self.bed.cores.server)?;
        let names = ["WorkerIdleNs", "StageKickNs", "EthOutFrames", "TcpActiveOpens"];
        let snap = |s: &xdpstack::Stack| names.map(|n| s.counter(n) as f64);
        let (s0, c0) = (snap(&server_stack), snap(&client_stack));
        let t0 = std::time::Instant::now();
        let connector = Connector::Stack(client_stack.clone());
        let rate = throughput::tcp_conn_rate(connector, to, self.plan.duration, self.bed.cores.client);
        let wall = t0.elapsed().as_nanos() as f64;
        let (s1, c1) = (snap(&server_stack), snap(&client_stack));
        srv.stop();
        rate?;
        let conns = c1[3] - c0[3];
        if conns == 0.0 {
            return Err(io::Error::other("stage timing: no connection was made"));
        }
        let per = |a: f64, b: f64| (a - b) / conns;
        let t = wall / conns;
        let (kick_c, kick_s) = (per(c1[1], c0[1]), per(s1[1], s0[1]));
        let busy_c = (t - per(c1[0], c0[0])).clamp(kick_c, t);
        let busy_s = (t - per(s1[0], s0[0])).clamp(kick_s, t);
        let frames = per(c1[2], c0[2]) + per(s1[2], s0[2]);
        let path = format!(
            "xdpstack client -> xdpstack server, one connection (connect, 64 B each way, close; {frames:.1} frames), busy-poll, mean"
        );
        for (name, nanos) in [
            ("client: stack and application (connect, request, read to the end, close)", busy_c - kick_c),
            ("client: TX kicks (copy-mode transmit, veth, XDP, copy to the server's ring)", kick_c),
            ("server: stack and application (SYN, accept, answer, close, TIME-WAIT)", busy_s - kick_s),
            ("server: TX kicks (copy-mode transmit, veth, XDP, copy to the client's ring)", kick_s),
            ("both idle at once: frames on their way, being noticed (the rest)", t - busy_c - busy_s),
        ] {
            self.report.stages.push(results::Stage { path: path.clone(), name: name.into(), nanos });
        }
        eprintln!("  {path}: {:.2} us", t / 1000.0);
        finish(client_stack)?;
        finish(server_stack)
    }

    fn stage_run(&mut self, stack: &xdpstack::Stack, proto: Proto, size: usize) -> io::Result<()> {
        let client = self.kernel_client(proto, true)?;
        let rounds = self.plan.rounds;
        let warm = latency::Rounds { warmup: rounds.warmup, measured: 1 };
        let (client, _) = latency::measure(client, size, warm, self.bed.cores.client)?;
        let names = ["StageXdpToRxNs", "StageRxFrames", "WorkerIdleNs", "StageKickNs", "StageTurnarounds"];
        let before: Vec<u64> = names.iter().map(|n| stack.counter(n)).collect();
        let run = latency::Rounds { warmup: 0, measured: rounds.measured };
        let (_client, hist) = latency::measure(client, size, run, self.bed.cores.client)?;
        let d: Vec<f64> = names.iter().zip(&before).map(|(n, b)| (stack.counter(n) - b) as f64).collect();
        let (frames, turns, rounds) = (d[1], d[4], run.measured as f64);
        if frames == 0.0 || turns == 0.0 {
            return Err(io::Error::other("stage timing: no stamped frame or no TX kick was seen"));
        }
        let rtt = hist.mean();
        // Per round trip. The kicks and the idle time add up over the turns of a round trip (one
        // turn for a small message; several for 16 KiB, which comes and goes as a dozen segments).
        // Frames wait between XDP and the ring in parallel with each other: one mean wait is counted,
        // and never more than the time the server was idle.
        let kick = d[3] / rounds;
        let busy = (rtt - d[2] / rounds).clamp(kick, rtt);
        let user = busy - kick;
        let xdp = (d[0] / frames).min(rtt - busy);
        let path = format!("kernel client -> xdpstack server, {} {size} B, busy-poll, mean", proto.label());
        for (name, nanos) in [
            ("XDP program to the stack's RX ring (AF_XDP copy, being noticed)", xdp),
            ("xdpstack and the application: protocol, sockets, copies, the answer", user),
            ("TX kicks, sendto: copy-mode transmit, veth, the client kernel's receive path", kick),
            ("kernel client: send path to XDP, noticing the answer, copies (the rest)", rtt - busy - xdp),
        ] {
            self.report.stages.push(results::Stage { path: path.clone(), name: name.into(), nanos });
        }
        eprintln!(
            "  {path}: {:.2} us, of which xdpstack {:.2} us ({:.1} frames in, {:.1} kicks per round trip)",
            rtt / 1000.0,
            user / 1000.0,
            frames / rounds,
            turns / rounds
        );
        Ok(())
    }
}

//! Busy time of a core, from /proc/stat: (user + nice + system + irq + softirq) over the elapsed time.
//!
//! On a veth testbed the receive processing of a frame runs on the core that sent it (veth hands the
//! frame to the peer inside the sender's transmit call), so a server's core does not carry all of its
//! receive cost, whichever stack it runs. The report says so next to per-core figures.

use std::io;
use std::time::Instant;

/// Jiffies counters of one core.
#[derive(Debug, Clone, Copy)]
struct Sample {
    busy: u64,
    total: u64,
}

fn sample(core: usize) -> io::Result<Sample> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let name = format!("cpu{core}");
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))
        .ok_or_else(|| io::Error::other(format!("no {name} in /proc/stat")))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal ...
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    Ok(Sample { busy, total: busy + get(3) + get(4) })
}

/// Measures how busy a core was between `start` and `stop`.
#[derive(Debug)]
pub struct CoreMeter {
    core: usize,
    start: Sample,
}

impl CoreMeter {
    /// Start measuring `core`.
    pub fn start(core: usize) -> io::Result<CoreMeter> {
        Ok(CoreMeter { core, start: sample(core)? })
    }

    /// The fraction of the core that was busy since `start` (0.0..=1.0).
    pub fn stop(&self) -> io::Result<f64> {
        let end = sample(self.core)?;
        let total = end.total.saturating_sub(self.start.total);
        if total == 0 {
            return Ok(0.0);
        }
        Ok(end.busy.saturating_sub(self.start.busy) as f64 / total as f64)
    }
}

/// Measures the share of a busy-polling stack's time that was work, from its `WorkerIdleNs` counter.
#[derive(Debug)]
pub struct WorkMeter {
    idle_ns: u64,
    t0: Instant,
}

impl WorkMeter {
    /// Start measuring `stack`.
    pub fn start(stack: &xdpstack::Stack) -> WorkMeter {
        WorkMeter { idle_ns: stack.counter("WorkerIdleNs"), t0: Instant::now() }
    }

    /// The fraction of the time since `start` the stack spent working (0.0..=1.0).
    pub fn stop(&self, stack: &xdpstack::Stack) -> f64 {
        let idle = stack.counter("WorkerIdleNs").saturating_sub(self.idle_ns) as f64;
        let elapsed = self.t0.elapsed().as_nanos() as f64;
        (1.0 - idle / elapsed).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spinning_thread_shows_up() {
        let m = CoreMeter::start(0).unwrap();
        let t = std::thread::spawn(|| {
            core_affinity::set_for_current(core_affinity::CoreId { id: 0 });
            let end = Instant::now() + std::time::Duration::from_millis(300);
            while Instant::now() < end {
                std::hint::spin_loop();
            }
        });
        t.join().unwrap();
        let busy = m.stop().unwrap();
        assert!(busy > 0.5, "{busy}");
    }
}

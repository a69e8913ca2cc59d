//! `xdpstack testbed up|down`.

use std::io;
use std::process::ExitCode;

use clap::Subcommand;
use xdpstack::testbed::{Testbed, TestbedConfig};

#[derive(Subcommand, Debug)]
pub enum TestbedAction {
    /// Create the namespaces and the veth pair, and print how to use them.
    Up {
        /// Testbed name (letters and digits, at most 10).
        #[arg(long, default_value = "xdps")]
        name: String,
        /// RX/TX queues on each veth end.
        #[arg(long, default_value_t = 1)]
        queues: u32,
    },
    /// Remove the namespaces (and with them the veth pair).
    Down {
        /// Testbed name.
        #[arg(long, default_value = "xdps")]
        name: String,
    },
}

fn mac(m: [u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

pub fn run(action: TestbedAction) -> io::Result<ExitCode> {
    match action {
        TestbedAction::Up { name, queues } => {
            if queues == 0 || queues > 64 {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "--queues must be 1..=64"));
            }
            let tb = Testbed::up(TestbedConfig { name: name.clone(), queues, ..TestbedConfig::default() })?;
            let c = &tb.config;
            println!("testbed {name:?} is up ({queues} queue(s) per veth end)");
            println!(
                "  stack side: netns {}, interface {} ({}), stack address {}",
                tb.stack_ns,
                tb.stack_if,
                mac(tb.stack_mac),
                tb.stack_cidr()
            );
            println!(
                "  peer side:  netns {}, interface {} ({}), kernel address {}/{}",
                tb.peer_ns,
                tb.peer_if,
                mac(tb.peer_mac),
                c.peer_addr,
                c.prefix_len
            );
            println!("try:");
            println!(
                "  ip netns exec {} xdpstack run --iface {} --addr {} --service echo-udp:7 --service echo-tcp:7 --service http:80",
                tb.stack_ns, tb.stack_if, tb.stack_cidr()
            );
            println!("  ip netns exec {} ping -c 3 {}", tb.peer_ns, c.stack_addr);
            println!("  echo hello | ip netns exec {} socat - UDP:{}:7", tb.peer_ns, c.stack_addr);
            println!("  ip netns exec {} curl http://{}/", tb.peer_ns, c.stack_addr);
            println!("remove it with: xdpstack testbed down --name {name}");
            tb.persist();
            Ok(ExitCode::SUCCESS)
        }
        TestbedAction::Down { name } => {
            Testbed::existing(&name)?.down()?;
            println!("testbed {name:?} removed");
            Ok(ExitCode::SUCCESS)
        }
    }
}

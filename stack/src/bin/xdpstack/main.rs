//! The `xdpstack` command: run the stack on an interface with built-in services, look at a running
//! stack (`ss`, `stat`), ping from a stack, and manage the veth testbed.

mod filter;
mod ping;
mod run;
mod ss;
mod testbed_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A kernel-bypass TCP/UDP/IPv4 stack on AF_XDP.
#[derive(Parser, Debug)]
#[command(name = "xdpstack", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the stack on an interface, with built-in services, until Ctrl-C.
    Run(run::RunArgs),
    /// Send ICMP echo requests from a stack's raw ICMP socket, like iputils ping (exit 0 when a
    /// reply arrives, 1 when none does, 2 on errors).
    Ping(ping::PingArgs),
    /// The socket table of a running stack, like iproute2's `ss`.
    Ss(ss::SsArgs),
    /// The counters of a running stack, like `nstat -a` (SNMP MIB names).
    Stat(ss::StatArgs),
    /// Two network namespaces joined by a veth pair: the stack's end and a kernel peer.
    Testbed {
        #[command(subcommand)]
        action: testbed_cmd::TestbedAction,
    },
}

/// Help and version go out as clap prints them; a usage error becomes one line naming the problem.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(2);
        }
        _ => {}
    }
    let text = e.render().to_string();
    let problem: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
        .map(|l| l.trim_start_matches("error: "))
        .collect();
    eprintln!("xdpstack: error: {} (see xdpstack --help)", problem.join(" "));
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    // ping's output is iputils'; the stack it starts only speaks up when something is wrong.
    let level = if matches!(cli.command, Cmd::Ping(_)) { "warn" } else { "info" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp_millis()
        .init();
    let result = match cli.command {
        Cmd::Run(args) => run::run(args),
        Cmd::Ping(args) => ping::run(args),
        Cmd::Ss(args) => ss::ss(args),
        Cmd::Stat(args) => ss::stat(args),
        Cmd::Testbed { action } => testbed_cmd::run(action),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xdpstack: error: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `cargo xtask e2e [--gateway URL]`: the e2e tests (`e2e/`) against a running
//! deployment, the local one by default.

use std::process::Command;

use anyhow::Result;

use crate::tally;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The deployment's gateway; default: the local one of `cargo xtask up`.
    #[arg(long, value_name = "URL", default_value = platform::gateway::LOCAL_URL)]
    pub gateway: String,
    /// How many replicas of each service the local system runs (`cargo xtask up
    /// --replicas N`): the resume test hops across every notifier replica.
    #[arg(long, default_value_t = 1)]
    pub replicas: u16,
}

/// The command that runs the e2e tests against `gateway`, with `replicas` of each service
/// behind it.
pub fn command(gateway: &str, replicas: u16) -> Command {
    let mut command = Command::new("cargo");
    command
        .args(["test", "--package", "e2e", "--no-fail-fast"])
        .env("CQRS_GATEWAY", gateway)
        .env("CQRS_REPLICAS", replicas.to_string());
    eprintln!("e2e tests against {gateway} ({replicas} replica(s) of each service)");
    command
}

pub fn run(args: &Args) -> Result<()> {
    let (counted, outcome) = tally::run(&mut command(&args.gateway, args.replicas));
    println!("e2e: {} passed, {} failed", counted.passed, counted.failed);
    outcome
}

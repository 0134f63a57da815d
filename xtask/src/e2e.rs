//! `cargo xtask e2e [--gateway URL]`: the e2e tests (`e2e/`) against a running
//! deployment, the local one by default.

use std::process::Command;

use anyhow::Result;

use crate::test::tally;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The deployment's gateway; default: the local one of `cargo xtask up`.
    #[arg(long, value_name = "URL", default_value = platform::gateway::LOCAL_URL)]
    pub gateway: String,
}

/// The command that runs the e2e tests against `gateway`.
pub fn command(gateway: &str) -> Command {
    let mut command = Command::new("cargo");
    command
        .args(["test", "--package", "e2e", "--no-fail-fast"])
        .env("CQRS_GATEWAY", gateway);
    eprintln!("e2e tests against {gateway}");
    command
}

pub fn run(args: &Args) -> Result<()> {
    let (counted, outcome) = tally::run(&mut command(&args.gateway));
    println!("e2e: {} passed, {} failed", counted.passed, counted.failed);
    outcome
}

//! `cargo xtask bench`: figures of the running system, each next to a baseline taken in
//! the same run (the machines are shared and noisy, so only ratios compare across runs).
//!
//! - latency through the gateway (create, create to readable, create to notified) against
//!   the gateway's own `/producer/healthz`;
//! - the notifier's resident memory per idle stream, against its memory with none.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::{cmd, process, system};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Sequential creates for the latency figures.
    #[arg(long, default_value_t = 300)]
    pub count: usize,
    /// Idle streams for the memory figure.
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
}

fn measure() -> Command {
    let mut command = Command::new("cargo");
    command.args([
        "run",
        "--quiet",
        "--package",
        "e2e",
        "--bin",
        "measure",
        "--",
    ]);
    command
}

pub fn run(args: &Args) -> Result<()> {
    if !system::is_up() {
        system::up(&system::UpArgs { release: false })?;
    }
    eprintln!("\n== latency ({} creates)", args.count);
    cmd::run(measure().args(["latency", "--count", &args.count.to_string()]))?;

    eprintln!("\n== notifier memory with {} idle streams", args.clients);
    let pid = system::notifier_pid()?.context("the notifier is not running")?;
    let before = process::resident_kib(pid).context("cannot read the notifier's memory")?;
    let mut idle = measure();
    idle.args(["idle", "--clients", &args.clients.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    cmd::echo(&idle);
    let mut child = idle.spawn().context("cannot start the idle clients")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    if !line.starts_with("ready") {
        let _ = child.kill();
        bail!("the idle clients did not connect: {line:?}");
    }
    let after = process::resident_kib(pid).context("cannot read the notifier's memory")?;
    drop(child.stdin.take());
    child.wait()?;
    let per_client = (after.saturating_sub(before)) as f64 / args.clients as f64;
    println!(
        "notifier resident memory: {before} KiB idle, {after} KiB with {} streams: \
         {per_client:.1} KiB per stream ({:.2}x its idle size in all)",
        args.clients,
        after as f64 / before as f64
    );
    Ok(())
}

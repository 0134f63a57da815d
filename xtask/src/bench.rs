//! `cargo xtask bench`: the platform's figures in release mode, each next to a raw
//! baseline measured in the same run on the same servers (the machines are shared and
//! noisy, so only ratios compare across runs). The measuring is done by the `perf`
//! program (services/system-tests/src/perf); this module builds it and the services in
//! release mode, measures P8 (`cargo xtask up`, warm) itself, and runs it; then the
//! persister's positions bench (the cost of read-your-writes on the write path).

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::{cmd, infra, paths, system};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Small sizes: shows in about two minutes that every figure works (not its value).
    #[arg(long)]
    pub short: bool,
    /// Skip P8 (it stops everything, then times `cargo xtask up` from cold processes and
    /// warm caches).
    #[arg(long)]
    pub no_up: bool,
    /// Also sample the platform side of each figure with Linux `perf record`; the flat
    /// profiles go to target/bench/profiles/*.txt.
    #[arg(long)]
    pub profile: bool,
}

pub fn run(args: &Args) -> Result<()> {
    build()?;
    let up_seconds = if args.no_up { None } else { Some(time_up()?) };
    // The bench starts its own release services; the debug system would only add noise.
    eprintln!("\n== stopping the services and the gateway for the bench (the servers stay)");
    system::stop_services_and_gateway()?;
    infra::up()?;
    let mut perf = Command::new(paths::target_dir().join("release").join("perf"));
    perf.current_dir(paths::root())
        .args(["run", "--out"])
        .arg(out_dir());
    if args.short {
        perf.arg("--short");
    }
    if args.profile {
        perf.arg("--profile");
    }
    if let Some(seconds) = up_seconds {
        perf.args(["--up-seconds", &format!("{seconds:.1}")]);
    }
    cmd::run(&mut perf).context("the bench failed")?;
    // The cost of read-your-writes on the write path: the persister's drain rate with
    // the applied positions written every 10 ms against once an hour, alternating rounds
    // (services/persister/benches/positions.rs, a plain `main`).
    eprintln!("\n== persister drain rate, applied positions recorded or not");
    cmd::run(Command::new("cargo").current_dir(paths::root()).args([
        "bench",
        "--package",
        "persister",
        "--bench",
        "positions",
        "--",
        "2000",
        "4",
    ]))?;
    eprintln!(
        "\nThe figures are in {}; start the system again with `cargo xtask up`.",
        paths::display(&out_dir().join("results.md"))
    );
    Ok(())
}

fn out_dir() -> std::path::PathBuf {
    paths::root().join("target").join("bench")
}

/// Builds the four services and the bench program with optimisations.
fn build() -> Result<()> {
    eprintln!("== building the services and the bench in release mode");
    let mut cargo = Command::new("cargo");
    cargo
        .current_dir(paths::root())
        .args(["build", "--release"]);
    for service in platform::SERVICES {
        cargo.args(["--package", service.name, "--bin", service.name]);
    }
    cargo.args(["--package", "system-tests", "--bin", "perf"]);
    cmd::run(&mut cargo)
}

/// P8: `cargo xtask up` from nothing running, with the builds and downloads cached: the
/// debug services are built first (untimed), then everything is stopped and started.
fn time_up() -> Result<f64> {
    eprintln!("\n== P8: `cargo xtask up`, warm");
    system::services_build(false)?;
    system::down(false)?;
    let started = Instant::now();
    system::up(&system::UpArgs::debug(1))?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("P8: up and ready in {seconds:.1} s");
    Ok(seconds)
}

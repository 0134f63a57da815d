//! `cargo xtask chaos`: the fault harness. Builds the service binaries and the harness
//! (`services/system-tests`, binary `chaos`), makes sure this checkout's Kafka and
//! Cassandra run, and runs the scenarios of issue 13 (R1-R7) with their ledger checks.
//! The figures go to `target/chaos/<scenario>.json` and `target/chaos/summary.md`.
//! `cargo xtask test` runs the short form as one of its steps.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Result, bail};

use crate::{cmd, infra, paths};

/// The scenarios that kill or freeze Kafka or Cassandra.
const TOUCH_SERVERS: [&str; 2] = ["R1", "R4"];

#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = "Each scenario starts the service binaries on \
        loopback with a topic, dead-letter topic, keyspace and consumer group of its own, puts \
        a bounded load through them while a fault strikes, and ends with a ledger check \
        (every acknowledged command is in the topic; the table equals the fold of the topic; \
        every SSE client saw every event once, in order).\n\n\
        R1  Kafka SIGKILLed and restarted under command load\n\
        R2  the persister SIGKILLed mid-stream\n\
        R3  the topic replayed twice into a fresh table, and redelivered: byte-identical\n\
        R4  Cassandra frozen (SIGSTOP) under load: no offset committed before its write\n\
        R5  SSE clients while the notifier is killed; `event: reset` for a lost position\n\
        R7  poison records among valid ones: all dead-lettered with their origin\n\n\
        R1 and R4 kill and freeze this checkout's Kafka and Cassandra (`cargo xtask infra \
        up`; started here when they are not running). Figures: target/chaos/<scenario>.json \
        and target/chaos/summary.md; service logs under target/chaos/logs/. Exits non-zero \
        when a ledger check fails.")]
pub struct Args {
    /// Scenarios to run, comma-separated: R1, R2, R3, R4, R5, R7, or all.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "all",
        ignore_case = true,
        value_parser = ["R1", "R2", "R3", "R4", "R5", "R7", "all"]
    )]
    pub scenario: Vec<String>,
    /// The short form (what `cargo xtask test` runs: a few minutes for all scenarios).
    #[arg(long)]
    pub short: bool,
    /// Commands of the load scenarios (full: 20000; short: 1000).
    #[arg(long)]
    pub commands: Option<usize>,
    /// Commands per second (full: 200; short: 100).
    #[arg(long)]
    pub rate: Option<f64>,
    /// How many times the fault strikes in R1, R2 and R5 (full: 3, 10, 5; short: 1, 1, 2).
    #[arg(long)]
    pub kills: Option<usize>,
    /// SSE clients of R5 (full: 200; short: 50).
    #[arg(long)]
    pub clients: Option<usize>,
    /// Seconds Cassandra stays frozen in R4 (full: 30; short: 10).
    #[arg(long)]
    pub freeze_secs: Option<u64>,
    /// Valid records of R7, with 1 % poison records among them (full: 100000).
    #[arg(long)]
    pub records: Option<usize>,
    /// Leave Kafka and Cassandra running if this command started them.
    #[arg(long)]
    pub keep_infra: bool,
}

pub fn run(args: &Args) -> Result<()> {
    build()?;
    let started_infra = ensure_infra(&args.scenario)?;
    let outcome = harness(args);
    if started_infra && !args.keep_infra {
        infra::down_quietly()?;
    }
    outcome
}

/// The step of `cargo xtask test`: every scenario in its short form, on the servers the
/// test run started.
pub fn run_short() -> Result<()> {
    let args = Args {
        scenario: vec!["all".into()],
        short: true,
        commands: None,
        rate: None,
        kills: None,
        clients: None,
        freeze_secs: None,
        records: None,
        keep_infra: true,
    };
    build()?;
    ensure_infra(&args.scenario)?;
    harness(&args)
}

/// Builds the four service binaries and the harness (debug, as `cargo xtask up` does).
pub fn build() -> Result<()> {
    let mut cargo = Command::new("cargo");
    cargo.current_dir(paths::root()).arg("build");
    for service in platform::SERVICES {
        cargo.args(["--package", service.name, "--bin", service.name]);
    }
    cargo.args(["--package", "system-tests", "--bin", "chaos"]);
    cmd::run(&mut cargo)
}

/// The harness program.
pub fn program() -> PathBuf {
    paths::target_dir().join("debug").join("chaos")
}

/// Starts this checkout's servers when none serve; refuses to run R1 or R4 on servers it
/// cannot restart. Returns whether it started them.
fn ensure_infra(scenarios: &[String]) -> Result<bool> {
    let mut started = false;
    if !infra::is_serving() {
        infra::up()?;
        started = true;
    }
    let touches = scenarios.iter().any(|s| {
        s.eq_ignore_ascii_case("all") || TOUCH_SERVERS.iter().any(|t| s.eq_ignore_ascii_case(t))
    });
    if touches && !infra::runs_here() {
        bail!(
            "R1 and R4 kill and freeze Kafka and Cassandra, but the servers on their ports were \
             not started from this checkout, so the harness could not restart them. Stop them \
             and let `cargo xtask chaos` start its own, or run the other scenarios alone \
             (`--scenario R2,R3,R5,R7`)"
        );
    }
    Ok(started)
}

/// Runs the harness with `args`; fails when a ledger check failed.
fn harness(args: &Args) -> Result<()> {
    let mut command = Command::new(program());
    command
        .current_dir(paths::root())
        .env("CHAOS_XTASK", paths::xtask_program()?)
        .arg("--out")
        .arg(paths::target_dir().join("chaos"))
        .arg("run");
    if !args.scenario.iter().any(|s| s.eq_ignore_ascii_case("all")) {
        let names: Vec<String> = args.scenario.iter().map(|s| s.to_lowercase()).collect();
        command.arg("--scenario").arg(names.join(","));
    }
    if args.short {
        command.arg("--short");
    }
    let options = [
        ("--commands", args.commands.map(|v| v.to_string())),
        ("--rate", args.rate.map(|v| v.to_string())),
        ("--kills", args.kills.map(|v| v.to_string())),
        ("--clients", args.clients.map(|v| v.to_string())),
        ("--freeze-secs", args.freeze_secs.map(|v| v.to_string())),
        ("--records", args.records.map(|v| v.to_string())),
    ];
    for (flag, value) in options {
        if let Some(value) = value {
            command.arg(flag).arg(value);
        }
    }
    cmd::run(&mut command).map_err(|error| {
        error.context(format!(
            "a ledger check failed or a scenario did not complete: see {} and the services' \
             logs under {}",
            paths::display(&paths::target_dir().join("chaos/summary.md")),
            paths::display(&paths::target_dir().join("chaos/logs"))
        ))
    })
}

//! `cargo xtask rebuild`: proves that the event log rebuilds the read model. The
//! persister binary replays `documents.t` from its start into a fresh keyspace (its own
//! consumer group, up to the end offsets captured at the start), then every row is
//! compared, values and write times, with the live keyspace. The code is the fault
//! harness's (`services/system-tests`, `chaos rebuild`), shared with its scenario R3.

use std::process::Command;

use anyhow::{Result, bail};

use crate::{chaos, cmd, infra, paths};

#[derive(Debug, Clone, clap::Args)]
#[command(
    after_long_help = "Captures the end offsets of the topic, waits until the live persister has applied up to \
    them, runs the persister binary with a fresh consumer group and a fresh keyspace \
    (rebuild_<unix time>) until its committed offsets reach those ends, stops it, and \
    compares every row (author, text and their write times) with the live table. Prints \
    rows, equal, different, and changed meanwhile (documents with records after the \
    captured end, which may differ). Exits non-zero on a real difference.\n\n\
    Needs the running system (`cargo xtask up`). The rebuilt keyspace is dropped unless \
    --keep keeps it, e.g. to switch the services to it with CASSANDRA_KEYSPACE."
)]
pub struct Args {
    /// The topic to replay.
    #[arg(long, default_value = platform::kafka::DOCUMENTS_TOPIC)]
    pub topic: String,
    /// The live keyspace to compare with.
    #[arg(long, default_value = platform::cassandra::KEYSPACE)]
    pub keyspace: String,
    /// The live persister's consumer group.
    #[arg(long, default_value = platform::kafka::PERSISTER_GROUP)]
    pub live_group: String,
    /// Keep the rebuilt keyspace (its name is printed) instead of dropping it.
    #[arg(long)]
    pub keep: bool,
    /// How long the replay may take, in seconds.
    #[arg(long, default_value_t = 1800)]
    pub timeout_secs: u64,
}

pub fn run(args: &Args) -> Result<()> {
    if !infra::is_serving() {
        bail!(
            "Kafka and Cassandra do not answer: the rebuild compares with the live system, so \
             start it first with `cargo xtask up`"
        );
    }
    chaos::build()?;
    let mut command = Command::new(chaos::program());
    command
        .current_dir(paths::root())
        .arg("--out")
        .arg(paths::target_dir().join("chaos"))
        .args([
            "rebuild",
            "--topic",
            &args.topic,
            "--keyspace",
            &args.keyspace,
        ])
        .args(["--live-group", &args.live_group])
        .args(["--timeout-secs", &args.timeout_secs.to_string()]);
    if args.keep {
        command.arg("--keep");
    }
    cmd::run(&mut command).map_err(|error| {
        error.context("the rebuilt table differs from the live one, or the replay failed")
    })
}

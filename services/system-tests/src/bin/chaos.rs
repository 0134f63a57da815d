//! The fault harness's program: `chaos run` runs scenarios R1-R7 against the service
//! binaries next to it, `chaos rebuild` replays the event log into a fresh keyspace and
//! compares it with the live one. `cargo xtask chaos` and `cargo xtask rebuild` build
//! everything and run it; run it directly only with the servers up and the binaries built.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use system_tests::chaos::{self, Layout, Scenario, Sizes, rebuild};

#[derive(Debug, Parser)]
#[command(
    name = "chaos",
    about = "The kafka-cqrs fault harness (run it with `cargo xtask chaos`)"
)]
struct Cli {
    /// Where the JSON figures, the summary and the services' logs go.
    #[arg(long, env = "CHAOS_OUT", default_value = "target/chaos")]
    out: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run fault scenarios and their ledger checks.
    Run(RunArgs),
    /// Replay the event log into a fresh keyspace and compare it with the live table.
    Rebuild(RebuildArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Scenarios to run (repeat or comma-separate); all of them by default.
    #[arg(long, value_delimiter = ',')]
    scenario: Vec<Scenario>,
    /// The short form (small sizes, a few minutes in all), as `cargo xtask test` runs it.
    #[arg(long)]
    short: bool,
    /// Commands of the load scenarios (R1-R5).
    #[arg(long)]
    commands: Option<usize>,
    /// Commands per second of the load.
    #[arg(long)]
    rate: Option<f64>,
    /// How many times the fault strikes (R1 Kafka, R2 persister, R5 notifier kills).
    #[arg(long)]
    kills: Option<usize>,
    /// SSE clients of R5.
    #[arg(long)]
    clients: Option<usize>,
    /// Seconds Cassandra stays frozen in R4.
    #[arg(long)]
    freeze_secs: Option<u64>,
    /// Valid records of R7 (poison records are 1 % of them).
    #[arg(long)]
    records: Option<usize>,
}

#[derive(Debug, clap::Args)]
struct RebuildArgs {
    /// The topic to replay.
    #[arg(long, env = "KAFKA_TOPIC", default_value = platform::kafka::DOCUMENTS_TOPIC)]
    topic: String,
    /// The live keyspace to compare with.
    #[arg(long, env = "CASSANDRA_KEYSPACE", default_value = platform::cassandra::KEYSPACE)]
    keyspace: String,
    /// The live persister's consumer group.
    #[arg(long, default_value = platform::kafka::PERSISTER_GROUP)]
    live_group: String,
    /// Keep the rebuilt keyspace (its name is printed) instead of dropping it.
    #[arg(long)]
    keep: bool,
    /// How long the replay may take, in seconds.
    #[arg(long, default_value_t = 1800)]
    timeout_secs: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_default();
    let layout = Layout {
        bin_dir,
        out_dir: cli.out.clone(),
    };
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    let outcome = runtime.block_on(async {
        // Ctrl-C ends the scenario: dropping it stops every service it started.
        tokio::select! {
            outcome = execute(cli.command, &layout) => outcome,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    });
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command, layout: &Layout) -> anyhow::Result<bool> {
    // Fails with a message that says how to start the servers.
    let infra = tokio::task::spawn_blocking(testkit::infra).await?;
    eprintln!(
        "Kafka {}, Cassandra {}",
        infra.bootstrap, infra.contact_points
    );
    match command {
        Command::Run(args) => {
            let mut sizes = if args.short {
                Sizes::short()
            } else {
                Sizes::full()
            };
            if let Some(n) = args.commands {
                sizes.commands = n;
                sizes.sse_commands = n;
            }
            if let Some(rate) = args.rate {
                sizes.rate = rate;
                sizes.sse_rate = rate;
            }
            if let Some(n) = args.kills {
                sizes.kafka_kills = n;
                sizes.persister_kills = n;
                sizes.notifier_kills = n;
            }
            if let Some(n) = args.clients {
                sizes.sse_clients = n;
            }
            if let Some(secs) = args.freeze_secs {
                sizes.freeze = Duration::from_secs(secs);
            }
            if let Some(n) = args.records {
                sizes.valid_records = n;
                sizes.poison_records = (n / 100).max(1);
            }
            let scenarios = if args.scenario.is_empty() {
                Scenario::ALL.to_vec()
            } else {
                args.scenario
            };
            let reports = chaos::run(&scenarios, sizes, args.short, layout).await?;
            eprintln!(
                "\n== chaos summary ({})",
                layout.out_dir.join("summary.md").display()
            );
            for report in &reports {
                eprintln!("{}", report.line());
            }
            Ok(reports.iter().all(|r| r.passed))
        }
        Command::Rebuild(args) => {
            let args = rebuild::RebuildArgs {
                topic: args.topic,
                keyspace: args.keyspace,
                live_group: args.live_group,
                keep: args.keep,
                timeout: Duration::from_secs(args.timeout_secs),
            };
            let logs = layout.out_dir.join("logs").join("rebuild");
            let report = rebuild::rebuild(&layout.bin_dir, &logs, &args).await?;
            std::fs::create_dir_all(&layout.out_dir)?;
            std::fs::write(
                layout.out_dir.join("rebuild.json"),
                serde_json::to_string_pretty(&report)?,
            )?;
            let d = &report.diff;
            println!(
                "rebuild of {} from {} ({} records, replayed in {:.1} s; {} dead letters):\n  \
                 rows live {}, rebuilt {}; equal {}, different {}, changed meanwhile {}",
                report.live_keyspace,
                report.topic,
                report.records,
                report.replay_s,
                report.dead_letters,
                d.rows_left,
                d.rows_right,
                d.equal,
                d.different,
                d.changed_meanwhile
            );
            for example in &d.examples {
                println!("  differs: {example}");
            }
            if report.kept {
                println!(
                    "The rebuilt keyspace {} is kept: point the services at it with \
                     CASSANDRA_KEYSPACE={} (and drop it with `DROP KEYSPACE {}` when done).",
                    report.rebuilt_keyspace, report.rebuilt_keyspace, report.rebuilt_keyspace
                );
            } else {
                println!(
                    "The rebuilt keyspace {} was dropped (--keep keeps it).",
                    report.rebuilt_keyspace
                );
            }
            Ok(d.ok())
        }
    }
}

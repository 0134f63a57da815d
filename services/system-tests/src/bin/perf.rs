//! The benchmark's program: `perf run` measures every figure of the platform against its
//! raw baseline (release binaries next to it, the servers of `cargo xtask infra up`) and
//! writes `target/bench/results.md`; `perf load` puts a bounded load through a gateway.
//! `cargo xtask bench` builds everything in release mode and runs it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use system_tests::chaos::Layout;
use system_tests::perf::{self, Sizes, load};

#[derive(Debug, Parser)]
#[command(
    name = "perf",
    about = "The kafka-cqrs benchmark and load generator (run the bench with `cargo xtask bench`)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure every figure against its baseline; write results.md and latency.svg.
    Run(RunArgs),
    /// A bounded load through a gateway (create, update, read per round), to feed the
    /// dashboards of a running deployment.
    Load(LoadArgs),
    /// The bare SSE server `run` measures the notifier against, in a process of its own
    /// (run by `perf run`: prints its address, sends each line of stdin to every stream).
    #[command(hide = true)]
    BareSse,
    /// The bare reader `run`'s P6 also measures the reader against, in a process of its
    /// own (prints its address; stops when stdin closes).
    #[command(hide = true)]
    BareReader {
        /// The keyspace whose documents it reads.
        keyspace: String,
    },
    /// The OTLP receiver of `run`'s P7, in a process of its own (prints its endpoint,
    /// answers each line of stdin with the number of spans received).
    #[command(hide = true)]
    OtlpSink,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Where results.md, latency.svg and the services' logs go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Small sizes: shows that every figure works, in about a minute.
    #[arg(long)]
    short: bool,
    /// P8, measured by `cargo xtask bench`: seconds `cargo xtask up` took, warm.
    #[arg(long)]
    up_seconds: Option<f64>,
    /// Also sample the platform side of each figure with Linux `perf record` (a flat
    /// profile per function, as text in <out>/profiles; needs the `perf` tool and
    /// kernel.perf_event_paranoid <= 2).
    #[arg(long)]
    profile: bool,
    /// Only these figures, such as `--only P3,P6` (P2 and P6 bring P1, whose results
    /// they use). Default: P1 to P7.
    #[arg(long, value_delimiter = ',', value_name = "P")]
    only: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct LoadArgs {
    /// The gateway to load.
    #[arg(long, default_value = platform::gateway::LOCAL_URL)]
    gateway: String,
    /// Rounds per second (at most 5,000).
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Seconds to run (at most 3,600).
    #[arg(long, default_value_t = 60)]
    duration_secs: u64,
    /// Allow a gateway that is not on loopback (a deployment you run).
    #[arg(long)]
    remote: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => bench(args).await,
        Command::BareSse => perf::serve_bare().await,
        Command::OtlpSink => perf::serve_otlp_sink().await,
        Command::BareReader { keyspace } => perf::serve_bare_reader(&keyspace).await,
        Command::Load(args) => {
            load::run(&load::LoadPlan {
                gateway: args.gateway,
                rate: args.rate,
                duration: Duration::from_secs(args.duration_secs),
                remote: args.remote,
            })
            .await
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn bench(args: RunArgs) -> anyhow::Result<()> {
    let infra = tokio::task::spawn_blocking(testkit::infra).await?;
    eprintln!(
        "Kafka {}, Cassandra {}",
        infra.bootstrap, infra.contact_points
    );
    let bin_dir = std::env::current_exe()?
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    let layout = Layout {
        bin_dir,
        out_dir: args.out.clone(),
    };
    let sizes = if args.short {
        Sizes::SHORT
    } else {
        Sizes::FULL
    };
    let figures = perf::Figures::only(&args.only)?;
    let profiles = args.profile.then(|| args.out.join("profiles"));
    let report = perf::run(&layout, sizes, &figures, args.up_seconds, profiles).await?;
    let machine = machine();
    report.write(&args.out, &machine)?;
    println!("{}", report.markdown(&machine));
    println!("Written: {}", args.out.join("results.md").display());
    Ok(())
}

/// The CPU model, its count and the memory, from /proc.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or("unknown memory".into(), |kib| {
            format!("{:.1} GiB", kib as f64 / 1048576.0)
        });
    format!("{cpus} × {model}, {memory}")
}

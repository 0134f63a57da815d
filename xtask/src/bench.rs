//! `cargo xtask bench`: figures of the running system, each next to a baseline taken in
//! the same run (the machines are shared and noisy, so only ratios compare across runs).
//!
//! - latency through the gateway (create, create to readable, create to notified) against
//!   the gateway's own `/producer/healthz`;
//! - the notifier's resident memory per idle stream, against its memory with none;
//! - the persister's drain rate with the applied positions (read-your-writes) written
//!   every 10 ms, against the same with them written once an hour.

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
    /// Creates per throughput round (four rounds: telemetry on, off, on, off).
    #[arg(long, default_value_t = 2000)]
    pub throughput_count: usize,
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
        system::up(&system::UpArgs {
            release: false,
            containers: false,
        })?;
    }
    eprintln!("\n== latency ({} creates)", args.count);
    cmd::run(measure().args(["latency", "--count", &args.count.to_string()]))?;

    telemetry_overhead(args.throughput_count)?;

    eprintln!("\n== persister drain rate, applied positions recorded or not");
    // A plain `main` (services/persister/benches/positions.rs), built like the tests.
    cmd::run(Command::new("cargo").args([
        "test",
        "--package",
        "persister",
        "--bench",
        "positions",
        "--",
        "2000",
        "4",
    ]))?;

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

/// Producer throughput with telemetry fully on (spans exported to Jaeger, as the
/// running producer does) against a second producer with export off, in alternating
/// rounds so that both meet the same machine load.
fn telemetry_overhead(count: usize) -> Result<()> {
    const QUIET_PORT: u16 = 18083;
    eprintln!("\n== producer throughput, telemetry exported vs not ({count} creates a round)");
    let binary = system::producer_binary();
    let mut quiet = Command::new(&binary);
    quiet
        .env("HTTP_HOST", "127.0.0.1")
        .env("HTTP_PORT", QUIET_PORT.to_string())
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd::echo(&quiet);
    let mut quiet = QuietProducer(quiet.spawn().context("cannot start the second producer")?);
    let ready = std::time::Instant::now();
    while system::probe(QUIET_PORT, "/readyz").map_or(true, |s| s != "200") {
        if ready.elapsed() > std::time::Duration::from_secs(30) {
            bail!("the second producer did not become ready");
        }
        if let Some(status) = quiet.0.try_wait()? {
            bail!("the second producer exited ({status})");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let round = |port: u16| -> Result<f64> {
        let output = cmd::output(measure().args([
            "throughput",
            "--producer",
            &format!("http://127.0.0.1:{port}"),
            "--count",
            &count.to_string(),
        ]))?;
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "throughput round failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        text.split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("unexpected output {text:?}"))
    };
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        on.push(round(platform::PRODUCER.port)?);
        off.push(round(QUIET_PORT)?);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "producer throughput: {:.0} creates/s with spans exported, {:.0} without ({:?} / {:?}): \
         ratio {:.2}",
        mean(&on),
        mean(&off),
        on.iter().map(|r| r.round()).collect::<Vec<_>>(),
        off.iter().map(|r| r.round()).collect::<Vec<_>>(),
        mean(&on) / mean(&off)
    );
    drop(quiet);
    Ok(())
}

/// Stops the second producer however the bench ends.
struct QuietProducer(std::process::Child);

impl Drop for QuietProducer {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.0.wait();
    }
}

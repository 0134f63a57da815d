//! `cargo xtask bench`: the platform's figures in release mode, each next to a raw
//! baseline measured in the same run on the same servers (the machines are shared and
//! noisy, so only ratios compare across runs). The measuring is done by the `perf`
//! program (services/system-tests/src/perf); this module builds it and the services in
//! release mode, measures P8 (`cargo xtask up`, warm) itself, and runs it; then the
//! persister's positions bench (the cost of read-your-writes on the write path) and the
//! telemetry's log-line bench (criterion; its figures are added to results.md).

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
    log_line()?;
    eprintln!(
        "\nThe figures are in {}; start the system again with `cargo xtask up`.",
        paths::display(&out_dir().join("results.md"))
    );
    Ok(())
}

/// What one JSON log line costs (libs/telemetry/benches/log_line.rs, criterion, CPU time
/// of the process per event), against the baselines measured in the same run; the table
/// is printed and added to results.md.
fn log_line() -> Result<()> {
    eprintln!(
        "\n== one JSON log line, against the same event unlogged and tracing-subscriber's JSON"
    );
    cmd::run(Command::new("cargo").current_dir(paths::root()).args([
        "bench",
        "--package",
        "telemetry",
        "--bench",
        "log_line",
    ]))?;
    let group = paths::target_dir().join("criterion").join("log line");
    let table = log_line_table(&criterion_means(&group)?)?;
    println!("\n{table}");
    let results = out_dir().join("results.md");
    let mut text = std::fs::read_to_string(&results)
        .with_context(|| format!("cannot read {}", paths::display(&results)))?;
    text.push('\n');
    text.push_str(&table);
    std::fs::write(&results, text)
        .with_context(|| format!("cannot write {}", paths::display(&results)))
}

/// The mean of each benchmark of a criterion group, by its name, in nanoseconds (the
/// unit of the bench's CPU-time measurement).
fn criterion_means(group: &std::path::Path) -> Result<Vec<(String, f64)>> {
    let read_json = |path: std::path::PathBuf| -> Result<serde_json::Value> {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", paths::display(&path)))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", paths::display(&path)))
    };
    let mut means = Vec::new();
    let entries = std::fs::read_dir(group)
        .with_context(|| format!("criterion wrote no {}", paths::display(group)))?;
    for entry in entries {
        let dir = entry?.path().join("new");
        if !dir.is_dir() {
            continue;
        }
        let name = read_json(dir.join("benchmark.json"))?["function_id"]
            .as_str()
            .context("benchmark.json without a function_id")?
            .to_owned();
        let mean = read_json(dir.join("estimates.json"))?["mean"]["point_estimate"]
            .as_f64()
            .context("estimates.json without a mean")?;
        means.push((name, mean));
    }
    Ok(means)
}

/// The log-line figures as a Markdown section: each case's CPU per event, the line's own
/// share (the case minus the event unlogged), and the two comparisons that matter.
fn log_line_table(means: &[(String, f64)]) -> Result<String> {
    let mean = |name: &str| -> Result<f64> {
        means
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| *m)
            .with_context(|| format!("the log-line bench has no case {name:?}"))
    };
    let unlogged = mean("no line (filtered out)")?;
    let cases = [
        "no line (filtered out)",
        "JsonWithTrace to memory",
        "tracing-subscriber json to memory",
        "JsonWithTrace, a write per line to a file",
        "JsonWithTrace, log-output thread to a file",
    ];
    let mut table = String::from(
        "## Log line (criterion, CPU of the process per event)\n\n\
         The persister's \"event applied\" event inside a span; `line` is the case minus the \
         same event filtered out.\n\n| case | ns per event | line |\n|---|---|---|\n",
    );
    for case in cases {
        let ns = mean(case)?;
        table.push_str(&format!("| {case} | {ns:.0} | {:.0} |\n", ns - unlogged));
    }
    let line = |case: &str| -> Result<f64> { Ok((mean(case)? - unlogged).max(1.0)) };
    table.push_str(&format!(
        "\nFormatting: `JsonWithTrace` / tracing-subscriber's JSON = {:.2}. Writing: \
         log-output thread / a write per line = {:.2}.\n",
        line("JsonWithTrace to memory")? / line("tracing-subscriber json to memory")?,
        line("JsonWithTrace, log-output thread to a file")?
            / line("JsonWithTrace, a write per line to a file")?,
    ));
    Ok(table)
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

#[cfg(test)]
mod tests {
    use super::log_line_table;

    #[test]
    fn the_log_line_table_charges_each_case_its_line() {
        let means: Vec<(String, f64)> = [
            ("no line (filtered out)", 100.0),
            ("JsonWithTrace to memory", 600.0),
            ("tracing-subscriber json to memory", 1100.0),
            ("JsonWithTrace, a write per line to a file", 2600.0),
            ("JsonWithTrace, log-output thread to a file", 800.0),
        ]
        .into_iter()
        .map(|(n, m)| (n.to_owned(), m))
        .collect();
        insta::assert_snapshot!(log_line_table(&means).unwrap());
        let missing = log_line_table(&means[1..]).unwrap_err().to_string();
        assert!(missing.contains("no line (filtered out)"), "{missing}");
    }
}

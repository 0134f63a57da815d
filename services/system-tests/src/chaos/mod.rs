//! The fault harness behind `cargo xtask chaos`: each scenario runs the real service
//! binaries as processes on loopback, with a topic, dead-letter topic, keyspace and
//! consumer group of its own, puts a bounded load through them while a fault strikes
//! (Kafka killed, the persister killed, Cassandra frozen, the notifier killed, poison
//! records), and ends with the one ledger check: acknowledged commands are in the topic,
//! the table is the fold of the topic, SSE clients saw each event once and in order.
//! The figures go to `target/chaos/<scenario>.json` and `target/chaos/summary.md`.
//!
//! `rebuild` (behind `cargo xtask rebuild`) replays a topic into a fresh keyspace with
//! the persister binary and compares it with the live table; scenario R3 uses the same
//! code.

pub mod ledger;
pub mod load;
pub mod procs;
pub mod rebuild;
mod scenarios;
pub mod sse;
pub mod world;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

pub use world::Layout;

/// The scenarios of issue 13 (there is no R6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, Serialize)]
pub enum Scenario {
    /// Kafka SIGKILLed and restarted under a steady command load.
    R1,
    /// The persister SIGKILLed mid-stream, again and again.
    R2,
    /// The whole topic replayed twice into a fresh table, and redelivered by concurrent
    /// persisters: the table is byte-identical.
    R3,
    /// Cassandra frozen (SIGSTOP) under load.
    R4,
    /// SSE clients while the notifier is killed; and a position that left the log.
    R5,
    /// Poison records among valid ones.
    R7,
}

impl Scenario {
    pub const ALL: [Self; 6] = [Self::R1, Self::R2, Self::R3, Self::R4, Self::R5, Self::R7];

    pub fn name(self) -> &'static str {
        match self {
            Self::R1 => "R1",
            Self::R2 => "R2",
            Self::R3 => "R3",
            Self::R4 => "R4",
            Self::R5 => "R5",
            Self::R7 => "R7",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::R1 => "Kafka SIGKILLed and restarted under command load",
            Self::R2 => "persister SIGKILLed mid-stream",
            Self::R3 => "topic replayed twice into a fresh table, and redelivered",
            Self::R4 => "Cassandra frozen under load",
            Self::R5 => "SSE clients while the notifier is killed",
            Self::R7 => "poison records among valid ones",
        }
    }

    /// Whether it kills or freezes Kafka or Cassandra (it needs servers it can restart).
    pub fn touches_servers(self) -> bool {
        matches!(self, Self::R1 | Self::R4)
    }
}

/// How big each scenario is. `full()` is the issue's; `short()` fits in `cargo xtask test`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sizes {
    /// Commands of the load (R1, R2, R3, R4, R5).
    pub commands: usize,
    /// Commands per second.
    pub rate: f64,
    /// Concurrent command clients.
    pub workers: usize,
    /// Kills of Kafka (R1).
    pub kafka_kills: usize,
    /// Kills of the persister (R2).
    pub persister_kills: usize,
    /// Kills of the notifier (R5).
    pub notifier_kills: usize,
    /// How long Cassandra stays frozen (R4).
    pub freeze: Duration,
    /// SSE clients (R5; the other scenarios run a few).
    pub sse_clients: usize,
    /// Commands and commands per second of R5: every client gets every event, so the
    /// frames to deliver are clients times commands.
    pub sse_commands: usize,
    pub sse_rate: f64,
    /// Valid and poison records (R7).
    pub valid_records: usize,
    pub poison_records: usize,
    /// Whether R3 kills one of its redelivering persisters halfway (which costs the
    /// group's session timeout, 45 s, before its restart gets its partitions back).
    pub redelivery_kill: bool,
}

impl Sizes {
    pub fn full() -> Self {
        Self {
            commands: 20_000,
            rate: 200.0,
            workers: 16,
            kafka_kills: 3,
            persister_kills: 10,
            notifier_kills: 5,
            freeze: Duration::from_secs(30),
            sse_clients: 200,
            sse_commands: 4_000,
            sse_rate: 25.0,
            valid_records: 100_000,
            poison_records: 1_000,
            redelivery_kill: true,
        }
    }

    pub fn short() -> Self {
        Self {
            commands: 1_000,
            rate: 100.0,
            workers: 8,
            kafka_kills: 1,
            persister_kills: 1,
            notifier_kills: 2,
            freeze: Duration::from_secs(10),
            sse_clients: 50,
            sse_commands: 1_000,
            sse_rate: 100.0,
            valid_records: 5_000,
            poison_records: 100,
            redelivery_kill: false,
        }
    }
}

/// The figures of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: Scenario,
    pub title: &'static str,
    pub short: bool,
    pub passed: bool,
    /// What failed, in words.
    pub failures: Vec<String>,
    pub took_s: f64,
    pub acknowledged: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub gaps: usize,
    pub out_of_order: usize,
    /// Per fault, the time from the fault to service as before (see the scenario).
    pub recover_s: Vec<f64>,
    pub acks: Option<ledger::AckCheck>,
    pub table: Option<ledger::TableCheck>,
    pub sse: Option<ledger::SseCheck>,
    /// Figures of this scenario alone.
    pub details: BTreeMap<String, serde_json::Value>,
}

impl Report {
    pub fn new(scenario: Scenario, short: bool) -> Self {
        Self {
            scenario,
            title: scenario.title(),
            short,
            passed: false,
            failures: Vec::new(),
            took_s: 0.0,
            acknowledged: 0,
            lost: 0,
            duplicated: 0,
            gaps: 0,
            out_of_order: 0,
            recover_s: Vec::new(),
            acks: None,
            table: None,
            sse: None,
            details: BTreeMap::new(),
        }
    }

    /// Notes a figure of this scenario.
    pub fn detail(&mut self, name: &str, value: impl Serialize) {
        self.details.insert(
            name.to_owned(),
            serde_json::to_value(value).unwrap_or_default(),
        );
    }

    /// Records a failure unless `ok`.
    pub fn require(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.failures.push(what.into());
        }
    }

    /// Takes in the ledger's checks, and the failures they show.
    pub fn ledger(
        &mut self,
        acks: Option<ledger::AckCheck>,
        table: Option<ledger::TableCheck>,
        sse: Option<ledger::SseCheck>,
    ) {
        if let Some(acks) = &acks {
            self.acknowledged = acks.acknowledged;
            self.lost += acks.lost;
            self.duplicated += acks.duplicated;
            self.require(
                acks.lost == 0,
                format!("{} acknowledged commands are not in the topic", acks.lost),
            );
            self.require(
                acks.duplicated == 0,
                format!(
                    "{} acknowledged commands are in the topic more than once",
                    acks.duplicated
                ),
            );
        }
        if let Some(table) = &table {
            self.lost += table.missing + table.different;
            self.require(
                table.ok(),
                format!(
                    "the table is not the fold of the topic: {} missing, {} unexpected, {} different",
                    table.missing, table.unexpected, table.different
                ),
            );
        }
        if let Some(sse) = &sse {
            self.gaps += sse.gaps;
            self.duplicated += sse.duplicates;
            self.out_of_order += sse.out_of_order;
            self.require(
                sse.ok(),
                format!(
                    "SSE clients: {} gaps, {} duplicates, {} out of order, {} unfinished",
                    sse.gaps, sse.duplicates, sse.out_of_order, sse.unfinished
                ),
            );
        }
        self.acks = acks;
        self.table = table;
        self.sse = sse;
    }

    /// One line for the console.
    pub fn line(&self) -> String {
        format!(
            "{} {}: acknowledged {}, lost {}, duplicated {}, gaps {}, out-of-order {}, recover {} ({:.0} s)",
            self.scenario.name(),
            if self.passed { "passed" } else { "FAILED" },
            self.acknowledged,
            self.lost,
            self.duplicated,
            self.gaps,
            self.out_of_order,
            recover_text(&self.recover_s),
            self.took_s
        )
    }
}

fn recover_text(times: &[f64]) -> String {
    if times.is_empty() {
        return "-".into();
    }
    let max = times.iter().copied().fold(0.0_f64, f64::max);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    format!("max {max:.1} s, mean {mean:.1} s over {}", times.len())
}

/// Runs `scenarios` one after another; writes each report and the summary under
/// `layout.out_dir`. Returns the reports.
pub async fn run(
    scenarios: &[Scenario],
    sizes: Sizes,
    short: bool,
    layout: &Layout,
) -> Result<Vec<Report>> {
    std::fs::create_dir_all(&layout.out_dir)?;
    let mut reports = Vec::new();
    for &scenario in scenarios {
        eprintln!("\n== chaos {}: {}", scenario.name(), scenario.title());
        let started = std::time::Instant::now();
        let mut report = Report::new(scenario, short);
        if let Err(error) = scenarios::run(scenario, sizes, layout, &mut report).await {
            report
                .failures
                .push(format!("the scenario did not complete: {error:#}"));
        }
        report.took_s = started.elapsed().as_secs_f64();
        report.passed = report.failures.is_empty();
        eprintln!("{}", report.line());
        for failure in &report.failures {
            eprintln!("    {failure}");
        }
        let path = layout.out_dir.join(format!("{}.json", scenario.name()));
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
        reports.push(report);
        write_summary(&layout.out_dir, &reports)?;
    }
    Ok(reports)
}

/// `summary.md`: one row per scenario.
fn write_summary(dir: &Path, reports: &[Report]) -> Result<()> {
    let mut text = String::from(
        "<!-- Written by `cargo xtask chaos`; the figures of each scenario are in <scenario>.json. -->\n\n\
         | scenario | form | result | acknowledged | lost | duplicated | gaps | out-of-order | time to recover | took |\n\
         |---|---|---|---:|---:|---:|---:|---:|---|---:|\n",
    );
    for r in reports {
        let _ = writeln!(
            text,
            "| {} {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} s |",
            r.scenario.name(),
            r.title,
            if r.short { "short" } else { "full" },
            if r.passed { "passed" } else { "FAILED" },
            r.acknowledged,
            r.lost,
            r.duplicated,
            r.gaps,
            r.out_of_order,
            recover_text(&r.recover_s),
            r.took_s
        );
    }
    std::fs::write(dir.join("summary.md"), text)?;
    Ok(())
}

//! Where each figure's CPU went: every process that takes part (the bench's own client,
//! the services, Kafka, Cassandra) is charged its CPU time (user + system, from
//! `/proc/<pid>/stat`) over each measured run, divided by the run's operations. On a small
//! machine where all of them share the cores, a ratio is mostly a comparison of CPU per
//! operation, and this says which process spends the difference. With `--profile`, the
//! platform side of each figure is also sampled with Linux `perf record` (a flat profile
//! per function, written as text beside `results.md`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::process::{Child, Command};

use super::drive::Outcome;

/// The kernel reports CPU time in clock ticks of `USER_HZ`, which the /proc ABI fixes at
/// 100 per second whatever the kernel's own tick rate.
const TICKS_PER_SECOND: f64 = 100.0;

/// The processes being charged, and the runs measured so far.
pub struct Meter {
    processes: Vec<(String, i32)>,
    runs: Vec<CpuRun>,
    profiles: Option<PathBuf>,
    profiled: BTreeSet<String>,
}

/// One measured run: its operations and each process's CPU time over it.
#[derive(Debug, Clone)]
pub struct CpuRun {
    pub label: String,
    pub operations: usize,
    pub wall: Duration,
    pub cpu: Vec<(String, Duration)>,
}

impl CpuRun {
    /// Microseconds of CPU per operation spent by `process` (zero when it took no part).
    pub fn micros_per_op(&self, process: &str) -> f64 {
        let spent = self
            .cpu
            .iter()
            .filter(|(name, _)| name == process)
            .map(|(_, cpu)| cpu.as_secs_f64())
            .fold(0.0, |sum, seconds| sum + seconds);
        spent * 1e6 / self.operations.max(1) as f64
    }

    pub fn total_micros_per_op(&self) -> f64 {
        let spent: f64 = self.cpu.iter().map(|(_, cpu)| cpu.as_secs_f64()).sum();
        spent * 1e6 / self.operations.max(1) as f64
    }
}

/// A run under way: the CPU times at its start, and the profiler if one samples it.
pub struct Started {
    label: String,
    at: Instant,
    ticks: Vec<(String, u64)>,
    recorder: Option<(Child, PathBuf)>,
}

impl Meter {
    /// Charges the bench itself ("client"), and Kafka and Cassandra when they run here
    /// (found by the marker `cargo xtask infra` puts on their command lines). With
    /// `profiles`, `perf record` output goes there.
    pub fn new(profiles: Option<PathBuf>) -> Result<Self> {
        let mut processes = vec![("client".to_owned(), std::process::id() as i32)];
        processes.extend(infra_processes());
        if let Some(dir) = &profiles {
            std::fs::create_dir_all(dir)?;
        }
        Ok(Self {
            processes,
            runs: Vec::new(),
            profiles,
            profiled: BTreeSet::new(),
        })
    }

    /// Charges `pid` as `name` from now on (a service started for the next figures).
    pub fn watch(&mut self, name: &str, pid: Option<i32>) {
        self.processes.retain(|(n, _)| n != name);
        if let Some(pid) = pid {
            self.processes.push((name.to_owned(), pid));
        }
    }

    /// Starts a run called `label`; with profiling on, samples the processes named in
    /// `profile` over it (the first run of each label only).
    pub async fn start(&mut self, label: &str, profile: &[&str]) -> Started {
        let recorder = match &self.profiles {
            Some(dir) if !profile.is_empty() && self.profiled.insert(label.to_owned()) => {
                let pids: Vec<String> = self
                    .processes
                    .iter()
                    .filter(|(name, _)| profile.contains(&name.as_str()))
                    .map(|(_, pid)| pid.to_string())
                    .collect();
                record(dir, label, &pids).await
            }
            _ => None,
        };
        Started {
            label: label.to_owned(),
            at: Instant::now(),
            ticks: self.ticks(),
            recorder,
        }
    }

    /// Runs `operations` as a run called `label` (see [`Meter::start`]); its successful
    /// operations are the ones charged.
    pub async fn measure(
        &mut self,
        label: &str,
        profile: &[&str],
        operations: impl std::future::Future<Output = Outcome>,
    ) -> Outcome {
        let run = self.start(label, profile).await;
        let outcome = operations.await;
        self.finish(run, &outcome).await;
        outcome
    }

    /// Ends `run` after `outcome`'s successful operations.
    pub async fn finish(&mut self, run: Started, outcome: &Outcome) {
        self.finish_count(run, outcome.latencies.len()).await;
    }

    /// Ends `run` after `operations` operations.
    pub async fn finish_count(&mut self, run: Started, operations: usize) {
        let wall = run.at.elapsed();
        let now = self.ticks();
        let cpu = now
            .iter()
            .map(|(name, after)| {
                let before = run
                    .ticks
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(*after, |(_, t)| *t);
                let spent = after.saturating_sub(before) as f64 / TICKS_PER_SECOND;
                (name.clone(), Duration::from_secs_f64(spent))
            })
            .collect();
        if let Some((child, data)) = run.recorder {
            summarise(child, &data).await;
        }
        // Rounds of one side (ABBA) add up into one run.
        if let Some(same) = self.runs.iter_mut().find(|r| r.label == run.label) {
            same.operations += operations;
            same.wall += wall;
            for (name, spent) in cpu {
                match same.cpu.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, total)) => *total += spent,
                    None => same.cpu.push((name, spent)),
                }
            }
        } else {
            self.runs.push(CpuRun {
                label: run.label,
                operations,
                wall,
                cpu,
            });
        }
    }

    /// Waits (at most `limit`) until the servers and services are quiet: less than a
    /// tenth of a core busy over half a second. A figure measured while Cassandra still
    /// compacts what the previous one wrote, or the persister still drains it, charges
    /// that work to whichever side runs slower; a quiet start keeps it out of the ratio.
    pub async fn settle(&self, limit: Duration) {
        const WINDOW: Duration = Duration::from_millis(500);
        let started = Instant::now();
        let busy = loop {
            let before = self.ticks();
            tokio::time::sleep(WINDOW).await;
            let after = self.ticks();
            let spent: u64 = after
                .iter()
                .filter(|(name, _)| name != "client")
                .map(|(name, t)| {
                    let earlier = before.iter().find(|(n, _)| n == name).map_or(*t, |b| b.1);
                    t.saturating_sub(earlier)
                })
                .sum();
            let cores = spent as f64 / TICKS_PER_SECOND / WINDOW.as_secs_f64();
            if cores < 0.1 || started.elapsed() >= limit {
                break cores;
            }
        };
        if busy >= 0.1 {
            eprintln!(
                "  (still {:.0} % of a core busy after {limit:?}; measuring anyway)",
                busy * 100.0
            );
        } else if started.elapsed() > Duration::from_secs(2) {
            eprintln!("  (quiet after {:.0} s)", started.elapsed().as_secs_f64());
        }
    }

    pub fn runs(&self) -> &[CpuRun] {
        &self.runs
    }

    fn ticks(&self) -> Vec<(String, u64)> {
        self.processes
            .iter()
            .filter_map(|(name, pid)| cpu_ticks(*pid).map(|t| (name.clone(), t)))
            .collect()
    }
}

/// User + system ticks of process `pid` (all its threads), or None once it is gone.
pub fn cpu_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_ticks(&stat)
}

/// Fields 14 and 15 of a /proc stat line; the command name (field 2) may hold spaces and
/// brackets, so counting starts after its last `)`.
fn parse_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (the state), so field 14 is at index 11.
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// Kafka's and Cassandra's processes, by the `-Dkafka-cqrs.infra=<dir>` marker on the
/// command lines `cargo xtask infra up` gives them.
fn infra_processes() -> Vec<(String, i32)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let Some(marker) = cmdline
            .split(|b| *b == 0)
            .find_map(|arg| arg.strip_prefix(b"-Dkafka-cqrs.infra=".as_slice()))
        else {
            continue;
        };
        for name in ["kafka", "cassandra"] {
            if marker.ends_with(format!("/{name}").as_bytes()) {
                found.push((name.to_owned(), pid));
            }
        }
    }
    found
}

/// Starts `perf record` on `pids` (a flat profile, 499 samples a second per thread).
async fn record(dir: &Path, label: &str, pids: &[String]) -> Option<(Child, PathBuf)> {
    if pids.is_empty() {
        return None;
    }
    let data = dir.join(format!("{}.data", file_name(label)));
    let child = Command::new("perf")
        .args([
            "record",
            "--quiet",
            "-F",
            "499",
            "-p",
            &pids.join(","),
            "-o",
        ])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match child {
        Ok(child) => {
            // perf needs a moment to attach to every thread before the run starts.
            tokio::time::sleep(Duration::from_millis(300)).await;
            Some((child, data))
        }
        Err(error) => {
            eprintln!("  (no profile of {label}: cannot run `perf record`: {error})");
            None
        }
    }
}

/// Stops `perf record` and writes its report beside the data as text: the functions that
/// took at least 0.5 % of the samples, by process and library.
async fn summarise(mut child: Child, data: &Path) {
    // perf writes its data file on SIGINT; a kill would leave it truncated.
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGINT,
        );
    }
    let _ = child.wait().await;
    let text = data.with_extension("txt");
    let report = Command::new("perf")
        .args([
            "report",
            "--stdio",
            "--no-children",
            "--sort",
            "comm,dso,sym",
            "--percent-limit",
            "0.5",
            "-i",
        ])
        .arg(data)
        .stderr(Stdio::null())
        .output()
        .await
        .context("cannot run `perf report`");
    match report {
        Ok(output) if output.status.success() => {
            if std::fs::write(&text, &output.stdout).is_ok() {
                eprintln!("  profile: {}", text.display());
            }
        }
        Ok(output) => eprintln!("  (`perf report` failed: {})", output.status),
        Err(error) => eprintln!("  ({error:#})"),
    }
}

fn file_name(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_read_after_a_command_name_with_spaces_and_brackets() {
        let line = "4242 (tokio (worker) 1) S 1 4242 4242 0 -1 4194560 100 0 0 0 731 204 0 0 20 0 9 0 123 456 789";
        assert_eq!(parse_ticks(line), Some(935));
    }

    #[test]
    fn this_process_is_charged_for_the_work_it_does() {
        let pid = std::process::id() as i32;
        let before = cpu_ticks(pid).expect("own stat");
        let started = Instant::now();
        let mut x = 0_u64;
        while started.elapsed() < Duration::from_millis(120) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let after = cpu_ticks(pid).expect("own stat");
        assert!(after > before, "{before} -> {after}");
    }

    #[tokio::test]
    async fn rounds_of_one_label_add_up() {
        let mut meter = Meter {
            processes: vec![("client".into(), std::process::id() as i32)],
            runs: Vec::new(),
            profiles: None,
            profiled: BTreeSet::new(),
        };
        for _ in 0..2 {
            let run = meter.start("P1 platform", &[]).await;
            meter.finish_count(run, 10).await;
        }
        assert_eq!(meter.runs().len(), 1);
        assert_eq!(meter.runs()[0].operations, 20);
    }
}

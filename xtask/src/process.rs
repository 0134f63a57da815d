//! Finding, starting and stopping the background processes xtask runs (the servers' JVMs,
//! the services, the gateway). A process is found by a marker argument in `ps` (a path
//! inside this checkout), not by a pid file, so a lost or stale pid file can neither
//! hide a running process nor point at an unrelated one.

use std::fs::{self, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

/// The pids of the live processes that have `marker` as one of their arguments.
pub fn pids(marker: &str) -> Result<Vec<i32>> {
    pids_with(&[marker])
}

/// The pids of the processes whose command line has every one of `words` as a word.
pub fn pids_with(words: &[&str]) -> Result<Vec<i32>> {
    let output = Command::new("ps")
        .args(["-ww", "-eo", "pid=,args="])
        .output()
        .context("cannot run `ps` to look for running processes")?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .lines()
        .filter(|line| {
            let line_words = line.split_whitespace();
            words
                .iter()
                .all(|w| line_words.clone().any(|word| word == *w))
        })
        .filter_map(|line| line.split_whitespace().next()?.parse().ok())
        .collect())
}

/// Starts `command` detached from this terminal (its own process group, so Ctrl-C in
/// the shell that ran xtask does not reach it), with its console output appended to
/// `log`.
pub fn spawn_detached(title: &str, log: &Path, mut command: Command) -> Result<Child> {
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir)?;
    }
    let console = OpenOptions::new().create(true).append(true).open(log)?;
    command
        .stdin(Stdio::null())
        .stdout(console.try_clone()?)
        .stderr(console)
        .process_group(0);
    crate::cmd::echo(&command);
    command
        .spawn()
        .with_context(|| format!("cannot start {title}"))
}

/// Stops every process with `marker`: `signal` (SIGTERM, or what the program takes as a
/// graceful stop), then SIGKILL after `grace`. Returns the pids that were stopped.
pub fn stop(title: &str, marker: &str, signal: Signal, grace: Duration) -> Result<Vec<i32>> {
    let stopping = pids(marker)?;
    if stopping.is_empty() {
        return Ok(stopping);
    }
    for &pid in &stopping {
        eprintln!("Stopping {title} (pid {pid})...");
        let _ = signal::kill(Pid::from_raw(pid), signal);
    }
    let started = Instant::now();
    let mut last_report = Instant::now();
    while !pids(marker)?.is_empty() {
        if started.elapsed() > grace {
            for pid in pids(marker)? {
                eprintln!(
                    "{title} (pid {pid}) did not stop within {}s: killing it",
                    grace.as_secs()
                );
                let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(500));
            break;
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "  still waiting for {title} to shut down ({}s)",
                started.elapsed().as_secs()
            );
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(stopping)
}

/// Resident memory of `pid` in KiB, from `ps`.
pub fn resident_kib(pid: i32) -> Option<u64> {
    let output = Command::new("ps")
        .args(["-o", "rss=", "-p", &pid.to_string()])
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// Resident memory of `pid` in MiB (for `status`).
pub fn resident_mib(pid: i32) -> Option<u64> {
    resident_kib(pid).map(|kib| kib / 1024)
}

/// Deletes a directory if it exists.
pub fn remove_dir(path: &Path) -> Result<()> {
    if path.exists() {
        fs::remove_dir_all(path).with_context(|| format!("cannot delete {}", path.display()))?;
    }
    Ok(())
}

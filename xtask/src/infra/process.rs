//! Finding, starting and stopping the servers' JVMs. A server's processes are found by
//! their marker argument in `ps`, not by a pid file, so a lost or stale pid file can
//! neither hide a running server nor point at an unrelated process.

use std::fs::{self, OpenOptions};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use super::server::Server;

/// How long a server may take to shut down cleanly before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(45);

/// The pids of the processes that run `server` from this checkout.
pub fn pids(server: &Server) -> Result<Vec<i32>> {
    let output = Command::new("ps")
        .args(["-ww", "-eo", "pid=,args="])
        .output()
        .context("cannot run `ps` to look for running servers")?;
    let marker = server.marker();
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .lines()
        .filter(|line| line.split_whitespace().any(|word| word == marker))
        .filter_map(|line| line.split_whitespace().next()?.parse().ok())
        .collect())
}

/// Starts `command` detached from this terminal (its own process group, so Ctrl-C in
/// the shell that ran xtask does not reach it), with its console output in a file.
pub fn spawn_detached(server: &Server, mut command: Command) -> Result<Child> {
    let console = OpenOptions::new()
        .create(true)
        .append(true)
        .open(server.console_log_path())?;
    command
        .stdin(Stdio::null())
        .stdout(console.try_clone()?)
        .stderr(console)
        .process_group(0);
    crate::cmd::echo(&command);
    command
        .spawn()
        .with_context(|| format!("cannot start {}", server.title))
}

/// Stops every process of `server`: SIGTERM, then SIGKILL after a grace period.
/// Returns the pids that were stopped.
pub fn stop(server: &Server) -> Result<Vec<i32>> {
    let stopping = pids(server)?;
    if stopping.is_empty() {
        return Ok(stopping);
    }
    for &pid in &stopping {
        eprintln!("Stopping {} (pid {pid})...", server.title);
        let _ = signal::kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let started = Instant::now();
    let mut last_report = Instant::now();
    while !pids(server)?.is_empty() {
        if started.elapsed() > STOP_GRACE {
            for pid in pids(server)? {
                eprintln!(
                    "{} (pid {pid}) did not stop within {}s: killing it",
                    server.title,
                    STOP_GRACE.as_secs()
                );
                let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(500));
            break;
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "  still waiting for {} to shut down ({}s)",
                server.title,
                started.elapsed().as_secs()
            );
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(stopping)
}

/// Resident memory of `pid` in MiB, from `ps` (for `status`).
pub fn resident_mib(pid: i32) -> Option<u64> {
    let output = Command::new("ps")
        .args(["-o", "rss=", "-p", &pid.to_string()])
        .output()
        .ok()?;
    let kib: u64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024)
}

/// Deletes a directory if it exists.
pub fn remove_dir(path: &std::path::Path) -> Result<()> {
    if path.exists() {
        fs::remove_dir_all(path).with_context(|| format!("cannot delete {}", path.display()))?;
    }
    Ok(())
}

//! `cargo xtask infra up | down | status | logs`: a real Kafka and a real Cassandra as
//! local JVM processes, without Docker. Jars come from Maven Central (`fetch`), the
//! configuration from `deployment/local/` (`server`), and everything they write goes to
//! `target/infra/`.

pub mod fetch;
mod java;
mod ready;
mod server;

use std::net::TcpListener;
use std::process::{Child, Command as ProcessCommand};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use nix::sys::signal::Signal;

use crate::{cmd, paths, process};

use server::{ALL, CASSANDRA, KAFKA, Server};

/// How long a server may take to shut down cleanly before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(45);

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Start Kafka (127.0.0.1:9092) and Cassandra (127.0.0.1:9042), create the topics and
    /// apply the schema. Fetches the jars with Maven on the first run.
    Up,
    /// Stop Kafka and Cassandra (SIGTERM, then SIGKILL after 45 s).
    Down {
        /// Also delete their data and logs (the jars stay cached).
        #[arg(long)]
        clean: bool,
    },
    /// Show each server's state, address, pid and memory, and whether it answers.
    Status,
    /// Print the last lines of a server's log.
    Logs {
        /// Which server.
        #[arg(value_parser = ["kafka", "cassandra"])]
        server: String,
        /// Keep printing new lines as they come.
        #[arg(short, long)]
        follow: bool,
        /// How many lines to print.
        #[arg(short = 'n', long, default_value_t = 100)]
        lines: usize,
    },
}

pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Up => up(),
        Command::Down { clean } => down(clean),
        Command::Status => status(),
        Command::Logs {
            server,
            follow,
            lines,
        } => logs(&server, follow, lines),
    }
}

/// True when both servers run and answer: `cargo xtask test` then leaves them alone.
pub fn is_serving() -> bool {
    ALL.iter()
        .all(|s| process::pids(&s.marker()).is_ok_and(|p| !p.is_empty()))
        && ready::kafka(KAFKA.address, Duration::from_secs(2)).is_ok()
        && ready::cassandra(CASSANDRA.address, Duration::from_secs(2)).is_ok()
}

/// True when both servers run from this checkout (`infra up` here): the fault harness
/// may kill them, because it can start them again with the same recipe.
pub fn runs_here() -> bool {
    ALL.iter()
        .all(|s| process::pids(&s.marker()).is_ok_and(|p| !p.is_empty()))
}

pub fn up() -> Result<()> {
    let started = Instant::now();
    let java = java::find()?;
    eprintln!("Using Java {} ({}).", java.major, java.executable.display());
    let mut children: Vec<(&Server, Option<Child>)> = Vec::new();
    for server in ALL {
        let running = process::pids(&server.marker())?;
        if let Some(pid) = running.first() {
            eprintln!("{} is already running (pid {pid}).", server.title);
            children.push((server, None));
            continue;
        }
        // Started by another checkout of the project: use it, and leave stopping it to
        // that checkout (`down` stops only the processes of this one).
        if let Some(detail) = probe(server) {
            eprintln!(
                "{} already serves on {} ({detail}), not started from this checkout: using it.",
                server.title, server.address
            );
            children.push((server, None));
            continue;
        }
        check_ports_free(server)?;
        fetch::ensure_jars(server)?;
        let command = server.launch_command(&java)?;
        let child = process::spawn_detached(server.title, &server.console_log_path(), command)?;
        children.push((server, Some(child)));
    }
    for (server, child) in &mut children {
        wait_until_serving(server, child.as_mut())?;
    }
    eprintln!("Preparing the platform's topics and schema:");
    ready::create_topics(KAFKA.address)?;
    ready::apply_schema(CASSANDRA.address)?;
    eprintln!(
        "\nInfrastructure up in {:.1}s:\n  Kafka      {}  (logs: cargo xtask infra logs kafka)\n  \
         Cassandra  {}  (logs: cargo xtask infra logs cassandra)\nStop with `cargo xtask down`.",
        started.elapsed().as_secs_f64(),
        KAFKA.address,
        CASSANDRA.address
    );
    Ok(())
}

/// A port taken by someone else would make the JVM fail after a long start; say so now.
fn check_ports_free(server: &Server) -> Result<()> {
    for &(port, purpose) in server.ports {
        if let Err(error) = TcpListener::bind(("127.0.0.1", port)) {
            bail!(
                "port {port} ({} {purpose}) is already in use ({error}), by a process that \
                 `cargo xtask` did not start. Find it with `ss -ltnp 'sport = :{port}'` (Linux) \
                 or `lsof -iTCP:{port} -sTCP:LISTEN` (macOS), stop it, and run \
                 `cargo xtask infra up` again",
                server.title
            );
        }
    }
    Ok(())
}

/// Probes `server` until it answers, showing progress, failing early if it exits.
fn wait_until_serving(server: &Server, mut child: Option<&mut Child>) -> Result<()> {
    let started = Instant::now();
    let mut last_report = Instant::now();
    eprintln!(
        "Waiting for {} to serve on {}...",
        server.title, server.address
    );
    loop {
        if let Some(detail) = probe(server) {
            eprintln!(
                "{} serves on {} ({detail}) after {:.1}s",
                server.title,
                server.address,
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if let Some(child) = child.as_deref_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!(
                "{} exited during start-up ({status}). Last lines of {}:\n{}\n\nLast lines of \
                 {}:\n{}",
                server.title,
                paths::display(&server.console_log_path()),
                fetch::tail(&server.console_log_path(), 10),
                paths::display(&server.log_path()),
                fetch::tail(&server.log_path(), 20)
            );
        }
        if started.elapsed() > server.start_timeout {
            bail!(
                "{} did not serve on {} within {}s. Read {} (or `cargo xtask infra logs {}`) \
                 to see why; `cargo xtask infra down` stops what was started",
                server.title,
                server.address,
                server.start_timeout.as_secs(),
                paths::display(&server.log_path()),
                server.name
            );
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            eprintln!(
                "  {} not serving yet ({}s; log: {})",
                server.title,
                started.elapsed().as_secs(),
                paths::display(&server.log_path())
            );
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// One quick probe; `Some(detail)` when the server answers.
fn probe(server: &Server) -> Option<String> {
    let timeout = Duration::from_secs(2);
    if server.name == KAFKA.name {
        let brokers = ready::kafka(server.address, timeout).ok()?;
        Some(format!("{brokers} broker(s)"))
    } else {
        let version = ready::cassandra(server.address, timeout).ok()?;
        Some(format!("release {version}"))
    }
}

pub fn down(clean: bool) -> Result<()> {
    for server in ALL {
        let stopped = process::stop(server.title, &server.marker(), Signal::SIGTERM, STOP_GRACE)?;
        if stopped.is_empty() {
            eprintln!("{} is not running.", server.title);
        } else {
            eprintln!("{} stopped.", server.title);
        }
        if clean {
            process::remove_dir(&server.data_dir())?;
            process::remove_dir(&server.logs_dir())?;
            eprintln!(
                "Deleted {} and {}.",
                paths::display(&server.data_dir()),
                paths::display(&server.logs_dir())
            );
        }
    }
    Ok(())
}

/// `down` without `--clean`, as a step of `cargo xtask test`.
pub fn down_quietly() -> Result<()> {
    down(false)
}

pub fn status() -> Result<()> {
    println!(
        "{:<10} {:<8} {:<15} {:>7} {:>8}  answers",
        "server", "state", "address", "pid", "memory"
    );
    for server in ALL {
        let pids = process::pids(&server.marker())?;
        let (state, pid, memory, answer) = match pids.first() {
            None => ("stopped", "-".into(), "-".into(), "-".into()),
            Some(&pid) => (
                "running",
                pid.to_string(),
                process::resident_mib(pid).map_or("?".into(), |m| format!("{m} MiB")),
                probe(server).unwrap_or_else(|| "no (starting, or see its log)".into()),
            ),
        };
        println!(
            "{:<10} {:<8} {:<15} {:>7} {:>8}  {answer}",
            server.title, state, server.address, pid, memory
        );
    }
    Ok(())
}

fn logs(name: &str, follow: bool, lines: usize) -> Result<()> {
    let Some(server) = ALL.into_iter().find(|s| s.name == name) else {
        bail!("no server named {name}: use kafka or cassandra");
    };
    let path = server.log_path();
    if !path.exists() {
        bail!(
            "{} has no log yet at {}: start it with `cargo xtask infra up`",
            server.title,
            paths::display(&path)
        );
    }
    let mut tail = ProcessCommand::new("tail");
    tail.args(["-n", &lines.to_string()]);
    if follow {
        tail.arg("-F");
    }
    cmd::run(tail.arg(path))
}

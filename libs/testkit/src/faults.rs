//! Fault injection on the real servers: `pause` freezes a server's process (SIGSTOP), as
//! a hung broker or node would be, and the guard thaws it (SIGCONT) when dropped, even
//! when the test panics. `kill` crashes it (SIGKILL: connections reset, the port
//! refuses), and the guard starts it again with the same command line, directory and
//! environment. Tests that use it stop a server every other test shares, so they
//! are named `outage_*` and `cargo xtask test` runs them alone, after the others.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

/// Which server to freeze.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Kafka,
    Cassandra,
}

/// Thaws the server when dropped.
#[derive(Debug)]
#[must_use = "the server thaws when the guard is dropped"]
pub struct Paused {
    pid: i32,
    server: Server,
}

impl Paused {
    /// Thaws the server now.
    pub fn resume(self) {
        drop(self);
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        if let Err(error) = signal::kill(Pid::from_raw(self.pid), Signal::SIGCONT) {
            eprintln!(
                "warning: cannot resume {:?} (pid {}): {error}",
                self.server, self.pid
            );
        }
    }
}

/// Freezes `server` (found by the process listening on its port) until the guard drops.
///
/// # Panics
/// When the servers are not local processes (containers) or the process is not found.
pub fn pause(server: Server) -> Paused {
    let pid = server_pid(server);
    signal::kill(Pid::from_raw(pid), Signal::SIGSTOP)
        .unwrap_or_else(|e| panic!("cannot pause {server:?} (pid {pid}): {e}"));
    Paused { pid, server }
}

/// A killed server, started again when dropped (also when the test panics).
#[derive(Debug)]
#[must_use = "the server starts again when the guard is dropped"]
pub struct Killed {
    server: Server,
    command: Vec<OsString>,
    directory: PathBuf,
    environment: Vec<(OsString, OsString)>,
    /// Where the process wrote its output (its stdout), to append to again.
    output: Option<PathBuf>,
}

impl Killed {
    /// Starts the server again now; it serves again after its start-up time, which the
    /// test waits for itself.
    pub fn restart(self) {
        drop(self);
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let Some((program, args)) = self.command.split_first() else {
            return;
        };
        let output = || {
            self.output
                .as_ref()
                .and_then(|path| std::fs::OpenOptions::new().append(true).open(path).ok())
                .map_or_else(Stdio::null, Stdio::from)
        };
        // Its own process group, so that the test's end does not take it down.
        let started = Command::new(program)
            .args(args)
            .current_dir(&self.directory)
            .env_clear()
            .envs(self.environment.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(output())
            .stderr(output())
            .process_group(0)
            .spawn();
        if let Err(error) = started {
            eprintln!(
                "warning: cannot start {:?} again ({error}); `cargo xtask infra up` does",
                self.server
            );
        }
    }
}

/// Kills `server` (SIGKILL) and returns a guard that starts it again, the same way.
///
/// # Panics
/// As [`pause`], and when the process's command line cannot be read.
pub fn kill(server: Server) -> Killed {
    let pid = server_pid(server);
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let split = |bytes: Vec<u8>| -> Vec<OsString> {
        bytes
            .split(|&b| b == 0)
            .filter(|part| !part.is_empty())
            .map(|part| OsString::from_vec(part.to_vec()))
            .collect()
    };
    let command = split(std::fs::read(proc.join("cmdline")).expect("the server's command line"));
    let environment = split(std::fs::read(proc.join("environ")).unwrap_or_default())
        .into_iter()
        .filter_map(|entry| {
            let bytes = entry.into_vec();
            let at = bytes.iter().position(|&b| b == b'=')?;
            Some((
                OsString::from_vec(bytes[..at].to_vec()),
                OsString::from_vec(bytes[at + 1..].to_vec()),
            ))
        })
        .collect();
    let directory = std::fs::read_link(proc.join("cwd")).expect("the server's directory");
    let output = std::fs::read_link(proc.join("fd/1"))
        .ok()
        .filter(|path| path.is_file());
    signal::kill(Pid::from_raw(pid), Signal::SIGKILL)
        .unwrap_or_else(|e| panic!("cannot kill {server:?} (pid {pid}): {e}"));
    // Gone once its port is free: a restart before that could not bind.
    let port = server_port(server);
    for _ in 0..100 {
        if listener_pid(port).is_none() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Killed {
        server,
        command,
        directory,
        environment,
        output,
    }
}

/// The port `server` listens on, from the test kit's addresses.
fn server_port(server: Server) -> u16 {
    let infra = crate::infra();
    let address = match server {
        Server::Kafka => infra.bootstrap.clone(),
        Server::Cassandra => infra.contact_points.clone(),
    };
    address
        .split(',')
        .next()
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("cannot tell the port of {address}"))
}

/// The pid of the local process that serves `server`.
fn server_pid(server: Server) -> i32 {
    let port = server_port(server);
    listener_pid(port).unwrap_or_else(|| {
        panic!(
            "no local process listens on port {port} for {server:?}: fault tests need the \
             servers of `cargo xtask infra up`, not containers"
        )
    })
}

/// Kills `server` (found by the process listening on its port) with SIGKILL, as a crash
/// or a power cut of that node would; returns the pid that was killed. Whoever started
/// the server must start it again (the fault harness runs `cargo xtask infra up`, which
/// waits until it serves); [`kill`] is the variant that starts it again by itself.
///
/// # Panics
/// As [`pause`].
pub fn kill_server(server: Server) -> i32 {
    let pid = server_pid(server);
    signal::kill(Pid::from_raw(pid), Signal::SIGKILL)
        .unwrap_or_else(|e| panic!("cannot kill {server:?} (pid {pid}): {e}"));
    pid
}

/// The pid of the process listening on TCP `port`, from `ss`.
fn listener_pid(port: u16) -> Option<i32> {
    let output = Command::new("ss")
        .args(["-Hltnp", &format!("sport = :{port}")])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let start = text.find("pid=")? + 4;
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

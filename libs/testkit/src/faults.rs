//! Fault injection on the real servers: `pause` freezes a server's process (SIGSTOP), as
//! a hung broker or node would be, and the guard thaws it (SIGCONT) when dropped, even
//! when the test panics. Tests that use it stop a server every other test shares, so they
//! are named `outage_*` and `cargo xtask test` runs them alone, after the others.

use std::process::Command;

use nix::sys::signal::{Signal, kill};
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
        if let Err(error) = kill(Pid::from_raw(self.pid), Signal::SIGCONT) {
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
    let infra = crate::infra();
    let address = match server {
        Server::Kafka => infra.bootstrap.clone(),
        Server::Cassandra => infra.contact_points.clone(),
    };
    let port = address
        .split(',')
        .next()
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("cannot tell the port of {address}"));
    let pid = listener_pid(port).unwrap_or_else(|| {
        panic!(
            "no local process listens on port {port} for {server:?}: fault tests need the \
             servers of `cargo xtask infra up`, not containers"
        )
    });
    kill(Pid::from_raw(pid), Signal::SIGSTOP)
        .unwrap_or_else(|e| panic!("cannot pause {server:?} (pid {pid}): {e}"));
    Paused { pid, server }
}

/// Kills `server` (found by the process listening on its port) with SIGKILL, as a crash
/// or a power cut of that node would; returns the pid that was killed. Whoever started
/// the server must start it again (the fault harness runs `cargo xtask infra up`).
///
/// # Panics
/// As [`pause`].
pub fn kill_server(server: Server) -> i32 {
    let paused = pause(server);
    let pid = paused.pid;
    kill(Pid::from_raw(pid), Signal::SIGKILL)
        .unwrap_or_else(|e| panic!("cannot kill {server:?} (pid {pid}): {e}"));
    // Thawing a killed process is harmless (and lets it die at once).
    drop(paused);
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

//! The service binaries as child processes of the harness: started with their settings in
//! the environment (as `cargo xtask up` starts them), killed or frozen on purpose, and
//! never left behind. Each child runs under `setpriv --pdeathsig KILL`, so the kernel kills
//! it when the harness dies in any way (a panic, SIGKILL, Ctrl-C); a live harness stops
//! its children when their guard is dropped.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A free TCP port on loopback (the kernel picks it; it is released again at once, and
/// the service binds it a moment later).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).context("no free port")?;
    Ok(listener.local_addr()?.port())
}

/// One service binary, run as a child process; started again with the same settings
/// after a kill.
#[derive(Debug)]
pub struct ServiceProcess {
    pub name: &'static str,
    program: PathBuf,
    env: Vec<(String, String)>,
    pub port: u16,
    logs: PathBuf,
    child: Option<Child>,
    /// How many times it was started (names its log files).
    pub starts: u32,
}

impl ServiceProcess {
    /// A service named `name` from `bin_dir`, listening on a free port of loopback with
    /// `env` on top of the harness's environment. Not started yet.
    pub fn new(
        name: &'static str,
        bin_dir: &Path,
        logs: &Path,
        env: Vec<(String, String)>,
    ) -> Result<Self> {
        let program = bin_dir.join(name);
        if !program.exists() {
            bail!(
                "{} is not built: run the harness with `cargo xtask chaos`, which builds it",
                program.display()
            );
        }
        Ok(Self {
            name,
            program,
            env,
            port: free_port()?,
            logs: logs.to_owned(),
            child: None,
            starts: 0,
        })
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The pid of the running child, if any.
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// Starts the binary (in the background, its output in `<logs>/<name>-<n>.log`).
    pub fn start(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!("{} runs already", self.name);
        }
        self.starts += 1;
        fs::create_dir_all(&self.logs)?;
        let log = self.logs.join(format!("{}-{}.log", self.name, self.starts));
        let out = File::create(&log).with_context(|| format!("cannot write {}", log.display()))?;
        // The platform's launch description, with no trace export: the harness needs no
        // traces, and an exporter aimed at nothing would only retry.
        let launch = platform::Launch {
            host: "127.0.0.1",
            port: self.port,
            kafka: None,
            cassandra: None,
            otlp: None,
            instance: None,
        };
        let service = platform::service(self.name)
            .with_context(|| format!("{} is not a service of the platform", self.name))?;
        let mut command = Command::new("setpriv");
        command
            .args(["--pdeathsig", "KILL", "--"])
            .arg(&self.program)
            .envs(service.environment(&launch))
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {} (is setpriv installed?)", self.name))?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until `/readyz` answers 200; returns how long that took.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<Duration> {
        let started = Instant::now();
        let client = testkit::http();
        let url = format!("{}/readyz", self.url());
        loop {
            if let Ok(response) = client.get(&url).send().await
                && response.status() == 200
            {
                return Ok(started.elapsed());
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                bail!(
                    "{} exited while starting ({status}); see its log under {}",
                    self.name,
                    self.logs.display()
                );
            }
            if started.elapsed() > timeout {
                bail!(
                    "{} was not ready within {timeout:?}; see its log under {}",
                    self.name,
                    self.logs.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts it and waits until it is ready.
    pub async fn start_ready(&mut self) -> Result<Duration> {
        self.start()?;
        self.wait_ready(Duration::from_secs(60)).await
    }

    /// Sends `signal` to the running child.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let pid = self
            .pid()
            .with_context(|| format!("{} is not running", self.name))?;
        kill(Pid::from_raw(pid), signal).with_context(|| format!("cannot signal {}", self.name))
    }

    /// SIGKILL, as a crash would; waits until the process is gone.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            // The child may have died on its own meanwhile: that is not an error here.
            let _ = child.kill();
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM, the graceful stop (the persister commits its offsets), then SIGKILL after
    /// 20 s.
    pub async fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let started = Instant::now();
        while child.try_wait()?.is_none() {
            if started.elapsed() > Duration::from_secs(20) {
                eprintln!("  {} did not stop within 20 s: killing it", self.name);
                let _ = child.kill();
                child.wait()?;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            // A scenario may have frozen it (SIGSTOP); thaw it too, so that nothing is left
            // stopped should the kill fail.
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGCONT);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

//! buildah, podman and skopeo as xtask runs them: always with the project's
//! `deployment/images/containers.conf` (runc, explicit ulimits), and podman's
//! Docker-compatible API on a private unix socket for the testcontainers smoke tests.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{cmd, paths};

/// The committed containers.conf that every podman, buildah and skopeo run reads.
pub fn containers_conf() -> PathBuf {
    paths::root().join("deployment/images/containers.conf")
}

/// `tool` (buildah, podman, skopeo) with `CONTAINERS_CONF` set.
pub fn command(tool: &str) -> Command {
    let mut command = Command::new(tool);
    command.env("CONTAINERS_CONF", containers_conf());
    command
}

/// Fails with what to install when `tool` cannot run.
pub fn require(tool: &str) -> Result<()> {
    let works = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Ok(());
    }
    bail!(
        "cannot run `{tool}`, which builds and runs the container images. Install it \
         (Debian/Ubuntu: `sudo apt-get install buildah podman skopeo runc`; `.ci/run` does) \
         and run the command again"
    )
}

/// The musl C compiler wrapper, which compiles librdkafka and zlib for the static binaries.
pub fn require_musl_gcc() -> Result<()> {
    let works = Command::new("musl-gcc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Ok(());
    }
    bail!(
        "cannot run `musl-gcc`, which compiles librdkafka for the images' static binaries. \
         Install it (Debian/Ubuntu: `sudo apt-get install musl-tools`; `.ci/run` does) and \
         run the command again"
    )
}

/// `podman system service` answering the Docker API on a unix socket, for as long as this
/// value lives (dropping it stops the service).
#[derive(Debug)]
pub struct ApiService {
    child: Child,
    socket: PathBuf,
}

impl ApiService {
    /// Starts the service and waits until its socket answers.
    pub fn start() -> Result<Self> {
        require("podman")?;
        // A short path: unix socket paths are limited to 107 bytes, and checkouts may
        // live deep.
        let socket =
            std::env::temp_dir().join(format!("kafka-cqrs-podman-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&socket);
        let log = paths::target_dir().join("images/podman-service.log");
        std::fs::create_dir_all(log.parent().expect("a log has a directory"))?;
        let console = std::fs::File::create(&log)?;
        let mut service = command("podman");
        service
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", socket.display()))
            .stdin(Stdio::null())
            .stdout(console.try_clone()?)
            .stderr(console);
        cmd::echo(&service);
        let mut child = service
            .spawn()
            .context("cannot start `podman system service`")?;
        let started = Instant::now();
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "`podman system service` exited ({status}); see {}",
                    paths::display(&log)
                );
            }
            if started.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                bail!(
                    "podman's API did not answer on {} within 20s; see {}",
                    socket.display(),
                    paths::display(&log)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("podman's Docker API answers on unix://{}", socket.display());
        Ok(Self { child, socket })
    }

    /// The `DOCKER_HOST` value that reaches the service.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

impl Drop for ApiService {
    fn drop(&mut self) {
        // SIGTERM lets podman remove its socket; it exits within a second.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if self.child.try_wait().is_ok_and(|s| s.is_some()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

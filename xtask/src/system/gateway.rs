//! The local gateway: nginx from the system's packages, with the configuration of
//! `deployment/local/nginx/nginx.conf` filled in for this checkout.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;

use crate::{cmd, paths, process};

const PORT: u16 = platform::gateway::LOCAL_PORT;

fn prefix() -> PathBuf {
    paths::root().join("target/system/gateway")
}

/// The `-p` argument that finds our nginx among the machine's processes.
pub fn marker() -> String {
    prefix().display().to_string()
}

/// nginx on the PATH, or in /usr/sbin where Debian puts it (not on a user's PATH).
fn nginx() -> Result<PathBuf> {
    let on_path = Command::new("nginx").arg("-v").output();
    if on_path.is_ok_and(|o| o.status.success()) {
        return Ok(PathBuf::from("nginx"));
    }
    let sbin = PathBuf::from("/usr/sbin/nginx");
    if sbin.exists() {
        return Ok(sbin);
    }
    bail!(
        "cannot find nginx, which runs the local gateway on port {PORT}. Install it \
         (Debian/Ubuntu: `sudo apt-get install nginx-light`; macOS: `brew install nginx`) and \
         run `cargo xtask up` again"
    )
}

/// Writes the configuration for `replicas` of each service and starts nginx; when it
/// runs already, rewrites the configuration and has nginx reload it (open streams finish
/// on the old workers).
pub fn start(replicas: u16) -> Result<()> {
    let running = process::pids(&marker())?.first().copied();
    let nginx = nginx()?;
    if running.is_none() && std::net::TcpListener::bind(("127.0.0.1", PORT)).is_err() {
        bail!(
            "port {PORT} (the gateway) is already in use by a process `cargo xtask` did not \
             start. Find it with `ss -ltnp 'sport = :{PORT}'`, stop it, and run \
             `cargo xtask up` again"
        );
    }
    let prefix = prefix();
    for dir in ["logs", "tmp"] {
        fs::create_dir_all(prefix.join(dir))?;
    }
    let template = paths::local_config_dir().join("nginx/nginx.conf");
    let mut text = fs::read_to_string(&template)
        .with_context(|| format!("cannot read {}", template.display()))?;
    for service in platform::SERVICES.iter().filter(|s| s.route.is_some()) {
        text = text.replace(
            &crate::codegen::gateway::upstream_servers(service, 1),
            &crate::codegen::gateway::upstream_servers(service, replicas),
        );
    }
    let config = prefix.join("nginx.conf");
    fs::write(
        &config,
        text.replace("@PREFIX@", &prefix.display().to_string())
            .replace("@MIME_TYPES@", &mime_types())
            .replace(
                "@GUI_DIR@",
                &paths::root()
                    .join("services/gui/dist")
                    .display()
                    .to_string(),
            ),
    )?;
    let mut test = Command::new(&nginx);
    test.arg("-p").arg(&prefix).arg("-c").arg(&config).arg("-t");
    cmd::read(&mut test).with_context(|| {
        format!(
            "nginx refuses the generated configuration {}",
            paths::display(&config)
        )
    })?;
    if let Some(pid) = running {
        let mut reload = Command::new(&nginx);
        reload
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&config)
            .args(["-s", "reload"]);
        cmd::run(&mut reload)?;
        eprintln!(
            "The gateway (pid {pid}) reloaded its configuration ({replicas} replica(s) of each service)."
        );
        return Ok(());
    }
    let mut command = Command::new(&nginx);
    command.arg("-p").arg(&prefix).arg("-c").arg(&config);
    let log = prefix.join("logs/console.log");
    let mut child = process::spawn_detached("gateway", &log, command)?;
    let started = Instant::now();
    while super::services::probe(PORT, "/").is_err() {
        if let Some(status) = child.try_wait()? {
            return Err(super::not_up(
                "the gateway",
                &prefix.join("logs/error.log"),
                &format!("exited ({status})"),
            ));
        }
        if started.elapsed() > Duration::from_secs(10) {
            return Err(super::not_up(
                "the gateway",
                &prefix.join("logs/error.log"),
                "did not answer within 10s",
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("Gateway serves on http://127.0.0.1:{PORT}");
    Ok(())
}

/// nginx's own `mime.types`, wherever the package put it.
fn mime_types() -> String {
    [
        "/etc/nginx/mime.types",
        "/usr/local/etc/nginx/mime.types",
        "/opt/homebrew/etc/nginx/mime.types",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .unwrap_or("/etc/nginx/mime.types")
    .to_owned()
}

/// Stops nginx gracefully (SIGQUIT lets open connections finish).
pub fn stop() -> Result<()> {
    process::stop(
        "gateway",
        &marker(),
        Signal::SIGQUIT,
        Duration::from_secs(10),
    )?;
    Ok(())
}

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

/// One gateway on this machine: nginx with `deployment/local/nginx/nginx.conf`, listening
/// on `port`, its files under `prefix`, each upstream's servers as given. The local system's
/// ([`Gateway::local`]) and the local cluster's ([`Gateway::for_cluster`]) differ only there.
#[derive(Debug, Clone)]
pub struct Gateway {
    prefix: PathBuf,
    port: u16,
    /// Each upstream of the template (a service's name, or `jaeger`) with its servers.
    upstreams: Vec<(String, Vec<String>)>,
    /// What the log lines call it.
    what: String,
}

impl Gateway {
    /// The local system's: port 8080, `replicas` of each service on loopback.
    pub fn local(replicas: u16) -> Self {
        let upstreams = platform::SERVICES
            .iter()
            .filter(|s| s.route.is_some())
            .map(|s| {
                let servers = (0..replicas.max(1))
                    .map(|k| format!("127.0.0.1:{}", s.replica_port(k)))
                    .collect();
                (s.name.to_owned(), servers)
            })
            .collect();
        Self {
            prefix: prefix(),
            port: PORT,
            upstreams,
            what: format!("{replicas} replica(s) of each service"),
        }
    }

    /// The local cluster's, which has no ingress controller: the same routes, on
    /// [`platform::gateway::LOCAL_CLUSTER_PORT`], to the Services' addresses (`ip:port`,
    /// reached through kube-proxy), by upstream name (a service's, and `jaeger`).
    pub fn for_cluster(upstreams: Vec<(String, String)>) -> Self {
        Self {
            prefix: paths::target_dir().join("system/cluster-gateway"),
            port: platform::gateway::LOCAL_CLUSTER_PORT,
            upstreams: upstreams
                .into_iter()
                .map(|(name, address)| (name, vec![address]))
                .collect(),
            what: "the local cluster's Services".to_owned(),
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `-p` argument that finds this nginx among the machine's processes.
    fn marker(&self) -> String {
        self.prefix.display().to_string()
    }

    /// The template with this gateway's port, upstreams and paths filled in.
    fn configuration(&self) -> Result<String> {
        let template = paths::local_config_dir().join("nginx/nginx.conf");
        let mut text = fs::read_to_string(&template)
            .with_context(|| format!("cannot read {}", template.display()))?;
        for (name, servers) in &self.upstreams {
            let head = format!("upstream {name} {{ ");
            let Some(start) = text.find(&head) else {
                bail!("{} has no `upstream {name}`", paths::display(&template));
            };
            let start = start + head.len();
            let end = start
                + text[start..]
                    .find(" keepalive")
                    .with_context(|| format!("`upstream {name}` has no keepalive"))?;
            let servers: Vec<String> = servers.iter().map(|s| format!("server {s};")).collect();
            text.replace_range(start..end, &servers.join(" "));
        }
        let listen = format!("listen 127.0.0.1:{PORT};");
        if !text.contains(&listen) {
            bail!("{} does not `{listen}`", paths::display(&template));
        }
        Ok(text
            .replace(&listen, &format!("listen 127.0.0.1:{};", self.port))
            .replace("@PREFIX@", &self.prefix.display().to_string())
            .replace("@MIME_TYPES@", &mime_types())
            .replace(
                "@GUI_DIR@",
                &paths::root()
                    .join("services/gui/dist")
                    .display()
                    .to_string(),
            ))
    }

    /// Stops this nginx gracefully (SIGQUIT lets open connections finish).
    pub fn stop(&self) -> Result<()> {
        process::stop(
            "gateway",
            &self.marker(),
            Signal::SIGQUIT,
            Duration::from_secs(10),
        )?;
        Ok(())
    }
}

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

/// Writes the configuration for `replicas` of each service and starts the local
/// gateway; when it runs already, has it reload (open streams finish on the old workers).
pub fn start(replicas: u16) -> Result<()> {
    Gateway::local(replicas).start()
}

impl Gateway {
    /// Writes the configuration and starts nginx; when it runs already, rewrites the
    /// configuration and has nginx reload it.
    pub fn start(&self) -> Result<()> {
        let port = self.port;
        let running = process::pids(&self.marker())?.first().copied();
        let nginx = nginx()?;
        if running.is_none() && std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            bail!(
                "port {port} (a gateway) is already in use by a process `cargo xtask` did not \
                 start. Find it with `ss -ltnp 'sport = :{port}'` and stop it"
            );
        }
        let prefix = &self.prefix;
        for dir in ["logs", "tmp"] {
            fs::create_dir_all(prefix.join(dir))?;
        }
        let config = prefix.join("nginx.conf");
        fs::write(&config, self.configuration()?)?;
        let mut test = Command::new(&nginx);
        test.arg("-p").arg(prefix).arg("-c").arg(&config).arg("-t");
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
                .arg(prefix)
                .arg("-c")
                .arg(&config)
                .args(["-s", "reload"]);
            cmd::run(&mut reload)?;
            eprintln!(
                "The gateway (pid {pid}) reloaded its configuration ({}).",
                self.what
            );
            return Ok(());
        }
        let mut command = Command::new(&nginx);
        command.arg("-p").arg(prefix).arg("-c").arg(&config);
        let log = prefix.join("logs/console.log");
        let mut child = process::spawn_detached("gateway", &log, command)?;
        let started = Instant::now();
        while super::services::probe(port, "/").is_err() {
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
        eprintln!("Gateway serves on {} ({})", self.url(), self.what);
        Ok(())
    }
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

/// Stops the local gateway gracefully.
pub fn stop() -> Result<()> {
    Gateway::local(1).stop()
}

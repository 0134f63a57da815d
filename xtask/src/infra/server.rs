//! The two local servers: where their files go, which ports they take, and how each is
//! launched on the JVM from the configuration in `deployment/local/`.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::{cmd, paths};

use super::java::Java;

/// A local server managed by `cargo xtask infra`.
#[derive(Debug)]
pub struct Server {
    /// Short name: the Maven profile, the directory under target/infra, the `logs` argument.
    pub name: &'static str,
    /// Human name for messages.
    pub title: &'static str,
    /// The address clients use.
    pub address: &'static str,
    /// Every port the server listens on, with what it is for.
    pub ports: &'static [(u16, &'static str)],
    /// The log file under the server's directory that explains a failed start.
    pub log: &'static str,
    /// How long a start may take before xtask gives up and points at the log.
    pub start_timeout: Duration,
}

pub const KAFKA: Server = Server {
    name: "kafka",
    title: "Kafka",
    address: "127.0.0.1:9092",
    ports: &[(9092, "broker"), (9093, "KRaft controller")],
    log: "logs/server.log",
    start_timeout: Duration::from_secs(90),
};

pub const CASSANDRA: Server = Server {
    name: "cassandra",
    title: "Cassandra",
    address: "127.0.0.1:9042",
    ports: &[(9042, "CQL"), (7000, "storage")],
    log: "logs/system.log",
    start_timeout: Duration::from_secs(180),
};

pub const ALL: [&Server; 2] = [&KAFKA, &CASSANDRA];

/// The KRaft cluster id: base64url of the 16 bytes "kafka-cqrs-local". A fixed id keeps
/// the formatted data directory valid across restarts.
const KAFKA_CLUSTER_ID: &str = "a2Fma2EtY3Fycy1sb2NhbA";

impl Server {
    /// target/infra/<name>
    pub fn dir(&self) -> PathBuf {
        paths::infra_dir().join(self.name)
    }
    pub fn lib_dir(&self) -> PathBuf {
        self.dir().join("lib")
    }
    pub fn data_dir(&self) -> PathBuf {
        self.dir().join("data")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.dir().join("logs")
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir().join(self.log)
    }
    /// What the JVM writes before its logging is set up (and crashes).
    pub fn console_log_path(&self) -> PathBuf {
        self.logs_dir().join("console.log")
    }
    /// A JVM argument that names this checkout's server, so that `ps` finds exactly our
    /// processes (and not another checkout's, nor an unrelated JVM).
    pub fn marker(&self) -> String {
        format!("-Dkafka-cqrs.infra={}", self.dir().display())
    }
    fn config_dir(&self) -> PathBuf {
        paths::local_config_dir().join(self.name)
    }

    /// Writes the runtime configuration (the committed file with its paths filled in).
    fn write_config(&self, file: &str) -> Result<PathBuf> {
        let source = self.config_dir().join(file);
        let text = fs::read_to_string(&source)
            .with_context(|| format!("cannot read {}", source.display()))?;
        let target = self.dir().join(file);
        fs::write(
            &target,
            text.replace("@DATA_DIR@", &self.data_dir().display().to_string()),
        )?;
        Ok(target)
    }

    /// JVM options from `deployment/local/<name>/jvm.options`, one per line, `#` comments.
    fn jvm_options(&self) -> Result<Vec<String>> {
        let path = self.config_dir().join("jvm.options");
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect())
    }

    fn classpath(&self) -> String {
        format!("{}/*", self.lib_dir().display())
    }

    /// Prepares directories and configuration and returns the command that starts the
    /// server in the foreground (the caller detaches it).
    pub fn launch_command(&self, java: &Java) -> Result<Command> {
        fs::create_dir_all(self.data_dir())?;
        fs::create_dir_all(self.logs_dir())?;
        let mut command = Command::new(&java.executable);
        command.arg(self.marker()).args(self.jvm_options()?);
        match self.name {
            "kafka" => {
                let properties = self.write_config("server.properties")?;
                self.format_kafka_storage(java, &properties)?;
                command
                    .arg(format!(
                        "-Dlog4j2.configurationFile={}",
                        self.config_dir().join("log4j2.yaml").display()
                    ))
                    .arg(format!("-Dkafka.logs.dir={}", self.logs_dir().display()))
                    .args(["-cp", &self.classpath(), "kafka.Kafka"])
                    .arg(properties);
            }
            "cassandra" => {
                let yaml = self.write_config("cassandra.yaml")?;
                command
                    .arg(format!("-javaagent:{}", self.jamm_jar()?.display()))
                    .arg(format!("-Dcassandra.config=file://{}", yaml.display()))
                    .arg(format!("-Dcassandra.logdir={}", self.logs_dir().display()))
                    .arg(format!(
                        "-Dcassandra.storagedir={}",
                        self.data_dir().display()
                    ))
                    .arg(format!(
                        "-Dlogback.configurationFile={}",
                        self.config_dir().join("logback.xml").display()
                    ))
                    .args([
                        "-cp",
                        &self.classpath(),
                        "org.apache.cassandra.service.CassandraDaemon",
                    ]);
            }
            other => bail!("no launch recipe for {other}"),
        }
        Ok(command)
    }

    /// KRaft needs its log directory formatted once with the cluster id.
    fn format_kafka_storage(&self, java: &Java, properties: &PathBuf) -> Result<()> {
        if self.data_dir().join("meta.properties").exists() {
            return Ok(());
        }
        let mut format = Command::new(&java.executable);
        format
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                self.config_dir().join("log4j2.yaml").display()
            ))
            .arg(format!("-Dkafka.logs.dir={}", self.logs_dir().display()))
            .args([
                "-cp",
                &self.classpath(),
                "kafka.tools.StorageTool",
                "format",
            ])
            .args(["--cluster-id", KAFKA_CLUSTER_ID, "--standalone", "--config"])
            .arg(properties)
            .stdin(Stdio::null());
        cmd::echo(&format);
        let output = cmd::output(&mut format)?;
        if !output.status.success() {
            bail!(
                "formatting Kafka's data directory failed ({}):\n{}{}\nIf the directory holds \
                 data of another cluster, run `cargo xtask infra down --clean` to delete it",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// Cassandra measures object sizes with jamm, which must be loaded as an agent.
    fn jamm_jar(&self) -> Result<PathBuf> {
        fs::read_dir(self.lib_dir())?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .find(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("jamm-") && n.ends_with(".jar"))
            })
            .with_context(|| {
                format!(
                    "no jamm jar in {}: delete that directory and run `cargo xtask infra up` \
                     to fetch the jars again",
                    paths::display(&self.lib_dir())
                )
            })
    }
}

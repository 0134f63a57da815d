//! What one scenario runs in: a fresh topic, dead-letter topic, keyspace and consumer
//! group of its own, the service binaries started on loopback with those names in their
//! environment (as `cargo xtask up` starts them), and the clean-up at the end.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use scylla::client::session::Session;
use uuid::Uuid;

use super::procs::ServiceProcess;

/// Partitions of a scenario's topic: the platform's own count.
pub const PARTITIONS: i32 = platform::kafka::DOCUMENTS_TOPIC_PARTITIONS;

/// Where the binaries are and where logs go.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The directory of the service binaries (the harness's own).
    pub bin_dir: PathBuf,
    /// target/chaos
    pub out_dir: PathBuf,
}

/// The names of one scenario's resources.
#[derive(Debug, Clone)]
pub struct Names {
    pub topic: String,
    pub dlq: String,
    pub keyspace: String,
    pub group: String,
}

impl Names {
    /// Fresh names for `scenario` (`r1`, ...).
    pub fn fresh(scenario: &str) -> Self {
        let suffix = &Uuid::new_v4().simple().to_string()[..8];
        let scenario = scenario.to_lowercase();
        Self {
            topic: format!("chaos-{scenario}-{suffix}"),
            dlq: format!("chaos-{scenario}-{suffix}.dlq"),
            keyspace: format!("chaos_{scenario}_{suffix}"),
            group: format!("chaos-{scenario}-{suffix}-persister"),
        }
    }
}

/// A scenario's world: its names, its Cassandra session, and its services.
pub struct World {
    pub names: Names,
    pub layout: Layout,
    pub logs: PathBuf,
    pub session: Arc<Session>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl World {
    /// Creates the topic (the platform's settings: permanent, 3 partitions), the
    /// dead-letter topic and the keyspace with the schema.
    pub async fn create(scenario: &str, layout: &Layout) -> Result<Self> {
        let names = Names::fresh(scenario);
        let infra = testkit::infra();
        let admin = messaging::admin_client(&infra.bootstrap)?;
        for (name, partitions) in [(&names.topic, PARTITIONS), (&names.dlq, 1)] {
            let spec = messaging::TopicSpec {
                name: name.clone(),
                partitions,
                replication_factor: platform::kafka::LOCAL_REPLICATION_FACTOR,
                min_insync_replicas: platform::kafka::LOCAL_MIN_INSYNC_REPLICAS,
                retention_ms: platform::kafka::RETENTION_MS,
            };
            messaging::ensure_topic_spec(&admin, &spec)
                .await
                .with_context(|| format!("cannot create topic {name}"))?;
        }
        // A topic created a moment ago may still be electing its leaders.
        super::ledger::watermarks(&names.topic).await?;
        let session =
            Arc::new(store::connect(&infra.contact_points, Duration::from_secs(10)).await?);
        create_keyspace(&session, &names.keyspace).await?;
        let logs = layout.out_dir.join("logs").join(scenario);
        std::fs::create_dir_all(&logs)?;
        Ok(Self {
            names,
            layout: layout.clone(),
            logs,
            session,
        })
    }

    /// The settings every service of this world shares.
    fn base_env(&self) -> Vec<(String, String)> {
        let infra = testkit::infra();
        vec![
            ("KAFKA_BOOTSTRAP_SERVERS".into(), infra.bootstrap.clone()),
            ("KAFKA_TOPIC".into(), self.names.topic.clone()),
            (
                "CASSANDRA_CONTACT_POINTS".into(),
                infra.contact_points.clone(),
            ),
        ]
    }

    /// A producer of this world's topic (not started).
    pub fn producer(&self) -> Result<ServiceProcess> {
        ServiceProcess::new(
            "producer",
            &self.layout.bin_dir,
            &self.logs,
            self.base_env(),
        )
    }

    /// A persister of this world's topic into its keyspace, in its group (not started).
    pub fn persister(&self) -> Result<ServiceProcess> {
        self.persister_into(&self.names.keyspace, &self.names.group, &self.names.dlq)
    }

    /// A persister of this world's topic into another keyspace and group.
    pub fn persister_into(&self, keyspace: &str, group: &str, dlq: &str) -> Result<ServiceProcess> {
        persister_process(
            &self.layout.bin_dir,
            &self.logs,
            &self.names.topic,
            keyspace,
            group,
            dlq,
        )
    }

    /// A notifier of this world's topic keeping `history` events per partition in
    /// memory (not started). Keep-alives every second let clients tell a dead notifier
    /// from a quiet one.
    pub fn notifier(&self, history: usize) -> Result<ServiceProcess> {
        let mut env = self.base_env();
        env.push(("SSE_KEEP_ALIVE_SECS".into(), "1".into()));
        env.push(("SSE_HISTORY_PER_PARTITION".into(), history.to_string()));
        ServiceProcess::new("notifier", &self.layout.bin_dir, &self.logs, env)
    }

    /// Deletes the topics and drops the keyspaces of this world.
    pub async fn remove(self, extra_keyspaces: &[String]) -> Result<()> {
        let admin = messaging::admin_client(&testkit::infra().bootstrap)?;
        for topic in [&self.names.topic, &self.names.dlq] {
            messaging::delete_topic(&admin, topic).await?;
        }
        for keyspace in std::iter::once(&self.names.keyspace).chain(extra_keyspaces) {
            drop_keyspace(&self.session, keyspace).await?;
        }
        Ok(())
    }
}

/// A persister process of `topic` into `keyspace` (created with the schema by the
/// persister itself), in `group`, dead-lettering into `dlq`.
pub fn persister_process(
    bin_dir: &Path,
    logs: &Path,
    topic: &str,
    keyspace: &str,
    group: &str,
    dlq: &str,
) -> Result<ServiceProcess> {
    let infra = testkit::infra();
    let env = vec![
        ("KAFKA_BOOTSTRAP_SERVERS".into(), infra.bootstrap.clone()),
        ("KAFKA_TOPIC".into(), topic.to_owned()),
        (
            "CASSANDRA_CONTACT_POINTS".into(),
            infra.contact_points.clone(),
        ),
        ("CASSANDRA_KEYSPACE".into(), keyspace.to_owned()),
        ("KAFKA_GROUP_ID".into(), group.to_owned()),
        ("KAFKA_DLQ_TOPIC".into(), dlq.to_owned()),
    ];
    ServiceProcess::new("persister", bin_dir, logs, env)
}

/// Creates `name` with the platform's schema.
pub async fn create_keyspace(session: &Session, name: &str) -> Result<()> {
    let keyspace = store::Keyspace::new(name, store::DEFAULT_REPLICATION_FACTOR)?;
    store::schema::apply(session, &keyspace)
        .await
        .with_context(|| format!("cannot create keyspace {name}"))
}

/// Drops `name` if it exists.
pub async fn drop_keyspace(session: &Session, name: &str) -> Result<()> {
    let keyspace = store::Keyspace::new(name, store::DEFAULT_REPLICATION_FACTOR)?;
    Ok(store::schema::drop_keyspace(session, &keyspace).await?)
}

/// The offsets `group` has committed on each partition of `topic` (-1 where none); `None`
/// when Kafka does not answer now.
pub async fn committed(topic: &str, group: &str, partitions: usize) -> Option<Vec<i64>> {
    let (topic, group) = (topic.to_owned(), group.to_owned());
    tokio::task::spawn_blocking(move || {
        use rdkafka::TopicPartitionList;
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let consumer: BaseConsumer = testkit::infra()
            .kafka_config()
            .set("group.id", &group)
            .create()
            .ok()?;
        let mut list = TopicPartitionList::new();
        for p in 0..partitions as i32 {
            list.add_partition(&topic, p);
        }
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(5))
            .ok()?;
        Some(
            committed
                .elements()
                .iter()
                .map(|e| e.offset().to_raw().unwrap_or(-1))
                .collect(),
        )
    })
    .await
    .ok()
    .flatten()
}

/// Waits until `group` has committed at least `ends` on every partition; returns how long
/// that took, or an error after `timeout`.
pub async fn wait_committed(
    topic: &str,
    group: &str,
    ends: &[i64],
    timeout: Duration,
) -> Result<Duration> {
    let started = std::time::Instant::now();
    let mut last = None;
    loop {
        if let Some(at) = committed(topic, group, ends.len()).await {
            if at.iter().zip(ends).all(|(&c, &e)| e == 0 || c >= e) {
                return Ok(started.elapsed());
            }
            last = Some(at);
        }
        if started.elapsed() > timeout {
            anyhow::bail!(
                "group {group} did not commit up to {ends:?} of {topic} within {timeout:?} \
                 (last seen: {last:?})"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Lag of `group` on `topic`: records not committed yet, all partitions together.
pub async fn lag(topic: &str, group: &str) -> Option<i64> {
    let ends = super::ledger::end_offsets(topic).await.ok()?;
    let at = committed(topic, group, ends.len()).await?;
    Some(ends.iter().zip(&at).map(|(e, c)| e - (*c).max(0)).sum())
}

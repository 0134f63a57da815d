//! Kafka plumbing shared by the services, the test kit and xtask: the topic names of the
//! contract, one place that turns settings into an rdkafka `ClientConfig` (and the
//! settings of a durable producer), partition watermarks, readiness from a service's own
//! client, retry with backoff, topic administration (create if absent, delete, add
//! partitions, wait until the broker answers), and a topic's identity (id and partition
//! count).

mod identity;
mod retry;

pub use identity::{TopicIdentity, TopicWatch, partition_of_key, topic_identity};
pub use retry::{Backoff, retry};

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

// The names and defaults of the contract live in `libs/platform`; re-exported under the
// names the Kafka code uses.
pub use platform::kafka::{
    BOOTSTRAP_SERVERS as DEFAULT_BOOTSTRAP_SERVERS, DLQ_TOPIC, DLQ_TOPIC_PARTITIONS,
    DOCUMENTS_TOPIC, DOCUMENTS_TOPIC_PARTITIONS,
};

/// Kafka settings every service takes (environment variables, or flags).
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Kafka brokers to bootstrap from, comma-separated host:port.
    #[arg(long = "kafka-bootstrap-servers", env = "KAFKA_BOOTSTRAP_SERVERS", default_value = DEFAULT_BOOTSTRAP_SERVERS)]
    pub bootstrap_servers: String,
    /// The topic of document events.
    #[arg(long = "kafka-topic", env = "KAFKA_TOPIC", default_value = DOCUMENTS_TOPIC)]
    pub topic: String,
}

impl KafkaArgs {
    /// Settings for tests: the given brokers and topic.
    pub fn new(bootstrap_servers: &str, topic: &str) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.to_owned(),
            topic: topic.to_owned(),
        }
    }

    /// A client configuration for these brokers.
    pub fn client_config(&self) -> ClientConfig {
        client_config(&self.bootstrap_servers)
    }
}

/// Errors of topic administration, each naming the topic or address concerned.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot create a Kafka client for {bootstrap}: {source}")]
    Client {
        bootstrap: String,
        source: KafkaError,
    },
    #[error("Kafka at {bootstrap} did not answer a metadata request within {waited:?}: {source}")]
    Unreachable {
        bootstrap: String,
        waited: Duration,
        source: KafkaError,
    },
    #[error("a Kafka request was abandoned: {0}")]
    Abandoned(String),
    #[error("topic {0} does not exist (create it with `cargo xtask infra up`)")]
    NoTopic(String),
    #[error("cannot read the partitions of topic {topic}: {source}")]
    Metadata { topic: String, source: KafkaError },
    #[error("cannot {action} topic {topic}: {reason}")]
    Topic {
        action: &'static str,
        topic: String,
        reason: String,
    },
}

/// Settings common to every Kafka client of the platform.
///
/// `bootstrap` is a comma-separated `host:port` list, as in `KAFKA_BOOTSTRAP_SERVERS`.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        // librdkafka's own default is to resolve "localhost" to IPv6 first; a local broker
        // listens on 127.0.0.1 only, so prefer IPv4 to avoid a failed first connection.
        .set("broker.address.family", "v4");
    config
}

/// Settings of a producer whose acknowledgement means "durable": idempotent (exactly once
/// per partition, in order), `acks=all` (every in-sync replica has it), and a bounded wait
/// for the delivery report (librdkafka's own default is five minutes).
pub fn durable_producer_config(bootstrap: &str, delivery_timeout: Duration) -> ClientConfig {
    let mut config = client_config(bootstrap);
    config
        // librdkafka's default, named so that it cannot change unseen: the persister
        // checks each record's partition with `partition_of_key`, which computes it.
        .set("partitioner", "consistent_random")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            delivery_timeout.as_millis().to_string(),
        );
    config
}

/// How long a metadata or watermark request may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// The (low, high) watermarks of every partition of `topic`, by partition, read with a
/// client of `config`. A topic created a moment ago may still be electing its leaders:
/// such transient answers are retried within the request timeout. Runs the blocking
/// requests off the async threads.
pub async fn watermarks(config: ClientConfig, topic: &str) -> Result<Vec<(i64, i64)>, AdminError> {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let request = |source| AdminError::Metadata {
            topic: topic.clone(),
            source,
        };
        let consumer: BaseConsumer = config.create().map_err(request)?;
        let started = Instant::now();
        loop {
            let attempt = (|| {
                let metadata = consumer.fetch_metadata(Some(&topic), METADATA_TIMEOUT)?;
                let Some(found) = metadata
                    .topics()
                    .first()
                    .filter(|t| t.error().is_none() && !t.partitions().is_empty())
                else {
                    return Ok(None);
                };
                (0..found.partitions().len() as i32)
                    .map(|p| consumer.fetch_watermarks(&topic, p, METADATA_TIMEOUT))
                    .collect::<Result<Vec<_>, KafkaError>>()
                    .map(Some)
            })();
            let settling = started.elapsed() < METADATA_TIMEOUT;
            match attempt {
                Ok(Some(marks)) => return Ok(marks),
                Ok(None) if settling => {}
                Ok(None) => return Err(AdminError::NoTopic(topic.clone())),
                Err(error) if settling && is_transient(&error) => {}
                Err(error) => return Err(request(error)),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .map_err(|e| AdminError::Abandoned(e.to_string()))?
}

/// Answers a broker gives while a topic's partitions are still being placed.
fn is_transient(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownPartition
        )
    )
}

/// The (low, high) watermarks of one partition of `topic`.
pub async fn partition_watermarks(
    config: ClientConfig,
    topic: &str,
    partition: i32,
) -> Result<(i64, i64), AdminError> {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let request = |source| AdminError::Metadata {
            topic: topic.clone(),
            source,
        };
        let consumer: BaseConsumer = config.create().map_err(request)?;
        consumer
            .fetch_watermarks(&topic, partition, METADATA_TIMEOUT)
            .map_err(request)
    })
    .await
    .map_err(|e| AdminError::Abandoned(e.to_string()))?
}

/// Readiness from a service's own long-lived client: `fetch` asks that client for the
/// cluster's metadata (e.g. `move |t| producer.client().fetch_metadata(None, t)`), so a
/// probe opens no new connection. Runs the blocking request off the async threads.
pub async fn ping_with<F>(fetch: F) -> Result<(), String>
where
    F: FnOnce(Duration) -> Result<rdkafka::metadata::Metadata, KafkaError> + Send + 'static,
{
    match tokio::task::spawn_blocking(move || fetch(Duration::from_secs(2))).await {
        Ok(Ok(metadata)) if !metadata.brokers().is_empty() => Ok(()),
        Ok(Ok(_)) => Err("Kafka answered with no broker".to_owned()),
        Ok(Err(error)) => Err(format!("Kafka does not answer: {error}")),
        Err(error) => Err(format!("Kafka probe failed: {error}")),
    }
}

/// A client for topic administration, with the same settings as every other client.
pub fn admin_client(bootstrap: &str) -> Result<AdminClient<DefaultClientContext>, AdminError> {
    client_config(bootstrap)
        .create()
        .map_err(|source| AdminError::Client {
            bootstrap: bootstrap.to_owned(),
            source,
        })
}

/// Asks the cluster for its metadata until it answers or `timeout` passes, and returns
/// the number of brokers that answered. Blocking: call it from `spawn_blocking` in async
/// code.
pub fn wait_for_broker(bootstrap: &str, timeout: Duration) -> Result<usize, AdminError> {
    let consumer: BaseConsumer =
        client_config(bootstrap)
            .create()
            .map_err(|source| AdminError::Client {
                bootstrap: bootstrap.to_owned(),
                source,
            })?;
    let started = Instant::now();
    loop {
        let left = timeout.saturating_sub(started.elapsed());
        match consumer.fetch_metadata(None, left.min(Duration::from_secs(2))) {
            Ok(metadata) if !metadata.brokers().is_empty() => return Ok(metadata.brokers().len()),
            Ok(_) => {}
            Err(source) if started.elapsed() >= timeout => {
                return Err(AdminError::Unreachable {
                    bootstrap: bootstrap.to_owned(),
                    waited: started.elapsed(),
                    source,
                });
            }
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What a topic of the platform must be: partitions, replicas, and the settings that make
/// it a permanent log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i32,
    pub min_insync_replicas: i32,
    /// `retention.ms`; -1 keeps every record forever.
    pub retention_ms: i64,
}

impl TopicSpec {
    /// The platform's topics (the documents and the dead letters) with these replica
    /// settings: 1 and 1 locally, 3 and 2 in a cluster.
    pub fn platform(replication_factor: i32, min_insync_replicas: i32) -> [Self; 2] {
        let topic = |name: &str, partitions| Self {
            name: name.to_owned(),
            partitions,
            replication_factor,
            min_insync_replicas,
            retention_ms: platform::kafka::RETENTION_MS,
        };
        [
            topic(DOCUMENTS_TOPIC, DOCUMENTS_TOPIC_PARTITIONS),
            topic(DLQ_TOPIC, DLQ_TOPIC_PARTITIONS),
        ]
    }

    fn configs(&self) -> [(&'static str, String); 2] {
        [
            ("retention.ms", self.retention_ms.to_string()),
            ("min.insync.replicas", self.min_insync_replicas.to_string()),
        ]
    }
}

/// What [`ensure_topic_spec`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicChange {
    Created,
    /// It existed; its settings were set to the spec's (a topic made before the log was
    /// permanent gets `retention.ms=-1` this way).
    Updated,
}

/// Creates the topic of `spec` with its settings, or sets them on the topic that exists.
/// The partition count of an existing topic is not changed here: adding partitions moves
/// keys and must be a deliberate step.
pub async fn ensure_topic_spec(
    admin: &AdminClient<DefaultClientContext>,
    spec: &TopicSpec,
) -> Result<TopicChange, AdminError> {
    let configs = spec.configs();
    let mut new = NewTopic::new(
        &spec.name,
        spec.partitions,
        TopicReplication::Fixed(spec.replication_factor),
    );
    for (key, value) in &configs {
        new = new.set(key, value);
    }
    let results = admin
        .create_topics([&new], &AdminOptions::new())
        .await
        .map_err(|e| topic_error("create", &spec.name, e.to_string()))?;
    match results.into_iter().next() {
        Some(Ok(_)) => return Ok(TopicChange::Created),
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => {}
        Some(Err((_, code))) => return Err(topic_error("create", &spec.name, code.to_string())),
        None => {
            return Err(topic_error(
                "create",
                &spec.name,
                "no result from the broker".into(),
            ));
        }
    }
    let mut alter = AlterConfig::new(ResourceSpecifier::Topic(&spec.name));
    for (key, value) in &configs {
        alter = alter.set(key, value);
    }
    let results = admin
        .alter_configs([&alter], &AdminOptions::new())
        .await
        .map_err(|e| topic_error("configure", &spec.name, e.to_string()))?;
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(TopicChange::Updated),
        Some(Err((_, code))) => Err(topic_error("configure", &spec.name, code.to_string())),
        None => Err(topic_error(
            "configure",
            &spec.name,
            "no result from the broker".into(),
        )),
    }
}

/// Creates `topic` with `partitions` partitions and one replica, unless it exists.
/// Returns whether it was created now.
pub async fn ensure_topic(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    partitions: i32,
) -> Result<bool, AdminError> {
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = admin
        .create_topics([&new], &AdminOptions::new())
        .await
        .map_err(|e| topic_error("create", topic, e.to_string()))?;
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(true),
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(false),
        Some(Err((_, code))) => Err(topic_error("create", topic, code.to_string())),
        None => Err(topic_error(
            "create",
            topic,
            "no result from the broker".into(),
        )),
    }
}

/// Deletes `topic`; a topic that does not exist is not an error.
pub async fn delete_topic(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> Result<(), AdminError> {
    let results = admin
        .delete_topics(&[topic], &AdminOptions::new())
        .await
        .map_err(|e| topic_error("delete", topic, e.to_string()))?;
    match results.into_iter().next() {
        Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::UnknownTopicOrPartition))) => Ok(()),
        Some(Err((_, code))) => Err(topic_error("delete", topic, code.to_string())),
        None => Err(topic_error(
            "delete",
            topic,
            "no result from the broker".into(),
        )),
    }
}

/// Raises the partition count of `topic` to `total`. Adding partitions moves keys to
/// other partitions, whose offsets are lower: the persister and the notifier refuse such a
/// topic (see ARCHITECTURE.md); this exists for the tests that prove it.
pub async fn add_partitions(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    total: usize,
) -> Result<(), AdminError> {
    let results = admin
        .create_partitions([&NewPartitions::new(topic, total)], &AdminOptions::new())
        .await
        .map_err(|e| topic_error("add partitions to", topic, e.to_string()))?;
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(()),
        Some(Err((_, code))) => Err(topic_error("add partitions to", topic, code.to_string())),
        None => Err(topic_error(
            "add partitions to",
            topic,
            "no result from the broker".into(),
        )),
    }
}

fn topic_error(action: &'static str, topic: &str, reason: String) -> AdminError {
    AdminError::Topic {
        action,
        topic: topic.to_owned(),
        reason,
    }
}

/// The value of the first header called `name`, if it is there and is UTF-8.
pub fn header_str<'a, H: rdkafka::message::Headers>(
    headers: Option<&'a H>,
    name: &str,
) -> Option<&'a str> {
    headers?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

//! Kafka plumbing shared by the services, the test kit and xtask: the topic names of the
//! contract, one place that turns settings into an rdkafka `ClientConfig`, and topic
//! administration (create if absent, delete, wait until the broker answers).

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
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

/// Whether a broker answers a metadata request within two seconds: the readiness probe
/// of every service that uses Kafka. Runs the blocking request off the async threads.
pub async fn ping(bootstrap: &str) -> Result<(), String> {
    let bootstrap = bootstrap.to_owned();
    tokio::task::spawn_blocking(move || {
        wait_for_broker(&bootstrap, Duration::from_secs(2))
            .map(drop)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("Kafka probe failed: {e}"))?
}

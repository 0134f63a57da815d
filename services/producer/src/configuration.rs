//! The producer's settings: environment variables (or flags), with local defaults.

use std::time::Duration;

/// How long Kafka may take to confirm a record, in milliseconds.
pub const DEFAULT_PRODUCE_TIMEOUT_MS: u64 = 5000;

/// How long a record may wait for others to share its produce request, in milliseconds:
/// librdkafka's own default (and Kafka 4's). Under load, fewer and fuller requests spare
/// Kafka and the producer CPU; a lone command waits this long at most.
pub const DEFAULT_LINGER_MS: u64 = 5;

/// Accepts create, update and delete commands over HTTP and publishes them to Kafka.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "producer", version, about)]
pub struct Config {
    #[command(flatten)]
    pub http: web::HttpArgs<{ platform::PRODUCER.port }>,
    #[command(flatten)]
    pub kafka: messaging::KafkaArgs,
    /// How long Kafka may take to confirm a record before the command is answered with
    /// 503, in milliseconds (librdkafka's own default is five minutes).
    #[arg(long, env = "KAFKA_PRODUCE_TIMEOUT_MS", default_value_t = DEFAULT_PRODUCE_TIMEOUT_MS)]
    pub produce_timeout_ms: u64,
    /// How long a record may wait for others to share its produce request, in
    /// milliseconds (lower answers a lone command sooner; higher batches more under load).
    #[arg(long, env = "KAFKA_LINGER_MS", default_value_t = DEFAULT_LINGER_MS)]
    pub linger_ms: u64,
}

impl Config {
    /// Settings for tests: loopback on a free port, the given brokers and topic.
    pub fn for_tests(bootstrap_servers: &str, topic: &str) -> Self {
        Self {
            http: web::HttpArgs::ephemeral(),
            kafka: messaging::KafkaArgs::new(bootstrap_servers, topic),
            produce_timeout_ms: DEFAULT_PRODUCE_TIMEOUT_MS,
            linger_ms: DEFAULT_LINGER_MS,
        }
    }

    pub fn produce_timeout(&self) -> Duration {
        Duration::from_millis(self.produce_timeout_ms)
    }
}

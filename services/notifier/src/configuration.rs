//! The notifier's settings: environment variables (or flags), with local defaults.

use std::time::Duration;

/// The defaults of the settings below, used by clap and by [`Config::for_tests`] alike.
pub mod defaults {
    pub const HISTORY_PER_PARTITION: usize = 1000;
    pub const CLIENT_BUFFER: usize = 256;
    pub const MAX_CLIENTS: usize = 10_000;
    pub const REPLAY_CONSUMERS: usize = 4;
    pub const KEEP_ALIVE_SECS: u64 = 15;
    pub const RETRY_MS: u64 = 2000;
    pub const TOPIC_CHECK_SECS: u64 = 30;
    pub const REPLAY_WAIT_MS: u64 = 5000;
    pub const REPLAY_IDLE_SECS: u64 = 30;
    pub const MAX_REPLAY: i64 = 100_000;
}

/// Pushes every event of the documents topic to browsers as Server-Sent Events.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "notifier", version, about)]
pub struct Config {
    #[command(flatten)]
    pub http: web::HttpArgs<{ platform::NOTIFIER.port }>,
    #[command(flatten)]
    pub kafka: messaging::KafkaArgs,
    /// Events kept in memory per partition, to serve reconnecting clients without Kafka.
    #[arg(long, env = "SSE_HISTORY_PER_PARTITION", default_value_t = defaults::HISTORY_PER_PARTITION)]
    pub history_per_partition: usize,
    /// Events queued per client; a client that falls this far behind is disconnected
    /// (it resumes with its last event id).
    #[arg(long, env = "SSE_CLIENT_BUFFER", default_value_t = defaults::CLIENT_BUFFER)]
    pub client_buffer: usize,
    /// Concurrent streams served; one more gets 429.
    #[arg(long, env = "SSE_MAX_CLIENTS", default_value_t = defaults::MAX_CLIENTS)]
    pub max_clients: usize,
    /// Kafka consumers that may read older history at once, whatever the number of
    /// clients asking for it.
    #[arg(long, env = "SSE_REPLAY_CONSUMERS", default_value_t = defaults::REPLAY_CONSUMERS)]
    pub replay_consumers: usize,
    /// Seconds without traffic after which a `: keep-alive` comment is sent.
    #[arg(long, env = "SSE_KEEP_ALIVE_SECS", default_value_t = defaults::KEEP_ALIVE_SECS)]
    pub keep_alive_secs: u64,
    /// The reconnection delay suggested to clients (`retry:`), in milliseconds.
    #[arg(long, env = "SSE_RETRY_MS", default_value_t = defaults::RETRY_MS)]
    pub retry_ms: u64,
    /// Seconds between checks that the documents topic is still the one the notifier
    /// started on (its id and partition count); also checked after consumer errors and
    /// whenever an offset goes back.
    #[arg(long, env = "SSE_TOPIC_CHECK_SECS", default_value_t = defaults::TOPIC_CHECK_SECS)]
    pub topic_check_secs: u64,
    /// How long a stream that must read older history waits for a free replay reader
    /// before it is refused with 503 and Retry-After, in milliseconds.
    #[arg(long, env = "SSE_REPLAY_WAIT_MS", default_value_t = defaults::REPLAY_WAIT_MS)]
    pub replay_wait_ms: u64,
    /// Seconds a replaying stream's client may read nothing before its connection is
    /// closed, freeing the replay reader it holds (it resumes with its last id).
    #[arg(long, env = "SSE_REPLAY_IDLE_SECS", default_value_t = defaults::REPLAY_IDLE_SECS)]
    pub replay_idle_secs: u64,
    /// The most events per partition a resume token may replay from Kafka. A token
    /// further behind gets `event: reset` and continues with the recent history held in
    /// memory: a client that far behind reloads its state from the reader instead.
    #[arg(long, env = "SSE_MAX_REPLAY", default_value_t = defaults::MAX_REPLAY)]
    pub max_replay: i64,
}

impl Config {
    /// Settings for tests: loopback on a free port, the given brokers and topic.
    pub fn for_tests(bootstrap_servers: &str, topic: &str) -> Self {
        Self {
            http: web::HttpArgs::ephemeral(),
            kafka: messaging::KafkaArgs::new(bootstrap_servers, topic),
            history_per_partition: defaults::HISTORY_PER_PARTITION,
            client_buffer: defaults::CLIENT_BUFFER,
            max_clients: defaults::MAX_CLIENTS,
            replay_consumers: defaults::REPLAY_CONSUMERS,
            keep_alive_secs: defaults::KEEP_ALIVE_SECS,
            retry_ms: defaults::RETRY_MS,
            topic_check_secs: defaults::TOPIC_CHECK_SECS,
            replay_wait_ms: defaults::REPLAY_WAIT_MS,
            replay_idle_secs: defaults::REPLAY_IDLE_SECS,
            max_replay: defaults::MAX_REPLAY,
        }
    }

    pub fn keep_alive(&self) -> Duration {
        Duration::from_secs(self.keep_alive_secs)
    }

    pub fn retry(&self) -> Duration {
        Duration::from_millis(self.retry_ms)
    }

    pub fn replay_wait(&self) -> Duration {
        Duration::from_millis(self.replay_wait_ms)
    }

    pub fn replay_idle(&self) -> Duration {
        Duration::from_secs(self.replay_idle_secs.max(1))
    }

    pub fn topic_check(&self) -> Duration {
        Duration::from_secs(self.topic_check_secs.max(1))
    }
}

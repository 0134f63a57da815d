//! The reader's settings: environment variables (or flags), with local defaults.

use std::time::Duration;

/// The defaults of the settings below, used by clap and by [`Config::for_tests`] alike.
pub mod defaults {
    pub const POSITION_WAIT_MS: u64 = 5000;
    pub const POSITION_POLL_MS: u64 = 5;
}

/// Serves documents from the Cassandra read model.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "reader", version, about)]
pub struct Config {
    #[command(flatten)]
    pub http: web::HttpArgs<{ platform::READER.port }>,
    #[command(flatten)]
    pub cassandra: store::CassandraArgs,
    /// Milliseconds a read with a Document-Position waits at most for the persister to
    /// apply that position, before it answers 503 with Retry-After.
    #[arg(long, env = "READER_POSITION_WAIT_MS", default_value_t = defaults::POSITION_WAIT_MS)]
    pub position_wait_ms: u64,
    /// Milliseconds between two reads of the applied positions while reads wait (one
    /// read per waited-on partition, shared by all waiting requests).
    #[arg(long, env = "READER_POSITION_POLL_MS", default_value_t = defaults::POSITION_POLL_MS)]
    pub position_poll_ms: u64,
}

impl Config {
    /// Settings for tests: loopback on a free port, the given nodes and keyspace.
    pub fn for_tests(contact_points: &str, keyspace: &str) -> Self {
        Self {
            http: web::HttpArgs::ephemeral(),
            cassandra: store::CassandraArgs::new(contact_points, keyspace),
            position_wait_ms: defaults::POSITION_WAIT_MS,
            position_poll_ms: defaults::POSITION_POLL_MS,
        }
    }

    pub fn position_wait(&self) -> Duration {
        Duration::from_millis(self.position_wait_ms)
    }

    pub fn position_poll(&self) -> Duration {
        Duration::from_millis(self.position_poll_ms.max(1))
    }
}

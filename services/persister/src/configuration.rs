//! The persister's settings: environment variables (or flags), with local defaults.

use std::time::Duration;

/// The defaults of the settings below, used by clap and by [`Config::for_tests`] alike.
pub mod defaults {
    pub const STUCK_AFTER_SECS: u64 = 60;
    pub const TOPIC_CHECK_SECS: u64 = 30;
    pub const LANES: usize = 64;
    pub const POSITIONS_FLUSH_MS: u64 = 10;
}

/// Applies the events of Kafka to the Cassandra read model.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "persister", version, about)]
pub struct Config {
    /// Without one, the persister runs (and applies the pending migrations first).
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub http: web::HttpArgs<{ platform::PERSISTER.port }>,
    #[command(flatten)]
    pub kafka: messaging::KafkaArgs,
    /// The consumer group; its committed offsets say what has been applied.
    #[arg(long, env = "KAFKA_GROUP_ID", default_value = platform::kafka::PERSISTER_GROUP)]
    pub group_id: String,
    /// Where records that cannot be applied go, with the reason in their headers.
    #[arg(long, env = "KAFKA_DLQ_TOPIC", default_value = messaging::DLQ_TOPIC)]
    pub dlq_topic: String,
    #[command(flatten)]
    pub cassandra: store::CassandraArgs,
    /// Seconds one record may be held (neither applied nor dead-lettered) before the
    /// persister reports itself not ready and `persister_stuck_seconds` rises.
    #[arg(long, env = "PERSISTER_STUCK_AFTER_SECS", default_value_t = defaults::STUCK_AFTER_SECS)]
    pub stuck_after_secs: u64,
    /// Seconds between checks that the documents topic is still the one the read model
    /// was built from (its id and partition count); also checked at every new partition
    /// assignment, after consumer errors, and whenever an offset goes back.
    #[arg(long, env = "PERSISTER_TOPIC_CHECK_SECS", default_value_t = defaults::TOPIC_CHECK_SECS)]
    pub topic_check_secs: u64,
    /// Records applied side by side, each document's in order (its records always go to
    /// the same lane); 1 applies one record at a time.
    #[arg(long, env = "PERSISTER_LANES", default_value_t = defaults::LANES)]
    pub lanes: usize,
    /// Milliseconds between two writes of the applied positions the reader waits on for
    /// a read with a Document-Position: a read waits up to this much longer, and the
    /// persister writes at most one row per partition per interval.
    #[arg(long, env = "PERSISTER_POSITIONS_FLUSH_MS", default_value_t = defaults::POSITIONS_FLUSH_MS)]
    pub positions_flush_ms: u64,
    /// Whether the Kafka client also commits stored offsets by itself (every second, and
    /// when it closes). Always on in service, and no flag changes it: tests turn it off to
    /// see what the synchronous commit at shutdown does alone.
    #[arg(skip = true)]
    pub background_commits: bool,
}

/// What the binary does instead of running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Applies the schema migrations the keyspace has not recorded (libs/store/migrations),
    /// under their lock, then exits 0; needs only the CASSANDRA_* settings. The deployment's
    /// schema Job runs it, so the schema is in place before the reader (no DDL) serves.
    Migrate,
}

impl Config {
    /// Settings for tests: loopback on a free port and the given servers, names and group.
    pub fn for_tests(
        bootstrap_servers: &str,
        topic: &str,
        dlq_topic: &str,
        contact_points: &str,
        keyspace: &str,
    ) -> Self {
        Self {
            command: None,
            http: web::HttpArgs::ephemeral(),
            kafka: messaging::KafkaArgs::new(bootstrap_servers, topic),
            group_id: format!("{topic}-persister"),
            dlq_topic: dlq_topic.to_owned(),
            cassandra: store::CassandraArgs::new(contact_points, keyspace),
            stuck_after_secs: defaults::STUCK_AFTER_SECS,
            topic_check_secs: defaults::TOPIC_CHECK_SECS,
            lanes: defaults::LANES,
            positions_flush_ms: defaults::POSITIONS_FLUSH_MS,
            background_commits: true,
        }
    }

    pub fn stuck_after(&self) -> Duration {
        Duration::from_secs(self.stuck_after_secs)
    }

    pub fn positions_flush(&self) -> Duration {
        Duration::from_millis(self.positions_flush_ms)
    }

    pub fn topic_check(&self) -> Duration {
        Duration::from_secs(self.topic_check_secs.max(1))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// `persister migrate` is what the schema Job runs; without it the persister runs.
    #[test]
    fn migrate_is_a_subcommand_and_running_is_the_default() {
        let migrate = Config::try_parse_from(["persister", "migrate"]).unwrap();
        assert_eq!(migrate.command, Some(Command::Migrate));
        let run = Config::try_parse_from(["persister"]).unwrap();
        assert_eq!(run.command, None);
        assert!(Config::try_parse_from(["persister", "migrat"]).is_err());
    }
}

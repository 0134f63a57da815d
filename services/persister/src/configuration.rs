//! The persister's settings: environment variables (or flags), with local defaults.

/// Applies the events of Kafka to the Cassandra read model.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "persister", version, about)]
pub struct Config {
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
    /// Whether the Kafka client also commits stored offsets by itself (every second, and
    /// when it closes). Always on in service, and no flag changes it: tests turn it off to
    /// see what the synchronous commit at shutdown does alone.
    #[arg(skip = true)]
    pub background_commits: bool,
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
            http: web::HttpArgs::ephemeral(),
            kafka: messaging::KafkaArgs::new(bootstrap_servers, topic),
            group_id: format!("{topic}-persister"),
            dlq_topic: dlq_topic.to_owned(),
            cassandra: store::CassandraArgs::new(contact_points, keyspace),
            background_commits: true,
        }
    }
}

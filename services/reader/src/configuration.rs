//! The reader's settings: environment variables (or flags), with local defaults.

/// Serves documents from the Cassandra read model.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "reader", version, about)]
pub struct Config {
    #[command(flatten)]
    pub http: web::HttpArgs<{ platform::READER.port }>,
    #[command(flatten)]
    pub cassandra: store::CassandraArgs,
}

impl Config {
    /// Settings for tests: loopback on a free port, the given nodes and keyspace.
    pub fn for_tests(contact_points: &str, keyspace: &str) -> Self {
        Self {
            http: web::HttpArgs::ephemeral(),
            cassandra: store::CassandraArgs::new(contact_points, keyspace),
        }
    }
}

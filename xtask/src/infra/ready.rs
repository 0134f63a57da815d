//! Asking the servers whether they really serve (Kafka answers a metadata request,
//! Cassandra a CQL query), and putting in place what the platform expects of them:
//! its topics and its schema's migrations.

use std::time::Duration;

use anyhow::{Context, Result};

/// One probe of Kafka: the number of brokers in its metadata.
pub fn kafka(address: &str, timeout: Duration) -> Result<usize> {
    Ok(messaging::wait_for_broker(address, timeout)?)
}

/// One probe of Cassandra: its release version, read with CQL.
pub fn cassandra(address: &str, timeout: Duration) -> Result<String> {
    runtime()?.block_on(async {
        let session = store::connect(address, timeout).await?;
        Ok(store::release_version(&session).await?)
    })
}

/// Creates the platform's topics where they are missing.
pub fn create_topics(address: &str) -> Result<()> {
    runtime()?.block_on(async {
        let admin = messaging::admin_client(address)?;
        for spec in messaging::TopicSpec::platform(
            platform::kafka::LOCAL_REPLICATION_FACTOR,
            platform::kafka::LOCAL_MIN_INSYNC_REPLICAS,
        ) {
            let change = messaging::ensure_topic_spec(&admin, &spec).await?;
            let verb = match change {
                messaging::TopicChange::Created => "created",
                messaging::TopicChange::Updated => "exists; settings applied",
            };
            eprintln!(
                "  topic {} ({} partitions, retention.ms={}): {verb}",
                spec.name, spec.partitions, spec.retention_ms
            );
        }
        Ok(())
    })
}

/// Brings the platform's keyspace to the newest schema: the migrations of
/// `libs/store/migrations` it lacks, each once, as the persister does at its start.
pub fn apply_schema(address: &str) -> Result<()> {
    runtime()?.block_on(async {
        let session = store::connect(address, Duration::from_secs(10)).await?;
        let keyspace = store::Keyspace::new(store::DEFAULT_KEYSPACE, 1)?;
        let migrated =
            store::migrations::migrate(&session, &keyspace, store::migrations::MIGRATIONS).await?;
        let applied = if migrated.applied.is_empty() {
            "none pending".to_owned()
        } else {
            format!("applied {}", migrated.applied.join(", "))
        };
        eprintln!(
            "  schema of keyspace {} at migration {} ({applied})",
            keyspace.name(),
            migrated.version
        );
        if !migrated.unknown.is_empty() {
            eprintln!(
                "  warning: the keyspace has migrations {:?} that this checkout does not know",
                migrated.unknown
            );
        }
        Ok(())
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a Tokio runtime")
}

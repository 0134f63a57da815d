//! Cassandra for kafka-cqrs: the default addresses, session setup and the schema file.

pub mod schema;

use std::time::Duration;

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;

pub use schema::Keyspace;

/// Where a local Cassandra listens (`cargo xtask infra up`).
pub const DEFAULT_CONTACT_POINTS: &str = "127.0.0.1:9042";
/// The keyspace of the read model.
pub const DEFAULT_KEYSPACE: &str = "documents";

/// Errors of the Cassandra boundary, each naming what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot connect to Cassandra at {contact_points}: {source}")]
    Connect {
        contact_points: String,
        // Boxed: the driver's errors are large, and every Result of this crate carries them.
        source: Box<scylla::errors::NewSessionError>,
    },
    #[error(
        "invalid keyspace name {0:?}: use 1 to 48 lowercase letters, digits or '_', starting with a letter"
    )]
    KeyspaceName(String),
    #[error("Cassandra refused {statement:?}: {source}")]
    Execute {
        statement: String,
        source: Box<scylla::errors::ExecutionError>,
    },
    #[error("unexpected result of {statement:?}: {reason}")]
    Decode { statement: String, reason: String },
}

/// Splits a comma-separated `host:port` list such as `CASSANDRA_CONTACT_POINTS`.
pub fn parse_contact_points(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Opens a session to the cluster at `contact_points` (a comma-separated list).
pub async fn connect(contact_points: &str, timeout: Duration) -> Result<Session, StoreError> {
    SessionBuilder::new()
        .known_nodes(parse_contact_points(contact_points))
        .connection_timeout(timeout)
        .build()
        .await
        .map_err(|source| StoreError::Connect {
            contact_points: contact_points.to_owned(),
            source: Box::new(source),
        })
}

/// Runs one statement without values; used for DDL and probes.
pub async fn execute(session: &Session, statement: &str) -> Result<(), StoreError> {
    session
        .query_unpaged(statement, ())
        .await
        .map(drop)
        .map_err(|source| StoreError::Execute {
            statement: statement.to_owned(),
            source: Box::new(source),
        })
}

/// The server's version, from `system.local`: the probe that says Cassandra serves CQL.
pub async fn release_version(session: &Session) -> Result<String, StoreError> {
    const STATEMENT: &str = "SELECT release_version FROM system.local";
    let decode = |reason: String| StoreError::Decode {
        statement: STATEMENT.to_owned(),
        reason,
    };
    let result = session
        .query_unpaged(STATEMENT, ())
        .await
        .map_err(|source| StoreError::Execute {
            statement: STATEMENT.to_owned(),
            source: Box::new(source),
        })?;
    let rows = result
        .into_rows_result()
        .map_err(|e| decode(e.to_string()))?;
    let (version,) = rows
        .single_row::<(String,)>()
        .map_err(|e| decode(e.to_string()))?;
    Ok(version)
}

//! Cassandra for kafka-cqrs: the default addresses, session setup, the schema's versioned
//! migrations ([`migrations`]), and the read model split by role: [`DocumentReader`] (the
//! reader: SELECTs only, no DDL) and [`DocumentWriter`] (the persister: the migrations and
//! the writes).

pub mod migrations;
mod read;
pub mod schema;
mod write;

use std::time::Duration;

use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;

pub use migrations::Migrated;
pub use read::DocumentReader;
pub use schema::Keyspace;
pub use write::{AppliedAt, DocumentWriter, ModelSource};

/// Where a local Cassandra listens (`cargo xtask infra up`).
pub const DEFAULT_CONTACT_POINTS: &str = platform::cassandra::CONTACT_POINTS;
/// The keyspace of the read model.
pub const DEFAULT_KEYSPACE: &str = platform::cassandra::KEYSPACE;
/// Replication factor of a keyspace created by the schema (1 locally; 3 in a cluster).
pub const DEFAULT_REPLICATION_FACTOR: u8 = 1;
/// How long one query may take before it counts as failed, in milliseconds.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 3000;

/// Cassandra settings every service that uses it takes (environment variables, or flags).
#[derive(Debug, Clone, clap::Args)]
pub struct CassandraArgs {
    /// Cassandra nodes to contact first, comma-separated host:port.
    #[arg(long = "cassandra-contact-points", env = "CASSANDRA_CONTACT_POINTS", default_value = DEFAULT_CONTACT_POINTS)]
    pub contact_points: String,
    /// The keyspace of the read model; created with the schema's migrations when missing.
    #[arg(long = "cassandra-keyspace", env = "CASSANDRA_KEYSPACE", default_value = DEFAULT_KEYSPACE)]
    pub keyspace: String,
    /// Replication factor used when the keyspace is created.
    #[arg(
        long = "cassandra-replication-factor",
        env = "CASSANDRA_REPLICATION_FACTOR",
        default_value_t = DEFAULT_REPLICATION_FACTOR
    )]
    pub replication_factor: u8,
    /// How long one query may take before it counts as failed, in milliseconds.
    #[arg(
        long = "cassandra-request-timeout-ms",
        env = "CASSANDRA_REQUEST_TIMEOUT_MS",
        default_value_t = DEFAULT_REQUEST_TIMEOUT_MS
    )]
    pub request_timeout_ms: u64,
}

impl CassandraArgs {
    /// Settings for tests: the given nodes and keyspace.
    pub fn new(contact_points: &str, keyspace: &str) -> Self {
        Self {
            contact_points: contact_points.to_owned(),
            keyspace: keyspace.to_owned(),
            replication_factor: DEFAULT_REPLICATION_FACTOR,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

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
    #[error("Cassandra cannot prepare {statement:?}: {reason}")]
    Prepare { statement: String, reason: String },
    #[error("unexpected result of {statement:?}: {reason}")]
    Decode { statement: String, reason: String },
    #[error(
        "schema migration {file} failed on keyspace {keyspace}: {source}. It was not recorded, \
         so the next start runs it again from its first statement: fix the cause (or, if its \
         first statements ran and cannot run twice, undo them by hand) and start again"
    )]
    Migration {
        keyspace: String,
        file: &'static str,
        source: Box<StoreError>,
    },
    #[error(
        "schema migration {file} was applied to keyspace {keyspace} (as {recorded_name:?}, \
         checksum {recorded}) but its statements have changed since (checksum {now}): a \
         released migration must not change. Restore libs/store/migrations/{file} (see `git \
         log -p` of it) and put the change in a new migration with the next number"
    )]
    MigrationChanged {
        keyspace: String,
        file: &'static str,
        recorded_name: String,
        recorded: String,
        now: String,
    },
    #[error(
        "another runner has held the schema migration lock of keyspace {keyspace} for {waited_secs} s \
         ({holder}). If none is running, the lock expires by itself (TTL {} s) or can be \
         removed: DELETE FROM {keyspace}.schema_migrations_lock WHERE name = 'migrations'",
        migrations::LOCK_TTL.as_secs()
    )]
    MigrationLocked {
        keyspace: String,
        waited_secs: u64,
        holder: String,
    },
    #[error(
        "the schema migration lock of keyspace {keyspace} expired and another runner took it \
         ({holder}): this runner stops before applying anything more; start it again"
    )]
    MigrationLockLost { keyspace: String, holder: String },
}

/// Splits a comma-separated `host:port` list such as `CASSANDRA_CONTACT_POINTS`.
pub fn parse_contact_points(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Opens a session to the cluster at `contact_points` (a comma-separated list); both
/// connecting and each query are bounded by `timeout`.
pub async fn connect(contact_points: &str, timeout: Duration) -> Result<Session, StoreError> {
    let profile = ExecutionProfile::builder()
        .request_timeout(Some(timeout))
        .build();
    SessionBuilder::new()
        .known_nodes(parse_contact_points(contact_points))
        .connection_timeout(timeout)
        .default_execution_profile_handle(profile.into_handle())
        .build()
        .await
        .map_err(|source| StoreError::Connect {
            contact_points: contact_points.to_owned(),
            source: Box::new(source),
        })
}

/// Connects to the cluster of `args` and brings its keyspace to the newest schema
/// ([`migrations::migrate`] with [`migrations::MIGRATIONS`]): what `persister migrate` does.
pub async fn migrate(args: &CassandraArgs) -> Result<Migrated, StoreError> {
    let keyspace = Keyspace::new(&args.keyspace, args.replication_factor)?;
    let session = connect(&args.contact_points, args.request_timeout()).await?;
    migrations::migrate(&session, &keyspace, migrations::MIGRATIONS).await
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

/// Runs the prepared SELECT `statement` on `table` (with its CLIENT span and duration
/// metric) and decodes its first row, if any, as `R`; `what` names the query in errors.
pub(crate) async fn first_row<R, V>(
    session: &Session,
    statement: &scylla::statement::prepared::PreparedStatement,
    table: &'static str,
    values: V,
    what: impl Fn() -> String,
) -> Result<Option<R>, StoreError>
where
    R: for<'frame, 'metadata> scylla::deserialize::row::DeserializeRow<'frame, 'metadata>,
    V: scylla::serialize::row::SerializeRow,
{
    let result = telemetry::db::cassandra(
        "read",
        Operation::Get.as_str(),
        table,
        session.execute_unpaged(statement, values),
    )
    .await;
    decode_first_row(result, what)
}

/// The first row of a query's `result`, if any, as `R`, with errors that name the query.
pub(crate) fn decode_first_row<R>(
    result: Result<scylla::response::query_result::QueryResult, scylla::errors::ExecutionError>,
    what: impl Fn() -> String,
) -> Result<Option<R>, StoreError>
where
    R: for<'frame, 'metadata> scylla::deserialize::row::DeserializeRow<'frame, 'metadata>,
{
    let result = result.map_err(|source| StoreError::Execute {
        statement: what(),
        source: Box::new(source),
    })?;
    let decode = |reason: String| StoreError::Decode {
        statement: what(),
        reason,
    };
    result
        .into_rows_result()
        .map_err(|e| decode(e.to_string()))?
        .maybe_first_row::<R>()
        .map_err(|e| decode(e.to_string()))
}

/// Prepares `cql`, with an error that names the statement.
pub(crate) async fn prepare(
    session: &Session,
    cql: String,
) -> Result<scylla::statement::prepared::PreparedStatement, StoreError> {
    session
        .prepare(cql.clone())
        .await
        .map_err(|e| StoreError::Prepare {
            statement: cql,
            reason: e.to_string(),
        })
}

/// Whether Cassandra answers a query now, as `/readyz` reports it.
pub(crate) async fn ping(session: &Session) -> Result<(), String> {
    release_version(session)
        .await
        .map(drop)
        .map_err(|e| format!("Cassandra does not answer: {e}"))
}

/// Which statement ran: a bounded label for metrics and spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Upsert,
    Delete,
    Get,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upsert => "upsert",
            Self::Delete => "delete",
            Self::Get => "get",
        }
    }
}

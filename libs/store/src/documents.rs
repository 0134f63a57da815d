//! The read model's statements: apply an event, read a document.
//!
//! Every write carries `USING TIMESTAMP` = the event's offset in its partition. All events
//! of a document share one partition, so Cassandra's last-write-wins then follows Kafka's
//! order, not the clocks of producers or consumers: re-applying an event changes nothing,
//! an older event applied after a newer one loses, and a DELETE's tombstone shadows every
//! earlier write. Replaying the topic from the start converges to the same table.

use std::sync::Arc;

use events::{Document, Event, EventType};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::MaybeUnset;
use uuid::Uuid;

use crate::{CassandraArgs, Keyspace, StoreError, schema};

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

/// The documents table, with its statements prepared once.
#[derive(Debug, Clone)]
pub struct DocumentStore {
    session: Arc<Session>,
    keyspace: Keyspace,
    upsert: PreparedStatement,
    delete: PreparedStatement,
    get: PreparedStatement,
}

impl DocumentStore {
    /// Connects, applies the schema (idempotent) and prepares the statements.
    pub async fn open(args: &CassandraArgs) -> Result<Self, StoreError> {
        let keyspace = Keyspace::new(&args.keyspace, args.replication_factor)?;
        let session = crate::connect(&args.contact_points, args.request_timeout()).await?;
        schema::apply(&session, &keyspace).await?;
        Self::prepare(Arc::new(session), keyspace).await
    }

    /// Prepares the statements on an open session whose keyspace has the schema.
    pub async fn prepare(session: Arc<Session>, keyspace: Keyspace) -> Result<Self, StoreError> {
        let ks = keyspace.name();
        let prepare = |cql: String| {
            let session = Arc::clone(&session);
            async move {
                session
                    .prepare(cql.clone())
                    .await
                    .map_err(|e| StoreError::Prepare {
                        statement: cql,
                        reason: e.to_string(),
                    })
            }
        };
        Ok(Self {
            upsert: prepare(format!(
                "INSERT INTO {ks}.documents (id, author, text) VALUES (?, ?, ?) USING TIMESTAMP ?"
            ))
            .await?,
            delete: prepare(format!(
                "DELETE FROM {ks}.documents USING TIMESTAMP ? WHERE id = ?"
            ))
            .await?,
            get: prepare(format!(
                "SELECT id, author, text FROM {ks}.documents WHERE id = ?"
            ))
            .await?,
            session,
            keyspace,
        })
    }

    pub fn keyspace(&self) -> &Keyspace {
        &self.keyspace
    }

    /// Applies `event`, read at `offset` of its partition, to the table. Idempotent.
    /// Returns the operation that ran.
    pub async fn apply(&self, event: &Event, offset: i64) -> Result<Operation, StoreError> {
        let id = event.payload.id;
        let operation = match event.header.kind {
            EventType::Create | EventType::Update => Operation::Upsert,
            EventType::Delete => Operation::Delete,
        };
        let result = telemetry::db::cassandra(
            "write",
            operation.as_str(),
            "documents",
            self.write(event, offset),
        )
        .await;
        result.map_err(|source| StoreError::Execute {
            statement: format!("{} of document {id}", operation.as_str()),
            source: Box::new(source),
        })?;
        Ok(operation)
    }

    async fn write(
        &self,
        event: &Event,
        offset: i64,
    ) -> Result<scylla::response::query_result::QueryResult, scylla::errors::ExecutionError> {
        let id = event.payload.id;
        match event.header.kind {
            // A create defines the whole document: a missing field is null.
            EventType::Create => {
                let author = MaybeUnset::Set(event.payload.author.as_deref());
                let text = MaybeUnset::Set(event.payload.text.as_deref());
                let values = (id, author, text, offset);
                self.session.execute_unpaged(&self.upsert, values).await
            }
            // An update writes only what it carries; unset columns keep their value.
            EventType::Update => {
                let author = unset_if_none(event.payload.author.as_deref());
                let text = unset_if_none(event.payload.text.as_deref());
                let values = (id, author, text, offset);
                self.session.execute_unpaged(&self.upsert, values).await
            }
            EventType::Delete => {
                self.session
                    .execute_unpaged(&self.delete, (offset, id))
                    .await
            }
        }
    }

    /// The document with `id`, if it exists.
    pub async fn get(&self, id: Uuid) -> Result<Option<Document>, StoreError> {
        let decode = |reason: String| StoreError::Decode {
            statement: "get document".into(),
            reason,
        };
        let result = telemetry::db::cassandra(
            "read",
            Operation::Get.as_str(),
            "documents",
            self.session.execute_unpaged(&self.get, (id,)),
        )
        .await
        .map_err(|source| StoreError::Execute {
            statement: format!("get of document {id}"),
            source: Box::new(source),
        })?;
        let rows = result
            .into_rows_result()
            .map_err(|e| decode(e.to_string()))?;
        let row = rows
            .maybe_first_row::<(Uuid, Option<String>, Option<String>)>()
            .map_err(|e| decode(e.to_string()))?;
        Ok(row.map(|(id, author, text)| Document { id, author, text }))
    }

    /// Whether Cassandra answers a query now, as `/readyz` reports it.
    pub async fn ping(&self) -> Result<(), String> {
        crate::release_version(&self.session)
            .await
            .map(drop)
            .map_err(|e| format!("Cassandra does not answer: {e}"))
    }
}

fn unset_if_none(value: Option<&str>) -> MaybeUnset<Option<&str>> {
    match value {
        Some(v) => MaybeUnset::Set(Some(v)),
        None => MaybeUnset::Unset,
    }
}

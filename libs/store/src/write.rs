//! The write side of the read model, held by the persister alone: it applies the schema
//! when it opens, and turns each event into one idempotent statement.
//!
//! Every write carries `USING TIMESTAMP` = the event's offset in its partition. All events
//! of a document share one partition, so Cassandra's last-write-wins then follows Kafka's
//! order, not the clocks of producers or consumers: re-applying an event changes nothing,
//! an older event applied after a newer one loses, and a DELETE's tombstone shadows every
//! earlier write. Replaying the topic from the start converges to the same table.

use std::sync::Arc;

use events::{Event, EventType};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::MaybeUnset;

use crate::{CassandraArgs, Keyspace, Operation, StoreError, schema};

/// The documents table, for writing.
#[derive(Debug, Clone)]
pub struct DocumentWriter {
    session: Arc<Session>,
    upsert: PreparedStatement,
    delete: PreparedStatement,
}

impl DocumentWriter {
    /// Connects, applies the schema (idempotent) and prepares the statements.
    pub async fn open(args: &CassandraArgs) -> Result<Self, StoreError> {
        let keyspace = Keyspace::new(&args.keyspace, args.replication_factor)?;
        let session = crate::connect(&args.contact_points, args.request_timeout()).await?;
        schema::apply(&session, &keyspace).await?;
        Self::prepare(Arc::new(session), &keyspace).await
    }

    /// Prepares the statements on an open session whose keyspace has the schema.
    pub async fn prepare(session: Arc<Session>, keyspace: &Keyspace) -> Result<Self, StoreError> {
        let ks = keyspace.name();
        let upsert = crate::prepare(
            &session,
            format!(
                "INSERT INTO {ks}.documents (id, author, text) VALUES (?, ?, ?) USING TIMESTAMP ?"
            ),
        )
        .await?;
        let delete = crate::prepare(
            &session,
            format!("DELETE FROM {ks}.documents USING TIMESTAMP ? WHERE id = ?"),
        )
        .await?;
        Ok(Self {
            session,
            upsert,
            delete,
        })
    }

    /// Applies `event`, read at `offset` of its partition, to the table. Idempotent.
    /// Returns the operation that ran.
    pub async fn apply(&self, event: &Event, offset: i64) -> Result<Operation, StoreError> {
        let id = event.payload.id;
        // One decision per event kind: which statement, with which values. The operation
        // names the span and the metric, so it is decided here together with the write.
        let (operation, write) = match event.header.kind {
            // A create defines the whole document: a missing field is null.
            EventType::Create => (
                Operation::Upsert,
                Write::Upsert((
                    id,
                    MaybeUnset::Set(event.payload.author.as_deref()),
                    MaybeUnset::Set(event.payload.text.as_deref()),
                    offset,
                )),
            ),
            // An update writes only what it carries; unset columns keep their value.
            EventType::Update => (
                Operation::Upsert,
                Write::Upsert((
                    id,
                    unset_if_none(event.payload.author.as_deref()),
                    unset_if_none(event.payload.text.as_deref()),
                    offset,
                )),
            ),
            EventType::Delete => (Operation::Delete, Write::Delete((offset, id))),
        };
        let call = async {
            match write {
                Write::Upsert(values) => self.session.execute_unpaged(&self.upsert, values).await,
                Write::Delete(values) => self.session.execute_unpaged(&self.delete, values).await,
            }
        };
        telemetry::db::cassandra("write", operation.as_str(), "documents", call)
            .await
            .map_err(|source| StoreError::Execute {
                statement: format!("{} of document {id}", operation.as_str()),
                source: Box::new(source),
            })?;
        Ok(operation)
    }

    /// Whether Cassandra answers a query now, as `/readyz` reports it.
    pub async fn ping(&self) -> Result<(), String> {
        crate::ping(&self.session).await
    }
}

/// The bound values of the one statement an event becomes.
enum Write<'a> {
    Upsert(
        (
            uuid::Uuid,
            MaybeUnset<Option<&'a str>>,
            MaybeUnset<Option<&'a str>>,
            i64,
        ),
    ),
    Delete((i64, uuid::Uuid)),
}

fn unset_if_none(value: Option<&str>) -> MaybeUnset<Option<&str>> {
    match value {
        Some(v) => MaybeUnset::Set(Some(v)),
        None => MaybeUnset::Unset,
    }
}

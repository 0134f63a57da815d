//! The write side of the read model, held by the persister alone: it applies the schema's
//! migrations when it opens, and turns each event into one idempotent statement.
//!
//! Every write carries `USING TIMESTAMP` = the event's offset in its partition. All events
//! of a document share one partition, so Cassandra's last-write-wins then follows Kafka's
//! order, not the clocks of producers or consumers: re-applying an event changes nothing,
//! an older event applied after a newer one loses, and a DELETE's tombstone shadows every
//! earlier write. Replaying the topic from the start converges to the same table.
//!
//! Events with an idempotency key are remembered in `applied_events` (document, event id,
//! position, request fingerprint): a keyed command sent twice is one event id at two
//! positions, and the persister applies only the first (see [`AppliedAt`]).
//!
//! That holds only for the topic the table was built from: a recreated topic, or one with
//! more partitions, restarts the offsets a document's writes carry. So the writer also
//! keeps `read_model_source`, the topic's id and partition count, which the persister
//! checks at start and while it runs.
//!
//! And it records how far each partition was applied (`applied_positions`), which the
//! reader waits on for a read that carries a `Document-Position`.

use std::sync::Arc;

use events::{Event, EventType};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::MaybeUnset;
use uuid::Uuid;

use crate::{CassandraArgs, Keyspace, Operation, StoreError, migrations};

/// The documents table, for writing.
#[derive(Debug, Clone)]
pub struct DocumentWriter {
    session: Arc<Session>,
    upsert: PreparedStatement,
    delete: PreparedStatement,
    applied: PreparedStatement,
    remember: PreparedStatement,
    source: PreparedStatement,
    record_source: PreparedStatement,
    record_position: PreparedStatement,
}

/// What a read model was built from: the topic's Kafka id and partition count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSource {
    pub topic_id: Uuid,
    pub partitions: i32,
}

/// Where a keyed event was applied first, and the fingerprint of its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedAt {
    pub partition: i32,
    pub offset: i64,
    pub fingerprint: String,
}

impl DocumentWriter {
    /// Connects, applies the migrations the keyspace lacks ([`migrations::migrate`]) and
    /// prepares the statements.
    pub async fn open(args: &CassandraArgs) -> Result<Self, StoreError> {
        let keyspace = Keyspace::new(&args.keyspace, args.replication_factor)?;
        let session = crate::connect(&args.contact_points, args.request_timeout()).await?;
        migrations::migrate(&session, &keyspace, migrations::MIGRATIONS).await?;
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
        let source = crate::prepare(
            &session,
            format!("SELECT topic_id, partitions FROM {ks}.read_model_source WHERE topic = ?"),
        )
        .await?;
        let record_source = crate::prepare(
            &session,
            format!(
                "INSERT INTO {ks}.read_model_source (topic, topic_id, partitions, recorded_at) \
                 VALUES (?, ?, ?, toTimestamp(now()))"
            ),
        )
        .await?;
        let applied = crate::prepare(
            &session,
            format!(
                "SELECT partition, offset, fingerprint FROM {ks}.applied_events \
                 WHERE document_id = ? AND event_id = ?"
            ),
        )
        .await?;
        let remember = crate::prepare(
            &session,
            format!(
                "INSERT INTO {ks}.applied_events \
                 (document_id, event_id, partition, offset, fingerprint) VALUES (?, ?, ?, ?, ?)"
            ),
        )
        .await?;
        let record_position = crate::prepare(
            &session,
            format!(
                "INSERT INTO {ks}.applied_positions (partition, offset) VALUES (?, ?) \
                 USING TIMESTAMP ?"
            ),
        )
        .await?;
        Ok(Self {
            session,
            record_position,
            upsert,
            delete,
            applied,
            remember,
            source,
            record_source,
        })
    }

    /// What the table was built from, if that was recorded.
    pub async fn source(&self, topic: &str) -> Result<Option<ModelSource>, StoreError> {
        let row = crate::first_row::<(Option<Uuid>, Option<i32>), _>(
            &self.session,
            &self.source,
            "read_model_source",
            (topic,),
            || format!("read_model_source of {topic}"),
        )
        .await?;
        Ok(row.and_then(|(id, partitions)| {
            Some(ModelSource {
                topic_id: id?,
                partitions: partitions?,
            })
        }))
    }

    /// Records that the table is built from `source` (the persister does it once, on the
    /// first start against an empty `read_model_source`).
    pub async fn record_source(&self, topic: &str, source: ModelSource) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(
                &self.record_source,
                (topic, source.topic_id, source.partitions),
            )
            .await
            .map(drop)
            .map_err(|error| StoreError::Execute {
                statement: format!("record read_model_source of {topic}"),
                source: Box::new(error),
            })
    }

    /// Where the event `event` of `document` was applied, if it was (keyed events only).
    pub async fn applied_at(
        &self,
        document: Uuid,
        event: Uuid,
    ) -> Result<Option<AppliedAt>, StoreError> {
        let row = crate::first_row::<(i32, i64, String), _>(
            &self.session,
            &self.applied,
            "applied_events",
            (document, event),
            || format!("get of applied event {event} of document {document}"),
        )
        .await?;
        Ok(row.map(|(partition, offset, fingerprint)| AppliedAt {
            partition,
            offset,
            fingerprint,
        }))
    }

    /// Remembers that the keyed event `event` of `document` was applied `at`. Written
    /// after the event itself: a crash between the two applies the event again at the
    /// same position, which changes nothing.
    pub async fn remember_applied(
        &self,
        document: Uuid,
        event: Uuid,
        at: &AppliedAt,
    ) -> Result<(), StoreError> {
        let values = (
            document,
            event,
            at.partition,
            at.offset,
            at.fingerprint.as_str(),
        );
        telemetry::db::cassandra(
            "write",
            Operation::Upsert.as_str(),
            "applied_events",
            self.session.execute_unpaged(&self.remember, values),
        )
        .await
        .map_err(|source| StoreError::Execute {
            statement: format!("insert of applied event {event} of document {document}"),
            source: Box::new(source),
        })?;
        Ok(())
    }

    /// Records that every record of `partition` up to `offset` was dealt with. The write
    /// carries the offset as its timestamp, so a late or repeated write of an older offset
    /// (a rebalance, a retry) never moves the row back.
    ///
    /// Not wrapped in a span: it runs in the background, once per flush, outside any
    /// command's trace, and would only add root traces of its own to Jaeger.
    pub async fn record_position(&self, partition: i32, offset: i64) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(&self.record_position, (partition, offset, offset))
            .await
            .map(drop)
            .map_err(|source| StoreError::Execute {
                statement: format!("record applied position {partition}:{offset}"),
                source: Box::new(source),
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

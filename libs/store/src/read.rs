//! The read side of the read model, the only part of this crate the reader holds: two
//! prepared SELECTs (a document; how far a partition was applied) and a probe. It runs no DDL and prepares no write, so the query side
//! cannot change the table even by mistake.

use std::sync::Arc;

use events::Document;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use uuid::Uuid;

use crate::{CassandraArgs, Keyspace, StoreError};

/// The documents table, read-only.
#[derive(Debug, Clone)]
pub struct DocumentReader {
    session: Arc<Session>,
    get: PreparedStatement,
    applied: PreparedStatement,
}

impl DocumentReader {
    /// Connects and prepares the query. The keyspace must already hold the schema (the
    /// persister's start, `persister migrate` or `cargo xtask infra up` applies its
    /// migrations); otherwise the error says so.
    pub async fn open(args: &CassandraArgs) -> Result<Self, StoreError> {
        let keyspace = Keyspace::new(&args.keyspace, args.replication_factor)?;
        let session = crate::connect(&args.contact_points, args.request_timeout()).await?;
        Self::prepare(Arc::new(session), &keyspace).await
    }

    /// Prepares the query on an open session.
    pub async fn prepare(session: Arc<Session>, keyspace: &Keyspace) -> Result<Self, StoreError> {
        let ks = keyspace.name();
        let hint = |error: StoreError| match error {
            StoreError::Prepare { statement, reason } => StoreError::Prepare {
                statement,
                reason: format!(
                    "{reason} (the schema's migrations are applied by the persister at \
                     start-up, by `persister migrate` or by `cargo xtask infra up`; run one \
                     of them first)"
                ),
            },
            other => other,
        };
        let get = crate::prepare(
            &session,
            format!("SELECT id, author, text FROM {ks}.documents WHERE id = ?"),
        )
        .await
        .map_err(hint)?;
        let applied = crate::prepare(
            &session,
            format!("SELECT offset FROM {ks}.applied_positions WHERE partition = ?"),
        )
        .await
        .map_err(hint)?;
        Ok(Self {
            session,
            get,
            applied,
        })
    }

    /// The document with `id`, if it exists.
    pub async fn get(&self, id: Uuid) -> Result<Option<Document>, StoreError> {
        let row = crate::first_row::<(Uuid, Option<String>, Option<String>), _>(
            &self.session,
            &self.get,
            "documents",
            (id,),
            || format!("get of document {id}"),
        )
        .await?;
        Ok(row.map(|(id, author, text)| Document { id, author, text }))
    }

    /// The offset up to which the persister applied `partition`, if it recorded one.
    /// Not wrapped in a span, like its write: the reader polls it while requests wait.
    pub async fn applied_offset(&self, partition: i32) -> Result<Option<i64>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.applied, (partition,))
            .await;
        let row = crate::decode_first_row::<(Option<i64>,)>(result, || {
            format!("applied position of partition {partition}")
        })?;
        Ok(row.and_then(|(offset,)| offset))
    }

    /// Whether Cassandra answers a query now, as `/readyz` reports it.
    pub async fn ping(&self) -> Result<(), String> {
        crate::ping(&self.session).await
    }
}

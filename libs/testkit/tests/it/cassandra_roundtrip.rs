//! The real Cassandra and our scylla session work together: the schema's migrations create
//! the keyspace and table, prepared statements write and read, and `USING TIMESTAMP` decides
//! which write wins, whatever the order in which they arrive (the persister relies on it).

use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use uuid::Uuid;

type Row = (Uuid, Option<String>, Option<String>);

struct Statements {
    upsert: PreparedStatement,
    delete: PreparedStatement,
    get: PreparedStatement,
}

async fn prepare(session: &Session, keyspace: &str) -> Statements {
    let prepare = |cql: String| async move {
        session
            .prepare(cql.clone())
            .await
            .unwrap_or_else(|e| panic!("prepare {cql}: {e}"))
    };
    Statements {
        upsert: prepare(format!(
            "INSERT INTO {keyspace}.documents (id, author, text) VALUES (?, ?, ?) USING TIMESTAMP ?"
        ))
        .await,
        delete: prepare(format!(
            "DELETE FROM {keyspace}.documents USING TIMESTAMP ? WHERE id = ?"
        ))
        .await,
        get: prepare(format!(
            "SELECT id, author, text FROM {keyspace}.documents WHERE id = ?"
        ))
        .await,
    }
}

async fn get(session: &Session, statements: &Statements, id: Uuid) -> Option<Row> {
    session
        .execute_unpaged(&statements.get, (id,))
        .await
        .expect("select")
        .into_rows_result()
        .expect("rows")
        .maybe_first_row::<Row>()
        .expect("row type")
}

async fn upsert(session: &Session, s: &Statements, id: Uuid, text: &str, timestamp: i64) {
    session
        .execute_unpaged(&s.upsert, (id, "author", text, timestamp))
        .await
        .expect("insert");
}

#[tokio::test]
async fn prepared_statements_write_and_read_in_a_fresh_keyspace() {
    let keyspace = testkit::infra().keyspace().await;
    let session = &keyspace.session;
    let statements = prepare(session, keyspace.name()).await;

    let id = Uuid::new_v4();
    assert_eq!(get(session, &statements, id).await, None);
    upsert(session, &statements, id, "hello", 1).await;
    assert_eq!(
        get(session, &statements, id).await,
        Some((id, Some("author".into()), Some("hello".into())))
    );
}

#[tokio::test]
async fn the_higher_timestamp_wins_whatever_the_arrival_order() {
    let keyspace = testkit::infra().keyspace().await;
    let session = &keyspace.session;
    let s = prepare(session, keyspace.name()).await;

    // A newer write, then an older one arriving late: the newer stays.
    let id = Uuid::new_v4();
    upsert(session, &s, id, "newer", 20).await;
    upsert(session, &s, id, "older", 10).await;
    assert_eq!(
        get(session, &s, id).await.and_then(|row| row.2).as_deref(),
        Some("newer")
    );

    // A delete shadows every earlier write, even one replayed after it.
    session
        .execute_unpaged(&s.delete, (30_i64, id))
        .await
        .expect("delete");
    upsert(session, &s, id, "replayed", 25).await;
    assert_eq!(get(session, &s, id).await, None);

    // A write after the delete brings the document back.
    upsert(session, &s, id, "recreated", 40).await;
    assert_eq!(
        get(session, &s, id).await.and_then(|row| row.2).as_deref(),
        Some("recreated")
    );
}

//! The schema's migrations on the real Cassandra, each test in a keyspace of its own: a
//! keyspace made by the first migration, with data in it, upgraded to the latest; a second
//! migration (a test-only one that adds a column) applied over data; two runners at once;
//! a changed migration refused; a held lock waited for; a keyspace older than migrations
//! adopted.

use std::sync::Arc;
use std::time::Duration;

use scylla::client::session::Session;
use store::migrations::{self, MIGRATIONS, Migration};
use store::{DocumentReader, Keyspace, StoreError};
use testkit::{TestKeyspace, infra};
use uuid::Uuid;

/// The released migrations up to the first, then a second that adds a column, as a real
/// one would. Test-only: the production list has one migration, and a column that no code
/// reads would be a migration users pay for and get nothing from.
static WITH_A_COLUMN: [Migration; 2] = [
    MIGRATIONS[0],
    Migration {
        version: 2,
        file: "0002_documents_edited_at.cql",
        cql: "-- When a document was last edited.\n\
              ALTER TABLE ${keyspace}.documents ADD edited_at timestamp;\n",
    },
];

/// The first released migration alone: what a keyspace made by the oldest version has.
fn first() -> &'static [Migration] {
    &MIGRATIONS[..1]
}

async fn insert_document(session: &Session, keyspace: &Keyspace, id: Uuid, text: &str) {
    session
        .query_unpaged(
            format!(
                "INSERT INTO {}.documents (id, author, text) VALUES (?, ?, ?)",
                keyspace.name()
            ),
            (id, "ada", text),
        )
        .await
        .expect("a document written");
}

/// The rows of `schema_migrations`: version and checksum, by version.
async fn records(session: &Session, keyspace: &Keyspace) -> Vec<(i32, String)> {
    let mut rows: Vec<(i32, String)> = session
        .query_unpaged(
            format!(
                "SELECT version, checksum FROM {}.schema_migrations",
                keyspace.name()
            ),
            (),
        )
        .await
        .expect("the record read")
        .into_rows_result()
        .expect("rows")
        .rows::<(i32, String)>()
        .expect("typed rows")
        .collect::<Result<_, _>>()
        .expect("decoded rows");
    rows.sort();
    rows
}

async fn migrated_by_the_first(keyspace: &TestKeyspace) {
    let migrated = migrations::migrate(&keyspace.session, &keyspace.keyspace, first())
        .await
        .expect("the first migration applied");
    assert_eq!(migrated.applied, ["0001_read_model.cql"]);
    assert_eq!(migrated.version, 1);
}

/// The test with the production list: whatever migrations come after the first,
/// a keyspace the first made, holding a document, ends at the latest with the document
/// still readable by the reader's own statements.
#[tokio::test]
async fn a_keyspace_made_by_the_first_migration_upgrades_to_the_latest_with_its_data() {
    let keyspace = infra().bare_keyspace().await;
    let (session, ks) = (&keyspace.session, &keyspace.keyspace);
    migrated_by_the_first(&keyspace).await;
    let id = Uuid::new_v4();
    insert_document(session, ks, id, "written at migration 1").await;

    let migrated = migrations::migrate(session, ks, MIGRATIONS)
        .await
        .expect("the upgrade to the latest");
    let later: Vec<&str> = MIGRATIONS[1..].iter().map(|m| m.file).collect();
    assert_eq!(migrated.applied, later);
    assert_eq!(migrated.version, MIGRATIONS.last().unwrap().version);
    let expected: Vec<(i32, String)> = MIGRATIONS
        .iter()
        .map(|m| (m.version, m.checksum()))
        .collect();
    assert_eq!(records(session, ks).await, expected);

    let reader = DocumentReader::prepare(Arc::clone(session), ks)
        .await
        .expect("the reader prepares its statements on the latest schema");
    let document = reader
        .get(id)
        .await
        .unwrap()
        .expect("the document survives");
    assert_eq!(document.text.as_deref(), Some("written at migration 1"));

    let again = migrations::migrate(session, ks, MIGRATIONS).await.unwrap();
    assert!(again.applied.is_empty(), "{again:?}");
}

/// The same upgrade through a second migration that does something: a column added over
/// a table with data, the old row kept (the new column null), the new one writable.
#[tokio::test]
async fn a_second_migration_adds_a_column_to_a_keyspace_with_data() {
    let keyspace = infra().bare_keyspace().await;
    let (session, ks) = (&keyspace.session, &keyspace.keyspace);
    migrated_by_the_first(&keyspace).await;
    let id = Uuid::new_v4();
    insert_document(session, ks, id, "before the column").await;
    let write_edited_at = format!(
        "UPDATE {}.documents SET edited_at = toTimestamp(now()) WHERE id = ?",
        ks.name()
    );
    assert!(
        session
            .query_unpaged(write_edited_at.as_str(), (id,))
            .await
            .is_err(),
        "the column exists before its migration"
    );

    let migrated = migrations::migrate(session, ks, &WITH_A_COLUMN)
        .await
        .expect("migration 2 applied");
    assert_eq!(migrated.applied, ["0002_documents_edited_at.cql"]);
    assert_eq!(migrated.version, 2);
    assert_eq!(
        records(session, ks).await,
        [
            (1, WITH_A_COLUMN[0].checksum()),
            (2, WITH_A_COLUMN[1].checksum())
        ]
    );

    let select = format!(
        "SELECT text, edited_at FROM {}.documents WHERE id = ?",
        ks.name()
    );
    let read = |select: String| async move {
        session
            .query_unpaged(select, (id,))
            .await
            .unwrap()
            .into_rows_result()
            .unwrap()
            .single_row::<(String, Option<scylla::value::CqlTimestamp>)>()
            .unwrap()
    };
    let (text, edited_at) = read(select.clone()).await;
    assert_eq!(text, "before the column");
    assert_eq!(edited_at, None);
    session
        .query_unpaged(write_edited_at.as_str(), (id,))
        .await
        .expect("the new column is writable");
    assert!(read(select).await.1.is_some());

    let again = migrations::migrate(session, ks, &WITH_A_COLUMN)
        .await
        .expect("nothing to do the second time");
    assert!(again.applied.is_empty(), "{again:?}");
}

/// Four runners starting together (as persisters after a deploy): each migration runs
/// once. Without the lock, two would run the ALTER TABLE and one would fail ("already
/// exists") or be recorded twice.
#[tokio::test]
async fn concurrent_migration_runners_apply_each_migration_once() {
    let keyspace = infra().bare_keyspace().await;
    let runners: Vec<_> = (0..4)
        .map(|_| {
            let (session, ks) = (Arc::clone(&keyspace.session), keyspace.keyspace.clone());
            tokio::spawn(async move { migrations::migrate(&session, &ks, &WITH_A_COLUMN).await })
        })
        .collect();
    let mut applied = Vec::new();
    for runner in runners {
        let migrated = runner.await.unwrap().expect("every runner succeeds");
        assert_eq!(migrated.version, 2);
        applied.extend(migrated.applied);
    }
    applied.sort_unstable();
    assert_eq!(
        applied,
        ["0001_read_model.cql", "0002_documents_edited_at.cql"]
    );
    assert_eq!(
        records(&keyspace.session, &keyspace.keyspace).await.len(),
        2
    );
}

/// An applied migration edited afterwards stops the runner, naming the file and the fix.
#[tokio::test]
async fn a_changed_migration_stops_the_runner_with_what_to_do() {
    static EDITED: [Migration; 2] = [
        WITH_A_COLUMN[0],
        Migration {
            cql: "ALTER TABLE ${keyspace}.documents ADD edited_at date;",
            ..WITH_A_COLUMN[1]
        },
    ];
    let keyspace = infra().bare_keyspace().await;
    let (session, ks) = (&keyspace.session, &keyspace.keyspace);
    migrations::migrate(session, ks, &WITH_A_COLUMN)
        .await
        .unwrap();
    let error = migrations::migrate(session, ks, &EDITED)
        .await
        .expect_err("an edited migration is refused");
    assert!(
        matches!(
            error,
            StoreError::MigrationChanged {
                file: "0002_documents_edited_at.cql",
                ..
            }
        ),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("new migration with the next number"),
        "{message}"
    );
}

/// A runner that finds the lock taken waits, and goes on once it is released.
#[tokio::test]
async fn a_migration_runner_waits_for_the_lock() {
    let keyspace = infra().bare_keyspace().await;
    let (session, ks) = (&keyspace.session, &keyspace.keyspace);
    migrated_by_the_first(&keyspace).await;
    let lock = format!("{}.schema_migrations_lock", ks.name());
    session
        .query_unpaged(
            format!(
                "INSERT INTO {lock} (name, owner, acquired_at) \
                 VALUES ('migrations', ?, toTimestamp(now())) USING TTL 60"
            ),
            (Uuid::new_v4(),),
        )
        .await
        .unwrap();
    let runner = tokio::spawn({
        let (session, ks) = (Arc::clone(session), ks.clone());
        async move { migrations::migrate(&session, &ks, &WITH_A_COLUMN).await }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !runner.is_finished(),
        "the runner did not wait for the lock"
    );
    assert_eq!(records(session, ks).await.len(), 1);
    session
        .query_unpaged(format!("DELETE FROM {lock} WHERE name = 'migrations'"), ())
        .await
        .unwrap();
    let migrated = tokio::time::timeout(Duration::from_secs(10), runner)
        .await
        .expect("the runner goes on once the lock is free")
        .unwrap()
        .unwrap();
    assert_eq!(migrated.applied, ["0002_documents_edited_at.cql"]);
}

/// A keyspace made before migrations existed (the single schema file, as a cqlsh Job
/// applied it) holds the tables but no record: the first migration adopts it (its
/// statements say IF NOT EXISTS), records it, and the data stays.
#[tokio::test]
async fn a_keyspace_made_before_migrations_is_adopted_by_the_first_migration() {
    let keyspace = infra().bare_keyspace().await;
    let (session, ks) = (&keyspace.session, &keyspace.keyspace);
    for statement in ks.statements() {
        session.query_unpaged(statement, ()).await.unwrap();
    }
    let id = Uuid::new_v4();
    insert_document(session, ks, id, "written before migrations").await;

    let migrated = migrations::migrate(session, ks, MIGRATIONS)
        .await
        .expect("the old keyspace adopted");
    let all: Vec<&str> = MIGRATIONS.iter().map(|m| m.file).collect();
    assert_eq!(migrated.applied, all);
    assert_eq!(records(session, ks).await.len(), MIGRATIONS.len());
    let reader = DocumentReader::prepare(Arc::clone(session), ks)
        .await
        .unwrap();
    let document = reader
        .get(id)
        .await
        .unwrap()
        .expect("the document survives");
    assert_eq!(document.text.as_deref(), Some("written before migrations"));
}

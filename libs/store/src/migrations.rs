//! Versioned schema migrations: the numbered files of `libs/store/migrations`, applied to a
//! keyspace once each, oldest first, recorded in `schema_migrations`, under a lock.
//!
//! Every runner that sets up a keyspace (the persister's start and `persister migrate`,
//! `cargo xtask infra up`, the test kit) calls [`migrate`]. It executes the idempotent
//! `keyspace.cql` (the keyspace, the record and the lock table), reads the record, and
//! stops if a recorded migration's file has changed since. When nothing is pending it
//! returns without locking (the common start). Otherwise it takes the lock, a lightweight
//! transaction (`INSERT ... IF NOT EXISTS USING TTL`) so that two persisters starting
//! together do not both run an `ALTER TABLE`, reads the record again (the other one may
//! have finished meanwhile), applies each pending migration and records it, and releases
//! the lock. The reader never calls this: it runs no DDL.
//!
//! A migration that fails part-way is not recorded, and its statements that ran stay: the
//! next run starts it again from its first statement. So a migration is either statements
//! that can run twice (`IF NOT EXISTS`) or a single statement.
//!
//! To change the schema:
//! 1. Add `libs/store/migrations/NNNN_<what>.cql` with the next number: a comment that says
//!    why, then the statements (`${keyspace}.` before each table; each ends with `;`).
//! 2. Name it at the end of [`MIGRATIONS`] (`N => "NNNN_<what>.cql"`); a test fails when a
//!    file is missing from the list or out of order.
//! 3. Change the code that reads or writes what it adds, in the same commit: the persister
//!    applies the migration at its start, before it prepares its statements.
//! 4. Never edit or renumber a file that was released: its checksum is recorded, and a
//!    runner stops on a keyspace whose record no longer matches. Only its comments may
//!    change. A mistake is undone by the next migration.
//!
//! Migrations only add (tables, columns, options): an older binary, as in a rollback, keeps
//! working on a newer schema, and [`migrate`] only warns about migrations it does not know.

use std::time::{Duration, Instant};

use scylla::client::session::Session;
use scylla::value::{CqlValue, Row};
use uuid::Uuid;

use crate::schema::{KEYSPACE_CQL, statements_of};
use crate::{Keyspace, StoreError, execute};

/// One migration file, compiled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Its number, the file name's first four digits: the order of application.
    pub version: i32,
    /// The file's name in `libs/store/migrations`, `NNNN_<what>.cql`.
    pub file: &'static str,
    /// The file's text.
    pub cql: &'static str,
}

/// A [`Migration`] per `version => "file"`, the file compiled in from `libs/store/migrations`.
macro_rules! migrations {
    ($($version:literal => $file:literal),* $(,)?) => {
        &[$(Migration {
            version: $version,
            file: $file,
            cql: include_str!(concat!("../migrations/", $file)),
        }),*]
    };
}

/// Every migration, oldest first: the one list of the files in `libs/store/migrations` (a
/// test fails when a file there is missing here). To change the schema, add a file with
/// the next number and name it here; never edit a file that was released.
pub const MIGRATIONS: &[Migration] = migrations![
    1 => "0001_read_model.cql",
];

/// How long the lock outlives a runner that died holding it. Renewed before each
/// migration; one migration (an `ALTER TABLE` or a `CREATE TABLE`) takes well under it.
pub const LOCK_TTL: Duration = Duration::from_secs(60);
/// How long a runner waits for another's lock before it gives up: more than the TTL, so a
/// lock left by a runner that died expires while the next one waits.
const LOCK_WAIT: Duration = Duration::from_secs(150);
/// The lock's row key: one lock per keyspace.
const LOCK_NAME: &str = "migrations";

impl Migration {
    /// The checksum recorded with the migration: FNV-1a (64 bits) of its statements, so a
    /// comment may be corrected but a changed statement is caught. It detects an edit,
    /// not an attack: the files are compiled into the binaries that apply them.
    pub fn checksum(&self) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in statements_of(self.cql).join(";\n").bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("fnv1a64:{hash:016x}")
    }
}

/// What a run of [`migrate`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Migrated {
    /// The migrations this run applied, oldest first (their file names).
    pub applied: Vec<&'static str>,
    /// The newest migration the keyspace has now (0: none).
    pub version: i32,
    /// Migrations recorded in the keyspace that this binary does not have: a newer binary
    /// applied them. Not an error (a rollback runs an older binary on a newer schema,
    /// which migrations keep compatible by only adding), but worth a warning.
    pub unknown: Vec<i32>,
}

/// Brings `keyspace` to the newest of `migrations` (normally [`MIGRATIONS`]; a test may
/// pass its own list), creating the keyspace when missing. Safe to run any number of
/// times and from several processes at once; see the module's documentation.
pub async fn migrate(
    session: &Session,
    keyspace: &Keyspace,
    migrations: &'static [Migration],
) -> Result<Migrated, StoreError> {
    let migrated = run(session, keyspace, migrations).await?;
    if !migrated.unknown.is_empty() {
        tracing::warn!(
            keyspace = keyspace.name(),
            unknown = ?migrated.unknown,
            "the keyspace has schema migrations this binary does not know: a newer version applied them"
        );
    }
    Ok(migrated)
}

async fn run(
    session: &Session,
    keyspace: &Keyspace,
    migrations: &'static [Migration],
) -> Result<Migrated, StoreError> {
    for statement in keyspace.fill(KEYSPACE_CQL) {
        execute(session, &statement).await?;
    }
    let plan = plan(keyspace, migrations, &recorded(session, keyspace).await?)?;
    if plan.pending.is_empty() {
        return Ok(plan.migrated);
    }
    let lock = Lock::acquire(session, keyspace).await?;
    let outcome = apply_pending(session, keyspace, migrations, &lock).await;
    // Released whatever happened: the next runner should not wait for the TTL because
    // this one failed.
    let released = lock.release(session).await;
    let migrated = outcome?;
    released?;
    Ok(migrated)
}

/// Under the lock: the record read again, then each pending migration applied and recorded.
async fn apply_pending(
    session: &Session,
    keyspace: &Keyspace,
    migrations: &'static [Migration],
    lock: &Lock,
) -> Result<Migrated, StoreError> {
    let mut plan = plan(keyspace, migrations, &recorded(session, keyspace).await?)?;
    let ks = keyspace.name();
    for migration in plan.pending {
        lock.renew(session).await?;
        for statement in keyspace.fill(migration.cql) {
            execute(session, &statement)
                .await
                .map_err(|source| StoreError::Migration {
                    keyspace: ks.to_owned(),
                    file: migration.file,
                    source: Box::new(source),
                })?;
        }
        let record = format!(
            "INSERT INTO {ks}.schema_migrations (version, name, checksum, applied_at) \
             VALUES (?, ?, ?, toTimestamp(now()))"
        );
        session
            .query_unpaged(
                record.as_str(),
                (migration.version, migration.file, migration.checksum()),
            )
            .await
            .map_err(|source| StoreError::Execute {
                statement: record,
                source: Box::new(source),
            })?;
        tracing::info!(
            keyspace = ks,
            migration = migration.file,
            "schema migration applied"
        );
        plan.migrated.applied.push(migration.file);
        plan.migrated.version = plan.migrated.version.max(migration.version);
    }
    Ok(plan.migrated)
}

/// A row of `schema_migrations`: version, file name, checksum.
type Record = (i32, Option<String>, Option<String>);

/// The migrations recorded in `keyspace`.
async fn recorded(session: &Session, keyspace: &Keyspace) -> Result<Vec<Record>, StoreError> {
    let statement = format!(
        "SELECT version, name, checksum FROM {}.schema_migrations",
        keyspace.name()
    );
    let decode = |reason: String| StoreError::Decode {
        statement: statement.clone(),
        reason,
    };
    let result = session
        .query_unpaged(statement.as_str(), ())
        .await
        .map_err(|source| StoreError::Execute {
            statement: statement.clone(),
            source: Box::new(source),
        })?;
    let rows = result
        .into_rows_result()
        .map_err(|e| decode(e.to_string()))?;
    rows.rows::<Record>()
        .map_err(|e| decode(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| decode(e.to_string()))
}

/// What is to be done, and what the keyspace has already.
struct Plan {
    pending: Vec<&'static Migration>,
    migrated: Migrated,
}

/// Compares the record with the files: an applied migration whose file changed is an
/// error; the rest are pending, in order.
fn plan(
    keyspace: &Keyspace,
    migrations: &'static [Migration],
    recorded: &[Record],
) -> Result<Plan, StoreError> {
    let mut migrated = Migrated::default();
    for (version, name, checksum) in recorded {
        migrated.version = migrated.version.max(*version);
        let Some(migration) = migrations.iter().find(|m| m.version == *version) else {
            migrated.unknown.push(*version);
            continue;
        };
        let now = migration.checksum();
        if checksum.as_deref() != Some(now.as_str()) {
            return Err(StoreError::MigrationChanged {
                keyspace: keyspace.name().to_owned(),
                file: migration.file,
                recorded_name: name.clone().unwrap_or_default(),
                recorded: checksum.clone().unwrap_or_default(),
                now,
            });
        }
    }
    migrated.unknown.sort_unstable();
    let pending = migrations
        .iter()
        .filter(|m| !recorded.iter().any(|(version, ..)| *version == m.version))
        .collect();
    Ok(Plan { pending, migrated })
}

/// The migration lock of one keyspace, held by this process.
struct Lock {
    keyspace: String,
    owner: Uuid,
}

impl Lock {
    /// Takes the lock, waiting while another runner holds it (up to [`LOCK_WAIT`]).
    async fn acquire(session: &Session, keyspace: &Keyspace) -> Result<Self, StoreError> {
        let ks = keyspace.name();
        let owner = Uuid::new_v4();
        let take = format!(
            "INSERT INTO {ks}.schema_migrations_lock (name, owner, acquired_at) \
             VALUES ('{LOCK_NAME}', ?, toTimestamp(now())) IF NOT EXISTS USING TTL {}",
            LOCK_TTL.as_secs()
        );
        let started = Instant::now();
        loop {
            let holder = lightweight(session, &take, (owner,)).await?;
            let Some(holder) = holder else {
                return Ok(Self {
                    keyspace: ks.to_owned(),
                    owner,
                });
            };
            if started.elapsed() >= LOCK_WAIT {
                return Err(StoreError::MigrationLocked {
                    keyspace: ks.to_owned(),
                    waited_secs: started.elapsed().as_secs(),
                    holder,
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Extends the lock by [`LOCK_TTL`] from now; fails if it expired and another runner
    /// took it, since two runners would then apply the same migration.
    async fn renew(&self, session: &Session) -> Result<(), StoreError> {
        let renew = format!(
            "UPDATE {}.schema_migrations_lock USING TTL {} \
             SET owner = ?, acquired_at = toTimestamp(now()) WHERE name = '{LOCK_NAME}' IF owner = ?",
            self.keyspace,
            LOCK_TTL.as_secs()
        );
        match lightweight(session, &renew, (self.owner, self.owner)).await? {
            None => Ok(()),
            Some(holder) => Err(StoreError::MigrationLockLost {
                keyspace: self.keyspace.clone(),
                holder,
            }),
        }
    }

    /// Gives the lock up, if this process still holds it.
    async fn release(self, session: &Session) -> Result<(), StoreError> {
        let release = format!(
            "DELETE FROM {}.schema_migrations_lock WHERE name = '{LOCK_NAME}' IF owner = ?",
            self.keyspace
        );
        lightweight(session, &release, (self.owner,))
            .await
            .map(drop)
    }
}

/// Runs the lightweight transaction `statement`: `None` when it was applied, otherwise
/// the row that stopped it, shown for an error message.
async fn lightweight(
    session: &Session,
    statement: &str,
    values: impl scylla::serialize::row::SerializeRow,
) -> Result<Option<String>, StoreError> {
    let decode = |reason: String| StoreError::Decode {
        statement: statement.to_owned(),
        reason,
    };
    let result = session
        .query_unpaged(statement, values)
        .await
        .map_err(|source| StoreError::Execute {
            statement: statement.to_owned(),
            source: Box::new(source),
        })?;
    let rows = result
        .into_rows_result()
        .map_err(|e| decode(e.to_string()))?;
    // The first column is `[applied]`; when false, the others are the existing row.
    let names: Vec<String> = rows
        .column_specs()
        .iter()
        .map(|spec| spec.name().to_owned())
        .collect();
    let row = rows.first_row::<Row>().map_err(|e| decode(e.to_string()))?;
    if let Some(Some(CqlValue::Boolean(true))) = row.columns.first() {
        return Ok(None);
    }
    let existing: Vec<String> = names
        .iter()
        .zip(&row.columns)
        .skip(1)
        .map(|(name, value)| match value {
            Some(value) => format!("{name}={value:?}"),
            None => format!("{name}=null"),
        })
        .collect();
    Ok(Some(if existing.is_empty() {
        "no row".to_owned()
    } else {
        existing.join(", ")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list is the directory: a file added to `libs/store/migrations` but not to
    /// [`MIGRATIONS`] would never be applied.
    #[test]
    fn every_migration_file_is_in_the_list_and_numbered_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|m| m.file).collect();
        assert_eq!(
            files, listed,
            "libs/store/migrations and MIGRATIONS (libs/store/src/migrations.rs) differ: \
             list every file there, in order, as `N => \"NNNN_<what>.cql\"`"
        );
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            let expected = i32::try_from(index + 1).unwrap();
            assert_eq!(
                migration.version, expected,
                "{} is out of order",
                migration.file
            );
            let prefix = format!("{expected:04}_");
            assert!(
                migration.file.starts_with(&prefix) && migration.file.ends_with(".cql"),
                "{} should be named {prefix}<what>.cql",
                migration.file
            );
            assert!(
                !statements_of(migration.cql).is_empty(),
                "{} has no statement",
                migration.file
            );
        }
    }

    #[test]
    fn the_checksum_follows_the_statements_not_the_comments() {
        let base = Migration {
            version: 1,
            file: "0001_x.cql",
            cql: "-- one\nCREATE TABLE ${keyspace}.t (a int PRIMARY KEY);\n",
        };
        let recommented = Migration {
            cql: "-- another comment\nCREATE TABLE ${keyspace}.t (a int PRIMARY KEY);\n",
            ..base
        };
        let changed = Migration {
            cql: "CREATE TABLE ${keyspace}.t (a bigint PRIMARY KEY);\n",
            ..base
        };
        assert_eq!(base.checksum(), recommented.checksum());
        assert_ne!(base.checksum(), changed.checksum());
        assert!(base.checksum().starts_with("fnv1a64:"));
    }

    #[test]
    fn a_changed_migration_is_refused_and_unknown_ones_are_reported() {
        static LIST: &[Migration] = &[
            Migration {
                version: 1,
                file: "0001_a.cql",
                cql: "CREATE TABLE ${keyspace}.a (k int PRIMARY KEY);",
            },
            Migration {
                version: 2,
                file: "0002_b.cql",
                cql: "ALTER TABLE ${keyspace}.a ADD v text;",
            },
        ];
        let keyspace = Keyspace::new("ks", 1).unwrap();
        let good = Some(LIST[0].checksum());
        let first = plan(
            &keyspace,
            LIST,
            &[(1, Some("0001_a.cql".into()), good.clone())],
        )
        .unwrap();
        assert_eq!(first.pending, [&LIST[1]]);
        assert_eq!(first.migrated.version, 1);

        let older = plan(
            &keyspace,
            &LIST[..1],
            &[(1, None, good), (2, None, Some(LIST[1].checksum()))],
        )
        .unwrap();
        assert!(older.pending.is_empty());
        assert_eq!(older.migrated.unknown, [2]);

        let error = plan(&keyspace, LIST, &[(1, None, Some("fnv1a64:0".into()))])
            .err()
            .expect("a changed migration is refused");
        let message = error.to_string();
        assert!(
            message.contains("0001_a.cql") && message.contains("new migration"),
            "{message}"
        );
    }
}

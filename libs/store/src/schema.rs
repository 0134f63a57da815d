//! The keyspace: its checked name, the CQL files' statements filled in for it, and the
//! schema's application (the migrations of [`crate::migrations`]) and removal.

use scylla::client::session::Session;

use crate::{StoreError, execute, migrations};

/// The keyspace and the record of its migrations (`libs/store/keyspace.cql`): idempotent
/// statements that every runner executes before it looks at the migrations.
pub const KEYSPACE_CQL: &str = include_str!("../keyspace.cql");

/// A keyspace name checked to be a plain CQL identifier, with its replication factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyspace {
    name: String,
    replication_factor: u8,
}

impl Keyspace {
    /// Checks `name` so that it can be spliced into CQL without quoting.
    pub fn new(name: &str, replication_factor: u8) -> Result<Self, StoreError> {
        let mut chars = name.chars();
        let valid = name.len() <= 48
            && chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid || replication_factor == 0 {
            return Err(StoreError::KeyspaceName(name.to_owned()));
        }
        Ok(Self {
            name: name.to_owned(),
            replication_factor,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The statements of `cql` (a file of `libs/store`) for this keyspace.
    pub fn fill(&self, cql: &str) -> Vec<String> {
        statements_of(cql)
            .iter()
            .map(|s| {
                s.replace("${keyspace}", &self.name).replace(
                    "${replication_factor}",
                    &self.replication_factor.to_string(),
                )
            })
            .collect()
    }

    /// The statements of the single schema file that came before migrations: the keyspace's
    /// creation and the first migration's tables, with no record. What keyspaces made then
    /// hold (a test shows that migration 1 adopts them), and what a runner that can only
    /// execute a file (cqlsh) would run; remove it once nothing generates such a file.
    pub fn statements(&self) -> Vec<String> {
        let create_keyspace = self.fill(KEYSPACE_CQL).into_iter().take(1);
        create_keyspace
            .chain(self.fill(migrations::MIGRATIONS[0].cql))
            .collect()
    }
}

/// The statements of a CQL file in order: comment lines removed, split at semicolons,
/// trimmed, placeholders left as they are.
pub(crate) fn statements_of(cql: &str) -> Vec<String> {
    let without_comments: String = cql
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Brings `keyspace` to the newest schema: creates it if missing and applies the
/// migrations it lacks ([`migrations::migrate`]); safe to run any number of times, and
/// from several processes at once.
pub async fn apply(session: &Session, keyspace: &Keyspace) -> Result<(), StoreError> {
    migrations::migrate(session, keyspace, migrations::MIGRATIONS)
        .await
        .map(drop)
}

/// Drops `keyspace` and everything in it, if it exists.
pub async fn drop_keyspace(session: &Session, keyspace: &Keyspace) -> Result<(), StoreError> {
    execute(
        session,
        &format!("DROP KEYSPACE IF EXISTS {}", keyspace.name),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyspace_names_are_checked() {
        assert!(Keyspace::new("documents", 1).is_ok());
        assert!(Keyspace::new("t_0a1b", 1).is_ok());
        for bad in ["", "Documents", "1abc", "a-b", "a;drop", &"a".repeat(49)] {
            assert!(Keyspace::new(bad, 1).is_err(), "{bad:?} was accepted");
        }
        assert!(Keyspace::new("documents", 0).is_err());
    }

    #[test]
    fn the_keyspace_file_is_filled_in_and_idempotent() {
        let statements = Keyspace::new("ks_test", 3).unwrap().fill(KEYSPACE_CQL);
        assert_eq!(statements.len(), 3, "{statements:#?}");
        assert!(statements[0].starts_with("CREATE KEYSPACE IF NOT EXISTS ks_test"));
        assert!(statements[0].contains("'replication_factor': 3"));
        assert!(statements[1].starts_with("CREATE TABLE IF NOT EXISTS ks_test.schema_migrations"));
        assert!(
            statements[2].starts_with("CREATE TABLE IF NOT EXISTS ks_test.schema_migrations_lock")
        );
        assert!(statements.iter().all(|s| !s.contains("${")));
    }

    #[test]
    fn the_single_file_statements_are_the_keyspace_and_the_first_migration() {
        let statements = Keyspace::new("ks_test", 3).unwrap().statements();
        assert_eq!(statements.len(), 5, "{statements:#?}");
        assert!(statements[0].starts_with("CREATE KEYSPACE IF NOT EXISTS ks_test"));
        assert!(statements[0].contains("'replication_factor': 3"));
        assert!(statements[1].starts_with("CREATE TABLE IF NOT EXISTS ks_test.documents"));
        assert!(statements[2].starts_with("CREATE TABLE IF NOT EXISTS ks_test.applied_events"));
        assert!(statements[3].starts_with("CREATE TABLE IF NOT EXISTS ks_test.read_model_source"));
        assert!(statements[4].starts_with("CREATE TABLE IF NOT EXISTS ks_test.applied_positions"));
        assert!(statements.iter().all(|s| !s.contains("${")));
    }
}

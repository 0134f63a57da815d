//! The schema file (`libs/store/schema.cql`) and its idempotent application.

use scylla::client::session::Session;

use crate::{StoreError, execute};

/// The schema, compiled in so that every binary applies the same file.
pub const SCHEMA_CQL: &str = include_str!("../schema.cql");

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

    /// The statements of the schema file for this keyspace, comments removed.
    pub fn statements(&self) -> Vec<String> {
        let without_comments: String = SCHEMA_CQL
            .lines()
            .filter(|line| !line.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        without_comments
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.replace("${keyspace}", &self.name).replace(
                    "${replication_factor}",
                    &self.replication_factor.to_string(),
                )
            })
            .collect()
    }
}

/// Applies the schema file to `keyspace`; safe to run any number of times.
pub async fn apply(session: &Session, keyspace: &Keyspace) -> Result<(), StoreError> {
    for statement in keyspace.statements() {
        execute(session, &statement).await?;
    }
    Ok(())
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
    fn statements_are_filled_in_and_idempotent() {
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

//! [`Schema`]: the PostgreSQL schema that holds sunusav's tables and its
//! migrations table, apart from the host's.
//!
//! Every statement sunusav sends runs with `search_path` set to this schema
//! alone (its migrations and its units of work with `SET LOCAL`, the
//! connections of a pool sunusav builds for the whole session), so the SQL
//! names tables without a schema and a host's tables of the same names, in
//! `public` or elsewhere, are never touched.

use std::fmt;
use std::str::FromStr;

/// The default schema: `sunusav`.
pub const DEFAULT_SCHEMA: &str = "sunusav";

/// A schema name: 1 to 63 bytes of lowercase ASCII letters, digits and `_`,
/// not starting with a digit nor with `pg_` (reserved by PostgreSQL).
///
/// The rule keeps the name an identifier that needs no quoting and cannot
/// carry SQL; it is still written quoted.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Schema(String);

/// A schema name that breaks [`Schema`]'s rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid schema name {0:?}: 1 to 63 of a-z, 0-9 and _, not starting with a digit or pg_")]
pub struct InvalidSchema(String);

impl Schema {
    /// Parses a schema name.
    ///
    /// # Errors
    /// `InvalidSchema` when the name breaks the rule.
    pub fn new(name: &str) -> Result<Self, InvalidSchema> {
        let valid = (1..=63).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !name.as_bytes()[0].is_ascii_digit()
            && !name.starts_with("pg_");
        if valid { Ok(Self(name.to_owned())) } else { Err(InvalidSchema(name.to_owned())) }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The quoted identifier, `"name"`.
    pub(crate) fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }

    /// The name of sunusav's migrations table in this schema.
    pub fn migrations_table(&self) -> String {
        format!("{}._sqlx_migrations", self.quoted())
    }

    /// `SET LOCAL search_path` to this schema alone: for the current
    /// transaction only, so a connection that goes back to a host's pool
    /// keeps the host's setting.
    pub(crate) fn set_local(&self) -> String {
        format!("SET LOCAL search_path TO {}", self.quoted())
    }
}

impl Default for Schema {
    fn default() -> Self {
        Self(DEFAULT_SCHEMA.to_owned())
    }
}

impl FromStr for Schema {
    type Err = InvalidSchema;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_name_is_a_plain_lowercase_identifier() {
        for ok in ["sunusav", "public", "_x", "tontine_2", &"a".repeat(63)] {
            assert_eq!(Schema::new(ok).map(|s| s.to_string()), Ok(ok.to_owned()));
        }
        for bad in ["", "Sunusav", "1x", "pg_temp", "a-b", "a\"; DROP TABLE x; --", "é", &"a".repeat(64)] {
            assert!(Schema::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_migrations_table_and_search_path_are_quoted_in_the_schema() {
        let s = Schema::default();
        assert_eq!(s.migrations_table(), "\"sunusav\"._sqlx_migrations");
        assert_eq!(s.set_local(), "SET LOCAL search_path TO \"sunusav\"");
    }
}

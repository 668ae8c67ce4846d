//! The PostgreSQL schema: named migrations, applied once each, in order, as
//! the SQLite store does. Each app keeps its own list beside its code
//! (`qa::pg`, `docs::pg`, `draw::pg`); [`all`] is the order they run in.
//!
//! Append new migrations at the end of their list; never edit or reorder a
//! landed one. Names are unique across lists (each app prefixes its own).

/// One schema step.
pub struct Migration {
    pub name: &'static str,
    pub sql: &'static str,
}

/// The cluster's own tables: the migration record and the cluster id that
/// names its Redis channels.
pub const CORE: &[Migration] = &[Migration {
    name: "core-0001-cluster",
    sql: "CREATE TABLE rt_cluster (
              one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
              id TEXT NOT NULL
          );
          INSERT INTO rt_cluster (id) VALUES (replace(gen_random_uuid()::text, '-', ''));",
}];

/// Every list, in the order they are applied.
pub fn all() -> impl Iterator<Item = &'static Migration> {
    [
        CORE,
        crate::qa::pg::MIGRATIONS,
        crate::docs::pg::MIGRATIONS,
        crate::draw::pg::MIGRATIONS,
    ]
    .into_iter()
    .flatten()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    #[test]
    fn names_are_unique() {
        let mut seen = HashSet::new();
        for m in super::all() {
            assert!(seen.insert(m.name), "migration {} appears twice", m.name);
        }
    }
}

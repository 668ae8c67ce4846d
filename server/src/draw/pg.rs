//! This app's tables in PostgreSQL (`--database`).

use crate::cluster::schema::Migration;

/// This app's migrations, oldest first (names prefixed with the app's).
pub const MIGRATIONS: &[Migration] = &[];

//! Versioned migrations, applied at connect: each host that starts brings
//! the schema up to this build's version (one at a time, under an advisory
//! lock), and refuses a database a newer build has migrated.

use super::{OrStore, StoreError};

/// The migrations, in order: version `i + 1` is `MIGRATIONS[i]`. Never edit
/// a released one; add the next.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_leases.sql"),
    include_str!("../migrations/0003_ticket_join.sql"),
];

/// The version that started keeping the ticket join at write time: a
/// database written before it has the join built from its rows.
const TICKET_JOIN: u32 = 3;

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// The advisory lock migrations hold (an arbitrary constant: "XLA schema").
const MIGRATION_LOCK: i64 = 0x584c_415f_5343_484d;

/// Brings the database's schema up to [`SCHEMA_VERSION`].
///
/// # Errors
/// [`StoreError::Version`] when the database is at a newer version;
/// backend errors.
pub(crate) async fn migrate(client: &mut tokio_postgres::Client, location: &str) -> Result<(), StoreError> {
    let tx = client.transaction().await.or_store()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .or_store()?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS xla_schema (version integer NOT NULL)")
        .await
        .or_store()?;
    let found: Option<i32> = tx
        .query_one("SELECT max(version) FROM xla_schema", &[])
        .await
        .or_store()?
        .get(0);
    let found = found.unwrap_or(0).max(0) as u32;
    if found > SCHEMA_VERSION {
        return Err(StoreError::Version {
            location: location.to_string(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as i32 + 1;
        tracing::info!(store = location, version, "migrating the PostgreSQL store's schema");
        tx.batch_execute(sql).await.or_store()?;
        if version as u32 == TICKET_JOIN && found > 0 {
            super::joined::rebuild(&tx).await?;
        }
        tx.execute("INSERT INTO xla_schema (version) VALUES ($1)", &[&version])
            .await
            .or_store()?;
    }
    tx.commit().await.or_store()
}

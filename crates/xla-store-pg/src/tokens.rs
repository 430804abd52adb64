//! API token records, by id, as JSON (only a token's SHA-256 is kept; see
//! [`xla_store::TokenRecord`]).
//!
//! Every API request reads its token. Read from the database each time,
//! that query set the API's ceiling on PostgreSQL (about 6,000 requests/s
//! here, against 12,000-16,000 on sled), so a store keeps the records it
//! read for [`FRESH`] from when it asked: a token saved (revoked) through
//! this store counts at once, one saved by another process (`xla-host token
//! revoke`, another host) within [`FRESH`], as other hosts' data reaches
//! report caches.

use super::{Inner, OrStore, StoreError};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use xla_store::TokenRecord;

/// How long a record read from the database answers for it.
pub(crate) const FRESH: Duration = Duration::from_secs(1);

/// Records kept at most: ids are only cached once found, so only real
/// tokens fill it; past this many it starts again empty.
const KEPT: usize = 4_096;

/// Token records recently read or saved by this store, by id, each with
/// when it was known to be current.
#[derive(Default)]
pub(crate) struct Recent(Mutex<HashMap<String, (Instant, TokenRecord)>>);

impl Recent {
    /// A poisoned lock only means a panic elsewhere: what it guards is a
    /// cache of whole records, never half written.
    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, TokenRecord)>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, id: &str) -> Option<TokenRecord> {
        self.kept()
            .get(id)
            .filter(|(known, _)| known.elapsed() < FRESH)
            .map(|(_, record)| record.clone())
    }

    /// Keeps `record` as current at `known` (for a read, when it was asked:
    /// a record saved meanwhile is newer and stays).
    fn put(&self, record: &TokenRecord, known: Instant) {
        let mut kept = self.kept();
        if kept.get(&record.id).is_some_and(|(newer, _)| *newer > known) {
            return;
        }
        if kept.len() >= KEPT && !kept.contains_key(&record.id) {
            kept.clear();
        }
        kept.insert(record.id.clone(), (known, record.clone()));
    }

    /// Forgets `id`: its next read goes to the database.
    fn forget(&self, id: &str) {
        self.kept().remove(id);
    }
}

fn encode(token: &TokenRecord) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(token).map_err(|e| StoreError::corrupt(format!("encoding a token record: {e}")))
}

fn decode(value: serde_json::Value) -> Result<TokenRecord, StoreError> {
    serde_json::from_value(value).map_err(|e| StoreError::corrupt(format!("a token record: {e}")))
}

/// Writes a token record (a new token, or a changed one).
pub(crate) async fn save(inner: &Inner, token: &TokenRecord) -> Result<(), StoreError> {
    inner
        .client()
        .await?
        .execute(
            "INSERT INTO tokens (id, record) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record",
            &[&token.id, &encode(token)?],
        )
        .await
        .or_store()?;
    inner.tokens.put(token, Instant::now());
    Ok(())
}

/// Moves a token's `last_used` forward to `at`, in one statement: a
/// revocation saved meanwhile is kept (the row is updated in place, only
/// that field).
pub(crate) async fn note_use(inner: &Inner, id: &str, at: i64) -> Result<(), StoreError> {
    inner
        .client()
        .await?
        .execute(
            "UPDATE tokens SET record = jsonb_set(record, '{last_used}', to_jsonb($2::bigint)) \
             WHERE id = $1 AND (record->>'last_used' IS NULL OR (record->>'last_used')::bigint < $2)",
            &[&id, &at],
        )
        .await
        .or_store()?;
    // The next read sees the use (the API notes it at most once a minute).
    inner.tokens.forget(id);
    Ok(())
}

/// The record with this id: as read or saved here within [`FRESH`], else
/// from the database.
pub(crate) async fn one(inner: &Inner, id: &str) -> Result<Option<TokenRecord>, StoreError> {
    if let Some(record) = inner.tokens.get(id) {
        return Ok(Some(record));
    }
    let asked = Instant::now();
    let row = inner
        .client()
        .await?
        .query_opt("SELECT record FROM tokens WHERE id = $1", &[&id])
        .await
        .or_store()?;
    let record = row.map(|row| decode(row.get(0))).transpose()?;
    if let Some(record) = &record {
        inner.tokens.put(record, asked);
    }
    Ok(record)
}

/// Every record, by id.
pub(crate) async fn all(inner: &Inner) -> Result<Vec<TokenRecord>, StoreError> {
    let rows = inner
        .client()
        .await?
        .query("SELECT record FROM tokens ORDER BY id", &[])
        .await
        .or_store()?;
    rows.into_iter().map(|row| decode(row.get(0))).collect()
}

//! API token records, by id, as JSON (only a token's SHA-256 is kept; see
//! [`xla_store::TokenRecord`]).

use super::{Inner, OrStore, StoreError};
use xla_store::TokenRecord;

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
    Ok(())
}

/// The record with this id.
pub(crate) async fn one(inner: &Inner, id: &str) -> Result<Option<TokenRecord>, StoreError> {
    let row = inner
        .client()
        .await?
        .query_opt("SELECT record FROM tokens WHERE id = $1", &[&id])
        .await
        .or_store()?;
    row.map(|row| decode(row.get(0))).transpose()
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

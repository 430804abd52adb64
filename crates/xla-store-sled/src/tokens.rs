//! API token records: `T <id>` → the record as JSON. Only the token's
//! SHA-256 is kept (see [`xla_store::TokenRecord`]).

use super::{OrStore, Sled};
use xla_store::{StoreError, TokenRecord};

const PREFIX: u8 = b'T';

fn token_key(id: &str) -> Vec<u8> {
    let mut key = vec![PREFIX];
    key.extend_from_slice(id.as_bytes());
    key
}

impl Sled {
    /// Writes a token record; waits for the disk, whatever the durability
    /// setting: a token shown once must not vanish.
    pub(crate) fn save_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let bytes =
            serde_json::to_vec(token).map_err(|e| StoreError::corrupt(format!("encoding a token record: {e}")))?;
        self.db()?.insert(token_key(&token.id), bytes).or_store()?;
        self.db()?.flush().or_store()?;
        Ok(())
    }

    /// Sets the record's `last_used` to `at` unless it is later already,
    /// atomically (sled retries the update if the record changed meanwhile,
    /// so a revocation saved concurrently is never overwritten). Not
    /// flushed: a last use lost in a crash is harmless.
    pub(crate) fn note_token_use(&self, id: &str, at: i64) -> Result<(), StoreError> {
        let mut failure = None;
        self.db()?
            .update_and_fetch(token_key(id), |old| {
                let old = old?;
                let mut record = match decode(old) {
                    Ok(record) => record,
                    Err(e) => {
                        failure = Some(e);
                        return Some(old.to_vec());
                    }
                };
                if record.last_used.is_some_and(|used| used >= at) {
                    return Some(old.to_vec());
                }
                record.last_used = Some(at);
                match serde_json::to_vec(&record) {
                    Ok(bytes) => Some(bytes),
                    Err(e) => {
                        failure = Some(StoreError::corrupt(format!("encoding a token record: {e}")));
                        Some(old.to_vec())
                    }
                }
            })
            .or_store()?;
        failure.map_or(Ok(()), Err)
    }

    /// The record with this id.
    pub(crate) fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.db()?
            .get(token_key(id))
            .or_store()?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Every record, by id.
    pub(crate) fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.db()?
            .scan_prefix([PREFIX])
            .map(|entry| decode(&entry.or_store()?.1))
            .collect()
    }
}

fn decode(bytes: &[u8]) -> Result<TokenRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::corrupt(format!("a token record: {e}")))
}

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
        self.db.insert(token_key(&token.id), bytes).or_store()?;
        self.db.flush().or_store()?;
        Ok(())
    }

    /// The record with this id.
    pub(crate) fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.db
            .get(token_key(id))
            .or_store()?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Every record, by id.
    pub(crate) fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.db
            .scan_prefix([PREFIX])
            .map(|entry| decode(&entry.or_store()?.1))
            .collect()
    }
}

fn decode(bytes: &[u8]) -> Result<TokenRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::corrupt(format!("a token record: {e}")))
}

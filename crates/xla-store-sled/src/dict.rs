//! The string dictionary: tenants, sources, metrics, dimension keys and
//! values, provenance, each stored once and referred to by a 4-byte id, so a
//! repeated "Service Desk" costs bytes, not tens of bytes, per row.

use super::StoreError;
use super::keys;
use super::ops::Ops;
use crate::OrStore;
use rustc_hash::FxHashMap as HashMap;

/// Id 0 is reserved for "no dimension" in rollup keys.
const FIRST_ID: u32 = 1;

#[derive(Debug, Default)]
pub(crate) struct Dictionary {
    ids: HashMap<String, u32>,
    strings: HashMap<u32, String>,
    next: u32,
    /// Entries added since the last commit, to write with it.
    pending: Vec<(String, u32)>,
}

impl Dictionary {
    pub fn load(tree: &sled::Tree) -> Result<Dictionary, StoreError> {
        let mut dictionary = Dictionary {
            next: FIRST_ID,
            ..Dictionary::default()
        };
        for entry in tree.scan_prefix(keys::dict_forward_prefix()) {
            let (key, value) = entry.or_store()?;
            let string =
                std::str::from_utf8(&key[2..]).map_err(|_| StoreError::corrupt("a dictionary entry is not UTF-8"))?;
            let id = u32::from_be_bytes(
                value
                    .as_ref()
                    .try_into()
                    .map_err(|_| StoreError::corrupt("a dictionary id is not 4 bytes"))?,
            );
            dictionary.ids.insert(string.to_string(), id);
            dictionary.strings.insert(id, string.to_string());
            dictionary.next = dictionary.next.max(id.saturating_add(1));
        }
        Ok(dictionary)
    }

    /// The id of `s`, allocating one (to be committed) if new.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.next;
        self.next += 1;
        self.ids.insert(s.to_string(), id);
        self.strings.insert(id, s.to_string());
        self.pending.push((s.to_string(), id));
        id
    }

    /// The id of `s`, if it was ever stored.
    pub fn id(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    /// The string of `id`.
    pub fn string(&self, id: u32) -> Option<&str> {
        self.strings.get(&id).map(String::as_str)
    }

    /// Adds the new entries to `batch` (in both directions).
    pub fn write_pending(&mut self, batch: &mut Ops) {
        for (s, id) in self.pending.drain(..) {
            batch.insert(keys::dict_forward(&s), &id.to_be_bytes());
            batch.insert(keys::dict_reverse(id), s.as_bytes());
        }
        batch.insert(keys::DICT_NEXT, &self.next.to_be_bytes());
    }
}

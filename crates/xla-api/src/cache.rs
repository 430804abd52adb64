//! Computed results (reports, X/O/T views, scorecards) kept as their JSON
//! bytes per key and store data version: a request for a result whose data
//! has not changed since it was computed is answered from memory, and the
//! first request after a commit computes it again.

use axum::body::Bytes;
use std::collections::HashMap;
use std::sync::Mutex;

/// Results kept at most; past it the oldest half is dropped.
const MAX_ENTRIES: usize = 4096;

/// The cache.
#[derive(Default)]
pub struct ResultCache {
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    version: u64,
    body: Bytes,
    used: u64,
}

impl ResultCache {
    /// The body kept for `key` at data `version`, if any.
    pub fn get(&self, key: &str, version: u64) -> Option<Bytes> {
        let mut entries = self.entries.lock().ok()?;
        let tick = entries.len() as u64;
        let entry = entries.get_mut(key).filter(|e| e.version == version)?;
        entry.used = entry.used.max(tick);
        metrics::counter!("xla_result_cache_total", "outcome" => "hit").increment(1);
        Some(entry.body.clone())
    }

    /// Keeps `body` for `key` at `version`.
    pub fn put(&self, key: String, version: u64, body: Bytes) {
        metrics::counter!("xla_result_cache_total", "outcome" => "miss").increment(1);
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.len() >= MAX_ENTRIES {
            let mut used: Vec<u64> = entries.values().map(|e| e.used).collect();
            used.sort_unstable();
            let cutoff = used[used.len() / 2];
            entries.retain(|_, e| e.used > cutoff);
        }
        let used = entries.len() as u64;
        entries.insert(key, Entry { version, body, used });
    }
}

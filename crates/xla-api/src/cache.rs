//! Computed results (reports, X/O/T views, scorecards, series, breakdowns)
//! kept as their encoded bytes per query and store data version: a request
//! for a result whose data has not changed since it was computed is
//! answered from memory, and the first request after a commit computes it
//! again.
//!
//! The cache is bounded by bytes (quick_cache's CLOCK-Pro eviction, by
//! weight): queries are the caller's to choose, so neither their number nor
//! their size may grow the host's memory without limit.

use axum::body::Bytes;
use axum::http::HeaderValue;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

/// Bytes of results kept at most.
const CAPACITY_BYTES: u64 = 256 * 1024 * 1024;
/// A result larger than this is answered but not kept.
const LARGEST_KEPT: usize = 8 * 1024 * 1024;
/// What an entry costs beyond its body (key, version, bookkeeping).
const ENTRY_OVERHEAD: u64 = 256;

/// The cache.
pub struct ResultCache {
    entries: Cache<String, Kept, ByBytes>,
}

/// A kept result: its data version, media type and body.
#[derive(Clone)]
pub struct Kept {
    /// The store's data version it was computed at.
    pub version: u64,
    /// Its `Content-Type`.
    pub content_type: HeaderValue,
    /// Its body.
    pub body: Bytes,
}

#[derive(Clone)]
struct ByBytes;

impl Weighter<String, Kept> for ByBytes {
    fn weight(&self, key: &String, kept: &Kept) -> u64 {
        ENTRY_OVERHEAD + key.len() as u64 + kept.body.len() as u64
    }
}

impl Default for ResultCache {
    fn default() -> Self {
        ResultCache {
            entries: Cache::with_weighter(4096, CAPACITY_BYTES, ByBytes),
        }
    }
}

impl ResultCache {
    /// The result kept for `key` at data `version`, if any.
    pub fn get(&self, key: &str, version: u64) -> Option<Kept> {
        let kept = self.entries.get(key).filter(|kept| kept.version == version)?;
        metrics::counter!("xla_result_cache_total", "outcome" => "hit").increment(1);
        Some(kept)
    }

    /// Keeps `kept` for `key` (unless it is larger than a result may be).
    pub fn put(&self, key: String, kept: Kept) {
        metrics::counter!("xla_result_cache_total", "outcome" => "miss").increment(1);
        if kept.body.len() <= LARGEST_KEPT {
            self.entries.insert(key, kept);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(version: u64, bytes: usize) -> Kept {
        Kept {
            version,
            content_type: HeaderValue::from_static("application/json"),
            body: Bytes::from(vec![b'x'; bytes]),
        }
    }

    #[test]
    fn a_result_is_served_only_at_its_data_version() {
        let cache = ResultCache::default();
        cache.put("report".into(), kept(3, 10));
        assert!(cache.get("report", 3).is_some());
        assert!(cache.get("report", 4).is_none(), "data committed since");
        assert!(cache.get("other", 3).is_none());
    }

    #[test]
    fn memory_stays_within_the_budget_whatever_is_asked() {
        let cache = ResultCache::default();
        cache.put("huge".into(), kept(1, LARGEST_KEPT + 1));
        assert!(cache.get("huge", 1).is_none(), "too large to keep");
        for i in 0..200 {
            cache.put(format!("q{i}"), kept(1, 4 * 1024 * 1024));
        }
        assert!(cache.entries.weight() <= CAPACITY_BYTES, "{}", cache.entries.weight());
    }
}

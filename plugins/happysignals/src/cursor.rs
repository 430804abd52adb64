//! The pull cursor: a JSON string the host stores between calls.
//!
//! ```json
//! {"v":1,"created":"2026-10-03T14:22:09Z","id":"hs-00000042","walk":{"from":"2026-10-01T08:00:00Z","page":3}}
//! ```
//!
//! - `created`, `id`: the watermark, the last response read (in `created`,
//!   then `id` order). It outlives a sync: the next one asks for
//!   `created__gte=<created>` and skips what is not after the watermark, so
//!   responses sharing that timestamp are neither lost nor read twice.
//! - `walk`: the sync in progress: the `created__gte` it started from (absent
//!   for a first sync without `since`) and the next page. Absent between syncs.
//!
//! A cursor this version cannot read is a permanent error rather than a
//! silent full resync.

use crate::time::parse_iso;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use xla_sdk::PluginError;

/// Version of the cursor format.
pub const VERSION: u32 = 1;

/// The decoded cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// Format version, [`VERSION`].
    pub v: u32,
    /// `created` of the last response read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// `id` of the last response read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The walk in progress; `None` between syncs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub walk: Option<Walk>,
}

/// A sync in progress: one query, read page by page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Walk {
    /// `created__gte` of every page of this sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The next page to ask for, from 1.
    pub page: u32,
    /// The page size the walk was made with: page numbers mean nothing
    /// under another, so a changed `page_size` restarts the walk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
}

impl Default for Cursor {
    fn default() -> Self {
        Cursor {
            v: VERSION,
            created: None,
            id: None,
            walk: None,
        }
    }
}

impl Cursor {
    /// Reads the cursor the host passed back; `None` is a first sync.
    pub fn decode(text: Option<&str>) -> Result<Cursor, PluginError> {
        let Some(text) = text else {
            return Ok(Cursor::default());
        };
        let unreadable =
            |why: String| PluginError::Permanent(format!("cursor `{text}` was not written by this connector: {why}"));
        let cursor: Cursor = serde_json::from_str(text).map_err(|e| unreadable(e.to_string()))?;
        if cursor.v != VERSION {
            return Err(unreadable(format!("format {} is not {VERSION}", cursor.v)));
        }
        let times = [
            cursor.created.as_deref(),
            cursor.walk.as_ref().and_then(|w| w.from.as_deref()),
        ];
        if let Some(bad) = times.into_iter().flatten().find(|t| parse_iso(t).is_none()) {
            return Err(unreadable(format!("`{bad}` is not a date-time")));
        }
        if cursor.created.is_some() != cursor.id.is_some() {
            return Err(unreadable("`created` and `id` go together".into()));
        }
        if cursor.walk.as_ref().is_some_and(|w| w.page == 0) {
            return Err(unreadable("pages count from 1".into()));
        }
        Ok(cursor)
    }

    /// The cursor as the JSON string handed to the host.
    pub fn encode(&self) -> String {
        // A struct of strings and integers always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Whether a response at (`created` ms, `id`) comes after the watermark.
    pub fn is_new(&self, created: i64, id: &str) -> bool {
        let (Some(mark), Some(mark_id)) = (self.created.as_deref().and_then(parse_iso), self.id.as_deref()) else {
            return true;
        };
        match created.cmp(&mark) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => id > mark_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let cursor = Cursor {
            created: Some("2026-10-03T14:22:09Z".into()),
            id: Some("hs-00000042".into()),
            walk: Some(Walk {
                from: Some("2026-10-01T08:00:00Z".into()),
                page: 3,
                page_size: Some(500),
            }),
            ..Cursor::default()
        };
        let text = cursor.encode();
        assert_eq!(
            text,
            r#"{"v":1,"created":"2026-10-03T14:22:09Z","id":"hs-00000042","walk":{"from":"2026-10-01T08:00:00Z","page":3,"page_size":500}}"#
        );
        assert_eq!(Cursor::decode(Some(&text)).expect("decodes"), cursor);
        assert_eq!(Cursor::default().encode(), r#"{"v":1}"#);
    }

    #[test]
    fn the_watermark_orders_by_created_then_id() {
        let cursor = Cursor {
            created: Some("2026-10-03T14:22:09Z".into()),
            id: Some("hs-00000042".into()),
            ..Cursor::default()
        };
        let at = parse_iso("2026-10-03T14:22:09Z").expect("time");
        assert!(!cursor.is_new(at, "hs-00000042"));
        assert!(!cursor.is_new(at, "hs-00000041"));
        assert!(cursor.is_new(at, "hs-00000043"));
        assert!(cursor.is_new(at + 1000, "hs-00000001"));
        assert!(!cursor.is_new(at - 1000, "hs-00000099"));
        assert!(Cursor::default().is_new(0, "a"));
    }

    #[test]
    fn refuses_foreign_or_tampered_cursors() {
        for text in [
            "c2",
            r#"{"v":2}"#,
            r#"{"v":1,"created":"yesterday","id":"a"}"#,
            r#"{"v":1,"created":"2026-10-03T14:22:09Z"}"#,
            r#"{"v":1,"walk":{"page":0}}"#,
            r#"{"v":1,"walk":{"from":"now","page":1}}"#,
            r#"{"v":1,"table":"incident"}"#,
        ] {
            assert!(
                matches!(Cursor::decode(Some(text)), Err(PluginError::Permanent(_))),
                "{text}"
            );
        }
    }
}

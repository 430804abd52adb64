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
//! The format is versioned by `v` (`xla_sdk::cursor`); a cursor this version
//! cannot read is a permanent error rather than a silent full resync.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use xla_sdk::PluginError;
use xla_sdk::time::parse_rfc3339_utc;

/// Version of the cursor format.
pub const VERSION: u32 = 1;

/// The cursor format: version 1, the only one so far (a walk's `page_size`
/// came later, optional, so cursors without it read as before).
const FORMAT: xla_sdk::cursor::Format<'static> = xla_sdk::cursor::Format {
    connector: "happysignals",
    writes: VERSION,
    reads: &[VERSION],
};

/// The decoded cursor (the fields beside `v`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
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

impl Cursor {
    /// Reads the cursor the host passed back; `None` is a first sync.
    pub fn decode(text: Option<&str>) -> Result<Cursor, PluginError> {
        let Some(text) = text else {
            return Ok(Cursor::default());
        };
        let (_, cursor): (u32, Cursor) = FORMAT.decode(text)?;
        let times = [
            cursor.created.as_deref(),
            cursor.walk.as_ref().and_then(|w| w.from.as_deref()),
        ];
        if let Some(bad) = times.into_iter().flatten().find(|t| parse_rfc3339_utc(t).is_none()) {
            return Err(FORMAT.refuse(text, format!("`{bad}` is not a date-time")));
        }
        if cursor.created.is_some() != cursor.id.is_some() {
            return Err(FORMAT.refuse(text, "`created` and `id` go together"));
        }
        if cursor.walk.as_ref().is_some_and(|w| w.page == 0) {
            return Err(FORMAT.refuse(text, "pages count from 1"));
        }
        Ok(cursor)
    }

    /// The cursor as the JSON string handed to the host.
    pub fn encode(&self) -> Result<String, PluginError> {
        FORMAT.encode(self)
    }

    /// Whether a response at (`created` ms, `id`) comes after the watermark.
    pub fn is_new(&self, created: i64, id: &str) -> bool {
        let (Some(mark), Some(mark_id)) = (self.created.as_deref().and_then(parse_rfc3339_utc), self.id.as_deref())
        else {
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
        };
        let text = cursor.encode().expect("encodes");
        assert_eq!(
            text,
            r#"{"v":1,"created":"2026-10-03T14:22:09Z","id":"hs-00000042","walk":{"from":"2026-10-01T08:00:00Z","page":3,"page_size":500}}"#
        );
        assert_eq!(Cursor::decode(Some(&text)).expect("decodes"), cursor);
        assert_eq!(Cursor::default().encode().expect("encodes"), r#"{"v":1}"#);
    }

    /// Cursors in existing stores keep working: these are as the connector
    /// wrote them before the SDK held the cursor envelope, with and without
    /// the walk's page size (added later).
    #[test]
    fn reads_cursors_written_before_the_sdk_envelope() {
        let stored = r#"{"v":1,"created":"2026-10-03T14:22:09Z","id":"hs-00000042","walk":{"from":"2026-10-01T08:00:00Z","page":3,"page_size":500}}"#;
        let cursor = Cursor::decode(Some(stored)).expect("decodes");
        assert_eq!(cursor.id.as_deref(), Some("hs-00000042"));
        assert_eq!(
            cursor.walk.as_ref().map(|w| (w.page, w.page_size)),
            Some((3, Some(500)))
        );
        assert_eq!(cursor.encode().expect("encodes"), stored, "written back the same");
        let older = r#"{"v":1,"created":"2026-10-03T14:22:09Z","id":"hs-00000042","walk":{"page":2}}"#;
        let cursor = Cursor::decode(Some(older)).expect("decodes");
        assert_eq!(
            cursor.walk.map(|w| (w.from, w.page, w.page_size)),
            Some((None, 2, None))
        );
        assert_eq!(Cursor::decode(Some(r#"{"v":1}"#)).expect("decodes"), Cursor::default());
    }

    #[test]
    fn the_watermark_orders_by_created_then_id() {
        let cursor = Cursor {
            created: Some("2026-10-03T14:22:09Z".into()),
            id: Some("hs-00000042".into()),
            ..Cursor::default()
        };
        let at = parse_rfc3339_utc("2026-10-03T14:22:09Z").expect("time");
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

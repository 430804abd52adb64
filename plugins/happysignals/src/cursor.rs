//! The pull cursor: a JSON string the host stores between calls.
//!
//! Version 2 (written):
//!
//! ```json
//! {"v":2,"done":"2026-10-03T14:00:00Z","walk":{"from":"2026-10-03T14:00:00Z","until":"2026-10-04T09:58:00Z",
//!  "end":"2026-10-04T09:58:00Z","page":3,"page_size":500,"count":1234,"order":"desc",
//!  "last":{"created":"2026-10-04T08:12:44Z","id":"90015"},"tail":{"created":"2026-10-04T08:12:44Z","id":"90015"},
//!  "passes":1}}
//! ```
//!
//! - `done`: every response created before it has been read. The next sync
//!   reads the window `[done, sync start)`; absent before the first sync
//!   completes (then `since`, else no lower bound).
//! - `walk`: the sync in progress, absent between syncs. `from`/`until` are
//!   the `created__gte`/`created__lt` of its requests (narrowed after the
//!   source shifted under it), `end` the window end the sync started with,
//!   `page` the next page, `count` the `meta.count` its pass started with,
//!   `order` the order the source answers in, `last` the last response read
//!   in that order, `ties` the ids read at `last`'s second, `tail` the last
//!   response of the pass's previous page,
//!   `passes` how often in a row it started over without reading anything new.
//!
//! Version 1 (`{"v":1,"created":..,"id":..,"walk":{"from":..,"page":..}}`,
//! the watermark of the last response read) is still read: its `created`
//! becomes the next window's start (responses at that second are read
//! again; the store keeps one of each) and its walk is started over.
//!
//! The envelope and its version check are `xla_sdk::cursor`'s; a cursor this
//! version cannot read is a permanent error rather than a silent full resync.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use xla_sdk::PluginError;
use xla_sdk::time::parse_rfc3339_utc;

/// Version of the cursor format written.
pub const VERSION: u32 = 2;

/// The cursor format: writes 2, reads 1 and 2.
const FORMAT: xla_sdk::cursor::Format<'static> = xla_sdk::cursor::Format {
    connector: "happysignals",
    writes: VERSION,
    reads: &[1, VERSION],
};

/// The decoded cursor (the fields beside `v`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// Every response created before this UTC date-time has been read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done: Option<String>,
    /// The walk in progress; `None` between syncs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub walk: Option<Walk>,
}

/// A version 1 cursor: the watermark of the last response read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CursorV1 {
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    id: Option<String>,
    // Its walk has no window end: it is started over.
    #[serde(default)]
    #[allow(dead_code)]
    walk: Option<serde_json::Value>,
}

/// The order the source lists responses in, by (`created`, `id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Oldest first, as asked for (`ordering=created,id`).
    Asc,
    /// Newest first: the source ignored `ordering` (its default order).
    Desc,
}

/// Where a response sits in the walk: `created` (unix ms) then `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mark {
    /// `created` as the source wrote it.
    pub created: String,
    /// `id` as text.
    pub id: String,
}

/// A sync in progress: one time window, read page by page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Walk {
    /// `created__gte` of the requests; `None` for no lower bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `created__lt` of the requests.
    pub until: String,
    /// The window end the sync started with: `done` once the walk ends.
    pub end: String,
    /// The next page to ask for, from 1.
    pub page: u32,
    /// The page size the walk was made with: page numbers mean nothing
    /// under another, so a changed `page_size` restarts the walk.
    pub page_size: u32,
    /// `meta.count` of this pass's first page: a change means the pages
    /// shifted under the walk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// The order the source answers in, once two responses showed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Order>,
    /// The last response read, in the walk's order: later passes read only
    /// what comes after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Mark>,
    /// Ids read with the same `created` as `last` (the source may list
    /// responses of one second in any `id` order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ties: Vec<String>,
    /// The last response of this pass's previous page: the next page must
    /// begin after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<Mark>,
    /// Passes started over after a shift.
    #[serde(default)]
    pub passes: u32,
}

impl Cursor {
    /// Reads the cursor the host passed back; `None` is a first sync.
    pub fn decode(text: Option<&str>) -> Result<Cursor, PluginError> {
        let Some(text) = text else {
            return Ok(Cursor::default());
        };
        let (version, fields): (u32, serde_json::Value) = FORMAT.decode(text)?;
        let cursor = if version == 1 {
            let old: CursorV1 = serde_json::from_value(fields).map_err(|e| FORMAT.refuse(text, e))?;
            if old.created.is_some() != old.id.is_some() {
                return Err(FORMAT.refuse(text, "`created` and `id` go together"));
            }
            Cursor {
                done: old.created,
                walk: None,
            }
        } else {
            serde_json::from_value(fields).map_err(|e| FORMAT.refuse(text, e))?
        };
        let walk = cursor.walk.as_ref();
        let times = [
            cursor.done.as_deref(),
            walk.and_then(|w| w.from.as_deref()),
            walk.map(|w| w.until.as_str()),
            walk.map(|w| w.end.as_str()),
            walk.and_then(|w| w.last.as_ref()).map(|l| l.created.as_str()),
        ];
        if let Some(bad) = times.into_iter().flatten().find(|t| parse_rfc3339_utc(t).is_none()) {
            return Err(FORMAT.refuse(text, format!("`{bad}` is not a date-time")));
        }
        if walk.is_some_and(|w| w.page == 0) {
            return Err(FORMAT.refuse(text, "pages count from 1"));
        }
        Ok(cursor)
    }

    /// The cursor as the JSON string handed to the host.
    pub fn encode(&self) -> Result<String, PluginError> {
        FORMAT.encode(self)
    }
}

/// Compares ids as numbers when both are whole numbers (`90015`), else as
/// text (`hs-00000042`): numeric ids of different lengths sort by value.
pub fn compare_ids(a: &str, b: &str) -> Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => a.cmp(b),
    }
}

/// Compares two responses by (`created` unix ms, `id`).
pub fn compare(a: (i64, &str), b: (i64, &str)) -> Ordering {
    a.0.cmp(&b.0).then_with(|| compare_ids(a.1, b.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk() -> Walk {
        Walk {
            from: Some("2026-10-01T00:00:00Z".into()),
            until: "2026-10-03T08:00:00Z".into(),
            end: "2026-10-03T08:00:00Z".into(),
            page: 3,
            page_size: 500,
            count: Some(1234),
            order: Some(Order::Desc),
            last: Some(Mark {
                created: "2026-10-03T07:12:44Z".into(),
                id: "90015".into(),
            }),
            ties: vec!["90015".into()],
            tail: None,
            passes: 1,
        }
    }

    #[test]
    fn round_trips() {
        let cursor = Cursor {
            done: Some("2026-10-01T00:00:00Z".into()),
            walk: Some(walk()),
        };
        let text = cursor.encode().expect("encodes");
        assert_eq!(
            text,
            r#"{"v":2,"done":"2026-10-01T00:00:00Z","walk":{"from":"2026-10-01T00:00:00Z","until":"2026-10-03T08:00:00Z","end":"2026-10-03T08:00:00Z","page":3,"page_size":500,"count":1234,"order":"desc","last":{"created":"2026-10-03T07:12:44Z","id":"90015"},"ties":["90015"],"passes":1}}"#
        );
        assert_eq!(Cursor::decode(Some(&text)).expect("decodes"), cursor);
        assert_eq!(Cursor::default().encode().expect("encodes"), r#"{"v":2}"#);
    }

    /// Cursors in existing stores keep working: version 1, with and without
    /// a walk (started over, from the watermark's second).
    #[test]
    fn reads_version_1_cursors() {
        let stored = r#"{"v":1,"created":"2026-10-03T14:22:09Z","id":"hs-00000042","walk":{"from":"2026-10-01T08:00:00Z","page":3,"page_size":500}}"#;
        let cursor = Cursor::decode(Some(stored)).expect("decodes");
        assert_eq!(cursor.done.as_deref(), Some("2026-10-03T14:22:09Z"));
        assert_eq!(cursor.walk, None);
        assert_eq!(Cursor::decode(Some(r#"{"v":1}"#)).expect("decodes"), Cursor::default());
    }

    #[test]
    fn ids_compare_as_numbers_when_they_are() {
        assert_eq!(compare_ids("90015", "9002"), Ordering::Greater);
        assert_eq!(compare_ids("hs-00000002", "hs-00000010"), Ordering::Less);
        assert_eq!(compare((5, "b"), (5, "a")), Ordering::Greater);
        assert_eq!(compare((4, "b"), (5, "a")), Ordering::Less);
    }

    #[test]
    fn refuses_foreign_or_tampered_cursors() {
        for text in [
            "c2",
            r#"{"v":3}"#,
            r#"{"v":1,"created":"yesterday","id":"a"}"#,
            r#"{"v":1,"created":"2026-10-03T14:22:09Z"}"#,
            r#"{"v":2,"done":"now"}"#,
            r#"{"v":2,"walk":{"until":"2026-10-03T08:00:00Z","end":"2026-10-03T08:00:00Z","page":0,"page_size":2}}"#,
            r#"{"v":2,"walk":{"until":"soon","end":"2026-10-03T08:00:00Z","page":1,"page_size":2}}"#,
            r#"{"v":2,"table":"incident"}"#,
        ] {
            assert!(
                matches!(Cursor::decode(Some(text)), Err(PluginError::Permanent(_))),
                "{text}"
            );
        }
    }
}

//! The pull cursor: a JSON string the host stores between calls.
//!
//! ```json
//! {"v":1,
//!  "watermarks":{"incident":{"ts":"2026-10-03 14:22:09","sys_id":"9d3…"}},
//!  "table":"sc_req_item","offset":0}
//! ```
//!
//! - `watermarks`: per table, the (`sys_updated_on`, `sys_id`) of the last
//!   record read. They outlive a sync: the next one continues after them.
//! - `table`: the table a sync is walking; absent between syncs, when the
//!   next pull starts again from the first configured table.
//! - `offset`: `sysparm_offset` while skipping pages that ACLs emptied (see
//!   the crate docs); absent when 0.
//! - `limit`: the smaller `sysparm_limit` the sync uses after the instance
//!   answered a 2xx that was not a page (see the crate docs); absent when the
//!   configured `page_size` is in force. It lasts until the sync ends.
//!
//! The format is versioned by `v` (`xla_sdk::cursor`); a cursor this version
//! cannot read is a permanent error rather than a silent full resync.

use crate::config::Table;
use crate::time::parse_glide;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use xla_sdk::PluginError;

/// Version of the cursor format.
pub const VERSION: u32 = 1;

/// The cursor format: version 1, the only one so far.
const FORMAT: xla_sdk::cursor::Format<'static> = xla_sdk::cursor::Format {
    connector: "servicenow",
    writes: VERSION,
    reads: &[VERSION],
};

/// Where the compound keyset of a table stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watermark {
    /// `sys_updated_on` of the last record read, as ServiceNow wrote it.
    pub ts: String,
    /// `sys_id` of that record.
    pub sys_id: String,
}

impl Watermark {
    /// Checks a watermark before it goes into an encoded query: a valid
    /// date-time and a `sys_id` that cannot inject query terms.
    pub fn checked(ts: &str, sys_id: &str) -> Result<Watermark, String> {
        Watermark::check(ts, sys_id)?;
        Ok(Watermark {
            ts: ts.to_string(),
            sys_id: sys_id.to_string(),
        })
    }

    /// The checks of [`Watermark::checked`] without copying: a page checks
    /// every row's keyset and keeps only the last.
    pub fn check(ts: &str, sys_id: &str) -> Result<(), String> {
        if parse_glide(ts).is_none() {
            return Err(format!(
                "`sys_updated_on` `{ts}` is not a date-time like `2026-10-03 14:22:09`"
            ));
        }
        if sys_id.is_empty()
            || !sys_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!("`sys_id` `{sys_id}` is empty or not alphanumeric"));
        }
        Ok(())
    }
}

/// The decoded cursor (the fields beside `v`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// Per-table watermark.
    #[serde(default)]
    pub watermarks: BTreeMap<Table, Watermark>,
    /// The table in progress; `None` between syncs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<Table>,
    /// `sysparm_offset` within the table in progress.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: u32,
    /// Whether the table in progress has moved its watermark in this sync
    /// (before that, the sync re-reads an overlap before the watermark).
    #[serde(default, skip_serializing_if = "is_false")]
    pub reading: bool,
    /// `sysparm_limit` in force for the rest of this sync, when smaller than
    /// the configured `page_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Cursor {
    /// Reads the cursor the host passed back; `None` is a first sync.
    pub fn decode(text: Option<&str>) -> Result<Cursor, PluginError> {
        let Some(text) = text else {
            return Ok(Cursor::default());
        };
        let (_, cursor): (u32, Cursor) = FORMAT.decode(text)?;
        for (table, mark) in &cursor.watermarks {
            Watermark::checked(&mark.ts, &mark.sys_id)
                .map_err(|why| FORMAT.refuse(text, format!("`{table}`: {why}")))?;
        }
        Ok(cursor)
    }

    /// The cursor as the JSON string handed to the host.
    pub fn encode(&self) -> Result<String, PluginError> {
        FORMAT.encode(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut cursor = Cursor::default();
        cursor.watermarks.insert(
            Table::TaskSla,
            Watermark::checked("2026-10-03 14:22:09", "0a1b").expect("valid"),
        );
        cursor.table = Some(Table::ScReqItem);
        cursor.offset = 200;
        let text = cursor.encode().expect("encodes");
        assert_eq!(
            text,
            r#"{"v":1,"watermarks":{"task_sla":{"ts":"2026-10-03 14:22:09","sys_id":"0a1b"}},"table":"sc_req_item","offset":200}"#
        );
        assert_eq!(Cursor::decode(Some(&text)).expect("decodes"), cursor);
        assert_eq!(
            Cursor::default().encode().expect("encodes"),
            r#"{"v":1,"watermarks":{}}"#
        );
    }

    /// Cursors in existing stores keep working: this is one as the
    /// connector wrote it before the SDK held the cursor envelope.
    #[test]
    fn reads_a_cursor_written_before_the_sdk_envelope() {
        let stored = r#"{"v":1,"watermarks":{"incident":{"ts":"2026-10-03 14:22:09","sys_id":"9d3f0a1b"},"task_sla":{"ts":"2026-10-02 08:00:00","sys_id":"0a1b"}},"table":"sc_req_item","offset":200,"reading":true}"#;
        let cursor = Cursor::decode(Some(stored)).expect("decodes");
        assert_eq!(cursor.table, Some(Table::ScReqItem));
        assert_eq!((cursor.offset, cursor.reading), (200, true));
        assert_eq!(cursor.watermarks[&Table::Incident].sys_id, "9d3f0a1b");
        assert_eq!(cursor.encode().expect("encodes"), stored, "written back the same");
        assert_eq!(
            Cursor::decode(Some(r#"{"v":1,"watermarks":{}}"#)).expect("decodes"),
            Cursor::default()
        );
    }

    #[test]
    fn refuses_foreign_or_tampered_cursors() {
        for text in [
            "c2",
            r#"{"v":2}"#,
            r#"{"v":1,"watermarks":{"problem":{"ts":"2026-10-03 14:22:09","sys_id":"a"}}}"#,
            r#"{"v":1,"watermarks":{"incident":{"ts":"2026-10-03 14:22:09","sys_id":"a^NQactive=true"}}}"#,
            r#"{"v":1,"watermarks":{"incident":{"ts":"yesterday","sys_id":"a"}}}"#,
        ] {
            assert!(
                matches!(Cursor::decode(Some(text)), Err(PluginError::Permanent(_))),
                "{text}"
            );
        }
    }
}

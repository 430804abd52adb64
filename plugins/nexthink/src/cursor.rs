//! The pull cursor: the first day not read yet and, while an export runs
//! longer than one pull, that export, so the next pull polls it instead of
//! exporting again.
//!
//! Version 2 (written): `{"v":2,"next":"2026-10-03"}`, or while an export is
//! pending
//! `{"v":2,"next":"2026-10-03","export":{"id":"7f3a","from":"2026-10-03","to":"2026-10-04","polls":4,"started_ms":1790985600000}}`.
//! Ranges read in part (the export's status said 206: the licence's result
//! limit cut them) are kept to read again later, in `recheck`:
//! `{"v":2,"next":"2026-10-04","recheck":[{"from":"2026-10-02","to":"2026-10-03","reason":"...","tries":1,"due_ms":1791093600000}]}`.
//! Version 1 (`{"v":1,"next":"2026-10-03"}`, no export) is still read. The
//! envelope and its version check are `xla_sdk::cursor`'s.

use crate::config::Config;
use crate::nql;
use serde::{Deserialize, Serialize};
use xla_sdk::PluginError;
use xla_sdk::time::{format_full_date, parse_full_date};

/// Version of the cursor format written.
pub const CURSOR_VERSION: u32 = 2;

/// The cursor format: writes 2, reads 1 (without an export) and 2.
const FORMAT: xla_sdk::cursor::Format<'static> = xla_sdk::cursor::Format {
    connector: "nexthink",
    writes: CURSOR_VERSION,
    reads: &[1, CURSOR_VERSION],
};

/// The cursor as stored (the fields beside `v`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// First day not read yet, `YYYY-MM-DD`.
    pub next: String,
    /// The export in flight, of the range from `next` or of a recheck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<PendingExport>,
    /// Ranges read in part, to read again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recheck: Vec<Recheck>,
}

/// A range whose last read was partial, and when to read it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recheck {
    /// First day, `YYYY-MM-DD`.
    pub from: String,
    /// First day after the range (exclusive).
    pub to: String,
    /// Why the last read was partial, for the operator.
    pub reason: String,
    /// Partial reads so far.
    pub tries: u32,
    /// Not read again before this time (Unix ms).
    pub due_ms: i64,
}

/// An export submitted in an earlier pull and still running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingExport {
    /// The instance's `exportId`.
    pub id: String,
    /// First day of its range, `YYYY-MM-DD`.
    pub from: String,
    /// First day after its range (exclusive).
    pub to: String,
    /// Status polls of this export so far.
    pub polls: u32,
    /// When the first export of this range was submitted (Unix ms); an
    /// export that replaces a failed one keeps it, so the wait is bounded.
    pub started_ms: i64,
    /// Exports of this range the instance said failed (`ERROR`) in a row;
    /// past a few, the range fails for good instead of exporting again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Where a pull starts: the decoded cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// First day not read yet, as days since the epoch.
    pub next: i64,
    /// The pending export, if any.
    pub export: Option<PendingExport>,
    /// Ranges to read again.
    pub recheck: Vec<Recheck>,
}

impl Cursor {
    /// Where to start: the cursor, else `since`.
    pub fn read(config: &Config, text: Option<&str>) -> Result<Position, PluginError> {
        let Some(text) = text else {
            return Ok(Position {
                next: config.since_day()?,
                export: None,
                recheck: Vec::new(),
            });
        };
        let (version, cursor): (u32, Cursor) = FORMAT.decode(text)?;
        if version == 1 && (cursor.export.is_some() || !cursor.recheck.is_empty()) {
            return Err(FORMAT.refuse(text, "a version 1 cursor has no pending export or recheck"));
        }
        let undated = |r: &Recheck| parse_full_date(&r.from).is_none() || parse_full_date(&r.to).is_none();
        if cursor.recheck.iter().any(undated) {
            return Err(FORMAT.refuse(text, "a range to read again is not two dates"));
        }
        let next = parse_full_date(&cursor.next)
            .ok_or_else(|| FORMAT.refuse(text, format!("`{}` is not a date", cursor.next)))?;
        if let Some(export) = &cursor.export {
            let dated = parse_full_date(&export.from).is_some() && parse_full_date(&export.to).is_some();
            if !nql::valid_export_id(&export.id) || !dated {
                return Err(FORMAT.refuse(text, "its pending export is not an export id and two dates"));
            }
        }
        Ok(Position {
            next,
            export: cursor.export,
            recheck: cursor.recheck,
        })
    }

    /// The cursor text for `next`, with the export still running, if any.
    pub fn write(next: i64, export: Option<PendingExport>) -> Result<String, PluginError> {
        Cursor::write_position(&Position {
            next,
            export,
            recheck: Vec::new(),
        })
    }

    /// The cursor text of a position.
    pub fn write_position(position: &Position) -> Result<String, PluginError> {
        FORMAT.encode(&Cursor {
            next: format_full_date(position.next),
            export: position.export.clone(),
            recheck: position.recheck.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        xla_sdk::parse_config(r#"{"instance_url":"https://a.example","since":"2026-10-01"}"#).expect("config")
    }

    fn pending() -> PendingExport {
        PendingExport {
            failures: 0,
            id: "7f3a9c21e4b0d5aa".into(),
            from: "2026-10-04".into(),
            to: "2026-10-05".into(),
            polls: 4,
            started_ms: 1_791_072_000_000,
        }
    }

    #[test]
    fn starts_at_since_and_round_trips_a_day() {
        let config = config();
        assert_eq!(
            Cursor::read(&config, None).ok().map(|p| p.next),
            parse_full_date("2026-10-01")
        );
        let written = Cursor::write(20_730, None).expect("writes");
        assert_eq!(written, r#"{"v":2,"next":"2026-10-04"}"#);
        let read = Cursor::read(&config, Some(&written)).expect("reads");
        assert_eq!((read.next, read.export), (20_730, None));
    }

    #[test]
    fn reads_version_1_cursors() {
        let read = Cursor::read(&config(), Some(r#"{"v":1,"next":"2026-10-04"}"#)).expect("v1");
        assert_eq!((read.next, read.export), (20_730, None));
        assert!(Cursor::read(&config(), Some(r#"{"v":1,"next":"2026-10-04","export":{"id":"e1","from":"2026-10-04","to":"2026-10-05","polls":1,"started_ms":0}}"#)).is_err());
    }

    /// Cursors in existing stores keep working: these are as the connector
    /// wrote them before the SDK held the cursor envelope.
    #[test]
    fn reads_cursors_written_before_the_sdk_envelope() {
        let stored = r#"{"v":2,"next":"2026-10-04","export":{"id":"7f3a9c21e4b0d5aa","from":"2026-10-04","to":"2026-10-05","polls":4,"started_ms":1791072000000}}"#;
        let read = Cursor::read(&config(), Some(stored)).expect("v2 with an export");
        assert_eq!((read.next, read.export.clone()), (20_730, Some(pending())));
        assert_eq!(
            Cursor::write(read.next, read.export).expect("writes"),
            stored,
            "written back the same"
        );
        let read = Cursor::read(&config(), Some(r#"{"v":2,"next":"2026-10-04"}"#)).expect("v2");
        assert_eq!((read.next, read.export), (20_730, None));
        let read = Cursor::read(&config(), Some(r#"{"v":1,"next":"2026-10-04"}"#)).expect("v1");
        assert_eq!((read.next, read.export), (20_730, None));
    }

    #[test]
    fn a_pending_export_round_trips() {
        let written = Cursor::write(20_730, Some(pending())).expect("writes");
        assert_eq!(
            written,
            r#"{"v":2,"next":"2026-10-04","export":{"id":"7f3a9c21e4b0d5aa","from":"2026-10-04","to":"2026-10-05","polls":4,"started_ms":1791072000000}}"#
        );
        let read = Cursor::read(&config(), Some(&written)).expect("reads");
        assert_eq!((read.next, read.export), (20_730, Some(pending())));
    }

    #[test]
    fn a_recheck_round_trips() {
        let position = Position {
            next: 20_730,
            export: None,
            recheck: vec![Recheck {
                from: "2026-10-02".into(),
                to: "2026-10-03".into(),
                reason: "truncated".into(),
                tries: 1,
                due_ms: 1_791_093_600_000,
            }],
        };
        let written = Cursor::write_position(&position).expect("writes");
        assert_eq!(
            written,
            r#"{"v":2,"next":"2026-10-04","recheck":[{"from":"2026-10-02","to":"2026-10-03","reason":"truncated","tries":1,"due_ms":1791093600000}]}"#
        );
        assert_eq!(Cursor::read(&config(), Some(&written)).expect("reads"), position);
    }

    #[test]
    fn refuses_strangers() {
        let config = config();
        for bad in [
            "garbage",
            r#"{"v":3,"next":"2026-10-04"}"#,
            r#"{"v":2,"next":"2026-10-32"}"#,
            r#"{"v":2,"next":"2026-10-04","page":2}"#,
            r#"{"v":2,"next":"2026-10-04","export":{"id":"../x","from":"2026-10-04","to":"2026-10-05","polls":1,"started_ms":0}}"#,
            r#"{"v":2,"next":"2026-10-04","export":{"id":"e1","from":"soon","to":"2026-10-05","polls":1,"started_ms":0}}"#,
        ] {
            let Err(PluginError::Permanent(m)) = Cursor::read(&config, Some(bad)) else {
                panic!("{bad} is refused")
            };
            assert!(m.contains("reset the instance's cursor"), "{m}");
        }
    }
}

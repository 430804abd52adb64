//! Versioned cursors: the JSON object a connector hands the host after each
//! pull and gets back on the next, with its format version in `v`:
//! `{"v":2,"next":"2026-10-03"}`.
//!
//! The host stores cursors with each committed batch, so a cursor written by
//! one version of a connector is read by the next. A connector states its
//! [`Format`]: its name, the version it writes and the versions it still
//! reads. A cursor of any other version, or not written by the connector at
//! all, is a [`PluginError::Permanent`] naming the connector and the cursor:
//! retrying cannot help, and starting over silently would re-read the
//! source from `since`, so the run ends and the operator decides.
//!
//! The connector's cursor type holds the fields beside `v` (it may deny
//! unknown fields); [`Format::encode`] writes `v` first, then the fields in
//! their declared order, so the text of a cursor is stable.

use crate::PluginError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The cursor format of one connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format<'a> {
    /// The connector's name, as messages show it (`nexthink`).
    pub connector: &'a str,
    /// The version [`Format::encode`] writes.
    pub writes: u32,
    /// Every version [`Format::decode`] accepts, `writes` included.
    pub reads: &'a [u32],
}

/// A cursor as written: `v` first, the connector's fields after it.
#[derive(Serialize)]
struct Envelope<'a, T> {
    v: u32,
    #[serde(flatten)]
    fields: &'a T,
}

impl Format<'_> {
    /// The cursor text of `fields` (a struct serialising to a JSON object)
    /// at version [`Format::writes`]. An error only for a type that does not
    /// serialise to an object, a bug of the connector.
    pub fn encode<T: Serialize>(&self, fields: &T) -> Result<String, PluginError> {
        let envelope = Envelope { v: self.writes, fields };
        serde_json::to_string(&envelope)
            .map_err(|e| PluginError::Permanent(format!("{} could not write its cursor: {e}", self.connector)))
    }

    /// The version and fields of a cursor `text`. The version must be one of
    /// [`Format::reads`]; the fields beside `v` must deserialise into `T`.
    pub fn decode<T: DeserializeOwned>(&self, text: &str) -> Result<(u32, T), PluginError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| self.refuse(text, e))?;
        let serde_json::Value::Object(mut fields) = value else {
            return Err(self.refuse(text, "it is not a JSON object"));
        };
        let version = match fields.remove("v") {
            Some(v) => v
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| self.refuse(text, format!("its version `v` is {v}, not a number")))?,
            None => return Err(self.refuse(text, "it has no version `v`")),
        };
        if !self.reads.contains(&version) {
            let known: Vec<String> = self.reads.iter().map(u32::to_string).collect();
            return Err(self.refuse(
                text,
                format!(
                    "version {version} is not one this connector reads ({})",
                    known.join(", ")
                ),
            ));
        }
        let fields = T::deserialize(serde_json::Value::Object(fields)).map_err(|e| self.refuse(text, e))?;
        Ok((version, fields))
    }

    /// The error for a cursor `text` that the connector cannot continue
    /// from, and why; for checks of its own after [`Format::decode`] (a date
    /// that does not parse, fields that must go together).
    pub fn refuse(&self, text: &str, why: impl std::fmt::Display) -> PluginError {
        PluginError::Permanent(format!(
            "cursor `{text}` is not a {} cursor: {why}; reset the instance's cursor to resync",
            self.connector
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMAT: Format<'static> = Format {
        connector: "survey",
        writes: 2,
        reads: &[1, 2],
    };

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Fields {
        next: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        page: Option<u32>,
    }

    fn fields(page: Option<u32>) -> Fields {
        Fields {
            next: "2026-10-03".into(),
            page,
        }
    }

    #[test]
    fn writes_the_version_first_and_reads_it_back() {
        let text = FORMAT.encode(&fields(Some(3))).expect("encodes");
        assert_eq!(text, r#"{"v":2,"next":"2026-10-03","page":3}"#);
        assert_eq!(FORMAT.decode::<Fields>(&text).expect("decodes"), (2, fields(Some(3))));
        assert_eq!(
            FORMAT.encode(&fields(None)).expect("encodes"),
            r#"{"v":2,"next":"2026-10-03"}"#
        );
    }

    #[test]
    fn reads_older_versions_it_lists() {
        let read = FORMAT.decode::<Fields>(r#"{"next":"2026-10-03","v":1}"#).expect("v1");
        assert_eq!(read, (1, fields(None)));
    }

    #[test]
    fn refusals_name_the_connector_and_the_cursor() {
        for (text, why) in [
            (
                r#"{"v":3,"next":"2026-10-03"}"#,
                "version 3 is not one this connector reads (1, 2)",
            ),
            (
                r#"{"v":0,"next":"2026-10-03"}"#,
                "version 0 is not one this connector reads (1, 2)",
            ),
            (
                r#"{"v":"2","next":"2026-10-03"}"#,
                "its version `v` is \"2\", not a number",
            ),
            (r#"{"v":-1,"next":"2026-10-03"}"#, "its version `v` is -1, not a number"),
            (r#"{"next":"2026-10-03"}"#, "it has no version `v`"),
            (r#"[2]"#, "it is not a JSON object"),
            ("c2", "expected value"),
            (r#"{"v":2,"next":"2026-10-03","table":"x"}"#, "unknown field `table`"),
            (r#"{"v":2}"#, "missing field `next`"),
        ] {
            let Err(PluginError::Permanent(m)) = FORMAT.decode::<Fields>(text) else {
                panic!("{text} is refused")
            };
            assert!(
                m.starts_with(&format!("cursor `{text}` is not a survey cursor: ")),
                "{m}"
            );
            assert!(
                m.contains(why) && m.ends_with("reset the instance's cursor to resync"),
                "{text}: {m}"
            );
        }
    }
}

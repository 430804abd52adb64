//! The CSV export (`GET /api/v2/responses/export.csv`): a header row, then
//! one response per row. Columns are found by header name, in any order and
//! any case; the reading (quotes, line breaks, blank lines, a byte order
//! mark) is `xla_sdk::csv`'s.

use serde_json::{Map, Value};
use xla_sdk::PluginError;
use xla_sdk::csv::Table;

/// Columns a row must have for the mapping.
const REQUIRED: [&str; 3] = ["id", "created", "score"];

/// The rows of an export, each as a response object keyed by header name in
/// lower case (the field names of an API item).
pub fn rows(body: &[u8]) -> Result<Vec<Map<String, Value>>, PluginError> {
    let table = Table::read(body)?;
    if let Some(missing) = REQUIRED.iter().find(|c| table.column(c).is_none()) {
        return Err(PluginError::BadData(format!(
            "the CSV export has no `{missing}` column (header: {})",
            table.headers().join(",")
        )));
    }
    Ok(table
        .rows()
        .map(|row| {
            row.pairs()
                .map(|(name, field)| (name.to_ascii_lowercase(), Value::String(field.to_string())))
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_quoted_fields_in_any_column_order() {
        let body = "\u{feff}score,ID,created,factors\r\n\
                    7,hs-1,2026-10-03T14:22:09Z,\"Slow, very;\"\"Rude\"\"\"\r\n\
                    \r\n\
                    10,hs-2,2026-10-03T15:00:00Z,\"Fast\nand kind\"";
        let rows = rows(body.as_bytes()).expect("parses");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["id"], "hs-1");
        assert_eq!(rows[0]["factors"], "Slow, very;\"Rude\"");
        assert_eq!(rows[1]["factors"], "Fast\nand kind");
        assert_eq!(rows[1]["score"], "10");
    }

    /// A lone `\r` (classic Mac line ends) ends a record, as in every
    /// connector that reads CSV.
    #[test]
    fn a_lone_carriage_return_ends_a_record() {
        let body = "id,created,score\rhs-1,2026-10-03T14:22:09Z,7\rhs-2,2026-10-03T15:00:00Z,9\r";
        let rows = rows(body.as_bytes()).expect("parses");
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (&rows[0]["score"], &rows[1]["id"]),
            (&Value::from("7"), &Value::from("hs-2"))
        );
    }

    #[test]
    fn refuses_broken_exports() {
        let bodies: [&[u8]; 5] = [
            b"",
            b"id,created\nhs-1,2026-10-03T14:22:09Z\n",
            b"id,created,score\nhs-1,2026-10-03T14:22:09Z\n",
            b"id,created,score\nhs-1,2026-10-03T14:22:09Z,\"7\n",
            b"id,created,score\nhs-1,2026-10-03T14:22:09Z,\xe9\n",
        ];
        for body in bodies {
            assert!(
                matches!(rows(body), Err(PluginError::BadData(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}

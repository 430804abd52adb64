//! The CSV export (`GET /api/v2/responses/export.csv`): a header row, then
//! one response per row. Columns are found by header name, in any order;
//! fields may be quoted (RFC 4180: `""` inside quotes is a quote, and quoted
//! fields may hold commas and line breaks).

use serde_json::{Map, Value};
use xla_sdk::PluginError;

/// Columns a row must have for the mapping.
const REQUIRED: [&str; 3] = ["id", "created", "score"];

/// The rows of an export, each as a response object keyed by header name.
pub fn rows(body: &[u8]) -> Result<Vec<Map<String, Value>>, PluginError> {
    let text =
        std::str::from_utf8(body).map_err(|e| PluginError::BadData(format!("the CSV export is not UTF-8: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = records(text)?.into_iter();
    let header: Vec<String> = records
        .next()
        .ok_or_else(|| PluginError::BadData("the CSV export is empty: it has no header row".into()))?
        .into_iter()
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    if let Some(missing) = REQUIRED.iter().find(|c| !header.iter().any(|h| h == *c)) {
        return Err(PluginError::BadData(format!(
            "the CSV export has no `{missing}` column (header: {})",
            header.join(",")
        )));
    }
    let mut rows = Vec::new();
    for (line, record) in records.enumerate() {
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        if record.len() != header.len() {
            return Err(PluginError::BadData(format!(
                "CSV row {} has {} fields; the header has {}",
                line + 1,
                record.len(),
                header.len()
            )));
        }
        let row: Map<String, Value> = header
            .iter()
            .cloned()
            .zip(record.into_iter().map(Value::String))
            .collect();
        rows.push(row);
    }
    Ok(rows)
}

/// Splits text into records of fields.
fn records(text: &str) -> Result<Vec<Vec<String>>, PluginError> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n' | '\r') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(PluginError::BadData(
            "the CSV export ends inside a quoted field: it was cut short".into(),
        ));
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    Ok(records)
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

    #[test]
    fn refuses_broken_exports() {
        for body in [
            "",
            "id,created\nhs-1,2026-10-03T14:22:09Z\n",
            "id,created,score\nhs-1,2026-10-03T14:22:09Z\n",
            "id,created,score\nhs-1,2026-10-03T14:22:09Z,\"7\n",
        ] {
            assert!(
                matches!(rows(body.as_bytes()), Err(PluginError::BadData(_))),
                "{body:?}"
            );
        }
    }
}

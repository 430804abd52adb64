//! The NQL API on the wire: execute, the export flow, error bodies, and the
//! three answer shapes (v1 `headers` + `data` arrays, v2 `data` objects,
//! CSV), read into one [`Rows`] table.

use crate::config::Config;
use serde_json::{Value, json};
use xla_sdk::PluginError;
use xla_sdk::http::{Request, Response};

/// Rows an execute answer holds at most; an answer this long may be cut.
pub const EXECUTE_ROW_CAP: usize = 1000;
/// Status polls of one export before the pull gives up (Transient: the sync retries).
pub const MAX_POLLS: u32 = 8;

/// One cell as the source sent it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text (every CSV cell, JSON strings).
    Text(String),
    /// A JSON number.
    Number(f64),
    /// JSON null, a missing key, or an empty CSV cell.
    Null,
}

/// A table of results: column names and rows of cells in that order.
#[derive(Debug, Default, PartialEq)]
pub struct Rows {
    /// Column names, e.g. `device.name`.
    pub headers: Vec<String>,
    /// Rows, each as long as `headers`.
    pub data: Vec<Vec<Cell>>,
}

/// `{"queryId", "parameters": {"from", "to"}}` for days `from..to`.
fn call(config: &Config, from: &str, to: &str) -> Vec<u8> {
    json!({"queryId": config.query_id, "parameters": {"from": from, "to": to}})
        .to_string()
        .into_bytes()
}

fn api(config: &Config, path: &str) -> Result<url::Url, PluginError> {
    config
        .origin()?
        .join(path)
        .map_err(|e| PluginError::Config(format!("cannot build the URL of {path}: {e}")))
}

fn post_json(url: &url::Url, body: Vec<u8>) -> Result<Request, PluginError> {
    Ok(xla_sdk::http::post(url.as_str())?
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(body))
}

/// `POST /api/v1/nql/execute` for days `from..to`; `capped` is true when the
/// answer reached [`EXECUTE_ROW_CAP`] rows.
pub fn execute(config: &Config, from: &str, to: &str) -> Result<(Rows, bool), PluginError> {
    let url = api(config, "/api/v1/nql/execute")?;
    let response = checked(post_json(&url, call(config, from, to))?.send()?, config, "execute")?;
    let rows = json_rows(&response.body).map_err(|why| transient_or_bad(why, "execute"))?;
    let reported = response
        .json::<Value>()
        .ok()
        .and_then(|v| v.get("rows").and_then(Value::as_u64))
        .unwrap_or_default() as usize;
    let capped = rows.data.len().max(reported) >= EXECUTE_ROW_CAP;
    Ok((rows, capped))
}

/// The export flow for days `from..to`: export, poll, download, parse.
pub fn export(config: &Config, from: &str, to: &str) -> Result<Rows, PluginError> {
    let url = api(config, "/api/v1/nql/export")?;
    let response = checked(post_json(&url, call(config, from, to))?.send()?, config, "export")?;
    let body: Value = response
        .json()
        .map_err(|e| PluginError::Transient(format!("export answer: {e}")))?;
    let id = body
        .get("exportId")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .ok_or_else(|| PluginError::BadData(format!("export answer has no usable `exportId`: {body}")))?;
    let file = poll(config, id)?;
    let file = same_origin(config, &file)?;
    let response = xla_sdk::http::get(file.as_str())?.header("accept", "text/csv").send()?;
    let response = checked(response, config, "results file")?;
    csv_rows(&response.body, true).map_err(|why| transient_or_bad(why, "results file"))
}

/// Polls `/api/v1/nql/status/{id}` until `COMPLETED`; the `resultsFileUrl`.
fn poll(config: &Config, id: &str) -> Result<String, PluginError> {
    let url = api(config, &format!("/api/v1/nql/status/{id}"))?;
    for attempt in 0..MAX_POLLS {
        pause(attempt);
        let response = xla_sdk::http::get(url.as_str())?
            .header("accept", "application/json")
            .send()?;
        let status: Value = checked(response, config, "export status")?
            .json()
            .map_err(|e| PluginError::Transient(format!("export {id} status: {e}")))?;
        match status.get("status").and_then(Value::as_str) {
            Some("COMPLETED") => {
                return status
                    .get("resultsFileUrl")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| PluginError::BadData(format!("export {id} is COMPLETED without a resultsFileUrl")));
            }
            Some("SUBMITTED" | "IN_PROGRESS") => {}
            Some("ERROR") => {
                let why = status
                    .get("errorDescription")
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given");
                return Err(PluginError::Transient(format!(
                    "export {id} failed on the instance: {why}"
                )));
            }
            _ => {
                return Err(PluginError::BadData(format!(
                    "export {id}: unknown status answer {status}"
                )));
            }
        }
    }
    Err(PluginError::Transient(format!(
        "export {id} did not complete within {MAX_POLLS} status polls; the next attempt starts a new export"
    )))
}

/// Waits before status poll `attempt` (none before the first). Only on wasm:
/// native tests replay recorded answers and need no wait.
fn pause(attempt: u32) {
    #[cfg(target_arch = "wasm32")]
    if attempt > 0 {
        let millis = (50u64 << attempt.min(4)).min(1000);
        std::thread::sleep(std::time::Duration::from_millis(millis));
    }
    #[cfg(not(target_arch = "wasm32"))]
    let _ = attempt;
}

/// The results file URL, resolved against the instance, if it is on the same
/// origin: the host only adds credentials there, and the connector never
/// follows a link elsewhere.
fn same_origin(config: &Config, file: &str) -> Result<url::Url, PluginError> {
    let origin = config.origin()?;
    let url = origin
        .join(file)
        .map_err(|e| PluginError::BadData(format!("resultsFileUrl `{file}` is not a URL: {e}")))?;
    if url.origin() != origin.origin() {
        return Err(PluginError::Permanent(format!(
            "resultsFileUrl `{file}` is not on the instance origin {}; the connector only downloads from there",
            origin.origin().ascii_serialization()
        )));
    }
    Ok(url)
}

/// Why a body is not a table.
pub enum BodyError {
    /// Not JSON, or a CSV cut short: asking again may work.
    Garbled(String),
    /// Well-formed, but not the expected shape.
    Shape(String),
}

fn transient_or_bad(why: BodyError, what: &str) -> PluginError {
    match why {
        BodyError::Garbled(m) => PluginError::Transient(format!("{what}: {m}")),
        BodyError::Shape(m) => PluginError::BadData(format!("{what}: {m}")),
    }
}

/// Turns error statuses into errors an operator can act on.
fn checked(response: Response, config: &Config, what: &str) -> Result<Response, PluginError> {
    let status = response.status;
    if status < 400 || status == 429 {
        return response.error_for_status();
    }
    let message = error_message(&response.body).unwrap_or_else(|| response.text().chars().take(200).collect());
    let said = format!("Nexthink answered {status} to {what}: {message}");
    Err(match status {
        401 => PluginError::Auth(format!(
            "{said}; check the OAuth2 client credential granted for this instance"
        )),
        403 => PluginError::Permanent(format!(
            "{said}; the API credential lacks the permission to run NQL queries"
        )),
        404 => PluginError::Permanent(format!(
            "{said}; is query `{}` defined on the instance (Administration > NQL API queries)?",
            config.query_id
        )),
        408 | 500..=599 => PluginError::Transient(said),
        _ => PluginError::Permanent(said),
    })
}

/// `message` of Nexthink's `{"message", "code", "source"}`.
fn error_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let message = value.get("message")?.as_str()?;
    let code = value
        .get("code")
        .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_string));
    Some(match code {
        Some(code) => format!("{message} (code {code})"),
        None => message.to_string(),
    })
}

/// A v1 (`headers` + arrays) or v2 (objects) JSON answer.
pub fn json_rows(body: &[u8]) -> Result<Rows, BodyError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| BodyError::Garbled(format!("the body is not JSON: {e}")))?;
    let data = value
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| BodyError::Shape("the body has no `data` list".into()))?;
    let headers: Vec<String> = match value.get("headers").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .map(|h| h.as_str().unwrap_or_default().to_string())
            .collect(),
        None => match data.first() {
            Some(Value::Object(first)) => first.keys().cloned().collect(),
            _ => Vec::new(),
        },
    };
    let rows = data
        .iter()
        .enumerate()
        .map(|(i, row)| match row {
            Value::Array(cells) if cells.len() == headers.len() => Ok(cells.iter().map(cell).collect()),
            Value::Array(cells) => Err(BodyError::Shape(format!(
                "row {i} has {} cells for {} headers",
                cells.len(),
                headers.len()
            ))),
            Value::Object(fields) => Ok(headers.iter().map(|h| fields.get(h).map_or(Cell::Null, cell)).collect()),
            _ => Err(BodyError::Shape(format!("row {i} is neither a list nor an object"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Rows { headers, data: rows })
}

fn cell(value: &Value) -> Cell {
    match value {
        Value::Null => Cell::Null,
        Value::Number(n) => n.as_f64().map_or(Cell::Null, Cell::Number),
        Value::String(s) => Cell::Text(s.clone()),
        other => Cell::Text(other.to_string()),
    }
}

/// A CSV results file (RFC 4180: quoted fields, `""` escapes, `\n` or `\r\n`).
///
/// With `strict`, the file must end with a line break: a file cut inside its
/// last number would otherwise parse into a wrong value. Every row must have
/// as many fields as the header.
pub fn csv_rows(body: &[u8], strict: bool) -> Result<Rows, BodyError> {
    let text = std::str::from_utf8(body).map_err(|_| BodyError::Garbled("the results file is not UTF-8".into()))?;
    if text.trim_start().starts_with('<') {
        return Err(BodyError::Garbled("the results file is a web page, not CSV".into()));
    }
    if text.trim().is_empty() {
        return Err(BodyError::Garbled(
            "the results file is empty (not even a header line)".into(),
        ));
    }
    if strict && !text.ends_with('\n') {
        return Err(BodyError::Garbled(
            "the results file ends mid-line: it was cut short".into(),
        ));
    }
    let mut records = records(text)?.into_iter();
    let headers = records.next().unwrap_or_default();
    let mut data = Vec::new();
    for (i, record) in records.enumerate() {
        if record.len() != headers.len() {
            return Err(BodyError::Garbled(format!(
                "results file line {} has {} fields for {} columns",
                i + 2,
                record.len(),
                headers.len()
            )));
        }
        data.push(
            record
                .into_iter()
                .map(|f| if f.is_empty() { Cell::Null } else { Cell::Text(f) })
                .collect(),
        );
    }
    Ok(Rows { headers, data })
}

fn records(text: &str) -> Result<Vec<Vec<String>>, BodyError> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
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
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(BodyError::Garbled("the results file ends inside a quoted field".into()));
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
    fn csv_quotes_and_cuts() {
        let rows = csv_rows(b"a,b,c\r\n\"x, \"\"y\"\"\",,3\n", true).ok().expect("parses");
        assert_eq!(rows.headers, ["a", "b", "c"]);
        assert_eq!(
            rows.data,
            [vec![Cell::Text("x, \"y\"".into()), Cell::Null, Cell::Text("3".into())]]
        );
        assert!(matches!(csv_rows(b"a,b\n1,2\n3,", true), Err(BodyError::Garbled(_))));
        assert!(matches!(csv_rows(b"a,b\n1,2\n3,4", true), Err(BodyError::Garbled(_))));
        assert!(csv_rows(b"a,b\n1,2\n3,4", false).is_ok());
        assert!(matches!(csv_rows(b"a,b\n1\n", false), Err(BodyError::Garbled(_))));
        assert!(matches!(
            csv_rows(b"<html>502</html>", true),
            Err(BodyError::Garbled(_))
        ));
    }

    #[test]
    fn json_v1_and_v2_read_alike() {
        let v1 = br##"{"queryId":"#q","rows":1,"headers":["a","b"],"data":[["x",1.5]]}"##;
        let v2 =
            br##"{"queryId":"#q","rows":1,"executionDateTime":"2026-10-02T01:00:00Z","data":[{"a":"x","b":1.5}]}"##;
        let (v1, v2) = (json_rows(v1).ok().expect("v1"), json_rows(v2).ok().expect("v2"));
        assert_eq!(v1, v2);
        assert!(matches!(json_rows(b"{\"data\": [[1"), Err(BodyError::Garbled(_))));
        assert!(matches!(
            json_rows(br#"{"headers":["a"],"data":[[1,2]]}"#),
            Err(BodyError::Shape(_))
        ));
    }
}

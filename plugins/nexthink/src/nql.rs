//! The NQL API on the wire: execute, the steps of the export flow (submit,
//! status, results file), error bodies, and the three answer shapes (v1
//! `headers` + `data` arrays, v2 `data` objects, CSV), read into one
//! [`Rows`] table. How the steps span pulls is [`crate::export`]'s business.

use crate::config::Config;
use crate::time::Stamp;
use serde_json::{Value, json};
use xla_sdk::PluginError;
use xla_sdk::csv::Table;
use xla_sdk::http::{Request, Response};
use xla_sdk::status::Hints;

/// Rows an execute answer holds at most; an answer this long may be cut.
pub const EXECUTE_ROW_CAP: usize = 1000;

/// The header that asks Nexthink for UTC times: without it, every time in an
/// answer is in the instance's regional time zone (vendor OpenAPI; field
/// case `11-nexthink-times.json`). Sent on every NQL call.
pub const UTC_HEADER: (&str, &str) = ("x-utc-times", "true");

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
        .header(UTC_HEADER.0, UTC_HEADER.1)
        .body(body))
}

/// An execute answer.
#[derive(Debug)]
pub struct Executed {
    /// Its rows.
    pub rows: Rows,
    /// Whether it reached [`EXECUTE_ROW_CAP`] rows (and so may be cut).
    pub capped: bool,
    /// Its `executionDateTime`, if it has one.
    pub executed_at: Option<Stamp>,
}

/// The request of `POST /api/v1/nql/execute` for days `from..to`.
pub fn execute_request(config: &Config, from: &str, to: &str) -> Result<Request, PluginError> {
    post_json(&api(config, "/api/v1/nql/execute")?, call(config, from, to))
}

/// `POST /api/v1/nql/execute` for days `from..to`.
pub fn execute(config: &Config, from: &str, to: &str) -> Result<Executed, PluginError> {
    let response = checked(execute_request(config, from, to)?.send()?, config, "execute")?;
    let rows = json_rows(&response.body).map_err(|why| transient_or_bad(why, "execute"))?;
    let answer = response.json::<Value>().unwrap_or_default();
    let reported = answer.get("rows").and_then(Value::as_u64).unwrap_or_default() as usize;
    Ok(Executed {
        capped: rows.data.len().max(reported) >= EXECUTE_ROW_CAP,
        executed_at: crate::time::execution_time(&answer),
        rows,
    })
}

/// `[A-Za-z0-9_-]+`: an export id that is safe in a URL path.
pub fn valid_export_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The request of `POST /api/v1/nql/export` for days `from..to`, asking
/// for a gzip-compressed results file.
pub fn export_request(config: &Config, from: &str, to: &str) -> Result<Request, PluginError> {
    let body = json!({
        "queryId": config.query_id,
        "parameters": {"from": from, "to": to},
        "compression": "GZIP",
    });
    post_json(&api(config, "/api/v1/nql/export")?, body.to_string().into_bytes())
}

/// Largest results file the connector inflates: past it, a gzip stream is
/// refused (a small file that inflates without end would otherwise take
/// the plugin's whole memory).
pub const MAX_RESULTS_BYTES: u64 = 256 * 1024 * 1024;

/// A results file as CSV bytes: gunzipped when it is gzip (the export asked
/// for `GZIP`), as it is when it is plain.
pub fn inflated<'b>(id: &str, body: &'b [u8]) -> Result<std::borrow::Cow<'b, [u8]>, PluginError> {
    inflated_within(id, body, MAX_RESULTS_BYTES)
}

fn inflated_within<'b>(id: &str, body: &'b [u8], cap: u64) -> Result<std::borrow::Cow<'b, [u8]>, PluginError> {
    use std::io::Read;
    match body {
        [0x1f, 0x8b, ..] => {
            let mut csv = Vec::new();
            flate2::read::GzDecoder::new(body)
                .take(cap + 1)
                .read_to_end(&mut csv)
                .map_err(|e| PluginError::Transient(format!("export {id}: the gzip results file is broken: {e}")))?;
            if csv.len() as u64 > cap {
                return Err(PluginError::BadData(format!(
                    "export {id}: the results file inflates past {} MiB; export a shorter range",
                    cap.div_ceil(1024 * 1024)
                )));
            }
            Ok(std::borrow::Cow::Owned(csv))
        }
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Err(PluginError::BadData(format!(
            "export {id}: the results file is zstd-compressed, but the connector asked for GZIP and reads gzip or plain CSV"
        ))),
        _ => Ok(std::borrow::Cow::Borrowed(body)),
    }
}

/// `POST /api/v1/nql/export` for days `from..to`: the `exportId`.
pub fn submit_export(config: &Config, from: &str, to: &str) -> Result<String, PluginError> {
    let response = checked(export_request(config, from, to)?.send()?, config, "export")?;
    let body: Value = response
        .json()
        .map_err(|e| PluginError::Transient(format!("export answer: {e}")))?;
    body.get("exportId")
        .and_then(Value::as_str)
        .filter(|id| valid_export_id(id))
        .map(str::to_string)
        .ok_or_else(|| PluginError::BadData(format!("export answer has no usable `exportId`: {body}")))
}

/// What `GET /api/v1/nql/status/{exportId}` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportStatus {
    /// `SUBMITTED` or `IN_PROGRESS`.
    Running,
    /// `COMPLETED`, with its `resultsFileUrl`; `truncated` when the status
    /// answer was 206 Partial Content: the licence's maximum number of
    /// results was reached, so the file holds only part of the rows.
    Completed {
        /// `resultsFileUrl`.
        file: String,
        /// 206 rather than 200.
        truncated: bool,
    },
    /// `ERROR`, with its `errorDescription`.
    Failed(String),
    /// 404: the instance does not know the export (any more).
    Unknown,
}

/// The request of `GET /api/v1/nql/status/{id}`.
pub fn status_request(config: &Config, id: &str) -> Result<Request, PluginError> {
    let url = api(config, &format!("/api/v1/nql/status/{id}"))?;
    Ok(xla_sdk::http::get(url.as_str())?
        .header("accept", "application/json")
        .header(UTC_HEADER.0, UTC_HEADER.1))
}

/// One status poll of export `id`.
pub fn export_status(config: &Config, id: &str) -> Result<ExportStatus, PluginError> {
    let response = status_request(config, id)?.send()?;
    if response.status == 404 {
        return Ok(ExportStatus::Unknown);
    }
    let truncated = response.status == 206;
    let status: Value = checked(response, config, "export status")?
        .json()
        .map_err(|e| PluginError::Transient(format!("export {id} status: {e}")))?;
    match status.get("status").and_then(Value::as_str) {
        Some("SUBMITTED" | "IN_PROGRESS") => Ok(ExportStatus::Running),
        Some("COMPLETED") => status
            .get("resultsFileUrl")
            .and_then(Value::as_str)
            .map(|url| ExportStatus::Completed {
                file: url.to_string(),
                truncated,
            })
            .ok_or_else(|| PluginError::BadData(format!("export {id} is COMPLETED without a resultsFileUrl"))),
        Some("ERROR") => {
            let why = status
                .get("errorDescription")
                .and_then(Value::as_str)
                .unwrap_or("no reason given");
            Ok(ExportStatus::Failed(why.to_string()))
        }
        _ => Err(PluginError::BadData(format!(
            "export {id}: unknown status answer {status}"
        ))),
    }
}

/// Downloads and reads the results file of export `id`. The connector adds
/// no credential of its own: the host adds the instance's to requests for
/// the instance origin, and none to the results origin (granted without one),
/// whose pre-signed URL carries its own signature.
pub fn download(config: &Config, id: &str, file: &str) -> Result<Rows, PluginError> {
    let url = results_url(config, id, file)?;
    let on_instance = url.origin() == config.origin()?.origin();
    let response = xla_sdk::http::get(url.as_str())?
        .header("accept", "text/csv")
        .send()
        .map_err(|e| redacted(e, &url))?;
    let response = checked_file(response, config, &url, on_instance)?;
    let csv = inflated(id, &response.body)?;
    csv_rows(&csv, true).map_err(|why| transient_or_bad(why, "results file"))
}

/// The results file URL, resolved against the instance, if it is on the
/// instance origin or exactly on the configured results origin: the connector
/// never follows a link anywhere else.
pub fn results_url(config: &Config, id: &str, file: &str) -> Result<url::Url, PluginError> {
    let instance = config.origin()?;
    let url = instance
        .join(file)
        .map_err(|e| PluginError::BadData(format!("export {id}: resultsFileUrl `{file}` is not a URL: {e}")))?;
    let results = config.results_origin()?;
    if url.origin() == instance.origin() || results.as_ref().is_some_and(|r| url.origin() == r.origin()) {
        return Ok(url);
    }
    let at = url.origin().ascii_serialization();
    let instance = instance.origin().ascii_serialization();
    let results = match results {
        Some(r) => format!(
            "the results origin {} (config field `results_origin`)",
            r.origin().ascii_serialization()
        ),
        None => "the results origin (config field `results_origin`, not set)".into(),
    };
    Err(PluginError::Permanent(format!(
        "export {id}: the results file {} is on {at}, but the connector downloads only from the instance origin \
         {instance} or {results}; if {at} is where this instance's exports are stored, set `results_origin` to \
         \"{at}\" and grant that origin to the connector instance without a credential",
        shown(&url)
    )))
}

/// A URL without its query: a pre-signed URL's signature stays out of logs.
fn shown(url: &url::Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

/// `error` with `url` shown without its query.
fn redacted(error: PluginError, url: &url::Url) -> PluginError {
    let hide = |m: String| m.replace(url.as_str(), &shown(url));
    match error {
        PluginError::Config(m) => PluginError::Config(hide(m)),
        PluginError::Auth(m) => PluginError::Auth(hide(m)),
        PluginError::Transient(m) => PluginError::Transient(hide(m)),
        PluginError::Permanent(m) => PluginError::Permanent(hide(m)),
        PluginError::BadData(m) => PluginError::BadData(hide(m)),
        other => other,
    }
}

/// Error statuses of a results file download. On the instance origin they
/// mean what they mean for the API; on the results origin they come from the
/// storage (S3-style XML errors): a refused or expired link, or a file gone,
/// pass with a new export, except a request the storage refuses for carrying
/// credentials, which only the operator can fix.
fn checked_file(
    response: Response,
    config: &Config,
    url: &url::Url,
    on_instance: bool,
) -> Result<Response, PluginError> {
    let status = response.status;
    if on_instance || status < 400 || status == 429 {
        return checked(response, config, "results file");
    }
    let message = storage_error(&response.body).unwrap_or_else(|| response.text().chars().take(200).collect());
    let said = format!("the results storage answered {status} to {}: {message}", shown(url));
    Err(match status {
        400 if message.contains("auth mechanism") || message.contains("Authorization") => {
            PluginError::Permanent(format!(
                "{said}; the request carried credentials besides the pre-signed URL's signature: grant {} to the \
             connector instance without a credential",
                url.origin().ascii_serialization()
            ))
        }
        403 | 404 | 408 | 500..=599 => {
            PluginError::Transient(format!("{said}; a later attempt asks for the export again"))
        }
        _ => PluginError::Permanent(said),
    })
}

/// `Code: Message` of an S3-style `<Error><Code>…</Code><Message>…</Message></Error>` body.
fn storage_error(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let element = |name: &str| {
        let start = text.find(&format!("<{name}>"))? + name.len() + 2;
        let end = start + text[start..].find(&format!("</{name}>"))?;
        Some(text[start..end].trim().to_string())
    };
    match (element("Code"), element("Message")) {
        (Some(code), Some(message)) => Some(format!("{code}: {message}")),
        (Some(code), None) => Some(code),
        (None, message) => message,
    }
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

/// Turns error statuses into errors an operator can act on: the SDK's status
/// table (`xla_sdk::status`), with Nexthink's own message from its error body.
fn checked(response: Response, config: &Config, what: &str) -> Result<Response, PluginError> {
    let not_found = format!(
        "is query `{}` defined on the instance (Administration > NQL API queries)?",
        config.query_id
    );
    let hints = Hints {
        unauthorized: "check the OAuth2 client credential granted for this instance",
        forbidden: "the API credential lacks the permission to run NQL queries: grant it to the API credential \
                    on the instance",
        not_found: &not_found,
    };
    xla_sdk::status::check(response, &hints, |response| {
        let message = error_message(&response.body).unwrap_or_else(|| response.snippet(200));
        format!("Nexthink answered {} to {what}: {message}", response.status)
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

/// A CSV results file, read by `xla_sdk::csv` (quoted fields, `""` escapes,
/// `\r\n`, `\n` or a lone `\r` between records). Every failure is
/// [`BodyError::Garbled`]: a download cut or mangled in transit may pass
/// on retry.
///
/// With `strict`, the file must end with a line break: a file cut inside its
/// last number would otherwise parse into a wrong value. Every row must have
/// as many fields as the header.
pub fn csv_rows(body: &[u8], strict: bool) -> Result<Rows, BodyError> {
    if body.trim_ascii_start().starts_with(b"<") {
        return Err(BodyError::Garbled("the results file is a web page, not CSV".into()));
    }
    if body.trim_ascii().is_empty() {
        return Err(BodyError::Garbled(
            "the results file is empty (not even a header line)".into(),
        ));
    }
    if strict && !body.ends_with(b"\n") && !body.ends_with(b"\r") {
        return Err(BodyError::Garbled(
            "the results file ends mid-line: it was cut short".into(),
        ));
    }
    let table = Table::read(body).map_err(|e| BodyError::Garbled(e.to_string()))?;
    let data = table
        .rows()
        .map(|row| {
            row.fields()
                .map(|f| {
                    if f.is_empty() {
                        Cell::Null
                    } else {
                        Cell::Text(f.to_string())
                    }
                })
                .collect()
        })
        .collect();
    Ok(Rows {
        headers: table.headers().to_vec(),
        data,
    })
}

#[cfg(test)]
mod tests {

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).expect("gzip");
        encoder.finish().expect("gzip")
    }

    #[test]
    fn results_files_are_gunzipped_within_a_cap_and_plain_ones_read_as_they_are() {
        let csv = b"device.name,dex_score\nLAP-1,71.4\n";
        assert_eq!(&*inflated("e1", &gzip(csv)).expect("gzip"), csv);
        assert!(matches!(inflated("e1", csv), Ok(std::borrow::Cow::Borrowed(_))));
        let bomb = gzip(&vec![b'0'; 4096]);
        let Err(PluginError::BadData(m)) = inflated_within("e1", &bomb, 1024) else {
            panic!("over the cap")
        };
        assert!(m.contains("inflates past 1 MiB"), "{m}");
        let mut cut = gzip(csv);
        cut.truncate(cut.len() / 2);
        assert!(
            matches!(inflated("e1", &cut), Err(PluginError::Transient(_))),
            "a cut file is asked again"
        );
        let zstd = [0x28, 0xb5, 0x2f, 0xfd, 0, 0];
        assert!(matches!(inflated("e1", &zstd), Err(PluginError::BadData(m)) if m.contains("zstd")));
    }
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

    /// A lone `\r` ends a record here as in the HappySignals export (the
    /// copies used to differ); a quoted field keeps its line breaks.
    #[test]
    fn csv_records_end_at_a_lone_carriage_return() {
        let rows = csv_rows(b"\xEF\xBB\xBFa,b\r1,\"x\ny\"\r\r2,3\r", true)
            .ok()
            .expect("parses");
        assert_eq!(rows.headers, ["a", "b"]);
        assert_eq!(
            rows.data,
            [
                vec![Cell::Text("1".into()), Cell::Text("x\ny".into())],
                vec![Cell::Text("2".into()), Cell::Text("3".into())]
            ]
        );
        let Err(BodyError::Garbled(m)) = csv_rows(b"a,b\n1,2\n3\n", true) else {
            panic!("a short row is refused")
        };
        assert_eq!(m, "CSV row 2 has 1 fields; the header has 2");
        assert!(matches!(csv_rows(b"a,b\n1,\xff\n", true), Err(BodyError::Garbled(_))));
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

    const BUCKET: &str = "https://nexthink-exports.s3.eu-west-1.amazonaws.com";

    fn config(extra: &str) -> Config {
        xla_sdk::parse_config(&format!(
            r#"{{"instance_url":"https://acme.api.eu.nexthink.cloud","since":"2026-10-01"{extra}}}"#
        ))
        .expect("config")
    }

    fn refusal(config: &Config, file: &str) -> String {
        match results_url(config, "e1", file) {
            Err(PluginError::Permanent(m)) => m,
            other => panic!("{file} is refused, not {other:?}"),
        }
    }

    #[test]
    fn results_files_come_from_the_instance_or_exactly_the_results_origin() {
        let signed = format!("{BUCKET}/exports/e1.csv?X-Amz-Expires=900&X-Amz-Signature=9f86d081");
        let plain = config("");
        for on_instance in ["/results/e1.csv", "https://acme.api.eu.nexthink.cloud/results/e1.csv"] {
            assert!(results_url(&plain, "e1", on_instance).is_ok(), "{on_instance}");
        }
        let m = refusal(&plain, &signed);
        assert!(m.contains("`results_origin`") && m.contains("not set"), "{m}");
        assert!(
            m.contains("https://acme.api.eu.nexthink.cloud") && m.contains(BUCKET),
            "{m}"
        );
        assert!(
            !m.contains("X-Amz-Signature"),
            "the signature stays out of messages: {m}"
        );

        let with = config(&format!(r#","results_origin":"{BUCKET}""#));
        let url = results_url(&with, "e1", &signed).expect("on the results origin");
        assert_eq!(url.as_str(), signed, "the pre-signed query is kept as is");
        assert!(results_url(&with, "e1", "/results/e1.csv").is_ok());
        for elsewhere in [
            "http://nexthink-exports.s3.eu-west-1.amazonaws.com/e1.csv",
            "https://nexthink-exports.s3.eu-west-1.amazonaws.com:8443/e1.csv",
            "https://other.s3.eu-west-1.amazonaws.com/e1.csv",
            "https://nexthink-exports.s3.eu-west-1.amazonaws.com.evil.example/e1.csv",
        ] {
            let m = refusal(&with, elsewhere);
            assert!(
                m.contains(BUCKET) && m.contains("https://acme.api.eu.nexthink.cloud"),
                "{m}"
            );
            assert!(m.contains("`results_origin`"), "{m}");
        }
    }

    #[test]
    fn storage_refusals_say_what_to_do() {
        let with = config(&format!(r#","results_origin":"{BUCKET}""#));
        let url = url::Url::parse(&format!("{BUCKET}/exports/e1.csv?X-Amz-Signature=9f86d081")).expect("url");
        let answer = |status: u16, code: &str, message: &str| Response {
            status,
            headers: vec![("content-type".into(), "application/xml".into())],
            body: format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>")
                .into_bytes(),
        };
        let two = answer(
            400,
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string \
             parameter or the Authorization header should be specified",
        );
        let Err(PluginError::Permanent(m)) = checked_file(two, &with, &url, false) else {
            panic!("credentials on the results origin are the operator's to fix")
        };
        assert!(m.contains("without a credential") && !m.contains("9f86d081"), "{m}");
        let expired = answer(403, "AccessDenied", "Request has expired");
        let Err(PluginError::Transient(m)) = checked_file(expired, &with, &url, false) else {
            panic!("an expired link passes with a new one")
        };
        assert!(m.contains("AccessDenied: Request has expired"), "{m}");
    }
}

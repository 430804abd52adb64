//! The Table API on the wire: encoded queries, requests, the `Link` header
//! and ServiceNow's error bodies.

use crate::config::{Config, Table};
use crate::cursor::Watermark;
use crate::fields::{self, Body, Fields};
use xla_sdk::PluginError;
use xla_sdk::http::{Request, Response};
use xla_sdk::status::Hints;

/// Ordering of every sync query: the compound keyset.
const ORDER: &str = "ORDERBYsys_updated_on^ORDERBYsys_id";

/// Where a table's walk starts: after a watermark, from `since`, or from the
/// beginning.
pub enum Start {
    /// Strictly after the record last read.
    After(Watermark),
    /// At or after a date-time (`since`, or the overlap before a watermark).
    Since(String),
    /// The whole table.
    Beginning,
}

/// The `sysparm_query` of a sync page.
///
/// After a watermark it is the keyset continuation: same timestamp and a
/// greater sys_id, or (`^NQ`, a new OR group) a later timestamp.
pub fn sync_query(start: &Start) -> String {
    match start {
        Start::After(Watermark { ts, sys_id }) => {
            format!("sys_updated_on={ts}^sys_id>{sys_id}^NQsys_updated_on>{ts}^{ORDER}")
        }
        Start::Since(since) => format!("sys_updated_on>={since}^{ORDER}"),
        Start::Beginning => ORDER.to_string(),
    }
}

/// `GET {instance}/api/now/table/{table}` for one sync page of `limit` records.
pub fn page_request(
    config: &Config,
    table: Table,
    query: &str,
    offset: u32,
    limit: u32,
) -> Result<Request, PluginError> {
    let request = table_request(config, table)?
        .query("sysparm_query", query)
        .query("sysparm_fields", table.fields())
        .query("sysparm_limit", &limit.to_string());
    let request = if offset > 0 {
        request.query("sysparm_offset", &offset.to_string())
    } else {
        request
    };
    Ok(plain_values(request))
}

/// One record of `table`, to see that the instance answers and the granted
/// account may read the table.
pub fn probe_request(config: &Config, table: Table) -> Result<Request, PluginError> {
    let request = table_request(config, table)?
        .query("sysparm_fields", "sys_id")
        .query("sysparm_limit", "1");
    Ok(plain_values(request))
}

/// Records `sys_ids` of a referenced table (`sys_user_group`, `task`, ...),
/// with `fields`: `sysparm_query=sys_idIN{id},{id},...`. The caller checks
/// that `table` and the sys_ids are plain names and hex (no query terms).
pub fn lookup_request(config: &Config, table: &str, sys_ids: &[&str], fields: &[&str]) -> Result<Request, PluginError> {
    let origin = config.instance_origin()?;
    let request = xla_sdk::http::get(&format!("{origin}/api/now/table/{table}"))?
        .header("accept", "application/json")
        .query("sysparm_query", &format!("sys_idIN{}", sys_ids.join(",")))
        .query("sysparm_fields", &format!("sys_id,{}", fields.join(",")))
        .query("sysparm_limit", &sys_ids.len().to_string())
        .query("sysparm_no_count", "true");
    Ok(plain_values(request))
}

fn table_request(config: &Config, table: Table) -> Result<Request, PluginError> {
    let origin = config.instance_origin()?;
    Ok(xla_sdk::http::get(&format!("{origin}/api/now/table/{table}"))?.header("accept", "application/json"))
}

/// Bare sys_ids instead of link objects and stored values (UTC dates)
/// instead of display values. The count stays on: ServiceNow builds the
/// `Link` header, which says whether a next page exists, from it.
fn plain_values(request: Request) -> Request {
    request
        .query("sysparm_exclude_reference_link", "true")
        .query("sysparm_display_value", "false")
}

/// A page as it arrived: the body and where the `Link` header says the
/// next page starts. [`Page::records`] reads the body (borrowing from it).
pub struct Page {
    table: Table,
    /// The HTTP status (below 400: [`fetch`] turned the others into errors).
    pub status: u16,
    body: Vec<u8>,
    /// `Some` when the `Link` header has `rel="next"`: its `sysparm_offset`
    /// (`None` inside when the link has none).
    pub next: Option<Option<u32>>,
}

impl Page {
    /// The page's records, in the order the instance listed them.
    pub fn records(&self) -> Result<Vec<Fields<'_>>, PluginError> {
        let table = self.table;
        records(&self.body).map_err(|e| match e {
            BodyError::Error(message) => {
                PluginError::Permanent(format!("ServiceNow refused to read table `{table}`: {message}"))
            }
            BodyError::Html => PluginError::Permanent(format!(
                "reading table `{table}`: the instance answered with a web page, not JSON; it may be hibernating \
                 (wake it) or instance_url may not point at a ServiceNow instance"
            )),
            BodyError::Shape(why) => PluginError::BadData(format!("table `{table}`: {why}")),
            // A page cut short or garbled in transit: asking again may well work.
            BodyError::NotJson(why) => PluginError::Transient(format!("reading table `{table}`: {why}")),
        })
    }

    /// The page's records for a sync, or why this 2xx is not a page.
    ///
    /// ServiceNow answers 2xx with something else when it cancels a slow
    /// transaction (200 with its error object, or rows cut mid-record with
    /// the error object spliced in), when a session's queue is full (202,
    /// empty body), or while the instance is in maintenance or hibernating
    /// (200 with a web page). Nothing from such a body may be stored;
    /// [`NotAPage`] says which it was, and the sync asks again with a smaller
    /// page (see the crate docs).
    pub fn rows(&self) -> Result<Result<Vec<Fields<'_>>, NotAPage>, PluginError> {
        let table = self.table;
        if self.status == 202 || self.body.trim_ascii().is_empty() {
            return Ok(Err(NotAPage::Queued(self.status)));
        }
        match records(&self.body) {
            Ok(records) => Ok(Ok(records)),
            Err(BodyError::Error(message)) => Ok(Err(NotAPage::Cancelled(message))),
            Err(BodyError::Html) => Ok(Err(NotAPage::WebPage)),
            Err(BodyError::NotJson(why)) => Ok(Err(NotAPage::Cut(why))),
            Err(BodyError::Shape(why)) => Err(PluginError::BadData(format!("table `{table}`: {why}"))),
        }
    }
}

/// Why a 2xx answer to a page request is not a page of records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAPage {
    /// A 200 whose body is ServiceNow's error object, e.g. "Transaction
    /// cancelled: maximum execution time exceeded".
    Cancelled(String),
    /// A body that is not JSON: cut short, or rows with the error object
    /// spliced in mid-record.
    Cut(String),
    /// 202 or an empty body: the session's transaction queue was full.
    Queued(u16),
    /// A web page: maintenance, or a hibernating instance.
    WebPage,
}

impl std::fmt::Display for NotAPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotAPage::Cancelled(message) => write!(f, "the instance answered with its error object: {message}"),
            NotAPage::Cut(why) => write!(f, "the rows were cut short ({why})"),
            NotAPage::Queued(status) => write!(
                f,
                "the instance answered {status} with an empty body (its queue is full)"
            ),
            NotAPage::WebPage => {
                f.write_str("the instance answered with a web page, not JSON (in maintenance or hibernating?)")
            }
        }
    }
}

/// Sends a request for `table` and takes the page, turning error statuses
/// into errors a user can act on.
pub fn fetch(request: Request, table: Table) -> Result<Page, PluginError> {
    let base = request.url.clone();
    let response = request.send()?;
    let response = check_status(response, table.name())?;
    let next = response
        .header("link")
        .and_then(next_link)
        .map(|link| offset_of(&base, link));
    Ok(Page {
        table,
        status: response.status,
        body: response.body,
        next,
    })
}

/// The SDK's status table (`xla_sdk::status`) with what to do about this
/// table, and ServiceNow's own message from its error body.
pub fn check_status(response: Response, table: &str) -> Result<Response, PluginError> {
    let forbidden = format!("an ACL denies the granted account: give it a role that may read `{table}`");
    let hints = Hints {
        unauthorized: "check the credential the operator granted for this instance",
        forbidden: &forbidden,
        not_found: "is instance_url the instance's origin and is the Table API (and this table) available?",
    };
    xla_sdk::status::check(response, &hints, |response| {
        let message = error_message(&response.body).unwrap_or_else(|| response.snippet(200));
        format!(
            "ServiceNow answered {} reading table `{table}`: {message}",
            response.status
        )
    })
}

/// Why a body is not a page of records.
pub enum BodyError {
    /// ServiceNow's `{"error": {"message", "detail"}, "status": "failure"}`.
    Error(String),
    /// A web page (a hibernating developer instance, a login page).
    Html,
    /// JSON of another shape.
    Shape(String),
    /// Not JSON at all (truncated or garbled).
    NotJson(String),
}

/// The records of a Table API body: `{"result": [...]}`, a bare list, or
/// `{"result": {...}}` for a single record. Read in one pass.
pub fn records(body: &[u8]) -> Result<Vec<Fields<'_>>, BodyError> {
    match fields::read(body) {
        Ok(Body::Records(records)) => Ok(records),
        Ok(Body::Error(message)) => Err(BodyError::Error(message)),
        Ok(Body::Shape(why)) => Err(BodyError::Shape(why)),
        Err(_) if body.trim_ascii_start().starts_with(b"<") => Err(BodyError::Html),
        Err(e) => Err(BodyError::NotJson(format!("the body is not JSON: {e}"))),
    }
}

/// `message (detail)` of a ServiceNow error body.
fn error_message(body: &[u8]) -> Option<String> {
    match fields::read(body) {
        Ok(Body::Error(message)) => Some(message),
        _ => None,
    }
}

/// The URL of the `rel="next"` entry of a `Link` header
/// (`<url>;rel="first",<url>;rel="next",...`). URLs are read between angle
/// brackets, so commas inside them do no harm.
pub fn next_link(header: &str) -> Option<&str> {
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let close = open + rest[open..].find('>')?;
        let url = &rest[open + 1..close];
        let params_end = rest[close..].find('<').map_or(rest.len(), |i| close + i);
        let params = &rest[close + 1..params_end];
        let is_next = params.split(';').any(|p| {
            let p = p.trim().trim_end_matches(',').trim();
            p.strip_prefix("rel=")
                .is_some_and(|rel| rel.trim_matches('"').split_ascii_whitespace().any(|r| r == "next"))
        });
        if is_next {
            return Some(url.trim());
        }
        rest = &rest[params_end..];
    }
    None
}

/// `sysparm_offset` of a link (relative links resolve against `base`).
fn offset_of(base: &url::Url, link: &str) -> Option<u32> {
    let url = base.join(link).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == "sysparm_offset")
        .and_then(|(_, v)| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyset_queries_are_exact() {
        let mark = Watermark::checked("2026-10-03 14:22:09", "9d3f").expect("valid");
        assert_eq!(
            sync_query(&Start::After(mark.clone())),
            "sys_updated_on=2026-10-03 14:22:09^sys_id>9d3f^NQsys_updated_on>2026-10-03 14:22:09\
             ^ORDERBYsys_updated_on^ORDERBYsys_id"
        );
        assert_eq!(
            sync_query(&Start::Since("2026-01-01 00:00:00".into())),
            "sys_updated_on>=2026-01-01 00:00:00^ORDERBYsys_updated_on^ORDERBYsys_id"
        );
        assert_eq!(sync_query(&Start::Beginning), "ORDERBYsys_updated_on^ORDERBYsys_id");
    }

    #[test]
    fn finds_the_next_link_among_others() {
        let header = "<https://a.example/api/now/table/incident?sysparm_offset=0&sysparm_fields=a,b>;rel=\"first\",\
                      <https://a.example/api/now/table/incident?sysparm_offset=200&sysparm_fields=a,b>;rel=\"next\",\
                      <https://a.example/api/now/table/incident?sysparm_offset=400>;rel=\"last\"";
        let next = next_link(header).expect("has next");
        let base = url::Url::parse("https://a.example/api/now/table/incident").expect("url");
        assert_eq!(offset_of(&base, next), Some(200));
        assert_eq!(next_link("<https://a.example/x?sysparm_offset=0>;rel=\"first\""), None);
        assert_eq!(next_link(""), None);
        assert_eq!(
            next_link("<https://a.example/x?sysparm_offset=5>; rel=next"),
            Some("https://a.example/x?sysparm_offset=5")
        );
    }

    fn page(status: u16, body: &[u8]) -> Page {
        Page {
            table: Table::Incident,
            status,
            body: body.to_vec(),
            next: None,
        }
    }

    /// field case 06-servicenow-2xx-not-a-page.http: the four shapes, exact bytes.
    #[test]
    fn a_2xx_that_is_not_a_page_says_which() {
        let cancelled = br#"{"error":{"message":"Transaction cancelled: maximum execution time exceeded","detail":"Transaction cancelled: maximum execution time exceeded Check logs for error trace or enable glide.rest.debug property to verify REST request processing"},"status":"failure"}"#;
        assert!(
            matches!(page(200, cancelled).rows(), Ok(Err(NotAPage::Cancelled(m))) if m.starts_with("Transaction cancelled"))
        );
        let spliced = br#"{"result":[{"sys_id":"a1c2e3f4a5b6c7d8e9f0a1b2c3d4e5f6","number":"INC0060001","sys_updated_on":"2026-10-03 02:00:01","state":"7","priority":"4","reassignment_count":"0"},{"sys_id":"c3e4a5b6c7d8e9f0a1b2c3d4e5f6a7b8","number":"INC0060003","sys_updated_on":"2026-10-03 02:00:02","short_description":"Outlook keeps asking for my pass"error":{"message":"Transaction cancelled: maximum execution time exceeded","detail":"x"},"status":"failure"}"#;
        assert!(
            matches!(page(200, spliced).rows(), Ok(Err(NotAPage::Cut(_)))),
            "no row of it is kept"
        );
        assert!(matches!(page(202, b"").rows(), Ok(Err(NotAPage::Queued(202)))));
        let html = b"<html><head><title>Instance Hibernating page</title></head><body>Your instance is hibernating. (illustrative)</body></html>";
        assert!(matches!(page(200, html).rows(), Ok(Err(NotAPage::WebPage))));
        assert!(matches!(page(200, br#"{"result":[]}"#).rows(), Ok(Ok(rows)) if rows.is_empty()));
        assert!(matches!(
            page(200, br#"{"rows":[]}"#).rows(),
            Err(PluginError::BadData(_))
        ));
    }

    #[test]
    fn error_bodies_give_their_message() {
        let body = br#"{"error":{"message":"Invalid table problemo","detail":null},"status":"failure"}"#;
        let Err(BodyError::Error(m)) = records(body) else {
            panic!("expected the error message")
        };
        assert_eq!(m, "Invalid table problemo");
        assert!(matches!(
            records(b"<html>Your instance is hibernating</html>"),
            Err(BodyError::Html)
        ));
        assert!(matches!(records(br#"{"results":[]}"#), Err(BodyError::Shape(_))));
    }
}

//! The responses endpoint on the wire: requests, the envelope and errors.
//!
//! `GET {base_url}/api/v2/responses/?created__gte=..&created__lt=..&ordering=created,id&page=P&page_size=S`
//! answers `{"meta": {"count": N, "page": P, "pages": K}, "items": [...]}`.
//!
//! The filters are Django-style lookups, which `SOURCES.md` confirms for
//! HappySignals; `ordering` is django-filter's usual parameter, *unconfirmed*
//! here: the source may ignore it and answer newest first, its default, so
//! the walk ([`crate::walk`]) checks the order it gets.

use crate::config::Config;
use serde_json::{Map, Value};
use xla_sdk::PluginError;
use xla_sdk::http::{Request, Response};
use xla_sdk::status::Hints;

/// Path of the responses endpoint.
pub const PATH: &str = "/api/v2/responses/";

/// One page of the window `[from, until)` (`created`, UTC date-times;
/// `from` `None` for no lower bound), oldest first if the source honours
/// `ordering`.
pub fn page_request(config: &Config, from: Option<&str>, until: &str, page: u32) -> Result<Request, PluginError> {
    let request = endpoint(config)?;
    let request = match from {
        Some(from) => request.query("created__gte", from),
        None => request,
    };
    Ok(request
        .query("created__lt", until)
        .query("ordering", "created,id")
        .query("page", &page.to_string())
        .query("page_size", &config.page_size.to_string()))
}

/// One response, to see that the API answers and the token is accepted.
pub fn probe_request(config: &Config) -> Result<Request, PluginError> {
    Ok(endpoint(config)?.query("page", "1").query("page_size", "1"))
}

fn endpoint(config: &Config) -> Result<Request, PluginError> {
    let origin = config.origin()?;
    Ok(xla_sdk::http::get(&format!("{origin}{PATH}"))?.header("accept", "application/json"))
}

/// A page of responses.
pub struct Page {
    /// The responses, in the source's order.
    pub items: Vec<Map<String, Value>>,
    /// `meta.count`: responses matching the query when the page was made.
    pub count: Option<u64>,
    /// `meta.page`.
    pub page: u64,
    /// `meta.pages`.
    pub pages: u64,
}

/// Sends a request and reads the page.
pub fn fetch(request: Request) -> Result<Page, PluginError> {
    fetch_unless_gone(request)?.ok_or_else(|| {
        PluginError::Permanent(format!(
            "HappySignals answered 404; is base_url the customer's HappySignals origin with the {PATH} endpoint?"
        ))
    })
}

/// Like [`fetch`], but a 404 is `None`: a page past the end, once responses
/// were deleted while a walk was under way.
pub fn fetch_unless_gone(request: Request) -> Result<Option<Page>, PluginError> {
    let response = request.send()?;
    if response.status == 404 {
        return Ok(None);
    }
    let response = check_status(response)?;
    let value: Value = serde_json::from_slice(&response.body).map_err(|e| {
        // A page cut short or garbled in transit: asking again may well work.
        PluginError::Transient(format!("the responses page is not JSON: {e}"))
    })?;
    page(value).map(Some)
}

/// The SDK's status table (`xla_sdk::status`) with what to do about it
/// here, and the `detail` of HappySignals' error body.
fn check_status(response: Response) -> Result<Response, PluginError> {
    let not_found = format!("is base_url the customer's HappySignals origin with the {PATH} endpoint?");
    let hints = Hints {
        unauthorized: "check the API token the operator granted for this origin",
        forbidden: "the API token the operator granted is not allowed to read survey responses: grant it read access \
                    to responses, or grant a token that has it",
        not_found: &not_found,
    };
    xla_sdk::status::check(response, &hints, |response| {
        format!("HappySignals answered {}: {}", response.status, detail(response))
    })
}

/// `detail` of a JSON error body, else the start of the body.
fn detail(response: &Response) -> String {
    serde_json::from_slice::<Value>(&response.body)
        .ok()
        .and_then(|v| v.get("detail").and_then(Value::as_str).map(String::from))
        .unwrap_or_else(|| response.snippet(200))
}

/// The envelope's items and paging.
pub fn page(value: Value) -> Result<Page, PluginError> {
    let meta = |key: &str| value.get("meta").and_then(|m| m.get(key)).and_then(Value::as_u64);
    let (Some(page), Some(pages)) = (meta("page"), meta("pages")) else {
        return Err(PluginError::BadData(
            "the responses page has no `meta.page` and `meta.pages` numbers".into(),
        ));
    };
    let items = items(value.get("items").cloned().unwrap_or(Value::Null))?;
    Ok(Page {
        items,
        count: meta("count"),
        page,
        pages,
    })
}

/// A list of response objects.
pub fn items(list: Value) -> Result<Vec<Map<String, Value>>, PluginError> {
    let Value::Array(list) = list else {
        return Err(PluginError::BadData("the body has no `items` list of responses".into()));
    };
    list.into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(fields) => Ok(fields),
            _ => Err(PluginError::BadData(format!("`items[{i}]` is not a response object"))),
        })
        .collect()
}

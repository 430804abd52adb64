//! Run a connector against recorded HTTP exchanges, on the host target, with
//! no network; build a scorer's input from plain values ([`aggregate`],
//! [`score_input`], [`row`]).
//!
//! A fixture file is a JSON array of exchanges in the real wire format of the
//! source:
//!
//! ```json
//! [
//!   { "request":  { "method": "GET", "url": "https://acme.example/api/items?page=1" },
//!     "response": { "status": 200,
//!                   "headers": { "content-type": "application/json" },
//!                   "json": { "items": [], "next": null } } }
//! ]
//! ```
//!
//! A response body is given as `json` (any JSON value), `text`, or omitted.
//! Each exchange answers one request, in file order among those with the
//! same method and URL (query parameters compare in any order). A request
//! with no exchange left fails with a message listing what was recorded.
//!
//! ```text
//! let run = xla_sdk::testkit::run_pull::<MyConnector>(r#"{"base_url":"https://acme.example"}"#,
//!                                                     "tests/fixtures/two-pages.json")?;
//! assert_eq!(run.observations().count(), 42);
//! assert!(run.unused.is_empty());
//! ```

use crate::PluginError;
use crate::http::{Request, Response};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;

/// One recorded request and its response.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct Exchange {
    /// What the connector is expected to send.
    pub request: RecordedRequest,
    /// What the source answered.
    pub response: RecordedResponse,
}

/// The request side of an exchange.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Absolute URL with query.
    pub url: String,
}

/// The response side of an exchange.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedResponse {
    /// Status code.
    pub status: u16,
    /// Response headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body.
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// A text body.
    #[serde(default)]
    pub text: Option<String>,
    /// A binary body (a compressed file), as a list of byte values.
    #[serde(default)]
    pub bytes: Option<Vec<u8>>,
}

/// Why fixtures could not be used.
#[derive(Debug)]
pub enum FixtureError {
    /// The fixture file could not be read.
    Read(std::path::PathBuf, std::io::Error),
    /// The fixture file is not a JSON array of exchanges.
    Parse(std::path::PathBuf, serde_json::Error),
    /// A recorded URL does not parse.
    Url(String),
}

impl std::fmt::Display for FixtureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FixtureError::Read(p, e) => write!(f, "cannot read fixtures {}: {e}", p.display()),
            FixtureError::Parse(p, e) => write!(
                f,
                "fixtures {} are not a JSON array of {{request, response}} exchanges: {e}",
                p.display()
            ),
            FixtureError::Url(u) => write!(f, "recorded URL `{u}` is not an absolute URL"),
        }
    }
}

impl std::error::Error for FixtureError {}

/// Recorded exchanges being replayed.
#[derive(Debug, Default)]
pub struct Replay {
    exchanges: Vec<(Key, Exchange)>,
    used: Vec<bool>,
    /// Every request made, as `METHOD url`.
    pub requests: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    method: String,
    origin_and_path: String,
    query: Vec<(String, String)>,
}

impl Key {
    fn new(method: &str, url: &url::Url) -> Key {
        let mut query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        query.sort();
        Key {
            method: method.to_ascii_uppercase(),
            origin_and_path: format!("{}{}", url.origin().ascii_serialization(), url.path()),
            query,
        }
    }
}

impl Replay {
    /// Exchanges from a fixture file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Replay, FixtureError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| FixtureError::Read(path.into(), e))?;
        let exchanges: Vec<Exchange> = serde_json::from_str(&text).map_err(|e| FixtureError::Parse(path.into(), e))?;
        Replay::new(exchanges)
    }

    /// Exchanges given in code.
    pub fn new(exchanges: Vec<Exchange>) -> Result<Replay, FixtureError> {
        let keyed = exchanges
            .into_iter()
            .map(|x| {
                let url = url::Url::parse(&x.request.url).map_err(|_| FixtureError::Url(x.request.url.clone()))?;
                Ok((Key::new(&x.request.method, &url), x))
            })
            .collect::<Result<Vec<_>, FixtureError>>()?;
        let used = vec![false; keyed.len()];
        Ok(Replay {
            exchanges: keyed,
            used,
            requests: Vec::new(),
        })
    }

    /// Exchanges no request asked for, as `METHOD url`.
    pub fn unused(&self) -> Vec<String> {
        self.exchanges
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| !**used)
            .map(|((_, x), _)| format!("{} {}", x.request.method, x.request.url))
            .collect()
    }

    fn answer(&mut self, request: &Request) -> Result<Response, PluginError> {
        let what = request.describe();
        self.requests.push(what.clone());
        let key = Key::new(request.method.as_str(), &request.url);
        let Some(index) = (0..self.exchanges.len()).find(|&i| !self.used[i] && self.exchanges[i].0 == key) else {
            let recorded: Vec<String> = self
                .exchanges
                .iter()
                .map(|(_, x)| format!("  {} {}", x.request.method, x.request.url))
                .collect();
            return Err(PluginError::Permanent(format!(
                "testkit: no recorded exchange left for {what}; recorded:\n{}",
                recorded.join("\n")
            )));
        };
        self.used[index] = true;
        Ok(to_response(&self.exchanges[index].1.response))
    }
}

fn to_response(recorded: &RecordedResponse) -> Response {
    let body = match (&recorded.json, &recorded.text, &recorded.bytes) {
        (Some(json), _, _) => json.to_string().into_bytes(),
        (None, Some(text), _) => text.clone().into_bytes(),
        (None, None, Some(bytes)) => bytes.clone(),
        (None, None, None) => Vec::new(),
    };
    Response {
        status: recorded.status,
        headers: recorded
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect(),
        body,
    }
}

thread_local! {
    static ACTIVE: RefCell<Option<Replay>> = const { RefCell::new(None) };
}

/// Runs `f` with `replay` answering every HTTP request it makes; returns
/// `f`'s result and the replay (to inspect requests and unused exchanges).
pub fn with_replay<R>(replay: Replay, f: impl FnOnce() -> R) -> (R, Replay) {
    ACTIVE.with(|cell| *cell.borrow_mut() = Some(replay));
    let result = f();
    let replay = ACTIVE.with(|cell| cell.borrow_mut().take()).unwrap_or_default();
    (result, replay)
}

pub(crate) fn replay(request: &Request) -> Result<Response, PluginError> {
    ACTIVE.with(|cell| match cell.borrow_mut().as_mut() {
        Some(replay) => replay.answer(request),
        None => Err(PluginError::Permanent(format!(
            "{}: no network on the host target; run the connector inside `xla_sdk::testkit::with_replay`",
            request.describe()
        ))),
    })
}

/// The outcome of [`run_pull`].
#[cfg(feature = "connector")]
#[derive(Debug)]
pub struct PullRun {
    /// Every batch, in order.
    pub batches: Vec<crate::Batch>,
    /// The error that ended the run, if any.
    pub error: Option<PluginError>,
    /// Every request made, as `METHOD url`.
    pub requests: Vec<String>,
    /// Recorded exchanges nobody asked for.
    pub unused: Vec<String>,
}

#[cfg(feature = "connector")]
impl PullRun {
    /// Every record of every batch, as one observation per value (how the
    /// store keeps them).
    pub fn observations(&self) -> impl Iterator<Item = crate::Observation> + '_ {
        self.records().flat_map(crate::Record::observations)
    }

    /// Every record of every batch.
    pub fn records(&self) -> impl Iterator<Item = &crate::Record> {
        self.batches.iter().flat_map(|b| b.changes.records.iter())
    }

    /// Every retraction of every batch.
    pub fn retractions(&self) -> impl Iterator<Item = &crate::Retraction> {
        self.batches.iter().flat_map(|b| b.changes.retractions.iter())
    }

    /// Every gap (partial span) of every batch.
    pub fn partial(&self) -> impl Iterator<Item = &crate::Gap> {
        self.batches.iter().flat_map(|b| b.changes.partial.iter())
    }
}

/// Most pulls one [`run_pull`] makes before giving up on a connector that
/// never says `more: false`.
#[cfg(feature = "connector")]
pub const MAX_PULLS: usize = 10_000;

/// Pulls from the start until the connector says no more follows, answering
/// HTTP from the fixture file, exactly as the host would drive it.
#[cfg(feature = "connector")]
pub fn run_pull<C: crate::Connector>(config_json: &str, fixtures: impl AsRef<Path>) -> Result<PullRun, FixtureError> {
    let replay = Replay::from_file(fixtures)?;
    let (outcome, replay) = with_replay(replay, || drive::<C>(config_json));
    let (batches, error) = outcome;
    Ok(PullRun {
        batches,
        error,
        unused: replay.unused(),
        requests: replay.requests,
    })
}

#[cfg(feature = "connector")]
fn drive<C: crate::Connector>(config_json: &str) -> (Vec<crate::Batch>, Option<PluginError>) {
    let config = match crate::parse_config::<C::Config>(config_json) {
        Ok(config) => config,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut batches = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PULLS {
        match C::pull(&config, cursor.as_deref()) {
            Ok(batch) => {
                let more = batch.more;
                cursor = batch.cursor.clone().or(cursor);
                batches.push(batch);
                if !more {
                    return (batches, None);
                }
            }
            Err(e) => return (batches, Some(e)),
        }
    }
    let error = PluginError::Permanent(format!("the connector asked for more after {MAX_PULLS} pulls"));
    (batches, Some(error))
}

/// The aggregate the host would send for `values` of `metric`: count, sum,
/// min, max, and for a `*_rating` metric the histogram of scores.
///
/// # Panics
///
/// When a value of a `*_rating` metric is not a whole number from 0 to 10.
pub fn aggregate(metric: &str, layer: crate::Layer, group: Option<&str>, values: &[f64]) -> crate::Aggregate {
    let histogram = metric.ends_with("_rating").then(|| {
        let mut ratings = crate::formulas::Ratings::new();
        for &value in values {
            let score = crate::formulas::rating_score(value)
                .unwrap_or_else(|| panic!("testkit: `{metric}` value {value} is not a 0-10 rating"));
            ratings.add(score);
        }
        ratings.counts().to_vec()
    });
    let fold = |pick: fn(f64, f64) -> f64| values.iter().copied().reduce(pick).unwrap_or(0.0);
    crate::Aggregate {
        metric: metric.into(),
        layer,
        group: group.map(str::to_string),
        count: values.len() as u64,
        sum: values.iter().sum(),
        min: fold(f64::min),
        max: fold(f64::max),
        histogram,
    }
}

/// A window of tenant `acme` (the first week of October 2026) with these
/// parameters and aggregates; `group_by` is `service` when an aggregate has
/// a group.
pub fn score_input(parameters: &str, aggregates: Vec<crate::Aggregate>) -> crate::ScoreInput {
    let grouped = aggregates.iter().any(|a| a.group.is_some());
    crate::ScoreInput {
        tenant: "acme".into(),
        window_start: 1_790_812_800_000,
        window_end: 1_791_417_600_000,
        group_by: grouped.then(|| "service".into()),
        parameters: parameters.into(),
        aggregates,
    }
}

/// A subject row as the host sends it: `values` as `(metric, value, at)`
/// become a `(metric, value)` pair and a `(metric.at, at)` pair each.
pub fn row(key: &str, dimensions: &[(&str, &str)], values: &[(&str, f64, i64)]) -> crate::SubjectRow {
    crate::SubjectRow {
        key: key.into(),
        dimensions: dimensions.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        values: values
            .iter()
            .flat_map(|&(metric, value, at)| [(metric.to_string(), value), (format!("{metric}.at"), at as f64)])
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http;

    #[test]
    fn aggregates_are_built_as_the_host_would() {
        let rated = aggregate(
            "happiness_rating",
            crate::Layer::Experience,
            Some("VPN"),
            &[9.0, 3.0, 10.0],
        );
        assert_eq!((rated.count, rated.sum, rated.min, rated.max), (3, 22.0, 3.0, 10.0));
        assert_eq!(rated.histogram.as_deref(), Some(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1][..]));
        let empty = aggregate("sla_breached", crate::Layer::Operational, None, &[]);
        assert_eq!(
            (empty.count, empty.min, empty.max, empty.histogram),
            (0, 0.0, 0.0, None)
        );
        let input = score_input("", vec![rated]);
        assert_eq!(input.group_by.as_deref(), Some("service"));
    }

    #[test]
    fn rows_carry_a_time_per_value() {
        let row = row("INC1", &[("service", "VPN")], &[("sla_breached", 1.0, 42)]);
        assert_eq!(
            row.values,
            [("sla_breached".to_string(), 1.0), ("sla_breached.at".to_string(), 42.0)]
        );
    }

    fn exchange(url: &str, status: u16, json: serde_json::Value) -> Exchange {
        Exchange {
            request: RecordedRequest {
                method: "GET".into(),
                url: url.into(),
            },
            response: RecordedResponse {
                status,
                headers: BTreeMap::new(),
                json: Some(json),
                text: None,
                bytes: None,
            },
        }
    }

    #[test]
    fn answers_in_order_and_reports_misses() {
        let replay = Replay::new(vec![
            exchange("https://a.example/x?b=2&a=1", 200, serde_json::json!({"n": 1})),
            exchange("https://a.example/x?a=1&b=2", 503, serde_json::json!({"n": 2})),
        ])
        .unwrap();
        let (results, replay) = with_replay(replay, || {
            let send = || http::get("https://a.example/x?a=1&b=2").unwrap().send();
            (send(), send(), send())
        });
        assert_eq!(results.0.unwrap().status, 200);
        assert_eq!(results.1.unwrap().status, 503);
        let miss = results.2.unwrap_err().to_string();
        assert!(miss.contains("no recorded exchange left"), "{miss}");
        assert_eq!(replay.requests.len(), 3);
        assert!(replay.unused().is_empty());
    }

    #[test]
    fn without_replay_there_is_no_network() {
        let err = http::get("https://a.example/").unwrap().send().unwrap_err();
        assert!(err.to_string().contains("no network"), "{err}");
    }
}

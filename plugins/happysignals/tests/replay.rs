//! The connector against recorded HappySignals exchanges (`tests/fixtures/`),
//! driven the way the host drives it.

use happysignals::HappySignals;
use happysignals::config::Config;
use xla_sdk::testkit::{self, Replay};
use xla_sdk::{Batch, Connector, Layer, Observation, PluginError};

const CONFIG: &str = r#"{"base_url":"https://acme.eu.happysignals.com","page_size":2}"#;
const DEFAULT: &str = r#"{"base_url":"https://acme.eu.happysignals.com"}"#;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn config(json: &str) -> Config {
    xla_sdk::parse_config(json).expect("config parses")
}

/// Pulls from `cursor` until the connector says no more, answered from a fixture file.
fn sync(config_json: &str, cursor: Option<&str>, fixtures: &str) -> (Vec<Batch>, Option<PluginError>, Replay) {
    let replay = Replay::from_file(fixture(fixtures)).expect("fixtures load");
    let config = config(config_json);
    let ((batches, error), replay) = testkit::with_replay(replay, || {
        let mut batches: Vec<Batch> = Vec::new();
        let mut cursor = cursor.map(String::from);
        for _ in 0..100 {
            match HappySignals::pull(&config, cursor.as_deref()) {
                Ok(batch) => {
                    let more = batch.more;
                    cursor = batch.cursor.clone();
                    batches.push(batch);
                    if !more {
                        return (batches, None);
                    }
                }
                Err(e) => return (batches, Some(e)),
            }
        }
        (batches, Some(PluginError::Permanent("never finished".into())))
    });
    (batches, error, replay)
}

fn find<'a>(observations: &'a [Observation], id: &str, metric: &str) -> &'a Observation {
    observations
        .iter()
        .find(|o| o.metric == metric && o.id == id)
        .unwrap_or_else(|| panic!("no {metric} with id {id}"))
}

/// A query parameter of a request the test kit logged (`GET url`).
fn param(logged: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(logged.trim_start_matches("GET ")).expect("logged URL");
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn all(batches: &[Batch]) -> Vec<Observation> {
    batches.iter().flat_map(|b| b.observations.iter().cloned()).collect()
}

/// Unix ms of an October 2026 `YYYY-MM-DDTHH:MM:SSZ`, computed apart from the connector.
fn at(text: &str) -> i64 {
    let n: Vec<i64> = text
        .trim_end_matches('Z')
        .split(['-', 'T', ':'])
        .map(|p| p.parse().expect("digits"))
        .collect();
    assert_eq!((n[0], n[1]), (2026, 10));
    // 2026-10-01 is day 20727 since the epoch.
    ((20_727 + n[2] - 1) * 86_400 + n[3] * 3_600 + n[4] * 60 + n[5]) * 1_000
}

#[test]
fn walks_every_page_and_keeps_the_watermark() {
    let run = testkit::run_pull::<HappySignals>(CONFIG, fixture("first-sync.json")).expect("fixtures load");
    assert_eq!(run.error, None);
    assert!(run.unused.is_empty(), "unused: {:?}", run.unused);
    assert_eq!(run.requests.len(), 3);
    assert_eq!(param(&run.requests[0], "ordering").as_deref(), Some("created,id"));
    assert_eq!(param(&run.requests[0], "created__gte"), None);
    assert_eq!(param(&run.requests[2], "page").as_deref(), Some("3"));
    let more: Vec<bool> = run.batches.iter().map(|b| b.more).collect();
    assert_eq!(more, [true, true, false]);
    assert_eq!(
        run.batches[0].cursor.as_deref(),
        Some(r#"{"v":1,"created":"2026-10-01T09:30:00Z","id":"hs-00000002","walk":{"page":2,"page_size":2}}"#)
    );
    assert_eq!(
        run.batches[2].cursor.as_deref(),
        Some(r#"{"v":1,"created":"2026-10-02T12:00:00Z","id":"hs-00000005"}"#),
        "the sync is over; the watermark stays"
    );
}

#[test]
fn maps_ratings_lost_time_and_factors() {
    let run = testkit::run_pull::<HappySignals>(CONFIG, fixture("first-sync.json")).expect("fixtures load");
    let obs: Vec<Observation> = run.observations().cloned().collect();
    // Ratings 5, lost time 3 (two responses did not answer), factors 6.
    let count = |metric: &str| obs.iter().filter(|o| o.metric == metric).count();
    assert_eq!(count("happiness_rating"), 5);
    assert_eq!(count("lost_time_minutes"), 3);
    assert_eq!(count("factor_selected"), 6);
    assert!(obs.iter().all(|o| o.layer == Layer::Experience));

    let rating = find(&obs, "hs-00000002", "happiness_rating");
    assert_eq!(rating.value, 3.0);
    assert_eq!(rating.at, at("2026-10-01T09:30:00Z"));
    assert_eq!(
        rating.dimensions,
        [
            ("ticket", "RITM0010007"),
            ("ticket_type", "request"),
            ("channel", "Email"),
            ("country", "Sweden"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
        "the empty category is left out"
    );
    assert_eq!(find(&obs, "hs-00000002", "lost_time_minutes").value, 240.0);
    let factor = find(&obs, "hs-00000002#Was passed between teams", "factor_selected");
    assert_eq!(factor.value, 1.0);
    assert_eq!(factor.dimension("factor"), Some("Was passed between teams"));
    assert_eq!(factor.dimension("ticket"), Some("RITM0010007"));

    // No lost time answered: no lost-time observation.
    for unanswered in ["hs-00000001", "hs-00000004"] {
        assert!(
            obs.iter()
                .all(|o| !(o.id == unanswered && o.metric == "lost_time_minutes")),
            "{unanswered}"
        );
    }
    let d = find(&obs, "hs-00000004", "happiness_rating");
    assert_eq!(d.dimension("ticket_type"), Some("incident"));
    assert_eq!(find(&obs, "hs-00000003", "happiness_rating").dimension("channel"), None);
}

#[test]
fn responses_sharing_the_watermark_timestamp_are_neither_lost_nor_repeated() {
    let cursor = r#"{"v":1,"created":"2026-10-02T12:00:00Z","id":"hs-00000005"}"#;
    let (batches, error, replay) = sync(CONFIG, Some(cursor), "next-sync.json");
    assert_eq!(error, None);
    assert!(replay.unused().is_empty(), "unused: {:?}", replay.unused());
    assert_eq!(
        param(&replay.requests[0], "created__gte").as_deref(),
        Some("2026-10-02T12:00:00Z")
    );
    let obs = all(&batches);
    let mut ids: Vec<&str> = obs
        .iter()
        .filter(|o| o.metric == "happiness_rating")
        .map(|o| o.id.as_str())
        .collect();
    ids.sort();
    // hs-4 and hs-5 were read before; hs-6 shares their timestamp and is new.
    assert_eq!(ids, ["hs-00000006", "hs-00000007"]);
    assert_eq!(
        batches.last().and_then(|b| b.cursor.as_deref()),
        Some(r#"{"v":1,"created":"2026-10-03T14:22:09Z","id":"hs-00000007"}"#)
    );
    assert_eq!(
        batches[0].cursor.as_deref(),
        Some(
            r#"{"v":1,"created":"2026-10-02T12:00:00Z","id":"hs-00000005","walk":{"from":"2026-10-02T12:00:00Z","page":2,"page_size":2}}"#
        ),
        "a page of nothing new keeps the watermark and walks on"
    );

    let last = r#"{"v":1,"created":"2026-10-03T14:22:09Z","id":"hs-00000007"}"#;
    let (batches, error, _) = sync(CONFIG, Some(last), "nothing-new.json");
    assert_eq!(error, None);
    assert!(all(&batches).is_empty());
    assert_eq!(batches[0].cursor.as_deref(), Some(last));
    assert!(!batches[0].more);
}

#[test]
fn since_starts_the_first_sync_and_an_empty_page_ends_it() {
    let config = r#"{"base_url":"https://acme.eu.happysignals.com","since":"2026-10-02T00:00:00Z"}"#;
    let run = testkit::run_pull::<HappySignals>(config, fixture("since.json")).expect("fixtures load");
    assert_eq!(run.error, None);
    assert!(run.unused.is_empty());
    assert_eq!(run.observations().filter(|o| o.metric == "happiness_rating").count(), 2);

    let run = testkit::run_pull::<HappySignals>(DEFAULT, fixture("empty.json")).expect("fixtures load");
    assert_eq!(run.error, None);
    assert_eq!(
        run.batches.len(),
        1,
        "an empty page ends the walk whatever meta.pages says"
    );
    assert_eq!(run.batches[0].cursor.as_deref(), Some(r#"{"v":1}"#));
}

#[test]
fn check_fetches_one_response() {
    let replay = Replay::from_file(fixture("check.json")).expect("fixtures load");
    let config = config(CONFIG);
    let (result, replay) = testkit::with_replay(replay, || HappySignals::check(&config));
    assert_eq!(result, Ok(()));
    assert!(replay.unused().is_empty());
    let bad = config_error(r#"{"base_url":"http://acme.eu.happysignals.com"}"#);
    assert!(bad.contains("`base_url`"), "{bad}");
}

fn config_error(json: &str) -> String {
    let config = config(json);
    match HappySignals::check(&config) {
        Err(PluginError::Config(m)) => m,
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn errors_say_what_to_do_next() {
    let outcome = |name: &str| {
        let (_, error, _) = sync(DEFAULT, None, &format!("{name}.json"));
        error.unwrap_or_else(|| panic!("{name}: expected an error"))
    };
    assert!(matches!(outcome("unauthorized"), PluginError::Auth(m) if m.contains("Invalid token")));
    assert!(
        matches!(outcome("forbidden"), PluginError::Auth(m) if m.contains("permission") && m.contains("read access")),
        "a token without the right is the operator's to fix, as in every connector"
    );
    assert_eq!(outcome("throttled"), PluginError::RateLimited(17));
    assert!(matches!(outcome("server_error"), PluginError::Transient(m) if m.contains("503")));
    assert!(matches!(outcome("truncated"), PluginError::Transient(_)));
    assert!(matches!(outcome("not_found"), PluginError::Permanent(_)));
    assert!(matches!(outcome("no_meta"), PluginError::BadData(m) if m.contains("meta")));
    assert!(
        matches!(outcome("bad_score"), PluginError::BadData(m) if m.contains("`hs-00000001`") && m.contains("`score`"))
    );
    let cursor_error = sync(DEFAULT, Some(r#"{"v":9}"#), "unauthorized.json").1;
    assert!(matches!(cursor_error, Some(PluginError::Permanent(_))));
}

#[test]
fn the_csv_export_and_saved_bodies_give_the_same_observations() {
    let config = config(DEFAULT);
    let csv = std::fs::read(fixture("export.csv")).expect("export");
    let from_csv = HappySignals::parse(&config, "text/csv; charset=utf-8", &csv).expect("csv parses");
    let items = std::fs::read(fixture("items.json")).expect("items");
    let from_list = HappySignals::parse(&config, "application/json", &items).expect("list parses");
    let run = testkit::run_pull::<HappySignals>(CONFIG, fixture("first-sync.json")).expect("fixtures load");
    let pulled: Vec<Observation> = run.observations().cloned().collect();
    assert_eq!(from_csv, pulled);
    assert_eq!(from_list, pulled);

    let page = serde_json::json!({"meta": {"count": 1, "page": 1, "pages": 1},
        "items": [serde_json::from_slice::<Vec<serde_json::Value>>(&items).expect("list")[0]]});
    let body = serde_json::to_vec(&page).expect("json");
    let from_page = HappySignals::parse(&config, "application/json", &body).expect("page parses");
    assert_eq!(from_page, pulled[..3]);

    assert!(matches!(
        HappySignals::parse(&config, "application/xml", b"<a/>"),
        Err(PluginError::BadData(_))
    ));
    assert!(matches!(
        HappySignals::parse(&config, "text/csv", b"id,created\n"),
        Err(PluginError::BadData(_))
    ));
}

#[test]
fn a_page_gone_mid_walk_ends_the_walk_and_keeps_the_watermark() {
    let cursor = r#"{"v":1,"created":"2026-10-02T12:00:00Z","id":"hs-00000005","walk":{"from":"2026-10-02T12:00:00Z","page":2,"page_size":2}}"#;
    let (batches, error, _) = sync(CONFIG, Some(cursor), "page-gone.json");
    assert_eq!(error, None, "responses deleted mid-walk are not a permanent failure");
    assert_eq!(batches.len(), 1);
    assert!(!batches[0].more);
    assert_eq!(
        batches[0].cursor.as_deref(),
        Some(r#"{"v":1,"created":"2026-10-02T12:00:00Z","id":"hs-00000005"}"#)
    );
}

#[test]
fn a_changed_page_size_restarts_the_walk_from_the_watermark() {
    // Page 3 of a walk by 2 is not page 3 by 500: start again at page 1.
    let cursor = r#"{"v":1,"created":"2026-10-02T12:00:00Z","id":"hs-00000005","walk":{"from":"2026-10-01T00:00:00Z","page":3,"page_size":2}}"#;
    let (batches, error, replay) = sync(
        r#"{"base_url":"https://acme.eu.happysignals.com","page_size":500}"#,
        Some(cursor),
        "restart-walk.json",
    );
    assert_eq!(error, None);
    assert_eq!(param(&replay.requests[0], "page").as_deref(), Some("1"));
    assert!(!batches[0].more);
}

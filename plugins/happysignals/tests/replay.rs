//! The connector against recorded HappySignals exchanges (`tests/fixtures/`),
//! driven the way the host drives it, at a fixed wall-clock time.

use happysignals::HappySignals;
use happysignals::config::Config;
use xla_sdk::testkit::{self, Replay};
use xla_sdk::{Batch, Connector, Layer, Observation, PluginError, Record};

const CONFIG: &str = r#"{"base_url":"https://acme.eu.happysignals.com","page_size":2}"#;
const DEFAULT: &str = r#"{"base_url":"https://acme.eu.happysignals.com"}"#;
/// The wall clock of most syncs here, 2026-10-04T00:02:00Z: their window
/// ends two minutes earlier, at `created__lt=2026-10-04T00:00:00Z`.
const NOW: &str = "2026-10-04T00:02:00Z";

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn config(json: &str) -> Config {
    xla_sdk::parse_config(json).expect("config parses")
}

/// Pulls from `cursor` at `now` until the connector says no more, answered from a fixture file.
fn sync_at(
    config_json: &str,
    cursor: Option<&str>,
    fixtures: &str,
    now: &str,
) -> (Vec<Batch>, Option<PluginError>, Replay) {
    let replay = Replay::from_file(fixture(fixtures)).expect("fixtures load");
    let config = config(config_json);
    let now_ms = at(now);
    let ((batches, error), replay) = testkit::with_replay(replay, || {
        let mut batches: Vec<Batch> = Vec::new();
        let mut cursor = cursor.map(String::from);
        for _ in 0..100 {
            match HappySignals::pull_at(&config, cursor.as_deref(), now_ms) {
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

fn sync(config_json: &str, cursor: Option<&str>, fixtures: &str) -> (Vec<Batch>, Option<PluginError>, Replay) {
    sync_at(config_json, cursor, fixtures, NOW)
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

fn records(batches: &[Batch]) -> Vec<Record> {
    batches.iter().flat_map(|b| b.changes.records.iter().cloned()).collect()
}

fn all(batches: &[Batch]) -> Vec<Observation> {
    records(batches).iter().flat_map(Record::observations).collect()
}

/// Ids of the responses read, in the order read (factor records left out).
fn responses(batches: &[Batch]) -> Vec<String> {
    records(batches)
        .into_iter()
        .filter(|r| r.metric("happiness_rating").is_some())
        .map(|r| r.id)
        .collect()
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
fn walks_every_page_of_the_window_and_marks_it_done() {
    let (batches, error, replay) = sync(CONFIG, None, "first-sync.json");
    assert_eq!(error, None);
    assert!(replay.unused().is_empty(), "unused: {:?}", replay.unused());
    assert_eq!(replay.requests.len(), 3);
    assert_eq!(param(&replay.requests[0], "ordering").as_deref(), Some("created,id"));
    assert_eq!(param(&replay.requests[0], "created__gte"), None);
    assert_eq!(
        param(&replay.requests[0], "created__lt").as_deref(),
        Some("2026-10-04T00:00:00Z"),
        "the window ends at the sync's start, less two minutes"
    );
    assert_eq!(param(&replay.requests[2], "page").as_deref(), Some("3"));
    let more: Vec<bool> = batches.iter().map(|b| b.more).collect();
    assert_eq!(more, [true, true, false]);
    assert_eq!(
        batches[0].cursor.as_deref(),
        Some(
            r#"{"v":2,"walk":{"until":"2026-10-04T00:00:00Z","end":"2026-10-04T00:00:00Z","page":2,"page_size":2,"count":5,"order":"asc","last":{"created":"2026-10-01T09:30:00Z","id":"hs-00000002"},"ties":["hs-00000002"],"tail":{"created":"2026-10-01T09:30:00Z","id":"hs-00000002"},"passes":0}}"#
        )
    );
    assert_eq!(
        batches[2].cursor.as_deref(),
        Some(r#"{"v":2,"done":"2026-10-04T00:00:00Z"}"#),
        "the sync is over: everything created before its start is read"
    );
    assert_eq!(
        responses(&batches),
        [
            "hs-00000001",
            "hs-00000002",
            "hs-00000003",
            "hs-00000004",
            "hs-00000005"
        ]
    );
}

#[test]
fn maps_a_response_to_one_record_and_its_factors() {
    let (batches, error, _) = sync(CONFIG, None, "first-sync.json");
    assert_eq!(error, None);
    let obs = all(&batches);
    // Ratings 5, lost time 3 (two responses did not answer), factors 6.
    let count = |metric: &str| obs.iter().filter(|o| o.metric == metric).count();
    assert_eq!(count("happiness_rating"), 5);
    assert_eq!(count("lost_time_minutes"), 3);
    assert_eq!(count("factor_selected"), 6);
    assert!(obs.iter().all(|o| o.layer == Layer::Experience));

    let record = records(&batches)
        .into_iter()
        .find(|r| r.id == "hs-00000002")
        .expect("hs-00000002");
    assert_eq!(
        (record.metric("happiness_rating"), record.metric("lost_time_minutes")),
        (Some(3.0), Some(240.0)),
        "one record carries the rating and the lost time"
    );
    let rating = find(&obs, "hs-00000002", "happiness_rating");
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
    let factor = find(&obs, "hs-00000002#Was passed between teams", "factor_selected");
    assert_eq!(factor.value, 1.0);
    assert_eq!(factor.dimension("factor"), Some("Was passed between teams"));
    assert_eq!(factor.dimension("ticket"), Some("RITM0010007"));

    // No lost time answered: no lost-time value.
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

/// Field case 08-happysignals-paging.json, as recorded: newest first (the
/// source ignores `ordering`, and here `created__lt` too), 90016 submitted
/// between pages 1 and 2, 90012 removed before page 3. The old connector
/// stored 90015 only, and its watermark made the loss permanent.
#[test]
fn field_case_08_pages_shifting_under_the_walk_are_read_again_not_skipped() {
    let cursor = r#"{"v":2,"done":"2026-10-01T00:00:00Z"}"#;
    let now = "2026-10-03T07:17:00Z";
    let (batches, error, replay) = sync_at(CONFIG, Some(cursor), "field-case-08-shifting.json", now);
    assert_eq!(error, None);
    assert!(replay.unused().is_empty(), "unused: {:?}", replay.unused());
    assert_eq!(
        responses(&batches),
        ["90015", "90014", "90013", "90011"],
        "each response of the window once; 90016 came after the sync started"
    );
    assert!(
        batches[1].changes.records.is_empty(),
        "the shifted page is dropped, not half-read"
    );
    assert_eq!(
        param(&replay.requests[2], "created__lt").as_deref(),
        Some("2026-10-03T06:58:03Z"),
        "the new pass reads only what is older than the last response read"
    );
    let done = batches.last().and_then(|b| b.cursor.clone());
    assert_eq!(done.as_deref(), Some(r#"{"v":2,"done":"2026-10-03T07:15:00Z"}"#));

    // The next sync picks up 90016 and nothing else.
    let (next, error, replay) = sync_at(
        CONFIG,
        done.as_deref(),
        "field-case-08-next-sync.json",
        "2026-10-03T08:02:00Z",
    );
    assert_eq!(error, None);
    assert!(replay.unused().is_empty(), "unused: {:?}", replay.unused());
    assert_eq!(responses(&next), ["90016"]);
}

/// Field case 08-happysignals-paging.json, step 5: the count fell so the
/// page asked for is past the end (404 "Invalid page."). Not an error and
/// not the end: the response pulled forward is read by a new pass.
#[test]
fn field_case_08_a_page_gone_mid_walk_starts_a_new_pass() {
    let cursor = r#"{"v":2,"done":"2026-10-01T00:00:00Z"}"#;
    let now = "2026-10-03T07:17:00Z";
    let (batches, error, replay) = sync_at(CONFIG, Some(cursor), "field-case-08-page-gone.json", now);
    assert_eq!(error, None, "responses deleted mid-walk are not a failure");
    assert!(replay.unused().is_empty(), "unused: {:?}", replay.unused());
    assert_eq!(responses(&batches), ["90015", "90014", "90013", "90012", "90011"]);
    assert_eq!(
        batches.last().and_then(|b| b.cursor.as_deref()),
        Some(r#"{"v":2,"done":"2026-10-03T07:15:00Z"}"#)
    );
}

/// Oldest first as asked, and a response removed behind the walk pulls the
/// next one onto a page already read: the count shows it, and the new pass
/// starts at the last response read instead of page 1 of the window.
#[test]
fn a_removal_behind_an_ordered_walk_is_caught_up_from_the_last_response_read() {
    let (batches, error, replay) = sync(CONFIG, None, "removed-behind.json");
    assert_eq!(error, None);
    assert!(replay.unused().is_empty(), "unused: {:?}", replay.unused());
    assert_eq!(
        responses(&batches),
        [
            "hs-00000001",
            "hs-00000002",
            "hs-00000003",
            "hs-00000004",
            "hs-00000005"
        ]
    );
    assert_eq!(
        param(&replay.requests[2], "created__gte").as_deref(),
        Some("2026-10-01T09:30:00Z")
    );
}

#[test]
fn a_version_1_cursor_continues_from_its_watermark() {
    // Written by the previous version: the last response read was hs-5.
    let cursor = r#"{"v":1,"created":"2026-10-02T12:00:00Z","id":"hs-00000005","walk":{"from":"2026-10-02T12:00:00Z","page":2,"page_size":2}}"#;
    let (batches, error, replay) = sync(CONFIG, Some(cursor), "next-sync.json");
    assert_eq!(error, None);
    assert!(replay.unused().is_empty(), "unused: {:?}", replay.unused());
    assert_eq!(
        param(&replay.requests[0], "page").as_deref(),
        Some("1"),
        "its walk starts over"
    );
    // hs-4 and hs-5 again (the store keeps one of each), hs-6 at the same second, hs-7.
    assert_eq!(
        responses(&batches),
        ["hs-00000004", "hs-00000005", "hs-00000006", "hs-00000007"]
    );
    assert_eq!(
        batches.last().and_then(|b| b.cursor.as_deref()),
        Some(r#"{"v":2,"done":"2026-10-04T00:00:00Z"}"#)
    );

    let last = r#"{"v":2,"done":"2026-10-03T14:22:09Z"}"#;
    let (batches, error, _) = sync(CONFIG, Some(last), "nothing-new.json");
    assert_eq!(error, None);
    assert_eq!(responses(&batches), ["hs-00000007"]);
}

#[test]
fn since_starts_the_first_sync_and_an_empty_page_ends_it() {
    let config = r#"{"base_url":"https://acme.eu.happysignals.com","since":"2026-10-02T00:00:00Z"}"#;
    let (batches, error, replay) = sync(config, None, "since.json");
    assert_eq!(error, None);
    assert!(replay.unused().is_empty());
    assert_eq!(responses(&batches).len(), 2);

    let (batches, error, _) = sync(DEFAULT, None, "empty.json");
    assert_eq!(error, None);
    assert_eq!(batches.len(), 1, "an empty page ends the walk whatever meta.pages says");
    assert_eq!(
        batches[0].cursor.as_deref(),
        Some(r#"{"v":2,"done":"2026-10-04T00:00:00Z"}"#)
    );
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
fn the_csv_export_and_saved_bodies_give_the_same_records() {
    let config = config(DEFAULT);
    let csv = std::fs::read(fixture("export.csv")).expect("export");
    let from_csv = HappySignals::parse(&config, "text/csv; charset=utf-8", &csv).expect("csv parses");
    let items = std::fs::read(fixture("items.json")).expect("items");
    let from_list = HappySignals::parse(&config, "application/json", &items).expect("list parses");
    let (batches, error, _) = sync(CONFIG, None, "first-sync.json");
    assert_eq!(error, None);
    let pulled = records(&batches);
    assert_eq!(from_csv.records, pulled);
    assert_eq!(from_list.records, pulled);

    let page = serde_json::json!({"meta": {"count": 1, "page": 1, "pages": 1},
        "items": [serde_json::from_slice::<Vec<serde_json::Value>>(&items).expect("list")[0]]});
    let body = serde_json::to_vec(&page).expect("json");
    let from_page = HappySignals::parse(&config, "application/json", &body).expect("page parses");
    let first = from_page.records.first().map(|r| r.id.clone());
    assert_eq!(first.as_deref(), Some(pulled[0].id.as_str()));
    assert_eq!(from_page.records[..], pulled[..from_page.records.len()]);

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
fn a_changed_page_size_restarts_the_walk_from_what_is_done() {
    // Page 3 of a walk by 2 is not page 3 by 500: start again at page 1.
    let cursor = r#"{"v":2,"done":"2026-10-02T12:00:00Z","walk":{"from":"2026-10-02T12:00:00Z","until":"2026-10-03T00:00:00Z","end":"2026-10-03T00:00:00Z","page":3,"page_size":2}}"#;
    let (batches, error, replay) = sync(
        r#"{"base_url":"https://acme.eu.happysignals.com","page_size":500}"#,
        Some(cursor),
        "restart-walk.json",
    );
    assert_eq!(error, None);
    assert_eq!(param(&replay.requests[0], "page").as_deref(), Some("1"));
    assert!(!batches[0].more);
}

/// Newest first by `created` alone, responses of one second in ascending
/// `id` order, split across pages: each is read once, none is taken for one
/// already read.
#[test]
fn responses_of_one_second_in_any_id_order_are_each_read_once() {
    use xla_sdk::testkit::{Exchange, RecordedRequest, RecordedResponse};
    let item = |id: &str, created: &str| serde_json::json!({"id": id, "created": created, "score": 8});
    let page = |n: u32, items: Vec<serde_json::Value>| Exchange {
        request: RecordedRequest {
            method: "GET".into(),
            url: format!(
                "https://acme.eu.happysignals.com/api/v2/responses/?created__lt=2026-10-04T00:00:00Z&ordering=created,id&page={n}&page_size=2"
            ),
        },
        response: RecordedResponse {
            status: 200,
            headers: Default::default(),
            json: Some(serde_json::json!({"meta": {"count": 4, "page": n, "pages": 2}, "items": items})),
            text: None,
            bytes: None,
        },
    };
    let same = "2026-10-03T10:00:00Z";
    let replay = Replay::new(vec![
        page(1, vec![item("hs-9", "2026-10-03T11:00:00Z"), item("hs-1", same)]),
        page(2, vec![item("hs-2", same), item("hs-3", same)]),
    ])
    .expect("exchanges");
    let config = config(CONFIG);
    let (ids, replay) = testkit::with_replay(replay, || {
        let mut cursor: Option<String> = None;
        let mut ids = Vec::new();
        for _ in 0..10 {
            let batch = HappySignals::pull_at(&config, cursor.as_deref(), at(NOW)).expect("pull");
            ids.extend(responses(std::slice::from_ref(&batch)));
            cursor = batch.cursor;
            if !batch.more {
                break;
            }
        }
        ids
    });
    assert!(replay.unused().is_empty(), "unused: {:?}", replay.unused());
    assert_eq!(ids, ["hs-9", "hs-1", "hs-2", "hs-3"]);
}

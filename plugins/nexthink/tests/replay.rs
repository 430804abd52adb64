//! The connector against recorded NQL API exchanges (`tests/fixtures/`), in
//! Nexthink's wire format, driven the way the host drives it.

use nexthink::Nexthink;
use nexthink::config::Config;
use serde_json::json;
use std::collections::BTreeMap;
use xla_sdk::testkit::{self, Exchange, RecordedRequest, RecordedResponse, Replay};
use xla_sdk::{Batch, Connector, PluginError};

const INSTANCE: &str = "https://acme.api.eu.nexthink.cloud";
/// 2026-10-01T00:00:00Z.
const OCT_1: i64 = 1_790_812_800_000;
const DAY: i64 = 86_400_000;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn config(extra: &str) -> String {
    format!(r#"{{"instance_url":"{INSTANCE}","since":"2026-10-01"{extra}}}"#)
}

fn exchange(method: &str, path: &str, status: u16, headers: &[(&str, &str)], body: serde_json::Value) -> Exchange {
    let (json, text) = match body {
        serde_json::Value::String(text) => (None, Some(text)),
        other => (Some(other), None),
    };
    Exchange {
        request: RecordedRequest {
            method: method.into(),
            url: format!("{INSTANCE}{path}"),
        },
        response: RecordedResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            json,
            text,
        },
    }
}

fn pull(config_json: &str, cursor: Option<&str>, exchanges: Vec<Exchange>) -> Result<Batch, PluginError> {
    let config: Config = xla_sdk::parse_config(config_json).expect("config parses");
    let replay = Replay::new(exchanges).expect("exchanges");
    testkit::with_replay(replay, || Nexthink::pull(&config, cursor)).0
}

#[test]
fn export_mode_polls_downloads_and_maps_a_day() {
    let run = testkit::run_pull::<Nexthink>(&config(r#","until":"2026-10-02""#), fixture("export-sync.json"))
        .expect("fixtures");
    assert!(run.error.is_none(), "{:?}", run.error);
    assert!(run.unused.is_empty(), "{:?}", run.unused);
    assert_eq!(run.batches.len(), 1);
    assert!(!run.batches[0].more);
    assert_eq!(run.batches[0].cursor.as_deref(), Some(r#"{"v":1,"next":"2026-10-02"}"#));
    let all: Vec<_> = run.observations().collect();
    assert_eq!(all.len(), 14, "seven metrics for each of two device-days");
    let crashes = all
        .iter()
        .find(|o| o.metric == "system_crashes" && o.id == "LPT-000002/2026-10-01")
        .expect("crashes");
    assert_eq!(crashes.value, 2.0);
    assert_eq!(crashes.at, OCT_1);
    assert_eq!(crashes.dimension("device_model"), Some("Surface Laptop 5"));
    assert_eq!(crashes.dimension("country"), Some("Korea, Republic of"));
    assert_eq!(crashes.dimension("device"), Some("LPT-000002"));
    let logon = all
        .iter()
        .find(|o| o.metric == "logon_duration_seconds" && o.id == "LPT-000002/2026-10-01")
        .expect("logon");
    assert_eq!(logon.value, 25.0);
}

#[test]
fn execute_mode_reads_day_by_day_and_stops_at_the_first_empty_day() {
    let run =
        testkit::run_pull::<Nexthink>(&config(r#","mode":"execute""#), fixture("execute-sync.json")).expect("fixtures");
    assert!(run.error.is_none(), "{:?}", run.error);
    assert!(run.unused.is_empty(), "{:?}", run.unused);
    let more: Vec<bool> = run.batches.iter().map(|b| b.more).collect();
    assert_eq!(more, [true, true, false]);
    // The empty day is asked for again next time.
    assert_eq!(run.batches[2].cursor.as_deref(), Some(r#"{"v":1,"next":"2026-10-03"}"#));
    assert_eq!(run.observations().count(), 3 * 7);
    let day2 = run
        .observations()
        .find(|o| o.id == "LPT-000001/2026-10-02")
        .expect("day 2");
    assert_eq!(day2.at, OCT_1 + DAY);
}

#[test]
fn an_execute_answer_at_the_cap_asks_for_export_mode() {
    let capped = json!({"queryId": "#device_daily_dex", "executedQuery": "devices | limit 1000", "rows": 1000,
                        "headers": ["device.name", "date", "dex.score"], "data": [["LPT-1", "2026-10-01", 80]]});
    let err = pull(
        &config(r#","mode":"execute""#),
        None,
        vec![exchange("POST", "/api/v1/nql/execute", 200, &[], capped)],
    )
    .expect_err("capped");
    let PluginError::Permanent(message) = err else {
        panic!("Permanent, got {err:?}")
    };
    assert!(message.contains("export"), "{message}");
}

#[test]
fn statuses_and_bodies_map_to_errors_the_engine_acts_on() {
    let execute = |status: u16, headers: &[(&str, &str)], body: serde_json::Value| {
        pull(
            &config(r#","mode":"execute""#),
            None,
            vec![exchange("POST", "/api/v1/nql/execute", status, headers, body)],
        )
    };
    let nexthink_error = |m: &str, c: &str| json!({"message": m, "code": c, "source": "nql-api"});
    assert!(matches!(
        execute(401, &[], nexthink_error("Unauthorized", "401")),
        Err(PluginError::Auth(_))
    ));
    assert_eq!(
        execute(
            429,
            &[("retry-after", "12")],
            nexthink_error("Too many requests", "429")
        ),
        Err(PluginError::RateLimited(12))
    );
    assert!(matches!(
        execute(503, &[], json!("upstream down")),
        Err(PluginError::Transient(_))
    ));
    assert!(matches!(
        execute(200, &[], json!("{\"data\": [[")),
        Err(PluginError::Transient(_))
    ));
    let Err(PluginError::Permanent(m)) = execute(
        404,
        &[],
        nexthink_error("The query #device_daily_dex does not exist", "404"),
    ) else {
        panic!("404 is permanent")
    };
    assert!(m.contains("does not exist") && m.contains("NQL API queries"), "{m}");
    let bad =
        json!({"rows": 1, "headers": ["device.name", "date", "dex.score"], "data": [["LPT-9", "2026-10-01", "n/a"]]});
    let Err(PluginError::BadData(m)) = execute(200, &[], bad) else {
        panic!("BadData")
    };
    assert!(m.contains("LPT-9/2026-10-01") && m.contains("dex.score"), "{m}");
}

#[test]
fn exports_refuse_offsite_files_and_cut_files_and_give_up_after_bounded_polls() {
    let start = exchange("POST", "/api/v1/nql/export", 200, &[], json!({"exportId": "e1"}));
    let done = |url: &str| {
        exchange(
            "GET",
            "/api/v1/nql/status/e1",
            200,
            &[],
            json!({"status": "COMPLETED", "resultsFileUrl": url}),
        )
    };
    let offsite = pull(
        &config(""),
        None,
        vec![start.clone(), done("https://bucket.s3.amazonaws.com/e1.csv")],
    );
    assert!(matches!(offsite, Err(PluginError::Permanent(m)) if m.contains("not on the instance origin")));

    let cut = exchange(
        "GET",
        "/files/e1.csv",
        200,
        &[],
        json!("device.name,date,dex.score\nLPT-1,2026-10-01,8"),
    );
    let truncated = pull(&config(""), None, vec![start.clone(), done("/files/e1.csv"), cut]);
    assert!(matches!(truncated, Err(PluginError::Transient(m)) if m.contains("cut short")));

    let mut slow = vec![start];
    slow.extend((0..nexthink::nql::MAX_POLLS).map(|_| {
        exchange(
            "GET",
            "/api/v1/nql/status/e1",
            200,
            &[],
            json!({"status": "IN_PROGRESS"}),
        )
    }));
    assert!(matches!(pull(&config(""), None, slow), Err(PluginError::Transient(m)) if m.contains("status polls")));
}

#[test]
fn until_ends_the_sync_and_parse_reads_saved_results() {
    let done = pull(
        &config(r#","until":"2026-10-03""#),
        Some(r#"{"v":1,"next":"2026-10-03"}"#),
        Vec::new(),
    )
    .expect("nothing to do");
    assert!(!done.more && done.observations.is_empty());

    let config: Config = xla_sdk::parse_config(&config("")).expect("config");
    let csv = b"device.name,date,dex.score,system_crashes\nLPT-1,2026-10-01,71.5,1";
    let from_csv = Nexthink::parse(&config, "text/csv; charset=utf-8", csv).expect("csv");
    assert_eq!(from_csv.len(), 2);
    let v2 = json!({"executionDateTime": "2026-10-02T01:00:00Z", "rows": 1,
                    "data": [{"device.name": "LPT-1", "date": "2026-10-01", "dex.score": 71.5, "system_crashes": 1}]});
    let from_v2 = Nexthink::parse(&config, "application/json", v2.to_string().as_bytes()).expect("v2");
    assert_eq!(from_csv, from_v2);
    assert!(matches!(
        Nexthink::parse(&config, "text/html", b"<p>"),
        Err(PluginError::BadData(_))
    ));
}

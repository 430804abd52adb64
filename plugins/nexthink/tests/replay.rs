//! The connector against recorded NQL API exchanges (`tests/fixtures/`), in
//! Nexthink's wire format, driven the way the host drives it.

use nexthink::Nexthink;
use nexthink::config::Config;
use nexthink::cursor::{Cursor, PendingExport};
use nexthink::export::{self, MAX_EXPORT_WAIT_MS, MAX_FAILED_EXPORTS, POLLS_PER_PULL};
use serde_json::json;
use std::cell::Cell;
use std::collections::BTreeMap;
use xla_sdk::testkit::{self, Exchange, RecordedRequest, RecordedResponse, Replay};
use xla_sdk::{Batch, Connector, Observation, PluginError, Record};

const INSTANCE: &str = "https://acme.api.eu.nexthink.cloud";
const BUCKET: &str = "https://nexthink-exports.s3.eu-west-1.amazonaws.com";
/// 2026-10-01T00:00:00Z.
const OCT_1: i64 = 1_790_812_800_000;
const DAY: i64 = 86_400_000;
/// "Now" in these tests: 2026-10-08T09:30:00Z, so today is 2026-10-08.
const NOW: i64 = OCT_1 + 7 * DAY + 34_200_000;
const CSV: &str = "device.name,date,dex.score,system_crashes\nLPT-1,2026-10-01,71.5,1\n";

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn config(extra: &str) -> String {
    format!(r#"{{"instance_url":"{INSTANCE}","since":"2026-10-01"{extra}}}"#)
}

fn exchange(method: &str, path: &str, status: u16, headers: &[(&str, &str)], body: serde_json::Value) -> Exchange {
    exchange_at(method, &format!("{INSTANCE}{path}"), status, headers, body)
}

fn exchange_at(method: &str, url: &str, status: u16, headers: &[(&str, &str)], body: serde_json::Value) -> Exchange {
    let (json, text) = match body {
        serde_json::Value::String(text) => (None, Some(text)),
        other => (Some(other), None),
    };
    let bytes = None;
    Exchange {
        request: RecordedRequest {
            method: method.into(),
            url: url.into(),
        },
        response: RecordedResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            json,
            text,
            bytes,
        },
    }
}

/// One pull at [`NOW`]; every exchange must be used.
fn pull(config_json: &str, cursor: Option<&str>, exchanges: Vec<Exchange>) -> Result<Batch, PluginError> {
    let config: Config = xla_sdk::parse_config(config_json).expect("config parses");
    let replay = Replay::new(exchanges).expect("exchanges");
    let (result, replay) = testkit::with_replay(replay, || Nexthink::pull_at(&config, cursor, NOW));
    assert!(replay.unused().is_empty(), "unused: {:?}", replay.unused());
    result
}

/// Pulls at [`NOW`] from `cursor` while an export is in flight (the first
/// pull only submits it); every exchange must be used. The last pull's result.
fn pull_through(config_json: &str, cursor: Option<&str>, exchanges: Vec<Exchange>) -> Result<Batch, PluginError> {
    let config: Config = xla_sdk::parse_config(config_json).expect("config parses");
    let replay = Replay::new(exchanges).expect("exchanges");
    let (result, replay) = testkit::with_replay(replay, || {
        let mut cursor = cursor.map(String::from);
        for _ in 0..20 {
            let batch = Nexthink::pull_at(&config, cursor.as_deref(), NOW)?;
            if !in_flight(&config, batch.cursor.as_deref()) {
                return Ok(batch);
            }
            cursor = batch.cursor;
        }
        panic!("the export never completed")
    });
    assert!(replay.unused().is_empty(), "unused: {:?}", replay.unused());
    result
}

fn in_flight(config: &Config, cursor: Option<&str>) -> bool {
    Cursor::read(config, cursor).is_ok_and(|p| p.export.is_some())
}

fn observations(batch: &Batch) -> Vec<Observation> {
    batch.changes.records.iter().flat_map(Record::observations).collect()
}

/// Pulls at [`NOW`] from the start until no more follows, answering from a fixture file.
fn sync(config_json: &str, fixture_name: &str) -> (Vec<Batch>, Option<PluginError>) {
    let config: Config = xla_sdk::parse_config(config_json).expect("config parses");
    let replay = Replay::from_file(fixture(fixture_name)).expect("fixtures");
    let (outcome, replay) = testkit::with_replay(replay, || {
        let (mut batches, mut cursor) = (Vec::new(), None::<String>);
        loop {
            match Nexthink::pull_at(&config, cursor.as_deref(), NOW) {
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
    });
    assert!(replay.unused().is_empty(), "unused: {:?}", replay.unused());
    outcome
}

fn status(id: &str, body: serde_json::Value) -> Exchange {
    exchange("GET", &format!("/api/v1/nql/status/{id}"), 200, &[], body)
}

fn running(id: &str) -> Exchange {
    status(id, json!({"status": "IN_PROGRESS"}))
}

fn submitted(id: &str) -> Exchange {
    exchange("POST", "/api/v1/nql/export", 200, &[], json!({"exportId": id}))
}

fn completed(id: &str, url: &str) -> Exchange {
    status(id, json!({"status": "COMPLETED", "resultsFileUrl": url}))
}

fn pending(id: &str, polls: u32, started_ms: i64) -> PendingExport {
    PendingExport {
        id: id.into(),
        from: "2026-10-01".into(),
        to: "2026-10-02".into(),
        polls,
        started_ms,
        failures: 0,
    }
}

#[test]
fn export_mode_polls_downloads_and_maps_a_day() {
    let (batches, error) = sync(&config(r#","until":"2026-10-02""#), "export-sync.json");
    assert!(error.is_none(), "{error:?}");
    assert!(!batches[1].more);
    assert_eq!(batches[1].cursor.as_deref(), Some(r#"{"v":2,"next":"2026-10-02"}"#));
    assert_eq!(batches.len(), 2, "submitted, then polled to completion");
    assert!(batches[1].changes.records.len() == 2, "one record per device-day");
    let all: Vec<Observation> = batches.iter().flat_map(observations).collect();
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
fn execute_mode_reads_day_by_day_up_to_until() {
    let (batches, error) = sync(
        &config(r#","mode":"execute","until":"2026-10-04""#),
        "execute-sync.json",
    );
    assert!(error.is_none(), "{error:?}");
    let more: Vec<bool> = batches.iter().map(|b| b.more).collect();
    assert_eq!(more, [true, true, false]);
    // The empty last day is stepped over like any other.
    assert!(batches[2].changes.records.is_empty());
    assert_eq!(batches[2].cursor.as_deref(), Some(r#"{"v":2,"next":"2026-10-04"}"#));
    let all: Vec<Observation> = batches.iter().flat_map(observations).collect();
    assert_eq!(all.len(), 3 * 7);
    let day2 = all.iter().find(|o| o.id == "LPT-000001/2026-10-02").expect("day 2");
    assert_eq!(day2.at, OCT_1 + DAY);
}

#[test]
fn without_until_only_closed_days_are_read_and_empty_ones_stepped_over() {
    let empty = || {
        exchange(
            "POST",
            "/api/v1/nql/execute",
            200,
            &[],
            json!({"rows": 0, "headers": ["device.name", "date", "dex.score"], "data": []}),
        )
    };
    let one = |day: &str| {
        exchange(
            "POST",
            "/api/v1/nql/execute",
            200,
            &[],
            json!({"rows": 1, "headers": ["device.name", "date", "dex.score"], "data": [["LPT-1", day, 70]]}),
        )
    };
    let execute = config(r#","mode":"execute","days_per_pull":3"#);
    // From 2026-10-01 to today (2026-10-08), exclusive: 10-01..04 (empty), 10-04..07, then 10-07 alone.
    let first = pull(&execute, None, vec![empty()]).expect("empty range");
    assert!(first.more && first.changes.records.is_empty());
    assert_eq!(first.cursor.as_deref(), Some(r#"{"v":2,"next":"2026-10-04"}"#));
    let second = pull(&execute, first.cursor.as_deref(), vec![one("2026-10-05")]).expect("a day");
    assert!(second.more && observations(&second).len() == 1);
    let third = pull(&execute, second.cursor.as_deref(), vec![one("2026-10-07")]).expect("yesterday");
    assert!(!third.more, "the sync ends at today");
    assert_eq!(third.cursor.as_deref(), Some(r#"{"v":2,"next":"2026-10-08"}"#));
    // Today is not read until it has closed.
    let today = pull(&execute, third.cursor.as_deref(), Vec::new()).expect("nothing yet");
    assert!(!today.more && today.changes.records.is_empty());
    assert_eq!(today.cursor, third.cursor);
    // An `until` past today stops at today too; the next sync goes on from there.
    let later = config(r#","mode":"execute","until":"2026-12-01""#);
    let capped = pull(&later, Some(r#"{"v":1,"next":"2026-10-07"}"#), vec![one("2026-10-07")]).expect("yesterday");
    assert!(!capped.more);
    assert_eq!(capped.cursor.as_deref(), Some(r#"{"v":2,"next":"2026-10-08"}"#));
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
    // The credential is known but lacks the NQL permission: only the
    // operator can grant it, so the run ends as for a refused credential.
    let Err(PluginError::Auth(m)) = execute(403, &[], nexthink_error("Forbidden", "403")) else {
        panic!("403 is auth")
    };
    assert!(
        m.contains("Forbidden (code 403)") && m.contains("permission to run NQL queries"),
        "{m}"
    );
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
fn exports_refuse_offsite_files_and_cut_files() {
    let offsite = pull_through(
        &config(""),
        None,
        vec![
            submitted("e1"),
            completed("e1", &format!("{BUCKET}/e1.csv?X-Amz-Signature=abc")),
        ],
    );
    let Err(PluginError::Permanent(m)) = offsite else {
        panic!("Permanent, got {offsite:?}")
    };
    assert!(
        m.contains("`results_origin`") && m.contains(BUCKET) && m.contains(INSTANCE),
        "{m}"
    );

    let cut = exchange(
        "GET",
        "/files/e1.csv",
        200,
        &[],
        json!("device.name,date,dex.score\nLPT-1,2026-10-01,8"),
    );
    let truncated = pull_through(
        &config(""),
        None,
        vec![submitted("e1"), completed("e1", "/files/e1.csv"), cut],
    );
    assert!(matches!(truncated, Err(PluginError::Transient(m)) if m.contains("cut short")));
}

#[test]
fn a_results_file_on_the_results_origin_is_downloaded() {
    let signed = format!("{BUCKET}/exports/e1.csv?X-Amz-Expires=900&X-Amz-Signature=9f86d081");
    let batch = pull_through(
        &config(&format!(r#","results_origin":"{BUCKET}""#)),
        None,
        vec![
            submitted("e1"),
            completed("e1", &signed),
            exchange_at("GET", &signed, 200, &[("content-type", "text/csv")], json!(CSV)),
        ],
    )
    .expect("downloaded");
    assert_eq!(observations(&batch).len(), 2);
}

#[test]
fn a_slow_export_waits_in_the_cursor_and_the_next_pull_polls_it_again() {
    let submit = pull(&config(""), None, vec![submitted("e1")]).expect("submitted");
    assert!(submit.more && submit.changes.records.is_empty());
    let first = (0..POLLS_PER_PULL).map(|_| running("e1")).collect();
    let waiting = pull(&config(""), submit.cursor.as_deref(), first).expect("still running is no error");
    assert!(waiting.more && waiting.changes.records.is_empty());
    let cursor = waiting.cursor.expect("a cursor");
    let position = Cursor::read(&xla_sdk::parse_config(&config("")).expect("config"), Some(&cursor)).expect("cursor");
    assert_eq!(position.export, Some(pending("e1", POLLS_PER_PULL, NOW)));

    // Still running: the cursor moves with the poll count, so the engine sees progress.
    let again = pull(
        &config(""),
        Some(&cursor),
        (0..POLLS_PER_PULL).map(|_| running("e1")).collect(),
    )
    .expect("still running");
    assert!(again.more && again.cursor.as_deref() != Some(cursor.as_str()));

    // No second export: the next pull polls e1, which completes.
    let done = pull(
        &config(""),
        again.cursor.as_deref(),
        vec![
            running("e1"),
            completed("e1", "/results/e1.csv"),
            exchange("GET", "/results/e1.csv", 200, &[], json!(CSV)),
        ],
    )
    .expect("completed");
    assert_eq!(observations(&done).len(), 2);
    assert_eq!(done.cursor.as_deref(), Some(r#"{"v":2,"next":"2026-10-02"}"#));
}

#[test]
fn an_export_past_its_bound_gives_up_and_the_retry_exports_again() {
    let config_json = config("");
    let config: Config = xla_sdk::parse_config(&config_json).expect("config");
    let started = NOW - MAX_EXPORT_WAIT_MS + 60_000;
    // The clock passes the bound while this pull polls.
    let calls = Cell::new(0);
    let clock = || {
        calls.set(calls.get() + 1);
        if calls.get() == 1 { NOW } else { NOW + 120_000 }
    };
    let from = xla_sdk::time::parse_full_date("2026-10-01").expect("date");
    let replay = Replay::new((0..POLLS_PER_PULL).map(|_| running("e1")).collect()).expect("exchanges");
    let (outcome, _) = testkit::with_replay(replay, || {
        export::advance(&config, from, from + 1, Some(pending("e1", 30, started)), &clock)
    });
    let Err(PluginError::Transient(m)) = outcome else {
        panic!("Transient, got {outcome:?}")
    };
    assert!(
        m.contains("did not complete within 20 minutes") && m.contains("new export"),
        "{m}"
    );

    // The retry gets the same cursor; the export in it is too old, so a new one starts.
    let cursor = Cursor::write(from, Some(pending("e1", 30, NOW - MAX_EXPORT_WAIT_MS))).expect("writes");
    let retry = pull_through(
        &config_json,
        Some(&cursor),
        vec![
            submitted("e2"),
            completed("e2", "/results/e2.csv"),
            exchange("GET", "/results/e2.csv", 200, &[], json!(CSV)),
        ],
    )
    .expect("a new export");
    assert_eq!(observations(&retry).len(), 2);
}

#[test]
fn a_failed_export_is_replaced_and_the_replacement_kept_in_the_cursor() {
    let failed = |id: &str| status(id, json!({"status": "ERROR", "errorDescription": "Query timed out"}));
    // Failed since the last pull: replaced at once, or the retry would find it failed again.
    let cursor = Cursor::write(
        xla_sdk::time::parse_full_date("2026-10-01").expect("date"),
        Some(pending("e1", 4, NOW - 5_000)),
    )
    .expect("writes");
    let replaced = pull_through(
        &config(""),
        Some(&cursor),
        vec![
            failed("e1"),
            submitted("e2"),
            completed("e2", "/results/e2.csv"),
            exchange("GET", "/results/e2.csv", 200, &[], json!(CSV)),
        ],
    )
    .expect("replaced");
    assert_eq!(observations(&replaced).len(), 2);
    // Likewise an export the instance no longer knows.
    let gone = json!({"message": "The export e1 does not exist", "code": "404", "source": "nql-api"});
    let answers = vec![
        exchange("GET", "/api/v1/nql/status/e1", 404, &[], gone),
        submitted("e2"),
    ];
    let waiting = pull(&config(""), Some(&cursor), answers).expect("replaced, not polled yet");
    let parsed: Config = xla_sdk::parse_config(&config("")).expect("config");
    let position = Cursor::read(&parsed, waiting.cursor.as_deref()).expect("cursor");
    // The replacement keeps the range's start, which bounds the whole wait;
    // a 404 is not counted as the query failing.
    assert_eq!(position.export, Some(pending("e2", 0, NOW - 5_000)));
    // A failure is counted in the cursor.
    let answers = vec![failed("e1"), submitted("e2")];
    let waiting = pull(&config(""), Some(&cursor), answers).expect("replaced, not polled yet");
    let position = Cursor::read(&parsed, waiting.cursor.as_deref()).expect("cursor");
    let counted = PendingExport {
        failures: 1,
        ..pending("e2", 0, NOW - 5_000)
    };
    assert_eq!(position.export, Some(counted));
}

/// A range whose exports the instance keeps failing fails for good, with
/// the instance's reason, instead of spending the daily export allowance.
#[test]
fn a_range_failing_again_and_again_fails_for_good_with_the_instances_reason() {
    let twice = PendingExport {
        failures: MAX_FAILED_EXPORTS - 1,
        ..pending("e3", 2, NOW - 5_000)
    };
    let cursor =
        Cursor::write(xla_sdk::time::parse_full_date("2026-10-01").expect("date"), Some(twice)).expect("writes");
    let failed = status(
        "e3",
        json!({"status": "ERROR", "errorDescription": "Unknown field device.foo"}),
    );
    let outcome = pull(&config(""), Some(&cursor), vec![failed]);
    let Err(PluginError::Permanent(message)) = outcome else {
        panic!("Permanent, got {outcome:?}")
    };
    assert!(message.contains("Unknown field device.foo"), "{message}");
    assert!(message.contains("3rd failure"), "{message}");
}

/// Field case 12-nexthink-export-partial.json: the export is in the cursor
/// before its first poll, so a failed poll (a 5xx, the daily limit's 429)
/// is retried on the same export; a 206 status imports the rows, marks the
/// day partial with the reason, and keeps the day to read again, which a
/// later full read closes. The old connector closed the day for good and
/// submitted a new export on every retry.
#[test]
fn field_case_12_a_truncated_export_is_imported_marked_partial_and_read_again() {
    let id = "4b7f2c1e-9d3a-4e8b-a1f0-6c5d2e7b9a31";
    let signed = format!("{BUCKET}/acme/{id}.csv.gz?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=0f3c9e");
    // The field case's file, gzip-compressed as the export asked.
    let file = "device.name,date,dex_score,system_crashes\nLAP-00001,2026-10-02,71.4,0\nLAP-00002,2026-10-02,58.9,2\nLAP-00003,2026-10-02,,0\n";
    let gzipped = {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(file.as_bytes()).expect("gzip");
        encoder.finish().expect("gzip")
    };
    let mut download = exchange_at(
        "GET",
        &signed,
        200,
        &[("content-type", "application/octet-stream")],
        json!(""),
    );
    download.response.text = None;
    download.response.bytes = Some(gzipped);
    let config_json = config(&format!(r#","results_origin":"{BUCKET}""#));
    let config: Config = xla_sdk::parse_config(&config_json).expect("config");
    let day2 = r#"{"v":2,"next":"2026-10-02"}"#;

    let submitted_only = pull(&config_json, Some(day2), vec![submitted(id)]).expect("submitted");
    let in_cursor = Cursor::read(&config, submitted_only.cursor.as_deref()).expect("cursor");
    assert_eq!(in_cursor.export.as_ref().map(|e| e.id.as_str()), Some(id));

    // The poll fails (the instance's daily limit): the error leaves the committed cursor as it was.
    let limit = json!({"message": "Daily limit reached", "code": "429", "source": "nql-api"});
    let throttled = pull(
        &config_json,
        submitted_only.cursor.as_deref(),
        vec![status_answer(id, 429, &[("retry-after", "30")], limit)],
    );
    assert_eq!(throttled, Err(PluginError::RateLimited(30)));
    // The retry polls the same export: no second submit in the exchanges.
    let partial = pull(
        &config_json,
        submitted_only.cursor.as_deref(),
        vec![
            status(id, json!({"status": "IN_PROGRESS"})),
            status_answer(
                id,
                206,
                &[],
                json!({"status": "COMPLETED", "resultsFileUrl": signed, "errorDescription": null}),
            ),
            download,
        ],
    )
    .expect("truncated, imported");
    let obs = observations(&partial);
    assert_eq!(obs.len(), 5, "LAP-00003 has no DEX value: no value, not 0");
    assert_eq!(partial.changes.records.len(), 3);
    let day = xla_sdk::time::parse_full_date("2026-10-02").expect("date") * DAY;
    let [gap] = &partial.changes.partial[..] else {
        panic!("one gap: {:?}", partial.changes.partial)
    };
    assert_eq!((gap.span.start, gap.span.end), (day, day + DAY));
    assert!(
        gap.reason.contains("licence") && gap.reason.contains(id),
        "{}",
        gap.reason
    );
    assert!(partial.changes.complete.is_empty());
    let position = Cursor::read(&config, partial.cursor.as_deref()).expect("cursor");
    assert_eq!(
        position.next,
        xla_sdk::time::parse_full_date("2026-10-03").expect("date"),
        "the sync goes on"
    );
    assert_eq!(position.recheck.len(), 1, "but the day is kept to read again");
    assert_eq!(position.recheck[0].from, "2026-10-02");
    assert!(position.recheck[0].due_ms > NOW, "later, not in this sync");

    // Later (past its due time, all other days read): read again, in full this time.
    let caught_up = Cursor::write_position(&nexthink::cursor::Position {
        next: xla_sdk::time::parse_full_date("2026-10-08").expect("date"),
        ..position
    })
    .expect("writes");
    let replay = Replay::new(vec![
        submitted("e9"),
        completed("e9", "/results/e9.csv"),
        exchange("GET", "/results/e9.csv", 200, &[], json!(file)),
    ])
    .expect("exchanges");
    let later = NOW + nexthink::MAX_RECHECK_WAIT_MS;
    let (reread, replay) = testkit::with_replay(replay, || {
        let first = Nexthink::pull_at(&config, Some(&caught_up), later)?;
        Nexthink::pull_at(&config, first.cursor.as_deref(), later)
    });
    assert!(replay.unused().is_empty(), "unused: {:?}", replay.unused());
    let reread = reread.expect("read again");
    assert_eq!(
        reread.changes.complete,
        [xla_sdk::Span::new(day, day + DAY)],
        "the gap closes"
    );
    assert!(reread.changes.partial.is_empty());
    let position = Cursor::read(&config, reread.cursor.as_deref()).expect("cursor");
    assert!(position.recheck.is_empty() && position.export.is_none());
}

fn status_answer(id: &str, code: u16, headers: &[(&str, &str)], body: serde_json::Value) -> Exchange {
    exchange("GET", &format!("/api/v1/nql/status/{id}"), code, headers, body)
}

/// Field case 11-nexthink-times.json: every NQL call asks for UTC, v1, v2
/// and CSV answers give the same records, and an answer in regional time is
/// refused rather than filed on the wrong day.
#[test]
fn field_case_11_utc_is_asked_for_and_every_answer_shape_agrees() {
    let config: Config = xla_sdk::parse_config(&config("")).expect("config");
    let utc = (nexthink::nql::UTC_HEADER.0.to_string(), "true".to_string());
    for request in [
        nexthink::nql::execute_request(&config, "2026-10-02", "2026-10-03").expect("execute"),
        nexthink::nql::export_request(&config, "2026-10-02", "2026-10-03").expect("export"),
        nexthink::nql::status_request(&config, "e1").expect("status"),
    ] {
        assert!(
            request.headers.contains(&utc),
            "{} {}",
            request.method.as_str(),
            request.url
        );
    }

    let case: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/field-case-11-nexthink-times.json")).expect("field case");
    let v2 = case["v2_with_utc_header"]["response"].to_string();
    let csv = case["csv_variant"]["body"].as_str().expect("csv");
    // v1's shape for the same UTC answer: headers and arrays, an object of date parts.
    let v1 = json!({"queryId": "#boot_events_by_device", "rows": 2, "headers": ["device.name", "time", "boot_duration"],
        "executionDateTime": {"year": 2026, "month": 10, "day": 3, "hour": 14, "minute": 5, "second": 9},
        "data": [["LAP-00042", "2026-10-02 22:30:00", 48.2], ["LAP-00042", "2026-10-02 21:50:00", 51.7]]});
    let from_v2 = Nexthink::parse(&config, "application/json", v2.as_bytes()).expect("v2");
    let from_csv = Nexthink::parse(&config, "text/csv", csv.as_bytes()).expect("csv");
    let from_v1 = Nexthink::parse(&config, "application/json", v1.to_string().as_bytes()).expect("v1");
    assert_eq!(from_v2, from_csv);
    assert_eq!(from_v2, from_v1);
    let got: Vec<(String, i64, Option<f64>)> = from_v2
        .records
        .iter()
        .map(|r| {
            (
                r.dimension("device").unwrap_or_default().to_string(),
                r.at,
                r.metric("boot_duration_seconds"),
            )
        })
        .collect();
    let at = |hour: i64, minute: i64| OCT_1 + DAY + (hour * 60 + minute) * 60_000;
    assert_eq!(
        got,
        [
            ("LAP-00042".to_string(), at(22, 30), Some(48.2)),
            ("LAP-00042".to_string(), at(21, 50), Some(51.7))
        ],
        "both on the UTC day 2026-10-02"
    );

    // The v1 answer of a request without the header (a proxy dropped it): regional time, refused.
    let regional = case["v1_without_utc_header"]["response"].clone();
    let now = OCT_1 + 2 * DAY + (14 * 60 + 5) * 60_000 + 30_000; // 2026-10-03T14:05:30Z
    let replay = Replay::new(vec![exchange("POST", "/api/v1/nql/execute", 200, &[], regional)]).expect("exchanges");
    let execute: Config = xla_sdk::parse_config(&self::config(r#","mode":"execute""#)).expect("config");
    let cursor = r#"{"v":2,"next":"2026-10-02"}"#;
    let (refused, _) = testkit::with_replay(replay, || Nexthink::pull_at(&execute, Some(cursor), now));
    let Err(PluginError::Permanent(m)) = refused else {
        panic!("refused, got {refused:?}")
    };
    assert!(m.contains("regional time") && m.contains("x-utc-times"), "{m}");
}

#[test]
fn until_ends_the_sync_and_parse_reads_saved_results() {
    let done = pull(
        &config(r#","until":"2026-10-03""#),
        Some(r#"{"v":1,"next":"2026-10-03"}"#),
        Vec::new(),
    )
    .expect("nothing to do");
    assert!(!done.more && done.changes.records.is_empty());

    let config: Config = xla_sdk::parse_config(&config("")).expect("config");
    let csv = b"device.name,date,dex.score,system_crashes\nLPT-1,2026-10-01,71.5,1";
    let from_csv = Nexthink::parse(&config, "text/csv; charset=utf-8", csv).expect("csv");
    assert_eq!(from_csv.records.len(), 1);
    assert_eq!(from_csv.records[0].values.len(), 2);
    let v2 = json!({"executionDateTime": "2026-10-02T01:00:00Z", "rows": 1,
                    "data": [{"device.name": "LPT-1", "date": "2026-10-01", "dex.score": 71.5, "system_crashes": 1}]});
    let from_v2 = Nexthink::parse(&config, "application/json", v2.to_string().as_bytes()).expect("v2");
    assert_eq!(from_csv, from_v2);
    assert!(matches!(
        Nexthink::parse(&config, "text/html", b"<p>"),
        Err(PluginError::BadData(_))
    ));
}

//! The connector against recorded Table API exchanges (`tests/fixtures/`),
//! in ServiceNow's wire format, driven the way the host drives it.

use servicenow::ServiceNow;
use servicenow::config::Config;
use xla_sdk::testkit::{self, Replay};
use xla_sdk::{Batch, Connector, Observation, PluginError};

const INSTANCE: &str = "https://acme.service-now.com";
const ORDER: &str = "ORDERBYsys_updated_on^ORDERBYsys_id";

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn config(json: &str) -> Config {
    xla_sdk::parse_config(json).expect("config parses")
}

/// One `pull` with `cursor`, answered from a fixture file.
fn pull_once(config_json: &str, cursor: Option<&str>, fixtures: &str) -> (Result<Batch, PluginError>, Replay) {
    let replay = Replay::from_file(fixture(fixtures)).expect("fixtures load");
    let config = config(config_json);
    testkit::with_replay(replay, || ServiceNow::pull(&config, cursor))
}

/// `(table, sysparm_query, sysparm_offset)` of a request the test kit logged.
fn request_of(logged: &str) -> (String, String, Option<String>) {
    let url = url::Url::parse(logged.trim_start_matches("GET ")).expect("logged URL");
    let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    let table = url.path().trim_start_matches("/api/now/table/").to_string();
    (
        table,
        param("sysparm_query").unwrap_or_default(),
        param("sysparm_offset"),
    )
}

fn keyset(ts: &str, sys_id: &str) -> String {
    format!("sys_updated_on={ts}^sys_id>{sys_id}^NQsys_updated_on>{ts}^{ORDER}")
}

fn find<'a>(observations: &'a [Observation], ticket: &str, metric: &str) -> &'a Observation {
    observations
        .iter()
        .find(|o| o.metric == metric && o.dimension("ticket") == Some(ticket))
        .unwrap_or_else(|| panic!("no {metric} for {ticket}"))
}

/// Unix ms of an October 2026 date-time, computed apart from the connector.
fn at(text: &str) -> i64 {
    let (date, time) = text.split_once(' ').expect("date and time");
    let n: Vec<i64> = date
        .split('-')
        .chain(time.split(':'))
        .map(|p| p.parse().expect("digits"))
        .collect();
    // October 2026 only: days since the epoch of 2026-10-01 is 20727.
    assert_eq!((n[0], n[1]), (2026, 10));
    ((20_727 + n[2] - 1) * 86_400 + n[3] * 3_600 + n[4] * 60 + n[5]) * 1_000
}

mod pull {
    use super::*;

    const CONFIG: &str = r#"{"instance_url":"https://acme.service-now.com","page_size":2}"#;

    #[test]
    fn walks_every_table_with_keysets_and_offsets() {
        let run = testkit::run_pull::<ServiceNow>(CONFIG, fixture("first-sync.json")).expect("fixtures load");
        assert_eq!(run.error, None);
        assert!(run.unused.is_empty(), "unused exchanges: {:?}", run.unused);

        let b_ts = "2026-10-01 12:00:00";
        let c_ts = "2026-10-02 10:00:00";
        let requests: Vec<_> = run.requests.iter().map(|r| request_of(r)).collect();
        let expected = [
            // First page of a table never synced: only the ORDERBYs.
            ("incident", ORDER.to_string(), None),
            // A full page with next: keyset after its last record.
            ("incident", keyset(b_ts, "1b2e4d6f8a0c4b3e9d7f2c4e6a8b0c12"), None),
            // A short page with next: keyset again.
            ("incident", keyset(c_ts, "2c3d5e7f9b1d4c4fae8a3d5f7b9c1d23"), None),
            // An empty page with next: same keyset, the next link's offset.
            (
                "incident",
                keyset(c_ts, "2c3d5e7f9b1d4c4fae8a3d5f7b9c1d23"),
                Some("2".to_string()),
            ),
            ("sc_req_item", ORDER.to_string(), None),
            (
                "sc_req_item",
                keyset("2026-10-03 11:00:00", "5f6a8b0c2e4a4f7fb1bd6a8c0e2f4a56"),
                None,
            ),
            ("task_sla", ORDER.to_string(), None),
        ];
        let expected: Vec<_> = expected.into_iter().map(|(t, q, o)| (t.to_string(), q, o)).collect();
        assert_eq!(requests, expected);

        let more: Vec<bool> = run.batches.iter().map(|b| b.more).collect();
        assert_eq!(more, [true, true, true, true, true, true, false]);
        assert_eq!(
            run.batches[2].cursor.as_deref(),
            Some(
                r#"{"v":1,"watermarks":{"incident":{"ts":"2026-10-02 10:00:00","sys_id":"2c3d5e7f9b1d4c4fae8a3d5f7b9c1d23"}},"table":"incident","offset":2,"reading":true}"#
            ),
            "an empty page with next keeps the keyset and records the offset"
        );
        assert_eq!(
            run.batches[3]
                .cursor
                .as_deref()
                .map(|c| c.contains(r#""table":"sc_req_item""#)),
            Some(true),
            "the finished table hands over to the next one"
        );
        // The sync is over, but the watermarks stay for the next one.
        assert_eq!(
            run.batches[6].cursor.as_deref(),
            Some(concat!(
                r#"{"v":1,"watermarks":{"#,
                r#""incident":{"ts":"2026-10-03 08:00:00","sys_id":"3d4e6f8a0c2e4d5fbf9b4e6a8c0d2e34"},"#,
                r#""sc_req_item":{"ts":"2026-10-03 11:00:00","sys_id":"5f6a8b0c2e4a4f7fb1bd6a8c0e2f4a56"},"#,
                r#""task_sla":{"ts":"2026-10-03 10:00:03","sys_id":"7b8c0d2e4a6c4b9fd3df8c0e2a4b6c78"}}}"#
            ))
        );
    }

    #[test]
    fn maps_resolutions_requests_and_slas() {
        let run = testkit::run_pull::<ServiceNow>(CONFIG, fixture("first-sync.json")).expect("fixtures load");
        let obs: Vec<Observation> = run.observations().collect();
        // INC1 (5) + INC3 (5) + RITM1 (3) + two SLAs (3); the in-progress and
        // canceled incidents and the open item give no values.
        assert_eq!(obs.len(), 16);
        assert_eq!(run.records().count(), 5, "one record per ticket or SLA");
        assert!(obs.iter().all(|o| o.layer == xla_sdk::Layer::Operational));
        for absent in ["INC0010002", "INC0010004", "RITM0010002"] {
            assert!(obs.iter().all(|o| o.dimension("ticket") != Some(absent)), "{absent}");
        }

        let inc1 = find(&obs, "INC0010001", "resolution_hours");
        assert_eq!(inc1.value, 3.5);
        assert_eq!(inc1.id, "0a1f3c5e7b9d4e2f8a6c1b3d5e7f9a01");
        assert_eq!(inc1.at, at("2026-10-01 11:30:00"));
        assert_eq!(
            inc1.dimensions,
            [
                ("ticket", "INC0010001"),
                ("ticket_type", "incident"),
                ("service", "Email"),
                ("assignment_group", "Service Desk"),
                ("category", "software"),
                ("priority", "P1"),
                ("channel", "self-service"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert_eq!(find(&obs, "INC0010001", "first_contact_resolution").value, 1.0);
        assert_eq!(find(&obs, "INC0010001", "reopened").value, 0.0);
        assert_eq!(find(&obs, "INC0010001", "ticket_resolved").value, 1.0);

        let inc3 = find(&obs, "INC0010003", "resolution_hours");
        assert_eq!(inc3.value, 24.0);
        assert_eq!(inc3.dimension("service"), None, "an empty business service is left out");
        assert_eq!(inc3.dimension("priority"), Some("P3"));
        assert_eq!(inc3.dimension("assignment_group"), Some("Network Operations"));
        assert_eq!(find(&obs, "INC0010003", "reassignment_count").value, 2.0);
        assert_eq!(find(&obs, "INC0010003", "reopened").value, 1.0);
        assert_eq!(find(&obs, "INC0010003", "first_contact_resolution").value, 0.0);

        let ritm = find(&obs, "RITM0010001", "resolution_hours");
        assert_eq!(ritm.value, 48.0);
        assert_eq!(ritm.at, at("2026-10-03 10:00:00"));
        assert_eq!(ritm.dimension("ticket_type"), Some("request"));
        assert_eq!(ritm.dimension("category"), Some("New laptop"));
        assert_eq!(ritm.dimension("assignment_group"), Some("Hardware Fulfilment"));
        assert_eq!(find(&obs, "RITM0010001", "reassignment_count").value, 1.0);
        assert!(
            obs.iter()
                .all(|o| !(o.metric == "reopened" && o.dimension("ticket_type") == Some("request")))
        );

        let met = find(&obs, "INC0010001", "sla_breached");
        assert_eq!(met.value, 0.0);
        assert_eq!(met.id, "6a7b9c1d3f5b4a8fc2ce7b9d1f3a5b67");
        assert_eq!(met.dimension("sla"), Some("P1 resolution (4h)"));
        assert_eq!(met.dimension("ticket_type"), Some("incident"));
        assert_eq!(find(&obs, "INC0010001", "sla_business_percentage").value, 42.5);
        let breached = find(&obs, "RITM0010001", "sla_breached");
        assert_eq!(breached.value, 1.0);
        assert_eq!(breached.dimension("ticket_type"), Some("request"));
        assert_eq!(
            breached.at,
            at("2026-10-02 10:00:00"),
            "planned_end_time when end_time is empty"
        );
        assert!(
            obs.iter()
                .all(|o| !(o.metric == "sla_business_percentage" && o.dimension("ticket") == Some("RITM0010001"))),
            "an empty business_percentage emits nothing"
        );
    }

    #[test]
    fn since_is_the_first_watermark() {
        let config =
            r#"{"instance_url":"https://acme.service-now.com","tables":["incident"],"since":"2026-01-01 00:00:00"}"#;
        let (batch, replay) = pull_once(config, None, "since.json");
        let batch = batch.expect("pulls");
        assert_eq!(
            request_of(&replay.requests[0]).1,
            format!("sys_updated_on>=2026-01-01 00:00:00^{ORDER}")
        );
        assert!(!batch.more, "the only table finished");
        assert_eq!(batch.changes.value_count(), 5);
        assert!(
            batch
                .cursor
                .is_some_and(|c| c.contains(r#""ts":"2026-10-01 11:30:05""#))
        );
    }

    #[test]
    fn the_next_sync_continues_after_the_watermarks() {
        let cursor = concat!(
            r#"{"v":1,"watermarks":{"#,
            r#""incident":{"ts":"2026-10-03 08:00:00","sys_id":"3d4e6f8a0c2e4d5fbf9b4e6a8c0d2e34"},"#,
            r#""task_sla":{"ts":"2026-10-03 10:00:03","sys_id":"7b8c0d2e4a6c4b9fd3df8c0e2a4b6c78"}}}"#
        );
        // `since` only seeds tables never synced.
        let config = r#"{"instance_url":"https://acme.service-now.com","since":"2026-01-01 00:00:00"}"#;
        let (batch, replay) = pull_once(config, Some(cursor), "next-sync.json");
        let batch = batch.expect("pulls");
        // A new sync re-reads the overlap (120 s by default) before the
        // watermark: a record updated in its second after it was read is not lost.
        assert_eq!(
            request_of(&replay.requests[0]),
            (
                "incident".to_string(),
                format!("sys_updated_on>=2026-10-03 07:58:00^{ORDER}"),
                None
            )
        );
        assert!(batch.more && batch.changes.records.is_empty());
        let next = batch.cursor.expect("cursor");
        assert!(next.ends_with(r#""table":"sc_req_item"}"#), "{next}");
        assert!(next.contains(r#""task_sla":{"ts":"2026-10-03 10:00:03""#), "{next}");
    }

    #[test]
    fn a_malformed_date_names_the_record_and_field() {
        let run = testkit::run_pull::<ServiceNow>(
            r#"{"instance_url":"https://acme.service-now.com"}"#,
            fixture("bad-date.json"),
        )
        .expect("fixtures load");
        let Some(PluginError::BadData(message)) = run.error else {
            panic!("expected bad data, got {:?}", run.error)
        };
        assert!(message.contains("incident record `INC0010003`"), "{message}");
        assert!(
            message.contains("`resolved_at`") && message.contains("2026-10-32 09:00:00"),
            "{message}"
        );
        assert!(run.batches.is_empty(), "the page is not half-delivered");
    }

    #[test]
    fn rate_limit_waits_for_retry_after() {
        let run = testkit::run_pull::<ServiceNow>(
            r#"{"instance_url":"https://acme.service-now.com"}"#,
            fixture("rate-limited.json"),
        )
        .expect("fixtures load");
        assert_eq!(run.error, Some(PluginError::RateLimited(120)));
    }

    #[test]
    fn statuses_become_errors_a_user_can_act_on() {
        let pull = |tables: &str| {
            let config = format!(r#"{{"instance_url":"{INSTANCE}","tables":{tables}}}"#);
            pull_once(&config, None, "errors.json").0.expect_err("fails")
        };
        let PluginError::Auth(m) = pull(r#"["incident"]"#) else {
            panic!("401 is auth")
        };
        assert!(
            m.contains("User Not Authenticated") && m.contains("check the credential the operator granted"),
            "{m}"
        );
        // The account is known but an ACL denies it: only the operator can
        // grant the role, so the run ends as for a refused credential.
        let PluginError::Auth(m) = pull(r#"["task_sla"]"#) else {
            panic!("403 is auth")
        };
        assert!(
            m.contains("User Not Authorized") && m.contains("ACL") && m.contains("task_sla"),
            "{m}"
        );
        let PluginError::Transient(m) = pull(r#"["sc_req_item"]"#) else {
            panic!("503 is transient")
        };
        assert!(m.contains("being upgraded"), "{m}");
    }

    #[test]
    fn config_errors_name_the_field() {
        for (json, field) in [
            (
                r#"{"instance_url":"https://acme.service-now.com","page_size":0}"#,
                "page_size",
            ),
            (
                r#"{"instance_url":"https://acme.service-now.com","tables":["problem"]}"#,
                "tables[0]",
            ),
            (r#"{"instance_url":"http://acme.service-now.com"}"#, "instance_url"),
            (
                r#"{"instance_url":"https://acme.service-now.com","since":"yesterday"}"#,
                "since",
            ),
            (
                r#"{"instance_url":"https://acme.service-now.com","username":"admin"}"#,
                "username",
            ),
        ] {
            let run = testkit::run_pull::<ServiceNow>(json, fixture("since.json")).expect("fixtures load");
            let Some(PluginError::Config(message)) = run.error else {
                panic!("expected a config error for {json}, got {:?}", run.error)
            };
            assert!(message.contains(&format!("`{field}`")), "{message}");
            assert!(run.requests.is_empty(), "no request with a bad config");
        }
    }

    #[test]
    fn a_foreign_cursor_is_refused() {
        let (result, replay) = pull_once(
            r#"{"instance_url":"https://acme.service-now.com"}"#,
            Some("c2"),
            "since.json",
        );
        assert!(matches!(result, Err(PluginError::Permanent(m)) if m.contains("cursor")));
        assert!(replay.requests.is_empty());
    }
}

mod check {
    use super::*;

    fn check(config_json: &str, fixtures: &str) -> Result<(), PluginError> {
        let config = config(config_json);
        let replay = Replay::from_file(fixture(fixtures)).expect("fixtures load");
        testkit::with_replay(replay, || ServiceNow::check(&config)).0
    }

    #[test]
    fn reads_one_record_of_the_first_table() {
        assert_eq!(
            check(r#"{"instance_url":"https://acme.service-now.com"}"#, "check.json"),
            Ok(())
        );
    }

    #[test]
    fn a_hibernating_instance_is_explained() {
        let result = check(
            r#"{"instance_url":"https://acme.service-now.com","tables":["task_sla","incident"]}"#,
            "check-hibernating.json",
        );
        let Err(PluginError::Permanent(m)) = result else {
            panic!("expected a permanent error, got {result:?}")
        };
        assert!(m.contains("hibernating"), "{m}");
    }

    #[test]
    fn a_bad_config_fails_before_any_request() {
        let result = check(
            r#"{"instance_url":"https://acme.service-now.com","page_size":20000}"#,
            "check.json",
        );
        assert!(matches!(result, Err(PluginError::Config(m)) if m.contains("`page_size`")));
    }
}

mod parse {
    use super::*;

    const CONFIG: &str = r#"{"instance_url":"https://acme.service-now.com"}"#;

    #[test]
    fn a_saved_body_maps_like_a_pull() {
        let body = std::fs::read(fixture("saved-body.json")).expect("saved body");
        let obs = ServiceNow::parse(&config(CONFIG), "application/json", &body)
            .expect("parses")
            .observations();
        // INC1 (5) + INC3 (5) + the SLA (2) + RITM1 (3); INC2 is open.
        assert_eq!(obs.len(), 15);
        assert_eq!(find(&obs, "INC0010003", "resolution_hours").value, 24.0);
        assert_eq!(find(&obs, "INC0010001", "sla_business_percentage").value, 42.5);
        assert_eq!(
            find(&obs, "RITM0010001", "ticket_resolved").dimension("category"),
            Some("New laptop")
        );
    }

    #[test]
    fn the_media_type_may_name_the_table() {
        let body = br#"{"result":{"sys_id":"c0ffee","number":"REQ-77","sys_updated_on":"2026-10-03 10:00:00",
            "opened_at":"2026-10-03 08:00:00","closed_at":"2026-10-03 09:15:00","reassignment_count":"0",
            "cat_item.name":"Monitor","assignment_group.name":""}}"#;
        let config = config(CONFIG);
        let obs = ServiceNow::parse(&config, "application/json; table=sc_req_item", body)
            .expect("parses")
            .observations();
        assert_eq!(obs.len(), 3);
        assert_eq!(obs[0].value, 1.25);
        assert_eq!(obs[0].dimension("ticket_type"), Some("request"));
        let unknown =
            br#"{"result":[{"sys_id":"c0ffee","number":"CHG0000001","sys_updated_on":"2026-10-03 10:00:00"}]}"#;
        let unknown = ServiceNow::parse(&config, "application/json", unknown);
        assert!(matches!(unknown, Err(PluginError::BadData(m)) if m.contains("table=")));
    }

    #[test]
    fn error_bodies_and_other_media_types_are_refused() {
        let config = config(CONFIG);
        let error = br#"{"error":{"message":"Invalid table problemo","detail":null},"status":"failure"}"#;
        assert!(matches!(
            ServiceNow::parse(&config, "application/json", error),
            Err(PluginError::BadData(m)) if m.contains("Invalid table problemo")
        ));
        assert!(matches!(
            ServiceNow::parse(&config, "text/csv", b"a,b"),
            Err(PluginError::BadData(_))
        ));
    }
}

/// The field cases of issue 14 (`tests/fixtures/field-cases/`, copies of
/// `../shared/field-cases/`), each asserting the case's right value.
mod field_cases {
    use super::*;
    use serde_json::{Value, json};
    use std::collections::BTreeMap;
    use xla_sdk::testkit::{Exchange, RecordedRequest, RecordedResponse};
    use xla_sdk::{Record, Retraction};

    fn case(name: &str) -> String {
        std::fs::read_to_string(fixture(&format!("field-cases/{name}"))).expect("field case")
    }

    /// An absolute Table API URL with these query parameters.
    fn table_url(table_and_id: &str, params: &[(&str, &str)]) -> String {
        let mut url = url::Url::parse(&format!("{INSTANCE}/api/now/table/{table_and_id}")).expect("url");
        url.query_pairs_mut().extend_pairs(params);
        url.to_string()
    }

    /// The parameters of a sync page of `table` with `query` and `limit`.
    fn page_url(table: &str, query: &str, limit: u32) -> String {
        let fields = servicenow::config::Table::from_name(table).expect("table").fields();
        table_url(
            table,
            &[
                ("sysparm_query", query),
                ("sysparm_fields", fields),
                ("sysparm_limit", &limit.to_string()),
                ("sysparm_exclude_reference_link", "true"),
                ("sysparm_display_value", "false"),
            ],
        )
    }

    fn lookup_url(table: &str, sys_ids: &[&str], fields: &str) -> String {
        table_url(
            table,
            &[
                ("sysparm_query", &format!("sys_idIN{}", sys_ids.join(","))),
                ("sysparm_fields", &format!("sys_id,{fields}")),
                ("sysparm_limit", &sys_ids.len().to_string()),
                ("sysparm_no_count", "true"),
                ("sysparm_exclude_reference_link", "true"),
                ("sysparm_display_value", "false"),
            ],
        )
    }

    enum Body {
        Json(Value),
        Text(String),
        Empty,
    }

    fn exchange(url: String, status: u16, headers: &[(&str, &str)], body: Body) -> Exchange {
        let (json, text) = match body {
            Body::Json(v) => (Some(v), None),
            Body::Text(t) => (Some(()).and(None), Some(t)),
            Body::Empty => (None, None),
        };
        Exchange {
            request: RecordedRequest {
                method: "GET".into(),
                url,
            },
            response: RecordedResponse {
                status,
                headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                json,
                text,
                bytes: None,
            },
        }
    }

    struct Run {
        batches: Vec<Batch>,
        error: Option<PluginError>,
        requests: Vec<String>,
        unused: Vec<String>,
    }

    impl Run {
        fn records(&self) -> Vec<&Record> {
            self.batches.iter().flat_map(|b| &b.changes.records).collect()
        }

        fn retractions(&self) -> Vec<&Retraction> {
            self.batches.iter().flat_map(|b| &b.changes.retractions).collect()
        }
    }

    /// Pulls until the connector says no more follows, as the host does.
    fn run(config_json: &str, exchanges: Vec<Exchange>) -> Run {
        let replay = Replay::new(exchanges).expect("exchanges");
        let config = config(config_json);
        let ((batches, error), replay) = testkit::with_replay(replay, || {
            let mut batches = Vec::new();
            let mut cursor: Option<String> = None;
            for _ in 0..50 {
                match ServiceNow::pull(&config, cursor.as_deref()) {
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
            (batches, Some(PluginError::Permanent("no end".into())))
        });
        Run {
            batches,
            error,
            unused: replay.unused(),
            requests: replay.requests,
        }
    }

    fn limit_of(logged: &str) -> String {
        let url = url::Url::parse(logged.trim_start_matches("GET ")).expect("logged URL");
        url.query_pairs()
            .find(|(k, _)| k == "sysparm_limit")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    }

    /// A Table API body with its rows in the keyset order a sync asks for
    /// (an export lists them in any order).
    fn keyset_ordered(body: &str) -> Value {
        let mut body: Value = serde_json::from_str(body).expect("JSON");
        if let Some(rows) = body["result"].as_array_mut() {
            rows.sort_by_key(|r| {
                (
                    r["sys_updated_on"].as_str().map(String::from),
                    r["sys_id"].as_str().map(String::from),
                )
            });
        }
        body
    }

    /// field case 04-servicenow-references-without-names.json, in `parse`
    /// (no network): a display value is the name, a bare reference keeps
    /// its sys_id, an empty one is absent. Before, both dimensions vanished.
    #[test]
    fn case_04_parse_keeps_names_and_sys_ids_never_drops() {
        let body = case("04-servicenow-references-without-names.json");
        let changes = ServiceNow::parse(
            &config(r#"{"instance_url":"https://acme.service-now.com"}"#),
            "application/json",
            body.as_bytes(),
        )
        .expect("parses");
        let by_number = |n: &str| {
            changes
                .records
                .iter()
                .find(|r| r.dimension("ticket") == Some(n))
                .unwrap_or_else(|| panic!("{n}"))
        };
        let inc08 = by_number("INC0031208");
        assert_eq!(inc08.dimension("assignment_group"), Some("Service Desk"));
        assert_eq!(inc08.dimension("service"), None, "an empty reference is absent");
        let inc07 = by_number("INC0031207");
        assert_eq!(
            inc07.dimension("assignment_group"),
            Some("6f2d9a1c1b7e4c50a0d3e8b2c4f61a77")
        );
        assert_eq!(inc07.dimension("service"), Some("90c4e2b7d8a14f3e9b5a6c7d8e9f0a1b"));
        assert_eq!(inc07.metric("reassignment_count"), Some(3.0));
    }

    /// field case 04-servicenow-references-without-names.json, in a sync:
    /// the names are read from the referenced tables (one batched query
    /// each), so INC0031207 keeps its group and service by name.
    #[test]
    fn case_04_sync_resolves_names_through_the_referenced_tables() {
        let body = keyset_ordered(&case("04-servicenow-references-without-names.json"));
        let exchanges = vec![
            exchange(page_url("incident", ORDER, 1000), 200, &[], Body::Json(body)),
            exchange(
                lookup_url("cmdb_ci_service", &["90c4e2b7d8a14f3e9b5a6c7d8e9f0a1b"], "name"),
                200,
                &[],
                Body::Json(json!({"result":[{"sys_id":"90c4e2b7d8a14f3e9b5a6c7d8e9f0a1b","name":"VPN"}]})),
            ),
            exchange(
                lookup_url("sys_user_group", &["6f2d9a1c1b7e4c50a0d3e8b2c4f61a77"], "name"),
                200,
                &[],
                Body::Json(
                    json!({"result":[{"sys_id":"6f2d9a1c1b7e4c50a0d3e8b2c4f61a77","name":"Network Operations"}]}),
                ),
            ),
        ];
        let run = run(
            r#"{"instance_url":"https://acme.service-now.com","tables":["incident"]}"#,
            exchanges,
        );
        assert_eq!(run.error, None);
        assert!(run.unused.is_empty(), "{:?}", run.unused);
        let records = run.records();
        let inc07 = records
            .iter()
            .find(|r| r.dimension("ticket") == Some("INC0031207"))
            .expect("INC0031207");
        assert_eq!(inc07.dimension("assignment_group"), Some("Network Operations"));
        assert_eq!(inc07.dimension("service"), Some("VPN"));
        let inc08 = records
            .iter()
            .find(|r| r.dimension("ticket") == Some("INC0031208"))
            .expect("INC0031208");
        assert_eq!(
            inc08.dimension("assignment_group"),
            Some("Service Desk"),
            "no lookup for a display value"
        );
        assert_eq!(inc08.dimension("service"), None);
    }

    /// A referenced table the account may not read, or a record gone from
    /// it: the sys_id is kept, the sync goes on.
    #[test]
    fn case_04_sync_keeps_sys_ids_it_cannot_resolve() {
        let body = keyset_ordered(&case("04-servicenow-references-without-names.json"));
        let denied = json!({"error":{"message":"User Not Authorized","detail":"ACL Exception"},"status":"failure"});
        let exchanges = vec![
            exchange(page_url("incident", ORDER, 1000), 200, &[], Body::Json(body)),
            exchange(
                lookup_url("cmdb_ci_service", &["90c4e2b7d8a14f3e9b5a6c7d8e9f0a1b"], "name"),
                403,
                &[],
                Body::Json(denied),
            ),
            exchange(
                lookup_url("sys_user_group", &["6f2d9a1c1b7e4c50a0d3e8b2c4f61a77"], "name"),
                200,
                &[],
                Body::Json(json!({"result":[]})),
            ),
        ];
        let run = run(
            r#"{"instance_url":"https://acme.service-now.com","tables":["incident"]}"#,
            exchanges,
        );
        assert_eq!(run.error, None);
        let records = run.records();
        let inc07 = records
            .iter()
            .find(|r| r.dimension("ticket") == Some("INC0031207"))
            .expect("INC0031207");
        assert_eq!(
            inc07.dimension("assignment_group"),
            Some("6f2d9a1c1b7e4c50a0d3e8b2c4f61a77")
        );
        assert_eq!(inc07.dimension("service"), Some("90c4e2b7d8a14f3e9b5a6c7d8e9f0a1b"));
    }

    /// The bodies of field case 06-servicenow-2xx-not-a-page.http, exact bytes.
    fn case_06_bodies() -> (String, String, String) {
        let text = case("06-servicenow-2xx-not-a-page.http");
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("a body starting {prefix}"))
                .to_string()
        };
        (line(r#"{"error""#), line(r#"{"result""#), line("<html>"))
    }

    /// field case 06-servicenow-2xx-not-a-page.http: each 2xx that is not a
    /// page halves sysparm_limit and is asked for again, nothing of it
    /// stored; the smaller limit holds for the rest of the sync, which
    /// completes. Before, the error object failed every run at the same cursor.
    #[test]
    fn case_06_a_2xx_that_is_not_a_page_is_asked_again_smaller() {
        let (cancelled, spliced, html) = case_06_bodies();
        let row = |sys_id: &str, number: &str, ts: &str| {
            json!({"sys_id": sys_id, "sys_updated_on": ts, "number": number, "state": "7",
                   "opened_at": "2026-10-02 09:00:00", "resolved_at": "2026-10-02 10:00:00",
                   "reassignment_count": "0", "reopen_count": "0", "priority": "4"})
        };
        let next = format!("<{}>;rel=\"next\"", page_url("incident", ORDER, 62));
        let after = keyset("2026-10-03 02:00:01", "a1c2e3f4a5b6c7d8e9f0a1b2c3d4e5f6");
        let exchanges = vec![
            exchange(page_url("incident", ORDER, 1000), 200, &[], Body::Text(cancelled)),
            exchange(page_url("incident", ORDER, 500), 200, &[], Body::Text(spliced)),
            exchange(
                page_url("incident", ORDER, 250),
                202,
                &[("content-length", "0")],
                Body::Empty,
            ),
            exchange(
                page_url("incident", ORDER, 125),
                200,
                &[("content-type", "text/html;charset=UTF-8")],
                Body::Text(html),
            ),
            exchange(
                page_url("incident", ORDER, 62),
                200,
                &[("link", &next)],
                Body::Json(
                    json!({"result": [row("a1c2e3f4a5b6c7d8e9f0a1b2c3d4e5f6", "INC0060001", "2026-10-03 02:00:01")]}),
                ),
            ),
            exchange(
                page_url("incident", &after, 62),
                200,
                &[],
                Body::Json(
                    json!({"result": [row("b2d3f4a5b6c7d8e9f0a1b2c3d4e5f6a7", "INC0060002", "2026-10-03 02:00:01")]}),
                ),
            ),
        ];
        let run = run(
            r#"{"instance_url":"https://acme.service-now.com","tables":["incident"]}"#,
            exchanges,
        );
        assert_eq!(run.error, None, "the run completes");
        assert!(run.unused.is_empty(), "{:?}", run.unused);
        let limits: Vec<String> = run.requests.iter().map(|r| limit_of(r)).collect();
        assert_eq!(limits, ["1000", "500", "250", "125", "62", "62"]);
        assert!(
            run.batches[..4].iter().all(|b| b.changes.is_empty() && b.more),
            "nothing from a body that is not a page"
        );
        assert!(
            run.batches[0]
                .cursor
                .as_deref()
                .is_some_and(|c| c.contains(r#""limit":500"#)),
            "{:?}",
            run.batches[0].cursor
        );
        let numbers: Vec<&str> = run.records().iter().filter_map(|r| r.dimension("ticket")).collect();
        assert_eq!(
            numbers,
            ["INC0060001", "INC0060002"],
            "each once, none from the cut body"
        );
        let last = run.batches.last().and_then(|b| b.cursor.as_deref()).expect("cursor");
        assert!(
            !last.contains("limit"),
            "the next sync starts at page_size again: {last}"
        );
    }

    /// At the floor the error is transient (the host retries the pull later)
    /// and names the limit and what the instance answered.
    #[test]
    fn case_06_at_the_floor_it_is_a_transient_error() {
        let (cancelled, _, _) = case_06_bodies();
        let exchanges = vec![exchange(
            page_url("incident", ORDER, 10),
            200,
            &[],
            Body::Text(cancelled),
        )];
        let run = run(
            r#"{"instance_url":"https://acme.service-now.com","tables":["incident"],"page_size":10}"#,
            exchanges,
        );
        let Some(PluginError::Transient(m)) = run.error else {
            panic!("expected transient, got {:?}", run.error)
        };
        assert!(
            m.contains("sysparm_limit=10") && m.contains("maximum execution time"),
            "{m}"
        );
    }

    /// field case 07-servicenow-task-sla-stages.json as a sync reads it:
    /// task and SLA definition given as sys_ids, resolved through `task`
    /// and `contract_sla`.
    fn case_07_sync() -> (Run, Value) {
        let case: Value = serde_json::from_str(&case("07-servicenow-task-sla-stages.json")).expect("JSON");
        let rows = keyset_ordered(&case["task_sla"].to_string())["result"].clone();
        let tasks: BTreeMap<&str, &Value> = case["incidents"]
            .as_array()
            .expect("incidents")
            .iter()
            .map(|i| (i["sys_id"].as_str().expect("sys_id"), i))
            .collect();
        let definitions = case["sla_definitions"].as_object().expect("definitions");
        let task_ids: Vec<&str> = tasks.keys().copied().collect();
        let mut sla_ids: Vec<&str> = definitions.keys().map(String::as_str).collect();
        sla_ids.sort();
        let task_rows: Vec<Value> = tasks
            .values()
            .map(|i| json!({"sys_id": i["sys_id"], "number": i["number"], "sys_class_name": "incident"}))
            .collect();
        let sla_rows: Vec<Value> = definitions
            .iter()
            .map(|(id, name)| json!({"sys_id": id, "name": name}))
            .collect();
        let exchanges = vec![
            exchange(
                page_url("task_sla", ORDER, 1000),
                200,
                &[],
                Body::Json(json!({"result": rows})),
            ),
            exchange(
                lookup_url("contract_sla", &sla_ids, "name"),
                200,
                &[],
                Body::Json(json!({"result": sla_rows})),
            ),
            exchange(
                lookup_url("task", &task_ids, "number,sys_class_name"),
                200,
                &[],
                Body::Json(json!({"result": task_rows})),
            ),
        ];
        let run = run(
            r#"{"instance_url":"https://acme.service-now.com","tables":["task_sla"]}"#,
            exchanges,
        );
        (run, case)
    }

    /// field case 07-servicenow-task-sla-stages.json: overall compliance 25 %
    /// (1 of 4 final rows met; not 33.3 %), INC0070044 breached now, the
    /// cancelled SLA taken back (and the paused one, which has no outcome).
    #[test]
    fn case_07_sla_stages_give_25_percent_and_retract_the_cancelled() {
        let (run, _) = case_07_sync();
        assert_eq!(run.error, None);
        assert!(run.unused.is_empty(), "{:?}", run.unused);
        let records = run.records();
        let breached: Vec<f64> = records.iter().filter_map(|r| r.metric("sla_breached")).collect();
        assert_eq!(breached.len(), 4, "the four final rows");
        let compliance = 100.0 * breached.iter().filter(|b| **b == 0.0).count() as f64 / breached.len() as f64;
        assert_eq!(compliance, 25.0);
        let now = records
            .iter()
            .find(|r| r.dimension("ticket") == Some("INC0070044"))
            .expect("INC0070044 counts");
        assert_eq!(now.metric("sla_breached"), Some(1.0));
        assert_eq!(now.dimension("sla"), Some("Priority 3 resolution (3 day)"));
        assert_eq!(now.dimension("ticket_type"), Some("incident"));
        let mut retracted: Vec<&str> = run.retractions().iter().map(|r| r.id.as_str()).collect();
        retracted.sort();
        assert_eq!(
            retracted,
            ["f1a0000000000000000000000000s001", "f1a0000000000000000000000000s004"],
            "the cancelled and the paused-in-time SLAs"
        );
        let by_sla = |name: &str| -> Vec<f64> {
            records
                .iter()
                .filter(|r| r.dimension("sla") == Some(name))
                .filter_map(|r| r.metric("sla_breached"))
                .collect()
        };
        assert_eq!(
            by_sla("Priority 1 resolution (8 hour)"),
            Vec::<f64>::new(),
            "no data, not 100 %"
        );
        assert_eq!(by_sla("Priority 2 resolution (24 hour)"), [0.0]);
        assert_eq!(by_sla("Priority 2 response (1 hour)"), [1.0]);
        assert_eq!(by_sla("Priority 4 resolution (5 day, 2010 engine)"), [1.0]);
    }

    /// The same rows through `parse`: the same outcome, tickets kept as sys_ids.
    #[test]
    fn case_07_parse_gives_the_same_outcome() {
        let case: Value = serde_json::from_str(&case("07-servicenow-task-sla-stages.json")).expect("JSON");
        let body = case["task_sla"].to_string();
        let changes = ServiceNow::parse(
            &config(r#"{"instance_url":"https://acme.service-now.com"}"#),
            "application/json",
            body.as_bytes(),
        )
        .expect("parses");
        let breached: Vec<f64> = changes
            .records
            .iter()
            .filter_map(|r| r.metric("sla_breached"))
            .collect();
        assert_eq!(
            breached.iter().filter(|b| **b == 0.0).count() * 4,
            breached.len(),
            "25 % of 4"
        );
        assert!(
            changes
                .records
                .iter()
                .any(|r| r.dimension("ticket") == Some("e4a1000000000000000000000000a044")
                    && r.metric("sla_breached") == Some(1.0))
        );
        assert_eq!(changes.retractions.len(), 2);
    }
}

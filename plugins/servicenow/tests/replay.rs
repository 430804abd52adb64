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

fn find<'a>(observations: &'a [&Observation], ticket: &str, metric: &str) -> &'a Observation {
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
        let obs: Vec<&Observation> = run.observations().collect();
        // INC1 (5) + INC3 (5) + RITM1 (3) + two SLAs (3); the in-progress and
        // canceled incidents and the open item emit nothing.
        assert_eq!(obs.len(), 16);
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
        assert_eq!(batch.observations.len(), 5);
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
        assert!(batch.more && batch.observations.is_empty());
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
        let obs = ServiceNow::parse(&config(CONFIG), "application/json", &body).expect("parses");
        let obs: Vec<&Observation> = obs.iter().collect();
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
        let obs = ServiceNow::parse(&config, "application/json; table=sc_req_item", body).expect("parses");
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

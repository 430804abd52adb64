//! Contract versions: a plugin built against the frozen `xla:plugin@0.1.0`
//! (`wit/since_v0.1.0/`, with wit-bindgen alone, no SDK) loads and runs
//! unchanged through the 0.1 adapter beside the 0.2 plugins; `plugin check`
//! says which contract a plugin speaks; a manifest that names another
//! contract than the component exports is refused, naming both.

use crate::cli::xla_host;
use crate::loading::{copy_plugin, edit_manifest};
use crate::support::{connector, guests, open_store, runtime, scorer, tight_limits};
use std::sync::Arc;
use xla_host::plugins::{Pins, PluginLoadError, load_plugin};
use xla_host::runtime::{
    Aggregate, Batch, Changes, Contract, Layer, Limits, PluginError, Record, ScoreInput, SubjectRow,
};
use xla_host::store::{RunOutcome, Store};
use xla_host::sync::{self, Quiet, SyncOptions, SyncTarget};

/// The time of the v01 connector's first page (its `AT`), unix ms.
const AT: i64 = 1_760_000_000_000;
const HOUR: i64 = 3_600_000;
const CONFIG: &str = "{}";

fn ticket(id: &str, service: &str, at: i64) -> Record {
    Record::new(id, at).dim("ticket", id).dim("service", service)
}

/// The first page as the adapter reads it: consecutive observations of one
/// id, time and dimensions are one record; INC002's count sent twice in a
/// row keeps its last value; INC001's resolution corrected after INC002 is
/// a record of its own, after the first.
fn first_page() -> Vec<Record> {
    vec![
        ticket("INC001", "Email", AT)
            .value("resolution_hours", Layer::Operational, 5.5)
            .value("reassignment_count", Layer::Operational, 2.0),
        ticket("INC002", "VPN", AT)
            .value("resolution_hours", Layer::Operational, 1.0)
            .value("reassignment_count", Layer::Operational, 3.0),
        ticket("INC001", "Email", AT).value("resolution_hours", Layer::Operational, 6.0),
    ]
}

fn second_page() -> Vec<Record> {
    vec![
        ticket("INC003", "Email", AT + HOUR)
            .value("resolution_hours", Layer::Operational, 8.0)
            .value("reassignment_count", Layer::Operational, 0.0),
    ]
}

/// A stored row as the tests compare it: (id, value, at, dimensions sorted by key).
type Row = (String, f64, i64, Vec<(String, String)>);

/// What the store must hold after a full sync of the v01 connector, per
/// metric: one row per (id, metric), the last value sent winning.
fn expected_rows(metric: &str) -> Vec<Row> {
    let row = |id: &str, service: &str, value: f64, at: i64| {
        let dimensions = vec![
            ("service".to_string(), service.to_string()),
            ("ticket".to_string(), id.to_string()),
        ];
        (id.to_string(), value, at, dimensions)
    };
    match metric {
        "resolution_hours" => vec![
            row("INC001", "Email", 6.0, AT),
            row("INC002", "VPN", 1.0, AT),
            row("INC003", "Email", 8.0, AT + HOUR),
        ],
        "reassignment_count" => vec![
            row("INC001", "Email", 2.0, AT),
            row("INC002", "VPN", 3.0, AT),
            row("INC003", "Email", 0.0, AT + HOUR),
        ],
        other => panic!("the v01 connector sends no {other}"),
    }
}

async fn stored_rows(store: &Arc<dyn Store>, metric: &str) -> Vec<Row> {
    let mut rows: Vec<_> = store
        .observations("acme", metric, i64::MIN, i64::MAX)
        .await
        .expect("rows")
        .into_iter()
        .map(|r| {
            let o = r.observation;
            (o.id, o.value, o.at, o.dimensions)
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

#[tokio::test]
async fn a_0_1_connector_loads_and_describes_checks_pulls_and_parses_through_the_adapter() {
    let pre = connector(guests::V01_CONNECTOR);
    assert_eq!(pre.contract(), Contract::V0_1);
    assert_eq!(pre.contract().version(), "0.1.0");
    let mut session = pre.session(Limits::default(), None);

    let info = session.describe().await.expect("describe");
    assert_eq!((info.name.as_str(), info.version.as_str()), ("v01-connector", "0.1.0"));
    let metrics: Vec<&str> = info.metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(metrics, ["resolution_hours", "reassignment_count"]);
    assert_eq!(info.media_types, ["text/plain"]);

    session.check(CONFIG).await.expect("a JSON object is a good config");
    let error = session.check("not json").await.expect_err("refused");
    assert!(
        matches!(error.plugin_error(), Some(PluginError::Config(m)) if m.contains("JSON object")),
        "the 0.1 error case comes through as it is: {error}"
    );

    let first = session.pull(CONFIG, None).await.expect("first pull");
    let want = Batch {
        changes: Changes::records(first_page()),
        cursor: Some("page-2".into()),
        more: true,
    };
    assert_eq!(first, want, "a 0.1 batch is records, no retractions, no gaps");
    let second = session
        .pull(CONFIG, first.cursor.as_deref())
        .await
        .expect("second pull");
    let want = Batch {
        changes: Changes::records(second_page()),
        cursor: Some("end".into()),
        more: false,
    };
    assert_eq!(second, want);
    let error = session.pull(CONFIG, Some("bogus")).await.expect_err("unknown cursor");
    assert!(
        matches!(error.plugin_error(), Some(PluginError::Permanent(m)) if m.contains("bogus")),
        "{error}"
    );

    let body = b"INC009 resolution_hours 2.5\nINC009 reassignment_count 1\nINC010 resolution_hours 4\n";
    let parsed = session.parse(CONFIG, "text/plain", body).await.expect("parse");
    let record = |id: &str| Record::new(id, AT).dim("ticket", id);
    let want = Changes::records(vec![
        record("INC009")
            .value("resolution_hours", Layer::Operational, 2.5)
            .value("reassignment_count", Layer::Operational, 1.0),
        record("INC010").value("resolution_hours", Layer::Operational, 4.0),
    ]);
    assert_eq!(parsed, want);
    let error = session
        .parse(CONFIG, "text/plain", b"INC011 resolution_hours soon\n")
        .await
        .expect_err("bad data");
    assert!(
        matches!(error.plugin_error(), Some(PluginError::BadData(m)) if m.contains("line 1")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_connector_syncs_exactly_its_rows_into_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir.path().join("data"));
    let mut session = connector(guests::V01_CONNECTOR).session(Limits::default(), None);
    let target = SyncTarget {
        instance: "legacy".into(),
        tenant: "acme".into(),
        config: CONFIG.into(),
        plugin: "v01-connector".into(),
        version: "0.1.0".into(),
        sha256: "0".repeat(64),
    };
    let run = sync::run(&mut session, &store, &target, &SyncOptions::default(), &mut Quiet)
        .await
        .expect("sync");
    assert_eq!(run.outcome, RunOutcome::Completed, "{run:?}");
    assert_eq!(run.batches, 2, "{run:?}");
    assert_eq!((run.retracted, run.partial.len()), (0, 0), "0.1 has neither: {run:?}");
    assert_eq!(
        store.cursor("acme", "legacy").await.expect("cursor").as_deref(),
        Some("end")
    );
    for metric in ["resolution_hours", "reassignment_count"] {
        assert_eq!(stored_rows(&store, metric).await, expected_rows(metric), "{metric}");
    }

    // Resumed from its cursor: an empty page, nothing added or replaced.
    let again = sync::run(&mut session, &store, &target, &SyncOptions::default(), &mut Quiet)
        .await
        .expect("sync");
    assert_eq!(
        (again.outcome, again.inserted, again.replaced),
        (RunOutcome::Completed, 0, 0),
        "{again:?}"
    );
    for metric in ["resolution_hours", "reassignment_count"] {
        assert_eq!(stored_rows(&store, metric).await, expected_rows(metric), "{metric}");
    }
}

/// The real binary: `sync` through a host config naming the 0.1 plugin.
#[test]
fn xla_host_sync_of_a_0_1_connector_stores_exactly_its_rows() {
    let (dir, _wasm) = copy_plugin(guests::V01_CONNECTOR);
    let config = dir.path().join("host.toml");
    let text = format!(
        "[plugins]\ndir = {:?}\n\n[[connectors]]\nname = \"legacy\"\nplugin = \"v01-connector\"\ntenant = \"acme\"\nconfig = {{}}\n",
        dir.path().display().to_string()
    );
    std::fs::write(&config, text).expect("write config");
    let data = dir.path().join("data");
    let output = xla_host(
        &[
            "--host-config",
            config.to_str().expect("utf-8"),
            "sync",
            "legacy",
            "--data-dir",
            data.to_str().expect("utf-8"),
            "--json",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    assert_eq!(report["outcome"], "completed", "{report}");

    let store = open_store(&data);
    crate::support::block_on(async {
        for metric in ["resolution_hours", "reassignment_count"] {
            assert_eq!(stored_rows(&store, metric).await, expected_rows(metric), "{metric}");
        }
    });
}

#[test]
fn plugin_check_says_which_contract_a_plugin_speaks() {
    for (wasm, first_line) in [
        (
            guests::V01_CONNECTOR,
            "v01-connector 0.1.0 (connector, contract xla:plugin@0.1.0)",
        ),
        (
            guests::V01_SCORER,
            "v01-scorer 0.1.0 (scorer, contract xla:plugin@0.1.0)",
        ),
        (
            guests::JSON_FEED,
            "json-feed 0.1.0 (connector, contract xla:plugin@0.2.0)",
        ),
        (guests::MEAN, "mean 0.1.0 (scorer, contract xla:plugin@0.2.0)"),
    ] {
        let output = xla_host(&["plugin", "check", wasm], &[]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let text = String::from_utf8_lossy(&output.stdout);
        assert_eq!(text.lines().next(), Some(first_line), "{text}");
    }
}

/// Both directions: a 0.1 component whose manifest says 0.2, and a 0.2
/// component whose manifest says 0.1. The loader and `plugin check` refuse
/// it, naming what the manifest says and what the component exports.
#[test]
fn a_manifest_naming_another_contract_than_the_component_exports_is_refused_naming_both() {
    for (wasm, exported, declared) in [
        (guests::V01_CONNECTOR, "0.1.0", "0.2.0"),
        (guests::JSON_FEED, "0.2.0", "0.1.0"),
    ] {
        let (_dir, copy) = copy_plugin(wasm);
        edit_manifest(
            &copy,
            &format!("contract = \"{exported}\""),
            &format!("contract = \"{declared}\""),
        );
        let error = load_plugin(runtime(), &copy, &Pins::default()).err().expect("refused");
        let message = error.to_string();
        match &error {
            PluginLoadError::ContractMismatch {
                declared: d,
                exported: e,
                ..
            } => assert_eq!((d.as_str(), *e), (declared, exported), "{message}"),
            other => panic!("expected a contract mismatch, got {other}"),
        }
        let both = format!("plugin.toml says contract {declared} but the component exports contract {exported}");
        assert!(message.contains(&both), "{message}");
        assert!(
            message.contains(&format!("set `contract = \"{exported}\"`")),
            "says what to do: {message}"
        );

        let output = xla_host(&["plugin", "check", copy.to_str().expect("utf-8")], &[]);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&both), "{stderr}");
    }
}

#[tokio::test]
async fn a_0_1_scorer_scores_aggregates_and_reads_rows() {
    let pre = scorer(guests::V01_SCORER);
    assert_eq!(pre.contract(), Contract::V0_1);
    let mut session = pre.session(tight_limits());
    let info = session.describe().await.expect("describe");
    assert_eq!(
        (info.metrics.as_slice(), info.needs_rows),
        (&["resolution_hours".to_string()][..], true)
    );

    let aggregate = |group: &str, count: u64, sum: f64| Aggregate {
        metric: "resolution_hours".into(),
        layer: Layer::Operational,
        group: Some(group.into()),
        count,
        sum,
        min: 0.0,
        max: sum,
        histogram: None,
    };
    let input = ScoreInput {
        tenant: "acme".into(),
        window_start: AT,
        window_end: AT + 24 * HOUR,
        group_by: Some("service".into()),
        parameters: "{}".into(),
        aggregates: vec![aggregate("Email", 2, 14.0), aggregate("VPN", 1, 1.0)],
    };
    let rows: Vec<SubjectRow> = [("INC001", 6.0), ("INC002", 1.0), ("INC003", 8.0)]
        .into_iter()
        .map(|(key, hours)| SubjectRow {
            key: key.into(),
            dimensions: Vec::new(),
            values: vec![("resolution_hours".into(), hours)],
        })
        .collect();
    let scores = session
        .score(&input, Some(Box::new(rows.into_iter())))
        .await
        .expect("scores");
    let found: Vec<(&str, Option<&str>, f64, u64)> = scores
        .iter()
        .map(|s| (s.name.as_str(), s.group.as_deref(), s.value, s.sample_size))
        .collect();
    assert_eq!(
        found,
        [
            ("mean", Some("Email"), 7.0, 2),
            ("mean", Some("VPN"), 1.0, 1),
            ("rows", None, 3.0, 3)
        ]
    );
    let rows = scores.iter().find(|s| s.name == "rows").expect("rows score");
    assert_eq!(
        rows.detail.as_deref(),
        Some(r#"{"resolution_hours":15}"#),
        "every row, in batches"
    );
}

//! XLA scoring end to end: observations in a real store, scorer plugins in
//! the sandbox, targets with history, reports, tenant isolation, and the
//! X/O/T view.

use crate::support::{runtime, target_dir};
use std::collections::BTreeMap;
use std::sync::Arc;
use xla_host::runtime::{Layer, Limits, Observation};
use xla_host::score::{Cause, Engine, Period, ScoreError, TrendDirection, Window, XlaDefinition, load_scorers};
use xla_host::store::{CommitBatch, Provenance, Store, SubjectQuery};

const DAY: i64 = 86_400_000;

fn month(label: &str) -> Window {
    Period::Month.parse(label).expect("month")
}

fn provenance() -> Provenance {
    Provenance {
        connector: "test".into(),
        plugin: "test".into(),
        version: "0".into(),
        sha256: "0".into(),
        sync_run: 1,
    }
}

async fn commit(store: &Arc<dyn Store>, tenant: &str, observations: &[Observation]) {
    store
        .commit(CommitBatch {
            tenant: tenant.into(),
            source: "test".into(),
            provenance: provenance(),
            observations: observations.to_vec(),
            cursor: None,
            ..Default::default()
        })
        .await
        .expect("commit");
}

/// `n` resolution-hours observations of `hours` each in `label`'s month,
/// in service `service`.
fn resolutions(prefix: &str, label: &str, service: &str, hours: f64, n: usize) -> Vec<Observation> {
    let start = month(label).start;
    (0..n)
        .map(|i| {
            Observation::new(
                format!("{prefix}-{label}-{service}-{i}"),
                "resolution_hours",
                Layer::Operational,
                hours,
                start + (i as i64 % 20) * DAY + 3_600_000,
            )
            .dim("service", service)
            .dim("ticket", format!("INC{prefix}{label}{service}{i}"))
        })
        .collect()
}

fn xla(text: &str) -> XlaDefinition {
    toml::from_str(text).expect("definition parses")
}

const MEAN_RESOLUTION: &str = r#"
    id = "resolution"
    name = "Mean resolution hours"
    tenant = "acme"
    metrics = ["resolution_hours"]
    scorer = "mean"
    score = "resolution_hours"
    group_by = "service"
    period = "month"
    direction = "lower"
    targets = [{ from = 2026-01-01, value = 10.0 }, { from = 2026-03-01, value = 8.0 }]
    penalty = { per_point = 100.0, cap = 250.0 }
"#;

async fn engine(store: Arc<dyn Store>, tenants: &[(&str, &str)]) -> Engine {
    let tenants: BTreeMap<String, String> = tenants.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect();
    let scorers = load_scorers(
        runtime(),
        &target_dir().join("plugins"),
        &Default::default(),
        &tenants,
        ["mean"],
        &Limits::default(),
    )
    .await
    .expect("the mean scorer loads");
    Engine::new(store, scorers, Limits::default())
}

fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    (dir, store)
}

#[tokio::test]
async fn a_report_uses_the_periods_own_target_and_shows_delta_trend_groups_and_money() {
    let (_dir, store) = store();
    // February: 9 h on average; March: 11 h (Email 14, VPN 8).
    commit(&store, "acme", &resolutions("a", "2026-02", "Email", 9.0, 10)).await;
    commit(&store, "acme", &resolutions("a", "2026-03", "Email", 14.0, 10)).await;
    commit(&store, "acme", &resolutions("a", "2026-03", "VPN", 8.0, 10)).await;
    let engine = engine(store, &[]).await;
    let definition = xla(MEAN_RESOLUTION);

    let february = engine.report(&definition, month("2026-02")).await.expect("report");
    assert_eq!(february.value, Some(9.0));
    assert_eq!(february.target.value, Some(10.0), "February's target is January's 10 h");
    assert_eq!(february.met, Some(true));

    let march = engine.report(&definition, month("2026-03")).await.expect("report");
    assert_eq!(march.value, Some(11.0));
    assert_eq!(march.sample_size, 20);
    assert_eq!(march.target.value, Some(8.0), "March's report uses March's target");
    assert_eq!(march.met, Some(false));
    assert_eq!(march.margin, Some(-3.0));
    assert_eq!(march.previous, Some(9.0));
    assert_eq!(march.delta, Some(2.0));
    assert_eq!(
        march.trend_direction,
        TrendDirection::Declining,
        "lower is better and it rose"
    );
    let trend: Vec<(&str, Option<f64>)> = march.trend.iter().map(|p| (p.period.as_str(), p.value)).collect();
    assert_eq!(
        trend,
        [
            ("2025-10", None),
            ("2025-11", None),
            ("2025-12", None),
            ("2026-01", None),
            ("2026-02", Some(9.0)),
            ("2026-03", Some(11.0))
        ]
    );
    let groups: Vec<(&str, f64, Option<bool>)> = march
        .groups
        .iter()
        .map(|g| (g.group.as_str(), g.value, g.met))
        .collect();
    assert_eq!(
        groups,
        [("Email", 14.0, Some(false)), ("VPN", 8.0, Some(true))],
        "worst first"
    );
    let money = march.money.expect("a penalty is agreed");
    assert_eq!(
        (money.penalty, money.gain_share),
        (250.0, 0.0),
        "3 points × 100, capped at 250"
    );
}

/// Contract 0.2 completeness: a value computed over a span a connector said
/// it delivered only in part carries the gap (source, span, reason) until a
/// later batch completes the span; other months and tenants are not flagged.
#[tokio::test]
async fn a_value_over_partial_data_says_so_until_the_span_is_read_in_full() {
    use xla_host::types::{Gap, Span};
    let (_dir, store) = store();
    commit(&store, "acme", &resolutions("a", "2026-03", "Email", 9.0, 10)).await;
    commit(&store, "globex", &resolutions("g", "2026-03", "Email", 9.0, 10)).await;
    let day = month("2026-03").start + 4 * DAY;
    let gaps = |partial: Vec<Gap>, complete: Vec<Span>| CommitBatch {
        tenant: "acme".into(),
        source: "nexthink".into(),
        provenance: provenance(),
        partial,
        complete,
        ..Default::default()
    };
    let truncated = Gap {
        span: Span::new(day, day + DAY),
        reason: "the export was truncated by the licence (HTTP 206)".into(),
    };
    store
        .commit(gaps(vec![truncated.clone()], vec![]))
        .await
        .expect("commit");
    let engine = engine(store.clone(), &[]).await;
    let definition = xla(MEAN_RESOLUTION);

    let march = engine.report(&definition, month("2026-03")).await.expect("report");
    assert_eq!(march.value, Some(9.0));
    assert_eq!(march.partial.len(), 1, "{:?}", march.partial);
    assert_eq!(
        (march.partial[0].source.as_str(), &march.partial[0].gap),
        ("nexthink", &truncated)
    );
    let json = serde_json::to_value(&march).expect("json");
    assert_eq!(json["partial"][0]["reason"], truncated.reason.as_str());
    let february = engine.report(&definition, month("2026-02")).await.expect("report");
    assert!(february.partial.is_empty(), "another month is complete");
    let other = xla(&MEAN_RESOLUTION.replace("tenant = \"acme\"", "tenant = \"globex\""));
    let globex = engine.report(&other, month("2026-03")).await.expect("report");
    assert!(globex.partial.is_empty(), "another tenant's data is complete");

    // Once nexthink has stored its metric, its gap concerns that metric
    // only: resolution times, from another source, are whole again, and a
    // DEX score is the value computed over partial data.
    let dex = Observation {
        id: "laptop-7".into(),
        metric: "dex_score".into(),
        layer: Layer::Technical,
        value: 7.5,
        at: day + 60_000,
        dimensions: vec![("device".into(), "laptop-7".into())],
    };
    store
        .commit(CommitBatch {
            observations: vec![dex],
            ..gaps(vec![], vec![])
        })
        .await
        .expect("commit");
    let march = engine.report(&definition, month("2026-03")).await.expect("report");
    assert!(
        march.partial.is_empty(),
        "nexthink's gap leaves resolution_hours whole: {:?}",
        march.partial
    );
    let dex_xla = xla(&MEAN_RESOLUTION
        .replace("id = \"resolution\"", "id = \"dex\"")
        .replace("resolution_hours", "dex_score")
        .replace("group_by = \"service\"\n", ""));
    let devices = engine.report(&dex_xla, month("2026-03")).await.expect("report");
    assert_eq!(devices.value, Some(7.5));
    assert_eq!(devices.partial.len(), 1, "{:?}", devices.partial);
    assert_eq!(devices.partial[0].metrics, ["dex_score"]);

    // The day read again in full closes the gap.
    store.commit(gaps(vec![], vec![truncated.span])).await.expect("commit");
    let devices = engine.report(&dex_xla, month("2026-03")).await.expect("report");
    assert!(devices.partial.is_empty(), "{:?}", devices.partial);
}

#[tokio::test]
async fn scores_read_only_the_xlas_tenant_and_a_bound_scorer_refuses_other_tenants() {
    let (_dir, store) = store();
    commit(&store, "acme", &resolutions("a", "2026-03", "Email", 5.0, 4)).await;
    commit(&store, "globex", &resolutions("g", "2026-03", "Email", 50.0, 4)).await;
    let engine = engine(store, &[("mean", "acme")]).await;
    let acme = xla(MEAN_RESOLUTION);
    let scored = engine.score(&acme, month("2026-03")).await.expect("acme scores");
    assert_eq!(scored.value, Some(5.0), "globex's 50 h never reach acme's score");
    assert_eq!(scored.sample_size, 4);

    let globex = xla(&MEAN_RESOLUTION.replace("tenant = \"acme\"", "tenant = \"globex\""));
    let refused = engine
        .score(&globex, month("2026-03"))
        .await
        .expect_err("bound to acme");
    assert!(matches!(refused, ScoreError::TenantBinding { .. }), "{refused}");
    assert!(refused.to_string().contains("bound to tenant `acme`"), "{refused}");
}

#[tokio::test]
async fn scores_are_deterministic() {
    let (_dir, store) = store();
    commit(&store, "acme", &resolutions("a", "2026-03", "Email", 7.25, 9)).await;
    commit(&store, "acme", &resolutions("a", "2026-03", "VPN", 3.5, 3)).await;
    let engine = engine(store, &[]).await;
    let definition = xla(MEAN_RESOLUTION);
    let first = engine.score(&definition, month("2026-03")).await.expect("score");
    for _ in 0..3 {
        assert_eq!(engine.score(&definition, month("2026-03")).await.expect("score"), first);
    }
}

#[tokio::test]
async fn a_group_the_metric_lacks_is_reached_through_the_ticket() {
    let (_dir, store) = store();
    let start = month("2026-03").start + DAY;
    // Survey answers carry only the ticket; the tickets carry the group.
    let mut observations = Vec::new();
    for (ticket, group, minutes) in [
        ("INC1", "Network", 120.0),
        ("INC2", "Network", 60.0),
        ("INC3", "Desk", 10.0),
    ] {
        observations.push(
            Observation::new(
                format!("r-{ticket}"),
                "lost_time_minutes",
                Layer::Experience,
                minutes,
                start,
            )
            .dim("ticket", ticket),
        );
        observations.push(
            Observation::new(
                format!("t-{ticket}"),
                "ticket_resolved",
                Layer::Operational,
                1.0,
                start - 3_600_000,
            )
            .dim("ticket", ticket)
            .dim("assignment_group", group),
        );
    }
    // An answer whose ticket never arrived has no group.
    observations
        .push(Observation::new("r-INC9", "lost_time_minutes", Layer::Experience, 999.0, start).dim("ticket", "INC9"));
    commit(&store, "acme", &observations).await;
    let engine = engine(store.clone(), &[]).await;
    let definition = xla(r#"
        id = "lost-time"
        name = "Lost time"
        tenant = "acme"
        metrics = ["lost_time_minutes"]
        scorer = "mean"
        score = "lost_time_minutes"
        group_by = "assignment_group"
        period = "month"
        direction = "lower"
        targets = [{ from = 2026-01-01, value = 30.0 }]
    "#);
    let scored = engine.score(&definition, month("2026-03")).await.expect("score");
    assert_eq!(
        scored.value,
        Some((120.0 + 60.0 + 10.0 + 999.0) / 4.0),
        "the whole window has every answer"
    );
    let groups: Vec<(Option<&str>, f64, u64)> = scored
        .groups
        .iter()
        .map(|s| (s.group.as_deref(), s.value, s.sample_size))
        .collect();
    assert_eq!(groups, [(Some("Desk"), 10.0, 1), (Some("Network"), 90.0, 2)]);

    // The rows behind it: one per ticket, values with their times, dimensions joined.
    let rows = store
        .subject_rows(&SubjectQuery {
            tenant: "acme".into(),
            key: "ticket".into(),
            metrics: vec!["lost_time_minutes".into(), "ticket_resolved".into()],
            from: month("2026-03").start,
            to: month("2026-03").end,
            filter: None,
            opening: None,
        })
        .await
        .expect("rows");
    assert_eq!(rows.len(), 4);
    let inc1 = &rows[0];
    assert_eq!(inc1.key, "INC1");
    assert_eq!(
        inc1.dimensions,
        [("assignment_group".to_string(), "Network".to_string())]
    );
    assert_eq!(
        inc1.values,
        [
            ("lost_time_minutes".to_string(), 120.0),
            ("lost_time_minutes.at".to_string(), start as f64),
            ("ticket_resolved".to_string(), 1.0),
            ("ticket_resolved.at".to_string(), (start - 3_600_000) as f64),
        ]
    );
}

/// Field case 09 (`09-happysignals-export-with-clone-response.csv` with
/// `09-servicenow-production-ticket.json`), as the connectors store it:
/// response 90110 from a cloned test instance names INC0012001, a
/// production ticket opened on 2026-10-05, three days after the response.
/// The report's groups leave it out (it scored "Payroll Team 100.0"
/// before) and list it as an unmatched answer; the whole month's value
/// still counts it, since it needs no join.
#[tokio::test]
async fn field_case_09_a_clone_answer_is_unmatched_not_scored_for_the_production_ticket() {
    use xla_host::store::Unjoined;
    const HOUR: i64 = 3_600_000;
    let (_dir, store) = store();
    let october = month("2026-10").start;
    let ticket = |number: &str, group: &str, resolved: i64, hours: f64| {
        let dims = [
            ("ticket", number),
            ("ticket_type", "incident"),
            ("assignment_group", group),
        ];
        let with = |o: Observation| dims.iter().fold(o, |o, (k, v)| o.dim(*k, *v));
        [
            with(Observation::new(
                number,
                "ticket_resolved",
                Layer::Operational,
                1.0,
                resolved,
            )),
            with(Observation::new(
                number,
                "resolution_hours",
                Layer::Operational,
                hours,
                resolved,
            )),
        ]
    };
    let answer = |id: &str, number: &str, at: i64, score: f64| {
        Observation::new(id, "happiness_rating", Layer::Experience, score, at)
            .dim("ticket", number)
            .dim("ticket_type", "incident")
    };
    let mut observations = Vec::new();
    // INC0090101: opened 2026-09-30 16:00, resolved 2026-10-01 08:10.
    observations.extend(ticket(
        "INC0090101",
        "Service Desk",
        october + 8 * HOUR + 600_000,
        16.0 + 1.0 / 6.0,
    ));
    // INC0012001 (production): opened 2026-10-05 10:00, resolved 2026-10-06 09:00.
    observations.extend(ticket("INC0012001", "Payroll Team", october + 5 * DAY + 9 * HOUR, 23.0));
    observations.push(answer("90101", "INC0090101", october + 9 * HOUR + 131_000, 9.0));
    observations.push(answer("90110", "INC0012001", october + DAY + 15 * HOUR + 207_000, 10.0));
    commit(&store, "acme", &observations).await;
    let engine = engine(store, &[]).await;
    let definition = xla(r#"
        id = "rating"
        name = "Rating by group"
        tenant = "acme"
        metrics = ["happiness_rating"]
        scorer = "mean"
        score = "happiness_rating"
        group_by = "assignment_group"
        period = "month"
        direction = "higher"
        targets = [{ from = 2026-01-01, value = 8.0 }]
    "#);
    let report = engine.report(&definition, month("2026-10")).await.expect("report");
    let groups: Vec<(&str, f64, u64)> = report
        .groups
        .iter()
        .map(|g| (g.group.as_str(), g.value, g.sample_size))
        .collect();
    assert_eq!(groups, [("Service Desk", 9.0, 1)], "no Payroll Team");
    assert_eq!(report.value, Some(9.5), "the month counts both answers");
    let unmatched = report.unmatched_answers.expect("the groups needed a join");
    assert_eq!(unmatched.count, 1);
    assert_eq!(
        (
            unmatched.examples[0].id.as_str(),
            unmatched.examples[0].ticket.as_deref(),
            &unmatched.examples[0].reason
        ),
        ("90110", Some("INC0012001"), &Unjoined::BeforeTicketOpened)
    );
    let json = serde_json::to_value(&unmatched).expect("json");
    assert_eq!(json["examples"][0]["reason"], "before_ticket_opened");
}

/// One month of X, O and T for the X/O/T view.
fn xot_month(label: &str, ratings: &[(f64, usize)], breached: (usize, usize), dex: f64) -> Vec<Observation> {
    let at = month(label).start + DAY;
    let mut observations = Vec::new();
    let mut n = 0;
    for (rating, count) in ratings {
        for _ in 0..*count {
            n += 1;
            observations.push(Observation::new(
                format!("{label}-r{n}"),
                "happiness_rating",
                Layer::Experience,
                *rating,
                at,
            ));
        }
    }
    let (breaches, total) = breached;
    for i in 0..total {
        let value = if i < breaches { 1.0 } else { 0.0 };
        observations.push(Observation::new(
            format!("{label}-s{i}"),
            "sla_breached",
            Layer::Operational,
            value,
            at,
        ));
    }
    for i in 0..10 {
        observations.push(Observation::new(
            format!("{label}-d{i}"),
            "dex_score",
            Layer::Technical,
            dex,
            at,
        ));
    }
    observations
}

#[tokio::test]
async fn the_xot_view_says_what_a_drop_in_experience_came_with() {
    let (_dir, store) = store();
    // September: happiness +60, SLAs 95 %, DEX 80. October: happiness +20
    // with DEX 70 (technical). November: happiness back to +60, then
    // December +20 with SLAs and DEX holding (neither).
    commit(
        &store,
        "acme",
        &xot_month("2026-09", &[(10.0, 8), (8.0, 2)], (1, 20), 80.0),
    )
    .await;
    commit(
        &store,
        "acme",
        &xot_month("2026-10", &[(10.0, 4), (8.0, 6)], (1, 20), 70.0),
    )
    .await;
    commit(
        &store,
        "acme",
        &xot_month("2026-11", &[(10.0, 6), (8.0, 4)], (1, 20), 80.0),
    )
    .await;
    commit(
        &store,
        "acme",
        &xot_month("2026-12", &[(10.0, 4), (8.0, 4), (3.0, 2)], (1, 20), 80.0),
    )
    .await;
    let engine = engine(store, &[]).await;
    let october = engine.xot_view("acme", month("2026-10")).await.expect("view");
    assert_eq!(october.happiness, (Some(40.0), Some(80.0)));
    assert_eq!(october.sla_compliance, (Some(95.0), Some(95.0)));
    assert_eq!(october.cause, Cause::Technical, "{}", october.explanation);
    let november = engine.xot_view("acme", month("2026-11")).await.expect("view");
    assert_eq!(november.cause, Cause::NoDrop);
    let december = engine.xot_view("acme", month("2026-12")).await.expect("view");
    assert_eq!(december.cause, Cause::Neither, "{}", december.explanation);
}

#[tokio::test]
async fn xla_host_report_prints_the_xlas_as_json_and_tables_and_names_a_missing_scorer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    {
        let store = crate::support::open_store(&data);
        commit(&store, "acme", &resolutions("a", "2026-02", "Email", 9.0, 10)).await;
        commit(&store, "acme", &resolutions("a", "2026-03", "Email", 14.0, 10)).await;
        commit(&store, "acme", &resolutions("a", "2026-03", "VPN", 8.0, 10)).await;
    }
    let plugins = target_dir().join("plugins");
    let config = dir.path().join("host.toml");
    let write_config = |xla: &str| {
        let text = format!("[plugins]\ndir = {:?}\n\n[[xla]]\n{xla}", plugins.display().to_string());
        std::fs::write(&config, text).expect("write config");
    };
    write_config(MEAN_RESOLUTION);
    let args = |json: bool| {
        let mut args = vec![
            "--host-config".to_string(),
            config.display().to_string(),
            "report".into(),
            "--period".into(),
            "2026-03".into(),
            "--data-dir".into(),
            data.display().to_string(),
        ];
        if json {
            args.push("--json".into());
        }
        args
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::cli::xla_host(&args, &[])
    };
    let output = run(args(true));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let bundle: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let report = &bundle["reports"][0];
    assert_eq!(report["xla"], "resolution");
    assert_eq!(report["period"], "2026-03");
    assert_eq!(report["value"], 11.0);
    assert_eq!(report["target"]["value"], 8.0);
    assert_eq!(report["met"], false);
    assert_eq!(report["delta"], 2.0);
    assert_eq!(report["groups"][0]["group"], "Email");

    let output = run(args(false));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "Mean resolution hours",
        "2026-03",
        "11.0 (n=20)",
        "8.0",
        "NO",
        "+2.0",
        "Email 14.0",
    ] {
        assert!(text.contains(expected), "`{expected}` missing from:\n{text}");
    }

    write_config(&MEAN_RESOLUTION.replace("scorer = \"mean\"", "scorer = \"no-such-scorer\""));
    let output = run(args(true));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no-such-scorer") && stderr.contains("build the plugins"),
        "{stderr}"
    );
}

/// `n` ratings of `score` in `label`'s month.
fn ratings(prefix: &str, label: &str, score: f64, n: usize) -> Vec<Observation> {
    let start = month(label).start + DAY;
    (0..n)
        .map(|i| {
            Observation::new(
                format!("{prefix}-{i}"),
                "happiness_rating",
                Layer::Experience,
                score,
                start,
            )
            .dim("ticket", format!("INC{prefix}{i}"))
        })
        .collect()
}

#[tokio::test]
async fn the_msp_gain_share_scorer_is_pinned_bound_to_its_tenant_and_sees_only_its_data() {
    let (_dir, store) = store();
    // acme: 30 of 40 responses rate 10 and 10 rate 5: happiness +50. globex: all 10s (+100).
    commit(&store, "acme", &ratings("a-hi", "2026-03", 10.0, 30)).await;
    commit(&store, "acme", &ratings("a-lo", "2026-03", 5.0, 10)).await;
    commit(&store, "globex", &ratings("g", "2026-03", 10.0, 500)).await;
    let plugins = target_dir().join("plugins");
    let manifest = xla_host::plugins::Manifest::from_file(&plugins.join("msp-gain-share").join("plugin.toml"))
        .expect("the msp-gain-share manifest");
    let pinned = |sha256: &str| xla_host::plugins::Pins {
        require: true,
        sha256: [("msp-gain-share".to_string(), sha256.to_string())].into(),
    };
    let tenants: BTreeMap<String, String> = [("msp-gain-share".to_string(), "acme".to_string())].into();
    let wrong = load_scorers(
        runtime(),
        &plugins,
        &pinned(&"0".repeat(64)),
        &tenants,
        ["msp-gain-share"],
        &Limits::default(),
    )
    .await;
    assert!(wrong.is_err(), "a scorer whose sha256 differs from its pin is refused");
    let scorers = load_scorers(
        runtime(),
        &plugins,
        &pinned(&manifest.sha256),
        &tenants,
        ["msp-gain-share"],
        &Limits::default(),
    )
    .await
    .expect("the pinned scorer loads");
    let engine = Engine::new(store, scorers, Limits::default());
    let definition = |tenant: &str| {
        xla(&format!(
            r#"
            id = "gain-share"
            name = "Gain share"
            tenant = "{tenant}"
            metrics = ["happiness_rating", "sla_breached"]
            scorer = "msp-gain-share"
            score = "earn_back"
            period = "month"
            parameters = {{ happiness_target = 100.0, baseline = 0.0, credit = 10000.0 }}
            targets = [{{ from = 2026-01-01, value = 10000.0 }}]
        "#
        ))
    };
    let acme = engine
        .score(&definition("acme"), month("2026-03"))
        .await
        .expect("acme scores");
    // Happiness +50 is halfway from the baseline (0) to the target (100): half the credit.
    assert_eq!(acme.value, Some(5_000.0), "{:?}", acme.results);
    assert_eq!(acme.sample_size, 40, "only acme's 40 responses, none of globex's 500");
    let refused = engine
        .score(&definition("globex"), month("2026-03"))
        .await
        .expect_err("bound to acme");
    assert!(matches!(refused, ScoreError::TenantBinding { .. }), "{refused}");
}

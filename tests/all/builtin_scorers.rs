//! The shipped scorers (`plugins/`), run in the sandbox: aggregates in,
//! rows through the host's reader in batches, errors back as plugin errors.
//! Their formulas are unit-tested in each crate; this checks the wiring.

use crate::support::{guests, scorer, tight_limits};
use xla_host::runtime::{Aggregate, Layer, PluginError, RuntimeError, Score, ScoreInput, SubjectRow};

const T: i64 = 1_790_812_800_000;

fn input(parameters: &str, aggregates: Vec<Aggregate>) -> ScoreInput {
    ScoreInput {
        tenant: "acme".into(),
        window_start: T,
        window_end: T + 7 * 86_400_000,
        group_by: Some("service".into()),
        parameters: parameters.into(),
        aggregates,
    }
}

/// `breached` 1s and `met` 0s of `sla_breached`.
fn slas(group: Option<&str>, met: u64, breached: u64) -> Aggregate {
    Aggregate {
        metric: "sla_breached".into(),
        layer: Layer::Operational,
        group: group.map(str::to_string),
        count: met + breached,
        sum: breached as f64,
        min: if met > 0 { 0.0 } else { 1.0 },
        max: if breached > 0 { 1.0 } else { 0.0 },
        histogram: None,
    }
}

/// The aggregate the host would send for `values` (histogram for `*_rating`).
fn aggregate(metric: &str, layer: Layer, values: &[f64]) -> Aggregate {
    let histogram = metric.ends_with("_rating").then(|| {
        let mut counts = vec![0u64; 11];
        for v in values {
            counts[*v as usize] += 1;
        }
        counts
    });
    Aggregate {
        metric: metric.into(),
        layer,
        group: None,
        count: values.len() as u64,
        sum: values.iter().sum(),
        min: values.iter().copied().fold(f64::INFINITY, f64::min),
        max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        histogram,
    }
}

/// A ticket row with each value's `.at` pair.
fn row(key: &str, values: &[(&str, f64, i64)]) -> SubjectRow {
    SubjectRow {
        key: key.into(),
        dimensions: vec![
            ("service".into(), "VPN".into()),
            ("assignment_group".into(), "Network".into()),
        ],
        values: values
            .iter()
            .flat_map(|(m, v, at)| [(m.to_string(), *v), (format!("{m}.at"), *at as f64)])
            .collect(),
    }
}

async fn run(plugin: &str, parameters: &str, aggregates: Vec<Aggregate>, rows: Vec<SubjectRow>) -> Vec<Score> {
    let rows: Option<Box<dyn Iterator<Item = SubjectRow> + Send>> =
        (!rows.is_empty()).then(|| Box::new(rows.into_iter()) as _);
    scorer(plugin)
        .session(tight_limits())
        .score(&input(parameters, aggregates), rows)
        .await
        .unwrap_or_else(|e| panic!("{plugin}: {e}"))
}

fn find<'a>(scores: &'a [Score], name: &str, group: Option<&str>) -> &'a Score {
    scores
        .iter()
        .find(|s| s.name == name && s.group.as_deref() == group)
        .unwrap_or_else(|| panic!("no {name} for {group:?} in {scores:?}"))
}

#[tokio::test]
async fn sla_compliance_scores_aggregates_per_group() {
    let aggregates = vec![slas(Some("VPN"), 19, 1), slas(None, 18, 2), slas(Some("Email"), 0, 0)];
    let scores = scorer(guests::SLA_COMPLIANCE)
        .session(tight_limits())
        .score(&input("", aggregates), None)
        .await
        .expect("scores");
    let got: Vec<_> = scores
        .iter()
        .map(|s| (s.group.as_deref(), s.value, s.sample_size))
        .collect();
    assert_eq!(got, [(None, 90.0, 20), (Some("VPN"), 95.0, 20)]);
}

#[tokio::test]
async fn watermelon_reads_rows_in_batches() {
    // 1,500 VPN tickets (more than one batch of the SDK's reader), every SLA met,
    // rated 3: a watermelon. 10 Email tickets with a breached SLA, rated 10.
    let ticket = |i: u32, service: &str, breached: f64, rating: f64| SubjectRow {
        key: format!("INC{i:07}"),
        dimensions: vec![("service".into(), service.into())],
        values: vec![
            ("sla_breached".into(), breached),
            ("sla_breached.at".into(), T as f64),
            ("happiness_rating".into(), rating),
            ("happiness_rating.at".into(), (T + 1) as f64),
        ],
    };
    let vpn = (0..1_500).map(move |i| ticket(i, "VPN", 0.0, 3.0));
    let email = (1_500..1_510).map(move |i| ticket(i, "Email", 1.0, 10.0));
    let scores = scorer(guests::WATERMELON)
        .session(tight_limits())
        .score(&input("", vec![]), Some(Box::new(vpn.chain(email))))
        .await
        .expect("scores");
    let flag = find(&scores, "watermelon", Some("VPN"));
    assert_eq!((flag.value, flag.sample_size), (1.0, 1_500));
    let detail: serde_json::Value = serde_json::from_str(flag.detail.as_deref().expect("detail")).expect("JSON");
    assert_eq!(detail["tickets"].as_array().map(Vec::len), Some(20));
    assert_eq!(detail["tickets"][0], "INC0000000");
    assert_eq!(find(&scores, "watermelon", Some("Email")).value, 0.0);
    assert_eq!(find(&scores, "watermelon_tickets", None).value, 1_500.0);
    // 1,500 of 1,510 tickets met every SLA.
    assert_eq!(find(&scores, "sla_compliance", None).value, 150_000.0 / 1_510.0);
}

#[tokio::test]
async fn bad_input_comes_back_as_a_plugin_error_naming_it() {
    let mut broken = slas(Some("VPN"), 3, 1);
    broken.sum = 7.0;
    let error = scorer(guests::SLA_COMPLIANCE)
        .session(tight_limits())
        .score(&input("", vec![broken]), None)
        .await
        .expect_err("a sum beyond the count is bad data");
    let RuntimeError::Plugin {
        error: PluginError::BadData(message),
        ..
    } = &error
    else {
        panic!("expected bad data, got {error}");
    };
    assert!(message.contains("`sla_breached` for group `VPN`"), "{message}");

    let error = scorer(guests::XLA_INDEX)
        .session(tight_limits())
        .score(&input(r#"{"weights":{"experience":-1}}"#, vec![]), None)
        .await
        .expect_err("a negative weight is a config error");
    assert!(
        matches!(&error, RuntimeError::Plugin { error: PluginError::Config(m), .. } if m.contains("weights.experience")),
        "{error}"
    );
}

#[tokio::test]
async fn every_aggregate_scorer_answers_a_hand_computed_window() {
    let dex = run(
        guests::DEX,
        "",
        vec![aggregate("dex_score", Layer::Technical, &[80.0, 60.0, 70.0])],
        vec![],
    )
    .await;
    assert_eq!(
        (find(&dex, "dex_score", None).value, find(&dex, "dex_min", None).value),
        (70.0, 60.0)
    );

    let fcr = vec![aggregate(
        "first_contact_resolution",
        Layer::Operational,
        &[1.0, 1.0, 1.0, 0.0],
    )];
    assert_eq!(
        find(
            &run(guests::FCR, "", fcr, vec![]).await,
            "first_contact_resolution",
            None
        )
        .value,
        75.0
    );

    let reopened = [vec![1.0], vec![0.0; 7]].concat();
    let reopened = vec![aggregate("reopened", Layer::Operational, &reopened)];
    assert_eq!(
        find(
            &run(guests::REOPEN_RATE, "", reopened, vec![]).await,
            "reopen_rate",
            None
        )
        .value,
        12.5
    );

    let lost = vec![aggregate(
        "lost_time_minutes",
        Layer::Experience,
        &[30.0, 90.0, 0.0, 120.0],
    )];
    let lost = run(guests::LOST_TIME, "", lost, vec![]).await;
    assert_eq!(
        (
            find(&lost, "lost_time_mean", None).value,
            find(&lost, "lost_time_total", None).value
        ),
        (60.0, 240.0)
    );

    // Happiness 70 (8 × 10, 1 × 8, 1 × 3), SLA compliance 96: bonus 250 × 10, full earn-back.
    let ratings = [vec![10.0; 8], vec![8.0, 3.0]].concat();
    let terms = vec![
        aggregate("happiness_rating", Layer::Experience, &ratings),
        slas(None, 24, 1),
    ];
    let terms = run(guests::MSP_GAIN_SHARE, "", terms, vec![]).await;
    assert_eq!(
        (find(&terms, "bonus", None).value, find(&terms, "earn_back", None).value),
        (2_500.0, 10_000.0)
    );
}

#[tokio::test]
async fn every_rows_scorer_answers_hand_computed_tickets() {
    // 2 of 10 tickets hold 800 of 1,000 minutes: 20 %.
    let minutes = [400.0, 400.0, 25.0, 25.0, 25.0, 25.0, 25.0, 25.0, 25.0, 25.0];
    let tickets = minutes
        .iter()
        .enumerate()
        .map(|(i, m)| row(&format!("INC{i}"), &[("lost_time_minutes", *m, T)]));
    let pareto = run(guests::PARETO, "", vec![], tickets.collect()).await;
    assert_eq!(find(&pareto, "pareto_ticket_share", Some("VPN")).value, 20.0);

    // Rated 2 (later), 9 and 5 (earlier): two to follow up, the 5 first.
    let tickets = vec![
        row("INC1", &[("happiness_rating", 2.0, T + 2)]),
        row("INC2", &[("happiness_rating", 9.0, T)]),
        row(
            "INC3",
            &[("happiness_rating", 5.0, T + 1), ("lost_time_minutes", 45.0, T + 1)],
        ),
    ];
    let follow_up = run(guests::FOLLOW_UP, r#"{"group_by":"assignment_group"}"#, vec![], tickets).await;
    let count = find(&follow_up, "follow_up_count", Some("Network"));
    assert_eq!((count.value, count.sample_size), (2.0, 3));
    let detail: serde_json::Value = serde_json::from_str(count.detail.as_deref().expect("detail")).expect("JSON");
    assert_eq!(detail["items"][0]["ticket"], "INC3");
    assert_eq!(detail["items"][0]["lost_time_minutes"], 45.0);
    assert_eq!(detail["items"][1]["ticket"], "INC1");
}

//! Scoring benchmark: one month of a 275,000-employee organisation (about
//! 300,000 tickets, 100,000 survey responses, 8 million device-days) in a
//! real store, scored by the built-in scorer plugins in the sandbox: the
//! demo's six XLAs (`xla_host::score::standard_xlas`) (aggregates from rollups, groups reached through tickets)
//! and the watermelon scorecard over 300,000 per-ticket rows.
//!
//! Run: `cargo xtask build-plugins && cargo bench -p xla-tests --bench scoring -- [scale]`
//! (`scale` 1.0 = the full organisation; 0.1 for a quick look). Only the
//! scoring is timed; loading the data is not. `--postgres` then loads the
//! same month into PostgreSQL (a throwaway cluster) and scores it again in
//! the same run, checking the same values. Results in BENCHMARKS.md.

use anyhow::{Context, Result};
use std::time::Instant;
use xla_host::score::{Engine, Period, Scorecard, ScorecardOptions, Window, XlaDefinition};
use xla_host::store::GroupThrough;

mod month;

#[tokio::main]
async fn main() -> Result<()> {
    let scale = month::scale();
    let dir = tempfile::tempdir()?;
    let store = month::store(dir.path(), scale).await?;

    let (engine, xlas) = month::engine(store).await?;
    let month = Period::Month.containing(month::MONTH_START);

    // The first scoring of a month pays for the store's index rebuild (per-ticket rows read raw rows): a warm-up.
    let warm = Instant::now();
    engine
        .report_bundle(&xlas, month, Some(&ScorecardOptions::default()))
        .await?;
    println!(
        "first report after opening (index rebuild included): {:.0} ms",
        warm.elapsed().as_secs_f64() * 1000.0
    );

    let (total, values, scorecard) = score_month(&engine, &xlas, month).await?;
    println!("one month, six XLAs and the scorecard: {total:.0} ms");
    if std::env::args().any(|a| a == "--postgres") {
        postgres(scale, month, &values).await?;
    }

    // The scorecard as it was computed before: the watermelon scorer over
    // per-ticket rows of the window (values dated in it, so tickets at the
    // month's edges count a little differently).
    let started = Instant::now();
    let from_rows = engine
        .scorecard_from_rows(month::TENANT, month, "service", 90.0, 50.0)
        .await?;
    let rows_ms = started.elapsed().as_secs_f64() * 1000.0;
    let widest = scorecard
        .rows
        .iter()
        .filter_map(|row| {
            let old = from_rows.rows.iter().find(|r| r.group == row.group)?;
            Some(
                (row.happiness? - old.happiness?)
                    .abs()
                    .max((row.sla_compliance? - old.sla_compliance?).abs()),
            )
        })
        .fold(0.0, f64::max);
    println!(
        "  scorecard from per-ticket rows (before): {rows_ms:.1} ms; widest difference {widest:.3} points (edge tickets)"
    );
    // The outcome cells against the definition worked out from raw rows.
    let store = engine.store().clone();
    let want = month::outcomes_from_rows(&*store, month.start, month.end).await?;
    let got = store
        .ticket_outcomes(month::TENANT, Some("service"), month.start, month.end)
        .await?
        .context("the sled store keeps ticket outcomes")?;
    anyhow::ensure!(got == want, "ticket outcomes differ from raw rows: {got:?} vs {want:?}");
    println!("  ticket outcomes equal the same counted from raw rows");

    // Values grouped through tickets: the store's joined rollups against
    // the same join from raw rows (how every such group was computed before
    // the store joined at write time), same values asserted, both timed.
    for metric in ["happiness_rating", "lost_time_minutes", "sla_breached"] {
        for group_by in ["service", "assignment_group"] {
            let query = |from_rows| GroupThrough {
                tenant: month::TENANT.into(),
                key: "ticket".into(),
                metric: metric.into(),
                group_by: group_by.into(),
                via: vec!["ticket_resolved".into()],
                opening: Some("resolution_hours".into()),
                from: month.start,
                to: month.end,
                filter: None,
                from_rows,
            };
            let started = Instant::now();
            let joined = store.grouped_through(&query(false)).await?;
            let joined_ms = started.elapsed().as_secs_f64() * 1000.0;
            let started = Instant::now();
            let raw = store.grouped_through(&query(true)).await?;
            let raw_ms = started.elapsed().as_secs_f64() * 1000.0;
            anyhow::ensure!(
                joined.groups == raw.groups && joined.unmatched.count == raw.unmatched.count,
                "{metric} by {group_by}: the joined rollups disagree with the raw rows"
            );
            println!(
                "  {metric} by {group_by}: {joined_ms:.1} ms from joined rollups, {raw_ms:.1} ms from raw rows ({} groups, {} unmatched, same values)",
                joined.groups.len(),
                joined.unmatched.count
            );
        }
    }
    Ok(())
}

/// Scores the six XLAs and the scorecard of `month`, each timed and
/// printed: (total ms, each XLA's value and the scorecard's rows).
async fn score_month(
    engine: &Engine,
    xlas: &[XlaDefinition],
    month: Window,
) -> Result<(f64, Vec<(String, Option<f64>)>, Scorecard)> {
    let mut total = 0.0;
    let mut values = Vec::new();
    for xla in xlas {
        let started = Instant::now();
        let scored = engine.score(xla, month).await?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        total += ms;
        println!(
            "  {:<26} {:>9.1} ms  value {:>8.2} (n={})",
            xla.id,
            ms,
            scored.value.unwrap_or(f64::NAN),
            scored.sample_size
        );
        values.push((xla.id.clone(), scored.value));
    }
    let started = Instant::now();
    let scorecard = engine.scorecard(month::TENANT, month, "service", 90.0, 50.0).await?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    total += ms;
    println!(
        "  {:<26} {ms:>9.1} ms  ({} services from ticket outcome cells)",
        "scorecard",
        scorecard.rows.len()
    );
    for row in &scorecard.rows {
        values.push((format!("scorecard {:?}", row.group), row.happiness));
    }
    Ok((total, values, scorecard))
}

/// The same month scored on PostgreSQL: loaded untimed, scored timed, the
/// values checked against sled's.
async fn postgres(scale: f64, month: Window, sled: &[(String, Option<f64>)]) -> Result<()> {
    let store = month::postgres_store(scale).await?;
    let (engine, xlas) = month::engine(store).await?;
    engine
        .report_bundle(&xlas, month, Some(&ScorecardOptions::default()))
        .await?;
    let (total, values, _) = score_month(&engine, &xlas, month).await?;
    println!("postgres: one month, six XLAs and the scorecard: {total:.0} ms");
    let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * a.abs().max(1.0),
        (a, b) => a == b,
    };
    for ((name, want), (_, got)) in sled.iter().zip(&values) {
        anyhow::ensure!(close(*want, *got), "{name}: sled {want:?}, postgres {got:?}");
    }
    anyhow::ensure!(
        sled.len() == values.len(),
        "postgres scored {} values, sled {}",
        values.len(),
        sled.len()
    );
    println!("postgres: the same values as sled");
    Ok(())
}

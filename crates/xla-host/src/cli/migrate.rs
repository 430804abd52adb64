//! `xla-host store migrate --from sled:DIR --to postgres://...`: copies a
//! store to another backend through the [`Store`] trait, then checks that
//! both hold the same.
//!
//! What is copied: every raw row with its source and provenance (the
//! target rebuilds its rollups from them, exactly as from a sync); of each
//! day retention retired, its rollup cells as they are (no row is left to
//! rebuild them) and what sled kept of its rows, after the tenant's
//! retention cutoffs; each connector instance's cursor and open gaps, the run log (run ids
//! kept), and API tokens (hashes only). The copy is **resumable**: a
//! metric whose rows and rollups already match is skipped, one half copied
//! is committed again (rows already there count as unchanged, as any
//! replay), and a retired day copied again is replaced, not added.
//!
//! Verified at the end, per tenant and metric: raw and retired rows, and
//! the rollups' count and sum over all time; per instance: the cursor and
//! the number of runs; the number of tokens. A difference fails the
//! command, naming it.
//!
//! What sled does not keep cannot be copied: a retired row's record id
//! (sled keeps a fingerprint; a survey answer's or SLA record's id
//! excepted, which its ticket join keeps) and its time of day (kept for rows of the ticket
//! join). Such a row keeps its fingerprint as its id in PostgreSQL, so if
//! its source later sends that record again, PostgreSQL counts it as a new
//! row on its day where sled would have replaced it. The command says how
//! many rows that concerns.

// Without the PostgreSQL store there is nothing to copy into: `run` says so.
#![cfg_attr(not(feature = "postgres"), allow(dead_code, unused_imports))]

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use xla_store::{Aggregation, Bucket, CommitBatch, DAY_MS, MetricStats, Provenance, SeriesQuery, Store, StoreStats};
use xla_store_sled::SledStore;
use xla_types::Observation;
use xla_types::untrusted::escape_capped;

/// The store copied into.
#[cfg(feature = "postgres")]
type Target = xla_store_pg::PgStore;

/// A name from the store, safe on one terminal line.
fn escape_line(text: &str) -> std::borrow::Cow<'_, str> {
    escape_capped(text, 200)
}

/// Rows per commit: a few MiB of batch.
const CHUNK: usize = 5_000;

/// `store migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The store to copy: `sled:DIR`, a data directory.
    #[arg(long, value_name = "sled:DIR")]
    from: String,
    /// Where to copy it: a PostgreSQL connection string
    /// (`postgres://user@host/database`); default `XLA_HOST_STORE_URL`.
    #[arg(long, value_name = "URL", env = "XLA_HOST_STORE_URL", hide_env_values = true)]
    to: String,
}

pub(crate) async fn run(args: MigrateArgs) -> Result<ExitCode> {
    #[cfg(not(feature = "postgres"))]
    {
        let _ = args;
        bail!("this build has no PostgreSQL store: build xla-host with its `postgres` feature (on by default)")
    }
    #[cfg(feature = "postgres")]
    migrate(args).await
}

#[cfg(feature = "postgres")]
async fn migrate(args: MigrateArgs) -> Result<ExitCode> {
    let dir = sled_dir(&args.from)?;
    if std::fs::read_dir(&dir).map_or(true, |mut entries| entries.next().is_none()) {
        bail!(
            "no store in {}: give the sled data directory to copy (`--from sled:/var/lib/xla-host`)",
            dir.display()
        );
    }
    let from = Arc::new(SledStore::open(&dir)?);
    let to = Target::connect(&args.to)
        .await
        .context("opening the PostgreSQL store to copy into")?;
    eprintln!("copying {} to {}", from.describe(), to.describe());
    let unkeyed = copy(&from, &to).await?;
    if unkeyed > 0 {
        eprintln!(
            "note: {unkeyed} retired row(s) had no record id in the sled store (it keeps a fingerprint): \
             each keeps that fingerprint as its id, so should its source send that record again, \
             PostgreSQL counts it as a new row on its retired day where sled would have replaced it"
        );
    }
    let differences = verify(&from, &to).await?;
    if differences.is_empty() {
        eprintln!("verified: rows, rollups, cursors, runs and tokens match");
        return Ok(ExitCode::SUCCESS);
    }
    for difference in &differences {
        eprintln!("MISMATCH {difference}");
    }
    bail!(
        "the copy differs from {} in {} place(s) (above); run the command again to resume, and report it if it persists",
        from.describe(),
        differences.len()
    )
}

/// The directory of a `sled:DIR` source.
fn sled_dir(from: &str) -> Result<PathBuf> {
    match from.split_once(':') {
        Some(("sled", dir)) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => bail!(
            "--from `{}` is not `sled:DIR`; give the sled data directory to copy, e.g. `--from sled:/var/lib/xla-host`",
            escape_line(from)
        ),
    }
}

/// Copies the tenants' retention cutoffs, then each metric's rows and
/// retired days, then instances' cursors, gaps and runs, then tokens. Returns how many retired rows had no record id.
#[cfg(feature = "postgres")]
async fn copy(from: &SledStore, to: &Target) -> Result<u64> {
    let source = from.stats().await?;
    let target = stats_by_metric(to.stats().await?);
    refuse_foreign(&source, &target, to)?;
    let total: u64 = source.metrics.iter().map(|m| m.raw_rows + m.retired_rows).sum();
    let tenants: std::collections::BTreeSet<&str> = source.metrics.iter().map(|m| m.tenant.as_str()).collect();
    for tenant in tenants {
        let cutoffs = from.retention_cutoffs(tenant).await?;
        if !cutoffs.is_empty() {
            to.restore_cutoffs(tenant, &cutoffs)
                .await
                .with_context(|| format!("copying tenant `{}`'s retention cutoffs", escape_line(tenant)))?;
        }
    }
    let bar = bar(total);
    let mut unkeyed = 0;
    for metric in &source.metrics {
        let key = (metric.tenant.clone(), metric.metric.clone());
        let retired = from.retired_days(&metric.tenant, &metric.metric).await?;
        let span = span(metric, retired.as_ref());
        let done = target.get(&key).is_some_and(|t| t.raw_rows == metric.raw_rows)
            && rollup_totals(from, metric, span).await? == rollup_totals(to, metric, span).await?;
        if !done {
            copy_metric(from, to, metric, &bar).await?;
        } else {
            bar.inc(metric.raw_rows);
        }
        // After the raw rows: a retired day's cells already count any raw
        // row sled took in on that day since, so they are copied last.
        let days = retired.map(|(_, days)| days).unwrap_or_default();
        unkeyed += copy_retired(from, to, metric, days, &bar).await?;
    }
    bar.finish_and_clear();
    for (tenant, instance) in from.instances().await? {
        copy_instance(from, to, &tenant, &instance).await.with_context(|| {
            format!(
                "copying `{}`'s instance `{}`",
                escape_line(&tenant),
                escape_line(&instance)
            )
        })?;
    }
    for token in from.tokens().await? {
        to.save_token(&token)
            .await
            .with_context(|| format!("copying token `{}`", escape_line(&token.id)))?;
    }
    Ok(unkeyed)
}

/// Copies `days` (retired days of a metric): their cells as they are, and
/// their retired rows. Returns how many rows had no record id.
#[cfg(feature = "postgres")]
async fn copy_retired(
    from: &SledStore,
    to: &Target,
    metric: &MetricStats,
    days: Vec<i32>,
    bar: &ProgressBar,
) -> Result<u64> {
    let (tenant, name) = (metric.tenant.as_str(), metric.metric.as_str());
    let mut unkeyed = 0;
    for day in days {
        let copy = from.retired_day(tenant, name, day).await?;
        to.restore_retired_day(tenant, name, &copy).await.with_context(|| {
            format!(
                "copying the retired day {} of tenant `{}`'s `{}`",
                xla_store::utc_date(i64::from(day) * DAY_MS),
                escape_line(tenant),
                escape_line(name)
            )
        })?;
        unkeyed += copy.rows.iter().filter(|r| r.record_id.is_none()).count() as u64;
        bar.inc(copy.rows.len() as u64);
    }
    Ok(unkeyed)
}

/// The days a metric's rollups may cover, unix ms `[from, to)`: its raw
/// rows' days and the days retention retired (`retired`: the cutoff and
/// days of `SledStore::retired_days`).
fn span(metric: &MetricStats, retired: Option<&(i64, Vec<i32>)>) -> (i64, i64) {
    let first_retired = retired
        .and_then(|(_, days)| days.first())
        .map(|day| i64::from(*day) * DAY_MS);
    let start = [metric.raw_from, first_retired]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(0);
    let end = [
        metric.raw_to.map(|start| start + DAY_MS),
        retired.map(|(cutoff, _)| *cutoff),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(start);
    (start, end)
}

/// Refuses a target holding rows the source does not (another store's
/// data): the copy could never verify.
fn refuse_foreign(source: &StoreStats, target: &HashMap<(String, String), MetricStats>, to: &dyn Store) -> Result<()> {
    let source = stats_by_metric(source.clone());
    for (key, copied) in target {
        let have = source.get(key).map_or(0, |m| m.raw_rows);
        if copied.raw_rows > have {
            bail!(
                "{} already holds {} raw rows of tenant `{}`'s `{}`, more than the sled store's {have}: it holds another store's data, \
                 or rows written there since an earlier copy, or rows the sled store's retention retired since. \
                 Copy into an empty database (or the one an interrupted copy of this store left, with no host writing to it)",
                to.describe(),
                copied.raw_rows,
                escape_line(&key.0),
                escape_line(&key.1)
            );
        }
    }
    Ok(())
}

fn stats_by_metric(stats: StoreStats) -> HashMap<(String, String), MetricStats> {
    stats
        .metrics
        .into_iter()
        .map(|m| ((m.tenant.clone(), m.metric.clone()), m))
        .collect()
}

fn bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {human_pos}/{human_len} rows, {per_sec}, {eta} left {msg}")
    {
        bar.set_style(style);
    }
    bar
}

/// Commits a metric's rows day by day, grouped by source and provenance.
async fn copy_metric(from: &dyn Store, to: &dyn Store, metric: &MetricStats, bar: &ProgressBar) -> Result<()> {
    let (Some(first), Some(last)) = (metric.raw_from, metric.raw_to) else {
        return Ok(());
    };
    bar.set_message(format!(
        "{}/{}",
        escape_line(&metric.tenant),
        escape_line(&metric.metric)
    ));
    let mut day = first;
    while day <= last {
        let rows = from
            .observations(&metric.tenant, &metric.metric, day, day + DAY_MS)
            .await?;
        let count = rows.len() as u64;
        let mut groups: BTreeMap<(String, String), (Provenance, Vec<Observation>)> = BTreeMap::new();
        for row in rows {
            let key = (row.source, serde_json::to_string(&row.provenance)?);
            groups
                .entry(key)
                .or_insert_with(|| (row.provenance, Vec::new()))
                .1
                .push(row.observation);
        }
        for ((source, _), (provenance, mut observations)) in groups {
            while !observations.is_empty() {
                let rest = observations.split_off(observations.len().min(CHUNK));
                let rows = observations.len();
                let batch = CommitBatch {
                    tenant: metric.tenant.clone(),
                    source: source.clone(),
                    provenance: provenance.clone(),
                    observations,
                    ..CommitBatch::default()
                };
                to.commit(batch).await.with_context(|| {
                    format!(
                        "copying {rows} rows of tenant `{}`'s `{}` from `{}`",
                        escape_line(&metric.tenant),
                        escape_line(&metric.metric),
                        escape_line(&source)
                    )
                })?;
                observations = rest;
            }
        }
        bar.inc(count);
        day += DAY_MS;
    }
    Ok(())
}

/// An instance's cursor and open gaps (one empty batch carries both), then
/// its run log, oldest first.
async fn copy_instance(from: &dyn Store, to: &dyn Store, tenant: &str, instance: &str) -> Result<()> {
    let cursor = from.cursor(tenant, instance).await?;
    let gaps: Vec<_> = from
        .gaps(tenant)
        .await?
        .into_iter()
        .filter(|g| g.source == instance)
        .map(|g| g.gap)
        .collect();
    if cursor.is_some() || !gaps.is_empty() {
        let batch = CommitBatch {
            tenant: tenant.to_string(),
            source: instance.to_string(),
            provenance: Provenance {
                connector: instance.to_string(),
                plugin: "xla-host store migrate".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                ..Provenance::default()
            },
            partial: gaps,
            cursor,
            ..CommitBatch::default()
        };
        to.commit(batch).await?;
    }
    let mut before = None;
    loop {
        let page = from.runs_before(tenant, instance, before, 500).await?;
        let Some(last) = page.last() else { break };
        before = Some(last.run);
        for run in &page {
            to.save_run(run).await?;
        }
    }
    Ok(())
}

/// Count and sum of a metric's rollups over `span` (see [`span`]).
async fn rollup_totals(store: &dyn Store, metric: &MetricStats, span: (i64, i64)) -> Result<(f64, f64)> {
    let mut totals = [0.0; 2];
    for (slot, aggregation) in [Aggregation::Count, Aggregation::Sum].into_iter().enumerate() {
        let query = SeriesQuery {
            tenant: metric.tenant.clone(),
            metric: metric.metric.clone(),
            from: span.0,
            to: span.1,
            bucket: Bucket::Month,
            filter: None,
            group_by: None,
            aggregation,
        };
        totals[slot] = store.series(&query).await?.iter().filter_map(|p| p.value).sum();
    }
    Ok((totals[0], totals[1]))
}

/// Every difference between the two stores, described.
async fn verify(from: &SledStore, to: &dyn Store) -> Result<Vec<String>> {
    let mut differences = Vec::new();
    let target = stats_by_metric(to.stats().await?);
    for metric in from.stats().await?.metrics {
        let name = format!("{}/{}", escape_line(&metric.tenant), escape_line(&metric.metric));
        let copied = target.get(&(metric.tenant.clone(), metric.metric.clone()));
        let rows = copied.map_or(0, |m| m.raw_rows);
        if rows != metric.raw_rows {
            differences.push(format!("{name}: {} raw rows, {rows} copied", metric.raw_rows));
        }
        let retired = copied.map_or(0, |m| m.retired_rows);
        if retired != metric.retired_rows {
            differences.push(format!(
                "{name}: {} retired rows, {retired} copied",
                metric.retired_rows
            ));
        }
        let span = span(
            &metric,
            from.retired_days(&metric.tenant, &metric.metric).await?.as_ref(),
        );
        let (want, got) = (
            rollup_totals(from, &metric, span).await?,
            rollup_totals(to, &metric, span).await?,
        );
        // Sums are f64 added in another order: equal to a part in 10^9.
        if want.0 != got.0 || (want.1 - got.1).abs() > want.1.abs().max(1.0) * 1e-9 {
            differences.push(format!("{name}: rollups count/sum {want:?}, copied {got:?}"));
        }
    }
    let instances = from.instances().await?;
    let tenants: std::collections::BTreeSet<&String> = instances.iter().map(|(tenant, _)| tenant).collect();
    for tenant in tenants {
        if from.gaps(tenant).await? != to.gaps(tenant).await? {
            differences.push(format!("{}: the open gaps differ", escape_line(tenant)));
        }
    }
    for (tenant, instance) in &instances {
        let (tenant, instance) = (tenant.as_str(), instance.as_str());
        let name = format!("{}/{}", escape_line(tenant), escape_line(instance));
        let (want, got) = (from.cursor(tenant, instance).await?, to.cursor(tenant, instance).await?);
        if want != got {
            differences.push(format!("{name}: the cursor differs"));
        }
        let (want, got) = (
            from.run_count(tenant, instance).await?,
            to.run_count(tenant, instance).await?,
        );
        if want != got {
            differences.push(format!("{name}: {want} runs, {got} copied"));
        }
    }
    let (want, got) = (from.tokens().await?.len(), to.tokens().await?.len());
    if want > got {
        differences.push(format!("tokens: {want}, {got} copied"));
    }
    Ok(differences)
}

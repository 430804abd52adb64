//! `xla-host store stats|retire|migrate`: what the store keeps, retention of
//! raw rows by `[store.retention]` (rollups are kept forever), and copying
//! a store to PostgreSQL.

use super::options::DataDirArg;
use crate::config::HostConfig;
use crate::untrusted::{escape_capped, json_pretty};
use anyhow::{Result, bail};
use chrono::DateTime;
use clap::{Args, Subcommand};
use serde::Serialize;
use std::process::ExitCode;
use xla_store::{MetricStats, RetentionRule, apply_retention, plan_retention};
use xla_types::{Layer, now_ms};

/// `xla-host store ...`.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Show what the store keeps per tenant, layer and metric: raw rows and
    /// the days they cover, rows retention dropped, rollup cells, sizes, and
    /// the retention each metric gets from `[store.retention]`.
    #[command(after_help = "Example: xla-host --host-config xla.toml store stats --tenant acme

It reads every block of the store: on a large store it takes as long as a scan.")]
    Stats(StatsArgs),
    /// Drop the raw rows `[store.retention]` no longer keeps (rollups stay,
    /// so reports of those days are unchanged). `serve` does this at start
    /// and every 6 hours.
    #[command(after_help = "Example: xla-host --host-config xla.toml store retire --dry-run

With [store.retention] raw_days = 730, layers = { technical = 90 }: device telemetry keeps 90 days of \
raw rows, everything else two years. Reads that need raw rows of a retired day (a drill-down to \
tickets, a filter and a group-by on two dimensions) say so instead of answering short.")]
    Retire(RetireArgs),
    /// Copy a sled store into PostgreSQL: rows (rollups rebuilt from them),
    /// days retention retired (their rollups as they are), cursors, open
    /// gaps, the run log and tokens, with a progress bar; resumable (run it
    /// again after an interruption), and verified at the end (rows, rollup
    /// totals, cursors, runs, tokens).
    #[command(
        after_help = "Example: xla-host store migrate --from sled:/var/lib/xla-host --to postgres://xla@db.internal/xla

Stop the host using the sled store first. Then point [store] at PostgreSQL (docs/scale-out.md). \
Days retention retired keep their rollups; sled kept no record id for most of their rows, which \
PostgreSQL then cannot match should their source send them again (the command says how many)."
    )]
    Migrate(super::migrate::MigrateArgs),
}

/// `store stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Only this tenant.
    #[arg(long)]
    tenant: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: DataDirArg,
}

/// `store retire`.
#[derive(Debug, Args)]
pub struct RetireArgs {
    /// Say which days each metric would lose, and drop nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: DataDirArg,
}

pub(crate) async fn run(config: &HostConfig, command: StoreCommand) -> Result<ExitCode> {
    match command {
        StoreCommand::Stats(args) => stats(config, args).await,
        StoreCommand::Retire(args) => retire(config, args).await,
        StoreCommand::Migrate(args) => super::migrate::run(args).await,
    }
}

/// A metric's stats with the retention the config gives it.
#[derive(Debug, Serialize)]
struct MetricView {
    #[serde(flatten)]
    stats: MetricStats,
    /// Days of raw rows the config keeps; `None`: forever.
    retention_days: Option<u32>,
    retention_rule: Option<RetentionRule>,
}

async fn stats(config: &HostConfig, args: StatsArgs) -> Result<ExitCode> {
    let store = config.open_existing_store(args.store.data_dir.as_deref()).await?;
    let stats = store.stats().await?;
    let policy = &config.store.retention;
    let mut metrics: Vec<MetricView> = stats
        .metrics
        .into_iter()
        .filter(|m| args.tenant.as_ref().is_none_or(|t| *t == m.tenant))
        .map(|stats| {
            let retention = policy.days_for(&stats.metric, stats.layer);
            MetricView {
                retention_days: retention.map(|(days, _)| days),
                retention_rule: retention.map(|(_, rule)| rule),
                stats,
            }
        })
        .collect();
    metrics.sort_by(|a, b| {
        let key = |m: &MetricView| {
            (
                m.stats.tenant.clone(),
                layer_order(m.stats.layer),
                m.stats.metric.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    if args.json {
        let out = serde_json::json!({
            "store": store.describe(),
            "disk_bytes": stats.disk_bytes,
            "metrics": metrics,
        });
        println!("{}", json_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}: {} on disk", store.describe(), size(stats.disk_bytes));
    if metrics.is_empty() {
        println!(
            "no data{}",
            args.tenant
                .map_or(String::new(), |t| format!(" for tenant `{}`", escape_capped(&t, 40)))
        );
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", stats_table(&metrics));
    Ok(ExitCode::SUCCESS)
}

/// X, O, T, then rows of no known layer.
fn layer_order(layer: Option<Layer>) -> u8 {
    match layer {
        Some(Layer::Experience) => 0,
        Some(Layer::Operational) => 1,
        Some(Layer::Technical) => 2,
        None => 3,
    }
}

fn layer_name(layer: Option<Layer>) -> &'static str {
    match layer {
        Some(Layer::Experience) => "experience",
        Some(Layer::Operational) => "operational",
        Some(Layer::Technical) => "technical",
        None => "-",
    }
}

/// One line per metric, and a total per tenant and layer.
fn stats_table(metrics: &[MetricView]) -> String {
    let mut out = format!(
        "{:<14} {:<11} {:<28} {:>11} {:>9} {:<23} {:>11} {:>9} {:>10} {:>9}  {}\n",
        "TENANT",
        "LAYER",
        "METRIC",
        "RAW ROWS",
        "RAW SIZE",
        "RAW DAYS",
        "RETIRED",
        "RET SIZE",
        "CELLS",
        "ROLLUPS",
        "RETENTION"
    );
    let mut total = Totals::default();
    for (i, view) in metrics.iter().enumerate() {
        let m = &view.stats;
        let days = match (m.raw_from, m.raw_to) {
            (Some(from), Some(to)) => format!("{}..{}", date(from), date(to)),
            _ => "-".into(),
        };
        let retention = match (view.retention_days, view.retention_rule) {
            (Some(days), Some(rule)) => format!("{days} d ({})", rule_name(rule)),
            _ => "forever".into(),
        };
        let retired = m
            .retired_before
            .map_or(String::new(), |at| format!("; retired before {}", date(at)));
        out.push_str(&format!(
            "{:<14} {:<11} {:<28} {:>11} {:>9} {:<23} {:>11} {:>9} {:>10} {:>9}  {retention}{retired}\n",
            escape_capped(&m.tenant, 14),
            layer_name(m.layer),
            escape_capped(&m.metric, 28),
            m.raw_rows,
            size(m.raw_bytes),
            days,
            m.retired_rows,
            size(m.retired_bytes),
            m.rollup_cells,
            size(m.rollup_bytes),
        ));
        total.add(m);
        let next = metrics.get(i + 1).map(|n| (&n.stats.tenant, n.stats.layer));
        if next != Some((&m.tenant, m.layer)) {
            out.push_str(&format!(
                "{:<14} {:<11} {:<28} {:>11} {:>9} {:<23} {:>11} {:>9} {:>10} {:>9}\n",
                "",
                "",
                format!("{} total", layer_name(m.layer)),
                total.raw_rows,
                size(total.raw_bytes),
                "",
                total.retired_rows,
                size(total.retired_bytes),
                total.rollup_cells,
                size(total.rollup_bytes),
            ));
            total = Totals::default();
        }
    }
    out
}

#[derive(Default)]
struct Totals {
    raw_rows: u64,
    raw_bytes: u64,
    retired_rows: u64,
    retired_bytes: u64,
    rollup_cells: u64,
    rollup_bytes: u64,
}

impl Totals {
    fn add(&mut self, m: &MetricStats) {
        self.raw_rows += m.raw_rows;
        self.raw_bytes += m.raw_bytes;
        self.retired_rows += m.retired_rows;
        self.retired_bytes += m.retired_bytes;
        self.rollup_cells += m.rollup_cells;
        self.rollup_bytes += m.rollup_bytes;
    }
}

fn rule_name(rule: RetentionRule) -> &'static str {
    match rule {
        RetentionRule::Metric => "metric",
        RetentionRule::Layer => "layer",
        RetentionRule::Default => "raw_days",
    }
}

async fn retire(config: &HostConfig, args: RetireArgs) -> Result<ExitCode> {
    let policy = &config.store.retention;
    if !policy.is_set() {
        bail!(
            "no retention is configured: set [store.retention] raw_days, layers or metrics in the host config \
             (e.g. `layers = {{ technical = 90 }}`); raw rows are kept forever until then"
        );
    }
    let store = config.open_existing_store(args.store.data_dir.as_deref()).await?;
    let now = now_ms();
    let stored = store.stored_metrics().await?;
    for rule in policy.unmatched_rules(&stored) {
        eprintln!(
            "warning: [store.retention] metrics.{} names no stored metric; check its spelling",
            escape_capped(&rule, 60)
        );
    }
    let applied = if args.dry_run {
        plan_retention(&stored, policy, now)
    } else {
        apply_retention(&*store, policy, now, &|| false).await?
    };
    if args.json {
        let out = serde_json::json!({ "dry_run": args.dry_run, "metrics": applied });
        println!("{}", json_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    if applied.is_empty() {
        println!("no stored metric is reached by [store.retention]: nothing to drop");
    }
    for a in &applied {
        let what = match a.dropped {
            None => "would drop raw rows of days before".to_string(),
            Some(dropped) => format!("dropped {dropped} raw rows of days before"),
        };
        println!(
            "{} {}: {what} {} (keeps {} d, {} rule)",
            escape_capped(&a.tenant, 40),
            escape_capped(&a.metric, 60),
            date(day_start(a.cutoff)),
            a.days,
            rule_name(a.rule)
        );
    }
    if !args.dry_run {
        let dropped: u64 = applied.iter().filter_map(|a| a.dropped).sum();
        eprintln!("{dropped} raw rows dropped; rollups are unchanged");
    }
    Ok(ExitCode::SUCCESS)
}

/// The start of the UTC day holding `ms`: retention keeps that day.
fn day_start(ms: i64) -> i64 {
    i64::from(xla_store::day_of(ms)) * xla_store::DAY_MS
}

/// A UTC date, `YYYY-MM-DD`.
fn date(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d").to_string())
}

/// Bytes in B, KiB, MiB or GiB.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_dates_read_as_people_write_them() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(day_start(xla_store::DAY_MS + 5), xla_store::DAY_MS);
    }

    #[test]
    fn the_table_totals_each_layer_and_escapes_names() {
        let metric = |name: &str, layer, rows| MetricView {
            stats: MetricStats {
                tenant: "acme".into(),
                metric: name.into(),
                layer: Some(layer),
                raw_rows: rows,
                ..MetricStats::default()
            },
            retention_days: None,
            retention_rule: None,
        };
        let table = stats_table(&[
            metric("dex_score", Layer::Technical, 5),
            metric("boot\u{1b}[31m", Layer::Technical, 7),
            metric("happiness_rating", Layer::Experience, 2),
        ]);
        assert!(!table.contains('\u{1b}'), "{table}");
        let totals: Vec<&str> = table.lines().filter(|l| l.contains(" total")).collect();
        assert_eq!(totals.len(), 2, "{table}");
        assert!(
            totals[0].contains("technical total") && totals[0].contains(" 12 "),
            "{table}"
        );
    }
}

//! `xla-host report`: every configured XLA for a period, against its
//! target, with the trend and the worst groups; the X/O/T view; and the
//! SLA-beside-XLA scorecard with the watermelons flagged. A table in the
//! terminal (coloured when it is one), or JSON.

use super::options;
use super::sync::open_store;
use crate::config::HostConfig;
use crate::score::{
    Cause, Engine, Period, ReportBundle, Scorecard, ScorecardOptions, TrendDirection, WATERMELON_SCORER, Window,
    XlaDefinition, XlaReport, XotView, load_scorers,
};
use crate::untrusted::{self, Shown};
use anyhow::{Context, Result, bail};
use clap::Args;
use comfy_table::{Cell, Color, ContentArrangement, Table, presets};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `xla-host report`.
#[derive(Debug, Args)]
#[command(after_help = "Example: xla-host --host-config xla.toml report --period 2026-10")]
pub struct ReportArgs {
    /// Period to report: a month (2026-10), quarter (2026-Q4) or ISO week
    /// (2026-W43). Each XLA reports its own period holding its start.
    /// Default: the last complete month.
    #[arg(long, value_name = "LABEL")]
    period: Option<String>,
    /// Only this XLA (repeatable).
    #[arg(long = "xla", value_name = "ID")]
    xlas: Vec<String>,
    /// Data directory.
    #[arg(long, env = "XLA_HOST_DATA", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Dimension the SLA-beside-XLA scorecard slices by.
    #[arg(long, default_value = "service", value_name = "DIM")]
    scorecard_by: String,
    /// SLA compliance target of the scorecard, percent.
    #[arg(long, default_value_t = 90.0, value_name = "PERCENT")]
    sla_target: f64,
    /// Happiness target of the scorecard, points (-100..100).
    #[arg(long, default_value_t = 50.0, value_name = "POINTS")]
    happiness_target: f64,
}

pub(crate) async fn run(config: &HostConfig, args: ReportArgs) -> Result<ExitCode> {
    let xlas = selected(config, &args.xlas)?;
    let window = period_window(args.period.as_deref())?;
    let store = open_store(config, args.data_dir.as_deref()).await?;
    let engine = engine(config, store, &xlas, &[]).await?;
    let options = ScorecardOptions {
        group_by: args.scorecard_by.clone(),
        sla_target: args.sla_target,
        happiness_target: args.happiness_target,
    };
    let bundle = engine.report_bundle(&xlas, window, Some(&options)).await?;
    if args.json {
        println!("{}", untrusted::json_pretty(&bundle)?);
    } else {
        print!("{}", render(&bundle, console::colors_enabled()));
    }
    Ok(ExitCode::SUCCESS)
}

/// The XLAs asked for, or all of them.
fn selected(config: &HostConfig, ids: &[String]) -> Result<Vec<XlaDefinition>> {
    if config.xla.is_empty() {
        bail!("the host config defines no XLA; add [[xla]] entries (see docs/scoring.md) or pass --host-config");
    }
    if ids.is_empty() {
        return Ok(config.xla.clone());
    }
    ids.iter()
        .map(|id| {
            config.xla(id).cloned().with_context(|| {
                let known: Vec<&str> = config.xla.iter().map(|x| x.id.as_str()).collect();
                format!("no XLA `{id}` in the host config (known: {})", known.join(", "))
            })
        })
        .collect()
}

/// The window a label names; by default the last complete month.
pub(crate) fn period_window(label: Option<&str>) -> Result<Window> {
    let Some(label) = label else {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        return Ok(Period::Month.containing(now).previous());
    };
    [Period::Month, Period::Quarter, Period::Week]
        .into_iter()
        .find_map(|p| p.parse(label))
        .with_context(|| {
            format!("`{label}` is not a period; write a month (2026-10), a quarter (2026-Q4) or a week (2026-W43)")
        })
}

/// An engine over `store` with the scorers the XLAs name (and the
/// watermelon scorer for the scorecard, when it is installed).
pub(crate) async fn engine(
    config: &HostConfig,
    store: std::sync::Arc<dyn crate::store::Store>,
    xlas: &[XlaDefinition],
    also: &[&str],
) -> Result<Engine> {
    let runtime = options::runtime(config)?;
    let mut names: Vec<&str> = xlas.iter().map(|x| x.scorer.as_str()).collect();
    // Views built on a scorer of their own load it when it is installed.
    for view_scorer in std::iter::once(WATERMELON_SCORER).chain(also.iter().copied()) {
        if config.plugins.dir.join(view_scorer).is_dir() && !names.contains(&view_scorer) {
            names.push(view_scorer);
        }
    }
    let scorers = load_scorers(
        &runtime,
        &config.plugins.dir,
        &config.plugins.pins,
        &config.plugins.tenants,
        names,
        &config.limits,
    )
    .await?;
    Ok(Engine::new(store, scorers, config.limits.clone()))
}

/// The bundle as terminal tables.
pub(crate) fn render(bundle: &ReportBundle, color: bool) -> String {
    let mut out = String::new();
    if !bundle.reports.is_empty() {
        out.push_str(&xla_table(&bundle.reports, color));
        out.push('\n');
    }
    for view in &bundle.xot {
        out.push_str(&xot_text(view));
    }
    for scorecard in &bundle.scorecards {
        out.push('\n');
        out.push_str(&scorecard_table(scorecard, color));
        out.push('\n');
    }
    out
}

fn table(color: bool) -> Table {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    table.set_content_arrangement(ContentArrangement::Dynamic);
    if !color {
        table.force_no_tty();
    }
    table
}

fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

fn signed(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:+.1}"))
}

fn xla_table(reports: &[XlaReport], color: bool) -> String {
    let mut table = table(color);
    table.set_header([
        "XLA",
        "Period",
        "Value",
        "Target",
        "Met",
        "Δ prev",
        "Trend",
        "Worst groups",
    ]);
    for report in reports {
        let met = match report.met {
            Some(true) => Cell::new("yes").fg(Color::Green),
            Some(false) => Cell::new("NO").fg(Color::Red),
            None => Cell::new("-"),
        };
        let worst: Vec<String> = report
            .groups
            .iter()
            .take(3)
            .map(|g| format!("{} {:.1}", Shown(&g.group), g.value))
            .collect();
        let partial = if report.partial.is_empty() {
            ""
        } else {
            "\nPARTIAL DATA"
        };
        table.add_row(vec![
            Cell::new(format!("{}\n{}", report.name, report.tenant)),
            Cell::new(&report.period),
            Cell::new(format!("{} (n={}){partial}", number(report.value), report.sample_size)),
            Cell::new(number(report.target.value)),
            met,
            Cell::new(signed(report.delta)),
            Cell::new(format!("{} {}", sparkline(report), arrow(report.trend_direction))),
            Cell::new(worst.join("\n")),
        ]);
    }
    format!("XLA report\n{table}\n{}", partial_notes(reports))
}

/// One line per gap behind a value marked PARTIAL DATA: which source, which
/// span, why (each gap once, however many XLAs it touches).
fn partial_notes(reports: &[XlaReport]) -> String {
    let mut gaps: Vec<&crate::store::SourceGap> = reports.iter().flat_map(|r| &r.partial).collect();
    gaps.sort_by(|a, b| (&a.source, a.gap.span).cmp(&(&b.source, b.gap.span)));
    gaps.dedup();
    let mut out = String::new();
    for g in gaps {
        out.push_str(&format!(
            "PARTIAL DATA: `{}` {} to {}: {}\n",
            Shown(&g.source),
            super::token::time(g.gap.span.start),
            super::token::time(g.gap.span.end),
            Shown(&g.gap.reason)
        ));
    }
    out
}

fn arrow(direction: TrendDirection) -> &'static str {
    match direction {
        TrendDirection::Improving => "improving",
        TrendDirection::Declining => "declining",
        TrendDirection::Steady => "steady",
    }
}

/// The trend as bars, lowest value lowest.
fn sparkline(report: &XlaReport) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let values: Vec<f64> = report.trend.iter().filter_map(|p| p.value).collect();
    let (min, max) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    report
        .trend
        .iter()
        .map(|p| match p.value {
            None => ' ',
            Some(_) if (max - min).abs() < f64::EPSILON => BARS[3],
            Some(v) => BARS[(((v - min) / (max - min)) * 7.0).round().clamp(0.0, 7.0) as usize],
        })
        .collect()
}

fn xot_text(view: &XotView) -> String {
    let pair = |(now, before): (Option<f64>, Option<f64>)| format!("{} (was {})", number(now), number(before));
    let cause = match view.cause {
        Cause::NoDrop => "no drop",
        Cause::Technical => "technical",
        Cause::Process => "process",
        Cause::TechnicalAndProcess => "technical and process",
        Cause::Neither => "neither technical nor process",
    };
    format!(
        "X/O/T view, {} {}: happiness {}, lost time {} min, SLA compliance {} %, resolution {} h, DEX {}.\n  Cause: {cause}. {}\n",
        view.tenant,
        view.period,
        pair(view.happiness),
        pair(view.lost_time_minutes),
        pair(view.sla_compliance),
        pair(view.resolution_hours),
        pair(view.dex_score),
        Shown(&view.explanation)
    )
}

fn scorecard_table(scorecard: &Scorecard, color: bool) -> String {
    let mut table = table(color);
    table.set_header([
        scorecard.group_by.as_str(),
        "SLA compliance %",
        "Happiness",
        "Watermelon tickets",
        "Watermelon",
    ]);
    for row in &scorecard.rows {
        let flag = if row.watermelon {
            Cell::new("WATERMELON: SLA green, people red").fg(Color::Red)
        } else {
            Cell::new("")
        };
        let sla = Cell::new(number(row.sla_compliance));
        let sla = match row.sla_compliance {
            Some(v) if v >= scorecard.sla_target => sla.fg(Color::Green),
            Some(_) => sla.fg(Color::Red),
            None => sla,
        };
        let happiness = Cell::new(signed(row.happiness));
        let happiness = match row.happiness {
            Some(v) if v >= scorecard.happiness_target => happiness.fg(Color::Green),
            Some(_) => happiness.fg(Color::Red),
            None => happiness,
        };
        table.add_row(vec![
            Cell::new(Shown(&row.group)),
            sla,
            happiness,
            Cell::new(row.watermelon_tickets),
            flag,
        ]);
    }
    format!(
        "SLA beside XLA, {} {} (targets: SLA {} %, happiness {:+})\n{table}\n",
        scorecard.tenant, scorecard.period, scorecard.sla_target, scorecard.happiness_target
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::{Scorecard, ScorecardRow};

    #[test]
    fn source_text_in_the_scorecard_is_escaped() {
        let scorecard = Scorecard {
            tenant: "acme".into(),
            period: "2026-10".into(),
            group_by: "service".into(),
            sla_target: 90.0,
            happiness_target: 30.0,
            rows: vec![ScorecardRow {
                group: "VPN\u{1b}]0;owned\u{7}\r\nforged".into(),
                sla_compliance: Some(95.0),
                happiness: Some(-10.0),
                watermelon_tickets: 3,
                watermelon: true,
            }],
        };
        let text = scorecard_table(&scorecard, false);
        assert!(text.contains("VPN\\u{1b}]0;owned\\u{7}\\r\\nforged"), "{text}");
        assert!(
            !text.chars().any(|c| c != '\n' && crate::untrusted::is_unsafe_char(c)),
            "{text}"
        );
    }
}

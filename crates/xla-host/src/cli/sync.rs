//! `xla-host sync <instance>`: one sync run of a configured connector
//! instance into the data directory, with a progress bar.

use super::options;
use crate::config::{ConnectorInstance, HostConfig};
use crate::runtime::RuntimeError;
use crate::store::{RunOutcome, RunRecord, Store};
use crate::sync::schedule::SyncInstance;
use crate::sync::{self, Progress, SyncOptions};
use crate::untrusted;
use anyhow::{Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `xla-host sync`.
#[derive(Debug, Args)]
#[command(after_help = "Example: xla-host --host-config xla.toml sync servicenow-acme")]
pub struct SyncArgs {
    /// The `[[connectors]]` instance to sync.
    instance: String,
    /// Data directory (created if missing).
    #[arg(long, env = "XLA_HOST_DATA", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Stop after this many pulls; the next sync resumes from the cursor.
    #[arg(long, value_name = "N")]
    max_pulls: Option<u64>,
    /// Print the run record as JSON instead of a summary line.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(config: &HostConfig, args: SyncArgs) -> Result<ExitCode> {
    let instance = find_instance(config, &args.instance)?;
    let store = open_store(config, args.data_dir.as_deref()).await?;
    let runtime = options::runtime(config)?;
    // The same per-upstream rate limits as `serve`, for this process alone.
    let rate_limits = config.sync.rate_limits()?.map(Arc::new);
    let ready = SyncInstance::prepare(&runtime, config.sync_setup(), instance, rate_limits)?;
    let mut session = ready.session();
    let options = SyncOptions {
        max_pulls: args.max_pulls,
        lease_ttl: config.sync.lease_ttl()?,
        ..SyncOptions::default()
    };
    let mut bar = Bar::new(&instance.name);
    let result = sync::run(&mut session, &store, ready.target(), &options, &mut bar).await;
    bar.finish();
    let record = result?;
    if args.json {
        println!("{}", untrusted::json_pretty(&record)?);
    } else {
        println!("{}", summary(&record));
    }
    Ok(ExitCode::SUCCESS)
}

/// The `[[connectors]]` instance called `name`; an unknown name lists the
/// known ones.
pub(crate) fn find_instance<'a>(config: &'a HostConfig, name: &str) -> Result<&'a ConnectorInstance> {
    if let Some(instance) = config.connector(name) {
        return Ok(instance);
    }
    if config.connectors.is_empty() {
        bail!(
            "no connector instance `{name}`: the host config has no [[connectors]]; pass --host-config FILE (or set XLA_HOST_CONFIG) with one named `{name}`"
        );
    }
    let known: Vec<&str> = config.connectors.iter().map(|c| c.name.as_str()).collect();
    bail!(
        "no connector instance `{name}` in the host config (known: {}); use one of those or add a [[connectors]] entry named `{name}`",
        known.join(", ")
    )
}

/// Opens the configured store, sled's in `data_dir` when given.
pub(crate) async fn open_store(config: &HostConfig, data_dir: Option<&Path>) -> Result<Arc<dyn Store>> {
    Ok(config.open_store(data_dir).await?)
}

/// What a person reads after a sync: one line, then one line per gap the
/// connector reported (its data for that span is incomplete).
pub(crate) fn summary(record: &RunRecord) -> String {
    let seconds = record
        .finished
        .map_or(0.0, |end| (end - record.started) as f64 / 1000.0);
    let mut out = format!(
        "{}: run {} {:?} in {seconds:.1} s: {} batches, {} new, {} changed, {} unchanged, {} retracted, {} retries",
        record.instance,
        record.run,
        record.outcome,
        record.batches,
        record.inserted,
        record.replaced,
        record.unchanged,
        record.retracted,
        record.retries
    );
    if !record.partial.is_empty() {
        out.push_str(&format!(", PARTIAL DATA in {} span(s)", record.partial.len()));
    }
    // A run stopped on purpose says why (a source that asked to come back
    // later: the cursor is kept and the next run resumes from it).
    if let (RunOutcome::Stopped, Some(why)) = (record.outcome, &record.error) {
        out.push_str(&format!("\n  stopped: {}", crate::untrusted::escape_capped(why, 1000)));
    }
    for gap in &record.partial {
        out.push_str(&format!(
            "\n  partial: {} to {}: {}",
            super::token::time(gap.span.start),
            super::token::time(gap.span.end),
            crate::untrusted::escape_capped(&gap.reason, 500)
        ));
    }
    out
}

/// A spinner with the run's counts (the total is unknown until the end).
pub(crate) struct Bar {
    bar: ProgressBar,
    observations: u64,
}

impl Bar {
    pub(crate) fn new(instance: &str) -> Bar {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} {elapsed:>4} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(instance.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Bar { bar, observations: 0 }
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn batch(&mut self, record: &RunRecord, observations: usize) {
        self.observations += observations as u64;
        let rate = self.observations as f64 / self.bar.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_message(format!(
            "{} batches, {} observations ({rate:.0}/s): {} new, {} changed, {} unchanged",
            record.batches, self.observations, record.inserted, record.replaced, record.unchanged
        ));
    }

    fn partial(&mut self, gap: &crate::types::Gap) {
        self.bar.println(format!(
            "  partial data {} to {}: {}",
            super::token::time(gap.span.start),
            super::token::time(gap.span.end),
            crate::untrusted::escape_capped(&gap.reason, 500)
        ));
    }

    fn retry(&mut self, attempt: u32, wait: Duration, error: &RuntimeError) {
        self.bar
            .println(format!("  retry {attempt} in {:.1} s: {error}", wait.as_secs_f64()));
    }
}

//! `xla-host import <instance> <file>`: a saved export or API body, parsed
//! by the instance's connector in the sandbox (no network) and committed to
//! the store as that instance's data, beside what its syncs brought.
//!
//! The whole file is parsed before anything is stored, so a missing file,
//! an unknown instance, an undeclared media type or a parse error leaves
//! the data directory untouched (it is not even opened). Commits then go in
//! batches, each atomic, with no cursor: an import never moves the
//! instance's sync cursor. Records are keyed as a sync keys them, so
//! importing the same file again, or a file of records a sync already
//! brought, changes nothing.

use super::options::{self, LimitArgs};
use super::parse::{self, check_media_type};
use super::plugin::connector_of;
use super::sync::{find_instance, load_instance_plugin, open_store};
use crate::config::{ConnectorInstance, HostConfig};
use crate::plugins::Manifest;
use crate::runtime::Observation;
use crate::store::{CommitBatch, Provenance, RunOutcome, RunRecord, Store};
use crate::untrusted;
use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `xla-host import`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example: xla-host --host-config xla.toml import happysignals-acme export.csv --data-dir ./data"
)]
pub struct ImportArgs {
    /// The `[[connectors]]` instance whose connector parses the file and
    /// whose data it becomes.
    instance: String,
    /// The file to import (an export, a saved API body).
    file: PathBuf,
    /// Media type of the file; by default from its extension (.json
    /// application/json, .csv text/csv, .ndjson/.jsonl application/x-ndjson).
    /// It must be one the connector declares.
    #[arg(long, value_name = "TYPE")]
    media_type: Option<String>,
    /// Data directory (created if missing).
    #[arg(long, env = "XLA_HOST_DATA", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Observations per commit; each commit is atomic.
    #[arg(long, value_name = "N", default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: u64,
    /// Print a JSON report (counts and the run record) instead of a summary line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

pub(crate) async fn run(config: &HostConfig, args: ImportArgs) -> Result<ExitCode> {
    let instance = find_instance(config, &args.instance)?;
    let media_type = media_type(&args)?;
    check_file(&args.file)?;
    let runtime = options::runtime(config)?;
    let plugin = load_instance_plugin(&runtime, config.sync_setup(), instance)?;
    let pre = connector_of(&plugin, "import")?;
    let limits = config.limits.clone().with(instance.limits.as_ref());
    let limits = args.limits.apply(limits, config)?;
    // No outbound policy: parsing a file needs no network, so every request
    // the connector might make is refused, whatever the instance grants.
    let mut session = pre.session(limits, None);
    let info = session.describe().await.context("describe() failed")?;
    let described = crate::plugins::Described::connector(&info);
    crate::plugins::check_identity(&plugin.path, &plugin.manifest, described)?;
    check_media_type(pre.plugin(), &info, &media_type)?;

    let body = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let label = args.file.display().to_string();
    let spinner = spinner(&format!("parsing {label}"));
    let parsed = parse::parse(&mut session, &instance.config_json(), &media_type, &body, &label).await;
    spinner.finish_and_clear();
    drop(body);
    let observations = parsed
        .map_err(|e| anyhow::anyhow!("{e}; nothing was stored: fix the file (or --media-type) and import it again"))?;

    let store = open_store(config, args.data_dir.as_deref())?;
    let batch_size = usize::try_from(args.batch_size).unwrap_or(usize::MAX);
    let count = observations.len();
    let record = commit_all(&*store, instance, &plugin.manifest, observations, batch_size).await?;
    if args.json {
        let report = serde_json::json!({
            "file": args.file,
            "instance": instance.name,
            "tenant": instance.tenant,
            "media_type": media_type,
            "observations": count,
            "batches": record.batches,
            "inserted": record.inserted,
            "replaced": record.replaced,
            "unchanged": record.unchanged,
            "run": record,
        });
        println!("{}", untrusted::json_pretty(&report)?);
    } else {
        println!("{}", summary(&args.file, count, &record));
    }
    Ok(ExitCode::SUCCESS)
}

/// `--media-type`, else the one the file's extension implies.
fn media_type(args: &ImportArgs) -> Result<String> {
    if let Some(media_type) = &args.media_type {
        return Ok(media_type.clone());
    }
    match media_type_of(&args.file) {
        Some(media_type) => Ok(media_type.to_string()),
        None => bail!(
            "cannot tell the media type of {} from its extension (.json, .csv, .ndjson and .jsonl are known); pass --media-type, e.g. --media-type text/csv",
            args.file.display()
        ),
    }
}

fn media_type_of(path: &Path) -> Option<&'static str> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    match extension.as_str() {
        "json" => Some("application/json"),
        "csv" => Some("text/csv"),
        "ndjson" | "jsonl" => Some("application/x-ndjson"),
        _ => None,
    }
}

/// Fails early, before the plugin loads, on a path that is not a file.
fn check_file(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() => Ok(()),
        Ok(_) => bail!("{} is not a file; give the path of the file to import", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{} does not exist; give the path of the file to import", path.display())
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Commits `observations` in batches as one run of the instance's run log,
/// recorded as completed, or failed with the error.
async fn commit_all(
    store: &dyn Store,
    instance: &ConnectorInstance,
    manifest: &Manifest,
    observations: Vec<Observation>,
    batch_size: usize,
) -> Result<RunRecord> {
    let mut record = store.begin_run(&instance.tenant, &instance.name, now_ms()).await?;
    let provenance = Provenance {
        connector: instance.name.clone(),
        plugin: manifest.name.clone(),
        version: manifest.version.clone(),
        sha256: manifest.sha256.clone(),
        sync_run: record.run,
    };
    let all = CommitBatch {
        tenant: instance.tenant.clone(),
        source: instance.name.clone(),
        provenance,
        observations,
        // None leaves the stored cursor as it is: the sync's own.
        cursor: None,
    };
    let bar = progress_bar(&instance.name, all.observations.len());
    let result = commit_batches(store, all, batch_size, &mut record, &bar).await;
    bar.finish_and_clear();
    record.finished = Some(now_ms());
    record.outcome = match &result {
        Ok(()) => RunOutcome::Completed,
        Err(e) => {
            record.error = Some(format!("{e:#}"));
            RunOutcome::Failed
        }
    };
    store.save_run(&record).await?;
    result.map(|()| record)
}

/// Commits `all` in batches of `batch_size` observations, adding the counts
/// to `record`.
async fn commit_batches(
    store: &dyn Store,
    mut all: CommitBatch,
    batch_size: usize,
    record: &mut RunRecord,
    bar: &ProgressBar,
) -> Result<()> {
    let observations = std::mem::take(&mut all.observations);
    let batches = observations.len().div_ceil(batch_size);
    for (i, chunk) in observations.chunks(batch_size).enumerate() {
        let summary = store
            .commit(CommitBatch {
                observations: chunk.to_vec(),
                ..all.clone()
            })
            .await
            .with_context(|| {
                let kept = if i == 0 {
                    "no observation was stored".to_string()
                } else {
                    format!(
                        "the {i} batch(es) before it ({} observations) stay committed; fix the cause and import the file again (those count as unchanged)",
                        i * batch_size
                    )
                };
                format!("committing batch {} of {batches} to the store failed; {kept}", i + 1)
            })?;
        record.batches += 1;
        record.inserted += summary.inserted as u64;
        record.replaced += summary.replaced as u64;
        record.unchanged += summary.unchanged as u64;
        bar.inc(chunk.len() as u64);
    }
    Ok(())
}

/// One line a person reads after an import.
fn summary(file: &Path, observations: usize, record: &RunRecord) -> String {
    format!(
        "{}: {observations} observations into `{}` (tenant `{}`) in {} batch(es): {} new, {} changed, {} unchanged; recorded as run {} in the instance's run log; sync cursor untouched",
        file.display(),
        record.instance,
        record.tenant,
        record.batches,
        record.inserted,
        record.replaced,
        record.unchanged,
        record.run
    )
}

/// Observations committed out of the total; drawn on stderr only when it is
/// a terminal (indicatif hides it otherwise).
fn progress_bar(instance: &str, total: usize) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} observations committed {elapsed:>4}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(instance.to_string());
    bar
}

fn spinner(message: &str) -> ProgressBar {
    let spinner = ProgressBar::new_spinner();
    spinner.set_message(message.to_string());
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_follow_the_extension() {
        let of = |name: &str| media_type_of(Path::new(name));
        assert_eq!(of("export.CSV"), Some("text/csv"));
        assert_eq!(of("incidents.json"), Some("application/json"));
        assert_eq!(of("events.jsonl"), Some("application/x-ndjson"));
        assert_eq!(of("events.ndjson"), Some("application/x-ndjson"));
        assert_eq!(of("export.xlsx"), None);
        assert_eq!(of("export"), None);
    }
}

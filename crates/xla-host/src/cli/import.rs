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
use super::sync::{find_instance, open_store};
use crate::config::HostConfig;
use crate::store::RunRecord;
use crate::sync::push::Receiver;
use crate::untrusted;
use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::ProgressBar;
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
    let runtime = options::runtime_for(config, &args.limits)?;
    let receiver = Receiver::prepare(&runtime, config.sync_setup(), instance).await?;
    let limits = args.limits.apply(receiver.limits().clone(), config)?;
    let batch_size = usize::try_from(args.batch_size).unwrap_or(usize::MAX);
    let receiver = receiver.with_limits(limits).with_batch_size(batch_size);
    receiver
        .accepts(&media_type)
        .map_err(|e| anyhow::anyhow!("{e}. Pass one of those with --media-type"))?;

    let body = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let spinner = spinner(&format!("parsing {}", args.file.display()));
    let parsed = receiver.parse(&media_type, &body).await;
    spinner.finish_and_clear();
    drop(body);
    let changes = parsed.map_err(|e| {
        anyhow::anyhow!(
            "parsing {}: {e}: fix the file (or --media-type) and import it again",
            args.file.display()
        )
    })?;

    let store = open_store(config, args.data_dir.as_deref()).await?;
    let count = changes.value_count();
    let record = receiver.commit(&*store, changes).await?;
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
            "retracted": record.retracted,
            "partial": record.partial,
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

fn spinner(message: &str) -> ProgressBar {
    let spinner = ProgressBar::new_spinner();
    spinner.set_message(message.to_string());
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner
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

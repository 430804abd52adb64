//! The export flow across pulls: submit an export and hand it back at once
//! for the cursor, then poll its status a few times per pull and either
//! read its results file or hand it back again. Because the export is in
//! the committed cursor before its first poll, a poll or a download that
//! fails (a 5xx, a 429, a dropped connection) is retried by the sync engine
//! on the same export: a retry never submits a second export for the same
//! range (field case `12-nexthink-export-partial.json`).
//!
//! One pull polls at most [`POLLS_PER_PULL`] times (under a second and a
//! half while an export is young, about four seconds later). The wait for a
//! range is bounded by [`MAX_EXPORT_WAIT_MS`] from its first submit: past
//! it, the pull fails `Transient`, and the retry, finding the export in its
//! cursor too old, submits a new one. An export the instance says failed
//! (`ERROR`) or does not know (404) is replaced by a new one at once; after
//! [`MAX_FAILED_EXPORTS`] failures of one range in a row the pull fails
//! `Permanent` with the instance's reason (a query the instance cannot run
//! fails the same way every time: exporting it again only spends the
//! instance's daily export allowance).

use crate::config::Config;
use crate::cursor::PendingExport;
use crate::nql::{self, ExportStatus, Rows};
use xla_sdk::PluginError;
use xla_sdk::time::format_full_date;

/// Status polls in one pull.
pub const POLLS_PER_PULL: u32 = 4;
/// Polls of an export at the quick pace (waits of 50 ms doubling to 800 ms)
/// before it settles at one a second.
const QUICK_POLLS: u32 = 16;
/// How long the exports of one range may take, from the first submit.
pub const MAX_EXPORT_WAIT_MS: i64 = 20 * 60 * 1000;
/// Exports of one range the instance may fail (`ERROR`) in a row before the
/// range fails for good.
pub const MAX_FAILED_EXPORTS: u32 = 3;

/// Where a pull left an export.
#[derive(Debug)]
pub enum Progress {
    /// It completed: its rows.
    Done {
        /// The export's id.
        id: String,
        /// The results file's rows.
        rows: Rows,
        /// The status said 206: the licence's result limit cut the rows.
        truncated: bool,
    },
    /// It is submitted or still running: keep it in the cursor.
    Pending(PendingExport),
}

/// Advances the export of days `from..to`: resumes `pending` if it is that
/// range's and not too old, polls it and downloads its file once it
/// completed; else submits one and hands it back unpolled, for the cursor.
/// `clock` gives Unix ms.
pub fn advance(
    config: &Config,
    from: i64,
    to: i64,
    pending: Option<PendingExport>,
    clock: &dyn Fn() -> i64,
) -> Result<Progress, PluginError> {
    let range = format!("{}..{}", format_full_date(from), format_full_date(to));
    let submit = |started_ms: i64, failures: u32| -> Result<PendingExport, PluginError> {
        Ok(PendingExport {
            id: nql::submit_export(config, &format_full_date(from), &format_full_date(to))?,
            from: format_full_date(from),
            to: format_full_date(to),
            polls: 0,
            started_ms,
            failures,
        })
    };
    let resumable = pending.filter(|p| p.from == format_full_date(from) && p.to == format_full_date(to));
    let mut export = match resumable {
        // Into the cursor before the first poll, so that a failed poll is
        // retried on this export instead of a new one.
        None => return Ok(Progress::Pending(submit(clock(), 0)?)),
        Some(p) if clock() - p.started_ms >= MAX_EXPORT_WAIT_MS => {
            xla_sdk::log::warn(&format!(
                "export {} of {range} did not complete within {} minutes; submitting a new one",
                p.id,
                MAX_EXPORT_WAIT_MS / 60_000
            ));
            return Ok(Progress::Pending(submit(clock(), 0)?));
        }
        Some(p) => p,
    };
    for round in 0..POLLS_PER_PULL {
        pause(export.polls, round);
        // An error here leaves the export in the committed cursor: the retry polls it again.
        let status = nql::export_status(config, &export.id)?;
        export.polls += 1;
        let (why, failures) = match status {
            ExportStatus::Running => continue,
            ExportStatus::Completed { file, truncated } => {
                let rows = nql::download(config, &export.id, &file)?;
                return Ok(Progress::Done {
                    id: export.id,
                    rows,
                    truncated,
                });
            }
            ExportStatus::Failed(why) if export.failures + 1 >= MAX_FAILED_EXPORTS => {
                return Err(PluginError::Permanent(format!(
                    "export {} of {range} failed on the instance ({why}), the {} failure of this range in a row; \
                     check the NQL query `{}` on the instance before syncing again",
                    export.id,
                    ordinal(export.failures + 1),
                    config.query_id
                )));
            }
            ExportStatus::Failed(why) => (format!("failed on the instance: {why}"), export.failures + 1),
            // Expired or purged: not the query's fault.
            ExportStatus::Unknown => ("is unknown to the instance (404)".to_string(), export.failures),
        };
        // Replace it at once, keeping the range's start, which bounds the wait.
        xla_sdk::log::warn(&format!("export {} of {range} {why}; submitting a new one", export.id));
        return Ok(Progress::Pending(submit(export.started_ms, failures)?));
    }
    if clock() - export.started_ms >= MAX_EXPORT_WAIT_MS {
        return Err(PluginError::Transient(format!(
            "export {} of {range} did not complete within {} minutes ({} status polls); the next attempt starts a \
             new export",
            export.id,
            MAX_EXPORT_WAIT_MS / 60_000,
            export.polls
        )));
    }
    Ok(Progress::Pending(export))
}

/// `3rd`, `4th`: how many failures a message counts.
fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Waits before a status poll of an export polled `polls` times so far, the
/// `round`th poll of this pull. Only on wasm: native tests replay recorded
/// answers and need no wait.
fn pause(polls: u32, round: u32) {
    #[cfg(target_arch = "wasm32")]
    {
        let millis = match polls {
            0 => 0,
            QUICK_POLLS.. => 1000,
            _ => 50u64 << round.min(4),
        };
        std::thread::sleep(std::time::Duration::from_millis(millis));
    }
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (polls, round, QUICK_POLLS);
}

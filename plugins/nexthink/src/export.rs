//! The export flow across pulls: submit an export, poll its status a few
//! times, and either read its results file or hand the still-running export
//! back for the cursor, so the next pull polls it again instead of exporting
//! again.
//!
//! One pull polls at most [`POLLS_PER_PULL`] times (under a second and a
//! half while an export is young, about four seconds later). The wait for a
//! range is bounded by [`MAX_EXPORT_WAIT_MS`] from its first submit: past
//! it, the pull fails `Transient`, and the retry, finding the export in its
//! cursor too old, submits a new one.

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

/// Where a pull left an export.
#[derive(Debug)]
pub enum Progress {
    /// It completed: its rows.
    Done(Rows),
    /// It is still running: keep it in the cursor.
    Pending(PendingExport),
}

/// Advances the export of days `from..to`: resumes `pending` if it is that
/// range's and not too old, else submits one; polls; downloads when it
/// completes. `clock` gives Unix ms.
pub fn advance(
    config: &Config,
    from: i64,
    to: i64,
    pending: Option<PendingExport>,
    clock: &dyn Fn() -> i64,
) -> Result<Progress, PluginError> {
    let range = format!("{}..{}", format_full_date(from), format_full_date(to));
    let submit = |started_ms: i64| -> Result<PendingExport, PluginError> {
        Ok(PendingExport {
            id: nql::submit_export(config, &format_full_date(from), &format_full_date(to))?,
            from: format_full_date(from),
            to: format_full_date(to),
            polls: 0,
            started_ms,
        })
    };
    let resumable = pending.filter(|p| p.from == format_full_date(from) && p.to == format_full_date(to));
    let (mut export, mut fresh) = match resumable {
        Some(p) if clock() - p.started_ms < MAX_EXPORT_WAIT_MS => (p, false),
        Some(p) => {
            xla_sdk::log::warn(&format!(
                "export {} of {range} did not complete within {} minutes; submitting a new one",
                p.id,
                MAX_EXPORT_WAIT_MS / 60_000
            ));
            (submit(clock())?, true)
        }
        None => (submit(clock())?, true),
    };
    for round in 0..POLLS_PER_PULL {
        pause(export.polls, round);
        let status = nql::export_status(config, &export.id)?;
        export.polls += 1;
        let why = match status {
            ExportStatus::Running => continue,
            ExportStatus::Completed(file) => return nql::download(config, &export.id, &file).map(Progress::Done),
            ExportStatus::Failed(why) => format!("failed on the instance: {why}"),
            ExportStatus::Unknown => "is unknown to the instance (404)".to_string(),
        };
        if fresh {
            // Submitted in this pull, so not in the cursor: the retry submits anew.
            return Err(PluginError::Transient(format!("export {} of {range} {why}", export.id)));
        }
        // Resumed from the cursor: an error now would leave it there for the
        // retry to find failed again, so replace it at once (keeping the
        // range's start, which bounds the wait).
        xla_sdk::log::warn(&format!("export {} of {range} {why}; submitting a new one", export.id));
        export = submit(export.started_ms)?;
        fresh = true;
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

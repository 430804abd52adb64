//! The `rows` host import: per-subject rows (one per ticket, joined across
//! sources) streamed to a scorer in batches through a `row-reader`
//! resource, so a month of 300,000 tickets never sits in guest memory at once.

use crate::SubjectRow;
use crate::state::PluginState;
use wasmtime::component::Resource;

/// Largest batch a scorer may ask for at once, whatever it requests.
const MAX_ROW_BATCH: u32 = 4096;

/// The rows behind one `row-reader` resource.
pub struct RowCursor {
    rows: Box<dyn Iterator<Item = SubjectRow> + Send>,
}

impl RowCursor {
    /// A reader over `rows`.
    pub(crate) fn new(rows: Box<dyn Iterator<Item = SubjectRow> + Send>) -> RowCursor {
        RowCursor { rows }
    }
}

/// The next `max` rows (at most [`MAX_ROW_BATCH`]) of `reader`; none once
/// it is exhausted.
///
/// # Errors
/// A trap naming the plugin when `reader` is not a reader the host handed
/// out: that is a host bug, and answering "no rows" would hide it.
pub(crate) fn next_batch(
    state: &mut PluginState,
    reader: &Resource<RowCursor>,
    max: u32,
) -> wasmtime::Result<Vec<SubjectRow>> {
    let handle = reader.rep();
    let plugin = state.plugin.clone();
    let cursor = state.table.get_mut(reader).map_err(|e| {
        wasmtime::format_err!(
            "{plugin}: row-reader {handle} is not a live reader ({e}); this is a host bug, please report it"
        )
    })?;
    Ok(cursor.rows.by_ref().take(max.min(MAX_ROW_BATCH) as usize).collect())
}

//! Rollup sets as sled stores them: the cells of one tenant, metric, day
//! and dimension, by dimension value, in one postcard value, so a month's
//! report reads thousands of values, not millions of rows.

use std::collections::BTreeMap;
use xla_store::Rollup;

/// The cells of one day and dimension, by dimension value (0 for the cell
/// of all rows).
pub(crate) type RollupSet = BTreeMap<u32, Rollup>;

pub(crate) fn encode_set(set: &RollupSet) -> Result<Vec<u8>, crate::StoreError> {
    postcard::to_allocvec(set).map_err(|e| crate::StoreError::Corrupt(format!("encoding rollups: {e}")))
}

pub(crate) fn decode_set(bytes: &[u8]) -> Result<RollupSet, crate::StoreError> {
    let set: RollupSet = postcard::from_bytes(bytes)
        .map_err(|e| crate::StoreError::Corrupt(format!("stored rollups do not decode: {e}")))?;
    if set.values().any(|cell| !cell.sketch.is_sane()) {
        return Err(crate::StoreError::corrupt("a stored quantile sketch is out of range"));
    }
    Ok(set)
}

//! The key layout of the store's one sled tree. Everything lives in one tree
//! so that a batch of observations, the rollups it changes and the
//! connector's cursor commit in one atomic `apply_batch`.
//!
//! ```text
//! M <name>                                  metadata (format version, counters, retention cutoffs)
//! D 0 <string>            -> id             dictionary, string to id
//! D 1 <id>                -> string         dictionary, id to string
//! B <tenant><metric><day><block>  -> Block  rows of one commit for one metric and UTC day
//! Q <tenant><metric><day><block>  -> Block  the same block once retention dropped its raw rows
//! R <tenant><metric><day><dim key> -> set   rollup cells of a day for one dimension (0: all rows)
//! C <tenant><source>              -> cursor connector cursors
//! L <tenant><instance><run>       -> run    the sync run log (see `runs`)
//! T <token id>                    -> token  API token records, SHA-256 only (see `tokens`)
//! K <block>                       -> meta   a block's key and its rows present and live (see `index`)
//! J <entry>                       -> journal a commit's index changes not yet in the table (see `index`)
//! Y <tenant><number less 2 bytes> -> bucket the ticket join's state of ~100 ticket numbers (see `join`)
//! Y <tenant><number less 2 bytes> FF <n> -> delta the numbers a later commit changed in that bucket (see `join::bucket`)
//! Z <tenant><metric><day><block>  -> slots  the join rows of a block: ticket number, time, where each counts
//! S <tenant><metric><day><dim key> -> set   joined rollup cells: values by their ticket's dimensions
//! ```
//!
//! Rows live in blocks, not a key each: sled 0.34 manages about 65,000
//! small-key writes a second here, so a key per observation could never
//! ingest hundreds of thousands a second, while a block of a few hundred
//! rows costs one write. Integers are big-endian so that byte order is
//! numeric order; days have their sign bit flipped so negative days sort first.

pub(crate) const FORMAT: &[u8] = b"Mformat";
pub(crate) const DICT_NEXT: &[u8] = b"Mdict-next";
pub(crate) const BLOCK_NEXT: &[u8] = b"Mblock-next";
/// The store's identity (big-endian u64), which its index table carries.
pub(crate) const STORE_ID: &[u8] = b"Mstore-id";
/// The last journal entry written (big-endian u64).
pub(crate) const JOURNAL_LAST: &[u8] = b"Mjournal-last";
/// The last sync run id handed out (see `runs`).
pub(crate) const RUN_NEXT: &[u8] = b"Mrun-next";
/// Present while the ticket join is to be built from the rows (see
/// `join::Sled::rebuild_join`): set by the upgrade from format 5.
pub(crate) const JOIN_REBUILD: &[u8] = b"Mjoin-rebuild";
/// The first block whose rows of every metric the ticket join lists under
/// the number they name (big-endian u64; see `index::SubjectDims`): set by
/// the upgrade from a format before 10, absent in a store created since.
pub(crate) const ROWS_BY_NUMBER_FROM: &[u8] = b"Mrows-by-number-from";
/// Prefix of the blocks' records.
pub(crate) const BLOCK_META: u8 = b'K';
const JOURNAL: u8 = b'J';

const DICT: u8 = b'D';
const LIVE: u8 = b'B';
const RETIRED: u8 = b'Q';
pub(crate) const CURSOR: u8 = b'C';
const ROLLUP: u8 = b'R';
const TOMBSTONE: u8 = b'X';
const GAPS: u8 = b'G';
const WRITTEN: u8 = b'W';
const JOIN_STATE: u8 = b'Y';
const JOINED_BLOCK: u8 = b'Z';
const JOINED_SET: u8 = b'S';

/// Every key prefix the ticket join writes: what a rebuild of it clears.
pub(crate) const JOIN_PREFIXES: [u8; 3] = [JOIN_STATE, JOINED_BLOCK, JOINED_SET];

pub(crate) use xla_store::{DAY_MS, SUBJECT_DIMENSIONS, UNROLLED_DIMENSIONS, day_of};
use xla_types::Layer;

fn day_bytes(day: i32) -> [u8; 4] {
    ((day as u32) ^ (1 << 31)).to_be_bytes()
}

fn day_from(bytes: &[u8]) -> Option<i32> {
    let array: [u8; 4] = bytes.try_into().ok()?;
    Some((u32::from_be_bytes(array) ^ (1 << 31)) as i32)
}

fn u32_from(bytes: Option<&[u8]>) -> Option<u32> {
    Some(u32::from_be_bytes(bytes?.try_into().ok()?))
}

pub(crate) fn dict_forward(s: &str) -> Vec<u8> {
    let mut key = vec![DICT, 0];
    key.extend_from_slice(s.as_bytes());
    key
}

pub(crate) fn dict_forward_prefix() -> [u8; 2] {
    [DICT, 0]
}

pub(crate) fn dict_reverse(id: u32) -> Vec<u8> {
    let mut key = vec![DICT, 1];
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// Where a block of rows lives: a tenant's metric on one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct BlockKey {
    pub tenant: u32,
    pub metric: u32,
    pub day: i32,
    pub block: u64,
    /// Whether retention dropped the raw rows (the block keeps what a later
    /// replace needs to correct the rollups).
    pub retired: bool,
}

impl BlockKey {
    pub fn key(&self) -> [u8; 21] {
        let mut key = [0; 21];
        key[0] = if self.retired { RETIRED } else { LIVE };
        key[1..5].copy_from_slice(&self.tenant.to_be_bytes());
        key[5..9].copy_from_slice(&self.metric.to_be_bytes());
        key[9..13].copy_from_slice(&day_bytes(self.day));
        key[13..21].copy_from_slice(&self.block.to_be_bytes());
        key
    }

    pub fn parse(key: &[u8]) -> Option<BlockKey> {
        let retired = match *key.first()? {
            LIVE => false,
            RETIRED => true,
            _ => return None,
        };
        if key.len() != 21 {
            return None;
        }
        Some(BlockKey {
            tenant: u32_from(key.get(1..5))?,
            metric: u32_from(key.get(5..9))?,
            day: day_from(key.get(9..13)?)?,
            block: u64::from_be_bytes(key.get(13..21)?.try_into().ok()?),
            retired,
        })
    }
}

/// The record of block `id` (see `index::BlockMeta`).
pub(crate) fn block_meta(id: u64) -> [u8; 9] {
    let mut key = [BLOCK_META; 9];
    key[1..].copy_from_slice(&id.to_be_bytes());
    key
}

/// Journal entry `n` (see `index`).
pub(crate) fn journal(n: u64) -> [u8; 9] {
    let mut key = [JOURNAL; 9];
    key[1..].copy_from_slice(&n.to_be_bytes());
    key
}

/// Every block key of one kind (live or retired).
pub(crate) fn blocks_prefix(retired: bool) -> [u8; 1] {
    [if retired { RETIRED } else { LIVE }]
}

/// The live blocks of a tenant.
pub(crate) fn tenant_blocks(tenant: u32) -> [u8; 5] {
    let mut key = [LIVE; 5];
    key[1..5].copy_from_slice(&tenant.to_be_bytes());
    key
}

/// The first key after every live block of a tenant.
pub(crate) fn tenant_blocks_end(tenant: u32) -> Vec<u8> {
    match tenant.checked_add(1) {
        Some(next) => tenant_blocks(next).to_vec(),
        None => vec![LIVE + 1],
    }
}

/// The live blocks of a tenant's metric on days `[from_day, to_day)`.
pub(crate) fn block_range(tenant: u32, metric: u32, from_day: i32, to_day: i32) -> (Vec<u8>, Vec<u8>) {
    let prefix = |day: i32| {
        let mut key = vec![LIVE];
        key.extend_from_slice(&tenant.to_be_bytes());
        key.extend_from_slice(&metric.to_be_bytes());
        key.extend_from_slice(&day_bytes(day));
        key
    };
    (prefix(from_day), prefix(to_day))
}

/// A retracted record: its fingerprint, valued with the first block id
/// written after the retraction. On open, a row of that record in an older
/// block is not live (an older version a replace left behind must not come
/// back when the newest is retracted).
pub(crate) fn tombstone(fingerprint: u128) -> Vec<u8> {
    let mut key = vec![TOMBSTONE];
    key.extend_from_slice(&fingerprint.to_le_bytes());
    key
}

/// Prefix of every tombstone.
pub(crate) const TOMBSTONES: &[u8] = &[TOMBSTONE];

/// The open gaps of a connector instance (JSON list of gaps).
pub(crate) fn gaps(tenant: u32, source: u32) -> Vec<u8> {
    let mut key = vec![GAPS];
    key.extend_from_slice(&tenant.to_be_bytes());
    key.extend_from_slice(&source.to_be_bytes());
    key
}

/// The metrics a connector instance has stored (postcard list of
/// dictionary ids, sorted): which values a gap of that source may concern.
pub(crate) fn written(tenant: u32, source: u32) -> Vec<u8> {
    let mut key = vec![WRITTEN];
    key.extend_from_slice(&tenant.to_be_bytes());
    key.extend_from_slice(&source.to_be_bytes());
    key
}

/// Prefix of a tenant's gaps.
pub(crate) fn gaps_prefix(tenant: u32) -> Vec<u8> {
    let mut key = vec![GAPS];
    key.extend_from_slice(&tenant.to_be_bytes());
    key
}

pub(crate) fn cursor(tenant: u32, source: u32) -> Vec<u8> {
    let mut key = vec![CURSOR];
    key.extend_from_slice(&tenant.to_be_bytes());
    key.extend_from_slice(&source.to_be_bytes());
    key
}

/// The rollup cells of a tenant's metric on one day for one dimension key
/// (0: the cell of all rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SetKey {
    pub tenant: u32,
    pub metric: u32,
    pub day: i32,
    pub dim_key: u32,
}

impl SetKey {
    pub fn key(&self) -> [u8; 17] {
        self.key_with(ROLLUP)
    }

    /// The key of the same set among the joined rollups (`S`): the cells
    /// of values counted under their ticket's dimensions.
    pub fn joined_key(&self) -> [u8; 17] {
        self.key_with(JOINED_SET)
    }

    fn key_with(&self, prefix: u8) -> [u8; 17] {
        let mut key = [0; 17];
        key[0] = prefix;
        key[1..5].copy_from_slice(&self.tenant.to_be_bytes());
        key[5..9].copy_from_slice(&self.metric.to_be_bytes());
        key[9..13].copy_from_slice(&day_bytes(self.day));
        key[13..17].copy_from_slice(&self.dim_key.to_be_bytes());
        key
    }

    pub fn parse(key: &[u8]) -> Option<SetKey> {
        Self::parse_with(key, ROLLUP)
    }

    /// Parses a joined set's key (see [`SetKey::joined_key`]).
    pub fn parse_joined(key: &[u8]) -> Option<SetKey> {
        Self::parse_with(key, JOINED_SET)
    }

    fn parse_with(key: &[u8], prefix: u8) -> Option<SetKey> {
        if key.first() != Some(&prefix) || key.len() != 17 {
            return None;
        }
        Some(SetKey {
            tenant: u32_from(key.get(1..5))?,
            metric: u32_from(key.get(5..9))?,
            day: day_from(key.get(9..13)?)?,
            dim_key: u32_from(key.get(13..17))?,
        })
    }
}

/// Prefix of every rollup set.
pub(crate) fn rollups_prefix() -> [u8; 1] {
    [ROLLUP]
}

/// Rollup sets of a tenant's metric on days `[from_day, to_day)`.
pub(crate) fn rollup_range(tenant: u32, metric: u32, from_day: i32, to_day: i32) -> (Vec<u8>, Vec<u8>) {
    day_range(ROLLUP, tenant, metric, from_day, to_day)
}

/// Joined rollup sets (`S`) of a tenant's metric on days `[from_day, to_day)`.
pub(crate) fn joined_set_range(tenant: u32, metric: u32, from_day: i32, to_day: i32) -> (Vec<u8>, Vec<u8>) {
    day_range(JOINED_SET, tenant, metric, from_day, to_day)
}

fn day_range(kind: u8, tenant: u32, metric: u32, from_day: i32, to_day: i32) -> (Vec<u8>, Vec<u8>) {
    let prefix = |day: i32| {
        let mut key = vec![kind];
        key.extend_from_slice(&tenant.to_be_bytes());
        key.extend_from_slice(&metric.to_be_bytes());
        key.extend_from_slice(&day_bytes(day));
        key
    };
    (prefix(from_day), prefix(to_day))
}

/// The join rows of a block (`Z`), by slot: keyed as the block itself, so
/// that a day's join rows are one range that reads no rows.
pub(crate) fn joined_block(tenant: u32, metric: u32, day: i32, block: u64) -> [u8; 21] {
    let mut key = BlockKey {
        tenant,
        metric,
        day,
        block,
        retired: false,
    }
    .key();
    key[0] = JOINED_BLOCK;
    key
}

/// The key of the live block of rows whose `Z` block is under `joined`
/// (keyed alike but for the first byte); `None` for a key not of `Z`.
pub(crate) fn live_block_of_joined(joined: &[u8]) -> Option<Vec<u8>> {
    let (&first, rest) = joined.split_first()?;
    (first == JOINED_BLOCK).then(|| std::iter::once(LIVE).chain(rest.iter().copied()).collect())
}

/// The `Z` blocks of a tenant's metric on days `[from_day, to_day)`.
pub(crate) fn joined_block_range(tenant: u32, metric: u32, from_day: i32, to_day: i32) -> (Vec<u8>, Vec<u8>) {
    day_range(JOINED_BLOCK, tenant, metric, from_day, to_day)
}

/// The bucket of the ticket join's state that holds `number` (`Y`): the
/// numbers that share all but their last two bytes, about a hundred of a
/// sequence like ServiceNow's (`INC0012300` to `INC0012399`), so that a
/// commit of thousands of tickets writes tens of values, not thousands.
pub(crate) fn join_bucket(tenant: u32, number: &str) -> Vec<u8> {
    let bytes = number.as_bytes();
    let stem = &bytes[..bytes.len().saturating_sub(2)];
    let mut key = Vec::with_capacity(5 + stem.len());
    key.push(JOIN_STATE);
    key.extend_from_slice(&tenant.to_be_bytes());
    key.extend_from_slice(stem);
    key
}

/// A layer as one byte in a stored row.
pub(crate) fn layer_code(layer: Layer) -> u8 {
    match layer {
        Layer::Experience => 0,
        Layer::Operational => 1,
        Layer::Technical => 2,
    }
}

pub(crate) fn layer_from_code(code: u8) -> Layer {
    match code {
        0 => Layer::Experience,
        1 => Layer::Operational,
        _ => Layer::Technical,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_keys_round_trip_and_sort_by_day() {
        let key = |day, block| BlockKey {
            tenant: 1,
            metric: 2,
            day,
            block,
            retired: false,
        };
        let early = key(-3, 9);
        assert_eq!(BlockKey::parse(&early.key()), Some(early));
        assert!(early.key() < key(0, 1).key(), "negative days sort first");
        let retired = BlockKey { retired: true, ..early };
        assert_eq!(BlockKey::parse(&retired.key()), Some(retired));
        assert_eq!(BlockKey::parse(b"Bshort"), None);
    }

    #[test]
    fn set_keys_round_trip() {
        let set = SetKey {
            tenant: 1,
            metric: 2,
            day: -3,
            dim_key: 4,
        };
        assert_eq!(SetKey::parse(&set.key()), Some(set));
        let (start, end) = rollup_range(1, 2, -3, -2);
        assert!(start.as_slice() <= set.key().as_slice() && set.key().as_slice() < end.as_slice());
        assert_eq!(day_of(-1), -1);
    }
}

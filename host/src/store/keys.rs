//! The key layout of the store's one sled tree. Everything lives in one tree
//! so that a batch of observations, their index entries, the rollups they
//! change and the connector's cursor commit in one atomic `apply_batch`.
//!
//! ```text
//! M <name>                                   metadata (format version, dictionary counter)
//! D 0 <string>            -> id              dictionary, string to id
//! D 1 <id>                -> string          dictionary, id to string
//! O <tenant><metric><time><source><id>       -> row       observations, for range scans by time
//! I <tenant><source><len><id><metric>        -> time      index for idempotent replace
//! C <tenant><source>                         -> cursor    connector cursors
//! R <tenant><metric><day><dim key><dim value> -> rollup   rollups (dimension 0/0: all rows)
//! S <tenant><dim key><dim value><metric><source><id>      subject index (ticket, device)
//! ```
//!
//! Integers are big-endian so that byte order is numeric order; times and
//! days have their sign bit flipped so that negative values sort first.

pub(crate) const FORMAT: &[u8] = b"Mformat";
pub(crate) const DICT_NEXT: &[u8] = b"Mdict-next";

const DICT: u8 = b'D';
const OBSERVATION: u8 = b'O';
const INDEX: u8 = b'I';
const CURSOR: u8 = b'C';
const ROLLUP: u8 = b'R';
const SUBJECT: u8 = b'S';

/// Dimensions that name a subject whose observations can be listed across
/// sources (a ticket: its rating, its lost time, its SLA, its reassignments).
pub(crate) const SUBJECT_DIMENSIONS: [&str; 2] = ["ticket", "device"];

/// Dimensions with a value per subject or person: rolling them up would make
/// a cell per ticket, so they get no rollup cells (subjects are indexed instead).
pub(crate) const UNROLLED_DIMENSIONS: [&str; 3] = ["ticket", "device", "user"];

/// Milliseconds in a day.
pub(crate) const DAY_MS: i64 = 86_400_000;

fn time(at: i64) -> [u8; 8] {
    ((at as u64) ^ (1 << 63)).to_be_bytes()
}

pub(crate) fn time_from(bytes: &[u8]) -> Option<i64> {
    let array: [u8; 8] = bytes.try_into().ok()?;
    Some((u64::from_be_bytes(array) ^ (1 << 63)) as i64)
}

fn day_bytes(day: i32) -> [u8; 4] {
    ((day as u32) ^ (1 << 31)).to_be_bytes()
}

/// The UTC day number of a time.
pub(crate) fn day_of(at: i64) -> i32 {
    at.div_euclid(DAY_MS) as i32
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

pub(crate) fn observation(tenant: u32, metric: u32, at: i64, source: u32, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(21 + id.len());
    key.push(OBSERVATION);
    key.extend_from_slice(&tenant.to_be_bytes());
    key.extend_from_slice(&metric.to_be_bytes());
    key.extend_from_slice(&time(at));
    key.extend_from_slice(&source.to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    key
}

/// The parts of an observation key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObservationKey {
    pub metric: u32,
    pub at: i64,
    pub source: u32,
    pub id: String,
}

/// Parses an observation key (the tenant is whatever the caller scanned).
pub(crate) fn parse_observation(key: &[u8]) -> Option<ObservationKey> {
    let u32_at = |i: usize| {
        key.get(i..i + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
    };
    if key.first() != Some(&OBSERVATION) {
        return None;
    }
    Some(ObservationKey {
        metric: u32_at(5)?,
        at: time_from(key.get(9..17)?)?,
        source: u32_at(17)?,
        id: String::from_utf8_lossy(key.get(21..)?).into_owned(),
    })
}

/// Keys of one tenant's metric observed in `[from, to)`.
pub(crate) fn observation_range(tenant: u32, metric: u32, from: i64, to: i64) -> (Vec<u8>, Vec<u8>) {
    let prefix = |at: i64| {
        let mut key = vec![OBSERVATION];
        key.extend_from_slice(&tenant.to_be_bytes());
        key.extend_from_slice(&metric.to_be_bytes());
        key.extend_from_slice(&time(at));
        key
    };
    (prefix(from), prefix(to))
}

pub(crate) fn index(tenant: u32, source: u32, id: &str, metric: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(15 + id.len());
    key.push(INDEX);
    key.extend_from_slice(&tenant.to_be_bytes());
    key.extend_from_slice(&source.to_be_bytes());
    key.extend_from_slice(&(id.len() as u16).to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    key.extend_from_slice(&metric.to_be_bytes());
    key
}

pub(crate) fn cursor(tenant: u32, source: u32) -> Vec<u8> {
    let mut key = vec![CURSOR];
    key.extend_from_slice(&tenant.to_be_bytes());
    key.extend_from_slice(&source.to_be_bytes());
    key
}

pub(crate) fn subject(tenant: u32, dim: (u32, u32), metric: u32, source: u32, id: &str) -> Vec<u8> {
    let mut key = subject_prefix(tenant, dim);
    key.extend_from_slice(&metric.to_be_bytes());
    key.extend_from_slice(&source.to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    key
}

pub(crate) fn subject_prefix(tenant: u32, (dim_key, dim_value): (u32, u32)) -> Vec<u8> {
    let mut key = Vec::with_capacity(21);
    key.push(SUBJECT);
    key.extend_from_slice(&tenant.to_be_bytes());
    key.extend_from_slice(&dim_key.to_be_bytes());
    key.extend_from_slice(&dim_value.to_be_bytes());
    key
}

/// A rollup cell: `dimension` 0/0 holds every row of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Cell {
    pub tenant: u32,
    pub metric: u32,
    pub day: i32,
    pub dim_key: u32,
    pub dim_value: u32,
}

impl Cell {
    pub fn key(&self) -> Vec<u8> {
        let mut key = Vec::with_capacity(21);
        key.push(ROLLUP);
        key.extend_from_slice(&self.tenant.to_be_bytes());
        key.extend_from_slice(&self.metric.to_be_bytes());
        key.extend_from_slice(&day_bytes(self.day));
        key.extend_from_slice(&self.dim_key.to_be_bytes());
        key.extend_from_slice(&self.dim_value.to_be_bytes());
        key
    }

    /// Parses a rollup key.
    pub fn from_key(key: &[u8]) -> Option<Cell> {
        if key.len() != 21 || key[0] != ROLLUP {
            return None;
        }
        let u32_at = |i: usize| {
            key.get(i..i + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
        };
        Some(Cell {
            tenant: u32_at(1)?,
            metric: u32_at(5)?,
            day: (u32_at(9)? ^ (1 << 31)) as i32,
            dim_key: u32_at(13)?,
            dim_value: u32_at(17)?,
        })
    }
}

/// Rollup keys of one tenant's metric for days `[from, to)`.
pub(crate) fn rollup_range(tenant: u32, metric: u32, from_day: i32, to_day: i32) -> (Vec<u8>, Vec<u8>) {
    let prefix = |day: i32| {
        let mut key = vec![ROLLUP];
        key.extend_from_slice(&tenant.to_be_bytes());
        key.extend_from_slice(&metric.to_be_bytes());
        key.extend_from_slice(&day_bytes(day));
        key
    };
    (prefix(from_day), prefix(to_day))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_sort_numerically_across_zero() {
        let keys: Vec<Vec<u8>> = [-5_000i64, -1, 0, 1, 86_400_000]
            .iter()
            .map(|&t| observation(1, 2, t, 3, "x"))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(time_from(&time(-42)), Some(-42));
        let parsed = parse_observation(&observation(1, 2, -7, 3, "sys1")).expect("parses");
        assert_eq!(
            (parsed.metric, parsed.at, parsed.source, parsed.id.as_str()),
            (2, -7, 3, "sys1")
        );
    }

    #[test]
    fn cells_round_trip() {
        let cell = Cell {
            tenant: 1,
            metric: 2,
            day: -3,
            dim_key: 4,
            dim_value: 5,
        };
        assert_eq!(Cell::from_key(&cell.key()), Some(cell));
        assert_eq!(day_of(-1), -1);
    }
}

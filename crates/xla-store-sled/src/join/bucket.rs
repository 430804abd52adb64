//! A `Y` bucket as a commit holds it: decoded only for the numbers the
//! commit touches, and written as a delta of those numbers.
//!
//! A commit of ten thousand ServiceNow incidents touches about 320 buckets
//! holding about 26,500 numbers, of which it changes 9,500 (incidents
//! resolved in one window were opened over a longer one). Decoding and
//! encoding every number of each bucket was a tenth of a sync's CPU; now
//! the others are found by walking their bytes and copied as they were.
//! Writing every bucket whole made the join half of all the bytes a sync
//! hands sled (each bucket was written about three times, a third fuller
//! each time); now a commit writes only the numbers it read, as a delta
//! beside the bucket (key: the bucket's, `0xFF`, a sequence byte; no UTF-8
//! number holds `0xFF`, so no other bucket's key starts the same), and
//! writes the bucket whole again only after [`MAX_DELTAS`] deltas or once
//! they hold [`DELTA_RATIO`] times its bytes.
//!
//! Each layer's bytes are postcard's for a map from number to [`Entries`]
//! (a count, then each number's length, its text and its entries, in
//! number order): the same as before, so buckets stored by any build read
//! back. In a delta, a number with no entries was emptied by that commit.

use super::{Entries, SkipEntries, decode};
use crate::StoreError;
use crate::block::varint;
use std::collections::BTreeMap;
use std::ops::Range;

/// Deltas a bucket has at most: the commit that would write one more
/// writes the bucket whole instead (and removes them), so a read merges at
/// most this many.
const MAX_DELTAS: usize = 4;

/// A commit writes the bucket whole instead of a delta once the deltas
/// would hold more than this many times the bucket's own bytes: what is
/// kept on disk stays within a small multiple of the state.
const DELTA_RATIO: usize = 2;

/// The byte that separates a bucket's key from its deltas' sequence byte.
const DELTA_MARK: u8 = 0xFF;

/// Where a bucket's deltas are: its key, then [`DELTA_MARK`].
pub(super) fn delta_prefix(key: &[u8]) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(key.len() + 2);
    prefix.extend_from_slice(key);
    prefix.push(DELTA_MARK);
    prefix
}

/// A stored number of a bucket: its text and its entries as byte ranges
/// of the stored bytes (the newest layer that holds it), and whether a
/// commit read it (its state is then in [`Bucket::read`], and replaces
/// these bytes).
struct Span {
    name: Range<usize>,
    entries: Range<usize>,
    read: bool,
}

/// A `Y` bucket: its stored numbers, as bytes until read, and the numbers
/// read or added since.
#[derive(Default)]
pub(super) struct Bucket {
    /// The bucket's layers as stored, unframed, one after the other: the
    /// bucket's own value, then its deltas, oldest first.
    stored: Vec<u8>,
    /// Each stored number, in number order, from the newest layer that
    /// holds it; numbers a delta emptied are left out.
    spans: Vec<Span>,
    /// The numbers read or added, with their state: these replace their
    /// stored bytes when the bucket is encoded.
    read: BTreeMap<String, Entries>,
    /// The bucket's own value's bytes (0 when it has none).
    base: usize,
    /// The keys of its deltas, oldest first.
    deltas: Vec<Vec<u8>>,
}

/// What a commit writes for a bucket: a key and its value (unframed), or
/// `None` to remove the key.
pub(super) type Write = (Vec<u8>, Option<Vec<u8>>);

impl Bucket {
    /// Reads a stored bucket of one layer (as every bucket was before
    /// deltas).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the bytes are not a bucket.
    #[cfg(test)]
    pub fn decode(stored: Vec<u8>) -> Result<Bucket, StoreError> {
        Bucket::load(&[], Some(stored), Vec::new())
    }

    /// Reads the layout of the bucket under `key` from its own value
    /// (unframed) and its deltas' keys and values (unframed, in key order):
    /// where each number and its entries lie, the newest layer holding a
    /// number winning.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a layer is not a bucket, when the deltas
    /// are not the bucket's 0, 1, 2... (the next one a commit writes is
    /// numbered by how many there are, so a gap would have it overwrite
    /// one), more than a commit leaves, or there without the bucket (a
    /// commit writes a bucket whole first).
    pub fn load(key: &[u8], base: Option<Vec<u8>>, deltas: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Bucket, StoreError> {
        if deltas.len() > MAX_DELTAS {
            return Err(corrupt("more deltas than a commit writes"));
        }
        let mut stored = base.unwrap_or_default();
        let base = stored.len();
        if base == 0 && !deltas.is_empty() {
            return Err(corrupt("deltas without their bucket"));
        }
        let mut layers = Vec::with_capacity(1 + deltas.len());
        if base > 0 {
            layers.push(layer(&stored, 0..base)?);
        }
        let prefix = delta_prefix(key);
        let mut keys = Vec::with_capacity(deltas.len());
        for (i, (delta_key, bytes)) in deltas.into_iter().enumerate() {
            if delta_key.len() != prefix.len() + 1
                || !delta_key.starts_with(&prefix)
                || delta_key.last() != Some(&(i as u8))
            {
                return Err(corrupt("its deltas are not numbered 0, 1, 2..."));
            }
            let start = stored.len();
            stored.extend_from_slice(&bytes);
            layers.push(layer(&stored, start..stored.len())?);
            keys.push(delta_key);
        }
        let spans = match layers.len() {
            0 => Vec::new(),
            1 => layers.pop().unwrap_or_default(),
            _ => newest_of_each(&stored, layers),
        };
        Ok(Bucket {
            stored,
            spans,
            read: BTreeMap::new(),
            base,
            deltas: keys,
        })
    }

    /// The state of `number`, decoded from the stored bytes the first time
    /// (empty for a number the bucket does not hold).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when its stored entries do not decode.
    pub fn state(&mut self, number: &str) -> Result<&mut Entries, StoreError> {
        // Looked up before an entry is made: a commit asks for a number it
        // read already more often than for a new one (no text copied then).
        if self.read.contains_key(number) {
            return self
                .read
                .get_mut(number)
                .ok_or_else(|| corrupt("a read number vanished"));
        }
        match self.read.entry(number.to_string()) {
            std::collections::btree_map::Entry::Occupied(read) => Ok(read.into_mut()),
            std::collections::btree_map::Entry::Vacant(slot) => {
                let entries = match find(&self.stored, &self.spans, number) {
                    Some(at) => {
                        let entries = decode::<Entries>(&self.stored[self.spans[at].entries.clone()])?;
                        self.spans[at].read = true;
                        entries
                    }
                    None => Entries::default(),
                };
                Ok(slot.insert(entries))
            }
        }
    }

    /// What a commit writes for the bucket under `key`: a delta of the
    /// numbers it read, or (with no stored value yet, [`MAX_DELTAS`]
    /// deltas already, or deltas past [`DELTA_RATIO`] times the value) the
    /// bucket whole, its deltas removed; with no number left, the bucket
    /// and its deltas removed.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if a state does not encode.
    pub fn writes(&self, key: &[u8]) -> Result<Vec<Write>, StoreError> {
        let Some(delta) = self.encode_delta()? else {
            return Ok(Vec::new());
        };
        // A bucket left with no number goes, deltas and all, rather than
        // keep a delta that empties it.
        let left = self.spans.iter().any(|span| !span.read) || self.read.values().any(|state| !state.is_empty());
        if left && self.base > 0 && self.deltas.len() < MAX_DELTAS {
            let held = self.stored.len() - self.base + delta.len();
            if held <= DELTA_RATIO * self.base {
                let mut delta_key = delta_prefix(key);
                // Fewer than MAX_DELTAS (< 256) deltas: one byte, in order.
                delta_key.push(self.deltas.len() as u8);
                return Ok(vec![(delta_key, Some(delta))]);
            }
        }
        let mut writes: Vec<Write> = self.deltas.iter().map(|key| (key.clone(), None)).collect();
        writes.push((key.to_vec(), self.encode()?));
        Ok(writes)
    }

    /// The numbers read, encoded as a delta: each with its state now, an
    /// emptied stored number with none. `None` when there is nothing to
    /// write (only numbers read that were never stored and stayed empty).
    fn encode_delta(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let changed: Vec<(&String, &Entries)> = self
            .read
            .iter()
            .filter(|(number, state)| !state.is_empty() || find(&self.stored, &self.spans, number).is_some())
            .collect();
        if changed.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(64 * changed.len());
        varint(&mut out, changed.len() as u64);
        for (number, state) in changed {
            out = write_number(out, number, state)?;
        }
        Ok(Some(out))
    }

    /// The bucket's bytes, unframed: stored numbers not read copied as they
    /// were, read ones encoded again, empty states left out. `None` when no
    /// number is left.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if a state does not encode.
    pub fn encode(&self) -> Result<Option<Vec<u8>>, StoreError> {
        // Both in number order: merged like two sorted runs.
        enum Next<'a> {
            Stored(&'a Span),
            Read(&'a str, &'a Entries),
        }
        let mut stored = self.spans.iter().filter(|span| !span.read).peekable();
        let mut read = self.read.iter().filter(|(_, state)| !state.is_empty()).peekable();
        let count = stored.clone().count() + read.clone().count();
        if count == 0 {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(self.stored.len() + 64 * self.read.len());
        varint(&mut out, count as u64);
        loop {
            let next = match (stored.peek().copied(), read.peek().copied()) {
                (Some(span), Some((number, state))) => {
                    if self.stored[span.name.clone()] < *number.as_bytes() {
                        stored.next();
                        Next::Stored(span)
                    } else {
                        read.next();
                        Next::Read(number, state)
                    }
                }
                (Some(span), None) => {
                    stored.next();
                    Next::Stored(span)
                }
                (None, Some((number, state))) => {
                    read.next();
                    Next::Read(number, state)
                }
                (None, None) => break,
            };
            match next {
                Next::Stored(span) => {
                    varint(&mut out, span.name.len() as u64);
                    out.extend_from_slice(&self.stored[span.name.clone()]);
                    out.extend_from_slice(&self.stored[span.entries.clone()]);
                }
                Next::Read(number, state) => out = write_number(out, number, state)?,
            }
        }
        Ok(Some(out))
    }
}

/// The index in `spans` of a stored number.
fn find(stored: &[u8], spans: &[Span], number: &str) -> Option<usize> {
    spans
        .binary_search_by(|span| stored[span.name.clone()].cmp(number.as_bytes()))
        .ok()
}

/// Appends a number and its state as a map entry.
fn write_number(mut out: Vec<u8>, number: &str, state: &Entries) -> Result<Vec<u8>, StoreError> {
    varint(&mut out, number.len() as u64);
    out.extend_from_slice(number.as_bytes());
    postcard::to_extend(state, out).map_err(|e| StoreError::Corrupt(format!("encoding the ticket join: {e}")))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("a ticket join bucket does not decode: {what}"))
}

/// The numbers of one layer, at `range` of `stored`, checked as a map
/// writes them: strictly in order, UTF-8, nothing after the last.
fn layer(stored: &[u8], range: Range<usize>) -> Result<Vec<Span>, StoreError> {
    let bytes = &stored[range.clone()];
    // Offsets in `stored` of what is left of the layer.
    let at = |rest: &[u8]| range.end - rest.len();
    let (count, mut rest) = take_len(bytes).ok_or_else(|| corrupt("no count"))?;
    // Bounded: a damaged count must not reserve gigabytes (a number
    // takes at least two bytes).
    let mut spans = Vec::with_capacity(count.min(bytes.len() / 2));
    for _ in 0..count {
        let (len, after) = take_len(rest).ok_or_else(|| corrupt("a number's length"))?;
        let start = at(after);
        let name = start
            ..start
                .checked_add(len)
                .filter(|end| *end <= range.end)
                .ok_or_else(|| corrupt("a number is cut short"))?;
        if std::str::from_utf8(&stored[name.clone()]).is_err() {
            return Err(corrupt("a number is not UTF-8"));
        }
        // Strictly in order, as a map writes them: `find` searches by
        // halves, and a number twice would be written twice.
        if spans
            .last()
            .is_some_and(|last: &Span| stored[last.name.clone()] >= stored[name.clone()])
        {
            return Err(corrupt("numbers out of order"));
        }
        rest = &stored[name.end..range.end];
        let (_, after) =
            postcard::take_from_bytes::<SkipEntries>(rest).map_err(|e| corrupt(&format!("a number's entries: {e}")))?;
        let entries = name.end..at(after);
        rest = after;
        spans.push(Span {
            name,
            entries,
            read: false,
        });
    }
    if !rest.is_empty() {
        return Err(corrupt("bytes after its last number"));
    }
    Ok(spans)
}

/// The layers' numbers merged in number order, each from the newest layer
/// that holds it; numbers a delta emptied (no entries: a count of 0) are
/// left out.
fn newest_of_each(stored: &[u8], layers: Vec<Vec<Span>>) -> Vec<Span> {
    let mut all: Vec<Span> = layers.into_iter().flatten().collect();
    // Stable: equal numbers stay oldest layer first.
    all.sort_by(|a, b| stored[a.name.clone()].cmp(&stored[b.name.clone()]));
    let mut merged: Vec<Span> = Vec::with_capacity(all.len());
    for span in all {
        match merged.last_mut() {
            Some(last) if stored[last.name.clone()] == stored[span.name.clone()] => *last = span,
            _ => merged.push(span),
        }
    }
    merged.retain(|span| stored[span.entries.clone()] != [0]);
    merged
}

/// A postcard length (an unsigned LEB128 varint) and the bytes after it.
fn take_len(bytes: &[u8]) -> Option<(usize, &[u8])> {
    postcard::take_from_bytes::<usize>(bytes).ok()
}

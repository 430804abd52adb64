//! A `Y` bucket as a commit holds it: decoded only for the numbers the
//! commit touches.
//!
//! A commit of ten thousand ServiceNow incidents touches about 320 buckets
//! holding about 26,500 numbers, of which it changes 9,500 (incidents
//! resolved in one window were opened over a longer one). Decoding and
//! encoding every number of each bucket was a tenth of a sync's CPU; now
//! the others are found by walking their bytes and copied as they were.
//!
//! The bytes are postcard's for a map from number to [`Entries`] (a count,
//! then each number's length, its text and its entries, in number order):
//! the same as before, so buckets stored by any build read back.

use super::{Entries, SkipEntries, decode};
use crate::StoreError;
use crate::block::varint;
use std::collections::BTreeMap;
use std::ops::Range;

/// A stored number of a bucket: its text and its entries as byte ranges
/// of the stored bytes, and whether a commit read it (its state is then in
/// [`Bucket::read`], and replaces these bytes).
struct Span {
    name: Range<usize>,
    entries: Range<usize>,
    read: bool,
}

/// A `Y` bucket: its stored numbers, as bytes until read, and the numbers
/// read or added since.
#[derive(Default)]
pub(super) struct Bucket {
    /// The bucket's bytes as stored, unframed.
    stored: Vec<u8>,
    /// Each stored number, in number order.
    spans: Vec<Span>,
    /// The numbers read or added, with their state: these replace their
    /// stored bytes when the bucket is encoded.
    read: BTreeMap<String, Entries>,
}

impl Bucket {
    /// Reads a stored bucket's layout: where each number and its entries lie.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the bytes are not a bucket.
    pub fn decode(stored: Vec<u8>) -> Result<Bucket, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("a ticket join bucket does not decode: {what}"));
        let (count, mut rest) = take_len(&stored).ok_or_else(|| corrupt("no count"))?;
        // Bounded: a damaged count must not reserve gigabytes (a number
        // takes at least two bytes).
        let mut spans = Vec::with_capacity(count.min(stored.len() / 2));
        for _ in 0..count {
            let (len, after) = take_len(rest).ok_or_else(|| corrupt("a number's length"))?;
            let start = stored.len() - after.len();
            let name = start
                ..start
                    .checked_add(len)
                    .filter(|end| *end <= stored.len())
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
            rest = &stored[name.end..];
            let (_, after) = postcard::take_from_bytes::<SkipEntries>(rest)
                .map_err(|e| corrupt(&format!("a number's entries: {e}")))?;
            let entries = name.end..stored.len() - after.len();
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
        Ok(Bucket {
            stored,
            spans,
            read: BTreeMap::new(),
        })
    }

    /// The state of `number`, decoded from the stored bytes the first time
    /// (empty for a number the bucket does not hold).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when its stored entries do not decode.
    pub fn state(&mut self, number: &str) -> Result<&mut Entries, StoreError> {
        if !self.read.contains_key(number) {
            let entries = match self.find(number) {
                Some(at) => {
                    let entries = decode::<Entries>(&self.stored[self.spans[at].entries.clone()])?;
                    self.spans[at].read = true;
                    entries
                }
                None => Entries::default(),
            };
            self.read.insert(number.to_string(), entries);
        }
        self.read
            .get_mut(number)
            .ok_or_else(|| StoreError::corrupt("a ticket number's state vanished"))
    }

    /// The index in `spans` of a stored number.
    fn find(&self, number: &str) -> Option<usize> {
        self.spans
            .binary_search_by(|span| self.stored[span.name.clone()].cmp(number.as_bytes()))
            .ok()
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
                Next::Read(number, state) => {
                    varint(&mut out, number.len() as u64);
                    out.extend_from_slice(number.as_bytes());
                    out = postcard::to_extend(state, out)
                        .map_err(|e| StoreError::Corrupt(format!("encoding the ticket join: {e}")))?;
                }
            }
        }
        Ok(Some(out))
    }
}

/// A postcard length (an unsigned LEB128 varint) and the bytes after it.
fn take_len(bytes: &[u8]) -> Option<(usize, &[u8])> {
    postcard::take_from_bytes::<usize>(bytes).ok()
}

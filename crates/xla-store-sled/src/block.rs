//! Blocks: the rows of one commit for one tenant, metric and UTC day, stored
//! as one value. A row's place in its block (its slot) never changes, so the
//! index can point at it; a row replaced later stays in its block, stale,
//! until the block is compacted (see [`super::index`]).
//!
//! Rows are compact: strings of rolled-up dimensions are dictionary ids,
//! values of per-subject dimensions (ticket, device, user) are kept inline,
//! hexadecimal record ids (ServiceNow sys_ids) are stored as bytes, and
//! whole-number values as variable-length integers.

use super::StoreError;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::sync::Arc;

/// Fingerprint of a record (tenant, source, id, metric) or of a subject
/// (tenant, dimension, value). 128 bits, so that a collision among even
/// billions of records is far less likely than a disk error.
pub(crate) type Fingerprint = u128;

/// Longest record id or subject value hashed without a heap buffer.
const INLINE: usize = 256;

/// xxh3-128 of a 13-byte head and `tail`, without allocating for short tails.
fn fingerprint(head: [u8; 13], tail: &[u8]) -> Fingerprint {
    if tail.len() > INLINE {
        return xxhash_rust::xxh3::xxh3_128(&[&head[..], tail].concat());
    }
    let mut bytes = [0u8; 13 + INLINE];
    bytes[..13].copy_from_slice(&head);
    bytes[13..13 + tail.len()].copy_from_slice(tail);
    xxhash_rust::xxh3::xxh3_128(&bytes[..13 + tail.len()])
}

fn head(tag: u8, a: u32, b: u32, c: u32) -> [u8; 13] {
    let mut head = [0u8; 13];
    head[0] = tag;
    head[1..5].copy_from_slice(&a.to_le_bytes());
    head[5..9].copy_from_slice(&b.to_le_bytes());
    head[9..13].copy_from_slice(&c.to_le_bytes());
    head
}

/// The record fingerprint: what makes a replayed observation the same record.
pub(crate) fn record_fingerprint(tenant: u32, source: u32, metric: u32, id: &str) -> Fingerprint {
    fingerprint(head(b'r', tenant, source, metric), id.as_bytes())
}

/// The record fingerprint of a stored id (hex ids are re-spelled without allocating).
pub(crate) fn stored_record_fingerprint(tenant: u32, source: u32, metric: u32, id: &RecordId) -> Fingerprint {
    match id {
        RecordId::Text(text) => record_fingerprint(tenant, source, metric, text),
        RecordId::Hex(bytes) if bytes.len() * 2 <= INLINE => {
            let mut text = [0u8; INLINE];
            for (i, b) in bytes.iter().enumerate() {
                text[2 * i] = HEX_DIGITS[usize::from(b >> 4)];
                text[2 * i + 1] = HEX_DIGITS[usize::from(b & 15)];
            }
            fingerprint(head(b'r', tenant, source, metric), &text[..bytes.len() * 2])
        }
        RecordId::Hex(_) => record_fingerprint(tenant, source, metric, &id.to_text()),
    }
}

/// The subject fingerprint: every observation of ticket INC0012345.
pub(crate) fn subject_fingerprint(tenant: u32, dim_key: u32, value: &str) -> Fingerprint {
    fingerprint(head(b's', tenant, dim_key, 0), value.as_bytes())
}

/// The fingerprints of the subjects a row's inline dimensions name: those
/// whose key is one of `subject_dims` (dictionary ids).
pub(crate) fn subject_fingerprints<'r>(
    tenant: u32,
    subject_dims: &'r [u32],
    inline: &'r [(u32, String)],
) -> impl Iterator<Item = Fingerprint> + 'r {
    inline
        .iter()
        .filter(|(k, _)| subject_dims.contains(k))
        .map(move |(k, v)| subject_fingerprint(tenant, *k, v))
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// A record id: lowercase hexadecimal of even length as bytes, anything
/// else as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum RecordId {
    /// Up to 16 bytes (a ServiceNow sys_id) without a heap allocation;
    /// stored exactly as a `Vec<u8>` would be.
    Hex(SmallVec<[u8; 16]>),
    Text(String),
}

impl RecordId {
    pub fn new(id: &str) -> RecordId {
        let is_hex = id.len().is_multiple_of(2) && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !is_hex {
            return RecordId::Text(id.to_string());
        }
        let nibble = |b: u8| if b.is_ascii_digit() { b - b'0' } else { b - b'a' + 10 };
        RecordId::Hex(
            id.as_bytes()
                .chunks_exact(2)
                .map(|pair| (nibble(pair[0]) << 4) | nibble(pair[1]))
                .collect(),
        )
    }

    pub fn to_text(&self) -> String {
        match self {
            RecordId::Text(text) => text.clone(),
            RecordId::Hex(bytes) => {
                let mut text = String::with_capacity(bytes.len() * 2);
                for b in bytes {
                    text.push(HEX_DIGITS[usize::from(b >> 4)] as char);
                    text.push(HEX_DIGITS[usize::from(b & 15)] as char);
                }
                text
            }
        }
    }
}

/// A value: whole numbers (most counts, minutes, ratings) as a varint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) enum Value {
    Int(i64),
    Float(f64),
}

impl Value {
    /// Largest magnitude an f64 holds as an exact integer.
    const EXACT: f64 = 9_007_199_254_740_992.0;

    pub fn new(value: f64) -> Value {
        let whole = value.fract() == 0.0 && value.abs() < Self::EXACT;
        if whole && !(value == 0.0 && value.is_sign_negative()) {
            Value::Int(value as i64)
        } else {
            Value::Float(value)
        }
    }

    pub fn get(self) -> f64 {
        match self {
            Value::Int(i) => i as f64,
            Value::Float(f) => f,
        }
    }
}

/// One stored observation; tenant, metric and day come from its block's key,
/// source and provenance from its block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Row {
    pub id: RecordId,
    /// Milliseconds since the start of the block's day.
    pub offset: u32,
    pub value: Value,
    pub layer: u8,
    /// Rolled-up dimensions as (key, value) dictionary ids, sorted. Shared
    /// by the rows of one record (one per metric value): a commit splits a
    /// record's dimensions once, and its rows cost no copy of them.
    pub dims: Arc<[(u32, u32)]>,
    /// Per-subject dimensions as (key id, value), sorted; shared like `dims`.
    pub inline: Arc<[(u32, String)]>,
}

impl Row {
    /// Same data (provenance aside): a replayed record changes nothing.
    pub fn same_data(&self, day: i32, other: &Row, other_day: i32) -> bool {
        day == other_day
            && self.offset == other.offset
            && self.value.get().to_bits() == other.value.get().to_bits()
            && self.layer == other.layer
            && self.dims == other.dims
            && self.inline == other.inline
    }
}

/// What a retired row keeps: enough to take it out of its day's rollups
/// exactly if the source changes the record later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RetiredRow {
    pub fingerprint: [u8; 16],
    pub value: Value,
    pub layer: u8,
    pub dims: Vec<(u32, u32)>,
}

/// The rows of one block; `None` marks a slot whose row was dropped by
/// compaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Block<R> {
    pub source: u32,
    pub provenance: u32,
    pub rows: Vec<Option<R>>,
}

impl<R: Serialize + for<'de> Deserialize<'de>> Block<R> {
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        // Room for a typical row up front: growing by doubling copied the
        // block several times over.
        const ROW_BYTES: usize = 96;
        postcard::to_extend(self, Vec::with_capacity(16 + self.rows.len() * ROW_BYTES))
            .map_err(|e| StoreError::Corrupt(format!("encoding a block: {e}")))
    }

    /// Reads a stored block, compressed ([`frame`]) or not.
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let bytes = unframe(bytes)?;
        let block: Self = postcard::from_bytes(&bytes)
            .map_err(|e| StoreError::Corrupt(format!("a stored block does not decode: {e}")))?;
        // Slots share a packed location with the block id: more would alias.
        if block.rows.len() > super::index::MAX_SLOTS as usize {
            return Err(StoreError::corrupt("a stored block has more rows than a block can"));
        }
        Ok(block)
    }
}

/// First byte of a framed block. A block written bare starts with its
/// source's dictionary id as a varint, and ids start at 1, so a bare block
/// never starts with 0: stores of format 4 (all bare) read unchanged.
const FRAMED: u8 = 0;
/// Codec byte after [`FRAMED`]: LZ4 block format, the raw length first
/// (4 bytes, little-endian).
const LZ4: u8 = 1;
/// Blocks smaller than this stay bare: a few rows gain too little.
const FRAME_MIN: usize = 256;
/// Largest raw block a frame may claim; more is damage, not data (a block
/// holds at most `MAX_SLOTS` rows of a few hundred bytes).
const FRAME_MAX: usize = 1 << 30;

/// The bytes to store for an encoded block: LZ4-compressed behind a
/// two-byte header when that saves at least an eighth, else bare.
/// Measured on the store benchmark's rows: 0.51 of the raw size at
/// ~700 MB/s (`BENCHMARKS.md`).
pub(crate) fn frame(raw: Vec<u8>) -> Vec<u8> {
    if raw.len() < FRAME_MIN {
        return raw;
    }
    let mut framed = Vec::with_capacity(2 + 4 + lz4_flex::block::get_maximum_output_size(raw.len()));
    framed.extend_from_slice(&[FRAMED, LZ4]);
    framed.extend_from_slice(&lz4_flex::compress_prepend_size(&raw));
    if framed.len() <= raw.len() - raw.len() / 8 {
        framed
    } else {
        raw
    }
}

/// The source id a stored block starts with, without decoding its rows.
pub(crate) fn stored_source(bytes: &[u8]) -> Result<u32, StoreError> {
    let raw = unframe(bytes)?;
    postcard::take_from_bytes::<u32>(&raw)
        .map(|(source, _)| source)
        .map_err(|e| StoreError::Corrupt(format!("a stored block does not decode: {e}")))
}

/// The encoded block inside stored bytes, decompressed if [`frame`]
/// compressed it.
pub(crate) fn unframe(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, StoreError> {
    match bytes {
        [FRAMED, LZ4, payload @ ..] => {
            let claimed = payload
                .get(..4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_le_bytes)
                .ok_or_else(|| StoreError::corrupt("a compressed block is cut short"))?;
            // LZ4 expands at most 255-fold: a larger claim is damage, and
            // is refused before the claimed bytes are allocated.
            if claimed as usize > FRAME_MAX || claimed as usize > payload.len().saturating_mul(255) {
                return Err(StoreError::corrupt(
                    "a compressed block claims more than a block can hold",
                ));
            }
            let raw = lz4_flex::decompress_size_prepended(payload)
                .map_err(|e| StoreError::Corrupt(format!("a compressed block does not decompress: {e}")))?;
            if raw.len() != claimed as usize {
                return Err(StoreError::corrupt(
                    "a compressed block does not decompress to the length it claims",
                ));
            }
            Ok(std::borrow::Cow::Owned(raw))
        }
        [FRAMED, codec, ..] => Err(StoreError::Corrupt(format!(
            "a block is compressed with codec {codec}, which this build does not know: a newer XLA Host wrote it"
        ))),
        bare => Ok(std::borrow::Cow::Borrowed(bare)),
    }
}

impl Block<Row> {
    /// The bytes [`Block::encode`] gives, written directly: a block of fresh
    /// rows is encoded at every commit, and serde's generic path through
    /// postcard was a twentieth of a sync's CPU. The format is postcard's
    /// (varints for integers and lengths, zigzag for signed, enum variants
    /// by index, `Option` as a 0 or 1 byte, `f64` as 8 little-endian bytes),
    /// so [`Block::decode`] reads it; a test checks it byte for byte.
    pub fn encode_rows(&self) -> Vec<u8> {
        const ROW_BYTES: usize = 96;
        let mut out = Vec::with_capacity(16 + self.rows.len() * ROW_BYTES);
        varint(&mut out, u64::from(self.source));
        varint(&mut out, u64::from(self.provenance));
        varint(&mut out, self.rows.len() as u64);
        for row in &self.rows {
            match row {
                None => out.push(0),
                Some(row) => {
                    out.push(1);
                    encode_row(&mut out, row);
                }
            }
        }
        out
    }
}

fn encode_row(out: &mut Vec<u8>, row: &Row) {
    match &row.id {
        RecordId::Hex(bytes) => {
            varint(out, 0);
            varint(out, bytes.len() as u64);
            out.extend_from_slice(bytes);
        }
        RecordId::Text(text) => {
            varint(out, 1);
            varint(out, text.len() as u64);
            out.extend_from_slice(text.as_bytes());
        }
    }
    varint(out, u64::from(row.offset));
    match row.value {
        Value::Int(i) => {
            varint(out, 0);
            varint(out, ((i << 1) ^ (i >> 63)) as u64);
        }
        Value::Float(f) => {
            varint(out, 1);
            out.extend_from_slice(&f.to_le_bytes());
        }
    }
    out.push(row.layer);
    varint(out, row.dims.len() as u64);
    for (key, value) in row.dims.iter() {
        varint(out, u64::from(*key));
        varint(out, u64::from(*value));
    }
    varint(out, row.inline.len() as u64);
    for (key, value) in row.inline.iter() {
        varint(out, u64::from(*key));
        varint(out, value.len() as u64);
        out.extend_from_slice(value.as_bytes());
    }
}

/// An unsigned LEB128 varint, as postcard writes integers and lengths.
pub(crate) fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_encode_byte_for_byte_as_postcard() {
        let row = |id: &str, value: f64, dims: Vec<(u32, u32)>, inline: Vec<(u32, String)>| Row {
            id: RecordId::new(id),
            offset: 86_399_999,
            value: Value::new(value),
            layer: 2,
            dims: dims.into(),
            inline: inline.into(),
        };
        let long_hex = "ab".repeat(300);
        let rows = vec![
            Some(row(
                "46d44a0fa9fe198101b9d3d4f2b6e0a1",
                1.0,
                vec![(3, 4), (5, 1 << 20)],
                vec![(7, "INC0012345".into())],
            )),
            None,
            Some(row("INC0012345", 2.5, vec![], vec![])),
            Some(row(&long_hex, -3.0, vec![(u32::MAX, 0)], vec![(1, "é".repeat(100))])),
            Some(row("", -0.0, vec![(127, 128)], vec![(128, String::new())])),
            Some(row("0f", i64::MIN as f64, vec![(16_383, 16_384)], vec![])),
            Some(row("x", 9_007_199_254_740_991.0, vec![], vec![])),
        ];
        // Sources are dictionary ids, which start at 1 (see `FRAMED`).
        for (source, provenance) in [(1, 0), (1, 300), (u32::MAX, 127)] {
            let block = Block {
                source,
                provenance,
                rows: rows.clone(),
            };
            assert_eq!(block.encode_rows(), block.encode().expect("encodes"));
            assert_eq!(Block::<Row>::decode(&block.encode_rows()).expect("decodes"), block);
        }
        let empty: Block<Row> = Block {
            source: 1,
            provenance: 2,
            rows: Vec::new(),
        };
        assert_eq!(empty.encode_rows(), empty.encode().expect("encodes"));
    }

    #[test]
    fn blocks_are_compressed_where_it_pays_and_damage_is_named() {
        let row = |i: u32| Row {
            id: RecordId::new(&format!("INC{i:07}")),
            offset: i * 1000,
            value: Value::new(f64::from(i % 7)),
            layer: 1,
            dims: vec![(3, 4), (5, 6)].into(),
            inline: vec![(7, format!("INC{i:07}"))].into(),
        };
        let block = Block {
            source: 1,
            provenance: 2,
            rows: (0..200).map(|i| Some(row(i))).collect(),
        };
        let raw = block.encode_rows();
        let stored = frame(raw.clone());
        assert_eq!(&stored[..2], &[FRAMED, LZ4]);
        assert!(stored.len() * 2 < raw.len(), "{} of {}", stored.len(), raw.len());
        assert_eq!(Block::<Row>::decode(&stored).expect("decodes"), block);
        // A block of format 4 (bare) reads as before.
        assert_eq!(Block::<Row>::decode(&raw).expect("decodes"), block);
        // A small block, or one that does not shrink, stays bare.
        let small = Block {
            rows: vec![Some(row(1))],
            ..block.clone()
        };
        assert_eq!(frame(small.encode_rows()), small.encode_rows());
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8 | 1
            })
            .collect();
        assert!(frame(noise.clone()) == noise, "incompressible bytes stay bare");

        let error = |bytes: &[u8]| Block::<Row>::decode(bytes).expect_err("refused").to_string();
        assert!(error(&stored[..4]).contains("cut short"), "{}", error(&stored[..4]));
        let cut = error(&stored[..stored.len() - 9]);
        assert!(cut.contains("does not decompress"), "{cut}");
        let mut huge = stored.clone();
        huge[2..6].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(error(&huge).contains("claims more"), "{}", error(&huge));
        let mut inflated = stored.clone();
        let beyond = (stored.len() * 255) as u32;
        inflated[2..6].copy_from_slice(&beyond.to_le_bytes());
        assert!(error(&inflated).contains("claims more"), "{}", error(&inflated));
        let mut unknown = stored;
        unknown[1] = 9;
        assert!(error(&unknown).contains("codec 9"), "{}", error(&unknown));
    }

    #[test]
    fn record_ids_round_trip_and_hex_is_compact() {
        for id in [
            "46d44a0fa9fe198101b9d3d4f2b6e0a1",
            "INC0012345",
            "abc",
            "ABCD",
            "",
            "0f",
        ] {
            assert_eq!(RecordId::new(id).to_text(), id);
        }
        assert!(matches!(RecordId::new("46d44a0f"), RecordId::Hex(ref b) if b.len() == 4));
        assert!(
            matches!(RecordId::new("ABCD"), RecordId::Text(_)),
            "uppercase would not round-trip"
        );
        let long_hex = "ab".repeat(300);
        for id in ["46d44a0fa9fe198101b9d3d4f2b6e0a1", "INC0012345", long_hex.as_str()] {
            assert_eq!(
                stored_record_fingerprint(1, 2, 3, &RecordId::new(id)),
                record_fingerprint(1, 2, 3, id),
                "{id}"
            );
        }
    }

    #[test]
    fn values_round_trip_bit_for_bit() {
        for v in [
            0.0,
            -0.0,
            7.0,
            -3.0,
            2.5,
            1e300,
            9_007_199_254_740_993.0,
            f64::MIN_POSITIVE,
        ] {
            assert_eq!(Value::new(v).get().to_bits(), v.to_bits(), "{v}");
        }
        assert!(matches!(Value::new(42.0), Value::Int(42)));
    }
}

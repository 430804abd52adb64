//! The ticket join, kept at write time: a survey answer or an SLA record
//! counts in rollup cells under its ticket's dimensions (service,
//! assignment group, priority...), so that happiness or SLA compliance by
//! service is a read of those cells, not a join of a month of raw rows.
//!
//! What is kept (`keys`):
//!
//! - `Y`, the state of each ticket number, in buckets of numbers that share
//!   all but their last two bytes (about a hundred of a ServiceNow
//!   sequence): each ticket (a [`xla_store::JOIN_VIA`] row, with its
//!   dimensions, type and outcome), each opening (its
//!   [`xla_store::JOIN_OPENING`] row), each answer (a row of a
//!   [`xla_store::JOINED_METRICS`] metric, keyed by its row's place, with
//!   its value and where it counts now), and the place of each row of
//!   another metric naming the number (what a read of the ticket lists);
//! - `Z`, per block of rows, each join row's ticket number and time, and for
//!   an answer its value and where it counts, by slot, and its record id
//!   once retention retired its row (a live row's id is in its block). A
//!   replace or retraction finds its number there from the old row's place
//!   alone (a retired row keeps none), a cell that lost its smallest or
//!   largest value is recomputed from its day's blocks, and the unmatched
//!   examples are read there;
//! - `S`, the joined rollup sets: the same cells as `R`, keyed by the
//!   ticket's dimension, plus [`UNJOINED_SET`] counting answers that joined
//!   no ticket, by reason, and the tickets' outcome cells.
//!
//! Buckets and blocks, not a key per row: sled manages some tens of
//! thousands of small-key writes a second, and a key per join row cut a
//! ServiceNow sync to a fifth of its speed.
//!
//! A commit works out, for every ticket number it touches, where each of
//! the number's answers counts after it ([`xla_store::pick_ticket`]), and
//! moves the values whose place changed: a late ticket, a reassignment, a
//! retracted ticket all move their answers exactly. Retention keeps a
//! number's tickets, openings and answers in `Y` (it only stops listing
//! rows of other metrics), so cells keep moving after raw rows are gone.

mod bucket;

use super::block::RecordId;
use super::dict::Dictionary;
use super::keys::{self, SetKey};
use super::ops::Ops;
use super::rollup::{RollupSet, decode_set, encode_set};
use super::{OrStore, StoreError};
use bucket::Bucket;
use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use xla_store::{AnswerFacts, Rollup, TicketCandidate, TicketFacts, Unjoined, UnmatchedAnswer, is_rating};

/// The dimension key of the joined sets that count answers joining no
/// ticket, by reason ([`unjoined_code`]). No dictionary id reaches it.
pub(crate) const UNJOINED_SET: u32 = u32::MAX;

/// Kinds of `Y` entries, the first half of an entry's key in a number's
/// state: a ticket's and an opening's second half is its record
/// fingerprint, an answer's its row's place ([`place_key`]).
const TICKET: u8 = 0;
const OPENING: u8 = 1;
/// An answer keyed by its record fingerprint, as formats 6 to 8 kept it:
/// read, and keyed again by its place ([`Entries`]' decoding).
const ANSWER_BY_RECORD: u8 = 2;
const ANSWER: u8 = 3;
/// A row of another metric naming the number (an incident's reassignment
/// count, any connector's row with a ticket dimension), keyed by its place:
/// listed here for a read of the ticket, in place of the index (format 10).
const ROW: u8 = 4;

/// Bits of an answer's key that hold its slot (as the index packs a
/// place: `index::MAX_SLOTS` slots a block).
const SLOT_BITS: u32 = 20;
const _: () = assert!(1 << SLOT_BITS == super::index::MAX_SLOTS);

/// An answer's key in its number's state: its row's place, the block id
/// above [`SLOT_BITS`] bits of slot. A few bytes of varint where a record
/// fingerprint took 19, and a replace or retraction names the old row's
/// place already. A row keeps its place for as long as it lives
/// (compaction and retirement keep slots), so the key holds.
fn place_key((block, slot): (u64, u32)) -> u128 {
    (u128::from(block) << SLOT_BITS) | u128::from(slot)
}

/// The place [`place_key`] made `key` of; `None` for a key no place makes.
fn place_of(key: u128) -> Option<(u64, u32)> {
    let block = u64::try_from(key >> SLOT_BITS).ok()?;
    let slot = (key & ((1 << SLOT_BITS) - 1)) as u32;
    Some((block, slot))
}

/// Milliseconds in an hour, for `resolution_hours`.
const HOUR_MS: f64 = 3_600_000.0;

/// What a metric is to the join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Ticket,
    Opening,
    Answer,
}

impl Role {
    /// The first half of a row's key ([`Role::key`]), and the order in
    /// which a rebuild adds the roles.
    fn kind(self) -> u8 {
        match self {
            Role::Ticket => TICKET,
            Role::Opening => OPENING,
            Role::Answer => ANSWER,
        }
    }

    /// The key of a row of this role in its number's state.
    fn key(self, fingerprint: u128, loc: (u64, u32)) -> (u8, u128) {
        match self {
            Role::Answer => (ANSWER, place_key(loc)),
            role => (role.kind(), fingerprint),
        }
    }
}

/// The join's names as dictionary ids of one store.
#[derive(Debug, Clone)]
pub(crate) struct Roles {
    /// The dimension naming the ticket number.
    pub key: u32,
    type_key: u32,
    via: u32,
    opening: u32,
    answers: Vec<u32>,
    /// [`xla_store::OUTCOME_SLA_METRIC`] and [`xla_store::OUTCOME_RATING_METRIC`].
    outcome_sla: u32,
    outcome_rating: u32,
    /// The [`OUTCOME_CELLS`] metrics.
    outcome_cells: [u32; 3],
}

/// The metrics of the outcome cells: per ticket resolved that day, under
/// its dimensions and in the day's total (dimension 0), whether its SLAs
/// were met (1 or 0), its latest rating, and whether it is a watermelon
/// ticket (1 or 0). They live in `S` only, apart from any metric's own
/// rollups (`R`), so a connector's metric of the same name cannot mix in.
const OUTCOME_CELLS: [&str; 3] = ["ticket.sla_met", "ticket.latest_rating", "ticket.watermelon"];

impl Roles {
    /// Interns the join's names (once per store, the first time).
    pub fn new(dict: &mut Dictionary) -> Roles {
        Roles {
            key: dict.intern(xla_store::JOIN_KEY),
            type_key: dict.intern(xla_store::JOIN_TYPE_DIMENSION),
            via: dict.intern(xla_store::JOIN_VIA),
            opening: dict.intern(xla_store::JOIN_OPENING),
            answers: xla_store::JOINED_METRICS.iter().map(|m| dict.intern(m)).collect(),
            outcome_sla: dict.intern(xla_store::OUTCOME_SLA_METRIC),
            outcome_rating: dict.intern(xla_store::OUTCOME_RATING_METRIC),
            outcome_cells: OUTCOME_CELLS.map(|m| dict.intern(m)),
        }
    }

    /// The metrics the join keeps: tickets, openings and answers.
    pub fn metrics(&self) -> Vec<u32> {
        let mut metrics = vec![self.via, self.opening];
        metrics.extend(&self.answers);
        metrics
    }

    /// The ticket number a row names (its per-subject dimension of the
    /// join's key), if any.
    pub fn number<'a>(&self, inline: &'a [(u32, String)]) -> Option<&'a str> {
        number_under(self.key, inline)
    }

    /// What `metric` is to the join, if anything.
    pub fn role(&self, metric: u32) -> Option<Role> {
        if metric == self.via {
            Some(Role::Ticket)
        } else if metric == self.opening {
            Some(Role::Opening)
        } else if self.answers.contains(&metric) {
            Some(Role::Answer)
        } else {
            None
        }
    }
}

/// The value of dimension `key` (the join's key: [`Roles::number`]) in a
/// row's per-subject dimensions.
pub(crate) fn number_under(key: u32, inline: &[(u32, String)]) -> Option<&str> {
    inline.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
}

/// The names of the metrics the join keeps (as [`Roles::metrics`]).
pub(crate) fn metric_names() -> impl Iterator<Item = &'static str> {
    [xla_store::JOIN_VIA, xla_store::JOIN_OPENING]
        .into_iter()
        .chain(xla_store::JOINED_METRICS.iter().copied())
}

/// A row the join keeps under a ticket number.
pub(crate) enum RowOfNumber {
    /// A ticket's or an opening's row, by record fingerprint (the index
    /// finds its place).
    Record(u128),
    /// An answer's row, at its place (block id, slot).
    At(u64, u32),
}

/// Every row the join keeps under ticket `number` (its tickets, openings
/// and answers, and the rows of other metrics naming it: current or not, a
/// reader checks each). The index does not list these rows under the
/// ticket as a subject (`index::SubjectDims`): this is where a subject
/// read finds them.
pub(crate) fn rows_of_number(db: &sled::Db, tenant: u32, number: &str) -> Result<Vec<RowOfNumber>, StoreError> {
    let mut bucket = read_bucket(db, &keys::join_bucket(tenant, number))?;
    Ok(bucket
        .state(number)?
        .iter()
        .filter_map(|((_, key), entry)| match entry {
            Entry::Answer(answer) => Some(RowOfNumber::At(answer.loc.0, answer.loc.1)),
            Entry::Row => place_of(*key).map(|(block, slot)| RowOfNumber::At(block, slot)),
            _ => Some(RowOfNumber::Record(*key)),
        })
        .collect())
}

/// A row of the join a commit adds.
pub(crate) struct Added {
    /// Its place: block id and slot.
    pub loc: (u64, u32),
    pub role: Role,
    pub metric: u32,
    pub day: i32,
    pub at: i64,
    /// Its record fingerprint: a ticket's or an opening's key in its
    /// number's state (an answer's key is its place, [`Role::key`]).
    pub fingerprint: u128,
    pub value: f64,
    pub dims: Arc<[(u32, u32)]>,
    /// The ticket number it names.
    pub number: Option<String>,
}

/// A row of the join a commit takes out (replaced or retracted).
pub(crate) struct Removed {
    /// Its place: block id and slot.
    pub loc: (u64, u32),
    pub role: Role,
    pub metric: u32,
    pub day: i32,
    /// Its record fingerprint (as [`Added::fingerprint`]).
    pub fingerprint: u128,
}

/// A row of another metric naming a ticket number, listed under it
/// ([`Entry::Row`]) or taken out.
pub(crate) struct Listed {
    pub number: String,
    /// Its place: block id and slot.
    pub loc: (u64, u32),
    /// Listed (a row stored) or taken out (a row replaced or retracted).
    pub add: bool,
}

/// The join rows one commit adds and takes out.
#[derive(Default)]
pub(crate) struct Events {
    pub added: Vec<Added>,
    pub removed: Vec<Removed>,
    pub listed: Vec<Listed>,
}

/// Where an answer counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Counted {
    /// Under these dimensions of the ticket it joined (by fingerprint).
    Ticket(u128, Vec<(u32, u32)>),
    /// In no group, as unmatched for this reason ([`unjoined_code`]).
    Unjoined(u8),
}

/// A `Y` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Entry {
    Ticket {
        at: i64,
        ticket_type: Option<u32>,
        dims: Vec<(u32, u32)>,
        /// What its outcome cells count now; `None` only while a commit
        /// places it.
        outcome: Option<Outcome>,
    },
    /// When the ticket whose resolution is at `at` was opened; `None` when
    /// its hours are not a duration.
    Opening {
        at: i64,
        opened: Option<i64>,
    },
    /// An answer as formats 6 to 8 stored it: read, never written (decoding
    /// [`Entries`] turns it into an [`Entry::Answer`]).
    #[serde(skip_serializing)]
    Answer8(Answer8),
    Answer(Answer),
    /// A row of another metric naming the number (its place is its key):
    /// what a read of the ticket lists beside the join's own rows.
    Row,
}

/// An answer's entry (format 9): keyed by its place, its value as a block
/// keeps one (a rating of 0 to 10 takes 2 bytes, not 8), its day worked
/// out from its time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Answer {
    /// Its row's place (block, slot): where its `Z` slot is. Stored as its
    /// key ([`place_key`]), not in the entry.
    #[serde(skip)]
    loc: (u64, u32),
    metric: u32,
    /// Its row's time, unix ms.
    at: i64,
    #[serde(with = "compact")]
    value: f64,
    ticket_type: Option<u32>,
    /// Where it counts now; `None` only while a commit places it.
    counted: Option<Counted>,
}

impl Answer {
    /// Its row's UTC day (the day its row is stored under).
    fn day(&self) -> i32 {
        keys::day_of(self.at)
    }
}

/// An [`Answer`] as formats 6 to 8 stored it, keyed by its record
/// fingerprint: its place in it, its day beside its time, its value as 8
/// bytes. (Written by tests only, as an earlier build wrote it.)
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct Answer8 {
    loc: (u64, u32),
    metric: u32,
    day: i32,
    at: i64,
    value: f64,
    ticket_type: Option<u32>,
    counted: Option<Counted>,
}

impl From<Answer8> for Answer {
    fn from(old: Answer8) -> Answer {
        Answer {
            loc: old.loc,
            metric: old.metric,
            at: old.at,
            value: old.value,
            ticket_type: old.ticket_type,
            counted: old.counted,
        }
    }
}

/// A value stored as a block stores one ([`crate::block::Value`]: a whole number as a
/// varint, anything else as its 8 bytes), read back bit for bit.
mod compact {
    use crate::block::Value;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        Value::new(*value).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        Value::deserialize(deserializer).map(Value::get)
    }
}

/// A ticket's outcome as its cells count it (see [`xla_store::TicketOutcome`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Outcome {
    sla_met: Option<bool>,
    rating: Option<f64>,
}

impl Outcome {
    /// The values of the [`OUTCOME_CELLS`] metrics, in their order.
    fn values(&self) -> [Option<f64>; 3] {
        let outcome = xla_store::TicketOutcome {
            sla_met: self.sla_met,
            rating: self.rating,
        };
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        [self.sla_met.map(flag), self.rating, outcome.watermelon().map(flag)]
    }
}

/// A row's slot in a `Z` block (format 9: an answer's value as a block
/// keeps one; see [`StoredSlot`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Joined {
    number: Option<String>,
    /// The row's time, unix ms (its retired row keeps only its day).
    at: i64,
    /// An answer's record id once its row is retired (the retired row
    /// keeps none), for the unmatched examples and a copy of the store;
    /// while the row lives, its block holds the id and this is `None`
    /// (format 9: a slot of format 7 or 8 holds it from the start).
    id: SlotId,
    /// An answer's value and where it counts.
    #[serde(with = "compact_counted")]
    counted: Option<(f64, Counted)>,
}

/// A slot as formats 6 to 8 stored it: an answer's value as 8 bytes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Joined8 {
    number: Option<String>,
    at: i64,
    id: SlotId,
    counted: Option<(f64, Counted)>,
}

impl From<Joined8> for Joined {
    fn from(old: Joined8) -> Joined {
        Joined {
            number: old.number,
            at: old.at,
            id: old.id,
            counted: old.counted,
        }
    }
}

/// [`Joined::counted`] with its value stored as [`compact`] stores one.
mod compact_counted {
    use super::Counted;
    use crate::block::Value;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(counted: &Option<(f64, Counted)>, serializer: S) -> Result<S::Ok, S::Error> {
        counted
            .as_ref()
            .map(|(value, counted)| (Value::new(*value), counted))
            .serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<(f64, Counted)>, D::Error> {
        Ok(Option::<(Value, Counted)>::deserialize(deserializer)?.map(|(value, counted)| (value.get(), counted)))
    }
}

/// A `Z` slot as stored. Laid out as the `Option<Joined8>` of formats 6 to
/// 8 was (postcard writes a variant's index as `Option` writes its tag: 0
/// empty, 1 a format-8 slot), so a block any build stored reads back; a
/// commit writes `Empty` or `Joined` ([`encode_slots`]).
#[derive(Deserialize)]
enum StoredSlot {
    Empty,
    Joined8(Joined8),
    Joined(Joined),
}

/// A `Z` block's slots, encoded as [`StoredSlot`]s and framed.
fn encode_slots(slots: &[Option<Joined>]) -> Result<Vec<u8>, StoreError> {
    struct Slots<'a>(&'a [Option<Joined>]);
    struct Slot<'a>(Option<&'a Joined>);
    impl Serialize for Slots<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_seq(self.0.iter().map(|slot| Slot(slot.as_ref())))
        }
    }
    impl Serialize for Slot<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            match self.0 {
                None => serializer.serialize_unit_variant("StoredSlot", 0, "Empty"),
                Some(joined) => serializer.serialize_newtype_variant("StoredSlot", 2, "Joined", joined),
            }
        }
    }
    encode_framed(&Slots(slots))
}

/// A stored `Z` block's slots, whichever format wrote them.
fn decode_slots(bytes: &[u8]) -> Result<Vec<Option<Joined>>, StoreError> {
    let stored: Vec<StoredSlot> = decode_framed(bytes)?;
    Ok(stored
        .into_iter()
        .map(|slot| match slot {
            StoredSlot::Empty => None,
            StoredSlot::Joined8(old) => Some(old.into()),
            StoredSlot::Joined(joined) => Some(joined),
        })
        .collect())
}

/// An answer's record id in its `Z` slot, kept as a block keeps it
/// ([`RecordId`]): lowercase hexadecimal as bytes, so a ServiceNow sys_id
/// takes 16 bytes, not the 32 of its text, which LZ4 does not shrink. The
/// variants' order keeps a format-7 slot readable: its `Option<String>`
/// encodes as `None` or `Text`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum SlotId {
    None,
    Text(String),
    Hex(SmallVec<[u8; 16]>),
}

impl From<RecordId> for SlotId {
    fn from(id: RecordId) -> SlotId {
        match id {
            RecordId::Hex(bytes) => SlotId::Hex(bytes),
            RecordId::Text(text) => SlotId::Text(text),
        }
    }
}

impl SlotId {
    fn into_text(self) -> Option<String> {
        match self {
            SlotId::None => None,
            SlotId::Text(text) => Some(text),
            SlotId::Hex(bytes) => Some(RecordId::Hex(bytes).to_text()),
        }
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(value).map_err(|e| StoreError::corrupt(format!("encoding the ticket join: {e}")))
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes)
        .map_err(|e| StoreError::corrupt(format!("the ticket join's state does not decode: {e}")))
}

/// A `Z` block or `Y` bucket as stored: LZ4-compressed like a block of
/// rows where that pays (`block::frame`; their numbers, times and ids
/// repeat). Never empty, so never starting with the frame's 0 byte.
fn encode_framed<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    Ok(super::block::frame(encode(value)?))
}

fn decode_framed<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    decode(&super::block::unframe(bytes)?)
}

/// The code of a reason in [`UNJOINED_SET`].
pub(crate) fn unjoined_code(reason: &Unjoined) -> u8 {
    match reason {
        Unjoined::NoTicketNumber => 0,
        Unjoined::NoTicket => 1,
        Unjoined::OtherType => 2,
        Unjoined::BeforeTicketOpened => 3,
    }
}

fn unjoined_reason(code: u8) -> Result<Unjoined, StoreError> {
    Ok(match code {
        0 => Unjoined::NoTicketNumber,
        1 => Unjoined::NoTicket,
        2 => Unjoined::OtherType,
        3 => Unjoined::BeforeTicketOpened,
        _ => return Err(StoreError::corrupt("an unmatched answer's reason is unknown")),
    })
}

/// A touched joined set and its cells that lost an extreme.
#[derive(Default)]
struct Touched {
    cells: RollupSet,
    dirty: BTreeSet<u32>,
}

/// What a commit writes to the join, before it goes into the sled batch:
/// later steps of the same commit read through it.
struct Pending<'a> {
    db: &'a sled::Db,
    dict: &'a Dictionary,
    roles: &'a Roles,
    tenant: u32,
    /// `Z` blocks read or written, by block id.
    blocks: HashMap<u64, ZBlock>,
    /// `Y` buckets read, by key: each number's state. Hashed: a commit
    /// looks one up for every number it touches.
    buckets: HashMap<Vec<u8>, Bucket>,
    sets: HashMap<SetKey, Touched>,
}

/// A `Z` block as a commit holds it.
struct ZBlock {
    metric: u32,
    day: i32,
    slots: Vec<Option<Joined>>,
}

impl Pending<'_> {
    fn set(&mut self, metric: u32, day: i32, dim_key: u32) -> Result<&mut Touched, StoreError> {
        let key = SetKey {
            tenant: self.tenant,
            metric,
            day,
            dim_key,
        };
        if !self.sets.contains_key(&key) {
            let cells = match self.db.get(key.joined_key()).or_store()? {
                Some(bytes) => decode_set(&bytes)?,
                None => RollupSet::new(),
            };
            self.sets.insert(
                key,
                Touched {
                    cells,
                    dirty: BTreeSet::new(),
                },
            );
        }
        self.sets
            .get_mut(&key)
            .ok_or_else(|| StoreError::corrupt("a joined set vanished"))
    }

    fn rating(&self, metric: u32) -> bool {
        self.dict.string(metric).is_some_and(is_rating)
    }

    /// The cells (dimension key, value) `counted` names: its ticket's
    /// dimensions, or its reason in [`UNJOINED_SET`].
    fn cells(counted: &Counted) -> impl Iterator<Item = (u32, u32)> + '_ {
        let (dims, unjoined) = match counted {
            Counted::Ticket(_, dims) => (dims.as_slice(), None),
            Counted::Unjoined(code) => (&[][..], Some((UNJOINED_SET, u32::from(*code)))),
        };
        dims.iter().copied().chain(unjoined)
    }

    fn add(&mut self, metric: u32, day: i32, value: f64, counted: &Counted) -> Result<(), StoreError> {
        let rating = self.rating(metric);
        for (dim_key, dim_value) in Self::cells(counted) {
            self.set(metric, day, dim_key)?
                .cells
                .entry(dim_value)
                .or_default()
                .add(value, rating);
        }
        Ok(())
    }

    fn subtract(&mut self, metric: u32, day: i32, value: f64, counted: &Counted) -> Result<(), StoreError> {
        for (dim_key, dim_value) in Self::cells(counted) {
            let set = self.set(metric, day, dim_key)?;
            let exact = set.cells.entry(dim_value).or_default().remove(value);
            if !exact {
                set.dirty.insert(dim_value);
            }
        }
        Ok(())
    }

    /// Adds (or takes out) a ticket's outcome in its day's outcome cells:
    /// the day's total and one per dimension of the ticket. Their min and
    /// max are not kept exact (nothing reads them; the scorecard reads
    /// counts, sums and histograms).
    fn outcome(&mut self, day: i32, dims: &[(u32, u32)], outcome: &Outcome, add: bool) -> Result<(), StoreError> {
        let metrics = self.roles.outcome_cells;
        for (metric, value) in metrics.into_iter().zip(outcome.values()) {
            let Some(value) = value else { continue };
            let rating = self.rating(metric);
            for (dim_key, dim_value) in std::iter::once((0, 0)).chain(dims.iter().copied()) {
                let cell = self.set(metric, day, dim_key)?.cells.entry(dim_value).or_default();
                if add {
                    cell.add(value, rating);
                } else {
                    cell.remove(value);
                }
            }
        }
        Ok(())
    }

    /// The slot of a row's place in its `Z` block, read the first time.
    fn slot(&mut self, (block, slot): (u64, u32), metric: u32, day: i32) -> Result<&mut Option<Joined>, StoreError> {
        if !self.blocks.contains_key(&block) {
            let key = keys::joined_block(self.tenant, metric, day, block);
            let slots = match self.db.get(key).or_store()? {
                Some(bytes) => decode_slots(&bytes)?,
                None => Vec::new(),
            };
            self.blocks.insert(block, ZBlock { metric, day, slots });
        }
        let zblock = self
            .blocks
            .get_mut(&block)
            .ok_or_else(|| StoreError::corrupt("a joined block vanished"))?;
        let slot = slot as usize;
        if zblock.slots.len() <= slot {
            zblock.slots.resize(slot + 1, None);
        }
        Ok(&mut zblock.slots[slot])
    }

    /// Records where an answer at `loc` counts now, in its `Z` slot.
    fn place(
        &mut self,
        (loc, metric, day): ((u64, u32), u32, i32),
        number: Option<&str>,
        answer: &Answer,
        counted: &Counted,
    ) -> Result<(), StoreError> {
        let slot = self.slot(loc, metric, day)?;
        // The id stays in the row's block while it lives; a slot keeps the
        // one retirement (or a format-8 commit) wrote there.
        let id = slot.take().map_or(SlotId::None, |old| old.id);
        *slot = Some(Joined {
            number: number.map(str::to_string),
            at: answer.at,
            id,
            counted: Some((answer.value, counted.clone())),
        });
        Ok(())
    }

    /// A ticket number's state, read with its bucket the first time.
    fn state(&mut self, number: &str) -> Result<&mut Entries, StoreError> {
        let bucket = match self.buckets.entry(keys::join_bucket(self.tenant, number)) {
            std::collections::hash_map::Entry::Occupied(bucket) => bucket.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let bucket = read_bucket(self.db, slot.key())?;
                slot.insert(bucket)
            }
        };
        bucket.state(number)
    }
}

/// A `Y` bucket as stored: its own value and its deltas (see [`bucket`]).
fn read_bucket(db: &sled::Db, key: &[u8]) -> Result<Bucket, StoreError> {
    let base = match db.get(key).or_store()? {
        Some(bytes) => Some(super::block::unframe(&bytes)?.into_owned()),
        None => None,
    };
    let mut deltas = Vec::new();
    for entry in db.scan_prefix(bucket::delta_prefix(key)) {
        let (key, bytes) = entry.or_store()?;
        deltas.push((key.to_vec(), super::block::unframe(&bytes)?.into_owned()));
    }
    Bucket::load(key, base, deltas)
}

/// The state of one ticket number: its entries by key (kind, then a
/// ticket's or opening's record fingerprint or an answer's place:
/// [`Role::key`]), sorted by key. A ticket, its opening and a few answers, so a vector,
/// not a B-tree (whose first node took about 1.5 KiB per number: a sync's
/// allocator kept faulting in fresh pages for them).
/// Stored as the map it replaces (postcard writes a map and a sequence of
/// pairs alike), so stored state reads back unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
struct Entries(Vec<((u8, u128), Entry)>);

impl Entries {
    fn find(&self, key: &(u8, u128)) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.cmp(key))
    }

    /// Adds `entries` (a key already there takes the new entry) with one
    /// sort: adding one at a time would shift the vector each time, and a
    /// placeholder number many answers share holds thousands.
    fn extend(&mut self, entries: Vec<((u8, u128), Entry)>) {
        self.0.extend(entries);
        self.normalize();
    }

    /// Takes out the entries whose keys are in `keys`, in one pass.
    fn take(&mut self, keys: &std::collections::HashSet<(u8, u128)>) -> Vec<Entry> {
        if keys.is_empty() {
            return Vec::new();
        }
        let (gone, kept) = std::mem::take(&mut self.0)
            .into_iter()
            .partition(|(k, _)| keys.contains(k));
        self.0 = kept;
        gone.into_iter().map(|(_, entry)| entry).collect::<Vec<_>>()
    }

    /// Sorts by key, keeping the last entry of each key.
    fn normalize(&mut self) {
        if self.0.is_sorted_by(|a, b| a.0 < b.0) {
            return;
        }
        // Stable: entries of one key stay in the order they came.
        self.0.sort_by_key(|(key, _)| *key);
        self.0.dedup_by(|later, kept| {
            if later.0 != kept.0 {
                return false;
            }
            std::mem::swap(later, kept);
            true
        });
    }

    fn get_mut(&mut self, key: &(u8, u128)) -> Option<&mut Entry> {
        self.find(key).ok().map(|at| &mut self.0[at].1)
    }

    fn iter(&self) -> impl Iterator<Item = (&(u8, u128), &Entry)> {
        self.0.iter().map(|(k, e)| (k, e))
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (&(u8, u128), &mut Entry)> {
        self.0.iter_mut().map(|(k, e)| (&*k, e))
    }

    fn values(&self) -> impl Iterator<Item = &Entry> {
        self.0.iter().map(|(_, e)| e)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Entries {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Entries, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Entries;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a ticket number's entries")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                // Bounded: a damaged length must not reserve gigabytes.
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some((key, entry)) = map.next_entry()? {
                    entries.push(keyed_by_place(key, entry).map_err(serde::de::Error::custom)?);
                }
                let mut entries = Entries(entries);
                // Written in key order; sorted again should damage say
                // otherwise (the last of a key wins, as in the map it was).
                entries.normalize();
                Ok(entries)
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// An entry as read, keyed as this build keys it: an answer of formats 6
/// to 8 by its place now, an answer's place taken from its key.
///
/// # Errors
/// When an answer's key and entry are not of one format.
fn keyed_by_place(key: (u8, u128), entry: Entry) -> Result<((u8, u128), Entry), &'static str> {
    match (key.0, entry) {
        (ANSWER_BY_RECORD, Entry::Answer8(old)) => {
            let answer = Answer::from(old);
            Ok(((ANSWER, place_key(answer.loc)), Entry::Answer(answer)))
        }
        (ANSWER, Entry::Answer(mut answer)) => {
            answer.loc = place_of(key.1).ok_or("an answer's key is no place")?;
            Ok((key, Entry::Answer(answer)))
        }
        (ANSWER_BY_RECORD | ANSWER, _) | (_, Entry::Answer8(_) | Entry::Answer(_)) => {
            Err("an answer's key and entry do not match")
        }
        (ROW, Entry::Row) => place_of(key.1)
            .map(|_| (key, Entry::Row))
            .ok_or("a row's key is no place"),
        (ROW, _) | (_, Entry::Row) => Err("a row's key and entry do not match"),
        (_, entry) => Ok((key, entry)),
    }
}

/// [`Entries`] read for their length only: a bucket walks past the numbers
/// a commit does not touch without building their state. Each type mirrors
/// the one it skips field for field (postcard writes no names);
/// `skipping_reads_exactly_what_was_written` holds them together.
struct SkipEntries;

impl<'de> Deserialize<'de> for SkipEntries {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<SkipEntries, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = SkipEntries;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a ticket number's entries")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<SkipEntries, A::Error> {
                while map.next_entry::<(u8, u128), SkipEntry>()?.is_some() {}
                Ok(SkipEntries)
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// An [`Entry`], skipped.
#[derive(Deserialize)]
#[allow(dead_code)] // Read to be skipped.
enum SkipEntry {
    Ticket {
        at: i64,
        ticket_type: Option<u32>,
        dims: SkipSeq<(u32, u32)>,
        outcome: Option<Outcome>,
    },
    Opening {
        at: i64,
        opened: Option<i64>,
    },
    Answer8(SkipAnswer8),
    Answer(SkipAnswer),
    Row,
}

/// An [`Answer`], skipped.
#[derive(Deserialize)]
#[allow(dead_code)] // Read to be skipped.
struct SkipAnswer {
    metric: u32,
    at: i64,
    value: crate::block::Value,
    ticket_type: Option<u32>,
    counted: Option<SkipCounted>,
}

/// An [`Answer8`], skipped.
#[derive(Deserialize)]
#[allow(dead_code)] // Read to be skipped.
struct SkipAnswer8 {
    loc: (u64, u32),
    metric: u32,
    day: i32,
    at: i64,
    value: f64,
    ticket_type: Option<u32>,
    counted: Option<SkipCounted>,
}

/// A [`Counted`], skipped.
#[derive(Deserialize)]
#[allow(dead_code)] // Read to be skipped.
enum SkipCounted {
    Ticket(u128, SkipSeq<(u32, u32)>),
    Unjoined(u8),
}

/// A sequence of `T`, each read and dropped: nothing allocated.
struct SkipSeq<T>(std::marker::PhantomData<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for SkipSeq<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<SkipSeq<T>, D::Error> {
        struct Visit<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visit<T> {
            type Value = SkipSeq<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sequence")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<SkipSeq<T>, A::Error> {
                while seq.next_element::<T>()?.is_some() {}
                Ok(SkipSeq(std::marker::PhantomData))
            }
        }
        deserializer.deserialize_seq(Visit(std::marker::PhantomData))
    }
}

/// A ticket of the number, keyed by its record fingerprint.
type Candidate<'a> = TicketCandidate<'a, u128>;

/// What a commit changes of one ticket number.
#[derive(Default)]
struct Changes {
    /// Entries leaving it.
    removed: Vec<Removed>,
    /// Rows joining it.
    added: Vec<Added>,
    /// Rows of other metrics listed under it or taken out.
    listed: Vec<Listed>,
}

/// Applies a commit's join rows: `Y`, `Z` and the joined sets, into
/// `ops`. Runs inside the commit, before its batch is applied, so the join
/// is exactly as durable as the rows.
pub(crate) fn settle(
    db: &sled::Db,
    dict: &Dictionary,
    roles: &Roles,
    tenant: u32,
    events: Events,
    ops: &mut Ops,
) -> Result<(), StoreError> {
    if events.added.is_empty() && events.removed.is_empty() && events.listed.is_empty() {
        return Ok(());
    }
    let mut pending = Pending {
        db,
        dict,
        roles,
        tenant,
        blocks: HashMap::default(),
        buckets: HashMap::default(),
        sets: HashMap::default(),
    };
    // Per ticket number: the entries leaving it, and the rows joining it.
    // Hashed, then sorted once: a commit groups a few rows per number over
    // thousands of numbers, and a tree compared their text at every step.
    let mut numbers: HashMap<Option<String>, Changes> = HashMap::default();
    for removed in events.removed {
        // A row the join never saw (no ticket number, not a joined metric
        // when it was stored) has nothing to take out.
        let Some(joined) = pending.slot(removed.loc, removed.metric, removed.day)?.take() else {
            continue;
        };
        if let Some((value, counted)) = &joined.counted {
            pending.subtract(removed.metric, removed.day, *value, counted)?;
        }
        if joined.number.is_some() {
            numbers.entry(joined.number).or_default().removed.push(removed);
        }
    }
    // The numbers move into the keys (nothing reads them from the rows after).
    for mut added in events.added {
        numbers.entry(added.number.take()).or_default().added.push(added);
    }
    for mut listed in events.listed {
        let number = std::mem::take(&mut listed.number);
        numbers.entry(Some(number)).or_default().listed.push(listed);
    }
    // In number order, as a commit always settled them.
    let mut numbers: Vec<(Option<String>, Changes)> = numbers.into_iter().collect();
    numbers.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (number, changes) in numbers {
        match number {
            Some(number) => settle_number(&mut pending, &number, changes)?,
            None => {
                for added in changes.added.into_iter().filter(|a| a.role == Role::Answer) {
                    let answer = answer_of(&added, None);
                    let counted = Counted::Unjoined(unjoined_code(&Unjoined::NoTicketNumber));
                    pending.add(added.metric, added.day, added.value, &counted)?;
                    pending.place((added.loc, added.metric, added.day), None, &answer, &counted)?;
                }
            }
        }
    }
    recompute_extremes(&mut pending)?;
    let Pending {
        blocks, buckets, sets, ..
    } = pending;
    for (id, block) in blocks {
        let key = keys::joined_block(tenant, block.metric, block.day, id);
        if block.slots.iter().all(Option::is_none) {
            ops.remove(&key);
        } else {
            ops.insert(&key, encode_slots(&block.slots)?);
        }
    }
    for (key, bucket) in buckets {
        for (key, value) in bucket.writes(&key)? {
            match value {
                Some(raw) => ops.insert(key, super::block::frame(raw)),
                None => ops.remove(key),
            }
        }
    }
    for (key, mut set) in sets {
        set.cells.retain(|_, cell| cell.count > 0);
        if set.cells.is_empty() {
            ops.remove(&key.joined_key());
        } else {
            ops.insert(&key.joined_key(), encode_set(&set.cells)?);
        }
    }
    Ok(())
}

/// Keys of entries leaving a number's state, and entries joining it.
type Leaving = std::collections::HashSet<(u8, u128)>;
type Joining = Vec<((u8, u128), Entry)>;

/// The keys of rows of other metrics leaving a number, and the entries of
/// those joining it ([`Entry::Row`], keyed by place).
fn listings(listed: Vec<Listed>) -> (Leaving, Joining) {
    let (mut leaving, mut joining) = (std::collections::HashSet::default(), Vec::new());
    for Listed { loc, add, .. } in listed {
        let key = (ROW, place_key(loc));
        if add {
            joining.push((key, Entry::Row));
        } else {
            leaving.insert(key);
        }
    }
    (leaving, joining)
}

fn answer_of(added: &Added, type_key: Option<u32>) -> Answer {
    Answer {
        loc: added.loc,
        metric: added.metric,
        at: added.at,
        value: added.value,
        ticket_type: type_key.and_then(|k| dimension(&added.dims, k)),
        counted: None,
    }
}

fn dimension(dims: &[(u32, u32)], key: u32) -> Option<u32> {
    dims.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// Settles one ticket number: takes out the entries leaving it, adds the
/// rows joining it, and moves every answer whose place changed.
fn settle_number(pending: &mut Pending<'_>, number: &str, changes: Changes) -> Result<(), StoreError> {
    let Changes { removed, added, listed } = changes;
    let (mut leaving, mut joining) = listings(listed);
    if removed.is_empty() && added.is_empty() {
        // Only rows of other metrics: nothing of the join moves.
        let state = pending.state(number)?;
        state.take(&leaving);
        state.extend(joining);
        return Ok(());
    }
    let roles_type = Some(pending.roles.type_key);
    // Placed answers move only when a ticket or an opening changes; else
    // only the new ones are placed (a number many answers share, such as a
    // placeholder, costs one pass, not one per answer).
    let tickets_change = removed.iter().any(|r| r.role != Role::Answer) || added.iter().any(|a| a.role != Role::Answer);
    let mut state = std::mem::take(pending.state(number)?);
    // Answers leaving were taken out of their cells through `Z`; a ticket
    // leaving takes its outcome out of its day.
    leaving.extend(removed.iter().map(|r| r.role.key(r.fingerprint, r.loc)));
    for entry in state.take(&leaving) {
        if let Entry::Ticket {
            at,
            dims,
            outcome: Some(outcome),
            ..
        } = entry
        {
            pending.outcome(keys::day_of(at), &dims, &outcome, false)?;
        }
    }
    joining.reserve(added.len());
    for added in added {
        let entry = match added.role {
            Role::Ticket => Entry::Ticket {
                at: added.at,
                ticket_type: roles_type.and_then(|k| dimension(&added.dims, k)),
                dims: added.dims.to_vec(),
                outcome: None,
            },
            Role::Opening => Entry::Opening {
                at: added.at,
                opened: (added.value.is_finite() && added.value >= 0.0)
                    .then(|| added.at.saturating_sub((added.value * HOUR_MS) as i64)),
            },
            Role::Answer => Entry::Answer(answer_of(&added, roles_type)),
        };
        let id = added.role.key(added.fingerprint, added.loc);
        if added.role != Role::Answer {
            // Found through `Z` when it leaves, as an answer is once placed.
            *pending.slot(added.loc, added.metric, added.day)? = Some(Joined {
                number: Some(number.to_string()),
                at: added.at,
                id: SlotId::None,
                counted: None,
            });
        }
        joining.push((id, entry));
    }
    state.extend(joining);
    if !state.values().any(|entry| matches!(entry, Entry::Answer(_))) {
        // No answer names the number (most tickets of a sync): none to
        // place, and its tickets' outcomes are the empty one.
        settle_outcomes(pending, &mut state)?;
        *pending.state(number)? = state;
        return Ok(());
    }
    // When each ticket was opened: its openings at its resolution.
    let mut opened: HashMap<i64, i64> = HashMap::default();
    for entry in state.values() {
        if let Entry::Opening { at, opened: Some(o) } = entry {
            opened.entry(*at).and_modify(|e| *e = (*e).min(*o)).or_insert(*o);
        }
    }
    let dict = pending.dict;
    let tickets: Vec<(Candidate<'_>, &[(u32, u32)])> = state
        .iter()
        .filter_map(|((_, fingerprint), entry)| match entry {
            Entry::Ticket {
                at, ticket_type, dims, ..
            } => Some((
                TicketCandidate {
                    facts: TicketFacts {
                        opened: opened.get(at).copied(),
                        ticket_type: ticket_type.and_then(|t| dict.string(t)),
                    },
                    key: *fingerprint,
                },
                dims.as_slice(),
            )),
            _ => None,
        })
        .collect();
    let mut moves = Vec::new();
    for ((kind, fingerprint), entry) in state.iter() {
        let Entry::Answer(answer) = entry else { continue };
        if !tickets_change && answer.counted.is_some() {
            continue;
        }
        let facts = AnswerFacts {
            at: answer.at,
            ticket_type: answer.ticket_type.and_then(|t| dict.string(t)),
        };
        let counted = match xla_store::pick_ticket(facts, tickets.iter().map(|(c, _)| *c)) {
            Ok(ticket) => Counted::Ticket(
                ticket,
                tickets
                    .iter()
                    .find(|(c, _)| c.key == ticket)
                    .map(|(_, dims)| dims.to_vec())
                    .unwrap_or_default(),
            ),
            Err(reason) => Counted::Unjoined(unjoined_code(&reason)),
        };
        if answer.counted.as_ref() != Some(&counted) {
            moves.push(((*kind, *fingerprint), counted));
        }
    }
    drop(tickets);
    for (id, counted) in moves {
        let Some(Entry::Answer(answer)) = state.get_mut(&id) else {
            continue;
        };
        if let Some(old) = &answer.counted {
            pending.subtract(answer.metric, answer.day(), answer.value, old)?;
        }
        pending.add(answer.metric, answer.day(), answer.value, &counted)?;
        answer.counted = Some(counted.clone());
        let answer = answer.clone();
        pending.place(
            (answer.loc, answer.metric, answer.day()),
            Some(number),
            &answer,
            &counted,
        )?;
    }
    settle_outcomes(pending, &mut state)?;
    *pending.state(number)? = state;
    Ok(())
}

/// Works out each ticket's outcome from the answers joined to it, and moves
/// the ones that changed in the outcome cells.
fn settle_outcomes(pending: &mut Pending<'_>, state: &mut Entries) -> Result<(), StoreError> {
    let roles = pending.roles;
    // Per ticket: its outcome, and the time and value of its latest rating.
    let mut found: HashMap<u128, (Outcome, Option<(i64, f64)>)> = HashMap::default();
    for entry in state.values() {
        let Entry::Answer(answer) = entry else { continue };
        let Some(Counted::Ticket(ticket, _)) = &answer.counted else {
            continue;
        };
        let (outcome, latest) = found.entry(*ticket).or_insert((Outcome::default(), None));
        if answer.metric == roles.outcome_sla {
            outcome.sla_met = Some(outcome.sla_met.unwrap_or(true) && answer.value == 0.0);
        } else if answer.metric == roles.outcome_rating && xla_store::is_later_rating(*latest, answer.at, answer.value)
        {
            *latest = Some((answer.at, answer.value));
            outcome.rating = Some(answer.value);
        }
    }
    for ((_, fingerprint), entry) in state.iter_mut() {
        let Entry::Ticket { at, dims, outcome, .. } = entry else {
            continue;
        };
        let now = found.get(fingerprint).map(|(outcome, _)| *outcome).unwrap_or_default();
        if *outcome == Some(now) {
            continue;
        }
        let day = keys::day_of(*at);
        if let Some(old) = outcome {
            pending.outcome(day, dims, old, false)?;
        }
        pending.outcome(day, dims, &now, true)?;
        *outcome = Some(now);
    }
    Ok(())
}

/// Whether a retired row of the join says what `number` and `at` say: a
/// retired row keeps no ticket number and only its day, so a record re-sent
/// with another number or time is a change, not a replay. `None` when the
/// join never saw the row.
pub(crate) fn same_retired(
    db: &sled::Db,
    (tenant, metric, day): (u32, u32, i32),
    (block, slot): (u64, u32),
    number: Option<&str>,
    at: i64,
) -> Result<Option<bool>, StoreError> {
    let Some(bytes) = db.get(keys::joined_block(tenant, metric, day, block)).or_store()? else {
        return Ok(None);
    };
    let slots = decode_slots(&bytes)?;
    Ok(slots
        .get(slot as usize)
        .and_then(Option::as_ref)
        .map(|joined| joined.number.as_deref() == number && joined.at == at))
}

/// What the join kept of a row after retention dropped it: its ticket
/// number, time and (an answer's) record id.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeptOfRow {
    pub number: Option<String>,
    pub at: Option<i64>,
    pub id: Option<String>,
}

/// What the join kept of each row of a block, by slot (empty when the join
/// never saw the block: its metric is none of the join's).
pub(crate) fn retired_slots(
    db: &sled::Db,
    (tenant, metric, day): (u32, u32, i32),
    block: u64,
) -> Result<Vec<Option<KeptOfRow>>, StoreError> {
    let Some(bytes) = db.get(keys::joined_block(tenant, metric, day, block)).or_store()? else {
        return Ok(Vec::new());
    };
    let slots = decode_slots(&bytes)?;
    Ok(slots
        .into_iter()
        .map(|slot| {
            slot.map(|joined| KeptOfRow {
                number: joined.number,
                at: Some(joined.at),
                id: joined.id.into_text(),
            })
        })
        .collect())
}

/// Recomputes the cells that lost their smallest or largest value from
/// their day's `Z` entries as this commit leaves them.
fn recompute_extremes(pending: &mut Pending<'_>) -> Result<(), StoreError> {
    let mut days: BTreeMap<(u32, i32), Vec<SetKey>> = BTreeMap::new();
    for (key, set) in &pending.sets {
        if !set.dirty.is_empty() {
            days.entry((key.metric, key.day)).or_default().push(*key);
        }
    }
    for ((metric, day), sets) in days {
        let entries = day_entries(pending, metric, day)?;
        let rating = pending.rating(metric);
        // One pass over the day's answers fills every dirty cell of the day.
        let mut fresh: BTreeMap<(u32, u32), Rollup> = BTreeMap::new();
        for key in &sets {
            if let Some(set) = pending.sets.get(key) {
                fresh.extend(set.dirty.iter().map(|v| ((key.dim_key, *v), Rollup::default())));
            }
        }
        for (value, counted) in &entries {
            for cell in Pending::cells(counted) {
                if let Some(rollup) = fresh.get_mut(&cell) {
                    rollup.add(*value, rating);
                }
            }
        }
        for key in sets {
            let Some(set) = pending.sets.get_mut(&key) else {
                continue;
            };
            for value in std::mem::take(&mut set.dirty) {
                let cell = fresh.remove(&(key.dim_key, value)).unwrap_or_default();
                set.cells.insert(value, cell);
            }
        }
    }
    Ok(())
}

/// The answers of a metric's day with where they count, after this commit:
/// its `Z` blocks on disk, each replaced by this commit's copy if it has one.
fn day_entries(pending: &Pending<'_>, metric: u32, day: i32) -> Result<Vec<(f64, Counted)>, StoreError> {
    let mut out = Vec::new();
    let (start, end) = keys::joined_block_range(pending.tenant, metric, day, day + 1);
    for entry in pending.db.range(start..end) {
        let (key, bytes) = entry.or_store()?;
        if pending.blocks.contains_key(&zblock_id(&key)?) {
            continue;
        }
        let slots = decode_slots(&bytes)?;
        out.extend(slots.into_iter().flatten().filter_map(|joined| joined.counted));
    }
    for block in pending.blocks.values().filter(|b| b.metric == metric && b.day == day) {
        out.extend(block.slots.iter().flatten().filter_map(|joined| joined.counted.clone()));
    }
    Ok(out)
}

/// The block id at the end of a `Z` key.
fn zblock_id(key: &[u8]) -> Result<u64, StoreError> {
    key.get(13..21)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::corrupt("a joined block key does not parse"))
}

/// Joined cells of a metric over whole days, per value of the ticket
/// dimension `group`, and the unmatched answers: what
/// [`xla_store::Store::grouped_through`] answers from rollups.
pub(crate) fn grouped(
    db: &sled::Db,
    dict: &Dictionary,
    (tenant, metric, group): (u32, u32, Option<u32>),
    (from_day, to_day): (i32, i32),
) -> Result<xla_store::GroupedThrough, StoreError> {
    let mut out = xla_store::GroupedThrough::default();
    let (start, end) = keys::joined_set_range(tenant, metric, from_day, to_day);
    for entry in db.range(start..end) {
        let (key, value) = entry.or_store()?;
        let set = SetKey::parse_joined(&key).ok_or_else(|| StoreError::corrupt("a joined set key does not parse"))?;
        if Some(set.dim_key) == group {
            for (dim_value, cell) in decode_set(&value)? {
                let name = dict
                    .string(dim_value)
                    .ok_or_else(|| StoreError::corrupt("a dictionary id is missing"))?;
                out.groups.entry(name.to_string()).or_default().merge(&cell);
            }
        } else if set.dim_key == UNJOINED_SET {
            out.unmatched.count += decode_set(&value)?.values().map(|c| c.count).sum::<u64>();
        }
    }
    if out.unmatched.count > 0 {
        out.unmatched.examples = unmatched_examples(db, tenant, metric, (from_day, to_day))?;
    }
    Ok(out)
}

impl super::Sled {
    /// The outcomes of the tickets resolved in `[from, to)` (whole UTC
    /// days), per value of `group_by` and for the whole window: see
    /// [`xla_store::Store::ticket_outcomes`]. `None` for a window that is
    /// not whole days.
    pub(crate) fn ticket_outcomes(
        &self,
        tenant: &str,
        group_by: Option<&str>,
        from: i64,
        to: i64,
    ) -> Result<Option<xla_store::OutcomesBySlice>, StoreError> {
        // Per-subject dimensions have no cells: per-ticket rows answer those.
        let unrolled = group_by.is_some_and(|g| keys::UNROLLED_DIMENSIONS.contains(&g));
        if !xla_store::whole_days(from, to) || unrolled {
            return Ok(None);
        }
        let mut out = xla_store::OutcomesBySlice::new();
        let inner = self.lock()?;
        let dict = &inner.dict;
        let Some(tenant) = dict.id(tenant) else {
            return Ok(Some(out));
        };
        if from >= to {
            return Ok(Some(out));
        }
        let group = group_by.and_then(|g| dict.id(g));
        let (from_day, to_day) = (keys::day_of(from), keys::day_of(to - 1) + 1);
        for (i, name) in OUTCOME_CELLS.iter().enumerate() {
            let Some(metric) = dict.id(name) else { continue };
            let (start, end) = keys::joined_set_range(tenant, metric, from_day, to_day);
            for entry in self.db()?.range(start..end) {
                let (key, value) = entry.or_store()?;
                let set =
                    SetKey::parse_joined(&key).ok_or_else(|| StoreError::corrupt("a joined set key does not parse"))?;
                // The day's total (dimension 0) and the group's cells; no others.
                if set.dim_key != 0 && Some(set.dim_key) != group {
                    continue;
                }
                for (dim_value, cell) in decode_set(&value)? {
                    let slice = match set.dim_key {
                        0 => None,
                        _ => Some(
                            dict.string(dim_value)
                                .ok_or_else(|| StoreError::corrupt("a dictionary id is missing"))?
                                .to_string(),
                        ),
                    };
                    let counts = out.entry(slice).or_default();
                    match i {
                        0 => {
                            counts.sla_tickets += cell.count;
                            counts.sla_met += cell.sum.round() as u64;
                        }
                        1 => {
                            for (mine, theirs) in counts.ratings.iter_mut().zip(cell.histogram.unwrap_or_default()) {
                                *mine += theirs;
                            }
                        }
                        _ => {
                            counts.both += cell.count;
                            counts.watermelons += cell.sum.round() as u64;
                        }
                    }
                }
            }
        }
        // A slice no ticket names (a dimension only the answers carry):
        // per-ticket rows, whose dimensions are the union of their values',
        // answer it.
        if group_by.is_some() && out.len() == 1 && out.contains_key(&None) {
            return Ok(None);
        }
        Ok(Some(out))
    }
}

/// The first [`xla_store::UNMATCHED_EXAMPLES`] answers of a metric's days
/// that joined no ticket, in day order (then block and slot). An answer's
/// id is its row's while the row lives, else its slot's.
fn unmatched_examples(
    db: &sled::Db,
    tenant: u32,
    metric: u32,
    days: (i32, i32),
) -> Result<Vec<UnmatchedAnswer>, StoreError> {
    let mut examples = Vec::new();
    let (start, end) = keys::joined_block_range(tenant, metric, days.0, days.1);
    for entry in db.range(start..end) {
        let (key, value) = entry.or_store()?;
        let slots = decode_slots(&value)?;
        // The rows' block, read once and only if a slot needs an id from it.
        let mut rows: Option<Vec<Option<RecordId>>> = None;
        for (slot, joined) in slots.into_iter().enumerate() {
            let Some(Joined {
                number,
                at,
                id,
                counted: Some((_, Counted::Unjoined(code))),
            }) = joined
            else {
                continue;
            };
            let id = match id.into_text() {
                Some(id) => id,
                None => {
                    let rows = match &mut rows {
                        Some(rows) => rows,
                        None => rows.insert(live_row_ids(db, &key)?),
                    };
                    rows.get(slot)
                        .and_then(Option::as_ref)
                        .map(RecordId::to_text)
                        .unwrap_or_default()
                }
            };
            examples.push(UnmatchedAnswer {
                id,
                ticket: number,
                at,
                reason: unjoined_reason(code)?,
            });
            if examples.len() == xla_store::UNMATCHED_EXAMPLES {
                return Ok(examples);
            }
        }
    }
    Ok(examples)
}

/// The record ids of the live rows of the block whose `Z` block is under
/// `joined_key`, by slot; none when the block is gone (its rows retired:
/// their slots hold their ids then).
fn live_row_ids(db: &sled::Db, joined_key: &[u8]) -> Result<Vec<Option<RecordId>>, StoreError> {
    let key =
        keys::live_block_of_joined(joined_key).ok_or_else(|| StoreError::corrupt("a joined block's key is not one"))?;
    let Some(bytes) = db.get(key).or_store()? else {
        return Ok(Vec::new());
    };
    let block: super::block::Block<super::block::Row> = super::block::Block::decode(&bytes)?;
    Ok(block.rows.into_iter().map(|row| row.map(|row| row.id)).collect())
}

/// Writes into `ops` the `Z` block of a block of rows retention retires,
/// with each placed answer's record id in its slot (the retired rows keep
/// none), when there is one to write. `kept` holds each slot's record id
/// where its row stays as a retired row.
pub(crate) fn keep_retiring_ids(
    db: &sled::Db,
    (tenant, metric, day): (u32, u32, i32),
    block: u64,
    kept: &[Option<&RecordId>],
    ops: &mut Ops,
) -> Result<(), StoreError> {
    let key = keys::joined_block(tenant, metric, day, block);
    let Some(bytes) = db.get(key).or_store()? else {
        return Ok(());
    };
    let mut slots = decode_slots(&bytes)?;
    let mut changed = false;
    for (slot, id) in slots.iter_mut().zip(kept) {
        if let (Some(joined), Some(id)) = (slot, id)
            && joined.counted.is_some()
            && joined.id == SlotId::None
        {
            joined.id = SlotId::from((*id).clone());
            changed = true;
        }
    }
    if changed {
        ops.insert(&key, encode_slots(&slots)?);
    }
    Ok(())
}

/// Rows the rebuild settles per sled batch: a bounded batch, memory and all.
const REBUILD_CHUNK: usize = 50_000;

impl super::Sled {
    /// Builds the ticket join from the stored rows, replacing whatever join
    /// state the store holds: the upgrade of a store written before the
    /// join was kept (format 5), run on open until it completes (a crash
    /// part-way starts it again from nothing). Rows retention already
    /// retired keep no ticket number and stay out of the joined cells.
    ///
    /// Rows of other metrics are not listed under their numbers again
    /// ([`Entry::Row`]): every block of such a store is older than format
    /// 10, so the index lists them (`keys::ROWS_BY_NUMBER_FROM`). Run on a
    /// store written since, it would lose those listings.
    pub(crate) fn rebuild_join(&self) -> Result<(), StoreError> {
        let db = &*self.db()?;
        for prefix in keys::JOIN_PREFIXES {
            let mut batch = Ops::default();
            for entry in db.scan_prefix([prefix]) {
                batch.remove(entry.or_store()?.0);
            }
            self.apply(db, batch)?;
        }
        let live = self.metrics_of_kind(false)?;
        let mut inner = self.lock()?;
        let (dict, index) = inner.parts(db, &self.path)?;
        let roles = Roles::new(dict);
        let mut names = Ops::default();
        dict.write_pending(&mut names);
        self.apply(db, names)?;
        // Tickets and openings before answers: answers are then placed once.
        let mut order: Vec<(Role, u32, u32)> = live
            .into_iter()
            .filter_map(|((tenant, metric), _)| Some((roles.role(metric)?, tenant, metric)))
            .collect();
        order.sort_by_key(|(role, tenant, metric)| (*tenant, role.kind(), *metric));
        let (dict, index) = (&*dict, &*index);
        for (role, tenant, metric) in order {
            let mut events = Events::default();
            let flush = |events: &mut Events| -> Result<(), StoreError> {
                let mut ops = Ops::default();
                settle(db, dict, &roles, tenant, std::mem::take(events), &mut ops)?;
                self.apply(db, ops)
            };
            super::read::for_each_live_row(db, index, (tenant, metric), (i32::MIN, i32::MAX), |origin, at, row| {
                events.added.push(Added {
                    loc: (origin.block, origin.slot),
                    role,
                    metric,
                    day: keys::day_of(at),
                    at,
                    fingerprint: super::block::stored_record_fingerprint(tenant, origin.source, metric, &row.id),
                    value: row.value.get(),
                    dims: row.dims.clone(),
                    number: roles.number(&row.inline).map(str::to_string),
                });
                if events.added.len() >= REBUILD_CHUNK {
                    flush(&mut events)?;
                }
                Ok(())
            })?;
            flush(&mut events)?;
        }
        let mut ops = Ops::default();
        ops.remove(keys::JOIN_REBUILD);
        self.apply(db, ops)?;
        db.flush().or_store()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A number's entries are stored as the map they once were: state
    /// written by an earlier build reads back, and is written the same.
    #[test]
    fn a_numbers_entries_are_stored_as_a_map() {
        let entries = [
            (
                (TICKET, 7u128),
                Entry::Ticket {
                    at: 1_790_812_800_000,
                    ticket_type: Some(3),
                    dims: vec![(1, 2), (5, 6)],
                    outcome: Some(Outcome {
                        sla_met: Some(true),
                        rating: None,
                    }),
                },
            ),
            (
                (OPENING, 9u128),
                Entry::Opening {
                    at: 1_790_812_800_000,
                    opened: Some(1_790_800_000_000),
                },
            ),
        ];
        let map: BTreeMap<(u8, u128), Entry> = entries.iter().cloned().collect();
        let mut state = Entries::default();
        // Added out of order, one key twice: kept sorted, the last one kept.
        let mut added: Vec<_> = entries.iter().rev().cloned().collect();
        added.insert(0, ((TICKET, 7u128), Entry::Opening { at: 0, opened: None }));
        state.extend(added);
        let bytes = encode(&map).expect("encodes");
        assert_eq!(encode(&state).expect("encodes"), bytes);
        assert_eq!(decode::<Entries>(&bytes).expect("decodes"), state);
        let ticket: std::collections::HashSet<(u8, u128)> = [(TICKET, 7u128)].into();
        assert_eq!(state.take(&ticket).len(), 1);
        assert!(state.take(&ticket).is_empty());
    }

    /// Entries of every shape: each variant, each option set and not.
    /// An answer's entry at `loc`, keyed by it.
    fn at_place(loc: (u64, u32), answer: Answer) -> ((u8, u128), Entry) {
        ((ANSWER, place_key(loc)), Entry::Answer(Answer { loc, ..answer }))
    }

    fn every_shape() -> Vec<((u8, u128), Entry)> {
        let answer = |counted, ticket_type| Answer {
            loc: (0, 0),
            metric: 4,
            at: -5,
            value: 7.5,
            ticket_type,
            counted,
        };
        vec![
            (
                (TICKET, 1),
                Entry::Ticket {
                    at: 1_790_812_800_000,
                    ticket_type: Some(3),
                    dims: vec![(1, 2), (5, 600_000)],
                    outcome: Some(Outcome {
                        sla_met: Some(false),
                        rating: Some(9.0),
                    }),
                },
            ),
            (
                (TICKET, u128::MAX),
                Entry::Ticket {
                    at: 0,
                    ticket_type: None,
                    dims: Vec::new(),
                    outcome: None,
                },
            ),
            (
                (OPENING, 2),
                Entry::Opening {
                    at: 1,
                    opened: Some(-1),
                },
            ),
            ((OPENING, 3), Entry::Opening { at: 1, opened: None }),
            at_place((300, 17), answer(None, Some(3))),
            at_place(
                (300, 18),
                answer(Some(Counted::Ticket(u128::MAX - 1, vec![(9, 10)])), None),
            ),
            at_place(
                (1 << 40, (1 << SLOT_BITS) - 1),
                answer(Some(Counted::Unjoined(3)), None),
            ),
            at_place(
                (0, 0),
                Answer {
                    value: 9.0,
                    ..answer(Some(Counted::Unjoined(1)), Some(2))
                },
            ),
            ((ROW, place_key((300, 19))), Entry::Row),
            ((ROW, place_key((1 << 40, (1 << SLOT_BITS) - 1))), Entry::Row),
        ]
    }

    /// Every variant and field of what a bucket stores, named: a variant or
    /// field added to them stops this compiling until [`every_shape`] and
    /// the skipping types (`SkipEntry`...) are given it too.
    #[allow(dead_code)]
    fn shapes_covered(entry: &Entry) {
        match entry {
            Entry::Ticket {
                at: _,
                ticket_type: _,
                dims: _,
                outcome: _,
            } => {}
            Entry::Opening { at: _, opened: _ } => {}
            Entry::Answer(Answer {
                loc: _,
                metric: _,
                at: _,
                value: _,
                ticket_type: _,
                counted,
            }) => match counted {
                Some(Counted::Ticket(_, _)) | Some(Counted::Unjoined(_)) | None => {}
            },
            Entry::Answer8(Answer8 {
                loc: _,
                metric: _,
                day: _,
                at: _,
                value: _,
                ticket_type: _,
                counted: _,
            }) => {}
            Entry::Row => {}
        }
        let Outcome { sla_met: _, rating: _ } = Outcome::default();
    }

    /// A bucket of a few hundred numbers (lengths and counts of more than
    /// one byte) is written as the map, whichever of its numbers are read.
    #[test]
    fn a_large_bucket_is_written_as_the_map_it_was() {
        let shapes = every_shape();
        let mut map: BTreeMap<String, Entries> = BTreeMap::new();
        for i in 0..300 {
            let mut state = Entries::default();
            state.extend(vec![
                shapes[i % shapes.len()].clone(),
                shapes[(i + 3) % shapes.len()].clone(),
            ]);
            // Long names too: a length of more than one byte.
            let number = if i % 50 == 0 {
                format!("INC{i:0>200}")
            } else {
                format!("INC{i:07}")
            };
            map.insert(number, state);
        }
        let stored = encode(&map).expect("encodes");
        let mut bucket = bucket::Bucket::decode(stored).expect("decodes");
        let extra = ((OPENING, 1u128 << 100), Entry::Opening { at: 9, opened: Some(8) });
        for number in map.keys().step_by(7).cloned().collect::<Vec<_>>() {
            bucket.state(&number).expect("reads").extend(vec![extra.clone()]);
            map.get_mut(&number).expect("stored").extend(vec![extra.clone()]);
        }
        assert_eq!(bucket.encode().expect("encodes"), Some(encode(&map).expect("encodes")));
    }

    /// The skipping types walk exactly the bytes each shape of entry was
    /// written as: a field added to an entry and not to them fails here.
    #[test]
    fn skipping_reads_exactly_what_was_written() {
        for entry in every_shape() {
            let mut state = Entries::default();
            state.extend(vec![entry.clone()]);
            let mut bytes = encode(&state).expect("encodes");
            bytes.extend_from_slice(&[0xAB, 0xCD]);
            let (_, rest) = postcard::take_from_bytes::<SkipEntries>(&bytes).expect("skips");
            assert_eq!(rest, [0xAB, 0xCD], "{entry:?}");
        }
        let mut state = Entries::default();
        state.extend(every_shape());
        let bytes = encode(&state).expect("encodes");
        let (_, rest) = postcard::take_from_bytes::<SkipEntries>(&bytes).expect("skips");
        assert!(rest.is_empty());
    }

    /// A row of another metric is listed under its number by its place (a
    /// few bytes), read back as the place a ticket's read takes, and taken
    /// out by it; a row's key and an entry of another kind are damage.
    #[test]
    fn a_row_of_another_metric_is_listed_by_its_place() {
        let place = (70_000, 311);
        let mut state = Entries::default();
        state.extend(vec![((ROW, place_key(place)), Entry::Row)]);
        let bytes = encode(&state).expect("encodes");
        // The count, the kind, the place as a varint, the variant.
        assert!(bytes.len() <= 10, "{} bytes", bytes.len());
        let read = decode::<Entries>(&bytes).expect("decodes");
        assert_eq!(read, state);
        let rows: Vec<(u64, u32)> = read
            .iter()
            .filter_map(|((_, key), entry)| matches!(entry, Entry::Row).then(|| place_of(*key)).flatten())
            .collect();
        assert_eq!(rows, [place]);
        let gone: std::collections::HashSet<(u8, u128)> = [(ROW, place_key(place))].into();
        assert_eq!(state.take(&gone).len(), 1);
        assert!(state.is_empty());
        for mismatched in [
            BTreeMap::from([((ROW, 5u128), Entry::Opening { at: 1, opened: None })]),
            BTreeMap::from([((OPENING, 5u128), Entry::Row)]),
            BTreeMap::from([((ROW, u128::MAX), Entry::Row)]),
        ] {
            let bytes = encode(&mismatched).expect("encodes");
            assert!(decode::<Entries>(&bytes).is_err(), "{mismatched:?}");
        }
    }

    /// A row of another metric is listed under the number it names, a
    /// replace that names another number moves its listing (the old number
    /// no longer lists it), and retention takes it out. A reader would pass
    /// over a stale listing: only the join's state shows it.
    #[test]
    fn a_replace_moves_a_rows_listing_to_its_new_number() {
        use xla_types::{Layer, Record};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::SledStore::open(dir.path()).expect("open");
        let commit = |number: &str, value: f64| xla_store::CommitBatch {
            tenant: "acme".into(),
            source: "sn".into(),
            records: vec![
                Record::new("0123456789abcdef0123456789abcdef", 1_790_812_800_000)
                    .dim("ticket", number)
                    .value("reassignment_count", Layer::Operational, value),
            ],
            ..Default::default()
        };
        let listed = |number: &str| -> Vec<(u64, u32)> {
            let db = store.sled.db().expect("db");
            let tenant = store.sled.lock().expect("lock").dict.id("acme").expect("tenant");
            rows_of_number(&db, tenant, number)
                .expect("rows")
                .into_iter()
                .filter_map(|row| match row {
                    RowOfNumber::At(block, slot) => Some((block, slot)),
                    RowOfNumber::Record(_) => None,
                })
                .collect()
        };
        xla_store::conformance::block_on(async {
            use xla_store::Store;
            store.commit(commit("INC1", 1.0)).await.expect("first");
            assert_eq!(listed("INC1").len(), 1);
            store.commit(commit("INC2", 2.0)).await.expect("moved");
        });
        assert_eq!(listed("INC1"), []);
        assert_eq!(listed("INC2").len(), 1);
        // Retired, the row no longer names its number: nor does the join list it.
        xla_store::conformance::block_on(async {
            use xla_store::Store;
            let cutoff = 1_790_812_800_000 + 2 * keys::DAY_MS;
            let retired = store.retire_before("acme", None, cutoff).await.expect("retention");
            assert_eq!(retired.dropped, 1);
        });
        assert_eq!(listed("INC2"), []);
    }

    /// A number's entries as formats 6 to 8 stored them (an answer keyed by
    /// its record fingerprint, its place in it, its day beside its time, its
    /// value as 8 bytes) read back as the answers they were, keyed by their
    /// places; skip as they were written; and are written again as format 9
    /// writes an answer: a rating 26 bytes shorter.
    #[test]
    fn a_format_8_answer_reads_as_it_was() {
        #[derive(Serialize)]
        #[allow(dead_code)] // Mirrors the stored enum's variant order.
        enum Format8 {
            Ticket,
            Opening,
            Answer(Answer8),
        }
        let answers: Vec<Answer> = [
            (Some(Counted::Ticket(u128::MAX - 1, vec![(9, 10)])), 7.5),
            (Some(Counted::Unjoined(2)), 10.0),
            (None, -0.0),
        ]
        .into_iter()
        .zip(17..)
        .map(|((counted, value), slot)| Answer {
            loc: (300, slot),
            metric: 4,
            at: 1_790_812_800_000 + 5,
            value,
            ticket_type: Some(3),
            counted,
        })
        .collect();
        let old: BTreeMap<(u8, u128), Format8> = answers
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let entry = Format8::Answer(Answer8 {
                    loc: a.loc,
                    metric: a.metric,
                    day: a.day(),
                    at: a.at,
                    value: a.value,
                    ticket_type: a.ticket_type,
                    counted: a.counted.clone(),
                });
                // A record fingerprint: uniform in 128 bits.
                ((ANSWER_BY_RECORD, u128::MAX / 3 * (i as u128 + 1)), entry)
            })
            .collect();
        let stored = encode(&old).expect("encodes");
        let read: Entries = decode(&stored).expect("decodes");
        let expected: Vec<((u8, u128), Entry)> = answers
            .iter()
            .map(|a| ((ANSWER, place_key(a.loc)), Entry::Answer(a.clone())))
            .collect();
        assert_eq!(read.0, expected);
        let Entry::Answer(negative_zero) = &read.0[2].1 else {
            unreachable!()
        };
        assert!(negative_zero.value.is_sign_negative(), "read bit for bit");
        let (_, rest) = postcard::take_from_bytes::<SkipEntries>(&stored).expect("skips");
        assert!(rest.is_empty());
        let written = encode(&read).expect("encodes");
        assert_eq!(decode::<Entries>(&written).expect("decodes"), read);
        // An answer under a key of the other format is damage, not data.
        let (_, entry) = old.iter().next().expect("three");
        let mismatched = encode(&BTreeMap::from([((ANSWER, 5u128), entry)])).expect("encodes");
        assert!(decode::<Entries>(&mismatched).is_err());
        let one = |entries: &Entries, i: usize| encode(&Entries(vec![entries.0[i].clone()])).expect("encodes").len();
        let old_one = encode(&BTreeMap::from([old.into_iter().nth(1).expect("three")]))
            .expect("encodes")
            .len();
        assert_eq!(
            old_one - one(&read, 1),
            26,
            "a place of 5 bytes for a fingerprint of 19 and the place (3), no day (3), a rating 10 in 2 bytes not 8"
        );
    }

    /// A bucket read and written again is the map it was stored as, with
    /// the numbers a commit read changed, added or emptied, and the others
    /// copied: whichever build stored it.
    #[test]
    fn a_bucket_is_written_as_the_map_it_was() {
        let mut map: BTreeMap<String, Entries> = BTreeMap::new();
        for (i, entry) in every_shape().into_iter().enumerate() {
            let mut state = Entries::default();
            state.extend(vec![entry]);
            map.insert(format!("INC00123{:02}", 10 * i), state);
        }
        let stored = encode(&map).expect("encodes");
        let untouched = bucket::Bucket::decode(stored.clone()).expect("decodes");
        assert_eq!(untouched.encode().expect("encodes"), Some(stored.clone()));

        let mut bucket = bucket::Bucket::decode(stored).expect("decodes");
        // Changed: a stored number gains an entry.
        let extra = ((OPENING, 99u128), Entry::Opening { at: 5, opened: None });
        bucket.state("INC0012310").expect("reads").extend(vec![extra.clone()]);
        map.get_mut("INC0012310").expect("stored").extend(vec![extra.clone()]);
        // Added: a number new to the bucket, between two stored ones, and one after them.
        for number in ["INC0012305", "INC0012399"] {
            bucket.state(number).expect("reads").extend(vec![extra.clone()]);
            map.entry(number.to_string()).or_default().extend(vec![extra.clone()]);
        }
        // Emptied: left out. Read and left as it was: written the same.
        let keys: std::collections::HashSet<(u8, u128)> = [(TICKET, 1u128)].into();
        assert_eq!(bucket.state("INC0012300").expect("reads").take(&keys).len(), 1);
        map.remove("INC0012300");
        bucket.state("INC0012320").expect("reads");
        // Read but never stored, and left empty: not written.
        bucket.state("INC0012301").expect("reads");
        assert_eq!(bucket.encode().expect("encodes"), Some(encode(&map).expect("encodes")));

        let mut emptied = bucket::Bucket::decode(
            encode(&BTreeMap::from([("INC1".to_string(), {
                let mut state = Entries::default();
                state.extend(vec![extra]);
                state
            })]))
            .expect("encodes"),
        )
        .expect("decodes");
        let keys: std::collections::HashSet<(u8, u128)> = [(OPENING, 99u128)].into();
        emptied.state("INC1").expect("reads").take(&keys);
        assert_eq!(emptied.encode().expect("encodes"), None, "an empty bucket is removed");
    }

    /// A stand-in for sled's keys of one bucket: what `read_bucket` reads.
    fn load_bucket(kv: &BTreeMap<Vec<u8>, Vec<u8>>, key: &[u8]) -> bucket::Bucket {
        let prefix = bucket::delta_prefix(key);
        let deltas = kv
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        bucket::Bucket::load(key, kv.get(key).cloned(), deltas).expect("loads")
    }

    /// Commits that change, add and empty numbers of one bucket, written as
    /// deltas and now and then whole: after each, the bucket reads back as
    /// the map of every number's state (encoded whole, it is that map), and
    /// it never has more than four deltas.
    #[test]
    fn a_bucket_kept_as_deltas_reads_as_the_whole_map() {
        let shapes = every_shape();
        let key = keys::join_bucket(1, "INC0012300");
        let mut kv: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut map: BTreeMap<String, Entries> = BTreeMap::new();
        let (mut deltas_written, mut wholes_at_four, mut wholes_by_bytes) = (0, 0, 0);
        for commit in 0..40usize {
            let deltas_before = kv.len().saturating_sub(1);
            let mut bucket = load_bucket(&kv, &key);
            // A few numbers a commit: in a ServiceNow sync a bucket fills
            // over several commits, then changes a little at a time.
            for i in 0..(1 + commit % 5) {
                let number = format!("INC00123{:02}", (commit * 7 + i * 31) % 60);
                let state = bucket.state(&number).expect("reads");
                let expected = map.entry(number.clone()).or_default();
                if commit % 6 == 5 && i == 0 {
                    // Emptied: every entry taken out.
                    let keys: std::collections::HashSet<(u8, u128)> = state.iter().map(|(k, _)| *k).collect();
                    state.take(&keys);
                    map.remove(&number);
                } else {
                    let entry = shapes[(commit + i) % shapes.len()].clone();
                    state.extend(vec![entry.clone()]);
                    expected.extend(vec![entry]);
                }
            }
            // Read and left as it was.
            bucket.state("INC0012399").expect("reads");
            for (k, v) in bucket.writes(&key).expect("encodes") {
                match (k == key, v) {
                    (true, v) => {
                        match deltas_before {
                            4 => wholes_at_four += 1,
                            1.. => wholes_by_bytes += 1,
                            0 => {}
                        }
                        match v {
                            Some(v) => kv.insert(k, v),
                            None => kv.remove(&k),
                        };
                    }
                    (false, Some(v)) => {
                        deltas_written += 1;
                        assert!(kv.insert(k, v).is_none(), "commit {commit}: a delta overwrote another");
                    }
                    (false, None) => assert!(
                        kv.remove(&k).is_some(),
                        "commit {commit}: removed a delta never written"
                    ),
                }
            }
            map.retain(|_, state| !state.is_empty());
            let whole = if map.is_empty() {
                None
            } else {
                Some(encode(&map).expect("encodes"))
            };
            assert_eq!(
                load_bucket(&kv, &key).encode().expect("encodes"),
                whole,
                "after commit {commit}"
            );
            assert!(kv.len() <= 5, "commit {commit}: {} keys", kv.len());
        }
        assert!(
            deltas_written > 20 && wholes_at_four > 0 && wholes_by_bytes > 0,
            "{deltas_written} deltas, written whole {wholes_at_four} times after four, {wholes_by_bytes} for their bytes"
        );
        // Every number emptied: the bucket and its deltas go.
        assert!(kv.len() > 1, "deltas are there to remove");
        let mut bucket = load_bucket(&kv, &key);
        for number in map.keys() {
            let state = bucket.state(number).expect("reads");
            let keys: std::collections::HashSet<(u8, u128)> = state.iter().map(|(k, _)| *k).collect();
            state.take(&keys);
        }
        for (k, v) in bucket.writes(&key).expect("encodes") {
            assert_eq!(v, None, "only removals");
            kv.remove(&k);
        }
        assert!(kv.is_empty(), "{} keys left", kv.len());
    }

    /// A delta written over a bucket stored before deltas existed: the
    /// bucket's own value is read as it was, the delta's numbers over it.
    #[test]
    fn a_delta_reads_over_a_bucket_of_an_earlier_build() {
        let shapes = every_shape();
        let mut map: BTreeMap<String, Entries> = BTreeMap::new();
        for i in 0..50 {
            let mut state = Entries::default();
            state.extend(vec![shapes[i % shapes.len()].clone()]);
            map.insert(format!("INC00123{i:02}"), state);
        }
        let key = keys::join_bucket(1, "INC0012300");
        let mut kv = BTreeMap::from([(key.clone(), encode(&map).expect("encodes"))]);
        let mut bucket = load_bucket(&kv, &key);
        bucket
            .state("INC0012307")
            .expect("reads")
            .extend(vec![shapes[0].clone()]);
        map.get_mut("INC0012307")
            .expect("stored")
            .extend(vec![shapes[0].clone()]);
        let writes = bucket.writes(&key).expect("encodes");
        assert_eq!(writes.len(), 1);
        assert_ne!(writes[0].0, key, "a delta, not the bucket whole");
        for (k, v) in writes {
            kv.insert(k, v.expect("a value"));
        }
        assert_eq!(
            load_bucket(&kv, &key).encode().expect("encodes"),
            Some(encode(&map).expect("encodes"))
        );
    }

    /// Deltas not numbered 0, 1, 2... (a next one would overwrite one) or
    /// more of them than a commit leaves are refused as damage.
    #[test]
    fn damaged_deltas_are_refused() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let db = sled::open(dir.path()).expect("sled opens");
        let key = keys::join_bucket(1, "INC0012300");
        let mut state = Entries::default();
        state.extend(vec![every_shape()[0].clone()]);
        let layer = encode(&BTreeMap::from([("INC0012301".to_string(), state)])).expect("encodes");
        db.insert(&key, layer.clone()).expect("inserts");
        let delta = |n: u8| {
            let mut k = bucket::delta_prefix(&key);
            k.push(n);
            k
        };
        db.insert(delta(0), layer.clone()).expect("inserts");
        assert!(read_bucket(&db, &key).is_ok());
        db.insert(delta(2), layer.clone()).expect("inserts");
        assert!(read_bucket(&db, &key).is_err(), "a gap");
        db.insert(delta(1), layer.clone()).expect("inserts");
        db.insert(delta(3), layer.clone()).expect("inserts");
        assert!(read_bucket(&db, &key).is_ok());
        db.insert(delta(4), layer.clone()).expect("inserts");
        assert!(read_bucket(&db, &key).is_err(), "five deltas");
        // Another bucket: a delta without the bucket, then a key too long.
        let other = keys::join_bucket(1, "INC0012400");
        let mut orphan = bucket::delta_prefix(&other);
        orphan.push(0);
        db.insert(&orphan, layer.clone()).expect("inserts");
        assert!(read_bucket(&db, &other).is_err(), "a delta without its bucket");
        db.insert(&other, layer.clone()).expect("inserts");
        assert!(read_bucket(&db, &other).is_ok());
        orphan.push(0);
        db.insert(&orphan, layer).expect("inserts");
        assert!(read_bucket(&db, &other).is_err(), "a key longer than a delta's");
    }

    #[test]
    fn damaged_buckets_are_refused() {
        let mut map: BTreeMap<String, Entries> = BTreeMap::new();
        let mut state = Entries::default();
        state.extend(every_shape());
        map.insert("INC0012300".into(), state);
        let stored = encode(&map).expect("encodes");
        for cut in [1, 5, stored.len() / 2, stored.len() - 1] {
            assert!(bucket::Bucket::decode(stored[..cut].to_vec()).is_err(), "cut at {cut}");
        }
        let mut longer = stored.clone();
        longer.push(0);
        assert!(bucket::Bucket::decode(longer).is_err(), "trailing bytes");
        // A count of 2^32 - 1 over a few bytes.
        assert!(
            bucket::Bucket::decode(vec![0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 1, b'A', 0]).is_err(),
            "a huge count"
        );
        let two = |a: &str, b: &str| {
            let mut bytes = vec![2];
            for name in [a, b] {
                bytes.push(name.len() as u8);
                bytes.extend_from_slice(name.as_bytes());
                bytes.push(0);
            }
            bytes
        };
        assert!(bucket::Bucket::decode(two("INC1", "INC2")).is_ok());
        assert!(bucket::Bucket::decode(two("INC2", "INC1")).is_err(), "out of order");
        assert!(bucket::Bucket::decode(two("INC1", "INC1")).is_err(), "a number twice");
        let mut bytes = two("INC1", "INC2");
        bytes[2] = 0xFF;
        assert!(bucket::Bucket::decode(bytes).is_err(), "not UTF-8");
    }

    #[test]
    fn joined_blocks_round_trip_compressed() {
        let slots: Vec<Option<Joined>> = (0..512)
            .map(|i| {
                (i % 3 != 0).then(|| Joined {
                    number: Some(format!("INC{:07}", 12_300 + i / 2)),
                    at: 1_790_812_800_000 + i64::from(i) * 60_000,
                    id: SlotId::from(RecordId::new(&format!(
                        "{:032x}",
                        (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    ))),
                    counted: Some((f64::from(i % 11), Counted::Ticket(i as u128, vec![(3, 4), (5, 6)]))),
                })
            })
            .collect();
        let stored = encode_slots(&slots).expect("encodes");
        let raw = encode(&slots).expect("encodes");
        assert!(
            stored.len() < raw.len() * 3 / 4,
            "{} of {} bytes",
            stored.len(),
            raw.len()
        );
        assert_ne!(raw[0], 0, "a bare value never looks framed");
        let back = decode_slots(&stored).expect("decodes");
        assert_eq!(back, slots);
        let small = vec![
            None,
            Some(Joined {
                number: None,
                at: 0,
                id: SlotId::None,
                counted: None,
            }),
        ];
        let back = decode_slots(&encode_slots(&small).expect("encodes")).expect("decodes");
        assert_eq!(back, small, "a small value stays bare");
    }

    /// A record id in a `Z` slot: hexadecimal as its bytes, anything else
    /// as text, each read back as given.
    #[test]
    fn slot_ids_keep_the_record_id_as_given() {
        let sys_id = "46d44a0fa9fe198101b1d2f8ee3e2b3c";
        assert!(matches!(SlotId::from(RecordId::new(sys_id)), SlotId::Hex(ref bytes) if bytes.len() == 16));
        for id in [sys_id, "", "a3", "46D44A0F", "abc", "HS-2026-000117", "ü"] {
            assert_eq!(SlotId::from(RecordId::new(id)).into_text().as_deref(), Some(id));
        }
        assert_eq!(SlotId::None.into_text(), None);
        let slot = |id| Joined {
            number: Some("INC0012345".into()),
            at: 1_790_812_800_000,
            id,
            counted: Some((8.0, Counted::Unjoined(1))),
        };
        let text = encode(&slot(SlotId::Text(sys_id.into()))).expect("encodes");
        let hex = encode(&slot(SlotId::from(RecordId::new(sys_id)))).expect("encodes");
        assert_eq!(text.len() - hex.len(), 16, "a sys_id takes 16 bytes, not 32");
    }

    /// A format-7 slot kept its record id as `Option<String>`: it reads as
    /// `SlotId::None` or `SlotId::Text`, so no `Z` block is rewritten on
    /// the upgrade to format 8. Its value (8 bytes, as format 8 kept it
    /// too) reads as it was; format 9 writes a whole one as a varint.
    #[test]
    fn a_format_7_slot_reads_as_it_was() {
        #[derive(Serialize)]
        struct Format7 {
            number: Option<String>,
            at: i64,
            id: Option<String>,
            counted: Option<(f64, Counted)>,
        }
        let old = |id: Option<&str>| Format7 {
            number: Some("INC0012345".into()),
            at: -7,
            id: id.map(str::to_string),
            counted: Some((3.0, Counted::Ticket(9, vec![(1, 2)]))),
        };
        let stored = encode_framed(&vec![
            Some(old(Some("46d44a0fa9fe198101b1d2f8ee3e2b3c"))),
            None,
            Some(old(None)),
        ])
        .expect("encodes");
        let slots = decode_slots(&stored).expect("decodes");
        assert_eq!(
            slots[0].as_ref().and_then(|j| j.counted.clone()),
            Some((3.0, Counted::Ticket(9, vec![(1, 2)])))
        );
        let written = encode_slots(&slots).expect("encodes");
        assert_eq!(decode_slots(&written).expect("decodes"), slots);
        assert!(
            written.len() < stored.len(),
            "{} then {} bytes",
            stored.len(),
            written.len()
        );
        let ids: Vec<Option<SlotId>> = slots.into_iter().map(|s| s.map(|j| j.id)).collect();
        assert_eq!(
            ids,
            [
                Some(SlotId::Text("46d44a0fa9fe198101b1d2f8ee3e2b3c".into())),
                None,
                Some(SlotId::None)
            ]
        );
    }
}

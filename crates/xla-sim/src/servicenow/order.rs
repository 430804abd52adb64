//! Sorted record orders (`ORDERBY`), kept per table and order while the
//! records stay the same: a sync asks for the same order page after page,
//! and sorting a large table for every page would make the simulator, not
//! the client, the slowest part of a benchmark.

use super::query::{self, OrderBy, Val};
use super::table::{self, Table};
use crate::lock;
use crate::org::Org;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Orders computed for one generation of the records.
#[derive(Debug, Default)]
pub(crate) struct OrderCache {
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    generation: u64,
    sorted: HashMap<(Table, Vec<OrderBy>), Arc<[usize]>>,
}

/// Distinct orders kept at once; clients ask for a handful.
const MAX_ORDERS: usize = 32;

impl OrderCache {
    /// Every record of `table` in `order`, for records of `generation`.
    pub(crate) fn get(&self, org: &Org, generation: u64, table: Table, order: &[OrderBy]) -> Arc<[usize]> {
        let key = (table, order.to_vec());
        {
            let entries = lock(&self.entries);
            if entries.generation == generation
                && let Some(found) = entries.sorted.get(&key)
            {
                return Arc::clone(found);
            }
        }
        // Sorted outside the lock: two first requests may both sort, and agree.
        let computed: Arc<[usize]> = sorted(org, table, order).into();
        let mut entries = lock(&self.entries);
        if entries.generation != generation || entries.sorted.len() >= MAX_ORDERS {
            entries.generation = generation;
            entries.sorted.clear();
        }
        entries.sorted.insert(key, Arc::clone(&computed));
        computed
    }
}

/// Every record of `table` in `order` (table order when empty); a stable
/// sort, so ties keep table order.
fn sorted(org: &Org, table: Table, order: &[OrderBy]) -> Vec<usize> {
    let len = table.len(org);
    if order.is_empty() {
        return (0..len).collect();
    }
    let empty = || Val::Text(std::borrow::Cow::Borrowed(""));
    let mut keyed: Vec<(Vec<Val<'_>>, usize)> = (0..len)
        .map(|i| {
            let key = order
                .iter()
                .map(|o| table::walk(org, table, i, &o.field).map_or_else(empty, |c| c.value))
                .collect();
            (key, i)
        })
        .collect();
    keyed.sort_by(|(a, _), (b, _)| {
        for ((x, y), by) in a.iter().zip(b).zip(order) {
            let ordering = query::order(x, y);
            let ordering = if by.descending { ordering.reverse() } else { ordering };
            if ordering.is_ne() {
                return ordering;
            }
        }
        std::cmp::Ordering::Equal
    });
    keyed.into_iter().map(|(_, i)| i).collect()
}

//! Per-subject rows for scorers: one row per ticket (or device) joining its
//! values across metrics and sources, for scorers that judge tickets one by
//! one (the watermelon detector: SLA met *and* rated 0-6).

use super::Sled;
use super::block::Row;
use super::keys;
use super::query::row_dimension;
use super::read;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use xla_store::{GroupThrough, Rollup, StoreError, SubjectQuery, SubjectRow, is_rating};

#[derive(Default)]
struct Building {
    dimensions: BTreeMap<String, String>,
    values: Vec<(String, f64)>,
}

impl Sled {
    /// One row per value of `query.key` among the observations of
    /// `query.metrics` in the window, ordered by key. A row holds every
    /// value of those metrics (a ticket with two SLAs has two
    /// `sla_breached` values), each followed by `(<metric>.at, unix ms)`
    /// (exact in an f64) for scorers that order by time, and the union of the observations'
    /// dimensions, the key's own excepted; where sources disagree on a
    /// dimension, the first metric listed wins. Observations without the
    /// key dimension are left out.
    pub(crate) fn subject_rows(&self, query: &SubjectQuery) -> Result<Vec<SubjectRow>, StoreError> {
        let mut inner = self.lock()?;
        let (Some(tenant), Some(key)) = (inner.dict.id(&query.tenant), inner.dict.id(&query.key)) else {
            return Ok(Vec::new());
        };
        if query.from >= query.to {
            return Ok(Vec::new());
        }
        let from_day = keys::day_of(query.from);
        let to_day = keys::day_of(query.to - 1) + 1;
        if self.retired(tenant, from_day)? {
            return Err(StoreError::RetiredRows {
                what: "per-subject rows".into(),
            });
        }
        let filter = match &query.filter {
            None => None,
            Some((k, v)) => match inner.dict.id(k) {
                Some(k) => Some((k, v.as_str())),
                None => return Ok(Vec::new()),
            },
        };
        let (dict, index) = inner.parts(&self.db)?;
        let (dict, index) = (&*dict, &*index);
        let mut rows: BTreeMap<String, Building> = BTreeMap::new();
        for metric_name in &query.metrics {
            let Some(metric) = dict.id(metric_name) else {
                continue;
            };
            let at_name = format!("{metric_name}.at");
            read::for_each_live_row(&self.db, index, (tenant, metric), (from_day, to_day), |_, at, row| {
                if !(query.from..query.to).contains(&at) {
                    return Ok(());
                }
                if let Some((k, v)) = filter
                    && row_dimension(dict, row, k) != Some(v)
                {
                    return Ok(());
                }
                let Some(subject) = row_dimension(dict, row, key) else {
                    return Ok(());
                };
                let building = match rows.get_mut(subject) {
                    Some(building) => building,
                    None => rows.entry(subject.to_string()).or_default(),
                };
                let rolled = row.dims.iter().filter_map(|(k, v)| Some((*k, dict.string(*v)?)));
                let inline = row.inline.iter().map(|(k, v)| (*k, v.as_str()));
                for (k, v) in rolled.chain(inline).filter(|(k, _)| *k != key) {
                    let Some(name) = dict.string(k) else { continue };
                    if !building.dimensions.contains_key(name) {
                        building.dimensions.insert(name.to_string(), v.to_string());
                    }
                }
                building.values.push((metric_name.clone(), row.value.get()));
                building.values.push((at_name.clone(), at as f64));
                Ok(())
            })?;
        }
        Ok(rows
            .into_iter()
            .map(|(key, building)| SubjectRow {
                key,
                dimensions: building.dimensions.into_iter().collect(),
                values: building.values,
            })
            .collect())
    }
}

impl Sled {
    /// `query.metric` rolled up per value of `query.group_by` as the
    /// subjects' `via` observations name it: a survey answer counts for the
    /// assignment group of its ticket. Observations of subjects without a
    /// group are left out. The same join as [`Store::subject_rows`], without
    /// building a row per subject.
    pub(crate) fn grouped_through(&self, query: &GroupThrough) -> Result<BTreeMap<String, Rollup>, StoreError> {
        let mut inner = self.lock()?;
        let dict = &inner.dict;
        let (Some(tenant), Some(key), Some(group)) =
            (dict.id(&query.tenant), dict.id(&query.key), dict.id(&query.group_by))
        else {
            return Ok(BTreeMap::new());
        };
        if query.from >= query.to {
            return Ok(BTreeMap::new());
        }
        let from_day = keys::day_of(query.from);
        let to_day = keys::day_of(query.to - 1) + 1;
        if self.retired(tenant, from_day)? {
            return Err(StoreError::RetiredRows {
                what: "values grouped through their subjects".into(),
            });
        }
        let filter = match &query.filter {
            None => None,
            Some((k, v)) => match inner.dict.id(k) {
                Some(k) => Some((k, v.as_str())),
                None => return Ok(BTreeMap::new()),
            },
        };
        let (dict, index) = inner.parts(&self.db)?;
        let (dict, index) = (&*dict, &*index);
        let in_scope = |at: i64, row: &Row| {
            (query.from..query.to).contains(&at) && filter.is_none_or(|(k, v)| row_dimension(dict, row, k) == Some(v))
        };
        let subject_hash = |subject: &str| xxhash_rust::xxh3::xxh3_64(subject.as_bytes());
        // Pass 1: each subject's group.
        let mut groups: FxHashMap<u64, String> = FxHashMap::default();
        for via in &query.via {
            let Some(metric) = dict.id(via) else { continue };
            read::for_each_live_row(&self.db, index, (tenant, metric), (from_day, to_day), |_, at, row| {
                if !in_scope(at, row) {
                    return Ok(());
                }
                if let (Some(subject), Some(value)) = (row_dimension(dict, row, key), row_dimension(dict, row, group)) {
                    groups.entry(subject_hash(subject)).or_insert_with(|| value.to_string());
                }
                Ok(())
            })?;
        }
        // Pass 2: the metric's values under their subject's group.
        let mut out: BTreeMap<String, Rollup> = BTreeMap::new();
        let Some(metric) = dict.id(&query.metric) else {
            return Ok(out);
        };
        let rating = is_rating(&query.metric);
        read::for_each_live_row(&self.db, index, (tenant, metric), (from_day, to_day), |_, at, row| {
            if !in_scope(at, row) {
                return Ok(());
            }
            let Some(group) = row_dimension(dict, row, key).and_then(|s| groups.get(&subject_hash(s))) else {
                return Ok(());
            };
            match out.get_mut(group) {
                Some(rollup) => rollup.add(row.value.get(), rating),
                None => out.entry(group.clone()).or_default().add(row.value.get(), rating),
            }
            Ok(())
        })?;
        Ok(out)
    }
}

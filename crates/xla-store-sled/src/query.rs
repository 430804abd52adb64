//! Answering a series query from rollup cells: the month's cells, never its
//! rows, except when a filter and a group-by name two different dimensions
//! (the rollups hold one dimension at a time) or a per-subject dimension
//! (ticket, device, user, which have no cells): then the rows are read.

use super::block::Row;
use super::dict::Dictionary;
use super::keys::{self, DAY_MS, SetKey};
use super::read;
use super::rollup::decode_set;
use super::{OrStore, Sled};
use xla_store::{Rollups, SeriesQuery, StoreError, bucket_start, is_rating};

impl Sled {
    /// Rollups merged per (bucket, group): see [`xla_store::Store::rollups`].
    pub(crate) fn rollups(&self, query: &SeriesQuery) -> Result<Rollups, StoreError> {
        let mut inner = self.lock()?;
        let dict = &inner.dict;
        let mut out = Rollups::new();
        let (Some(tenant), Some(metric)) = (dict.id(&query.tenant), dict.id(&query.metric)) else {
            return Ok(out);
        };
        // A dimension never stored matches nothing.
        let filter_key = match &query.filter {
            None => None,
            Some((k, _)) => match dict.id(k) {
                Some(id) => Some(id),
                None => return Ok(out),
            },
        };
        let group_key = match &query.group_by {
            None => None,
            Some(g) => match dict.id(g) {
                Some(id) => Some(id),
                None => return Ok(out),
            },
        };
        if query.from >= query.to {
            return Ok(out);
        }
        let from_day = keys::day_of(query.from);
        let to_day = keys::day_of(query.to - 1) + 1;
        let unrolled = |k: Option<u32>| {
            k.and_then(|k| dict.string(k))
                .is_some_and(|name| keys::UNROLLED_DIMENSIONS.contains(&name))
        };
        let two_dimensions = matches!((filter_key, group_key), (Some(f), Some(g)) if f != g);
        if two_dimensions || unrolled(filter_key) || unrolled(group_key) {
            if self.retired(tenant, metric, from_day)? {
                return Err(StoreError::RetiredRows {
                    what: "a filter and a group-by on two different dimensions, or on a per-subject dimension".into(),
                });
            }
            let rating = is_rating(&query.metric);
            let (dict, index) = inner.parts(&*self.db()?, &self.path)?;
            let (dict, index) = (&*dict, &*index);
            let filter = query.filter.as_ref().zip(filter_key).map(|((_, v), k)| (k, v.as_str()));
            read::for_each_live_row(
                &*self.db()?,
                index,
                (tenant, metric),
                (from_day, to_day),
                |_, at, row| {
                    if let Some((k, v)) = filter
                        && row_dimension(dict, row, k) != Some(v)
                    {
                        return Ok(());
                    }
                    let group = match group_key {
                        Some(g) => match row_dimension(dict, row, g) {
                            Some(value) => Some(value.to_string()),
                            None => return Ok(()),
                        },
                        None => None,
                    };
                    out.entry((bucket_start(at, query.bucket), group))
                        .or_default()
                        .add(row.value.get(), rating);
                    Ok(())
                },
            )?;
            return Ok(out);
        }
        let filter = match &query.filter {
            None => None,
            Some((_, v)) => match dict.id(v) {
                Some(v) => Some(v),
                None => return Ok(out),
            },
        };
        // The one set per day that answers: the filter's or the group's dimension, or all rows.
        let wanted = filter_key.or(group_key).unwrap_or(0);
        let (start, end) = keys::rollup_range(tenant, metric, from_day, to_day);
        for entry in self.db()?.range(start..end) {
            let (key, value) = entry.or_store()?;
            let set = SetKey::parse(&key).ok_or_else(|| StoreError::corrupt("a rollup key does not parse"))?;
            if set.dim_key != wanted {
                continue;
            }
            let bucket = bucket_start(i64::from(set.day) * DAY_MS, query.bucket);
            for (dim_value, rollup) in decode_set(&value)? {
                if filter.is_some_and(|f| f != dim_value) {
                    continue;
                }
                let group = match group_key {
                    Some(_) => Some(
                        dict.string(dim_value)
                            .ok_or_else(|| StoreError::corrupt("a dictionary id is missing"))?
                            .to_string(),
                    ),
                    None => None,
                };
                out.entry((bucket, group)).or_default().merge(&rollup);
            }
        }
        Ok(out)
    }
}

/// The value of a row's dimension `key`, rolled up or inline.
pub(crate) fn row_dimension<'r>(dict: &'r Dictionary, row: &'r Row, key: u32) -> Option<&'r str> {
    if let Some((_, v)) = row.dims.iter().find(|(k, _)| *k == key) {
        return dict.string(*v);
    }
    row.inline.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
}

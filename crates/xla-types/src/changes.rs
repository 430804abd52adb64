//! What a connector step changes (contract 0.2, `wit/since_v0.2.0/`): source
//! records with several metric values, retractions, and what the step says
//! about its own completeness.

use crate::{Layer, Name, Observation};

/// One metric value of a [`Record`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricValue {
    /// Metric name from the vocabulary (`docs/metrics.md`).
    pub metric: Name,
    /// The layer of the metric.
    pub layer: Layer,
    /// The value in the metric's unit; booleans are 0 or 1.
    pub value: f64,
}

/// One record of the source (a ticket, a survey response, a device-day)
/// with every metric value it gives, its dimensions said once.
///
/// The store keeps one row per (source, `id`, metric), so a record is the
/// same data as one [`Observation`] per value ([`Record::observations`]),
/// sent without repeating the id, time and dimensions.
///
/// ```
/// use xla_types::{Layer, Record};
/// let r = Record::new("a1b2", 1_760_000_000_000)
///     .dim("ticket", "INC0012345")
///     .value("reassignment_count", Layer::Operational, 2.0)
///     .value("resolution_hours", Layer::Operational, 5.5);
/// assert_eq!(r.observations().len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// Stable identifier of the source record (a sys_id, a response id).
    pub id: String,
    /// When the values were observed: unix ms, UTC.
    pub at: i64,
    /// Dimension key/value pairs shared by every value.
    pub dimensions: Vec<(Name, Name)>,
    /// The values, a metric at most once.
    pub values: Vec<MetricValue>,
}

impl Record {
    /// A record with no dimensions and no values yet.
    pub fn new(id: impl Into<String>, at_millis: i64) -> Self {
        Record {
            id: id.into(),
            at: at_millis,
            dimensions: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Adds a dimension; an empty value is skipped, a repeated key replaces the earlier value.
    /// A literal key costs no allocation.
    pub fn dim(mut self, key: impl Into<Name>, value: impl Into<String>) -> Self {
        crate::set_dimension(&mut self.dimensions, key.into(), Name::from(value.into()));
        self
    }

    /// Adds a metric value; a repeated metric replaces the earlier value.
    pub fn value(mut self, metric: impl Into<Name>, layer: Layer, value: f64) -> Self {
        self.push(metric, layer, value);
        self
    }

    /// Adds a metric value in place; a repeated metric replaces the earlier value.
    pub fn push(&mut self, metric: impl Into<Name>, layer: Layer, value: f64) {
        let metric = metric.into();
        match self.values.iter_mut().find(|v| v.metric == metric) {
            Some(old) => {
                old.layer = layer;
                old.value = value;
            }
            None => self.values.push(MetricValue { metric, layer, value }),
        }
    }

    /// Checks what every path requires of a record (the rules of
    /// [`Observation::check`] for each value), plus: at least one value, a
    /// metric at most once.
    pub fn check(&self) -> Result<(), &'static str> {
        crate::check_id(&self.id)?;
        crate::check_at(self.at)?;
        crate::check_dimensions(&self.dimensions)?;
        if self.values.is_empty() {
            return Err("a record needs at least one metric value");
        }
        for v in &self.values {
            crate::check_metric(&v.metric)?;
            crate::check_value(v.value)?;
        }
        if crate::has_twice(self.values.iter().map(|v| v.metric.as_str())) {
            return Err("a metric appears twice in one record");
        }
        Ok(())
    }

    /// The value of a metric, if the record has it.
    pub fn metric(&self, metric: &str) -> Option<f64> {
        self.values.iter().find(|v| v.metric == metric).map(|v| v.value)
    }

    /// The value of a dimension, if set.
    pub fn dimension(&self, key: &str) -> Option<&str> {
        self.dimensions.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The dimensions as text pairs (as an [`Observation`] holds them).
    pub fn text_dimensions(&self) -> Vec<(String, String)> {
        self.dimensions
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// One observation per value, as the store keeps them.
    pub fn observations(&self) -> Vec<Observation> {
        self.values
            .iter()
            .map(|v| Observation {
                id: self.id.clone(),
                metric: v.metric.to_string(),
                layer: v.layer,
                value: v.value,
                at: self.at,
                dimensions: self.text_dimensions(),
            })
            .collect()
    }

    /// Observations grouped into records: consecutive observations with the
    /// same id, time and dimensions become one record (how a contract 0.1
    /// connector, which sends one observation per metric, is read).
    pub fn group(observations: Vec<Observation>) -> Vec<Record> {
        let mut records: Vec<Record> = Vec::new();
        for o in observations {
            match records.last_mut() {
                // A metric sent twice keeps its last value, as the store would.
                Some(last)
                    if last.id == o.id
                        && last.at == o.at
                        && last.dimensions.len() == o.dimensions.len()
                        && last
                            .dimensions
                            .iter()
                            .zip(&o.dimensions)
                            .all(|((a, b), (c, d))| a == c && b == d) =>
                {
                    last.push(o.metric, o.layer, o.value)
                }
                _ => records.push(Record {
                    id: o.id,
                    at: o.at,
                    dimensions: o
                        .dimensions
                        .into_iter()
                        .map(|(k, v)| (Name::from(k), Name::from(v)))
                        .collect(),
                    values: vec![MetricValue {
                        metric: o.metric.into(),
                        layer: o.layer,
                        value: o.value,
                    }],
                }),
            }
        }
        records
    }
}

/// Values that no longer count: a reopened or cancelled ticket, a cancelled
/// SLA, a response deleted at the source. Retracting what is not stored
/// changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Retraction {
    /// The source record's id, as it was sent.
    pub id: String,
    /// The metrics to retract; empty means the whole record: every value
    /// stored for this id from this connector instance, whatever its metric.
    pub metrics: Vec<String>,
}

impl Retraction {
    /// Retracts every metric of record `id`.
    pub fn record(id: impl Into<String>) -> Self {
        Retraction {
            id: id.into(),
            metrics: Vec::new(),
        }
    }

    /// Checks the id and metric names as for a record.
    pub fn check(&self) -> Result<(), &'static str> {
        crate::check_id(&self.id)?;
        self.metrics.iter().try_for_each(|m| crate::check_metric(m))
    }

    /// Retracts only `metrics` of record `id`.
    pub fn metrics<M: Into<String>>(id: impl Into<String>, metrics: impl IntoIterator<Item = M>) -> Self {
        Retraction {
            id: id.into(),
            metrics: metrics.into_iter().map(Into::into).collect(),
        }
    }
}

/// A span of source time: unix ms UTC, `start` inclusive, `end` exclusive.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Span {
    /// First millisecond of the span.
    pub start: i64,
    /// First millisecond after it.
    pub end: i64,
}

impl Span {
    /// The span `[start, end)`.
    pub fn new(start: i64, end: i64) -> Self {
        Span { start, end }
    }

    /// Whether the two spans share at least one millisecond.
    pub fn overlaps(&self, other: &Span) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Whether `other` lies entirely inside this span.
    pub fn contains(&self, other: &Span) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    /// Checks the span is not empty and lies within the times an observation
    /// may carry.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.start >= self.end {
            return Err("a span must end after it starts");
        }
        if self.start < crate::EARLIEST_AT || self.end > crate::LATEST_AT + 1 {
            return Err("a span must lie between 1900 and 9999");
        }
        Ok(())
    }
}

/// A span whose data the connector knows it delivered only in part.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Gap {
    /// The span of source time affected.
    pub span: Span,
    /// Why, in one sentence for the operator.
    pub reason: String,
}

/// What one connector step changes in the store, applied in one transaction
/// in this order: records, retractions (a key both sent and retracted ends
/// retracted), partial, complete.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Changes {
    /// Records read.
    pub records: Vec<Record>,
    /// Records or metrics that no longer count.
    pub retractions: Vec<Retraction>,
    /// Spans known to be incomplete after this step.
    pub partial: Vec<Gap>,
    /// Spans now delivered in full: earlier gaps inside them close.
    pub complete: Vec<Span>,
}

impl Changes {
    /// Changes holding only `records`.
    pub fn records(records: Vec<Record>) -> Self {
        Changes {
            records,
            ..Changes::default()
        }
    }

    /// Whether the step changes nothing at all.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.retractions.is_empty() && self.partial.is_empty() && self.complete.is_empty()
    }

    /// Number of metric values in the records.
    pub fn value_count(&self) -> usize {
        self.records.iter().map(|r| r.values.len()).sum()
    }

    /// The records as one observation per value, in order.
    pub fn observations(&self) -> Vec<Observation> {
        self.records.iter().flat_map(Record::observations).collect()
    }
}

//! Table API records to source records and retractions.
//!
//! Every field arrives as a string (`"3"`, `"true"`, `"2026-10-03 14:22:09"`,
//! `""` for empty). A field the mapping needs that does not parse is a
//! [`PluginError::BadData`] naming the table, the record and the field; a
//! dimension whose value is empty is left out. Dimensions read through
//! references are resolved as [`crate::reference`] says: never dropped.
//!
//! Each row says what counts now ([`Mapped`]): a record with its values, or
//! a retraction of whatever the same row said before. A row that stopped
//! counting (a reopened or cancelled incident, a reopened requested item, a
//! cancelled SLA, an SLA put back to running by an SLA repair) retracts it;
//! retracting what was never stored changes nothing.

use crate::config::Table;
use crate::cursor::Watermark;
use crate::fields::Fields;
use crate::reference::{self, Kept, Names, Walk};
use crate::time::parse_glide;
use std::borrow::Cow;
use xla_sdk::{Layer, PluginError, Record, Retraction};

const MILLIS_PER_HOUR: f64 = 3_600_000.0;

/// What one row counts for now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mapped {
    /// The values the row gives, if it counts.
    pub record: Option<Record>,
    /// What it said before and no longer says: the whole record when it
    /// stopped counting, or single metrics it no longer gives.
    pub retraction: Option<Retraction>,
}

impl Mapped {
    fn record(record: Record) -> Mapped {
        Mapped {
            record: Some(record),
            retraction: None,
        }
    }

    fn retract(id: String) -> Mapped {
        Mapped {
            record: None,
            retraction: Some(Retraction::record(id)),
        }
    }
}

/// What a row's references resolve against, and where kept sys_ids are counted.
pub struct Resolver<'n> {
    /// Names read from referenced tables.
    pub names: &'n Names,
    /// Sys_ids kept as dimension values.
    pub kept: Kept,
}

impl<'n> Resolver<'n> {
    /// A resolver over `names`.
    pub fn new(names: &'n Names) -> Self {
        Resolver {
            names,
            kept: Kept::default(),
        }
    }
}

/// The stage semantics of a `task_sla` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaState {
    /// Stopped in time (`completed`, not breached).
    Met,
    /// Breached: final in every stage but `cancelled` (a running SLA past its
    /// planned end cannot un-breach; `breached` is the legacy stage).
    Breached,
    /// Running or paused, not breached yet: no outcome.
    Pending,
    /// Cancelled (the ticket's priority changed, the SLA no longer applies).
    Cancelled,
}

impl SlaState {
    /// From `stage` and `has_breached`.
    pub fn of(stage: &str, has_breached: bool) -> SlaState {
        match stage {
            "cancelled" => SlaState::Cancelled,
            _ if has_breached => SlaState::Breached,
            "breached" => SlaState::Breached,
            "completed" => SlaState::Met,
            // in_progress, paused, and any stage a later release adds.
            _ => SlaState::Pending,
        }
    }
}

/// One record of a table, as the Table API returned it.
pub struct Row<'r, 'a> {
    table: Table,
    fields: &'r Fields<'a>,
}

impl<'r, 'a> Row<'r, 'a> {
    /// Wraps a record of `table`.
    pub fn new(table: Table, fields: &'r Fields<'a>) -> Self {
        Row { table, fields }
    }

    /// A field's value as text; `""` when missing or null.
    ///
    /// Besides the bare strings the connector asks for, this reads the shapes
    /// of saved exports: `{"value": ..}` (reference links, `display_value=all`)
    /// and non-string scalars (see [`Fields::get`]).
    pub fn text(&self, field: &str) -> Cow<'r, str> {
        Cow::Borrowed(self.str(field))
    }

    /// [`Row::text`] as a plain borrow.
    fn str(&self, field: &str) -> &'r str {
        self.fields.get(field).map_or("", |value| value.as_ref())
    }

    /// How messages name the record: its number, else its sys_id.
    pub fn label(&self) -> String {
        let number = self.text("number");
        let name = if number.is_empty() { self.text("sys_id") } else { number };
        format!("{} record `{name}`", self.table)
    }

    fn bad(&self, field: &str, why: impl std::fmt::Display) -> PluginError {
        PluginError::BadData(format!("{}: field `{field}` {why}", self.label()))
    }

    fn time(&self, field: &str) -> Result<i64, PluginError> {
        self.optional_time(field)?
            .ok_or_else(|| self.bad(field, "is empty; a date-time like `2026-10-03 14:22:09` is needed"))
    }

    fn optional_time(&self, field: &str) -> Result<Option<i64>, PluginError> {
        let text = self.text(field);
        if text.is_empty() {
            return Ok(None);
        }
        parse_glide(&text)
            .map(Some)
            .ok_or_else(|| self.bad(field, format!("`{text}` is not a date-time like `2026-10-03 14:22:09`")))
    }

    fn count(&self, field: &str) -> Result<u32, PluginError> {
        let text = self.text(field);
        text.trim()
            .parse()
            .map_err(|_| self.bad(field, format!("`{text}` is not a whole number")))
    }

    fn flag(&self, field: &str) -> Result<bool, PluginError> {
        match &*self.text(field) {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(self.bad(field, format!("`{other}` is neither `true` nor `false`"))),
        }
    }

    /// `priority` `"1"`..`"5"` as `P1`..`P5`; empty stays empty.
    fn priority(&self) -> Result<String, PluginError> {
        let text = self.text("priority");
        if text.is_empty() {
            return Ok(String::new());
        }
        let n = self.count("priority")?;
        Ok(format!("P{n}"))
    }

    /// A dimension read through a reference: its name, else the sys_id.
    fn walked(&self, walk: &Walk, resolver: &mut Resolver<'_>) -> String {
        reference::value(self.fields, walk, resolver.names, self.table.name(), &mut resolver.kept)
            .map(Cow::into_owned)
            .unwrap_or_default()
    }

    /// The record's place in the keyset: (`sys_updated_on`, `sys_id`),
    /// checked as [`Watermark::checked`] does and borrowed from the page.
    pub fn keyset(&self) -> Result<(&'r str, &'r str), PluginError> {
        let (ts, sys_id) = (self.str("sys_updated_on"), self.str("sys_id"));
        Watermark::check(ts, sys_id).map_err(|why| PluginError::BadData(format!("{}: {why}", self.label())))?;
        Ok((ts, sys_id))
    }

    /// What the row counts for now, in the metric vocabulary (`docs/metrics.md`).
    pub fn map(&self, resolver: &mut Resolver<'_>) -> Result<Mapped, PluginError> {
        match self.table {
            Table::Incident => self.incident(resolver),
            Table::ScReqItem => self.requested_item(resolver),
            Table::TaskSla => self.task_sla(resolver),
        }
    }

    fn id(&self) -> Result<String, PluginError> {
        let sys_id = self.text("sys_id");
        if sys_id.is_empty() {
            return Err(self.bad("sys_id", "is empty"));
        }
        Ok(sys_id.into_owned())
    }

    /// Resolved (6) or closed (7) incidents with a `resolved_at`. Any other
    /// incident (open again after a reopen, canceled (8), closed without a
    /// resolution) retracts the resolution it may have given before.
    fn incident(&self, resolver: &mut Resolver<'_>) -> Result<Mapped, PluginError> {
        let state = self.count("state")?;
        let resolved = match state {
            6 | 7 => self.optional_time("resolved_at")?,
            _ => None,
        };
        let Some(resolved) = resolved else {
            return Ok(Mapped::retract(self.id()?));
        };
        let opened = self.time("opened_at")?;
        let reassignments = self.count("reassignment_count")?;
        let reopens = self.count("reopen_count")?;
        let record = Record::new(self.id()?, resolved)
            .dim("ticket", self.text("number"))
            .dim("ticket_type", "incident")
            .dim("service", self.walked(&reference::BUSINESS_SERVICE, resolver))
            .dim("assignment_group", self.walked(&reference::ASSIGNMENT_GROUP, resolver))
            .dim("category", self.text("category"))
            .dim("priority", self.priority()?)
            .dim("channel", self.text("contact_type"));
        let record = self
            .with_resolution_hours(record, opened, resolved)
            .value("reassignment_count", Layer::Operational, f64::from(reassignments))
            .value("reopened", Layer::Operational, bool_value(reopens > 0))
            .value(
                "first_contact_resolution",
                Layer::Operational,
                bool_value(reassignments == 0 && reopens == 0),
            )
            .value("ticket_resolved", Layer::Operational, 1.0);
        Ok(self.finish(record))
    }

    /// Requested items closed complete, with a `closed_at`. One closed
    /// without being fulfilled (state 4 "Closed Incomplete", a cancelled or
    /// withdrawn request, or 7 "Closed Skipped") is no resolution, as a
    /// cancelled incident is none, and one without a `closed_at` (open, or
    /// reopened): each retracts what it gave before.
    fn requested_item(&self, resolver: &mut Resolver<'_>) -> Result<Mapped, PluginError> {
        let unfulfilled = !self.text("state").is_empty() && matches!(self.count("state")?, 4 | 7);
        let closed = self.optional_time("closed_at")?.filter(|_| !unfulfilled);
        let Some(closed) = closed else {
            return Ok(Mapped::retract(self.id()?));
        };
        let opened = self.time("opened_at")?;
        let reassignments = self.count("reassignment_count")?;
        let record = Record::new(self.id()?, closed)
            .dim("ticket", self.text("number"))
            .dim("ticket_type", "request")
            .dim("category", self.walked(&reference::CAT_ITEM, resolver))
            .dim("assignment_group", self.walked(&reference::ASSIGNMENT_GROUP, resolver));
        let record = self
            .with_resolution_hours(record, opened, closed)
            .value("reassignment_count", Layer::Operational, f64::from(reassignments))
            .value("ticket_resolved", Layer::Operational, 1.0);
        Ok(self.finish(record))
    }

    /// A task SLA by [`SlaState`]: met or breached rows give `sla_breached`
    /// (and, once stopped, `sla_business_percentage`); pending and cancelled
    /// rows retract what they gave before.
    fn task_sla(&self, resolver: &mut Resolver<'_>) -> Result<Mapped, PluginError> {
        let stage = self.text("stage");
        let state = SlaState::of(&stage, self.flag("has_breached")?);
        let breached = match state {
            SlaState::Met => false,
            SlaState::Breached => true,
            SlaState::Pending | SlaState::Cancelled => return Ok(Mapped::retract(self.id()?)),
        };
        // Stopped: when it stopped. Still running but breached: when it
        // breached, its planned end.
        let end = self.optional_time("end_time")?;
        let at = match end {
            Some(at) => at,
            None => self.optional_time("planned_end_time")?.ok_or_else(|| {
                self.bad(
                    "end_time",
                    "and `planned_end_time` are both empty; the SLA has no end to date it by",
                )
            })?,
        };
        let ticket_type = match self.walked(&reference::TASK_CLASS, resolver).as_str() {
            "incident" => "incident",
            "sc_req_item" => "request",
            _ => "",
        };
        let mut record = Record::new(self.id()?, at)
            .dim("ticket", self.walked(&reference::TASK_NUMBER, resolver))
            .dim("ticket_type", ticket_type)
            .dim("sla", self.walked(&reference::SLA_NAME, resolver))
            .value("sla_breached", Layer::Operational, bool_value(breached));
        let percentage = self.text("business_percentage");
        // A running SLA's share still grows: only a stopped one's is final.
        let running = end.is_none() && matches!(&*stage, "in_progress" | "paused");
        if !running && !percentage.is_empty() {
            let value = percentage
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| self.bad("business_percentage", format!("`{percentage}` is not a number")))?;
            record.push("sla_business_percentage", Layer::Operational, value);
        }
        Ok(Mapped::record(record))
    }

    /// Adds `resolution_hours`, unless the source says the ticket was
    /// resolved before it was opened (seen after imports and clock fixes):
    /// one record's impossible duration should neither stop the sync nor
    /// skew the mean. [`Row::finish`] then retracts a duration stored before.
    fn with_resolution_hours(&self, record: Record, opened: i64, resolved: i64) -> Record {
        if resolved < opened {
            xla_sdk::log::warn(&format!(
                "{}: resolved before it was opened; no resolution_hours emitted",
                self.label()
            ));
            return record;
        }
        record.value(
            "resolution_hours",
            Layer::Operational,
            (resolved - opened) as f64 / MILLIS_PER_HOUR,
        )
    }

    /// A ticket record, retracting a `resolution_hours` it no longer gives.
    fn finish(&self, record: Record) -> Mapped {
        let retraction = record
            .metric("resolution_hours")
            .is_none()
            .then(|| Retraction::metrics(record.id.clone(), ["resolution_hours"]));
        Mapped {
            record: Some(record),
            retraction,
        }
    }
}

fn bool_value(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(table: Table, value: serde_json::Value) -> Result<Mapped, PluginError> {
        let text = value.to_string();
        let fields: Fields<'_> = serde_json::from_str(&text).expect("a record is an object");
        let names = Names::default();
        Row::new(table, &fields).map(&mut Resolver::new(&names))
    }

    fn record(table: Table, value: serde_json::Value) -> Record {
        map(table, value).expect("maps").record.expect("a record")
    }

    fn retracted(table: Table, value: serde_json::Value) -> bool {
        let mapped = map(table, value).expect("maps");
        mapped.record.is_none() && mapped.retraction.is_some_and(|r| r.metrics.is_empty())
    }

    fn resolved_incident() -> serde_json::Value {
        json!({
            "sys_id": "a1", "sys_updated_on": "2026-10-03 15:00:00", "number": "INC0010001",
            "state": "6", "opened_at": "2026-10-03 08:00:00", "resolved_at": "2026-10-03 14:30:00",
            "reassignment_count": "0", "reopen_count": "0", "category": "network", "priority": "2",
            "contact_type": "", "business_service.name": "Email", "assignment_group.name": "Service Desk"
        })
    }

    fn sla(stage: &str, has_breached: bool, end_time: &str) -> serde_json::Value {
        json!({
            "sys_id": "s1", "sys_updated_on": "2026-10-03 15:00:00", "stage": stage,
            "has_breached": has_breached.to_string(), "business_percentage": "150.0", "end_time": end_time,
            "planned_end_time": "2026-10-02 09:00:00", "task.number": "INC0070044",
            "task.sys_class_name": "incident", "sla.name": "Priority 3 resolution (3 day)"
        })
    }

    #[test]
    fn resolved_incident_is_one_record_with_five_values_at_resolution() {
        let r = record(Table::Incident, resolved_incident());
        let metrics: Vec<(&str, f64)> = r.values.iter().map(|v| (v.metric.as_str(), v.value)).collect();
        assert_eq!(
            metrics,
            [
                ("resolution_hours", 6.5),
                ("reassignment_count", 0.0),
                ("reopened", 0.0),
                ("first_contact_resolution", 1.0),
                ("ticket_resolved", 1.0)
            ]
        );
        assert_eq!(r.id, "a1");
        assert_eq!(r.at, crate::time::parse_glide("2026-10-03 14:30:00").expect("date"));
        assert_eq!(r.dimension("priority"), Some("P2"));
        assert_eq!(r.dimension("service"), Some("Email"));
        assert_eq!(r.dimension("channel"), None, "empty dimensions are left out");
        assert!(r.values.iter().all(|v| v.layer == Layer::Operational));
    }

    /// Issue 14: a reopened or cancelled incident whose resolution was stored
    /// takes it back (today it emitted nothing, leaving it stored).
    #[test]
    fn open_reopened_and_canceled_incidents_retract_their_resolution() {
        for state in ["1", "2", "3", "8"] {
            let mut row = resolved_incident();
            row["state"] = json!(state);
            assert!(retracted(Table::Incident, row), "state {state}");
        }
        let mut closed_without_resolution = resolved_incident();
        closed_without_resolution["state"] = json!("7");
        closed_without_resolution["resolved_at"] = json!("");
        assert!(retracted(Table::Incident, closed_without_resolution));
        let mut open_item = json!({"sys_id": "r1", "number": "RITM1", "opened_at": "2026-10-03 08:00:00",
            "closed_at": "", "reassignment_count": "0"});
        assert!(retracted(Table::ScReqItem, open_item.take()));
    }

    /// A requested item closed without being fulfilled (4 "Closed
    /// Incomplete": cancelled or withdrawn; 7 "Closed Skipped") is no
    /// resolution; one closed complete (3) is, and so is one whose export
    /// does not say its state.
    #[test]
    fn requested_items_closed_unfulfilled_retract_their_resolution() {
        let item = |state: &str| {
            json!({"sys_id": "r1", "number": "RITM1", "state": state, "opened_at": "2026-10-03 08:00:00",
                "closed_at": "2026-10-03 12:00:00", "reassignment_count": "0"})
        };
        for state in ["4", "7"] {
            assert!(retracted(Table::ScReqItem, item(state)), "state {state}");
        }
        for state in ["3", ""] {
            let closed = record(Table::ScReqItem, item(state));
            assert_eq!(closed.metric("resolution_hours"), Some(4.0), "state {state:?}");
        }
    }

    #[test]
    fn resolved_before_opened_skips_and_retracts_only_the_duration() {
        let mut row = resolved_incident();
        row["resolved_at"] = json!("2026-10-02 00:00:00");
        let mapped = map(Table::Incident, row).expect("maps");
        let r = mapped.record.expect("a record");
        assert_eq!(r.metric("resolution_hours"), None);
        assert_eq!(r.values.len(), 4);
        assert_eq!(
            mapped.retraction,
            Some(Retraction::metrics("a1", ["resolution_hours"])),
            "a duration stored before is taken back"
        );
    }

    #[test]
    fn unparsable_fields_name_table_record_and_field() {
        let cases = [
            ("reopen_count", json!(""), "reopen_count"),
            ("priority", json!("high"), "priority"),
            ("state", json!("Resolved"), "state"),
            ("opened_at", json!("03/10/2026 08:00"), "opened_at"),
        ];
        for (field, value, named) in cases {
            let mut row = resolved_incident();
            row[field] = value;
            let Err(PluginError::BadData(m)) = map(Table::Incident, row) else {
                panic!("{field}: expected bad data")
            };
            assert!(
                m.contains("incident record `INC0010001`") && m.contains(&format!("`{named}`")),
                "{m}"
            );
        }
    }

    /// field case 07-servicenow-task-sla-stages.json: breached is final in
    /// any stage, paused counts by its has_breached, cancelled is taken back.
    #[test]
    fn sla_stage_semantics() {
        let running_breached = record(Table::TaskSla, sla("in_progress", true, ""));
        assert_eq!(running_breached.metric("sla_breached"), Some(1.0), "breached now");
        assert_eq!(
            running_breached.at,
            crate::time::parse_glide("2026-10-02 09:00:00").expect("date"),
            "dated when it breached"
        );
        assert_eq!(
            running_breached.metric("sla_business_percentage"),
            None,
            "a running share is not final"
        );
        assert_eq!(
            record(Table::TaskSla, sla("paused", true, "")).metric("sla_breached"),
            Some(1.0)
        );
        assert!(retracted(Table::TaskSla, sla("paused", false, "")), "pending");
        assert!(retracted(Table::TaskSla, sla("in_progress", false, "")), "pending");
        assert!(retracted(
            Table::TaskSla,
            sla("cancelled", false, "2026-10-03 09:10:00")
        ));
        assert!(retracted(Table::TaskSla, sla("cancelled", true, "2026-10-03 09:10:00")));
        let legacy = record(Table::TaskSla, sla("breached", true, "2026-09-28 17:00:00"));
        assert_eq!(legacy.metric("sla_breached"), Some(1.0));
        assert_eq!(legacy.metric("sla_business_percentage"), Some(150.0));
        let met = record(Table::TaskSla, sla("completed", false, "2026-10-04 00:00:00"));
        assert_eq!(met.metric("sla_breached"), Some(0.0));
        let late = record(Table::TaskSla, sla("completed", true, "2026-10-03 10:34:00"));
        assert_eq!(late.metric("sla_breached"), Some(1.0));
    }

    #[test]
    fn sla_dates_by_planned_end_when_end_is_empty() {
        let row = json!({
            "sys_id": "s1", "sys_updated_on": "2026-10-03 15:00:00", "stage": "breached",
            "has_breached": "true", "business_percentage": "", "end_time": "",
            "planned_end_time": "2026-10-03 12:00:00", "task.number": "CHG0000001",
            "task.sys_class_name": "change_request", "sla.name": "Change 8h"
        });
        let r = record(Table::TaskSla, row);
        assert_eq!(r.values.len(), 1, "no percentage when it is empty");
        assert_eq!(r.metric("sla_breached"), Some(1.0));
        assert_eq!(r.at, crate::time::parse_glide("2026-10-03 12:00:00").expect("date"));
        assert_eq!(
            r.dimension("ticket_type"),
            None,
            "only incidents and requests are typed"
        );
    }

    #[test]
    fn reference_objects_of_saved_exports_read_as_their_value() {
        let mut row = resolved_incident();
        row["assignment_group.name"] = json!({"display_value": "Network", "value": "Network"});
        row["reassignment_count"] = json!(2);
        let r = record(Table::Incident, row);
        assert_eq!(r.dimension("assignment_group"), Some("Network"));
        assert_eq!(r.metric("reassignment_count"), Some(2.0));
    }
}

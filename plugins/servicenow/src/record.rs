//! Table API records to observations.
//!
//! Every field arrives as a string (`"3"`, `"true"`, `"2026-10-03 14:22:09"`,
//! `""` for empty). A field the mapping needs that does not parse is a
//! [`PluginError::BadData`] naming the table, the record and the field; a
//! dimension whose value is empty is left out.

use crate::config::Table;
use crate::cursor::Watermark;
use crate::fields::Fields;
use crate::time::parse_glide;
use std::borrow::Cow;
use xla_sdk::{Layer, Observation, PluginError};

const MILLIS_PER_HOUR: f64 = 3_600_000.0;

/// One record of a table, as the Table API returned it.
pub struct Record<'r, 'a> {
    table: Table,
    fields: &'r Fields<'a>,
}

impl<'r, 'a> Record<'r, 'a> {
    /// Wraps a record of `table`.
    pub fn new(table: Table, fields: &'r Fields<'a>) -> Self {
        Record { table, fields }
    }

    /// A field's value as text; `""` when missing or null.
    ///
    /// Besides the bare strings the connector asks for, this reads the shapes
    /// of saved exports: `{"value": ..}` (reference links, `display_value=all`)
    /// and non-string scalars (see [`Fields::get`]).
    pub fn text(&self, field: &str) -> Cow<'r, str> {
        self.fields
            .get(field)
            .map_or(Cow::Borrowed(""), |value| Cow::Borrowed(value.as_ref()))
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

    /// The record's place in the keyset: (`sys_updated_on`, `sys_id`).
    pub fn watermark(&self) -> Result<Watermark, PluginError> {
        Watermark::checked(&self.text("sys_updated_on"), &self.text("sys_id"))
            .map_err(|why| PluginError::BadData(format!("{}: {why}", self.label())))
    }

    /// What the record says, in the metric vocabulary (`docs/metrics.md`).
    pub fn observations(&self) -> Result<Vec<Observation>, PluginError> {
        match self.table {
            Table::Incident => self.incident(),
            Table::ScReqItem => self.requested_item(),
            Table::TaskSla => self.task_sla(),
        }
    }

    fn id(&self) -> Result<String, PluginError> {
        let sys_id = self.text("sys_id");
        if sys_id.is_empty() {
            return Err(self.bad("sys_id", "is empty"));
        }
        Ok(sys_id.into_owned())
    }

    /// Resolved (6) or closed (7) incidents with a `resolved_at`; open and
    /// canceled (8) incidents emit nothing: they are not resolutions.
    fn incident(&self) -> Result<Vec<Observation>, PluginError> {
        let state = self.count("state")?;
        if !matches!(state, 6 | 7) {
            return Ok(Vec::new());
        }
        let Some(resolved) = self.optional_time("resolved_at")? else {
            return Ok(Vec::new());
        };
        let opened = self.time("opened_at")?;
        let reassignments = self.count("reassignment_count")?;
        let reopens = self.count("reopen_count")?;
        let dims = [
            ("ticket", self.text("number").into_owned()),
            ("ticket_type", "incident".to_string()),
            ("service", self.text("business_service.name").into_owned()),
            ("assignment_group", self.text("assignment_group.name").into_owned()),
            ("category", self.text("category").into_owned()),
            ("priority", self.priority()?),
            ("channel", self.text("contact_type").into_owned()),
        ];
        let mut values = self.resolution_hours(opened, resolved);
        values.extend([
            ("reassignment_count", f64::from(reassignments)),
            ("reopened", bool_value(reopens > 0)),
            (
                "first_contact_resolution",
                bool_value(reassignments == 0 && reopens == 0),
            ),
            ("ticket_resolved", 1.0),
        ]);
        self.emit(&values, resolved, &dims)
    }

    /// Requested items with a `closed_at`; open ones emit nothing.
    fn requested_item(&self) -> Result<Vec<Observation>, PluginError> {
        let Some(closed) = self.optional_time("closed_at")? else {
            return Ok(Vec::new());
        };
        let opened = self.time("opened_at")?;
        let reassignments = self.count("reassignment_count")?;
        let dims = [
            ("ticket", self.text("number").into_owned()),
            ("ticket_type", "request".to_string()),
            ("category", self.text("cat_item.name").into_owned()),
            ("assignment_group", self.text("assignment_group.name").into_owned()),
        ];
        let mut values = self.resolution_hours(opened, closed);
        values.extend([
            ("reassignment_count", f64::from(reassignments)),
            ("ticket_resolved", 1.0),
        ]);
        self.emit(&values, closed, &dims)
    }

    /// SLAs that stopped (`completed` or `breached`); `in_progress`,
    /// `paused`, `cancelled` and any other stage emit nothing.
    fn task_sla(&self) -> Result<Vec<Observation>, PluginError> {
        if !matches!(&*self.text("stage"), "completed" | "breached") {
            return Ok(Vec::new());
        }
        let at = match self.optional_time("end_time")? {
            Some(at) => at,
            None => self.optional_time("planned_end_time")?.ok_or_else(|| {
                self.bad(
                    "end_time",
                    "and `planned_end_time` are both empty; the SLA has no end to date it by",
                )
            })?,
        };
        let ticket_type = match &*self.text("task.sys_class_name") {
            "incident" => "incident",
            "sc_req_item" => "request",
            _ => "",
        };
        let dims = [
            ("ticket", self.text("task.number").into_owned()),
            ("ticket_type", ticket_type.to_string()),
            ("sla", self.text("sla.name").into_owned()),
        ];
        let mut values = vec![("sla_breached", bool_value(self.flag("has_breached")?))];
        let percentage = self.text("business_percentage");
        if !percentage.is_empty() {
            let value = percentage
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| self.bad("business_percentage", format!("`{percentage}` is not a number")))?;
            values.push(("sla_business_percentage", value));
        }
        self.emit(&values, at, &dims)
    }

    /// `resolution_hours`, unless the source says the ticket was resolved
    /// before it was opened (seen after imports and clock fixes): one record's
    /// impossible duration should neither stop the sync nor skew the mean.
    fn resolution_hours(&self, opened: i64, resolved: i64) -> Vec<(&'static str, f64)> {
        if resolved < opened {
            xla_sdk::log::warn(&format!(
                "{}: resolved before it was opened; no resolution_hours emitted",
                self.label()
            ));
            return Vec::new();
        }
        vec![("resolution_hours", (resolved - opened) as f64 / MILLIS_PER_HOUR)]
    }

    fn emit(&self, values: &[(&str, f64)], at: i64, dims: &[(&str, String)]) -> Result<Vec<Observation>, PluginError> {
        let id = self.id()?;
        Ok(values
            .iter()
            .map(|&(metric, value)| {
                dims.iter().fold(
                    Observation::new(id.clone(), metric, Layer::Operational, value, at),
                    |o, (key, dim)| o.dim(*key, dim.as_str()),
                )
            })
            .collect())
    }
}

fn bool_value(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(table: Table, value: serde_json::Value) -> Result<Vec<Observation>, PluginError> {
        let text = value.to_string();
        let fields: Fields<'_> = serde_json::from_str(&text).expect("a record is an object");
        Record::new(table, &fields).observations()
    }

    fn resolved_incident() -> serde_json::Value {
        json!({
            "sys_id": "a1", "sys_updated_on": "2026-10-03 15:00:00", "number": "INC0010001",
            "state": "6", "opened_at": "2026-10-03 08:00:00", "resolved_at": "2026-10-03 14:30:00",
            "reassignment_count": "0", "reopen_count": "0", "category": "network", "priority": "2",
            "contact_type": "", "business_service.name": "Email", "assignment_group.name": "Service Desk"
        })
    }

    #[test]
    fn resolved_incident_emits_five_metrics_at_resolution() {
        let obs = map(Table::Incident, resolved_incident()).expect("maps");
        let metrics: Vec<(&str, f64)> = obs.iter().map(|o| (o.metric.as_str(), o.value)).collect();
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
        let first = &obs[0];
        assert_eq!(first.id, "a1");
        assert_eq!(first.at, crate::time::parse_glide("2026-10-03 14:30:00").expect("date"));
        assert_eq!(first.dimension("priority"), Some("P2"));
        assert_eq!(first.dimension("service"), Some("Email"));
        assert_eq!(first.dimension("channel"), None, "empty dimensions are left out");
    }

    #[test]
    fn open_and_canceled_incidents_emit_nothing() {
        for state in ["1", "2", "3", "8"] {
            let mut record = resolved_incident();
            record["state"] = json!(state);
            assert_eq!(map(Table::Incident, record).expect("maps"), [], "state {state}");
        }
        let mut closed_without_resolution = resolved_incident();
        closed_without_resolution["state"] = json!("7");
        closed_without_resolution["resolved_at"] = json!("");
        assert_eq!(map(Table::Incident, closed_without_resolution).expect("maps"), []);
    }

    #[test]
    fn resolved_before_opened_skips_only_the_duration() {
        let mut record = resolved_incident();
        record["resolved_at"] = json!("2026-10-02 00:00:00");
        let obs = map(Table::Incident, record).expect("maps");
        assert!(obs.iter().all(|o| o.metric != "resolution_hours"));
        assert_eq!(obs.len(), 4);
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
            let mut record = resolved_incident();
            record[field] = value;
            let Err(PluginError::BadData(m)) = map(Table::Incident, record) else {
                panic!("{field}: expected bad data")
            };
            assert!(
                m.contains("incident record `INC0010001`") && m.contains(&format!("`{named}`")),
                "{m}"
            );
        }
    }

    #[test]
    fn sla_dates_by_planned_end_when_end_is_empty() {
        let record = json!({
            "sys_id": "s1", "sys_updated_on": "2026-10-03 15:00:00", "stage": "breached",
            "has_breached": "true", "business_percentage": "", "end_time": "",
            "planned_end_time": "2026-10-03 12:00:00", "task.number": "CHG0000001",
            "task.sys_class_name": "change_request", "sla.name": "Change 8h"
        });
        let obs = map(Table::TaskSla, record).expect("maps");
        assert_eq!(obs.len(), 1, "no percentage when it is empty");
        assert_eq!(obs[0].value, 1.0);
        assert_eq!(
            obs[0].at,
            crate::time::parse_glide("2026-10-03 12:00:00").expect("date")
        );
        assert_eq!(
            obs[0].dimension("ticket_type"),
            None,
            "only incidents and requests are typed"
        );
    }

    #[test]
    fn reference_objects_of_saved_exports_read_as_their_value() {
        let mut record = resolved_incident();
        record["assignment_group.name"] = json!({"display_value": "Network", "value": "Network"});
        record["reassignment_count"] = json!(2);
        let obs = map(Table::Incident, record).expect("maps");
        assert_eq!(obs[0].dimension("assignment_group"), Some("Network"));
        assert_eq!(obs[1].value, 2.0);
    }
}

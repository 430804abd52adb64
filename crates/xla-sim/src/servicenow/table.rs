//! The served tables over an [`Org`]: field names, typed values, reference
//! fields with their display values, dot-walking, and the wire rendering
//! (`sysparm_display_value`, `sysparm_exclude_reference_link`).

use super::query::Val;
use crate::org::{Org, TicketKind};
use std::borrow::Cow;

/// A table the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Table {
    Incident,
    ScReqItem,
    TaskSla,
    SysUserGroup,
    CmdbCiService,
    SysUser,
    ContractSla,
    /// The parent table of incidents and requested items: incidents first,
    /// then requested items (what a `task_sla.task` points to).
    Task,
}

const INCIDENT_FIELDS: &[&str] = &[
    "sys_id",
    "number",
    "short_description",
    "opened_at",
    "resolved_at",
    "closed_at",
    "state",
    "active",
    "priority",
    "impact",
    "urgency",
    "assignment_group",
    "assigned_to",
    "reassignment_count",
    "reopen_count",
    "category",
    "subcategory",
    "caller_id",
    "contact_type",
    "business_service",
    "close_code",
    "made_sla",
    "sys_class_name",
    "sys_created_on",
    "sys_updated_on",
    "sys_mod_count",
];
const REQUEST_FIELDS: &[&str] = &[
    "sys_id",
    "number",
    "request",
    "cat_item",
    "requested_for",
    "stage",
    "state",
    "active",
    "priority",
    "opened_at",
    "closed_at",
    "assignment_group",
    "assigned_to",
    "reassignment_count",
    "business_service",
    "contact_type",
    "made_sla",
    "sys_class_name",
    "sys_created_on",
    "sys_updated_on",
    "sys_mod_count",
];
const TASK_SLA_FIELDS: &[&str] = &[
    "sys_id",
    "task",
    "sla",
    "stage",
    "has_breached",
    "active",
    "start_time",
    "end_time",
    "planned_end_time",
    "business_percentage",
    "percentage",
    "sys_created_on",
    "sys_updated_on",
];
const TASK_FIELDS: &[&str] = &[
    "sys_id",
    "number",
    "sys_class_name",
    "opened_at",
    "closed_at",
    "active",
    "priority",
    "assignment_group",
    "assigned_to",
    "business_service",
    "sys_created_on",
    "sys_updated_on",
];
const GROUP_FIELDS: &[&str] = &["sys_id", "name", "active"];
const SERVICE_FIELDS: &[&str] = &["sys_id", "name", "operational_status"];
const USER_FIELDS: &[&str] = &["sys_id", "user_name", "name", "email", "country", "active"];
const CONTRACT_SLA_FIELDS: &[&str] = &["sys_id", "name", "duration", "collection", "active"];

const INCIDENT_STATES: &[(i64, &str)] = &[
    (1, "New"),
    (2, "In Progress"),
    (3, "On Hold"),
    (6, "Resolved"),
    (7, "Closed"),
    (8, "Canceled"),
];
const REQUEST_STATES: &[(i64, &str)] = &[
    (1, "Open"),
    (2, "Work in Progress"),
    (3, "Closed Complete"),
    (4, "Closed Incomplete"),
    (7, "Closed Skipped"),
];
const PRIORITIES: &[(i64, &str)] = &[
    (1, "1 - Critical"),
    (2, "2 - High"),
    (3, "3 - Moderate"),
    (4, "4 - Low"),
    (5, "5 - Planning"),
];
const LEVELS: &[(i64, &str)] = &[(1, "1 - High"), (2, "2 - Medium"), (3, "3 - Low")];

impl Table {
    /// The table named in the URL.
    pub(crate) fn from_name(name: &str) -> Option<Table> {
        Some(match name {
            "incident" => Table::Incident,
            "sc_req_item" => Table::ScReqItem,
            "task_sla" => Table::TaskSla,
            "sys_user_group" => Table::SysUserGroup,
            "cmdb_ci_service" => Table::CmdbCiService,
            "sys_user" => Table::SysUser,
            "contract_sla" => Table::ContractSla,
            "task" => Table::Task,
            _ => return None,
        })
    }

    /// Default fields, in wire order.
    pub(crate) fn fields(self) -> &'static [&'static str] {
        match self {
            Table::Incident => INCIDENT_FIELDS,
            Table::ScReqItem => REQUEST_FIELDS,
            Table::TaskSla => TASK_SLA_FIELDS,
            Table::SysUserGroup => GROUP_FIELDS,
            Table::CmdbCiService => SERVICE_FIELDS,
            Table::SysUser => USER_FIELDS,
            Table::ContractSla => CONTRACT_SLA_FIELDS,
            Table::Task => TASK_FIELDS,
        }
    }

    /// Number of records.
    pub(crate) fn len(self, org: &Org) -> usize {
        match self {
            Table::Incident => org.incidents.len(),
            Table::ScReqItem => org.requests.len(),
            Table::TaskSla => org.slas.len(),
            Table::SysUserGroup => org.groups.len(),
            Table::CmdbCiService => org.services.len(),
            Table::SysUser => org.employees.len(),
            Table::ContractSla => org.sla_definitions.len(),
            Table::Task => org.incidents.len() + org.requests.len(),
        }
    }

    /// Whether records of this table fall under the API user's ACL rule.
    pub(crate) fn has_acl(self) -> bool {
        matches!(self, Table::Incident | Table::ScReqItem | Table::TaskSla | Table::Task)
    }

    /// Tables a reference field points to (a `task` points to either ticket table).
    fn targets(self, field: &str) -> &'static [Table] {
        match (self, field) {
            (Table::Incident | Table::ScReqItem | Table::Task, "assignment_group") => &[Table::SysUserGroup],
            (Table::Task, "assigned_to") => &[Table::SysUser],
            (Table::Task, "business_service") => &[Table::CmdbCiService],
            (Table::Incident, "assigned_to" | "caller_id") => &[Table::SysUser],
            (Table::ScReqItem, "assigned_to" | "requested_for") => &[Table::SysUser],
            (Table::Incident | Table::ScReqItem, "business_service") => &[Table::CmdbCiService],
            (Table::TaskSla, "task") => &[Table::Incident, Table::ScReqItem],
            (Table::TaskSla, "sla") => &[Table::ContractSla],
            _ => &[],
        }
    }

    /// Whether a (possibly dot-walked) field exists on this table.
    pub(crate) fn knows(self, path: &str) -> bool {
        let (head, rest) = match path.split_once('.') {
            Some((head, rest)) => (head, Some(rest)),
            None => (path, None),
        };
        if !self.fields().contains(&head) {
            return false;
        }
        match rest {
            None => true,
            Some(rest) => self.targets(head).iter().any(|t| t.knows(rest)),
        }
    }
}

/// Where a reference field points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reference {
    /// Table named in the link (`task` for a task_sla's task).
    pub(crate) link_table: &'static str,
    pub(crate) table: Table,
    pub(crate) index: usize,
}

/// One field of one record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cell<'a> {
    pub(crate) value: Val<'a>,
    /// Display value where it differs from the value.
    pub(crate) display: Option<Cow<'a, str>>,
    pub(crate) reference: Option<Reference>,
}

fn plain(value: Val<'_>) -> Cell<'_> {
    Cell {
        value,
        display: None,
        reference: None,
    }
}

fn text(s: &str) -> Cell<'_> {
    plain(Val::Text(Cow::Borrowed(s)))
}

fn int(n: impl Into<i64>) -> Cell<'static> {
    plain(Val::Int(n.into()))
}

fn time(ms: Option<i64>) -> Cell<'static> {
    plain(Val::Time(ms))
}

fn choice(n: u8, labels: &'static [(i64, &'static str)]) -> Cell<'static> {
    let n = i64::from(n);
    let display = labels.iter().find(|(v, _)| *v == n).map(|(_, l)| Cow::Borrowed(*l));
    Cell {
        value: Val::Int(n),
        display,
        reference: None,
    }
}

fn label(value: &'static str, display: &'static str) -> Cell<'static> {
    Cell {
        value: Val::Text(Cow::Borrowed(value)),
        display: Some(Cow::Borrowed(display)),
        reference: None,
    }
}

fn reference<'a>(org: &'a Org, link_table: &'static str, table: Table, index: Option<usize>) -> Cell<'a> {
    let Some(index) = index else {
        return text("");
    };
    let (sys_id, display): (&str, &str) = match table {
        Table::SysUserGroup => (&org.groups[index].sys_id, org.groups[index].name),
        Table::CmdbCiService => (&org.services[index].sys_id, org.services[index].name),
        Table::SysUser => (&org.employees[index].sys_id, &org.employees[index].name),
        Table::ContractSla => (&org.sla_definitions[index].sys_id, org.sla_definitions[index].name),
        Table::Incident => (&org.incidents[index].sys_id, &org.incidents[index].number),
        Table::ScReqItem => (&org.requests[index].sys_id, &org.requests[index].number),
        Table::TaskSla => (&org.slas[index].sys_id, &org.slas[index].sys_id),
        Table::Task => match task_row(org, index) {
            (Table::Incident, i) => (&org.incidents[i].sys_id, &org.incidents[i].number),
            (_, i) => (&org.requests[i].sys_id, &org.requests[i].number),
        },
    };
    Cell {
        value: Val::Text(Cow::Borrowed(sys_id)),
        display: Some(Cow::Borrowed(display)),
        reference: Some(Reference {
            link_table,
            table,
            index,
        }),
    }
}

fn contact_type(value: &'static str) -> Cell<'static> {
    let display = match value {
        "phone" => "Phone",
        "email" => "Email",
        "self-service" => "Self-service",
        "chat" => "Chat",
        "walk-in" => "Walk-in",
        "virtual_agent" => "Virtual Agent",
        other => other,
    };
    label(value, display)
}

/// A duration as the Table API shows it: a date-time after the epoch.
fn duration(ms: i64) -> Cell<'static> {
    plain(Val::Time(Some(ms)))
}

/// The ticket table and index of row `index` of `task`: incidents first,
/// then requested items.
fn task_row(org: &Org, index: usize) -> (Table, usize) {
    match index.checked_sub(org.incidents.len()) {
        Some(request) => (Table::ScReqItem, request),
        None => (Table::Incident, index),
    }
}

/// Reads one plain (not dot-walked) field.
pub(crate) fn cell<'a>(org: &'a Org, table: Table, index: usize, field: &str) -> Option<Cell<'a>> {
    match table {
        Table::Task => {
            // Only the fields `task` itself has, read from the child record.
            if !TASK_FIELDS.contains(&field) {
                return None;
            }
            let (child, index) = task_row(org, index);
            cell(org, child, index, field)
        }
        Table::Incident => incident_cell(org, index, field),
        Table::ScReqItem => request_cell(org, index, field),
        Table::TaskSla => task_sla_cell(org, index, field),
        Table::SysUserGroup => {
            let g = &org.groups[index];
            Some(match field {
                "sys_id" => text(&g.sys_id),
                "name" => text(g.name),
                "active" => plain(Val::Bool(true)),
                _ => return None,
            })
        }
        Table::CmdbCiService => {
            let s = &org.services[index];
            Some(match field {
                "sys_id" => text(&s.sys_id),
                "name" => text(s.name),
                "operational_status" => label("1", "Operational"),
                _ => return None,
            })
        }
        Table::SysUser => {
            let e = &org.employees[index];
            Some(match field {
                "sys_id" => text(&e.sys_id),
                "user_name" => text(&e.user_name),
                "name" => text(&e.name),
                "email" => plain(Val::Text(Cow::Owned(format!("{}@example.com", e.user_name)))),
                "country" => text(e.country),
                "active" => plain(Val::Bool(true)),
                _ => return None,
            })
        }
        Table::ContractSla => {
            let d = &org.sla_definitions[index];
            Some(match field {
                "sys_id" => text(&d.sys_id),
                "name" => text(d.name),
                "duration" => duration(d.duration_ms),
                "collection" => text(d.collection),
                "active" => plain(Val::Bool(true)),
                _ => return None,
            })
        }
    }
}

fn incident_cell<'a>(org: &'a Org, index: usize, field: &str) -> Option<Cell<'a>> {
    let r = &org.incidents[index];
    Some(match field {
        "sys_id" => text(&r.sys_id),
        "number" => text(&r.number),
        "short_description" => text(r.short_description),
        "opened_at" => time(Some(r.opened_at)),
        "resolved_at" => time(r.resolved_at),
        "closed_at" => time(r.closed_at),
        "state" => choice(r.state, INCIDENT_STATES),
        "active" => plain(Val::Bool(r.state < 6)),
        "priority" => choice(r.priority, PRIORITIES),
        "impact" => choice(r.impact, LEVELS),
        "urgency" => choice(r.urgency, LEVELS),
        "assignment_group" => reference(org, "sys_user_group", Table::SysUserGroup, Some(r.assignment_group)),
        "assigned_to" => reference(org, "sys_user", Table::SysUser, r.assigned_to),
        "reassignment_count" => int(r.reassignment_count),
        "reopen_count" => int(r.reopen_count),
        "category" => text(r.category),
        "subcategory" => text(r.subcategory),
        "caller_id" => reference(org, "sys_user", Table::SysUser, Some(r.caller)),
        "contact_type" => contact_type(r.contact_type),
        "business_service" => reference(org, "cmdb_ci_service", Table::CmdbCiService, Some(r.business_service)),
        "close_code" => text(r.close_code.unwrap_or("")),
        "made_sla" => plain(Val::Bool(r.made_sla)),
        "sys_class_name" => label("incident", "Incident"),
        "sys_created_on" => time(Some(r.sys_created_on)),
        "sys_updated_on" => time(Some(r.sys_updated_on)),
        "sys_mod_count" => int(r.sys_mod_count),
        _ => return None,
    })
}

fn request_cell<'a>(org: &'a Org, index: usize, field: &str) -> Option<Cell<'a>> {
    let r = &org.requests[index];
    Some(match field {
        "sys_id" => text(&r.sys_id),
        "number" => text(&r.number),
        "request" => text(&r.request),
        "cat_item" => text(r.cat_item),
        "requested_for" => reference(org, "sys_user", Table::SysUser, Some(r.requested_for)),
        "stage" => text(r.stage),
        "state" => choice(r.state, REQUEST_STATES),
        "active" => plain(Val::Bool(r.state < 3)),
        "priority" => choice(r.priority, PRIORITIES),
        "opened_at" => time(Some(r.opened_at)),
        "closed_at" => time(r.closed_at),
        "assignment_group" => reference(org, "sys_user_group", Table::SysUserGroup, Some(r.assignment_group)),
        "assigned_to" => reference(org, "sys_user", Table::SysUser, r.assigned_to),
        "reassignment_count" => int(r.reassignment_count),
        "business_service" => reference(org, "cmdb_ci_service", Table::CmdbCiService, Some(r.business_service)),
        "contact_type" => contact_type(r.contact_type),
        "made_sla" => plain(Val::Bool(r.made_sla)),
        "sys_class_name" => label("sc_req_item", "Requested Item"),
        "sys_created_on" => time(Some(r.sys_created_on)),
        "sys_updated_on" => time(Some(r.sys_updated_on)),
        "sys_mod_count" => int(r.sys_mod_count),
        _ => return None,
    })
}

fn task_sla_cell<'a>(org: &'a Org, index: usize, field: &str) -> Option<Cell<'a>> {
    let r = &org.slas[index];
    Some(match field {
        "sys_id" => text(&r.sys_id),
        "task" => {
            let table = match r.ticket.kind {
                TicketKind::Incident => Table::Incident,
                TicketKind::Request => Table::ScReqItem,
            };
            reference(org, "task", table, Some(r.ticket.index))
        }
        "sla" => reference(org, "contract_sla", Table::ContractSla, Some(r.sla)),
        "stage" => text(r.stage),
        "has_breached" => plain(Val::Bool(r.has_breached)),
        "active" => plain(Val::Bool(r.end_time.is_none() && r.stage != "cancelled")),
        "start_time" => time(Some(r.start_time)),
        "end_time" => time(r.end_time),
        "planned_end_time" => time(Some(r.planned_end_time)),
        "business_percentage" => plain(Val::Dec(r.business_percentage)),
        "percentage" => plain(Val::Dec(r.percentage)),
        "sys_created_on" => time(Some(r.sys_created_on)),
        "sys_updated_on" => time(Some(r.sys_updated_on)),
        _ => return None,
    })
}

/// Reads a field, walking references on dots (`assignment_group.name`).
/// `None` for an unknown field or a walk through an empty reference.
pub(crate) fn walk<'a>(org: &'a Org, table: Table, index: usize, path: &str) -> Option<Cell<'a>> {
    match path.split_once('.') {
        None => cell(org, table, index, path),
        Some((head, rest)) => {
            let target = cell(org, table, index, head)?.reference?;
            walk(org, target.table, target.index, rest)
        }
    }
}

/// How to render values (`sysparm_display_value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rendering {
    /// `false`: raw values.
    Value,
    /// `true`: display values.
    Display,
    /// `all`: both.
    All,
}

/// Appends one field in the wire format to a JSON body: always strings,
/// references as objects. `scratch` is reused between calls.
pub(crate) fn render_into(
    cell: &Cell<'_>,
    display: Rendering,
    exclude_links: bool,
    base: &str,
    scratch: &mut String,
    out: &mut Vec<u8>,
) {
    scratch.clear();
    cell.value.write_text(scratch);
    let value = scratch.as_str();
    let shown = cell.display.as_deref().unwrap_or(value);
    let link = |out: &mut Vec<u8>, reference: Reference| {
        out.extend_from_slice(b"\"link\":\"");
        out.extend_from_slice(base.as_bytes());
        out.extend_from_slice(b"/api/now/table/");
        out.extend_from_slice(reference.link_table.as_bytes());
        out.push(b'/');
        json_text_body(out, value);
        out.push(b'"');
    };
    match (display, link_of(cell, exclude_links)) {
        (Rendering::Value, None) => json_text(out, value),
        (Rendering::Display, None) => json_text(out, shown),
        (Rendering::Value, Some(reference)) => {
            out.push(b'{');
            link(out, reference);
            out.extend_from_slice(b",\"value\":");
            json_text(out, value);
            out.push(b'}');
        }
        (Rendering::Display, Some(reference)) => {
            out.extend_from_slice(b"{\"display_value\":");
            json_text(out, shown);
            out.push(b',');
            link(out, reference);
            out.push(b'}');
        }
        (Rendering::All, reference) => {
            out.extend_from_slice(b"{\"display_value\":");
            json_text(out, shown);
            if let Some(reference) = reference {
                out.push(b',');
                link(out, reference);
            }
            out.extend_from_slice(b",\"value\":");
            json_text(out, value);
            out.push(b'}');
        }
    }
}

fn link_of(cell: &Cell<'_>, exclude_links: bool) -> Option<Reference> {
    cell.reference.filter(|_| !exclude_links)
}

/// A JSON string literal, quotes included.
pub(crate) fn json_text(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    json_text_body(out, text);
    out.push(b'"');
}

/// The escaped inside of a JSON string literal (RFC 8259: quote, backslash
/// and control characters).
fn json_text_body(out: &mut Vec<u8>, text: &str) {
    let needs_escape = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
    if !text.bytes().any(needs_escape) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    for byte in text.bytes() {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            control if control < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(control >> 4)]);
                out.push(HEX[usize::from(control & 0xf)]);
            }
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_text_escapes_what_json_needs_and_reads_back() {
        for text in [
            "plain",
            "",
            "quote \" back\\slash",
            "line\nfeed\r\ttab",
            "bell\u{7}\u{1f}",
            "é ✓ 🦀",
        ] {
            let mut out = Vec::new();
            json_text(&mut out, text);
            let back: String = serde_json::from_slice(&out).expect("valid JSON");
            assert_eq!(back, text);
        }
    }

    #[test]
    fn dates_render_digit_by_digit_as_the_api_shows_them() {
        let mut out = String::new();
        Val::Time(Some(1_788_220_800_000 + 3_723_000)).write_text(&mut out);
        assert_eq!(out, "2026-09-01 01:02:03");
        out.clear();
        Val::Time(Some(-1_000)).write_text(&mut out);
        assert_eq!(out, "1969-12-31 23:59:59");
    }
}

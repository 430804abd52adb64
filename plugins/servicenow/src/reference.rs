//! Dimensions read through reference fields, in every shape the Table API
//! and its exports give them, resolved to names or kept as sys_ids, never
//! dropped.
//!
//! A reference field (`assignment_group`, `business_service`, `cat_item`,
//! `task`, `sla`, ...) holds the sys_id of a record in another table. What a
//! body carries for it depends on how it was asked for
//! (<https://docs.servicenow.com/bundle/latest/page/integrate/inbound-rest/concept/c_TableAPI.html>):
//!
//! | shape | example | read as |
//! | --- | --- | --- |
//! | dot-walked field | `"assignment_group.name": "Service Desk"` | the name |
//! | `sysparm_display_value=all` | `"assignment_group": {"display_value": "Service Desk", "link": .., "value": "11aa.."}` | the name |
//! | `sysparm_display_value=true` | `"assignment_group": "Service Desk"` (or `{"display_value", "link"}`) | the name |
//! | plain reference | `"assignment_group": {"link": "../sys_user_group/6f2d..", "value": "6f2d.."}` or `"6f2d.."` | a sys_id to resolve |
//! | empty | `""`, `{"value": ""}` | absent |
//!
//! The sync asks for both the dot-walked name and the reference itself, so a
//! name the instance did not give (an ACL on the referenced table's field, a
//! dot-walk the instance ignored) is resolved by reading the referenced
//! table: one batched `sys_idIN...` query per table and page, cached for the
//! sync ([`Names`]). A sys_id that cannot be resolved (the record was
//! deleted, the account may not read that table) and every sys_id in
//! `parse` (which has no network) is kept as the dimension's value, with a
//! warning that says how to get names.

use crate::fields::Fields;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A dimension read through a reference field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk {
    /// The reference field on the record, e.g. `assignment_group`.
    pub reference: &'static str,
    /// The dot-walked field the sync asks for, e.g. `assignment_group.name`.
    pub path: &'static str,
    /// The table the reference points to, e.g. `sys_user_group`.
    pub table: &'static str,
    /// The field read there, e.g. `name`.
    pub field: &'static str,
    /// Whether `field` is the referenced table's display field, so that the
    /// reference's `display_value` is the same text.
    pub is_display: bool,
}

impl Walk {
    /// A walk to `field`, the display field of `table`.
    pub const fn display(
        reference: &'static str,
        path: &'static str,
        table: &'static str,
        field: &'static str,
    ) -> Walk {
        Walk {
            reference,
            path,
            table,
            field,
            is_display: true,
        }
    }
}

/// `assignment_group.name`.
pub const ASSIGNMENT_GROUP: Walk = Walk::display("assignment_group", "assignment_group.name", "sys_user_group", "name");
/// `business_service.name`.
pub const BUSINESS_SERVICE: Walk =
    Walk::display("business_service", "business_service.name", "cmdb_ci_service", "name");
/// `cat_item.name` of a requested item.
pub const CAT_ITEM: Walk = Walk::display("cat_item", "cat_item.name", "sc_cat_item", "name");
/// `task.number` of a task SLA: the ticket.
pub const TASK_NUMBER: Walk = Walk::display("task", "task.number", "task", "number");
/// `task.sys_class_name` of a task SLA: the ticket's table (not its display field).
pub const TASK_CLASS: Walk = Walk {
    reference: "task",
    path: "task.sys_class_name",
    table: "task",
    field: "sys_class_name",
    is_display: false,
};
/// `sla.name` of a task SLA: the SLA definition.
pub const SLA_NAME: Walk = Walk::display("sla", "sla.name", "contract_sla", "name");

/// What a record says about a walked dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said<'r> {
    /// The name (or other walked value) itself.
    Known(Cow<'r, str>),
    /// No reference: the dimension is absent.
    Absent,
    /// Only the sys_id of a record in `table`.
    SysId {
        /// The referenced table: the link's, else the walk's.
        table: Cow<'r, str>,
        /// The sys_id.
        sys_id: Cow<'r, str>,
    },
}

/// Whether `text` looks like a sys_id: 32 lowercase letters or digits (hex
/// in practice; exports and fixtures with made-up ids use other letters).
/// No name a display field holds has that shape.
pub fn is_sys_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Whether `text` can be put in an encoded query and a URL path as a table name.
fn is_table_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// What `fields` says about `walk`, whatever shape the body has (see the module docs).
pub fn read<'r>(fields: &'r Fields<'_>, walk: &Walk) -> Said<'r> {
    let text = |key: &str| -> Option<&'r str> {
        fields
            .get(key)
            .map(|v| v.as_ref())
            .filter(|v| !v.is_empty())
            .or_else(|| fields.display(key).filter(|v| !v.is_empty()))
    };
    if let Some(walked) = text(walk.path) {
        return Said::Known(Cow::Borrowed(walked));
    }
    if walk.is_display
        && let Some(display) = fields.display(walk.reference).filter(|d| !d.is_empty())
    {
        return Said::Known(Cow::Borrowed(display));
    }
    let Some(value) = fields.get(walk.reference).map(|v| v.as_ref()).filter(|v| !v.is_empty()) else {
        return Said::Absent;
    };
    if !is_sys_id(value) {
        // `sysparm_display_value=true` puts the display value where the
        // sys_id would be; only the display field can be read from it.
        return if walk.is_display {
            Said::Known(Cow::Borrowed(value))
        } else {
            Said::Absent
        };
    }
    let table = fields
        .link_table(walk.reference)
        .filter(|t| is_table_name(t))
        .unwrap_or(walk.table);
    Said::SysId {
        table: Cow::Borrowed(table),
        sys_id: Cow::Borrowed(value),
    }
}

/// The fields read from one referenced record: (field, value).
pub type Resolved = Vec<(String, String)>;

/// Names resolved from referenced tables: (table, sys_id) to the fields read
/// there, or `None` when the table did not return the record.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Names {
    known: HashMap<(String, String), Option<Resolved>>,
}

/// Most entries [`Names`] keeps; past it the cache starts again (a sync
/// over many tasks must not grow the plugin's memory without bound).
pub const MAX_NAMES: usize = 50_000;

impl Names {
    /// The value of `field` of record `sys_id` in `table`, if resolved.
    pub fn get(&self, table: &str, sys_id: &str, field: &str) -> Option<&str> {
        let fields = self.known.get(&(table.to_string(), sys_id.to_string()))?.as_ref()?;
        fields
            .iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Whether the record was asked for already (found or not).
    pub fn asked(&self, table: &str, sys_id: &str) -> bool {
        self.known.contains_key(&(table.to_string(), sys_id.to_string()))
    }

    /// Records what `table` returned for `sys_id` (`None`: not returned).
    pub fn insert(&mut self, table: &str, sys_id: &str, fields: Option<Resolved>) {
        if self.known.len() >= MAX_NAMES {
            self.known.clear();
        }
        self.known.insert((table.to_string(), sys_id.to_string()), fields);
    }

    /// Forgets everything (a new sync reads names afresh: groups get renamed).
    pub fn clear(&mut self) {
        self.known.clear();
    }
}

/// The records to read from referenced tables: per table, the fields wanted
/// and the sys_ids not resolved yet.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Table to (fields, sys_ids).
    pub tables: BTreeMap<String, (BTreeSet<&'static str>, BTreeSet<String>)>,
}

impl Wanted {
    /// Notes every walk of `walks` that `fields` gives only as a sys_id not in `names`.
    pub fn add(&mut self, fields: &Fields<'_>, walks: &[Walk], names: &Names) {
        for walk in walks {
            if let Said::SysId { table, sys_id } = read(fields, walk)
                && !names.asked(&table, &sys_id)
            {
                let entry = self.tables.entry(table.into_owned()).or_default();
                entry.0.insert(walk.field);
                entry.1.insert(sys_id.into_owned());
            }
        }
    }

    /// Whether nothing needs resolving.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}

/// Sys_ids kept as dimension values, counted per (table, reference field),
/// for one warning each instead of one per record.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Kept {
    counts: BTreeMap<(&'static str, &'static str), (usize, String)>,
}

impl Kept {
    /// Counts one kept sys_id of `walk` on a record of `table`.
    pub fn add(&mut self, table: &'static str, walk: &Walk, sys_id: &str) {
        let entry = self
            .counts
            .entry((table, walk.reference))
            .or_insert_with(|| (0, sys_id.to_string()));
        entry.0 += 1;
    }

    /// One sentence per (table, field) for the operator's log.
    pub fn warnings(&self, why: &str) -> Vec<String> {
        self.counts
            .iter()
            .map(|((table, field), (count, example))| {
                format!(
                    "{table}: `{field}` of {count} record(s) is only a sys_id (e.g. {example}) and {why}; the sys_id is \
                     kept as the dimension value. Export with sysparm_display_value=all, or dot-walk `{field}.name`, to \
                     get names"
                )
            })
            .collect()
    }

    /// Whether no sys_id was kept.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

/// The dimension value of `walk` on a record: its name, a resolved name, or
/// the sys_id (counted in `kept`); `None` when the record has no reference.
pub fn value<'r>(
    fields: &'r Fields<'_>,
    walk: &Walk,
    names: &'r Names,
    table: &'static str,
    kept: &mut Kept,
) -> Option<Cow<'r, str>> {
    match read(fields, walk) {
        Said::Known(name) => Some(name),
        Said::Absent => None,
        Said::SysId { table: target, sys_id } => match names.get(&target, &sys_id, walk.field) {
            Some(name) => Some(Cow::Borrowed(name)),
            // A ticket's table is not a name: a sys_id in its place would
            // only mislead.
            None if !walk.is_display => None,
            None => {
                kept.add(table, walk, &sys_id);
                Some(sys_id)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(json: &str) -> Fields<'_> {
        serde_json::from_str(json).expect("a record")
    }

    #[test]
    fn every_shape_of_a_reference() {
        let known = |json: &str| match read(&fields(json), &ASSIGNMENT_GROUP) {
            Said::Known(name) => Some(name.into_owned()),
            _ => None,
        };
        assert_eq!(
            known(r#"{"assignment_group.name":"Service Desk","assignment_group":"11aa22bb33cc44dd55ee66ff77001122"}"#)
                .as_deref(),
            Some("Service Desk")
        );
        assert_eq!(
            known(r#"{"assignment_group":{"display_value":"Service Desk","link":"https://a/api/now/table/sys_user_group/11aa22bb33cc44dd55ee66ff77001122","value":"11aa22bb33cc44dd55ee66ff77001122"}}"#)
                .as_deref(),
            Some("Service Desk")
        );
        assert_eq!(
            known(r#"{"assignment_group":"Service Desk"}"#).as_deref(),
            Some("Service Desk")
        );
        assert_eq!(
            known(r#"{"assignment_group":{"display_value":"Service Desk","link":"https://a/x"}}"#).as_deref(),
            Some("Service Desk")
        );
        for absent in [
            r#"{"assignment_group":""}"#,
            r#"{"assignment_group":{"display_value":"","value":""}}"#,
            r#"{"assignment_group.name":"","assignment_group":""}"#,
            r#"{}"#,
        ] {
            assert_eq!(read(&fields(absent), &ASSIGNMENT_GROUP), Said::Absent, "{absent}");
        }
        let plain = fields(
            r#"{"business_service":{"link":"https://a/api/now/table/cmdb_ci_service/90c4e2b7d8a14f3e9b5a6c7d8e9f0a1b","value":"90c4e2b7d8a14f3e9b5a6c7d8e9f0a1b"}}"#,
        );
        assert_eq!(
            read(&plain, &BUSINESS_SERVICE),
            Said::SysId {
                table: "cmdb_ci_service".into(),
                sys_id: "90c4e2b7d8a14f3e9b5a6c7d8e9f0a1b".into()
            }
        );
        // A dot-walk the instance left empty while the reference is set: resolve it.
        let hidden = fields(r#"{"sla.name":"","sla":"c0de00000000000000000000000000b1"}"#);
        assert!(matches!(read(&hidden, &SLA_NAME), Said::SysId { table, .. } if table == "contract_sla"));
    }

    #[test]
    fn resolved_names_then_kept_sys_ids() {
        let record = fields(
            r#"{"assignment_group":"6f2d9a1c1b7e4c50a0d3e8b2c4f61a77","task":"e4a1000000000000000000000000a044"}"#,
        );
        let mut names = Names::default();
        let mut wanted = Wanted::default();
        wanted.add(&record, &[ASSIGNMENT_GROUP, TASK_NUMBER, TASK_CLASS], &names);
        let (task_fields, task_ids) = &wanted.tables["task"];
        assert_eq!(
            task_fields.iter().copied().collect::<Vec<_>>(),
            ["number", "sys_class_name"]
        );
        assert_eq!(task_ids.len(), 1);

        let mut kept = Kept::default();
        let group = value(&record, &ASSIGNMENT_GROUP, &names, "incident", &mut kept);
        assert_eq!(
            group.as_deref(),
            Some("6f2d9a1c1b7e4c50a0d3e8b2c4f61a77"),
            "kept, not dropped"
        );
        assert_eq!(value(&record, &TASK_CLASS, &names, "task_sla", &mut kept), None);
        assert_eq!(kept.warnings("was not resolved").len(), 1);

        names.insert(
            "sys_user_group",
            "6f2d9a1c1b7e4c50a0d3e8b2c4f61a77",
            Some(vec![("name".into(), "Network Operations".into())]),
        );
        let mut kept = Kept::default();
        let group = value(&record, &ASSIGNMENT_GROUP, &names, "incident", &mut kept);
        assert_eq!(group.as_deref(), Some("Network Operations"));
        assert!(kept.is_empty());
        let mut wanted = Wanted::default();
        wanted.add(&record, &[ASSIGNMENT_GROUP], &names);
        assert!(wanted.is_empty(), "asked once per sync");
    }
}

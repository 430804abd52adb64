//! The configuration of one ServiceNow connector instance and its checks.
//!
//! Credentials are not part of it: the host adds Basic or OAuth to requests
//! for the origin the operator granted, so the plugin never sees them.

use crate::reference::{self, Walk};
use crate::time::parse_glide;
use serde::{Deserialize, Serialize};
use xla_sdk::PluginError;
use xla_sdk::config::field_error;

/// A Table API table the connector reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// Incidents: resolution, reassignment, reopen, first contact resolution.
    Incident,
    /// Requested items (RITM): fulfilment time and reassignment.
    ScReqItem,
    /// One row per SLA attached to a task: breached or not.
    TaskSla,
}

impl Table {
    /// Every table, in the default walking order.
    pub const ALL: [Table; 3] = [Table::Incident, Table::ScReqItem, Table::TaskSla];

    /// The table's name in the Table API.
    pub fn name(self) -> &'static str {
        match self {
            Table::Incident => "incident",
            Table::ScReqItem => "sc_req_item",
            Table::TaskSla => "task_sla",
        }
    }

    /// The table named `name`, if the connector reads it.
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// `sysparm_fields`: only what the mapping reads. Each reference is
    /// asked for twice, dot-walked to its name (one request is enough) and as
    /// itself, so that a name the instance leaves empty is resolved from the
    /// sys_id rather than dropped (see [`crate::reference`]).
    pub fn fields(self) -> &'static str {
        match self {
            Table::Incident => {
                "sys_id,sys_updated_on,number,state,opened_at,resolved_at,reassignment_count,reopen_count,\
                 category,priority,contact_type,business_service,business_service.name,assignment_group,\
                 assignment_group.name"
            }
            Table::ScReqItem => {
                "sys_id,sys_updated_on,number,state,opened_at,closed_at,reassignment_count,cat_item,cat_item.name,\
                 assignment_group,assignment_group.name"
            }
            Table::TaskSla => {
                "sys_id,sys_updated_on,stage,has_breached,business_percentage,end_time,planned_end_time,\
                 task,task.number,task.sys_class_name,sla,sla.name"
            }
        }
    }

    /// The dimensions read through reference fields.
    pub fn walks(self) -> &'static [Walk] {
        match self {
            Table::Incident => &[reference::BUSINESS_SERVICE, reference::ASSIGNMENT_GROUP],
            Table::ScReqItem => &[reference::CAT_ITEM, reference::ASSIGNMENT_GROUP],
            Table::TaskSla => &[reference::TASK_NUMBER, reference::TASK_CLASS, reference::SLA_NAME],
        }
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Configuration of one ServiceNow connector instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The instance's origin, e.g. `https://acme.service-now.com`.
    pub instance_url: String,
    /// Tables to read, walked in this order.
    #[serde(default = "default_tables")]
    pub tables: Vec<Table>,
    /// `sysparm_limit` of each request.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Seconds before a table's watermark where each new sync starts reading
    /// again: a record updated in the watermark's second after it was read,
    /// or committed late, is read then (re-read records change nothing).
    #[serde(default = "default_overlap_seconds")]
    pub overlap_seconds: u32,
    /// First watermark (`sys_updated_on >= since`) of a table never synced.
    #[serde(default)]
    pub since: Option<String>,
}

fn default_tables() -> Vec<Table> {
    Table::ALL.to_vec()
}

fn default_overlap_seconds() -> u32 {
    120
}

fn default_page_size() -> u32 {
    1000
}

/// Largest `page_size` accepted (ServiceNow's own default limit).
pub const MAX_PAGE_SIZE: u32 = 10_000;

impl Config {
    /// Checks what serde cannot: the URL, the table list, the page size and
    /// the `since` date-time.
    pub fn validate(&self) -> Result<(), PluginError> {
        self.instance_origin()?;
        if self.tables.is_empty() {
            return Err(field_error(
                "tables",
                "list at least one of `incident`, `sc_req_item`, `task_sla` (or leave it out for all three)",
            ));
        }
        if let Some((i, table)) = self
            .tables
            .iter()
            .enumerate()
            .find(|(i, t)| self.tables[..*i].contains(t))
        {
            return Err(field_error(
                &format!("tables[{i}]"),
                format!("`{table}` is listed twice"),
            ));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(field_error(
                "page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}, not {}", self.page_size),
            ));
        }
        if self.overlap_seconds > 86_400 {
            return Err(field_error(
                "overlap_seconds",
                format!("must be at most 86400 (a day), not {}", self.overlap_seconds),
            ));
        }
        if let Some(since) = &self.since
            && parse_glide(since).is_none()
        {
            return Err(field_error(
                "since",
                format!("`{since}` is not a UTC date-time like `2026-01-01 00:00:00`"),
            ));
        }
        Ok(())
    }

    /// The instance origin without a trailing slash, e.g.
    /// `https://acme.service-now.com`.
    pub fn instance_origin(&self) -> Result<String, PluginError> {
        let origin = xla_sdk::origin::parse_origin("instance_url", &self.instance_url, "https://acme.service-now.com")?;
        Ok(xla_sdk::origin::serialize(&origin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Result<Config, PluginError> {
        let config = xla_sdk::parse_config::<Config>(json)?;
        config.validate()?;
        Ok(config)
    }

    fn message(json: &str) -> String {
        match config(json) {
            Err(PluginError::Config(m)) => m,
            other => panic!("expected a config error for {json}, got {other:?}"),
        }
    }

    #[test]
    fn defaults_read_all_three_tables() {
        let c = config(r#"{"instance_url":"https://acme.service-now.com/"}"#).expect("valid");
        assert_eq!(c.tables, Table::ALL);
        assert_eq!(c.page_size, 1000);
        assert_eq!(c.since, None);
        assert_eq!(c.instance_origin().expect("origin"), "https://acme.service-now.com");
    }

    #[test]
    fn every_walked_dimension_is_asked_for_with_its_reference() {
        for table in Table::ALL {
            let fields: Vec<&str> = table.fields().split(',').collect();
            for walk in table.walks() {
                assert!(fields.contains(&walk.path), "{table}: {}", walk.path);
                assert!(fields.contains(&walk.reference), "{table}: {}", walk.reference);
            }
        }
    }

    #[test]
    fn local_http_is_allowed_for_simulators() {
        let c = config(r#"{"instance_url":"http://127.0.0.1:8089","tables":["task_sla"]}"#).expect("valid");
        assert_eq!(c.instance_origin().expect("origin"), "http://127.0.0.1:8089");
        config(r#"{"instance_url":"http://localhost:8089"}"#).expect("valid");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"instance_url":"http://acme.service-now.com"}"#, "instance_url"),
            (r#"{"instance_url":"acme.service-now.com"}"#, "instance_url"),
            (
                r#"{"instance_url":"https://admin:pw@acme.service-now.com"}"#,
                "instance_url",
            ),
            (
                r#"{"instance_url":"https://acme.service-now.com/api/now"}"#,
                "instance_url",
            ),
            (
                r#"{"instance_url":"https://a.example","tables":["incident","problem"]}"#,
                "tables[1]",
            ),
            (r#"{"instance_url":"https://a.example","tables":[]}"#, "tables"),
            (
                r#"{"instance_url":"https://a.example","tables":["task_sla","task_sla"]}"#,
                "tables[1]",
            ),
            (r#"{"instance_url":"https://a.example","page_size":0}"#, "page_size"),
            (r#"{"instance_url":"https://a.example","page_size":10001}"#, "page_size"),
            (r#"{"instance_url":"https://a.example","page_size":"ten"}"#, "page_size"),
            (
                r#"{"instance_url":"https://a.example","since":"2026-01-01T00:00:00Z"}"#,
                "since",
            ),
            (r#"{"instance_url":"https://a.example","password":"x"}"#, "password"),
            (r#"{"tables":["incident"]}"#, "instance_url"),
        ];
        for (json, field) in cases {
            let m = message(json);
            assert!(m.contains(&format!("`{field}`")), "{json}: {m}");
        }
    }
}

//! `servicenow`: a connector for ServiceNow's Table API
//! (`GET {instance}/api/now/table/{table}`), reading `incident`,
//! `sc_req_item` and `task_sla` into the operational metrics of
//! `docs/metrics.md`. The plugin never sees a credential: the host adds Basic
//! or OAuth to requests for the origin the operator granted.
//!
//! # Incremental sync
//!
//! Each table is read in keyset order on (`sys_updated_on`, `sys_id`), one
//! page per `pull`, with `sysparm_query`:
//!
//! - a table never synced: `sys_updated_on>=SINCE^ORDERBYsys_updated_on^ORDERBYsys_id`
//!   (without `since`, only the two `ORDERBY`s);
//! - after the last record read (`LAST_TS`, `LAST_ID`):
//!   `sys_updated_on=LAST_TS^sys_id>LAST_ID^NQsys_updated_on>LAST_TS^ORDERBYsys_updated_on^ORDERBYsys_id`.
//!
//! A new sync's first page of each table starts `overlap_seconds` (120 by
//! default) before the table's watermark, with `sys_updated_on>=W-overlap`:
//! `sys_updated_on` has one-second precision, so a record updated in the
//! watermark's own second after it was read, with a smaller sys_id, would
//! otherwise sort behind the keyset for good (and so would a transaction that
//! committed after its timestamp was set). Records read again change nothing.
//!
//! Offsets drift when records change during a sync; a keyset does not. A
//! record updated while a sync runs gets a newer `sys_updated_on`, so it sorts
//! after the watermark and arrives later in the same sync or in the next one;
//! nothing is lost, and a record read twice replaces its observations (same
//! `id`, the record's `sys_id`).
//!
//! # Pages the ACLs emptied
//!
//! ServiceNow applies `sysparm_limit` *before* ACL filtering, so a page can
//! be short, or empty, while more records follow. A table is finished only
//! when the `Link` header has no `rel="next"`. Otherwise:
//!
//! - a page with records moves the watermark to its last record and asks for
//!   the next page by keyset, at offset 0. Hidden records between that record
//!   and the end of the window are simply filtered again;
//! - an empty page gives no record to move the keyset past, and the hidden
//!   records it stood for would come back on every request. So the connector
//!   keeps the same keyset query and pages on with `sysparm_offset` taken from
//!   the `next` link (or one page further when the link has none), until a page
//!   has records (back to keyset, offset 0) or there is no `next`.
//!
//! Only runs of emptied pages use an offset, so only they can drift: if a
//! hidden record inside the run is updated between two requests, the rest
//! shifts forward by one and a visible record may be stepped over. It is read
//! again once it is next updated; reading hidden records is the only cure.
//!
//! The request is always rebuilt from the configured origin; only the offset
//! is read from the link, so a `Link` pointing elsewhere is never followed.
//! The walk always progresses: every page with records moves the watermark
//! strictly forward and every empty one the offset.
//!
//! # Cursor
//!
//! See [`cursor`]: per-table watermarks, the table in progress and its offset.
//! Tables are walked in the configured order; `more` stays true until the last
//! one finishes. The final cursor keeps the watermarks, and the next sync
//! starts again from the first table, after its watermark.
//!
//! # Mapping
//!
//! See [`record`]: resolved or closed incidents, closed requested items, and
//! completed or breached task SLAs. Open and canceled incidents, open items,
//! and running, paused or cancelled SLAs emit nothing (they still move the
//! watermark). `parse` maps saved Table API bodies and webhooks the same way.

pub mod config;
pub mod cursor;
pub mod fields;
pub mod record;
pub mod table_api;
mod time;

use config::{Config, Table};
use cursor::{Cursor, Watermark};
use fields::Fields;
use record::Record;
use table_api::{Page, Start};
use xla_sdk::{Batch, Connector, ConnectorInfo, Layer, MetricInfo, Observation, PluginError};

/// The ServiceNow connector.
pub struct ServiceNow;

/// What a page means for the walk.
enum Step {
    /// Stay on the table, at this `sysparm_offset`.
    Stay(u32),
    /// The table is finished.
    Finished,
}

impl ServiceNow {
    /// Where the table's next page starts. Within a sync, after the last
    /// record read. A sync's first page of a table starts `overlap_seconds`
    /// before its watermark: a record updated in the watermark's own second
    /// after it was read, with a smaller sys_id, or committed with an earlier
    /// timestamp, would be behind the keyset for good. Never synced: `since`.
    fn start(config: &Config, cursor: &Cursor, table: Table) -> Start {
        match (cursor.watermarks.get(&table), &config.since) {
            (Some(mark), _) if cursor.reading => Start::After(mark.clone()),
            (Some(mark), _) => match time::parse_glide(&mark.ts) {
                Some(ms) => Start::Since(time::format_glide(ms - i64::from(config.overlap_seconds) * 1_000)),
                None => Start::After(mark.clone()),
            },
            (None, Some(since)) => Start::Since(since.clone()),
            (None, None) => Start::Beginning,
        }
    }

    /// Maps a page and returns its observations and its last keyset.
    fn read_page(
        table: Table,
        records: &[Fields<'_>],
        after: Option<&Watermark>,
    ) -> Result<(Vec<Observation>, Option<Watermark>), PluginError> {
        let mut observations = Vec::new();
        let mut last: Option<Watermark> = None;
        for fields in records {
            let record = Record::new(table, fields);
            let mark = record.watermark()?;
            let previous = last.as_ref().or(after);
            // The fixed `YYYY-MM-DD HH:MM:SS` form sorts as text, and so do
            // sys_ids. An instance that dropped either ORDERBY would make the
            // keyset skip records.
            if let Some(previous) = previous
                && (mark.ts.as_str(), mark.sys_id.as_str()) <= (previous.ts.as_str(), previous.sys_id.as_str())
            {
                return Err(PluginError::Permanent(format!(
                    "{}: keyed ({}, {}) but listed after ({}, {}); the instance did not sort by sys_updated_on \
                     and sys_id, so the sync cannot continue safely",
                    record.label(),
                    mark.ts,
                    mark.sys_id,
                    previous.ts,
                    previous.sys_id
                )));
            }
            observations.extend(record.observations()?);
            last = Some(mark);
        }
        Ok((observations, last))
    }

    fn step(page: &Page, read_any: bool, offset: u32, page_size: u32) -> Step {
        match page.next {
            None => Step::Finished,
            Some(_) if read_any => Step::Stay(0),
            Some(link_offset) => Step::Stay(
                link_offset
                    .filter(|&next| next > offset)
                    .unwrap_or_else(|| offset.saturating_add(page_size)),
            ),
        }
    }
}

fn metric(name: &str, unit: &str, description: &str) -> MetricInfo {
    MetricInfo::new(name, Layer::Operational, unit, description)
}

/// The table of a pushed record: the media type's `table` parameter, else
/// what its fields reveal.
fn detect_table(fields: &Fields<'_>, declared: Option<Table>) -> Option<Table> {
    if declared.is_some() {
        return declared;
    }
    let has = |key: &str| fields.contains(key);
    let number = fields.get("number").map(|n| n.as_ref()).unwrap_or_default();
    if has("has_breached") || has("sla") || has("sla.name") {
        Some(Table::TaskSla)
    } else if number.starts_with("RITM") || has("cat_item") || has("cat_item.name") {
        Some(Table::ScReqItem)
    } else if number.starts_with("INC") || has("reopen_count") || has("incident_state") {
        Some(Table::Incident)
    } else {
        None
    }
}

/// `application/json[; table=incident]` into the table, if declared.
fn media_table(media_type: &str) -> Result<Option<Table>, PluginError> {
    let mut parts = media_type.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(PluginError::BadData(format!(
            "servicenow reads Table API bodies as application/json, not `{media_type}`"
        )));
    }
    for part in parts {
        let Some((key, value)) = part.split_once('=') else {
            continue;
        };
        if key.trim().eq_ignore_ascii_case("table") {
            let name = value.trim().trim_matches('"');
            return Table::from_name(name).map(Some).ok_or_else(|| {
                PluginError::BadData(format!(
                    "media type names table `{name}`; servicenow reads `incident`, `sc_req_item` and `task_sla`"
                ))
            });
        }
    }
    Ok(None)
}

impl Connector for ServiceNow {
    type Config = Config;

    fn info() -> ConnectorInfo {
        ConnectorInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: env!("CARGO_PKG_DESCRIPTION").into(),
            config_schema: include_str!("../config.schema.json").into(),
            metrics: vec![
                metric(
                    "resolution_hours",
                    "hours",
                    "opened_at to resolved_at (incidents) or closed_at (requests).",
                ),
                metric(
                    "reassignment_count",
                    "count",
                    "Times the ticket changed assignment group.",
                ),
                metric("reopened", "bool", "1 when an incident's reopen_count > 0."),
                metric(
                    "first_contact_resolution",
                    "bool",
                    "1 when an incident was resolved with no reassignment and no reopen.",
                ),
                metric(
                    "ticket_resolved",
                    "bool",
                    "1 per resolved incident or closed requested item.",
                ),
                metric(
                    "sla_breached",
                    "bool",
                    "task_sla.has_breached of a completed or breached SLA.",
                ),
                metric(
                    "sla_business_percentage",
                    "percent",
                    "Elapsed share of the SLA's business time when it stopped.",
                ),
            ],
            hosts: vec!["*".into()],
            media_types: vec!["application/json".into()],
        }
    }

    fn check(config: &Config) -> Result<(), PluginError> {
        config.validate()?;
        let table = config.tables[0];
        table_api::fetch(table_api::probe_request(config, table)?, table)?
            .records()
            .map(drop)
    }

    fn pull(config: &Config, cursor: Option<&str>) -> Result<Batch, PluginError> {
        config.validate()?;
        let mut cursor = Cursor::decode(cursor)?;
        // A table dropped from the config since the cursor was written
        // restarts the walk; its watermark is kept should it come back.
        let (table, offset) = match cursor.table.filter(|t| config.tables.contains(t)) {
            Some(table) => (table, cursor.offset),
            None => {
                cursor.reading = false;
                (config.tables[0], 0)
            }
        };
        let start = Self::start(config, &cursor, table);
        let after = match &start {
            Start::After(mark) => Some(mark.clone()),
            Start::Since(since) => Some(Watermark {
                ts: since.clone(),
                sys_id: String::new(),
            }),
            Start::Beginning => None,
        };
        let query = table_api::sync_query(&start);
        let page = table_api::fetch(table_api::page_request(config, table, &query, offset)?, table)?;
        let records = page.records()?;
        let (observations, last) = Self::read_page(table, &records, after.as_ref())?;
        if let Some(mark) = last {
            cursor.watermarks.insert(table, mark);
        }
        let read_any = !records.is_empty();
        let more = match Self::step(&page, read_any, offset, config.page_size) {
            Step::Stay(offset) => {
                (cursor.table, cursor.offset) = (Some(table), offset);
                // A page with records moved the watermark: go on by keyset.
                cursor.reading |= read_any;
                true
            }
            Step::Finished => {
                let position = config.tables.iter().position(|t| *t == table).unwrap_or_default();
                cursor.table = config.tables.get(position + 1).copied();
                cursor.offset = 0;
                cursor.reading = false;
                cursor.table.is_some()
            }
        };
        Ok(Batch {
            observations,
            cursor: Some(cursor.encode()?),
            more,
        })
    }

    fn parse(_config: &Config, media_type: &str, body: &[u8]) -> Result<Vec<Observation>, PluginError> {
        let declared = media_table(media_type)?;
        let records = table_api::records(body).map_err(|e| {
            PluginError::BadData(match e {
                table_api::BodyError::Error(message) => format!("the body is a ServiceNow error: {message}"),
                table_api::BodyError::Html => "the body is a web page, not a Table API body".into(),
                table_api::BodyError::Shape(why) | table_api::BodyError::NotJson(why) => why,
            })
        })?;
        let mut observations = Vec::new();
        for (i, fields) in records.iter().enumerate() {
            let table = detect_table(fields, declared).ok_or_else(|| {
                PluginError::BadData(format!(
                    "cannot tell which table record #{i} comes from; send it as `application/json; table=incident` \
                     (or sc_req_item, task_sla)"
                ))
            })?;
            observations.extend(Record::new(table, fields).observations()?);
        }
        Ok(observations)
    }
}

xla_sdk::export_connector!(ServiceNow);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_may_declare_the_table() {
        assert_eq!(media_table("application/json").expect("ok"), None);
        assert_eq!(
            media_table("application/json; charset=utf-8; table=\"sc_req_item\"").expect("ok"),
            Some(Table::ScReqItem)
        );
        assert!(matches!(media_table("text/csv"), Err(PluginError::BadData(_))));
        assert!(matches!(
            media_table("application/json;table=problem"),
            Err(PluginError::BadData(_))
        ));
    }

    #[test]
    fn info_lists_the_emitted_metrics() {
        let info = ServiceNow::info();
        assert_eq!(info.name, "servicenow");
        assert_eq!(info.metrics.len(), 7);
        assert_eq!(info.hosts, ["*"]);
        let schema: serde_json::Value = serde_json::from_str(&info.config_schema).expect("schema is JSON");
        assert_eq!(schema["properties"]["tables"]["default"][2], "task_sla");
    }
}

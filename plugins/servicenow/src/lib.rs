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
//! # A 2xx that is not a page
//!
//! ServiceNow cancels a transaction that runs past its quota (a large page
//! on a busy instance) and still answers 200: with its error object instead
//! of rows, or with the rows streamed so far and the error object spliced in
//! mid-record. A session whose queue is full gets 202 with an empty body; an
//! instance in maintenance or hibernating gives an HTML page. Nothing from
//! such a body is stored. The pull returns no records, halves
//! `sysparm_limit` (to a floor of [`MIN_PAGE_SIZE`]), keeps it in the cursor
//! for the rest of the sync and says so in the log; the next pull asks for
//! the same page with the smaller limit. Only at the floor is it an error
//! (transient: the host retries the pull later, the cursor unchanged).
//!
//! # References
//!
//! See [`reference`]: a dimension read through a reference field (group,
//! service, catalog item, the SLA's task and definition) is asked for
//! dot-walked and as the reference; when the instance gives only the
//! sys_id, the names are read from the referenced table, one batched query
//! per table and page, cached for the sync. What cannot be resolved keeps
//! its sys_id, with a warning.
//!
//! # Cursor
//!
//! See [`cursor`]: per-table watermarks, the table in progress, its offset,
//! and the smaller page size a not-a-page answer left in force.
//! Tables are walked in the configured order; `more` stays true until the last
//! one finishes. The final cursor keeps the watermarks, and the next sync
//! starts again from the first table, after its watermark.
//!
//! # Mapping
//!
//! See [`record`]: one record per resolved or closed incident, closed
//! requested item, and task SLA that met or breached (breached is final in
//! any stage). A row that does not count now (an open, reopened or canceled
//! incident, an open item, a running, paused or cancelled SLA) retracts what
//! it may have given before; it still moves the watermark. `parse` maps saved
//! Table API bodies and webhooks the same way, without reading other tables.

pub mod config;
pub mod cursor;
pub mod fields;
pub mod record;
pub mod reference;
pub mod table_api;
mod time;

use config::{Config, Table};
use cursor::{Cursor, Watermark};
use fields::Fields;
use record::{Resolver, Row};
use reference::{Names, Wanted};
use std::cell::RefCell;
use std::collections::HashMap;
use table_api::{NotAPage, Page, Start};
use xla_sdk::{Batch, Changes, Connector, ConnectorInfo, Layer, MetricInfo, PluginError};

/// Smallest `sysparm_limit` a not-a-page answer halves down to (or
/// `page_size`, when smaller).
pub const MIN_PAGE_SIZE: u32 = 10;

/// Most sys_ids read from a referenced table in one request (the URL stays
/// a few kilobytes).
pub const LOOKUP_CHUNK: usize = 100;

thread_local! {
    /// Names read from referenced tables during this sync: the host keeps
    /// the instance for a whole sync run, and a new sync starts it empty.
    static NAMES: RefCell<Names> = RefCell::new(Names::default());
}

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

    /// Checks the page's keyset order and returns its last keyset.
    fn keyset(
        table: Table,
        records: &[Fields<'_>],
        after: Option<&Watermark>,
    ) -> Result<Option<Watermark>, PluginError> {
        let mut last: Option<(&str, &str)> = None;
        let after = after.map(|mark| (mark.ts.as_str(), mark.sys_id.as_str()));
        for fields in records {
            let row = Row::new(table, fields);
            let mark = row.keyset()?;
            // The fixed `YYYY-MM-DD HH:MM:SS` form sorts as text, and so do
            // sys_ids. An instance that dropped either ORDERBY would make the
            // keyset skip records.
            if let Some(previous) = last.or(after)
                && mark <= previous
            {
                return Err(PluginError::Permanent(format!(
                    "{}: keyed ({}, {}) but listed after ({}, {}); the instance did not sort by sys_updated_on \
                     and sys_id, so the sync cannot continue safely",
                    row.label(),
                    mark.0,
                    mark.1,
                    previous.0,
                    previous.1
                )));
            }
            last = Some(mark);
        }
        // Only the page's last keyset is kept: one copy per page, not per row.
        Ok(last.map(|(ts, sys_id)| Watermark {
            ts: ts.to_string(),
            sys_id: sys_id.to_string(),
        }))
    }

    /// Maps rows into changes with `names`, logging the sys_ids kept (`why`
    /// they were not resolved).
    fn map(
        table_of: impl Fn(usize, &Fields<'_>) -> Result<Table, PluginError>,
        records: &[Fields<'_>],
        names: &Names,
        why: &str,
    ) -> Result<Changes, PluginError> {
        let mut resolver = Resolver::new(names);
        let mut changes = Changes::default();
        for (i, fields) in records.iter().enumerate() {
            let mapped = Row::new(table_of(i, fields)?, fields).map(&mut resolver)?;
            changes.records.extend(mapped.record);
            changes.retractions.extend(mapped.retraction);
        }
        for warning in resolver.kept.warnings(why) {
            xla_sdk::log::warn(&warning);
        }
        Ok(changes)
    }

    /// Reads the names a page gives only as sys_ids from their tables into
    /// `names`. A table the account may not read, or records it does not
    /// return, leave those sys_ids unresolved (kept, with a warning); a
    /// transient failure or a rate limit fails the pull, to be retried.
    fn resolve(config: &Config, wanted: &Wanted, names: &mut Names) -> Result<(), PluginError> {
        for (table, (fields, sys_ids)) in &wanted.tables {
            let fields: Vec<&str> = fields.iter().copied().collect();
            let sys_ids: Vec<&str> = sys_ids.iter().map(String::as_str).collect();
            for chunk in sys_ids.chunks(LOOKUP_CHUNK) {
                let mut found = match Self::lookup(config, table, chunk, &fields) {
                    Ok(found) => found,
                    Err(e @ (PluginError::RateLimited(_) | PluginError::Transient(_))) => return Err(e),
                    Err(e) => {
                        xla_sdk::log::warn(&format!(
                            "cannot read names from table `{table}` ({e}); its sys_ids are kept as dimension values"
                        ));
                        HashMap::new()
                    }
                };
                for sys_id in chunk {
                    names.insert(table, sys_id, found.remove(*sys_id));
                }
            }
        }
        Ok(())
    }

    /// `fields` of records `sys_ids` of `table`, by sys_id.
    fn lookup(
        config: &Config,
        table: &str,
        sys_ids: &[&str],
        fields: &[&str],
    ) -> Result<HashMap<String, reference::Resolved>, PluginError> {
        let response = table_api::lookup_request(config, table, sys_ids, fields)?.send()?;
        let response = table_api::check_status(response, table)?;
        let records = table_api::records(&response.body).map_err(|_| {
            PluginError::Transient(format!(
                "reading names from table `{table}`: the answer was not a list of records"
            ))
        })?;
        Ok(records
            .iter()
            .filter_map(|record| {
                let sys_id = record.get("sys_id")?.to_string();
                let values = fields
                    .iter()
                    .map(|f| (f.to_string(), record.get(f).map(|v| v.to_string()).unwrap_or_default()))
                    .collect();
                Some((sys_id, values))
            })
            .collect())
    }

    /// The answer to a 2xx that was not a page: nothing stored, the same
    /// page asked for again with half the limit, or an error at the floor.
    fn smaller_page(
        config: &Config,
        mut cursor: Cursor,
        table: Table,
        offset: u32,
        limit: u32,
        why: &NotAPage,
    ) -> Result<Batch, PluginError> {
        let floor = MIN_PAGE_SIZE.min(config.page_size);
        if limit <= floor {
            let hint = match why {
                NotAPage::WebPage => "; wake the instance if it is hibernating",
                _ => "",
            };
            return Err(PluginError::Transient(format!(
                "reading table `{table}` with sysparm_limit={limit}, the smallest page: {why}; nothing from it \
                 was stored{hint}"
            )));
        }
        let smaller = (limit / 2).max(floor);
        xla_sdk::log::warn(&format!(
            "reading table `{table}` with sysparm_limit={limit}: {why}; nothing from it was stored, and the page is \
             asked for again with sysparm_limit={smaller} for the rest of this sync"
        ));
        (cursor.table, cursor.offset, cursor.limit) = (Some(table), offset, Some(smaller));
        Ok(Batch {
            changes: Changes::default(),
            cursor: Some(cursor.encode()?),
            more: true,
        })
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
                    "1 when a task SLA breached (final in any stage), 0 when it completed in time; running SLAs \
                     give none yet and cancelled ones are retracted.",
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
        let page = table_api::fetch(table_api::probe_request(config, table)?, table)?;
        match page.rows()? {
            Ok(_) => Ok(()),
            // A web page will not go away by asking again: say what it is.
            Err(NotAPage::WebPage) => page.records().map(drop),
            // A cancelled or queued one-record read: the instance is busy.
            Err(why) => Err(PluginError::Transient(format!("checking table `{table}`: {why}"))),
        }
    }

    fn pull(config: &Config, cursor: Option<&str>) -> Result<Batch, PluginError> {
        config.validate()?;
        let mut cursor = Cursor::decode(cursor)?;
        // A table dropped from the config since the cursor was written
        // restarts the walk; its watermark is kept should it come back.
        let (table, offset) = match cursor.table.filter(|t| config.tables.contains(t)) {
            Some(table) => (table, cursor.offset),
            None => {
                // A new sync: names are read afresh, pages are full size again.
                cursor.reading = false;
                cursor.limit = None;
                NAMES.with(|names| names.borrow_mut().clear());
                (config.tables[0], 0)
            }
        };
        let limit = cursor.limit.map_or(config.page_size, |l| l.clamp(1, config.page_size));
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
        let page = table_api::fetch(table_api::page_request(config, table, &query, offset, limit)?, table)?;
        let records = match page.rows()? {
            Ok(records) => records,
            Err(why) => return Self::smaller_page(config, cursor, table, offset, limit, &why),
        };
        let last = Self::keyset(table, &records, after.as_ref())?;
        let changes = NAMES.with(|names| {
            let mut names = names.borrow_mut();
            let mut wanted = Wanted::default();
            for fields in &records {
                wanted.add(fields, table.walks(), &names);
            }
            if !wanted.is_empty() {
                Self::resolve(config, &wanted, &mut names)?;
            }
            Self::map(
                |_, _| Ok(table),
                &records,
                &names,
                "its table did not return it (the record is gone, or the account may not read that table)",
            )
        })?;
        if let Some(mark) = last {
            cursor.watermarks.insert(table, mark);
        }
        let read_any = !records.is_empty();
        let more = match Self::step(&page, read_any, offset, limit) {
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
                if cursor.table.is_none() {
                    cursor.limit = None;
                }
                cursor.table.is_some()
            }
        };
        Ok(Batch {
            changes,
            cursor: Some(cursor.encode()?),
            more,
        })
    }

    fn parse(_config: &Config, media_type: &str, body: &[u8]) -> Result<Changes, PluginError> {
        let declared = media_table(media_type)?;
        let records = table_api::records(body).map_err(|e| {
            PluginError::BadData(match e {
                table_api::BodyError::Error(message) => format!("the body is a ServiceNow error: {message}"),
                table_api::BodyError::Html => "the body is a web page, not a Table API body".into(),
                table_api::BodyError::Shape(why) | table_api::BodyError::NotJson(why) => why,
            })
        })?;
        let table_of = |i: usize, fields: &Fields<'_>| {
            detect_table(fields, declared).ok_or_else(|| {
                PluginError::BadData(format!(
                    "cannot tell which table record #{i} comes from; send it as `application/json; table=incident` \
                     (or sc_req_item, task_sla)"
                ))
            })
        };
        // No network here: a reference given only as a sys_id keeps it.
        Self::map(
            table_of,
            &records,
            &Names::default(),
            "parse reads no other table to resolve it",
        )
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

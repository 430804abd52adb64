//! Device-day rows into records of the Technical layer.
//!
//! Each row gives one record with up to seven values, with id
//! `<device>/<date>`, at the day's start (UTC), with dimensions `device`,
//! `device_model` and `country`. A day means a UTC day: a `date` cell that
//! holds a date and time (with `Z`, an offset, or no zone, see
//! [`crate::time`]) counts on the UTC day of that instant. A query that lists
//! events instead (a `time` column, e.g. `list device.name, time,
//! boot_duration`) gives one record per row at that instant, with id
//! `<device>/<UTC date-time>`.
//! Columns are found by name, so the admin's query may order them freely and
//! use either the NQL path (`dex.score`) or the metric name (`dex_score`).
//! A null or empty metric cell emits nothing for that metric (a device with
//! no boot that day has no boot duration); a value that is not a number, or
//! out of its range, is `BadData` naming the device, the day and the column.

use crate::nql::{Cell, Rows};
use crate::time::{self, Stamp};
use xla_sdk::time::{DAY_MS, format_full_date, format_rfc3339_utc};
use xla_sdk::{Layer, PluginError, Record};

/// A metric: its name, accepted column names, and its valid range.
struct Metric {
    name: &'static str,
    columns: &'static [&'static str],
    range: (f64, f64),
}

const METRICS: [Metric; 7] = [
    Metric {
        name: "dex_score",
        columns: &["dex.score", "dex_score"],
        range: (0.0, 100.0),
    },
    Metric {
        name: "boot_duration_seconds",
        columns: &["boot.duration", "boot_duration", "boot_duration_seconds"],
        range: (0.0, f64::MAX),
    },
    Metric {
        name: "logon_duration_seconds",
        columns: &["logon.duration", "logon_duration", "logon_duration_seconds"],
        range: (0.0, f64::MAX),
    },
    Metric {
        name: "system_crashes",
        columns: &[
            "system_crashes",
            "system_crashes.count",
            "device_performance.system_crashes",
        ],
        range: (0.0, f64::MAX),
    },
    Metric {
        name: "free_system_drive_percent",
        columns: &["free_system_drive_percent", "free_system_drive_space_percent"],
        range: (0.0, 100.0),
    },
    Metric {
        name: "high_cpu_time_ratio",
        columns: &["high_cpu_time_ratio"],
        range: (0.0, 1.0),
    },
    Metric {
        name: "high_memory_time_ratio",
        columns: &["high_memory_time_ratio"],
        range: (0.0, 1.0),
    },
];

/// Every metric name the connector emits, with unit and meaning.
pub const METRIC_INFO: [(&str, &str, &str); 7] = [
    (
        "dex_score",
        "score 0-100",
        "Nexthink DEX score of the device for the day; below 70 is average or frustrating.",
    ),
    (
        "boot_duration_seconds",
        "seconds",
        "Time from power-on to the logon screen.",
    ),
    (
        "logon_duration_seconds",
        "seconds",
        "Time from credentials to a usable desktop.",
    ),
    (
        "system_crashes",
        "count",
        "System crashes (BSOD, hard resets) in the day.",
    ),
    (
        "free_system_drive_percent",
        "percent",
        "Free space on the system drive.",
    ),
    (
        "high_cpu_time_ratio",
        "ratio 0-1",
        "Share of the day's active time with CPU above threshold.",
    ),
    (
        "high_memory_time_ratio",
        "ratio 0-1",
        "Share of the day's active time with memory above threshold.",
    ),
];

const DEVICE: &[&str] = &["device.name", "device_name", "device"];
const MODEL: &[&str] = &["device.hardware.model", "device.model", "device_model"];
const COUNTRY: &[&str] = &["user.country", "device.location.country", "country"];
const DATE: &[&str] = &["date", "day", "dex.date"];
const TIME: &[&str] = &["time", "timestamp", "date_time"];

fn column(headers: &[String], names: &[&str]) -> Option<usize> {
    names
        .iter()
        .find_map(|name| headers.iter().position(|h| h.eq_ignore_ascii_case(name)))
}

/// The records of a table of results.
#[derive(Debug, Default, PartialEq)]
pub struct Mapped {
    /// One per row that has a value.
    pub records: Vec<Record>,
    /// Whether some time had no zone (read as UTC: see [`crate::time`]).
    pub zoneless: bool,
}

/// Maps every row; `BadData` on the first bad one.
pub fn records(rows: &Rows) -> Result<Mapped, PluginError> {
    let headers = &rows.headers;
    let need_one = |names: &[&[&str]]| {
        names.iter().find_map(|n| column(headers, n)).ok_or_else(|| {
            PluginError::BadData(format!(
                "the results have no `{}` column (columns: {})",
                names[0][0],
                headers.join(", ")
            ))
        })
    };
    let device = need_one(&[DEVICE])?;
    let when = match column(headers, TIME) {
        Some(at) => When::Time(at),
        None => When::Day(need_one(&[DATE])?),
    };
    let (model, country) = (column(headers, MODEL), column(headers, COUNTRY));
    let metrics: Vec<(&Metric, usize)> = METRICS
        .iter()
        .filter_map(|m| column(headers, m.columns).map(|i| (m, i)))
        .collect();
    if metrics.is_empty() {
        return Err(PluginError::BadData(format!(
            "the results have none of the metric columns (dex.score, boot.duration, ...); columns: {}",
            headers.join(", ")
        )));
    }
    let mut out = Mapped::default();
    for (i, row) in rows.data.iter().enumerate() {
        let text = |at: Option<usize>| at.and_then(|a| row.get(a)).map(cell_text).unwrap_or_default();
        let name = text(Some(device));
        if name.is_empty() {
            return Err(PluginError::BadData(format!("row {i} has no device name")));
        }
        let (column, stamp) = when.read(row, headers)?;
        let stamp = stamp.ok_or_else(|| {
            PluginError::BadData(format!(
                "{name}: row {i} has {column} `{}`, not a date (YYYY-MM-DD) or a date and time",
                text(Some(when.index()))
            ))
        })?;
        out.zoneless |= matches!(stamp, Stamp::Zoneless(_));
        let (id, at) = match when {
            When::Time(_) => {
                let at = stamp.as_utc_ms();
                (format!("{name}/{}", format_rfc3339_utc(at)), at)
            }
            When::Day(_) => {
                let day = stamp.utc_day();
                (format!("{name}/{}", format_full_date(day)), day * DAY_MS)
            }
        };
        let mut record = Record::new(id, at)
            .dim("device", name.clone())
            .dim("device_model", text(model))
            .dim("country", text(country));
        for (metric, at) in &metrics {
            let Some(value) = number(row.get(*at), &record.id, &headers[*at])? else {
                continue;
            };
            if !(metric.range.0..=metric.range.1).contains(&value) {
                return Err(PluginError::BadData(format!(
                    "{}: `{}` = {value} is outside {}..={}",
                    record.id, headers[*at], metric.range.0, metric.range.1
                )));
            }
            record.push(metric.name, Layer::Technical, value);
        }
        // A device with no value that day (every cell empty) has nothing to say.
        if !record.values.is_empty() {
            out.records.push(record);
        }
    }
    Ok(out)
}

/// Where a row's time is: an event time, or the day of a daily row.
#[derive(Clone, Copy)]
enum When {
    Time(usize),
    Day(usize),
}

impl When {
    fn index(self) -> usize {
        match self {
            When::Time(at) | When::Day(at) => at,
        }
    }

    /// The column's name and its stamp (`None` when it does not parse).
    fn read<'h>(self, row: &[Cell], headers: &'h [String]) -> Result<(&'h str, Option<Stamp>), PluginError> {
        let at = self.index();
        let text = row.get(at).map(cell_text).unwrap_or_default();
        Ok((headers[at].as_str(), time::parse(&text)))
    }
}

fn cell_text(cell: &Cell) -> String {
    match cell {
        Cell::Text(t) => t.trim().to_string(),
        Cell::Number(n) => n.to_string(),
        Cell::Null => String::new(),
    }
}

fn number(cell: Option<&Cell>, id: &str, column: &str) -> Result<Option<f64>, PluginError> {
    let value = match cell {
        None | Some(Cell::Null) => return Ok(None),
        Some(Cell::Number(n)) => *n,
        Some(Cell::Text(t)) if t.trim().is_empty() => return Ok(None),
        Some(Cell::Text(t)) => t
            .trim()
            .parse::<f64>()
            .map_err(|_| PluginError::BadData(format!("{id}: `{column}` = `{t}` is not a number")))?,
    };
    if !value.is_finite() {
        return Err(PluginError::BadData(format!(
            "{id}: `{column}` = {value} is not a finite number"
        )));
    }
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(headers: &[&str], data: &[&[&str]]) -> Rows {
        Rows {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            data: data
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|c| {
                            if c.is_empty() {
                                Cell::Null
                            } else {
                                Cell::Text(c.to_string())
                            }
                        })
                        .collect()
                })
                .collect(),
        }
    }

    #[test]
    fn maps_rows_and_skips_empty_cells() {
        let r = rows(
            &[
                "date",
                "device.name",
                "device.hardware.model",
                "user.country",
                "dex.score",
                "system_crashes",
            ],
            &[&["2026-10-02", "LPT-000001", "Latitude 7440", "Finland", "78.4", ""]],
        );
        let out = records(&r).expect("maps").records;
        assert_eq!(out.len(), 1);
        let o = &out[0];
        assert_eq!(o.id, "LPT-000001/2026-10-02");
        assert_eq!(o.values.len(), 1, "the empty crash count is no value");
        assert_eq!(o.metric("dex_score"), Some(78.4));
        assert_eq!(o.values[0].layer, Layer::Technical);
        assert_eq!(o.at, 20_728 * DAY_MS);
        assert_eq!(o.dimension("device_model"), Some("Latitude 7440"));
        assert_eq!(o.dimension("country"), Some("Finland"));
    }

    /// Field case 11-nexthink-times.json, by kind: a day is a UTC day,
    /// whatever shape the time comes in. 00:30 at +02:00 is the evening
    /// before in UTC.
    #[test]
    fn a_date_and_time_counts_on_its_utc_day() {
        for (cell, day) in [
            ("2026-10-03T00:30:00+02:00", "2026-10-02"),
            ("2026-10-02T22:30:00Z", "2026-10-02"),
            ("2026-10-02 23:59:59", "2026-10-02"),
            ("2026-10-02", "2026-10-02"),
        ] {
            let r = rows(&["device.name", "date", "dex.score"], &[&["LPT-7", cell, "70"]]);
            let mapped = records(&r).expect("maps");
            assert_eq!(mapped.records[0].id, format!("LPT-7/{day}"), "{cell}");
            assert_eq!(mapped.zoneless, cell == "2026-10-02 23:59:59", "{cell}");
        }
    }

    #[test]
    fn event_rows_keep_their_instant() {
        let r = rows(
            &["device.name", "time", "boot_duration"],
            &[&["LAP-00042", "2026-10-03T00:30:00+02:00", "48.2"]],
        );
        let record = &records(&r).expect("maps").records[0];
        assert_eq!(record.id, "LAP-00042/2026-10-02T22:30:00Z");
        assert_eq!(record.at, 20_728 * DAY_MS + 22 * 3_600_000 + 30 * 60_000);
        assert_eq!(record.metric("boot_duration_seconds"), Some(48.2));
    }

    #[test]
    fn bad_values_name_the_device_day_and_column() {
        let r = rows(
            &["device.name", "date", "dex.score"],
            &[&["LPT-7", "2026-10-02", "high"]],
        );
        let Err(PluginError::BadData(m)) = records(&r) else {
            panic!("BadData")
        };
        assert!(m.contains("LPT-7/2026-10-02") && m.contains("dex.score"), "{m}");
        let r = rows(
            &["device.name", "date", "high_cpu_time_ratio"],
            &[&["LPT-7", "2026-10-02", "1.5"]],
        );
        assert!(matches!(records(&r), Err(PluginError::BadData(_))));
        let r = rows(&["device.name", "date", "dex.score"], &[&["LPT-7", "02/10/2026", "70"]]);
        assert!(matches!(records(&r), Err(PluginError::BadData(_))));
        let r = rows(&["device.name", "dex.score"], &[]);
        assert!(matches!(records(&r), Err(PluginError::BadData(_))));
    }
}

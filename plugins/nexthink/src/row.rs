//! Device-day rows into observations of the Technical layer.
//!
//! Each row gives up to seven observations with id `<device>/<date>`, at the
//! day's start (UTC), with dimensions `device`, `device_model` and `country`.
//! Columns are found by name, so the admin's query may order them freely and
//! use either the NQL path (`dex.score`) or the metric name (`dex_score`).
//! A null or empty metric cell emits nothing for that metric (a device with
//! no boot that day has no boot duration); a value that is not a number, or
//! out of its range, is `BadData` naming the device, the day and the column.

use crate::nql::{Cell, Rows};
use xla_sdk::time::{DAY_MS, format_full_date, parse_full_date};
use xla_sdk::{Layer, Observation, PluginError};

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

fn column(headers: &[String], names: &[&str]) -> Option<usize> {
    names
        .iter()
        .find_map(|name| headers.iter().position(|h| h.eq_ignore_ascii_case(name)))
}

/// Maps every row; `BadData` on the first bad one.
pub fn observations(rows: &Rows) -> Result<Vec<Observation>, PluginError> {
    let headers = &rows.headers;
    let need = |names: &[&str]| {
        column(headers, names).ok_or_else(|| {
            PluginError::BadData(format!(
                "the results have no `{}` column (columns: {})",
                names[0],
                headers.join(", ")
            ))
        })
    };
    let (device, day) = (need(DEVICE)?, need(DATE)?);
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
    let mut out = Vec::with_capacity(rows.data.len() * metrics.len());
    for (i, row) in rows.data.iter().enumerate() {
        let text = |at: Option<usize>| at.and_then(|a| row.get(a)).map(cell_text).unwrap_or_default();
        let name = text(Some(device));
        if name.is_empty() {
            return Err(PluginError::BadData(format!("row {i} has no device name")));
        }
        let day_text = text(Some(day));
        let days = parse_full_date(day_text.get(..10).unwrap_or(&day_text))
            .ok_or_else(|| PluginError::BadData(format!("{name}: row {i} has date `{day_text}`, not YYYY-MM-DD")))?;
        let day_label = format_full_date(days);
        let id = format!("{name}/{day_label}");
        let (model, country) = (text(model), text(country));
        for (metric, at) in &metrics {
            let Some(value) = number(row.get(*at), &id, &headers[*at])? else {
                continue;
            };
            if !(metric.range.0..=metric.range.1).contains(&value) {
                return Err(PluginError::BadData(format!(
                    "{id}: `{}` = {value} is outside {}..={}",
                    headers[*at], metric.range.0, metric.range.1
                )));
            }
            out.push(
                Observation::new(id.clone(), metric.name, Layer::Technical, value, days * DAY_MS)
                    .dim("device", name.clone())
                    .dim("device_model", model.clone())
                    .dim("country", country.clone()),
            );
        }
    }
    Ok(out)
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
        let out = observations(&r).expect("maps");
        assert_eq!(out.len(), 1);
        let o = &out[0];
        assert_eq!(
            (o.id.as_str(), o.metric.as_str(), o.value),
            ("LPT-000001/2026-10-02", "dex_score", 78.4)
        );
        assert_eq!(o.at, 20_728 * DAY_MS);
        assert_eq!(o.layer, Layer::Technical);
        assert_eq!(o.dimension("device_model"), Some("Latitude 7440"));
        assert_eq!(o.dimension("country"), Some("Finland"));
    }

    #[test]
    fn bad_values_name_the_device_day_and_column() {
        let r = rows(
            &["device.name", "date", "dex.score"],
            &[&["LPT-7", "2026-10-02", "high"]],
        );
        let Err(PluginError::BadData(m)) = observations(&r) else {
            panic!("BadData")
        };
        assert!(m.contains("LPT-7/2026-10-02") && m.contains("dex.score"), "{m}");
        let r = rows(
            &["device.name", "date", "high_cpu_time_ratio"],
            &[&["LPT-7", "2026-10-02", "1.5"]],
        );
        assert!(matches!(observations(&r), Err(PluginError::BadData(_))));
        let r = rows(&["device.name", "date", "dex.score"], &[&["LPT-7", "02/10/2026", "70"]]);
        assert!(matches!(observations(&r), Err(PluginError::BadData(_))));
        let r = rows(&["device.name", "dex.score"], &[]);
        assert!(matches!(observations(&r), Err(PluginError::BadData(_))));
    }
}

//! Numbers and times as the pages show them: one decimal, a sign where a
//! change is shown, a dash for no value; the raw number goes beside in a
//! `data-value` attribute for tests and tools.

use chrono::{DateTime, SecondsFormat, Utc};

/// No value.
pub const NONE: &str = "–";

/// `value` with one decimal, or a dash.
pub fn number(value: Option<f64>) -> String {
    value.map_or_else(|| NONE.to_string(), |v| format!("{v:.1}"))
}

/// `value` with a sign and one decimal (a change), or a dash.
pub fn signed(value: Option<f64>) -> String {
    value.map_or_else(|| NONE.to_string(), |v| format!("{v:+.1}"))
}

/// The raw value for a `data-value` attribute (empty without one).
pub fn raw(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// Money with no decimals.
pub fn money(value: f64) -> String {
    format!("{value:.0}")
}

/// Unix ms as RFC 3339 UTC to the second, or a dash.
pub fn time(ms: Option<i64>) -> String {
    ms.and_then(DateTime::<Utc>::from_timestamp_millis)
        .map_or_else(|| NONE.to_string(), |t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// Seconds as a short duration (`45 s`, `12 min`, `3.5 h`, `2.0 d`).
pub fn age(seconds: Option<f64>) -> String {
    match seconds {
        None => NONE.to_string(),
        Some(s) if s < 120.0 => format!("{s:.0} s"),
        Some(s) if s < 7_200.0 => format!("{:.0} min", s / 60.0),
        Some(s) if s < 172_800.0 => format!("{:.1} h", s / 3_600.0),
        Some(s) => format!("{:.1} d", s / 86_400.0),
    }
}

/// A met/not-met flag in words (colour is never the only signal).
pub fn met(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "Met",
        Some(false) => "Not met",
        None => "No target",
    }
}

/// JSON for a chart's `data-chart` attribute (the template escapes it for HTML).
pub fn chart<T: serde::Serialize>(spec: &T) -> String {
    serde_json::to_string(spec).unwrap_or_else(|_| "null".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_one_decimal_and_a_dash_for_none() {
        assert_eq!(number(Some(52.25)), "52.2");
        assert_eq!(number(None), NONE);
        assert_eq!(signed(Some(1.44)), "+1.4");
        assert_eq!(signed(Some(-3.0)), "-3.0");
        assert_eq!(raw(Some(0.5)), "0.5");
        assert_eq!(time(Some(0)), "1970-01-01T00:00:00Z");
        assert_eq!(age(Some(90.0)), "90 s");
        assert_eq!(age(Some(7_200.0)), "2.0 h");
        assert_eq!(met(Some(false)), "Not met");
    }
}

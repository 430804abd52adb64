//! Timestamps as Nexthink writes them, and which instant they name.
//!
//! NQL answers in the instance's regional time zone unless the request sends
//! `x-utc-times: true` (vendor OpenAPI; `SOURCES.md`), which every call of
//! this connector does ([`crate::nql::UTC_HEADER`]). The shapes differ by
//! API version and format (field case `11-nexthink-times.json`): v1 gives
//! `executionDateTime` as an object of date parts, v2 as an ISO string, and
//! time values may come with `Z`, with an offset, or without a zone. This
//! module reads every one of those shapes and says which it was, so that a
//! time without a zone is never taken for UTC without a reason: the caller
//! decides (the answer was asked for UTC and its execution time agrees
//! with the clock, or the operator is told).

use serde_json::Value;
use xla_sdk::time::{DAY_MS, days_from_civil, parse_full_date, parse_partial_time};

/// A timestamp read from an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// A date and time with `Z` or an offset: this exact instant (unix ms).
    Instant(i64),
    /// A date and time without a zone, in unix ms as if it were UTC: UTC
    /// when the request asked for it, else the instance's regional time.
    Zoneless(i64),
    /// A date alone (`YYYY-MM-DD`): days since 1970-01-01.
    Day(i64),
}

impl Stamp {
    /// Unix ms, reading a zoneless time as UTC and a day as its start.
    pub fn as_utc_ms(self) -> i64 {
        match self {
            Stamp::Instant(ms) | Stamp::Zoneless(ms) => ms,
            Stamp::Day(days) => days * DAY_MS,
        }
    }

    /// The UTC day it falls on.
    pub fn utc_day(self) -> i64 {
        self.as_utc_ms().div_euclid(DAY_MS)
    }
}

/// Reads `YYYY-MM-DD`, or a date and time `YYYY-MM-DD[T| ]HH:MM[:SS[.fraction]]`
/// followed by nothing, `Z`, ` UTC`, or an offset `±HH:MM`, `±HHMM`, `±HH`.
/// `None` for anything else.
pub fn parse(text: &str) -> Option<Stamp> {
    let text = text.trim();
    if text.len() == 10 {
        return parse_full_date(text).map(Stamp::Day);
    }
    let days = parse_full_date(text.get(..10)?)?;
    if !matches!(text.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let rest = text.get(11..)?;
    let (clock, zone) = split_zone(rest)?;
    let clock = if clock.len() == 5 {
        format!("{clock}:00")
    } else {
        clock.to_string()
    };
    let local = days * DAY_MS + parse_partial_time(&clock)?;
    Some(match zone {
        None => Stamp::Zoneless(local),
        Some(offset_ms) => Stamp::Instant(local - offset_ms),
    })
}

/// Splits `HH:MM:SS.fff+02:00` into the clock and the zone's offset from
/// UTC in ms (`None`: no zone written).
fn split_zone(rest: &str) -> Option<(&str, Option<i64>)> {
    for utc in ["Z", "z", " UTC", "UTC"] {
        if let Some(clock) = rest.strip_suffix(utc) {
            return Some((clock, Some(0)));
        }
    }
    // A sign after the clock's first eight characters starts an offset.
    let Some(at) = rest
        .char_indices()
        .skip(5)
        .find(|(_, c)| *c == '+' || *c == '-')
        .map(|(i, _)| i)
    else {
        return Some((rest, None));
    };
    let (clock, offset) = rest.split_at(at);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let body = &offset[1..];
    let digits: String = match body.len() {
        2 | 4 => body.to_string(),
        5 if body.as_bytes()[2] == b':' => body.replacen(':', "", 1),
        _ => return None,
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i64 = digits.get(..2)?.parse().ok()?;
    let minutes: i64 = digits
        .get(2..)
        .filter(|m| !m.is_empty())
        .map_or(Some(0), |m| m.parse().ok())?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some((clock, Some(sign * (hours * 60 + minutes) * 60_000)))
}

/// `executionDateTime` of an execute answer: v2's string, or v1's object
/// of date parts (`{"year", "month", "day", "hour", "minute", "second"}`),
/// which has no zone. `None` when absent or unreadable.
pub fn execution_time(answer: &Value) -> Option<Stamp> {
    match answer.get("executionDateTime")? {
        Value::String(text) => parse(text),
        Value::Object(parts) => {
            let part = |name: &str| parts.get(name).and_then(Value::as_i64);
            let (year, month, day) = (part("year")?, part("month")?, part("day")?);
            let (hour, minute, second) = (part("hour")?, part("minute")?, part("second").unwrap_or(0));
            if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 59 {
                return None;
            }
            let days = days_from_civil(year, month, day);
            Some(Stamp::Zoneless(
                days * DAY_MS + ((hour * 60 + minute) * 60 + second) * 1000,
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-10-02T22:30:00Z.
    const AT: i64 = 1_790_980_200_000;

    #[test]
    fn every_shape_names_the_same_instant() {
        for text in [
            "2026-10-02T22:30:00Z",
            "2026-10-02T22:30:00.000Z",
            "2026-10-02 22:30:00 UTC",
            "2026-10-03T00:30:00+02:00",
            "2026-10-03T00:30:00+0200",
            "2026-10-03T00:30+02",
            "2026-10-02T17:30:00-05:00",
        ] {
            assert_eq!(parse(text), Some(Stamp::Instant(AT)), "{text}");
        }
        assert_eq!(parse("2026-10-02 22:30:00"), Some(Stamp::Zoneless(AT)));
        assert_eq!(parse("2026-10-02T22:30"), Some(Stamp::Zoneless(AT)));
        assert_eq!(parse("2026-10-02"), Some(Stamp::Day(20_728)));
        assert_eq!(parse("2026-10-03T00:30:00+02:00").map(Stamp::utc_day), Some(20_728));
        for bad in [
            "",
            "2026-10-02X22:30:00",
            "2026-10-02T25:00:00Z",
            "2026-10-02T22:30:00+2:0",
            "02/10/2026",
            "2026-10-02T22:30:00+24:00",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    /// Field case 11-nexthink-times.json: v1's object has no zone, v2's
    /// string has one.
    #[test]
    fn execution_times_of_v1_and_v2() {
        let v1 = serde_json::json!({"executionDateTime": {"year": 2026, "month": 10, "day": 3, "hour": 16, "minute": 5, "second": 9}});
        let v2 = serde_json::json!({"executionDateTime": "2026-10-03T14:05:09Z"});
        let utc = 1_791_036_309_000;
        assert_eq!(execution_time(&v2), Some(Stamp::Instant(utc)));
        assert_eq!(execution_time(&v1), Some(Stamp::Zoneless(utc + 2 * 3_600_000)));
        assert_eq!(execution_time(&serde_json::json!({})), None);
        assert_eq!(
            execution_time(&serde_json::json!({"executionDateTime": {"year": 2026}})),
            None
        );
    }
}

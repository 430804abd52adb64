//! Calendar arithmetic and RFC 3339 text for connectors, without a calendar
//! crate: sources send a handful of fixed UTC shapes, and the proleptic
//! Gregorian arithmetic they need fits in a page.
//!
//! Times are unix milliseconds (`i64`, UTC, what [`Observation::at`] holds);
//! days are days since 1970-01-01 (`i64`, negative before it). The day
//! arithmetic is Howard Hinnant's `days_from_civil` and `civil_from_days`
//! (<https://howardhinnant.github.io/date_algorithms.html>), exact over the
//! whole `i64` day range a four-digit year can name.
//!
//! The text forms are those of RFC 3339 section 5.6: `full-date`
//! (`2026-10-03`), `partial-time` (`14:22:09`, optionally `.250`) and a UTC
//! `date-time` (`2026-10-03T14:22:09Z`). A vendor's own shape (ServiceNow's
//! `2026-10-03 14:22:09`, say) is the connector's knowledge: it splits its
//! text and calls the pieces here. Leap seconds (`:60`) are refused: unix
//! time has none.
//!
//! [`Observation::at`]: crate::Observation::at

/// A day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// Whether `year` (proleptic Gregorian, astronomical numbering) is a leap year.
pub fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1-12) of `year`; `None` for a month outside 1-12.
pub fn days_in_month(year: i64, month: i64) -> Option<i64> {
    match month {
        2 if is_leap_year(year) => Some(29),
        2 => Some(28),
        4 | 6 | 9 | 11 => Some(30),
        1 | 3 | 5 | 7 | 8 | 10 | 12 => Some(31),
        _ => None,
    }
}

/// Days since 1970-01-01 of `year`-`month`-`day` (month 1-12, day 1-31; not
/// checked: [`parse_full_date`] checks text). Hinnant's `days_from_civil`.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (`year`, `month` 1-12, `day` 1-31) of a day since 1970-01-01. Hinnant's
/// `civil_from_days`.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The day of a unix-ms time and the milliseconds since that day's
/// midnight (UTC): `(days, 0..DAY_MS)`, also before 1970.
pub fn split_unix_ms(ms: i64) -> (i64, i64) {
    (ms.div_euclid(DAY_MS), ms.rem_euclid(DAY_MS))
}

/// The digits of `text[range]` as a number; `None` unless every byte there
/// is an ASCII digit (no sign, no space).
fn digits(text: &str, range: std::ops::Range<usize>) -> Option<i64> {
    let part = text.get(range)?.as_bytes();
    // At most 18 digits fit an i64 whatever they are; callers read 2 to 4.
    if part.is_empty() || part.len() > 18 {
        return None;
    }
    // Summed by hand: `str::parse` checks a sign and overflow on every call,
    // and a page of records parses six date-times each.
    part.iter()
        .try_fold(0i64, |n, b| b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0')))
}

/// Days since 1970-01-01 of an RFC 3339 `full-date`, `YYYY-MM-DD`
/// (`2026-10-03`); `None` unless the text is exactly that shape and a real
/// date (`2026-02-29` is not).
pub fn parse_full_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (digits(text, 0..4)?, digits(text, 5..7)?, digits(text, 8..10)?);
    if day < 1 || day > days_in_month(year, month)? {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// The RFC 3339 `full-date` (`YYYY-MM-DD`) of a day since 1970-01-01.
pub fn format_full_date(days: i64) -> String {
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Milliseconds since midnight of an RFC 3339 `partial-time`:
/// `HH:MM:SS`, optionally followed by `.` and one or more digits (cut to
/// milliseconds, not rounded). `None` for any other shape, an hour past 23,
/// a minute or second past 59.
pub fn parse_partial_time(text: &str) -> Option<i64> {
    let (main, fraction) = match text.split_once('.') {
        Some((main, fraction)) => (main, Some(fraction)),
        None => (text, None),
    };
    let b = main.as_bytes();
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (hour, minute, second) = (digits(main, 0..2)?, digits(main, 3..5)?, digits(main, 6..8)?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let millis = match fraction {
        None => 0,
        Some(f) => milliseconds(f)?,
    };
    Some(((hour * 60 + minute) * 60 + second) * 1_000 + millis)
}

/// The milliseconds of a `time-secfrac` without its dot: `25` is 250 ms,
/// `123456` is 123 ms.
fn milliseconds(fraction: &str) -> Option<i64> {
    if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let first_three: String = fraction.chars().chain("00".chars()).take(3).collect();
    first_three.parse().ok()
}

/// The `HH:MM:SS` of milliseconds since midnight (any milliseconds dropped;
/// values past a day wrap).
pub fn format_partial_time(ms_of_day: i64) -> String {
    let seconds = ms_of_day.rem_euclid(DAY_MS) / 1_000;
    format!("{:02}:{:02}:{:02}", seconds / 3_600, seconds % 3_600 / 60, seconds % 60)
}

/// Unix milliseconds of an RFC 3339 `date-time` in UTC:
/// `YYYY-MM-DDTHH:MM:SS[.fraction]` ending in `Z` or `+00:00`
/// (`2026-10-03T14:22:09Z`, `2026-10-03T14:22:09.25+00:00`).
///
/// Only UTC is read, and only with upper-case `T` and `Z` (RFC 3339 section
/// 5.6 lets an application restrict itself so): a connector whose watermark
/// is the source's own text must not read `+02:00` as a different instant
/// from the one it sends back. `None` for anything else.
pub fn parse_rfc3339_utc(text: &str) -> Option<i64> {
    let body = text.strip_suffix('Z').or_else(|| text.strip_suffix("+00:00"))?;
    let (date, time) = body.split_once('T')?;
    Some(parse_full_date(date)? * DAY_MS + parse_partial_time(time)?)
}

/// The RFC 3339 UTC `date-time` of unix milliseconds:
/// `2026-10-03T14:22:09Z`, with `.250` before the `Z` when the time has
/// milliseconds.
pub fn format_rfc3339_utc(ms: i64) -> String {
    let (days, ms_of_day) = split_unix_ms(ms);
    let date = format_full_date(days);
    let time = format_partial_time(ms_of_day);
    match ms_of_day % 1_000 {
        0 => format!("{date}T{time}Z"),
        millis => format!("{date}T{time}.{millis:03}Z"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_over_leap_years_and_before_1970() {
        for days in [-719_468, -1, 0, 59, 11_016, 19_782, 20_727, 20_816, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{days}");
            assert_eq!(parse_full_date(&format_full_date(days)), Some(days), "{days}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
        assert_eq!(parse_full_date("2026-10-01"), Some(20_727));
        assert_eq!(
            parse_full_date("2028-02-29").map(|d| format_full_date(d + 1)),
            Some("2028-03-01".into())
        );
        assert!(is_leap_year(2000) && is_leap_year(2024) && !is_leap_year(1900) && !is_leap_year(2026));
    }

    #[test]
    fn full_dates_refuse_other_shapes_and_impossible_days() {
        for bad in [
            "",
            "2026-02-29",
            "1900-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-10-00",
            "2026-04-31",
            "2026-1-01",
            "2026-10-01T00:00",
            "+026-10-01",
            "2026-1a-01",
            "2026/10/01",
            "２０２６-10-01",
        ] {
            assert_eq!(parse_full_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn partial_times_read_fractions_as_milliseconds() {
        assert_eq!(parse_partial_time("00:00:00"), Some(0));
        assert_eq!(parse_partial_time("14:22:09"), Some(51_729_000));
        assert_eq!(parse_partial_time("14:22:09.25"), Some(51_729_250));
        assert_eq!(parse_partial_time("14:22:09.123456"), Some(51_729_123));
        assert_eq!(parse_partial_time("23:59:59.999"), Some(DAY_MS - 1));
        for bad in [
            "24:00:00",
            "14:60:00",
            "14:22:60",
            "14:22:09.",
            "14:22:09.x",
            "14:22",
            "4:22:09",
            "14-22-09",
        ] {
            assert_eq!(parse_partial_time(bad), None, "{bad}");
        }
        assert_eq!(format_partial_time(51_729_250), "14:22:09");
        assert_eq!(format_partial_time(-1_000), "23:59:59");
    }

    #[test]
    fn rfc3339_utc_round_trips() {
        assert_eq!(parse_rfc3339_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_utc("2026-10-03T14:22:09Z"), Some(1_791_037_329_000));
        assert_eq!(parse_rfc3339_utc("2026-10-03T14:22:09.25Z"), Some(1_791_037_329_250));
        assert_eq!(parse_rfc3339_utc("2026-10-03T14:22:09+00:00"), Some(1_791_037_329_000));
        assert_eq!(parse_rfc3339_utc("2024-02-29T23:59:59Z"), Some(1_709_251_199_000));
        assert_eq!(parse_rfc3339_utc("1969-12-31T23:59:59Z"), Some(-1_000));
        for ms in [0, -1_000, 1_791_037_329_000, 1_791_037_329_250, 1_709_251_199_001] {
            assert_eq!(parse_rfc3339_utc(&format_rfc3339_utc(ms)), Some(ms), "{ms}");
        }
        assert_eq!(format_rfc3339_utc(1_791_037_329_000), "2026-10-03T14:22:09Z");
        assert_eq!(format_rfc3339_utc(1_791_037_329_250), "2026-10-03T14:22:09.250Z");
    }

    #[test]
    fn rfc3339_utc_refuses_offsets_and_other_shapes() {
        for bad in [
            "",
            "2026-10-03",
            "2026-10-03T14:22:09",
            "2026-10-03 14:22:09Z",
            "2026-10-03t14:22:09z",
            "2026-10-03T14:22:09+02:00",
            "2026-10-03T14:22:09-00:00",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-10-03T24:00:00Z",
            "2026-10-03T23:59:60Z",
            "2026-10-03T14:22:09.Z",
            "2026-1a-03T14:22:09Z",
        ] {
            assert_eq!(parse_rfc3339_utc(bad), None, "{bad}");
        }
    }
}

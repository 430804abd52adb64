//! Civil UTC dates (`YYYY-MM-DD`) as days since the Unix epoch, so the
//! connector needs no date crate.

/// A day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// Days since 1970-01-01 of a `YYYY-MM-DD` date; `None` unless it is exactly
/// that form and a real date.
pub fn parse(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes().all(|b| b.is_ascii_digit()).then(|| part.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// `YYYY-MM-DD` of a day number.
pub fn format(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's algorithms (http://howardhinnant.github.io/date_algorithms.html).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_non_dates() {
        assert_eq!(parse("1970-01-01"), Some(0));
        assert_eq!(parse("2026-10-01"), Some(20_727));
        assert_eq!(format(20_727), "2026-10-01");
        for days in [-1, 0, 59, 11_016, 20_727, 20_816, 2_932_896] {
            assert_eq!(parse(&format(days)), Some(days));
        }
        assert_eq!(parse("2028-02-29").map(|d| format(d + 1)), Some("2028-03-01".into()));
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-1-01",
            "2026-10-01T00:00",
            "+026-10-01",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}

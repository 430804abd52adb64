//! ISO 8601 UTC date-times (`2026-10-03T14:22:09Z`) to unix milliseconds,
//! without a calendar crate.

/// Unix milliseconds of `YYYY-MM-DDTHH:MM:SS`, optionally with a fraction of
/// a second, ending in `Z` or `+00:00`; `None` for any other shape or an
/// impossible date.
pub fn parse_iso(text: &str) -> Option<i64> {
    let body = text.strip_suffix('Z').or_else(|| text.strip_suffix("+00:00"))?;
    let (main, fraction) = match body.split_once('.') {
        Some((main, fraction)) => (main, Some(fraction)),
        None => (body, None),
    };
    let b = main.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<i64> {
        let digits = &main[from..to];
        digits
            .bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| digits.parse().ok())?
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let millis = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|c| c.is_ascii_digit()) => {
            format!("{f:0<3}")[..3].parse::<i64>().ok()?
        }
        Some(_) => return None,
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(seconds * 1_000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_iso;

    #[test]
    fn parses_utc_date_times() {
        assert_eq!(parse_iso("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_iso("2026-10-03T14:22:09Z"), Some(1_791_037_329_000));
        assert_eq!(parse_iso("2026-10-03T14:22:09.25Z"), Some(1_791_037_329_250));
        assert_eq!(parse_iso("2026-10-03T14:22:09+00:00"), Some(1_791_037_329_000));
        assert_eq!(parse_iso("2024-02-29T23:59:59Z"), Some(1_709_251_199_000));
    }

    #[test]
    fn refuses_other_shapes_and_impossible_dates() {
        for bad in [
            "",
            "2026-10-03",
            "2026-10-03T14:22:09",
            "2026-10-03 14:22:09Z",
            "2026-10-03T14:22:09+02:00",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-10-03T24:00:00Z",
            "2026-10-03T14:22:09.Z",
            "2026-1a-03T14:22:09Z",
        ] {
            assert_eq!(parse_iso(bad), None, "{bad}");
        }
    }
}

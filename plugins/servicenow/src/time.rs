//! ServiceNow date-times (`"2026-10-03 14:22:09"`, UTC when
//! `sysparm_display_value=false`) to unix milliseconds, without a calendar
//! crate: the format is fixed and the proleptic Gregorian arithmetic is short.

/// Unix milliseconds of a `YYYY-MM-DD HH:MM:SS` UTC date-time, or `None` when
/// the text is not exactly that shape or names an impossible date.
pub fn parse_glide(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<i64> {
        let digits = &text[from..to];
        if !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(seconds * 1_000)
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
    use super::parse_glide;

    #[test]
    fn parses_utc_date_times() {
        assert_eq!(parse_glide("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_glide("2026-10-03 14:22:09"), Some(1_791_037_329_000));
        assert_eq!(parse_glide("2024-02-29 23:59:59"), Some(1_709_251_199_000));
        assert_eq!(parse_glide("1969-12-31 23:59:59"), Some(-1_000));
    }

    #[test]
    fn refuses_other_shapes_and_impossible_dates() {
        for bad in [
            "",
            "2026-10-03",
            "2026-10-03T14:22:09",
            "2026-10-03 14:22:09Z",
            "2026-13-01 00:00:00",
            "2026-02-29 00:00:00",
            "2026-10-03 24:00:00",
            "2026-10-03 14:60:00",
            "2026-1a-03 14:22:09",
            "+026-10-03 14:22:09",
        ] {
            assert_eq!(parse_glide(bad), None, "{bad}");
        }
    }
}

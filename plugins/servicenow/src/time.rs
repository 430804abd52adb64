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

/// The `YYYY-MM-DD HH:MM:SS` UTC text of unix milliseconds (seconds kept).
pub fn format_glide(ms: i64) -> String {
    let seconds = ms.div_euclid(1_000);
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}

/// Year, month and day of days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
    use super::{format_glide, parse_glide};

    #[test]
    fn formats_what_it_parses() {
        for text in [
            "1970-01-01 00:00:00",
            "2026-10-03 14:22:09",
            "2024-02-29 23:59:59",
            "1969-12-31 23:59:59",
        ] {
            assert_eq!(format_glide(parse_glide(text).expect("parses")), text);
        }
    }

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

//! ServiceNow date-times (`"2026-10-03 14:22:09"`, UTC when
//! `sysparm_display_value=false`) to unix milliseconds and back. The shape is
//! ServiceNow's: an RFC 3339 `full-date` and `partial-time` without fraction,
//! joined by a space, with no offset. The calendar is `xla_sdk::time`'s.

use xla_sdk::time::{
    DAY_MS, format_full_date, format_partial_time, parse_full_date, parse_partial_time, split_unix_ms,
};

/// Unix milliseconds of a `YYYY-MM-DD HH:MM:SS` UTC date-time, or `None` when
/// the text is not exactly that shape or names an impossible date.
pub fn parse_glide(text: &str) -> Option<i64> {
    if text.len() != 19 || text.as_bytes()[10] != b' ' {
        return None;
    }
    let days = parse_full_date(text.get(..10)?)?;
    let time = parse_partial_time(text.get(11..)?)?;
    Some(days * DAY_MS + time)
}

/// The `YYYY-MM-DD HH:MM:SS` UTC text of unix milliseconds (seconds kept).
pub fn format_glide(ms: i64) -> String {
    let (days, ms_of_day) = split_unix_ms(ms);
    format!("{} {}", format_full_date(days), format_partial_time(ms_of_day))
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

//! Scoring periods: ISO weeks, calendar months and quarters, in UTC.

use chrono::{Datelike, Months, NaiveDate, TimeDelta};
use serde::{Deserialize, Serialize};

const DAY_MS: i64 = 86_400_000;

/// How long one XLA period lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// ISO week, Monday to Sunday.
    Week,
    /// Calendar month.
    Month,
    /// Calendar quarter.
    Quarter,
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Period::Week => "week",
            Period::Month => "month",
            Period::Quarter => "quarter",
        })
    }
}

/// One period: `[start, end)` in unix ms, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Window {
    /// Start, inclusive.
    pub start: i64,
    /// End, exclusive.
    pub end: i64,
    /// Its kind.
    #[serde(skip)]
    pub period: Period,
}

fn epoch() -> NaiveDate {
    NaiveDate::default()
}

fn date_of(ms: i64) -> NaiveDate {
    epoch() + TimeDelta::days(ms.div_euclid(DAY_MS))
}

fn ms_of(date: NaiveDate) -> i64 {
    (date - epoch()).num_days() * DAY_MS
}

impl Period {
    /// The period holding `at` (unix ms).
    pub fn containing(self, at: i64) -> Window {
        let date = date_of(at);
        let first = match self {
            Period::Week => date - TimeDelta::days(i64::from(date.weekday().num_days_from_monday())),
            Period::Month => date.with_day(1).unwrap_or(date),
            Period::Quarter => NaiveDate::from_ymd_opt(date.year(), date.month0() / 3 * 3 + 1, 1).unwrap_or(date),
        };
        let next = match self {
            Period::Week => first + TimeDelta::days(7),
            Period::Month => first + Months::new(1),
            Period::Quarter => first + Months::new(3),
        };
        Window {
            start: ms_of(first),
            end: ms_of(next),
            period: self,
        }
    }

    /// The period a label like `2026-10`, `2026-Q4` or `2026-W43` names.
    pub fn parse(self, label: &str) -> Option<Window> {
        let (year, rest) = label.split_once('-')?;
        let year: i32 = year.parse().ok()?;
        let date = match self {
            Period::Month => NaiveDate::from_ymd_opt(year, rest.parse().ok()?, 1)?,
            Period::Quarter => {
                let q: u32 = rest.strip_prefix(['Q', 'q'])?.parse().ok()?;
                if !(1..=4).contains(&q) {
                    return None;
                }
                NaiveDate::from_ymd_opt(year, (q - 1) * 3 + 1, 1)?
            }
            Period::Week => {
                let w: u32 = rest.strip_prefix(['W', 'w'])?.parse().ok()?;
                NaiveDate::from_isoywd_opt(year, w, chrono::Weekday::Mon)?
            }
        };
        Some(self.containing(ms_of(date)))
    }
}

impl Window {
    /// The period before this one.
    pub fn previous(self) -> Window {
        self.period.containing(self.start - 1)
    }

    /// The period after this one.
    pub fn next(self) -> Window {
        self.period.containing(self.end)
    }

    /// The `n` periods ending with this one, oldest first.
    pub fn trailing(self, n: usize) -> Vec<Window> {
        let mut windows = Vec::with_capacity(n);
        let mut at = self;
        for _ in 0..n {
            windows.push(at);
            at = at.previous();
        }
        windows.reverse();
        windows
    }

    /// `2026-10`, `2026-Q4` or `2026-W43`.
    pub fn label(self) -> String {
        let date = date_of(self.start);
        match self.period {
            Period::Month => format!("{:04}-{:02}", date.year(), date.month()),
            Period::Quarter => format!("{:04}-Q{}", date.year(), date.month0() / 3 + 1),
            Period::Week => {
                let week = date.iso_week();
                format!("{:04}-W{:02}", week.year(), week.week())
            }
        }
    }

    /// The first day, `YYYY-MM-DD`.
    pub fn first_day(self) -> NaiveDate {
        date_of(self.start)
    }

    /// Whether `at` falls inside.
    pub fn contains(self, at: i64) -> bool {
        (self.start..self.end).contains(&at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32) -> i64 {
        ms_of(NaiveDate::from_ymd_opt(y, m, d).expect("date"))
    }

    #[test]
    fn periods_hold_their_days_and_name_themselves() {
        let october = Period::Month.containing(at(2026, 10, 17) + 5_000);
        assert_eq!((october.start, october.end), (at(2026, 10, 1), at(2026, 11, 1)));
        assert_eq!(october.label(), "2026-10");
        assert_eq!(october.previous().label(), "2026-09");
        assert_eq!(october.next().label(), "2026-11");
        let q4 = Period::Quarter.containing(at(2026, 11, 30));
        assert_eq!(
            (q4.start, q4.end, q4.label()),
            (at(2026, 10, 1), at(2027, 1, 1), "2026-Q4".into())
        );
        // 2026-10-14 is a Wednesday in ISO week 42.
        let week = Period::Week.containing(at(2026, 10, 14));
        assert_eq!(
            (week.start, week.end, week.label()),
            (at(2026, 10, 12), at(2026, 10, 19), "2026-W42".into())
        );
        // ISO week years differ from calendar years around new year.
        assert_eq!(Period::Week.containing(at(2027, 1, 1)).label(), "2026-W53");
    }

    #[test]
    fn labels_parse_back() {
        for (period, label) in [
            (Period::Month, "2026-03"),
            (Period::Quarter, "2026-Q1"),
            (Period::Week, "2026-W09"),
        ] {
            let window = period.parse(label).expect(label);
            assert_eq!(window.label(), label);
        }
        assert_eq!(Period::Month.parse("2026-13"), None);
        assert_eq!(Period::Quarter.parse("2026-Q5"), None);
        assert_eq!(Period::Week.parse("2026-10"), None);
    }

    #[test]
    fn trailing_periods_are_oldest_first() {
        let labels: Vec<String> = Period::Month
            .parse("2026-02")
            .expect("month")
            .trailing(3)
            .into_iter()
            .map(Window::label)
            .collect();
        assert_eq!(labels, ["2025-12", "2026-01", "2026-02"]);
    }
}

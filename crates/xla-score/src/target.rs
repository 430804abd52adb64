//! The target of one period: from the `targets` history, the DEX
//! threshold, or, under continuous improvement, the baseline of earlier
//! periods moved on by the agreed step at each review.

use super::definition::{Contract, XlaDefinition};
use super::period::Window;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A period's target and where it came from.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodTarget {
    /// The target; `None` when none applies yet.
    pub value: Option<f64>,
    /// How it was set, for people reading the report.
    pub basis: String,
}

/// The target for `window`. `history` gives the XLA's value in an earlier
/// period (`None` when it had no data); only continuous improvement asks.
pub fn target_for(xla: &XlaDefinition, window: Window, history: &mut dyn FnMut(Window) -> Option<f64>) -> PeriodTarget {
    let scheduled = || match xla.scheduled_target(window.first_day()) {
        Some(value) => PeriodTarget {
            value: Some(value),
            basis: format!("target in force from {}", effective_date(xla, window.first_day())),
        },
        None => PeriodTarget {
            value: None,
            basis: "no target in force yet".into(),
        },
    };
    match xla.contract {
        Contract::Fixed => scheduled(),
        Contract::Dex { threshold } => PeriodTarget {
            value: Some(threshold),
            basis: format!("DEX threshold {threshold}"),
        },
        Contract::Continuous {
            baseline_periods,
            step,
            review_every,
            start,
        } => {
            let Some(review) = review_window(window, start, review_every) else {
                return scheduled();
            };
            let baseline: Vec<Window> = review.previous().trailing(baseline_periods as usize);
            let values: Vec<f64> = baseline.iter().filter_map(|w| history(*w)).collect();
            if values.len() < baseline.len() {
                let mut fallback = scheduled();
                fallback.basis = format!(
                    "{} (continuous improvement needs {} baseline periods before {}; {} have data)",
                    fallback.basis,
                    baseline.len(),
                    review.label(),
                    values.len()
                );
                return fallback;
            }
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let target = xla.direction.improved(mean, step);
            PeriodTarget {
                value: Some(target),
                basis: format!(
                    "review {}: baseline {mean:.2} (mean of {} to {}) improved by {step}",
                    review.label(),
                    baseline.first().map(|w| w.label()).unwrap_or_default(),
                    baseline.last().map(|w| w.label()).unwrap_or_default(),
                ),
            }
        }
    }
}

/// The review period `window` falls under: reviews start at `start`'s
/// period and recur every `every` periods. `None` before the first.
fn review_window(window: Window, start: NaiveDate, every: u32) -> Option<Window> {
    let first = window.period.containing(day_ms(start));
    if window.start < first.start {
        return None;
    }
    let mut elapsed = 0u32;
    let mut at = first;
    while at.start < window.start {
        at = at.next();
        elapsed += 1;
    }
    let mut review = first;
    for _ in 0..(elapsed / every.max(1)) * every.max(1) {
        review = review.next();
    }
    Some(review)
}

fn effective_date(xla: &XlaDefinition, day: NaiveDate) -> String {
    xla.targets
        .iter()
        .filter(|t| t.from <= day)
        .max_by_key(|t| t.from)
        .map(|t| t.from.to_string())
        .unwrap_or_default()
}

fn day_ms(day: NaiveDate) -> i64 {
    (day - NaiveDate::default()).num_days() * 86_400_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::{Direction, Target};
    use crate::period::Period;

    fn xla(contract: Contract) -> XlaDefinition {
        let date = |y, m| NaiveDate::from_ymd_opt(y, m, 1).expect("date");
        XlaDefinition {
            id: "x".into(),
            name: "x".into(),
            tenant: "acme".into(),
            metrics: vec!["happiness_rating".into()],
            scorer: "happiness".into(),
            score: None,
            parameters: None,
            filter: None,
            group_by: None,
            period: Period::Month,
            direction: Direction::Higher,
            targets: vec![
                Target {
                    from: date(2026, 1),
                    value: 60.0,
                },
                Target {
                    from: date(2026, 3),
                    value: 65.0,
                },
            ],
            contract,
            penalty: None,
            gain_share: None,
        }
    }

    fn month(label: &str) -> Window {
        Period::Month.parse(label).expect("month")
    }

    #[test]
    fn march_uses_marchs_target() {
        let xla = xla(Contract::Fixed);
        let mut none = |_| None;
        assert_eq!(target_for(&xla, month("2026-02"), &mut none).value, Some(60.0));
        assert_eq!(target_for(&xla, month("2026-03"), &mut none).value, Some(65.0));
        assert_eq!(target_for(&xla, month("2025-12"), &mut none).value, None);
    }

    #[test]
    fn continuous_improvement_follows_the_baseline_and_holds_between_reviews() {
        let xla = xla(Contract::Continuous {
            baseline_periods: 3,
            step: 2.0,
            review_every: 3,
            start: NaiveDate::from_ymd_opt(2026, 4, 1).expect("date"),
        });
        // Jan 50, Feb 53, Mar 56 → the April review's baseline is 53, target 55.
        let values = [
            ("2026-01", 50.0),
            ("2026-02", 53.0),
            ("2026-03", 56.0),
            ("2026-04", 58.0),
            ("2026-05", 60.0),
            ("2026-06", 62.0),
        ];
        let mut history = |w: Window| values.iter().find(|(l, _)| *l == w.label()).map(|(_, v)| *v);
        for label in ["2026-04", "2026-05", "2026-06"] {
            assert_eq!(
                target_for(&xla, month(label), &mut history).value,
                Some(55.0),
                "{label}"
            );
        }
        // The July review: baseline mean(58, 60, 62) = 60, target 62.
        assert_eq!(target_for(&xla, month("2026-07"), &mut history).value, Some(62.0));
        // Before the first review the schedule applies.
        assert_eq!(target_for(&xla, month("2026-03"), &mut history).value, Some(65.0));
        // Without enough history it falls back to the schedule, and says why.
        let mut empty = |_| None;
        let fallback = target_for(&xla, month("2026-04"), &mut empty);
        assert_eq!(fallback.value, Some(65.0));
        assert!(fallback.basis.contains("baseline periods"), "{}", fallback.basis);
    }

    #[test]
    fn lower_is_better_improves_downwards() {
        let mut xla = xla(Contract::Continuous {
            baseline_periods: 1,
            step: 10.0,
            review_every: 1,
            start: NaiveDate::from_ymd_opt(2026, 2, 1).expect("date"),
        });
        xla.direction = Direction::Lower;
        let mut history = |_| Some(120.0);
        assert_eq!(target_for(&xla, month("2026-02"), &mut history).value, Some(110.0));
    }

    #[test]
    fn dex_contracts_use_the_threshold() {
        let xla = xla(Contract::Dex { threshold: 70.0 });
        assert_eq!(target_for(&xla, month("2026-05"), &mut |_| None).value, Some(70.0));
    }
}

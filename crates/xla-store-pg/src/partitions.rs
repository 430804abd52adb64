//! Month partitions of `observations`: created ahead at connect (this month
//! and the next two) and on demand before a batch that needs another, each
//! in a transaction of its own under an advisory lock, so hosts creating
//! the same one at once do not collide.

use super::{OrStore, StoreError};
use std::collections::BTreeSet;
use std::sync::Mutex;
use xla_store::DAY_MS;

/// The advisory lock partition creation holds ("XLA parts").
const PARTITION_LOCK: i64 = 0x584c_415f_5041_5254;

/// A month as months since year 0 (`year * 12 + month0`).
pub(crate) type Month = i64;

/// The month holding `at` (unix ms).
pub(crate) fn month_of(at: i64) -> Month {
    let (year, month0) = civil(at.div_euclid(DAY_MS));
    year * 12 + month0
}

/// The first instant (unix ms) of `month`.
fn start_of(month: Month) -> i64 {
    days_from_civil(month.div_euclid(12), month.rem_euclid(12)) * DAY_MS
}

/// Year and month (0-based) of a day number (days since 1970-01-01),
/// proleptic Gregorian (Howard Hinnant's `civil_from_days`).
fn civil(day: i64) -> (i64, i64) {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month - 1)
}

/// The day number of the first day of `month0` (0-based) of `year`.
fn days_from_civil(year: i64, month0: i64) -> i64 {
    let month = month0 + 1;
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The partitions this process knows exist.
#[derive(Default)]
pub(crate) struct Known(Mutex<BTreeSet<Month>>);

impl Known {
    /// Creates this month's partition and the next two.
    pub(crate) async fn ahead(&self, client: &mut tokio_postgres::Client) -> Result<(), StoreError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let this = month_of(now);
        self.ensure(client, [this, this + 1, this + 2].into_iter().collect())
            .await
    }

    /// Creates the partitions of `months` that this process has not seen yet.
    pub(crate) async fn ensure(
        &self,
        client: &mut tokio_postgres::Client,
        months: BTreeSet<Month>,
    ) -> Result<(), StoreError> {
        let missing: Vec<Month> = {
            let known = self
                .0
                .lock()
                .map_err(|_| StoreError::corrupt("a partition lock was poisoned"))?;
            months.into_iter().filter(|m| !known.contains(m)).collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        // A transaction of its own: a failure rolls back and leaves the
        // connection usable.
        let tx = client.transaction().await.or_store()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
            .await
            .or_store()?;
        for month in &missing {
            let (year, month0) = (month.div_euclid(12), month.rem_euclid(12));
            // Names and bounds are numbers this code made: nothing to escape.
            tx.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS observations_p{}{:02} PARTITION OF observations FOR VALUES FROM ({}) TO ({})",
                partition_year(year),
                month0 + 1,
                start_of(*month),
                start_of(month + 1)
            ))
            .await
            .or_store()?;
        }
        tx.commit().await.or_store()?;
        let mut known = self
            .0
            .lock()
            .map_err(|_| StoreError::corrupt("a partition lock was poisoned"))?;
        known.extend(missing);
        Ok(())
    }
}

/// A year as it appears in a partition's name: `m` for years before 0.
fn partition_year(year: i64) -> String {
    if year < 0 {
        format!("m{}", -year)
    } else {
        format!("{year:04}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_their_bounds_agree_with_the_calendar() {
        // 2026-02-01T00:00:00Z and 2026-03-01T00:00:00Z.
        let (feb, mar) = (1_769_904_000_000, 1_772_323_200_000);
        assert_eq!(month_of(feb), 2026 * 12 + 1);
        assert_eq!(month_of(feb - 1), 2026 * 12);
        assert_eq!(start_of(month_of(feb)), feb);
        assert_eq!(start_of(month_of(feb) + 1), mar);
        assert_eq!(month_of(0), 1970 * 12);
        assert_eq!(start_of(1970 * 12), 0);
        // 2024 is a leap year: March starts 29 days after February.
        assert_eq!(start_of(2024 * 12 + 2) - start_of(2024 * 12 + 1), 29 * DAY_MS);
        for month in (1900 * 12)..(2200 * 12) {
            assert_eq!(month_of(start_of(month)), month);
            assert_eq!(month_of(start_of(month + 1) - 1), month);
        }
    }
}

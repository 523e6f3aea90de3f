//! The project's one reading of the wall clock, shared by the catalog, ingestion, the gateway
//! and the server (times are stored and sent as epoch milliseconds or seconds, UTC).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time since the Unix epoch; zero if the clock is before 1970.
pub fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Epoch milliseconds now.
pub fn now_millis() -> i64 {
    i64::try_from(since_epoch().as_millis()).unwrap_or(i64::MAX)
}

/// Epoch seconds now.
pub fn now_secs() -> i64 {
    i64::try_from(since_epoch().as_secs()).unwrap_or(i64::MAX)
}

/// The UTC day of `epoch_ms` as `YYYY-MM-DD` (the proleptic Gregorian calendar; days before
/// 1970 are not needed and come out as 1970-01-01).
pub fn utc_day(epoch_ms: i64) -> String {
    let days = epoch_ms.max(0) / 86_400_000;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_days() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(86_399_999), "1970-01-01");
        assert_eq!(utc_day(86_400_000), "1970-01-02");
        // 2000-02-29 (a leap day of a century divisible by 400) and the day after.
        assert_eq!(utc_day(951_782_400_000), "2000-02-29");
        assert_eq!(utc_day(951_868_800_000), "2000-03-01");
        assert_eq!(utc_day(1_735_689_599_000), "2024-12-31");
        assert_eq!(utc_day(1_735_689_600_000), "2025-01-01");
        assert_eq!(utc_day(-5), "1970-01-01");
    }
}

//! Time as milliseconds since the Unix epoch, the one representation every crate and backend shares.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One hour in milliseconds: the roll-ups' resolution.
pub const HOUR_MS: i64 = 3_600_000;

/// One day in milliseconds (UTC days have no leap seconds in epoch time).
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Milliseconds since the Unix epoch, now.
#[expect(
    clippy::disallowed_methods,
    reason = "the one place that reads the wall clock"
)]
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The start of the hour that contains `ms`.
pub fn hour_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(HOUR_MS)
}

/// The start of the UTC day that contains `ms`.
pub fn day_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(DAY_MS)
}

/// The start of the UTC calendar month that contains `ms`.
pub fn month_start(ms: i64) -> i64 {
    // Civil-from-days (Howard Hinnant's algorithm) to find the day of the month.
    let days = ms.div_euclid(DAY_MS);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day_of_month = doy - (153 * mp + 2) / 5; // 0-based
    (days - day_of_month) * DAY_MS
}

/// Parses a human duration such as `30d`, `12h`, `90m` or `1w`; zero and negative are refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let d = humantime::parse_duration(trimmed)
        .map_err(|e| format!("`{trimmed}` is not a duration like 30d, 12h or 90m ({e})"))?;
    if d.is_zero() {
        return Err(format!("`{trimmed}` is zero; a duration must be positive"));
    }
    Ok(d)
}

/// Formats epoch milliseconds as RFC 3339 (UTC, seconds precision).
pub fn format_ms(ms: i64) -> String {
    let Ok(secs) = u64::try_from(ms / 1000) else {
        return ms.to_string();
    };
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_start_truncates() {
        assert_eq!(hour_start(3_600_000 * 5 + 1234), 3_600_000 * 5);
        assert_eq!(hour_start(3_600_000 * 5), 3_600_000 * 5);
    }

    #[test]
    fn day_start_truncates_before_the_epoch_too() {
        assert_eq!(day_start(DAY_MS + 5), DAY_MS);
        assert_eq!(day_start(DAY_MS), DAY_MS);
        assert_eq!(day_start(-5), -DAY_MS);
    }

    #[test]
    fn month_start_is_the_first_of_the_month_utc() {
        // 2026-11-23T17:56:00Z → 2026-11-01T00:00:00Z
        assert_eq!(month_start(1_795_456_560_000), 1_793_491_200_000);
        // 2024-02-29T12:00:00Z → 2024-02-01
        assert_eq!(month_start(1_709_208_000_000), 1_706_745_600_000);
        // exactly on the first
        assert_eq!(month_start(1_706_745_600_000), 1_706_745_600_000);
    }

    #[test]
    fn durations_parse_and_refuse() {
        assert_eq!(
            parse_duration("30d").ok(),
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(
            parse_duration("12h").ok(),
            Some(Duration::from_secs(12 * 3600))
        );
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").unwrap_err().contains("soon"));
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00Z");
    }
}

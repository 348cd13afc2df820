//! Time as milliseconds since the Unix epoch, the one representation every crate and backend shares.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    ms - ms.rem_euclid(3_600_000)
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

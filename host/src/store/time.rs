//! Timestamp text for SQLite, which has no timestamp type.
//!
//! Every timestamp is stored in UTC with a fixed width, so comparing the text
//! compares the times and SQL `<=` works on the column.

use anyhow::Context;
use chrono::{DateTime, NaiveDateTime, Utc};

const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// Formats a time as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub fn to_text(time: DateTime<Utc>) -> String {
    time.format(FORMAT).to_string()
}

/// Parses text written by [`to_text`] or by SQLite's column defaults.
pub fn from_text(text: &str) -> anyhow::Result<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text, FORMAT)
        .map(|naive| naive.and_utc())
        .or_else(|_| DateTime::parse_from_rfc3339(text).map(|time| time.with_timezone(&Utc)))
        .with_context(|| format!("invalid timestamp `{text}` in the SQLite database"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn text_round_trips_with_microseconds() {
        let time = Utc.with_ymd_and_hms(2025, 9, 25, 12, 30, 1).unwrap() + chrono::Duration::microseconds(42);
        assert_eq!(to_text(time), "2025-09-25T12:30:01.000042Z");
        assert_eq!(from_text(&to_text(time)).unwrap(), time);
    }

    #[test]
    fn text_order_is_time_order() {
        let early = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap();
        let late = early + chrono::Duration::milliseconds(1);
        assert!(to_text(early) < to_text(late));
    }
}

//! Event times: RFC 3339, read leniently, written back exactly as received.
//!
//! Real producers send times without a zone (`2020-12-28T19:51:01.641499`) or with
//! nanoseconds. An [`EventTime`] keeps the producer's text, so a stored event
//! serializes byte-identical, and the instant it denotes (a time without a zone
//! is taken as UTC, and [`crate::validate`] reports it).

use std::fmt;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time as written in an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTime {
    text: String,
    instant: DateTime<Utc>,
    has_zone: bool,
    /// Whether the text is RFC 3339 as written (an offset such as `+0000`,
    /// without its colon, is read but is not).
    rfc3339: bool,
}

/// Text that is not an RFC 3339 date-time, even leniently read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected an RFC 3339 date-time such as 2024-05-01T12:00:00Z, found {found:?}")]
pub struct TimeError {
    /// The text that was given.
    pub found: String,
}

impl EventTime {
    /// The current time, with microseconds, in UTC.
    pub fn now() -> Self {
        Self::from(Utc::now())
    }

    /// Reads `text`: RFC 3339, or a date-time without a zone (taken as UTC).
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        if let Ok(t) = DateTime::parse_from_rfc3339(text) {
            return Ok(EventTime {
                text: text.to_owned(),
                instant: t.with_timezone(&Utc),
                has_zone: true,
                rfc3339: true,
            });
        }
        // An offset without its colon, as Java's `Z` pattern writes it
        // (`+0000`): read as RFC 3339 once the colon is put in, so nothing
        // else loose gets through.
        if let Some(t) = without_colon(text) {
            return Ok(EventTime {
                text: text.to_owned(),
                instant: t.with_timezone(&Utc),
                has_zone: true,
                rfc3339: false,
            });
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
                return Ok(EventTime {
                    text: text.to_owned(),
                    instant: t.and_utc(),
                    has_zone: false,
                    rfc3339: false,
                });
            }
        }
        Err(TimeError {
            found: text.to_owned(),
        })
    }

    /// The instant, in UTC.
    pub fn instant(&self) -> DateTime<Utc> {
        self.instant
    }

    /// The text as the producer wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the text named a zone or offset (the spec requires one).
    pub fn has_zone(&self) -> bool {
        self.has_zone
    }

    /// Whether the text is RFC 3339 as the spec requires, not only read
    /// leniently (no zone, or an offset without its colon).
    pub fn is_rfc3339(&self) -> bool {
        self.rfc3339
    }
}

/// `text` read as RFC 3339 if it ends in an offset `±hhmm` missing only its
/// colon.
fn without_colon(text: &str) -> Option<DateTime<chrono::FixedOffset>> {
    let b = text.as_bytes();
    let n = b.len();
    if n < 6 || !matches!(b[n - 5], b'+' | b'-') || !b[n - 4..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let fixed = format!("{}:{}", &text[..n - 2], &text[n - 2..]);
    DateTime::parse_from_rfc3339(&fixed).ok()
}

impl From<DateTime<Utc>> for EventTime {
    /// Writes `2024-05-01T12:00:00.123456Z` (microseconds, as the clients do).
    fn from(instant: DateTime<Utc>) -> Self {
        let instant = instant.trunc_subsecs(6);
        EventTime {
            text: instant.to_rfc3339_opts(SecondsFormat::Micros, true),
            instant,
            has_zone: true,
            rfc3339: true,
        }
    }
}

impl fmt::Display for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for EventTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for EventTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        EventTime::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, utc: &str, has_zone: bool) {
        let t = EventTime::parse(text).unwrap();
        assert_eq!(
            t.instant().to_rfc3339_opts(SecondsFormat::AutoSi, true),
            utc,
            "{text}"
        );
        assert_eq!(t.has_zone(), has_zone, "{text}");
        assert_eq!(t.as_str(), text);
    }

    #[test]
    fn reads_what_producers_send() {
        check(
            "2020-12-28T19:52:00.001+10:00",
            "2020-12-28T09:52:00.001Z",
            true,
        );
        check(
            "2020-12-28T19:51:01.641499Z",
            "2020-12-28T19:51:01.641499Z",
            true,
        );
        check(
            "2020-12-28T19:51:01.641499",
            "2020-12-28T19:51:01.641499Z",
            false,
        );
        check(
            "2021-11-03T10:53:52.427343123Z",
            "2021-11-03T10:53:52.427343123Z",
            true,
        );
        check("2021-11-03T10:53:52", "2021-11-03T10:53:52Z", false);
        // An offset without its colon (Java's `Z` pattern): read, with its
        // zone, but not RFC 3339.
        check("2024-05-01T12:00:00.000+0200", "2024-05-01T10:00:00Z", true);
        assert!(
            !EventTime::parse("2024-05-01T12:00:00+0000")
                .unwrap()
                .is_rfc3339()
        );
        assert!(
            !EventTime::parse("2021-11-03T10:53:52")
                .unwrap()
                .is_rfc3339()
        );
        assert!(
            EventTime::parse("2024-05-01T12:00:00+00:00")
                .unwrap()
                .is_rfc3339()
        );
        // Only the colon may be missing.
        for loose in [
            "2020-12-28T19:51:01+00 00",
            "2020-12-28T19:51:01 +0000",
            "2020-12-28T 19:51:01+0000",
            " 2020-12-28T19:51:01+0000",
            "2020-1-2T1:2:3+0000",
            "2020-12-28T19:51:01+0000Z",
            "2020-12-28T19:51:01+2400",
        ] {
            assert!(EventTime::parse(loose).is_err(), "{loose}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in ["", "yesterday", "2020-13-01T00:00:00Z", "1700000000"] {
            let err = EventTime::parse(bad).unwrap_err();
            assert_eq!(err.found, bad);
        }
    }

    #[test]
    fn made_from_an_instant_it_reads_back_equal() {
        let now = EventTime::now();
        assert_eq!(EventTime::parse(now.as_str()).unwrap(), now);
    }

    #[test]
    fn written_back_as_received() {
        let json = "\"2020-12-28T19:51:01.641499\"";
        let t: EventTime = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), json);
    }
}

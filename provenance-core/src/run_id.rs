//! Run ids: UUIDs, written in the hyphenated form the spec requires.
//!
//! New ids are UUIDv7 (time-ordered, as the spec recommends). For idempotent
//! re-emission, [`RunId::static_v7`] derives the same id from the same (time,
//! data), bit for bit as the official OpenLineage Python client's
//! `generate_static_uuid` does, and [`RunId::static_v7_java`] as the Java client's
//! `UUIDUtils.generateStaticUUID` does. The two clients disagree with each other
//! (they hash different text and keep different bits), so both are offered.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha1::{Digest, Sha1};
use uuid::Uuid;

/// The id of a run: a UUID, always in lowercase hyphenated form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(Uuid);

/// A string that is not a hyphenated UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a UUID such as 0190d2c4-7f3a-7c2e-9b1d-2f6a8c4e5d31, found {found:?}")]
pub struct RunIdError {
    /// The text that was given.
    pub found: String,
}

impl RunId {
    /// A new UUIDv7 for the current time.
    pub fn new_v7() -> Self {
        RunId(Uuid::now_v7())
    }

    /// Wraps an existing UUID.
    pub fn from_uuid(uuid: Uuid) -> Self {
        RunId(uuid)
    }

    /// The UUID.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// The deterministic UUIDv7 of the OpenLineage Python client
    /// (`openlineage.client.uuid.generate_static_uuid`): the 48-bit Unix
    /// millisecond timestamp, then the first 76 bits of
    /// `sha1(isoformat(instant) + data)`, with the version and variant bits set.
    /// Python keeps microseconds, so nanoseconds below them are ignored.
    pub fn static_v7(instant: DateTime<Utc>, data: &[u8]) -> Self {
        let micros = instant.timestamp_micros();
        // Python computes `int(instant.timestamp() * 1000)` in floating point; the
        // same two correctly rounded operations give the same millisecond.
        let millis = ((micros as f64 / 1e6) * 1000.0).floor() as i64;
        let mut hasher = Sha1::new();
        hasher.update(python_isoformat(instant).as_bytes());
        hasher.update(data);
        let digest = hasher.finalize();
        let mut top = [0u8; 16];
        top.copy_from_slice(&digest[..16]);
        // The first 76 bits of the digest become the low 76 bits of the UUID.
        let node = u128::from_be_bytes(top) >> (128 - 76);
        RunId(build_v7(millis as u64, node))
    }

    /// The deterministic UUIDv7 of the OpenLineage Java client
    /// (`UUIDUtils.generateStaticUUID`): the millisecond timestamp, then bits of
    /// `sha1(Instant.toString() + data)` (12 bits from bytes 6..8, 62 bits from
    /// bytes 8..16), with the version and variant bits set.
    pub fn static_v7_java(instant: DateTime<Utc>, data: &[u8]) -> Self {
        let mut hasher = Sha1::new();
        hasher.update(java_instant_string(instant).as_bytes());
        hasher.update(data);
        let digest = hasher.finalize();
        let mut msb = [0u8; 8];
        let mut lsb = [0u8; 8];
        msb.copy_from_slice(&digest[..8]);
        lsb.copy_from_slice(&digest[8..16]);
        let hash_msb = u64::from_be_bytes(msb);
        let hash_lsb = u64::from_be_bytes(lsb);
        let time = instant.timestamp_millis() as u64;
        let uuid_msb = (time << 16) | (hash_msb & 0x0fff) | 0x7000;
        let uuid_lsb = (hash_lsb & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
        RunId(Uuid::from_u64_pair(uuid_msb, uuid_lsb))
    }
}

/// Assembles a UUIDv7 from a millisecond timestamp and up to 80 low bits.
fn build_v7(millis: u64, node: u128) -> Uuid {
    let mut value = (u128::from(millis) & 0xffff_ffff_ffff) << 80;
    value |= node & ((1u128 << 80) - 1);
    value &= !(0xf000u128 << 64);
    value |= 7u128 << 76;
    value &= !(0xc000u128 << 48);
    value |= 0x8000u128 << 48;
    Uuid::from_u128(value)
}

/// `datetime.isoformat()` of an aware UTC datetime in Python:
/// `2024-05-01T12:00:00+00:00`, with `.ffffff` only when microseconds are not 0.
fn python_isoformat(instant: DateTime<Utc>) -> String {
    let micros = instant.nanosecond() % 1_000_000_000 / 1000;
    let base = instant.format("%Y-%m-%dT%H:%M:%S");
    if micros == 0 {
        format!("{base}+00:00")
    } else {
        format!("{base}.{micros:06}+00:00")
    }
}

/// `Instant.toString()` in Java: seconds always, then 0, 3, 6 or 9 fraction
/// digits as needed, then `Z`.
fn java_instant_string(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for RunId {
    type Err = RunIdError;

    /// Accepts only the 36-character hyphenated form (any case), as the spec's
    /// `format: uuid` does.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hyphens_at = [8, 13, 18, 23];
        let shaped = s.len() == 36
            && s.bytes()
                .enumerate()
                .all(|(i, b)| (b == b'-') == hyphens_at.contains(&i));
        match Uuid::try_parse(s) {
            Ok(uuid) if shaped => Ok(RunId(uuid)),
            _ => Err(RunIdError {
                found: s.to_owned(),
            }),
        }
    }
}

impl From<Uuid> for RunId {
    fn from(uuid: Uuid) -> Self {
        RunId(uuid)
    }
}

impl RunId {
    /// Writes the hyphenated lowercase text into `buffer`, without allocating.
    pub(crate) fn encode<'b>(&self, buffer: &'b mut [u8; 36]) -> &'b str {
        self.0.hyphenated().encode_lower(buffer)
    }
}

impl Serialize for RunId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.encode(&mut [0; 36]))
    }
}

impl<'de> Deserialize<'de> for RunId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn parses_only_hyphenated_uuids() {
        let id: RunId = "0190D2C4-7F3A-7C2E-9B1D-2F6A8C4E5D31".parse().unwrap();
        assert_eq!(id.to_string(), "0190d2c4-7f3a-7c2e-9b1d-2f6a8c4e5d31");
        for bad in [
            "run_id",
            "",
            "0190d2c47f3a7c2e9b1d2f6a8c4e5d31",
            "{0190d2c4-7f3a-7c2e-9b1d-2f6a8c4e5d31}",
            "0190d2c4-7f3a-7c2e-9b1d-2f6a8c4e5d3g",
        ] {
            assert!(bad.parse::<RunId>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn new_ids_are_v7_and_ordered() {
        let a = RunId::new_v7();
        let b = RunId::new_v7();
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert!(a < b);
    }

    #[test]
    fn time_text_matches_the_clients() {
        let t = at("2024-05-01T12:00:00Z");
        assert_eq!(python_isoformat(t), "2024-05-01T12:00:00+00:00");
        assert_eq!(java_instant_string(t), "2024-05-01T12:00:00Z");
        let t = at("2024-05-01T12:00:00.120Z");
        assert_eq!(python_isoformat(t), "2024-05-01T12:00:00.120000+00:00");
        assert_eq!(java_instant_string(t), "2024-05-01T12:00:00.120Z");
        let t = at("2024-05-01T12:00:00.123456789Z");
        assert_eq!(python_isoformat(t), "2024-05-01T12:00:00.123456+00:00");
        assert_eq!(java_instant_string(t), "2024-05-01T12:00:00.123456789Z");
    }

    /// Vectors printed by openlineage-python 1.54.0's `generate_static_uuid`
    /// (`tests/peer/static_uuid.py` prints them again, and the workspace test
    /// `peer_static_uuid` compares them whenever that client is installed).
    #[test]
    fn static_ids_match_the_python_client() {
        let check = |time: &str, data: &str, expected: &str| {
            let id = RunId::static_v7(at(time), data.as_bytes());
            assert_eq!(id.to_string(), expected, "{time} {data:?}");
        };
        check(
            "2024-05-01T12:00:00Z",
            "job-a",
            "018f3406-9e00-7aa7-b883-e5533085ed53",
        );
        check(
            "2023-11-14T22:13:20.123456Z",
            "ns.bwa_mem sample=S1",
            "018bcfe5-687b-7dc8-bbae-02c6a36bf99e",
        );
        check(
            "2024-05-01T12:00:00.5Z",
            "x",
            "018f3406-9ff4-77e8-8fa1-c6babbd68779",
        );
        check(
            "1999-12-31T23:59:59.999999Z",
            "",
            "00dc6acf-abff-74c5-8457-f977cb0a7d29",
        );
    }

    /// The Java client cannot be fetched here; these vectors come from a direct
    /// transcription of `UUIDUtils.generateStaticUUID` in Python's hashlib.
    #[test]
    fn static_ids_match_the_java_algorithm() {
        let check = |time: &str, data: &str, expected: &str| {
            let id = RunId::static_v7_java(at(time), data.as_bytes());
            assert_eq!(id.to_string(), expected, "{time} {data:?}");
        };
        check(
            "2024-05-01T12:00:00Z",
            "job-a",
            "018f3406-9e00-7b11-b1a7-602e923b5c9f",
        );
        check(
            "2024-05-01T12:00:00.5Z",
            "x",
            "018f3406-9ff4-78c8-aa09-da389e81b4ca",
        );
    }

    #[test]
    fn static_ids_are_deterministic_and_data_sensitive() {
        let t = at("2024-05-01T12:00:00.5Z");
        assert_eq!(RunId::static_v7(t, b"x"), RunId::static_v7(t, b"x"));
        assert_ne!(RunId::static_v7(t, b"x"), RunId::static_v7(t, b"y"));
        assert_ne!(
            RunId::static_v7_java(t, b"x"),
            RunId::static_v7_java(t, b"y")
        );
        let id = RunId::static_v7_java(t, b"x");
        assert_eq!(id.as_uuid().get_version_num(), 7);
        // The timestamp sits in the top 48 bits of both.
        let millis = (id.as_uuid().as_u128() >> 80) as i64;
        assert_eq!(millis, t.timestamp_millis());
        let millis = (RunId::static_v7(t, b"x").as_uuid().as_u128() >> 80) as i64;
        assert_eq!(millis, t.timestamp_millis());
    }
}

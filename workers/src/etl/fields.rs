//! Parsing of single field values. An empty field is `None` (unknown), never a made-up zero; a
//! value that does not parse is an error naming what was expected, never coerced.

use chrono::{DateTime, NaiveDateTime, Utc};

/// Longest id we accept: real ids are at most ~60 bytes; anything longer is a broken row.
pub const MAX_ID_BYTES: usize = 512;
/// Longest free-text value (gender, education).
pub const MAX_TEXT_BYTES: usize = 256;
/// Birth years outside this range are kept as NULL, with the reason recorded.
pub const BIRTH_YEARS: std::ops::RangeInclusive<i32> = 1900..=2020;

pub type FieldResult<T> = Result<T, String>;

/// UTF-8 text that PostgreSQL can store (it has no NUL in text).
pub fn utf8(bytes: &[u8]) -> FieldResult<&str> {
    let text = std::str::from_utf8(bytes)
        .map_err(|error| format!("not valid UTF-8 (byte {})", error.valid_up_to()))?;
    if text.contains('\0') {
        return Err("contains a NUL byte, which PostgreSQL text cannot hold".into());
    }
    Ok(text)
}

/// A learner or course id: any UTF-8 text, not empty, not absurdly long.
pub fn id(bytes: &[u8]) -> FieldResult<&str> {
    let value = utf8(bytes)?;
    if value.trim().is_empty() {
        return Err("empty id".into());
    }
    if value.len() > MAX_ID_BYTES {
        return Err(format!(
            "id of {} bytes exceeds the {MAX_ID_BYTES}-byte limit",
            value.len()
        ));
    }
    Ok(value)
}

/// Optional free text; empty is `None`.
pub fn text(bytes: &[u8]) -> FieldResult<Option<&str>> {
    let value = utf8(bytes)?;
    if value.len() > MAX_TEXT_BYTES {
        return Err(format!(
            "value of {} bytes exceeds the {MAX_TEXT_BYTES}-byte limit",
            value.len()
        ));
    }
    Ok((!value.is_empty()).then_some(value))
}

/// `truth`: 1 = dropout, 0 = completed, empty = unknown.
pub fn label(bytes: &[u8]) -> FieldResult<Option<i16>> {
    match bytes {
        b"" => Ok(None),
        b"0" => Ok(Some(0)),
        b"1" => Ok(Some(1)),
        other => Err(format!(
            "expected 0, 1 or empty, found {:?}",
            String::from_utf8_lossy(other)
        )),
    }
}

/// An activity count: a non-negative integer, or empty.
pub fn count(bytes: &[u8]) -> FieldResult<Option<i32>> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let value = utf8(bytes)?;
    match value.parse::<i64>() {
        Ok(n) if n < 0 => Err(format!("negative count {n}")),
        Ok(n) => i32::try_from(n)
            .map(Some)
            .map_err(|_| format!("count {n} is out of range")),
        Err(_) => Err(format!("expected a whole number, found {value:?}")),
    }
}

/// A non-negative, finite decimal, or empty.
pub fn ratio(bytes: &[u8]) -> FieldResult<Option<f64>> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let value = utf8(bytes)?;
    match value.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
        Ok(x) => Err(format!("expected a non-negative number, found {x}")),
        Err(_) => Err(format!("expected a number, found {value:?}")),
    }
}

/// The event time: Unix seconds (as the inputs have it), RFC 3339, or `YYYY-MM-DD HH:MM:SS` in UTC.
pub fn timestamp(bytes: &[u8]) -> FieldResult<Option<DateTime<Utc>>> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let value = utf8(bytes)?;
    if let Ok(seconds) = value.parse::<i64>() {
        return DateTime::from_timestamp(seconds, 0)
            .map(Some)
            .ok_or_else(|| format!("Unix time {seconds} is out of range"));
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(value) {
        return Ok(Some(time.to_utc()));
    }
    NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S")
        .map(|time| Some(time.and_utc()))
        .map_err(|_| format!("expected Unix seconds or an ISO 8601 date-time, found {value:?}"))
}

/// A birth year as read: written as `1997` or `1997.0` (spreadsheet exports), or empty.
#[derive(Debug, PartialEq, Eq)]
pub enum Birth {
    Unknown,
    Year(i16),
    /// Parsed, but not a plausible birth year; loaded as NULL with this reason.
    Implausible(String),
}

pub fn birth(bytes: &[u8]) -> FieldResult<Birth> {
    if bytes.is_empty() {
        return Ok(Birth::Unknown);
    }
    let value = utf8(bytes)?;
    let whole = value.strip_suffix(".0").unwrap_or(value);
    let year: i32 = whole
        .parse()
        .map_err(|_| format!("expected a year such as 1997, found {value:?}"))?;
    if BIRTH_YEARS.contains(&year) {
        Ok(Birth::Year(year as i16))
    } else {
        Ok(Birth::Implausible(format!(
            "birth year {year} is outside {}..={}; loaded as NULL",
            BIRTH_YEARS.start(),
            BIRTH_YEARS.end()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_punctuation_and_non_ascii() {
        assert_eq!(
            id("course-v1:TsinghuaX+00690242+2015_T1/x".as_bytes()),
            Ok("course-v1:TsinghuaX+00690242+2015_T1/x")
        );
        assert_eq!(id("学堂在线".as_bytes()), Ok("学堂在线"));
        assert_eq!(id(b" "), Err("empty id".into()));
        assert!(id(&[b'a'; 513]).unwrap_err().contains("513 bytes"));
        assert_eq!(id(b"ab\xffc"), Err("not valid UTF-8 (byte 2)".into()));
        assert!(id(b"a\0b").unwrap_err().contains("NUL"));
    }

    #[test]
    fn labels_are_exactly_zero_one_or_empty() {
        assert_eq!(label(b""), Ok(None));
        assert_eq!(label(b"1"), Ok(Some(1)));
        assert_eq!(label(b"0"), Ok(Some(0)));
        assert_eq!(
            label(b"1.0"),
            Err("expected 0, 1 or empty, found \"1.0\"".into())
        );
    }

    #[test]
    fn counts_are_whole_non_negative_numbers() {
        assert_eq!(count(b""), Ok(None));
        assert_eq!(count(b"520"), Ok(Some(520)));
        assert_eq!(count(b"-3"), Err("negative count -3".into()));
        assert_eq!(
            count(b"many"),
            Err("expected a whole number, found \"many\"".into())
        );
        assert_eq!(
            count(b"2.5"),
            Err("expected a whole number, found \"2.5\"".into())
        );
        assert!(count(b"99999999999").unwrap_err().contains("out of range"));
    }

    #[test]
    fn ratios_are_finite_and_non_negative() {
        assert_eq!(ratio(b"47.6154"), Ok(Some(47.6154)));
        assert_eq!(ratio(b""), Ok(None));
        assert!(ratio(b"NaN").is_err());
        assert!(ratio(b"-1").is_err());
    }

    #[test]
    fn timestamps_accept_unix_seconds_and_iso() {
        let expected = DateTime::parse_from_rfc3339("2014-07-03T00:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(timestamp(b"1404345600"), Ok(Some(expected)));
        assert_eq!(timestamp(b"2014-07-03T00:00:00Z"), Ok(Some(expected)));
        assert_eq!(timestamp(b"2014-07-03 00:00:00"), Ok(Some(expected)));
        assert!(
            timestamp(b"yesterday")
                .unwrap_err()
                .contains("\"yesterday\"")
        );
    }

    #[test]
    fn birth_years_accept_a_trailing_point_zero_and_null_implausible_ones() {
        assert_eq!(birth(b"1997"), Ok(Birth::Year(1997)));
        assert_eq!(birth(b"1997.0"), Ok(Birth::Year(1997)));
        assert_eq!(birth(b""), Ok(Birth::Unknown));
        assert_eq!(
            birth(b"1850"),
            Ok(Birth::Implausible(
                "birth year 1850 is outside 1900..=2020; loaded as NULL".into()
            ))
        );
        assert!(birth(b"1997.5").is_err());
        assert!(birth(b"nineteen").is_err());
    }
}

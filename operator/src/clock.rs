//! Time: decisions use chrono (the schedule arithmetic is written in it), Kubernetes objects carry
//! `Time` (a jiff timestamp). The controllers read the clock once per reconcile and pass it in.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// Kubernetes `Time` of an instant; instants beyond jiff's ±9999 years clamp to its bounds.
pub fn to_time(at: DateTime<Utc>) -> Time {
    let clamped = if at.timestamp() < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    };
    Time(Timestamp::from_microsecond(at.timestamp_micros()).unwrap_or(clamped))
}

/// The instant of a Kubernetes `Time`.
pub fn from_time(time: &Time) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(time.0.as_microsecond()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn instants_survive_the_round_trip() {
        let at = Utc.with_ymd_and_hms(2026, 3, 8, 7, 0, 0).unwrap();
        assert_eq!(to_time(at).0.to_string(), "2026-03-08T07:00:00Z");
        assert_eq!(from_time(&to_time(at)), at);
    }
}

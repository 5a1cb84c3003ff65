//! When a scheduled TrainingRun, ALSJob or DataLoad is due: Kubernetes CronJob semantics as a pure
//! function of the spec, the persisted `lastScheduleTime`, the creation time and an injected `now`.
//!
//! A schedule is five cron fields (or a macro such as `@daily`) evaluated in an IANA time zone.
//! [`decide`] runs only the most recent instant that is due, counts the ones passed over, and
//! reports an instant older than the starting deadline as missed instead of running it. Once the
//! controller records the run's instant as `lastScheduleTime`, that instant is never due again.
//!
//! Daylight saving time follows croner (OCPS), applied per schedule kind:
//! - A schedule whose hour field names hours (`30 2 * * *`, `0 2,14 * * *`, `*/20 1 * * *`) is
//!   tied to the wall clock. Each matching wall-clock time runs once: a time the clock skips in
//!   spring runs at the first instant after the gap, and a time the clock repeats in autumn runs
//!   at its first occurrence only. Croner does exactly this for a single fixed time but treats
//!   lists, ranges and steps as intervals, so this module searches these on the wall clock itself.
//! - A schedule whose hour field is `*` or `*/n` (`*/15 * * * *`, `@hourly`) measures elapsed time:
//!   croner's instants are used as they are, so a repeated hour runs again and a skipped one does
//!   not.

use chrono::{DateTime, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Where a rejected schedule came from, for `kubectl describe` (same shape as an API server
/// validation error: field, value, reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("spec.schedule: Invalid value: {expression:?}: {reason}")]
    Expression { expression: String, reason: String },
    #[error("spec.timeZone: Invalid value: {time_zone:?}: {reason}")]
    TimeZone { time_zone: String, reason: String },
}

/// `skipped` stops counting here, so an operator that was down for a year with `* * * * *` does
/// not walk half a million instants; a reported `skipped` equal to this means "at least".
pub const SKIPPED_COUNT_LIMIT: u32 = 100;

/// The macros Kubernetes CronJob (robfig/cron) accepts, with their five-field meaning.
const MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// The widest DST gap in the tz database is a whole skipped day (Pacific/Apia, 2011-12-30); the
/// search for the end of a gap gives up past two days.
const MAX_GAP_MINUTES: i64 = 2 * 24 * 60;

/// A parsed cron schedule in its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    time_zone: Tz,
    /// The hour field names hours, so DST is resolved per wall-clock time (see the module docs).
    wall_clock: bool,
}

impl Schedule {
    /// Parses `spec.schedule` and `spec.timeZone` (UTC when absent). Rejects what Kubernetes
    /// rejects (seconds or years fields, unknown zones) and a schedule that matches no date at
    /// all, which would otherwise never run without saying why.
    pub fn parse(expression: &str, time_zone: Option<&str>) -> Result<Schedule, ScheduleError> {
        let invalid = |reason: String| ScheduleError::Expression {
            expression: expression.to_string(),
            reason,
        };
        let fields = expand_macro(expression).map_err(invalid)?;
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(fields)
            .map_err(|e| invalid(e.to_string()))?;
        let schedule = Schedule {
            wall_clock: !cron.pattern.hours.from_wildcard,
            cron,
            time_zone: parse_time_zone(time_zone)?,
        };
        if schedule.next_after(DateTime::UNIX_EPOCH).is_none() {
            return Err(invalid(
                "it matches no date (for example February 30)".into(),
            ));
        }
        Ok(schedule)
    }

    /// First scheduled instant strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.wall_clock {
            self.next_wall_clock_after(after)
        } else {
            let zoned = after.with_timezone(&self.time_zone);
            let next = self.cron.find_next_occurrence(&zoned, false).ok()?;
            Some(next.with_timezone(&Utc))
        }
    }

    /// Walks matching wall-clock times and maps each to the one instant it runs at. A repeated
    /// time maps to its first occurrence, which may lie at or before `after` when `after` is in the
    /// second pass of the hour; those are stepped over.
    fn next_wall_clock_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut wall = after.with_timezone(&self.time_zone).naive_local();
        loop {
            wall = self.cron.find_next_occurrence(&wall, false).ok()?;
            let at = self.instant_of(wall)?;
            if at > after {
                return Some(at);
            }
        }
    }

    /// The instant a matching wall-clock time runs at: its first occurrence when the clock
    /// repeats it, the end of the gap when the clock skips it (as croner does for fixed times).
    fn instant_of(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        let earliest = |wall: NaiveDateTime| self.time_zone.from_local_datetime(&wall).earliest();
        let at = earliest(wall).or_else(|| {
            // Gaps start and end on whole minutes, and cron times are whole minutes.
            (1..=MAX_GAP_MINUTES).find_map(|minutes| {
                wall.checked_add_signed(TimeDelta::minutes(minutes))
                    .and_then(earliest)
            })
        })?;
        Some(at.with_timezone(&Utc))
    }

    /// The most recent instant in `(after, now]` and how many earlier ones it passes over
    /// (saturating at [`SKIPPED_COUNT_LIMIT`]), or `None` when nothing is due.
    fn latest_due(&self, after: DateTime<Utc>, now: DateTime<Utc>) -> Option<(DateTime<Utc>, u32)> {
        let due = |t: &DateTime<Utc>| *t <= now;
        let mut latest = self.next_after(after).filter(due)?;
        let mut skipped = 0;
        while let Some(next) = self.next_after(latest).filter(due) {
            if skipped == SKIPPED_COUNT_LIMIT {
                return Some((self.latest_by_bisection(latest, next, now), skipped));
            }
            skipped += 1;
            latest = next;
        }
        Some((latest, skipped))
    }

    /// The most recent instant at or before `now`, found in O(log gap) searches instead of one
    /// per instant. `found` must be `next_after(floor)` and at or before `now`.
    fn latest_by_bisection(
        &self,
        mut floor: DateTime<Utc>,
        mut found: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        // Invariant: `found == next_after(floor) <= now`, and no instant lies in (ceiling, now].
        let mut ceiling = now;
        while ceiling - floor > TimeDelta::seconds(1) {
            let middle = floor + (ceiling - floor) / 2;
            match self.next_after(middle) {
                Some(next) if next <= now => (floor, found) = (middle, next),
                _ => ceiling = middle,
            }
        }
        // Any later instant would share (floor, ceiling], at most a second wide, with `found`;
        // instants fall on whole minutes, so there is none.
        found
    }
}

/// What the controller does now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing due; requeue at `next`.
    Wait { next: Option<DateTime<Utc>> },
    /// Start the run for `scheduled` now; `skipped` earlier instants were passed over.
    Run {
        scheduled: DateTime<Utc>,
        skipped: u32,
        next: Option<DateTime<Utc>>,
    },
    /// The most recent instant `scheduled` is past the starting deadline: record, do not run.
    Missed {
        scheduled: DateTime<Utc>,
        skipped: u32,
        next: Option<DateTime<Utc>>,
    },
}

/// Decides from persisted state alone, so a restarted operator repeats the same answer until the
/// controller records `scheduled` as `last_scheduled`. Counts from `last_scheduled`, or from
/// `created` before the first run (instants at or before creation never run). An instant more
/// than `starting_deadline` before `now` is [`Decision::Missed`]; without a deadline the most
/// recent instant always runs.
pub fn decide(
    schedule: &Schedule,
    last_scheduled: Option<DateTime<Utc>>,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
    starting_deadline: Option<TimeDelta>,
) -> Decision {
    let start = last_scheduled.unwrap_or(created);
    let Some((scheduled, skipped)) = schedule.latest_due(start, now) else {
        // `start` may be ahead of `now` after a clock step back; never requeue before it.
        return Decision::Wait {
            next: schedule.next_after(start.max(now)),
        };
    };
    // `scheduled` is the latest instant at or before `now`, so this is the first one after `now`.
    let next = schedule.next_after(scheduled);
    if starting_deadline.is_some_and(|deadline| now - scheduled > deadline) {
        Decision::Missed {
            scheduled,
            skipped,
            next,
        }
    } else {
        Decision::Run {
            scheduled,
            skipped,
            next,
        }
    }
}

/// Deterministic run id for a scheduled instant, used in child Job names: lowercase, DNS-label
/// safe, e.g. "s20261203-1400" from the UTC instant (minutes resolution, UTC so DST repeats cannot
/// collide).
pub fn run_id(scheduled: DateTime<Utc>) -> String {
    format!("s{}", scheduled.format("%Y%m%d-%H%M"))
}

/// Replaces a macro by its five fields and insists on exactly five fields otherwise, so the
/// message speaks of Kubernetes' syntax rather than croner's optional seconds and years.
fn expand_macro(expression: &str) -> Result<&str, String> {
    let trimmed = expression.trim();
    if trimmed.starts_with('@') {
        return MACROS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(trimmed))
            .map(|(_, fields)| *fields)
            .ok_or_else(|| {
                let names: Vec<&str> = MACROS.iter().map(|(name, _)| *name).collect();
                format!("unknown macro, expected one of {}", names.join(", "))
            });
    }
    match trimmed.split_whitespace().count() {
        5 => Ok(trimmed),
        found => Err(format!(
            "expected 5 fields (minute hour day-of-month month day-of-week) or a macro such as \
             @daily, found {found}"
        )),
    }
}

/// Resolves `spec.timeZone`; IANA names only, matched exactly as Kubernetes does.
fn parse_time_zone(time_zone: Option<&str>) -> Result<Tz, ScheduleError> {
    let Some(name) = time_zone else {
        return Ok(Tz::UTC);
    };
    name.parse().map_err(|_| ScheduleError::TimeZone {
        time_zone: name.to_string(),
        reason: "not a time zone of the IANA database such as \"Europe/Berlin\" or \"UTC\" \
                 (names are case-sensitive)"
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .with_timezone(&Utc)
    }

    fn schedule(expression: &str, time_zone: Option<&str>) -> Schedule {
        Schedule::parse(expression, time_zone).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A controller that wakes every minute from `from` to `until`, runs what is due and records
    /// it; returns the instants it ran. Ticking every minute exposes any instant due twice.
    fn runs(schedule: &Schedule, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut last = None;
        let mut ran = Vec::new();
        let mut now = from;
        while now <= until {
            match decide(schedule, last, from, now, None) {
                Decision::Wait { next } => assert!(next.is_some_and(|next| next > now)),
                Decision::Run {
                    scheduled,
                    skipped,
                    next,
                } => {
                    assert_eq!((scheduled, skipped), (now, 0), "ticks every minute");
                    assert!(next.is_some_and(|next| next > now));
                    ran.push(scheduled);
                    last = Some(scheduled);
                }
                missed => panic!("no deadline, yet {missed:?}"),
            }
            now += TimeDelta::minutes(1);
        }
        ran
    }

    fn utcs(texts: &[&str]) -> Vec<DateTime<Utc>> {
        texts.iter().map(|text| utc(text)).collect()
    }

    #[test]
    fn every_macro_means_what_kubernetes_says() {
        let after = utc("2026-05-13T10:20:00Z"); // a Wednesday
        let cases = [
            ("@hourly", "2026-05-13T11:00:00Z"),
            ("@daily", "2026-05-14T00:00:00Z"),
            ("@midnight", "2026-05-14T00:00:00Z"),
            ("@weekly", "2026-05-17T00:00:00Z"),
            ("@monthly", "2026-06-01T00:00:00Z"),
            ("@yearly", "2027-01-01T00:00:00Z"),
            ("@annually", "2027-01-01T00:00:00Z"),
            ("@DAILY", "2026-05-14T00:00:00Z"),
        ];
        for (expression, next) in cases {
            let parsed = schedule(expression, None);
            assert_eq!(parsed.next_after(after), Some(utc(next)), "{expression}");
        }
        let berlin = schedule("@daily", Some("Europe/Berlin"));
        assert_eq!(berlin.next_after(after), Some(utc("2026-05-13T22:00:00Z")));
    }

    #[test]
    fn invalid_expressions_name_the_field_the_value_and_the_reason() {
        let message = |expression: &str| {
            Schedule::parse(expression, None)
                .expect_err(expression)
                .to_string()
        };
        assert_eq!(
            message("0 0 * * * *"),
            "spec.schedule: Invalid value: \"0 0 * * * *\": expected 5 fields (minute hour \
             day-of-month month day-of-week) or a macro such as @daily, found 6"
        );
        assert!(message("0 0 0 * * * 2026").ends_with("found 7"));
        assert!(message("").ends_with("found 0"));
        assert_eq!(
            message("@reboot"),
            "spec.schedule: Invalid value: \"@reboot\": unknown macro, expected one of @yearly, \
             @annually, @monthly, @weekly, @daily, @midnight, @hourly"
        );
        assert_eq!(
            message("61 * * * *"),
            "spec.schedule: Invalid value: \"61 * * * *\": Component error: Number out of bounds."
        );
        assert!(message("0 0 * * x").starts_with("spec.schedule: Invalid value: \"0 0 * * x\": "));
        assert_eq!(
            message("0 0 30 2 *"),
            "spec.schedule: Invalid value: \"0 0 30 2 *\": it matches no date (for example \
             February 30)"
        );
    }

    #[test]
    fn unknown_time_zones_name_the_field_the_value_and_the_reason() {
        for zone in ["Mars/Olympus_Mons", "america/new_york", ""] {
            let error = Schedule::parse("0 2 * * *", Some(zone)).expect_err(zone);
            assert_eq!(
                error.to_string(),
                format!(
                    "spec.timeZone: Invalid value: {zone:?}: not a time zone of the IANA database \
                     such as \"Europe/Berlin\" or \"UTC\" (names are case-sensitive)"
                )
            );
        }
        let utc_default = schedule("0 2 * * *", None);
        let explicit = schedule("0 2 * * *", Some("UTC"));
        let after = utc("2026-01-01T00:00:00Z");
        assert_eq!(
            utc_default.next_after(after),
            Some(utc("2026-01-01T02:00:00Z"))
        );
        assert_eq!(utc_default.next_after(after), explicit.next_after(after));
    }

    #[test]
    fn first_evaluation_counts_from_creation() {
        let hourly = schedule("0 * * * *", None);
        let created = utc("2026-05-13T10:00:00Z");
        // The instant at creation never runs.
        assert_eq!(
            decide(&hourly, None, created, utc("2026-05-13T10:30:00Z"), None),
            Decision::Wait {
                next: Some(utc("2026-05-13T11:00:00Z"))
            }
        );
        assert_eq!(
            decide(&hourly, None, created, utc("2026-05-13T11:05:00Z"), None),
            Decision::Run {
                scheduled: utc("2026-05-13T11:00:00Z"),
                skipped: 0,
                next: Some(utc("2026-05-13T12:00:00Z"))
            }
        );
    }

    #[test]
    fn an_instant_runs_at_its_exact_boundary_and_once_recorded_waits() {
        let daily = schedule("0 14 * * *", None);
        let created = utc("2026-12-01T09:00:00Z");
        let scheduled = utc("2026-12-03T14:00:00Z");
        let last = Some(utc("2026-12-02T14:00:00Z"));
        assert_eq!(
            decide(
                &daily,
                last,
                created,
                scheduled - TimeDelta::seconds(1),
                None
            ),
            Decision::Wait {
                next: Some(scheduled)
            }
        );
        assert_eq!(
            decide(&daily, last, created, scheduled, None),
            Decision::Run {
                scheduled,
                skipped: 0,
                next: Some(utc("2026-12-04T14:00:00Z"))
            }
        );
        assert_eq!(
            decide(&daily, Some(scheduled), created, scheduled, None),
            Decision::Wait {
                next: Some(utc("2026-12-04T14:00:00Z"))
            }
        );
    }

    #[test]
    fn a_restart_with_the_same_state_repeats_the_run_until_it_is_recorded() {
        let every_15 = schedule("*/15 * * * *", None);
        let created = utc("2026-01-01T00:00:00Z");
        let last = Some(utc("2026-03-01T08:00:00Z"));
        let now = utc("2026-03-01T08:20:07Z");
        let expected = Decision::Run {
            scheduled: utc("2026-03-01T08:15:00Z"),
            skipped: 0,
            next: Some(utc("2026-03-01T08:30:00Z")),
        };
        assert_eq!(decide(&every_15, last, created, now, None), expected);
        // The operator restarts before recording: same answer, and still so a little later.
        let reparsed = schedule("*/15 * * * *", None);
        assert_eq!(decide(&reparsed, last, created, now, None), expected);
        let later = now + TimeDelta::minutes(5);
        assert_eq!(decide(&reparsed, last, created, later, None), expected);
        // Recorded: the instant is never due again.
        let recorded = Some(utc("2026-03-01T08:15:00Z"));
        assert_eq!(
            decide(&reparsed, recorded, created, later, None),
            Decision::Wait {
                next: Some(utc("2026-03-01T08:30:00Z"))
            }
        );
    }

    #[test]
    fn several_missed_instants_run_only_the_latest_and_count_the_rest() {
        let daily = schedule("@daily", None);
        let created = utc("2026-01-01T00:00:00Z");
        let last = Some(utc("2026-01-10T00:00:00Z"));
        // Down from the 10th to the 20th at noon: the 11th to the 20th were due.
        assert_eq!(
            decide(&daily, last, created, utc("2026-01-20T12:00:00Z"), None),
            Decision::Run {
                scheduled: utc("2026-01-20T00:00:00Z"),
                skipped: 9,
                next: Some(utc("2026-01-21T00:00:00Z"))
            }
        );
    }

    #[test]
    fn the_starting_deadline_decides_between_run_and_missed() {
        let daily = schedule("0 3 * * *", Some("Asia/Kolkata")); // 21:30 UTC the day before
        let created = utc("2026-01-01T00:00:00Z");
        let last = Some(utc("2026-01-03T21:30:00Z"));
        let scheduled = utc("2026-01-05T21:30:00Z");
        let next = Some(utc("2026-01-06T21:30:00Z"));
        let deadline = Some(TimeDelta::seconds(300));
        assert_eq!(
            decide(
                &daily,
                last,
                created,
                scheduled + TimeDelta::seconds(301),
                deadline
            ),
            Decision::Missed {
                scheduled,
                skipped: 1,
                next
            }
        );
        // Exactly at the deadline it still runs, as in Kubernetes.
        assert_eq!(
            decide(
                &daily,
                last,
                created,
                scheduled + TimeDelta::seconds(300),
                deadline
            ),
            Decision::Run {
                scheduled,
                skipped: 1,
                next
            }
        );
        // Without a deadline the latest instant runs however late.
        assert_eq!(
            decide(
                &daily,
                last,
                created,
                scheduled + TimeDelta::hours(23),
                None
            ),
            Decision::Run {
                scheduled,
                skipped: 1,
                next
            }
        );
        // Recording the missed instant ends it.
        assert_eq!(
            decide(
                &daily,
                Some(scheduled),
                created,
                scheduled + TimeDelta::hours(1),
                deadline
            ),
            Decision::Wait { next }
        );
    }

    #[test]
    fn spring_forward_runs_a_skipped_wall_clock_time_once_at_the_end_of_the_gap() {
        // New York skips 02:00-03:00 EST on 2026-03-08; 02:30 runs at 03:00 EDT.
        let new_york = schedule("30 2 * * *", Some("America/New_York"));
        let ran = runs(
            &new_york,
            utc("2026-03-06T12:00:00Z"),
            utc("2026-03-09T12:00:00Z"),
        );
        let expected = [
            "2026-03-07T07:30:00Z", // 02:30 EST
            "2026-03-08T07:00:00Z", // 03:00 EDT, the first instant after the gap
            "2026-03-09T06:30:00Z", // 02:30 EDT
        ];
        assert_eq!(ran, utcs(&expected));
        // Berlin skips 02:00-03:00 CET on 2026-03-29.
        let berlin = schedule("30 2 * * *", Some("Europe/Berlin"));
        let ran = runs(
            &berlin,
            utc("2026-03-27T12:00:00Z"),
            utc("2026-03-30T12:00:00Z"),
        );
        let expected = [
            "2026-03-28T01:30:00Z", // 02:30 CET
            "2026-03-29T01:00:00Z", // 03:00 CEST
            "2026-03-30T00:30:00Z", // 02:30 CEST
        ];
        assert_eq!(ran, utcs(&expected));
        // Lord Howe moves half an hour, skipping 02:00-02:30 +10:30 on 2026-10-04.
        let lord_howe = schedule("15 2 * * *", Some("Australia/Lord_Howe"));
        let ran = runs(
            &lord_howe,
            utc("2026-10-02T00:00:00Z"),
            utc("2026-10-05T00:00:00Z"),
        );
        let expected = [
            "2026-10-02T15:45:00Z", // 02:15 +10:30
            "2026-10-03T15:30:00Z", // 02:30 +11, the first instant after the gap
            "2026-10-04T15:15:00Z", // 02:15 +11
        ];
        assert_eq!(ran, utcs(&expected));
    }

    #[test]
    fn fall_back_runs_a_repeated_wall_clock_time_once() {
        // New York repeats 01:00-02:00 on 2026-11-01: 01:30 EDT (05:30Z) and 01:30 EST (06:30Z).
        let new_york = schedule("30 1 * * *", Some("America/New_York"));
        let ran = runs(
            &new_york,
            utc("2026-10-30T12:00:00Z"),
            utc("2026-11-02T12:00:00Z"),
        );
        let expected = [
            "2026-10-31T05:30:00Z", // 01:30 EDT
            "2026-11-01T05:30:00Z", // 01:30 EDT, first of the two; 06:30Z does not run
            "2026-11-02T06:30:00Z", // 01:30 EST
        ];
        assert_eq!(ran, utcs(&expected));
        // Berlin repeats 02:00-03:00 on 2026-10-25: 02:30 CEST (00:30Z) and 02:30 CET (01:30Z).
        let berlin = schedule("30 2 * * *", Some("Europe/Berlin"));
        let ran = runs(
            &berlin,
            utc("2026-10-23T12:00:00Z"),
            utc("2026-10-26T12:00:00Z"),
        );
        let expected = [
            "2026-10-24T00:30:00Z",
            "2026-10-25T00:30:00Z",
            "2026-10-26T01:30:00Z",
        ];
        assert_eq!(ran, utcs(&expected));
        // Lord Howe repeats 01:30-02:00 on 2026-04-05: 01:45 +11 (14:45Z) and +10:30 (15:15Z).
        let lord_howe = schedule("45 1 * * *", Some("Australia/Lord_Howe"));
        let ran = runs(
            &lord_howe,
            utc("2026-04-03T00:00:00Z"),
            utc("2026-04-06T00:00:00Z"),
        );
        let expected = [
            "2026-04-03T14:45:00Z",
            "2026-04-04T14:45:00Z",
            "2026-04-05T15:15:00Z",
        ];
        assert_eq!(ran, utcs(&expected));
    }

    #[test]
    fn lists_and_steps_of_named_hours_are_wall_clock_times_too() {
        // Croner alone would skip both on the spring day and run 01:30 twice in the autumn.
        let new_york = Some("America/New_York");
        let spring = schedule("0,30 2,14 * * *", new_york);
        let ran = runs(
            &spring,
            utc("2026-03-08T00:00:00Z"),
            utc("2026-03-08T23:59:00Z"),
        );
        let expected = [
            "2026-03-08T07:00:00Z", // 02:00 and 02:30 EST, both skipped: one run at 03:00 EDT
            "2026-03-08T18:00:00Z",
            "2026-03-08T18:30:00Z",
        ];
        assert_eq!(ran, utcs(&expected));
        let autumn = schedule("*/30 1 * * *", new_york);
        let ran = runs(
            &autumn,
            utc("2026-11-01T00:00:00Z"),
            utc("2026-11-01T23:59:00Z"),
        );
        assert_eq!(ran, utcs(&["2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z"]));
    }

    #[test]
    fn wildcard_hours_measure_elapsed_time_across_dst() {
        let hourly = schedule("30 * * * *", Some("America/New_York"));
        // Fall back: 01:30 happens twice, an hour apart, and runs twice.
        let ran = runs(
            &hourly,
            utc("2026-11-01T04:00:00Z"),
            utc("2026-11-01T07:59:00Z"),
        );
        let expected = [
            "2026-11-01T04:30:00Z", // 00:30 EDT
            "2026-11-01T05:30:00Z", // 01:30 EDT
            "2026-11-01T06:30:00Z", // 01:30 EST
            "2026-11-01T07:30:00Z", // 02:30 EST
        ];
        assert_eq!(ran, utcs(&expected));
        // Spring forward: 02:30 does not exist, and an hour after 01:30 EST is 03:30 EDT.
        let ran = runs(
            &hourly,
            utc("2026-03-08T05:00:00Z"),
            utc("2026-03-08T08:59:00Z"),
        );
        let expected = [
            "2026-03-08T05:30:00Z", // 00:30 EST
            "2026-03-08T06:30:00Z", // 01:30 EST
            "2026-03-08T07:30:00Z", // 03:30 EDT
            "2026-03-08T08:30:00Z", // 04:30 EDT
        ];
        assert_eq!(ran, utcs(&expected));
    }

    #[test]
    fn a_half_hour_offset_zone_shifts_every_instant() {
        let kolkata = schedule("0 9 * * 1-5", Some("Asia/Kolkata"));
        let ran = runs(
            &kolkata,
            utc("2026-05-15T00:00:00Z"), // a Friday
            utc("2026-05-19T00:00:00Z"),
        );
        assert_eq!(ran, utcs(&["2026-05-15T03:30:00Z", "2026-05-18T03:30:00Z"]));
    }

    #[test]
    fn a_huge_gap_is_fast_and_finds_the_latest_instant() {
        let started = std::time::Instant::now();
        let every_minute = schedule("* * * * *", None);
        let created = utc("2025-01-01T00:00:00Z");
        assert_eq!(
            decide(
                &every_minute,
                Some(created),
                created,
                utc("2026-01-01T00:00:30Z"),
                None
            ),
            Decision::Run {
                scheduled: utc("2026-01-01T00:00:00Z"),
                skipped: SKIPPED_COUNT_LIMIT,
                next: Some(utc("2026-01-01T00:01:00Z"))
            }
        );
        // Every minute of January only: the latest lies eleven months back.
        let january = schedule("* * * 1 *", Some("Europe/Berlin"));
        assert_eq!(
            decide(
                &january,
                Some(created),
                created,
                utc("2025-12-15T00:00:00Z"),
                Some(TimeDelta::hours(1))
            ),
            Decision::Missed {
                scheduled: utc("2025-01-31T22:59:00Z"), // 23:59 CET
                skipped: SKIPPED_COUNT_LIMIT,
                next: Some(utc("2025-12-31T23:00:00Z")) // 2026-01-01 00:00 CET
            }
        );
        // Hundreds of thousands of instants would take far longer than this, even unoptimised.
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn bisection_agrees_with_walking_every_instant_around_dst() {
        let cases = [
            ("30 * * * *", "2026-11-01T03:00:00Z"),
            ("*/20 1 * * *", "2026-11-01T03:00:00Z"),
            ("0,30 2 * * *", "2026-03-08T03:00:00Z"),
            ("*/10 * * * *", "2026-03-08T05:00:00Z"),
        ];
        for (expression, from) in cases {
            let parsed = schedule(expression, Some("America/New_York"));
            let from = utc(from);
            for minutes in 0..(6 * 60) {
                let now = from + TimeDelta::minutes(minutes) + TimeDelta::seconds(7);
                let Some(first) = parsed.next_after(from).filter(|t| *t <= now) else {
                    continue;
                };
                let walked = parsed.latest_due(from, now).map(|(latest, _)| latest);
                let bisected = parsed.latest_by_bisection(from, first, now);
                assert_eq!(walked, Some(bisected), "{expression} at {now}");
            }
        }
    }

    #[test]
    fn run_ids_are_utc_minutes_and_dns_label_safe() {
        assert_eq!(run_id(utc("2026-12-03T14:00:00Z")), "s20261203-1400");
        assert_eq!(run_id(utc("2026-01-02T03:04:59Z")), "s20260102-0304");
        // The two runs of an hourly schedule in New York's repeated 01:30 get different ids.
        let first = run_id(utc("2026-11-01T05:30:00Z"));
        let second = run_id(utc("2026-11-01T06:30:00Z"));
        assert_ne!(first, second);
        assert!(
            first
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }
}

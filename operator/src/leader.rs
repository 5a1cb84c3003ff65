//! Leader election through a `coordination.k8s.io` Lease, so that several operator replicas can
//! run and only one reconciles. The holder renews the Lease every third of its duration; a
//! replica takes it over once it has not been renewed for a whole duration. A leader that cannot
//! renew within two thirds of the duration stops (its pod restarts as a standby), so that two
//! leaders never act at once for longer than clock skew allows.

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::PostParams;
use kube::{Api, Client};

use crate::clock::{from_time, to_time};
use crate::rbac::Rule;

/// API access leader election needs, in the namespace of the Lease.
pub const RULES: &[Rule] = &[Rule::new(
    "coordination.k8s.io",
    &["leases"],
    &["get", "create", "update"],
)];

/// What a replica does with the Lease as it reads now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// It holds the Lease: renew it.
    Renew,
    /// Free or expired: take it.
    Acquire,
    /// Another replica holds it: wait.
    Wait,
}

/// Pure: the step of replica `me` for a Lease spec read at `now`.
pub fn step(lease: &LeaseSpec, me: &str, now: DateTime<Utc>) -> Step {
    let holder = lease.holder_identity.as_deref().unwrap_or("");
    if holder == me {
        return Step::Renew;
    }
    if holder.is_empty() {
        return Step::Acquire;
    }
    let renewed = lease.renew_time.as_ref().map(|t| from_time(&Time(t.0)));
    let duration = chrono::Duration::seconds(lease.lease_duration_seconds.unwrap_or(0).into());
    match renewed {
        Some(at) if at + duration > now => Step::Wait,
        _ => Step::Acquire,
    }
}

/// The Lease spec after `step` by `me` at `now`.
pub fn next_spec(lease: &LeaseSpec, me: &str, duration: Duration, now: DateTime<Utc>) -> LeaseSpec {
    let at = Some(micro_time(now));
    let taken_over = lease.holder_identity.as_deref() != Some(me);
    LeaseSpec {
        holder_identity: Some(me.to_owned()),
        lease_duration_seconds: Some(duration.as_secs().try_into().unwrap_or(i32::MAX)),
        acquire_time: if taken_over {
            at.clone()
        } else {
            lease.acquire_time.clone()
        },
        renew_time: at,
        lease_transitions: Some(
            lease.lease_transitions.unwrap_or(0)
                + i32::from(taken_over && lease.holder_identity.is_some()),
        ),
        ..lease.clone()
    }
}

/// The spec that gives the Lease up, so that a standby takes over at once.
pub fn released_spec(lease: &LeaseSpec) -> LeaseSpec {
    LeaseSpec {
        holder_identity: None,
        ..lease.clone()
    }
}

fn micro_time(at: DateTime<Utc>) -> MicroTime {
    MicroTime(to_time(at).0)
}

/// One replica's side of the election.
pub struct LeaderElection {
    leases: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

impl LeaderElection {
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: String,
        duration: Duration,
    ) -> Self {
        Self {
            leases: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity,
            duration,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquire(&self) {
        loop {
            match self.try_step().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, lease = %self.name, "reading the Lease failed")
                }
            }
            tokio::time::sleep(self.duration / 3).await;
        }
    }

    /// Renews the Lease until a renewal has failed for two thirds of its duration; returns then.
    pub async fn keep(&self) {
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.duration / 3).await;
            match self.try_step().await {
                Ok(true) => last_renewed = tokio::time::Instant::now(),
                Ok(false) => {
                    tracing::error!(lease = %self.name, "another replica took the Lease");
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, lease = %self.name, "renewing the Lease failed");
                    if last_renewed.elapsed() >= self.duration * 2 / 3 {
                        return;
                    }
                }
            }
        }
    }

    /// Gives the Lease up (on a graceful stop).
    pub async fn release(&self) {
        let result = async {
            let lease = self.leases.get(&self.name).await?;
            let spec = lease.spec.clone().unwrap_or_default();
            if spec.holder_identity.as_deref() != Some(&self.identity) {
                return Ok(());
            }
            let released = Lease {
                spec: Some(released_spec(&spec)),
                ..lease
            };
            self.leases
                .replace(&self.name, &PostParams::default(), &released)
                .await
                .map(|_| ())
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(%error, lease = %self.name, "releasing the Lease failed");
        }
    }

    /// Reads the Lease and acquires or renews it if this replica may; returns whether it holds
    /// it now. A concurrent writer makes the write conflict: that counts as not holding it.
    async fn try_step(&self) -> Result<bool, kube::Error> {
        let now = Utc::now();
        let Some(lease) = self.leases.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(next_spec(
                    &LeaseSpec::default(),
                    &self.identity,
                    self.duration,
                    now,
                )),
            };
            return match self.leases.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(false),
                Err(error) => Err(error),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if step(&spec, &self.identity, now) == Step::Wait {
            return Ok(false);
        }
        let updated = Lease {
            spec: Some(next_spec(&spec, &self.identity, self.duration, now)),
            ..lease
        };
        match self
            .leases
            .replace(&self.name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.is_conflict() => Ok(false),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, second).unwrap()
    }

    fn held_by(holder: &str, renewed: u32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(micro_time(at(renewed))),
            acquire_time: Some(micro_time(at(0))),
            lease_transitions: Some(2),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_lease_is_renewed_by_its_holder_taken_when_free_or_expired_and_else_waited_for() {
        assert_eq!(step(&LeaseSpec::default(), "a", at(0)), Step::Acquire);
        assert_eq!(step(&held_by("a", 0), "a", at(50)), Step::Renew);
        assert_eq!(step(&held_by("b", 10), "a", at(24)), Step::Wait);
        assert_eq!(step(&held_by("b", 10), "a", at(25)), Step::Acquire);
        assert_eq!(
            step(&released_spec(&held_by("b", 10)), "a", at(11)),
            Step::Acquire
        );
    }

    #[test]
    fn taking_over_counts_a_transition_and_renewing_keeps_the_acquire_time() {
        let taken = next_spec(&held_by("b", 0), "a", Duration::from_secs(15), at(30));
        assert_eq!(taken.holder_identity.as_deref(), Some("a"));
        assert_eq!(taken.lease_transitions, Some(3));
        assert_eq!(taken.acquire_time, Some(micro_time(at(30))));
        assert_eq!(taken.renew_time, Some(micro_time(at(30))));

        let renewed = next_spec(&taken, "a", Duration::from_secs(15), at(35));
        assert_eq!(renewed.lease_transitions, Some(3));
        assert_eq!(renewed.acquire_time, Some(micro_time(at(30))));
        assert_eq!(renewed.renew_time, Some(micro_time(at(35))));

        let first = next_spec(&LeaseSpec::default(), "a", Duration::from_secs(15), at(1));
        assert_eq!(first.lease_transitions, Some(0));
    }
}

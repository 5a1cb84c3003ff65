//! mooc-operator: one controller per mooc-recsys kind. Pure builders and decisions (schedules,
//! runs, versions, desired children) sit apart from the reconcile I/O so that they are unit-tested.

pub mod cleanup;
pub mod clock;
pub mod conditions;
pub mod context;
pub mod controllers;
pub mod hash;
pub mod jobs;
pub mod leader;
pub mod metrics;
pub mod pods;
pub mod rbac;
pub mod runner;
pub mod runs;
pub mod schedule;
pub mod versions;

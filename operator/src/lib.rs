//! mooc-operator: one controller per mooc-recsys kind. Pure builders and decisions (schedules,
//! runs, versions, desired children) sit apart from the reconcile I/O so that they are unit-tested.

pub mod clock;
pub mod conditions;
pub mod hash;
pub mod pods;
pub mod runs;
pub mod schedule;

//! Clients of the three stores, built from [`crate::settings`]. Every job takes its connections
//! from here so that timeouts, addressing and commit policy are the same everywhere.

pub mod copy_out;
pub mod kafka;
pub mod postgres;
pub mod s3;

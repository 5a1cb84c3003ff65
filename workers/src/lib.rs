//! Shared by every `mooc-worker` subcommand: connection settings and the clients of the three
//! stores (PostgreSQL, S3, Kafka).

pub mod bundle;
pub mod dropout;
pub mod etl;
pub mod generate;
pub mod health;
pub mod prune;
pub mod registry;
pub mod settings;
pub mod stores;
pub mod termination;

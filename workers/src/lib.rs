//! Shared by every `mooc-worker` subcommand: connection settings and the clients of the three
//! stores (PostgreSQL, S3, Kafka).

pub mod als;
pub mod bundle;
pub mod dropout;
pub mod etl;
pub mod generate;
pub mod health;
pub mod hyperparameters;
pub mod prune;
pub mod registry;
pub mod seeded;
pub mod settings;
pub mod stores;
pub mod termination;
pub mod training;

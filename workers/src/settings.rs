//! Connection settings, read from the environment that the operator (or `dev/env`) provides.
//! Secrets arrive as environment variables from Kubernetes Secrets, never as command-line flags.

use std::env;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("environment variable {0} is not set (on the local platform: eval \"$(dev/env)\")")]
    Missing(&'static str),
}

fn required(name: &'static str) -> Result<String, SettingsError> {
    match env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => Err(SettingsError::Missing(name)),
    }
}

/// PostgreSQL: `DATABASE_URL`.
#[derive(Clone)]
pub struct PostgresSettings {
    pub url: String,
}

impl PostgresSettings {
    pub fn from_env() -> Result<Self, SettingsError> {
        Ok(Self {
            url: required("DATABASE_URL")?,
        })
    }
}

/// An S3-compatible store, addressed path-style so that any endpoint works (SeaweedFS, MinIO,
/// s3s-fs, AWS): `S3_ENDPOINT`, `S3_BUCKET`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
/// `AWS_REGION` (default `us-east-1`).
#[derive(Clone)]
pub struct S3Settings {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl S3Settings {
    pub fn from_env() -> Result<Self, SettingsError> {
        Ok(Self {
            endpoint: required("S3_ENDPOINT")?,
            bucket: required("S3_BUCKET")?,
            region: env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned()),
            access_key_id: required("AWS_ACCESS_KEY_ID")?,
            secret_access_key: required("AWS_SECRET_ACCESS_KEY")?,
        })
    }
}

/// Kafka: `KAFKA_BOOTSTRAP` (comma-separated `host:port` list).
#[derive(Clone, Debug)]
pub struct KafkaSettings {
    pub bootstrap: String,
}

impl KafkaSettings {
    pub fn from_env() -> Result<Self, SettingsError> {
        Ok(Self {
            bootstrap: required("KAFKA_BOOTSTRAP")?,
        })
    }
}

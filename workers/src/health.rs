//! Reachability of the three stores, for `mooc-worker check` (and later the pods' readiness).
//! Each probe does a real round trip and returns what it learned from the server.

use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::settings::{KafkaSettings, PostgresSettings, S3Settings};
use crate::stores;

/// PostgreSQL answers a query; returns its version.
pub async fn postgres(settings: &PostgresSettings) -> anyhow::Result<String> {
    let pool = stores::postgres::connect(settings, 1).await?;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await
        .context("querying PostgreSQL")?;
    pool.close().await;
    Ok(format!("PostgreSQL {version}"))
}

/// The bucket exists and the credentials may read it.
pub async fn s3(settings: &S3Settings) -> anyhow::Result<String> {
    stores::s3::client(settings)
        .head_bucket()
        .bucket(&settings.bucket)
        .send()
        .await
        .with_context(|| format!("bucket {} at {}", settings.bucket, settings.endpoint))?;
    Ok(format!(
        "bucket {} at {}",
        settings.bucket, settings.endpoint
    ))
}

/// The cluster returns its metadata; returns the number of brokers.
pub async fn kafka(settings: &KafkaSettings) -> anyhow::Result<String> {
    let settings = settings.clone();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &settings.bootstrap)
            .create()
            .context("creating a Kafka client")?;
        let metadata = consumer
            .fetch_metadata(None, Duration::from_secs(10))
            .with_context(|| format!("Kafka metadata from {}", settings.bootstrap))?;
        Ok(format!(
            "{} broker(s) at {}",
            metadata.brokers().len(),
            settings.bootstrap
        ))
    })
    .await?
}

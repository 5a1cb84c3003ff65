use anyhow::Context;
use aws_sdk_s3::config::{Credentials, Region};

use crate::settings::S3Settings;

/// An S3 client for any S3-compatible endpoint: path-style addressing, static credentials
/// (from a Secret), SigV4.
pub fn client(settings: &S3Settings) -> aws_sdk_s3::Client {
    let credentials = Credentials::new(
        &settings.access_key_id,
        &settings.secret_access_key,
        None,
        None,
        "mooc-recsys",
    );
    let config = aws_sdk_s3::Config::builder()
        .endpoint_url(&settings.endpoint)
        .region(Region::new(settings.region.clone()))
        .credentials_provider(credentials)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The whole body of `s3://<bucket>/<key>`.
pub async fn read(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> anyhow::Result<Vec<u8>> {
    let context = || format!("reading s3://{bucket}/{key}");
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .with_context(context)?;
    let bytes = object.body.collect().await.with_context(context)?;
    Ok(bytes.into_bytes().to_vec())
}

//! Which S3 objects a load reads, and their bodies as streams.

use anyhow::Context;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

/// One object as listed: the ETag decides whether it changed since it was last loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
    pub etag: String,
}

impl ObjectRef {
    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// ETags compare without their quotes: servers differ in whether listings quote them.
fn etag(raw: Option<&str>) -> String {
    raw.unwrap_or_default().trim_matches('"').to_owned()
}

/// Named keys, or every `.csv` object under a prefix (new objects are picked up on each run).
#[derive(Clone, Debug)]
pub enum Selection {
    Keys(Vec<String>),
    Prefix(String),
}

/// The selected objects, sorted by key.
pub async fn resolve(
    client: &Client,
    bucket: &str,
    selection: &Selection,
) -> anyhow::Result<Vec<ObjectRef>> {
    let listed = match selection {
        Selection::Keys(keys) => keys
            .iter()
            .map(|key| (key.clone(), String::new()))
            .collect(),
        Selection::Prefix(prefix) => list_csv(client, bucket, prefix).await?,
    };
    let mut objects = Vec::with_capacity(listed.len());
    for (key, listed_etag) in listed {
        // Some stores (s3s-fs) list objects without ETags; named keys are never listed.
        let etag = if listed_etag.is_empty() {
            let head = client
                .head_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .with_context(|| format!("s3://{bucket}/{key}: cannot read the object"))?;
            self::etag(head.e_tag())
        } else {
            listed_etag
        };
        objects.push(ObjectRef {
            bucket: bucket.to_owned(),
            key,
            etag,
        });
    }
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(objects)
}

/// `.csv` keys under `prefix`, with their ETags where the listing has them.
async fn list_csv(
    client: &Client,
    bucket: &str,
    prefix: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut listed = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.with_context(|| format!("listing s3://{bucket}/{prefix}"))?;
        for object in page.contents() {
            let key = object.key().unwrap_or_default();
            if key.to_lowercase().ends_with(".csv") {
                listed.push((key.to_owned(), etag(object.e_tag())));
            }
        }
    }
    Ok(listed)
}

/// The object's body as a stream, and the ETag of exactly the version being read (it may have
/// changed since it was listed; the ledger records what was really loaded).
pub async fn open(client: &Client, object: &ObjectRef) -> anyhow::Result<(ByteStream, String)> {
    let response = client
        .get_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .send()
        .await
        .with_context(|| format!("{}: cannot read the object", object.uri()))?;
    let etag = etag(response.e_tag());
    Ok((response.body, etag))
}

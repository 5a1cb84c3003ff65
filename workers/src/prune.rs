//! `mooc-worker prune`: deletes every object under S3 prefixes (model bundles past retention).
//!
//! Every `--uri` is checked before anything is deleted: it must name the configured bucket and a
//! non-empty prefix that ends with `/` and has no `.`, `..` or empty segment, so that a bad URI
//! can never reach the whole bucket or a sibling prefix (`v1/` never matches `v10/...`). Each
//! prefix is then listed page by page (ListObjectsV2 continuation tokens) and every page deleted
//! with one DeleteObjects request (at most 1000 keys); per-key errors in the response fail the
//! prune. An empty or already pruned prefix succeeds with 0 deleted.

use std::fmt;
use std::path::PathBuf;

use anyhow::Context;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use serde::Serialize;

use crate::settings::S3Settings;
use crate::stores;

/// S3 deletes at most this many keys per DeleteObjects request.
pub const MAX_BATCH: i32 = 1000;

/// Per-key failures named in an error message; the rest are counted.
const SHOWN_FAILURES: usize = 5;

#[derive(clap::Args, Debug, Clone)]
pub struct PruneArgs {
    /// A prefix to empty, `s3://<bucket>/<prefix>/` (the bucket must be S3_BUCKET); repeatable.
    #[arg(long = "uri", required = true, value_name = "URI")]
    pub uris: Vec<String>,
    /// Keys per listing page and per DeleteObjects request (S3 allows at most 1000).
    #[arg(long, default_value_t = MAX_BATCH, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub batch_size: i32,
    /// Where the JSON result goes for the operator.
    #[arg(long, default_value = "/dev/termination-log")]
    pub termination_log: PathBuf,
}

/// A prefix to prune, as validated: `s3://{bucket}/{prefix}` with `prefix` ending in `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub bucket: String,
    pub prefix: String,
}

impl Target {
    pub fn uri(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Why a URI is refused; nothing has been deleted when this is returned.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("refusing to prune {uri:?}: {reason}")]
pub struct InvalidUri {
    pub uri: String,
    pub reason: String,
}

/// Parses and checks one `--uri` against the configured bucket. Pure: no I/O.
pub fn parse_uri(uri: &str, configured_bucket: &str) -> Result<Target, InvalidUri> {
    let refuse = |reason: String| InvalidUri {
        uri: uri.to_owned(),
        reason,
    };
    let Some(rest) = uri.strip_prefix("s3://") else {
        return Err(refuse(
            "not an S3 URI; expected s3://<bucket>/<prefix>/".to_owned(),
        ));
    };
    if uri.chars().any(char::is_control) {
        return Err(refuse("it contains control characters".to_owned()));
    }
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(refuse(
            "no bucket; expected s3://<bucket>/<prefix>/".to_owned(),
        ));
    }
    if bucket != configured_bucket {
        return Err(refuse(format!(
            "bucket {bucket:?} is not the configured bucket {configured_bucket:?} (S3_BUCKET)"
        )));
    }
    if prefix.is_empty() {
        return Err(refuse(
            "the prefix is empty: that would delete the whole bucket".to_owned(),
        ));
    }
    let Some(segments) = prefix.strip_suffix('/') else {
        return Err(refuse(format!(
            "the prefix {prefix:?} does not end with '/' (it would also match sibling keys, \
             e.g. v1 matches v10/)"
        )));
    };
    for segment in segments.split('/') {
        let problem = match segment {
            "" => "an empty segment ('//' or a leading '/')",
            "." => "a '.' segment",
            ".." => "a '..' segment",
            _ => continue,
        };
        return Err(refuse(format!("the prefix {prefix:?} has {problem}")));
    }
    Ok(Target {
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
    })
}

/// Every URI checked, in order; the first refused one is the error.
pub fn parse_uris(uris: &[String], configured_bucket: &str) -> Result<Vec<Target>, InvalidUri> {
    uris.iter()
        .map(|uri| parse_uri(uri, configured_bucket))
        .collect()
}

/// One pruned prefix, as reported to the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pruned {
    pub uri: String,
    pub objects_deleted: u64,
}

/// The whole prune: `{"pruned":[{"uri":…,"objectsDeleted":N}],"objectsDeleted":TOTAL}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneSummary {
    pub pruned: Vec<Pruned>,
    pub objects_deleted: u64,
}

/// A key DeleteObjects reported as not deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    pub key: String,
    pub code: String,
    pub message: String,
}

/// The error for a prefix some of whose keys were not deleted.
fn key_errors_message(target: &Target, deleted: u64, errors: &[KeyError]) -> String {
    let shown: Vec<String> = errors
        .iter()
        .take(SHOWN_FAILURES)
        .map(|e| format!("{} ({}: {})", e.key, e.code, e.message))
        .collect();
    let more = match errors.len().saturating_sub(SHOWN_FAILURES) {
        0 => String::new(),
        hidden => format!(" and {hidden} more"),
    };
    format!(
        "{target}: {} object(s) not deleted ({deleted} deleted): {}{more}",
        errors.len(),
        shown.join("; ")
    )
}

/// Checks every URI, then empties each prefix in order; stops at the first failure, whose error
/// names the URI (the prefixes before it stay pruned; running again is safe).
pub async fn run(args: &PruneArgs, settings: &S3Settings) -> anyhow::Result<PruneSummary> {
    let targets = parse_uris(&args.uris, &settings.bucket)?;
    let batch_size = args.batch_size.clamp(1, MAX_BATCH);
    let client = stores::s3::client(settings);
    let mut pruned = Vec::with_capacity(targets.len());
    for target in &targets {
        let objects_deleted = prune_prefix(&client, target, batch_size).await?;
        tracing::info!(uri = %target, objects_deleted, "pruned");
        pruned.push(Pruned {
            uri: target.uri(),
            objects_deleted,
        });
    }
    Ok(PruneSummary {
        objects_deleted: pruned.iter().map(|p| p.objects_deleted).sum(),
        pruned,
    })
}

/// Deletes every object under `target`, a page of at most `batch_size` keys per DeleteObjects
/// request; returns how many were deleted.
pub async fn prune_prefix(
    client: &aws_sdk_s3::Client,
    target: &Target,
    batch_size: i32,
) -> anyhow::Result<u64> {
    let mut deleted = 0u64;
    let mut errors = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(&target.bucket)
        .prefix(&target.prefix)
        .max_keys(batch_size)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.with_context(|| format!("{target}: listing the objects"))?;
        let mut keys = Vec::with_capacity(page.contents().len());
        for object in page.contents() {
            let key = object.key().unwrap_or_default();
            // A store that lists beyond the prefix must never make us delete outside it.
            if !key.starts_with(&target.prefix) {
                anyhow::bail!("{target}: the listing returned {key:?}, outside the prefix");
            }
            keys.push(key.to_owned());
        }
        // A page may exceed batch_size on stores that ignore max-keys: split it anyway.
        for batch in keys.chunks(batch_size as usize) {
            let (done, failed) = delete_batch(client, target, batch).await?;
            deleted += done;
            errors.extend(failed);
        }
    }
    if errors.is_empty() {
        Ok(deleted)
    } else {
        let message = key_errors_message(target, deleted, &errors);
        tracing::error!("{message}");
        anyhow::bail!(message)
    }
}

/// One DeleteObjects request (quiet: the response lists only the keys that failed); returns the
/// number deleted and the per-key errors.
async fn delete_batch(
    client: &aws_sdk_s3::Client,
    target: &Target,
    keys: &[String],
) -> anyhow::Result<(u64, Vec<KeyError>)> {
    if keys.is_empty() {
        return Ok((0, Vec::new()));
    }
    let objects = keys
        .iter()
        .map(|key| ObjectIdentifier::builder().key(key).build())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{target}: building the DeleteObjects request"))?;
    let delete = Delete::builder()
        .set_objects(Some(objects))
        .quiet(true)
        .build()
        .with_context(|| format!("{target}: building the DeleteObjects request"))?;
    let response = client
        .delete_objects()
        .bucket(&target.bucket)
        .delete(delete)
        .send()
        .await
        .with_context(|| format!("{target}: deleting {} object(s)", keys.len()))?;
    let errors: Vec<KeyError> = response
        .errors()
        .iter()
        .map(|e| KeyError {
            key: e.key().unwrap_or("?").to_owned(),
            code: e.code().unwrap_or("unknown").to_owned(),
            message: e.message().unwrap_or_default().to_owned(),
        })
        .collect();
    let deleted = keys.len().saturating_sub(errors.len()) as u64;
    tracing::debug!(uri = %target, deleted, failed = errors.len(), "DeleteObjects");
    Ok((deleted, errors))
}

/// Reports `summary` for the operator (termination message) and people (stdout).
pub fn report(args: &PruneArgs, summary: &PruneSummary) -> anyhow::Result<()> {
    crate::termination::report(&args.termination_log, summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUCKET: &str = "mooc-data";

    fn target(prefix: &str) -> Target {
        Target {
            bucket: BUCKET.to_owned(),
            prefix: prefix.to_owned(),
        }
    }

    fn refused(uri: &str) -> String {
        parse_uri(uri, BUCKET)
            .expect_err("the URI must be refused")
            .to_string()
    }

    #[test]
    fn a_version_prefix_parses() {
        assert_eq!(
            parse_uri("s3://mooc-data/models/dropout/v1/", BUCKET),
            Ok(target("models/dropout/v1/"))
        );
        assert_eq!(parse_uri("s3://mooc-data/a/", BUCKET), Ok(target("a/")));
        // Dots inside a segment are ordinary characters.
        assert_eq!(
            parse_uri("s3://mooc-data/models/v1.2..3/", BUCKET),
            Ok(target("models/v1.2..3/"))
        );
        assert_eq!(
            target("models/dropout/v1/").uri(),
            "s3://mooc-data/models/dropout/v1/"
        );
    }

    #[test]
    fn another_bucket_is_refused_naming_both() {
        let error = refused("s3://other/models/dropout/v1/");
        assert!(
            error.contains("\"s3://other/models/dropout/v1/\""),
            "{error}"
        );
        assert!(error.contains("\"other\""), "{error}");
        assert!(error.contains("\"mooc-data\""), "{error}");
        assert!(error.contains("S3_BUCKET"), "{error}");
        // A bucket whose name only starts like the configured one is another bucket.
        assert!(refused("s3://mooc-data-2/models/v1/").contains("not the configured bucket"));
    }

    #[test]
    fn the_whole_bucket_is_refused() {
        for uri in ["s3://mooc-data", "s3://mooc-data/"] {
            assert!(refused(uri).contains("the prefix is empty"), "{uri}");
        }
        for uri in ["s3://mooc-data//", "s3:///", "s3://"] {
            assert!(parse_uri(uri, BUCKET).is_err(), "{uri}");
        }
        assert!(refused("s3://mooc-data//").contains("empty segment"));
        assert!(refused("s3:///models/").contains("no bucket"));
    }

    #[test]
    fn a_prefix_must_end_with_a_slash() {
        let error = refused("s3://mooc-data/models/dropout/v1");
        assert!(error.contains("does not end with '/'"), "{error}");
        assert!(refused("s3://mooc-data/models/dropout/v1/ ").contains("does not end with '/'"));
    }

    #[test]
    fn dot_and_empty_segments_are_refused() {
        for (uri, problem) in [
            ("s3://mooc-data/../", "'..' segment"),
            ("s3://mooc-data/models/../", "'..' segment"),
            ("s3://mooc-data/models/../other/", "'..' segment"),
            ("s3://mooc-data/./", "'.' segment"),
            ("s3://mooc-data/models/./v1/", "'.' segment"),
            ("s3://mooc-data/models//v1/", "empty segment"),
            ("s3://mooc-data//models/", "empty segment"),
        ] {
            let error = refused(uri);
            assert!(error.contains(problem), "{uri}: {error}");
        }
    }

    #[test]
    fn other_schemes_and_control_characters_are_refused() {
        for uri in [
            "models/dropout/v1/",
            "/models/dropout/v1/",
            "S3://mooc-data/models/v1/",
            "s3a://mooc-data/models/v1/",
            "https://mooc-data/models/v1/",
            " s3://mooc-data/models/v1/",
        ] {
            assert!(refused(uri).contains("not an S3 URI"), "{uri}");
        }
        assert!(refused("s3://mooc-data/models/v1\n/").contains("control characters"));
    }

    #[test]
    fn one_bad_uri_refuses_them_all() {
        let uris = [
            "s3://mooc-data/models/dropout/v1/".to_owned(),
            "s3://other/models/dropout/v2/".to_owned(),
        ];
        let error = parse_uris(&uris, BUCKET).unwrap_err();
        assert_eq!(error.uri, "s3://other/models/dropout/v2/");
        assert_eq!(
            parse_uris(&uris[..1], BUCKET),
            Ok(vec![target("models/dropout/v1/")])
        );
    }

    #[test]
    fn per_key_errors_name_the_uri_and_the_first_keys() {
        let errors: Vec<KeyError> = (0..7)
            .map(|i| KeyError {
                key: format!("models/v1/k{i}"),
                code: "AccessDenied".to_owned(),
                message: "Access Denied".to_owned(),
            })
            .collect();
        let message = key_errors_message(&target("models/v1/"), 3, &errors);
        assert!(
            message.starts_with("s3://mooc-data/models/v1/: 7 object(s) not deleted (3 deleted): "),
            "{message}"
        );
        assert!(message.contains("models/v1/k0 (AccessDenied: Access Denied)"));
        assert!(message.contains("models/v1/k4"));
        assert!(!message.contains("models/v1/k5"));
        assert!(message.ends_with(" and 2 more"), "{message}");
    }

    #[test]
    fn the_summary_serialises_as_the_operator_reads_it() {
        let summary = PruneSummary {
            pruned: vec![Pruned {
                uri: "s3://mooc-data/models/v1/".to_owned(),
                objects_deleted: 3,
            }],
            objects_deleted: 3,
        };
        assert_eq!(
            serde_json::to_string(&summary).unwrap(),
            r#"{"pruned":[{"uri":"s3://mooc-data/models/v1/","objectsDeleted":3}],"objectsDeleted":3}"#
        );
    }
}

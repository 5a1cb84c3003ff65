//! Immutable model bundles in S3: `<prefix>/<version>/` holds the model's files and, written
//! last, `manifest.json` with every file's SHA-256 and size. A reader starts from the manifest and
//! checks each file against it, so a bundle being written (no manifest yet) or damaged is never
//! used; a version whose manifest exists is never written again.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::prune::Target;
use crate::stores;

pub const MANIFEST: &str = "manifest.json";

/// Format of the manifest; a reader refuses formats it does not know.
pub const FORMAT: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: u32,
    /// `dropout` or `als`.
    pub kind: String,
    pub version: String,
    pub run_id: String,
    /// RFC 3339, UTC.
    pub created: String,
    pub data_fingerprint: Option<String>,
    pub hyperparameters: serde_json::Value,
    pub notes: Option<String>,
    /// The held-out metrics, as reported.
    pub metrics: serde_json::Value,
    pub files: BTreeMap<String, FileEntry>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The entries of `files` for the manifest.
pub fn entries(files: &[(String, Vec<u8>)]) -> BTreeMap<String, FileEntry> {
    files
        .iter()
        .map(|(name, bytes)| {
            let entry = FileEntry {
                sha256: sha256_hex(bytes),
                bytes: bytes.len() as u64,
            };
            (name.clone(), entry)
        })
        .collect()
}

/// `YYYYMMDD-HHMMSS-<6 hex>`: UTC time of the run plus a suffix from the run id and the clock's
/// nanoseconds, so two runs in the same second never collide.
pub fn version_name(now: chrono::DateTime<chrono::Utc>, run_id: &str) -> String {
    let nanos = now.timestamp_nanos_opt().unwrap_or_default();
    let suffix = sha256_hex(format!("{run_id}@{nanos}").as_bytes());
    format!("{}-{}", now.format("%Y%m%d-%H%M%S"), &suffix[..6])
}

/// Writes the bundle under `directory` (a version's prefix ending in `/`): the files, then the
/// manifest. Refuses a directory that already holds a manifest.
pub async fn write(
    s3: &aws_sdk_s3::Client,
    directory: &Target,
    files: &[(String, Vec<u8>)],
    manifest: &Manifest,
) -> anyhow::Result<()> {
    let manifest_key = format!("{}{MANIFEST}", directory.prefix);
    let existing = s3
        .head_object()
        .bucket(&directory.bucket)
        .key(&manifest_key)
        .send()
        .await;
    match existing {
        Ok(_) => bail!("{directory} already holds a bundle; versions are never overwritten"),
        Err(error) if error.as_service_error().is_some_and(|e| e.is_not_found()) => {}
        Err(error) => {
            return Err(error)
                .with_context(|| format!("checking s3://{}/{manifest_key}", directory.bucket));
        }
    }
    let manifest_bytes = serde_json::to_vec_pretty(manifest)?;
    let all = files
        .iter()
        .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
        .chain([(MANIFEST, manifest_bytes.as_slice())]);
    for (name, bytes) in all {
        let key = format!("{}{name}", directory.prefix);
        s3.put_object()
            .bucket(&directory.bucket)
            .key(&key)
            .body(ByteStream::from(bytes.to_vec()))
            .send()
            .await
            .with_context(|| format!("writing s3://{}/{key}", directory.bucket))?;
    }
    Ok(())
}

/// A bundle as read and verified.
pub struct Bundle {
    pub manifest: Manifest,
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Bundle {
    pub fn file(&self, name: &str) -> anyhow::Result<&[u8]> {
        self.files
            .get(name)
            .map(Vec::as_slice)
            .with_context(|| format!("bundle {} has no {name}", self.manifest.version))
    }
}

/// Reads the bundle under `directory`, checking every file against the manifest.
pub async fn read(s3: &aws_sdk_s3::Client, directory: &Target) -> anyhow::Result<Bundle> {
    let manifest_key = format!("{}{MANIFEST}", directory.prefix);
    let manifest: Manifest = serde_json::from_slice(
        &stores::s3::read(s3, &directory.bucket, &manifest_key)
            .await
            .with_context(|| format!("{directory} is not a complete bundle (no {MANIFEST})"))?,
    )
    .with_context(|| format!("parsing {directory}{MANIFEST}"))?;
    if manifest.format != FORMAT {
        bail!(
            "{directory}{MANIFEST} has format {}, this reader knows {FORMAT}",
            manifest.format
        );
    }
    let mut files = BTreeMap::new();
    for (name, entry) in &manifest.files {
        let bytes = stores::s3::read(
            s3,
            &directory.bucket,
            &format!("{}{name}", directory.prefix),
        )
        .await?;
        let sha256 = sha256_hex(&bytes);
        if sha256 != entry.sha256 || bytes.len() as u64 != entry.bytes {
            bail!(
                "{directory}{name} does not match the manifest: {} bytes with SHA-256 {sha256}, \
                 expected {} bytes with {}",
                bytes.len(),
                entry.bytes,
                entry.sha256
            );
        }
        files.insert(name.clone(), bytes);
    }
    Ok(Bundle { manifest, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_by_time_and_differ_within_a_second() {
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let a = version_name(at("2026-12-04T10:00:00.1Z"), "g1");
        let b = version_name(at("2026-12-04T10:00:00.2Z"), "g1");
        let c = version_name(at("2026-12-04T10:00:01Z"), "g1");
        assert!(a.starts_with("20261204-100000-") && a.len() == 22, "{a}");
        assert_ne!(a, b);
        assert!(b < c && a < c);
    }

    #[test]
    fn entries_hold_each_files_checksum_and_size() {
        let entries = entries(&[("model.txt".into(), b"abc".to_vec())]);
        assert_eq!(
            entries["model.txt"],
            FileEntry {
                sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
                bytes: 3
            }
        );
    }
}

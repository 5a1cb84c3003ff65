//! The mooc-recsys custom resources. Every kind is namespaced and served under one API group and
//! version; `kubectl get mooc` lists them all through the shared category.

// `#[kube(printcolumn(...))]` repeats `type_` and friends once per column, by design.
#![allow(clippy::duplicated_attributes)]

pub mod als;
pub mod common;
pub mod dataload;
pub mod model;
pub mod stream;
pub mod training;

use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use als::{ALSJob, ALSJobSpec};
pub use dataload::{DataLoad, DataLoadSpec, DataLoadStatus};
pub use model::ModelStatus;
pub use stream::{StreamDeployment, StreamDeploymentSpec, StreamDeploymentStatus};
pub use training::{TrainingRun, TrainingRunSpec};

/// API group of every mooc-recsys kind.
pub const GROUP: &str = "mooc.recsys.io";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";
/// `kubectl get <category>` lists all four kinds.
pub const CATEGORY: &str = "mooc";

/// `group/version`, as written in a manifest's `apiVersion`.
pub fn api_version() -> String {
    format!("{GROUP}/{VERSION}")
}

/// The four CustomResourceDefinitions, in the order a person reads them.
pub fn definitions() -> Vec<CustomResourceDefinition> {
    [
        DataLoad::crd(),
        TrainingRun::crd(),
        ALSJob::crd(),
        StreamDeployment::crd(),
    ]
    .into_iter()
    .map(polish)
    .collect()
}

/// Makes the generated schema read well in `kubectl explain` and pass the API server without
/// warnings: doc comments become one paragraph per blank-line block, and Rust's unsigned formats
/// (unknown to OpenAPI) become `int64`, their `minimum: 0` staying.
fn polish(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    match (key.as_str(), item) {
                        ("description", serde_json::Value::String(text)) => {
                            *text = unwrap_lines(text)
                        }
                        ("format", serde_json::Value::String(format))
                            if format.starts_with("uint") =>
                        {
                            *format = "int64".into()
                        }
                        (_, item) => walk(item),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(crd).expect("a CRD serialises");
    walk(&mut value);
    serde_json::from_value(value).expect("polishing keeps a valid CRD")
}

/// Joins the lines of each paragraph of a doc comment.
fn unwrap_lines(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            paragraph
                .split('\n')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Where the chart keeps its CRDs, relative to the repository root.
pub const CHART_CRDS_DIR: &str = "charts/mooc-recsys/crds";
/// All four CRDs in one file, for `kubectl apply -f` and GitOps.
pub const MANIFEST_CRDS: &str = "manifests/crds.yaml";

/// The CRD files as they must read: `(path under root, YAML text)`.
pub fn generated_files(root: &Path) -> Vec<(PathBuf, String)> {
    const HEADER: &str =
        "# Generated from the Rust types by `cargo run -p mooc-crds --bin crdgen`; do not edit.\n";
    let documents: Vec<(String, String)> = definitions()
        .into_iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let yaml = serde_yaml::to_string(&crd).expect("a CRD serialises to YAML");
            (name, yaml)
        })
        .collect();
    let mut files: Vec<(PathBuf, String)> = documents
        .iter()
        .map(|(name, yaml)| {
            (
                root.join(CHART_CRDS_DIR).join(format!("{name}.yaml")),
                format!("{HEADER}{yaml}"),
            )
        })
        .collect();
    let all: Vec<&str> = documents.iter().map(|(_, yaml)| yaml.as_str()).collect();
    files.push((
        root.join(MANIFEST_CRDS),
        format!("{HEADER}{}", all.join("---\n")),
    ));
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_version_joins_group_and_version() {
        assert_eq!(api_version(), "mooc.recsys.io/v1alpha1");
    }

    #[test]
    fn doc_comment_paragraphs_are_unwrapped() {
        assert_eq!(unwrap_lines("one\n two\n\nthree"), "one two\n\nthree");
    }

    /// Paths of the schema's properties that have no description (`kubectl explain` would show
    /// them bare).
    fn undocumented(schema: &serde_json::Value, path: &str, out: &mut Vec<String>) {
        if let Some(properties) = schema["properties"].as_object() {
            for (name, property) in properties {
                let here = format!("{path}.{name}");
                let described = property["description"]
                    .as_str()
                    .is_some_and(|d| !d.trim().is_empty());
                if !described {
                    out.push(here.clone());
                }
                undocumented(property, &here, out);
            }
        }
        if schema["items"].is_object() {
            undocumented(&schema["items"], &format!("{path}[]"), out);
        }
        if schema["additionalProperties"].is_object() {
            undocumented(&schema["additionalProperties"], &format!("{path}{{}}"), out);
        }
    }

    #[test]
    fn every_spec_and_status_field_is_documented_for_kubectl_explain() {
        for crd in definitions() {
            let version = &crd.spec.versions[0];
            let schema =
                serde_json::to_value(&version.schema.as_ref().unwrap().open_api_v3_schema).unwrap();
            let mut missing = Vec::new();
            for part in ["spec", "status"] {
                undocumented(&schema["properties"][part], part, &mut missing);
            }
            assert!(
                missing.is_empty(),
                "{}: fields without a description: {missing:#?}",
                crd.spec.names.kind
            );
        }
    }

    #[test]
    fn every_kind_is_in_the_category_with_its_short_name() {
        let names: Vec<(String, Vec<String>, Vec<String>)> = definitions()
            .into_iter()
            .map(|crd| {
                let names = crd.spec.names;
                (
                    names.kind,
                    names.short_names.unwrap_or_default(),
                    names.categories.unwrap_or_default(),
                )
            })
            .collect();
        let mooc = vec!["mooc".to_owned()];
        assert_eq!(
            names,
            vec![
                ("DataLoad".into(), vec!["dl".into()], mooc.clone()),
                ("TrainingRun".into(), vec!["tr".into()], mooc.clone()),
                ("ALSJob".into(), vec!["als".into()], mooc.clone()),
                ("StreamDeployment".into(), vec!["sd".into()], mooc),
            ]
        );
    }
}

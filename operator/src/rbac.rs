//! The operator's RBAC rules. Each module that calls the API declares what it needs next to the
//! code (`RULES`); this module merges them into the ClusterRole written to `manifests/rbac.yaml`
//! (by `cargo run -p mooc-operator --bin rbacgen`; a test fails when the file drifts). Secrets are
//! never read: worker pods get them through `secretKeyRef`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Name of the ClusterRole (and of the operator's ServiceAccount in the manifests).
pub const ROLE_NAME: &str = "mooc-operator";
/// Where the generated ClusterRole is committed.
pub const MANIFEST: &str = "manifests/rbac.yaml";

/// Access to some resources of one API group.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub group: &'static str,
    pub resources: &'static [&'static str],
    pub verbs: &'static [&'static str],
}

impl Rule {
    pub const fn new(
        group: &'static str,
        resources: &'static [&'static str],
        verbs: &'static [&'static str],
    ) -> Self {
        Self {
            group,
            resources,
            verbs,
        }
    }
}

/// Every module's rules.
fn declared() -> impl Iterator<Item = &'static Rule> {
    use crate::controllers::{dataload, model, stream};
    [
        dataload::RULES,
        model::RULES,
        stream::RULES,
        crate::runner::RULES,
        crate::leader::RULES,
    ]
    .into_iter()
    .flatten()
}

/// The declared rules merged: one rule per (group, verbs), resources sorted, nothing twice.
pub fn rules() -> Vec<PolicyRule> {
    let mut verbs_of: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for rule in declared() {
        for resource in rule.resources {
            let verbs = verbs_of.entry((rule.group, resource)).or_default();
            verbs.extend(rule.verbs);
        }
    }
    let mut grouped: BTreeMap<(&str, Vec<&str>), Vec<&str>> = BTreeMap::new();
    for ((group, resource), mut verbs) in verbs_of {
        verbs.sort_by_key(|verb| VERB_ORDER.iter().position(|v| v == verb));
        verbs.dedup();
        grouped.entry((group, verbs)).or_default().push(resource);
    }
    grouped
        .into_iter()
        .map(|((group, verbs), resources)| PolicyRule {
            api_groups: Some(vec![group.to_owned()]),
            resources: Some(resources.into_iter().map(str::to_owned).collect()),
            verbs: verbs.into_iter().map(str::to_owned).collect(),
            ..PolicyRule::default()
        })
        .collect()
}

/// Verbs in the order people read them.
const VERB_ORDER: [&str; 7] = [
    "get", "list", "watch", "create", "update", "patch", "delete",
];

pub fn cluster_role() -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(ROLE_NAME.to_owned()),
            labels: Some(
                [(
                    "app.kubernetes.io/name".to_owned(),
                    "mooc-operator".to_owned(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        rules: Some(rules()),
        aggregation_rule: None,
    }
}

/// `manifests/rbac.yaml` under `root` and its generated text.
pub fn generated_file(root: &Path) -> (PathBuf, String) {
    const HEADER: &str = "# Generated from the operator's RULES by `cargo run -p mooc-operator --bin rbacgen`; do not edit.\n";
    let yaml = serde_yaml::to_string(&cluster_role()).expect("a ClusterRole serialises to YAML");
    (root.join(MANIFEST), format!("{HEADER}{yaml}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verbs(rules: &[PolicyRule], group: &str, resource: &str) -> Vec<String> {
        rules
            .iter()
            .filter(|r| {
                r.api_groups.as_deref() == Some(&[group.to_owned()])
                    && r.resources
                        .as_ref()
                        .is_some_and(|rs| rs.iter().any(|x| x == resource))
            })
            .flat_map(|r| r.verbs.clone())
            .collect()
    }

    #[test]
    fn rules_merge_per_resource_and_never_touch_secrets() {
        let rules = rules();
        assert_eq!(
            verbs(&rules, "mooc.recsys.io", "dataloads"),
            ["get", "list", "watch"]
        );
        assert_eq!(
            verbs(&rules, "mooc.recsys.io", "trainingruns/status"),
            ["get", "update"]
        );
        assert_eq!(
            verbs(&rules, "batch", "jobs"),
            ["get", "list", "watch", "create", "patch", "delete"]
        );
        assert_eq!(verbs(&rules, "", "pods"), ["get", "list"]);
        assert!(verbs(&rules, "", "secrets").is_empty());
        // Our kinds' specs are never written, only their status; the model kinds are patched
        // for their bundle-cleanup finalizer (metadata) and nothing else.
        for kind in ["dataloads", "trainingruns", "alsjobs", "streamdeployments"] {
            let written: Vec<String> = verbs(&rules, "mooc.recsys.io", kind)
                .into_iter()
                .filter(|v| v == "update" || v == "patch")
                .collect();
            let finalized = matches!(kind, "trainingruns" | "alsjobs");
            assert_eq!(
                written,
                if finalized { vec!["patch"] } else { vec![] },
                "{kind}"
            );
        }
    }
}

//! The worker pods: one container named `worker`, shaped by the resource's `pod` settings, with
//! `podOverrides` merged last.

use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, PodSecurityContext,
    PodSpec, SeccompProfile, SecretKeySelector, SecurityContext, Volume, VolumeMount,
};
use mooc_crds::common::{PodSettings, PullPolicy, S3Bucket};
use serde_json::Value;

/// Name of the worker container (and the key `podOverrides` merges containers by).
pub const WORKER_CONTAINER: &str = "worker";
const SCRATCH_VOLUME: &str = "tmp";

#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error("spec.pod.podOverrides does not make a valid PodSpec: {0}")]
    Overrides(serde_json::Error),
}

/// An environment variable with a literal value.
pub fn literal(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        value_from: None,
    }
}

/// An environment variable read from a Secret's key when the container starts.
pub fn from_secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_owned(),
                key: key.to_owned(),
                optional: None,
            }),
            ..EnvVarSource::default()
        }),
    }
}

/// The settings `mooc-worker` reads for an S3 bucket; the credentials come from their Secret.
pub fn s3_env(bucket: &S3Bucket) -> Vec<EnvVar> {
    let credentials = &bucket.credentials_secret_ref;
    vec![
        literal("S3_ENDPOINT", &bucket.endpoint),
        literal("S3_BUCKET", &bucket.bucket),
        literal("AWS_REGION", &bucket.region),
        from_secret(
            "AWS_ACCESS_KEY_ID",
            &credentials.name,
            &credentials.access_key_id_key,
        ),
        from_secret(
            "AWS_SECRET_ACCESS_KEY",
            &credentials.name,
            &credentials.secret_access_key_key,
        ),
    ]
}

/// The pod spec of a worker: `container` gets the image, resources and a restricted security
/// context; the pod gets the placement settings; then the overrides are merged over it all.
pub fn worker_pod(
    settings: &PodSettings,
    default_image: &str,
    mut container: Container,
    mut pod: PodSpec,
) -> Result<PodSpec, PodError> {
    container.name = WORKER_CONTAINER.to_owned();
    container.image = Some(
        settings
            .image
            .clone()
            .unwrap_or_else(|| default_image.to_owned()),
    );
    container.image_pull_policy = settings.image_pull_policy.map(|policy| {
        match policy {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
        .to_owned()
    });
    container.resources = settings.resources.clone();
    // The result travels in the termination message; a crash before writing it still leaves the
    // log tail there.
    container.termination_message_policy = Some("FallbackToLogsOnError".into());
    container.security_context = Some(SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        ..SecurityContext::default()
    });
    // The root filesystem is read-only; scratch space is an emptyDir.
    container
        .volume_mounts
        .get_or_insert_with(Vec::new)
        .push(VolumeMount {
            name: SCRATCH_VOLUME.into(),
            mount_path: "/tmp".into(),
            ..VolumeMount::default()
        });
    pod.volumes.get_or_insert_with(Vec::new).push(Volume {
        name: SCRATCH_VOLUME.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    });
    pod.containers = vec![container];
    pod.node_selector = settings.node_selector.clone();
    pod.tolerations = settings.tolerations.clone();
    pod.service_account_name = settings.service_account_name.clone();
    // Workers need no API access.
    pod.automount_service_account_token = Some(false);
    pod.security_context = Some(PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(65534),
        run_as_group: Some(65534),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..PodSecurityContext::default()
    });
    match &settings.pod_overrides {
        None => Ok(pod),
        Some(overrides) => {
            let mut merged = serde_json::to_value(&pod).map_err(PodError::Overrides)?;
            merge(&mut merged, overrides);
            serde_json::from_value(merged).map_err(PodError::Overrides)
        }
    }
}

/// Strategic-merge-like: objects merge key by key, `null` removes a key, lists of objects that
/// all have a `name` (containers, env, volumes, volumeMounts) merge by name, other lists replace.
pub fn merge(base: &mut Value, overrides: &Value) {
    match (base, overrides) {
        (Value::Object(base), Value::Object(overrides)) => {
            for (key, value) in overrides {
                if value.is_null() {
                    base.remove(key);
                } else if let Some(existing) = base.get_mut(key) {
                    merge(existing, value);
                } else {
                    base.insert(key.clone(), value.clone());
                }
            }
        }
        (Value::Array(base), Value::Array(overrides)) if named(base) && named(overrides) => {
            for item in overrides {
                match base
                    .iter_mut()
                    .find(|existing| existing["name"] == item["name"])
                {
                    Some(existing) => merge(existing, item),
                    None => base.push(item.clone()),
                }
            }
        }
        (base, overrides) => *base = overrides.clone(),
    }
}

fn named(items: &[Value]) -> bool {
    items
        .iter()
        .all(|item| item.get("name").is_some_and(Value::is_string))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container() -> Container {
        Container {
            args: Some(vec!["etl".into()]),
            env: Some(vec![literal("A", "1")]),
            ..Container::default()
        }
    }

    #[test]
    fn settings_shape_the_pod_and_the_default_image_applies() {
        let settings: PodSettings = serde_json::from_value(json!({
            "nodeSelector": { "pool": "batch" },
            "imagePullPolicy": "IfNotPresent",
            "resources": { "limits": { "memory": "1Gi" } },
        }))
        .unwrap();
        let pod = worker_pod(&settings, "mooc/worker:1", container(), PodSpec::default()).unwrap();
        let worker = &pod.containers[0];
        assert_eq!(worker.name, "worker");
        assert_eq!(worker.image.as_deref(), Some("mooc/worker:1"));
        assert_eq!(worker.image_pull_policy.as_deref(), Some("IfNotPresent"));
        assert_eq!(
            serde_json::to_value(&worker.resources).unwrap(),
            json!({ "limits": { "memory": "1Gi" } })
        );
        assert_eq!(pod.node_selector.unwrap()["pool"], "batch");
        assert_eq!(pod.automount_service_account_token, Some(false));
    }

    #[test]
    fn overrides_merge_containers_and_env_by_name_and_replace_plain_lists() {
        let settings: PodSettings = serde_json::from_value(json!({
            "image": "own/worker:2",
            "podOverrides": {
                "priorityClassName": "batch-low",
                "containers": [{ "name": "worker", "args": ["echo", "hi"], "env": [{ "name": "B", "value": "2" }] }],
                "securityContext": null,
            },
        }))
        .unwrap();
        let pod = worker_pod(&settings, "mooc/worker:1", container(), PodSpec::default()).unwrap();
        let worker = &pod.containers[0];
        assert_eq!(pod.containers.len(), 1);
        assert_eq!(worker.image.as_deref(), Some("own/worker:2"));
        assert_eq!(
            worker.args.as_deref(),
            Some(&["echo".to_owned(), "hi".to_owned()][..])
        );
        let env: Vec<&str> = worker
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(env, ["A", "B"]);
        assert_eq!(pod.priority_class_name.as_deref(), Some("batch-low"));
        assert!(pod.security_context.is_none(), "null removes a key");
    }

    #[test]
    fn an_override_of_the_wrong_type_is_an_error_naming_the_field() {
        let settings: PodSettings =
            serde_json::from_value(json!({ "podOverrides": { "nodeSelector": "not-a-map" } }))
                .unwrap();
        let error = worker_pod(&settings, "img", container(), PodSpec::default()).unwrap_err();
        assert!(
            error.to_string().starts_with("spec.pod.podOverrides"),
            "{error}"
        );
    }
}

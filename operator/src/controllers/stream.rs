//! StreamDeployment: waits for an active (or pinned) version of its dropout model and its
//! recommender, publishes them in a ConfigMap the consumers watch (a new version is hot-reloaded,
//! the pods are not restarted), and runs the consumer Deployment and the optional simulator.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EnvVar, PodSpec, PodTemplateSpec, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use mooc_crds::common::ModelVersion;
use mooc_crds::model::ModelStatus;
use mooc_crds::stream::{
    ModelRef, PublishedModel, PublishedModels, ServingPhase, StreamDeploymentStatus,
};
use mooc_crds::{ALSJob, DataLoad, StreamDeployment, TrainingRun};
use serde_json::json;

use super::{apply, instrumented, now_time, write_status};
use crate::conditions::{DEPENDENCIES_READY, READY, RECONCILING, STALLED, Update};
use crate::context::{Context, Error, Result};
use crate::controllers::model::ModelKind;
use crate::jobs::{self, MANAGED_BY};
use crate::pods::{self, literal};
use crate::rbac::Rule;

/// API access this controller needs: its kind, the models and data it follows, its children.
pub const RULES: &[Rule] = &[
    Rule::new(
        "mooc.recsys.io",
        &["streamdeployments", "trainingruns", "alsjobs", "dataloads"],
        &["get", "list", "watch"],
    ),
    Rule::new(
        "mooc.recsys.io",
        &["streamdeployments/status"],
        &["get", "update"],
    ),
    Rule::new(
        "apps",
        &["deployments"],
        &["get", "list", "watch", "create", "patch", "delete"],
    ),
    Rule::new(
        "",
        &["configmaps"],
        &["get", "list", "watch", "create", "patch"],
    ),
];

pub const LABEL: &str = "streamdeployment";
const COMPONENT_LABEL: &str = "mooc.recsys.io/component";
/// Where the consumers find the model pointer.
pub const MODELS_DIR: &str = "/etc/mooc/models";
pub const MODELS_FILE: &str = "models.json";
const RESYNC: std::time::Duration = std::time::Duration::from_secs(300);

/// The ConfigMap holding the model pointer.
pub fn models_config_map_name(name: &str) -> String {
    format!("{name}-models")
}

pub fn consumer_name(name: &str) -> String {
    format!("{name}-consumer")
}

pub fn simulator_name(name: &str) -> String {
    format!("{name}-simulator")
}

fn component_labels(sd: &StreamDeployment, component: &str) -> BTreeMap<String, String> {
    let mut labels = jobs::labels(LABEL, &sd.name_any());
    labels.insert(COMPONENT_LABEL.into(), component.into());
    labels
}

/// The label selector of the consumer pods, as the scale subresource reports it.
pub fn consumer_selector(sd: &StreamDeployment) -> String {
    format!(
        "{}={},{COMPONENT_LABEL}=consumer",
        jobs::INSTANCE_LABEL,
        sd.name_any()
    )
}

/// The version a reference resolves to: its pin, else the resource's active version.
pub fn resolve(
    kind: &str,
    reference: &ModelRef,
    status: Option<&ModelStatus>,
) -> Result<PublishedModel, String> {
    let name = &reference.name;
    let status = status.ok_or_else(|| format!("{kind} {name} has no status yet"))?;
    let wanted = match (&reference.pinned_version, &status.active_version) {
        (Some(pinned), _) => pinned,
        (None, Some(active)) => active,
        (None, None) => return Err(format!("{kind} {name} has no active version yet")),
    };
    let version: &ModelVersion = status
        .versions
        .iter()
        .find(|v| &v.version == wanted)
        .ok_or_else(|| format!("{kind} {name} has no version {wanted}"))?;
    Ok(PublishedModel {
        version: version.version.clone(),
        artifact_uri: version.artifact_uri.clone(),
    })
}

/// The pointer consumers watch: `{"dropout": {version, artifactUri}, "als": {...}}`.
pub fn models_config_map(sd: &StreamDeployment, models: &PublishedModels) -> ConfigMap {
    ConfigMap {
        metadata: owned_meta(sd, &models_config_map_name(&sd.name_any()), "models"),
        data: Some(BTreeMap::from([(
            MODELS_FILE.to_owned(),
            json!(models).to_string(),
        )])),
        ..ConfigMap::default()
    }
}

fn owned_meta(sd: &StreamDeployment, name: &str, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: sd.namespace(),
        labels: Some(component_labels(sd, component)),
        owner_references: sd
            .controller_owner_ref(&())
            .map(|reference| vec![reference]),
        ..ObjectMeta::default()
    }
}

/// What the pods need besides the spec: the database and S3 store the models come from.
pub struct Stores<'a> {
    pub dataload: &'a DataLoad,
    pub training_run: &'a TrainingRun,
}

fn store_env(sd: &StreamDeployment, stores: &Stores<'_>) -> Vec<EnvVar> {
    let database = &stores.dataload.spec.target.uri_secret_ref;
    let mut env = vec![pods::from_secret(
        "DATABASE_URL",
        &database.name,
        &database.key,
    )];
    env.extend(pods::s3_env(
        &stores.training_run.training().artifacts.bucket,
    ));
    env.push(literal("KAFKA_BOOTSTRAP", &sd.spec.kafka.bootstrap_servers));
    env
}

fn deployment(sd: &StreamDeployment, component: &str, replicas: i32, pod: PodSpec) -> Deployment {
    let name = format!("{}-{component}", sd.name_any());
    let labels = component_labels(sd, component);
    let selector = BTreeMap::from([
        (jobs::INSTANCE_LABEL.to_owned(), sd.name_any()),
        (COMPONENT_LABEL.to_owned(), component.to_owned()),
    ]);
    Deployment {
        metadata: owned_meta(sd, &name, component),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

/// The consumers: `mooc-worker consume`, with the pointer ConfigMap mounted read-only.
pub fn consumer_deployment(
    sd: &StreamDeployment,
    stores: &Stores<'_>,
    default_image: &str,
) -> Result<Deployment> {
    let kafka = &sd.spec.kafka;
    let group = kafka.group_id.clone().unwrap_or_else(|| sd.name_any());
    let args = [
        "consume",
        "--models",
        &format!("{MODELS_DIR}/{MODELS_FILE}"),
        "--events-topic",
        &kafka.events_topic,
        "--recommendations-topic",
        &kafka.recommendations_topic,
        "--group-id",
        &group,
        "--top-n",
        &sd.spec.top_n.to_string(),
    ];
    let container = Container {
        args: Some(args.map(str::to_owned).to_vec()),
        env: Some(store_env(sd, stores)),
        volume_mounts: Some(vec![VolumeMount {
            name: "models".into(),
            mount_path: MODELS_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    let pod = PodSpec {
        volumes: Some(vec![Volume {
            name: "models".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: models_config_map_name(&sd.name_any()),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        }]),
        ..PodSpec::default()
    };
    let pod = pods::worker_pod(&sd.spec.pod, default_image, container, pod)
        .map_err(|e| Error::InvalidSpec(e.to_string()))?;
    Ok(deployment(sd, "consumer", sd.spec.replicas, pod))
}

/// The simulator: `mooc-worker produce` replaying enrollments as events at the set rate.
pub fn simulator_deployment(
    sd: &StreamDeployment,
    stores: &Stores<'_>,
    default_image: &str,
) -> Result<Option<Deployment>> {
    let Some(simulator) = &sd.spec.simulator else {
        return Ok(None);
    };
    let args = [
        "produce",
        "--topic",
        &sd.spec.kafka.events_topic,
        "--rate",
        &simulator.events_per_second.to_string(),
    ];
    let container = Container {
        args: Some(args.map(str::to_owned).to_vec()),
        env: Some(store_env(sd, stores)),
        ..Container::default()
    };
    let pod = pods::worker_pod(&sd.spec.pod, default_image, container, PodSpec::default())
        .map_err(|e| Error::InvalidSpec(e.to_string()))?;
    Ok(Some(deployment(sd, "simulator", 1, pod)))
}

/// Phase and conditions from the consumer Deployment's status.
pub fn serving_state(
    wanted: i32,
    replicas: i32,
    available: i32,
    updated: bool,
) -> (ServingPhase, Vec<Update<'static>>) {
    let (phase, ready, reconciling) = if wanted == 0 {
        (
            ServingPhase::Scaled,
            Update::new(
                READY,
                true,
                "ScaledToZero",
                "no consumer replicas requested",
            ),
            false,
        )
    } else if updated && available >= wanted && replicas == wanted {
        (
            ServingPhase::Available,
            Update::new(
                READY,
                true,
                "Available",
                format!("{available} of {wanted} consumers available"),
            ),
            false,
        )
    } else {
        (
            ServingPhase::Progressing,
            Update::new(
                READY,
                false,
                "Progressing",
                format!("{available} of {wanted} consumers available"),
            ),
            true,
        )
    };
    let reconciling = if reconciling {
        Update::new(
            RECONCILING,
            true,
            "RollingOut",
            "consumers are starting or rolling out",
        )
    } else {
        Update::new(RECONCILING, false, "Idle", "consumers are as requested")
    };
    (
        phase,
        vec![
            ready,
            reconciling,
            Update::new(STALLED, false, "SpecValid", "the spec is valid"),
        ],
    )
}

pub async fn reconcile(sd: Arc<StreamDeployment>, ctx: Arc<Context>) -> Result<Action> {
    instrumented(LABEL, &*sd, &ctx, reconcile_inner(&sd, &ctx)).await
}

async fn reconcile_inner(sd: &StreamDeployment, ctx: &Context) -> Result<Action> {
    if crate::runner::paused(sd) {
        return Ok(Action::await_change());
    }
    let namespace = sd.namespace().unwrap_or_default();
    let generation = sd.meta().generation;
    let now = now_time(ctx);
    let mut status: StreamDeploymentStatus = sd.status.clone().unwrap_or_default();
    status.selector = Some(consumer_selector(sd));

    let training_run = Api::<TrainingRun>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(&sd.spec.training_run_ref.name)
        .await?;
    let als_job = Api::<ALSJob>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(&sd.spec.als_job_ref.name)
        .await?;
    let dataload = match &training_run {
        Some(tr) => {
            Api::<DataLoad>::namespaced(ctx.client.clone(), &namespace)
                .get_opt(&tr.training().data_load_ref.name)
                .await?
        }
        None => None,
    };
    let dropout = resolve(
        "TrainingRun",
        &sd.spec.training_run_ref,
        training_run.as_ref().and_then(|t| t.status.as_ref()),
    );
    let als = resolve(
        "ALSJob",
        &sd.spec.als_job_ref,
        als_job.as_ref().and_then(|a| a.status.as_ref()),
    );
    let ready_inputs = match (dropout, als, &dataload, &training_run) {
        (Ok(dropout), Ok(als), Some(dataload), Some(training_run)) => Ok((
            PublishedModels {
                dropout: Some(dropout),
                als: Some(als),
            },
            Stores {
                dataload,
                training_run,
            },
        )),
        (dropout, als, _, _) => {
            let mut reasons: Vec<String> =
                [dropout.err(), als.err()].into_iter().flatten().collect();
            if reasons.is_empty() {
                reasons.push("the TrainingRun's DataLoad does not exist".into());
            }
            Err(reasons.join("; "))
        }
    };
    let (models, stores) = match ready_inputs {
        Ok(ready) => ready,
        Err(why) => {
            // Consumers already running keep serving what they have.
            let updates = [
                Update::new(DEPENDENCIES_READY, false, "ModelsNotReady", why.clone()),
                Update::new(
                    READY,
                    status.phase == Some(ServingPhase::Available),
                    "ModelsNotReady",
                    why.clone(),
                ),
                Update::new(RECONCILING, false, "WaitingForModels", why),
                Update::new(STALLED, false, "SpecValid", "the spec is valid"),
            ];
            apply(&mut status.common, updates, generation, &now);
            if status.models.dropout.is_none() {
                status.phase = Some(ServingPhase::Waiting);
            }
            write_status(ctx, sd, |s| s.status = Some(status)).await?;
            return Ok(Action::requeue(RESYNC));
        }
    };

    let params = PatchParams::apply(MANAGED_BY).force();
    let image = &ctx.config.worker_image;
    let config_map = models_config_map(sd, &models);
    Api::<ConfigMap>::namespaced(ctx.client.clone(), &namespace)
        .patch(
            &models_config_map_name(&sd.name_any()),
            &params,
            &Patch::Apply(&config_map),
        )
        .await?;
    if status.models != models {
        let note = format!(
            "publishing dropout {} and ALS {}",
            models.dropout.as_ref().map_or("-", |m| &m.version),
            models.als.as_ref().map_or("-", |m| &m.version)
        );
        ctx.event(sd, false, "ModelsPublished", note).await;
    }
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &namespace);
    let consumer = consumer_deployment(sd, &stores, image)?;
    let applied = deployments
        .patch(
            &consumer_name(&sd.name_any()),
            &params,
            &Patch::Apply(&consumer),
        )
        .await?;
    match simulator_deployment(sd, &stores, image)? {
        Some(simulator) => {
            deployments
                .patch(
                    &simulator_name(&sd.name_any()),
                    &params,
                    &Patch::Apply(&simulator),
                )
                .await?;
        }
        None => match deployments
            .delete(&simulator_name(&sd.name_any()), &DeleteParams::background())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(error.into()),
        },
    }

    let deployment_status = applied.status.clone().unwrap_or_default();
    let updated = deployment_status.observed_generation >= applied.metadata.generation
        && deployment_status.updated_replicas.unwrap_or(0) >= sd.spec.replicas;
    status.replicas = deployment_status.replicas.unwrap_or(0);
    status.available_replicas = deployment_status.available_replicas.unwrap_or(0);
    let (phase, mut updates) = serving_state(
        sd.spec.replicas,
        status.replicas,
        status.available_replicas,
        updated,
    );
    updates.push(Update::new(
        DEPENDENCIES_READY,
        true,
        "ModelsReady",
        "both models have a version to serve",
    ));
    apply(&mut status.common, updates, generation, &now);
    status.phase = Some(phase);
    status.models = models;
    write_status(ctx, sd, |s| s.status = Some(status)).await?;
    Ok(Action::requeue(RESYNC))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn stream_deployment(spec: serde_json::Value) -> StreamDeployment {
        serde_json::from_value(json!({
            "apiVersion": "mooc.recsys.io/v1alpha1", "kind": "StreamDeployment",
            "metadata": { "name": "live", "namespace": "ml", "uid": "u-3" },
            "spec": spec,
        }))
        .unwrap()
    }

    fn spec() -> serde_json::Value {
        json!({
            "kafka": { "bootstrapServers": "kafka:9092" },
            "trainingRunRef": { "name": "dropout" },
            "alsJobRef": { "name": "als" },
            "simulator": { "eventsPerSecond": 50 },
        })
    }

    fn model_status(active: Option<&str>, versions: &[&str]) -> ModelStatus {
        ModelStatus {
            active_version: active.map(str::to_owned),
            versions: versions
                .iter()
                .map(|v| ModelVersion {
                    version: (*v).into(),
                    run: "g1".into(),
                    created: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
                    artifact_uri: format!("s3://m/models/dropout/{v}/"),
                    data_fingerprint: None,
                    metrics: BTreeMap::new(),
                    promotion: None,
                })
                .collect(),
            ..ModelStatus::default()
        }
    }

    fn stores() -> (DataLoad, TrainingRun) {
        let dataload = serde_json::from_value(json!({
            "metadata": { "name": "d" },
            "spec": { "source": { "endpoint": "e", "bucket": "data", "credentialsSecretRef": { "name": "s3" }, "prefix": "in/" },
                      "target": { "uriSecretRef": { "name": "pg", "key": "uri" } } },
        }))
        .unwrap();
        let training_run = serde_json::from_value(json!({
            "metadata": { "name": "dropout" },
            "spec": { "dataLoadRef": { "name": "d" }, "artifacts": { "endpoint": "e", "bucket": "m", "credentialsSecretRef": { "name": "s3" } } },
        }))
        .unwrap();
        (dataload, training_run)
    }

    #[test]
    fn a_pin_wins_over_the_active_version_and_must_exist() {
        let status = model_status(Some("v2"), &["v2", "v1"]);
        let follow = ModelRef {
            name: "dropout".into(),
            pinned_version: None,
        };
        assert_eq!(
            resolve("TrainingRun", &follow, Some(&status))
                .unwrap()
                .version,
            "v2"
        );
        let pinned = ModelRef {
            pinned_version: Some("v1".into()),
            ..follow.clone()
        };
        assert_eq!(
            resolve("TrainingRun", &pinned, Some(&status))
                .unwrap()
                .artifact_uri,
            "s3://m/models/dropout/v1/"
        );
        let missing = ModelRef {
            pinned_version: Some("v0".into()),
            ..follow.clone()
        };
        assert_eq!(
            resolve("TrainingRun", &missing, Some(&status)).unwrap_err(),
            "TrainingRun dropout has no version v0"
        );
        let none = model_status(None, &[]);
        assert!(
            resolve("TrainingRun", &follow, Some(&none))
                .unwrap_err()
                .contains("no active version")
        );
    }

    #[test]
    fn the_consumer_mounts_the_pointer_and_the_simulator_follows_the_spec() {
        let sd = stream_deployment(spec());
        let (dataload, training_run) = stores();
        let stores = Stores {
            dataload: &dataload,
            training_run: &training_run,
        };
        let consumer = consumer_deployment(&sd, &stores, "img").unwrap();
        assert_eq!(consumer.metadata.name.as_deref(), Some("live-consumer"));
        let deployment = consumer.spec.unwrap();
        assert_eq!(deployment.replicas, Some(1));
        let pod = deployment.template.spec.clone().unwrap();
        assert_eq!(
            pod.volumes.as_ref().unwrap()[0]
                .config_map
                .as_ref()
                .unwrap()
                .name,
            "live-models"
        );
        let args = pod.containers[0].args.clone().unwrap();
        assert_eq!(
            args[..3],
            ["consume", "--models", "/etc/mooc/models/models.json"]
        );
        assert!(args.windows(2).any(|w| w == ["--group-id", "live"]));
        let labels = deployment.template.metadata.unwrap().labels.unwrap();
        let selector = consumer_selector(&sd);
        assert!(selector.split(',').all(|pair| {
            let (key, value) = pair.split_once('=').unwrap();
            labels.get(key).map(String::as_str) == Some(value)
        }));
        let simulator = simulator_deployment(&sd, &stores, "img").unwrap().unwrap();
        let args = simulator.spec.unwrap().template.spec.unwrap().containers[0]
            .args
            .clone()
            .unwrap();
        assert_eq!(args, ["produce", "--topic", "mooc-events", "--rate", "50"]);
        let mut without = spec();
        without.as_object_mut().unwrap().remove("simulator");
        assert!(
            simulator_deployment(&stream_deployment(without), &stores, "img")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn the_pointer_names_both_versions() {
        let sd = stream_deployment(spec());
        let models = PublishedModels {
            dropout: Some(PublishedModel {
                version: "v2".into(),
                artifact_uri: "s3://m/d/v2/".into(),
            }),
            als: Some(PublishedModel {
                version: "a1".into(),
                artifact_uri: "s3://m/a/a1/".into(),
            }),
        };
        let config_map = models_config_map(&sd, &models);
        let pointer: serde_json::Value =
            serde_json::from_str(&config_map.data.unwrap()[MODELS_FILE]).unwrap();
        assert_eq!(pointer["dropout"]["version"], "v2");
        assert_eq!(pointer["als"]["artifactUri"], "s3://m/a/a1/");
        assert_eq!(
            config_map.metadata.owner_references.unwrap()[0].kind,
            "StreamDeployment"
        );
    }

    #[test]
    fn available_only_when_every_requested_consumer_is_updated_and_available() {
        assert_eq!(serving_state(2, 2, 2, true).0, ServingPhase::Available);
        assert_eq!(serving_state(2, 2, 1, true).0, ServingPhase::Progressing);
        assert_eq!(serving_state(2, 3, 2, true).0, ServingPhase::Progressing);
        assert_eq!(serving_state(2, 2, 2, false).0, ServingPhase::Progressing);
        let (phase, updates) = serving_state(0, 0, 0, true);
        assert_eq!(phase, ServingPhase::Scaled);
        assert!(updates[0].status);
    }
}

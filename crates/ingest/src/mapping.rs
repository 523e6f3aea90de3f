//! The pure mapping from [`ModelFacts`] to OpenMetadata's `MlModel`.
//!
//! Nothing here does I/O or reads the clock: the same facts and service always give the same
//! model, which is what the snapshot tests pin down. The catalog sets what belongs to it when the
//! model is written: `id` (left empty here), `version` and `updatedAt` (left unset).
//!
//! Secrets: a container environment value is kept only for a known-harmless setting whose value
//! does not look like a credential ([`env_value_is_storable`]); a hyperparameter is redacted when
//! its name looks secret ([`is_secret_key`]) or its value looks like a credential
//! ([`looks_like_credential`]). Redacted values read `"<redacted>"`, in the model, the stored
//! facts and the source hash.

use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use sagebridge_catalog::{
    EntityReference, FeatureSource, FeatureSourceDataType, LabelType, MlFeature, MlFeatureDataType,
    MlHyperParameter, MlModel, MlModelServiceType, MlStore, TagLabel, TagSource, TagState,
};

use sagebridge_aws::secret::{env_value_is_storable, is_secret_key, looks_like_credential};

use crate::facts::{
    ContainerFacts, FeatureFacts, FeatureType, ModelFacts, PackageFacts, PackageGroupFacts,
    TrainingFacts,
};

/// Bumped whenever the mapping's output changes for the same facts, so that the next run
/// rewrites every model instead of skipping it as unchanged.
pub const MAPPING_VERSION: u32 = 2;

/// The algorithm OpenMetadata's own connector reports when it knows nothing better.
pub const DEFAULT_ALGORITHM: &str = "mlmodel";

/// What replaces a secret value.
pub use sagebridge_aws::secret::REDACTED_IN_DOCUMENTS as REDACTED;

/// The catalog service a model belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ServiceRef {
    /// The service's entity id (a UUID).
    pub id: String,
    /// The service name, which is also its fully qualified name.
    pub name: String,
}

/// Maps one SageMaker model to an OpenMetadata `MlModel`.
///
/// - `fullyQualifiedName`: `<service>.<name>`, each part quoted with [`quote_name`].
/// - `displayName`: the model name. `description`: the value of the first tag whose key is
///   `description` in any case (that tag is then not repeated as a tag label).
/// - `algorithm`: see [`algorithm`].
/// - `mlStore`: artifacts and image of the primary container, else of the first non-empty one of
///   `containers`.
/// - `mlHyperParameters`: the training job's, sorted by name. `mlFeatures`: one per feature
///   (`Integral`/`Fractional` are numerical, `String` categorical), its source being the feature
///   group.
/// - `server`: the invocation URL of the first `InService` endpoint.
/// - `tags`: one `Automated` label per tag, classification = key and tag = value; tags with an
///   empty value are left out (an OpenMetadata tag needs a name).
/// - `sourceUrl`: the SageMaker console page of the model.
/// - `extension`: ARN, creation time, execution role, containers, endpoint names, training job.
/// - `sourceHash`: see [`source_hash`].
///
/// A model package group (facts with [`ModelFacts::package_group`]) becomes a model the way
/// OpenMetadata's connector makes it: named after the group, algorithm [`DEFAULT_ALGORITHM`],
/// no `mlStore`; its description is the group's (else the `description` tag), it has no
/// `sourceUrl`, and its `extension` holds the group ARN, creator and versions (see
/// [`group_extension`]).
pub fn to_ml_model(facts: &ModelFacts, service: &ServiceRef) -> MlModel {
    let description_tag = facts
        .tags
        .iter()
        .position(|(key, _)| key.eq_ignore_ascii_case("description"));
    let group = facts.package_group.as_ref();
    // A group's own description wins; its `description` tag then stays a tag.
    let group_description = group
        .and_then(|g| g.description.as_deref())
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_owned);
    let description_tag = description_tag.filter(|_| group_description.is_none());
    let description = group_description.or_else(|| {
        description_tag
            .map(|index| facts.tags[index].1.trim().to_owned())
            .filter(|text| !text.is_empty())
    });

    MlModel {
        id: String::new(),
        name: facts.name.clone(),
        fully_qualified_name: build_fqn(&[&service.name, &facts.name]),
        display_name: Some(facts.name.clone()),
        description,
        algorithm: algorithm(facts),
        ml_features: facts.features.iter().map(ml_feature).collect(),
        ml_hyper_parameters: facts
            .training_job
            .as_ref()
            .map(hyper_parameters)
            .unwrap_or_default(),
        target: None,
        ml_store: store_container(facts).map(|container| MlStore {
            storage: non_blank(container.model_data_url.as_deref()),
            image_repository: non_blank(container.image.as_deref()),
        }),
        server: facts
            .endpoints
            .iter()
            .find(|endpoint| endpoint.is_in_service())
            .map(|endpoint| {
                endpoint
                    .url
                    .clone()
                    .unwrap_or_else(|| invocation_url(&facts.region, &endpoint.name))
            }),
        tags: facts
            .tags
            .iter()
            .enumerate()
            .filter(|(index, (_, value))| Some(*index) != description_tag && !value.is_empty())
            .map(|(_, (key, value))| tag_label(key, value))
            .collect(),
        service: EntityReference::ml_model_service(&service.id, &service.name),
        service_type: MlModelServiceType::SageMaker,
        // The registry lives in SageMaker Studio, which has no stable page per group.
        source_url: group
            .is_none()
            .then(|| console_url(&facts.region, &facts.name)),
        extension: Some(match group {
            Some(group) => group_extension(facts, group),
            None => extension(facts),
        }),
        deleted: false,
        version: None,
        updated_at: None,
        source_hash: Some(source_hash(facts, service)),
        href: None,
    }
}

/// The body of OpenMetadata's `CreateMlModel` request (`api/data/createMlModel.json`) for a
/// mapped model, as the REST sink sends it in `PUT /api/v1/mlmodels` and `/bulk`.
///
/// `service` becomes the service's FQN, and the catalog-owned fields (`id`, `version`,
/// `updatedAt`, `deleted`, `fullyQualifiedName`) are dropped: the server sets them. `extension` is
/// dropped too, because a server rejects extension keys that are not custom properties declared
/// for the `mlmodel` type, and a fresh server declares none.
pub fn to_create_ml_model(model: &MlModel) -> Value {
    let mut body = Map::new();
    body.insert("name".into(), json!(model.name));
    let mut put = |key: &str, value: Value| {
        if !value.is_null() {
            body.insert(key.to_owned(), value);
        }
    };
    put("displayName", json!(model.display_name));
    put("description", json!(model.description));
    put("algorithm", json!(model.algorithm));
    if !model.ml_features.is_empty() {
        put("mlFeatures", json!(model.ml_features));
    }
    put("target", json!(model.target));
    if !model.ml_hyper_parameters.is_empty() {
        put("mlHyperParameters", json!(model.ml_hyper_parameters));
    }
    put("mlStore", json!(model.ml_store));
    put("server", json!(model.server));
    if !model.tags.is_empty() {
        put("tags", json!(model.tags));
    }
    let service = model
        .service
        .fully_qualified_name
        .clone()
        .or_else(|| model.service.name.clone());
    put("service", json!(service));
    put("sourceUrl", json!(model.source_url));
    put("sourceHash", json!(model.source_hash));
    Value::Object(body)
}

/// Quotes one part of a fully qualified name the way OpenMetadata's
/// `FullyQualifiedName.quoteName` does (same in its Java server and Python client).
///
/// - A name containing `.` is wrapped in double quotes: `a.b` → `"a.b"`.
/// - A name already wrapped in quotes keeps them only if it contains a `.`: `"a.b"` stays,
///   `"ab"` becomes `ab`.
/// - Anything else is returned as it is.
///
/// OpenMetadata rejects a name with a `"` inside (other than the wrapping pair). We cannot fail
/// here, so such a name is wrapped in quotes with each inner `"` doubled (`a"b` → `"a""b"`): the
/// result is unambiguous and cannot be mistaken for a valid OpenMetadata name. SageMaker model
/// names cannot contain `"` or `.`; tag keys and values can contain `.`.
pub fn quote_name(name: &str) -> String {
    if let Some(inner) = name
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .filter(|inner| !inner.is_empty() && !inner.contains('"'))
    {
        return if inner.contains('.') {
            name.to_owned()
        } else {
            inner.to_owned()
        };
    }
    if name.contains('"') {
        return format!("\"{}\"", name.replace('"', "\"\""));
    }
    if name.contains('.') {
        format!("\"{name}\"")
    } else {
        name.to_owned()
    }
}

/// Joins quoted parts into a fully qualified name (`FullyQualifiedName.build`).
pub fn build_fqn(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|part| quote_name(part))
        .collect::<Vec<_>>()
        .join(".")
}

/// The algorithm of a model, by the first rule that gives a non-empty answer:
///
/// 1. the training job's `AlgorithmName` (the last `/` part of an algorithm ARN);
/// 2. the training job's `TrainingImage`, through [`algorithm_from_image`];
/// 3. the serving image (primary container, else the first container with an image), the same
///    way;
/// 4. [`DEFAULT_ALGORITHM`].
pub fn algorithm(facts: &ModelFacts) -> String {
    if facts.is_package_group() {
        return DEFAULT_ALGORITHM.to_owned();
    }
    let training = facts.training_job.as_ref();
    let from_name = training
        .and_then(|job| job.algorithm_name.as_deref())
        .and_then(|name| name.rsplit('/').next())
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned);
    let from_training_image = || {
        training
            .and_then(|job| job.training_image.as_deref())
            .and_then(algorithm_from_image)
    };
    let from_serving_image = || {
        facts
            .primary_container
            .iter()
            .chain(&facts.containers)
            .find_map(|container| container.image.as_deref().and_then(algorithm_from_image))
    };
    from_name
        .or_else(from_training_image)
        .or_else(from_serving_image)
        .unwrap_or_else(|| DEFAULT_ALGORITHM.to_owned())
}

/// The algorithm an image URI names, by one rule: take the repository name (the last path part,
/// without registry, `:tag` or `@digest`), then drop SageMaker's `sagemaker-` prefix and the Deep
/// Learning Containers' `-training` / `-inference` suffix.
///
/// `…amazonaws.com/sagemaker-xgboost:1.7-1` → `xgboost`;
/// `…amazonaws.com/huggingface-pytorch-tgi-inference:2.4.0-tgi2.4.0-gpu-py311-cu124-ubuntu22.04`
/// → `huggingface-pytorch-tgi`; `…amazonaws.com/team/churn-model:latest` → `churn-model`.
pub fn algorithm_from_image(image: &str) -> Option<String> {
    let without_digest = image.trim().split('@').next().unwrap_or_default();
    let repository = without_digest.rsplit('/').next().unwrap_or_default();
    let repository = repository.split(':').next().unwrap_or_default();
    let mut name = repository.strip_prefix("sagemaker-").unwrap_or(repository);
    for suffix in ["-training", "-inference"] {
        name = name.strip_suffix(suffix).unwrap_or(name);
    }
    (!name.is_empty()).then(|| name.to_owned())
}

/// The source hash: the first 32 hex digits of the SHA-256 of a canonical JSON serialization of
/// [`MAPPING_VERSION`], the service's name and the facts (secrets redacted). Not the service's
/// id: the same model hashes the same in two catalogs, and a re-created service does not
/// version every model.
///
/// The serialization is canonical because struct fields serialize in declaration order, maps are
/// `BTreeMap`s and lists keep their source order, so equal inputs give equal bytes and any change
/// to them changes the hash. A rotated secret alone does not: it never reaches the catalog.
pub fn source_hash(facts: &ModelFacts, service: &ServiceRef) -> String {
    #[derive(Serialize)]
    struct HashInput<'a> {
        mapping_version: u32,
        service: &'a str,
        facts: &'a ModelFacts,
    }
    let redacted = redact(facts);
    let input = HashInput {
        mapping_version: MAPPING_VERSION,
        service: &service.name,
        facts: &redacted,
    };
    // Serializing plain structs, strings and maps with string keys cannot fail.
    let bytes = serde_json::to_vec(&input).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    hex::encode(&digest[..16])
}

/// The SageMaker runtime URL that invokes an endpoint.
pub fn invocation_url(region: &str, endpoint: &str) -> String {
    format!(
        "https://runtime.sagemaker.{region}.{}/endpoints/{endpoint}/invocations",
        dns_suffix(region)
    )
}

/// The SageMaker console page of a model.
pub fn console_url(region: &str, model: &str) -> String {
    let console = if region.starts_with("cn-") {
        "https://console.amazonaws.cn".to_owned()
    } else if region.starts_with("us-gov-") {
        "https://console.amazonaws-us-gov.com".to_owned()
    } else {
        format!("https://{region}.console.aws.amazon.com")
    };
    format!("{console}/sagemaker/home?region={region}#/models/{model}")
}

/// The DNS suffix of the AWS partition a region belongs to.
fn dns_suffix(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    }
}

fn non_blank(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The container that says where the model lives.
fn store_container(facts: &ModelFacts) -> Option<&ContainerFacts> {
    facts
        .primary_container
        .iter()
        .chain(&facts.containers)
        .find(|container| !container.is_empty())
}

fn hyper_parameters(job: &TrainingFacts) -> Vec<MlHyperParameter> {
    // A BTreeMap iterates in name order already.
    job.hyperparameters
        .iter()
        .map(|(name, value)| MlHyperParameter {
            name: name.clone(),
            value: redact_value(name, value),
            description: None,
        })
        .collect()
}

fn ml_feature(feature: &FeatureFacts) -> MlFeature {
    let (data_type, source_type) = match feature.feature_type {
        FeatureType::Integral => (MlFeatureDataType::Numerical, FeatureSourceDataType::Integer),
        FeatureType::Fractional => (MlFeatureDataType::Numerical, FeatureSourceDataType::Number),
        FeatureType::String => (
            MlFeatureDataType::Categorical,
            FeatureSourceDataType::String,
        ),
    };
    MlFeature {
        name: feature.name.clone(),
        data_type: Some(data_type),
        feature_sources: vec![FeatureSource {
            name: feature.feature_group.clone(),
            data_type: Some(source_type),
            description: feature
                .feature_group_arn
                .as_ref()
                .map(|arn| format!("SageMaker Feature Store feature group `{arn}`")),
            fully_qualified_name: Some(build_fqn(&[&feature.feature_group, &feature.name])),
            data_source: None,
        }],
        ..MlFeature::default()
    }
}

fn tag_label(key: &str, value: &str) -> TagLabel {
    TagLabel {
        tag_fqn: build_fqn(&[key, value]),
        name: Some(value.to_owned()),
        display_name: None,
        description: None,
        source: TagSource::Classification,
        label_type: LabelType::Automated,
        state: TagState::Confirmed,
        href: None,
    }
}

/// A hyperparameter's value as it may be stored: redacted when its name is secret-looking or
/// the value looks like a credential.
fn redact_value(key: &str, value: &str) -> String {
    if is_secret_key(key) || looks_like_credential(value) {
        REDACTED.to_owned()
    } else {
        value.to_owned()
    }
}

/// A container environment value as it may be stored: only known-harmless settings keep theirs
/// (see [`env_value_is_storable`]).
fn redact_env(key: &str, value: &str) -> String {
    if env_value_is_storable(key, value) {
        value.to_owned()
    } else {
        REDACTED.to_owned()
    }
}

/// The facts with every secret-looking value replaced by [`REDACTED`]: what may be stored.
pub fn redact(facts: &ModelFacts) -> ModelFacts {
    let mut redacted = facts.clone();
    let containers = redacted
        .primary_container
        .iter_mut()
        .chain(redacted.containers.iter_mut());
    for container in containers {
        for (key, value) in container.environment.iter_mut() {
            *value = redact_env(key, value);
        }
    }
    if let Some(group) = redacted.package_group.as_mut() {
        for container in group
            .versions
            .iter_mut()
            .flat_map(|v| v.containers.iter_mut())
        {
            for (key, value) in container.environment.iter_mut() {
                *value = redact_env(key, value);
            }
        }
    }
    if let Some(job) = redacted.training_job.as_mut() {
        for (key, value) in job.hyperparameters.iter_mut() {
            *value = redact_value(key, value);
        }
    }
    redacted
}

fn container_json(container: &ContainerFacts) -> Value {
    let mut object = Map::new();
    let mut put = |key: &str, value: Option<&String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            object.insert(key.to_owned(), json!(value));
        }
    };
    put("image", container.image.as_ref());
    put("modelDataUrl", container.model_data_url.as_ref());
    put("mode", container.mode.as_ref());
    put("modelPackageName", container.model_package_name.as_ref());
    if !container.environment.is_empty() {
        let environment: Map<String, Value> = container
            .environment
            .iter()
            .map(|(key, value)| (key.clone(), json!(redact_env(key, value))))
            .collect();
        object.insert("environment".into(), Value::Object(environment));
    }
    Value::Object(object)
}

/// A model package group's attributes: `modelPackageGroupArn`, `creationTime`, `createdBy`,
/// `accountId`, `region` and `versions`, by version number, each with `version`, `arn`,
/// `approvalStatus`, `creationTime`, `description`, `containers` (inference images and
/// artifacts), `metrics` (`{metric, s3Uri}`: where each model metrics report lives) and
/// `deployedModels` (the SageMaker models created from it).
pub fn group_extension(facts: &ModelFacts, group: &PackageGroupFacts) -> Value {
    let mut object = Map::new();
    object.insert("modelPackageGroupArn".into(), json!(facts.arn));
    object.insert("creationTime".into(), json!(facts.creation_time_rfc3339));
    if let Some(creator) = &group.created_by {
        object.insert("createdBy".into(), json!(creator));
    }
    object.insert("accountId".into(), json!(facts.account_id));
    object.insert("region".into(), json!(facts.region));
    let versions: Vec<Value> = group.versions.iter().map(version_json).collect();
    object.insert("versions".into(), Value::Array(versions));
    Value::Object(object)
}

fn version_json(version: &PackageFacts) -> Value {
    let mut object = Map::new();
    if let Some(number) = version.version {
        object.insert("version".into(), json!(number));
    }
    object.insert("arn".into(), json!(version.arn));
    if let Some(status) = &version.approval_status {
        object.insert("approvalStatus".into(), json!(status));
    }
    object.insert("creationTime".into(), json!(version.creation_time_rfc3339));
    if let Some(description) = &version.description {
        object.insert("description".into(), json!(description));
    }
    if !version.containers.is_empty() {
        let containers: Vec<Value> = version.containers.iter().map(container_json).collect();
        object.insert("containers".into(), Value::Array(containers));
    }
    if !version.metrics.is_empty() {
        let metrics: Vec<Value> = version
            .metrics
            .iter()
            .map(|(metric, uri)| json!({"metric": metric, "s3Uri": uri}))
            .collect();
        object.insert("metrics".into(), Value::Array(metrics));
    }
    object.insert("deployedModels".into(), json!(version.deployed_models));
    Value::Object(object)
}

/// The attributes OpenMetadata's schema has no field for. Containers are listed primary first;
/// containers with nothing in them are left out.
fn extension(facts: &ModelFacts) -> Value {
    let containers: Vec<Value> = facts
        .primary_container
        .iter()
        .chain(&facts.containers)
        .map(container_json)
        .filter(|container| container.as_object().is_some_and(|o| !o.is_empty()))
        .collect();
    let mut object = Map::new();
    object.insert("modelArn".into(), json!(facts.arn));
    object.insert("creationTime".into(), json!(facts.creation_time_rfc3339));
    if let Some(role) = &facts.execution_role_arn {
        object.insert("executionRoleArn".into(), json!(role));
    }
    object.insert("accountId".into(), json!(facts.account_id));
    object.insert("region".into(), json!(facts.region));
    if !containers.is_empty() {
        object.insert("containers".into(), Value::Array(containers));
    }
    if !facts.endpoints.is_empty() {
        let names: Vec<&str> = facts.endpoints.iter().map(|e| e.name.as_str()).collect();
        object.insert("endpoints".into(), json!(names));
    }
    if let Some(job) = &facts.training_job {
        object.insert("trainingJobName".into(), json!(job.name));
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::facts::EndpointFacts;

    fn check_quote(input: &str, expected: &str) {
        assert_eq!(quote_name(input), expected, "quote_name({input:?})");
    }

    #[test]
    fn quote_name_follows_openmetadata() {
        check_quote("plain-name", "plain-name");
        check_quote("a.b", "\"a.b\"");
        check_quote("\"a.b\"", "\"a.b\"");
        check_quote("\"ab\"", "ab");
        check_quote(
            "aws:cloudformation:stack-name",
            "aws:cloudformation:stack-name",
        );
        check_quote("with space", "with space");
        check_quote("", "");
        check_quote("1.7-1", "\"1.7-1\"");
        check_quote("ünïcødé.x", "\"ünïcødé.x\"");
    }

    #[test]
    fn quote_name_escapes_what_openmetadata_would_reject() {
        check_quote("a\"b", "\"a\"\"b\"");
        check_quote("a\"b.c", "\"a\"\"b.c\"");
        check_quote("\"", "\"\"\"\"");
        check_quote("\"\"", "\"\"\"\"\"\"");
        check_quote("\"a\"b\"", "\"\"\"a\"\"b\"\"\"");
    }

    #[test]
    fn build_fqn_quotes_each_part() {
        assert_eq!(build_fqn(&["svc", "model"]), "svc.model");
        assert_eq!(build_fqn(&["prod.us", "model"]), "\"prod.us\".model");
        assert_eq!(build_fqn(&["version", "1.7"]), "version.\"1.7\"");
    }

    fn check_image(image: &str, expected: Option<&str>) {
        assert_eq!(
            algorithm_from_image(image).as_deref(),
            expected,
            "algorithm_from_image({image:?})"
        );
    }

    #[test]
    fn algorithm_from_image_takes_the_repository_name() {
        let ecr = "683313688378.dkr.ecr.us-east-1.amazonaws.com";
        check_image(&format!("{ecr}/sagemaker-xgboost:1.7-1"), Some("xgboost"));
        check_image(
            &format!("{ecr}/sagemaker-scikit-learn:1.2-1-cpu-py3"),
            Some("scikit-learn"),
        );
        check_image(
            "811284229777.dkr.ecr.us-east-1.amazonaws.com/xgboost:1",
            Some("xgboost"),
        );
        check_image(
            "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.4.0-tgi2.4.0-gpu-py311-cu124-ubuntu22.04",
            Some("huggingface-pytorch-tgi"),
        );
        check_image(
            "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-training:2.3.0-gpu-py311",
            Some("pytorch"),
        );
        check_image(
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/churn-model:latest",
            Some("churn-model"),
        );
        check_image("localhost:5000/my-model", Some("my-model"));
        check_image("my-model@sha256:0123abcd", Some("my-model"));
        check_image(
            "registry.example.com/ns/linear-learner@sha256:0123",
            Some("linear-learner"),
        );
        check_image("", None);
        check_image("sagemaker-", None);
    }

    fn facts() -> ModelFacts {
        ModelFacts {
            name: "churn".into(),
            arn: "arn:aws:sagemaker:us-east-1:123456789012:model/churn".into(),
            creation_time: 1_700_000_000_000,
            creation_time_rfc3339: "2023-11-14T22:13:20Z".into(),
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            ..ModelFacts::default()
        }
    }

    fn service() -> ServiceRef {
        ServiceRef {
            id: "5f0c7a8e-2f4b-4c47-9d3e-0b8a1e2f3c4d".into(),
            name: "prod".into(),
        }
    }

    #[test]
    fn algorithm_prefers_the_training_job_then_images_then_the_default() {
        let mut facts = facts();
        assert_eq!(algorithm(&facts), DEFAULT_ALGORITHM);

        facts.primary_container = Some(ContainerFacts {
            image: Some("1.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1".into()),
            ..ContainerFacts::default()
        });
        assert_eq!(algorithm(&facts), "scikit-learn");

        facts.training_job = Some(TrainingFacts {
            name: "job".into(),
            training_image: Some(
                "1.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1".into(),
            ),
            ..TrainingFacts::default()
        });
        assert_eq!(algorithm(&facts), "xgboost");

        if let Some(job) = facts.training_job.as_mut() {
            job.algorithm_name =
                Some("arn:aws:sagemaker:us-east-1:123456789012:algorithm/my-forest".into());
        }
        assert_eq!(algorithm(&facts), "my-forest");
    }

    #[test]
    fn the_hash_is_stable_and_sees_every_change() {
        let base = facts();
        let service = service();
        let hash = source_hash(&base, &service);
        assert_eq!(hash.len(), 32);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(hash, source_hash(&base.clone(), &service));

        let mut changes: Vec<ModelFacts> = Vec::new();
        let mut changed = base.clone();
        changed.tags.push(("team".into(), "ml".into()));
        changes.push(changed);
        let mut changed = base.clone();
        changed.endpoints.push(EndpointFacts {
            name: "e".into(),
            status: "InService".into(),
            url: None,
        });
        changes.push(changed);
        let mut changed = base.clone();
        changed.creation_time += 1;
        changes.push(changed);
        let mut changed = base.clone();
        changed.primary_container = Some(ContainerFacts {
            environment: BTreeMap::from([("SAGEMAKER_PROGRAM".into(), "inference.py".into())]),
            ..ContainerFacts::default()
        });
        changes.push(changed);
        for changed in &changes {
            assert_ne!(source_hash(changed, &service), hash, "{changed:?}");
        }
        let other_service = ServiceRef {
            name: "staging".into(),
            ..service.clone()
        };
        assert_ne!(source_hash(&base, &other_service), hash);
        // The same service re-created (a new id) or in another catalog: the same hash.
        let recreated = ServiceRef {
            id: "another-uuid".into(),
            ..service.clone()
        };
        assert_eq!(source_hash(&base, &recreated), hash);
    }

    #[test]
    fn secrets_never_reach_the_model_or_the_hash() {
        let service = service();
        let with_token = |token: &str| {
            let mut facts = facts();
            facts.primary_container = Some(ContainerFacts {
                image: Some("img".into()),
                environment: BTreeMap::from([
                    (
                        "HF_MODEL_ID".into(),
                        "meta-llama/Llama-3.1-8B-Instruct".into(),
                    ),
                    ("HUGGING_FACE_HUB_TOKEN".into(), token.into()),
                ]),
                ..ContainerFacts::default()
            });
            facts.training_job = Some(TrainingFacts {
                name: "job".into(),
                hyperparameters: BTreeMap::from([("wandb_api_key".into(), token.into())]),
                ..TrainingFacts::default()
            });
            facts
        };
        let first = with_token("hf_first_value_123");
        let model = to_ml_model(&first, &service);
        let text = serde_json::to_string(&model).expect("json");
        assert!(!text.contains("hf_first_value_123"), "{text}");
        assert!(text.contains(REDACTED));
        assert!(text.contains("meta-llama/Llama-3.1-8B-Instruct"));
        assert_eq!(
            source_hash(&first, &service),
            source_hash(&with_token("hf_rotated_456"), &service)
        );
    }

    #[test]
    fn urls_follow_the_partition() {
        assert_eq!(
            invocation_url("eu-west-1", "llm"),
            "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/llm/invocations"
        );
        assert_eq!(
            invocation_url("cn-north-1", "llm"),
            "https://runtime.sagemaker.cn-north-1.amazonaws.com.cn/endpoints/llm/invocations"
        );
        assert_eq!(
            console_url("us-east-1", "m"),
            "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/models/m"
        );
        assert!(console_url("cn-north-1", "m").starts_with("https://console.amazonaws.cn/"));
        assert!(
            console_url("us-gov-west-1", "m").starts_with("https://console.amazonaws-us-gov.com/")
        );
    }

    #[test]
    fn server_is_the_first_in_service_endpoint() {
        let mut facts = facts();
        facts.endpoints = vec![
            EndpointFacts {
                name: "old".into(),
                status: "Updating".into(),
                url: None,
            },
            EndpointFacts {
                name: "live".into(),
                status: "InService".into(),
                url: None,
            },
            EndpointFacts {
                name: "later".into(),
                status: "InService".into(),
                url: None,
            },
        ];
        let model = to_ml_model(&facts, &service());
        assert_eq!(
            model.server.as_deref(),
            Some("https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/live/invocations")
        );
        facts.endpoints[1].url = Some("http://127.0.0.1:5000/endpoints/live/invocations".into());
        let model = to_ml_model(&facts, &service());
        assert_eq!(
            model.server.as_deref(),
            Some("http://127.0.0.1:5000/endpoints/live/invocations")
        );
        facts.endpoints.retain(|e| e.status != "InService");
        assert_eq!(to_ml_model(&facts, &service()).server, None);
    }

    #[test]
    fn description_tag_becomes_the_description_and_empty_tags_are_skipped() {
        let mut facts = facts();
        facts.tags = vec![
            ("team".into(), "growth".into()),
            ("Description".into(), "  Predicts churn.  ".into()),
            ("description".into(), "second one stays a tag".into()),
            ("pii".into(), String::new()),
            ("version".into(), "1.7".into()),
        ];
        let model = to_ml_model(&facts, &service());
        assert_eq!(model.description.as_deref(), Some("Predicts churn."));
        let fqns: Vec<&str> = model.tags.iter().map(|t| t.tag_fqn.as_str()).collect();
        assert_eq!(
            fqns,
            vec![
                "team.growth",
                "description.second one stays a tag",
                "version.\"1.7\""
            ]
        );
    }

    #[test]
    fn the_create_request_drops_what_the_server_owns() {
        let mut model = to_ml_model(&facts(), &service());
        model.id = "0b8a1e2f-2f4b-4c47-9d3e-5f0c7a8e3c4d".into();
        model.version = Some(0.2);
        model.updated_at = Some(1);
        let body = to_create_ml_model(&model);
        let object = body.as_object().expect("object");
        for owned in [
            "id",
            "version",
            "updatedAt",
            "deleted",
            "fullyQualifiedName",
            "extension",
            "serviceType",
        ] {
            assert!(!object.contains_key(owned), "{owned} in {body}");
        }
        assert_eq!(body["service"], "prod");
        assert_eq!(body["algorithm"], DEFAULT_ALGORITHM);
        assert_eq!(body["sourceHash"], json!(model.source_hash));
    }
}

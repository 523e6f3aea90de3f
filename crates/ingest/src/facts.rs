//! What the SageMaker source gathers about one model, as plain data.
//!
//! These structs hold no AWS SDK types on purpose: the source converts SDK output into them, and
//! everything after that (the mapping, the source hash, the tests and their JSON fixtures) works
//! without AWS. Maps are `BTreeMap`s and lists keep the order AWS returned, so serializing the same
//! facts twice gives the same bytes, which the source hash relies on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Everything known about one SageMaker model (DescribeModel, ListTags and the optional
/// DescribeTrainingJob, feature group and endpoint look-ups).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelFacts {
    /// The model name (`ModelName`), unique per account and region.
    pub name: String,
    /// `ModelArn`.
    pub arn: String,
    /// `CreationTime` in epoch milliseconds (what the catalog indexes).
    pub creation_time: i64,
    /// `CreationTime` as RFC 3339, as shown to people.
    pub creation_time_rfc3339: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    /// `PrimaryContainer`; absent for multi-container models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_container: Option<ContainerFacts>,
    /// `Containers` of a multi-container (inference pipeline) model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerFacts>,
    /// Tags as (key, value), in the order ListTags returned them.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "tag_pairs")]
    pub tags: Vec<(String, String)>,
    /// The training job that produced the model artifacts, when one could be found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_job: Option<TrainingFacts>,
    /// Feature Store features the model is known to use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<FeatureFacts>,
    /// Endpoints whose current configuration serves this model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointFacts>,
    pub region: String,
    pub account_id: String,
    /// Enrichments that could not be read for this model (a permission was denied), e.g.
    /// `trainingJob`: an incremental run describes such a model again instead of reusing these
    /// facts, so granting the permission later fills the gap without `--full`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incomplete: Vec<String>,
    /// Set when these are the facts of a model package group (the model registry), not of a
    /// model: `arn` and the creation time are then the group's, and there are no containers.
    /// Absent from a model's facts, so adding it changed no model's source hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_group: Option<PackageGroupFacts>,
}

impl ModelFacts {
    /// Whether these are the facts of a model package group.
    pub fn is_package_group(&self) -> bool {
        self.package_group.is_some()
    }
}

/// What the model registry tells about a model package group, beside what every entity has
/// (name, ARN, creation time, tags).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackageGroupFacts {
    /// `ModelPackageGroupDescription`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `CreatedBy`: the Studio user profile name, else the IAM identity's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// The group's versioned model packages, by version number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<PackageFacts>,
}

/// One version (versioned model package) of a model package group.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackageFacts {
    /// `ModelPackageArn`.
    pub arn: String,
    /// `ModelPackageVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
    /// `ModelApprovalStatus`: `Approved`, `Rejected` or `PendingManualApproval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_status: Option<String>,
    /// `CreationTime` as RFC 3339.
    pub creation_time_rfc3339: String,
    /// `ModelPackageDescription`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `InferenceSpecification.Containers`: the images and artifacts of the version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerFacts>,
    /// `ModelMetrics`: where each report lives, as (`section.report`, S3 URI), e.g.
    /// (`modelQuality.statistics`, `s3://...`), in a fixed order.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "metric_pairs")]
    pub metrics: Vec<(String, String)>,
    /// The SageMaker models created from this version (a container's `ModelPackageName`
    /// names it), among those the run read, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deployed_models: Vec<String>,
}

/// One container definition of a model.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerFacts {
    /// The inference image URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `ModelDataUrl`: the S3 location of the model artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_data_url: Option<String>,
    /// `SingleModel` or `MultiModel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The container environment, as AWS returns it; it may hold secrets, which the mapping
    /// redacts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    /// Set when the container comes from a model package instead of an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_package_name: Option<String>,
}

impl ContainerFacts {
    /// Whether the container names neither an image nor model artifacts; such a container says
    /// nothing about where the model lives.
    pub fn is_empty(&self) -> bool {
        blank(self.image.as_deref()) && blank(self.model_data_url.as_deref())
    }
}

fn blank(value: Option<&str>) -> bool {
    value.is_none_or(|v| v.trim().is_empty())
}

/// The training job behind a model (DescribeTrainingJob).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrainingFacts {
    /// `TrainingJobName`.
    pub name: String,
    /// `AlgorithmSpecification.AlgorithmName`: a SageMaker algorithm resource (name or ARN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm_name: Option<String>,
    /// `AlgorithmSpecification.TrainingImage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_image: Option<String>,
    /// `HyperParameters`, all strings as SageMaker stores them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hyperparameters: BTreeMap<String, String>,
    /// The S3 URIs of the input data channels, in channel order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_s3_uris: Vec<String>,
}

/// One Feature Store feature (DescribeFeatureGroup `FeatureDefinitions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeatureFacts {
    pub name: String,
    pub feature_type: FeatureType,
    /// The feature group name.
    pub feature_group: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_group_arn: Option<String>,
}

/// Feature Store's `FeatureType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FeatureType {
    Integral,
    Fractional,
    String,
}

/// One endpoint serving the model (DescribeEndpoint).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointFacts {
    pub name: String,
    /// `EndpointStatus`, e.g. `InService`, `Creating`, `Updating`, `Failed`.
    pub status: String,
    /// The invocation URL when the source knows a specific one (an endpoint URL override); the
    /// mapping derives the public runtime URL otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl EndpointFacts {
    /// Whether the endpoint accepts invocations.
    pub fn is_in_service(&self) -> bool {
        self.status == "InService"
    }
}

/// Metric locations as a JSON list of `{"metric": ..., "s3Uri": ...}` objects.
mod metric_pairs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Metric<S> {
        metric: S,
        s3_uri: S,
    }

    pub(super) fn serialize<S: Serializer>(
        metrics: &[(String, String)],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(metrics.iter().map(|(metric, s3_uri)| Metric {
            metric: metric.as_str(),
            s3_uri: s3_uri.as_str(),
        }))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<(String, String)>, D::Error> {
        let metrics = Vec::<Metric<String>>::deserialize(deserializer)?;
        Ok(metrics.into_iter().map(|m| (m.metric, m.s3_uri)).collect())
    }
}

/// Tags as a JSON list of `{"key": ..., "value": ...}` objects: readable in fixtures, and the
/// order is kept.
mod tag_pairs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Tag<S> {
        key: S,
        value: S,
    }

    pub(super) fn serialize<S: Serializer>(
        tags: &[(String, String)],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(tags.iter().map(|(key, value)| Tag {
            key: key.as_str(),
            value: value.as_str(),
        }))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<(String, String)>, D::Error> {
        let tags = Vec::<Tag<String>>::deserialize(deserializer)?;
        Ok(tags.into_iter().map(|tag| (tag.key, tag.value)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_round_trip_through_json_with_readable_tags() {
        let facts = ModelFacts {
            name: "m".into(),
            arn: "arn:aws:sagemaker:us-east-1:123456789012:model/m".into(),
            creation_time: 1_700_000_000_000,
            creation_time_rfc3339: "2023-11-14T22:13:20Z".into(),
            tags: vec![("b".into(), "2".into()), ("a".into(), "1".into())],
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            ..ModelFacts::default()
        };
        let json = serde_json::to_value(&facts).expect("serialize");
        assert_eq!(
            json["tags"],
            serde_json::json!([{"key": "b", "value": "2"}, {"key": "a", "value": "1"}])
        );
        let back: ModelFacts = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, facts);
    }

    #[test]
    fn a_container_without_image_or_artifacts_is_empty() {
        assert!(ContainerFacts::default().is_empty());
        let package_only = ContainerFacts {
            model_package_name: Some("pkg".into()),
            image: Some("  ".into()),
            ..ContainerFacts::default()
        };
        assert!(package_only.is_empty());
        let with_image = ContainerFacts {
            image: Some("img".into()),
            ..ContainerFacts::default()
        };
        assert!(!with_image.is_empty());
    }
}

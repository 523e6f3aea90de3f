//! The entities the catalog stores, shaped like OpenMetadata's JSON.
//!
//! `MlModel` follows `entity/data/mlmodel.json` of the OpenMetadata spec (camelCase keys, optional
//! fields left out when unset), so a stored document can be served as OpenMetadata would serve it
//! and validated against the same schema. `MlModelService`, `IngestionRun` and `GatewayModel` are
//! our own records, kept in the same JSON style.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The OpenMetadata `mlModelServiceType` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum MlModelServiceType {
    /// An MLflow tracking server.
    Mlflow,
    /// A scikit-learn model registry.
    Sklearn,
    /// A custom model service.
    CustomMlModel,
    /// Amazon SageMaker, the only type sagebridge ingests.
    #[default]
    SageMaker,
    /// Google Vertex AI.
    #[serde(rename = "VertexAI")]
    VertexAi,
}

/// An ML model, as OpenMetadata's `MlModel` entity.
///
/// The mapping from SageMaker fills every field it knows; `id`, `version` and `updatedAt` belong to
/// the catalog, which sets them when the model is written (an empty `id` means "not stored yet"
/// and is not serialized).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MlModel {
    /// The entity's UUID, assigned by the catalog on creation and kept on every update.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The name of the model in its service (the SageMaker model name).
    pub name: String,
    /// `<service>.<name>`, each part quoted by OpenMetadata's rules.
    pub fully_qualified_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Required by the schema; OpenMetadata's own connector always sends `"mlmodel"`.
    pub algorithm: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ml_features: Vec<MlFeature>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ml_hyper_parameters: Vec<MlHyperParameter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ml_store: Option<MlStore>,
    /// The URL that serves predictions, when the model is deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<TagLabel>,
    /// The service the model belongs to; the catalog keys models by `service.name`.
    pub service: EntityReference,
    #[serde(default)]
    pub service_type: MlModelServiceType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// Free-form attributes the schema has no field for (ARN, creation time, containers...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<Value>,
    /// True once the model vanished from its source (soft delete); it comes back when seen again.
    #[serde(default)]
    pub deleted: bool,
    /// `Major.Minor`, 0.1 on creation and +0.1 on every change, set by the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<f64>,
    /// Epoch milliseconds of the last change, set by the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    /// A digest of everything the source knew about the model, used to skip unchanged models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
}

/// A feature the model was trained on (`mlFeature`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MlFeature {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<MlFeatureDataType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fully_qualified_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feature_sources: Vec<FeatureSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_algorithm: Option<String>,
}

/// The `featureType` enum: how a feature is used by the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MlFeatureDataType {
    Numerical,
    Categorical,
}

/// Where a feature's values come from (`featureSource`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureSource {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<FeatureSourceDataType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fully_qualified_name: Option<String>,
    /// The entity holding the source values (a table, a feature group), when it is catalogued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source: Option<EntityReference>,
}

/// The `featureSourceDataType` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FeatureSourceDataType {
    Integer,
    Number,
    String,
    Array,
    Date,
    Timestamp,
    Object,
    Boolean,
}

/// A training hyperparameter (`mlHyperParameter`); values are strings, as SageMaker keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MlHyperParameter {
    pub name: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Where the model lives (`mlStore`): its artifacts and its serving image.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MlStore {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_repository: Option<String>,
}

/// A tag applied to an entity (`type/tagLabel.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagLabel {
    /// `<classification>.<tag>`, each part quoted by OpenMetadata's rules.
    #[serde(rename = "tagFQN")]
    pub tag_fqn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub source: TagSource,
    pub label_type: LabelType,
    pub state: TagState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
}

/// Whether a tag comes from a classification or a glossary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum TagSource {
    #[default]
    Classification,
    Glossary,
}

/// How a tag label was applied; ingestion applies `Automated` labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum LabelType {
    Manual,
    Propagated,
    #[default]
    Automated,
    Derived,
    Generated,
}

/// Whether a tag label is confirmed or only suggested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum TagState {
    Suggested,
    #[default]
    Confirmed,
}

/// A reference to another entity (`type/entityReference.json`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityReference {
    pub id: String,
    /// The entity type, e.g. `mlmodelService`.
    #[serde(rename = "type")]
    pub entity_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fully_qualified_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
}

impl EntityReference {
    /// A reference to an ML model service, whose FQN is its name.
    pub fn ml_model_service(id: &str, name: &str) -> Self {
        Self {
            id: id.to_owned(),
            entity_type: "mlmodelService".to_owned(),
            name: Some(name.to_owned()),
            fully_qualified_name: Some(name.to_owned()),
            ..Self::default()
        }
    }
}

/// An ML model service: one SageMaker account and region as configured in a workflow.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MlModelService {
    /// Assigned by the catalog on creation (empty means "not stored yet").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub name: String,
    /// Same as `name` for a service; filled by the catalog when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fully_qualified_name: String,
    #[serde(default)]
    pub service_type: MlModelServiceType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The connection as OpenMetadata's `mlModelConnection`, with every secret already removed by
    /// the caller: the catalog stores it as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<Value>,
    #[serde(default)]
    pub deleted: bool,
    /// Set by the catalog: 0.1 on creation, +0.1 whenever the stored service changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<f64>,
    /// Set by the catalog (epoch milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
}

impl MlModelService {
    /// This service as the `service` reference of its models.
    pub fn reference(&self) -> EntityReference {
        EntityReference::ml_model_service(&self.id, &self.name)
    }
}

/// The state of one ingestion run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RunStatus {
    /// Waiting to start (a pipeline run that was triggered).
    Queued,
    /// Started and not finished (or interrupted before it could record its end).
    Running,
    /// Every model was processed.
    Success,
    /// Finished, but some models failed.
    PartialSuccess,
    /// The run stopped on an error.
    Failed,
    /// Stopped by a shutdown, or found unfinished after a crash.
    Interrupted,
    /// A schedule fire time that came while the previous run was still going.
    Skipped,
}

impl RunStatus {
    const ALL: [Self; 7] = [
        Self::Queued,
        Self::Running,
        Self::Success,
        Self::PartialSuccess,
        Self::Failed,
        Self::Interrupted,
        Self::Skipped,
    ];

    /// The name stored in the database and shown in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Success => "success",
            Self::PartialSuccess => "partialSuccess",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
            Self::Skipped => "skipped",
        }
    }

    /// The inverse of [`RunStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Whether the run is queued or running (not finished).
    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }
}

/// One ingestion run of one service, with its report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestionRun {
    /// Chosen by the caller (a UUID), so a run can be recorded when it starts and again when it
    /// ends under the same id.
    pub id: String,
    /// The service name.
    pub service: String,
    /// Epoch milliseconds.
    pub started_at: i64,
    /// Epoch milliseconds; `None` while the run is going.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    pub status: RunStatus,
    /// The run report as JSON (the ingest crate owns its shape).
    pub report: Value,
}

/// A model the gateway serves, with its spec as JSON (the gateway crate owns the shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayModel {
    /// The `model` name clients send.
    pub name: String,
    pub spec: Value,
    /// Set by the catalog (epoch milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
}

/// Generates a new random entity id.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

//! The OpenMetadata workflow YAML for SageMaker, parsed strictly.
//!
//! A workflow file written for OpenMetadata's `metadata ingest -c` loads unchanged. Our
//! additions are marked on their fields; everything else is OpenMetadata's own key names.

use std::path::{Path, PathBuf};

use regex::{Regex, RegexBuilder};
use sagebridge_aws::yaml::{self, ConfigErrors, Problems, Validate};
use sagebridge_aws::{AwsConfig, Secret};
use serde::{Deserialize, Serialize};

/// Default tag key naming the feature groups a model was trained on (comma-separated).
pub const DEFAULT_FEATURE_GROUP_TAG_KEY: &str = "ml:feature-groups";

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowConfig {
    pub source: SourceConfig,
    #[serde(default)]
    pub sink: SinkConfig,
    #[serde(default)]
    pub workflow_config: WorkflowSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceConfig {
    /// Must be `sagemaker`.
    #[serde(rename = "type")]
    pub kind: String,
    pub service_name: String,
    pub service_connection: ServiceConnection,
    #[serde(default)]
    pub source_config: SourceConfigWrapper,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceConnection {
    pub config: SageMakerConnection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SageMakerConnection {
    /// Must be `SageMaker`.
    #[serde(rename = "type", default = "sagemaker_type")]
    pub kind: String,
    pub aws_config: AwsConfig,
    /// OpenMetadata allows a filter on the connection too; it is applied with the source
    /// config's filter (a model must pass both).
    #[serde(default)]
    pub ml_model_filter_pattern: Option<FilterPattern>,
    #[serde(default)]
    pub supports_metadata_extraction: Option<bool>,
}

fn sagemaker_type() -> String {
    "SageMaker".into()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceConfigWrapper {
    #[serde(default)]
    pub config: MlModelMetadataConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MlModelMetadataConfig {
    /// Must be `MlModelMetadata`.
    #[serde(rename = "type", default = "metadata_type")]
    pub kind: String,
    #[serde(default)]
    pub ml_model_filter_pattern: Option<FilterPattern>,
    #[serde(default = "yes")]
    pub mark_deleted_ml_models: bool,
    #[serde(default)]
    pub override_metadata: bool,
    /// Ours: the tag key that lists a model's feature groups.
    #[serde(default = "default_feature_group_tag_key")]
    pub feature_group_tag_key: String,
    /// Ours: how many models are described at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Ours: cron expression (UTC) for `sagebridge ingest --schedule` (e.g. `0 */6 * * *`).
    #[serde(default)]
    pub schedule: Option<String>,
}

impl Default for MlModelMetadataConfig {
    fn default() -> Self {
        Self {
            kind: metadata_type(),
            ml_model_filter_pattern: None,
            mark_deleted_ml_models: true,
            override_metadata: false,
            feature_group_tag_key: default_feature_group_tag_key(),
            concurrency: default_concurrency(),
            schedule: None,
        }
    }
}

fn metadata_type() -> String {
    "MlModelMetadata".into()
}
fn yes() -> bool {
    true
}
fn default_feature_group_tag_key() -> String {
    DEFAULT_FEATURE_GROUP_TAG_KEY.into()
}
fn default_concurrency() -> usize {
    16
}

/// OpenMetadata's filterPattern: regexes matched against the model name.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FilterPattern {
    #[serde(default)]
    pub includes: Vec<String>,
    #[serde(default)]
    pub excludes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SinkConfig {
    /// `catalog` (ours, the embedded SQLite catalog) or `metadata-rest` (OpenMetadata).
    #[serde(rename = "type", default = "catalog_sink")]
    pub kind: String,
    #[serde(default)]
    pub config: SinkSettings,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            kind: catalog_sink(),
            config: SinkSettings::default(),
        }
    }
}

fn catalog_sink() -> String {
    "catalog".into()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SinkSettings {
    /// For the `catalog` sink: the SQLite file (default `./sagebridge.db`).
    #[serde(default)]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowSettings {
    #[serde(default)]
    pub logger_level: Option<LoggerLevel>,
    #[serde(default)]
    pub open_metadata_server_config: Option<OpenMetadataServerConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LoggerLevel {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenMetadataServerConfig {
    pub host_port: String,
    #[serde(default = "openmetadata_auth")]
    pub auth_provider: String,
    #[serde(default)]
    pub security_config: Option<SecurityConfig>,
    #[serde(default)]
    pub store_service_connection: Option<bool>,
    #[serde(default, rename = "verifySSL")]
    pub verify_ssl: Option<String>,
    #[serde(default)]
    pub ssl_config: Option<SslConfig>,
}

fn openmetadata_auth() -> String {
    "openmetadata".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityConfig {
    pub jwt_token: Secret,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SslConfig {
    #[serde(default)]
    pub ca_certificate: Option<String>,
}

/// A compiled filter: OpenMetadata semantics (case-insensitive, matched at the start of the
/// name like Python's `re.match`); a name is kept when it matches some include (or there are
/// none) and no exclude.
#[derive(Debug, Clone, Default)]
pub struct ModelFilter {
    includes: Vec<Regex>,
    excludes: Vec<Regex>,
}

impl ModelFilter {
    pub fn new(patterns: &[&FilterPattern]) -> Result<Self, regex::Error> {
        let compile = |p: &str| {
            RegexBuilder::new(&format!("^(?:{p})"))
                .case_insensitive(true)
                .build()
        };
        let mut f = ModelFilter::default();
        for p in patterns {
            for i in &p.includes {
                f.includes.push(compile(i)?);
            }
            for e in &p.excludes {
                f.excludes.push(compile(e)?);
            }
        }
        Ok(f)
    }

    pub fn keeps(&self, name: &str) -> bool {
        (self.includes.is_empty() || self.includes.iter().any(|r| r.is_match(name)))
            && !self.excludes.iter().any(|r| r.is_match(name))
    }
}

impl WorkflowConfig {
    /// Loads and validates a workflow file, reporting every problem at once.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        yaml::load_file(path)
    }

    /// [`WorkflowConfig::load`] from text (tests, the web UI).
    pub fn parse(
        name: &str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigErrors> {
        yaml::load(&yaml::Source { name, text, env })
    }

    pub fn aws(&self) -> &AwsConfig {
        &self.source.service_connection.config.aws_config
    }

    pub fn metadata(&self) -> &MlModelMetadataConfig {
        &self.source.source_config.config
    }

    /// The model filter from both places OpenMetadata allows one. Validation has compiled the
    /// patterns already, so this does not fail on a loaded config.
    pub fn filter(&self) -> Result<ModelFilter, regex::Error> {
        let pats: Vec<&FilterPattern> = [
            self.source
                .service_connection
                .config
                .ml_model_filter_pattern
                .as_ref(),
            self.metadata().ml_model_filter_pattern.as_ref(),
        ]
        .into_iter()
        .flatten()
        .collect();
        ModelFilter::new(&pats)
    }

    /// The catalog file for the `catalog` sink.
    pub fn catalog_path(&self) -> PathBuf {
        self.sink
            .config
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from("sagebridge.db"))
    }
}

fn validate_filter(p: &mut Problems, f: &FilterPattern) {
    for (key, list) in [("includes", &f.includes), ("excludes", &f.excludes)] {
        for (i, pat) in list.iter().enumerate() {
            if let Err(e) = RegexBuilder::new(pat).build() {
                let first = e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                p.add(
                    &format!("{key}[{i}]"),
                    format!("invalid regular expression `{pat}`: {first}"),
                );
            }
        }
    }
}

impl Validate for WorkflowConfig {
    fn validate(&self, p: &mut Problems) {
        p.at("source", |p| {
            let s = &self.source;
            if !s.kind.eq_ignore_ascii_case("sagemaker") {
                p.add(
                    "type",
                    format!("source type `{}` is not supported; use `sagemaker`", s.kind),
                );
            }
            if s.service_name.trim().is_empty() {
                p.add("serviceName", "serviceName must not be empty");
            }
            p.at("serviceConnection", |p| {
                p.at("config", |p| {
                    let c = &s.service_connection.config;
                    if c.kind != "SageMaker" {
                        p.add(
                            "type",
                            format!(
                                "connection type `{}` is not supported; use `SageMaker`",
                                c.kind
                            ),
                        );
                    }
                    p.at("awsConfig", |p| c.aws_config.validate(p));
                    if let Some(f) = &c.ml_model_filter_pattern {
                        p.at("mlModelFilterPattern", |p| validate_filter(p, f));
                    }
                })
            });
            p.at("sourceConfig", |p| {
                p.at("config", |p| {
                    let c = &s.source_config.config;
                    if c.kind != "MlModelMetadata" {
                        p.add(
                            "type",
                            format!("`{}` is not supported; use `MlModelMetadata`", c.kind),
                        );
                    }
                    if let Some(f) = &c.ml_model_filter_pattern {
                        p.at("mlModelFilterPattern", |p| validate_filter(p, f));
                    }
                    if c.concurrency == 0 || c.concurrency > 256 {
                        p.add("concurrency", "concurrency must be between 1 and 256");
                    }
                    if c.feature_group_tag_key.trim().is_empty() {
                        p.add("featureGroupTagKey", "featureGroupTagKey must not be empty");
                    }
                    if let Some(expr) = &c.schedule {
                        if let Err(e) = crate::schedule::Cron::parse(expr) {
                            p.add("schedule", e);
                        }
                    }
                })
            });
        });
        p.at("sink", |p| match self.sink.kind.as_str() {
            "catalog" => {}
            "metadata-rest" => {
                if self.workflow_config.open_metadata_server_config.is_none() {
                    p.add(
                        "type",
                        "the metadata-rest sink needs workflowConfig.openMetadataServerConfig",
                    );
                }
            }
            other => p.add(
                "type",
                format!("sink type `{other}` is not supported; use `catalog` or `metadata-rest`"),
            ),
        });
        if let Some(om) = &self.workflow_config.open_metadata_server_config {
            p.at("workflowConfig", |p| {
                p.at("openMetadataServerConfig", |p| {
                    if !(om.host_port.starts_with("http://")
                        || om.host_port.starts_with("https://"))
                    {
                        p.add(
                            "hostPort",
                            format!("`{}` is not an http(s) URL", om.host_port),
                        );
                    }
                    if om.auth_provider != "openmetadata" && om.auth_provider != "no-auth" {
                        p.add(
                            "authProvider",
                            format!(
                                "auth provider `{}` is not supported; use `openmetadata` (JWT)",
                                om.auth_provider
                            ),
                        );
                    }
                    if om.auth_provider == "openmetadata" && om.security_config.is_none() {
                        p.add(
                            "securityConfig",
                            "authProvider openmetadata needs securityConfig.jwtToken",
                        );
                    }
                    if let Some(v) = &om.verify_ssl {
                        if !matches!(v.as_str(), "no-ssl" | "ignore" | "validate") {
                            p.add(
                                "verifySSL",
                                format!("`{v}` must be one of no-ssl, ignore, validate"),
                            );
                        }
                    }
                })
            });
        }
    }
}

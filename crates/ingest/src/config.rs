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
    /// Ours: the largest share (0 to 1) of a service's live models one run may mark deleted;
    /// a run that would delete more (a wrong region, role or filter lists a complete but wrong
    /// account) deletes none of them, says why and exits 3, unless `--allow-mass-delete`.
    #[serde(default = "default_mark_deleted_max_fraction")]
    pub mark_deleted_max_fraction: f64,
    /// Ours: seconds one AWS call attempt may take before it is abandoned (and retried): a
    /// half-open socket never hangs a run.
    #[serde(default = "default_attempt_timeout")]
    pub attempt_timeout_seconds: u64,
    /// Ours: seconds one AWS call may take with all its retries.
    #[serde(default = "default_operation_timeout")]
    pub operation_timeout_seconds: u64,
    /// Ours: seconds from the start of a run that linking models may wait for the enrichment
    /// indexes (serving endpoints, feature groups); one still loading then is skipped for the
    /// run with a warning.
    #[serde(default = "default_enrichment_deadline")]
    pub enrichment_deadline_seconds: u64,
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
            mark_deleted_max_fraction: default_mark_deleted_max_fraction(),
            attempt_timeout_seconds: default_attempt_timeout(),
            operation_timeout_seconds: default_operation_timeout(),
            enrichment_deadline_seconds: default_enrichment_deadline(),
        }
    }
}

fn default_mark_deleted_max_fraction() -> f64 {
    0.5
}

fn default_enrichment_deadline() -> u64 {
    120
}

fn default_attempt_timeout() -> u64 {
    30
}

fn default_operation_timeout() -> u64 {
    300
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

/// `sink:`, where a run writes, chosen by `type:` (default `catalog`). Each type has its own
/// typed `config:`; a key of another type's config is an unknown key there.
///
/// Deserialized by hand (below) so that `config:` is read straight into the chosen type's
/// struct when `type:` comes first (the usual order), keeping every key's line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkConfig {
    /// `catalog` (ours): the embedded SQLite catalog.
    Catalog(CatalogSinkConfig),
    /// `metadata-rest` (OpenMetadata's): an OpenMetadata server, configured by
    /// `workflowConfig.openMetadataServerConfig`.
    MetadataRest(MetadataRestSinkConfig),
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig::Catalog(CatalogSinkConfig::default())
    }
}

impl SinkConfig {
    /// The `type:` of this sink.
    pub fn sink_type(&self) -> SinkType {
        match self {
            SinkConfig::Catalog(_) => SinkType::Catalog,
            SinkConfig::MetadataRest(_) => SinkType::MetadataRest,
        }
    }
}

/// The sink types (`sink.type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SinkType {
    #[default]
    Catalog,
    MetadataRest,
}

impl SinkType {
    pub fn as_str(self) -> &'static str {
        match self {
            SinkType::Catalog => "catalog",
            SinkType::MetadataRest => "metadata-rest",
        }
    }
}

/// `config:` of the `catalog` sink.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CatalogSinkConfig {
    /// The SQLite file (default `./sagebridge.db`).
    #[serde(default)]
    pub path: Option<PathBuf>,
}

impl CatalogSinkConfig {
    /// The catalog file, `./sagebridge.db` unless set.
    pub fn path(&self) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| PathBuf::from("sagebridge.db"))
    }
}

/// `config:` of the `metadata-rest` sink: OpenMetadata's `MetadataRestSinkConfig`. The server
/// itself is `workflowConfig.openMetadataServerConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataRestSinkConfig {
    /// Accepted because OpenMetadata accepts it; unused there and here.
    #[serde(default)]
    pub api_endpoint: Option<String>,
}

/// A sink's `config:` read before its `type:` (any order is valid YAML): every type's keys,
/// sorted out once the type is known.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnySinkSettings {
    #[serde(default)]
    path: Option<PathBuf>,
    #[serde(default)]
    api_endpoint: Option<String>,
}

impl AnySinkSettings {
    fn into_sink(self, kind: SinkType) -> Result<SinkConfig, String> {
        match (kind, self) {
            (SinkType::Catalog, AnySinkSettings { path, api_endpoint: None }) => {
                Ok(SinkConfig::Catalog(CatalogSinkConfig { path }))
            }
            (SinkType::MetadataRest, AnySinkSettings { path: None, api_endpoint }) => {
                Ok(SinkConfig::MetadataRest(MetadataRestSinkConfig { api_endpoint }))
            }
            (kind, AnySinkSettings { path: Some(_), .. }) => Err(format!(
                "config.path is a setting of the catalog sink, not of `{}`; remove it",
                kind.as_str()
            )),
            (kind, _) => Err(format!(
                "config.api_endpoint is a setting of the metadata-rest sink, not of `{}`; remove it",
                kind.as_str()
            )),
        }
    }
}

impl<'de> Deserialize<'de> for SinkConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct("SinkConfig", &["type", "config"], SinkVisitor)
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum SinkKey {
    Type,
    Config,
}

struct SinkVisitor;

impl<'de> serde::de::Visitor<'de> for SinkVisitor {
    type Value = SinkConfig;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a sink: `type` (catalog or metadata-rest) and its `config`")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<SinkConfig, A::Error> {
        use serde::de::Error;
        let mut kind: Option<SinkType> = None;
        let mut sink: Option<SinkConfig> = None;
        let mut early: Option<AnySinkSettings> = None;
        while let Some(key) = map.next_key::<SinkKey>()? {
            match key {
                SinkKey::Type if kind.is_some() => return Err(A::Error::duplicate_field("type")),
                SinkKey::Type => kind = Some(map.next_value()?),
                SinkKey::Config if sink.is_some() || early.is_some() => {
                    return Err(A::Error::duplicate_field("config"))
                }
                SinkKey::Config => match kind {
                    Some(SinkType::Catalog) => sink = Some(SinkConfig::Catalog(map.next_value()?)),
                    Some(SinkType::MetadataRest) => {
                        sink = Some(SinkConfig::MetadataRest(map.next_value()?))
                    }
                    None => early = Some(map.next_value()?),
                },
            }
        }
        let kind = kind.unwrap_or_default();
        match (sink, early) {
            (Some(sink), _) => Ok(sink),
            (None, Some(settings)) => settings.into_sink(kind).map_err(A::Error::custom),
            (None, None) => Ok(match kind {
                SinkType::Catalog => SinkConfig::Catalog(CatalogSinkConfig::default()),
                SinkType::MetadataRest => {
                    SinkConfig::MetadataRest(MetadataRestSinkConfig::default())
                }
            }),
        }
    }
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
    #[serde(default)]
    pub auth_provider: AuthProvider,
    #[serde(default)]
    pub security_config: Option<SecurityConfig>,
    #[serde(default)]
    pub store_service_connection: Option<bool>,
    #[serde(default, rename = "verifySSL")]
    pub verify_ssl: VerifySsl,
    #[serde(default)]
    pub ssl_config: Option<SslConfig>,
}

/// OpenMetadata's `authProvider` values. We speak `openmetadata` (a JWT in
/// `securityConfig.jwtToken`) and `no-auth`; the others load (OpenMetadata accepts them) and
/// are reported as unsupported by validation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthProvider {
    NoAuth,
    Azure,
    Google,
    Okta,
    Auth0,
    AwsCognito,
    CustomOidc,
    Ldap,
    Saml,
    #[default]
    Openmetadata,
}

impl AuthProvider {
    /// The value as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthProvider::NoAuth => "no-auth",
            AuthProvider::Azure => "azure",
            AuthProvider::Google => "google",
            AuthProvider::Okta => "okta",
            AuthProvider::Auth0 => "auth0",
            AuthProvider::AwsCognito => "aws-cognito",
            AuthProvider::CustomOidc => "custom-oidc",
            AuthProvider::Ldap => "ldap",
            AuthProvider::Saml => "saml",
            AuthProvider::Openmetadata => "openmetadata",
        }
    }

    /// Whether sagebridge can authenticate this way.
    pub fn is_supported(self) -> bool {
        matches!(self, AuthProvider::Openmetadata | AuthProvider::NoAuth)
    }
}

/// OpenMetadata's `verifySSL` values. `no-ssl` (OpenMetadata's default) and `validate` both
/// check `https://` certificates against the system roots plus `sslConfig.caCertificate`;
/// `ignore` does not check them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifySsl {
    #[default]
    NoSsl,
    Ignore,
    Validate,
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
        yaml::load(&yaml::ConfigText { name, text, env })
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
                    if c.enrichment_deadline_seconds == 0 {
                        p.add("enrichmentDeadlineSeconds", "must be at least 1");
                    }
                    if c.attempt_timeout_seconds == 0 {
                        p.add("attemptTimeoutSeconds", "must be at least 1");
                    }
                    if c.operation_timeout_seconds < c.attempt_timeout_seconds {
                        p.add(
                            "operationTimeoutSeconds",
                            "must be at least attemptTimeoutSeconds (it covers every attempt)",
                        );
                    }
                    if !(0.0..=1.0).contains(&c.mark_deleted_max_fraction) {
                        p.add(
                            "markDeletedMaxFraction",
                            "markDeletedMaxFraction must be between 0 and 1 (0.5: at most half of the live models)",
                        );
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
        if let SinkConfig::MetadataRest(_) = self.sink {
            if self.workflow_config.open_metadata_server_config.is_none() {
                p.at("sink", |p| {
                    p.add(
                        "type",
                        "the metadata-rest sink needs workflowConfig.openMetadataServerConfig",
                    )
                });
            }
        }
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
                    if !om.auth_provider.is_supported() {
                        p.add(
                            "authProvider",
                            format!(
                                "auth provider `{}` is not supported; use `openmetadata` (JWT)",
                                om.auth_provider.as_str()
                            ),
                        );
                    }
                    if om.auth_provider == AuthProvider::Openmetadata
                        && om.security_config.is_none()
                    {
                        p.add(
                            "securityConfig",
                            "authProvider openmetadata needs securityConfig.jwtToken",
                        );
                    }
                })
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "source:
  type: sagemaker
  serviceName: sm
  serviceConnection:
    config:
      type: SageMaker
      awsConfig:
        awsRegion: us-east-1
";

    fn parse(rest: &str) -> Result<WorkflowConfig, ConfigErrors> {
        WorkflowConfig::parse("wf.yaml", &format!("{SOURCE}{rest}"), &|_| None)
    }

    fn errors(rest: &str) -> Vec<String> {
        parse(rest)
            .expect_err("an invalid file")
            .0
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const OM: &str = "workflowConfig:
  openMetadataServerConfig:
    hostPort: http://localhost:8585/api
    authProvider: openmetadata
    securityConfig:
      jwtToken: token
";

    #[test]
    fn sink_types_and_their_config() {
        assert_eq!(parse("").unwrap().sink, SinkConfig::default());
        let cfg = parse("sink:\n  type: catalog\n  config:\n    path: /tmp/x.db\n").unwrap();
        assert_eq!(
            cfg.sink,
            SinkConfig::Catalog(CatalogSinkConfig {
                path: Some("/tmp/x.db".into())
            })
        );
        // `type` may be left out (catalog), `config` too, and come in any order.
        let cfg = parse("sink:\n  config:\n    path: a.db\n").unwrap();
        assert_eq!(cfg.sink.sink_type(), SinkType::Catalog);
        let cfg = parse(&format!("sink:\n  type: metadata-rest\n{OM}")).unwrap();
        assert_eq!(
            cfg.sink,
            SinkConfig::MetadataRest(MetadataRestSinkConfig::default())
        );
        let cfg = parse(&format!(
            "sink:\n  config:\n    api_endpoint: x\n  type: metadata-rest\n{OM}"
        ))
        .unwrap();
        assert_eq!(cfg.sink.sink_type(), SinkType::MetadataRest);
        let cfg = parse("sink:\n  config:\n    path: b.db\n  type: catalog\n").unwrap();
        assert_eq!(
            cfg.sink,
            SinkConfig::Catalog(CatalogSinkConfig {
                path: Some("b.db".into())
            })
        );
    }

    #[test]
    fn sink_errors_have_a_location() {
        let e = errors("sink:\n  type: kafka\n  config: {}\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("wf.yaml:10:9: sink.type: unknown value `kafka`; expected one of: catalog, metadata-rest"),
            "{e:?}"
        );
        // Another type's setting is an unknown key of this type's config.
        let e = errors(&format!(
            "sink:\n  type: metadata-rest\n  config:\n    path: x.db\n{OM}"
        ));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("wf.yaml:12:5: sink.config.path: unknown key `path`"),
            "{e:?}"
        );
        let e = errors("sink:\n  type: catalog\n  config:\n    api_endpoint: x\n");
        assert!(
            e[0].starts_with("wf.yaml:12:5: sink.config.api_endpoint: unknown key"),
            "{e:?}"
        );
        // The same mistake with `config` before `type`: said at the sink.
        let e = errors(&format!(
            "sink:\n  config:\n    path: x.db\n  type: metadata-rest\n{OM}"
        ));
        assert!(
            e[0].starts_with("wf.yaml:10:3: sink: config.path is a setting of the catalog sink"),
            "{e:?}"
        );
        // A metadata-rest sink without a server, and the rest of the file still checked.
        let e = errors("sink:\n  type: metadata-rest\n  bogus: 1\n");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].contains("sink.type: the metadata-rest sink needs"),
            "{e:?}"
        );
        assert!(
            e[1].starts_with("wf.yaml:11:3: sink.bogus: unknown key"),
            "{e:?}"
        );
    }

    #[test]
    fn openmetadata_server_enums() {
        let server = |extra: &str| {
            parse(&format!(
                "sink:\n  type: metadata-rest\nworkflowConfig:\n  openMetadataServerConfig:\n    hostPort: https://om:8585/api\n    securityConfig:\n      jwtToken: t\n{extra}"
            ))
        };
        let om = |cfg: WorkflowConfig| cfg.workflow_config.open_metadata_server_config.unwrap();
        let cfg = om(server("").unwrap());
        assert_eq!(cfg.auth_provider, AuthProvider::Openmetadata);
        assert_eq!(cfg.verify_ssl, VerifySsl::NoSsl);
        for (text, value) in [
            ("no-ssl", VerifySsl::NoSsl),
            ("ignore", VerifySsl::Ignore),
            ("validate", VerifySsl::Validate),
        ] {
            let cfg = om(server(&format!("    verifySSL: {text}\n")).unwrap());
            assert_eq!(cfg.verify_ssl, value);
        }
        let cfg = om(server("    authProvider: no-auth\n").unwrap());
        assert_eq!(cfg.auth_provider, AuthProvider::NoAuth);

        let e = server("    verifySSL: maybe\n").unwrap_err().0;
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!((e[0].line, e[0].column), (16, 16), "{e:?}");
        assert_eq!(
            e[0].message,
            "unknown value `maybe`; expected one of: no-ssl, ignore, validate"
        );
        // OpenMetadata's other providers load, and are said to be unsupported.
        let e = server("    authProvider: azure\n").unwrap_err().0;
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(
            e[0].path,
            "workflowConfig.openMetadataServerConfig.authProvider"
        );
        assert_eq!(
            e[0].message,
            "auth provider `azure` is not supported; use `openmetadata` (JWT)"
        );
        assert_eq!(e[0].line, 16);
        let e = server("    authProvider: kerberos\n").unwrap_err().0;
        assert!(
            e[0].message
                .starts_with("unknown value `kerberos`; expected one of: no-auth, azure"),
            "{e:?}"
        );
    }
}

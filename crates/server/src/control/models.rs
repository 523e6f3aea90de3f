//! The gateway's model list: the models of `sagebridge.yaml` (read-only) followed by those
//! stored in the catalog, each checked by the gateway config's own validation so a model added
//! over the API is held to the rules of the file.

use sagebridge_aws::yaml::{ConfigError, ConfigErrors};
use sagebridge_catalog::{ControlStore, SqliteCatalog};
use sagebridge_gateway::{Gateway, GatewayConfig, ModelConfig};
use serde_json::{json, Value};

/// Why a model entry is not valid: the field (`format`, `awsConfig.awsRegion`, ...) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpecError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for ModelSpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// The first problem of `errors`, with the `models[0].` prefix of the wrapping document cut.
fn first_problem(errors: &ConfigErrors) -> ModelSpecError {
    let Some(ConfigError { path, message, .. }) = errors.0.first() else {
        return ModelSpecError {
            field: String::new(),
            message: "the model entry is not valid".to_owned(),
        };
    };
    let field = path
        .strip_prefix("models[0].")
        .or_else(|| path.strip_prefix("models[0]"))
        .unwrap_or(path)
        .to_owned();
    ModelSpecError {
        field,
        message: message.clone(),
    }
}

/// Parses one `models:` entry (with its `awsConfig` in clear, if any) and validates it as
/// `sagebridge.yaml` would, over the file's top-level `awsConfig`.
pub fn parse_model_spec(
    entry: &Value,
    base: &GatewayConfig,
) -> Result<ModelConfig, ModelSpecError> {
    let mut doc = json!({"models": [entry]});
    if let Some(aws) = &base.aws_config {
        // The file's top-level `awsConfig` matters to the check "every model has AWS settings";
        // its secrets are not needed for that and are not copied.
        doc["awsConfig"] = json!({"awsRegion": aws.region()});
    }
    // JSON is YAML: the file's strict loader reports unknown keys and bad values by path. No
    // `${ENV}` is expanded in a request.
    let text = doc.to_string();
    let cfg: GatewayConfig = sagebridge_gateway::config::load_str("request", &text, &|_| None)
        .map_err(|e| first_problem(&e))?;
    cfg.models.into_iter().next().ok_or_else(|| ModelSpecError {
        field: String::new(),
        message: "the model entry is missing".to_owned(),
    })
}

/// `base` plus every catalog model that still builds; one that does not is left out with a
/// warning (its service may have changed since), so `serve` keeps serving the others.
pub(crate) fn build_gateway(
    catalog: &SqliteCatalog,
    base: &GatewayConfig,
) -> anyhow::Result<Gateway> {
    let mut cfg = base.clone();
    for stored in catalog.gateway_models_with_secrets()? {
        let name = stored.model.name.clone();
        if base.models.iter().any(|m| m.name == name) {
            tracing::warn!(model = %name, "a catalog model has the name of a model of the gateway file; the file's is served");
            continue;
        }
        match parse_model_spec(&stored.expose_model_config(), base) {
            Ok(model) => cfg.models.push(model),
            Err(e) => {
                tracing::warn!(model = %name, error = %e, "a catalog model is not valid and is not served")
            }
        }
    }
    super::gateway_from(&cfg)
}

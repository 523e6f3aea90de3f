//! Request bodies, checked with the parsers the workflow file goes through.
//!
//! An `awsConfig` or a `sourceConfig.config` is put into a minimal workflow document and run
//! through [`WorkflowConfig::parse`], so the API refuses exactly what `sagebridge ingest -c`
//! would refuse (unknown keys, an invalid region or role ARN, a bad regular expression), with
//! the field's path in the request.

use sagebridge_catalog::{REDACTED, SECRET_FIELDS};
use sagebridge_ingest::config::WorkflowConfig;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::AdminError;

/// Refuses a value other than `allowed` for an enumerated field (`serviceType: SageMaker`, ...).
pub(super) fn check_choice(
    field: &str,
    value: Option<&str>,
    allowed: &str,
) -> Result<(), AdminError> {
    match value.filter(|v| *v != allowed) {
        Some(v) => Err(AdminError::bad_request(format!(
            "{field}: `{v}` is not supported; use `{allowed}`"
        ))),
        None => Ok(()),
    }
}

/// Parses a JSON body into `T` (whose structs reject unknown fields).
pub(super) fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    serde_json::from_slice(body)
        .map_err(|e| AdminError::bad_request(format!("invalid request body: {e}")))
}

/// Checks an `awsConfig` as the workflow file's `serviceConnection.config.awsConfig`; errors
/// name `connection.config.awsConfig.<field>`.
pub(super) fn check_aws_config(aws: &Value) -> Result<(), AdminError> {
    parse_aws_config(aws).map(|_| ())
}

/// [`check_aws_config`], answering the parsed config (secrets in clear: never for a response).
pub(super) fn parse_aws_config(aws: &Value) -> Result<sagebridge_aws::AwsConfig, AdminError> {
    if !aws.is_object() {
        return Err(AdminError::bad_request(
            "connection.config.awsConfig: must be a JSON object",
        ));
    }
    let doc = json!({"source": {
        "type": "sagemaker",
        "serviceName": "validation",
        "serviceConnection": {"config": {"type": "SageMaker", "awsConfig": aws}},
    }});
    let secrets: Vec<String> = SECRET_FIELDS
        .iter()
        .filter_map(|f| aws.get(*f).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    check_workflow(&doc, &secrets).map(|cfg| cfg.aws().clone())
}

/// Checks a pipeline's `sourceConfig.config` as the workflow file's; errors name
/// `sourceConfig.config.<field>`.
pub(super) fn check_source_config(config: &Value) -> Result<(), AdminError> {
    let Value::Object(map) = config else {
        return Err(AdminError::bad_request(
            "sourceConfig.config: must be a JSON object",
        ));
    };
    if map.contains_key("schedule") {
        return Err(AdminError::bad_request(
            "sourceConfig.config.schedule: a pipeline's schedule is airflowConfig.scheduleInterval; \
             move it there",
        ));
    }
    let doc = json!({"source": {
        "type": "sagemaker",
        "serviceName": "validation",
        "serviceConnection": {"config": {"type": "SageMaker",
            "awsConfig": {"awsRegion": "us-east-1"}}},
        "sourceConfig": {"config": config},
    }});
    check_workflow(&doc, &[]).map(|_| ())
}

/// Checks a cron schedule (UTC) as `sagebridge ingest --schedule` reads it.
pub(super) fn check_schedule(expr: &str) -> Result<(), AdminError> {
    sagebridge_ingest::schedule::Cron::parse(expr)
        .map(|_| ())
        .map_err(|e| AdminError::bad_request(format!("airflowConfig.scheduleInterval: {e}")))
}

fn check_workflow(doc: &Value, secrets: &[String]) -> Result<WorkflowConfig, AdminError> {
    let text = doc.to_string();
    let errors = match WorkflowConfig::parse("request", &text, &|_| None) {
        Ok(cfg) => return Ok(cfg),
        Err(errors) => errors,
    };
    let message = errors
        .0
        .iter()
        .map(|e| {
            let path = request_path(&e.path);
            if path.is_empty() {
                e.message.clone()
            } else {
                format!("{path}: {}", e.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    let message = secrets
        .iter()
        .fold(message, |m, secret| m.replace(secret.as_str(), REDACTED));
    Err(AdminError::bad_request(message))
}

/// The request's path of a workflow-file path.
fn request_path(workflow_path: &str) -> String {
    if let Some(rest) = workflow_path.strip_prefix("source.serviceConnection.") {
        format!("connection.{rest}")
    } else if let Some(rest) = workflow_path.strip_prefix("source.") {
        rest.to_owned()
    } else {
        workflow_path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_paths_become_request_paths() {
        assert_eq!(
            request_path("source.serviceConnection.config.awsConfig.awsRegion"),
            "connection.config.awsConfig.awsRegion"
        );
        assert_eq!(
            request_path("source.sourceConfig.config.concurrency"),
            "sourceConfig.config.concurrency"
        );
    }

    #[test]
    fn invalid_values_name_their_field_and_hide_secrets() {
        let e = check_aws_config(&json!({"awsRegion": "nowhere", "awsAccessKeyId": "AKIA",
            "awsSecretAccessKey": "hunter2", "bogus": 1}))
        .unwrap_err();
        assert!(
            e.message.contains("connection.config.awsConfig"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("hunter2"), "{}", e.message);
        assert!(check_aws_config(&json!({"awsRegion": "us-east-1"})).is_ok());
        let e = check_source_config(&json!({"concurrency": 0})).unwrap_err();
        assert!(
            e.message.contains("sourceConfig.config.concurrency"),
            "{}",
            e.message
        );
        assert!(check_schedule("0 */6 * * *").is_ok());
        assert!(check_schedule("61 * * * *")
            .unwrap_err()
            .message
            .starts_with("airflowConfig.scheduleInterval: "));
    }
}

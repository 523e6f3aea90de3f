//! `POST /api/v1/services/mlmodelServices/{id}/testConnection` and
//! `POST /api/v1/services/testConnection`: the steps of `sagebridge test-connection`, run on a
//! stored service or on a connection not saved yet, each step's result in the answer, with the
//! IAM policy that lets ingestion make every call.
//!
//! An unsaved connection may name a stored service (`service`: id or name) whose secrets fill
//! in those the body leaves out, so an edit form can test its changes without asking for the
//! secret again.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use sagebridge_aws::{AwsConfig, CheckReport, ClientOptions, Clients, Step};
use sagebridge_catalog::{ControlStore, REDACTED, SECRET_FIELDS};
use sagebridge_ingest::test_connection::{test_connection, IAM_ACTIONS};
use serde::Deserialize;
use serde_json::{json, Value};

use super::validate::{parse_aws_config, parse_body};
use super::{AdminError, AdminState};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TestBody {
    connection: Connection,
    /// A stored service whose secrets fill in those left out.
    #[serde(default)]
    service: Option<String>,
    /// Accepted as in CreateMlModelService; must be SageMaker.
    #[serde(default)]
    service_type: Option<String>,
    /// Accepted as in CreateMlModelService (an add form sends its whole body); not used.
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Connection {
    config: ConnectionConfig,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConnectionConfig {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    aws_config: Value,
}

/// Tests a stored service's connection.
pub(super) async fn test_service(
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let aws = s
        .run(move |c| Ok(c.service_with_secrets(&id)?.aws_config.expose().clone()))
        .await?;
    let aws = parse_aws_config(&aws)?;
    Ok(Json(report_json(&run_steps(&aws).await)))
}

/// Tests a connection given in the body.
pub(super) async fn test_unsaved(
    State(s): State<AdminState>,
    body: Bytes,
) -> Result<Json<Value>, AdminError> {
    let req: TestBody = parse_body(&body)?;
    let _ = (&req.name, &req.description);
    for (field, value) in [
        ("serviceType", req.service_type.as_deref()),
        (
            "connection.config.type",
            req.connection.config.kind.as_deref(),
        ),
    ] {
        if let Some(t) = value.filter(|t| *t != "SageMaker") {
            return Err(AdminError::bad_request(format!(
                "{field}: `{t}` is not supported; use `SageMaker`"
            )));
        }
    }
    let mut aws = req.connection.config.aws_config;
    if let Some(key) = req.service.filter(|k| !k.is_empty()) {
        let stored = s
            .run(move |c| {
                let entry = c.service(&key).or_else(|_| c.service_by_name(&key))?;
                Ok(c.service_with_secrets(&entry.id)?
                    .aws_config
                    .expose()
                    .clone())
            })
            .await?;
        fill_secrets(&mut aws, &stored);
    }
    let aws = parse_aws_config(&aws)?;
    Ok(Json(report_json(&run_steps(&aws).await)))
}

/// Puts the stored secrets into `aws` where it leaves them out (or sends the redaction mark).
fn fill_secrets(aws: &mut Value, stored: &Value) {
    let Value::Object(map) = aws else { return };
    for field in SECRET_FIELDS {
        let missing = match map.get(field) {
            None | Some(Value::Null) => true,
            Some(Value::String(v)) => v.is_empty() || v == REDACTED,
            Some(_) => false,
        };
        if let (true, Some(v)) = (missing, stored.get(field)) {
            map.insert(field.to_owned(), v.clone());
        }
    }
}

/// Builds the clients (no retries: a check answers at once) and runs the steps. Credentials
/// that cannot even be set up (an unknown profile, say) are one failed step.
async fn run_steps(aws: &AwsConfig) -> CheckReport {
    let started = Instant::now();
    match Clients::new(aws, &ClientOptions::no_retries()).await {
        Ok(clients) => test_connection(&clients).await,
        Err(e) => {
            CheckReport::from_steps(vec![Step::from_aws("GetCallerIdentity", true, started, &e)])
        }
    }
}

/// The report with the policy that makes every step pass, and the actions found missing.
fn report_json(report: &CheckReport) -> Value {
    let mut out = serde_json::to_value(report).unwrap_or_else(|_| json!({}));
    let missing: Vec<&str> = report
        .steps
        .iter()
        .filter_map(|s| s.error_kind.as_ref().and_then(|k| k.iam_action()))
        .collect();
    out["missingActions"] = json!(missing);
    out["policy"] = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "SagebridgeIngestion",
            "Effect": "Allow",
            "Action": IAM_ACTIONS,
            "Resource": "*",
        }],
    });
    out
}

//! `POST /api/v1/services/mlmodelServices/{id}/testConnection` and
//! `POST /api/v1/services/testConnection`: the steps of `sagebridge test-connection`, run on a
//! stored service or on a connection not saved yet, each step's result in the answer, with the
//! IAM policy that lets ingestion make every call.
//!
//! With `Accept: text/event-stream` the answer is a stream of server-sent events instead: one
//! `step` event per step as soon as it is done, then one `report` event with the whole answer.
//!
//! An unsaved connection may name a stored service (`service`: id or name) whose secrets fill
//! in those the body leaves out, so an edit form can test its changes without asking for the
//! secret again.

use std::convert::Infallible;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sagebridge_aws::{AwsConfig, CheckReport, ClientOptions, Clients, Step};
use sagebridge_catalog::{ControlStore, REDACTED, SECRET_FIELDS};
use sagebridge_ingest::test_connection::{test_connection, test_connection_streaming, IAM_ACTIONS};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;

use super::openapi;
use super::services::Connection;
use super::validate::{check_choice, parse_aws_config, parse_body};
use super::{AdminError, AdminState};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
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

/// Tests a stored service's connection.
#[utoipa::path(
    post,
    path = "/api/v1/services/mlmodelServices/{id}/testConnection",
    tag = "services",
    summary = "Test a stored service's connection: each step and the IAM policy",
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 404, description = "Not found", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
pub(super) async fn test_service(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    let aws = s
        .run(move |c| Ok(c.service_with_secrets(&id)?.aws_config.expose().clone()))
        .await?;
    let aws = parse_aws_config(&aws)?;
    Ok(answer(&headers, aws).await)
}

/// Tests a connection given in the body.
#[utoipa::path(
    post,
    path = "/api/v1/services/testConnection",
    tag = "services",
    summary = "Test an unsaved connection",
    request_body(content = TestBody, content_type = "application/json"),
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 400, description = "Bad input; the message names the field", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
pub(super) async fn test_unsaved(
    State(s): State<AdminState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AdminError> {
    let req: TestBody = parse_body(&body)?;
    let _ = (&req.name, &req.description);
    check_choice("serviceType", req.service_type.as_deref(), "SageMaker")?;
    check_choice(
        "connection.config.type",
        req.connection.config.kind.as_deref(),
        "SageMaker",
    )?;
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
    Ok(answer(&headers, aws).await)
}

/// Whether the client asked for server-sent events.
fn wants_events(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

/// The JSON answer, or the event stream when the client asked for it.
async fn answer(headers: &HeaderMap, aws: AwsConfig) -> Response {
    if !wants_events(headers) {
        return Json(report_json(&run_steps(&aws, None).await)).into_response();
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move { run_steps(&aws, Some(tx)).await });
    let steps = futures::stream::unfold(rx, |mut rx| async move {
        let step = rx.recv().await?;
        let event = Event::default()
            .event("step")
            .json_data(&step)
            .unwrap_or_default();
        Some((Ok::<_, Infallible>(event), rx))
    });
    let end = futures::stream::once(async move {
        let data = match task.await {
            Ok(report) => report_json(&report),
            Err(e) => json!({"code": 500, "message": format!("the check failed: {e}")}),
        };
        Ok(Event::default()
            .event("report")
            .json_data(data)
            .unwrap_or_default())
    });
    Sse::new(futures::StreamExt::chain(steps, end)).into_response()
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

/// Builds the clients (no retries: a check answers at once) and runs the steps, sending each to
/// `tx` when given. Credentials that cannot even be set up (an unknown profile, say) are one
/// failed step.
async fn run_steps(aws: &AwsConfig, tx: Option<UnboundedSender<Step>>) -> CheckReport {
    let started = Instant::now();
    match (Clients::new(aws, &ClientOptions::no_retries()).await, tx) {
        (Ok(clients), Some(tx)) => test_connection_streaming(&clients, tx).await,
        (Ok(clients), None) => test_connection(&clients).await,
        (Err(e), tx) => {
            let step = Step::from_aws("GetCallerIdentity", true, started, &e);
            if let Some(tx) = tx {
                let _ = tx.send(step.clone());
            }
            CheckReport::from_steps(vec![step])
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

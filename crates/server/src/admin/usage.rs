//! `GET /api/v1/gateway/usage`: the gateway's usage per UTC day, API key (by name) and model,
//! from the catalog's daily aggregates. The usage the gateway has counted but not yet written
//! (it writes in the background every few seconds) is written first, so the answer includes
//! every request that has ended.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use sagebridge_catalog::{ControlStore, UsageQuery, UsageRecord};
use serde::Deserialize;
use serde_json::{json, Value};

use super::openapi;
use super::{AdminError, AdminState};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct UsageParams {
    /// A key's name (`file-key-N` for the N-th key of `server.apiKeys`).
    #[serde(default)]
    key: Option<String>,
    /// A model's name.
    #[serde(default)]
    model: Option<String>,
    /// The first day, `YYYY-MM-DD` (UTC), inclusive.
    #[serde(default)]
    from: Option<String>,
    /// The last day, `YYYY-MM-DD` (UTC), inclusive.
    #[serde(default)]
    to: Option<String>,
}

/// `value` when it is a `YYYY-MM-DD` day, else a 400 naming `field`.
fn check_day(field: &str, value: Option<String>) -> Result<Option<String>, AdminError> {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let b = v.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let number = |r: std::ops::Range<usize>| v[r].parse::<u32>().unwrap_or(0);
    let valid = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && digits(0..4)
        && digits(5..7)
        && digits(8..10)
        && (1..=12).contains(&number(5..7))
        && (1..=31).contains(&number(8..10));
    if !valid {
        return Err(AdminError::bad_request(format!(
            "{field}: `{v}` is not a day; use YYYY-MM-DD (UTC)"
        )));
    }
    Ok(Some(v))
}

fn record_json(r: &UsageRecord) -> Value {
    let errors: u64 = r.errors.values().sum();
    json!({
        "day": r.day,
        "key": r.key,
        "model": r.model,
        "requests": r.requests,
        "errors": errors,
        "errorsByClass": r.errors,
        "promptTokens": r.prompt_tokens,
        "completionTokens": r.completion_tokens,
        "totalTokens": r.prompt_tokens + r.completion_tokens,
        "latencyMsTotal": r.latency_ms,
        "latencyMsAverage": r.latency_ms.checked_div(r.requests).unwrap_or(0),
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/gateway/usage",
    tag = "gateway",
    summary = "Gateway usage per day, API key and model: requests, errors by class, tokens, latency",
    params(UsageParams),
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 400, description = "Bad input; the message names the field", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
pub(super) async fn get(
    State(s): State<AdminState>,
    params: Result<Query<UsageParams>, QueryRejection>,
) -> Result<Json<Value>, AdminError> {
    let Query(p) = params?;
    let query = UsageQuery {
        key: p.key.filter(|k| !k.is_empty()),
        model: p.model.filter(|m| !m.is_empty()),
        from: check_day("from", p.from)?,
        to: check_day("to", p.to)?,
    };
    if let (Some(from), Some(to)) = (&query.from, &query.to) {
        if from > to {
            return Err(AdminError::bad_request(format!(
                "from: {from} is after to ({to})"
            )));
        }
    }
    s.control
        .flush_usage()
        .await
        .map_err(|e| AdminError::internal(format!("cannot write the gateway's usage: {e:#}")))?;
    let records = s.run(move |c| Ok(c.usage(&query)?)).await?;
    let mut totals = UsageRecord::default();
    for r in &records {
        totals.requests += r.requests;
        totals.prompt_tokens += r.prompt_tokens;
        totals.completion_tokens += r.completion_tokens;
        totals.latency_ms += r.latency_ms;
        for (class, n) in &r.errors {
            *totals.errors.entry(class.clone()).or_insert(0) += n;
        }
    }
    let mut totals = record_json(&totals);
    if let Value::Object(m) = &mut totals {
        m.remove("day");
        m.remove("key");
        m.remove("model");
    }
    let data: Vec<Value> = records.iter().map(record_json).collect();
    Ok(Json(json!({
        "data": data,
        "totals": totals,
        "paging": {"total": records.len()},
    })))
}

//! `/api/v1/mlmodels`: the catalog's models, paged as OpenMetadata pages them.
//!
//! `service` (a service name or id) and `q` (name contains, ASCII case ignored) and `deleted`
//! (include soft-deleted models) are the store's own query. The store has no query by tag or
//! algorithm, so with `tag` or `algorithm` the matching models are listed and filtered here.
//! `after` is an opaque cursor (an offset) taken from the previous page's `paging.after`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use sagebridge_catalog::{Catalog, ControlStore, ListQuery, MlModel};
use serde::Deserialize;
use serde_json::{json, Value};

use super::openapi;
use super::{AdminError, AdminState};

/// Models per page when the request gives no `limit`.
const DEFAULT_LIMIT: usize = 50;
/// The largest `limit`.
const MAX_LIMIT: usize = 1_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ListParams {
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    algorithm: Option<String>,
    #[serde(default)]
    deleted: Option<bool>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    after: Option<String>,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

fn has_tag(model: &MlModel, tag: &str) -> bool {
    model.tags.iter().any(|t| {
        t.tag_fqn.eq_ignore_ascii_case(tag)
            || t.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(tag))
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/mlmodels",
    tag = "models",
    summary = "List models, paged",
    params(ListParams),
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 400, description = "Bad input; the message names the field", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
pub(super) async fn list(
    State(s): State<AdminState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Value>, AdminError> {
    let Query(p) = params?;
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if limit > MAX_LIMIT {
        return Err(AdminError::bad_request(format!(
            "limit: {limit} is above the maximum of {MAX_LIMIT}"
        )));
    }
    let offset = match non_empty(p.after) {
        Some(after) => after.parse::<usize>().map_err(|_| {
            AdminError::bad_request(format!(
                "after: `{after}` is not a cursor from a previous page's paging.after"
            ))
        })?,
        None => 0,
    };
    let tag = non_empty(p.tag);
    let algorithm = non_empty(p.algorithm);
    let service = non_empty(p.service);
    let name_contains = non_empty(p.q);
    let include_deleted = p.deleted.unwrap_or(false);
    let (models, total) = s
        .run(move |c| {
            // A service id is taken for its name, as the models refer to services by name.
            let service = service.map(|key| c.service(&key).map(|e| e.name).unwrap_or(key));
            let mut query = ListQuery {
                service,
                include_deleted,
                name_contains,
                limit: None,
                offset: 0,
            };
            if tag.is_none() && algorithm.is_none() {
                let total = c.count_models(&query)? as usize;
                query.limit = Some(limit);
                query.offset = offset;
                return Ok((c.list_models(&query)?, total));
            }
            let matching: Vec<MlModel> = c
                .list_models(&query)?
                .into_iter()
                .filter(|m| tag.as_deref().is_none_or(|t| has_tag(m, t)))
                .filter(|m| {
                    algorithm
                        .as_deref()
                        .is_none_or(|a| m.algorithm.eq_ignore_ascii_case(a))
                })
                .collect();
            let total = matching.len();
            Ok((
                matching.into_iter().skip(offset).take(limit).collect(),
                total,
            ))
        })
        .await?;
    let mut paging = json!({"total": total});
    let next = offset + models.len();
    if !models.is_empty() && next < total {
        paging["after"] = json!(next.to_string());
    }
    if offset > 0 {
        paging["before"] = json!(offset.saturating_sub(limit).to_string());
    }
    Ok(Json(json!({"data": models, "paging": paging})))
}

#[utoipa::path(
    get,
    path = "/api/v1/mlmodels/name/{fqn}",
    tag = "models",
    summary = "A model by fully qualified name",
    params(("fqn" = String, Path, description = "service.model")),
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 404, description = "Not found", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
pub(super) async fn get_by_fqn(
    State(s): State<AdminState>,
    Path(fqn): Path<String>,
) -> Result<Json<MlModel>, AdminError> {
    let model = s
        .run(move |c| {
            c.get_model(None, &fqn)?
                .ok_or_else(|| AdminError::not_found(format!("model `{fqn}` not found")))
        })
        .await?;
    Ok(Json(model))
}

#[utoipa::path(
    get,
    path = "/api/v1/mlmodels/name/{fqn}/versions",
    tag = "models",
    summary = "The versions of a model",
    params(("fqn" = String, Path, description = "service.model")),
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 404, description = "Not found", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
pub(super) async fn versions(
    State(s): State<AdminState>,
    Path(fqn): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let versions = s
        .run(move |c| {
            let versions = c.model_versions(&fqn)?;
            if versions.is_empty() {
                return Err(AdminError::not_found(format!("model `{fqn}` not found")));
            }
            Ok(versions)
        })
        .await?;
    Ok(Json(json!({"entityType": "mlmodel", "versions": versions})))
}

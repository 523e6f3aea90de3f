//! The admin API under `/api/v1`: services, ingestion pipelines, the catalog's models and the
//! endpoints the gateway could serve, shaped like OpenMetadata's REST API so its users and
//! scripts find the same resources and fields.
//!
//! This router holds no authentication: `serve` mounts it behind the admin-token middleware.
//! Its state is the [`ControlPlane`], which runs pipelines and holds the gateway.
//! Every answer is JSON (except `workflow.yaml`); every error is OpenMetadata's
//! `{"code": <status>, "message": "..."}`, where a 400 names the field, a 404 names what was not
//! found and a 409 names the clash. Stored secrets never appear in an answer: the store only
//! hands out connections without them (and says which are set), and validation messages are
//! scrubbed of the secrets a request carried.
//!
//! # Layout
//! - `error`: [`AdminError`] and the mapping from [`sagebridge_catalog::CatalogError`].
//! - `validate`: request bodies checked with the workflow file's own parser, so the API and
//!   `sagebridge ingest -c` accept exactly the same `awsConfig` and `sourceConfig`.
//! - `services`: `/api/v1/services/mlmodelServices`.
//! - `pipelines`: `/api/v1/services/ingestionPipelines` and the `workflow.yaml` export.
//! - `mlmodels`: `/api/v1/mlmodels`.
//! - `connection`: `testConnection` of a stored service or of an unsaved connection.
//! - `runs`: trigger a pipeline, its runs, and a run's live events (server-sent events).
//! - `discovered`: `/api/v1/gateway/discovered`.
//! - `models`: `/api/v1/gateway/models`, applied to `/v1` at once.
//! - `keys`: `/api/v1/gateway/keys`.
//! - `usage`: `/api/v1/gateway/usage`, the gateway's daily usage per key and model.
//! - `openapi`: the OpenAPI 3.1 document (`/api/v1/openapi.json`), collected from the handlers'
//!   `#[utoipa::path]` by the same `OpenApiRouter` that builds the routes.

mod connection;
mod discovered;
mod error;
mod keys;
mod mlmodels;
mod models;
mod openapi;
mod pipelines;
mod runs;
mod services;
mod usage;
mod validate;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use sagebridge_catalog::SqliteCatalog;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::AdminError;
pub(crate) use pipelines::workflow_document;

use crate::control::ControlPlane;

/// Shared state of the admin routes.
#[derive(Clone)]
struct AdminState {
    catalog: Arc<SqliteCatalog>,
    control: Arc<ControlPlane>,
}

impl AdminState {
    /// Runs a blocking store call off the async runtime.
    async fn run<T, F>(&self, f: F) -> Result<T, AdminError>
    where
        T: Send + 'static,
        F: FnOnce(&SqliteCatalog) -> Result<T, AdminError> + Send + 'static,
    {
        let catalog = Arc::clone(&self.catalog);
        tokio::task::spawn_blocking(move || f(catalog.as_ref()))
            .await
            .map_err(|e| AdminError::internal(format!("catalog task failed: {e}")))?
    }

    /// Applies a change of the catalog's gateway models (or of a service they use) to `/v1`.
    async fn reload_gateway(&self) -> Result<(), AdminError> {
        let control = Arc::clone(&self.control);
        tokio::task::spawn_blocking(move || control.reload_gateway())
            .await
            .map_err(|e| AdminError::internal(format!("gateway reload task failed: {e}")))?
            .map_err(|e| AdminError::internal(format!("cannot rebuild the gateway: {e:#}")))
    }
}

/// Every admin route (see the module docs), over the control plane's catalog, with the OpenAPI
/// document of them all at `GET /api/v1/openapi.json`.
pub fn router(control: Arc<ControlPlane>) -> Router {
    let (router, doc) = routes(control);
    router.merge(doc_route(doc))
}

/// The admin routes and their OpenAPI document (without the document's own route).
pub fn routes(control: Arc<ControlPlane>) -> (Router, utoipa::openapi::OpenApi) {
    let state = AdminState {
        catalog: control.catalog(),
        control,
    };
    let (router, mut doc) = OpenApiRouter::with_openapi(openapi::frame())
        .routes(routes!(services::list, services::create))
        .routes(routes!(
            services::get_by_id,
            services::update,
            services::delete
        ))
        .routes(routes!(services::get_by_name))
        .routes(routes!(connection::test_service))
        .routes(routes!(connection::test_unsaved))
        .routes(routes!(pipelines::list, pipelines::create))
        .routes(routes!(
            pipelines::get_by_id,
            pipelines::update,
            pipelines::delete
        ))
        .routes(routes!(pipelines::workflow_yaml))
        .routes(routes!(runs::trigger))
        .routes(routes!(runs::list))
        .routes(routes!(runs::get))
        .routes(routes!(runs::events))
        .routes(routes!(mlmodels::list))
        .routes(routes!(mlmodels::get_by_fqn))
        .routes(routes!(mlmodels::versions))
        .routes(routes!(discovered::list))
        .routes(routes!(models::list, models::create))
        .routes(routes!(models::get, models::update, models::delete))
        .routes(routes!(models::check))
        .routes(routes!(keys::list, keys::create))
        .routes(routes!(keys::update, keys::delete))
        .routes(routes!(usage::get))
        .with_state(state)
        .split_for_parts();
    openapi::describe_itself(&mut doc);
    (router, doc)
}

/// `GET /api/v1/openapi.json`, answering `doc`.
fn doc_route(doc: utoipa::openapi::OpenApi) -> Router {
    let body = Arc::new(serde_json::to_value(&doc).unwrap_or_default());
    Router::new().route(
        openapi::DOCUMENT_PATH,
        get(move || {
            let body = Arc::clone(&body);
            async move { axum::Json((*body).clone()) }
        }),
    )
}

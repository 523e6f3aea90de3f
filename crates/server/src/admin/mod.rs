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

mod connection;
mod discovered;
mod error;
mod keys;
mod mlmodels;
mod models;
mod pipelines;
mod runs;
mod services;
mod validate;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use sagebridge_catalog::SqliteCatalog;

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

/// Every admin route (see the module docs), over the control plane's catalog.
pub fn router(control: Arc<ControlPlane>) -> Router {
    let state = AdminState {
        catalog: control.catalog(),
        control,
    };
    Router::new()
        .route(
            "/api/v1/services/mlmodelServices",
            get(services::list).post(services::create),
        )
        .route(
            "/api/v1/services/mlmodelServices/{id}",
            get(services::get_by_id)
                .put(services::update)
                .delete(services::delete),
        )
        .route(
            "/api/v1/services/mlmodelServices/name/{name}",
            get(services::get_by_name),
        )
        .route(
            "/api/v1/services/mlmodelServices/{id}/testConnection",
            post(connection::test_service),
        )
        .route(
            "/api/v1/services/testConnection",
            post(connection::test_unsaved),
        )
        .route(
            "/api/v1/services/ingestionPipelines",
            get(pipelines::list).post(pipelines::create),
        )
        .route(
            "/api/v1/services/ingestionPipelines/{id}",
            get(pipelines::get_by_id)
                .put(pipelines::update)
                .delete(pipelines::delete),
        )
        .route(
            "/api/v1/services/ingestionPipelines/{id}/workflow.yaml",
            get(pipelines::workflow_yaml),
        )
        .route(
            "/api/v1/services/ingestionPipelines/trigger/{id}",
            post(runs::trigger),
        )
        .route(
            "/api/v1/services/ingestionPipelines/{id}/runs",
            get(runs::list),
        )
        .route(
            "/api/v1/services/ingestionPipelines/{id}/runs/{run_id}",
            get(runs::get),
        )
        .route(
            "/api/v1/services/ingestionPipelines/{id}/runs/{run_id}/events",
            get(runs::events),
        )
        .route("/api/v1/mlmodels", get(mlmodels::list))
        .route("/api/v1/mlmodels/name/{fqn}", get(mlmodels::get_by_fqn))
        .route(
            "/api/v1/mlmodels/name/{fqn}/versions",
            get(mlmodels::versions),
        )
        .route("/api/v1/gateway/discovered", get(discovered::list))
        .route(
            "/api/v1/gateway/models",
            get(models::list).post(models::create),
        )
        .route(
            "/api/v1/gateway/models/{name}",
            get(models::get).put(models::update).delete(models::delete),
        )
        .route("/api/v1/gateway/models/{name}/check", post(models::check))
        .route("/api/v1/gateway/keys", get(keys::list).post(keys::create))
        .route(
            "/api/v1/gateway/keys/{id}",
            axum::routing::delete(keys::delete),
        )
        .with_state(state)
}

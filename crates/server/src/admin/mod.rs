//! The admin API under `/api/v1`: services, ingestion pipelines, the catalog's models and the
//! endpoints the gateway could serve, shaped like OpenMetadata's REST API so its users and
//! scripts find the same resources and fields.
//!
//! This router holds no authentication: `serve` mounts it behind the admin-token middleware.
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
//! - `discovered`: `/api/v1/gateway/discovered`.

mod discovered;
mod error;
mod mlmodels;
mod pipelines;
mod services;
mod validate;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use sagebridge_catalog::SqliteCatalog;

pub use error::AdminError;

/// Shared state of the admin routes.
#[derive(Clone)]
struct AdminState {
    catalog: Arc<SqliteCatalog>,
    /// Endpoint names the gateway serves from `sagebridge.yaml` (read-only models).
    served: Arc<BTreeSet<String>>,
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
}

/// The admin routes over `catalog`. `served` holds the endpoint names of the gateway models from
/// `sagebridge.yaml`; those stored in the catalog are read from it on each request.
pub fn router(catalog: Arc<SqliteCatalog>, served: BTreeSet<String>) -> Router {
    let state = AdminState {
        catalog,
        served: Arc::new(served),
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
        .route("/api/v1/mlmodels", get(mlmodels::list))
        .route("/api/v1/mlmodels/name/{fqn}", get(mlmodels::get_by_fqn))
        .route(
            "/api/v1/mlmodels/name/{fqn}/versions",
            get(mlmodels::versions),
        )
        .route("/api/v1/gateway/discovered", get(discovered::list))
        .with_state(state)
}

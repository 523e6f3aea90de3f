//! `GET /api/v1/gateway/discovered`: InService endpoints that ingestion found and no gateway
//! model serves yet, with a suggested kind and format (see [`crate::discover`]).
//!
//! The endpoints come from the source facts the catalog stores with each live model; a gateway
//! model serves an endpoint when its `endpointName` is that endpoint's name, whether it comes
//! from `sagebridge.yaml` or from the catalog.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::Json;
use sagebridge_catalog::{Catalog, ControlStore, ListQuery};
use sagebridge_ingest::facts::ModelFacts;
use serde_json::{json, Value};

use super::{AdminError, AdminState};
use crate::discover::discovered;

pub(super) async fn list(State(s): State<AdminState>) -> Result<Json<Value>, AdminError> {
    let yaml_served = s.control.file_endpoints();
    let found = s
        .run(move |c| {
            let mut served: BTreeSet<String> = yaml_served;
            served.extend(c.gateway_models()?.into_iter().filter_map(|m| {
                m.spec
                    .get("endpointName")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            }));
            let mut with_facts: Vec<(String, ModelFacts)> = Vec::new();
            for model in c.list_models(&ListQuery::default())? {
                let service = model.service.name.clone().unwrap_or_default();
                let Some(text) = c.stored_facts(&service, &model.name)? else {
                    continue;
                };
                match serde_json::from_str::<ModelFacts>(&text) {
                    Ok(facts) => with_facts.push((model.fully_qualified_name, facts)),
                    Err(e) => tracing::warn!(
                        model = %model.fully_qualified_name,
                        error = %e,
                        "stored facts are not readable; the model's endpoints are not listed"
                    ),
                }
            }
            Ok(discovered(
                with_facts.iter().map(|(fqn, f)| (fqn.as_str(), f)),
                &served,
            ))
        })
        .await?;
    Ok(Json(
        json!({"data": found, "paging": {"total": found.len()}}),
    ))
}

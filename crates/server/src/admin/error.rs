//! The admin API's error: OpenMetadata's `{"code", "message"}` body with the HTTP status.

use axum::extract::rejection::QueryRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use sagebridge_catalog::CatalogError;
use serde_json::json;

/// Why an admin request failed. The message is sent as is, so it never holds a secret.
#[derive(Debug)]
pub struct AdminError {
    pub status: StatusCode,
    pub message: String,
}

impl AdminError {
    /// 400, naming the field in `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// 404, naming what was not found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            message: message.into(),
        }
    }

    /// 500; the cause goes to the log only.
    pub fn internal(cause: impl Into<String>) -> Self {
        let cause = cause.into();
        tracing::warn!(error = %cause, "admin request failed");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "internal error; see the server log".to_owned(),
        }
    }
}

impl From<CatalogError> for AdminError {
    fn from(e: CatalogError) -> Self {
        match &e {
            CatalogError::NotFound { .. } => Self::not_found(e.to_string()),
            CatalogError::Conflict { .. }
            | CatalogError::HasDependents { .. }
            | CatalogError::PipelineBusy { .. }
            | CatalogError::AmbiguousName { .. } => Self::conflict(e.to_string()),
            CatalogError::Invalid { what, reason } => {
                Self::bad_request(format!("{what}: {reason}"))
            }
            _ => Self::internal(e.to_string()),
        }
    }
}

impl From<QueryRejection> for AdminError {
    fn from(e: QueryRejection) -> Self {
        Self::bad_request(format!("invalid query parameters: {}", e.body_text()))
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = json!({"code": self.status.as_u16(), "message": self.message});
        (self.status, Json(body)).into_response()
    }
}

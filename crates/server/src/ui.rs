//! The web UI: one HTML page, one script and one stylesheet, embedded in the binary.
//!
//! The page is a single-page app with hash routes (`#/services`, `#/ingestion`,
//! `#/pipelines/<id>`, `#/models[/<fqn>]`, `#/gateway[/discovered|/new|/edit/<name>]`, `#/keys`,
//! `#/playground/<chat|embeddings|rerank|transcription|speech>`) over the admin API (`/api/v1/*`, with the session
//! cookie and its CSRF header) and the gateway (`/v1/*`, which a signed-in session may call for
//! the playground). There is no build step and nothing is fetched from another origin.
//!
//! Server data is only ever put into the page with `textContent` and DOM nodes (the script has
//! no `innerHTML`), and the `Content-Security-Policy` sent with every asset allows scripts and
//! styles from this origin only, so a model or tag name such as `<script>` is shown, never run.
//! Secrets typed into forms are sent once and never written back; the API never returns them.
//! The browser tests in `ui-tests/` (`scripts/ui-test.sh`) drive it in headless chromium.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub(crate) const INDEX_HTML: &str = include_str!("../assets/index.html");
pub(crate) const APP_JS: &str = include_str!("../assets/app.js");
pub(crate) const APP_CSS: &str = include_str!("../assets/app.css");

/// Same-origin only: no inline script, no third-party anything, no framing. Media from `blob:`
/// only: the playground's speech tab plays the audio it fetched from `/v1/audio/speech`.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; media-src blob:; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            // The assets change with the binary; revalidating is cheap.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// `GET /`, `GET /ui/app.js` and `GET /ui/app.css`.
pub(crate) fn router() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/ui/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/ui/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
}

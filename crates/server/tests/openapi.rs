//! `GET /api/v1/openapi.json` over real HTTP: an OpenAPI 3.1 document that lists every admin
//! route of the issue with its schemas, and whose every operation reaches a handler of the
//! router (no routing 404 or 405), with and without credentials.

use std::sync::Arc;
use std::time::Duration;

use sagebridge_catalog::{SecretKey, SqliteCatalog};
use sagebridge_server::{AdminAuth, ControlPlane};
use serde_json::Value;

const ADMIN: &str = "admin-token-0123456789abcdef";
const KEY: &str = "gateway-key-123";

async fn start() -> (String, reqwest::Client, tempfile::TempDir) {
    let yaml = format!(
        "server:\n  adminTokens: [\"{ADMIN}\"]\n  apiKeys: [\"{KEY}\"]\nawsConfig: {{awsRegion: us-east-1}}\n"
    );
    let cfg = sagebridge_gateway::config::load_str("sagebridge.yaml", &yaml, &|_| None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(
        SqliteCatalog::open_with_key(dir.path().join("c.db"), SecretKey::generate()).unwrap(),
    );
    let control = ControlPlane::new(
        catalog,
        cfg.clone(),
        sagebridge_server::control::system_clock(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let auth = Arc::new(AdminAuth::from_config(&cfg.server, &addr).unwrap());
    let app = sagebridge_server::app(control, auth);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    (format!("http://{addr}"), http, dir)
}

/// The routes the control-plane issue asks for, as `METHOD path`.
const EXPECTED: &[&str] = &[
    "GET /api/v1/services/mlmodelServices",
    "POST /api/v1/services/mlmodelServices",
    "GET /api/v1/services/mlmodelServices/{id}",
    "PUT /api/v1/services/mlmodelServices/{id}",
    "DELETE /api/v1/services/mlmodelServices/{id}",
    "GET /api/v1/services/mlmodelServices/name/{name}",
    "POST /api/v1/services/mlmodelServices/{id}/testConnection",
    "POST /api/v1/services/testConnection",
    "GET /api/v1/services/ingestionPipelines",
    "POST /api/v1/services/ingestionPipelines",
    "GET /api/v1/services/ingestionPipelines/{id}",
    "PUT /api/v1/services/ingestionPipelines/{id}",
    "DELETE /api/v1/services/ingestionPipelines/{id}",
    "POST /api/v1/services/ingestionPipelines/trigger/{id}",
    "GET /api/v1/services/ingestionPipelines/{id}/runs",
    "GET /api/v1/services/ingestionPipelines/{id}/runs/{run_id}",
    "GET /api/v1/services/ingestionPipelines/{id}/runs/{run_id}/events",
    "GET /api/v1/services/ingestionPipelines/{id}/workflow.yaml",
    "GET /api/v1/mlmodels",
    "GET /api/v1/mlmodels/name/{fqn}",
    "GET /api/v1/mlmodels/name/{fqn}/versions",
    "GET /api/v1/gateway/models",
    "POST /api/v1/gateway/models",
    "GET /api/v1/gateway/models/{name}",
    "PUT /api/v1/gateway/models/{name}",
    "DELETE /api/v1/gateway/models/{name}",
    "POST /api/v1/gateway/models/{name}/check",
    "GET /api/v1/gateway/discovered",
    "GET /api/v1/gateway/keys",
    "POST /api/v1/gateway/keys",
    "PUT /api/v1/gateway/keys/{id}",
    "DELETE /api/v1/gateway/keys/{id}",
    "GET /api/v1/gateway/usage",
    "GET /api/v1/openapi.json",
];

/// Every `METHOD path` of the document.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "delete", "patch"] {
            if item.get(method).is_some() {
                out.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn the_document_describes_every_route_and_every_route_is_served() {
    let (base, http, _dir) = start().await;
    let doc: Value = http
        .get(format!("{base}/api/v1/openapi.json"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let ops = operations(&doc);
    let listed: Vec<String> = ops.iter().map(|(m, p)| format!("{m} {p}")).collect();
    for route in EXPECTED {
        assert!(
            listed.iter().any(|l| l == route),
            "{route} is not in the document: {listed:?}"
        );
    }
    assert_eq!(ops.len(), EXPECTED.len(), "{listed:?}");
    // Request bodies come from the handlers' types.
    let create = &doc["components"]["schemas"]["CreateService"];
    assert!(create["properties"]["connection"].is_object(), "{create}");
    assert_eq!(
        create["required"],
        serde_json::json!(["name", "connection"]),
        "{create}"
    );
    let aws = &doc["components"]["schemas"]["AwsConfig"]["properties"];
    for field in [
        "awsRegion",
        "awsSecretAccessKey",
        "endPointURL",
        "assumeRoleArn",
        "assumeRoleExternalId",
    ] {
        assert!(aws.get(field).is_some(), "AwsConfig lacks {field}");
    }
    let mlmodels = &doc["paths"]["/api/v1/mlmodels"]["get"]["parameters"];
    let names: Vec<&str> = mlmodels
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for q in [
        "service",
        "q",
        "tag",
        "algorithm",
        "deleted",
        "limit",
        "after",
    ] {
        assert!(names.contains(&q), "{names:?}");
    }

    // Every operation reaches a handler: with the admin token, a made-up id is the handler's
    // JSON 404 and an empty body its 400, never the router's bare 404 or a 405. Without
    // credentials it is 401, with a gateway key 403.
    for (method, path) in &ops {
        let url = format!(
            "{base}{}",
            path.replace("{id}", "nope")
                .replace("{run_id}", "nope")
                .replace("{name}", "nope")
                .replace("{fqn}", "nope.nope")
        );
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = http
            .request(m.clone(), &url)
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_ne!(status, 405, "{method} {path}");
        if status == 404 {
            let v: Value = serde_json::from_str(&body)
                .unwrap_or_else(|_| panic!("{method} {path}: a routing 404 ({body:?})"));
            assert_eq!(v["code"], 404, "{method} {path}: {body}");
        }
        let r = http.request(m.clone(), &url).send().await.unwrap();
        assert_eq!(
            r.status().as_u16(),
            401,
            "{method} {path} without credentials"
        );
        let r = http.request(m, &url).bearer_auth(KEY).send().await.unwrap();
        assert_eq!(
            r.status().as_u16(),
            403,
            "{method} {path} with a gateway key"
        );
    }
}

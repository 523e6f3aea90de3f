//! The admin API over real HTTP on 127.0.0.1: services, ingestion pipelines, models and
//! discovered endpoints, success and bad input for each route, and no stored secret in any
//! response.

use std::sync::Arc;
use std::time::Duration;

use sagebridge_catalog::{
    Catalog, EntityReference, MlModel, ModelWrite, SecretKey, SqliteCatalog, TagLabel,
};
use sagebridge_ingest::config::WorkflowConfig;
use sagebridge_ingest::facts::{ContainerFacts, EndpointFacts, ModelFacts};
use serde_json::{json, Value};

/// Sent as `awsSecretAccessKey`; must never come back.
const SENTINEL_SECRET: &str = "SENTINEL-secret-7f3a9c1e-do-not-leak";
/// Sent as `awsSessionToken`; must never come back.
const SENTINEL_TOKEN: &str = "SENTINEL-token-51d0b2aa-do-not-leak";

struct Api {
    base: String,
    http: reqwest::Client,
    catalog: Arc<SqliteCatalog>,
    /// Every response body seen, for the secret scan.
    bodies: std::sync::Mutex<Vec<String>>,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = Arc::new(
            SqliteCatalog::open_with_key(dir.path().join("catalog.db"), SecretKey::generate())
                .expect("open catalog"),
        );
        let base = sagebridge_gateway::config::load_str(
            "sagebridge.yaml",
            "awsConfig: {awsRegion: us-east-1}\nmodels:\n  - {name: yaml-model, kind: chat, endpointName: yaml-served}\n",
            &|_| None,
        )
        .expect("gateway config");
        let control = sagebridge_server::ControlPlane::new(
            Arc::clone(&catalog),
            base,
            sagebridge_server::control::system_clock(),
        )
        .expect("control plane");
        let app = sagebridge_server::admin::router(control);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Self {
            base,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            catalog,
            bodies: std::sync::Mutex::new(Vec::new()),
            _dir: dir,
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, String) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        self.bodies.lock().expect("lock").push(text.clone());
        (status, text)
    }

    async fn json(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, text) = self.send(method, path, body).await;
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path} answered {status} with non-JSON {text:?}: {e}"));
        (status, value)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.json(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.json(reqwest::Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.json(reqwest::Method::PUT, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        self.json(reqwest::Method::DELETE, path, None).await
    }

    /// Asserts an error answer: its status, the `{code, message}` shape, and a phrase.
    fn assert_error(&self, (status, body): &(u16, Value), expected: u16, phrase: &str) {
        assert_eq!(*status, expected, "{body}");
        assert_eq!(body["code"], json!(expected), "{body}");
        let message = body["message"].as_str().expect("message");
        assert!(
            message.contains(phrase),
            "`{message}` should mention `{phrase}`"
        );
    }

    /// No response body so far held a sentinel secret.
    fn assert_no_secret_leaked(&self) {
        let bodies = self.bodies.lock().expect("lock");
        assert!(
            bodies.len() > 3,
            "the scan saw only {} bodies",
            bodies.len()
        );
        for body in bodies.iter() {
            assert!(
                !body.contains(SENTINEL_SECRET) && !body.contains(SENTINEL_TOKEN),
                "a response leaked a secret: {body}"
            );
        }
    }
}

fn service_body(name: &str, aws: Value) -> Value {
    json!({
        "name": name,
        "description": "production account",
        "serviceType": "SageMaker",
        "connection": {"config": {"type": "SageMaker", "awsConfig": aws}},
    })
}

fn secret_aws() -> Value {
    json!({
        "awsRegion": "us-east-1",
        "awsAccessKeyId": "AKIAEXAMPLE",
        "awsSecretAccessKey": SENTINEL_SECRET,
        "awsSessionToken": SENTINEL_TOKEN,
        "assumeRoleArn": "arn:aws:iam::123456789012:role/reader",
    })
}

fn pipeline_body(name: &str, service_id: &str) -> Value {
    json!({
        "name": name,
        "pipelineType": "metadata",
        "service": {"id": service_id, "type": "mlmodelService"},
        "sourceConfig": {"config": {
            "type": "MlModelMetadata",
            "mlModelFilterPattern": {"includes": ["^churn"], "excludes": [".*-old$"]},
            "markDeletedMlModels": true,
            "concurrency": 4,
        }},
        "airflowConfig": {"scheduleInterval": "0 */6 * * *"},
    })
}

/// Writes models of `service` straight into the catalog, as ingestion would.
fn seed_models(catalog: &SqliteCatalog, service_id: &str, service: &str) {
    let tgi = ContainerFacts {
        image: Some(
            "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.1.1"
                .to_owned(),
        ),
        ..ContainerFacts::default()
    };
    let endpoints = |names: &[(&str, &str)]| -> Vec<EndpointFacts> {
        names
            .iter()
            .map(|(name, status)| EndpointFacts {
                name: (*name).to_owned(),
                status: (*status).to_owned(),
                url: None,
            })
            .collect()
    };
    let tag: TagLabel = serde_json::from_value(json!({
        "tagFQN": "team.risk", "source": "Classification",
        "labelType": "Automated", "state": "Confirmed"}))
    .expect("tag");
    let write =
        |name: &str, algorithm: &str, tags: Vec<TagLabel>, facts: Option<ModelFacts>| ModelWrite {
            model: MlModel {
                name: name.to_owned(),
                fully_qualified_name: format!("{service}.{name}"),
                algorithm: algorithm.to_owned(),
                tags,
                service: EntityReference::ml_model_service(service_id, service),
                source_hash: Some(format!("hash-{name}")),
                ..MlModel::default()
            },
            arn: Some(format!(
                "arn:aws:sagemaker:us-east-1:123456789012:model/{name}"
            )),
            creation_time: Some(1_700_000_000_000),
            facts: facts.map(|f| serde_json::to_string(&f).expect("facts")),
        };
    let llm = ModelFacts {
        name: "llm".into(),
        region: "us-east-1".into(),
        primary_container: Some(tgi),
        endpoints: endpoints(&[
            ("llm-live", "InService"),
            ("llm-creating", "Creating"),
            ("yaml-served", "InService"),
        ]),
        ..ModelFacts::default()
    };
    let mut models = vec![
        write("llm", "tgi", vec![], Some(llm)),
        write("churn-a", "xgboost", vec![tag.clone()], None),
        write("churn-b", "xgboost", vec![tag], None),
    ];
    for i in 0..4 {
        models.push(write(&format!("forecast-{i}"), "deepar", vec![], None));
    }
    catalog.write_models(&models).expect("write models");
    // A second version of one model.
    let mut changed = models[1].clone();
    changed.model.description = Some("retrained".into());
    changed.model.source_hash = Some("hash-churn-a-2".into());
    catalog.write_models(&[changed]).expect("write version");
}

#[tokio::test]
async fn services_are_created_read_updated_and_deleted_without_leaking_secrets() {
    let api = Api::start().await;
    let base = "/api/v1/services/mlmodelServices";

    let (status, created) = api.post(base, service_body("prod", secret_aws())).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["name"], "prod");
    assert_eq!(created["serviceType"], "SageMaker");
    assert_eq!(created["description"], "production account");
    assert_eq!(
        created["connection"]["config"]["awsConfig"]["awsRegion"],
        "us-east-1"
    );
    assert!(created["connection"]["config"]["awsConfig"]
        .get("awsSecretAccessKey")
        .is_none());
    assert_eq!(
        created["secrets"],
        json!({"awsSecretAccessKey": true, "awsSessionToken": true})
    );

    let (status, one) = api.get(&format!("{base}/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["id"], json!(id));
    let (status, by_name) = api.get(&format!("{base}/name/prod")).await;
    assert_eq!(status, 200);
    assert_eq!(by_name["id"], json!(id));
    let (status, list) = api.get(base).await;
    assert_eq!(status, 200);
    assert_eq!(list["paging"]["total"], 1);
    assert_eq!(list["data"][0]["name"], "prod");

    // An update that leaves the secret out keeps it; the region changes.
    let mut aws = secret_aws();
    aws["awsRegion"] = json!("eu-west-1");
    aws.as_object_mut()
        .expect("object")
        .remove("awsSecretAccessKey");
    aws.as_object_mut()
        .expect("object")
        .remove("awsSessionToken");
    let (status, updated) = api
        .put(&format!("{base}/{id}"), service_body("prod", aws))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        updated["connection"]["config"]["awsConfig"]["awsRegion"],
        "eu-west-1"
    );
    assert_eq!(updated["secrets"]["awsSecretAccessKey"], true);
    let stored = sagebridge_catalog::ControlStore::service_with_secrets(api.catalog.as_ref(), &id)
        .expect("with secrets");
    assert_eq!(
        stored.aws_config.expose()["awsSecretAccessKey"],
        SENTINEL_SECRET
    );

    // Bad input.
    api.assert_error(
        &api.post(base, service_body("prod", secret_aws())).await,
        409,
        "prod",
    );
    let mut bad = secret_aws();
    bad["awsRegion"] = json!("mars-north-9x");
    api.assert_error(
        &api.post(base, service_body("bad-region", bad)).await,
        400,
        "connection.config.awsConfig.awsRegion",
    );
    let mut bad = secret_aws();
    bad["assumeRoleArn"] = json!("arn:aws:iam::12:role/x");
    let answer = api.post(base, service_body("bad-arn", bad)).await;
    api.assert_error(&answer, 400, "connection.config.awsConfig.assumeRoleArn");
    let mut bad = secret_aws();
    bad["awsRegionn"] = json!("us-east-1");
    api.assert_error(
        &api.post(base, service_body("typo", bad)).await,
        400,
        "awsRegionn",
    );
    let mut extra = service_body("extra", json!({"awsRegion": "us-east-1"}));
    extra["owner"] = json!("me");
    api.assert_error(&api.post(base, extra).await, 400, "owner");
    let mut other = service_body("mlflow", json!({"awsRegion": "us-east-1"}));
    other["serviceType"] = json!("Mlflow");
    api.assert_error(&api.post(base, other).await, 400, "serviceType");
    api.assert_error(
        &api.post(base, service_body(" ", json!({"awsRegion": "us-east-1"})))
            .await,
        400,
        "name",
    );
    api.assert_error(
        &api.put(
            &format!("{base}/{id}"),
            service_body("renamed", secret_aws()),
        )
        .await,
        400,
        "name",
    );
    let (status, text) = api.send(reqwest::Method::POST, base, None).await;
    assert_eq!(status, 400, "{text}");
    api.assert_error(
        &api.get(&format!("{base}/no-such-id")).await,
        404,
        "no-such-id",
    );
    api.assert_error(
        &api.get(&format!("{base}/name/nowhere")).await,
        404,
        "nowhere",
    );
    api.assert_error(
        &api.put(
            &format!("{base}/no-such-id"),
            service_body("x", json!({"awsRegion": "us-east-1"})),
        )
        .await,
        404,
        "no-such-id",
    );
    api.assert_error(
        &api.delete(&format!("{base}/{id}?recursive=maybe")).await,
        400,
        "recursive",
    );

    // A service without dependents goes without `recursive`.
    let (status, deleted) = api.delete(&format!("{base}/{id}")).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["name"], "prod");
    api.assert_error(&api.get(&format!("{base}/{id}")).await, 404, &id);
    api.assert_error(&api.delete(&format!("{base}/{id}")).await, 404, &id);

    api.assert_no_secret_leaked();
}

#[tokio::test]
async fn deleting_a_service_with_dependents_needs_recursive() {
    let api = Api::start().await;
    let (_, service) = api
        .post(
            "/api/v1/services/mlmodelServices",
            service_body("prod", secret_aws()),
        )
        .await;
    let id = service["id"].as_str().expect("id").to_owned();
    seed_models(&api.catalog, &id, "prod");
    let (status, pipeline) = api
        .post(
            "/api/v1/services/ingestionPipelines",
            pipeline_body("prod-nightly", &id),
        )
        .await;
    assert_eq!(status, 201, "{pipeline}");

    let refused = api
        .delete(&format!("/api/v1/services/mlmodelServices/{id}"))
        .await;
    api.assert_error(&refused, 409, "prod-nightly");
    api.assert_error(&refused, 409, "recursive=true");
    let (status, _) = api
        .get(&format!("/api/v1/services/mlmodelServices/{id}"))
        .await;
    assert_eq!(status, 200, "a refused delete keeps the service");

    let (status, deleted) = api
        .delete(&format!(
            "/api/v1/services/mlmodelServices/{id}?recursive=true&hardDelete=true"
        ))
        .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["deleted"]["pipelines"], json!(["prod-nightly"]));
    assert_eq!(deleted["deleted"]["models"], 7);
    let (_, pipelines) = api.get("/api/v1/services/ingestionPipelines").await;
    assert_eq!(pipelines["paging"]["total"], 0);
    let (_, models) = api.get("/api/v1/mlmodels").await;
    assert_eq!(models["paging"]["total"], 0);
    api.assert_no_secret_leaked();
}

#[tokio::test]
async fn pipelines_are_managed_and_export_a_runnable_workflow() {
    let api = Api::start().await;
    let base = "/api/v1/services/ingestionPipelines";
    let (_, service) = api
        .post(
            "/api/v1/services/mlmodelServices",
            service_body("prod", secret_aws()),
        )
        .await;
    let service_id = service["id"].as_str().expect("id").to_owned();
    let (_, other) = api
        .post(
            "/api/v1/services/mlmodelServices",
            service_body("dev", json!({"awsRegion": "us-west-2"})),
        )
        .await;
    let other_id = other["id"].as_str().expect("id").to_owned();

    let (status, created) = api
        .post(base, pipeline_body("prod-nightly", &service_id))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["pipelineType"], "metadata");
    assert_eq!(created["service"]["id"], json!(service_id));
    assert_eq!(created["service"]["type"], "mlmodelService");
    assert_eq!(created["airflowConfig"]["scheduleInterval"], "0 */6 * * *");
    assert_eq!(created["sourceConfig"]["config"]["concurrency"], 4);
    assert_eq!(created["fullyQualifiedName"], "prod.prod-nightly");

    // Manual only: no airflowConfig.
    let mut manual = pipeline_body("dev-manual", &other_id);
    manual
        .as_object_mut()
        .expect("object")
        .remove("airflowConfig");
    let (status, manual) = api.post(base, manual).await;
    assert_eq!(status, 201, "{manual}");
    assert!(manual["airflowConfig"].get("scheduleInterval").is_none());

    let (status, one) = api.get(&format!("{base}/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["name"], "prod-nightly");
    let (_, all) = api.get(base).await;
    assert_eq!(all["paging"]["total"], 2);
    for key in [service_id.as_str(), "prod"] {
        let (status, filtered) = api.get(&format!("{base}?service={key}")).await;
        assert_eq!(status, 200);
        assert_eq!(filtered["paging"]["total"], 1, "{filtered}");
        assert_eq!(filtered["data"][0]["name"], "prod-nightly");
    }
    api.assert_error(
        &api.get(&format!("{base}?service=nowhere")).await,
        404,
        "nowhere",
    );

    let mut changed = pipeline_body("prod-nightly", &service_id);
    changed["airflowConfig"] = json!({"scheduleInterval": "@daily"});
    let (status, updated) = api.put(&format!("{base}/{id}"), changed).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["airflowConfig"]["scheduleInterval"], "@daily");

    // Bad input.
    api.assert_error(
        &api.post(base, pipeline_body("prod-nightly", &service_id))
            .await,
        409,
        "prod-nightly",
    );
    let mut bad = pipeline_body("bad-cron", &service_id);
    bad["airflowConfig"]["scheduleInterval"] = json!("61 * * * *");
    api.assert_error(
        &api.post(base, bad).await,
        400,
        "airflowConfig.scheduleInterval",
    );
    let mut bad = pipeline_body("bad-regex", &service_id);
    bad["sourceConfig"]["config"]["mlModelFilterPattern"]["includes"] = json!(["("]);
    api.assert_error(
        &api.post(base, bad).await,
        400,
        "sourceConfig.config.mlModelFilterPattern",
    );
    let mut bad = pipeline_body("bad-key", &service_id);
    bad["sourceConfig"]["config"]["markDeleted"] = json!(true);
    api.assert_error(&api.post(base, bad).await, 400, "markDeleted");
    let mut bad = pipeline_body("bad-type", &service_id);
    bad["pipelineType"] = json!("usage");
    api.assert_error(&api.post(base, bad).await, 400, "pipelineType");
    api.assert_error(
        &api.post(base, pipeline_body("orphan", "no-such-service"))
            .await,
        404,
        "no-such-service",
    );
    let mut moved = pipeline_body("prod-nightly", &other_id);
    moved["airflowConfig"] = json!({});
    let (status, _) = api.put(&format!("{base}/{id}"), moved).await;
    assert_eq!(status, 400, "a pipeline cannot change service");
    api.assert_error(
        &api.get(&format!("{base}/no-such-id")).await,
        404,
        "no-such-id",
    );
    api.assert_error(
        &api.delete(&format!("{base}/no-such-id")).await,
        404,
        "no-such-id",
    );
    let (status, _) = api
        .send(
            reqwest::Method::GET,
            &format!("{base}/no-such-id/workflow.yaml"),
            None,
        )
        .await;
    assert_eq!(status, 404);

    // The exported workflow file: secrets are placeholders, and the ingest parser takes it.
    let (status, yaml) = api
        .send(
            reqwest::Method::GET,
            &format!("{base}/{id}/workflow.yaml"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{yaml}");
    assert!(yaml.contains("${AWS_SECRET_ACCESS_KEY}"), "{yaml}");
    assert!(yaml.contains("${AWS_SESSION_TOKEN}"), "{yaml}");
    let env = |name: &str| match name {
        "AWS_SECRET_ACCESS_KEY" => Some("from-env-secret".to_owned()),
        "AWS_SESSION_TOKEN" => Some("from-env-token".to_owned()),
        _ => None,
    };
    let workflow = WorkflowConfig::parse("workflow.yaml", &yaml, &env)
        .unwrap_or_else(|e| panic!("the exported workflow does not load: {e}\n{yaml}"));
    assert_eq!(workflow.source.service_name, "prod");
    assert_eq!(workflow.source.kind, "sagemaker");
    let sagebridge_ingest::config::SinkConfig::Catalog(sink) = &workflow.sink else {
        panic!("the exported workflow writes to the catalog sink: {yaml}");
    };
    assert_eq!(workflow.aws().region(), "us-east-1");
    assert_eq!(
        workflow
            .aws()
            .aws_secret_access_key
            .as_ref()
            .map(|s| s.expose()),
        Some("from-env-secret")
    );
    assert_eq!(
        workflow.aws().assume_role_arn.as_deref(),
        Some("arn:aws:iam::123456789012:role/reader")
    );
    assert_eq!(workflow.metadata().concurrency, 4);
    assert!(workflow.filter().expect("filter").keeps("churn-a"));
    assert!(!workflow.filter().expect("filter").keeps("churn-old"));
    assert_eq!(
        sink.path(),
        api.catalog.path().expect("file catalog").to_path_buf()
    );

    let (status, deleted) = api.delete(&format!("{base}/{id}")).await;
    assert_eq!(status, 200, "{deleted}");
    api.assert_error(&api.get(&format!("{base}/{id}")).await, 404, &id);
    api.assert_no_secret_leaked();
}

#[tokio::test]
async fn models_are_listed_paged_filtered_and_read_by_fqn() {
    let api = Api::start().await;
    let (_, service) = api
        .post(
            "/api/v1/services/mlmodelServices",
            service_body("prod", secret_aws()),
        )
        .await;
    let service_id = service["id"].as_str().expect("id").to_owned();
    seed_models(&api.catalog, &service_id, "prod");

    let (status, all) = api.get("/api/v1/mlmodels").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["paging"]["total"], 7);
    assert_eq!(all["data"].as_array().expect("data").len(), 7);
    assert!(all["paging"].get("after").is_none());

    // Pages of 3 walk the whole list once.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..10 {
        let path = match &after {
            Some(a) => format!("/api/v1/mlmodels?limit=3&after={a}"),
            None => "/api/v1/mlmodels?limit=3".to_owned(),
        };
        let (status, page) = api.get(&path).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["paging"]["total"], 7);
        seen.extend(
            page["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|m| m["name"].as_str().expect("name").to_owned()),
        );
        after = page["paging"]["after"].as_str().map(str::to_owned);
        if after.is_none() {
            break;
        }
    }
    let expected: Vec<String> = all["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| m["name"].as_str().expect("name").to_owned())
        .collect();
    assert_eq!(seen, expected);

    let names = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|m| m["name"].as_str().expect("name").to_owned())
            .collect()
    };
    let (_, q) = api.get("/api/v1/mlmodels?q=CHURN").await;
    assert_eq!(names(&q), ["churn-a", "churn-b"]);
    let (_, tagged) = api.get("/api/v1/mlmodels?tag=team.risk&limit=1").await;
    assert_eq!(tagged["paging"]["total"], 2);
    assert_eq!(names(&tagged), ["churn-a"]);
    assert_eq!(tagged["paging"]["after"], "1");
    let (_, algo) = api.get("/api/v1/mlmodels?algorithm=deepar").await;
    assert_eq!(algo["paging"]["total"], 4);
    let (_, by_service) = api
        .get(&format!("/api/v1/mlmodels?service={service_id}"))
        .await;
    assert_eq!(by_service["paging"]["total"], 7);
    let (_, by_name) = api.get("/api/v1/mlmodels?service=prod&algorithm=tgi").await;
    assert_eq!(names(&by_name), ["llm"]);
    let (_, none) = api.get("/api/v1/mlmodels?service=other").await;
    assert_eq!(none["paging"]["total"], 0);

    let (status, model) = api.get("/api/v1/mlmodels/name/prod.churn-a").await;
    assert_eq!(status, 200, "{model}");
    assert_eq!(model["fullyQualifiedName"], "prod.churn-a");
    assert_eq!(model["description"], "retrained");
    let (status, versions) = api.get("/api/v1/mlmodels/name/prod.churn-a/versions").await;
    assert_eq!(status, 200, "{versions}");
    assert_eq!(versions["entityType"], "mlmodel");
    assert_eq!(versions["versions"].as_array().expect("versions").len(), 2);

    api.assert_error(&api.get("/api/v1/mlmodels?limit=1001").await, 400, "limit");
    api.assert_error(&api.get("/api/v1/mlmodels?limit=many").await, 400, "limit");
    api.assert_error(&api.get("/api/v1/mlmodels?after=xyz").await, 400, "after");
    api.assert_error(&api.get("/api/v1/mlmodels?colour=red").await, 400, "colour");
    api.assert_error(
        &api.get("/api/v1/mlmodels/name/prod.nope").await,
        404,
        "prod.nope",
    );
    api.assert_error(
        &api.get("/api/v1/mlmodels/name/prod.nope/versions").await,
        404,
        "prod.nope",
    );
    api.assert_no_secret_leaked();
}

#[tokio::test]
async fn discovered_lists_in_service_endpoints_no_gateway_model_serves() {
    let api = Api::start().await;
    let (status, empty) = api.get("/api/v1/gateway/discovered").await;
    assert_eq!(status, 200);
    assert_eq!(empty["paging"]["total"], 0);

    let (_, service) = api
        .post(
            "/api/v1/services/mlmodelServices",
            service_body("prod", secret_aws()),
        )
        .await;
    let service_id = service["id"].as_str().expect("id").to_owned();
    seed_models(&api.catalog, &service_id, "prod");

    let (status, found) = api.get("/api/v1/gateway/discovered").await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["paging"]["total"], 1, "{found}");
    let one = &found["data"][0];
    assert_eq!(one["endpointName"], "llm-live");
    assert_eq!(one["model"], "prod.llm");
    assert_eq!(one["kind"], "chat");
    assert_eq!(one["format"], "tgi");
    assert!(one["reason"].as_str().is_some_and(|r| !r.is_empty()));

    // Once a stored gateway model serves it, it is no longer listed.
    sagebridge_catalog::ControlStore::create_gateway_model(
        api.catalog.as_ref(),
        &sagebridge_catalog::GatewayModelInput {
            name: "llama".into(),
            spec: json!({"kind": "chat", "format": "tgi", "endpointName": "llm-live"}),
            credentials: sagebridge_catalog::GatewayCredentials::Service(service_id.clone()),
        },
    )
    .expect("gateway model");
    let (_, after) = api.get("/api/v1/gateway/discovered").await;
    assert_eq!(after["paging"]["total"], 0, "{after}");
    api.assert_no_secret_leaked();
}

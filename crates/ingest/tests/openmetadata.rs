//! The `metadata-rest` sink end to end: moto seeded with the demo account, ingested into the
//! testkit's fake OpenMetadata server. The requests are compared with what the real 2.0.7
//! client sends (`tests/contracts/openmetadata/recorded/`) and every body is validated against
//! OpenMetadata's JSON Schemas.

use sagebridge_ingest::config::WorkflowConfig;
use sagebridge_ingest::runner::{run, RunError, RunOptions};
use sagebridge_testkit::{sagemaker_client, seed, FakeOpenMetadata, MotoServer, SeedSpec};
use serde_json::Value;

#[path = "support/schemas.rs"]
mod schemas;

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.om-test-jwt.signature";
const AWS_SECRET: &str = "aws-secret-key-never-sent";

fn workflow(moto: &str, om: &str, token: &str) -> WorkflowConfig {
    workflow_with(moto, om, token, "")
}

/// With more lines under `openMetadataServerConfig` (indented by four spaces).
fn workflow_with(moto: &str, om: &str, token: &str, om_extra: &str) -> WorkflowConfig {
    let text = format!(
        "source:
  type: sagemaker
  serviceName: sm_prod
  serviceConnection:
    config:
      type: SageMaker
      awsConfig:
        awsAccessKeyId: testing
        awsSecretAccessKey: ${{AWS_SECRET}}
        awsRegion: us-east-1
        endPointURL: {moto}
  sourceConfig:
    config:
      type: MlModelMetadata
sink:
  type: metadata-rest
  config: {{}}
workflowConfig:
  loggerLevel: INFO
  openMetadataServerConfig:
    hostPort: {om}/api
    authProvider: openmetadata
    securityConfig:
      jwtToken: ${{OM_JWT}}
{om_extra}"
    );
    let env = |k: &str| match k {
        "AWS_SECRET" => Some(AWS_SECRET.to_owned()),
        "OM_JWT" => Some(token.to_owned()),
        _ => None,
    };
    WorkflowConfig::parse("om.yaml", &text, &env).unwrap_or_else(|e| panic!("{e}"))
}

/// The path of a request without its query.
fn path_of(r: &sagebridge_testkit::OmRequest) -> &str {
    r.path.split('?').next().unwrap_or(&r.path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_into_openmetadata_speaks_its_rest_api() {
    let moto = MotoServer::start().await.unwrap();
    let summary = seed(&sagemaker_client(&moto.endpoint(), None), &SeedSpec::demo())
        .await
        .unwrap();
    let n = summary.models.len();
    let om = FakeOpenMetadata::start(TOKEN).await.unwrap();
    let cfg = workflow(&moto.endpoint(), &om.url(), TOKEN);

    let report = run(&cfg, &RunOptions::default()).await.unwrap();
    assert_eq!(report.counts.created, n, "{report:?}");
    assert_eq!(report.counts.failed, 0, "{report:?}");
    assert_eq!(report.exit_code(), 0);

    let requests = om.requests();
    assert!(requests.iter().all(|r| r.authorized), "{requests:?}");
    // The order of the 2.0.7 client: version, service lookup (404), service creation, then
    // models in bulk, then deleteStale. Tags are created before the models that use them.
    let seq: Vec<(String, &str)> = requests
        .iter()
        .map(|r| (r.method.clone(), path_of(r)))
        .collect();
    assert_eq!(seq[0], ("GET".into(), "/api/v1/system/version"));
    assert_eq!(
        seq[1],
        (
            "GET".into(),
            "/api/v1/services/mlmodelServices/name/sm_prod"
        )
    );
    assert_eq!(seq[2], ("PUT".into(), "/api/v1/services/mlmodelServices"));
    let first_bulk = seq
        .iter()
        .position(|(_, p)| *p == "/api/v1/mlmodels/bulk")
        .expect("a bulk PUT");
    // (and, for incremental runs, the listing of the service's models already there: none).
    assert!(seq[3..first_bulk].iter().all(|(m, p)| (m == "PUT"
        && (*p == "/api/v1/classifications" || *p == "/api/v1/tags"))
        || (m == "GET" && *p == "/api/v1/mlmodels")));
    assert_eq!(
        seq.last().unwrap(),
        &("DELETE".to_string(), "/api/v1/mlmodels/deleteStale")
    );

    // Every body validates against OpenMetadata's own schemas.
    let service_schema = schemas::validator("api/services/createMlModelService.json");
    let model_schema = schemas::validator("api/data/createMlModel.json");
    let stale_schema = schemas::validator("type/bulkDeleteStaleRequest.json");
    let class_schema = schemas::validator("api/classification/createClassification.json");
    let tag_schema = schemas::validator("api/classification/createTag.json");
    let mut rows = 0;
    for r in &requests {
        let body = r.body.clone().unwrap_or(Value::Null);
        let check = |v: &jsonschema::Validator, b: &Value| {
            let errors: Vec<String> = v.iter_errors(b).map(|e| e.to_string()).collect();
            assert!(
                errors.is_empty(),
                "{} {}: {errors:?}\n{b}",
                r.method,
                r.path
            );
        };
        match (r.method.as_str(), path_of(r)) {
            ("PUT", "/api/v1/services/mlmodelServices") => {
                // awsCredentials.json predates `enabled` (contract README): drop it to validate.
                let mut b = body.clone();
                b["connection"]["config"]["awsConfig"]
                    .as_object_mut()
                    .unwrap()
                    .remove("enabled");
                check(&service_schema, &b);
                assert_eq!(body["serviceType"], "SageMaker");
                let aws = &body["connection"]["config"]["awsConfig"];
                assert_eq!(aws["awsRegion"], "us-east-1");
                assert!(aws.get("awsSecretAccessKey").is_none(), "{aws}");
            }
            ("PUT", "/api/v1/mlmodels/bulk") => {
                assert_eq!(
                    r.path,
                    "/api/v1/mlmodels/bulk?async=false&overrideMetadata=false"
                );
                let items = body.as_array().unwrap();
                assert!(!items.is_empty() && items.len() <= 100);
                for row in items {
                    check(&model_schema, row);
                    assert_eq!(row["service"], "sm_prod");
                }
                rows += items.len();
            }
            ("DELETE", "/api/v1/mlmodels/deleteStale") => {
                check(&stale_schema, &body);
                assert_eq!(body["scopeFqn"], "sm_prod");
                assert_eq!(body["seenFqns"].as_array().unwrap().len(), n);
            }
            ("PUT", "/api/v1/classifications") => check(&class_schema, &body),
            ("PUT", "/api/v1/tags") => check(&tag_schema, &body),
            _ => {}
        }
        let text = body.to_string();
        assert!(
            !text.contains(AWS_SECRET) && !text.contains(TOKEN),
            "{text}"
        );
    }
    assert_eq!(rows, n);
    // The service as stored, and a tag for every tag label the models carry.
    let service = om.service("sm_prod").expect("service created");
    assert_eq!(service["serviceType"], "SageMaker");
    assert!(!service.to_string().contains(AWS_SECRET));
    let tags = om.tags();
    for m in om.models().values() {
        for label in m["tags"].as_array().into_iter().flatten() {
            let fqn = label["tagFQN"].as_str().unwrap();
            assert!(tags.iter().any(|t| t == fqn), "{fqn} was never created");
        }
    }

    // What OpenMetadata now holds, for every seeded model: the same facts as the catalog gets.
    for seeded in &summary.models {
        let m = om
            .model(&format!("sm_prod.{}", seeded.name))
            .unwrap_or_else(|| panic!("{} not in OpenMetadata", seeded.name));
        assert_eq!(m["serviceType"], "SageMaker");
        assert_eq!(m["service"]["type"], "mlmodelService");
        let hp = m["mlHyperParameters"].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(hp, seeded.hyperparameters.len(), "{}", seeded.name);
        let tags = m["tags"].as_array().map(Vec::len).unwrap_or(0);
        let expected = seeded
            .tags
            .iter()
            .filter(|(k, v)| k != "description" && !v.is_empty())
            .count();
        assert_eq!(tags, expected, "{}", seeded.name);
    }

    // A second run finds the service (no PUT), and a model deleted in SageMaker is
    // soft-deleted in OpenMetadata.
    let gone = &summary.models[0].name;
    sagemaker_client(&moto.endpoint(), None)
        .delete_model()
        .model_name(gone)
        .send()
        .await
        .unwrap();
    om.clear_requests();
    let report = run(&cfg, &RunOptions::default()).await.unwrap();
    assert_eq!(report.counts.deleted, 1, "{report:?}");
    assert_eq!(report.counts.created, 0, "{report:?}");
    // Incremental: the others are proven unchanged by their sourceHash and not written.
    assert_eq!(report.counts.unchanged, n - 1, "{report:?}");
    assert_eq!(report.counts.updated, 0, "{report:?}");
    assert!(!om
        .requests()
        .iter()
        .any(|r| r.method == "PUT" && path_of(r) == "/api/v1/services/mlmodelServices"));
    assert_eq!(
        om.model(&format!("sm_prod.{gone}")).unwrap()["deleted"],
        true
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_servers_without_delete_stale_and_a_bad_token() {
    let moto = MotoServer::start().await.unwrap();
    let client = sagemaker_client(&moto.endpoint(), None);
    let summary = seed(&client, &SeedSpec::demo()).await.unwrap();
    let om = FakeOpenMetadata::start(TOKEN).await.unwrap();
    om.disable_delete_stale();
    let cfg = workflow(&moto.endpoint(), &om.url(), TOKEN);
    run(&cfg, &RunOptions::default()).await.unwrap();

    // deleteStale answers 404: the sink lists the service's models and deletes the unseen one.
    let gone = &summary.models[3].name;
    client.delete_model().model_name(gone).send().await.unwrap();
    om.clear_requests();
    let report = run(&cfg, &RunOptions::default()).await.unwrap();
    assert_eq!(report.counts.deleted, 1, "{report:?}");
    assert_eq!(
        om.model(&format!("sm_prod.{gone}")).unwrap()["deleted"],
        true
    );
    let requests = om.requests();
    assert!(requests
        .iter()
        .any(|r| r.method == "GET" && path_of(r) == "/api/v1/mlmodels"));
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.method == "DELETE" && path_of(r).starts_with("/api/v1/mlmodels/0"))
            .count(),
        1
    );
    let live = om
        .models()
        .values()
        .filter(|m| m["deleted"] != true)
        .count();
    assert_eq!(live, summary.models.len() - 1);

    // A wrong token stops the run before anything is written, and the error says what to fix
    // without showing either token.
    let bad = workflow(&moto.endpoint(), &om.url(), "wrong-token-value");
    om.clear_requests();
    let e = run(&bad, &RunOptions::default()).await.unwrap_err();
    assert!(matches!(e, RunError::OpenMetadata(_)), "{e}");
    let text = e.to_string();
    assert!(text.contains("jwtToken"), "{text}");
    assert!(
        !text.contains("wrong-token-value") && !text.contains(TOKEN),
        "{text}"
    );
    assert_eq!(om.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_checks_the_openmetadata_server_too() {
    use sagebridge_ingest::test_connection::check_sink;
    let om = FakeOpenMetadata::start(TOKEN).await.unwrap();
    // moto is not needed for this step: it only talks to OpenMetadata.
    let good = check_sink(&workflow("http://127.0.0.1:9", &om.url(), TOKEN))
        .await
        .expect("a step for metadata-rest");
    assert!(good.passed() && good.mandatory, "{good:?}");
    let detail = good.detail.unwrap();
    assert!(detail.contains("OpenMetadata 2.0.7"), "{detail}");
    assert!(detail.contains("sm_prod will be created"), "{detail}");

    let bad = check_sink(&workflow("http://127.0.0.1:9", &om.url(), "not-the-token"))
        .await
        .unwrap();
    assert!(!bad.passed());
    let error = bad.error.unwrap();
    assert!(
        error.contains("jwtToken") && !error.contains("not-the-token"),
        "{error}"
    );

    // Nothing listens on the discard port: unreachable, said as such.
    let down = check_sink(&workflow("http://127.0.0.1:9", "http://127.0.0.1:9", TOKEN))
        .await
        .unwrap();
    assert!(!down.passed());
    assert!(down.error.unwrap().contains("cannot reach OpenMetadata"));
}

/// HTTPS: the fake's certificate is signed by a test CA that is in no system store, so the
/// connection is refused until `sslConfig.caCertificate` names it (or `verifySSL: ignore`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca() {
    use sagebridge_ingest::test_connection::check_sink;
    use sagebridge_testkit::{FakeSageMaker, FakeSpec, TEST_CA_PEM};
    let om = FakeOpenMetadata::start_tls(TOKEN).await.unwrap();
    assert!(om.url().starts_with("https://127.0.0.1:"));
    let sagemaker = FakeSageMaker::start(FakeSpec::with_models(30))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, TEST_CA_PEM).unwrap();

    let untrusted = check_sink(&workflow(&sagemaker.endpoint(), &om.url(), TOKEN))
        .await
        .unwrap();
    assert!(!untrusted.passed());
    let error = untrusted.error.unwrap();
    assert!(error.contains("certificate"), "{error}");
    assert!(
        om.requests().is_empty(),
        "nothing was sent over the refused connection"
    );

    let trusted = workflow_with(
        &sagemaker.endpoint(),
        &om.url(),
        TOKEN,
        &format!("    sslConfig:\n      caCertificate: {}\n", ca.display()),
    );
    let step = check_sink(&trusted).await.unwrap();
    assert!(step.passed(), "{step:?}");
    let report = run(&trusted, &RunOptions::default()).await.unwrap();
    assert_eq!(report.counts.created, 30, "{report:?}");
    assert_eq!(om.models().len(), 30);

    let ignoring = workflow_with(
        &sagemaker.endpoint(),
        &om.url(),
        TOKEN,
        "    verifySSL: ignore\n",
    );
    assert!(check_sink(&ignoring).await.unwrap().passed());

    let missing = workflow_with(
        &sagemaker.endpoint(),
        &om.url(),
        TOKEN,
        "    sslConfig:\n      caCertificate: /nonexistent/ca.pem\n",
    );
    let step = check_sink(&missing).await.unwrap();
    assert!(!step.passed());
    assert!(step
        .error
        .unwrap()
        .contains("caCertificate /nonexistent/ca.pem"));
}

/// One recorded request of the 2.0.7 client (`tests/contracts/openmetadata/recorded/`).
#[derive(serde::Deserialize)]
struct Recorded {
    m: String,
    p: String,
}

fn recorded(file: &str) -> Vec<(String, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/contracts/openmetadata/recorded")
        .join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str::<Recorded>(l).unwrap())
        .map(|r| (r.m, r.p))
        .collect()
}

/// The shape of a request: its method and path, without the query and with the service name
/// as `<service>`.
fn shape(method: &str, path: &str, service: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let path = path.replace(&format!("/name/{service}"), "/name/<service>");
    format!("{method} {path}")
}

/// The distinct shapes in the order they first appear, without what only one side sends: the
/// 2.0.7 client's own test-connection lookup (`testConnectionDefinitions`), our tag
/// creation (the client sends no tags; a real server needs them before a label uses them) and
/// our listing of the service's models for incremental runs (`GET /api/v1/mlmodels`).
fn first_seen<'a>(
    requests: impl IntoIterator<Item = (&'a str, &'a str)>,
    service: &str,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (method, path) in requests {
        let s = shape(method, path, service);
        let one_sided = [
            "testConnectionDefinitions",
            "/api/v1/classifications",
            "/api/v1/tags",
        ]
        .iter()
        .any(|p| s.contains(p))
            || s == "GET /api/v1/mlmodels";
        if !one_sided && !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// More than one bulk request per run (251 models, as in the recorded first run), compared
/// request by request shape with what the 2.0.7 client sent, on a first run and a re-run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_requests_follow_the_recorded_client() {
    use sagebridge_testkit::{FakeSageMaker, FakeSpec};
    let sagemaker = FakeSageMaker::start(FakeSpec::with_models(251))
        .await
        .unwrap();
    let om = FakeOpenMetadata::start(TOKEN).await.unwrap();
    let cfg = workflow(&sagemaker.endpoint(), &om.url(), TOKEN);

    let report = run(&cfg, &RunOptions::default()).await.unwrap();
    assert_eq!(report.counts.created, 251, "{report:?}");
    assert_eq!(report.exit_code(), 0, "{report:?}");
    assert_eq!(om.models().len(), 251);
    let requests = om.requests();
    let ours = first_seen(
        requests
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str())),
        "sm_prod",
    );
    let theirs = recorded("first-run.jsonl");
    let theirs = first_seen(
        theirs.iter().map(|(m, p)| (m.as_str(), p.as_str())),
        "local_sagemaker",
    );
    assert_eq!(ours, theirs);
    assert_eq!(theirs.len(), 5, "{theirs:?}");
    // Up to 100 rows a request, as the client sends: 100, 100, 51.
    let rows: Vec<usize> = requests
        .iter()
        .filter(|r| path_of(r) == "/api/v1/mlmodels/bulk")
        .map(|r| {
            r.body
                .as_ref()
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        })
        .collect();
    assert_eq!(rows, [100, 100, 51]);
    let model_schema = schemas::validator("api/data/createMlModel.json");
    for r in requests
        .iter()
        .filter(|r| path_of(r) == "/api/v1/mlmodels/bulk")
    {
        for row in r.body.as_ref().and_then(Value::as_array).unwrap() {
            assert!(model_schema.is_valid(row), "{row}");
        }
    }

    // The full re-run (`--full`, as the client always does): the service is found, every
    // model written again (OpenMetadata skips the unchanged ones by sourceHash), then
    // deleteStale.
    om.clear_requests();
    let full = RunOptions {
        full: true,
        ..RunOptions::default()
    };
    let report = run(&cfg, &full).await.unwrap();
    assert_eq!(report.counts.updated, 251, "{report:?}");
    let requests = om.requests();
    let ours = first_seen(
        requests
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str())),
        "sm_prod",
    );
    let theirs = recorded("second-run.jsonl");
    let theirs = first_seen(
        theirs.iter().map(|(m, p)| (m.as_str(), p.as_str())),
        "local_sagemaker",
    );
    assert_eq!(ours, theirs);
    assert_eq!(theirs.len(), 4, "{theirs:?}");
}

/// Rows OpenMetadata refuses (`failedRequest`), in two different bulk requests: each is a
/// failed model of the report, the others are written, the run goes on to deleteStale and
/// exits 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_rows_are_failed_models_and_the_run_goes_on() {
    use sagebridge_testkit::{FakeSageMaker, FakeSpec};
    let sagemaker = FakeSageMaker::start(FakeSpec::with_models(150))
        .await
        .unwrap();
    let om = FakeOpenMetadata::start(TOKEN).await.unwrap();
    om.refuse_models(["model-00007", "model-00120"]);
    let cfg = workflow(&sagemaker.endpoint(), &om.url(), TOKEN);

    let report = run(&cfg, &RunOptions::default()).await.unwrap();
    assert_eq!(report.counts.failed, 2, "{report:?}");
    assert_eq!(report.counts.created, 148, "{report:?}");
    assert_eq!(report.exit_code(), 3);
    assert!(report.listing_complete);
    let mut failed: Vec<&str> = report.failures.iter().map(|f| f.model.as_str()).collect();
    failed.sort_unstable();
    assert_eq!(failed, ["model-00007", "model-00120"]);
    for f in &report.failures {
        assert_eq!(f.error_kind, "Rejected");
        assert_eq!(
            f.error,
            format!(
                "OpenMetadata rejected the model: mlmodel {} refused by the test",
                f.model
            )
        );
    }
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["counts"]["failed"], 2);
    assert_eq!(json["failures"][0]["errorKind"], "Rejected");
    assert_eq!(om.models().len(), 148);
    assert!(om.model("sm_prod.model-00007").is_none());

    // The run went on: a refused model exists in SageMaker, so it is seen, not deleted.
    let requests = om.requests();
    let last = requests.last().unwrap();
    assert_eq!(path_of(last), "/api/v1/mlmodels/deleteStale");
    let seen = last.body.as_ref().unwrap()["seenFqns"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(seen.len(), 150);
    assert!(seen.contains(&Value::from("sm_prod.model-00007")));
}

/// Tag keys and values with dots, spaces and unicode reach OpenMetadata under the
/// fully qualified names it computes (`"cost.center"."r.d"`), against a fake that resolves
/// references by FQN as the server does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_with_dots_and_quotes_use_openmetadata_fqns() {
    use aws_sdk_sagemaker::types::{ContainerDefinition, Tag};
    let moto = MotoServer::start().await.unwrap();
    let client = sagemaker_client(&moto.endpoint(), None);
    let tags = [
        ("cost.center", "r.d"),
        ("team", "data core"),
        ("région", "île de france"),
    ];
    let mut create = client
        .create_model()
        .model_name("dotted")
        .execution_role_arn("arn:aws:iam::123456789012:role/SageMakerExecutionRole")
        .primary_container(
            ContainerDefinition::builder()
                .image("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1.0-cpu-py310")
                .build(),
        );
    for (k, v) in tags {
        create = create.tags(Tag::builder().key(k).value(v).build());
    }
    create.send().await.unwrap();
    let om = FakeOpenMetadata::start(TOKEN).await.unwrap();
    let cfg = workflow(&moto.endpoint(), &om.url(), TOKEN);
    let report = run(&cfg, &RunOptions::default()).await.unwrap();
    assert_eq!(
        (report.counts.created, report.exit_code()),
        (1, 0),
        "{report:?}"
    );
    let created = om.tags();
    for fqn in [
        "\"cost.center\".\"r.d\"",
        "team.data core",
        "région.île de france",
    ] {
        assert!(created.iter().any(|t| t == fqn), "{fqn} not in {created:?}");
    }
    let model = om.model("sm_prod.dotted").expect("model");
    let labels: Vec<&str> = model["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tagFQN"].as_str().unwrap())
        .collect();
    assert!(labels.contains(&"\"cost.center\".\"r.d\""), "{labels:?}");
}

/// Idempotent calls are retried on 429 and 502-504 (honouring `Retry-After`); a bulk request
/// that keeps failing costs its rows, not the run, and nothing is marked deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overloaded_servers_are_retried_and_a_lost_batch_deletes_nothing() {
    use sagebridge_testkit::{FakeSageMaker, FakeSpec};
    let sagemaker = FakeSageMaker::start(FakeSpec::with_models(150))
        .await
        .unwrap();
    let om = FakeOpenMetadata::start(TOKEN).await.unwrap();
    let cfg = workflow(&sagemaker.endpoint(), &om.url(), TOKEN);
    // Twice 503 on the bulk write, then it goes through.
    om.fail_requests("mlmodels/bulk", 503, 2);
    let report = run(&cfg, &RunOptions::default()).await.unwrap();
    assert_eq!(
        (report.counts.created, report.exit_code()),
        (150, 0),
        "{report:?}"
    );
    let bulk = om
        .requests()
        .iter()
        .filter(|r| path_of(r) == "/api/v1/mlmodels/bulk")
        .count();
    assert_eq!(
        bulk,
        2 + 2,
        "two refused attempts, then the two bulk requests"
    );

    // Always 429 on the bulk write: every row fails, the run goes on to its report, exit 3,
    // and deleteStale is not called (a full run: an incremental one would write nothing).
    om.clear_requests();
    om.fail_requests("mlmodels/bulk", 429, u64::MAX);
    let full = RunOptions {
        full: true,
        ..RunOptions::default()
    };
    let report = run(&cfg, &full).await.unwrap();
    assert_eq!(report.counts.failed, 150, "{report:?}");
    assert!(!report.writes_complete);
    assert_eq!(report.exit_code(), 3);
    assert!(
        report.failures[0].error.contains("after 4 attempts"),
        "{:?}",
        report.failures[0]
    );
    assert!(report.summary().contains("writes incomplete"));
    let requests = om.requests();
    assert!(
        !requests.iter().any(|r| path_of(r).contains("deleteStale")),
        "a run with lost writes deleted: {:?}",
        requests.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    assert_eq!(
        requests
            .iter()
            .filter(|r| path_of(r) == "/api/v1/mlmodels/bulk")
            .count(),
        2 * 4
    );
}

/// `storeServiceConnection: false` creates the service without a connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_connection_is_not_stored_when_told_not_to() {
    use sagebridge_testkit::{FakeSageMaker, FakeSpec};
    let sagemaker = FakeSageMaker::start(FakeSpec::with_models(3))
        .await
        .unwrap();
    let om = FakeOpenMetadata::start(TOKEN).await.unwrap();
    let cfg = workflow_with(
        &sagemaker.endpoint(),
        &om.url(),
        TOKEN,
        "    storeServiceConnection: false\n",
    );
    let report = run(&cfg, &RunOptions::default()).await.unwrap();
    assert_eq!(report.exit_code(), 0, "{report:?}");
    let service = om.service("sm_prod").expect("service");
    assert!(
        service.get("connection").is_none_or(Value::is_null),
        "{service}"
    );
}

/// The calls of one API in a report (0 when absent).
fn calls(report: &sagebridge_ingest::runner::RunReport, api: &str) -> u64 {
    report.aws_calls.get(api).copied().unwrap_or(0)
}

/// Incremental runs: the first run creates every model; a re-run reads the service's models
/// and their sourceHash back from OpenMetadata, reads only the tags of each model (no
/// DescribeModel, no DescribeTrainingJob), writes nothing and reports them unchanged; a model
/// whose tags changed in SageMaker is read in full and updated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_runs_skip_unchanged_models() {
    let moto = MotoServer::start().await.unwrap();
    let client = sagemaker_client(&moto.endpoint(), None);
    let summary = seed(&client, &SeedSpec::demo()).await.unwrap();
    let n = summary.models.len();
    let om = FakeOpenMetadata::start(TOKEN).await.unwrap();
    let cfg = workflow(&moto.endpoint(), &om.url(), TOKEN);

    let first = run(&cfg, &RunOptions::default()).await.unwrap();
    let groups = first.model_package_groups;
    assert_eq!(first.counts.created, n + groups, "{first:?}");
    assert_eq!(first.incremental, 0);
    assert!(calls(&first, "DescribeModel") > 0, "{:?}", first.aws_calls);
    let versions: Vec<Value> = om.models().values().map(|m| m["version"].clone()).collect();

    om.clear_requests();
    let again = run(&cfg, &RunOptions::default()).await.unwrap();
    assert_eq!(again.exit_code(), 0, "{again:?}");
    assert_eq!(again.counts.unchanged, n, "{again:?}");
    assert_eq!(again.incremental, n, "{again:?}");
    assert_eq!(again.counts.created, 0, "{again:?}");
    // Model package groups are always read again.
    assert_eq!(again.counts.updated, groups, "{again:?}");
    for api in ["DescribeModel", "DescribeTrainingJob"] {
        assert_eq!(calls(&again, api), 0, "{api}: {:?}", again.aws_calls);
    }
    let requests = om.requests();
    let listing: Vec<&str> = requests
        .iter()
        .filter(|r| r.method == "GET" && path_of(r) == "/api/v1/mlmodels")
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(listing, ["/api/v1/mlmodels?service=sm_prod&limit=100"]);
    let rows: usize = requests
        .iter()
        .filter(|r| path_of(r) == "/api/v1/mlmodels/bulk")
        .map(|r| {
            r.body
                .as_ref()
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        })
        .sum();
    assert_eq!(rows, groups, "only the groups are written again");
    let after: Vec<Value> = om.models().values().map(|m| m["version"].clone()).collect();
    assert_eq!(versions, after, "nothing changed in OpenMetadata");
    assert_eq!(again.counts.deleted, 0);

    // A tag added in SageMaker: that model (only) is described again and updated.
    let changed = &summary.models[1].name;
    let arn = client
        .describe_model()
        .model_name(changed)
        .send()
        .await
        .unwrap()
        .model_arn()
        .unwrap()
        .to_owned();
    client
        .add_tags()
        .resource_arn(&arn)
        .tags(
            aws_sdk_sagemaker::types::Tag::builder()
                .key("stage")
                .value("canary")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let fqn = format!("sm_prod.{changed}");
    let before = om.model(&fqn).unwrap();
    let third = run(&cfg, &RunOptions::default()).await.unwrap();
    assert_eq!(third.exit_code(), 0, "{third:?}");
    assert_eq!(third.counts.updated, groups + 1, "{third:?}");
    assert_eq!(third.counts.unchanged, n - 1, "{third:?}");
    assert_eq!(calls(&third, "DescribeModel"), 1, "{:?}", third.aws_calls);
    let stored = om.model(&fqn).unwrap();
    assert_ne!(stored["sourceHash"], before["sourceHash"]);
    assert_ne!(stored["version"], before["version"]);
    assert!(
        stored["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["tagFQN"] == "stage.canary"),
        "{stored}"
    );

    // `--full` reads every model again, whatever the hashes say.
    let full = RunOptions {
        full: true,
        ..RunOptions::default()
    };
    let full = run(&cfg, &full).await.unwrap();
    assert_eq!(full.incremental, 0, "{full:?}");
    assert_eq!(full.counts.updated, n + groups, "{full:?}");
    assert!(
        calls(&full, "DescribeModel") >= n as u64,
        "{:?}",
        full.aws_calls
    );
}

/// More existing models than one page: the listing follows `paging.after` to the end, and
/// every model is known (none described again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_existing_models_are_read_in_pages() {
    use sagebridge_testkit::{FakeSageMaker, FakeSpec};
    let sagemaker = FakeSageMaker::start(FakeSpec::with_models(230))
        .await
        .unwrap();
    let om = FakeOpenMetadata::start(TOKEN).await.unwrap();
    let cfg = workflow(&sagemaker.endpoint(), &om.url(), TOKEN);
    let first = run(&cfg, &RunOptions::default()).await.unwrap();
    assert_eq!(first.counts.created, 230, "{first:?}");

    om.clear_requests();
    let again = run(&cfg, &RunOptions::default()).await.unwrap();
    assert_eq!(again.counts.unchanged, 230, "{again:?}");
    assert_eq!(calls(&again, "DescribeModel"), 0, "{:?}", again.aws_calls);
    let pages: Vec<String> = om
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && path_of(r) == "/api/v1/mlmodels")
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(!pages[0].contains("after="), "{pages:?}");
    assert!(
        pages[1..].iter().all(|p| p.contains("&after=")),
        "{pages:?}"
    );
    assert!(!om
        .requests()
        .iter()
        .any(|r| path_of(r) == "/api/v1/mlmodels/bulk"));
}

/// OpenMetadata fails the listing of the existing models: the run reads and writes every
/// model as a full run does, says so, and marks nothing deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_listing_of_existing_models_falls_back_to_a_full_run() {
    let moto = MotoServer::start().await.unwrap();
    let client = sagemaker_client(&moto.endpoint(), None);
    let summary = seed(&client, &SeedSpec::demo()).await.unwrap();
    let n = summary.models.len();
    let om = FakeOpenMetadata::start(TOKEN).await.unwrap();
    let cfg = workflow(&moto.endpoint(), &om.url(), TOKEN);
    let first = run(&cfg, &RunOptions::default()).await.unwrap();
    let groups = first.model_package_groups;

    // A model gone from SageMaker would be marked deleted by a normal run.
    let gone = &summary.models[2].name;
    client.delete_model().model_name(gone).send().await.unwrap();
    // Every attempt of the listing (the first request under `mlmodels`) answers 503.
    om.fail_requests("mlmodels", 503, 4);
    om.clear_requests();
    let report = run(&cfg, &RunOptions::default()).await.unwrap();
    assert_eq!(report.incremental, 0, "{report:?}");
    assert_eq!(report.counts.updated, n - 1 + groups, "{report:?}");
    assert_eq!(report.counts.deleted, 0, "{report:?}");
    assert!(calls(&report, "DescribeModel") >= (n - 1) as u64);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("could not read the models the sink holds")),
        "{report:?}"
    );
    let requests = om.requests();
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.method == "GET" && path_of(r) == "/api/v1/mlmodels")
            .count(),
        4,
        "the listing was tried 4 times"
    );
    assert!(
        !requests.iter().any(|r| r.method == "DELETE"),
        "nothing deleted"
    );
    assert_eq!(
        om.model(&format!("sm_prod.{gone}")).unwrap()["deleted"],
        false
    );

    // The next run lists again, and the model gone is marked deleted then.
    let next = run(&cfg, &RunOptions::default()).await.unwrap();
    assert_eq!(next.counts.deleted, 1, "{next:?}");
    assert_eq!(next.counts.unchanged, n - 1, "{next:?}");
}

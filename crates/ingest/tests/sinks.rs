//! The `Sink` trait with both sinks, built from workflow config as a run builds them: the
//! `catalog` sink on a real SQLite file, the `metadata-rest` sink against the testkit's fake
//! OpenMetadata. The same contract first (service, batch writes, mark-deleted), then what each
//! sink does on its own (facts and run history in the catalog; none in OpenMetadata).

use std::collections::HashSet;
use std::path::Path;

use sagebridge_catalog::{Catalog, IngestionRun, ModelWrite, RunStatus, SqliteCatalog};
use sagebridge_ingest::config::{SinkConfig, WorkflowConfig};
use sagebridge_ingest::facts::ModelFacts;
use sagebridge_ingest::mapping::{to_ml_model, ServiceRef};
use sagebridge_ingest::sink::{Incremental, Sink, SinkContext};
use sagebridge_testkit::FakeOpenMetadata;

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.sink-test-jwt.signature";

fn workflow(sink: &str) -> WorkflowConfig {
    let text = format!(
        "source:
  type: sagemaker
  serviceName: sm_sinks
  serviceConnection:
    config:
      type: SageMaker
      awsConfig:
        awsAccessKeyId: testing
        awsSecretAccessKey: not-a-real-secret
        awsRegion: us-east-1
{sink}"
    );
    WorkflowConfig::parse("sinks.yaml", &text, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

fn catalog_workflow(db: &Path) -> WorkflowConfig {
    workflow(&format!(
        "sink:\n  type: catalog\n  config:\n    path: {}\n",
        db.display()
    ))
}

fn om_workflow(url: &str) -> WorkflowConfig {
    workflow(&format!(
        "sink:
  type: metadata-rest
  config: {{}}
workflowConfig:
  openMetadataServerConfig:
    hostPort: {url}/api
    authProvider: openmetadata
    securityConfig:
      jwtToken: {TOKEN}
"
    ))
}

fn fixture(name: &str) -> ModelFacts {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn writes(sink: &dyn Sink, service: &ServiceRef, facts: &[ModelFacts]) -> Vec<ModelWrite> {
    facts
        .iter()
        .map(|f| ModelWrite {
            model: to_ml_model(f, service),
            arn: Some(f.arn.clone()),
            creation_time: Some(f.creation_time),
            facts: sink
                .keeps_facts()
                .then(|| serde_json::to_string(f).unwrap()),
        })
        .collect()
}

/// What every sink does: the service, a batch of new models, mark-deleted of the unseen one.
async fn contract(sink: &dyn Sink, facts: &[ModelFacts]) -> ServiceRef {
    let service = sink.open_service().await.unwrap();
    assert_eq!(service.name, "sm_sinks");
    assert!(!service.id.is_empty());
    // Opening again finds the same service.
    assert_eq!(sink.open_service().await.unwrap(), service);

    let written = sink.write(writes(sink, &service, facts)).await.unwrap();
    assert_eq!(written.outcome.created, facts.len(), "{written:?}");
    assert!(written.rejected.is_empty(), "{written:?}");

    let seen: HashSet<String> = facts[1..].iter().map(|f| f.name.clone()).collect();
    assert_eq!(sink.mark_deleted(seen.clone()).await.unwrap(), 1);
    assert_eq!(sink.mark_deleted(seen).await.unwrap(), 0);
    service
}

#[tokio::test]
async fn catalog_sink_keeps_models_facts_and_runs_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("catalog.db");
    let cfg = catalog_workflow(&db);
    assert!(matches!(cfg.sink, SinkConfig::Catalog(_)));
    assert_eq!(cfg.sink.server_name(), None);
    let sink = cfg.sink.build(&SinkContext::new(&cfg)).await.unwrap();
    assert!(db.exists(), "the SQLite file is created by build");
    let facts = vec![fixture("xgboost-churn"), fixture("minimal")];

    let health = sink.healthcheck().await.unwrap();
    assert!(health.contains("sm_sinks has 0 model(s)"), "{health}");
    let service = contract(sink.as_ref(), &facts).await;
    let health = sink.healthcheck().await.unwrap();
    assert!(health.contains("sm_sinks has 1 model(s)"), "{health}");

    // Incremental runs: what the catalog knows, and the facts it stored.
    let known = sink.known_models().await.unwrap();
    assert_eq!(known.len(), 2);
    let first = &known[&facts[0].name];
    assert!(first.deleted);
    assert_eq!(first.arn.as_deref(), Some(facts[0].arn.as_str()));
    let second = &known[&facts[1].name];
    assert!(!second.deleted);
    assert_eq!(second.creation_time, Some(facts[1].creation_time));
    assert_eq!(
        sink.stored_facts(facts[1].name.clone()).await,
        Some(facts[1].clone())
    );
    assert_eq!(sink.stored_facts("not-there".into()).await, None);

    // The same batch again: the live model is unchanged, the deleted one restored.
    let again = sink
        .write(writes(sink.as_ref(), &service, &facts))
        .await
        .unwrap();
    assert_eq!(
        (
            again.outcome.created,
            again.outcome.updated,
            again.outcome.unchanged
        ),
        (0, 1, 1),
        "{again:?}"
    );

    // The run history, read back through the catalog itself.
    let run = IngestionRun {
        id: "run-1".into(),
        service: "sm_sinks".into(),
        started_at: 1,
        finished_at: Some(2),
        status: RunStatus::Success,
        report: serde_json::json!({"counts": {"created": 2}}),
    };
    sink.record_run(run).await.unwrap();
    drop(sink);
    let catalog = SqliteCatalog::open(&db).unwrap();
    let stored = catalog.get_run("run-1").unwrap().expect("run recorded");
    assert_eq!(stored.status, RunStatus::Success);
    assert_eq!(stored.report["counts"]["created"], 2);
    let m = catalog
        .get_model(Some("sm_sinks"), &facts[1].name)
        .unwrap()
        .unwrap();
    assert_eq!(m.service.id, service.id);
}

#[tokio::test]
async fn catalog_sink_reports_an_unusable_path() {
    let dir = tempfile::tempdir().unwrap();
    // The catalog's folder cannot be created: a file is in its way.
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, "").unwrap();
    let cfg = catalog_workflow(&blocker.join("catalog.db"));
    let e = cfg
        .sink
        .build(&SinkContext::new(&cfg))
        .await
        .err()
        .expect("no catalog under a file");
    assert!(e.to_string().starts_with("catalog: "), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_rest_sink_writes_to_openmetadata_and_keeps_no_facts() {
    let om = FakeOpenMetadata::start(TOKEN).await.unwrap();
    let cfg = om_workflow(&om.url());
    assert!(matches!(cfg.sink, SinkConfig::MetadataRest(_)));
    assert_eq!(cfg.sink.server_name(), Some("OpenMetadata"));
    let sink = cfg.sink.build(&SinkContext::new(&cfg)).await.unwrap();
    assert!(om.requests().is_empty(), "building sends nothing");
    let facts = vec![fixture("hf-tgi-llm"), fixture("many-tags")];

    let health = sink.healthcheck().await.unwrap();
    assert!(
        health.contains("OpenMetadata 2.0.7") && health.contains("sm_sinks will be created"),
        "{health}"
    );
    let service = contract(sink.as_ref(), &facts).await;
    assert_eq!(
        om.service("sm_sinks").unwrap()["id"],
        service.id.as_str(),
        "the id of the service OpenMetadata stored"
    );
    let health = sink.healthcheck().await.unwrap();
    assert!(health.contains("sm_sinks exists"), "{health}");
    assert_eq!(
        om.model(&format!("sm_sinks.{}", facts[0].name)).unwrap()["deleted"],
        true
    );
    assert_eq!(
        om.model(&format!("sm_sinks.{}", facts[1].name)).unwrap()["deleted"],
        false
    );
    // Every tag label the models carry was created before the models.
    let tags = om.tags();
    for m in om.models().values() {
        for label in m["tags"].as_array().into_iter().flatten() {
            let fqn = label["tagFQN"].as_str().unwrap();
            assert!(tags.iter().any(|t| t == fqn), "{fqn} was never created");
        }
    }

    // No facts and no run history: incremental runs rest on OpenMetadata's sourceHash, read
    // back with the live models.
    assert!(!sink.keeps_facts());
    assert_eq!(sink.incremental(), Incremental::SourceHash);
    let known = sink.known_models().await.unwrap();
    assert_eq!(known.len(), 1, "{known:?}");
    assert_eq!(
        known[&facts[1].name].source_hash,
        om.model(&format!("sm_sinks.{}", facts[1].name)).unwrap()["sourceHash"]
            .as_str()
            .map(str::to_owned)
    );
    assert_eq!(sink.stored_facts(facts[1].name.clone()).await, None);
    let before = om.requests().len();
    let run = IngestionRun {
        id: "run-1".into(),
        service: "sm_sinks".into(),
        started_at: 1,
        finished_at: None,
        status: RunStatus::Running,
        report: serde_json::Value::Null,
    };
    sink.record_run(run).await.unwrap();
    assert_eq!(om.requests().len(), before, "recording a run sends nothing");

    // A refused row is a rejected model, the rest of the batch is written.
    om.refuse_models([facts[0].name.as_str()]);
    let written = sink
        .write(writes(sink.as_ref(), &service, &facts))
        .await
        .unwrap();
    assert_eq!(written.outcome.updated, 1, "{written:?}");
    assert_eq!(written.rejected.len(), 1, "{written:?}");
    assert_eq!(written.rejected[0].model, facts[0].name);
    assert!(
        written.rejected[0]
            .reason
            .starts_with("OpenMetadata rejected the model: "),
        "{written:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_rest_health_check_says_what_is_wrong() {
    let om = FakeOpenMetadata::start(TOKEN).await.unwrap();
    let cfg = om_workflow(&om.url()).clone();
    let mut ctx = SinkContext::new(&cfg);
    if let Some(server) = ctx.open_metadata.as_mut() {
        server.security_config = None;
    }
    let sink = cfg.sink.build(&ctx).await.unwrap();
    let e = sink.healthcheck().await.unwrap_err();
    assert!(e.to_string().contains("jwtToken"), "{e}");

    let down = om_workflow("http://127.0.0.1:9");
    let sink = down.sink.build(&SinkContext::new(&down)).await.unwrap();
    let e = sink.healthcheck().await.unwrap_err();
    assert!(e.to_string().contains("cannot reach OpenMetadata"), "{e}");
}

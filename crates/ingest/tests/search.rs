//! Bulk reads through SageMaker `Search`, against the testkit's fake SageMaker (which pages
//! Search like AWS and can make its index lag) and moto (which does not support `Model`):
//! - with Search, models, training jobs and endpoints come 100 a call, and a run builds the
//!   same documents as one that reads each model; switching between the two versions nothing;
//! - a model (or training job) missing from Search because its index lags is read the classic
//!   way;
//! - a resource Search refuses (denied, not supported) is read one by one, with one note.

use std::sync::Arc;
use std::time::Duration;

use sagebridge_aws::{ClientOptions, Clients, StepStatus};
use sagebridge_catalog::{Catalog, ListQuery, MlModel, SqliteCatalog};
use sagebridge_ingest::config::WorkflowConfig;
use sagebridge_ingest::runner::{run_into, RunOptions, RunReport};
use sagebridge_ingest::test_connection::{test_connection, BULK_STEP};
use sagebridge_testkit::{
    sagemaker_client, seed, Failure, FakeSageMaker, FakeSpec, MotoServer, SeedSpec,
};
use serde_json::Value;

fn workflow(endpoint: &str) -> WorkflowConfig {
    workflow_with(endpoint, "")
}

/// `aws` adds lines to `awsConfig`.
fn workflow_with(endpoint: &str, aws: &str) -> WorkflowConfig {
    let text = format!(
        "source:
  type: sagemaker
  serviceName: sm
  serviceConnection:
    config:
      type: SageMaker
      awsConfig:
        awsAccessKeyId: testing
        awsSecretAccessKey: testing
        awsRegion: us-east-1
        endPointURL: {endpoint}
{aws}  sourceConfig:
    config:
      type: MlModelMetadata
      markDeletedMlModels: true
"
    );
    WorkflowConfig::parse("wf.yaml", &text, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

fn catalog(dir: &tempfile::TempDir, name: &str) -> Arc<SqliteCatalog> {
    Arc::new(SqliteCatalog::open(dir.path().join(name)).unwrap())
}

async fn ingest(endpoint: &str, catalog: &Arc<SqliteCatalog>, full: bool) -> RunReport {
    let report = run_into(
        &workflow(endpoint),
        catalog.clone(),
        &RunOptions {
            full,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.exit_code(), 0, "{}", report.summary());
    assert!(report.warnings.is_empty(), "{}", report.summary());
    report
}

fn models(catalog: &SqliteCatalog) -> Vec<MlModel> {
    catalog
        .list_models(&ListQuery {
            service: Some("sm".into()),
            ..Default::default()
        })
        .unwrap()
}

/// The documents by name, without what the catalog itself assigns (ids, times, versions).
fn documents(catalog: &SqliteCatalog) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = models(catalog)
        .into_iter()
        .map(|m| {
            let mut v = serde_json::to_value(&m).unwrap();
            let doc = v.as_object_mut().unwrap();
            for key in ["id", "updatedAt", "version", "href"] {
                doc.remove(key);
            }
            if let Some(service) = doc.get_mut("service").and_then(Value::as_object_mut) {
                service.remove("id");
            }
            (m.name, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn assert_same_documents(a: &SqliteCatalog, b: &SqliteCatalog) {
    let (a, b) = (documents(a), documents(b));
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert_eq!(x, y, "{name}");
    }
}

fn deny_search(fake: &FakeSageMaker) {
    fake.handle()
        .set_failure("Search", Some(Failure::access_denied("sagemaker:Search")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_classic_reads_build_the_same_documents_and_switching_versions_nothing() {
    let spec = FakeSpec {
        endpoints: 5,
        ..FakeSpec::with_models(250)
    };
    let bulk = FakeSageMaker::start(spec.clone()).await.unwrap();
    let classic = FakeSageMaker::start(spec).await.unwrap();
    deny_search(&classic);
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (catalog(&dir, "a.db"), catalog(&dir, "b.db"));

    // Search: models, training jobs and endpoints 100 a call; nothing described one by one.
    let r = ingest(&bulk.endpoint(), &a, false).await;
    assert_eq!((r.counts.created, r.models_from_search), (250, 250));
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    let calls = bulk.handle();
    for op in [
        "DescribeModel",
        "ListTags",
        "DescribeTrainingJob",
        "ListEndpoints",
        "DescribeEndpoint",
    ] {
        assert_eq!(calls.calls(op), 0, "{op}: {:?}", calls.all_calls());
    }
    // 3 pages of models, 3 of training jobs, 1 of endpoints.
    assert_eq!(calls.calls("Search"), 7, "{:?}", calls.all_calls());
    assert_eq!(r.aws_calls["Search"], 7);
    let total: u64 = r.aws_calls.values().sum();
    assert_eq!(r.calls_per_model, total as f64 / 250.0);
    assert!(r.calls_per_model < 0.1, "{}", r.summary());
    assert!(
        r.summary()
            .contains(&format!("{:.2} calls per model", r.calls_per_model)),
        "{}",
        r.summary()
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["callsPerModel"], r.calls_per_model);
    assert_eq!(json["modelsFromSearch"], 250);

    // Search denied: every model read one by one, one note per resource, same documents.
    let r = ingest(&classic.endpoint(), &b, false).await;
    assert_eq!((r.counts.created, r.models_from_search), (250, 0));
    assert_eq!(classic.handle().calls("DescribeModel"), 250);
    assert_eq!(classic.handle().calls("DescribeTrainingJob"), 250);
    assert_eq!(r.notes.len(), 3, "{:?}", r.notes);
    for resource in ["Model", "TrainingJob", "Endpoint"] {
        let lines = r
            .notes
            .iter()
            .filter(|n| n.contains(&format!("for {resource} (")))
            .count();
        assert_eq!(lines, 1, "{resource}: {:?}", r.notes);
    }
    assert!(r
        .summary()
        .contains("  note: bulk reads through Search not used for Model"));
    assert_same_documents(&a, &b);
    let with_endpoint = documents(&a)
        .into_iter()
        .filter(|(_, d)| d.get("server").is_some())
        .count();
    assert_eq!(with_endpoint, 5);

    // The catalog filled through Search, read again one by one (every model described): the
    // same facts, so nothing changes and no model gets a second version.
    let r = ingest(&classic.endpoint(), &a, true).await;
    assert_eq!((r.counts.unchanged, r.counts.updated), (250, 0));
    for m in models(&a).iter().take(5) {
        assert_eq!(a.model_versions(&m.fully_qualified_name).unwrap().len(), 1);
    }

    // Back to Search, incremental: the tags come from Search's pages too, no ListTags.
    calls.reset_counters();
    let r = ingest(&bulk.endpoint(), &a, false).await;
    assert_eq!((r.counts.unchanged, r.incremental), (250, 250));
    assert_eq!(r.models_from_search, 250);
    assert_eq!(calls.calls("ListTags"), 0);
    assert_eq!(calls.calls("DescribeModel"), 0);
    // What remains is per run, not per model: 3 ListModels pages, 3 Search pages of models,
    // 1 of endpoints, 5 DescribeEndpointConfig, 1 ListFeatureGroups, 2 DescribeFeatureGroup,
    // 1 ListModelPackageGroups (no group, so no Search of the registry).
    assert_eq!(
        r.aws_calls.values().sum::<u64>(),
        3 + 3 + 1 + 5 + 1 + 2 + 1,
        "{:?}",
        r.aws_calls
    );
    assert_eq!(r.calls_per_model, 16.0 / 250.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_missing_from_a_lagging_search_index_are_read_the_classic_way() {
    // Both fakes hold the same account: the same creation second for the recent models.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let spec = FakeSpec {
        recent_models: 7,
        recent_created_at: Some(now),
        ..FakeSpec::with_models(120)
    };
    let lagging = FakeSageMaker::start(spec.clone()).await.unwrap();
    lagging
        .handle()
        .set_search_index_lag(Duration::from_secs(3600));
    let caught_up = FakeSageMaker::start(spec).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (catalog(&dir, "a.db"), catalog(&dir, "b.db"));

    let r = ingest(&lagging.endpoint(), &a, false).await;
    assert_eq!(r.counts.created, 120, "{}", r.summary());
    assert_eq!(r.models_from_search, 113);
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    let calls = lagging.handle();
    // The 7 recent models, and their training jobs, which the index lacks too.
    assert_eq!(calls.calls("DescribeModel"), 7);
    assert_eq!(calls.calls("ListTags"), 7);
    assert_eq!(calls.calls("DescribeTrainingJob"), 7);

    // The same documents as when the index has caught up (all 120 from Search).
    let r = ingest(&caught_up.endpoint(), &b, false).await;
    assert_eq!(r.models_from_search, 120);
    assert_eq!(caught_up.handle().calls("DescribeModel"), 0);
    assert_same_documents(&a, &b);
    assert!(documents(&a)
        .iter()
        .all(|(_, d)| d.get("mlHyperParameters").is_some()));
}

/// A model deleted and created again under its name while Search's index still holds the old
/// one: the record's creation time differs from ListModels', so the model is described.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_search_tells_differently_from_its_listing_is_described() {
    let stale = FakeSageMaker::start(FakeSpec::with_models(20))
        .await
        .unwrap();
    stale.handle().stale_search_record("model-00004");
    let fresh = FakeSageMaker::start(FakeSpec::with_models(20))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (catalog(&dir, "a.db"), catalog(&dir, "b.db"));
    let r = ingest(&stale.endpoint(), &a, false).await;
    assert_eq!((r.counts.created, r.models_from_search), (20, 19));
    assert_eq!(stale.handle().calls("DescribeModel"), 1);
    assert_eq!(stale.handle().calls("ListTags"), 1);
    ingest(&fresh.endpoint(), &b, false).await;
    assert_same_documents(&a, &b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_search_does_not_support_is_read_one_by_one_with_one_note() {
    let fake = FakeSageMaker::start(FakeSpec::with_models(30))
        .await
        .unwrap();
    fake.handle().set_search_failure(
        "Model",
        Some(Failure::validation(
            "1 validation error detected: Value 'Model' at 'resource' failed to satisfy constraint",
        )),
    );
    let dir = tempfile::tempdir().unwrap();
    let r = ingest(&fake.endpoint(), &catalog(&dir, "c.db"), false).await;
    assert_eq!(r.counts.created, 30);
    assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
    assert!(
        r.notes[0].starts_with("bulk reads through Search not used for Model (")
            && r.notes[0].ends_with("read one by one instead"),
        "{}",
        r.notes[0]
    );
    assert_eq!(r.models_from_search, 0);
    let calls = fake.handle();
    assert_eq!(calls.calls("DescribeModel"), 30);
    // Training jobs and endpoints still come from Search.
    assert_eq!(calls.calls("DescribeTrainingJob"), 0);
    assert_eq!(calls.calls("DescribeEndpoint"), 0);
    // The model index was asked once, not once per model.
    assert_eq!(calls.calls("Search"), 3, "{:?}", calls.all_calls());
}

/// moto answers Search for `Model` with a validation error but supports training jobs and
/// endpoints: one note, every model ingested.
#[tokio::test]
async fn against_moto_models_are_described_and_training_jobs_come_from_search() {
    let moto = MotoServer::start().await.unwrap();
    let seeded = seed(&sagemaker_client(&moto.endpoint(), None), &SeedSpec::demo())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = catalog(&dir, "c.db");
    let r = ingest(&moto.endpoint(), &c, false).await;
    let n = seeded.models.len();
    assert_eq!((r.counts.created, r.counts.failed), (n, 0));
    assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
    assert!(r.notes[0].contains("for Model ("), "{}", r.notes[0]);
    assert_eq!(r.aws_calls["DescribeModel"], n as u64);
    assert!(
        !r.aws_calls.contains_key("DescribeTrainingJob"),
        "{:?}",
        r.aws_calls
    );
    let with_hp = seeded
        .models
        .iter()
        .filter(|m| !m.hyperparameters.is_empty())
        .count();
    assert!(with_hp > 0);
    let docs = documents(&c);
    assert_eq!(
        docs.iter()
            .filter(|(_, d)| d.get("mlHyperParameters").is_some())
            .count(),
        with_hp
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_says_which_resources_are_read_in_bulk() {
    let fake = FakeSageMaker::start(FakeSpec::with_models(3))
        .await
        .unwrap();
    // GetCallerIdentity goes to moto; the fake has no STS.
    let moto = MotoServer::start().await.unwrap();
    let sts = format!("        stsEndPointURL: {}\n", moto.endpoint());
    let check = |endpoint: String| {
        let wf = workflow_with(&endpoint, &sts);
        async move {
            let clients = Clients::new(wf.aws(), &ClientOptions::default())
                .await
                .unwrap();
            let report = test_connection(&clients).await;
            report
                .steps
                .into_iter()
                .find(|s| s.name == BULK_STEP)
                .expect("the bulk-read step")
        }
    };
    let step = check(fake.endpoint()).await;
    assert_eq!(step.status, StepStatus::Passed, "{step:?}");
    assert_eq!(
        step.detail.as_deref(),
        Some("read 100 a call through Search: Model, TrainingJob, Endpoint")
    );

    fake.handle()
        .set_search_failure("Model", Some(Failure::validation("not supported")));
    let step = check(fake.endpoint()).await;
    assert_eq!(step.status, StepStatus::Passed, "{step:?}");
    assert_eq!(
        step.detail.as_deref(),
        Some("read 100 a call through Search: TrainingJob, Endpoint; read one by one: Model (ValidationException)")
    );

    deny_search(&fake);
    let step = check(fake.endpoint()).await;
    assert_eq!(step.status, StepStatus::Warning, "{step:?}");
    assert!(!step.mandatory);
    assert_eq!(
        step.detail.as_deref(),
        Some("without sagemaker:Search, ingestion skips bulk reads (models, training jobs and endpoints 100 a call)")
    );
}

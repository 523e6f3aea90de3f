//! Bulk tags through the Resource Groups Tagging API, against moto (which serves GetResources
//! for `sagemaker:model`, and no Search for models):
//! - the tags of tagged models come 100 a call instead of one ListTags per model; a new model
//!   the tagging index does not hold (untagged, or not indexed yet) is asked with ListTags;
//! - with `tag:GetResources` denied, every model is asked with ListTags, with one note, and
//!   the documents are the same: switching between the two versions nothing.

use std::sync::Arc;

use aws_sdk_sagemaker::types::{ContainerDefinition, Tag};
use sagebridge_aws::{ClientOptions, Clients, StepStatus};
use sagebridge_catalog::{Catalog, ListQuery, MlModel, SqliteCatalog};
use sagebridge_ingest::config::WorkflowConfig;
use sagebridge_ingest::runner::{run_into, RunOptions, RunReport};
use sagebridge_ingest::test_connection::{test_connection, BULK_TAGS_STEP};
use sagebridge_testkit::{sagemaker_client, MotoIam, MotoServer};
use serde_json::Value;

const ROLE: &str = "arn:aws:iam::123456789012:role/sm";
const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn:1";

fn workflow(endpoint: &str, keys: Option<(&str, &str)>) -> WorkflowConfig {
    let (id, secret) = keys.unwrap_or(("testing", "testing"));
    let text = format!(
        "source:
  type: sagemaker
  serviceName: sm
  serviceConnection:
    config:
      type: SageMaker
      awsConfig:
        awsAccessKeyId: {id}
        awsSecretAccessKey: {secret}
        awsRegion: us-east-1
        endPointURL: {endpoint}
  sourceConfig:
    config:
      type: MlModelMetadata
      markDeletedMlModels: true
"
    );
    WorkflowConfig::parse("wf.yaml", &text, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

async fn ingest(cfg: &WorkflowConfig, catalog: &Arc<SqliteCatalog>) -> RunReport {
    let r = run_into(cfg, catalog.clone(), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(r.exit_code(), 0, "{}", r.summary());
    assert!(r.warnings.is_empty(), "{}", r.summary());
    r
}

fn models(catalog: &SqliteCatalog) -> Vec<MlModel> {
    catalog
        .list_models(&ListQuery {
            service: Some("sm".into()),
            ..Default::default()
        })
        .unwrap()
}

/// The documents by name, versions included (a switch of path must not bump them).
fn documents(catalog: &SqliteCatalog) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = models(catalog)
        .into_iter()
        .map(|m| {
            let mut v = serde_json::to_value(&m).unwrap();
            v.as_object_mut().unwrap().remove("updatedAt");
            (m.name, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

#[tokio::test]
async fn tags_come_from_the_tagging_api_and_switching_to_list_tags_versions_nothing() {
    let moto = MotoServer::start().await.unwrap();
    let sm = sagemaker_client(&moto.endpoint(), None);
    // 30 models tagged (keys given out of order), 3 without tags.
    for i in 0..33 {
        let mut create = sm
            .create_model()
            .model_name(format!("m-{i:02}"))
            .execution_role_arn(ROLE)
            .primary_container(ContainerDefinition::builder().image(IMAGE).build());
        if i < 30 {
            create = create
                .tags(tag("zone", &format!("z{i}")))
                .tags(tag("team", "growth"));
        }
        create.send().await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(SqliteCatalog::open(dir.path().join("c.db")).unwrap());

    let r = ingest(&workflow(&moto.endpoint(), None), &catalog).await;
    assert_eq!(r.counts.created, 33);
    assert_eq!(r.tags_from_index, 30, "{}", r.summary());
    assert_eq!(r.aws_calls["GetResources"], 1, "{:?}", r.aws_calls);
    // Only the untagged models, which the index does not hold and which are too new to be
    // sure of, are asked one by one.
    assert_eq!(r.aws_calls["ListTags"], 3, "{:?}", r.aws_calls);
    // moto has no Search for models: that note only.
    assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
    let m5 = models(&catalog)
        .into_iter()
        .find(|m| m.name == "m-05")
        .unwrap();
    let fqns: Vec<&str> = m5.tags.iter().map(|t| t.tag_fqn.as_str()).collect();
    assert_eq!(fqns, ["team.growth", "zone.z5"]);
    let before = documents(&catalog);

    // The same account with tag:GetResources denied: ListTags for every model, one more note,
    // and nothing changes in the catalog.
    let iam = MotoIam::new(&moto.endpoint());
    let user = iam
        .user_with_actions("no-tagging", &["sagemaker:*"])
        .await
        .unwrap();
    moto.reset_auth(0).await.unwrap();
    let keys = Some((user.access_key_id.as_str(), user.secret_access_key.as_str()));
    let r = ingest(&workflow(&moto.endpoint(), keys), &catalog).await;
    assert_eq!((r.counts.unchanged, r.counts.updated), (33, 0));
    assert_eq!(r.tags_from_index, 0);
    assert_eq!(r.aws_calls["ListTags"], 33, "{:?}", r.aws_calls);
    assert!(
        r.notes.iter().any(
            |n| n.starts_with("bulk tags through the tagging API not used (")
                && n.contains("GetResources")
                && n.ends_with("ListTags per model instead")
        ),
        "{:?}",
        r.notes
    );
    assert_eq!(documents(&catalog), before);

    // test-connection says the same: a warning naming the action, for the denied user.
    let cfg = workflow(&moto.endpoint(), keys);
    let clients = Clients::new(cfg.aws(), &ClientOptions::default())
        .await
        .unwrap();
    let report = test_connection(&clients).await;
    let step = report
        .steps
        .iter()
        .find(|s| s.name == BULK_TAGS_STEP)
        .expect("the bulk-tags step");
    assert_eq!(step.status, StepStatus::Warning, "{step:?}");
    assert!(
        step.detail
            .as_deref()
            .is_some_and(|d| d.contains("GetResources, ingestion skips reading tags")),
        "{step:?}"
    );
}

#[tokio::test]
async fn test_connection_passes_the_bulk_tags_step_where_the_tagging_api_answers() {
    let moto = MotoServer::start().await.unwrap();
    let sm = sagemaker_client(&moto.endpoint(), None);
    sm.create_model()
        .model_name("one")
        .execution_role_arn(ROLE)
        .primary_container(ContainerDefinition::builder().image(IMAGE).build())
        .send()
        .await
        .unwrap();
    let cfg = workflow(&moto.endpoint(), None);
    let clients = Clients::new(cfg.aws(), &ClientOptions::default())
        .await
        .unwrap();
    let report = test_connection(&clients).await;
    let step = report
        .steps
        .iter()
        .find(|s| s.name == BULK_TAGS_STEP)
        .expect("the bulk-tags step");
    assert_eq!(step.status, StepStatus::Passed, "{step:?}");
}

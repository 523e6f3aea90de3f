//! The model registry against moto, which implements model package groups and packages (and
//! Search over both):
//! - a group becomes an ML model named after it (as OpenMetadata's connector makes it), with
//!   its description, tags and versions: number, approval status, inference images and
//!   artifacts, metrics locations, and the models deployed from each version;
//! - Search and the List/Describe calls build the same documents; a new approval updates the
//!   group and nothing else;
//! - filter patterns and mark-deleted apply to groups; a group named like a model is left out
//!   with a warning; a failed registry listing makes the listing incomplete (nothing deleted);
//! - into OpenMetadata, a group is a `CreateMlModel` without `mlStore`, valid by its schema.

use std::sync::Arc;

use aws_sdk_sagemaker::types::{
    ContainerDefinition, InferenceSpecification, MetricsSource, ModelApprovalStatus, ModelMetrics,
    ModelPackageContainerDefinition, ModelQuality, Tag,
};
use aws_sdk_sagemaker::Client;
use sagebridge_catalog::{Catalog, ListQuery, MlModel, SqliteCatalog};
use sagebridge_ingest::config::WorkflowConfig;
use sagebridge_ingest::runner::{run, run_into, RunOptions, RunReport};
use sagebridge_testkit::{
    sagemaker_client, sagemaker_client_with, FakeOpenMetadata, MotoIam, MotoServer,
    TestClientOptions,
};
use serde_json::{json, Value};

#[path = "support/schemas.rs"]
mod schemas;

const ROLE: &str = "arn:aws:iam::123456789012:role/sm";
const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn:1";
const ARTIFACT: &str = "s3://bucket/churn/v1/model.tar.gz";
const STATS: &str = "s3://bucket/churn/v1/statistics.json";

/// A workflow into the catalog; `keys` replaces the default credentials, `extra` adds lines
/// under `sourceConfig.config`.
fn workflow(endpoint: &str, keys: Option<(&str, &str)>, extra: &str) -> WorkflowConfig {
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
{extra}"
    );
    WorkflowConfig::parse("wf.yaml", &text, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

async fn ingest(cfg: &WorkflowConfig, catalog: &Arc<SqliteCatalog>) -> RunReport {
    run_into(cfg, catalog.clone(), &RunOptions::default())
        .await
        .unwrap()
}

fn models(catalog: &SqliteCatalog) -> Vec<MlModel> {
    catalog
        .list_models(&ListQuery {
            service: Some("sm".into()),
            include_deleted: true,
            ..Default::default()
        })
        .unwrap()
}

fn model(catalog: &SqliteCatalog, name: &str) -> MlModel {
    models(catalog)
        .into_iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("{name} not in the catalog"))
}

/// A document without what the catalog assigns (ids, times, versions).
fn document(m: &MlModel) -> Value {
    let mut v = serde_json::to_value(m).unwrap();
    let doc = v.as_object_mut().unwrap();
    for key in ["id", "updatedAt", "version", "href"] {
        doc.remove(key);
    }
    doc["service"].as_object_mut().unwrap().remove("id");
    v
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// Seeds the registry: `churn-group` (described, tagged) with version 1 (approved, an image,
/// artifacts and a metrics report; model `churn-v1` deployed from it) and version 2 (pending),
/// and `empty-group` without versions; plus a plain model. Returns version 2's ARN.
async fn seed_registry(sm: &Client) -> String {
    sm.create_model_package_group()
        .model_package_group_name("churn-group")
        .model_package_group_description("Churn models of the growth team")
        .tags(tag("team", "growth"))
        .send()
        .await
        .unwrap();
    sm.create_model_package_group()
        .model_package_group_name("empty-group")
        .send()
        .await
        .unwrap();
    let spec = InferenceSpecification::builder()
        .containers(
            ModelPackageContainerDefinition::builder()
                .image(IMAGE)
                .model_data_url(ARTIFACT)
                .build(),
        )
        .supported_content_types("text/csv")
        .supported_response_mime_types("text/csv")
        .build();
    let metrics = ModelMetrics::builder()
        .model_quality(
            ModelQuality::builder()
                .statistics(
                    MetricsSource::builder()
                        .content_type("application/json")
                        .s3_uri(STATS)
                        .build(),
                )
                .build(),
        )
        .build();
    let v1 = sm
        .create_model_package()
        .model_package_group_name("churn-group")
        .inference_specification(spec.clone())
        .model_metrics(metrics)
        .model_approval_status(ModelApprovalStatus::Approved)
        .send()
        .await
        .unwrap()
        .model_package_arn
        .unwrap();
    let v2 = sm
        .create_model_package()
        .model_package_group_name("churn-group")
        .inference_specification(spec)
        .model_approval_status(ModelApprovalStatus::PendingManualApproval)
        .send()
        .await
        .unwrap()
        .model_package_arn
        .unwrap();
    sm.create_model()
        .model_name("churn-v1")
        .execution_role_arn(ROLE)
        .primary_container(
            ContainerDefinition::builder()
                .model_package_name(&v1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    sm.create_model()
        .model_name("plain")
        .execution_role_arn(ROLE)
        .primary_container(
            ContainerDefinition::builder()
                .image(IMAGE)
                .model_data_url("s3://bucket/plain/model.tar.gz")
                .build(),
        )
        .send()
        .await
        .unwrap();
    v2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_become_models_with_their_versions_through_search_or_one_by_one() {
    let moto = MotoServer::start().await.unwrap();
    let v2 = seed_registry(&sagemaker_client(&moto.endpoint(), None)).await;
    let dir = tempfile::tempdir().unwrap();
    let bulk = Arc::new(SqliteCatalog::open(dir.path().join("bulk.db")).unwrap());
    let classic = Arc::new(SqliteCatalog::open(dir.path().join("classic.db")).unwrap());

    // Search allowed (moto serves groups and packages, not models).
    let cfg = workflow(&moto.endpoint(), None, "");
    let r = ingest(&cfg, &bulk).await;
    assert_eq!(r.exit_code(), 0, "{}", r.summary());
    assert!(r.warnings.is_empty(), "{}", r.summary());
    assert_eq!(r.model_package_groups, 2);
    assert_eq!(
        (r.counts.listed, r.counts.created),
        (4, 4),
        "{}",
        r.summary()
    );
    // Groups and their versions came from Search: nothing described one by one.
    for op in [
        "DescribeModelPackageGroup",
        "ListModelPackages",
        "DescribeModelPackage",
    ] {
        assert!(!r.aws_calls.contains_key(op), "{op}: {:?}", r.aws_calls);
    }
    assert_eq!(r.aws_calls["ListModelPackageGroups"], 1);

    let group = model(&bulk, "churn-group");
    assert_eq!(group.fully_qualified_name, "sm.churn-group");
    assert_eq!(group.algorithm, "mlmodel");
    assert!(group.ml_store.is_none());
    assert!(group.source_url.is_none());
    assert_eq!(
        group.description.as_deref(),
        Some("Churn models of the growth team")
    );
    let tags: Vec<&str> = group.tags.iter().map(|t| t.tag_fqn.as_str()).collect();
    assert_eq!(tags, vec!["team.growth"]);
    let ext = group.extension.clone().unwrap();
    assert!(ext["modelPackageGroupArn"]
        .as_str()
        .unwrap()
        .ends_with(":model-package-group/churn-group"));
    let versions = ext["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{ext}");
    assert_eq!(versions[0]["version"], 1);
    assert_eq!(versions[0]["approvalStatus"], "Approved");
    assert_eq!(
        versions[0]["containers"],
        json!([{"image": IMAGE, "modelDataUrl": ARTIFACT}])
    );
    assert_eq!(
        versions[0]["metrics"],
        json!([{"metric": "modelQuality.statistics", "s3Uri": STATS}])
    );
    assert_eq!(versions[0]["deployedModels"], json!(["churn-v1"]));
    assert_eq!(versions[1]["version"], 2);
    assert_eq!(versions[1]["approvalStatus"], "PendingManualApproval");
    assert_eq!(versions[1]["deployedModels"], json!([]));
    assert!(versions[1].get("metrics").is_none());
    let empty = model(&bulk, "empty-group");
    assert_eq!(empty.extension.unwrap()["versions"], json!([]));
    // The deployed model is still a model of its own, its container naming the version.
    let deployed = model(&bulk, "churn-v1");
    assert_eq!(
        deployed.extension.unwrap()["containers"][0]["modelPackageName"],
        versions[0]["arn"]
    );

    // Search denied: groups described, versions listed and described, the same documents.
    let iam = MotoIam::new(&moto.endpoint());
    let no_search = iam
        .user_with_actions(
            "no-search",
            &[
                "sagemaker:ListModels",
                "sagemaker:DescribeModel",
                "sagemaker:ListTags",
                "sagemaker:ListEndpoints",
                "sagemaker:ListFeatureGroups",
                "sagemaker:DescribeTrainingJob",
                "sagemaker:ListModelPackageGroups",
                "sagemaker:DescribeModelPackageGroup",
                "sagemaker:ListModelPackages",
                "sagemaker:DescribeModelPackage",
            ],
        )
        .await
        .unwrap();
    let admin = iam
        .user_with_actions("admin", &["sagemaker:*"])
        .await
        .unwrap();
    moto.reset_auth(0).await.unwrap();
    let keys = Some((
        no_search.access_key_id.as_str(),
        no_search.secret_access_key.as_str(),
    ));
    let cfg = workflow(&moto.endpoint(), keys, "");
    let r = ingest(&cfg, &classic).await;
    assert_eq!(r.exit_code(), 0, "{}", r.summary());
    assert_eq!(r.counts.created, 4, "{}", r.summary());
    assert_eq!(r.aws_calls["DescribeModelPackageGroup"], 2);
    assert_eq!(r.aws_calls["ListModelPackages"], 2);
    assert_eq!(r.aws_calls["DescribeModelPackage"], 2);
    assert!(
        r.notes.iter().any(|n| n.contains("ModelPackageGroup")),
        "{:?}",
        r.notes
    );
    let (a, b) = (models(&bulk), models(&classic));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(document(x), document(y), "{}", x.name);
    }

    // Read again the other way: nothing changed, no second version of anything.
    let r = ingest(&cfg, &bulk).await;
    assert_eq!(
        (r.counts.unchanged, r.counts.updated),
        (4, 0),
        "{}",
        r.summary()
    );

    // Version 2 approved: the group is updated, the models are not.
    let sm = sagemaker_client_with(
        &moto.endpoint(),
        &TestClientOptions {
            access_key_id: admin.access_key_id.clone(),
            secret_access_key: admin.secret_access_key.clone(),
            ..TestClientOptions::default()
        },
    );
    sm.update_model_package()
        .model_package_arn(&v2)
        .model_approval_status(ModelApprovalStatus::Approved)
        .send()
        .await
        .unwrap();
    let r = ingest(&cfg, &bulk).await;
    assert_eq!(
        (r.counts.unchanged, r.counts.updated),
        (3, 1),
        "{}",
        r.summary()
    );
    let group = model(&bulk, "churn-group");
    assert_eq!(
        group.extension.unwrap()["versions"][1]["approvalStatus"],
        "Approved"
    );
    assert_eq!(bulk.model_versions("sm.churn-group").unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_mark_deleted_name_clashes_and_a_failed_registry_listing() {
    let moto = MotoServer::start().await.unwrap();
    let sm = sagemaker_client(&moto.endpoint(), None);
    seed_registry(&sm).await;
    // A model named like a group: the model keeps the name.
    sm.create_model()
        .model_name("empty-group")
        .execution_role_arn(ROLE)
        .primary_container(ContainerDefinition::builder().image(IMAGE).build())
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(SqliteCatalog::open(dir.path().join("c.db")).unwrap());

    let r = ingest(&workflow(&moto.endpoint(), None, ""), &catalog).await;
    assert_eq!(r.exit_code(), 0, "{}", r.summary());
    assert_eq!(r.counts.created, 4, "{}", r.summary());
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(
        r.warnings[0].contains("model package group empty-group not ingested"),
        "{:?}",
        r.warnings
    );
    let clash = model(&catalog, "empty-group");
    assert!(clash.extension.unwrap().get("modelArn").is_some());

    // Excluded by the filter: the group is filtered, then marked deleted, like a model.
    let exclude = "      mlModelFilterPattern:\n        excludes: ['^churn-group$']\n";
    let r = ingest(&workflow(&moto.endpoint(), None, exclude), &catalog).await;
    assert_eq!(r.exit_code(), 0, "{}", r.summary());
    assert_eq!(
        (r.counts.filtered, r.counts.deleted),
        (1, 1),
        "{}",
        r.summary()
    );
    assert!(model(&catalog, "churn-group").deleted);

    // The registry cannot be listed: the run is incomplete and nothing is marked deleted,
    // although the group is missing from what it saw.
    let iam = MotoIam::new(&moto.endpoint());
    let no_registry = iam
        .user_with_actions(
            "no-registry",
            &[
                "sagemaker:ListModels",
                "sagemaker:DescribeModel",
                "sagemaker:ListTags",
                "sagemaker:Search",
            ],
        )
        .await
        .unwrap();
    moto.reset_auth(0).await.unwrap();
    let keys = Some((
        no_registry.access_key_id.as_str(),
        no_registry.secret_access_key.as_str(),
    ));
    let r = ingest(&workflow(&moto.endpoint(), keys, ""), &catalog).await;
    assert!(!r.listing_complete, "{}", r.summary());
    assert_eq!(r.exit_code(), 3);
    assert_eq!(
        (r.counts.deleted, r.counts.failed),
        (0, 0),
        "{}",
        r.summary()
    );
    let failure = &r.failures[0];
    assert_eq!(failure.model, "(model registry listing)");
    assert!(
        failure.error.contains("sagemaker:ListModelPackageGroups"),
        "{failure:?}"
    );
    assert!(!model(&catalog, "churn-v1").deleted);
}

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.om-test-jwt.signature";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn into_openmetadata_a_group_is_a_create_ml_model_without_ml_store() {
    let moto = MotoServer::start().await.unwrap();
    seed_registry(&sagemaker_client(&moto.endpoint(), None)).await;
    let om = FakeOpenMetadata::start(TOKEN).await.unwrap();
    let text = format!(
        "source:
  type: sagemaker
  serviceName: local_sagemaker
  serviceConnection:
    config:
      type: SageMaker
      awsConfig:
        awsAccessKeyId: testing
        awsSecretAccessKey: testing
        awsRegion: us-east-1
        endPointURL: {}
  sourceConfig:
    config:
      type: MlModelMetadata
      markDeletedMlModels: true
sink:
  type: metadata-rest
  config: {{}}
workflowConfig:
  openMetadataServerConfig:
    hostPort: {}/api
    authProvider: openmetadata
    securityConfig:
      jwtToken: {TOKEN}
",
        moto.endpoint(),
        om.url()
    );
    let cfg = WorkflowConfig::parse("om.yaml", &text, &|_| None).unwrap();
    let r = run(&cfg, &RunOptions::default()).await.unwrap();
    assert_eq!(r.exit_code(), 0, "{}", r.summary());
    assert_eq!(r.counts.created, 4, "{}", r.summary());

    let schema = schemas::validator("api/data/createMlModel.json");
    let mut group = None;
    let mut seen = None;
    for req in om.requests() {
        let path = req.path.split('?').next().unwrap_or(&req.path).to_owned();
        let Some(body) = req.body.clone() else {
            continue;
        };
        if path == "/api/v1/mlmodels/bulk" {
            for row in body.as_array().unwrap() {
                let errors: Vec<String> = schema.iter_errors(row).map(|e| e.to_string()).collect();
                assert!(errors.is_empty(), "{errors:?}\n{row}");
                if row["name"] == "churn-group" {
                    group = Some(row.clone());
                }
            }
        }
        if path == "/api/v1/mlmodels/deleteStale" {
            seen = Some(body["seenFqns"].clone());
        }
    }
    // As the recorded 2.0.7 client sent it: the group's name, `mlmodel`, no `mlStore`.
    let group = group.expect("the group in a bulk PUT");
    assert_eq!(group["algorithm"], "mlmodel");
    assert_eq!(group["service"], "local_sagemaker");
    assert!(group.get("mlStore").is_none(), "{group}");
    assert_eq!(group["description"], "Churn models of the growth team");
    assert!(group["sourceHash"].is_string());
    let seen = seen.expect("a deleteStale");
    assert!(
        seen.as_array()
            .unwrap()
            .contains(&json!("local_sagemaker.churn-group")),
        "{seen}"
    );
}

//! The control store on real SQLite files: services, pipelines, runs, gateway models and API keys,
//! secrets at rest, the secret key, and migration from the previous schema.

use std::path::{Path, PathBuf};

use sagebridge_catalog::{
    hash_api_key, ApiKeyInput, Catalog, CatalogError, ClearAwsConfig, ControlStore,
    EntityReference, GatewayCredentials, GatewayModel, GatewayModelInput, IngestionRun, KeySource,
    ListQuery, MlModel, MlModelService, ModelWrite, NewRun, PipelineInput, RunProgress, RunStatus,
    RunTrigger, SecretKey, ServiceInput, SqliteCatalog, UsageQuery, UsageRecord, REDACTED,
    RUN_LOG_LINES, SCHEMA_VERSION,
};
use serde_json::{json, Value};
use tempfile::TempDir;

const SECRET: &str = "SENTINEL-secret-access-key-7f3a9c";
const TOKEN: &str = "SENTINEL-session-token-51e2d8";
const MODEL_SECRET: &str = "SENTINEL-gateway-model-secret-a4b0";
const NEW_SECRET: &str = "SENTINEL-rotated-secret-c9d1";

fn temp_db() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("catalog.db");
    (dir, path)
}

fn key(byte: u8) -> SecretKey {
    SecretKey::from_bytes([byte; 32])
}

fn open(path: &Path) -> SqliteCatalog {
    SqliteCatalog::open_with_key(path, key(7)).expect("open with key")
}

fn aws(region: &str) -> ClearAwsConfig {
    ClearAwsConfig::new(json!({
        "awsAccessKeyId": "AKIAEXAMPLE",
        "awsSecretAccessKey": SECRET,
        "awsSessionToken": TOKEN,
        "awsRegion": region,
    }))
}

fn service_input(name: &str) -> ServiceInput {
    ServiceInput {
        name: name.to_owned(),
        description: Some("production account".to_owned()),
        aws_config: aws("us-east-1"),
    }
}

fn pipeline_input(name: &str, service_id: &str) -> PipelineInput {
    PipelineInput {
        name: name.to_owned(),
        service_id: service_id.to_owned(),
        description: None,
        source_config: json!({"type": "MlModelMetadata", "markDeletedMlModels": true}),
        schedule: Some("0 */6 * * *".to_owned()),
        enabled: true,
    }
}

fn gateway_input(name: &str, credentials: GatewayCredentials) -> GatewayModelInput {
    GatewayModelInput {
        name: name.to_owned(),
        spec: json!({"kind": "chat", "endpointName": format!("{name}-endpoint")}),
        credentials,
    }
}

fn model(service: &str, name: &str) -> ModelWrite {
    MlModel {
        name: name.to_owned(),
        fully_qualified_name: format!("{service}.{name}"),
        algorithm: "mlmodel".to_owned(),
        service: EntityReference::ml_model_service("sid", service),
        source_hash: Some("h".to_owned()),
        ..MlModel::default()
    }
    .into()
}

fn file_bytes(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).expect("catalog file");
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if let Ok(more) = std::fs::read(PathBuf::from(wal)) {
        bytes.extend(more);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[test]
fn services_are_created_read_updated_and_listed() {
    let (_dir, path) = temp_db();
    let catalog = open(&path);
    let created = catalog
        .create_service(&service_input("prod"))
        .expect("create");
    assert_eq!(created.name, "prod");
    assert_eq!(created.version, 0.1);
    assert!(created.managed);
    assert!(created.secrets.aws_secret_access_key && created.secrets.aws_session_token);
    assert_eq!(
        created.aws_config,
        json!({"awsAccessKeyId": "AKIAEXAMPLE", "awsRegion": "us-east-1"})
    );
    assert_eq!(created.description.as_deref(), Some("production account"));
    assert_eq!(catalog.service(&created.id).expect("by id"), created);
    assert_eq!(catalog.service_by_name("prod").expect("by name"), created);

    // The OpenMetadata-shaped document of the same service has no secret either.
    let document = catalog.get_service("prod").expect("get").expect("document");
    assert_eq!(document.id, created.id);
    assert_eq!(
        document.connection,
        Some(json!({"config": {"type": "SageMaker", "awsConfig":
            {"awsAccessKeyId": "AKIAEXAMPLE", "awsRegion": "us-east-1"}}}))
    );

    // An update that leaves the secret key out keeps it, and `null` removes the token.
    let updated = catalog
        .update_service(
            &created.id,
            &ServiceInput {
                name: "prod".to_owned(),
                description: None,
                aws_config: ClearAwsConfig::new(json!({
                    "awsAccessKeyId": "AKIAEXAMPLE",
                    "awsRegion": "eu-west-1",
                    "awsSessionToken": null,
                })),
            },
        )
        .expect("update");
    assert_eq!(updated.id, created.id);
    assert_eq!(updated.version, 0.2);
    assert_eq!(updated.description, None);
    assert!(updated.secrets.aws_secret_access_key);
    assert!(!updated.secrets.aws_session_token);
    assert_eq!(updated.aws_config["awsRegion"], "eu-west-1");
    let clear = catalog.service_with_secrets(&created.id).expect("secrets");
    assert_eq!(
        clear.aws_config.expose(),
        &json!({"awsAccessKeyId": "AKIAEXAMPLE", "awsRegion": "eu-west-1",
                "awsSecretAccessKey": SECRET})
    );

    // The redaction marker sent back keeps the secret too; the same input changes nothing.
    let marker = ServiceInput {
        name: "prod".to_owned(),
        description: None,
        aws_config: ClearAwsConfig::new(json!({
            "awsAccessKeyId": "AKIAEXAMPLE",
            "awsRegion": "eu-west-1",
            "awsSecretAccessKey": REDACTED,
        })),
    };
    let same = catalog.update_service(&created.id, &marker).expect("same");
    assert_eq!(same.version, 0.2);
    assert_eq!(
        catalog
            .service_with_secrets(&created.id)
            .expect("secrets")
            .aws_config
            .expose()["awsSecretAccessKey"],
        SECRET
    );

    catalog.create_service(&service_input("dev")).expect("dev");
    // A service ingestion created from a workflow file is listed too, unmanaged.
    catalog
        .upsert_service(&MlModelService {
            name: "cli".to_owned(),
            connection: Some(json!({"config": {"awsConfig": {"awsRegion": "ap-south-1",
                "awsSecretAccessKey": REDACTED}}})),
            ..MlModelService::default()
        })
        .expect("cli service");
    let listed = catalog.services().expect("list");
    assert_eq!(
        listed.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["cli", "dev", "prod"]
    );
    assert!(!listed[0].managed);
    assert_eq!(listed[0].aws_config, json!({"awsRegion": "ap-south-1"}));
    assert!(!listed[0].secrets.any());
}

#[test]
fn service_names_conflict_and_unknown_ids_are_not_found() {
    let catalog = SqliteCatalog::open_in_memory_with_key(key(1)).expect("open");
    let prod = catalog
        .create_service(&service_input("prod"))
        .expect("create");
    assert!(matches!(
        catalog.create_service(&service_input("prod")),
        Err(CatalogError::Conflict { kind: "service", ref name }) if name == "prod"
    ));
    // A name ingestion already recorded is taken as well.
    catalog
        .upsert_service(&MlModelService {
            name: "cli".to_owned(),
            ..MlModelService::default()
        })
        .expect("cli");
    assert!(matches!(
        catalog.create_service(&service_input("cli")),
        Err(CatalogError::Conflict { .. })
    ));
    for result in [
        catalog.service("nope").map(|_| ()),
        catalog.service_by_name("nope").map(|_| ()),
        catalog.service_with_secrets("nope").map(|_| ()),
        catalog
            .update_service("nope", &service_input("x"))
            .map(|_| ()),
        catalog.delete_service("nope", true).map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(CatalogError::NotFound { kind: "service", ref key }) if key == "nope"),
            "{result:?}"
        );
    }
    assert!(matches!(
        catalog.update_service(&prod.id, &service_input("renamed")),
        Err(CatalogError::Invalid { what: "name", .. })
    ));
    assert!(matches!(
        catalog.create_service(&ServiceInput {
            aws_config: ClearAwsConfig::new(json!(["not", "an", "object"])),
            ..service_input("bad")
        }),
        Err(CatalogError::Invalid {
            what: "awsConfig",
            ..
        })
    ));
    assert!(matches!(
        catalog.create_service(&ServiceInput {
            aws_config: ClearAwsConfig::new(json!({"awsSecretAccessKey": 42})),
            ..service_input("bad")
        }),
        Err(CatalogError::Invalid {
            what: "awsConfig",
            ..
        })
    ));
    assert!(matches!(
        catalog.create_service(&service_input(" ")),
        Err(CatalogError::Invalid { .. })
    ));
}

#[test]
fn pipelines_crud_belong_to_an_existing_service() {
    let (_dir, path) = temp_db();
    let catalog = open(&path);
    let prod = catalog
        .create_service(&service_input("prod"))
        .expect("prod");
    let dev = catalog.create_service(&service_input("dev")).expect("dev");
    assert!(matches!(
        catalog.create_pipeline(&pipeline_input("p", "no-such-service")),
        Err(CatalogError::NotFound {
            kind: "service",
            ..
        })
    ));
    let nightly = catalog
        .create_pipeline(&pipeline_input("prod-nightly", &prod.id))
        .expect("create");
    assert_eq!(nightly.service_id, prod.id);
    assert_eq!(nightly.service_name, "prod");
    assert_eq!(nightly.schedule.as_deref(), Some("0 */6 * * *"));
    assert_eq!(
        nightly.source_config,
        json!({"type": "MlModelMetadata", "markDeletedMlModels": true})
    );
    assert_eq!(catalog.pipeline(&nightly.id).expect("get"), nightly);
    assert_eq!(
        catalog.pipeline_by_name("prod-nightly").expect("by name"),
        nightly
    );
    assert!(matches!(
        catalog.create_pipeline(&pipeline_input("prod-nightly", &dev.id)),
        Err(CatalogError::Conflict {
            kind: "ingestion pipeline",
            ..
        })
    ));
    let manual = catalog
        .create_pipeline(&PipelineInput {
            schedule: Some("  ".to_owned()),
            ..pipeline_input("dev-manual", &dev.id)
        })
        .expect("manual");
    assert_eq!(manual.schedule, None);

    let updated = catalog
        .update_pipeline(
            &nightly.id,
            &PipelineInput {
                schedule: None,
                enabled: false,
                ..pipeline_input("prod-hourly", &prod.id)
            },
        )
        .expect("update");
    assert_eq!(updated.id, nightly.id);
    assert_eq!(updated.name, "prod-hourly");
    assert!(!updated.enabled);
    assert_eq!(updated.schedule, None);
    assert_eq!(updated.created_at, nightly.created_at);
    assert!(matches!(
        catalog.update_pipeline(&nightly.id, &pipeline_input("dev-manual", &prod.id)),
        Err(CatalogError::Conflict { .. })
    ));
    assert!(matches!(
        catalog.update_pipeline(&nightly.id, &pipeline_input("prod-hourly", &dev.id)),
        Err(CatalogError::Invalid {
            what: "service",
            ..
        })
    ));
    assert!(matches!(
        catalog.update_pipeline("nope", &pipeline_input("x", &prod.id)),
        Err(CatalogError::NotFound {
            kind: "ingestion pipeline",
            ..
        })
    ));
    assert!(matches!(
        catalog.create_pipeline(&PipelineInput {
            source_config: json!({"awsSecretAccessKey": "x"}),
            ..pipeline_input("leaky", &prod.id)
        }),
        Err(CatalogError::Invalid {
            what: "sourceConfig",
            ..
        })
    ));

    let names = |list: Vec<sagebridge_catalog::IngestionPipeline>| {
        list.into_iter().map(|p| p.name).collect::<Vec<_>>()
    };
    assert_eq!(
        names(catalog.pipelines(None).expect("all")),
        ["dev-manual", "prod-hourly"]
    );
    assert_eq!(
        names(catalog.pipelines(Some(&dev.id)).expect("dev")),
        ["dev-manual"]
    );
    assert_eq!(catalog.delete_pipeline(&manual.id).expect("delete"), 0);
    assert!(matches!(
        catalog.delete_pipeline(&manual.id),
        Err(CatalogError::NotFound { .. })
    ));
    assert!(matches!(
        catalog.pipeline(&manual.id),
        Err(CatalogError::NotFound { .. })
    ));
}

#[test]
fn a_run_goes_from_queued_to_finished_with_progress_and_bounded_logs() {
    let (_dir, path) = temp_db();
    let catalog = open(&path);
    let prod = catalog
        .create_service(&service_input("prod"))
        .expect("prod");
    let pipeline = catalog
        .create_pipeline(&pipeline_input("nightly", &prod.id))
        .expect("pipeline");

    let first = catalog
        .create_run(&NewRun::new(&pipeline.id, RunTrigger::Manual))
        .expect("queued");
    assert_eq!(first.run.status, RunStatus::Queued);
    assert_eq!(first.run.service, "prod");
    assert_eq!(first.pipeline_id.as_deref(), Some(pipeline.id.as_str()));
    assert_eq!(first.trigger, RunTrigger::Manual);
    assert_eq!(first.run.finished_at, None);

    // One run at a time: another queued run is refused, a skipped one is recorded.
    let busy = catalog.create_run(&NewRun::new(&pipeline.id, RunTrigger::Schedule));
    assert!(
        matches!(&busy, Err(CatalogError::PipelineBusy { pipeline, run_id })
            if pipeline == "nightly" && *run_id == first.run.id),
        "{busy:?}"
    );
    let skipped = catalog
        .create_run(&NewRun {
            status: RunStatus::Skipped,
            ..NewRun::new(&pipeline.id, RunTrigger::Schedule)
        })
        .expect("skipped");
    assert_eq!(skipped.run.status, RunStatus::Skipped);
    assert!(skipped.run.finished_at.is_some());
    assert!(matches!(
        catalog.create_run(&NewRun {
            status: RunStatus::Success,
            ..NewRun::new(&pipeline.id, RunTrigger::Manual)
        }),
        Err(CatalogError::Invalid { .. })
    ));
    assert!(matches!(
        catalog.create_run(&NewRun::new("nope", RunTrigger::Manual)),
        Err(CatalogError::NotFound {
            kind: "ingestion pipeline",
            ..
        })
    ));
    assert_eq!(
        catalog
            .active_run(&pipeline.id)
            .expect("active")
            .map(|r| r.run.id),
        Some(first.run.id.clone())
    );

    let running = catalog.start_run(&first.run.id).expect("start");
    assert_eq!(running.run.status, RunStatus::Running);

    let lines: Vec<String> = (1..=150).map(|i| format!("line {i}")).collect();
    catalog
        .record_run_progress(
            &first.run.id,
            RunProgress {
                models_done: 3,
                models_total: Some(10),
            },
            &lines,
        )
        .expect("progress");
    let more: Vec<String> = (151..=260).map(|i| format!("line {i}")).collect();
    catalog
        .record_run_progress(
            &first.run.id,
            RunProgress {
                models_done: 7,
                models_total: Some(10),
            },
            &more,
        )
        .expect("more progress");
    let with_log = catalog.pipeline_run(&first.run.id).expect("get");
    assert_eq!(
        with_log.progress,
        RunProgress {
            models_done: 7,
            models_total: Some(10)
        }
    );
    assert_eq!(with_log.log_lines.len(), RUN_LOG_LINES);
    assert_eq!(
        with_log.log_lines.first().map(String::as_str),
        Some("line 61")
    );
    assert_eq!(
        with_log.log_lines.last().map(String::as_str),
        Some("line 260")
    );
    let tail = catalog.run_log(&first.run.id, 258).expect("tail");
    assert_eq!(
        tail.iter()
            .map(|l| (l.seq, l.line.as_str()))
            .collect::<Vec<_>>(),
        [(259, "line 259"), (260, "line 260")]
    );
    assert!(matches!(
        catalog.record_run_progress("nope", RunProgress::default(), &[]),
        Err(CatalogError::NotFound {
            kind: "ingestion run",
            ..
        })
    ));

    let report = json!({"counts": {"listed": 10, "created": 10}});
    let done = catalog
        .finish_run(&first.run.id, RunStatus::Success, Some(&report))
        .expect("finish");
    assert_eq!(done.run.status, RunStatus::Success);
    assert_eq!(done.run.report, report);
    assert!(done.run.finished_at.is_some());
    assert!(catalog.active_run(&pipeline.id).expect("none").is_none());
    assert!(matches!(
        catalog.finish_run(&first.run.id, RunStatus::Running, None),
        Err(CatalogError::Invalid { .. })
    ));

    let second = catalog
        .create_run(&NewRun {
            status: RunStatus::Running,
            ..NewRun::new(&pipeline.id, RunTrigger::Schedule)
        })
        .expect("second");
    let listed = catalog.pipeline_runs(&pipeline.id, 10).expect("list");
    assert_eq!(
        listed.iter().map(|r| r.run.id.as_str()).collect::<Vec<_>>(),
        [
            second.run.id.as_str(),
            skipped.run.id.as_str(),
            first.run.id.as_str()
        ],
        "newest first"
    );
    assert!(listed.iter().all(|r| r.log_lines.is_empty()));
    assert_eq!(
        catalog.pipeline_runs(&pipeline.id, 1).expect("one").len(),
        1
    );
    assert!(matches!(
        catalog.pipeline_runs("nope", 10),
        Err(CatalogError::NotFound { .. })
    ));

    // The run serializes flat, as the admin API shows it.
    let shown = serde_json::to_value(&done).expect("json");
    assert_eq!(shown["status"], "success");
    assert_eq!(shown["trigger"], "manual");
    assert_eq!(shown["pipelineId"], json!(pipeline.id));
    assert_eq!(
        shown["progress"],
        json!({"modelsDone": 7, "modelsTotal": 10})
    );

    // A running pipeline cannot be deleted; the runs go with the pipeline otherwise.
    assert!(matches!(
        catalog.delete_pipeline(&pipeline.id),
        Err(CatalogError::PipelineBusy { .. })
    ));
    catalog
        .finish_run(&second.run.id, RunStatus::Failed, None)
        .expect("fail");
    assert_eq!(catalog.delete_pipeline(&pipeline.id).expect("delete"), 3);
    assert!(matches!(
        catalog.pipeline_run(&first.run.id),
        Err(CatalogError::NotFound { .. })
    ));
}

#[test]
fn runs_left_running_by_a_crash_are_interrupted_at_the_next_start() {
    let (_dir, path) = temp_db();
    let (running_id, queued_id, finished_id, other_pipeline) = {
        let catalog = open(&path);
        let prod = catalog
            .create_service(&service_input("prod"))
            .expect("prod");
        let a = catalog
            .create_pipeline(&pipeline_input("a", &prod.id))
            .expect("a");
        let b = catalog
            .create_pipeline(&pipeline_input("b", &prod.id))
            .expect("b");
        let c = catalog
            .create_pipeline(&pipeline_input("c", &prod.id))
            .expect("c");
        let running = catalog
            .create_run(&NewRun {
                status: RunStatus::Running,
                ..NewRun::new(&a.id, RunTrigger::Schedule)
            })
            .expect("running");
        let queued = catalog
            .create_run(&NewRun::new(&b.id, RunTrigger::Manual))
            .expect("queued");
        let finished = catalog
            .create_run(&NewRun::new(&c.id, RunTrigger::Manual))
            .expect("finished");
        catalog
            .finish_run(&finished.run.id, RunStatus::Success, None)
            .expect("finish");
        // A `sagebridge ingest` run of another process, still going.
        catalog
            .record_run(&IngestionRun {
                id: "cli-run".to_owned(),
                service: "prod".to_owned(),
                started_at: 1,
                finished_at: None,
                status: RunStatus::Running,
                report: json!({}),
            })
            .expect("cli run");
        // The process dies here: nothing records the end of the first two runs.
        (running.run.id, queued.run.id, finished.run.id, a.id)
    };
    let catalog = open(&path);
    let mut interrupted = catalog.mark_running_as_interrupted().expect("mark");
    interrupted.sort();
    let mut expected = vec![running_id.clone(), queued_id.clone()];
    expected.sort();
    assert_eq!(interrupted, expected);
    for id in [&running_id, &queued_id] {
        let run = catalog.pipeline_run(id).expect("run");
        assert_eq!(run.run.status, RunStatus::Interrupted);
        assert!(run.run.finished_at.is_some());
    }
    assert_eq!(
        catalog.pipeline_run(&finished_id).expect("run").run.status,
        RunStatus::Success
    );
    let cli = catalog.pipeline_run("cli-run").expect("cli");
    assert_eq!(cli.run.status, RunStatus::Running);
    assert_eq!(cli.trigger, RunTrigger::Cli);
    assert_eq!(cli.pipeline_id, None);
    assert!(catalog
        .mark_running_as_interrupted()
        .expect("again")
        .is_empty());
    // The pipeline can run again.
    catalog
        .create_run(&NewRun::new(&other_pipeline, RunTrigger::Manual))
        .expect("new run");
}

#[test]
fn the_legacy_run_record_keeps_what_the_control_plane_added() {
    let catalog = SqliteCatalog::open_in_memory_with_key(key(2)).expect("open");
    let prod = catalog
        .create_service(&service_input("prod"))
        .expect("prod");
    let pipeline = catalog
        .create_pipeline(&pipeline_input("p", &prod.id))
        .expect("pipeline");
    let run = catalog
        .create_run(&NewRun::new(&pipeline.id, RunTrigger::Manual))
        .expect("run");
    catalog
        .record_run_progress(
            &run.run.id,
            RunProgress {
                models_done: 1,
                models_total: Some(2),
            },
            &["listed 2 models".to_owned()],
        )
        .expect("progress");
    // The ingest runner records its run under the same id, as it always did.
    catalog
        .record_run(&IngestionRun {
            id: run.run.id.clone(),
            service: "prod".to_owned(),
            started_at: run.run.started_at,
            finished_at: Some(run.run.started_at + 5),
            status: RunStatus::PartialSuccess,
            report: json!({"counts": {"failed": 1}}),
        })
        .expect("record");
    let stored = catalog.pipeline_run(&run.run.id).expect("get");
    assert_eq!(stored.run.status, RunStatus::PartialSuccess);
    assert_eq!(stored.pipeline_id.as_deref(), Some(pipeline.id.as_str()));
    assert_eq!(stored.trigger, RunTrigger::Manual);
    assert_eq!(stored.progress.models_done, 1);
    assert_eq!(stored.log_lines, ["listed 2 models"]);
    assert_eq!(
        catalog.get_run(&run.run.id).expect("legacy get"),
        Some(stored.run)
    );
}

#[test]
fn deleting_a_service_with_dependents_needs_recursive() {
    let (_dir, path) = temp_db();
    let catalog = open(&path);
    let prod = catalog
        .create_service(&service_input("prod"))
        .expect("prod");
    let keep = catalog
        .create_service(&service_input("keep"))
        .expect("keep");
    let pipeline = catalog
        .create_pipeline(&pipeline_input("prod-nightly", &prod.id))
        .expect("pipeline");
    catalog
        .create_pipeline(&pipeline_input("keep-nightly", &keep.id))
        .expect("other pipeline");
    let run = catalog
        .create_run(&NewRun::new(&pipeline.id, RunTrigger::Manual))
        .expect("run");
    catalog
        .create_gateway_model(&gateway_input(
            "chat",
            GatewayCredentials::Service(prod.id.clone()),
        ))
        .expect("gateway model");
    catalog
        .create_gateway_model(&gateway_input("other", GatewayCredentials::Inherit))
        .expect("other gateway model");
    catalog
        .write_models(&[model("prod", "churn"), model("keep", "fraud")])
        .expect("models");
    catalog
        .write_models(&[ModelWrite {
            model: MlModel {
                source_hash: Some("h2".to_owned()),
                ..model("prod", "churn").model
            },
            ..model("prod", "churn")
        }])
        .expect("second version");

    let refused = catalog.delete_service(&prod.id, false);
    assert!(
        matches!(
            &refused,
            Err(CatalogError::HasDependents { name, pipelines: 1, gateway_models: 1, models: 1 })
                if name == "prod"
        ),
        "{refused:?}"
    );
    // A queued or running run blocks even a recursive delete.
    assert!(matches!(
        catalog.delete_service(&prod.id, true),
        Err(CatalogError::PipelineBusy { .. })
    ));
    catalog
        .finish_run(&run.run.id, RunStatus::Success, None)
        .expect("finish");
    assert!(catalog.service(&prod.id).is_ok(), "nothing was deleted");

    let deleted = catalog.delete_service(&prod.id, true).expect("recursive");
    assert_eq!(deleted.pipelines, ["prod-nightly"]);
    assert_eq!(deleted.gateway_models, ["chat"]);
    assert_eq!(deleted.runs, 1);
    assert_eq!(deleted.models, 1);
    assert!(matches!(
        catalog.service(&prod.id),
        Err(CatalogError::NotFound { .. })
    ));
    assert!(catalog.get_service("prod").expect("doc").is_none());
    assert!(matches!(
        catalog.pipeline(&pipeline.id),
        Err(CatalogError::NotFound { .. })
    ));
    assert!(matches!(
        catalog.pipeline_run(&run.run.id),
        Err(CatalogError::NotFound { .. })
    ));
    assert!(matches!(
        catalog.gateway_model("chat"),
        Err(CatalogError::NotFound { .. })
    ));
    assert!(catalog
        .model_versions("prod.churn")
        .expect("versions")
        .is_empty());
    // Everything of the other service stays.
    assert_eq!(catalog.pipelines(None).expect("pipelines").len(), 1);
    assert!(catalog.gateway_model("other").is_ok());
    assert_eq!(
        catalog
            .list_models(&ListQuery::default())
            .expect("models")
            .len(),
        1
    );

    // A service without dependents goes without `recursive`.
    let empty = catalog
        .create_service(&service_input("empty"))
        .expect("empty");
    assert_eq!(
        catalog.delete_service(&empty.id, false).expect("delete"),
        Default::default()
    );
}

#[test]
fn gateway_models_take_own_or_service_credentials() {
    let (_dir, path) = temp_db();
    let catalog = open(&path);
    let prod = catalog
        .create_service(&service_input("prod"))
        .expect("prod");

    let own = catalog
        .create_gateway_model(&gateway_input(
            "llama",
            GatewayCredentials::Own(ClearAwsConfig::new(json!({
                "awsAccessKeyId": "AKIAOWN",
                "awsSecretAccessKey": MODEL_SECRET,
                "awsRegion": "us-west-2",
            }))),
        ))
        .expect("own");
    assert_eq!(
        own.aws_config,
        Some(json!({"awsAccessKeyId": "AKIAOWN", "awsRegion": "us-west-2"}))
    );
    assert!(own.secrets.aws_secret_access_key);
    assert_eq!(own.service_id, None);
    assert_eq!(
        own.spec,
        json!({"kind": "chat", "endpointName": "llama-endpoint"})
    );

    let shared = catalog
        .create_gateway_model(&gateway_input(
            "embed",
            GatewayCredentials::Service(prod.id.clone()),
        ))
        .expect("service credentials");
    assert_eq!(shared.service_id.as_deref(), Some(prod.id.as_str()));
    assert_eq!(shared.aws_config, None);
    let inherit = catalog
        .create_gateway_model(&GatewayModelInput {
            spec: json!({"name": "plain", "kind": "embedding", "endpointName": "e"}),
            ..gateway_input("plain", GatewayCredentials::Inherit)
        })
        .expect("inherit");
    assert_eq!(
        inherit.spec,
        json!({"kind": "embedding", "endpointName": "e"})
    );

    assert!(matches!(
        catalog.create_gateway_model(&gateway_input("llama", GatewayCredentials::Inherit)),
        Err(CatalogError::Conflict {
            kind: "gateway model",
            ..
        })
    ));
    assert!(matches!(
        catalog.create_gateway_model(&gateway_input(
            "x",
            GatewayCredentials::Service("nope".to_owned())
        )),
        Err(CatalogError::NotFound {
            kind: "service",
            ..
        })
    ));
    for spec in [
        json!({"kind": "chat", "awsConfig": {"awsRegion": "us-east-1"}}),
        json!({"kind": "chat", "headers": {"awsSecretAccessKey": "x"}}),
        json!({"name": "other-name"}),
        json!("not an object"),
    ] {
        assert!(
            matches!(
                catalog.create_gateway_model(&GatewayModelInput {
                    spec: spec.clone(),
                    ..gateway_input("x", GatewayCredentials::Inherit)
                }),
                Err(CatalogError::Invalid { what: "spec", .. })
            ),
            "{spec}"
        );
    }

    // Resolved credentials: the model's own, or its service's.
    let clear = catalog.gateway_model_with_secrets("llama").expect("own");
    assert_eq!(
        clear
            .aws_config
            .as_ref()
            .map(|c| c.expose()["awsSecretAccessKey"].clone()),
        Some(json!(MODEL_SECRET))
    );
    let config = clear.expose_model_config();
    assert_eq!(config["name"], "llama");
    assert_eq!(config["awsConfig"]["awsSecretAccessKey"], MODEL_SECRET);
    let via_service = catalog
        .gateway_model_with_secrets("embed")
        .expect("service");
    assert_eq!(
        via_service
            .aws_config
            .as_ref()
            .map(|c| c.expose()["awsSessionToken"].clone()),
        Some(json!(TOKEN))
    );
    assert!(catalog
        .gateway_model_with_secrets("plain")
        .expect("plain")
        .aws_config
        .is_none());
    assert_eq!(
        catalog
            .gateway_models_with_secrets()
            .expect("all")
            .iter()
            .map(|m| m.model.name.as_str())
            .collect::<Vec<_>>(),
        ["embed", "llama", "plain"]
    );

    // An update without the secret keeps it; a rename is refused.
    let updated = catalog
        .update_gateway_model(
            "llama",
            &GatewayModelInput {
                spec: json!({"kind": "chat", "endpointName": "llama-v2", "maxTokens": 512}),
                ..gateway_input(
                    "llama",
                    GatewayCredentials::Own(ClearAwsConfig::new(json!({
                        "awsAccessKeyId": "AKIAOWN",
                        "awsRegion": "us-west-2",
                    }))),
                )
            },
        )
        .expect("update");
    assert_eq!(updated.spec["endpointName"], "llama-v2");
    assert_eq!(updated.created_at, own.created_at);
    assert_eq!(
        catalog
            .gateway_model_with_secrets("llama")
            .expect("kept")
            .aws_config
            .map(|c| c.expose()["awsSecretAccessKey"].clone()),
        Some(json!(MODEL_SECRET))
    );
    assert!(matches!(
        catalog.update_gateway_model(
            "llama",
            &gateway_input("renamed", GatewayCredentials::Inherit)
        ),
        Err(CatalogError::Invalid { what: "name", .. })
    ));
    assert!(matches!(
        catalog.update_gateway_model("nope", &gateway_input("nope", GatewayCredentials::Inherit)),
        Err(CatalogError::NotFound { .. })
    ));
    // Switching to inherited credentials drops the stored ones.
    let plain = catalog
        .update_gateway_model(
            "llama",
            &gateway_input("llama", GatewayCredentials::Inherit),
        )
        .expect("inherit");
    assert_eq!(plain.aws_config, None);
    assert!(!plain.secrets.any());

    assert_eq!(
        catalog
            .gateway_models()
            .expect("list")
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        ["embed", "llama", "plain"]
    );
    // The older `Catalog` view reads the same rows.
    assert_eq!(
        catalog
            .get_gateway_model("embed")
            .expect("legacy")
            .map(|m| m.spec),
        Some(json!({"kind": "chat", "endpointName": "embed-endpoint"}))
    );
    catalog.delete_gateway_model_entry("embed").expect("delete");
    assert!(matches!(
        catalog.delete_gateway_model_entry("embed"),
        Err(CatalogError::NotFound {
            kind: "gateway model",
            ..
        })
    ));
}

#[test]
fn api_keys_are_stored_as_hashes_and_found_by_hash() {
    let (_dir, path) = temp_db();
    let catalog = open(&path);
    let created = catalog
        .create_api_key(&ApiKeyInput {
            name: "ci".to_owned(),
            expires_at: Some(2_000_000_000_000),
            allowed_models: Some(vec!["llama".to_owned()]),
            ..ApiKeyInput::default()
        })
        .expect("create");
    let key = created.key.expose().to_owned();
    assert!(key.starts_with("sbk_"));
    assert_eq!(created.entry.prefix, key[..8]);
    assert_eq!(created.entry.key_hash, hash_api_key(&key));
    assert!(!format!("{:?}", created).contains(&key));

    let found = catalog
        .api_key_by_hash(&hash_api_key(&key))
        .expect("lookup")
        .expect("found");
    assert_eq!(found.id, created.entry.id);
    assert!(found.allows_model("llama"));
    assert!(!found.allows_model("other"));
    assert!(catalog
        .api_key_by_hash(&hash_api_key("sbk_wrong"))
        .expect("lookup")
        .is_none());

    // Use before expiry records the time (at most once a minute); after expiry it fails.
    let used = catalog
        .use_api_key(&hash_api_key(&key), 1_900_000_000_000)
        .expect("use")
        .expect("valid");
    assert_eq!(used.last_used_at, Some(1_900_000_000_000));
    let again = catalog
        .use_api_key(&hash_api_key(&key), 1_900_000_000_500)
        .expect("use")
        .expect("valid");
    assert_eq!(again.last_used_at, Some(1_900_000_000_000));
    assert!(catalog
        .use_api_key(&hash_api_key(&key), 2_000_000_000_000)
        .expect("use")
        .is_none());
    let expired = catalog
        .api_key_by_hash(&hash_api_key(&key))
        .expect("lookup")
        .expect("still stored");
    assert!(expired.is_expired(2_000_000_000_000));
    assert!(!expired.is_expired(1_999_999_999_999));

    let open_key = catalog
        .create_api_key(&ApiKeyInput {
            name: "all-models".to_owned(),
            ..ApiKeyInput::default()
        })
        .expect("second");
    assert!(open_key.entry.allows_model("anything"));
    assert!(!open_key.entry.is_expired(i64::MAX));
    assert_ne!(open_key.key, created.key);
    assert!(matches!(
        catalog.create_api_key(&ApiKeyInput {
            name: "ci".to_owned(),
            ..ApiKeyInput::default()
        }),
        Err(CatalogError::Conflict {
            kind: "api key",
            ..
        })
    ));
    assert!(matches!(
        catalog.create_api_key(&ApiKeyInput {
            name: "none".to_owned(),
            allowed_models: Some(Vec::new()),
            ..ApiKeyInput::default()
        }),
        Err(CatalogError::Invalid { .. })
    ));

    let listed = catalog.api_keys().expect("list");
    assert_eq!(
        listed.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
        ["all-models", "ci"]
    );
    // What the API shows has neither the key nor its hash.
    let shown = serde_json::to_string(&listed).expect("json");
    assert!(!shown.contains(&key));
    assert!(!shown.contains(&hash_api_key(&key)));
    assert!(shown.contains("\"prefix\""));
    assert!(
        !contains(&file_bytes(&path), &key),
        "the key itself is never stored"
    );

    catalog.delete_api_key(&created.entry.id).expect("delete");
    assert!(matches!(
        catalog.delete_api_key(&created.entry.id),
        Err(CatalogError::NotFound {
            kind: "api key",
            ..
        })
    ));
    assert!(catalog
        .api_key_by_hash(&hash_api_key(&key))
        .expect("lookup")
        .is_none());
}

#[test]
fn sentinel_secrets_never_reach_the_catalog_file_or_the_views() {
    let (_dir, path) = temp_db();
    let catalog = open(&path);
    let prod = catalog
        .create_service(&service_input("prod"))
        .expect("prod");
    catalog
        .create_gateway_model(&gateway_input(
            "llama",
            GatewayCredentials::Own(ClearAwsConfig::new(json!({
                "awsAccessKeyId": "AKIAOWN",
                "awsSecretAccessKey": MODEL_SECRET,
                "awsRegion": "us-west-2",
            }))),
        ))
        .expect("gateway model");
    catalog
        .update_service(
            &prod.id,
            &ServiceInput {
                aws_config: ClearAwsConfig::new(json!({
                    "awsAccessKeyId": "AKIANEW",
                    "awsSecretAccessKey": NEW_SECRET,
                    "awsRegion": "us-east-1",
                })),
                ..service_input("prod")
            },
        )
        .expect("rotate");
    // Ingestion recording a clear secret by mistake is scrubbed too.
    catalog
        .upsert_service(&MlModelService {
            name: "careless".to_owned(),
            connection: Some(json!({"config": {"awsConfig": {"awsSessionToken": TOKEN}}})),
            ..MlModelService::default()
        })
        .expect("careless");

    let views = [
        serde_json::to_string(&catalog.services().expect("services")).expect("json"),
        serde_json::to_string(&catalog.gateway_models().expect("models")).expect("json"),
        serde_json::to_string(&catalog.list_services().expect("documents")).expect("json"),
        format!(
            "{:?}",
            catalog.service_with_secrets(&prod.id).expect("clear")
        ),
        format!(
            "{:?}",
            catalog.gateway_models_with_secrets().expect("clear")
        ),
    ];
    let bytes = file_bytes(&path);
    assert!(!bytes.is_empty());
    for sentinel in [SECRET, TOKEN, MODEL_SECRET, NEW_SECRET] {
        assert!(
            !contains(&bytes, sentinel),
            "{sentinel} is in the catalog file"
        );
        for view in &views {
            assert!(!view.contains(sentinel), "{sentinel} in {view}");
        }
    }
    // ...while they are there, encrypted, for whoever asks explicitly.
    assert!(contains(&bytes, "enc:v1:"));
    assert_eq!(
        catalog
            .service_with_secrets(&prod.id)
            .expect("clear")
            .aws_config
            .expose()["awsSecretAccessKey"],
        NEW_SECRET
    );
}

#[test]
fn secrets_survive_a_restart_and_a_wrong_key_is_a_typed_error() {
    let (_dir, path) = temp_db();
    let id = {
        let catalog = open(&path);
        catalog
            .create_service(&service_input("prod"))
            .expect("prod")
            .id
    };
    let catalog = open(&path);
    let clear = catalog.service_with_secrets(&id).expect("decrypt");
    assert_eq!(clear.aws_config.expose()["awsSecretAccessKey"], SECRET);
    assert_eq!(clear.aws_config.expose()["awsSessionToken"], TOKEN);
    drop(catalog);

    let wrong = SqliteCatalog::open_with_key(&path, key(8));
    let error = wrong.expect_err("a wrong key is refused");
    assert!(matches!(error, CatalogError::SecretKeyMismatch));
    assert_eq!(
        error.to_string(),
        "the secret key does not decrypt the stored secrets: set SAGEBRIDGE_SECRET_KEY to the key \
         used when they were stored"
    );

    // Without a key, everything without secrets still works; secrets are refused, not garbled.
    let keyless = SqliteCatalog::open(&path).expect("open without key");
    assert_eq!(keyless.service(&id).expect("view").name, "prod");
    assert!(matches!(
        keyless.service_with_secrets(&id),
        Err(CatalogError::SecretKeyMissing)
    ));
    assert!(matches!(
        keyless.create_service(&service_input("other")),
        Err(CatalogError::SecretKeyMissing)
    ));
    keyless
        .create_service(&ServiceInput {
            aws_config: ClearAwsConfig::new(json!({"awsRegion": "us-east-1"})),
            ..service_input("no-secrets")
        })
        .expect("a service without secrets needs no key");
}

#[cfg(unix)]
#[test]
fn the_key_file_is_created_once_with_mode_0600_and_must_stay_private() {
    use std::os::unix::fs::PermissionsExt;

    let (_dir, path) = temp_db();
    let (first, source) = SecretKey::resolve(None, &path).expect("create");
    let key_path = SecretKey::key_file_path(&path);
    assert_eq!(
        key_path.file_name().and_then(|n| n.to_str()),
        Some("catalog.db.key")
    );
    assert_eq!(
        source,
        KeySource::File {
            path: key_path.clone(),
            created: true
        }
    );
    let mode = std::fs::metadata(&key_path)
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let (again, source) = SecretKey::resolve(Some(""), &path).expect("read");
    assert_eq!(again, first);
    assert_eq!(
        source,
        KeySource::File {
            path: key_path.clone(),
            created: false
        }
    );
    // No temporary file is left beside it.
    let entries = std::fs::read_dir(key_path.parent().expect("dir"))
        .expect("list")
        .count();
    assert_eq!(entries, 1);

    // The key opens the catalog it was made for, across restarts.
    let id = {
        let catalog = SqliteCatalog::open_with_key(&path, first.clone()).expect("open");
        catalog
            .create_service(&service_input("prod"))
            .expect("prod")
            .id
    };
    let (read_back, _) = SecretKey::resolve(None, &path).expect("read");
    let catalog = SqliteCatalog::open_with_key(&path, read_back).expect("reopen");
    assert_eq!(
        catalog
            .service_with_secrets(&id)
            .expect("decrypt")
            .aws_config
            .expose()["awsSecretAccessKey"],
        SECRET
    );

    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let error = SecretKey::resolve(None, &path).expect_err("group-readable key file");
    assert!(
        matches!(&error, CatalogError::KeyFilePermissions { mode: 0o640, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("chmod 600"), "{error}");

    // The environment variable wins over the file, in base64 or hex; junk is a typed error
    // that does not repeat the value.
    let (from_env, source) =
        SecretKey::resolve(Some(&key(9).to_base64()), &path).expect("base64 env");
    assert_eq!((from_env, source), (key(9), KeySource::Env));
    let (from_hex, _) = SecretKey::resolve(Some(&"0a".repeat(32)), &path).expect("hex env");
    assert_eq!(from_hex, key(10));
    let error = SecretKey::resolve(Some("tooshort-secret"), &path).expect_err("junk");
    assert!(matches!(error, CatalogError::SecretKeyInvalid { .. }));
    assert!(!error.to_string().contains("tooshort-secret"), "{error}");
}

/// Migrations 1 and 2 as released, to build a file of the previous schema version.
const SCHEMA_V2: &str = r#"
    CREATE TABLE services (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, version REAL NOT NULL,
        updated_at INTEGER NOT NULL, document TEXT NOT NULL);
    CREATE TABLE models (id TEXT PRIMARY KEY, service TEXT NOT NULL, name TEXT NOT NULL,
        fqn TEXT NOT NULL UNIQUE, arn TEXT, creation_time INTEGER, source_hash TEXT,
        deleted INTEGER NOT NULL DEFAULT 0, version REAL NOT NULL, updated_at INTEGER NOT NULL,
        document TEXT NOT NULL, UNIQUE (service, name));
    CREATE INDEX models_by_service_deleted ON models (service, deleted);
    CREATE INDEX models_by_arn ON models (arn);
    CREATE INDEX models_by_name ON models (name);
    CREATE TABLE model_versions (fqn TEXT NOT NULL, version REAL NOT NULL,
        updated_at INTEGER NOT NULL, document TEXT NOT NULL, PRIMARY KEY (fqn, version));
    CREATE TABLE ingestion_runs (id TEXT PRIMARY KEY, service TEXT NOT NULL,
        started_at INTEGER NOT NULL, finished_at INTEGER, status TEXT NOT NULL,
        report TEXT NOT NULL);
    CREATE INDEX ingestion_runs_by_service ON ingestion_runs (service, started_at);
    CREATE INDEX ingestion_runs_by_start ON ingestion_runs (started_at);
    CREATE TABLE gateway_models (name TEXT PRIMARY KEY, spec TEXT NOT NULL,
        updated_at INTEGER NOT NULL);
    ALTER TABLE models ADD COLUMN facts TEXT;
    PRAGMA user_version = 2;
"#;

#[test]
fn a_previous_version_database_migrates_and_keeps_its_data() {
    let (_dir, path) = temp_db();
    let legacy_doc = json!({
        "id": "svc-1", "name": "legacy", "fullyQualifiedName": "legacy",
        "serviceType": "SageMaker", "description": "old account", "deleted": false,
        "version": 0.2, "updatedAt": 1_600_000_000_000_i64,
        "connection": {"config": {"type": "SageMaker", "awsConfig": {
            "awsRegion": "eu-west-1", "awsSecretAccessKey": "legacy-clear-secret"}}}
    });
    let model_doc = json!({
        "id": "m-1", "name": "churn", "fullyQualifiedName": "legacy.churn",
        "algorithm": "xgboost", "service": {"id": "svc-1", "type": "mlmodelService",
        "name": "legacy"}, "serviceType": "SageMaker", "deleted": false, "version": 0.1,
        "updatedAt": 1_600_000_000_000_i64,
        "extension": {"containers": [{"environment": {
            "SAGEMAKER_PROGRAM": "inference.py", "DATABASE_URL": "postgres://u:legacy-pw@h/db"}}]}
    });
    {
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.execute_batch(SCHEMA_V2).expect("v2 schema");
        conn.execute(
            "INSERT INTO services VALUES ('svc-1', 'legacy', 0.2, 1600000000000, ?1)",
            [legacy_doc.to_string()],
        )
        .expect("service");
        conn.execute(
            "INSERT INTO models VALUES ('m-1', 'legacy', 'churn', 'legacy.churn', 'arn:m', 5, 'h',
                 0, 0.1, 1600000000000, ?1, '{\"facts\":1}')",
            [model_doc.to_string()],
        )
        .expect("model");
        conn.execute_batch(
            "INSERT INTO ingestion_runs VALUES ('run-1', 'legacy', 1000, 2000, 'partialSuccess',
                 '{\"counts\":{\"failed\":1}}');
             INSERT INTO ingestion_runs VALUES ('run-2', 'legacy', 3000, NULL, 'running', '{}');
             INSERT INTO gateway_models VALUES ('chat', '{\"endpointName\":\"llm\"}', 1500);",
        )
        .expect("rows");
    }

    let catalog = open(&path);
    assert_eq!(catalog.schema_version().expect("version"), SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 6);
    // Migration 4 re-redacted what older rules stored in clear, and kept the harmless settings.
    let raw = std::fs::read(&path).expect("read catalog");
    assert!(
        !raw.windows(9).any(|w| w == b"legacy-pw"),
        "a stored credential survived"
    );

    // Models, runs and gateway models are all still there.
    let churn = catalog
        .get_model(Some("legacy"), "churn")
        .expect("get")
        .expect("model");
    assert_eq!(churn.algorithm, "xgboost");
    let env = &churn.extension.as_ref().expect("extension")["containers"][0]["environment"];
    assert_eq!(env["SAGEMAKER_PROGRAM"], "inference.py");
    assert_eq!(env["DATABASE_URL"], "<redacted>");
    assert_eq!(
        catalog
            .stored_facts("legacy", "churn")
            .expect("facts")
            .as_deref(),
        Some("{\"facts\":1}")
    );
    let runs = catalog.list_runs(Some("legacy"), 10).expect("runs");
    assert_eq!(
        runs.iter()
            .map(|r| (r.id.as_str(), r.status))
            .collect::<Vec<_>>(),
        [
            ("run-2", RunStatus::Running),
            ("run-1", RunStatus::PartialSuccess)
        ]
    );
    let old_run = catalog.pipeline_run("run-1").expect("as a pipeline run");
    assert_eq!(old_run.trigger, RunTrigger::Cli);
    assert_eq!(old_run.pipeline_id, None);
    assert_eq!(old_run.run.report, json!({"counts": {"failed": 1}}));
    // A CLI run of the old version is not the server's to interrupt.
    assert!(catalog
        .mark_running_as_interrupted()
        .expect("mark")
        .is_empty());
    assert_eq!(
        catalog.get_gateway_model("chat").expect("get"),
        Some(GatewayModel {
            name: "chat".to_owned(),
            spec: json!({"endpointName": "llm"}),
            updated_at: Some(1500),
        })
    );
    let entry = catalog.gateway_model("chat").expect("entry");
    assert_eq!(entry.created_at, 1500);
    assert_eq!(entry.service_id, None);

    // The service becomes a control-plane entry; its clear secret is redacted in its document.
    let service = catalog.service_by_name("legacy").expect("service");
    assert_eq!(service.id, "svc-1");
    assert_eq!(service.description.as_deref(), Some("old account"));
    assert_eq!(service.created_at, 1_600_000_000_000);
    assert_eq!(service.version, 0.2);
    assert!(!service.managed);
    assert_eq!(service.aws_config, json!({"awsRegion": "eu-west-1"}));
    let document = catalog.get_service("legacy").expect("doc").expect("doc");
    let stored: Value = document.connection.expect("connection");
    assert_eq!(
        stored["config"]["awsConfig"]["awsSecretAccessKey"],
        json!(REDACTED)
    );

    // And the migrated file takes the new records.
    let pipeline = catalog
        .create_pipeline(&pipeline_input("legacy-nightly", "svc-1"))
        .expect("pipeline on a migrated service");
    catalog
        .create_run(&NewRun::new(&pipeline.id, RunTrigger::Manual))
        .expect("run");
    let updated = catalog
        .update_service("svc-1", &service_input("legacy"))
        .expect("configure the migrated service");
    assert!(updated.managed);
    assert_eq!(updated.version, 0.3);
    assert_eq!(updated.created_at, 1_600_000_000_000);
}

#[test]
fn a_catalog_with_its_key_opens_while_another_process_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    drop(SqliteCatalog::open_with_key(&path, key(7)).expect("first open stores the key check"));
    // An ingestion in another process is in the middle of writing a batch.
    let mut writer = rusqlite::Connection::open(&path).unwrap();
    let held = writer
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let opener = std::thread::spawn({
        let path = path.clone();
        move || tx.send(SqliteCatalog::open_with_key(&path, key(7)).map(|_| ()))
    });
    // Opened (schema current, key check present) while the write lock is still held: the open
    // only read. Were it waiting for the lock, this receive would not complete before the
    // writer lets go (or the busy timeout turns it into an error).
    let opened = rx.recv().unwrap();
    assert!(opened.is_ok(), "{opened:?}");
    held.rollback().unwrap();
    opener.join().unwrap().unwrap();
}

#[test]
fn api_key_limits_are_stored_and_replaced_but_the_name_stays() {
    let (_dir, path) = temp_db();
    let catalog = open(&path);
    let created = catalog
        .create_api_key(&ApiKeyInput {
            name: "team".to_owned(),
            requests_per_minute: Some(60),
            tokens_per_minute: Some(10_000),
            ..ApiKeyInput::default()
        })
        .expect("create");
    assert_eq!(created.entry.requests_per_minute, Some(60));
    assert_eq!(created.entry.tokens_per_minute, Some(10_000));
    let shown = serde_json::to_value(&created.entry).expect("json");
    assert_eq!(shown["requestsPerMinute"], 60);
    assert_eq!(shown["tokensPerMinute"], 10_000);

    let updated = catalog
        .update_api_key(
            &created.entry.id,
            &ApiKeyInput {
                name: "team".to_owned(),
                requests_per_minute: Some(5),
                allowed_models: Some(vec!["llama".to_owned()]),
                ..ApiKeyInput::default()
            },
        )
        .expect("update");
    assert_eq!(updated.requests_per_minute, Some(5));
    assert_eq!(updated.tokens_per_minute, None, "left out is no limit");
    assert_eq!(updated.key_hash, created.entry.key_hash, "the key is kept");
    drop(catalog);
    let reopened = open(&path);
    let listed = reopened.api_keys().expect("list");
    assert_eq!(listed, vec![updated.clone()]);

    let err = |input: ApiKeyInput| {
        reopened
            .update_api_key(&created.entry.id, &input)
            .unwrap_err()
    };
    assert!(matches!(
        err(ApiKeyInput {
            name: "renamed".to_owned(),
            ..ApiKeyInput::default()
        }),
        CatalogError::Invalid { what: "name", .. }
    ));
    assert!(matches!(
        err(ApiKeyInput {
            name: "team".to_owned(),
            tokens_per_minute: Some(0),
            ..ApiKeyInput::default()
        }),
        CatalogError::Invalid {
            what: "tokensPerMinute",
            ..
        }
    ));
    assert!(matches!(
        reopened.update_api_key(
            "no-such-key",
            &ApiKeyInput {
                name: "team".to_owned(),
                ..ApiKeyInput::default()
            }
        ),
        Err(CatalogError::NotFound {
            kind: "api key",
            ..
        })
    ));
}

#[test]
fn usage_is_added_up_per_day_key_and_model_and_filtered() {
    let (_dir, path) = temp_db();
    let catalog = open(&path);
    let record = |day: &str, key: &str, model: &str, n: u64, errors: &[(&str, u64)]| UsageRecord {
        day: day.to_owned(),
        key: key.to_owned(),
        model: model.to_owned(),
        requests: n,
        prompt_tokens: 10 * n,
        completion_tokens: 3 * n,
        latency_ms: 7 * n,
        errors: errors.iter().map(|(c, k)| ((*c).to_owned(), *k)).collect(),
    };
    catalog
        .add_usage(&[
            record("2030-01-01", "a", "chat", 2, &[("timeout", 1)]),
            record("2030-01-01", "b", "chat", 1, &[]),
            record("2030-01-02", "a", "embed", 4, &[]),
        ])
        .expect("first batch");
    catalog
        .add_usage(&[record(
            "2030-01-01",
            "a",
            "chat",
            3,
            &[("timeout", 2), ("rate_limited", 1)],
        )])
        .expect("second batch");
    catalog.add_usage(&[]).expect("nothing to add");
    drop(catalog);
    let catalog = open(&path);

    let all = catalog.usage(&UsageQuery::default()).expect("all");
    assert_eq!(all.len(), 3);
    assert_eq!(
        all[0],
        UsageRecord {
            day: "2030-01-01".to_owned(),
            key: "a".to_owned(),
            model: "chat".to_owned(),
            requests: 5,
            prompt_tokens: 50,
            completion_tokens: 15,
            latency_ms: 35,
            errors: [("rate_limited".to_owned(), 1), ("timeout".to_owned(), 3)]
                .into_iter()
                .collect(),
        }
    );
    let of_a = catalog
        .usage(&UsageQuery {
            key: Some("a".to_owned()),
            ..UsageQuery::default()
        })
        .expect("key a");
    assert_eq!(
        of_a.iter()
            .map(|r| (r.day.as_str(), r.model.as_str()))
            .collect::<Vec<_>>(),
        [("2030-01-01", "chat"), ("2030-01-02", "embed")]
    );
    let second_day = catalog
        .usage(&UsageQuery {
            from: Some("2030-01-02".to_owned()),
            to: Some("2030-01-02".to_owned()),
            ..UsageQuery::default()
        })
        .expect("one day");
    assert_eq!(second_day.len(), 1);
    assert_eq!(second_day[0].requests, 4);
    assert!(second_day[0].errors.is_empty());
    let chat_b = catalog
        .usage(&UsageQuery {
            key: Some("b".to_owned()),
            model: Some("chat".to_owned()),
            to: Some("2030-01-01".to_owned()),
            ..UsageQuery::default()
        })
        .expect("b chat");
    assert_eq!(chat_b.len(), 1);
    assert_eq!(chat_b[0].requests, 1);
}

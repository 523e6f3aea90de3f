//! The SQLite catalog on real files: versions, soft deletes, filters, runs and persistence.

use std::collections::HashSet;
use std::path::PathBuf;

use sagebridge_catalog::{
    Catalog, CatalogError, EntityReference, GatewayModel, IngestionRun, ListQuery, MlModel,
    MlModelService, MlStore, ModelWrite, RunStatus, SqliteCatalog, WriteOutcome, SCHEMA_VERSION,
};
use serde_json::json;
use tempfile::TempDir;

const SERVICE_ID: &str = "5f0c7a8e-2f4b-4c47-9d3e-0b8a1e2f3c4d";

fn temp_db() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("catalog.db");
    (dir, path)
}

fn model(service: &str, name: &str, hash: &str) -> ModelWrite {
    ModelWrite {
        model: MlModel {
            name: name.to_owned(),
            fully_qualified_name: format!("{service}.{name}"),
            display_name: Some(name.to_owned()),
            algorithm: "xgboost".to_owned(),
            ml_store: Some(MlStore {
                storage: Some(format!("s3://bucket/{name}/model.tar.gz")),
                image_repository: Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1".into()),
            }),
            service: EntityReference::ml_model_service(SERVICE_ID, service),
            source_hash: Some(hash.to_owned()),
            ..MlModel::default()
        },
        arn: Some(format!(
            "arn:aws:sagemaker:us-east-1:123456789012:model/{name}"
        )),
        creation_time: Some(1_700_000_000_000),
        facts: Some(format!("{{\"name\":\"{name}\"}}")),
    }
}

fn names(models: &[MlModel]) -> Vec<&str> {
    models.iter().map(|m| m.name.as_str()).collect()
}

fn outcome(created: usize, updated: usize, unchanged: usize) -> WriteOutcome {
    WriteOutcome {
        created,
        updated,
        unchanged,
    }
}

#[test]
fn a_new_database_gets_the_schema_and_wal_mode() {
    let (_dir, path) = temp_db();
    let catalog = SqliteCatalog::open(&path).expect("open");
    assert_eq!(catalog.schema_version().expect("version"), SCHEMA_VERSION);
    assert_eq!(catalog.path(), Some(path.as_path()));
    drop(catalog);

    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .expect("journal mode");
    assert_eq!(mode, "wal");
}

#[test]
fn open_creates_missing_folders() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("a/b/catalog.db");
    SqliteCatalog::open(&path).expect("open");
    assert!(path.exists());
}

#[test]
fn a_database_from_a_newer_binary_is_refused() {
    let (_dir, path) = temp_db();
    {
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("set version");
    }
    let error = SqliteCatalog::open(&path).expect_err("newer schema");
    assert!(
        matches!(error, CatalogError::SchemaTooNew { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("upgrade sagebridge"));
}

#[test]
fn create_then_unchanged_then_update_keeps_versions() {
    let (_dir, path) = temp_db();
    let catalog = SqliteCatalog::open(&path).expect("open");

    let first = catalog
        .write_models(&[model("svc", "a", "h1"), model("svc", "b", "h1")])
        .expect("first write");
    assert_eq!(first, outcome(2, 0, 0));
    let a1 = catalog
        .get_model(Some("svc"), "a")
        .expect("get")
        .expect("a");
    assert_eq!(a1.version, Some(0.1));
    assert!(!a1.deleted);
    assert!(uuid_like(&a1.id), "generated id {:?}", a1.id);
    let created_at = a1.updated_at.expect("updatedAt");

    let again = catalog
        .write_models(&[model("svc", "a", "h1"), model("svc", "b", "h1")])
        .expect("same write");
    assert_eq!(again, outcome(0, 0, 2));
    let unchanged = catalog
        .get_model(Some("svc"), "a")
        .expect("get")
        .expect("a");
    assert_eq!(unchanged, a1, "an unchanged model is not rewritten");

    let mut changed = model("svc", "a", "h2");
    changed.model.algorithm = "linear-learner".into();
    let third = catalog
        .write_models(&[changed, model("svc", "b", "h1")])
        .expect("changed write");
    assert_eq!(third, outcome(0, 1, 1));
    let a2 = catalog
        .get_model(Some("svc"), "a")
        .expect("get")
        .expect("a");
    assert_eq!(a2.id, a1.id, "the id survives updates");
    assert_eq!(a2.version, Some(0.2));
    assert_eq!(a2.algorithm, "linear-learner");
    assert!(a2.updated_at.expect("updatedAt") >= created_at);

    let history = catalog.model_versions("svc.a").expect("versions");
    assert_eq!(
        history.iter().map(|m| m.version).collect::<Vec<_>>(),
        vec![Some(0.2), Some(0.1)]
    );
    assert_eq!(history[1], a1, "the previous document is kept as it was");
    assert!(catalog.model_versions("svc.nope").expect("none").is_empty());
}

#[test]
fn versions_keep_one_decimal_over_many_changes() {
    let catalog = SqliteCatalog::open_in_memory().expect("open");
    for i in 0..12 {
        catalog
            .write_models(&[model("svc", "m", &format!("h{i}"))])
            .expect("write");
    }
    let current = catalog
        .get_model(Some("svc"), "m")
        .expect("get")
        .expect("m");
    assert_eq!(current.version, Some(1.2));
    let history = catalog.model_versions("svc.m").expect("versions");
    assert_eq!(history.len(), 12);
    assert_eq!(history.last().and_then(|m| m.version), Some(0.1));
}

#[test]
fn without_a_source_hash_the_document_decides() {
    let catalog = SqliteCatalog::open_in_memory().expect("open");
    let mut write = model("svc", "m", "unused");
    write.model.source_hash = None;
    assert_eq!(
        catalog.write_models(&[write.clone()]).expect("create"),
        outcome(1, 0, 0)
    );
    assert_eq!(
        catalog.write_models(&[write.clone()]).expect("same"),
        outcome(0, 0, 1)
    );
    write.model.description = Some("now described".into());
    assert_eq!(
        catalog.write_models(&[write]).expect("changed"),
        outcome(0, 1, 0)
    );
}

#[test]
fn mark_deleted_soft_deletes_unseen_models_and_a_rewrite_restores_them() {
    let (_dir, path) = temp_db();
    let catalog = SqliteCatalog::open(&path).expect("open");
    catalog
        .write_models(&[
            model("svc", "a", "h"),
            model("svc", "b", "h"),
            model("svc", "c", "h"),
            model("other", "a", "h"),
        ])
        .expect("write");

    let seen: HashSet<String> = ["b".to_owned()].into();
    let deleted = catalog.mark_deleted("svc", &seen).expect("mark");
    assert_eq!(deleted, vec!["a", "c"]);
    // Marking again finds nothing new: deleted models stay deleted once.
    assert!(catalog
        .mark_deleted("svc", &seen)
        .expect("again")
        .is_empty());

    let a = catalog
        .get_model(Some("svc"), "a")
        .expect("get")
        .expect("a");
    assert!(a.deleted);
    assert_eq!(a.version, Some(0.2));
    let other = catalog
        .get_model(Some("other"), "a")
        .expect("get")
        .expect("other a");
    assert!(!other.deleted, "other services are untouched");

    let live = catalog
        .list_models(&ListQuery {
            service: Some("svc".into()),
            ..ListQuery::default()
        })
        .expect("list");
    assert_eq!(names(&live), vec!["b"]);

    let known = catalog.known_models("svc").expect("known");
    assert_eq!(known.len(), 3);
    assert!(known["a"].deleted);
    assert!(!known["b"].deleted);
    assert_eq!(known["b"].source_hash.as_deref(), Some("h"));
    assert_eq!(
        known["b"].arn.as_deref(),
        Some("arn:aws:sagemaker:us-east-1:123456789012:model/b")
    );
    assert_eq!(known["b"].creation_time, Some(1_700_000_000_000));

    // Seen again with the same hash: restored, which counts as an update.
    let restored = catalog
        .write_models(&[model("svc", "a", "h"), model("svc", "b", "h")])
        .expect("restore");
    assert_eq!(restored, outcome(0, 1, 1));
    let a = catalog
        .get_model(Some("svc"), "a")
        .expect("get")
        .expect("a");
    assert!(!a.deleted);
    assert_eq!(a.version, Some(0.3));
    let history = catalog.model_versions("svc.a").expect("versions");
    assert_eq!(
        history
            .iter()
            .map(|m| (m.version, m.deleted))
            .collect::<Vec<_>>(),
        vec![(Some(0.3), false), (Some(0.2), true), (Some(0.1), false)]
    );
}

#[test]
fn a_failing_batch_leaves_the_database_as_it_was() {
    let (_dir, path) = temp_db();
    let catalog = SqliteCatalog::open(&path).expect("open");
    catalog
        .write_models(&[model("svc", "a", "h1")])
        .expect("seed");
    let before = catalog
        .get_model(Some("svc"), "a")
        .expect("get")
        .expect("a");

    // The duplicate comes after an update and a create that the rollback must undo.
    let error = catalog
        .write_models(&[
            model("svc", "a", "h2"),
            model("svc", "new", "h1"),
            model("svc", "dup", "h1"),
            model("svc", "dup", "h2"),
        ])
        .expect_err("duplicate in batch");
    assert!(
        matches!(&error, CatalogError::DuplicateInBatch { name, .. } if name == "dup"),
        "{error}"
    );

    // A constraint failure inside SQLite (two models claiming one FQN) rolls back the same way.
    let mut clash = model("svc2", "x", "h1");
    clash.model.fully_qualified_name = "svc.a".into();
    let error = catalog
        .write_models(&[model("svc", "a", "h3"), model("svc", "other", "h1"), clash])
        .expect_err("fqn clash");
    assert!(matches!(error, CatalogError::Sqlite(_)), "{error}");

    drop(catalog);
    let catalog = SqliteCatalog::open(&path).expect("reopen");
    let after = catalog
        .get_model(Some("svc"), "a")
        .expect("get")
        .expect("a");
    assert_eq!(after, before);
    assert_eq!(catalog.model_versions("svc.a").expect("versions").len(), 1);
    let all = catalog
        .list_models(&ListQuery {
            include_deleted: true,
            ..ListQuery::default()
        })
        .expect("list");
    assert_eq!(names(&all), vec!["a"]);
}

#[test]
fn invalid_models_are_rejected_before_anything_is_written() {
    let catalog = SqliteCatalog::open_in_memory().expect("open");
    let mut nameless = model("svc", "a", "h");
    nameless.model.name.clear();
    let mut serviceless = model("svc", "b", "h");
    serviceless.model.service.name = None;
    for bad in [nameless, serviceless] {
        let error = catalog
            .write_models(&[model("svc", "ok", "h"), bad])
            .expect_err("invalid");
        assert!(matches!(error, CatalogError::Invalid { .. }), "{error}");
    }
    assert_eq!(
        catalog.count_models(&ListQuery::default()).expect("count"),
        0
    );
}

#[test]
fn list_filters_paginate_and_count() {
    let catalog = SqliteCatalog::open_in_memory().expect("open");
    let writes: Vec<ModelWrite> = ["xgb-churn", "XGB-fraud", "llama-chat", "bert-ner"]
        .iter()
        .map(|name| model("svc", name, "h"))
        .chain([model("other", "xgb-other", "h")])
        .collect();
    catalog.write_models(&writes).expect("write");
    catalog
        .mark_deleted(
            "svc",
            &["xgb-churn", "llama-chat", "bert-ner"]
                .map(String::from)
                .into(),
        )
        .expect("mark");

    let all_live = catalog.list_models(&ListQuery::default()).expect("list");
    assert_eq!(
        names(&all_live),
        vec!["xgb-other", "bert-ner", "llama-chat", "xgb-churn"]
    );

    let xgb = ListQuery {
        name_contains: Some("xgb".into()),
        ..ListQuery::default()
    };
    assert_eq!(
        names(&catalog.list_models(&xgb).expect("xgb")),
        vec!["xgb-other", "xgb-churn"]
    );
    let xgb_with_deleted = ListQuery {
        include_deleted: true,
        ..xgb.clone()
    };
    assert_eq!(
        names(&catalog.list_models(&xgb_with_deleted).expect("xgb all")),
        vec!["xgb-other", "XGB-fraud", "xgb-churn"]
    );
    assert_eq!(catalog.count_models(&xgb_with_deleted).expect("count"), 3);

    let page = ListQuery {
        service: Some("svc".into()),
        include_deleted: true,
        limit: Some(2),
        offset: 1,
        ..ListQuery::default()
    };
    assert_eq!(
        names(&catalog.list_models(&page).expect("page")),
        vec!["bert-ner", "llama-chat"],
        "names sort by code point, upper case first"
    );
    assert_eq!(
        catalog.count_models(&page).expect("count ignores paging"),
        4
    );
}

#[test]
fn get_model_by_fqn_by_name_and_ambiguous_names() {
    let catalog = SqliteCatalog::open_in_memory().expect("open");
    catalog
        .write_models(&[
            model("svc", "shared", "h"),
            model("other", "shared", "h"),
            model("svc", "solo", "h"),
        ])
        .expect("write");
    let solo = catalog
        .get_model(None, "solo")
        .expect("by name")
        .expect("solo");
    assert_eq!(solo.fully_qualified_name, "svc.solo");
    let by_fqn = catalog
        .get_model(None, "other.shared")
        .expect("by fqn")
        .expect("other.shared");
    assert_eq!(by_fqn.service.name.as_deref(), Some("other"));
    let error = catalog.get_model(None, "shared").expect_err("ambiguous");
    assert!(error.to_string().contains("other, svc"), "{error}");
    assert!(catalog.get_model(None, "missing").expect("none").is_none());
    assert!(catalog
        .get_model(Some("svc"), "missing")
        .expect("none")
        .is_none());
}

#[test]
fn everything_persists_across_reopen() {
    let (_dir, path) = temp_db();
    let service = {
        let catalog = SqliteCatalog::open(&path).expect("open");
        let service = catalog
            .upsert_service(&MlModelService {
                name: "svc".into(),
                connection: Some(json!({"config": {"type": "SageMaker"}})),
                ..MlModelService::default()
            })
            .expect("service");
        catalog
            .write_models(&[model("svc", "a", "h")])
            .expect("write");
        catalog
            .put_gateway_model(&GatewayModel {
                name: "chat".into(),
                spec: json!({"endpoint": "llm"}),
                updated_at: None,
            })
            .expect("gateway model");
        catalog
            .record_run(&run("r1", "svc", 1_000, RunStatus::Success))
            .expect("run");
        service
    };
    let catalog = SqliteCatalog::open(&path).expect("reopen");
    assert_eq!(catalog.get_service("svc").expect("get"), Some(service));
    assert!(catalog.get_model(Some("svc"), "a").expect("get").is_some());
    assert_eq!(
        catalog
            .get_gateway_model("chat")
            .expect("get")
            .map(|m| m.spec),
        Some(json!({"endpoint": "llm"}))
    );
    assert_eq!(catalog.list_runs(None, 10).expect("runs").len(), 1);
}

#[test]
fn services_keep_their_id_and_version_only_on_change() {
    let catalog = SqliteCatalog::open_in_memory().expect("open");
    let input = MlModelService {
        name: "svc".into(),
        connection: Some(json!({"config": {"awsConfig": {"awsRegion": "us-east-1"}}})),
        ..MlModelService::default()
    };
    let first = catalog.upsert_service(&input).expect("create");
    assert_eq!(first.version, Some(0.1));
    assert_eq!(first.fully_qualified_name, "svc");
    assert!(uuid_like(&first.id));
    assert_eq!(first.reference().name.as_deref(), Some("svc"));

    let same = catalog.upsert_service(&input).expect("same");
    assert_eq!(same, first);

    let changed = catalog
        .upsert_service(&MlModelService {
            description: Some("prod account".into()),
            ..input
        })
        .expect("changed");
    assert_eq!(changed.id, first.id);
    assert_eq!(changed.version, Some(0.2));

    catalog
        .upsert_service(&MlModelService {
            name: "a-first".into(),
            ..MlModelService::default()
        })
        .expect("second service");
    let listed = catalog.list_services().expect("list");
    assert_eq!(
        listed.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        vec!["a-first", "svc"]
    );
    assert!(catalog.get_service("nope").expect("get").is_none());
}

fn run(id: &str, service: &str, started_at: i64, status: RunStatus) -> IngestionRun {
    IngestionRun {
        id: id.to_owned(),
        service: service.to_owned(),
        started_at,
        finished_at: None,
        status,
        report: json!({"seen": 0}),
    }
}

#[test]
fn runs_are_recorded_updated_and_listed_newest_first() {
    let (_dir, path) = temp_db();
    let catalog = SqliteCatalog::open(&path).expect("open");
    catalog
        .record_run(&run("r1", "svc", 1_000, RunStatus::Success))
        .expect("r1");
    catalog
        .record_run(&run("r2", "other", 2_000, RunStatus::Failed))
        .expect("r2");
    catalog
        .record_run(&run("r3", "svc", 3_000, RunStatus::Running))
        .expect("r3 start");

    let finished = IngestionRun {
        finished_at: Some(4_000),
        status: RunStatus::PartialSuccess,
        report: json!({"seen": 3, "failed": [{"model": "m", "reason": "AccessDenied"}]}),
        ..run("r3", "svc", 3_000, RunStatus::Running)
    };
    catalog.record_run(&finished).expect("r3 end");
    assert_eq!(catalog.get_run("r3").expect("get"), Some(finished.clone()));
    assert!(catalog.get_run("nope").expect("get").is_none());

    let all = catalog.list_runs(None, 10).expect("all");
    assert_eq!(
        all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        vec!["r3", "r2", "r1"]
    );
    let svc = catalog.list_runs(Some("svc"), 1).expect("svc");
    assert_eq!(svc, vec![finished]);

    let error = catalog
        .record_run(&run("", "svc", 0, RunStatus::Running))
        .expect_err("empty id");
    assert!(matches!(error, CatalogError::Invalid { .. }));
}

#[test]
fn gateway_models_crud() {
    let catalog = SqliteCatalog::open_in_memory().expect("open");
    let stored = catalog
        .put_gateway_model(&GatewayModel {
            name: "b".into(),
            spec: json!({"endpoint": "e1"}),
            updated_at: None,
        })
        .expect("put");
    assert!(stored.updated_at.is_some());
    catalog
        .put_gateway_model(&GatewayModel {
            name: "a".into(),
            spec: json!({"endpoint": "e0"}),
            updated_at: None,
        })
        .expect("put a");
    catalog
        .put_gateway_model(&GatewayModel {
            name: "b".into(),
            spec: json!({"endpoint": "e2"}),
            updated_at: None,
        })
        .expect("replace");
    let listed = catalog.list_gateway_models().expect("list");
    assert_eq!(
        listed
            .iter()
            .map(|m| (m.name.as_str(), m.spec["endpoint"].as_str()))
            .collect::<Vec<_>>(),
        vec![("a", Some("e0")), ("b", Some("e2"))]
    );
    assert!(catalog.delete_gateway_model("b").expect("delete"));
    assert!(!catalog.delete_gateway_model("b").expect("delete again"));
    assert!(catalog.get_gateway_model("b").expect("get").is_none());
}

#[test]
fn the_stored_document_is_openmetadata_shaped_json() {
    let catalog = SqliteCatalog::open_in_memory().expect("open");
    catalog
        .write_models(&[model("svc", "a", "h")])
        .expect("write");
    let stored = catalog
        .get_model(Some("svc"), "a")
        .expect("get")
        .expect("a");
    let value = serde_json::to_value(&stored).expect("json");
    assert_eq!(value["fullyQualifiedName"], "svc.a");
    assert_eq!(value["serviceType"], "SageMaker");
    assert_eq!(value["service"]["type"], "mlmodelService");
    assert_eq!(
        value["mlStore"]["imageRepository"],
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"
    );
    assert_eq!(value["version"], 0.1);
    assert_eq!(value["deleted"], false);
    assert!(
        value.get("mlFeatures").is_none(),
        "empty lists are left out"
    );
    let back: MlModel = serde_json::from_value(value).expect("round trip");
    assert_eq!(back, stored);
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36 && id.chars().filter(|c| *c == '-').count() == 4
}

#[test]
fn facts_are_stored_refreshed_and_filled_in_for_unchanged_models() {
    let catalog = SqliteCatalog::open_in_memory().expect("open");
    let mut first = model("svc", "m", "h1");
    assert_eq!(
        catalog.write_models(&[first.clone()]).expect("write"),
        outcome(1, 0, 0)
    );
    assert_eq!(
        catalog.stored_facts("svc", "m").expect("facts").as_deref(),
        Some(r#"{"name":"m"}"#)
    );
    // Same hash, new facts (e.g. stored by an older version without them): the document
    // is not rewritten, the facts are.
    first.facts = Some(r#"{"name":"m","v":2}"#.to_owned());
    assert_eq!(
        catalog.write_models(&[first.clone()]).expect("write"),
        outcome(0, 0, 1)
    );
    assert_eq!(
        catalog.stored_facts("svc", "m").expect("facts").as_deref(),
        Some(r#"{"name":"m","v":2}"#)
    );
    assert_eq!(catalog.model_versions("svc.m").expect("versions").len(), 1);
    assert_eq!(catalog.stored_facts("svc", "other").expect("facts"), None);
    assert_eq!(catalog.stored_facts("other", "m").expect("facts"), None);
}

#[test]
fn a_first_version_database_is_migrated_and_keeps_its_models() {
    let (_dir, path) = temp_db();
    {
        // What version 1 of the schema wrote.
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.execute_batch(
            "CREATE TABLE models (id TEXT PRIMARY KEY, service TEXT NOT NULL, name TEXT NOT NULL,
                fqn TEXT NOT NULL UNIQUE, arn TEXT, creation_time INTEGER, source_hash TEXT,
                deleted INTEGER NOT NULL DEFAULT 0, version REAL NOT NULL,
                updated_at INTEGER NOT NULL, document TEXT NOT NULL, UNIQUE (service, name));
             INSERT INTO models VALUES ('1', 'svc', 'm', 'svc.m', NULL, NULL, 'h', 0, 0.1, 0, '{}');
             PRAGMA user_version = 1;",
        )
        .expect("v1 schema");
    }
    let catalog = SqliteCatalog::open(&path).expect("migrate");
    assert_eq!(catalog.schema_version().expect("version"), SCHEMA_VERSION);
    assert_eq!(catalog.stored_facts("svc", "m").expect("facts"), None);
    assert_eq!(catalog.known_models("svc").expect("known").len(), 1);
}

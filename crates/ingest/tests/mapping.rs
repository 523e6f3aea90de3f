//! The SageMaker-to-OpenMetadata mapping on realistic fixtures: snapshots of the mapped model and
//! of the CreateMlModel request, both validated against OpenMetadata's own JSON Schemas (the
//! contract fixtures in `tests/contracts/openmetadata/schemas`).

use std::path::Path;
use std::sync::OnceLock;

use jsonschema::Validator;
use sagebridge_catalog::{Catalog, ModelWrite, SqliteCatalog};
use sagebridge_ingest::facts::ModelFacts;
use sagebridge_ingest::mapping::{source_hash, to_create_ml_model, to_ml_model, ServiceRef};
use serde_json::Value;

const FIXTURES: [&str; 5] = [
    "xgboost-churn",
    "hf-tgi-llm",
    "multi-container",
    "many-tags",
    "minimal",
];

fn service() -> ServiceRef {
    ServiceRef {
        id: "8f4e2b1a-6c3d-4e5f-9a7b-1c2d3e4f5a6b".into(),
        name: "sagemaker_prod".into(),
    }
}

fn fixture(name: &str) -> ModelFacts {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("fixture {} is not ModelFacts: {error}", path.display()))
}

// ---- OpenMetadata schemas ----

#[path = "support/schemas.rs"]
mod schemas;
use schemas::validator;

fn ml_model_schema() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| validator("entity/data/mlmodel.json"))
}

fn create_ml_model_schema() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| validator("api/data/createMlModel.json"))
}

fn assert_valid(validator: &Validator, instance: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match the OpenMetadata schema:\n{}\n{instance:#}",
        errors.join("\n")
    );
}

// ---- tests ----

#[test]
fn mapped_models_match_their_snapshots() {
    for name in FIXTURES {
        let model = to_ml_model(&fixture(name), &service());
        insta::assert_json_snapshot!(format!("ml_model_{name}"), model);
    }
}

#[test]
fn create_requests_match_their_snapshots_and_the_schema() {
    for name in FIXTURES {
        let body = to_create_ml_model(&to_ml_model(&fixture(name), &service()));
        assert_valid(
            create_ml_model_schema(),
            &body,
            &format!("CreateMlModel for {name}"),
        );
        insta::assert_json_snapshot!(format!("create_ml_model_{name}"), body);
    }
}

/// The mapped model becomes a full entity once the catalog gives it an id, a version and a
/// timestamp; that entity, read back from a real (in-memory) catalog, must be a valid MlModel.
#[test]
fn stored_models_are_valid_openmetadata_entities() {
    let catalog = SqliteCatalog::open_in_memory().expect("catalog");
    let writes: Vec<ModelWrite> = FIXTURES
        .iter()
        .map(|name| {
            let facts = fixture(name);
            ModelWrite {
                model: to_ml_model(&facts, &service()),
                arn: Some(facts.arn.clone()),
                creation_time: Some(facts.creation_time),
                facts: None,
            }
        })
        .collect();
    let outcome = catalog.write_models(&writes).expect("write");
    assert_eq!(outcome.created, FIXTURES.len());

    for write in &writes {
        let stored = catalog
            .get_model(Some("sagemaker_prod"), &write.model.name)
            .expect("get")
            .expect("stored");
        let value = serde_json::to_value(&stored).expect("json");
        assert_valid(
            ml_model_schema(),
            &value,
            &format!("stored {}", stored.name),
        );
        assert_eq!(stored.version, Some(0.1));
        // The schema's `uuid` format sits in a draft-07 file, where `uuid` is not a known format
        // and so is not checked: check it here.
        assert!(is_uuid(&stored.id), "{:?}", stored.id);
        assert_eq!(stored.source_hash, write.model.source_hash);
    }

    // Mapping the same facts again changes nothing.
    let again = catalog.write_models(&writes).expect("rewrite");
    assert_eq!(again.unchanged, FIXTURES.len());
}

#[test]
fn the_schema_check_catches_a_broken_model() {
    let mut value =
        serde_json::to_value(to_ml_model(&fixture("minimal"), &service())).expect("json");
    // A mapped model has no id until the catalog stores it, which the schema requires; the three
    // breakages below are caught as well.
    value["server"] = Value::String("not a uri".into());
    value["deleted"] = Value::String("no".into());
    value["mlStore"]["unexpected"] = Value::Bool(true);
    let errors: Vec<String> = ml_model_schema()
        .iter_errors(&value)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(errors
        .iter()
        .any(|e| e.contains("\"id\" is a required property")));
}

#[test]
fn every_fixture_has_its_own_hash_and_mapping_is_deterministic() {
    let hashes: std::collections::HashSet<String> = FIXTURES
        .iter()
        .map(|name| {
            let facts = fixture(name);
            let first = to_ml_model(&facts, &service());
            assert_eq!(
                first,
                to_ml_model(&facts, &service()),
                "{name} maps the same twice"
            );
            assert_eq!(
                first.source_hash.as_deref(),
                Some(source_hash(&facts, &service()).as_str())
            );
            source_hash(&facts, &service())
        })
        .collect();
    assert_eq!(hashes.len(), FIXTURES.len());
}

#[test]
fn fixtures_round_trip_through_model_facts() {
    for name in FIXTURES {
        let facts = fixture(name);
        let text = serde_json::to_string(&facts).expect("serialize");
        let back: ModelFacts = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(back, facts, "{name}");
    }
}

#[test]
fn no_secret_from_a_fixture_reaches_the_outputs() {
    for name in FIXTURES {
        let model = to_ml_model(&fixture(name), &service());
        let text = format!(
            "{}{}",
            serde_json::to_string(&model).expect("json"),
            to_create_ml_model(&model)
        );
        for secret in ["hf_live_token_that_must_never_leak", "0123456789abcdef"] {
            assert!(!text.contains(secret), "{name} leaks {secret}");
        }
    }
}

#[test]
fn seventy_seven_tags_map_to_seventy_seven_labels() {
    let facts = fixture("many-tags");
    assert_eq!(facts.tags.len(), 77);
    let model = to_ml_model(&facts, &service());
    assert_eq!(model.tags.len(), 77);
    let fqns: std::collections::HashSet<&str> =
        model.tags.iter().map(|t| t.tag_fqn.as_str()).collect();
    assert_eq!(fqns.len(), 77, "tag FQNs are unique");
    assert!(fqns.contains("\"app.kubernetes.io/version\".\"2.3.1\""));
}

fn is_uuid(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

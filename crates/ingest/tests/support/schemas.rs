//! OpenMetadata's JSON Schemas from the contract fixtures (`tests/contracts/openmetadata/`), compiled with
//! every `$ref` resolved to a local file. Shared by the tests that validate what we send.

use std::path::{Path, PathBuf};

use jsonschema::{Retrieve, Uri, Validator};
use serde_json::Value;

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contracts/openmetadata/schemas")
}

/// Resolves every OpenMetadata schema URI to its file in the contract folder.
///
/// References are resolved by file path, and each document's `$id` is replaced by the URI it was
/// fetched under: a few upstream `$id`s are odd (see the contract README), and a `$ref` inside
/// such a document must still resolve next to its file.
struct ContractRetriever {
    root: PathBuf,
}

const PREFIXES: [&str; 2] = [
    "https://open-metadata.org/schema/",
    "https://open-metadata.org/",
];

impl ContractRetriever {
    fn load(&self, relative: &str) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let path = self.root.join(relative);
        let text = std::fs::read_to_string(&path)
            .map_err(|error| format!("cannot read schema {}: {error}", path.display()))?;
        let mut document: Value = serde_json::from_str(&text)?;
        if let Some(object) = document.as_object_mut() {
            object.insert(
                "$id".into(),
                Value::String(format!("{}{relative}", PREFIXES[0])),
            );
        }
        Ok(document)
    }
}

impl Retrieve for ContractRetriever {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let uri = uri.as_str();
        let relative = PREFIXES
            .iter()
            .find_map(|prefix| uri.strip_prefix(prefix))
            .ok_or_else(|| format!("no local schema for {uri}"))?;
        self.load(relative.split('#').next().unwrap_or(relative))
    }
}

pub(crate) fn validator(relative: &str) -> Validator {
    let retriever = ContractRetriever {
        root: schemas_dir(),
    };
    let schema = retriever
        .load(relative)
        .unwrap_or_else(|error| panic!("{error}"));
    jsonschema::options()
        .with_retriever(retriever)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|error| panic!("schema {relative} does not compile: {error}"))
}

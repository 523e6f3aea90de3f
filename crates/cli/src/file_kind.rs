//! Which kind of file `test-connection` was given, read from its top-level keys: `source:` is an
//! ingestion workflow, `models:` or `server:` a gateway file (`sagebridge.yaml`).
//!
//! The keys come from the parsed YAML, not from the text, so quoting, flow style, comments and
//! document markers do not change the answer; a file that is neither (or both) is a usage error
//! that says what was expected, instead of a guess that fails later in the wrong loader.

use std::path::Path;

/// What a config file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// An ingestion workflow (top-level `source:`).
    Workflow,
    /// A gateway file (top-level `models:` and/or `server:`).
    Gateway,
    /// Unreadable or not YAML: the workflow loader reports where and why, as for any workflow.
    Unparsed,
}

const WORKFLOW_KEYS: [&str; 1] = ["source"];
const GATEWAY_KEYS: [&str; 2] = ["models", "server"];

/// The kind of `text`, or why it is neither kind (`name` is shown in the message).
pub(crate) fn detect_str(name: &str, text: &str) -> Result<FileKind, String> {
    let keys: Vec<String> = match serde_saphyr::from_str::<Option<serde_json::Value>>(text) {
        Err(_) => return Ok(FileKind::Unparsed),
        Ok(Some(serde_json::Value::Object(map))) => map.keys().cloned().collect(),
        Ok(_) => Vec::new(),
    };
    let has = |wanted: &[&str]| keys.iter().any(|k| wanted.contains(&k.as_str()));
    match (has(&WORKFLOW_KEYS), has(&GATEWAY_KEYS)) {
        (true, false) => Ok(FileKind::Workflow),
        (false, true) => Ok(FileKind::Gateway),
        (true, true) => Err(format!(
            "{name} has both `source:` (an ingestion workflow) and `models:`/`server:` (a gateway file); keep them in two files and test each"
        )),
        (false, false) => {
            let found = if keys.is_empty() {
                "it has no top-level keys".to_owned()
            } else {
                format!("its top-level keys are {}", keys.join(", "))
            };
            Err(format!(
                "{name} is neither an ingestion workflow (top-level `source:`) nor a gateway file (top-level `models:` or `server:`): {found}; pass one of those to test-connection"
            ))
        }
    }
}

/// [`detect_str`] on a file.
pub(crate) fn detect(path: &Path) -> Result<FileKind, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => detect_str(&path.display().to_string(), &text),
        Err(_) => Ok(FileKind::Unparsed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_top_level_keys() {
        let kind = |t: &str| detect_str("f.yaml", t);
        assert_eq!(
            kind("source:\n  type: sagemaker\nsink: {}\n"),
            Ok(FileKind::Workflow)
        );
        assert_eq!(
            kind("# a comment\n---\n\"source\": {}\n"),
            Ok(FileKind::Workflow)
        );
        assert_eq!(kind("{source: {type: sagemaker}}"), Ok(FileKind::Workflow));
        assert_eq!(kind("models: []\n"), Ok(FileKind::Gateway));
        assert_eq!(
            kind("server:\n  listen: 127.0.0.1:0\n"),
            Ok(FileKind::Gateway)
        );
        // `source:` nested in a gateway file does not make it a workflow.
        assert_eq!(
            kind("models:\n- name: m\n  source: x\n"),
            Ok(FileKind::Gateway)
        );
        assert_eq!(kind("source: [\n"), Ok(FileKind::Unparsed));
    }

    #[test]
    fn neither_or_both_say_so() {
        let e = detect_str("f.yaml", "sink:\n  type: catalog\n").unwrap_err();
        assert!(e.contains("f.yaml is neither an ingestion workflow"), "{e}");
        assert!(e.contains("its top-level keys are sink"), "{e}");
        let e = detect_str("f.yaml", "").unwrap_err();
        assert!(e.contains("it has no top-level keys"), "{e}");
        let e = detect_str("f.yaml", "- source\n").unwrap_err();
        assert!(e.contains("neither"), "{e}");
        let e = detect_str("f.yaml", "source: {}\nmodels: []\n").unwrap_err();
        assert!(e.contains("has both"), "{e}");
    }
}

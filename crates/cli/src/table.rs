//! What `models list` and `models show` print for people (`--json` prints the documents).
//!
//! Here rather than in `sagebridge-catalog`: these fixed-width layouts are the binary's
//! presentation of the catalog's `MlModel` documents, which the catalog crate keeps in
//! OpenMetadata's JSON shape for every other reader (the server's API, the web UI). Plain
//! functions returning text, so the layout is tested without running the binary.

use std::fmt::Write as _;

use sagebridge_catalog::MlModel;

/// `0.3`, or nothing when the model has no version yet.
fn version(m: &MlModel) -> String {
    m.version.map(|v| format!("{v:.1}")).unwrap_or_default()
}

/// `models list`: one line per model under a header, then the count.
pub(crate) fn models_table(models: &[MlModel]) -> String {
    let mut out = format!(
        "{:<44} {:<22} {:<8} SERVED BY\n",
        "MODEL", "ALGORITHM", "VERSION"
    );
    for m in models {
        let _ = writeln!(
            out,
            "{:<44} {:<22} {:<8} {}{}",
            m.fully_qualified_name,
            m.algorithm,
            version(m),
            m.server.as_deref().unwrap_or("-"),
            if m.deleted { " (deleted)" } else { "" }
        );
    }
    let _ = writeln!(out, "{} model(s)", models.len());
    out
}

/// `models show`: the fields people look for first.
pub(crate) fn model_card(m: &MlModel) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "name:       {}", m.fully_qualified_name);
    let _ = writeln!(out, "algorithm:  {}", m.algorithm);
    let _ = writeln!(out, "version:    {}", version(m));
    let _ = writeln!(out, "deleted:    {}", m.deleted);
    let _ = writeln!(out, "server:     {}", m.server.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "tags:       {}", m.tags.len());
    registry_versions(m, &mut out);
    out.push_str("(--json for the whole MlModel document)\n");
    out
}

/// A model package group's versions, one line each: number, approval status, creation time
/// and the models deployed from it (from the document's `extension`, where the mapping puts
/// them).
fn registry_versions(m: &MlModel, out: &mut String) {
    let Some(ext) = m.extension.as_ref() else {
        return;
    };
    if ext.get("modelPackageGroupArn").is_none() {
        return;
    }
    let versions = ext["versions"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let _ = writeln!(out, "kind:       model package group");
    let _ = writeln!(out, "versions:   {}", versions.len());
    for v in versions {
        let text = |key: &str| v[key].as_str().unwrap_or("-").to_owned();
        let deployed: Vec<&str> = v["deployedModels"]
            .as_array()
            .map(|a| a.iter().filter_map(|d| d.as_str()).collect())
            .unwrap_or_default();
        let deployed = if deployed.is_empty() {
            "-".to_owned()
        } else {
            deployed.join(", ")
        };
        let _ = writeln!(
            out,
            "  {:<4} {:<22} {:<25} deployed as: {deployed}",
            v["version"]
                .as_i64()
                .map_or("-".to_owned(), |n| n.to_string()),
            text("approvalStatus"),
            text("creationTime"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str, server: Option<&str>, deleted: bool) -> MlModel {
        MlModel {
            name: name.into(),
            fully_qualified_name: format!("sm.{name}"),
            algorithm: "xgboost".into(),
            version: Some(0.2),
            server: server.map(Into::into),
            deleted,
            ..Default::default()
        }
    }

    #[test]
    fn list_has_a_header_a_line_per_model_and_the_count() {
        let text = models_table(&[
            model(
                "churn",
                Some("https://runtime/endpoints/churn/invocations"),
                false,
            ),
            model("old", None, true),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(
            lines[0],
            format!(
                "{:<44} {:<22} {:<8} SERVED BY",
                "MODEL", "ALGORITHM", "VERSION"
            )
        );
        assert_eq!(
            lines[1],
            format!(
                "{:<44} {:<22} {:<8} https://runtime/endpoints/churn/invocations",
                "sm.churn", "xgboost", "0.2"
            )
        );
        assert_eq!(
            lines[2],
            format!(
                "{:<44} {:<22} {:<8} - (deleted)",
                "sm.old", "xgboost", "0.2"
            )
        );
        assert_eq!(lines[3], "2 model(s)");
        assert_eq!(models_table(&[]).lines().last(), Some("0 model(s)"));
    }

    #[test]
    fn show_lists_a_model_package_groups_versions() {
        let mut group = model("churn-group", None, false);
        group.extension = Some(serde_json::json!({
            "modelPackageGroupArn": "arn:aws:sagemaker:us-east-1:1:model-package-group/churn-group",
            "versions": [
                {"version": 1, "approvalStatus": "Approved",
                 "creationTime": "2024-01-02T03:04:05Z", "deployedModels": ["a", "b"]},
                {"version": 2, "creationTime": "2024-02-02T03:04:05Z", "deployedModels": []}
            ]
        }));
        let text = model_card(&group);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.contains(&"kind:       model package group"), "{text}");
        assert!(lines.contains(&"versions:   2"), "{text}");
        assert!(
            lines.contains(
                &format!(
                    "  {:<4} {:<22} {:<25} deployed as: a, b",
                    "1", "Approved", "2024-01-02T03:04:05Z"
                )
                .as_str()
            ),
            "{text}"
        );
        assert!(
            lines.contains(
                &format!(
                    "  {:<4} {:<22} {:<25} deployed as: -",
                    "2", "-", "2024-02-02T03:04:05Z"
                )
                .as_str()
            ),
            "{text}"
        );
        // A model has no registry lines.
        assert!(!model_card(&model("m", None, false)).contains("versions:"));
    }

    #[test]
    fn show_prints_the_main_fields() {
        let mut m = model("churn", None, false);
        m.version = None;
        assert_eq!(
            model_card(&m),
            "name:       sm.churn\nalgorithm:  xgboost\nversion:    \ndeleted:    false\nserver:     -\ntags:       0\n(--json for the whole MlModel document)\n"
        );
    }
}

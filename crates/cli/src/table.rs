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
    out.push_str("(--json for the whole MlModel document)\n");
    out
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
    fn show_prints_the_main_fields() {
        let mut m = model("churn", None, false);
        m.version = None;
        assert_eq!(
            model_card(&m),
            "name:       sm.churn\nalgorithm:  xgboost\nversion:    \ndeleted:    false\nserver:     -\ntags:       0\n(--json for the whole MlModel document)\n"
        );
    }
}

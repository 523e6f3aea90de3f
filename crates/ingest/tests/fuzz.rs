//! Hostile input for ingestion's parsers, as property tests (the reliability report runs them
//! with many cases: `PROPTEST_CASES=20000`; the test suite with 64): the workflow YAML loader
//! and OpenMetadata FQN quoting.

use proptest::prelude::*;
use sagebridge_ingest::config::WorkflowConfig;
use sagebridge_ingest::mapping::{build_fqn, quote_name};

fn cases() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const WORKFLOW: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/local.yaml"
));

fn yaml_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(":".to_owned()),
        Just("- ".to_owned()),
        Just("\n".to_owned()),
        Just("  ".to_owned()),
        Just("\"".to_owned()),
        Just("{".to_owned()),
        Just("[".to_owned()),
        Just("&a ".to_owned()),
        Just("*a".to_owned()),
        Just("!!str ".to_owned()),
        Just("${X:-y}".to_owned()),
        Just("${".to_owned()),
        Just("|\n".to_owned()),
        Just("99999999999999999999".to_owned()),
        Just("\u{0}".to_owned()),
        Just("ü\u{202e}".to_owned()),
        Just("markDeletedMaxFraction: 2\n".to_owned()),
        Just("includes: ['(']\n".to_owned()),
        "[a-zA-Z]{1,8}",
    ]
}

fn mutated(base: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, yaml_piece()), 0..6).prop_map(
        move |edits| {
            let mut text = base.to_owned();
            for (at, op, piece) in edits {
                let mut i = at.index(text.len() + 1);
                while !text.is_char_boundary(i) {
                    i -= 1;
                }
                let span = if op == 1 { piece.len() } else { 16 };
                let mut end = (i + span).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                match op {
                    0 => text.insert_str(i, &piece),
                    1 => text.replace_range(i..end, &piece),
                    _ => text.replace_range(i..end, ""),
                }
            }
            text
        },
    )
}

/// OpenMetadata's `FullyQualifiedName.split`: dots outside double quotes separate the parts,
/// and a part's wrapping quotes are dropped.
fn om_split(fqn: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in fqn.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            '.' if !quoted => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|p| {
            p.strip_prefix('"')
                .and_then(|q| q.strip_suffix('"'))
                .map(str::to_owned)
                .unwrap_or(p)
        })
        .collect()
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn fuzz_workflow_yaml_never_panics_and_errors_point_at_a_line(text in mutated(WORKFLOW)) {
        let env = |k: &str| (k == "SAGEBRIDGE_MOTO_URL").then(|| "http://127.0.0.1:5000".to_owned());
        if let Err(errors) = WorkflowConfig::parse("workflow.yaml", &text, &env) {
            prop_assert!(!errors.0.is_empty());
            for e in &errors.0 {
                prop_assert_eq!(&e.file, "workflow.yaml");
                prop_assert!(e.line >= 1, "{}", e);
                prop_assert!(!e.message.is_empty());
            }
        }
    }

    /// Names OpenMetadata accepts (anything without `"`: dots, spaces, unicode, up to its 256
    /// characters) survive a trip through an FQN and OpenMetadata's split.
    #[test]
    fn fuzz_fqn_quoting_round_trips_through_openmetadatas_split(
        parts in prop::collection::vec("[^\"]{1,256}", 1..4),
    ) {
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        let fqn = build_fqn(&refs);
        prop_assert_eq!(om_split(&fqn), parts.clone(), "fqn {}", fqn);
        for p in &parts {
            let q = quote_name(p);
            prop_assert_eq!(q.contains('.'), p.contains('.'));
            prop_assert_eq!(quote_name(&q), q.clone(), "quoting is idempotent");
        }
    }

    /// A name with `"` inside (which OpenMetadata rejects) still yields one unambiguous part.
    #[test]
    fn fuzz_names_with_quotes_stay_one_part(name in ".{0,40}\"[^\"]{0,40}") {
        let fqn = build_fqn(&["svc", &name]);
        prop_assert!(fqn.starts_with("svc."));
        let _ = quote_name(&name);
    }
}

//! Hostile input for the gateway's parsers, as property tests (the reliability report runs
//! them with many cases: `PROPTEST_CASES=20000`; the test suite with 64): the gateway config
//! loader, OpenAI request bodies, and the stream decoder for every container format. None may
//! panic; the decoder must give the same events however the bytes are cut.

use proptest::prelude::*;
use sagebridge_gateway::api::{ChatRequest, EmbeddingsRequest, RerankRequest};
use sagebridge_gateway::config::{self, Format};
use sagebridge_gateway::stream::{StreamDecoder, StreamEvent};

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

const CONFIG: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/sagebridge.yaml"
));

/// Pieces that matter to YAML and to our loader.
fn yaml_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(":".to_owned()),
        Just("- ".to_owned()),
        Just("\n".to_owned()),
        Just("  ".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("{".to_owned()),
        Just("[".to_owned()),
        Just("&a ".to_owned()),
        Just("*a".to_owned()),
        Just("!!binary ".to_owned()),
        Just("# ".to_owned()),
        Just("${X:-y}".to_owned()),
        Just("${".to_owned()),
        Just("|\n".to_owned()),
        Just("9999999999999999999999".to_owned()),
        Just("-1".to_owned()),
        Just("1e400".to_owned()),
        Just("~".to_owned()),
        Just("\u{0}".to_owned()),
        Just("é\u{202e}".to_owned()),
        "[a-zA-Z]{1,8}",
    ]
}

/// The example config with up to 6 edits (insert, replace or delete at byte positions).
fn mutated(base: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, yaml_piece()), 0..6).prop_map(
        move |edits| {
            let mut text = base.to_owned();
            for (at, op, piece) in edits {
                let mut i = at.index(text.len() + 1);
                while !text.is_char_boundary(i) {
                    i -= 1;
                }
                match op {
                    0 => text.insert_str(i, &piece),
                    1 => {
                        let mut end = (i + piece.len()).min(text.len());
                        while !text.is_char_boundary(end) {
                            end -= 1;
                        }
                        text.replace_range(i..end, &piece);
                    }
                    _ => {
                        let mut end = (i + 16).min(text.len());
                        while !text.is_char_boundary(end) {
                            end -= 1;
                        }
                        text.replace_range(i..end, "");
                    }
                }
            }
            text
        },
    )
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null)),
        ".{0,12}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("user")),
        Just(serde_json::Value::from(
            "data:image/png;base64,iVBORw0KGgo="
        )),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("model".to_owned()),
                    Just("messages".to_owned()),
                    Just("role".to_owned()),
                    Just("content".to_owned()),
                    Just("type".to_owned()),
                    Just("text".to_owned()),
                    Just("image_url".to_owned()),
                    Just("url".to_owned()),
                    Just("input".to_owned()),
                    Just("query".to_owned()),
                    Just("documents".to_owned()),
                    Just("stream".to_owned()),
                    Just("max_tokens".to_owned()),
                    Just("stop".to_owned()),
                    Just("tools".to_owned()),
                    Just("stream_options".to_owned()),
                    "[a-z_]{1,10}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn decode(format: Format, pieces: &[&[u8]]) -> Vec<StreamEvent> {
    let mut decoder = StreamDecoder::new(format).with_max_line(4096);
    let mut out = Vec::new();
    for piece in pieces {
        decoder.feed(piece, &mut out);
    }
    decoder.finish(&mut out);
    out
}

/// Lines a container may send: valid events of each family, keep-alives, junk.
fn stream_line() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,8}".prop_map(|t| format!(
            "data: {}",
            serde_json::json!({"choices": [{"index": 0, "delta": {"content": t}}]})
        )),
        ".{0,8}".prop_map(|t| format!(
            "data:{}",
            serde_json::json!({"token": {"id": 1, "text": t, "special": false}})
        )),
        ".{0,8}".prop_map(|t| serde_json::json!({"outputs": [t]}).to_string()),
        ".{0,8}".prop_map(|t| serde_json::json!({"token": {"text": t}}).to_string()),
        Just("data: [DONE]".to_owned()),
        Just(": keep-alive".to_owned()),
        Just("event: message".to_owned()),
        Just("data: {\"error\":{\"message\":\"boom\"}}".to_owned()),
        Just("".to_owned()),
        ".{0,40}",
    ]
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn fuzz_gateway_config_never_panics_and_errors_name_the_place(text in mutated(CONFIG)) {
        match config::load_str("gateway.yaml", &text, &|_: &str| None) {
            Ok(_) => {}
            Err(errors) => {
                prop_assert!(!errors.0.is_empty());
                for e in &errors.0 {
                    prop_assert_eq!(&e.file, "gateway.yaml");
                    prop_assert!(!e.message.is_empty());
                }
            }
        }
    }

    #[test]
    fn fuzz_openai_request_bodies_never_panic(value in json_value(), bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let text = value.to_string();
        for body in [text.as_bytes(), bytes.as_slice()] {
            let _ = ChatRequest::parse(body);
            let _ = EmbeddingsRequest::parse(body);
            let _ = RerankRequest::parse(body);
        }
        // The same value under a valid envelope reaches the deeper checks.
        let wrapped = serde_json::json!({"model": "m", "messages": [value.clone()], "input": value.clone(),
                                         "query": "q", "documents": value});
        let body = wrapped.to_string();
        let _ = ChatRequest::parse(body.as_bytes());
        let _ = EmbeddingsRequest::parse(body.as_bytes());
        let _ = RerankRequest::parse(body.as_bytes());
    }

    #[test]
    fn fuzz_stream_decoder_gives_the_same_events_however_the_bytes_are_cut(
        lines in prop::collection::vec(stream_line(), 0..12),
        crlf in any::<bool>(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        junk in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let nl = if crlf { "\r\n" } else { "\n" };
        let mut text = lines.join(nl).into_bytes();
        text.extend_from_slice(nl.as_bytes());
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(text.len() + 1)).collect();
        at.sort_unstable();
        at.dedup();
        let mut pieces: Vec<&[u8]> = Vec::new();
        let mut from = 0;
        for cut in at {
            pieces.push(&text[from..cut]);
            from = cut;
        }
        pieces.push(&text[from..]);
        for format in [Format::Openai, Format::Tgi, Format::Lmi] {
            let whole = decode(format, &[&text]);
            prop_assert_eq!(&decode(format, &pieces), &whole, "{:?}", format);
            // Arbitrary bytes (not UTF-8, no newline, NULs) never panic.
            let _ = decode(format, &[&junk, &text, &junk]);
        }
    }
}

//! Secrets: a string that must never be printed (AWS secret keys, session tokens, API keys,
//! JWTs), and the rules that find secret-looking values in documents (container environments,
//! hyperparameters, stored connections) so they are redacted before they are stored or shown.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// What a [`Secret`] looks like wherever it is printed.
pub const REDACTED: &str = "**********";

/// What a secret-looking value of a stored document (a container environment, a connection)
/// is replaced with. OpenMetadata's own marker, so documents read the same in both catalogs.
pub const REDACTED_IN_DOCUMENTS: &str = "<redacted>";

/// A secret value. `Debug`, `Display` and `Serialize` all print [`REDACTED`]; the only way to
/// the value is [`Secret::expose`], so every use of the real value is easy to find.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The real value, for handing to the AWS SDK or an HTTP header, never to a log.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

/// Removes every occurrence of the given secrets from a text (an error message from a peer,
/// say) before it is shown.
pub fn scrub(text: &str, secrets: &[&Secret]) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        // Very short values would blank out ordinary words; real secrets are long.
        if s.0.len() >= 4 {
            out = out.replace(&s.0, REDACTED);
        }
    }
    out
}

/// Whether a configuration key (environment variable, hyperparameter) probably holds a secret.
///
/// The key is split into words at `_`, `-`, `.` and lower-to-upper case changes
/// (`HF_API_TOKEN`, `hf-api-token` and `hfApiToken` all give `HF API TOKEN`); it is secret when a
/// word is one of `TOKEN`, `SECRET`, `PASSWORD`, `PASSWD`, `PASS`, `PWD`, `CREDENTIAL(S)`, `AUTH`,
/// `AUTHORIZATION`, `APIKEY`, or when two words read `API KEY`, `ACCESS KEY` or `PRIVATE KEY`.
/// Whole words matter: `MAX_TOTAL_TOKENS` is a TGI setting, not a secret.
pub fn is_secret_key(key: &str) -> bool {
    const WORDS: [&str; 11] = [
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "PASS",
        "PWD",
        "CREDENTIAL",
        "CREDENTIALS",
        "AUTH",
        "AUTHORIZATION",
        "APIKEY",
    ];
    const PAIRS: [(&str, &str); 3] = [("API", "KEY"), ("ACCESS", "KEY"), ("PRIVATE", "KEY")];
    let words = key_words(key);
    words.iter().any(|word| WORDS.contains(&word.as_str()))
        || words
            .windows(2)
            .any(|pair| PAIRS.contains(&(pair[0].as_str(), pair[1].as_str())))
}

/// The upper-cased words of a key, split at punctuation and at lower-to-upper case changes.
fn key_words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in key.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_uppercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Replaces the value of every secret-looking key (by [`is_secret_key`]) anywhere in a JSON
/// document with [`REDACTED_IN_DOCUMENTS`].
pub fn redact_secret_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let is_leaf = !(v.is_object() || v.is_array() || v.is_null());
                if is_leaf && is_secret_key(key) {
                    *v = Value::String(REDACTED_IN_DOCUMENTS.to_owned());
                } else {
                    redact_secret_keys(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_secret_keys),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            format!("\"{REDACTED}\"")
        );
        assert_eq!(s.expose(), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    }

    #[test]
    fn scrubs_peer_text() {
        let s = Secret::new("topsecretvalue");
        assert_eq!(
            scrub("bad key topsecretvalue here", &[&s]),
            format!("bad key {REDACTED} here")
        );
    }
    #[test]
    fn secret_keys() {
        for key in [
            "HF_TOKEN",
            "hugging-face-hub-token",
            "HUGGING_FACE_HUB_TOKEN",
            "DB_PASSWORD",
            "aws_secret_access_key",
            "AWS_ACCESS_KEY_ID",
            "OpenAI_Api_Key",
            "openaiApiKey",
            "authToken",
            "BASIC_AUTH",
            "wandb.apikey",
            "TLS_PRIVATE_KEY",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "HF_MODEL_ID",
            "SM_NUM_GPUS",
            "MAX_INPUT_LENGTH",
            "MAX_TOTAL_TOKENS",
            "MAX_BATCH_PREFILL_TOKENS",
            "SAGEMAKER_PROGRAM",
            "max_depth",
            "AUTHOR",
            "PASSTHROUGH",
            "KEY_COLUMN",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    fn check(input: Value, expected: Value) {
        let mut v = input;
        redact_secret_keys(&mut v);
        assert_eq!(v, expected);
    }

    #[test]
    fn secret_keys_are_redacted_at_any_depth() {
        use serde_json::json;
        const R: &str = REDACTED_IN_DOCUMENTS;
        check(
            json!({"config": {"awsConfig": {"awsSecretAccessKey": "abc", "awsRegion": "us-east-1"}}}),
            json!({"config": {"awsConfig": {"awsSecretAccessKey": R, "awsRegion": "us-east-1"}}}),
        );
        check(
            json!({"awsSessionToken": R, "password": 12, "list": [{"apiKey": "k"}], "env": [{"HF_TOKEN": "hf_x"}]}),
            json!({"awsSessionToken": R, "password": R, "list": [{"apiKey": R}], "env": [{"HF_TOKEN": R}]}),
        );
        check(
            json!({"maxTotalTokens": 5, "MAX_TOTAL_TOKENS": "4096", "credentials": {"roleArn": "arn:x"}, "token": null}),
            json!({"maxTotalTokens": 5, "MAX_TOTAL_TOKENS": "4096", "credentials": {"roleArn": "arn:x"}, "token": null}),
        );
    }
}

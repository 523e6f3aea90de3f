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

/// Whether a value looks like a credential, whatever the key it is stored under: a Hugging Face,
/// OpenAI, GitHub or Slack token, an AWS access key id, a URL with a password, a JWT, or a long
/// random token (32+ characters of letters, digits and `_-+/=`, with upper case, lower case and
/// digits all present; plain hex digests and paths are not taken for secrets).
pub fn looks_like_credential(value: &str) -> bool {
    let v = value.trim();
    let token_chars = |s: &str, min: usize| {
        s.len() >= min
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    let prefixed = [
        ("hf_", 20),
        ("sk-", 20),
        ("ghp_", 20),
        ("gho_", 20),
        ("github_pat_", 20),
        ("glpat-", 16),
        ("xoxb-", 16),
        ("xoxp-", 16),
        ("AIza", 30),
    ];
    if prefixed.iter().any(|(p, min)| {
        v.strip_prefix(p)
            .is_some_and(|rest| token_chars(rest, *min))
    }) {
        return true;
    }
    // AWS access key ids.
    if (v.starts_with("AKIA") || v.starts_with("ASIA"))
        && v.len() == 20
        && v.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return true;
    }
    // scheme://user:password@host
    if let Some((_, rest)) = v.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if userinfo.contains(':') {
                return true;
            }
        }
    }
    // A JWT: three base64url parts, the header starting with `{"`.
    let parts: Vec<&str> = v.split('.').collect();
    if parts.len() == 3 && v.starts_with("eyJ") && parts.iter().all(|p| token_chars(p, 4)) {
        return true;
    }
    // A long random token (an AWS secret key has `/` and `+`; a Hugging Face repo id such as
    // `meta-llama/Meta-Llama-3-8B-Instruct` has `/` with `-` or `_`, and is not one).
    let slash_ok = !v.contains('/') || !(v.contains('-') || v.contains('_'));
    v.len() >= 32
        && slash_ok
        && !v.contains("://")
        && !v.starts_with('/')
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-+/=".contains(&b))
        && v.bytes().any(|b| b.is_ascii_uppercase())
        && v.bytes().any(|b| b.is_ascii_lowercase())
        && v.bytes().any(|b| b.is_ascii_digit())
}

/// Whether a container environment variable is a known-harmless serving setting whose value may
/// be stored: the prefixes SageMaker, Hugging Face TGI/TEI, DJL/LMI, vLLM and the frameworks use
/// for their settings (`SAGEMAKER_*`, `SM_*`, `HF_MODEL_*`, `MAX_*`, `OPTION_*`, ...) and a few
/// plain names, never a key that [`is_secret_key`] flags. Every other variable's value is
/// replaced: an unknown name (`DATABASE_URL`, `SIGNING_KEY`, `GITHUB_PAT`) may hold anything.
pub fn is_harmless_env_key(key: &str) -> bool {
    const PREFIXES: [&str; 22] = [
        "SAGEMAKER_",
        "SM_",
        "HF_MODEL_",
        "HF_TASK",
        "MAX_",
        "MIN_",
        "OPTION_",
        "NUM_",
        "TS_",
        "MMS_",
        "OMP_",
        "MKL_",
        "CUDA_",
        "NCCL_",
        "VLLM_",
        "TGI_",
        "TEI_",
        "LMI_",
        "SERVING_",
        "ENDPOINT_SERVER_",
        "TRANSFORMERS_",
        "TOKENIZERS_",
    ];
    const NAMES: [&str; 21] = [
        "MESSAGES_API_ENABLED",
        "TRUST_REMOTE_CODE",
        "HF_HUB_OFFLINE",
        "HF_HUB_ENABLE_HF_TRANSFER",
        "DISABLE_CUSTOM_KERNELS",
        "SHARDED",
        "MODEL_LOADING_TIMEOUT",
        "HF_MODEL_ID",
        "HF_MODEL_REVISION",
        "HF_TASK",
        "MODEL_ID",
        "MODEL_NAME",
        "QUANTIZE",
        "DTYPE",
        "ENGINE",
        "TENSOR_PARALLEL_DEGREE",
        "ROLLING_BATCH",
        "BATCH_SIZE",
        "POOLING",
        "MODEL_CACHE_ROOT",
        "PYTHONUNBUFFERED",
    ];
    let upper = key.to_ascii_uppercase();
    !is_secret_key(key)
        && (NAMES.contains(&upper.as_str()) || PREFIXES.iter().any(|p| upper.starts_with(p)))
}

/// Whether a container environment entry may be stored as it is: a harmless key
/// ([`is_harmless_env_key`]) whose value does not look like a credential.
pub fn env_value_is_storable(key: &str, value: &str) -> bool {
    is_harmless_env_key(key) && !looks_like_credential(value)
}

/// Makes a JSON document safe to store or show: replaces with [`REDACTED_IN_DOCUMENTS`] the value
/// of every secret-looking key ([`is_secret_key`]), every entry of a container `environment`
/// object that is not storable ([`env_value_is_storable`]), and every hyperparameter value that
/// looks like a credential ([`looks_like_credential`]), at any depth. Other strings (names,
/// descriptions, URIs) are left alone: the value check is for settings, not for prose.
pub fn redact_secret_keys(value: &mut Value) {
    let redacted = || Value::String(REDACTED_IN_DOCUMENTS.to_owned());
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let is_leaf = !(v.is_object() || v.is_array() || v.is_null());
                if is_leaf && is_secret_key(key) {
                    *v = redacted();
                } else if key.eq_ignore_ascii_case("environment") && v.is_object() {
                    if let Value::Object(env) = v {
                        for (name, entry) in env.iter_mut() {
                            let keep = match &*entry {
                                Value::String(text) => {
                                    text == REDACTED_IN_DOCUMENTS
                                        || env_value_is_storable(name, text)
                                }
                                Value::Null => true,
                                other => env_value_is_storable(name, &other.to_string()),
                            };
                            if !keep {
                                *entry = redacted();
                            }
                        }
                    }
                } else if key.eq_ignore_ascii_case("hyperparameters")
                    || key.eq_ignore_ascii_case("mlHyperParameters")
                {
                    redact_credential_values(v);
                    redact_secret_keys(v);
                } else {
                    redact_secret_keys(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_secret_keys),
        _ => {}
    }
}

/// Replaces every string in `value` that looks like a credential.
fn redact_credential_values(value: &mut Value) {
    match value {
        Value::String(text) if looks_like_credential(text) => {
            *value = Value::String(REDACTED_IN_DOCUMENTS.to_owned())
        }
        Value::Object(map) => map.values_mut().for_each(redact_credential_values),
        Value::Array(items) => items.iter_mut().for_each(redact_credential_values),
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
    fn credential_values_are_recognised_whatever_the_key() {
        for v in [
            "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345",
            "sk-proj-AbCdEfGhIjKlMnOpQrStUv12",
            "AKIAIOSFODNN7EXAMPLE",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "postgres://user:p4ss@db.internal:5432/app",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXZhbHVl",
            "Zx8Kq2Lm9Pw3Rt7Yv1Bn5Cd4Fg6Hj0Ks8Ua2We4",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ] {
            assert!(looks_like_credential(v), "{v}");
        }
        for v in [
            "inference.py",
            "s3://bucket/models/churn/model.tar.gz",
            "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.1",
            "meta-llama/Meta-Llama-3-8B-Instruct",
            "/opt/ml/model/code",
            "4096",
            "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
            "https://huggingface.co/models",
            "skewed-distribution",
        ] {
            assert!(!looks_like_credential(v), "{v}");
        }
    }

    #[test]
    fn only_harmless_environment_entries_keep_their_value() {
        use serde_json::json;
        const R: &str = REDACTED_IN_DOCUMENTS;
        check(
            json!({"containers": [{"environment": {
                "SAGEMAKER_PROGRAM": "inference.py", "HF_MODEL_ID": "meta-llama/Llama-3-8B",
                "MAX_TOTAL_TOKENS": "4096", "SM_NUM_GPUS": "1", "OPTION_ROLLING_BATCH": "auto",
                "HFToken": "abc", "OPENAI_KEY": "k", "SIGNING_KEY": "x", "GITHUB_PAT": "p",
                "DATABASE_URL": "postgres://u:p@h/db", "SAGEMAKER_SECRET_TOKEN": "t",
                "MAX_WEIRD": "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345"}}]}),
            json!({"containers": [{"environment": {
                "SAGEMAKER_PROGRAM": "inference.py", "HF_MODEL_ID": "meta-llama/Llama-3-8B",
                "MAX_TOTAL_TOKENS": "4096", "SM_NUM_GPUS": "1", "OPTION_ROLLING_BATCH": "auto",
                "HFToken": R, "OPENAI_KEY": R, "SIGNING_KEY": R, "GITHUB_PAT": R,
                "DATABASE_URL": R, "SAGEMAKER_SECRET_TOKEN": R, "MAX_WEIRD": R}}]}),
        );
        // Hyperparameter values that look like credentials go too, whatever their name; names
        // and other prose stay.
        check(
            json!({"name": "Zx8Kq2Lm9Pw3Rt7Yv1Bn5Cd4Fg6Hj0Ks8Ua2We4",
                   "mlHyperParameters": [{"name": "wandb", "value": "ghp_abcdefghijklmnopqrstuvwxyz0123456789"},
                                         {"name": "eta", "value": "0.1"}],
                   "trainingJob": {"hyperparameters": {"hub": "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345"}}}),
            json!({"name": "Zx8Kq2Lm9Pw3Rt7Yv1Bn5Cd4Fg6Hj0Ks8Ua2We4",
                   "mlHyperParameters": [{"name": "wandb", "value": R}, {"name": "eta", "value": "0.1"}],
                   "trainingJob": {"hyperparameters": {"hub": R}}}),
        );
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

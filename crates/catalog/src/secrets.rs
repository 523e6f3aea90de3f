//! Secrets at rest: the AWS secret keys and session tokens of stored connections are encrypted
//! before they reach the database file, so a copied catalog file (or its WAL) leaks nothing.
//!
//! The cipher is AES-256-GCM (RustCrypto `aes-gcm`) with a fresh random 96-bit nonce per value
//! from the operating system, and the field name (`awsSecretAccessKey`...) as associated data,
//! so a ciphertext cannot be moved to another field. A value is stored as
//! `enc:v1:<base64(nonce || ciphertext || tag)>`.
//!
//! The 32-byte key comes from the `SAGEBRIDGE_SECRET_KEY` environment variable (standard base64,
//! padded or not, or 64 hexadecimal digits), or else from the key file `<catalog>.key` beside the
//! catalog, created with mode 0600 on first start. A key file readable by group or others is
//! refused. The catalog keeps an encrypted check value, so a wrong key is reported when the
//! catalog is opened, as a typed error, and never decrypts into garbage.
//!
//! Plaintext secrets only travel inside [`ClearAwsConfig`], which is not `Serialize` and whose
//! `Debug` hides them: an API layer cannot return one by accident.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{CatalogError, Result};

/// The environment variable holding the catalog's secret key.
pub const SECRET_KEY_ENV: &str = "SAGEBRIDGE_SECRET_KEY";

/// The `awsConfig` fields that are secrets, encrypted at rest and never shown.
pub const SECRET_FIELDS: [&str; 2] = ["awsSecretAccessKey", "awsSessionToken"];

/// What a secret looks like when shown (the AWS crate's redaction marker). An update that sends
/// this value back for a secret field keeps the stored secret.
pub const REDACTED: &str = "**********";

/// The prefix of an encrypted value.
const ENCRYPTED_PREFIX: &str = "enc:v1:";
const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;

/// A 32-byte AES-256-GCM key. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; KEY_LEN]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(**********)")
    }
}

/// Where the secret key in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The `SAGEBRIDGE_SECRET_KEY` environment variable.
    Env,
    /// The key file beside the catalog; `created` is true when this start made it.
    File { path: PathBuf, created: bool },
}

impl SecretKey {
    /// A new random key from the operating system's generator.
    pub fn generate() -> Self {
        Self(<[u8; KEY_LEN]>::generate())
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Parses a key written as standard base64 (padded or not) or as 64 hexadecimal digits.
    /// `origin` names where the text came from, for the error; the text itself is never shown.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let text = text.trim();
        let bytes = if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).ok()
        } else {
            STANDARD
                .decode(text)
                .or_else(|_| STANDARD_NO_PAD.decode(text))
                .ok()
        };
        let bytes = bytes.ok_or_else(|| CatalogError::SecretKeyInvalid {
            origin: origin.to_owned(),
            reason: "it is neither base64 nor 64 hexadecimal digits".to_owned(),
        })?;
        let bytes: [u8; KEY_LEN] =
            bytes
                .try_into()
                .map_err(|bytes: Vec<u8>| CatalogError::SecretKeyInvalid {
                    origin: origin.to_owned(),
                    reason: format!("it holds {} bytes, not {KEY_LEN}", bytes.len()),
                })?;
        Ok(Self(bytes))
    }

    /// The key as standard base64, the form of the key file and of `SAGEBRIDGE_SECRET_KEY`.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// The key file of a catalog: `<catalog file name>.key` in the same folder.
    pub fn key_file_path(catalog: &Path) -> PathBuf {
        let mut name = catalog.as_os_str().to_owned();
        name.push(".key");
        PathBuf::from(name)
    }

    /// The key for the catalog at `catalog`: `SAGEBRIDGE_SECRET_KEY` when set (and not empty),
    /// else the key file beside the catalog, created on first use.
    pub fn for_catalog(catalog: &Path) -> Result<(Self, KeySource)> {
        let env = std::env::var(SECRET_KEY_ENV).ok();
        Self::resolve(env.as_deref(), catalog)
    }

    /// [`SecretKey::for_catalog`] with the environment variable's value passed in.
    pub fn resolve(env_value: Option<&str>, catalog: &Path) -> Result<(Self, KeySource)> {
        if let Some(text) = env_value.filter(|t| !t.trim().is_empty()) {
            return Ok((Self::parse(text, SECRET_KEY_ENV)?, KeySource::Env));
        }
        let path = Self::key_file_path(catalog);
        let (key, created) = Self::load_or_create_file(&path)?;
        Ok((key, KeySource::File { path, created }))
    }

    /// Reads the key file at `path`, or creates it with a new random key (mode 0600, written to
    /// a private temporary file and linked into place, so two processes starting together end
    /// up with the same key). Returns the key and whether this call created the file.
    pub fn load_or_create_file(path: &Path) -> Result<(Self, bool)> {
        match Self::read_file(path) {
            Ok(key) => return Ok((key, false)),
            Err(CatalogError::KeyFile { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(other) => return Err(other),
        }
        let key = Self::generate();
        let key_file_error = |source| CatalogError::KeyFile {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(key_file_error)?;
        }
        let mut temp_name = path.as_os_str().to_owned();
        temp_name.push(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
        let temp = PathBuf::from(temp_name);
        let written = write_private(&temp, format!("{}\n", key.to_base64()).as_bytes())
            .and_then(|()| std::fs::hard_link(&temp, path));
        // The temporary name goes away whatever happened; the link (if made) keeps the file.
        let _ = std::fs::remove_file(&temp);
        match written {
            Ok(()) => {
                tracing::info!(path = %path.display(), "created the catalog secret key file");
                Ok((key, true))
            }
            // Another process created it first: use theirs.
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok((Self::read_file(path)?, false))
            }
            Err(error) => Err(key_file_error(error)),
        }
    }

    fn read_file(path: &Path) -> Result<Self> {
        let key_file_error = |source| CatalogError::KeyFile {
            path: path.to_owned(),
            source,
        };
        let metadata = std::fs::metadata(path).map_err(key_file_error)?;
        check_private(path, &metadata)?;
        let text = std::fs::read_to_string(path).map_err(key_file_error)?;
        Self::parse(&text, &format!("key file {}", path.display()))
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(unix)]
fn check_private(path: &Path, metadata: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CatalogError::KeyFilePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _metadata: &std::fs::Metadata) -> Result<()> {
    Ok(())
}

/// The cipher of one catalog.
#[derive(Clone)]
pub(crate) struct SecretBox {
    cipher: Aes256Gcm,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox")
    }
}

impl SecretBox {
    pub(crate) fn new(key: &SecretKey) -> Self {
        let key = Key::<Aes256Gcm>::from(key.0);
        Self {
            cipher: Aes256Gcm::new(&key),
        }
    }

    /// `enc:v1:<base64(nonce || ciphertext)>`, with `field` as associated data.
    pub(crate) fn encrypt(&self, field: &str, plaintext: &str) -> Result<String> {
        let nonce = Nonce::generate();
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: field.as_bytes(),
                },
            )
            .map_err(|_| CatalogError::SecretCorrupt {
                field: field.to_owned(),
            })?;
        let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
        bytes.extend_from_slice(nonce.as_slice());
        bytes.extend_from_slice(&sealed);
        Ok(format!("{ENCRYPTED_PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// The inverse of [`SecretBox::encrypt`]: a wrong key is [`CatalogError::SecretKeyMismatch`].
    pub(crate) fn decrypt(&self, field: &str, stored: &str) -> Result<String> {
        let corrupt = || CatalogError::SecretCorrupt {
            field: field.to_owned(),
        };
        let encoded = stored.strip_prefix(ENCRYPTED_PREFIX).ok_or_else(corrupt)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| corrupt())?;
        if bytes.len() < NONCE_LEN {
            return Err(corrupt());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| corrupt())?;
        let plain = self
            .cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: field.as_bytes(),
                },
            )
            .map_err(|_| CatalogError::SecretKeyMismatch)?;
        String::from_utf8(plain).map_err(|_| corrupt())
    }
}

/// The associated data and plaintext of the check value that tells a wrong key at open.
pub(crate) const KEY_CHECK_FIELD: &str = "secretKeyCheck";
pub(crate) const KEY_CHECK_PLAINTEXT: &str = "sagebridge catalog secret key";

/// Which secrets of an `awsConfig` are set. This is what the API shows instead of the secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretFlags {
    pub aws_secret_access_key: bool,
    pub aws_session_token: bool,
}

impl SecretFlags {
    fn set(&mut self, field: &str) {
        match field {
            "awsSecretAccessKey" => self.aws_secret_access_key = true,
            "awsSessionToken" => self.aws_session_token = true,
            _ => {}
        }
    }

    /// Whether any secret is set.
    pub fn any(&self) -> bool {
        self.aws_secret_access_key || self.aws_session_token
    }
}

/// An `awsConfig` object (the workflow file's keys) that may hold secrets in clear.
///
/// Not `Serialize`, and `Debug` shows secrets as [`REDACTED`]: the only way to the plaintext is
/// [`ClearAwsConfig::expose`], so every use of it is easy to find.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct ClearAwsConfig(Value);

impl Default for ClearAwsConfig {
    /// An empty object: no setting, the default credential chain.
    fn default() -> Self {
        Self(Value::Object(Map::new()))
    }
}

impl ClearAwsConfig {
    /// Wraps an `awsConfig` JSON object.
    pub fn new(value: Value) -> Self {
        Self(value)
    }

    /// The object with its secrets in clear, for building AWS credentials, never for a response
    /// or a log.
    pub fn expose(&self) -> &Value {
        &self.0
    }

    /// [`ClearAwsConfig::expose`], by value.
    pub fn into_exposed(self) -> Value {
        self.0
    }

    /// The object without its secrets, and which of them are set.
    pub fn redacted(&self) -> (Value, SecretFlags) {
        redact(&self.0)
    }
}

impl fmt::Debug for ClearAwsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.clone();
        if let Value::Object(map) = &mut shown {
            for field in SECRET_FIELDS {
                if let Some(value) = map.get_mut(field) {
                    *value = Value::String(REDACTED.to_owned());
                }
            }
        }
        write!(f, "ClearAwsConfig({shown})")
    }
}

/// `config` without its secret fields, and which of them held a value.
pub(crate) fn redact(config: &Value) -> (Value, SecretFlags) {
    let mut flags = SecretFlags::default();
    let mut shown = config.clone();
    if let Value::Object(map) = &mut shown {
        for field in SECRET_FIELDS {
            if let Some(value) = map.remove(field) {
                if value.as_str().is_some_and(|s| !s.is_empty()) {
                    flags.set(field);
                }
            }
        }
    }
    (shown, flags)
}

/// Replaces every string under a secret field name, at any depth, with [`REDACTED`]: for
/// documents whose writers were meant to redact them already (defence in depth).
pub(crate) fn scrub_secrets(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if SECRET_FIELDS.contains(&key.as_str()) && item.is_string() {
                    *item = Value::String(REDACTED.to_owned());
                } else {
                    scrub_secrets(item);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub_secrets),
        _ => {}
    }
}

/// The name of the first secret field found anywhere in `value`, if any.
pub(crate) fn find_secret_field(value: &Value) -> Option<&'static str> {
    match value {
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            SECRET_FIELDS
                .iter()
                .copied()
                .find(|field| field == key)
                .or_else(|| find_secret_field(item))
        }),
        Value::Array(items) => items.iter().find_map(find_secret_field),
        _ => None,
    }
}

/// The `awsConfig` to store: `incoming` with its secrets encrypted. A secret field left out or
/// sent as [`REDACTED`] keeps the value of `previous` (as stored, still encrypted); `null` or an
/// empty string removes it.
pub(crate) fn seal(
    cipher: Option<&SecretBox>,
    incoming: &ClearAwsConfig,
    previous: Option<&Value>,
) -> Result<Value> {
    let Value::Object(map) = incoming.expose() else {
        return Err(CatalogError::invalid(
            "awsConfig",
            "awsConfig must be a JSON object",
        ));
    };
    let mut stored: Map<String, Value> = map.clone();
    for field in SECRET_FIELDS {
        let kept = || {
            previous
                .and_then(|p| p.get(field))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let next = match map.get(field) {
            None => kept().map(Value::String),
            Some(Value::String(s)) if s == REDACTED => kept().map(Value::String),
            Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => {
                let cipher = cipher.ok_or(CatalogError::SecretKeyMissing)?;
                Some(Value::String(cipher.encrypt(field, s)?))
            }
            Some(_) => {
                return Err(CatalogError::invalid(
                    "awsConfig",
                    format!("{field} must be a string"),
                ))
            }
        };
        match next {
            Some(value) => {
                stored.insert(field.to_owned(), value);
            }
            None => {
                stored.remove(field);
            }
        }
    }
    Ok(Value::Object(stored))
}

/// A stored `awsConfig` with its secrets decrypted.
pub(crate) fn open(cipher: Option<&SecretBox>, stored: &Value) -> Result<ClearAwsConfig> {
    let mut clear = stored.clone();
    if let Value::Object(map) = &mut clear {
        for field in SECRET_FIELDS {
            if let Some(Value::String(sealed)) = map.get(field) {
                let cipher = cipher.ok_or(CatalogError::SecretKeyMissing)?;
                let plain = cipher.decrypt(field, sealed)?;
                map.insert(field.to_owned(), Value::String(plain));
            }
        }
    }
    Ok(ClearAwsConfig(clear))
}

/// A gateway API key, shown once at creation. `Debug` hides it and it is not `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    /// The key itself, to show its owner once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// The prefix of every generated gateway API key.
pub const API_KEY_PREFIX: &str = "sbk_";

/// How many leading characters of a key are kept for display (`sbk_` and four more).
pub const API_KEY_DISPLAY_CHARS: usize = 8;

/// A new random gateway API key: `sbk_` and 256 random bits in URL-safe base64.
pub(crate) fn generate_api_key() -> ApiKeySecret {
    let bytes = <[u8; 32]>::generate();
    ApiKeySecret(format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// The SHA-256 of an API key, in lowercase hex: what the catalog stores and looks keys up by.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_value_round_trips_and_is_bound_to_its_field() {
        let cipher = SecretBox::new(&SecretKey::generate());
        let sealed = cipher
            .encrypt("awsSecretAccessKey", "s3cret")
            .expect("encrypt");
        assert!(sealed.starts_with("enc:v1:"));
        assert!(!sealed.contains("s3cret"));
        assert_ne!(
            sealed,
            cipher
                .encrypt("awsSecretAccessKey", "s3cret")
                .expect("again"),
            "a fresh nonce each time"
        );
        assert_eq!(
            cipher
                .decrypt("awsSecretAccessKey", &sealed)
                .expect("decrypt"),
            "s3cret"
        );
        assert!(matches!(
            cipher.decrypt("awsSessionToken", &sealed),
            Err(CatalogError::SecretKeyMismatch)
        ));
        assert!(matches!(
            SecretBox::new(&SecretKey::generate()).decrypt("awsSecretAccessKey", &sealed),
            Err(CatalogError::SecretKeyMismatch)
        ));
        assert!(matches!(
            cipher.decrypt("awsSecretAccessKey", "enc:v1:@@"),
            Err(CatalogError::SecretCorrupt { .. })
        ));
    }

    #[test]
    fn keys_parse_from_base64_and_hex_only_at_32_bytes() {
        let key = SecretKey::generate();
        assert_eq!(SecretKey::parse(&key.to_base64(), "t").expect("b64"), key);
        assert_eq!(
            SecretKey::parse(key.to_base64().trim_end_matches('='), "t").expect("no pad"),
            key
        );
        assert_eq!(
            SecretKey::parse(&hex::encode(key.0), "t").expect("hex"),
            key
        );
        assert!(matches!(
            SecretKey::parse("c2hvcnQ=", "t"),
            Err(CatalogError::SecretKeyInvalid { .. })
        ));
        assert!(matches!(
            SecretKey::parse("not a key!", "t"),
            Err(CatalogError::SecretKeyInvalid { .. })
        ));
        assert_eq!(format!("{key:?}"), "SecretKey(**********)");
    }

    #[test]
    fn seal_keeps_omitted_secrets_and_removes_null_ones() {
        let cipher = SecretBox::new(&SecretKey::generate());
        let first = seal(
            Some(&cipher),
            &ClearAwsConfig::new(json!({"awsRegion": "us-east-1",
                "awsSecretAccessKey": "a", "awsSessionToken": "b"})),
            None,
        )
        .expect("seal");
        let kept = seal(
            Some(&cipher),
            &ClearAwsConfig::new(json!({"awsRegion": "eu-west-1",
                "awsSecretAccessKey": REDACTED, "awsSessionToken": null})),
            Some(&first),
        )
        .expect("reseal");
        assert_eq!(kept["awsSecretAccessKey"], first["awsSecretAccessKey"]);
        assert!(kept.get("awsSessionToken").is_none());
        let clear = open(Some(&cipher), &kept).expect("open");
        assert_eq!(
            clear.expose(),
            &json!({"awsRegion": "eu-west-1", "awsSecretAccessKey": "a"})
        );
        assert!(!format!("{clear:?}").contains("\"a\""));
        let (shown, flags) = clear.redacted();
        assert_eq!(shown, json!({"awsRegion": "eu-west-1"}));
        assert!(flags.aws_secret_access_key && !flags.aws_session_token);
        assert_eq!(ClearAwsConfig::default().expose(), &json!({}));
        assert!(matches!(
            seal(
                None,
                &ClearAwsConfig::new(json!({"awsSecretAccessKey": "x"})),
                None
            ),
            Err(CatalogError::SecretKeyMissing)
        ));
    }

    #[test]
    fn api_keys_are_random_and_hashed() {
        let a = generate_api_key();
        let b = generate_api_key();
        assert_ne!(a, b);
        assert!(a.expose().starts_with(API_KEY_PREFIX));
        assert_eq!(a.expose().len(), API_KEY_PREFIX.len() + 43);
        assert_eq!(hash_api_key("abc").len(), 64);
        assert_eq!(
            hash_api_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(format!("{a:?}"), REDACTED);
    }
}

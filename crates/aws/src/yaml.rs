//! Strict YAML configuration loading shared by every sagebridge config file.
//!
//! serde's `deny_unknown_fields` stops at the first unknown key and knows no line numbers. We
//! want every problem in a file at once, each with file, line, column and the keys that are
//! valid there. So loading goes in four passes:
//!
//! 1. `serde-saphyr` parses the text into a [`Node`] tree that keeps the location of every key
//!    and value (YAML syntax errors stop here, with their location).
//! 2. `${ENV_VAR}` references in string values are replaced (all unset variables are reported).
//! 3. The tree is deserialized into the target type through our own serde `Deserializer`,
//!    which knows each struct's field list: unknown keys are collected (and skipped) rather
//!    than fatal, and a type error is reported at the innermost value that caused it.
//! 4. The typed value's [`Validate`] pass collects semantic problems by dotted path; each is
//!    mapped back to the location of that path in the file.
//!
//! Structs loaded this way must not use `#[serde(flatten)]` (it hides the field list).

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde::Deserialize;
use serde_saphyr::Spanned;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: u64,
    pub column: u64,
    /// Dotted key path, e.g. `source.serviceConnection.config.awsConfig.awsRegion`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in one config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "{n} problem{} in the configuration:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A semantic problem found by [`Validate`]: where (dotted path) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

/// Collects [`Problem`]s with the current key path.
#[derive(Debug, Default)]
pub struct Problems {
    stack: Vec<String>,
    pub items: Vec<Problem>,
}

impl Problems {
    /// Runs `f` with `key` pushed on the path.
    pub fn at<R>(&mut self, key: &str, f: impl FnOnce(&mut Self) -> R) -> R {
        self.stack.push(key.to_owned());
        let r = f(self);
        self.stack.pop();
        r
    }

    /// Reports a problem at `key` below the current path (`""` for the current path itself).
    pub fn add(&mut self, key: &str, message: impl Into<String>) {
        let mut path = self.stack.join(".");
        if !key.is_empty() {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
        }
        self.items.push(Problem {
            path,
            message: message.into(),
        });
    }
}

/// A semantic validation pass over a parsed config.
pub trait Validate {
    fn validate(&self, problems: &mut Problems);
}

/// A config's text, where it came from and how to look up environment variables.
pub struct ConfigText<'a> {
    /// Shown in errors (the file path, usually).
    pub name: &'a str,
    pub text: &'a str,
    /// Looks up `${VAR}`; `std::env::var` in production, a map in tests.
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// Reads, interpolates, deserializes and validates a config file.
pub fn load_file<T: DeserializeOwned + Validate>(path: &Path) -> Result<T, ConfigErrors> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: name.clone(),
            line: 0,
            column: 0,
            path: String::new(),
            message: format!("cannot read the file: {e}"),
        }])
    })?;
    let env = |k: &str| std::env::var(k).ok();
    load(&ConfigText {
        name: &name,
        text: &text,
        env: &env,
    })
}

/// [`load_file`] on text already in memory.
pub fn load<T: DeserializeOwned + Validate>(src: &ConfigText<'_>) -> Result<T, ConfigErrors> {
    let err = |line: u64, column: u64, path: &str, message: String| ConfigError {
        file: src.name.to_owned(),
        line,
        column,
        path: path.to_owned(),
        message,
    };
    let mut root: Spanned<Node> = match serde_saphyr::from_str(src.text) {
        Ok(Some(n)) => n,
        Ok(None) => {
            return Err(ConfigErrors(vec![err(
                1,
                1,
                "",
                "the file is empty".into(),
            )]));
        }
        Err(e) => {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            let msg = e.without_snippet().to_string();
            return Err(ConfigErrors(vec![err(
                line,
                column,
                "",
                format!("invalid YAML: {msg}"),
            )]));
        }
    };

    let mut errors = Vec::new();
    interpolate(&mut root, "", src, &mut errors);
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }

    // A type error aborts serde's derive at that value. To still check the rest of the file,
    // the offending value is recorded, replaced by a zero value of the expected type (empty
    // text, 0, empty list, a struct of zeros: see [`Zero`]) and the whole tree deserialized
    // again. Each round replaces one more path, so this ends.
    let skipped = RefCell::new(HashSet::<String>::new());
    let mut errors = Vec::new();
    let mut value = None;
    for _ in 0..MAX_ROUNDS {
        let sink = RefCell::new(Vec::new());
        let de = NodeDe {
            node: &root,
            path: String::new(),
            file: src.name,
            sink: &sink,
            skipped: &skipped,
        };
        let parsed = T::deserialize(de);
        errors.extend(sink.into_inner());
        match parsed {
            Ok(v) => {
                value = Some(v);
                break;
            }
            Err(e) => {
                let (line, column, mut path) = e.at.unwrap_or((0, 0, String::new()));
                if skipped.borrow().contains(&path) {
                    // The zero value does not fit this type either: stand in for the parent.
                    path = parent(&path).to_owned();
                } else {
                    errors.push(err(line, column, &path, e.msg));
                }
                if path.is_empty() || !skipped.borrow_mut().insert(path) {
                    break;
                }
            }
        }
    }
    let skipped = skipped.into_inner();
    if let Some(v) = &value {
        let mut problems = Problems::default();
        v.validate(&mut problems);
        for p in problems.items {
            // A problem about a value already reported (and removed) is not news.
            if skipped.iter().any(|s| related(s, &p.path)) {
                continue;
            }
            let (line, column) = locate(&root, &p.path);
            errors.push(err(line, column, &p.path, p.message));
        }
    }
    match value {
        Some(v) if errors.is_empty() => Ok(v),
        _ => {
            // Each round reports the unknown keys it passes again: keep the first of each.
            let mut seen = HashSet::new();
            errors.retain(|e| seen.insert((e.line, e.column, e.message.clone())));
            errors.sort_by_key(|e| (e.line, e.column));
            Err(ConfigErrors(errors))
        }
    }
}

/// How many values with a wrong type one load reports before it gives up.
const MAX_ROUNDS: usize = 64;

/// `a.b[2]` -> `a.b`, `a.b` -> `a`, `a` -> ``.
fn parent(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(i) => &path[..i],
        None => "",
    }
}

/// Whether one dotted path is the other or lies inside it.
fn related(a: &str, b: &str) -> bool {
    let inside = |outer: &str, inner: &str| {
        inner == outer
            || outer.is_empty()
            || inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    };
    inside(a, b) || inside(b, a)
}

/// A parsed YAML value with the location of every piece.
#[derive(Debug, Clone)]
enum Node {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl Node {
    fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Int(_) => "an integer",
            Node::Float(_) => "a number",
            Node::Str(_) => "a string",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Int(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
                Ok(Node::Int(v.into()))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
                Ok(Node::Int(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Node, E> {
                Ok(Node::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<Node>>()? {
                    out.push(item);
                }
                Ok(Node::Seq(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<Spanned<String>>()? {
                    let v = map.next_value::<Spanned<Node>>()?;
                    out.push((k, v));
                }
                Ok(Node::Map(out))
            }
        }
        d.deserialize_any(V)
    }
}

fn loc(n: &Spanned<Node>) -> (u64, u64) {
    (n.referenced.line(), n.referenced.column())
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Replaces `${NAME}` and `${NAME:-default}` in string values; `$${` stands for a literal `${`.
fn interpolate(
    node: &mut Spanned<Node>,
    path: &str,
    src: &ConfigText<'_>,
    errors: &mut Vec<ConfigError>,
) {
    let (line, column) = loc(node);
    match &mut node.value {
        Node::Str(s) if s.contains("${") => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(i) = rest.find("${") {
                if i > 0 && rest.as_bytes()[i - 1] == b'$' {
                    out.push_str(&rest[..i - 1]);
                    out.push_str("${");
                    rest = &rest[i + 2..];
                    continue;
                }
                out.push_str(&rest[..i]);
                let after = &rest[i + 2..];
                let Some(end) = after.find('}') else {
                    errors.push(ConfigError {
                        file: src.name.to_owned(),
                        line,
                        column,
                        path: path.to_owned(),
                        message: "unterminated `${` (write `$${` for a literal `${`)".into(),
                    });
                    return;
                };
                let inner = &after[..end];
                let (name, default) = match inner.split_once(":-") {
                    Some((n, d)) => (n, Some(d)),
                    None => (inner, None),
                };
                match (src.env)(name)
                    .filter(|v| !v.is_empty())
                    .or(default.map(str::to_owned))
                {
                    Some(v) => out.push_str(&v),
                    None => errors.push(ConfigError {
                        file: src.name.to_owned(),
                        line,
                        column,
                        path: path.to_owned(),
                        message: format!("environment variable `{name}` is not set"),
                    }),
                }
                rest = &after[end + 1..];
            }
            out.push_str(rest);
            *s = out;
        }
        Node::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, &format!("{path}[{i}]"), src, errors);
            }
        }
        Node::Map(entries) => {
            for (k, v) in entries.iter_mut() {
                let p = join(path, &k.value);
                interpolate(v, &p, src, errors);
            }
        }
        _ => {}
    }
}

/// The location of a dotted path (`a.b[2].c`); for a missing key, the closest existing parent.
fn locate(root: &Spanned<Node>, path: &str) -> (u64, u64) {
    let mut cur = root;
    if path.is_empty() {
        return loc(cur);
    }
    for part in path.split('.') {
        let (key, index) = match part.find('[') {
            Some(i) => (
                &part[..i],
                part[i + 1..].trim_end_matches(']').parse::<usize>().ok(),
            ),
            None => (part, None),
        };
        let Node::Map(entries) = &cur.value else {
            return loc(cur);
        };
        let Some((k, v)) = entries.iter().find(|(k, _)| k.value == key) else {
            return loc(cur);
        };
        cur = v;
        if let Some(i) = index {
            match &cur.value {
                Node::Seq(items) if i < items.len() => cur = &items[i],
                _ => return (k.referenced.line(), k.referenced.column()),
            }
        }
    }
    loc(cur)
}

/// Deserialization error: a message and, once known, where (line, column, path).
#[derive(Debug)]
struct DeError {
    msg: String,
    at: Option<(u64, u64, String)>,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            msg: msg.to_string(),
            at: None,
        }
    }
}

#[derive(Clone)]
struct NodeDe<'a> {
    node: &'a Spanned<Node>,
    path: String,
    file: &'a str,
    sink: &'a RefCell<Vec<ConfigError>>,
    /// Paths of values already reported with a wrong type: treated as absent.
    skipped: &'a RefCell<HashSet<String>>,
}

impl<'a> NodeDe<'a> {
    fn locate(&self, mut e: DeError) -> DeError {
        if e.at.is_none() {
            let (l, c) = loc(self.node);
            e.at = Some((l, c, self.path.clone()));
        }
        e
    }

    fn invalid(&self, expected: &str) -> DeError {
        self.locate(DeError {
            msg: format!("expected {expected}, found {}", self.node.value.kind()),
            at: None,
        })
    }
}

macro_rules! forward_any {
    ($($m:ident)*) => {
        $(fn $m<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
            self.deserialize_any(v)
        })*
    };
}

impl<'de> NodeDe<'de> {
    /// Deserializes this value, or a zero value in its place if it was already reported.
    fn value<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, DeError> {
        if self.skipped.borrow().contains(&self.path) {
            return seed.deserialize(Zero).map_err(|e| self.locate(e));
        }
        seed.deserialize(self)
    }

    fn child(&self, node: &'de Spanned<Node>, path: String) -> NodeDe<'de> {
        NodeDe {
            node,
            path,
            file: self.file,
            sink: self.sink,
            skipped: self.skipped,
        }
    }
}

impl<'de> de::Deserializer<'de> for NodeDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let node = self.node;
        let r = match &node.value {
            Node::Null => v.visit_unit(),
            Node::Bool(b) => v.visit_bool(*b),
            Node::Int(i) => match i64::try_from(*i) {
                Ok(x) => v.visit_i64(x),
                Err(_) => v.visit_i128(*i),
            },
            Node::Float(f) => v.visit_f64(*f),
            Node::Str(s) => v.visit_str(s),
            Node::Seq(_) => return self.deserialize_seq(v),
            Node::Map(_) => return self.deserialize_map(v),
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let node = self.node;
        match node.value {
            Node::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        // Numbers and booleans are accepted where text is expected (`externalId: 12345`).
        let node = self.node;
        let r = match &node.value {
            Node::Str(s) => v.visit_str(s),
            Node::Int(i) => v.visit_string(i.to_string()),
            Node::Float(f) => v.visit_string(f.to_string()),
            Node::Bool(b) => v.visit_string(b.to_string()),
            _ => return Err(self.invalid("a string")),
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let node = self.node;
        let Node::Seq(items) = &node.value else {
            return Err(self.invalid("a list"));
        };
        let access = Seq {
            de: self.clone(),
            items,
            i: 0,
        };
        v.visit_seq(access).map_err(|e| self.locate(e))
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let node = self.node;
        let Node::Map(entries) = &node.value else {
            return Err(self.invalid("a mapping"));
        };
        let access = Map {
            de: self.clone(),
            entries,
            i: 0,
            fields: None,
        };
        v.visit_map(access).map_err(|e| self.locate(e))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        let node = self.node;
        let Node::Map(entries) = &node.value else {
            let mut keys = fields.to_vec();
            keys.sort_unstable();
            return Err(self.invalid(&format!("a mapping with the keys {}", keys.join(", "))));
        };
        let access = Map {
            de: self.clone(),
            entries,
            i: 0,
            fields: Some(fields),
        };
        v.visit_map(access).map_err(|e| self.locate(e))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        let node = self.node;
        match &node.value {
            Node::Str(s) => {
                if !variants.contains(&s.as_str()) {
                    return Err(self.locate(DeError {
                        msg: format!(
                            "unknown value `{s}`; expected one of: {}",
                            variants.join(", ")
                        ),
                        at: None,
                    }));
                }
                let d: de::value::StrDeserializer<'_, DeError> = s.as_str().into_deserializer();
                v.visit_enum(d).map_err(|e| self.locate(e))
            }
            _ => Err(self.invalid(&format!("one of: {}", variants.join(", ")))),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _n: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }

    forward_any! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_bytes
        deserialize_byte_buf deserialize_unit deserialize_identifier
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _n: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_any(v)
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _n: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }
}

struct Seq<'de> {
    de: NodeDe<'de>,
    items: &'de [Spanned<Node>],
    i: usize,
}

impl<'de> SeqAccess<'de> for Seq<'de> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(item) = self.items.get(self.i) else {
            return Ok(None);
        };
        let path = format!("{}[{}]", self.de.path, self.i);
        self.i += 1;
        self.de.child(item, path).value(seed).map(Some)
    }
}

struct Map<'de> {
    de: NodeDe<'de>,
    entries: &'de [(Spanned<String>, Spanned<Node>)],
    i: usize,
    /// The struct's field names, when deserializing a struct: other keys are reported.
    fields: Option<&'static [&'static str]>,
}

impl<'de> MapAccess<'de> for Map<'de> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        while let Some((k, _)) = self.entries.get(self.i) {
            if let Some(fields) = self.fields {
                if !fields.contains(&k.value.as_str()) {
                    let mut valid: Vec<&str> = fields.to_vec();
                    valid.sort_unstable();
                    let hint = match closest(&k.value, fields) {
                        Some(c) => format!(" (did you mean `{c}`?)"),
                        None => String::new(),
                    };
                    self.de.sink.borrow_mut().push(ConfigError {
                        file: self.de.file.to_owned(),
                        line: k.referenced.line(),
                        column: k.referenced.column(),
                        path: join(&self.de.path, &k.value),
                        message: format!(
                            "unknown key `{}`{hint}; valid keys here: {}",
                            k.value,
                            valid.join(", ")
                        ),
                    });
                    self.i += 1;
                    continue;
                }
            }
            let d: de::value::StrDeserializer<'_, DeError> = k.value.as_str().into_deserializer();
            return seed.deserialize(d).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (k, v) = &self.entries[self.i];
        self.i += 1;
        self.de.child(v, join(&self.de.path, &k.value)).value(seed)
    }
}

macro_rules! zero_numbers {
    ($($m:ident)*) => {
        $(fn $m<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
            v.visit_u64(0)
        })*
    };
}

/// Stands in for a value already reported with a wrong type, so the rest of the file can
/// still be checked: the "zero" of whatever type is asked for.
struct Zero;

impl<'de> de::Deserializer<'de> for Zero {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }
    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_bool(false)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_f64(0.0)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_f64(0.0)
    }
    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_str("")
    }
    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_str("")
    }
    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_none()
    }
    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_seq(ZeroFields(&[]))
    }
    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_map(ZeroFields(&[]))
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_map(ZeroFields(fields))
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        let first = variants.first().copied().unwrap_or_default();
        let d: de::value::StrDeserializer<'_, DeError> = first.into_deserializer();
        v.visit_enum(d)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _n: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        v.visit_seq(ZeroFields(&[]))
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_bytes(&[])
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_bytes(&[])
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_str("")
    }
    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_char(' ')
    }

    zero_numbers! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    serde::forward_to_deserialize_any! {
        unit unit_struct tuple_struct ignored_any
    }
}

/// The fields of a zero struct (each a [`Zero`]), or an empty list or mapping.
struct ZeroFields(&'static [&'static str]);

impl<'de> MapAccess<'de> for ZeroFields {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((first, rest)) = self.0.split_first() else {
            return Ok(None);
        };
        self.0 = rest;
        let d: de::value::StrDeserializer<'_, DeError> = first.into_deserializer();
        seed.deserialize(d).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        seed.deserialize(Zero)
    }
}

impl<'de> SeqAccess<'de> for ZeroFields {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        _seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        Ok(None)
    }
}

/// The valid key nearest to a misspelt one, if it is close enough to be a likely typo.
fn closest<'a>(key: &str, fields: &[&'a str]) -> Option<&'a str> {
    let lower = key.to_ascii_lowercase();
    fields
        .iter()
        .map(|f| (edit_distance(&lower, &f.to_ascii_lowercase()), *f))
        .filter(|(d, f)| *d <= 2.max(f.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, f)| f)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Inner {
        region: Option<String>,
        #[serde(default)]
        count: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Outer {
        name: String,
        inner: Inner,
        #[serde(default)]
        #[allow(dead_code)]
        list: Vec<Inner>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
    }

    impl Validate for Outer {
        fn validate(&self, p: &mut Problems) {
            p.at("inner", |p| {
                if self.inner.region.is_none() {
                    p.add("region", "region is required");
                }
            });
        }
    }

    fn run(text: &str) -> Result<Outer, ConfigErrors> {
        let env = |k: &str| (k == "NAME").then(|| "from-env".to_owned());
        load(&ConfigText {
            name: "t.yaml",
            text,
            env: &env,
        })
    }

    #[test]
    fn parses_and_interpolates() {
        let o = run("name: ${NAME}-x\ninner:\n  region: us-east-1\n  count: 3\nlabels: {a: b}\n")
            .unwrap();
        assert_eq!(o.name, "from-env-x");
        assert_eq!(o.inner.count, 3);
        assert_eq!(o.labels["a"], "b");
        let o = run("name: ${UNSET:-dflt}/${NAME:-x}\ninner: {region: r}\n").unwrap();
        assert_eq!(o.name, "dflt/from-env");
    }

    #[test]
    fn every_unknown_key_reported_with_location() {
        let e = run("name: a\nnmae: b\ninner:\n  regoin: x\n  count: 1\nlist:\n  - bogus: 1\n")
            .unwrap_err();
        let msgs: Vec<String> = e.0.iter().map(|e| e.to_string()).collect();
        assert!(
            msgs[0].starts_with("t.yaml:2:1: nmae: unknown key `nmae` (did you mean `name`?)"),
            "{msgs:?}"
        );
        assert!(
            msgs[1].starts_with(
                "t.yaml:4:3: inner.regoin: unknown key `regoin` (did you mean `region`?)"
            ),
            "{msgs:?}"
        );
        assert!(
            msgs[1].contains("valid keys here: count, region"),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("t.yaml:7:5: list[0].bogus: unknown key")),
            "{msgs:?}"
        );
        assert_eq!(e.0.len(), 4, "{msgs:?}");
        assert_eq!(e.0[0].path, "nmae");
        // The validation pass still ran: region is missing in `inner`.
        assert!(
            msgs.iter()
                .any(|m| m.contains("inner.region: region is required")),
            "{msgs:?}"
        );
    }

    #[test]
    fn type_error_points_at_value() {
        let e = run("name: a\ninner:\n  region: x\n  count: [1]\n").unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!((e.0[0].line, e.0[0].column), (4, 10));
        assert_eq!(e.0[0].path, "inner.count");
        assert!(
            e.0[0].message.contains("invalid type"),
            "{}",
            e.0[0].message
        );
    }

    #[test]
    fn checking_goes_on_after_a_type_error() {
        // A wrong type first, then a misspelt key, a second wrong type inside a list, and a
        // validation problem: all four are reported in one go.
        let e = run(
            "name: [not, text]\ninner:\n  region: r\n  count: many\nlist:\n  - region: r\n    count: {a: 1}\nlabls: {}\n",
        )
        .unwrap_err();
        let msgs: Vec<String> = e.0.iter().map(|e| e.to_string()).collect();
        assert_eq!(e.0.len(), 4, "{msgs:?}");
        assert!(msgs[0].starts_with("t.yaml:1:7: name: "), "{msgs:?}");
        assert!(
            msgs[1].starts_with("t.yaml:4:10: inner.count: "),
            "{msgs:?}"
        );
        assert!(
            msgs[2].starts_with("t.yaml:7:12: list[0].count: "),
            "{msgs:?}"
        );
        assert!(
            msgs[3].starts_with("t.yaml:8:1: labls: unknown key `labls` (did you mean `labels`?)"),
            "{msgs:?}"
        );
        // `name` was replaced after its type error; no second "missing field" about it.
        assert!(
            !msgs.iter().any(|m| m.contains("missing field")),
            "{msgs:?}"
        );
        // ...and the validation pass ran on what was left: `inner.region` is missing.
        let e = run("name: [x]\ninner: {count: 1}\n").unwrap_err();
        let msgs: Vec<String> = e.0.iter().map(|e| e.to_string()).collect();
        assert_eq!(e.0.len(), 2, "{msgs:?}");
        assert!(
            msgs[1].contains("inner.region: region is required"),
            "{msgs:?}"
        );
    }

    #[test]
    fn unset_env_and_syntax_errors() {
        let e = run("name: ${NOPE}\ninner: {}\n").unwrap_err();
        assert_eq!(e.0[0].message, "environment variable `NOPE` is not set");
        assert_eq!(e.0[0].line, 1);
        let e = run("name: [a\n").unwrap_err();
        assert!(
            e.0[0].message.starts_with("invalid YAML"),
            "{}",
            e.0[0].message
        );
        assert!(run("$${NAME}").unwrap_err().0[0].message.starts_with(
            "expected a mapping with the keys inner, labels, list, name, found a string"
        ));
    }

    #[test]
    fn missing_required_field() {
        let e = run("inner: {region: x}\n").unwrap_err();
        assert!(
            e.0[0].message.contains("missing field `name`"),
            "{}",
            e.0[0].message
        );
    }
}

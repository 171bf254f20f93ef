//! Custom SBOM rules in Rego, written as conftest users write them: `package vouch`, a set rule
//! `deny` of message strings. A start is refused when `deny` holds any message.
//!
//! ```rego
//! package vouch
//! import rego.v1
//! deny contains msg if {
//!     some p in input.sbom.packages
//!     p.name == "event-stream"
//!     msg := sprintf("package %s is banned", [p.name])
//! }
//! ```
//!
//! Both Rego syntaxes are read: v1 (OPA 1.0: `contains`/`if`, with or without `import rego.v1`)
//! and v0 (`deny[msg] { ... }`). A policy is parsed once, at [`RegoPolicy::load`]; each
//! [`RegoPolicy::deny`] evaluates a clone of the prepared engine, under a wall-clock limit.
//!
//! - [`input_document`]: the `input` document a policy sees, built from a [`RegoInput`];
//! - [`RegoPolicy`]: a compiled policy file and its `data.vouch.deny` messages.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, LimitError, Value};
use serde_json::{json, Map, Value as Json};

use crate::sbom::{Package, Sbom, Vulnerability};

/// The largest policy file read, in bytes.
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;

/// How long one evaluation may run before it fails (and so denies).
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(2);

/// Interpreter steps between clock reads; a read costs far less than a step of this many.
const TIME_CHECK_INTERVAL: u32 = 256;

/// Nesting depth of an input document; the documents vouch builds are 5 deep.
const MAX_INPUT_DEPTH: usize = 128;

/// The rule vouch evaluates.
const DENY_RULE: &str = "data.vouch.deny";

/// Why a Rego policy could not be loaded or evaluated: one line, fit for a denial reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegoError {
    /// The file is missing, unreadable, too large or not UTF-8.
    #[error("rego policy {file}: {reason}")]
    Read { file: String, reason: String },
    /// The policy does not parse; `at` is `file:line:col` when regorus gives a position.
    #[error("rego policy {at}: {reason}")]
    Syntax { at: String, reason: String },
    /// The policy parses but has no `deny` rule in `package vouch`.
    #[error("rego policy {file}: defines no deny rule in package vouch{detail}")]
    NoDenyRule { file: String, detail: String },
    /// `deny` evaluated to something other than a set of strings.
    #[error("rego policy {file}: {reason}")]
    NotMessages { file: String, reason: String },
    /// Evaluation failed: a builtin error, conflicting rule values, an input vouch cannot convert.
    #[error("rego policy {at}: evaluation failed: {reason}")]
    Eval { at: String, reason: String },
    /// Evaluation ran longer than its limit.
    #[error("rego policy {file}: rego evaluation exceeded the time limit of {limit_ms} ms")]
    TimeLimit { file: String, limit_ms: u128 },
}

/// What a policy sees as `input`. See [`input_document`] for the document's fields.
#[derive(Debug, Clone, Copy)]
pub struct RegoInput<'a> {
    /// The image as named, e.g. `127.0.0.1:5000/app:v1`, or the repository when no tag is known.
    pub image_name: &'a str,
    /// `sha256:<hex>`.
    pub image_digest: &'a str,
    pub repository: &'a str,
    pub namespace: Option<&'a str>,
    pub pod_name: Option<&'a str>,
    /// `input.sbom` is null when there is none.
    pub sbom: Option<&'a Sbom>,
    /// The digest of the SBOM document (or of the attestation that carried it).
    pub sbom_digest: Option<&'a str>,
    pub vulnerabilities: &'a [Vulnerability],
}

/// The `input` document. Field names are stable; absent values are `null`, absent lists `[]`.
///
/// ```text
/// input.image.{name, digest, repository}
/// input.pod.{namespace, name}                  (null when not a Kubernetes pod)
/// input.sbom.{format, spec_version, created, tools, authors, digest}   (sbom null when none)
/// input.sbom.packages[].{id, name, version, purl, supplier, licenses, checksums, type}
///     licenses: license expressions as written, e.g. ["MIT OR Apache-2.0"]
///     checksums: {"SHA256": "<hex>", "SHA1": "<hex>", ...}
/// input.sbom.files[].{path, sha256, sha1, package}     (package: the containing package's id)
/// input.sbom.relationships[].{from, type, to}          (package ids, e.g. "DEPENDS_ON")
/// input.vulnerabilities[].{id, severity, packages, analysis}
///     severity: "critical" | "high" | "medium" | "low" | "none" | "unknown"
///     packages: the affected packages' names and purls (the raw reference when the SBOM has no
///               package by that id)
/// ```
pub fn input_document(input: &RegoInput<'_>) -> Json {
    let pod = if input.namespace.is_none() && input.pod_name.is_none() {
        Json::Null
    } else {
        json!({ "namespace": input.namespace, "name": input.pod_name })
    };
    let sbom = match input.sbom {
        Some(sbom) => sbom_document(sbom, input.sbom_digest),
        None => Json::Null,
    };
    let by_id: HashMap<&str, &Package> = input
        .sbom
        .map(|s| s.packages.iter().map(|p| (p.id.as_str(), p)).collect())
        .unwrap_or_default();
    let vulnerabilities: Vec<Json> = input
        .vulnerabilities
        .iter()
        .map(|v| vulnerability_document(v, &by_id))
        .collect();
    json!({
        "image": {
            "name": input.image_name,
            "digest": input.image_digest,
            "repository": input.repository,
        },
        "pod": pod,
        "sbom": sbom,
        "vulnerabilities": vulnerabilities,
    })
}

fn sbom_document(sbom: &Sbom, digest: Option<&str>) -> Json {
    let created = sbom.created.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    });
    let packages: Vec<Json> = sbom
        .packages
        .iter()
        .map(|p| {
            let checksums: Map<String, Json> = p
                .checksums
                .iter()
                .map(|c| (c.algorithm.clone(), Json::from(c.value.as_str())))
                .collect();
            json!({
                "id": p.id,
                "name": p.name,
                "version": p.version,
                "purl": p.purl,
                "supplier": p.supplier,
                "licenses": p.licenses,
                "checksums": checksums,
                "type": p.kind,
            })
        })
        .collect();
    let files: Vec<Json> = sbom
        .files
        .iter()
        .map(
            |f| json!({ "path": f.path, "sha256": f.sha256, "sha1": f.sha1, "package": f.package }),
        )
        .collect();
    let relationships: Vec<Json> = sbom
        .relationships
        .iter()
        .map(|r| json!({ "from": r.from, "type": r.kind, "to": r.to }))
        .collect();
    json!({
        "format": sbom.format.as_str(),
        "spec_version": sbom.spec_version,
        "created": created,
        "tools": sbom.tools,
        "authors": sbom.authors,
        "digest": digest,
        "packages": packages,
        "files": files,
        "relationships": relationships,
    })
}

fn vulnerability_document(v: &Vulnerability, by_id: &HashMap<&str, &Package>) -> Json {
    json!({
        "id": v.id,
        "severity": v.severity.as_str(),
        "packages": affected(v, by_id),
        "analysis": v.analysis,
    })
}

/// The names and purls of the packages a vulnerability affects; a reference that names no
/// package of the SBOM is kept as written (often a purl already).
fn affected<'a>(v: &'a Vulnerability, by_id: &HashMap<&str, &'a Package>) -> Vec<&'a str> {
    let mut packages: Vec<&str> = Vec::new();
    for reference in &v.affects {
        match by_id.get(reference.as_str()) {
            Some(p) => {
                packages.push(&p.name);
                if let Some(purl) = &p.purl {
                    packages.push(purl);
                }
            }
            None => packages.push(reference),
        }
    }
    let mut seen = BTreeSet::new();
    packages.retain(|p| seen.insert(*p));
    packages
}

/// A parsed policy, ready to evaluate. Cloning it is cheap; so is evaluating it repeatedly.
#[derive(Debug, Clone)]
pub struct RegoPolicy {
    name: String,
    /// Parsed and prepared; each evaluation works on a clone, as regorus evaluates through `&mut`.
    engine: Engine,
    time_limit: Duration,
}

impl RegoPolicy {
    /// Reads and parses a policy file of at most [`MAX_POLICY_BYTES`].
    pub fn load(path: &Path) -> Result<RegoPolicy, RegoError> {
        let file = path.display().to_string();
        let read_error = |reason: String| RegoError::Read {
            file: file.clone(),
            reason,
        };
        let handle = std::fs::File::open(path).map_err(|e| read_error(e.to_string()))?;
        let mut bytes = Vec::new();
        let limit = u64::try_from(MAX_POLICY_BYTES).unwrap_or(u64::MAX);
        handle
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| read_error(e.to_string()))?;
        if bytes.len() > MAX_POLICY_BYTES {
            return Err(read_error(format!(
                "larger than the limit of {MAX_POLICY_BYTES} bytes"
            )));
        }
        let source = String::from_utf8(bytes).map_err(|e| {
            read_error(format!(
                "not UTF-8 (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        RegoPolicy::from_source(&file, &source)
    }

    /// Parses a policy; `name` stands for its file in messages.
    pub fn from_source(name: &str, source: &str) -> Result<RegoPolicy, RegoError> {
        if source.len() > MAX_POLICY_BYTES {
            return Err(RegoError::Read {
                file: name.to_owned(),
                reason: format!("larger than the limit of {MAX_POLICY_BYTES} bytes"),
            });
        }
        let (mut engine, package) = parse(name, source)?;
        let has_deny = package == "data.vouch"
            && engine
                .has_declared_rule_rooted_at(name, "deny")
                .unwrap_or(false);
        if !has_deny {
            let detail = if package == "data.vouch" {
                String::new()
            } else {
                format!(
                    " (its package is {})",
                    package.strip_prefix("data.").unwrap_or(&package)
                )
            };
            return Err(RegoError::NoDenyRule {
                file: name.to_owned(),
                detail,
            });
        }
        // Prepare the engine (rule analysis, scheduling) once, by a query that reads no rule,
        // so that every evaluation starts from the prepared clone.
        engine
            .eval_query("true".to_owned(), false)
            .map_err(|e| condense_eval(name, &e))?;
        let mut policy = RegoPolicy {
            name: name.to_owned(),
            engine,
            time_limit: DEFAULT_TIME_LIMIT,
        };
        policy.set_time_limit(DEFAULT_TIME_LIMIT);
        Ok(policy)
    }

    /// The file name given at load.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Replaces the wall-clock limit of one evaluation ([`DEFAULT_TIME_LIMIT`] unless set).
    pub fn set_time_limit(&mut self, limit: Duration) {
        self.time_limit = limit;
        self.engine
            .set_execution_timer_config(ExecutionTimerConfig {
                limit,
                check_interval: NonZeroU32::new(TIME_CHECK_INTERVAL).unwrap_or(NonZeroU32::MIN),
            });
    }

    /// The sorted, deduplicated `data.vouch.deny` messages for `input`.
    pub fn deny(&self, input: &Json) -> Result<Vec<String>, RegoError> {
        let input = to_rego(input).map_err(|reason| RegoError::Eval {
            at: self.name.clone(),
            reason,
        })?;
        self.deny_value(input)
    }

    /// `self.deny(&input_document(input))`, faster: the input is built for regorus directly,
    /// without the JSON document in between.
    pub fn deny_input(&self, input: &RegoInput<'_>) -> Result<Vec<String>, RegoError> {
        self.deny_value(input_value(input))
    }

    /// [`RegoPolicy::deny`] over an input already converted to a regorus value.
    fn deny_value(&self, input: Value) -> Result<Vec<String>, RegoError> {
        let mut engine = self.engine.clone();
        engine.set_input(input);
        let value = engine
            .eval_rule(DENY_RULE.to_owned())
            .map_err(|e| self.eval_error(&e))?;
        let elements: Vec<&Value> = match &value {
            Value::Undefined => return Ok(Vec::new()),
            Value::Set(set) => set.iter().collect(),
            Value::Array(items) => items.iter().collect(),
            other => {
                return Err(RegoError::NotMessages {
                    file: self.name.clone(),
                    reason: format!("deny is {}, not a set of message strings", describe(other)),
                })
            }
        };
        let mut messages = BTreeSet::new();
        for element in elements {
            match element {
                Value::String(s) => {
                    messages.insert(s.to_string());
                }
                other => {
                    return Err(RegoError::NotMessages {
                        file: self.name.clone(),
                        reason: format!("deny holds {}, not a message string", describe(other)),
                    })
                }
            }
        }
        Ok(messages.into_iter().collect())
    }

    fn eval_error(&self, error: &anyhow::Error) -> RegoError {
        if error.chain().any(|e| {
            matches!(
                e.downcast_ref::<LimitError>(),
                Some(LimitError::TimeLimitExceeded { .. })
            )
        }) {
            return RegoError::TimeLimit {
                file: self.name.clone(),
                limit_ms: self.time_limit.as_millis(),
            };
        }
        condense_eval(&self.name, error)
    }
}

/// Parses as Rego v1 (OPA 1.0's default), else as v0. When neither parses, the error of the
/// syntax that read further is the one reported: it is the syntax the author meant.
fn parse(name: &str, source: &str) -> Result<(Engine, String), RegoError> {
    let attempt = |v0: bool| -> Result<(Engine, String), anyhow::Error> {
        let mut engine = Engine::new();
        engine.set_rego_v0(v0);
        engine.set_strict_builtin_errors(true);
        let package = engine.add_policy(name.to_owned(), source.to_owned())?;
        Ok((engine, package))
    };
    let v1_error = match attempt(false) {
        Ok(parsed) => return Ok(parsed),
        Err(e) => condense(name, &e),
    };
    let v0_error = match attempt(true) {
        Ok(parsed) => return Ok(parsed),
        Err(e) => condense(name, &e),
    };
    let (at, reason) = if v0_error.position > v1_error.position {
        v0_error
    } else {
        v1_error
    }
    .into_parts();
    Err(RegoError::Syntax { at, reason })
}

/// A regorus error reduced to one line.
struct Condensed {
    /// `(line, col)` when the message gives one.
    position: Option<(u32, u32)>,
    at: String,
    reason: String,
}

impl Condensed {
    fn into_parts(self) -> (String, String) {
        (self.at, self.reason)
    }
}

fn condense_eval(name: &str, error: &anyhow::Error) -> RegoError {
    let (at, reason) = condense(name, error).into_parts();
    RegoError::Eval { at, reason }
}

/// regorus messages carry a source snippet:
///
/// ```text
///
/// --> policy.rego:4:5
///   |
/// 4 |     deny[msg] {
///   |     ^
/// error: `if` keyword is required before rule body
/// ```
///
/// which becomes `policy.rego:4:5` and `` `if` keyword is required before rule body``.
fn condense(name: &str, error: &anyhow::Error) -> Condensed {
    // The outermost message with a snippet is the most precise; contexts wrap it.
    let text = error
        .chain()
        .map(|e| e.to_string())
        .find(|t| t.contains("--> "))
        .unwrap_or_else(|| error.to_string());
    let mut position = None;
    let mut at = name.to_owned();
    let mut reason = None;
    for line in text.lines().map(str::trim) {
        if let Some(location) = line.strip_prefix("--> ") {
            if position.is_none() {
                let mut parts = location.rsplitn(3, ':');
                let col = parts.next().and_then(|c| c.parse::<u32>().ok());
                let row = parts.next().and_then(|l| l.parse::<u32>().ok());
                if let (Some(row), Some(col)) = (row, col) {
                    position = Some((row, col));
                    at = format!("{name}:{row}:{col}");
                }
            }
        } else if let Some(message) = line.strip_prefix("error: ") {
            reason.get_or_insert_with(|| message.trim().to_owned());
        }
    }
    let reason = reason.unwrap_or_else(|| {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.contains(" | "))
            .collect::<Vec<_>>()
            .join("; ")
    });
    Condensed {
        position,
        at,
        reason: reason.replace(['\n', '\r'], " "),
    }
}

fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Set(_) => "a set",
        Value::Object(_) => "an object",
        Value::Undefined => "undefined",
    };
    match value.to_json_str() {
        Ok(json) if json.len() <= 64 && !json.contains('\n') => format!("{kind} {json}"),
        _ => kind.to_owned(),
    }
}

/// Converts JSON to a regorus value directly, without printing and re-parsing it. Object keys
/// repeat across thousands of packages: each distinct key is allocated once.
fn to_rego(value: &Json) -> Result<Value, String> {
    let mut keys: HashMap<&str, Value> = HashMap::new();
    to_rego_keyed(value, 0, &mut keys)
}

fn to_rego_keyed<'a>(
    value: &'a Json,
    depth: usize,
    keys: &mut HashMap<&'a str, Value>,
) -> Result<Value, String> {
    if depth > MAX_INPUT_DEPTH {
        return Err(format!("input nested deeper than {MAX_INPUT_DEPTH}"));
    }
    Ok(match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => Value::from(
            items
                .iter()
                .map(|v| to_rego_keyed(v, depth + 1, keys))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Json::Object(map) => {
            let mut object = BTreeMap::new();
            for (k, v) in map {
                let key = keys
                    .entry(k.as_str())
                    .or_insert_with(|| Value::from(k.as_str()))
                    .clone();
                object.insert(key, to_rego_keyed(v, depth + 1, keys)?);
            }
            Value::from(object)
        }
    })
}

/// The keys of the input document, allocated once per conversion and shared by every object.
struct Keys {
    image: Value,
    pod: Value,
    sbom: Value,
    vulnerabilities: Value,
    name: Value,
    digest: Value,
    repository: Value,
    namespace: Value,
    format: Value,
    spec_version: Value,
    created: Value,
    tools: Value,
    authors: Value,
    packages: Value,
    files: Value,
    relationships: Value,
    id: Value,
    version: Value,
    purl: Value,
    supplier: Value,
    licenses: Value,
    checksums: Value,
    kind: Value,
    path: Value,
    sha256: Value,
    sha1: Value,
    package: Value,
    from: Value,
    to: Value,
    severity: Value,
    analysis: Value,
}

impl Keys {
    fn new() -> Keys {
        Keys {
            image: "image".into(),
            pod: "pod".into(),
            sbom: "sbom".into(),
            vulnerabilities: "vulnerabilities".into(),
            name: "name".into(),
            digest: "digest".into(),
            repository: "repository".into(),
            namespace: "namespace".into(),
            format: "format".into(),
            spec_version: "spec_version".into(),
            created: "created".into(),
            tools: "tools".into(),
            authors: "authors".into(),
            packages: "packages".into(),
            files: "files".into(),
            relationships: "relationships".into(),
            id: "id".into(),
            version: "version".into(),
            purl: "purl".into(),
            supplier: "supplier".into(),
            licenses: "licenses".into(),
            checksums: "checksums".into(),
            kind: "type".into(),
            path: "path".into(),
            sha256: "sha256".into(),
            sha1: "sha1".into(),
            package: "package".into(),
            from: "from".into(),
            to: "to".into(),
            severity: "severity".into(),
            analysis: "analysis".into(),
        }
    }
}

fn object<const N: usize>(entries: [(&Value, Value); N]) -> Value {
    Value::from(
        entries
            .into_iter()
            .map(|(k, v)| (k.clone(), v))
            .collect::<BTreeMap<Value, Value>>(),
    )
}

fn text(s: &str) -> Value {
    Value::from(s)
}

fn optional(s: Option<&str>) -> Value {
    s.map_or(Value::Null, Value::from)
}

fn texts(list: &[String]) -> Value {
    Value::from(list.iter().map(|s| text(s)).collect::<Vec<_>>())
}

/// [`input_document`] built as a regorus value, without an intermediate JSON document.
fn input_value(input: &RegoInput<'_>) -> Value {
    let k = Keys::new();
    let pod = if input.namespace.is_none() && input.pod_name.is_none() {
        Value::Null
    } else {
        object([
            (&k.namespace, optional(input.namespace)),
            (&k.name, optional(input.pod_name)),
        ])
    };
    let sbom = match input.sbom {
        Some(sbom) => sbom_value(&k, sbom, input.sbom_digest),
        None => Value::Null,
    };
    let by_id: HashMap<&str, &Package> = input
        .sbom
        .map(|s| s.packages.iter().map(|p| (p.id.as_str(), p)).collect())
        .unwrap_or_default();
    let vulnerabilities = input
        .vulnerabilities
        .iter()
        .map(|v| {
            object([
                (&k.id, text(&v.id)),
                (&k.severity, text(v.severity.as_str())),
                (
                    &k.packages,
                    Value::from(
                        affected(v, &by_id)
                            .into_iter()
                            .map(text)
                            .collect::<Vec<_>>(),
                    ),
                ),
                (&k.analysis, optional(v.analysis.as_deref())),
            ])
        })
        .collect::<Vec<_>>();
    object([
        (
            &k.image,
            object([
                (&k.name, text(input.image_name)),
                (&k.digest, text(input.image_digest)),
                (&k.repository, text(input.repository)),
            ]),
        ),
        (&k.pod, pod),
        (&k.sbom, sbom),
        (&k.vulnerabilities, Value::from(vulnerabilities)),
    ])
}

/// Strings that repeat across an SBOM, allocated once: package ids (which files and relationships
/// name again), relationship types, checksum algorithms, suppliers, licenses, package types.
struct Interner<'a>(HashMap<&'a str, Value>);

impl<'a> Interner<'a> {
    fn get(&mut self, s: &'a str) -> Value {
        self.0.entry(s).or_insert_with(|| Value::from(s)).clone()
    }

    fn optional(&mut self, s: Option<&'a str>) -> Value {
        s.map_or(Value::Null, |s| self.get(s))
    }
}

fn sbom_value(k: &Keys, sbom: &Sbom, digest: Option<&str>) -> Value {
    let mut shared = Interner(HashMap::with_capacity(sbom.packages.len() + 64));
    let created = sbom.created.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    });
    let packages = sbom
        .packages
        .iter()
        .map(|p| {
            let checksums = p
                .checksums
                .iter()
                .map(|c| (shared.get(&c.algorithm), text(&c.value)))
                .collect::<BTreeMap<Value, Value>>();
            let licenses = p.licenses.iter().map(|l| shared.get(l)).collect::<Vec<_>>();
            object([
                (&k.id, shared.get(&p.id)),
                (&k.name, text(&p.name)),
                (&k.version, optional(p.version.as_deref())),
                (&k.purl, optional(p.purl.as_deref())),
                (&k.supplier, shared.optional(p.supplier.as_deref())),
                (&k.licenses, Value::from(licenses)),
                (&k.checksums, Value::from(checksums)),
                (&k.kind, shared.optional(p.kind.as_deref())),
            ])
        })
        .collect::<Vec<_>>();
    let files = sbom
        .files
        .iter()
        .map(|f| {
            object([
                (&k.path, text(&f.path)),
                (&k.sha256, optional(f.sha256.as_deref())),
                (&k.sha1, optional(f.sha1.as_deref())),
                (&k.package, shared.optional(f.package.as_deref())),
            ])
        })
        .collect::<Vec<_>>();
    let relationships = sbom
        .relationships
        .iter()
        .map(|r| {
            object([
                (&k.from, shared.get(&r.from)),
                (&k.kind, shared.get(&r.kind)),
                (&k.to, shared.get(&r.to)),
            ])
        })
        .collect::<Vec<_>>();
    object([
        (&k.format, text(sbom.format.as_str())),
        (&k.spec_version, text(&sbom.spec_version)),
        (&k.created, optional(created.as_deref())),
        (&k.tools, texts(&sbom.tools)),
        (&k.authors, texts(&sbom.authors)),
        (&k.digest, optional(digest)),
        (&k.packages, Value::from(packages)),
        (&k.files, Value::from(files)),
        (&k.relationships, Value::from(relationships)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::{self, Limits, Severity};

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/sbom/");

    fn fixture(name: &str) -> Sbom {
        let path = format!("{FIXTURES}{name}");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        sbom::parse(&bytes, &Limits::default()).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn input<'a>(sbom: Option<&'a Sbom>, vulnerabilities: &'a [Vulnerability]) -> RegoInput<'a> {
        RegoInput {
            image_name: "127.0.0.1:5000/app:v1",
            image_digest: "sha256:ab12",
            repository: "127.0.0.1:5000/app",
            namespace: Some("prod"),
            pod_name: Some("web-0"),
            sbom,
            sbom_digest: Some("sha256:cd34"),
            vulnerabilities,
        }
    }

    fn policy(source: &str) -> RegoPolicy {
        RegoPolicy::from_source("test.rego", source).unwrap_or_else(|e| panic!("{e}"))
    }

    fn deny(source: &str, input: &RegoInput<'_>) -> Vec<String> {
        policy(source)
            .deny(&input_document(input))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    const BAN_MUSL_V1: &str = r#"
package vouch
import rego.v1
deny contains msg if {
    some p in input.sbom.packages
    p.name == "musl"
    msg := sprintf("package %s %s is banned", [p.name, p.version])
}
"#;

    #[test]
    fn v1_syntax_denies_a_package() {
        let sbom = fixture("spdx/syft-0.57.0_alpine-latest.spdx22.json");
        assert_eq!(
            deny(BAN_MUSL_V1, &input(Some(&sbom), &[])),
            ["package musl 1.2.3-r0 is banned"]
        );
    }

    #[test]
    fn v1_syntax_without_the_import_is_read_as_opa_1_does() {
        let sbom = fixture("spdx/syft-0.57.0_alpine-latest.spdx22.json");
        let source = BAN_MUSL_V1.replace("import rego.v1\n", "");
        assert_eq!(
            deny(&source, &input(Some(&sbom), &[])),
            ["package musl 1.2.3-r0 is banned"]
        );
    }

    #[test]
    fn v0_syntax_denies_a_package() {
        let sbom = fixture("spdx/syft-0.57.0_alpine-latest.spdx22.json");
        let source = r#"
package vouch
deny[msg] {
    p := input.sbom.packages[_]
    startswith(p.name, "musl")
    msg := sprintf("package %s is banned", [p.name])
}
"#;
        assert_eq!(
            deny(source, &input(Some(&sbom), &[])),
            ["package musl is banned", "package musl-utils is banned"]
        );
    }

    #[test]
    fn denies_on_a_license_expression() {
        let sbom = fixture("cyclonedx/syft-0.58.0_alpine-latest.cdx14.json");
        let source = r#"
package vouch
import rego.v1
deny contains msg if {
    some p in input.sbom.packages
    some l in p.licenses
    contains(l, "GPL-2.0")
    p.type == "library"
    msg := sprintf("%s is licensed %s", [p.name, l])
}
"#;
        let messages = deny(source, &input(Some(&sbom), &[]));
        assert!(
            messages.contains(&"busybox is licensed GPL-2.0-only".to_owned()),
            "{messages:?}"
        );
        assert!(
            !messages.iter().any(|m| m.starts_with("alpine-keys ")),
            "{messages:?}"
        );
    }

    #[test]
    fn denies_on_a_vulnerability_severity_and_names_the_package() {
        let sbom = fixture("cyclonedx/trivy-dev_fluentd-image_vulnerabilities.cdx17.json");
        assert!(sbom
            .vulnerabilities
            .iter()
            .any(|v| v.severity == Severity::High));
        let source = r#"
package vouch
import rego.v1
deny contains msg if {
    some v in input.vulnerabilities
    v.severity == "critical"
    some p in v.packages
    not contains(p, ":")
    msg := sprintf("%s in %s", [v.id, p])
}
"#;
        assert_eq!(
            deny(source, &input(Some(&sbom), &sbom.vulnerabilities)),
            [
                "CVE-2019-18224 in libidn2-0",
                "CVE-2020-8165 in activesupport"
            ]
        );
        let doc = input_document(&input(Some(&sbom), &sbom.vulnerabilities));
        let bash = doc["vulnerabilities"]
            .as_array()
            .and_then(|vs| vs.iter().find(|v| v["id"] == "CVE-2019-18276"));
        assert_eq!(
            bash.map(|v| v["packages"].clone()),
            Some(json!([
                "bash",
                "pkg:deb/debian/bash@5.0-4?distro=debian-10.2"
            ]))
        );
    }

    #[test]
    fn denies_on_the_pod_namespace_and_pod_is_null_outside_kubernetes() {
        let source = r#"
package vouch
import rego.v1
deny contains "no SBOM-less images in prod" if {
    input.pod.namespace == "prod"
    input.sbom == null
}
deny contains "not a pod" if input.pod == null
"#;
        assert_eq!(
            deny(source, &input(None, &[])),
            ["no SBOM-less images in prod"]
        );
        let mut outside = input(None, &[]);
        outside.namespace = None;
        outside.pod_name = None;
        assert_eq!(deny(source, &outside), ["not a pod"]);
    }

    #[test]
    fn no_match_is_an_empty_set_and_messages_are_sorted_and_deduplicated() {
        let sbom = fixture("spdx/syft-0.57.0_alpine-latest.spdx22.json");
        let none = BAN_MUSL_V1.replace("\"musl\"", "\"event-stream\"");
        assert!(deny(&none, &input(Some(&sbom), &[])).is_empty());
        let source = r#"
package vouch
deny[msg] { input.sbom.packages[_]; msg := "z" }
deny[msg] { input.sbom.packages[_]; msg := "a" }
"#;
        assert_eq!(deny(source, &input(Some(&sbom), &[])), ["a", "z"]);
    }

    #[test]
    fn input_document_has_the_documented_fields() {
        let sbom = fixture("spdx/syft-0.57.0_alpine-small_files-sha256.spdx22.json");
        let doc = input_document(&input(Some(&sbom), &[]));
        assert_eq!(doc["image"]["digest"], "sha256:ab12");
        assert_eq!(doc["pod"]["name"], "web-0");
        assert_eq!(doc["sbom"]["format"], "spdx");
        assert_eq!(doc["sbom"]["spec_version"], "2.2");
        assert_eq!(doc["sbom"]["digest"], "sha256:cd34");
        let files = doc["sbom"]["files"].as_array().map_or(0, Vec::len);
        assert!(files > 0);
        let hashed = doc["sbom"]["files"]
            .as_array()
            .is_some_and(|fs| fs.iter().any(|f| f["sha256"].is_string()));
        assert!(hashed);
        let package = &doc["sbom"]["packages"][0];
        for field in [
            "id",
            "name",
            "version",
            "purl",
            "supplier",
            "licenses",
            "checksums",
            "type",
        ] {
            assert!(package.get(field).is_some(), "{field} missing: {package}");
        }
        assert!(doc["sbom"]["created"]
            .as_str()
            .is_some_and(|c| c.ends_with('Z')));
    }

    #[test]
    fn the_direct_input_value_equals_the_converted_json_document() {
        for name in [
            "spdx/syft-0.57.0_alpine-small_files-sha256.spdx22.json",
            "spdx/apko_chainguard-curl_files-sha1-sha256-sha512.spdx23.json",
            "cyclonedx/trivy-dev_fluentd-image_vulnerabilities.cdx17.json",
            "cyclonedx/sbomer_jboss-eap-7.4_file-components-hashes.cdx16.json",
        ] {
            let sbom = fixture(name);
            let with_sbom = input(Some(&sbom), &sbom.vulnerabilities);
            let mut without = input(None, &sbom.vulnerabilities);
            without.namespace = None;
            without.pod_name = None;
            without.sbom_digest = None;
            for input in [with_sbom, without] {
                let converted = to_rego(&input_document(&input));
                assert_eq!(converted.as_ref(), Ok(&input_value(&input)), "{name}");
            }
        }
    }

    #[test]
    fn a_syntax_error_is_one_line_with_its_position() {
        let source = "package vouch\nimport rego.v1\n\ndeny contains msg if {\n    msg := \n}\n";
        let error = RegoPolicy::from_source("bad.rego", source)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            error,
            "rego policy bad.rego:5:9: expecting `}` while parsing set"
        );
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn a_v0_syntax_error_is_reported_where_v0_fails() {
        let source = "package vouch\n\ndeny[msg] {\n    msg := \"x\"\n    input.a ==\n}\n";
        let error = RegoPolicy::from_source("old.rego", source)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.starts_with("rego policy old.rego:6:1: "), "{error}");
    }

    #[test]
    fn a_policy_without_deny_in_package_vouch_is_refused() {
        let other_rule = "package vouch\nimport rego.v1\nallow if true\n";
        let error = RegoPolicy::from_source("p.rego", other_rule).err();
        assert_eq!(
            error.map(|e| e.to_string()).as_deref(),
            Some("rego policy p.rego: defines no deny rule in package vouch")
        );
        let other_package = "package main\nimport rego.v1\ndeny contains \"x\" if true\n";
        let error = RegoPolicy::from_source("p.rego", other_package).err();
        assert_eq!(
            error.map(|e| e.to_string()).as_deref(),
            Some("rego policy p.rego: defines no deny rule in package vouch (its package is main)")
        );
    }

    #[test]
    fn a_message_that_is_not_a_string_is_an_error() {
        let source = "package vouch\nimport rego.v1\ndeny contains 42 if true\n";
        let error = policy(source)
            .deny(&input_document(&input(None, &[])))
            .err();
        assert_eq!(
            error.map(|e| e.to_string()).as_deref(),
            Some("rego policy test.rego: deny holds a number 42, not a message string")
        );
        let source = "package vouch\nimport rego.v1\ndeny := 7\n";
        let error = policy(source)
            .deny(&input_document(&input(None, &[])))
            .err();
        assert_eq!(
            error.map(|e| e.to_string()).as_deref(),
            Some("rego policy test.rego: deny is a number 7, not a set of message strings")
        );
    }

    #[test]
    fn a_runtime_error_is_an_error_not_an_empty_set() {
        let builtin = r#"
package vouch
import rego.v1
deny contains msg if {
    n := to_number(input.image.name)
    msg := sprintf("%v", [n])
}
"#;
        let error = policy(builtin)
            .deny(&input_document(&input(None, &[])))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.starts_with("rego policy test.rego:5:"), "{error}");
        assert!(error.contains("evaluation failed"), "{error}");
        assert!(!error.contains('\n'), "{error}");

        let conflict = r#"
package vouch
import rego.v1
level := "a" if input.image
level := "b" if input.image
deny contains level if true
"#;
        let error = policy(conflict)
            .deny(&input_document(&input(None, &[])))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("evaluation failed"), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn an_evaluation_over_its_time_limit_fails() {
        let source = r#"
package vouch
import rego.v1
deny contains "never" if {
    some a in numbers.range(1, 100000)
    some b in numbers.range(1, 100000)
    a * b == -1
}
"#;
        let mut policy = policy(source);
        policy.set_time_limit(Duration::from_millis(50));
        let started = std::time::Instant::now();
        let error = policy.deny(&input_document(&input(None, &[]))).err();
        assert_eq!(
            error.map(|e| e.to_string()).as_deref(),
            Some("rego policy test.rego: rego evaluation exceeded the time limit of 50 ms")
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_large_inventory_is_evaluated_and_the_policy_is_reusable() {
        let packages: Vec<Package> = (0..20_000)
            .map(|i| Package {
                id: format!("SPDXRef-{i}"),
                name: format!("pkg{i}"),
                version: Some(format!("1.{i}-1")),
                purl: Some(format!("pkg:deb/debian/pkg{i}@1.{i}-1")),
                licenses: vec!["MIT OR Apache-2.0".to_owned()],
                ..Package::default()
            })
            .collect();
        let mut sbom = fixture("spdx/syft-0.57.0_alpine-latest.spdx22.json");
        sbom.packages = packages;
        let doc = input_document(&input(Some(&sbom), &[]));
        let source = BAN_MUSL_V1.replace("\"musl\"", "\"pkg19999\"");
        let policy = policy(&source);
        let expected = Ok(vec!["package pkg19999 1.19999-1 is banned".to_owned()]);
        for _ in 0..2 {
            assert_eq!(policy.deny(&doc), expected);
            assert_eq!(policy.deny_input(&input(Some(&sbom), &[])), expected);
        }
    }

    #[test]
    fn a_policy_can_be_shared_across_threads() {
        fn shared<T: Send + Sync>(_: &T) {}
        let policy = policy(BAN_MUSL_V1);
        shared(&policy);
        let sbom = fixture("spdx/syft-0.57.0_alpine-latest.spdx22.json");
        let messages = std::thread::scope(|s| {
            let worker = s.spawn(|| policy.deny_input(&input(Some(&sbom), &[])));
            worker.join().unwrap_or_else(|_| panic!("worker panicked"))
        });
        assert_eq!(
            messages,
            Ok(vec!["package musl 1.2.3-r0 is banned".to_owned()])
        );
    }

    #[test]
    fn load_reads_a_file_and_refuses_missing_and_oversized_ones() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("policy.rego");
        std::fs::write(&path, BAN_MUSL_V1).unwrap_or_else(|e| panic!("{e}"));
        let loaded = RegoPolicy::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.name(), path.display().to_string());

        let missing = RegoPolicy::load(&dir.path().join("none.rego")).err();
        assert!(
            matches!(&missing, Some(RegoError::Read { file, .. }) if file.ends_with("none.rego")),
            "{missing:?}"
        );

        let mut big = BAN_MUSL_V1.to_owned();
        big.push_str(&"# padding\n".repeat(MAX_POLICY_BYTES / 10 + 1));
        std::fs::write(&path, big).unwrap_or_else(|e| panic!("{e}"));
        let error = RegoPolicy::load(&path).err().map(|e| e.to_string());
        assert_eq!(
            error,
            Some(format!(
                "rego policy {}: larger than the limit of {MAX_POLICY_BYTES} bytes",
                path.display()
            ))
        );
    }
}

//! SBOMs: SPDX 2.2/2.3 and CycloneDX 1.4-1.7 JSON read into one normalised [`Sbom`].
//!
//! Every document is hostile input. In order, before anything is built in memory: the size, the
//! encoding (UTF-8, no byte order mark), then one pass over the bytes checking nesting depth and
//! element counts against [`Limits`]. Only then is the document deserialised, leniently: unknown
//! fields are ignored, `null` reads as absent, but a field vouch reads with the wrong type is an
//! error naming its JSON path (`packages[12].versionInfo: expected a string, found integer `5``).
//!
//! - [`parse`]: a document's bytes;
//! - [`parse_predicate`]: the `predicate` of an in-toto statement, an object or a string holding
//!   the document (cosign writes both).

mod cyclonedx;
mod inventory;
mod limits;
mod spdx;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use time::OffsetDateTime;

pub use inventory::{Checksum, File, Format, Package, Relationship, Sbom, Severity, Vulnerability};
pub use limits::Limits;

/// in-toto predicate type of an SPDX document (`cosign attest --type spdxjson`).
pub const PREDICATE_SPDX: &str = "https://spdx.dev/Document";
/// in-toto predicate type of a CycloneDX BOM (`cosign attest --type cyclonedx`).
pub const PREDICATE_CYCLONEDX: &str = "https://cyclonedx.org/bom";

/// Why an SBOM was refused: one line, fit for a denial reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SbomError {
    /// Over one of the [`Limits`]; `what` names it.
    #[error("SBOM refused: {what} over the limit of {limit}")]
    Limit { what: &'static str, limit: usize },
    /// Not UTF-8 (UTF-16, UTF-32, a byte order mark, invalid bytes).
    #[error("SBOM is not UTF-8 JSON: {0}")]
    Encoding(String),
    /// Not well-formed JSON.
    #[error("SBOM is not valid JSON: {0}")]
    Json(String),
    /// JSON, but neither SPDX nor CycloneDX.
    #[error("not an SBOM: {0}")]
    UnknownFormat(String),
    /// SPDX or CycloneDX, in a version vouch does not read.
    #[error("unsupported {format} version {version:?} (vouch reads {supported})")]
    Unsupported {
        format: &'static str,
        version: String,
        supported: &'static str,
    },
    /// A field vouch reads is missing where required, of the wrong type, or has an unusable value.
    #[error("SBOM field {path}: {reason}")]
    Field { path: String, reason: String },
}

pub(crate) fn field_error(path: impl Into<String>, reason: impl Into<String>) -> SbomError {
    SbomError::Field {
        path: path.into(),
        reason: reason.into(),
    }
}

/// Parses an SPDX or CycloneDX JSON document.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Sbom, SbomError> {
    if bytes.len() > limits.max_bytes {
        return Err(SbomError::Limit {
            what: "document size in bytes",
            limit: limits.max_bytes,
        });
    }
    check_encoding(bytes)?;
    limits::check(bytes, limits)?;
    read(Input::Bytes(bytes), limits)
}

/// Where a document is read from: its bytes (checked by [`limits::check`]) or a value already in
/// memory (checked by [`limits::check_value`]).
#[derive(Clone, Copy)]
enum Input<'a> {
    Bytes(&'a [u8]),
    Value(&'a Value),
}

/// Tells the formats apart and reads the document, once it is within the limits.
fn read(input: Input<'_>, limits: &Limits) -> Result<Sbom, SbomError> {
    let probe: Probe = deserialize(input)?;
    let text = |v: &Option<Value>, path: &str| -> Result<Option<String>, SbomError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(field_error(
                path,
                format!("expected a string, found {}", kind_of(other)),
            )),
        }
    };
    let spdx_version = text(&probe.spdx_version, "spdxVersion")?;
    let bom_format = text(&probe.bom_format, "bomFormat")?;
    match (spdx_version, bom_format) {
        (Some(_), Some(_)) => Err(SbomError::UnknownFormat(
            "has both spdxVersion and bomFormat".into(),
        )),
        (Some(version), None) => {
            let spec = match version.trim() {
                "SPDX-2.2" => "2.2",
                "SPDX-2.3" => "2.3",
                _ => {
                    return Err(SbomError::Unsupported {
                        format: "SPDX",
                        version,
                        supported: "SPDX-2.2 and SPDX-2.3 JSON",
                    })
                }
            };
            let doc: spdx::Document = deserialize(input)?;
            spdx::normalise(doc, spec.to_owned())
        }
        (None, Some(format)) => {
            if format != "CycloneDX" {
                return Err(SbomError::UnknownFormat(format!(
                    "bomFormat is {format:?}, not \"CycloneDX\""
                )));
            }
            let version = text(&probe.spec_version, "specVersion")?
                .ok_or_else(|| field_error("specVersion", "missing; CycloneDX requires it"))?;
            if !matches!(version.as_str(), "1.4" | "1.5" | "1.6" | "1.7") {
                return Err(SbomError::Unsupported {
                    format: "CycloneDX",
                    version,
                    supported: "CycloneDX 1.4 to 1.7 JSON",
                });
            }
            let bom: cyclonedx::Bom = deserialize(input)?;
            cyclonedx::normalise(bom, version, limits)
        }
        (None, None) => Err(SbomError::UnknownFormat(
            "neither spdxVersion (SPDX) nor bomFormat (CycloneDX) at the top level".into(),
        )),
    }
}

/// Parses the `predicate` of an in-toto statement: the document itself, or a JSON string holding it.
pub fn parse_predicate(predicate: &Value, limits: &Limits) -> Result<Sbom, SbomError> {
    match predicate {
        Value::String(document) => parse(document.as_bytes(), limits),
        Value::Object(_) => {
            // Read from the value itself: serialising it and parsing the bytes again cost as much
            // as the parse (measured on a 10,000-package document).
            limits::check_value(predicate, limits)?;
            read(Input::Value(predicate), limits)
        }
        other => Err(field_error(
            "predicate",
            format!(
                "expected an object or a string holding the SBOM, found {}",
                kind_of(other)
            ),
        )),
    }
}

/// The few top-level fields that tell the formats apart; everything else is skipped unread.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "spdxVersion")]
    spdx_version: Option<Value>,
    #[serde(rename = "bomFormat")]
    bom_format: Option<Value>,
    #[serde(rename = "specVersion")]
    spec_version: Option<Value>,
}

/// Refuses what is not UTF-8 with the reason a person can act on.
fn check_encoding(bytes: &[u8]) -> Result<(), SbomError> {
    let encoding = |reason: &str| Err(SbomError::Encoding(reason.to_owned()));
    match bytes {
        [0xEF, 0xBB, 0xBF, ..] => {
            return encoding("starts with a UTF-8 byte order mark, which JSON must not have")
        }
        [0x00, 0x00, 0xFE, 0xFF, ..] | [0xFF, 0xFE, 0x00, 0x00, ..] => {
            return encoding("UTF-32 (byte order mark); convert it to UTF-8")
        }
        [0xFE, 0xFF, ..] | [0xFF, 0xFE, ..] => {
            return encoding("UTF-16 (byte order mark); convert it to UTF-8")
        }
        [0x00, _, ..] | [_, 0x00, ..] => {
            return encoding("UTF-16 or UTF-32 (NUL bytes); convert it to UTF-8")
        }
        [] => return Err(SbomError::Json("empty document".into())),
        _ => {}
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(SbomError::Encoding(format!(
            "invalid UTF-8 at byte {}",
            e.valid_up_to()
        )));
    }
    Ok(())
}

/// Deserialises quickly; only when that fails, again with path tracking to name the field.
fn deserialize<T: serde::de::DeserializeOwned>(input: Input<'_>) -> Result<T, SbomError> {
    let fast = match input {
        Input::Bytes(bytes) => serde_json::from_slice::<T>(bytes),
        Input::Value(value) => T::deserialize(value),
    };
    let error = match fast {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    if !error.is_data() {
        return Err(SbomError::Json(error.to_string()));
    }
    let tracked = match input {
        Input::Bytes(bytes) => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            serde_path_to_error::deserialize::<_, T>(&mut de)
        }
        Input::Value(value) => serde_path_to_error::deserialize::<_, T>(value),
    };
    match tracked {
        Ok(value) => Ok(value),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if !inner.is_data() {
                return Err(SbomError::Json(inner.to_string()));
            }
            if path == "." {
                return Err(SbomError::UnknownFormat(format!(
                    "the top level is not a JSON object ({})",
                    reason_of(&inner)
                )));
            }
            Err(field_error(path, reason_of(&inner)))
        }
    }
}

/// serde's message without its position, `invalid type: X, expected Y` turned into
/// `expected Y, found X`.
fn reason_of(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let text = match text.rfind(" at line ") {
        Some(at) => &text[..at],
        None => &text,
    };
    if let Some(rest) = text.strip_prefix("invalid type: ") {
        if let Some((found, expected)) = rest.split_once(", expected ") {
            return format!("expected {expected}, found {found}");
        }
    }
    text.to_owned()
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// RFC 3339, as both formats specify.
pub(crate) fn parse_time(text: &str, path: &str) -> Result<OffsetDateTime, SbomError> {
    OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
        .map_err(|_| field_error(path, format!("{text:?} is not an RFC 3339 time")))
}

/// Reads `null` as the default (an empty list), as many tools write it.
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

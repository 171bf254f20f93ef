//! The normalised inventory both formats are read into: what policy evaluates, whatever tool wrote it.

use time::OffsetDateTime;

/// The document format an inventory was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Spdx,
    CycloneDx,
}

impl Format {
    /// The name policy uses (`formats = ["spdx", "cyclonedx"]`).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Spdx => "spdx",
            Format::CycloneDx => "cyclonedx",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One SBOM, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct Sbom {
    pub format: Format,
    /// `2.3` for SPDX-2.3, `1.6` for CycloneDX 1.6.
    pub spec_version: String,
    /// SPDX `creationInfo.created`, CycloneDX `metadata.timestamp`.
    pub created: Option<OffsetDateTime>,
    /// The tools that wrote the document (SPDX `Tool:` creators; CycloneDX `metadata.tools`).
    pub tools: Vec<String>,
    /// Who wrote the document (SPDX `Person:`/`Organization:` creators; CycloneDX `metadata.authors`).
    pub authors: Vec<String>,
    /// SPDX packages; CycloneDX components, nested ones flattened, `file` components included.
    pub packages: Vec<Package>,
    /// SPDX files; CycloneDX components of type `file` that carry a hash.
    pub files: Vec<File>,
    /// SPDX `relationships` as written; CycloneDX `dependsOn` (`DEPENDS_ON`) and `provides` (`PROVIDES`).
    pub relationships: Vec<Relationship>,
    /// CycloneDX `vulnerabilities`, as written (duplicates kept).
    pub vulnerabilities: Vec<Vulnerability>,
}

/// A package (SPDX) or component (CycloneDX).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Package {
    /// SPDX `SPDXID`; CycloneDX `bom-ref`, or the component's JSON path when it has none.
    pub id: String,
    pub name: String,
    pub version: Option<String>,
    pub purl: Option<String>,
    /// The supplier's name (SPDX `supplier` without its `Organization:`/`Person:` prefix).
    pub supplier: Option<String>,
    /// License expressions as written: SPDX `licenseConcluded`/`licenseDeclared` (not `NOASSERTION`
    /// or `NONE`), CycloneDX `license.id`, `license.name` and `expression`. Deduplicated.
    pub licenses: Vec<String>,
    pub checksums: Vec<Checksum>,
    /// SPDX `primaryPackagePurpose`, CycloneDX `type` (`library`, `operating-system`, `file`, ...).
    pub kind: Option<String>,
}

/// A digest as the document states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    /// Upper case, `SHA-` prefixes without the dash: `SHA256`, `SHA1`, `MD5`, `SHA3-256`, `BLAKE2B-256`.
    pub algorithm: String,
    /// Lower-case hex, as written otherwise.
    pub value: String,
}

/// A file the document lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct File {
    pub path: String,
    pub sha256: Option<String>,
    pub sha1: Option<String>,
    /// The id of the package that contains it: SPDX `hasFiles` or a `CONTAINS`/`CONTAINED_BY`
    /// relationship; CycloneDX the enclosing component.
    pub package: Option<String>,
}

/// `from kind to`, e.g. `SPDXRef-A DEPENDS_ON SPDXRef-B`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relationship {
    pub from: String,
    pub kind: String,
    pub to: String,
}

/// One entry of CycloneDX `vulnerabilities`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vulnerability {
    pub id: String,
    /// The highest of the entry's ratings.
    pub severity: Severity,
    /// `affects[].ref`: the bom-refs of affected components.
    pub affects: Vec<String>,
    /// `analysis.state` (`not_affected`, `false_positive`, ...), when the document states one.
    pub analysis: Option<String>,
}

/// Vulnerability severity, ordered so that `max` picks the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Unknown,
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// CycloneDX severity names; `info` counts as `none`, anything unrecognised as `unknown`.
    pub fn from_name(name: &str) -> Severity {
        match name.to_ascii_lowercase().as_str() {
            "critical" => Severity::Critical,
            "high" => Severity::High,
            "medium" | "moderate" => Severity::Medium,
            "low" => Severity::Low,
            "none" | "info" => Severity::None,
            _ => Severity::Unknown,
        }
    }

    /// CVSS v3 qualitative rating of a score, for ratings that give a score but no severity.
    pub fn from_cvss(score: f64) -> Severity {
        if score >= 9.0 {
            Severity::Critical
        } else if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else if score > 0.0 {
            Severity::Low
        } else if score == 0.0 {
            Severity::None
        } else {
            Severity::Unknown
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::None => "none",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `SHA-256` and `SHA256` both become `SHA256`; `sha3-256` becomes `SHA3-256`.
pub(crate) fn normalise_algorithm(alg: &str) -> String {
    let upper = alg.trim().to_ascii_uppercase();
    match upper.strip_prefix("SHA-") {
        Some(rest) => format!("SHA{rest}"),
        None => upper,
    }
}

/// Adds `value` unless already present (license lists are short; order is kept).
pub(crate) fn push_unique(list: &mut Vec<String>, value: &str) {
    if !list.iter().any(|v| v == value) {
        list.push(value.to_owned());
    }
}

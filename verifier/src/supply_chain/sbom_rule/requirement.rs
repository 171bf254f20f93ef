//! What a `[rule.sbom]` table asks for, once the policy parser has checked it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize, Serializer};
use time::OffsetDateTime;

use super::purl::PackageMatcher;
use crate::license::LicensePattern;
use crate::sbom::{Format, Severity};

/// The SBOM requirement of a verify rule (`[rule.sbom]`). Attestations count when signed by one of
/// the rule's authorities (unsigned SBOMs and vulnerability reports also when `allow_unsigned`;
/// OpenVEX only when signed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SbomRequirement {
    /// No SBOM that counts is a failure (default true).
    pub require: bool,
    /// Which SBOM formats count (default both).
    #[serde(serialize_with = "format_names")]
    pub formats: Vec<Format>,
    /// NTIA minimum elements every package (or the document) must carry.
    pub min_fields: Vec<MinField>,
    pub deny_licenses: Vec<LicensePattern>,
    /// When non-empty, every package's licenses must satisfy it; a package without license
    /// information fails.
    pub allow_licenses: Vec<LicensePattern>,
    pub deny_packages: Vec<PackageMatcher>,
    /// Vulnerabilities at or above this severity fail, unless cleared.
    #[serde(serialize_with = "severity_name")]
    pub deny_severity: Option<Severity>,
    /// Vulnerability ids that fail whatever their severity, unless cleared (case-insensitive).
    pub deny_cves: Vec<String>,
    pub ignore: Vec<Ignore>,
    pub max_age_days: Option<u32>,
    /// Custom Rego rules over the SBOM, evaluated by the gate, not here.
    pub rego: Option<PathBuf>,
    /// Unsigned SBOMs and vulnerability reports count too.
    pub allow_unsigned: bool,
}

impl Default for SbomRequirement {
    fn default() -> Self {
        SbomRequirement {
            require: true,
            formats: vec![Format::Spdx, Format::CycloneDx],
            min_fields: Vec::new(),
            deny_licenses: Vec::new(),
            allow_licenses: Vec::new(),
            deny_packages: Vec::new(),
            deny_severity: None,
            deny_cves: Vec::new(),
            ignore: Vec::new(),
            max_age_days: None,
            rego: None,
            allow_unsigned: false,
        }
    }
}

/// An NTIA minimum element (`min_fields`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MinField {
    /// Every package names its supplier.
    Supplier,
    /// Every package has a name.
    Name,
    /// Every package has a version.
    Version,
    /// Every package has a purl (NTIA's "other unique identifiers").
    Purl,
    /// The document states at least one relationship.
    Relationships,
    /// The document names its author: a person or organisation. Tools alone do not count: NTIA asks
    /// for the author of the SBOM data.
    Author,
    /// The document states when it was created.
    Timestamp,
}

impl MinField {
    pub fn as_str(self) -> &'static str {
        match self {
            MinField::Supplier => "supplier",
            MinField::Name => "name",
            MinField::Version => "version",
            MinField::Purl => "purl",
            MinField::Relationships => "relationships",
            MinField::Author => "author",
            MinField::Timestamp => "timestamp",
        }
    }
}

/// An `ignore` entry: the vulnerability id counts as cleared until `until` (exclusive), or for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ignore {
    pub id: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
}

impl Ignore {
    /// Whether this entry clears `id` at `now`.
    pub fn applies(&self, id: &str, now: OffsetDateTime) -> bool {
        self.id.eq_ignore_ascii_case(id) && self.in_effect(now)
    }

    /// Not expired at `now` (`until` is exclusive).
    pub fn in_effect(&self, now: OffsetDateTime) -> bool {
        self.until.is_none_or(|until| now < until)
    }

    /// `2027-01-01` for a midnight UTC, else the full RFC 3339 time.
    pub fn until_text(&self) -> Option<String> {
        self.until.map(date_text)
    }
}

/// A time as a person wrote it in the policy: the date alone when it is midnight UTC.
pub(crate) fn date_text(t: OffsetDateTime) -> String {
    if t.offset().is_utc() && t.time() == time::Time::MIDNIGHT {
        t.date().to_string()
    } else {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| t.to_string())
    }
}

/// The severities `deny_severity` accepts.
pub fn parse_severity(text: &str) -> Option<Severity> {
    match text {
        "critical" => Some(Severity::Critical),
        "high" => Some(Severity::High),
        "medium" => Some(Severity::Medium),
        "low" => Some(Severity::Low),
        _ => None,
    }
}

/// The formats `formats` accepts.
pub fn parse_format(text: &str) -> Option<Format> {
    match text {
        "spdx" => Some(Format::Spdx),
        "cyclonedx" => Some(Format::CycloneDx),
        _ => None,
    }
}

fn format_names<S: Serializer>(formats: &[Format], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(formats.iter().map(|f| f.as_str()))
}

fn severity_name<S: Serializer>(severity: &Option<Severity>, s: S) -> Result<S::Ok, S::Error> {
    match severity {
        Some(v) => s.serialize_some(v.as_str()),
        None => s.serialize_none(),
    }
}

fn list<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the requirement does, one line each, for `vouch policy check`.
pub fn describe(req: &SbomRequirement) -> Vec<String> {
    let formats = req
        .formats
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(" or ");
    let who = if req.allow_unsigned {
        "signed by one of the rule's authorities, or unsigned (allow_unsigned)"
    } else {
        "signed by one of the rule's authorities"
    };
    let mut out = vec![if req.require {
        format!("SBOM required: {formats}, {who}")
    } else {
        format!("SBOM optional: {formats}, {who}; checked when present")
    }];
    if !req.min_fields.is_empty() {
        let fields: Vec<&str> = req.min_fields.iter().map(|f| f.as_str()).collect();
        out.push(format!("minimum fields: {}", fields.join(", ")));
    }
    if !req.deny_licenses.is_empty() {
        out.push(format!("licenses denied: {}", list(&req.deny_licenses)));
    }
    if !req.allow_licenses.is_empty() {
        out.push(format!(
            "licenses allowed (every package must satisfy): {}",
            list(&req.allow_licenses)
        ));
    }
    if !req.deny_packages.is_empty() {
        out.push(format!("packages denied: {}", list(&req.deny_packages)));
    }
    if let Some(s) = req.deny_severity {
        out.push(format!("vulnerabilities denied at or above {s}"));
    }
    if !req.deny_cves.is_empty() {
        out.push(format!(
            "vulnerabilities denied: {}",
            req.deny_cves.join(", ")
        ));
    }
    if req.deny_severity.is_some() || !req.deny_cves.is_empty() {
        out.push(
            "vulnerabilities come from the SBOM and vulnerability attestations; signed OpenVEX \
             not_affected/fixed statements clear them"
                .to_string(),
        );
    }
    for i in &req.ignore {
        out.push(match i.until_text() {
            Some(until) => format!("ignored: {} until {until}", i.id),
            None => format!("ignored: {}", i.id),
        });
    }
    if let Some(days) = req.max_age_days {
        out.push(format!("SBOM at most {days} days old"));
    }
    if let Some(rego) = &req.rego {
        out.push(format!("custom rules: {}", rego.display()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn an_ignore_entry_clears_its_id_until_its_time_exclusive() {
        let until = datetime!(2027-01-01 0:00 UTC);
        let entry = Ignore {
            id: "CVE-2023-1234".into(),
            until: Some(until),
        };
        assert!(entry.applies("cve-2023-1234", datetime!(2026-12-31 23:59:59 UTC)));
        assert!(!entry.applies("CVE-2023-1234", until));
        assert!(!entry.applies("CVE-2023-12345", datetime!(2026-01-01 0:00 UTC)));
        let forever = Ignore {
            id: "GHSA-x".into(),
            until: None,
        };
        assert!(forever.applies("GHSA-X", datetime!(2999-01-01 0:00 UTC)));
        assert_eq!(forever.until_text(), None);
        let odd = Ignore {
            id: "x".into(),
            until: Some(datetime!(2027-01-01 12:30 +02:00)),
        };
        assert_eq!(
            odd.until_text().as_deref(),
            Some("2027-01-01T12:30:00+02:00")
        );
    }

    #[test]
    fn describe_says_what_each_key_does() {
        let req = SbomRequirement {
            require: false,
            formats: vec![Format::CycloneDx],
            allow_unsigned: true,
            deny_severity: Some(Severity::High),
            max_age_days: Some(30),
            ..SbomRequirement::default()
        };
        let lines = describe(&req);
        assert_eq!(
            lines[0],
            "SBOM optional: cyclonedx, signed by one of the rule's authorities, or unsigned \
             (allow_unsigned); checked when present"
        );
        assert!(lines.contains(&"vulnerabilities denied at or above high".to_string()));
        assert!(lines.contains(&"SBOM at most 30 days old".to_string()));
        assert_eq!(
            describe(&SbomRequirement::default()),
            ["SBOM required: spdx or cyclonedx, signed by one of the rule's authorities"]
        );
    }
}

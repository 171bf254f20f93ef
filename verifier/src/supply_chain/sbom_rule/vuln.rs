//! Vulnerabilities as policy sees them: from the evaluated SBOM's CycloneDX `vulnerabilities` and
//! from cosign vulnerability attestations (`cosign attest --type vuln`), whose `scanner.result` is
//! the scanner's own report: Trivy JSON, Grype JSON or a CycloneDX document.

use std::collections::HashMap;

use serde_json::Value;

use super::purl::Purl;
use crate::sbom::{self, Limits, Package, Sbom, Severity};

/// One vulnerability report entry, with the packages it names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finding {
    pub id: String,
    /// Other ids of the same vulnerability (Grype's related vulnerabilities).
    pub aliases: Vec<String>,
    pub severity: Severity,
    /// CycloneDX `analysis.state` when stated and not a clearing one.
    pub analysis: Option<String>,
    /// Empty when the report names no package.
    pub affects: Vec<Affected>,
}

impl Finding {
    /// Whether `id` names this vulnerability (case-insensitive).
    pub fn is(&self, id: &str) -> bool {
        self.id.eq_ignore_ascii_case(id) || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(id))
    }
}

/// A package a finding names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Affected {
    /// As the report gives it: a CycloneDX bom-ref, a purl, or `name@version`.
    pub reference: String,
    /// `name version`, for messages.
    pub label: String,
    pub purl: Option<Purl>,
}

/// CycloneDX analysis states under which a listed vulnerability does not apply.
const CLEARING_STATES: [&str; 3] = ["not_affected", "false_positive", "resolved"];

/// The SBOM's own vulnerabilities. Entries whose analysis clears them are left out and recorded in
/// `cleared`; `by_id` resolves `affects` references to packages.
pub(crate) fn from_sbom(
    sbom: &Sbom,
    by_id: &HashMap<&str, &Package>,
    what: &str,
    cleared: &mut Vec<String>,
) -> Vec<Finding> {
    let mut out = Vec::with_capacity(sbom.vulnerabilities.len());
    for v in &sbom.vulnerabilities {
        if v.id.is_empty() {
            continue;
        }
        if let Some(state) = v
            .analysis
            .as_deref()
            .filter(|s| CLEARING_STATES.contains(s))
        {
            push_unique(
                cleared,
                format!("{} cleared by the {what}'s analysis ({state})", v.id),
            );
            continue;
        }
        out.push(Finding {
            id: v.id.clone(),
            aliases: Vec::new(),
            severity: v.severity,
            analysis: v.analysis.clone(),
            affects: v
                .affects
                .iter()
                .map(|r| match by_id.get(r.as_str()) {
                    Some(p) => Affected {
                        reference: r.clone(),
                        label: label(&p.name, p.version.as_deref()),
                        purl: p.purl.as_deref().and_then(|u| Purl::parse(u).ok()),
                    },
                    None => Affected {
                        reference: r.clone(),
                        label: r.clone(),
                        purl: Purl::parse(r).ok(),
                    },
                })
                .collect(),
        });
    }
    out
}

/// Packages by SPDX id / CycloneDX bom-ref.
pub(crate) fn index(sbom: &Sbom) -> HashMap<&str, &Package> {
    sbom.packages.iter().map(|p| (p.id.as_str(), p)).collect()
}

pub(crate) fn label(name: &str, version: Option<&str>) -> String {
    match version {
        Some(v) if !v.is_empty() => format!("{name} {v}"),
        _ => name.to_string(),
    }
}

/// Appends a line; duplicates are removed once, by [`dedup_in_order`], so that a report of many
/// findings does not cost a scan of the list per line.
pub(crate) fn push_unique(list: &mut Vec<String>, line: String) {
    list.push(line);
}

/// Drops repeated lines, keeping the first of each in its place.
pub(crate) fn dedup_in_order(list: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    list.retain(|line| seen.insert(line.clone()));
}

/// What a vulnerability attestation contributed.
#[derive(Debug)]
pub(crate) struct Report {
    /// `trivy 0.50.1`, `grype`, `CycloneDX`, for the summary.
    pub scanner: String,
    pub findings: Vec<Finding>,
    /// Entries a CycloneDX result's own analysis cleared.
    pub cleared: Vec<String>,
}

/// Reads a cosign vuln predicate. `Err` says why it contributes nothing (no result, a report
/// format vouch does not read), for the summary.
pub(crate) fn from_vuln_predicate(predicate: &Value, limits: &Limits) -> Result<Report, String> {
    let scanner = predicate.get("scanner");
    let scanner_name = scanner
        .and_then(|s| s.get("uri"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(|uri| {
            // `pkg:github/aquasecurity/trivy@v0.50.1` or `https://github.com/anchore/grype`.
            let last = uri.rsplit('/').next().unwrap_or(uri);
            let name = last.split('@').next().unwrap_or(last);
            match scanner
                .and_then(|s| s.get("version"))
                .and_then(Value::as_str)
            {
                Some(v) if !v.is_empty() => format!("{name} {v}"),
                _ => name.to_string(),
            }
        });
    let result = match scanner.and_then(|s| s.get("result")) {
        None | Some(Value::Null) => return Err("no scanner result".into()),
        Some(Value::String(text)) => {
            if text.len() > limits.max_bytes {
                return Err(format!(
                    "scanner result over the limit of {} bytes",
                    limits.max_bytes
                ));
            }
            serde_json::from_str::<Value>(text)
                .map_err(|e| format!("scanner result is not JSON: {e}"))?
        }
        Some(other) => other.clone(),
    };
    let mut cleared = Vec::new();
    let (kind, findings) = if result.get("bomFormat").is_some() {
        let bom =
            sbom::parse_predicate(&result, limits).map_err(|e| format!("scanner result: {e}"))?;
        let by_id = index(&bom);
        ("CycloneDX", from_sbom(&bom, &by_id, "report", &mut cleared))
    } else if result.get("Results").is_some() || result.get("SchemaVersion").is_some() {
        ("Trivy", trivy(&result))
    } else if result.get("matches").is_some() {
        ("Grype", grype(&result))
    } else {
        return Err(
            "scanner result is not a Trivy, Grype or CycloneDX report vouch can read".into(),
        );
    };
    Ok(Report {
        scanner: scanner_name.unwrap_or_else(|| kind.to_string()),
        findings,
        cleared,
    })
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn severity(name: Option<&str>) -> Severity {
    match name {
        Some(n) if n.eq_ignore_ascii_case("negligible") => Severity::Low,
        Some(n) => Severity::from_name(n),
        None => Severity::Unknown,
    }
}

/// Trivy JSON: `Results[].Vulnerabilities[]`.
fn trivy(report: &Value) -> Vec<Finding> {
    let mut out = Vec::new();
    for result in array(report, "Results") {
        for v in array(result, "Vulnerabilities") {
            let Some(id) = text(v, "VulnerabilityID") else {
                continue;
            };
            let name = text(v, "PkgName");
            let version = text(v, "InstalledVersion");
            let purl = v
                .get("PkgIdentifier")
                .and_then(|p| text(p, "PURL"))
                .map(str::to_string);
            out.push(finding(
                id,
                Vec::new(),
                text(v, "Severity"),
                name,
                version,
                purl,
            ));
        }
    }
    out
}

/// Grype JSON: `matches[].vulnerability` and `matches[].artifact`.
fn grype(report: &Value) -> Vec<Finding> {
    let mut out = Vec::new();
    for m in array(report, "matches") {
        let Some(v) = m.get("vulnerability") else {
            continue;
        };
        let Some(id) = text(v, "id") else {
            continue;
        };
        let aliases = array(m, "relatedVulnerabilities")
            .iter()
            .filter_map(|r| text(r, "id"))
            .filter(|a| !a.eq_ignore_ascii_case(id))
            .map(str::to_string)
            .collect();
        let artifact = m.get("artifact");
        let name = artifact.and_then(|a| text(a, "name"));
        let version = artifact.and_then(|a| text(a, "version"));
        let purl = artifact.and_then(|a| text(a, "purl")).map(str::to_string);
        out.push(finding(
            id,
            aliases,
            text(v, "severity"),
            name,
            version,
            purl,
        ));
    }
    out
}

fn finding(
    id: &str,
    aliases: Vec<String>,
    severity_name: Option<&str>,
    name: Option<&str>,
    version: Option<&str>,
    purl: Option<String>,
) -> Finding {
    let affects = match (name, &purl) {
        (None, None) => Vec::new(),
        _ => {
            let label = label(
                name.unwrap_or_else(|| purl.as_deref().unwrap_or("")),
                version,
            );
            let reference = purl.clone().unwrap_or_else(|| match version {
                Some(v) => format!("{}@{v}", name.unwrap_or_default()),
                None => name.unwrap_or_default().to_string(),
            });
            vec![Affected {
                reference,
                label,
                purl: purl.as_deref().and_then(|u| Purl::parse(u).ok()),
            }]
        }
    };
    Finding {
        id: id.to_string(),
        aliases,
        severity: severity(severity_name),
        analysis: None,
        affects,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn trivy_reports_name_package_version_and_purl() {
        let predicate = json!({
            "invocation": {"uri": ""},
            "scanner": {
                "uri": "pkg:github/aquasecurity/trivy@v0.50.1",
                "version": "0.50.1",
                "result": {
                    "SchemaVersion": 2,
                    "ArtifactName": "app",
                    "Results": [
                        {"Target": "debian", "Vulnerabilities": [
                            {"VulnerabilityID": "CVE-2023-0286", "PkgName": "openssl",
                             "InstalledVersion": "3.0.2-1", "Severity": "HIGH",
                             "PkgIdentifier": {"PURL": "pkg:deb/debian/openssl@3.0.2-1"}},
                            {"PkgName": "no-id"}
                        ]},
                        {"Target": "jar", "Vulnerabilities": [
                            {"VulnerabilityID": "CVE-2021-44228", "PkgName": "log4j-core",
                             "InstalledVersion": "2.14.1", "Severity": "CRITICAL"}
                        ]},
                        {"Target": "clean"}
                    ]
                }
            }
        });
        let r = from_vuln_predicate(&predicate, &Limits::default()).unwrap();
        assert_eq!(r.scanner, "trivy 0.50.1");
        assert_eq!(r.findings.len(), 2);
        let f = &r.findings[0];
        assert_eq!(
            (f.id.as_str(), f.severity),
            ("CVE-2023-0286", Severity::High)
        );
        assert_eq!(f.affects[0].label, "openssl 3.0.2-1");
        assert_eq!(
            f.affects[0].purl.as_ref().map(|p| p.name.as_str()),
            Some("openssl")
        );
        let f = &r.findings[1];
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.affects[0].reference, "log4j-core@2.14.1");
        assert_eq!(f.affects[0].purl, None);
    }

    #[test]
    fn grype_reports_carry_related_ids_as_aliases() {
        let predicate = json!({"scanner": {"uri": "", "result": {"matches": [
            {"vulnerability": {"id": "GHSA-jfh8-c2jp-5v3q", "severity": "Critical"},
             "relatedVulnerabilities": [{"id": "CVE-2021-44228"}, {"id": "GHSA-jfh8-c2jp-5v3q"}],
             "artifact": {"name": "log4j-core", "version": "2.14.1",
                          "purl": "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"}},
            {"vulnerability": {"id": "CVE-2005-2541", "severity": "Negligible"},
             "artifact": {"name": "tar", "version": "1.34"}},
            {"artifact": {"name": "no-vulnerability"}}
        ]}}});
        let r = from_vuln_predicate(&predicate, &Limits::default()).unwrap();
        assert_eq!(r.scanner, "Grype");
        assert_eq!(r.findings.len(), 2);
        assert!(r.findings[0].is("cve-2021-44228"));
        assert_eq!(r.findings[0].aliases, vec!["CVE-2021-44228".to_string()]);
        assert_eq!(r.findings[1].severity, Severity::Low);
        assert_eq!(r.findings[1].affects[0].label, "tar 1.34");
    }

    #[test]
    fn a_cyclonedx_result_is_read_as_an_sbom_and_a_string_result_is_decoded() {
        let doc = std::fs::read_to_string(format!(
            "{}/../../shared/fixtures/sbom/cyclonedx/trivy-dev_fluentd-image_vulnerabilities.cdx17.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let predicate = json!({"scanner": {"uri": "", "result": doc}});
        let r = from_vuln_predicate(&predicate, &Limits::default()).unwrap();
        assert_eq!(r.scanner, "CycloneDX");
        let ids: Vec<&str> = r.findings.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["CVE-2019-18224", "CVE-2019-18276", "CVE-2020-8165"]);
        assert_eq!(r.findings[0].severity, Severity::Critical);
        assert_eq!(r.findings[1].affects[0].label, "bash 5.0-4");
        assert_eq!(r.findings[2].affects[0].label, "activesupport 6.0.2.1");
        assert!(r.cleared.is_empty());

        // A result's own analysis clears entries, and says so.
        let doc = std::fs::read_to_string(format!(
            "{}/../../shared/fixtures/sbom/cyclonedx/dependency-track-4.13.5_nested_56-vulnerabilities.cdx16.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let r =
            from_vuln_predicate(&json!({"scanner": {"result": doc}}), &Limits::default()).unwrap();
        assert_eq!(r.findings.len(), 56 - 15);
        assert!(r
            .cleared
            .contains(&"CVE-2025-26519 cleared by the report's analysis (false_positive)".into()));
    }

    #[test]
    fn unreadable_results_contribute_nothing_and_say_why() {
        let envelope: Value = serde_json::from_slice(
            &std::fs::read(format!(
                "{}/../../shared/fixtures/attestations/cosign_vuln-predicate.dsse.json",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        )
        .unwrap();
        let statement = super::super::tests::dsse_statement(&envelope);
        let e = from_vuln_predicate(&statement["predicate"], &Limits::default()).unwrap_err();
        assert_eq!(e, "no scanner result");
        let e = from_vuln_predicate(
            &json!({"scanner": {"result": {"x": 1}}}),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(e.contains("not a Trivy, Grype or CycloneDX report"), "{e}");
        let e = from_vuln_predicate(&json!({"scanner": {"result": "{"}}), &Limits::default())
            .unwrap_err();
        assert!(e.contains("not JSON"), "{e}");
        assert!(from_vuln_predicate(&json!([]), &Limits::default()).is_err());
    }
}

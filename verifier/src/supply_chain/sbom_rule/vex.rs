//! OpenVEX statements (v0.2.0, and v0.0.x where `vulnerability` is a plain string and products
//! may be strings) and which findings they clear.
//!
//! A statement is about a finding when it names the vulnerability (its `name`, `@id` or an alias,
//! case-insensitive) and either lists no products, or one of its products names this image (an
//! `@id` or purl containing the image digest's hex: `pkg:oci/app@sha256%3A<hex>`, `sha256:<hex>`)
//! or the affected package (a purl of the same package, where a versioned purl must give the same
//! version; or the reference the report uses for it, such as a CycloneDX bom-ref). A product with subcomponents is about those subcomponents only: the statement
//! applies to a package a subcomponent names, or, for a finding that names no package, to the
//! image the product names. Of the statements about a finding, the latest (by statement
//! `timestamp`, else the document's; later in order on a tie) decides: `not_affected` and `fixed`
//! clear it, `affected` and `under_investigation` keep it.

use std::collections::HashMap;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::purl::Purl;
use super::vuln::Affected;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    NotAffected,
    Affected,
    Fixed,
    UnderInvestigation,
}

impl Status {
    fn parse(text: &str) -> Option<Status> {
        match text {
            "not_affected" => Some(Status::NotAffected),
            "affected" => Some(Status::Affected),
            "fixed" => Some(Status::Fixed),
            "under_investigation" => Some(Status::UnderInvestigation),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::NotAffected => "not_affected",
            Status::Affected => "affected",
            Status::Fixed => "fixed",
            Status::UnderInvestigation => "under_investigation",
        }
    }

    pub fn clears(self) -> bool {
        matches!(self, Status::NotAffected | Status::Fixed)
    }
}

/// Something a product or subcomponent is called: its `@id` and its `identifiers.purl`.
#[derive(Debug, Clone, Default)]
struct Names {
    texts: Vec<String>,
    purls: Vec<Purl>,
}

impl Names {
    fn of(value: &Value) -> Names {
        let mut names = Names::default();
        let mut add = |text: &str| {
            if text.is_empty() {
                return;
            }
            if let Ok(p) = Purl::parse(text) {
                names.purls.push(p);
            }
            names.texts.push(text.to_ascii_lowercase());
        };
        match value {
            Value::String(s) => add(s),
            Value::Object(o) => {
                for key in ["@id", "id"] {
                    if let Some(s) = o.get(key).and_then(Value::as_str) {
                        add(s);
                    }
                }
                if let Some(s) = o
                    .get("identifiers")
                    .and_then(|i| i.get("purl"))
                    .and_then(Value::as_str)
                {
                    add(s);
                }
            }
            _ => {}
        }
        names
    }

    /// Names the image whose digest hex (lower case) is `digest_hex`.
    fn image(&self, digest_hex: &str) -> bool {
        !digest_hex.is_empty() && self.texts.iter().any(|t| t.contains(digest_hex))
    }

    /// Names the package `affected`: by purl (versioned purls must agree on the version), or by
    /// the reference the report gives it (a CycloneDX bom-ref).
    fn package(&self, affected: &Affected) -> bool {
        if self
            .texts
            .iter()
            .any(|t| t.eq_ignore_ascii_case(&affected.reference))
        {
            return true;
        }
        let Some(purl) = &affected.purl else {
            return false;
        };
        self.purls.iter().any(|p| {
            p.same_package(purl)
                && match (&p.version, &purl.version) {
                    (Some(a), Some(b)) => purl.scheme().compare(a, b).is_eq(),
                    _ => true,
                }
        })
    }
}

#[derive(Debug, Clone)]
struct Product {
    names: Names,
    subcomponents: Vec<Names>,
}

/// One OpenVEX statement, ready to match.
#[derive(Debug, Clone)]
pub(crate) struct Statement {
    products: Vec<Product>,
    pub status: Status,
    pub justification: Option<String>,
    timestamp: Option<OffsetDateTime>,
    /// Position among all statements read, for ties.
    order: usize,
    /// Where the document came from and who signed it, for messages.
    pub source: String,
}

/// Statements of all signed OpenVEX documents, indexed by vulnerability id.
#[derive(Debug, Default)]
pub(crate) struct Vex {
    statements: Vec<Statement>,
    by_id: HashMap<String, Vec<usize>>,
}

fn time_of(v: Option<&Value>) -> Option<OffsetDateTime> {
    v.and_then(Value::as_str)
        .and_then(|t| OffsetDateTime::parse(t.trim(), &Rfc3339).ok())
}

impl Vex {
    /// Adds a document's statements; `Err` says why nothing could be read. Statements with an
    /// unknown status or no vulnerability are skipped and counted in the `Ok` value.
    pub fn add(&mut self, document: &Value, source: &str) -> Result<usize, String> {
        let Some(statements) = document.get("statements").and_then(Value::as_array) else {
            return Err("not an OpenVEX document (no statements)".into());
        };
        let document_time = time_of(document.get("timestamp"));
        let mut skipped = 0;
        for s in statements {
            let mut ids = Vec::new();
            match s.get("vulnerability") {
                Some(Value::String(name)) => ids.push(name.to_ascii_lowercase()),
                Some(v @ Value::Object(_)) => {
                    for key in ["name", "@id"] {
                        if let Some(t) = v.get(key).and_then(Value::as_str) {
                            ids.push(t.to_ascii_lowercase());
                        }
                    }
                    if let Some(aliases) = v.get("aliases").and_then(Value::as_array) {
                        ids.extend(
                            aliases
                                .iter()
                                .filter_map(Value::as_str)
                                .map(str::to_ascii_lowercase),
                        );
                    }
                }
                _ => {}
            }
            ids.retain(|i| !i.is_empty());
            ids.dedup();
            let status = s
                .get("status")
                .and_then(Value::as_str)
                .and_then(Status::parse);
            let (Some(status), false) = (status, ids.is_empty()) else {
                skipped += 1;
                continue;
            };
            let products = s
                .get("products")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .map(|p| Product {
                            names: Names::of(p),
                            subcomponents: p
                                .get("subcomponents")
                                .and_then(Value::as_array)
                                .map(|subs| subs.iter().map(Names::of).collect())
                                .unwrap_or_default(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let index = self.statements.len();
            for id in &ids {
                self.by_id.entry(id.clone()).or_default().push(index);
            }
            self.statements.push(Statement {
                products,
                status,
                justification: s
                    .get("justification")
                    .and_then(Value::as_str)
                    .filter(|j| !j.is_empty())
                    .map(str::to_string),
                timestamp: time_of(s.get("timestamp")).or(document_time),
                order: index,
                source: source.to_string(),
            });
        }
        Ok(skipped)
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// The statement that decides about vulnerability `ids` in `affected` (or, when `None`, the
    /// image as a whole) in the image with digest hex `digest_hex`.
    pub fn decide(
        &self,
        ids: &[&str],
        affected: Option<&Affected>,
        digest_hex: &str,
    ) -> Option<&Statement> {
        let mut candidates: Vec<usize> = ids
            .iter()
            .filter_map(|id| self.by_id.get(&id.to_ascii_lowercase()))
            .flatten()
            .copied()
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        candidates
            .into_iter()
            .filter_map(|i| self.statements.get(i))
            .filter(|s| s.applies(affected, digest_hex))
            .max_by_key(|s| (s.timestamp, s.order))
    }
}

impl Statement {
    fn applies(&self, affected: Option<&Affected>, digest_hex: &str) -> bool {
        if self.products.is_empty() {
            return true;
        }
        self.products.iter().any(|p| match affected {
            Some(a) if p.subcomponents.is_empty() => {
                p.names.image(digest_hex) || p.names.package(a)
            }
            Some(a) => p.subcomponents.iter().any(|s| s.package(a)),
            None => p.names.image(digest_hex),
        })
    }

    /// `OpenVEX not_affected (vulnerable_code_not_present; <source>)`.
    pub fn describe(&self) -> String {
        match &self.justification {
            Some(j) => format!("OpenVEX {} ({j}; {})", self.status.as_str(), self.source),
            None => format!("OpenVEX {} ({})", self.status.as_str(), self.source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HEX: &str = "3c19aa980a9c5709a2c96c2d0779febf6e5e453b92b172ce84cb85fdaf695373";

    fn affected(purl: &str) -> Affected {
        Affected {
            reference: purl.into(),
            label: purl.into(),
            purl: Purl::parse(purl).ok(),
        }
    }

    fn fixture() -> Value {
        let path = format!(
            "{}/../../shared/fixtures/attestations/trivy-project.openvex.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn the_trivy_project_document_clears_its_21_vulnerabilities_in_the_named_subcomponents() {
        let mut vex = Vex::default();
        assert_eq!(vex.add(&fixture(), "vex.att").unwrap(), 0);
        assert_eq!(vex.statements.len(), 21);
        assert!(vex
            .statements
            .iter()
            .all(|s| s.status == Status::NotAffected));
        let helm = affected("pkg:golang/helm.sh/helm/v3@v3.14.0");
        // By name, by @id and by alias, in any case.
        for id in [
            "GO-2024-2575",
            "https://pkg.go.dev/vuln/GO-2024-2575",
            "cve-2024-26147",
        ] {
            let s = vex.decide(&[id], Some(&helm), HEX).unwrap();
            assert_eq!(
                s.justification.as_deref(),
                Some("vulnerable_code_not_in_execute_path")
            );
            assert!(s.timestamp.is_some());
        }
        // Another package, or the image as a whole, is not what the statement is about.
        let other = affected("pkg:golang/github.com/docker/docker@v25.0.0");
        assert!(vex.decide(&["CVE-2024-26147"], Some(&other), HEX).is_none());
        assert!(vex.decide(&["CVE-2024-26147"], None, HEX).is_none());
        assert!(vex.decide(&["CVE-2099-0001"], Some(&helm), HEX).is_none());
    }

    #[test]
    fn products_naming_the_image_or_package_and_the_latest_statement_win() {
        let doc = json!({
            "@context": "https://openvex.dev/ns/v0.2.0",
            "timestamp": "2026-01-01T00:00:00Z",
            "statements": [
                {"vulnerability": {"name": "CVE-1"}, "status": "not_affected",
                 "justification": "component_not_present",
                 "products": [{"@id": format!("pkg:oci/app@sha256%3A{HEX}")}]},
                {"vulnerability": {"name": "CVE-1"}, "status": "affected",
                 "timestamp": "2026-02-01T00:00:00Z",
                 "products": [{"@id": format!("registry.io/app@sha256:{HEX}")}]},
                {"vulnerability": {"name": "CVE-2"}, "status": "fixed", "products": []},
                {"vulnerability": "CVE-3", "status": "not_affected",
                 "products": ["pkg:deb/debian/openssl@3.0.2-1"]},
                {"vulnerability": {"name": "CVE-4"}, "status": "not_affected",
                 "products": [{"@id": format!("sha256:{HEX}"),
                               "subcomponents": [{"@id": "pkg:deb/debian/bash"}]}]},
                {"vulnerability": {"name": "CVE-6"}, "status": "not_affected",
                 "products": [{"@id": "Final product@1.2.3"}]},
                {"vulnerability": {"name": "CVE-5"}, "status": "maybe"},
                {"status": "fixed"}
            ]
        });
        let mut vex = Vex::default();
        assert_eq!(vex.add(&doc, "vex").unwrap(), 2);
        let openssl = affected("pkg:deb/debian/openssl@3.0.2-1?arch=amd64");
        let bash = affected("pkg:deb/debian/bash@5.2.15-2");
        // The later `affected` re-opens CVE-1.
        let s = vex.decide(&["CVE-1"], Some(&openssl), HEX).unwrap();
        assert_eq!(s.status, Status::Affected);
        // For another image, only the first statement's product... names neither.
        assert!(vex.decide(&["CVE-1"], Some(&openssl), "ffff").is_none());
        assert_eq!(
            vex.decide(&["cve-2"], None, HEX).unwrap().status,
            Status::Fixed
        );
        assert!(vex
            .decide(&["CVE-3"], Some(&openssl), HEX)
            .unwrap()
            .status
            .clears());
        let newer = affected("pkg:deb/debian/openssl@3.0.7-1");
        assert!(vex.decide(&["CVE-3"], Some(&newer), HEX).is_none());
        // Subcomponents narrow a product to those packages.
        assert!(vex.decide(&["CVE-4"], Some(&bash), HEX).is_some());
        assert!(vex.decide(&["CVE-4"], Some(&openssl), HEX).is_none());
        assert!(vex.decide(&["CVE-4"], None, HEX).is_some());
        // A bom-ref the report uses, without a purl.
        let bom_ref = Affected {
            reference: "Final product@1.2.3".into(),
            label: "Final product@1.2.3".into(),
            purl: None,
        };
        assert!(vex.decide(&["CVE-6"], Some(&bom_ref), HEX).is_some());
        assert!(vex.decide(&["CVE-6"], Some(&bash), HEX).is_none());
        assert_eq!(vex.by_id.get("cve-2"), Some(&vec![2]));
        assert!(Vex::default().add(&json!({"x": 1}), "v").is_err());
    }
}

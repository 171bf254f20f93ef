//! CycloneDX 1.4 to 1.7 JSON: the fields vouch reads, and their normalisation.
//!
//! Nested components are flattened, depth first, each after its parent; a component without a
//! `bom-ref` is identified by its JSON path. Components of type `file` stay packages (their purls
//! and licenses are policy's business too) and, when they carry a hash, are also listed as files.

use serde::Deserialize;
use serde_json::Value;

use super::inventory::{
    normalise_algorithm, push_unique, Checksum, File, Format, Package, Relationship, Sbom,
    Severity, Vulnerability,
};
use super::{field_error, nullable, parse_time, Limits, SbomError};

#[derive(Debug, Deserialize)]
pub(super) struct Bom {
    metadata: Option<Metadata>,
    #[serde(default, deserialize_with = "nullable")]
    components: Vec<RawComponent>,
    #[serde(default, deserialize_with = "nullable")]
    dependencies: Vec<RawDependency>,
    #[serde(default, deserialize_with = "nullable")]
    vulnerabilities: Vec<RawVulnerability>,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    timestamp: Option<String>,
    /// An array of tools (1.4) or `{components, services}` (1.5 on).
    tools: Option<Value>,
    #[serde(default, deserialize_with = "nullable")]
    authors: Vec<Contact>,
}

#[derive(Debug, Deserialize)]
struct Contact {
    name: Option<String>,
    email: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Entity {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawComponent {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "bom-ref")]
    bom_ref: Option<String>,
    name: Option<String>,
    version: Option<String>,
    purl: Option<String>,
    supplier: Option<Entity>,
    #[serde(default, deserialize_with = "nullable")]
    licenses: Vec<LicenseChoice>,
    #[serde(default, deserialize_with = "nullable")]
    hashes: Vec<Hash>,
    #[serde(default, deserialize_with = "nullable")]
    components: Vec<RawComponent>,
}

#[derive(Debug, Deserialize)]
struct LicenseChoice {
    license: Option<License>,
    expression: Option<String>,
}

#[derive(Debug, Deserialize)]
struct License {
    id: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Hash {
    alg: Option<String>,
    content: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDependency {
    #[serde(rename = "ref")]
    reference: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    depends_on: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    provides: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct RawVulnerability {
    #[serde(rename = "bom-ref")]
    bom_ref: Option<String>,
    id: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    ratings: Vec<Rating>,
    #[serde(default, deserialize_with = "nullable")]
    affects: Vec<Affect>,
    analysis: Option<Analysis>,
}

#[derive(Debug, Deserialize)]
struct Rating {
    severity: Option<String>,
    score: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct Affect {
    #[serde(rename = "ref")]
    reference: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Analysis {
    state: Option<String>,
}

pub(super) fn normalise(
    bom: Bom,
    spec_version: String,
    limits: &Limits,
) -> Result<Sbom, SbomError> {
    let (mut created, mut tools, mut authors) = (None, Vec::new(), Vec::new());
    if let Some(metadata) = bom.metadata {
        if let Some(timestamp) = &metadata.timestamp {
            created = Some(parse_time(timestamp, "metadata.timestamp")?);
        }
        if let Some(value) = &metadata.tools {
            tools = tool_names(value)?;
        }
        authors = metadata
            .authors
            .into_iter()
            .filter_map(|a| a.name.or(a.email))
            .collect();
    }

    let mut flat = Flattener {
        limits,
        packages: Vec::with_capacity(bom.components.len()),
        files: Vec::new(),
    };
    flat.walk(bom.components, "components", None, 1)?;

    let mut relationships = Vec::new();
    for (i, dependency) in bom.dependencies.into_iter().enumerate() {
        let Some(from) = dependency.reference else {
            return Err(field_error(
                format!("dependencies[{i}].ref"),
                "missing; CycloneDX requires it",
            ));
        };
        for (kind, targets) in [
            ("DEPENDS_ON", dependency.depends_on),
            ("PROVIDES", dependency.provides),
        ] {
            relationships.extend(targets.into_iter().map(|to| Relationship {
                from: from.clone(),
                kind: kind.to_owned(),
                to,
            }));
        }
    }

    let vulnerabilities = bom
        .vulnerabilities
        .into_iter()
        .map(|v| Vulnerability {
            id: v.id.or(v.bom_ref).unwrap_or_default(),
            severity: v
                .ratings
                .iter()
                .map(|r| match (&r.severity, r.score) {
                    (Some(name), _) => Severity::from_name(name),
                    (None, Some(score)) => Severity::from_cvss(score),
                    (None, None) => Severity::Unknown,
                })
                .max()
                .unwrap_or(Severity::Unknown),
            affects: v.affects.into_iter().filter_map(|a| a.reference).collect(),
            analysis: v.analysis.and_then(|a| a.state),
        })
        .collect();

    Ok(Sbom {
        format: Format::CycloneDx,
        spec_version,
        created,
        tools,
        authors,
        packages: flat.packages,
        files: flat.files,
        relationships,
        vulnerabilities,
    })
}

struct Flattener<'a> {
    limits: &'a Limits,
    packages: Vec<Package>,
    files: Vec<File>,
}

impl Flattener<'_> {
    /// Recursion is bounded by `max_component_depth` (and, before that, by the JSON depth limit).
    fn walk(
        &mut self,
        components: Vec<RawComponent>,
        path: &str,
        parent: Option<&str>,
        depth: usize,
    ) -> Result<(), SbomError> {
        if components.is_empty() {
            return Ok(());
        }
        if depth > self.limits.max_component_depth {
            return Err(SbomError::Limit {
                what: "CycloneDX component nesting depth",
                limit: self.limits.max_component_depth,
            });
        }
        for (i, c) in components.into_iter().enumerate() {
            let here = format!("{path}[{i}]");
            let Some(name) = c.name.filter(|n| !n.is_empty()) else {
                return Err(field_error(
                    format!("{here}.name"),
                    "missing; CycloneDX requires it",
                ));
            };
            let id = c.bom_ref.unwrap_or_else(|| here.clone());
            let mut licenses = Vec::new();
            for choice in &c.licenses {
                let license = choice.license.as_ref();
                let text = license.and_then(|l| l.id.as_deref().or(l.name.as_deref()));
                for value in [text, choice.expression.as_deref()].into_iter().flatten() {
                    if !value.trim().is_empty() {
                        push_unique(&mut licenses, value.trim());
                    }
                }
            }
            let checksums: Vec<Checksum> = c
                .hashes
                .into_iter()
                .filter_map(|h| match (h.alg, h.content) {
                    (Some(alg), Some(content)) if !content.trim().is_empty() => Some(Checksum {
                        algorithm: normalise_algorithm(&alg),
                        value: content.trim().to_ascii_lowercase(),
                    }),
                    _ => None,
                })
                .collect();
            if c.kind.as_deref() == Some("file") && !checksums.is_empty() {
                let digest = |alg: &str| {
                    checksums
                        .iter()
                        .find(|s| s.algorithm == alg)
                        .map(|s| s.value.clone())
                };
                self.files.push(File {
                    path: name.clone(),
                    sha256: digest("SHA256"),
                    sha1: digest("SHA1"),
                    package: parent.map(str::to_owned),
                });
            }
            self.packages.push(Package {
                id: id.clone(),
                name,
                version: c.version,
                purl: c.purl,
                supplier: c.supplier.and_then(|s| s.name),
                licenses,
                checksums,
                kind: c.kind,
            });
            self.walk(
                c.components,
                &format!("{here}.components"),
                Some(&id),
                depth + 1,
            )?;
        }
        Ok(())
    }
}

/// `name version` of each tool, from either shape of `metadata.tools`.
fn tool_names(value: &Value) -> Result<Vec<String>, SbomError> {
    let entries: Vec<&Value> = match value {
        Value::Null => Vec::new(),
        Value::Array(tools) => tools.iter().collect(),
        Value::Object(shape) => ["components", "services"]
            .iter()
            .filter_map(|k| shape.get(*k).and_then(Value::as_array))
            .flatten()
            .collect(),
        _ => {
            return Err(field_error(
                "metadata.tools",
                "expected an array or an object",
            ))
        }
    };
    Ok(entries
        .into_iter()
        .filter_map(|tool| {
            let name = tool.get("name")?.as_str()?;
            Some(match tool.get("version").and_then(Value::as_str) {
                Some(version) => format!("{name} {version}"),
                None => name.to_owned(),
            })
        })
        .collect())
}

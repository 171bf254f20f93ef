//! SPDX 2.2 and 2.3 JSON: the fields vouch reads, and their normalisation.
//!
//! Lenient about everything vouch does not read, strict about what it does: a document without the
//! fields SPDX requires of packages, files and relationships is not SPDX, and is refused rather
//! than guessed at (early trivy output, for one, has neither `downloadLocation` nor valid
//! relationship types).

use std::collections::HashMap;

use serde::Deserialize;

use super::inventory::{
    normalise_algorithm, push_unique, Checksum, File, Format, Package, Relationship, Sbom,
};
use super::{field_error, nullable, parse_time, SbomError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Document {
    creation_info: Option<CreationInfo>,
    #[serde(default, deserialize_with = "nullable")]
    packages: Vec<RawPackage>,
    #[serde(default, deserialize_with = "nullable")]
    files: Vec<RawFile>,
    #[serde(default, deserialize_with = "nullable")]
    relationships: Vec<RawRelationship>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreationInfo {
    created: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    creators: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPackage {
    #[serde(rename = "SPDXID")]
    spdx_id: Option<String>,
    name: Option<String>,
    version_info: Option<String>,
    supplier: Option<String>,
    download_location: Option<String>,
    license_concluded: Option<String>,
    license_declared: Option<String>,
    primary_package_purpose: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    external_refs: Vec<ExternalRef>,
    #[serde(default, deserialize_with = "nullable")]
    checksums: Vec<RawChecksum>,
    #[serde(default, deserialize_with = "nullable")]
    has_files: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_type: Option<String>,
    reference_locator: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawChecksum {
    algorithm: Option<String>,
    checksum_value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFile {
    #[serde(rename = "SPDXID")]
    spdx_id: Option<String>,
    file_name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    checksums: Vec<RawChecksum>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRelationship {
    spdx_element_id: Option<String>,
    relationship_type: Option<String>,
    related_spdx_element: Option<String>,
}

/// The relationship types of SPDX 2.3 (a superset of 2.2's).
const RELATIONSHIP_TYPES: &[&str] = &[
    "AMENDS",
    "ANCESTOR_OF",
    "BUILD_DEPENDENCY_OF",
    "BUILD_TOOL_OF",
    "CONTAINED_BY",
    "CONTAINS",
    "COPY_OF",
    "DATA_FILE_OF",
    "DEPENDENCY_MANIFEST_OF",
    "DEPENDENCY_OF",
    "DEPENDS_ON",
    "DESCENDANT_OF",
    "DESCRIBED_BY",
    "DESCRIBES",
    "DEV_DEPENDENCY_OF",
    "DEV_TOOL_OF",
    "DISTRIBUTION_ARTIFACT",
    "DOCUMENTATION_OF",
    "DYNAMIC_LINK",
    "EXAMPLE_OF",
    "EXPANDED_FROM_ARCHIVE",
    "FILE_ADDED",
    "FILE_DELETED",
    "FILE_MODIFIED",
    "GENERATED_FROM",
    "GENERATES",
    "HAS_PREREQUISITE",
    "METAFILE_OF",
    "OPTIONAL_COMPONENT_OF",
    "OPTIONAL_DEPENDENCY_OF",
    "OTHER",
    "PACKAGE_OF",
    "PATCH_APPLIED",
    "PATCH_FOR",
    "PREREQUISITE_FOR",
    "PROVIDED_DEPENDENCY_OF",
    "REQUIREMENT_DESCRIPTION_FOR",
    "RUNTIME_DEPENDENCY_OF",
    "SPECIFICATION_FOR",
    "STATIC_LINK",
    "TEST_CASE_OF",
    "TEST_DEPENDENCY_OF",
    "TEST_OF",
    "TEST_TOOL_OF",
    "VARIANT_OF",
];

/// A value SPDX uses to say "no information".
fn is_no_assertion(value: &str) -> bool {
    let v = value.trim();
    v.is_empty() || v.eq_ignore_ascii_case("NOASSERTION") || v.eq_ignore_ascii_case("NONE")
}

fn required(value: Option<String>, path: impl FnOnce() -> String) -> Result<String, SbomError> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(field_error(path(), "missing; SPDX requires it")),
    }
}

pub(super) fn normalise(doc: Document, spec_version: String) -> Result<Sbom, SbomError> {
    let info = doc
        .creation_info
        .ok_or_else(|| field_error("creationInfo", "missing; SPDX requires it"))?;
    let created = required(info.created, || "creationInfo.created".into())?;
    let created = Some(parse_time(&created, "creationInfo.created")?);
    let (mut tools, mut authors) = (Vec::new(), Vec::new());
    for creator in &info.creators {
        let (kind, who) = creator.split_once(':').unwrap_or(("", creator));
        let who = who.trim();
        match kind.trim().to_ascii_lowercase().as_str() {
            "tool" => tools.push(who.to_owned()),
            "person" | "organization" => authors.push(who.to_owned()),
            _ => {}
        }
    }

    let mut packages = Vec::with_capacity(doc.packages.len());
    let mut owners: Vec<(String, String)> = Vec::new(); // (file id, package id) from hasFiles
    for (i, p) in doc.packages.into_iter().enumerate() {
        let id = required(p.spdx_id, || format!("packages[{i}].SPDXID"))?;
        let name = required(p.name, || format!("packages[{i}].name"))?;
        required(p.download_location, || {
            format!("packages[{i}].downloadLocation")
        })?;
        let mut licenses = Vec::new();
        for license in [&p.license_concluded, &p.license_declared]
            .into_iter()
            .flatten()
        {
            if !is_no_assertion(license) {
                push_unique(&mut licenses, license.trim());
            }
        }
        let purl = p
            .external_refs
            .into_iter()
            .find(|r| {
                r.reference_type
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case("purl"))
            })
            .and_then(|r| r.reference_locator);
        let supplier = p.supplier.filter(|s| !is_no_assertion(s)).map(|s| {
            let s = s.trim();
            match s.split_once(':') {
                Some((kind, who)) if matches!(kind.trim(), "Organization" | "Person") => {
                    who.trim().to_owned()
                }
                _ => s.to_owned(),
            }
        });
        owners.extend(p.has_files.into_iter().map(|f| (f, id.clone())));
        packages.push(Package {
            id,
            name,
            version: p.version_info,
            purl,
            supplier,
            licenses,
            checksums: checksums(p.checksums),
            kind: p.primary_package_purpose,
        });
    }

    let mut files = Vec::with_capacity(doc.files.len());
    let mut file_index: HashMap<String, usize> = HashMap::with_capacity(doc.files.len());
    for (i, f) in doc.files.into_iter().enumerate() {
        let id = required(f.spdx_id, || format!("files[{i}].SPDXID"))?;
        let path = required(f.file_name, || format!("files[{i}].fileName"))?;
        let sums = checksums(f.checksums);
        let digest = |alg: &str| {
            sums.iter()
                .find(|c| c.algorithm == alg)
                .map(|c| c.value.clone())
        };
        file_index.entry(id).or_insert(files.len());
        files.push(File {
            path,
            sha256: digest("SHA256"),
            sha1: digest("SHA1"),
            package: None,
        });
    }

    let mut relationships = Vec::with_capacity(doc.relationships.len());
    for (i, r) in doc.relationships.into_iter().enumerate() {
        let from = required(r.spdx_element_id, || {
            format!("relationships[{i}].spdxElementId")
        })?;
        let kind = required(r.relationship_type, || {
            format!("relationships[{i}].relationshipType")
        })?;
        let to = required(r.related_spdx_element, || {
            format!("relationships[{i}].relatedSpdxElement")
        })?;
        if !RELATIONSHIP_TYPES.contains(&kind.as_str()) {
            return Err(field_error(
                format!("relationships[{i}].relationshipType"),
                format!("{kind:?} is not an SPDX relationship type"),
            ));
        }
        relationships.push(Relationship { from, kind, to });
    }

    // Ownership: hasFiles first, then CONTAINS / CONTAINED_BY between a package and a file.
    if !files.is_empty() {
        let package_ids: std::collections::HashSet<&str> =
            packages.iter().map(|p| p.id.as_str()).collect();
        let from_relationships = relationships.iter().filter_map(|r| match r.kind.as_str() {
            "CONTAINS" if package_ids.contains(r.from.as_str()) => Some((&r.to, &r.from)),
            "CONTAINED_BY" if package_ids.contains(r.to.as_str()) => Some((&r.from, &r.to)),
            _ => None,
        });
        for (file_id, package_id) in owners.iter().map(|(f, p)| (f, p)).chain(from_relationships) {
            if let Some(file) = file_index
                .get(file_id.as_str())
                .and_then(|&n| files.get_mut(n))
            {
                file.package.get_or_insert_with(|| package_id.clone());
            }
        }
    }

    Ok(Sbom {
        format: Format::Spdx,
        spec_version,
        created,
        tools,
        authors,
        packages,
        files,
        relationships,
        vulnerabilities: Vec::new(),
    })
}

fn checksums(raw: Vec<RawChecksum>) -> Vec<Checksum> {
    raw.into_iter()
        .filter_map(|c| match (c.algorithm, c.checksum_value) {
            (Some(alg), Some(value)) if !value.trim().is_empty() => Some(Checksum {
                algorithm: normalise_algorithm(&alg),
                value: value.trim().to_ascii_lowercase(),
            }),
            _ => None,
        })
        .collect()
}

//! The SPDX 2.3 JSON document: a root package for the image or directory, which the document
//! `DESCRIBES` and which `CONTAINS` every package; `DEPENDS_ON` between packages; every regular
//! file with SHA1 and SHA256 (SPDX requires SHA1), `CONTAINS` from the packages that own it.

use serde_json::{json, Map, Value};

use super::package::Package;
use super::{Inventory, Meta, SbomGenError};

const NOASSERTION: &str = "NOASSERTION";

/// `[A-Za-z0-9.-]` kept, everything else `-`: what an SPDX id may hold.
fn id_part(text: &str) -> String {
    text.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn package_id(i: usize, p: &Package) -> String {
    format!("SPDXRef-Package-{}-{}-{i}", p.ecosystem, id_part(&p.name))
}

fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({"spdxElementId": from, "relationshipType": kind, "relatedSpdxElement": to})
}

pub(super) fn render(inv: &Inventory, meta: &Meta<'_>) -> Result<Value, SbomGenError> {
    let created = meta
        .created
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| SbomGenError::Render(e.to_string()))?;
    let mut creators = vec![format!("Tool: vouch-{}", meta.tool_version)];
    creators.extend(meta.authors.iter().map(|a| a.spdx()));

    let subject = &inv.subject;
    let root_id = if subject.is_image {
        "SPDXRef-Image"
    } else {
        "SPDXRef-Directory"
    };
    let mut root = Map::new();
    root.insert("SPDXID".into(), json!(root_id));
    root.insert("name".into(), json!(subject.name));
    if let Some(digest) = &subject.digest {
        root.insert("versionInfo".into(), json!(digest));
        if let Some(hex) = digest.strip_prefix("sha256:") {
            root.insert(
                "checksums".into(),
                json!([{"algorithm": "SHA256", "checksumValue": hex}]),
            );
        }
    }
    // The subject's supplier is whoever publishes the SBOM about it: the first author.
    root.insert(
        "supplier".into(),
        json!(meta
            .authors
            .first()
            .map(|a| a.spdx())
            .unwrap_or_else(|| NOASSERTION.to_owned())),
    );
    root.insert(
        "externalRefs".into(),
        json!([{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": super::subject_purl(subject),
        }]),
    );
    root.insert("downloadLocation".into(), json!(NOASSERTION));
    root.insert("filesAnalyzed".into(), json!(false));
    root.insert("licenseConcluded".into(), json!(NOASSERTION));
    root.insert("licenseDeclared".into(), json!(NOASSERTION));
    root.insert("copyrightText".into(), json!(NOASSERTION));
    root.insert("primaryPackagePurpose".into(), json!("CONTAINER"));
    let mut comment = Vec::new();
    if let Some(r) = &subject.ref_name {
        comment.push(format!("ref name {r}"));
    }
    if let Some(p) = &subject.platform {
        comment.push(format!("platform {p}"));
    }
    if !comment.is_empty() {
        root.insert("comment".into(), json!(comment.join("; ")));
    }

    let mut packages = vec![Value::Object(root)];
    let mut relationships = vec![relationship("SPDXRef-DOCUMENT", "DESCRIBES", root_id)];

    if let Some(id) = &inv.distro.id {
        let mut os = Map::new();
        os.insert("SPDXID".into(), json!("SPDXRef-OperatingSystem"));
        os.insert("name".into(), json!(id));
        if let Some(v) = &inv.distro.version_id {
            os.insert("versionInfo".into(), json!(v));
        }
        os.insert("supplier".into(), json!(format!("Organization: {id}")));
        if let Some(purl) = super::os_purl(&inv.distro) {
            os.insert(
                "externalRefs".into(),
                json!([{
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": purl,
                }]),
            );
        }
        os.insert("downloadLocation".into(), json!(NOASSERTION));
        os.insert("filesAnalyzed".into(), json!(false));
        os.insert("licenseConcluded".into(), json!(NOASSERTION));
        os.insert("licenseDeclared".into(), json!(NOASSERTION));
        os.insert("copyrightText".into(), json!(NOASSERTION));
        os.insert("primaryPackagePurpose".into(), json!("OPERATING-SYSTEM"));
        if let Some(d) = &inv.distro.pretty_name {
            os.insert("description".into(), json!(d));
        }
        packages.push(Value::Object(os));
        relationships.push(relationship(root_id, "CONTAINS", "SPDXRef-OperatingSystem"));
    }

    let ids: Vec<String> = inv
        .packages
        .iter()
        .enumerate()
        .map(|(i, p)| package_id(i, p))
        .collect();
    for (p, id) in inv.packages.iter().zip(&ids) {
        let license = p.license.as_deref().unwrap_or(NOASSERTION);
        let mut v = Map::new();
        v.insert("SPDXID".into(), json!(id));
        v.insert("name".into(), json!(p.name));
        v.insert("versionInfo".into(), json!(p.version));
        v.insert(
            "supplier".into(),
            json!(p
                .supplier
                .as_ref()
                .map(|s| s.spdx())
                .unwrap_or_else(|| NOASSERTION.to_owned())),
        );
        v.insert("downloadLocation".into(), json!(NOASSERTION));
        v.insert("filesAnalyzed".into(), json!(false));
        v.insert("licenseConcluded".into(), json!(license));
        v.insert("licenseDeclared".into(), json!(license));
        v.insert("copyrightText".into(), json!(NOASSERTION));
        if let Some(source) = &p.source {
            v.insert(
                "sourceInfo".into(),
                json!(format!("built from source package {source}")),
            );
        }
        v.insert("primaryPackagePurpose".into(), json!("LIBRARY"));
        v.insert(
            "comment".into(),
            json!(format!("{} database /{}", p.ecosystem, p.location)),
        );
        v.insert(
            "externalRefs".into(),
            json!([{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": p.purl,
            }]),
        );
        packages.push(Value::Object(v));
        relationships.push(relationship(root_id, "CONTAINS", id));
    }
    for (p, id) in inv.packages.iter().zip(&ids) {
        for &d in &p.depends_on {
            if let Some(to) = ids.get(d) {
                relationships.push(relationship(id, "DEPENDS_ON", to));
            }
        }
    }

    let mut files = Vec::new();
    let mut file_ids = std::collections::HashMap::new();
    for (i, f) in inv.tree.files().enumerate() {
        let id = format!("SPDXRef-File-{i}");
        files.push(json!({
            "SPDXID": id,
            "fileName": format!("./{}", f.path),
            "checksums": [
                {"algorithm": "SHA1", "checksumValue": hex::encode(f.sha1)},
                {"algorithm": "SHA256", "checksumValue": hex::encode(f.sha256)},
            ],
        }));
        file_ids.insert(f.path, id);
    }
    for (p, id) in inv.packages.iter().zip(&ids) {
        for path in &p.files {
            if let Some(file) = file_ids.get(path.as_str()) {
                relationships.push(relationship(id, "CONTAINS", file));
            }
        }
    }

    let namespace_name: String = inv
        .subject
        .name
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    Ok(json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": inv.subject.name,
        "documentNamespace": format!("https://vouch.dev/spdx/{namespace_name}-{}", meta.uuid),
        "creationInfo": {
            "created": created,
            "creators": creators,
        },
        "packages": packages,
        "files": files,
        "relationships": relationships,
    }))
}

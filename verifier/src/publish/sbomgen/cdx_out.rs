//! The CycloneDX 1.5 JSON document: the image or directory as `metadata.component`, the operating
//! system and the packages as components (`bom-ref` = purl), every regular file as a `file`
//! component with its SHA-256, nested in the package that owns it, and `dependencies`.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Map, Value};

use super::package::Package;
use super::{Inventory, Meta, SbomGenError};

/// One id, with nothing else: a single SPDX license id CycloneDX can carry as `license.id`.
fn single_id(expression: &str) -> bool {
    !expression.contains(' ')
        && !expression.contains('(')
        && !expression.ends_with('+')
        && !expression.starts_with("LicenseRef-")
}

/// Bom-refs: the purl, or for a purl that occurs more than once (one npm package installed in
/// two places), the purl with the location as its subpath.
fn bom_refs(packages: &[Package]) -> Vec<String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for p in packages {
        *seen.entry(p.purl.as_str()).or_default() += 1;
    }
    packages
        .iter()
        .map(|p| {
            if seen.get(p.purl.as_str()).copied().unwrap_or(0) > 1 {
                format!("{}#{}", p.purl, p.location)
            } else {
                p.purl.clone()
            }
        })
        .collect()
}

fn file_component(path: &str, sha256: &[u8; 32]) -> Value {
    json!({
        "type": "file",
        "bom-ref": format!("file:/{path}"),
        "name": format!("/{path}"),
        "hashes": [{"alg": "SHA-256", "content": hex::encode(sha256)}],
    })
}

pub(super) fn render(inv: &Inventory, meta: &Meta<'_>) -> Result<Value, SbomGenError> {
    let timestamp = meta
        .created
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| SbomGenError::Render(e.to_string()))?;
    let subject = &inv.subject;
    let mut root = Map::new();
    root.insert(
        "type".into(),
        json!(if subject.is_image {
            "container"
        } else {
            "application"
        }),
    );
    root.insert(
        "bom-ref".into(),
        json!(format!("vouch:subject:{}", subject.name)),
    );
    root.insert("name".into(), json!(subject.name));
    root.insert("purl".into(), json!(super::subject_purl(subject)));
    if let Some(a) = meta.authors.first() {
        root.insert("supplier".into(), json!({"name": a.name()}));
    }
    if let Some(digest) = &subject.digest {
        root.insert("version".into(), json!(digest));
        if let Some(hex) = digest.strip_prefix("sha256:") {
            root.insert("hashes".into(), json!([{"alg": "SHA-256", "content": hex}]));
        }
    }
    let mut properties = Vec::new();
    if let Some(r) = &subject.ref_name {
        properties.push(json!({"name": "vouch:ref-name", "value": r}));
    }
    if let Some(p) = &subject.platform {
        properties.push(json!({"name": "vouch:platform", "value": p}));
    }
    if !properties.is_empty() {
        root.insert("properties".into(), json!(properties));
    }

    let mut metadata = Map::new();
    metadata.insert("timestamp".into(), json!(timestamp));
    metadata.insert(
        "tools".into(),
        json!({"components": [{"type": "application", "name": "vouch", "version": meta.tool_version}]}),
    );
    if !meta.authors.is_empty() {
        let authors: Vec<Value> = meta
            .authors
            .iter()
            .map(|a| json!({"name": a.name()}))
            .collect();
        metadata.insert("authors".into(), json!(authors));
    }
    metadata.insert("component".into(), Value::Object(root));

    let refs = bom_refs(&inv.packages);
    // Each file nests in the first package (in package order) that owns it.
    let mut owner: HashMap<&str, usize> = HashMap::new();
    for (i, p) in inv.packages.iter().enumerate() {
        for f in &p.files {
            owner.entry(f.as_str()).or_insert(i);
        }
    }
    let mut owned: Vec<Vec<Value>> = vec![Vec::new(); inv.packages.len()];
    let mut loose = Vec::new();
    for f in inv.tree.files() {
        let component = file_component(f.path, f.sha256);
        match owner.get(f.path) {
            Some(&i) => owned[i].push(component),
            None => loose.push(component),
        }
    }

    let mut components = Vec::new();
    if let Some(id) = &inv.distro.id {
        let mut os = Map::new();
        os.insert("type".into(), json!("operating-system"));
        os.insert(
            "bom-ref".into(),
            json!(format!(
                "vouch:os:{id}@{}",
                inv.distro.version_id.as_deref().unwrap_or("")
            )),
        );
        os.insert("name".into(), json!(id));
        os.insert("supplier".into(), json!({"name": id}));
        if let Some(purl) = super::os_purl(&inv.distro) {
            os.insert("purl".into(), json!(purl));
        }
        if let Some(v) = &inv.distro.version_id {
            os.insert("version".into(), json!(v));
        }
        if let Some(d) = &inv.distro.pretty_name {
            os.insert("description".into(), json!(d));
        }
        components.push(Value::Object(os));
    }
    for ((p, bom_ref), files) in inv.packages.iter().zip(&refs).zip(owned) {
        let mut c = Map::new();
        c.insert("type".into(), json!("library"));
        c.insert("bom-ref".into(), json!(bom_ref));
        if let Some(s) = &p.supplier {
            c.insert("supplier".into(), json!({"name": s.name()}));
        }
        c.insert("name".into(), json!(p.name));
        c.insert("version".into(), json!(p.version));
        if let Some(l) = &p.license {
            let licenses = if single_id(l) {
                json!([{"license": {"id": l}}])
            } else {
                json!([{"expression": l}])
            };
            c.insert("licenses".into(), licenses);
        }
        c.insert("purl".into(), json!(p.purl));
        let mut properties = vec![
            json!({"name": "vouch:package-database", "value": p.ecosystem.as_str()}),
            json!({"name": "vouch:location", "value": format!("/{}", p.location)}),
        ];
        if let Some(source) = &p.source {
            properties.push(json!({"name": "vouch:source-package", "value": source}));
        }
        c.insert("properties".into(), json!(properties));
        if !files.is_empty() {
            c.insert("components".into(), json!(files));
        }
        components.push(Value::Object(c));
    }
    components.extend(loose);

    let mut dependencies = Vec::new();
    let mut listed = HashSet::new();
    for (p, bom_ref) in inv.packages.iter().zip(&refs) {
        if !listed.insert(bom_ref.as_str()) {
            continue;
        }
        let depends_on: Vec<&str> = p
            .depends_on
            .iter()
            .filter_map(|&d| refs.get(d).map(String::as_str))
            .collect();
        dependencies.push(json!({"ref": bom_ref, "dependsOn": depends_on}));
    }

    Ok(json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{}", meta.uuid),
        "version": 1,
        "metadata": metadata,
        "components": components,
        "dependencies": dependencies,
    }))
}

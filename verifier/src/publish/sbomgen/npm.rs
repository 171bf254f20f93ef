//! npm packages: `node_modules/<name>/package.json` and `node_modules/@scope/<name>/package.json`
//! anywhere in the tree. `license` as a string (an SPDX expression) or the legacy `{type}` object
//! or `licenses` array; `author` as a string or `{name, email}`; `dependencies` (and
//! `optionalDependencies`) resolved the way Node does, through the nearest `node_modules`.

use std::collections::HashMap;

use serde_json::Value;

use super::licenses::{self, Dialect};
use super::package::{purl, Ecosystem, Package, Supplier};
use super::rootfs::{join, split_last, wanted, Tree};

struct Found {
    package: Package,
    dir: String,
    requires: Vec<String>,
}

/// The npm packages of the tree, sorted by name, version and location.
pub fn read(tree: &Tree) -> Vec<Package> {
    let mut found: Vec<Found> = tree
        .kept()
        .filter(|(path, _)| path.ends_with("/package.json") && wanted(path))
        .filter_map(|(path, bytes)| package(path, bytes))
        .collect();
    found.sort_by(|a, b| {
        (&a.package.name, &a.package.version, &a.package.location).cmp(&(
            &b.package.name,
            &b.package.version,
            &b.package.location,
        ))
    });
    let by_dir: HashMap<&str, usize> = found
        .iter()
        .enumerate()
        .map(|(i, f)| (f.dir.as_str(), i))
        .collect();
    let resolved: Vec<Vec<usize>> = found
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut deps: Vec<usize> = f
                .requires
                .iter()
                .filter_map(|dep| {
                    let mut base = f.dir.as_str();
                    loop {
                        let candidate = join(base, &format!("node_modules/{dep}"));
                        if let Some(&j) = by_dir.get(candidate.as_str()) {
                            return Some(j);
                        }
                        if base.is_empty() {
                            return None;
                        }
                        base = split_last(base).0;
                    }
                })
                .filter(|&j| j != i)
                .collect();
            deps.sort_unstable();
            deps.dedup();
            deps
        })
        .collect();
    found
        .into_iter()
        .zip(resolved)
        .map(|(mut f, deps)| {
            f.package.depends_on = deps;
            f.package
        })
        .collect()
}

fn package(path: &str, bytes: &[u8]) -> Option<Found> {
    let json: Value = serde_json::from_slice(bytes).ok()?;
    let name = json.get("name")?.as_str()?.trim();
    let version = json.get("version")?.as_str()?.trim();
    if name.is_empty() || version.is_empty() || name.len() > 214 {
        return None;
    }
    let (namespace, short) = match name.strip_prefix('@') {
        Some(scoped) => {
            let (scope, short) = scoped.split_once('/')?;
            (Some(format!("@{scope}")), short)
        }
        None => (None, name),
    };
    let license = match (json.get("license"), json.get("licenses")) {
        (Some(l), _) => license_value(l),
        (None, Some(Value::Array(list))) => {
            licenses::all_of(list.iter().filter_map(license_value).collect())
        }
        _ => None,
    };
    let supplier = match json.get("author") {
        Some(Value::String(s)) => Supplier::clean(s),
        Some(Value::Object(o)) => o
            .get("name")
            .or_else(|| o.get("email"))
            .and_then(Value::as_str)
            .and_then(Supplier::clean),
        _ => None,
    }
    .map(Supplier::Person);
    let mut requires: Vec<String> = ["dependencies", "optionalDependencies"]
        .iter()
        .filter_map(|k| json.get(*k)?.as_object())
        .flat_map(|deps| deps.keys().cloned())
        .filter(|d| !d.contains("..") && d.len() <= 214)
        .collect();
    requires.sort();
    requires.dedup();
    let dir = split_last(path).0.to_owned();
    Some(Found {
        package: Package {
            ecosystem: Ecosystem::Npm,
            name: name.to_owned(),
            version: version.to_owned(),
            arch: None,
            purl: purl("npm", namespace.as_deref(), short, version, None),
            supplier,
            license,
            source: None,
            location: path.to_owned(),
            files: Vec::new(),
            depends_on: Vec::new(),
        },
        dir,
        requires,
    })
}

fn license_value(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.as_str(),
        Value::Object(o) => o.get("type")?.as_str()?,
        _ => return None,
    };
    licenses::expression(text, Dialect::Spdx)
}

//! Python distributions: `<site>/*.dist-info/METADATA` (files from `RECORD`) and
//! `<site>/*.egg-info/PKG-INFO` or a `<site>/*.egg-info` file, where `<site>` is any
//! `site-packages` or `dist-packages` directory. Licenses from `License-Expression` (PEP 639),
//! else `License`, else the `License ::` classifiers.

use std::collections::HashMap;

use super::dpkg::owned_file;
use super::licenses::{self, Dialect};
use super::package::{field, paragraphs, purl, Ecosystem, Package, Supplier};
use super::rootfs::{join, split_last, Tree};

/// PEP 503: lower case, runs of `-`, `_` and `.` as one `-`.
pub fn normalise_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
            continue;
        }
        if sep && !out.is_empty() {
            out.push('-');
        }
        sep = false;
        out.extend(c.to_lowercase());
    }
    out
}

struct Found {
    package: Package,
    site: String,
    requires: Vec<String>,
}

/// The Python distributions of the tree, sorted by normalised name, version and location.
pub fn read(tree: &Tree) -> Vec<Package> {
    let mut found: Vec<Found> = Vec::new();
    for (path, bytes) in tree.kept() {
        let (dir, name) = split_last(path);
        let (metadata_dir, record) = if name == "METADATA" && dir.ends_with(".dist-info") {
            (dir, tree.read(&join(dir, "RECORD")))
        } else if (name == "PKG-INFO" && dir.ends_with(".egg-info")) || name.ends_with(".egg-info")
        {
            (if name == "PKG-INFO" { dir } else { path }, None)
        } else {
            continue;
        };
        let site = split_last(metadata_dir).0;
        if let Some(f) = distribution(tree, bytes, record, site, metadata_dir) {
            found.push(f);
        }
    }
    found.sort_by(|a, b| {
        (&a.package.name, &a.package.version, &a.package.location).cmp(&(
            &b.package.name,
            &b.package.version,
            &b.package.location,
        ))
    });

    let mut by_site: HashMap<(&str, &str), usize> = HashMap::new();
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for (i, f) in found.iter().enumerate() {
        by_site
            .entry((f.site.as_str(), f.package.name.as_str()))
            .or_insert(i);
        by_name.entry(f.package.name.as_str()).or_insert(i);
    }
    let resolved: Vec<Vec<usize>> = found
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut deps: Vec<usize> = f
                .requires
                .iter()
                .filter_map(|r| {
                    by_site
                        .get(&(f.site.as_str(), r.as_str()))
                        .or_else(|| by_name.get(r.as_str()))
                        .copied()
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

fn distribution(
    tree: &Tree,
    metadata: &[u8],
    record: Option<&[u8]>,
    site: &str,
    location: &str,
) -> Option<Found> {
    let text = String::from_utf8_lossy(metadata);
    // The headers end at the first blank line; the description follows.
    let headers = paragraphs(&text).into_iter().next()?;
    let raw_name = field(&headers, "Name")?;
    let version = field(&headers, "Version")?.trim().to_owned();
    let name = normalise_name(raw_name);
    if name.is_empty() || version.is_empty() {
        return None;
    }
    let all = |key: &'static str| {
        headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    };
    let license = license(
        field(&headers, "License-Expression"),
        field(&headers, "License"),
        all("Classifier"),
    );
    let supplier = ["Author", "Author-email", "Maintainer", "Maintainer-email"]
        .iter()
        .find_map(|k| field(&headers, k))
        .and_then(Supplier::clean)
        .filter(|s| !s.eq_ignore_ascii_case("UNKNOWN"))
        .map(Supplier::Person);
    let requires = all("Requires-Dist")
        .filter_map(|r| {
            let (spec, marker) = r.split_once(';').unwrap_or((r, ""));
            if marker.contains("extra") {
                return None;
            }
            let end = spec
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
                .unwrap_or(spec.len());
            let n = normalise_name(&spec[..end]);
            (!n.is_empty()).then_some(n)
        })
        .collect();
    let mut files: Vec<String> = record
        .map(|r| {
            String::from_utf8_lossy(r)
                .lines()
                .filter_map(record_path)
                .filter_map(|p| owned_file(tree, &join(site, &p)))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files.dedup();
    Some(Found {
        package: Package {
            ecosystem: Ecosystem::Python,
            purl: purl("pypi", None, &name, &version, None),
            name,
            version,
            arch: None,
            supplier,
            license,
            source: None,
            location: location.to_owned(),
            files,
            depends_on: Vec::new(),
        },
        site: site.to_owned(),
        requires,
    })
}

fn license<'a>(
    expression: Option<&str>,
    text: Option<&str>,
    classifiers: impl Iterator<Item = &'a str>,
) -> Option<String> {
    if let Some(e) = expression.and_then(|e| licenses::expression(e, Dialect::Spdx)) {
        return Some(e);
    }
    // `License` is free text, often the whole license: only a short one-liner is a name.
    let from_text = text
        .filter(|t| !t.contains('\n') && t.len() <= 100)
        .and_then(|t| licenses::expression(t, Dialect::Debian));
    if let Some(t) = from_text.as_ref().filter(|t| !t.contains("LicenseRef-")) {
        return Some(t.clone());
    }
    licenses::all_of(classifiers.filter_map(licenses::classifier).collect()).or(from_text)
}

/// The path of a `RECORD` line (CSV: `path,hash,size`, the path quoted when it has a comma).
fn record_path(line: &str) -> Option<String> {
    if let Some(rest) = line.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    out.push('"');
                } else {
                    return Some(out);
                }
            } else {
                out.push(c);
            }
        }
        None
    } else {
        let path = line.split(',').next()?.trim();
        (!path.is_empty()).then(|| path.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_per_pep_503() {
        assert_eq!(
            normalise_name("Django_REST.framework"),
            "django-rest-framework"
        );
        assert_eq!(normalise_name("zope..interface"), "zope-interface");
    }

    #[test]
    fn record_paths_handle_quotes() {
        assert_eq!(record_path("a/b.py,sha256=x,12").as_deref(), Some("a/b.py"));
        assert_eq!(
            record_path("\"a,\"\"b\"\".py\",sha256=x,1").as_deref(),
            Some("a,\"b\".py")
        );
        assert_eq!(record_path(""), None);
    }

    #[test]
    fn license_prefers_expression_then_name_then_classifiers() {
        let c = ["License :: OSI Approved :: MIT License"];
        assert_eq!(
            license(Some("Apache-2.0 OR MIT"), Some("BSD"), c.into_iter()).as_deref(),
            Some("Apache-2.0 OR MIT")
        );
        assert_eq!(
            license(None, Some("Apache 2.0"), c.into_iter()).as_deref(),
            Some("Apache-2.0")
        );
        assert_eq!(
            license(None, Some("BSD"), c.into_iter()).as_deref(),
            Some("MIT")
        );
        assert_eq!(
            license(None, Some("BSD"), std::iter::empty()).as_deref(),
            Some("LicenseRef-BSD")
        );
        assert_eq!(license(None, Some("line\nline"), std::iter::empty()), None);
    }
}

//! Alpine packages: `lib/apk/db/installed` (or `usr/lib/apk/db/installed` on merged-/usr
//! systems): `P:` name, `V:` version, `A:` arch, `L:` license, `m:` maintainer, `o:` origin,
//! `D:` dependencies (resolved through names and `p:` provides), `F:`/`R:` files.

use std::collections::HashMap;

use super::dpkg::owned_file;
use super::licenses::{self, Dialect};
use super::package::{purl, Ecosystem, Package, Supplier};
use super::rootfs::{join, Tree};
use super::Distro;

#[derive(Default)]
struct Record {
    name: String,
    version: String,
    arch: Option<String>,
    license: Option<String>,
    maintainer: Option<String>,
    origin: Option<String>,
    depends: Vec<String>,
    provides: Vec<String>,
    files: Vec<String>,
}

/// The installed Alpine packages of the tree, sorted by name and version.
pub fn read(tree: &Tree, distro: &Distro) -> Vec<Package> {
    let (location, bytes) = match ["lib/apk/db/installed", "usr/lib/apk/db/installed"]
        .iter()
        .find_map(|p| Some((tree.resolve(p, true)?, tree.read(p)?)))
    {
        Some(found) => found,
        None => return Vec::new(),
    };
    let text = String::from_utf8_lossy(bytes);
    let mut records = Vec::new();
    let mut current = Record::default();
    let mut dir = String::new();
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            let done = std::mem::take(&mut current);
            if !done.name.is_empty() && !done.version.is_empty() {
                records.push(done);
            }
            dir.clear();
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "P" => current.name = value.to_owned(),
            "V" => current.version = value.to_owned(),
            "A" => current.arch = Some(value.to_owned()),
            "L" => current.license = Some(value.to_owned()),
            "m" => current.maintainer = Some(value.to_owned()),
            "o" => current.origin = Some(value.to_owned()),
            "D" => current.depends = names(value),
            "p" => current.provides = names(value),
            "F" => dir = value.to_owned(),
            "R" => current.files.push(join(&dir, value)),
            _ => {}
        }
    }
    records.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));

    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        by_name.entry(r.name.as_str()).or_insert(i);
    }
    for (i, r) in records.iter().enumerate() {
        for p in &r.provides {
            by_name.entry(p.as_str()).or_insert(i);
        }
    }
    let namespace = distro.id.as_deref().unwrap_or("alpine");
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut depends_on: Vec<usize> = r
                .depends
                .iter()
                .filter_map(|d| by_name.get(d.as_str()).copied())
                .filter(|&j| j != i)
                .collect();
            depends_on.sort_unstable();
            depends_on.dedup();
            let mut files: Vec<String> =
                r.files.iter().filter_map(|f| owned_file(tree, f)).collect();
            files.sort();
            files.dedup();
            Package {
                ecosystem: Ecosystem::Apk,
                name: r.name.clone(),
                version: r.version.clone(),
                arch: r.arch.clone(),
                purl: purl(
                    "apk",
                    Some(namespace),
                    &r.name,
                    &r.version,
                    r.arch.as_deref(),
                ),
                supplier: r
                    .maintainer
                    .as_deref()
                    .and_then(Supplier::clean)
                    .map(Supplier::Organization),
                license: r
                    .license
                    .as_deref()
                    .and_then(|l| licenses::expression(l, Dialect::Spdx)),
                source: r.origin.clone(),
                location: location.clone(),
                files,
                depends_on,
            }
        })
        .collect()
}

/// `so:libc.musl-x86_64.so.1 cmd:foo=1.2 bar>=2 !conflict` → names without versions, conflicts
/// dropped.
fn names(list: &str) -> Vec<String> {
    list.split_whitespace()
        .filter(|t| !t.starts_with('!'))
        .filter_map(|t| {
            let name = t.split(['<', '>', '=', '~']).next()?;
            (!name.is_empty()).then(|| name.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::names;

    #[test]
    fn dependency_names_drop_versions_and_conflicts() {
        assert_eq!(
            names("so:libc.musl-x86_64.so.1 busybox>=1.36 !foo cmd:sh=1"),
            vec!["so:libc.musl-x86_64.so.1", "busybox", "cmd:sh"]
        );
    }
}

//! Debian packages: `var/lib/dpkg/status` (installed stanzas only) and distroless-style
//! `var/lib/dpkg/status.d/*`, file lists from `var/lib/dpkg/info/<pkg>[:<arch>].list` (or a
//! `status.d/<name>.md5sums`), licenses from machine-readable (DEP-5) copyright files.

use std::collections::{BTreeMap, HashMap};

use super::licenses::{self, Dialect};
use super::package::{field, paragraphs, purl, Ecosystem, Package, Supplier};
use super::rootfs::{join, split_last, Kind, Tree};
use super::Distro;

struct Stanza {
    name: String,
    version: String,
    arch: Option<String>,
    maintainer: Option<String>,
    source: Option<String>,
    depends: Vec<Vec<String>>,
    provides: Vec<String>,
    /// Where it was read from.
    location: String,
    /// `status.d/<name>.md5sums`, for distroless images that have no `info/*.list`.
    md5sums: Option<String>,
}

/// The installed Debian packages of the tree, sorted by name and architecture.
pub fn read(tree: &Tree, distro: &Distro) -> Vec<Package> {
    let mut stanzas: BTreeMap<(String, String), Stanza> = BTreeMap::new();
    let mut sources: Vec<(String, Option<String>)> = Vec::new();
    if let Some(real) = tree.resolve("var/lib/dpkg/status", true) {
        sources.push((real, None));
    }
    if let Some(dir) = tree.resolve("var/lib/dpkg/status.d", true) {
        for (path, _) in tree.kept_in(&dir) {
            if !path.ends_with(".md5sums") {
                sources.push((path.to_owned(), Some(format!("{path}.md5sums"))));
            }
        }
    }
    for (path, md5sums) in sources {
        let Some(bytes) = tree.read(&path) else {
            continue;
        };
        let text = String::from_utf8_lossy(bytes);
        // status.d stanzas (distroless) carry no Status field: they are installed by construction.
        let needs_status = md5sums.is_none();
        for p in paragraphs(&text) {
            if let Some(s) = stanza(&p, &path, needs_status, md5sums.clone()) {
                let key = (s.name.clone(), s.arch.clone().unwrap_or_default());
                stanzas.entry(key).or_insert(s);
            }
        }
    }
    let stanzas: Vec<Stanza> = stanzas.into_values().collect();
    let namespace = distro.id.as_deref().unwrap_or("debian");

    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for (i, s) in stanzas.iter().enumerate() {
        by_name.entry(s.name.as_str()).or_insert(i);
    }
    let mut by_provides: HashMap<&str, usize> = HashMap::new();
    for (i, s) in stanzas.iter().enumerate() {
        for p in &s.provides {
            by_provides.entry(p.as_str()).or_insert(i);
        }
    }

    stanzas
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut depends_on: Vec<usize> = s
                .depends
                .iter()
                .filter_map(|alternatives| {
                    alternatives.iter().find_map(|name| {
                        by_name
                            .get(name.as_str())
                            .or_else(|| by_provides.get(name.as_str()))
                            .copied()
                    })
                })
                .filter(|&j| j != i)
                .collect();
            depends_on.sort_unstable();
            depends_on.dedup();
            Package {
                ecosystem: Ecosystem::Dpkg,
                name: s.name.clone(),
                version: s.version.clone(),
                arch: s.arch.clone(),
                purl: purl(
                    "deb",
                    Some(namespace),
                    &s.name,
                    &s.version,
                    s.arch.as_deref(),
                ),
                supplier: s
                    .maintainer
                    .as_deref()
                    .and_then(Supplier::clean)
                    .map(Supplier::Organization),
                license: license(tree, &s.name),
                source: s.source.clone(),
                location: s.location.clone(),
                files: files(tree, s),
                depends_on,
            }
        })
        .collect()
}

fn stanza(
    p: &[(String, String)],
    location: &str,
    needs_status: bool,
    md5sums: Option<String>,
) -> Option<Stanza> {
    let name = field(p, "Package")?.to_owned();
    let version = field(p, "Version")?.to_owned();
    match field(p, "Status") {
        // want, error flag, state: `install ok installed`, `hold ok installed`.
        Some(status) => {
            let words: Vec<&str> = status.split_whitespace().collect();
            if words.len() != 3 || words[1] != "ok" || words[2] != "installed" {
                return None;
            }
        }
        None if needs_status => return None,
        None => {}
    }
    let mut depends = Vec::new();
    for key in ["Pre-Depends", "Depends"] {
        if let Some(list) = field(p, key) {
            depends.extend(relation_list(list));
        }
    }
    let provides = field(p, "Provides")
        .map(|l| relation_list(l).into_iter().flatten().collect())
        .unwrap_or_default();
    Some(Stanza {
        name,
        version,
        arch: field(p, "Architecture").map(str::to_owned),
        maintainer: field(p, "Maintainer").map(str::to_owned),
        source: field(p, "Source")
            .and_then(|s| s.split_whitespace().next())
            .map(str::to_owned),
        depends,
        provides,
        location: location.to_owned(),
        md5sums,
    })
}

/// `a (>= 1) | b, c:any` → `[[a, b], [c]]`.
fn relation_list(list: &str) -> Vec<Vec<String>> {
    list.split(',')
        .map(|group| {
            group
                .split('|')
                .filter_map(|alt| {
                    let name = alt.split_whitespace().next()?;
                    let name = name.split(['(', '[', '<']).next()?;
                    let name = name.split(':').next()?;
                    (!name.is_empty()).then(|| name.to_owned())
                })
                .collect::<Vec<_>>()
        })
        .filter(|g| !g.is_empty())
        .collect()
}

/// The regular files a package's file list names, resolved inside the tree (on merged-/usr
/// systems `/bin/ls` is the tree's `usr/bin/ls`).
fn files(tree: &Tree, s: &Stanza) -> Vec<String> {
    let lists = [
        s.arch
            .as_ref()
            .map(|a| format!("var/lib/dpkg/info/{}:{a}.list", s.name)),
        Some(format!("var/lib/dpkg/info/{}.list", s.name)),
    ];
    let (text, relative) = match lists
        .iter()
        .flatten()
        .find_map(|p| tree.read(p))
        .map(|b| (b, false))
        .or_else(|| {
            s.md5sums
                .as_deref()
                .and_then(|p| tree.read(p))
                .map(|b| (b, true))
        }) {
        Some((bytes, relative)) => (String::from_utf8_lossy(bytes), relative),
        None => return Vec::new(),
    };
    let mut out: Vec<String> = text
        .lines()
        .filter_map(|line| {
            // md5sums lines are `<md5>  <path relative to />`.
            let path = if relative {
                line.split_once("  ").map(|(_, p)| p)?
            } else {
                line
            };
            owned_file(tree, path)
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A database's path as the tree's regular file it names, if it is one: the parent resolved
/// inside the tree, the last component not followed (a package that installs a symlink owns
/// the link, not its target).
pub(super) fn owned_file(tree: &Tree, path: &str) -> Option<String> {
    let path = tree.normalise(path).ok()?;
    let (dir, name) = split_last(&path);
    if name.is_empty() {
        return None;
    }
    let real = join(&tree.resolve(dir, true)?, name);
    matches!(tree.get(&real)?.kind, Kind::File { .. }).then_some(real)
}

/// The license of a package from its DEP-5 copyright file; `None` when there is none, or it is
/// not machine-readable.
fn license(tree: &Tree, name: &str) -> Option<String> {
    let bytes = tree.read(&format!("usr/share/doc/{name}/copyright"))?;
    let text = String::from_utf8_lossy(bytes);
    let paragraphs = paragraphs(&text);
    let format = field(paragraphs.first()?, "Format")?.to_ascii_lowercase();
    if !(format.contains("copyright-format") || format.contains("dep5")) {
        return None;
    }
    // Only `Files` paragraphs say a license applies; stand-alone `License` paragraphs hold texts.
    let found: Vec<String> = paragraphs
        .iter()
        .filter(|p| field(p, "Files").is_some())
        .flat_map(|p| p.iter())
        .filter(|(k, _)| k.eq_ignore_ascii_case("License"))
        .filter_map(|(_, v)| v.lines().next())
        .filter_map(|short| licenses::expression(short, Dialect::Debian))
        .collect();
    licenses::all_of(found)
}

#[cfg(test)]
mod tests {
    use super::relation_list;

    #[test]
    fn relations_keep_alternatives_and_drop_versions_and_arches() {
        assert_eq!(
            relation_list("libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, perl:any"),
            vec![
                vec!["libc6".to_owned()],
                vec!["debconf".to_owned(), "debconf-2.0".to_owned()],
                vec!["perl".to_owned()],
            ]
        );
    }
}

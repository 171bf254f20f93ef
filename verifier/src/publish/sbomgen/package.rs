//! What the package database readers find, whatever the ecosystem, and package URLs.

use std::fmt;

/// The package database a package was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ecosystem {
    Dpkg,
    Apk,
    Python,
    Npm,
}

impl Ecosystem {
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Dpkg => "dpkg",
            Ecosystem::Apk => "apk",
            Ecosystem::Python => "python",
            Ecosystem::Npm => "npm",
        }
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who supplies a package: a distribution's maintainer (an organisation, often a team) or a
/// Python or npm author (a person, as far as the metadata says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Supplier {
    Organization(String),
    Person(String),
}

impl Supplier {
    pub fn name(&self) -> &str {
        match self {
            Supplier::Organization(n) | Supplier::Person(n) => n,
        }
    }

    /// SPDX's `Organization: X` / `Person: Y`.
    pub fn spdx(&self) -> String {
        match self {
            Supplier::Organization(n) => format!("Organization: {n}"),
            Supplier::Person(n) => format!("Person: {n}"),
        }
    }

    /// A single line, `Name (email)` for `Name <email>`, bounded.
    pub fn clean(text: &str) -> Option<String> {
        let line: String = text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(256)
            .collect();
        let line = match (line.find('<'), line.rfind('>')) {
            (Some(open), Some(close)) if open < close => {
                let name = line[..open].trim();
                let email = line[open + 1..close].trim();
                if name.is_empty() {
                    email.to_owned()
                } else {
                    format!("{name} ({email})")
                }
            }
            _ => line,
        };
        let line = line.trim().trim_matches('"').trim().to_owned();
        (!line.is_empty()).then_some(line)
    }
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    pub arch: Option<String>,
    pub purl: String,
    pub supplier: Option<Supplier>,
    /// An SPDX expression; `None` is NOASSERTION.
    pub license: Option<String>,
    /// The source package it was built from (dpkg `Source`, apk `o:`), when it names one.
    pub source: Option<String>,
    /// Where the database entry is (a tree path), which tells apart two copies of one package.
    pub location: String,
    /// Files the database says the package installed: tree paths of regular files.
    pub files: Vec<String>,
    /// Indexes (into the final package list) of the packages it depends on.
    pub depends_on: Vec<usize>,
}

/// Percent-encodes a purl component: everything but `A-Z a-z 0-9 . - _ ~`.
pub fn purl_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `pkg:<type>/<namespace>/<name>@<version>?arch=<arch>`, each part encoded.
pub fn purl(
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    version: &str,
    arch: Option<&str>,
) -> String {
    let mut out = format!("pkg:{kind}/");
    if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
        out.push_str(&purl_encode(ns));
        out.push('/');
    }
    out.push_str(&purl_encode(name));
    if !version.is_empty() {
        out.push('@');
        out.push_str(&purl_encode(version));
    }
    if let Some(arch) = arch.filter(|a| !a.is_empty()) {
        out.push_str("?arch=");
        out.push_str(&purl_encode(arch));
    }
    out
}

/// `Key: value` paragraphs (dpkg status, DEP-5, Python's email-style metadata): continuation lines
/// (starting with a space or tab) are joined to their field with a newline. Keys keep their case.
pub fn paragraphs(text: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some((_, value)) = current.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            current.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The first value of `key` (case-insensitive) in a paragraph.
pub fn field<'a>(paragraph: &'a [(String, String)], key: &str) -> Option<&'a str> {
    paragraph
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_encode_epochs_scopes_and_pluses() {
        assert_eq!(
            purl(
                "deb",
                Some("debian"),
                "libc6",
                "2.36-9+deb12u4",
                Some("amd64")
            ),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64"
        );
        assert_eq!(
            purl("deb", Some("debian"), "perl", "1:5.36.0-7", None),
            "pkg:deb/debian/perl@1%3A5.36.0-7"
        );
        assert_eq!(
            purl("npm", Some("@types"), "node", "20.1.0", None),
            "pkg:npm/%40types/node@20.1.0"
        );
    }

    #[test]
    fn suppliers_are_one_line() {
        assert_eq!(
            Supplier::clean("GNU Libc Maintainers <debian-glibc@lists.debian.org>").as_deref(),
            Some("GNU Libc Maintainers (debian-glibc@lists.debian.org)")
        );
        assert_eq!(Supplier::clean("<a@b>").as_deref(), Some("a@b"));
        assert_eq!(Supplier::clean("  \n "), None);
        assert_eq!(Supplier::clean("A\nB").as_deref(), Some("A B"));
    }

    #[test]
    fn paragraphs_join_continuations() {
        let p = paragraphs("A: 1\nB: x\n y\n\n\nA: 2\n");
        assert_eq!(p.len(), 2);
        assert_eq!(field(&p[0], "b"), Some("x\ny"));
        assert_eq!(field(&p[1], "A"), Some("2"));
        assert_eq!(field(&p[1], "B"), None);
    }
}

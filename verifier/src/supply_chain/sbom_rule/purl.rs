//! Package URLs (<https://github.com/package-url/purl-spec>) as far as policy compares them, and
//! the `deny_packages` matchers written as purls with an optional version constraint.
//!
//! Purls come from SBOMs: parsing is lenient (a literal `@` in an npm scope, upper-case types) but
//! anything unreadable is simply not a purl, and matches nothing.

use std::cmp::Ordering;
use std::fmt;

use serde::{Serialize, Serializer};

use super::version::Scheme;

/// The parts of a purl that identify a package version; qualifiers and subpath are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purl {
    /// Lower case.
    pub purl_type: String,
    /// Percent-decoded, normalised per type (see [`normalise`]); `None` when absent.
    pub namespace: Option<String>,
    pub name: String,
    /// Percent-decoded, as written.
    pub version: Option<String>,
}

impl Purl {
    /// Parses `pkg:type/namespace/name@version?qualifiers#subpath`.
    pub fn parse(text: &str) -> Result<Purl, String> {
        let text = text.trim();
        let rest = match text.get(..4) {
            Some(scheme) if scheme.eq_ignore_ascii_case("pkg:") => &text[4..],
            _ => return Err("a purl starts with \"pkg:\"".into()),
        };
        let rest = rest.trim_start_matches('/');
        let rest = rest.split_once('#').map_or(rest, |(head, _)| head);
        let (rest, qualifiers) = rest.split_once('?').unwrap_or((rest, ""));
        let (path, version) = match rest.rsplit_once('@') {
            // An `@` before the last `/` belongs to a namespace (`pkg:npm/@scope/name`).
            Some((path, version)) if !version.contains('/') => (path, Some(version)),
            _ => (rest, None),
        };
        let Some((purl_type, path)) = path.split_once('/') else {
            return Err("a purl needs a type and a name (pkg:type/name)".into());
        };
        let purl_type = purl_type.to_ascii_lowercase();
        if purl_type.is_empty()
            || !purl_type
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'-'))
        {
            return Err(format!("invalid purl type {purl_type:?}"));
        }
        let segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect();
        let Some((name, namespace)) = segments.split_last() else {
            return Err("a purl needs a name".into());
        };
        let namespace = (!namespace.is_empty()).then(|| namespace.join("/"));
        let (namespace, name) = normalise(&purl_type, namespace, name);
        let mut version = version.map(percent_decode).filter(|v| !v.trim().is_empty());
        // rpm purls carry the epoch as a qualifier (`?epoch=1`); it orders before the version.
        if purl_type == "rpm" {
            let epoch = qualifiers
                .split('&')
                .find_map(|q| q.strip_prefix("epoch="))
                .filter(|e| !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit()));
            if let (Some(epoch), Some(v)) = (epoch, &version) {
                if !v.contains(':') {
                    version = Some(format!("{epoch}:{v}"));
                }
            }
        }
        Ok(Purl {
            purl_type,
            namespace,
            name,
            version,
        })
    }

    /// Same package (type, namespace, name), whatever the version.
    pub fn same_package(&self, other: &Purl) -> bool {
        self.purl_type == other.purl_type
            && self.namespace == other.namespace
            && self.name == other.name
    }

    pub fn scheme(&self) -> Scheme {
        Scheme::of_purl_type(&self.purl_type)
    }
}

impl fmt::Display for Purl {
    /// `pkg:type/namespace/name@version`, decoded, without qualifiers: for messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pkg:{}/", self.purl_type)?;
        if let Some(ns) = &self.namespace {
            write!(f, "{ns}/")?;
        }
        f.write_str(&self.name)?;
        if let Some(v) = &self.version {
            write!(f, "@{v}")?;
        }
        Ok(())
    }
}

/// Case and spelling rules of the purl spec's type definitions: these types' names (and
/// namespaces) are case-insensitive, pypi names also spell `_` as `-`; rpm namespaces (vendors)
/// are case-insensitive, rpm names are not. Other types compare exactly.
fn normalise(purl_type: &str, namespace: Option<String>, name: &str) -> (Option<String>, String) {
    let lower = |s: &str| s.to_ascii_lowercase();
    match purl_type {
        "alpine" | "alpm" | "apk" | "bitbucket" | "composer" | "deb" | "github" | "golang"
        | "hex" | "npm" | "luarocks" | "qpkg" => (namespace.as_deref().map(lower), lower(name)),
        "pypi" => (
            namespace.as_deref().map(lower),
            lower(name).replace('_', "-"),
        ),
        "rpm" => (namespace.as_deref().map(lower), name.to_string()),
        _ => (namespace, name.to_string()),
    }
}

/// Decodes `%XX` escapes; invalid escapes and invalid UTF-8 are kept as written (replacement
/// characters), never an error.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) => match (hex(h), hex(l)) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            (b, _, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One comparison of a version constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Op {
    fn holds(self, order: Ordering) -> bool {
        match self {
            Op::Lt => order == Ordering::Less,
            Op::Le => order != Ordering::Greater,
            Op::Gt => order == Ordering::Greater,
            Op::Ge => order != Ordering::Less,
            Op::Eq => order == Ordering::Equal,
        }
    }
}

/// One entry of `deny_packages`: a purl without qualifiers; its version, when given, is an exact
/// version (`@1.2.3`), a comparison (`@<3.0.7`, `@<=`, `@>`, `@>=`, `@=`) or a comma-separated
/// conjunction (`@>=1.0,<2.0`), compared by the package type's rules ([`Scheme`]). An rpm epoch
/// is written into the version (`@<1:1.0.2k-19.el7`); a package purl's `epoch` qualifier counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageMatcher {
    written: String,
    package: Purl,
    /// Empty: every version.
    constraints: Vec<(Op, String)>,
}

impl PackageMatcher {
    pub fn new(written: &str) -> Result<PackageMatcher, String> {
        let fail = |reason: &str| Err(format!("invalid package matcher {written:?}: {reason}"));
        if written.contains('?') || written.contains('#') {
            return fail("a matcher names a package (and versions), without qualifiers or subpath");
        }
        if written.trim_end().ends_with('@') {
            return fail("empty version after '@'");
        }
        let mut package = match Purl::parse(written) {
            Ok(p) => p,
            Err(e) => return fail(&e),
        };
        let mut constraints = Vec::new();
        if let Some(spec) = package.version.take() {
            for part in spec.split(',') {
                let part = part.trim();
                let (op, version) = [
                    ("<=", Op::Le),
                    (">=", Op::Ge),
                    ("<", Op::Lt),
                    (">", Op::Gt),
                    ("=", Op::Eq),
                ]
                .into_iter()
                .find_map(|(prefix, op)| part.strip_prefix(prefix).map(|v| (op, v.trim())))
                .unwrap_or((Op::Eq, part));
                if version.is_empty() {
                    return fail(&format!("empty version in {part:?}"));
                }
                if version.starts_with(['<', '>', '=']) {
                    return fail(&format!("unknown comparison in {part:?}"));
                }
                constraints.push((op, version.to_string()));
            }
        }
        Ok(PackageMatcher {
            written: written.to_string(),
            package,
            constraints,
        })
    }

    /// The matcher as the policy wrote it.
    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// Whether `purl` names the package and a version inside the constraint. A package without a
    /// version matches only a matcher without one.
    pub fn matches(&self, purl: &Purl) -> bool {
        if !self.package.same_package(purl) {
            return false;
        }
        if self.constraints.is_empty() {
            return true;
        }
        let Some(version) = &purl.version else {
            return false;
        };
        let scheme = purl.scheme();
        self.constraints
            .iter()
            .all(|(op, bound)| op.holds(scheme.compare(version, bound)))
    }
}

impl fmt::Display for PackageMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

impl Serialize for PackageMatcher {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purl(text: &str) -> Purl {
        match Purl::parse(text) {
            Ok(p) => p,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    fn matcher(text: &str) -> PackageMatcher {
        match PackageMatcher::new(text) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn purls_parse_into_type_namespace_name_and_version() {
        let p = purl("pkg:deb/debian/bash@5.0-4?distro=debian-10.2");
        assert_eq!(p.purl_type, "deb");
        assert_eq!(p.namespace.as_deref(), Some("debian"));
        assert_eq!(p.name, "bash");
        assert_eq!(p.version.as_deref(), Some("5.0-4"));
        assert_eq!(p.to_string(), "pkg:deb/debian/bash@5.0-4");

        let p = purl("pkg:npm/%40angular/core@16.0.0#dist/x.js");
        assert_eq!(p.namespace.as_deref(), Some("@angular"));
        assert_eq!(p.name, "core");
        let q = purl("pkg:npm/@angular/core@16.0.0");
        assert_eq!(p, q);

        let p = purl("pkg:oci/app@sha256%3A0f5e?arch=amd64");
        assert_eq!(p.version.as_deref(), Some("sha256:0f5e"));
        let p = purl("PKG:PyPI/Django_Rest@1.0");
        assert_eq!(
            (p.purl_type.as_str(), p.name.as_str()),
            ("pypi", "django-rest")
        );
        let p = purl("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1");
        assert_eq!(p.namespace.as_deref(), Some("org.apache.logging.log4j"));
        let p = purl("pkg:golang/github.com/aquasecurity/trivy");
        assert_eq!(p.namespace.as_deref(), Some("github.com/aquasecurity"));
        assert_eq!(p.version, None);
        let p = purl("pkg:rpm/centos/openssl-libs@1.0.2k-16.el7?arch=x86_64&epoch=1");
        assert_eq!(p.version.as_deref(), Some("1:1.0.2k-16.el7"));
        let p = purl("pkg:deb/debian/openssl@1%3A3.0.2-0ubuntu1.10");
        assert_eq!(p.version.as_deref(), Some("1:3.0.2-0ubuntu1.10"));

        for bad in [
            "",
            "npm/x",
            "pkg:",
            "pkg:npm",
            "pkg:npm/",
            "pkg:n p/x",
            "pkg:/x",
        ] {
            assert!(Purl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_matcher_without_version_matches_every_version_of_that_package_only() {
        let m = matcher("pkg:npm/event-stream");
        assert!(m.matches(&purl("pkg:npm/event-stream@3.3.6")));
        assert!(m.matches(&purl("pkg:npm/event-stream")));
        assert!(m.matches(&purl("pkg:npm/Event-Stream@1.0.0")));
        assert!(!m.matches(&purl("pkg:npm/event-stream2@3.3.6")));
        assert!(!m.matches(&purl("pkg:npm/evil/event-stream@3.3.6")));
        assert!(!m.matches(&purl("pkg:pypi/event-stream@3.3.6")));

        let m = matcher("pkg:deb/debian/openssl");
        assert!(m.matches(&purl("pkg:deb/debian/openssl@3.0.2?arch=amd64")));
        assert!(!m.matches(&purl("pkg:deb/ubuntu/openssl@3.0.2")));
        assert!(!m.matches(&purl("pkg:deb/openssl@3.0.2")));

        // pypi names: case and `_` do not matter; maven names are exact.
        assert!(matcher("pkg:pypi/PyYAML").matches(&purl("pkg:pypi/pyyaml@6.0")));
        assert!(
            matcher("pkg:pypi/typing_extensions").matches(&purl("pkg:pypi/typing-extensions@4"))
        );
        assert!(!matcher("pkg:maven/org.x/Foo").matches(&purl("pkg:maven/org.x/foo@1")));
    }

    #[test]
    fn version_constraints_compare_by_the_package_type() {
        let m = matcher("pkg:deb/debian/openssl@<3.0.7");
        assert!(m.matches(&purl("pkg:deb/debian/openssl@3.0.2-0ubuntu1.10")));
        assert!(m.matches(&purl("pkg:deb/debian/openssl@3.0.7~rc1")));
        assert!(!m.matches(&purl("pkg:deb/debian/openssl@3.0.7")));
        assert!(!m.matches(&purl("pkg:deb/debian/openssl@3.0.7-1")));
        assert!(!m.matches(&purl("pkg:deb/debian/openssl@1%3A1.0")));
        // No version to compare: a constrained matcher does not match.
        assert!(!m.matches(&purl("pkg:deb/debian/openssl")));

        let m = matcher("pkg:apk/alpine/openssl@>=3.0,<3.0.7-r1");
        assert!(m.matches(&purl("pkg:apk/alpine/openssl@3.0.7-r0")));
        assert!(m.matches(&purl("pkg:apk/alpine/openssl@3.0.7_rc1-r5")));
        assert!(!m.matches(&purl("pkg:apk/alpine/openssl@3.0.7-r1")));
        assert!(!m.matches(&purl("pkg:apk/alpine/openssl@1.1.1w-r1")));

        let m = matcher("pkg:rpm/redhat/openssl@<=1:3.0.7-16.el9_2");
        assert!(m.matches(&purl("pkg:rpm/redhat/openssl@1:3.0.7-16.el9_2")));
        assert!(!m.matches(&purl("pkg:rpm/redhat/openssl@1:3.0.7-18.el9_2")));
        assert!(m.matches(&purl("pkg:rpm/redhat/openssl@3.0.9-1")));

        let m = matcher("pkg:maven/org.apache.logging.log4j/log4j-core@>=2.0,<2.17.1");
        assert!(m.matches(&purl(
            "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"
        )));
        assert!(!m.matches(&purl(
            "pkg:maven/org.apache.logging.log4j/log4j-core@2.17.1"
        )));
        assert!(!m.matches(&purl(
            "pkg:maven/org.apache.logging.log4j/log4j-core@1.2.17"
        )));

        let exact = matcher("pkg:npm/event-stream@3.3.6");
        assert!(exact.matches(&purl("pkg:npm/event-stream@3.3.6")));
        assert!(!exact.matches(&purl("pkg:npm/event-stream@3.3.5")));
        assert!(matcher("pkg:npm/x@=1.0").matches(&purl("pkg:npm/x@1.0.0")));
        assert!(matcher("pkg:npm/x@>1.0").matches(&purl("pkg:npm/x@1.0.1")));
        assert!(!matcher("pkg:npm/x@>1.0").matches(&purl("pkg:npm/x@1.0")));
    }

    #[test]
    fn unusable_matchers_are_refused_with_the_reason() {
        for (bad, reason) in [
            ("npm/x", "starts with \"pkg:\""),
            ("pkg:npm", "type and a name"),
            ("pkg:npm/x@", "empty version"),
            ("pkg:npm/x@<", "empty version"),
            ("pkg:npm/x@>=1,", "empty version"),
            ("pkg:npm/x@<<1", "unknown comparison"),
            ("pkg:npm/x@1?arch=amd64", "without qualifiers"),
            ("pkg:npm/x#sub", "without qualifiers"),
        ] {
            match PackageMatcher::new(bad) {
                Ok(m) => panic!("accepted {bad}: {m:?}"),
                Err(e) => assert!(e.contains(reason), "{bad}: {e}"),
            }
        }
    }
}

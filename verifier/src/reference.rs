//! Image references, normalised the way docker and containerd do.
//!
//! `busybox` and `docker.io/library/busybox:latest` name the same repository; policy matches on the
//! repository, so every reference is reduced to its fully qualified form before anything compares it.

use std::fmt;

use crate::error::{Error, Result};

/// Docker Hub's canonical domain.
pub const DOCKER_HUB: &str = "docker.io";
/// The namespace Docker Hub gives single-name images (`busybox` is `library/busybox`).
const OFFICIAL_NAMESPACE: &str = "library";
/// Docker's limit for a whole repository name.
const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;

/// A parsed image reference: `repository[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Fully qualified repository, e.g. `docker.io/library/busybox`.
    pub repository: String,
    pub tag: Option<String>,
    /// `algorithm:hex`, e.g. `sha256:…`.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses and normalises `reference` (`busybox`, `ghcr.io/acme/x:v1`, `host:5000/a/b@sha256:…`).
    pub fn parse(reference: &str) -> Result<Reference> {
        let fail = |reason: &str| Error::Reference {
            reference: reference.to_string(),
            reason: reason.to_string(),
        };
        if reference.is_empty() {
            return Err(fail("empty reference"));
        }
        if reference
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(fail("contains whitespace or control characters"));
        }
        if is_image_id(reference) {
            return Err(fail("this is an image id, not a name"));
        }

        let (name_and_tag, digest) = match reference.split_once('@') {
            Some((rest, digest)) => {
                validate_digest(digest).map_err(|r| fail(&r))?;
                (rest, Some(digest.to_string()))
            }
            None => (reference, None),
        };
        // A tag is a `:` after the last `/`; an earlier `:` belongs to a registry port.
        let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                let tag = &name_and_tag[at + 1..];
                validate_tag(tag).map_err(|r| fail(&r))?;
                (&name_and_tag[..at], Some(tag.to_string()))
            }
            None => (name_and_tag, None),
        };

        let (domain, path) = split_domain(name);
        validate_domain(domain).map_err(|r| fail(&r))?;
        if path.is_empty() {
            return Err(fail("missing repository name"));
        }
        for component in path.split('/') {
            validate_path_component(component).map_err(|r| fail(&r))?;
        }
        if is_hex64(&path) {
            return Err(fail(
                "a repository name cannot be a 64-character hex string",
            ));
        }
        let repository = format!("{domain}/{path}");
        if repository.len() > NAME_MAX {
            return Err(fail("repository name longer than 255 characters"));
        }
        Ok(Reference {
            repository,
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// True when the first `/`-separated segment of `name` names a registry host rather than a path.
pub(crate) fn is_domain_segment(segment: &str) -> bool {
    segment.contains(['.', ':']) || segment == "localhost" || segment.starts_with('[')
}

/// Splits a name without tag or digest into `(domain, path)`, applying Docker Hub's defaults:
/// no domain means `docker.io`, `index.docker.io` is `docker.io`, and a single Docker Hub path component
/// lives under `library/`. Works on patterns too (it never looks inside the path components) with one
/// exception kept for patterns: a lone `**` under Docker Hub means all of Docker Hub, not `library/**`.
pub(crate) fn split_domain(name: &str) -> (&str, std::borrow::Cow<'_, str>) {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if is_domain_segment(first) => (first, rest),
        _ => (DOCKER_HUB, name),
    };
    let domain = if domain == "index.docker.io" {
        DOCKER_HUB
    } else {
        domain
    };
    if domain == DOCKER_HUB && !path.is_empty() && !path.contains('/') && path != "**" {
        (domain, format!("{OFFICIAL_NAMESPACE}/{path}").into())
    } else {
        (domain, path.into())
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `sha256:<64 hex>` or a bare 64-hex id: what `ctr`/CRI show as an image id.
pub fn is_image_id(s: &str) -> bool {
    is_hex64(s.strip_prefix("sha256:").unwrap_or(s))
}

fn validate_digest(digest: &str) -> std::result::Result<(), String> {
    let (algorithm, encoded) = digest
        .split_once(':')
        .ok_or_else(|| format!("digest {digest:?} is not of the form algorithm:hex"))?;
    let want = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(format!("unsupported digest algorithm {algorithm:?}")),
    };
    if encoded.len() != want
        || !encoded
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(format!(
            "digest {digest:?} must have {want} lower-case hex characters"
        ));
    }
    Ok(())
}

fn validate_tag(tag: &str) -> std::result::Result<(), String> {
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !first_ok
        || tag.len() > TAG_MAX
        || !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(format!(
            "invalid tag {tag:?} (letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-')"
        ));
    }
    Ok(())
}

fn validate_domain(domain: &str) -> std::result::Result<(), String> {
    let bad = || Err(format!("invalid registry host {domain:?}"));
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        // IPv6 literal: `[::1]:5000`.
        let Some((addr, after)) = rest.split_once(']') else {
            return bad();
        };
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return bad();
        }
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(port) => Some(port),
                None => return bad(),
            },
        };
        return match port {
            Some(p) if !is_port(p) => bad(),
            _ => Ok(()),
        };
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        }
    };
    if let Some(p) = port {
        if !is_port(p) {
            return bad();
        }
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.split('.').all(label_ok) {
        Ok(())
    } else {
        bad()
    }
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

/// One path component: lower-case alphanumerics joined by `.`, `_`, `__` or runs of `-`.
pub(crate) fn validate_path_component(component: &str) -> std::result::Result<(), String> {
    if component.is_empty() {
        return Err("empty path component (doubled or trailing '/')".to_string());
    }
    if component.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("repository path {component:?} must be lower-case"));
    }
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let ok_ends = alnum(bytes[0]) && alnum(bytes[bytes.len() - 1]);
    let mut ok = ok_ends;
    let mut i = 0;
    while ok && i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__` or one or more `-`.
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
    }
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid repository path component {component:?} (lower-case letters and digits separated by '.', '_', '__' or '-')"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn repo(s: &str) -> String {
        match Reference::parse(s) {
            Ok(r) => r.repository,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn err(s: &str) -> String {
        match Reference::parse(s) {
            Ok(r) => panic!("{s} parsed as {r:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn docker_hub_short_names_get_domain_and_library() {
        assert_eq!(repo("busybox"), "docker.io/library/busybox");
        assert_eq!(repo("busybox:1.36"), "docker.io/library/busybox");
        assert_eq!(repo("acme/app"), "docker.io/acme/app");
        assert_eq!(repo("docker.io/busybox"), "docker.io/library/busybox");
        assert_eq!(
            repo("docker.io/library/busybox"),
            "docker.io/library/busybox"
        );
        assert_eq!(
            repo("index.docker.io/library/busybox"),
            "docker.io/library/busybox"
        );
        assert_eq!(repo("index.docker.io/busybox"), "docker.io/library/busybox");
    }

    #[test]
    fn registry_hosts_are_recognised_by_dot_colon_or_localhost() {
        assert_eq!(repo("ghcr.io/acme/x:v1"), "ghcr.io/acme/x");
        assert_eq!(
            repo("127.0.0.1:5000/team/app:tag"),
            "127.0.0.1:5000/team/app"
        );
        assert_eq!(repo("localhost/x"), "localhost/x");
        assert_eq!(repo("localhost:5000/x"), "localhost:5000/x");
        assert_eq!(repo("registry:5000/x"), "registry:5000/x");
        assert_eq!(repo("[::1]:5000/x"), "[::1]:5000/x");
        // No dot, colon or `localhost`: a Docker Hub namespace, not a host.
        assert_eq!(repo("myregistry/x"), "docker.io/myregistry/x");
    }

    #[test]
    fn tag_and_digest_are_split_off() {
        let d = format!("sha256:{HEX}");
        let r = Reference::parse(&format!("127.0.0.1:5000/team/app:v1@{d}")).unwrap();
        assert_eq!(r.repository, "127.0.0.1:5000/team/app");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        let r = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.repository, "docker.io/library/busybox");
        assert_eq!(r.tag, None);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{d}"));
        let r = Reference::parse("localhost:5000/x").unwrap();
        assert_eq!((r.tag, r.digest), (None, None));
    }

    #[test]
    fn invalid_references_are_refused_with_a_reason() {
        assert!(err("").contains("empty reference"));
        assert!(err("Busybox").contains("must be lower-case"));
        assert!(err("ghcr.io/Acme/x").contains("must be lower-case"));
        assert!(err("a b").contains("whitespace"));
        assert!(err("busybox:").contains("invalid tag"));
        assert!(err("busybox:-x").contains("invalid tag"));
        assert!(err("busybox@sha256:abc").contains("lower-case hex"));
        assert!(err("busybox@md5:abc").contains("unsupported digest algorithm"));
        assert!(err("busybox@").contains("algorithm:hex"));
        assert!(err("ghcr.io//x").contains("empty path component"));
        assert!(err("ghcr.io/x/").contains("empty path component"));
        assert!(err("ghcr.io/").contains("missing repository name"));
        assert!(err("-x").contains("invalid repository path component"));
        assert!(err("a..b").contains("invalid repository path component"));
        assert!(err("host-.io/x").contains("invalid registry host"));
        assert!(err("host:port/x").contains("invalid registry host"));
        assert!(err(&format!("sha256:{HEX}")).contains("image id"));
        assert!(err(HEX).contains("image id"));
        let long = format!("ghcr.io/{}", "a".repeat(260));
        assert!(err(&long).contains("longer than 255"));
    }

    #[test]
    fn separators_inside_components_follow_docker_grammar() {
        assert_eq!(repo("a_b/c__d/e---f/g.h"), "docker.io/a_b/c__d/e---f/g.h");
        assert!(err("a___b").contains("invalid repository path component"));
        assert!(err("a._b").contains("invalid repository path component"));
    }

    #[test]
    fn image_ids_are_recognised() {
        assert!(is_image_id(&format!("sha256:{HEX}")));
        assert!(is_image_id(HEX));
        assert!(!is_image_id("sha256:abc"));
        assert!(!is_image_id("busybox"));
    }
}

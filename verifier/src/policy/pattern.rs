//! Glob patterns over `/`-separated names: image repositories and Kubernetes namespaces.
//!
//! `*` matches within one path segment, `?` one character of a segment, and a whole-segment `**` zero or
//! more whole segments (`ghcr.io/acme/debug/**` matches `ghcr.io/acme/debug`, `…/debug/x` and
//! `…/debug/a/b`). A pattern always matches the whole name: `docker.io/library/busybox` does not match
//! `docker.io/library/busybox2`. Nothing else is special: `[` and `]` are literal (an IPv6 registry
//! host is written `[::1]:5000`), and neither grammar allows `{`, `}` or `\`.

use std::fmt;

use globset::{Candidate, GlobSet};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::glob::{self, Options};
use crate::reference;

/// A validated glob; the shared engine behind [`ImagePattern`] and [`NamespacePattern`], matched by
/// `globset` with `*` and `?` stopping at `/`.
#[derive(Debug, Clone)]
struct Glob {
    text: String,
    set: GlobSet,
}

impl PartialEq for Glob {
    fn eq(&self, other: &Glob) -> bool {
        self.text == other.text
    }
}

impl Eq for Glob {}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// The pattern's segments, `**` kept whole and never twice in a row.
fn segments(text: &str) -> std::result::Result<Vec<&str>, String> {
    if text.is_empty() {
        return Err("empty pattern".to_string());
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace or control characters".to_string());
    }
    let mut segments = Vec::new();
    for segment in text.split('/') {
        if segment.is_empty() {
            return Err("empty path segment (leading, doubled or trailing '/')".to_string());
        }
        if segment == "**" {
            // `a/**/**/b` means the same as `a/**/b`; keeping one avoids redundant work.
            if segments.last() != Some(&"**") {
                segments.push(segment);
            }
        } else if segment.contains("**") {
            return Err(format!(
                "'**' must be a whole path segment, as in 'a/**/b' (found {segment:?})"
            ));
        } else {
            segments.push(segment);
        }
    }
    Ok(segments)
}

/// `segments` in globset's syntax: `*`, `?` and whole-segment `**` are wildcards, the rest literal.
fn globset_text(segments: &[&str]) -> String {
    segments
        .iter()
        .map(|s| glob::escape(s, &['*', '?']))
        .collect::<Vec<_>>()
        .join("/")
}

impl Glob {
    /// Checks the syntax only (see [`segments`]).
    fn check(text: &str) -> std::result::Result<(), String> {
        segments(text).map(|_| ())
    }

    fn new(text: &str) -> std::result::Result<Glob, String> {
        let segments = segments(text)?;
        // Names are matched with each non-ASCII character standing as one byte (see `matches`),
        // which is exact only while no pattern names such a character itself. Image and namespace
        // grammars are ASCII, so their patterns never do.
        if let Some(c) = text.chars().find(|c| !c.is_ascii()) {
            return Err(format!("non-ASCII character {c:?}"));
        }
        let mut globs = vec![globset_text(&segments)];
        // globset's trailing `/**` needs at least one more segment; ours also matches none
        // (`…/debug/**` names `…/debug`), so the pattern without it joins the set.
        if let [rest @ .., "**"] = &segments[..] {
            if !rest.is_empty() {
                globs.push(globset_text(rest));
            }
        }
        let set = glob::compile(
            globs,
            Options {
                literal_separator: true,
                case_insensitive: false,
            },
        )?;
        Ok(Glob {
            text: text.to_string(),
            set,
        })
    }

    fn matches(&self, name: &str) -> bool {
        if name.is_ascii() {
            return self.set.is_match_candidate(&Candidate::from_bytes(name));
        }
        // globset matches bytes, so its `?` is one byte; ours is one character. Patterns are ASCII
        // (see `new`), so a non-ASCII character can only meet a wildcard: standing it in as one
        // byte that no literal matches gives `?` and `*` exactly their meaning over characters.
        let name: Vec<u8> = name
            .chars()
            .map(|c| if c.is_ascii() { c as u8 } else { 0xFF })
            .collect();
        self.set.is_match_candidate(&Candidate::from_bytes(&name))
    }
}

/// A pattern naming image repositories, e.g. `busybox`, `ghcr.io/acme/**`, `*.example.com/app`.
///
/// Unless its first segment contains a wildcard, the pattern is normalised like an image reference first,
/// so `busybox` means `docker.io/library/busybox`. It names repositories: a tag or digest is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePattern {
    written: String,
    glob: Glob,
}

impl ImagePattern {
    pub fn new(written: &str) -> Result<ImagePattern> {
        let fail = |reason: String| Error::Pattern {
            pattern: written.to_string(),
            reason,
        };
        Glob::check(written).map_err(fail)?;
        if written.contains('@') {
            return Err(fail(
                "a pattern names repositories; remove the '@digest'".to_string(),
            ));
        }
        let first = written.split('/').next().unwrap_or_default();
        let normalised = if has_wildcard(first) {
            written.to_string()
        } else {
            let (domain, path) = reference::split_domain(written);
            format!("{domain}/{path}")
        };
        let mut segments = normalised.split('/');
        let domain = segments.next().unwrap_or_default();
        for c in domain.chars() {
            if !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '*' | '?'))
            {
                return Err(fail(format!("invalid character {c:?} in registry host")));
            }
        }
        if !has_wildcard(domain) {
            // Reuse the reference grammar for the literal host by parsing a stand-in reference.
            if let Err(Error::Reference { reason, .. }) =
                reference::Reference::parse(&format!("{domain}/x"))
            {
                return Err(fail(reason));
            }
        }
        for segment in segments {
            if segment.contains(':') {
                return Err(fail(
                    "a pattern names repositories; remove the ':tag'".to_string(),
                ));
            }
            if segment == "**" {
                continue;
            }
            if has_wildcard(segment) {
                if segment.bytes().any(|b| b.is_ascii_uppercase()) {
                    return Err(fail(format!(
                        "repository path {segment:?} must be lower-case"
                    )));
                }
                if let Some(c) = segment.chars().find(|&c| {
                    !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '*' | '?'))
                }) {
                    return Err(fail(format!("invalid character {c:?} in repository path")));
                }
            } else {
                reference::validate_path_component(segment).map_err(fail)?;
            }
        }
        let glob = Glob::new(&normalised).map_err(fail)?;
        Ok(ImagePattern {
            written: written.to_string(),
            glob,
        })
    }

    /// Whether `repository` (already normalised, no tag or digest) is one this pattern names.
    pub fn matches(&self, repository: &str) -> bool {
        self.glob.matches(repository)
    }

    /// The normalised pattern, e.g. `docker.io/library/busybox` for `busybox`.
    pub fn as_str(&self) -> &str {
        &self.glob.text
    }

    /// The pattern as the policy wrote it.
    pub fn written(&self) -> &str {
        &self.written
    }
}

/// A pattern over Kubernetes namespace names, e.g. `prod-*`, `kube-system`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespacePattern {
    glob: Glob,
}

impl NamespacePattern {
    pub fn new(text: &str) -> Result<NamespacePattern> {
        let fail = |reason: String| Error::Pattern {
            pattern: text.to_string(),
            reason,
        };
        Glob::check(text).map_err(fail)?;
        if let Some(c) = text.chars().find(|&c| {
            !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '*' | '?'))
        }) {
            return Err(fail(format!(
                "invalid character {c:?} (namespace names are lower-case letters, digits and '-')"
            )));
        }
        if text.len() > 63 {
            return Err(fail("longer than a namespace name can be (63)".to_string()));
        }
        let glob = Glob::new(text).map_err(fail)?;
        Ok(NamespacePattern { glob })
    }

    pub fn matches(&self, namespace: &str) -> bool {
        self.glob.matches(namespace)
    }

    pub fn as_str(&self) -> &str {
        &self.glob.text
    }
}

macro_rules! string_serde {
    ($ty:ty) => {
        impl TryFrom<String> for $ty {
            type Error = Error;
            fn try_from(text: String) -> Result<Self> {
                <$ty>::new(&text)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                <$ty>::new(&text).map_err(serde::de::Error::custom)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_serde!(ImagePattern);
string_serde!(NamespacePattern);

#[cfg(test)]
mod tests {
    use super::*;

    fn image(p: &str) -> ImagePattern {
        ImagePattern::new(p).unwrap_or_else(|e| panic!("{e}"))
    }

    fn image_err(p: &str) -> String {
        match ImagePattern::new(p) {
            Ok(x) => panic!("{p} accepted as {x:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn glob(p: &str, name: &str) -> bool {
        Glob::new(p).unwrap_or_else(|e| panic!("{e}")).matches(name)
    }

    #[test]
    fn star_stays_within_one_segment() {
        assert!(glob("ghcr.io/acme/*", "ghcr.io/acme/x"));
        assert!(!glob("ghcr.io/acme/*", "ghcr.io/acme/a/b"));
        assert!(!glob("ghcr.io/acme/*", "ghcr.io/acme"));
        assert!(glob("ghcr.io/*/app", "ghcr.io/acme/app"));
        assert!(glob("a/x*y*z", "a/xyz"));
        assert!(glob("a/x*y*z", "a/x--y--z"));
        assert!(!glob("a/x*y*z", "a/x--y--"));
        assert!(glob("a/*", "a/"));
    }

    #[test]
    fn double_star_spans_zero_or_more_whole_segments() {
        assert!(glob("ghcr.io/acme/debug/**", "ghcr.io/acme/debug/x"));
        assert!(glob("ghcr.io/acme/debug/**", "ghcr.io/acme/debug/a/b"));
        assert!(glob("ghcr.io/acme/debug/**", "ghcr.io/acme/debug"));
        assert!(!glob("ghcr.io/acme/debug/**", "ghcr.io/acme/debugger"));
        assert!(!glob("ghcr.io/acme/debug/**", "ghcr.io/acme/x"));
        assert!(glob("ghcr.io/**/app", "ghcr.io/app"));
        assert!(glob("ghcr.io/**/app", "ghcr.io/a/b/c/app"));
        assert!(!glob("ghcr.io/**/app", "ghcr.io/a/b/c/app2"));
        assert!(glob("**", "anything/at/all"));
        assert!(glob("**/x", "a/b/x"));
        assert!(glob("a/**/**/b", "a/b"));
        assert!(glob("a/**/b/**/c", "a/1/b/2/3/c"));
        assert!(!glob("a/**/b/**/c", "a/1/c"));
    }

    #[test]
    fn question_mark_is_exactly_one_character() {
        assert!(glob("prod-?", "prod-a"));
        assert!(!glob("prod-?", "prod-"));
        assert!(!glob("prod-?", "prod-ab"));
        assert!(!glob("a?b", "a/b"));
        assert!(glob("h?llo", "hällo"));
    }

    #[test]
    fn matches_are_anchored_at_both_ends() {
        let busybox = image("docker.io/library/busybox");
        assert!(busybox.matches("docker.io/library/busybox"));
        assert!(!busybox.matches("docker.io/library/busybox2"));
        assert!(!busybox.matches("docker.io/library/busy"));
        assert!(!busybox.matches("x/docker.io/library/busybox"));
    }

    #[test]
    fn many_stars_do_not_explode() {
        let p = format!("a/{}b", "*x".repeat(50));
        assert!(!glob(&p, &format!("a/{}", "x".repeat(5000))));
        let p = format!("{}x", "**/".repeat(50));
        assert!(!glob(&p, &"a/".repeat(200)));
    }

    #[test]
    fn image_patterns_are_normalised_unless_the_first_segment_is_a_wildcard() {
        assert_eq!(image("busybox").as_str(), "docker.io/library/busybox");
        assert_eq!(image("busybox").written(), "busybox");
        assert_eq!(image("acme/*").as_str(), "docker.io/acme/*");
        assert_eq!(image("docker.io/busy*").as_str(), "docker.io/library/busy*");
        assert_eq!(image("docker.io/**").as_str(), "docker.io/**");
        assert_eq!(image("index.docker.io/acme/x").as_str(), "docker.io/acme/x");
        assert_eq!(
            image("ghcr.io/acme/debug/**").as_str(),
            "ghcr.io/acme/debug/**"
        );
        assert_eq!(
            image("127.0.0.1:5000/team/*").as_str(),
            "127.0.0.1:5000/team/*"
        );
        assert_eq!(image("*.example.com/app").as_str(), "*.example.com/app");
        assert_eq!(image("**/busybox").as_str(), "**/busybox");
        assert!(image("busybox").matches("docker.io/library/busybox"));
        assert!(image("*.example.com/app").matches("r1.example.com/app"));
        assert!(image("**/busybox").matches("docker.io/library/busybox"));
        assert!(image("docker.io/**").matches("docker.io/library/busybox"));
        assert!(!image("docker.io/**").matches("ghcr.io/library/busybox"));
    }

    #[test]
    fn invalid_image_patterns_say_why() {
        assert!(image_err("").contains("empty pattern"));
        assert!(image_err("busybox:latest").contains("remove the ':tag'"));
        assert!(image_err("ghcr.io/a/b:v1").contains("remove the ':tag'"));
        assert!(image_err("busybox@sha256:00").contains("remove the '@digest'"));
        assert!(image_err("ghcr.io/a**").contains("whole path segment"));
        assert!(image_err("ghcr.io//a").contains("empty path segment"));
        assert!(image_err("ghcr.io/a/").contains("empty path segment"));
        assert!(image_err("ghcr.io/Acme").contains("lower-case"));
        assert!(image_err("ghcr.io/Ac*").contains("lower-case"));
        assert!(image_err("ghcr.io/a+*").contains("invalid character"));
        assert!(image_err("bad_host.io/x").contains("registry host"));
        assert!(image_err("host-.io/x").contains("invalid registry host"));
        assert!(image_err("a b").contains("whitespace"));
    }

    #[test]
    fn namespace_patterns() {
        let p = NamespacePattern::new("prod-*").unwrap();
        assert!(p.matches("prod-eu"));
        assert!(p.matches("prod-"));
        assert!(!p.matches("production"));
        assert!(!p.matches("staging-prod-x"));
        assert!(NamespacePattern::new("kube-system")
            .unwrap()
            .matches("kube-system"));
        assert!(NamespacePattern::new("Prod").is_err());
        assert!(NamespacePattern::new("a/b").is_err());
        assert!(NamespacePattern::new("").is_err());
        assert!(NamespacePattern::new(&"a".repeat(64)).is_err());
    }

    #[test]
    fn double_star_at_the_start_middle_and_end() {
        // Start: zero or more leading segments, never part of one.
        assert!(glob("**/app", "app"));
        assert!(glob("**/app", "a/b/app"));
        assert!(!glob("**/app", "myapp"));
        assert!(!glob("**/app", "a/myapp"));
        // Middle: zero or more whole segments between two.
        assert!(glob("a/**/b", "a/b"));
        assert!(glob("a/**/b", "a/x/y/b"));
        assert!(!glob("a/**/b", "ab"));
        assert!(!glob("a/**/b", "a/xb"));
        assert!(!glob("a/**/b", "ax/b"));
        // End: the name itself and everything below it.
        assert!(glob("a/**", "a"));
        assert!(glob("a/**", "a/x/y"));
        assert!(!glob("a/**", "ab"));
        assert!(!glob("a/**", "b/a"));
        // Several, and a lone one.
        assert!(glob("**/b/**", "b"));
        assert!(glob("**/b/**", "a/b/c"));
        assert!(!glob("**/b/**", "a/bc"));
        assert!(glob("**", ""));
        assert!(glob("**", "a"));
    }

    #[test]
    fn brackets_and_braces_are_literal() {
        let v6 = image("[::1]:5000/team/*");
        assert_eq!(v6.as_str(), "[::1]:5000/team/*");
        assert!(v6.matches("[::1]:5000/team/app"));
        assert!(!v6.matches("::1:5000/team/app"));
        assert!(!v6.matches(":5000/team/app"));
        assert!(glob("a[bc]", "a[bc]"));
        assert!(!glob("a[bc]", "ab"));
        assert!(glob("a{b,c}", "a{b,c}"));
        assert!(!glob("a{b,c}", "ab"));
        assert!(glob(r"a\*", r"a\x"));
        assert!(!glob(r"a\*", "a*"));
        // Repository paths allow neither, with or without a wildcard.
        assert!(image_err("ghcr.io/a[b]").contains("invalid repository path component"));
        assert!(image_err("ghcr.io/a[b]*").contains("invalid character '['"));
        assert!(image_err("ghcr.io/{a,b}/*").contains("invalid repository path component"));
        assert!(image_err("ghcr.io/{a,b}*").contains("invalid character '{'"));
        assert!(NamespacePattern::new("prod-[ab]").is_err());
    }

    #[test]
    fn question_mark_and_star_count_characters_not_bytes() {
        assert!(glob("a/?", "a/é"));
        assert!(!glob("a/??", "a/é"));
        assert!(glob("a/*x", "a/éèx"));
        assert!(!glob("a/?", "a/\u{1F600}\u{1F600}"));
        assert!(Glob::new("a/é").is_err());
    }

    #[test]
    fn a_pattern_that_fails_to_compile_is_a_policy_error_on_its_line() {
        let long = format!("ghcr.io/acme/{}", "?".repeat(200_000));
        assert!(image_err(&long).contains("cannot be compiled"));
        let text = format!(
            "version = 1\ndefault = \"deny\"\n[[rule]]\nname = \"r\"\nimages = [\n  \"busybox\",\n  \"{long}\",\n]\naction = \"allow\"\n"
        );
        let e = crate::policy::parse(std::path::Path::new("policy.toml"), text.as_bytes())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        let shown = &e[..e.len().min(300)];
        assert!(e.contains("line 7, column"), "{shown}");
        assert!(e.contains("cannot be compiled"), "{shown}");
        assert!(!e.contains('\n'), "{shown}");
    }

    #[test]
    fn patterns_round_trip_through_serde() {
        #[derive(Deserialize, Serialize)]
        struct T {
            images: Vec<ImagePattern>,
            namespaces: Vec<NamespacePattern>,
        }
        let t: T = toml::from_str("images = [\"busybox\"]\nnamespaces = [\"prod-*\"]").unwrap();
        assert_eq!(t.images[0].as_str(), "docker.io/library/busybox");
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"images":["docker.io/library/busybox"],"namespaces":["prod-*"]}"#
        );
        let e = toml::from_str::<T>("images = [\"busybox:1\"]\nnamespaces = []").err();
        assert!(e.is_some_and(|e| e.message().contains("remove the ':tag'")));
    }
}

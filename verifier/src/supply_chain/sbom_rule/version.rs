//! Version ordering per package ecosystem, for `deny_packages` comparisons such as
//! `pkg:deb/debian/openssl@<3.0.7`.
//!
//! - Debian (`deb`): dpkg's algorithm: epoch, upstream version and revision, `~` before anything.
//! - Alpine (`apk`): apk-tools' order: dotted numbers, a letter, `_alpha`/`_beta`/`_pre`/`_rc` before
//!   the release and `_cvs`/`_svn`/`_git`/`_hg`/`_p` after it, then `-r<n>`.
//! - RPM (`rpm`, and Arch `alpm`, whose vercmp is rpm's): rpmvercmp over epoch, version and
//!   release, `~` before anything, `^` after the end but before anything else.
//! - Everything else (npm, pypi, golang, maven, gem, ...): [`generic`], a dotted numeric comparison
//!   that knows common pre- and post-release words.
//!
//! Versions come from SBOMs, so nothing here panics or allocates per character of hostile input
//! beyond the input's own length, and long digit runs are compared as strings, never parsed.

use std::cmp::Ordering;

/// Which comparison a package type uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Dpkg,
    Apk,
    Rpm,
    /// Semantic versioning (npm, Go modules, Cargo): a `-` suffix is a pre-release, before the release.
    Semver,
    Generic,
}

impl Scheme {
    /// The scheme for a (lower-case) purl type.
    pub fn of_purl_type(purl_type: &str) -> Scheme {
        match purl_type {
            "deb" => Scheme::Dpkg,
            "apk" | "alpine" => Scheme::Apk,
            "rpm" | "alpm" => Scheme::Rpm,
            "npm" | "golang" | "cargo" => Scheme::Semver,
            _ => Scheme::Generic,
        }
    }

    pub fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            Scheme::Dpkg => dpkg(a, b),
            Scheme::Apk => apk(a, b),
            Scheme::Rpm => rpm(a, b),
            Scheme::Semver => semver(a, b),
            Scheme::Generic => generic(a, b),
        }
    }
}

/// Compares two runs of ASCII digits as numbers of any length.
fn digits(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Splits `s` at the end of its leading run of bytes for which `f` holds.
fn split_run(s: &str, f: impl Fn(u8) -> bool) -> (&str, &str) {
    let n = s.bytes().take_while(|&b| f(b)).count();
    s.split_at(n)
}

// ---------------------------------------------------------------------------------------------------------
// dpkg

/// dpkg's `[epoch:]upstream[-revision]` order (deb-version(7)).
pub fn dpkg(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = dpkg_parts(a);
    let (eb, ub, rb) = dpkg_parts(b);
    digits(ea, eb)
        .then_with(|| verrevcmp(ua, ub))
        .then_with(|| verrevcmp(ra, rb))
}

fn dpkg_parts(v: &str) -> (&str, &str, &str) {
    let v = v.trim();
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => (e, rest),
        _ => ("0", v),
    };
    match rest.rsplit_once('-') {
        Some((upstream, revision)) => (epoch, upstream, revision),
        None => (epoch, rest, ""),
    }
}

/// dpkg's weight of a non-digit character: `~` first, then the end of the part, then letters,
/// then everything else.
fn dpkg_order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        while a.first().is_some_and(|c| !c.is_ascii_digit())
            || b.first().is_some_and(|c| !c.is_ascii_digit())
        {
            let ac = dpkg_order(a.first().copied());
            let bc = dpkg_order(b.first().copied());
            if ac != bc {
                return ac.cmp(&bc);
            }
            a = a.get(1..).unwrap_or_default();
            b = b.get(1..).unwrap_or_default();
        }
        let an = a.iter().take_while(|c| c.is_ascii_digit()).count();
        let bn = b.iter().take_while(|c| c.is_ascii_digit()).count();
        // Digits are ASCII, so these slices are valid UTF-8.
        let (ad, bd) = (
            std::str::from_utf8(&a[..an]).unwrap_or_default(),
            std::str::from_utf8(&b[..bn]).unwrap_or_default(),
        );
        match digits(ad, bd) {
            Ordering::Equal => {}
            other => return other,
        }
        a = &a[an..];
        b = &b[bn..];
    }
    Ordering::Equal
}

// ---------------------------------------------------------------------------------------------------------
// rpm

/// rpm's `[epoch:]version[-release]` order: epoch, then rpmvercmp of version, then of release when
/// both have one.
pub fn rpm(a: &str, b: &str) -> Ordering {
    let (ea, va, ra) = rpm_parts(a);
    let (eb, vb, rb) = rpm_parts(b);
    let by_release = match (ra, rb) {
        (Some(ra), Some(rb)) => rpmvercmp(ra, rb),
        _ => Ordering::Equal,
    };
    digits(ea, eb)
        .then_with(|| rpmvercmp(va, vb))
        .then(by_release)
}

fn rpm_parts(v: &str) -> (&str, &str, Option<&str>) {
    let v = v.trim();
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) if e.bytes().all(|b| b.is_ascii_digit()) => {
            (if e.is_empty() { "0" } else { e }, rest)
        }
        _ => ("0", v),
    };
    match rest.rsplit_once('-') {
        Some((version, release)) => (epoch, version, Some(release)),
        None => (epoch, rest, None),
    }
}

/// rpmvercmp from rpm's `rpmio/rpmvercmp.c`.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    // Everything but ASCII letters, digits, `~` and `^` separates segments.
    let separator = |c: char| !(c.is_ascii_alphanumeric() || c == '~' || c == '^');
    let (mut a, mut b) = (a, b);
    loop {
        a = a.trim_start_matches(separator);
        b = b.trim_start_matches(separator);

        match (a.strip_prefix('~'), b.strip_prefix('~')) {
            (Some(ra), Some(rb)) => {
                (a, b) = (ra, rb);
                continue;
            }
            (Some(_), None) => return Ordering::Less,
            (None, Some(_)) => return Ordering::Greater,
            (None, None) => {}
        }
        match (a.strip_prefix('^'), b.strip_prefix('^')) {
            (Some(ra), Some(rb)) => {
                (a, b) = (ra, rb);
                continue;
            }
            (Some(_), None) => {
                return if b.is_empty() {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (None, Some(_)) => {
                return if a.is_empty() {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (None, None) => {}
        }
        if a.is_empty() || b.is_empty() {
            break;
        }
        let numeric = a.as_bytes()[0].is_ascii_digit();
        let (sa, ra) = if numeric {
            split_run(a, |c| c.is_ascii_digit())
        } else {
            split_run(a, |c| c.is_ascii_alphabetic())
        };
        let (sb, rb) = if numeric {
            split_run(b, |c| c.is_ascii_digit())
        } else {
            split_run(b, |c| c.is_ascii_alphabetic())
        };
        if sb.is_empty() {
            // Segments of different kinds: a numeric one is newer.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let order = if numeric { digits(sa, sb) } else { sa.cmp(sb) };
        if order != Ordering::Equal {
            return order;
        }
        (a, b) = (ra, rb);
    }
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, _) => Ordering::Greater,
    }
}

// ---------------------------------------------------------------------------------------------------------
// apk

/// apk-tools' version order (`apk version -t`). A version apk would call invalid is compared with
/// [`generic`] instead.
pub fn apk(a: &str, b: &str) -> Ordering {
    match (ApkVersion::parse(a), ApkVersion::parse(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => generic(a, b),
    }
}

#[derive(Debug)]
struct ApkVersion<'a> {
    numbers: Vec<&'a str>,
    letter: Option<u8>,
    /// (rank, number): see [`apk_suffix_rank`].
    suffixes: Vec<(u8, &'a str)>,
    revision: &'a str,
}

/// The release itself ranks between the pre-release and post-release suffixes.
const APK_RELEASE: u8 = 4;

fn apk_suffix_rank(name: &str) -> Option<u8> {
    Some(match name {
        "alpha" => 0,
        "beta" => 1,
        "pre" => 2,
        "rc" => 3,
        "cvs" => 5,
        "svn" => 6,
        "git" => 7,
        "hg" => 8,
        "p" => 9,
        _ => return None,
    })
}

impl<'a> ApkVersion<'a> {
    fn parse(v: &'a str) -> Option<ApkVersion<'a>> {
        let v = v.trim();
        // `~<hash>` names a commit; it does not order.
        let v = v.split_once('~').map_or(v, |(head, _)| head);
        let (v, revision) = match v.rsplit_once("-r") {
            Some((head, r)) if !r.is_empty() && r.bytes().all(|c| c.is_ascii_digit()) => (head, r),
            _ => (v, "0"),
        };
        let (main, suffixes) = match v.split_once('_') {
            Some((main, rest)) => (main, Some(rest)),
            None => (v, None),
        };
        let (main, letter) = match main.as_bytes().last() {
            Some(&c) if c.is_ascii_lowercase() => (&main[..main.len() - 1], Some(c)),
            _ => (main, None),
        };
        let numbers: Vec<&str> = main.split('.').collect();
        if numbers
            .iter()
            .any(|n| n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()))
        {
            return None;
        }
        let mut parsed = Vec::new();
        for suffix in suffixes.into_iter().flat_map(|s| s.split('_')) {
            let (name, number) = split_run(suffix, |c| c.is_ascii_lowercase());
            if !number.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            parsed.push((apk_suffix_rank(name)?, number));
        }
        Some(ApkVersion {
            numbers,
            letter,
            suffixes: parsed,
            revision,
        })
    }

    fn cmp(&self, other: &ApkVersion<'_>) -> Ordering {
        for (i, (a, b)) in self.numbers.iter().zip(&other.numbers).enumerate() {
            // After the first component, a leading zero makes apk compare as a decimal fraction.
            let order = if i > 0 && (a.starts_with('0') || b.starts_with('0')) {
                a.trim_end_matches('0').cmp(b.trim_end_matches('0'))
            } else {
                digits(a, b)
            };
            if order != Ordering::Equal {
                return order;
            }
        }
        let by_count = self.numbers.len().cmp(&other.numbers.len());
        if by_count != Ordering::Equal {
            return by_count;
        }
        let by_letter = self.letter.cmp(&other.letter);
        if by_letter != Ordering::Equal {
            return by_letter;
        }
        let n = self.suffixes.len().max(other.suffixes.len());
        for i in 0..n {
            let a = self.suffixes.get(i).copied().unwrap_or((APK_RELEASE, ""));
            let b = other.suffixes.get(i).copied().unwrap_or((APK_RELEASE, ""));
            let order = a.0.cmp(&b.0).then_with(|| digits(a.1, b.1));
            if order != Ordering::Equal {
                return order;
            }
        }
        digits(self.revision, other.revision)
    }
}

// ---------------------------------------------------------------------------------------------------------
// generic

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Number(&'a str),
    Word(&'a str),
}

/// Words that mark a pre-release, a release or a post-release, ranked; other words rank between
/// the pre-releases and the release.
fn word_rank(word: &str) -> u8 {
    match word.to_ascii_lowercase().as_str() {
        "dev" | "snapshot" => 0,
        "alpha" | "a" => 1,
        "beta" | "b" => 2,
        "milestone" | "m" => 3,
        "rc" | "cr" | "c" | "pre" | "preview" => 4,
        "" | "final" | "ga" | "release" => 6,
        "post" | "sp" | "patch" | "pl" => 7,
        _ => UNKNOWN_WORD,
    }
}

const UNKNOWN_WORD: u8 = 5;

fn tokens(v: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut rest = v;
    while let Some(c) = rest.bytes().next() {
        let (run, tail) = if c.is_ascii_digit() {
            let (run, tail) = split_run(rest, |c| c.is_ascii_digit());
            out.push(Token::Number(run));
            (run, tail)
        } else if c.is_ascii_alphabetic() {
            let (run, tail) = split_run(rest, |c| c.is_ascii_alphabetic());
            out.push(Token::Word(run));
            (run, tail)
        } else {
            let skip = rest.chars().next().map_or(1, char::len_utf8);
            (&rest[..skip], &rest[skip..])
        };
        debug_assert!(!run.is_empty());
        rest = tail;
    }
    out
}

/// Semantic versioning 2.0 precedence: the `major.minor.patch` core numerically (a leading `v` and
/// `+build` metadata ignored), then a version with a `-` pre-release before the same version without:
/// `1.2.3-1 < 1.2.3`, and Go pseudo-versions `v1.2.3-0.20230101000000-abcdef < v1.2.3`. Pre-release
/// identifiers compare numerically when both are numbers, numbers before words, and a shorter list
/// first.
pub fn semver(a: &str, b: &str) -> Ordering {
    fn split(v: &str) -> (&str, Option<&str>) {
        let v = v.trim();
        let v = v.split_once('+').map_or(v, |(head, _)| head);
        let v = v
            .strip_prefix('v')
            .or_else(|| v.strip_prefix('V'))
            .filter(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            .unwrap_or(v);
        match v.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (v, None),
        }
    }
    let ((core_a, pre_a), (core_b, pre_b)) = (split(a), split(b));
    let core = generic(core_a, core_b);
    if core != Ordering::Equal {
        return core;
    }
    match (pre_a, pre_b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => {
            let (mut xs, mut ys) = (x.split('.'), y.split('.'));
            loop {
                match (xs.next(), ys.next()) {
                    (None, None) => return Ordering::Equal,
                    (None, Some(_)) => return Ordering::Less,
                    (Some(_), None) => return Ordering::Greater,
                    (Some(p), Some(q)) => {
                        let numeric =
                            |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
                        let order = match (numeric(p), numeric(q)) {
                            (true, true) => digits(p, q),
                            (true, false) => Ordering::Less,
                            (false, true) => Ordering::Greater,
                            (false, false) => p.cmp(q),
                        };
                        if order != Ordering::Equal {
                            return order;
                        }
                    }
                }
            }
        }
    }
}

/// A comparison for ecosystems without their own here: an optional leading `v` and `+build`
/// metadata are ignored; numbers compare numerically and sort after words at the same place;
/// `dev` < `alpha`/`a` < `beta`/`b` < `milestone`/`m` < `rc`/`pre` < other words < the release
/// (`final`, `ga`, the end) < `post`/`sp`/`patch`. So `1.0.0-rc1 < 1.0.0 < 1.0.1`,
/// `1.0 = 1.0.0`, `4.1.121.Final = 4.1.121`, `1.0.post1 > 1.0`, and `1.10 > 1.9`.
pub fn generic(a: &str, b: &str) -> Ordering {
    let clean = |v: &str| -> String {
        let v = v.trim();
        let v = v.split_once('+').map_or(v, |(head, _)| head);
        let v = v
            .strip_prefix('v')
            .or_else(|| v.strip_prefix('V'))
            .filter(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            .unwrap_or(v);
        v.to_string()
    };
    let (a, b) = (clean(a), clean(b));
    let (ta, tb) = (tokens(&a), tokens(&b));
    let n = ta.len().max(tb.len());
    for i in 0..n {
        let x = ta.get(i).copied().unwrap_or(Token::Word(""));
        let y = tb.get(i).copied().unwrap_or(Token::Word(""));
        // The end of a version counts as the release: `1.0` = `1.0.0` for numbers that are zero.
        let order = match (x, y) {
            (Token::Number(p), Token::Number(q)) => digits(p, q),
            (Token::Number(p), Token::Word("")) => digits(p, "0"),
            (Token::Word(""), Token::Number(q)) => digits("0", q),
            (Token::Number(_), Token::Word(_)) => Ordering::Greater,
            (Token::Word(_), Token::Number(_)) => Ordering::Less,
            (Token::Word(p), Token::Word(q)) => {
                let (rp, rq) = (word_rank(p), word_rank(q));
                // Words of one known rank are synonyms (`final` = `ga` = the end); unknown ones
                // order alphabetically.
                rp.cmp(&rq).then_with(|| {
                    if rp == UNKNOWN_WORD {
                        p.to_ascii_lowercase().cmp(&q.to_ascii_lowercase())
                    } else {
                        Ordering::Equal
                    }
                })
            }
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {

    #[test]
    fn semver_prereleases_come_before_their_release() {
        use std::cmp::Ordering::*;
        for (a, b, want) in [
            ("1.2.3-1", "1.2.3", Less),
            ("v1.2.3-0.20230101000000-abcdef123456", "v1.2.3", Less),
            ("1.0.0-alpha", "1.0.0-alpha.1", Less),
            ("1.0.0-alpha.1", "1.0.0-alpha.beta", Less),
            ("1.0.0-beta.2", "1.0.0-beta.11", Less),
            ("1.0.0-rc.1", "1.0.0", Less),
            ("1.0.0+build.5", "1.0.0", Equal),
            ("1.10.0", "1.9.9", Greater),
            ("v2.0.0", "1.99.0", Greater),
        ] {
            assert_eq!(semver(a, b), want, "{a} vs {b}");
        }
        assert_eq!(Scheme::of_purl_type("golang"), Scheme::Semver);
        assert_eq!(Scheme::of_purl_type("npm"), Scheme::Semver);
    }

    use super::*;
    use Ordering::{Equal, Greater, Less};

    fn check(f: fn(&str, &str) -> Ordering, cases: &[(&str, Ordering, &str)]) {
        for &(a, want, b) in cases {
            assert_eq!(f(a, b), want, "{a} vs {b}");
            assert_eq!(f(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn dpkg_orders_like_dpkg() {
        // Cases from dpkg's own test suite (lib/dpkg/t/t-version.c) and the brief.
        check(
            dpkg,
            &[
                ("1.0~rc1", Less, "1.0"),
                ("1:0.9", Greater, "2.0"),
                ("3.0.7-1", Greater, "3.0.7"),
                ("3.0.2-0ubuntu1.10", Less, "3.0.7"),
                ("1.0", Equal, "0:1.0"),
                ("1.0-1", Equal, "1.0-1"),
                ("1.0~~", Less, "1.0~"),
                ("1.0~", Less, "1.0"),
                ("1.0", Less, "1.0a"),
                ("1.0a", Less, "1.0+"),
                ("1.0.", Greater, "1.0a"),
                ("1.2.3-1", Less, "1.2.3-1.1"),
                ("1.10", Greater, "1.9"),
                ("2:1.0", Greater, "1:9.9"),
                ("1.0-2", Greater, "1.0-1ubuntu9"),
                ("5.0-4", Less, "5.0-4+deb10u1"),
                ("0", Less, "00000000000000000000000000000000001"),
                ("1.0-1~bpo1", Less, "1.0-1"),
            ],
        );
    }

    #[test]
    fn apk_orders_like_apk_tools() {
        check(
            apk,
            &[
                ("1.2.3_rc1", Less, "1.2.3"),
                ("1.2.3-r1", Less, "1.2.3-r10"),
                ("1.2.3", Less, "1.2.3-r1"),
                ("1.2.3_alpha", Less, "1.2.3_beta"),
                ("1.2.3_beta2", Less, "1.2.3_pre1"),
                ("1.2.3_pre1", Less, "1.2.3_rc1"),
                ("1.2.3_p1", Greater, "1.2.3"),
                ("1.2.3_git20240101", Greater, "1.2.3"),
                ("1.2.3a", Greater, "1.2.3"),
                ("1.2.3a", Less, "1.2.3b"),
                ("1.2.3", Greater, "1.2"),
                ("1.2.10", Greater, "1.2.9"),
                ("3.5.1-r0", Greater, "3.0.7-r3"),
                ("1.2.5-r10", Equal, "1.2.5-r10"),
                ("1.01", Less, "1.1"),
                ("1.2.3_rc1-r5", Less, "1.2.3-r0"),
            ],
        );
    }

    #[test]
    fn rpm_orders_like_rpmvercmp() {
        // Cases from rpm's tests/rpmvercmp.at.
        check(
            rpm,
            &[
                ("1.0", Equal, "1.0"),
                ("1.0", Less, "2.0"),
                ("2.0.1", Greater, "2.0"),
                ("2.0.1a", Greater, "2.0.1"),
                ("5.5p1", Less, "5.5p2"),
                ("5.5p10", Greater, "5.5p1"),
                ("10xyz", Less, "10.1xyz"),
                ("xyz10", Less, "xyz10.1"),
                ("xyz.4", Less, "8"),
                ("1.0~rc1", Less, "1.0"),
                ("1.0~rc1", Less, "1.0~rc2"),
                ("1.0~rc1~git123", Less, "1.0~rc1"),
                ("1.0^", Greater, "1.0"),
                ("1.0^git1", Less, "1.01"),
                ("1.0^git1", Greater, "1.0"),
                ("1.0^git1~pre", Less, "1.0^git1"),
                ("1:1.0", Greater, "2.0"),
                ("3.0.7-18.el9_2", Greater, "3.0.7-16.el9_2"),
                ("3.0.7-18.el9_2", Greater, "3.0.1-47.el9"),
                ("2.0", Equal, "2.0-1"),
                ("2a", Less, "2.0"),
            ],
        );
    }

    #[test]
    fn generic_orders_semver_pep440_and_maven_sensibly() {
        check(
            generic,
            &[
                ("1.0.0-rc1", Less, "1.0.0"),
                ("1.0.0-alpha", Less, "1.0.0-beta"),
                ("1.0.0", Less, "1.0.1"),
                ("1.10.0", Greater, "1.9.9"),
                ("v1.2.3", Equal, "1.2.3"),
                ("1.2.3+build5", Equal, "1.2.3"),
                ("1.0", Equal, "1.0.0"),
                ("4.1.121.Final", Equal, "4.1.121"),
                ("1.0.post1", Greater, "1.0"),
                ("1.0.post1", Less, "1.0.1"),
                ("1.0rc1", Less, "1.0"),
                ("1.0.dev1", Less, "1.0a1"),
                ("2.14.1", Less, "2.15.0"),
                ("2.17.1", Greater, "2.15.0"),
                ("6.0.2.1", Less, "6.0.3.1"),
                ("1.0-SNAPSHOT", Less, "1.0"),
                ("99999999999999999999999", Greater, "9"),
            ],
        );
    }

    #[test]
    fn hostile_versions_do_not_panic() {
        for v in [
            "", "-", ":", "~", "^", "é-ü:ö", "1:", ":1", "-r", "_", "1.2_x9", "..", "1-",
        ] {
            for scheme in [Scheme::Dpkg, Scheme::Apk, Scheme::Rpm, Scheme::Generic] {
                let _ = scheme.compare(v, "1.0");
                assert_eq!(scheme.compare(v, v), Equal, "{v} {scheme:?}");
            }
        }
    }
}

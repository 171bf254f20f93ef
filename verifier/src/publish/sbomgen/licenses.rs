//! License names as package databases write them, turned into SPDX license expressions.
//!
//! Debian's DEP-5 short names (`GPL-2+`, `Expat`, `BSD-3-clause`) are mapped to SPDX ids; so are
//! the commonest free-text names of Python metadata. An id vouch does not know becomes
//! `LicenseRef-<name>` when it comes from Debian (whose names are not SPDX's), and is kept as
//! written when the source claims SPDX already (apk, npm, `License-Expression`). Every result
//! parses with [`crate::license::LicenseExpr::parse_strict`]; anything else is `None` (SPDX's
//! NOASSERTION).

use crate::license::LicenseExpr;

/// Where a license text comes from, which decides what an unknown name becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Debian DEP-5 short names.
    Debian,
    /// Meant to be SPDX already (apk `L:`, npm `license`, Python `License-Expression`).
    Spdx,
}

/// (lower-case name, SPDX id): Debian short names, common spellings and SPDX ids for canonical case.
const KNOWN: &[(&str, &str)] = &[
    ("gpl-1", "GPL-1.0-only"),
    ("gpl-1+", "GPL-1.0-or-later"),
    ("gpl-2", "GPL-2.0-only"),
    ("gpl-2+", "GPL-2.0-or-later"),
    ("gpl-3", "GPL-3.0-only"),
    ("gpl-3+", "GPL-3.0-or-later"),
    ("lgpl-2", "LGPL-2.0-only"),
    ("lgpl-2+", "LGPL-2.0-or-later"),
    ("lgpl-2.1", "LGPL-2.1-only"),
    ("lgpl-2.1+", "LGPL-2.1-or-later"),
    ("lgpl-3", "LGPL-3.0-only"),
    ("lgpl-3+", "LGPL-3.0-or-later"),
    ("agpl-3", "AGPL-3.0-only"),
    ("agpl-3+", "AGPL-3.0-or-later"),
    ("gfdl-1.2", "GFDL-1.2-only"),
    ("gfdl-1.2+", "GFDL-1.2-or-later"),
    ("gfdl-1.3", "GFDL-1.3-only"),
    ("gfdl-1.3+", "GFDL-1.3-or-later"),
    ("gpl-1.0-only", "GPL-1.0-only"),
    ("gpl-1.0-or-later", "GPL-1.0-or-later"),
    ("gpl-2.0", "GPL-2.0-only"),
    ("gpl-2.0-only", "GPL-2.0-only"),
    ("gpl-2.0-or-later", "GPL-2.0-or-later"),
    ("gpl-2.0+", "GPL-2.0-or-later"),
    ("gpl-3.0", "GPL-3.0-only"),
    ("gpl-3.0-only", "GPL-3.0-only"),
    ("gpl-3.0-or-later", "GPL-3.0-or-later"),
    ("gpl-3.0+", "GPL-3.0-or-later"),
    ("lgpl-2.0-only", "LGPL-2.0-only"),
    ("lgpl-2.0-or-later", "LGPL-2.0-or-later"),
    ("lgpl-2.1-only", "LGPL-2.1-only"),
    ("lgpl-2.1-or-later", "LGPL-2.1-or-later"),
    ("lgpl-3.0-only", "LGPL-3.0-only"),
    ("lgpl-3.0-or-later", "LGPL-3.0-or-later"),
    ("agpl-3.0-only", "AGPL-3.0-only"),
    ("agpl-3.0-or-later", "AGPL-3.0-or-later"),
    ("bsd-2-clause", "BSD-2-Clause"),
    ("bsd-3-clause", "BSD-3-Clause"),
    ("bsd-4-clause", "BSD-4-Clause"),
    ("0bsd", "0BSD"),
    ("expat", "MIT"),
    ("mit", "MIT"),
    ("mit license", "MIT"),
    ("mit-0", "MIT-0"),
    ("x11", "X11"),
    ("isc", "ISC"),
    ("isc license", "ISC"),
    ("zlib", "Zlib"),
    ("apache-2", "Apache-2.0"),
    ("apache-2.0", "Apache-2.0"),
    ("apache 2.0", "Apache-2.0"),
    ("apache license 2.0", "Apache-2.0"),
    ("apache license, version 2.0", "Apache-2.0"),
    ("apache software license", "Apache-2.0"),
    ("apache-1.1", "Apache-1.1"),
    ("artistic", "Artistic-1.0-Perl"),
    ("artistic-1.0-perl", "Artistic-1.0-Perl"),
    ("artistic-2.0", "Artistic-2.0"),
    ("mpl-1.1", "MPL-1.1"),
    ("mpl-2.0", "MPL-2.0"),
    ("epl-1.0", "EPL-1.0"),
    ("epl-2.0", "EPL-2.0"),
    ("cc0", "CC0-1.0"),
    ("cc0-1.0", "CC0-1.0"),
    ("cc-by-4.0", "CC-BY-4.0"),
    ("cc-by-sa-4.0", "CC-BY-SA-4.0"),
    ("psf", "PSF-2.0"),
    ("psf-2", "PSF-2.0"),
    ("psf-2.0", "PSF-2.0"),
    ("python-2.0", "Python-2.0"),
    ("openssl", "OpenSSL"),
    ("curl", "curl"),
    ("bsl-1.0", "BSL-1.0"),
    ("boost-1.0", "BSL-1.0"),
    ("unlicense", "Unlicense"),
    ("wtfpl", "WTFPL"),
    ("unicode-dfs-2016", "Unicode-DFS-2016"),
    ("unicode-3.0", "Unicode-3.0"),
    ("ftl", "FTL"),
    ("libpng", "Libpng"),
    ("libpng-2.0", "libpng-2.0"),
    ("ofl-1.1", "OFL-1.1"),
    ("blueoak-1.0.0", "BlueOak-1.0.0"),
    ("afl-2.1", "AFL-2.1"),
    ("afl-3.0", "AFL-3.0"),
    ("oldap-2.8", "OLDAP-2.8"),
    ("fsful", "FSFUL"),
    ("fsfullr", "FSFULLR"),
    ("bsd-4-clause-uc", "BSD-4-Clause-UC"),
    ("sleepycat", "Sleepycat"),
    ("ncsa", "NCSA"),
    ("hpnd", "HPND"),
];

/// (exception name as Debian writes it before `exception`, SPDX exception id).
const EXCEPTIONS: &[(&str, &str)] = &[
    ("classpath", "Classpath-exception-2.0"),
    ("gcc", "GCC-exception-3.1"),
    ("autoconf", "Autoconf-exception-3.0"),
    ("bison", "Bison-exception-2.2"),
    ("font", "Font-exception-2.0"),
    ("llvm", "LLVM-exception"),
    ("linux-syscall-note", "Linux-syscall-note"),
    ("libtool", "Libtool-exception"),
    ("texinfo", "Texinfo-exception"),
];

/// Python trove classifiers (the part after `License :: `) with an obvious SPDX id.
const CLASSIFIERS: &[(&str, &str)] = &[
    ("OSI Approved :: MIT License", "MIT"),
    (
        "OSI Approved :: MIT No Attribution License (MIT-0)",
        "MIT-0",
    ),
    ("OSI Approved :: Apache Software License", "Apache-2.0"),
    ("OSI Approved :: BSD License", "LicenseRef-BSD"),
    ("OSI Approved :: ISC License (ISCL)", "ISC"),
    (
        "OSI Approved :: Python Software Foundation License",
        "PSF-2.0",
    ),
    (
        "OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)",
        "MPL-2.0",
    ),
    (
        "OSI Approved :: GNU General Public License v2 (GPLv2)",
        "GPL-2.0-only",
    ),
    (
        "OSI Approved :: GNU General Public License v2 or later (GPLv2+)",
        "GPL-2.0-or-later",
    ),
    (
        "OSI Approved :: GNU General Public License v3 (GPLv3)",
        "GPL-3.0-only",
    ),
    (
        "OSI Approved :: GNU General Public License v3 or later (GPLv3+)",
        "GPL-3.0-or-later",
    ),
    (
        "OSI Approved :: GNU Lesser General Public License v2 (LGPLv2)",
        "LGPL-2.0-only",
    ),
    (
        "OSI Approved :: GNU Lesser General Public License v2 or later (LGPLv2+)",
        "LGPL-2.0-or-later",
    ),
    (
        "OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)",
        "LGPL-3.0-only",
    ),
    (
        "OSI Approved :: GNU Lesser General Public License v3 or later (LGPLv3+)",
        "LGPL-3.0-or-later",
    ),
    (
        "OSI Approved :: GNU Affero General Public License v3",
        "AGPL-3.0-only",
    ),
    (
        "OSI Approved :: GNU Affero General Public License v3 or later (AGPLv3+)",
        "AGPL-3.0-or-later",
    ),
    ("OSI Approved :: The Unlicense (Unlicense)", "Unlicense"),
    ("OSI Approved :: zlib/libpng License", "Zlib"),
    (
        "OSI Approved :: Eclipse Public License 2.0 (EPL-2.0)",
        "EPL-2.0",
    ),
    (
        "OSI Approved :: Boost Software License 1.0 (BSL-1.0)",
        "BSL-1.0",
    ),
    (
        "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication",
        "CC0-1.0",
    ),
    ("Public Domain", "LicenseRef-Public-Domain"),
];

fn known(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    KNOWN.iter().find(|(k, _)| *k == lower).map(|(_, id)| *id)
}

/// `LicenseRef-` and the name with everything outside `[A-Za-z0-9.-]` turned into `-`.
pub fn license_ref(name: &str) -> String {
    let mut out = String::from("LicenseRef-");
    let mut last_dash = true;
    for c in name.trim().chars().take(128) {
        if c.is_ascii_alphanumeric() || c == '.' {
            out.push(c);
            last_dash = false;
        } else if !last_dash {
            out.push('-');
            last_dash = true;
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.len() == "LicenseRef".len() {
        out.push_str("-unknown");
    }
    out
}

/// One license name as an SPDX term.
fn term(name: &str, dialect: Dialect) -> String {
    if let Some(id) = known(name) {
        return id.to_owned();
    }
    let idstring = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'+')
    };
    match dialect {
        Dialect::Spdx if idstring(name) && !name.ends_with("++") => name.to_owned(),
        _ if name.starts_with("LicenseRef-") && idstring(name) => name.to_owned(),
        _ => license_ref(name),
    }
}

/// A license text as an SPDX expression; `None` when there is nothing usable.
pub fn expression(text: &str, dialect: Dialect) -> Option<String> {
    let text = text.trim();
    if text.is_empty()
        || text.len() > 1024
        || text.contains('\n')
        || matches!(
            text.to_ascii_uppercase().as_str(),
            "NOASSERTION" | "NONE" | "UNKNOWN"
        )
    {
        return None;
    }
    if text.to_ascii_uppercase().starts_with("SEE LICENSE IN") {
        return None;
    }
    if let Some(id) = known(text) {
        return Some(id.to_owned());
    }
    // DEP-5: `A or B, and C` is `(A OR B) AND C`: commas split clauses of lower precedence.
    let mut out = String::new();
    for (i, clause) in text.split(',').enumerate() {
        let mut words: Vec<&str> = clause.split_whitespace().collect();
        let mut joiner = "AND";
        if i > 0 {
            if let Some(first) = words.first() {
                if first.eq_ignore_ascii_case("or") || first.eq_ignore_ascii_case("and") {
                    joiner = if first.eq_ignore_ascii_case("or") {
                        "OR"
                    } else {
                        "AND"
                    };
                    words.remove(0);
                }
            }
        }
        let clause = clause_expression(&words, dialect)?;
        if i == 0 {
            out = clause;
        } else {
            out = format!("({out}) {joiner} ({clause})");
        }
    }
    match LicenseExpr::parse_strict(&out) {
        Ok(LicenseExpr::NoInfo(_)) => None,
        Ok(_) => Some(out),
        Err(_) => Some(license_ref(text)),
    }
}

fn clause_expression(words: &[&str], dialect: Dialect) -> Option<String> {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let upper = w.to_ascii_uppercase();
        match upper.as_str() {
            "AND" | "OR" => out.push(upper),
            "WITH" => {
                let exception = words.get(i + 1)?;
                let debian_style = words
                    .get(i + 2)
                    .is_some_and(|w| w.eq_ignore_ascii_case("exception"));
                let id = EXCEPTIONS
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(exception))
                    .map(|(_, id)| (*id).to_owned());
                match (id, debian_style) {
                    (Some(id), _) => out.push(format!("WITH {id}")),
                    (None, false) if dialect == Dialect::Spdx => {
                        out.push(format!("WITH {exception}"))
                    }
                    (None, _) => {
                        // No SPDX exception id: the licence with its exception is one unknown term.
                        let base = out.pop()?;
                        out.push(license_ref(&format!("{base}-with-{exception}-exception")));
                    }
                }
                i += if debian_style { 3 } else { 2 };
                continue;
            }
            _ => {
                let (open, rest) = split_parens(w);
                let (name, close) = split_closing(rest);
                let mut token = "(".repeat(open);
                if !name.is_empty() {
                    token.push_str(&term(name, dialect));
                }
                token.push_str(&")".repeat(close));
                out.push(token);
            }
        }
        i += 1;
    }
    (!out.is_empty()).then(|| out.join(" "))
}

fn split_parens(word: &str) -> (usize, &str) {
    let rest = word.trim_start_matches('(');
    (word.len() - rest.len(), rest)
}

fn split_closing(word: &str) -> (&str, usize) {
    let rest = word.trim_end_matches(')');
    (rest, word.len() - rest.len())
}

/// The SPDX id of a Python `License :: …` classifier, if it has an obvious one.
pub fn classifier(text: &str) -> Option<String> {
    let rest = text.trim().strip_prefix("License ::")?.trim();
    CLASSIFIERS
        .iter()
        .find(|(k, _)| *k == rest)
        .map(|(_, id)| (*id).to_owned())
        .or_else(|| {
            let last = rest.rsplit("::").next()?.trim();
            (!last.is_empty() && last != "OSI Approved").then(|| license_ref(last))
        })
}

/// Joins expressions with `AND` (every listed license applies), deduplicated in order.
pub fn all_of(expressions: Vec<String>) -> Option<String> {
    let mut unique: Vec<String> = Vec::new();
    for e in expressions {
        if !unique.contains(&e) {
            unique.push(e);
        }
    }
    match unique.len() {
        0 => None,
        1 => unique.pop(),
        _ => Some(
            unique
                .iter()
                .map(|e| {
                    if e.contains(' ') {
                        format!("({e})")
                    } else {
                        e.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(" AND "),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_short_names_become_spdx_ids() {
        let d = |t| expression(t, Dialect::Debian);
        assert_eq!(d("GPL-2+").as_deref(), Some("GPL-2.0-or-later"));
        assert_eq!(d("LGPL-2.1+").as_deref(), Some("LGPL-2.1-or-later"));
        assert_eq!(d("BSD-3-clause").as_deref(), Some("BSD-3-Clause"));
        assert_eq!(d("Expat").as_deref(), Some("MIT"));
        assert_eq!(d("Artistic").as_deref(), Some("Artistic-1.0-Perl"));
        assert_eq!(
            d("GPL-1+ or Artistic").as_deref(),
            Some("GPL-1.0-or-later OR Artistic-1.0-Perl")
        );
        assert_eq!(
            d("GPL-2+ or Artistic, and BSD-3-clause").as_deref(),
            Some("(GPL-2.0-or-later OR Artistic-1.0-Perl) AND (BSD-3-Clause)")
        );
        assert_eq!(
            d("public-domain").as_deref(),
            Some("LicenseRef-public-domain")
        );
        assert_eq!(
            d("GPL-3+ with Autoconf exception").as_deref(),
            Some("GPL-3.0-or-later WITH Autoconf-exception-3.0")
        );
        assert_eq!(
            d("GPL-2+ with OpenSSL exception").as_deref(),
            Some("LicenseRef-GPL-2.0-or-later-with-OpenSSL-exception")
        );
        assert_eq!(d("NOASSERTION"), None);
        assert_eq!(d(""), None);
    }

    #[test]
    fn spdx_dialect_keeps_unknown_ids_and_fixes_case() {
        let s = |t| expression(t, Dialect::Spdx);
        assert_eq!(s("mit").as_deref(), Some("MIT"));
        assert_eq!(
            s("(MIT OR Apache-2.0)").as_deref(),
            Some("(MIT OR Apache-2.0)")
        );
        assert_eq!(s("GPL2+ MIT").as_deref(), Some("LicenseRef-GPL2-MIT"));
        assert_eq!(s("Foo-1.0").as_deref(), Some("Foo-1.0"));
        assert_eq!(s("SEE LICENSE IN LICENSE.md"), None);
        assert_eq!(
            s("GPL-2.0-only WITH Linux-syscall-note").as_deref(),
            Some("GPL-2.0-only WITH Linux-syscall-note")
        );
    }

    #[test]
    fn results_always_parse_strictly() {
        for text in [
            "a b c",
            "((MIT",
            "MIT AND",
            "with",
            "Apache 2.0",
            "BSD (3 clause)",
            "GPL v2",
        ] {
            for dialect in [Dialect::Debian, Dialect::Spdx] {
                if let Some(e) = expression(text, dialect) {
                    assert!(LicenseExpr::parse_strict(&e).is_ok(), "{text:?} gave {e:?}");
                }
            }
        }
    }

    #[test]
    fn classifiers_and_refs() {
        assert_eq!(
            classifier("License :: OSI Approved :: MIT License").as_deref(),
            Some("MIT")
        );
        assert_eq!(
            classifier("License :: Other/Proprietary License").as_deref(),
            Some("LicenseRef-Other-Proprietary-License")
        );
        assert_eq!(classifier("License :: OSI Approved"), None);
        assert_eq!(license_ref("  "), "LicenseRef-unknown");
        assert_eq!(
            all_of(vec!["MIT".into(), "A OR B".into(), "MIT".into()]).as_deref(),
            Some("MIT AND (A OR B)")
        );
    }
}

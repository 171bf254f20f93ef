//! Glob patterns compiled with `globset`, each kind of pattern keeping only the wildcards its own
//! documentation gives it.
//!
//! Policy patterns give meaning to `*` (and, depending on the kind, `?` and `**`) and to nothing
//! else: `[`, `]`, `{`, `}` and `\` stand for themselves, because an IPv6 registry host is written
//! `[::1]:5000` and a file name may hold any of them. [`escape`] turns a pattern into globset's
//! syntax with every other special character escaped, so globset's classes and alternatives never
//! come into play.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// How globset reads the patterns of one kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// `*` and `?` stop at `/` (and `**` is the only way across).
    pub literal_separator: bool,
    /// ASCII letters match either case.
    pub case_insensitive: bool,
}

/// `text` in globset's syntax, with only the characters in `wildcards` left special.
pub(crate) fn escape(text: &str, wildcards: &[char]) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\') && !wildcards.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Compiles already escaped globs into one set that matches when any of them does. The error is
/// one line.
pub(crate) fn compile<I>(globs: I, options: Options) -> Result<GlobSet, String>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let mut set = GlobSetBuilder::new();
    for glob in globs {
        let glob = GlobBuilder::new(glob.as_ref())
            .literal_separator(options.literal_separator)
            .case_insensitive(options.case_insensitive)
            .backslash_escape(true)
            .build()
            .map_err(failed)?;
        set.add(glob);
    }
    set.build().map_err(failed)
}

fn failed(e: globset::Error) -> String {
    let reason = e.kind().to_string();
    format!(
        "cannot be compiled: {}",
        reason.split_whitespace().collect::<Vec<_>>().join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: Options = Options {
        literal_separator: true,
        case_insensitive: false,
    };

    fn set(text: &str, wildcards: &[char]) -> GlobSet {
        compile([escape(text, wildcards)], PATH).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn only_the_named_wildcards_are_special() {
        let s = set("a[bc]{d,e}\\?*", &['*']);
        assert!(s.is_match("a[bc]{d,e}\\?"));
        assert!(s.is_match("a[bc]{d,e}\\?xyz"));
        assert!(!s.is_match("abd\\?"));
        assert!(!s.is_match("a[bc]{d,e}\\x"));
        let s = set("a?", &['*', '?']);
        assert!(s.is_match("ab"));
        assert!(!s.is_match("a"));
    }

    #[test]
    fn errors_are_one_line() {
        // Past globset's size limit for one compiled pattern.
        let huge = format!("/{}", "?".repeat(200_000));
        let e = compile([huge], PATH).map(|_| ()).unwrap_err();
        assert!(e.starts_with("cannot be compiled: "), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }
}

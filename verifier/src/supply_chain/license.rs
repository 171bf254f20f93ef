//! SPDX license expressions (SPDX 2.3 annex D) and the `deny_licenses` / `allow_licenses` checks over them.
//!
//! Expressions come from SBOMs, which an attacker may write, so parsing is bounded ([`MAX_LEN`] bytes,
//! [`MAX_DEPTH`] nested parentheses) and every failure is an error naming the character where it happened.
//!
//! Two parsing modes:
//! - [`LicenseExpr::parse`] (lenient) accepts what real tools emit: operators in any case (`and`, `or`,
//!   `with`), `NONE`/`NOASSERTION` anywhere ("no license information"), and comma-separated lists such as
//!   `LGPL-2.1, GPL-2.0` (old trivy), read as `AND` with the lowest precedence, because every listed
//!   license applies.
//! - [`LicenseExpr::parse_strict`] follows the grammar: upper-case operators, no commas, `NONE` and
//!   `NOASSERTION` only as the whole expression, no `+` after a `LicenseRef-`.
//!
//! Neither mode refuses ids that are not on the SPDX license list: SBOM tools write such ids, and policy
//! patterns decide what matters. `GPLv3+` is therefore the unknown id `GPLv3` with "or later", exactly as
//! the grammar reads it; a deny list that should catch it names it (`GPLv3*`).
//!
//! The parser is ours, not the `spdx` crate's (EmbarkStudios, cargo-deny's), whose parser cannot read
//! what SBOMs carry: it refuses a `+` after an id not on its list (`LGPLv2+`, `GPLv3+`: 5 of the 139
//! distinct expressions of the fixture SBOMs), `LicenseRef-x+`, comma lists and `Or`; it reads
//! `gpl-3.0-ONLY` and `NOASSERTION` as unknown licenses, losing case rules and "no information"; it
//! keeps no id as written for a denial to quote; and its lax mode maps names by prefix (`gnu gpl v2`
//! to `GPL-3.0-only`). Its `evaluate` answers yes or no, and `evaluate_with_failures` lists every
//! refused term, even one an `OR` alternative avoided, so neither names what a denial is for:
//! [`violates_deny`] and [`satisfies_allow`] walk the tree instead. What the crate does serve is the
//! SPDX license list: which ids are GNU licenses, and how their deprecated spellings read.
//!
//! Matching ([`LicensePattern`]) is case-insensitive with `*` globs (compiled by `globset`). A license
//! written `X WITH E` matches patterns for `X` and patterns written `X WITH E`. "Or later" offers the
//! named version's terms, so `X+` matches patterns for `X` and for `X+`; for the GNU licenses of the
//! SPDX list the deprecated and current spellings are the same license (`GPL-2.0` = `GPL-2.0-only`,
//! `GPL-2.0+` = `GPL-2.0-or-later`, `GPL-2.0-with-classpath-exception` = `GPL-2.0 WITH
//! Classpath-exception-2.0`). This fails closed on deny lists: `GPL-3.0-or-later` is refused by a deny
//! of `GPL-3.0-only`, since no later GPL is known to be acceptable.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use globset::GlobSet;
use serde::{Deserialize, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::glob;

/// Longest expression accepted, in bytes.
pub const MAX_LEN: usize = 8 * 1024;
/// Deepest nesting of parentheses accepted.
pub const MAX_DEPTH: usize = 64;

/// A parsed license expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenseExpr {
    /// `NONE` or `NOASSERTION`: the document says nothing usable about the license.
    NoInfo(NoInfo),
    License(License),
    /// All terms apply (two or more).
    And(Vec<LicenseExpr>),
    /// Any one alternative may be chosen (two or more).
    Or(Vec<LicenseExpr>),
}

/// The two SPDX values that carry no license.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoInfo {
    /// `NONE`: no license (or, from some tools, none found).
    None,
    /// `NOASSERTION`: the author did not say.
    NoAssertion,
}

impl NoInfo {
    pub fn as_str(self) -> &'static str {
        match self {
            NoInfo::None => "NONE",
            NoInfo::NoAssertion => "NOASSERTION",
        }
    }
}

/// One license term: an id (`MIT`, `LicenseRef-x`, `DocumentRef-d:LicenseRef-x`), "or later", an exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct License {
    /// The id as written, without `+`.
    pub id: String,
    /// Written with a `+` suffix.
    pub or_later: bool,
    /// The exception id after `WITH`, as written.
    pub exception: Option<String>,
}

/// Why an expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("license expression is {len} bytes, over the {MAX_LEN}-byte limit")]
    TooLong { len: usize },
    #[error(
        "license expression nests parentheses deeper than {MAX_DEPTH} levels at character {column}"
    )]
    TooDeep { column: usize },
    /// `column` is 1-based and counts characters.
    #[error("invalid license expression at character {column}: {reason}")]
    Syntax { column: usize, reason: String },
}

impl ParseError {
    /// The 1-based character position the error refers to, if it has one.
    pub fn column(&self) -> Option<usize> {
        match self {
            ParseError::TooLong { .. } => None,
            ParseError::TooDeep { column } | ParseError::Syntax { column, .. } => Some(*column),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Lenient,
    Strict,
}

impl LicenseExpr {
    /// Parses leniently, accepting the legacy forms real SBOM tools write (see the module docs).
    pub fn parse(input: &str) -> std::result::Result<LicenseExpr, ParseError> {
        parse(input, Mode::Lenient)
    }

    /// Parses by the SPDX grammar only.
    pub fn parse_strict(input: &str) -> std::result::Result<LicenseExpr, ParseError> {
        parse(input, Mode::Strict)
    }

    /// For free text such as a CycloneDX `license.name` (`Expat (MIT/X11)`): the lenient parse if it
    /// succeeds, otherwise the whole trimmed text as one unknown license, so patterns can still match it
    /// and an allow list refuses it. Text over [`MAX_LEN`] is still an error.
    pub fn parse_or_name(input: &str) -> std::result::Result<LicenseExpr, ParseError> {
        match LicenseExpr::parse(input) {
            Err(ParseError::Syntax { .. }) if !input.trim().is_empty() => {
                Ok(LicenseExpr::License(License {
                    id: input.trim().to_string(),
                    or_later: false,
                    exception: None,
                }))
            }
            other => other,
        }
    }

    /// Every license term, left to right.
    pub fn licenses(&self) -> Vec<&License> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a License>) {
        match self {
            LicenseExpr::NoInfo(_) => {}
            LicenseExpr::License(l) => out.push(l),
            LicenseExpr::And(terms) | LicenseExpr::Or(terms) => {
                terms.iter().for_each(|t| t.collect(out))
            }
        }
    }

    /// Builds `And`/`Or` without single-element or directly nested same-operator nodes.
    fn join(and: bool, parts: Vec<LicenseExpr>) -> LicenseExpr {
        let mut flat = Vec::with_capacity(parts.len());
        for part in parts {
            match part {
                LicenseExpr::And(inner) if and => flat.extend(inner),
                LicenseExpr::Or(inner) if !and => flat.extend(inner),
                other => flat.push(other),
            }
        }
        match <[LicenseExpr; 1]>::try_from(flat) {
            Ok([one]) => one,
            Err(flat) if and => LicenseExpr::And(flat),
            Err(flat) => LicenseExpr::Or(flat),
        }
    }
}

impl FromStr for LicenseExpr {
    type Err = ParseError;
    fn from_str(s: &str) -> std::result::Result<Self, ParseError> {
        LicenseExpr::parse(s)
    }
}

impl fmt::Display for License {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)?;
        if self.or_later {
            f.write_str("+")?;
        }
        if let Some(e) = &self.exception {
            write!(f, " WITH {e}")?;
        }
        Ok(())
    }
}

/// Canonical form: upper-case operators, parentheses only where `OR` sits inside `AND`.
impl fmt::Display for LicenseExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LicenseExpr::NoInfo(n) => f.write_str(n.as_str()),
            LicenseExpr::License(l) => l.fmt(f),
            LicenseExpr::And(terms) | LicenseExpr::Or(terms) => {
                let and = matches!(self, LicenseExpr::And(_));
                for (i, term) in terms.iter().enumerate() {
                    if i > 0 {
                        f.write_str(if and { " AND " } else { " OR " })?;
                    }
                    if and && matches!(term, LicenseExpr::Or(_)) {
                        write!(f, "({term})")?;
                    } else {
                        term.fmt(f)?;
                    }
                }
                Ok(())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Lexer and parser

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    Open,
    Close,
    Comma,
    And,
    Or,
    With,
    /// An id (or `NONE`/`NOASSERTION`) and whether a `+` followed it.
    Word(&'a str, bool),
}

fn describe(tok: Option<&(Tok<'_>, usize)>) -> String {
    match tok.map(|t| t.0) {
        None => "end of expression".to_string(),
        Some(Tok::Open) => "'('".to_string(),
        Some(Tok::Close) => "')'".to_string(),
        Some(Tok::Comma) => "','".to_string(),
        Some(Tok::And) => "AND".to_string(),
        Some(Tok::Or) => "OR".to_string(),
        Some(Tok::With) => "WITH".to_string(),
        Some(Tok::Word(w, plus)) => format!("'{w}{}'", if plus { "+" } else { "" }),
    }
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':')
}

struct Parser<'a> {
    input: &'a str,
    mode: Mode,
    /// Tokens with their byte offsets.
    toks: Vec<(Tok<'a>, usize)>,
    pos: usize,
}

fn parse(input: &str, mode: Mode) -> std::result::Result<LicenseExpr, ParseError> {
    if input.len() > MAX_LEN {
        return Err(ParseError::TooLong { len: input.len() });
    }
    let mut p = Parser {
        input,
        mode,
        toks: Vec::new(),
        pos: 0,
    };
    p.lex()?;
    if p.toks.is_empty() {
        return Err(p.error(0, "empty license expression".to_string()));
    }
    if let [(Tok::Word(w, false), _)] = p.toks[..] {
        // NONE and NOASSERTION are valid SPDX field values on their own, in either mode.
        if let Some(n) = no_info(w, Mode::Strict) {
            return Ok(LicenseExpr::NoInfo(n));
        }
    }
    let expr = p.list(0)?;
    match p.toks.get(p.pos) {
        None => Ok(expr),
        Some(&(Tok::Close, at)) => Err(p.error(at, "')' without a matching '('".to_string())),
        Some(&(Tok::With, at)) => Err(p.error(
            at,
            "WITH may follow only a license id, and only once".to_string(),
        )),
        Some(&(_, at)) => Err(p.error(
            at,
            format!(
                "expected AND, OR or WITH, found {}",
                describe(p.toks.get(p.pos))
            ),
        )),
    }
}

fn no_info(word: &str, mode: Mode) -> Option<NoInfo> {
    let (none, noassertion) = match mode {
        Mode::Strict => (word == "NONE", word == "NOASSERTION"),
        Mode::Lenient => (
            word.eq_ignore_ascii_case("NONE"),
            word.eq_ignore_ascii_case("NOASSERTION"),
        ),
    };
    if none {
        Some(NoInfo::None)
    } else if noassertion {
        Some(NoInfo::NoAssertion)
    } else {
        None
    }
}

impl<'a> Parser<'a> {
    fn error(&self, byte: usize, reason: String) -> ParseError {
        ParseError::Syntax {
            column: self.column(byte),
            reason,
        }
    }

    fn column(&self, byte: usize) -> usize {
        self.input.get(..byte).map_or(0, |s| s.chars().count()) + 1
    }

    fn lex(&mut self) -> std::result::Result<(), ParseError> {
        let input = self.input;
        let mut chars = input.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            let tok = match c {
                c if c.is_ascii_whitespace() => continue,
                '(' => Tok::Open,
                ')' => Tok::Close,
                ',' if self.mode == Mode::Lenient => Tok::Comma,
                ',' => {
                    return Err(self.error(
                        at,
                        "comma-separated license lists are not SPDX; join the licenses with AND"
                            .to_string(),
                    ))
                }
                c if is_id_char(c) => {
                    let mut end = at + c.len_utf8();
                    while let Some(&(i, c)) = chars.peek() {
                        if !is_id_char(c) {
                            break;
                        }
                        end = i + c.len_utf8();
                        chars.next();
                    }
                    let word = &input[at..end];
                    let plus = chars.peek().is_some_and(|&(_, c)| c == '+');
                    if plus {
                        chars.next();
                    }
                    if let Some(&(i, c)) = chars.peek() {
                        if !(c.is_ascii_whitespace() || matches!(c, '(' | ')' | ',')) {
                            return Err(self.error(i, format!("unexpected character {c:?}")));
                        }
                    }
                    self.word(word, plus, at)?
                }
                '+' => {
                    return Err(self.error(at, "'+' must follow a license id directly".to_string()))
                }
                c => return Err(self.error(at, format!("unexpected character {c:?}"))),
            };
            self.toks.push((tok, at));
        }
        Ok(())
    }

    /// Classifies one word: an operator, or an id checked for its shape.
    fn word(
        &self,
        word: &'a str,
        plus: bool,
        at: usize,
    ) -> std::result::Result<Tok<'a>, ParseError> {
        for (name, tok) in [("AND", Tok::And), ("OR", Tok::Or), ("WITH", Tok::With)] {
            if word.eq_ignore_ascii_case(name) {
                if plus {
                    return Err(self.error(at, format!("'+' cannot follow the operator {name}")));
                }
                if self.mode == Mode::Strict && word != name {
                    return Err(self.error(
                        at,
                        format!("operator {word:?} must be written {name} in strict mode"),
                    ));
                }
                return Ok(tok);
            }
        }
        if word.contains(':') {
            let valid = word.split_once(':').is_some_and(|(doc, lic)| {
                starts_with_ignore_case(doc, "DocumentRef-")
                    && doc.len() > "DocumentRef-".len()
                    && starts_with_ignore_case(lic, "LicenseRef-")
                    && lic.len() > "LicenseRef-".len()
                    && !lic.contains(':')
            });
            if !valid {
                return Err(self.error(
                    at,
                    format!("{word:?}: ':' is only allowed in DocumentRef-<doc>:LicenseRef-<id>"),
                ));
            }
        }
        if self.mode == Mode::Strict && plus {
            let is_ref = word.contains(':') || starts_with_ignore_case(word, "LicenseRef-");
            if is_ref {
                return Err(self.error(at, format!("'+' cannot follow the reference {word:?}")));
            }
        }
        Ok(Tok::Word(word, plus))
    }

    fn peek(&self) -> Option<Tok<'a>> {
        self.toks.get(self.pos).map(|t| t.0)
    }

    fn here(&self) -> usize {
        self.toks
            .get(self.pos)
            .map_or(self.input.len(), |&(_, at)| at)
    }

    /// `or ("," or)*`: the lenient comma list, read as AND at the lowest precedence.
    fn list(&mut self, depth: usize) -> std::result::Result<LicenseExpr, ParseError> {
        let mut parts = vec![self.or(depth)?];
        while self.peek() == Some(Tok::Comma) {
            self.pos += 1;
            parts.push(self.or(depth)?);
        }
        Ok(LicenseExpr::join(true, parts))
    }

    fn or(&mut self, depth: usize) -> std::result::Result<LicenseExpr, ParseError> {
        let mut parts = vec![self.and(depth)?];
        while self.peek() == Some(Tok::Or) {
            self.pos += 1;
            parts.push(self.and(depth)?);
        }
        Ok(LicenseExpr::join(false, parts))
    }

    fn and(&mut self, depth: usize) -> std::result::Result<LicenseExpr, ParseError> {
        let mut parts = vec![self.primary(depth)?];
        while self.peek() == Some(Tok::And) {
            self.pos += 1;
            parts.push(self.primary(depth)?);
        }
        Ok(LicenseExpr::join(true, parts))
    }

    /// `"(" list ")"` or `id ["+"] ["WITH" exception]`.
    fn primary(&mut self, depth: usize) -> std::result::Result<LicenseExpr, ParseError> {
        let at = self.here();
        match self.peek() {
            Some(Tok::Open) => {
                if depth >= MAX_DEPTH {
                    return Err(ParseError::TooDeep {
                        column: self.column(at),
                    });
                }
                self.pos += 1;
                let inner = self.list(depth + 1)?;
                if self.peek() != Some(Tok::Close) {
                    let found = describe(self.toks.get(self.pos));
                    return Err(self.error(
                        self.here(),
                        format!(
                            "expected ')' to close the '(' at character {}, found {found}",
                            self.column(at)
                        ),
                    ));
                }
                self.pos += 1;
                if self.peek() == Some(Tok::With) {
                    return Err(self.error(
                        self.here(),
                        "WITH must follow a single license id, not a parenthesised expression"
                            .to_string(),
                    ));
                }
                Ok(inner)
            }
            Some(Tok::Word(word, plus)) => {
                self.pos += 1;
                if let Some(n) = no_info(word, self.mode) {
                    if self.mode == Mode::Strict {
                        return Err(self.error(
                            at,
                            format!("{word} may only stand alone, not inside an expression"),
                        ));
                    }
                    if plus || self.peek() == Some(Tok::With) {
                        return Err(self.error(at, format!("{word} cannot take '+' or WITH")));
                    }
                    return Ok(LicenseExpr::NoInfo(n));
                }
                let mut license = License {
                    id: word.to_string(),
                    or_later: plus,
                    exception: None,
                };
                if self.peek() == Some(Tok::With) {
                    self.pos += 1;
                    match self.peek() {
                        Some(Tok::Word(exception, false))
                            if no_info(exception, Mode::Lenient).is_none() =>
                        {
                            self.pos += 1;
                            license.exception = Some(exception.to_string());
                        }
                        _ => {
                            let found = describe(self.toks.get(self.pos));
                            return Err(self.error(
                                self.here(),
                                format!("expected an exception id after WITH, found {found}"),
                            ));
                        }
                    }
                }
                Ok(LicenseExpr::License(license))
            }
            _ => {
                let found = describe(self.toks.get(self.pos));
                Err(self.error(at, format!("expected a license id or '(', found {found}")))
            }
        }
    }
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

// ---------------------------------------------------------------------------------------------------------
// Patterns

/// One entry of `deny_licenses` / `allow_licenses`: `GPL-3.0-only`, `AGPL-*`, `GPL-2.0+`,
/// `GPL-2.0-only WITH Classpath-*`, or `NONE` / `NOASSERTION` to match packages without license
/// information. Case-insensitive; `*` matches any run of characters.
#[derive(Debug, Clone)]
pub struct LicensePattern {
    written: String,
    /// Over the license names (see [`License::names`]).
    license: GlobSet,
    /// Over the exception, for patterns written `X WITH E`.
    exception: Option<GlobSet>,
    no_info: Option<NoInfo>,
}

impl PartialEq for LicensePattern {
    fn eq(&self, other: &LicensePattern) -> bool {
        self.written == other.written
    }
}

impl Eq for LicensePattern {}

/// A license or exception glob: `*` any run of characters, ASCII letters in either case.
fn license_glob(text: &str) -> std::result::Result<GlobSet, String> {
    glob::compile(
        [glob::escape(text, &['*'])],
        glob::Options {
            literal_separator: false,
            case_insensitive: true,
        },
    )
}

impl LicensePattern {
    pub fn new(written: &str) -> Result<LicensePattern> {
        let fail = |reason: String| Error::Pattern {
            pattern: written.to_string(),
            reason,
        };
        if written.len() > 256 {
            return Err(fail("longer than 256 bytes".to_string()));
        }
        let words: Vec<&str> = written.split_ascii_whitespace().collect();
        let (license, exception) = match words[..] {
            [] => return Err(fail("empty license pattern".to_string())),
            [license] => (license, None),
            [license, with, exception] if with.eq_ignore_ascii_case("WITH") => {
                (license, Some(exception))
            }
            _ => {
                return Err(fail(
                    "expected a license id or glob, optionally followed by 'WITH <exception>'"
                        .to_string(),
                ))
            }
        };
        let check = |glob: &str, what: &str| {
            if let Some(c) = glob
                .chars()
                .find(|&c| !(is_id_char(c) || matches!(c, '*' | '+')))
            {
                return Err(fail(format!("invalid character {c:?} in {what}")));
            }
            if glob.trim_end_matches('+').contains('+') {
                return Err(fail(format!("'+' may only end the {what}")));
            }
            license_glob(glob).map_err(|e| fail(format!("{what} {e}")))
        };
        let no_info = match exception {
            None => no_info(license, Mode::Lenient),
            Some(_) => None,
        };
        Ok(LicensePattern {
            written: written.to_string(),
            license: check(license, "license id")?,
            exception: exception.map(|e| check(e, "exception id")).transpose()?,
            no_info,
        })
    }

    /// The pattern as the policy wrote it.
    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// Whether this pattern names `license`.
    pub fn matches(&self, license: &License) -> bool {
        if self.no_info.is_some() {
            return false;
        }
        let listed = Listed::find(&license.id);
        if let Some(exception) = &self.exception {
            let written = license.exception.as_deref();
            let implied = listed.and_then(|l| l.exception);
            if !written
                .into_iter()
                .chain(implied)
                .any(|e| exception.is_match(e))
            {
                return false;
            }
        }
        license
            .names(listed)
            .iter()
            .any(|n| self.license.is_match(n))
    }

    fn matches_no_info(&self, n: NoInfo) -> bool {
        self.no_info == Some(n)
    }
}

impl License {
    /// The lower-cased names this license answers to when matched against patterns (module docs),
    /// given its entry in the SPDX list.
    fn names(&self, listed: Option<&Listed>) -> Vec<String> {
        let id = self.id.to_ascii_lowercase();
        let Some(Listed {
            gnu: Some((core, later)),
            ..
        }) = listed
        else {
            return if self.or_later {
                vec![format!("{id}+"), id]
            } else {
                vec![id]
            };
        };
        let mut names = vec![core.clone(), format!("{core}-only")];
        if *later || self.or_later {
            names.push(format!("{core}+"));
            names.push(format!("{core}-or-later"));
        }
        if !names.contains(&id) {
            // A deprecated id with its exception in the name still answers to its own name.
            names.push(id);
        }
        names
    }
}

/// What the SPDX license list (the `spdx` crate's copy) says about one id.
#[derive(Debug)]
struct Listed {
    /// For a GNU license: its family and version, lower-case (`gpl-2.0`), and whether the id itself
    /// says "or later".
    gnu: Option<(String, bool)>,
    /// The exception a deprecated `…-with-…-exception` id names, lower-case.
    exception: Option<&'static str>,
}

/// The deprecated GNU ids that name a license and an exception at once, with the exception the list
/// now writes after `WITH`. The `spdx` crate flags them deprecated without saying what replaced them.
const GNU_WITH_EXCEPTION: &[(&str, &str)] = &[
    ("gpl-2.0-with-autoconf-exception", "autoconf-exception-2.0"),
    ("gpl-2.0-with-bison-exception", "bison-exception-2.2"),
    (
        "gpl-2.0-with-classpath-exception",
        "classpath-exception-2.0",
    ),
    ("gpl-2.0-with-font-exception", "font-exception-2.0"),
    ("gpl-2.0-with-gcc-exception", "gcc-exception-2.0"),
    ("gpl-3.0-with-autoconf-exception", "autoconf-exception-3.0"),
    ("gpl-3.0-with-gcc-exception", "gcc-exception-3.1"),
];

impl Listed {
    /// The list's entry for `id`, found regardless of case as SPDX 2.3 annex D asks (the crate's own
    /// lookup is case-sensitive). Ids not on the list are `None`: plain ids, compared by name only.
    fn find(id: &str) -> Option<&'static Listed> {
        static LIST: OnceLock<HashMap<String, Listed>> = OnceLock::new();
        let list = LIST.get_or_init(|| {
            // `GPL-2.0+` and its kind are list entries too; an id here never ends in `+`.
            spdx::identifiers::LICENSES
                .iter()
                .filter(|l| !l.name.ends_with('+'))
                .filter_map(|l| spdx::license_id(l.name))
                .map(|l| (l.name.to_ascii_lowercase(), Listed::new(l)))
                .collect()
        });
        if id.bytes().any(|b| b.is_ascii_uppercase()) {
            list.get(&id.to_ascii_lowercase())
        } else {
            list.get(id)
        }
    }

    fn new(l: spdx::LicenseId) -> Listed {
        let name = l.name.to_ascii_lowercase();
        if !l.is_gnu() {
            return Listed {
                gnu: None,
                exception: None,
            };
        }
        if let Some((id, exception)) = GNU_WITH_EXCEPTION.iter().find(|(id, _)| *id == name) {
            let core = id.split_once("-with-").map_or(*id, |(core, _)| core);
            return Listed {
                gnu: Some((core.to_string(), false)),
                exception: Some(exception),
            };
        }
        let (core, later) = match (name.strip_suffix("-or-later"), name.strip_suffix("-only")) {
            (Some(core), _) => (core, true),
            (None, Some(core)) => (core, false),
            (None, None) => (name.as_str(), false),
        };
        Listed {
            gnu: Some((core.to_string(), later)),
            exception: None,
        }
    }
}

impl TryFrom<String> for LicensePattern {
    type Error = Error;
    fn try_from(text: String) -> Result<Self> {
        LicensePattern::new(&text)
    }
}

impl<'de> Deserialize<'de> for LicensePattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        LicensePattern::new(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for LicensePattern {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.written)
    }
}

impl fmt::Display for LicensePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

// ---------------------------------------------------------------------------------------------------------
// Evaluation

/// `Some(license)` when every way of satisfying `expr` uses a license `deny` names: an `AND` is denied when
/// any term is, an `OR` only when every alternative is. The string names the offending license as written
/// (alternatives joined with ` OR ` when each of them is denied). `NONE`/`NOASSERTION` are denied only by
/// a pattern naming them.
pub fn violates_deny(expr: &LicenseExpr, deny: &[LicensePattern]) -> Option<String> {
    match expr {
        LicenseExpr::NoInfo(n) => deny
            .iter()
            .any(|p| p.matches_no_info(*n))
            .then(|| n.as_str().to_string()),
        LicenseExpr::License(l) => deny.iter().any(|p| p.matches(l)).then(|| l.to_string()),
        LicenseExpr::And(terms) => terms.iter().find_map(|t| violates_deny(t, deny)),
        LicenseExpr::Or(alternatives) => {
            let mut offenders: Vec<String> = Vec::new();
            for alternative in alternatives {
                let offender = violates_deny(alternative, deny)?;
                if !offenders.contains(&offender) {
                    offenders.push(offender);
                }
            }
            Some(offenders.join(" OR "))
        }
    }
}

/// `Ok` when some way of satisfying `expr` uses only licenses `allow` names, or `allow` is empty.
/// Otherwise the license that is not allowed, as written (alternatives joined with ` OR `).
/// `NONE`/`NOASSERTION` are allowed only by a pattern naming them: no license information cannot show
/// that a license is on the list.
pub fn satisfies_allow(
    expr: &LicenseExpr,
    allow: &[LicensePattern],
) -> std::result::Result<(), String> {
    if allow.is_empty() {
        return Ok(());
    }
    allowed(expr, allow)
}

fn allowed(expr: &LicenseExpr, allow: &[LicensePattern]) -> std::result::Result<(), String> {
    match expr {
        LicenseExpr::NoInfo(n) if allow.iter().any(|p| p.matches_no_info(*n)) => Ok(()),
        LicenseExpr::NoInfo(n) => Err(n.as_str().to_string()),
        LicenseExpr::License(l) if allow.iter().any(|p| p.matches(l)) => Ok(()),
        LicenseExpr::License(l) => Err(l.to_string()),
        LicenseExpr::And(terms) => terms.iter().try_for_each(|t| allowed(t, allow)),
        LicenseExpr::Or(alternatives) => {
            let mut refused: Vec<String> = Vec::new();
            for alternative in alternatives {
                match allowed(alternative, allow) {
                    Ok(()) => return Ok(()),
                    Err(e) if !refused.contains(&e) => refused.push(e),
                    Err(_) => {}
                }
            }
            Err(refused.join(" OR "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(s: &str) -> LicenseExpr {
        LicenseExpr::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn strict(s: &str) -> std::result::Result<LicenseExpr, ParseError> {
        LicenseExpr::parse_strict(s)
    }

    fn err(s: &str) -> ParseError {
        match LicenseExpr::parse(s) {
            Ok(e) => panic!("{s:?} accepted as {e:?}"),
            Err(e) => e,
        }
    }

    fn pats(list: &[&str]) -> Vec<LicensePattern> {
        list.iter()
            .map(|p| LicensePattern::new(p).unwrap_or_else(|e| panic!("{e}")))
            .collect()
    }

    fn deny(e: &str, list: &[&str]) -> Option<String> {
        violates_deny(&expr(e), &pats(list))
    }

    fn allow(e: &str, list: &[&str]) -> std::result::Result<(), String> {
        satisfies_allow(&expr(e), &pats(list))
    }

    fn lic(id: &str, or_later: bool, exception: Option<&str>) -> LicenseExpr {
        LicenseExpr::License(License {
            id: id.to_string(),
            or_later,
            exception: exception.map(str::to_string),
        })
    }

    #[test]
    fn parses_ids_refs_plus_and_with() {
        assert_eq!(expr("MIT"), lic("MIT", false, None));
        assert_eq!(expr(" GPL-2.0+ "), lic("GPL-2.0", true, None));
        assert_eq!(expr("LicenseRef-foo"), lic("LicenseRef-foo", false, None));
        assert_eq!(
            expr("DocumentRef-x:LicenseRef-y"),
            lic("DocumentRef-x:LicenseRef-y", false, None)
        );
        assert_eq!(
            expr("GPL-2.0-only WITH Classpath-exception-2.0"),
            lic("GPL-2.0-only", false, Some("Classpath-exception-2.0"))
        );
        assert_eq!(
            expr("GPL-2.0+ with Bison-exception-2.2"),
            lic("GPL-2.0", true, Some("Bison-exception-2.2"))
        );
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let e = expr("MIT OR Apache-2.0 AND BSD-3-Clause");
        assert_eq!(
            e,
            LicenseExpr::Or(vec![
                lic("MIT", false, None),
                LicenseExpr::And(vec![
                    lic("Apache-2.0", false, None),
                    lic("BSD-3-Clause", false, None)
                ]),
            ])
        );
        assert_eq!(e.to_string(), "MIT OR Apache-2.0 AND BSD-3-Clause");
        let e = expr("(MIT OR Apache-2.0) AND BSD-3-Clause");
        assert!(matches!(&e, LicenseExpr::And(t) if matches!(t[0], LicenseExpr::Or(_))));
        assert_eq!(e.to_string(), "(MIT OR Apache-2.0) AND BSD-3-Clause");
    }

    #[test]
    fn same_operators_are_flattened_and_redundant_parentheses_dropped() {
        let e = expr("((MIT)) AND (ISC AND (Zlib AND 0BSD))");
        assert_eq!(e.to_string(), "MIT AND ISC AND Zlib AND 0BSD");
        assert!(matches!(&e, LicenseExpr::And(t) if t.len() == 4));
    }

    #[test]
    fn operators_are_case_insensitive_when_lenient_only() {
        assert_eq!(
            expr("(GPLv2+ or AFL) and GPLv2+").to_string(),
            "(GPLv2+ OR AFL) AND GPLv2+"
        );
        assert_eq!(expr("MIT Or ISC").to_string(), "MIT OR ISC");
        let e = strict("MIT and ISC").unwrap_err();
        assert_eq!(e.column(), Some(5));
        assert!(e.to_string().contains("must be written AND"), "{e}");
        assert!(strict("MIT AND ISC").is_ok());
    }

    #[test]
    fn none_and_noassertion_mean_no_information() {
        assert_eq!(
            expr("NOASSERTION"),
            LicenseExpr::NoInfo(NoInfo::NoAssertion)
        );
        assert_eq!(expr("NONE"), LicenseExpr::NoInfo(NoInfo::None));
        assert_eq!(strict("NONE"), Ok(LicenseExpr::NoInfo(NoInfo::None)));
        assert_eq!(expr("none"), LicenseExpr::NoInfo(NoInfo::None));
        assert_eq!(
            expr("MIT AND NOASSERTION").to_string(),
            "MIT AND NOASSERTION"
        );
        assert!(strict("MIT AND NOASSERTION")
            .unwrap_err()
            .to_string()
            .contains("stand alone"));
        assert!(expr("NOASSERTION").licenses().is_empty());
    }

    #[test]
    fn comma_lists_are_and_when_lenient_and_refused_when_strict() {
        let e = expr("LGPL-2.1, GPL-2.0");
        assert_eq!(e.to_string(), "LGPL-2.1 AND GPL-2.0");
        // The comma binds loosest: each item may itself be an expression.
        assert_eq!(
            expr("MIT OR ISC, Zlib").to_string(),
            "(MIT OR ISC) AND Zlib"
        );
        let e = strict("LGPL-2.1, GPL-2.0").unwrap_err();
        assert_eq!(e.column(), Some(9));
        assert!(e.to_string().contains("not SPDX"), "{e}");
    }

    #[test]
    fn unknown_ids_are_ids_in_both_modes() {
        // Not on the SPDX list, but grammatical: id `GPLv3` with "or later".
        assert_eq!(expr("GPLv3+"), lic("GPLv3", true, None));
        assert_eq!(strict("GPLv3+"), Ok(lic("GPLv3", true, None)));
        assert_eq!(expr("OpenSSL"), lic("OpenSSL", false, None));
    }

    #[test]
    fn errors_name_the_position() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 1, "empty"),
            ("   ", 1, "empty"),
            (
                "MIT AND",
                8,
                "expected a license id or '(', found end of expression",
            ),
            ("MIT OR OR ISC", 8, "found OR"),
            (
                "(MIT OR ISC",
                12,
                "expected ')' to close the '(' at character 1",
            ),
            ("MIT)", 4, "without a matching '('"),
            ("MIT ISC", 5, "expected AND, OR or WITH, found 'ISC'"),
            ("MIT/X11", 4, "unexpected character '/'"),
            ("Expat (MIT/X11)", 11, "unexpected character '/'"),
            ("GPL-2.0++", 9, "unexpected character '+'"),
            ("MIT + ISC", 5, "'+' must follow a license id"),
            ("MIT WITH", 9, "expected an exception id after WITH"),
            (
                "(MIT OR ISC) WITH X",
                14,
                "WITH must follow a single license id",
            ),
            ("GPL WITH X WITH Y", 12, "WITH may follow only a license id"),
            ("MIT AND+", 5, "'+' cannot follow the operator AND"),
            ("LicenseRef-a:b", 1, "':' is only allowed"),
            ("Ünïcode", 1, "unexpected character 'Ü'"),
            ("MIT AND Ünïcode", 9, "unexpected character"),
            ("NONE+", 1, "cannot take '+'"),
        ];
        for &(input, column, reason) in cases {
            let e = err(input);
            assert_eq!(e.column(), Some(column), "{input:?}: {e}");
            assert!(e.to_string().contains(reason), "{input:?}: {e}");
        }
        assert!(strict("LicenseRef-x+")
            .unwrap_err()
            .to_string()
            .contains("cannot follow the reference"));
        assert!(expr("LicenseRef-x+").licenses()[0].or_later);
    }

    #[test]
    fn length_and_depth_are_bounded() {
        let long = format!("MIT{}", " AND MIT".repeat(MAX_LEN / 8));
        assert_eq!(err(&long), ParseError::TooLong { len: long.len() });
        let fits = format!("MIT{}", " AND ISC".repeat(MAX_LEN / 8 - 1));
        assert!(fits.len() <= MAX_LEN);
        assert_eq!(expr(&fits).licenses().len(), MAX_LEN / 8);

        let nested = |n: usize| format!("{}MIT{}", "(".repeat(n), ")".repeat(n));
        assert!(LicenseExpr::parse(&nested(MAX_DEPTH)).is_ok());
        assert_eq!(
            err(&nested(MAX_DEPTH + 1)),
            ParseError::TooDeep {
                column: MAX_DEPTH + 1
            }
        );
        // Far deeper than the limit, well within the length limit: an error, not a stack overflow.
        assert!(matches!(
            err(&"(".repeat(MAX_LEN)),
            ParseError::TooDeep { .. }
        ));
        let e = err(&nested(1000));
        assert!(e.to_string().contains("deeper than 64"), "{e}");
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "MIT",
            "GPL-2.0+ WITH Bison-exception-2.2",
            "(MIT OR Apache-2.0) AND (ISC OR 0BSD) AND Zlib",
            "MIT OR Apache-2.0 AND ISC",
            "DocumentRef-x:LicenseRef-y OR NOASSERTION",
        ] {
            assert_eq!(expr(s).to_string(), s);
            assert_eq!(expr(&expr(s).to_string()), expr(s));
        }
    }

    #[test]
    fn parse_or_name_keeps_free_text_as_one_license() {
        assert_eq!(
            LicenseExpr::parse_or_name(" Expat (MIT/X11) "),
            Ok(lic("Expat (MIT/X11)", false, None))
        );
        assert_eq!(
            LicenseExpr::parse_or_name("MIT and Python").map(|e| e.to_string()),
            Ok("MIT AND Python".to_string())
        );
        assert!(LicenseExpr::parse_or_name("").is_err());
        assert!(matches!(
            LicenseExpr::parse_or_name(&"x ".repeat(MAX_LEN)),
            Err(ParseError::TooLong { .. })
        ));
        let e = LicenseExpr::parse_or_name("GNU GPL v2").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            violates_deny(&e, &pats(&["GNU*"])),
            Some("GNU GPL v2".into())
        );
        assert!(satisfies_allow(&e, &pats(&["MIT"])).is_err());
    }

    #[test]
    fn deny_list_examples_from_the_issue() {
        let gpl3 = &["GPL-3.0-only"];
        assert_eq!(deny("MIT OR GPL-3.0-only", gpl3), None);
        assert_eq!(
            deny("MIT AND GPL-3.0-only", gpl3),
            Some("GPL-3.0-only".into())
        );
        assert_eq!(
            deny("(MIT OR AGPL-3.0-only) AND GPL-3.0-only", gpl3),
            Some("GPL-3.0-only".into())
        );
        assert_eq!(
            deny("AGPL-3.0-or-later", &["AGPL-*"]),
            Some("AGPL-3.0-or-later".into())
        );
        let classpath = "GPL-2.0-only WITH Classpath-exception-2.0";
        assert_eq!(deny(classpath, &["GPL-2.0-only"]), Some(classpath.into()));
        assert_eq!(deny(classpath, &["GPL-2.0-only WITH LLVM-exception"]), None);
        assert_eq!(
            deny(classpath, &["gpl-2.0-only with classpath-*"]),
            Some(classpath.into())
        );
        // A pattern with an exception says nothing about the license without it.
        assert_eq!(
            deny(
                "GPL-2.0-only",
                &["GPL-2.0-only WITH Classpath-exception-2.0"]
            ),
            None
        );
    }

    #[test]
    fn deny_needs_every_alternative_denied() {
        let list = &["GPL-3.0-only", "AGPL-*"];
        assert_eq!(
            deny("GPL-3.0-only OR AGPL-3.0-only", list),
            Some("GPL-3.0-only OR AGPL-3.0-only".into())
        );
        assert_eq!(deny("GPL-3.0-only OR AGPL-3.0-only OR MIT", list), None);
        assert_eq!(
            deny("(MIT AND AGPL-1.0) OR (GPL-3.0-only AND ISC)", list),
            Some("AGPL-1.0 OR GPL-3.0-only".into())
        );
        assert_eq!(deny("(MIT AND AGPL-1.0) OR ISC", list), None);
        assert_eq!(deny("MIT", &[]), None);
        assert_eq!(
            deny("LGPL-2.1, GPL-3.0-only", list),
            Some("GPL-3.0-only".into())
        );
    }

    #[test]
    fn ids_compare_case_insensitively() {
        assert_eq!(
            deny("gpl-3.0-ONLY", &["GPL-3.0-only"]),
            Some("gpl-3.0-ONLY".into())
        );
        assert_eq!(
            deny("GPL-3.0-only", &["gpl-3.0-only"]),
            Some("GPL-3.0-only".into())
        );
        assert_eq!(allow("mit", &["MIT"]), Ok(()));
    }

    #[test]
    fn gnu_spellings_and_or_later() {
        // Deprecated and current spellings are the same license.
        assert!(deny("GPL-3.0", &["GPL-3.0-only"]).is_some());
        assert!(deny("GPL-3.0-only", &["GPL-3.0"]).is_some());
        assert!(deny("GPL-2.0+", &["GPL-2.0-or-later"]).is_some());
        assert!(deny("GPL-2.0-or-later", &["GPL-2.0+"]).is_some());
        assert!(deny("LGPL-2.1+", &["LGPL-2.1-or-later"]).is_some());
        // "Or later" offers the named version: fail closed on deny, accept on allow.
        assert!(deny("GPL-3.0-or-later", &["GPL-3.0-only"]).is_some());
        assert!(allow("GPL-2.0+", &["GPL-2.0-only"]).is_ok());
        // ...but "only" is not "or later".
        assert!(deny("GPL-2.0-only", &["GPL-2.0-or-later"]).is_none());
        assert!(deny("GPL-2.0", &["GPL-2.0+"]).is_none());
        assert!(allow("GPL-2.0-only", &["GPL-2.0-or-later"]).is_err());
        // Other families and versions stay apart.
        assert!(deny("LGPL-2.1-only", &["GPL-2.1-only"]).is_none());
        assert!(deny("GPL-2.0-only", &["GPL-2.0-or-later", "GPL-3.0*"]).is_none());
        assert!(deny("GPL-2.0-only", &["GPL-2.0*"]).is_some());
        // Non-GNU ids: `X+` answers to `X` and `X+`.
        assert!(deny("MPL-1.1+", &["MPL-1.1"]).is_some());
        assert!(deny("MPL-1.1", &["MPL-1.1+"]).is_none());
        assert!(deny("GPLv3+", &["GPLv3*"]).is_some());
        assert!(deny("GPLv3+", &["GPL-3.0*"]).is_none());
    }

    #[test]
    fn gnu_licenses_are_those_of_the_spdx_list() {
        // Found regardless of case, as SPDX asks.
        assert!(deny("gpl-2.0", &["GPL-2.0-only"]).is_some());
        assert!(deny("Lgpl-2.1+", &["lgpl-2.1-OR-LATER"]).is_some());
        // GFDL variants are GNU licenses too: "or later" offers the named version.
        assert!(deny(
            "GFDL-1.3-invariants-or-later",
            &["GFDL-1.3-invariants-only"]
        )
        .is_some());
        assert!(deny("GFDL-1.3-invariants", &["GFDL-1.3-invariants-only"]).is_some());
        assert!(deny("GFDL-1.3-invariants-only", &["GFDL-1.3-only"]).is_none());
        assert!(allow("AGPL-1.0", &["AGPL-1.0-only"]).is_ok());
        // An id that only looks like one is a plain id: compared by its name alone.
        assert!(deny("GPL-4.0", &["GPL-4.0-only"]).is_none());
        assert!(deny("GPL-4.0", &["GPL-4.0*"]).is_some());
    }

    #[test]
    fn deprecated_ids_with_an_exception_keep_the_license_they_modify() {
        let id = "GPL-2.0-with-classpath-exception";
        assert_eq!(deny(id, &["GPL-2.0-only"]), Some(id.into()));
        assert_eq!(deny(id, &["gpl-2.0"]), Some(id.into()));
        assert_eq!(
            deny(id, &["GPL-2.0-with-classpath-exception"]),
            Some(id.into())
        );
        assert_eq!(
            deny(id, &["GPL-2.0-only WITH Classpath-exception-2.0"]),
            Some(id.into())
        );
        assert_eq!(
            deny(id, &["GPL-2.0-only WITH classpath-*"]),
            Some(id.into())
        );
        assert_eq!(deny(id, &["GPL-2.0-only WITH LLVM-exception"]), None);
        assert_eq!(deny(id, &["GPL-3.0-only", "GPL-2.0-or-later"]), None);
        assert_eq!(allow(id, &["GPL-2.0-only"]), Ok(()));
        assert_eq!(
            deny(
                "GPL-3.0-with-GCC-exception",
                &["GPL-3.0-only WITH GCC-exception-3.1"]
            ),
            Some("GPL-3.0-with-GCC-exception".into())
        );
        assert_eq!(
            deny(
                "GPL-3.0-with-GCC-exception",
                &["GPL-3.0-only WITH GCC-exception-2.0"]
            ),
            None
        );
    }

    #[test]
    fn every_deprecated_gnu_id_with_an_exception_is_known() {
        let listed: Vec<String> = spdx::identifiers::LICENSES
            .iter()
            .filter(|l| l.name.contains("-with-") && l.flags & spdx::flags::IS_GNU != 0)
            .map(|l| l.name.to_ascii_lowercase())
            .collect();
        assert!(!listed.is_empty());
        for id in &listed {
            assert!(
                GNU_WITH_EXCEPTION.iter().any(|(known, _)| known == id),
                "{id} is not in GNU_WITH_EXCEPTION"
            );
        }
        for (_, exception) in GNU_WITH_EXCEPTION {
            assert!(
                spdx::identifiers::EXCEPTIONS
                    .iter()
                    .any(|e| e.name.eq_ignore_ascii_case(exception)),
                "{exception} is not an SPDX exception"
            );
        }
    }

    #[test]
    fn license_globs_treat_only_star_as_special() {
        assert!(LicensePattern::new("GPL-[23].0").is_err());
        assert!(LicensePattern::new("GPL-{2,3}.0").is_err());
        assert!(LicensePattern::new("GPL-?.0").is_err());
        assert!(glob_match("gpl-*.0", "GPL-3.0"));
        assert!(glob_match("*", "anything-at.all:x"));
        assert!(!glob_match("a.b", "axb"));
        assert!(glob_match("gpl-2.0+", "gpl-2.0+"));
        assert!(!glob_match("gpl-2.0+", "gpl-2.00"));
    }

    #[test]
    fn allow_list_examples_from_the_issue() {
        let list = &["MIT", "Apache-2.0"];
        assert_eq!(allow("MIT OR GPL-3.0-only", list), Ok(()));
        assert_eq!(
            allow("MIT AND GPL-3.0-only", list),
            Err("GPL-3.0-only".into())
        );
        assert_eq!(allow("Apache-2.0 AND MIT", list), Ok(()));
        assert_eq!(
            allow("GPL-3.0-only OR ISC", list),
            Err("GPL-3.0-only OR ISC".into())
        );
        assert_eq!(allow("(GPL-3.0-only OR MIT) AND Apache-2.0", list), Ok(()));
        assert_eq!(allow("GPL-3.0-only AND ISC", &[]), Ok(()));
        assert_eq!(allow("Apache-2.0 WITH LLVM-exception", list), Ok(()));
        assert!(allow(
            "Apache-2.0 WITH LLVM-exception",
            &["Apache-2.0 WITH Classpath-*"]
        )
        .is_err());
    }

    #[test]
    fn no_information_is_never_denied_nor_allowed_unless_named() {
        assert_eq!(deny("NOASSERTION", &["*"]), None);
        assert_eq!(
            deny("NOASSERTION", &["NOASSERTION"]),
            Some("NOASSERTION".into())
        );
        assert_eq!(deny("NONE", &["noassertion"]), None);
        assert_eq!(allow("NOASSERTION", &["MIT"]), Err("NOASSERTION".into()));
        assert_eq!(allow("NONE", &["MIT", "NONE"]), Ok(()));
        assert_eq!(allow("NOASSERTION", &[]), Ok(()));
        assert_eq!(allow("MIT OR NOASSERTION", &["MIT"]), Ok(()));
        assert_eq!(deny("MIT", &["*"]), Some("MIT".into()));
    }

    #[test]
    fn patterns_are_validated() {
        for bad in [
            "",
            "  ",
            "MIT OR ISC",
            "MIT WITH",
            "A/B",
            "GPL+2",
            "MIT WITH X+Y",
        ] {
            let e = LicensePattern::new(bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid pattern"), "{bad:?}: {e}");
        }
        assert_eq!(
            LicensePattern::new("GPL-2.0+").map(|p| p.to_string()).ok(),
            Some("GPL-2.0+".into())
        );
        let parsed: Vec<LicensePattern> =
            serde_json::from_str(r#"["AGPL-*", "GPL-2.0-only WITH Classpath-exception-2.0"]"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.len(), 2);
        assert!(serde_json::from_str::<Vec<LicensePattern>>(r#"["a b c d"]"#).is_err());
        assert_eq!(
            serde_json::to_string(&parsed[0]).ok().as_deref(),
            Some(r#""AGPL-*""#)
        );
    }

    fn glob_match(pattern: &str, text: &str) -> bool {
        license_glob(pattern)
            .unwrap_or_else(|e| panic!("{pattern}: {e}"))
            .is_match(text)
    }

    #[test]
    fn globs() {
        assert!(glob_match("agpl-*", "agpl-3.0-or-later"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*-only", "gpl-2.0-only"));
        assert!(glob_match("g*l-*-only", "gpl-2.0-only"));
        assert!(!glob_match("g*l-*-only", "gpl-2.0-or-later"));
        assert!(!glob_match("mit", "mit-0"));
        assert!(!glob_match("agpl-*", "gpl-3.0"));
        // A pathological glob finishes quickly.
        let text = "a".repeat(4000);
        assert!(!glob_match(&format!("{}b", "*a".repeat(100)), &text));
    }

    /// Every license string the fixture SBOMs carry (SPDX `licenseConcluded`/`licenseDeclared`/
    /// `licenseInfoFromFiles`, CycloneDX `license.id` and `expression`) parses leniently; CycloneDX
    /// `license.name` and the malformed trivy document's comma lists never panic.
    #[test]
    fn fixture_license_strings_parse() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures");
        let mut expressions = Vec::new();
        let mut names = Vec::new();
        for dir in ["sbom/spdx", "sbom/cyclonedx"] {
            let entries =
                std::fs::read_dir(root.join(dir)).unwrap_or_else(|e| panic!("{dir}: {e}"));
            for entry in entries {
                let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
                let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
                let doc: serde_json::Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                collect_license_strings(&doc, &mut expressions, &mut names);
            }
        }
        assert!(expressions.len() > 1000, "only {} found", expressions.len());
        for s in &expressions {
            expr(s);
        }
        for s in &names {
            let _ = LicenseExpr::parse(s);
            LicenseExpr::parse_or_name(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        }
        // Values named in SOURCES.md.
        for (s, shown) in [
            ("MPL-2.0 AND MIT", "MPL-2.0 AND MIT"),
            ("GPL-2.0-or-later AND NIST-PD", "GPL-2.0-or-later AND NIST-PD"),
            ("OpenSSL", "OpenSSL"),
            ("GPLv3+", "GPLv3+"),
            ("(GPLv2+ or AFL) and GPLv2+", "(GPLv2+ OR AFL) AND GPLv2+"),
            (
                "GPL-2.0-only AND GPL-2.0-or-later AND GPL-3.0-or-later AND LGPLv2+ AND BSD-3-Clause WITH advertising AND Unlicense",
                "GPL-2.0-only AND GPL-2.0-or-later AND GPL-3.0-or-later AND LGPLv2+ AND BSD-3-Clause WITH advertising AND Unlicense",
            ),
            (
                "(LicenseRef-8 OR LicenseRef-0 OR LicenseRef-MPL) AND (LicenseRef-Netscape OR LicenseRef-0 OR LicenseRef-8)",
                "(LicenseRef-8 OR LicenseRef-0 OR LicenseRef-MPL) AND (LicenseRef-Netscape OR LicenseRef-0 OR LicenseRef-8)",
            ),
        ] {
            assert!(expressions.iter().chain(&names).any(|e| e == s), "{s:?} not in fixtures");
            assert_eq!(expr(s).to_string(), shown);
        }
        assert_eq!(deny("GPL-3.0-or-later OR Artistic", &["GPL-*"]), None);

        let malformed =
            root.join("malformed/trivy_vmware-log-intelligence-fluentd_invalid.spdx22.json");
        let text = std::fs::read_to_string(&malformed).unwrap_or_else(|e| panic!("{e}"));
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        let (mut lists, mut unused) = (Vec::new(), Vec::new());
        collect_license_strings(&doc, &mut lists, &mut unused);
        let parsed = lists
            .iter()
            .filter(|s| LicenseExpr::parse(s).is_ok())
            .count();
        assert!(
            parsed > 0 && parsed < lists.len(),
            "{parsed} of {}",
            lists.len()
        );
        assert!(lists
            .iter()
            .filter(|s| s.contains(','))
            .all(|s| strict(s).is_err()));
        assert_eq!(
            deny("LGPL-2.1, GPL-2.0", &["GPL-2.0-only"]),
            Some("GPL-2.0".into())
        );
    }

    fn collect_license_strings(
        value: &serde_json::Value,
        expressions: &mut Vec<String>,
        names: &mut Vec<String>,
    ) {
        use serde_json::Value;
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        (
                            "licenseConcluded" | "licenseDeclared" | "expression",
                            Value::String(s),
                        ) => expressions.push(s.clone()),
                        ("licenseInfoFromFiles" | "licenseInfoInFiles", Value::Array(items)) => {
                            expressions
                                .extend(items.iter().filter_map(Value::as_str).map(String::from))
                        }
                        ("license", Value::Object(l)) => {
                            if let Some(id) = l.get("id").and_then(Value::as_str) {
                                expressions.push(id.to_string());
                            }
                            if let Some(name) = l.get("name").and_then(Value::as_str) {
                                names.push(name.to_string());
                            }
                        }
                        _ => collect_license_strings(v, expressions, names),
                    }
                }
            }
            Value::Array(items) => items
                .iter()
                .for_each(|v| collect_license_strings(v, expressions, names)),
            _ => {}
        }
    }
}

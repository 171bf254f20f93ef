//! SBOM policy: a verify rule's `[rule.sbom]` ([`SbomRequirement`]) evaluated over the attestations
//! found for an image ([`evaluate`]). Pure: no network, no clock but the `now` it is given.
//!
//! Which SBOM is evaluated: attestations whose predicate is SPDX or CycloneDX in one of `formats`,
//! signed by one of the rule's authorities (or unsigned, only with `allow_unsigned`), that parse.
//! Of several, the newest by creation time (on a tie, the later in the list), a signed one before
//! any unsigned one. Then, in order:
//! `min_fields`, licenses, `deny_packages`, vulnerabilities, `max_age_days`.
//!
//! - Licenses: each license expression of each package ([`crate::license`]). `MIT OR GPL-3.0-only`
//!   passes a deny list naming GPL, `MIT AND GPL-3.0-only` does not. With `allow_licenses`, a
//!   package without license information fails.
//! - `deny_packages` ([`PackageMatcher`]) compares the package's purl; a package without a purl
//!   matches no matcher (the summary says how many were not checked).
//! - Vulnerabilities come from the evaluated SBOM (CycloneDX `vulnerabilities`, less those whose
//!   analysis is `not_affected`, `false_positive` or `resolved`) and from cosign vulnerability
//!   attestations (Trivy, Grype or CycloneDX results), signed, or unsigned with `allow_unsigned`.
//!   They still apply when no SBOM counted and `require = false`. Signed OpenVEX statements clear
//!   them ([`vex`]; unsigned VEX never counts), then `ignore` entries until their `until`. What is
//!   left fails on `deny_cves` and at or above `deny_severity`; severity `unknown` never reaches it.
//!
//! When no SBOM counts, `require = true` fails with what was found instead (unsigned ones, other
//! formats, unreadable ones, each unreadable one with its reason); `require = false` only notes it
//! in the summary. An unreadable SBOM beside one that parses is only noted.
//!
//! Every failure is one line naming the evidence; each kind lists at most [`MAX_LISTED`] lines and
//! then counts the rest.

pub mod purl;
mod requirement;
#[cfg(test)]
mod tests;
pub mod version;
mod vex;
mod vuln;

use std::collections::{HashMap, HashSet};

use time::OffsetDateTime;

pub use purl::{PackageMatcher, Purl};
pub use requirement::{describe, parse_format, parse_severity, Ignore, MinField, SbomRequirement};

use crate::attestation::{Attestation, PredicateKind, Signer};
use crate::license::{satisfies_allow, violates_deny, LicenseExpr, LicensePattern};
use crate::sbom::{self, Format, Limits, Package, Sbom, Severity};
use vuln::{dedup_in_order, label, push_unique, Finding};

/// Failure lines listed per kind before the rest are only counted.
pub const MAX_LISTED: usize = 5;

/// The image the attestations are about.
#[derive(Debug, Clone, Copy)]
pub struct SbomContext<'a> {
    /// `sha256:<hex>`.
    pub image_digest: &'a str,
    pub repository: &'a str,
}

/// The outcome of [`evaluate`].
#[derive(Debug, Clone, PartialEq)]
pub struct SbomVerdict {
    /// Every reason the SBOM rule fails, one line each, specific: e.g.
    /// `license GPL-3.0-only of package bash 5.2.15 is denied (deny_licenses "GPL-*")`,
    /// `package pkg:deb/debian/openssl@3.0.2 is denied (deny_packages "pkg:deb/debian/openssl@<3.0.7")`,
    /// `CVE-2021-44228 (critical) in log4j-core 2.14.1 is at or above deny_severity "critical"`,
    /// `missing minimum fields: supplier (12 packages, e.g. musl), purl (3 packages, e.g. ...)`,
    /// `no signed SBOM for sha256:...; found: 1 unsigned (allow_unsigned = false)`,
    /// `SBOM is 120 days old (max_age_days 90)`.
    pub failures: Vec<String>,
    /// The SBOM that was evaluated (None when none counted).
    pub sbom: Option<Sbom>,
    /// `Attestation::digest` of it.
    pub sbom_digest: Option<String>,
    /// Where it came from and who signed it, for logs: e.g.
    /// `spdx 2.3, 14 packages, signed by release (key ...), from <origin>`, then notes on what did
    /// not count, separated by `; `.
    pub summary: String,
    /// Vulnerabilities in effect after VEX and ignore (for Rego input and reports).
    pub vulnerabilities: Vec<sbom::Vulnerability>,
    /// Vulnerability ids cleared, and by what (`CVE-x cleared by OpenVEX not_affected (...)`,
    /// `CVE-y ignored until 2027-01-01`).
    pub cleared: Vec<String>,
}

impl SbomVerdict {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Evaluates `req` for the image `ctx` over `attestations` (already verified against the rule's
/// authorities, or marked unsigned) at time `now`.
pub fn evaluate(
    req: &SbomRequirement,
    ctx: &SbomContext<'_>,
    attestations: &[Attestation],
    limits: &Limits,
    now: OffsetDateTime,
) -> SbomVerdict {
    let mut failures = Vec::new();
    let mut notes = Vec::new();
    let chosen = choose(req, ctx, attestations, limits, &mut failures, &mut notes);

    let mut cleared = Vec::new();
    let mut findings = Vec::new();
    let head = match &chosen {
        Some((a, sbom)) => {
            min_fields(req, sbom, &mut failures);
            licenses(req, sbom, &mut failures);
            packages(req, sbom, &mut failures, &mut notes);
            let by_id = vuln::index(sbom);
            findings = vuln::from_sbom(sbom, &by_id, "SBOM", &mut cleared);
            format!(
                "{} {}, {} packages, {}, from {}",
                sbom.format,
                sbom.spec_version,
                sbom.packages.len(),
                signer(a),
                a.origin
            )
        }
        None => "no SBOM evaluated".to_string(),
    };
    let from_sbom = findings.len();
    collect_reports(
        req,
        attestations,
        limits,
        &mut findings,
        &mut cleared,
        &mut notes,
    );
    if !findings.is_empty() {
        notes.push(format!(
            "{} vulnerabilities reported ({from_sbom} in the SBOM)",
            findings.len()
        ));
    }
    let vex = collect_vex(attestations, &mut notes);
    let digest_hex = ctx
        .image_digest
        .strip_prefix("sha256:")
        .unwrap_or(ctx.image_digest)
        .to_ascii_lowercase();
    let remaining = clear(
        req,
        findings,
        &vex,
        &digest_hex,
        now,
        &mut cleared,
        &mut notes,
    );
    vulnerability_failures(req, &remaining, &mut failures);

    if let (Some(max), Some((_, sbom))) = (req.max_age_days, &chosen) {
        match sbom.created {
            Some(created) => {
                let days = (now - created).whole_days();
                if days > i64::from(max) {
                    failures.push(format!("SBOM is {days} days old (max_age_days {max})"));
                }
            }
            None => failures.push(format!(
                "SBOM states no creation time, so its age cannot be checked (max_age_days {max})"
            )),
        }
    }

    let mut seen = HashSet::new();
    let vulnerabilities = remaining
        .into_iter()
        .map(|f| sbom::Vulnerability {
            id: f.id,
            severity: f.severity,
            affects: f.affects.into_iter().map(|a| a.reference).collect(),
            analysis: f.analysis,
        })
        .filter(|v| seen.insert((v.id.clone(), v.affects.clone())))
        .collect();
    let summary = std::iter::once(head)
        .chain(notes)
        .collect::<Vec<_>>()
        .join("; ");
    let (sbom_digest, sbom) = match chosen {
        Some((a, sbom)) => (Some(a.digest.clone()), Some(sbom)),
        None => (None, None),
    };
    dedup_in_order(&mut cleared);
    SbomVerdict {
        failures,
        sbom,
        sbom_digest,
        summary,
        vulnerabilities,
        cleared,
    }
}

fn signer(a: &Attestation) -> String {
    match &a.signer {
        Signer::Authority(who) => format!("signed by {who}"),
        Signer::Unsigned => "unsigned (allow_unsigned)".to_string(),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Picks the SBOM to evaluate; when none counts, says what was found.
fn choose<'a>(
    req: &SbomRequirement,
    ctx: &SbomContext<'_>,
    attestations: &'a [Attestation],
    limits: &Limits,
    failures: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Option<(&'a Attestation, Sbom)> {
    let mut unsigned = 0;
    let mut other_formats: Vec<Format> = Vec::new();
    let mut unreadable = Vec::new();
    let mut parsed: Vec<(usize, &Attestation, Sbom)> = Vec::new();
    for (i, a) in attestations.iter().enumerate() {
        let format = match a.kind() {
            Some(PredicateKind::Spdx) => Format::Spdx,
            Some(PredicateKind::CycloneDx) => Format::CycloneDx,
            _ => continue,
        };
        if !req.formats.contains(&format) {
            other_formats.push(format);
            continue;
        }
        if !a.is_signed() && !req.allow_unsigned {
            unsigned += 1;
            continue;
        }
        match sbom::parse_predicate(&a.predicate, limits) {
            Ok(s) if !req.formats.contains(&s.format) => other_formats.push(s.format),
            Ok(s) => parsed.push((i, a, s)),
            Err(e) => unreadable.push(format!("SBOM from {} could not be read: {e}", a.origin)),
        }
    }
    let others = parsed.len().saturating_sub(1);
    // A signed SBOM always beats an unsigned one: with allow_unsigned, anyone who can push to the
    // registry could otherwise hide the signed SBOM behind a newer unsigned one.
    let chosen = parsed
        .into_iter()
        .max_by_key(|(i, a, s)| (a.is_signed(), s.created, *i))
        .map(|(_, a, s)| (a, s));
    if others > 0 {
        notes.push(format!(
            "{} not evaluated (the newest counts)",
            plural(others, "older SBOM", "older SBOMs")
        ));
    }
    let mut found = Vec::new();
    if unsigned > 0 {
        found.push(format!("{unsigned} unsigned (allow_unsigned = false)"));
    }
    if !other_formats.is_empty() {
        let mut names: Vec<&str> = Vec::new();
        for f in &other_formats {
            if !names.contains(&f.as_str()) {
                names.push(f.as_str());
            }
        }
        let accepted: Vec<String> = req
            .formats
            .iter()
            .map(|f| format!("\"{}\"", f.as_str()))
            .collect();
        found.push(format!(
            "{} {} (formats = [{}])",
            other_formats.len(),
            names.join("/"),
            accepted.join(", ")
        ));
    }
    if !unreadable.is_empty() {
        found.push(format!("{} unreadable", unreadable.len()));
    }
    if chosen.is_some() {
        if !found.is_empty() {
            notes.push(format!("also found: {}", found.join(", ")));
        }
        notes.extend(unreadable);
        return chosen;
    }
    let what = if req.allow_unsigned {
        "no SBOM"
    } else {
        "no signed SBOM"
    };
    let found = if found.is_empty() {
        "none".to_string()
    } else {
        found.join(", ")
    };
    let line = format!("{what} for {}; found: {found}", ctx.image_digest);
    if req.require {
        failures.push(line);
        listed(failures, unreadable, "unreadable SBOMs");
    } else {
        notes.push(format!("{line} (require = false)"));
        notes.extend(unreadable);
    }
    None
}

/// Adds up to [`MAX_LISTED`] distinct `lines`, then one line counting the rest as `more`.
fn listed(failures: &mut Vec<String>, lines: Vec<String>, more: &str) {
    let mut seen = HashSet::new();
    let distinct: Vec<String> = lines
        .into_iter()
        .filter(|l| seen.insert(l.clone()))
        .collect();
    let extra = distinct.len().saturating_sub(MAX_LISTED);
    failures.extend(distinct.into_iter().take(MAX_LISTED));
    if extra > 0 {
        failures.push(format!("and {extra} more {more}"));
    }
}

fn package_label(p: &Package) -> String {
    if p.name.trim().is_empty() {
        p.id.clone()
    } else {
        label(&p.name, p.version.as_deref())
    }
}

fn absent(v: Option<&str>) -> bool {
    v.is_none_or(|s| {
        let s = s.trim();
        s.is_empty() || s.eq_ignore_ascii_case("NOASSERTION") || s.eq_ignore_ascii_case("NONE")
    })
}

fn min_fields(req: &SbomRequirement, sbom: &Sbom, failures: &mut Vec<String>) {
    let mut missing = Vec::new();
    for &field in &req.min_fields {
        let lacks: fn(&Package) -> bool = match field {
            MinField::Supplier => |p| absent(p.supplier.as_deref()),
            MinField::Name => |p| absent(Some(&p.name)),
            MinField::Version => |p| absent(p.version.as_deref()),
            MinField::Purl => |p| absent(p.purl.as_deref()),
            MinField::Relationships => {
                if sbom.relationships.is_empty() {
                    missing.push("relationships (the document states none)".to_string());
                }
                continue;
            }
            MinField::Author => {
                if sbom.authors.is_empty() {
                    missing.push(
                        "author (no person or organisation; the tools that wrote it do not count)"
                            .to_string(),
                    );
                }
                continue;
            }
            MinField::Timestamp => {
                if sbom.created.is_none() {
                    missing.push("timestamp (no creation time)".to_string());
                }
                continue;
            }
        };
        // CycloneDX `file` components are files, not components NTIA asks a supplier or purl of.
        let mut lacking = sbom
            .packages
            .iter()
            .filter(|p| p.kind.as_deref() != Some("file"))
            .filter(|p| lacks(p));
        if let Some(first) = lacking.next() {
            let n = 1 + lacking.count();
            missing.push(format!(
                "{} ({}, e.g. {})",
                field.as_str(),
                plural(n, "package", "packages"),
                package_label(first)
            ));
        }
    }
    if !missing.is_empty() {
        failures.push(format!("missing minimum fields: {}", missing.join(", ")));
    }
}

fn quoted(patterns: &[&LicensePattern]) -> String {
    patterns
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn licenses(req: &SbomRequirement, sbom: &Sbom, failures: &mut Vec<String>) {
    let (deny, allow) = (&req.deny_licenses, &req.allow_licenses);
    if deny.is_empty() && allow.is_empty() {
        return;
    }
    // Real SBOMs repeat a few expressions thousands of times: parse each once.
    let mut parsed: HashMap<&str, Result<LicenseExpr, String>> = HashMap::new();
    // Text that is not an expression (`GPL-3.0-only AND`, `(GPL-3.0-only`, `GPL-3.0-only/MIT`) is read
    // as one unknown license name; a denied license among its words still denies it.
    let mut free_text_denied: HashMap<&str, Option<String>> = HashMap::new();
    let (mut denied, mut refused, mut unreadable) = (Vec::new(), Vec::new(), Vec::new());
    for p in &sbom.packages {
        if p.licenses.is_empty() {
            if !allow.is_empty() {
                refused.push(format!(
                    "package {} states no license (allow_licenses needs one)",
                    package_label(p)
                ));
            }
            continue;
        }
        for text in &p.licenses {
            let expr = parsed
                .entry(text.as_str())
                .or_insert_with(|| LicenseExpr::parse_or_name(text).map_err(|e| e.to_string()));
            let expr = match expr {
                Ok(expr) => expr,
                Err(e) => {
                    unreadable.push(format!(
                        "license of package {} could not be read: {e}",
                        package_label(p)
                    ));
                    continue;
                }
            };
            if !deny.is_empty() {
                let words = free_text_denied
                    .entry(text.as_str())
                    .or_insert_with(|| denied_word(text, deny));
                if let Some((word, pattern)) = words.as_ref().and_then(|w| w.split_once('\0')) {
                    denied.push(format!(
                        "license {word} (in {text:?}, not a valid expression) of package {} is denied (deny_licenses \"{pattern}\")",
                        package_label(p)
                    ));
                    continue;
                }
            }
            if let Some(offender) = violates_deny(expr, deny) {
                let terms = expr.licenses();
                let patterns: Vec<&LicensePattern> = deny
                    .iter()
                    .filter(|d| {
                        violates_deny(expr, std::slice::from_ref(*d)).is_some()
                            || terms.iter().any(|l| d.matches(l))
                    })
                    .collect();
                denied.push(format!(
                    "license {offender} of package {} is denied (deny_licenses {})",
                    package_label(p),
                    quoted(&patterns)
                ));
            }
            if let Err(offender) = satisfies_allow(expr, allow) {
                refused.push(format!(
                    "license {offender} of package {} is not in allow_licenses",
                    package_label(p)
                ));
            }
        }
    }
    listed(failures, denied, "packages with denied licenses");
    listed(
        failures,
        refused,
        "packages with licenses allow_licenses does not name",
    );
    listed(failures, unreadable, "unreadable license expressions");
}

/// For license text that does not parse as an SPDX expression: the first word of it that a deny
/// pattern matches, and that pattern (joined by a NUL). Without a valid expression there is no
/// `OR` to choose, so any denied license named in the text denies.
fn denied_word(text: &str, deny: &[LicensePattern]) -> Option<String> {
    if LicenseExpr::parse(text).is_ok() {
        return None;
    }
    text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '+' | ':')))
        .filter(|w| !w.is_empty())
        .find_map(|word| match LicenseExpr::parse(word) {
            Ok(LicenseExpr::License(l)) => deny
                .iter()
                .find(|p| p.matches(&l))
                .map(|p| format!("{word}\0{p}")),
            _ => None,
        })
}

fn packages(
    req: &SbomRequirement,
    sbom: &Sbom,
    failures: &mut Vec<String>,
    notes: &mut Vec<String>,
) {
    if req.deny_packages.is_empty() {
        return;
    }
    let mut denied = Vec::new();
    let mut unchecked = 0;
    for p in &sbom.packages {
        let Some(purl) = p.purl.as_deref().and_then(|u| Purl::parse(u).ok()) else {
            unchecked += 1;
            continue;
        };
        if let Some(m) = req.deny_packages.iter().find(|m| m.matches(&purl)) {
            denied.push(format!("package {purl} is denied (deny_packages \"{m}\")"));
        }
    }
    listed(failures, denied, "denied packages");
    if unchecked > 0 {
        notes.push(format!(
            "{} without a readable purl not checked against deny_packages",
            plural(unchecked, "package", "packages")
        ));
    }
}

/// Findings of the vulnerability attestations that count.
fn collect_reports(
    req: &SbomRequirement,
    attestations: &[Attestation],
    limits: &Limits,
    findings: &mut Vec<Finding>,
    cleared: &mut Vec<String>,
    notes: &mut Vec<String>,
) {
    for a in attestations
        .iter()
        .filter(|a| a.kind() == Some(PredicateKind::Vuln))
    {
        if !a.is_signed() && !req.allow_unsigned {
            notes.push(format!(
                "unsigned vulnerability report from {} ignored (allow_unsigned = false)",
                a.origin
            ));
            continue;
        }
        match vuln::from_vuln_predicate(&a.predicate, limits) {
            Ok(report) => {
                notes.push(format!(
                    "{} report from {} ({}): {}",
                    report.scanner,
                    a.origin,
                    signer(a),
                    plural(report.findings.len(), "vulnerability", "vulnerabilities")
                ));
                findings.extend(report.findings);
                for line in report.cleared {
                    push_unique(cleared, line);
                }
            }
            Err(e) => notes.push(format!(
                "vulnerability report from {} contributes nothing: {e}",
                a.origin
            )),
        }
    }
}

/// Statements of the signed OpenVEX attestations.
fn collect_vex(attestations: &[Attestation], notes: &mut Vec<String>) -> vex::Vex {
    let mut vex = vex::Vex::default();
    for a in attestations
        .iter()
        .filter(|a| a.kind() == Some(PredicateKind::OpenVex))
    {
        let Signer::Authority(who) = &a.signer else {
            notes.push(format!(
                "unsigned OpenVEX from {} ignored (VEX counts only when signed)",
                a.origin
            ));
            continue;
        };
        let source = format!("{}, signed by {who}", a.origin);
        match vex.add(&a.predicate, &source) {
            Ok(0) => {}
            Ok(skipped) => notes.push(format!(
                "OpenVEX from {}: {} without a vulnerability or a known status skipped",
                a.origin,
                plural(skipped, "statement", "statements")
            )),
            Err(e) => notes.push(format!("OpenVEX from {} ignored: {e}", a.origin)),
        }
    }
    vex
}

/// Applies VEX, then `ignore`; returns what is still in effect.
fn clear(
    req: &SbomRequirement,
    findings: Vec<Finding>,
    vex: &vex::Vex,
    digest_hex: &str,
    now: OffsetDateTime,
    cleared: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Vec<Finding> {
    let mut remaining = Vec::with_capacity(findings.len());
    let mut expired = Vec::new();
    for mut f in findings {
        let ids: Vec<&str> = std::iter::once(f.id.as_str())
            .chain(f.aliases.iter().map(String::as_str))
            .collect();
        if !vex.is_empty() {
            if f.affects.is_empty() {
                if let Some(s) = vex
                    .decide(&ids, None, digest_hex)
                    .filter(|s| s.status.clears())
                {
                    push_unique(cleared, format!("{} cleared by {}", f.id, s.describe()));
                    continue;
                }
            } else {
                let mut kept = Vec::with_capacity(f.affects.len());
                for a in std::mem::take(&mut f.affects) {
                    match vex.decide(&ids, Some(&a), digest_hex) {
                        Some(s) if s.status.clears() => push_unique(
                            cleared,
                            format!("{} in {} cleared by {}", f.id, a.label, s.describe()),
                        ),
                        _ => kept.push(a),
                    }
                }
                if kept.is_empty() {
                    continue;
                }
                f.affects = kept;
            }
        }
        let mut ignored = false;
        for i in req.ignore.iter().filter(|i| f.is(&i.id)) {
            if i.in_effect(now) {
                push_unique(
                    cleared,
                    match i.until_text() {
                        Some(until) => format!("{} ignored until {until}", f.id),
                        None => format!("{} ignored (ignore without until)", f.id),
                    },
                );
                ignored = true;
                break;
            }
            if let Some(until) = i.until_text() {
                push_unique(&mut expired, format!("{} (until {until})", i.id));
            }
        }
        if !ignored {
            remaining.push(f);
        }
    }
    dedup_in_order(&mut expired);
    if !expired.is_empty() {
        notes.push(format!(
            "expired ignore entries clear nothing: {}",
            expired.join(", ")
        ));
    }
    remaining
}

/// One vulnerability id with every package it is reported in.
struct Group<'a> {
    id: &'a str,
    ids: Vec<&'a str>,
    severity: Severity,
    labels: Vec<&'a str>,
    /// Membership of `ids` and `labels`, so that a report listing millions of affected packages
    /// is not quadratic.
    seen: HashSet<&'a str>,
}

fn vulnerability_failures(req: &SbomRequirement, findings: &[Finding], failures: &mut Vec<String>) {
    if req.deny_cves.is_empty() && req.deny_severity.is_none() {
        return;
    }
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for f in findings {
        let at = *index.entry(f.id.to_ascii_lowercase()).or_insert_with(|| {
            groups.push(Group {
                id: &f.id,
                ids: vec![&f.id],
                severity: f.severity,
                labels: Vec::new(),
                seen: HashSet::new(),
            });
            groups.len() - 1
        });
        let Some(g) = groups.get_mut(at) else {
            continue;
        };
        g.severity = g.severity.max(f.severity);
        for alias in &f.aliases {
            if !g.ids.contains(&alias.as_str()) {
                g.ids.push(alias);
            }
        }
        for a in &f.affects {
            if g.seen.insert(a.label.as_str()) {
                g.labels.push(&a.label);
            }
        }
    }
    let subject = |g: &Group<'_>| {
        let packages = match g.labels.as_slice() {
            [] => String::new(),
            labels if labels.len() <= 3 => format!(" in {}", labels.join(", ")),
            labels => format!(
                " in {} and {} more packages",
                labels[..3].join(", "),
                labels.len() - 3
            ),
        };
        format!("{} ({}){packages}", g.id, g.severity)
    };
    let mut by_id = Vec::new();
    let mut by_severity: Vec<&Group<'_>> = Vec::new();
    for g in &groups {
        if let Some(cve) = req
            .deny_cves
            .iter()
            .find(|c| g.ids.iter().any(|id| id.eq_ignore_ascii_case(c)))
        {
            by_id.push(format!("{} is denied (deny_cves \"{cve}\")", subject(g)));
        } else if req.deny_severity.is_some_and(|s| g.severity >= s) {
            by_severity.push(g);
        }
    }
    listed(failures, by_id, "vulnerabilities named in deny_cves");
    if let Some(threshold) = req.deny_severity {
        // The worst first; stable, so report order within a severity.
        by_severity.sort_by_key(|g| std::cmp::Reverse(g.severity));
        let lines = by_severity
            .into_iter()
            .map(|g| {
                format!(
                    "{} is at or above deny_severity \"{threshold}\"",
                    subject(g)
                )
            })
            .collect();
        listed(
            failures,
            lines,
            &format!("vulnerabilities at or above deny_severity \"{threshold}\""),
        );
    }
}

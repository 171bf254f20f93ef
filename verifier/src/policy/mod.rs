//! The node policy: which images may start where, and how strictly.
//!
//! ```toml
//! version = 1
//! default = "deny"          # images no rule matches: "deny" | "allow"
//! mode = "enforce"          # default for rules: "enforce" | "audit"
//! exempt = ["registry.k8s.io/pause"]  # skip signature and SBOM checks (host and rootfs rules apply)
//! sandbox = "exempt"        # pod sandbox (pause) containers: "exempt" | "verify"
//! sandbox_images = ["registry.k8s.io/pause"]   # what an exempt sandbox may run (default: exempt)
//! [[rule]]
//! name = "no-debug-images"
//! images = ["docker.io/library/busybox", "ghcr.io/acme/debug/**"]
//! namespaces = ["prod-*"]
//! action = "deny"           # "allow" | "deny" | "verify"
//! mode = "audit"
//!
//! [[rule]]
//! name = "prod"
//! images = ["registry.example.com/prod/**"]
//! action = "verify"
//! threshold = 1                    # how many authorities must verify (default 1)
//! signature_repository = "registry.example.com/signatures"   # optional, like COSIGN_REPOSITORY
//! require_identity_match = true    # payload docker-reference must name the image's repository
//! multi_arch = "either"            # an index's signature or this node's platform manifest's
//! [[rule.authority]]
//! name = "release-2026"
//! key = "/etc/vouch/keys/release.pub"
//! valid_until = "2027-01-01T00:00:00Z"
//! [[rule.authority]]
//! name = "ci"
//! keyless = { trusted_root = "/etc/vouch/trusted_root.json", issuer = "https://token.actions.githubusercontent.com", subject_regex = "^https://github.com/acme/.*" }
//! # optional in keyless: witnesses whose checkpoint cosignatures are verified (C2SP vkeys), and
//! # how many must have cosigned (default 0: none required, those present must verify)
//! # witnesses = ["witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv"]
//! # witness_quorum = 1
//! [rule.sbom]                      # only on verify rules: the authorities above check its signature
//! require = true                   # no SBOM that counts -> deny (default true)
//! formats = ["spdx", "cyclonedx"]  # which formats count (default both)
//! min_fields = ["supplier", "name", "version", "purl", "relationships", "author", "timestamp"]
//! deny_licenses = ["GPL-3.0-only", "AGPL-*"]
//! allow_licenses = []              # when non-empty, every package's license must satisfy it
//! deny_packages = ["pkg:deb/debian/openssl@<3.0.7", "pkg:npm/event-stream"]
//! deny_severity = "critical"       # deny at or above: "critical" | "high" | "medium" | "low"
//! deny_cves = ["CVE-2021-44228"]
//! ignore = [{ id = "CVE-2023-1234", until = "2027-01-01" }]   # until optional; date or RFC 3339
//! max_age_days = 90
//! rego = "/etc/vouch/rules/sbom.rego"   # custom rules, evaluated by the gate
//! allow_unsigned = false           # unsigned SBOMs and vulnerability reports count too
//! [rule.rootfs]                    # on allow and verify rules: the measured root filesystem
//! baseline = "image"               # "image" | "declared-files-match" | "no-undeclared-executables" | "off"
//! exempt_paths = ["/var/cache/**"] # never compared; `*` within a name, `**` across directories
//! [rule.host]                      # on allow and verify rules: the host and the spec's security settings
//! allow_privileged = false         # a privileged container is refused (the default)
//! require_seccomp = true           # a container without a seccomp filter is refused (default false)
//! allowed_modules = ["overlay", "br_netfilter", "nf_*"]   # every loaded module must match one
//! required_lsm = ["apparmor"]      # each must be active (apparmor and selinux: enforcing)
//! runc_sha256 = ["<64 hex digits>"]    # the runc binary must have one of these digests
//! allow_exec = false               # no process may be exec'd into matching containers (default true)
//! allowed_hooks = ["/usr/bin/nvidia-container-runtime-hook"]   # OCI hooks allowed when not privileged
//! allowed_devices = ["/dev/nvidia*"]   # host devices allowed when not privileged
//! pod_security = "baseline"        # Pod Security Standard the spec must meet: "privileged" | "baseline" | "restricted"
//! ```
//!
//! `min_fields` are the NTIA minimum elements: `supplier`, `name`, `version` and `purl` of every
//! package, at least one relationship, an `author` (a person or organisation: the tools that wrote
//! the document do not count, NTIA asks for the author of the SBOM data) and a creation
//! `timestamp`. Vulnerabilities come from the SBOM (CycloneDX `vulnerabilities`) and from
//! vulnerability attestations; signed OpenVEX statements and `ignore` entries clear them (see
//! [`crate::sbom_rule`]).
//!
//! Every matching rule applies and a deny wins. [`Policy::evaluate`] is pure: it sees only the repository,
//! the pod namespace and whether the container is a pod sandbox.

mod judgement;
pub mod pattern;

pub use judgement::Judgement;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};
use toml::Spanned;

use crate::error::{Error, Result};
use crate::license::LicensePattern;
use crate::pattern::{ImagePattern, NamespacePattern};
use crate::sbom_rule::{self, Ignore, MinField, PackageMatcher, SbomRequirement};
use crate::signature::Matcher;
use crate::sigstore::Witnesses;
use crate::spec::host::HostPatterns;
use crate::spec::pod_security::Level;
use crate::tomlfile;

/// The only policy format version this build understands.
pub const VERSION: u32 = 1;
/// The rule name decisions carry when no rule matched and `default` decided.
pub const DEFAULT_RULE: &str = "default";
pub const REASON_DENY_RULE: &str = "image matches a deny rule";
pub const REASON_DEFAULT_DENY: &str = "no policy rule matches and the default is deny";
pub const EXEMPT_SANDBOX: &str = "pod sandbox";

/// What happens to images no rule matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAction {
    #[default]
    Deny,
    Allow,
}

/// Whether a denial stops the container (`enforce`) or is only recorded (`audit`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Audit,
}

/// How pod sandbox (pause) containers are treated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxPolicy {
    #[default]
    Exempt,
    Verify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Deny,
    /// Signature verification; until it exists, a matching `verify` rule fails closed.
    Verify,
}

macro_rules! lowercase_display {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // The serde names are the policy's words; show the same ones.
                let word = serde_json::to_value(self)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                f.write_str(&word)
            }
        }
    )*};
}
lowercase_display!(DefaultAction, Mode, SandboxPolicy, Action);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub name: String,
    pub images: Vec<ImagePattern>,
    /// `None`: any namespace, and containers outside Kubernetes (`ctr`).
    pub namespaces: Option<Vec<NamespacePattern>>,
    pub action: Action,
    /// `None`: the policy's `mode`.
    pub mode: Option<Mode>,
    /// What a `verify` rule requires; `None` for other actions.
    pub verify: Option<Verification>,
    /// A verify rule's `[rule.sbom]`: SBOM, license and vulnerability policy over the image's
    /// attestations, whose signatures the rule's authorities check.
    pub sbom: Option<SbomRequirement>,
    /// `[rule.rootfs]`: what the measured root filesystem is compared with.
    pub rootfs: Option<RootfsRequirement>,
    /// `[rule.host]`: the host's state and the container's security settings.
    pub host: Option<HostRequirement>,
}

/// `baseline` of `[rule.rootfs]`: what the measured root filesystem must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Baseline {
    /// The unpacked layers equal the signed image's layer blobs in containerd's content store.
    Image,
    /// Files the SBOM declares with checksums match.
    DeclaredFilesMatch,
    /// As `declared-files-match`, and no executable or shared library the SBOM does not declare.
    NoUndeclaredExecutables,
    /// Measured and recorded, never compared.
    Off,
}

/// `[rule.rootfs]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootfsRequirement {
    pub baseline: Baseline,
    /// Absolute path patterns never compared: `*` matches within one name, `**` any depth.
    pub exempt_paths: Vec<String>,
}

impl RootfsRequirement {
    /// One clause for `vouch policy check`.
    pub fn describe(&self) -> String {
        let what = match self.baseline {
            Baseline::Image => "the root filesystem must equal the image's layers",
            Baseline::DeclaredFilesMatch => "files the SBOM declares must match their checksums",
            Baseline::NoUndeclaredExecutables => {
                "files the SBOM declares must match, and no executable or library it does not declare may be present"
            }
            Baseline::Off => "the root filesystem is measured, not compared",
        };
        if self.exempt_paths.is_empty() {
            what.to_string()
        } else {
            format!("{what} (except {})", self.exempt_paths.join(", "))
        }
    }
}

impl HostRequirement {
    /// One clause for `vouch policy check`.
    pub fn describe(&self) -> String {
        let mut parts = vec![if self.allow_privileged {
            "privileged containers allowed".to_string()
        } else {
            "no privileged containers".to_string()
        }];
        if self.require_seccomp {
            parts.push("a seccomp filter required".into());
        }
        if let Some(m) = &self.allowed_modules {
            parts.push(format!("kernel modules only {}", m.join(", ")));
        }
        if !self.required_lsm.is_empty() {
            parts.push(format!("LSMs {} active", self.required_lsm.join(", ")));
        }
        if !self.runc_sha256.is_empty() {
            parts.push(format!("runc one of {} digests", self.runc_sha256.len()));
        }
        if let Some(level) = self.pod_security {
            parts.push(format!("Pod Security Standard \"{level}\" on the spec"));
        }
        format!("host: {}", parts.join(", "))
    }
}

/// `[rule.host]`. Only what is written is checked, except `allow_privileged`, which defaults to
/// false: a rule that looks at the host at all refuses privileged containers unless told not to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostRequirement {
    pub allow_privileged: bool,
    pub require_seccomp: bool,
    /// Every loaded kernel module must match one (`*` wildcards); `None`: not checked.
    pub allowed_modules: Option<Vec<String>>,
    /// LSMs that must be active; `apparmor` and `selinux` must also be enforcing.
    pub required_lsm: Vec<String>,
    /// Lower-case hex SHA-256 digests the runc binary may have; empty: not checked.
    pub runc_sha256: Vec<String>,
    /// The Pod Security Standard the container's OCI spec must meet; `None`: not checked.
    pub pod_security: Option<Level>,
    /// Whether processes may be exec'd into matching containers (`kubectl exec`); default true.
    pub allow_exec: bool,
    /// OCI hooks (absolute paths) a container may carry under `allow_privileged = false`, e.g. a
    /// GPU toolkit's; any other hook is refused, since runc runs hooks on the node as root.
    pub allowed_hooks: Vec<String>,
    /// Host devices (`linux.devices` paths, `*` and `?` wildcards) a container may get under
    /// `allow_privileged = false`, e.g. a device plugin's `/dev/nvidia*`.
    pub allowed_devices: Vec<String>,
}

/// The signature requirements of a `verify` rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// How many distinct authorities must verify (1 ..= number of authorities).
    pub threshold: usize,
    /// Where `.sig` signatures live when not beside the image (like `COSIGN_REPOSITORY`).
    pub signature_repository: Option<String>,
    /// The signed payload's `docker-reference` must name the image's repository.
    pub require_identity_match: bool,
    /// For a multi-arch image: which manifest's signature counts.
    pub multi_arch: MultiArch,
    pub authorities: Vec<Authority>,
}

/// `multi_arch`: for an image whose digest is an index, a signature on the index or on this node's
/// platform manifest counts (`either`, the default), or only one of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MultiArch {
    #[default]
    Either,
    Index,
    Platform,
}

/// One party whose signature counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Authority {
    pub name: String,
    pub trust: Trust,
    /// Signatures count only inside this window (key rotation). For key-based signatures without a
    /// transparency-log time the window is checked against the time of the decision.
    #[serde(with = "time::serde::rfc3339::option")]
    pub valid_from: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub valid_until: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trust {
    /// A public key file (PEM).
    Key(PathBuf),
    Keyless(Keyless),
}

/// A Fulcio certificate identity, checked offline against a Sigstore trusted root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Keyless {
    pub trusted_root: PathBuf,
    pub issuer: Match,
    pub subject: Match,
    /// Witnesses whose cosignatures on log checkpoints are verified where present, as C2SP
    /// vkeys, each checked by [`Witnesses::from_vkeys`] with `witness_quorum`.
    pub witnesses: Vec<String>,
    /// How many of `witnesses` must have cosigned every log entry's checkpoint (0: none).
    pub witness_quorum: usize,
}

impl Keyless {
    /// The witnesses, read. Parsing checked them, so this fails only for a value built by hand.
    pub fn witnesses(&self) -> std::result::Result<Witnesses, String> {
        Witnesses::from_vkeys(&self.witnesses, self.witness_quorum)
    }
}

/// An exact value or a fully anchored regular expression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Match {
    Exact(String),
    Regex(String),
}

impl Match {
    /// Whether `value` is this value, or matches this pattern as a whole (see
    /// [`Matcher::anchored`]: `subject_regex = "https://github.com/acme/.*"` does not match a
    /// value that merely contains it). A pattern that does not compile matches nothing.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Match::Exact(e) => e == value,
            Match::Regex(r) => Matcher::anchored(r).is_ok_and(|m| m.matches(value)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub version: u32,
    pub default: DefaultAction,
    pub mode: Mode,
    pub exempt: Vec<ImagePattern>,
    pub sandbox: SandboxPolicy,
    /// Images a pod sandbox may run and still be exempt (`sandbox = "exempt"`); defaults to
    /// `exempt`. A "sandbox" of any other image is judged like every container.
    pub sandbox_images: Vec<ImagePattern>,
    #[serde(rename = "rule")]
    pub rules: Vec<Rule>,
}

/// A policy as read from disk, with the digest decisions are recorded against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedPolicy {
    pub path: PathBuf,
    pub policy: Policy,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub policy_digest: String,
}

// What the file holds; names carry their span so a duplicate can be reported at its line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    version: Version,
    #[serde(default)]
    default: DefaultAction,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    exempt: Vec<Spanned<String>>,
    #[serde(default)]
    sandbox: SandboxPolicy,
    sandbox_images: Option<Vec<Spanned<String>>>,
    #[serde(default, rename = "rule")]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<RuleName>,
    images: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    namespaces: Option<Spanned<Vec<Spanned<String>>>>,
    action: Action,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    threshold: Option<Spanned<i64>>,
    #[serde(default)]
    signature_repository: Option<Spanned<String>>,
    #[serde(default)]
    require_identity_match: Option<bool>,
    #[serde(default)]
    multi_arch: Option<Spanned<MultiArch>>,
    #[serde(default, rename = "authority")]
    authorities: Option<Spanned<Vec<RawAuthority>>>,
    #[serde(default)]
    sbom: Option<Spanned<RawSbom>>,
    #[serde(default)]
    rootfs: Option<Spanned<RawRootfs>>,
    #[serde(default)]
    host: Option<Spanned<RawHost>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRootfs {
    baseline: Baseline,
    #[serde(default)]
    exempt_paths: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    #[serde(default)]
    allow_privileged: Option<bool>,
    #[serde(default)]
    require_seccomp: Option<bool>,
    #[serde(default)]
    allowed_modules: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    required_lsm: Vec<Spanned<String>>,
    #[serde(default)]
    runc_sha256: Vec<Spanned<String>>,
    #[serde(default)]
    pod_security: Option<Spanned<String>>,
    #[serde(default)]
    allow_exec: Option<bool>,
    #[serde(default)]
    allowed_hooks: Vec<Spanned<String>>,
    #[serde(default)]
    allowed_devices: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSbom {
    #[serde(default)]
    require: Option<bool>,
    #[serde(default)]
    formats: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    min_fields: Vec<Spanned<MinField>>,
    #[serde(default)]
    deny_licenses: Vec<Spanned<String>>,
    #[serde(default)]
    allow_licenses: Vec<Spanned<String>>,
    #[serde(default)]
    deny_packages: Vec<Spanned<String>>,
    #[serde(default)]
    deny_severity: Option<Spanned<String>>,
    #[serde(default)]
    deny_cves: Vec<Spanned<String>>,
    #[serde(default)]
    ignore: Vec<Spanned<RawIgnore>>,
    #[serde(default)]
    max_age_days: Option<Spanned<i64>>,
    #[serde(default)]
    rego: Option<Spanned<String>>,
    #[serde(default)]
    allow_unsigned: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIgnore {
    id: Spanned<String>,
    /// A string (a date or an RFC 3339 time) or a TOML date or date-time.
    #[serde(default)]
    until: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthority {
    name: Spanned<RuleName>,
    #[serde(default)]
    key: Option<Spanned<String>>,
    #[serde(default)]
    keyless: Option<Spanned<RawKeyless>>,
    #[serde(default)]
    valid_from: Option<Spanned<String>>,
    #[serde(default)]
    valid_until: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyless {
    trusted_root: String,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    issuer_regex: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    subject_regex: Option<String>,
    #[serde(default)]
    witnesses: Vec<String>,
    #[serde(default)]
    witness_quorum: Option<i64>,
}

struct Version;

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        if v == i64::from(VERSION) {
            Ok(Version)
        } else {
            Err(serde::de::Error::custom(format!(
                "unsupported policy version {v}; this vouch understands version {VERSION}"
            )))
        }
    }
}

struct RuleName(String);

impl<'de> Deserialize<'de> for RuleName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        if name.trim().is_empty() {
            return Err(serde::de::Error::custom("rule name must not be empty"));
        }
        // Names are quoted inside one-line denial messages.
        if name.chars().any(|c| c.is_control() || c == '"') {
            return Err(serde::de::Error::custom(
                "rule name must not contain quotes or control characters",
            ));
        }
        Ok(RuleName(name))
    }
}

/// Locates post-parse errors (patterns, duplicates) in the policy text by their spans.
struct Locator<'a> {
    path: &'a Path,
    text: std::borrow::Cow<'a, str>,
}

impl Locator<'_> {
    fn error(&self, offset: usize, reason: &str) -> Error {
        tomlfile::located(self.path, &self.text, Some(offset), reason)
    }

    /// Builds each pattern, reporting an invalid one at its own position in the list.
    fn patterns<T>(
        &self,
        list: Vec<Spanned<String>>,
        new: fn(&str) -> Result<T>,
    ) -> Result<Vec<T>> {
        list.into_iter()
            .map(|p| new(p.get_ref()).map_err(|e| self.error(p.span().start, &e.to_string())))
            .collect()
    }

    /// Like [`Locator::patterns`], refusing an empty list, which would never match anything.
    fn non_empty_patterns<T>(
        &self,
        list: Spanned<Vec<Spanned<String>>>,
        new: fn(&str) -> Result<T>,
    ) -> Result<Vec<T>> {
        if list.get_ref().is_empty() {
            return Err(self.error(
                list.span().start,
                "must list at least one pattern (an empty list would never match)",
            ));
        }
        self.patterns(list.into_inner(), new)
    }
}

struct RawVerification {
    threshold: Option<Spanned<i64>>,
    signature_repository: Option<Spanned<String>>,
    require_identity_match: Option<bool>,
    multi_arch: Option<Spanned<MultiArch>>,
    authorities: Option<Spanned<Vec<RawAuthority>>>,
}

impl Locator<'_> {
    /// Checks and builds the `verify` part of a rule; any of it on another action is an error.
    fn verification(
        &self,
        policy_path: &Path,
        rule_at: usize,
        action: Action,
        raw: RawVerification,
    ) -> Result<Option<Verification>> {
        if action != Action::Verify {
            let stray = raw
                .threshold
                .as_ref()
                .map(|t| t.span().start)
                .or(raw.signature_repository.as_ref().map(|r| r.span().start))
                .or(raw.authorities.as_ref().map(|a| a.span().start))
                .or(raw.multi_arch.as_ref().map(|m| m.span().start))
                .or(raw.require_identity_match.map(|_| rule_at));
            if let Some(at) = stray {
                return Err(self.error(
                    at,
                    "threshold, signature_repository, require_identity_match, multi_arch and \
                     authorities belong to rules with action = \"verify\"",
                ));
            }
            return Ok(None);
        }
        let Some(list) = raw.authorities else {
            return Err(self.error(
                rule_at,
                "a verify rule needs at least one [[rule.authority]]",
            ));
        };
        let list_at = list.span().start;
        let mut names = HashSet::new();
        let mut authorities = Vec::new();
        for a in list.into_inner() {
            let name_at = a.name.span().start;
            let RuleName(name) = a.name.into_inner();
            if !names.insert(name.clone()) {
                return Err(self.error(name_at, &format!("duplicate authority name \"{name}\"")));
            }
            let base = policy_path.parent().unwrap_or(Path::new("/"));
            let trust = match (a.key, a.keyless) {
                (Some(key), None) => Trust::Key(base.join(key.get_ref())),
                (None, Some(k)) => {
                    let k_at = k.span().start;
                    let k = k.into_inner();
                    let pick =
                        |exact: Option<String>, re: Option<String>, what: &str| match (exact, re) {
                            (Some(e), None) => Ok(Match::Exact(e)),
                            (None, Some(r)) => match Matcher::anchored(&r) {
                                Ok(_) => Ok(Match::Regex(r)),
                                Err(e) => {
                                    Err(self.error(k_at, &format!("invalid {what}_regex: {e}")))
                                }
                            },
                            _ => Err(self.error(
                                k_at,
                                &format!("keyless needs exactly one of {what} and {what}_regex"),
                            )),
                        };
                    let witness_quorum = match k.witness_quorum {
                        None => 0,
                        Some(n) => usize::try_from(n).map_err(|_| {
                            self.error(k_at, &format!("witness_quorum {n} is negative"))
                        })?,
                    };
                    if let Err(e) = Witnesses::from_vkeys(&k.witnesses, witness_quorum) {
                        return Err(self.error(k_at, &e));
                    }
                    Trust::Keyless(Keyless {
                        trusted_root: base.join(&k.trusted_root),
                        issuer: pick(k.issuer, k.issuer_regex, "issuer")?,
                        subject: pick(k.subject, k.subject_regex, "subject")?,
                        witnesses: k.witnesses,
                        witness_quorum,
                    })
                }
                _ => {
                    return Err(self.error(
                        name_at,
                        &format!("authority \"{name}\" needs exactly one of key and keyless"),
                    ))
                }
            };
            let when = |v: Option<Spanned<String>>| -> Result<Option<OffsetDateTime>> {
                match v {
                    None => Ok(None),
                    Some(t) => OffsetDateTime::parse(t.get_ref(), &Rfc3339)
                        .map(Some)
                        .map_err(|e| {
                            self.error(
                                t.span().start,
                                &format!("not an RFC 3339 time ({e}), e.g. 2027-01-01T00:00:00Z"),
                            )
                        }),
                }
            };
            let valid_from = when(a.valid_from)?;
            let valid_until = when(a.valid_until)?;
            if let (Some(f), Some(u)) = (valid_from, valid_until) {
                if f >= u {
                    return Err(self.error(name_at, "valid_from must be before valid_until"));
                }
            }
            authorities.push(Authority {
                name,
                trust,
                valid_from,
                valid_until,
            });
        }
        if authorities.is_empty() {
            return Err(self.error(list_at, "a verify rule needs at least one authority"));
        }
        let threshold = match raw.threshold {
            None => 1,
            Some(t) => {
                let n = *t.get_ref();
                if n < 1 || n as usize > authorities.len() {
                    return Err(self.error(
                        t.span().start,
                        &format!(
                            "threshold must be between 1 and the number of authorities ({})",
                            authorities.len()
                        ),
                    ));
                }
                n as usize
            }
        };
        let signature_repository = match raw.signature_repository {
            None => None,
            Some(r) => {
                let parsed = crate::reference::Reference::parse(r.get_ref())
                    .map_err(|e| self.error(r.span().start, &e.to_string()))?;
                if parsed.tag.is_some() || parsed.digest.is_some() {
                    return Err(self.error(
                        r.span().start,
                        "signature_repository names a repository, without tag or digest",
                    ));
                }
                Some(parsed.repository)
            }
        };
        Ok(Some(Verification {
            threshold,
            signature_repository,
            require_identity_match: raw.require_identity_match.unwrap_or(true),
            multi_arch: raw.multi_arch.map(Spanned::into_inner).unwrap_or_default(),
            authorities,
        }))
    }
}

impl Locator<'_> {
    /// Checks and builds `[rule.sbom]`, which only a verify rule may have: its attestations count
    /// when the rule's authorities signed them.
    fn sbom_requirement(
        &self,
        policy_path: &Path,
        action: Action,
        raw: Option<Spanned<RawSbom>>,
    ) -> Result<Option<SbomRequirement>> {
        let Some(raw) = raw else {
            return Ok(None);
        };
        if action != Action::Verify {
            return Err(self.error(
                raw.span().start,
                "[rule.sbom] belongs to rules with action = \"verify\" (the rule's authorities \
                 check the SBOM's signature)",
            ));
        }
        let raw = raw.into_inner();
        let mut req = SbomRequirement::default();
        if let Some(require) = raw.require {
            req.require = require;
        }
        if let Some(list) = raw.formats {
            if list.get_ref().is_empty() {
                return Err(self.error(
                    list.span().start,
                    "formats must name at least one of \"spdx\" and \"cyclonedx\"",
                ));
            }
            req.formats.clear();
            for f in list.into_inner() {
                let format = sbom_rule::parse_format(f.get_ref()).ok_or_else(|| {
                    self.error(
                        f.span().start,
                        &format!(
                            "unknown SBOM format \"{}\"; use \"spdx\" or \"cyclonedx\"",
                            f.get_ref()
                        ),
                    )
                })?;
                if !req.formats.contains(&format) {
                    req.formats.push(format);
                }
            }
        }
        for field in raw.min_fields {
            if !req.min_fields.contains(field.get_ref()) {
                req.min_fields.push(field.into_inner());
            }
        }
        req.deny_licenses = self.patterns(raw.deny_licenses, LicensePattern::new)?;
        req.allow_licenses = self.patterns(raw.allow_licenses, LicensePattern::new)?;
        req.deny_packages = raw
            .deny_packages
            .into_iter()
            .map(|m| PackageMatcher::new(m.get_ref()).map_err(|e| self.error(m.span().start, &e)))
            .collect::<Result<_>>()?;
        if let Some(s) = raw.deny_severity {
            req.deny_severity = Some(sbom_rule::parse_severity(s.get_ref()).ok_or_else(|| {
                self.error(
                    s.span().start,
                    &format!(
                        "unknown severity \"{}\"; use \"critical\", \"high\", \"medium\" or \"low\"",
                        s.get_ref()
                    ),
                )
            })?);
        }
        let vulnerability_id = |id: &Spanned<String>, what: &str| -> Result<String> {
            let text = id.get_ref().trim();
            if text.is_empty()
                || text
                    .chars()
                    .any(|c| c.is_control() || c.is_whitespace() || c == '"')
            {
                return Err(self.error(
                    id.span().start,
                    &format!("{what} must be a vulnerability id such as CVE-2021-44228"),
                ));
            }
            Ok(text.to_string())
        };
        req.deny_cves = raw
            .deny_cves
            .iter()
            .map(|id| vulnerability_id(id, "each deny_cves entry"))
            .collect::<Result<_>>()?;
        for entry in raw.ignore {
            let entry = entry.into_inner();
            let id = vulnerability_id(&entry.id, "ignore id")?;
            let until = match entry.until {
                None => None,
                Some(u) => Some(until_time(u.get_ref()).ok_or_else(|| {
                    self.error(
                        u.span().start,
                        "until must be a date (2027-01-01) or an RFC 3339 time \
                         (2027-01-01T00:00:00Z)",
                    )
                })?),
            };
            req.ignore.push(Ignore { id, until });
        }
        if let Some(days) = raw.max_age_days {
            let n = *days.get_ref();
            req.max_age_days =
                Some(u32::try_from(n).ok().filter(|&n| n >= 1).ok_or_else(|| {
                    self.error(
                        days.span().start,
                        "max_age_days must be a whole number of days, at least 1",
                    )
                })?);
        }
        if let Some(rego) = raw.rego {
            if rego.get_ref().trim().is_empty() {
                return Err(self.error(rego.span().start, "rego must name a file"));
            }
            let base = policy_path.parent().unwrap_or(Path::new("/"));
            req.rego = Some(base.join(rego.get_ref()));
        }
        req.allow_unsigned = raw.allow_unsigned.unwrap_or(false);
        Ok(Some(req))
    }
}

impl Locator<'_> {
    /// Checks and builds `[rule.rootfs]` (allow and verify rules; the SBOM baselines need the
    /// rule's `[rule.sbom]`).
    fn rootfs_requirement(
        &self,
        action: Action,
        has_sbom: bool,
        raw: Option<Spanned<RawRootfs>>,
    ) -> Result<Option<RootfsRequirement>> {
        let Some(raw) = raw else {
            return Ok(None);
        };
        let at = raw.span().start;
        if action == Action::Deny {
            return Err(self.error(at, "[rule.rootfs] belongs to allow and verify rules"));
        }
        let raw = raw.into_inner();
        if matches!(
            raw.baseline,
            Baseline::DeclaredFilesMatch | Baseline::NoUndeclaredExecutables
        ) && !has_sbom
        {
            return Err(self.error(
                at,
                "baseline = \"declared-files-match\" and \"no-undeclared-executables\" compare with \
                 the SBOM: the rule needs a [rule.sbom]",
            ));
        }
        let mut exempt_paths = Vec::with_capacity(raw.exempt_paths.len());
        for p in raw.exempt_paths {
            let text = p.get_ref();
            let bad = !text.starts_with('/')
                || text.split('/').any(|c| c == ".." || c == ".")
                || text.chars().any(char::is_control);
            if bad {
                return Err(self.error(
                    p.span().start,
                    &format!(
                        "exempt_paths entry \"{}\" must be an absolute path pattern without . or .. \
                         (e.g. \"/var/cache/**\")",
                        one_line(text)
                    ),
                ));
            }
            if let Err(e) = crate::baseline::Exempt::new(&[text]) {
                return Err(self.error(p.span().start, &format!("exempt_paths entry: {e}")));
            }
            exempt_paths.push(p.into_inner());
        }
        Ok(Some(RootfsRequirement {
            baseline: raw.baseline,
            exempt_paths,
        }))
    }

    /// Checks and builds `[rule.host]` (allow and verify rules).
    fn host_requirement(
        &self,
        action: Action,
        raw: Option<Spanned<RawHost>>,
    ) -> Result<Option<HostRequirement>> {
        let Some(raw) = raw else {
            return Ok(None);
        };
        if action == Action::Deny {
            return Err(self.error(
                raw.span().start,
                "[rule.host] belongs to allow and verify rules",
            ));
        }
        let raw = raw.into_inner();
        let word = |w: &Spanned<String>, what: &str| -> Result<String> {
            let t = w.get_ref().trim();
            if t.is_empty()
                || !t
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '*'))
            {
                return Err(self.error(
                    w.span().start,
                    &format!("{what} \"{}\" is not a name", one_line(w.get_ref())),
                ));
            }
            Ok(t.to_string())
        };
        let compiles = |p: &Spanned<String>, kind: HostPatterns, what: &str| -> Result<()> {
            kind.compile(std::slice::from_ref(p.get_ref()))
                .map(|_| ())
                .map_err(|e| self.error(p.span().start, &format!("{what} entry: {e}")))
        };
        let allowed_modules = match raw.allowed_modules {
            None => None,
            Some(list) => Some(
                list.iter()
                    .map(|m| {
                        let name = word(m, "allowed_modules entry")?;
                        compiles(m, HostPatterns::Modules, "allowed_modules")?;
                        Ok(name)
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
        };
        let mut required_lsm = Vec::new();
        for l in &raw.required_lsm {
            let name = word(l, "required_lsm entry")?.to_ascii_lowercase();
            if name.contains('*') {
                return Err(self.error(l.span().start, "required_lsm names an LSM, not a pattern"));
            }
            required_lsm.push(name);
        }
        let mut runc_sha256 = Vec::new();
        for d in &raw.runc_sha256 {
            let hex = d
                .get_ref()
                .trim()
                .trim_start_matches("sha256:")
                .to_ascii_lowercase();
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(self.error(
                    d.span().start,
                    "runc_sha256 entries are SHA-256 digests: 64 hex digits (sha256sum $(command -v runc))",
                ));
            }
            runc_sha256.push(hex);
        }
        let pod_security = match &raw.pod_security {
            None => None,
            Some(word) => Some(match word.get_ref().as_str() {
                "privileged" => Level::Privileged,
                "baseline" => Level::Baseline,
                "restricted" => Level::Restricted,
                other => {
                    return Err(self.error(
                        word.span().start,
                        &format!(
                            "pod_security \"{}\" is not a Pod Security Standards level: \
                             \"privileged\", \"baseline\" or \"restricted\"",
                            one_line(other)
                        ),
                    ))
                }
            }),
        };
        let mut allowed_hooks = Vec::new();
        for h in &raw.allowed_hooks {
            let path = h.get_ref();
            if !path.starts_with('/') || path.chars().any(char::is_control) {
                return Err(self.error(
                    h.span().start,
                    "allowed_hooks entries are absolute paths of hook programs",
                ));
            }
            allowed_hooks.push(path.clone());
        }
        let mut allowed_devices = Vec::new();
        for d in &raw.allowed_devices {
            let path = d.get_ref();
            if !path.starts_with("/dev/") || path.chars().any(char::is_control) {
                return Err(self.error(
                    d.span().start,
                    "allowed_devices entries are device paths under /dev/ (wildcards * and ?)",
                ));
            }
            compiles(d, HostPatterns::Devices, "allowed_devices")?;
            allowed_devices.push(path.clone());
        }
        Ok(Some(HostRequirement {
            allow_privileged: raw.allow_privileged.unwrap_or(false),
            require_seccomp: raw.require_seccomp.unwrap_or(false),
            allowed_modules,
            required_lsm,
            runc_sha256,
            pod_security,
            allow_exec: raw.allow_exec.unwrap_or(true),
            allowed_hooks,
            allowed_devices,
        }))
    }
}

/// `until` of an ignore entry: a date means midnight UTC at its start.
fn until_time(value: &toml::Value) -> Option<OffsetDateTime> {
    let text = match value {
        toml::Value::String(s) => s.trim().to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        _ => return None,
    };
    if let Ok(t) = OffsetDateTime::parse(&text, &Rfc3339) {
        return Some(t);
    }
    let date = time::Date::parse(
        &text,
        time::macros::format_description!("[year]-[month]-[day]"),
    );
    date.ok().map(|d| d.midnight().assume_utc())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reads and parses the policy at `path`. A missing file is an error naming the path.
pub fn load(path: &Path) -> Result<LoadedPolicy> {
    let bytes = tomlfile::read(path, None)?;
    parse(path, &bytes)
}

/// Parses policy `bytes`; `path` is only used to name the file in errors.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<LoadedPolicy> {
    let raw: RawPolicy = tomlfile::parse(path, bytes)?;
    let at = Locator {
        path,
        text: String::from_utf8_lossy(bytes),
    };
    let exempt = at.patterns(raw.exempt, ImagePattern::new)?;
    let sandbox_images = match raw.sandbox_images {
        Some(list) => at.patterns(list, ImagePattern::new)?,
        None => exempt.clone(),
    };
    let mut seen = HashSet::new();
    let mut rules = Vec::with_capacity(raw.rules.len());
    for rule in raw.rules {
        let span = rule.name.span();
        let RuleName(name) = rule.name.into_inner();
        if !seen.insert(name.clone()) {
            return Err(at.error(span.start, &format!("duplicate rule name \"{name}\"")));
        }
        let images = at.non_empty_patterns(rule.images, ImagePattern::new)?;
        let namespaces = match rule.namespaces {
            Some(list) => Some(at.non_empty_patterns(list, NamespacePattern::new)?),
            None => None,
        };
        let verify = at.verification(
            path,
            span.start,
            rule.action,
            RawVerification {
                threshold: rule.threshold,
                signature_repository: rule.signature_repository,
                require_identity_match: rule.require_identity_match,
                multi_arch: rule.multi_arch,
                authorities: rule.authorities,
            },
        )?;
        let sbom = at.sbom_requirement(path, rule.action, rule.sbom)?;
        let rootfs = at.rootfs_requirement(rule.action, sbom.is_some(), rule.rootfs)?;
        let host = at.host_requirement(rule.action, rule.host)?;
        rules.push(Rule {
            name,
            images,
            namespaces,
            action: rule.action,
            mode: rule.mode,
            verify,
            sbom,
            rootfs,
            host,
        });
    }
    let Version = raw.version;
    Ok(LoadedPolicy {
        path: path.to_path_buf(),
        policy: Policy {
            version: VERSION,
            default: raw.default,
            mode: raw.mode,
            exempt,
            sandbox: raw.sandbox,
            sandbox_images,
            rules,
        },
        policy_digest: hex::encode(Sha256::digest(bytes)),
    })
}

/// What evaluation looks at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Subject<'a> {
    /// The normalised repository; `None` for a container without an image.
    pub repository: Option<&'a str>,
    /// The Kubernetes pod namespace; `None` outside Kubernetes (`ctr`).
    pub namespace: Option<&'a str>,
    /// A pod sandbox (pause) container.
    pub is_sandbox: bool,
}

/// A rule's refusal, before it is tied to an image digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleDenial {
    pub rule: String,
    pub reason: String,
    pub mode: Mode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow {
        /// The matching rules that allowed (or `default` when it allowed).
        rules: Vec<String>,
        /// Denials that audit mode let through, in rule order.
        audited: Vec<RuleDenial>,
        /// Why signature and SBOM checks were skipped (exempt image, pod sandbox), if they were.
        exempt: Option<String>,
        /// Matching `verify` rules: the image passes only if their signature checks pass too
        /// (each failure then counts as a denial of that rule, in its mode).
        verify: Vec<String>,
    },
    /// The first enforce-mode denial in rule order.
    Deny(RuleDenial),
}

impl Rule {
    /// Whether this rule applies to `subject` (a container without image or namespace matches no
    /// rule that asks about one).
    pub fn matches(&self, subject: &Subject<'_>) -> bool {
        let Some(repository) = subject.repository else {
            return false;
        };
        if !self.images.iter().any(|p| p.matches(repository)) {
            return false;
        }
        match (&self.namespaces, subject.namespace) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(patterns), Some(ns)) => patterns.iter().any(|p| p.matches(ns)),
        }
    }
}

impl Policy {
    /// The mode a rule's denials take.
    pub fn mode_of(&self, rule: &Rule) -> Mode {
        rule.mode.unwrap_or(self.mode)
    }

    /// Why `subject` is exempt from supply-chain checks, if it is: a pod sandbox running one of
    /// `sandbox_images` (with `sandbox = "exempt"`), or an image matching `exempt`.
    pub fn exemption(&self, subject: &Subject<'_>) -> Option<String> {
        let repository = subject.repository?;
        if subject.is_sandbox && self.sandbox == SandboxPolicy::Exempt {
            if let Some(p) = self.sandbox_images.iter().find(|p| p.matches(repository)) {
                return Some(format!("{EXEMPT_SANDBOX} of image pattern \"{p}\""));
            }
        }
        self.exempt
            .iter()
            .find(|p| p.matches(repository))
            .map(|p| format!("image matches exempt pattern \"{p}\""))
    }

    /// Every matching rule applies and a deny wins. Exemption is from supply-chain checks only:
    /// an exempt image's matching `verify` rules count as allowing (their signature and SBOM checks
    /// are skipped, their host and rootfs requirements still apply), its deny rules still deny, and
    /// when no rule matches it runs instead of falling to `default`.
    pub fn evaluate(&self, subject: &Subject<'_>) -> Decision {
        let exempt = self.exemption(subject);
        let mut allowed = Vec::new();
        let mut denials = Vec::new();
        let mut verify = Vec::new();
        let mut matched = false;
        for rule in self.rules.iter().filter(|r| r.matches(subject)) {
            matched = true;
            let reason = match rule.action {
                Action::Allow => {
                    allowed.push(rule.name.clone());
                    continue;
                }
                Action::Verify if exempt.is_some() => {
                    allowed.push(rule.name.clone());
                    continue;
                }
                Action::Verify => {
                    verify.push(rule.name.clone());
                    continue;
                }
                Action::Deny => REASON_DENY_RULE,
            };
            denials.push(RuleDenial {
                rule: rule.name.clone(),
                reason: reason.to_string(),
                mode: self.mode_of(rule),
            });
        }
        if !matched && exempt.is_none() {
            match self.default {
                DefaultAction::Allow => allowed.push(DEFAULT_RULE.to_string()),
                DefaultAction::Deny => denials.push(RuleDenial {
                    rule: DEFAULT_RULE.to_string(),
                    reason: REASON_DEFAULT_DENY.to_string(),
                    mode: self.mode,
                }),
            }
        }

        if let Some(i) = denials.iter().position(|d| d.mode == Mode::Enforce) {
            return Decision::Deny(denials.swap_remove(i));
        }
        Decision::Allow {
            rules: allowed,
            audited: denials,
            exempt,
            verify,
        }
    }

    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> Policy {
        match parse(Path::new("/etc/vouch/policy.toml"), text.as_bytes()) {
            Ok(p) => p.policy,
            Err(e) => panic!("{e}"),
        }
    }

    fn parse_err(text: &str) -> String {
        match parse(Path::new("/etc/vouch/policy.toml"), text.as_bytes()) {
            Ok(p) => panic!("accepted: {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    const VERIFY_EXAMPLE: &str = r#"version = 1
[[rule]]
name = "prod"
images = ["registry.example.com/prod/**"]
action = "verify"
threshold = 2
signature_repository = "registry.example.com/signatures"
require_identity_match = false
[[rule.authority]]
name = "release-2026"
key = "keys/release.pub"
valid_until = "2027-01-01T00:00:00Z"
[[rule.authority]]
name = "ci"
keyless = { trusted_root = "/etc/vouch/trusted_root.json", issuer = "https://token.actions.githubusercontent.com", subject_regex = "^https://github.com/acme/.*" }
"#;

    #[test]
    fn verify_rule_from_the_issue_parses_with_every_field() {
        let p = policy(VERIFY_EXAMPLE);
        let v = p.rules[0].verify.as_ref().unwrap();
        assert_eq!(v.threshold, 2);
        assert_eq!(
            v.signature_repository.as_deref(),
            Some("registry.example.com/signatures")
        );
        assert!(!v.require_identity_match);
        assert_eq!(v.authorities[0].name, "release-2026");
        assert_eq!(
            v.authorities[0].trust,
            Trust::Key(PathBuf::from("/etc/vouch/keys/release.pub"))
        );
        assert_eq!(
            v.authorities[0].valid_until.map(|t| t.unix_timestamp()),
            Some(1798761600)
        );
        match &v.authorities[1].trust {
            Trust::Keyless(k) => {
                assert_eq!(
                    k.trusted_root,
                    PathBuf::from("/etc/vouch/trusted_root.json")
                );
                assert!(k
                    .issuer
                    .matches("https://token.actions.githubusercontent.com"));
                assert!(k
                    .subject
                    .matches("https://github.com/acme/app/.github/workflows/r.yml@refs/tags/v1"));
                assert!(!k.subject.matches("https://github.com/evil/x"));
                assert!(!k.subject.matches("prefix https://github.com/acme/x"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn verify_rule_defaults_to_threshold_one_and_identity_match() {
        let p = policy(
            "version = 1\n[[rule]]\nname = \"v\"\nimages = [\"a.io/x\"]\naction = \"verify\"\n[[rule.authority]]\nname = \"k\"\nkey = \"/k.pub\"\n",
        );
        let v = p.rules[0].verify.as_ref().unwrap();
        assert_eq!(v.threshold, 1);
        assert!(v.require_identity_match);
        assert_eq!(v.signature_repository, None);
    }

    #[test]
    fn verify_rule_errors_name_the_line() {
        let head =
            "version = 1\n[[rule]]\nname = \"v\"\nimages = [\"a.io/x\"]\naction = \"verify\"\n";
        let e = parse_err(head);
        assert!(
            e.contains("line 3") && e.contains("at least one [[rule.authority]]"),
            "{e}"
        );
        let e = parse_err(&format!(
            "{head}threshold = 3\n[[rule.authority]]\nname = \"k\"\nkey = \"/k.pub\"\n"
        ));
        assert!(
            e.contains("line 6") && e.contains("threshold must be between 1 and"),
            "{e}"
        );
        let e = parse_err(&format!("{head}[[rule.authority]]\nname = \"k\"\n"));
        assert!(e.contains("needs exactly one of key and keyless"), "{e}");
        let e = parse_err(&format!("{head}[[rule.authority]]\nname = \"k\"\nkey = \"/k.pub\"\nvalid_until = \"next year\"\n"));
        assert!(e.contains("line 9") && e.contains("RFC 3339"), "{e}");
        let e = parse_err(&format!("{head}[[rule.authority]]\nname = \"k\"\nkeyless = {{ trusted_root = \"/r.json\", issuer = \"i\", subject_regex = \"(\" }}\n"));
        assert!(e.contains("invalid subject_regex"), "{e}");
        let e = parse_err(&format!("{head}[[rule.authority]]\nname = \"k\"\nkeyless = {{ trusted_root = \"/r.json\", subject = \"s\" }}\n"));
        assert!(e.contains("exactly one of issuer and issuer_regex"), "{e}");
        let e = parse_err(&format!(
            "{head}[[rule.authority]]\nname = \"k\"\nkey = \"/a\"\nfingerprint = \"x\"\n"
        ));
        assert!(e.contains("unknown field"), "{e}");
        let e = parse_err(
            "version = 1\n[[rule]]\nname = \"a\"\nimages = [\"a.io/x\"]\naction = \"allow\"\nthreshold = 1\n",
        );
        assert!(
            e.contains("line 6") && e.contains("belong to rules with action = \"verify\""),
            "{e}"
        );
    }

    #[test]
    fn a_pattern_that_would_close_the_anchoring_group_is_refused_on_its_line() {
        // Wrapped as `^(?:...)$` this would read `^(?:https://github\.com/acme/.*)|(.*)$`:
        // anything at all, through the second branch.
        let escape = r"https://github\.com/acme/.*)|(.*";
        let head =
            "version = 1\n[[rule]]\nname = \"v\"\nimages = [\"a.io/x\"]\naction = \"verify\"\n";
        for (field, other) in [
            ("subject_regex", "issuer = \"i\""),
            ("issuer_regex", "subject = \"s\""),
        ] {
            let e = parse_err(&format!(
                "{head}[[rule.authority]]\nname = \"k\"\nkeyless = {{ trusted_root = \"/r.json\", {other}, {field} = '{escape}' }}\n"
            ));
            assert!(
                e.contains("line 8")
                    && e.contains(&format!(
                        "invalid {field}: {escape:?} is not a regular expression: unopened group"
                    )),
                "{e}"
            );
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        // A stored pattern is checked the same way when it is matched.
        let m = Match::Regex(escape.to_string());
        assert!(!m.matches("https://github.com/evil/x"));
        assert!(!m.matches("https://github.com/acme/x"));
        assert!(Match::Regex("^https://github\\.com/acme/.*$".into())
            .matches("https://github.com/acme/x"));
    }

    const STAGEMOLE: &str =
        "witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv";
    const RING_ANY_BELLS: &str = "staging.witness.transparency.goog/ring-any-bells+2e1a8dc9+BG5JTpLc3FJtwzgh1Uv+Qelz9qeOH2bfWjS1s0s+y4rL";

    fn keyless_policy(extra: &str) -> String {
        format!(
            "version = 1\n[[rule]]\nname = \"v\"\nimages = [\"a.io/x\"]\naction = \"verify\"\n\
             [[rule.authority]]\nname = \"k\"\nkeyless = {{ trusted_root = \"/r.json\", \
             issuer = \"i\", subject = \"s\"{extra} }}\n"
        )
    }

    fn keyless_of(p: &Policy) -> &Keyless {
        match &p.rules[0].verify.as_ref().unwrap().authorities[0].trust {
            Trust::Keyless(k) => k,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_keyless_authority_names_its_witnesses_and_quorum() {
        let p = policy(&keyless_policy(&format!(
            ", witnesses = [\"{STAGEMOLE}\", \"{RING_ANY_BELLS}\"], witness_quorum = 2"
        )));
        let k = keyless_of(&p);
        assert_eq!(k.witnesses, vec![STAGEMOLE, RING_ANY_BELLS]);
        assert_eq!(k.witness_quorum, 2);
        let w = k.witnesses().unwrap();
        assert_eq!((w.keys().len(), w.quorum()), (2, 2));
        assert_eq!(
            w.keys()[1].name(),
            "staging.witness.transparency.goog/ring-any-bells"
        );

        let p = policy(&keyless_policy(""));
        let k = keyless_of(&p);
        assert!(k.witnesses.is_empty());
        assert_eq!(k.witness_quorum, 0);
    }

    #[test]
    fn unusable_witnesses_are_refused_on_their_line() {
        let cases = [
            (
                ", witnesses = [\"witness.example+0000+AAAA\"]".to_string(),
                "invalid witness key \"witness.example+0000+AAAA\": the key ID is not 8 hexadecimal digits".to_string(),
            ),
            (
                format!(", witnesses = [\"{STAGEMOLE}\"], witness_quorum = 2"),
                "a witness quorum of 2 needs as many witness keys; 1 given".to_string(),
            ),
            (
                ", witness_quorum = -1".to_string(),
                "witness_quorum -1 is negative".to_string(),
            ),
            (
                format!(", witnesses = [\"{STAGEMOLE}\", \"{STAGEMOLE}\"]"),
                format!("witness key {STAGEMOLE:?} is listed twice"),
            ),
        ];
        for (extra, says) in cases {
            let e = parse_err(&keyless_policy(&extra));
            assert!(e.contains("line 8") && e.contains(&says), "{extra}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }

    const MEASURE_HEAD: &str =
        "version = 1\n[[rule]]\nname = \"m\"\nimages = [\"a.io/x\"]\naction = \"allow\"\n";

    #[test]
    fn rootfs_and_host_tables_parse_with_every_key() {
        let p = policy(&format!(
            "{MEASURE_HEAD}[rule.rootfs]\nbaseline = \"image\"\nexempt_paths = [\"/var/cache/**\", \"/tmp/*\"]\n\
             [rule.host]\nallow_privileged = true\nrequire_seccomp = true\nallowed_modules = [\"overlay\", \"nf_*\"]\n\
             required_lsm = [\"AppArmor\"]\nrunc_sha256 = [\"sha256:{}\"]\npod_security = \"restricted\"\nallow_exec = false\nallowed_hooks = [\"/usr/bin/gpu-hook\"]\n",
            "AB".repeat(32)
        ));
        let r = &p.rules[0];
        assert_eq!(
            r.rootfs,
            Some(RootfsRequirement {
                baseline: Baseline::Image,
                exempt_paths: vec!["/var/cache/**".into(), "/tmp/*".into()],
            })
        );
        assert_eq!(
            r.host,
            Some(HostRequirement {
                allow_privileged: true,
                require_seccomp: true,
                allowed_modules: Some(vec!["overlay".into(), "nf_*".into()]),
                required_lsm: vec!["apparmor".into()],
                runc_sha256: vec!["ab".repeat(32)],
                pod_security: Some(Level::Restricted),
                allow_exec: false,
                allowed_hooks: vec!["/usr/bin/gpu-hook".into()],
                allowed_devices: vec![],
            })
        );
        // An empty [rule.host] refuses privileged containers and checks nothing else.
        let p = policy(&format!("{MEASURE_HEAD}[rule.host]\n"));
        let h = p.rules[0].host.as_ref().unwrap();
        assert!(!h.allow_privileged && !h.require_seccomp);
        assert_eq!(h.allowed_modules, None);
        assert_eq!(h.pod_security, None);
        for (word, level) in [
            ("privileged", Level::Privileged),
            ("baseline", Level::Baseline),
            ("restricted", Level::Restricted),
        ] {
            let text = format!("{MEASURE_HEAD}[rule.host]\npod_security = \"{word}\"\n");
            let h = policy(&text).rules[0].host.clone().unwrap();
            assert_eq!(h.pod_security, Some(level));
            assert!(
                h.describe()
                    .contains(&format!("Pod Security Standard \"{word}\"")),
                "{}",
                h.describe()
            );
        }
        for (word, baseline) in [
            ("image", Baseline::Image),
            ("declared-files-match", Baseline::DeclaredFilesMatch),
            (
                "no-undeclared-executables",
                Baseline::NoUndeclaredExecutables,
            ),
            ("off", Baseline::Off),
        ] {
            let text = format!("{SBOM_HEAD}[rule.rootfs]\nbaseline = \"{word}\"\n");
            assert_eq!(
                policy(&text).rules[0].rootfs.as_ref().unwrap().baseline,
                baseline
            );
        }
    }

    #[test]
    fn path_and_device_patterns_that_cannot_be_compiled_are_errors_on_their_line() {
        let huge = format!("/{}", "?".repeat(200_000));
        let e = parse_err(&format!(
            "{MEASURE_HEAD}[rule.rootfs]\nbaseline = \"image\"\nexempt_paths = [\n  \"/ok\",\n  \"{huge}\",\n]\n"
        ));
        assert!(
            e.contains("line 10, column 3") && e.contains("exempt_paths entry: cannot be compiled"),
            "{}",
            &e[..e.len().min(300)]
        );
        assert!(!e.contains('\n'));
        let e = parse_err(&format!(
            "{MEASURE_HEAD}[rule.host]\nallowed_devices = [\"/dev{huge}\"]\n"
        ));
        assert!(
            e.contains("line 7") && e.contains("allowed_devices entry: cannot be compiled"),
            "{}",
            &e[..e.len().min(300)]
        );
    }

    #[test]
    fn rootfs_and_host_errors_name_file_line_and_column() {
        let e = parse_err(&format!(
            "{MEASURE_HEAD}[rule.rootfs]\nbaseline = \"layers\"\n"
        ));
        assert!(
            e.contains("line 7") && e.contains("unknown variant `layers`"),
            "{e}"
        );
        let e = parse_err(&format!("{MEASURE_HEAD}[rule.rootfs]\n"));
        assert!(e.contains("missing field `baseline`"), "{e}");
        let e = parse_err(&format!(
            "{MEASURE_HEAD}[rule.rootfs]\nbaseline = \"declared-files-match\"\n"
        ));
        assert!(
            e.contains("line 6") && e.contains("needs a [rule.sbom]"),
            "{e}"
        );
        let e = parse_err(&format!(
            "{MEASURE_HEAD}[rule.rootfs]\nbaseline = \"image\"\nexempt_paths = [\"/ok\", \"var/log\"]\n"
        ));
        assert!(
            e.contains("line 8, column 24") && e.contains("absolute path pattern"),
            "{e}"
        );
        let e = parse_err(&format!(
            "{MEASURE_HEAD}[rule.rootfs]\nbaseline = \"image\"\nexempt_paths = [\"/a/../etc\"]\n"
        ));
        assert!(e.contains("without . or .."), "{e}");
        let e = parse_err(&format!(
            "{MEASURE_HEAD}[rule.host]\nrunc_sha256 = [\"abc\"]\n"
        ));
        assert!(e.contains("line 7") && e.contains("64 hex digits"), "{e}");
        let e = parse_err(&format!(
            "{MEASURE_HEAD}[rule.host]\nrequired_lsm = [\"app armor\"]\n"
        ));
        assert!(e.contains("is not a name"), "{e}");
        let e = parse_err(&format!(
            "{MEASURE_HEAD}[rule.host]\nallow_priviledged = false\n"
        ));
        assert!(e.contains("unknown field `allow_priviledged`"), "{e}");
        for bad in ["\"strict\"", "\"Restricted\"", "\"\""] {
            let e = parse_err(&format!(
                "{MEASURE_HEAD}[rule.host]\nallow_privileged = true\npod_security = {bad}\n"
            ));
            assert!(
                e.contains("policy.toml")
                    && e.contains("line 8, column 16")
                    && e.contains(&format!(
                        "pod_security {bad} is not a Pod Security Standards level"
                    )),
                "{e}"
            );
        }
        let e = parse_err(&format!("{MEASURE_HEAD}[rule.host]\npod_security = 2\n"));
        assert!(
            e.contains("policy.toml: line 7, column 16") && e.contains("expected a string"),
            "{e}"
        );
        let e = parse_err(
            "version = 1\n[[rule]]\nname = \"d\"\nimages = [\"a.io/x\"]\naction = \"deny\"\n[rule.host]\n",
        );
        assert!(
            e.contains("line 6") && e.contains("allow and verify rules"),
            "{e}"
        );
    }

    const SBOM_EXAMPLE: &str = r#"version = 1
[[rule]]
name = "prod"
images = ["registry.example.com/prod/**"]
action = "verify"
[[rule.authority]]
name = "release"
key = "/etc/vouch/keys/release.pub"
[rule.sbom]
require = true
formats = ["spdx", "cyclonedx"]
min_fields = ["supplier", "name", "version", "purl", "relationships", "author", "timestamp"]
deny_licenses = ["GPL-3.0-only", "AGPL-*"]
allow_licenses = []
deny_packages = ["pkg:deb/debian/openssl@<3.0.7", "pkg:npm/event-stream"]
deny_severity = "critical"
deny_cves = ["CVE-2021-44228"]
ignore = [{ id = "CVE-2023-1234", until = "2027-01-01" }, { id = "GHSA-xxxx-yyyy-zzzz" }, { id = "CVE-2024-1", until = "2026-06-30T12:00:00+02:00" }]
max_age_days = 90
rego = "rules/sbom.rego"
allow_unsigned = false
"#;

    const SBOM_HEAD: &str = "version = 1\n[[rule]]\nname = \"v\"\nimages = [\"a.io/x\"]\naction = \"verify\"\n[[rule.authority]]\nname = \"k\"\nkey = \"/k.pub\"\n[rule.sbom]\n";

    #[test]
    fn sbom_rule_example_parses_with_every_key() {
        let p = policy(SBOM_EXAMPLE);
        let r = p.rules[0].sbom.as_ref().unwrap();
        assert!(r.require);
        assert_eq!(
            r.formats,
            vec![crate::sbom::Format::Spdx, crate::sbom::Format::CycloneDx]
        );
        assert_eq!(r.min_fields.len(), 7);
        assert_eq!(r.min_fields[0], MinField::Supplier);
        assert_eq!(r.min_fields[6], MinField::Timestamp);
        assert_eq!(r.deny_licenses[1].as_str(), "AGPL-*");
        assert!(r.allow_licenses.is_empty());
        assert_eq!(r.deny_packages[0].as_str(), "pkg:deb/debian/openssl@<3.0.7");
        assert_eq!(r.deny_severity, Some(crate::sbom::Severity::Critical));
        assert_eq!(r.deny_cves, vec!["CVE-2021-44228".to_string()]);
        assert_eq!(r.ignore.len(), 3);
        assert_eq!(r.ignore[0].id, "CVE-2023-1234");
        assert_eq!(
            r.ignore[0].until.map(|t| t.unix_timestamp()),
            Some(1798761600)
        );
        assert_eq!(r.ignore[0].until_text().as_deref(), Some("2027-01-01"));
        assert_eq!(r.ignore[1].until, None);
        assert_eq!(
            r.ignore[2].until.map(|t| t.unix_timestamp()),
            Some(1782813600)
        );
        assert_eq!(r.max_age_days, Some(90));
        assert_eq!(
            r.rego.as_deref(),
            Some(Path::new("/etc/vouch/rules/sbom.rego"))
        );
        assert!(!r.allow_unsigned);
        // The rule's serialised form (vouch policy check --output json) names the same words.
        let json = serde_json::to_value(&p.rules[0]).unwrap();
        assert_eq!(json["sbom"]["formats"][1], "cyclonedx");
        assert_eq!(json["sbom"]["deny_severity"], "critical");
        assert_eq!(json["sbom"]["min_fields"][4], "relationships");
        assert_eq!(json["sbom"]["ignore"][0]["until"], "2027-01-01T00:00:00Z");
        let lines = crate::sbom_rule::describe(r);
        assert!(
            lines
                .iter()
                .any(|l| l == "ignored: CVE-2023-1234 until 2027-01-01"),
            "{lines:?}"
        );
    }

    #[test]
    fn sbom_rule_defaults_require_a_signed_sbom_of_either_format() {
        let p = policy(SBOM_HEAD);
        let r = p.rules[0].sbom.as_ref().unwrap();
        assert_eq!(*r, crate::sbom_rule::SbomRequirement::default());
        assert!(r.require && !r.allow_unsigned);
        assert_eq!(r.formats.len(), 2);
        assert!(r.min_fields.is_empty() && r.deny_severity.is_none());
        // No [rule.sbom]: no SBOM requirement.
        let p = policy(&SBOM_HEAD.replace("[rule.sbom]\n", ""));
        assert_eq!(p.rules[0].sbom, None);
        // A TOML date works as well as a string.
        let p = policy(&format!("{SBOM_HEAD}ignore = [{{ id = \"CVE-1\", until = 2027-01-01 }}]\nformats = [\"spdx\"]\nrequire = false\n"));
        let r = p.rules[0].sbom.as_ref().unwrap();
        assert_eq!(r.ignore[0].until_text().as_deref(), Some("2027-01-01"));
        assert_eq!(r.formats, vec![crate::sbom::Format::Spdx]);
        assert!(!r.require);
    }

    #[test]
    fn sbom_rule_errors_name_file_line_and_column() {
        let at = |line: usize, key: &str| {
            let e = parse_err(&format!("{SBOM_HEAD}{key}\n"));
            assert!(
                e.starts_with(&format!("/etc/vouch/policy.toml: line {line}, ")),
                "{e}"
            );
            assert!(!e.contains('\n'), "{e}");
            e
        };
        let e = at(10, "deny_licence = [\"GPL-3.0\"]");
        assert!(e.contains("column 1: unknown field `deny_licence`"), "{e}");
        let e = at(10, "min_fields = [\"name\", \"homepage\"]");
        assert!(e.contains("column 23: unknown variant `homepage`"), "{e}");
        let e = at(10, "deny_licenses = [\"MIT\", \"GPL 3\"]");
        assert!(e.contains("column 25: invalid pattern \"GPL 3\""), "{e}");
        let e = at(10, "allow_licenses = [\"MIT;\"]");
        assert!(e.contains("invalid character ';'"), "{e}");
        let e = at(10, "deny_packages = [\"npm/event-stream\"]");
        assert!(
            e.contains("column 18: invalid package matcher \"npm/event-stream\": a purl starts with \"pkg:\""),
            "{e}"
        );
        let e = at(10, "deny_packages = [\"pkg:npm/x@<<1\"]");
        assert!(e.contains("unknown comparison"), "{e}");
        let e = at(10, "deny_severity = \"severe\"");
        assert!(
            e.contains("column 17: unknown severity \"severe\"; use \"critical\", \"high\", \"medium\" or \"low\""),
            "{e}"
        );
        let e = at(10, "ignore = [{ id = \"CVE-1\", until = \"next year\" }]");
        assert!(
            e.contains("column 35: until must be a date (2027-01-01) or an RFC 3339 time"),
            "{e}"
        );
        let e = at(10, "ignore = [{ id = \"CVE-1\", util = \"2027-01-01\" }]");
        assert!(e.contains("unknown field `util`"), "{e}");
        let e = at(10, "ignore = [{ until = \"2027-01-01\" }]");
        assert!(e.contains("missing field `id`"), "{e}");
        let e = at(10, "ignore = [{ id = \"\" }]");
        assert!(e.contains("ignore id must be a vulnerability id"), "{e}");
        let e = at(10, "deny_cves = [\"CVE 1\"]");
        assert!(
            e.contains("column 14: each deny_cves entry must be a vulnerability id"),
            "{e}"
        );
        let e = at(10, "formats = [\"spdx\", \"swid\"]");
        assert!(e.contains("column 20: unknown SBOM format \"swid\""), "{e}");
        let e = at(10, "formats = []");
        assert!(e.contains("formats must name at least one"), "{e}");
        let e = at(10, "max_age_days = 0");
        assert!(
            e.contains("column 16: max_age_days must be a whole number of days, at least 1"),
            "{e}"
        );
        let e = at(10, "max_age_days = -5");
        assert!(e.contains("max_age_days must be"), "{e}");
        let e = at(10, "require = \"yes\"");
        assert!(e.contains("invalid type"), "{e}");
    }

    #[test]
    fn the_deploy_example_parses_with_its_sbom_table_uncommented() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/policy.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut inside = false;
        let uncommented: String = text
            .lines()
            .map(|line| {
                inside |= line == "# [rule.sbom]";
                match line.strip_prefix("# ") {
                    Some(rest) if inside => format!("{rest}\n"),
                    _ => format!("{line}\n"),
                }
            })
            .collect();
        assert!(inside, "deploy/policy.toml has no [rule.sbom] example");
        let p = policy(&text);
        assert_eq!(p.rules[2].sbom, None);
        let p = policy(&uncommented);
        let r = p.rules[2].sbom.as_ref().unwrap();
        assert_eq!(r.deny_packages.len(), 2);
        assert_eq!(r.ignore[0].until_text().as_deref(), Some("2027-01-01"));
        assert_eq!(
            p.rules[2].rootfs.as_ref().unwrap().baseline,
            Baseline::Image
        );
        assert!(p.rules[2].host.as_ref().unwrap().require_seccomp);
    }

    #[test]
    fn sbom_rule_belongs_to_verify_rules_only() {
        let e = parse_err(
            "version = 1\n[[rule]]\nname = \"a\"\nimages = [\"a.io/x\"]\naction = \"allow\"\n[rule.sbom]\nrequire = true\n",
        );
        assert!(
            e.starts_with("/etc/vouch/policy.toml: line 6, column 1: [rule.sbom] belongs to rules with action = \"verify\""),
            "{e}"
        );
        let e = parse_err(
            "version = 1\n[[rule]]\nname = \"a\"\nimages = [\"a.io/x\"]\naction = \"deny\"\nsbom = { require = false }\n",
        );
        assert!(
            e.contains("line 6") && e.contains("[rule.sbom] belongs"),
            "{e}"
        );
    }

    fn image(repository: &str) -> Subject<'_> {
        Subject {
            repository: Some(repository),
            ..Subject::default()
        }
    }

    fn in_ns<'a>(repository: &'a str, ns: &'a str) -> Subject<'a> {
        Subject {
            repository: Some(repository),
            namespace: Some(ns),
            is_sandbox: false,
        }
    }

    fn denial(rule: &str, reason: &str, mode: Mode) -> RuleDenial {
        RuleDenial {
            rule: rule.into(),
            reason: reason.into(),
            mode,
        }
    }

    fn allow(rules: &[&str], audited: Vec<RuleDenial>) -> Decision {
        allow_verify(rules, audited, &[])
    }

    fn allow_verify(rules: &[&str], audited: Vec<RuleDenial>, verify: &[&str]) -> Decision {
        Decision::Allow {
            rules: rules.iter().map(|s| s.to_string()).collect(),
            audited,
            exempt: None,
            verify: verify.iter().map(|s| s.to_string()).collect(),
        }
    }

    const EXAMPLE: &str = r#"
version = 1
default = "deny"
mode = "enforce"
exempt = ["registry.k8s.io/pause"]
sandbox = "exempt"
[[rule]]
name = "no-debug-images"
images = ["docker.io/library/busybox", "ghcr.io/acme/debug/**"]
namespaces = ["prod-*"]
action = "deny"
mode = "audit"
"#;

    #[test]
    fn the_documented_example_parses() {
        let loaded = parse(Path::new("/p.toml"), EXAMPLE.as_bytes()).unwrap();
        let p = &loaded.policy;
        assert_eq!(p.default, DefaultAction::Deny);
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.sandbox, SandboxPolicy::Exempt);
        assert_eq!(p.exempt[0].as_str(), "registry.k8s.io/pause");
        let r = &p.rules[0];
        assert_eq!(r.name, "no-debug-images");
        assert_eq!(r.images.len(), 2);
        assert_eq!(r.namespaces.as_ref().map(Vec::len), Some(1));
        assert_eq!(r.action, Action::Deny);
        assert_eq!(r.mode, Some(Mode::Audit));
        assert_eq!(
            loaded.policy_digest,
            hex::encode(Sha256::digest(EXAMPLE.as_bytes()))
        );
        assert_eq!(loaded.policy_digest.len(), 64);
    }

    #[test]
    fn defaults_apply_when_keys_are_absent() {
        let p = policy("version = 1\n");
        assert_eq!(p.default, DefaultAction::Deny);
        assert_eq!(p.mode, Mode::Enforce);
        assert!(p.exempt.is_empty());
        assert_eq!(p.sandbox, SandboxPolicy::Exempt);
        assert!(p.rules.is_empty());
    }

    #[test]
    fn version_is_required_and_must_be_one() {
        assert!(parse_err("default = \"allow\"\n").contains("missing field `version`"));
        assert_eq!(
            parse_err("\nversion = 2\n"),
            "/etc/vouch/policy.toml: line 2, column 11: unsupported policy version 2; this vouch understands version 1"
        );
        assert!(parse_err("version = \"1\"\n").contains("line 1, column 11"));
    }

    #[test]
    fn schema_errors_name_file_line_column_and_reason_on_one_line() {
        let e = parse_err("version = 1\n[[rule]]\nname = \"a\"\nimages = [\"x\"]\naction = \"deny\"\nmdoe = \"audit\"\n");
        assert!(
            e.starts_with("/etc/vouch/policy.toml: line 6, column 1: unknown field `mdoe`"),
            "{e}"
        );
        let e = parse_err("version = 1\ndefault = \"maybe\"\n");
        assert!(
            e.starts_with("/etc/vouch/policy.toml: line 2, column 11: unknown variant `maybe`"),
            "{e}"
        );
        let e = parse_err(
            "version = 1\n[[rule]]\nname = \"a\"\nimages = [\"x\"]\naction = \"permit\"\n",
        );
        assert!(
            e.contains("line 5, column 10: unknown variant `permit`"),
            "{e}"
        );
        let e = parse_err("version = 1\nsandbox = \"skip\"\n");
        assert!(e.contains("line 2"), "{e}");
        let e = parse_err("version = 1\nsurprise = true\n");
        assert!(
            e.contains("line 2, column 1: unknown field `surprise`"),
            "{e}"
        );
        assert!(!e.contains('\n'));
    }

    #[test]
    fn rule_fields_are_required_and_validated() {
        assert!(
            parse_err("version = 1\n[[rule]]\nimages = [\"x\"]\naction = \"deny\"\n")
                .contains("missing field `name`")
        );
        assert!(
            parse_err("version = 1\n[[rule]]\nname = \"a\"\naction = \"deny\"\n")
                .contains("missing field `images`")
        );
        assert!(
            parse_err("version = 1\n[[rule]]\nname = \"a\"\nimages = [\"x\"]\n")
                .contains("missing field `action`")
        );
        let e =
            parse_err("version = 1\n[[rule]]\nname = \"\"\nimages = [\"x\"]\naction = \"deny\"\n");
        assert!(
            e.contains("line 3, column 8: rule name must not be empty"),
            "{e}"
        );
        let e = parse_err("version = 1\n[[rule]]\nname = \"a\"\nimages = []\naction = \"deny\"\n");
        assert!(
            e.contains("line 4, column 10: must list at least one pattern"),
            "{e}"
        );
        let e = parse_err("version = 1\n[[rule]]\nname = \"a\"\nimages = [\"x\"]\nnamespaces = []\naction = \"deny\"\n");
        assert!(e.contains("line 5"), "{e}");
    }

    #[test]
    fn invalid_patterns_are_located() {
        let e = parse_err("version = 1\n[[rule]]\nname = \"a\"\nimages = [\"ok\", \"busybox:latest\"]\naction = \"deny\"\n");
        assert!(
            e.contains("line 4, column 17: invalid pattern \"busybox:latest\": a pattern names repositories; remove the ':tag'"),
            "{e}"
        );
        let e = parse_err("version = 1\nexempt = [\"a//b\"]\n");
        assert!(e.contains("line 2, column 11: invalid pattern"), "{e}");
        let e = parse_err("version = 1\n[[rule]]\nname = \"a\"\nimages = [\"x\"]\nnamespaces = [\"Prod\"]\naction = \"deny\"\n");
        assert!(
            e.contains("line 5, column 15: invalid pattern \"Prod\""),
            "{e}"
        );
    }

    #[test]
    fn rule_names_are_unique() {
        let e = parse_err(
            "version = 1\n[[rule]]\nname = \"a\"\nimages = [\"x\"]\naction = \"deny\"\n[[rule]]\nname = \"a\"\nimages = [\"y\"]\naction = \"allow\"\n",
        );
        assert_eq!(
            e,
            "/etc/vouch/policy.toml: line 7, column 8: duplicate rule name \"a\""
        );
    }

    #[test]
    fn missing_policy_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        let e = load(&path).unwrap_err().to_string();
        assert_eq!(e, format!("{}: file not found", path.display()));
    }

    #[test]
    fn sandbox_is_exempt_only_for_its_sandbox_images() {
        let sandbox = |repository| Subject {
            repository: Some(repository),
            namespace: Some("prod"),
            is_sandbox: true,
        };
        let p = policy("version = 1\nexempt = [\"registry.k8s.io/pause\"]\n");
        assert_eq!(
            p.evaluate(&sandbox("registry.k8s.io/pause")),
            Decision::Allow {
                rules: vec![],
                audited: vec![],
                exempt: Some("pod sandbox of image pattern \"registry.k8s.io/pause\"".into()),
                verify: vec![]
            }
        );
        // A "sandbox" of another image is judged like every container.
        assert_eq!(
            p.evaluate(&sandbox("docker.io/library/busybox")),
            Decision::Deny(denial("default", REASON_DEFAULT_DENY, Mode::Enforce))
        );
        // A sandbox without an image is not exempt either.
        assert_eq!(
            p.evaluate(&Subject {
                repository: None,
                namespace: None,
                is_sandbox: true
            }),
            Decision::Deny(denial("default", REASON_DEFAULT_DENY, Mode::Enforce))
        );
        // sandbox_images narrows what a sandbox may run; exempt still exempts any container.
        let p = policy(
            "version = 1\nexempt = [\"registry.k8s.io/**\"]\nsandbox_images = [\"registry.k8s.io/pause\"]\n",
        );
        assert!(matches!(
            p.evaluate(&sandbox("registry.k8s.io/pause")),
            Decision::Allow { exempt: Some(ref why), .. } if why.starts_with("pod sandbox")
        ));
        assert!(matches!(
            p.evaluate(&sandbox("registry.k8s.io/kube-proxy")),
            Decision::Allow { exempt: Some(ref why), .. } if why.starts_with("image matches exempt")
        ));
        let p = policy("version = 1\nexempt = [\"registry.k8s.io/pause\"]\nsandbox = \"verify\"\n");
        assert!(matches!(
            p.evaluate(&sandbox("registry.k8s.io/pause")),
            Decision::Allow { exempt: Some(ref why), .. } if why.starts_with("image matches exempt")
        ));
        let e = parse_err("version = 1\nsandbox_images = [\"a//b\"]\n");
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn exemption_skips_supply_chain_checks_only() {
        let p = policy(
            "version = 1\ndefault = \"deny\"\nexempt = [\"registry.k8s.io/**\"]\n\
             [[rule]]\nname = \"signed\"\nimages = [\"**\"]\naction = \"verify\"\n\
             [[rule.authority]]\nname = \"k\"\nkey = \"/etc/vouch/k.pub\"\n[rule.host]\nallow_privileged = false\n\
             [[rule]]\nname = \"no-proxy\"\nimages = [\"registry.k8s.io/kube-proxy\"]\naction = \"deny\"\n",
        );
        let subject = |repository| Subject {
            repository: Some(repository),
            namespace: None,
            is_sandbox: false,
        };
        // The verify rule matches and counts as allowing, so its host rule still applies.
        match p.evaluate(&subject("registry.k8s.io/pause")) {
            Decision::Allow {
                rules,
                verify,
                exempt,
                ..
            } => {
                assert_eq!(rules, vec!["signed".to_string()]);
                assert!(verify.is_empty());
                assert!(exempt.is_some());
            }
            other => panic!("{other:?}"),
        }
        // A deny rule still denies an exempt image.
        assert_eq!(
            p.evaluate(&subject("registry.k8s.io/kube-proxy")),
            Decision::Deny(denial("no-proxy", REASON_DENY_RULE, Mode::Enforce))
        );
        // Not exempt: the verify rule must verify.
        assert!(matches!(
            p.evaluate(&subject("ghcr.io/acme/app")),
            Decision::Allow { ref verify, .. } if verify == &vec!["signed".to_string()]
        ));
    }

    #[test]
    fn exempt_patterns_pass_when_no_rule_matches_and_deny_rules_still_deny() {
        let p = policy("version = 1\nexempt = [\"registry.k8s.io/*\"]\n[[rule]]\nname = \"debug\"\nimages = [\"**/debug\"]\naction = \"deny\"\n");
        assert_eq!(
            p.evaluate(&image("registry.k8s.io/pause")),
            Decision::Allow {
                rules: vec![],
                audited: vec![],
                exempt: Some("image matches exempt pattern \"registry.k8s.io/*\"".into()),
                verify: vec![]
            }
        );
        assert_eq!(
            p.evaluate(&image("registry.k8s.io/debug")),
            Decision::Deny(denial("debug", REASON_DENY_RULE, Mode::Enforce))
        );
        assert_eq!(
            p.evaluate(&image("registry.k8s.io/x/pause")),
            Decision::Deny(denial("default", REASON_DEFAULT_DENY, Mode::Enforce))
        );
    }

    #[test]
    fn no_matching_rule_falls_to_the_default() {
        let p = policy("version = 1\n[[rule]]\nname = \"busybox\"\nimages = [\"busybox\"]\naction = \"allow\"\n");
        assert_eq!(
            p.evaluate(&image("docker.io/library/busybox")),
            allow(&["busybox"], vec![])
        );
        assert_eq!(
            p.evaluate(&image("docker.io/library/busybox2")),
            Decision::Deny(denial("default", REASON_DEFAULT_DENY, Mode::Enforce))
        );
        // No image: no rule can match.
        assert_eq!(
            p.evaluate(&Subject::default()),
            Decision::Deny(denial("default", REASON_DEFAULT_DENY, Mode::Enforce))
        );
        let p = policy("version = 1\ndefault = \"allow\"\n");
        assert_eq!(p.evaluate(&Subject::default()), allow(&["default"], vec![]));
        let p = policy("version = 1\nmode = \"audit\"\n");
        assert_eq!(
            p.evaluate(&image("ghcr.io/x")),
            allow(
                &[],
                vec![denial("default", REASON_DEFAULT_DENY, Mode::Audit)]
            )
        );
    }

    #[test]
    fn a_deny_wins_over_any_allow() {
        let p = policy(
            "version = 1\n[[rule]]\nname = \"ok\"\nimages = [\"ghcr.io/acme/**\"]\naction = \"allow\"\n[[rule]]\nname = \"no-debug\"\nimages = [\"ghcr.io/acme/debug/**\"]\naction = \"deny\"\n",
        );
        assert_eq!(
            p.evaluate(&image("ghcr.io/acme/app")),
            allow(&["ok"], vec![])
        );
        assert_eq!(
            p.evaluate(&image("ghcr.io/acme/debug/shell")),
            Decision::Deny(denial("no-debug", REASON_DENY_RULE, Mode::Enforce))
        );
    }

    #[test]
    fn verify_rules_are_left_to_the_signature_check_and_count_as_a_match() {
        let p = policy(
            "version = 1\n[[rule]]\nname = \"signed\"\nimages = [\"**\"]\naction = \"verify\"\n[[rule.authority]]\nname = \"k\"\nkey = \"/k.pub\"\n",
        );
        assert_eq!(
            p.evaluate(&image("ghcr.io/x")),
            allow_verify(&[], vec![], &["signed"])
        );
        // A deny in enforce mode needs no signature check at all.
        let p = policy(
            "version = 1\n[[rule]]\nname = \"signed\"\nimages = [\"**\"]\naction = \"verify\"\n[[rule.authority]]\nname = \"k\"\nkey = \"/k.pub\"\n[[rule]]\nname = \"no\"\nimages = [\"**\"]\naction = \"deny\"\n",
        );
        assert_eq!(
            p.evaluate(&image("ghcr.io/x")),
            Decision::Deny(denial("no", REASON_DENY_RULE, Mode::Enforce))
        );
    }

    #[test]
    fn audit_denials_allow_and_are_listed_while_enforce_denials_deny() {
        let p = policy(
            "version = 1\n[[rule]]\nname = \"a1\"\nimages = [\"**\"]\naction = \"deny\"\nmode = \"audit\"\n[[rule]]\nname = \"ok\"\nimages = [\"**\"]\naction = \"allow\"\n[[rule]]\nname = \"a2\"\nimages = [\"ghcr.io/**\"]\naction = \"verify\"\nmode = \"audit\"\n[[rule.authority]]\nname = \"k\"\nkey = \"/k.pub\"\n",
        );
        assert_eq!(
            p.evaluate(&image("ghcr.io/x")),
            allow_verify(
                &["ok"],
                vec![denial("a1", REASON_DENY_RULE, Mode::Audit)],
                &["a2"]
            )
        );
        // A policy-wide audit mode with a rule overriding back to enforce.
        let p = policy(
            "version = 1\nmode = \"audit\"\n[[rule]]\nname = \"soft\"\nimages = [\"**\"]\naction = \"deny\"\n[[rule]]\nname = \"hard1\"\nimages = [\"**\"]\naction = \"deny\"\nmode = \"enforce\"\n[[rule]]\nname = \"hard2\"\nimages = [\"**\"]\naction = \"deny\"\nmode = \"enforce\"\n",
        );
        assert_eq!(
            p.evaluate(&image("ghcr.io/x")),
            Decision::Deny(denial("hard1", REASON_DENY_RULE, Mode::Enforce))
        );
    }

    #[test]
    fn namespaces_restrict_rules_to_pods_in_them() {
        let p = policy(EXAMPLE);
        let busybox = "docker.io/library/busybox";
        assert_eq!(
            p.evaluate(&in_ns(busybox, "prod-eu")),
            allow(
                &[],
                vec![denial("no-debug-images", REASON_DENY_RULE, Mode::Audit)]
            )
        );
        // Outside prod the rule does not match, so the default (deny, enforce) decides.
        assert_eq!(
            p.evaluate(&in_ns(busybox, "dev")),
            Decision::Deny(denial("default", REASON_DEFAULT_DENY, Mode::Enforce))
        );
        // A `ctr` container has no pod namespace: a namespaced rule does not match it.
        assert_eq!(
            p.evaluate(&image(busybox)),
            Decision::Deny(denial("default", REASON_DEFAULT_DENY, Mode::Enforce))
        );
        let any = policy(
            "version = 1\n[[rule]]\nname = \"r\"\nimages = [\"busybox\"]\naction = \"allow\"\n",
        );
        assert_eq!(any.evaluate(&image(busybox)), allow(&["r"], vec![]));
        assert_eq!(any.evaluate(&in_ns(busybox, "x")), allow(&["r"], vec![]));
    }

    #[test]
    fn words_display_as_the_policy_writes_them() {
        assert_eq!(Action::Verify.to_string(), "verify");
        assert_eq!(Mode::Audit.to_string(), "audit");
        assert_eq!(DefaultAction::Allow.to_string(), "allow");
        assert_eq!(SandboxPolicy::Exempt.to_string(), "exempt");
    }
}

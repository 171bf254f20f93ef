//! The supply-chain check of `verify` rules: find the image's signatures in its registry and count
//! the rule's authorities that signed it, with the verdict cache in front.
//!
//! Outcomes are per rule. A rule passes when at least `threshold` distinct signers (keys, or keyless
//! identities: issuer and subject) verified a signature of this very digest; two authority names for
//! one key count once. Otherwise it fails with a reason that says what was found. An
//! unreachable registry is its own outcome, never "unsigned": without a fresh cached verdict the
//! start is refused with "registry unreachable" in the reason.

use std::collections::BTreeMap;
use std::{path::Path, time::SystemTime};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{
    attestation::AttestationReport,
    cache::{now_s, Entry, Key, VerdictCache},
    gate::ImageIdentity,
    keys::PublicKey,
    material::{AttestationMaterial, SignatureMaterial},
    policy::{Authority, Match, MultiArch, Rule, Trust, Verification},
    registry::{AttestationDiscovery, Discovery, Registry, RegistryError},
    rego::{RegoInput, RegoPolicy},
    sbom::Limits as SbomLimits,
    sbom_rule::{self, SbomContext, SbomRequirement},
    signature::{self, IdentityPolicy, Image, RuleAuthority, TrustedRoot, VerifyOptions},
    sigstore::{self, BlobKey, BlobPolicy, BundleAuthority, TrustRoot},
};

/// Key files and trusted roots are small; anything larger is not one.
const MAX_TRUST_FILE: u64 = 8 * 1024 * 1024;

/// Where signatures come from: the registry in production, a stand-in in tests.
pub trait SignatureSource {
    fn discover(
        &self,
        repository: &str,
        digest: &str,
        signature_repository: Option<&str>,
    ) -> std::result::Result<Discovery, RegistryError>;

    /// When `digest` is an index (multi-arch image): the digest of this node's platform manifest
    /// in it. `None` when it is a single manifest (or the index has no entry for this node).
    fn platform_manifest(
        &self,
        _repository: &str,
        _digest: &str,
    ) -> std::result::Result<Option<String>, RegistryError> {
        Ok(None)
    }

    /// The attestation material of an image: `subjects` are the image digest, then alternatives
    /// (its platform manifest). A source without attestations finds none.
    fn discover_attestations(
        &self,
        _repository: &str,
        _subjects: &[&str],
        _signature_repository: Option<&str>,
    ) -> std::result::Result<AttestationDiscovery, RegistryError> {
        Ok(AttestationDiscovery::default())
    }
}

impl SignatureSource for Registry {
    fn discover(
        &self,
        repository: &str,
        digest: &str,
        signature_repository: Option<&str>,
    ) -> std::result::Result<Discovery, RegistryError> {
        self.discover_signatures(repository, digest, signature_repository)
    }

    fn platform_manifest(
        &self,
        repository: &str,
        digest: &str,
    ) -> std::result::Result<Option<String>, RegistryError> {
        let m = self.get_manifest(repository, digest)?;
        if !crate::registry::is_index(&m.media_type) {
            return Ok(None);
        }
        Ok(select_platform(&m.bytes, host_architecture()))
    }

    fn discover_attestations(
        &self,
        repository: &str,
        subjects: &[&str],
        signature_repository: Option<&str>,
    ) -> std::result::Result<AttestationDiscovery, RegistryError> {
        Registry::discover_attestations(self, repository, subjects, signature_repository)
    }
}

/// This node's architecture in OCI's words.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The `linux/<arch>` manifest of an index (OCI index or Docker manifest list).
pub fn select_platform(index: &[u8], arch: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(index).ok()?;
    v.get("manifests")?
        .as_array()?
        .iter()
        .find(|m| {
            let p = m.get("platform");
            p.and_then(|p| p.get("os")).and_then(|o| o.as_str()) == Some("linux")
                && p.and_then(|p| p.get("architecture"))
                    .and_then(|a| a.as_str())
                    == Some(arch)
        })
        .and_then(|m| m.get("digest")?.as_str())
        .filter(|d| d.starts_with("sha256:"))
        .map(str::to_string)
}

/// How one verify rule came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// What verified, one line per authority (for the log and, later, the attestation).
    Verified(Vec<String>),
    /// Why the rule is not satisfied.
    Failed(String),
    /// The registry could not be asked; nothing is known about the signatures.
    Unreachable(String),
}

/// Reads a trust file (key or trusted root), bounded.
fn read_trust_file(path: &Path) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(MAX_TRUST_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_TRUST_FILE {
        return Err(format!(
            "{}: larger than {MAX_TRUST_FILE} bytes",
            path.display()
        ));
    }
    Ok(bytes)
}

/// The digest that keys the verdict cache (with the image digest): the repository the image is
/// started from (one digest may be signed for one repository and not another), the policy bytes and
/// every trust file the verify rules name, so that replacing a key or a trusted root invalidates what
/// was verified with it.
///
/// A rule with Rego rules adds the Rego file and the pod (namespace and name) the start is for: Rego
/// may read `input.pod`, so its verdict holds for that pod only.
pub fn material_digest(
    repository: &str,
    policy_digest: &str,
    rules: &[&Rule],
    start: &StartContext<'_>,
) -> String {
    let mut h = Sha256::new();
    h.update(repository.as_bytes());
    h.update(b"\0");
    h.update(policy_digest.as_bytes());
    // Which verify rules matched depends on the pod's namespace: an entry made for one set of
    // rules must never answer for another.
    let mut names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    h.update(b"\0rules\0");
    for name in names {
        h.update(name.as_bytes());
        h.update(b"\0");
    }
    let mut file = |path: &Path| {
        h.update(b"\0");
        h.update(path.as_os_str().as_encoded_bytes());
        match read_trust_file(path) {
            Ok(bytes) => h.update(Sha256::digest(&bytes)),
            Err(_) => h.update(b"unreadable"),
        }
    };
    let mut pod_bound = false;
    for rule in rules {
        let Some(v) = &rule.verify else { continue };
        for a in &v.authorities {
            match &a.trust {
                Trust::Key(p) => file(p),
                Trust::Keyless(k) => file(&k.trusted_root),
            }
        }
        if let Some(rego) = rule.sbom.as_ref().and_then(|s| s.rego.as_deref()) {
            file(rego);
            pod_bound = true;
        }
    }
    if pod_bound {
        h.update(b"\0pod\0");
        h.update(start.namespace.unwrap_or("").as_bytes());
        h.update(b"\0");
        h.update(start.pod_name.unwrap_or("").as_bytes());
        h.update(b"\0");
        h.update(start.image_name.unwrap_or("").as_bytes());
    }
    hex::encode(h.finalize())
}

/// Who is starting the image, as far as SBOM rules care: Rego sees it as `input.pod` and
/// `input.image.name`.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartContext<'a> {
    /// The pod's Kubernetes namespace (`None` outside Kubernetes).
    pub namespace: Option<&'a str>,
    pub pod_name: Option<&'a str>,
    /// The image as the client named it (`registry/repo:tag`), when known.
    pub image_name: Option<&'a str>,
}

/// One authority of a rule, read once per decision: its key or trusted root as cosign's `.sig` and
/// `.att` formats need it, and as Sigstore bundles need it.
struct Loaded {
    cosign: Cosign,
    bundles: TrustRoot,
    policy: BlobPolicy,
}

/// What cosign's own formats (simple signing, `.att` envelopes) are verified with.
enum Cosign {
    Key(PublicKey),
    Keyless(TrustedRoot, IdentityPolicy),
}

impl Loaded {
    /// The authority for cosign's formats and for Sigstore bundles, named `name`.
    fn authority<'a>(&'a self, name: &'a str) -> RuleAuthority<'a> {
        let cosign = match &self.cosign {
            Cosign::Key(key) => signature::Authority::Key {
                name,
                key,
                rekor: None,
            },
            Cosign::Keyless(root, identity) => signature::Authority::Keyless {
                name,
                trusted_root: root,
                identity,
            },
        };
        RuleAuthority {
            cosign,
            bundles: BundleAuthority {
                name,
                trust: &self.bundles,
                policy: &self.policy,
            },
        }
    }
}

fn load(authority: &Authority) -> std::result::Result<Loaded, String> {
    let fail = |e: String| format!("authority \"{}\": {e}", authority.name);
    match &authority.trust {
        Trust::Key(path) => {
            let bytes = read_trust_file(path).map_err(fail)?;
            let pem = std::str::from_utf8(&bytes)
                .map_err(|_| fail(format!("{}: not a PEM file", path.display())))?;
            let key =
                PublicKey::from_pem(pem).map_err(|e| fail(format!("{}: {e}", path.display())))?;
            let blob_key = BlobKey::from_pem(pem.as_bytes())
                .map_err(|e| fail(format!("{}: {e}", path.display())))?;
            // A key authority names no trusted root: a bundle's log entries and timestamps
            // cannot be verified, as cosign's `.sig` Rekor bundles are not for it either.
            let bundles = TrustRoot::key_only().map_err(|e| fail(e.reason))?;
            Ok(Loaded {
                cosign: Cosign::Key(key),
                bundles,
                policy: BlobPolicy::Key {
                    key: blob_key,
                    require_tlog: false,
                },
            })
        }
        Trust::Keyless(k) => {
            let shown = k.trusted_root.display();
            let json = read_trust_file(&k.trusted_root).map_err(fail)?;
            let root = TrustedRoot::from_json(&json).map_err(|e| fail(format!("{shown}: {e}")))?;
            let witnesses = k.witnesses().map_err(fail)?;
            let bundles = TrustRoot::from_json(&json)
                .map_err(|e| fail(format!("{shown}: {}", e.reason)))?
                .with_witnesses(witnesses);
            let (s, sr) = split(&k.subject);
            let (i, ir) = split(&k.issuer);
            let identity = IdentityPolicy::new(s, sr, i, ir).map_err(|e| fail(e.to_string()))?;
            Ok(Loaded {
                cosign: Cosign::Keyless(root, identity.clone()),
                bundles,
                policy: BlobPolicy::Keyless(identity),
            })
        }
    }
}

/// The authorities of a verify rule, in its order, each read once per decision (or why it cannot
/// be read).
struct Authorities<'r>(Vec<(&'r Authority, std::result::Result<Loaded, String>)>);

impl<'r> Authorities<'r> {
    fn load(v: &'r Verification) -> Authorities<'r> {
        Authorities(v.authorities.iter().map(|a| (a, load(a))).collect())
    }
}

fn split(m: &Match) -> (Option<&str>, Option<&str>) {
    match m {
        Match::Exact(e) => (Some(e.as_str()), None),
        Match::Regex(r) => (None, Some(r.as_str())),
    }
}

fn within(authority: &Authority, at: OffsetDateTime) -> std::result::Result<(), String> {
    if let Some(from) = authority.valid_from {
        if at < from {
            return Err(format!(
                "authority \"{}\" is valid only from {from}",
                authority.name
            ));
        }
    }
    if let Some(until) = authority.valid_until {
        if at > until {
            return Err(format!(
                "authority \"{}\" expired at {until} (rotated out)",
                authority.name
            ));
        }
    }
    Ok(())
}

fn short(fingerprint: &str) -> &str {
    fingerprint.get(..12).unwrap_or(fingerprint)
}

/// Checks one verify rule against already discovered signature material.
pub fn check(
    verification: &Verification,
    image: &ImageIdentity,
    material: &[SignatureMaterial],
    skipped: &[String],
    now: SystemTime,
) -> Outcome {
    check_with(
        verification,
        &Authorities::load(verification),
        image,
        material,
        skipped,
        now,
    )
}

/// One signature with one authority: cosign's `.sig` simple signing with the signature module
/// (it is not a Sigstore bundle, which is all sigstore-verify reads), a Sigstore bundle with
/// [`sigstore`].
fn verify_signature(
    material: &SignatureMaterial,
    target: &Image<'_>,
    authority: &RuleAuthority<'_>,
    options: &VerifyOptions,
    now: SystemTime,
) -> signature::Result<signature::VerifiedSignature> {
    match material {
        SignatureMaterial::Simple(s) => {
            signature::verify_simple_signing(s, target, &authority.cosign, options, now)
        }
        SignatureMaterial::Bundle(b) => sigstore::verify_image_signature(
            b,
            target.digest,
            &options.bundle_predicate_types,
            &authority.bundles,
        ),
    }
}

/// The time an authority's validity window is checked at: the verified signing time when there is
/// one, else the time of the decision.
fn signed_at(sig: &signature::VerifiedSignature, now: SystemTime) -> OffsetDateTime {
    sig.signed_at
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .unwrap_or_else(|| OffsetDateTime::from(now))
}

fn check_with(
    verification: &Verification,
    authorities: &Authorities<'_>,
    image: &ImageIdentity,
    material: &[SignatureMaterial],
    skipped: &[String],
    now: SystemTime,
) -> Outcome {
    if material.is_empty() {
        // Material that was unusable (wrong media type, too large, bad encoding) is named, so a
        // malformed signature never reads like an unsigned image.
        let why = match skipped {
            [] => String::new(),
            [one] => format!("; skipped unusable signature material: {one}"),
            [first, rest @ ..] => format!(
                "; skipped unusable signature material: {first} (and {} more)",
                rest.len()
            ),
        };
        return Outcome::Failed(format!("no signature found for {}{why}", image.digest));
    }
    let options = VerifyOptions {
        require_identity_match: verification.require_identity_match,
        ..VerifyOptions::default()
    };
    let target = Image {
        digest: &image.digest,
        repository: &image.repository,
    };
    let mut verified = Vec::new();
    // Who signed, once per key or keyless identity: two authority names for one key count once.
    let mut signers: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let mut reasons = Vec::new();
    for (authority, loaded) in &authorities.0 {
        let loaded = match loaded {
            Ok(l) => l,
            Err(e) => {
                reasons.push(e.clone());
                continue;
            }
        };
        let auth = loaded.authority(&authority.name);
        let mut last_error = None;
        for m in material {
            match verify_signature(m, &target, &auth, &options, now) {
                Ok(sig) => match within(authority, signed_at(&sig, now)) {
                    Ok(()) => {
                        let (who, signer) = match &sig.certificate {
                            Some(c) => (
                                format!("{} ({} via {})", authority.name, c.subject, c.issuer),
                                format!("keyless {} {}", c.issuer, c.subject),
                            ),
                            None => (
                                format!(
                                    "{} (key sha256:{})",
                                    authority.name,
                                    short(&sig.key_fingerprint)
                                ),
                                match &loaded.cosign {
                                    Cosign::Key(key) => format!("key {}", key.signer_id()),
                                    Cosign::Keyless(..) => {
                                        format!("key {}", sig.key_fingerprint)
                                    }
                                },
                            ),
                        };
                        signers.insert(signer);
                        verified.push(who);
                        last_error = None;
                        break;
                    }
                    Err(e) => last_error = Some(e),
                },
                Err(e) => {
                    if last_error.is_none() {
                        last_error = Some(e.to_string());
                    }
                }
            }
        }
        if let Some(e) = last_error {
            reasons.push(e);
        }
    }
    if signers.len() >= verification.threshold {
        return Outcome::Verified(verified);
    }
    let why = reasons
        .first()
        .cloned()
        .unwrap_or_else(|| "no signature verified".to_string());
    if verified.is_empty() {
        Outcome::Failed(format!(
            "no signature by a trusted authority ({} checked: {why})",
            material.len()
        ))
    } else {
        let shared = if verified.len() > signers.len() {
            " (authorities sharing a key or keyless identity count once)"
        } else {
            ""
        };
        Outcome::Failed(format!(
            "{} of {} required authorities verified ({}){shared}; {why}",
            signers.len(),
            verification.threshold,
            verified.join(", ")
        ))
    }
}

/// The SBOM, vulnerability and VEX attestations of `image` that count under the verify rule `v`:
/// found in its registry (cosign `.att` and `.sbom` tags and bundle referrers in the rule's
/// `signature_repository` when it sets one, BuildKit attestation manifests in the image's index),
/// each signed one verified with the rule's authorities (each within its validity window, at the
/// Rekor integrated time when there is one, else at `now`).
///
/// A statement counts when its subject is the image digest or one of `accepted_subjects`
/// (`sha256:<hex>`). Pass this node's platform manifest of a multi-arch image
/// ([`SignatureSource::platform_manifest`]) there to accept what was attested for it, BuildKit's
/// attestations included (they name the platform manifest). Authorities whose key or trusted root
/// cannot be loaded, and material that was skipped or rejected, are named in
/// [`AttestationReport::rejected`]. An unreachable registry is an error, never "no attestations".
pub fn attestations(
    v: &Verification,
    image: &ImageIdentity,
    accepted_subjects: &[String],
    source: &dyn SignatureSource,
    now: SystemTime,
) -> std::result::Result<AttestationReport, RegistryError> {
    attestations_with(v, image, accepted_subjects, source, now, true)
}

/// [`attestations`], with unsigned material (BuildKit statements, attached SBOMs) left unread
/// unless `include_unsigned`: a rule without `allow_unsigned` never parses it. Each piece left is
/// named in `rejected`.
pub fn attestations_with(
    v: &Verification,
    image: &ImageIdentity,
    accepted_subjects: &[String],
    source: &dyn SignatureSource,
    now: SystemTime,
    include_unsigned: bool,
) -> std::result::Result<AttestationReport, RegistryError> {
    attestations_loaded(
        v,
        &Authorities::load(v),
        image,
        accepted_subjects,
        source,
        now,
        include_unsigned,
    )
}

fn attestations_loaded(
    v: &Verification,
    authorities: &Authorities<'_>,
    image: &ImageIdentity,
    accepted_subjects: &[String],
    source: &dyn SignatureSource,
    now: SystemTime,
    include_unsigned: bool,
) -> std::result::Result<AttestationReport, RegistryError> {
    let subjects: Vec<&str> = std::iter::once(image.digest.as_str())
        .chain(accepted_subjects.iter().map(String::as_str))
        .collect();
    let mut found = source.discover_attestations(
        &image.repository,
        &subjects,
        v.signature_repository.as_deref(),
    )?;
    let mut unread = Vec::new();
    if !include_unsigned {
        found.material.retain(|m| match m {
            AttestationMaterial::Statement(_) | AttestationMaterial::Sbom(_) => {
                unread.push(format!(
                    "{}: unsigned, and the rule does not set allow_unsigned",
                    m.origin()
                ));
                false
            }
            AttestationMaterial::Dsse(_) | AttestationMaterial::Bundle(_) => true,
        });
    }
    let mut load_errors = Vec::new();
    let mut loaded = Vec::new();
    for (authority, l) in &authorities.0 {
        match l {
            Ok(l) => loaded.push((*authority, l)),
            Err(e) => load_errors.push(e.clone()),
        }
    }
    let rule_authorities: Vec<RuleAuthority<'_>> = loaded
        .iter()
        .map(|(authority, l)| l.authority(&authority.name))
        .collect();
    let window = |i: usize, sig: &signature::VerifiedSignature| match loaded.get(i) {
        Some((authority, _)) => within(authority, signed_at(sig, now)),
        None => Err("unknown authority".to_string()),
    };
    let target = Image {
        digest: &image.digest,
        repository: &image.repository,
    };
    let mut report = signature::verify_attestations_with(
        &found.material,
        &target,
        accepted_subjects,
        &rule_authorities,
        &VerifyOptions::default(),
        now,
        &window,
    );
    report.rejected.extend(load_errors);
    report.rejected.extend(found.skipped);
    report.rejected.extend(unread);
    Ok(report)
}

/// Makes the signature source; called only when the cache cannot answer (building a registry
/// client loads the system's TLS roots, which a cached start should not pay for).
pub type MakeSource<'a> = &'a dyn Fn() -> std::result::Result<Box<dyn SignatureSource>, String>;

/// Called with each SBOM a rule judged (on a start the cache could not answer), so that what the
/// rootfs baselines need from it can be kept.
pub type OnSbom<'a> = &'a dyn Fn(&Rule, &str, &crate::sbom::Sbom);

/// Where material comes from on a start the cache cannot answer, and what sees the SBOMs judged.
pub struct Material<'a> {
    pub make_source: MakeSource<'a>,
    pub on_sbom: OnSbom<'a>,
}

/// The verify rules' outcomes for one image, through the verdict cache, and per rule with
/// `[rule.sbom]` the digest of the SBOM judged.
pub fn check_rules(
    rules: &[&Rule],
    image: &ImageIdentity,
    start: &StartContext<'_>,
    policy_digest: &str,
    cache: &VerdictCache,
    material: &Material<'_>,
    now: SystemTime,
) -> (Vec<(String, Outcome)>, BTreeMap<String, String>) {
    let Material {
        make_source,
        on_sbom,
    } = material;
    let key = Key {
        image_digest: image.digest.clone(),
        material_digest: material_digest(&image.repository, policy_digest, rules, start),
    };
    let locked = match cache.lock(&key) {
        Ok(l) => Some(l),
        Err(e) => {
            log::warn!("verdict cache unavailable, verifying without it: {e}");
            None
        }
    };
    // An entry answers only when it has an outcome for every rule asked about.
    let complete = |e: &Entry| {
        rules
            .iter()
            .filter(|r| r.verify.is_some())
            .all(|r| e.rules.iter().any(|(n, _)| n == &r.name))
    };
    if let Some(entry) = locked
        .as_ref()
        .and_then(|l| cache.fresh(l))
        .filter(complete)
    {
        log::info!(
            "cached verdict for {} from {} s ago",
            image.subject(),
            now_s().saturating_sub(entry.verified_at)
        );
        let outcomes = entry
            .rules
            .into_iter()
            .map(|(name, r)| {
                let outcome = match r {
                    Ok(v) => Outcome::Verified(v),
                    Err(e) => Outcome::Failed(e),
                };
                (name, outcome)
            })
            .collect();
        return (outcomes, entry.sbom_digests);
    }
    let source = match make_source() {
        Ok(s) => s,
        Err(e) => {
            let outcomes = rules
                .iter()
                .map(|r| {
                    (
                        r.name.clone(),
                        Outcome::Failed(format!("cannot reach registries: {e}")),
                    )
                })
                .collect();
            return (outcomes, BTreeMap::new());
        }
    };
    let mut outcomes = Vec::new();
    let mut sbom_digests = BTreeMap::new();
    let mut expiry = policy_deadline(rules, OffsetDateTime::from(now));
    for rule in rules {
        let Some(v) = &rule.verify else { continue };
        // Keys and trusted roots are read once for the signatures and the attestations.
        let authorities = Authorities::load(v);
        let outcome = match check_multi_arch(v, &authorities, image, source.as_ref(), now) {
            Ok(o) => o,
            Err(e) if e.is_unreachable() => Outcome::Unreachable(e.to_string()),
            Err(e) => Outcome::Failed(format!("cannot read signatures: {e}")),
        };
        // The SBOM is read only for an image whose signature verified.
        let outcome = match (outcome, &rule.sbom) {
            (Outcome::Verified(mut who), Some(req)) => {
                let seen = |digest: &str, sbom: &crate::sbom::Sbom| on_sbom(rule, digest, sbom);
                let checked = check_sbom(
                    v,
                    &authorities,
                    req,
                    image,
                    start,
                    source.as_ref(),
                    &seen,
                    now,
                );
                match checked {
                    Ok((Ok((summary, digest)), too_old_at)) => {
                        expiry = earliest(expiry, too_old_at);
                        if let Some(d) = digest {
                            sbom_digests.insert(rule.name.clone(), d);
                        }
                        who.push(summary);
                        Outcome::Verified(who)
                    }
                    Ok((Err(reason), _)) => Outcome::Failed(reason),
                    Err(e) if e.is_unreachable() => Outcome::Unreachable(e.to_string()),
                    Err(e) => Outcome::Failed(format!("cannot read attestations: {e}")),
                }
            }
            (o, _) => o,
        };
        outcomes.push((rule.name.clone(), outcome));
    }
    let cacheable = outcomes
        .iter()
        .all(|(_, o)| !matches!(o, Outcome::Unreachable(_)));
    if let (true, Some(l)) = (cacheable, locked.as_ref()) {
        let allowed = outcomes
            .iter()
            .all(|(_, o)| matches!(o, Outcome::Verified(_)));
        let rules = outcomes
            .iter()
            .map(|(n, o)| {
                let r = match o {
                    Outcome::Verified(v) => Ok(v.clone()),
                    Outcome::Failed(e) | Outcome::Unreachable(e) => Err(e.clone()),
                };
                (n.clone(), r)
            })
            .collect();
        let expires_at = expiry.and_then(|t| u64::try_from(t.unix_timestamp()).ok());
        let mut entry = Entry::new(allowed, rules).expiring(expires_at);
        entry.sbom_digests = sbom_digests.clone();
        if let Err(e) = cache.store(l, &entry) {
            log::warn!("cannot store the verdict: {e}");
        }
    }
    (outcomes, sbom_digests)
}

fn earliest(a: Option<OffsetDateTime>, b: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The first moment after `now` at which the rules could judge the same material differently:
/// an authority's validity window opens or closes, an `ignore` entry ends.
fn policy_deadline(rules: &[&Rule], now: OffsetDateTime) -> Option<OffsetDateTime> {
    let mut deadline = None;
    let mut consider = |t: Option<OffsetDateTime>| {
        if let Some(t) = t.filter(|t| *t > now) {
            deadline = earliest(deadline, Some(t));
        }
    };
    for rule in rules {
        if let Some(v) = &rule.verify {
            for a in &v.authorities {
                consider(a.valid_from);
                consider(a.valid_until);
            }
        }
        if let Some(sbom) = &rule.sbom {
            for i in &sbom.ignore {
                consider(i.until);
            }
        }
    }
    deadline
}

/// The rule's `[rule.sbom]`: the image's attestations, verified with the rule's authorities, judged
/// by the built-in checks and then the rule's Rego. `Ok(Ok(summary))` passes; `Ok(Err(reason))`
/// fails with every reason on one line. With it, when the SBOM will be older than `max_age_days`.
#[allow(clippy::too_many_arguments)]
fn check_sbom(
    v: &Verification,
    authorities: &Authorities<'_>,
    req: &SbomRequirement,
    image: &ImageIdentity,
    start: &StartContext<'_>,
    source: &dyn SignatureSource,
    on_sbom: &dyn Fn(&str, &crate::sbom::Sbom),
    now: SystemTime,
) -> std::result::Result<SbomJudgement, RegistryError> {
    // For a multi-arch image, attestations about this node's platform manifest count as well
    // (BuildKit and most SBOM tools describe the platform image), unless the rule says index only.
    let accepted: Vec<String> = match v.multi_arch {
        MultiArch::Index => Vec::new(),
        MultiArch::Either | MultiArch::Platform => source
            .platform_manifest(&image.repository, &image.digest)?
            .into_iter()
            .collect(),
    };
    let report = attestations_loaded(
        v,
        authorities,
        image,
        &accepted,
        source,
        now,
        req.allow_unsigned,
    )?;
    let ctx = SbomContext {
        image_digest: &image.digest,
        repository: &image.repository,
    };
    let verdict = sbom_rule::evaluate(
        req,
        &ctx,
        &report.attestations,
        &SbomLimits::default(),
        OffsetDateTime::from(now),
    );
    let mut failures = verdict.failures.clone();
    if verdict.sbom.is_none() && !failures.is_empty() {
        // Say why material that was there did not count (forged, about another image, ...);
        // predicates policy never reads (provenance) are not news.
        let why: Vec<&String> = report
            .rejected
            .iter()
            .filter(|r| !r.contains("is not read by policy"))
            .collect();
        match why.as_slice() {
            [] => {}
            [one] => failures.push(format!("rejected: {one}")),
            [first, rest @ ..] => {
                failures.push(format!("rejected: {first} (and {} more)", rest.len()))
            }
        }
    }
    if let Some(path) = &req.rego {
        let name = start.image_name.unwrap_or(&image.repository);
        let input = RegoInput {
            image_name: name,
            image_digest: &image.digest,
            repository: &image.repository,
            namespace: start.namespace,
            pod_name: start.pod_name,
            sbom: verdict.sbom.as_ref(),
            sbom_digest: verdict.sbom_digest.as_deref(),
            vulnerabilities: &verdict.vulnerabilities,
        };
        match RegoPolicy::load(path).and_then(|p| p.deny_input(&input)) {
            Ok(messages) => failures.extend(messages),
            Err(e) => failures.push(format!("rego: {e}")),
        }
    }
    for c in &verdict.cleared {
        log::info!("{}: {c}", image.subject());
    }
    let too_old_at = match (
        req.max_age_days,
        verdict.sbom.as_ref().and_then(|s| s.created),
    ) {
        (Some(days), Some(created)) => Some(created + time::Duration::days(i64::from(days))),
        _ => None,
    };
    if failures.is_empty() {
        if let (Some(digest), Some(sbom)) = (&verdict.sbom_digest, &verdict.sbom) {
            on_sbom(digest, sbom);
        }
        Ok((
            Ok((format!("SBOM {}", verdict.summary), verdict.sbom_digest)),
            too_old_at,
        ))
    } else {
        Ok((Err(format!("SBOM: {}", failures.join("; "))), too_old_at))
    }
}

/// An SBOM rule's verdict: `Ok((summary, SBOM digest))` or `Err(reason)`, and when it will be too old.
type SbomJudgement = (
    std::result::Result<(String, Option<String>), String>,
    Option<OffsetDateTime>,
);

/// Checks a rule on the image digest and, for a multi-arch image, on this node's platform manifest,
/// as the rule's `multi_arch` allows.
fn check_multi_arch(
    v: &Verification,
    authorities: &Authorities<'_>,
    image: &ImageIdentity,
    source: &dyn SignatureSource,
    now: SystemTime,
) -> std::result::Result<Outcome, RegistryError> {
    let check_digest = |digest: &str| -> std::result::Result<Outcome, RegistryError> {
        let target = ImageIdentity {
            digest: digest.to_string(),
            ..image.clone()
        };
        let d = source.discover(&image.repository, digest, v.signature_repository.as_deref())?;
        Ok(check_with(
            v,
            authorities,
            &target,
            &d.material,
            &d.skipped,
            now,
        ))
    };
    let platform = || source.platform_manifest(&image.repository, &image.digest);
    match v.multi_arch {
        MultiArch::Index => check_digest(&image.digest),
        MultiArch::Platform => match platform()? {
            Some(p) => check_digest(&p),
            None => check_digest(&image.digest),
        },
        MultiArch::Either => {
            let on_index = check_digest(&image.digest)?;
            if matches!(on_index, Outcome::Verified(_)) {
                return Ok(on_index);
            }
            match platform()? {
                Some(p) => match check_digest(&p)? {
                    Outcome::Verified(mut who) => {
                        who.push(format!("signed platform manifest {p}"));
                        Ok(Outcome::Verified(who))
                    }
                    _ => Ok(on_index),
                },
                None => Ok(on_index),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linux_manifest_of_this_architecture_is_selected_from_an_index() {
        let index = br#"{"schemaVersion":2,"manifests":[
            {"digest":"sha256:aa","platform":{"os":"linux","architecture":"arm64"}},
            {"digest":"sha256:bb","platform":{"os":"windows","architecture":"amd64"}},
            {"digest":"sha256:cc","platform":{"os":"linux","architecture":"amd64"}},
            {"digest":"sha256:dd"}]}"#;
        assert_eq!(
            select_platform(index, "amd64").as_deref(),
            Some("sha256:cc")
        );
        assert_eq!(
            select_platform(index, "arm64").as_deref(),
            Some("sha256:aa")
        );
        assert_eq!(select_platform(index, "s390x"), None);
        assert_eq!(select_platform(b"garbage", "amd64"), None);
        assert_eq!(
            select_platform(br#"{"manifests":[{"digest":"md5:x","platform":{"os":"linux","architecture":"amd64"}}]}"#, "amd64"),
            None
        );
    }

    #[test]
    fn the_cache_deadline_is_the_next_ignore_or_authority_boundary() {
        let policy = crate::policy::parse(
            std::path::Path::new("policy.toml"),
            br#"version = 1
[[rule]]
name = "prod"
images = ["registry.example.com/**"]
action = "verify"
[[rule.authority]]
name = "old"
key = "/k.pub"
valid_until = "2030-01-01T00:00:00Z"
[rule.sbom]
ignore = [{ id = "CVE-1", until = "2020-01-01" }, { id = "CVE-2", until = "2029-06-01" }]
"#,
        )
        .unwrap();
        let rules: Vec<&Rule> = policy.policy.rules.iter().collect();
        let now = time::macros::datetime!(2026-11-25 00:00 UTC);
        // The expired ignore entry is past; the next boundary is CVE-2's end.
        assert_eq!(
            policy_deadline(&rules, now),
            Some(time::macros::datetime!(2029-06-01 00:00 UTC))
        );
        let later = time::macros::datetime!(2029-07-01 00:00 UTC);
        assert_eq!(
            policy_deadline(&rules, later),
            Some(time::macros::datetime!(2030-01-01 00:00 UTC))
        );
        assert_eq!(
            policy_deadline(&rules, time::macros::datetime!(2031-01-01 00:00 UTC)),
            None
        );
    }
}

//! Verification of cosign's own signature formats, which are not Sigstore bundles: simple signing
//! payloads (`.sig`) and DSSE envelopes (`.att`) with their Rekor bundle annotation (SET) and keyless
//! certificate. Offline: keys, the trusted root and the time come from the caller.
//!
//! Sigstore bundles (cosign v2 `--new-bundle-format`, cosign v3) are verified by
//! [`crate::sigstore`], on sigstore-verify, which reads bundles only: these older formats stay here.
//!
//! Order matters and is the same everywhere: bounded decoding, then the signature over the exact
//! bytes that were signed, and only then is the signed content parsed and compared with the image.
//! Every error renders as one short line that can stand in a denial reason.
//!
//! - [`verify_simple_signing`]: a cosign `.sig` layer (key-based, or keyless with a Fulcio
//!   certificate and a Rekor bundle);
//! - [`verify_attestations`]: in-toto attestations (cosign `.att` DSSE envelopes, Sigstore
//!   bundles through [`crate::sigstore`], BuildKit statements, attached SBOMs) about an image;
//! - [`TrustedRoot`]: a Sigstore `trusted_root.json`.

mod attestation;
mod cert;
mod json;
mod rekor;
mod trust_root;

#[cfg(test)]
mod attestation_tests;
#[cfg(any(test, feature = "test-support"))]
pub mod testca;
#[cfg(test)]
mod tests;

use std::time::SystemTime;

use serde::Deserialize;
use sha2::{Digest, Sha256};

pub use crate::dsse::pae as dsse_pae;
pub use attestation::{
    verify_attestations, verify_attestations_with, verify_envelope, Admit, RuleAuthority,
    IN_TOTO_PAYLOAD_TYPE, MAX_DOCUMENT_LEN, MAX_ENVELOPE_LEN, STATEMENT_V01, STATEMENT_V1,
};
pub use cert::{CertificateIdentity, IdentityPolicy, Matcher};
pub use json::{format_unix, parse_rfc3339};
pub use rekor::RekorEntry;
pub use trust_root::{CertificateAuthority, TransparencyLog, TrustedRoot, Validity};

use crate::keys::PublicKey;
use crate::material::{Origin, SimpleSigning};
use crate::reference::Reference;

/// Largest Sigstore bundle accepted as an image signature (certificate, inclusion proof and
/// envelope: a few KiB to tens of KiB).
pub const MAX_BUNDLE_LEN: usize = 1024 * 1024;
/// The predicate type cosign v3 uses for image signatures.
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
/// Largest attestation bundle accepted: its DSSE payload may be a large SBOM (base64 in the bundle).
pub const MAX_ATTESTATION_BUNDLE_LEN: usize = 48 * 1024 * 1024;
/// Largest attestation DSSE payload (statement) accepted.
pub const MAX_ATTESTATION_PAYLOAD: usize = 32 * 1024 * 1024;

/// The `critical.type` of a cosign simple-signing payload.
pub const COSIGN_SIGNATURE_TYPE: &str = "cosign container image signature";
/// Largest simple-signing payload accepted (cosign's are a few hundred bytes).
pub const MAX_PAYLOAD_LEN: usize = 256 * 1024;
/// Largest base64 signature annotation accepted.
const MAX_SIGNATURE_B64_LEN: usize = 4096;
/// Largest certificate / chain annotation accepted.
const MAX_CERT_PEM_LEN: usize = 64 * 1024;
const MAX_CHAIN_PEM_LEN: usize = 256 * 1024;

/// What kind of failure, for callers that treat them differently (the reason is for people).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The material cannot be decoded (bad base64, JSON, PEM, DER, sizes).
    Malformed,
    /// The signature does not verify with the key or certificate.
    BadSignature,
    /// The signature verifies but is about another image (digest, repository, type).
    WrongImage,
    /// Rekor, a timestamp or the certificate chain cannot be trusted with the trusted root.
    Untrusted,
    /// The certificate does not name the identity or issuer the policy expects.
    Identity,
    /// The certificate was not valid at the signing time Rekor (or a timestamp) vouches for.
    Expired,
}

/// Why a signature was not accepted: one short line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct SignatureError {
    pub kind: ErrorKind,
    pub reason: String,
}

pub type Result<T, E = SignatureError> = std::result::Result<T, E>;

pub(crate) fn malformed(reason: impl Into<String>) -> SignatureError {
    SignatureError {
        kind: ErrorKind::Malformed,
        reason: reason.into(),
    }
}
pub(crate) fn untrusted(reason: impl Into<String>) -> SignatureError {
    SignatureError {
        kind: ErrorKind::Untrusted,
        reason: reason.into(),
    }
}
pub(crate) fn identity_error(reason: impl Into<String>) -> SignatureError {
    SignatureError {
        kind: ErrorKind::Identity,
        reason: reason.into(),
    }
}
pub(crate) fn bad_signature(reason: impl Into<String>) -> SignatureError {
    SignatureError {
        kind: ErrorKind::BadSignature,
        reason: reason.into(),
    }
}
pub(crate) fn wrong_image(reason: impl Into<String>) -> SignatureError {
    SignatureError {
        kind: ErrorKind::WrongImage,
        reason: reason.into(),
    }
}

/// The image a signature must be about.
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    /// `sha256:<hex>`: the manifest (or index) digest the signature must name.
    pub digest: &'a str,
    /// The image's repository (`registry.example.com/prod/app`; normalised before comparing).
    pub repository: &'a str,
}

/// Who must have signed.
#[derive(Debug, Clone, Copy)]
pub enum Authority<'a> {
    /// A public key. With `rekor`, a Rekor bundle on the signature is verified against that trusted
    /// root (and required when [`VerifyOptions::require_tlog`]).
    Key {
        name: &'a str,
        key: &'a PublicKey,
        rekor: Option<&'a TrustedRoot>,
    },
    /// A Fulcio certificate for `identity`, chaining to `trusted_root`, logged in its Rekor.
    Keyless {
        name: &'a str,
        trusted_root: &'a TrustedRoot,
        identity: &'a IdentityPolicy,
    },
}

impl Authority<'_> {
    pub fn name(&self) -> &str {
        match self {
            Authority::Key { name, .. } | Authority::Keyless { name, .. } => name,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// The payload's `docker-reference` must name the image's repository (a signature copied from
    /// another repository fails). Simple signing only: bundles name a digest, not a repository.
    pub require_identity_match: bool,
    /// Key-based cosign formats: require a verified Rekor entry (keyless always requires one).
    pub require_tlog: bool,
    /// DSSE bundles: accepted in-toto predicate types; empty accepts any.
    pub bundle_predicate_types: Vec<String>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            require_identity_match: true,
            require_tlog: false,
            bundle_predicate_types: vec![COSIGN_SIGN_PREDICATE.to_string()],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFormat {
    /// A cosign `.sig` simple-signing layer.
    SimpleSigning,
    /// A Sigstore bundle with a DSSE in-toto statement.
    BundleDsse,
    /// A Sigstore bundle with a message signature over the image digest.
    BundleMessageSignature,
}

/// The keyless certificate a signature was made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCertificate {
    /// The SAN that matched the policy.
    pub subject: String,
    pub issuer: String,
    /// SHA-256 of the certificate DER, hex.
    pub fingerprint: String,
}

/// A signature that verified, for the verdict and the attestation record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    pub authority: String,
    pub format: SignatureFormat,
    /// SHA-256 of the SPKI DER of the key that verified the signature: the leaf's key for cosign's
    /// keyless formats, empty for a keyless Sigstore bundle (its certificate names the signer).
    pub key_fingerprint: String,
    /// The image digest the signature names (equal to the image's).
    pub digest: String,
    /// The payload's `critical.identity.docker-reference` (simple signing).
    pub docker_reference: Option<String>,
    /// The in-toto predicate type (DSSE bundles).
    pub predicate_type: Option<String>,
    pub certificate: Option<VerifiedCertificate>,
    /// The Rekor entry of cosign's formats (a Sigstore bundle's entries are in its verification).
    pub rekor: Option<RekorEntry>,
    /// The verified signing time (Unix seconds): a Rekor integrated time its SET vouches for, or a
    /// bundle's earliest verified time (RFC 3161 timestamp or SET). An authority's validity window
    /// is checked at it.
    pub signed_at: Option<i64>,
    pub origin: Origin,
}

/// Seconds since the epoch.
pub(crate) fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

#[derive(Deserialize)]
struct SimplePayload {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: CriticalImage,
    identity: Option<CriticalIdentity>,
}

#[derive(Deserialize)]
struct CriticalImage {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

#[derive(Deserialize)]
struct CriticalIdentity {
    #[serde(rename = "docker-reference")]
    reference: Option<String>,
}

/// Verifies a cosign simple-signing signature: the signature over the exact payload bytes, then
/// the payload (type, digest, repository), then Rekor and, keyless, the certificate.
pub fn verify_simple_signing(
    sig: &SimpleSigning,
    image: &Image<'_>,
    authority: &Authority<'_>,
    options: &VerifyOptions,
    now: SystemTime,
) -> Result<VerifiedSignature> {
    let now = unix_seconds(now);
    if sig.payload.len() > MAX_PAYLOAD_LEN {
        return Err(malformed(format!(
            "signature payload is {} bytes, more than the {MAX_PAYLOAD_LEN} allowed",
            sig.payload.len()
        )));
    }
    if sig.signature_b64.len() > MAX_SIGNATURE_B64_LEN {
        return Err(malformed("signature annotation too large"));
    }
    let signature = json::b64(sig.signature_b64.trim(), 2048, "signature annotation")?;
    let payload_hash = Sha256::digest(&sig.payload);

    let mut record = match authority {
        Authority::Key { name, key, rekor } => {
            key.verify(&sig.payload, &signature)
                .map_err(|_| bad_signature(format!("signature does not verify with key {name}")))?;
            let entry = match (rekor, &sig.rekor_bundle_json) {
                (Some(root), Some(bundle)) => {
                    let e = rekor::parse_cosign_bundle(bundle)?;
                    let entry = rekor::verify_set(&e, root, now)?;
                    rekor::check_body(&e.body, &signature, &payload_hash, rekor::Signer::Key(key))?;
                    Some(entry)
                }
                (Some(_), None) if options.require_tlog => {
                    return Err(untrusted("signature has no Rekor bundle"))
                }
                (None, _) if options.require_tlog => {
                    return Err(untrusted(format!(
                        "a Rekor entry is required but authority {name} has no trusted root"
                    )))
                }
                _ => None,
            };
            VerifiedSignature {
                authority: name.to_string(),
                format: SignatureFormat::SimpleSigning,
                key_fingerprint: key.fingerprint(),
                digest: String::new(),
                docker_reference: None,
                predicate_type: None,
                certificate: None,
                signed_at: entry.as_ref().map(|e| e.integrated_time),
                rekor: entry,
                origin: sig.origin.clone(),
            }
        }
        Authority::Keyless {
            name,
            trusted_root,
            identity,
        } => {
            let (leaf, chain) = cert::annotated(
                sig.certificate_pem.as_deref(),
                sig.chain_pem.as_deref(),
                "signature",
            )?;
            let key = leaf.key()?;
            let id = cert::identity(&leaf)?;
            key.verify(&sig.payload, &signature).map_err(|_| {
                bad_signature(format!(
                    "signature does not verify with the certificate of {}",
                    id.sans
                        .first()
                        .map(String::as_str)
                        .unwrap_or("(no subject)")
                ))
            })?;
            let bundle = sig
                .rekor_bundle_json
                .as_deref()
                .ok_or_else(|| untrusted("keyless signature has no Rekor bundle"))?;
            let e = rekor::parse_cosign_bundle(bundle)?;
            let entry = rekor::verify_set(&e, trusted_root, now)?;
            rekor::check_body(
                &e.body,
                &signature,
                &payload_hash,
                rekor::Signer::Certificate(&leaf.der),
            )?;
            keyless_checks(
                &leaf,
                &chain,
                trusted_root,
                identity,
                &entry,
                name,
                &key,
                sig.origin.clone(),
            )?
            .with_format(SignatureFormat::SimpleSigning)
        }
    };

    // Only now, with the signature verified, is the payload read.
    let payload: SimplePayload = json::parse(&sig.payload, MAX_PAYLOAD_LEN, "signature payload")
        .map_err(|e| {
            malformed(format!(
                "{} (not a cosign simple-signing payload)",
                e.reason
            ))
        })?;
    let critical = payload.critical;
    if critical.kind != COSIGN_SIGNATURE_TYPE {
        return Err(wrong_image(format!(
            "signature payload type is {:?}, not {COSIGN_SIGNATURE_TYPE:?}",
            critical.kind
        )));
    }
    if critical.image.digest != image.digest {
        return Err(wrong_image(format!(
            "signed digest {} is not the image digest {}",
            json::shown(&critical.image.digest),
            image.digest
        )));
    }
    let reference = critical.identity.and_then(|i| i.reference);
    if options.require_identity_match {
        let want = Reference::parse(image.repository)
            .map_err(|e| malformed(format!("image repository: {e}")))?
            .repository;
        let got = reference
            .as_deref()
            .ok_or_else(|| wrong_image("signature payload names no docker-reference"))?;
        let got = Reference::parse(got)
            .map_err(|_| wrong_image(format!("signature is for an invalid reference {got:?}")))?
            .repository;
        if got != want {
            return Err(wrong_image(format!(
                "signature is for repository {got}, not {want}"
            )));
        }
    }
    record.digest = critical.image.digest;
    record.docker_reference = reference;
    Ok(record)
}

impl VerifiedSignature {
    fn with_format(mut self, format: SignatureFormat) -> Self {
        self.format = format;
        self
    }
}

/// The certificate checks every keyless signature shares, once the signature and its Rekor entry
/// have verified: chain at the integrated time, identity and issuer.
#[allow(clippy::too_many_arguments)]
pub(crate) fn keyless_checks(
    leaf: &cert::Cert,
    chain: &[cert::Cert],
    root: &TrustedRoot,
    policy: &IdentityPolicy,
    entry: &RekorEntry,
    name: &str,
    key: &PublicKey,
    origin: Origin,
) -> Result<VerifiedSignature> {
    cert::verify_chain(leaf, chain, root, entry.integrated_time)?;
    let (subject, issuer) = policy.check(&cert::identity(leaf)?)?;
    Ok(VerifiedSignature {
        authority: name.to_string(),
        format: SignatureFormat::SimpleSigning,
        key_fingerprint: key.fingerprint(),
        digest: String::new(),
        docker_reference: None,
        predicate_type: None,
        certificate: Some(VerifiedCertificate {
            subject,
            issuer,
            fingerprint: leaf.fingerprint(),
        }),
        rekor: Some(entry.clone()),
        signed_at: Some(entry.integrated_time),
        origin,
    })
}

//! Sigstore bundles verified to sigstore's own standard, through one entry point, [`verify_blob`]
//! (or [`TrustRoot::verify`] for many bundles against one trusted root): `vouch verify-blob`, and
//! container starts and `vouch verify`, whose image signatures and attestations in bundles
//! [`image`] verifies with it (the image's manifest digest is the artifact).
//!
//! sigstore-verify (sigstore-rust, the verifier that passes the whole sigstore-conformance
//! bundle-verify suite) does the verification: bundle versions v0.1 to v0.3, message signatures
//! and DSSE envelopes, the Fulcio chain and SCT at each verified signing time, Rekor v1 (SET,
//! inclusion proof, checkpoint) and Rekor v2 (inclusion proof, checkpoint, RFC 3161 timestamps),
//! the trusted root's validity windows, and that the log entry is about this bundle.
//!
//! Around it, in this order:
//! 1. bounded inputs, and a trusted root whose every CA, TSA, log and CT log has a start
//!    ([`checks::trust_windows`]);
//! 2. the bundle's material suits the policy and carries no root certificate, each log entry
//!    names a trusted log, and its checkpoint is signed by that log under that log's name
//!    ([`checks`]) and cosigned as the configured witnesses require ([`witness`]): rules
//!    sigstore-verify 0.15.1 does not enforce;
//! 3. sigstore-verify;
//! 4. the identity and issuer, exact or as regular expressions anchored at both ends (which
//!    sigstore-verify does not offer);
//! 5. a verified signing time, and the validity of the log of each entry without a SET at every
//!    such time ([`checks::log_windows`]): sigstore-verify checks a log's window only through a
//!    SET, and accepts a key bundle with no verified time at all;
//! 6. its error enums turned into one [`FailureKind`] and one bounded line ([`error`]).
//!
//! Offline: nothing is fetched. The time of the checks sigstore-verify makes against "now" (a
//! log key has started, an integrated time is not in the future) is the system clock's.
//!
//! Crypto is sigstore-crypto's built-in aws-lc-rs provider (the library rustls already links):
//! nothing is installed or initialised, and no process-wide provider is set.

mod checks;
mod error;
#[cfg(test)]
mod gen;
#[cfg(test)]
mod gen_tests;
pub mod image;
#[cfg(test)]
mod image_tests;
#[cfg(test)]
mod tests;
mod witness;

use std::io::{BufReader, Read};
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sigstore_verify::crypto::KeyAlgorithm;
use sigstore_verify::trust_root::TrustedRoot;
use sigstore_verify::types::bundle::VerificationMaterialContent;
use sigstore_verify::types::{Bundle, DerPublicKey, Sha256Hash, SignatureContent};
use sigstore_verify::{
    Policy, PublicKeyVerificationPolicy, VerificationPolicy, VerificationResult, Verifier,
};

pub use error::{BlobError, FailureKind, MAX_REASON_CHARS};
pub use image::{verify_image_attestation, verify_image_signature, BundleAuthority};
pub use witness::{WitnessKey, Witnesses};

use crate::signature::{format_unix, IdentityPolicy, Matcher};

/// Largest bundle accepted: the attestation bound, as a bundle may carry an SBOM.
pub const MAX_BUNDLE_LEN: usize = crate::signature::MAX_ATTESTATION_BUNDLE_LEN;
/// Largest trusted root accepted (the public-good instance's is about 10 KiB).
pub const MAX_TRUSTED_ROOT_LEN: usize = 1024 * 1024;
/// Largest public key file accepted.
pub const MAX_KEY_LEN: usize = 64 * 1024;
/// Largest file read whole into memory. Files are streamed, except for an Ed25519 message
/// signature, which is over the whole message and cannot be checked against a digest.
pub const MAX_BUFFERED_ARTIFACT_LEN: u64 = 256 * 1024 * 1024;

/// What a bundle must be about.
#[derive(Debug, Clone, Copy)]
pub enum Artifact<'a> {
    Bytes(&'a [u8]),
    /// A file, read as it is verified.
    Path(&'a Path),
    /// The artifact's SHA-256, without the artifact (for DSSE: an in-toto subject's digest).
    Sha256([u8; 32]),
}

impl<'a> Artifact<'a> {
    /// A command-line argument: `sha256:HEX` is a digest, anything else a path.
    pub fn from_argument(argument: &'a str) -> Result<Artifact<'a>, BlobError> {
        match argument.strip_prefix("sha256:") {
            Some(hex_digest) => {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(hex_digest, &mut digest).map_err(|_| {
                    BlobError::new(
                        FailureKind::Unreadable,
                        format!(
                            "{:?} is not a digest: sha256: takes 64 hexadecimal digits",
                            error::one_line(argument, 100)
                        ),
                    )
                })?;
                Ok(Artifact::Sha256(digest))
            }
            None => Ok(Artifact::Path(Path::new(argument))),
        }
    }
}

/// A public key a bundle must be signed with (cosign's `--key`).
#[derive(Debug, Clone)]
pub struct BlobKey {
    der: DerPublicKey,
}

impl BlobKey {
    /// A PEM `PUBLIC KEY` (SubjectPublicKeyInfo): ECDSA P-256/P-384, Ed25519 or RSA.
    pub fn from_pem(pem: &[u8]) -> Result<BlobKey, BlobError> {
        let bad =
            |why: String| BlobError::new(FailureKind::Key, format!("unusable public key: {why}"));
        if pem.len() > MAX_KEY_LEN {
            return Err(bad(format!("more than {MAX_KEY_LEN} bytes")));
        }
        let text = std::str::from_utf8(pem).map_err(|_| bad("not PEM text".to_string()))?;
        let der = DerPublicKey::from_pem(text).map_err(|e| bad(e.to_string()))?;
        KeyAlgorithm::from_spki(&der).map_err(|e| bad(e.to_string()))?;
        Ok(BlobKey { der })
    }

    /// SHA-256 of the SubjectPublicKeyInfo DER, hex (as `keys::PublicKey::fingerprint`).
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(self.der.as_bytes()))
    }
}

/// Who must have signed.
#[derive(Debug, Clone)]
pub enum BlobPolicy {
    /// A managed key. Without `require_tlog` a bundle with no log entry is accepted when an
    /// RFC 3161 timestamp stands in for it; an entry that is present is always verified.
    Key { key: BlobKey, require_tlog: bool },
    /// A Fulcio certificate for this identity and OIDC issuer. A log entry is always required.
    Keyless(IdentityPolicy),
}

impl BlobPolicy {
    /// A keyless policy from cosign's four flags: for the identity and for the issuer, exactly one
    /// of the exact value and the regular expression (anchored at both ends).
    pub fn keyless(
        identity: Option<&str>,
        identity_regexp: Option<&str>,
        issuer: Option<&str>,
        issuer_regexp: Option<&str>,
    ) -> Result<BlobPolicy, BlobError> {
        Ok(BlobPolicy::Keyless(IdentityPolicy {
            subject: matcher(identity, identity_regexp, "certificate identity")?,
            issuer: matcher(issuer, issuer_regexp, "certificate OIDC issuer")?,
        }))
    }
}

fn matcher(exact: Option<&str>, pattern: Option<&str>, what: &str) -> Result<Matcher, BlobError> {
    let policy = |reason: String| BlobError::new(FailureKind::Policy, reason);
    match (exact, pattern) {
        (Some(e), None) => Ok(Matcher::Exact(e.to_string())),
        (None, Some(p)) => Matcher::anchored(p)
            .map_err(|e| policy(format!("invalid {what} regular expression: {e}"))),
        (Some(_), Some(_)) => Err(policy(format!(
            "give the {what} or a regular expression for it, not both"
        ))),
        (None, None) => Err(policy(format!(
            "a keyless check needs the {what} (exact, or a regular expression)"
        ))),
    }
}

/// What the bundle carried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum SignedContent {
    /// A signature over the artifact's bytes.
    MessageSignature,
    /// A DSSE envelope whose in-toto statement names the artifact as a subject.
    Dsse {
        payload_type: String,
        predicate_type: Option<String>,
    },
}

/// Who signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Signer {
    Certificate {
        /// The SAN the policy matched.
        identity: String,
        issuer: String,
        /// SHA-256 of the leaf certificate's DER, hex.
        fingerprint: String,
    },
    Key {
        /// SHA-256 of the SubjectPublicKeyInfo DER, hex.
        fingerprint: String,
    },
}

/// One verified transparency-log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    /// The log's name (its host), from the trusted root.
    pub log: String,
    pub index: i64,
    /// `hashedrekord/0.0.1`, `dsse/0.0.1`, `intoto/0.0.2` (Rekor v1), `hashedrekord/0.0.2` (v2).
    pub kind: String,
    /// Rekor v1's integrated time, vouched for by its SET (Unix seconds); none for Rekor v2.
    pub integrated_time: Option<i64>,
    /// The configured witnesses whose cosignatures on the entry's checkpoint verified.
    pub witnesses: Vec<String>,
}

/// A bundle that verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlobVerified {
    pub media_type: String,
    pub content: SignedContent,
    pub signer: Signer,
    pub log_entries: Vec<LogEntry>,
    /// Every verified signing time (RFC 3161 timestamps, SET-backed integrated times), Unix
    /// seconds; the certificate was valid at each.
    pub signing_times: Vec<i64>,
}

impl BlobVerified {
    /// One line for people.
    pub fn summary(&self) -> String {
        let signer = match &self.signer {
            Signer::Certificate {
                identity, issuer, ..
            } => format!("signed by {identity:?} (issuer {issuer:?})"),
            Signer::Key { fingerprint } => format!("signed by key sha256:{fingerprint}"),
        };
        let logged = match self.log_entries.as_slice() {
            [] => "not in a transparency log".to_string(),
            entries => entries
                .iter()
                .map(|e| {
                    let cosigned = if e.witnesses.is_empty() {
                        String::new()
                    } else {
                        format!(" (cosigned by {})", e.witnesses.join(", "))
                    };
                    format!("logged in {} at index {}{cosigned}", e.log, e.index)
                })
                .collect::<Vec<_>>()
                .join(", "),
        };
        let when = self
            .signing_times
            .iter()
            .min()
            .map(|t| format!(", signed at {}", format_unix(*t)))
            .unwrap_or_default();
        let what = match &self.content {
            SignedContent::MessageSignature => String::new(),
            SignedContent::Dsse { predicate_type, .. } => format!(
                ", in-toto statement {}",
                predicate_type.as_deref().unwrap_or("(no predicate type)")
            ),
        };
        error::one_line(&format!("{signer}, {logged}{when}{what}"), 400)
    }
}

/// A trusted root, checked and ready to verify any number of bundles, and the witnesses whose
/// cosignatures on log checkpoints count (none unless given).
pub struct TrustRoot {
    root: TrustedRoot,
    verifier: Verifier,
    witnesses: Witnesses,
    /// False for [`TrustRoot::key_only`]: no log, CA or timestamp authority is trusted.
    trusts_anything: bool,
}

/// A trusted root that lists nothing.
const EMPTY_TRUSTED_ROOT: &str = r#"{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
"tlogs": [], "certificateAuthorities": [], "ctlogs": [], "timestampAuthorities": []}"#;

impl TrustRoot {
    /// A Sigstore `trusted_root.json`. Every failure is [`FailureKind::TrustedRoot`].
    pub fn from_json(json: &[u8]) -> Result<TrustRoot, BlobError> {
        let bad = |why: String| {
            BlobError::new(
                FailureKind::TrustedRoot,
                format!("unusable trusted root: {why}"),
            )
        };
        // sigstore-crypto's default provider (aws-lc-rs, the `aws-lc-rs` feature, on by default)
        // needs no installing; without that feature every check would panic instead.
        if sigstore_verify::crypto::try_default_provider().is_none() {
            return Err(BlobError::new(
                FailureKind::TrustedRoot,
                "this vouch was built without a crypto provider for sigstore-verify",
            ));
        }
        if json.len() > MAX_TRUSTED_ROOT_LEN {
            return Err(bad(format!(
                "{} bytes, more than the {MAX_TRUSTED_ROOT_LEN} allowed",
                json.len()
            )));
        }
        let text = std::str::from_utf8(json).map_err(|_| bad("not UTF-8 JSON".to_string()))?;
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        checks::trust_windows(&value)?;
        let root = TrustedRoot::from_json(text).map_err(|e| bad(e.to_string()))?;
        let verifier = Verifier::new(&root).map_err(|e| bad(e.to_string()))?;
        Ok(TrustRoot {
            root,
            verifier,
            witnesses: Witnesses::default(),
            trusts_anything: true,
        })
    }

    /// No trust material at all, for a policy's `key` authority, which names no trusted root: only
    /// a managed-key bundle verifies, on its signature and its binding to the artifact. Its log
    /// entries must still be about this bundle (sigstore-verify checks that without any key), but
    /// neither they nor its RFC 3161 timestamps are verified or count as a signing time: nothing
    /// says which logs and timestamp authorities to trust.
    pub fn key_only() -> Result<TrustRoot, BlobError> {
        let root = TrustRoot::from_json(EMPTY_TRUSTED_ROOT.as_bytes())?;
        Ok(TrustRoot {
            trusts_anything: false,
            ..root
        })
    }

    /// Checks the cosignatures of these witnesses on every log entry's checkpoint, as
    /// [`Witnesses::new`] says. A trusted root has no place for witness keys.
    pub fn with_witnesses(mut self, witnesses: Witnesses) -> TrustRoot {
        self.witnesses = witnesses;
        self
    }

    /// Verifies `bundle_json` over `artifact` for `policy`.
    pub fn verify(
        &self,
        artifact: Artifact<'_>,
        bundle_json: &[u8],
        policy: &BlobPolicy,
    ) -> Result<BlobVerified, BlobError> {
        self.verify_parsed(artifact, &parse_bundle(bundle_json)?, policy)
    }

    /// [`TrustRoot::verify`] on a bundle already parsed, for a bundle verified against several
    /// artifacts in turn.
    fn verify_parsed(
        &self,
        artifact: Artifact<'_>,
        bundle: &Bundle,
        policy: &BlobPolicy,
    ) -> Result<BlobVerified, BlobError> {
        if !self.trusts_anything {
            return self.verify_key_only(artifact, bundle, policy);
        }
        checks::material(bundle, &self.root, policy)?;
        let cosigners = checks::log_entries(bundle, &self.root, &self.witnesses)?;
        let (result, signer) = match policy {
            BlobPolicy::Key { key, require_tlog } => {
                let no_entries = bundle.verification_material.tlog_entries.is_empty();
                if no_entries && *require_tlog {
                    return Err(BlobError::new(
                        FailureKind::InclusionProof,
                        "the bundle has no transparency-log entry, and one is required",
                    ));
                }
                let mut p = PublicKeyVerificationPolicy::new(key.der.clone());
                if no_entries {
                    // Nothing to skip but the requirement that there be an entry: every entry
                    // that is present is verified, and an RFC 3161 timestamp is then required.
                    p = p.skip_tlog_unsafe();
                }
                let result = self.run(artifact, bundle, &p)?;
                // sigstore-verify accepts a key bundle with no verified time at all (a Rekor v2
                // entry, or a Rekor v1 entry without SET, and no RFC 3161 timestamp).
                if result.verified_timestamps().is_empty() {
                    return Err(BlobError::new(
                        FailureKind::NoTimestamp,
                        "nothing says when the bundle was signed: no RFC 3161 timestamp, and no \
                         log entry with a SET",
                    ));
                }
                let signer = Signer::Key {
                    fingerprint: key.fingerprint(),
                };
                (result, signer)
            }
            BlobPolicy::Keyless(identity) => {
                if bundle.verification_material.tlog_entries.is_empty() {
                    return Err(BlobError::new(
                        FailureKind::InclusionProof,
                        "the bundle has no transparency-log entry, which a certificate needs",
                    ));
                }
                // Exact values are also handed to sigstore-verify, so they are checked twice;
                // regular expressions only here, after it.
                let mut p = VerificationPolicy::any_identity();
                if let Matcher::Exact(s) = &identity.subject {
                    p = p.require_identity(s.as_str());
                }
                if let Matcher::Exact(i) = &identity.issuer {
                    p = p.require_issuer(i.as_str());
                }
                let result = self.run(artifact, bundle, &p)?;
                let signer = certificate_signer(bundle, &result, identity)?;
                (result, signer)
            }
        };
        checks::log_windows(bundle, &self.root, &result)?;
        Ok(BlobVerified {
            media_type: bundle.media_type.as_str().to_string(),
            content: signed_content(bundle),
            signer,
            log_entries: bundle
                .verification_material
                .tlog_entries
                .iter()
                .zip(cosigners)
                .map(|(entry, witnesses)| LogEntry {
                    log: checks::log_of(entry, &self.root)
                        .map(|log| checks::log_name(&log.base_url).to_string())
                        .unwrap_or_default(),
                    index: entry.log_index.as_i64(),
                    kind: format!(
                        "{}/{}",
                        entry.kind_version.kind(),
                        entry.kind_version.version()
                    ),
                    integrated_time: entry
                        .inclusion_promise
                        .as_ref()
                        .and(entry.integrated_time)
                        .map(|t| t.as_second()),
                    witnesses,
                })
                .collect(),
            signing_times: result
                .verified_timestamps()
                .iter()
                .map(|t| t.as_second())
                .collect(),
        })
    }

    /// A managed-key bundle with nothing trusted but the key ([`TrustRoot::key_only`]).
    fn verify_key_only(
        &self,
        artifact: Artifact<'_>,
        bundle: &Bundle,
        policy: &BlobPolicy,
    ) -> Result<BlobVerified, BlobError> {
        let key = match policy {
            BlobPolicy::Key {
                require_tlog: true, ..
            } => {
                return Err(BlobError::new(
                    FailureKind::TrustedRoot,
                    "a transparency-log entry is required, and there is no trusted root to verify it with",
                ))
            }
            BlobPolicy::Key { key, .. } => key,
            BlobPolicy::Keyless(_) => {
                return Err(BlobError::new(
                    FailureKind::TrustedRoot,
                    "a certificate needs a trusted root to chain to, and there is none",
                ))
            }
        };
        checks::material(bundle, &self.root, policy)?;
        let timestamps = &bundle
            .verification_material
            .timestamp_verification_data
            .rfc3161_timestamps;
        if bundle.verification_material.tlog_entries.is_empty() && !timestamps.is_empty() {
            return Err(BlobError::new(
                FailureKind::UntrustedTimestamp,
                "the bundle has RFC 3161 timestamps and no transparency-log entry, and there is \
                 no trusted root to verify a timestamp with",
            ));
        }
        // Beside a log entry, timestamps no authority vouches for are dropped rather than
        // refused: they were never going to count, as the log entries do not.
        let mut bundle = bundle.clone();
        bundle
            .verification_material
            .timestamp_verification_data
            .rfc3161_timestamps
            .clear();
        let p = PublicKeyVerificationPolicy::new(key.der.clone()).skip_tlog_unsafe();
        self.run(artifact, &bundle, &p)?;
        Ok(BlobVerified {
            media_type: bundle.media_type.as_str().to_string(),
            content: signed_content(&bundle),
            signer: Signer::Key {
                fingerprint: key.fingerprint(),
            },
            log_entries: Vec::new(),
            signing_times: Vec::new(),
        })
    }

    fn run(
        &self,
        artifact: Artifact<'_>,
        bundle: &Bundle,
        policy: &(impl Policy + ?Sized),
    ) -> Result<VerificationResult, BlobError> {
        let outcome = match artifact {
            Artifact::Bytes(bytes) => self.verifier.verify(bytes, bundle, policy),
            Artifact::Sha256(digest) => {
                self.verifier
                    .verify(Sha256Hash::new(digest), bundle, policy)
            }
            Artifact::Path(path) => {
                let file = std::fs::File::open(path).map_err(|e| unreadable(path, &e))?;
                match self
                    .verifier
                    .verify_reader(BufReader::new(file), bundle, policy)
                {
                    // Refused before reading: the scheme needs the whole message.
                    Err(sigstore_verify::Error::UnsupportedArtifact(_)) => {
                        let bytes = read_at_most(path, MAX_BUFFERED_ARTIFACT_LEN)?;
                        if bytes.len() as u64 > MAX_BUFFERED_ARTIFACT_LEN {
                            return Err(BlobError::new(
                                FailureKind::Unsupported,
                                format!(
                                    "an Ed25519 message signature is checked over the whole file, \
                                     and {} is larger than {MAX_BUFFERED_ARTIFACT_LEN} bytes",
                                    path.display()
                                ),
                            ));
                        }
                        self.verifier.verify(bytes.as_slice(), bundle, policy)
                    }
                    other => other,
                }
            }
        };
        outcome.map_err(|e| error::from_sigstore(&e))
    }
}

/// Verifies a Sigstore bundle: `bundle_json` over `artifact`, signed as `policy` says, with the
/// trust material of `trusted_root_json`. A failure is one line; its kind tells a refusal from
/// unusable input ([`FailureKind::exit_code`]).
pub fn verify_blob(
    artifact: Artifact<'_>,
    bundle_json: &[u8],
    policy: &BlobPolicy,
    trusted_root_json: &[u8],
) -> Result<BlobVerified, BlobError> {
    TrustRoot::from_json(trusted_root_json)?.verify(artifact, bundle_json, policy)
}

/// Reads at most `limit + 1` bytes of `path`, so that the caller can tell a file over its bound
/// without reading all of it.
pub fn read_at_most(path: &Path, limit: u64) -> Result<Vec<u8>, BlobError> {
    let file = std::fs::File::open(path).map_err(|e| unreadable(path, &e))?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(path, &e))?;
    Ok(bytes)
}

fn unreadable(path: &Path, e: &std::io::Error) -> BlobError {
    BlobError::new(
        FailureKind::Unreadable,
        format!("cannot read {}: {e}", path.display()),
    )
}

fn parse_bundle(json: &[u8]) -> Result<Bundle, BlobError> {
    let malformed = |why: String| BlobError::new(FailureKind::Malformed, why);
    if json.len() > MAX_BUNDLE_LEN {
        return Err(malformed(format!(
            "the bundle is {} bytes, more than the {MAX_BUNDLE_LEN} allowed",
            json.len()
        )));
    }
    let text = std::str::from_utf8(json)
        .map_err(|_| malformed("the bundle is not UTF-8 JSON".to_string()))?;
    let bundle = Bundle::from_json(text).map_err(|e| {
        malformed(format!(
            "not a Sigstore bundle: {}",
            error::one_line(&e.to_string(), 200)
        ))
    })?;
    // The content is a protobuf oneof: sigstore-types reads one of the two fields and ignores
    // the other, so a bundle carrying both would be verified as the one it happened to read.
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Content {
        message_signature: Option<serde::de::IgnoredAny>,
        dsse_envelope: Option<serde::de::IgnoredAny>,
    }
    if let Ok(Content {
        message_signature: Some(_),
        dsse_envelope: Some(_),
    }) = serde_json::from_str::<Content>(text)
    {
        return Err(malformed(
            "the bundle holds both a message signature and a DSSE envelope; it must hold one"
                .to_string(),
        ));
    }
    Ok(bundle)
}

fn signed_content(bundle: &Bundle) -> SignedContent {
    match &bundle.content {
        SignatureContent::DsseEnvelope(envelope) => SignedContent::Dsse {
            payload_type: envelope.payload_type.clone(),
            // Read only now that the envelope has verified, and only to report it.
            predicate_type: serde_json::from_slice::<serde_json::Value>(
                envelope.payload.as_bytes(),
            )
            .ok()
            .and_then(|v| v.get("predicateType")?.as_str().map(str::to_string)),
        },
        _ => SignedContent::MessageSignature,
    }
}

/// The certificate's identity and issuer against the policy (regular expressions included).
fn certificate_signer(
    bundle: &Bundle,
    result: &VerificationResult,
    policy: &IdentityPolicy,
) -> Result<Signer, BlobError> {
    let identity = result.identity().map(|i| i.as_str()).ok_or_else(|| {
        BlobError::new(
            FailureKind::Identity,
            "the certificate names no email or URI identity",
        )
    })?;
    if !policy.subject.matches(identity) {
        return Err(BlobError::new(
            FailureKind::Identity,
            format!(
                "certificate identity {:?} does not match {}",
                error::one_line(identity, 160),
                policy.subject
            ),
        ));
    }
    let issuer = result.issuer().ok_or_else(|| {
        BlobError::new(FailureKind::Issuer, "the certificate names no OIDC issuer")
    })?;
    if !policy.issuer.matches(issuer) {
        return Err(BlobError::new(
            FailureKind::Issuer,
            format!(
                "certificate issuer {:?} does not match {}",
                error::one_line(issuer, 160),
                policy.issuer
            ),
        ));
    }
    let fingerprint = match &bundle.verification_material.content {
        VerificationMaterialContent::Certificate(c) => {
            hex::encode(Sha256::digest(c.raw_bytes.as_bytes()))
        }
        VerificationMaterialContent::X509CertificateChain { certificates } => certificates
            .first()
            .map(|c| hex::encode(Sha256::digest(c.raw_bytes.as_bytes())))
            .unwrap_or_default(),
        _ => String::new(),
    };
    Ok(Signer::Certificate {
        identity: identity.to_string(),
        issuer: issuer.to_string(),
        fingerprint,
    })
}

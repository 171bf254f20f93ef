//! Sigstore bundles about an image, as a container start (and `vouch verify`) reads them: cosign v3
//! image signatures and attestation bundles, found as OCI 1.1 referrers, each verified by
//! [`TrustRoot::verify`] with the image's manifest digest as the artifact.
//!
//! What an image signature must be is cosign's: a DSSE envelope whose in-toto statement names the
//! manifest digest as a subject and has an accepted predicate type (cosign v3 signs with
//! [`COSIGN_SIGN_PREDICATE`]), or a message signature over the manifest, whose SHA-256 is its
//! digest. An attestation must be a DSSE envelope whose statement names the image (or one of the
//! digests the caller accepts for it, its platform manifest); its statement is read by the caller.

use serde::Deserialize;
use sigstore_verify::types::SignatureContent;

use super::{parse_bundle, Artifact, BlobError, BlobPolicy, BlobVerified, FailureKind, TrustRoot};
use super::{SignedContent, Signer};
use crate::material::SigstoreBundle;
use crate::signature::{
    ErrorKind, SignatureError, SignatureFormat, VerifiedCertificate, VerifiedSignature,
    COSIGN_SIGN_PREDICATE, IN_TOTO_PAYLOAD_TYPE, MAX_BUNDLE_LEN, STATEMENT_V01, STATEMENT_V1,
};

/// One policy authority, as a Sigstore bundle is verified with it: its name, its trusted root
/// (parsed once per decision) and who must have signed.
#[derive(Clone, Copy)]
pub struct BundleAuthority<'a> {
    pub name: &'a str,
    pub trust: &'a TrustRoot,
    pub policy: &'a BlobPolicy,
}

/// The statement fields an image signature is judged by, read once the envelope verified.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    #[serde(rename = "_type")]
    kind: String,
    predicate_type: String,
}

/// Verifies a cosign v3 image signature in a Sigstore bundle: about `image_digest`
/// (`sha256:<hex>`, the manifest or index the start resolved), signed as `authority` says; a DSSE
/// statement must have one of `predicate_types` (any, when empty).
pub fn verify_image_signature(
    bundle: &SigstoreBundle,
    image_digest: &str,
    predicate_types: &[String],
    authority: &BundleAuthority<'_>,
) -> Result<VerifiedSignature, SignatureError> {
    if bundle.json.len() > MAX_BUNDLE_LEN {
        return Err(signature_error(BlobError::new(
            FailureKind::Malformed,
            format!(
                "the bundle is {} bytes, more than the {MAX_BUNDLE_LEN} a signature may have",
                bundle.json.len()
            ),
        )));
    }
    let digest = manifest_digest(image_digest)?;
    let parsed = parse_bundle(&bundle.json).map_err(signature_error)?;
    let verified = authority
        .trust
        .verify_parsed(Artifact::Sha256(digest), &parsed, authority.policy)
        .map_err(signature_error)?;
    let (format, predicate_type) = match &parsed.content {
        SignatureContent::DsseEnvelope(envelope) => {
            in_toto(&envelope.payload_type)?;
            let statement: Statement = serde_json::from_slice(envelope.payload.as_bytes())
                .map_err(|e| {
                    wrong_image(format!(
                        "the DSSE payload is not an in-toto statement: {}",
                        super::error::one_line(&e.to_string(), 120)
                    ))
                })?;
            if statement.kind != STATEMENT_V01 && statement.kind != STATEMENT_V1 {
                return Err(wrong_image(format!(
                    "the DSSE payload is not an in-toto statement (_type {:?})",
                    super::error::one_line(&statement.kind, 120)
                )));
            }
            if !predicate_types.is_empty() && !predicate_types.contains(&statement.predicate_type) {
                return Err(wrong_image(format!(
                    "statement predicate type {:?} is not accepted here (an image signature is {COSIGN_SIGN_PREDICATE})",
                    super::error::one_line(&statement.predicate_type, 120)
                )));
            }
            (SignatureFormat::BundleDsse, Some(statement.predicate_type))
        }
        _ => (SignatureFormat::BundleMessageSignature, None),
    };
    Ok(record(
        &verified,
        authority.name,
        format,
        image_digest,
        predicate_type,
        bundle,
    ))
}

/// Verifies an attestation in a Sigstore bundle: a DSSE envelope signed as `authority` says whose
/// statement names one of `subjects` (`sha256:<hex>`, the image's digest first). Returns the
/// verified DSSE payload, for the caller to read as a statement.
pub fn verify_image_attestation(
    bundle: &SigstoreBundle,
    subjects: &[&str],
    authority: &BundleAuthority<'_>,
) -> Result<(VerifiedSignature, Vec<u8>), SignatureError> {
    let parsed = parse_bundle(&bundle.json).map_err(signature_error)?;
    let SignatureContent::DsseEnvelope(envelope) = &parsed.content else {
        return Err(SignatureError {
            kind: ErrorKind::Malformed,
            reason: "Sigstore bundle holds a message signature, not an attestation".into(),
        });
    };
    in_toto(&envelope.payload_type)?;
    let mut first_mismatch = None;
    for subject in subjects {
        let digest = manifest_digest(subject)?;
        match authority
            .trust
            .verify_parsed(Artifact::Sha256(digest), &parsed, authority.policy)
        {
            Ok(verified) => {
                let signature = record(
                    &verified,
                    authority.name,
                    SignatureFormat::BundleDsse,
                    subject,
                    predicate_type(&verified),
                    bundle,
                );
                return Ok((signature, envelope.payload.as_bytes().to_vec()));
            }
            // The statement may be about another of the accepted digests.
            Err(e) if e.kind == FailureKind::DigestMismatch => {
                first_mismatch.get_or_insert(e);
            }
            Err(e) => return Err(signature_error(e)),
        }
    }
    Err(signature_error(first_mismatch.unwrap_or_else(|| {
        BlobError::new(
            FailureKind::DigestMismatch,
            "no image digest to verify against",
        )
    })))
}

fn in_toto(payload_type: &str) -> Result<(), SignatureError> {
    if payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(wrong_image(format!(
            "DSSE payload type {:?} is not {IN_TOTO_PAYLOAD_TYPE}",
            super::error::one_line(payload_type, 120)
        )));
    }
    Ok(())
}

fn predicate_type(verified: &BlobVerified) -> Option<String> {
    match &verified.content {
        SignedContent::Dsse { predicate_type, .. } => predicate_type.clone(),
        SignedContent::MessageSignature => None,
    }
}

/// `sha256:<hex>` as the artifact's digest.
fn manifest_digest(digest: &str) -> Result<[u8; 32], SignatureError> {
    let mut bytes = [0u8; 32];
    digest
        .strip_prefix("sha256:")
        .and_then(|hex_digest| hex::decode_to_slice(hex_digest, &mut bytes).ok())
        .ok_or_else(|| SignatureError {
            kind: ErrorKind::Malformed,
            reason: format!(
                "image digest {} is not sha256:<64 hex digits>",
                super::error::one_line(digest, 100)
            ),
        })?;
    Ok(bytes)
}

/// What a verified bundle says, as a signature record of the decision.
fn record(
    verified: &BlobVerified,
    authority: &str,
    format: SignatureFormat,
    digest: &str,
    predicate_type: Option<String>,
    bundle: &SigstoreBundle,
) -> VerifiedSignature {
    let (key_fingerprint, certificate) = match &verified.signer {
        Signer::Key { fingerprint } => (fingerprint.clone(), None),
        Signer::Certificate {
            identity,
            issuer,
            fingerprint,
        } => (
            String::new(),
            Some(VerifiedCertificate {
                subject: identity.clone(),
                issuer: issuer.clone(),
                fingerprint: fingerprint.clone(),
            }),
        ),
    };
    VerifiedSignature {
        authority: authority.to_string(),
        format,
        key_fingerprint,
        digest: digest.to_string(),
        docker_reference: None,
        predicate_type,
        certificate,
        rekor: None,
        signed_at: verified.signing_times.iter().min().copied(),
        origin: bundle.origin.clone(),
    }
}

fn wrong_image(reason: String) -> SignatureError {
    SignatureError {
        kind: ErrorKind::WrongImage,
        reason,
    }
}

/// A bundle's failure as a signature's: the same specific line, in the kind callers of the
/// signature module tell apart.
pub(crate) fn signature_error(e: BlobError) -> SignatureError {
    use FailureKind as K;
    let kind = match e.kind {
        K::Malformed | K::Unsupported | K::Unreadable => ErrorKind::Malformed,
        K::Signature | K::WrongMaterial => ErrorKind::BadSignature,
        K::DigestMismatch => ErrorKind::WrongImage,
        K::Identity | K::Issuer => ErrorKind::Identity,
        K::CertificateExpired => ErrorKind::Expired,
        _ => ErrorKind::Untrusted,
    };
    SignatureError {
        kind,
        reason: e.reason,
    }
}

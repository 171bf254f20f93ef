//! What we check around sigstore-verify, each a rule of the Sigstore specifications (or of the
//! conformance suite) that sigstore-verify 0.15.1 accepts a bundle or trusted root in breach of.
//! They run before it, so a bundle in breach is refused for that reason and no other.

use der::Decode;
use serde_json::Value;
use sigstore_verify::crypto::VerificationKey;
use sigstore_verify::trust_root::{TransparencyLog, TrustedRoot};
use sigstore_verify::types::bundle::VerificationMaterialContent;
use sigstore_verify::types::{Bundle, KindVersion, TransparencyLogEntry};
use sigstore_verify::VerificationResult;
use x509_cert::Certificate;

use super::error::{BlobError, FailureKind};
use super::witness::Witnesses;
use super::BlobPolicy;
use crate::signature::format_unix;

/// Every CA, TSA, transparency log and CT log of the trusted root has a `validFor.start`.
///
/// sigstore-verify treats an absent window as "always valid", so a key or CA whose start was
/// left out would vouch for signatures made before it existed.
pub(super) fn trust_windows(root: &Value) -> Result<(), BlobError> {
    // Logs keep their window on the public key, authorities on themselves.
    let lists = [
        ("tlogs", "transparency log", true),
        ("ctlogs", "CT log", true),
        ("certificateAuthorities", "certificate authority", false),
        ("timestampAuthorities", "timestamp authority", false),
    ];
    for (field, what, on_key) in lists {
        let Some(entries) = root.get(field).and_then(Value::as_array) else {
            continue;
        };
        for (i, entry) in entries.iter().enumerate() {
            let holder = if on_key {
                entry.get("publicKey")
            } else {
                Some(entry)
            };
            let start = holder
                .and_then(|h| h.get("validFor"))
                .and_then(|v| v.get("start"));
            if !start.is_some_and(Value::is_string) {
                return Err(BlobError::new(
                    FailureKind::TrustedRoot,
                    format!(
                        "the trusted root's {what} {} has no validFor.start; an open start is not accepted",
                        entry_name(entry, i)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// How a trusted-root entry is named in a message: its URL, else its subject, else its position.
fn entry_name(entry: &Value, index: usize) -> String {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    text(entry.get("baseUrl"))
        .or_else(|| text(entry.get("uri")))
        .or_else(|| text(entry.get("subject").and_then(|s| s.get("commonName"))))
        .map(|name| format!("{name:?}"))
        .unwrap_or_else(|| format!("#{}", index + 1))
}

/// The signing material suits the policy (a key bundle for a key, a certificate for an identity),
/// and carries no root certificate.
pub(super) fn material(
    bundle: &Bundle,
    root: &TrustedRoot,
    policy: &BlobPolicy,
) -> Result<(), BlobError> {
    let certificates: Vec<&[u8]> = match &bundle.verification_material.content {
        VerificationMaterialContent::PublicKey(_) => {
            if let BlobPolicy::Keyless(_) = policy {
                return Err(BlobError::new(
                    FailureKind::WrongMaterial,
                    "the bundle is signed with a key, not a certificate, so it names no identity",
                ));
            }
            return Ok(());
        }
        VerificationMaterialContent::Certificate(c) => vec![c.raw_bytes.as_bytes()],
        VerificationMaterialContent::X509CertificateChain { certificates } => certificates
            .iter()
            .map(|c| c.raw_bytes.as_bytes())
            .collect(),
        _ => {
            return Err(BlobError::new(
                FailureKind::Unsupported,
                "the bundle's verification material is of an unknown kind",
            ))
        }
    };
    if let BlobPolicy::Key { .. } = policy {
        return Err(BlobError::new(
            FailureKind::WrongMaterial,
            "the bundle is signed with a certificate, not with a key",
        ));
    }
    if certificates.is_empty() {
        return Err(BlobError::new(
            FailureKind::Malformed,
            "the bundle's certificate chain is empty",
        ));
    }
    no_root_certificate(&certificates, root)
}

/// The bundle specification: "the bundle MUST NOT contain the root certificate". A root in the
/// bundle invites a verifier to trust what the bundle brings; refuse a self-issued certificate
/// (subject = issuer) and a copy of a trusted CA's root, wherever they stand in the chain.
fn no_root_certificate(certificates: &[&[u8]], root: &TrustedRoot) -> Result<(), BlobError> {
    let trusted_roots: Vec<&[u8]> = root
        .certificate_authorities
        .iter()
        .filter_map(|ca| ca.cert_chain.certificates.last())
        .map(|c| c.raw_bytes.as_bytes())
        .collect();
    for (i, der) in certificates.iter().enumerate() {
        let position = if i == 0 {
            "signing certificate".to_string()
        } else {
            format!("certificate #{} of the chain", i + 1)
        };
        if trusted_roots.contains(der) {
            return Err(BlobError::new(
                FailureKind::RootInChain,
                format!("the bundle's {position} is a trusted root CA certificate; a bundle must not carry the root"),
            ));
        }
        let cert = Certificate::from_der(der).map_err(|e| {
            BlobError::new(
                FailureKind::Malformed,
                format!("the bundle's {position} is not a DER X.509 certificate: {e}"),
            )
        })?;
        let tbs = &cert.tbs_certificate;
        if tbs.subject == tbs.issuer {
            return Err(BlobError::new(
                FailureKind::RootInChain,
                format!(
                    "the bundle's {position} is self-issued ({:?}); a bundle must not carry the root",
                    tbs.subject.to_string()
                ),
            ));
        }
    }
    Ok(())
}

/// The log's name in its checkpoints: the host (and port) of its base URL, as Rekor v1
/// (`rekor.sigstore.dev`) and Rekor v2 (`log2025-1.rekor.sigstore.dev`) both sign. The checkpoint
/// origin is not it: Rekor v1's origin adds the tree ID.
pub(super) fn log_name(base_url: &str) -> &str {
    let rest = base_url
        .split_once("://")
        .map_or(base_url, |(_, rest)| rest);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

/// The trusted log whose ID the entry names.
pub(super) fn log_of<'r>(
    entry: &TransparencyLogEntry,
    root: &'r TrustedRoot,
) -> Option<&'r TransparencyLog> {
    root.tlogs
        .iter()
        .find(|log| log.log_id.key_id.as_bytes() == entry.log_id.key_id.as_bytes())
}

/// Every log entry names a log of the trusted root, and the entry's checkpoint carries a valid
/// signature of that very log under that log's name, and the cosignatures `witnesses` ask for.
/// Returns, for each entry, the witnesses that cosigned its checkpoint.
///
/// sigstore-verify picks the checkpoint key by the signature's 4-byte key hint among all trusted
/// logs and never compares the signer name, so a Rekor v2 entry naming no trusted log, or a log
/// signature relabelled with another name, passes it. It skips witness lines altogether.
pub(super) fn log_entries(
    bundle: &Bundle,
    root: &TrustedRoot,
    witnesses: &Witnesses,
) -> Result<Vec<Vec<String>>, BlobError> {
    let entries = &bundle.verification_material.tlog_entries;
    if entries.is_empty() && witnesses.quorum() > 0 {
        return Err(BlobError::new(
            FailureKind::Witness,
            format!(
                "the bundle has no transparency-log entry, and a witness quorum of {} is required",
                witnesses.quorum()
            ),
        ));
    }
    let mut cosigners = Vec::with_capacity(entries.len());
    for entry in entries {
        let log = log_of(entry, root).ok_or_else(|| unknown_log(entry))?;
        let checkpoint = entry
            .inclusion_proof
            .as_ref()
            .and_then(|p| p.checkpoint.checkpoint());
        match checkpoint {
            Some(checkpoint) => {
                checkpoint_signed_by(checkpoint, log)?;
                cosigners.push(witnesses.cosigners(checkpoint, log_name(&log.base_url))?);
            }
            None if witnesses.quorum() > 0 => {
                return Err(BlobError::new(
                    FailureKind::Witness,
                    format!(
                        "the entry of log {:?} has no checkpoint for witnesses to cosign, and a \
                         witness quorum of {} is required",
                        log_name(&log.base_url),
                        witnesses.quorum()
                    ),
                ))
            }
            None => cosigners.push(Vec::new()),
        }
    }
    Ok(cosigners)
}

/// Whether the entry's integrated time is vouched for by a SET, as sigstore-verify counts one: a
/// Rekor v1 entry with an inclusion promise and an integrated time. Its SET was then checked
/// with a key of its log valid at that time.
pub(super) fn has_set(entry: &TransparencyLogEntry) -> bool {
    let rekor_v1 = matches!(
        entry.kind_version,
        KindVersion::HashedRekordV001 | KindVersion::DsseV001 | KindVersion::IntotoV002
    );
    rekor_v1 && entry.inclusion_promise.is_some() && entry.integrated_time.is_some()
}

/// Every log entry without a SET is from a log whose key was valid (start and end inclusive) at
/// every verified signing time, and there is at least one such time.
///
/// sigstore-verify checks a log key's window only through a SET; a checkpoint key needs only to
/// have started by now. So a Rekor v2 entry (none has a SET), or a Rekor v1 entry without one,
/// from a log retired before the signature was made, or not yet started, would pass it. Run after
/// sigstore-verify, on the times it verified.
pub(super) fn log_windows(
    bundle: &Bundle,
    root: &TrustedRoot,
    verified: &VerificationResult,
) -> Result<(), BlobError> {
    let signing_times = verified.verified_timestamps();
    for entry in &bundle.verification_material.tlog_entries {
        if has_set(entry) {
            continue;
        }
        // log_entries already refused an entry naming no trusted log.
        let Some(log) = log_of(entry, root) else {
            return Err(unknown_log(entry));
        };
        let name = log_name(&log.base_url);
        if signing_times.is_empty() {
            return Err(BlobError::new(
                FailureKind::NoTimestamp,
                format!(
                    "the entry of log {name:?} has no SET and nothing else says when the bundle \
                     was signed, so the log's validity cannot be checked"
                ),
            ));
        }
        let Some(window) = &log.public_key.valid_for else {
            return Err(BlobError::new(
                FailureKind::TrustedRoot,
                format!("the trusted root's log {name:?} has no validFor"),
            ));
        };
        if let Some(outside) = signing_times.iter().find(|t| !window.contains(**t)) {
            let until = window
                .end
                .map(|end| format_unix(end.as_second()))
                .unwrap_or_else(|| "no end".to_string());
            return Err(BlobError::new(
                FailureKind::LogOutsideValidity,
                format!(
                    "signed at {}, outside the validity of log {name:?} ({} to {until})",
                    format_unix(outside.as_second()),
                    format_unix(window.start.as_second())
                ),
            ));
        }
    }
    Ok(())
}

fn unknown_log(entry: &TransparencyLogEntry) -> BlobError {
    BlobError::new(
        FailureKind::UnknownLog,
        format!(
            "the log entry names log {}, which the trusted root does not list",
            entry.log_id.key_id.to_base64()
        ),
    )
}

fn checkpoint_signed_by(
    checkpoint: &sigstore_verify::types::Checkpoint,
    log: &TransparencyLog,
) -> Result<(), BlobError> {
    let name = log_name(&log.base_url);
    let key = VerificationKey::from_spki(&log.public_key.raw_bytes).map_err(|e| {
        BlobError::new(
            FailureKind::TrustedRoot,
            format!("the trusted root's key of log {name:?} is unusable: {e}"),
        )
    })?;
    let hint = log.log_id.key_id.as_bytes().get(..4).unwrap_or_default();
    let mut other_names = Vec::new();
    for signature in checkpoint.signatures() {
        if signature.key_id.as_bytes().as_slice() != hint
            || key
                .verify(checkpoint.signed_data(), &signature.signature)
                .is_err()
        {
            continue;
        }
        if signature.name == name {
            return Ok(());
        }
        other_names.push(signature.name.as_str());
    }
    Err(match other_names.first() {
        Some(other) => BlobError::new(
            FailureKind::Checkpoint,
            format!("the checkpoint is signed by log {name:?} under another name, {other:?}"),
        ),
        None => BlobError::new(
            FailureKind::Checkpoint,
            format!("the checkpoint carries no valid signature of log {name:?}"),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::log_name;

    #[test]
    fn log_name_is_the_base_url_authority() {
        assert_eq!(log_name("https://rekor.sigstore.dev"), "rekor.sigstore.dev");
        assert_eq!(log_name("http://localhost:8000"), "localhost:8000");
        assert_eq!(
            log_name("https://log2025-1.rekor.sigstore.dev/api/v2"),
            "log2025-1.rekor.sigstore.dev"
        );
        assert_eq!(log_name("rekor-local"), "rekor-local");
    }
}

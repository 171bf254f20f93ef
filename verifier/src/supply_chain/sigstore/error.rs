//! Why a bundle was not accepted: a kind for programs, one bounded line for people, and the
//! translation of sigstore-verify's error enums into both.

use serde::Serialize;
use sigstore_verify::{CertificateError, Error, TimestampError, TransparencyLogError};

/// Longest reason line, in characters. Details quoted from a bundle are attacker-chosen; a reason
/// must still fit a denial line and a kubelet event.
pub const MAX_REASON_CHARS: usize = 300;
/// Longest detail quoted from sigstore-verify inside a reason.
const MAX_DETAIL_CHARS: usize = 160;

/// What failed. The first group refuses the bundle (`vouch verify-blob` exits 1); the second
/// means no verdict could be reached because an input of the caller's is unusable (exit 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The bundle is not a well-formed Sigstore bundle (JSON, encoding, structure, size).
    Malformed,
    /// Well formed, but uses an entry kind, payload type or algorithm this verifier does not.
    Unsupported,
    /// A key bundle checked against an identity, or a certificate bundle against a key.
    WrongMaterial,
    /// The bundle carries a root (self-signed or trusted CA) certificate.
    RootInChain,
    /// The certificate names another identity.
    Identity,
    /// The certificate names another OIDC issuer.
    Issuer,
    /// The certificate does not chain to a trusted CA, or lacks the code-signing usage.
    CertificateChain,
    /// A certificate of the chain was not valid at the signing time.
    CertificateExpired,
    /// The certificate's embedded SCT is missing or does not verify.
    Sct,
    /// A transparency-log entry names a log the trusted root does not list.
    UnknownLog,
    /// The inclusion proof is missing or does not lead to the checkpoint's root.
    InclusionProof,
    /// The checkpoint is not signed by the entry's log under that log's name.
    Checkpoint,
    /// A known witness's cosignature on the checkpoint does not verify, or too few witnesses
    /// cosigned it.
    Witness,
    /// The signed entry timestamp (SET) is missing or does not verify.
    Set,
    /// The log's integrated time is in the future or outside the certificate's validity.
    IntegratedTime,
    /// The bundle was signed outside the validity of the log an entry without a SET is from.
    LogOutsideValidity,
    /// The log entry is about another signature, key, certificate or artifact.
    EntryMismatch,
    /// An RFC 3161 timestamp is not signed by a timestamp authority of the trusted root.
    UntrustedTimestamp,
    /// An RFC 3161 timestamp lies outside the validity of the authority or its certificate.
    TimestampOutsideValidity,
    /// An RFC 3161 timestamp is malformed or not over this signature.
    InvalidTimestamp,
    /// No verified signing time (a Rekor v2 entry without a timestamp, for instance).
    NoTimestamp,
    /// The signature does not verify with the certificate's or the given key.
    Signature,
    /// The bundle is about another artifact (digest or in-toto subject).
    DigestMismatch,
    /// A file cannot be read, is too large, or a digest argument is malformed.
    Unreadable,
    /// The trusted root cannot be used (malformed, or a window without a start).
    TrustedRoot,
    /// The public key cannot be used.
    Key,
    /// The identity or issuer policy cannot be used (an invalid regular expression).
    Policy,
}

impl FailureKind {
    /// Whether this is a verdict about the bundle (as opposed to unusable input of the caller's).
    pub fn is_refusal(self) -> bool {
        !matches!(
            self,
            FailureKind::Unreadable
                | FailureKind::TrustedRoot
                | FailureKind::Key
                | FailureKind::Policy
        )
    }

    /// `vouch verify-blob`'s exit status: 1 refused, 2 unreadable input.
    pub fn exit_code(self) -> u8 {
        if self.is_refusal() {
            1
        } else {
            2
        }
    }
}

/// Why a bundle was not accepted: one line, at most [`MAX_REASON_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{reason}")]
pub struct BlobError {
    pub kind: FailureKind,
    pub reason: String,
}

impl BlobError {
    pub fn new(kind: FailureKind, reason: impl AsRef<str>) -> BlobError {
        BlobError {
            kind,
            reason: one_line(reason.as_ref(), MAX_REASON_CHARS),
        }
    }

    pub fn is_refusal(&self) -> bool {
        self.kind.is_refusal()
    }

    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }
}

/// `text` on one line of at most `max` characters: control characters (newlines from a bundle
/// among them) become spaces, runs of spaces collapse, and a cut is marked with an ellipsis.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max * 4));
    let mut count = 0;
    let mut last_space = true;
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if c == ' ' && last_space {
            continue;
        }
        if count == max {
            out.pop();
            out.push('…');
            return out.trim_end().to_string();
        }
        last_space = c == ' ';
        out.push(c);
        count += 1;
    }
    out.trim_end().to_string()
}

/// A detail from sigstore-verify, shortened to sit inside a reason.
fn detail(text: &str) -> String {
    one_line(text, MAX_DETAIL_CHARS)
}

/// webpki reports a chain that is not valid at the verification time as `CertExpired { time:
/// UnixTime(..), not_after: UnixTime(..) }` (or `CertNotValidYet`) inside a string; the times are
/// worth a readable line of their own.
fn webpki_validity(text: &str) -> Option<String> {
    let expired = text.contains("CertExpired");
    if !expired && !text.contains("CertNotValidYet") {
        return None;
    }
    let times: Vec<i64> = text
        .split("UnixTime(")
        .skip(1)
        .filter_map(|rest| rest.split(')').next()?.trim().parse().ok())
        .collect();
    let at = |i: usize| times.get(i).map(|t| crate::signature::format_unix(*t));
    Some(match (expired, at(0), at(1)) {
        (true, Some(time), Some(bound)) => {
            format!("a certificate had expired at {time} (not after {bound})")
        }
        (false, Some(time), Some(bound)) => {
            format!("a certificate was not yet valid at {time} (not before {bound})")
        }
        (true, ..) => "a certificate had expired".to_string(),
        (false, ..) => "a certificate was not yet valid".to_string(),
    })
}

/// sigstore-verify's error as one of our kinds with its line.
pub(crate) fn from_sigstore(e: &Error) -> BlobError {
    use FailureKind as K;
    let (kind, reason) = match e {
        Error::IdentityMismatch { expected, actual } => (
            K::Identity,
            format!(
                "certificate identity {} does not match {:?}",
                actual
                    .as_ref()
                    .map(|a| format!("{:?}", detail(a.as_str())))
                    .unwrap_or_else(|| "(none)".to_string()),
                expected.to_string()
            ),
        ),
        Error::IssuerMismatch { expected, actual } => (
            K::Issuer,
            format!(
                "certificate issuer {} does not match {expected:?}",
                actual
                    .as_deref()
                    .map(|a| format!("{:?}", detail(a)))
                    .unwrap_or_else(|| "(none)".to_string()),
            ),
        ),
        Error::SignatureInvalid(d) => (
            K::Signature,
            if d.starts_with("DSSE") {
                "the DSSE envelope's signature does not verify with the signing key".to_string()
            } else {
                "the signature does not verify over the artifact with the signing key".to_string()
            },
        ),
        // Raised both when the artifact is not the bundle's and when the log entry records
        // another digest than the bundle's; only the log entry's check names its kind.
        Error::ArtifactMismatch(d) if d.contains("hashedrekord entry") => (
            K::EntryMismatch,
            "the log entry records another artifact digest than this bundle's".to_string(),
        ),
        Error::ArtifactMismatch(d) => (
            K::DigestMismatch,
            format!("the bundle is about another artifact: {}", detail(d)),
        ),
        Error::UnsupportedArtifact(d) => (
            K::Unsupported,
            format!("this artifact form cannot be verified: {}", detail(d)),
        ),
        Error::Certificate(c) => certificate(c),
        Error::TransparencyLog(t) => transparency_log(t),
        Error::Timestamp(t) => timestamp(t),
        Error::InvalidBundle(d) => (K::Malformed, format!("invalid bundle: {}", detail(d))),
        Error::UnsupportedBundle(d) => {
            (K::Unsupported, format!("unsupported bundle: {}", detail(d)))
        }
        Error::Bundle(b) => structure(b),
        Error::Types(t) => (
            K::Malformed,
            format!("invalid bundle: {}", detail(&t.to_string())),
        ),
        Error::Crypto(c) => (
            K::Unsupported,
            format!(
                "unusable key or signature material: {}",
                detail(&c.to_string())
            ),
        ),
        Error::InvalidTrustRoot(_) | Error::TrustRoot(_) | Error::TrustedCertificate(_) => (
            K::TrustedRoot,
            format!("unusable trusted root: {}", detail(&e.to_string())),
        ),
        Error::ArtifactRead(io) => (K::Unreadable, format!("cannot read the artifact: {io}")),
        other => (
            K::Malformed,
            format!("not verified: {}", detail(&other.to_string())),
        ),
    };
    BlobError::new(kind, reason)
}

fn certificate(e: &CertificateError) -> (FailureKind, String) {
    use FailureKind as K;
    match e {
        CertificateError::Malformed(d) => (K::Malformed, format!("malformed certificate: {}", detail(d))),
        CertificateError::ChainInvalid(d) => match webpki_validity(d) {
            Some(when) => (
                K::CertificateExpired,
                format!("the certificate chain was not valid at the signing time: {when}"),
            ),
            None => (
                K::CertificateChain,
                format!("the certificate does not chain to a trusted CA: {}", detail(d)),
            ),
        },
        CertificateError::NoValidAuthority { time } => (
            K::CertificateChain,
            format!("no certificate authority of the trusted root was valid at the signing time {time}"),
        ),
        CertificateError::NotYetValid { time, not_before } => (
            K::CertificateExpired,
            format!("the certificate was not yet valid at the signing time {time} (not before {not_before})"),
        ),
        CertificateError::Expired { time, not_after } => (
            K::CertificateExpired,
            format!("the certificate had expired at the signing time {time} (not after {not_after})"),
        ),
        CertificateError::Sct(d) => (
            K::Sct,
            format!("the certificate's SCT does not verify with a trusted CT log: {}", detail(d)),
        ),
        other => (K::CertificateChain, format!("certificate refused: {}", detail(&other.to_string()))),
    }
}

fn transparency_log(e: &TransparencyLogError) -> (FailureKind, String) {
    use FailureKind as K;
    match e {
        TransparencyLogError::UnknownLog { log_id } => (
            K::UnknownLog,
            format!(
                "the log entry names log {}, which the trusted root does not list",
                detail(log_id)
            ),
        ),
        TransparencyLogError::InclusionProof(d) => (
            K::InclusionProof,
            format!(
                "the inclusion proof does not lead to the checkpoint's root: {}",
                detail(d)
            ),
        ),
        TransparencyLogError::Checkpoint(d) => (
            K::Checkpoint,
            format!(
                "the checkpoint is not signed by a trusted log: {}",
                detail(d)
            ),
        ),
        TransparencyLogError::InclusionPromise(d) => (
            K::Set,
            format!(
                "the signed entry timestamp (SET) does not verify: {}",
                detail(d)
            ),
        ),
        TransparencyLogError::EntryMismatch(d) => (
            K::EntryMismatch,
            format!("the log entry is not about this bundle: {}", detail(d)),
        ),
        TransparencyLogError::IntegratedTime(d) => (
            K::IntegratedTime,
            format!("the log's integrated time is not acceptable: {}", detail(d)),
        ),
        TransparencyLogError::MalformedEntry(d) => (
            K::Malformed,
            format!("malformed or unsupported log entry: {}", detail(d)),
        ),
        other => (
            K::Malformed,
            format!("log entry refused: {}", detail(&other.to_string())),
        ),
    }
}

fn timestamp(e: &TimestampError) -> (FailureKind, String) {
    use FailureKind as K;
    match e {
        TimestampError::OutsideAuthorityValidity { time } => (
            K::TimestampOutsideValidity,
            format!("the RFC 3161 timestamp {time} is outside the validity of the authority that signed it"),
        ),
        TimestampError::Invalid(d) => {
            if d.contains("no timestamp authorities") {
                (
                    K::UntrustedTimestamp,
                    "the bundle has an RFC 3161 timestamp, and the trusted root lists no timestamp authority"
                        .to_string(),
                )
            } else if d.contains("does not match any trusted") {
                (
                    K::UntrustedTimestamp,
                    "the RFC 3161 timestamp is not signed by a timestamp authority of the trusted root"
                        .to_string(),
                )
            } else if let Some(when) = webpki_validity(d) {
                (
                    K::TimestampOutsideValidity,
                    format!("the RFC 3161 timestamp lies outside its TSA certificate's validity: {when}"),
                )
            } else if d.contains("certificate validation failed") {
                (
                    K::UntrustedTimestamp,
                    format!("the timestamp authority's certificate does not chain to the trusted root: {}", detail(d)),
                )
            } else if d.contains("hash mismatch") {
                (
                    K::InvalidTimestamp,
                    "the RFC 3161 timestamp is not over this bundle's signature".to_string(),
                )
            } else {
                (K::InvalidTimestamp, format!("invalid RFC 3161 timestamp: {}", detail(d)))
            }
        }
        TimestampError::NoVerifiedTimestamp(d) => (
            K::NoTimestamp,
            if d.starts_with("V2") {
                "a Rekor v2 entry needs an RFC 3161 timestamp, and none verified".to_string()
            } else {
                "no verified signing time: neither an RFC 3161 timestamp nor a log entry with a SET"
                    .to_string()
            },
        ),
        other => (K::InvalidTimestamp, format!("timestamp refused: {}", detail(&other.to_string()))),
    }
}

/// sigstore-bundle's structural checks, which run before any cryptography.
fn structure(e: &sigstore_verify::bundle::Error) -> (FailureKind, String) {
    use sigstore_verify::bundle::Error as B;
    use FailureKind as K;
    match e {
        B::MissingInclusionPromise(_) => (
            K::Set,
            "the bundle has no signed entry timestamp (SET), which a v0.1 bundle needs".to_string(),
        ),
        B::MissingInclusionProof(_) | B::MissingCheckpoint => (
            K::InclusionProof,
            format!("the bundle has no inclusion proof with a checkpoint ({e})"),
        ),
        B::MissingSigningTimeEvidence | B::MissingTimestamp => (
            K::NoTimestamp,
            "the bundle has neither a transparency-log entry nor an RFC 3161 timestamp".to_string(),
        ),
        B::LogIndexOutOfRange { .. } => {
            (K::InclusionProof, format!("invalid inclusion proof: {e}"))
        }
        B::CheckpointRootMismatch => (
            K::Checkpoint,
            "the inclusion proof's root hash is not the checkpoint's".to_string(),
        ),
        other => (
            K::Malformed,
            format!("invalid bundle: {}", detail(&other.to_string())),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_flattens_and_bounds() {
        assert_eq!(one_line("a\n\nb\tc  d", 100), "a b c d");
        let long = "x".repeat(1000);
        let cut = one_line(&long, 10);
        assert_eq!(cut.chars().count(), 10);
        assert!(cut.ends_with('…'));
        assert_eq!(one_line("é".repeat(20).as_str(), 5).chars().count(), 5);
    }

    #[test]
    fn webpki_times_are_read() {
        let d = "certificate chain validation failed: CertExpired { time: UnixTime(1778168051), \
                 not_after: UnixTime(1778167690) }";
        assert_eq!(
            webpki_validity(d).unwrap(),
            "a certificate had expired at 2026-05-07T15:34:11Z (not after 2026-05-07T15:28:10Z)"
        );
        assert_eq!(
            webpki_validity("CertNotValidYet").unwrap(),
            "a certificate was not yet valid"
        );
        assert!(webpki_validity("UnknownIssuer").is_none());
    }

    #[test]
    fn exit_codes_split_refusals_from_unusable_input() {
        assert_eq!(FailureKind::Identity.exit_code(), 1);
        assert_eq!(FailureKind::Malformed.exit_code(), 1);
        assert_eq!(FailureKind::Unreadable.exit_code(), 2);
        assert_eq!(FailureKind::TrustedRoot.exit_code(), 2);
        assert_eq!(FailureKind::Key.exit_code(), 2);
    }
}

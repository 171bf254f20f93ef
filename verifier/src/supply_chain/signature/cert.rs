//! Keyless: the Fulcio leaf certificate chains to a trusted CA, was valid at the time Rekor vouches
//! for, and names the identity (SAN) and OIDC issuer the policy expects.

use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use spki::ObjectIdentifier;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName};
use x509_cert::Certificate;

use super::trust_root::TrustedRoot;
use super::{identity_error, json, malformed, untrusted, Result, SignatureError};
use crate::keys::{pem_decode_all, HashAlgorithm, PublicKey, RsaPadding};

const MAX_CERT_LEN: usize = 32 * 1024;
/// Untrusted intermediates accepted from a signature's chain.
const MAX_CHAIN: usize = 8;

const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const OID_ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const OID_RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_RSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const OID_RSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
/// Fulcio: OIDC issuer, v1 (raw string) and v2 (DER UTF8String).
pub const OID_FULCIO_ISSUER_V1: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
pub const OID_FULCIO_ISSUER_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");

/// A certificate with its DER.
#[derive(Debug, Clone)]
pub(crate) struct Cert {
    pub der: Vec<u8>,
    pub cert: Certificate,
}

impl Cert {
    pub fn from_der(der: Vec<u8>) -> Result<Cert> {
        if der.len() > MAX_CERT_LEN {
            return Err(malformed(format!(
                "certificate larger than {MAX_CERT_LEN} bytes"
            )));
        }
        let cert = Certificate::from_der(&der)
            .map_err(|e| malformed(format!("malformed certificate: {e}")))?;
        Ok(Cert { der, cert })
    }

    pub fn key(&self) -> Result<PublicKey> {
        PublicKey::from_certificate_parsed(&self.cert)
            .map_err(|e| malformed(format!("certificate key: {e}")))
    }

    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(&self.der))
    }

    fn not_before(&self) -> i64 {
        unix(self.cert.tbs_certificate.validity.not_before)
    }

    fn not_after(&self) -> i64 {
        unix(self.cert.tbs_certificate.validity.not_after)
    }
}

fn unix(t: x509_cert::time::Time) -> i64 {
    i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

/// Parses PEM certificates (a leaf, or a chain), at most `max`.
/// The signing certificate and its chain from cosign's `.sig`/`.att` annotations, each bounded:
/// what a keyless signature or attestation (`what`) of the legacy formats carries.
pub(crate) fn annotated(
    certificate_pem: Option<&str>,
    chain_pem: Option<&str>,
    what: &str,
) -> Result<(Cert, Vec<Cert>)> {
    let pem = certificate_pem
        .ok_or_else(|| super::untrusted(format!("keyless {what} has no certificate")))?;
    if pem.len() > super::MAX_CERT_PEM_LEN {
        return Err(malformed("certificate annotation too large"));
    }
    let mut certs = parse_pem_certs(pem, 1, "certificate annotation")?;
    let leaf = certs.remove(0);
    let chain = match chain_pem {
        Some(c) if c.len() > super::MAX_CHAIN_PEM_LEN => {
            return Err(malformed("certificate chain annotation too large"))
        }
        Some(c) => parse_pem_certs(c, 8, "certificate chain annotation")?,
        None => Vec::new(),
    };
    Ok((leaf, chain))
}

pub(crate) fn parse_pem_certs(pem: &str, max: usize, what: &str) -> Result<Vec<Cert>> {
    let blocks = pem_decode_all(pem, max).map_err(|e| malformed(format!("{what}: {e}")))?;
    blocks
        .into_iter()
        .map(|(label, der)| {
            if label != "CERTIFICATE" {
                return Err(malformed(format!(
                    "{what}: PEM block {label} is not a CERTIFICATE"
                )));
            }
            Cert::from_der(der).map_err(|e| malformed(format!("{what}: {}", e.reason)))
        })
        .collect()
}

/// Checks that `issuer` signed `cert`.
fn verify_issued_by(cert: &Cert, issuer: &Cert) -> Result<()> {
    if cert.cert.tbs_certificate.issuer != issuer.cert.tbs_certificate.subject {
        return Err(untrusted("certificate issuer name does not match"));
    }
    let key = issuer.key()?;
    let alg = cert.cert.signature_algorithm.oid;
    let (hash, padding) = if alg == OID_ECDSA_SHA256 {
        (HashAlgorithm::Sha256, None)
    } else if alg == OID_ECDSA_SHA384 {
        (HashAlgorithm::Sha384, None)
    } else if alg == OID_ECDSA_SHA512 {
        (HashAlgorithm::Sha512, None)
    } else if alg == OID_RSA_SHA256 {
        (HashAlgorithm::Sha256, Some(RsaPadding::Pkcs1v15))
    } else if alg == OID_RSA_SHA384 {
        (HashAlgorithm::Sha384, Some(RsaPadding::Pkcs1v15))
    } else if alg == OID_RSA_SHA512 {
        (HashAlgorithm::Sha512, Some(RsaPadding::Pkcs1v15))
    } else if alg == OID_ED25519 {
        (HashAlgorithm::Sha512, None)
    } else {
        return Err(untrusted(format!(
            "unsupported certificate signature algorithm {alg}"
        )));
    };
    let tbs = cert
        .cert
        .tbs_certificate
        .to_der()
        .map_err(|e| malformed(format!("certificate: {e}")))?;
    let sig = cert
        .cert
        .signature
        .as_bytes()
        .ok_or_else(|| malformed("certificate signature is not whole bytes"))?;
    key.verify_with(hash, padding, &tbs, sig)
        .map_err(|_| untrusted("certificate signature does not verify with its issuer's key"))
}

fn is_ca(c: &Cert) -> bool {
    let bc = matches!(c.cert.tbs_certificate.get::<BasicConstraints>(), Ok(Some((_, b))) if b.ca);
    let ku = match c.cert.tbs_certificate.get::<KeyUsage>() {
        Ok(Some((_, ku))) => ku.key_cert_sign(),
        Ok(None) => true,
        Err(_) => false,
    };
    bc && ku
}

fn valid_at(c: &Cert, t: i64) -> bool {
    c.not_before() <= t && t <= c.not_after()
}

/// Verifies that `leaf` chains to a certificate authority of `root` that was trusted at `t`, through
/// the authority's own chain and, if needed, untrusted intermediates from the signature. Every
/// certificate on the path must have been valid at `t`.
pub(crate) fn verify_chain(
    leaf: &Cert,
    intermediates: &[Cert],
    root: &TrustedRoot,
    t: i64,
) -> Result<()> {
    let when = json::format_unix(t);
    if !valid_at(leaf, t) {
        return Err(SignatureError {
            kind: super::ErrorKind::Expired,
            reason: format!(
                "certificate was not valid at the Rekor integrated time {when} (valid {} to {})",
                json::format_unix(leaf.not_before()),
                json::format_unix(leaf.not_after())
            ),
        });
    }
    if matches!(leaf.cert.tbs_certificate.get::<BasicConstraints>(), Ok(Some((_, b))) if b.ca) {
        return Err(untrusted("signing certificate is a CA certificate"));
    }
    match leaf.cert.tbs_certificate.get::<KeyUsage>() {
        Ok(Some((_, ku))) if !ku.digital_signature() => {
            return Err(untrusted(
                "signing certificate is not for digital signatures",
            ))
        }
        Err(_) => return Err(malformed("signing certificate has a malformed key usage")),
        _ => {}
    }
    match leaf.cert.tbs_certificate.get::<ExtendedKeyUsage>() {
        Ok(Some((_, eku))) if eku.0.contains(&OID_CODE_SIGNING) => {}
        Ok(_) => return Err(untrusted("signing certificate is not for code signing")),
        Err(_) => {
            return Err(malformed(
                "signing certificate has a malformed extended key usage",
            ))
        }
    }
    if intermediates.len() > MAX_CHAIN {
        return Err(malformed(format!(
            "certificate chain longer than {MAX_CHAIN}"
        )));
    }
    let mut last = "certificate is not issued by a trusted Fulcio CA".to_string();
    for ca in &root.certificate_authorities {
        let Some((anchor_der, anchor)) = ca.chain.first() else {
            continue;
        };
        let anchor = Cert {
            der: anchor_der.clone(),
            cert: anchor.clone(),
        };
        // Walk up from the leaf through untrusted intermediates until the CA's issuing certificate.
        let mut current = leaf.clone();
        let mut ok = false;
        for _ in 0..=intermediates.len() {
            if verify_issued_by(&current, &anchor).is_ok() {
                ok = true;
                break;
            }
            let next = intermediates.iter().find(|i| {
                i.der != current.der
                    && is_ca(i)
                    && valid_at(i, t)
                    && verify_issued_by(&current, i).is_ok()
            });
            match next {
                Some(n) => current = n.clone(),
                None => break,
            }
        }
        if !ok {
            continue;
        }
        if !ca.valid_for.contains(t) {
            last = format!("the Fulcio CA {} was not trusted at {when}", ca.uri);
            continue;
        }
        if let Some((_, c)) = ca.chain.iter().find(|(der, c)| {
            !valid_at(
                &Cert {
                    der: der.clone(),
                    cert: c.clone(),
                },
                t,
            )
        }) {
            last = format!(
                "CA certificate {} was not valid at {when}",
                c.tbs_certificate.subject
            );
            continue;
        }
        return Ok(());
    }
    Err(untrusted(last))
}

/// The identities a Fulcio certificate was issued to: URI and email SANs, and its OIDC issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateIdentity {
    pub sans: Vec<String>,
    pub issuer: Option<String>,
}

pub(crate) fn identity(c: &Cert) -> Result<CertificateIdentity> {
    let mut sans = Vec::new();
    match c.cert.tbs_certificate.get::<SubjectAltName>() {
        Ok(Some((_, san))) => {
            for name in san.0 {
                match name {
                    GeneralName::UniformResourceIdentifier(s) | GeneralName::Rfc822Name(s) => {
                        sans.push(s.to_string())
                    }
                    _ => {}
                }
            }
        }
        Ok(None) => {}
        Err(_) => {
            return Err(malformed(
                "certificate has a malformed subject alternative name",
            ))
        }
    }
    let mut v1 = None;
    let mut v2 = None;
    for ext in c.cert.tbs_certificate.extensions.iter().flatten() {
        let raw = ext.extn_value.as_bytes();
        if ext.extn_id == OID_FULCIO_ISSUER_V2 {
            let s = der::asn1::Utf8StringRef::from_der(raw)
                .map_err(|_| malformed("certificate issuer extension (v2) is not a UTF8String"))?;
            v2 = Some(s.as_str().to_string());
        } else if ext.extn_id == OID_FULCIO_ISSUER_V1 {
            let s = std::str::from_utf8(raw)
                .map_err(|_| malformed("certificate issuer extension (v1) is not UTF-8"))?;
            v1 = Some(s.to_string());
        }
    }
    Ok(CertificateIdentity {
        sans,
        issuer: v2.or(v1),
    })
}

/// How a policy names an identity or issuer.
#[derive(Debug, Clone)]
pub enum Matcher {
    Exact(String),
    /// Anchored at both ends.
    Regex(regex::Regex),
}

impl Matcher {
    /// `exact` or `pattern` (exactly one), the pattern anchored fully.
    pub fn new(exact: Option<&str>, pattern: Option<&str>, what: &str) -> Result<Matcher> {
        match (exact, pattern) {
            (Some(e), None) => Ok(Matcher::Exact(e.to_string())),
            (None, Some(p)) => {
                Matcher::anchored(p).map_err(|e| malformed(format!("invalid {what}_regex: {e}")))
            }
            (Some(_), Some(_)) => Err(malformed(format!("give {what} or {what}_regex, not both"))),
            (None, None) => Err(malformed(format!("keyless needs {what} or {what}_regex"))),
        }
    }

    /// A regular expression that must match the whole value, not a part of it. The error is one
    /// line naming the pattern.
    ///
    /// The pattern must be a regular expression on its own before it is wrapped: otherwise
    /// `https://github\.com/acme/.*)|(.*` would close the wrapper's group and match anything.
    pub fn anchored(pattern: &str) -> std::result::Result<Matcher, String> {
        let build = |p: &str| regex::RegexBuilder::new(p).size_limit(1 << 20).build();
        build(pattern)
            .and_then(|_| build(&format!("^(?:{pattern})$")))
            .map(Matcher::Regex)
            .map_err(|e| {
                format!(
                    "{pattern:?} is not a regular expression: {}",
                    regex_reason(&e)
                )
            })
    }

    pub fn matches(&self, s: &str) -> bool {
        match self {
            Matcher::Exact(e) => e == s,
            Matcher::Regex(r) => r.is_match(s),
        }
    }
}

/// The reason of a regex error on one line: a syntax error's last line (`unopened group`), not
/// its picture of the pattern with a caret under the fault.
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text.lines().last().unwrap_or_default();
    last.strip_prefix("error: ")
        .unwrap_or(last)
        .trim()
        .to_string()
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matcher::Exact(e) => write!(f, "{e:?}"),
            Matcher::Regex(r) => write!(f, "/{}/", r.as_str()),
        }
    }
}

/// Who a keyless signature must come from.
#[derive(Debug, Clone)]
pub struct IdentityPolicy {
    pub subject: Matcher,
    pub issuer: Matcher,
}

impl IdentityPolicy {
    pub fn new(
        subject: Option<&str>,
        subject_regex: Option<&str>,
        issuer: Option<&str>,
        issuer_regex: Option<&str>,
    ) -> Result<IdentityPolicy> {
        Ok(IdentityPolicy {
            subject: Matcher::new(subject, subject_regex, "subject")?,
            issuer: Matcher::new(issuer, issuer_regex, "issuer")?,
        })
    }

    /// The matching SAN and the issuer, or why not.
    pub(crate) fn check(&self, id: &CertificateIdentity) -> Result<(String, String)> {
        let issuer = id
            .issuer
            .as_deref()
            .ok_or_else(|| identity_error("certificate has no OIDC issuer extension"))?;
        if !self.issuer.matches(issuer) {
            return Err(identity_error(format!(
                "certificate issuer {issuer:?} does not match {}",
                self.issuer
            )));
        }
        match id.sans.iter().find(|s| self.subject.matches(s)) {
            Some(s) => Ok((s.clone(), issuer.to_string())),
            None => Err(identity_error(format!(
                "certificate subject {} does not match {}",
                match id.sans.as_slice() {
                    [] => "(none)".to_string(),
                    s => s
                        .iter()
                        .map(|s| format!("{s:?}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                },
                self.subject
            ))),
        }
    }
}

//! Verification of attestations: DSSE envelopes from cosign `.att` layers (here) and Sigstore
//! bundles (by [`crate::sigstore`], which reads bundles only) with each of a rule's authorities,
//! then the in-toto statement they carry; unsigned statements (BuildKit) and attached SBOMs are
//! read as what they are, unsigned.
//!
//! The order is the one every signature follows: bounded decoding, the signature over the DSSE
//! pre-authentication encoding (PAE) of the exact payload, the Rekor entry bound to this envelope,
//! the keyless certificate; only then is the payload parsed.
//!
//! A present-but-invalid signature is rejected, period: an envelope that no authority verifies is
//! never reported as an unsigned attestation, or a rule that accepts unsigned SBOMs would accept a
//! forged one. Only material published without any signature (BuildKit attestations, `cosign
//! attach sbom`) becomes [`Signer::Unsigned`].

use std::borrow::Cow;
use std::time::SystemTime;

use serde::Deserialize;

use super::cert;
use super::rekor::{self, Signer as RekorSigner};
use super::{
    bad_signature, json, keyless_checks, malformed, unix_seconds, untrusted, Authority, Image,
    Result, SignatureFormat, VerifiedSignature, VerifyOptions, MAX_ATTESTATION_PAYLOAD,
};
use crate::attestation::{Attestation, AttestationReport, PredicateKind, Signer};
use crate::dsse::pae;
use crate::material::{AttestationMaterial, DsseEnvelope};
use crate::registry::sha256_digest;
use crate::sigstore::{verify_image_attestation, BundleAuthority};

/// The DSSE payload type of in-toto statements.
pub use crate::dsse::IN_TOTO_PAYLOAD_TYPE;
/// in-toto statement versions accepted.
pub use crate::dsse::STATEMENT_V01;
pub use crate::dsse::STATEMENT_V1;
/// Largest DSSE envelope accepted (base64 of the largest payload, and signatures).
pub const MAX_ENVELOPE_LEN: usize = MAX_ATTESTATION_PAYLOAD / 3 * 4 + 64 * 1024;
/// Largest attached SBOM or unsigned statement read.
pub const MAX_DOCUMENT_LEN: usize = MAX_ATTESTATION_PAYLOAD;
/// SBOMs nest deeper than signatures (CycloneDX nested components).
const MAX_DOCUMENT_DEPTH: usize = 100;
const MAX_DSSE_SIGNATURES: usize = 8;

/// A DSSE envelope (`{payloadType, payload, signatures: [{keyid, sig}]}`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload_type: String,
    payload: String,
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
struct EnvelopeSignature {
    sig: String,
}

/// An in-toto statement, v0.1 or v1.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    #[serde(rename = "_type")]
    kind: String,
    #[serde(default)]
    subject: Vec<Subject>,
    predicate_type: String,
    #[serde(default)]
    predicate: serde_json::Value,
}

#[derive(Deserialize)]
struct Subject {
    #[serde(default)]
    digest: std::collections::BTreeMap<String, String>,
}

/// A rule authority as each kind of signed attestation is verified with it: cosign's `.att`
/// envelopes here, Sigstore bundles by [`crate::sigstore`].
#[derive(Clone, Copy)]
pub struct RuleAuthority<'a> {
    pub cosign: Authority<'a>,
    pub bundles: BundleAuthority<'a>,
}

/// Accepts or refuses an authority's verified signature for reasons outside the signature (the
/// authority's validity window): `Err` says why it does not count. Called with the index of the
/// authority in the slice given to [`verify_attestations_with`].
pub type Admit<'a> = &'a dyn Fn(usize, &VerifiedSignature) -> std::result::Result<(), String>;

/// Verifies attestation material for `image` with `authorities` (see [`verify_attestations_with`];
/// every authority that verifies counts).
pub fn verify_attestations(
    material: &[AttestationMaterial],
    image: &Image<'_>,
    accepted_subjects: &[String],
    authorities: &[RuleAuthority<'_>],
    options: &VerifyOptions,
    now: SystemTime,
) -> AttestationReport {
    verify_attestations_with(
        material,
        image,
        accepted_subjects,
        authorities,
        options,
        now,
        &|_, _| Ok(()),
    )
}

/// Verifies attestation material for `image`: each signed piece with each authority in turn (the
/// first that verifies and that `admit` accepts signs it), then its statement, whose subject must
/// be the image digest or one of `accepted_subjects` (`sha256:<hex>`, e.g. the image's platform
/// manifest) and whose predicate must be one policy reads. Unsigned material is read as such.
/// What does not count is in [`AttestationReport::rejected`], one line each, prefixed with where
/// it was found.
pub fn verify_attestations_with(
    material: &[AttestationMaterial],
    image: &Image<'_>,
    accepted_subjects: &[String],
    authorities: &[RuleAuthority<'_>],
    options: &VerifyOptions,
    now: SystemTime,
    admit: Admit<'_>,
) -> AttestationReport {
    let mut report = AttestationReport::default();
    // A bundle's statement must name the image or an accepted alternative; which one is read
    // from the statement afterwards, as for every other attestation.
    let subjects: Vec<&str> = std::iter::once(image.digest)
        .chain(accepted_subjects.iter().map(String::as_str))
        .collect();
    for m in material {
        let origin = m.origin().to_string();
        let result: std::result::Result<(Cow<'_, [u8]>, Signer), String> = match m {
            // Decoded once, verified with each authority.
            AttestationMaterial::Dsse(d) => match decode_envelope(d) {
                Ok(decoded) => signed(authorities, admit, |a| {
                    verify_decoded(d, &decoded, &a.cosign, options, now).map(|sig| (sig, ()))
                })
                .map(|((), signer)| (Cow::Owned(decoded.payload), signer)),
                Err(e) => Err(e.reason),
            },
            AttestationMaterial::Bundle(b) => signed(authorities, admit, |a| {
                verify_image_attestation(b, &subjects, &a.bundles)
            })
            .map(|(payload, signer)| (Cow::Owned(payload), signer)),
            AttestationMaterial::Statement(s) => Ok((Cow::Borrowed(&s.json), Signer::Unsigned)),
            AttestationMaterial::Sbom(s) => {
                // The document is the predicate, about the digest it was attached to.
                let accepted = s.subject_digest == image.digest
                    || accepted_subjects.contains(&s.subject_digest);
                let outcome = if accepted {
                    read_document(&s.document, "attached SBOM")
                } else {
                    Err(format!(
                        "attached to {}, not to the image {}",
                        s.subject_digest, image.digest
                    ))
                };
                match outcome {
                    Ok(predicate) => report.attestations.push(Attestation {
                        predicate_type: s.predicate_type.clone(),
                        predicate,
                        digest: sha256_digest(&s.document),
                        subject_digest: s.subject_digest.clone(),
                        signer: Signer::Unsigned,
                        origin,
                    }),
                    Err(reason) => report.rejected.push(format!("{origin}: {reason}")),
                }
                continue;
            }
        };
        let outcome = result.and_then(|(payload, signer)| {
            let (predicate_type, predicate, subject_digest) =
                read_statement(&payload, image, accepted_subjects)?;
            Ok(Attestation {
                predicate_type,
                predicate,
                digest: sha256_digest(&payload),
                subject_digest,
                signer,
                origin: origin.clone(),
            })
        });
        match outcome {
            Ok(a) => report.attestations.push(a),
            Err(reason) => report.rejected.push(format!("{origin}: {reason}")),
        }
    }
    report
}

/// Tries each authority on one piece of signed material: the verified payload and who signed it,
/// or why none did.
fn signed<T>(
    authorities: &[RuleAuthority<'_>],
    admit: Admit<'_>,
    verify: impl Fn(&RuleAuthority<'_>) -> Result<(VerifiedSignature, T)>,
) -> std::result::Result<(T, Signer), String> {
    if authorities.is_empty() {
        return Err("signed, but there is no authority to verify its signature with".into());
    }
    let mut reasons = Vec::new();
    for (i, authority) in authorities.iter().enumerate() {
        match verify(authority) {
            Ok((sig, payload)) => match admit(i, &sig) {
                Ok(()) => return Ok((payload, Signer::Authority(describe(&sig)))),
                Err(e) => reasons.push(e),
            },
            Err(e) => reasons.push(e.reason),
        }
    }
    Err(reasons.join("; "))
}

/// `release (key sha256:1a2b3c4d5e6f)` or `ci (<subject> via <issuer>)`.
fn describe(sig: &VerifiedSignature) -> String {
    match &sig.certificate {
        Some(c) => format!("{} ({} via {})", sig.authority, c.subject, c.issuer),
        None => format!(
            "{} (key sha256:{})",
            sig.authority,
            sig.key_fingerprint
                .get(..12)
                .unwrap_or(&sig.key_fingerprint)
        ),
    }
}

/// A DSSE envelope decoded (bounded), its signatures not yet verified.
struct Decoded {
    payload: Vec<u8>,
    signatures: Vec<Vec<u8>>,
    /// The PAE of the payload: what the signatures are over.
    message: Vec<u8>,
}

fn decode_envelope(d: &DsseEnvelope) -> Result<Decoded> {
    let env: Envelope = json::parse(&d.envelope, MAX_ENVELOPE_LEN, "DSSE envelope")?;
    if env.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(malformed(format!(
            "DSSE payload type {:?} is not {IN_TOTO_PAYLOAD_TYPE}",
            env.payload_type
        )));
    }
    if env.signatures.is_empty() || env.signatures.len() > MAX_DSSE_SIGNATURES {
        return Err(malformed(format!(
            "DSSE envelope has {} signatures (1 to {MAX_DSSE_SIGNATURES})",
            env.signatures.len()
        )));
    }
    let payload = json::b64(&env.payload, MAX_ATTESTATION_PAYLOAD, "DSSE payload")?;
    let signatures = env
        .signatures
        .iter()
        .map(|s| json::b64(&s.sig, 2048, "DSSE signature"))
        .collect::<Result<Vec<_>>>()?;
    let message = pae(&env.payload_type, &payload);
    Ok(Decoded {
        payload,
        signatures,
        message,
    })
}

/// Verifies a cosign `.att` DSSE envelope with `authority`: the signature over PAE, then the Rekor
/// bundle (required keyless; with a key, checked when the authority has a trusted root and required
/// with [`VerifyOptions::require_tlog`]) and, keyless, the certificate. Returns the verified payload.
pub fn verify_envelope(
    d: &DsseEnvelope,
    authority: &Authority<'_>,
    options: &VerifyOptions,
    now: SystemTime,
) -> Result<(VerifiedSignature, Vec<u8>)> {
    let decoded = decode_envelope(d)?;
    let record = verify_decoded(d, &decoded, authority, options, now)?;
    Ok((record, decoded.payload))
}

fn verify_decoded(
    d: &DsseEnvelope,
    decoded: &Decoded,
    authority: &Authority<'_>,
    options: &VerifyOptions,
    now: SystemTime,
) -> Result<VerifiedSignature> {
    let now = unix_seconds(now);
    let Decoded {
        payload,
        signatures,
        message,
    } = decoded;
    let name = authority.name();

    let record = match authority {
        Authority::Key { key, rekor, .. } => {
            let signature = signatures
                .iter()
                .find(|s| key.verify(message, s).is_ok())
                .ok_or_else(|| {
                    bad_signature(format!(
                        "DSSE signature does not verify with authority \"{name}\""
                    ))
                })?;
            let entry = match (rekor, &d.rekor_bundle_json) {
                (Some(root), Some(bundle)) => {
                    let e = rekor::parse_cosign_bundle(bundle)?;
                    let entry = rekor::verify_set(&e, root, now)?;
                    rekor::check_envelope_body(
                        &e.body,
                        &d.envelope,
                        payload,
                        signature,
                        RekorSigner::Key(key),
                    )?;
                    Some(entry)
                }
                (Some(_), None) if options.require_tlog => {
                    return Err(untrusted("attestation has no Rekor bundle"))
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
                format: SignatureFormat::BundleDsse,
                key_fingerprint: key.fingerprint(),
                digest: String::new(),
                docker_reference: None,
                predicate_type: None,
                certificate: None,
                signed_at: entry.as_ref().map(|e| e.integrated_time),
                rekor: entry,
                origin: d.origin.clone(),
            }
        }
        Authority::Keyless {
            trusted_root,
            identity,
            ..
        } => {
            let (leaf, chain) = cert::annotated(
                d.certificate_pem.as_deref(),
                d.chain_pem.as_deref(),
                "attestation",
            )?;
            let key = leaf.key()?;
            let signature = signatures
                .iter()
                .find(|s| key.verify(message, s).is_ok())
                .ok_or_else(|| {
                    let who = cert::identity(&leaf)
                        .ok()
                        .and_then(|i| i.sans.first().cloned())
                        .unwrap_or_else(|| "(no subject)".into());
                    bad_signature(format!(
                        "DSSE signature does not verify with the certificate of {who} (authority \"{name}\")"
                    ))
                })?;
            let bundle = d
                .rekor_bundle_json
                .as_deref()
                .ok_or_else(|| untrusted("keyless attestation has no Rekor bundle"))?;
            let e = rekor::parse_cosign_bundle(bundle)?;
            let entry = rekor::verify_set(&e, trusted_root, now)?;
            rekor::check_envelope_body(
                &e.body,
                &d.envelope,
                payload,
                signature,
                RekorSigner::Certificate(&leaf.der),
            )?;
            let mut record = keyless_checks(
                &leaf,
                &chain,
                trusted_root,
                identity,
                &entry,
                name,
                &key,
                d.origin.clone(),
            )?;
            record.format = SignatureFormat::BundleDsse;
            record
        }
    };
    Ok(record)
}

/// Reads a verified (or unsigned) statement: its type, a subject that is the image (or an accepted
/// alternative), a predicate type policy reads, and the predicate as a JSON document. Returns the
/// predicate type, the predicate and the matching subject digest.
fn read_statement(
    payload: &[u8],
    image: &Image<'_>,
    accepted_subjects: &[String],
) -> std::result::Result<(String, serde_json::Value, String), String> {
    let st: Statement = json::parse_deep(
        payload,
        MAX_ATTESTATION_PAYLOAD,
        MAX_DOCUMENT_DEPTH,
        "in-toto statement",
    )
    .map_err(|e| e.reason)?;
    if st.kind != STATEMENT_V01 && st.kind != STATEMENT_V1 {
        return Err(format!("not an in-toto statement (_type {:?})", st.kind));
    }
    let wanted: Vec<&str> = std::iter::once(image.digest)
        .chain(accepted_subjects.iter().map(String::as_str))
        .filter_map(|d| d.strip_prefix("sha256:"))
        .collect();
    let subjects: Vec<&str> = st
        .subject
        .iter()
        .filter_map(|s| s.digest.get("sha256").map(String::as_str))
        .collect();
    let Some(matched) = subjects
        .iter()
        .find(|s| wanted.iter().any(|w| w.eq_ignore_ascii_case(s)))
    else {
        return Err(match subjects.first() {
            Some(s) => format!(
                "subject sha256:{} is not the image {}",
                json::shown(s),
                image.digest
            ),
            None => format!(
                "statement has no sha256 subject (the image is {})",
                image.digest
            ),
        });
    };
    if PredicateKind::of(&st.predicate_type).is_none() {
        return Err(format!(
            "predicate type {:?} is not one policy reads (SPDX, CycloneDX, vuln, OpenVEX): ignored",
            st.predicate_type
        ));
    }
    let predicate = match st.predicate {
        serde_json::Value::Object(_) => st.predicate,
        // cosign 1.x wrote some predicates as a JSON string holding the document.
        serde_json::Value::String(s) => {
            read_document(s.as_bytes(), "predicate string").map_err(|e| {
                format!("{e} (a predicate written as a string must hold a JSON document)")
            })?
        }
        serde_json::Value::Null => return Err("statement has no predicate".into()),
        _ => return Err("predicate is not a JSON object".into()),
    };
    Ok((
        st.predicate_type,
        predicate,
        format!("sha256:{}", matched.to_ascii_lowercase()),
    ))
}

/// A JSON document (an SBOM): a JSON object, bounded in size and nesting.
fn read_document(bytes: &[u8], what: &str) -> std::result::Result<serde_json::Value, String> {
    let v: serde_json::Value = json::parse_deep(bytes, MAX_DOCUMENT_LEN, MAX_DOCUMENT_DEPTH, what)
        .map_err(|e| e.reason)?;
    if !v.is_object() {
        return Err(format!("{what} is not a JSON object"));
    }
    Ok(v)
}

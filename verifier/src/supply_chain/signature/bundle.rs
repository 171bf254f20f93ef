//! Sigstore bundles (`application/vnd.dev.sigstore.bundle.v0.3+json` and the v0.1/v0.2 media types),
//! as cosign v3 attaches them to images as OCI 1.1 referrers.

use std::time::SystemTime;

use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};

use super::cert::{self, Cert};
use super::rekor::{self, InclusionProof, Signer, UntrustedEntry};
use super::{
    bad_signature, json, malformed, unix_seconds, untrusted, wrong_image, Authority, Image, Result,
    SignatureFormat, VerifiedSignature, VerifyOptions,
};
use crate::keys::{HashAlgorithm, PublicKey};
use crate::material::SigstoreBundle;

/// Largest bundle accepted (certificate, inclusion proof and envelope: a few KiB to tens of KiB).
pub const MAX_BUNDLE_LEN: usize = 1024 * 1024;
/// The predicate type cosign v3 uses for image signatures.
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
use crate::dsse::IN_TOTO_PAYLOAD_TYPE;
const MAX_DSSE_PAYLOAD: usize = 512 * 1024;
/// Largest attestation bundle accepted: its DSSE payload may be a large SBOM (base64 in the bundle).
pub const MAX_ATTESTATION_BUNDLE_LEN: usize = 48 * 1024 * 1024;
/// Largest attestation DSSE payload (statement) accepted.
pub const MAX_ATTESTATION_PAYLOAD: usize = 32 * 1024 * 1024;
const MAX_TLOG_ENTRIES: usize = 8;
const MAX_DSSE_SIGNATURES: usize = 8;

const MEDIA_TYPES: [&str; 4] = [
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    media_type: String,
    verification_material: Material,
    message_signature: Option<MessageSignature>,
    dsse_envelope: Option<Envelope>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Material {
    certificate: Option<RawBytes>,
    x509_certificate_chain: Option<Chain>,
    public_key: Option<serde_json::Value>,
    #[serde(default)]
    tlog_entries: Vec<TlogEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytes {
    raw_bytes: String,
}

#[derive(Deserialize)]
struct Chain {
    certificates: Vec<RawBytes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TlogEntry {
    #[serde(deserialize_with = "int64")]
    log_index: i64,
    log_id: LogId,
    kind_version: KindVersion,
    #[serde(deserialize_with = "int64")]
    integrated_time: i64,
    inclusion_promise: Option<Promise>,
    inclusion_proof: Option<Proof>,
    canonicalized_body: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogId {
    key_id: String,
}

#[derive(Deserialize)]
struct KindVersion {
    kind: String,
    version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Promise {
    signed_entry_timestamp: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Proof {
    #[serde(deserialize_with = "int64")]
    log_index: i64,
    root_hash: String,
    #[serde(deserialize_with = "int64")]
    tree_size: i64,
    hashes: Vec<String>,
    checkpoint: Option<Checkpoint>,
}

#[derive(Deserialize)]
struct Checkpoint {
    envelope: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageSignature {
    message_digest: Option<MessageDigest>,
    signature: String,
}

#[derive(Deserialize)]
struct MessageDigest {
    algorithm: String,
    digest: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload: String,
    payload_type: String,
    signatures: Vec<DsseSignature>,
}

#[derive(Deserialize)]
struct DsseSignature {
    sig: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    #[serde(rename = "_type")]
    kind: String,
    #[serde(default)]
    subject: Vec<Subject>,
    predicate_type: String,
}

#[derive(Deserialize)]
struct Subject {
    #[serde(default)]
    digest: std::collections::BTreeMap<String, String>,
}

/// Protobuf JSON writes int64 as a string; accept a number too.
fn int64<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        S(String),
        N(i64),
    }
    match N::deserialize(d)? {
        N::N(n) => Ok(n),
        N::S(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

pub use crate::dsse::pae;

/// What a bundle is verified as.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// An image signature: its statement (or message digest) must name the image.
    Signature,
    /// An attestation: only the DSSE signature and Rekor entry are checked here; the caller reads
    /// the statement.
    Attestation,
}

/// What the bundle signed, once its signature verified.
struct Signed {
    /// The DSSE payload (attestations).
    payload: Vec<u8>,
    signature: Vec<u8>,
    /// The hash a Rekor entry names: of the DSSE payload, or the message digest.
    rekor_hash: Vec<u8>,
    kind: SignatureFormat,
    predicate_type: Option<String>,
}

/// Verifies a Sigstore bundle for `image`: the signature (DSSE over PAE, or a message signature over
/// the image digest), what it is about (in-toto subject or message digest = the image digest), the
/// Rekor entry (SET, body bound to this signature, inclusion proof when present) and, keyless, the
/// certificate chain at the integrated time and the identity.
pub fn verify_bundle(
    material: &SigstoreBundle,
    image: &Image<'_>,
    authority: &Authority<'_>,
    options: &VerifyOptions,
    now: SystemTime,
) -> Result<VerifiedSignature> {
    verify(material, image, authority, options, now, Purpose::Signature).map(|(v, _)| v)
}

/// Verifies the DSSE signature and Rekor entry of an attestation bundle, as [`verify_bundle`] does,
/// and returns the verified DSSE payload (the statement is not read here).
pub(crate) fn verify_attestation_bundle(
    material: &SigstoreBundle,
    image: &Image<'_>,
    authority: &Authority<'_>,
    options: &VerifyOptions,
    now: SystemTime,
) -> Result<(VerifiedSignature, Vec<u8>)> {
    verify(
        material,
        image,
        authority,
        options,
        now,
        Purpose::Attestation,
    )
}

fn verify(
    material: &SigstoreBundle,
    image: &Image<'_>,
    authority: &Authority<'_>,
    options: &VerifyOptions,
    now: SystemTime,
    purpose: Purpose,
) -> Result<(VerifiedSignature, Vec<u8>)> {
    let now = unix_seconds(now);
    let max_len = match purpose {
        Purpose::Signature => MAX_BUNDLE_LEN,
        Purpose::Attestation => MAX_ATTESTATION_BUNDLE_LEN,
    };
    let b: Bundle = json::parse(&material.json, max_len, "Sigstore bundle")?;
    if !MEDIA_TYPES.contains(&b.media_type.as_str()) {
        return Err(malformed(format!(
            "unsupported Sigstore bundle media type {:?}",
            b.media_type
        )));
    }
    let image_hex = image
        .digest
        .strip_prefix("sha256:")
        .ok_or_else(|| malformed(format!("image digest {} is not sha256", image.digest)))?;
    let image_digest = hex::decode(image_hex).map_err(|_| malformed("image digest is not hex"))?;

    // The signer: a certificate (keyless), or the authority's key.
    let vm = &b.verification_material;
    let mut certs = Vec::new();
    if let Some(c) = &vm.certificate {
        certs.push(Cert::from_der(json::b64(
            &c.raw_bytes,
            32 * 1024,
            "bundle certificate",
        )?)?);
    } else if let Some(chain) = &vm.x509_certificate_chain {
        if chain.certificates.len() > 8 {
            return Err(malformed("bundle certificate chain longer than 8"));
        }
        for c in &chain.certificates {
            certs.push(Cert::from_der(json::b64(
                &c.raw_bytes,
                32 * 1024,
                "bundle certificate",
            )?)?);
        }
    }
    let (key, leaf) = match authority {
        Authority::Key { key, .. } => {
            if !certs.is_empty() && vm.public_key.is_none() {
                // A certificate-signed bundle: only the key inside it is trusted here.
                let k = certs[0].key()?;
                if k != **key {
                    return Err(bad_signature(format!(
                        "bundle is signed with a certificate, not with key {}",
                        authority.name()
                    )));
                }
            }
            ((*key).clone(), None)
        }
        Authority::Keyless { .. } => {
            if certs.is_empty() {
                return Err(untrusted("keyless bundle has no certificate"));
            }
            let leaf = certs.remove(0);
            (leaf.key()?, Some(leaf))
        }
    };
    let who = || match (authority, &leaf) {
        (Authority::Keyless { .. }, Some(l)) => format!(
            "the certificate of {}",
            cert::identity(l)
                .ok()
                .and_then(|i| i.sans.first().cloned())
                .unwrap_or_else(|| "(no subject)".into())
        ),
        _ => format!("key {}", authority.name()),
    };

    let signed = match (&b.dsse_envelope, &b.message_signature) {
        (Some(env), None) => verify_dsse(env, &key, image_hex, options, &who, purpose)?,
        (None, Some(_)) if purpose == Purpose::Attestation => {
            return Err(malformed(
                "Sigstore bundle holds a message signature, not an attestation",
            ))
        }
        (None, Some(ms)) => {
            let sig = json::b64(&ms.signature, 2048, "bundle signature")?;
            let md = ms
                .message_digest
                .as_ref()
                .ok_or_else(|| malformed("bundle message signature has no digest"))?;
            if md.algorithm != "SHA2_256" {
                return Err(malformed(format!(
                    "bundle message digest algorithm {} is not SHA2_256",
                    md.algorithm
                )));
            }
            let digest = json::b64(&md.digest, 64, "bundle message digest")?;
            key.verify_prehash(HashAlgorithm::Sha256, None, &digest, &sig)
                .map_err(|_| bad_signature(format!("signature does not verify with {}", who())))?;
            if digest != image_digest {
                return Err(wrong_image(format!(
                    "signed digest sha256:{} is not the image digest {}",
                    hex::encode(&digest),
                    image.digest
                )));
            }
            Signed {
                payload: Vec::new(),
                signature: sig,
                rekor_hash: digest,
                kind: SignatureFormat::BundleMessageSignature,
                predicate_type: None,
            }
        }
        _ => {
            return Err(malformed(
                "Sigstore bundle must hold exactly one of a DSSE envelope or a message signature",
            ))
        }
    };

    // Rekor.
    let root = match authority {
        Authority::Key { rekor, .. } => *rekor,
        Authority::Keyless { trusted_root, .. } => Some(*trusted_root),
    };
    let need_tlog = leaf.is_some() || options.require_tlog;
    let signer = match &leaf {
        Some(l) => Signer::Certificate(&l.der),
        None => Signer::Key(&key),
    };
    let mut entry = None;
    if let Some(root) = root {
        if vm.tlog_entries.len() > MAX_TLOG_ENTRIES {
            return Err(malformed("bundle has too many transparency log entries"));
        }
        let mut last = None;
        for t in &vm.tlog_entries {
            match verify_tlog_entry(t, root, &signed, signer, now) {
                Ok(e) => {
                    entry = Some(e);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        if entry.is_none() && (need_tlog || last.is_some()) {
            return Err(last.unwrap_or_else(|| untrusted("bundle has no transparency log entry")));
        }
    } else if need_tlog {
        return Err(untrusted(format!(
            "a Rekor entry is required but authority {} has no trusted root",
            authority.name()
        )));
    }

    let mut record = match (authority, &leaf) {
        (
            Authority::Keyless {
                name,
                trusted_root,
                identity,
            },
            Some(leaf),
        ) => {
            let e = entry
                .as_ref()
                .ok_or_else(|| untrusted("keyless bundle has no verified Rekor entry"))?;
            super::keyless_checks(
                leaf,
                &certs,
                trusted_root,
                identity,
                e,
                name,
                &key,
                material.origin.clone(),
            )?
        }
        _ => VerifiedSignature {
            authority: authority.name().to_string(),
            format: signed.kind,
            key_fingerprint: key.fingerprint(),
            digest: String::new(),
            docker_reference: None,
            predicate_type: None,
            certificate: None,
            rekor: entry,
            origin: material.origin.clone(),
        },
    };
    record.format = signed.kind;
    record.digest = image.digest.to_string();
    record.predicate_type = signed.predicate_type;
    Ok((record, signed.payload))
}

fn verify_dsse(
    env: &Envelope,
    key: &PublicKey,
    image_hex: &str,
    options: &VerifyOptions,
    who: &dyn Fn() -> String,
    purpose: Purpose,
) -> Result<Signed> {
    if env.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(wrong_image(format!(
            "DSSE payload type {:?} is not {IN_TOTO_PAYLOAD_TYPE}",
            env.payload_type
        )));
    }
    let max_payload = match purpose {
        Purpose::Signature => MAX_DSSE_PAYLOAD,
        Purpose::Attestation => MAX_ATTESTATION_PAYLOAD,
    };
    let payload = json::b64(&env.payload, max_payload, "DSSE payload")?;
    if env.signatures.is_empty() || env.signatures.len() > MAX_DSSE_SIGNATURES {
        return Err(malformed(format!(
            "DSSE envelope has {} signatures (1 to {MAX_DSSE_SIGNATURES})",
            env.signatures.len()
        )));
    }
    let message = pae(&env.payload_type, &payload);
    let mut signature = None;
    for s in &env.signatures {
        let sig = json::b64(&s.sig, 2048, "DSSE signature")?;
        if key.verify(&message, &sig).is_ok() {
            signature = Some(sig);
            break;
        }
    }
    let signature = signature
        .ok_or_else(|| bad_signature(format!("signature does not verify with {}", who())))?;
    if purpose == Purpose::Attestation {
        return Ok(Signed {
            rekor_hash: Sha256::digest(&payload).to_vec(),
            payload,
            signature,
            kind: SignatureFormat::BundleDsse,
            predicate_type: None,
        });
    }

    // Verified: now read the statement.
    let st: Statement = json::parse(&payload, MAX_DSSE_PAYLOAD, "in-toto statement")?;
    if !matches!(
        st.kind.as_str(),
        "https://in-toto.io/Statement/v1" | "https://in-toto.io/Statement/v0.1"
    ) {
        return Err(wrong_image(format!(
            "DSSE payload is not an in-toto statement ({:?})",
            st.kind
        )));
    }
    if !options.bundle_predicate_types.is_empty()
        && !options.bundle_predicate_types.contains(&st.predicate_type)
    {
        return Err(wrong_image(format!(
            "statement predicate type {} is not accepted here",
            st.predicate_type
        )));
    }
    let subjects: Vec<&str> = st
        .subject
        .iter()
        .filter_map(|s| s.digest.get("sha256").map(String::as_str))
        .collect();
    if !subjects.iter().any(|d| d.eq_ignore_ascii_case(image_hex)) {
        return Err(wrong_image(format!(
            "signed digest {} is not the image digest sha256:{image_hex}",
            subjects
                .first()
                .map(|d| format!("sha256:{}", json::shown(d)))
                .unwrap_or_else(|| "(none)".into())
        )));
    }
    Ok(Signed {
        rekor_hash: Sha256::digest(&payload).to_vec(),
        payload: Vec::new(),
        signature,
        kind: SignatureFormat::BundleDsse,
        predicate_type: Some(st.predicate_type),
    })
}

fn verify_tlog_entry(
    t: &TlogEntry,
    root: &super::TrustedRoot,
    signed: &Signed,
    signer: Signer<'_>,
    now: i64,
) -> Result<rekor::RekorEntry> {
    let body = json::b64(
        &t.canonicalized_body,
        rekor::MAX_BODY_LEN,
        "Rekor entry body",
    )?;
    let log_id = json::b64(&t.log_id.key_id, 64, "Rekor log id")?;
    let promise = t.inclusion_promise.as_ref().ok_or_else(|| {
        untrusted(
            "Rekor entry has no signed entry timestamp (only SET-backed entries are supported)",
        )
    })?;
    let e = UntrustedEntry {
        body,
        integrated_time: t.integrated_time,
        log_index: t.log_index,
        log_id,
        set: json::b64(
            &promise.signed_entry_timestamp,
            1024,
            "Rekor signed entry timestamp",
        )?,
    };
    let mut entry = rekor::verify_set(&e, root, now)?;
    // The body's kind must be what the bundle says, and about this signature.
    let kind_ok = matches!(
        (t.kind_version.kind.as_str(), signed.kind),
        ("dsse", SignatureFormat::BundleDsse)
            | ("hashedrekord", SignatureFormat::BundleMessageSignature)
    );
    if !kind_ok || t.kind_version.version != "0.0.1" {
        return Err(malformed(format!(
            "Rekor entry kind {} {} does not fit the bundle's content",
            t.kind_version.kind, t.kind_version.version
        )));
    }
    let body_kind: serde_json::Value =
        json::parse(&e.body, rekor::MAX_BODY_LEN, "Rekor entry body")?;
    if body_kind["kind"].as_str() != Some(t.kind_version.kind.as_str()) {
        return Err(malformed(
            "Rekor entry body kind differs from the bundle's kindVersion",
        ));
    }
    rekor::check_body(&e.body, &signed.signature, &signed.rekor_hash, signer)?;
    if let Some(p) = &t.inclusion_proof {
        let proof = InclusionProof {
            log_index: u64::try_from(p.log_index).map_err(|_| malformed("negative proof index"))?,
            tree_size: u64::try_from(p.tree_size).map_err(|_| malformed("negative tree size"))?,
            root_hash: json::b64(&p.root_hash, 64, "inclusion proof root hash")?,
            hashes: p
                .hashes
                .iter()
                .take(65)
                .map(|h| json::b64(h, 64, "inclusion proof hash"))
                .collect::<Result<_>>()?,
            checkpoint: p
                .checkpoint
                .as_ref()
                .map(|c| c.envelope.clone())
                .ok_or_else(|| malformed("inclusion proof has no checkpoint"))?,
        };
        rekor::verify_inclusion(&e.body, &proof, &e.log_id, root)?;
        entry.inclusion_proof_verified = true;
    }
    Ok(entry)
}

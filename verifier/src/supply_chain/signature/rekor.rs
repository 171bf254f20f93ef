//! Rekor as cosign's own formats carry it (the `dev.sigstore.cosign/bundle` annotation): the signed
//! entry timestamp (SET) and the entry body's binding to the signature it vouches for. All offline.
//! A Sigstore bundle's entries, with their inclusion proofs and checkpoints, are
//! [`crate::sigstore`]'s.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::trust_root::TrustedRoot;
use super::{json, malformed, untrusted, Result};
use crate::keys::{pem_decode, PublicKey};

/// Largest Rekor entry body accepted (a hashedrekord with a certificate is about 3 KiB).
pub(crate) const MAX_BODY_LEN: usize = 64 * 1024;
/// Largest cosign `dev.sigstore.cosign/bundle` annotation accepted.
pub(crate) const MAX_REKOR_BUNDLE_LEN: usize = 128 * 1024;
/// Integrated times this far past the verification time are refused (clock skew allowance).
const MAX_FUTURE_SKEW_S: i64 = 300;

/// A Rekor entry whose SET verified with a trusted log key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RekorEntry {
    /// Hex SHA-256 of the log's key.
    pub log_id: String,
    pub log_index: i64,
    /// Seconds since the epoch at which the log integrated the entry (signed by the SET).
    pub integrated_time: i64,
}

/// An entry as carried by a signature, before anything about it is trusted.
pub(crate) struct UntrustedEntry {
    pub body: Vec<u8>,
    pub integrated_time: i64,
    pub log_index: i64,
    pub log_id: Vec<u8>,
    pub set: Vec<u8>,
}

/// Who made the signature an entry must name.
#[derive(Clone, Copy)]
pub(crate) enum Signer<'a> {
    Key(&'a PublicKey),
    /// A DER certificate.
    Certificate(&'a [u8]),
}

#[derive(Deserialize)]
struct CosignBundle {
    #[serde(rename = "SignedEntryTimestamp")]
    set: String,
    #[serde(rename = "Payload")]
    payload: CosignBundlePayload,
}

#[derive(Deserialize)]
struct CosignBundlePayload {
    body: String,
    #[serde(rename = "integratedTime")]
    integrated_time: i64,
    #[serde(rename = "logIndex")]
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

/// Parses cosign's `dev.sigstore.cosign/bundle` annotation.
pub(crate) fn parse_cosign_bundle(text: &str) -> Result<UntrustedEntry> {
    let b: CosignBundle = json::parse(text.as_bytes(), MAX_REKOR_BUNDLE_LEN, "Rekor bundle")?;
    let log_id =
        hex::decode(&b.payload.log_id).map_err(|_| malformed("Rekor bundle logID is not hex"))?;
    Ok(UntrustedEntry {
        body: json::b64(&b.payload.body, MAX_BODY_LEN, "Rekor entry body")?,
        integrated_time: b.payload.integrated_time,
        log_index: b.payload.log_index,
        log_id,
        set: json::b64(&b.set, 1024, "Rekor signed entry timestamp")?,
    })
}

/// The bytes the SET signs: the canonical JSON of the entry (keys sorted, no spaces).
pub(crate) fn set_message(e: &UntrustedEntry) -> Vec<u8> {
    format!(
        r#"{{"body":"{}","integratedTime":{},"logID":"{}","logIndex":{}}}"#,
        json::b64_encode(&e.body),
        e.integrated_time,
        hex::encode(&e.log_id),
        e.log_index
    )
    .into_bytes()
}

/// Verifies the SET with the key of the trusted log the entry names; returns the trusted entry.
pub(crate) fn verify_set(e: &UntrustedEntry, root: &TrustedRoot, now: i64) -> Result<RekorEntry> {
    let log_id = hex::encode(&e.log_id);
    let short = log_id.get(..16).unwrap_or(&log_id);
    let log = root
        .tlog(&e.log_id)
        .ok_or_else(|| untrusted(format!("Rekor log {short}… is not in the trusted root")))?;
    if e.log_index < 0 || e.integrated_time < 0 {
        return Err(malformed("Rekor entry has a negative log index or time"));
    }
    log.key.verify(&set_message(e), &e.set).map_err(|_| {
        untrusted(format!(
            "Rekor signed entry timestamp does not verify with the key of log {short}…"
        ))
    })?;
    if !log.valid_for.contains(e.integrated_time) {
        return Err(untrusted(format!(
            "Rekor log {short}… was not trusted at the entry's integrated time {}",
            json::format_unix(e.integrated_time)
        )));
    }
    if e.integrated_time > now + MAX_FUTURE_SKEW_S {
        return Err(untrusted(format!(
            "Rekor integrated time {} is in the future",
            json::format_unix(e.integrated_time)
        )));
    }
    Ok(RekorEntry {
        log_id,
        log_index: e.log_index,
        integrated_time: e.integrated_time,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    api_version: String,
    kind: String,
    spec: serde_json::Value,
}

/// Checks that an entry body (`hashedrekord` or `dsse`, v0.0.1) is about this signature: the same
/// signature bytes, the same signer, and the same payload hash (`payload_sha256`: the hash of the
/// signed payload for hashedrekord, of the DSSE payload for dsse).
pub(crate) fn check_body(
    body: &[u8],
    signature: &[u8],
    payload_sha256: &[u8],
    signer: Signer<'_>,
) -> Result<()> {
    let b: Body = json::parse(body, MAX_BODY_LEN, "Rekor entry body")?;
    if b.api_version != "0.0.1" {
        return Err(malformed(format!(
            "Rekor entry is {} version {}, only 0.0.1 is supported",
            b.kind, b.api_version
        )));
    }
    let s = &b.spec;
    let text = |v: &serde_json::Value, what: &str| -> Result<String> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| malformed(format!("Rekor entry has no {what}")))
    };
    match b.kind.as_str() {
        "hashedrekord" => {
            let alg = text(&s["data"]["hash"]["algorithm"], "data hash algorithm")?;
            if alg != "sha256" {
                return Err(malformed(format!(
                    "Rekor entry hash algorithm {alg:?} is not sha256"
                )));
            }
            let hash = text(&s["data"]["hash"]["value"], "data hash")?;
            if !hash.eq_ignore_ascii_case(&hex::encode(payload_sha256)) {
                return Err(untrusted(
                    "Rekor entry is for another payload (its hash differs)",
                ));
            }
            let sig = json::b64(
                &text(&s["signature"]["content"], "signature")?,
                4096,
                "Rekor entry signature",
            )?;
            if sig != signature {
                return Err(untrusted("Rekor entry is for another signature"));
            }
            let verifier = text(&s["signature"]["publicKey"]["content"], "public key")?;
            check_verifier(&verifier, signer)
        }
        "dsse" => {
            let alg = text(&s["payloadHash"]["algorithm"], "payload hash algorithm")?;
            let hash = text(&s["payloadHash"]["value"], "payload hash")?;
            if alg != "sha256" || !hash.eq_ignore_ascii_case(&hex::encode(payload_sha256)) {
                return Err(untrusted(
                    "Rekor entry is for another DSSE payload (its hash differs)",
                ));
            }
            let sigs = s["signatures"]
                .as_array()
                .ok_or_else(|| malformed("Rekor dsse entry has no signatures"))?;
            for entry in sigs.iter().take(16) {
                let Some(content) = entry["signature"].as_str() else {
                    continue;
                };
                if json::b64(content, 4096, "Rekor entry signature")? != signature {
                    continue;
                }
                let verifier = text(&entry["verifier"], "verifier")?;
                return check_verifier(&verifier, signer);
            }
            Err(untrusted("Rekor entry is for another signature"))
        }
        other => Err(malformed(format!(
            "Rekor entry kind {other:?} is not supported (hashedrekord, dsse)"
        ))),
    }
}

/// Checks that an entry body is about this DSSE envelope (an attestation in a cosign `.att` layer):
/// an `intoto` entry (v0.0.1 or v0.0.2, what `cosign attest` logs) names the hash of the exact
/// envelope bytes, the hash of its payload and the signer (v0.0.2: and the signature, which it
/// stores base64-encoded twice); a `dsse` entry (v0.0.1, cosign's newer default) is checked by
/// [`check_body`]. `signature` is the DSSE signature that verified.
pub(crate) fn check_envelope_body(
    body: &[u8],
    envelope: &[u8],
    payload: &[u8],
    signature: &[u8],
    signer: Signer<'_>,
) -> Result<()> {
    let b: Body = json::parse(body, MAX_BODY_LEN, "Rekor entry body")?;
    let payload_sha256 = Sha256::digest(payload);
    match (b.kind.as_str(), b.api_version.as_str()) {
        ("dsse", _) => check_body(body, signature, &payload_sha256, signer),
        ("intoto", version @ ("0.0.1" | "0.0.2")) => {
            let content = &b.spec["content"];
            let hash = |v: &serde_json::Value, what: &str| -> Result<String> {
                if v["algorithm"].as_str() != Some("sha256") {
                    return Err(malformed(format!(
                        "Rekor intoto entry {what} algorithm is not sha256"
                    )));
                }
                v["value"]
                    .as_str()
                    .map(str::to_ascii_lowercase)
                    .ok_or_else(|| malformed(format!("Rekor intoto entry has no {what}")))
            };
            if hash(&content["hash"], "envelope hash")? != hex::encode(Sha256::digest(envelope)) {
                return Err(untrusted(
                    "Rekor entry is for another DSSE envelope (its hash differs)",
                ));
            }
            let payload_hash = &content["payloadHash"];
            if (version == "0.0.2" || !payload_hash.is_null())
                && hash(payload_hash, "payload hash")? != hex::encode(payload_sha256)
            {
                return Err(untrusted(
                    "Rekor entry is for another DSSE payload (its hash differs)",
                ));
            }
            if version == "0.0.1" {
                let key = b.spec["publicKey"]
                    .as_str()
                    .ok_or_else(|| malformed("Rekor intoto entry has no public key"))?;
                return check_verifier(key, signer);
            }
            let sigs = content["envelope"]["signatures"]
                .as_array()
                .ok_or_else(|| malformed("Rekor intoto entry has no signatures"))?;
            for entry in sigs.iter().take(16) {
                let Some(content) = entry["sig"].as_str() else {
                    continue;
                };
                // strfmt.Base64 of the DSSE `sig` string, itself base64.
                let inner = json::b64(content, 8192, "Rekor entry signature")?;
                let inner = String::from_utf8(inner)
                    .map_err(|_| malformed("Rekor intoto entry signature is not base64 text"))?;
                if json::b64(inner.trim(), 4096, "Rekor entry signature")? != signature {
                    continue;
                }
                let key = entry["publicKey"]
                    .as_str()
                    .ok_or_else(|| malformed("Rekor intoto entry has no public key"))?;
                return check_verifier(key, signer);
            }
            Err(untrusted("Rekor entry is for another signature"))
        }
        (kind, version) => Err(malformed(format!(
            "Rekor entry kind {kind:?} version {version} is not supported for attestations (intoto 0.0.1/0.0.2, dsse 0.0.1)"
        ))),
    }
}

/// The entry's verifier (base64 of a PEM key or certificate) must be the signer.
fn check_verifier(b64_pem: &str, signer: Signer<'_>) -> Result<()> {
    let pem = json::b64(b64_pem, 64 * 1024, "Rekor entry verifier")?;
    let pem = String::from_utf8(pem).map_err(|_| malformed("Rekor entry verifier is not PEM"))?;
    let (label, der) =
        pem_decode(&pem).map_err(|e| malformed(format!("Rekor entry verifier: {e}")))?;
    let same = match (label.as_str(), signer) {
        ("PUBLIC KEY", Signer::Key(k)) => der == k.spki_der(),
        ("CERTIFICATE", Signer::Certificate(c)) => der == c,
        // An entry made with a certificate for a key-based check: the key must be the same.
        ("CERTIFICATE", Signer::Key(k)) => PublicKey::from_certificate(&der).is_ok_and(|c| c == *k),
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(untrusted(
            "Rekor entry names another signer (key or certificate)",
        ))
    }
}

//! The sigstore-conformance bundle-verify cases vendored in `tests/data/sigstore-conformance/`
//! (see its SOURCES.md), read as the conformance suite's client does: each directory holds
//! `bundle.sigstore.json` and optionally `artifact` (else `a.txt`), `key.pub`, `identity`,
//! `issuer` and `trusted_root.json` (else Sigstore's public-good root); a name ending in `_fail`
//! must not verify.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
pub const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

pub fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

pub fn public_good_root() -> PathBuf {
    data().join("sigstore-public-good/trusted_root.json")
}

pub struct Case {
    pub name: String,
    pub bundle: PathBuf,
    pub artifact: PathBuf,
    pub trusted_root: PathBuf,
    pub key: Option<PathBuf>,
    pub identity: String,
    pub issuer: String,
}

impl Case {
    pub fn expect_verified(&self) -> bool {
        !self.name.ends_with("_fail")
    }

    /// `sha256:HEX` of the artifact.
    pub fn digest(&self) -> String {
        let bytes = std::fs::read(&self.artifact).unwrap();
        format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
    }
}

pub fn cases() -> Vec<Case> {
    let root = data().join("sigstore-conformance/bundle-verify");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let text = |name: &str| {
                std::fs::read_to_string(dir.join(name))
                    .ok()
                    .map(|s| s.trim().to_string())
            };
            let optional = |name: &str| Some(dir.join(name)).filter(|p| p.exists());
            Case {
                name: dir.file_name().unwrap().to_string_lossy().into_owned(),
                bundle: dir.join("bundle.sigstore.json"),
                artifact: optional("artifact").unwrap_or_else(|| root.join("a.txt")),
                trusted_root: optional("trusted_root.json").unwrap_or_else(public_good_root),
                key: optional("key.pub"),
                identity: text("identity").unwrap_or_else(|| DEFAULT_IDENTITY.to_string()),
                issuer: text("issuer").unwrap_or_else(|| DEFAULT_ISSUER.to_string()),
            }
        })
        .collect()
}

/// Why each `_fail` case is refused, as `FailureKind` names itself in JSON. Several cases of the
/// suite fail for another reason than their name (they were made for clients that check in
/// another order); the reason given here is the one vouch reports.
pub fn expected_failure(name: &str) -> Option<&'static str> {
    Some(match name {
        "bundle-empty-certificate-chain_fail" => "malformed",
        "bundle-from-wrong-instance_fail" => "unknown-log",
        "bundle-invalid-base64-signature_fail" => "malformed",
        "bundle-malformed-json_fail" => "malformed",
        "bundle-negative-log-index_fail" => "malformed",
        "bundle-unknown-version_fail" => "malformed",
        "bundle-with-root-cert_fail" => "root-in-chain",
        "checkpoint-bad-keyhint_fail" => "checkpoint",
        "checkpoint-wrong-roothash_fail" => "checkpoint",
        "dsse-invalid-sig_fail" => "signature",
        "dsse-mismatch-envelope_fail" => "entry-mismatch",
        "dsse-mismatch-sig_fail" => "entry-mismatch",
        "inclusion-proof-corrupted-hash_fail" => "inclusion-proof",
        "incorrect-public-key_fail" => "set",
        // Its integrated time was in the future when it was made; now it only lies after the
        // certificate's expiry.
        "integrated-time-in-future_fail" => "certificate-expired",
        "intoto-expired-certificate_fail" => "certificate-expired",
        // A corrupted signature in the logged intoto body: refused while decoding the entry.
        "intoto-log-entry-mismatch_fail" => "malformed",
        "intoto-missing-inclusion-proof_fail" => "inclusion-proof",
        "intoto-set-outside-signing-cert-validity_fail" => "certificate-expired",
        "intoto-tsa-timestamp-outside-cert-validity_fail" => "certificate-expired",
        "invalid-checkpoint-signature_fail" => "checkpoint",
        "invalid-ct-key_fail" => "sct",
        "invalid-inclusion-proof_fail" => "inclusion-proof",
        "managed-key-no-key_fail" => "wrong-material",
        // Its key.pub is not valid PEM.
        "managed-key-wrong-key_fail" => "key",
        "message-digest-mismatch_fail" => "digest-mismatch",
        "rekor2-checkpoint-missing-log-signature_fail" => "malformed",
        "rekor2-checkpoint-missing-origin_fail" => "malformed",
        "rekor2-checkpoint-missing-root-hash_fail" => "malformed",
        "rekor2-checkpoint-missing-size_fail" => "malformed",
        "rekor2-checkpoint-no-matching-signature_fail" => "checkpoint",
        "rekor2-dsse-invalid-sig_fail" => "signature",
        "rekor2-dsse-mismatch-envelope_fail" => "entry-mismatch",
        "rekor2-dsse-mismatch-sig_fail" => "entry-mismatch",
        "rekor2-no-inclusion-proof_fail" => "inclusion-proof",
        "rekor2-no-timestamp_fail" => "no-timestamp",
        "rekor2-timestamp-outside-trust-root-tsa-validity_fail" => "timestamp-outside-validity",
        "rekor2-timestamp-outside-tsa-cert-validity_fail" => "timestamp-outside-validity",
        "rekor2-timestamp-payload-mismatch_fail" => "invalid-timestamp",
        "rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail" => "untrusted-timestamp",
        "rekor2-timestamp-untrusted-tsa-without-embedded-cert_fail" => "untrusted-timestamp",
        // Its timestamp is base64 wrapped at 76 columns, which the bundle format does not allow.
        "rekor2-timestamp-with-incorrect-time_fail" => "malformed",
        "set-invalid-signature_fail" => "set",
        "signature-mismatch_fail" => "signature",
        "trust-root-tlog-missing-validity-start_fail" => "trusted-root",
        "wrong-hashedrekord-artifact_fail" => "entry-mismatch",
        "wrong-hashedrekord-cert-and-sig_fail" => "entry-mismatch",
        "wrong-hashedrekord-entry_fail" => "entry-mismatch",
        "wrong-material_fail" => "digest-mismatch",
        _ => return None,
    })
}

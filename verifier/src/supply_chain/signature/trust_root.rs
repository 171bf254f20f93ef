//! A Sigstore `trusted_root.json` (`application/vnd.dev.sigstore.trustedroot+json;version=0.1`):
//! the Rekor keys, Fulcio CAs and CT log keys keyless verification trusts, read from a local file.

use std::path::Path;

use der::Decode;
use serde::Deserialize;
use x509_cert::Certificate;

use super::json;
use super::{malformed, Result, SignatureError};
use crate::keys::PublicKey;

/// Largest trusted root accepted (the public-good one is about 7 KiB).
pub const MAX_TRUSTED_ROOT_LEN: usize = 1024 * 1024;
const MAX_ENTRIES: usize = 64;
const MAX_CHAIN: usize = 8;
const MAX_CERT_LEN: usize = 32 * 1024;

/// A time window in seconds since the epoch; `None` is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Validity {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

impl Validity {
    pub fn contains(&self, t: i64) -> bool {
        self.start.is_none_or(|s| s <= t) && self.end.is_none_or(|e| t <= e)
    }
}

/// A transparency log (Rekor) or CT log the root trusts.
#[derive(Debug, Clone)]
pub struct TransparencyLog {
    pub base_url: String,
    /// `logId.keyId`: SHA-256 of the log's public key, what entries name their log by.
    pub log_id: Vec<u8>,
    pub key: PublicKey,
    pub valid_for: Validity,
}

/// A Fulcio certificate authority: its chain, issuing certificate first, root last.
#[derive(Debug, Clone)]
pub struct CertificateAuthority {
    pub uri: String,
    /// `(DER, parsed)`.
    pub chain: Vec<(Vec<u8>, Certificate)>,
    pub valid_for: Validity,
}

#[derive(Debug, Clone, Default)]
pub struct TrustedRoot {
    pub tlogs: Vec<TransparencyLog>,
    pub certificate_authorities: Vec<CertificateAuthority>,
    pub ctlogs: Vec<TransparencyLog>,
    /// Entries whose keys are of a kind vouch does not support, skipped (for diagnostics).
    pub skipped: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRoot {
    media_type: Option<String>,
    #[serde(default)]
    tlogs: Vec<RawLog>,
    #[serde(default)]
    certificate_authorities: Vec<RawCa>,
    #[serde(default)]
    ctlogs: Vec<RawLog>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    #[serde(default)]
    base_url: String,
    public_key: RawKey,
    log_id: RawLogId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKey {
    raw_bytes: Option<String>,
    #[serde(default)]
    valid_for: Option<RawValidity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: String,
}

#[derive(Deserialize)]
struct RawValidity {
    start: Option<String>,
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCa {
    #[serde(default)]
    uri: String,
    cert_chain: RawChain,
    valid_for: Option<RawValidity>,
}

#[derive(Deserialize)]
struct RawChain {
    certificates: Vec<RawBytes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytes {
    raw_bytes: String,
}

fn validity(v: Option<RawValidity>, what: &str) -> Result<Validity> {
    let Some(v) = v else {
        return Ok(Validity::default());
    };
    let t = |s: Option<String>| -> Result<Option<i64>> {
        s.map(|s| {
            json::parse_rfc3339(&s)
                .ok_or_else(|| malformed(format!("trusted root: {what}: invalid time {s:?}")))
        })
        .transpose()
    };
    Ok(Validity {
        start: t(v.start)?,
        end: t(v.end)?,
    })
}

impl TrustedRoot {
    pub fn from_file(path: &Path) -> Result<TrustedRoot> {
        use std::io::Read;
        let file =
            std::fs::File::open(path).map_err(|e| malformed(format!("{}: {e}", path.display())))?;
        let mut bytes = Vec::new();
        file.take(MAX_TRUSTED_ROOT_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| malformed(format!("{}: {e}", path.display())))?;
        TrustedRoot::from_json(&bytes).map_err(|e| SignatureError {
            kind: e.kind,
            reason: format!("{}: {}", path.display(), e.reason),
        })
    }

    pub fn from_json(bytes: &[u8]) -> Result<TrustedRoot> {
        let raw: RawRoot = json::parse(bytes, MAX_TRUSTED_ROOT_LEN, "trusted root")?;
        if let Some(mt) = &raw.media_type {
            if !mt.starts_with("application/vnd.dev.sigstore.trustedroot") {
                return Err(malformed(format!(
                    "trusted root has media type {mt:?}, not a Sigstore trusted root"
                )));
            }
        }
        if raw.tlogs.len() > MAX_ENTRIES
            || raw.ctlogs.len() > MAX_ENTRIES
            || raw.certificate_authorities.len() > MAX_ENTRIES
        {
            return Err(malformed(format!(
                "trusted root lists more than {MAX_ENTRIES} logs or CAs"
            )));
        }
        let mut root = TrustedRoot::default();
        for (kind, raws) in [("tlog", raw.tlogs), ("ctlog", raw.ctlogs)] {
            for (i, log) in raws.into_iter().enumerate() {
                let what = format!("{kind} {i} ({})", log.base_url);
                let log_id = json::b64(&log.log_id.key_id, 64, &format!("{what} logId"))?;
                let Some(raw_bytes) = log.public_key.raw_bytes else {
                    root.skipped.push(format!("{what}: no public key"));
                    continue;
                };
                let der = json::b64(&raw_bytes, MAX_CERT_LEN, &format!("{what} public key"))?;
                let key = match PublicKey::from_spki_der(&der) {
                    Ok(k) => k,
                    Err(e) => {
                        root.skipped.push(format!("{what}: {e}"));
                        continue;
                    }
                };
                let entry = TransparencyLog {
                    base_url: log.base_url,
                    log_id,
                    key,
                    valid_for: validity(log.public_key.valid_for, &what)?,
                };
                if kind == "tlog" {
                    root.tlogs.push(entry);
                } else {
                    root.ctlogs.push(entry);
                }
            }
        }
        for (i, ca) in raw.certificate_authorities.into_iter().enumerate() {
            let what = format!("certificate authority {i} ({})", ca.uri);
            let certs = ca.cert_chain.certificates;
            if certs.is_empty() || certs.len() > MAX_CHAIN {
                return Err(malformed(format!(
                    "trusted root: {what}: chain of {} certificates (1 to {MAX_CHAIN})",
                    certs.len()
                )));
            }
            let mut chain = Vec::new();
            for c in certs {
                let der = json::b64(&c.raw_bytes, MAX_CERT_LEN, &format!("{what} certificate"))?;
                let cert = Certificate::from_der(&der)
                    .map_err(|e| malformed(format!("trusted root: {what}: certificate: {e}")))?;
                chain.push((der, cert));
            }
            root.certificate_authorities.push(CertificateAuthority {
                uri: ca.uri,
                chain,
                valid_for: validity(ca.valid_for, &what)?,
            });
        }
        Ok(root)
    }

    /// The transparency log whose key id is `log_id`.
    pub fn tlog(&self, log_id: &[u8]) -> Option<&TransparencyLog> {
        self.tlogs.iter().find(|l| l.log_id == log_id)
    }
}

//! The TPM: an attestation key, one PCR extended per start, the event log that replays it, and
//! quotes over that PCR (production with `tss-esapi`, verification in pure Rust).
//!
//! Per start, [`record_event`] (called by the gate inside its exclusive lock):
//! 1. reads the TPM clock (`TPM2_ReadClock`: reset and restart counts);
//! 2. opens the TPM at the TCTI, and makes sure the attestation key (AK) exists: an ECC NIST P-256
//!    restricted signing key (ECDSA-SHA256) under the endorsement hierarchy (so that its quotes
//!    carry the reset and restart counts in clear), made persistent by the owner at
//!    [`AK_PERSISTENT_HANDLE`], its public key kept in `<state_dir>/tpm/ak.pem`;
//! 3. appends the event to `<state_dir>/tpm/events.jsonl` ([`Event`], written and fsynced), then
//!    extends the PCR's SHA-256 bank with the event digest ([`event_digest`]); a refused extend is
//!    taken back out of the log;
//! 4. reads the PCR and quotes it with the event digest as qualifying data: the one TPM signature
//!    on the start path; checks the quote is of that PCR value and of the power cycle logged.
//!
//! [`verify_quote`] checks a quote without a TPM, [`read_event_log`] and [`replay`] recompute the
//! PCR value a quote must show, and [`verify_evidence`] does all three for one record.
//!
//! Layout: [`eventlog`] (the event log and its replay), [`quote`] (pure-Rust quote verification),
//! `device` (everything that talks to a TPM) and `testtpm` (a real swtpm for tests, with the
//! `test-support` feature).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod device;
pub mod eventlog;
pub mod quote;
#[cfg(any(test, feature = "test-support"))]
pub mod testtpm;

pub use device::{record_event, record_event_timed, Timings};
pub use eventlog::{read_event_log, replay, Event};
pub use quote::{verify_quote, QuoteInfo};

/// The TCTI used when the node configuration names none: the kernel's resource manager.
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";

/// The PCR extended when the node configuration names none. PCR 23 is the PC Client
/// "application support" PCR: resettable and extendable by any root process at locality 0, so the
/// event log (not the PCR alone) is the evidence; the PCR ties the log to the TPM.
pub const DEFAULT_PCR: u32 = 23;

/// The persistent handle of the attestation key: owner persistent range (0x81000000-0x817FFFFF),
/// kept out of the TCG registry's endorsement-primary range (0x81010000-0x8101FFFF, where EKs and
/// the `tpm2_createak` examples live) and out of the SRK's 0x81000001.
/// Inspect with `tpm2_readpublic -c 0x81000023`; remove with `tpm2_evictcontrol -C o -c 0x81000023`.
pub const AK_PERSISTENT_HANDLE: u32 = 0x8100_0023;

/// The domain tag that starts every [`event_digest`] preimage.
pub const EVENT_DIGEST_TAG: &str = "vouch-event-v1";

/// What a start's record carries as `tpm` when the PCR was extended and quoted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TpmEvidence {
    /// The PCR index (SHA-256 bank).
    pub pcr: u32,
    /// Hex of the PCR's SHA-256 value right after this start's extend.
    pub pcr_value: String,
    /// Hex of the event digest extended into the PCR and used as the quote's qualifying data.
    pub event_digest: String,
    /// Position of this event in the event log (0-based, counting every event ever appended).
    pub event_index: u64,
    /// Base64 of the marshalled TPMS_ATTEST (`tpm2_quote -m`).
    pub attest: String,
    /// Base64 of the marshalled TPMT_SIGNATURE (`tpm2_quote -s`).
    pub signature: String,
    /// The attestation key's public key, PEM (SubjectPublicKeyInfo).
    pub ak_pem: String,
}

/// What went wrong with the TPM, the event log or a quote. Every message is one line saying what
/// failed and, where there is one, what to do.
#[derive(Debug, thiserror::Error)]
pub enum TpmError {
    #[error(
        "invalid TCTI {tcti:?}: expected e.g. device:/dev/tpmrm0 or swtpm:host=127.0.0.1,port=2321"
    )]
    InvalidTcti { tcti: String },
    #[error("TPM unreachable at {tcti}: {reason}")]
    Unreachable { tcti: String, reason: String },
    #[error("PCR {pcr} is out of range: use a PCR from 0 to 23 (default 23)")]
    InvalidPcr { pcr: u32 },
    #[error("TPM {op} failed at {tcti}: {reason}")]
    Command {
        op: &'static str,
        tcti: String,
        reason: String,
    },
    #[error("attestation key at {handle:#010x}: {reason}")]
    AttestationKey { handle: u32, reason: String },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("event log {}: {reason}", path.display())]
    EventLog { path: PathBuf, reason: String },
    #[error("event log {} line {line}: {reason}", path.display())]
    EventLogLine {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("event log replay: {0}")]
    Replay(String),
    #[error("TPM evidence: {0}")]
    Evidence(String),
    #[error("quote malformed: {0}")]
    QuoteFormat(String),
    #[error("quote signature {0}")]
    QuoteSignature(String),
    #[error("quote qualifying data {got} is not the event digest {expected}: the quote is not for this event")]
    QuoteNonce { expected: String, got: String },
    #[error("quote selects {got}, not PCR {pcr} of the SHA-256 bank")]
    QuoteSelection { pcr: u32, got: String },
    #[error("quote PCR digest {quoted} is not SHA-256 of pcr_value {pcr_value}: the recorded PCR value is not the quoted one")]
    QuotePcrDigest { quoted: String, pcr_value: String },
}

/// Everything a remote verifier checks for one record's `tpm` evidence against the node's event
/// log: [`verify_quote`] with the AK (pass the node's trusted `ak.pem`: `evidence.ak_pem` is only
/// what the record claims), then that log event `evidence.event_index` is this PCR and event
/// digest, then that replaying the log, from all-zero, over the power cycle the TPM signed
/// (the quote's reset and restart counts) up to that event gives `evidence.pcr_value`.
pub fn verify_evidence(
    evidence: &TpmEvidence,
    events: &[Event],
    ak_pem: Option<&str>,
) -> Result<QuoteInfo, TpmError> {
    let info = verify_quote(evidence, ak_pem)?;
    let index = evidence.event_index;
    let event = events
        .iter()
        .find(|e| e.index == index)
        .ok_or_else(|| TpmError::Replay(format!("event {index} is not in the event log")))?;
    if event.pcr != evidence.pcr || !event.digest.eq_ignore_ascii_case(&evidence.event_digest) {
        return Err(TpmError::Replay(format!(
            "event {index} in the log extended PCR {} with {}, the record says PCR {} with {}",
            event.pcr, event.digest, evidence.pcr, evidence.event_digest
        )));
    }
    let replayed = replay(
        events,
        evidence.pcr,
        info.reset_count,
        info.restart_count,
        index,
    )?;
    if !hex::encode(replayed).eq_ignore_ascii_case(&evidence.pcr_value) {
        return Err(TpmError::Replay(format!(
            "replaying the log to event {index} gives {}, the quoted PCR {} is {}: the PCR was \
             extended or reset outside the log, or the log was altered",
            hex::encode(replayed),
            evidence.pcr,
            evidence.pcr_value
        )));
    }
    Ok(info)
}

/// The directory under `state_dir` holding the TPM's files (`ak.pem`, `events.jsonl`).
pub fn tpm_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("tpm")
}

/// The event log path under state_dir: `<state_dir>/tpm/events.jsonl`. Pure: [`record_event`]
/// creates the directory (0700).
pub fn event_log_path(state_dir: &Path) -> PathBuf {
    tpm_dir(state_dir).join("events.jsonl")
}

/// The attestation key's public key (PEM) under state_dir: `<state_dir>/tpm/ak.pem`.
pub fn ak_pem_path(state_dir: &Path) -> PathBuf {
    tpm_dir(state_dir).join("ak.pem")
}

/// The digest one start extends into the PCR and quotes as qualifying data.
///
/// SHA-256 over the bytes of [`EVENT_DIGEST_TAG`] (`vouch-event-v1`, 14 bytes, not
/// length-prefixed), then each field as its byte length (u64 big-endian) followed by its bytes, in
/// this order: container_id, image digest ("" when none), rootfs digest ("" when none), policy
/// digest ("" when none), decision ("allow"|"deny"|"audit"), prev (hex of the previous record's
/// hash, 64 zeros for the first). The length prefixes keep field boundaries from shifting.
pub fn event_digest(
    container_id: &str,
    image_digest: &str,
    rootfs_digest: &str,
    policy_digest: &str,
    decision: &str,
    prev: &str,
) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(EVENT_DIGEST_TAG.as_bytes());
    for field in [
        container_id,
        image_digest,
        rootfs_digest,
        policy_digest,
        decision,
        prev,
    ] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hasher.finalize().into()
}

/// The PCR extend operation on the SHA-256 bank: `SHA-256(old || digest)`.
pub fn extend(old: &[u8; 32], digest: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(old);
    hasher.update(digest);
    hasher.finalize().into()
}

/// Checks a PCR index (0-23: the PC Client PCR set).
pub(crate) fn check_pcr(pcr: u32) -> Result<(), TpmError> {
    if pcr > 23 {
        return Err(TpmError::InvalidPcr { pcr });
    }
    Ok(())
}

/// Decodes 64 hex digits into 32 bytes.
pub(crate) fn hex32(what: &str, s: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(s).map_err(|e| format!("{what} is not hex: {e}"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| format!("{what} is {} bytes, not 32", bytes.len()))
}

#[cfg(test)]
mod tests;

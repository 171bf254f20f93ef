//! The TPM: an attestation key, one PCR extended per start, the event log that replays it, and
//! quotes over that PCR (production with `tss-esapi`, verification in pure Rust).
//!
//! Groundwork: the evidence type a record carries. Not wired into the gate yet.

use serde::{Deserialize, Serialize};

/// `[tpm] tcti` when not set: the kernel's resource manager.
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";
/// `[tpm] pcr` when not set: resettable, and used by nothing else by default.
pub const DEFAULT_PCR: u32 = 23;

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

//! The attestation log: one DSSE-signed, hash-chained in-toto record per start decision.
//!
//! Every start, allowed, audited or denied, appends one line to a JSON-lines file (default
//! `<state_dir>/attestations.jsonl`, mode 0600): a DSSE envelope (`payloadType`
//! `application/vnd.in-toto+json`, signed over PAE by the node key, `keyid` = hex SHA-256 of the key's
//! DER SubjectPublicKeyInfo) whose payload is an in-toto Statement v1:
//!
//! - `subject`: the image, `{"name": <repository>, "digest": {"sha256": <hex>}}`; a start denied
//!   before its image was known names `container/<container_id>` with the SHA-256 of the container's
//!   `config.json` bytes (or, without them, of the container id);
//! - `predicateType`: [`PREDICATE_TYPE`];
//! - `predicate`: a [`Predicate`]: `seq` (0 for the first record), `prev` (hex SHA-256 of the previous
//!   record's payload bytes, 64 zeros for the first), `time`, `container_id`, `image`, `decision`,
//!   `reasons`, `policy_digest`, `rootfs_digest`, `layers`, `host`, `signatures`, `sbom_digest`, and
//!   `tpm` (the PCR extend and its quote) or `null` with `unquoted_reason`.
//!
//! [`append`] writes a record under an exclusive lock on `<log>.lock`, held across reading the last
//! record, the TPM and signing, so concurrent starts never interleave or fork the chain, and sends it
//! to an optional collector afterwards (a failing collector never fails a start, see `collector`).
//! Without a node key nothing can be signed: [`append`] returns [`LogError::NoKey`] and the caller
//! applies its mode (fail closed in `enforce`). A crash mid-write leaves a torn last line; the next
//! append starts on a fresh line and chains to the last readable record, and `verify` reports the
//! torn line at its position. [`verify_log`] checks a log offline (signatures, chain,
//! quotes, PCR replay); [`read_log`] and [`table`] are what `vouch attestation show` prints.

mod append;
mod collector;
mod key;
mod lines;
mod show;
mod verify;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::facts::ImageIdentity;
pub use crate::facts::{ExecInfo, ExecUser};
use crate::tpm::TpmEvidence;

pub use append::append;
pub use collector::MAX_RECORDS_PER_START;
pub use key::{
    default_key_path, default_public_key_path, ensure_default_key, read_public_key, NodeKey,
};
pub use show::{read_log, table, LoggedRecord};
pub use verify::{
    verify_log, verify_log_with, EventLog, Problem, QuoteFacts, QuoteVerifier, Report, TpmModule,
};

/// The predicate type of a start record.
pub const PREDICATE_TYPE: &str = "https://vouch.dev/attestation/start/v1";
/// The DSSE payload type of every record.
pub const PAYLOAD_TYPE: &str = crate::dsse::IN_TOTO_PAYLOAD_TYPE;
/// The in-toto statement type of every record.
pub const STATEMENT_TYPE: &str = crate::dsse::STATEMENT_V1;
/// `prev` of the first record.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// No record line is longer (vouch's own are a few KiB); a longer line is reported, never loaded.
pub const MAX_LINE_LEN: usize = 4 * 1024 * 1024;
/// How long a start may spend on the collector by default, retries included.
pub const DEFAULT_COLLECTOR_BUDGET: Duration = Duration::from_secs(2);
/// The log's file name under the state directory.
pub const DEFAULT_LOG_NAME: &str = "attestations.jsonl";

/// `<state_dir>/attestations.jsonl`.
pub fn default_log_path(state_dir: &Path) -> PathBuf {
    state_dir.join(DEFAULT_LOG_NAME)
}

/// What the gate decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionKind {
    Allow,
    Deny,
    /// Allowed by audit mode although something would have denied it (`reasons` says what).
    Audit,
}

impl DecisionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Allow => "allow",
            DecisionKind::Deny => "deny",
            DecisionKind::Audit => "audit",
        }
    }
}

impl std::fmt::Display for DecisionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One start decision, as the gate hands it to [`append`].
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub container_id: String,
    /// The image, when it was known.
    pub image: Option<ImageIdentity>,
    /// Hex SHA-256 of the container's `config.json` bytes: the subject digest when `image` is `None`
    /// (the container id's SHA-256 is used when this is `None` too).
    pub subject_fallback_digest: Option<String>,
    pub decision: DecisionKind,
    /// Denial lines, or the would-be denials audit mode let through.
    pub reasons: Vec<String>,
    pub policy_digest: Option<String>,
    pub rootfs_digest: Option<String>,
    /// Per-layer measurements (`[]` or `null` when not measured).
    pub layers: serde_json::Value,
    /// The host measurement (`null` when not measured).
    pub host: serde_json::Value,
    /// The authorities whose signatures verified.
    pub signatures: Vec<String>,
    pub sbom_digest: Option<String>,
    /// The process, when the decision is about an exec into a running container.
    pub exec: Option<ExecInfo>,
}

impl Decision {
    /// A decision with nothing measured: fill in what is known.
    pub fn new(container_id: impl Into<String>, decision: DecisionKind) -> Decision {
        Decision {
            container_id: container_id.into(),
            image: None,
            subject_fallback_digest: None,
            decision,
            reasons: Vec::new(),
            policy_digest: None,
            rootfs_digest: None,
            layers: serde_json::Value::Array(Vec::new()),
            host: serde_json::Value::Null,
            signatures: Vec::new(),
            sbom_digest: None,
            exec: None,
        }
    }
}

/// The predicate of a record; field names are a fixed public interface (see README).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Predicate {
    pub seq: u64,
    pub prev: String,
    /// RFC 3339 UTC, millisecond precision.
    pub time: String,
    pub container_id: String,
    pub image: Option<ImageIdentity>,
    pub decision: DecisionKind,
    pub reasons: Vec<String>,
    pub policy_digest: Option<String>,
    pub rootfs_digest: Option<String>,
    pub layers: serde_json::Value,
    pub host: serde_json::Value,
    pub signatures: Vec<String>,
    pub sbom_digest: Option<String>,
    pub tpm: Option<TpmEvidence>,
    /// The exec this decision is about; null for container starts.
    #[serde(default)]
    pub exec: Option<ExecInfo>,
    /// Why `tpm` is null; absent when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unquoted_reason: Option<String>,
}

/// An in-toto subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub name: String,
    pub digest: std::collections::BTreeMap<String, String>,
}

/// The statement a record's payload holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: Predicate,
}

/// One DSSE signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    pub keyid: String,
    /// Base64.
    pub sig: String,
}

/// A record line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Base64 of the statement's bytes.
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

/// Extends a PCR with a start's event digest and quotes it (the hardware TPM, swtpm, a test double).
/// The caller ([`append`]) holds the log's lock, which also serialises TPM use between starts.
pub trait Quoter: Send {
    /// Extends the PCR with `event_digest`, appends the event to the TPM event log and quotes the PCR
    /// with `event_digest` as qualifying data.
    fn record(&mut self, event_digest: &[u8; 32]) -> Result<TpmEvidence, String>;
}

/// How long a start waits for the TPM (a hardware quote takes well under a second): tpm2-tss has no
/// timeout of its own, and a TPM that accepts a connection and never answers would hold the start.
pub const TPM_TIMEOUT: Duration = Duration::from_secs(10);

/// The node's TPM: [`crate::tpm::record_event`] at `tcti`, its files under `state_dir`.
#[derive(Debug, Clone)]
pub struct TpmQuoter {
    pub tcti: String,
    pub state_dir: PathBuf,
    pub pcr: u32,
    /// A TPM that has not answered by then is a failure of the TPM ([`TPM_TIMEOUT`]).
    pub timeout: Duration,
}

impl TpmQuoter {
    pub fn new(tcti: impl Into<String>, state_dir: impl Into<PathBuf>, pcr: u32) -> TpmQuoter {
        TpmQuoter {
            tcti: tcti.into(),
            state_dir: state_dir.into(),
            pcr,
            timeout: TPM_TIMEOUT,
        }
    }
}

impl Quoter for TpmQuoter {
    fn record(&mut self, event_digest: &[u8; 32]) -> Result<TpmEvidence, String> {
        // On a thread of its own, so that a TPM that never answers costs `timeout`, not the start:
        // the gate process answers and exits, which ends the stuck call with it.
        let (tcti, state_dir, pcr, digest) = (
            self.tcti.clone(),
            self.state_dir.clone(),
            self.pcr,
            *event_digest,
        );
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("tpm".into())
            .spawn(move || {
                let r = crate::tpm::record_event(&tcti, &state_dir, pcr, &digest)
                    .map_err(|e| e.to_string());
                let _ = tx.send(r);
            })
            .map_err(|e| format!("cannot start the TPM thread: {e}"))?;
        match rx.recv_timeout(self.timeout) {
            Ok(r) => r,
            Err(_) => Err(format!(
                "TPM at {} did not answer within {} s",
                self.tcti,
                self.timeout.as_secs_f32()
            )),
        }
    }
}

/// How a start uses the TPM (`[tpm] mode`).
pub enum TpmUse {
    /// No TPM: records carry `tpm: null`, `unquoted_reason: TPM off ...`.
    Off,
    /// Quote when possible; a failure leaves the record unquoted and says why.
    Optional(Box<dyn Quoter>),
    /// A failure to quote turns the decision into a denial (fail closed).
    Required(Box<dyn Quoter>),
}

impl std::fmt::Debug for TpmUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TpmUse::Off => "Off",
            TpmUse::Optional(_) => "Optional",
            TpmUse::Required(_) => "Required",
        })
    }
}

/// `unquoted_reason` of records written with [`TpmUse::Off`].
pub const TPM_OFF_REASON: &str = "TPM off ([tpm] mode = \"off\")";

/// Where and how records are written (`[attestation]` and `[tpm]` of the node config).
#[derive(Debug)]
pub struct LogSettings {
    pub log: PathBuf,
    /// The node key: PEM PKCS#8 (P-256, P-384, Ed25519) or cosign's encrypted format.
    pub key: Option<PathBuf>,
    /// The encrypted key's password (one trailing newline is ignored).
    pub key_password_file: Option<PathBuf>,
    /// Records are POSTed here after they are written.
    pub collector: Option<String>,
    /// The most a start spends on the collector, retries and backlog included.
    pub collector_budget: Duration,
    pub tpm: TpmUse,
}

impl LogSettings {
    /// No key, no collector, TPM off.
    pub fn new(log: impl Into<PathBuf>) -> LogSettings {
        LogSettings {
            log: log.into(),
            key: None,
            key_password_file: None,
            collector: None,
            collector_budget: DEFAULT_COLLECTOR_BUDGET,
            tpm: TpmUse::Off,
        }
    }
}

/// What [`append`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    /// The decision recorded: a denial when the TPM was required and failed.
    pub decision: DecisionKind,
    /// Why the TPM did not quote, when it was asked to and failed.
    pub tpm_failure: Option<String>,
    /// Hex SHA-256 of the record's payload: the next record's `prev`.
    pub payload_digest: String,
    /// Why the collector did not acknowledge everything (the record is in the log regardless).
    pub collector_error: Option<String>,
}

/// Why a record could not be written. Each renders as one line.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("no attestation key configured ([attestation] key): records cannot be signed")]
    NoKey,
    #[error("attestation key {}: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
    #[error("{}: {reason}", path.display())]
    Io { path: PathBuf, reason: String },
    #[error("attestation log {}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot sign the record: {0}")]
    Sign(String),
}

pub(crate) fn io_error(path: &Path, e: impl std::fmt::Display) -> LogError {
    LogError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Text from a log line (or an error quoting it) as a message shows it: control characters
/// escaped, so that the message stays one line, and at most 200 characters.
pub(crate) fn shown(s: &str) -> String {
    const MAX: usize = 200;
    let mut out: String = s.chars().take(MAX).flat_map(char::escape_debug).collect();
    if s.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Predicate {
    /// The event digest of this record's fields (absent values are empty strings).
    pub fn event_digest(&self) -> [u8; 32] {
        crate::tpm::event_digest(
            &self.container_id,
            self.image.as_ref().map(|i| i.digest.as_str()).unwrap_or(""),
            self.rootfs_digest.as_deref().unwrap_or(""),
            self.policy_digest.as_deref().unwrap_or(""),
            self.decision.as_str(),
            &self.prev,
        )
    }
}

/// The statement's subject: the image, else the container (see the module docs).
pub(crate) fn subject_of(
    container_id: &str,
    image: Option<&ImageIdentity>,
    fallback: Option<&str>,
) -> Subject {
    let (name, hex) = match image {
        Some(i) => (
            i.repository.clone(),
            i.digest
                .strip_prefix("sha256:")
                .unwrap_or(&i.digest)
                .to_string(),
        ),
        None => (
            format!("container/{container_id}"),
            fallback
                .map(str::to_string)
                .unwrap_or_else(|| sha256_hex(container_id.as_bytes())),
        ),
    };
    Subject {
        name,
        digest: [("sha256".to_string(), hex)].into_iter().collect(),
    }
}

//! Writing a record: one lock across reading the last record, the TPM, signing and the append.

use std::ffi::OsString;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::Deserialize;

use super::{
    collector, io_error, sha256_hex, subject_of, Appended, Decision, DecisionKind, Envelope,
    EnvelopeSignature, LogError, LogSettings, NodeKey, Predicate, Statement, TpmUse, GENESIS_PREV,
    MAX_LINE_LEN, PAYLOAD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE, TPM_OFF_REASON,
};

/// The first look at the end of the log; records are a few KiB, so one read almost always suffices.
const FIRST_TAIL_WINDOW: u64 = 64 * 1024;
/// The furthest back a last record is looked for: past one maximal torn line and one maximal record.
const MAX_TAIL_WINDOW: u64 = 2 * MAX_LINE_LEN as u64 + 2;

/// `<log><suffix>`, e.g. `attestations.jsonl.lock`.
pub(crate) fn sibling(log: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = log.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Creates the log's directory (0700) and takes the exclusive lock on `<log><suffix>`.
pub(crate) fn lock(log: &Path, suffix: &str) -> Result<Flock<File>, LogError> {
    if let Some(parent) = log.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| io_error(parent, format!("cannot create the directory: {e}")))?;
    }
    let path = sibling(log, suffix);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| io_error(&path, e))?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusive) {
            Ok(locked) => return Ok(locked),
            Err((f, Errno::EINTR)) => file = f,
            Err((_, e)) => return Err(io_error(&path, format!("cannot lock: {e}"))),
        }
    }
}

/// What the end of the log says about the next record.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Tail {
    /// `seq` and payload digest of the last readable record.
    pub last: Option<(u64, String)>,
    /// The file does not end with a newline: the last write was torn.
    pub torn: bool,
}

#[derive(Deserialize)]
struct SeqOnly {
    predicate: SeqField,
}
#[derive(Deserialize)]
struct SeqField {
    seq: u64,
}

/// The payload bytes and `seq` of a record line, without checking its signature.
pub(crate) fn decode_seq(line: &[u8]) -> Option<(u64, Vec<u8>)> {
    let env: Envelope = serde_json::from_slice(line).ok()?;
    let payload = STANDARD.decode(env.payload.as_bytes()).ok()?;
    let s: SeqOnly = serde_json::from_slice(&payload).ok()?;
    Some((s.predicate.seq, payload))
}

/// Finds the last readable record by reading back from the end, never the whole log. A torn last
/// line (no newline) and unreadable lines are skipped: the chain continues from the last record
/// that decodes, and `verify` reports the skipped lines at their positions.
pub(crate) fn read_tail(file: &mut File, path: &Path) -> Result<Tail, LogError> {
    let len = file.metadata().map_err(|e| io_error(path, e))?.len();
    if len == 0 {
        return Ok(Tail {
            last: None,
            torn: false,
        });
    }
    let mut window = FIRST_TAIL_WINDOW.min(len);
    loop {
        let start = len - window;
        let mut buf = vec![0u8; window as usize];
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(&mut buf))
            .map_err(|e| io_error(path, e))?;
        let torn = buf.last() != Some(&b'\n');
        let mut lines: Vec<&[u8]> = buf.split(|b| *b == b'\n').collect();
        // After the last newline: empty, or the torn fragment. A write torn just before its
        // newline left a whole record: the chain goes on from it (verify will find it complete
        // once this append's leading newline ends it).
        if let Some(fragment) = lines.pop().filter(|f| !f.is_empty()) {
            if let Some((seq, payload)) = decode_seq(fragment) {
                return Ok(Tail {
                    last: Some((seq, sha256_hex(&payload))),
                    torn,
                });
            }
        }
        // Before the first newline: part of a line, unless the window starts the file.
        let complete_from = if start == 0 { 0 } else { 1 };
        for line in lines.iter().skip(complete_from).rev() {
            if let Some((seq, payload)) = decode_seq(line) {
                return Ok(Tail {
                    last: Some((seq, sha256_hex(&payload))),
                    torn,
                });
            }
        }
        if start == 0 {
            // Nothing readable at all (e.g. a first write torn by a crash): the chain starts here.
            return Ok(Tail { last: None, torn });
        }
        if window >= MAX_TAIL_WINDOW.min(len) {
            return Err(LogError::Corrupt {
                path: path.to_path_buf(),
                reason: format!(
                    "no readable record in its last {window} bytes; move it aside to start a new log"
                ),
            });
        }
        window = MAX_TAIL_WINDOW.min(len);
    }
}

fn now_rfc3339_millis() -> String {
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&format)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

/// Writes the record of one start decision and returns what was written.
///
/// The node key is loaded first (no key, or one that does not load, is an error and nothing is
/// written: the caller decides what that means in its mode). Then, under an exclusive `flock` on
/// `<log>.lock`: the last record is read back from the end of the log, `seq` and `prev` follow from
/// it, the TPM (unless off) extends and quotes the event digest, the statement is signed, and the
/// envelope is appended as one line with a single write and `fdatasync`. After the lock is released
/// the record (and any backlog) goes to the collector, within `collector_budget`.
///
/// TPM failures: with [`TpmUse::Required`] the decision becomes a denial and the reason
/// `TPM required: <error>` is added; the record is unquoted (`tpm: null`, `unquoted_reason`).
/// If the TPM failed after extending the PCR, the event log holds an event no record names;
/// replaying the event log still reproduces the PCR, since replay covers every event. With
/// [`TpmUse::Optional`] the decision stands and the record is unquoted.
///
/// A torn last line (a crash mid-write) is skipped: this record starts on a fresh line and chains
/// to the last readable record; `verify` reports the torn line at its position.
pub fn append(settings: &mut LogSettings, decision: &Decision) -> Result<Appended, LogError> {
    let key_path = settings.key.as_deref().ok_or(LogError::NoKey)?;
    let key = NodeKey::load(key_path, settings.key_password_file.as_deref())?;
    let log = settings.log.clone();

    let written = {
        let _lock = lock(&log, ".lock")?;
        write_locked(settings, &key, decision, &log)?
    };

    let collector_error = match settings.collector.as_deref() {
        Some(url) => collector::send(&log, url, settings.collector_budget).err(),
        None => None,
    };
    Ok(Appended {
        collector_error,
        ..written
    })
}

fn write_locked(
    settings: &mut LogSettings,
    key: &NodeKey,
    decision: &Decision,
    log: &Path,
) -> Result<Appended, LogError> {
    let existed = log.exists();
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(log)
        .map_err(|e| io_error(log, e))?;
    if !existed {
        sync_parent(log);
    }
    let tail = read_tail(&mut file, log)?;
    let (seq, prev) = match tail.last {
        Some((seq, digest)) => (seq + 1, digest),
        None => (0, GENESIS_PREV.to_string()),
    };

    let mut predicate = Predicate {
        seq,
        prev,
        time: now_rfc3339_millis(),
        container_id: decision.container_id.clone(),
        image: decision.image.clone(),
        decision: decision.decision,
        reasons: decision.reasons.clone(),
        policy_digest: decision.policy_digest.clone(),
        rootfs_digest: decision.rootfs_digest.clone(),
        layers: decision.layers.clone(),
        host: decision.host.clone(),
        signatures: decision.signatures.clone(),
        sbom_digest: decision.sbom_digest.clone(),
        tpm: None,
        exec: decision.exec.clone(),
        unquoted_reason: None,
    };

    let digest = predicate.event_digest();
    let quoted = |q: &mut Box<dyn super::Quoter>| {
        q.record(&digest).and_then(|ev| {
            if ev.event_digest.eq_ignore_ascii_case(&hex::encode(digest)) {
                Ok(ev)
            } else {
                Err(format!(
                    "the TPM quoted event digest {} instead of {}",
                    ev.event_digest,
                    hex::encode(digest)
                ))
            }
        })
    };
    let mut tpm_failure = None;
    match &mut settings.tpm {
        TpmUse::Off => predicate.unquoted_reason = Some(TPM_OFF_REASON.to_string()),
        TpmUse::Optional(q) => match quoted(q) {
            Ok(ev) => predicate.tpm = Some(ev),
            Err(e) => {
                predicate.unquoted_reason = Some(format!("TPM failed: {e}"));
                tpm_failure = Some(e);
            }
        },
        TpmUse::Required(q) => match quoted(q) {
            Ok(ev) => predicate.tpm = Some(ev),
            Err(e) => {
                let reason = format!("TPM required: {e}");
                predicate.decision = DecisionKind::Deny;
                predicate.reasons.push(reason.clone());
                predicate.unquoted_reason = Some(reason);
                tpm_failure = Some(e);
            }
        },
    }

    let statement = Statement {
        statement_type: STATEMENT_TYPE.to_string(),
        subject: vec![subject_of(
            &decision.container_id,
            decision.image.as_ref(),
            decision.subject_fallback_digest.as_deref(),
        )],
        predicate_type: PREDICATE_TYPE.to_string(),
        predicate,
    };
    let payload = serde_json::to_vec(&statement)
        .map_err(|e| LogError::Sign(format!("cannot encode the statement: {e}")))?;
    let sig = key.sign(&crate::dsse::pae(PAYLOAD_TYPE, &payload))?;
    let envelope = Envelope {
        payload_type: PAYLOAD_TYPE.to_string(),
        payload: STANDARD.encode(&payload),
        signatures: vec![EnvelopeSignature {
            keyid: key.keyid(),
            sig: STANDARD.encode(sig),
        }],
    };
    let line = serde_json::to_vec(&envelope)
        .map_err(|e| LogError::Sign(format!("cannot encode the envelope: {e}")))?;
    if line.len() > MAX_LINE_LEN {
        return Err(LogError::Sign(format!(
            "the record would be {} bytes, more than the {MAX_LINE_LEN} a log line may hold",
            line.len()
        )));
    }
    let mut bytes = Vec::with_capacity(line.len() + 2);
    if tail.torn {
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(&line);
    bytes.push(b'\n');
    file.write_all(&bytes)
        .and_then(|_| file.sync_data())
        .map_err(|e| io_error(log, format!("cannot append the record: {e}")))?;

    Ok(Appended {
        seq,
        decision: statement.predicate.decision,
        tpm_failure,
        payload_digest: sha256_hex(&payload),
        collector_error: None,
    })
}

/// Makes a new log's directory entry durable; best effort (some filesystems refuse fsync on a directory).
fn sync_parent(log: &Path) {
    if let Some(parent) = log.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(dir) = File::open(parent) {
            let _ = dir.sync_all();
        }
    }
}

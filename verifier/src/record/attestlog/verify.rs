//! Checking a log offline: DSSE signatures, the hash chain, the quotes and the PCR replay.

use std::fs::File;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::lines::{Line, Lines};
use super::{
    io_error, sha256_hex, shown, subject_of, Envelope, LogError, Statement, GENESIS_PREV,
    MAX_LINE_LEN, PAYLOAD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE,
};
use crate::keys::PublicKey;
use crate::tpm::TpmEvidence;

/// What a verified quote attests, as far as a record is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteFacts {
    /// The qualifying data (`extraData`).
    pub extra_data: Vec<u8>,
    /// The digest of the quoted PCR values.
    pub pcr_digest: Vec<u8>,
    pub reset_count: u64,
    pub restart_count: u64,
}

/// A TPM event log, read once per verification.
pub trait EventLog {
    /// The PCR and hex digest of the event at `index`.
    fn event(&self, index: u64) -> Option<(u32, String)>;
    /// The value of `pcr` after replaying, within one boot (`reset_count`, `restart_count`), every
    /// event up to and including `upto_index`.
    fn replay(
        &self,
        pcr: u32,
        reset_count: u64,
        restart_count: u64,
        upto_index: u64,
    ) -> Result<[u8; 32], String>;
}

/// Quote verification and event-log replay (in `tpm`), behind a seam so that logs can be checked
/// in tests without a TPM.
pub trait QuoteVerifier {
    /// Verifies the quote's signature with `ak_pem` (else the evidence's own AK) and returns what it
    /// attests.
    fn verify_quote(
        &self,
        evidence: &TpmEvidence,
        ak_pem: Option<&str>,
    ) -> Result<QuoteFacts, String>;
    fn read_event_log(&self, path: &Path) -> Result<Box<dyn EventLog>, String>;
}

/// The TPM module's quote verification and event-log replay.
#[derive(Debug, Default, Clone, Copy)]
pub struct TpmModule;

/// An event log read from disk.
struct Events(Vec<crate::tpm::Event>);

impl EventLog for Events {
    fn event(&self, index: u64) -> Option<(u32, String)> {
        self.0
            .iter()
            .find(|e| e.index == index)
            .map(|e| (e.pcr, e.digest.clone()))
    }

    fn replay(
        &self,
        pcr: u32,
        reset_count: u64,
        restart_count: u64,
        upto_index: u64,
    ) -> Result<[u8; 32], String> {
        let count = |n: u64| u32::try_from(n).map_err(|_| format!("count {n} out of range"));
        crate::tpm::replay(
            &self.0,
            pcr,
            count(reset_count)?,
            count(restart_count)?,
            upto_index,
        )
        .map_err(|e| e.to_string())
    }
}

impl QuoteVerifier for TpmModule {
    fn verify_quote(
        &self,
        evidence: &TpmEvidence,
        ak_pem: Option<&str>,
    ) -> Result<QuoteFacts, String> {
        let info = crate::tpm::verify_quote(evidence, ak_pem).map_err(|e| e.to_string())?;
        Ok(QuoteFacts {
            extra_data: info.extra_data,
            pcr_digest: info.pcr_digest.to_vec(),
            reset_count: u64::from(info.reset_count),
            restart_count: u64::from(info.restart_count),
        })
    }

    fn read_event_log(&self, path: &Path) -> Result<Box<dyn EventLog>, String> {
        crate::tpm::read_event_log(path)
            .map(|events| Box::new(Events(events)) as Box<dyn EventLog>)
            .map_err(|e| e.to_string())
    }
}

/// One thing wrong with a log, at a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based line number.
    pub position: u64,
    /// The record's `seq`, when the line decoded that far.
    pub seq: Option<u64>,
    /// One line, naming the record.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The result of [`verify_log`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Lines read (records or not).
    pub records: usize,
    /// Quotes whose signature, qualifying data and PCR digest verified.
    pub quotes_verified: usize,
    /// Quotes whose PCR value the event log replayed to.
    pub pcr_replayed: usize,
    /// Whether an event log was given.
    pub event_log: bool,
    /// Whether quotes were checked against a given AK (else each record's own `ak_pem`).
    pub ak_pinned: bool,
    pub problems: Vec<Problem>,
}

impl Report {
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }

    /// `OK: N records, chain intact, M quotes verified, PCR replayed`, or how many problems.
    pub fn summary(&self) -> String {
        if !self.is_valid() {
            return format!(
                "INVALID: {} problem{} in {} records",
                self.problems.len(),
                if self.problems.len() == 1 { "" } else { "s" },
                self.records
            );
        }
        let quotes = if self.ak_pinned || self.quotes_verified == 0 {
            format!("{} quotes verified", self.quotes_verified)
        } else {
            format!(
                "{} quotes verified (with the records' own AKs: pass --ak to pin the TPM)",
                self.quotes_verified
            )
        };
        let pcr = match (self.event_log, self.pcr_replayed) {
            (false, _) => "PCR not replayed (no --event-log)",
            (true, 0) => "PCR replayed (no quoted record)",
            (true, _) => "PCR replayed",
        };
        format!(
            "OK: {} records, chain intact, {quotes}, {pcr}",
            self.records
        )
    }
}

/// [`verify_log_with`] with the TPM module's quote verification.
// Connected to `tpm::verify_quote` and `tpm::read_event_log`/`tpm::replay` when they land.
pub fn verify_log(
    path: &Path,
    node_keys: &[PublicKey],
    ak_pem: Option<&str>,
    event_log: Option<&Path>,
) -> Result<Report, LogError> {
    verify_log_with(path, node_keys, ak_pem, event_log, &TpmModule)
}

/// Checks every line of the log at `path`, streaming it: each is a DSSE envelope signed by one of
/// `node_keys` (chosen by `keyid`), holding a vouch start statement; `seq` counts from 0 and each
/// `prev` is the SHA-256 of the previous record's payload; each quote verifies with `ak_pem` (else
/// the record's AK) over the record's event digest; with `event_log`, the PCR value replays.
/// Problems name the line; an unreadable file (or event log) is an error.
pub fn verify_log_with(
    path: &Path,
    node_keys: &[PublicKey],
    ak_pem: Option<&str>,
    event_log: Option<&Path>,
    tpm: &dyn QuoteVerifier,
) -> Result<Report, LogError> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let events = match event_log {
        Some(p) => Some(tpm.read_event_log(p).map_err(|e| io_error(p, e))?),
        None => None,
    };
    let pinned_ak = match ak_pem {
        Some(pem) => Some(PublicKey::from_pem(pem).map_err(|e| LogError::Key {
            path: "--ak".into(),
            reason: e.to_string(),
        })?),
        None => None,
    };
    let mut v = Verifier {
        keys: node_keys,
        ak_pem,
        pinned_ak,
        first_ak: None,
        events: events.as_deref(),
        tpm,
        last: None,
        report: Report {
            event_log: event_log.is_some(),
            ak_pinned: ak_pem.is_some(),
            ..Report::default()
        },
    };
    for (i, line) in Lines::new(file, MAX_LINE_LEN, 0).enumerate() {
        let position = i as u64 + 1;
        v.report.records += 1;
        match line.map_err(|e| io_error(path, e))? {
            Line::TooLong(n) => v.problem(
                position,
                None,
                format!("line is {n} bytes, more than the {MAX_LINE_LEN} a record may be"),
            ),
            Line::Torn(_) => v.problem(
                position,
                None,
                "torn: the log ends without a newline (a write was interrupted)".into(),
            ),
            Line::Complete(bytes) => v.record(position, &bytes),
        }
    }
    Ok(v.report)
}

struct Last {
    position: u64,
    seq: u64,
    payload_digest: String,
}

struct Verifier<'a> {
    keys: &'a [PublicKey],
    ak_pem: Option<&'a str>,
    pinned_ak: Option<PublicKey>,
    /// Without --ak: the AK of the first quoted record, which every later one must share (a log
    /// whose quotes come from several keys is not one TPM's).
    first_ak: Option<(u64, PublicKey)>,
    events: Option<&'a dyn EventLog>,
    tpm: &'a dyn QuoteVerifier,
    last: Option<Last>,
    report: Report,
}

/// Signatures checked on one record.
const MAX_RECORD_SIGNATURES: usize = 8;

fn label(position: u64, seq: Option<u64>) -> String {
    match seq {
        Some(s) => format!("record {position} (seq {s})"),
        None => format!("record {position}"),
    }
}

impl Verifier<'_> {
    fn problem(&mut self, position: u64, seq: Option<u64>, what: String) {
        self.report.problems.push(Problem {
            position,
            seq,
            message: format!("{}: {what}", label(position, seq)),
        });
    }

    fn record(&mut self, position: u64, line: &[u8]) {
        if line.is_empty() {
            return self.problem(position, None, "empty line".into());
        }
        let env: Envelope = match serde_json::from_slice(line) {
            Ok(e) => e,
            Err(e) => {
                return self.problem(
                    position,
                    None,
                    format!(
                        "not a DSSE envelope (a torn or edited line?): {}",
                        shown(&e.to_string())
                    ),
                )
            }
        };
        let payload = match STANDARD.decode(env.payload.as_bytes()) {
            Ok(p) => p,
            Err(e) => return self.problem(position, None, format!("payload is not base64: {e}")),
        };
        let statement: Result<Statement, _> = serde_json::from_slice(&payload);
        let seq = statement.as_ref().ok().map(|s| s.predicate.seq);

        if env.payload_type != PAYLOAD_TYPE {
            self.problem(
                position,
                seq,
                format!("payloadType {:?} is not {PAYLOAD_TYPE}", env.payload_type),
            );
        }
        self.signatures(position, seq, &env, &payload);

        let statement = match statement {
            Ok(s) => s,
            Err(e) => {
                return self.problem(
                    position,
                    None,
                    format!(
                        "payload is not a vouch start statement: {}",
                        shown(&e.to_string())
                    ),
                )
            }
        };
        let p = &statement.predicate;
        if statement.statement_type != STATEMENT_TYPE {
            self.problem(
                position,
                seq,
                format!(
                    "_type {:?} is not {STATEMENT_TYPE}",
                    statement.statement_type
                ),
            );
        }
        if statement.predicate_type != PREDICATE_TYPE {
            self.problem(
                position,
                seq,
                format!(
                    "predicateType {:?} is not {PREDICATE_TYPE}",
                    statement.predicate_type
                ),
            );
        }
        let subject_ok = match (&p.image, statement.subject.as_slice()) {
            (Some(image), [only]) => *only == subject_of(&p.container_id, Some(image), None),
            // The digest is of the container's config.json, which the log does not hold.
            (None, [only]) => only.name == format!("container/{}", p.container_id),
            _ => false,
        };
        if !subject_ok {
            self.problem(
                position,
                seq,
                "the subject is not the predicate's image (or container)".into(),
            );
        }

        let digest = sha256_hex(&payload);
        self.chain(position, p.seq, &p.prev);
        self.last = Some(Last {
            position,
            seq: p.seq,
            payload_digest: digest,
        });
        self.quote(position, &statement);
    }

    fn signatures(&mut self, position: u64, seq: Option<u64>, env: &Envelope, payload: &[u8]) {
        if env.signatures.is_empty() {
            return self.problem(position, seq, "no signature".into());
        }
        // vouch signs each record once; checking thousands of copies would only cost time.
        if env.signatures.len() > MAX_RECORD_SIGNATURES {
            return self.problem(
                position,
                seq,
                format!(
                    "{} signatures, more than the {MAX_RECORD_SIGNATURES} a record may have",
                    env.signatures.len()
                ),
            );
        }
        let message = crate::dsse::pae(&env.payload_type, payload);
        for s in &env.signatures {
            let Some(key) = self
                .keys
                .iter()
                .find(|k| k.fingerprint().eq_ignore_ascii_case(&s.keyid))
            else {
                self.problem(
                    position,
                    seq,
                    format!(
                        "signed by unknown key {} (pass it with --node-key)",
                        shown(&s.keyid)
                    ),
                );
                continue;
            };
            let ok = STANDARD
                .decode(s.sig.as_bytes())
                .ok()
                .is_some_and(|sig| key.verify(&message, &sig).is_ok());
            if !ok {
                self.problem(
                    position,
                    seq,
                    format!("signature does not verify with key {}", s.keyid),
                );
            }
        }
    }

    fn chain(&mut self, position: u64, seq: u64, prev: &str) {
        let s = Some(seq);
        match &self.last {
            None => {
                if seq != 0 || prev != GENESIS_PREV {
                    self.problem(
                        position,
                        s,
                        "the log does not start at seq 0 with a zero prev (records before it were deleted)".into(),
                    );
                }
            }
            Some(last) => {
                let mut wrong = Vec::new();
                if !prev.eq_ignore_ascii_case(&last.payload_digest) {
                    wrong.push(format!("prev does not match record {}", last.position));
                }
                if Some(seq) != last.seq.checked_add(1) {
                    wrong.push(format!(
                        "seq {} expected after record {}",
                        last.seq.saturating_add(1),
                        last.position
                    ));
                }
                if !wrong.is_empty() {
                    let what = format!(
                        "{} (a record was deleted, reordered or edited)",
                        wrong.join("; ")
                    );
                    self.problem(position, s, what);
                }
            }
        }
    }

    fn quote(&mut self, position: u64, statement: &Statement) {
        let p = &statement.predicate;
        let s = Some(p.seq);
        let Some(ev) = &p.tpm else {
            if p.unquoted_reason.is_none() {
                self.problem(position, s, "tpm is null without an unquoted_reason".into());
            }
            return;
        };
        let digest = hex::encode(p.event_digest());
        if !ev.event_digest.eq_ignore_ascii_case(&digest) {
            self.problem(
                position,
                s,
                format!(
                    "tpm.event_digest {} is not the digest of the record's fields ({digest})",
                    ev.event_digest
                ),
            );
        }
        if let Some(pinned) = &self.pinned_ak {
            let same = PublicKey::from_pem(&ev.ak_pem).is_ok_and(|k| &k == pinned);
            if !same {
                self.problem(position, s, "the record's tpm.ak_pem is not --ak".into());
            }
        } else if let Ok(key) = PublicKey::from_pem(&ev.ak_pem) {
            match &self.first_ak {
                None => self.first_ak = Some((position, key)),
                Some((first, k)) if *k != key => {
                    let first = *first;
                    self.problem(
                        position,
                        s,
                        format!(
                            "quoted by another attestation key than record {first}: pass --ak to say which TPM is the node's"
                        ),
                    );
                }
                Some(_) => {}
            }
        }
        let facts = match self
            .tpm
            .verify_quote(ev, Some(self.ak_pem.unwrap_or(&ev.ak_pem)))
        {
            Ok(f) => f,
            Err(e) => return self.problem(position, s, format!("quote does not verify: {e}")),
        };
        let mut quote_ok = true;
        if hex::encode(&facts.extra_data) != digest {
            quote_ok = false;
            self.problem(
                position,
                s,
                "the quote's qualifying data is not the record's event digest".into(),
            );
        }
        let pcr_value = hex::decode(&ev.pcr_value).ok().filter(|v| v.len() == 32);
        let pcr_digest_ok = pcr_value
            .as_deref()
            .is_some_and(|v| facts.pcr_digest[..] == Sha256::digest(v)[..]);
        if !pcr_digest_ok {
            quote_ok = false;
            self.problem(
                position,
                s,
                "the quote's PCR digest is not that of tpm.pcr_value".into(),
            );
        }
        if quote_ok {
            self.report.quotes_verified += 1;
        }
        let Some(events) = self.events else {
            return;
        };
        match events.event(ev.event_index) {
            None => {
                return self.problem(
                    position,
                    s,
                    format!("event {} is not in the event log", ev.event_index),
                )
            }
            Some((pcr, d)) if pcr != ev.pcr || !d.eq_ignore_ascii_case(&ev.event_digest) => {
                return self.problem(
                    position,
                    s,
                    format!(
                        "the event log's event {} (PCR {pcr}, {d}) is not this record's (PCR {}, {})",
                        ev.event_index, ev.pcr, ev.event_digest
                    ),
                )
            }
            Some(_) => {}
        }
        match events.replay(ev.pcr, facts.reset_count, facts.restart_count, ev.event_index) {
            Ok(v) if pcr_value.as_deref() == Some(&v[..]) => self.report.pcr_replayed += 1,
            Ok(v) => self.problem(
                position,
                s,
                format!(
                    "replaying the event log up to event {} gives PCR {} = {}, not tpm.pcr_value {}",
                    ev.event_index,
                    ev.pcr,
                    hex::encode(v),
                    ev.pcr_value
                ),
            ),
            Err(e) => self.problem(position, s, format!("cannot replay the event log: {e}")),
        }
    }
}

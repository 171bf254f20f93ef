use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use spki::EncodePublicKey;

use super::*;
use crate::cosign_key::SigningKey;
use crate::keys::PublicKey;

fn plain_key(dir: &Path, name: &str) -> (PathBuf, PublicKey) {
    let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, pem.as_bytes()).unwrap();
    let der = key.verifying_key().to_public_key_der().unwrap();
    (path, PublicKey::from_spki_der(der.as_bytes()).unwrap())
}

fn settings(log: &Path, key: &Path) -> LogSettings {
    LogSettings {
        key: Some(key.to_path_buf()),
        ..LogSettings::new(log)
    }
}

fn image() -> ImageIdentity {
    ImageIdentity {
        name: "127.0.0.1:5000/team/app:v1".into(),
        repository: "127.0.0.1:5000/team/app".into(),
        digest: format!("sha256:{}", "ab".repeat(32)),
    }
}

fn allowed(container: &str) -> Decision {
    Decision {
        image: Some(image()),
        policy_digest: Some("11".repeat(32)),
        rootfs_digest: Some("22".repeat(32)),
        signatures: vec!["release".into()],
        layers: json!([{"digest": "sha256:00", "files": 3}]),
        host: json!({"kernel": "6.1"}),
        ..Decision::new(container, DecisionKind::Allow)
    }
}

fn lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(log: &Path, lines: &[String]) {
    std::fs::write(log, lines.join("\n") + "\n").unwrap();
}

fn statement_of(line: &str) -> Value {
    let env: Value = serde_json::from_str(line).unwrap();
    let payload = STANDARD.decode(env["payload"].as_str().unwrap()).unwrap();
    serde_json::from_slice(&payload).unwrap()
}

/// A log of `n` allowed starts, with its key.
fn log_of(n: usize) -> (tempfile::TempDir, PathBuf, PublicKey) {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = plain_key(dir.path(), "node.key");
    let log = dir.path().join("state/attestations.jsonl");
    let mut s = settings(&log, &key);
    for i in 0..n {
        append(&mut s, &allowed(&format!("c{i}"))).unwrap();
    }
    (dir, log, public)
}

#[test]
fn an_allowed_start_appends_one_record_whose_dsse_signature_verifies() {
    let (_dir, log, public) = log_of(1);
    let lines = lines(&log);
    assert_eq!(lines.len(), 1);
    let env: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(env["payloadType"], "application/vnd.in-toto+json");
    assert_eq!(env["signatures"][0]["keyid"], public.fingerprint());
    let payload = STANDARD.decode(env["payload"].as_str().unwrap()).unwrap();
    let sig = STANDARD
        .decode(env["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    public
        .verify(
            &crate::dsse::pae("application/vnd.in-toto+json", &payload),
            &sig,
        )
        .unwrap();

    let st: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        st["predicateType"],
        "https://vouch.dev/attestation/start/v1"
    );
    assert_eq!(
        st["subject"],
        json!([{"name": "127.0.0.1:5000/team/app", "digest": {"sha256": "ab".repeat(32)}}])
    );
    let p = st["predicate"].as_object().unwrap();
    for field in [
        "seq",
        "prev",
        "time",
        "container_id",
        "image",
        "decision",
        "reasons",
        "policy_digest",
        "rootfs_digest",
        "layers",
        "host",
        "signatures",
        "sbom_digest",
        "tpm",
        "unquoted_reason",
    ] {
        assert!(p.contains_key(field), "predicate lacks {field}");
    }
    assert_eq!(p["seq"], 0);
    assert_eq!(p["prev"], GENESIS_PREV);
    assert_eq!(p["decision"], "allow");
    assert_eq!(p["image"]["digest"], format!("sha256:{}", "ab".repeat(32)));
    assert_eq!(p["tpm"], Value::Null);
    assert_eq!(p["unquoted_reason"], TPM_OFF_REASON);
    let time = p["time"].as_str().unwrap();
    assert_eq!(time.len(), "2026-01-01T00:00:00.000Z".len(), "{time}");
    assert!(time.ends_with('Z') && time.as_bytes()[19] == b'.', "{time}");

    let report = verify_log(&log, &[public], None, None).unwrap();
    assert!(report.is_valid(), "{:?}", report.problems);
    assert_eq!(report.records, 1);
    assert!(report
        .summary()
        .starts_with("OK: 1 records, chain intact, 0 quotes verified"));
}

#[test]
fn five_appends_chain_each_record_to_the_previous_payload() {
    let (_dir, log, public) = log_of(5);
    let lines = lines(&log);
    assert_eq!(lines.len(), 5);
    for (i, pair) in lines.windows(2).enumerate() {
        let env: Envelope = serde_json::from_str(&pair[0]).unwrap();
        let payload = STANDARD.decode(env.payload).unwrap();
        let next = statement_of(&pair[1]);
        assert_eq!(next["predicate"]["seq"], i as u64 + 1);
        assert_eq!(next["predicate"]["prev"], sha256_hex(&payload));
    }
    let report = verify_log(&log, &[public], None, None).unwrap();
    assert!(report.is_valid(), "{:?}", report.problems);
    assert_eq!(report.records, 5);
}

#[test]
fn an_edited_record_fails_verification_at_its_position() {
    let (_dir, log, public) = log_of(5);
    let mut lines = lines(&log);
    let mut env: Value = serde_json::from_str(&lines[2]).unwrap();
    let mut st = statement_of(&lines[2]);
    st["predicate"]["decision"] = json!("deny");
    env["payload"] = json!(STANDARD.encode(serde_json::to_vec(&st).unwrap()));
    lines[2] = env.to_string();
    write_lines(&log, &lines);

    let report = verify_log(&log, std::slice::from_ref(&public), None, None).unwrap();
    assert!(!report.is_valid());
    let first = &report.problems[0];
    assert_eq!(first.position, 3);
    assert_eq!(first.seq, Some(2));
    assert_eq!(
        first.message,
        format!(
            "record 3 (seq 2): signature does not verify with key {}",
            public.fingerprint()
        )
    );
}

#[test]
fn a_deleted_record_is_reported_at_the_record_after_it() {
    let (_dir, log, public) = log_of(5);
    let mut lines = lines(&log);
    lines.remove(1);
    write_lines(&log, &lines);
    let report = verify_log(&log, &[public], None, None).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].position, 2);
    assert_eq!(
        report.problems[0].message,
        "record 2 (seq 2): prev does not match record 1; seq 1 expected after record 1 \
         (a record was deleted, reordered or edited)"
    );
}

#[test]
fn deleting_the_first_record_is_reported() {
    let (_dir, log, public) = log_of(3);
    let mut lines = lines(&log);
    lines.remove(0);
    write_lines(&log, &lines);
    let report = verify_log(&log, &[public], None, None).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].position, 1);
    assert!(report.problems[0]
        .message
        .contains("does not start at seq 0"));
}

#[test]
fn swapped_records_are_reported_at_their_positions() {
    let (_dir, log, public) = log_of(5);
    let mut lines = lines(&log);
    lines.swap(1, 2);
    write_lines(&log, &lines);
    let report = verify_log(&log, &[public], None, None).unwrap();
    let positions: Vec<u64> = report.problems.iter().map(|p| p.position).collect();
    assert_eq!(&positions[..2], &[2, 3], "{:?}", report.problems);
    assert!(report.problems[0]
        .message
        .starts_with("record 2 (seq 2): prev does not match record 1"));
}

#[test]
fn ten_parallel_appends_make_ten_records_in_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = plain_key(dir.path(), "node.key");
    let log = dir.path().join("attestations.jsonl");
    let threads: Vec<_> = (0..10)
        .map(|i| {
            let (log, key) = (log.clone(), key.clone());
            std::thread::spawn(move || {
                let mut s = settings(&log, &key);
                append(&mut s, &allowed(&format!("c{i}"))).unwrap().seq
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    seqs.sort();
    assert_eq!(seqs, (0..10).collect::<Vec<_>>());
    let lines = lines(&log);
    assert_eq!(lines.len(), 10);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(statement_of(line)["predicate"]["seq"], i as u64);
    }
    let report = verify_log(&log, &[public], None, None).unwrap();
    assert!(report.is_valid(), "{:?}", report.problems);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&log).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn denials_are_recorded_and_name_the_container_without_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = plain_key(dir.path(), "node.key");
    let log = dir.path().join("attestations.jsonl");
    let mut s = settings(&log, &key);
    let mut denied = Decision::new("ctr-1", DecisionKind::Deny);
    denied.reasons = vec!["vouch: denied container: no image (rule \"default\")".into()];
    denied.subject_fallback_digest = Some("cd".repeat(32));
    let a = append(&mut s, &denied).unwrap();
    assert_eq!((a.seq, a.decision), (0, DecisionKind::Deny));
    let mut bare = Decision::new("ctr-2", DecisionKind::Deny);
    bare.reasons = vec!["policy unreadable".into()];
    append(&mut s, &bare).unwrap();

    let lines = lines(&log);
    let st = statement_of(&lines[0]);
    assert_eq!(st["subject"][0]["name"], "container/ctr-1");
    assert_eq!(st["subject"][0]["digest"]["sha256"], "cd".repeat(32));
    assert_eq!(st["predicate"]["decision"], "deny");
    assert_eq!(st["predicate"]["image"], Value::Null);
    assert_eq!(st["predicate"]["reasons"][0], denied.reasons[0]);
    let st = statement_of(&lines[1]);
    assert_eq!(st["subject"][0]["digest"]["sha256"], sha256_hex(b"ctr-2"));
    let report = verify_log(&log, &[public], None, None).unwrap();
    assert!(report.is_valid(), "{:?}", report.problems);

    let shown = read_log(&log).unwrap();
    let text = table(&shown);
    assert!(text.starts_with("TIME"), "{text}");
    assert!(
        text.contains("deny") && text.contains("policy unreadable"),
        "{text}"
    );
}

#[test]
fn a_cosign_encrypted_node_key_signs_and_a_wrong_password_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate_p256().unwrap();
    let key_path = dir.path().join("node.key");
    std::fs::write(&key_path, key.to_encrypted_pem(b"s3cret").unwrap()).unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let log = dir.path().join("attestations.jsonl");
    let mut s = LogSettings {
        key_password_file: Some(pw.clone()),
        ..settings(&log, &key_path)
    };
    append(&mut s, &allowed("c")).unwrap();
    let public = PublicKey::from_pem(&key.public_key_pem().unwrap()).unwrap();
    let report = verify_log(&log, &[public], None, None).unwrap();
    assert!(report.is_valid(), "{:?}", report.problems);

    std::fs::write(&pw, "wrong\n").unwrap();
    let err = append(&mut s, &allowed("c")).unwrap_err().to_string();
    assert!(err.contains("wrong password"), "{err}");
    assert!(err.contains(&pw.display().to_string()), "{err}");
    assert_eq!(self::lines(&log).len(), 1);

    s.key_password_file = None;
    let err = append(&mut s, &allowed("c")).unwrap_err().to_string();
    assert!(err.contains("key_password_file"), "{err}");
}

#[test]
fn without_a_key_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("attestations.jsonl");
    let mut s = LogSettings::new(&log);
    let err = append(&mut s, &allowed("c")).unwrap_err();
    assert!(matches!(err, LogError::NoKey));
    assert!(!log.exists());
}

#[test]
fn rotated_keys_verify_together_and_an_unknown_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (key_a, public_a) = plain_key(dir.path(), "a.key");
    let (key_b, public_b) = plain_key(dir.path(), "b.key");
    let log = dir.path().join("attestations.jsonl");
    for (i, key) in [&key_a, &key_a, &key_b, &key_b].into_iter().enumerate() {
        append(&mut settings(&log, key), &allowed(&format!("c{i}"))).unwrap();
    }
    let report = verify_log(&log, &[public_a.clone(), public_b.clone()], None, None).unwrap();
    assert!(report.is_valid(), "{:?}", report.problems);

    let report = verify_log(&log, &[public_a], None, None).unwrap();
    assert_eq!(report.problems[0].position, 3);
    assert_eq!(
        report.problems[0].message,
        format!(
            "record 3 (seq 2): signed by unknown key {} (pass it with --node-key)",
            public_b.fingerprint()
        )
    );
    assert_eq!(report.problems.len(), 2);
}

#[test]
fn strings_from_a_record_are_quoted_on_one_line() {
    let (_dir, log, public) = log_of(2);
    let mut lines = lines(&log);
    let mut env: Value = serde_json::from_str(&lines[0]).unwrap();
    env["signatures"][0]["keyid"] = json!("line one\nline two");
    lines[0] = env.to_string();
    let mut env: Value = serde_json::from_str(&lines[1]).unwrap();
    let mut st = statement_of(&lines[1]);
    st["predicate"]["decision"] = json!("allow\nforged: yes");
    env["payload"] = json!(STANDARD.encode(serde_json::to_vec(&st).unwrap()));
    lines[1] = env.to_string();
    write_lines(&log, &lines);

    let report = verify_log(&log, std::slice::from_ref(&public), None, None).unwrap();
    assert_eq!(
        report.problems[0].message,
        "record 1 (seq 0): signed by unknown key line one\\nline two (pass it with --node-key)"
    );
    assert!(report
        .problems
        .iter()
        .any(|p| p.message.contains("unknown variant `allow\\nforged: yes`")));
    let shown = read_log(&log).unwrap();
    let e = shown[1].predicate.as_ref().unwrap_err();
    assert!(e.contains("unknown variant `allow\\nforged: yes`"), "{e}");
    for m in report.problems.iter().map(|p| &p.message).chain([e]) {
        assert!(!m.contains('\n'), "{m}");
    }
}

#[test]
fn a_record_with_more_signatures_than_any_record_has_is_refused_unchecked() {
    let (_dir, log, public) = log_of(1);
    let mut lines = lines(&log);
    let mut env: Value = serde_json::from_str(&lines[0]).unwrap();
    let signature = env["signatures"][0].clone();
    env["signatures"] = json!(vec![signature; 10_000]);
    lines[0] = env.to_string();
    write_lines(&log, &lines);

    let report = verify_log(&log, std::slice::from_ref(&public), None, None).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(
        report.problems[0].message,
        "record 1 (seq 0): 10000 signatures, more than the 8 a record may have"
    );
}

#[test]
fn a_torn_last_line_is_reported_and_the_next_record_chains_past_it() {
    let (dir, log, public) = log_of(2);
    let key = dir.path().join("node.key");
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(br#"{"payloadType":"application/vnd.in"#)
        .unwrap();
    drop(f);
    let report = verify_log(&log, std::slice::from_ref(&public), None, None).unwrap();
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].position, 3);
    assert!(report.problems[0].message.contains("torn"));

    let a = append(&mut settings(&log, &key), &allowed("c")).unwrap();
    assert_eq!(a.seq, 2);
    let lines = lines(&log);
    assert_eq!(lines.len(), 4);
    assert_eq!(statement_of(&lines[3])["predicate"]["seq"], 2);
    let report = verify_log(&log, &[public], None, None).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].position, 3);
    assert!(report.problems[0].message.contains("not a DSSE envelope"));
}

#[test]
fn an_oversized_line_is_reported_without_being_loaded_and_skipped_by_append() {
    let (dir, log, public) = log_of(1);
    let key = dir.path().join("node.key");
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let mut big = vec![b'x'; MAX_LINE_LEN + 10];
    big.push(b'\n');
    f.write_all(&big).unwrap();
    drop(f);
    let a = append(&mut settings(&log, &key), &allowed("c")).unwrap();
    assert_eq!(a.seq, 1);
    let report = verify_log(&log, &[public], None, None).unwrap();
    assert_eq!(report.records, 3);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].position, 2);
    assert!(report.problems[0].message.contains("more than"));
}

/// Events a fake TPM extended: (PCR, hex digest).
type Events = Arc<Mutex<Vec<(u32, String)>>>;
/// What a collector answered: (status, seq).
type Seen = Arc<Mutex<Vec<(u16, u64)>>>;

/// A TPM double: extends a software PCR and "quotes" it, recording events.
struct FakeTpm {
    fail: Option<String>,
    events: Events,
    ak_pem: String,
}

fn extend(pcr: [u8; 32], digest: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(pcr);
    h.update(digest);
    h.finalize().into()
}

impl Quoter for FakeTpm {
    fn record(&mut self, event_digest: &[u8; 32]) -> Result<crate::tpm::TpmEvidence, String> {
        if let Some(e) = &self.fail {
            return Err(e.clone());
        }
        let mut events = self.events.lock().unwrap();
        events.push((23, hex::encode(event_digest)));
        let pcr = events
            .iter()
            .fold([0u8; 32], |p, (_, d)| extend(p, &hex::decode(d).unwrap()));
        Ok(crate::tpm::TpmEvidence {
            pcr: 23,
            pcr_value: hex::encode(pcr),
            event_digest: hex::encode(event_digest),
            event_index: events.len() as u64 - 1,
            attest: STANDARD.encode(b"attest"),
            signature: STANDARD.encode(b"sig"),
            ak_pem: self.ak_pem.clone(),
        })
    }
}

/// Quote verification double: "verifies" by echoing the evidence, optionally lying about the
/// qualifying data.
struct FakeVerifier {
    events: Events,
    wrong_extra_data: bool,
}

struct FakeEvents(Vec<(u32, String)>);

impl EventLog for FakeEvents {
    fn event(&self, index: u64) -> Option<(u32, String)> {
        self.0.get(index as usize).cloned()
    }
    fn replay(&self, pcr: u32, _: u64, _: u64, upto: u64) -> Result<[u8; 32], String> {
        Ok(self
            .0
            .iter()
            .take(upto as usize + 1)
            .filter(|(p, _)| *p == pcr)
            .fold([0u8; 32], |v, (_, d)| extend(v, &hex::decode(d).unwrap())))
    }
}

impl QuoteVerifier for FakeVerifier {
    fn verify_quote(
        &self,
        ev: &crate::tpm::TpmEvidence,
        _: Option<&str>,
    ) -> Result<QuoteFacts, String> {
        let mut extra_data = hex::decode(&ev.event_digest).unwrap();
        if self.wrong_extra_data {
            extra_data[0] ^= 1;
        }
        Ok(QuoteFacts {
            extra_data,
            pcr_digest: Sha256::digest(hex::decode(&ev.pcr_value).unwrap()).to_vec(),
            reset_count: 0,
            restart_count: 0,
        })
    }
    fn read_event_log(&self, _: &Path) -> Result<Box<dyn EventLog>, String> {
        Ok(Box::new(FakeEvents(self.events.lock().unwrap().clone())))
    }
}

fn fake_tpm(fail: Option<&str>) -> (FakeTpm, Events) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let ak = SigningKey::generate_p256()
        .unwrap()
        .public_key_pem()
        .unwrap();
    (
        FakeTpm {
            fail: fail.map(str::to_string),
            events: events.clone(),
            ak_pem: ak,
        },
        events,
    )
}

#[test]
fn quoted_records_verify_their_quote_and_replay_the_event_log() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = plain_key(dir.path(), "node.key");
    let log = dir.path().join("attestations.jsonl");
    let (tpm, events) = fake_tpm(None);
    let mut s = LogSettings {
        tpm: TpmUse::Required(Box::new(tpm)),
        ..settings(&log, &key)
    };
    for i in 0..3 {
        let a = append(&mut s, &allowed(&format!("c{i}"))).unwrap();
        assert_eq!((a.decision, a.tpm_failure), (DecisionKind::Allow, None));
    }
    let st = statement_of(&lines(&log)[1]);
    let p: Predicate = serde_json::from_value(st["predicate"].clone()).unwrap();
    let ev = p.tpm.as_ref().unwrap();
    assert_eq!(ev.event_digest, hex::encode(p.event_digest()));
    assert_eq!(ev.event_index, 1);
    assert_eq!(st["predicate"].get("unquoted_reason"), None);

    let fake = FakeVerifier {
        events: events.clone(),
        wrong_extra_data: false,
    };
    let el = dir.path().join("events");
    let report =
        verify_log_with(&log, std::slice::from_ref(&public), None, Some(&el), &fake).unwrap();
    assert!(report.is_valid(), "{:?}", report.problems);
    assert_eq!((report.quotes_verified, report.pcr_replayed), (3, 3));
    assert!(
        report.summary().ends_with("PCR replayed"),
        "{}",
        report.summary()
    );

    // A record whose quote is over another event.
    let lying = FakeVerifier {
        events: events.clone(),
        wrong_extra_data: true,
    };
    let report = verify_log_with(&log, std::slice::from_ref(&public), None, None, &lying).unwrap();
    assert_eq!(report.problems.len(), 3);
    assert!(report.problems[0].message.contains("qualifying data"));

    // An event log missing the last event.
    events.lock().unwrap().pop();
    let report =
        verify_log_with(&log, std::slice::from_ref(&public), None, Some(&el), &fake).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].position, 3);

    // An AK other than the records'.
    let other = SigningKey::generate_p256()
        .unwrap()
        .public_key_pem()
        .unwrap();
    let report = verify_log_with(
        &log,
        std::slice::from_ref(&public),
        Some(&other),
        None,
        &fake,
    )
    .unwrap();
    assert_eq!(report.problems.len(), 3);
    assert!(report.problems[0].message.contains("--ak"));

    // Until the TPM module is connected, quotes never pass.
    let report = verify_log(&log, &[public], None, None).unwrap();
    assert_eq!(report.problems.len(), 3);
}

#[test]
fn a_required_tpm_that_fails_turns_the_start_into_a_recorded_denial() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = plain_key(dir.path(), "node.key");
    let log = dir.path().join("attestations.jsonl");
    let (tpm, _) = fake_tpm(Some("no TPM at /dev/tpmrm0"));
    let mut s = LogSettings {
        tpm: TpmUse::Required(Box::new(tpm)),
        ..settings(&log, &key)
    };
    let a = append(&mut s, &allowed("c")).unwrap();
    assert_eq!(a.decision, DecisionKind::Deny);
    assert_eq!(a.tpm_failure.as_deref(), Some("no TPM at /dev/tpmrm0"));
    let p = &statement_of(&lines(&log)[0])["predicate"];
    assert_eq!(p["decision"], "deny");
    assert_eq!(p["reasons"], json!(["TPM required: no TPM at /dev/tpmrm0"]));
    assert_eq!(p["tpm"], Value::Null);
    assert_eq!(p["unquoted_reason"], "TPM required: no TPM at /dev/tpmrm0");
    assert!(verify_log(&log, &[public], None, None).unwrap().is_valid());
}

#[test]
fn an_optional_tpm_that_fails_leaves_the_record_unquoted() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = plain_key(dir.path(), "node.key");
    let log = dir.path().join("attestations.jsonl");
    let (tpm, _) = fake_tpm(Some("quote failed"));
    let mut s = LogSettings {
        tpm: TpmUse::Optional(Box::new(tpm)),
        ..settings(&log, &key)
    };
    let a = append(&mut s, &allowed("c")).unwrap();
    assert_eq!(a.decision, DecisionKind::Allow);
    let p = &statement_of(&lines(&log)[0])["predicate"];
    assert_eq!(p["decision"], "allow");
    assert_eq!(p["reasons"], json!([]));
    assert_eq!(p["tpm"], Value::Null);
    assert_eq!(p["unquoted_reason"], "TPM failed: quote failed");
}

/// A collector that answers each request (one per connection) with the next status of `statuses`
/// (then 200), recording the seq of each body.
fn collector(statuses: Vec<u16>) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/records", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        let mut statuses = statuses.into_iter();
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let status = statuses.next().unwrap_or(200);
            let seq = serde_json::from_slice::<Value>(&body)
                .ok()
                .map(|env| {
                    statement_of(&env.to_string())["predicate"]["seq"]
                        .as_u64()
                        .unwrap()
                })
                .unwrap_or(u64::MAX);
            log.lock().unwrap().push((status, seq));
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, seen)
}

#[test]
fn the_collector_is_retried_and_gets_the_backlog_in_order() {
    let (dir, log, _) = log_of(0);
    let key = dir.path().join("node.key");
    // Nobody listens: the starts go on, the records wait.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}/records", closed.local_addr().unwrap());
    drop(closed);
    for i in 0..2 {
        let mut s = LogSettings {
            collector: Some(down.clone()),
            collector_budget: Duration::from_millis(500),
            ..settings(&log, &key)
        };
        let started = std::time::Instant::now();
        let a = append(&mut s, &allowed(&format!("c{i}"))).unwrap();
        assert!(a.collector_error.is_some());
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    let (url, seen) = collector(vec![500]);
    let mut s = LogSettings {
        collector: Some(url),
        collector_budget: Duration::from_secs(10),
        ..settings(&log, &key)
    };
    let a = append(&mut s, &allowed("c2")).unwrap();
    assert_eq!(a.collector_error, None);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(500, 0), (200, 0), (200, 1), (200, 2)]
    );
    append(&mut s, &allowed("c3")).unwrap();
    assert_eq!(seen.lock().unwrap().last(), Some(&(200, 3)));
    assert_eq!(seen.lock().unwrap().len(), 5);
}

#[test]
fn show_json_is_the_predicates_and_the_table_cuts_long_cells() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = plain_key(dir.path(), "node.key");
    let log = dir.path().join("attestations.jsonl");
    let mut d = allowed(&"f".repeat(64));
    d.decision = DecisionKind::Audit;
    d.reasons = vec!["r".repeat(150), "second".into()];
    append(&mut settings(&log, &key), &d).unwrap();
    let shown = read_log(&log).unwrap();
    let p = shown[0].predicate.as_ref().unwrap();
    assert_eq!(p.reasons[0].len(), 150);
    let text = table(&shown);
    let row = text.lines().nth(1).unwrap();
    assert!(row.contains(&format!("{}  ", "f".repeat(20))), "{row}");
    assert!(!row.contains(&"f".repeat(21)), "{row}");
    assert!(
        row.contains("127.0.0.1:5000/team/app@sha256:abababababab  audit"),
        "{row}"
    );
    assert!(row.ends_with('…'), "{row}");
    // A denial line's subject is not repeated in the reasons column.
    let mut denied = allowed("c2");
    denied.decision = DecisionKind::Deny;
    denied.reasons = vec![format!(
        "vouch: denied 127.0.0.1:5000/team/app@sha256:{}: rootfs: /etc/motd changed (rule \"m\")",
        "ab".repeat(32)
    )];
    append(&mut settings(&log, &key), &denied).unwrap();
    let text = table(&read_log(&log).unwrap());
    let row = text.lines().nth(2).unwrap();
    assert!(
        row.ends_with("deny      rootfs: /etc/motd changed (rule \"m\")"),
        "{row}"
    );
}

#[test]
fn plain_pkcs8_p384_and_ed25519_node_keys_sign_verifiably() {
    let p384 = p384::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let ed = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let keys = [
        (
            p384.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            p384.verifying_key().to_public_key_der().unwrap(),
        ),
        (
            ed.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            ed.verifying_key().to_public_key_der().unwrap(),
        ),
    ];
    for (pem, der) in keys {
        let key = NodeKey::from_pkcs8_pem(&pem).unwrap();
        let public = PublicKey::from_spki_der(der.as_bytes()).unwrap();
        assert_eq!(key.keyid(), public.fingerprint());
        let sig = key.sign(b"message").unwrap();
        public.verify(b"message", &sig).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let sec1 = dir.path().join("sec1.key");
    std::fs::write(
        &sec1,
        "-----BEGIN EC PRIVATE KEY-----\nAA==\n-----END EC PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = NodeKey::load(&sec1, None).unwrap_err().to_string();
    assert!(err.contains("openssl pkcs8 -topk8"), "{err}");
}

#[test]
fn a_write_torn_just_before_its_newline_still_continues_the_chain() {
    let (dir, log, public) = log_of(2);
    let key = dir.path().join("node.key");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.trim_end_matches('\n')).unwrap();
    let a = append(&mut settings(&log, &key), &allowed("c")).unwrap();
    assert_eq!(a.seq, 2);
    assert_eq!(lines(&log).len(), 3);
    let report = verify_log(&log, &[public], None, None).unwrap();
    assert!(report.is_valid(), "{:?}", report.problems);
}

#[test]
fn ten_parallel_starts_quoted_by_a_real_tpm_chain_and_replay_to_the_pcr() {
    let tpm = crate::tpm::testtpm::SwTpm::start();
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = plain_key(dir.path(), "node.key");
    let state = dir.path().join("state");
    let log = state.join("attestations.jsonl");
    let threads: Vec<_> = (0..10)
        .map(|i| {
            let (log, key, state, tcti) =
                (log.clone(), key.clone(), state.clone(), tpm.tcti.clone());
            std::thread::spawn(move || {
                let mut s = settings(&log, &key);
                s.tpm = TpmUse::Required(Box::new(TpmQuoter::new(tcti, state, 23)));
                let a = append(&mut s, &allowed(&format!("c{i}"))).unwrap();
                assert_eq!(a.tpm_failure, None);
                a.seq
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    seqs.sort();
    assert_eq!(seqs, (0..10).collect::<Vec<_>>());
    let events = crate::tpm::event_log_path(&state);
    let ak = std::fs::read_to_string(crate::tpm::ak_pem_path(&state)).unwrap();
    let report = verify_log(&log, &[public], Some(&ak), Some(&events)).unwrap();
    assert!(report.is_valid(), "{:?}", report.problems);
    assert_eq!(report.quotes_verified, 10);
    assert_eq!(report.pcr_replayed, 10);
    // The last record's PCR value is the TPM's PCR now.
    let last = lines(&log).pop().unwrap();
    let pcr_value = statement_of(&last)["predicate"]["tpm"]["pcr_value"]
        .as_str()
        .unwrap()
        .to_string();
    let events = crate::tpm::read_event_log(&events).unwrap();
    assert_eq!(events.len(), 10);
    let e = &events[9];
    let replayed = crate::tpm::replay(&events, 23, e.reset_count, e.restart_count, 9).unwrap();
    assert_eq!(hex::encode(replayed), pcr_value);
}

#[test]
fn quotes_from_two_tpms_in_one_log_are_reported_without_ak() {
    let (a, b) = (
        crate::tpm::testtpm::SwTpm::start(),
        crate::tpm::testtpm::SwTpm::start(),
    );
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = plain_key(dir.path(), "node.key");
    let log = dir.path().join("attestations.jsonl");
    for (i, tpm) in [&a, &b].into_iter().enumerate() {
        let mut s = settings(&log, &key);
        s.tpm = TpmUse::Required(Box::new(TpmQuoter::new(
            tpm.tcti.clone(),
            dir.path().join(format!("state-{i}")),
            23,
        )));
        append(&mut s, &allowed(&format!("c{i}"))).unwrap();
    }
    let report = verify_log(&log, &[public], None, None).unwrap();
    assert!(!report.is_valid());
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].position, 2);
    assert!(
        report.problems[0]
            .message
            .contains("another attestation key than record 1"),
        "{:?}",
        report.problems
    );
}

#[test]
fn a_tpm_that_accepts_and_never_answers_fails_the_quote_within_the_timeout() {
    // Two adjacent loopback ports (the swtpm TCTI's server and control) that accept and stay silent.
    let (server, control) = loop {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if let Ok(b) = TcpListener::bind(("127.0.0.1", port + 1)) {
            break (a, b);
        }
    };
    let port = server.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    for l in [server, control] {
        let held = Arc::clone(&held);
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                held.lock().unwrap().push(c);
            }
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let mut q = TpmQuoter::new(format!("swtpm:host=127.0.0.1,port={port}"), dir.path(), 23);
    q.timeout = Duration::from_millis(500);
    let e = q.record(&[7; 32]).unwrap_err();
    assert!(e.contains("did not answer within 0.5 s"), "{e}");
}

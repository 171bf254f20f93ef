//! Our checks around sigstore-verify, each on a real conformance bundle or trusted root mutated in
//! the one field the check is about (sigstore-verify 0.15.1 accepts every one of these mutants),
//! with the unmutated document verifying as the control. Then policies, bounds, and bundle bytes
//! from proptest.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::Value;

use super::*;

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn case(name: &str) -> PathBuf {
    data().join("sigstore-conformance/bundle-verify").join(name)
}

fn a_txt() -> Vec<u8> {
    std::fs::read(data().join("sigstore-conformance/bundle-verify/a.txt")).unwrap()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn public_good_root() -> Value {
    json(&data().join("sigstore-public-good/trusted_root.json"))
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn keyless() -> BlobPolicy {
    BlobPolicy::keyless(Some(IDENTITY), None, Some(ISSUER), None).unwrap()
}

fn verify_values(
    bundle: &Value,
    root: &Value,
    policy: &BlobPolicy,
) -> Result<BlobVerified, BlobError> {
    verify_blob(
        Artifact::Bytes(&a_txt()),
        &bytes(bundle),
        policy,
        &bytes(root),
    )
}

/// A Rekor v2 bundle (log2025-alpha1, Ed25519 checkpoint, RFC 3161 timestamp) and its root.
fn rekor_v2() -> (Value, Value) {
    (
        json(&case("rekor2-happy-path").join("bundle.sigstore.json")),
        json(&case("rekor2-happy-path").join("trusted_root.json")),
    )
}

/// A Rekor v1 v0.3 bundle (rekor.sigstore.dev, ECDSA checkpoint, SET) and the public-good root.
fn rekor_v1() -> (Value, Value) {
    (
        json(&case("happy-path-v0.3").join("bundle.sigstore.json")),
        public_good_root(),
    )
}

fn refused(result: Result<BlobVerified, BlobError>, kind: FailureKind) -> String {
    match result {
        Ok(v) => panic!("verified, expected {kind:?}: {}", v.summary()),
        Err(e) => {
            assert_eq!(e.kind, kind, "{e}");
            e.reason
        }
    }
}

#[test]
fn the_controls_verify() {
    let (bundle, root) = rekor_v2();
    verify_values(&bundle, &root, &keyless()).unwrap();
    let (bundle, root) = rekor_v1();
    verify_values(&bundle, &root, &keyless()).unwrap();
    let v01 = json(&case("happy-path-v0.1").join("bundle.sigstore.json"));
    verify_values(&v01, &public_good_root(), &keyless()).unwrap();
}

#[test]
fn crypto_needs_no_provider_installed() {
    assert!(sigstore_verify::crypto::try_default_provider().is_some());
}

// --- the bundle must not carry the root ---

fn chain_of(bundle: &mut Value) -> &mut Vec<Value> {
    bundle["verificationMaterial"]["x509CertificateChain"]["certificates"]
        .as_array_mut()
        .unwrap()
}

#[test]
fn a_chain_carrying_a_trusted_root_ca_is_refused() {
    let mut bundle = json(&case("happy-path-v0.1").join("bundle.sigstore.json"));
    let root = public_good_root();
    let ca_root = root["certificateAuthorities"][1]["certChain"]["certificates"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    chain_of(&mut bundle).push(ca_root);
    let reason = refused(
        verify_values(&bundle, &root, &keyless()),
        FailureKind::RootInChain,
    );
    assert_eq!(
        reason,
        "the bundle's certificate #2 of the chain is a trusted root CA certificate; a bundle must not carry the root"
    );
}

#[test]
fn a_self_issued_certificate_in_the_chain_is_refused() {
    // A self-signed CA certificate the public-good root does not list as a CA: the staging
    // timestamp authority's root.
    let staging = json(&case("rekor2-happy-path").join("trusted_root.json"));
    let tsa_root = staging["timestampAuthorities"][0]["certChain"]["certificates"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let mut bundle = json(&case("happy-path-v0.1").join("bundle.sigstore.json"));
    chain_of(&mut bundle).push(tsa_root);
    let reason = refused(
        verify_values(&bundle, &public_good_root(), &keyless()),
        FailureKind::RootInChain,
    );
    assert!(
        reason.contains("certificate #2 of the chain is self-issued"),
        "{reason}"
    );
}

// --- every window of the trusted root has a start ---

#[test]
fn every_authority_and_log_of_the_trusted_root_needs_a_start() {
    let (bundle, root) = rekor_v2();
    let places: [(&str, &[&str], &str); 4] = [
        (
            "tlogs",
            &["publicKey"],
            "transparency log \"https://rekor.sigstage.dev\"",
        ),
        (
            "ctlogs",
            &["publicKey"],
            "CT log \"https://ctfe.sigstage.dev/test\"",
        ),
        (
            "certificateAuthorities",
            &[],
            "certificate authority \"https://fulcio.sigstage.dev\"",
        ),
        (
            "timestampAuthorities",
            &[],
            "timestamp authority \"https://timestamp.sigstage.dev/api/v1/timestamp\"",
        ),
    ];
    for (list, path, named) in places {
        for drop_only_start in [false, true] {
            let mut mutated = root.clone();
            let mut holder = &mut mutated[list][0];
            for step in path {
                holder = &mut holder[*step];
            }
            if drop_only_start {
                holder["validFor"].as_object_mut().unwrap().remove("start");
            } else {
                holder.as_object_mut().unwrap().remove("validFor");
            }
            let reason = refused(
                verify_values(&bundle, &mutated, &keyless()),
                FailureKind::TrustedRoot,
            );
            assert_eq!(
                reason,
                format!("the trusted root's {named} has no validFor.start; an open start is not accepted"),
                "{list} without {}",
                if drop_only_start { "start" } else { "validFor" }
            );
        }
    }
}

#[test]
fn an_end_without_a_start_is_the_same_refusal() {
    let (bundle, mut root) = rekor_v2();
    root["certificateAuthorities"][0]["validFor"] =
        serde_json::json!({"end": "2099-01-01T00:00:00Z"});
    refused(
        verify_values(&bundle, &root, &keyless()),
        FailureKind::TrustedRoot,
    );
}

// --- each log entry names a trusted log ---

#[test]
fn a_rekor_v2_entry_naming_no_trusted_log_is_refused() {
    let (mut bundle, root) = rekor_v2();
    bundle["verificationMaterial"]["tlogEntries"][0]["logId"]["keyId"] =
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
    let reason = refused(
        verify_values(&bundle, &root, &keyless()),
        FailureKind::UnknownLog,
    );
    assert_eq!(
        reason,
        "the log entry names log AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=, which the trusted root does not list"
    );
}

#[test]
fn a_rekor_v2_entry_naming_another_trusted_log_is_refused() {
    // rekor.sigstage.dev is trusted too, but did not sign this entry's checkpoint.
    let (mut bundle, root) = rekor_v2();
    let other = root["tlogs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["baseUrl"] == "https://rekor.sigstage.dev")
        .unwrap()["logId"]["keyId"]
        .clone();
    bundle["verificationMaterial"]["tlogEntries"][0]["logId"]["keyId"] = other;
    let reason = refused(
        verify_values(&bundle, &root, &keyless()),
        FailureKind::Checkpoint,
    );
    assert_eq!(
        reason,
        "the checkpoint carries no valid signature of log \"rekor.sigstage.dev\""
    );
}

// --- the checkpoint is signed by the entry's log under the log's name ---

fn rename_signer(bundle: &mut Value, from: &str, to: &str) {
    let envelope = &mut bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
        ["checkpoint"]["envelope"];
    let text = envelope.as_str().unwrap();
    let from = format!("\u{2014} {from} ");
    assert!(text.contains(&from), "{text}");
    *envelope = text.replace(&from, &format!("\u{2014} {to} ")).into();
}

#[test]
fn a_rekor_v2_checkpoint_signed_under_another_name_is_refused() {
    let (mut bundle, root) = rekor_v2();
    rename_signer(
        &mut bundle,
        "log2025-alpha1.rekor.sigstage.dev",
        "evil.example",
    );
    let reason = refused(
        verify_values(&bundle, &root, &keyless()),
        FailureKind::Checkpoint,
    );
    assert_eq!(
        reason,
        "the checkpoint is signed by log \"log2025-alpha1.rekor.sigstage.dev\" under another name, \"evil.example\""
    );
}

#[test]
fn a_rekor_v1_checkpoint_signed_under_another_name_is_refused() {
    let (mut bundle, root) = rekor_v1();
    rename_signer(&mut bundle, "rekor.sigstore.dev", "rekor.example");
    refused(
        verify_values(&bundle, &root, &keyless()),
        FailureKind::Checkpoint,
    );
}

#[test]
fn the_log_name_comes_from_the_trusted_roots_base_url() {
    let (bundle, mut root) = rekor_v2();
    for log in root["tlogs"].as_array_mut().unwrap() {
        if log["baseUrl"] == "https://log2025-alpha1.rekor.sigstage.dev" {
            log["baseUrl"] = "https://log.example/api".into();
        }
    }
    let reason = refused(
        verify_values(&bundle, &root, &keyless()),
        FailureKind::Checkpoint,
    );
    assert!(
        reason.contains("by log \"log.example\" under another name"),
        "{reason}"
    );
}

// --- witness cosignatures ---

/// The three witnesses that cosigned `rekor2-dsse-happy-path`, with their published keys.
fn real_witnesses() -> Vec<String> {
    std::fs::read_to_string(data().join("sigstore-witnesses/vkeys.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

const STAGEMOLE: &str = "witness.stagemole.eu";
const RING_ANY_BELLS: &str = "staging.witness.transparency.goog/ring-any-bells";
const NAVIGLI: &str = "witness.navigli.sunlight.geomys.org";

/// A Rekor v2 DSSE bundle (log2025-alpha3) whose checkpoint three real witnesses cosigned.
fn cosigned() -> (Value, Value) {
    (
        json(&case("rekor2-dsse-happy-path").join("bundle.sigstore.json")),
        json(&case("rekor2-dsse-happy-path").join("trusted_root.json")),
    )
}

fn verify_witnessed(
    bundle: &Value,
    root: &Value,
    vkeys: &[String],
    quorum: usize,
) -> Result<BlobVerified, BlobError> {
    TrustRoot::from_json(&bytes(root))
        .unwrap()
        .with_witnesses(Witnesses::from_vkeys(vkeys, quorum).unwrap())
        .verify(Artifact::Bytes(&a_txt()), &bytes(bundle), &keyless())
}

fn envelope_mut(bundle: &mut Value) -> &mut Value {
    &mut bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]
        ["envelope"]
}

/// Rewrites the raw bytes (key ID || cosignature) of `witness`'s line in the checkpoint.
fn edit_cosignature(bundle: &mut Value, witness: &str, edit: impl Fn(&mut Vec<u8>)) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let envelope = envelope_mut(bundle);
    let text = envelope.as_str().unwrap().to_string();
    let prefix = format!("\u{2014} {witness} ");
    let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap();
    let mut raw = b64.decode(&line[prefix.len()..]).unwrap();
    edit(&mut raw);
    *envelope = text
        .replace(line, &format!("{prefix}{}", b64.encode(&raw)))
        .into();
}

#[test]
fn cosignatures_of_known_witnesses_count_toward_the_quorum() {
    let (bundle, root) = cosigned();
    let v = verify_witnessed(&bundle, &root, &real_witnesses(), 3).unwrap();
    assert_eq!(
        v.log_entries[0].witnesses,
        vec![STAGEMOLE, RING_ANY_BELLS, NAVIGLI]
    );
    assert!(
        v.summary().contains(&format!(
            "at index 4026478 (cosigned by {STAGEMOLE}, {RING_ANY_BELLS}, {NAVIGLI})"
        )),
        "{}",
        v.summary()
    );
    // Without configured witnesses nothing is checked or reported.
    let v = verify_values(&bundle, &root, &keyless()).unwrap();
    assert!(v.log_entries[0].witnesses.is_empty());
}

#[test]
fn a_known_witness_cosignature_with_one_bit_flipped_is_refused() {
    let (mut bundle, root) = cosigned();
    edit_cosignature(&mut bundle, RING_ANY_BELLS, |raw| {
        let last = raw.len() - 1;
        raw[last] ^= 0x01;
    });
    // sigstore-verify alone, and vouch with no witness configured, accept it.
    verify_values(&bundle, &root, &keyless()).unwrap();
    for quorum in [0, 1] {
        let reason = refused(
            verify_witnessed(&bundle, &root, &real_witnesses(), quorum),
            FailureKind::Witness,
        );
        assert_eq!(
            reason,
            format!(
                "the cosignature of witness {RING_ANY_BELLS:?} on the checkpoint of log \
                 \"log2025-alpha3.rekor.sigstage.dev\" does not verify"
            )
        );
    }
    // The flipped bit in the timestamp instead of the signature: the same refusal.
    let (mut bundle, root) = cosigned();
    edit_cosignature(&mut bundle, NAVIGLI, |raw| raw[11] ^= 0x01);
    refused(
        verify_witnessed(&bundle, &root, &real_witnesses(), 0),
        FailureKind::Witness,
    );
}

#[test]
fn cosignatures_of_unknown_witnesses_are_ignored() {
    // witness.example's key is not published: its line is ignored, even corrupted.
    let dir = case("rekor2-checkpoint-cosigned");
    let mut bundle = json(&dir.join("bundle.sigstore.json"));
    let root = json(&dir.join("trusted_root.json"));
    edit_cosignature(&mut bundle, "witness.example", |raw| raw[20] ^= 0x01);
    let v = verify_witnessed(&bundle, &root, &real_witnesses(), 0).unwrap();
    assert!(v.log_entries[0].witnesses.is_empty());

    // A line with a known witness's name but another key ID is another key: ignored too.
    let (mut bundle, root) = cosigned();
    edit_cosignature(&mut bundle, STAGEMOLE, |raw| {
        raw[0] ^= 0xff;
        raw[40] ^= 0x01;
    });
    let v = verify_witnessed(&bundle, &root, &real_witnesses(), 2).unwrap();
    assert_eq!(v.log_entries[0].witnesses, vec![RING_ANY_BELLS, NAVIGLI]);
}

#[test]
fn a_witness_quorum_not_met_is_refused() {
    let (mut bundle, root) = cosigned();
    // Navigli's line removed: two of three.
    let envelope = envelope_mut(&mut bundle);
    let text: String = envelope
        .as_str()
        .unwrap()
        .split_inclusive('\n')
        .filter(|l| !l.contains(NAVIGLI))
        .collect();
    *envelope = text.into();
    verify_witnessed(&bundle, &root, &real_witnesses(), 2).unwrap();
    let reason = refused(
        verify_witnessed(&bundle, &root, &real_witnesses(), 3),
        FailureKind::Witness,
    );
    assert_eq!(
        reason,
        "the checkpoint of log \"log2025-alpha3.rekor.sigstage.dev\" is cosigned by 2 of the \
         known witnesses, fewer than the quorum of 3"
    );

    // A checkpoint no known witness cosigned.
    let (bundle, root) = rekor_v2();
    refused(
        verify_witnessed(&bundle, &root, &real_witnesses(), 1),
        FailureKind::Witness,
    );
    // A Rekor v1 entry with a SET and no inclusion proof (as a v0.1 bundle may have it):
    // nothing a witness could have cosigned.
    let mut v01 = json(&case("happy-path-v0.1").join("bundle.sigstore.json"));
    v01["verificationMaterial"]["tlogEntries"][0]
        .as_object_mut()
        .unwrap()
        .remove("inclusionProof");
    let reason = refused(
        verify_witnessed(&v01, &public_good_root(), &real_witnesses(), 1),
        FailureKind::Witness,
    );
    assert!(
        reason.contains("has no checkpoint for witnesses to cosign"),
        "{reason}"
    );
}

#[test]
fn a_quorum_applies_to_a_key_bundle_without_log_entries_too() {
    let (mut bundle, key) = managed_key();
    bundle["verificationMaterial"]
        .as_object_mut()
        .unwrap()
        .remove("tlogEntries");
    let trust = TrustRoot::from_json(&bytes(&public_good_root())).unwrap();
    let policy = key_policy(&key, false);
    let reason = refused(
        trust
            .with_witnesses(Witnesses::from_vkeys(&real_witnesses(), 1).unwrap())
            .verify(Artifact::Bytes(&a_txt()), &bytes(&bundle), &policy),
        FailureKind::Witness,
    );
    assert_eq!(
        reason,
        "the bundle has no transparency-log entry, and a witness quorum of 1 is required"
    );
}

#[test]
fn a_cosignature_by_a_witness_of_our_own_over_a_real_checkpoint_counts() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (mut bundle, root) = rekor_v2();
    let witness = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let name = "witness.vouch.test/w1";
    let mut key = vec![0x04];
    key.extend_from_slice(witness.verifying_key().as_bytes());
    let mut key_id_input = format!("{name}\n").into_bytes();
    key_id_input.extend_from_slice(&key);
    let key_id = &Sha256::digest(&key_id_input)[..4];
    let vkey = format!("{name}+{}+{}", hex::encode(key_id), b64.encode(&key));

    let envelope = envelope_mut(&mut bundle);
    let text = envelope.as_str().unwrap().to_string();
    let (body, _) = text.split_once("\n\n").unwrap();
    let time: u64 = 1_750_000_000;
    let message = format!("cosignature/v1\ntime {time}\n{body}\n");
    let signature = ed25519_dalek::Signer::sign(&witness, message.as_bytes());
    let mut raw = key_id.to_vec();
    raw.extend_from_slice(&time.to_be_bytes());
    raw.extend_from_slice(&signature.to_bytes());
    *envelope = format!("{text}\u{2014} {name} {}\n", b64.encode(&raw)).into();

    let v = verify_witnessed(&bundle, &root, std::slice::from_ref(&vkey), 1).unwrap();
    assert_eq!(v.log_entries[0].witnesses, vec![name]);

    // Signed without the header line, or over another time than the one it carries: refused.
    for wrong in [
        format!("time {time}\n{body}\n"),
        format!("cosignature/v1\ntime {}\n{body}\n", time + 1),
    ] {
        let (mut bundle, _) = rekor_v2();
        let signature = ed25519_dalek::Signer::sign(&witness, wrong.as_bytes());
        let mut raw = key_id.to_vec();
        raw.extend_from_slice(&time.to_be_bytes());
        raw.extend_from_slice(&signature.to_bytes());
        let envelope = envelope_mut(&mut bundle);
        *envelope = format!(
            "{}\u{2014} {name} {}\n",
            envelope.as_str().unwrap(),
            b64.encode(&raw)
        )
        .into();
        refused(
            verify_witnessed(&bundle, &root, std::slice::from_ref(&vkey), 0),
            FailureKind::Witness,
        );
    }
}

// --- the log of an entry without a SET was valid when the bundle was signed ---

fn iso(t: i64) -> String {
    crate::signature::format_unix(t)
}

fn tlog_mut<'a>(root: &'a mut Value, base_url: &str) -> &'a mut Value {
    root["tlogs"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["baseUrl"] == base_url)
        .unwrap()
}

const ALPHA1: &str = "https://log2025-alpha1.rekor.sigstage.dev";

/// The Rekor v2 control, and its one signing time (its RFC 3161 timestamp).
fn rekor_v2_signed_at() -> (Value, Value, i64) {
    let (bundle, root) = rekor_v2();
    let v = verify_values(&bundle, &root, &keyless()).unwrap();
    assert_eq!(v.signing_times.len(), 1, "one RFC 3161 time");
    let t = v.signing_times[0];
    (bundle, root, t)
}

#[test]
fn a_rekor_v2_entry_of_a_log_retired_before_the_signing_time_is_refused() {
    let (bundle, mut root, signed_at) = rekor_v2_signed_at();
    tlog_mut(&mut root, ALPHA1)["publicKey"]["validFor"]["end"] = iso(signed_at - 1).into();
    let reason = refused(
        verify_values(&bundle, &root, &keyless()),
        FailureKind::LogOutsideValidity,
    );
    assert_eq!(
        reason,
        format!(
            "signed at {}, outside the validity of log \"log2025-alpha1.rekor.sigstage.dev\" \
             (2025-04-16T00:00:00Z to {})",
            iso(signed_at),
            iso(signed_at - 1)
        )
    );
}

#[test]
fn a_rekor_v2_entry_of_a_log_not_yet_started_at_the_signing_time_is_refused() {
    let (bundle, mut root, signed_at) = rekor_v2_signed_at();
    tlog_mut(&mut root, ALPHA1)["publicKey"]["validFor"]["start"] = iso(signed_at + 1).into();
    refused(
        verify_values(&bundle, &root, &keyless()),
        FailureKind::LogOutsideValidity,
    );
}

#[test]
fn a_log_window_includes_both_of_its_ends() {
    let (bundle, mut root, signed_at) = rekor_v2_signed_at();
    let window = &mut tlog_mut(&mut root, ALPHA1)["publicKey"]["validFor"];
    window["start"] = iso(signed_at).into();
    window["end"] = iso(signed_at).into();
    verify_values(&bundle, &root, &keyless()).unwrap();
}

/// A v0.2 bundle with a Rekor v1 intoto entry, its SET removed: its time is then the RFC 3161
/// timestamp's, and nothing checked its log's window.
fn rekor_v1_without_set() -> (Value, Value, Vec<u8>) {
    let dir = case("intoto-with-custom-trust-root");
    let mut bundle = json(&dir.join("bundle.sigstore.json"));
    bundle["verificationMaterial"]["tlogEntries"][0]
        .as_object_mut()
        .unwrap()
        .remove("inclusionPromise");
    (
        bundle,
        json(&dir.join("trusted_root.json")),
        std::fs::read(dir.join("artifact")).unwrap(),
    )
}

#[test]
fn a_rekor_v1_entry_without_a_set_of_a_retired_log_is_refused() {
    let (bundle, mut root, artifact) = rekor_v1_without_set();
    let verify = |root: &Value| {
        verify_blob(
            Artifact::Bytes(&artifact),
            &bytes(&bundle),
            &keyless(),
            &bytes(root),
        )
    };
    let v = verify(&root).unwrap();
    assert_eq!(v.log_entries[0].integrated_time, None, "no SET-backed time");
    let signed_at = v.signing_times[0];
    tlog_mut(&mut root, "http://localhost:8000")["publicKey"]["validFor"]["end"] =
        iso(signed_at - 1).into();
    let reason = refused(verify(&root), FailureKind::LogOutsideValidity);
    assert!(reason.contains("log \"localhost:8000\""), "{reason}");
}

#[test]
fn a_rekor_v1_entry_with_a_set_answers_for_its_own_time() {
    // Its SET was checked with the log key valid at the integrated time; the log's window is
    // not compared with other times (here there are none: the SET's is the only one).
    let (bundle, root) = rekor_v1();
    let v = verify_values(&bundle, &root, &keyless()).unwrap();
    let integrated = v.log_entries[0].integrated_time.unwrap();
    assert_eq!(v.signing_times, vec![integrated]);
}

#[test]
fn an_rfc3161_time_outside_the_certificate_is_refused() {
    // The conformance case is refused for its line-wrapped base64 alone; unwrapped, for its time.
    let dir = case("rekor2-timestamp-with-incorrect-time_fail");
    let mut bundle = json(&dir.join("bundle.sigstore.json"));
    let root = json(&dir.join("trusted_root.json"));
    let ts = &mut bundle["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
        [0]["signedTimestamp"];
    *ts = ts.as_str().unwrap().replace('\n', "").into();
    refused(
        verify_values(&bundle, &root, &keyless()),
        FailureKind::CertificateExpired,
    );
}

// --- identity and issuer ---

fn keyless_with(
    identity: Option<&str>,
    identity_regexp: Option<&str>,
    issuer: Option<&str>,
    issuer_regexp: Option<&str>,
) -> BlobPolicy {
    BlobPolicy::keyless(identity, identity_regexp, issuer, issuer_regexp).unwrap()
}

#[test]
fn regular_expressions_must_match_the_whole_identity_and_issuer() {
    let (bundle, root) = rekor_v2();
    let whole = keyless_with(
        None,
        Some(r"https://github\.com/sigstore-conformance/.*@refs/heads/main"),
        None,
        Some(r"https://token\.actions\.githubusercontent\.com"),
    );
    verify_values(&bundle, &root, &whole).unwrap();

    let part_of_identity = keyless_with(None, Some("sigstore-conformance"), Some(ISSUER), None);
    let reason = refused(
        verify_values(&bundle, &root, &part_of_identity),
        FailureKind::Identity,
    );
    assert_eq!(
        reason,
        format!("certificate identity {IDENTITY:?} does not match /^(?:sigstore-conformance)$/")
    );

    let part_of_issuer = keyless_with(Some(IDENTITY), None, None, Some(r"token\.actions"));
    refused(
        verify_values(&bundle, &root, &part_of_issuer),
        FailureKind::Issuer,
    );

    let prefix_only = keyless_with(
        None,
        Some("https://github.com/sigstore-conformance"),
        Some(ISSUER),
        None,
    );
    refused(
        verify_values(&bundle, &root, &prefix_only),
        FailureKind::Identity,
    );
}

#[test]
fn exact_identity_and_issuer_are_refused_by_name() {
    let (bundle, root) = rekor_v2();
    let wrong_identity = keyless_with(
        Some("https://github.com/acme/app"),
        None,
        Some(ISSUER),
        None,
    );
    let reason = refused(
        verify_values(&bundle, &root, &wrong_identity),
        FailureKind::Identity,
    );
    assert_eq!(
        reason,
        format!("certificate identity {IDENTITY:?} does not match \"https://github.com/acme/app\"")
    );
    let wrong_issuer = keyless_with(
        Some(IDENTITY),
        None,
        Some("https://accounts.google.com"),
        None,
    );
    let reason = refused(
        verify_values(&bundle, &root, &wrong_issuer),
        FailureKind::Issuer,
    );
    assert_eq!(
        reason,
        format!("certificate issuer {ISSUER:?} does not match \"https://accounts.google.com\"")
    );
}

#[test]
fn a_policy_needs_exactly_one_form_of_each_and_valid_patterns() {
    let policy_error = |r: Result<BlobPolicy, BlobError>| match r {
        Ok(_) => panic!("accepted"),
        Err(e) => {
            assert_eq!(e.kind, FailureKind::Policy);
            assert_eq!(e.exit_code(), 2);
            e.reason
        }
    };
    policy_error(BlobPolicy::keyless(
        Some("a"),
        Some("a.*"),
        Some(ISSUER),
        None,
    ));
    policy_error(BlobPolicy::keyless(None, None, Some(ISSUER), None));
    policy_error(BlobPolicy::keyless(Some("a"), None, None, None));
    let reason = policy_error(BlobPolicy::keyless(
        None,
        Some("(unclosed"),
        Some(ISSUER),
        None,
    ));
    assert!(
        reason.starts_with("invalid certificate identity regular expression"),
        "{reason}"
    );
}

#[test]
fn a_pattern_that_would_close_the_anchoring_group_is_refused() {
    // Not a regular expression on its own; wrapped as `^(?:...)$` its second branch would match
    // any identity at all.
    let escape = r"https://github\.com/acme/.*)|(.*";
    let cases = [
        (
            BlobPolicy::keyless(None, Some(escape), Some(ISSUER), None),
            "certificate identity",
        ),
        (
            BlobPolicy::keyless(Some(IDENTITY), None, None, Some(escape)),
            "certificate OIDC issuer",
        ),
    ];
    for (policy, what) in cases {
        match policy {
            Ok(_) => panic!("{escape:?} accepted as a {what} pattern"),
            Err(e) => {
                assert_eq!(e.kind, FailureKind::Policy);
                assert_eq!(
                    e.reason,
                    format!("invalid {what} regular expression: {escape:?} is not a regular expression: unopened group")
                );
            }
        }
    }
    // Balanced alternatives stay inside the anchors.
    let BlobPolicy::Keyless(id) = keyless_with(None, Some("a|b"), Some(ISSUER), None) else {
        panic!("not keyless")
    };
    assert!(id.subject.matches("a") && !id.subject.matches("ab") && !id.subject.matches("xb"));
}

// --- managed keys ---

fn managed_key() -> (Value, Vec<u8>) {
    (
        json(&case("managed-key-happy-path").join("bundle.sigstore.json")),
        std::fs::read(case("managed-key-happy-path").join("key.pub")).unwrap(),
    )
}

fn key_policy(pem: &[u8], require_tlog: bool) -> BlobPolicy {
    BlobPolicy::Key {
        key: BlobKey::from_pem(pem).unwrap(),
        require_tlog,
    }
}

#[test]
fn another_valid_key_does_not_verify() {
    let (bundle, key) = managed_key();
    verify_values(&bundle, &public_good_root(), &key_policy(&key, true)).unwrap();
    let other = std::fs::read(data().join("cosign-p256.pub")).unwrap();
    refused(
        verify_values(&bundle, &public_good_root(), &key_policy(&other, false)),
        FailureKind::Signature,
    );
}

#[test]
fn a_key_bundle_without_a_log_entry_is_timestamped_or_refused() {
    let (mut bundle, key) = managed_key();
    bundle["verificationMaterial"]
        .as_object_mut()
        .unwrap()
        .remove("tlogEntries");
    let reason = refused(
        verify_values(&bundle, &public_good_root(), &key_policy(&key, true)),
        FailureKind::InclusionProof,
    );
    assert_eq!(
        reason,
        "the bundle has no transparency-log entry, and one is required"
    );
    // Not required: its RFC 3161 timestamp (timestamp.sigstore.dev) stands in for the entry.
    let v = verify_values(&bundle, &public_good_root(), &key_policy(&key, false)).unwrap();
    assert!(v.log_entries.is_empty());
    assert_eq!(v.signing_times.len(), 1);
    // Without the timestamp either, nothing says when it was signed.
    bundle["verificationMaterial"]
        .as_object_mut()
        .unwrap()
        .remove("timestampVerificationData");
    refused(
        verify_values(&bundle, &public_good_root(), &key_policy(&key, false)),
        FailureKind::NoTimestamp,
    );
}

#[test]
fn a_key_bundle_with_a_set_is_signed_at_its_integrated_time() {
    let (bundle, key) = managed_key();
    let v = verify_values(&bundle, &public_good_root(), &key_policy(&key, false)).unwrap();
    let integrated = v.log_entries[0].integrated_time.unwrap();
    assert!(
        v.signing_times.contains(&integrated),
        "{:?}",
        v.signing_times
    );
}

#[test]
fn a_key_bundle_whose_only_entry_has_no_set_and_no_timestamp_is_refused() {
    let dir = case("managed-key-and-trusted-root");
    let mut bundle = json(&dir.join("bundle.sigstore.json"));
    let root = json(&dir.join("trusted_root.json"));
    let key = std::fs::read(dir.join("key.pub")).unwrap();
    let v = verify_values(&bundle, &root, &key_policy(&key, false)).unwrap();
    assert!(!v.signing_times.is_empty(), "the control's SET time");
    bundle["verificationMaterial"]["tlogEntries"][0]
        .as_object_mut()
        .unwrap()
        .remove("inclusionPromise");
    let reason = refused(
        verify_values(&bundle, &root, &key_policy(&key, false)),
        FailureKind::NoTimestamp,
    );
    assert!(
        reason.starts_with("nothing says when the bundle was signed"),
        "{reason}"
    );
}

#[test]
fn a_key_bundle_with_only_a_rekor_v2_entry_and_no_timestamp_is_refused() {
    let w = synthetic::key_bundle_with_rekor_v2_entry();
    let policy = key_policy(w.key_pem.as_bytes(), false);
    let verify = |bundle: &Value| {
        verify_blob(
            Artifact::Bytes(&w.artifact),
            &bytes(bundle),
            &policy,
            &bytes(&w.root),
        )
    };
    // sigstore-verify alone accepts it: the bundle is sound but for its missing time.
    let root = TrustedRoot::from_json(&serde_json::to_string(&w.root).unwrap()).unwrap();
    let key = BlobKey::from_pem(w.key_pem.as_bytes()).unwrap();
    let alone = Verifier::new(&root)
        .unwrap()
        .verify(
            w.artifact.as_slice(),
            &Bundle::from_json(&serde_json::to_string(&w.bundle).unwrap()).unwrap(),
            &PublicKeyVerificationPolicy::new(key.der),
        )
        .unwrap();
    assert!(alone.verified_timestamps().is_empty());
    let reason = refused(verify(&w.bundle), FailureKind::NoTimestamp);
    assert!(
        reason.starts_with("nothing says when the bundle was signed"),
        "{reason}"
    );
}

mod synthetic {
    //! A self-made Sigstore (the test CA, and the test Rekor key as a Rekor v2 log) to build
    //! bundles no public instance would sign.
    use base64::Engine;
    use serde_json::Value;
    use sha2::{Digest, Sha256};
    use spki::EncodePublicKey;

    use crate::signature::testca::{
        public_key_pem, random_key, sign, trusted_root_json, TestCa, TestRekor,
    };

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    pub struct KeyBundle {
        pub root: Value,
        pub bundle: Value,
        pub key_pem: String,
        pub artifact: Vec<u8>,
    }

    /// A v0.3 managed-key bundle with one hashedrekord/0.0.2 entry, alone in its tree, whose
    /// checkpoint the trusted log signed; no RFC 3161 timestamp.
    pub fn key_bundle_with_rekor_v2_entry() -> KeyBundle {
        let ca = TestCa::new("test ca");
        let log = TestRekor::new();
        let root: Value =
            serde_json::from_str(&trusted_root_json(&ca, &log, "2001-01-01T00:00:00Z")).unwrap();
        let artifact = b"hello, world\n".to_vec();
        let digest = Sha256::digest(&artifact);
        let signer = random_key();
        let signature = sign(&signer, &artifact);
        let spki = signer.verifying_key().to_public_key_der().unwrap();
        let body = serde_json::to_vec(&serde_json::json!({
            "apiVersion": "0.0.2", "kind": "hashedrekord",
            "spec": {"hashedRekordV002": {
                "data": {"algorithm": "SHA2_256", "digest": B64.encode(digest)},
                "signature": {"content": B64.encode(&signature), "verifier": {
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "publicKey": {"rawBytes": B64.encode(spki.as_bytes())}}}}}
        }))
        .unwrap();
        let mut leaf_input = vec![0u8];
        leaf_input.extend_from_slice(&body);
        let leaf = Sha256::digest(&leaf_input);
        let note = format!("rekor.test - 1\n1\n{}\n", B64.encode(leaf));
        let mut note_signature = log.log_id[..4].to_vec();
        note_signature.extend(sign(&log.key, note.as_bytes()));
        let envelope = format!(
            "{note}\n\u{2014} rekor.test {}\n",
            B64.encode(&note_signature)
        );
        let bundle = serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "publicKey": {"hint": ""},
                "tlogEntries": [{
                    "logIndex": "0",
                    "logId": {"keyId": B64.encode(&log.log_id)},
                    "kindVersion": {"kind": "hashedrekord", "version": "0.0.2"},
                    "inclusionProof": {
                        "logIndex": "0", "rootHash": B64.encode(leaf), "treeSize": "1",
                        "hashes": [], "checkpoint": {"envelope": envelope}},
                    "canonicalizedBody": B64.encode(&body)
                }]
            },
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": B64.encode(digest)},
                "signature": B64.encode(&signature)
            }
        });
        KeyBundle {
            root,
            bundle,
            key_pem: public_key_pem(&signer),
            artifact,
        }
    }
}

#[test]
fn an_ed25519_key_reads_the_whole_file_and_cannot_use_a_digest() {
    // Ed25519 signs the message itself, so a file is read whole instead of streamed, and a
    // digest alone cannot be checked. This bundle is ECDSA-signed: the file is then refused for
    // its signature, the digest for its form.
    let (bundle, _) = managed_key();
    let ed25519 = std::fs::read(data().join("cosign-ed25519.pub")).unwrap();
    let trust = TrustRoot::from_json(&bytes(&public_good_root())).unwrap();
    let path = data().join("sigstore-conformance/bundle-verify/a.txt");
    let policy = key_policy(&ed25519, false);
    let from_file = trust
        .verify(Artifact::Path(&path), &bytes(&bundle), &policy)
        .unwrap_err();
    assert_eq!(from_file.kind, FailureKind::Signature, "{from_file}");
    let digest: [u8; 32] = Sha256::digest(a_txt()).into();
    let from_digest = trust
        .verify(Artifact::Sha256(digest), &bytes(&bundle), &policy)
        .unwrap_err();
    assert_eq!(from_digest.kind, FailureKind::Unsupported, "{from_digest}");
}

#[test]
fn a_certificate_bundle_without_a_log_entry_is_refused_even_with_a_timestamp() {
    let (mut bundle, root) = rekor_v2();
    bundle["verificationMaterial"]
        .as_object_mut()
        .unwrap()
        .remove("tlogEntries");
    assert!(!bundle["verificationMaterial"]["timestampVerificationData"].is_null());
    let reason = refused(
        verify_values(&bundle, &root, &keyless()),
        FailureKind::InclusionProof,
    );
    assert_eq!(
        reason,
        "the bundle has no transparency-log entry, which a certificate needs"
    );
}

#[test]
fn key_and_certificate_bundles_are_not_interchangeable() {
    let (bundle, key) = managed_key();
    refused(
        verify_values(&bundle, &public_good_root(), &keyless()),
        FailureKind::WrongMaterial,
    );
    let (v1, root) = rekor_v1();
    refused(
        verify_values(&v1, &root, &key_policy(&key, false)),
        FailureKind::WrongMaterial,
    );
}

#[test]
fn an_unusable_key_is_an_input_error() {
    for pem in [
        &b"not a key"[..],
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    ] {
        let e = BlobKey::from_pem(pem).unwrap_err();
        assert_eq!((e.kind, e.exit_code()), (FailureKind::Key, 2), "{e}");
    }
    let e = BlobKey::from_pem(&vec![b'A'; MAX_KEY_LEN + 1]).unwrap_err();
    assert!(e.reason.contains("more than"), "{e}");
}

// --- inputs ---

#[test]
fn inputs_are_bounded() {
    let (bundle, root) = rekor_v2();
    let mut big = bytes(&bundle);
    big.resize(MAX_BUNDLE_LEN + 1, b' ');
    let e = verify_blob(Artifact::Bytes(b""), &big, &keyless(), &bytes(&root)).unwrap_err();
    assert_eq!(e.kind, FailureKind::Malformed);
    assert!(e.reason.contains("more than the"), "{e}");

    let mut big_root = bytes(&root);
    big_root.resize(MAX_TRUSTED_ROOT_LEN + 1, b' ');
    let e = TrustRoot::from_json(&big_root).err().unwrap();
    assert_eq!(e.kind, FailureKind::TrustedRoot);
    assert!(e.reason.contains("more than the"), "{e}");
}

#[test]
fn a_trusted_root_that_is_not_one_is_an_input_error() {
    for root in [&b"{"[..], b"[]", b"\xff\xfe", b"{\"tlogs\": 5}"] {
        let e = TrustRoot::from_json(root).err().unwrap();
        assert_eq!(
            (e.kind, e.exit_code()),
            (FailureKind::TrustedRoot, 2),
            "{e}"
        );
    }
}

#[test]
fn digests_and_paths_from_the_command_line() {
    let hex = "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";
    match Artifact::from_argument(&format!("sha256:{hex}")).unwrap() {
        Artifact::Sha256(d) => assert_eq!(hex::encode(d), hex),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Artifact::from_argument("a.txt").unwrap(),
        Artifact::Path(_)
    ));
    for bad in [
        "sha256:",
        "sha256:abc",
        &format!("sha256:{hex}00"),
        &format!("sha256:{}", "zz".repeat(32)),
    ] {
        let e = Artifact::from_argument(bad).err().unwrap();
        assert_eq!(e.kind, FailureKind::Unreadable, "{bad}");
    }
}

#[test]
fn a_missing_artifact_file_is_an_input_error() {
    let (bundle, root) = rekor_v2();
    let missing = data().join("no-such-artifact");
    let e = verify_blob(
        Artifact::Path(&missing),
        &bytes(&bundle),
        &keyless(),
        &bytes(&root),
    )
    .unwrap_err();
    assert_eq!((e.kind, e.exit_code()), (FailureKind::Unreadable, 2), "{e}");
}

#[test]
fn a_file_is_verified_as_its_bytes_and_its_digest() {
    let (bundle, root) = rekor_v2();
    let trust = TrustRoot::from_json(&bytes(&root)).unwrap();
    let path = data().join("sigstore-conformance/bundle-verify/a.txt");
    let from_path = trust
        .verify(Artifact::Path(&path), &bytes(&bundle), &keyless())
        .unwrap();
    let digest: [u8; 32] = Sha256::digest(a_txt()).into();
    let from_digest = trust
        .verify(Artifact::Sha256(digest), &bytes(&bundle), &keyless())
        .unwrap();
    assert_eq!(from_path, from_digest);
    let other = trust
        .verify(
            Artifact::Bytes(b"another artifact"),
            &bytes(&bundle),
            &keyless(),
        )
        .unwrap_err();
    assert_eq!(other.kind, FailureKind::DigestMismatch, "{other}");
}

// --- any bytes as a bundle ---

fn assert_one_bounded_line(result: &Result<BlobVerified, BlobError>) {
    if let Err(e) = result {
        assert!(e.reason.chars().count() <= MAX_REASON_CHARS, "{}", e.reason);
        assert!(!e.reason.chars().any(char::is_control), "{:?}", e.reason);
        assert!(!e.reason.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_bytes_as_a_bundle_are_refused_in_one_line(bundle in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let (_, root) = rekor_v2();
        let result = verify_blob(Artifact::Bytes(&a_txt()), &bundle, &keyless(), &bytes(&root));
        prop_assert!(result.is_err());
        assert_one_bounded_line(&result);
    }

    #[test]
    fn a_real_bundle_with_bytes_changed_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let (_, root) = rekor_v2();
        let mut bundle = std::fs::read(case("rekor2-happy-path").join("bundle.sigstore.json")).unwrap();
        for (at, byte) in &edits {
            let i = at.index(bundle.len());
            bundle[i] = *byte;
        }
        let result = verify_blob(Artifact::Bytes(&a_txt()), &bundle, &keyless(), &bytes(&root));
        assert_one_bounded_line(&result);
    }

    #[test]
    fn a_real_bundle_with_a_field_replaced_never_panics(
        field in 0usize..64,
        replacement in prop_oneof![
            any::<i64>().prop_map(Value::from),
            "\\PC{0,80}".prop_map(Value::from),
            Just(Value::Null),
            Just(serde_json::json!([])),
            Just(serde_json::json!({})),
            "[A-Za-z0-9+/]{0,120}={0,2}".prop_map(Value::from),
        ],
    ) {
        let (mut bundle, root) = rekor_v2();
        replace_nth_leaf(&mut bundle, field, replacement);
        let result = verify_values(&bundle, &root, &keyless());
        assert_one_bounded_line(&result);
    }
}

/// Values that have broken parsers: empty, negative and overflowing numbers as strings and as
/// numbers, short base64, the wrong JSON type, a signature line inside a field.
fn hostile(i: usize) -> Value {
    let values = [
        Value::Null,
        "".into(),
        "-1".into(),
        "9223372036854775807".into(),
        "18446744073709551615".into(),
        (-1).into(),
        i64::MAX.into(),
        "AAAA".into(),
        "AA==".into(),
        serde_json::json!([]),
        serde_json::json!({}),
        "\u{2014} x AAAA\n".into(),
    ];
    values[i % values.len()].clone()
}

/// Every conformance case directory whose bundle is JSON, with its root and the policy it is
/// verified with (its key, else the default identity).
fn conformance_cases() -> Vec<(PathBuf, Value, Value, BlobPolicy)> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(case(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|d| d.is_dir())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .filter_map(|d| {
            let bundle =
                serde_json::from_slice(&std::fs::read(d.join("bundle.sigstore.json")).ok()?)
                    .ok()?;
            let root = if d.join("trusted_root.json").exists() {
                json(&d.join("trusted_root.json"))
            } else {
                public_good_root()
            };
            let policy = match std::fs::read(d.join("key.pub")) {
                Ok(pem) => BlobPolicy::Key {
                    key: BlobKey::from_pem(&pem).ok()?,
                    require_tlog: false,
                },
                Err(_) => keyless(),
            };
            Some((d, bundle, root, policy))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_conformance_bundle_with_a_field_made_hostile_never_panics(
        pick in any::<prop::sample::Index>(),
        field in 0usize..1024,
        value in 0usize..64,
    ) {
        static CASES: std::sync::OnceLock<Vec<(PathBuf, Value, Value, BlobPolicy)>> =
            std::sync::OnceLock::new();
        let (dir, mut bundle, root, policy) = pick.get(CASES.get_or_init(conformance_cases)).clone();
        replace_nth_leaf(&mut bundle, field, hostile(value));
        let artifact = std::fs::read(dir.join("artifact")).unwrap_or_else(|_| a_txt());
        let result = verify_blob(Artifact::Bytes(&artifact), &bytes(&bundle), &policy, &bytes(&root));
        assert_one_bounded_line(&result);
    }
}

/// Replaces the `n`-th leaf (modulo the number of leaves) of a JSON document, depth first.
fn replace_nth_leaf(v: &mut Value, n: usize, replacement: Value) {
    fn count(v: &Value) -> usize {
        match v {
            Value::Object(m) => m.values().map(count).sum(),
            Value::Array(a) => a.iter().map(count).sum(),
            _ => 1,
        }
    }
    fn walk(v: &mut Value, k: &mut usize, replacement: &mut Option<Value>) {
        match v {
            Value::Object(m) => m.values_mut().for_each(|c| walk(c, k, replacement)),
            Value::Array(a) => a.iter_mut().for_each(|c| walk(c, k, replacement)),
            _ if *k == 0 => {
                if let Some(r) = replacement.take() {
                    *v = r;
                }
            }
            _ => *k -= 1,
        }
    }
    let mut k = n % count(v).max(1);
    walk(v, &mut k, &mut Some(replacement));
}

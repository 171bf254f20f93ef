//! Tests against a real swtpm ([`super::testtpm::SwTpm`]) and tpm2-tools' `tpm2_checkquote`.

use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

use base64::Engine;
use p256::pkcs8::{EncodePublicKey, LineEnding};

use super::testtpm::SwTpm;
use super::*;

fn digest(n: u8) -> [u8; 32] {
    event_digest(
        &format!("container-{n}"),
        "sha256:aa",
        "",
        "",
        "allow",
        &"0".repeat(64),
    )
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

#[test]
fn record_event_quote_verifies_in_rust_and_with_tpm2_checkquote() {
    let tpm = SwTpm::start();
    let state = tempfile::tempdir().unwrap();
    let d = digest(1);
    let evidence = record_event(&tpm.tcti, state.path(), DEFAULT_PCR, &d).unwrap();
    assert_eq!(evidence.pcr, 23);
    assert_eq!(evidence.event_index, 0);
    assert_eq!(evidence.event_digest, hex::encode(d));
    // The first extend of a fresh PCR 23: SHA-256(zeros || digest).
    assert_eq!(evidence.pcr_value, hex::encode(extend(&[0; 32], &d)));

    let info = verify_quote(&evidence, None).unwrap();
    assert_eq!(info.extra_data, d.to_vec());
    let events = read_event_log(&event_log_path(state.path())).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].reset_count, info.reset_count);
    assert_eq!(events[0].restart_count, info.restart_count);
    assert_eq!(
        std::fs::read_to_string(ak_pem_path(state.path())).unwrap(),
        evidence.ak_pem
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(tpm_dir(state.path()))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);

    // The independent check: tpm2-tools reads the same bytes.
    let files = tempfile::tempdir().unwrap();
    let out = super::testtpm::checkquote(&evidence, &evidence.event_digest, files.path());
    assert!(
        out.status.success(),
        "tpm2_checkquote failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = super::testtpm::checkquote(&evidence, &hex::encode(digest(2)), files.path());
    assert!(
        !out.status.success(),
        "tpm2_checkquote accepted a wrong nonce"
    );
}

#[test]
fn verify_quote_accepts_what_tpm2_quote_writes() {
    // The other direction: tpm2-tools quotes with vouch's persistent AK, vouch verifies.
    let tpm = SwTpm::start();
    let state = tempfile::tempdir().unwrap();
    let ours = record_event(&tpm.tcti, state.path(), 23, &digest(1)).unwrap();
    let files = tempfile::tempdir().unwrap();
    let nonce = hex::encode(digest(9));
    let out = Command::new("tpm2_quote")
        .current_dir(files.path())
        .env("TPM2TOOLS_TCTI", &tpm.tcti)
        .args([
            "-c",
            &format!("{AK_PERSISTENT_HANDLE:#x}"),
            "-l",
            "sha256:23",
        ])
        .args(["-q", &nonce, "-m", "m.bin", "-s", "s.bin", "-g", "sha256"])
        .args(["-o", "pcr.bin", "-F", "values"])
        .output()
        .expect("run tpm2_quote");
    assert!(
        out.status.success(),
        "tpm2_quote failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b64e = base64::engine::general_purpose::STANDARD;
    let read = |name: &str| std::fs::read(files.path().join(name)).unwrap();
    let theirs = TpmEvidence {
        pcr: 23,
        pcr_value: hex::encode(read("pcr.bin")),
        event_digest: nonce,
        event_index: 0,
        attest: b64e.encode(read("m.bin")),
        signature: b64e.encode(read("s.bin")),
        ak_pem: ours.ak_pem.clone(),
    };
    assert_eq!(theirs.pcr_value, ours.pcr_value);
    let info = verify_quote(&theirs, None).unwrap();
    assert_eq!(info.extra_data, digest(9).to_vec());
}

#[test]
fn two_events_replay_to_each_pcr_value_and_reuse_the_ak() {
    let tpm = SwTpm::start();
    let state = tempfile::tempdir().unwrap();
    let (first, t1) = record_event_timed(&tpm.tcti, state.path(), 23, &digest(1)).unwrap();
    let (second, t2) = record_event_timed(&tpm.tcti, state.path(), 23, &digest(2)).unwrap();
    eprintln!("first (creates the AK): {t1:?}");
    eprintln!("second: {t2:?}");
    assert!(t1.ak_created);
    assert!(!t2.ak_created, "the second call must reuse the AK");
    assert_eq!(first.ak_pem, second.ak_pem);
    assert_eq!((first.event_index, second.event_index), (0, 1));

    let log = event_log_path(state.path());
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 2);
    let events = read_event_log(&log).unwrap();
    let info = verify_quote(&second, None).unwrap();
    let replayed = replay(&events, 23, info.reset_count, info.restart_count, 1).unwrap();
    assert_eq!(hex::encode(replayed), second.pcr_value);
    let info1 = verify_quote(&first, None).unwrap();
    let replayed = replay(&events, 23, info1.reset_count, info1.restart_count, 0).unwrap();
    assert_eq!(hex::encode(replayed), first.pcr_value);

    // A few more starts, timed: nothing accumulates in the TPM (3 object slots, no RM).
    for n in 3..8 {
        let (_, t) = record_event_timed(&tpm.tcti, state.path(), 23, &digest(n)).unwrap();
        eprintln!("event {n}: {t:?}");
    }
    let mut ctx =
        tss_esapi::Context::new(tss_esapi::tcti_ldr::TctiNameConf::from_str(&tpm.tcti).unwrap())
            .unwrap();
    let (handles, _) = ctx
        .get_capability(
            tss_esapi::constants::CapabilityType::Handles,
            0x8000_0000,
            16,
        )
        .unwrap();
    match handles {
        tss_esapi::structures::CapabilityData::Handles(list) => {
            assert!(list.is_empty(), "transient objects left loaded: {list:?}")
        }
        other => panic!("unexpected capability data {other:?}"),
    }
}

#[test]
fn verify_evidence_replays_the_log_and_catches_an_outside_extend() {
    let tpm = SwTpm::start();
    let state = tempfile::tempdir().unwrap();
    let log = event_log_path(state.path());
    let a = record_event(&tpm.tcti, state.path(), 23, &digest(1)).unwrap();
    let b = record_event(&tpm.tcti, state.path(), 23, &digest(2)).unwrap();
    let events = read_event_log(&log).unwrap();
    let ak = std::fs::read_to_string(ak_pem_path(state.path())).unwrap();
    verify_evidence(&a, &events, Some(&ak)).unwrap();
    verify_evidence(&b, &events, Some(&ak)).unwrap();

    // A record pointing at another event of the log.
    let misplaced = TpmEvidence {
        event_index: 0,
        ..b.clone()
    };
    let err = verify_evidence(&misplaced, &events, Some(&ak)).unwrap_err();
    assert!(err.to_string().contains("the record says PCR 23"), "{err}");

    // Someone extends PCR 23 behind vouch's back: the next start's quote no longer replays.
    {
        let mut ctx = tss_esapi::Context::new(
            tss_esapi::tcti_ldr::TctiNameConf::from_str(&tpm.tcti).unwrap(),
        )
        .unwrap();
        let mut vals = tss_esapi::structures::DigestValues::new();
        vals.set(
            tss_esapi::interface_types::algorithm::HashingAlgorithm::Sha256,
            tss_esapi::structures::Digest::try_from(vec![0x42; 32]).unwrap(),
        );
        ctx.execute_with_session(
            Some(tss_esapi::interface_types::session_handles::AuthSession::Password),
            |c| c.pcr_extend(tss_esapi::handles::PcrHandle::Pcr23, vals),
        )
        .unwrap();
    }
    let c = record_event(&tpm.tcti, state.path(), 23, &digest(3)).unwrap();
    verify_quote(&c, Some(&ak)).unwrap();
    let events = read_event_log(&log).unwrap();
    let err = verify_evidence(&c, &events, Some(&ak)).unwrap_err();
    assert!(matches!(err, TpmError::Replay(_)), "{err}");
    assert!(
        err.to_string()
            .contains("extended or reset outside the log"),
        "{err}"
    );
    // The earlier records still verify.
    verify_evidence(&b, &events, Some(&ak)).unwrap();
}

#[test]
fn parallel_callers_keep_the_log_and_pcr_in_step_without_a_lock_of_their_own() {
    // record_event locks the node's event log itself: callers with different attestation logs
    // (and so different locks of their own) cannot interleave extends and appends.
    let tpm = SwTpm::start();
    let state = tempfile::tempdir().unwrap();
    let results: Vec<TpmEvidence> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u8)
            .map(|thread| {
                let (tcti, state) = (&tpm.tcti, state.path());
                s.spawn(move || {
                    (0..3u8)
                        .map(|n| record_event(tcti, state, 23, &digest(thread * 10 + n)).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let events = read_event_log(&event_log_path(state.path())).unwrap();
    assert_eq!(events.len(), 12);
    let mut indexes: Vec<u64> = results.iter().map(|e| e.event_index).collect();
    indexes.sort();
    assert_eq!(indexes, (0..12).collect::<Vec<_>>());
    for evidence in &results {
        verify_evidence(evidence, &events, None).unwrap();
    }
}

#[test]
fn tpm_reset_restarts_the_replay_and_keeps_the_ak() {
    let mut tpm = SwTpm::start();
    let state = tempfile::tempdir().unwrap();
    let a = record_event(&tpm.tcti, state.path(), 23, &digest(1)).unwrap();
    let b = record_event(&tpm.tcti, state.path(), 23, &digest(2)).unwrap();
    tpm.restart();
    let (c, t) = record_event_timed(&tpm.tcti, state.path(), 23, &digest(3)).unwrap();
    assert!(!t.ak_created, "the persistent AK must survive a TPM reset");
    assert_eq!(a.ak_pem, c.ak_pem);
    assert_eq!(c.event_index, 2);
    // PCR 23 started from zero again after the reset.
    assert_eq!(c.pcr_value, hex::encode(extend(&[0; 32], &digest(3))));

    let events = read_event_log(&event_log_path(state.path())).unwrap();
    assert_eq!(events[2].reset_count, events[1].reset_count + 1);
    let qb = verify_quote(&b, None).unwrap();
    let qc = verify_quote(&c, None).unwrap();
    assert_eq!(qc.reset_count, qb.reset_count + 1);
    assert_eq!(
        hex::encode(replay(&events, 23, qb.reset_count, qb.restart_count, 1).unwrap()),
        b.pcr_value
    );
    assert_eq!(
        hex::encode(replay(&events, 23, qc.reset_count, qc.restart_count, 2).unwrap()),
        c.pcr_value
    );
}

#[test]
fn verify_quote_rejects_tampering_with_specific_errors() {
    let tpm = SwTpm::start();
    let state = tempfile::tempdir().unwrap();
    let evidence = record_event(&tpm.tcti, state.path(), 23, &digest(1)).unwrap();
    verify_quote(&evidence, None).unwrap();
    let b64e = base64::engine::general_purpose::STANDARD;

    // A tampered attest: one bit flipped.
    let mut attest = b64(&evidence.attest);
    let middle = attest.len() / 2;
    attest[middle] ^= 1;
    let tampered = TpmEvidence {
        attest: b64e.encode(&attest),
        ..evidence.clone()
    };
    let err = verify_quote(&tampered, None).unwrap_err();
    assert!(matches!(err, TpmError::QuoteSignature(_)), "{err}");
    assert!(
        err.to_string()
            .contains("does not verify with the attestation key"),
        "{err}"
    );

    // A wrong nonce: the quote is genuine but for another event.
    let wrong_nonce = TpmEvidence {
        event_digest: hex::encode(digest(2)),
        ..evidence.clone()
    };
    let err = verify_quote(&wrong_nonce, None).unwrap_err();
    assert!(matches!(err, TpmError::QuoteNonce { .. }), "{err}");
    assert!(err.to_string().contains("is not the event digest"), "{err}");

    // A wrong AK, given explicitly or carried in the evidence.
    let other = p256::SecretKey::from_bytes(&[7u8; 32].into()).unwrap();
    let other_pem = other
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let err = verify_quote(&evidence, Some(&other_pem)).unwrap_err();
    assert!(matches!(err, TpmError::QuoteSignature(_)), "{err}");
    let wrong_ak = TpmEvidence {
        ak_pem: other_pem.clone(),
        ..evidence.clone()
    };
    assert!(matches!(
        verify_quote(&wrong_ak, None),
        Err(TpmError::QuoteSignature(_))
    ));
    // ... and the right AK given explicitly overrides a wrong one in the evidence.
    verify_quote(&wrong_ak, Some(&evidence.ak_pem)).unwrap();

    // A wrong PCR value.
    let wrong_value = TpmEvidence {
        pcr_value: hex::encode([0x11; 32]),
        ..evidence.clone()
    };
    let err = verify_quote(&wrong_value, None).unwrap_err();
    assert!(matches!(err, TpmError::QuotePcrDigest { .. }), "{err}");
    assert!(err.to_string().contains("not the quoted one"), "{err}");

    // A quote of PCR 23 presented as PCR 16.
    let wrong_pcr = TpmEvidence {
        pcr: 16,
        ..evidence.clone()
    };
    let err = verify_quote(&wrong_pcr, None).unwrap_err();
    assert!(
        matches!(err, TpmError::QuoteSelection { pcr: 16, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("PCRs [23]"), "{err}");

    // Garbage.
    let err = verify_quote(
        &TpmEvidence {
            attest: "!!".into(),
            ..evidence.clone()
        },
        None,
    )
    .unwrap_err();
    assert!(matches!(err, TpmError::Evidence(_)), "{err}");
    assert_eq!(err.to_string().lines().count(), 1);
}

#[test]
fn parse_attest_reads_every_field_and_rejects_other_types() {
    let tpm = SwTpm::start();
    let state = tempfile::tempdir().unwrap();
    let evidence = record_event(&tpm.tcti, state.path(), 16, &digest(1)).unwrap();
    let attest = b64(&evidence.attest);
    let parsed = quote::parse_attest(&attest).unwrap();
    assert_eq!(parsed.extra_data, digest(1).to_vec());
    assert_eq!(parsed.pcr_selection, vec![(0x000b, vec![0, 0, 1])]);
    assert!(!parsed.qualified_signer.is_empty());
    verify_quote(&evidence, None).unwrap();

    let mut wrong_type = attest.clone();
    wrong_type[5] = 0x17; // TPM_ST_ATTEST_CERTIFY
    let err = quote::parse_attest(&wrong_type).unwrap_err().to_string();
    assert!(err.contains("is not TPM_ST_ATTEST_QUOTE"), "{err}");
    let mut wrong_magic = attest.clone();
    wrong_magic[0] = 0;
    let err = quote::parse_attest(&wrong_magic).unwrap_err().to_string();
    assert!(err.contains("not generated by a TPM"), "{err}");
    let err = quote::parse_attest(&attest[..attest.len() - 1])
        .unwrap_err()
        .to_string();
    assert!(err.contains("ends inside pcrDigest"), "{err}");
    let mut longer = attest.clone();
    longer.push(0);
    let err = quote::parse_attest(&longer).unwrap_err().to_string();
    assert!(err.contains("1 trailing bytes"), "{err}");
}

#[test]
fn unreachable_tpm_fails_fast_with_a_one_line_error() {
    let mut tpm = SwTpm::start();
    let tcti = tpm.tcti.clone();
    tpm.stop();
    let state = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let err = record_event(&tcti, state.path(), 23, &digest(1)).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(err, TpmError::Unreachable { .. }), "{err}");
    let msg = err.to_string();
    assert_eq!(
        msg,
        format!("TPM unreachable at {tcti}: connection refused")
    );
    // Nothing was logged for an event that never reached the TPM.
    assert!(!event_log_path(state.path()).exists());

    let err = record_event("device:/nonexistent/tpm", state.path(), 23, &digest(1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "TPM unreachable at device:/nonexistent/tpm: no such device"
    );
    let err = record_event("bogus:x", state.path(), 23, &digest(1)).unwrap_err();
    assert!(matches!(err, TpmError::InvalidTcti { .. }), "{err}");
    let err = record_event(&tcti, state.path(), 24, &digest(1)).unwrap_err();
    assert!(matches!(err, TpmError::InvalidPcr { pcr: 24 }), "{err}");
}

#[test]
fn a_refused_extend_is_taken_back_out_of_the_log() {
    let tpm = SwTpm::start();
    let state = tempfile::tempdir().unwrap();
    let log = event_log_path(state.path());
    record_event(&tpm.tcti, state.path(), 23, &digest(1)).unwrap();
    let before = std::fs::read(&log).unwrap();
    // PC Client PCRs 17-22 cannot be extended from locality 0: the TPM refuses the extend after
    // the event was appended.
    let err = record_event(&tpm.tcti, state.path(), 17, &digest(2)).unwrap_err();
    assert!(
        matches!(
            err,
            TpmError::Command {
                op: "PCR extend",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.to_string().lines().count(), 1);
    assert_eq!(std::fs::read(&log).unwrap(), before);
    let next = record_event(&tpm.tcti, state.path(), 23, &digest(3)).unwrap();
    assert_eq!(next.event_index, 1);
    let events = read_event_log(&log).unwrap();
    verify_evidence(&next, &events, None).unwrap();
}

#[test]
fn a_different_ak_is_never_used_silently() {
    let tpm = SwTpm::start();
    let state = tempfile::tempdir().unwrap();
    let other = p256::SecretKey::from_bytes(&[9u8; 32].into()).unwrap();
    let other_pem = other
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();

    // ak.pem names a key, the TPM has none: a cleared or different TPM.
    std::fs::create_dir_all(tpm_dir(state.path())).unwrap();
    std::fs::write(ak_pem_path(state.path()), &other_pem).unwrap();
    let err = record_event(&tpm.tcti, state.path(), 23, &digest(1)).unwrap_err();
    assert!(matches!(err, TpmError::AttestationKey { .. }), "{err}");
    assert!(err.to_string().contains("absent from the TPM"), "{err}");
    assert!(!event_log_path(state.path()).exists());

    // The TPM has an AK, ak.pem names another key.
    std::fs::remove_file(ak_pem_path(state.path())).unwrap();
    let evidence = record_event(&tpm.tcti, state.path(), 23, &digest(1)).unwrap();
    std::fs::write(ak_pem_path(state.path()), &other_pem).unwrap();
    let err = record_event(&tpm.tcti, state.path(), 23, &digest(2)).unwrap_err();
    assert!(
        err.to_string().contains("holds a different key than"),
        "{err}"
    );
    assert_eq!(err.to_string().lines().count(), 1);
    // Nothing was extended or logged for the refused start.
    assert_eq!(
        read_event_log(&event_log_path(state.path())).unwrap().len(),
        1
    );
    // A fresh state dir adopts the TPM's AK.
    let state2 = tempfile::tempdir().unwrap();
    let again = record_event(&tpm.tcti, state2.path(), 23, &digest(3)).unwrap();
    assert_eq!(again.ak_pem, evidence.ak_pem);
}

#[test]
fn event_digest_is_deterministic_and_field_bound() {
    let zeros = "0".repeat(64);
    let d = event_digest("c1", "sha256:aa", "sha256:bb", "sha256:cc", "allow", &zeros);
    assert_eq!(
        d,
        event_digest("c1", "sha256:aa", "sha256:bb", "sha256:cc", "allow", &zeros)
    );
    // The exact preimage.
    let mut pre = b"vouch-event-v1".to_vec();
    for f in [
        "c1",
        "sha256:aa",
        "sha256:bb",
        "sha256:cc",
        "allow",
        zeros.as_str(),
    ] {
        pre.extend_from_slice(&(f.len() as u64).to_be_bytes());
        pre.extend_from_slice(f.as_bytes());
    }
    assert_eq!(d, <[u8; 32]>::from(sha2::Sha256::digest(&pre)));
    // Field boundaries cannot shift, fields cannot swap, every field counts.
    assert_ne!(
        event_digest("ab", "c", "", "", "allow", &zeros),
        event_digest("a", "bc", "", "", "allow", &zeros)
    );
    assert_ne!(
        event_digest("c1", "x", "y", "", "allow", &zeros),
        event_digest("c1", "y", "x", "", "allow", &zeros)
    );
    assert_ne!(
        event_digest("c1", "", "", "", "allow", &zeros),
        event_digest("c1", "", "", "", "deny", &zeros)
    );
    assert_ne!(
        event_digest("c1", "", "", "", "allow", &zeros),
        event_digest("c1", "", "", "", "allow", &"1".repeat(64))
    );
}

#[test]
fn tcti_strings_parse_like_tss_esapi() {
    use tss_esapi::tcti_ldr::TctiNameConf;
    for tcti in [
        DEFAULT_TCTI,
        "device",
        "device:",
        "swtpm:host=127.0.0.1,port=2321",
        "swtpm:port=2400",
        "swtpm",
        "mssim:host=localhost,port=2321",
        "tabrmd:bus_name=com.intel.tss2.Tabrmd,bus_type=system",
    ] {
        assert_eq!(
            device::parse_tcti(tcti).unwrap(),
            TctiNameConf::from_str(tcti).unwrap(),
            "{tcti}"
        );
    }
    for bad in ["", "bogus:x", "swtpm:port=notanumber", "devicex:/dev/tpm0"] {
        assert!(TctiNameConf::from_str(bad).is_err(), "{bad}");
        let err = device::parse_tcti(bad).unwrap_err();
        assert!(matches!(err, TpmError::InvalidTcti { .. }), "{bad}: {err}");
    }
}

#[test]
fn error_messages_are_one_line() {
    let errors = [
        TpmError::Unreachable {
            tcti: "swtpm:host=127.0.0.1,port=2321".into(),
            reason: "connection refused".into(),
        },
        TpmError::InvalidPcr { pcr: 30 },
        TpmError::InvalidTcti { tcti: "x".into() },
    ];
    for e in errors {
        assert_eq!(e.to_string().lines().count(), 1, "{e}");
    }
    assert_eq!(
        TpmError::Unreachable {
            tcti: "swtpm:host=127.0.0.1,port=2321".into(),
            reason: "connection refused".into(),
        }
        .to_string(),
        "TPM unreachable at swtpm:host=127.0.0.1,port=2321: connection refused"
    );
}

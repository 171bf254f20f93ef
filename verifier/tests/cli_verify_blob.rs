//! `vouch verify-blob` end to end: every sigstore-conformance bundle-verify case through the
//! binary (the path as text output, the digest as JSON), exit codes 0/1/2, one line saying why,
//! unreadable inputs, cosign's flag rules, and the trusted root the node's policy names.

mod sigstore_cases;

use std::path::Path;
use std::process::{Command, Output};

use sigstore_cases::{cases, expected_failure, Case, DEFAULT_IDENTITY, DEFAULT_ISSUER};

fn vouch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(args)
        .env_remove("VOUCH_CONFIG")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// The arguments the conformance client passes, as cosign names them.
fn case_args(case: &Case, artifact: &str) -> Vec<String> {
    let mut args = vec![
        "verify-blob".to_string(),
        artifact.to_string(),
        "--bundle".to_string(),
        path(&case.bundle),
        "--trusted-root".to_string(),
        path(&case.trusted_root),
    ];
    match &case.key {
        Some(key) => args.extend(["--key".to_string(), path(key)]),
        None => args.extend([
            "--certificate-identity".to_string(),
            case.identity.clone(),
            "--certificate-oidc-issuer".to_string(),
            case.issuer.clone(),
        ]),
    }
    args
}

fn run(args: &[String]) -> Output {
    vouch(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// A refusal exits 1; a trusted root or key that cannot be used exits 2.
fn expected_exit(kind: &str) -> i32 {
    match kind {
        "trusted-root" | "key" | "unreadable" | "policy" => 2,
        _ => 1,
    }
}

#[test]
fn every_conformance_case_exits_as_named_with_one_line() {
    let mut mismatches = Vec::new();
    for case in cases() {
        let expected = if case.expect_verified() {
            (0, None)
        } else {
            let kind = expected_failure(&case.name).unwrap_or("(not listed)");
            (expected_exit(kind), Some(kind))
        };

        let text = run(&case_args(&case, &path(&case.artifact)));
        let lines = if text.status.success() {
            (stdout(&text), stderr(&text))
        } else {
            (stderr(&text), stdout(&text))
        };
        if text.status.code() != Some(expected.0)
            || lines.0.lines().count() != 1
            || !lines.1.is_empty()
        {
            mismatches.push(format!(
                "{} [path]: exit {:?}, expected {}; out {:?} err {:?}",
                case.name,
                text.status.code(),
                expected.0,
                stdout(&text),
                stderr(&text)
            ));
        }

        let mut args = case_args(&case, &case.digest());
        args.extend(["--output".to_string(), "json".to_string()]);
        let json = run(&args);
        let value: serde_json::Value = match serde_json::from_slice(&json.stdout) {
            Ok(v) => v,
            Err(e) => {
                mismatches.push(format!(
                    "{} [digest]: not JSON ({e}): {}",
                    case.name,
                    stdout(&json)
                ));
                continue;
            }
        };
        let kind = value["kind"].as_str();
        if json.status.code() != Some(expected.0)
            || value["verified"] != serde_json::json!(expected.0 == 0)
            || kind != expected.1
            || !json.stderr.is_empty()
        {
            mismatches.push(format!(
                "{} [digest]: exit {:?}, expected {} ({:?}): {value}",
                case.name,
                json.status.code(),
                expected.0,
                expected.1
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

fn happy() -> Case {
    cases()
        .into_iter()
        .find(|c| c.name == "rekor2-happy-path")
        .unwrap()
}

#[test]
fn verified_prints_one_line_on_stdout_naming_signer_and_log() {
    let case = happy();
    let out = run(&case_args(&case, &path(&case.artifact)));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "vouch: verified {}: signed by {DEFAULT_IDENTITY:?} (issuer {DEFAULT_ISSUER:?}), \
             logged in log2025-alpha1.rekor.sigstage.dev at index 735, signed at 2025-06-12T12:02:20Z\n",
            path(&case.artifact)
        )
    );
    assert_eq!(stderr(&out), "");
}

#[test]
fn output_json_may_follow_the_verb_and_its_arguments() {
    // The issue's synopsis puts `--output json` last; before the verb is the same flag.
    let case = happy();
    let mut last = case_args(&case, &path(&case.artifact));
    last.extend(["--output".to_string(), "json".to_string()]);
    let mut first = vec!["--output".to_string(), "json".to_string()];
    first.extend(case_args(&case, &path(&case.artifact)));
    let mut values = Vec::new();
    for args in [last, first] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "");
        assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(value["verified"], true);
        assert_eq!(value["signer"]["identity"], DEFAULT_IDENTITY);
        assert_eq!(
            value["log_entries"][0]["log"],
            "log2025-alpha1.rekor.sigstage.dev"
        );
        values.push(value);
    }
    assert_eq!(values[0], values[1]);

    // A refusal, too, is one JSON object on stdout when --output json comes last.
    let mut args = case_args(
        &case,
        "sha256:0000000000000000000000000000000000000000000000000000000000000000",
    );
    args.extend(["--output".to_string(), "json".to_string()]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "");
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["verified"], false);
    assert_eq!(value["kind"], "digest-mismatch");
}

#[test]
fn wrong_identity_is_refused_with_exit_1_and_the_reason() {
    let case = happy();
    let mut args = case_args(&case, &path(&case.artifact));
    let at = args
        .iter()
        .position(|a| a == "--certificate-identity")
        .unwrap();
    args[at] = "--certificate-identity-regexp".to_string();
    args[at + 1] = "https://github.com/acme/.*".to_string();
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        format!(
            "vouch: refused {}: certificate identity {DEFAULT_IDENTITY:?} does not match \
             /^(?:https://github.com/acme/.*)$/\n",
            path(&case.artifact)
        )
    );
}

#[test]
fn unreadable_inputs_exit_2() {
    let case = happy();
    let dir = tempfile::tempdir().unwrap();
    let missing = path(&dir.path().join("missing"));
    let artifact = path(&case.artifact);

    let mut no_file = case_args(&case, &missing);
    let out = run(&no_file);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "vouch verify-blob: cannot read {missing}: No such file or directory (os error 2)\n"
        )
    );
    no_file.extend(["--output".to_string(), "json".to_string()]);
    let out = run(&no_file);
    assert_eq!(out.status.code(), Some(2));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["kind"], "unreadable");
    assert_eq!(value["verified"], false);

    for flag in ["--bundle", "--trusted-root"] {
        let mut args = case_args(&case, &artifact);
        let at = args.iter().position(|a| a == flag).unwrap();
        args[at + 1] = missing.clone();
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("cannot read"),
            "{flag}: {}",
            stderr(&out)
        );
    }

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{").unwrap();
    let mut args = case_args(&case, &artifact);
    let at = args.iter().position(|a| a == "--trusted-root").unwrap();
    args[at + 1] = path(&bad);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).starts_with(&format!(
        "vouch verify-blob: {}: unusable trusted root: not JSON",
        path(&bad)
    )));

    let out = vouch(&[
        "verify-blob",
        "sha256:1234",
        "--bundle",
        &path(&case.bundle),
        "--key",
        &path(&bad),
        "--trusted-root",
        &path(&case.trusted_root),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not a digest"), "{}", stderr(&out));

    let out = vouch(&[
        "verify-blob",
        &case.digest(),
        "--bundle",
        &path(&case.bundle),
        "--key",
        &path(&bad),
        "--trusted-root",
        &path(&case.trusted_root),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with(&format!(
            "vouch verify-blob: {}: unusable public key",
            path(&bad)
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn flags_follow_cosign() {
    let case = happy();
    let artifact = path(&case.artifact);
    let key = path(&sigstore_cases::data().join("cosign-p256.pub"));
    let base = [
        "verify-blob",
        artifact.as_str(),
        "--bundle",
        case.bundle.to_str().unwrap(),
    ];
    let refusals: [(&[&str], &str); 5] = [
        (
            &[
                "--key",
                &key,
                "--certificate-identity",
                "x",
                "--certificate-oidc-issuer",
                "y",
            ],
            "give --key or the --certificate-* flags, not both",
        ),
        (
            &[
                "--certificate-identity",
                "x",
                "--certificate-identity-regexp",
                "x",
                "--certificate-oidc-issuer",
                "y",
            ],
            "give --certificate-identity or --certificate-identity-regexp, not both",
        ),
        (
            &["--certificate-identity", "x"],
            "--certificate-oidc-issuer is missing",
        ),
        (
            &[
                "--certificate-identity-regexp",
                "(",
                "--certificate-oidc-issuer",
                "y",
            ],
            "invalid certificate identity regular expression",
        ),
        (
            &[
                "--certificate-identity-regexp",
                r"https://github\.com/acme/.*)|(.*",
                "--certificate-oidc-issuer",
                "y",
            ],
            r#"invalid certificate identity regular expression: "https://github\\.com/acme/.*)|(.*" is not a regular expression: unopened group"#,
        ),
    ];
    for (flags, says) in refusals {
        let mut args = base.to_vec();
        args.extend_from_slice(flags);
        let out = vouch(&args);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{flags:?}: {}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1);
    }
    let out = vouch(&base);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("give --key, or --certificate-identity"),
        "{}",
        stderr(&out)
    );
}

fn witness_vkeys() -> Vec<String> {
    std::fs::read_to_string(sigstore_cases::data().join("sigstore-witnesses/vkeys.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn with_witnesses(mut args: Vec<String>, vkeys: &[String], quorum: &str) -> Vec<String> {
    for vkey in vkeys {
        args.extend(["--witness".to_string(), vkey.clone()]);
    }
    args.extend(["--witness-quorum".to_string(), quorum.to_string()]);
    args
}

#[test]
fn witnesses_and_a_quorum_are_flags() {
    let cases = cases();
    let cosigned = cases
        .iter()
        .find(|c| c.name == "rekor2-dsse-happy-path")
        .unwrap();
    let args = with_witnesses(
        case_args(cosigned, &path(&cosigned.artifact)),
        &witness_vkeys(),
        "3",
    );
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(
            "(cosigned by witness.stagemole.eu, staging.witness.transparency.goog/ring-any-bells, \
             witness.navigli.sunlight.geomys.org)"
        ),
        "{}",
        stdout(&out)
    );
    let mut json_args = args.clone();
    json_args.extend(["--output".to_string(), "json".to_string()]);
    let value: serde_json::Value = serde_json::from_slice(&run(&json_args).stdout).unwrap();
    assert_eq!(
        value["log_entries"][0]["witnesses"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "{value}"
    );

    // rekor2-happy-path's checkpoint has no cosignature: a quorum of 1 refuses it.
    let case = happy();
    let out = run(&with_witnesses(
        case_args(&case, &path(&case.artifact)),
        &witness_vkeys(),
        "1",
    ));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("is cosigned by 0 of the known witnesses, fewer than the quorum of 1"),
        "{}",
        stderr(&out)
    );

    // Unusable witness flags are input errors, in one line.
    let vkeys = witness_vkeys();
    for (witnesses, quorum, says) in [
        (
            vec!["witness.example+0000+AAAA".to_string()],
            "0",
            "invalid witness key \"witness.example+0000+AAAA\": the key ID is not 8 hexadecimal digits",
        ),
        (
            vec![vkeys[0].clone()],
            "2",
            "a witness quorum of 2 needs as many witness keys; 1 given",
        ),
    ] {
        let out = run(&with_witnesses(
            case_args(&case, &path(&case.artifact)),
            &witnesses,
            quorum,
        ));
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert_eq!(stderr(&out), format!("vouch verify-blob: {says}\n"));
    }
}

/// A node whose policy names trusted roots through its keyless authorities.
fn node(authorities: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "policy = \"policy.toml\"\nstate_dir = \"state\"\n",
    )
    .unwrap();
    let mut policy = String::from(
        "version = 1\ndefault = \"deny\"\n\n[[rule]]\nname = \"signed\"\nimages = [\"**\"]\naction = \"verify\"\n",
    );
    for (i, authority) in authorities.iter().enumerate() {
        policy.push_str(&format!(
            "[[rule.authority]]\nname = \"a{i}\"\n{authority}\n"
        ));
    }
    std::fs::write(dir.path().join("policy.toml"), policy).unwrap();
    dir
}

fn keyless_authority(root: &Path) -> String {
    format!(
        "keyless = {{ trusted_root = {:?}, issuer = \"https://token.actions.githubusercontent.com\", subject_regex = \".*\" }}",
        path(root)
    )
}

fn without_trusted_root(case: &Case, config: &Path) -> Vec<String> {
    let mut args = case_args(case, &path(&case.artifact));
    let at = args.iter().position(|a| a == "--trusted-root").unwrap();
    args.drain(at..at + 2);
    args.extend(["--config".to_string(), path(config)]);
    args
}

#[test]
fn without_trusted_root_the_policys_keyless_authority_names_it() {
    let case = happy();
    let dir = node(&[
        &keyless_authority(&case.trusted_root),
        "key = \"release.pub\"",
    ]);
    let out = run(&without_trusted_root(
        &case,
        &dir.path().join("config.toml"),
    ));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // The public-good root does not list the staging log this bundle was logged in.
    let dir = node(&[&keyless_authority(&sigstore_cases::public_good_root())]);
    let out = run(&without_trusted_root(
        &case,
        &dir.path().join("config.toml"),
    ));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("which the trusted root does not list"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn without_trusted_root_an_ambiguous_or_absent_one_exits_2() {
    let case = happy();
    let two = node(&[
        &keyless_authority(&case.trusted_root),
        &keyless_authority(&sigstore_cases::public_good_root()),
    ]);
    let out = run(&without_trusted_root(
        &case,
        &two.path().join("config.toml"),
    ));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("names 2 trusted roots"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).ends_with("choose one\n"), "{}", stderr(&out));

    let keys_only = node(&["key = \"release.pub\""]);
    let out = run(&without_trusted_root(
        &case,
        &keys_only.path().join("config.toml"),
    ));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("has no keyless authority naming one"),
        "{}",
        stderr(&out)
    );
}

//! `vouch attest` from the command line, without a registry: the predicate file is checked first,
//! and every error is one line with exit status 2.

use std::process::{Command, Output};

fn vouch(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vouch"));
    cmd.args(args)
        .env_remove("VOUCH_CONFIG")
        .env_remove("COSIGN_PASSWORD");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn attest_errors_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("policy = \"policy.toml\"\nstate_dir = \"state\"\n[registry]\nplain_http = [\"127.0.0.1:{port}\"]\ntimeout_ms = 2000\n"),
    )
    .unwrap();
    let prefix = dir.path().join("k");
    let out = vouch(
        &["keygen", prefix.to_str().unwrap()],
        &[("COSIGN_PASSWORD", "pw")],
    );
    assert_eq!(out.status.code(), Some(0));
    let key = dir.path().join("k.key");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let sbom = write(
        "sbom.json",
        r#"{"bomFormat":"CycloneDX","specVersion":"1.4"}"#,
    );
    let not_json = write("tag-value.spdx", "SPDXVersion: SPDX-2.3\n");
    let grype = write("grype.json", r#"{"matches":[]}"#);
    let image = format!("127.0.0.1:{port}/team/app:v1");
    let run = |predicate: &str, kind: &str, envs: &[(&str, &str)]| {
        vouch(
            &[
                "--config",
                config.to_str().unwrap(),
                "attest",
                &image,
                "--predicate",
                predicate,
                "--type",
                kind,
                "--key",
                key.to_str().unwrap(),
            ],
            envs,
        )
    };
    let one_line = |out: &Output, want: &str| {
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("vouch attest: "), "{err}");
        assert!(err.contains(want), "{want}: {err}");
    };
    let pw = [("COSIGN_PASSWORD", "pw")];
    one_line(&run(&not_json, "spdxjson", &pw), "not valid JSON");
    one_line(&run(&grype, "vuln", &pw), "no scanner");
    one_line(
        &run("/nonexistent/sbom.json", "cyclonedx", &pw),
        "/nonexistent/sbom.json",
    );
    one_line(&run(&sbom, "cyclonedx", &[]), "COSIGN_PASSWORD");
    one_line(&run(&sbom, "cyclonedx", &pw), "registry unreachable");
    // An unknown --type is clap's usage error.
    assert_eq!(run(&sbom, "slsaprovenance", &pw).status.code(), Some(2));
}

#[test]
fn policy_check_describes_sbom_rules_and_refuses_them_on_allow_rules() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "version = 1\n[[rule]]\nname = \"prod\"\nimages = [\"registry.example.com/**\"]\naction = \"verify\"\n[[rule.authority]]\nname = \"release\"\nkey = \"/etc/vouch/keys/release.pub\"\n[rule.sbom]\nmin_fields = [\"supplier\", \"purl\"]\ndeny_licenses = [\"GPL-3.0-only\"]\ndeny_severity = \"critical\"\n",
    )
    .unwrap();
    let out = vouch(&["policy", "check", &policy.display().to_string()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "SBOM required",
        "supplier, purl",
        "GPL-3.0-only",
        "critical",
    ] {
        assert!(text.contains(needle), "expected {needle:?} in {text}");
    }
    std::fs::write(
        &policy,
        "version = 1\n[[rule]]\nname = \"open\"\nimages = [\"**\"]\naction = \"allow\"\n[rule.sbom]\nrequire = true\n",
    )
    .unwrap();
    let out = vouch(&["policy", "check", &policy.display().to_string()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 6") && err.contains("action = \"verify\""),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

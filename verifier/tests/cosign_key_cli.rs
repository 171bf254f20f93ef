//! `vouch keygen`: files, modes, output formats and exit codes.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use vouch_verifier::cosign_key::SigningKey;

fn vouch(args: &[&str], password: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vouch"));
    cmd.args(args).env_remove("COSIGN_PASSWORD");
    if let Some(password) = password {
        cmd.env("COSIGN_PASSWORD", password);
    }
    cmd.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn cosign_key_cli_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("release");
    let prefix_str = prefix.to_str().unwrap();
    let key_path = dir.path().join("release.key");
    let pub_path = dir.path().join("release.pub");

    // No COSIGN_PASSWORD: exit 2, one line saying what to set, no files.
    let out = vouch(&["keygen", prefix_str], None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("COSIGN_PASSWORD"), "{}", stderr(&out));
    assert!(!key_path.exists() && !pub_path.exists());

    // JSON output names the two files.
    let out = vouch(&["--output", "json", "keygen", prefix_str], Some("pw"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["private_key"], key_path.to_str().unwrap());
    assert_eq!(json["public_key"], pub_path.to_str().unwrap());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&key_path), 0o600);
    let pem = std::fs::read(&key_path).unwrap();
    assert!(pem.starts_with(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
    let key = SigningKey::from_encrypted_pem(&pem, b"pw").unwrap();
    assert_eq!(
        std::fs::read_to_string(&pub_path).unwrap(),
        key.public_key_pem().unwrap()
    );

    // Existing files: refused without --force, exit 2, one line, files unchanged.
    let out = vouch(&["keygen", prefix_str], Some("pw"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&key_path).unwrap(), pem);

    // --force replaces them; text output prints both paths; an empty password is allowed (with a warning).
    let out = vouch(&["keygen", "--force", prefix_str], Some(""));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(stdout.contains(key_path.to_str().unwrap()), "{stdout}");
    assert!(stdout.contains(pub_path.to_str().unwrap()), "{stdout}");
    assert!(stderr(&out).contains("empty"), "{}", stderr(&out));
    assert_ne!(std::fs::read(&key_path).unwrap(), pem);
    assert_eq!(mode(&key_path), 0o600);
}

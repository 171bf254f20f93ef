//! `vouch verify` and `vouch sign` from the command line, without a registry: verdict lines, exit
//! codes, `--policy`, `--namespace`, `--output json`, and errors when a registry cannot be reached.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

const POLICY: &str = r#"version = 1
default = "deny"

[[rule]]
name = "acme"
images = ["ghcr.io/acme/**"]
action = "allow"

[[rule]]
name = "no-debug"
images = ["ghcr.io/acme/debug/**"]
action = "deny"

[[rule]]
name = "busybox-in-prod"
images = ["busybox"]
namespaces = ["prod-*"]
action = "deny"
mode = "audit"

[[rule]]
name = "busybox"
images = ["busybox"]
action = "allow"
"#;

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

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A node: `config.toml` naming `policy.toml` and a private state directory.
struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn new(policy: &str, registry: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            format!("policy = \"policy.toml\"\nstate_dir = \"state\"\n{registry}"),
        )
        .unwrap();
        std::fs::write(dir.path().join("policy.toml"), policy).unwrap();
        Node { dir }
    }

    fn config(&self) -> String {
        self.dir.path().join("config.toml").display().to_string()
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn verify(&self, extra: &[&str]) -> Output {
        let config = self.config();
        let mut args = vec!["--config", config.as_str(), "verify"];
        args.extend_from_slice(extra);
        vouch(&args, &[])
    }
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn allowed_image_exits_0_naming_digest_and_rules() {
    let node = Node::new(POLICY, "");
    let out = node.verify(&[&format!("ghcr.io/acme/app@{DIGEST}")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("vouch: allowed ghcr.io/acme/app@{DIGEST} (rules: acme)\n")
    );
}

#[test]
fn denied_image_exits_1_with_the_shims_denial_line() {
    let node = Node::new(POLICY, "");
    let out = node.verify(&[&format!("ghcr.io/acme/debug/sh:1@{DIGEST}")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("vouch: denied ghcr.io/acme/debug/sh@{DIGEST}: image matches a deny rule (rule \"no-debug\")\n")
    );
    let out = node.verify(&[&format!("quay.io/x/y@{DIGEST}")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).ends_with("(rule \"default\")\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn namespace_selects_rules_and_audited_denials_are_shown() {
    let node = Node::new(POLICY, "");
    let image = format!("busybox@{DIGEST}");
    let out = node.verify(&[&image, "--namespace", "prod-eu"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "vouch: allowed docker.io/library/busybox@{DIGEST} (rules: busybox)\naudit: vouch: denied docker.io/library/busybox@{DIGEST}: image matches a deny rule (rule \"busybox-in-prod\")\n"
        )
    );
    let out = node.verify(&[&image, "--namespace", "dev"]);
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
}

#[test]
fn json_output_is_the_verdict() {
    let node = Node::new(POLICY, "");
    let config = node.config();
    let out = vouch(
        &[
            "--config",
            &config,
            "--output",
            "json",
            "verify",
            &format!("ghcr.io/acme/debug/sh@{DIGEST}"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "deny");
    assert_eq!(v["rule"], "no-debug");
    assert_eq!(v["subject"], format!("ghcr.io/acme/debug/sh@{DIGEST}"));
    let out = vouch(
        &[
            "--config",
            &config,
            "--output",
            "json",
            "verify",
            &format!("ghcr.io/acme/app@{DIGEST}"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "allow");
    assert_eq!(v["rules"][0], "acme");
    assert_eq!(v["image"]["digest"], DIGEST);
    assert!(v["policy_digest"].as_str().unwrap().len() > 10);
}

#[test]
fn policy_option_replaces_the_configs_policy_only() {
    let node = Node::new(POLICY, "");
    let strict = node.file(
        "strict.toml",
        "version = 1\n[[rule]]\nname = \"nothing-from-acme\"\nimages = [\"ghcr.io/acme/**\"]\naction = \"deny\"\n",
    );
    let image = format!("ghcr.io/acme/app@{DIGEST}");
    let out = node.verify(&[&image, "--policy", strict.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("(rule \"nothing-from-acme\")"),
        "{}",
        stdout(&out)
    );
    // A broken policy given this way is refused as the shim refuses it: naming file and line.
    let broken = node.file("broken.toml", "version = 1\n[[rule]]\nname = 3\n");
    let out = node.verify(&[&image, "--policy", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = stdout(&out);
    assert!(line.contains(&broken.display().to_string()), "{line}");
    assert!(line.contains("line 3"), "{line}");
    assert!(line.trim_end().ends_with("(rule \"policy\")"), "{line}");
    // The node's own policy is untouched.
    assert_eq!(node.verify(&[&image]).status.code(), Some(0));
}

#[test]
fn broken_node_config_denies_as_at_a_start() {
    let node = Node::new(POLICY, "");
    std::fs::write(node.dir.path().join("config.toml"), "polcy = 1\n").unwrap();
    let out = node.verify(&[&format!("ghcr.io/acme/app@{DIGEST}")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("(rule \"config\")"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn unresolvable_tag_is_an_error_not_a_verdict() {
    let port = closed_port();
    let node = Node::new(
        POLICY,
        &format!("[registry]\nplain_http = [\"127.0.0.1:{port}\"]\ntimeout_ms = 2000\n"),
    );
    let out = node.verify(&[&format!("127.0.0.1:{port}/team/app:v1")]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("vouch verify: cannot resolve 127.0.0.1:{port}/team/app:v1: registry unreachable: 127.0.0.1:{port}")),
        "{err}"
    );
    // An invalid reference too.
    let out = node.verify(&["Not/Valid"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid image reference"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn verify_rule_with_registry_down_is_denied_as_unreachable() {
    let port = closed_port();
    let keys = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/signatures/containers-image/cosign.pub");
    let policy = format!(
        "version = 1\n[[rule]]\nname = \"signed\"\nimages = [\"127.0.0.1:{port}/**\"]\naction = \"verify\"\n[[rule.authority]]\nname = \"release\"\nkey = \"{}\"\n",
        keys.display()
    );
    let node = Node::new(
        &policy,
        &format!("[registry]\nplain_http = [\"127.0.0.1:{port}\"]\ntimeout_ms = 2000\n"),
    );
    let out = node.verify(&[&format!("127.0.0.1:{port}/team/app@{DIGEST}")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = stdout(&out);
    assert!(
        line.starts_with(&format!(
            "vouch: denied 127.0.0.1:{port}/team/app@{DIGEST}: "
        )),
        "{line}"
    );
    assert!(line.contains("registry unreachable"), "{line}");
    assert!(line.trim_end().ends_with("(rule \"signed\")"), "{line}");
}

#[test]
fn sign_errors_exit_2_with_one_line() {
    let port = closed_port();
    let node = Node::new(
        POLICY,
        &format!("[registry]\nplain_http = [\"127.0.0.1:{port}\"]\ntimeout_ms = 2000\n"),
    );
    let config = node.config();
    let prefix = node.dir.path().join("k");
    let out = vouch(
        &["keygen", prefix.to_str().unwrap()],
        &[("COSIGN_PASSWORD", "pw")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let key = node.dir.path().join("k.key");
    let image = format!("127.0.0.1:{port}/team/app:v1");
    let args = [
        "--config",
        config.as_str(),
        "sign",
        image.as_str(),
        "--key",
        key.to_str().unwrap(),
    ];
    let one_line = |out: &Output, want: &str| {
        assert_eq!(out.status.code(), Some(2), "{}", stderr(out));
        let err = stderr(out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("vouch sign: "), "{err}");
        assert!(err.contains(want), "{err}");
    };
    // No password in the environment.
    one_line(&vouch(&args, &[]), "COSIGN_PASSWORD");
    // Wrong password.
    one_line(
        &vouch(&args, &[("COSIGN_PASSWORD", "nope")]),
        "wrong password",
    );
    // Registry down.
    one_line(
        &vouch(&args, &[("COSIGN_PASSWORD", "pw")]),
        "registry unreachable",
    );
}

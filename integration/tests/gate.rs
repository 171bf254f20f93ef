//! The policy gate at container start: denials fail at create with the rule named, audit mode runs
//! and logs, a broken policy refuses every start, exempt images and pod sandboxes pass; through
//! `ctr` and through CRI `CreateContainer`, leaving nothing behind.

mod common;

use std::time::Duration;

use common::*;
use vouch_integration::{Rig, RigOptions};

/// Pushes busybox as `repo:v1`, pulls it into `ns`, and returns the reference and its digest.
fn image_in(rig: &Rig, ns: &str, repo: &str) -> (String, String) {
    rig.push_busybox("busybox", &format!("{repo}:v1")).unwrap();
    let image = rig.image(&format!("{repo}:v1"));
    rig.pull(ns, &image).unwrap();
    let ls = stdout(&rig.ctr(ns, &["images", "ls"]).unwrap());
    let digest = ls
        .lines()
        .find(|l| l.starts_with(&image))
        .and_then(|l| l.split_whitespace().find(|f| f.starts_with("sha256:")))
        .expect("digest in ctr images ls")
        .to_string();
    (image, digest)
}

fn policy(reg: &str, extra: &str) -> String {
    format!(
        r#"version = 1
default = "deny"
mode = "enforce"
sandbox = "exempt"
sandbox_images = ["{reg}/pause"]

[[rule]]
name = "team-images"
images = ["{reg}/team/**"]
action = "allow"

[[rule]]
name = "no-debug"
images = ["{reg}/debug/**"]
action = "deny"
{extra}
"#
    )
}

fn run_with(
    rig: &Rig,
    ns: &str,
    config: &std::path::Path,
    image: &str,
    id: &str,
) -> std::process::Output {
    rig.ctr(
        ns,
        &[
            "run",
            "--rm",
            "--runtime",
            VOUCH,
            "--runtime-config-path",
            &config.display().to_string(),
            image,
            id,
            "echo",
            "ran",
        ],
    )
    .unwrap()
}

#[test]
fn denied_image_fails_at_create_with_digest_and_rule_named_and_leaves_nothing() {
    let rig = shared_rig();
    let ns = rig.namespace();
    let (image, digest) = image_in(&rig, &ns, "debug/busybox");
    let dir = tempfile::tempdir().unwrap();
    let config = write_vouch_config(&rig, dir.path(), &policy(&rig.registry(), ""));
    let out = run_with(&rig, &ns, &config, &image, "denied");
    assert!(!out.status.success());
    let err = stderr(&out);
    let expected = format!(
        "vouch: denied {}/debug/busybox@{digest}: image matches a deny rule (rule \"no-debug\")",
        rig.registry()
    );
    assert!(err.contains(&expected), "expected {expected:?} in {err:?}");
    assert!(err.contains("failed precondition"), "{err}");
    assert_eq!(stdout(&out).trim(), "", "the container must not have run");
    assert_nothing_left(&rig, &ns);
}

#[test]
fn allowed_image_runs_and_unmatched_image_falls_to_the_default() {
    let rig = shared_rig();
    let ns = rig.namespace();
    let (team, _) = image_in(&rig, &ns, "team/allowed");
    let (other, other_digest) = image_in(&rig, &ns, "other/tool");
    let dir = tempfile::tempdir().unwrap();
    let config = write_vouch_config(&rig, dir.path(), &policy(&rig.registry(), ""));
    let ok = run_with(&rig, &ns, &config, &team, "allowed");
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_eq!(stdout(&ok).trim(), "ran");
    let no = run_with(&rig, &ns, &config, &other, "unmatched");
    assert!(!no.status.success());
    let err = stderr(&no);
    assert!(
        err.contains(&format!("/other/tool@{other_digest}")),
        "{err}"
    );
    assert!(err.contains("(rule \"default\")"), "{err}");
    assert_nothing_left(&rig, &ns);
}

#[test]
fn deny_wins_over_allow_when_both_rules_match() {
    let rig = shared_rig();
    let ns = rig.namespace();
    let (image, _) = image_in(&rig, &ns, "team/debug-tools");
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "\n[[rule]]\nname = \"no-team-debug\"\nimages = [\"{}/team/debug-*\"]\naction = \"deny\"\n",
        rig.registry()
    );
    let config = write_vouch_config(&rig, dir.path(), &policy(&rig.registry(), &extra));
    let out = run_with(&rig, &ns, &config, &image, "both");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("(rule \"no-team-debug\")"),
        "{}",
        stderr(&out)
    );
    assert_nothing_left(&rig, &ns);
}

#[test]
fn audit_mode_runs_a_denied_image_and_logs_the_would_be_denial() {
    let rig = shared_rig();
    let ns = rig.namespace();
    let (image, digest) = image_in(&rig, &ns, "debug/audited");
    let dir = tempfile::tempdir().unwrap();
    let text = policy(&rig.registry(), "").replace("mode = \"enforce\"", "mode = \"audit\"");
    let config = write_vouch_config(&rig, dir.path(), &text);
    let out = run_with(&rig, &ns, &config, &image, "audited");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "ran");
    let line = format!(
        "audit: vouch: denied {}/debug/audited@{digest}",
        rig.registry()
    );
    assert!(
        eventually(Duration::from_secs(5), || rig
            .containerd_log()
            .contains(&line)),
        "no audit line {line:?} in containerd's log"
    );
    assert_nothing_left(&rig, &ns);
}

#[test]
fn broken_policy_refuses_every_start_naming_file_and_line() {
    let rig = shared_rig();
    let ns = rig.namespace();
    let (image, _) = image_in(&rig, &ns, "team/broken");
    let dir = tempfile::tempdir().unwrap();
    let config = write_vouch_config(&rig, dir.path(), "version = 1\ndefault = \"maybe\"\n");
    let out = run_with(&rig, &ns, &config, &image, "broken");
    assert!(!out.status.success());
    let err = stderr(&out);
    let path = dir.path().join("policy.toml");
    assert!(
        err.contains(&format!("{}: line 2", path.display())),
        "{err}"
    );
    assert!(err.contains("(rule \"policy\")"), "{err}");

    std::fs::remove_file(&path).unwrap();
    let missing = run_with(&rig, &ns, &config, &image, "missing");
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains(&path.display().to_string()),
        "{}",
        stderr(&missing)
    );
    assert_nothing_left(&rig, &ns);
}

#[test]
fn policy_change_applies_at_the_next_start_without_restarts() {
    let rig = shared_rig();
    let ns = rig.namespace();
    let (image, _) = image_in(&rig, &ns, "debug/flip");
    let dir = tempfile::tempdir().unwrap();
    let config = write_vouch_config(&rig, dir.path(), &policy(&rig.registry(), ""));
    assert!(!run_with(&rig, &ns, &config, &image, "flip1")
        .status
        .success());
    let allow = format!(
        "version = 1\ndefault = \"deny\"\n[[rule]]\nname = \"all\"\nimages = [\"{}/**\"]\naction = \"allow\"\n",
        rig.registry()
    );
    std::fs::write(dir.path().join("policy.toml"), allow).unwrap();
    let out = run_with(&rig, &ns, &config, &image, "flip2");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_nothing_left(&rig, &ns);
}

#[test]
fn exempt_image_passes_a_default_deny_policy() {
    let rig = shared_rig();
    let ns = rig.namespace();
    let (image, _) = image_in(&rig, &ns, "infra/agent");
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "version = 1\ndefault = \"deny\"\nexempt = [\"{}/infra/*\"]\n",
        rig.registry()
    );
    let config = write_vouch_config(&rig, dir.path(), &text);
    let out = run_with(&rig, &ns, &config, &image, "exempt");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_nothing_left(&rig, &ns);
}

/// containerd's CRI plugin creates the task (and so calls the shim) in StartContainer, not in
/// CreateContainer: the denial is the StartContainer error a kubelet reports.
#[test]
fn cri_denied_image_fails_start_container_with_the_rule_named_while_the_sandbox_passes() {
    let rig = Rig::start().unwrap();
    let reg = rig.registry();
    rig.write_policy(&policy(&reg, "")).unwrap();
    rig.push_busybox("busybox", "team/app:v1").unwrap();
    rig.push_busybox("busybox", "debug/busybox:v1").unwrap();
    let cri = rig.cri().unwrap();
    let good = rig.image("team/app:v1");
    let bad = rig.image("debug/busybox:v1");
    cri.pull_image(&good).unwrap();
    cri.pull_image(&bad).unwrap();
    // The sandbox (pause) image matches no rule and the default is deny: it passes as a sandbox
    // of one of the policy's `sandbox_images`.
    let pod = cri.run_pod("gated", "prod-web", "vouch").unwrap();
    let bad_id = cri
        .create_container(&pod, "bad", &bad, &["echo"], &["never"])
        .unwrap();
    let err = cri
        .start_container(&bad_id)
        .expect_err("a denied image must not start");
    let msg = err.message().to_string();
    assert!(
        msg.contains(&format!("vouch: denied {reg}/debug/busybox@sha256:")),
        "{msg}"
    );
    assert!(msg.contains("(rule \"no-debug\")"), "{msg}");
    let status = cri.container_status(&bad_id).unwrap();
    assert_ne!(
        status.state,
        vouch_integration::cri_api::ContainerState::ContainerRunning as i32
    );
    assert!(
        rig.mounts_under_root().iter().all(|m| !m.contains(&bad_id)),
        "the denied container's rootfs is still mounted"
    );

    let ok = cri
        .create_container(&pod, "good", &good, &["echo"], &["fine"])
        .unwrap();
    cri.start_container(&ok).unwrap();
    let status = cri.wait_exited(&ok, Duration::from_secs(30)).unwrap();
    assert_eq!(status.exit_code, 0);
    assert_eq!(cri.container_log(&ok).unwrap().trim(), "fine");
    cri.remove_container(&bad_id).unwrap();
    cri.stop_pod(&pod).unwrap();
    cri.remove_pod(&pod).unwrap();
    assert!(eventually(Duration::from_secs(10), || rig
        .shim_pids()
        .is_empty()));
    assert!(rig
        .mounts_under_root()
        .iter()
        .all(|m| !m.contains("/io.containerd.runtime.v2.task/")));
}

#[test]
fn cri_sandbox_in_verify_mode_is_decided_like_any_container() {
    let rig = Rig::start_with(RigOptions {
        policy: Some("version = 1\ndefault = \"deny\"\nsandbox = \"verify\"\n".into()),
        ..Default::default()
    })
    .unwrap();
    let cri = rig.cri().unwrap();
    let err = cri
        .run_pod("verified", "default", "vouch")
        .expect_err("the pause image matches no rule and default is deny");
    assert!(err.message().contains("vouch: denied"), "{}", err.message());
    assert!(
        err.message().contains("/pause@sha256:"),
        "{}",
        err.message()
    );
}

/// `ctr run --no-pivot` makes containerd send task options (the legacy `CreateOptions`) to the
/// shim instead of the container's runtime options: the `ConfigPath` must still be honoured.
#[test]
fn legacy_create_options_keep_the_runtime_config_path() {
    let rig = shared_rig();
    let ns = rig.namespace();
    let (image, _) = image_in(&rig, &ns, "debug/nopivot");
    let dir = tempfile::tempdir().unwrap();
    let config = write_vouch_config(&rig, dir.path(), &policy(&rig.registry(), ""));
    let cfg = config.display().to_string();
    let out = rig
        .ctr(
            &ns,
            &[
                "run",
                "--rm",
                "--no-pivot",
                "--runtime",
                VOUCH,
                "--runtime-config-path",
                &cfg,
                &image,
                "nopivot",
                "echo",
                "ran",
            ],
        )
        .unwrap();
    assert!(
        !out.status.success(),
        "the rig's own config allows everything"
    );
    assert!(
        stderr(&out).contains("(rule \"no-debug\")"),
        "{}",
        stderr(&out)
    );
    let (team, _) = image_in(&rig, &ns, "team/nopivot");
    let ok = rig
        .ctr(
            &ns,
            &[
                "run",
                "--rm",
                "--no-pivot",
                "--runtime",
                VOUCH,
                "--runtime-config-path",
                &cfg,
                &team,
                "nopivot-ok",
                "echo",
                "ran",
            ],
        )
        .unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_nothing_left(&rig, &ns);
}

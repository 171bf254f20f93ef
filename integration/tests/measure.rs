//! Measurement at start: the host and the container's security settings (`[rule.host]`), through
//! `ctr` against the rig's containerd, leaving nothing behind.

mod common;

use common::*;

fn host_policy(reg: &str, host: &str) -> String {
    format!(
        "version = 1\ndefault = \"deny\"\n[[rule]]\nname = \"hardened\"\nimages = [\"{reg}/team/**\"]\naction = \"allow\"\n[rule.host]\n{host}"
    )
}

fn run(
    rig: &vouch_integration::Rig,
    ns: &str,
    config: &std::path::Path,
    extra: &[&str],
    image: &str,
    id: &str,
) -> std::process::Output {
    let config = config.display().to_string();
    let mut args = vec![
        "run",
        "--rm",
        "--runtime",
        VOUCH,
        "--runtime-config-path",
        &config,
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[image, id, "echo", "ran"]);
    rig.ctr(ns, &args).unwrap()
}

#[test]
fn privileged_container_is_refused_under_allow_privileged_false() {
    let rig = shared_rig();
    let ns = rig.namespace();
    rig.push_busybox("busybox", "team/host:v1").unwrap();
    let image = rig.image("team/host:v1");
    rig.pull(&ns, &image).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_vouch_config(
        dir.path(),
        &host_policy(&rig.registry(), "allow_privileged = false\n"),
    );

    let out = run(&rig, &ns, &config, &["--privileged"], &image, "privileged");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("host: allow_privileged = false, and the container is privileged")
            && err.contains("(rule \"hardened\")"),
        "{err}"
    );
    assert_eq!(stdout(&out).trim(), "", "the container must not have run");

    // The same image unprivileged runs.
    let ok = run(&rig, &ns, &config, &[], &image, "confined");
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_eq!(stdout(&ok).trim(), "ran");

    // require_seccomp: ctr adds no seccomp filter unless asked.
    let config = write_vouch_config(
        dir.path(),
        &host_policy(&rig.registry(), "require_seccomp = true\n"),
    );
    let out = run(&rig, &ns, &config, &[], &image, "no-seccomp");
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains("host: require_seccomp = true, and the container has no seccomp filter"),
        "{}",
        stderr(&out)
    );
    let ok = run(&rig, &ns, &config, &["--seccomp"], &image, "seccomp");
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));

    // runc_sha256 names the digest it found.
    let config = write_vouch_config(
        dir.path(),
        &host_policy(
            &rig.registry(),
            &format!("runc_sha256 = [\"{}\"]\n", "0".repeat(64)),
        ),
    );
    let out = run(&rig, &ns, &config, &[], &image, "other-runc");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("host: runc_sha256: ")
            && stderr(&out).contains("not an allowed digest"),
        "{}",
        stderr(&out)
    );
    assert_nothing_left(&rig, &ns);
}

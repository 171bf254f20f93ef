//! Signature verification at container start (issue: only images signed by a trusted party start),
//! end to end: keys made by `vouch keygen`, signatures pushed by `vouch sign` to a real registry,
//! containers started through containerd and the vouch shim.

mod common;

use std::{path::Path, thread, time::Duration};

use common::*;
use vouch_integration::{Rig, RigOptions};

fn authority(name: &str, public_key: &Path, extra: &str) -> String {
    format!(
        "[[rule.authority]]\nname = \"{name}\"\nkey = \"{}\"\n{extra}",
        public_key.display()
    )
}

fn verify_policy(rig: &Rig, rule_extra: &str, authorities: &[String]) -> String {
    format!(
        "version = 1\ndefault = \"deny\"\n[[rule]]\nname = \"signed\"\nimages = [\"{}/**\"]\naction = \"verify\"\n{rule_extra}{}",
        rig.registry(),
        authorities.concat()
    )
}

/// A test's own world on the shared rig: a namespace, a temp dir for keys and config.
struct Case {
    rig: std::sync::Arc<Rig>,
    ns: String,
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        let rig = shared_rig();
        let ns = rig.namespace();
        Case {
            rig,
            ns,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Pushes the layout tag (`app`, `debug`, `busybox`) as `repo:v1` and pulls it.
    fn image(&self, layout: &str, repo: &str) -> String {
        self.rig
            .push_busybox(layout, &format!("{repo}:v1"))
            .unwrap();
        let image = self.rig.image(&format!("{repo}:v1"));
        self.rig.pull(&self.ns, &image).unwrap();
        image
    }

    fn config(&self, policy: &str) -> std::path::PathBuf {
        write_vouch_config_for(&self.rig, &self.dir.path().join("vouch"), policy)
    }

    fn run(&self, config: &Path, image: &str, id: &str) -> std::process::Output {
        let cfg = config.display().to_string();
        run_rm(
            &self.rig,
            &self.ns,
            &["--runtime-config-path", &cfg],
            image,
            id,
            &["echo", "ran"],
        )
    }
}

fn assert_runs(out: &std::process::Output) {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    assert_eq!(stdout(out).trim(), "ran");
}

fn assert_refused(out: &std::process::Output, reason: &str) {
    assert!(!out.status.success(), "ran, but should have been refused");
    let err = stderr(out);
    assert!(err.contains("vouch: denied "), "{err}");
    assert!(err.contains(reason), "expected {reason:?} in {err}");
    assert!(err.contains("(rule \"signed\")"), "{err}");
}

#[test]
fn image_signed_by_a_trusted_key_runs() {
    let c = Case::new();
    let image = c.image("app", "signed/ok");
    let (key, public) = keygen(c.dir.path(), "release");
    let config = c.config(&verify_policy(
        &c.rig,
        "",
        &[authority("release", &public, "")],
    ));
    sign(&config, &image, &key, &[]);
    assert_runs(&c.run(&config, &image, "signed"));
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn unsigned_image_is_refused_with_reason() {
    let c = Case::new();
    let image = c.image("app", "signed/unsigned");
    let (_, public) = keygen(c.dir.path(), "release");
    let config = c.config(&verify_policy(
        &c.rig,
        "",
        &[authority("release", &public, "")],
    ));
    assert_refused(
        &c.run(&config, &image, "unsigned"),
        "no signature found for sha256:",
    );
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn image_signed_by_an_untrusted_key_is_refused() {
    let c = Case::new();
    let image = c.image("app", "signed/untrusted");
    let (_, trusted) = keygen(c.dir.path(), "release");
    let (other, _) = keygen(c.dir.path(), "mallory");
    let config = c.config(&verify_policy(
        &c.rig,
        "",
        &[authority("release", &trusted, "")],
    ));
    sign(&config, &image, &other, &[]);
    assert_refused(
        &c.run(&config, &image, "untrusted"),
        "no signature by a trusted authority",
    );
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn signature_of_image_a_under_image_b_sig_tag_is_refused() {
    let c = Case::new();
    let a = c.image("app", "signed/replay-a");
    let b = c.image("debug", "signed/replay-b");
    let (key, public) = keygen(c.dir.path(), "release");
    let config = c.config(&verify_policy(
        &c.rig,
        "",
        &[authority("release", &public, "")],
    ));
    sign(&config, &a, &key, &[]);
    let digest_a = c.rig.layout_digest("app").unwrap();
    let digest_b = c.rig.layout_digest("debug").unwrap();
    let sig =
        |repo: &str, d: &str| format!("{repo}:sha256-{}.sig", d.trim_start_matches("sha256:"));
    // Copy A's .sig manifest to B's .sig tag inside the registry.
    c.rig
        .push(
            &format!(
                "docker://{}",
                c.rig.image(&sig("signed/replay-a", &digest_a))
            ),
            &sig("signed/replay-b", &digest_b),
        )
        .unwrap();
    assert_refused(&c.run(&config, &b, "replayed"), "is not the image digest");
    assert_runs(&c.run(&config, &a, "original"));
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn signature_copied_from_another_repository_is_refused_unless_the_rule_allows_it() {
    let c = Case::new();
    let origin = c.image("app", "signed/origin");
    let copy = c.image("app", "signed/copy");
    let digest = c.rig.layout_digest("app").unwrap();
    let (key, public) = keygen(c.dir.path(), "release");
    let strict = c.config(&verify_policy(
        &c.rig,
        "",
        &[authority("release", &public, "")],
    ));
    sign(&strict, &origin, &key, &[]);
    let tag = format!("sha256-{}.sig", digest.trim_start_matches("sha256:"));
    c.rig
        .push(
            &format!("docker://{}", c.rig.image(&format!("signed/origin:{tag}"))),
            &format!("signed/copy:{tag}"),
        )
        .unwrap();
    // The same digest, verified and cached for its own repository, is still refused under another.
    assert_runs(&c.run(&strict, &origin, "origin"));
    assert_refused(
        &c.run(&strict, &copy, "copied"),
        "signature is for repository",
    );
    let lax = c.config(&verify_policy(
        &c.rig,
        "require_identity_match = false\n",
        &[authority("release", &public, "")],
    ));
    assert_runs(&c.run(&lax, &copy, "copied-allowed"));
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn tag_moved_from_a_signed_image_to_an_unsigned_one_is_refused() {
    let c = Case::new();
    let image = c.image("app", "signed/moving");
    let (key, public) = keygen(c.dir.path(), "release");
    let config = c.config(&verify_policy(
        &c.rig,
        "",
        &[authority("release", &public, "")],
    ));
    sign(&config, &image, &key, &[]);
    assert_runs(&c.run(&config, &image, "before-move"));
    // The tag now names other content; containerd follows it on the next pull.
    c.rig.push_busybox("debug", "signed/moving:v1").unwrap();
    c.rig.pull(&c.ns, &image).unwrap();
    assert_refused(
        &c.run(&config, &image, "after-move"),
        "no signature found for sha256:",
    );
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn rotated_out_key_is_refused() {
    let c = Case::new();
    let image = c.image("app", "signed/rotated");
    let (key, public) = keygen(c.dir.path(), "old");
    let config = c.config(&verify_policy(
        &c.rig,
        "",
        &[authority(
            "old",
            &public,
            "valid_until = \"2024-01-01T00:00:00Z\"\n",
        )],
    ));
    sign(&config, &image, &key, &[]);
    assert_refused(&c.run(&config, &image, "rotated"), "rotated out");
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn threshold_two_with_one_signature_is_refused_and_two_run() {
    let c = Case::new();
    let image = c.image("app", "signed/threshold");
    let (k1, p1) = keygen(c.dir.path(), "one");
    let (k2, p2) = keygen(c.dir.path(), "two");
    let config = c.config(&verify_policy(
        &c.rig,
        "threshold = 2\n",
        &[authority("one", &p1, ""), authority("two", &p2, "")],
    ));
    sign(&config, &image, &k1, &[]);
    assert_refused(
        &c.run(&config, &image, "one-sig"),
        "1 of 2 required authorities",
    );
    sign(&config, &image, &k2, &[]);
    // A new policy digest is not needed: a denial is cached only for deny_ttl_s; use a fresh
    // state directory so the second start verifies again.
    let config = write_vouch_config_for(
        &c.rig,
        &c.dir.path().join("vouch2"),
        &verify_policy(
            &c.rig,
            "threshold = 2\n",
            &[authority("one", &p1, ""), authority("two", &p2, "")],
        ),
    );
    assert_runs(&c.run(&config, &image, "two-sigs"));
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn audit_mode_runs_an_unsigned_image_and_logs_the_would_be_denial() {
    let c = Case::new();
    let image = c.image("app", "signed/audited");
    let (_, public) = keygen(c.dir.path(), "release");
    let config = c.config(&verify_policy(
        &c.rig,
        "mode = \"audit\"\n",
        &[authority("release", &public, "")],
    ));
    assert_runs(&c.run(&config, &image, "audited"));
    assert!(eventually(Duration::from_secs(5), || {
        c.rig.containerd_log().contains("audit: vouch: denied")
            && c.rig.containerd_log().contains("signed/audited@sha256:")
    }));
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn registry_stopped_with_a_cached_verdict_runs_and_without_one_is_refused_as_unreachable() {
    let mut rig = Rig::start().unwrap();
    let ns = rig.namespace();
    let dir = tempfile::tempdir().unwrap();
    rig.push_busybox("app", "cached/app:v1").unwrap();
    rig.push_busybox("debug", "cached/other:v1").unwrap();
    let signed = rig.image("cached/app:v1");
    let other = rig.image("cached/other:v1");
    rig.pull(&ns, &signed).unwrap();
    rig.pull(&ns, &other).unwrap();
    let (key, public) = keygen(dir.path(), "release");
    let config = write_vouch_config_for(
        &rig,
        &dir.path().join("vouch"),
        &verify_policy(&rig, "", &[authority("release", &public, "")]),
    );
    sign(&config, &signed, &key, &[]);
    sign(&config, &other, &key, &[]);
    let cfg = config.display().to_string();
    let run = |rig: &Rig, image: &str, id: &str| {
        run_rm(
            rig,
            &ns,
            &["--runtime-config-path", &cfg],
            image,
            id,
            &["echo", "ran"],
        )
    };
    assert_runs(&run(&rig, &signed, "warm"));
    rig.stop_registry();
    assert_runs(&run(&rig, &signed, "cached"));
    let out = run(&rig, &other, "uncached");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("registry unreachable"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("no signature"), "{}", stderr(&out));
    assert_nothing_left(&rig, &ns);
}

#[test]
fn twenty_parallel_starts_of_a_new_image_verify_once() {
    let c = Case::new();
    let image = c.image("app", "signed/burst");
    let (key, public) = keygen(c.dir.path(), "release");
    let config = c.config(&verify_policy(
        &c.rig,
        "",
        &[authority("release", &public, "")],
    ));
    sign(&config, &image, &key, &[]);
    let digest = c.rig.layout_digest("app").unwrap();
    let sig_path = format!(
        "/v2/signed/burst/manifests/sha256-{}.sig",
        digest.trim_start_matches("sha256:")
    );
    let before = c.rig.registry_log().matches(&sig_path).count();
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let (rig, ns, image, config) =
                (c.rig.clone(), c.ns.clone(), image.clone(), config.clone());
            thread::spawn(move || {
                let cfg = config.display().to_string();
                run_rm(
                    &rig,
                    &ns,
                    &["--runtime-config-path", &cfg],
                    &image,
                    &format!("burst{i}"),
                    &["echo", "ran"],
                )
            })
        })
        .collect();
    for h in handles {
        assert_runs(&h.join().unwrap());
    }
    let fetched = c.rig.registry_log().matches(&sig_path).count() - before;
    assert_eq!(fetched, 1, "the .sig manifest was fetched {fetched} times");
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn cri_signed_image_runs_and_unsigned_image_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rig = Rig::start_with(RigOptions::default()).unwrap();
    let (key, public) = keygen(dir.path(), "release");
    rig.write_policy(&format!(
        "version = 1\ndefault = \"deny\"\nsandbox_images = [\"{}/pause\"]\n[[rule]]\nname = \"signed\"\nimages = [\"{}/signed/**\"]\naction = \"verify\"\n{}",
        rig.registry(),
        rig.registry(),
        authority("release", &public, "")
    ))
    .unwrap();
    rig.push_busybox("app", "signed/cri:v1").unwrap();
    rig.push_busybox("debug", "signed/cri-unsigned:v1").unwrap();
    let good = rig.image("signed/cri:v1");
    let bad = rig.image("signed/cri-unsigned:v1");
    sign(&rig.config_path(), &good, &key, &[]);
    let cri = rig.cri().unwrap();
    cri.pull_image(&good).unwrap();
    cri.pull_image(&bad).unwrap();
    let pod = cri.run_pod("signed", "default", "vouch").unwrap();
    let ok = cri
        .create_container(&pod, "good", &good, &["echo"], &["signed-ran"])
        .unwrap();
    cri.start_container(&ok).unwrap();
    let status = cri.wait_exited(&ok, Duration::from_secs(30)).unwrap();
    assert_eq!(status.exit_code, 0);
    let no = cri
        .create_container(&pod, "bad", &bad, &["echo"], &["never"])
        .unwrap();
    let err = cri
        .start_container(&no)
        .expect_err("unsigned must not start");
    assert!(err.message().contains("vouch: denied"), "{}", err.message());
    assert!(
        err.message().contains("no signature found"),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("(rule \"signed\")"),
        "{}",
        err.message()
    );
    cri.stop_pod(&pod).unwrap();
    cri.remove_pod(&pod).unwrap();
}

#[test]
fn multi_arch_image_signed_on_its_platform_manifest_runs_unless_the_rule_wants_the_index() {
    use vouch_verifier::config::RegistryConfig;
    use vouch_verifier::registry::{Registry, OCI_INDEX, OCI_MANIFEST};
    let c = Case::new();
    let repo = "signed/multi";
    c.rig
        .push_busybox("app", &format!("{repo}:platform"))
        .unwrap();
    let registry = Registry::new(&RegistryConfig {
        plain_http: vec![c.rig.registry()],
        ..Default::default()
    })
    .unwrap();
    let full = format!("{}/{repo}", c.rig.registry());
    let platform = registry.get_manifest(&full, "platform").unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": platform.digest,
            "size": platform.bytes.len(),
            "platform": {"os": "linux", "architecture": vouch_verifier::verify::host_architecture()},
        }],
    });
    let index_digest = registry
        .push_manifest(&full, "v1", OCI_INDEX, &serde_json::to_vec(&index).unwrap())
        .unwrap();
    let image = c.rig.image(&format!("{repo}:v1"));
    c.rig.pull(&c.ns, &image).unwrap();

    let (key, public) = keygen(c.dir.path(), "release");
    let either = c.config(&verify_policy(
        &c.rig,
        "",
        &[authority("release", &public, "")],
    ));
    sign(&either, &format!("{full}@{}", platform.digest), &key, &[]);
    assert_runs(&c.run(&either, &image, "platform-signed"));

    let index_only = write_vouch_config_for(
        &c.rig,
        &c.dir.path().join("index-only"),
        &verify_policy(
            &c.rig,
            "multi_arch = \"index\"\n",
            &[authority("release", &public, "")],
        ),
    );
    assert_refused(
        &c.run(&index_only, &image, "index-wanted"),
        &format!("no signature found for {index_digest}"),
    );
    sign(&either, &image, &key, &[]);
    let index_only = write_vouch_config_for(
        &c.rig,
        &c.dir.path().join("index-only-2"),
        &verify_policy(
            &c.rig,
            "multi_arch = \"index\"\n",
            &[authority("release", &public, "")],
        ),
    );
    assert_runs(&c.run(&index_only, &image, "index-signed"));
    assert_nothing_left(&c.rig, &c.ns);
}

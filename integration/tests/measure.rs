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

/// What to put at a path of a test image.
enum Put<'a> {
    Text(&'a str),
    CopyOf(&'a str),
    Link(&'a str),
}

/// Builds OCI layout tag `tag` (the rig's busybox plus `files`) in a copy of the rig's layout under
/// `dir`, pushes it as `repo`, pulls it into `ns`, and returns the image reference.
fn image_with(
    rig: &vouch_integration::Rig,
    ns: &str,
    dir: &std::path::Path,
    tag: &str,
    repo: &str,
    files: &[(&str, Put<'_>)],
) -> String {
    use std::process::Command;
    let layout = dir.join("layout");
    if !layout.exists() {
        let ok = Command::new("cp")
            .arg("-a")
            .arg(rig.layout_path())
            .arg(&layout)
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let l = layout.display().to_string();
    let bundle = dir.join(format!("bundle-{tag}"));
    let umoci = |args: &[&str]| {
        let out = Command::new("umoci").args(args).output().unwrap();
        assert!(out.status.success(), "umoci {args:?}: {}", stderr(&out));
    };
    umoci(&[
        "unpack",
        "--image",
        &format!("{l}:base"),
        &bundle.display().to_string(),
    ]);
    let root = bundle.join("rootfs");
    for (path, what) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        match what {
            Put::Text(t) => std::fs::write(&p, t).unwrap(),
            Put::CopyOf(src) => {
                std::fs::copy(src, &p).unwrap();
            }
            Put::Link(target) => std::os::unix::fs::symlink(target, &p).unwrap(),
        }
    }
    umoci(&[
        "repack",
        "--image",
        &format!("{l}:{tag}"),
        &bundle.display().to_string(),
    ]);
    umoci(&[
        "config",
        "--image",
        &format!("{l}:{tag}"),
        "--config.env",
        "PATH=/bin",
        "--config.cmd",
        "/bin/sh",
    ]);
    rig.push(&format!("oci:{l}:{tag}"), &format!("{repo}:v1"))
        .unwrap();
    let image = rig.image(&format!("{repo}:v1"));
    rig.pull(ns, &image).unwrap();
    image
}

/// The unpacked layer directories of `rig` holding `path` with exactly `content`.
fn layer_dirs_with(
    rig: &vouch_integration::Rig,
    path: &str,
    content: &[u8],
) -> Vec<std::path::PathBuf> {
    let snapshots = rig
        .root()
        .join("root/io.containerd.snapshotter.v1.overlayfs/snapshots");
    std::fs::read_dir(snapshots)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("fs"))
        .filter(|fs| std::fs::read(fs.join(path)).is_ok_and(|c| c == content))
        .collect()
}

fn rootfs_policy(reg: &str, repo: &str, rootfs: &str) -> String {
    format!(
        "version = 1\ndefault = \"deny\"\n[[rule]]\nname = \"measured\"\nimages = [\"{reg}/{repo}\"]\naction = \"allow\"\n[rule.rootfs]\n{rootfs}"
    )
}

/// The decoded predicates of the attestation log under `state`.
fn records(state: &std::path::Path) -> Vec<serde_json::Value> {
    use base64::Engine;
    std::fs::read_to_string(state.join("attestations.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let env: serde_json::Value = serde_json::from_str(l).unwrap();
            let payload = base64::engine::general_purpose::STANDARD
                .decode(env["payload"].as_str().unwrap())
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&payload).unwrap()["predicate"].clone()
        })
        .collect()
}

#[test]
fn file_changed_in_an_image_layer_after_a_first_start_is_refused_with_its_path() {
    let rig = shared_rig();
    let ns = rig.namespace();
    let dir = tempfile::tempdir().unwrap();
    let motd = format!("welcome {}\n", dir.path().display());
    let image = image_with(
        &rig,
        &ns,
        dir.path(),
        "motd",
        "measured/motd",
        &[("etc/motd", Put::Text(&motd))],
    );
    let config = write_vouch_config(
        dir.path(),
        &rootfs_policy(&rig.registry(), "measured/motd", "baseline = \"image\"\n"),
    );
    let ok = run(&rig, &ns, &config, &[], &image, "first");
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_eq!(stdout(&ok).trim(), "ran");

    let layers = layer_dirs_with(&rig, "etc/motd", motd.as_bytes());
    assert_eq!(
        layers.len(),
        1,
        "the unpacked layer with etc/motd: {layers:?}"
    );
    // Same size, and the modification time put back: only the ctime tells.
    let file = layers[0].join("etc/motd");
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    std::fs::write(&file, motd.replace("welcome", "WELCOME")).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();

    let out = run(&rig, &ns, &config, &[], &image, "second");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("rootfs: /etc/motd changed: expected sha256:")
            && err.contains(" actual sha256:")
            && err.contains("(rule \"measured\")"),
        "{err}"
    );
    assert_eq!(stdout(&out).trim(), "", "the container must not have run");
    // Both decisions are in the attestation log, the refusal with its reason.
    let r = records(&dir.path().join("state"));
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[0]["decision"], "allow");
    assert!(r[0]["rootfs_digest"]
        .as_str()
        .is_some_and(|d| d.starts_with("sha256:")));
    assert_eq!(r[1]["decision"], "deny");
    assert!(r[1]["reasons"][0]
        .as_str()
        .unwrap()
        .contains("/etc/motd changed"));
    assert_nothing_left(&rig, &ns);
}

#[test]
fn file_added_to_a_lower_layer_is_refused_and_a_symlink_to_the_hosts_shadow_is_never_followed() {
    let rig = shared_rig();
    let ns = rig.namespace();
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("marker {}\n", dir.path().display());
    let image = image_with(
        &rig,
        &ns,
        dir.path(),
        "links",
        "measured/links",
        &[
            ("etc/marker", Put::Text(&marker)),
            ("etc/shadow-link", Put::Link("/etc/shadow")),
        ],
    );
    let config = write_vouch_config(
        dir.path(),
        &rootfs_policy(&rig.registry(), "measured/links", "baseline = \"image\"\n"),
    );
    // The symlink's target is the host's /etc/shadow: had it been followed, the host file's digest
    // would not match the layer's symlink entry and the start would be refused.
    let ok = run(&rig, &ns, &config, &[], &image, "links");
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));

    let layers = layer_dirs_with(&rig, "etc/marker", marker.as_bytes());
    assert_eq!(layers.len(), 1, "{layers:?}");
    // Retargeting the link on the node is a change of the symlink itself.
    let link = layers[0].join("etc/shadow-link");
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
    let out = run(&rig, &ns, &config, &[], &image, "retargeted");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("rootfs: /etc/shadow-link"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", &link).unwrap();

    std::fs::write(layers[0].join("etc/added"), b"dropped in on the node\n").unwrap();
    let out = run(&rig, &ns, &config, &[], &image, "added");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("rootfs: /etc/added added (not in the image)"),
        "{err}"
    );
    // Exempting the path lets it run.
    let config = write_vouch_config(
        dir.path(),
        &rootfs_policy(
            &rig.registry(),
            "measured/links",
            "baseline = \"image\"\nexempt_paths = [\"/etc/added\"]\n",
        ),
    );
    let ok = run(&rig, &ns, &config, &[], &image, "exempted");
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_nothing_left(&rig, &ns);
}

#[test]
fn shared_library_not_in_the_sbom_is_refused_under_no_undeclared_executables() {
    let rig = shared_rig();
    let ns = rig.namespace();
    let dir = tempfile::tempdir().unwrap();
    let note = format!("note {}\n", dir.path().display());
    let base = image_with(
        &rig,
        &ns,
        dir.path(),
        "declared",
        "measured/declared",
        &[("etc/note", Put::Text(&note))],
    );
    let with_lib = image_with(
        &rig,
        &ns,
        dir.path(),
        "undeclared",
        "measured/undeclared",
        &[
            ("etc/note", Put::Text(&note)),
            (
                "usr/lib/libextra.so.6",
                Put::CopyOf("/lib/x86_64-linux-gnu/libm.so.6"),
            ),
        ],
    );
    // The SBOM of the image without the library, made by vouch sbom; attested to both images.
    let sbom = dir.path().join("sbom.spdx.json");
    let out = vouch(&[
        "sbom",
        &dir.path().join("layout").display().to_string(),
        "--ref",
        "declared",
        "--author",
        "Organization: Test",
        "--file",
        &sbom.display().to_string(),
    ]);
    assert!(out.status.success(), "vouch sbom: {}", stderr(&out));
    let (key, public) = keygen(dir.path(), "release");
    let reg = rig.registry();
    let policy = format!(
        "version = 1\ndefault = \"deny\"\n[[rule]]\nname = \"declared\"\nimages = [\"{reg}/measured/*\"]\naction = \"verify\"\n[[rule.authority]]\nname = \"release\"\nkey = \"{}\"\n[rule.sbom]\nrequire = true\n[rule.rootfs]\nbaseline = \"no-undeclared-executables\"\n",
        public.display()
    );
    let config = write_vouch_config_for(&rig, dir.path(), &policy);
    for image in [&base, &with_lib] {
        sign(&config, image, &key, &[]);
        let out = vouch(&[
            "--config",
            &config.display().to_string(),
            "attest",
            image,
            "--predicate",
            &sbom.display().to_string(),
            "--type",
            "spdxjson",
            "--key",
            &key.display().to_string(),
        ]);
        assert!(out.status.success(), "vouch attest: {}", stderr(&out));
    }
    let ok = run(&rig, &ns, &config, &[], &base, "declared");
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let out = run(&rig, &ns, &config, &[], &with_lib, "undeclared");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(
            "rootfs: unexpected library /usr/lib/libextra.so.6 (not declared in the SBOM)"
        ),
        "{err}"
    );
    // A declared file changed on the node fails declared-files-match as well.
    let layers = layer_dirs_with(&rig, "etc/note", note.as_bytes());
    assert!(!layers.is_empty());
    for l in &layers {
        std::fs::write(l.join("etc/note"), note.to_uppercase()).unwrap();
    }
    let out = run(&rig, &ns, &config, &[], &base, "declared-changed");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("rootfs: /etc/note"),
        "{}",
        stderr(&out)
    );
    assert_nothing_left(&rig, &ns);
}

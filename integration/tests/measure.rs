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
        &rig,
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
        &rig,
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
        &rig,
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

/// Builds tag `tag` (busybox plus `files`), pushes it as `repo`, pulls it into `ns`, and returns
/// the image reference.
fn image_with(
    rig: &vouch_integration::Rig,
    ns: &str,
    dir: &std::path::Path,
    tag: &str,
    repo: &str,
    files: &[(&str, Put<'_>)],
) -> String {
    let layout = build_layout(rig, dir, tag, files);
    rig.push(
        &format!("oci:{}:{tag}", layout.display()),
        &format!("{repo}:v1"),
    )
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
        &rig,
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

/// `setcap cap_net_raw+ep` on an image file in its unpacked layer on the node: the content is the
/// same, the file capabilities are not, and the next start is refused naming them.
#[test]
fn file_capabilities_added_to_an_image_file_on_the_node_are_refused() {
    let rig = shared_rig();
    let ns = rig.namespace();
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("caps {}\n", dir.path().display());
    let image = image_with(
        &rig,
        &ns,
        dir.path(),
        "caps",
        "measured/caps",
        &[("usr/bin/tool", Put::Text(&marker))],
    );
    let config = write_vouch_config(
        &rig,
        dir.path(),
        &rootfs_policy(&rig.registry(), "measured/caps", "baseline = \"image\"\n"),
    );
    let ok = run(&rig, &ns, &config, &[], &image, "first");
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));

    let layers = layer_dirs_with(&rig, "usr/bin/tool", marker.as_bytes());
    assert_eq!(layers.len(), 1, "{layers:?}");
    let file = layers[0].join("usr/bin/tool");
    // VFS_CAP_REVISION_2 with the effective bit, permitted = CAP_NET_RAW (13).
    let caps: [u8; 20] = [
        1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let path = std::ffi::CString::new(file.as_os_str().as_encoded_bytes()).unwrap();
    let name = std::ffi::CString::new("security.capability").unwrap();
    // SAFETY: both strings are NUL-terminated and `caps` outlives the call.
    let rc = unsafe {
        libc::setxattr(
            path.as_ptr(),
            name.as_ptr(),
            caps.as_ptr().cast(),
            caps.len(),
            0,
        )
    };
    assert_eq!(rc, 0, "setxattr: {}", std::io::Error::last_os_error());

    let out = run(&rig, &ns, &config, &[], &image, "second");
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("/usr/bin/tool")
            && err.contains("capabilities")
            && err.contains("(rule \"measured\")"),
        "{err}"
    );
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
        &rig,
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
        &rig,
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
        attest(&config, image, &sbom, "spdxjson", &key);
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

/// A vouch config in `dir` for `policy`, with `[tpm]` on the given swtpm in `mode`.
fn tpm_config(
    rig: &vouch_integration::Rig,
    dir: &std::path::Path,
    policy: &str,
    tcti: &str,
    mode: &str,
) -> std::path::PathBuf {
    let config = write_vouch_config(rig, dir, policy);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[tpm]\nmode = \"{mode}\"\ntcti = \"{tcti}\"\npcr = 23\n"
    ));
    std::fs::write(&config, text).unwrap();
    config
}

fn attestation_verify(state: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let log = state.join("attestations.jsonl").display().to_string();
    let key = state.join("attestation/node.pub").display().to_string();
    let events = state.join("tpm/events.jsonl").display().to_string();
    let mut args = vec![
        "attestation",
        "verify",
        &log,
        "--node-key",
        &key,
        "--event-log",
        &events,
    ];
    args.extend_from_slice(extra);
    vouch(&args)
}

#[test]
fn allowed_start_is_one_record_whose_signature_quote_and_pcr_verify_also_with_tpm2_checkquote() {
    let rig = shared_rig();
    let ns = rig.namespace();
    rig.push_busybox("busybox", "team/quoted:v1").unwrap();
    let image = rig.image("team/quoted:v1");
    rig.pull(&ns, &image).unwrap();
    let tpm = vouch_verifier::tpm::testtpm::SwTpm::start();
    let dir = tempfile::tempdir().unwrap();
    let config = tpm_config(
        &rig,
        dir.path(),
        &host_policy(&rig.registry(), ""),
        &tpm.tcti,
        "required",
    );
    let ok = run(&rig, &ns, &config, &[], &image, "quoted");
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));

    let state = dir.path().join("state");
    let r = records(&state);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["decision"], "allow");
    assert_eq!(r[0]["container_id"], "quoted");
    let digest = rig.layout_digest("busybox").unwrap();
    assert_eq!(r[0]["image"]["digest"], digest.as_str());
    assert!(
        r[0]["host"]["runc"]["sha256"]
            .as_str()
            .is_some_and(|d| d.len() == 64),
        "{}",
        r[0]["host"]
    );
    assert!(r[0]["layers"].is_object() || r[0]["layers"].is_array());

    // vouch's own check: DSSE signature, chain, quote, event log replay.
    let out = attestation_verify(&state, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    // The independent check: tpm2_checkquote on the record's quote, AK and PCR value.
    let evidence: vouch_verifier::tpm::TpmEvidence =
        serde_json::from_value(r[0]["tpm"].clone()).unwrap();
    let q = dir.path().join("quote");
    std::fs::create_dir_all(&q).unwrap();
    let check = |nonce: &str| vouch_verifier::tpm::testtpm::checkquote(&evidence, nonce, &q);
    let nonce = evidence.event_digest.as_str();
    let out = check(nonce);
    assert!(out.status.success(), "tpm2_checkquote: {}", stderr(&out));
    assert!(
        !check(&"00".repeat(32)).status.success(),
        "a wrong nonce must fail"
    );

    // The event digest binds the record: container, image, rootfs, policy, decision, previous record.
    let expected = vouch_verifier::tpm::event_digest(
        "quoted",
        &digest,
        r[0]["rootfs_digest"].as_str().unwrap(),
        r[0]["policy_digest"].as_str().unwrap(),
        "allow",
        &"0".repeat(64),
    );
    assert_eq!(nonce, hex::encode(expected));
    assert_nothing_left(&rig, &ns);
}

#[test]
fn ten_parallel_starts_make_ten_records_in_one_chain_that_replays_to_the_pcr_and_edits_are_caught()
{
    let rig = shared_rig();
    let ns = rig.namespace();
    rig.push_busybox("busybox", "team/parallel:v1").unwrap();
    let image = rig.image("team/parallel:v1");
    rig.pull(&ns, &image).unwrap();
    let tpm = vouch_verifier::tpm::testtpm::SwTpm::start();
    let dir = tempfile::tempdir().unwrap();
    let config = tpm_config(
        &rig,
        dir.path(),
        &host_policy(&rig.registry(), ""),
        &tpm.tcti,
        "required",
    );
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let (rig, ns, config, image) = (&rig, &ns, &config, &image);
                s.spawn(move || run(rig, ns, config, &[], image, &format!("par-{i}")))
            })
            .collect();
        for h in handles {
            let out = h.join().unwrap();
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        }
    });
    let state = dir.path().join("state");
    let r = records(&state);
    assert_eq!(r.len(), 10);
    for (i, rec) in r.iter().enumerate() {
        assert_eq!(rec["seq"], i as u64);
        assert_eq!(rec["tpm"]["event_index"], i as u64);
    }
    let out = attestation_verify(&state, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // The TPM's PCR now is the last record's value.
    let pcr = std::process::Command::new("tpm2_pcrread")
        .env("TPM2TOOLS_TCTI", &tpm.tcti)
        .args([
            "sha256:23",
            "-o",
            &dir.path().join("pcr23").display().to_string(),
        ])
        .output()
        .unwrap();
    assert!(pcr.status.success(), "{}", stderr(&pcr));
    assert_eq!(
        hex::encode(std::fs::read(dir.path().join("pcr23")).unwrap()),
        r[9]["tpm"]["pcr_value"].as_str().unwrap()
    );

    // Edit, delete, reorder: each is reported at its record.
    let log = state.join("attestations.jsonl");
    let original = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    let write = |ls: &[String]| std::fs::write(&log, ls.join("\n") + "\n").unwrap();
    let owned: Vec<String> = lines.iter().map(|l| l.to_string()).collect();

    let mut edited = owned.clone();
    let mut env: serde_json::Value = serde_json::from_str(&edited[4]).unwrap();
    {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD;
        let mut st: serde_json::Value =
            serde_json::from_slice(&b.decode(env["payload"].as_str().unwrap()).unwrap()).unwrap();
        st["predicate"]["decision"] = "deny".into();
        env["payload"] = b.encode(serde_json::to_vec(&st).unwrap()).into();
    }
    edited[4] = env.to_string();
    write(&edited);
    let out = attestation_verify(&state, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("record 5"), "{}", stdout(&out));

    let mut deleted = owned.clone();
    deleted.remove(6);
    write(&deleted);
    let out = attestation_verify(&state, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("record 7"), "{}", stdout(&out));

    let mut swapped = owned.clone();
    swapped.swap(2, 3);
    write(&swapped);
    let out = attestation_verify(&state, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("record 3"), "{}", stdout(&out));

    write(&owned);
    let out = attestation_verify(&state, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // show prints one row per decision.
    let out = vouch(&["attestation", "show", &log.display().to_string()]);
    assert!(out.status.success());
    assert_eq!(stdout(&out).matches("par-").count(), 10, "{}", stdout(&out));
    assert_nothing_left(&rig, &ns);
}

#[test]
fn a_stopped_tpm_refuses_starts_when_required_and_leaves_them_unquoted_when_optional() {
    let rig = shared_rig();
    let ns = rig.namespace();
    rig.push_busybox("busybox", "team/notpm:v1").unwrap();
    let image = rig.image("team/notpm:v1");
    rig.pull(&ns, &image).unwrap();
    let mut tpm = vouch_verifier::tpm::testtpm::SwTpm::start();
    let tcti = tpm.tcti.clone();
    tpm.stop();
    let dir = tempfile::tempdir().unwrap();
    let policy = host_policy(&rig.registry(), "");
    let config = tpm_config(&rig, dir.path(), &policy, &tcti, "required");
    let out = run(&rig, &ns, &config, &[], &image, "required");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("TPM required ([tpm] mode = \"required\"): ")
            && err.contains("(rule \"tpm\")"),
        "{err}"
    );
    assert_eq!(stdout(&out).trim(), "");

    let config = tpm_config(&rig, dir.path(), &policy, &tcti, "optional");
    let ok = run(&rig, &ns, &config, &[], &image, "optional");
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let r = records(&dir.path().join("state"));
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["decision"], "deny");
    assert_eq!(r[1]["decision"], "allow");
    assert_eq!(r[1]["tpm"], serde_json::Value::Null);
    assert!(
        r[1]["unquoted_reason"]
            .as_str()
            .is_some_and(|u| u.starts_with("TPM failed: ")),
        "{}",
        r[1]
    );
    assert_nothing_left(&rig, &ns);
}

#[test]
fn native_snapshotter_rootfs_is_measured_from_the_mount_and_a_changed_file_refused() {
    let rig = shared_rig();
    let ns = rig.namespace();
    let dir = tempfile::tempdir().unwrap();
    let motd = format!("native {}\n", dir.path().display());
    let image = image_with(
        &rig,
        &ns,
        dir.path(),
        "native",
        "measured/native",
        &[("etc/motd", Put::Text(&motd))],
    );
    // ctr pulled for the default snapshotter; pull again to unpack for native as well.
    let out = rig
        .ctr(
            &ns,
            &[
                "images",
                "pull",
                "--plain-http",
                "--snapshotter",
                "native",
                &image,
            ],
        )
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let config = write_vouch_config(
        &rig,
        dir.path(),
        &rootfs_policy(&rig.registry(), "measured/native", "baseline = \"image\"\n"),
    );
    let ok = run(
        &rig,
        &ns,
        &config,
        &["--snapshotter", "native"],
        &image,
        "native-1",
    );
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let r = records(&dir.path().join("state"));
    assert!(
        r[0]["rootfs_digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{}",
        r[0]
    );

    // The native snapshotter copies the image's committed snapshot into each container's.
    let snapshots = rig
        .root()
        .join("root/io.containerd.snapshotter.v1.native/snapshots");
    let changed: Vec<_> = std::fs::read_dir(&snapshots)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("etc/motd"))
        .filter(|p| std::fs::read(p).is_ok_and(|c| c == motd.as_bytes()))
        .collect();
    assert!(
        !changed.is_empty(),
        "no native snapshot with etc/motd under {}",
        snapshots.display()
    );
    for p in &changed {
        std::fs::write(p, motd.to_uppercase()).unwrap();
    }
    let out = run(
        &rig,
        &ns,
        &config,
        &["--snapshotter", "native"],
        &image,
        "native-2",
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("rootfs: /etc/motd changed"),
        "{}",
        stderr(&out)
    );
    assert_nothing_left(&rig, &ns);
}

#[test]
fn cri_pod_container_is_measured_recorded_and_refused_after_its_layer_is_changed() {
    use std::time::Duration;
    use vouch_integration::{Rig, RigOptions};
    let dir = tempfile::tempdir().unwrap();
    let rig = Rig::start_with(RigOptions::default()).unwrap();
    let motd = format!("cri {}\n", dir.path().display());
    let layout = build_layout(&rig, dir.path(), "cri", &[("etc/motd", Put::Text(&motd))]);
    rig.push(&format!("oci:{}:cri", layout.display()), "measured/cri:v1")
        .unwrap();
    let image = rig.image("measured/cri:v1");
    rig.write_policy(&format!(
        "version = 1\ndefault = \"deny\"\nsandbox = \"exempt\"\nsandbox_images = [\"{}/pause\"]\n{}",
        rig.registry(),
        rootfs_policy(&rig.registry(), "measured/cri", "baseline = \"image\"\n")
            .trim_start_matches("version = 1\ndefault = \"deny\"\n")
    ))
    .unwrap();
    let cri = rig.cri().unwrap();
    cri.pull_image(&image).unwrap();
    let pod = cri.run_pod("measured", "team-m", "vouch").unwrap();
    let first = cri
        .create_container(&pod, "first", &image, &["cat"], &["/etc/motd"])
        .unwrap();
    cri.start_container(&first).unwrap();
    let status = cri.wait_exited(&first, Duration::from_secs(30)).unwrap();
    assert_eq!(status.exit_code, 0);
    assert!(cri.container_log(&first).unwrap().contains("cri "));
    // The pod sandbox (exempt) and the container are both recorded; the container with its rootfs.
    let r = records(&rig.state_dir());
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[1]["container_id"], first.as_str());
    assert_eq!(r[1]["decision"], "allow");
    assert!(r[1]["rootfs_digest"]
        .as_str()
        .is_some_and(|d| d.starts_with("sha256:")));
    assert_eq!(r[1]["layers"]["layout"], "overlay");

    let layers = layer_dirs_with(&rig, "etc/motd", motd.as_bytes());
    assert_eq!(layers.len(), 1, "{layers:?}");
    std::fs::write(layers[0].join("etc/motd"), motd.to_uppercase()).unwrap();
    let second = cri
        .create_container(&pod, "second", &image, &["cat"], &["/etc/motd"])
        .unwrap();
    let err = cri
        .start_container(&second)
        .expect_err("a changed layer must not start");
    assert!(
        err.message().contains("rootfs: /etc/motd changed")
            && err.message().contains("(rule \"measured\")"),
        "{}",
        err.message()
    );
    let r = records(&rig.state_dir());
    assert_eq!(r.last().unwrap()["decision"], "deny");
    cri.stop_pod(&pod).unwrap();
    cri.remove_pod(&pod).unwrap();
}

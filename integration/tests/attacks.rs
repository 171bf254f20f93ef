//! A containerd client or a tenant trying to steer or skip the gate, against the real containerd,
//! runc and registry. Each attack is refused with a `vouch: denied` line naming the right rule;
//! beside each, an honest control that still runs.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use vouch_integration::Rig;

/// A config of this test (its own policy and state), listed in the rig's node config.
fn config(rig: &Rig, dir: &Path, policy: &str) -> (PathBuf, String) {
    let config = write_vouch_config_for(rig, dir, policy);
    let shown = config.display().to_string();
    (config, shown)
}

fn refused_by(out: &std::process::Output, rule: &str) -> String {
    let err = stderr(out);
    assert!(!out.status.success(), "the start must be refused");
    assert!(err.contains("vouch: denied"), "{err}");
    assert!(
        err.contains(&format!("(rule \"{rule}\")")),
        "expected rule {rule}: {err}"
    );
    err
}

fn ran(out: &std::process::Output) {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    assert_eq!(stdout(out).trim(), "ran", "{}", stderr(out));
}

/// Every image runs, without privileges beyond containerd's defaults.
const HARDENED: &str = "version = 1\ndefault = \"deny\"\n[[rule]]\nname = \"hardened\"\nimages = [\"**\"]\naction = \"allow\"\n[rule.host]\nallow_privileged = false\n";

fn authority(public: &Path) -> String {
    format!(
        "[[rule.authority]]\nname = \"release\"\nkey = \"{}\"\n",
        public.display()
    )
}

#[test]
fn tag_moved_after_create_is_judged_by_its_content() {
    let rig = shared_rig();
    let ns = rig.namespace();
    let dir = tempfile::tempdir().unwrap();
    let reg = rig.registry();
    let (key, public) = keygen(dir.path(), "release");
    let (config, cfg) = config(
        &rig,
        &dir.path().join("vouch"),
        &format!(
            "version = 1\ndefault = \"deny\"\n[[rule]]\nname = \"signed\"\nimages = [\"{reg}/moved/**\"]\naction = \"verify\"\n{}",
            authority(&public)
        ),
    );
    let create = |image: &str, id: &str| {
        let out = rig
            .ctr(
                &ns,
                &[
                    "containers",
                    "create",
                    "--runtime",
                    VOUCH,
                    "--runtime-config-path",
                    &cfg,
                    image,
                    id,
                    "echo",
                    "ran",
                ],
            )
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    };
    let start = |id: &str| rig.ctr(&ns, &["task", "start", id]).unwrap();
    // Two images with layers of their own: what the container is made from, and what the tag
    // will name instead.
    let layout = build_layout(
        &rig,
        dir.path(),
        "unsigned",
        &[("etc/evil", Put::Text("evil\n"))],
    );
    build_layout(
        &rig,
        dir.path(),
        "signed",
        &[("etc/good", Put::Text("good\n"))],
    );
    let push = |tag: &str, image: &str| {
        rig.push(
            &format!("oci:{}:{tag}", layout.display()),
            &image[reg.len() + 1..],
        )
        .unwrap();
    };
    let retag_to_signed = |image: &str| {
        // The tag now names other content, signed, and the node pulls it again.
        push("signed", image);
        sign(&config, image, &key, &[]);
        rig.pull(&ns, image).unwrap();
    };

    // Created from unsigned content; the tag moves to a signed image before the task starts.
    let image = rig.image("moved/app:v1");
    push("unsigned", &image);
    rig.pull(&ns, &image).unwrap();
    create(&image, "moved");
    retag_to_signed(&image);
    let err = refused_by(&start("moved"), "image-identity");
    assert!(
        err.contains("matches no image in containerd's store"),
        "{err}"
    );

    // The unsigned content still has a name of its own: that image is judged, and refused.
    let kept = rig.image("moved/kept:v1");
    let old_name = rig.image("moved/kept-old:v1");
    push("unsigned", &kept);
    rig.pull(&ns, &kept).unwrap();
    let tag = rig.ctr(&ns, &["images", "tag", &kept, &old_name]).unwrap();
    assert!(tag.status.success(), "{}", stderr(&tag));
    create(&kept, "kept");
    retag_to_signed(&kept);
    let err = refused_by(&start("kept"), "signed");
    assert!(
        err.contains(&format!("{reg}/moved/kept-old@sha256:")),
        "{err}"
    );

    // Control: a signed image whose tag stays put runs.
    let signed = rig.image("moved/signed:v1");
    push("signed", &signed);
    sign(&config, &signed, &key, &[]);
    rig.pull(&ns, &signed).unwrap();
    let ok = run_rm(
        &rig,
        &ns,
        &["--runtime-config-path", &cfg],
        &signed,
        "signed",
        &["echo", "ran"],
    );
    ran(&ok);

    for id in ["moved", "kept"] {
        rig.ctr(&ns, &["containers", "rm", id]).unwrap();
    }
    assert_nothing_left(&rig, &ns);
}

#[test]
fn a_clients_sandbox_annotation_does_not_exempt_a_denied_image() {
    let rig = shared_rig();
    let ns = rig.namespace();
    let dir = tempfile::tempdir().unwrap();
    let reg = rig.registry();
    let (_, cfg) = config(
        &rig,
        dir.path(),
        &format!(
            "version = 1\ndefault = \"deny\"\nsandbox = \"exempt\"\nexempt = [\"{reg}/pause\"]\n"
        ),
    );
    let debug = rig.image("debug/busybox:latest");
    rig.pull(&ns, &debug).unwrap();
    let out = run_rm(
        &rig,
        &ns,
        &[
            "--runtime-config-path",
            &cfg,
            "--annotation",
            "io.kubernetes.cri.container-type=sandbox",
            "--annotation",
            "io.kubernetes.cri.sandbox-namespace=kube-system",
        ],
        &debug,
        "fake-sandbox",
        &["echo", "ran"],
    );
    refused_by(&out, "default");
    // Control: the exempt image itself runs.
    let pause = rig.image("pause:latest");
    rig.pull(&ns, &pause).unwrap();
    let ok = run_rm(
        &rig,
        &ns,
        &["--runtime-config-path", &cfg],
        &pause,
        "exempt",
        &["echo", "ran"],
    );
    ran(&ok);
    assert_nothing_left(&rig, &ns);
}

#[test]
fn a_config_the_node_does_not_list_is_refused_and_the_refusal_recorded_in_the_node_log() {
    let rig = shared_rig();
    let (ns, image) = namespace_with_busybox(&rig);
    let dir = tempfile::tempdir().unwrap();
    // A config whose policy allows everything, with its own log, that the node config does not
    // list.
    let lax = dir.path().join("lax");
    std::fs::create_dir_all(&lax).unwrap();
    std::fs::write(
        lax.join("policy.toml"),
        "version = 1\ndefault = \"allow\"\n",
    )
    .unwrap();
    std::fs::write(
        lax.join("config.toml"),
        format!(
            "policy = \"policy.toml\"\nstate_dir = \"{}\"\n",
            lax.join("state").display()
        ),
    )
    .unwrap();
    let lax_cfg = lax.join("config.toml").display().to_string();
    let before = records(&rig.state_dir()).len();
    let out = run_rm(
        &rig,
        &ns,
        &["--runtime-config-path", &lax_cfg],
        &image,
        "lax",
        &["echo", "ran"],
    );
    let err = refused_by(&out, "config");
    assert!(err.contains("nor listed in its allowed_configs"), "{err}");
    let after = records(&rig.state_dir());
    assert_eq!(after.len(), before + 1, "the refusal is in the node's log");
    assert_eq!(after[before]["decision"], "deny");
    assert!(records(&lax.join("state")).is_empty());
    // Control: once listed, its policy applies.
    rig.allow_config(&lax.join("config.toml")).unwrap();
    ran(&run_rm(
        &rig,
        &ns,
        &["--runtime-config-path", &lax_cfg],
        &image,
        "listed",
        &["echo", "ran"],
    ));
    assert_nothing_left(&rig, &ns);
}

#[test]
fn an_exempt_image_run_privileged_is_refused_by_the_host_rule() {
    let rig = shared_rig();
    let ns = rig.namespace();
    let dir = tempfile::tempdir().unwrap();
    let reg = rig.registry();
    let (_, cfg) = config(
        &rig,
        dir.path(),
        &format!(
            "version = 1\ndefault = \"deny\"\nexempt = [\"{reg}/pause\"]\n[[rule]]\nname = \"hardened\"\nimages = [\"**\"]\naction = \"allow\"\n[rule.host]\nallow_privileged = false\n"
        ),
    );
    let pause = rig.image("pause:latest");
    rig.pull(&ns, &pause).unwrap();
    let out = run_rm(
        &rig,
        &ns,
        &["--runtime-config-path", &cfg, "--privileged"],
        &pause,
        "privileged",
        &["echo", "ran"],
    );
    let err = refused_by(&out, "hardened");
    assert!(err.contains("allow_privileged = false"), "{err}");
    ran(&run_rm(
        &rig,
        &ns,
        &["--runtime-config-path", &cfg],
        &pause,
        "plain",
        &["echo", "ran"],
    ));
    assert_nothing_left(&rig, &ns);
}

#[test]
fn dangerous_capabilities_and_the_hosts_root_are_refused_under_allow_privileged_false() {
    let rig = shared_rig();
    let (ns, image) = namespace_with_busybox(&rig);
    let dir = tempfile::tempdir().unwrap();
    let (_, cfg) = config(&rig, dir.path(), HARDENED);
    // A link on the node that leads to its root, bind-mounted by its own name.
    let link = dir.path().join("innocent");
    std::os::unix::fs::symlink("/", &link).unwrap();
    let through_link = format!(
        "type=bind,src={},dst=/host,options=rbind:ro",
        link.display()
    );
    for (i, (flags, named)) in [
        (vec!["--mount", through_link.as_str()], "hostPath /"),
        (
            vec!["--cap-add", "CAP_SYS_ADMIN"],
            "capabilities.add SYS_ADMIN",
        ),
        (
            vec!["--cap-add", "CAP_SYS_PTRACE"],
            "capabilities.add SYS_PTRACE",
        ),
        (
            vec!["--cap-add", "CAP_SYS_MODULE"],
            "capabilities.add SYS_MODULE",
        ),
        (
            vec!["--mount", "type=bind,src=/,dst=/host,options=rbind:ro"],
            "hostPath /",
        ),
        // A host block device, and a second /proc whose sys/kernel/core_pattern is the node's.
        (vec!["--device", "/dev/loop0"], "devices /dev/loop0"),
        (
            vec!["--mount", "type=proc,src=proc,dst=/p,options=nosuid"],
            "proc mounted at /p",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut extra = vec!["--runtime-config-path", cfg.as_str()];
        extra.extend(flags);
        let out = run_rm(
            &rig,
            &ns,
            &extra,
            &image,
            &format!("dangerous-{i}"),
            &["echo", "ran"],
        );
        let err = refused_by(&out, "hardened");
        assert!(err.contains(named), "expected {named}: {err}");
    }
    ran(&run_rm(
        &rig,
        &ns,
        &[
            "--runtime-config-path",
            &cfg,
            "--cap-add",
            "CAP_NET_BIND_SERVICE",
        ],
        &image,
        "harmless",
        &["echo", "ran"],
    ));
    assert_nothing_left(&rig, &ns);
}

#[test]
fn a_volume_over_measured_code_is_refused_and_scratch_mounts_run() {
    let rig = shared_rig();
    let (ns, image) = namespace_with_busybox(&rig);
    let dir = tempfile::tempdir().unwrap();
    let volume = dir.path().join("volume");
    std::fs::create_dir_all(&volume).unwrap();
    let (_, cfg) = config(
        &rig,
        &dir.path().join("vouch"),
        "version = 1\ndefault = \"deny\"\n[[rule]]\nname = \"measured\"\nimages = [\"**\"]\naction = \"allow\"\n[rule.rootfs]\nbaseline = \"image\"\n",
    );
    let bind = |dst: &str| {
        format!(
            "type=bind,src={},dst={dst},options=rbind:ro",
            volume.display()
        )
    };
    let over_bin = bind("/bin");
    let out = run_rm(
        &rig,
        &ns,
        &["--runtime-config-path", &cfg, "--mount", &over_bin],
        &image,
        "over-bin",
        &["echo", "ran"],
    );
    let err = refused_by(&out, "measured");
    assert!(err.contains("mount over /bin hides measured code"), "{err}");
    // Through a link inside an earlier volume: runc would land the second mount on /bin.
    let linked = dir.path().join("linked");
    std::fs::create_dir_all(&linked).unwrap();
    std::os::unix::fs::symlink("/bin", linked.join("tools")).unwrap();
    let first = format!(
        "type=bind,src={},dst=/data,options=rbind:ro",
        linked.display()
    );
    let second = bind("/data/tools");
    let out = run_rm(
        &rig,
        &ns,
        &[
            "--runtime-config-path",
            &cfg,
            "--mount",
            &first,
            "--mount",
            &second,
        ],
        &image,
        "through-link",
        &["echo", "ran"],
    );
    let err = refused_by(&out, "measured");
    assert!(
        err.contains("mount at /data/tools goes through a symlink in the volume at /data"),
        "{err}"
    );
    // Controls: a volume where the image has no code, and tmpfs scratch space.
    let data = bind("/data");
    ran(&run_rm(
        &rig,
        &ns,
        &[
            "--runtime-config-path",
            &cfg,
            "--mount",
            &data,
            "--mount",
            "type=tmpfs,src=tmpfs,dst=/scratch",
        ],
        &image,
        "scratch",
        &["echo", "ran"],
    ));
    assert_nothing_left(&rig, &ns);
}

#[test]
fn a_spec_whose_root_is_not_the_measured_rootfs_is_refused() {
    let rig = shared_rig();
    let ns = rig.namespace();
    let dir = tempfile::tempdir().unwrap();
    let (_, cfg) = config(
        &rig,
        &dir.path().join("vouch"),
        "version = 1\ndefault = \"allow\"\n",
    );
    // A root filesystem containerd does not manage (`--rootfs`): runc would run the host
    // directory, which nobody measured.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(elsewhere.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", elsewhere.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", elsewhere.join("bin/true")).unwrap();
    let shown = elsewhere.display().to_string();
    let out = rig
        .ctr(
            &ns,
            &[
                "run",
                "--rm",
                "--runtime",
                VOUCH,
                "--runtime-config-path",
                &cfg,
                "--rootfs",
                &shown,
                "unmanaged",
                "/bin/true",
            ],
        )
        .unwrap();
    let err = refused_by(&out, "spec");
    assert!(err.contains("vouch: denied container unmanaged"), "{err}");
    assert!(
        err.contains("is not the root filesystem vouch mounted"),
        "{err}"
    );
    // A whole spec from a file, naming the host's root.
    let spec = dir.path().join("spec.json");
    std::fs::write(
        &spec,
        serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["/bin/true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "root": {"path": "/"},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
        })
        .to_string(),
    )
    .unwrap();
    let spec_path = spec.display().to_string();
    let out = rig
        .ctr(
            &ns,
            &[
                "run",
                "--rm",
                "--runtime",
                VOUCH,
                "--runtime-config-path",
                &cfg,
                "--config",
                &spec_path,
                "host-root",
            ],
        )
        .unwrap();
    refused_by(&out, "spec");
    assert_nothing_left(&rig, &ns);
}

#[test]
fn two_authority_names_for_one_key_count_once_toward_the_threshold() {
    let rig = shared_rig();
    let ns = rig.namespace();
    let dir = tempfile::tempdir().unwrap();
    let reg = rig.registry();
    let (key, public) = keygen(dir.path(), "release");
    let (second, second_public) = keygen(dir.path(), "second");
    let image = rig.image("threshold/app:v1");
    rig.push_busybox("app", "threshold/app:v1").unwrap();
    let policy = |b: &Path| {
        format!(
            "version = 1\ndefault = \"deny\"\n[[rule]]\nname = \"signed\"\nimages = [\"{reg}/threshold/**\"]\naction = \"verify\"\nthreshold = 2\n\
             [[rule.authority]]\nname = \"a\"\nkey = \"{}\"\n[[rule.authority]]\nname = \"b\"\nkey = \"{}\"\n",
            public.display(),
            b.display()
        )
    };
    let (signing, cfg) = config(&rig, &dir.path().join("same"), &policy(&public));
    sign(&signing, &image, &key, &[]);
    rig.pull(&ns, &image).unwrap();
    let out = run_rm(
        &rig,
        &ns,
        &["--runtime-config-path", &cfg],
        &image,
        "same-key",
        &["echo", "ran"],
    );
    let err = refused_by(&out, "signed");
    assert!(
        err.contains("1 of 2 required authorities verified") && err.contains("count once"),
        "{err}"
    );
    // Control: a second key signs, and the second authority trusts it.
    sign(&signing, &image, &second, &[]);
    let (_, cfg) = config(&rig, &dir.path().join("two"), &policy(&second_public));
    ran(&run_rm(
        &rig,
        &ns,
        &["--runtime-config-path", &cfg],
        &image,
        "two-keys",
        &["echo", "ran"],
    ));
    assert_nothing_left(&rig, &ns);
}

#[test]
fn an_audit_start_that_cannot_be_recorded_says_so_in_containerds_log() {
    let rig = shared_rig();
    let (ns, image) = namespace_with_busybox(&rig);
    let dir = tempfile::tempdir().unwrap();
    let (config, cfg) = config(
        &rig,
        dir.path(),
        "version = 1\ndefault = \"deny\"\nmode = \"audit\"\n",
    );
    // A log nobody can write: below a file.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[attestation]\nlog = \"/proc/version/attestations.jsonl\"\n");
    std::fs::write(&config, text).unwrap();
    ran(&run_rm(
        &rig,
        &ns,
        &["--runtime-config-path", &cfg],
        &image,
        "unrecorded",
        &["echo", "ran"],
    ));
    let logged = eventually(std::time::Duration::from_secs(5), || {
        rig.containerd_log().lines().any(|l| {
            l.contains("gate: cannot record the decision") && l.contains("(container unrecorded)")
        })
    });
    assert!(logged, "{}", rig.containerd_log());
    assert_nothing_left(&rig, &ns);
}

#[test]
fn an_exec_beyond_its_container_is_refused_and_one_with_its_own_settings_runs() {
    use vouch_integration::api;
    let rig = shared_rig();
    let (ns, image) = namespace_with_busybox(&rig);
    let dir = tempfile::tempdir().unwrap();
    let reg = rig.registry();
    let (_, cfg) = config(
        &rig,
        dir.path(),
        &format!(
            "version = 1\ndefault = \"allow\"\n[[rule]]\nname = \"no-exec\"\nimages = [\"{reg}/debug/**\"]\naction = \"allow\"\n[rule.host]\nallow_exec = false\n"
        ),
    );
    let out = rig
        .ctr(
            &ns,
            &[
                "run",
                "-d",
                "--runtime",
                VOUCH,
                "--runtime-config-path",
                &cfg,
                &image,
                "target",
                "sleep",
                "300",
            ],
        )
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Control: an exec with the container's own settings (ctr copies them) runs.
    let own = rig
        .ctr(
            &ns,
            &["task", "exec", "--exec-id", "own", "target", "echo", "ran"],
        )
        .unwrap();
    ran(&own);
    // A containerd client asks for more than the container has.
    let process = api::container_process(rig.socket(), &ns, "target").unwrap();
    assert_eq!(process["noNewPrivileges"], true, "{process}");
    let mut more_caps = process.clone();
    for set in ["bounding", "effective", "permitted"] {
        more_caps["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push("CAP_SYS_ADMIN".into());
    }
    let mut escalating = process.clone();
    escalating["noNewPrivileges"] = false.into();
    for (i, (hostile, named)) in [
        (more_caps, "capabilities.add SYS_ADMIN"),
        (escalating, "allowPrivilegeEscalation"),
    ]
    .into_iter()
    .enumerate()
    {
        let bytes = serde_json::to_vec(&hostile).unwrap();
        let refused =
            api::exec_process(rig.socket(), &ns, "target", &format!("hostile-{i}"), &bytes)
                .unwrap()
                .expect_err("an exec beyond its container must be refused");
        let message = refused.message();
        assert!(message.contains("vouch: denied"), "{message}");
        assert!(message.contains("(rule \"exec\")"), "{message}");
        assert!(message.contains(named), "{message}");
    }
    // A process spec runc would read differently (a second, capitalised `user`) is refused.
    let text = serde_json::to_string(&process).unwrap();
    let ambiguous = format!("{},\"User\":{{\"uid\":0}}}}", &text[..text.len() - 1]);
    let refused = api::exec_process(
        rig.socket(),
        &ns,
        "target",
        "ambiguous",
        ambiguous.as_bytes(),
    )
    .unwrap()
    .expect_err("an ambiguous process must be refused");
    assert!(
        refused.message().contains("(rule \"spec\")"),
        "{}",
        refused.message()
    );
    // The container's own process through the API is accepted (then removed unstarted).
    let bytes = serde_json::to_vec(&process).unwrap();
    api::exec_process(rig.socket(), &ns, "target", "api-own", &bytes)
        .unwrap()
        .expect("the container's own process");
    api::delete_process(rig.socket(), &ns, "target", "api-own").unwrap();
    kill_and_remove(&rig, &ns, "target");

    // allow_exec = false: no exec at all into matching containers.
    let debug = rig.image("debug/busybox:latest");
    rig.pull(&ns, &debug).unwrap();
    let out = rig
        .ctr(
            &ns,
            &[
                "run",
                "-d",
                "--runtime",
                VOUCH,
                "--runtime-config-path",
                &cfg,
                &debug,
                "locked",
                "sleep",
                "300",
            ],
        )
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = rig
        .ctr(
            &ns,
            &[
                "task",
                "exec",
                "--exec-id",
                "shell",
                "locked",
                "echo",
                "ran",
            ],
        )
        .unwrap();
    let err = refused_by(&out, "no-exec");
    assert!(err.contains("allow_exec = false"), "{err}");
    kill_and_remove(&rig, &ns, "locked");

    // Every exec decision is in the config's log, with its process.
    let execs: Vec<serde_json::Value> = records(&dir.path().join("state"))
        .into_iter()
        .filter(|r| !r["exec"].is_null())
        .collect();
    let ids: Vec<&str> = execs
        .iter()
        .filter_map(|r| r["exec"]["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "own",
            "hostile-0",
            "hostile-1",
            "ambiguous",
            "api-own",
            "shell"
        ],
        "{execs:?}"
    );
    assert_eq!(execs[0]["decision"], "allow");
    assert_eq!(execs[0]["exec"]["args"], serde_json::json!(["echo", "ran"]));
    assert_eq!(execs[1]["decision"], "deny");
    assert_nothing_left(&rig, &ns);
}

/// Runs `script` (sh) once, right after the gate's next answer and before runc creates the
/// container: the node changing between the gate's look and runc's.
fn after_the_gate(rig: &Rig, script: &str) {
    std::fs::write(rig.after_gate_dir().join("change.sh"), script).unwrap();
}

/// A persistent network namespace bind-mounted at `path` (unmounted by [`Unmount`]).
fn new_network_namespace(path: &Path) -> Unmount {
    std::fs::write(path, b"").unwrap();
    let status = std::process::Command::new("unshare")
        .arg(format!("--net={}", path.display()))
        .arg("true")
        .status()
        .unwrap();
    assert!(status.success(), "unshare --net={}", path.display());
    Unmount(path.to_path_buf())
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        // Stacked mounts (the test's swap adds one) come off one at a time.
        for _ in 0..4 {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

#[test]
fn a_bind_source_or_namespace_changed_after_the_gate_looked_is_refused_before_anything_runs() {
    let rig = Rig::start_with(vouch_integration::RigOptions {
        after_gate_hook: true,
        ..Default::default()
    })
    .unwrap();
    let (ns, image) = namespace_with_busybox(&rig);
    let dir = tempfile::tempdir().unwrap();
    let (_, cfg) = config(&rig, dir.path(), HARDENED);
    let state = dir.path().join("state");

    // A volume reached through a link; the node's root is refused under this rule.
    let safe = dir.path().join("safe");
    std::fs::create_dir(&safe).unwrap();
    std::fs::write(safe.join("marker"), "the volume\n").unwrap();
    let volume = dir.path().join("volume");
    std::os::unix::fs::symlink(&safe, &volume).unwrap();
    let mount = format!(
        "type=bind,src={},dst=/data,options=rbind:ro",
        volume.display()
    );
    let args = [
        "--runtime-config-path",
        cfg.as_str(),
        "--mount",
        mount.as_str(),
    ];
    let out = run_rm(
        &rig,
        &ns,
        &args,
        &image,
        "bind-kept",
        &["cat", "/data/marker"],
    );
    assert_eq!(stdout(&out), "the volume\n", "{}", stderr(&out));
    // The link is turned to the node's root after the gate judged the volume.
    after_the_gate(&rig, &format!("ln -sfn / '{}'\n", volume.display()));
    let out = run_rm(
        &rig,
        &ns,
        &args,
        &image,
        "bind-moved",
        &["cat", "/data/etc/hostname"],
    );
    let err = refused_by(&out, "spec");
    assert!(
        err.contains(&format!(
            "bind mount at /data does not show {}",
            safe.display()
        )),
        "{err}"
    );
    assert!(!stdout(&out).contains(&std::fs::read_to_string("/etc/hostname").unwrap()));
    let last = records(&state).pop().expect("the refusal is recorded");
    assert_eq!(last["decision"], "deny", "{last}");
    assert!(
        last["reasons"][0]
            .as_str()
            .unwrap()
            .contains("bind mount at /data"),
        "{last}"
    );

    // A network namespace joined by path, swapped for the node's own after the gate's look.
    let netns = dir.path().join("netns");
    let _unmount = new_network_namespace(&netns);
    let join = format!("network:{}", netns.display());
    let args = [
        "--runtime-config-path",
        cfg.as_str(),
        "--with-ns",
        join.as_str(),
    ];
    ran(&run_rm(
        &rig,
        &ns,
        &args,
        &image,
        "netns-kept",
        &["echo", "ran"],
    ));
    after_the_gate(
        &rig,
        &format!(
            "umount '{p}' && mount --bind /proc/self/ns/net '{p}'\n",
            p = netns.display()
        ),
    );
    let out = run_rm(&rig, &ns, &args, &image, "netns-moved", &["echo", "ran"]);
    let err = refused_by(&out, "spec");
    assert!(
        err.contains("the container's net namespace is not the one judged"),
        "{err}"
    );
    assert_nothing_left(&rig, &ns);
}

#[test]
fn a_clients_container_whose_record_claims_a_pod_is_refused_unless_cri_knows_it() {
    let rig = Rig::start_with(vouch_integration::RigOptions {
        policy: Some(
            "version = 1\ndefault = \"deny\"\n[[rule]]\nname = \"trusted-pods\"\nimages = [\"**\"]\nnamespaces = [\"trusted\"]\naction = \"allow\"\n"
                .into(),
        ),
        ..Default::default()
    })
    .unwrap();
    let cri = rig.cri().unwrap();
    let image = rig.image("busybox:latest");
    cri.pull_image(&image).unwrap();
    // Control: a container CRI created in a pod of the trusted namespace runs.
    let pod = cri.run_pod("trusted-pod", "trusted", "vouch").unwrap();
    let genuine = cri
        .create_container(&pod, "genuine", &image, &["echo"], &["ran"])
        .unwrap();
    cri.start_container(&genuine).unwrap();
    // A containerd client's own container in CRI's namespace, whose record is then made to say
    // it belongs to that pod.
    let ns = "k8s.io";
    let created = rig
        .ctr(
            ns,
            &[
                "container",
                "create",
                "--runtime",
                "io.containerd.vouch.v2",
                &image,
                "forged",
                "echo",
                "ran",
            ],
        )
        .unwrap();
    assert!(created.status.success(), "{}", stderr(&created));
    vouch_integration::api::forge_cri_record(rig.socket(), ns, &genuine, "forged").unwrap();
    let out = rig.ctr(ns, &["task", "start", "forged"]).unwrap();
    let err = refused_by(&out, "image-identity");
    assert!(err.contains("CRI does not know it"), "{err}");
    assert!(!stdout(&out).contains("ran"));
    let _ = rig.ctr(ns, &["task", "delete", "forged"]);
    let _ = rig.ctr(ns, &["container", "delete", "forged"]);
    cri.stop_pod(&pod).unwrap();
    cri.remove_pod(&pod).unwrap();
}

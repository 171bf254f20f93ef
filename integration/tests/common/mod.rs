//! Helpers shared by the integration test files (each file is its own test binary).
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::Output,
    sync::{Arc, Mutex, Weak},
    time::{Duration, Instant},
};

use vouch_integration::{mounts_under, Rig};

pub const VOUCH: &str = "io.containerd.vouch.v2";

/// One rig shared by the tests of a binary that run at the same time; torn down (and checked)
/// when the last of them lets go, so a test failure still cleans up.
pub fn shared_rig() -> Arc<Rig> {
    static SHARED: Mutex<Weak<Rig>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(rig) = slot.upgrade() {
        return rig;
    }
    let rig = Arc::new(Rig::start().expect("start a private containerd and registry"));
    rig.push_busybox("busybox", "busybox:latest")
        .expect("push busybox");
    *slot = Arc::downgrade(&rig);
    rig
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A namespace with busybox pulled into it.
pub fn namespace_with_busybox(rig: &Rig) -> (String, String) {
    let ns = rig.namespace();
    let image = rig.image("busybox:latest");
    rig.pull(&ns, &image).expect("pull busybox");
    (ns, image)
}

/// `containerd-shim-vouch-v2` processes of this rig whose command line has `flag value`.
pub fn shims_with(rig: &Rig, flag: &str, value: &str) -> Vec<u32> {
    rig.shim_pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
                    args.windows(2)
                        .any(|w| w[0] == flag.as_bytes() && w[1] == value.as_bytes())
                })
                .unwrap_or(false)
        })
        .collect()
}

/// `containerd-shim-vouch-v2` processes of this rig serving namespace `ns`.
pub fn shims_in_namespace(rig: &Rig, ns: &str) -> Vec<u32> {
    shims_with(rig, "-namespace", ns)
}

/// `ctr run --rm --runtime io.containerd.vouch.v2 [extra...] IMAGE ID ARGS...`.
pub fn run_rm(rig: &Rig, ns: &str, extra: &[&str], image: &str, id: &str, args: &[&str]) -> Output {
    let mut argv = vec!["run", "--rm", "--runtime", VOUCH];
    argv.extend_from_slice(extra);
    argv.extend_from_slice(&[image, id]);
    argv.extend_from_slice(args);
    rig.ctr(ns, &argv).expect("ctr run")
}

/// `ctr run -d --runtime io.containerd.vouch.v2 IMAGE ID ARGS...`, which must succeed.
pub fn run_detached(rig: &Rig, ns: &str, image: &str, id: &str, args: &[&str]) {
    let mut argv = vec!["run", "-d", "--runtime", VOUCH, image, id];
    argv.extend_from_slice(args);
    let out = rig.ctr(ns, &argv).expect("ctr run -d");
    assert!(out.status.success(), "ctr run -d {id}: {}", stderr(&out));
}

/// True once `ctr task ls` shows the task STOPPED (within 10 s).
pub fn wait_stopped(rig: &Rig, ns: &str, id: &str) -> bool {
    eventually(Duration::from_secs(10), || {
        stdout(&rig.ctr(ns, &["task", "ls"]).expect("ctr task ls"))
            .lines()
            .any(|l| l.starts_with(id) && l.contains("STOPPED"))
    })
}

/// Kills a task with SIGKILL, waits for it to stop, and removes task and container. Returns the
/// output of `ctr task rm` (which reports a non-zero exit status).
pub fn kill_and_remove(rig: &Rig, ns: &str, id: &str) -> Output {
    let kill = rig
        .ctr(ns, &["task", "kill", "-s", "SIGKILL", id])
        .expect("ctr task kill");
    assert!(kill.status.success(), "{}", stderr(&kill));
    assert!(wait_stopped(rig, ns, id), "task {id} did not stop");
    let rm = rig.ctr(ns, &["task", "rm", id]).expect("ctr task rm");
    rig.ctr(ns, &["containers", "rm", id])
        .expect("ctr containers rm");
    rm
}

/// Asserts that nothing of namespace `ns` is left: no shim process (given a moment to exit), no
/// rootfs mount, no runc state.
pub fn assert_nothing_left(rig: &Rig, ns: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let shims = shims_in_namespace(rig, ns);
        if shims.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "vouch shims still running for namespace {ns}: {shims:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let marker = format!("/{ns}/");
    let mounts: Vec<String> = mounts_under(rig.root())
        .into_iter()
        .filter(|m| m.contains(&marker))
        .collect();
    assert!(
        mounts.is_empty(),
        "mounts left in namespace {ns}: {mounts:?}"
    );
    let runc_state = Path::new("/run/containerd/runc").join(ns);
    let left: Vec<PathBuf> = std::fs::read_dir(&runc_state)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "runc state left: {left:?}");
    let bundles = rig
        .root()
        .join("state/io.containerd.runtime.v2.task")
        .join(ns);
    assert!(
        eventually(Duration::from_secs(5), || std::fs::read_dir(&bundles)
            .map(|mut d| d.next().is_none())
            .unwrap_or(true)),
        "bundle directories left in {}",
        bundles.display()
    );
    let tasks = rig.ctr(ns, &["tasks", "ls", "-q"]).expect("ctr tasks ls");
    assert_eq!(stdout(&tasks).trim(), "", "tasks left in {ns}");
}

/// Polls `f` until it returns true or `limit` passes.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Writes a vouch config and policy into `dir`, for `ctr run --runtime-config-path`, and lists
/// it in the rig's node config (`allowed_configs`).
pub fn write_vouch_config(rig: &Rig, dir: &Path, policy: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("config dir");
    let config = dir.join("config.toml");
    std::fs::write(dir.join("policy.toml"), policy).expect("write policy");
    std::fs::write(
        &config,
        format!(
            "policy = \"{}\"\nstate_dir = \"{}\"\n",
            dir.join("policy.toml").display(),
            dir.join("state").display()
        ),
    )
    .expect("write config");
    rig.allow_config(&config).expect("allow the config");
    config
}

/// Like [`write_vouch_config`], with the rig's loopback registry reached over plain HTTP.
pub fn write_vouch_config_for(rig: &Rig, dir: &Path, policy: &str) -> PathBuf {
    let config = write_vouch_config(rig, dir, policy);
    let mut text = std::fs::read_to_string(&config).expect("read config");
    text.push_str(&format!(
        "[registry]\nplain_http = [\"{}\"]\n",
        rig.registry()
    ));
    std::fs::write(&config, text).expect("write config");
    config
}

/// The `vouch` CLI built next to the shim.
pub fn vouch_bin() -> PathBuf {
    Rig::shim_binary()
        .expect("shim binary")
        .with_file_name("vouch")
}

/// The password every test key is encrypted with.
pub const KEY_PASSWORD: &str = "integration test password";

/// Runs `vouch ARGS...` with the test key password.
pub fn vouch(args: &[&str]) -> Output {
    std::process::Command::new(vouch_bin())
        .args(args)
        .env("COSIGN_PASSWORD", KEY_PASSWORD)
        .output()
        .expect("run vouch")
}

/// `vouch keygen DIR/NAME`: returns the private and public key paths.
pub fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let prefix = dir.join(name);
    let out = vouch(&["keygen", &prefix.display().to_string()]);
    assert!(out.status.success(), "vouch keygen: {}", stderr(&out));
    (prefix.with_extension("key"), prefix.with_extension("pub"))
}

/// `vouch --config C sign IMAGE --key K [extra...]`, which must succeed.
pub fn sign(config: &Path, image: &str, key: &Path, extra: &[&str]) {
    let cfg = config.display().to_string();
    let k = key.display().to_string();
    let mut args = vec!["--config", cfg.as_str(), "sign", image, "--key", k.as_str()];
    args.extend_from_slice(extra);
    let out = vouch(&args);
    assert!(out.status.success(), "vouch sign {image}: {}", stderr(&out));
}

/// What to put at a path of a test image.
pub enum Put<'a> {
    Text(&'a str),
    CopyOf(&'a str),
    Link(&'a str),
}

/// Builds OCI layout tag `tag` from the rig's busybox (tag `base`) plus `files`, in a copy of the
/// rig's layout at `dir/layout` (made once per `dir`), and returns the layout's path.
pub fn build_layout(rig: &Rig, dir: &Path, tag: &str, files: &[(&str, Put<'_>)]) -> PathBuf {
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
    layout
}

/// The predicates of the attestation log under `state`, as JSON, in log order.
pub fn records(state: &Path) -> Vec<serde_json::Value> {
    let log = state.join("attestations.jsonl");
    if !log.exists() {
        return Vec::new();
    }
    vouch_verifier::attestlog::read_log(&log)
        .unwrap()
        .into_iter()
        .map(|r| serde_json::to_value(r.predicate.unwrap()).unwrap())
        .collect()
}

/// `vouch --config C attest IMAGE --predicate F --type T --key K`, which must succeed.
pub fn attest(config: &Path, image: &str, predicate: &Path, kind: &str, key: &Path) {
    let out = vouch(&[
        "--config",
        &config.display().to_string(),
        "attest",
        image,
        "--predicate",
        &predicate.display().to_string(),
        "--type",
        kind,
        "--key",
        &key.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "vouch attest {image} --type {kind}: {}",
        stderr(&out)
    );
}

//! The rig: a private containerd and registry under one temporary directory.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::Signal;
use sha2::{Digest, Sha256};

use crate::cri::Cri;
use crate::image::{build_busybox_layout, SHELL_IMAGES};
use crate::procs::{
    mounts_under, pids_with_address, run_checked, shim_pids_with_address, signal, stop_child, tail,
    unmount_under, wait_gone, which,
};

/// The containerd namespace of everything made through CRI.
pub const CRI_NAMESPACE: &str = "k8s.io";
/// The runtime type of the vouch shim.
pub const VOUCH_RUNTIME: &str = "io.containerd.vouch.v2";

const SHIM_NAME: &str = "containerd-shim-vouch-v2";
const VERIFIER_NAME: &str = "vouch";
const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const DEFAULT_POLICY: &str =
    "version = 1\ndefault = \"allow\"\nmode = \"enforce\"\nsandbox = \"exempt\"\n";

/// What every rig pushes to its registry: (tag in the OCI layout, repository:tag). Each is a
/// distinct image (its own digest) over one shared busybox layer.
const PUSHED: &[(&str, &str)] = &[
    SHELL_IMAGES[0],
    SHELL_IMAGES[1],
    SHELL_IMAGES[2],
    ("pause", "pause:latest"),
];

static NEXT_NAMESPACE: AtomicUsize = AtomicUsize::new(0);

/// Options for [`Rig::start_with`].
#[derive(Debug, Clone, Default)]
pub struct RigOptions {
    /// Extra environment for containerd, which passes it on to the shims it starts
    /// (e.g. `RUST_LOG`).
    pub containerd_env: Vec<(String, String)>,
    /// The initial policy (TOML); the permissive default when `None`.
    pub policy: Option<String>,
    /// Start without the vouch shim even if `VOUCH_RIG_NO_SHIM` is unset (for tests that only
    /// need the stock runc shim).
    pub no_shim: bool,
    /// Puts a wrapper in place of the `vouch` binary beside the shim: after each `vouch` run
    /// (the gate's answer is written, the shim not yet on), it runs and removes each script in
    /// [`Rig::after_gate_dir`]. Tests use it to change the node between the gate's look and
    /// runc's, deterministically.
    pub after_gate_hook: bool,
}

/// How long the parts of [`Rig::start`] took.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartTimings {
    /// From the call to a ready rig.
    pub total: Duration,
    /// Until the registry answered `GET /v2/`.
    pub registry: Duration,
    /// Building the busybox OCI layout with umoci.
    pub image_build: Duration,
    /// Pushing the four images (in parallel) with skopeo.
    pub image_push: Duration,
    /// From spawning containerd until `ctr version` answered; checked only once the images are
    /// pushed (which runs meanwhile), so never less than `image_build + image_push`.
    pub containerd: Duration,
}

/// A private containerd with the vouch shim on its `PATH`, and a loopback registry holding
/// small busybox images. Everything is torn down when the rig is dropped.
pub struct Rig {
    id: String,
    root: PathBuf,
    sock: PathBuf,
    registry_port: u16,
    registry: Option<Child>,
    containerd: Option<Child>,
    has_shim: bool,
    namespaces: Mutex<BTreeSet<String>>,
    /// Configs the node config lists in `allowed_configs` (tests' own `--runtime-config-path`).
    allowed_configs: Mutex<Vec<PathBuf>>,
    timings: StartTimings,
}

impl Rig {
    /// Starts a rig with the default options. Needs the shim binary (see [`Rig::shim_binary`])
    /// unless the environment has `VOUCH_RIG_NO_SHIM=1`.
    pub fn start() -> Result<Rig> {
        Self::start_with(RigOptions::default())
    }

    /// Starts a rig.
    pub fn start_with(opts: RigOptions) -> Result<Rig> {
        let t0 = Instant::now();
        let root = nix::unistd::mkdtemp("/tmp/vt-XXXXXX").context("mkdtemp /tmp/vt-XXXXXX")?;
        let id = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // From here on, dropping `rig` (also on an early error) cleans everything up.
        let mut rig = Rig {
            id,
            sock: root.join("c.sock"),
            root,
            registry_port: 0,
            registry: None,
            containerd: None,
            has_shim: false,
            namespaces: Mutex::new(BTreeSet::new()),
            allowed_configs: Mutex::new(Vec::new()),
            timings: StartTimings::default(),
        };
        let r = rig.root.clone();
        for d in [
            "bin",
            "vouch/state",
            "cni/bin",
            "cni/conf",
            "pods",
            "registry",
            "opt",
        ] {
            std::fs::create_dir_all(r.join(d)).with_context(|| format!("mkdir {d}"))?;
        }

        let no_shim = opts.no_shim || std::env::var("VOUCH_RIG_NO_SHIM").is_ok_and(|v| v == "1");
        match Self::shim_binary() {
            Ok(bin) => {
                std::fs::copy(&bin, r.join("bin").join(SHIM_NAME))
                    .with_context(|| format!("copy {}", bin.display()))?;
                // The shim runs its gate as `vouch gate`, found next to the shim binary.
                let verifier = bin.with_file_name(VERIFIER_NAME);
                let installed = if opts.after_gate_hook {
                    r.join("bin").join(format!("{VERIFIER_NAME}.real"))
                } else {
                    r.join("bin").join(VERIFIER_NAME)
                };
                std::fs::copy(&verifier, &installed).with_context(|| {
                    format!(
                        "copy {} (run `cargo build --workspace --bins` first)",
                        verifier.display()
                    )
                })?;
                if opts.after_gate_hook {
                    std::fs::create_dir_all(rig.after_gate_dir())?;
                    let wrapper = format!(
                        "#!/bin/sh\n\"{real}\" \"$@\"\nrc=$?\nfor t in \"{hooks}\"/*; do\n  \
                         [ -f \"$t\" ] || continue\n  sh \"$t\" >>\"{hooks}.log\" 2>&1\n  \
                         rm -f \"$t\"\ndone\nexit $rc\n",
                        real = installed.display(),
                        hooks = rig.after_gate_dir().display()
                    );
                    let path = r.join("bin").join(VERIFIER_NAME);
                    std::fs::write(&path, wrapper)?;
                    std::fs::set_permissions(
                        &path,
                        std::os::unix::fs::PermissionsExt::from_mode(0o755),
                    )?;
                }
                rig.has_shim = true;
            }
            Err(e) if no_shim => eprintln!("vouch rig: starting without the vouch shim: {e:#}"),
            Err(e) => return Err(e),
        }

        rig.write_policy(opts.policy.as_deref().unwrap_or(DEFAULT_POLICY))?;

        rig.start_registry()?;
        rig.write_node_config(&[])?;
        let t_registry = t0.elapsed();

        std::fs::write(r.join("config.toml"), rig.containerd_config())?;
        let log = std::fs::File::create(r.join("containerd.log"))?;
        let mut cmd = Command::new(which("containerd").unwrap_or_else(|| "containerd".into()));
        cmd.arg("--config")
            .arg(r.join("config.toml"))
            .env("PATH", format!("{}:{SYSTEM_PATH}", r.join("bin").display()))
            .env("VOUCH_CONFIG", rig.config_path())
            .envs(opts.containerd_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let t_containerd = Instant::now();
        rig.containerd = Some(
            cmd.spawn()
                .context("spawn containerd (run hack/setup.sh)")?,
        );

        // Build and push the images while containerd starts.
        rig.build_and_push_images()?;
        rig.wait_containerd(Duration::from_secs(20))?;
        rig.timings.containerd = t_containerd.elapsed();
        // The registry we pushed to must still be ours (not a process that won a port race).
        if let Some(c) = rig.registry.as_mut() {
            if !matches!(c.try_wait(), Ok(None)) {
                bail!("the registry exited: {}", tail(&r.join("registry.log"), 20));
            }
        }
        rig.timings.registry = t_registry;
        rig.timings.total = t0.elapsed();
        eprintln!("vouch rig {}: {:?}", r.display(), rig.timings);
        Ok(rig)
    }

    /// Where the shim binary is taken from: `$VOUCH_SHIM_BIN`, else
    /// `<target>/debug/containerd-shim-vouch-v2` next to the running test executable.
    pub fn shim_binary() -> Result<PathBuf> {
        if let Some(p) = std::env::var_os("VOUCH_SHIM_BIN") {
            let p = PathBuf::from(p);
            if p.is_file() {
                return Ok(p);
            }
            bail!("VOUCH_SHIM_BIN={} is not a file", p.display());
        }
        let exe = std::env::current_exe().context("current_exe")?;
        // Tests run from <target>/<profile>/deps/<test>-<hash>.
        let candidates: Vec<PathBuf> = exe
            .ancestors()
            .skip(1)
            .take(3)
            .map(|d| d.join(SHIM_NAME))
            .collect();
        candidates
            .iter()
            .find(|p| p.is_file())
            .cloned()
            .ok_or_else(|| {
                anyhow!(
                "{SHIM_NAME} not found (looked at {}); run `cargo build --workspace --bins` first, \
                 or set VOUCH_SHIM_BIN, or VOUCH_RIG_NO_SHIM=1 for tests that do not need it",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
            })
    }

    fn start_registry(&mut self) -> Result<()> {
        let r = self.root.clone();
        let mut last_err = None;
        for _attempt in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            std::fs::write(
                r.join("registry.yml"),
                format!(
                    "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                     http:\n  addr: 127.0.0.1:{port}\n",
                    r.join("registry").display()
                ),
            )?;
            let log = std::fs::File::create(r.join("registry.log"))?;
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(r.join("registry.yml"))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("spawn docker-registry (run hack/setup.sh)")?;
            let deadline = Instant::now() + Duration::from_secs(10);
            let ok = loop {
                if !matches!(child.try_wait(), Ok(None)) {
                    break false;
                }
                // Answering is not enough: another rig's registry may hold the port we picked.
                if registry_answers(port)
                    && vouch_verifier::tpm::testtpm::listens_on(child.id(), port)
                {
                    break true;
                }
                if Instant::now() > deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            if ok && matches!(child.try_wait(), Ok(None)) {
                self.registry_port = port;
                self.registry = Some(child);
                return Ok(());
            }
            stop_child(&mut child, Duration::from_secs(2));
            last_err = Some(anyhow!(
                "docker-registry on 127.0.0.1:{port} did not come up: {}",
                tail(&r.join("registry.log"), 20)
            ));
        }
        Err(last_err.unwrap_or_else(|| anyhow!("docker-registry did not start")))
    }

    fn build_and_push_images(&mut self) -> Result<()> {
        let t0 = Instant::now();
        build_busybox_layout(&self.layout_path(), &self.root.join("imgwork"))?;
        self.timings.image_build = t0.elapsed();
        let t1 = Instant::now();
        // Push in parallel: each is a separate skopeo process.
        let mut children = Vec::new();
        for (tag, dest) in PUSHED {
            children.push((dest, self.skopeo_push_cmd(tag, dest).spawn()?));
        }
        let mut errors = Vec::new();
        for (dest, child) in children {
            let out = child.wait_with_output()?;
            if !out.status.success() {
                errors.push(format!(
                    "push {dest}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        if !errors.is_empty() {
            bail!("{}", errors.join("; "));
        }
        self.timings.image_push = t1.elapsed();
        Ok(())
    }

    fn skopeo_push_cmd(&self, layout_tag: &str, dest: &str) -> Command {
        let mut c = Command::new("skopeo");
        c.args(["copy", "-q", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:{layout_tag}", self.layout_path().display()))
            .arg(format!("docker://{}", self.image(dest)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Copies `src` (any skopeo transport reference, e.g. `oci:/path/layout:tag`) to
    /// `<registry>/<dest>` (`repository:tag`).
    pub fn push(&self, src: &str, dest: &str) -> Result<()> {
        run_checked(
            Command::new("skopeo")
                .args([
                    "copy",
                    "-q",
                    "--src-tls-verify=false",
                    "--dest-tls-verify=false",
                ])
                .arg(src)
                .arg(format!("docker://{}", self.image(dest))),
        )?;
        Ok(())
    }

    /// Pushes a tag of the rig's busybox OCI layout (`base`, `busybox`, `app`, `debug`, `pause`) to
    /// `<registry>/<dest>`.
    pub fn push_busybox(&self, layout_tag: &str, dest: &str) -> Result<()> {
        self.push(
            &format!("oci:{}:{layout_tag}", self.layout_path().display()),
            dest,
        )
    }

    fn containerd_config(&self) -> String {
        let r = self.root.display();
        let reg = self.registry();
        format!(
            r#"version = 2
root = "{r}/root"
state = "{r}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{r}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{reg}/pause:latest"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_tcp_service = true

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.vouch]
  runtime_type = "{VOUCH_RUNTIME}"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.vouch.options]
  ConfigPath = "{config}"

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "{r}/cni/bin"
  conf_dir = "{r}/cni/conf"

[plugins."io.containerd.grpc.v1.cri".registry.mirrors."{reg}"]
  endpoint = ["http://{reg}"]
"#,
            sock = self.sock.display(),
            config = self.config_path().display(),
        )
    }

    fn wait_containerd(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(c) = self.containerd.as_mut() {
                if !matches!(c.try_wait(), Ok(None)) {
                    bail!(
                        "containerd exited during start; log tail:\n{}",
                        tail(&self.root.join("containerd.log"), 30)
                    );
                }
            }
            if self.sock.exists() {
                let out = self.ctr_raw(None, &["version"], 5, None);
                if out.as_ref().is_ok_and(|o| o.status.success()) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "containerd did not answer on {} within {:?}; log tail:\n{}",
                    self.sock.display(),
                    timeout,
                    tail(&self.root.join("containerd.log"), 30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The rig's temporary directory (`/tmp/vt-XXXXXX`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A short unique id of this rig (the temporary directory's name).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// containerd's gRPC socket (the `-address` its shims get).
    pub fn socket(&self) -> &Path {
        &self.sock
    }

    /// The registry's `host:port` on loopback.
    pub fn registry(&self) -> String {
        format!("127.0.0.1:{}", self.registry_port)
    }

    /// The full reference of `name` (`repository:tag`) in the rig's registry.
    pub fn image(&self, name: &str) -> String {
        format!("{}/{name}", self.registry())
    }

    /// The OCI layout the test images were built in (tags `base`, `busybox`, `app`, `debug`,
    /// `pause`; see [`crate::SHELL_IMAGES`]).
    pub fn layout_path(&self) -> PathBuf {
        self.root.join("layout")
    }

    /// The manifest digest (`sha256:...`) of a tag of the rig's OCI layout; the same digest the
    /// registry serves for the repositories it was pushed to.
    pub fn layout_digest(&self, layout_tag: &str) -> Result<String> {
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.layout_path().join("index.json"))?)?;
        index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == layout_tag)
            .and_then(|m| m["digest"].as_str())
            .map(str::to_string)
            .ok_or_else(|| anyhow!("no tag {layout_tag} in {}", self.layout_path().display()))
    }

    /// The manifest digest of one of the images every rig pushes (`busybox:latest`,
    /// `team/app:v1`, `debug/busybox:latest`, `pause:latest`).
    pub fn image_digest(&self, name: &str) -> Result<String> {
        let tag = PUSHED
            .iter()
            .find(|(_, dest)| *dest == name)
            .map(|(tag, _)| *tag)
            .ok_or_else(|| anyhow!("{name} is not one of the rig's images"))?;
        self.layout_digest(tag)
    }

    /// Whether the vouch shim was installed (false only with `VOUCH_RIG_NO_SHIM=1`).
    pub fn has_vouch_shim(&self) -> bool {
        self.has_shim
    }

    /// Scripts run once each after the next `vouch` run (see [`RigOptions::after_gate_hook`]).
    pub fn after_gate_dir(&self) -> PathBuf {
        self.root.join("after-gate.d")
    }

    /// The vouch node config (`ConfigPath` of the CRI runtime, and `$VOUCH_CONFIG`).
    pub fn config_path(&self) -> PathBuf {
        self.root.join("vouch/config.toml")
    }

    /// The policy file the node config names.
    pub fn policy_path(&self) -> PathBuf {
        self.root.join("vouch/policy.toml")
    }

    /// The kubelet root the node config names: pod volumes of CRI tests live under
    /// `<kubelet_root>/pods/<pod uid>/volumes/`.
    pub fn kubelet_root(&self) -> PathBuf {
        self.root.join("kubelet")
    }

    /// The vouch state directory the node config names.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("vouch/state")
    }

    /// The registry's access log so far (one line per request), to count what was fetched.
    pub fn registry_log(&self) -> String {
        std::fs::read(self.root.join("registry.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Stops the registry (by PID): later fetches find it unreachable.
    pub fn stop_registry(&mut self) {
        if let Some(mut child) = self.registry.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Writes the vouch node config (atomically): the loopback registry is reached over plain
    /// HTTP, and containers may name the configs in `allowed`.
    fn write_node_config(&self, allowed: &[PathBuf]) -> Result<()> {
        let list: Vec<String> = allowed
            .iter()
            .map(|p| format!("\"{}\"", p.display()))
            .collect();
        let text = format!(
            "allowed_configs = [{}]\npolicy = \"{}\"\nstate_dir = \"{}\"\n[registry]\nplain_http = [\"{}\"]\n[kubernetes]\nkubelet_root = \"{}\"\n",
            list.join(", "),
            self.policy_path().display(),
            self.state_dir().display(),
            self.registry(),
            self.kubelet_root().display()
        );
        let tmp = self.root.join("vouch/.config.toml.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, self.config_path())?;
        Ok(())
    }

    /// Lets containers name the vouch config at `path` with `--runtime-config-path`: the node
    /// config lists it in `allowed_configs` (vouch refuses any config the node does not list).
    pub fn allow_config(&self, path: &Path) -> Result<()> {
        let mut allowed = self
            .allowed_configs
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !allowed.iter().any(|p| p == path) {
            allowed.push(path.to_path_buf());
        }
        self.write_node_config(&allowed)
    }

    /// Replaces the policy (atomically: a reader never sees half a file).
    pub fn write_policy(&self, toml: &str) -> Result<()> {
        let tmp = self.root.join("vouch/.policy.toml.tmp");
        std::fs::write(&tmp, toml)?;
        std::fs::rename(&tmp, self.policy_path())?;
        Ok(())
    }

    /// A fresh containerd namespace, unique across rigs and processes; cleaned up on drop.
    pub fn namespace(&self) -> String {
        let n = NEXT_NAMESPACE.fetch_add(1, Ordering::Relaxed);
        let ns = format!("t{}x{n}", std::process::id());
        self.note_namespace(&ns);
        ns
    }

    fn note_namespace(&self, ns: &str) {
        if let Ok(mut s) = self.namespaces.lock() {
            s.insert(ns.to_string());
        }
    }

    /// containerd's log so far (the shims' log lines are forwarded there).
    pub fn containerd_log(&self) -> String {
        std::fs::read(self.root.join("containerd.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Pulls `image` into namespace `ns` (plain HTTP: the registry is on loopback).
    pub fn pull(&self, ns: &str, image: &str) -> Result<()> {
        let out = self.ctr_with_timeout(ns, &["images", "pull", "--plain-http", image], 60)?;
        if !out.status.success() {
            bail!(
                "ctr images pull {image} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Runs `ctr -a <sock> -n <ns> ARGS...` (60 s timeout), capturing stdout and stderr.
    pub fn ctr(&self, ns: &str, args: &[&str]) -> Result<Output> {
        self.ctr_with_timeout(ns, args, 60)
    }

    /// As [`Rig::ctr`], killed after `secs` seconds (SIGTERM, SIGKILL 5 s later; exit 124).
    pub fn ctr_with_timeout(&self, ns: &str, args: &[&str], secs: u64) -> Result<Output> {
        self.note_namespace(ns);
        self.ctr_raw(Some(ns), args, secs, None)
    }

    /// As [`Rig::ctr_with_timeout`], with `stdin` piped to ctr's standard input (which stays
    /// open after it: ctr 1.6 never closes a container's stdin at EOF).
    pub fn ctr_with_stdin(
        &self,
        ns: &str,
        args: &[&str],
        stdin: &[u8],
        secs: u64,
    ) -> Result<Output> {
        self.note_namespace(ns);
        self.ctr_raw(Some(ns), args, secs, Some(stdin))
    }

    fn ctr_raw(
        &self,
        ns: Option<&str>,
        args: &[&str],
        secs: u64,
        stdin: Option<&[u8]>,
    ) -> Result<Output> {
        let mut cmd = Command::new("timeout");
        cmd.args(["-k", "5", &secs.to_string(), "ctr", "-a"])
            .arg(&self.sock);
        if let Some(ns) = ns {
            cmd.args(["-n", ns]);
        }
        cmd.args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = cmd.spawn().with_context(|| format!("spawn {cmd:?}"))?;
        if let (Some(data), Some(mut w)) = (stdin, child.stdin.take()) {
            let data = data.to_vec();
            // A writer thread, so that a child which reads little cannot dead-lock us; the pipe
            // closes when the thread ends (ctr keeps the container's stdin open regardless).
            std::thread::spawn(move || {
                let _ = w.write_all(&data);
            });
        }
        child
            .wait_with_output()
            .with_context(|| format!("wait {cmd:?}"))
    }

    /// A CRI client on this rig's containerd (its own tokio runtime; blocking helpers).
    pub fn cri(&self) -> Result<Cri> {
        self.note_namespace(CRI_NAMESPACE);
        Cri::connect(&self.sock, &self.root.join("pods"), &self.id)
    }

    /// Mount points still under the rig's directory.
    pub fn mounts_under_root(&self) -> Vec<String> {
        mounts_under(&self.root)
    }

    /// PIDs of `containerd-shim-vouch-v2` processes started by this rig's containerd.
    pub fn shim_pids(&self) -> Vec<u32> {
        shim_pids_with_address(&self.sock)
    }

    /// PIDs of every shim (any runtime) started by this rig's containerd.
    pub fn all_shim_pids(&self) -> Vec<u32> {
        pids_with_address(&self.sock)
    }

    /// How long starting this rig took.
    pub fn timings(&self) -> StartTimings {
        self.timings
    }

    /// PID of this rig's containerd.
    pub fn containerd_pid(&self) -> Option<u32> {
        self.containerd.as_ref().map(|c| c.id())
    }

    /// Kills every task and removes every container in `ns` (best effort). Returns the ids of
    /// the containers that were there.
    pub fn clean_namespace(&self, ns: &str) -> Vec<String> {
        let ids = |out: Result<Output>| -> Vec<String> {
            out.ok()
                .filter(|o| o.status.success())
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .map(|l| l.trim().to_string())
                        .filter(|l| !l.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let tasks = ids(self.ctr_raw(Some(ns), &["tasks", "ls", "-q"], 10, None));
        for t in &tasks {
            let _ = self.ctr_raw(
                Some(ns),
                &["tasks", "kill", "-a", "-s", "SIGKILL", t],
                10,
                None,
            );
        }
        for t in &tasks {
            let _ = self.ctr_raw(Some(ns), &["tasks", "delete", "-f", t], 15, None);
        }
        let containers = ids(self.ctr_raw(Some(ns), &["containers", "ls", "-q"], 10, None));
        for c in &containers {
            let _ = self.ctr_raw(Some(ns), &["containers", "rm", c], 15, None);
        }
        containers
    }

    fn teardown(&mut self) {
        let mut seen: Vec<(String, String)> = Vec::new();
        let mut namespaces: BTreeSet<String> = self
            .namespaces
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        namespaces.insert(CRI_NAMESPACE.to_string());
        if self
            .containerd
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
        {
            for ns in &namespaces {
                for id in self.clean_namespace(ns) {
                    seen.push((ns.clone(), id));
                }
            }
        }
        if let Some(mut c) = self.containerd.take() {
            stop_child(&mut c, Duration::from_secs(10));
        }
        // Shims outlive containerd: find them by the `-address` in their command line.
        let shims = pids_with_address(&self.sock);
        for p in &shims {
            signal(*p, Signal::SIGKILL);
        }
        let _ = wait_gone(&shims, Duration::from_secs(5));
        // A killed shim leaves its socket in /run/containerd/s, named after
        // sha256(address/namespace/id).
        for (ns, id) in &seen {
            let key = format!("{}/{ns}/{id}", self.sock.display());
            let sock = format!("/run/containerd/s/{}", hex::encode(Sha256::digest(key)));
            let _ = std::fs::remove_file(sock);
        }
        if let Some(mut r) = self.registry.take() {
            stop_child(&mut r, Duration::from_secs(5));
        }
        let left = unmount_under(&self.root);
        if !left.is_empty() {
            eprintln!("vouch rig: could not unmount {left:?}");
        }
        // Empty per-namespace directories runc and the cgroup drivers leave behind.
        for ns in namespaces.iter().filter(|n| n.as_str() != CRI_NAMESPACE) {
            let _ = std::fs::remove_dir(format!("/run/containerd/runc/{ns}"));
            remove_cgroups(ns);
        }
        remove_cgroups(&self.id);
        if std::env::var("VOUCH_RIG_KEEP").is_ok_and(|v| v == "1") {
            eprintln!(
                "vouch rig: keeping {} (VOUCH_RIG_KEEP=1)",
                self.root.display()
            );
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.root) {
            eprintln!("vouch rig: rm -r {}: {e}", self.root.display());
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // Never panic in drop (it may run while a failed test unwinds).
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.teardown()));
        if r.is_err() {
            eprintln!("vouch rig: teardown of {} panicked", self.root.display());
        }
    }
}

/// Removes (empty) cgroup directories named `name` at the top of every v1 hierarchy and in
/// the unified one, deepest first.
fn remove_cgroups(name: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let mut dirs = Vec::new();
    let mut roots: Vec<PathBuf> = vec![Path::new("/sys/fs/cgroup").join(name)];
    roots.extend(hierarchies.filter_map(|e| Some(e.ok()?.path().join(name))));
    for r in roots {
        collect_dirs(&r, &mut dirs);
    }
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }
}

fn collect_dirs(d: &Path, out: &mut Vec<PathBuf>) {
    if !d.is_dir() {
        return;
    }
    out.push(d.to_path_buf());
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}

/// True when `GET /v2/` on 127.0.0.1:`port` answers 200.
fn registry_answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    let head = String::from_utf8_lossy(&buf[..n]);
    head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200")
}

//! The Kubernetes Pod Security Standards judged on the node, through CRI as a kubelet drives it:
//! pods with `runtime_handler: "vouch"` on the rig's containerd 1.6, each container configured as
//! the kubelet turns a pod manifest into CRI (security contexts, volumes under the kubelet root).
//! A container that breaks its rule's level is refused at StartContainer with the rule and the
//! setting named; beside it, an honest container of the same pod runs.
//!
//! Every pod has a network namespace of its own: a host-network pod breaks baseline whatever its
//! containers do. That needs a CNI plugin; [`install_pod_network`] puts a minimal one in the rig's
//! CNI directories.
//!
//! What containerd 1.6 shows the gate, seen here:
//! - CRI bind-mounts its own hosts, hostname and resolv.conf (from its root directory) and the
//!   pod's /dev/shm (from its state directory) into every container of a pod with its own network.
//! - CRI masks no /proc path of a container unless the request lists them, as the kubelet always
//!   does for `procMount: Default` ([`kubelet_defaults`]); a request without them runs unmasked.
//! - A container joins its sandbox's PID, IPC and network namespaces by `/proc/<pause pid>/ns/...`
//!   whether the pod has its own or the node's (hostPID, hostIPC, hostNetwork): the container's
//!   spec reads the same either way, so the gate compares the namespace such a path leads to with
//!   its own (the node's).
//! - Pod-level sysctls reach only the sandbox's spec (the containers join its namespaces, where
//!   runc wrote them): an unsafe sysctl is seen only when a rule judges the pause sandbox.
//! - The sandbox keeps containerd's default capabilities (CRI has no field to drop them) and runs
//!   as the pause image's user unless the pod sets `runAsUser`: it never passes `restricted`. A
//!   rule that matches the pause image can judge it at `baseline` (given pod-level RuntimeDefault
//!   seccomp, as the kubelet's `seccompDefault` sets); the `restricted` rule here matches only its
//!   test image.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use common::eventually;
use vouch_integration::cri_api::security_profile::ProfileType;
use vouch_integration::cri_api::{
    Capability, ContainerConfig, ContainerState, Int64Value, LinuxContainerSecurityContext,
    LinuxSandboxSecurityContext, Mount, NamespaceMode, NamespaceOption, PodSandboxConfig,
    SecurityProfile, StatusRequest,
};
use vouch_integration::{Cri, Rig, RigOptions};

const HANDLER: &str = "vouch";

/// The rule judging `pss/baseline` images.
const BASELINE: Judge = Judge {
    rule: "pss-baseline",
    level: "baseline",
};
/// The rule judging `pss/restricted` images.
const RESTRICTED: Judge = Judge {
    rule: "pss-restricted",
    level: "restricted",
};
/// The rule judging the pause sandbox of pods in namespace [`JUDGED_SANDBOXES`].
const SANDBOX: Judge = Judge {
    rule: "sandbox-baseline",
    level: "baseline",
};
/// Pods of this namespace have their sandbox judged; every other pod's is exempt.
const JUDGED_SANDBOXES: &str = "pss-sandboxes";

/// A rule of the policy and the level it asks for.
struct Judge {
    rule: &'static str,
    level: &'static str,
}

/// The policy: default deny, the pause image exempt as a sandbox except in [`JUDGED_SANDBOXES`].
/// `allow_privileged = true`: every refusal here is `pod_security`'s own, not the host rule's
/// coarser privileged check.
fn policy(reg: &str) -> String {
    format!(
        r#"version = 1
default = "deny"
sandbox = "exempt"
sandbox_images = ["{reg}/pause"]

[[rule]]
name = "{baseline}"
images = ["{reg}/pss/baseline"]
action = "allow"
[rule.host]
allow_privileged = true
pod_security = "baseline"

[[rule]]
name = "{restricted}"
images = ["{reg}/pss/restricted"]
action = "allow"
[rule.host]
allow_privileged = true
pod_security = "restricted"

[[rule]]
name = "{sandbox}"
images = ["{reg}/pause"]
namespaces = ["{JUDGED_SANDBOXES}"]
action = "allow"
[rule.host]
allow_privileged = true
pod_security = "baseline"
"#,
        baseline = BASELINE.rule,
        restricted = RESTRICTED.rule,
        sandbox = SANDBOX.rule,
    )
}

/// A CNI plugin for pods that need only a network namespace of their own: containerd makes the
/// namespace, the plugin reports an address for it (in the loopback range, never routed) and
/// configures nothing, so the pod has only its loopback device. It also answers for `loopback`,
/// which containerd's CRI plugin runs first for every pod.
const POD_NETWORK_PLUGIN: &str = r#"#!/bin/sh
conf=$(cat)
version=$(printf '%s' "$conf" | sed -n 's/.*"cniVersion" *: *"\([^"]*\)".*/\1/p')
case "$CNI_COMMAND" in
ADD)
	ips='[]'
	if [ "$CNI_IFNAME" != lo ]; then
		ips='[{"version":"4","address":"127.0.99.2/32","interface":0}]'
	fi
	printf '{"cniVersion":"%s","interfaces":[{"name":"%s","sandbox":"%s"}],"ips":%s}\n' \
		"$version" "$CNI_IFNAME" "$CNI_NETNS" "$ips"
	;;
VERSION)
	printf '{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0"]}\n'
	;;
esac
"#;

/// Installs [`POD_NETWORK_PLUGIN`] in the rig's CNI directories and waits until containerd's CRI
/// plugin reports its network ready.
fn install_pod_network(rig: &Rig, cri: &Cri) {
    let bin = rig.root().join("cni/bin");
    for name in ["pod-netns", "loopback"] {
        std::fs::write(bin.join(name), POD_NETWORK_PLUGIN).unwrap();
        std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // Written whole, then renamed: containerd reloads the directory on every change.
    let conf = rig.root().join("cni/conf");
    std::fs::write(
        conf.join("pods.tmp"),
        r#"{"cniVersion":"0.4.0","name":"pods","type":"pod-netns"}"#,
    )
    .unwrap();
    std::fs::rename(conf.join("pods.tmp"), conf.join("10-pods.conf")).unwrap();
    let network_ready = || {
        let mut client = cri.runtime_client();
        cri.block_on(client.status(StatusRequest { verbose: false }))
            .ok()
            .and_then(|r| r.into_inner().status)
            .is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.r#type == "NetworkReady" && c.status)
            })
    };
    assert!(
        eventually(Duration::from_secs(10), network_ready),
        "containerd did not load the pod network"
    );
}

/// One rig for the tests of this file that run at the same time: the policy above, the test
/// images pulled through CRI, the pod network installed. Torn down when the last test lets go.
fn rig() -> Arc<Rig> {
    static SHARED: Mutex<Weak<Rig>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(rig) = slot.upgrade() {
        return rig;
    }
    // Nothing may start until the real policy, which names the registry, is written.
    let rig = Rig::start_with(RigOptions {
        policy: Some("version = 1\ndefault = \"deny\"\nsandbox = \"verify\"\n".into()),
        ..Default::default()
    })
    .expect("start a private containerd and registry");
    rig.write_policy(&policy(&rig.registry())).unwrap();
    rig.push_busybox("busybox", "pss/baseline:v1").unwrap();
    rig.push_busybox("busybox", "pss/restricted:v1").unwrap();
    let cri = rig.cri().unwrap();
    for image in ["pss/baseline:v1", "pss/restricted:v1"] {
        cri.pull_image(&rig.image(image)).unwrap();
    }
    install_pod_network(&rig, &cri);
    let rig = Arc::new(rig);
    *slot = Arc::downgrade(&rig);
    rig
}

fn runtime_default() -> SecurityProfile {
    SecurityProfile {
        profile_type: ProfileType::RuntimeDefault as i32,
        ..Default::default()
    }
}

fn sandbox_security(config: &mut PodSandboxConfig) -> &mut LinuxSandboxSecurityContext {
    config
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .unwrap()
}

fn security(config: &mut ContainerConfig) -> &mut LinuxContainerSecurityContext {
    config
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .unwrap()
}

/// The pod config the kubelet sends for a pod with its own network, with RuntimeDefault seccomp
/// for the sandbox (the kubelet's `seccompDefault`, or a pod-level `seccompProfile`).
fn pod_config(cri: &Cri, name: &str, namespace: &str) -> PodSandboxConfig {
    let mut config = cri.pod_config(name, namespace).unwrap();
    let sc = sandbox_security(&mut config);
    sc.namespace_options.as_mut().unwrap().network = NamespaceMode::Pod as i32;
    sc.seccomp = Some(runtime_default());
    config
}

/// A running pod sandbox, stopped and removed on drop (also when a test fails).
struct Pod<'a> {
    cri: &'a Cri,
    id: String,
    config: PodSandboxConfig,
}

impl<'a> Pod<'a> {
    fn run(cri: &'a Cri, config: PodSandboxConfig) -> Pod<'a> {
        let id = cri
            .run_pod_with(config.clone(), HANDLER)
            .unwrap_or_else(|e| panic!("run pod: {}", e.message()));
        Pod { cri, id, config }
    }

    /// The pod's UID, as the kubelet names its directory under `<kubelet_root>/pods/`.
    fn uid(&self) -> &str {
        &self.config.metadata.as_ref().unwrap().uid
    }

    /// An emptyDir volume of this pod where the kubelet makes one (mode 0777, as the kubelet's).
    fn empty_dir(&self, rig: &Rig, name: &str) -> PathBuf {
        let dir = rig
            .kubelet_root()
            .join("pods")
            .join(self.uid())
            .join("volumes/kubernetes.io~empty-dir")
            .join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        dir
    }

    /// Creates `config` in this pod and asserts StartContainer refuses it: `vouch: denied`, the
    /// rule, and `pod_security LEVEL: SETTING`. Returns the refusal.
    fn refused(&self, config: ContainerConfig, judge: &Judge, setting: &str) -> String {
        let name = config.metadata.as_ref().unwrap().name.clone();
        let id = self.cri.create_container_with(&self.id, config).unwrap();
        let err = self
            .cri
            .start_container(&id)
            .expect_err(&format!("{name} must be refused"));
        let msg = err.message().to_string();
        assert_denied(&msg, judge, setting);
        let status = self.cri.container_status(&id).unwrap();
        assert_ne!(
            status.state,
            ContainerState::ContainerRunning as i32,
            "{name}"
        );
        self.cri.remove_container(&id).unwrap();
        msg
    }

    /// Creates and starts `config` in this pod, waits for it to exit 0, and returns its output.
    fn runs(&self, config: ContainerConfig) -> String {
        let name = config.metadata.as_ref().unwrap().name.clone();
        let id = self.cri.create_container_with(&self.id, config).unwrap();
        if let Err(e) = self.cri.start_container(&id) {
            panic!("{name} must run: {}", e.message());
        }
        let status = self.cri.wait_exited(&id, Duration::from_secs(30)).unwrap();
        let log = self.cri.container_log(&id).unwrap();
        assert_eq!(status.exit_code, 0, "{name}: {log}");
        self.cri.remove_container(&id).unwrap();
        log
    }
}

impl Drop for Pod<'_> {
    fn drop(&mut self) {
        let _ = self.cri.stop_pod(&self.id);
        let _ = self.cri.remove_pod(&self.id);
    }
}

fn assert_denied(msg: &str, judge: &Judge, setting: &str) {
    assert!(msg.contains("vouch: denied"), "{msg}");
    assert!(
        msg.contains(&format!("(rule \"{}\")", judge.rule)),
        "expected rule {}: {msg}",
        judge.rule
    );
    let named = format!("pod_security {}: {setting}", judge.level);
    assert!(msg.contains(&named), "expected {named}: {msg}");
}

/// The /proc and /sys paths the kubelet asks to mask in every container whose `procMount` is
/// `Default`: containerd 1.6's CRI plugin masks nothing unless told to.
const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];
/// The paths the kubelet asks to make read-only with them.
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// `config` with what the kubelet adds for a pod with default security settings: the masked and
/// read-only /proc paths, and RuntimeDefault seccomp (`seccompDefault`, or the pod's profile).
fn kubelet_defaults(mut config: ContainerConfig) -> ContainerConfig {
    let sc = security(&mut config);
    sc.masked_paths = MASKED_PATHS.iter().map(|p| p.to_string()).collect();
    sc.readonly_paths = READONLY_PATHS.iter().map(|p| p.to_string()).collect();
    sc.seccomp = Some(runtime_default());
    config
}

/// A container of `image` running `script` in a pod with its own network, as the kubelet
/// configures it: what passes baseline.
fn container(cri: &Cri, name: &str, image: &str, script: &str) -> ContainerConfig {
    let mut config = kubelet_defaults(cri.container_config(name, image, &["sh", "-c"], &[script]));
    security(&mut config)
        .namespace_options
        .as_mut()
        .unwrap()
        .network = NamespaceMode::Pod as i32;
    config
}

/// A container that passes restricted: a non-root user, no privilege escalation, every
/// capability dropped, RuntimeDefault seccomp.
fn restricted_container(rig: &Rig, cri: &Cri, name: &str, script: &str) -> ContainerConfig {
    let mut config = container(cri, name, &rig.image("pss/restricted:v1"), script);
    let sc = security(&mut config);
    sc.run_as_user = Some(Int64Value { value: 1000 });
    sc.no_new_privs = true;
    sc.capabilities = Some(Capability {
        drop_capabilities: vec!["ALL".into()],
        ..Default::default()
    });
    config
}

fn baseline_image(rig: &Rig) -> String {
    rig.image("pss/baseline:v1")
}

/// The effective capability set line of `/proc/self/status`, printed by a container.
const PRINT_CAPS: &str = "grep CapEff /proc/self/status";

#[test]
fn baseline_refuses_a_privileged_container_and_runs_an_unprivileged_one_in_the_same_pod() {
    let rig = rig();
    let cri = rig.cri().unwrap();
    // containerd refuses a privileged container in a pod that is not privileged itself.
    let mut config = pod_config(&cri, "privileged", "team-a");
    sandbox_security(&mut config).privileged = true;
    let pod = Pod::run(&cri, config);
    let image = baseline_image(&rig);
    let mut privileged = container(&cri, "privileged", &image, "echo ran");
    security(&mut privileged).privileged = true;
    pod.refused(privileged, &BASELINE, "securityContext.privileged");
    let log = pod.runs(container(&cri, "plain", &image, "echo ran"));
    assert_eq!(log.trim(), "ran");
}

#[test]
fn baseline_refuses_an_added_sys_admin_and_runs_an_added_net_bind_service() {
    let rig = rig();
    let cri = rig.cri().unwrap();
    let pod = Pod::run(&cri, pod_config(&cri, "capabilities", "team-a"));
    let image = baseline_image(&rig);
    let mut sys_admin = container(&cri, "sys-admin", &image, PRINT_CAPS);
    security(&mut sys_admin).capabilities = Some(Capability {
        add_capabilities: vec!["SYS_ADMIN".into()],
        ..Default::default()
    });
    let msg = pod.refused(sys_admin, &BASELINE, "capabilities.add SYS_ADMIN");
    // containerd's own defaults (NET_RAW among them) are not held against the pod.
    assert!(!msg.contains("NET_RAW"), "{msg}");
    // The only capability left is the one added: the add took effect and baseline allows it.
    let mut net_bind = container(&cri, "net-bind", &image, PRINT_CAPS);
    security(&mut net_bind).capabilities = Some(Capability {
        add_capabilities: vec!["NET_BIND_SERVICE".into()],
        drop_capabilities: vec!["ALL".into()],
        ..Default::default()
    });
    assert_eq!(pod.runs(net_bind).trim(), "CapEff:\t0000000000000400");
}

#[test]
fn baseline_refuses_a_host_path_and_runs_an_empty_dir_of_the_pod() {
    let rig = rig();
    let cri = rig.cri().unwrap();
    let pod = Pod::run(&cri, pod_config(&cri, "volumes", "team-a"));
    let image = baseline_image(&rig);
    let host = tempfile::tempdir().unwrap();
    let mut host_path = container(&cri, "host-path", &image, "ls /host");
    host_path.mounts = vec![Mount {
        container_path: "/host".into(),
        host_path: host.path().display().to_string(),
        ..Default::default()
    }];
    pod.refused(
        host_path,
        &BASELINE,
        &format!("hostPath {}", host.path().display()),
    );
    let data = pod.empty_dir(&rig, "data");
    let mut empty_dir = container(&cri, "empty-dir", &image, "echo kept > /data/out");
    empty_dir.mounts = vec![Mount {
        container_path: "/data".into(),
        host_path: data.display().to_string(),
        ..Default::default()
    }];
    pod.runs(empty_dir);
    assert_eq!(std::fs::read_to_string(data.join("out")).unwrap(), "kept\n");
}

/// A bind mount made on the node for as long as a test needs it (as the kubelet makes one for a
/// volume's `subPath`), unmounted on drop.
struct BindMount(PathBuf);

impl BindMount {
    fn new(from: &std::path::Path, at: PathBuf) -> BindMount {
        std::fs::create_dir_all(&at).unwrap();
        let ok = std::process::Command::new("mount")
            .arg("--bind")
            .arg(from)
            .arg(&at)
            .status()
            .unwrap();
        assert!(
            ok.success(),
            "mount --bind {} {}",
            from.display(),
            at.display()
        );
        BindMount(at)
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// The kubelet mounts a volume's `subPath` at `<pod dir>/volume-subpaths/...` first: the source
/// the spec names lies in the pod's own directory whatever the volume was. A hostPath `/` with
/// `subPath: etc` is the node's /etc; a subPath of the pod's emptyDir is the pod's.
#[test]
fn a_sub_path_of_a_host_path_is_the_hosts_and_a_sub_path_of_an_empty_dir_runs() {
    let rig = rig();
    let cri = rig.cri().unwrap();
    let pod = Pod::run(&cri, pod_config(&cri, "sub-paths", "team-a"));
    let image = baseline_image(&rig);
    let subpaths = rig
        .kubelet_root()
        .join("pods")
        .join(pod.uid())
        .join("volume-subpaths");
    let host_dir = tempfile::tempdir().unwrap();
    std::fs::write(host_dir.path().join("secret"), "node\n").unwrap();
    let from_host = BindMount::new(host_dir.path(), subpaths.join("root/c/0"));
    let mut host_sub = container(&cri, "host-sub", &image, "cat /h/secret");
    host_sub.mounts = vec![Mount {
        container_path: "/h".into(),
        host_path: from_host.0.display().to_string(),
        ..Default::default()
    }];
    pod.refused(
        host_sub,
        &BASELINE,
        &format!(
            "hostPath {}",
            std::fs::canonicalize(host_dir.path()).unwrap().display()
        ),
    );
    let data = pod.empty_dir(&rig, "data");
    std::fs::create_dir_all(data.join("part")).unwrap();
    let from_pod = BindMount::new(&data.join("part"), subpaths.join("data/c/1"));
    let mut pod_sub = container(&cri, "pod-sub", &image, "echo kept > /part/out");
    pod_sub.mounts = vec![Mount {
        container_path: "/part".into(),
        host_path: from_pod.0.display().to_string(),
        ..Default::default()
    }];
    pod.runs(pod_sub);
    assert_eq!(
        std::fs::read_to_string(data.join("part/out")).unwrap(),
        "kept\n"
    );
}

#[test]
fn baseline_refuses_unconfined_seccomp_and_runs_runtime_default() {
    let rig = rig();
    let cri = rig.cri().unwrap();
    let pod = Pod::run(&cri, pod_config(&cri, "seccomp", "team-a"));
    let image = baseline_image(&rig);
    let script = "grep '^Seccomp:' /proc/self/status";
    let mut unconfined = container(&cri, "unconfined", &image, script);
    security(&mut unconfined).seccomp = Some(SecurityProfile {
        profile_type: ProfileType::Unconfined as i32,
        ..Default::default()
    });
    pod.refused(unconfined, &BASELINE, "seccompProfile Unconfined");
    // Mode 2: a filter is in force.
    let log = pod.runs(container(&cri, "runtime-default", &image, script));
    assert_eq!(log.trim(), "Seccomp:\t2");
}

#[test]
fn baseline_refuses_an_unmasked_proc_and_runs_the_kubelets_masks() {
    let rig = rig();
    let cri = rig.cri().unwrap();
    let pod = Pod::run(&cri, pod_config(&cri, "proc-mount", "team-a"));
    let image = baseline_image(&rig);
    // `procMount: Unmasked`: the kubelet sends empty lists.
    let mut unmasked = container(&cri, "unmasked", &image, "wc -c < /proc/timer_list");
    security(&mut unmasked).masked_paths.clear();
    security(&mut unmasked).readonly_paths.clear();
    pod.refused(unmasked, &BASELINE, "procMount Unmasked");
    // Masked: the kernel's timer list reads as an empty file.
    let log = pod.runs(container(
        &cri,
        "masked",
        &image,
        "wc -c < /proc/timer_list",
    ));
    assert_eq!(log.trim(), "0");
}

/// containerd 1.6 joins a container to its sandbox's namespaces by `/proc/<pause pid>/ns/...`
/// whether the pod has its own or the node's: only the sandbox's spec shows a host namespace
/// (it has none of that type). A rule that judges the sandbox refuses the pod at RunPodSandbox.
#[test]
fn a_judged_sandbox_in_a_host_namespace_is_refused_and_one_with_its_own_runs() {
    let rig = rig();
    let cri = rig.cri().unwrap();
    type Choose = fn(&mut NamespaceOption) -> &mut i32;
    let cases: [(&str, Choose, &str); 3] = [
        ("host-pid", |n| &mut n.pid, "hostPID"),
        ("host-network", |n| &mut n.network, "hostNetwork"),
        ("host-ipc", |n| &mut n.ipc, "hostIPC"),
    ];
    for (name, choose, setting) in cases {
        let mut config = pod_config(&cri, name, JUDGED_SANDBOXES);
        *choose(
            sandbox_security(&mut config)
                .namespace_options
                .as_mut()
                .unwrap(),
        ) = NamespaceMode::Node as i32;
        let err = cri
            .run_pod_with(config, HANDLER)
            .expect_err(&format!("{name} must be refused"));
        let msg = err.message();
        assert_denied(msg, &SANDBOX, setting);
        for other in cases.iter().map(|c| c.2).filter(|o| *o != setting) {
            assert!(!msg.contains(other), "{other}: {msg}");
        }
        // The node's IPC namespace comes with the node's /dev/shm, bind-mounted.
        if setting == "hostIPC" {
            assert!(msg.contains("hostPath /dev/shm"), "{msg}");
        }
    }
    // Its own namespaces: PID 1 is the container's command.
    let own = Pod::run(&cri, pod_config(&cri, "own-namespaces", JUDGED_SANDBOXES));
    let log = own.runs(container(&cri, "own", &baseline_image(&rig), "echo $$"));
    assert_eq!(log.trim(), "1");
}

/// A container joins a host-namespace pod's namespaces by `/proc/<pause pid>/ns/...`: the gate
/// sees that the path leads to the node's own namespace, so the container is refused even where
/// the sandbox is not judged.
#[test]
fn a_container_of_a_host_namespace_pod_is_refused_although_its_spec_names_a_pod_path() {
    let rig = rig();
    let cri = rig.cri().unwrap();
    type Choose = fn(&mut NamespaceOption) -> &mut i32;
    let cases: [(&str, Choose, &str); 3] = [
        ("c-host-pid", |n| &mut n.pid, "hostPID"),
        ("c-host-network", |n| &mut n.network, "hostNetwork"),
        ("c-host-ipc", |n| &mut n.ipc, "hostIPC"),
    ];
    for (name, choose, setting) in cases {
        let mut config = pod_config(&cri, name, "pss-host");
        *choose(
            sandbox_security(&mut config)
                .namespace_options
                .as_mut()
                .unwrap(),
        ) = NamespaceMode::Node as i32;
        let pod = Pod::run(&cri, config);
        let mut c = container(&cri, name, &baseline_image(&rig), "echo $$");
        // As the kubelet does: the container takes the pod's namespace mode.
        *choose(security(&mut c).namespace_options.as_mut().unwrap()) = NamespaceMode::Node as i32;
        pod.refused(c, &BASELINE, setting);
    }
}

#[test]
fn restricted_runs_a_compliant_container_and_refuses_each_violation_alone() {
    let rig = rig();
    let cri = rig.cri().unwrap();
    let pod = Pod::run(&cri, pod_config(&cri, "restricted", "team-b"));
    let log = pod.runs(restricted_container(
        &rig,
        &cri,
        "compliant",
        &format!("id -u; {PRINT_CAPS}; grep NoNewPrivs /proc/self/status"),
    ));
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        ["1000", "CapEff:\t0000000000000000", "NoNewPrivs:\t1"]
    );

    let mut root = restricted_container(&rig, &cri, "as-root", "id -u");
    security(&mut root).run_as_user = Some(Int64Value { value: 0 });
    let msg = pod.refused(root, &RESTRICTED, "runAsNonRoot (uid 0)");
    assert_eq!(msg.matches("pod_security").count(), 1, "{msg}");

    let mut escalates = restricted_container(&rig, &cri, "escalates", "id -u");
    security(&mut escalates).no_new_privs = false;
    let msg = pod.refused(escalates, &RESTRICTED, "allowPrivilegeEscalation");
    assert_eq!(msg.matches("pod_security").count(), 1, "{msg}");

    let mut keeps = restricted_container(&rig, &cri, "keeps-capabilities", "id -u");
    security(&mut keeps).capabilities = None;
    let msg = pod.refused(keeps, &RESTRICTED, "capabilities.drop ALL (keeps ");
    assert_eq!(msg.matches("pod_security").count(), 1, "{msg}");
    // NET_BIND_SERVICE is the one capability restricted lets a container keep.
    assert!(!msg.contains("NET_BIND_SERVICE"), "{msg}");
}

#[test]
fn a_pod_with_cri_files_and_an_empty_dir_runs_when_every_container_passes() {
    let rig = rig();
    let cri = rig.cri().unwrap();
    let pod = Pod::run(&cri, pod_config(&cri, "honest", "team-b"));
    let data = pod.empty_dir(&rig, "data");
    let volume = Mount {
        container_path: "/data".into(),
        host_path: data.display().to_string(),
        ..Default::default()
    };
    // The mount points CRI made itself, and the volume, as the container sees them.
    let script = "for f in /etc/hosts /etc/hostname /etc/resolv.conf /dev/shm /data; do \
                  grep -q \" $f \" /proc/self/mountinfo && echo $f; done; \
                  echo from-$(id -u) > /data/$(id -u)";
    let mut writer = restricted_container(&rig, &cri, "writer", script);
    writer.mounts = vec![volume.clone()];
    let log = pod.runs(writer);
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [
            "/etc/hosts",
            "/etc/hostname",
            "/etc/resolv.conf",
            "/dev/shm",
            "/data"
        ]
    );
    let mut reader = container(&cri, "reader", &baseline_image(&rig), "cat /data/1000");
    reader.mounts = vec![volume];
    assert_eq!(pod.runs(reader).trim(), "from-1000");
}

#[test]
fn a_judged_sandbox_passes_baseline_and_its_unsafe_sysctl_is_refused_at_run_pod_sandbox() {
    let rig = rig();
    let cri = rig.cri().unwrap();
    // Pod-level sysctls reach the sandbox's spec only; its containers share its IPC namespace.
    let mut config = pod_config(&cri, "safe-sysctl", JUDGED_SANDBOXES);
    config
        .linux
        .as_mut()
        .unwrap()
        .sysctls
        .insert("kernel.shm_rmid_forced".into(), "1".into());
    let pod = Pod::run(&cri, config);
    let log = pod.runs(container(
        &cri,
        "reads-sysctl",
        &baseline_image(&rig),
        "cat /proc/sys/kernel/shm_rmid_forced",
    ));
    assert_eq!(log.trim(), "1");
    drop(pod);

    let mut config = pod_config(&cri, "unsafe-sysctl", JUDGED_SANDBOXES);
    config
        .linux
        .as_mut()
        .unwrap()
        .sysctls
        .insert("kernel.msgmax".into(), "65536".into());
    let err = cri
        .run_pod_with(config, HANDLER)
        .expect_err("an unsafe sysctl must be refused");
    let msg = err.message().to_string();
    assert_denied(&msg, &SANDBOX, "sysctls kernel.msgmax");
    assert!(
        msg.contains(&format!("{}/pause@sha256:", rig.registry())),
        "{msg}"
    );

    // A sandbox without seccomp (no pod-level profile, no `seccompDefault`) is unconfined in
    // what runc runs, whatever its containers ask for.
    let mut config = pod_config(&cri, "no-pod-seccomp", JUDGED_SANDBOXES);
    sandbox_security(&mut config).seccomp = None;
    let err = cri
        .run_pod_with(config, HANDLER)
        .expect_err("an unconfined sandbox must be refused");
    assert_denied(err.message(), &SANDBOX, "seccompProfile Unconfined");
}

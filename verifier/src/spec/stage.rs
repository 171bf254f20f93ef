//! The spec and host stage: the host's measurement and the spec's security settings against every
//! matching rule's `[rule.host]` (privileges, hooks, seccomp, modules, LSMs, runc's digest, Pod
//! Security Standards), and for an exec, its process against the container's.

use std::path::Path;
use std::time::Duration;

use crate::config::Config;
use crate::facts::{CriPod, Facts};
use crate::gate::{Denial, GateRequest};
use crate::policy::{Judgement, LoadedPolicy, RuleDenial};

use super::host::{self, HostPaths};
use super::pod_security::{self, PodContext};

/// An exec asks for more than its container's init process has.
pub const RULE_EXEC: &str = "exec";

/// How long a start waits for containerd's version (asked once per containerd socket).
const CONTAINERD_VERSION_TIMEOUT: Duration = Duration::from_secs(2);

/// The spec and host stage of a start. The host is measured when a matching rule asks, or always
/// (`measure_always`, container starts: the record carries it).
pub fn check(
    config: &Config,
    loaded: &LoadedPolicy,
    request: &GateRequest,
    pod: Option<&CriPod>,
    measure_always: bool,
    facts: &mut Facts,
    judgement: &mut Judgement,
) -> Result<(), Denial> {
    let policy = &loaded.policy;
    let matched = judgement.matched(policy);
    let wants_host = matched.iter().any(|r| r.host.is_some());
    if !(measure_always || wants_host) {
        return Ok(());
    }
    let state = measure_host(config, request);
    let spec = (!request.spec.is_null()).then(|| host::spec_security(&request.spec));
    let mut value = serde_json::to_value(&state).unwrap_or_default();
    if let (Some(map), Some(spec)) = (value.as_object_mut(), &spec) {
        map.insert(
            "container".into(),
            serde_json::to_value(spec).unwrap_or_default(),
        );
    }
    facts.host = Some(value);
    // Bind sources are judged where their links lead; so is the kubelet's root (a node may keep
    // it elsewhere behind a link).
    let kubelet_root = std::fs::canonicalize(&config.kubernetes.kubelet_root)
        .unwrap_or_else(|_| config.kubernetes.kubelet_root.clone());
    for rule in matched {
        let Some(req) = &rule.host else { continue };
        let mut violations = host::check(req, &state, spec.as_ref());
        if let (Some(level), false) = (req.pod_security, request.spec.is_null()) {
            let context = PodContext {
                kubelet_root: &kubelet_root,
                pod_uid: pod.and_then(|p| p.uid.as_deref()),
                sandbox_id: pod.map(|p| p.sandbox_id.as_str()),
            };
            violations.extend(pod_security::check(level, &request.spec, &context));
            violations.extend(unconfined_on_this_host(level, &state, spec.as_ref()));
        }
        if violations.is_empty() {
            continue;
        }
        judgement.violation(RuleDenial {
            rule: rule.name.clone(),
            reason: violations.join("; "),
            mode: policy.mode_of(rule),
        })?;
    }
    Ok(())
}

/// An empty AppArmor profile or SELinux label means runc applies none: on a host where the LSM is
/// on, the container runs unconfined although the spec does not say `unconfined`.
fn unconfined_on_this_host(
    level: pod_security::Level,
    state: &host::HostState,
    spec: Option<&host::SpecSecurity>,
) -> Vec<String> {
    let Some(spec) = spec else {
        return Vec::new();
    };
    if level < pod_security::Level::Baseline {
        return Vec::new();
    }
    let mut out = Vec::new();
    if state.apparmor.as_deref() == Some("enabled") && spec.apparmor_profile.is_none() {
        out.push(format!(
            "pod_security {level}: appArmorProfile unconfined (no profile, on a host with AppArmor)"
        ));
    }
    if state.selinux.as_deref() == Some("enforcing") && spec.selinux_label.is_none() {
        out.push(format!(
            "pod_security {level}: seLinuxOptions.type unconfined (no label, on a host with SELinux)"
        ));
    }
    out
}

/// The spec stage of an exec: no matching rule may forbid exec (`allow_exec = false`), and the
/// process may not exceed the container's init process (rule `exec`, in the policy's mode).
pub fn check_exec(
    loaded: &LoadedPolicy,
    request: &GateRequest,
    process: &serde_json::Value,
    judgement: &mut Judgement,
) -> Result<(), Denial> {
    let policy = &loaded.policy;
    for rule in judgement.matched(policy) {
        if rule.host.as_ref().is_some_and(|h| !h.allow_exec) {
            judgement.violation(RuleDenial {
                rule: rule.name.clone(),
                reason: "host: allow_exec = false: no process may be exec'd into this container"
                    .into(),
                mode: policy.mode_of(rule),
            })?;
        }
    }
    let beyond = super::exec::exceeds(&request.spec, process);
    if !beyond.is_empty() {
        judgement.violation(RuleDenial {
            rule: RULE_EXEC.into(),
            reason: beyond.join("; "),
            mode: policy.mode,
        })?;
    }
    Ok(())
}

/// Measures the host (runc's and the shim's digests cached by stat identity under `state_dir`).
fn measure_host(config: &Config, request: &GateRequest) -> host::HostState {
    let address = request.containerd_address.clone();
    let ask = move || {
        crate::identity::containerd_version(&address, CONTAINERD_VERSION_TIMEOUT)
            .map_err(|e| e.to_string())
    };
    let cache = config.state_dir.join("host");
    let socket = Path::new(&request.containerd_address);
    let inputs = host::Inputs {
        runc: request.runtime_binary.as_deref(),
        shim: request.shim_binary.as_deref(),
        containerd: (!request.containerd_address.is_empty())
            .then_some((socket, &ask as host::AskVersion<'_>)),
        cache_dir: Some(&cache),
    };
    host::collect(&HostPaths::default(), &inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_profile_on_a_host_with_the_lsm_on_is_unconfined() {
        let spec = host::spec_security(&serde_json::json!({"process": {}}));
        let mut state = host::HostState::default();
        assert!(
            unconfined_on_this_host(pod_security::Level::Baseline, &state, Some(&spec)).is_empty()
        );
        state.apparmor = Some("enabled".into());
        state.selinux = Some("enforcing".into());
        let v = unconfined_on_this_host(pod_security::Level::Restricted, &state, Some(&spec));
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].starts_with("pod_security restricted: appArmorProfile unconfined"));
        assert!(
            unconfined_on_this_host(pod_security::Level::Privileged, &state, Some(&spec))
                .is_empty()
        );
        let confined = host::spec_security(&serde_json::json!({"process": {
            "apparmorProfile": "cri-containerd.apparmor.d", "selinuxLabel": "system_u:system_r:container_t:s0"}}));
        assert!(
            unconfined_on_this_host(pod_security::Level::Baseline, &state, Some(&confined))
                .is_empty()
        );
        state.apparmor = Some("disabled".into());
        state.selinux = Some("permissive".into());
        assert!(
            unconfined_on_this_host(pod_security::Level::Baseline, &state, Some(&spec)).is_empty()
        );
    }
}

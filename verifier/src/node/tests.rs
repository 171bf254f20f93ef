use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::*;
use crate::error::Error;
use crate::facts::{ContainerFacts, CriPod, ImageIdentity};
use crate::gate::Evidence;
use crate::identity::{self, ContainerRef, ImageResolver};
use crate::policy;

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    /// A node whose config points at `policy.toml` beside it, holding `policy` (if any).
    fn with_policy(policy: Option<&str>) -> Node {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), "policy = \"policy.toml\"\n").unwrap();
        if let Some(policy) = policy {
            std::fs::write(dir.path().join("policy.toml"), policy).unwrap();
        }
        Node { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    fn policy(&self) -> PathBuf {
        self.dir.path().join("policy.toml")
    }

    fn request(&self, image: Option<&str>, annotations: &[(&str, &str)]) -> GateRequest {
        GateRequest {
            container_id: "c1".into(),
            containerd_address: "/nonexistent/containerd.sock".into(),
            namespace: "k8s.io".into(),
            config_path: Some(self.config()),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            image: image.map(identity_of),
            ..GateRequest::default()
        }
    }
}

fn identity_of(name: &str) -> ImageIdentity {
    let reference = crate::reference::Reference::parse(name).unwrap();
    ImageIdentity {
        name: name.into(),
        repository: reference.repository,
        digest: DIGEST.into(),
    }
}

/// Answers every lookup the same way and counts the calls.
struct Fake {
    answer: fn() -> crate::Result<ContainerFacts>,
    calls: Arc<AtomicUsize>,
}

impl ImageResolver for Fake {
    fn inspect(&self, _: &ContainerRef<'_>) -> crate::Result<ContainerFacts> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        (self.answer)()
    }
}

/// What containerd would say of a container of `image` (none: no image) in a CRI pod of
/// namespace `ns`, `sandbox` or not.
fn facts(image: Option<&str>, pod: Option<(&str, bool)>) -> ContainerFacts {
    ContainerFacts {
        image: image.map(identity_of),
        rootfs_chain: None,
        cri: pod.map(|(ns, sandbox)| CriPod {
            sandbox,
            sandbox_id: "s1".into(),
            namespace: Some(ns.into()),
            name: Some("web".into()),
            uid: Some("uid1".into()),
            image_ref: None,
        }),
    }
}

fn gate_with(answer: fn() -> crate::Result<ContainerFacts>) -> (NodeGate, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = NodeGate::with_resolver(Box::new(Fake {
        answer,
        calls: calls.clone(),
    }));
    (gate, calls)
}

fn denied(v: Verdict) -> Denial {
    match v {
        Verdict::Deny(d) => d,
        Verdict::Allow(e) => panic!("allowed: {e:?}"),
    }
}

fn allowed(v: Verdict) -> Evidence {
    match v {
        Verdict::Allow(e) => e,
        Verdict::Deny(d) => panic!("denied: {d}"),
    }
}

const POLICY: &str = r#"version = 1
default = "deny"
exempt = ["registry.k8s.io/pause"]

[[rule]]
name = "acme"
images = ["ghcr.io/acme/**"]
action = "allow"

[[rule]]
name = "no-debug"
images = ["ghcr.io/acme/debug/**"]
action = "deny"

[[rule]]
name = "busybox-in-prod"
images = ["busybox"]
namespaces = ["prod-*"]
action = "deny"
mode = "audit"

[[rule]]
name = "busybox"
images = ["busybox"]
action = "allow"
"#;

#[test]
fn broken_policy_denies_naming_file_and_line() {
    let node = Node::with_policy(Some(
        "version = 1\n\n[[rule]]\nname = \"x\"\nimages = [\"busybox\"]\naction = \"alow\"\n",
    ));
    let d = denied(NodeGate::new().admit(&node.request(Some("ghcr.io/acme/app:1"), &[])));
    assert_eq!(d.rule, "policy");
    assert_eq!(d.subject, format!("ghcr.io/acme/app@{DIGEST}"));
    assert!(
        d.reason.starts_with(&format!(
            "{}: line 6, column 10: unknown variant `alow`",
            node.policy().display()
        )),
        "{}",
        d.reason
    );
    assert!(!d.to_string().contains('\n'));
}

#[test]
fn missing_policy_denies() {
    let node = Node::with_policy(None);
    let d = denied(NodeGate::new().admit(&node.request(None, &[])));
    assert_eq!(d.rule, "policy");
    assert_eq!(d.subject, "container c1");
    assert_eq!(
        d.reason,
        format!("{}: file not found", node.policy().display())
    );
}

#[test]
fn broken_or_missing_config_denies_with_rule_config() {
    let node = Node::with_policy(Some(POLICY));
    std::fs::write(node.config(), "polcy = \"policy.toml\"\n").unwrap();
    let d = denied(NodeGate::new().admit(&node.request(None, &[])));
    assert_eq!(d.rule, "config");
    assert_eq!(d.subject, "container c1");
    assert!(
        d.reason
            .contains("config.toml: line 1, column 1: unknown field `polcy`"),
        "{}",
        d.reason
    );

    let mut request = node.request(None, &[]);
    request.config_path = Some(Path::new("/nonexistent/vouch.toml").into());
    let d = denied(NodeGate::new().admit(&request));
    assert_eq!(d.rule, "config");
    assert_eq!(
        d.reason,
        "/nonexistent/vouch.toml: file not found (from the runtime option ConfigPath)"
    );
}

#[test]
fn allowed_image_carries_rules_and_policy_digest() {
    let node = Node::with_policy(Some(POLICY));
    let e = allowed(NodeGate::new().admit(&node.request(Some("ghcr.io/acme/app:1"), &[])));
    assert_eq!(e.rules, vec!["acme".to_string()]);
    assert!(e.audited.is_empty());
    assert_eq!(e.exempt, None);
    assert_eq!(e.image, Some(identity_of("ghcr.io/acme/app:1")));
    let bytes = std::fs::read(node.policy()).unwrap();
    assert_eq!(
        e.policy_digest,
        policy::parse(&node.policy(), &bytes)
            .ok()
            .map(|p| p.policy_digest)
    );
}

#[test]
fn deny_wins_over_allow() {
    let node = Node::with_policy(Some(POLICY));
    let d = denied(NodeGate::new().admit(&node.request(Some("ghcr.io/acme/debug/sh:1"), &[])));
    assert_eq!(
        d.to_string(),
        format!("vouch: denied ghcr.io/acme/debug/sh@{DIGEST}: image matches a deny rule (rule \"no-debug\")")
    );
}

#[test]
fn audit_rule_allows_and_records_the_would_be_denial() {
    let node = Node::with_policy(Some(POLICY));
    let mut request = node.request(Some("busybox:1.36"), &[]);
    request.pod_namespace = Some("prod-eu".into());
    let e = allowed(NodeGate::new().admit(&request));
    assert_eq!(e.rules, vec!["busybox".to_string()]);
    assert_eq!(
        e.audited,
        vec![format!(
            "vouch: denied docker.io/library/busybox@{DIGEST}: image matches a deny rule (rule \"busybox-in-prod\")"
        )]
    );
}

#[test]
fn namespaces_select_rules() {
    let node = Node::with_policy(Some(POLICY));
    // Outside prod the audit rule does not match.
    let mut request = node.request(Some("busybox"), &[]);
    request.pod_namespace = Some("dev".into());
    let e = allowed(NodeGate::new().admit(&request));
    assert!(e.audited.is_empty());
    // A `ctr` container (no pod namespace) is not in prod either.
    let e = allowed(NodeGate::new().admit(&node.request(Some("busybox"), &[])));
    assert!(e.audited.is_empty());
}

#[test]
fn unmatched_image_falls_to_default_deny() {
    let node = Node::with_policy(Some(POLICY));
    let d = denied(NodeGate::new().admit(&node.request(Some("quay.io/x/y:1"), &[])));
    assert_eq!(d.rule, "default");
    assert_eq!(d.reason, "no policy rule matches and the default is deny");
    assert_eq!(d.subject, format!("quay.io/x/y@{DIGEST}"));
}

#[test]
fn exempt_image_passes_with_reason() {
    let node = Node::with_policy(Some(POLICY));
    let e = allowed(NodeGate::new().admit(&node.request(Some("registry.k8s.io/pause:3.9"), &[])));
    assert_eq!(
        e.exempt.as_deref(),
        Some("image matches exempt pattern \"registry.k8s.io/pause\"")
    );
    assert!(e.rules.is_empty());
}

#[test]
fn a_sandbox_is_known_from_cri_records_never_from_annotations() {
    let node = Node::with_policy(Some(POLICY));
    // The client's annotations say "sandbox"; containerd's records say it is a container.
    let (gate, calls) = gate_with(|| Ok(facts(Some("quay.io/x/y:1"), Some(("prod", false)))));
    let request = node.request(
        None,
        &[
            (CONTAINER_TYPE, "sandbox"),
            (SANDBOX_NAMESPACE, "kube-system"),
        ],
    );
    let d = denied(gate.admit(&request));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(d.rule, "default");
    // CRI's records make it a sandbox of the pause image: exempt.
    let (gate, _) = gate_with(|| {
        Ok(facts(
            Some("registry.k8s.io/pause:3.9"),
            Some(("prod", true)),
        ))
    });
    let e = allowed(gate.admit(&node.request(None, &[])));
    assert_eq!(
        e.exempt.as_deref(),
        Some("pod sandbox of image pattern \"registry.k8s.io/pause\"")
    );
    // A CRI "sandbox" of any other image is judged like every container.
    let (gate, _) = gate_with(|| Ok(facts(Some("ghcr.io/acme/debug/x:1"), Some(("prod", true)))));
    let d = denied(gate.admit(&node.request(None, &[])));
    assert_eq!(d.rule, "no-debug");
}

#[test]
fn the_pod_namespace_comes_from_cri_records() {
    let node = Node::with_policy(Some(POLICY));
    // CRI says prod-eu, whatever the annotation claims: the audit rule for prod matches.
    let (gate, _) = gate_with(|| Ok(facts(Some("busybox:1"), Some(("prod-eu", false)))));
    let e = allowed(gate.admit(&node.request(None, &[(SANDBOX_NAMESPACE, "dev")])));
    assert_eq!(e.audited.len(), 1, "{e:?}");
    // Without CRI records an annotation does not put a container into a namespace.
    let (gate, _) = gate_with(|| Ok(facts(Some("busybox:1"), None)));
    let e = allowed(gate.admit(&node.request(None, &[(SANDBOX_NAMESPACE, "prod-eu")])));
    assert!(e.audited.is_empty(), "{e:?}");
}

#[test]
fn verified_sandbox_without_image_falls_to_default() {
    let node = Node::with_policy(Some(&POLICY.replace(
        "default = \"deny\"",
        "default = \"deny\"\nsandbox = \"verify\"",
    )));
    let (gate, calls) = gate_with(|| Ok(facts(None, Some(("prod", true)))));
    let d = denied(gate.admit(&node.request(None, &[])));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(d.rule, "default");
    assert_eq!(d.subject, "container c1 (no image)");
}

#[test]
fn no_image_container_falls_to_default() {
    let node = Node::with_policy(Some(
        &POLICY.replace("default = \"deny\"", "default = \"allow\""),
    ));
    let (gate, _) = gate_with(|| Ok(facts(None, None)));
    let e = allowed(gate.admit(&node.request(None, &[])));
    assert_eq!(e.rules, vec!["default".to_string()]);
    assert_eq!(e.image, None);
}

#[test]
fn resolved_image_is_evaluated() {
    let node = Node::with_policy(Some(POLICY));
    let (gate, calls) = gate_with(|| Ok(facts(Some("ghcr.io/acme/debug/x:1"), None)));
    let d = denied(gate.admit(&node.request(None, &[])));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(d.rule, "no-debug");
}

#[test]
fn image_lookup_failure_denies_with_rule_image_identity() {
    let node = Node::with_policy(Some(POLICY));
    let (gate, _) = gate_with(|| {
        Err(Error::ImageNotFound {
            name: "busybox:1".into(),
            namespace: "k8s.io".into(),
        })
    });
    let d = denied(gate.admit(&node.request(None, &[(identity::CRI_IMAGE_NAME, "busybox:1")])));
    assert_eq!(d.rule, "image-identity");
    assert_eq!(d.subject, "container c1");
    assert_eq!(
        d.reason,
        "image busybox:1 not found in containerd namespace k8s.io"
    );
}

#[test]
fn real_containerd_resolver_fails_closed_when_unreachable() {
    let node = Node::with_policy(Some(POLICY));
    let d = denied(NodeGate::new().admit(&node.request(None, &[])));
    assert_eq!(d.rule, "image-identity");
    assert!(
        d.reason
            .starts_with("containerd unreachable at /nonexistent/containerd.sock: "),
        "{}",
        d.reason
    );
}

#[test]
fn host_rule_refuses_a_privileged_container_naming_the_setting() {
    let policy = "version = 1\n[[rule]]\nname = \"hardened\"\nimages = [\"ghcr.io/acme/**\"]\naction = \"allow\"\n[rule.host]\nrequire_seccomp = true\n";
    let node = Node::with_policy(Some(policy));
    let mut request = node.request(Some("ghcr.io/acme/app:1"), &[]);
    let all = ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"];
    request.spec = serde_json::json!({
        "process": {"capabilities": {"bounding": all}},
        "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
                  "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]}
    });
    let d = denied(NodeGate::new().admit(&request));
    assert_eq!(d.rule, "hardened");
    assert_eq!(
        d.reason,
        "host: allow_privileged = false, and the container is privileged (CAP_SYS_ADMIN, no masked paths); \
         host: require_seccomp = true, and the container has no seccomp filter"
    );
    // The facts carry what was measured.
    let mut facts = Facts::default();
    NodeGate::new().decide(&request, &mut facts);
    assert_eq!(
        facts.host.as_ref().map(|h| &h["container"]["privileged"]),
        Some(&serde_json::Value::Bool(true))
    );
    assert!(facts
        .host
        .as_ref()
        .is_some_and(|h| h["kernel_release"].as_str().is_some_and(|k| !k.is_empty())));

    // Masked paths and a seccomp filter, but CAP_SYS_ADMIN and CAP_NET_ADMIN: still refused,
    // each capability named.
    request.spec["linux"]["maskedPaths"] =
        serde_json::json!(["/proc/kcore", "/proc/keys", "/sys/firmware"]);
    request.spec["linux"]["seccomp"] = serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO"});
    let d = denied(NodeGate::new().admit(&request));
    assert!(
        d.reason.contains("capabilities.add SYS_ADMIN")
            && d.reason.contains("capabilities.add NET_ADMIN"),
        "{}",
        d.reason
    );
    // Confined: the default capabilities only.
    request.spec["process"]["capabilities"]["bounding"] = serde_json::json!(["CAP_CHOWN"]);
    allowed(NodeGate::new().admit(&request));

    // In audit mode the violation is recorded and the container runs.
    std::fs::write(
        node.policy(),
        policy.replace("action = \"allow\"", "action = \"allow\"\nmode = \"audit\""),
    )
    .unwrap();
    request.spec["linux"]["seccomp"] = serde_json::Value::Null;
    let e = allowed(NodeGate::new().admit(&request));
    assert_eq!(e.audited.len(), 1);
    assert!(e.audited[0].contains("require_seccomp"), "{:?}", e.audited);
}

/// A node whose config records decisions under its own state directory, with `extra` config.
fn recording_node(extra: &str) -> Node {
    let node = Node::with_policy(Some(POLICY));
    std::fs::write(
        node.config(),
        format!("policy = \"policy.toml\"\nstate_dir = \"state\"\n{extra}"),
    )
    .unwrap();
    node
}

fn records(node: &Node) -> Vec<serde_json::Value> {
    let log = node.dir.path().join("state/attestations.jsonl");
    if !log.exists() {
        return Vec::new();
    }
    crate::attestlog::read_log(&log)
        .unwrap()
        .into_iter()
        .map(|r| serde_json::to_value(r.predicate.unwrap()).unwrap())
        .collect()
}

#[test]
fn only_the_node_config_decides_which_config_a_start_runs_under() {
    let node = recording_node("");
    let lax = Node::with_policy(Some("version = 1\ndefault = \"allow\"\n"));
    let gate = || NodeGate::for_starts().with_node_config(&node.config());
    let mut request = node.request(Some("ghcr.io/acme/debug/sh:1"), &[]);
    request.config_path = Some(lax.config());
    let d = denied(gate().admit(&request));
    assert_eq!(d.rule, RULE_CONFIG);
    assert!(
        d.reason.contains("nor listed in its allowed_configs"),
        "{}",
        d.reason
    );
    // The refusal is recorded in the node's own log.
    assert_eq!(records(&node)[0]["decision"], "deny");
    // Once the node config lists it, its policy applies (and its own log).
    std::fs::write(
        node.config(),
        format!(
            "allowed_configs = [\"{}\"]\npolicy = \"policy.toml\"\nstate_dir = \"state\"\n",
            lax.config().display()
        ),
    )
    .unwrap();
    allowed(gate().admit(&request));
    // A config that cannot be read from containerd's record refuses; nothing falls back.
    struct Broken;
    impl ImageResolver for Broken {
        fn inspect(&self, _: &ContainerRef<'_>) -> crate::Result<ContainerFacts> {
            Ok(facts(Some("ghcr.io/acme/app:1"), None))
        }
        fn runtime_config_path(&self, _: &ContainerRef<'_>) -> crate::Result<Option<PathBuf>> {
            Err(Error::ContainerdUnreachable {
                address: "x".into(),
                reason: "down".into(),
            })
        }
    }
    let mut request = node.request(None, &[]);
    request.config_path = None;
    request.containerd_address = "/run/x.sock".into();
    let gate = NodeGate {
        starts: true,
        ..NodeGate::with_resolver(Box::new(Broken))
    }
    .with_node_config(&node.config());
    let d = denied(gate.admit(&request));
    assert_eq!(d.rule, RULE_CONFIG);
    assert!(
        d.reason.starts_with("cannot read the runtime options"),
        "{}",
        d.reason
    );
}

#[test]
fn an_exec_is_judged_against_its_container_and_recorded_with_its_process() {
    use serde_json::json;
    let node = recording_node("");
    std::fs::write(
        node.policy(),
        format!(
            "{POLICY}\n[[rule]]\nname = \"locked\"\nimages = [\"ghcr.io/acme/locked/**\"]\naction = \"allow\"\n\
             [rule.host]\nallow_exec = false\nallow_privileged = true\n"
        ),
    )
    .unwrap();
    let gate = NodeGate::for_starts().with_node_config(&node.config());
    let own = json!({"args": ["id"], "user": {"uid": 1000, "gid": 1000},
        "capabilities": {"bounding": ["CAP_CHOWN"]}, "noNewPrivileges": true});
    let exec = |image: &str, process: &serde_json::Value| {
        let mut r = node.request(Some(image), &[]);
        r.spec = json!({"process": {"user": {"uid": 1000, "gid": 1000},
            "capabilities": {"bounding": ["CAP_CHOWN"]}, "noNewPrivileges": true}});
        r.exec = Some(ExecRequest {
            id: "e1".into(),
            process_text: process.to_string(),
        });
        r
    };
    allowed(gate.admit(&exec("ghcr.io/acme/app:1", &own)));
    let mut root = own.clone();
    root["user"]["uid"] = json!(0);
    let d = denied(gate.admit(&exec("ghcr.io/acme/app:1", &root)));
    assert_eq!(d.rule, RULE_EXEC);
    assert!(
        d.reason
            .contains("runAsUser 0 (the container runs as 1000)"),
        "{}",
        d.reason
    );
    let d = denied(gate.admit(&exec("ghcr.io/acme/locked/x:1", &own)));
    assert_eq!(d.rule, "locked");
    assert!(d.reason.contains("allow_exec = false"), "{}", d.reason);
    // An exec into a container whose image the policy now denies is refused too.
    let d = denied(gate.admit(&exec("ghcr.io/acme/debug/sh:1", &own)));
    assert_eq!(d.rule, "no-debug");
    // A process runc would read differently is refused before anything else.
    let mut bad = exec("ghcr.io/acme/app:1", &own);
    bad.exec = Some(ExecRequest {
        id: "e2".into(),
        process_text: r#"{"user":{"uid":1000},"User":{"uid":0}}"#.into(),
    });
    assert_eq!(denied(gate.admit(&bad)).rule, RULE_SPEC);
    // Every exec decision is in the log with its process; a start's `exec` is null.
    allowed(gate.admit(&node.request(Some("ghcr.io/acme/app:1"), &[])));
    let r = records(&node);
    assert_eq!(r.len(), 6, "{r:?}");
    assert_eq!(r[0]["decision"], "allow");
    assert_eq!(r[0]["exec"]["id"], "e1");
    assert_eq!(r[0]["exec"]["args"], json!(["id"]));
    assert_eq!(r[0]["exec"]["user"]["uid"], 1000);
    assert_eq!(r[1]["decision"], "deny");
    assert_eq!(r[1]["exec"]["user"]["uid"], 0);
    assert_eq!(r[4]["exec"]["id"], "e2");
    assert!(r[5]["exec"].is_null(), "{}", r[5]);
    assert!(r[5].as_object().unwrap().contains_key("exec"));
}

#[test]
fn every_start_is_recorded_allowed_or_denied_and_the_cli_gate_records_nothing() {
    let node = recording_node("");
    let gate = NodeGate::for_starts().with_node_config(&node.config());
    allowed(gate.admit(&node.request(Some("ghcr.io/acme/app:1"), &[])));
    let d = denied(gate.admit(&node.request(Some("ghcr.io/acme/debug/sh:1"), &[])));
    NodeGate::new().admit(&node.request(Some("ghcr.io/acme/app:1"), &[]));
    let r = records(&node);
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[0]["decision"], "allow");
    assert_eq!(r[0]["seq"], 0);
    assert_eq!(r[0]["image"]["digest"], DIGEST);
    assert!(r[0]["host"]["kernel_release"]
        .as_str()
        .is_some_and(|k| !k.is_empty()));
    assert_eq!(r[0]["tpm"], serde_json::Value::Null);
    assert_eq!(r[0]["unquoted_reason"], crate::attestlog::TPM_OFF_REASON);
    assert_eq!(r[1]["decision"], "deny");
    assert_eq!(r[1]["reasons"][0], d.to_string());
    // The default node key was made once, with its public key beside it; the log verifies.
    let state = node.dir.path().join("state");
    let (_, public) =
        crate::attestlog::read_public_key(&crate::attestlog::default_public_key_path(&state))
            .unwrap();
    let report =
        crate::attestlog::verify_log(&state.join("attestations.jsonl"), &[public], None, None)
            .unwrap();
    assert!(report.is_valid(), "{:?}", report.problems);
    // A broken policy's denial is recorded too.
    std::fs::write(node.policy(), "version = 1\n[[rule]]\n").unwrap();
    denied(gate.admit(&node.request(Some("ghcr.io/acme/app:1"), &[])));
    assert_eq!(records(&node)[2]["decision"], "deny");
}

#[test]
fn a_required_tpm_that_cannot_be_reached_refuses_and_an_optional_one_runs_unquoted() {
    let node =
        recording_node("[tpm]\nmode = \"required\"\ntcti = \"swtpm:host=127.0.0.1,port=1\"\n");
    let d = denied(
        NodeGate::for_starts()
            .with_node_config(&node.config())
            .admit(&node.request(Some("ghcr.io/acme/app:1"), &[])),
    );
    assert_eq!(d.rule, RULE_TPM);
    assert!(
        d.reason
            .starts_with("TPM required ([tpm] mode = \"required\"): "),
        "{}",
        d.reason
    );
    let r = records(&node);
    assert_eq!(r[0]["decision"], "deny");
    assert_eq!(r[0]["tpm"], serde_json::Value::Null);
    std::fs::write(
        node.config(),
        "policy = \"policy.toml\"\nstate_dir = \"state\"\n[tpm]\nmode = \"optional\"\ntcti = \"swtpm:host=127.0.0.1,port=1\"\n",
    )
    .unwrap();
    allowed(
        NodeGate::for_starts()
            .with_node_config(&node.config())
            .admit(&node.request(Some("ghcr.io/acme/app:1"), &[])),
    );
    let r = records(&node);
    assert_eq!(r[1]["decision"], "allow");
    assert!(
        r[1]["unquoted_reason"]
            .as_str()
            .is_some_and(|u| u.starts_with("TPM failed: ")),
        "{:?}",
        r[1]
    );
}

#[test]
fn a_start_quoted_by_a_real_tpm_carries_evidence_that_verifies() {
    let tpm = crate::tpm::testtpm::SwTpm::start();
    let node = recording_node(&format!(
        "[tpm]\nmode = \"required\"\ntcti = \"{}\"\n",
        tpm.tcti
    ));
    allowed(
        NodeGate::for_starts()
            .with_node_config(&node.config())
            .admit(&node.request(Some("ghcr.io/acme/app:1"), &[])),
    );
    let r = records(&node);
    let evidence: crate::tpm::TpmEvidence = serde_json::from_value(r[0]["tpm"].clone()).unwrap();
    crate::tpm::verify_quote(&evidence, None).unwrap();
    assert_eq!(evidence.pcr, 23);
}

#[test]
fn a_state_dir_others_can_write_refuses_every_start() {
    use std::os::unix::fs::PermissionsExt;
    let node = recording_node("");
    let state = node.dir.path().join("state");
    allowed(
        NodeGate::for_starts()
            .with_node_config(&node.config())
            .admit(&node.request(Some("ghcr.io/acme/app:1"), &[])),
    );
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let d = denied(
        NodeGate::for_starts()
            .with_node_config(&node.config())
            .admit(&node.request(Some("ghcr.io/acme/app:1"), &[])),
    );
    assert_eq!(d.rule, RULE_CONFIG);
    assert!(d.reason.contains("writable by no one else"), "{}", d.reason);
    // vouch verify refuses too.
    denied(NodeGate::new().admit(&node.request(Some("ghcr.io/acme/app:1"), &[])));
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    allowed(
        NodeGate::for_starts()
            .with_node_config(&node.config())
            .admit(&node.request(Some("ghcr.io/acme/app:1"), &[])),
    );
}

#[test]
fn an_unusable_attestation_key_refuses_in_enforce_mode() {
    let node = recording_node("[attestation]\nkey = \"/nonexistent/node.key\"\n");
    let d = denied(
        NodeGate::for_starts()
            .with_node_config(&node.config())
            .admit(&node.request(Some("ghcr.io/acme/app:1"), &[])),
    );
    assert_eq!(d.rule, RULE_ATTESTATION);
    assert!(d.reason.contains("/nonexistent/node.key"), "{}", d.reason);
}

#[test]
fn policy_changes_apply_to_the_next_start() {
    let node = Node::with_policy(Some(POLICY));
    let gate = NodeGate::new();
    let request = node.request(Some("quay.io/x/y:1"), &[]);
    denied(gate.admit(&request));
    std::fs::write(node.policy(), "version = 1\ndefault = \"allow\"\n").unwrap();
    allowed(gate.admit(&request));
}

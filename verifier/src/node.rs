//! [`NodeGate`]: the gate the shim asks on every container start.
//!
//! Each call reads the configuration and the policy afresh, so a changed policy applies to the next start
//! without restarting anything. Everything that goes wrong denies (fail closed) with a one-line reason that
//! says what to fix.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::Digest;
use std::time::{Duration, SystemTime};

use crate::cache::VerdictCache;
use crate::config::{self, Config};
use crate::gate::{Denial, Evidence, ExecRequest, Gate, GateRequest, ImageIdentity, Verdict};
use crate::host::{self, HostPaths, HostState, SpecSecurity};
use crate::identity::{self, ContainerFacts, ContainerRef, CriPod, ImageResolver};
use crate::policy::{self, Decision, LoadedPolicy, Mode, Rule, RuleDenial, Subject};
use crate::registry::Registry;
use crate::spec::pod_security::{self, PodContext};
use crate::verify::{self, Outcome, SignatureSource, StartContext};

/// CRI's annotation with the pod's Kubernetes namespace. Never read by the gate (any containerd
/// client can write it): the namespace comes from CRI's own records.
pub const SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
/// CRI's annotation saying whether a container is the pod `sandbox` or a `container`; never read
/// by the gate either.
pub const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";

/// Denial rule names for failures before any policy rule could be consulted.
pub const RULE_CONFIG: &str = "config";
pub const RULE_POLICY: &str = "policy";
pub const RULE_IMAGE_IDENTITY: &str = "image-identity";
/// The spec is not the one that was judged, or reads differently to runc.
pub const RULE_SPEC: &str = "spec";
/// An exec asks for more than its container's init process has.
pub const RULE_EXEC: &str = "exec";

/// Builds the source of signatures from the node's `[registry]` configuration.
pub type SourceFactory =
    Box<dyn Fn(&Config) -> Result<Box<dyn SignatureSource>, String> + Send + Sync>;

/// How long a start waits for containerd's version (asked once per containerd socket).
const CONTAINERD_VERSION_TIMEOUT: Duration = Duration::from_secs(2);

/// The production [`Gate`]: node config, policy file, and containerd for the image identity.
pub struct NodeGate {
    resolver: Box<dyn ImageResolver>,
    sources: SourceFactory,
    /// Measure the host at every decision (container starts), not only for `[rule.host]`.
    starts: bool,
    /// The node configuration of container starts; `None`: `$VOUCH_CONFIG`, else the default.
    node_config: Option<std::path::PathBuf>,
}

/// What a decision was made on: what its record says besides the verdict.
#[derive(Debug, Default)]
pub struct Facts {
    pub config: Option<Config>,
    pub image: Option<ImageIdentity>,
    pub policy_digest: Option<String>,
    pub host: Option<HostState>,
    pub spec: Option<SpecSecurity>,
    /// What verified, per verify rule: `rule: authority ...`.
    pub signatures: Vec<String>,
    /// Whether failing to record a decision refuses the start: enforce when any rule that allowed
    /// it enforces, else the policy's mode.
    pub mode: Option<Mode>,
    /// Per verify rule with `[rule.sbom]`: the digest of the SBOM judged.
    pub sbom_digests: BTreeMap<String, String>,
    /// The root filesystem's digest and per-layer summary, when it was measured.
    pub rootfs_digest: Option<String>,
    pub layers: Option<serde_json::Value>,
    /// The container's pod, as containerd's CRI plugin recorded it.
    pub pod: Option<CriPod>,
    /// Why the spec text cannot be judged, when it cannot.
    pub spec_error: Option<String>,
    /// The exec the decision is about, if it is one.
    pub exec: Option<crate::attestlog::ExecInfo>,
}

/// vouch trusts what it keeps under `state_dir` (verdicts, layer measurements, baselines, binary
/// digests): the directory must be ours and writable by no one else. Starts create it (0700);
/// `vouch verify` only checks one that exists.
fn check_state_dir(state_dir: &Path, create: bool) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    if create {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(|e| format!("state_dir {}: {e}", state_dir.display()))?;
    }
    let meta = match std::fs::symlink_metadata(state_dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => return Ok(()),
        Err(e) => return Err(format!("state_dir {}: {e}", state_dir.display())),
    };
    let euid = nix::unistd::geteuid().as_raw();
    if !meta.is_dir() {
        return Err(format!(
            "state_dir {} is not a directory (a symlink is not accepted)",
            state_dir.display()
        ));
    }
    if meta.uid() != euid || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "state_dir {} is owned by uid {} with mode {:o}: vouch trusts what it keeps there, so it \
             must be owned by uid {euid} and writable by no one else (chown {euid}; chmod go-w)",
            state_dir.display(),
            meta.uid(),
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

/// Keeps the files an SBOM declares, for rules whose rootfs baseline compares with them.
fn keep_declared_files(state_dir: &Path, rule: &Rule, digest: &str, sbom: &crate::sbom::Sbom) {
    use crate::policy::Baseline;
    let wanted = rule.rootfs.as_ref().is_some_and(|r| {
        matches!(
            r.baseline,
            Baseline::DeclaredFilesMatch | Baseline::NoUndeclaredExecutables
        )
    });
    if !wanted {
        return;
    }
    let saved = crate::baseline::Declared::from_sbom(sbom).and_then(|d| d.save(state_dir, digest));
    if let Err(e) = saved {
        // The start that needs it fails closed, naming the missing baseline.
        log::warn!("cannot keep the declared files of SBOM {digest}: {e}");
    }
}

/// Denial rule names of the recording step.
pub const RULE_TPM: &str = "tpm";
pub const RULE_ATTESTATION: &str = "attestation";

impl Default for NodeGate {
    fn default() -> Self {
        NodeGate::new()
    }
}

impl NodeGate {
    /// A gate that asks containerd for image identities.
    pub fn new() -> NodeGate {
        NodeGate::with_resolver(Box::new(identity::Containerd::default()))
    }

    /// A gate with another source of image identities (tests, or callers that know better).
    pub fn with_resolver(resolver: Box<dyn ImageResolver>) -> NodeGate {
        NodeGate {
            resolver,
            sources: Box::new(|config: &Config| {
                Registry::new(&config.registry)
                    .map(|r| Box::new(r) as Box<dyn SignatureSource>)
                    .map_err(|e| e.to_string())
            }),
            starts: false,
            node_config: None,
        }
    }

    /// Container starts under the node configuration at `path` instead of `$VOUCH_CONFIG`
    /// (tests, benchmarks).
    pub fn with_node_config(mut self, path: &Path) -> NodeGate {
        self.node_config = Some(path.to_path_buf());
        self
    }

    /// Measures the container's root filesystem and compares it with the baseline of each rule
    /// that has one; returns each failing rule with its one-line reason. A measurement that fails
    /// fails every rule with a baseline (and is only logged when no rule asks).
    fn check_rootfs<'r>(
        &self,
        config: &Config,
        request: &GateRequest,
        matched: &[&'r Rule],
        supply_chain_exempt: bool,
        facts: &mut Facts,
    ) -> Vec<(&'r Rule, String)> {
        use crate::baseline::{self, Exempt};
        use crate::policy::Baseline;
        let judged: Vec<&Rule> = matched
            .iter()
            .copied()
            .filter(|r| {
                r.rootfs
                    .as_ref()
                    .is_some_and(|f| f.baseline != Baseline::Off)
            })
            .collect();
        let options = crate::measure::Options::default();
        let measured = crate::rootfs::measure_container(
            &request.rootfs,
            &request.bundle,
            &config.state_dir,
            &options,
        );
        let m = match measured {
            Ok(m) => m,
            Err(e) => {
                log::warn!("container {}: {e}", request.container_id);
                return judged.into_iter().map(|r| (r, e.to_string())).collect();
            }
        };
        facts.rootfs_digest = Some(m.digest.clone());
        facts.layers = Some(m.summary());
        if judged.is_empty() {
            return Vec::new();
        }
        let merged = m.merged();
        let mut out = Vec::new();
        let mut image_baseline = None;
        for rule in judged {
            let Some(req) = &rule.rootfs else { continue };
            let exempt = match Exempt::new(&req.exempt_paths) {
                Ok(e) => e,
                Err(e) => {
                    out.push((rule, format!("rootfs: exempt_paths: {e}")));
                    continue;
                }
            };
            let mismatches = match req.baseline {
                Baseline::Off => continue,
                Baseline::Image => {
                    let Some(image) = &facts.image else {
                        out.push((
                            rule,
                            "rootfs: the container has no image to compare with".into(),
                        ));
                        continue;
                    };
                    let expected = image_baseline.get_or_insert_with(|| {
                        let source = baseline::ContainerdContent::new(
                            &request.containerd_address,
                            &request.namespace,
                        );
                        baseline::image_baseline(
                            &source,
                            &image.digest,
                            &config.state_dir,
                            options.max_entries,
                        )
                        .map_err(|e| e.to_string())
                    });
                    match expected {
                        Ok(expected) => baseline::compare_image(expected, &merged, &exempt),
                        Err(e) => {
                            out.push((rule, format!("rootfs: image baseline: {e}")));
                            continue;
                        }
                    }
                }
                // An exempt image's SBOM is never judged: there are no declared files to compare.
                Baseline::DeclaredFilesMatch | Baseline::NoUndeclaredExecutables
                    if supply_chain_exempt =>
                {
                    Vec::new()
                }
                Baseline::DeclaredFilesMatch | Baseline::NoUndeclaredExecutables => {
                    let Some(digest) = facts.sbom_digests.get(&rule.name) else {
                        out.push((rule, "rootfs: no SBOM was judged for this rule, so there are no declared files to compare with".into()));
                        continue;
                    };
                    let Some(declared) =
                        baseline::Declared::load(&config.state_dir, digest, options.max_entries)
                    else {
                        out.push((rule, format!(
                            "rootfs: the files SBOM {digest} declares are not kept under {} (they are \
                             kept when the SBOM is judged: remove the verdict cache to judge it again)",
                            config.state_dir.join("baselines").display()
                        )));
                        continue;
                    };
                    baseline::check_declared(
                        &declared,
                        &merged,
                        &request.bundle.join("rootfs"),
                        &exempt,
                        req.baseline == Baseline::NoUndeclaredExecutables,
                    )
                }
            };
            // Mounts may not hide or replace the code the baseline measured.
            let hidden = baseline::hidden_code(&merged, &request.spec, &exempt);
            let reason = match (baseline::reason(&mismatches), hidden.is_empty()) {
                (reason, true) => reason,
                (None, false) => Some(format!("rootfs: {}", hidden.join("; "))),
                (Some(reason), false) => Some(format!("{reason}; {}", hidden.join("; "))),
            };
            if let Some(reason) = reason {
                out.push((rule, reason));
            }
        }
        out
    }

    /// The gate of container starts (`vouch gate`): every decision also measures the host.
    pub fn for_starts() -> NodeGate {
        NodeGate {
            starts: true,
            ..NodeGate::new()
        }
    }

    /// Measures the host and reads the container's spec.
    fn measure_host(
        &self,
        config: &Config,
        request: &GateRequest,
    ) -> (HostState, Option<SpecSecurity>) {
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
        let state = host::collect(&HostPaths::default(), &inputs);
        let spec = (!request.spec.is_null()).then(|| host::spec_security(&request.spec));
        (state, spec)
    }

    /// Replaces where signatures come from (tests).
    pub fn with_sources(mut self, sources: SourceFactory) -> NodeGate {
        self.sources = sources;
        self
    }

    /// Runs the signature checks of the matching verify rules; each failure becomes a denial of
    /// its rule in the rule's mode.
    fn verify_rules(
        &self,
        config: &Config,
        loaded: &LoadedPolicy,
        names: &[String],
        image: &ImageIdentity,
        start: &StartContext<'_>,
        sboms: &mut BTreeMap<String, String>,
    ) -> Vec<(RuleDenial, Option<Vec<String>>)> {
        let rules: Vec<&Rule> = names.iter().filter_map(|n| loaded.policy.rule(n)).collect();
        let mode = |rule: &str| {
            loaded
                .policy
                .rule(rule)
                .map(|r| loaded.policy.mode_of(r))
                .unwrap_or(Mode::Enforce)
        };
        let cache = VerdictCache::new(
            &config.state_dir,
            config.cache.allow_ttl_s,
            config.cache.deny_ttl_s,
        );
        let keep_declared = |rule: &Rule, digest: &str, sbom: &crate::sbom::Sbom| {
            keep_declared_files(&config.state_dir, rule, digest, sbom)
        };
        let (outcomes, sbom_digests) = verify::check_rules(
            &rules,
            image,
            start,
            &loaded.policy_digest,
            &cache,
            &verify::Material {
                make_source: &|| (self.sources)(config),
                on_sbom: &keep_declared,
            },
            SystemTime::now(),
        );
        *sboms = sbom_digests;
        outcomes
            .into_iter()
            .map(|(name, outcome)| {
                let m = mode(&name);
                match outcome {
                    Outcome::Verified(v) => (
                        RuleDenial {
                            rule: name,
                            reason: String::new(),
                            mode: m,
                        },
                        Some(v),
                    ),
                    Outcome::Failed(reason) | Outcome::Unreachable(reason) => (
                        RuleDenial {
                            rule: name,
                            reason,
                            mode: m,
                        },
                        None,
                    ),
                }
            })
            .collect()
    }

    /// Reads the config and the policy; the config goes into `facts` as soon as it is read, so
    /// that a broken policy's denial is still recorded. For container starts, the node config
    /// decides which config applies (see [`config::for_container`]); the CLI reads what it is told.
    fn load_policy(
        &self,
        request: &GateRequest,
        container: &ContainerRef<'_>,
        facts: &mut Facts,
    ) -> Result<(Config, LoadedPolicy), (&'static str, String)> {
        let node = self
            .node_config
            .clone()
            .or_else(|| std::env::var_os(config::CONFIG_ENV).map(Into::into));
        // A refusal of the container's config goes into the node's own log.
        let refuse = |facts: &mut Facts, reason: String| {
            if self.starts {
                facts.config = config::for_container_with(None, node.clone()).ok();
            }
            (RULE_CONFIG, reason)
        };
        let from_record = match (&request.config_path, request.containerd_address.is_empty()) {
            (None, false) => match self.resolver.runtime_config_path(container) {
                Ok(path) => path,
                Err(e) => {
                    return Err(refuse(
                        facts,
                        format!("cannot read the runtime options: {e}"),
                    ))
                }
            },
            _ => None,
        };
        let option = request.config_path.as_deref().or(from_record.as_deref());
        let chosen = if self.starts {
            config::for_container_with(option, node.clone())
        } else {
            config::locate(option).load()
        };
        let config = chosen.map_err(|e| refuse(facts, e.to_string()))?;
        facts.config = Some(config.clone());
        let loaded = policy::load(&config.policy).map_err(|e| (RULE_POLICY, e.to_string()))?;
        Ok((config, loaded))
    }
}

impl Gate for NodeGate {
    fn admit(&self, request: &GateRequest) -> Verdict {
        let mut facts = Facts::default();
        // The spec judged is the exact text runc will read, parsed here.
        let parsed = request
            .spec_text
            .as_deref()
            .map(identity::spec::parse_unambiguous);
        let judged;
        let request = match parsed {
            Some(Ok(mut spec)) => {
                crate::spec::name_host_namespaces(&mut spec);
                judged = GateRequest {
                    spec,
                    ..request.clone()
                };
                &judged
            }
            Some(Err(reason)) => {
                judged = GateRequest {
                    spec: serde_json::Value::Null,
                    ..request.clone()
                };
                facts.spec_error = Some(reason);
                &judged
            }
            None => request,
        };
        let verdict = match &request.exec {
            Some(exec) => self.decide_exec(request, exec, &mut facts),
            None => self.decide(request, &mut facts),
        };
        if self.starts {
            record(request, &facts, verdict)
        } else {
            verdict
        }
    }
}

/// Appends the decision to the attestation log (extending and quoting the TPM as configured) and
/// returns the verdict that stands: a required TPM that fails, or a log that cannot be written in
/// enforce mode, turns an allow into a denial. Without a readable config there is no log to write.
fn record(request: &GateRequest, facts: &Facts, verdict: Verdict) -> Verdict {
    use crate::attestlog::{self, DecisionKind, LogSettings, TpmQuoter, TpmUse};
    use crate::config::TpmMode;
    let Some(config) = &facts.config else {
        return verdict;
    };
    let (kind, reasons) = match &verdict {
        Verdict::Allow(e) if e.audited.is_empty() => (DecisionKind::Allow, Vec::new()),
        Verdict::Allow(e) => (DecisionKind::Audit, e.audited.clone()),
        Verdict::Deny(d) => (DecisionKind::Deny, vec![d.to_string()]),
    };
    let mut decision = attestlog::Decision::new(request.container_id.clone(), kind);
    decision.image = facts.image.clone();
    decision.reasons = reasons;
    decision.policy_digest = facts.policy_digest.clone();
    decision.signatures = facts.signatures.clone();
    decision.sbom_digest = facts.sbom_digests.values().next().cloned();
    decision.rootfs_digest = facts.rootfs_digest.clone();
    decision.exec = facts.exec.clone();
    if let Some(layers) = &facts.layers {
        decision.layers = layers.clone();
    }
    decision.subject_fallback_digest = match &request.spec_text {
        Some(text) => Some(hex::encode(sha2::Sha256::digest(text.as_bytes()))),
        None => std::fs::read(request.bundle.join("config.json"))
            .ok()
            .map(|b| hex::encode(sha2::Sha256::digest(&b))),
    };
    if let Some(host) = &facts.host {
        let mut value = serde_json::to_value(host).unwrap_or_default();
        if let (Some(map), Some(spec)) = (value.as_object_mut(), &facts.spec) {
            map.insert(
                "container".into(),
                serde_json::to_value(spec).unwrap_or_default(),
            );
        }
        decision.host = value;
    }
    let quoter = || {
        Box::new(TpmQuoter::new(
            config.tpm.tcti.clone(),
            config.state_dir.clone(),
            config.tpm.pcr,
        ))
    };
    let key = match &config.attestation.key {
        Some(k) => Ok(k.clone()),
        None => attestlog::ensure_default_key(&config.state_dir),
    };
    let subject = match &verdict {
        Verdict::Deny(d) => d.subject.clone(),
        Verdict::Allow(e) => e
            .image
            .as_ref()
            .map(|i| i.subject())
            .unwrap_or_else(|| format!("container {}", request.container_id)),
    };
    let mut settings = LogSettings {
        key: key.as_ref().ok().cloned(),
        key_password_file: config.attestation.key_password_file.clone(),
        collector: config.attestation.collector.clone(),
        collector_budget: Duration::from_millis(config.attestation.collector_timeout_ms),
        tpm: match config.tpm.mode {
            TpmMode::Off => TpmUse::Off,
            TpmMode::Optional => TpmUse::Optional(quoter()),
            TpmMode::Required => TpmUse::Required(quoter()),
        },
        ..LogSettings::new(config.attestation.log.clone())
    };
    let appended = key.and_then(|_| attestlog::append(&mut settings, &decision));
    match (appended, verdict) {
        (Ok(a), Verdict::Allow(_)) if a.decision == DecisionKind::Deny => Verdict::Deny(Denial {
            subject,
            reason: a
                .tpm_failure
                .map(|e| format!("TPM required ([tpm] mode = \"required\"): {e}"))
                .unwrap_or_else(|| "the TPM did not record the start".into()),
            rule: RULE_TPM.into(),
        }),
        (Ok(a), verdict) => {
            if let Some(e) = a.collector_error {
                log::warn!("attestation collector: {e}");
            }
            verdict
        }
        (Err(e), Verdict::Allow(_))
            if facts.mode != Some(Mode::Audit) || config.tpm.mode == TpmMode::Required =>
        {
            Verdict::Deny(Denial {
                subject,
                reason: format!("cannot record the decision: {e}"),
                rule: RULE_ATTESTATION.into(),
            })
        }
        (Err(e), verdict) => {
            log::warn!("cannot record the decision: {e}");
            verdict
        }
    }
}

impl NodeGate {
    /// The verdict for an exec into a running container: under the current policy its image must
    /// still be allowed, no matching rule may forbid exec (`allow_exec = false`), and the process
    /// may not exceed the container's init process (rule `exec`). Signatures and the root
    /// filesystem are the start's business and are not judged again here.
    pub fn decide_exec(
        &self,
        request: &GateRequest,
        exec: &ExecRequest,
        facts: &mut Facts,
    ) -> Verdict {
        let refuse = |subject: String, rule: &str, reason: String| {
            Verdict::Deny(Denial {
                subject,
                reason,
                rule: rule.to_string(),
            })
        };
        let early_subject = || format!("container {}", request.container_id);
        let process = identity::spec::parse_unambiguous(&exec.process_text);
        facts.exec = Some(crate::attestlog::ExecInfo::of(
            &exec.id,
            process.as_ref().unwrap_or(&serde_json::Value::Null),
        ));
        let container = ContainerRef {
            address: &request.containerd_address,
            namespace: &request.namespace,
            container_id: &request.container_id,
            cri_image_name: None,
        };
        let (config, loaded) = match self.load_policy(request, &container, facts) {
            Ok(loaded) => loaded,
            Err((rule, reason)) => return refuse(early_subject(), rule, reason),
        };
        if let Err(reason) = check_state_dir(&config.state_dir, self.starts) {
            return refuse(early_subject(), RULE_CONFIG, reason);
        }
        let process = match process {
            Ok(p) => p,
            Err(reason) => {
                return refuse(
                    early_subject(),
                    RULE_SPEC,
                    format!("exec process: {reason}"),
                )
            }
        };
        if let Some(reason) = facts.spec_error.clone() {
            return refuse(early_subject(), RULE_SPEC, reason);
        }
        facts.policy_digest = Some(loaded.policy_digest.clone());
        facts.mode = Some(loaded.policy.mode);
        let policy = &loaded.policy;
        let known = match self.container_facts(request, &container) {
            Ok(known) => known,
            Err(e) => return refuse(early_subject(), RULE_IMAGE_IDENTITY, e.to_string()),
        };
        let pod = known.cri.clone();
        facts.image = known.image.clone();
        facts.pod = pod.clone();
        let image = known.image;
        let subject = match &image {
            Some(image) => image.subject(),
            None => format!("container {} (no image)", request.container_id),
        };
        let denial = |d: RuleDenial| Denial {
            subject: subject.clone(),
            reason: d.reason,
            rule: d.rule,
        };
        let decision = policy.evaluate(&Subject {
            repository: image.as_ref().map(|i| i.repository.as_str()),
            namespace: pod.as_ref().and_then(|p| p.namespace.as_deref()),
            is_sandbox: pod.as_ref().is_some_and(|p| p.sandbox),
        });
        let (rules, audited, exempt, verify) = match decision {
            Decision::Deny(d) => return Verdict::Deny(denial(d)),
            Decision::Allow {
                rules,
                audited,
                exempt,
                verify,
            } => (rules, audited, exempt, verify),
        };
        let mut audited: Vec<String> = audited.into_iter().map(|d| denial(d).to_string()).collect();
        let mut found: Vec<RuleDenial> = Vec::new();
        for rule in rules
            .iter()
            .chain(verify.iter())
            .filter_map(|n| policy.rule(n))
        {
            if rule.host.as_ref().is_some_and(|h| !h.allow_exec) {
                found.push(RuleDenial {
                    rule: rule.name.clone(),
                    reason:
                        "host: allow_exec = false: no process may be exec'd into this container"
                            .into(),
                    mode: policy.mode_of(rule),
                });
            }
        }
        let beyond = crate::spec::exec::exceeds(&request.spec, &process);
        if !beyond.is_empty() {
            found.push(RuleDenial {
                rule: RULE_EXEC.into(),
                reason: beyond.join("; "),
                mode: policy.mode,
            });
        }
        for d in found {
            if d.mode == Mode::Enforce {
                return Verdict::Deny(denial(d));
            }
            audited.push(denial(d).to_string());
        }
        let mut allowed_by = rules;
        allowed_by.extend(verify);
        Verdict::Allow(Evidence {
            image,
            rules: allowed_by,
            audited,
            exempt,
            policy_digest: Some(loaded.policy_digest),
        })
    }

    /// What containerd's own records say about the container, or what the caller already knows
    /// (the CLI names an image; it has no container).
    fn container_facts(
        &self,
        request: &GateRequest,
        container: &ContainerRef<'_>,
    ) -> crate::Result<ContainerFacts> {
        match &request.image {
            Some(image) => Ok(ContainerFacts {
                image: Some(image.clone()),
                ..ContainerFacts::default()
            }),
            None => self.resolver.inspect(container),
        }
    }

    /// The verdict for `request`; `facts` collects what it was based on.
    pub fn decide(&self, request: &GateRequest, facts: &mut Facts) -> Verdict {
        let refuse = |subject: String, rule: &str, reason: String| {
            Verdict::Deny(Denial {
                subject,
                reason,
                rule: rule.to_string(),
            })
        };
        // Before the image is known, name the container. Never by its annotations: any
        // containerd client writes those.
        let early_subject = || match &request.image {
            Some(image) => image.subject(),
            None => format!("container {}", request.container_id),
        };

        let container = ContainerRef {
            address: &request.containerd_address,
            namespace: &request.namespace,
            container_id: &request.container_id,
            cri_image_name: None,
        };
        let (config, loaded) = match self.load_policy(request, &container, facts) {
            Ok(loaded) => loaded,
            Err((rule, reason)) => {
                // Fail closed, but still name the image digest when containerd can tell it.
                let subject = match self.container_facts(request, &container) {
                    Ok(ContainerFacts {
                        image: Some(image), ..
                    }) => image.subject(),
                    _ => early_subject(),
                };
                return refuse(subject, rule, reason);
            }
        };
        if let Err(reason) = check_state_dir(&config.state_dir, self.starts) {
            return refuse(early_subject(), RULE_CONFIG, reason);
        }
        // The spec runc will run: unambiguous, on the root filesystem that is measured.
        if let Some(reason) = facts.spec_error.clone() {
            return refuse(early_subject(), RULE_SPEC, reason);
        }
        if !request.bundle.as_os_str().is_empty() && !request.spec.is_null() {
            if let Err(reason) = identity::spec::check_root_path(&request.spec, &request.bundle) {
                return refuse(early_subject(), RULE_SPEC, reason);
            }
        }
        if self.starts {
            let removed = crate::rootfs::prune(&config.state_dir, crate::rootfs::PRUNE_AFTER);
            if removed > 0 {
                log::info!("removed {removed} layer measurements and baselines unused for 30 days");
            }
        }
        facts.policy_digest = Some(loaded.policy_digest.clone());
        facts.mode = Some(loaded.policy.mode);
        let policy = &loaded.policy;

        // Which content the container really has, and its pod, from containerd's records.
        let known = match self.container_facts(request, &container) {
            Ok(known) => known,
            Err(e) => return refuse(early_subject(), RULE_IMAGE_IDENTITY, e.to_string()),
        };
        let pod = known.cri.clone();
        // The pod namespace comes from CRI's records; only the CLI (which judges an image, not a
        // container) may name one itself.
        let namespace = match &pod {
            Some(p) => p.namespace.as_deref(),
            None if !self.starts => request.pod_namespace.as_deref(),
            None => None,
        };
        let is_sandbox = pod.as_ref().is_some_and(|p| p.sandbox);
        let image = known.image.clone();
        if let (Some(i), Some(chain)) = (&image, &known.rootfs_chain) {
            log::debug!(
                "container {}: layers {chain} are image {}",
                request.container_id,
                i.subject()
            );
        }
        facts.image = image.clone();
        facts.pod = pod.clone();
        let decision = policy.evaluate(&Subject {
            repository: image.as_ref().map(|i| i.repository.as_str()),
            namespace,
            is_sandbox,
        });
        let subject = match &image {
            Some(image) => image.subject(),
            None => format!("container {} (no image)", request.container_id),
        };
        let denial = |d: RuleDenial| Denial {
            subject: subject.clone(),
            reason: d.reason,
            rule: d.rule,
        };
        match decision {
            Decision::Deny(d) => Verdict::Deny(denial(d)),
            Decision::Allow {
                mut rules,
                audited,
                exempt,
                verify,
            } => {
                let mut audited: Vec<String> =
                    audited.into_iter().map(|d| denial(d).to_string()).collect();
                if let (false, Some(img)) = (verify.is_empty(), image.as_ref()) {
                    let start = StartContext {
                        namespace,
                        pod_name: pod.as_ref().and_then(|p| p.name.as_deref()),
                        image_name: Some(img.name.as_str()),
                    };
                    for (d, verified) in self.verify_rules(
                        &config,
                        &loaded,
                        &verify,
                        img,
                        &start,
                        &mut facts.sbom_digests,
                    ) {
                        match verified {
                            Some(v) => {
                                log::info!("rule \"{}\": verified {}", d.rule, v.join(", "));
                                facts
                                    .signatures
                                    .extend(v.iter().map(|line| format!("{}: {line}", d.rule)));
                                rules.push(d.rule);
                            }
                            None if d.mode == Mode::Enforce => return Verdict::Deny(denial(d)),
                            None => audited.push(denial(d).to_string()),
                        }
                    }
                }
                // The host and the container's security settings, for every rule that asks.
                let mut matched: Vec<&Rule> = Vec::new();
                for rule in rules
                    .iter()
                    .chain(verify.iter())
                    .filter_map(|n| policy.rule(n))
                {
                    if !matched.iter().any(|m| m.name == rule.name) {
                        matched.push(rule);
                    }
                }
                // A record that cannot be written refuses the start when any rule that let it
                // through enforces (see `record`).
                if matched.iter().any(|r| policy.mode_of(r) == Mode::Enforce) {
                    facts.mode = Some(Mode::Enforce);
                }
                let wants_host = matched.iter().any(|r| r.host.is_some());
                if self.starts || wants_host {
                    let (state, spec) = self.measure_host(&config, request);
                    for rule in matched.iter().filter(|r| r.host.is_some()) {
                        let Some(req) = &rule.host else { continue };
                        let mut violations = host::check(req, &state, spec.as_ref());
                        if let (Some(level), false) = (req.pod_security, request.spec.is_null()) {
                            let context = PodContext {
                                kubelet_root: &config.kubernetes.kubelet_root,
                                pod_uid: pod.as_ref().and_then(|p| p.uid.as_deref()),
                                sandbox_id: pod.as_ref().map(|p| p.sandbox_id.as_str()),
                            };
                            violations.extend(pod_security::check(level, &request.spec, &context));
                        }
                        if violations.is_empty() {
                            continue;
                        }
                        let d = RuleDenial {
                            rule: rule.name.clone(),
                            reason: violations.join("; "),
                            mode: policy.mode_of(rule),
                        };
                        if d.mode == Mode::Enforce {
                            facts.host = Some(state);
                            facts.spec = spec;
                            return Verdict::Deny(denial(d));
                        }
                        audited.push(denial(d).to_string());
                    }
                    facts.host = Some(state);
                    facts.spec = spec;
                }
                // The root filesystem, measured and compared with each rule's baseline.
                // Only a container has one: `vouch verify` of an image (no bundle) skips this.
                let wants_rootfs = matched.iter().any(|r| r.rootfs.is_some());
                if !request.bundle.as_os_str().is_empty() && (self.starts || wants_rootfs) {
                    let violations =
                        self.check_rootfs(&config, request, &matched, exempt.is_some(), facts);
                    for (rule, reason) in violations {
                        let d = RuleDenial {
                            mode: policy.mode_of(rule),
                            rule: rule.name.clone(),
                            reason,
                        };
                        if d.mode == Mode::Enforce {
                            return Verdict::Deny(denial(d));
                        }
                        audited.push(denial(d).to_string());
                    }
                }
                Verdict::Allow(Evidence {
                    image,
                    rules,
                    audited,
                    exempt,
                    policy_digest: Some(loaded.policy_digest),
                })
            }
        }
    }
}

#[cfg(test)]
mod verify_tests {
    //! The gate with a verify rule, on the real cosign fixture from containers/image, with the
    //! registry replaced by a stand-in that counts its calls.
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use base64::Engine;

    use super::*;
    use crate::material::{Origin, SignatureMaterial, SimpleSigning};
    use crate::registry::{Discovery, RegistryError};

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/signatures"
    );
    const DIGEST: &str = "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00";
    const REPO: &str = "192.168.64.2:5000/cosign-signed-single-sample";

    fn fixture_signature() -> SimpleSigning {
        let bytes = std::fs::read(format!(
            "{FIXTURES}/containers-image/dir-img-cosign-valid/signature-1"
        ))
        .unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(bytes.strip_prefix(b"\x00sigstore-json\n").unwrap()).unwrap();
        let payload = base64::engine::general_purpose::STANDARD
            .decode(json["payload"].as_str().unwrap())
            .unwrap();
        SimpleSigning {
            payload,
            signature_b64: json["annotations"]["dev.cosignproject.cosign/signature"]
                .as_str()
                .unwrap()
                .to_string(),
            certificate_pem: None,
            chain_pem: None,
            rekor_bundle_json: None,
            origin: Origin {
                manifest: format!("{REPO}@sha256:sig"),
                layer: Some(0),
            },
        }
    }

    #[derive(Clone)]
    enum Answer {
        Signed,
        Unsigned,
        Down,
    }

    struct Stand {
        answer: Answer,
        calls: Arc<AtomicUsize>,
    }

    impl SignatureSource for Stand {
        fn discover(
            &self,
            repository: &str,
            digest: &str,
            _sig_repo: Option<&str>,
        ) -> Result<Discovery, RegistryError> {
            assert_eq!((repository, digest), (REPO, DIGEST));
            self.calls.fetch_add(1, Ordering::SeqCst);
            match self.answer {
                Answer::Signed => Ok(Discovery {
                    material: vec![SignatureMaterial::Simple(fixture_signature())],
                    skipped: vec![],
                }),
                Answer::Unsigned => Ok(Discovery {
                    material: vec![],
                    skipped: vec![],
                }),
                Answer::Down => Err(RegistryError::Unreachable {
                    registry: "192.168.64.2:5000".into(),
                    reason: "tcp connect error: Connection refused".into(),
                }),
            }
        }
    }

    struct Node {
        dir: tempfile::TempDir,
        calls: Arc<AtomicUsize>,
    }

    impl Node {
        fn new(key: &str, extra: &str) -> Node {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(
                dir.path().join("config.toml"),
                "policy = \"policy.toml\"\nstate_dir = \"state\"\n[cache]\nallow_ttl_s = 3600\ndeny_ttl_s = 0\n",
            )
            .unwrap();
            std::fs::write(
                dir.path().join("policy.toml"),
                format!(
                    "version = 1\n[[rule]]\nname = \"signed\"\nimages = [\"{REPO}\"]\naction = \"verify\"\n{extra}[[rule.authority]]\nname = \"release\"\nkey = \"{FIXTURES}/containers-image/{key}\"\n"
                ),
            )
            .unwrap();
            Node {
                dir,
                calls: Arc::new(AtomicUsize::new(0)),
            }
        }

        fn admit(&self, answer: Answer) -> Verdict {
            self.admit_in(answer, None)
        }

        /// A start in Kubernetes namespace `ns` (none: a `ctr` container).
        fn admit_in(&self, answer: Answer, ns: Option<&str>) -> Verdict {
            let calls = Arc::clone(&self.calls);
            let gate = NodeGate::new().with_sources(Box::new(move |_: &Config| {
                Ok(Box::new(Stand {
                    answer: answer.clone(),
                    calls: Arc::clone(&calls),
                }) as Box<dyn SignatureSource>)
            }));
            gate.admit(&GateRequest {
                container_id: "c1".into(),
                config_path: Some(self.dir.path().join("config.toml")),
                image: Some(ImageIdentity {
                    name: format!("{REPO}:latest"),
                    repository: REPO.into(),
                    digest: DIGEST.into(),
                }),
                pod_namespace: ns.map(str::to_string),
                ..Default::default()
            })
        }
    }

    #[test]
    fn a_verdict_cached_for_one_namespace_never_answers_for_rules_only_another_matches() {
        let node = Node::new("cosign.pub", "");
        // A second verify rule, for prod only, trusting a key that did not sign the image.
        let policy = node.dir.path().join("policy.toml");
        let mut text = std::fs::read_to_string(&policy).unwrap();
        text.push_str(&format!(
            "[[rule]]\nname = \"prod-strict\"\nimages = [\"{REPO}\"]\nnamespaces = [\"prod-*\"]\naction = \"verify\"\n[[rule.authority]]\nname = \"other\"\nkey = \"{FIXTURES}/containers-image/cosign2.pub\"\n"
        ));
        std::fs::write(&policy, text).unwrap();
        assert!(matches!(
            node.admit_in(Answer::Signed, Some("dev")),
            Verdict::Allow(_)
        ));
        let d = denial(node.admit_in(Answer::Signed, Some("prod-eu")));
        assert!(d.contains("(rule \"prod-strict\")"), "{d}");
        // And the other way round: the prod denial does not refuse dev.
        assert!(matches!(
            node.admit_in(Answer::Signed, Some("dev")),
            Verdict::Allow(_)
        ));
    }

    #[test]
    fn two_authority_names_for_one_key_count_once_toward_the_threshold() {
        let node = Node::new("cosign.pub", "threshold = 2\n");
        let policy = node.dir.path().join("policy.toml");
        let mut text = std::fs::read_to_string(&policy).unwrap();
        text.push_str(&format!(
            "[[rule.authority]]\nname = \"release-again\"\nkey = \"{FIXTURES}/containers-image/cosign.pub\"\n"
        ));
        std::fs::write(&policy, text).unwrap();
        let d = denial(node.admit(Answer::Signed));
        assert!(
            d.contains("1 of 2 required authorities verified") && d.contains("count once"),
            "{d}"
        );
    }

    fn denial(v: Verdict) -> String {
        match v {
            Verdict::Deny(d) => d.to_string(),
            other => panic!("expected a denial, got {other:?}"),
        }
    }

    #[test]
    fn image_signed_by_the_trusted_key_is_allowed_and_the_verdict_cached() {
        let node = Node::new("cosign.pub", "");
        for _ in 0..3 {
            match node.admit(Answer::Signed) {
                Verdict::Allow(e) => assert_eq!(e.rules, vec!["signed".to_string()]),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            node.calls.load(Ordering::SeqCst),
            1,
            "later starts use the cache"
        );
        // The cached allow is used even while the registry is down.
        assert!(matches!(node.admit(Answer::Down), Verdict::Allow(_)));
    }

    #[test]
    fn signature_by_another_key_is_refused_naming_rule_and_digest() {
        let line = denial(Node::new("cosign2.pub", "").admit(Answer::Signed));
        assert!(
            line.starts_with(&format!(
                "vouch: denied {REPO}@{DIGEST}: no signature by a trusted authority"
            )),
            "{line}"
        );
        assert!(line.ends_with("(rule \"signed\")"), "{line}");
    }

    #[test]
    fn unsigned_image_is_refused() {
        let line = denial(Node::new("cosign.pub", "").admit(Answer::Unsigned));
        assert!(
            line.contains(&format!("no signature found for {DIGEST}")),
            "{line}"
        );
    }

    #[test]
    fn unreachable_registry_without_a_cached_verdict_is_refused_as_unreachable_not_unsigned() {
        let node = Node::new("cosign.pub", "");
        let line = denial(node.admit(Answer::Down));
        assert!(line.contains("registry unreachable"), "{line}");
        assert!(!line.contains("no signature"), "{line}");
        // Nothing was cached: once the registry is back, the image is verified and runs.
        assert!(matches!(node.admit(Answer::Signed), Verdict::Allow(_)));
    }

    #[test]
    fn rotated_out_key_is_refused() {
        let node = Node::new("cosign.pub", "");
        let policy = std::fs::read_to_string(node.dir.path().join("policy.toml")).unwrap();
        std::fs::write(
            node.dir.path().join("policy.toml"),
            format!("{policy}valid_until = \"2020-01-01T00:00:00Z\"\n"),
        )
        .unwrap();
        let line = denial(node.admit(Answer::Signed));
        assert!(line.contains("expired at"), "{line}");
    }

    #[test]
    fn audit_mode_lets_an_unsigned_image_run_with_the_would_be_denial() {
        let node = Node::new("cosign.pub", "mode = \"audit\"\n");
        match node.admit(Answer::Unsigned) {
            Verdict::Allow(e) => {
                assert_eq!(e.audited.len(), 1);
                assert!(
                    e.audited[0].contains("no signature found"),
                    "{:?}",
                    e.audited
                );
            }
            other => panic!("{other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::error::Error;
    use crate::gate::ImageIdentity;

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
        let e =
            allowed(NodeGate::new().admit(&node.request(Some("registry.k8s.io/pause:3.9"), &[])));
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
        let (gate, _) =
            gate_with(|| Ok(facts(Some("ghcr.io/acme/debug/x:1"), Some(("prod", true)))));
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
            "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]}
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
        assert!(facts.spec.as_ref().is_some_and(|s| s.privileged));
        assert!(facts
            .host
            .as_ref()
            .is_some_and(|h| !h.kernel_release.is_empty()));

        // Masked paths and a seccomp filter, but CAP_SYS_ADMIN and CAP_NET_ADMIN: still refused,
        // each capability named.
        request.spec["linux"]["maskedPaths"] = serde_json::json!(["/proc/kcore"]);
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
        let evidence: crate::tpm::TpmEvidence =
            serde_json::from_value(r[0]["tpm"].clone()).unwrap();
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
}

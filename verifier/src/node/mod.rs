//! [`NodeGate`]: the gate the shim asks on every container start and exec.
//!
//! A decision is a pipeline of stages, each in its own folder with one entry point over the facts
//! gathered so far: [`identity`](crate::identity::stage) -> [`policy`](crate::policy::Judgement)
//! -> [`supply chain`](crate::supply_chain::stage) -> [`spec and host`](crate::spec::stage) ->
//! [`rootfs`](crate::rootfs::stage) -> [`record`](crate::record::stage). This driver only
//! sequences them; a new check is a new stage, not a new branch here. Each call reads the
//! configuration and the policy afresh, so a changed policy applies to the next start without
//! restarting anything. Everything that goes wrong denies (fail closed) with a one-line reason
//! that says what to fix.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::facts::Facts;
use crate::gate::{Denial, Evidence, ExecRequest, Gate, GateRequest, Verdict};
use crate::identity::stage::{self as identity, Identified};
use crate::identity::{self as containerd, ImageResolver};
use crate::policy::{Judgement, Subject};
use crate::registry::Registry;
use crate::verify::SignatureSource;

pub use crate::identity::stage::{RULE_CONFIG, RULE_IMAGE_IDENTITY, RULE_POLICY, RULE_SPEC};
pub use crate::record::stage::{RULE_ATTESTATION, RULE_TPM};
pub use crate::spec::stage::RULE_EXEC;

/// CRI's annotation with the pod's Kubernetes namespace. Never read by the gate (any containerd
/// client can write it): the namespace comes from CRI's own records.
pub const SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
/// CRI's annotation saying whether a container is the pod `sandbox` or a `container`; never read
/// by the gate either.
pub const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";

/// Builds the source of signatures from the node's `[registry]` configuration.
pub type SourceFactory =
    Box<dyn Fn(&Config) -> Result<Box<dyn SignatureSource>, String> + Send + Sync>;

/// The production [`Gate`]: node config, policy file, and containerd for the image identity.
pub struct NodeGate {
    resolver: Box<dyn ImageResolver>,
    sources: SourceFactory,
    /// Measure the host and the rootfs and record every decision (container starts), not only
    /// what rules ask for (the CLI).
    starts: bool,
    /// The node configuration of container starts; `None`: `$VOUCH_CONFIG`, else the default.
    node_config: Option<PathBuf>,
}

impl Default for NodeGate {
    fn default() -> Self {
        NodeGate::new()
    }
}

impl NodeGate {
    /// A gate that asks containerd for image identities.
    pub fn new() -> NodeGate {
        NodeGate::with_resolver(Box::new(containerd::Containerd::default()))
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

    /// The gate of container starts (`vouch gate`): every decision also measures the host and
    /// the root filesystem and is recorded.
    pub fn for_starts() -> NodeGate {
        NodeGate {
            starts: true,
            ..NodeGate::new()
        }
    }

    /// Replaces where signatures come from (tests).
    pub fn with_sources(mut self, sources: SourceFactory) -> NodeGate {
        self.sources = sources;
        self
    }

    fn identity_inputs(&self) -> identity::Inputs<'_> {
        identity::Inputs {
            resolver: self.resolver.as_ref(),
            node_config: self.node_config.as_deref(),
            starts: self.starts,
        }
    }

    /// The verdict for the start `request`; `facts` collects what it was based on.
    pub fn decide(&self, request: &GateRequest, facts: &mut Facts) -> Verdict {
        match self.pipeline(request, facts) {
            Ok(verdict) => verdict,
            Err(denial) => Verdict::Deny(denial),
        }
    }

    fn pipeline(&self, request: &GateRequest, facts: &mut Facts) -> Result<Verdict, Denial> {
        let Identified {
            config,
            loaded,
            known,
        } = identity::check(&self.identity_inputs(), request, facts)?;
        let pod = known.cri.as_ref();
        // The pod namespace comes from CRI's records; only the CLI (which judges an image, not a
        // container) may name one itself.
        let namespace = match pod {
            Some(p) => p.namespace.as_deref(),
            None if !self.starts => request.pod_namespace.as_deref(),
            None => None,
        };
        let mut judgement = self.judge(&loaded, &known, namespace, request)?;
        facts.audit_only = judgement.audit_only(&loaded.policy);
        let make_source = || (self.sources)(&config);
        crate::supply_chain::stage::check(
            &config,
            &loaded,
            known.image.as_ref(),
            pod,
            namespace,
            &make_source,
            facts,
            &mut judgement,
        )?;
        crate::spec::stage::check(
            &config,
            &loaded,
            request,
            pod,
            self.starts,
            facts,
            &mut judgement,
        )?;
        crate::rootfs::stage::check(
            &config,
            &loaded,
            request,
            self.starts,
            facts,
            &mut judgement,
        )?;
        Ok(judgement.allow(known.image, loaded.policy_digest))
    }

    /// The policy stage: the matching rules for this image, pod namespace and sandbox status.
    fn judge(
        &self,
        loaded: &crate::policy::LoadedPolicy,
        known: &crate::facts::ContainerFacts,
        namespace: Option<&str>,
        request: &GateRequest,
    ) -> Result<Judgement, Denial> {
        let image = known.image.as_ref();
        let decision = loaded.policy.evaluate(&Subject {
            repository: image.map(|i| i.repository.as_str()),
            namespace,
            is_sandbox: known.cri.as_ref().is_some_and(|p| p.sandbox),
        });
        let subject = match image {
            Some(image) => image.subject(),
            None => format!("container {} (no image)", request.container_id),
        };
        Judgement::new(decision, subject)
    }

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
        let process = crate::identity::spec::parse_unambiguous(&exec.process_text);
        facts.exec = Some(crate::facts::ExecInfo::of(
            &exec.id,
            process.as_ref().unwrap_or(&serde_json::Value::Null),
        ));
        let judged = (|| {
            let Identified { loaded, known, .. } =
                identity::check(&self.identity_inputs(), request, facts)?;
            let process = process.map_err(|reason| Denial {
                subject: format!("container {}", request.container_id),
                reason: format!("exec process: {reason}"),
                rule: RULE_SPEC.into(),
            })?;
            let namespace = known.cri.as_ref().and_then(|p| p.namespace.as_deref());
            let mut judgement = self.judge(&loaded, &known, namespace, request)?;
            facts.audit_only = judgement.audit_only(&loaded.policy);
            crate::spec::stage::check_exec(&loaded, request, &process, &mut judgement)?;
            let verify = std::mem::take(&mut judgement.verify);
            judgement.rules.extend(verify);
            Ok(judgement.allow(known.image, loaded.policy_digest))
        })();
        judged.unwrap_or_else(Verdict::Deny)
    }
}

impl Gate for NodeGate {
    fn admit(&self, request: &GateRequest) -> Verdict {
        let mut facts = Facts::default();
        if let Some(reason) = &request.refused_after_create {
            return self.record_refusal_after_create(request, reason, &mut facts);
        }
        // The spec judged is the exact text runc will read, parsed here.
        let parsed = request
            .spec_text
            .as_deref()
            .map(crate::identity::spec::parse_unambiguous);
        let judged;
        let mut pins = None;
        let request = match parsed {
            Some(Ok(mut spec)) => {
                let mut pinned = crate::spec::pins::Pins {
                    namespaces: crate::spec::name_host_namespaces(&mut spec),
                    binds: crate::spec::resolve_bind_sources(&mut spec),
                    ..Default::default()
                };
                crate::spec::pins::drop_hidden(&mut pinned, &spec);
                crate::spec::pins::pin_root(&mut pinned, &request.bundle);
                pins = Some(pinned);
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
            None => match self.decide(request, &mut facts) {
                Verdict::Allow(evidence) if self.starts => {
                    Verdict::Allow(Evidence { pins, ..evidence })
                }
                other => other,
            },
        };
        if self.starts {
            crate::record::stage::record(request, &facts, verdict)
        } else {
            verdict
        }
    }
}

impl NodeGate {
    /// Records a start the shim refused after `runc create` (the created container was not what
    /// was judged): the refusal is a decision like any other, chained and signed, with the image
    /// the container's identity resolves to when it still does.
    fn record_refusal_after_create(
        &self,
        request: &GateRequest,
        reason: &str,
        facts: &mut Facts,
    ) -> Verdict {
        let subject = match identity::check(&self.identity_inputs(), request, facts) {
            Ok(Identified { known, .. }) => known.image.map(|i| i.subject()),
            Err(_) => None,
        };
        let denial = Denial {
            subject: subject.unwrap_or_else(|| format!("container {}", request.container_id)),
            reason: reason.to_string(),
            rule: RULE_SPEC.into(),
        };
        if self.starts {
            crate::record::stage::record(request, facts, Verdict::Deny(denial))
        } else {
            Verdict::Deny(denial)
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod verify_tests;

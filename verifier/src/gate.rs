//! The gate: the one question the shim asks before `runc create`.
//!
//! The shim builds a [`GateRequest`] after the rootfs is mounted and calls [`Gate::admit`]; the answer
//! is a [`Verdict`]. Everything that decides lives behind this trait, so the shim stays a thin
//! containerd/runc adapter and the CLI can reach the same verdict through the same code.

use std::{collections::BTreeMap, fmt, path::PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::facts::{ImageIdentity, RootfsMount};

/// Everything the shim knows about a container at the moment of the decision.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GateRequest {
    pub container_id: String,
    pub bundle: PathBuf,
    /// The bundle's `config.json`, parsed.
    pub spec: serde_json::Value,
    /// The bundle's `config.json` exactly as the shim read it and will hand it to runc. When set,
    /// the gate judges these bytes (see [`crate::identity::spec`]), not `spec`.
    #[serde(default)]
    pub spec_text: Option<String>,
    /// `spec.annotations`, flattened for convenience.
    pub annotations: BTreeMap<String, String>,
    pub rootfs: Vec<RootfsMount>,
    /// containerd's gRPC socket (the shim's `-address`).
    pub containerd_address: String,
    /// containerd namespace of the container (`default`, `k8s.io`, ...).
    pub namespace: String,
    /// The runtime option `ConfigPath`, when containerd passed one.
    pub config_path: Option<PathBuf>,
    /// Set when the caller already knows the image (the CLI); the shim leaves it empty and the gate
    /// asks containerd.
    pub image: Option<ImageIdentity>,
    /// The runtime binary the shim runs containers with (`BinaryName`, else `runc` on `PATH`).
    #[serde(default)]
    pub runtime_binary: Option<String>,
    /// The shim's own executable, measured with the host.
    #[serde(default)]
    pub shim_binary: Option<PathBuf>,
    /// The Kubernetes namespace to judge an image for, set only by the CLI (`vouch verify
    /// --namespace`); container starts take it from CRI's records.
    #[serde(default)]
    pub pod_namespace: Option<String>,
    /// Set when the question is an exec into the running container, not its start.
    #[serde(default)]
    pub exec: Option<ExecRequest>,
    /// Set when the shim refused the start after `runc create`, because the created container
    /// differs from its [`Evidence::pins`]: the gate only records the refusal, with this reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_after_create: Option<String>,
}

/// An exec into a running container: the process runc would start in it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExecRequest {
    /// containerd's exec id.
    pub id: String,
    /// The exec's OCI process spec, exactly the bytes runc will be handed.
    pub process_text: String,
}

/// What the gate allowed, kept to be recorded later (attestations arrive in a later issue).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub image: Option<ImageIdentity>,
    /// Names of the rules that matched and allowed.
    pub rules: Vec<String>,
    /// Would-be denials that audit mode let through, each as its full denial line.
    pub audited: Vec<String>,
    /// Why no check ran (exempt image, pod sandbox), if that is why it passed.
    pub exempt: Option<String>,
    /// SHA-256 of the policy bytes the decision was made with.
    pub policy_digest: Option<String>,
    /// What the created container must have (container starts): the shim compares it after
    /// `runc create`, before `runc start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pins: Option<crate::spec::pins::Pins>,
}

/// A refusal: which image, why, and by which rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denial {
    /// `<repository>@sha256:<hex>`, or a description of the container when it has no image.
    pub subject: String,
    pub reason: String,
    pub rule: String,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line: kubelet events and `ctr` show it as is.
        let line = format!(
            "vouch: denied {}: {} (rule \"{}\")",
            self.subject, self.reason, self.rule
        );
        f.write_str(&line.replace(['\n', '\r'], " "))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    Allow(Evidence),
    Deny(Denial),
}

/// The environment variable that tells `vouch gate` which log level to write to stderr (`error`,
/// `warn`, `info`, `debug`, `trace`); the shim passes its own.
pub const LOG_LEVEL_ENV: &str = "VOUCH_LOG_LEVEL";

/// One line of `vouch gate`'s stderr, `LEVEL message`: its level and message; anything else (a
/// panic, a library writing to stderr) is a warning as it stands.
pub fn parse_log_line(line: &str) -> (log::Level, &str) {
    match line.split_once(' ') {
        Some((level, message)) => match level.parse::<log::Level>() {
            Ok(level) => (level, message),
            Err(_) => (log::Level::Warn, line),
        },
        None => (log::Level::Warn, line),
    }
}

/// The seam between the shim and the verifier.
pub trait Gate: Send + Sync {
    fn admit(&self, request: &GateRequest) -> Verdict;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_log_lines_keep_their_level() {
        assert_eq!(
            parse_log_line("WARN cannot record the decision: disk full"),
            (log::Level::Warn, "cannot record the decision: disk full")
        );
        assert_eq!(parse_log_line("DEBUG x y"), (log::Level::Debug, "x y"));
        assert_eq!(
            parse_log_line("thread 'main' panicked at x"),
            (log::Level::Warn, "thread 'main' panicked at x")
        );
        assert_eq!(parse_log_line("oops"), (log::Level::Warn, "oops"));
    }

    #[test]
    fn denial_line_has_the_fixed_shape_and_stays_on_one_line() {
        let d = Denial {
            subject: "127.0.0.1:5000/app@sha256:ab".into(),
            reason: "image matches a deny rule\nsecond".into(),
            rule: "no-debug".into(),
        };
        assert_eq!(
            d.to_string(),
            "vouch: denied 127.0.0.1:5000/app@sha256:ab: image matches a deny rule second (rule \"no-debug\")"
        );
    }
}

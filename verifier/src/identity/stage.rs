//! The identity stage: which config applies, which spec runc will run, and which content and pod
//! the container really has, from containerd's own records. Everything that fails here refuses
//! (fail closed) with a one-line reason that says what to fix.

use std::path::{Path, PathBuf};

use crate::config::{self, Config};
use crate::facts::{ContainerFacts, Facts};
use crate::gate::{Denial, GateRequest};
use crate::policy::{self, LoadedPolicy};

use super::{ContainerRef, ImageResolver};

/// Denial rule names of the identity stage, for failures before any policy rule could be consulted.
pub const RULE_CONFIG: &str = "config";
pub const RULE_POLICY: &str = "policy";
pub const RULE_IMAGE_IDENTITY: &str = "image-identity";
/// The spec is ambiguous, or its root is not the rootfs vouch mounted and measured.
pub const RULE_SPEC: &str = "spec";

/// What the identity stage needs besides the request.
pub struct Inputs<'a> {
    pub resolver: &'a dyn ImageResolver,
    /// The node configuration of container starts; `None`: `$VOUCH_CONFIG`, else the default.
    pub node_config: Option<&'a Path>,
    /// A container start (the node config decides the config, state_dir is created); else the CLI.
    pub starts: bool,
}

/// What the identity stage established.
pub struct Identified {
    pub config: Config,
    pub loaded: LoadedPolicy,
    pub known: ContainerFacts,
}

/// The identity stage. `facts` gets the config as soon as it is read, so that a later refusal is
/// still recorded in the right log.
pub fn check(
    inputs: &Inputs<'_>,
    request: &GateRequest,
    facts: &mut Facts,
) -> Result<Identified, Denial> {
    let refuse = |subject: String, rule: &str, reason: String| Denial {
        subject,
        reason,
        rule: rule.to_string(),
    };
    // Before the image is known, name the container. Never by its annotations: any containerd
    // client writes those.
    let early_subject = || match &request.image {
        Some(image) => image.subject(),
        None => format!("container {}", request.container_id),
    };
    let container = container_ref(request);
    let (config, loaded) = match load(inputs, request, &container, facts) {
        Ok(loaded) => loaded,
        Err((rule, reason)) => {
            // Fail closed, but still name the image digest when containerd can tell it.
            let subject = match container_facts(inputs.resolver, request, &container) {
                Ok(ContainerFacts {
                    image: Some(image), ..
                }) => image.subject(),
                _ => early_subject(),
            };
            return Err(refuse(subject, rule, reason));
        }
    };
    if let Err(reason) = check_state_dir(&config.state_dir, inputs.starts) {
        return Err(refuse(early_subject(), RULE_CONFIG, reason));
    }
    if inputs.starts {
        let removed = crate::rootfs::prune(&config.state_dir, crate::rootfs::PRUNE_AFTER);
        if removed > 0 {
            log::info!("removed {removed} layer measurements and baselines unused for 30 days");
        }
    }
    facts.policy_digest = Some(loaded.policy_digest.clone());
    // The spec runc will run: unambiguous, on the root filesystem that is measured.
    if let Some(reason) = facts.spec_error.clone() {
        return Err(refuse(early_subject(), RULE_SPEC, reason));
    }
    if !request.bundle.as_os_str().is_empty() && !request.spec.is_null() {
        if let Err(reason) = super::spec::check_root_path(&request.spec, &request.bundle) {
            return Err(refuse(early_subject(), RULE_SPEC, reason));
        }
    }
    // Which content the container really has, and its pod, from containerd's records.
    let known = container_facts(inputs.resolver, request, &container)
        .map_err(|e| refuse(early_subject(), RULE_IMAGE_IDENTITY, e.to_string()))?;
    if let (Some(i), Some(chain)) = (&known.image, &known.rootfs_chain) {
        log::debug!(
            "container {}: layers {chain} are image {}",
            request.container_id,
            i.subject()
        );
    }
    facts.image = known.image.clone();
    facts.pod = known.cri.clone();
    Ok(Identified {
        config,
        loaded,
        known,
    })
}

/// The container as containerd knows it.
pub fn container_ref(request: &GateRequest) -> ContainerRef<'_> {
    ContainerRef {
        address: &request.containerd_address,
        namespace: &request.namespace,
        container_id: &request.container_id,
        cri_image_name: None,
    }
}

/// What containerd's own records say about the container, or what the caller already knows (the
/// CLI names an image; it has no container).
pub fn container_facts(
    resolver: &dyn ImageResolver,
    request: &GateRequest,
    container: &ContainerRef<'_>,
) -> crate::Result<ContainerFacts> {
    match &request.image {
        Some(image) => Ok(ContainerFacts {
            image: Some(image.clone()),
            ..ContainerFacts::default()
        }),
        None => resolver.inspect(container),
    }
}

/// Reads the config and the policy; the config goes into `facts` as soon as it is read. For
/// container starts the node config decides which config applies (see [`config::for_container`]);
/// the CLI reads what it is told.
fn load(
    inputs: &Inputs<'_>,
    request: &GateRequest,
    container: &ContainerRef<'_>,
    facts: &mut Facts,
) -> Result<(Config, LoadedPolicy), (&'static str, String)> {
    let node: Option<PathBuf> = inputs
        .node_config
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(config::CONFIG_ENV).map(Into::into));
    // A refusal of the container's config goes into the node's own log.
    let refuse = |facts: &mut Facts, reason: String| {
        if inputs.starts {
            facts.config = config::for_container_with(None, node.clone()).ok();
        }
        (RULE_CONFIG, reason)
    };
    let from_record = match (&request.config_path, request.containerd_address.is_empty()) {
        (None, false) => match inputs.resolver.runtime_config_path(container) {
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
    let chosen = if inputs.starts {
        config::for_container_with(option, node.clone())
    } else {
        config::locate(option).load()
    };
    let config = chosen.map_err(|e| refuse(facts, e.to_string()))?;
    facts.config = Some(config.clone());
    let loaded = policy::load(&config.policy).map_err(|e| (RULE_POLICY, e.to_string()))?;
    Ok((config, loaded))
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

//! What `vouch verify` asks the gate: the request a container start of an image would give it, and
//! a node config with another policy (`--policy`), written privately for the one call.

use std::path::{Path, PathBuf};

use vouch_verifier::config::Config;
use vouch_verifier::{GateRequest, ImageIdentity};

/// The request a container start of `image` would give the gate (pod namespace `namespace` when
/// given; a `ctr` container otherwise), with the node config at `config_path` (else the usual
/// lookup: `$VOUCH_CONFIG`, then the default path).
pub fn gate_request(
    image: ImageIdentity,
    namespace: Option<&str>,
    config_path: Option<&Path>,
) -> GateRequest {
    GateRequest {
        container_id: "vouch-verify".to_string(),
        pod_namespace: namespace.map(str::to_string),
        config_path: config_path.map(Path::to_path_buf),
        image: Some(image),
        ..GateRequest::default()
    }
}

/// A node config identical to another but for its policy: written to a private temporary
/// directory, removed when dropped. Point [`GateRequest::config_path`] at [`Self::path`].
#[derive(Debug)]
pub struct PolicyOverride {
    dir: PathBuf,
    path: PathBuf,
}

impl PolicyOverride {
    /// The config file to use.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PolicyOverride {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn local(path: &Path, reason: impl std::fmt::Display) -> String {
    format!("{}: {reason}", path.display())
}

/// Makes `policy` the policy of the node config `config` (already loaded, so its registry,
/// cache and state settings carry over, and the verdict cache is the node's).
pub fn policy_override(config: &Config, policy: &Path) -> Result<PolicyOverride, String> {
    let cwd = std::env::current_dir().map_err(|e| {
        local(
            Path::new("."),
            format!("cannot find the current directory: {e}"),
        )
    })?;
    let absolute = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            cwd.join(p)
        }
    };
    let text = |p: &Path| -> Result<toml::Value, String> {
        let p = absolute(p);
        p.to_str()
            .map(|s| toml::Value::String(s.to_string()))
            .ok_or_else(|| local(&p, "path is not UTF-8"))
    };
    let mut registry = toml::Table::new();
    registry.insert(
        "plain_http".into(),
        toml::Value::Array(
            config
                .registry
                .plain_http
                .iter()
                .map(|h| toml::Value::String(h.clone()))
                .collect(),
        ),
    );
    registry.insert(
        "ca_files".into(),
        toml::Value::Array(
            config
                .registry
                .ca_files
                .iter()
                .map(|p| text(p))
                .collect::<Result<_, String>>()?,
        ),
    );
    if let Some(auth) = &config.registry.auth {
        registry.insert("auth".into(), text(auth)?);
    }
    let int = |v: u64| toml::Value::Integer(i64::try_from(v).unwrap_or(i64::MAX));
    registry.insert("timeout_ms".into(), int(config.registry.timeout_ms));
    let mut cache = toml::Table::new();
    cache.insert("allow_ttl_s".into(), int(config.cache.allow_ttl_s));
    cache.insert("deny_ttl_s".into(), int(config.cache.deny_ttl_s));
    let mut table = toml::Table::new();
    table.insert("policy".into(), text(policy)?);
    table.insert("state_dir".into(), text(&config.state_dir)?);
    table.insert("registry".into(), toml::Value::Table(registry));
    table.insert("cache".into(), toml::Value::Table(cache));
    let body = toml::to_string(&table).map_err(|e| {
        local(
            policy,
            format!("cannot write a config for this policy: {e}"),
        )
    })?;

    let dir = private_temp_dir()?;
    let path = dir.join("config.toml");
    let written = PolicyOverride { dir, path };
    std::fs::write(&written.path, body).map_err(|e| local(&written.path, e))?;
    Ok(written)
}

/// A fresh directory only this user can read, under the system's temporary directory.
fn private_temp_dir() -> Result<PathBuf, String> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut last = None;
    for attempt in 0..16u32 {
        let dir = base.join(format!(
            "vouch-verify-{}-{nanos:x}-{attempt}",
            std::process::id()
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(local(&dir, e)),
        }
    }
    Err(local(
        &base,
        format!(
            "cannot create a temporary directory: {}",
            last.map(|e| e.to_string()).unwrap_or_default()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE_DIGEST: &str =
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn gate_requests_carry_the_image_and_namespace() {
        let image = ImageIdentity {
            name: "busybox:1".into(),
            repository: "docker.io/library/busybox".into(),
            digest: FIXTURE_DIGEST.into(),
        };
        let r = gate_request(image.clone(), Some("prod"), Some(Path::new("/c.toml")));
        assert_eq!(r.image, Some(image.clone()));
        assert_eq!(r.pod_namespace.as_deref(), Some("prod"));
        assert_eq!(r.config_path.as_deref(), Some(Path::new("/c.toml")));
        assert!(r.containerd_address.is_empty());
        let r = gate_request(image, None, None);
        assert!(r.annotations.is_empty());
        assert_eq!(r.config_path, None);
    }

    #[test]
    fn policy_override_keeps_everything_but_the_policy() {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("config.toml");
        std::fs::write(
            &config_path,
            "policy = \"policy.toml\"\nstate_dir = \"state\"\n[registry]\nplain_http = [\"127.0.0.1:5000\"]\nauth = \"auth \\\"x\\\".json\"\ntimeout_ms = 1234\n[cache]\nallow_ttl_s = 7\ndeny_ttl_s = 8\n",
        )
        .unwrap();
        let config = vouch_verifier::config::locate(Some(&config_path))
            .load()
            .unwrap();
        let other = dir.path().join("other.toml");
        let o = policy_override(&config, &other).unwrap();
        let temp_dir = o.path().parent().unwrap().to_path_buf();
        let reread = vouch_verifier::config::locate(Some(o.path()))
            .load()
            .unwrap();
        assert_eq!(reread.policy, other);
        assert_eq!(reread.state_dir, config.state_dir);
        assert_eq!(reread.registry, config.registry);
        assert_eq!(reread.cache, config.cache);
        drop(o);
        assert!(!temp_dir.exists());
    }
}

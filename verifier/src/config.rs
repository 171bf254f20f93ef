//! The node configuration: where the policy is and where vouch keeps state.
//!
//! Found at the runtime option `ConfigPath` (what containerd passes from the runtime's `options`), else
//! `$VOUCH_CONFIG`, else [`DEFAULT_CONFIG`]. A path someone named explicitly must exist; the default path
//! may be absent, which means all defaults.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::tomlfile;

pub const DEFAULT_CONFIG: &str = "/etc/vouch/config.toml";
pub const DEFAULT_POLICY: &str = "/etc/vouch/policy.toml";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/vouch";
pub const CONFIG_ENV: &str = "VOUCH_CONFIG";
/// Default per-request registry timeout, `[registry] timeout_ms`.
pub const DEFAULT_REGISTRY_TIMEOUT_MS: u64 = 5000;
/// Default lifetime of a cached "allowed" verdict, `[cache] allow_ttl_s`.
pub const DEFAULT_ALLOW_TTL_S: u64 = 3600;
/// Default lifetime of a cached "denied" verdict, `[cache] deny_ttl_s`.
pub const DEFAULT_DENY_TTL_S: u64 = 60;

/// Where the configuration comes from, and so how a missing file is treated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// The runtime option `ConfigPath`.
    RuntimeOption(PathBuf),
    /// `$VOUCH_CONFIG`.
    Environment(PathBuf),
    /// [`DEFAULT_CONFIG`]; absent means defaults.
    Default(PathBuf),
}

impl ConfigSource {
    pub fn path(&self) -> &Path {
        match self {
            ConfigSource::RuntimeOption(p)
            | ConfigSource::Environment(p)
            | ConfigSource::Default(p) => p,
        }
    }

    fn origin(&self) -> &'static str {
        match self {
            ConfigSource::RuntimeOption(_) => "from the runtime option ConfigPath",
            ConfigSource::Environment(_) => "from $VOUCH_CONFIG",
            ConfigSource::Default(_) => "the default location",
        }
    }

    /// Reads and parses the configuration this source names.
    pub fn load(&self) -> Result<Config> {
        let path = self.path();
        let bytes = match tomlfile::read(path, Some(self.origin())) {
            Ok(bytes) => bytes,
            Err(Error::NotFound { .. }) if matches!(self, ConfigSource::Default(_)) => {
                return Ok(Config::defaults(self.clone()));
            }
            Err(e) => return Err(e),
        };
        Config::parse(self.clone(), &bytes)
    }
}

/// The node configuration, with defaults filled in and relative paths resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The policy file.
    pub policy: PathBuf,
    pub state_dir: PathBuf,
    /// `[registry]`: how registries are reached.
    pub registry: RegistryConfig,
    /// `[cache]`: how long verdicts are reused.
    pub cache: CacheConfig,
    /// Where this configuration was read from (or would have been, for defaults).
    pub source: ConfigSource,
}

/// `[registry]`: how vouch reaches registries to fetch signatures.
///
/// ```toml
/// [registry]
/// plain_http = ["127.0.0.1:5000"]     # hosts (with port) spoken to over HTTP; all others over HTTPS
/// ca_files = ["/etc/vouch/ca.pem"]    # PEM CA certificates trusted in addition to the system's
/// auth = "/etc/vouch/auth.json"       # a docker-style config.json with `auths`
/// timeout_ms = 5000                   # per request, connect to last byte
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Registry hosts, as written in image references (`host[:port]`), reached over plain HTTP.
    pub plain_http: Vec<String>,
    /// Extra trusted CA certificates (PEM files, each may hold several).
    pub ca_files: Vec<PathBuf>,
    /// A docker-style `config.json`: `auths.<host>` with `auth` (base64 `user:password`), or
    /// `username` and `password`, or `identitytoken`. No pod pull secret ever reaches vouch.
    pub auth: Option<PathBuf>,
    /// Timeout of every registry request, from connecting to the last byte of the body.
    pub timeout_ms: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            plain_http: Vec::new(),
            ca_files: Vec::new(),
            auth: None,
            timeout_ms: DEFAULT_REGISTRY_TIMEOUT_MS,
        }
    }
}

/// `[cache]`: lifetimes of verdicts cached under `state_dir`, keyed by image and policy digest.
///
/// ```toml
/// [cache]
/// allow_ttl_s = 3600   # an "allowed" verdict is reused this long (also while the registry is down)
/// deny_ttl_s = 60      # a "denied" verdict is reused this long, so a fixed image is retried soon
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Seconds an "allowed" verdict stays valid.
    pub allow_ttl_s: u64,
    /// Seconds a "denied" verdict stays valid.
    pub deny_ttl_s: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            allow_ttl_s: DEFAULT_ALLOW_TTL_S,
            deny_ttl_s: DEFAULT_DENY_TTL_S,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    policy: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    registry: Option<RawRegistry>,
    cache: Option<RawCache>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    #[serde(default)]
    plain_http: Vec<String>,
    #[serde(default)]
    ca_files: Vec<PathBuf>,
    auth: Option<PathBuf>,
    /// Zero would mean "fail every request": refused by the parser, with its location.
    timeout_ms: Option<std::num::NonZeroU64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    allow_ttl_s: Option<u64>,
    deny_ttl_s: Option<u64>,
}

impl Config {
    pub fn defaults(source: ConfigSource) -> Config {
        Config {
            policy: PathBuf::from(DEFAULT_POLICY),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            registry: RegistryConfig::default(),
            cache: CacheConfig::default(),
            source,
        }
    }

    /// Parses configuration `bytes` read from `source`. Relative paths in it resolve against the
    /// directory of the configuration file, so a config and its policy can travel together.
    pub fn parse(source: ConfigSource, bytes: &[u8]) -> Result<Config> {
        let raw: RawConfig = tomlfile::parse(source.path(), bytes)?;
        let base = source
            .path()
            .parent()
            .unwrap_or(Path::new("/"))
            .to_path_buf();
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let registry = match raw.registry {
            None => RegistryConfig::default(),
            Some(r) => RegistryConfig {
                plain_http: r.plain_http,
                ca_files: r.ca_files.into_iter().map(resolve).collect(),
                auth: r.auth.map(resolve),
                timeout_ms: r
                    .timeout_ms
                    .map_or(DEFAULT_REGISTRY_TIMEOUT_MS, std::num::NonZeroU64::get),
            },
        };
        let cache = match raw.cache {
            None => CacheConfig::default(),
            Some(c) => CacheConfig {
                allow_ttl_s: c.allow_ttl_s.unwrap_or(DEFAULT_ALLOW_TTL_S),
                deny_ttl_s: c.deny_ttl_s.unwrap_or(DEFAULT_DENY_TTL_S),
            },
        };
        Ok(Config {
            registry,
            cache,
            policy: raw
                .policy
                .map(resolve)
                .unwrap_or_else(|| DEFAULT_POLICY.into()),
            state_dir: raw
                .state_dir
                .map(resolve)
                .unwrap_or_else(|| DEFAULT_STATE_DIR.into()),
            source,
        })
    }
}

/// Finds the configuration: `option` (the runtime option `ConfigPath`) when given, else `$VOUCH_CONFIG`
/// when set and non-empty, else [`DEFAULT_CONFIG`].
pub fn locate(option: Option<&Path>) -> ConfigSource {
    locate_with(option, std::env::var_os(CONFIG_ENV).map(PathBuf::from))
}

fn locate_with(option: Option<&Path>, env: Option<PathBuf>) -> ConfigSource {
    // containerd passes an empty string when the option is declared but unset.
    match (option.filter(|p| !p.as_os_str().is_empty()), env) {
        (Some(p), _) => ConfigSource::RuntimeOption(p.to_path_buf()),
        (None, Some(p)) if !p.as_os_str().is_empty() => ConfigSource::Environment(p),
        _ => ConfigSource::Default(PathBuf::from(DEFAULT_CONFIG)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_wins_then_env_then_default() {
        let opt = Path::new("/opt/c.toml");
        let env = Some(PathBuf::from("/env/c.toml"));
        assert_eq!(
            locate_with(Some(opt), env.clone()),
            ConfigSource::RuntimeOption(opt.into())
        );
        assert_eq!(
            locate_with(None, env.clone()),
            ConfigSource::Environment("/env/c.toml".into())
        );
        assert_eq!(
            locate_with(Some(Path::new("")), env),
            ConfigSource::Environment("/env/c.toml".into())
        );
        assert_eq!(
            locate_with(None, Some(PathBuf::new())),
            ConfigSource::Default(DEFAULT_CONFIG.into())
        );
        assert_eq!(
            locate_with(None, None),
            ConfigSource::Default(DEFAULT_CONFIG.into())
        );
    }

    #[test]
    fn missing_default_config_means_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let source = ConfigSource::Default(dir.path().join("config.toml"));
        let config = source.load().unwrap();
        assert_eq!(config.policy, PathBuf::from(DEFAULT_POLICY));
        assert_eq!(config.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
    }

    #[test]
    fn missing_explicit_config_is_an_error_naming_path_and_origin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.toml");
        let e = ConfigSource::RuntimeOption(path.clone())
            .load()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: file not found (from the runtime option ConfigPath)",
                path.display()
            )
        );
        let e = ConfigSource::Environment(path.clone()).load().unwrap_err();
        assert!(e
            .to_string()
            .ends_with("file not found (from $VOUCH_CONFIG)"));
    }

    #[test]
    fn relative_paths_resolve_against_the_config_directory() {
        let source = ConfigSource::RuntimeOption("/etc/vouch/config.toml".into());
        let c = Config::parse(
            source.clone(),
            b"policy = \"p/policy.toml\"\nstate_dir = \"/srv/v\"\n",
        )
        .unwrap();
        assert_eq!(c.policy, PathBuf::from("/etc/vouch/p/policy.toml"));
        assert_eq!(c.state_dir, PathBuf::from("/srv/v"));
        let c = Config::parse(source, b"policy = \"/abs/policy.toml\"\n").unwrap();
        assert_eq!(c.policy, PathBuf::from("/abs/policy.toml"));
        assert_eq!(c.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
    }

    #[test]
    fn unknown_key_names_file_line_column_and_the_expected_keys() {
        let source = ConfigSource::Default("/etc/vouch/config.toml".into());
        let e = Config::parse(
            source,
            b"# node config\nstate_dir = \"/x\"\npolcy = \"/p\"\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/vouch/config.toml: line 3, column 1: unknown field `polcy`, expected one of `policy`, `state_dir`, `registry`, `cache`"
        );
    }

    #[test]
    fn wrong_type_and_bad_syntax_are_located() {
        let source = ConfigSource::Default("/c.toml".into());
        let e = Config::parse(source.clone(), b"policy = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/c.toml: line 1, column 10: "), "{e}");
        let e = Config::parse(source, b"\n\npolicy = \"unterminated\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/c.toml: line 3, column "), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn registry_and_cache_sections_parse_with_defaults_and_resolved_paths() {
        let source = ConfigSource::RuntimeOption("/etc/vouch/config.toml".into());
        let c = Config::parse(source.clone(), b"policy = \"/p.toml\"\n").unwrap();
        assert_eq!(c.registry, RegistryConfig::default());
        assert_eq!(c.registry.timeout_ms, 5000);
        assert_eq!(c.cache, CacheConfig::default());
        assert_eq!((c.cache.allow_ttl_s, c.cache.deny_ttl_s), (3600, 60));
        let c = Config::parse(
            source.clone(),
            b"[registry]\nplain_http = [\"127.0.0.1:5000\"]\nca_files = [\"ca.pem\", \"/abs/ca.pem\"]\n\
              auth = \"auth.json\"\ntimeout_ms = 250\n[cache]\ndeny_ttl_s = 5\n",
        )
        .unwrap();
        assert_eq!(c.registry.plain_http, vec!["127.0.0.1:5000".to_string()]);
        assert_eq!(
            c.registry.ca_files,
            vec![
                PathBuf::from("/etc/vouch/ca.pem"),
                PathBuf::from("/abs/ca.pem")
            ]
        );
        assert_eq!(c.registry.auth, Some(PathBuf::from("/etc/vouch/auth.json")));
        assert_eq!(c.registry.timeout_ms, 250);
        assert_eq!((c.cache.allow_ttl_s, c.cache.deny_ttl_s), (3600, 5));
        // An empty section is all defaults.
        let c = Config::parse(source, b"[registry]\n[cache]\n").unwrap();
        assert_eq!(c.registry, RegistryConfig::default());
        assert_eq!(c.cache, CacheConfig::default());
    }

    #[test]
    fn registry_and_cache_errors_are_located() {
        let source = ConfigSource::Default("/c.toml".into());
        let e = Config::parse(source.clone(), b"[registry]\ntimeout = 5\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/c.toml: line 2, column 1: unknown field `timeout`"),
            "{e}"
        );
        let e = Config::parse(source.clone(), b"[registry]\ntimeout_ms = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/c.toml: line 2, column 14: "), "{e}");
        assert!(e.contains("nonzero"), "{e}");
        let e = Config::parse(source.clone(), b"[registry]\nplain_http = \"h:1\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/c.toml: line 2, column 14: "), "{e}");
        let e = Config::parse(source, b"[cache]\n\nallow_ttl_s = -1\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/c.toml: line 3, column 15: "), "{e}");
    }

    #[test]
    fn a_real_file_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "policy = \"policy.toml\"\n").unwrap();
        let c = ConfigSource::Environment(path).load().unwrap();
        assert_eq!(c.policy, dir.path().join("policy.toml"));
    }
}

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
    /// Where this configuration was read from (or would have been, for defaults).
    pub source: ConfigSource,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    policy: Option<PathBuf>,
    state_dir: Option<PathBuf>,
}

impl Config {
    pub fn defaults(source: ConfigSource) -> Config {
        Config {
            policy: PathBuf::from(DEFAULT_POLICY),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
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
        Ok(Config {
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
            "/etc/vouch/config.toml: line 3, column 1: unknown field `polcy`, expected `policy` or `state_dir`"
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
    fn a_real_file_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "policy = \"policy.toml\"\n").unwrap();
        let c = ConfigSource::Environment(path).load().unwrap();
        assert_eq!(c.policy, dir.path().join("policy.toml"));
    }
}

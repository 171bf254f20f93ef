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
    /// `[tpm]`: whether and how decisions are extended into a PCR and quoted.
    pub tpm: TpmConfig,
    /// `[attestation]`: the signed log of every decision.
    pub attestation: AttestationConfig,
    /// Other configurations containers may name with the runtime option `ConfigPath`. Only the node
    /// configuration's list counts: a container whose `ConfigPath` is neither the node configuration
    /// nor listed here is refused (rule `config`).
    pub allowed_configs: Vec<PathBuf>,
    /// `[kubernetes]`: where the kubelet keeps pod volumes.
    pub kubernetes: KubernetesConfig,
    /// Where this configuration was read from (or would have been, for defaults).
    pub source: ConfigSource,
}

/// The kubelet's default root directory, `[kubernetes] kubelet_root`.
pub const DEFAULT_KUBELET_ROOT: &str = "/var/lib/kubelet";

/// `[kubernetes]`: what vouch needs to know about the node's kubelet.
///
/// ```toml
/// [kubernetes]
/// kubelet_root = "/var/lib/kubelet"   # pod volumes live under <kubelet_root>/pods/<pod uid>/
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesConfig {
    /// A bind mount whose source lies under `<kubelet_root>/pods/<the pod's uid>/` is a pod volume,
    /// not a host path.
    pub kubelet_root: PathBuf,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        KubernetesConfig {
            kubelet_root: PathBuf::from(DEFAULT_KUBELET_ROOT),
        }
    }
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

/// `[tpm] mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TpmMode {
    /// No TPM is used; records say so.
    #[default]
    Off,
    /// Used when reachable; otherwise the start goes on and its record is marked unquoted.
    Optional,
    /// Every start is extended and quoted; without a working TPM, starts are refused.
    Required,
}

/// `[tpm]`: the TPM every decision is extended into (one PCR, SHA-256 bank) and quoted by.
///
/// ```toml
/// [tpm]
/// mode = "required"              # "off" (default) | "optional" | "required"
/// tcti = "device:/dev/tpmrm0"    # the default; "swtpm:host=127.0.0.1,port=2321" for swtpm
/// pcr = 23                       # the PCR extended with each event (default 23)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmConfig {
    pub mode: TpmMode,
    pub tcti: String,
    pub pcr: u32,
}

impl Default for TpmConfig {
    fn default() -> Self {
        TpmConfig {
            mode: TpmMode::Off,
            tcti: crate::tpm::DEFAULT_TCTI.to_string(),
            pcr: crate::tpm::DEFAULT_PCR,
        }
    }
}

/// Default bound on the time a start spends posting records to the collector.
pub const DEFAULT_COLLECTOR_TIMEOUT_MS: u64 = 2000;

/// `[attestation]`: where the signed record of every decision goes, and the key that signs it.
///
/// ```toml
/// [attestation]
/// key = "/etc/vouch/node.key"              # PEM PKCS#8, or cosign's encrypted format
/// key_password_file = "/etc/vouch/node.pw" # for an encrypted key
/// log = "/var/lib/vouch/attestations.jsonl"   # default <state_dir>/attestations.jsonl
/// collector = "https://collector.example/v1/records"   # optional: each record is POSTed there
/// collector_timeout_ms = 2000              # at most this long per start, retries included
/// ```
///
/// Without `key`, vouch makes a P-256 node key once at `<state_dir>/attestation/node.key` (0600)
/// and writes its public key beside it (`node.pub`), for `vouch attestation verify --node-key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationConfig {
    pub key: Option<PathBuf>,
    pub key_password_file: Option<PathBuf>,
    pub log: PathBuf,
    pub collector: Option<String>,
    pub collector_timeout_ms: u64,
}

impl AttestationConfig {
    fn defaults(state_dir: &Path) -> AttestationConfig {
        AttestationConfig {
            key: None,
            key_password_file: None,
            log: state_dir.join("attestations.jsonl"),
            collector: None,
            collector_timeout_ms: DEFAULT_COLLECTOR_TIMEOUT_MS,
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
    tpm: Option<RawTpm>,
    attestation: Option<RawAttestation>,
    #[serde(default)]
    allowed_configs: Vec<PathBuf>,
    kubernetes: Option<RawKubernetes>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKubernetes {
    kubelet_root: Option<toml::Spanned<PathBuf>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTpm {
    mode: Option<TpmMode>,
    tcti: Option<toml::Spanned<String>>,
    pcr: Option<toml::Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttestation {
    key: Option<PathBuf>,
    key_password_file: Option<PathBuf>,
    log: Option<PathBuf>,
    collector: Option<toml::Spanned<String>>,
    collector_timeout_ms: Option<std::num::NonZeroU64>,
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
            tpm: TpmConfig::default(),
            attestation: AttestationConfig::defaults(Path::new(DEFAULT_STATE_DIR)),
            allowed_configs: Vec::new(),
            kubernetes: KubernetesConfig::default(),
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
        let state_dir = raw
            .state_dir
            .map(resolve)
            .unwrap_or_else(|| DEFAULT_STATE_DIR.into());
        let text = String::from_utf8_lossy(bytes);
        let located = |offset: usize, reason: &str| {
            tomlfile::located(source.path(), &text, Some(offset), reason)
        };
        let mut tpm = TpmConfig::default();
        if let Some(t) = raw.tpm {
            tpm.mode = t.mode.unwrap_or_default();
            if let Some(tcti) = t.tcti {
                let value = tcti.get_ref().trim();
                if value.is_empty() || value.chars().any(char::is_control) {
                    return Err(located(
                        tcti.span().start,
                        "tcti must name a TPM, e.g. \"device:/dev/tpmrm0\" or \"swtpm:host=127.0.0.1,port=2321\"",
                    ));
                }
                tpm.tcti = value.to_string();
            }
            if let Some(pcr) = t.pcr {
                if *pcr.get_ref() > 23 {
                    return Err(located(pcr.span().start, "pcr must be between 0 and 23"));
                }
                tpm.pcr = pcr.into_inner();
            }
        }
        let mut attestation = AttestationConfig::defaults(&state_dir);
        if let Some(a) = raw.attestation {
            attestation.key = a.key.map(resolve);
            attestation.key_password_file = a.key_password_file.map(resolve);
            if let Some(log) = a.log {
                attestation.log = resolve(log);
            }
            if let Some(url) = a.collector {
                let value = url.get_ref().trim();
                if !(value.starts_with("http://") || value.starts_with("https://"))
                    || value.chars().any(|c| c.is_control() || c.is_whitespace())
                {
                    return Err(located(
                        url.span().start,
                        "collector must be an http:// or https:// URL",
                    ));
                }
                attestation.collector = Some(value.to_string());
            }
            if let Some(ms) = a.collector_timeout_ms {
                attestation.collector_timeout_ms = ms.get();
            }
        }
        let mut kubernetes = KubernetesConfig::default();
        if let Some(root) = raw.kubernetes.and_then(|k| k.kubelet_root) {
            if !root.get_ref().is_absolute() {
                return Err(located(
                    root.span().start,
                    "kubelet_root must be an absolute path, e.g. \"/var/lib/kubelet\"",
                ));
            }
            kubernetes.kubelet_root = root.into_inner();
        }
        Ok(Config {
            registry,
            cache,
            tpm,
            attestation,
            allowed_configs: raw.allowed_configs.into_iter().map(resolve).collect(),
            kubernetes,
            policy: raw
                .policy
                .map(resolve)
                .unwrap_or_else(|| DEFAULT_POLICY.into()),
            state_dir,
            source,
        })
    }
}

/// Finds the configuration: `option` (the runtime option `ConfigPath`) when given, else `$VOUCH_CONFIG`
/// when set and non-empty, else [`DEFAULT_CONFIG`].
pub fn locate(option: Option<&Path>) -> ConfigSource {
    locate_with(option, std::env::var_os(CONFIG_ENV).map(PathBuf::from))
}

/// The configuration a container start runs under. The node configuration (`$VOUCH_CONFIG` in
/// containerd's environment, else [`DEFAULT_CONFIG`]) decides: a `ConfigPath` runtime option (which
/// any containerd client can set) is honoured only when it names the node configuration itself or
/// one the node configuration lists in `allowed_configs`; anything else is an error, never a fallback.
pub fn for_container(option: Option<&Path>) -> Result<Config> {
    for_container_with(option, std::env::var_os(CONFIG_ENV).map(PathBuf::from))
}

/// [`for_container`] with the node configuration at `node` (`None`: the default location).
pub fn for_container_with(option: Option<&Path>, node: Option<PathBuf>) -> Result<Config> {
    let node = locate_with(None, node).load()?;
    let Some(option) = option.filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(node);
    };
    if same_file(option, node.source.path()) {
        return Ok(node);
    }
    if node.allowed_configs.iter().any(|a| same_file(option, a)) {
        return ConfigSource::RuntimeOption(option.to_path_buf()).load();
    }
    Err(Error::ConfigNotAllowed {
        path: option.to_path_buf(),
        node: node.source.path().to_path_buf(),
    })
}

/// Whether two absolute paths name the same file: equal as written, or after resolving symlinks.
fn same_file(a: &Path, b: &Path) -> bool {
    if !a.is_absolute() || !b.is_absolute() {
        return false;
    }
    if a == b {
        return true;
    }
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
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

    fn parse(text: &str) -> Result<Config> {
        Config::parse(
            ConfigSource::RuntimeOption("/etc/vouch/config.toml".into()),
            text.as_bytes(),
        )
    }

    #[test]
    fn tpm_and_attestation_tables_parse_with_defaults() {
        let c = parse("state_dir = \"/run/v\"\n").unwrap();
        assert_eq!(c.tpm, TpmConfig::default());
        assert_eq!(c.tpm.tcti, "device:/dev/tpmrm0");
        assert_eq!(c.tpm.pcr, 23);
        assert_eq!(
            c.attestation.log,
            PathBuf::from("/run/v/attestations.jsonl")
        );
        assert_eq!(c.attestation.key, None);
        let c = parse(
            "[tpm]\nmode = \"required\"\ntcti = \"swtpm:host=127.0.0.1,port=2321\"\npcr = 16\n\
             [attestation]\nkey = \"node.key\"\nkey_password_file = \"/k/pw\"\nlog = \"/l/a.jsonl\"\n\
             collector = \"https://c.example/r\"\ncollector_timeout_ms = 500\n",
        )
        .unwrap();
        assert_eq!(
            c.tpm,
            TpmConfig {
                mode: TpmMode::Required,
                tcti: "swtpm:host=127.0.0.1,port=2321".into(),
                pcr: 16
            }
        );
        assert_eq!(c.attestation.key, Some("/etc/vouch/node.key".into()));
        assert_eq!(c.attestation.key_password_file, Some("/k/pw".into()));
        assert_eq!(c.attestation.log, PathBuf::from("/l/a.jsonl"));
        assert_eq!(
            c.attestation.collector.as_deref(),
            Some("https://c.example/r")
        );
        assert_eq!(c.attestation.collector_timeout_ms, 500);
    }

    #[test]
    fn the_deploy_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config.toml");
        let bytes = std::fs::read(&path).unwrap();
        let c = Config::parse(ConfigSource::RuntimeOption(path), &bytes).unwrap();
        assert_eq!(c.tpm.mode, TpmMode::Off);
        assert_eq!(
            c.attestation.log,
            PathBuf::from("/var/lib/vouch/attestations.jsonl")
        );
    }

    #[test]
    fn tpm_and_attestation_errors_name_the_line() {
        let e = parse("[tpm]\nmode = \"always\"\n").unwrap_err().to_string();
        assert!(
            e.contains("line 2") && e.contains("unknown variant `always`"),
            "{e}"
        );
        let e = parse("[tpm]\npcr = 24\n").unwrap_err().to_string();
        assert!(
            e.contains("line 2") && e.contains("between 0 and 23"),
            "{e}"
        );
        let e = parse("[tpm]\ntcti = \"\"\n").unwrap_err().to_string();
        assert!(e.contains("tcti must name a TPM"), "{e}");
        let e = parse("[attestation]\ncollector = \"ftp://x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("http:// or https://"),
            "{e}"
        );
        let e = parse("[attestation]\nkeyfile = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `keyfile`"), "{e}");
    }

    #[test]
    fn only_the_node_config_and_those_it_lists_may_be_named_by_a_container() {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("node.toml");
        let strict = dir.path().join("strict.toml");
        let lax = dir.path().join("lax.toml");
        std::fs::write(&strict, "policy = \"/etc/vouch/strict-policy.toml\"\n").unwrap();
        std::fs::write(
            &lax,
            "policy = \"/tmp/allow-all.toml\"\nallowed_configs = [\"/tmp\"]\n",
        )
        .unwrap();
        std::fs::write(
            &node,
            format!("allowed_configs = [\"{}\"]\n", strict.display()),
        )
        .unwrap();
        let env = || Some(node.clone());
        // No option, or the node config itself (also through a symlink): the node config.
        let c = for_container_with(None, env()).unwrap();
        assert_eq!(c.source.path(), node.as_path());
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&node, &link).unwrap();
        let c = for_container_with(Some(&link), env()).unwrap();
        assert_eq!(c.allowed_configs, vec![strict.clone()]);
        // A listed config is loaded.
        let c = for_container_with(Some(&strict), env()).unwrap();
        assert_eq!(c.policy, PathBuf::from("/etc/vouch/strict-policy.toml"));
        // Anything else is refused, naming both files; a relative path is never listed.
        for named in [
            lax.clone(),
            PathBuf::from("strict.toml"),
            dir.path().join("absent.toml"),
        ] {
            let e = for_container_with(Some(&named), env())
                .unwrap_err()
                .to_string();
            assert!(e.contains("is neither the node configuration"), "{e}");
            assert!(e.contains(&node.display().to_string()), "{e}");
        }
        // A broken node config is an error, not a fallback to the named one.
        std::fs::write(&node, "allowed_configs = 3\n").unwrap();
        assert!(for_container_with(Some(&strict), env()).is_err());
    }

    #[test]
    fn kubelet_root_defaults_and_must_be_absolute() {
        let c = parse("state_dir = \"/run/v\"\n").unwrap();
        assert_eq!(c.kubernetes.kubelet_root, PathBuf::from("/var/lib/kubelet"));
        let c = parse("[kubernetes]\nkubelet_root = \"/data/kubelet\"\n").unwrap();
        assert_eq!(c.kubernetes.kubelet_root, PathBuf::from("/data/kubelet"));
        let e = parse("[kubernetes]\nkubelet_root = \"kubelet\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("absolute"), "{e}");
    }

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
            "/etc/vouch/config.toml: line 3, column 1: unknown field `polcy`, expected one of `policy`, `state_dir`, `registry`, `cache`, `tpm`, `attestation`, `allowed_configs`, `kubernetes`"
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

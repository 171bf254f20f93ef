//! Every parser of input from outside (tenants, containerd clients, registries) under hostile
//! input: arbitrary bytes, and real documents with mutated fields (wrong types, huge numbers, deep
//! nesting, long strings, many entries). Each call must return, Ok or Err, without panicking; an
//! error is one line; memory stays within a bound of the input's size; and input over a documented
//! limit is refused.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use vouch_verifier::attestation::AttestationReport;
use vouch_verifier::attestlog::{self, DecisionKind, LogSettings};
use vouch_verifier::baseline::{self, BaselineError, BlobSource};
use vouch_verifier::config::{Config, ConfigSource};
use vouch_verifier::host;
use vouch_verifier::keys::PublicKey;
use vouch_verifier::material::{
    AttachedSbom, AttestationMaterial, DsseEnvelope, Origin, SignatureMaterial, SigstoreBundle,
    SimpleSigning, UnsignedStatement,
};
use vouch_verifier::policy;
use vouch_verifier::registry::ManifestDocument;
use vouch_verifier::sbom::{self, Limits, SbomError};
use vouch_verifier::signature::{
    self, Authority, IdentityPolicy, Image, RuleAuthority, TrustedRoot, VerifyOptions,
};
use vouch_verifier::sigstore::{self as bundles, BlobKey, BlobPolicy, BundleAuthority, TrustRoot};

// ---------------------------------------------------------------------------------------------
// Memory accounting: bytes allocated by this thread, so parallel tests do not see each other.

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| {
            if now > peak.get() {
                peak.set(now);
            }
        });
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            account(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            account(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        account(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            // Old and new block may both be live while the data moves.
            account(new_size as isize);
            account(-(layout.size() as isize));
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result and the most memory this thread held at once meanwhile, above
/// what it held before.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let out = f();
    let peak = PEAK.with(Cell::get) - start;
    (out, usize::try_from(peak).unwrap_or(0))
}

/// A parse of `input` bytes may hold at most `factor` times them, plus `fixed` (buffers).
fn assert_memory(peak: usize, input: usize, factor: usize, fixed: usize, what: &str) {
    let bound = input * factor + fixed;
    assert!(
        peak <= bound,
        "{what}: held {peak} bytes at once for {input} bytes of input (bound {bound})"
    );
}

// ---------------------------------------------------------------------------------------------
// Common checks and generators.

/// A clear one-line error: not empty, no line break.
fn one_line(what: &str, message: &str) -> Result<(), TestCaseError> {
    prop_assert!(!message.trim().is_empty(), "{what}: empty error");
    prop_assert!(
        !message.contains('\n') && !message.contains('\r'),
        "{what}: error is not one line: {message:?}"
    );
    Ok(())
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

fn fixture(path: &str) -> Vec<u8> {
    let p = fixtures().join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn fixture_json(path: &str) -> Value {
    serde_json::from_slice(&fixture(path)).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn origin() -> Origin {
    Origin {
        manifest: "registry.test/app@sha256:0000".into(),
        layer: Some(0),
    }
}

/// Strings that break naive parsers: empty, long, control characters and line breaks, non-ASCII,
/// JSON and TOML syntax.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        ".{0,40}",
        "[\\x00-\\x1f\"\\\\{}\\[\\]=.,:#\n\r]{1,20}",
        (1usize..200_000).prop_map(|n| "x".repeat(n)),
        Just("line one\nline two".to_string()),
        Just("\u{202e}\u{feff}\u{0}é".to_string()),
    ]
}

/// A JSON leaf of any type, with extreme numbers.
fn hostile_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(f64::MAX)),
        Just(json!(-0.0)),
        Just(json!(1e-300)),
        hostile_string().prop_map(Value::String),
    ]
}

/// A JSON value of any shape, nested a few levels.
fn hostile_json() -> impl Strategy<Value = Value> {
    hostile_leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(hostile_string(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One change to a document, at a place chosen by the path.
#[derive(Debug, Clone)]
enum Mutation {
    /// The node becomes this value (often of the wrong type).
    Replace(Value),
    /// The node is removed from its parent.
    Remove,
    /// The node's array (or a new one) holds this many copies of its first element.
    Repeat(usize),
    /// The node is wrapped in this many arrays.
    Nest(usize),
    /// An object gets this many more keys.
    Widen(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => hostile_json().prop_map(Mutation::Replace),
        1 => Just(Mutation::Remove),
        1 => (1usize..5000).prop_map(Mutation::Repeat),
        1 => (1usize..200).prop_map(Mutation::Nest),
        1 => (1usize..5000).prop_map(Mutation::Widen),
    ]
}

/// Applies `m` at the node `path` leads to (each step picks a child by index, modulo their number;
/// the walk stops early at a leaf).
fn mutate(doc: &mut Value, path: &[usize], m: &Mutation) {
    let mut node = doc;
    let mut steps = path.iter();
    let mut parent_key: Option<(usize, bool)> = None;
    // Walk to the parent of the target so that Remove can work.
    while let Some(&step) = steps.next() {
        let len = match &*node {
            Value::Array(a) => a.len(),
            Value::Object(o) => o.len(),
            _ => 0,
        };
        if len == 0 {
            break;
        }
        let i = step % len;
        let child_is_container = match &*node {
            Value::Array(a) => a[i].is_array() || a[i].is_object(),
            Value::Object(o) => o
                .values()
                .nth(i)
                .is_some_and(|v| v.is_array() || v.is_object()),
            _ => false,
        };
        if !child_is_container || steps.len() == 0 {
            parent_key = Some((i, node.is_array()));
            break;
        }
        node = match node {
            Value::Array(a) => &mut a[i],
            Value::Object(o) => o.values_mut().nth(i).unwrap(),
            _ => unreachable!(),
        };
    }
    let target: &mut Value = match parent_key {
        Some((i, true)) => {
            if matches!(m, Mutation::Remove) {
                node.as_array_mut().unwrap().remove(i);
                return;
            }
            &mut node.as_array_mut().unwrap()[i]
        }
        Some((i, false)) => {
            let key = node.as_object().unwrap().keys().nth(i).unwrap().clone();
            if matches!(m, Mutation::Remove) {
                node.as_object_mut().unwrap().remove(&key);
                return;
            }
            node.as_object_mut().unwrap().get_mut(&key).unwrap()
        }
        None => node,
    };
    match m {
        Mutation::Replace(v) => *target = v.clone(),
        Mutation::Remove => *target = Value::Null,
        Mutation::Repeat(n) => {
            let first = match &*target {
                Value::Array(a) => a.first().cloned().unwrap_or(Value::Null),
                other => other.clone(),
            };
            // Many entries, not a huge document: at most about a megabyte of copies.
            let size = serde_json::to_vec(&first).map_or(1, |b| b.len().max(1));
            *target = Value::Array(vec![first; (*n).min((1 << 20) / size).max(1)]);
        }
        Mutation::Nest(depth) => {
            let mut v = target.take();
            for _ in 0..*depth {
                v = Value::Array(vec![v]);
            }
            *target = v;
        }
        Mutation::Widen(n) => {
            if let Value::Object(o) = target {
                for k in 0..*n {
                    o.insert(format!("k{k}"), json!(k));
                }
            } else {
                *target = Value::Object((0..*n).map(|k| (format!("k{k}"), json!(k))).collect());
            }
        }
    }
}

/// The path (as [`mutate`] walks it) to every node of `doc`, containers included.
fn node_paths(doc: &Value) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new()];
    let children: Vec<&Value> = match doc {
        Value::Array(a) => a.iter().collect(),
        Value::Object(o) => o.values().collect(),
        _ => Vec::new(),
    };
    for (i, child) in children.into_iter().enumerate() {
        for mut sub in node_paths(child) {
            sub.insert(0, i);
            out.push(sub);
        }
    }
    out
}

/// Values every field of a document gets in turn: a line break, the wrong types, extremes.
fn sweep_values() -> Vec<Value> {
    vec![
        json!("line one\nline two"),
        json!(u64::MAX),
        json!(-1),
        json!(1.5),
        json!(null),
        json!([]),
        json!({"k": "line one\nline two"}),
        json!("x".repeat(100_000)),
    ]
}

/// Runs `check` on `seed` with each node in turn replaced by each of [`sweep_values`].
fn sweep(seed: &Value, mut check: impl FnMut(&Value) -> Result<(), TestCaseError>) {
    for path in node_paths(seed) {
        for v in sweep_values() {
            let mut doc = seed.clone();
            mutate(&mut doc, &path, &Mutation::Replace(v.clone()));
            if let Err(e) = check(&doc) {
                panic!("{e}\nwith {v} at {path:?} of the seed");
            }
        }
    }
}

/// Up to `max` arbitrary bytes.
fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn path() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(any::<usize>(), 0..8)
}

/// Text nested `depth` levels deep in `open`/`close` around `inner`.
fn nested(open: &str, close: &str, inner: &str, depth: usize) -> String {
    let mut s = String::with_capacity((open.len() + close.len()) * depth + inner.len());
    for _ in 0..depth {
        s.push_str(open);
    }
    s.push_str(inner);
    for _ in 0..depth {
        s.push_str(close);
    }
    s
}

/// Bytes that are well-formed at the start and then not: the fixture cut at `cut`, then `tail`.
fn spliced(seed: &[u8], cut: usize, tail: &[u8]) -> Vec<u8> {
    let mut out = seed[..cut % (seed.len() + 1)].to_vec();
    out.extend_from_slice(tail);
    out
}

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        // Shrinking a slow parser's input for minutes helps nobody: the failing input is shown.
        max_shrink_iters: 64,
        // Failures are reported with their input; no regression files are written beside the tests.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// TOML: the policy and the node configuration.

const POLICY_SEED: &str = include_str!("../../deploy/policy.toml");
const CONFIG_SEED: &str = include_str!("../../deploy/config.toml");

/// A policy using every section: a verify rule with keyed and keyless authorities, SBOM, rootfs
/// and host requirements.
fn full_policy_seed() -> String {
    format!(
        "{POLICY_SEED}\n{}",
        r#"
[[rule]]
name = "everything"
images = ["registry.example.com/all/**"]
namespaces = ["prod-*", "default"]
action = "verify"
mode = "audit"
threshold = 2
signature_repository = "registry.example.com/sigs"
require_identity_match = false
[[rule.authority]]
name = "k"
key = "/etc/vouch/keys/k.pub"
[[rule.authority]]
name = "kl"
[rule.authority.keyless]
trusted_root = "/etc/vouch/trusted_root.json"
issuer = "https://issuer.example"
subject = "ci@example.com"
[rule.sbom]
require = true
formats = ["spdx", "cyclonedx"]
min_fields = ["supplier", "name", "version", "purl", "relationships", "author", "timestamp"]
deny_licenses = ["GPL-3.0-only", "AGPL-*"]
allow_licenses = []
deny_packages = ["pkg:deb/debian/openssl@<3.0.7", "pkg:npm/event-stream"]
deny_severity = "critical"
deny_cves = ["CVE-2021-44228"]
ignore = [{ id = "CVE-2023-1234", until = "2027-01-01" }]
max_age_days = 90
allow_unsigned = false
[rule.rootfs]
baseline = "image"
exempt_paths = ["/var/cache/**"]
[rule.host]
allow_privileged = false
require_seccomp = true
allowed_modules = ["overlay", "br_netfilter", "nf_*"]
required_lsm = ["apparmor"]
runc_sha256 = ["0000000000000000000000000000000000000000000000000000000000000000"]
"#
    )
}

/// A TOML value of any type, with extreme numbers and strings.
fn hostile_toml() -> impl Strategy<Value = toml::Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(toml::Value::Integer),
        Just(toml::Value::Integer(i64::MIN)),
        Just(toml::Value::Float(f64::NAN)),
        Just(toml::Value::Float(f64::INFINITY)),
        any::<bool>().prop_map(toml::Value::Boolean),
        hostile_string().prop_map(toml::Value::String),
        Just(toml::Value::Datetime(
            "1979-05-27T07:32:00Z".parse().unwrap()
        )),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(toml::Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| toml::Value::Table(m.into_iter().collect())),
        ]
    })
}

/// Replaces the value at `path` (by index, modulo the number of children) with `v`.
fn mutate_toml(doc: &mut toml::Value, path: &[usize], v: toml::Value) {
    let mut node = doc;
    for &step in path {
        let len = match &*node {
            toml::Value::Array(a) => a.len(),
            toml::Value::Table(t) => t.len(),
            _ => 0,
        };
        if len == 0 {
            break;
        }
        node = match node {
            toml::Value::Array(a) => &mut a[step % len],
            toml::Value::Table(t) => t.iter_mut().nth(step % len).unwrap().1,
            _ => unreachable!(),
        };
    }
    *node = v;
}

/// TOML texts no generator above produces: deep nesting of each kind, many keys, long keys.
fn toml_extremes() -> Vec<String> {
    vec![
        format!("version = {}", nested("[", "]", "1", 10_000)),
        format!("version = {}", nested("{a=", "}", "1", 10_000)),
        format!("{} = 1", vec!["a"; 50_000].join(".")),
        format!("[{}]\nx = 1", vec!["a"; 50_000].join(".")),
        (0..50_000).map(|i| format!("k{i} = {i}\n")).collect(),
        format!("{} = 1", "k".repeat(1 << 20)),
        format!("version = \"{}\"", "\\u0041".repeat(100_000)),
        format!("version = {}", "9".repeat(10_000)),
        "version = 1e999999999".into(),
        "[[rule]]\n".repeat(20_000),
        "\u{feff}version = 1".into(),
    ]
}

/// The `toml` crate builds a table for each component of a dotted key: about 140 bytes of memory
/// for each 2 bytes of `a.a.a...`. Linear, and the files are capped in size.
const TOML_FACTOR: usize = 256;

fn check_policy(bytes: &[u8]) -> Result<(), TestCaseError> {
    let (result, peak) = peak_of(|| policy::parse(Path::new("/etc/vouch/policy.toml"), bytes));
    if let Err(e) = result {
        one_line("policy", &e.to_string())?;
    }
    assert_memory(peak, bytes.len(), TOML_FACTOR, 1 << 20, "policy");
    Ok(())
}

fn check_config(bytes: &[u8]) -> Result<(), TestCaseError> {
    let source = ConfigSource::RuntimeOption(PathBuf::from("/etc/vouch/config.toml"));
    let (result, peak) = peak_of(|| Config::parse(source, bytes));
    if let Err(e) = result {
        one_line("config", &e.to_string())?;
    }
    assert_memory(peak, bytes.len(), TOML_FACTOR, 1 << 20, "config");
    Ok(())
}

#[test]
fn toml_seeds_parse() {
    policy::parse(Path::new("/p.toml"), POLICY_SEED.as_bytes()).unwrap();
    let full = full_policy_seed();
    let loaded = policy::parse(Path::new("/p.toml"), full.as_bytes()).unwrap();
    assert!(loaded
        .policy
        .rules
        .iter()
        .any(|r| r.sbom.is_some() && r.host.is_some()));
    Config::parse(
        ConfigSource::Default("/etc/vouch/config.toml".into()),
        CONFIG_SEED.as_bytes(),
    )
    .unwrap();
}

#[test]
fn toml_extremes_return_one_line_errors() {
    for text in toml_extremes() {
        check_policy(text.as_bytes()).unwrap();
        check_config(text.as_bytes()).unwrap();
    }
}

/// containerd clients name the configuration file (the runtime option `ConfigPath`): a device
/// that never ends is read only up to the cap.
#[test]
fn files_that_never_end_are_refused_at_the_cap() {
    let (result, peak) = peak_of(|| ConfigSource::RuntimeOption("/dev/zero".into()).load());
    let e = result.unwrap_err().to_string();
    one_line("config", &e).unwrap();
    assert!(e.contains("larger than"), "{e}");
    assert_memory(peak, 0, 0, (3 << 20) + (64 << 10), "config from /dev/zero");
    let (result, peak) = peak_of(|| policy::load(Path::new("/dev/zero")));
    assert!(result.unwrap_err().to_string().contains("larger than"));
    assert_memory(peak, 0, 0, (3 << 20) + (64 << 10), "policy from /dev/zero");
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn policy_arbitrary_bytes(bytes in bytes(4096)) {
        check_policy(&bytes)?;
    }

    #[test]
    fn policy_spliced_seed(cut in any::<usize>(), tail in bytes(64)) {
        check_policy(&spliced(full_policy_seed().as_bytes(), cut, &tail))?;
    }

    #[test]
    fn policy_mutated_fields(path in path(), value in hostile_toml()) {
        let mut doc: toml::Value = toml::from_str(&full_policy_seed()).unwrap();
        mutate_toml(&mut doc, &path, value);
        if let Ok(text) = toml::to_string(&doc) {
            check_policy(text.as_bytes())?;
        }
    }

    #[test]
    fn config_arbitrary_bytes(bytes in bytes(4096)) {
        check_config(&bytes)?;
    }

    #[test]
    fn config_mutated_fields(path in path(), value in hostile_toml()) {
        let mut doc: toml::Value = toml::from_str(CONFIG_SEED).unwrap();
        mutate_toml(&mut doc, &path, value);
        if let Ok(text) = toml::to_string(&doc) {
            check_config(text.as_bytes())?;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The OCI runtime spec's security settings.

/// A spec as containerd's CRI plugin writes it, with the settings `spec_security` reads.
fn spec_seed() -> Value {
    json!({
        "ociVersion": "1.1.0",
        "process": {
            "user": {"uid": 0, "gid": 0},
            "args": ["/pause"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_CHOWN", "CAP_DAC_OVERRIDE"],
                "permitted": ["CAP_CHOWN", "CAP_DAC_OVERRIDE"]
            },
            "noNewPrivileges": true,
            "apparmorProfile": "cri-containerd.apparmor.d",
            "oomScoreAdj": -998
        },
        "root": {"path": "rootfs", "readonly": true},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid"]},
            {"destination": "/etc/hosts", "type": "bind", "source": "/var/lib/x/hosts",
             "options": ["rbind", "ro"]}
        ],
        "annotations": {"io.kubernetes.cri.container-type": "sandbox"},
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                           {"type": "network", "path": "/var/run/netns/cni-1"}],
            "maskedPaths": ["/proc/acpi", "/proc/kcore"],
            "readonlyPaths": ["/proc/bus"],
            "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                        "syscalls": [{"names": ["accept"], "action": "SCMP_ACT_ALLOW"}]}
        }
    })
}

fn check_spec(spec: &Value) -> Result<(), TestCaseError> {
    let size = serde_json::to_vec(spec).map_or(0, |b| b.len());
    let (security, peak) = peak_of(|| host::spec_security(spec));
    assert_memory(peak, size, 16, 64 << 10, "spec_security");
    let requirement = policy::HostRequirement {
        allow_privileged: false,
        require_seccomp: true,
        allowed_modules: None,
        required_lsm: Vec::new(),
        runc_sha256: Vec::new(),
        pod_security: Some(vouch_verifier::spec::pod_security::Level::Restricted),
        allow_exec: true,
        allowed_hooks: Vec::new(),
        allowed_devices: Vec::new(),
    };
    for reason in host::check(&requirement, &host::HostState::default(), Some(&security)) {
        one_line("host check", &reason)?;
    }
    let pod = vouch_verifier::spec::pod_security::PodContext {
        kubelet_root: std::path::Path::new("/var/lib/kubelet"),
        pod_uid: Some("uid"),
        sandbox_id: Some("sandbox"),
    };
    let (violations, peak) = peak_of(|| {
        vouch_verifier::spec::pod_security::check(
            vouch_verifier::spec::pod_security::Level::Restricted,
            spec,
            &pod,
        )
    });
    assert_memory(peak, size, 16, 64 << 10, "pod_security::check");
    for reason in violations {
        one_line("pod security", &reason)?;
    }
    // The text the shim hands the gate: parsed unambiguously or refused in one line.
    let text = serde_json::to_string(spec).unwrap_or_default();
    if let Err(e) = vouch_verifier::identity::spec::parse_unambiguous(&text) {
        one_line("spec text", &e)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn spec_security_any_json(spec in hostile_json()) {
        check_spec(&spec)?;
    }

    #[test]
    fn spec_security_mutated_fields(path in path(), m in mutation()) {
        let mut spec = spec_seed();
        mutate(&mut spec, &path, &m);
        check_spec(&spec)?;
    }
}

// ---------------------------------------------------------------------------------------------
// DSSE envelopes and in-toto statements, cosign simple signing, Sigstore bundles.

const IMAGE_DIGEST: &str =
    "sha256:4edbd2beb5f78b1014028f4fbb99f3237d9561100b6881aabbf5acce2c4f9454";

fn image() -> Image<'static> {
    Image {
        digest: IMAGE_DIGEST,
        repository: "registry.test/app",
    }
}

/// A key of our own, to sign mutated statements so that they reach the statement parser.
struct TestKey {
    signing: p256::ecdsa::SigningKey,
    public: PublicKey,
}

fn test_key() -> TestKey {
    use p256::pkcs8::EncodePublicKey;
    let signing = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    let pem = signing
        .verifying_key()
        .to_public_key_pem(p256::pkcs8::LineEnding::LF)
        .unwrap();
    TestKey {
        signing,
        public: PublicKey::from_pem(&pem).unwrap(),
    }
}

impl TestKey {
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer;
        let sig: p256::ecdsa::Signature = self.signing.sign(message);
        sig.to_der().as_bytes().to_vec()
    }

    /// A DSSE envelope over `payload`, signed.
    fn envelope(&self, payload: &[u8]) -> Vec<u8> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let message = signature::dsse_pae(signature::IN_TOTO_PAYLOAD_TYPE, payload);
        serde_json::to_vec(&json!({
            "payloadType": signature::IN_TOTO_PAYLOAD_TYPE,
            "payload": b64.encode(payload),
            "signatures": [{"keyid": "", "sig": b64.encode(self.sign(&message))}],
        }))
        .unwrap()
    }
}

fn dsse(envelope: Vec<u8>) -> AttestationMaterial {
    AttestationMaterial::Dsse(DsseEnvelope {
        envelope,
        predicate_type: None,
        certificate_pem: None,
        chain_pem: None,
        rekor_bundle_json: None,
        origin: origin(),
    })
}

fn statement_seed() -> Value {
    json!({
        "_type": signature::STATEMENT_V1,
        "subject": [{"name": "registry.test/app", "digest": {"sha256": &IMAGE_DIGEST[7..]}}],
        "predicateType": sbom::PREDICATE_CYCLONEDX,
        "predicate": fixture_json(SBOM_SEEDS[0]),
    })
}

/// Verifies `material` with `key` and checks the report: every rejection one line, every accepted
/// SBOM predicate parses or fails with one line, memory bounded by the material's size.
fn check_attestations(
    material: Vec<AttestationMaterial>,
    key: &PublicKey,
) -> Result<AttestationReport, TestCaseError> {
    let size: usize = material.iter().map(AttestationMaterial::len).sum();
    let trust = TrustRoot::key_only().unwrap();
    let policy = BlobPolicy::Key {
        key: BlobKey::from_pem(key.to_pem().as_bytes()).unwrap(),
        require_tlog: false,
    };
    let authorities = [RuleAuthority {
        cosign: Authority::Key {
            name: "test",
            key,
            rekor: None,
        },
        bundles: BundleAuthority {
            name: "test",
            trust: &trust,
            policy: &policy,
        },
    }];
    let (report, peak) = peak_of(|| {
        signature::verify_attestations(
            &material,
            &image(),
            &[],
            &authorities,
            &VerifyOptions::default(),
            SystemTime::now(),
        )
    });
    assert_memory(peak, size, 48, 1 << 20, "attestations");
    for r in &report.rejected {
        one_line("attestation", r)?;
    }
    for a in &report.attestations {
        if let Err(e) = sbom::parse_predicate(&a.predicate, &Limits::default()) {
            one_line("predicate", &e.to_string())?;
        }
    }
    Ok(report)
}

#[test]
fn signed_statement_seed_is_accepted() {
    let key = test_key();
    let payload = serde_json::to_vec(&statement_seed()).unwrap();
    let report = check_attestations(vec![dsse(key.envelope(&payload))], &key.public).unwrap();
    assert_eq!(report.rejected, Vec::<String>::new());
    assert_eq!(report.attestations.len(), 1);
}

#[test]
fn fixture_envelopes_verify_or_fail_on_one_line() {
    let grype_key = PublicKey::from_pem(
        &String::from_utf8(fixture("attestations/grype-alpine/cosign.pub")).unwrap(),
    )
    .unwrap();
    let good = fixture("attestations/grype-alpine/alpine.cdx.att.json");
    let report = check_attestations(vec![dsse(good)], &grype_key).unwrap();
    assert_eq!(report.attestations.len(), 1, "{:?}", report.rejected);
    // grype's tampered copy: refused for its signature, before its broken JSON payload is read.
    let tampered = fixture("malformed/grype_alpine-tampered.cdx.att.json");
    let report = check_attestations(vec![dsse(tampered)], &grype_key).unwrap();
    assert_eq!(report.rejected.len(), 1);
    assert!(
        report.rejected[0].contains("does not verify"),
        "{}",
        report.rejected[0]
    );
    for f in [
        "attestations/cosign_vuln-predicate.dsse.json",
        "attestations/tekton-chains_slsa-v0.2-provenance.dsse.json",
        "attestations/trivy_centos-7-cyclonedx.intoto.jsonl",
    ] {
        let report = check_attestations(vec![dsse(fixture(f))], &grype_key).unwrap();
        assert_eq!(report.rejected.len(), 1, "{f}");
    }
}

#[test]
fn oversized_envelope_is_refused_before_it_is_parsed() {
    let key = test_key();
    let big = vec![b' '; signature::MAX_ENVELOPE_LEN + 1];
    let report = check_attestations(vec![dsse(big)], &key.public).unwrap();
    assert!(
        report.rejected[0].contains("allowed"),
        "{}",
        report.rejected[0]
    );
    let deep = nested("[", "]", "", 100_000).into_bytes();
    let report = check_attestations(vec![dsse(deep)], &key.public).unwrap();
    assert!(
        report.rejected[0].contains("nested deeper"),
        "{}",
        report.rejected[0]
    );
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn dsse_arbitrary_envelope_bytes(bytes in bytes(2048)) {
        let key = test_key();
        check_attestations(vec![dsse(bytes)], &key.public)?;
    }

    #[test]
    fn dsse_mutated_envelope(path in path(), m in mutation()) {
        let key = test_key();
        let mut env = fixture_json("attestations/grype-alpine/alpine.cdx.att.json");
        mutate(&mut env, &path, &m);
        check_attestations(vec![dsse(serde_json::to_vec(&env).unwrap())], &key.public)?;
    }

    /// A signed statement whose fields are hostile reaches the statement and SBOM parsers.
    #[test]
    fn dsse_signed_mutated_statement(path in path(), m in mutation()) {
        let key = test_key();
        let mut statement = statement_seed();
        mutate(&mut statement, &path, &m);
        let payload = serde_json::to_vec(&statement).unwrap();
        check_attestations(vec![dsse(key.envelope(&payload))], &key.public)?;
    }

    #[test]
    fn dsse_signed_arbitrary_payload(payload in bytes(2048)) {
        let key = test_key();
        check_attestations(vec![dsse(key.envelope(&payload))], &key.public)?;
    }

    /// Changing signed bytes is caught by the signature, before the changed bytes are parsed.
    #[test]
    fn dsse_tampered_payload_fails_its_signature(at in any::<usize>(), byte in any::<u8>()) {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let key = test_key();
        let mut payload = serde_json::to_vec(&statement_seed()).unwrap();
        let i = at % payload.len();
        prop_assume!(payload[i] != byte);
        let signed = key.envelope(&payload);
        payload[i] = byte;
        let mut env: Value = serde_json::from_slice(&signed).unwrap();
        env["payload"] = json!(b64.encode(&payload));
        let envelope = serde_json::to_vec(&env).unwrap();
        let report = check_attestations(vec![dsse(envelope)], &key.public)?;
        prop_assert_eq!(report.rejected.len(), 1);
        prop_assert!(report.rejected[0].contains("does not verify"), "{}", report.rejected[0]);
    }

    #[test]
    fn unsigned_statement_mutated(path in path(), m in mutation()) {
        let key = test_key();
        let mut statement = statement_seed();
        mutate(&mut statement, &path, &m);
        let material = AttestationMaterial::Statement(UnsignedStatement {
            json: serde_json::to_vec(&statement).unwrap(),
            predicate_type: sbom::PREDICATE_CYCLONEDX.into(),
            origin: origin(),
        });
        check_attestations(vec![material], &key.public)?;
    }

    #[test]
    fn attached_sbom_arbitrary_bytes(document in bytes(2048)) {
        let key = test_key();
        let material = AttestationMaterial::Sbom(AttachedSbom {
            document,
            media_type: "application/vnd.cyclonedx+json".into(),
            predicate_type: sbom::PREDICATE_CYCLONEDX.into(),
            subject_digest: IMAGE_DIGEST.into(),
            origin: origin(),
        });
        check_attestations(vec![material], &key.public)?;
    }
}

/// cosign simple signing and its Rekor bundle annotation (with the signature module), or a
/// Sigstore bundle (with the sigstore module), as a container start verifies them.
fn check_signature(
    material: &SignatureMaterial,
    authority: &Authority<'_>,
    bundle_authority: Option<&BundleAuthority<'_>>,
) -> Result<(), TestCaseError> {
    let options = VerifyOptions {
        require_identity_match: false,
        ..VerifyOptions::default()
    };
    let (result, peak) = peak_of(|| match (material, bundle_authority) {
        (SignatureMaterial::Simple(s), _) => {
            signature::verify_simple_signing(s, &image(), authority, &options, SystemTime::now())
        }
        (SignatureMaterial::Bundle(b), Some(bundle_authority)) => bundles::verify_image_signature(
            b,
            IMAGE_DIGEST,
            &options.bundle_predicate_types,
            bundle_authority,
        ),
        (SignatureMaterial::Bundle(_), None) => panic!("a bundle needs a bundle authority"),
    });
    let size = match material {
        SignatureMaterial::Simple(s) => {
            s.payload.len() + s.rekor_bundle_json.as_ref().map_or(0, String::len)
        }
        SignatureMaterial::Bundle(b) => b.json.len(),
    };
    assert_memory(peak, size, 48, 1 << 20, "signature");
    if let Err(e) = result {
        one_line("signature", &e.to_string())?;
    }
    Ok(())
}

/// The public-good trusted root (with the timestamp authority the fixture bundle's timestamp is
/// from) as a bundle authority for any identity.
struct AnyIdentity {
    trust: TrustRoot,
    policy: BlobPolicy,
}

impl AnyIdentity {
    fn new() -> AnyIdentity {
        let root = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/sigstore-public-good/trusted_root.json"),
        )
        .unwrap();
        AnyIdentity {
            trust: TrustRoot::from_json(&root).unwrap(),
            policy: BlobPolicy::keyless(None, Some(".*"), None, Some(".*")).unwrap(),
        }
    }

    fn authority(&self) -> BundleAuthority<'_> {
        BundleAuthority {
            name: "ci",
            trust: &self.trust,
            policy: &self.policy,
        }
    }
}

fn simple_signing(
    payload: Vec<u8>,
    signature_b64: String,
    rekor: Option<String>,
) -> SignatureMaterial {
    SignatureMaterial::Simple(SimpleSigning {
        payload,
        signature_b64,
        certificate_pem: None,
        chain_pem: None,
        rekor_bundle_json: rekor,
        origin: origin(),
    })
}

/// The payload of the containers/image fixture signature and its signature annotation.
fn simple_signing_seed() -> (Vec<u8>, String) {
    use base64::Engine;
    let bytes = fixture("signatures/containers-image/dir-img-cosign-valid/signature-1");
    let json: Value =
        serde_json::from_slice(bytes.strip_prefix(b"\x00sigstore-json\n").unwrap()).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(json["payload"].as_str().unwrap())
        .unwrap();
    (
        payload,
        json["annotations"]["dev.cosignproject.cosign/signature"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

fn trusted_root() -> TrustedRoot {
    TrustedRoot::from_json(&fixture("signatures/sigstore-rs/trusted_root.json")).unwrap()
}

proptest! {
    #![proptest_config(cases(128))]

    /// A signed payload with hostile fields reaches the payload parser.
    #[test]
    fn simple_signing_signed_mutated_payload(path in path(), m in mutation()) {
        use base64::Engine;
        let key = test_key();
        let (payload, _) = simple_signing_seed();
        let mut payload: Value = serde_json::from_slice(&payload).unwrap();
        mutate(&mut payload, &path, &m);
        let bytes = serde_json::to_vec(&payload).unwrap();
        let sig = base64::engine::general_purpose::STANDARD.encode(key.sign(&bytes));
        let authority = Authority::Key { name: "test", key: &key.public, rekor: None };
        check_signature(&simple_signing(bytes, sig, None), &authority, None)?;
    }

    #[test]
    fn simple_signing_arbitrary_annotations(
        payload in bytes(1024),
        sig in hostile_string(),
        rekor in prop::option::of(hostile_json().prop_map(|v| v.to_string())),
    ) {
        let key = test_key();
        let root = trusted_root();
        let authority = Authority::Key { name: "test", key: &key.public, rekor: Some(&root) };
        check_signature(&simple_signing(payload, sig, rekor), &authority, None)?;
    }

    /// The Rekor bundle annotation of a correctly signed payload, mutated.
    #[test]
    fn simple_signing_mutated_rekor_bundle(path in path(), m in mutation()) {
        use base64::Engine;
        let key = test_key();
        let root = trusted_root();
        let (bytes, _) = simple_signing_seed();
        let sig = base64::engine::general_purpose::STANDARD.encode(key.sign(&bytes));
        let seed =
            fixture("signatures/containers-image/dir-img-cosign-key-rekor-valid/signature-1");
        let outer: Value =
            serde_json::from_slice(seed.strip_prefix(b"\x00sigstore-json\n").unwrap()).unwrap();
        let annotation = outer["annotations"]["dev.sigstore.cosign/bundle"].as_str().unwrap();
        let mut bundle: Value = serde_json::from_str(annotation).unwrap();
        mutate(&mut bundle, &path, &m);
        let authority = Authority::Key { name: "test", key: &key.public, rekor: Some(&root) };
        check_signature(&simple_signing(bytes, sig, Some(bundle.to_string())), &authority, None)?;
    }

    #[test]
    fn sigstore_bundle_mutated(path in path(), m in mutation()) {
        let root = trusted_root();
        let identity = IdentityPolicy::new(None, Some(".*"), None, Some(".*")).unwrap();
        let authority = Authority::Keyless { name: "ci", trusted_root: &root, identity: &identity };
        let any = AnyIdentity::new();
        let mut bundle = fixture_json("signatures/sigstore-rs/bundle_v03.json");
        mutate(&mut bundle, &path, &m);
        let material = SignatureMaterial::Bundle(SigstoreBundle {
            json: serde_json::to_vec(&bundle).unwrap(),
            media_type: "application/vnd.dev.sigstore.bundle.v0.3+json".into(),
            origin: origin(),
        });
        check_signature(&material, &authority, Some(&any.authority()))?;
    }

    #[test]
    fn sigstore_bundle_arbitrary_bytes(json in bytes(2048)) {
        let root = trusted_root();
        let identity = IdentityPolicy::new(None, Some(".*"), None, Some(".*")).unwrap();
        let authority = Authority::Keyless { name: "ci", trusted_root: &root, identity: &identity };
        let any = AnyIdentity::new();
        let material = SignatureMaterial::Bundle(SigstoreBundle {
            json,
            media_type: "application/vnd.dev.sigstore.bundle.v0.3+json".into(),
            origin: origin(),
        });
        check_signature(&material, &authority, Some(&any.authority()))?;
    }
}

#[test]
fn signature_seeds_verify() {
    let key = PublicKey::from_pem(
        &String::from_utf8(fixture("signatures/containers-image/cosign.pub")).unwrap(),
    )
    .unwrap();
    let (payload, sig) = simple_signing_seed();
    let authority = Authority::Key {
        name: "fixture",
        key: &key,
        rekor: None,
    };
    let fixture_image = Image {
        digest: "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00",
        repository: "192.168.64.2:5000/cosign-signed-single-sample",
    };
    let SignatureMaterial::Simple(material) = simple_signing(payload.clone(), sig.clone(), None)
    else {
        unreachable!()
    };
    signature::verify_simple_signing(
        &material,
        &fixture_image,
        &authority,
        &VerifyOptions::default(),
        SystemTime::now(),
    )
    .unwrap();
    // One byte of the payload changed: refused for its signature, before the payload is read.
    let mut changed = payload;
    changed[0] = b'[';
    let SignatureMaterial::Simple(material) = simple_signing(changed, sig, None) else {
        unreachable!()
    };
    let err = signature::verify_simple_signing(
        &material,
        &fixture_image,
        &authority,
        &VerifyOptions::default(),
        SystemTime::now(),
    )
    .unwrap_err();
    assert_eq!(err.kind, signature::ErrorKind::BadSignature, "{err}");
    let SignatureMaterial::Simple(too_big) = simple_signing(
        vec![b' '; signature::MAX_PAYLOAD_LEN + 1],
        "AA==".into(),
        None,
    ) else {
        unreachable!()
    };
    let err = signature::verify_simple_signing(
        &too_big,
        &image(),
        &authority,
        &VerifyOptions::default(),
        SystemTime::now(),
    )
    .unwrap_err();
    assert_eq!(err.kind, signature::ErrorKind::Malformed, "{err}");
    let any = AnyIdentity::new();
    let too_big = SigstoreBundle {
        json: vec![b' '; signature::MAX_BUNDLE_LEN + 1],
        media_type: "application/vnd.dev.sigstore.bundle.v0.3+json".into(),
        origin: origin(),
    };
    let err =
        bundles::verify_image_signature(&too_big, IMAGE_DIGEST, &[], &any.authority()).unwrap_err();
    assert_eq!(err.kind, signature::ErrorKind::Malformed, "{err}");
    // The real cosign v3 image signature verifies, for its image only.
    let bundle = SigstoreBundle {
        json: fixture("signatures/sigstore-rs/bundle_v03.json"),
        media_type: "application/vnd.dev.sigstore.bundle.v0.3+json".into(),
        origin: origin(),
    };
    let v03 = "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
    bundles::verify_image_signature(&bundle, v03, &[], &any.authority()).unwrap();
    let err =
        bundles::verify_image_signature(&bundle, IMAGE_DIGEST, &[], &any.authority()).unwrap_err();
    assert_eq!(err.kind, signature::ErrorKind::WrongImage, "{err}");
}

// ---------------------------------------------------------------------------------------------
// SBOMs: SPDX and CycloneDX.

const SBOM_SEEDS: &[&str] = &[
    "sbom/cyclonedx/syft-0.58.0_distroless-static-nonroot.cdx14.json",
    "sbom/cyclonedx/trivy-dev_fluentd-image_vulnerabilities.cdx17.json",
    "sbom/cyclonedx/sbomer_jboss-eap-7.4_file-components-hashes.cdx16.json",
    "sbom/spdx/syft-0.57.0_alpine-small_files-sha256.spdx22.json",
    "sbom/spdx/trivy-0.42.1_mageia-5.1.spdx23.json",
];

fn check_sbom(
    bytes: &[u8],
    limits: &Limits,
) -> Result<Result<sbom::Sbom, SbomError>, TestCaseError> {
    let (result, peak) = peak_of(|| sbom::parse(bytes, limits));
    assert_memory(peak, bytes.len(), 48, 1 << 20, "sbom");
    if let Err(e) = &result {
        one_line("sbom", &e.to_string())?;
    }
    Ok(result)
}

fn check_predicate(v: &Value) -> Result<(), TestCaseError> {
    if let Err(e) = sbom::parse_predicate(v, &Limits::default()) {
        one_line("sbom predicate", &e.to_string())?;
    }
    Ok(())
}

/// Small limits, so that documents over them are cheap to make.
fn small_limits() -> Limits {
    Limits {
        max_bytes: 1 << 20,
        max_depth: 24,
        max_packages: 50,
        max_files: 50,
        max_relationships: 50,
        max_vulnerabilities: 50,
        max_array_elements: 2000,
        max_component_depth: 4,
    }
}

#[test]
fn sbom_fixtures_parse_and_malformed_ones_fail_on_one_line() {
    for seed in SBOM_SEEDS {
        check_sbom(&fixture(seed), &Limits::default())
            .unwrap()
            .unwrap();
    }
    for bad in [
        "malformed/SPDXJSONExample-UTF-16.spdx.json",
        "malformed/trivy_vmware-log-intelligence-fluentd_invalid.spdx22.json",
    ] {
        if let Err(e) = check_sbom(&fixture(bad), &Limits::default()).unwrap() {
            one_line(bad, &e.to_string()).unwrap();
        }
    }
}

#[test]
fn sbom_over_a_limit_is_refused_without_being_built() {
    let limits = small_limits();
    let over_bytes = vec![b' '; limits.max_bytes + 1];
    let (result, peak) = peak_of(|| sbom::parse(&over_bytes, &limits));
    assert!(matches!(result, Err(SbomError::Limit { .. })), "{result:?}");
    assert!(peak < 4096, "{peak}");
    let deep = nested("{\"a\":", "}", "1", 100_000);
    assert!(matches!(
        sbom::parse(deep.as_bytes(), &limits),
        Err(SbomError::Limit { .. })
    ));
    let deep = nested("[", "]", "", 1_000_000);
    let (result, peak) = peak_of(|| sbom::parse(deep.as_bytes(), &Limits::default()));
    assert!(matches!(result, Err(SbomError::Limit { .. })), "{result:?}");
    assert!(peak < 64 << 10, "{peak}");
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn sbom_arbitrary_bytes(bytes in bytes(4096)) {
        let _ = check_sbom(&bytes, &Limits::default())?;
    }

    #[test]
    fn sbom_spliced_seed(seed in 0..SBOM_SEEDS.len(), cut in any::<usize>(),
                         tail in bytes(32)) {
        let _ = check_sbom(&spliced(&fixture(SBOM_SEEDS[seed]), cut, &tail), &Limits::default())?;
    }

    #[test]
    fn sbom_mutated_fields(seed in 0..SBOM_SEEDS.len(), path in path(), m in mutation()) {
        let mut doc = fixture_json(SBOM_SEEDS[seed]);
        mutate(&mut doc, &path, &m);
        let bytes = serde_json::to_vec(&doc).unwrap();
        let _ = check_sbom(&bytes, &Limits::default())?;
        let _ = check_sbom(&bytes, &small_limits())?;
        check_predicate(&doc)?;
        check_predicate(&Value::String(String::from_utf8(bytes).unwrap()))?;
    }

    #[test]
    fn sbom_predicate_any_json(v in hostile_json()) {
        check_predicate(&v)?;
    }

    /// Packages, files, relationships and vulnerabilities past their limit are refused, at any
    /// depth of the document the counted key appears.
    #[test]
    fn sbom_counts_over_the_limit_are_refused(n in 0usize..120, kind in 0usize..4) {
        let limits = small_limits();
        let list = |f: &dyn Fn(usize) -> Value| Value::Array((0..n).map(f).collect());
        let spdx = json!({"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "x"});
        let cdx = json!({"bomFormat": "CycloneDX", "specVersion": "1.5"});
        let (mut doc, key, items, limit) = match kind {
            0 => (spdx, "packages",
                  list(&|i| json!({"SPDXID": format!("SPDXRef-{i}"), "name": "p"})),
                  limits.max_packages),
            1 => (spdx, "files",
                  list(&|i| json!({"SPDXID": format!("SPDXRef-f{i}"), "fileName": "f"})),
                  limits.max_files),
            2 => (cdx, "dependencies", list(&|i| json!({"ref": format!("r{i}")})),
                  limits.max_relationships),
            _ => (cdx, "vulnerabilities", list(&|i| json!({"id": format!("CVE-{i}")})),
                  limits.max_vulnerabilities),
        };
        doc[key] = items;
        let bytes = serde_json::to_vec(&doc).unwrap();
        let over = matches!(check_sbom(&bytes, &limits)?, Err(SbomError::Limit { .. }));
        prop_assert_eq!(over, n > limit, "{} entries of kind {}", n, kind);
        let over = matches!(sbom::parse_predicate(&doc, &limits), Err(SbomError::Limit { .. }));
        prop_assert_eq!(over, n > limit, "predicate: {} entries of kind {}", n, kind);
    }

    /// CycloneDX components nested past `max_component_depth` are refused.
    #[test]
    fn sbom_nested_components_over_the_limit_are_refused(depth in 1usize..10) {
        let limits = small_limits();
        let mut component = json!({"type": "library", "name": "leaf"});
        for i in 0..depth - 1 {
            component =
                json!({"type": "library", "name": format!("c{i}"), "components": [component]});
        }
        let doc =
            json!({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [component]});
        let result = check_sbom(&serde_json::to_vec(&doc).unwrap(), &limits)?;
        prop_assert_eq!(
            result.is_err(),
            depth > limits.max_component_depth,
            "depth {}: {:?}",
            depth,
            result.err()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// OCI manifests and indexes: the registry's parser and the baseline's reader of verified blobs.

fn manifest_seed() -> Value {
    fixture_json("signatures/containers-image/dir-img-cosign-valid/manifest.json")
}

fn index_seed(manifest_digest: &str) -> Value {
    let (os, arch, _) = baseline::node_platform();
    json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
             "size": 1, "platform": {"os": os, "architecture": arch}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
             "size": 1, "platform": {"os": "windows", "architecture": "arm"}}
        ]
    })
}

/// Blobs in memory, stored under any name (a registry or content store that lies).
#[derive(Default)]
struct Blobs(HashMap<String, Vec<u8>>);

impl Blobs {
    fn put(&mut self, bytes: Vec<u8>) -> String {
        let digest = sha256(&bytes);
        self.0.insert(digest.clone(), bytes);
        digest
    }
}

impl BlobSource for Blobs {
    fn open_blob(&self, digest: &str) -> Result<Box<dyn Read + Send>, BaselineError> {
        match self.0.get(digest) {
            Some(b) => Ok(Box::new(std::io::Cursor::new(b.clone()))),
            // Any other digest: an endless blob, which a reader must stop reading.
            None => Ok(Box::new(std::io::repeat(b' '))),
        }
    }
}

/// Reading a manifest of at most 4 MiB (the baseline's cap) into a growing buffer:
/// the buffer doubles to twice the cap, and the old one is live while it moves.
const MANIFEST_READ_BOUND: usize = 3 * (4 << 20) + (64 << 10);

/// Parses `bytes` as a manifest, then reads them as a verified blob from `blobs` (which may hold
/// the manifest an index names).
fn check_manifest(bytes: &[u8], blobs: &mut Blobs) -> Result<(), TestCaseError> {
    let (result, peak) = peak_of(|| ManifestDocument::parse(bytes));
    assert_memory(peak, bytes.len(), 48, 64 << 10, "manifest");
    if let Err(e) = result {
        one_line("manifest", &e)?;
    }
    let digest = blobs.put(bytes.to_vec());
    let (result, peak) = peak_of(|| blobs.manifest_layers(&digest));
    // An index may name a manifest the store does not hold (here endless), read up to the cap.
    assert_memory(
        peak,
        bytes.len(),
        64,
        MANIFEST_READ_BOUND,
        "manifest layers",
    );
    if let Err(e) = result {
        one_line("manifest layers", &e.to_string())?;
    }
    Ok(())
}

#[test]
fn manifest_seeds_parse() {
    let m = serde_json::to_vec(&manifest_seed()).unwrap();
    ManifestDocument::parse(&m).unwrap();
    let mut blobs = Blobs::default();
    let md = blobs.put(m);
    assert!(!blobs.manifest_layers(&md).unwrap().is_empty());
    let index = blobs.put(serde_json::to_vec(&index_seed(&md)).unwrap());
    assert!(!blobs.manifest_layers(&index).unwrap().is_empty());
}

#[test]
fn unverified_and_oversized_manifests_are_refused_unread() {
    // A digest with no such blob reads as an endless stream: refused at the cap, memory bounded.
    let blobs = Blobs::default();
    let absent = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    let (result, peak) = peak_of(|| blobs.manifest_layers(absent));
    let e = result.unwrap_err();
    assert!(e.to_string().contains("too large"), "{e}");
    assert_memory(peak, 0, 0, MANIFEST_READ_BOUND, "endless manifest");
    // A blob whose bytes are not its digest's: refused for the digest, whatever it holds.
    let mut blobs = Blobs::default();
    blobs.0.insert(absent.into(), b"{ not json at all".to_vec());
    let e = blobs.manifest_layers(absent).unwrap_err();
    assert!(matches!(e, BaselineError::Digest { .. }), "{e}");
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn manifest_arbitrary_bytes(bytes in bytes(4096)) {
        check_manifest(&bytes, &mut Blobs::default())?;
    }

    #[test]
    fn manifest_mutated_fields(path in path(), m in mutation()) {
        let mut doc = manifest_seed();
        mutate(&mut doc, &path, &m);
        check_manifest(&serde_json::to_vec(&doc).unwrap(), &mut Blobs::default())?;
    }

    #[test]
    fn index_mutated_fields(path in path(), m in mutation()) {
        let mut blobs = Blobs::default();
        let md = blobs.put(serde_json::to_vec(&manifest_seed()).unwrap());
        let mut doc = index_seed(&md);
        mutate(&mut doc, &path, &m);
        check_manifest(&serde_json::to_vec(&doc).unwrap(), &mut blobs)?;
    }

    /// Bytes stored under another digest are refused for it, never parsed.
    #[test]
    fn manifest_under_the_wrong_digest_is_refused(bytes in bytes(1024), hex in "[0-9a-f]{64}") {
        let digest = format!("sha256:{hex}");
        prop_assume!(digest != sha256(&bytes));
        let mut blobs = Blobs::default();
        blobs.0.insert(digest.clone(), bytes);
        let e = blobs.manifest_layers(&digest).unwrap_err();
        prop_assert!(matches!(e, BaselineError::Digest { .. }), "{}", e);
    }
}

// ---------------------------------------------------------------------------------------------
// Layer tars.

/// One tar entry as a hostile layer may hold it: any name, any type, any size.
#[derive(Debug, Clone)]
struct TarEntry {
    name: Vec<u8>,
    kind: u8,
    link: Vec<u8>,
    data: Vec<u8>,
    mode: u32,
}

fn tar_name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[a-z]{1,8}(/[a-z.]{1,8}){0,3}".prop_map(String::into_bytes),
        Just(b"../escape".to_vec()),
        Just(b"/abs/path".to_vec()),
        Just(b"a/.wh..wh..opq".to_vec()),
        Just(b"a/.wh.gone".to_vec()),
        Just(b".".to_vec()),
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 1..100),
    ]
}

fn tar_entry() -> impl Strategy<Value = TarEntry> {
    (
        tar_name(),
        prop::sample::select(vec![
            b'0', b'1', b'2', b'3', b'4', b'5', b'6', b'7', b'x', b'g', b'L', b'K', b'S', b'Z',
        ]),
        tar_name(),
        prop::collection::vec(any::<u8>(), 0..600),
        any::<u32>(),
    )
        .prop_map(|(name, kind, link, data, mode)| TarEntry {
            name,
            kind,
            link,
            data,
            mode,
        })
}

/// A tar written header by header, so that names the `tar` crate's builder would refuse get in.
fn tar_bytes(entries: &[TarEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = tar::Header::new_old();
        {
            let old = h.as_old_mut();
            let n = e.name.len().min(old.name.len());
            old.name[..n].copy_from_slice(&e.name[..n]);
            let l = e.link.len().min(old.linkname.len());
            old.linkname[..l].copy_from_slice(&e.link[..l]);
        }
        h.set_mode(e.mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(e.data.len() as u64);
        h.set_entry_type(tar::EntryType::new(e.kind));
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&e.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// Reads `blob` under its own digest: every error one line, memory bounded, nothing of the blob
/// left in the scratch directory.
fn check_layer(
    blob: &[u8],
    max_entries: usize,
) -> Result<Result<baseline::ExpectedLayer, BaselineError>, TestCaseError> {
    let digest = sha256(blob);
    let scratch = tempfile::tempdir().unwrap();
    let (result, peak) =
        peak_of(|| baseline::read_layer(blob, &digest, max_entries, scratch.path()));
    // The reader's buffers, and per entry its path and record.
    assert_memory(peak, blob.len(), 16, 2 << 20, "layer");
    if let Err(e) = &result {
        one_line("layer", &e.to_string())?;
    }
    prop_assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
    Ok(result)
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn layer_arbitrary_bytes(bytes in bytes(4096), gz in any::<bool>()) {
        let blob = if gz { gzip(&bytes) } else { bytes };
        let _ = check_layer(&blob, 1000)?;
    }

    #[test]
    fn layer_hostile_entries(entries in prop::collection::vec(tar_entry(), 0..12),
                             gz in any::<bool>()) {
        let tar = tar_bytes(&entries);
        let blob = if gz { gzip(&tar) } else { tar };
        let _ = check_layer(&blob, 1000)?;
    }

    /// A well-formed layer with some bytes changed, and its digest recomputed.
    #[test]
    fn layer_corrupted(entries in prop::collection::vec(tar_entry(), 1..6),
                       flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
                       gz in any::<bool>()) {
        let tar = tar_bytes(&entries);
        let mut blob = if gz { gzip(&tar) } else { tar };
        for (at, b) in flips {
            let i = at % blob.len();
            blob[i] = b;
        }
        let _ = check_layer(&blob, 1000)?;
    }

    #[test]
    fn layer_entries_over_the_limit_are_refused(n in 0usize..40, max in 1usize..30) {
        let entries: Vec<TarEntry> = (0..n)
            .map(|i| TarEntry {
                name: format!("f{i}").into_bytes(),
                kind: b'0',
                link: Vec::new(),
                data: vec![1],
                mode: 0o644,
            })
            .collect();
        let tar = tar_bytes(&entries);
        let result = check_layer(&tar, max)?;
        match result {
            Ok(layer) => {
                prop_assert!(n <= max, "{} entries read, limit {}", layer.entries.len(), max)
            }
            Err(e) => {
                prop_assert!(n > max, "{}", e);
                prop_assert!(e.to_string().contains(&format!("more than {max} entries")), "{}", e);
            }
        }
    }

    /// A blob that does not hash to its digest is refused for the digest, whatever it holds.
    #[test]
    fn layer_under_the_wrong_digest_is_refused(entries in prop::collection::vec(tar_entry(), 0..4),
                                               hex in "[0-9a-f]{64}") {
        let blob = tar_bytes(&entries);
        let digest = format!("sha256:{hex}");
        prop_assume!(digest != sha256(&blob));
        let scratch = tempfile::tempdir().unwrap();
        let e = baseline::read_layer(&blob[..], &digest, 1000, scratch.path()).unwrap_err();
        prop_assert!(matches!(e, BaselineError::Digest { .. }), "{}", e);
    }

    /// A header that quotes control characters back (the `tar` crate's errors did) still gives a
    /// one-line error, whatever the field that is wrong.
    #[test]
    fn layer_errors_with_control_characters_in_names_are_one_line(
        name in "[a-z]{0,3}[\\n\\r\\x1b][a-z]{0,3}",
        field in prop::sample::select(vec![100usize, 108, 116, 124, 148, 329]),
        junk in prop::collection::vec(any::<u8>(), 8),
        gz in any::<bool>(),
    ) {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(tar::EntryType::Char);
        h.set_size(0);
        let mut block = h.as_bytes().to_vec();
        block[field..field + 8].copy_from_slice(&junk);
        let mut h = tar::Header::new_old();
        h.as_mut_bytes().copy_from_slice(&block);
        if field != 148 {
            h.set_cksum();
        }
        let mut tar = h.as_bytes().to_vec();
        tar.resize(tar.len() + 1024, 0);
        let blob = if gz { gzip(&tar) } else { tar };
        let _ = check_layer(&blob, 1000)?;
    }
}

/// A gzip stream of `header`'s block followed by `n` MiB of `fill`, made of one gzip member per
/// MiB (as Go's reader, and so containerd, reads them): a large tar from a small blob, cheaply.
fn gzip_members(header: &tar::Header, n: usize, fill: u8) -> Vec<u8> {
    let mut blob = gzip(header.as_bytes());
    let mib = gzip(&vec![fill; 1 << 20]);
    for _ in 0..n {
        blob.extend_from_slice(&mib);
    }
    blob
}

/// A header of `kind` for `size` bytes of data.
fn big_header(kind: tar::EntryType, name: &str, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_cksum();
    h
}

#[test]
fn layer_long_names_and_pax_headers_are_refused_within_bounded_memory() {
    // A 64 MiB GNU long name in a blob of a few hundred KB: the `tar` crate read it whole.
    let name = gzip(&vec![b'a'; 64 << 20]);
    for (kind, what) in [
        (tar::EntryType::GNULongName, "GNU long name"),
        (tar::EntryType::GNULongLink, "GNU long link name"),
        (tar::EntryType::XHeader, "PAX extended header"),
        (tar::EntryType::XGlobalHeader, "PAX extended header"),
    ] {
        let mut blob = gzip(big_header(kind, "././@LongLink", 64 << 20).as_bytes());
        blob.extend_from_slice(&name);
        assert!(blob.len() < 1 << 20, "{} bytes", blob.len());
        let result = check_layer(&blob, 1000).unwrap();
        let e = result.unwrap_err().to_string();
        assert!(
            e.contains(&format!("{what} of {} bytes (more than", 64 << 20)),
            "{e}"
        );
    }
}

#[test]
fn layer_under_a_wrong_digest_fails_fast_however_slow_its_parse() {
    // 8 GiB of zeros in one file from an 8 MB blob: parsed, it would be inflated and hashed whole
    // (tens of seconds at least). Under a digest that is not its own it is refused once its own
    // 8 MB are hashed, never inflated.
    let blob = gzip_members(
        &big_header(tar::EntryType::Regular, "zeros", 8 << 30),
        8 << 10,
        0,
    );
    let digest = sha256(b"the blob the manifest pins");
    let scratch = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let e = baseline::read_layer(&blob[..], &digest, 1000, scratch.path()).unwrap_err();
    let took = started.elapsed();
    assert!(matches!(e, BaselineError::Digest { .. }), "{e}");
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
}

// ---------------------------------------------------------------------------------------------
// Attestation log lines.

/// Three records signed by a node key of their own, made once: the key, and the lines.
struct SeedLog {
    key: PublicKey,
    lines: Vec<Vec<u8>>,
}

fn seed_log() -> &'static SeedLog {
    static SEED: std::sync::OnceLock<SeedLog> = std::sync::OnceLock::new();
    SEED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let key_path = attestlog::ensure_default_key(dir.path()).unwrap();
        let mut settings = LogSettings::new(dir.path().join("log.jsonl"));
        settings.key = Some(key_path);
        for (i, kind) in [DecisionKind::Allow, DecisionKind::Deny, DecisionKind::Audit]
            .into_iter()
            .enumerate()
        {
            let mut d = attestlog::Decision::new(format!("container-{i}"), kind);
            d.reasons = vec!["vouch: denied sha256:ab: no signature".into()];
            attestlog::append(&mut settings, &d).unwrap();
        }
        let (_, key) =
            attestlog::read_public_key(&attestlog::default_public_key_path(dir.path())).unwrap();
        let text = std::fs::read(&settings.log).unwrap();
        let lines = text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        SeedLog { key, lines }
    })
}

/// Writes `lines` as a log and reads and verifies it: every message one line, memory bounded.
fn check_log(lines: &[Vec<u8>]) -> Result<attestlog::Report, TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    let mut text = lines.join(&b'\n');
    text.push(b'\n');
    std::fs::write(&path, &text).unwrap();
    let (records, peak) = peak_of(|| attestlog::read_log(&path));
    assert_memory(peak, text.len(), 32, 1 << 20, "read_log");
    for r in records.unwrap() {
        if let Err(e) = &r.predicate {
            one_line("read_log", e)?;
        }
    }
    let key = seed_log().key.clone();
    let (report, peak) = peak_of(|| attestlog::verify_log(&path, &[key], None, None));
    assert_memory(peak, text.len(), 32, 1 << 20, "verify_log");
    let report = report.unwrap();
    for p in &report.problems {
        one_line("verify_log", &p.message)?;
    }
    one_line("verify_log summary", &report.summary())?;
    Ok(report)
}

#[test]
fn attestation_log_seed_verifies_and_long_lines_are_refused() {
    let report = check_log(&seed_log().lines).unwrap();
    assert!(report.is_valid(), "{:?}", report.problems);
    let mut lines = seed_log().lines.clone();
    lines.push(vec![b'x'; attestlog::MAX_LINE_LEN + 1]);
    let report = check_log(&lines).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0].message.contains("more than"),
        "{}",
        report.problems[0].message
    );
}

proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn attestation_log_arbitrary_lines(lines in prop::collection::vec(bytes(512), 0..6)) {
        check_log(&lines)?;
    }

    #[test]
    fn attestation_log_mutated_envelope(line in 0usize..3, path in path(), m in mutation()) {
        let mut lines = seed_log().lines.clone();
        let mut env: Value = serde_json::from_slice(&lines[line]).unwrap();
        mutate(&mut env, &path, &m);
        lines[line] = serde_json::to_vec(&env).unwrap();
        check_log(&lines)?;
    }

    /// The statement inside a record, mutated (its signature then fails, but it is still read).
    #[test]
    fn attestation_log_mutated_statement(line in 0usize..3, path in path(), m in mutation()) {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut lines = seed_log().lines.clone();
        let mut env: Value = serde_json::from_slice(&lines[line]).unwrap();
        let mut statement: Value =
            serde_json::from_slice(&b64.decode(env["payload"].as_str().unwrap()).unwrap()).unwrap();
        mutate(&mut statement, &path, &m);
        env["payload"] = json!(b64.encode(serde_json::to_vec(&statement).unwrap()));
        lines[line] = serde_json::to_vec(&env).unwrap();
        let report = check_log(&lines)?;
        let unchanged = statement_unchanged(&seed_log().lines[line], &lines[line]);
        prop_assert!(!report.is_valid() || unchanged);
    }
}

fn statement_unchanged(before: &[u8], after: &[u8]) -> bool {
    let a: Value = serde_json::from_slice(before).unwrap();
    let b: Value = serde_json::from_slice(after).unwrap();
    a["payload"] == b["payload"]
}

// ---------------------------------------------------------------------------------------------
// Every field of each seed document, in turn, with each hostile value.

#[test]
fn sweep_spec() {
    sweep(&spec_seed(), check_spec);
}

#[test]
fn sweep_signed_envelope_and_statement() {
    let key = test_key();
    let payload = serde_json::to_vec(&statement_seed()).unwrap();
    let envelope: Value = serde_json::from_slice(&key.envelope(&payload)).unwrap();
    sweep(&envelope, |env| {
        check_attestations(vec![dsse(serde_json::to_vec(env).unwrap())], &key.public).map(drop)
    });
    sweep(&statement_seed(), |statement| {
        let material = AttestationMaterial::Statement(UnsignedStatement {
            json: serde_json::to_vec(statement).unwrap(),
            predicate_type: sbom::PREDICATE_CYCLONEDX.into(),
            origin: origin(),
        });
        check_attestations(vec![material], &key.public).map(drop)
    });
}

#[test]
fn sweep_simple_signing_payload() {
    use base64::Engine;
    let key = test_key();
    let authority = Authority::Key {
        name: "test",
        key: &key.public,
        rekor: None,
    };
    let (payload, _) = simple_signing_seed();
    sweep(&serde_json::from_slice(&payload).unwrap(), |doc| {
        let bytes = serde_json::to_vec(doc).unwrap();
        let sig = base64::engine::general_purpose::STANDARD.encode(key.sign(&bytes));
        check_signature(&simple_signing(bytes, sig, None), &authority, None)
    });
}

#[test]
fn sweep_sbom() {
    for seed in &SBOM_SEEDS[..1] {
        sweep(&fixture_json(seed), |doc| {
            let bytes = serde_json::to_vec(doc).unwrap();
            let _ = check_sbom(&bytes, &Limits::default())?;
            check_predicate(doc)
        });
    }
}

#[test]
fn sweep_manifest_and_index() {
    sweep(&manifest_seed(), |doc| {
        check_manifest(&serde_json::to_vec(doc).unwrap(), &mut Blobs::default())
    });
    let mut blobs = Blobs::default();
    let md = blobs.put(serde_json::to_vec(&manifest_seed()).unwrap());
    sweep(&index_seed(&md), |doc| {
        check_manifest(&serde_json::to_vec(doc).unwrap(), &mut blobs)
    });
}

#[test]
fn sweep_attestation_log_record() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let lines = &seed_log().lines;
    let envelope: Value = serde_json::from_slice(&lines[1]).unwrap();
    sweep(&envelope, |env| {
        let mut lines = lines.clone();
        lines[1] = serde_json::to_vec(env).unwrap();
        check_log(&lines).map(drop)
    });
    let statement: Value =
        serde_json::from_slice(&b64.decode(envelope["payload"].as_str().unwrap()).unwrap())
            .unwrap();
    sweep(&statement, |st| {
        let mut env = envelope.clone();
        env["payload"] = json!(b64.encode(serde_json::to_vec(st).unwrap()));
        let mut lines = lines.clone();
        lines[1] = serde_json::to_vec(&env).unwrap();
        check_log(&lines).map(drop)
    });
}

/// The path to every node of a TOML document.
fn toml_paths(doc: &toml::Value) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new()];
    let children: Vec<&toml::Value> = match doc {
        toml::Value::Array(a) => a.iter().collect(),
        toml::Value::Table(t) => t.values().collect(),
        _ => Vec::new(),
    };
    for (i, child) in children.into_iter().enumerate() {
        for mut sub in toml_paths(child) {
            sub.insert(0, i);
            out.push(sub);
        }
    }
    out
}

fn sweep_toml(seed: &str, check: impl Fn(&[u8]) -> Result<(), TestCaseError>) {
    let seed: toml::Value = toml::from_str(seed).unwrap();
    let values = [
        toml::Value::String("line one\nline two".into()),
        toml::Value::String("x".repeat(100_000)),
        toml::Value::Integer(i64::MIN),
        toml::Value::Integer(i64::MAX),
        toml::Value::Float(f64::NAN),
        toml::Value::Boolean(true),
        toml::Value::Array(vec![toml::Value::Integer(1); 1000]),
        toml::Value::Table(toml::map::Map::new()),
    ];
    for path in toml_paths(&seed) {
        if path.is_empty() {
            continue;
        }
        for v in &values {
            let mut doc = seed.clone();
            mutate_toml(&mut doc, &path, v.clone());
            let Ok(text) = toml::to_string(&doc) else {
                continue;
            };
            if let Err(e) = check(text.as_bytes()) {
                panic!("{e}\nwith {v} at {path:?} of the seed");
            }
        }
    }
}

#[test]
fn sweep_policy_and_config() {
    sweep_toml(&full_policy_seed(), check_policy);
    sweep_toml(CONFIG_SEED, check_config);
}

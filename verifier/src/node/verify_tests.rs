//! The gate with a verify rule, on the real cosign fixture from containers/image, with the
//! registry replaced by a stand-in that counts its calls.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine;

use super::*;
use crate::facts::ImageIdentity;
use crate::material::{Origin, SignatureMaterial, SimpleSigning};
use crate::registry::{Discovery, RegistryError};
use crate::verify::SignatureSource;

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

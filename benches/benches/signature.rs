//! Signature verification alone, on real fixtures (`../shared/fixtures/signatures`): a key-based
//! cosign simple-signing signature, and a keyless Sigstore v0.3 bundle (certificate chain, SCT,
//! SET, inclusion proof) against the public-good trusted root, as a container start verifies it.

use std::{path::Path, time::SystemTime};

use base64::Engine;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use vouch_verifier::{
    keys::PublicKey,
    material::{Origin, SigstoreBundle, SimpleSigning},
    signature::{self, Authority, Image, VerifyOptions},
    sigstore::{self, BlobPolicy, BundleAuthority, TrustRoot},
};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/signatures"
);

fn read(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn simple() -> SimpleSigning {
    let bytes = read("containers-image/dir-img-cosign-valid/signature-1");
    let body = bytes
        .strip_prefix(b"\x00sigstore-json\n")
        .unwrap_or_else(|| panic!("not a sigstore-json file"));
    let json: serde_json::Value =
        serde_json::from_slice(body).unwrap_or_else(|e| panic!("fixture: {e}"));
    let payload = base64::engine::general_purpose::STANDARD
        .decode(json["payload"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("fixture payload: {e}"));
    SimpleSigning {
        payload,
        signature_b64: json["annotations"]["dev.cosignproject.cosign/signature"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        certificate_pem: None,
        chain_pem: None,
        rekor_bundle_json: None,
        origin: Origin {
            manifest: "fixture".into(),
            layer: Some(0),
        },
    }
}

fn bench(c: &mut Criterion) {
    let key_pem = String::from_utf8(read("containers-image/cosign.pub")).unwrap_or_default();
    let key = PublicKey::from_pem(&key_pem).unwrap_or_else(|e| panic!("{e}"));
    let material = simple();
    let image = Image {
        digest: "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00",
        repository: "192.168.64.2:5000/cosign-signed-single-sample",
    };
    let authority = Authority::Key {
        name: "release",
        key: &key,
        rekor: None,
    };
    let options = VerifyOptions::default();
    c.bench_function("cosign simple signing, P-256 key", |b| {
        b.iter(|| {
            signature::verify_simple_signing(
                black_box(&material),
                &image,
                &authority,
                &options,
                SystemTime::now(),
            )
            .unwrap_or_else(|e| panic!("{e}"))
        })
    });

    // As a container start verifies it: the trusted root read once, then each bundle. The
    // bundle's RFC 3161 timestamp needs the public-good root's timestamp authority.
    let root = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../verifier/tests/data/sigstore-public-good/trusted_root.json"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let trust = TrustRoot::from_json(&root).unwrap_or_else(|e| panic!("{e}"));
    let policy = BlobPolicy::keyless(
        Some("https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0"),
        None,
        Some("https://token.actions.githubusercontent.com"),
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let keyless = BundleAuthority {
        name: "ci",
        trust: &trust,
        policy: &policy,
    };
    let bundle = SigstoreBundle {
        json: read("sigstore-rs/bundle_v03.json"),
        media_type: "application/vnd.dev.sigstore.bundle.v0.3+json".into(),
        origin: Origin {
            manifest: "fixture".into(),
            layer: Some(0),
        },
    };
    let digest = "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
    c.bench_function(
        "sigstore bundle v0.3, keyless (chain, SET, inclusion proof)",
        |b| {
            b.iter(|| {
                sigstore::verify_image_signature(
                    black_box(&bundle),
                    digest,
                    &options.bundle_predicate_types,
                    &keyless,
                )
                .unwrap_or_else(|e| panic!("{e}"))
            })
        },
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);

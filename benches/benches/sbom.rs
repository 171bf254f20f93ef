//! Parsing and normalising the largest fixture SBOM (3,274 packages, SPDX 2.3).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use vouch_verifier::sbom::{parse, Limits};

const LARGEST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/sbom/spdx/redhat_OCP-TOOLS-4.11-RHEL-8_3274pkgs.spdx23.json"
);

fn bench(c: &mut Criterion) {
    let bytes = std::fs::read(LARGEST).unwrap_or_else(|e| panic!("{LARGEST}: {e}"));
    let limits = Limits::default();
    c.bench_function("parse SPDX, 3,274 packages", |b| {
        b.iter(|| parse(black_box(&bytes), &limits).unwrap_or_else(|e| panic!("{e}")))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! The in-process cost of one policy decision: parsing the policy (done at every start, since the
//! policy is re-read) and evaluating it for an image, with a realistic and a large rule set.

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use vouch_verifier::policy::{self, Subject};

fn policy_text(rules: usize) -> String {
    let mut text = String::from(
        "version = 1\ndefault = \"deny\"\nmode = \"enforce\"\nexempt = [\"registry.k8s.io/pause\"]\n",
    );
    for i in 0..rules {
        text.push_str(&format!(
            "[[rule]]\nname = \"team-{i}\"\nimages = [\"registry.example.com/team-{i}/**\", \"ghcr.io/acme/team-{i}/*\"]\nnamespaces = [\"team-{i}-*\"]\naction = \"allow\"\n"
        ));
    }
    text.push_str(
        "[[rule]]\nname = \"no-debug\"\nimages = [\"docker.io/library/busybox\", \"**/debug/**\"]\naction = \"deny\"\n",
    );
    text
}

fn bench(c: &mut Criterion) {
    for rules in [10, 500] {
        let text = policy_text(rules);
        c.bench_function(&format!("parse policy, {rules} rules"), |b| {
            b.iter(|| policy::parse(Path::new("bench.toml"), black_box(text.as_bytes())))
        });
        let loaded = match policy::parse(Path::new("bench.toml"), text.as_bytes()) {
            Ok(l) => l,
            Err(e) => panic!("benchmark policy does not parse: {e}"),
        };
        let subject = Subject {
            repository: Some("registry.example.com/team-7/api/server"),
            namespace: Some("team-7-prod"),
            is_sandbox: false,
        };
        c.bench_function(&format!("evaluate, {rules} rules"), |b| {
            b.iter(|| loaded.policy.evaluate(black_box(&subject)))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

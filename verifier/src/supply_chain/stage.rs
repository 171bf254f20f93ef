//! The supply-chain stage: the signature (and SBOM) checks of every matching `verify` rule. A rule
//! whose checks pass counts as allowing; each failure is a violation of that rule in its mode.

use std::path::Path;
use std::time::SystemTime;

use crate::config::Config;
use crate::facts::{CriPod, Facts, ImageIdentity};
use crate::gate::Denial;
use crate::policy::{Judgement, LoadedPolicy, Mode, Rule, RuleDenial};

use super::cache::VerdictCache;
use super::verify::{self, MakeSource, Outcome, StartContext};

/// The supply-chain stage over `judgement.verify`; exempt images never get here with any.
#[allow(clippy::too_many_arguments)]
pub fn check(
    config: &Config,
    loaded: &LoadedPolicy,
    image: Option<&ImageIdentity>,
    pod: Option<&CriPod>,
    namespace: Option<&str>,
    make_source: MakeSource<'_>,
    facts: &mut Facts,
    judgement: &mut Judgement,
) -> Result<(), Denial> {
    let Some(image) = image else {
        return Ok(());
    };
    if judgement.verify.is_empty() {
        return Ok(());
    }
    let start = StartContext {
        namespace,
        pod_name: pod.and_then(|p| p.name.as_deref()),
        image_name: Some(image.name.as_str()),
    };
    let rules: Vec<&Rule> = judgement
        .verify
        .iter()
        .filter_map(|n| loaded.policy.rule(n))
        .collect();
    let cache = VerdictCache::new(
        &config.state_dir,
        config.cache.allow_ttl_s,
        config.cache.deny_ttl_s,
    );
    let keep_declared = |rule: &Rule, digest: &str, sbom: &crate::sbom::Sbom| {
        keep_declared_files(&config.state_dir, rule, digest, sbom)
    };
    let (outcomes, sbom_digests) = verify::check_rules(
        &rules,
        image,
        &start,
        &loaded.policy_digest,
        &cache,
        &verify::Material {
            make_source,
            on_sbom: &keep_declared,
        },
        SystemTime::now(),
    );
    facts.sbom_digests = sbom_digests;
    for (name, outcome) in outcomes {
        let mode = loaded
            .policy
            .rule(&name)
            .map(|r| loaded.policy.mode_of(r))
            .unwrap_or(Mode::Enforce);
        match outcome {
            Outcome::Verified(v) => {
                log::info!("rule \"{name}\": verified {}", v.join(", "));
                facts
                    .signatures
                    .extend(v.iter().map(|line| format!("{name}: {line}")));
                judgement.rules.push(name);
            }
            Outcome::Failed(reason) | Outcome::Unreachable(reason) => {
                judgement.violation(RuleDenial {
                    rule: name,
                    reason,
                    mode,
                })?;
            }
        }
    }
    Ok(())
}

/// Keeps the files an SBOM declares, for rules whose rootfs baseline compares with them.
fn keep_declared_files(state_dir: &Path, rule: &Rule, digest: &str, sbom: &crate::sbom::Sbom) {
    use crate::policy::Baseline;
    let wanted = rule.rootfs.as_ref().is_some_and(|r| {
        matches!(
            r.baseline,
            Baseline::DeclaredFilesMatch | Baseline::NoUndeclaredExecutables
        )
    });
    if !wanted {
        return;
    }
    let saved = crate::baseline::Declared::from_sbom(sbom).and_then(|d| d.save(state_dir, digest));
    if let Err(e) = saved {
        // The start that needs it fails closed, naming the missing baseline.
        log::warn!("cannot keep the declared files of SBOM {digest}: {e}");
    }
}

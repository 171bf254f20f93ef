//! The rootfs stage: the container's root filesystem measured and compared with each matching
//! rule's baseline, and the spec's mounts that would hide the code it measured.

use crate::config::Config;
use crate::facts::Facts;
use crate::gate::{Denial, GateRequest};
use crate::policy::{Judgement, LoadedPolicy, Rule, RuleDenial};

/// The rootfs stage. Only a container has a root filesystem: `vouch verify` of an image (no
/// bundle) skips it. It is measured when a matching rule has `[rule.rootfs]`, or always
/// (`measure_always`, container starts: the record carries the digest).
pub fn check(
    config: &Config,
    loaded: &LoadedPolicy,
    request: &GateRequest,
    measure_always: bool,
    facts: &mut Facts,
    judgement: &mut Judgement,
) -> Result<(), Denial> {
    let policy = &loaded.policy;
    let matched = judgement.matched(policy);
    let wants_rootfs = matched.iter().any(|r| r.rootfs.is_some());
    if request.bundle.as_os_str().is_empty() || !(measure_always || wants_rootfs) {
        return Ok(());
    }
    let supply_chain_exempt = judgement.exempt.is_some();
    for (rule, reason) in compare(config, request, &matched, supply_chain_exempt, facts) {
        judgement.violation(RuleDenial {
            mode: policy.mode_of(rule),
            rule: rule.name.clone(),
            reason,
        })?;
    }
    Ok(())
}

/// Measures the container's root filesystem and compares it with the baseline of each rule that
/// has one; returns each failing rule with its one-line reason. A measurement that fails fails
/// every rule with a baseline (and is only logged when no rule asks).
fn compare<'r>(
    config: &Config,
    request: &GateRequest,
    matched: &[&'r Rule],
    supply_chain_exempt: bool,
    facts: &mut Facts,
) -> Vec<(&'r Rule, String)> {
    use crate::baseline::{self, Exempt};
    use crate::policy::Baseline;
    let judged: Vec<&Rule> = matched
        .iter()
        .copied()
        .filter(|r| {
            r.rootfs
                .as_ref()
                .is_some_and(|f| f.baseline != Baseline::Off)
        })
        .collect();
    let options = crate::measure::Options::default();
    let measured = crate::rootfs::measure_container(
        &request.rootfs,
        &request.bundle,
        &config.state_dir,
        &options,
    );
    let m = match measured {
        Ok(m) => m,
        Err(e) => {
            log::warn!("container {}: {e}", request.container_id);
            return judged.into_iter().map(|r| (r, e.to_string())).collect();
        }
    };
    facts.rootfs_digest = Some(m.digest.clone());
    facts.layers = Some(m.summary());
    if judged.is_empty() {
        return Vec::new();
    }
    let merged = m.merged();
    let mut out = Vec::new();
    let mut image_baseline = None;
    for rule in judged {
        let Some(req) = &rule.rootfs else { continue };
        let exempt = match Exempt::new(&req.exempt_paths) {
            Ok(e) => e,
            Err(e) => {
                out.push((rule, format!("rootfs: exempt_paths: {e}")));
                continue;
            }
        };
        let mismatches = match req.baseline {
            Baseline::Off => continue,
            Baseline::Image => {
                let Some(image) = &facts.image else {
                    out.push((
                        rule,
                        "rootfs: the container has no image to compare with".into(),
                    ));
                    continue;
                };
                let expected = image_baseline.get_or_insert_with(|| {
                    let source = baseline::ContainerdContent::new(
                        &request.containerd_address,
                        &request.namespace,
                    );
                    baseline::image_baseline(
                        &source,
                        &image.digest,
                        &config.state_dir,
                        options.max_entries,
                    )
                    .map_err(|e| e.to_string())
                });
                match expected {
                    Ok(expected) => baseline::compare_image(expected, &merged, &exempt),
                    Err(e) => {
                        out.push((rule, format!("rootfs: image baseline: {e}")));
                        continue;
                    }
                }
            }
            // An exempt image's SBOM is never judged: there are no declared files to compare.
            Baseline::DeclaredFilesMatch | Baseline::NoUndeclaredExecutables
                if supply_chain_exempt =>
            {
                Vec::new()
            }
            Baseline::DeclaredFilesMatch | Baseline::NoUndeclaredExecutables => {
                let Some(digest) = facts.sbom_digests.get(&rule.name) else {
                    out.push((rule, "rootfs: no SBOM was judged for this rule, so there are no declared files to compare with".into()));
                    continue;
                };
                let Some(declared) =
                    baseline::Declared::load(&config.state_dir, digest, options.max_entries)
                else {
                    out.push((
                        rule,
                        format!(
                        "rootfs: the files SBOM {digest} declares are not kept under {} (they are \
                         kept when the SBOM is judged: remove the verdict cache to judge it again)",
                        config.state_dir.join("baselines").display()
                    ),
                    ));
                    continue;
                };
                baseline::check_declared(
                    &declared,
                    &merged,
                    &request.bundle.join("rootfs"),
                    &exempt,
                    req.baseline == Baseline::NoUndeclaredExecutables,
                )
            }
        };
        // Mounts may not hide or replace the code the baseline measured.
        let mut hidden = baseline::hidden_code(&merged, &request.spec, &exempt);
        hidden.extend(baseline::through_volume_links(&request.spec));
        let reason = match (baseline::reason(&mismatches), hidden.is_empty()) {
            (reason, true) => reason,
            (None, false) => Some(format!("rootfs: {}", hidden.join("; "))),
            (Some(reason), false) => Some(format!("{reason}; {}", hidden.join("; "))),
        };
        if let Some(reason) = reason {
            out.push((rule, reason));
        }
    }
    out
}

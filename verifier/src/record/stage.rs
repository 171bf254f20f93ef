//! The record stage: every decision, allowed or denied, appended to the attestation log (and
//! extended into the TPM and quoted, as configured) with the facts it was made on.

use std::time::Duration;

use sha2::Digest;

use crate::facts::Facts;
use crate::gate::{Denial, GateRequest, Verdict};

/// Denial rule names of the record stage.
pub const RULE_TPM: &str = "tpm";
pub const RULE_ATTESTATION: &str = "attestation";

/// Appends the decision to the attestation log (extending and quoting the TPM as configured) and
/// returns the verdict that stands: a required TPM that fails, or a log that cannot be written in
/// enforce mode, turns an allow into a denial. Without a readable config there is no log to write.
pub fn record(request: &GateRequest, facts: &Facts, verdict: Verdict) -> Verdict {
    use super::attestlog::{self, DecisionKind, LogSettings, TpmQuoter, TpmUse};
    use crate::config::TpmMode;
    let Some(config) = &facts.config else {
        return verdict;
    };
    let (kind, reasons) = match &verdict {
        Verdict::Allow(e) if e.audited.is_empty() => (DecisionKind::Allow, Vec::new()),
        Verdict::Allow(e) => (DecisionKind::Audit, e.audited.clone()),
        Verdict::Deny(d) => (DecisionKind::Deny, vec![d.to_string()]),
    };
    let mut decision = attestlog::Decision::new(request.container_id.clone(), kind);
    decision.image = facts.image.clone();
    decision.reasons = reasons;
    decision.policy_digest = facts.policy_digest.clone();
    decision.signatures = facts.signatures.clone();
    decision.sbom_digest = facts.sbom_digests.values().next().cloned();
    decision.rootfs_digest = facts.rootfs_digest.clone();
    decision.exec = facts.exec.clone();
    if let Some(layers) = &facts.layers {
        decision.layers = layers.clone();
    }
    decision.subject_fallback_digest = match &request.spec_text {
        Some(text) => Some(hex::encode(sha2::Sha256::digest(text.as_bytes()))),
        None => std::fs::read(request.bundle.join("config.json"))
            .ok()
            .map(|b| hex::encode(sha2::Sha256::digest(&b))),
    };
    if let Some(host) = &facts.host {
        decision.host = host.clone();
    }
    let quoter = || {
        Box::new(TpmQuoter::new(
            config.tpm.tcti.clone(),
            config.state_dir.clone(),
            config.tpm.pcr,
        ))
    };
    let key = match &config.attestation.key {
        Some(k) => Ok(k.clone()),
        None => attestlog::ensure_default_key(&config.state_dir),
    };
    let subject = match &verdict {
        Verdict::Deny(d) => d.subject.clone(),
        Verdict::Allow(e) => e
            .image
            .as_ref()
            .map(|i| i.subject())
            .unwrap_or_else(|| format!("container {}", request.container_id)),
    };
    let mut settings = LogSettings {
        key: key.as_ref().ok().cloned(),
        key_password_file: config.attestation.key_password_file.clone(),
        collector: config.attestation.collector.clone(),
        collector_budget: Duration::from_millis(config.attestation.collector_timeout_ms),
        tpm: match config.tpm.mode {
            TpmMode::Off => TpmUse::Off,
            TpmMode::Optional => TpmUse::Optional(quoter()),
            TpmMode::Required => TpmUse::Required(quoter()),
        },
        ..LogSettings::new(config.attestation.log.clone())
    };
    let appended = key.and_then(|_| attestlog::append(&mut settings, &decision));
    match (appended, verdict) {
        (Ok(a), Verdict::Allow(_)) if a.decision == DecisionKind::Deny => Verdict::Deny(Denial {
            subject,
            reason: a
                .tpm_failure
                .map(|e| format!("TPM required ([tpm] mode = \"required\"): {e}"))
                .unwrap_or_else(|| "the TPM did not record the start".into()),
            rule: RULE_TPM.into(),
        }),
        (Ok(a), verdict) => {
            if let Some(e) = a.collector_error {
                log::warn!("attestation collector: {e}");
            }
            verdict
        }
        (Err(e), Verdict::Allow(_))
            if !facts.audit_only || config.tpm.mode == TpmMode::Required =>
        {
            Verdict::Deny(Denial {
                subject,
                reason: format!("cannot record the decision: {e}"),
                rule: RULE_ATTESTATION.into(),
            })
        }
        (Err(e), verdict) => {
            log::warn!("cannot record the decision: {e}");
            verdict
        }
    }
}

//! The one place where a rule's violation becomes a refusal (enforce) or an audit line that lets
//! the start run (audit). Every stage after the policy reports its violations here.

use crate::facts::ImageIdentity;
use crate::gate::{Denial, Evidence, Verdict};

use super::{Decision, Mode, Policy, Rule, RuleDenial};

/// Where a decision stands once the policy matched: the rules that allow, the `verify` rules whose
/// supply chain must still pass, the would-be denials audit mode let through, and the subject every
/// denial names.
#[derive(Debug, Clone)]
pub struct Judgement {
    /// `<repository>@sha256:<hex>`, or a description of the container.
    pub subject: String,
    /// Rules that allow (a verify rule joins once its signatures verified).
    pub rules: Vec<String>,
    /// Matching `verify` rules.
    pub verify: Vec<String>,
    /// Denial lines audit mode let through.
    pub audited: Vec<String>,
    /// Why supply-chain checks are skipped, if they are.
    pub exempt: Option<String>,
}

impl Judgement {
    /// The policy's decision for `subject`: a refusal, or where the start stands.
    pub fn new(decision: Decision, subject: String) -> Result<Judgement, Denial> {
        match decision {
            Decision::Deny(d) => Err(denial_of(&subject, d)),
            Decision::Allow {
                rules,
                audited,
                exempt,
                verify,
            } => Ok(Judgement {
                audited: audited
                    .into_iter()
                    .map(|d| denial_of(&subject, d).to_string())
                    .collect(),
                subject,
                rules,
                verify,
                exempt,
            }),
        }
    }

    /// `d` as the denial line of this subject.
    pub fn denial(&self, d: RuleDenial) -> Denial {
        denial_of(&self.subject, d)
    }

    /// A rule's violation: refuses in enforce mode; in audit mode it is kept as the would-be denial
    /// and the start goes on.
    pub fn violation(&mut self, d: RuleDenial) -> Result<(), Denial> {
        if d.mode == Mode::Enforce {
            return Err(self.denial(d));
        }
        let line = self.denial(d).to_string();
        self.audited.push(line);
        Ok(())
    }

    /// Every matching rule (allow and verify), once each.
    pub fn matched<'p>(&self, policy: &'p Policy) -> Vec<&'p Rule> {
        let mut matched: Vec<&Rule> = Vec::new();
        for rule in self
            .rules
            .iter()
            .chain(self.verify.iter())
            .filter_map(|n| policy.rule(n))
        {
            if !matched.iter().any(|m| m.name == rule.name) {
                matched.push(rule);
            }
        }
        matched
    }

    /// Whether a record that cannot be written may let the start run: only when the policy is
    /// in audit mode and no matching rule enforces.
    pub fn audit_only(&self, policy: &Policy) -> bool {
        policy.mode == Mode::Audit
            && !self
                .matched(policy)
                .iter()
                .any(|r| policy.mode_of(r) == Mode::Enforce)
    }

    /// The start runs.
    pub fn allow(self, image: Option<ImageIdentity>, policy_digest: String) -> Verdict {
        Verdict::Allow(Evidence {
            image,
            rules: self.rules,
            audited: self.audited,
            exempt: self.exempt,
            policy_digest: Some(policy_digest),
            pins: None,
        })
    }
}

fn denial_of(subject: &str, d: RuleDenial) -> Denial {
    Denial {
        subject: subject.to_string(),
        reason: d.reason,
        rule: d.rule,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rd(rule: &str, mode: Mode) -> RuleDenial {
        RuleDenial {
            rule: rule.into(),
            reason: "why".into(),
            mode,
        }
    }

    #[test]
    fn enforce_refuses_and_audit_records_the_would_be_denial() {
        let decision = Decision::Allow {
            rules: vec!["a".into()],
            audited: vec![rd("b", Mode::Audit)],
            exempt: None,
            verify: vec![],
        };
        let mut j = Judgement::new(decision, "repo@sha256:00".into()).unwrap();
        assert_eq!(
            j.audited,
            ["vouch: denied repo@sha256:00: why (rule \"b\")"]
        );
        j.violation(rd("c", Mode::Audit)).unwrap();
        assert_eq!(j.audited.len(), 2);
        let d = j.violation(rd("d", Mode::Enforce)).unwrap_err();
        assert_eq!(
            d.to_string(),
            "vouch: denied repo@sha256:00: why (rule \"d\")"
        );
        let refused = Judgement::new(Decision::Deny(rd("e", Mode::Enforce)), "x".into());
        assert_eq!(refused.unwrap_err().rule, "e");
    }
}

//! `vouch`: the command line for the vouch verifier.
//!
//! `vouch policy check P` parses a policy exactly as the shim does and explains what it will do.
//! `vouch keygen PREFIX` makes a cosign-compatible key pair (`PREFIX.key`, `PREFIX.pub`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
use vouch_verifier::policy::{
    self, Action, DefaultAction, LoadedPolicy, Policy, Rule, SandboxPolicy,
};

#[derive(Parser)]
#[command(
    name = "vouch",
    version,
    about = "Refuse containers that policy does not allow"
)]
struct Cli {
    /// Node configuration file (default: $VOUCH_CONFIG, else /etc/vouch/config.toml).
    #[arg(long, global = true, value_name = "C")]
    config: Option<PathBuf>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Work with policy files.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Decide one container start for the shim: a gate request (JSON) on stdin, the verdict (JSON)
    /// on stdout. The shim runs this for every start, so the CLI and the shim share one code path.
    #[command(hide = true)]
    Gate,
    /// Generate a key pair cosign can use: PREFIX.key (ECDSA P-256, in cosign's encrypted format, with the
    /// password from $COSIGN_PASSWORD, which may be empty) and PREFIX.pub (PEM public key).
    Keygen {
        /// Path prefix of the two files, e.g. `release` for release.key and release.pub.
        #[arg(value_name = "PREFIX")]
        prefix: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Parse a policy and explain what each rule does; exit 2 if it is invalid.
    Check {
        /// The policy file.
        #[arg(value_name = "P")]
        policy: PathBuf,
    },
}

/// Exit status for an invalid input file (as opposed to a failure of vouch itself).
const EXIT_INVALID: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Policy {
            command: PolicyCommand::Check { policy },
        } => policy_check(policy, cli.output),
        Command::Gate => gate(),
        Command::Keygen { prefix, force } => keygen(prefix, *force, cli.output),
    }
}

fn keygen(prefix: &Path, force: bool, output: Output) -> ExitCode {
    use vouch_verifier::cosign_key::{self, SigningKey};
    let written = cosign_key::password_from_env().and_then(|password| {
        if password.is_empty() {
            eprintln!("vouch keygen: warning: COSIGN_PASSWORD is empty: the private key is not protected by a password");
        }
        let key = SigningKey::generate_p256()?;
        cosign_key::write_key_pair(prefix, &key, &password, force)
    });
    let files = match written {
        Ok(files) => files,
        Err(e) => {
            eprintln!("vouch keygen: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    match output {
        Output::Text => {
            println!("Private key written to {}", files.private_key.display());
            println!("Public key written to {}", files.public_key.display());
        }
        Output::Json => println!(
            "{}",
            json!({
                "private_key": files.private_key.display().to_string(),
                "public_key": files.public_key.display().to_string(),
            })
        ),
    }
    ExitCode::SUCCESS
}

fn gate() -> ExitCode {
    use std::io::{Read, Write};
    use vouch_verifier::{Gate, GateRequest, NodeGate};
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin()
        .take(64 * 1024 * 1024)
        .read_to_end(&mut input)
    {
        eprintln!("vouch gate: cannot read the request: {e}");
        return ExitCode::from(EXIT_INVALID);
    }
    let request: GateRequest = match serde_json::from_slice(&input) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vouch gate: malformed request: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let verdict = NodeGate::default().admit(&request);
    let bytes = match serde_json::to_vec(&verdict) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("vouch gate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    if out.write_all(&bytes).and_then(|_| out.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn policy_check(path: &Path, output: Output) -> ExitCode {
    let loaded = match policy::load(path) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let text = match output {
        Output::Text => describe(&loaded).join("\n"),
        Output::Json => match serde_json::to_string_pretty(&summary(&loaded)) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("vouch: cannot render JSON: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    println!("{text}");
    ExitCode::SUCCESS
}

fn list<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(T::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_rule(policy: &Policy, rule: &Rule) -> String {
    let what = match rule.action {
        Action::Allow => "allow".to_string(),
        action => format!("{action} ({})", policy.mode_of(rule)),
    };
    let where_ = match &rule.namespaces {
        Some(namespaces) => format!("in namespaces {}", list(namespaces)),
        None => "in any namespace (and outside Kubernetes)".to_string(),
    };
    format!(
        "rule \"{}\": {what} images {} {where_}",
        rule.name,
        list(&rule.images)
    )
}

fn describe(loaded: &LoadedPolicy) -> Vec<String> {
    let p = &loaded.policy;
    let mut lines = vec![format!(
        "policy {}: valid (version {}, sha256 {})",
        loaded.path.display(),
        p.version,
        loaded.policy_digest
    )];
    lines.extend(p.rules.iter().map(|r| describe_rule(p, r)));
    if p.rules.is_empty() {
        lines.push("no rules".to_string());
    }
    lines.push(match p.default {
        DefaultAction::Allow => "default: allow images no rule matches".to_string(),
        DefaultAction::Deny => format!("default: deny ({}) images no rule matches", p.mode),
    });
    lines.push(format!("mode: {} unless a rule says otherwise", p.mode));
    lines.push(if p.exempt.is_empty() {
        "exempt: none".to_string()
    } else {
        format!("exempt: never checked: {}", list(&p.exempt))
    });
    lines.push(match p.sandbox {
        SandboxPolicy::Exempt => "sandbox: pod sandbox containers are exempt".to_string(),
        SandboxPolicy::Verify => {
            "sandbox: pod sandbox containers are checked like any other".to_string()
        }
    });
    lines
}

fn summary(loaded: &LoadedPolicy) -> serde_json::Value {
    let p = &loaded.policy;
    let rules: Vec<_> = p
        .rules
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "action": r.action,
                "mode": p.mode_of(r),
                "images": r.images,
                "namespaces": r.namespaces,
                "description": describe_rule(p, r),
            })
        })
        .collect();
    json!({
        "path": loaded.path,
        "valid": true,
        "policy_digest": loaded.policy_digest,
        "version": p.version,
        "default": p.default,
        "mode": p.mode,
        "exempt": p.exempt,
        "sandbox": p.sandbox,
        "rules": rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_as_one_line_each() {
        let text = r#"version = 1
[[rule]]
name = "no-debug-images"
images = ["docker.io/library/busybox", "ghcr.io/acme/debug/**"]
namespaces = ["prod-*"]
action = "deny"
mode = "audit"
[[rule]]
name = "acme"
images = ["ghcr.io/acme/*"]
action = "allow"
"#;
        let loaded = policy::parse(Path::new("/p.toml"), text.as_bytes()).unwrap();
        let lines = describe(&loaded);
        assert_eq!(
            lines[1],
            "rule \"no-debug-images\": deny (audit) images docker.io/library/busybox, ghcr.io/acme/debug/** in namespaces prod-*"
        );
        assert_eq!(
            lines[2],
            "rule \"acme\": allow images ghcr.io/acme/* in any namespace (and outside Kubernetes)"
        );
        assert_eq!(lines[3], "default: deny (enforce) images no rule matches");
        let json = summary(&loaded);
        assert_eq!(json["rules"][0]["mode"], "audit");
        assert_eq!(json["rules"][1]["namespaces"], serde_json::Value::Null);
        assert_eq!(json["sandbox"], "exempt");
    }
}

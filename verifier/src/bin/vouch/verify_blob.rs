//! `vouch verify-blob`: one Sigstore bundle over a file or a `sha256:` digest, with cosign's
//! verb and flags (and `--witness`, `--witness-quorum` for checkpoint cosignatures), offline. A thin handler: read the inputs, call `sigstore::verify_blob`, print
//! one line (or one JSON object) and exit 0 verified, 1 refused, 2 unusable input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;
use vouch_verifier::policy::{self, Trust};
use vouch_verifier::sigstore::{
    self, Artifact, BlobError, BlobKey, BlobPolicy, BlobVerified, FailureKind, Witnesses,
};

#[derive(clap::Args)]
pub struct Args {
    /// The artifact: a file, or `sha256:HEX` to verify against its digest without the file (for a
    /// DSSE bundle, the digest of an in-toto subject).
    #[arg(value_name = "FILE|sha256:HEX")]
    artifact: String,
    /// The Sigstore bundle (JSON, v0.1 to v0.3).
    #[arg(long, value_name = "BUNDLE")]
    bundle: PathBuf,
    /// The public key (PEM) the bundle must be signed with, instead of a certificate identity.
    #[arg(long, value_name = "PUB")]
    key: Option<PathBuf>,
    /// The identity (SAN) the signing certificate must name, exactly.
    #[arg(long, value_name = "ID")]
    certificate_identity: Option<String>,
    /// The OIDC issuer the signing certificate must name, exactly.
    #[arg(long, value_name = "URL")]
    certificate_oidc_issuer: Option<String>,
    /// Instead of --certificate-identity: a regular expression the whole identity must match.
    #[arg(long, value_name = "RE")]
    certificate_identity_regexp: Option<String>,
    /// Instead of --certificate-oidc-issuer: a regular expression the whole issuer must match.
    #[arg(long, value_name = "RE")]
    certificate_oidc_issuer_regexp: Option<String>,
    /// The Sigstore trusted root (default: the one the node's policy names for its keyless
    /// authorities). Nothing is ever fetched.
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
    /// A witness whose cosignatures on log checkpoints are verified where present, as a C2SP
    /// vkey (`<name>+<key ID>+<base64 key>`). Repeatable; other witnesses' lines are ignored.
    #[arg(long = "witness", value_name = "VKEY")]
    witnesses: Vec<String>,
    /// How many of the --witness keys must have cosigned every log entry's checkpoint. With 0,
    /// none is required, but the cosignatures present must verify.
    #[arg(long, value_name = "N", default_value_t = 0)]
    witness_quorum: usize,
}

pub fn run(config: Option<&Path>, args: &Args, json_output: bool) -> ExitCode {
    let outcome = verify(config, args);
    match (&outcome, json_output) {
        (Ok(v), false) => println!("vouch: verified {}: {}", args.artifact, v.summary()),
        (Err(e), false) if e.is_refusal() => {
            eprintln!("vouch: refused {}: {}", args.artifact, e.reason)
        }
        (Err(e), false) => eprintln!("vouch verify-blob: {}", e.reason),
        (Ok(v), true) => {
            let mut value = serde_json::to_value(v).unwrap_or_default();
            if let Some(map) = value.as_object_mut() {
                map.insert("verified".into(), json!(true));
                map.insert("artifact".into(), json!(args.artifact));
            }
            println!("{value}");
        }
        (Err(e), true) => println!(
            "{}",
            json!({
                "verified": false,
                "artifact": args.artifact,
                "kind": e.kind,
                "reason": e.reason,
            })
        ),
    }
    match outcome {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => ExitCode::from(e.exit_code()),
    }
}

fn verify(config: Option<&Path>, args: &Args) -> Result<BlobVerified, BlobError> {
    let artifact = Artifact::from_argument(&args.artifact)?;
    let policy = blob_policy(args)?;
    let witnesses = Witnesses::from_vkeys(&args.witnesses, args.witness_quorum).map_err(usage)?;
    let root_path = match &args.trusted_root {
        Some(path) => path.clone(),
        None => configured_trusted_root(config)?,
    };
    let root = sigstore::read_at_most(&root_path, sigstore::MAX_TRUSTED_ROOT_LEN as u64)?;
    let root = sigstore::TrustRoot::from_json(&root)
        .map_err(|e| BlobError::new(e.kind, format!("{}: {}", root_path.display(), e.reason)))?
        .with_witnesses(witnesses);
    let bundle = sigstore::read_at_most(&args.bundle, sigstore::MAX_BUNDLE_LEN as u64)?;
    root.verify(artifact, &bundle, &policy)
}

fn usage(reason: String) -> BlobError {
    BlobError::new(FailureKind::Policy, reason)
}

/// cosign's rules: `--key`, or an identity and an issuer, each exact or as a pattern.
fn blob_policy(args: &Args) -> Result<BlobPolicy, BlobError> {
    let certificate_flags = [
        &args.certificate_identity,
        &args.certificate_oidc_issuer,
        &args.certificate_identity_regexp,
        &args.certificate_oidc_issuer_regexp,
    ];
    let keyless = certificate_flags.iter().any(|f| f.is_some());
    if let Some(path) = &args.key {
        if keyless {
            return Err(usage(
                "give --key or the --certificate-* flags, not both".to_string(),
            ));
        }
        let pem = sigstore::read_at_most(path, sigstore::MAX_KEY_LEN as u64)?;
        let key = BlobKey::from_pem(&pem)
            .map_err(|e| BlobError::new(e.kind, format!("{}: {}", path.display(), e.reason)))?;
        // A managed key's bundle may have no log entry (cosign signs so with --tlog-upload=false):
        // an entry that is present is verified, and without one an RFC 3161 timestamp must be.
        return Ok(BlobPolicy::Key {
            key,
            require_tlog: false,
        });
    }
    let one = |exact: &Option<String>, pattern: &Option<String>, flag: &str| match (exact, pattern)
    {
        (Some(_), Some(_)) => Err(usage(format!("give --{flag} or --{flag}-regexp, not both"))),
        (None, None) => Err(usage(format!(
            "give --key, or --certificate-identity and --certificate-oidc-issuer \
             (or their -regexp forms): --{flag} is missing"
        ))),
        _ => Ok(()),
    };
    one(
        &args.certificate_identity,
        &args.certificate_identity_regexp,
        "certificate-identity",
    )?;
    one(
        &args.certificate_oidc_issuer,
        &args.certificate_oidc_issuer_regexp,
        "certificate-oidc-issuer",
    )?;
    BlobPolicy::keyless(
        args.certificate_identity.as_deref(),
        args.certificate_identity_regexp.as_deref(),
        args.certificate_oidc_issuer.as_deref(),
        args.certificate_oidc_issuer_regexp.as_deref(),
    )
}

/// The trusted root of the node's keyless authorities: the node config names the policy, whose
/// `keyless = { trusted_root = ... }` authorities name it. One root, or the caller must choose.
fn configured_trusted_root(config: Option<&Path>) -> Result<PathBuf, BlobError> {
    let unusable = |reason: String| BlobError::new(FailureKind::TrustedRoot, reason);
    let config = vouch_verifier::config::locate(config)
        .load()
        .map_err(|e| unusable(format!("no --trusted-root, and the node config: {e}")))?;
    let loaded = policy::load(&config.policy)
        .map_err(|e| unusable(format!("no --trusted-root, and the policy: {e}")))?;
    let mut roots: Vec<&PathBuf> = loaded
        .policy
        .rules
        .iter()
        .filter_map(|rule| rule.verify.as_ref())
        .flat_map(|verification| &verification.authorities)
        .filter_map(|authority| match &authority.trust {
            Trust::Keyless(keyless) => Some(&keyless.trusted_root),
            Trust::Key(_) => None,
        })
        .collect();
    roots.sort();
    roots.dedup();
    match roots.as_slice() {
        [root] => Ok((*root).clone()),
        [] => Err(unusable(format!(
            "no --trusted-root, and policy {} has no keyless authority naming one",
            loaded.path.display()
        ))),
        several => Err(unusable(format!(
            "no --trusted-root, and policy {} names {} trusted roots ({}): choose one",
            loaded.path.display(),
            several.len(),
            several
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

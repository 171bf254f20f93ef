//! `vouch`: the command line for the vouch verifier.
//!
//! - `vouch policy check P` parses a policy exactly as the shim does and explains what it will do.
//! - `vouch keygen PREFIX` makes a cosign-compatible key pair (`PREFIX.key`, `PREFIX.pub`).
//! - `vouch sign IMAGE --key K [--signature-repository R]` signs an image and pushes a cosign `.sig`
//!   signature (password from `$COSIGN_PASSWORD`); exit 0 signed, 2 error.
//! - `vouch attest IMAGE --predicate FILE --type spdxjson|cyclonedx|vuln|openvex --key K
//!   [--signature-repository R]` pushes a signed in-toto attestation (cosign's `.att` format);
//!   exit 0 attested, 2 error.
//! - `vouch verify IMAGE [--policy P] [--namespace NS]` asks the gate the shim asks, about a container
//!   start of IMAGE: exit 0 allowed, 1 denied (the shim's denial line), 2 error.
//! - `vouch verify-blob FILE|sha256:HEX --bundle B (--key PUB | --certificate-identity ID
//!   --certificate-oidc-issuer URL) [--certificate-identity-regexp RE]
//!   [--certificate-oidc-issuer-regexp RE] [--trusted-root F] [--witness VKEY]...
//!   [--witness-quorum N]` verifies a Sigstore bundle as cosign does, offline, and the
//!   cosignatures of the given witnesses on its log checkpoints: exit 0 verified, 1 refused, 2
//!   unusable input.
//! - `vouch gate` (hidden) is the shim's side of that: a gate request on stdin, the verdict on stdout.
//! - `vouch attestation verify LOG --node-key PUB [--node-key PUB2] [--ak PUB] [--event-log F]` checks
//!   an attestation log (signatures, chain, quotes, PCR replay): exit 0 valid, 1 not, 2 unreadable input.
//! - `vouch attestation show LOG` prints the records as a table (or their predicates as JSON), unchecked.
//!
//! Global options: `--config C` (else `$VOUCH_CONFIG`, else `/etc/vouch/config.toml`; its `[registry]`
//! says how registries are reached) and `--output text|json`.

// `vouch gate` parses SBOMs of tens of thousands of packages at container start; with glibc's
// allocator half of that time went to malloc and free (measured with perf on the 10,000-package
// bench).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod gate;
mod verify_blob;
mod verify_request;

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
    /// Sign an image with a cosign private key and push the signature (cosign's `.sig` format) to
    /// the registry. The password comes from $COSIGN_PASSWORD (it may be empty).
    Sign {
        /// The image: `host[:port]/repo[:tag|@sha256:...]` (a tag is resolved to its digest).
        #[arg(value_name = "IMAGE")]
        image: String,
        /// The private key (cosign's encrypted format, e.g. from `vouch keygen`).
        #[arg(long, value_name = "K")]
        key: PathBuf,
        /// Store the signature in this repository instead of the image's (like COSIGN_REPOSITORY).
        #[arg(long, value_name = "R")]
        signature_repository: Option<String>,
    },
    /// Attest an image: sign an in-toto statement about it with a cosign private key (the predicate
    /// read from a JSON file) and push it as cosign's `.att` attestation. The password comes from
    /// $COSIGN_PASSWORD (it may be empty). Nothing is uploaded to Rekor.
    Attest {
        /// The image: `host[:port]/repo[:tag|@sha256:...]` (a tag is resolved to its digest).
        #[arg(value_name = "IMAGE")]
        image: String,
        /// The predicate: a JSON file (at most 32 MiB).
        #[arg(long, value_name = "FILE")]
        predicate: PathBuf,
        /// What the predicate is, as cosign names it.
        #[arg(long = "type", value_enum)]
        predicate_type: PredicateType,
        /// The private key (cosign's encrypted format, e.g. from `vouch keygen`).
        #[arg(long, value_name = "K")]
        key: PathBuf,
        /// Store the attestation in this repository instead of the image's (like COSIGN_REPOSITORY).
        #[arg(long, value_name = "R")]
        signature_repository: Option<String>,
    },
    /// Decide a container start of an image, exactly as the shim does: exit 0 allowed, 1 denied,
    /// 2 error.
    Verify {
        /// The image: `host[:port]/repo[:tag|@sha256:...]` (a tag is resolved in the registry).
        #[arg(value_name = "IMAGE")]
        image: String,
        /// Use this policy file instead of the one the node config names.
        #[arg(long, value_name = "P")]
        policy: Option<PathBuf>,
        /// Decide as for a pod in this Kubernetes namespace (default: a `ctr` container).
        #[arg(long, value_name = "NS")]
        namespace: Option<String>,
        /// Also print what the image's layers unpack to (per layer and for the whole tree), derived
        /// from the layer blobs in containerd's content store (digests checked), and this host's
        /// measurement: what a start with `[rule.rootfs] baseline = "image"` compares with.
        #[arg(long)]
        measure: bool,
        /// containerd's socket, for --measure.
        #[arg(
            long,
            value_name = "ADDRESS",
            default_value = "/run/containerd/containerd.sock"
        )]
        containerd: String,
        /// The containerd namespace holding the image, for --measure (CRI's is k8s.io).
        #[arg(long, value_name = "NS", default_value = "k8s.io")]
        containerd_namespace: String,
        /// Read the layer blobs from this OCI image layout instead of containerd, for --measure.
        #[arg(long, value_name = "DIR")]
        layout: Option<PathBuf>,
    },
    /// Verify a Sigstore bundle over a file (or a sha256: digest) as cosign verify-blob does,
    /// offline, with the trusted root given or the one the node's policy names: exit 0 verified,
    /// 1 refused, 2 unusable input. One line says why (stdout when verified, else stderr).
    VerifyBlob(verify_blob::Args),
    /// Generate an SBOM of an unpacked root filesystem or of an image in an OCI image layout:
    /// dpkg, apk, Python and npm packages and every regular file, as SPDX 2.3 or CycloneDX 1.5
    /// JSON on stdout (or --file), a one-line summary on stderr. Exit 0 written, 2 error.
    Sbom {
        /// A directory (an unpacked root filesystem) or an OCI image layout.
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// The document format.
        #[arg(short = 'o', long = "format", value_enum, default_value_t = SbomFormat::SpdxJson)]
        format: SbomFormat,
        /// Write the document to this file (atomically) instead of stdout.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Who the SBOM data is by: `Person: NAME` or `Organization: NAME` (a bare name is an
        /// organisation). Repeatable.
        #[arg(long, value_name = "AUTHOR")]
        author: Vec<String>,
        /// The document's creation time, RFC 3339 (default now), for reproducible output.
        #[arg(long, value_name = "TIME")]
        created: Option<String>,
        /// In a layout holding several images: the one whose org.opencontainers.image.ref.name
        /// annotation is NAME.
        #[arg(long = "ref", value_name = "NAME")]
        ref_name: Option<String>,
        /// In a multi-platform image: `os/arch[/variant]` (default this host's `linux/<arch>`).
        #[arg(long, value_name = "PLATFORM")]
        platform: Option<String>,
    },
    /// Check or print an attestation log: the signed record every container start appends.
    Attestation {
        #[command(subcommand)]
        command: AttestationCommand,
    },
}

#[derive(Subcommand)]
enum AttestationCommand {
    /// Check every record of a log: its DSSE signature by a node key (chosen by keyid), the hash
    /// chain (a deleted, reordered or edited record is reported with its position), each TPM quote
    /// with the AK and its qualifying data against the record, and with --event-log the PCR values
    /// by replay. Exit 0 valid, 1 not, 2 unreadable input.
    Verify {
        /// The log, e.g. /var/lib/vouch/attestations.jsonl.
        #[arg(value_name = "LOG")]
        log: PathBuf,
        /// A node public key (PEM). Repeat it for the keys of a rotation.
        #[arg(long = "node-key", value_name = "PUB", required = true)]
        node_keys: Vec<PathBuf>,
        /// The TPM attestation key (PEM): quotes must verify with it, and records must name it.
        /// Without it each quote is checked against the AK its record carries.
        #[arg(long, value_name = "PUB")]
        ak: Option<PathBuf>,
        /// The TPM event log, to replay each quoted PCR value.
        #[arg(long, value_name = "F")]
        event_log: Option<PathBuf>,
    },
    /// Print the records of a log as a table (time, container, image, decision, reasons), or with
    /// --output json their predicates. Nothing is verified here: use `vouch attestation verify`.
    /// Exit 0, 1 if some lines do not decode, 2 if the log cannot be read.
    Show {
        /// The log, e.g. /var/lib/vouch/attestations.jsonl.
        #[arg(value_name = "LOG")]
        log: PathBuf,
    },
}

/// `vouch sbom -o`: the document format.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SbomFormat {
    #[value(name = "spdx-json")]
    SpdxJson,
    #[value(name = "cyclonedx-json")]
    CycloneDxJson,
}

/// `vouch attest --type`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PredicateType {
    /// An SPDX JSON document (`https://spdx.dev/Document`).
    Spdxjson,
    /// A CycloneDX JSON document (`https://cyclonedx.org/bom`).
    Cyclonedx,
    /// cosign's vulnerability scan predicate (`https://cosign.sigstore.dev/attestation/vuln/v1`).
    Vuln,
    /// An OpenVEX document (`https://openvex.dev/ns`).
    Openvex,
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
/// `vouch verify`: the gate denied.
const EXIT_DENIED: u8 = 1;
/// `vouch sign` and `vouch verify`: something went wrong before a verdict (or a signature).
const EXIT_ERROR: u8 = 2;
/// `vouch attestation verify`: the log is not valid; `show`: some lines do not decode.
const EXIT_NOT_VALID: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Policy {
            command: PolicyCommand::Check { policy },
        } => policy_check(policy, cli.output),
        Command::Gate => gate::run(),
        Command::Keygen { prefix, force } => keygen(prefix, *force, cli.output),
        Command::Sign {
            image,
            key,
            signature_repository,
        } => sign(
            cli.config.as_deref(),
            image,
            key,
            signature_repository.as_deref(),
            cli.output,
        ),
        Command::Attest {
            image,
            predicate,
            predicate_type,
            key,
            signature_repository,
        } => attest(
            cli.config.as_deref(),
            image,
            predicate,
            *predicate_type,
            key,
            signature_repository.as_deref(),
            cli.output,
        ),
        Command::Verify {
            image,
            policy,
            namespace,
            measure,
            containerd,
            containerd_namespace,
            layout,
        } => verify(
            cli.config.as_deref(),
            image,
            policy.as_deref(),
            namespace.as_deref(),
            measure.then_some(MeasureFrom {
                containerd,
                namespace: containerd_namespace,
                layout: layout.as_deref(),
            }),
            cli.output,
        ),
        Command::VerifyBlob(args) => {
            verify_blob::run(cli.config.as_deref(), args, cli.output == Output::Json)
        }
        Command::Sbom {
            path,
            format,
            file,
            author,
            created,
            ref_name,
            platform,
        } => sbom(
            path,
            *format,
            file.as_deref(),
            author,
            created.as_deref(),
            ref_name,
            platform,
        ),
        Command::Attestation {
            command:
                AttestationCommand::Verify {
                    log,
                    node_keys,
                    ak,
                    event_log,
                },
        } => attestation_verify(
            log,
            node_keys,
            ak.as_deref(),
            event_log.as_deref(),
            cli.output,
        ),
        Command::Attestation {
            command: AttestationCommand::Show { log },
        } => attestation_show(log, cli.output),
    }
}

fn attestation_verify(
    log: &Path,
    node_keys: &[PathBuf],
    ak: Option<&Path>,
    event_log: Option<&Path>,
    output: Output,
) -> ExitCode {
    use vouch_verifier::attestlog;
    let fail = |e: String| {
        eprintln!("vouch attestation verify: {e}");
        ExitCode::from(EXIT_ERROR)
    };
    let keys = match node_keys
        .iter()
        .map(|k| attestlog::read_public_key(k).map(|(_, key)| key))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(k) => k,
        Err(e) => return fail(e.to_string()),
    };
    let ak = match ak.map(attestlog::read_public_key).transpose() {
        Ok(ak) => ak.map(|(pem, _)| pem),
        Err(e) => return fail(e.to_string()),
    };
    let report = match attestlog::verify_log(log, &keys, ak.as_deref(), event_log) {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    match output {
        Output::Text => {
            for p in &report.problems {
                println!("{p}");
            }
            println!("{}", report.summary());
        }
        Output::Json => {
            let mut value = json!(report);
            value["valid"] = json!(report.is_valid());
            println!("{value}");
        }
    }
    if report.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NOT_VALID)
    }
}

fn attestation_show(log: &Path, output: Output) -> ExitCode {
    use std::io::Write;
    use vouch_verifier::attestlog;
    let records = match attestlog::read_log(log) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vouch attestation show: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let undecoded = records.iter().filter(|r| r.predicate.is_err()).count();
    let text = match output {
        Output::Text => attestlog::table(&records),
        Output::Json => {
            for r in &records {
                if let Err(e) = &r.predicate {
                    eprintln!("vouch attestation show: line {}: {e}", r.position);
                }
            }
            let predicates: Vec<_> = records
                .iter()
                .filter_map(|r| r.predicate.as_ref().ok())
                .collect();
            json!(predicates).to_string()
        }
    };
    // A log is long and often piped into `head`: a closed pipe is not an error worth a panic.
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() {
        return ExitCode::from(EXIT_ERROR);
    }
    if undecoded == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NOT_VALID)
    }
}

/// Loads the node config the way the gate finds it (`--config`, `$VOUCH_CONFIG`, the default).
fn node_config(config: Option<&Path>) -> Result<vouch_verifier::config::Config, String> {
    vouch_verifier::config::locate(config)
        .load()
        .map_err(|e| e.to_string())
}

fn registry_of(
    config: &vouch_verifier::config::Config,
) -> Result<vouch_verifier::registry::Registry, String> {
    vouch_verifier::registry::Registry::new(&config.registry).map_err(|e| e.to_string())
}

fn sign(
    config: Option<&Path>,
    image: &str,
    key: &Path,
    signature_repository: Option<&str>,
    output: Output,
) -> ExitCode {
    use vouch_verifier::cosign_key::{self, SigningKey};
    use vouch_verifier::sign;
    let signed = (|| -> Result<sign::Signed, String> {
        let config = node_config(config)?;
        let password = cosign_key::password_from_env().map_err(|e| e.to_string())?;
        let key = SigningKey::from_encrypted_file(key, &password).map_err(|e| e.to_string())?;
        let registry = registry_of(&config)?;
        sign::sign_image(&registry, &key, image, signature_repository).map_err(|e| e.to_string())
    })();
    let signed = match signed {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vouch sign: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match output {
        Output::Text => {
            println!("vouch: signed {}@{}", signed.repository, signed.digest);
            if signed.added {
                println!(
                    "vouch: signature pushed to {} ({} signature{} there)",
                    signed.signature_ref,
                    signed.signatures,
                    if signed.signatures == 1 { "" } else { "s" }
                );
            } else {
                println!(
                    "vouch: this key had already signed it: {} unchanged",
                    signed.signature_ref
                );
            }
        }
        Output::Json => match serde_json::to_string(&signed) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("vouch sign: cannot render JSON: {e}");
                return ExitCode::from(EXIT_ERROR);
            }
        },
    }
    ExitCode::SUCCESS
}

fn attest(
    config: Option<&Path>,
    image: &str,
    predicate: &Path,
    predicate_type: PredicateType,
    key: &Path,
    signature_repository: Option<&str>,
    output: Output,
) -> ExitCode {
    use vouch_verifier::attest::{self, PredicateFormat};
    use vouch_verifier::cosign_key::{self, SigningKey};
    let format = match predicate_type {
        PredicateType::Spdxjson => PredicateFormat::SpdxJson,
        PredicateType::Cyclonedx => PredicateFormat::CycloneDx,
        PredicateType::Vuln => PredicateFormat::Vuln,
        PredicateType::Openvex => PredicateFormat::OpenVex,
    };
    let attested = (|| -> Result<attest::Attested, String> {
        let file = attest::read_predicate(predicate).map_err(|e| e.to_string())?;
        // The file is checked before anything else is asked for (password, registry).
        attest::predicate_json(format, &file)
            .map_err(|reason| format!("{}: {reason}", predicate.display()))?;
        let config = node_config(config)?;
        let password = cosign_key::password_from_env().map_err(|e| e.to_string())?;
        let key = SigningKey::from_encrypted_file(key, &password).map_err(|e| e.to_string())?;
        let registry = registry_of(&config)?;
        attest::attest_image(&registry, &key, image, format, &file, signature_repository)
            .map_err(|e| e.to_string())
    })();
    let attested = match attested {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vouch attest: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match output {
        Output::Text => {
            println!(
                "vouch: attested {}@{} ({})",
                attested.repository, attested.digest, attested.predicate_type
            );
            if attested.added {
                println!(
                    "vouch: attestation pushed to {} ({} attestation{} there)",
                    attested.attestation_ref,
                    attested.attestations,
                    if attested.attestations == 1 { "" } else { "s" }
                );
            } else {
                println!(
                    "vouch: this key had already attested this statement: {} unchanged",
                    attested.attestation_ref
                );
            }
        }
        Output::Json => match serde_json::to_string(&attested) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("vouch attest: cannot render JSON: {e}");
                return ExitCode::from(EXIT_ERROR);
            }
        },
    }
    ExitCode::SUCCESS
}

/// Where `vouch verify --measure` reads layer blobs.
struct MeasureFrom<'a> {
    containerd: &'a str,
    namespace: &'a str,
    layout: Option<&'a Path>,
}

/// The image's unpacked tree from its layer blobs, and this host.
fn measurement(
    config: Option<&Path>,
    digest: &str,
    from: &MeasureFrom<'_>,
) -> Result<serde_json::Value, String> {
    use vouch_verifier::baseline::{self, BlobSource};
    let config = node_config(config)?;
    let source: Box<dyn BlobSource> = match from.layout {
        Some(dir) => Box::new(baseline::OciLayout {
            dir: dir.to_path_buf(),
        }),
        None => Box::new(baseline::ContainerdContent::new(
            from.containerd,
            from.namespace,
        )),
    };
    let image = baseline::measure_image(
        source.as_ref(),
        digest,
        &config.state_dir,
        vouch_verifier::measure::Options::default().max_entries,
    )
    .map_err(|e| e.to_string())?;
    let host = vouch_verifier::host::collect(
        &vouch_verifier::host::HostPaths::default(),
        &vouch_verifier::host::Inputs {
            runc: Some("runc"),
            ..Default::default()
        },
    );
    Ok(serde_json::json!({ "image": image, "host": host }))
}

fn verify(
    config: Option<&Path>,
    image: &str,
    policy: Option<&Path>,
    namespace: Option<&str>,
    measure: Option<MeasureFrom<'_>>,
    output: Output,
) -> ExitCode {
    use vouch_verifier::sign;
    use vouch_verifier::{Gate, NodeGate, Verdict};
    let fail = |e: String| {
        eprintln!("vouch verify: {e}");
        ExitCode::from(EXIT_ERROR)
    };
    let pinned = match vouch_verifier::ImageIdentity::from_pinned_reference(image) {
        Ok(p) => p,
        Err(e) => return fail(e.to_string()),
    };
    // The config is needed to reach the registry (a tag) or to carry it over with another
    // policy; otherwise the gate reads it itself, and a broken one is its denial, as at a start.
    let loaded = if pinned.is_none() || policy.is_some() {
        match node_config(config) {
            Ok(c) => Some(c),
            Err(e) => return fail(e),
        }
    } else {
        None
    };
    let identity = match (pinned, &loaded) {
        (Some(identity), _) => identity,
        (None, Some(config)) => {
            match registry_of(config)
                .and_then(|r| sign::resolve_image(&r, image).map_err(|e| e.to_string()))
            {
                Ok(identity) => identity,
                Err(e) => return fail(format!("cannot resolve {image}: {e}")),
            }
        }
        (None, None) => return fail(format!("cannot resolve {image}")),
    };
    let overridden = match (policy, &loaded) {
        (Some(policy), Some(config)) => match verify_request::policy_override(config, policy) {
            Ok(o) => Some(o),
            Err(e) => return fail(e.to_string()),
        },
        _ => None,
    };
    let config_path = overridden.as_ref().map(|o| o.path()).or(config);
    let digest = identity.digest.clone();
    let request = verify_request::gate_request(identity, namespace, config_path);
    let verdict = NodeGate::default().admit(&request);
    drop(overridden);
    let measured = match &measure {
        Some(from) => match measurement(config, &digest, from) {
            Ok(m) => Some(m),
            Err(e) => return fail(format!("cannot measure {digest}: {e}")),
        },
        None => None,
    };
    let code = match &verdict {
        Verdict::Allow(_) => ExitCode::SUCCESS,
        Verdict::Deny(_) => ExitCode::from(EXIT_DENIED),
    };
    match output {
        Output::Text => {
            for line in verdict_lines(&verdict) {
                println!("{line}");
            }
            if let Some(m) = &measured {
                for line in measurement_lines(m) {
                    println!("{line}");
                }
            }
        }
        Output::Json => {
            let mut value = serde_json::to_value(&verdict).unwrap_or_default();
            if let (Some(map), Some(m)) = (value.as_object_mut(), measured) {
                map.insert("measurement".into(), m);
            }
            println!("{value}");
        }
    }
    code
}

/// `vouch verify --measure` as text.
fn measurement_lines(m: &serde_json::Value) -> Vec<String> {
    let image = &m["image"];
    let host = &m["host"];
    let mut lines = vec![format!(
        "measurement: {} unpacks to {} paths ({} files), tree {}",
        image["image_digest"].as_str().unwrap_or(""),
        image["entries"],
        image["files"],
        image["tree_digest"].as_str().unwrap_or("")
    )];
    if let Some(layers) = image["layers"].as_array() {
        for (i, l) in layers.iter().enumerate() {
            lines.push(format!(
                "  layer {}: {} ({} paths, {} files)",
                i + 1,
                l["digest"].as_str().unwrap_or(""),
                l["entries"],
                l["files"]
            ));
        }
    }
    let list = |v: &serde_json::Value| match v.as_array() {
        Some(a) => a
            .iter()
            .filter_map(|x| x.as_str())
            .collect::<Vec<_>>()
            .join(","),
        None => "(not available)".into(),
    };
    lines.push(format!(
        "host: kernel {}, LSMs {}, {} modules, runc {}",
        host["kernel_release"].as_str().unwrap_or("?"),
        list(&host["lsm"]),
        host["modules"]
            .as_array()
            .map_or("no loadable".into(), |m| m.len().to_string()),
        host["runc"]["sha256"]
            .as_str()
            .map(|d| format!("sha256:{d}"))
            .unwrap_or_else(|| "(not found)".into())
    ));
    lines
}

fn sbom(
    path: &Path,
    format: SbomFormat,
    file: Option<&Path>,
    authors: &[String],
    created: Option<&str>,
    ref_name: &Option<String>,
    platform: &Option<String>,
) -> ExitCode {
    use std::io::Write;
    use vouch_verifier::sbomgen::{self, Author, Options, OutputFormat};
    let fail = |e: String| {
        eprintln!("vouch sbom: {e}");
        ExitCode::from(EXIT_ERROR)
    };
    let authors = match authors.iter().map(|a| Author::parse(a)).collect() {
        Ok(a) => a,
        Err(e) => return fail(e.to_string()),
    };
    let created = match created
        .map(|c| time::OffsetDateTime::parse(c, &time::format_description::well_known::Rfc3339))
        .transpose()
    {
        Ok(c) => c,
        Err(e) => return fail(format!("invalid --created (RFC 3339 wanted): {e}")),
    };
    let options = Options {
        format: match format {
            SbomFormat::SpdxJson => OutputFormat::SpdxJson,
            SbomFormat::CycloneDxJson => OutputFormat::CycloneDxJson,
        },
        authors,
        created,
        selector: sbomgen::oci::Selector {
            ref_name: ref_name.clone(),
            platform: platform.clone(),
        },
        limits: sbomgen::Limits::default(),
    };
    let generated = match sbomgen::generate(path, &options) {
        Ok(g) => g,
        Err(e) => return fail(e.to_string()),
    };
    const SHOWN: usize = 20;
    for w in generated.summary.warnings.iter().take(SHOWN) {
        eprintln!("vouch sbom: warning: {w}");
    }
    if generated.summary.warnings.len() > SHOWN {
        eprintln!(
            "vouch sbom: warning: and {} more",
            generated.summary.warnings.len() - SHOWN
        );
    }
    let written = match file {
        Some(file) => {
            sbomgen::write_atomically(file, &generated.document).map_err(|e| e.to_string())
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&generated.document)
                .and_then(|_| out.flush())
                .map_err(|e| format!("cannot write to stdout: {e}"))
        }
    };
    if let Err(e) = written {
        return fail(e);
    }
    eprintln!("vouch sbom: {}", generated.summary);
    ExitCode::SUCCESS
}

#[cfg(test)]
mod sbom_tests {
    use super::*;

    #[test]
    fn dash_o_is_the_sbom_format_beside_the_global_output() {
        let cli = Cli::try_parse_from([
            "vouch",
            "--output",
            "json",
            "sbom",
            "/rootfs",
            "-o",
            "cyclonedx-json",
            "--author",
            "Person: A",
            "--author",
            "Organization: B",
            "--ref",
            "app:1",
        ])
        .unwrap();
        let Command::Sbom {
            path,
            format,
            author,
            ref_name,
            ..
        } = cli.command
        else {
            panic!("not the sbom command");
        };
        assert_eq!(path, Path::new("/rootfs"));
        assert!(format == SbomFormat::CycloneDxJson);
        assert_eq!(author, ["Person: A", "Organization: B"]);
        assert_eq!(ref_name.as_deref(), Some("app:1"));
        let cli = Cli::try_parse_from(["vouch", "sbom", "/rootfs"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Sbom {
                format: SbomFormat::SpdxJson,
                ..
            }
        ));
        assert!(Cli::try_parse_from(["vouch", "sbom", "/rootfs", "-o", "text"]).is_err());
    }
}

/// The verdict for people: the allow line (or the shim's denial line), then any audited denials.
fn verdict_lines(verdict: &vouch_verifier::Verdict) -> Vec<String> {
    use vouch_verifier::Verdict;
    match verdict {
        Verdict::Deny(d) => vec![d.to_string()],
        Verdict::Allow(e) => {
            let subject = e
                .image
                .as_ref()
                .map(|i| i.subject())
                .unwrap_or_else(|| "container (no image)".to_string());
            let why = match (&e.exempt, e.rules.is_empty()) {
                (Some(exempt), _) => format!("exempt: {exempt}"),
                (None, false) => format!("rules: {}", e.rules.join(", ")),
                (None, true) => "no rule".to_string(),
            };
            let mut lines = vec![format!("vouch: allowed {subject} ({why})")];
            lines.extend(e.audited.iter().map(|a| format!("audit: {a}")));
            lines
        }
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
    let mut line = format!(
        "rule \"{}\": {what} images {} {where_}",
        rule.name,
        list(&rule.images)
    );
    if let Some(v) = &rule.verify {
        let who: Vec<String> = v.authorities.iter().map(describe_authority).collect();
        line.push_str(&format!(
            "; requires signatures by {} of: {}{}{}",
            v.threshold,
            who.join(", "),
            v.signature_repository
                .as_ref()
                .map(|r| format!("; signatures in {r}"))
                .unwrap_or_default(),
            if v.require_identity_match {
                ""
            } else {
                "; a signature made for another repository counts"
            }
        ));
    }
    if let Some(req) = &rule.sbom {
        line.push_str(&format!(
            "; {}",
            vouch_verifier::sbom_rule::describe(req).join("; ")
        ));
    }
    for part in rule
        .rootfs
        .iter()
        .map(|r| r.describe())
        .chain(rule.host.iter().map(|h| h.describe()))
    {
        line.push_str("; ");
        line.push_str(&part);
    }
    line
}

fn describe_authority(a: &vouch_verifier::policy::Authority) -> String {
    use vouch_verifier::policy::{Match, Trust};
    let show = |m: &Match| match m {
        Match::Exact(e) => e.clone(),
        Match::Regex(r) => format!("/{r}/"),
    };
    let what = match &a.trust {
        Trust::Key(p) => format!("key {}", p.display()),
        Trust::Keyless(k) => {
            let mut what = format!(
                "keyless {} from {} (root {})",
                show(&k.subject),
                show(&k.issuer),
                k.trusted_root.display()
            );
            if !k.witnesses.is_empty() {
                let names: Vec<&str> = k
                    .witnesses
                    .iter()
                    .map(|v| v.split_once('+').map_or(v.as_str(), |(name, _)| name))
                    .collect();
                what.push_str(&match k.witness_quorum {
                    0 => format!(
                        ", cosignatures of witnesses {} verified where present",
                        names.join(", ")
                    ),
                    n => format!(
                        ", cosigned by at least {n} of the witnesses {}",
                        names.join(", ")
                    ),
                });
            }
            what
        }
    };
    let rfc3339 = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| t.to_string())
    };
    let mut s = format!("\"{}\" ({what}", a.name);
    if let Some(f) = a.valid_from {
        s.push_str(&format!(", from {}", rfc3339(f)));
    }
    if let Some(u) = a.valid_until {
        s.push_str(&format!(", until {}", rfc3339(u)));
    }
    s.push(')');
    s
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

    #[test]
    fn a_keyless_authority_reads_with_its_witnesses() {
        let text = r#"version = 1
[[rule]]
name = "ci"
images = ["ghcr.io/acme/*"]
action = "verify"
[[rule.authority]]
name = "gha"
keyless = { trusted_root = "/r.json", issuer = "https://token.actions.githubusercontent.com", subject_regex = "https://github\\.com/acme/.*", witnesses = ["witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv", "witness.navigli.sunlight.geomys.org+a3e00fe2+BNy/co4C1Hn1p+INwJrfUlgz7W55dSZReusH/GhUhJ/G"], witness_quorum = 1 }
"#;
        let loaded = policy::parse(Path::new("/p.toml"), text.as_bytes()).unwrap();
        let v = loaded.policy.rules[0].verify.as_ref().unwrap();
        assert_eq!(
            describe_authority(&v.authorities[0]),
            "\"gha\" (keyless /https://github\\.com/acme/.*/ from \
             https://token.actions.githubusercontent.com (root /r.json), cosigned by at least 1 of \
             the witnesses witness.stagemole.eu, witness.navigli.sunlight.geomys.org)"
        );
    }
}

#[cfg(test)]
mod attestation_tests {
    use super::*;
    use vouch_verifier::attestlog::{self, Decision, DecisionKind, LogSettings};

    #[test]
    fn attestation_verbs_parse_with_repeated_node_keys() {
        let cli = Cli::try_parse_from([
            "vouch",
            "attestation",
            "verify",
            "/log",
            "--node-key",
            "a.pub",
            "--node-key",
            "b.pub",
            "--ak",
            "ak.pub",
            "--event-log",
            "events",
        ])
        .unwrap();
        let Command::Attestation {
            command:
                AttestationCommand::Verify {
                    log,
                    node_keys,
                    ak,
                    event_log,
                },
        } = cli.command
        else {
            panic!("not attestation verify");
        };
        assert_eq!(log, Path::new("/log"));
        assert_eq!(node_keys, [PathBuf::from("a.pub"), PathBuf::from("b.pub")]);
        assert_eq!(ak, Some(PathBuf::from("ak.pub")));
        assert_eq!(event_log, Some(PathBuf::from("events")));
        assert!(Cli::try_parse_from(["vouch", "attestation", "verify", "/log"]).is_err());
        let cli = Cli::try_parse_from(["vouch", "attestation", "show", "/log", "--output", "json"])
            .unwrap();
        assert!(cli.output == Output::Json);
        assert!(matches!(
            cli.command,
            Command::Attestation {
                command: AttestationCommand::Show { .. }
            }
        ));
    }

    #[test]
    fn attestation_verify_exits_0_valid_1_invalid_2_unreadable() {
        use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let dir = tempfile::tempdir().unwrap();
        let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let key_path = dir.path().join("node.key");
        std::fs::write(
            &key_path,
            key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
        )
        .unwrap();
        let pub_path = dir.path().join("node.pub");
        let public = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        std::fs::write(&pub_path, public).unwrap();
        let log = dir.path().join("attestations.jsonl");
        let mut settings = LogSettings {
            key: Some(key_path),
            ..LogSettings::new(&log)
        };
        for i in 0..3 {
            attestlog::append(
                &mut settings,
                &Decision::new(format!("c{i}"), DecisionKind::Deny),
            )
            .unwrap();
        }
        let keys = [pub_path.clone()];
        let verify = |output| attestation_verify(&log, &keys, None, None, output);
        assert_eq!(verify(Output::Text), ExitCode::SUCCESS);
        assert_eq!(verify(Output::Json), ExitCode::SUCCESS);
        assert_eq!(attestation_show(&log, Output::Json), ExitCode::SUCCESS);

        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(&log, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
        assert_eq!(verify(Output::Text), ExitCode::from(EXIT_NOT_VALID));

        let missing = [dir.path().join("missing.pub")];
        assert_eq!(
            attestation_verify(&log, &missing, None, None, Output::Text),
            ExitCode::from(EXIT_ERROR)
        );
        assert_eq!(
            attestation_show(&dir.path().join("nothing"), Output::Text),
            ExitCode::from(EXIT_ERROR)
        );
    }
}

//! `vouch attest`: publishing an SBOM, vulnerability report or VEX document about an image as a
//! signed in-toto attestation, the way `cosign attest --key K --tlog-upload=false` (cosign 2.x)
//! does.
//!
//! The statement is an in-toto Statement v0.1 with one subject, the image's repository (as
//! go-containerregistry names it) at its manifest digest, and the predicate read from a JSON file.
//! It is encoded as cosign's Go code encodes it (fields in struct order, object keys sorted,
//! `<`, `>` and `&` escaped), wrapped in a DSSE envelope signed over its pre-authentication
//! encoding, and stored as a layer (`application/vnd.dsse.envelope.v1+json`, annotated with its
//! `predicateType`) of the OCI manifest tagged `sha256-<hex>.att` in the image's repository or in a
//! signature repository. An existing `.att` manifest keeps its layers and gains one; the same
//! statement already attested with the same key is not added twice. Nothing goes to Rekor.

use std::io::Read;
use std::path::Path;

use base64::Engine;
use serde::Serialize;

use crate::cosign_key::{KeyError, SigningKey};
use crate::keys::PublicKey;
use crate::reference::Reference;
use crate::registry::{
    is_image_manifest, sha256_digest, tag_schema_tag, Descriptor, ManifestDocument, Registry,
    RegistryError, ANNOTATION_PREDICATE_TYPE, DSSE_ENVELOPE, OCI_MANIFEST,
};
use crate::sign::{cosign_manifest, docker_reference, push_cosign_manifest, DEFAULT_TAG};
use crate::signature::{IN_TOTO_PAYLOAD_TYPE, STATEMENT_V01};

/// Largest predicate file read.
pub const MAX_PREDICATE_BYTES: u64 = 32 * 1024 * 1024;

pub type Result<T, E = AttestError> = std::result::Result<T, E>;

/// What can go wrong attesting an image; each renders as one line.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    #[error(transparent)]
    Reference(#[from] crate::Error),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The predicate file cannot be read or is not what `--type` needs.
    #[error("{path}: {reason}")]
    Predicate { path: String, reason: String },
    /// The existing `.att` manifest is not something an attestation can be added to.
    #[error("{what}: {reason}")]
    AttestationManifest { what: String, reason: String },
}

/// `--type`: which predicate the file is, as cosign names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredicateFormat {
    /// `spdxjson`: an SPDX JSON document.
    SpdxJson,
    /// `cyclonedx`: a CycloneDX JSON document.
    CycloneDx,
    /// `vuln`: cosign's vulnerability scan predicate (`{invocation, scanner, metadata}`).
    Vuln,
    /// `openvex`: an OpenVEX document.
    OpenVex,
}

impl PredicateFormat {
    /// From cosign's `--type` name.
    pub fn parse(name: &str) -> Option<PredicateFormat> {
        match name {
            "spdxjson" => Some(PredicateFormat::SpdxJson),
            "cyclonedx" => Some(PredicateFormat::CycloneDx),
            "vuln" => Some(PredicateFormat::Vuln),
            "openvex" => Some(PredicateFormat::OpenVex),
            _ => None,
        }
    }

    /// The statement's `predicateType`.
    pub fn predicate_type(self) -> &'static str {
        use crate::attestation::*;
        match self {
            PredicateFormat::SpdxJson => SPDX_PREDICATE,
            PredicateFormat::CycloneDx => CYCLONEDX_PREDICATE,
            PredicateFormat::Vuln => VULN_PREDICATE,
            PredicateFormat::OpenVex => OPENVEX_PREDICATE,
        }
    }
}

/// Reads a predicate file, at most [`MAX_PREDICATE_BYTES`].
pub fn read_predicate(path: &Path) -> Result<Vec<u8>> {
    let fail = |reason: String| AttestError::Predicate {
        path: path.display().to_string(),
        reason,
    };
    let f = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut bytes = Vec::new();
    f.take(MAX_PREDICATE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_PREDICATE_BYTES {
        return Err(fail(format!("larger than {MAX_PREDICATE_BYTES} bytes")));
    }
    Ok(bytes)
}

/// JSON as Go's `encoding/json` writes it: serde_json's compact output (object keys sorted, as
/// Go sorts map keys) with Go's HTML-safe escapes.
fn go_json(value: &serde_json::Value) -> String {
    go_escape(&value.to_string())
}

/// Go escapes `<`, `>`, `&`, U+2028 and U+2029 in strings; in JSON text they occur only in strings.
fn go_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The predicate `cosign attest --type <format>` makes of the file's JSON, as JSON text.
pub fn predicate_json(format: PredicateFormat, file: &[u8]) -> Result<String, String> {
    let value: serde_json::Value =
        serde_json::from_slice(file).map_err(|e| format!("not valid JSON: {e}"))?;
    let object = value
        .as_object()
        .ok_or_else(|| "not a JSON object".to_string())?;
    match format {
        PredicateFormat::SpdxJson | PredicateFormat::CycloneDx | PredicateFormat::OpenVex => {
            Ok(go_json(&value))
        }
        PredicateFormat::Vuln => vuln_predicate(object),
    }
}

/// cosign reads a `vuln` file into its `CosignVulnPredicate` (Go's case-insensitive field
/// matching, unknown fields dropped) and writes that struct back. A file without a `scanner` object
/// would give an empty predicate that says nothing: refused here.
fn vuln_predicate(file: &serde_json::Map<String, serde_json::Value>) -> Result<String, String> {
    use serde_json::Value;
    fn field<'a>(m: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
        m.get(name).or_else(|| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
    }
    fn object<'a>(
        m: &'a serde_json::Map<String, Value>,
        name: &str,
    ) -> Result<Option<&'a serde_json::Map<String, Value>>, String> {
        match field(m, name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(_) => Err(format!("{name} is not an object")),
        }
    }
    let empty = serde_json::Map::new();
    let text = |m: &serde_json::Map<String, Value>, name: &str| -> Result<String, String> {
        match field(m, name) {
            None | Some(Value::Null) => Ok(go_json(&Value::String(String::new()))),
            Some(v @ Value::String(_)) => Ok(go_json(v)),
            Some(_) => Err(format!("{name} is not a string")),
        }
    };
    let any = |m: &serde_json::Map<String, Value>, name: &str| -> String {
        field(m, name).map(go_json).unwrap_or_else(|| "null".into())
    };
    let time = |m: &serde_json::Map<String, Value>, name: &str| -> Result<String, String> {
        match field(m, name) {
            None | Some(Value::Null) => Ok("\"0001-01-01T00:00:00Z\"".into()),
            Some(Value::String(s)) if crate::signature::parse_rfc3339(s).is_some() => {
                Ok(go_json(&Value::String(s.clone())))
            }
            Some(_) => Err(format!("metadata.{name} is not an RFC 3339 time")),
        }
    };
    let scanner = object(file, "scanner")?.ok_or_else(|| {
        "not a cosign vulnerability predicate ({invocation, scanner: {uri, version, db, result}, metadata}): it has no scanner"
            .to_string()
    })?;
    let invocation = object(file, "invocation")?.unwrap_or(&empty);
    let db = object(scanner, "db")?.unwrap_or(&empty);
    let metadata = object(file, "metadata")?.unwrap_or(&empty);
    Ok(format!(
        "{{\"invocation\":{{\"parameters\":{},\"uri\":{},\"event_id\":{},\"builder.id\":{}}},\"scanner\":{{\"uri\":{},\"version\":{},\"db\":{{\"uri\":{},\"version\":{}}},\"result\":{}}},\"metadata\":{{\"scanStartedOn\":{},\"scanFinishedOn\":{}}}}}",
        any(invocation, "parameters"),
        text(invocation, "uri")?,
        text(invocation, "event_id")?,
        text(invocation, "builder.id")?,
        text(scanner, "uri")?,
        text(scanner, "version")?,
        text(db, "uri")?,
        text(db, "version")?,
        any(scanner, "result"),
        time(metadata, "scanStartedOn")?,
        time(metadata, "scanFinishedOn")?,
    ))
}

/// The in-toto Statement v0.1 cosign 2.x writes: `_type`, `predicateType`, one subject
/// `{name: <repository>, digest: {sha256: <hex>}}`, then the predicate (JSON text).
pub fn statement(predicate_type: &str, repository: &str, digest: &str, predicate: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let s = |v: &str| go_json(&serde_json::Value::String(v.to_string()));
    format!(
        "{{\"_type\":{},\"predicateType\":{},\"subject\":[{{\"name\":{},\"digest\":{{\"sha256\":{}}}}}],\"predicate\":{predicate}}}",
        s(STATEMENT_V01),
        s(predicate_type),
        s(&docker_reference(repository)),
        s(hex),
    )
    .into_bytes()
}

/// A DSSE envelope over `payload` (an in-toto statement) signed by `key`, as sigstore's Go DSSE
/// signer writes it: `{"payloadType","payload","signatures":[{"keyid":"","sig"}]}`.
pub fn envelope(payload: &[u8], key: &SigningKey) -> Result<Vec<u8>> {
    let signature = key.sign(&crate::dsse::pae(IN_TOTO_PAYLOAD_TYPE, payload))?;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let s = |v: &str| go_json(&serde_json::Value::String(v.to_string()));
    Ok(format!(
        "{{\"payloadType\":{},\"payload\":{},\"signatures\":[{{\"keyid\":\"\",\"sig\":{}}}]}}",
        s(IN_TOTO_PAYLOAD_TYPE),
        s(&b64(payload)),
        s(&b64(&signature)),
    )
    .into_bytes())
}

/// The new state of an `.att` manifest after [`add_attestation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttestationManifest {
    /// Layer `index` already holds this statement, by this key: nothing to push.
    AlreadyAttested { index: usize },
    /// The manifest to push, and its config blob (already referenced by `manifest.config`).
    Updated {
        manifest: Box<ManifestDocument>,
        config: Vec<u8>,
    },
}

/// Adds a DSSE envelope layer annotated with `predicate_type` to the `.att` manifest `existing` (a
/// new OCI manifest when `None`), after the existing layers, as cosign appends. `same_attestation`
/// says whether an existing layer already holds this statement signed by this key (signatures
/// differ at every run: the envelope digests never match).
pub fn add_attestation(
    existing: Option<&ManifestDocument>,
    envelope: &[u8],
    predicate_type: &str,
    same_attestation: impl Fn(&Descriptor) -> bool,
) -> Result<AttestationManifest, String> {
    let (media_type, mut layers) = match existing {
        None => (OCI_MANIFEST.to_string(), Vec::new()),
        Some(doc) => {
            let media_type = doc.media_type.as_deref().unwrap_or(OCI_MANIFEST);
            if !is_image_manifest(media_type) || !doc.manifests.is_empty() {
                return Err(format!(
                    "media type {media_type} is not an image manifest: refusing to overwrite it"
                ));
            }
            (media_type.to_string(), doc.layers.clone())
        }
    };
    if let Some(index) = layers
        .iter()
        .position(|l| l.media_type == DSSE_ENVELOPE && same_attestation(l))
    {
        return Ok(AttestationManifest::AlreadyAttested { index });
    }
    layers.push(Descriptor {
        media_type: DSSE_ENVELOPE.to_string(),
        digest: sha256_digest(envelope),
        size: envelope.len() as u64,
        artifact_type: None,
        annotations: [(
            ANNOTATION_PREDICATE_TYPE.to_string(),
            predicate_type.to_string(),
        )]
        .into_iter()
        .collect(),
    });
    let (manifest, config) = cosign_manifest(media_type, layers, existing);
    Ok(AttestationManifest::Updated { manifest, config })
}

/// What [`attest_image`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attested {
    /// The normalised repository of the image.
    pub repository: String,
    /// The manifest (or index) digest the statement is about.
    pub digest: String,
    pub predicate_type: String,
    /// `sha256:<hex>` of the statement (the DSSE payload).
    pub statement_digest: String,
    /// Where the attestation is: `<repository>:sha256-<hex>.att`.
    pub attestation_ref: String,
    /// The digest of the `.att` manifest now under that tag.
    pub attestation_manifest: String,
    /// False when this key had already attested this statement there (nothing was pushed).
    pub added: bool,
    /// How many layers (attestations) the `.att` manifest holds.
    pub attestations: usize,
}

/// Attests `image_ref` with the predicate `file` (JSON, of `format`) signed by `key`, and stores
/// the attestation where cosign would: the `.att` tag of the digest in the image's repository, or
/// in `signature_repository`. A tag is resolved to its digest; a pinned digest must exist.
pub fn attest_image(
    registry: &Registry,
    key: &SigningKey,
    image_ref: &str,
    format: PredicateFormat,
    file: &[u8],
    signature_repository: Option<&str>,
) -> Result<Attested> {
    let reference = Reference::parse(image_ref)?;
    let repository = reference.repository.clone();
    let at = reference
        .digest
        .clone()
        .unwrap_or_else(|| reference.tag.clone().unwrap_or_else(|| DEFAULT_TAG.into()));
    let digest = registry.get_manifest(&repository, &at)?.digest;
    let att_repo = match signature_repository {
        Some(r) => {
            let parsed = Reference::parse(r)?;
            if parsed.tag.is_some() || parsed.digest.is_some() {
                return Err(AttestError::Reference(crate::Error::Reference {
                    reference: r.to_string(),
                    reason: "a signature repository has no tag or digest".into(),
                }));
            }
            parsed.repository
        }
        None => repository.clone(),
    };
    let predicate = predicate_json(format, file).map_err(|reason| AttestError::Predicate {
        path: "predicate".into(),
        reason,
    })?;
    let predicate_type = format.predicate_type();
    let payload = statement(predicate_type, &repository, &digest, &predicate);
    let envelope = envelope(&payload, key)?;
    let tag = tag_schema_tag(&digest, ".att")?;
    let attestation_ref = format!("{att_repo}:{tag}");
    let what = format!("attestation manifest {attestation_ref}");

    let existing = match registry.get_manifest(&att_repo, &tag) {
        Ok(m) => {
            if !is_image_manifest(&m.media_type) {
                return Err(AttestError::AttestationManifest {
                    what,
                    reason: format!(
                        "media type {} is not an image manifest: refusing to overwrite it",
                        m.media_type
                    ),
                });
            }
            let doc = ManifestDocument::parse(&m.bytes).map_err(|reason| {
                AttestError::AttestationManifest {
                    what: what.clone(),
                    reason,
                }
            })?;
            Some((doc, m.digest))
        }
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    let public = PublicKey::from_spki_der(&key.public_key_der()?).ok();
    // Each check downloads a layer: at most this many (the most a verifier considers).
    let checks = std::cell::Cell::new(registry.limits().max_attestations);
    let same_attestation = |layer: &Descriptor| {
        // Only a layer claiming the same predicate type can hold the same statement.
        if layer
            .annotations
            .get(ANNOTATION_PREDICATE_TYPE)
            .map(String::as_str)
            != Some(predicate_type)
        {
            return false;
        }
        let Some(public) = public.as_ref() else {
            return false;
        };
        if checks.get() == 0 {
            return false;
        }
        checks.set(checks.get() - 1);
        let Ok(blob) = registry.get_blob(
            &att_repo,
            &layer.digest,
            registry.limits().attestation_layer(),
        ) else {
            return false;
        };
        same_statement(&blob, &payload, public)
    };
    let updated = add_attestation(
        existing.as_ref().map(|(d, _)| d),
        &envelope,
        predicate_type,
        same_attestation,
    )
    .map_err(|reason| AttestError::AttestationManifest {
        what: what.clone(),
        reason,
    })?;
    let statement_digest = sha256_digest(&payload);
    match updated {
        AttestationManifest::AlreadyAttested { .. } => {
            let (doc, manifest_digest) = existing.unwrap_or_default();
            Ok(Attested {
                repository,
                digest,
                predicate_type: predicate_type.into(),
                statement_digest,
                attestation_ref,
                attestation_manifest: manifest_digest,
                added: false,
                attestations: doc.layers.len(),
            })
        }
        AttestationManifest::Updated { manifest, config } => {
            let manifest_digest =
                push_cosign_manifest(registry, &att_repo, &tag, &envelope, &manifest, &config)?;
            Ok(Attested {
                repository,
                digest,
                predicate_type: predicate_type.into(),
                statement_digest,
                attestation_ref,
                attestation_manifest: manifest_digest,
                added: true,
                attestations: manifest.layers.len(),
            })
        }
    }
}

/// Whether the envelope `blob` carries exactly `payload` with a signature by `key`.
fn same_statement(blob: &[u8], payload: &[u8], key: &PublicKey) -> bool {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Env {
        payload_type: String,
        payload: String,
        signatures: Vec<Sig>,
    }
    #[derive(serde::Deserialize)]
    struct Sig {
        sig: String,
    }
    let Ok(env) = serde_json::from_slice::<Env>(blob) else {
        return false;
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    if env.payload_type != IN_TOTO_PAYLOAD_TYPE
        || b64.decode(&env.payload).ok().as_deref() != Some(payload)
    {
        return false;
    }
    let message = crate::dsse::pae(IN_TOTO_PAYLOAD_TYPE, payload);
    env.signatures
        .iter()
        .take(8)
        .filter_map(|s| b64.decode(&s.sig).ok())
        .any(|sig| key.verify(&message, &sig).is_ok())
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::attestation::{Signer, CYCLONEDX_PREDICATE};
    use crate::registry::tag_schema_tag;
    use crate::registry::test_registry::{fixture, identity, key_rule as rule, TestRegistry};
    use crate::sign::signature_config;

    #[test]
    fn attest_discover_verify_round_trip_appends_and_refuses_other_keys() {
        let reg = TestRegistry::start();
        let client = reg.client();
        let repo = reg.repo("team/app");
        let digest = reg.put_image("team/app", "v1", "app");
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate_p256().unwrap();
        let sbom = fixture("sbom/cyclonedx/syft-0.58.0_alpine-latest.cdx14.json");

        let first = attest_image(
            &client,
            &key,
            &format!("{repo}:v1"),
            PredicateFormat::CycloneDx,
            &sbom,
            None,
        )
        .unwrap();
        assert!(first.added);
        assert_eq!(first.attestations, 1);
        assert_eq!(first.digest, digest);
        let tag = tag_schema_tag(&digest, ".att").unwrap();
        assert_eq!(first.attestation_ref, format!("{repo}:{tag}"));
        let doc = ManifestDocument::parse(&reg.manifest("team/app", &tag).unwrap()).unwrap();
        assert_eq!(doc.layers[0].media_type, DSSE_ENVELOPE);
        assert_eq!(
            doc.layers[0].annotations[ANNOTATION_PREDICATE_TYPE],
            CYCLONEDX_PREDICATE
        );
        // The config lists the layers, as cosign's does.
        let config = reg.store.lock().unwrap().blobs[&doc.config.as_ref().unwrap().digest].clone();
        assert_eq!(config, signature_config(&doc.layers));

        let v = rule(dir.path(), &key, None);
        let image = identity(&repo, &digest);
        let report =
            crate::verify::attestations(&v, &image, &[], &client, SystemTime::now()).unwrap();
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        assert_eq!(report.attestations.len(), 1);
        let a = &report.attestations[0];
        assert!(matches!(&a.signer, Signer::Authority(s) if s.starts_with("release (key sha256:")));
        assert_eq!(
            a.predicate,
            serde_json::from_slice::<serde_json::Value>(&sbom).unwrap()
        );
        assert_eq!(a.digest, first.statement_digest);
        assert_eq!(a.subject_digest, digest);

        // The same statement again with the same key: nothing pushed.
        let again = attest_image(
            &client,
            &key,
            &format!("{repo}@{digest}"),
            PredicateFormat::CycloneDx,
            &sbom,
            None,
        )
        .unwrap();
        assert!(!again.added);
        assert_eq!(again.attestation_manifest, first.attestation_manifest);

        // Another predicate appends; both verify.
        let vex = fixture("attestations/trivy-project.openvex.json");
        let second = attest_image(
            &client,
            &key,
            &format!("{repo}:v1"),
            PredicateFormat::OpenVex,
            &vex,
            None,
        )
        .unwrap();
        assert!(second.added);
        assert_eq!(second.attestations, 2);
        let doc2 = ManifestDocument::parse(&reg.manifest("team/app", &tag).unwrap()).unwrap();
        assert_eq!(doc2.layers[0], doc.layers[0]);
        let report =
            crate::verify::attestations(&v, &image, &[], &client, SystemTime::now()).unwrap();
        assert_eq!(report.attestations.len(), 2, "{:?}", report.rejected);

        // A rule trusting another key: both are rejected, none is "unsigned".
        let other = rule(dir.path(), &SigningKey::generate_p256().unwrap(), None);
        let report =
            crate::verify::attestations(&other, &image, &[], &client, SystemTime::now()).unwrap();
        assert!(report.attestations.is_empty());
        assert_eq!(report.rejected.len(), 2);
        assert!(
            report.rejected[0]
                .contains("DSSE signature does not verify with authority \"release\""),
            "{:?}",
            report.rejected
        );
    }

    #[test]
    fn statements_are_encoded_as_cosign_encodes_them() {
        let key = SigningKey::generate_p256().unwrap();
        let predicate = predicate_json(PredicateFormat::SpdxJson, br#"{"b":"<&>","a":1}"#).unwrap();
        assert_eq!(predicate, r#"{"a":1,"b":"\u003c\u0026\u003e"}"#);
        let payload = statement(
            crate::attestation::SPDX_PREDICATE,
            "docker.io/library/alpine",
            "sha256:4edbd2beb5f78b1014028f4fbb99f3237d9561100b6881aabbf5acce2c4f9454",
            &predicate,
        );
        assert_eq!(
            String::from_utf8(payload.clone()).unwrap(),
            r#"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document","subject":[{"name":"index.docker.io/library/alpine","digest":{"sha256":"4edbd2beb5f78b1014028f4fbb99f3237d9561100b6881aabbf5acce2c4f9454"}}],"predicate":{"a":1,"b":"\u003c\u0026\u003e"}}"#
        );
        let env: serde_json::Value =
            serde_json::from_slice(&envelope(&payload, &key).unwrap()).unwrap();
        assert_eq!(env["payloadType"], IN_TOTO_PAYLOAD_TYPE);
        assert_eq!(env["signatures"][0]["keyid"], "");
        // The vuln predicate keeps cosign's fields, in its order, and drops the rest.
        let vuln = predicate_json(
            PredicateFormat::Vuln,
            br#"{"scanner":{"uri":"pkg:github/aquasecurity/trivy","version":"0.30.0","db":{"uri":"u","version":"v"},"result":{"x":1}},"metadata":{"scanStartedOn":"2022-01-01T00:00:00Z"},"extra":1}"#,
        )
        .unwrap();
        assert_eq!(
            vuln,
            r#"{"invocation":{"parameters":null,"uri":"","event_id":"","builder.id":""},"scanner":{"uri":"pkg:github/aquasecurity/trivy","version":"0.30.0","db":{"uri":"u","version":"v"},"result":{"x":1}},"metadata":{"scanStartedOn":"2022-01-01T00:00:00Z","scanFinishedOn":"0001-01-01T00:00:00Z"}}"#
        );
        assert!(predicate_json(PredicateFormat::Vuln, br#"{"matches":[]}"#)
            .unwrap_err()
            .contains("no scanner"));
        assert!(predicate_json(PredicateFormat::CycloneDx, b"[1]")
            .unwrap_err()
            .contains("not a JSON object"));
        assert!(predicate_json(PredicateFormat::OpenVex, b"{")
            .unwrap_err()
            .contains("not valid JSON"));
    }

    #[test]
    fn signature_repository_holds_the_attestation() {
        let reg = TestRegistry::start();
        let client = reg.client();
        let repo = reg.repo("team/app");
        let sigs = reg.repo("attestations");
        let digest = reg.put_image("team/app", "latest", "x");
        let key = SigningKey::generate_p256().unwrap();
        let vex = fixture("attestations/trivy-project.openvex.json");
        let a = attest_image(
            &client,
            &key,
            &repo,
            PredicateFormat::OpenVex,
            &vex,
            Some(&sigs),
        )
        .unwrap();
        assert!(a.attestation_ref.starts_with(&format!("{sigs}:sha256-")));
        let dir = tempfile::tempdir().unwrap();
        let image = identity(&repo, &digest);
        let v = rule(dir.path(), &key, Some(sigs.clone()));
        let report =
            crate::verify::attestations(&v, &image, &[], &client, SystemTime::now()).unwrap();
        assert_eq!(report.attestations.len(), 1, "{:?}", report.rejected);
        let v = rule(dir.path(), &key, None);
        let report =
            crate::verify::attestations(&v, &image, &[], &client, SystemTime::now()).unwrap();
        assert!(report.attestations.is_empty());
        let e = attest_image(
            &client,
            &key,
            &format!("{repo}:nope"),
            PredicateFormat::OpenVex,
            &vex,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not found"), "{e}");
    }
}

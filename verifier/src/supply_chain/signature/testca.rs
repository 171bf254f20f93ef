//! Test-only Sigstore: a Fulcio-like CA issuing leaf certificates with an embedded SCT from its own
//! CT log, a Rekor-like log key signing entry timestamps and checkpoints, the trusted root naming
//! them, and cosign v3 bundles made with them. Built from x509-cert and p256 directly.
//!
//! Compiled for the crate's unit tests and, with the `test-support` feature, for other crates'
//! tests (the end-to-end keyless tests). Never part of a release build. Test code: it panics on
//! failures instead of returning errors.

use std::str::FromStr;
use std::time::Duration;

use der::asn1::{BitString, Ia5String, OctetString, UtcTime, Utf8StringRef};
use der::{Decode, Encode};
use ecdsa::signature::Signer;
use p256::ecdsa::Signature;
/// The P-256 key type the CA certifies (re-exported for other crates' tests).
pub use p256::ecdsa::SigningKey;
use rand_core::OsRng;
use sha2::{Digest, Sha256};
use spki::{AlgorithmIdentifierOwned, EncodePublicKey, SubjectPublicKeyInfoOwned};
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

use super::json::b64_encode;
use super::rekor::{set_message, UntrustedEntry};
use crate::keys::pem_encode;

const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";

fn utc(t: i64) -> Time {
    Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(t as u64)).expect("time"))
}

fn ext<T: Encode + der::oid::AssociatedOid>(critical: bool, v: &T) -> Extension {
    Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(v.to_der().expect("ext")).expect("octets"),
    }
}

fn sign_tbs(tbs: TbsCertificate, key: &SigningKey) -> Vec<u8> {
    let sig: Signature = key.sign(&tbs.to_der().expect("tbs"));
    Certificate {
        tbs_certificate: tbs,
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: ECDSA_SHA256.parse().expect("oid"),
            parameters: None,
        },
        signature: BitString::from_bytes(sig.to_der().as_bytes()).expect("bits"),
    }
    .to_der()
    .expect("cert")
}

fn spki(key: &SigningKey) -> SubjectPublicKeyInfoOwned {
    SubjectPublicKeyInfoOwned::from_der(
        key.verifying_key()
            .to_public_key_der()
            .expect("spki")
            .as_bytes(),
    )
    .expect("spki")
}

pub struct TestCa {
    pub key: SigningKey,
    pub name: Name,
    pub cert_der: Vec<u8>,
    /// The CT log whose SCT every leaf carries, as Fulcio's leaves carry one.
    pub ct_log: SigningKey,
}

/// What a leaf certificate says.
pub struct LeafSpec<'a> {
    pub san_uri: &'a str,
    pub issuer: &'a str,
    pub not_before: i64,
    pub not_after: i64,
}

impl TestCa {
    pub fn new(cn: &str) -> TestCa {
        let key = SigningKey::random(&mut OsRng);
        let name = Name::from_str(&format!("CN={cn},O=vouch-test")).expect("name");
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: SerialNumber::new(&[1]).expect("serial"),
            signature: AlgorithmIdentifierOwned {
                oid: ECDSA_SHA256.parse().expect("oid"),
                parameters: None,
            },
            issuer: name.clone(),
            validity: Validity {
                not_before: utc(946684800), // 2000
                not_after: utc(2524607999), // 2049-12-31, the last UTCTime year
            },
            subject: name.clone(),
            subject_public_key_info: spki(&key),
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(vec![
                ext(
                    true,
                    &BasicConstraints {
                        ca: true,
                        path_len_constraint: None,
                    },
                ),
                ext(true, &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)),
            ]),
        };
        let cert_der = sign_tbs(tbs, &key);
        TestCa {
            key,
            name,
            cert_der,
            ct_log: SigningKey::random(&mut OsRng),
        }
    }

    /// The CT log's ID: SHA-256 of its SubjectPublicKeyInfo (RFC 6962).
    pub fn ct_log_id(&self) -> Vec<u8> {
        let spki = self
            .ct_log
            .verifying_key()
            .to_public_key_der()
            .expect("spki");
        Sha256::digest(spki.as_bytes()).to_vec()
    }

    /// The embedded-SCT extension for `tbs` (which must not have one yet): the CT log's signature
    /// over the precertificate entry, timestamped at the leaf's start, in RFC 6962's TLS encoding.
    fn sct_extension(&self, tbs: &TbsCertificate, timestamp_ms: u64) -> Extension {
        let issuer_spki = spki(&self.key).to_der().expect("spki");
        let tbs_der = tbs.to_der().expect("tbs");
        let mut signed = vec![0u8, 0u8]; // v1, certificate_timestamp
        signed.extend_from_slice(&timestamp_ms.to_be_bytes());
        signed.extend_from_slice(&1u16.to_be_bytes()); // precert_entry
        signed.extend_from_slice(&Sha256::digest(&issuer_spki));
        signed.extend_from_slice(&u32::try_from(tbs_der.len()).expect("len").to_be_bytes()[1..]);
        signed.extend_from_slice(&tbs_der);
        signed.extend_from_slice(&0u16.to_be_bytes()); // no extensions
        let signature: Signature = self.ct_log.sign(&signed);
        let signature = signature.to_der().as_bytes().to_vec();
        let mut sct = vec![0u8]; // v1
        sct.extend_from_slice(&self.ct_log_id());
        sct.extend_from_slice(&timestamp_ms.to_be_bytes());
        sct.extend_from_slice(&0u16.to_be_bytes());
        sct.extend_from_slice(&[4, 3]); // sha256, ecdsa
        sct.extend_from_slice(&u16::try_from(signature.len()).expect("len").to_be_bytes());
        sct.extend_from_slice(&signature);
        let mut list = Vec::new();
        list.extend_from_slice(&u16::try_from(sct.len() + 2).expect("len").to_be_bytes());
        list.extend_from_slice(&u16::try_from(sct.len()).expect("len").to_be_bytes());
        list.extend_from_slice(&sct);
        Extension {
            extn_id: der::oid::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.2"),
            critical: false,
            extn_value: OctetString::new(
                OctetString::new(list)
                    .expect("octets")
                    .to_der()
                    .expect("der"),
            )
            .expect("octets"),
        }
    }

    /// A leaf for `leaf_key` with a URI SAN, the Fulcio v2 issuer extension and code signing use.
    pub fn issue(&self, leaf_key: &SigningKey, spec: &LeafSpec<'_>) -> Vec<u8> {
        let issuer_ext = Extension {
            extn_id: super::cert::OID_FULCIO_ISSUER_V2,
            critical: false,
            extn_value: OctetString::new(
                Utf8StringRef::new(spec.issuer)
                    .expect("utf8")
                    .to_der()
                    .expect("der"),
            )
            .expect("octets"),
        };
        let mut tbs = TbsCertificate {
            version: Version::V3,
            serial_number: SerialNumber::new(&[2, 3, 4]).expect("serial"),
            signature: AlgorithmIdentifierOwned {
                oid: ECDSA_SHA256.parse().expect("oid"),
                parameters: None,
            },
            issuer: self.name.clone(),
            validity: Validity {
                not_before: utc(spec.not_before),
                not_after: utc(spec.not_after),
            },
            subject: Name::default(),
            subject_public_key_info: spki(leaf_key),
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(vec![
                ext(true, &KeyUsage(KeyUsages::DigitalSignature.into())),
                ext(
                    false,
                    &ExtendedKeyUsage(vec!["1.3.6.1.5.5.7.3.3".parse().expect("oid")]),
                ),
                ext(
                    true,
                    &SubjectAltName(vec![GeneralName::UniformResourceIdentifier(
                        Ia5String::new(spec.san_uri).expect("ia5"),
                    )]),
                ),
                issuer_ext,
            ]),
        };
        let sct = self.sct_extension(&tbs, (spec.not_before.max(0) as u64) * 1000);
        if let Some(extensions) = tbs.extensions.as_mut() {
            extensions.push(sct);
        }
        sign_tbs(tbs, &self.key)
    }
}

pub struct TestRekor {
    pub key: SigningKey,
    pub log_id: Vec<u8>,
}

impl TestRekor {
    pub fn new() -> TestRekor {
        let key = SigningKey::random(&mut OsRng);
        let spki = key.verifying_key().to_public_key_der().expect("spki");
        let log_id = Sha256::digest(spki.as_bytes()).to_vec();
        TestRekor { key, log_id }
    }

    /// The signed entry timestamp (DER ECDSA) of an entry with `body` in this log.
    pub fn signed_entry_timestamp(
        &self,
        body: &[u8],
        integrated_time: i64,
        log_index: i64,
    ) -> Vec<u8> {
        let e = UntrustedEntry {
            body: body.to_vec(),
            integrated_time,
            log_index,
            log_id: self.log_id.clone(),
            set: Vec::new(),
        };
        let set: Signature = self.key.sign(&set_message(&e));
        set.to_der().as_bytes().to_vec()
    }

    /// cosign's `dev.sigstore.cosign/bundle` annotation for `body`, with a valid SET.
    pub fn cosign_bundle(&self, body: &[u8], integrated_time: i64, log_index: i64) -> String {
        let set = self.signed_entry_timestamp(body, integrated_time, log_index);
        serde_json::json!({
            "SignedEntryTimestamp": b64_encode(&set),
            "Payload": {
                "body": b64_encode(body),
                "integratedTime": integrated_time,
                "logIndex": log_index,
                "logID": hex::encode(&self.log_id),
            }
        })
        .to_string()
    }
}

impl TestRekor {
    /// A Rekor v1 entry of a Sigstore bundle (`tlogEntries` item) for `body` of `kind` 0.0.1 (or
    /// `intoto` 0.0.2): integrated at `integrated_time` with its SET, and alone in a tree whose
    /// checkpoint this log signed as `rekor.test`, the host of the trusted root's `baseUrl`.
    pub fn tlog_entry(&self, kind: &str, body: &[u8], integrated_time: i64) -> serde_json::Value {
        let log_index = 0;
        let set = self.signed_entry_timestamp(body, integrated_time, log_index);
        let mut leaf = vec![0u8];
        leaf.extend_from_slice(body);
        let root = Sha256::digest(&leaf);
        let note = format!(
            "rekor.test - 1193050959916656506\n1\n{}\n",
            b64_encode(&root)
        );
        let mut note_signature = self.log_id[..4].to_vec();
        note_signature.extend(sign(&self.key, note.as_bytes()));
        let version = if kind == "intoto" { "0.0.2" } else { "0.0.1" };
        serde_json::json!({
            "logIndex": log_index.to_string(),
            "logId": { "keyId": b64_encode(&self.log_id) },
            "kindVersion": { "kind": kind, "version": version },
            "integratedTime": integrated_time.to_string(),
            "inclusionPromise": { "signedEntryTimestamp": b64_encode(&set) },
            "inclusionProof": {
                "logIndex": log_index.to_string(),
                "rootHash": b64_encode(&root),
                "treeSize": "1",
                "hashes": [],
                "checkpoint": {
                    "envelope": format!("{note}\n\u{2014} rekor.test {}\n", b64_encode(&note_signature))
                }
            },
            "canonicalizedBody": b64_encode(body)
        })
    }
}

impl Default for TestRekor {
    fn default() -> Self {
        TestRekor::new()
    }
}

/// A trusted root naming `ca` (valid from `ca_from`) and `rekor`.
pub fn trusted_root_json(ca: &TestCa, rekor: &TestRekor, ca_from: &str) -> String {
    let spki = rekor.key.verifying_key().to_public_key_der().expect("spki");
    serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [{
            "baseUrl": "https://rekor.test",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": b64_encode(spki.as_bytes()),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": { "start": "2001-01-01T00:00:00Z" }
            },
            "logId": { "keyId": b64_encode(&rekor.log_id) }
        }],
        "certificateAuthorities": [{
            "subject": { "organization": "vouch-test", "commonName": "test ca" },
            "uri": "https://fulcio.test",
            "certChain": { "certificates": [{ "rawBytes": b64_encode(&ca.cert_der) }] },
            "validFor": { "start": ca_from }
        }],
        "ctlogs": [{
            "baseUrl": "https://ctfe.test",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": b64_encode(ca.ct_log.verifying_key().to_public_key_der().expect("spki").as_bytes()),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": { "start": "2001-01-01T00:00:00Z" }
            },
            "logId": { "keyId": b64_encode(&ca.ct_log_id()) }
        }]
    })
    .to_string()
}

/// A hashedrekord v0.0.1 body for `signature` over `payload` by the PEM `verifier`.
pub fn hashedrekord_body(signature: &[u8], payload: &[u8], verifier_pem: &str) -> Vec<u8> {
    serde_json::json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": { "hash": { "algorithm": "sha256", "value": hex::encode(Sha256::digest(payload)) } },
            "signature": {
                "content": b64_encode(signature),
                "publicKey": { "content": b64_encode(verifier_pem.as_bytes()) }
            }
        }
    })
    .to_string()
    .into_bytes()
}

pub fn cert_pem(der: &[u8]) -> String {
    pem_encode("CERTIFICATE", der)
}

/// A fresh P-256 key (what Fulcio certifies, what cosign generates).
pub fn random_key() -> SigningKey {
    SigningKey::random(&mut OsRng)
}

/// An ECDSA P-256 SHA-256 signature of `message` by `key`, ASN.1 DER, as cosign writes it.
pub fn sign(key: &SigningKey, message: &[u8]) -> Vec<u8> {
    let sig: Signature = key.sign(message);
    sig.to_der().as_bytes().to_vec()
}

/// The PEM public key (`PUBLIC KEY`, SPKI) of `key`.
pub fn public_key_pem(key: &SigningKey) -> String {
    let spki = key.verifying_key().to_public_key_der().expect("spki");
    pem_encode("PUBLIC KEY", spki.as_bytes())
}

/// A signature of `message` (ECDSA P-384 SHA-384, DER) by a fresh P-384 key, and that key's PEM.
pub fn p384_signature(message: &[u8]) -> (Vec<u8>, String) {
    let key = p384::ecdsa::SigningKey::random(&mut OsRng);
    let sig: p384::ecdsa::Signature = key.sign(message);
    let spki = key.verifying_key().to_public_key_der().expect("spki");
    (
        sig.to_der().as_bytes().to_vec(),
        pem_encode("PUBLIC KEY", spki.as_bytes()),
    )
}

/// The annotations of a keyless cosign `.sig` layer: signature, leaf certificate, chain (the CA)
/// and Rekor bundle, under cosign's annotation names.
pub fn keyless_annotations(
    signature: &[u8],
    leaf_der: &[u8],
    ca: &TestCa,
    rekor_bundle: &str,
) -> std::collections::BTreeMap<String, String> {
    use crate::registry::{
        ANNOTATION_BUNDLE, ANNOTATION_CERTIFICATE, ANNOTATION_CHAIN, ANNOTATION_SIGNATURE,
    };
    [
        (ANNOTATION_SIGNATURE, b64_encode(signature)),
        (ANNOTATION_CERTIFICATE, cert_pem(leaf_der)),
        (ANNOTATION_CHAIN, cert_pem(&ca.cert_der)),
        (ANNOTATION_BUNDLE, rekor_bundle.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Who signs a test bundle: a certificate of the test CA (keyless), or a bare key (`--key`).
#[derive(Clone, Copy)]
pub enum BundleSigner<'a> {
    Certificate {
        key: &'a SigningKey,
        leaf_der: &'a [u8],
    },
    Key(&'a SigningKey),
}

impl BundleSigner<'_> {
    fn key(&self) -> &SigningKey {
        match self {
            BundleSigner::Certificate { key, .. } | BundleSigner::Key(key) => key,
        }
    }

    /// What a Rekor v1 body names as the verifier: the certificate's or the key's PEM.
    fn verifier_pem(&self) -> String {
        match self {
            BundleSigner::Certificate { leaf_der, .. } => cert_pem(leaf_der),
            BundleSigner::Key(key) => public_key_pem(key),
        }
    }

    fn material(&self) -> serde_json::Value {
        match self {
            BundleSigner::Certificate { leaf_der, .. } => {
                serde_json::json!({ "certificate": { "rawBytes": b64_encode(leaf_der) } })
            }
            BundleSigner::Key(_) => serde_json::json!({ "publicKey": { "hint": "" } }),
        }
    }
}

/// An in-toto v1 statement about `image_digest` (`sha256:<hex>`) named `name`, with
/// `predicate_type` and `predicate`.
pub fn statement(
    name: &str,
    image_digest: &str,
    predicate_type: &str,
    predicate: serde_json::Value,
) -> Vec<u8> {
    let hex_digest = image_digest.strip_prefix("sha256:").unwrap_or(image_digest);
    serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{ "name": name, "digest": { "sha256": hex_digest } }],
        "predicateType": predicate_type,
        "predicate": predicate
    })
    .to_string()
    .into_bytes()
}

/// A Sigstore bundle v0.3 with a DSSE envelope of `statement` signed by `signer`, and, with
/// `rekor`, its `dsse` 0.0.1 entry integrated at `integrated_time` ([`TestRekor::tlog_entry`]).
pub fn statement_bundle(
    signer: BundleSigner<'_>,
    rekor: Option<&TestRekor>,
    statement: &[u8],
    integrated_time: i64,
) -> serde_json::Value {
    const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
    let signature = sign(signer.key(), &crate::dsse::pae(PAYLOAD_TYPE, statement));
    let envelope = serde_json::json!({
        "payload": b64_encode(statement),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [{ "sig": b64_encode(&signature), "keyid": "" }]
    });
    let body = serde_json::json!({
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": {
                "algorithm": "sha256",
                "value": hex::encode(Sha256::digest(envelope.to_string().as_bytes()))
            },
            "payloadHash": { "algorithm": "sha256", "value": hex::encode(Sha256::digest(statement)) },
            "signatures": [{
                "signature": b64_encode(&signature),
                "verifier": b64_encode(signer.verifier_pem().as_bytes())
            }]
        }
    })
    .to_string()
    .into_bytes();
    bundle_of(
        signer,
        rekor,
        "dsse",
        &body,
        integrated_time,
        "dsseEnvelope",
        envelope,
    )
}

/// A Sigstore bundle v0.3 with a message signature by `signer` over the artifact whose SHA-256 is
/// `digest` (an image's manifest digest), and, with `rekor`, its `hashedrekord` 0.0.1 entry.
pub fn message_bundle(
    signer: BundleSigner<'_>,
    rekor: Option<&TestRekor>,
    digest: [u8; 32],
    integrated_time: i64,
) -> serde_json::Value {
    use ecdsa::signature::hazmat::PrehashSigner;
    let signature: Signature = signer.key().sign_prehash(&digest).expect("prehash");
    let signature = signature.to_der().as_bytes().to_vec();
    let body = serde_json::json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": { "hash": { "algorithm": "sha256", "value": hex::encode(digest) } },
            "signature": {
                "content": b64_encode(&signature),
                "publicKey": { "content": b64_encode(signer.verifier_pem().as_bytes()) }
            }
        }
    })
    .to_string()
    .into_bytes();
    let content = serde_json::json!({
        "messageDigest": { "algorithm": "SHA2_256", "digest": b64_encode(&digest) },
        "signature": b64_encode(&signature)
    });
    bundle_of(
        signer,
        rekor,
        "hashedrekord",
        &body,
        integrated_time,
        "messageSignature",
        content,
    )
}

fn bundle_of(
    signer: BundleSigner<'_>,
    rekor: Option<&TestRekor>,
    kind: &str,
    body: &[u8],
    integrated_time: i64,
    content_field: &str,
    content: serde_json::Value,
) -> serde_json::Value {
    let mut material = signer.material();
    let entries: Vec<serde_json::Value> = rekor
        .map(|r| r.tlog_entry(kind, body, integrated_time))
        .into_iter()
        .collect();
    material["tlogEntries"] = entries.into();
    let mut bundle = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": material,
    });
    bundle[content_field] = content;
    bundle
}

/// A keyless Sigstore bundle v0.3 as cosign v3 signs an image: a DSSE envelope with an in-toto
/// statement (predicate type [`super::COSIGN_SIGN_PREDICATE`], subject `name` at `image_digest`,
/// `sha256:<hex>`) signed by `leaf_key`, its certificate `leaf_der`, and a `dsse` entry of `rekor`
/// integrated at `integrated_time` with a valid SET and inclusion proof.
pub fn dsse_bundle(
    leaf_key: &SigningKey,
    leaf_der: &[u8],
    rekor: &TestRekor,
    name: &str,
    image_digest: &str,
    integrated_time: i64,
) -> String {
    let statement = statement(
        name,
        image_digest,
        super::COSIGN_SIGN_PREDICATE,
        serde_json::json!({}),
    );
    statement_bundle(
        BundleSigner::Certificate {
            key: leaf_key,
            leaf_der,
        },
        Some(rekor),
        &statement,
        integrated_time,
    )
    .to_string()
}

/// A policy authority as a container start verifies with it, owning what it names: a key, or a
/// trusted root and an identity, read for cosign's own formats and for Sigstore bundles alike.
pub struct TestAuthority {
    name: String,
    cosign: TestCosign,
    trust: crate::sigstore::TrustRoot,
    policy: crate::sigstore::BlobPolicy,
}

enum TestCosign {
    Key(crate::keys::PublicKey),
    Keyless(super::TrustedRoot, super::IdentityPolicy),
}

impl TestAuthority {
    /// A `key` authority: no trusted root, so a bundle's log entries and timestamps are not
    /// verified.
    pub fn key(name: &str, key: &crate::keys::PublicKey) -> TestAuthority {
        TestAuthority {
            name: name.to_string(),
            cosign: TestCosign::Key(key.clone()),
            trust: crate::sigstore::TrustRoot::key_only().expect("empty root"),
            policy: crate::sigstore::BlobPolicy::Key {
                key: crate::sigstore::BlobKey::from_pem(key.to_pem().as_bytes()).expect("key"),
                require_tlog: false,
            },
        }
    }

    /// A `keyless` authority on `trusted_root_json` for `identity`.
    pub fn keyless(
        name: &str,
        trusted_root_json: &[u8],
        identity: super::IdentityPolicy,
    ) -> TestAuthority {
        TestAuthority {
            name: name.to_string(),
            cosign: TestCosign::Keyless(
                super::TrustedRoot::from_json(trusted_root_json).expect("trusted root"),
                identity.clone(),
            ),
            trust: crate::sigstore::TrustRoot::from_json(trusted_root_json).expect("trusted root"),
            policy: crate::sigstore::BlobPolicy::Keyless(identity),
        }
    }

    pub fn rule(&self) -> super::RuleAuthority<'_> {
        let cosign = match &self.cosign {
            TestCosign::Key(key) => super::Authority::Key {
                name: &self.name,
                key,
                rekor: None,
            },
            TestCosign::Keyless(root, identity) => super::Authority::Keyless {
                name: &self.name,
                trusted_root: root,
                identity,
            },
        };
        super::RuleAuthority {
            cosign,
            bundles: self.bundles(),
        }
    }

    pub fn bundles(&self) -> crate::sigstore::BundleAuthority<'_> {
        crate::sigstore::BundleAuthority {
            name: &self.name,
            trust: &self.trust,
            policy: &self.policy,
        }
    }
}

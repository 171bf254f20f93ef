//! Test-only Sigstore: a Fulcio-like CA issuing leaf certificates, a Rekor-like log key signing
//! entry timestamps, and the trusted root naming both. Built from x509-cert and p256 directly.
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
        let tbs = TbsCertificate {
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
        "ctlogs": []
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

/// A keyless Sigstore bundle v0.3 as cosign v3 signs an image: a DSSE envelope with an in-toto
/// statement (predicate type [`super::COSIGN_SIGN_PREDICATE`], subject `name` at `image_digest`,
/// `sha256:<hex>`) signed by `leaf_key`, its certificate `leaf_der`, and a `dsse` entry of `rekor`
/// integrated at `integrated_time` with a valid SET (no inclusion proof).
pub fn dsse_bundle(
    leaf_key: &SigningKey,
    leaf_der: &[u8],
    rekor: &TestRekor,
    name: &str,
    image_digest: &str,
    integrated_time: i64,
) -> String {
    const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
    let hex_digest = image_digest.strip_prefix("sha256:").unwrap_or(image_digest);
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{ "name": name, "digest": { "sha256": hex_digest } }],
        "predicateType": super::COSIGN_SIGN_PREDICATE,
        "predicate": {}
    })
    .to_string()
    .into_bytes();
    let signature = sign(leaf_key, &super::bundle::pae(PAYLOAD_TYPE, &statement));
    let body = serde_json::json!({
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "payloadHash": { "algorithm": "sha256", "value": hex::encode(Sha256::digest(&statement)) },
            "signatures": [{
                "signature": b64_encode(&signature),
                "verifier": b64_encode(cert_pem(leaf_der).as_bytes())
            }]
        }
    })
    .to_string()
    .into_bytes();
    let log_index = 7;
    let set = rekor.signed_entry_timestamp(&body, integrated_time, log_index);
    serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "certificate": { "rawBytes": b64_encode(leaf_der) },
            "tlogEntries": [{
                "logIndex": log_index.to_string(),
                "logId": { "keyId": b64_encode(&rekor.log_id) },
                "kindVersion": { "kind": "dsse", "version": "0.0.1" },
                "integratedTime": integrated_time.to_string(),
                "inclusionPromise": { "signedEntryTimestamp": b64_encode(&set) },
                "canonicalizedBody": b64_encode(&body)
            }]
        },
        "dsseEnvelope": {
            "payload": b64_encode(&statement),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{ "sig": b64_encode(&signature), "keyid": "" }]
        }
    })
    .to_string()
}

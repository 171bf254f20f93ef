//! Test-only Sigstore: a Fulcio-like CA issuing leaf certificates, a Rekor-like log key signing
//! entry timestamps, and the trusted root naming both. Built from x509-cert and p256 directly.

use std::str::FromStr;
use std::time::Duration;

use der::asn1::{BitString, Ia5String, OctetString, UtcTime, Utf8StringRef};
use der::{Decode, Encode};
use ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
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

pub(crate) struct TestCa {
    pub key: SigningKey,
    pub name: Name,
    pub cert_der: Vec<u8>,
}

/// What a leaf certificate says.
pub(crate) struct LeafSpec<'a> {
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

pub(crate) struct TestRekor {
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

    /// cosign's `dev.sigstore.cosign/bundle` annotation for `body`, with a valid SET.
    pub fn cosign_bundle(&self, body: &[u8], integrated_time: i64, log_index: i64) -> String {
        let e = UntrustedEntry {
            body: body.to_vec(),
            integrated_time,
            log_index,
            log_id: self.log_id.clone(),
            set: Vec::new(),
        };
        let set: Signature = self.key.sign(&set_message(&e));
        serde_json::json!({
            "SignedEntryTimestamp": b64_encode(set.to_der().as_bytes()),
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

/// A trusted root naming `ca` (valid from `ca_from`) and `rekor`.
pub(crate) fn trusted_root_json(ca: &TestCa, rekor: &TestRekor, ca_from: &str) -> String {
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
pub(crate) fn hashedrekord_body(signature: &[u8], payload: &[u8], verifier_pem: &str) -> Vec<u8> {
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

pub(crate) fn cert_pem(der: &[u8]) -> String {
    pem_encode("CERTIFICATE", der)
}

//! Test-only: complete Sigstore v0.3 bundles made here, from a test Fulcio-like CA (with an SCT
//! from a test CT log), a Rekor v1 log (SET, inclusion proof, signed checkpoint), a Rekor v2 log
//! (inclusion proof over a tree computed per RFC 6962, C2SP signed-note checkpoint) and a test
//! RFC 3161 timestamp authority, with the trusted root naming them all.
//!
//! Every field a negative test changes is an input of [`Spec`], so a tampered bundle is signed as
//! consistently as the control and differs from it in that field alone. Test code: it panics.

use std::str::FromStr;
use std::time::Duration;

use base64::Engine;
use der::asn1::{BitString, GeneralizedTime, Ia5String, ObjectIdentifier, OctetString, UtcTime};
use der::{Decode, Encode};
use ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rand_core::OsRng;
use serde_json::{json, Value};
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

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";
const TIME_STAMPING: &str = "1.3.6.1.5.5.7.3.8";
const FULCIO_ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
const CT_PRECERT_SCTS: &str = "1.3.6.1.4.1.11129.2.4.2";
const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";
const CONTENT_TYPE_ATTR: &str = "1.2.840.113549.1.9.3";
const MESSAGE_DIGEST_ATTR: &str = "1.2.840.113549.1.9.4";

/// When the control bundles were signed (2025-06-15).
pub const SIGNED_AT: i64 = 1_750_000_000;
pub const IDENTITY: &str =
    "https://github.com/vouch-test/app/.github/workflows/release.yml@refs/heads/main";
pub const ISSUER: &str = "https://token.actions.githubusercontent.com";
pub const REKOR_V1_URL: &str = "https://rekor.test";
pub const REKOR_V2_URL: &str = "https://log2.test";

fn oid(s: &str) -> ObjectIdentifier {
    ObjectIdentifier::new_unwrap(s)
}

fn utc(t: i64) -> Time {
    Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(t as u64)).expect("time"))
}

pub fn iso(t: i64) -> String {
    crate::signature::format_unix(t)
}

/// A DER tag-length-value.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// A DER SET OF: its elements sorted by their encodings.
fn set_of(tag: u8, mut parts: Vec<Vec<u8>>) -> Vec<u8> {
    parts.sort();
    tlv(tag, &parts.concat())
}

fn sha256_algorithm() -> Vec<u8> {
    seq(&[&oid(SHA256).to_der().expect("oid"), &[0x05, 0x00]])
}

fn ecdsa_sha256_algorithm() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: oid(ECDSA_SHA256),
        parameters: None,
    }
}

fn ext<T: Encode + der::oid::AssociatedOid>(critical: bool, v: &T) -> Extension {
    raw_ext(T::OID, critical, v.to_der().expect("ext"))
}

fn raw_ext(extn_id: ObjectIdentifier, critical: bool, value: Vec<u8>) -> Extension {
    Extension {
        extn_id,
        critical,
        extn_value: OctetString::new(value).expect("octets"),
    }
}

pub fn spki_der(key: &SigningKey) -> Vec<u8> {
    key.verifying_key()
        .to_public_key_der()
        .expect("spki")
        .as_bytes()
        .to_vec()
}

fn spki(key: &SigningKey) -> SubjectPublicKeyInfoOwned {
    SubjectPublicKeyInfoOwned::from_der(&spki_der(key)).expect("spki")
}

/// ECDSA P-256 SHA-256, DER.
pub fn sign(key: &SigningKey, message: &[u8]) -> Vec<u8> {
    let sig: Signature = key.sign(message);
    sig.to_der().as_bytes().to_vec()
}

fn certificate(tbs: TbsCertificate, issuer_key: &SigningKey) -> Vec<u8> {
    let signature = sign(issuer_key, &tbs.to_der().expect("tbs"));
    Certificate {
        tbs_certificate: tbs,
        signature_algorithm: ecdsa_sha256_algorithm(),
        signature: BitString::from_bytes(&signature).expect("bits"),
    }
    .to_der()
    .expect("cert")
}

fn tbs(
    serial: u8,
    issuer: &Name,
    subject: Name,
    key: &SigningKey,
    validity: (i64, i64),
    extensions: Vec<Extension>,
) -> TbsCertificate {
    TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&[serial]).expect("serial"),
        signature: ecdsa_sha256_algorithm(),
        issuer: issuer.clone(),
        validity: Validity {
            not_before: utc(validity.0),
            not_after: utc(validity.1),
        },
        subject,
        subject_public_key_info: spki(key),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    }
}

/// A self-signed CA certificate.
pub struct Authority {
    pub key: SigningKey,
    pub name: Name,
    pub cert_der: Vec<u8>,
}

impl Authority {
    pub fn new(cn: &str) -> Authority {
        let key = SigningKey::random(&mut OsRng);
        let name = Name::from_str(&format!("CN={cn},O=vouch-test")).expect("name");
        let tbs = tbs(
            1,
            &name,
            name.clone(),
            &key,
            (946_684_800, 2_524_607_999), // 2000 to 2049-12-31
            vec![
                ext(
                    true,
                    &BasicConstraints {
                        ca: true,
                        path_len_constraint: None,
                    },
                ),
                ext(true, &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)),
            ],
        );
        let cert_der = certificate(tbs, &key);
        Authority {
            key,
            name,
            cert_der,
        }
    }
}

/// A log key (Rekor or CT) and its ID, the SHA-256 of its SubjectPublicKeyInfo.
pub struct LogKey {
    pub key: SigningKey,
    pub log_id: Vec<u8>,
}

impl LogKey {
    pub fn new() -> LogKey {
        let key = SigningKey::random(&mut OsRng);
        let log_id = Sha256::digest(spki_der(&key)).to_vec();
        LogKey { key, log_id }
    }
}

/// A timestamp authority: its leaf (EKU timeStamping) chained to its own root.
pub struct Tsa {
    pub root: Authority,
    pub key: SigningKey,
    pub leaf_der: Vec<u8>,
}

impl Tsa {
    pub fn new(cn: &str) -> Tsa {
        Tsa::valid(cn, (946_684_800, 2_524_607_999))
    }

    /// A TSA whose leaf certificate is valid from `validity.0` to `validity.1`.
    pub fn valid(cn: &str, validity: (i64, i64)) -> Tsa {
        let root = Authority::new(&format!("{cn} root"));
        let key = SigningKey::random(&mut OsRng);
        let subject = Name::from_str(&format!("CN={cn},O=vouch-test")).expect("name");
        let tbs = tbs(
            5,
            &root.name,
            subject,
            &key,
            validity,
            vec![
                ext(true, &KeyUsage(KeyUsages::DigitalSignature.into())),
                ext(true, &ExtendedKeyUsage(vec![oid(TIME_STAMPING)])),
            ],
        );
        let leaf_der = certificate(tbs, &root.key);
        Tsa {
            root,
            key,
            leaf_der,
        }
    }

    /// An RFC 3161 TimeStampToken (CMS ContentInfo of SignedData over a TSTInfo) of `imprint`
    /// (a SHA-256) at `time`.
    pub fn timestamp(&self, imprint: &[u8], time: i64) -> Vec<u8> {
        let gen_time = GeneralizedTime::from_unix_duration(Duration::from_secs(time as u64))
            .expect("time")
            .to_der()
            .expect("time");
        let tst_info = seq(&[
            &1u8.to_der().expect("int"),
            &oid("1.3.6.1.4.1.57264.2").to_der().expect("oid"),
            &seq(&[&sha256_algorithm(), &tlv(0x04, imprint)]),
            &7u8.to_der().expect("int"),
            &gen_time,
        ]);
        let attributes = vec![
            seq(&[
                &oid(CONTENT_TYPE_ATTR).to_der().expect("oid"),
                &tlv(0x31, &oid(TST_INFO).to_der().expect("oid")),
            ]),
            seq(&[
                &oid(MESSAGE_DIGEST_ATTR).to_der().expect("oid"),
                &tlv(0x31, &tlv(0x04, &Sha256::digest(&tst_info))),
            ]),
        ];
        // Signed as a SET OF, carried as [0] IMPLICIT (RFC 5652 5.4).
        let signed_attrs = set_of(0x31, attributes.clone());
        let signature = sign(&self.key, &signed_attrs);
        let leaf = Certificate::from_der(&self.leaf_der).expect("leaf");
        let signer_info = seq(&[
            &1u8.to_der().expect("int"),
            &seq(&[
                &leaf.tbs_certificate.issuer.to_der().expect("name"),
                &leaf.tbs_certificate.serial_number.to_der().expect("serial"),
            ]),
            &sha256_algorithm(),
            &set_of(0xa0, attributes),
            &seq(&[&oid(ECDSA_SHA256).to_der().expect("oid")]),
            &tlv(0x04, &signature),
        ]);
        let signed_data = seq(&[
            &3u8.to_der().expect("int"),
            &tlv(0x31, &sha256_algorithm()),
            &seq(&[
                &oid(TST_INFO).to_der().expect("oid"),
                &tlv(0xa0, &tlv(0x04, &tst_info)),
            ]),
            &tlv(0xa0, &self.leaf_der),
            &tlv(0x31, &signer_info),
        ]);
        seq(&[
            &oid(SIGNED_DATA).to_der().expect("oid"),
            &tlv(0xa0, &signed_data),
        ])
    }
}

/// RFC 6962 Merkle tree hashes.
pub fn leaf_hash(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two smaller than `n` (n > 1).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

pub fn tree_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves {
        [one] => *one,
        _ => {
            let k = split(leaves.len());
            node_hash(&tree_root(&leaves[..k]), &tree_root(&leaves[k..]))
        }
    }
}

/// The audit path of leaf `m` (RFC 6962 2.1.1), leaf-side first.
pub fn audit_path(m: usize, leaves: &[[u8; 32]]) -> Vec<[u8; 32]> {
    if leaves.len() <= 1 {
        return Vec::new();
    }
    let k = split(leaves.len());
    if m < k {
        let mut path = audit_path(m, &leaves[..k]);
        path.push(tree_root(&leaves[k..]));
        path
    } else {
        let mut path = audit_path(m - k, &leaves[k..]);
        path.push(tree_root(&leaves[..k]));
        path
    }
}

/// The whole test Sigstore: CA, CT log, the two Rekor logs and the TSA.
pub struct World {
    pub ca: Authority,
    pub ct: LogKey,
    pub rekor_v1: LogKey,
    pub rekor_v2: LogKey,
    pub tsa: Tsa,
    /// The TSA's `validFor` in the trusted root.
    pub tsa_window: (i64, Option<i64>),
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

impl World {
    pub fn new() -> World {
        World {
            ca: Authority::new("test fulcio"),
            ct: LogKey::new(),
            rekor_v1: LogKey::new(),
            rekor_v2: LogKey::new(),
            tsa: Tsa::new("test tsa"),
            tsa_window: (978_307_200, None), // from 2001
        }
    }

    pub fn trusted_root(&self) -> Value {
        let since = iso(978_307_200);
        let tlog = |log: &LogKey, url: &str| {
            json!({
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": B64.encode(spki_der(&log.key)),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": { "start": since }
                },
                "logId": { "keyId": B64.encode(&log.log_id) }
            })
        };
        let mut tsa_window = json!({ "start": iso(self.tsa_window.0) });
        if let Some(end) = self.tsa_window.1 {
            tsa_window["end"] = iso(end).into();
        }
        json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [tlog(&self.rekor_v1, REKOR_V1_URL), tlog(&self.rekor_v2, REKOR_V2_URL)],
            "certificateAuthorities": [{
                "subject": { "organization": "vouch-test", "commonName": "test fulcio" },
                "uri": "https://fulcio.test",
                "certChain": { "certificates": [{ "rawBytes": B64.encode(&self.ca.cert_der) }] },
                "validFor": { "start": since }
            }],
            "ctlogs": [tlog(&self.ct, "https://ctfe.test")],
            "timestampAuthorities": [{
                "subject": { "organization": "vouch-test", "commonName": "test tsa" },
                "uri": "https://tsa.test",
                "certChain": { "certificates": [
                    { "rawBytes": B64.encode(&self.tsa.leaf_der) },
                    { "rawBytes": B64.encode(&self.tsa.root.cert_der) }
                ] },
                "validFor": tsa_window
            }]
        })
    }

    /// A Fulcio-like leaf for `key`: URI SAN, OIDC issuer (v2 extension), code signing, and an
    /// embedded SCT of the test CT log over its precertificate.
    pub fn leaf(&self, key: &SigningKey, spec: &Spec) -> Vec<u8> {
        let issuer_value = der::asn1::Utf8StringRef::new(&spec.issuer)
            .expect("utf8")
            .to_der()
            .expect("der");
        let mut tbs = tbs(
            9,
            &self.ca.name,
            Name::default(),
            key,
            spec.cert_validity,
            vec![
                ext(true, &KeyUsage(KeyUsages::DigitalSignature.into())),
                ext(false, &ExtendedKeyUsage(vec![oid(CODE_SIGNING)])),
                ext(
                    true,
                    &SubjectAltName(vec![GeneralName::UniformResourceIdentifier(
                        Ia5String::new(&spec.identity).expect("ia5"),
                    )]),
                ),
                raw_ext(oid(FULCIO_ISSUER_V2), false, issuer_value),
            ],
        );
        // RFC 6962 3.2: the CT log signs the certificate without its SCT extension.
        let sct_time = (spec.cert_validity.0 as u64) * 1000;
        let precert = tbs.to_der().expect("tbs");
        let issuer_key_hash = Sha256::digest(spki_der(&self.ca.key));
        let mut signed = vec![0u8, 0u8];
        signed.extend(sct_time.to_be_bytes());
        signed.extend([0u8, 1u8]);
        signed.extend(issuer_key_hash);
        signed.extend(&(precert.len() as u32).to_be_bytes()[1..]);
        signed.extend(&precert);
        signed.extend([0u8, 0u8]);
        let sct_signature = sign(&self.ct.key, &signed);
        let mut sct = vec![0u8];
        sct.extend(&self.ct.log_id);
        sct.extend(sct_time.to_be_bytes());
        sct.extend([0u8, 0u8, 4, 3]);
        sct.extend((sct_signature.len() as u16).to_be_bytes());
        sct.extend(&sct_signature);
        let mut list = ((sct.len() + 2) as u16).to_be_bytes().to_vec();
        list.extend((sct.len() as u16).to_be_bytes());
        list.extend(&sct);
        let list = OctetString::new(list)
            .expect("octets")
            .to_der()
            .expect("der");
        if let Some(extensions) = tbs.extensions.as_mut() {
            extensions.push(raw_ext(oid(CT_PRECERT_SCTS), false, list));
        }
        certificate(tbs, &self.ca.key)
    }
}

/// What a generated bundle says; each field is one a negative test can change.
#[derive(Clone)]
pub struct Spec {
    pub artifact: Vec<u8>,
    pub identity: String,
    pub issuer: String,
    pub cert_validity: (i64, i64),
    /// Rekor v1's integrated time.
    pub integrated_time: i64,
    /// The RFC 3161 timestamp's time.
    pub timestamp_time: i64,
    /// What the log entry records as the artifact (the artifact unless changed).
    pub logged_artifact: Option<Vec<u8>>,
    /// What the timestamp's imprint is over (the signature unless changed).
    pub imprinted: Option<Vec<u8>>,
    /// The entry's position among `tree_size` leaves.
    pub log_index: usize,
    pub tree_size: usize,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            artifact: b"a release artifact\n".to_vec(),
            identity: IDENTITY.to_string(),
            issuer: ISSUER.to_string(),
            cert_validity: (SIGNED_AT - 60, SIGNED_AT + 540),
            integrated_time: SIGNED_AT,
            timestamp_time: SIGNED_AT,
            logged_artifact: None,
            imprinted: None,
            log_index: 2,
            tree_size: 5,
        }
    }
}

/// A generated bundle.
pub struct Generated {
    pub bundle: Value,
}

/// The entry's leaf among `spec.tree_size` leaves, the inclusion proof and a checkpoint signed by
/// `log` under `name`.
fn inclusion_proof(body: &[u8], spec: &Spec, log: &LogKey, origin: &str, name: &str) -> Value {
    let leaves: Vec<[u8; 32]> = (0..spec.tree_size)
        .map(|i| {
            if i == spec.log_index {
                leaf_hash(body)
            } else {
                leaf_hash(format!("another entry {i}").as_bytes())
            }
        })
        .collect();
    let root = tree_root(&leaves);
    let path = audit_path(spec.log_index, &leaves);
    json!({
        "logIndex": spec.log_index.to_string(),
        "rootHash": B64.encode(root),
        "treeSize": spec.tree_size.to_string(),
        "hashes": path.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
        "checkpoint": { "envelope": checkpoint(log, origin, name, spec.tree_size, &root) }
    })
}

/// A C2SP signed note: the checkpoint body and one signature line, key hint first.
pub fn checkpoint(log: &LogKey, origin: &str, name: &str, size: usize, root: &[u8]) -> String {
    let note = format!("{origin}\n{size}\n{}\n", B64.encode(root));
    let mut raw = log.log_id[..4].to_vec();
    raw.extend(sign(&log.key, note.as_bytes()));
    format!("{note}\n\u{2014} {name} {}\n", B64.encode(&raw))
}

fn message_signature(artifact: &[u8], signature: &[u8]) -> Value {
    json!({
        "messageDigest": { "algorithm": "SHA2_256", "digest": B64.encode(Sha256::digest(artifact)) },
        "signature": B64.encode(signature)
    })
}

/// A v0.3 bundle whose one entry is a Rekor v1 hashedrekord/0.0.1 with SET, inclusion proof and
/// checkpoint; no RFC 3161 timestamp (the SET's integrated time is the signing time).
pub fn rekor_v1_bundle(world: &World, spec: &Spec) -> Generated {
    let key = SigningKey::random(&mut OsRng);
    let leaf = world.leaf(&key, spec);
    let signature = sign(&key, &spec.artifact);
    let logged = spec.logged_artifact.as_deref().unwrap_or(&spec.artifact);
    let body = serde_json::to_vec(&json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": { "hash": { "algorithm": "sha256", "value": hex::encode(Sha256::digest(logged)) } },
            "signature": {
                "content": B64.encode(&signature),
                "publicKey": { "content": B64.encode(crate::keys::pem_encode("CERTIFICATE", &leaf)) }
            }
        }
    }))
    .expect("json");
    // The SET signs the canonical JSON of these four fields, keys sorted.
    let set_payload = format!(
        r#"{{"body":"{}","integratedTime":{},"logID":"{}","logIndex":{}}}"#,
        B64.encode(&body),
        spec.integrated_time,
        hex::encode(&world.rekor_v1.log_id),
        spec.log_index
    );
    let set = sign(&world.rekor_v1.key, set_payload.as_bytes());
    let proof = inclusion_proof(
        &body,
        spec,
        &world.rekor_v1,
        "rekor.test - 4242",
        "rekor.test",
    );
    let bundle = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "certificate": { "rawBytes": B64.encode(&leaf) },
            "tlogEntries": [{
                "logIndex": spec.log_index.to_string(),
                "logId": { "keyId": B64.encode(&world.rekor_v1.log_id) },
                "kindVersion": { "kind": "hashedrekord", "version": "0.0.1" },
                "integratedTime": spec.integrated_time.to_string(),
                "inclusionPromise": { "signedEntryTimestamp": B64.encode(&set) },
                "inclusionProof": proof,
                "canonicalizedBody": B64.encode(&body)
            }]
        },
        "messageSignature": message_signature(&spec.artifact, &signature)
    });
    Generated { bundle }
}

/// A v0.3 bundle whose one entry is a Rekor v2 hashedrekord/0.0.2 (inclusion proof and
/// checkpoint, no SET), with an RFC 3161 timestamp of `world.tsa` as its signing time.
pub fn rekor_v2_bundle(world: &World, spec: &Spec) -> Generated {
    rekor_v2_bundle_stamped_by(world, spec, &world.tsa)
}

/// [`rekor_v2_bundle`] with the timestamp signed by `tsa`.
pub fn rekor_v2_bundle_stamped_by(world: &World, spec: &Spec, tsa: &Tsa) -> Generated {
    let key = SigningKey::random(&mut OsRng);
    let leaf = world.leaf(&key, spec);
    let signature = sign(&key, &spec.artifact);
    let logged = spec.logged_artifact.as_deref().unwrap_or(&spec.artifact);
    let body = serde_json::to_vec(&json!({
        "apiVersion": "0.0.2",
        "kind": "hashedrekord",
        "spec": { "hashedRekordV002": {
            "data": { "algorithm": "SHA2_256", "digest": B64.encode(Sha256::digest(logged)) },
            "signature": {
                "content": B64.encode(&signature),
                "verifier": {
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "x509Certificate": { "rawBytes": B64.encode(&leaf) }
                }
            }
        } }
    }))
    .expect("json");
    let proof = inclusion_proof(&body, spec, &world.rekor_v2, "log2.test", "log2.test");
    let imprinted = spec.imprinted.as_deref().unwrap_or(&signature);
    let token = tsa.timestamp(&Sha256::digest(imprinted), spec.timestamp_time);
    let bundle = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "certificate": { "rawBytes": B64.encode(&leaf) },
            "tlogEntries": [{
                "logIndex": spec.log_index.to_string(),
                "logId": { "keyId": B64.encode(&world.rekor_v2.log_id) },
                "kindVersion": { "kind": "hashedrekord", "version": "0.0.2" },
                "integratedTime": "0",
                "inclusionProof": proof,
                "canonicalizedBody": B64.encode(&body)
            }],
            "timestampVerificationData": {
                "rfc3161Timestamps": [{ "signedTimestamp": B64.encode(&token) }]
            }
        },
        "messageSignature": message_signature(&spec.artifact, &signature)
    });
    Generated { bundle }
}

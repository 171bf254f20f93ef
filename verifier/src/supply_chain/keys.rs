//! Public keys (PEM: ECDSA P-256/P-384, Ed25519, RSA) and signature verification with them.
//!
//! Everything here takes hostile input: PEM and DER are size-bounded and parsed by RustCrypto, and
//! every failure is a [`KeyError`] with a one-line reason, never a panic.
//!
//! Which hash goes with which key follows cosign: ECDSA P-256 with SHA-256, P-384 with SHA-384,
//! Ed25519 over the raw message, RSA (PKCS#1 v1.5 or PSS) with SHA-256. Certificate signatures name
//! their own hash, see [`PublicKey::verify_with`].

use std::fmt;

use der::{Decode, Encode};
use sha2::{Digest, Sha256, Sha384, Sha512};
use spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};

/// Largest PEM text accepted for a public key or certificate.
pub const MAX_PEM_LEN: usize = 64 * 1024;
/// Largest DER accepted for a public key or certificate.
pub const MAX_DER_LEN: usize = 32 * 1024;
/// Largest signature accepted (RSA 8192 is 1 KiB; DER ECDSA P-384 about 104 bytes).
pub const MAX_SIGNATURE_LEN: usize = 2048;
/// RSA moduli below this are refused.
const RSA_MIN_BITS: usize = 2048;

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_SECP256K1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.10");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// Why a key could not be read or a signature did not verify: one line, for denial reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

pub type Result<T, E = KeyError> = std::result::Result<T, E>;

fn fail<T>(reason: impl Into<String>) -> Result<T> {
    Err(KeyError(reason.into()))
}

/// The kind of a [`PublicKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    EcdsaP256,
    EcdsaP384,
    Ed25519,
    Rsa,
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyAlgorithm::EcdsaP256 => "ECDSA P-256",
            KeyAlgorithm::EcdsaP384 => "ECDSA P-384",
            KeyAlgorithm::Ed25519 => "Ed25519",
            KeyAlgorithm::Rsa => "RSA",
        })
    }
}

/// The hash a signature was made over (ignored by Ed25519, which signs the raw message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlgorithm {
    fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            HashAlgorithm::Sha256 => Sha256::digest(message).to_vec(),
            HashAlgorithm::Sha384 => Sha384::digest(message).to_vec(),
            HashAlgorithm::Sha512 => Sha512::digest(message).to_vec(),
        }
    }
}

/// An RSA signature scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaPadding {
    Pkcs1v15,
    Pss,
}

#[derive(Clone)]
enum Inner {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
    Rsa(rsa::RsaPublicKey),
}

/// A public key that signatures are verified with.
#[derive(Clone)]
pub struct PublicKey {
    inner: Inner,
    spki_der: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey({}, sha256:{})",
            self.algorithm(),
            self.fingerprint()
        )
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki_der == other.spki_der
    }
}
impl Eq for PublicKey {}

impl PublicKey {
    /// Parses a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), what `cosign generate-key-pair` writes.
    pub fn from_pem(pem: &str) -> Result<PublicKey> {
        if pem.len() > MAX_PEM_LEN {
            return fail(format!("public key PEM larger than {MAX_PEM_LEN} bytes"));
        }
        let (label, der) = pem_decode(pem)?;
        match label.as_str() {
            "PUBLIC KEY" => PublicKey::from_spki_der(&der),
            "CERTIFICATE" => fail("expected a PEM PUBLIC KEY, found a CERTIFICATE"),
            "RSA PUBLIC KEY" => fail("PKCS#1 RSA PUBLIC KEY is not supported: use a PEM PUBLIC KEY (SubjectPublicKeyInfo)"),
            l if l.contains("PRIVATE KEY") => {
                fail(format!("expected a PEM PUBLIC KEY, found a {l} (never ship private keys)"))
            }
            l => fail(format!("expected a PEM PUBLIC KEY, found {l:?}")),
        }
    }

    /// Parses a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey> {
        if der.len() > MAX_DER_LEN {
            return fail(format!("public key larger than {MAX_DER_LEN} bytes"));
        }
        let spki = SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|e| KeyError(format!("malformed public key (SubjectPublicKeyInfo): {e}")))?;
        let alg = spki.algorithm.oid;
        let inner = if alg == OID_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters_oid()
                .map_err(|_| KeyError("EC public key without a named curve".into()))?;
            let point = spki.subject_public_key.raw_bytes();
            if curve == OID_P256 {
                Inner::P256(
                    p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                        .map_err(|_| KeyError("invalid ECDSA P-256 public key point".into()))?,
                )
            } else if curve == OID_P384 {
                Inner::P384(
                    p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                        .map_err(|_| KeyError("invalid ECDSA P-384 public key point".into()))?,
                )
            } else if curve == OID_P521 {
                return fail("unsupported elliptic curve P-521 (supported: P-256, P-384)");
            } else if curve == OID_SECP256K1 {
                return fail("unsupported elliptic curve secp256k1 (supported: P-256, P-384)");
            } else {
                return fail(format!(
                    "unsupported elliptic curve {curve} (supported: P-256, P-384)"
                ));
            }
        } else if alg == OID_ED25519 {
            let bytes: [u8; 32] = spki
                .subject_public_key
                .raw_bytes()
                .try_into()
                .map_err(|_| KeyError("Ed25519 public key is not 32 bytes".into()))?;
            Inner::Ed25519(
                ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                    .map_err(|_| KeyError("invalid Ed25519 public key".into()))?,
            )
        } else if alg == OID_RSA {
            let key = rsa::RsaPublicKey::try_from(spki)
                .map_err(|e| KeyError(format!("invalid RSA public key: {e}")))?;
            let bits = rsa::traits::PublicKeyParts::size(&key) * 8;
            if bits < RSA_MIN_BITS {
                return fail(format!(
                    "RSA key of {bits} bits is too small (at least {RSA_MIN_BITS})"
                ));
            }
            Inner::Rsa(key)
        } else {
            return fail(format!(
                "unsupported public key algorithm {alg} (supported: ECDSA P-256/P-384, Ed25519, RSA)"
            ));
        };
        Ok(PublicKey {
            inner,
            spki_der: der.to_vec(),
        })
    }

    /// The subject public key of a DER X.509 certificate (a keyless leaf).
    pub fn from_certificate(der: &[u8]) -> Result<PublicKey> {
        if der.len() > MAX_DER_LEN {
            return fail(format!("certificate larger than {MAX_DER_LEN} bytes"));
        }
        let cert = x509_cert::Certificate::from_der(der)
            .map_err(|e| KeyError(format!("malformed certificate: {e}")))?;
        PublicKey::from_certificate_parsed(&cert)
    }

    /// The subject public key of a parsed certificate.
    pub fn from_certificate_parsed(cert: &x509_cert::Certificate) -> Result<PublicKey> {
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| KeyError(format!("certificate public key: {e}")))?;
        PublicKey::from_spki_der(&spki)
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        match self.inner {
            Inner::P256(_) => KeyAlgorithm::EcdsaP256,
            Inner::P384(_) => KeyAlgorithm::EcdsaP384,
            Inner::Ed25519(_) => KeyAlgorithm::Ed25519,
            Inner::Rsa(_) => KeyAlgorithm::Rsa,
        }
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// SHA-256 of the DER SubjectPublicKeyInfo, lower-case hex: what records name a key by.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(&self.spki_der))
    }

    /// Who holds this key, whatever encoding it was given in: SHA-256 of the key's canonical form
    /// (an uncompressed EC point, the raw Ed25519 key, the RSA modulus and exponent). One key
    /// written compressed and uncompressed is one signer.
    pub fn signer_id(&self) -> String {
        let canonical: Vec<u8> = match &self.inner {
            Inner::P256(k) => k.to_encoded_point(false).as_bytes().to_vec(),
            Inner::P384(k) => k.to_encoded_point(false).as_bytes().to_vec(),
            Inner::Ed25519(k) => k.to_bytes().to_vec(),
            Inner::Rsa(k) => {
                use rsa::traits::PublicKeyParts;
                let mut out = k.n().to_bytes_be();
                out.push(0);
                out.extend(k.e().to_bytes_be());
                out
            }
        };
        let kind = self.algorithm().to_string();
        let mut h = Sha256::new();
        h.update(kind.as_bytes());
        h.update([0]);
        h.update(&canonical);
        hex::encode(h.finalize())
    }

    /// The key as PEM `PUBLIC KEY`.
    pub fn to_pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.spki_der)
    }

    /// Verifies `signature` over `message` the way cosign signs with this kind of key: ECDSA P-256
    /// with SHA-256, P-384 with SHA-384 (DER or fixed-size `r||s`), Ed25519 over the raw message,
    /// RSA with SHA-256 in PKCS#1 v1.5 or PSS.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        match self.inner {
            Inner::P256(_) | Inner::Rsa(_) | Inner::Ed25519(_) => {
                self.verify_with(HashAlgorithm::Sha256, None, message, signature)
            }
            Inner::P384(_) => self.verify_with(HashAlgorithm::Sha384, None, message, signature),
        }
    }

    /// Verifies with an explicit hash (certificate signatures name theirs) and, for RSA, padding
    /// (`None`: PKCS#1 v1.5, then PSS).
    pub fn verify_with(
        &self,
        hash: HashAlgorithm,
        padding: Option<RsaPadding>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        if let Inner::Ed25519(key) = &self.inner {
            let sig = ed25519_dalek::Signature::from_slice(signature)
                .map_err(|_| KeyError("malformed Ed25519 signature (not 64 bytes)".into()))?;
            return key
                .verify_strict(message, &sig)
                .map_err(|_| KeyError("Ed25519 signature does not verify".into()));
        }
        self.verify_prehash(hash, padding, &hash.digest(message), signature)
    }

    /// Verifies a signature over a message of which only the digest `prehash` (made with `hash`) is
    /// known. Not possible with Ed25519.
    pub fn verify_prehash(
        &self,
        hash: HashAlgorithm,
        padding: Option<RsaPadding>,
        prehash: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        use ecdsa::signature::hazmat::PrehashVerifier;
        if signature.is_empty() {
            return fail("empty signature");
        }
        if signature.len() > MAX_SIGNATURE_LEN {
            return fail(format!("signature larger than {MAX_SIGNATURE_LEN} bytes"));
        }
        let want = match hash {
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        };
        if prehash.len() != want {
            return fail(format!("{hash:?} digest must be {want} bytes"));
        }
        match &self.inner {
            Inner::P256(key) => {
                let sig = p256::ecdsa::Signature::from_der(signature)
                    .or_else(|_| p256::ecdsa::Signature::from_slice(signature))
                    .map_err(|_| KeyError("malformed ECDSA P-256 signature".into()))?;
                key.verify_prehash(prehash, &sig)
                    .map_err(|_| KeyError("ECDSA P-256 signature does not verify".into()))
            }
            Inner::P384(key) => {
                let sig = p384::ecdsa::Signature::from_der(signature)
                    .or_else(|_| p384::ecdsa::Signature::from_slice(signature))
                    .map_err(|_| KeyError("malformed ECDSA P-384 signature".into()))?;
                key.verify_prehash(prehash, &sig)
                    .map_err(|_| KeyError("ECDSA P-384 signature does not verify".into()))
            }
            Inner::Rsa(key) => {
                let pkcs1 = || match hash {
                    HashAlgorithm::Sha256 => rsa_pkcs1::<Sha256>(key, prehash, signature),
                    HashAlgorithm::Sha384 => rsa_pkcs1::<Sha384>(key, prehash, signature),
                    HashAlgorithm::Sha512 => rsa_pkcs1::<Sha512>(key, prehash, signature),
                };
                let pss = || match hash {
                    HashAlgorithm::Sha256 => rsa_pss::<Sha256>(key, prehash, signature),
                    HashAlgorithm::Sha384 => rsa_pss::<Sha384>(key, prehash, signature),
                    HashAlgorithm::Sha512 => rsa_pss::<Sha512>(key, prehash, signature),
                };
                let ok = match padding {
                    Some(RsaPadding::Pkcs1v15) => pkcs1(),
                    Some(RsaPadding::Pss) => pss(),
                    None => pkcs1() || pss(),
                };
                if ok {
                    Ok(())
                } else {
                    fail("RSA signature does not verify")
                }
            }
            Inner::Ed25519(_) => fail("Ed25519 cannot verify a signature over a digest"),
        }
    }
}

fn rsa_pkcs1<D>(key: &rsa::RsaPublicKey, prehash: &[u8], signature: &[u8]) -> bool
where
    D: Digest + rsa::pkcs8::AssociatedOid,
{
    use rsa::signature::hazmat::PrehashVerifier;
    let Ok(sig) = rsa::pkcs1v15::Signature::try_from(signature) else {
        return false;
    };
    rsa::pkcs1v15::VerifyingKey::<D>::new(key.clone())
        .verify_prehash(prehash, &sig)
        .is_ok()
}

fn rsa_pss<D>(key: &rsa::RsaPublicKey, prehash: &[u8], signature: &[u8]) -> bool
where
    D: Digest + sha2::digest::FixedOutputReset,
{
    use rsa::signature::hazmat::PrehashVerifier;
    let Ok(sig) = rsa::pss::Signature::try_from(signature) else {
        return false;
    };
    rsa::pss::VerifyingKey::<D>::new(key.clone())
        .verify_prehash(prehash, &sig)
        .is_ok()
}

/// Decodes one PEM block: `(label, der)`. Text outside the block (comments) is ignored; a second
/// block is refused.
pub fn pem_decode(pem: &str) -> Result<(String, Vec<u8>)> {
    let mut blocks = pem_decode_all(pem, 1)?;
    match blocks.len() {
        1 => Ok(blocks.remove(0)),
        _ => fail("no PEM block found"),
    }
}

/// Decodes up to `max` PEM blocks in order.
pub fn pem_decode_all(pem: &str, max: usize) -> Result<Vec<(String, Vec<u8>)>> {
    use base64::Engine;
    if pem.len() > MAX_PEM_LEN * max.max(1) {
        return fail("PEM text too large");
    }
    let mut out = Vec::new();
    let mut lines = pem.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let mut body = String::new();
        let mut ended = false;
        for line in lines.by_ref() {
            let line = line.trim();
            if let Some(end) = line
                .strip_prefix("-----END ")
                .and_then(|l| l.strip_suffix("-----"))
            {
                if end != label {
                    return fail(format!("PEM block BEGIN {label} ends with END {end}"));
                }
                ended = true;
                break;
            }
            if line.contains(':') {
                return fail("encrypted or annotated PEM blocks are not supported");
            }
            body.push_str(line);
        }
        if !ended {
            return fail(format!("PEM block {label} has no END line"));
        }
        if out.len() == max {
            return fail(format!("more than {max} PEM blocks"));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| KeyError(format!("PEM block {label} is not valid base64")))?;
        if der.is_empty() {
            return fail(format!("PEM block {label} is empty"));
        }
        out.push((label.to_string(), der));
    }
    if out.is_empty() {
        return fail("no PEM block found");
    }
    Ok(out)
}

/// Encodes DER as a PEM block with 64-column lines.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures");

    /// RSA-2048, made with `openssl genpkey` for these tests only.
    const TEST_RSA_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDWXosMmJlyy8Nf\nPaYuIWEhY6GUd/dOyt3jqItw5UmXV1W9GS7guGW+pQRXJwonEoe93/tqgbckxZwh\nanf5agOdEjQIjQJvj4ousUTg44ogx/Rlz8xBFhH6tZUwLjPU77x6hXSEQBaTxW4D\nztVkYDtG+RKkv5DeeTWeuqMqOv6PqIy2pKqbW6nm8+jup/RWHQzDw8muZyw/2Z1l\nFFd4GBWNHnm/7VutYv9NqwywURcvNTYcMyFHKOarFzdXCKrIojnldge40n8u7Lz+\no7BPemXoymnP4l3f3/uwn+nx4RVVDABM0k6DgRnnrjbNNP6m+P9WxQc9KhBnpjzZ\nm8FbWjA1AgMBAAECggEANECGRzM5EAS/4gquY4cqXE+jNoPJadDEJjZSitmwxu14\nTigBx6/ayQ4DEVVIQb7gDHW4nDzzDckHJhQEG2zuZY5m1YC9i8Dirz/xaJm99QCY\nP2rXwDOnfUNekohohOpMuFaoUIYomqtghhgX5qgYOtQCadrx7nCAE+ktVWFc5FoA\nX0Lywjt8nbDiX2GjI/jxxITRbyruwWlNQXKRuEZVRGbl4rcQEzpk21AjoXQRTWf6\n9dVQlRpWNDH4medWgWoVzLVgyHdYu8jhuaGKezHiksNStRJD/N20JlrkbCGf1BYZ\n9K5wjFvqnAHPhw+vXr0HqVlNWQG2oHcReBHi20A9fwKBgQD2De9Nx96vIQV0pGyI\n/jH1oT+m/W/5/jlhfev7Bxqs47dcJL64kTbOR/ETgOeJpBOkd9IMo6+tQKP/yqF4\nPbThSOXFkGBciIUbflo2H6wYl/qj94Wc9Gdj+YILGRCTJgJI9ceqJrAAE3zLO62s\n1PvMHQitR01ESrc/6Up/dHayKwKBgQDfCL6PmaPcJ016B+b47WUrSZvtGiKmmrHo\nUVh/x7ouV00iNjKz9tmBoKU6rhtohFLhs1/tmgccCFCa5pqVtGZX8yeYg5zxwxKZ\nZFmpSkAJ+2Od72xq6JuBB7uEbjIg9h/WuLPwr/teZ0TLZS65N+GMtMGi/eoShLQs\n5JjYPkpXHwKBgQCNjqbGUN7EUnMZEB+BEP0dG4/LOrNZV/EbLZ695PBr1vZ+hIVV\nGfY15x3C4r5SaZsDXAv0SZegTTgMyT7sNlQB6DaI2u8VTVWG48JysPYJkCYafyTX\nj6SL19gBGoJ2pb9aykv8kBVhddSt97+LV10lqO59AjBpwbJ7inPZr9850QKBgDCX\nMR0L9f0SuvhpHFMDNVVW9heT6BSwAy5/+m3sT42lC3L2p9k5YG2zWAwOvn3oxj3R\n3IZhVkcvMJBuySLwaJOkr+20Ts8FFtpAWKBfQtBp6mwQK2inQKm9y4awk09HD+yx\n1NINJRCOIxjE9Ib5u7Px9XXTJ9nc+3wEWaBTAdM1AoGBAMCyq0EhSOl8VYJUJR/8\n6IqW3lTZ+eYH0IjJvY/zCvcFz4SGm7tNLufSDNQxoAPi47LicwiioZOuqoT48xNW\nvuzNxSG8fQM/dgetgdjtNLw8TFz5Sehj7JqdAQ46AmeO2HkFKgJAaN+QYy5DAIpl\n6rN9pcfkfSQHRqBJt8k/bP1l\n-----END PRIVATE KEY-----\n";

    fn fixture(path: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}/{path}"))
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn err<T: fmt::Debug>(r: Result<T>) -> String {
        match r {
            Ok(v) => panic!("unexpected success: {v:?}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn one_key_in_two_encodings_is_one_signer() {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let secret = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let point = secret.public_key();
        let header = |len: u8, bits: u8| {
            let mut h = vec![
                0x30, len, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
            ];
            h.extend([
                0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, bits, 0x00,
            ]);
            h
        };
        let mut uncompressed = header(0x59, 0x42);
        uncompressed.extend(point.to_encoded_point(false).as_bytes());
        let mut compressed = header(0x39, 0x22);
        compressed.extend(point.to_encoded_point(true).as_bytes());
        let a = PublicKey::from_spki_der(&uncompressed).unwrap();
        let b = PublicKey::from_spki_der(&compressed).unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.signer_id(), b.signer_id());
        let other = PublicKey::from_spki_der(&{
            let mut o = header(0x59, 0x42);
            o.extend(
                p256::SecretKey::from_slice(&[8u8; 32])
                    .unwrap()
                    .public_key()
                    .to_encoded_point(false)
                    .as_bytes(),
            );
            o
        })
        .unwrap();
        assert_ne!(a.signer_id(), other.signer_id());
    }

    #[test]
    fn cosign_fixture_keys_parse_with_their_published_fingerprints() {
        let k = PublicKey::from_pem(&fixture("signatures/containers-image/cosign.pub")).unwrap();
        assert_eq!(k.algorithm(), KeyAlgorithm::EcdsaP256);
        assert!(k.fingerprint().starts_with("c87a7901"));
        assert!(k.fingerprint().ends_with("301f"));
        let k2 = PublicKey::from_pem(&fixture("signatures/containers-image/cosign2.pub")).unwrap();
        assert!(k2.fingerprint().starts_with("5e7eb6c1"));
        assert!(k2.fingerprint().ends_with("bdfa"));
        assert_ne!(k, k2);
        // PEM round trip.
        assert_eq!(PublicKey::from_pem(&k.to_pem()).unwrap(), k);
    }

    #[test]
    fn every_supported_algorithm_signs_and_verifies() {
        use ecdsa::signature::Signer;
        use rand_core::OsRng;
        use spki::EncodePublicKey;
        let msg = b"hello vouch";

        let sk = p256::ecdsa::SigningKey::random(&mut OsRng);
        let pk =
            PublicKey::from_spki_der(sk.verifying_key().to_public_key_der().unwrap().as_bytes())
                .unwrap();
        let sig: p256::ecdsa::Signature = sk.sign(msg);
        pk.verify(msg, sig.to_der().as_bytes()).unwrap();
        pk.verify(msg, &sig.to_bytes()).unwrap(); // fixed-size r||s
        assert!(err(pk.verify(b"other", sig.to_der().as_bytes())).contains("does not verify"));

        let sk = p384::ecdsa::SigningKey::random(&mut OsRng);
        let pk =
            PublicKey::from_spki_der(sk.verifying_key().to_public_key_der().unwrap().as_bytes())
                .unwrap();
        assert_eq!(pk.algorithm(), KeyAlgorithm::EcdsaP384);
        let sig: p384::ecdsa::Signature = sk.sign(msg);
        pk.verify(msg, sig.to_der().as_bytes()).unwrap();
        // A P-256-sized signature is refused, not misread.
        assert!(err(pk.verify(msg, &[1u8; 64])).contains("P-384"));

        let sk = ed25519_dalek::SigningKey::generate(&mut OsRng);
        let pk =
            PublicKey::from_spki_der(sk.verifying_key().to_public_key_der().unwrap().as_bytes())
                .unwrap();
        assert_eq!(pk.algorithm(), KeyAlgorithm::Ed25519);
        let sig = sk.sign(msg);
        pk.verify(msg, &sig.to_bytes()).unwrap();
        assert!(err(pk.verify(b"x", &sig.to_bytes())).contains("does not verify"));

        // A fixed test key: generating one takes seconds in a debug build.
        let sk = <rsa::RsaPrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_pem(TEST_RSA_KEY)
            .unwrap();
        let pk =
            PublicKey::from_spki_der(sk.to_public_key().to_public_key_der().unwrap().as_bytes())
                .unwrap();
        assert_eq!(pk.algorithm(), KeyAlgorithm::Rsa);
        let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(sk.clone());
        let sig = rsa::signature::SignatureEncoding::to_vec(&signer.sign(msg));
        pk.verify(msg, &sig).unwrap();
        let signer = rsa::pss::BlindedSigningKey::<Sha256>::new(sk);
        let sig = rsa::signature::SignatureEncoding::to_vec(
            &rsa::signature::RandomizedSigner::sign_with_rng(&signer, &mut OsRng, msg),
        );
        pk.verify(msg, &sig).unwrap();
        assert!(err(pk.verify(b"x", &sig)).contains("RSA signature does not verify"));
    }

    #[test]
    fn wrong_curves_unknown_algorithms_and_bad_pem_are_clear_errors() {
        // A secp256k1 SPKI: refused by curve, before the point is looked at.
        let mut k1 = vec![0x30, 0x56, 0x30, 0x10, 0x06, 0x07];
        k1.extend([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]);
        k1.extend([
            0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a, 0x03, 0x42, 0x00, 0x04,
        ]);
        k1.extend([7u8; 64]);
        assert!(err(PublicKey::from_pem(&pem_encode("PUBLIC KEY", &k1))).contains("secp256k1"));
        assert!(err(PublicKey::from_pem("garbage")).contains("no PEM block"));
        assert!(err(PublicKey::from_pem(
            "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n"
        ))
        .contains("not valid base64"));
        assert!(err(PublicKey::from_pem(
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
        ))
        .contains("malformed public key"));
        assert!(
            err(PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n")).contains("no END line")
        );
        assert!(err(PublicKey::from_pem(
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"
        ))
        .contains("private"));
        let huge = "A".repeat(MAX_PEM_LEN + 1);
        assert!(err(PublicKey::from_pem(&huge)).contains("larger than"));
        assert!(err(PublicKey::from_spki_der(&[0x30; 10])).contains("malformed"));
        // Garbage signatures never panic.
        let k = PublicKey::from_pem(&fixture("signatures/containers-image/cosign.pub")).unwrap();
        assert!(err(k.verify(b"m", b"")).contains("empty"));
        assert!(err(k.verify(b"m", &[0u8; 5000])).contains("larger than"));
        assert!(err(k.verify(b"m", &[0x30, 0x02, 0x02, 0x00])).contains("malformed"));
    }
}

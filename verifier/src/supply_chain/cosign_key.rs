//! cosign's encrypted private key format (`ENCRYPTED SIGSTORE PRIVATE KEY`), key generation and signing.
//!
//! A cosign private key file is one PEM block labelled `ENCRYPTED SIGSTORE PRIVATE KEY` (cosign 2.x; cosign
//! 1.x wrote `ENCRYPTED COSIGN PRIVATE KEY`, still read) whose body is a JSON document:
//!
//! ```json
//! {"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"<base64, 32 bytes>"},
//!  "cipher":{"name":"nacl/secretbox","nonce":"<base64, 24 bytes>"},
//!  "ciphertext":"<base64>"}
//! ```
//!
//! The secretbox key is `scrypt(password, salt, N, r, p)` (32 bytes); opening the box yields the PKCS#8 DER
//! of the private key. cosign 2.x writes N=65536 and cosign 1.x wrote N=32768 (both r=8, p=1); vouch reads
//! any parameters within fixed bounds (so that a hostile file cannot make it use gigabytes of memory or
//! minutes of CPU) and writes cosign 2.x's.
//!
//! [`SigningKey`] holds an ECDSA P-256 (what cosign and `vouch keygen` generate), ECDSA P-384, Ed25519 or
//! RSA (2048, 3072 or 4096 bits) private key and signs the way cosign does with such a key: ECDSA over
//! SHA-256 (P-256) or SHA-384 (P-384) with an ASN.1 DER signature, Ed25519 over the raw message, RSA
//! PKCS#1 v1.5 over SHA-256.
//!
//! The password comes from `COSIGN_PASSWORD` ([`password_from_env`]); an empty value is an empty
//! password, as in cosign.

use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use p256::elliptic_curve::zeroize::Zeroizing;
use pkcs8::{AssociatedOid, DecodePrivateKey, EncodePrivateKey, LineEnding, PrivateKeyInfo};
use rand_core::{OsRng, RngCore};
use rsa::signature::SignatureEncoding;
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use spki::EncodePublicKey;

/// The PEM label cosign 2.x writes (and vouch writes).
pub const SIGSTORE_PEM_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The PEM label cosign 1.x wrote; still read.
pub const COSIGN_PEM_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// The environment variable holding the private key's password, as in cosign.
pub const PASSWORD_ENV: &str = "COSIGN_PASSWORD";
/// Larger files are refused before parsing (an encrypted RSA 4096 key is about 4.5 KiB).
pub const MAX_KEY_FILE_SIZE: usize = 64 * 1024;

/// scrypt parameters written: cosign 2.x's (N = 2^16, r = 8, p = 1).
const WRITE_LOG_N: u8 = 16;
const WRITE_R: u32 = 8;
const WRITE_P: u32 = 1;
/// Bounds on the scrypt parameters read. scrypt needs 128·r·N bytes and time proportional to N·r·p;
/// cosign 2.x uses 64 MiB and N·r·p = 2^19.
const MAX_LOG_N: u32 = 20;
const MAX_R: u64 = 32;
const MAX_P: u64 = 16;
const MAX_SCRYPT_MEMORY: u64 = 256 * 1024 * 1024;
const MAX_SCRYPT_WORK: u64 = 1 << 22;

const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;
/// Poly1305 authenticator that precedes the ciphertext in a NaCl secretbox.
const TAG_LEN: usize = 16;

const KDF_SCRYPT: &str = "scrypt";
const CIPHER_SECRETBOX: &str = "nacl/secretbox";

pub type Result<T, E = KeyError> = std::result::Result<T, E>;

/// What can go wrong reading, writing or using a private key. Each renders as one line.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not PEM, not the expected PEM block, not cosign's JSON, bad base64 or bad lengths.
    #[error("not a cosign encrypted private key: {0}")]
    Malformed(String),

    /// The scrypt parameters are outside the bounds vouch accepts.
    #[error("refusing scrypt parameters N={n}, r={r}, p={p}: {reason}")]
    KdfParams {
        n: u64,
        r: u64,
        p: u64,
        reason: String,
    },

    /// The secretbox did not open: the password is wrong or the file was altered.
    #[error("wrong password or corrupted key")]
    Decrypt,

    /// The key decrypted but is of a type (or in a form) vouch does not sign with.
    #[error("unsupported private key: {0}")]
    Unsupported(String),

    #[error("COSIGN_PASSWORD is not set: set it to the private key's password (it may be empty); vouch does not prompt")]
    PasswordUnset,

    /// Randomness, encoding or signing failed.
    #[error("{0}")]
    Crypto(String),

    /// A file could not be read or written.
    #[error("{}: {reason}", path.display())]
    Io { path: PathBuf, reason: String },

    /// An error about the key in a named file.
    #[error("{}: {source}", path.display())]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<KeyError>,
    },
}

fn malformed(reason: impl Into<String>) -> KeyError {
    KeyError::Malformed(reason.into())
}

fn crypto(what: &str, e: impl fmt::Display) -> KeyError {
    KeyError::Crypto(format!("{what}: {e}"))
}

/// The signature scheme a [`SigningKey`] uses: the one cosign uses with such a key by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 over SHA-256, ASN.1 DER signature.
    EcdsaP256Sha256,
    /// ECDSA on P-384 over SHA-384, ASN.1 DER signature.
    EcdsaP384Sha384,
    /// Ed25519 over the raw message (PureEd25519).
    Ed25519,
    /// RSA PKCS#1 v1.5 over SHA-256.
    RsaPkcs1v15Sha256,
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyAlgorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            KeyAlgorithm::EcdsaP384Sha384 => "ecdsa-p384-sha384",
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::RsaPkcs1v15Sha256 => "rsa-pkcs1v15-sha256",
        })
    }
}

/// A private key that signs the way cosign does. Its `Debug` output names the algorithm only.
pub struct SigningKey(Inner);

enum Inner {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
    Rsa(Box<rsa::RsaPrivateKey>),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.algorithm())
    }
}

impl SigningKey {
    /// A fresh ECDSA P-256 key (cosign's default) from the operating system's random source.
    pub fn generate_p256() -> Result<Self> {
        // A uniformly random 256-bit string is a valid scalar except with probability ~2^-32; retry then.
        for _ in 0..16 {
            let mut bytes = Zeroizing::new([0u8; 32]);
            OsRng
                .try_fill_bytes(bytes.as_mut_slice())
                .map_err(|e| crypto("no randomness for a new key", e))?;
            if let Ok(key) = p256::ecdsa::SigningKey::from_slice(bytes.as_slice()) {
                return Ok(SigningKey(Inner::P256(key)));
            }
        }
        Err(KeyError::Crypto(
            "could not generate a P-256 key: the random source keeps returning invalid scalars"
                .into(),
        ))
    }

    /// Decrypts a cosign encrypted private key (PEM, either label) with `password`.
    pub fn from_encrypted_pem(pem: &[u8], password: &[u8]) -> Result<Self> {
        let der = decrypt_pem(pem, password)?;
        Self::from_pkcs8_der(&der)
    }

    /// Reads and decrypts a cosign private key file; errors name the file.
    pub fn from_encrypted_file(path: &Path, password: &[u8]) -> Result<Self> {
        let in_file = |source| KeyError::InFile {
            path: path.to_path_buf(),
            source: Box::new(source),
        };
        let io = |e: std::io::Error| KeyError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let mut pem = Vec::new();
        File::open(path)
            .map_err(io)?
            .take(MAX_KEY_FILE_SIZE as u64 + 1)
            .read_to_end(&mut pem)
            .map_err(io)?;
        Self::from_encrypted_pem(&pem, password).map_err(in_file)
    }

    /// Encrypts the key in cosign 2.x's format: PEM `ENCRYPTED SIGSTORE PRIVATE KEY`, scrypt N=65536 r=8 p=1
    /// with a fresh random salt, nacl/secretbox with a fresh random nonce.
    pub fn to_encrypted_pem(&self, password: &[u8]) -> Result<String> {
        self.to_encrypted_pem_with(password, WRITE_LOG_N, WRITE_R, WRITE_P)
    }

    fn to_encrypted_pem_with(&self, password: &[u8], log_n: u8, r: u32, p: u32) -> Result<String> {
        let der = self.to_pkcs8_der()?;
        encrypt_pem(der.as_bytes(), password, log_n, r, p)
    }

    /// The public key as SPKI PEM (`PUBLIC KEY`), what cosign writes to `cosign.pub`.
    pub fn public_key_pem(&self) -> Result<String> {
        let pem = match &self.0 {
            Inner::P256(k) => k.verifying_key().to_public_key_pem(LineEnding::LF),
            Inner::P384(k) => k.verifying_key().to_public_key_pem(LineEnding::LF),
            Inner::Ed25519(k) => k.verifying_key().to_public_key_pem(LineEnding::LF),
            Inner::Rsa(k) => k.to_public_key().to_public_key_pem(LineEnding::LF),
        };
        pem.map_err(|e| crypto("cannot encode the public key", e))
    }

    /// The public key as SPKI DER.
    pub fn public_key_der(&self) -> Result<Vec<u8>> {
        let doc = match &self.0 {
            Inner::P256(k) => k.verifying_key().to_public_key_der(),
            Inner::P384(k) => k.verifying_key().to_public_key_der(),
            Inner::Ed25519(k) => k.verifying_key().to_public_key_der(),
            Inner::Rsa(k) => k.to_public_key().to_public_key_der(),
        };
        doc.map(|d| d.into_vec())
            .map_err(|e| crypto("cannot encode the public key", e))
    }

    /// The scheme [`sign`](Self::sign) uses.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match &self.0 {
            Inner::P256(_) => KeyAlgorithm::EcdsaP256Sha256,
            Inner::P384(_) => KeyAlgorithm::EcdsaP384Sha384,
            Inner::Ed25519(_) => KeyAlgorithm::Ed25519,
            Inner::Rsa(_) => KeyAlgorithm::RsaPkcs1v15Sha256,
        }
    }

    /// Signs `message` as cosign does (see [`KeyAlgorithm`]): the bytes to put in
    /// `dev.cosignproject.cosign/signature` (base64-encoded there).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        use p256::ecdsa::signature::Signer as _;
        let failed = |e| crypto("signing failed", e);
        Ok(match &self.0 {
            Inner::P256(k) => {
                let sig: p256::ecdsa::DerSignature = k.try_sign(message).map_err(failed)?;
                sig.to_vec()
            }
            Inner::P384(k) => {
                let sig: p384::ecdsa::DerSignature = k.try_sign(message).map_err(failed)?;
                sig.to_vec()
            }
            Inner::Ed25519(k) => k.try_sign(message).map_err(failed)?.to_vec(),
            Inner::Rsa(k) => {
                let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(k.as_ref().clone());
                signer.try_sign(message).map_err(failed)?.to_vec()
            }
        })
    }

    /// The PKCS#8 DER cosign encrypts (v1, without the optional public key for Ed25519, as Go writes it).
    fn to_pkcs8_der(&self) -> Result<pkcs8::SecretDocument> {
        let doc = match &self.0 {
            Inner::P256(k) => k.to_pkcs8_der(),
            Inner::P384(k) => k.to_pkcs8_der(),
            Inner::Ed25519(k) => ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: k.to_bytes(),
                public_key: None,
            }
            .to_pkcs8_der(),
            Inner::Rsa(k) => k.to_pkcs8_der(),
        };
        doc.map_err(|e| crypto("cannot encode the private key", e))
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        let not_pkcs8 = |e: &dyn fmt::Display| {
            KeyError::Unsupported(format!("the decrypted key is not valid PKCS#8: {e}"))
        };
        let info = PrivateKeyInfo::try_from(der).map_err(|e| not_pkcs8(&e))?;
        let oid = info.algorithm.oid;
        if oid == p256::elliptic_curve::ALGORITHM_OID {
            let curve = info.algorithm.parameters_oid().map_err(|e| not_pkcs8(&e))?;
            if curve == p256::NistP256::OID {
                let key =
                    p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|e| not_pkcs8(&e))?;
                Ok(SigningKey(Inner::P256(key)))
            } else if curve == p384::NistP384::OID {
                let key =
                    p384::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|e| not_pkcs8(&e))?;
                Ok(SigningKey(Inner::P384(key)))
            } else {
                Err(KeyError::Unsupported(format!(
                    "ECDSA on curve {curve} (vouch signs with P-256 and P-384)"
                )))
            }
        } else if oid == ed25519_dalek::pkcs8::ALGORITHM_OID {
            let key = ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(|e| not_pkcs8(&e))?;
            Ok(SigningKey(Inner::Ed25519(key)))
        } else if oid == rsa::pkcs1::ALGORITHM_OID {
            let key = rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|e| not_pkcs8(&e))?;
            let bits = key.n().bits();
            if ![2048, 3072, 4096].contains(&bits) {
                return Err(KeyError::Unsupported(format!(
                    "RSA key of {bits} bits (cosign and vouch use 2048, 3072 or 4096)"
                )));
            }
            key.validate()
                .map_err(|e| KeyError::Unsupported(format!("invalid RSA key: {e}")))?;
            Ok(SigningKey(Inner::Rsa(Box::new(key))))
        } else {
            Err(KeyError::Unsupported(format!(
                "key algorithm {oid} (vouch signs with ECDSA P-256/P-384, Ed25519 and RSA)"
            )))
        }
    }
}

/// The private key's password from `COSIGN_PASSWORD` (any bytes; empty is an empty password).
pub fn password_from_env() -> Result<Vec<u8>> {
    password_from(std::env::var_os(PASSWORD_ENV))
}

fn password_from(value: Option<OsString>) -> Result<Vec<u8>> {
    value
        .map(OsStringExt::into_vec)
        .ok_or(KeyError::PasswordUnset)
}

/// The files [`write_key_pair`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPairFiles {
    pub private_key: PathBuf,
    pub public_key: PathBuf,
}

/// `PREFIX.key` and `PREFIX.pub`.
pub fn key_pair_paths(prefix: &Path) -> KeyPairFiles {
    let with = |suffix: &str| {
        let mut s = prefix.as_os_str().to_os_string();
        s.push(suffix);
        PathBuf::from(s)
    };
    KeyPairFiles {
        private_key: with(".key"),
        public_key: with(".pub"),
    }
}

/// Writes `key` encrypted with `password` to `PREFIX.key` (mode 0600) and its public key to `PREFIX.pub`
/// (mode 0644). Without `force`, an existing file at either path is an error and nothing is written.
pub fn write_key_pair(
    prefix: &Path,
    key: &SigningKey,
    password: &[u8],
    force: bool,
) -> Result<KeyPairFiles> {
    let private_pem = key.to_encrypted_pem(password)?;
    let public_pem = key.public_key_pem()?;
    write_pem_pair(prefix, &private_pem, &public_pem, force)
}

fn write_pem_pair(
    prefix: &Path,
    private_pem: &str,
    public_pem: &str,
    force: bool,
) -> Result<KeyPairFiles> {
    let files = key_pair_paths(prefix);
    if !force {
        for path in [&files.private_key, &files.public_key] {
            if path.symlink_metadata().is_ok() {
                return Err(KeyError::Io {
                    path: path.clone(),
                    reason: "already exists (use --force to overwrite)".into(),
                });
            }
        }
    }
    write_new_file(&files.private_key, private_pem.as_bytes(), 0o600, force)?;
    if let Err(e) = write_new_file(&files.public_key, public_pem.as_bytes(), 0o644, force) {
        // Do not leave half a key pair behind.
        let _ = std::fs::remove_file(&files.private_key);
        return Err(e);
    }
    Ok(files)
}

/// Creates `path` with `mode` (never following a symlink there) and writes `contents`; with `replace`, an
/// existing file is removed first, so the new one gets `mode` whatever the old one had.
fn write_new_file(path: &Path, contents: &[u8], mode: u32, replace: bool) -> Result<()> {
    let io = |e: std::io::Error| KeyError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    if replace {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::Io {
                    path: path.to_path_buf(),
                    reason: "already exists (use --force to overwrite)".into(),
                }
            } else {
                io(e)
            }
        })?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(io)
}

// ---------------------------------------------------------------------------------------------------------
// The encrypted envelope.

/// The JSON body of the PEM block; field order is cosign's (Go's struct order).
#[derive(Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u64,
    p: u64,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// Standard base64 as Go's `encoding/json` writes `[]byte`; padding optional on input.
const B64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn decode_b64(field: &str, value: &str) -> Result<Vec<u8>> {
    B64_LENIENT
        .decode(value)
        .map_err(|e| malformed(format!("{field} is not valid base64: {e}")))
}

/// Checks scrypt parameters against vouch's bounds and turns them into the scrypt crate's.
fn scrypt_params(params: &KdfParams) -> Result<scrypt::Params> {
    let KdfParams { n, r, p } = *params;
    let refuse = |reason: String| KeyError::KdfParams { n, r, p, reason };
    if n < 2 || !n.is_power_of_two() {
        return Err(refuse("N must be a power of two, at least 2".into()));
    }
    let log_n = n.trailing_zeros();
    if log_n > MAX_LOG_N {
        return Err(refuse(format!("N is above 2^{MAX_LOG_N}")));
    }
    if r == 0 || p == 0 {
        return Err(refuse("r and p must be at least 1".into()));
    }
    if r > MAX_R || p > MAX_P {
        return Err(refuse(format!(
            "r must be at most {MAX_R} and p at most {MAX_P}"
        )));
    }
    // No overflow: n <= 2^20, r <= 2^5, p <= 2^4.
    let memory = 128 * r * n;
    if memory > MAX_SCRYPT_MEMORY {
        return Err(refuse(format!(
            "would need {} MiB of memory (limit {} MiB)",
            memory >> 20,
            MAX_SCRYPT_MEMORY >> 20
        )));
    }
    if n * r * p > MAX_SCRYPT_WORK {
        return Err(refuse(format!(
            "N*r*p is above 2^{}",
            MAX_SCRYPT_WORK.trailing_zeros()
        )));
    }
    // The casts are lossless after the bounds above.
    scrypt::Params::new(log_n as u8, r as u32, p as u32, KEY_LEN)
        .map_err(|e| refuse(format!("invalid for scrypt: {e}")))
}

fn derive_key(
    password: &[u8],
    salt: &[u8],
    params: &scrypt::Params,
) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    scrypt::scrypt(password, salt, params, key.as_mut_slice())
        .map_err(|e| crypto("scrypt failed", e))?;
    Ok(key)
}

fn secretbox(key: &[u8; KEY_LEN]) -> XSalsa20Poly1305 {
    XSalsa20Poly1305::new(&crypto_secretbox::Key::from(*key))
}

/// The PKCS#8 DER inside a cosign encrypted PEM private key.
fn decrypt_pem(pem: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let (label, body) = decode_pem(pem)?;
    match label.as_str() {
        SIGSTORE_PEM_LABEL | COSIGN_PEM_LABEL => {}
        "PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY" | "OPENSSH PRIVATE KEY" => {
            return Err(KeyError::Unsupported(format!(
                "an unencrypted {label}; vouch reads cosign's encrypted keys (convert it with `cosign import-key-pair`)"
            )))
        }
        "PUBLIC KEY" => return Err(malformed("this is a public key, not a private key")),
        other => {
            return Err(malformed(format!(
                "PEM block is {other:?}, expected {SIGSTORE_PEM_LABEL:?}"
            )))
        }
    }
    let envelope: Envelope = serde_json::from_slice(&body)
        .map_err(|e| malformed(format!("the PEM body is not cosign's JSON: {e}")))?;
    if envelope.kdf.name != KDF_SCRYPT {
        return Err(malformed(format!(
            "key derivation {:?}, expected {KDF_SCRYPT:?}",
            envelope.kdf.name
        )));
    }
    if envelope.cipher.name != CIPHER_SECRETBOX {
        return Err(malformed(format!(
            "cipher {:?}, expected {CIPHER_SECRETBOX:?}",
            envelope.cipher.name
        )));
    }
    let params = scrypt_params(&envelope.kdf.params)?;
    let salt = decode_b64("kdf.salt", &envelope.kdf.salt)?;
    let nonce = decode_b64("cipher.nonce", &envelope.cipher.nonce)?;
    let nonce: [u8; NONCE_LEN] = nonce.as_slice().try_into().map_err(|_| {
        malformed(format!(
            "cipher.nonce is {} bytes, expected {NONCE_LEN}",
            nonce.len()
        ))
    })?;
    let ciphertext = decode_b64("ciphertext", &envelope.ciphertext)?;
    if ciphertext.len() < TAG_LEN {
        return Err(malformed(format!(
            "ciphertext is {} bytes, shorter than its {TAG_LEN}-byte authenticator",
            ciphertext.len()
        )));
    }
    let key = derive_key(password, &salt, &params)?;
    secretbox(&key)
        .decrypt(&crypto_secretbox::Nonce::from(nonce), ciphertext.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| KeyError::Decrypt)
}

fn encrypt_pem(plaintext: &[u8], password: &[u8], log_n: u8, r: u32, p: u32) -> Result<String> {
    let params = scrypt::Params::new(log_n, r, p, KEY_LEN)
        .map_err(|e| crypto("invalid scrypt parameters", e))?;
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    OsRng
        .try_fill_bytes(&mut salt)
        .and_then(|()| OsRng.try_fill_bytes(&mut nonce))
        .map_err(|e| crypto("no randomness for salt and nonce", e))?;
    let key = derive_key(password, &salt, &params)?;
    let ciphertext = secretbox(&key)
        .encrypt(&crypto_secretbox::Nonce::from(nonce), plaintext)
        .map_err(|e| crypto("encryption failed", e))?;
    let envelope = Envelope {
        kdf: Kdf {
            name: KDF_SCRYPT.into(),
            params: KdfParams {
                n: 1 << log_n,
                r: r.into(),
                p: p.into(),
            },
            salt: STANDARD.encode(salt),
        },
        cipher: Cipher {
            name: CIPHER_SECRETBOX.into(),
            nonce: STANDARD.encode(nonce),
        },
        ciphertext: STANDARD.encode(ciphertext),
    };
    let json = serde_json::to_vec(&envelope).map_err(|e| crypto("cannot encode the key", e))?;
    Ok(encode_pem(SIGSTORE_PEM_LABEL, &json))
}

// ---------------------------------------------------------------------------------------------------------
// PEM, read leniently (first block, any line length, CRLF, surrounding text) and written as Go writes it.

/// The label and decoded body of the first PEM block in `input`.
fn decode_pem(input: &[u8]) -> Result<(String, Vec<u8>)> {
    if input.len() > MAX_KEY_FILE_SIZE {
        return Err(malformed(format!("larger than {MAX_KEY_FILE_SIZE} bytes")));
    }
    let text = std::str::from_utf8(input).map_err(|_| malformed("not PEM (not text)"))?;
    let mut lines = text.lines().map(str::trim);
    let label = lines
        .by_ref()
        .find_map(|line| line.strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .ok_or_else(|| malformed("no PEM block"))?
        .to_string();
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    let mut ended = false;
    for line in lines {
        if line == end {
            ended = true;
            break;
        }
        if line.contains(':') || line.starts_with("-----") {
            return Err(malformed(format!(
                "unexpected line in PEM block {label:?} (headers are not supported)"
            )));
        }
        body.push_str(line);
    }
    if !ended {
        return Err(malformed(format!(
            "PEM block {label:?} has no END line (truncated?)"
        )));
    }
    let body = B64_LENIENT
        .decode(body.as_bytes())
        .map_err(|e| malformed(format!("PEM body is not valid base64: {e}")))?;
    Ok((label, body))
}

/// PEM with 64-character lines and a final newline, like Go's `pem.EncodeToMemory`.
fn encode_pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    // Base64 is ASCII, so every 64-byte chunk is valid UTF-8.
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier as _;
    use std::sync::OnceLock;

    /// Password of the Python-made vectors in `tests/data/cosign-*.key` (see `make_cosign_keys.py`).
    const VECTOR_PASSWORD: &[u8] = b"vouch test vector";

    fn data(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn data_text(name: &str) -> String {
        String::from_utf8(data(name)).unwrap()
    }

    /// A Python-made vector, decrypted once per test run (scrypt N=65536 is slow in debug builds).
    fn vector(name: &str) -> &'static SigningKey {
        static P256: OnceLock<SigningKey> = OnceLock::new();
        static P384: OnceLock<SigningKey> = OnceLock::new();
        static ED25519: OnceLock<SigningKey> = OnceLock::new();
        let cell = match name {
            "cosign-p256" => &P256,
            "cosign-p384" => &P384,
            "cosign-ed25519" => &ED25519,
            _ => panic!("no vector {name}"),
        };
        cell.get_or_init(|| {
            SigningKey::from_encrypted_pem(&data(&format!("{name}.key")), VECTOR_PASSWORD).unwrap()
        })
    }

    /// Cheap scrypt (N=2^10) for tests that do not care about the parameters.
    fn cheap_pem(key: &SigningKey, password: &[u8]) -> String {
        key.to_encrypted_pem_with(password, 10, 8, 1).unwrap()
    }

    /// The JSON inside a PEM made by vouch.
    fn envelope_json(pem: &str) -> serde_json::Value {
        let (_, body) = decode_pem(pem.as_bytes()).unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    fn pem_of_json(label: &str, json: &serde_json::Value) -> String {
        encode_pem(label, &serde_json::to_vec(json).unwrap())
    }

    #[test]
    fn cosign_key_round_trip_with_cosign_parameters() {
        let key = SigningKey::generate_p256().unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::EcdsaP256Sha256);
        let pem = key.to_encrypted_pem(b"correct horse").unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        assert!(pem.ends_with("-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        let json = envelope_json(&pem);
        assert_eq!(
            json["kdf"]["params"],
            serde_json::json!({"N": 65536, "r": 8, "p": 1})
        );
        assert_eq!(json["kdf"]["name"], "scrypt");
        assert_eq!(json["cipher"]["name"], "nacl/secretbox");
        let salt = STANDARD
            .decode(json["kdf"]["salt"].as_str().unwrap())
            .unwrap();
        let nonce = STANDARD
            .decode(json["cipher"]["nonce"].as_str().unwrap())
            .unwrap();
        assert_eq!((salt.len(), nonce.len()), (32, 24));
        // Field order as cosign writes it.
        let (_, body) = decode_pem(pem.as_bytes()).unwrap();
        let body = String::from_utf8(body).unwrap();
        assert!(body
            .starts_with(r#"{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":""#));

        let back = SigningKey::from_encrypted_pem(pem.as_bytes(), b"correct horse").unwrap();
        assert_eq!(
            back.public_key_pem().unwrap(),
            key.public_key_pem().unwrap()
        );
        // Fresh salt and nonce every time.
        let again = envelope_json(&cheap_pem(&key, b"correct horse"));
        assert_ne!(again["kdf"]["salt"], json["kdf"]["salt"]);
        assert_ne!(again["cipher"]["nonce"], json["cipher"]["nonce"]);
    }

    #[test]
    fn cosign_key_round_trips_every_key_type_and_empty_password() {
        for name in ["cosign-p256", "cosign-p384", "cosign-ed25519"] {
            let key = vector(name);
            let pem = cheap_pem(key, b"");
            let back = SigningKey::from_encrypted_pem(pem.as_bytes(), b"").unwrap();
            assert_eq!(back.algorithm(), key.algorithm());
            assert_eq!(
                back.public_key_der().unwrap(),
                key.public_key_der().unwrap()
            );
            assert!(matches!(
                SigningKey::from_encrypted_pem(pem.as_bytes(), b" "),
                Err(KeyError::Decrypt)
            ));
        }
    }

    #[test]
    fn cosign_key_wrong_password_fails_cleanly() {
        let key = SigningKey::generate_p256().unwrap();
        let pem = cheap_pem(&key, b"right");
        let err = SigningKey::from_encrypted_pem(pem.as_bytes(), b"wrong").unwrap_err();
        assert!(matches!(err, KeyError::Decrypt));
        assert_eq!(err.to_string(), "wrong password or corrupted key");
    }

    #[test]
    fn cosign_key_tampered_ciphertext_salt_or_nonce_fails() {
        let key = SigningKey::generate_p256().unwrap();
        let json = envelope_json(&cheap_pem(&key, b"pw"));
        for pointer in ["/ciphertext", "/kdf/salt", "/cipher/nonce"] {
            let mut bytes = STANDARD
                .decode(json.pointer(pointer).unwrap().as_str().unwrap())
                .unwrap();
            for i in [0, bytes.len() / 2, bytes.len() - 1] {
                let mut doc = json.clone();
                bytes[i] ^= 0x01;
                *doc.pointer_mut(pointer).unwrap() = STANDARD.encode(&bytes).into();
                bytes[i] ^= 0x01;
                let pem = pem_of_json(SIGSTORE_PEM_LABEL, &doc);
                let err = SigningKey::from_encrypted_pem(pem.as_bytes(), b"pw").unwrap_err();
                assert!(matches!(err, KeyError::Decrypt), "{pointer}[{i}]: {err}");
            }
        }
        // Changed parameters derive another key.
        let mut doc = json.clone();
        doc["kdf"]["params"]["N"] = 2048.into();
        let pem = pem_of_json(SIGSTORE_PEM_LABEL, &doc);
        assert!(matches!(
            SigningKey::from_encrypted_pem(pem.as_bytes(), b"pw"),
            Err(KeyError::Decrypt)
        ));
    }

    #[test]
    fn cosign_key_absurd_scrypt_parameters_are_refused() {
        let key = SigningKey::generate_p256().unwrap();
        let json = envelope_json(&cheap_pem(&key, b"pw"));
        let cases: &[(u64, u64, u64, &str)] = &[
            (1 << 21, 8, 1, "above 2^20"),
            (1 << 20, 8, 1, "memory"),
            (1 << 40, 8, 1, "above 2^20"),
            (65536, 1 << 20, 1, "at most"),
            (65536, 8, 1 << 20, "at most"),
            (65536, 8, 16, "N*r*p"),
            (65537, 8, 1, "power of two"),
            (0, 8, 1, "power of two"),
            (1, 8, 1, "power of two"),
            (65536, 0, 1, "at least 1"),
            (65536, 8, 0, "at least 1"),
            // scrypt itself requires N < 2^(16 r).
            (1 << 17, 1, 1, "invalid for scrypt"),
        ];
        for &(n, r, p, why) in cases {
            let mut doc = json.clone();
            doc["kdf"]["params"] = serde_json::json!({"N": n, "r": r, "p": p});
            let pem = pem_of_json(SIGSTORE_PEM_LABEL, &doc);
            let err = SigningKey::from_encrypted_pem(pem.as_bytes(), b"pw").unwrap_err();
            assert!(
                matches!(err, KeyError::KdfParams { .. }) && err.to_string().contains(why),
                "N={n} r={r} p={p}: {err}"
            );
        }
        // Negative or huge numbers, strings: not even parsed.
        for params in [
            serde_json::json!({"N": -1, "r": 8, "p": 1}),
            serde_json::json!({"N": 1e300, "r": 8, "p": 1}),
            serde_json::json!({"N": "65536", "r": 8, "p": 1}),
            serde_json::json!({"r": 8, "p": 1}),
        ] {
            let mut doc = json.clone();
            doc["kdf"]["params"] = params;
            let pem = pem_of_json(SIGSTORE_PEM_LABEL, &doc);
            let err = SigningKey::from_encrypted_pem(pem.as_bytes(), b"pw").unwrap_err();
            assert!(matches!(err, KeyError::Malformed(_)), "{err}");
        }
    }

    #[test]
    fn cosign_key_garbage_and_truncation_are_refused_without_panic() {
        let key = SigningKey::generate_p256().unwrap();
        let pem = cheap_pem(&key, b"pw");
        // Every truncation of the PEM.
        // (All but the final newline, without which the PEM is still complete.)
        for len in 0..pem.len() - 1 {
            let cut = &pem.as_bytes()[..len];
            assert!(
                SigningKey::from_encrypted_pem(cut, b"pw").is_err(),
                "length {len}"
            );
        }
        let garbage: &[&[u8]] = &[
            b"",
            b"\xff\xfe\x00garbage",
            b"hello",
            b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
            b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n!!!!\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
            b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
            b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END COSIGN PRIVATE KEY-----\n",
        ];
        for input in garbage {
            let err = SigningKey::from_encrypted_pem(input, b"pw").unwrap_err();
            assert!(matches!(err, KeyError::Malformed(_)), "{err}");
        }
        // Valid PEM, bad JSON of every kind.
        let json = envelope_json(&pem);
        let mut bad_docs = vec![
            serde_json::json!([]),
            serde_json::json!({}),
            serde_json::json!("string"),
        ];
        for (pointer, value) in [
            ("/kdf/name", serde_json::json!("argon2")),
            ("/cipher/name", serde_json::json!("aes-gcm")),
            ("/cipher/nonce", serde_json::json!("AAAA")),
            ("/cipher/nonce", serde_json::json!("not base64!")),
            ("/kdf/salt", serde_json::json!(42)),
            ("/ciphertext", serde_json::json!("")),
            ("/ciphertext", serde_json::json!("AAAAAAAA")),
            ("/ciphertext", serde_json::json!(null)),
        ] {
            let mut doc = json.clone();
            *doc.pointer_mut(pointer).unwrap() = value;
            bad_docs.push(doc);
        }
        for doc in bad_docs {
            let pem = pem_of_json(SIGSTORE_PEM_LABEL, &doc);
            let err = SigningKey::from_encrypted_pem(pem.as_bytes(), b"pw").unwrap_err();
            assert!(matches!(err, KeyError::Malformed(_)), "{doc}: {err}");
        }
        let not_json = encode_pem(SIGSTORE_PEM_LABEL, b"{\"kdf\":");
        assert!(matches!(
            SigningKey::from_encrypted_pem(not_json.as_bytes(), b"pw"),
            Err(KeyError::Malformed(_))
        ));
        // Oversized input is refused before parsing.
        let big = vec![b'A'; MAX_KEY_FILE_SIZE + 1];
        let err = SigningKey::from_encrypted_pem(&big, b"pw").unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }

    #[test]
    fn cosign_key_other_pem_blocks_are_named() {
        let key = SigningKey::generate_p256().unwrap();
        let public = key.public_key_pem().unwrap();
        let err = SigningKey::from_encrypted_pem(public.as_bytes(), b"").unwrap_err();
        assert!(err.to_string().contains("public key"), "{err}");
        let plain = match &key.0 {
            Inner::P256(k) => k.to_pkcs8_pem(LineEnding::LF).unwrap(),
            _ => unreachable!(),
        };
        let err = SigningKey::from_encrypted_pem(plain.as_bytes(), b"").unwrap_err();
        assert!(err.to_string().contains("unencrypted PRIVATE KEY"), "{err}");
    }

    #[test]
    fn cosign_key_decrypted_non_key_is_refused() {
        // A well-formed envelope whose plaintext is not PKCS#8.
        let pem = encrypt_pem(b"not a key", b"pw", 10, 8, 1).unwrap();
        let err = SigningKey::from_encrypted_pem(pem.as_bytes(), b"pw").unwrap_err();
        assert!(matches!(err, KeyError::Unsupported(_)), "{err}");
    }

    #[test]
    fn cosign_key_lenient_pem_reading() {
        let key = SigningKey::generate_p256().unwrap();
        let pem = cheap_pem(&key, b"pw");
        // CRLF, surrounding text, one long line, cosign 1.x label.
        let crlf = format!(
            "comment before\r\n{}\r\ntrailing",
            pem.replace('\n', "\r\n")
        );
        let (label, body) = decode_pem(pem.as_bytes()).unwrap();
        let long = format!(
            "-----BEGIN {COSIGN_PEM_LABEL}-----\n{}\n-----END {COSIGN_PEM_LABEL}-----",
            STANDARD.encode(&body)
        );
        assert_eq!(label, SIGSTORE_PEM_LABEL);
        for text in [crlf, long] {
            let back = SigningKey::from_encrypted_pem(text.as_bytes(), b"pw").unwrap();
            assert_eq!(
                back.public_key_der().unwrap(),
                key.public_key_der().unwrap()
            );
        }
    }

    #[test]
    fn cosign_key_p256_signature_verifies_with_sha256() {
        let key = vector("cosign-p256");
        let message = br#"{"critical":{"identity":{"docker-reference":"r.example/a"},"image":{"docker-manifest-digest":"sha256:00"},"type":"cosign container image signature"},"optional":null}"#;
        let der = key.sign(message).unwrap();
        let public = <p256::ecdsa::VerifyingKey as spki::DecodePublicKey>::from_public_key_pem(
            &data_text("cosign-p256.pub"),
        )
        .unwrap();
        let sig = p256::ecdsa::DerSignature::from_bytes(&der).unwrap();
        public.verify(message, &sig).unwrap();
        // Explicitly over SHA-256 of the message.
        use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
        use sha2::Digest as _;
        let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
        public
            .verify_prehash(&sha2::Sha256::digest(message), &sig)
            .unwrap();
        assert!(public.verify(b"other message", &sig).is_err());
    }

    #[test]
    fn cosign_key_p384_and_ed25519_signatures_verify() {
        use sha2::Digest as _;
        let message = b"payload";
        let key = vector("cosign-p384");
        assert_eq!(key.algorithm(), KeyAlgorithm::EcdsaP384Sha384);
        let public = <p384::ecdsa::VerifyingKey as spki::DecodePublicKey>::from_public_key_pem(
            &data_text("cosign-p384.pub"),
        )
        .unwrap();
        let sig = p384::ecdsa::Signature::from_der(&key.sign(message).unwrap()).unwrap();
        use p384::ecdsa::signature::hazmat::PrehashVerifier as _;
        public
            .verify_prehash(&sha2::Sha384::digest(message), &sig)
            .unwrap();

        let key = vector("cosign-ed25519");
        assert_eq!(key.algorithm(), KeyAlgorithm::Ed25519);
        let public = <ed25519_dalek::VerifyingKey as spki::DecodePublicKey>::from_public_key_pem(
            &data_text("cosign-ed25519.pub"),
        )
        .unwrap();
        let sig = ed25519_dalek::Signature::from_slice(&key.sign(message).unwrap()).unwrap();
        public.verify_strict(message, &sig).unwrap();
    }

    /// Keys made by Python (`tests/data/make_cosign_keys.py`, python3-cryptography and python3-nacl), not by
    /// vouch: vouch reads them and derives the public keys Python wrote.
    #[test]
    fn cosign_key_reads_python_made_vectors() {
        for (name, algorithm) in [
            ("cosign-p256", KeyAlgorithm::EcdsaP256Sha256),
            ("cosign-p384", KeyAlgorithm::EcdsaP384Sha384),
            ("cosign-ed25519", KeyAlgorithm::Ed25519),
        ] {
            let key = vector(name);
            assert_eq!(key.algorithm(), algorithm, "{name}");
            assert_eq!(
                key.public_key_pem().unwrap(),
                data_text(&format!("{name}.pub")),
                "{name}"
            );
        }
    }

    /// Keys from sigstore-rs's test data (Apache-2.0; see `tests/data/SOURCES.md`): one generated by cosign
    /// 2.x with an empty password (N=65536), one in cosign 1.x's format (`ENCRYPTED COSIGN PRIVATE KEY`,
    /// N=32768) with password "123". The `.pub` files were derived from them with Python.
    #[test]
    fn cosign_key_reads_cosign_made_keys() {
        for (name, password) in [
            ("sigstore-rs_cosign-generated-empty-password", &b""[..]),
            ("sigstore-rs_ecdsa-cosign1-password-123", &b"123"[..]),
        ] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data")
                .join(format!("{name}.key"));
            let key = SigningKey::from_encrypted_file(&path, password).unwrap();
            assert_eq!(key.algorithm(), KeyAlgorithm::EcdsaP256Sha256);
            assert_eq!(
                key.public_key_pem().unwrap(),
                data_text(&format!("{name}.pub"))
            );
        }
    }

    #[test]
    fn cosign_key_password_from_environment_value() {
        assert_eq!(password_from(Some("".into())).unwrap(), b"");
        assert_eq!(password_from(Some("s3cret".into())).unwrap(), b"s3cret");
        let non_utf8 = OsString::from_vec(vec![0xff, b'x']);
        assert_eq!(password_from(Some(non_utf8)).unwrap(), vec![0xff, b'x']);
        let err = password_from(None).unwrap_err();
        assert!(
            err.to_string().starts_with("COSIGN_PASSWORD is not set"),
            "{err}"
        );
    }

    #[test]
    fn cosign_key_write_key_pair_modes_and_overwrite() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("release.2026");
        let files = key_pair_paths(&prefix);
        assert_eq!(files.private_key, dir.path().join("release.2026.key"));
        assert_eq!(files.public_key, dir.path().join("release.2026.pub"));

        // What write_key_pair writes, with cheap scrypt parameters (N=65536 is slow in debug builds).
        let write = |prefix: &Path, key: &SigningKey, force: bool| {
            let private_pem = cheap_pem(key, b"pw");
            write_pem_pair(prefix, &private_pem, &key.public_key_pem().unwrap(), force)
        };
        let key = SigningKey::generate_p256().unwrap();
        assert_eq!(write(&prefix, &key, false).unwrap(), files);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files.private_key), 0o600);
        let read = SigningKey::from_encrypted_file(&files.private_key, b"pw").unwrap();
        assert_eq!(
            std::fs::read_to_string(&files.public_key).unwrap(),
            read.public_key_pem().unwrap()
        );
        let err = SigningKey::from_encrypted_file(&files.private_key, b"x").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: wrong password or corrupted key",
                files.private_key.display()
            )
        );

        // No overwrite without force; nothing changes.
        let before = std::fs::read(&files.private_key).unwrap();
        let other = SigningKey::generate_p256().unwrap();
        let err = write(&prefix, &other, false).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(std::fs::read(&files.private_key).unwrap(), before);
        // Only the .pub exists: still refused, and no .key is left behind.
        let prefix2 = dir.path().join("half");
        let files2 = key_pair_paths(&prefix2);
        std::fs::write(&files2.public_key, "x").unwrap();
        assert!(write(&prefix2, &other, false).is_err());
        assert!(!files2.private_key.exists());

        // With force: replaced, and 0600 even if the old file was not.
        std::fs::set_permissions(&files.private_key, std::fs::Permissions::from_mode(0o644))
            .unwrap();
        write(&prefix, &other, true).unwrap();
        assert_eq!(mode(&files.private_key), 0o600);
        let read = SigningKey::from_encrypted_file(&files.private_key, b"pw").unwrap();
        assert_eq!(
            read.public_key_der().unwrap(),
            other.public_key_der().unwrap()
        );

        // A directory that does not exist: a one-line error naming the path.
        let err = write(&dir.path().join("no/such/dir/k"), &key, false).unwrap_err();
        assert!(err.to_string().contains("no/such/dir/k.key"), "{err}");
    }
}

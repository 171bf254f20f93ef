//! The node key records are signed with: PEM PKCS#8, or cosign's encrypted format with a password file.

use std::fmt;
use std::io::Read;
use std::path::Path;

use pkcs8::DecodePrivateKey;
use spki::EncodePublicKey;

use super::{sha256_hex, LogError};
use crate::cosign_key::SigningKey;

/// A key file is a few hundred bytes; RSA 4096 in PEM is about 3 KiB.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// A private key that signs records.
pub struct NodeKey {
    inner: Inner,
    spki_der: Vec<u8>,
}

enum Inner {
    /// Any key cosign's format holds.
    Cosign(SigningKey),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeKey({})", self.keyid())
    }
}

fn read_bounded(path: &Path, what: &str) -> Result<Vec<u8>, LogError> {
    let key_err = |reason: String| LogError::Key {
        path: path.to_path_buf(),
        reason,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_KEY_FILE + 1).read_to_end(&mut bytes))
        .map_err(|e| key_err(format!("cannot read the {what}: {e}")))?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err(key_err(format!(
            "the {what} is larger than {MAX_KEY_FILE} bytes"
        )));
    }
    Ok(bytes)
}

impl NodeKey {
    /// Loads `path`: a PEM `PRIVATE KEY` (PKCS#8, unencrypted: P-256, P-384 or Ed25519) or a cosign
    /// `ENCRYPTED SIGSTORE PRIVATE KEY` / `ENCRYPTED COSIGN PRIVATE KEY`, decrypted with the contents
    /// of `password_file` (one trailing `\n` or `\r\n` is not part of the password).
    pub fn load(path: &Path, password_file: Option<&Path>) -> Result<NodeKey, LogError> {
        let key_err = |reason: String| LogError::Key {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = read_bounded(path, "key file")?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| key_err("not a PEM file (not UTF-8)".into()))?;
        if text.contains("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")
            || text.contains("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----")
        {
            let Some(pw_path) = password_file else {
                return Err(key_err(
                    "the key is encrypted (cosign format) and no key_password_file is configured"
                        .into(),
                ));
            };
            let mut password = read_bounded(pw_path, "password file").map_err(|e| match e {
                LogError::Key { reason, .. } => {
                    key_err(format!("key_password_file {}: {reason}", pw_path.display()))
                }
                other => other,
            })?;
            if password.ends_with(b"\n") {
                password.pop();
                if password.ends_with(b"\r") {
                    password.pop();
                }
            }
            let key = SigningKey::from_encrypted_pem(&bytes, &password)
                .map_err(|e| key_err(format!("{e} (password from {})", pw_path.display())))?;
            let spki_der = key.public_key_der().map_err(|e| key_err(e.to_string()))?;
            return Ok(NodeKey {
                inner: Inner::Cosign(key),
                spki_der,
            });
        }
        if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(key_err(
                "PKCS#8 encrypted keys are not supported: use an unencrypted PKCS#8 key with restrictive permissions, or a cosign key with key_password_file".into(),
            ));
        }
        if text.contains("-----BEGIN EC PRIVATE KEY-----") {
            return Err(key_err(
                "SEC1 `EC PRIVATE KEY` is not supported: convert it with `openssl pkcs8 -topk8 -nocrypt`".into(),
            ));
        }
        if !text.contains("-----BEGIN PRIVATE KEY-----") {
            return Err(key_err(
                "expected a PEM `PRIVATE KEY` (PKCS#8) or a cosign encrypted private key".into(),
            ));
        }
        Self::from_pkcs8_pem(text).map_err(key_err)
    }

    /// An unencrypted PKCS#8 PEM key: P-256, P-384 or Ed25519.
    pub fn from_pkcs8_pem(pem: &str) -> Result<NodeKey, String> {
        let spki = |r: Result<spki::Document, spki::Error>| {
            r.map(|d| d.into_vec())
                .map_err(|e| format!("cannot encode the public key: {e}"))
        };
        if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            let spki_der = spki(k.verifying_key().to_public_key_der())?;
            return Ok(NodeKey {
                inner: Inner::P256(k),
                spki_der,
            });
        }
        if let Ok(k) = p384::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            let spki_der = spki(k.verifying_key().to_public_key_der())?;
            return Ok(NodeKey {
                inner: Inner::P384(k),
                spki_der,
            });
        }
        match ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            Ok(k) => {
                let spki_der = spki(k.verifying_key().to_public_key_der())?;
                Ok(NodeKey {
                    inner: Inner::Ed25519(k),
                    spki_der,
                })
            }
            Err(_) => Err(
                "not a PKCS#8 private key vouch signs records with (ECDSA P-256, P-384, Ed25519)"
                    .into(),
            ),
        }
    }

    /// Hex SHA-256 of the public key's DER SubjectPublicKeyInfo: the DSSE `keyid`
    /// (what [`crate::keys::PublicKey::fingerprint`] computes).
    pub fn keyid(&self) -> String {
        sha256_hex(&self.spki_der)
    }

    /// The public key, DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// Signs as [`crate::keys::PublicKey::verify`] verifies: ECDSA (DER) over SHA-256 / SHA-384,
    /// Ed25519 over the message.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, LogError> {
        use p256::ecdsa::signature::Signer as _;
        let failed = |e: &dyn fmt::Display| LogError::Sign(e.to_string());
        Ok(match &self.inner {
            Inner::Cosign(k) => k.sign(message).map_err(|e| failed(&e))?,
            Inner::P256(k) => {
                let sig: p256::ecdsa::DerSignature = k.try_sign(message).map_err(|e| failed(&e))?;
                sig.as_bytes().to_vec()
            }
            Inner::P384(k) => {
                let sig: p384::ecdsa::DerSignature = k.try_sign(message).map_err(|e| failed(&e))?;
                sig.as_bytes().to_vec()
            }
            Inner::Ed25519(k) => k.try_sign(message).map_err(|e| failed(&e))?.to_vec(),
        })
    }
}

/// Reads a PEM public key file (a node key or an AK for `vouch attestation verify`): its text and the key.
pub fn read_public_key(path: &Path) -> Result<(String, crate::keys::PublicKey), LogError> {
    let as_io = |e: LogError| match e {
        LogError::Key { path, reason } => LogError::Io { path, reason },
        other => other,
    };
    let bytes = read_bounded(path, "public key file").map_err(as_io)?;
    let pem = String::from_utf8(bytes)
        .map_err(|_| super::io_error(path, "not a PEM public key (not UTF-8)"))?;
    let key = crate::keys::PublicKey::from_pem(&pem).map_err(|e| super::io_error(path, e))?;
    Ok((pem, key))
}

/// The node key vouch makes when `[attestation] key` is not set: `<state_dir>/attestation/node.key`.
pub fn default_key_path(state_dir: &Path) -> std::path::PathBuf {
    state_dir.join("attestation").join("node.key")
}

/// Its public key, for `vouch attestation verify --node-key`: `<state_dir>/attestation/node.pub`.
pub fn default_public_key_path(state_dir: &Path) -> std::path::PathBuf {
    state_dir.join("attestation").join("node.pub")
}

/// Makes the default node key once (a P-256 key, PKCS#8 PEM, 0600 in a 0700 directory) and its
/// public key beside it; returns the key's path. Concurrent first starts agree on one key: each
/// writes a private temporary file and links it into place, and only the first link succeeds.
pub fn ensure_default_key(state_dir: &Path) -> Result<std::path::PathBuf, LogError> {
    use pkcs8::EncodePrivateKey;
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let path = default_key_path(state_dir);
    let public = default_public_key_path(state_dir);
    if path.exists() && public.exists() {
        return Ok(path);
    }
    let dir = path.parent().unwrap_or(state_dir);
    let io = |p: &Path, e: std::io::Error| super::io_error(p, e);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io(dir, e))?;
    if !path.exists() {
        let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let pem = key
            .to_pkcs8_pem(pkcs8::LineEnding::LF)
            .map_err(|e| LogError::Sign(e.to_string()))?;
        let tmp = dir.join(format!(".node.key.{}", std::process::id()));
        let written = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(pem.as_bytes())?;
                f.sync_all()
            });
        let linked = written.and_then(|_| match std::fs::hard_link(&tmp, &path) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        });
        let _ = std::fs::remove_file(&tmp);
        linked.map_err(|e| io(&path, e))?;
    }
    if !public.exists() {
        let key = NodeKey::load(&path, None)?;
        let pem = crate::keys::pem_encode("PUBLIC KEY", key.public_key_der());
        crate::cache::write_atomic(&public, pem.as_bytes()).map_err(|e| io(&public, e))?;
    }
    Ok(path)
}

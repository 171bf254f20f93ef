//! Witness cosignatures on log checkpoints (C2SP tlog-cosignature, `cosignature/v1`, Ed25519).
//!
//! A witness cosigns a checkpoint to say it saw no other tree of that size from that log: a
//! quorum of them stands against a log that shows each client its own tree (a split view).
//! sigstore-verify skips every signature line that is not its logs', and a trusted root has no
//! place for witness keys, so they come from vouch's own configuration and are checked here.
//!
//! As C2SP signed-note says: a line whose name and key ID no configured witness has is ignored;
//! a line of a configured witness must verify, or the bundle is refused.

use std::fmt;

use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use sigstore_verify::types::Checkpoint;

use super::error::{BlobError, FailureKind};

/// The signature type byte of a timestamped Ed25519 cosignature (C2SP signed-note).
const COSIGNATURE_V1_ED25519: u8 = 0x04;
/// The signature type of ML-DSA-44 cosignatures, which are not supported here.
const COSIGNATURE_ML_DSA_44: u8 = 0x06;
/// The signature type of a log's own Ed25519 note signature.
const NOTE_ED25519: u8 = 0x01;

/// A witness's public key, from its C2SP verifier key (vkey).
#[derive(Clone, PartialEq, Eq)]
pub struct WitnessKey {
    name: String,
    key_id: [u8; 4],
    key: VerifyingKey,
}

impl fmt::Debug for WitnessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WitnessKey({})", self.vkey())
    }
}

impl WitnessKey {
    /// A vkey: `<name>+<key ID, 8 hex digits>+<base64 of 0x04 || 32-byte Ed25519 key>`, as
    /// witnesses publish them, e.g.
    /// `witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv`. The error
    /// is one line.
    pub fn from_vkey(vkey: &str) -> Result<WitnessKey, String> {
        let bad = |why: &str| format!("invalid witness key {vkey:?}: {why}");
        let shape = "not <name>+<8 hex digits>+<base64 key>";
        let (name, rest) = vkey.split_once('+').ok_or_else(|| bad(shape))?;
        let (id_hex, key_b64) = rest.split_once('+').ok_or_else(|| bad(shape))?;
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(bad("the name is empty or has a space"));
        }
        let mut key_id = [0u8; 4];
        if id_hex.len() != 8 || hex::decode_to_slice(id_hex, &mut key_id).is_err() {
            return Err(bad("the key ID is not 8 hexadecimal digits"));
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(key_b64)
            .map_err(|_| bad("the key is not base64"))?;
        match raw.first() {
            Some(&COSIGNATURE_V1_ED25519) => {}
            Some(&NOTE_ED25519) => {
                return Err(bad(
                    "type 0x01 is a log's note key; a witness cosigns with type 0x04",
                ))
            }
            Some(&COSIGNATURE_ML_DSA_44) => {
                return Err(bad("ML-DSA-44 cosignatures (type 0x06) are not supported"))
            }
            Some(other) => {
                return Err(bad(&format!(
                    "key type 0x{other:02x} is not an Ed25519 cosignature key (0x04)"
                )))
            }
            None => return Err(bad("the key is empty")),
        }
        let bytes: [u8; 32] = raw[1..]
            .try_into()
            .map_err(|_| bad("an Ed25519 key is 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| bad("not an Ed25519 public key"))?;
        let witness = WitnessKey {
            name: name.to_string(),
            key_id,
            key,
        };
        if witness.computed_key_id() != key_id {
            return Err(bad("the key ID is not the one of this name and key"));
        }
        Ok(witness)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The vkey this key was read from.
    pub fn vkey(&self) -> String {
        let mut raw = vec![COSIGNATURE_V1_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id),
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// `SHA-256(name || "\n" || 0x04 || key)[:4]` (C2SP tlog-cosignature).
    fn computed_key_id(&self) -> [u8; 4] {
        let mut h = Sha256::new();
        h.update(self.name.as_bytes());
        h.update([b'\n', COSIGNATURE_V1_ED25519]);
        h.update(self.key.as_bytes());
        let digest = h.finalize();
        [digest[0], digest[1], digest[2], digest[3]]
    }

    /// Checks one cosignature: `timestamp (u64, big-endian) || Ed25519 signature` over
    /// `"cosignature/v1\ntime <timestamp>\n"` followed by the checkpoint's note text.
    fn verifies(&self, checkpoint: &Checkpoint, timestamped_signature: &[u8]) -> bool {
        let Some((time, signature)) = timestamped_signature.split_first_chunk::<8>() else {
            return false;
        };
        let time = u64::from_be_bytes(*time);
        let Ok(signature) = Signature::from_slice(signature) else {
            return false;
        };
        if time > i64::MAX as u64 {
            return false;
        }
        let mut message = format!("cosignature/v1\ntime {time}\n").into_bytes();
        message.extend_from_slice(checkpoint.signed_data());
        self.key.verify_strict(&message, &signature).is_ok()
    }
}

/// The witnesses whose cosignatures count, and how many of them each checkpoint needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Witnesses {
    keys: Vec<WitnessKey>,
    quorum: usize,
}

impl Witnesses {
    /// With `quorum` 0, a cosignature of a known witness is verified where present and none is
    /// required; with N, every log entry's checkpoint needs valid cosignatures of at least N of
    /// these witnesses. The error is one line.
    pub fn new(keys: Vec<WitnessKey>, quorum: usize) -> Result<Witnesses, String> {
        for (i, key) in keys.iter().enumerate() {
            if keys[..i]
                .iter()
                .any(|k| k.name == key.name && k.key_id == key.key_id)
            {
                return Err(format!("witness key {:?} is listed twice", key.vkey()));
            }
        }
        if quorum > keys.len() {
            return Err(format!(
                "a witness quorum of {quorum} needs as many witness keys; {} given",
                keys.len()
            ));
        }
        Ok(Witnesses { keys, quorum })
    }

    /// [`Witnesses::new`] from vkeys.
    pub fn from_vkeys<S: AsRef<str>>(vkeys: &[S], quorum: usize) -> Result<Witnesses, String> {
        let keys = vkeys
            .iter()
            .map(|v| WitnessKey::from_vkey(v.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Witnesses::new(keys, quorum)
    }

    pub fn keys(&self) -> &[WitnessKey] {
        &self.keys
    }

    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// The names of the known witnesses that cosigned `checkpoint` of log `log`, each once.
    /// Refused: a cosignature line of a known witness that does not verify, or fewer witnesses
    /// than the quorum.
    pub(super) fn cosigners(
        &self,
        checkpoint: &Checkpoint,
        log: &str,
    ) -> Result<Vec<String>, BlobError> {
        let mut cosigners: Vec<&WitnessKey> = Vec::new();
        for line in checkpoint.signatures() {
            let known = self
                .keys
                .iter()
                .find(|k| k.name == line.name && &k.key_id == line.key_id.as_bytes());
            let Some(witness) = known else {
                continue;
            };
            if !witness.verifies(checkpoint, line.signature.as_bytes()) {
                return Err(BlobError::new(
                    FailureKind::Witness,
                    format!(
                        "the cosignature of witness {:?} on the checkpoint of log {log:?} does not verify",
                        witness.name
                    ),
                ));
            }
            if !cosigners.contains(&witness) {
                cosigners.push(witness);
            }
        }
        if cosigners.len() < self.quorum {
            return Err(BlobError::new(
                FailureKind::Witness,
                format!(
                    "the checkpoint of log {log:?} is cosigned by {} of the known witnesses, \
                     fewer than the quorum of {}",
                    cosigners.len(),
                    self.quorum
                ),
            ));
        }
        Ok(cosigners.iter().map(|w| w.name.clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    const STAGEMOLE: &str =
        "witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv";

    /// The stagemole key with its type byte, and so its base64, changed.
    fn with_type(byte: u8) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        let (head, key) = STAGEMOLE.rsplit_once('+').unwrap();
        let mut raw = b64.decode(key).unwrap();
        raw[0] = byte;
        format!("{head}+{}", b64.encode(raw))
    }

    #[test]
    fn a_published_vkey_reads_back_as_itself() {
        let key = WitnessKey::from_vkey(STAGEMOLE).unwrap();
        assert_eq!(key.name(), "witness.stagemole.eu");
        assert_eq!(key.vkey(), STAGEMOLE);
    }

    #[test]
    fn a_malformed_vkey_is_refused_in_one_line_saying_why() {
        let short_key = {
            let b64 = base64::engine::general_purpose::STANDARD;
            let mut raw = vec![0x04];
            raw.extend_from_slice(&[7u8; 31]);
            format!("witness.stagemole.eu+67f7aea0+{}", b64.encode(raw))
        };
        let renamed = STAGEMOLE.replacen("witness.stagemole.eu", "witness.stagemole.eu2", 1);
        let cases = [
            ("", "not <name>+<8 hex digits>+<base64 key>"),
            (
                "witness.stagemole.eu",
                "not <name>+<8 hex digits>+<base64 key>",
            ),
            (
                "witness.stagemole.eu+67f7aea0",
                "not <name>+<8 hex digits>+<base64 key>",
            ),
            ("+67f7aea0+AAAA", "the name is empty or has a space"),
            ("a b+67f7aea0+AAAA", "the name is empty or has a space"),
            ("w+67f7aea+AAAA", "the key ID is not 8 hexadecimal digits"),
            ("w+67f7aeaz+AAAA", "the key ID is not 8 hexadecimal digits"),
            ("w+67f7aea0+!!!!", "the key is not base64"),
            ("w+67f7aea0+", "the key is empty"),
            (
                &with_type(0x01),
                "type 0x01 is a log's note key; a witness cosigns with type 0x04",
            ),
            (
                &with_type(0x06),
                "ML-DSA-44 cosignatures (type 0x06) are not supported",
            ),
            (
                &with_type(0x02),
                "key type 0x02 is not an Ed25519 cosignature key (0x04)",
            ),
            (&short_key, "an Ed25519 key is 32 bytes"),
            (&renamed, "the key ID is not the one of this name and key"),
        ];
        for (vkey, why) in cases {
            let e = WitnessKey::from_vkey(vkey).unwrap_err();
            assert_eq!(e, format!("invalid witness key {vkey:?}: {why}"));
            assert_eq!(e.lines().count(), 1);
        }
        let e = WitnessKey::from_vkey("a\nb+67f7aea0+AAAA").unwrap_err();
        assert_eq!(e.lines().count(), 1, "{e}");
    }

    #[test]
    fn a_witness_list_has_no_duplicate_and_a_reachable_quorum() {
        assert_eq!(
            Witnesses::from_vkeys(&[STAGEMOLE, STAGEMOLE], 0).unwrap_err(),
            format!("witness key {STAGEMOLE:?} is listed twice")
        );
        assert_eq!(
            Witnesses::from_vkeys(&[STAGEMOLE], 2).unwrap_err(),
            "a witness quorum of 2 needs as many witness keys; 1 given"
        );
        assert_eq!(
            Witnesses::from_vkeys::<&str>(&[], 1).unwrap_err(),
            "a witness quorum of 1 needs as many witness keys; 0 given"
        );
        let w = Witnesses::from_vkeys(&[STAGEMOLE], 1).unwrap();
        assert_eq!((w.keys().len(), w.quorum()), (1, 1));
        assert_eq!(
            Witnesses::from_vkeys::<&str>(&[], 0).unwrap(),
            Witnesses::default()
        );
    }
}

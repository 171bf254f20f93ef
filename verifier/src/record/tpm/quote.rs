//! Pure-Rust verification of a TPM quote (no TPM needed): the marshalled TPMS_ATTEST and
//! TPMT_SIGNATURE that `tpm2_quote -m/-s` writes and `tpm2_checkquote` reads.

use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::pkcs8::DecodePublicKey;
use sha2::{Digest, Sha256};

use super::{hex32, TpmError, TpmEvidence};

/// TPM_GENERATED_VALUE: every TPMS_ATTEST the TPM signs starts with it.
pub const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
/// TPM_ST_ATTEST_QUOTE.
pub const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;
/// TPM_ALG_SHA256.
pub const TPM_ALG_SHA256: u16 = 0x000b;
/// TPM_ALG_ECDSA.
pub const TPM_ALG_ECDSA: u16 = 0x0018;

/// What a verified quote says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteInfo {
    /// The qualifying data (extraData): the event digest.
    pub extra_data: Vec<u8>,
    /// SHA-256 over the quoted PCR values.
    pub pcr_digest: [u8; 32],
    /// The TPM's reset count when it quoted.
    pub reset_count: u32,
    /// The TPM's restart count when it quoted.
    pub restart_count: u32,
    /// The TPM's clock (milliseconds) when it quoted.
    pub clock: u64,
    /// The TPM's firmware version.
    pub firmware_version: u64,
}

/// A parsed TPMS_ATTEST of type quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAttest {
    pub qualified_signer: Vec<u8>,
    pub extra_data: Vec<u8>,
    pub clock: u64,
    pub reset_count: u32,
    pub restart_count: u32,
    pub safe: bool,
    pub firmware_version: u64,
    /// (hash algorithm, selection bitmap) per bank.
    pub pcr_selection: Vec<(u16, Vec<u8>)>,
    pub pcr_digest: Vec<u8>,
}

/// Verifies a quote with the AK (`ak_pem`, or `evidence.ak_pem` when None): decodes it, parses
/// the TPMS_ATTEST (magic, type quote, extraData, clock info, a PCR selection of exactly the
/// SHA-256 bank of `evidence.pcr`, pcrDigest) and the TPMT_SIGNATURE (ECDSA, SHA-256), verifies
/// the P-256 signature over SHA-256(attest), and checks extraData == event_digest and
/// pcrDigest == SHA-256(pcr_value). Returns what the quote says.
///
/// It does not replay the event log: compare `pcr_value` with [`super::replay`] for that.
pub fn verify_quote(evidence: &TpmEvidence, ak_pem: Option<&str>) -> Result<QuoteInfo, TpmError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let attest = b64
        .decode(evidence.attest.trim())
        .map_err(|e| TpmError::Evidence(format!("attest is not base64: {e}")))?;
    let signature = b64
        .decode(evidence.signature.trim())
        .map_err(|e| TpmError::Evidence(format!("signature is not base64: {e}")))?;
    let event_digest = hex32("event_digest", &evidence.event_digest).map_err(TpmError::Evidence)?;
    let pcr_value = hex32("pcr_value", &evidence.pcr_value).map_err(TpmError::Evidence)?;
    let pem = ak_pem.unwrap_or(&evidence.ak_pem);
    let key = p256::ecdsa::VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| {
        TpmError::Evidence(format!(
            "attestation key is not an ECC P-256 public key (PEM SubjectPublicKeyInfo): {e}"
        ))
    })?;

    // The signature first: nothing in an unsigned attest is worth reporting.
    let sig = parse_signature(&signature)?;
    key.verify(&attest, &sig)
        .map_err(|_| {
            TpmError::QuoteSignature(
                "does not verify with the attestation key: the attest was altered or another key signed it"
                    .to_string(),
            )
        })?;

    let parsed = parse_attest(&attest)?;
    check_selection(&parsed.pcr_selection, evidence.pcr)?;
    if parsed.extra_data != event_digest {
        return Err(TpmError::QuoteNonce {
            expected: evidence.event_digest.clone(),
            got: hex::encode(&parsed.extra_data),
        });
    }
    let pcr_digest = <[u8; 32]>::try_from(parsed.pcr_digest.as_slice()).map_err(|_| {
        TpmError::QuoteFormat(format!(
            "pcrDigest is {} bytes, not a SHA-256 digest",
            parsed.pcr_digest.len()
        ))
    })?;
    let expected: [u8; 32] = Sha256::digest(pcr_value).into();
    if pcr_digest != expected {
        return Err(TpmError::QuotePcrDigest {
            quoted: hex::encode(pcr_digest),
            pcr_value: evidence.pcr_value.clone(),
        });
    }
    Ok(QuoteInfo {
        extra_data: parsed.extra_data,
        pcr_digest,
        reset_count: parsed.reset_count,
        restart_count: parsed.restart_count,
        clock: parsed.clock,
        firmware_version: parsed.firmware_version,
    })
}

/// The selection must be exactly one bank, SHA-256, with only `pcr` selected.
fn check_selection(selection: &[(u16, Vec<u8>)], pcr: u32) -> Result<(), TpmError> {
    let describe = || {
        selection
            .iter()
            .map(|(alg, bitmap)| {
                let pcrs: Vec<String> = (0..bitmap.len() * 8)
                    .filter(|i| bitmap[i / 8] & (1 << (i % 8)) != 0)
                    .map(|i| i.to_string())
                    .collect();
                format!("bank {alg:#06x} PCRs [{}]", pcrs.join(","))
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let ok = match selection {
        [(alg, bitmap)] if *alg == TPM_ALG_SHA256 => {
            let (byte, bit) = ((pcr / 8) as usize, pcr % 8);
            bitmap
                .iter()
                .enumerate()
                .all(|(i, b)| if i == byte { *b == 1 << bit } else { *b == 0 })
                && byte < bitmap.len()
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(TpmError::QuoteSelection {
            pcr,
            got: if selection.is_empty() {
                "no PCR".to_string()
            } else {
                describe()
            },
        })
    }
}

/// A cursor over big-endian TPM marshalled data.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], what: &'static str) -> Self {
        Reader { data, pos: 0, what }
    }
    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], TpmError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| {
            TpmError::QuoteFormat(format!(
                "{} ends inside {field} (offset {}, {} bytes)",
                self.what,
                self.pos,
                self.data.len()
            ))
        })?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self, field: &str) -> Result<u8, TpmError> {
        Ok(self.take(1, field)?[0])
    }
    fn u16(&mut self, field: &str) -> Result<u16, TpmError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, field: &str) -> Result<u32, TpmError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, field: &str) -> Result<u64, TpmError> {
        let b = self.take(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    /// A TPM2B: u16 size, then that many bytes.
    fn tpm2b(&mut self, field: &str) -> Result<&'a [u8], TpmError> {
        let n = self.u16(field)?;
        self.take(n as usize, field)
    }
    fn finish(&self) -> Result<(), TpmError> {
        if self.pos != self.data.len() {
            return Err(TpmError::QuoteFormat(format!(
                "{} has {} trailing bytes",
                self.what,
                self.data.len() - self.pos
            )));
        }
        Ok(())
    }
}

/// Parses a marshalled TPMS_ATTEST that must be a quote (TPMS_QUOTE_INFO), to its last byte.
pub fn parse_attest(attest: &[u8]) -> Result<ParsedAttest, TpmError> {
    let mut r = Reader::new(attest, "TPMS_ATTEST");
    let magic = r.u32("magic")?;
    if magic != TPM_GENERATED_VALUE {
        return Err(TpmError::QuoteFormat(format!(
            "magic {magic:#010x} is not TPM_GENERATED_VALUE 0xff544347: not generated by a TPM"
        )));
    }
    let ty = r.u16("type")?;
    if ty != TPM_ST_ATTEST_QUOTE {
        return Err(TpmError::QuoteFormat(format!(
            "type {ty:#06x} is not TPM_ST_ATTEST_QUOTE 0x8018"
        )));
    }
    let qualified_signer = r.tpm2b("qualifiedSigner")?.to_vec();
    let extra_data = r.tpm2b("extraData")?.to_vec();
    let clock = r.u64("clockInfo.clock")?;
    let reset_count = r.u32("clockInfo.resetCount")?;
    let restart_count = r.u32("clockInfo.restartCount")?;
    let safe = r.u8("clockInfo.safe")? != 0;
    let firmware_version = r.u64("firmwareVersion")?;
    let count = r.u32("pcrSelect.count")?;
    if count > 16 {
        return Err(TpmError::QuoteFormat(format!(
            "pcrSelect has {count} banks"
        )));
    }
    let mut pcr_selection = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let alg = r.u16("pcrSelect.hash")?;
        let size = r.u8("pcrSelect.sizeofSelect")?;
        pcr_selection.push((alg, r.take(size as usize, "pcrSelect.pcrSelect")?.to_vec()));
    }
    let pcr_digest = r.tpm2b("pcrDigest")?.to_vec();
    r.finish()?;
    Ok(ParsedAttest {
        qualified_signer,
        extra_data,
        clock,
        reset_count,
        restart_count,
        safe,
        firmware_version,
        pcr_selection,
        pcr_digest,
    })
}

/// Parses a marshalled TPMT_SIGNATURE that must be ECDSA with SHA-256 (r and s up to 32 bytes).
fn parse_signature(signature: &[u8]) -> Result<p256::ecdsa::Signature, TpmError> {
    let mut r = Reader::new(signature, "TPMT_SIGNATURE");
    let alg = r.u16("sigAlg")?;
    if alg != TPM_ALG_ECDSA {
        return Err(TpmError::QuoteFormat(format!(
            "signature algorithm {alg:#06x} is not ECDSA (0x0018)"
        )));
    }
    let hash = r.u16("hash")?;
    if hash != TPM_ALG_SHA256 {
        return Err(TpmError::QuoteFormat(format!(
            "signature hash {hash:#06x} is not SHA-256 (0x000b)"
        )));
    }
    let sig_r = scalar(r.tpm2b("signatureR")?, "signatureR")?;
    let sig_s = scalar(r.tpm2b("signatureS")?, "signatureS")?;
    r.finish()?;
    p256::ecdsa::Signature::from_scalars(sig_r, sig_s)
        .map_err(|_| TpmError::QuoteSignature("is malformed: r or s is out of range".to_string()))
}

/// Left-pads a big-endian integer to 32 bytes.
fn scalar(bytes: &[u8], field: &str) -> Result<[u8; 32], TpmError> {
    let trimmed = {
        let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        &bytes[first..]
    };
    if trimmed.len() > 32 {
        return Err(TpmError::QuoteFormat(format!(
            "{field} is {} bytes, more than a P-256 scalar",
            bytes.len()
        )));
    }
    let mut out = [0u8; 32];
    out[32 - trimmed.len()..].copy_from_slice(trimmed);
    Ok(out)
}

//! Everything that talks to a TPM (tss-esapi 7.7 over tpm2-tss 3.2).
//!
//! Quirks found on the way (tss-esapi 7.7, swtpm 0.7.1, tpm2-tss 3.2.1):
//! - tss-esapi 7.7 has no `TPM2_ReadClock` ("Missing function: ReadClock" in
//!   `clocks_and_timers.rs`) and no way to reach its `ESYS_CONTEXT`; [`read_clock`] opens a second,
//!   short-lived ESYS context through the raw `tss2_esys` bindings it re-exports, *before* the
//!   tss-esapi one: swtpm serves one TCP client at a time, so the two must not overlap.
//!   `TPM2_GetTime` would give the same counts but signs (a second signature on the start path).
//! - swtpm reached over TCP has no resource manager: 3 transient object slots. The only transient
//!   objects here are the primary and the new AK during the one-time AK creation, flushed on every
//!   path by [`with_flushed`]; the persistent AK needs no flush (its ESYS_TR is closed).
//! - Commands with an authorisation role (create, load, evict, extend, quote) need a session;
//!   the password session (`AuthSession::Password`) costs no round trip, whereas
//!   `execute_with_nullauth_session` starts an HMAC session (one more command and a session slot).
//!   Commands without one (ReadPublic, PCR_Read, GetCapability) fail with TPM_RC_AUTH_CONTEXT if a
//!   session is set, so sessions are set per call.
//! - When the TCTI cannot connect, tpm2-tss logs `ERROR:tcti:...` lines to stderr itself (quiet it
//!   with `TSS2_LOG=all+none` in the shim's environment); the returned code only says "IO error", so
//!   [`diagnose`] retries the connection itself to name the cause ("connection refused").
//! - A TCTI that connects but never answers blocks: tpm2-tss waits without a timeout.
//! - A quote signed by an owner-hierarchy key carries *obfuscated* resetCount, restartCount and
//!   firmwareVersion (TPM 2.0 Part 1, privacy of TPMS_CLOCK_INFO; swtpm does it too: a first
//!   test saw reset 1322005247 where ReadClock said 1). Hence the AK lives in the endorsement
//!   hierarchy (see [`create_ak`]) and each quote's counts are checked against ReadClock's.
//! - `TctiNameConf::from_str` compiles five regexes on every call (about 5 ms in a debug build);
//!   [`parse_tcti`] dispatches on the prefix itself, so a device TCTI compiles none.
//! - `PcrSlot` values are bit masks (`1 << pcr`), `PcrHandle` values are ESYS_TR numbers (`pcr`).

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use base64::Engine;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use sha2::Digest as _;
use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::constants::CapabilityType;
use tss_esapi::handles::{KeyHandle, ObjectHandle, PcrHandle, PersistentTpmHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::dynamic_handles::Persistent;
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::resource_handles::{Hierarchy, Provision};
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    CapabilityData, Data, Digest as TpmDigest, DigestValues, EccPoint, EccScheme, HashScheme,
    KeyDerivationFunctionScheme, PcrSelectionListBuilder, PcrSlot, Public, PublicBuilder,
    PublicEccParametersBuilder, SignatureScheme, SymmetricDefinitionObject,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::traits::Marshall;
use tss_esapi::Context;

use super::eventlog::{self, Event};
use super::{
    ak_pem_path, check_pcr, event_log_path, tpm_dir, TpmError, TpmEvidence, AK_PERSISTENT_HANDLE,
};

/// How long each phase of one [`record_event_timed`] took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timings {
    /// Parsing the TCTI, creating the directory, reading the event log's tail.
    pub prepare: Duration,
    /// `TPM2_ReadClock` on its own short-lived connection.
    pub read_clock: Duration,
    /// Opening the tss-esapi context.
    pub open: Duration,
    /// Finding (or, once, creating) the AK and checking it against `ak.pem`.
    pub ak: Duration,
    /// `TPM2_PCR_Extend`.
    pub extend: Duration,
    /// Appending the event (write + fsync).
    pub append: Duration,
    /// `TPM2_PCR_Read`.
    pub pcr_read: Duration,
    /// `TPM2_Quote`.
    pub quote: Duration,
    /// Closing the AK handle and the context.
    pub close: Duration,
    /// The whole call.
    pub total: Duration,
    /// Whether this call created the AK.
    pub ak_created: bool,
}

/// Opens the TPM at `tcti`, ensures the AK, extends `pcr` (SHA-256 bank) with `event_digest`,
/// appends the event to the event log ([`event_log_path`]), and quotes that PCR with
/// `event_digest` as qualifying data.
///
/// Order: TPM2_ReadClock (the event's reset/restart counts), open, AK, append (fsync), extend
/// (on failure the appended line is cut off again), PCR_Read, Quote. An error after the extend
/// leaves log and PCR in step: only the evidence is lost.
///
/// The CALLER holds an exclusive lock around this call (serialising extend + append + quote
/// across shims); this function takes no lock. The event-log append is durable (write + fsync)
/// before it returns. Everything loaded into the TPM is flushed on every path, errors included.
/// Creates `<state_dir>/tpm` (0700) when missing.
pub fn record_event(
    tcti: &str,
    state_dir: &Path,
    pcr: u32,
    event_digest: &[u8; 32],
) -> Result<TpmEvidence, TpmError> {
    record_event_timed(tcti, state_dir, pcr, event_digest).map(|(evidence, _)| evidence)
}

/// [`record_event`], also returning how long each phase took.
pub fn record_event_timed(
    tcti: &str,
    state_dir: &Path,
    pcr: u32,
    event_digest: &[u8; 32],
) -> Result<(TpmEvidence, Timings), TpmError> {
    let start = Instant::now();
    let mut t = Timings::default();
    check_pcr(pcr)?;
    let pcr_handle = PcrHandle::try_from(pcr).map_err(|_| TpmError::InvalidPcr { pcr })?;
    let pcr_slot = PcrSlot::try_from(1u32 << pcr).map_err(|_| TpmError::InvalidPcr { pcr })?;
    let conf = parse_tcti(tcti)?;

    let dir = tpm_dir(state_dir);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|source| TpmError::Io {
            what: "cannot create the TPM state directory",
            path: dir.clone(),
            source,
        })?;
    let log_path = event_log_path(state_dir);
    // The PCR and the event log belong to the node, not to one attestation log: whoever else
    // records into this state directory (another runtime handler's config) waits here, so the
    // event log's indices and the PCR's extends stay in one order. Released on return.
    let lock_path = dir.join("events.lock");
    let _lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .and_then(|f| {
            nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
                .map_err(|(_, errno)| std::io::Error::from(errno))
        })
        .map_err(|source| TpmError::Io {
            what: "cannot lock the TPM event log",
            path: lock_path.clone(),
            source,
        })?;
    // Before touching the TPM: a log we cannot append to must not get an extend it lacks.
    let index = eventlog::next_index(&log_path)?;
    t.prepare = start.elapsed();

    let phase = Instant::now();
    let clock = read_clock(tcti, conf.clone())?;
    t.read_clock = phase.elapsed();

    let phase = Instant::now();
    let mut ctx = Context::new(conf).map_err(|e| unreachable(tcti, &e.to_string()))?;
    t.open = phase.elapsed();

    let phase = Instant::now();
    let ak = ensure_ak(&mut ctx, tcti, &ak_pem_path(state_dir))?;
    t.ak = phase.elapsed();
    t.ak_created = ak.created;

    let mut ak_handle = ak.handle;
    let result = extend_append_quote(
        &mut ctx,
        tcti,
        &log_path,
        KeyHandle::from(ak.handle),
        (pcr, pcr_handle, pcr_slot),
        event_digest,
        clock,
        index,
        &mut t,
    );
    // The persistent AK occupies no slot; close its ESYS_TR (dropping the context would too).
    let phase = Instant::now();
    let _ = ctx.tr_close(&mut ak_handle);
    drop(ctx);
    t.close = phase.elapsed();
    let Quoted {
        pcr_value,
        attest,
        signature,
    } = result?;
    t.total = start.elapsed();
    log::debug!("TPM event {index} recorded: {t:?}");

    let b64 = base64::engine::general_purpose::STANDARD;
    Ok((
        TpmEvidence {
            pcr,
            pcr_value: hex::encode(pcr_value),
            event_digest: hex::encode(event_digest),
            event_index: index,
            attest: b64.encode(attest),
            signature: b64.encode(signature),
            ak_pem: ak.pem,
        },
        t,
    ))
}

/// Extend, append, read the PCR, quote.
#[allow(clippy::too_many_arguments)]
fn extend_append_quote(
    ctx: &mut Context,
    tcti: &str,
    log_path: &Path,
    ak: KeyHandle,
    (pcr, pcr_handle, pcr_slot): (u32, PcrHandle, PcrSlot),
    event_digest: &[u8; 32],
    clock: Clock,
    index: u64,
    t: &mut Timings,
) -> Result<Quoted, TpmError> {
    let cmd = |op: &'static str| {
        move |e: tss_esapi::Error| TpmError::Command {
            op,
            tcti: tcti.to_string(),
            reason: e.to_string(),
        }
    };

    // Append first, then extend: a log that cannot be written (disk full) fails before the TPM
    // is touched, and an extend the TPM refuses is taken back out of the log. Extend first, a
    // failed append would leave the PCR with an extend no log explains, for the rest of the
    // power cycle.
    let phase = Instant::now();
    let time = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let appended_at = eventlog::append(
        log_path,
        &Event {
            index,
            pcr,
            digest: hex::encode(event_digest),
            reset_count: clock.reset_count,
            restart_count: clock.restart_count,
            time,
        },
    )?;
    t.append = phase.elapsed();

    let phase = Instant::now();
    let extended = TpmDigest::try_from(event_digest.to_vec()).and_then(|digest| {
        let mut digests = DigestValues::new();
        digests.set(HashingAlgorithm::Sha256, digest);
        ctx.execute_with_session(Some(AuthSession::Password), |c| {
            c.pcr_extend(pcr_handle, digests)
        })
    });
    if let Err(e) = extended {
        let err = cmd("PCR extend")(e);
        return Err(match eventlog::truncate(log_path, appended_at) {
            Ok(()) => err,
            Err(undo) => TpmError::EventLog {
                path: log_path.to_path_buf(),
                reason: format!(
                    "event {index} is logged but was not extended ({err}), and taking it back \
                     failed ({undo}): remove its last line before the next start"
                ),
            },
        });
    }
    t.extend = phase.elapsed();

    let selection = PcrSelectionListBuilder::new()
        .with_selection(HashingAlgorithm::Sha256, &[pcr_slot])
        .build()
        .map_err(cmd("PCR selection"))?;

    let phase = Instant::now();
    let (_, _, values) = ctx
        .execute_without_session(|c| c.pcr_read(selection.clone()))
        .map_err(cmd("PCR read"))?;
    let pcr_value = values
        .value()
        .first()
        .and_then(|d| <[u8; 32]>::try_from(d.value()).ok())
        .ok_or_else(|| TpmError::Command {
            op: "PCR read",
            tcti: tcti.to_string(),
            reason: format!("no SHA-256 value for PCR {pcr}: is the SHA-256 bank allocated?"),
        })?;
    t.pcr_read = phase.elapsed();

    let phase = Instant::now();
    let nonce = Data::try_from(event_digest.to_vec()).map_err(cmd("quote"))?;
    let (attest, signature) = ctx
        .execute_with_session(Some(AuthSession::Password), |c| {
            c.quote(ak, nonce, SignatureScheme::Null, selection)
        })
        .map_err(cmd("quote"))?;
    t.quote = phase.elapsed();
    let attest = attest.marshall().map_err(cmd("marshalling the quote"))?;
    // The quote must be of the power cycle the event was logged in: then a verifier can take
    // the cycle to replay from the TPM-signed quote. A mismatch means a TPM reset or restart
    // between ReadClock and the quote, or an AK outside the endorsement hierarchy (obfuscated
    // counts, see `create_ak`).
    let parsed = super::quote::parse_attest(&attest).map_err(|e| TpmError::Command {
        op: "quote",
        tcti: tcti.to_string(),
        reason: e.to_string(),
    })?;
    let quoted_digest: [u8; 32] = sha2::Sha256::digest(pcr_value).into();
    if parsed.pcr_digest != quoted_digest {
        return Err(TpmError::Command {
            op: "quote",
            tcti: tcti.to_string(),
            reason: format!(
                "PCR {pcr} changed between PCR_Read and the quote: something else extends or \
                 resets it outside the lock; use another PCR or stop that"
            ),
        });
    }
    if (parsed.reset_count, parsed.restart_count) != (clock.reset_count, clock.restart_count) {
        return Err(TpmError::Command {
            op: "quote",
            tcti: tcti.to_string(),
            reason: format!(
                "the quote's reset/restart counts {}/{} are not TPM2_ReadClock's {}/{}: \
                 the TPM was reset during this start (retry), or the AK at {:#x} is not in the \
                 endorsement hierarchy (evict it: tpm2_evictcontrol -C o -c {:#x})",
                parsed.reset_count,
                parsed.restart_count,
                clock.reset_count,
                clock.restart_count,
                AK_PERSISTENT_HANDLE,
                AK_PERSISTENT_HANDLE
            ),
        });
    }
    let signature = signature
        .marshall()
        .map_err(cmd("marshalling the quote signature"))?;
    Ok(Quoted {
        pcr_value,
        attest,
        signature,
    })
}

/// What [`extend_append_quote`] returns.
struct Quoted {
    pcr_value: [u8; 32],
    /// Marshalled TPMS_ATTEST.
    attest: Vec<u8>,
    /// Marshalled TPMT_SIGNATURE.
    signature: Vec<u8>,
}

/// Parses a TCTI name-conf string (`device:/dev/tpmrm0`, `swtpm:host=H,port=P`, `mssim:...`,
/// `tabrmd:...`) as `TctiNameConf::from_str` does, without compiling its five regexes per call:
/// a device TCTI needs none, a swtpm one two.
pub(crate) fn parse_tcti(tcti: &str) -> Result<TctiNameConf, TpmError> {
    use tss_esapi::tcti_ldr::{DeviceConfig, NetworkTPMConfig, TabrmdConfig};
    let (name, conf) = tcti.split_once(':').unwrap_or((tcti, ""));
    let parsed = match name {
        "device" => DeviceConfig::from_str(conf).map(TctiNameConf::Device),
        "swtpm" => NetworkTPMConfig::from_str(conf).map(TctiNameConf::Swtpm),
        "mssim" => NetworkTPMConfig::from_str(conf).map(TctiNameConf::Mssim),
        "tabrmd" => TabrmdConfig::from_str(conf).map(TctiNameConf::Tabrmd),
        _ => {
            return Err(TpmError::InvalidTcti {
                tcti: tcti.to_string(),
            })
        }
    };
    parsed.map_err(|_| TpmError::InvalidTcti {
        tcti: tcti.to_string(),
    })
}

/// The TPM clock's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Clock {
    pub clock: u64,
    pub reset_count: u32,
    pub restart_count: u32,
}

/// `TPM2_ReadClock`, on a short-lived raw ESYS context of its own (tss-esapi 7.7 lacks the
/// command and hides its `ESYS_CONTEXT`).
pub(crate) fn read_clock(tcti: &str, conf: TctiNameConf) -> Result<Clock, TpmError> {
    use tss_esapi::tss2_esys::{
        Esys_Finalize, Esys_Free, Esys_Initialize, Esys_ReadClock, Tss2_TctiLdr_Finalize,
        Tss2_TctiLdr_Initialize, ESYS_CONTEXT, ESYS_TR_NONE, TPMS_TIME_INFO, TSS2_TCTI_CONTEXT,
    };

    /// Finalises what was initialised, in reverse order, on every path.
    struct Raw {
        tcti: *mut TSS2_TCTI_CONTEXT,
        esys: *mut ESYS_CONTEXT,
    }
    impl Drop for Raw {
        fn drop(&mut self) {
            // SAFETY: each pointer is either null or was returned by the matching initialiser
            // and is finalised exactly once here.
            unsafe {
                if !self.esys.is_null() {
                    Esys_Finalize(&mut self.esys);
                }
                if !self.tcti.is_null() {
                    Tss2_TctiLdr_Finalize(&mut self.tcti);
                }
            }
        }
    }

    let name = CString::try_from(conf).map_err(|_| TpmError::InvalidTcti {
        tcti: tcti.to_string(),
    })?;
    let mut raw = Raw {
        tcti: std::ptr::null_mut(),
        esys: std::ptr::null_mut(),
    };
    // SAFETY: `name` is a valid NUL-terminated string; the out-pointer is a valid location.
    let rc = unsafe { Tss2_TctiLdr_Initialize(name.as_ptr(), &mut raw.tcti) };
    if rc != 0 || raw.tcti.is_null() {
        raw.tcti = std::ptr::null_mut();
        return Err(unreachable(tcti, &format!("TCTI error {rc:#x}")));
    }
    // SAFETY: `raw.tcti` is an initialised TCTI context; a null ABI version is allowed.
    let rc = unsafe { Esys_Initialize(&mut raw.esys, raw.tcti, std::ptr::null_mut()) };
    if rc != 0 {
        raw.esys = std::ptr::null_mut();
        return Err(unreachable(tcti, &format!("ESYS error {rc:#x}")));
    }
    let mut info: *mut TPMS_TIME_INFO = std::ptr::null_mut();
    // SAFETY: `raw.esys` is initialised; ReadClock takes no sessions; `info` receives memory we
    // free with Esys_Free below.
    let rc = unsafe {
        Esys_ReadClock(
            raw.esys,
            ESYS_TR_NONE,
            ESYS_TR_NONE,
            ESYS_TR_NONE,
            &mut info,
        )
    };
    if rc != 0 || info.is_null() {
        let reason = tss_esapi::constants::response_code::Tss2ResponseCode::from(rc).to_string();
        // A TCTI-layer IO error on the first command: nobody answered.
        if rc >> 16 == 0x0a {
            return Err(unreachable(tcti, &format!("{reason} ({rc:#x})")));
        }
        return Err(TpmError::Command {
            op: "ReadClock",
            tcti: tcti.to_string(),
            reason: format!("{reason} ({rc:#x})"),
        });
    }
    // SAFETY: `info` points to a TPMS_TIME_INFO allocated by ESYS; read it, then free it once.
    let clock = unsafe {
        let ci = (*info).clockInfo;
        Esys_Free(info.cast());
        Clock {
            clock: ci.clock,
            reset_count: ci.resetCount,
            restart_count: ci.restartCount,
        }
    };
    drop(raw);
    Ok(clock)
}

/// An unreachable-TPM error, with the cause found by [`diagnose`] when there is one.
fn unreachable(tcti: &str, tss_reason: &str) -> TpmError {
    TpmError::Unreachable {
        tcti: tcti.to_string(),
        reason: diagnose(tcti).unwrap_or_else(|| tss_reason.to_string()),
    }
}

/// Why the TPM at `tcti` cannot be reached, found without tpm2-tss: connect to a swtpm/mssim
/// port, or open the device. None when that works (the failure is elsewhere).
fn diagnose(tcti: &str) -> Option<String> {
    let describe = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        std::io::ErrorKind::NotFound => "no such device".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    match parse_tcti(tcti).ok()? {
        TctiNameConf::Device(_) => {
            // tpm2-tss's default for a bare "device" is /dev/tpm0.
            let path = tcti.strip_prefix("device:").unwrap_or("");
            let path = if path.is_empty() { "/dev/tpm0" } else { path };
            match fs::OpenOptions::new().read(true).write(true).open(path) {
                Ok(_) => None,
                Err(e) => Some(describe(e)),
            }
        }
        TctiNameConf::Swtpm(_) | TctiNameConf::Mssim(_) => {
            let field = |k: &str| {
                tcti.split([':', ','])
                    .find_map(|kv| kv.strip_prefix(k).map(str::to_string))
            };
            let host = field("host=").unwrap_or_else(|| "localhost".to_string());
            let port: u16 = field("port=").and_then(|p| p.parse().ok()).unwrap_or(2321);
            let addrs = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port));
            let addr = match addrs {
                Ok(mut a) => a.next()?,
                Err(e) => return Some(format!("cannot resolve {host}: {e}")),
            };
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                Ok(_) => None,
                Err(e) => Some(describe(e)),
            }
        }
        TctiNameConf::Tabrmd(_) => None,
    }
}

/// The attestation key in use.
struct Ak {
    /// The ESYS_TR of the persistent key (close it, never flush it).
    handle: ObjectHandle,
    pem: String,
    created: bool,
}

/// Finds the AK at [`AK_PERSISTENT_HANDLE`] (or creates it when absent), checks it is a
/// restricted ECC P-256 ECDSA-SHA256 signing key fixed to this TPM and, when `ak.pem` exists,
/// that it is that key; writes `ak.pem` when missing.
fn ensure_ak(ctx: &mut Context, tcti: &str, ak_pem: &Path) -> Result<Ak, TpmError> {
    let ak_err = |reason: String| TpmError::AttestationKey {
        handle: AK_PERSISTENT_HANDLE,
        reason,
    };
    let cmd = |op: &'static str| {
        move |e: tss_esapi::Error| TpmError::Command {
            op,
            tcti: tcti.to_string(),
            reason: e.to_string(),
        }
    };
    let tpm_handle = PersistentTpmHandle::new(AK_PERSISTENT_HANDLE)
        .map_err(|e| ak_err(format!("not a persistent handle: {e}")))?;

    let (handles, _) = ctx
        .execute_without_session(|c| {
            c.get_capability(CapabilityType::Handles, AK_PERSISTENT_HANDLE, 1)
        })
        .map_err(cmd("listing persistent handles"))?;
    let present = matches!(&handles, CapabilityData::Handles(list)
        if list.contains(&TpmHandle::Persistent(tpm_handle)));

    let recorded = match fs::read_to_string(ak_pem) {
        Ok(pem) => Some(
            p256::PublicKey::from_public_key_pem(pem.trim()).map_err(|e| {
                ak_err(format!(
                    "{} is not an ECC P-256 public key ({e}): restore it or move it aside",
                    ak_pem.display()
                ))
            })?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(TpmError::Io {
                what: "cannot read the attestation key",
                path: ak_pem.to_path_buf(),
                source,
            })
        }
    };

    let (handle, created) = if present {
        let handle = ctx
            .execute_without_session(|c| c.tr_from_tpm_public(TpmHandle::Persistent(tpm_handle)))
            .map_err(cmd("opening the attestation key"))?;
        (handle, false)
    } else {
        if recorded.is_some() {
            return Err(ak_err(format!(
                "absent from the TPM, but {} names an AK: the TPM was cleared or is another one; \
                 move {} aside to create a new AK",
                ak_pem.display(),
                ak_pem.display()
            )));
        }
        (create_ak(ctx, tcti, tpm_handle)?, true)
    };

    // From here on the handle must be closed on error.
    let checked = (|| {
        let (public, _, _) = ctx
            .execute_without_session(|c| c.read_public(KeyHandle::from(handle)))
            .map_err(cmd("reading the attestation key"))?;
        let key = check_ak_public(&public).map_err(ak_err)?;
        if let Some(recorded) = recorded {
            if recorded != key {
                return Err(ak_err(format!(
                    "holds a different key than {}: evict it (tpm2_evictcontrol -C o -c {:#x}) \
                     or restore the matching ak.pem",
                    ak_pem.display(),
                    AK_PERSISTENT_HANDLE
                )));
            }
        }
        let pem = key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| ak_err(format!("cannot encode the public key: {e}")))?;
        if recorded.is_none() {
            write_pem(ak_pem, &pem)?;
        }
        Ok(pem)
    })();
    match checked {
        Ok(pem) => Ok(Ak {
            handle,
            pem,
            created,
        }),
        Err(e) => {
            let mut handle = handle;
            let _ = ctx.tr_close(&mut handle);
            Err(e)
        }
    }
}

/// The AK's public key when `public` is a restricted, fixedTPM, ECC NIST P-256 signing key with
/// the ECDSA-SHA256 scheme; otherwise why not.
fn check_ak_public(public: &Public) -> Result<p256::PublicKey, String> {
    let Public::Ecc {
        object_attributes: attrs,
        parameters,
        unique,
        ..
    } = public
    else {
        return Err("holds a key that is not ECC: evict it or pick another handle".to_string());
    };
    let shape_ok = attrs.restricted()
        && attrs.sign_encrypt()
        && !attrs.decrypt()
        && attrs.fixed_tpm()
        && attrs.fixed_parent()
        && attrs.sensitive_data_origin()
        && parameters.ecc_curve() == EccCurve::NistP256
        && parameters.ecc_scheme() == EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256));
    if !shape_ok {
        return Err(format!(
            "holds a key that is not a restricted fixedTPM ECC P-256 ECDSA-SHA256 signing key \
             (curve {:?}, scheme {:?}): evict it (tpm2_evictcontrol -C o -c {:#x})",
            parameters.ecc_curve(),
            parameters.ecc_scheme(),
            AK_PERSISTENT_HANDLE
        ));
    }
    let coord = |v: &[u8]| -> Result<[u8; 32], String> {
        let v = &v[v.iter().position(|&b| b != 0).unwrap_or(v.len())..];
        if v.len() > 32 {
            return Err("a public key coordinate is longer than 32 bytes".to_string());
        }
        let mut out = [0u8; 32];
        out[32 - v.len()..].copy_from_slice(v);
        Ok(out)
    };
    let mut sec1 = vec![0x04];
    sec1.extend_from_slice(&coord(unique.x().value())?);
    sec1.extend_from_slice(&coord(unique.y().value())?);
    p256::PublicKey::from_sec1_bytes(&sec1)
        .map_err(|e| format!("public key is not a P-256 point: {e}"))
}

/// The AK template: restricted signing, ECC NIST P-256, ECDSA-SHA256, fixedTPM/fixedParent,
/// sensitiveDataOrigin, userWithAuth with an empty auth value, noDA.
fn ak_template() -> tss_esapi::Result<Public> {
    let attrs = ObjectAttributesBuilder::new()
        .with_restricted(true)
        .with_sign_encrypt(true)
        .with_decrypt(false)
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attrs)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new()
                .with_symmetric(SymmetricDefinitionObject::Null)
                .with_ecc_scheme(EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)))
                .with_curve(EccCurve::NistP256)
                .with_key_derivation_function_scheme(KeyDerivationFunctionScheme::Null)
                .with_is_signing_key(true)
                .with_is_decryption_key(false)
                .with_restricted(true)
                .build()?,
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
}

/// The parent's template: the TCG SRK template (ECC NIST P-256 restricted decryption, AES-128-CFB,
/// fixedTPM/fixedParent, sensitiveDataOrigin, userWithAuth, noDA, empty unique).
fn srk_template() -> tss_esapi::Result<Public> {
    let attrs = ObjectAttributesBuilder::new()
        .with_restricted(true)
        .with_decrypt(true)
        .with_sign_encrypt(false)
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attrs)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new_restricted_decryption_key(
                SymmetricDefinitionObject::AES_128_CFB,
                EccCurve::NistP256,
            )
            .build()?,
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
}

/// Runs `f` with a loaded transient object, then flushes it whatever `f` returned.
fn with_flushed<T>(
    ctx: &mut Context,
    tcti: &str,
    handle: ObjectHandle,
    f: impl FnOnce(&mut Context) -> Result<T, TpmError>,
) -> Result<T, TpmError> {
    let result = f(ctx);
    let flushed = ctx.flush_context(handle).map_err(|e| TpmError::Command {
        op: "flushing a transient object",
        tcti: tcti.to_string(),
        reason: e.to_string(),
    });
    let value = result?;
    flushed?;
    Ok(value)
}

/// Creates the AK under a transient primary (the SRK template) in the endorsement hierarchy,
/// makes it persistent at `persistent` (EvictControl with owner authorisation), and flushes both
/// transient objects. Returns the persistent object's ESYS_TR.
///
/// Why the endorsement hierarchy: a TPM obfuscates resetCount, restartCount and firmwareVersion
/// in a quote signed by a key of the owner (storage) hierarchy (TPM 2.0 Part 1, "Privacy" of
/// TPMS_CLOCK_INFO: values are offset by a KDF of the hierarchy proof and the key's name), so an
/// owner-hierarchy AK's quotes cannot be matched to the event log's reset/restart counts. An AK
/// under the endorsement hierarchy (where TCG AKs live, as `tpm2_createak` makes them) quotes
/// them in clear.
fn create_ak(
    ctx: &mut Context,
    tcti: &str,
    persistent: PersistentTpmHandle,
) -> Result<ObjectHandle, TpmError> {
    let cmd = |op: &'static str| {
        move |e: tss_esapi::Error| TpmError::Command {
            op,
            tcti: tcti.to_string(),
            reason: e.to_string(),
        }
    };
    let srk = srk_template().map_err(cmd("building the primary key template"))?;
    let ak = ak_template().map_err(cmd("building the attestation key template"))?;
    let primary = ctx
        .execute_with_session(Some(AuthSession::Password), |c| {
            c.create_primary(Hierarchy::Endorsement, srk, None, None, None, None)
        })
        .map_err(cmd("creating the primary key (endorsement hierarchy)"))?
        .key_handle;
    with_flushed(ctx, tcti, primary.into(), |ctx| {
        let created = ctx
            .execute_with_session(Some(AuthSession::Password), |c| {
                c.create(primary, ak, None, None, None, None)
            })
            .map_err(cmd("creating the attestation key"))?;
        let loaded = ctx
            .execute_with_session(Some(AuthSession::Password), |c| {
                c.load(primary, created.out_private, created.out_public)
            })
            .map_err(cmd("loading the attestation key"))?;
        with_flushed(ctx, tcti, loaded.into(), |ctx| {
            ctx.execute_with_session(Some(AuthSession::Password), |c| {
                c.evict_control(
                    Provision::Owner,
                    loaded.into(),
                    Persistent::Persistent(persistent),
                )
            })
            .map_err(cmd("persisting the attestation key (EvictControl)"))
        })
    })
}

/// Writes `ak.pem` (0644) durably: a temporary file, fsync, rename.
fn write_pem(path: &Path, pem: &str) -> Result<(), TpmError> {
    let io = |what: &'static str| {
        move |source| TpmError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    };
    let tmp = path.with_extension("pem.tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .map_err(io("cannot write the attestation key"))?;
    file.write_all(pem.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(io("cannot write the attestation key"))?;
    fs::rename(&tmp, path).map_err(io("cannot write the attestation key"))?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("cannot fsync the directory of the attestation key"))?;
    }
    Ok(())
}

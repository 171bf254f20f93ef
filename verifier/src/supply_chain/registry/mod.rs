//! The OCI distribution client: manifests, blobs, referrers, pushes, and the discovery of
//! signatures and attestations.
//!
//! Everything a registry sends is attacker-controlled: every body is read up to a bound (a larger
//! one is an error naming the bound), everything fetched by digest is checked against that digest,
//! and every request has the configured timeout, from connecting to the last byte.
//!
//! Errors tell "registry unreachable" (connection refused, DNS, timeout, a gateway saying the
//! registry is down) apart from "not found", "access denied" and "invalid response", because the
//! gate treats them differently: only an unreachable registry may fall back to a cached verdict.
//!
//! The API is blocking: the gate and the CLI are synchronous. It must not be called from inside an
//! async runtime's worker; when it is, each call moves to a scoped thread (see [`off_runtime`]).

#[cfg(test)]
mod attestation_tests;
mod attestations;
mod auth;
mod discover;
mod manifest;
#[cfg(test)]
mod mock_tests;
#[cfg(test)]
pub(crate) mod test_registry;

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use reqwest::{StatusCode, Url};
use sha2::{Digest as _, Sha256, Sha512};

pub use attestations::{AttestationDiscovery, MAX_SUBJECTS};
pub use auth::{parse_challenges, AuthFile, Challenge, Credentials};
pub use discover::Discovery;
pub use manifest::*;

use crate::config::RegistryConfig;
use crate::reference::{Reference, DOCKER_HUB};

/// Largest manifest (or index, or referrers response) read.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Largest signature layer (simple-signing payload or Sigstore bundle) read.
pub const MAX_SIGNATURE_LAYER_BYTES: u64 = 1024 * 1024;
/// At most this many signatures and bundle referrers are considered per image.
pub const MAX_SIGNATURES: usize = 64;
/// Largest attestation layer (DSSE envelope, attestation bundle, in-toto statement, attached SBOM)
/// read: SBOMs of large images run to tens of MiB.
pub const MAX_ATTESTATION_LAYER_BYTES: u64 = 32 * 1024 * 1024;
/// At most this many attestation layers and referrers are fetched per image, all kinds together.
pub const MAX_ATTESTATIONS: usize = 32;
/// Attestation material held at once, all pieces together: past it, nothing more is fetched (one
/// piece can still add a layer's worth).
pub const MAX_ATTESTATION_TOTAL_BYTES: u64 = 64 * 1024 * 1024;
/// Largest token-endpoint answer read.
const MAX_TOKEN_BYTES: u64 = 256 * 1024;
/// How much of an error body is read for a message.
const MAX_ERROR_BODY: u64 = 4096;
/// Where Docker Hub's API lives (`docker.io` is only its name in references).
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// A registry failure, on one line.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Connection refused, DNS failure, TLS failure, timeout, or a gateway saying the registry is down.
    #[error("registry unreachable: {registry}: {reason}")]
    Unreachable { registry: String, reason: String },

    #[error("{what}: not found")]
    NotFound { what: String },

    /// 401/403 after authenticating (or with no credentials to try).
    #[error("{what}: access denied by the registry: {reason}")]
    Denied { what: String, reason: String },

    /// The registry answered with something that is not what was asked for.
    #[error("{what}: invalid response: {reason}")]
    Invalid { what: String, reason: String },

    /// A body (or a declared size) exceeds a bound.
    #[error("{what}: exceeds the {bound} bound of {limit} bytes")]
    TooLarge {
        what: String,
        bound: &'static str,
        limit: u64,
    },

    /// Any other HTTP status.
    #[error("{what}: registry error: HTTP {status}{detail}")]
    Status {
        what: String,
        status: u16,
        detail: String,
    },

    /// A local file named by `[registry]` (CA, auth) is unusable.
    #[error("{}: {reason}", path.display())]
    Config { path: PathBuf, reason: String },

    /// A repository, tag or digest given by the caller (or found in a manifest) is not valid.
    #[error("invalid {what} {value:?}: {reason}")]
    Input {
        what: &'static str,
        value: String,
        reason: String,
    },
}

impl RegistryError {
    /// True when the registry could not be reached (the gate may use a cached verdict).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, RegistryError::Unreachable { .. })
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::NotFound { .. })
    }
}

/// A size bound and the name it is reported under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub name: &'static str,
    pub bytes: u64,
}

/// The bounds a [`Registry`] applies; [`Limits::default`] is the documented constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub manifest_bytes: u64,
    pub signature_layer_bytes: u64,
    pub max_signatures: usize,
    pub attestation_layer_bytes: u64,
    pub max_attestations: usize,
    pub attestation_total_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            manifest_bytes: MAX_MANIFEST_BYTES,
            signature_layer_bytes: MAX_SIGNATURE_LAYER_BYTES,
            max_signatures: MAX_SIGNATURES,
            attestation_layer_bytes: MAX_ATTESTATION_LAYER_BYTES,
            max_attestations: MAX_ATTESTATIONS,
            attestation_total_bytes: MAX_ATTESTATION_TOTAL_BYTES,
        }
    }
}

impl Limits {
    pub fn manifest(&self) -> Bound {
        Bound {
            name: "manifest size",
            bytes: self.manifest_bytes,
        }
    }

    pub fn signature_layer(&self) -> Bound {
        Bound {
            name: "signature layer size",
            bytes: self.signature_layer_bytes,
        }
    }

    pub fn attestation_layer(&self) -> Bound {
        Bound {
            name: "attestation layer size",
            bytes: self.attestation_layer_bytes,
        }
    }
}

/// A manifest as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedManifest {
    /// The exact bytes (what the digest is over).
    pub bytes: Vec<u8>,
    /// `Content-Type` without parameters, else the document's `mediaType`.
    pub media_type: String,
    /// `sha256:<hex>` of `bytes` (or the requested digest, which `bytes` were checked against).
    pub digest: String,
}

/// Where a referrers list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferrersSource {
    /// `GET /v2/<name>/referrers/<digest>`.
    Api,
    /// The OCI 1.1 tag schema: the index tagged `<alg>-<hex>`.
    TagSchema,
    /// Neither exists: no referrers.
    Absent,
}

/// The referrers of a manifest: the descriptors of the referrers index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrers {
    pub descriptors: Vec<Descriptor>,
    pub source: ReferrersSource,
}

/// A repository split into what requests need.
#[derive(Debug, Clone)]
struct Repo {
    /// The repository as named (`127.0.0.1:5000/team/app`), for messages.
    name: String,
    /// The registry as written in references (`docker.io`, `127.0.0.1:5000`): key of auth and
    /// `plain_http`.
    registry: String,
    /// The path below the registry (`team/app`).
    path: String,
    /// `http(s)://<api host>/v2/<path>/`.
    base: Url,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Pull,
    Push,
}

impl Action {
    fn scope_actions(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "pull,push",
        }
    }
}

/// What was learnt about how a registry authenticates.
#[derive(Debug, Clone, Default)]
struct HostAuth {
    /// The registry asked for Basic: send it up front from now on.
    basic: bool,
    /// Bearer tokens by scope.
    tokens: HashMap<String, String>,
}

/// A registry client for every registry the node talks to, built from `[registry]`.
#[derive(Debug)]
pub struct Registry {
    http: Client,
    plain_http: Vec<String>,
    auth: AuthFile,
    timeout: Duration,
    limits: Limits,
    hosts: Mutex<HashMap<String, HostAuth>>,
}

impl Registry {
    /// Builds a client: reads the extra CA files and the auth file (errors name the file).
    pub fn new(config: &RegistryConfig) -> Result<Registry> {
        let mut certs = Vec::new();
        for path in &config.ca_files {
            let pem = std::fs::read(path).map_err(|e| RegistryError::Config {
                path: path.clone(),
                reason: format!("cannot read CA file: {e}"),
            })?;
            let found =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| RegistryError::Config {
                    path: path.clone(),
                    reason: format!("not a PEM certificate bundle: {}", error_chain(&e)),
                })?;
            if found.is_empty() {
                return Err(RegistryError::Config {
                    path: path.clone(),
                    reason: "no PEM certificate in CA file".to_string(),
                });
            }
            certs.extend(found);
        }
        let auth = match &config.auth {
            Some(path) => AuthFile::load(path)?,
            None => AuthFile::default(),
        };
        let timeout = Duration::from_millis(config.timeout_ms.max(1));
        let plain_http = config
            .plain_http
            .iter()
            .map(|h| normalize_registry(h))
            .collect();
        off_runtime(move || {
            let http = Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .user_agent(concat!("vouch/", env!("CARGO_PKG_VERSION")))
                .tls_certs_merge(certs)
                .build()
                .map_err(|e| RegistryError::Config {
                    path: PathBuf::from("[registry]"),
                    reason: format!("cannot build the HTTP client: {}", error_chain(&e)),
                })?;
            Ok(Registry {
                http,
                plain_http,
                auth,
                timeout,
                limits: Limits::default(),
                hosts: Mutex::new(HashMap::new()),
            })
        })
    }

    /// Replaces the default bounds.
    pub fn with_limits(mut self, limits: Limits) -> Registry {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Fetches a manifest by digest (`sha256:<hex>`, checked against what arrives) or by tag.
    pub fn get_manifest(&self, repository: &str, reference: &str) -> Result<FetchedManifest> {
        off_runtime(|| self.get_manifest_inner(&self.repo(repository)?, reference))
    }

    /// Fetches a blob by digest, at most `bound` bytes, checked against the digest.
    pub fn get_blob(&self, repository: &str, digest: &str, bound: Bound) -> Result<Vec<u8>> {
        off_runtime(|| self.get_blob_inner(&self.repo(repository)?, digest, bound))
    }

    /// Lists the referrers of `digest`: the referrers API, else (on 404) the `<alg>-<hex>` tag
    /// that holds an OCI index, else none.
    pub fn referrers(&self, repository: &str, digest: &str) -> Result<Referrers> {
        off_runtime(|| self.referrers_inner(&self.repo(repository)?, digest))
    }

    /// Uploads `bytes` as a blob (monolithic POST + PUT; skipped when the blob exists) and
    /// returns its digest.
    pub fn push_blob(&self, repository: &str, bytes: &[u8]) -> Result<String> {
        off_runtime(|| self.push_blob_inner(&self.repo(repository)?, bytes))
    }

    /// Uploads a manifest under `reference` (a tag, or its own digest as OCI 1.1 referrers are
    /// pushed) and returns its digest.
    pub fn push_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String> {
        off_runtime(|| {
            self.push_manifest_inner(&self.repo(repository)?, reference, media_type, bytes)
        })
    }

    /// Finds the signature material of `digest` in `repository` (or in `signature_repository`,
    /// like `COSIGN_REPOSITORY`): cosign `.sig` simple signatures and Sigstore bundle referrers.
    /// Unusable material is skipped with a reason; an unreachable registry is an error.
    pub fn discover_signatures(
        &self,
        repository: &str,
        digest: &str,
        signature_repository: Option<&str>,
    ) -> Result<Discovery> {
        off_runtime(|| discover::discover(self, repository, digest, signature_repository))
    }

    /// Finds the attestation material of an image in `repository` (or, for cosign's tags and
    /// referrers, in `signature_repository`): for each of `subjects` (the image digest first, then
    /// alternatives such as its platform manifest) the cosign `.att` and `.sbom` tags and the
    /// Sigstore bundle referrers that are attestations; and, when the image digest is an index,
    /// its BuildKit attestation manifests for any of `subjects`. At most
    /// [`Limits::max_attestations`] pieces are fetched; unusable material is skipped with a
    /// reason; an unreachable registry is an error.
    pub fn discover_attestations(
        &self,
        repository: &str,
        subjects: &[&str],
        signature_repository: Option<&str>,
    ) -> Result<AttestationDiscovery> {
        off_runtime(|| attestations::discover(self, repository, subjects, signature_repository))
    }

    // ---- internals -------------------------------------------------------------------------

    fn repo(&self, repository: &str) -> Result<Repo> {
        let bad = |reason: String| RegistryError::Input {
            what: "repository",
            value: repository.to_string(),
            reason,
        };
        let parsed = Reference::parse(repository).map_err(|e| bad(e.to_string()))?;
        if parsed.tag.is_some() || parsed.digest.is_some() {
            return Err(bad("expected a repository without tag or digest".into()));
        }
        let name = parsed.repository;
        let (registry, path) = name
            .split_once('/')
            .ok_or_else(|| bad("no registry host".into()))?;
        let registry = registry.to_ascii_lowercase();
        let api_host = if registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            registry.as_str()
        };
        let scheme = if self.is_plain_http(&registry) {
            "http"
        } else {
            "https"
        };
        let base = Url::parse(&format!("{scheme}://{api_host}/v2/{path}/"))
            .map_err(|e| bad(format!("cannot form a URL: {e}")))?;
        Ok(Repo {
            registry,
            path: path.to_string(),
            name: name.clone(),
            base,
        })
    }

    fn is_plain_http(&self, registry: &str) -> bool {
        self.plain_http.iter().any(|h| h == registry)
    }

    fn url(&self, repo: &Repo, rest: &str) -> Result<Url> {
        repo.base.join(rest).map_err(|e| RegistryError::Input {
            what: "URL",
            value: format!("{}{rest}", repo.base),
            reason: e.to_string(),
        })
    }

    fn get_manifest_inner(&self, repo: &Repo, reference: &str) -> Result<FetchedManifest> {
        let by_digest = reference.contains(':');
        let what = if by_digest {
            format!("manifest {}@{reference}", repo.name)
        } else {
            format!("manifest {}:{reference}", repo.name)
        };
        if by_digest {
            parse_digest(reference)?;
        } else {
            validate_tag(reference)?;
        }
        let url = self.url(repo, &format!("manifests/{reference}"))?;
        let started = Instant::now();
        let resp = self.send(repo, Action::Pull, &what, |c| {
            c.get(url.clone()).header(ACCEPT, MANIFEST_ACCEPT)
        })?;
        let resp = check_status(resp, &what, &repo.registry)?;
        let header_type = content_type(resp.headers());
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes =
            self.read_bounded(resp, self.limits.manifest(), &what, &repo.registry, started)?;
        let digest = if by_digest {
            verify_digest(reference, &bytes).map_err(|reason| RegistryError::Invalid {
                what: what.clone(),
                reason,
            })?;
            reference.to_string()
        } else {
            let computed = sha256_digest(&bytes);
            if let Some(h) = header_digest.filter(|h| h.starts_with("sha256:")) {
                if h != computed {
                    return Err(RegistryError::Invalid {
                        what,
                        reason: format!(
                            "Docker-Content-Digest {h} does not match the content ({computed})"
                        ),
                    });
                }
            }
            computed
        };
        let media_type = match header_type {
            Some(t) if t != "application/json" && t != "application/octet-stream" => t,
            _ => ManifestDocument::parse(&bytes)
                .ok()
                .and_then(|d| d.media_type)
                .ok_or_else(|| RegistryError::Invalid {
                    what: what.clone(),
                    reason: "no media type (neither Content-Type nor mediaType)".to_string(),
                })?,
        };
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Reads the body, refusing more than `bound` (by `Content-Length` before reading, and while
    /// reading), and giving up when the request (which began at `started`) exceeds the timeout:
    /// the HTTP client's own timeout applies to each read, not to the whole body.
    fn read_bounded(
        &self,
        resp: Response,
        bound: Bound,
        what: &str,
        registry: &str,
        started: Instant,
    ) -> Result<Vec<u8>> {
        let too_large = || RegistryError::TooLarge {
            what: what.to_string(),
            bound: bound.name,
            limit: bound.bytes,
        };
        if resp.content_length().is_some_and(|n| n > bound.bytes) {
            return Err(too_large());
        }
        let deadline = started + self.timeout;
        let unreachable = |reason: String| RegistryError::Unreachable {
            registry: registry.to_string(),
            reason,
        };
        let mut body = resp.take(bound.bytes.saturating_add(1));
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if Instant::now() > deadline {
                return Err(unreachable(format!(
                    "timed out after {} ms while reading the response",
                    self.timeout.as_millis()
                )));
            }
            match body.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(unreachable(
                        match e.get_ref().and_then(|i| i.downcast_ref::<reqwest::Error>()) {
                            Some(r) if r.is_timeout() => format!(
                                "timed out after {} ms while reading the response",
                                self.timeout.as_millis()
                            ),
                            Some(r) => {
                                format!("connection failed while reading: {}", error_chain(r))
                            }
                            None => format!("connection failed while reading: {e}"),
                        },
                    ))
                }
            }
        }
        if buf.len() as u64 > bound.bytes {
            return Err(too_large());
        }
        Ok(buf)
    }

    fn get_blob_inner(&self, repo: &Repo, digest: &str, bound: Bound) -> Result<Vec<u8>> {
        let what = format!("blob {}@{digest}", repo.name);
        parse_digest(digest)?;
        let url = self.url(repo, &format!("blobs/{digest}"))?;
        let started = Instant::now();
        let resp = self.send(repo, Action::Pull, &what, |c| c.get(url.clone()))?;
        let resp = check_status(resp, &what, &repo.registry)?;
        let bytes = self.read_bounded(resp, bound, &what, &repo.registry, started)?;
        verify_digest(digest, &bytes).map_err(|reason| RegistryError::Invalid { what, reason })?;
        Ok(bytes)
    }

    fn referrers_inner(&self, repo: &Repo, digest: &str) -> Result<Referrers> {
        parse_digest(digest)?;
        let what = format!("referrers of {}@{digest}", repo.name);
        let url = self.url(repo, &format!("referrers/{digest}"))?;
        let started = Instant::now();
        let resp = self.send(repo, Action::Pull, &what, |c| {
            c.get(url.clone()).header(ACCEPT, OCI_INDEX)
        })?;
        let (bytes, source) = if resp.status() == StatusCode::NOT_FOUND {
            // No referrers API (docker-registry 2.8): the OCI 1.1 tag schema.
            drop(resp);
            match self.get_manifest_inner(repo, &tag_schema_tag(digest, "")?) {
                Ok(m) => {
                    if m.media_type != OCI_INDEX {
                        return Err(RegistryError::Invalid {
                            what: format!(
                                "referrers index {}:{}",
                                repo.name,
                                tag_schema_tag(digest, "")?
                            ),
                            reason: format!("media type {} is not an OCI index", m.media_type),
                        });
                    }
                    (m.bytes, ReferrersSource::TagSchema)
                }
                Err(e) if e.is_not_found() => {
                    return Ok(Referrers {
                        descriptors: Vec::new(),
                        source: ReferrersSource::Absent,
                    })
                }
                Err(e) => return Err(e),
            }
        } else {
            let resp = check_status(resp, &what, &repo.registry)?;
            (
                self.read_bounded(resp, self.limits.manifest(), &what, &repo.registry, started)?,
                ReferrersSource::Api,
            )
        };
        let doc = ManifestDocument::parse(&bytes)
            .map_err(|reason| RegistryError::Invalid { what, reason })?;
        Ok(Referrers {
            descriptors: doc.manifests,
            source,
        })
    }

    fn push_blob_inner(&self, repo: &Repo, bytes: &[u8]) -> Result<String> {
        let digest = sha256_digest(bytes);
        let what = format!("blob upload {}@{digest}", repo.name);
        let blob_url = self.url(repo, &format!("blobs/{digest}"))?;
        let head = self.send(repo, Action::Push, &what, |c| c.head(blob_url.clone()))?;
        if head.status().is_success() {
            return Ok(digest);
        }
        drop(head);
        let start = self.url(repo, "blobs/uploads/")?;
        let resp = self.send(repo, Action::Push, &what, |c| {
            c.post(start.clone())
                .header(reqwest::header::CONTENT_LENGTH, 0)
        })?;
        let resp = check_status(resp, &what, &repo.registry)?;
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::Invalid {
                what: what.clone(),
                reason: "upload started without a Location".to_string(),
            })?;
        let mut put = resp
            .url()
            .join(location)
            .map_err(|e| RegistryError::Invalid {
                what: what.clone(),
                reason: format!("bad upload Location {location:?}: {e}"),
            })?;
        put.query_pairs_mut().append_pair("digest", &digest);
        drop(resp);
        let body = bytes.to_vec();
        let resp = self.send(repo, Action::Push, &what, |c| {
            c.put(put.clone())
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(body.clone())
        })?;
        check_status(resp, &what, &repo.registry)?;
        Ok(digest)
    }

    fn push_manifest_inner(
        &self,
        repo: &Repo,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String> {
        let by_digest = reference.contains(':');
        let digest = if by_digest {
            reference.to_string()
        } else {
            sha256_digest(bytes)
        };
        let what = if by_digest {
            verify_digest(reference, bytes).map_err(|reason| RegistryError::Input {
                what: "manifest reference",
                value: reference.to_string(),
                reason,
            })?;
            format!("manifest upload {}@{reference}", repo.name)
        } else {
            validate_tag(reference)?;
            format!("manifest upload {}:{reference}", repo.name)
        };
        if bytes.len() as u64 > self.limits.manifest_bytes {
            return Err(RegistryError::TooLarge {
                what,
                bound: self.limits.manifest().name,
                limit: self.limits.manifest_bytes,
            });
        }
        let url = self.url(repo, &format!("manifests/{reference}"))?;
        let body = bytes.to_vec();
        let resp = self.send(repo, Action::Push, &what, |c| {
            c.put(url.clone())
                .header(CONTENT_TYPE, media_type)
                .body(body.clone())
        })?;
        let resp = check_status(resp, &what, &repo.registry)?;
        if let Some(h) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            if h != digest {
                return Err(RegistryError::Invalid {
                    what,
                    reason: format!("registry stored digest {h}, expected {digest}"),
                });
            }
        }
        Ok(digest)
    }

    /// Sends a request built by `build`, with what is known of the registry's authentication; on
    /// a 401 challenge, authenticates and sends it once more.
    fn send(
        &self,
        repo: &Repo,
        action: Action,
        what: &str,
        build: impl Fn(&Client) -> RequestBuilder,
    ) -> Result<Response> {
        let scope = format!("repository:{}:{}", repo.path, action.scope_actions());
        let header = self.cached_authorization(&repo.registry, &scope);
        let resp = self.execute(build(&self.http), header.as_deref(), &repo.registry)?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenges: Vec<Challenge> = resp
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_challenges)
            .collect();
        drop(resp);
        let header = self.authenticate(repo, &challenges, &scope, what)?;
        let resp = self.execute(build(&self.http), Some(&header), &repo.registry)?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(RegistryError::Denied {
                what: what.to_string(),
                reason: format!(
                    "HTTP 401 after authenticating with {}",
                    self.credentials_description(&repo.registry)
                ),
            });
        }
        Ok(resp)
    }

    fn execute(
        &self,
        builder: RequestBuilder,
        authorization: Option<&str>,
        registry: &str,
    ) -> Result<Response> {
        let builder = match authorization {
            Some(a) => builder.header(AUTHORIZATION, a),
            None => builder,
        };
        builder
            .send()
            .map_err(|e| self.transport_error(&e, registry))
    }

    fn transport_error(&self, e: &reqwest::Error, registry: &str) -> RegistryError {
        let reason = if e.is_timeout() {
            format!("timed out after {} ms", self.timeout.as_millis())
        } else {
            // reqwest's outer layers ("error sending request for url (...)", "client error
            // (Connect)") say nothing the registry name does not; keep the causes.
            let chain = error_chain(e);
            let causes: Vec<&str> = chain
                .split(": ")
                .filter(|p| {
                    !p.starts_with("error sending request") && !p.starts_with("client error (")
                })
                .collect();
            if causes.is_empty() {
                chain
            } else {
                causes.join(": ")
            }
        };
        RegistryError::Unreachable {
            registry: registry.to_string(),
            reason,
        }
    }

    fn cached_authorization(&self, registry: &str, scope: &str) -> Option<String> {
        let hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        let host = hosts.get(registry)?;
        if let Some(token) = host.tokens.get(scope) {
            return Some(format!("Bearer {token}"));
        }
        if host.basic {
            if let Some(Credentials::Basic { username, password }) = self.auth.get(registry) {
                return Some(basic_header(username, password));
            }
        }
        None
    }

    fn credentials_description(&self, registry: &str) -> &'static str {
        match self.auth.get(registry) {
            Some(Credentials::Basic { .. }) => "the auth file's username and password",
            Some(Credentials::IdentityToken(_)) => "the auth file's identity token",
            None => "no credentials (none in the [registry] auth file for this host)",
        }
    }

    /// Answers a 401: a Bearer token from the realm, or Basic credentials.
    fn authenticate(
        &self,
        repo: &Repo,
        challenges: &[Challenge],
        scope: &str,
        what: &str,
    ) -> Result<String> {
        let creds = self.auth.get(&repo.registry);
        let bearer = challenges.iter().find_map(|c| match c {
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => Some((realm, service, scope)),
            _ => None,
        });
        if let Some((realm, service, challenge_scope)) = bearer {
            // The registry's own scope wins (it knows what this request needs).
            let token_scope = challenge_scope.as_deref().unwrap_or(scope);
            let token =
                self.fetch_token(repo, realm, service.as_deref(), token_scope, creds, what)?;
            let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
            let host = hosts.entry(repo.registry.clone()).or_default();
            host.tokens.insert(scope.to_string(), token.clone());
            if token_scope != scope {
                host.tokens.insert(token_scope.to_string(), token.clone());
            }
            return Ok(format!("Bearer {token}"));
        }
        if challenges
            .iter()
            .any(|c| matches!(c, Challenge::Basic { .. }))
        {
            return match creds {
                Some(Credentials::Basic { username, password }) => {
                    let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
                    hosts.entry(repo.registry.clone()).or_default().basic = true;
                    Ok(basic_header(username, password))
                }
                _ => Err(RegistryError::Denied {
                    what: what.to_string(),
                    reason: format!(
                        "the registry asks for Basic credentials and there are {}",
                        match creds {
                            Some(_) => "only an identity token".to_string(),
                            None => "none in the [registry] auth file for this host".to_string(),
                        }
                    ),
                }),
            };
        }
        Err(RegistryError::Denied {
            what: what.to_string(),
            reason: match challenges.first() {
                Some(Challenge::Other(s)) => {
                    format!("HTTP 401 with an unsupported authentication scheme {s:?}")
                }
                _ => "HTTP 401 without a usable WWW-Authenticate challenge".to_string(),
            },
        })
    }

    fn fetch_token(
        &self,
        repo: &Repo,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        creds: Option<&Credentials>,
        what: &str,
    ) -> Result<String> {
        let bad_realm = |reason: String| RegistryError::Invalid {
            what: what.to_string(),
            reason: format!("token realm {realm:?}: {reason}"),
        };
        let mut url = Url::parse(realm).map_err(|e| bad_realm(e.to_string()))?;
        let realm_host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(bad_realm("no host".into())),
        };
        match url.scheme() {
            "https" => {}
            "http" => {
                // Credentials travel in clear only to hosts the operator listed as plain HTTP.
                if creds.is_some() && !self.is_plain_http(&normalize_registry(&realm_host)) {
                    return Err(bad_realm(
                        "refusing to send credentials over plain HTTP to a host not in [registry] plain_http"
                            .into(),
                    ));
                }
            }
            s => return Err(bad_realm(format!("unsupported scheme {s:?}"))),
        }
        let token_what = format!("token for {what} from {realm_host}");
        let started = Instant::now();
        let resp = match creds {
            Some(Credentials::IdentityToken(refresh)) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.as_str()),
                    ("client_id", "vouch"),
                    ("scope", scope),
                ];
                if let Some(s) = service {
                    form.push(("service", s));
                }
                self.http.post(url).form(&form).send()
            }
            other => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    q.append_pair("scope", scope);
                }
                let req = self.http.get(url);
                let req = match other {
                    Some(Credentials::Basic { username, password }) => {
                        req.header(AUTHORIZATION, basic_header(username, password))
                    }
                    _ => req,
                };
                req.send()
            }
        }
        .map_err(|e| self.transport_error(&e, &realm_host))?;
        if matches!(
            resp.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            return Err(RegistryError::Denied {
                what: what.to_string(),
                reason: format!(
                    "token endpoint {realm_host} refused {} (HTTP {})",
                    self.credentials_description(&repo.registry),
                    resp.status().as_u16()
                ),
            });
        }
        let resp = check_status(resp, &token_what, &realm_host)?;
        let body = self.read_bounded(
            resp,
            Bound {
                name: "token response size",
                bytes: MAX_TOKEN_BYTES,
            },
            &token_what,
            &realm_host,
            started,
        )?;
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Invalid {
                what: token_what.clone(),
                reason: format!("not a token response: {e}"),
            })?;
        let token = parsed
            .token
            .filter(|t| !t.is_empty())
            .or(parsed.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| RegistryError::Invalid {
                what: token_what.clone(),
                reason: "no token in the response".into(),
            })?;
        // A token goes into a header: refuse anything that is not header-safe.
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(RegistryError::Invalid {
                what: token_what,
                reason: "token contains characters not allowed in a header".into(),
            });
        }
        Ok(token)
    }
}

/// Runs `f` directly, or on a scoped thread when the caller is inside a tokio runtime (where the
/// blocking HTTP client must not block).
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Registry names compare lower-case, without a scheme or trailing slash.
fn normalize_registry(host: &str) -> String {
    let h = host.trim();
    let h = h
        .strip_prefix("http://")
        .or_else(|| h.strip_prefix("https://"))
        .unwrap_or(h);
    h.trim_end_matches('/').to_ascii_lowercase()
}

fn basic_header(username: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
    )
}

/// `Content-Type` without parameters, if any.
fn content_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let t = v.split(';').next().unwrap_or(v).trim().to_ascii_lowercase();
    (!t.is_empty()).then_some(t)
}

/// Maps a non-success status to an error; passes success through.
fn check_status(resp: Response, what: &str, registry: &str) -> Result<Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let what = what.to_string();
    match status {
        StatusCode::NOT_FOUND => Err(RegistryError::NotFound { what }),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(RegistryError::Denied {
            what,
            reason: format!("HTTP {}{}", status.as_u16(), error_detail(resp)),
        }),
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
            Err(RegistryError::Unreachable {
                registry: registry.to_string(),
                reason: format!("HTTP {status}"),
            })
        }
        _ => Err(RegistryError::Status {
            what,
            status: status.as_u16(),
            detail: error_detail(resp),
        }),
    }
}

/// `: <code>: <message>` from a distribution error body, or a short one-line excerpt.
fn error_detail(resp: Response) -> String {
    let mut buf = Vec::new();
    if resp.take(MAX_ERROR_BODY).read_to_end(&mut buf).is_err() || buf.is_empty() {
        return String::new();
    }
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        code: Option<String>,
        message: Option<String>,
    }
    let text = match serde_json::from_slice::<Errors>(&buf) {
        Ok(Errors { errors }) if !errors.is_empty() => errors
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e.code.as_deref().unwrap_or(""),
                    e.message.as_deref().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::from_utf8_lossy(&buf).into_owned(),
    };
    let one: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    if one.is_empty() {
        String::new()
    } else {
        format!(": {one}")
    }
}

/// `e` and its sources, `: `-joined, without repeats.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// The supported digest algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Sha256,
    Sha512,
}

/// Parses `alg:hex` (sha256 or sha512, lower-case hex of the right length).
fn parse_digest(digest: &str) -> Result<(Algorithm, &str)> {
    let bad = |reason: &str| RegistryError::Input {
        what: "digest",
        value: digest.chars().take(200).collect(),
        reason: reason.to_string(),
    };
    let (alg, hex) = digest
        .split_once(':')
        .ok_or_else(|| bad("not of the form algorithm:hex"))?;
    let (alg, len) = match alg {
        "sha256" => (Algorithm::Sha256, 64),
        "sha512" => (Algorithm::Sha512, 128),
        _ => return Err(bad("unsupported algorithm (sha256 or sha512)")),
    };
    if hex.len() != len || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(bad("wrong length or not lower-case hex"));
    }
    Ok((alg, hex))
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Checks `bytes` against `expected` (`sha256:` or `sha512:`); the error says what was received.
pub fn verify_digest(expected: &str, bytes: &[u8]) -> std::result::Result<(), String> {
    let (alg, hex) = parse_digest(expected).map_err(|e| e.to_string())?;
    let actual = match alg {
        Algorithm::Sha256 => hex::encode(Sha256::digest(bytes)),
        Algorithm::Sha512 => hex::encode(Sha512::digest(bytes)),
    };
    if actual == hex {
        Ok(())
    } else {
        Err(format!(
            "digest mismatch: expected {expected}, received content has {}:{actual}",
            expected.split(':').next().unwrap_or("")
        ))
    }
}

/// The OCI 1.1 referrers tag of `digest` (`sha256-<hex>`), with `suffix` appended (cosign's
/// `.sig` and `.att`).
pub fn tag_schema_tag(digest: &str, suffix: &str) -> Result<String> {
    parse_digest(digest)?;
    Ok(format!("{}{suffix}", digest.replacen(':', "-", 1)))
}

fn validate_tag(tag: &str) -> Result<()> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(RegistryError::Input {
            what: "tag",
            value: tag.chars().take(200).collect(),
            reason: "letters, digits, '_', '.', '-', at most 128".to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn registry(plain: &[&str]) -> Registry {
        Registry::new(&RegistryConfig {
            plain_http: plain.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn tag_schema_names() {
        assert_eq!(
            tag_schema_tag(&format!("sha256:{HEX}"), ".sig").unwrap(),
            format!("sha256-{HEX}.sig")
        );
        assert_eq!(
            tag_schema_tag(&format!("sha256:{HEX}"), "").unwrap(),
            format!("sha256-{HEX}")
        );
        assert!(tag_schema_tag("sha256:abc", ".sig").is_err());
        assert!(tag_schema_tag(&format!("md5:{HEX}"), "").is_err());
        assert!(tag_schema_tag(&format!("sha256:{}", HEX.to_uppercase()), "").is_err());
    }

    #[test]
    fn digests_are_checked_against_content() {
        // sha256("hello")
        assert_eq!(sha256_digest(b"hello"), format!("sha256:{HEX}"));
        assert!(verify_digest(&format!("sha256:{HEX}"), b"hello").is_ok());
        let e = verify_digest(&format!("sha256:{HEX}"), b"hellO").unwrap_err();
        assert!(
            e.starts_with("digest mismatch: expected sha256:2cf2"),
            "{e}"
        );
        let sha512 = hex::encode(Sha512::digest(b"hello"));
        assert!(verify_digest(&format!("sha512:{sha512}"), b"hello").is_ok());
        assert!(verify_digest(&format!("sha512:{sha512}"), b"x").is_err());
        assert!(verify_digest("sha256:../../etc", b"").is_err());
        assert!(verify_digest("hello", b"hello").is_err());
    }

    #[test]
    fn bounds_are_named_in_errors() {
        let e = RegistryError::TooLarge {
            what: "blob x".into(),
            bound: Limits::default().signature_layer().name,
            limit: MAX_SIGNATURE_LAYER_BYTES,
        };
        assert_eq!(
            e.to_string(),
            "blob x: exceeds the signature layer size bound of 1048576 bytes"
        );
        assert_eq!(Limits::default().manifest().bytes, 4 * 1024 * 1024);
        assert_eq!(Limits::default().max_signatures, 64);
    }

    #[test]
    fn repositories_map_to_urls() {
        let r = registry(&["127.0.0.1:5000", "http://Local.Test:80/"]);
        let repo = r.repo("127.0.0.1:5000/team/app").unwrap();
        assert_eq!(repo.base.as_str(), "http://127.0.0.1:5000/v2/team/app/");
        assert_eq!(repo.registry, "127.0.0.1:5000");
        assert_eq!(repo.path, "team/app");
        let repo = r.repo("docker.io/library/busybox").unwrap();
        assert_eq!(
            repo.base.as_str(),
            "https://registry-1.docker.io/v2/library/busybox/"
        );
        assert_eq!(repo.registry, "docker.io");
        assert_eq!(
            r.repo("busybox").unwrap().base.as_str(),
            "https://registry-1.docker.io/v2/library/busybox/"
        );
        assert_eq!(
            r.repo("local.test:80/x").unwrap().base.as_str(),
            "http://local.test/v2/x/"
        );
        assert_eq!(
            r.repo("127.0.0.1:5001/x").unwrap().base.as_str(),
            "https://127.0.0.1:5001/v2/x/"
        );
        let url = r
            .url(
                &r.repo("ghcr.io/a/b").unwrap(),
                &format!("manifests/sha256:{HEX}"),
            )
            .unwrap();
        assert_eq!(
            url.as_str(),
            format!("https://ghcr.io/v2/a/b/manifests/sha256:{HEX}")
        );
        for bad in ["ghcr.io/a/b:tag", "ghcr.io/../x", "", "ghcr.io/A"] {
            assert!(r.repo(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn caller_input_is_validated_before_any_request() {
        let r = registry(&[]);
        // Nothing listens on this address: an error here must come from validation, not I/O.
        let e = r.get_manifest("127.0.0.1:9/x", "../../v2").unwrap_err();
        assert!(matches!(e, RegistryError::Input { what: "tag", .. }), "{e}");
        let e = r
            .get_blob(
                "127.0.0.1:9/x",
                "sha256:abc",
                Limits::default().signature_layer(),
            )
            .unwrap_err();
        assert!(
            matches!(e, RegistryError::Input { what: "digest", .. }),
            "{e}"
        );
        let e = r.referrers("127.0.0.1:9/x", "latest").unwrap_err();
        assert!(matches!(e, RegistryError::Input { .. }), "{e}");
    }

    #[test]
    fn unreachable_registry_is_named_as_such() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let repo = format!("127.0.0.1:{port}/x");
        let r = registry(&[&format!("127.0.0.1:{port}")]);
        let e = r.get_manifest(&repo, "latest").unwrap_err();
        assert!(e.is_unreachable(), "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("registry unreachable: 127.0.0.1:{port}: ")),
            "{e}"
        );
        // DNS failure.
        let r = registry(&[]);
        let e = r
            .get_manifest("nonexistent.invalid/x", "latest")
            .unwrap_err();
        assert!(e.is_unreachable(), "{e}");
    }

    #[test]
    fn ca_and_auth_files_are_read_at_construction() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let e = Registry::new(&RegistryConfig {
            ca_files: vec![ca.clone()],
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.starts_with(&ca.display().to_string()), "{e}");
        let auth = dir.path().join("auth.json");
        let e = Registry::new(&RegistryConfig {
            auth: Some(auth.clone()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("cannot read the registry auth file"), "{e}");
        std::fs::write(&auth, r#"{"auths":{"h:1":{"auth":"dTpw"}}}"#).unwrap();
        let r = Registry::new(&RegistryConfig {
            auth: Some(auth),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            r.auth.get("h:1"),
            Some(&Credentials::Basic {
                username: "u".into(),
                password: "p".into()
            })
        );
    }

    #[test]
    fn works_from_inside_a_tokio_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let r = registry(&["127.0.0.1:9"]);
            let e = r.get_manifest("127.0.0.1:9/x", "latest").unwrap_err();
            assert!(e.is_unreachable(), "{e}");
            drop(r);
        });
    }
}

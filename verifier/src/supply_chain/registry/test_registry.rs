//! A minimal in-memory OCI distribution registry on loopback, for unit tests that push and then
//! discover: manifests by tag and digest, monolithic blob uploads, no referrers API (so referrers
//! are found through the `sha256-<hex>` tag schema). One request per connection.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use super::{sha256_digest, Registry};
use crate::config::RegistryConfig;
use crate::cosign_key::SigningKey;
use crate::facts::ImageIdentity;
use crate::policy::{Authority, MultiArch, Trust, Verification};

/// A file of `../shared/fixtures`.
pub(crate) fn fixture(path: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../shared/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A verify rule with one key authority, "release", whose public key is written into `dir`.
pub(crate) fn key_rule(
    dir: &std::path::Path,
    key: &SigningKey,
    signature_repository: Option<String>,
) -> Verification {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = dir.join(format!("k{}.pub", N.fetch_add(1, Ordering::SeqCst)));
    std::fs::write(&path, key.public_key_pem().expect("public key")).expect("write key");
    Verification {
        threshold: 1,
        signature_repository,
        require_identity_match: true,
        multi_arch: MultiArch::Either,
        authorities: vec![Authority {
            name: "release".into(),
            trust: Trust::Key(path),
            valid_from: None,
            valid_until: None,
        }],
    }
}

/// The image `repo@digest`.
pub(crate) fn identity(repo: &str, digest: &str) -> ImageIdentity {
    ImageIdentity {
        name: format!("{repo}@{digest}"),
        repository: repo.to_string(),
        digest: digest.to_string(),
    }
}

#[derive(Default)]
pub(crate) struct Store {
    /// (repository path, tag or digest) → (media type, bytes).
    pub manifests: HashMap<(String, String), (String, Vec<u8>)>,
    pub blobs: HashMap<String, Vec<u8>>,
    /// Answer every request with 503 (a registry that is down).
    pub down: bool,
}

pub(crate) struct TestRegistry {
    pub host: String,
    pub store: Arc<Mutex<Store>>,
}

impl TestRegistry {
    pub fn start() -> TestRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let host = listener.local_addr().expect("address").to_string();
        let store = Arc::new(Mutex::new(Store::default()));
        let s = Arc::clone(&store);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = serve(stream, &s);
            }
        });
        TestRegistry { host, store }
    }

    pub fn client(&self) -> Registry {
        Registry::new(&RegistryConfig {
            plain_http: vec![self.host.clone()],
            timeout_ms: 5000,
            ..Default::default()
        })
        .expect("client")
    }

    /// `<host>/<path>`.
    pub fn repo(&self, path: &str) -> String {
        format!("{}/{path}", self.host)
    }

    /// Stores a manifest under its digest and, when given, a tag; returns the digest.
    pub fn put_manifest(
        &self,
        path: &str,
        tag: Option<&str>,
        media_type: &str,
        bytes: &[u8],
    ) -> String {
        let digest = sha256_digest(bytes);
        let mut st = self.store.lock().expect("store");
        for r in tag.into_iter().map(str::to_string).chain([digest.clone()]) {
            st.manifests.insert(
                (path.to_string(), r),
                (media_type.to_string(), bytes.to_vec()),
            );
        }
        digest
    }

    /// Stores a blob; returns its digest.
    pub fn put_blob(&self, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        self.store
            .lock()
            .expect("store")
            .blobs
            .insert(digest.clone(), bytes.to_vec());
        digest
    }

    /// Stores a distinct image manifest (told apart by `seed`) under `tag`; returns its digest.
    pub fn put_image(&self, path: &str, tag: &str, seed: &str) -> String {
        let config_bytes = format!("{{\"seed\":{seed:?}}}");
        let config = self.put_blob(config_bytes.as_bytes());
        let bytes = format!(
            "{{\"schemaVersion\":2,\"mediaType\":\"{}\",\"config\":{{\"mediaType\":\"{}\",\"digest\":\"{config}\",\"size\":{}}},\"layers\":[]}}",
            super::OCI_MANIFEST,
            super::OCI_CONFIG,
            config_bytes.len(),
        );
        self.put_manifest(path, Some(tag), super::OCI_MANIFEST, bytes.as_bytes())
    }

    pub fn manifest(&self, path: &str, reference: &str) -> Option<Vec<u8>> {
        let st = self.store.lock().expect("store");
        st.manifests
            .get(&(path.to_string(), reference.to_string()))
            .map(|(_, b)| b.clone())
    }

    pub fn set_down(&self, down: bool) {
        self.store.lock().expect("store").down = down;
    }
}

fn serve(stream: TcpStream, store: &Mutex<Store>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let (mut length, mut content_type) = (0usize, String::new());
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().unwrap_or(0),
                "content-type" => content_type = v.trim().to_string(),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut st = store.lock().unwrap_or_else(|p| p.into_inner());
    let mut headers: Vec<(String, String)> = Vec::new();
    let (status, out): (u16, Vec<u8>) = (|| {
        if st.down {
            return (503, Vec::new());
        }
        let Some(rest) = path.strip_prefix("/v2/") else {
            return (404, Vec::new());
        };
        for kind in ["/manifests/", "/blobs/uploads/", "/blobs/", "/referrers/"] {
            let Some((name, reference)) = rest.split_once(kind) else {
                continue;
            };
            let key = (name.to_string(), reference.to_string());
            return match (kind, method.as_str()) {
                ("/manifests/", "GET" | "HEAD") => match st.manifests.get(&key) {
                    Some((t, b)) => {
                        headers.push(("Content-Type".into(), t.clone()));
                        headers.push(("Docker-Content-Digest".into(), sha256_digest(b)));
                        (200, b.clone())
                    }
                    None => (404, Vec::new()),
                },
                ("/manifests/", "PUT") => {
                    let digest = sha256_digest(&body);
                    for r in [reference.to_string(), digest.clone()] {
                        st.manifests
                            .insert((name.to_string(), r), (content_type.clone(), body.clone()));
                    }
                    headers.push(("Docker-Content-Digest".into(), digest));
                    (201, Vec::new())
                }
                ("/blobs/uploads/", "POST") => {
                    headers.push(("Location".into(), format!("/v2/{name}/blobs/uploads/u1")));
                    (202, Vec::new())
                }
                ("/blobs/uploads/", "PUT") => {
                    let digest = query
                        .split('&')
                        .find_map(|p| p.strip_prefix("digest="))
                        .unwrap_or("")
                        .replace("%3A", ":");
                    if digest != sha256_digest(&body) {
                        return (400, Vec::new());
                    }
                    st.blobs.insert(digest, body.clone());
                    (201, Vec::new())
                }
                ("/blobs/", "GET" | "HEAD") => match st.blobs.get(reference) {
                    Some(b) => (200, b.clone()),
                    None => (404, Vec::new()),
                },
                _ => (404, Vec::new()),
            };
        }
        (404, Vec::new())
    })();
    drop(st);
    let mut out_stream = stream;
    let mut head = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", out.len()));
    out_stream.write_all(head.as_bytes())?;
    if method != "HEAD" {
        out_stream.write_all(&out)?;
    }
    out_stream.flush()
}

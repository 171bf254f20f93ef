//! The client against a scripted HTTP server: the token flows, and registries that lie or fail in
//! ways a real registry never does on its own.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use super::*;

/// One request as the mock saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
    body: Vec<u8>,
}

type Handler = dyn Fn(&Seen, &str) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + Sync;

/// A loopback HTTP/1.1 server answering each request with `handler(request, own host)`, one
/// connection per request. Its thread lives as long as the test process.
struct Mock {
    host: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Mock {
    fn start(
        handler: impl Fn(&Seen, &str) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + Sync + 'static,
    ) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (h, s) = (host.clone(), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = serve(stream, &*handler, &h, &s);
            }
        });
        Mock { host, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn client(&self, auth: Option<&str>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let auth = auth.map(|json| {
            let p = dir.path().join("auth.json");
            std::fs::write(&p, json).unwrap();
            p
        });
        Registry::new(&RegistryConfig {
            plain_http: vec![self.host.clone()],
            auth,
            timeout_ms: 2000,
            ..Default::default()
        })
        .unwrap()
    }

    fn repo(&self) -> String {
        format!("{}/team/app", self.host)
    }
}

fn serve(
    stream: TcpStream,
    handler: &Handler,
    host: &str,
    seen: &Mutex<Vec<Seen>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let (mut authorization, mut length) = (None, 0usize);
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.to_ascii_lowercase().as_str() {
                "authorization" => authorization = Some(v.trim().to_string()),
                "content-length" => length = v.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let req = Seen {
        method,
        path,
        authorization,
        body,
    };
    seen.lock().unwrap().push(req.clone());
    let (status, headers, body) = handler(&req, host);
    let mut out = stream;
    let mut head = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
    let has_length = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_length {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    let _ = out.write_all(&body);
    out.flush()
}

fn h(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

const MANIFEST: &[u8] =
    br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#;

#[test]
fn bearer_token_flow_with_basic_credentials_and_token_reuse() {
    let mock = Mock::start(|req, host| {
        if req.path.starts_with("/token?") {
            // base64("alice:pw")
            if req.authorization.as_deref() != Some("Basic YWxpY2U6cHc=") {
                return (401, vec![], vec![]);
            }
            assert!(req.path.contains("service=mock"), "{}", req.path);
            assert!(
                req.path.contains("scope=repository%3Ateam%2Fapp%3Apull"),
                "{}",
                req.path
            );
            return (
                200,
                vec![],
                br#"{"token":"tok-123","expires_in":300}"#.to_vec(),
            );
        }
        if req.authorization.as_deref() != Some("Bearer tok-123") {
            let challenge = format!(
                r#"Bearer realm="http://{host}/token",service="mock",scope="repository:team/app:pull""#
            );
            return (
                401,
                vec![h("WWW-Authenticate", &challenge)],
                br#"{"errors":[{"code":"UNAUTHORIZED"}]}"#.to_vec(),
            );
        }
        (
            200,
            vec![h("Content-Type", OCI_MANIFEST)],
            MANIFEST.to_vec(),
        )
    });
    let reg = mock.client(Some(&format!(
        r#"{{"auths":{{"{}":{{"auth":"YWxpY2U6cHc="}}}}}}"#,
        mock.host
    )));
    let m = reg.get_manifest(&mock.repo(), "v1").unwrap();
    assert_eq!(m.bytes, MANIFEST);
    assert_eq!(m.digest, sha256_digest(MANIFEST));
    // The token is reused: one more request, no new challenge or token fetch.
    reg.get_manifest(&mock.repo(), &sha256_digest(MANIFEST))
        .unwrap();
    let paths: Vec<String> = mock.seen().iter().map(|s| s.path.clone()).collect();
    assert_eq!(paths.len(), 4, "{paths:?}");
    assert!(paths[1].starts_with("/token?"), "{paths:?}");
}

#[test]
fn identity_token_is_exchanged_by_oauth2_post() {
    let mock = Mock::start(|req, host| {
        if req.path == "/oauth" {
            let body = String::from_utf8_lossy(&req.body);
            assert_eq!(req.method, "POST");
            assert!(body.contains("grant_type=refresh_token"), "{body}");
            assert!(body.contains("refresh_token=refresh-me"), "{body}");
            return (200, vec![], br#"{"access_token":"acc"}"#.to_vec());
        }
        if req.authorization.as_deref() != Some("Bearer acc") {
            let challenge = format!(r#"Bearer realm="http://{host}/oauth",service="mock""#);
            return (401, vec![h("WWW-Authenticate", &challenge)], vec![]);
        }
        (
            200,
            vec![h("Content-Type", OCI_MANIFEST)],
            MANIFEST.to_vec(),
        )
    });
    let reg = mock.client(Some(&format!(
        r#"{{"auths":{{"{}":{{"identitytoken":"refresh-me"}}}}}}"#,
        mock.host
    )));
    reg.get_manifest(&mock.repo(), "v1").unwrap();
}

#[test]
fn basic_challenge_uses_credentials_and_then_sends_them_up_front() {
    let mock = Mock::start(|req, _| {
        if req.authorization.as_deref() != Some("Basic dTpw") {
            return (
                401,
                vec![h("WWW-Authenticate", r#"Basic realm="Registry""#)],
                vec![],
            );
        }
        (
            200,
            vec![h("Content-Type", OCI_MANIFEST)],
            MANIFEST.to_vec(),
        )
    });
    let reg = mock.client(Some(&format!(
        r#"{{"auths":{{"{}":{{"username":"u","password":"p"}}}}}}"#,
        mock.host
    )));
    reg.get_manifest(&mock.repo(), "v1").unwrap();
    reg.get_manifest(&mock.repo(), "v2").unwrap();
    assert_eq!(mock.seen().len(), 3);
    // Without credentials: denied, saying why.
    let e = mock
        .client(None)
        .get_manifest(&mock.repo(), "v1")
        .unwrap_err();
    assert!(matches!(e, RegistryError::Denied { .. }), "{e}");
    assert!(e.to_string().contains("asks for Basic credentials"), "{e}");
}

#[test]
fn credentials_are_not_sent_to_a_plain_http_realm_on_another_host() {
    let mock = Mock::start(|_, _| {
        (
            401,
            vec![h(
                "WWW-Authenticate",
                r#"Bearer realm="http://auth.example/token",service="s""#,
            )],
            vec![],
        )
    });
    let reg = mock.client(Some(&format!(
        r#"{{"auths":{{"{}":{{"auth":"dTpw"}}}}}}"#,
        mock.host
    )));
    let e = reg
        .get_manifest(&mock.repo(), "v1")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("refusing to send credentials over plain HTTP"),
        "{e}"
    );
}

#[test]
fn content_not_matching_the_requested_digest_is_refused() {
    let other = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[{}]}"#;
    let mock = Mock::start(move |req, _| {
        if req.path.contains("/blobs/") {
            return (200, vec![], b"tampered".to_vec());
        }
        if req.path.ends_with("/lying-header") {
            return (
                200,
                vec![
                    h("Content-Type", OCI_MANIFEST),
                    h("Docker-Content-Digest", &sha256_digest(b"x")),
                ],
                MANIFEST.to_vec(),
            );
        }
        (200, vec![h("Content-Type", OCI_MANIFEST)], other.to_vec())
    });
    let reg = mock.client(None);
    let e = reg
        .get_manifest(&mock.repo(), &sha256_digest(MANIFEST))
        .unwrap_err();
    assert!(matches!(e, RegistryError::Invalid { .. }), "{e}");
    assert!(
        e.to_string().contains("invalid response: digest mismatch"),
        "{e}"
    );
    let e = reg
        .get_blob(
            &mock.repo(),
            &sha256_digest(b"original"),
            Limits::default().signature_layer(),
        )
        .unwrap_err();
    assert!(
        e.to_string().contains("invalid response: digest mismatch"),
        "{e}"
    );
    let e = reg.get_manifest(&mock.repo(), "lying-header").unwrap_err();
    assert!(e.to_string().contains("does not match the content"), "{e}");
}

#[test]
fn declared_or_streamed_sizes_beyond_the_bound_are_refused() {
    let mock = Mock::start(|req, _| {
        if req.path.ends_with("declared") {
            // Claims 100 MB: refused before reading.
            return (
                200,
                vec![
                    h("Content-Type", OCI_MANIFEST),
                    h("Content-Length", "100000000"),
                ],
                vec![],
            );
        }
        (200, vec![h("Content-Type", OCI_MANIFEST)], vec![b' '; 5000])
    });
    let reg = mock.client(None).with_limits(Limits {
        manifest_bytes: 4096,
        ..Limits::default()
    });
    for tag in ["declared", "streamed"] {
        let e = reg.get_manifest(&mock.repo(), tag).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "manifest {}:{tag}: exceeds the manifest size bound of 4096 bytes",
                mock.repo()
            )
        );
    }
}

#[test]
fn gateway_errors_are_unreachable_other_statuses_are_not() {
    let mock = Mock::start(|req, _| {
        if req.path.ends_with("/down") {
            (503, vec![], b"no".to_vec())
        } else {
            (
                500,
                vec![],
                br#"{"errors":[{"code":"UNKNOWN","message":"boom\nsecond line"}]}"#.to_vec(),
            )
        }
    });
    let reg = mock.client(None);
    let e = reg.get_manifest(&mock.repo(), "down").unwrap_err();
    assert!(e.is_unreachable(), "{e}");
    assert!(e.to_string().starts_with("registry unreachable: "), "{e}");
    let e = reg.get_manifest(&mock.repo(), "broken").unwrap_err();
    assert!(!e.is_unreachable(), "{e}");
    assert!(
        e.to_string()
            .ends_with("registry error: HTTP 500: UNKNOWN boom second line"),
        "{e}"
    );
}

#[test]
fn referrers_api_is_used_when_the_registry_has_it() {
    let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824","size":5,"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"}]}"#;
    let mock = Mock::start(move |req, _| {
        if req.path.contains("/referrers/") {
            (200, vec![h("Content-Type", OCI_INDEX)], index.to_vec())
        } else {
            (404, vec![], vec![])
        }
    });
    let reg = mock.client(None);
    let r = reg
        .referrers(&mock.repo(), &sha256_digest(b"image"))
        .unwrap();
    assert_eq!(r.source, ReferrersSource::Api);
    assert_eq!(r.descriptors.len(), 1);
    // Discovery fetches that referrer; the (mock's) 404 for it is skipped with a reason.
    let d = reg
        .discover_signatures(&mock.repo(), &sha256_digest(b"image"), None)
        .unwrap();
    assert!(d.material.is_empty());
    assert_eq!(d.skipped.len(), 1, "{:?}", d.skipped);
    assert!(d.skipped[0].ends_with(": not found"), "{:?}", d.skipped);
}

#[test]
fn a_body_trickling_in_past_the_timeout_is_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 1000\r\n\r\n",
            );
            // One byte every 100 ms: each read is quick, the whole body is not.
            for _ in 0..1000 {
                if stream.write_all(b" ").and_then(|_| stream.flush()).is_err() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    });
    let reg = Registry::new(&RegistryConfig {
        plain_http: vec![host.clone()],
        timeout_ms: 500,
        ..Default::default()
    })
    .unwrap();
    let t0 = Instant::now();
    let e = reg.get_manifest(&format!("{host}/x"), "v1").unwrap_err();
    assert!(e.is_unreachable(), "{e}");
    assert!(e.to_string().contains("timed out after 500 ms"), "{e}");
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        t0.elapsed()
    );
}

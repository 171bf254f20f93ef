//! Registry credentials (a docker-style `config.json`) and `WWW-Authenticate` challenges.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use base64::Engine;
use serde::Deserialize;

use super::{RegistryError, Result};
use crate::reference::DOCKER_HUB;

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `auth` (base64 `user:password`) or `username` + `password`.
    Basic { username: String, password: String },
    /// `identitytoken`: an OAuth2 refresh token, exchanged at the token realm.
    IdentityToken(String),
}

impl fmt::Debug for Credentials {
    // Never print secrets, not even in debug logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => {
                write!(
                    f,
                    "Basic {{ username: {username:?}, password: <redacted> }}"
                )
            }
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

/// The `auths` of a docker-style `config.json`, keyed by normalised registry host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthFile {
    entries: HashMap<String, Credentials>,
}

#[derive(Deserialize)]
struct RawAuthFile {
    #[serde(default)]
    auths: HashMap<String, RawAuthEntry>,
}

#[derive(Deserialize)]
struct RawAuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

impl AuthFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<AuthFile> {
        let bytes = std::fs::read(path).map_err(|e| RegistryError::Config {
            path: path.to_path_buf(),
            reason: format!("cannot read the registry auth file: {e}"),
        })?;
        AuthFile::parse(path, &bytes)
    }

    /// Parses the contents of a `config.json` (`path` is for error messages). Other top-level keys
    /// (`credsStore`, `credHelpers`, ...) are ignored: vouch never runs credential helpers.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<AuthFile> {
        let fail = |reason: String| RegistryError::Config {
            path: path.to_path_buf(),
            reason,
        };
        let raw: RawAuthFile = serde_json::from_slice(bytes).map_err(|e| {
            fail(format!(
                "line {}, column {}: not a docker config.json: {e}",
                e.line(),
                e.column()
            ))
        })?;
        let mut entries = HashMap::new();
        for (key, entry) in raw.auths {
            let host = normalize_host(&key);
            let creds = if let Some(token) = entry.identitytoken.filter(|t| !t.is_empty()) {
                Credentials::IdentityToken(token)
            } else if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|e| fail(format!("auths.{key:?}.auth is not base64: {e}")))?;
                let decoded = String::from_utf8(decoded)
                    .map_err(|_| fail(format!("auths.{key:?}.auth is not UTF-8")))?;
                let (username, password) = decoded.split_once(':').ok_or_else(|| {
                    fail(format!(
                        "auths.{key:?}.auth is not of the form base64(user:password)"
                    ))
                })?;
                Credentials::Basic {
                    username: username.to_string(),
                    password: password.to_string(),
                }
            } else {
                match (entry.username, entry.password) {
                    (Some(username), Some(password)) => Credentials::Basic { username, password },
                    (None, None) => continue,
                    _ => {
                        return Err(fail(format!(
                            "auths.{key:?} has only one of username and password"
                        )))
                    }
                }
            };
            entries.insert(host, creds);
        }
        Ok(AuthFile { entries })
    }

    /// Credentials for `registry` (a host as written in image references, e.g. `docker.io`).
    pub fn get(&self, registry: &str) -> Option<&Credentials> {
        self.entries.get(&normalize_host(registry))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `https://index.docker.io/v1/` -> `docker.io`, `Host:5000/` -> `host:5000`.
fn normalize_host(key: &str) -> String {
    let key = key.trim();
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        _ => host,
    }
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: Option<String>,
    },
    /// The distribution token flow: fetch a token from `realm` for `service` and `scope`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    /// A scheme vouch does not speak (kept for the error message).
    Other(String),
}

/// Parses a `WWW-Authenticate` header value: `scheme param="value", param=token, scheme2 ...`.
/// Never fails: unparseable trailing input is dropped, a Bearer challenge without `realm` becomes
/// [`Challenge::Other`].
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    let mut cur = Cursor {
        s: header.as_bytes(),
        i: 0,
    };
    let mut scheme: Option<String> = None;
    let mut params: HashMap<String, String> = HashMap::new();
    loop {
        cur.skip_ws_and_commas();
        if cur.i >= cur.s.len() {
            break;
        }
        let Some(token) = cur.token() else {
            // Not a token (e.g. a stray `=` or `"`): skip it, so that garbage cannot loop forever.
            cur.i += 1;
            continue;
        };
        cur.skip_ws();
        if cur.peek() == Some(b'=') {
            cur.i += 1;
            cur.skip_ws();
            let value = if cur.peek() == Some(b'"') {
                cur.quoted()
            } else {
                cur.token().unwrap_or_default()
            };
            if scheme.is_some() {
                params.insert(token.to_ascii_lowercase(), value);
            }
        } else {
            // A token not followed by `=` starts a new challenge.
            if let Some(s) = scheme.take() {
                out.push(make_challenge(&s, std::mem::take(&mut params)));
            }
            scheme = Some(token);
        }
    }
    if let Some(s) = scheme {
        out.push(make_challenge(&s, params));
    }
    out
}

fn make_challenge(scheme: &str, mut params: HashMap<String, String>) -> Challenge {
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Challenge::Basic {
            realm: params.remove("realm"),
        },
        "bearer" => match params.remove("realm") {
            Some(realm) => Challenge::Bearer {
                realm,
                service: params.remove("service"),
                scope: params.remove("scope"),
            },
            None => Challenge::Other("Bearer without realm".to_string()),
        },
        _ => Challenge::Other(scheme.to_string()),
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_ws_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    /// An RFC 7230 token (plus `/` for token68-ish values); `None` if there is none here.
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(b) = self.peek() {
            if b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&b) {
                self.i += 1;
            } else {
                break;
            }
        }
        if self.i == start {
            return None;
        }
        Some(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// A quoted string starting at `"`, with backslash escapes; an unterminated one runs to the end.
    fn quoted(&mut self) -> String {
        self.i += 1;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                _ => out.push(b),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<AuthFile> {
        AuthFile::parse(Path::new("/etc/vouch/auth.json"), json.as_bytes())
    }

    fn basic(u: &str, p: &str) -> Credentials {
        Credentials::Basic {
            username: u.into(),
            password: p.into(),
        }
    }

    #[test]
    fn auth_file_reads_auth_username_password_and_identity_token() {
        // base64("alice:s3cr:et") — the password may contain ':'.
        let f = parse(
            r#"{"auths": {
                "127.0.0.1:5000": {"auth": "YWxpY2U6czNjcjpldA=="},
                "https://index.docker.io/v1/": {"username": "bob", "password": "pw"},
                "ghcr.io": {"identitytoken": "refresh-me", "auth": "eDp5"},
                "empty.example": {}
            }, "credsStore": "desktop", "HttpHeaders": {"X": "y"}}"#,
        )
        .unwrap();
        assert_eq!(f.get("127.0.0.1:5000"), Some(&basic("alice", "s3cr:et")));
        assert_eq!(f.get("docker.io"), Some(&basic("bob", "pw")));
        assert_eq!(f.get("index.docker.io"), Some(&basic("bob", "pw")));
        assert_eq!(
            f.get("ghcr.io"),
            Some(&Credentials::IdentityToken("refresh-me".into()))
        );
        assert_eq!(f.get("empty.example"), None);
        assert_eq!(f.get("quay.io"), None);
        // Secrets never show in Debug.
        let dbg = format!("{f:?}");
        assert!(
            !dbg.contains("s3cr") && !dbg.contains("refresh-me"),
            "{dbg}"
        );
    }

    #[test]
    fn broken_auth_files_are_errors_naming_file_and_entry() {
        let e = parse(r#"{"auths": {"h": {"auth": "!!!"}}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/etc/vouch/auth.json: auths.\"h\".auth is not base64"),
            "{e}"
        );
        // base64("nocolon")
        let e = parse(r#"{"auths": {"h": {"auth": "bm9jb2xvbg=="}}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("base64(user:password)"), "{e}");
        let e = parse(r#"{"auths": {"h": {"username": "u"}}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("only one of username and password"), "{e}");
        let e = parse("{\n\"auths\": [}").unwrap_err().to_string();
        assert!(
            e.starts_with("/etc/vouch/auth.json: line 2, column "),
            "{e}"
        );
        assert!(parse("{}").unwrap().is_empty());
    }

    #[test]
    fn www_authenticate_bearer_with_realm_service_scope() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(
            c,
            vec![Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            }]
        );
        // Case-insensitive scheme and keys, spaces, unquoted values, escapes, push scopes with commas.
        let c = parse_challenges(
            r#"bearer  Realm = "https://r.example/t\"x" , SERVICE=reg.example, scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            c,
            vec![Challenge::Bearer {
                realm: "https://r.example/t\"x".into(),
                service: Some("reg.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            }]
        );
    }

    #[test]
    fn www_authenticate_basic_several_and_garbage() {
        assert_eq!(
            parse_challenges(r#"Basic realm="Registry Realm""#),
            vec![Challenge::Basic {
                realm: Some("Registry Realm".into())
            }]
        );
        assert_eq!(
            parse_challenges(r#"Basic realm="x", Bearer realm="https://t/",service=s"#),
            vec![
                Challenge::Basic {
                    realm: Some("x".into())
                },
                Challenge::Bearer {
                    realm: "https://t/".into(),
                    service: Some("s".into()),
                    scope: None
                }
            ]
        );
        assert_eq!(
            parse_challenges("Bearer service=x"),
            vec![Challenge::Other("Bearer without realm".into())]
        );
        assert_eq!(
            parse_challenges("Negotiate"),
            vec![Challenge::Other("Negotiate".into())]
        );
        assert!(parse_challenges("").is_empty());
        // Garbage never panics or loops.
        for g in [
            "\"",
            "=",
            "Bearer realm=\"unterminated",
            "Bearer realm=",
            ",,,",
            "é\u{0}Bearer",
            "=\"x",
        ] {
            let _ = parse_challenges(g);
        }
        assert_eq!(
            parse_challenges("Bearer realm=\"unterminated"),
            vec![Challenge::Bearer {
                realm: "unterminated".into(),
                service: None,
                scope: None
            }]
        );
    }
}

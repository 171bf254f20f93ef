//! The runtime options containerd sends with Create (and on `start`'s stdin).
//!
//! Three message types arrive in practice, told apart by the `Any` type URL:
//! - `containerd.runc.v1.Options`: runc's own options (containerd's Go client for `io.containerd.runc*`),
//! - `containerd.linux.runc.CreateOptions`: the legacy type the containerd 1.6 Go client sends to every
//!   other runtime name (shim cgroup, IO uid/gid),
//! - `runtimeoptions.v1.Options`: CRI's options for non-runc runtimes, carrying `ConfigPath`.
//!
//! Only the legacy and CRI types lack generated Rust code, so all three are read here with a small
//! protobuf wire reader: fewer moving parts than three code generators, and unknown fields are skipped
//! as protobuf requires.

use std::path::PathBuf;

/// What the shim takes from any of the option types. Unset fields keep their defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeOptions {
    pub no_pivot_root: bool,
    pub no_new_keyring: bool,
    pub shim_cgroup: String,
    pub io_uid: u32,
    pub io_gid: u32,
    pub binary_name: String,
    pub root: String,
    pub systemd_cgroup: bool,
    /// `ConfigPath` from CRI's runtime options (or `ctr run --runtime-config-path`).
    pub config_path: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionsError {
    #[error("runtime options of type {0:?} are not supported")]
    UnknownType(String),
    #[error("malformed runtime options ({type_url}): {reason}")]
    Malformed { type_url: String, reason: String },
}

/// Decodes an `Any` (type URL and value) into [`RuntimeOptions`]. An empty type URL means "no options".
pub fn decode(type_url: &str, value: &[u8]) -> Result<RuntimeOptions, OptionsError> {
    let name = type_url.rsplit('/').next().unwrap_or(type_url);
    let malformed = |reason: String| OptionsError::Malformed {
        type_url: type_url.to_string(),
        reason,
    };
    let mut opts = RuntimeOptions::default();
    match name {
        "" => {}
        "containerd.runc.v1.Options" => {
            for field in Fields::new(value) {
                let (num, val) = field.map_err(malformed)?;
                match (num, val) {
                    (1, Value::Varint(v)) => opts.no_pivot_root = v != 0,
                    (2, Value::Varint(v)) => opts.no_new_keyring = v != 0,
                    (3, Value::Bytes(b)) => opts.shim_cgroup = string(b).map_err(malformed)?,
                    (4, Value::Varint(v)) => opts.io_uid = v as u32,
                    (5, Value::Varint(v)) => opts.io_gid = v as u32,
                    (6, Value::Bytes(b)) => opts.binary_name = string(b).map_err(malformed)?,
                    (7, Value::Bytes(b)) => opts.root = string(b).map_err(malformed)?,
                    (9, Value::Varint(v)) => opts.systemd_cgroup = v != 0,
                    _ => {}
                }
            }
        }
        "containerd.linux.runc.CreateOptions" => {
            for field in Fields::new(value) {
                let (num, val) = field.map_err(malformed)?;
                match (num, val) {
                    (1, Value::Varint(v)) => opts.no_pivot_root = v != 0,
                    (8, Value::Varint(v)) => opts.no_new_keyring = v != 0,
                    (9, Value::Bytes(b)) => opts.shim_cgroup = string(b).map_err(malformed)?,
                    (10, Value::Varint(v)) => opts.io_uid = v as u32,
                    (11, Value::Varint(v)) => opts.io_gid = v as u32,
                    _ => {}
                }
            }
        }
        "runtimeoptions.v1.Options" => {
            for field in Fields::new(value) {
                let (num, val) = field.map_err(malformed)?;
                if let (2, Value::Bytes(b)) = (num, val) {
                    let path = string(b).map_err(malformed)?;
                    if !path.is_empty() {
                        opts.config_path = Some(PathBuf::from(path));
                    }
                }
            }
        }
        other => return Err(OptionsError::UnknownType(other.to_string())),
    }
    Ok(opts)
}

/// Decodes a serialized `google.protobuf.Any` (as written to `start`'s stdin).
pub fn decode_any(bytes: &[u8]) -> Result<RuntimeOptions, OptionsError> {
    let mut type_url = String::new();
    let mut value: &[u8] = &[];
    for field in Fields::new(bytes) {
        let (num, val) = field.map_err(|reason| OptionsError::Malformed {
            type_url: "google.protobuf.Any".into(),
            reason,
        })?;
        match (num, val) {
            (1, Value::Bytes(b)) => {
                type_url = string(b).map_err(|reason| OptionsError::Malformed {
                    type_url: "google.protobuf.Any".into(),
                    reason,
                })?
            }
            (2, Value::Bytes(b)) => value = b,
            _ => {}
        }
    }
    decode(&type_url, value)
}

fn string(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "a string field is not UTF-8".to_string())
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Iterates over the top-level fields of a protobuf message.
struct Fields<'a> {
    buf: &'a [u8],
    failed: bool,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Fields { buf, failed: false }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let (&b, rest) = self
                .buf
                .split_first()
                .ok_or_else(|| "truncated varint".to_string())?;
            self.buf = rest;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.buf.len() {
            return Err("field length past the end of the message".into());
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn field(&mut self) -> Result<(u64, Value<'a>), String> {
        let key = self.varint()?;
        let num = key >> 3;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "length overflow")?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            w => return Err(format!("unsupported wire type {w}")),
        };
        Ok((num, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.buf.is_empty() {
            return None;
        }
        let r = self.field();
        self.failed = r.is_err();
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes_field(num: u64, data: &[u8], out: &mut Vec<u8>) {
        varint(num << 3 | 2, out);
        varint(data.len() as u64, out);
        out.extend_from_slice(data);
    }

    fn varint_field(num: u64, v: u64, out: &mut Vec<u8>) {
        varint(num << 3, out);
        varint(v, out);
    }

    #[test]
    fn cri_runtime_options_carry_the_config_path() {
        let mut v = Vec::new();
        bytes_field(1, b"io.containerd.vouch.v2", &mut v);
        bytes_field(2, b"/etc/vouch/config.toml", &mut v);
        let o = decode("runtimeoptions.v1.Options", &v).unwrap();
        assert_eq!(o.config_path, Some(PathBuf::from("/etc/vouch/config.toml")));
    }

    #[test]
    fn legacy_create_options_give_shim_cgroup_and_io_owner() {
        let mut v = Vec::new();
        varint_field(1, 1, &mut v);
        bytes_field(3, b"/tmp/sock", &mut v); // external_unix_sockets: skipped
        bytes_field(6, b"ns", &mut v); // repeated empty_namespaces: skipped
        bytes_field(9, b"/vouch-shims", &mut v);
        varint_field(10, 1000, &mut v);
        varint_field(11, 1001, &mut v);
        let o = decode("containerd.linux.runc.CreateOptions", &v).unwrap();
        assert!(o.no_pivot_root);
        assert_eq!(o.shim_cgroup, "/vouch-shims");
        assert_eq!((o.io_uid, o.io_gid), (1000, 1001));
    }

    #[test]
    fn runc_options_are_read_including_root_and_binary() {
        let mut v = Vec::new();
        varint_field(2, 1, &mut v);
        bytes_field(6, b"/usr/local/sbin/runc", &mut v);
        bytes_field(7, b"/run/custom-runc", &mut v);
        varint_field(9, 1, &mut v);
        let o = decode("type.googleapis.com/containerd.runc.v1.Options", &v).unwrap();
        assert!(o.no_new_keyring && o.systemd_cgroup);
        assert_eq!(o.binary_name, "/usr/local/sbin/runc");
        assert_eq!(o.root, "/run/custom-runc");
    }

    #[test]
    fn any_wrapper_from_start_stdin_is_unwrapped() {
        let mut inner = Vec::new();
        bytes_field(2, b"/x.toml", &mut inner);
        let mut any = Vec::new();
        bytes_field(1, b"runtimeoptions.v1.Options", &mut any);
        bytes_field(2, &inner, &mut any);
        let o = decode_any(&any).unwrap();
        assert_eq!(o.config_path, Some(PathBuf::from("/x.toml")));
        assert_eq!(decode_any(&[]).unwrap(), RuntimeOptions::default());
    }

    #[test]
    fn truncated_and_unknown_options_are_errors_not_panics() {
        let err = decode("runtimeoptions.v1.Options", &[0x12, 0x40, b'a']).unwrap_err();
        assert!(err.to_string().contains("past the end"), "{err}");
        assert!(matches!(
            decode("example.Unknown", &[]),
            Err(OptionsError::UnknownType(_))
        ));
        assert!(decode("containerd.runc.v1.Options", &[0xff; 12]).is_err());
    }
}

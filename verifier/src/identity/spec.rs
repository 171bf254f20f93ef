//! Which spec runc will run: the exact bytes of the bundle's `config.json`, read once, parsed the
//! way vouch judges them and checked to mean the same to runc.
//!
//! runc decodes `config.json` with Go's `encoding/json`, which matches struct fields
//! case-insensitively (Unicode folding: `PROCESS`, `proceſs` set `process`) and lets the last of
//! duplicate keys win. A containerd client writes these bytes (containerd copies the container
//! record's spec into the bundle as is), so a spec that reads one way to vouch and another to runc
//! is refused: duplicate keys, keys that differ only in case within an object, non-ASCII keys
//! outside free-form maps, and any key that folds to a field vouch reads without being spelled
//! exactly as that field. Every field vouch judges is then the one runc uses.
//!
//! The root filesystem runc runs must be the one the shim mounted and vouch measured:
//! `root.path` must name `<bundle>/rootfs`.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// The largest `config.json` judged; the shim refuses larger ones before asking.
pub const MAX_SPEC_BYTES: usize = 16 * 1024 * 1024;

/// Fields of the OCI runtime spec whose values vouch judges. A key that folds to one of these
/// without being spelled exactly so would be read by runc as that field and not by vouch.
const JUDGED_FIELDS: &[&str] = &[
    "access",
    "additionalGids",
    "allow",
    "ambient",
    "annotations",
    "apparmorProfile",
    "args",
    "bounding",
    "capabilities",
    "defaultAction",
    "destination",
    "devices",
    "effective",
    "gid",
    "hooks",
    "inheritable",
    "linux",
    "maskedPaths",
    "mounts",
    "namespaces",
    "noNewPrivileges",
    "options",
    "path",
    "permitted",
    "process",
    "readonly",
    "readonlyPaths",
    "root",
    "seccomp",
    "selinuxLabel",
    "source",
    "sysctl",
    "type",
    "uid",
    "user",
    "username",
];

/// Objects whose keys are data (Go maps, matched exactly), not struct fields.
const FREE_FORM: &[&str] = &["annotations", "sysctl", "unified"];

/// Parses `text` as vouch judges it, refusing what runc would read differently.
pub fn parse_unambiguous(text: &str) -> Result<serde_json::Value, String> {
    if text.len() > MAX_SPEC_BYTES {
        return Err(format!("config.json is larger than {MAX_SPEC_BYTES} bytes"));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    Check { free_form: false }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| format!("config.json: {e}"))?;
    serde_json::from_str(text).map_err(|e| format!("config.json: {e}"))
}

/// Folds a key the way Go's `strings.EqualFold` compares field names, for ASCII keys.
fn fold(key: &str) -> String {
    key.to_ascii_lowercase()
}

struct Check {
    /// The object being read is a free-form map (its keys are data).
    free_form: bool,
}

impl<'de> DeserializeSeed<'de> for Check {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Check { free_form: false })?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut exact: BTreeSet<String> = BTreeSet::new();
        let mut folded: BTreeSet<String> = BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !exact.insert(key.clone()) {
                return Err(de::Error::custom(format!(
                    "key {key:?} appears twice in one object (runc would take the last)"
                )));
            }
            if !self.free_form {
                if !key.is_ascii() {
                    return Err(de::Error::custom(format!(
                        "key {key:?} is not ASCII (runc matches field names by Unicode case folding)"
                    )));
                }
                if !folded.insert(fold(&key)) {
                    return Err(de::Error::custom(format!(
                        "keys differing only in case ({key:?}) in one object"
                    )));
                }
                if let Some(field) = JUDGED_FIELDS
                    .iter()
                    .find(|f| **f != key && fold(f) == fold(&key))
                {
                    return Err(de::Error::custom(format!(
                        "key {key:?} is read by runc as {field:?}: spell it exactly"
                    )));
                }
            }
            let free_form = !self.free_form && FREE_FORM.contains(&key.as_str());
            map.next_value_seed(Check { free_form })?;
        }
        Ok(())
    }
}

/// runc reads `config.json` itself: it must still hold the bytes the gate judged. The denial line
/// when it does not (or cannot be read back), else `None`.
pub fn changed_since_judged(bundle: &Path, judged: &str) -> Option<String> {
    use std::io::Read;
    let path = bundle.join("config.json");
    let mut now = Vec::new();
    let read = std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_SPEC_BYTES as u64 + 1).read_to_end(&mut now));
    if read.is_ok() && now == judged.as_bytes() {
        return None;
    }
    Some(
        crate::gate::Denial {
            subject: "container".into(),
            reason: format!("{} changed after it was judged", path.display()),
            rule: super::stage::RULE_SPEC.into(),
        }
        .to_string(),
    )
}

/// `root.path` must be the root filesystem the shim mounted and vouch measured, `<bundle>/rootfs`
/// (runc resolves a relative path against the bundle).
pub fn check_root_path(spec: &serde_json::Value, bundle: &Path) -> Result<(), String> {
    let expected = bundle.join("rootfs");
    let Some(root) = spec.pointer("/root/path").and_then(|p| p.as_str()) else {
        return Err("the spec names no root.path".into());
    };
    let given = Path::new(root);
    let resolved = normalise(&if given.is_absolute() {
        given.to_path_buf()
    } else {
        bundle.join(given)
    });
    if resolved == normalise(&expected) {
        return Ok(());
    }
    match (
        std::fs::canonicalize(&resolved),
        std::fs::canonicalize(&expected),
    ) {
        (Ok(a), Ok(b)) if a == b => Ok(()),
        _ => Err(format!(
            "root.path {root:?} is not the root filesystem vouch mounted and measured ({})",
            expected.display()
        )),
    }
}

/// `.` and `..` resolved lexically; `..` never climbs above `/`.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_spec_changed_after_it_was_judged_is_named_in_a_denial_line() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path();
        std::fs::write(bundle.join("config.json"), "{}").unwrap();
        assert_eq!(changed_since_judged(bundle, "{}"), None);
        std::fs::write(bundle.join("config.json"), "{ }").unwrap();
        let line = changed_since_judged(bundle, "{}").unwrap();
        assert_eq!(
            line,
            format!(
                "vouch: denied container: {}/config.json changed after it was judged (rule \"spec\")",
                bundle.display()
            )
        );
        std::fs::remove_file(bundle.join("config.json")).unwrap();
        assert!(changed_since_judged(bundle, "{}").is_some());
    }

    use super::*;

    #[test]
    fn a_plain_spec_parses() {
        let v = parse_unambiguous(
            r#"{"ociVersion":"1.0.2","process":{"args":["sh"],"capabilities":{"bounding":["CAP_CHOWN"]}},
                "root":{"path":"rootfs"},"annotations":{"Process":"x","io.k8s/é":"y"},
                "linux":{"sysctl":{"net.ipv4.ping_group_range":"0 1"}}}"#,
        )
        .unwrap();
        assert_eq!(v["process"]["args"][0], "sh");
    }

    #[test]
    fn what_runc_would_read_differently_is_refused() {
        for (text, why) in [
            (r#"{"process":{},"process":{}}"#, "appears twice"),
            (r#"{"process":{},"PROCESS":{}}"#, "differing only in case"),
            (
                r#"{"Process":{"args":["sh"]}}"#,
                "read by runc as \"process\"",
            ),
            (
                r#"{"process":{"capabilities":{"Bounding":["CAP_SYS_ADMIN"]}}}"#,
                "read by runc as \"bounding\"",
            ),
            (r#"{"proceſs":{}}"#, "not ASCII"),
            (
                r#"{"linux":{"namespaces":[{"TYPE":"pid"}]}}"#,
                "read by runc as \"type\"",
            ),
            (r#"{"annotations":{"a":"1","a":"2"}}"#, "appears twice"),
            (r#"{"process":{}} trailing"#, "trailing"),
        ] {
            let e = parse_unambiguous(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        // A field vouch does not judge may be spelled any way runc accepts.
        assert!(parse_unambiguous(r#"{"Hostname":"x"}"#).is_ok());
    }

    #[test]
    fn deep_nesting_and_huge_input_fail_cleanly() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_unambiguous(&deep).is_err());
        let huge = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_SPEC_BYTES));
        assert!(parse_unambiguous(&huge)
            .unwrap_err()
            .contains("larger than"));
    }

    #[test]
    fn root_path_must_be_the_mounted_rootfs() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path();
        std::fs::create_dir(bundle.join("rootfs")).unwrap();
        let spec = |p: &str| serde_json::json!({"root": {"path": p}});
        for ok in [
            "rootfs".to_string(),
            "./rootfs/".into(),
            format!("{}/rootfs", bundle.display()),
            format!("{}/x/../rootfs", bundle.display()),
        ] {
            check_root_path(&spec(&ok), bundle).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        // Through a symlink to the same directory.
        std::os::unix::fs::symlink(bundle.join("rootfs"), bundle.join("alias")).unwrap();
        check_root_path(&spec("alias"), bundle).unwrap();
        for bad in ["/", "/tmp", "rootfs/bin", "../rootfs", "other"] {
            let e = check_root_path(&spec(bad), bundle).unwrap_err();
            assert!(
                e.contains("is not the root filesystem vouch mounted"),
                "{bad}: {e}"
            );
        }
        assert!(check_root_path(&serde_json::json!({}), bundle).is_err());
        assert!(check_root_path(&serde_json::json!({"root": {"path": 3}}), bundle).is_err());
    }
}

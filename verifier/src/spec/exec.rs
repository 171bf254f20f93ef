//! An exec may not exceed its container's init process.
//!
//! `kubectl exec`, `crictl exec` and `ctr task exec` hand runc a process spec of their own. An
//! honest one is the container's process with other arguments (containerd's CRI plugin copies the
//! init process and replaces `args`); a hostile one adds capabilities, drops `noNewPrivileges`,
//! runs as root in a container that runs as a user, or leaves the AppArmor profile or SELinux label
//! out. Seccomp is the container's (`linux.seccomp`): an exec cannot name another.
//!
//! Each violation names the setting as a Kubernetes user knows it.

use serde_json::Value;

/// Capability sets of an OCI process, with the name a Kubernetes user knows each by.
const SETS: &[&str] = &[
    "bounding",
    "effective",
    "permitted",
    "inheritable",
    "ambient",
];

/// What an exec's `process` asks beyond the init process of `spec`.
pub fn exceeds(spec: &Value, exec: &Value) -> Vec<String> {
    let init = spec.get("process").unwrap_or(&Value::Null);
    let mut out = Vec::new();
    for set in SETS {
        let allowed = strings(init.pointer(&format!("/capabilities/{set}")));
        let asked = strings(exec.pointer(&format!("/capabilities/{set}")));
        for cap in asked.iter().filter(|c| !allowed.contains(c)) {
            out.push(format!(
                "exec: capabilities.add {} (beyond the container's {set} set)",
                cap.trim_start_matches("CAP_")
            ));
        }
    }
    if flag(init.get("noNewPrivileges")) && !flag(exec.get("noNewPrivileges")) {
        out.push(
            "exec: allowPrivilegeEscalation (the exec drops the container's noNewPrivileges)"
                .into(),
        );
    }
    // A container that runs as root may exec as anyone; one that runs as a user may exec only as
    // that user, with its groups.
    let (init_uid, init_gid) = (id(init.pointer("/user/uid")), id(init.pointer("/user/gid")));
    let (uid, gid) = (id(exec.pointer("/user/uid")), id(exec.pointer("/user/gid")));
    if uid.is_none() || (init_uid != Some(0) && uid != init_uid) {
        out.push(format!(
            "exec: runAsUser {} (the container runs as {})",
            shown(uid),
            shown(init_uid)
        ));
    }
    if gid.is_none() || (init_gid != Some(0) && gid != init_gid) {
        out.push(format!(
            "exec: runAsGroup {} (the container runs as {})",
            shown(gid),
            shown(init_gid)
        ));
    }
    if init_uid != Some(0) {
        let groups = ids(init.pointer("/user/additionalGids"));
        for g in ids(exec.pointer("/user/additionalGids")) {
            if g.is_none() || !groups.contains(&g) {
                out.push(format!(
                    "exec: supplementalGroups {} (not a group of the container)",
                    shown(g)
                ));
            }
        }
    }
    // Higher limits, OOM protection, and a working directory through /proc (a descriptor runc
    // leaked, CVE-2024-21626) are more than the container has.
    let limits = |p: &Value| -> Vec<(String, Option<u64>, Option<u64>)> {
        p.get("rlimits")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .take(64)
                    .map(|r| {
                        (
                            r.get("type")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                            r.get("hard").and_then(Value::as_u64),
                            r.get("soft").and_then(Value::as_u64),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let init_limits = limits(init);
    for (kind, hard, soft) in limits(exec) {
        let within = init_limits.iter().any(|(k, h, _)| {
            *k == kind
                && h.is_some()
                && hard.is_some_and(|x| Some(x) <= *h)
                && soft.is_some_and(|x| Some(x) <= *h)
        });
        if !within {
            out.push(format!(
                "exec: rlimits {} (above the container's)",
                kind.chars().take(40).collect::<String>()
            ));
        }
    }
    if let Some(adj) = exec.get("oomScoreAdj") {
        let mine = adj.as_i64();
        let theirs = init.get("oomScoreAdj").map_or(Some(0), Value::as_i64);
        if mine.is_none() || theirs.is_none() || mine < theirs {
            out.push(format!(
                "exec: oomScoreAdj {} (the container has {})",
                mine.map_or_else(|| "(invalid)".to_string(), |n| n.to_string()),
                theirs.map_or_else(|| "(invalid)".to_string(), |n| n.to_string())
            ));
        }
    }
    if let Some(cwd) = exec.get("cwd") {
        let dir = cwd.as_str().unwrap_or("(invalid)");
        let lexical: Vec<&str> = dir
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        if cwd.as_str().is_none() || lexical.first() == Some(&"proc") || lexical.contains(&"..") {
            out.push(format!(
                "exec: workingDir {} (through /proc, or climbing out)",
                dir.chars().take(80).collect::<String>()
            ));
        }
    }
    for (field, name) in [
        ("apparmorProfile", "appArmorProfile"),
        ("selinuxLabel", "seLinuxOptions"),
    ] {
        let want = text(init.get(field));
        let got = text(exec.get(field));
        if want != got {
            out.push(format!(
                "exec: {name} {:?} (the container runs with {:?})",
                got.unwrap_or(""),
                want.unwrap_or("")
            ));
        }
    }
    out
}

/// A list of strings; anything malformed reads as the strings it does hold.
fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn flag(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool).unwrap_or(false)
}

/// A uid or gid; absent is 0 (runc's default), anything malformed is `None` (never equal to a
/// real id, so it is refused).
fn id(v: Option<&Value>) -> Option<u64> {
    match v {
        None | Some(Value::Null) => Some(0),
        Some(v) => v.as_u64().filter(|n| *n <= u64::from(u32::MAX)),
    }
}

fn ids(v: Option<&Value>) -> Vec<Option<u64>> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().map(|g| id(Some(g))).collect())
        .unwrap_or_default()
}

fn shown(id: Option<u64>) -> String {
    id.map_or_else(|| "(invalid)".to_string(), |n| n.to_string())
}

fn text(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container() -> Value {
        json!({"process": {
            "user": {"uid": 1000, "gid": 1000, "additionalGids": [1000, 10]},
            "args": ["/app"],
            "capabilities": {
                "bounding": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_NET_BIND_SERVICE"]
            },
            "noNewPrivileges": true,
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "cwd": "/",
            "apparmorProfile": "cri-containerd.apparmor.d",
            "selinuxLabel": "system_u:system_r:container_t:s0:c1,c2"
        }})
    }

    #[test]
    fn the_containers_own_process_with_other_args_is_no_more() {
        let mut exec = container()["process"].clone();
        exec["args"] = json!(["sh", "-c", "id"]);
        exec["cwd"] = json!("/app");
        assert_eq!(exceeds(&container(), &exec), Vec::<String>::new());
        // Fewer capabilities and fewer groups are fine too.
        exec["capabilities"]["bounding"] = json!([]);
        exec["user"]["additionalGids"] = json!([10]);
        assert!(exceeds(&container(), &exec).is_empty());
    }

    #[test]
    fn each_way_of_exceeding_the_container_is_named() {
        let base = container()["process"].clone();
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"capabilities": {"bounding": ["CAP_SYS_ADMIN"]}}),
                "capabilities.add SYS_ADMIN (beyond the container's bounding set)",
            ),
            (
                json!({"capabilities": {"ambient": ["CAP_NET_BIND_SERVICE"]}}),
                "capabilities.add NET_BIND_SERVICE (beyond the container's ambient set)",
            ),
            (
                json!({"noNewPrivileges": false}),
                "allowPrivilegeEscalation",
            ),
            (
                json!({"user": {"uid": 0, "gid": 1000}}),
                "runAsUser 0 (the container runs as 1000)",
            ),
            (json!({"user": {"uid": 1000, "gid": 0}}), "runAsGroup 0"),
            (
                json!({"user": {"uid": 1000, "gid": 1000, "additionalGids": [0]}}),
                "supplementalGroups 0",
            ),
            (
                json!({"apparmorProfile": "unconfined"}),
                "appArmorProfile \"unconfined\"",
            ),
            (json!({"apparmorProfile": ""}), "appArmorProfile \"\""),
            (
                json!({"selinuxLabel": "system_u:system_r:spc_t:s0"}),
                "seLinuxOptions",
            ),
            (json!({"user": {"uid": "0"}}), "runAsUser (invalid)"),
            (
                json!({"rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576}]}),
                "rlimits RLIMIT_NOFILE",
            ),
            (
                json!({"oomScoreAdj": -1000}),
                "oomScoreAdj -1000 (the container has 0)",
            ),
            (
                json!({"cwd": "/proc/self/fd/7"}),
                "workingDir /proc/self/fd/7",
            ),
            (json!({"cwd": "/../proc/1/root"}), "workingDir"),
        ];
        for (change, named) in cases {
            let mut exec = base.clone();
            for (k, v) in change.as_object().unwrap() {
                exec[k] = v.clone();
            }
            let v = exceeds(&container(), &exec);
            assert!(v.iter().any(|l| l.contains(named)), "{change}: {v:?}");
            assert!(v.iter().all(|l| l.starts_with("exec: ")), "{v:?}");
        }
        // No user at all in the exec runs as root.
        let mut exec = base.clone();
        exec.as_object_mut().unwrap().remove("user");
        assert!(exceeds(&container(), &exec)
            .iter()
            .any(|l| l.contains("runAsUser 0")));
    }

    #[test]
    fn a_root_container_may_exec_as_root_and_malformed_input_is_refused_not_panicking() {
        let root = json!({"process": {"user": {"uid": 0, "gid": 0}, "capabilities": {"bounding": ["CAP_CHOWN"]}}});
        assert!(exceeds(&root, &json!({"user": {"uid": 0, "gid": 0}})).is_empty());
        assert!(exceeds(&root, &json!({})).is_empty());
        // Into a root container, as a user: less, not more.
        assert!(exceeds(
            &root,
            &json!({"user": {"uid": 1000, "gid": 1000, "additionalGids": [5]}})
        )
        .is_empty());
        assert!(!exceeds(&root, &json!({"user": {"uid": -1}})).is_empty());
        for hostile in [
            json!(null),
            json!([]),
            json!("x"),
            json!({"user": 5, "capabilities": 7}),
        ] {
            let _ = exceeds(&root, &hostile);
            let _ = exceeds(&hostile, &hostile);
        }
    }
}

//! File capabilities (`security.capability`) as a layer's tar records them and as the kernel
//! reports them on the node, and their one-line description for a mismatch.
//!
//! The value is a `vfs_cap_data`: a little-endian `magic_etc` (revision in the high byte, the
//! effective flag in bit 0), then permitted and inheritable masks for capabilities 0-31 and
//! 32-63; revision 3 adds the namespace's root user id.

/// `VFS_CAP_REVISION_2`, 20 bytes.
const REVISION_2: u32 = 0x0200_0000;
/// `VFS_CAP_REVISION_3`, 24 bytes with the root id.
const REVISION_3: u32 = 0x0300_0000;
const REVISION_MASK: u32 = 0xff00_0000;
const EFFECTIVE: u32 = 0x1;
const SIZE_2: usize = 20;
const SIZE_3: usize = 24;

/// Capability names by number, as `getcap` prints them.
const NAMES: [&str; 41] = [
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

/// A well-formed value, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Caps {
    effective: bool,
    permitted: u64,
    inheritable: u64,
    /// Revision 3 only.
    root: Option<u32>,
}

fn word(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn decode(bytes: &[u8]) -> Option<Caps> {
    let magic = word(bytes, 0)?;
    let root = match (magic & REVISION_MASK, bytes.len()) {
        (REVISION_2, SIZE_2) => None,
        (REVISION_3, SIZE_3) => Some(word(bytes, 20)?),
        _ => return None,
    };
    let mask = |lo: usize, hi: usize| -> Option<u64> {
        Some(u64::from(word(bytes, lo)?) | (u64::from(word(bytes, hi)?) << 32))
    };
    Some(Caps {
        effective: magic & EFFECTIVE != 0,
        permitted: mask(4, 12)?,
        inheritable: mask(8, 16)?,
        root,
    })
}

/// What the kernel will report on the node for a value a tar records: it reads a revision 3
/// value whose root id is 0 back as revision 2 (to a reader in the initial user namespace, as
/// vouch is), keeping only the effective flag of its `magic_etc`. Anything else is kept as it is
/// (a malformed value then differs from whatever the node has, which is reported).
pub fn as_reported(bytes: &[u8]) -> Vec<u8> {
    match decode(bytes) {
        Some(c) if c.root == Some(0) => {
            let mut out = Vec::with_capacity(SIZE_2);
            let magic = REVISION_2 | if c.effective { EFFECTIVE } else { 0 };
            out.extend_from_slice(&magic.to_le_bytes());
            out.extend_from_slice(bytes.get(4..SIZE_2).unwrap_or_default());
            out
        }
        _ => bytes.to_vec(),
    }
}

/// `none`, `getcap`'s form (`cap_net_raw+ep`, `cap_chown,cap_kill+p cap_net_admin+ei`, a root id
/// as `[rootid=1000]`), or the raw hex of a value that is not well formed.
pub fn describe(caps: Option<&[u8]>) -> String {
    let Some(bytes) = caps else {
        return "none".into();
    };
    let Some(c) = decode(bytes) else {
        return format!("security.capability {}", hex::encode(bytes));
    };
    // Groups of capabilities with the same flags, in the order of their first capability.
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for n in 0..64 {
        let bit = 1u64 << n;
        let (p, i) = (c.permitted & bit != 0, c.inheritable & bit != 0);
        if !p && !i {
            continue;
        }
        let mut flags = String::new();
        if c.effective {
            flags.push('e');
        }
        if i {
            flags.push('i');
        }
        if p {
            flags.push('p');
        }
        let name = NAMES
            .get(n)
            .map_or_else(|| format!("cap_{n}"), |s| (*s).to_string());
        match groups.iter_mut().find(|(f, _)| *f == flags) {
            Some((_, names)) => names.push(name),
            None => groups.push((flags, vec![name])),
        }
    }
    let mut out = if groups.is_empty() {
        "=".to_string()
    } else {
        groups
            .iter()
            .map(|(flags, names)| format!("{}+{flags}", names.join(",")))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if let Some(root) = c.root.filter(|&r| r != 0) {
        out.push_str(&format!(" [rootid={root}]"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::tests::NET_RAW_EP;

    #[test]
    fn values_are_described_as_getcap_does() {
        assert_eq!(describe(None), "none");
        assert_eq!(describe(Some(&NET_RAW_EP)), "cap_net_raw+ep");
        let mut v = NET_RAW_EP;
        v[0] = 0;
        // cap_chown and cap_kill permitted, cap_net_admin inheritable too, cap 63 unnamed.
        v[4] = 0b10_0001;
        v[9] = 0x10;
        v[5] = 0x10;
        v[15] = 0x80;
        assert_eq!(
            describe(Some(&v)),
            "cap_chown,cap_kill,cap_63+p cap_net_admin+ip"
        );
        let mut v3 = NET_RAW_EP.to_vec();
        v3[3] = 0x03;
        v3.extend_from_slice(&1000u32.to_le_bytes());
        assert_eq!(describe(Some(&v3)), "cap_net_raw+ep [rootid=1000]");
        assert_eq!(describe(Some(&[1, 2, 3])), "security.capability 010203");
    }

    #[test]
    fn a_namespaced_value_for_root_reads_back_as_revision_2() {
        let mut v3 = NET_RAW_EP.to_vec();
        v3[3] = 0x03;
        v3.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(as_reported(&v3), NET_RAW_EP);
        v3[20] = 1;
        assert_eq!(as_reported(&v3), v3);
        assert_eq!(as_reported(&NET_RAW_EP), NET_RAW_EP);
        assert_eq!(as_reported(b"junk"), b"junk");
    }
}

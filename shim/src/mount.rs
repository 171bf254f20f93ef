//! Mounting the rootfs containerd prepared (usually one overlay) into `<bundle>/rootfs`, and taking
//! it down again on every path out: delete, failed create, denied create.

use std::path::{Path, PathBuf};

use containerd_shim::protos::types::mount::Mount;

/// Mounts every rootfs mount onto `<bundle>/rootfs` in order. Returns the target when something was
/// mounted (a container made from a plain directory, `ctr run --rootfs`, has no mounts). On error,
/// whatever was mounted is unmounted again.
pub fn mount_rootfs(mounts: &[Mount], bundle: &Path) -> Result<Option<PathBuf>, String> {
    if mounts.is_empty() {
        return Ok(None);
    }
    let target = bundle.join("rootfs");
    std::fs::create_dir_all(&target)
        .map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    for m in mounts {
        let fs_type = (!m.type_.is_empty()).then_some(m.type_.as_str());
        let source = (!m.source.is_empty()).then_some(m.source.as_str());
        if let Err(e) = containerd_shim::mount::mount_rootfs(fs_type, source, &m.options, &target) {
            unmount(&target);
            return Err(format!(
                "cannot mount {} rootfs at {}: {e}",
                m.type_,
                target.display()
            ));
        }
    }
    Ok(Some(target))
}

/// Unmounts everything at and below `target`. Best effort: failures are logged, never fatal, and a
/// busy mount is detached lazily so that nothing stays mounted.
pub fn unmount(target: &Path) {
    let Some(t) = target.to_str() else { return };
    if let Err(e) = containerd_shim::mount::umount_recursive(Some(t), 0) {
        log::warn!("unmount {t}: {e}; detaching");
        if let Err(e) = containerd_shim::mount::umount_recursive(Some(t), libc::MNT_DETACH) {
            log::error!("detach {t}: {e}");
        }
    }
}

//! Small busybox-based OCI images, built offline with `umoci` from Debian's `busybox-static`.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::procs::run_checked;

/// Busybox applets linked into `/bin` of the test images.
pub const APPLETS: &[&str] = &[
    "sh",
    "echo",
    "cat",
    "sleep",
    "true",
    "false",
    "head",
    "ls",
    "id",
    "env",
    "ps",
    "kill",
    "yes",
    "tty",
    "wc",
    "grep",
    "touch",
    "rm",
    "mkdir",
    "date",
    "uname",
    "hostname",
    "printf",
    "test",
    "stat",
    "chmod",
    "dd",
    "md5sum",
    "sha256sum",
];

/// Tags of the layout whose command is `/bin/sh`, each a distinct image, and the repository
/// (`name:tag`) each is pushed to.
pub const SHELL_IMAGES: &[(&str, &str)] = &[
    ("busybox", "busybox:latest"),
    ("app", "team/app:v1"),
    ("debug", "debug/busybox:latest"),
];

/// Where Debian's `busybox-static` installs its binary.
const BUSYBOX: &str = "/bin/busybox";

/// Builds an OCI layout at `layout` holding tags that share one busybox layer: `base` (no
/// command), `busybox`, `app` and `debug` (command `/bin/sh`, distinct labels so distinct
/// digests) and `pause` (sleeps forever: a sandbox image). `work` is a scratch directory (created, then removed).
pub fn build_busybox_layout(layout: &Path, work: &Path) -> Result<()> {
    let l = layout.display().to_string();
    run_checked(Command::new("umoci").args(["init", "--layout", &l]))?;
    let base = format!("{l}:base");
    run_checked(Command::new("umoci").args(["new", "--image", &base]))?;
    let bundle = work.join("bundle");
    run_checked(
        Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(&base)
            .arg(&bundle),
    )?;
    let bin = bundle.join("rootfs/bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("mkdir {}", bin.display()))?;
    std::fs::copy(BUSYBOX, bin.join("busybox")).with_context(|| {
        format!("copy {BUSYBOX} (is busybox-static installed? run hack/setup.sh)")
    })?;
    for a in APPLETS {
        symlink("busybox", bin.join(a)).with_context(|| format!("symlink {a}"))?;
    }
    for d in ["tmp", "etc", "proc", "sys", "dev", "root"] {
        std::fs::create_dir_all(bundle.join("rootfs").join(d))?;
    }
    std::fs::write(
        bundle.join("rootfs/etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )?;
    std::fs::write(
        bundle.join("rootfs/etc/group"),
        "root:x:0:\nnogroup:x:65534:\n",
    )?;
    run_checked(
        Command::new("umoci")
            .arg("repack")
            .arg("--image")
            .arg(&base)
            .arg(&bundle),
    )?;
    // Distinct configs (so distinct image ids and digests) over one shared layer: CRI keys
    // images by config digest, and identical images in several repositories collapse into one
    // image record whose name is any of them.
    for (tag, _) in SHELL_IMAGES {
        let label = format!("org.opencontainers.image.title={tag}");
        run_checked(Command::new("umoci").args([
            "config",
            "--image",
            &base,
            "--tag",
            tag,
            "--config.label",
            &label,
            "--config.env",
            "PATH=/bin",
            "--config.cmd",
            "/bin/sh",
        ]))?;
    }
    run_checked(Command::new("umoci").args([
        "config",
        "--image",
        &base,
        "--tag",
        "pause",
        "--config.label",
        "org.opencontainers.image.title=pause",
        "--config.env",
        "PATH=/bin",
        "--config.entrypoint",
        "/bin/sleep",
        "--config.cmd",
        "2147483647",
    ]))?;
    std::fs::remove_dir_all(work).with_context(|| format!("rm -r {}", work.display()))?;
    Ok(())
}

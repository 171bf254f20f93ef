//! The rig itself works: a private containerd runs containers with the stock runc shim, through
//! `ctr` and through CRI, and leaves nothing behind.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Result};
use vouch_integration::cri_api::ContainerState;
use vouch_integration::{mounts_under, pids_with_address, Rig, RigOptions};

/// These tests need only the stock runc shim: start without the vouch shim when it is not built.
fn start_rig() -> Result<Rig> {
    let no_shim = Rig::shim_binary().is_err();
    Rig::start_with(RigOptions {
        no_shim,
        ..Default::default()
    })
}

/// Asserts that a dropped rig left no mount, no process and no directory behind.
fn assert_gone(root: PathBuf, sock: PathBuf) {
    assert!(
        mounts_under(&root).is_empty(),
        "mounts left: {:?}",
        mounts_under(&root)
    );
    assert!(
        pids_with_address(&sock).is_empty(),
        "shims left: {:?}",
        pids_with_address(&sock)
    );
    if std::env::var("VOUCH_RIG_KEEP").is_err() {
        assert!(!root.exists(), "{} still exists", root.display());
    }
}

#[test]
fn rig_runs_a_container_with_the_stock_runc_shim() -> Result<()> {
    let rig = start_rig()?;
    let ns = rig.namespace();
    let image = rig.image("busybox:latest");
    rig.pull(&ns, &image)?;
    // The three shell images are distinct (own digests): policy tests tell them apart.
    let digests: Vec<String> = ["busybox:latest", "team/app:v1", "debug/busybox:latest"]
        .iter()
        .map(|n| rig.image_digest(n))
        .collect::<Result<_>>()?;
    assert!(digests[0] != digests[1] && digests[1] != digests[2] && digests[0] != digests[2]);
    let ls = rig.ctr(&ns, &["images", "ls"])?;
    assert!(
        String::from_utf8_lossy(&ls.stdout).contains(&digests[0]),
        "pulled digest is the layout's: {}",
        String::from_utf8_lossy(&ls.stdout)
    );
    let out = rig.ctr(
        &ns,
        &[
            "run",
            "--rm",
            "--runtime",
            "io.containerd.runc.v2",
            &image,
            "smoke1",
            "echo",
            "hello",
        ],
    )?;
    ensure!(
        out.status.success(),
        "ctr run failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        rig.containerd_log()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello");

    // stdin is forwarded; ctr never closes it, so read one line.
    let out = rig.ctr_with_stdin(
        &ns,
        &["run", "--rm", &image, "smoke2", "head", "-n", "1"],
        b"from stdin\n",
        30,
    )?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "from stdin");

    // A task left running is cleaned up by Drop.
    let out = rig.ctr(&ns, &["run", "-d", &image, "smoke3", "sleep", "1000"])?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!rig.all_shim_pids().is_empty());
    assert!(!rig.mounts_under_root().is_empty());
    assert!(rig.shim_pids().is_empty(), "no vouch shim was used");

    let (root, sock) = (rig.root().to_path_buf(), rig.socket().to_path_buf());
    drop(rig);
    assert_gone(root, sock);
    Ok(())
}

#[test]
fn rig_cri_runs_a_pod_with_the_runc_handler() -> Result<()> {
    let rig = start_rig()?;
    let cri = rig.cri()?;
    let image = rig.image("team/app:v1");
    cri.pull_image(&image)?;
    let pod = cri.run_pod("smoke", "default", "runc")?;
    let id = cri.create_container(
        &pod,
        "hello",
        &image,
        &["/bin/sh", "-c"],
        &["echo hello from cri; exit 3"],
    )?;
    cri.start_container(&id)?;
    let st = cri.wait_exited(&id, Duration::from_secs(20))?;
    assert_eq!(st.state, ContainerState::ContainerExited as i32);
    assert_eq!(st.exit_code, 3);
    assert_eq!(cri.container_log(&id)?, "hello from cri\n");

    // A long-running container: exec into it, then stop it.
    let id2 = cri.create_container(&pod, "sleeper", &image, &["sleep", "1000"], &[])?;
    cri.start_container(&id2)?;
    let r = cri.exec_sync(&id2, &["echo", "exec ok"], Duration::from_secs(10))?;
    assert_eq!(r.exit_code, 0);
    assert_eq!(String::from_utf8_lossy(&r.stdout), "exec ok\n");
    let ps = cri.exec_sync(&id2, &["ps", "-o", "pid,args"], Duration::from_secs(10))?;
    assert!(
        String::from_utf8_lossy(&ps.stdout).contains("1 sleep 1000"),
        "the command is PID 1 of its own PID namespace: {}",
        String::from_utf8_lossy(&ps.stdout)
    );
    // busybox sleep as PID 1 ignores SIGTERM: CRI escalates to SIGKILL after the timeout.
    cri.stop_container(&id2, Duration::from_secs(1))?;
    assert_eq!(cri.container_status(&id2)?.exit_code, 137);
    cri.remove_container(&id)?;
    cri.remove_container(&id2)?;
    cri.stop_pod(&pod)?;
    cri.remove_pod(&pod)?;

    // Leave a second pod running: Drop must clean it up.
    let pod2 = cri.run_pod("left-running", "default", "")?;
    let id3 = cri.create_container(&pod2, "sleeper", &image, &["sleep", "1000"], &[])?;
    cri.start_container(&id3)?;

    let (root, sock) = (rig.root().to_path_buf(), rig.socket().to_path_buf());
    drop(cri);
    drop(rig);
    assert_gone(root, sock);
    Ok(())
}

#[test]
fn rig_cleans_up_when_a_test_panics() -> Result<()> {
    let rig = start_rig()?;
    let (root, sock) = (rig.root().to_path_buf(), rig.socket().to_path_buf());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let ns = rig.namespace();
        let image = rig.image("debug/busybox:latest");
        rig.pull(&ns, &image).unwrap();
        let out = rig
            .ctr(&ns, &["run", "-d", &image, "doomed", "sleep", "1000"])
            .unwrap();
        assert!(out.status.success());
        panic!("the test failed while a container was running");
    }));
    assert!(r.is_err());
    assert_gone(root, sock);
    Ok(())
}

//! The CRI path, as a kubelet drives it with a RuntimeClass: pods with `runtime_handler: "vouch"`
//! on a private containerd 1.6 (host network, no CNI), through the `k8s-cri` client.

mod common;

use std::time::Duration;

use common::*;
use vouch_integration::{cri_api, Rig, CRI_NAMESPACE};

const HANDLER: &str = "vouch";

fn pid_of(rig: &Rig, container_id: &str) -> Option<u32> {
    let out = rig.ctr(CRI_NAMESPACE, &["tasks", "ls"]).ok()?;
    stdout(&out).lines().find_map(|l| {
        let mut f = l.split_whitespace();
        (f.next()? == container_id).then(|| f.next()?.parse().ok())?
    })
}

fn memory_limit_of(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctl, path) = (parts.next()?, parts.next()?, parts.next()?);
        if ctl.split(',').any(|c| c == "memory") {
            let f = format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes");
            return std::fs::read_to_string(f).ok()?.trim().parse().ok();
        }
        if ctl.is_empty() {
            let f = format!("/sys/fs/cgroup{path}/memory.max");
            return std::fs::read_to_string(f).ok()?.trim().parse().ok();
        }
    }
    None
}

fn shims_for(rig: &Rig, id: &str) -> usize {
    shims_with(rig, "-id", id).len()
}

#[test]
fn cri_container_runs_to_completion_with_output_in_the_log_and_exit_code_in_status() {
    let rig = shared_rig();
    let cri = rig.cri().unwrap();
    let image = rig.image("busybox:latest");
    cri.pull_image(&image).unwrap();
    let pod = cri.run_pod("complete", "default", HANDLER).unwrap();
    let id = cri
        .create_container(
            &pod,
            "once",
            &image,
            &["sh", "-c"],
            &["echo hello from cri; echo on-stderr >&2; exit 3"],
        )
        .unwrap();
    cri.start_container(&id).unwrap();
    let status = cri.wait_exited(&id, Duration::from_secs(30)).unwrap();
    assert_eq!(status.exit_code, 3);
    let log = cri.container_log(&id).unwrap();
    assert!(log.contains("hello from cri"), "{log}");
    assert!(log.contains("on-stderr"), "{log}");
    cri.remove_container(&id).unwrap();
    cri.stop_pod(&pod).unwrap();
    cri.remove_pod(&pod).unwrap();
    assert!(eventually(Duration::from_secs(10), || shims_for(
        &rig, &pod
    ) == 0));
}

#[test]
fn cri_long_running_container_takes_exec_sync_then_stops_and_is_removed() {
    let rig = shared_rig();
    let cri = rig.cri().unwrap();
    let image = rig.image("busybox:latest");
    cri.pull_image(&image).unwrap();
    let pod = cri.run_pod("longrun", "team-a", HANDLER).unwrap();
    let id = cri
        .create_container(&pod, "sleeper", &image, &["sleep"], &["1000"])
        .unwrap();
    cri.start_container(&id).unwrap();

    let ok = cri
        .exec_sync(
            &id,
            &["sh", "-c", "echo exec-sync-out; echo exec-sync-err >&2"],
            Duration::from_secs(10),
        )
        .unwrap();
    assert_eq!(ok.exit_code, 0);
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "exec-sync-out");
    assert_eq!(String::from_utf8_lossy(&ok.stderr).trim(), "exec-sync-err");
    let failing = cri
        .exec_sync(&id, &["sh", "-c", "exit 6"], Duration::from_secs(10))
        .unwrap();
    assert_eq!(failing.exit_code, 6);

    // busybox sleep as PID 1 ignores SIGTERM: CRI escalates to SIGKILL after the timeout.
    cri.stop_container(&id, Duration::from_secs(1)).unwrap();
    let status = cri.container_status(&id).unwrap();
    assert_eq!(
        status.state,
        cri_api::ContainerState::ContainerExited as i32
    );
    assert_eq!(status.exit_code, 137);
    cri.remove_container(&id).unwrap();
    cri.stop_pod(&pod).unwrap();
    cri.remove_pod(&pod).unwrap();
    assert!(eventually(Duration::from_secs(10), || shims_for(
        &rig, &pod
    ) == 0));
}

#[test]
fn cri_containers_of_one_pod_share_one_shim() {
    let rig = shared_rig();
    let cri = rig.cri().unwrap();
    let image = rig.image("busybox:latest");
    cri.pull_image(&image).unwrap();
    let pod = cri.run_pod("shared", "default", HANDLER).unwrap();
    let a = cri
        .create_container(&pod, "a", &image, &["sleep"], &["1000"])
        .unwrap();
    let b = cri
        .create_container(&pod, "b", &image, &["sleep"], &["1000"])
        .unwrap();
    cri.start_container(&a).unwrap();
    cri.start_container(&b).unwrap();
    assert_eq!(
        shims_for(&rig, &pod),
        1,
        "the pod's shim serves the sandbox"
    );
    assert_eq!(
        shims_for(&rig, &a) + shims_for(&rig, &b),
        0,
        "no shim of their own"
    );
    cri.stop_pod(&pod).unwrap();
    cri.remove_pod(&pod).unwrap();
    assert!(eventually(Duration::from_secs(10), || shims_for(
        &rig, &pod
    ) == 0));
}

#[test]
fn cri_update_container_resources_changes_the_cgroup_memory_limit_and_stats_flow() {
    let rig = shared_rig();
    let cri = rig.cri().unwrap();
    let image = rig.image("busybox:latest");
    cri.pull_image(&image).unwrap();
    let pod = cri.run_pod("update", "default", HANDLER).unwrap();
    let id = cri
        .create_container(&pod, "u", &image, &["sleep"], &["1000"])
        .unwrap();
    cri.start_container(&id).unwrap();
    let pid = pid_of(&rig, &id).expect("container pid");
    let limit = 96 * 1024 * 1024;
    let mut client = cri.runtime_client();
    cri.block_on(
        client.update_container_resources(cri_api::UpdateContainerResourcesRequest {
            container_id: id.clone(),
            linux: Some(cri_api::LinuxContainerResources {
                memory_limit_in_bytes: limit,
                ..Default::default()
            }),
            ..Default::default()
        }),
    )
    .unwrap();
    assert_eq!(memory_limit_of(pid), Some(limit as u64));

    let stats = cri
        .block_on(client.container_stats(cri_api::ContainerStatsRequest {
            container_id: id.clone(),
        }))
        .unwrap()
        .into_inner()
        .stats
        .expect("stats");
    let memory = stats.memory.expect("memory stats");
    assert!(memory.working_set_bytes.map(|v| v.value).unwrap_or(0) > 0);
    cri.stop_pod(&pod).unwrap();
    cri.remove_pod(&pod).unwrap();
}

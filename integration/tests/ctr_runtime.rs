//! The vouch shim as a runtime, driven by `ctr` (containerd's own Go client) against a private
//! containerd 1.6 and runc: it must behave as `io.containerd.runc.v2` does.

mod common;

use std::{thread, time::Duration};

use common::*;

#[test]
fn stdout_stderr_and_exit_code_seven_reach_ctr() {
    let rig = shared_rig();
    let (ns, image) = namespace_with_busybox(&rig);
    let script = "echo to-stdout; echo to-stderr >&2; exit 7";
    let out = run_rm(&rig, &ns, &[], &image, "exit7", &["sh", "-c", script]);
    assert_eq!(out.status.code(), Some(7), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "to-stdout");
    assert!(stderr(&out).contains("to-stderr"), "{}", stderr(&out));
    assert_nothing_left(&rig, &ns);
}

#[test]
fn container_that_exits_before_start_returns_reports_exit_zero() {
    let rig = shared_rig();
    let (ns, image) = namespace_with_busybox(&rig);
    for i in 0..3 {
        let out = run_rm(&rig, &ns, &[], &image, &format!("quick{i}"), &["true"]);
        assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    }
    assert_nothing_left(&rig, &ns);
}

#[test]
fn stdin_is_piped_into_the_container() {
    let rig = shared_rig();
    let (ns, image) = namespace_with_busybox(&rig);
    let args = [
        "run",
        "--rm",
        "--runtime",
        VOUCH,
        &image,
        "stdin",
        "head",
        "-n",
        "1",
    ];
    let out = rig
        .ctr_with_stdin(&ns, &args, b"a line through stdin\nsecond\n", 30)
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "a line through stdin");
    assert_nothing_left(&rig, &ns);
}

/// `ctr run -t` needs a terminal of its own: `script` gives it one.
fn in_terminal(rig: &vouch_integration::Rig, ns: &str, ctr_args: &str) -> std::process::Output {
    let cmd = format!("ctr -a {} -n {ns} {ctr_args}", rig.socket().display());
    std::process::Command::new("timeout")
        .args(["-k", "5", "30", "script", "-qec", &cmd, "/dev/null"])
        .output()
        .unwrap()
}

#[test]
fn tty_container_gets_a_terminal() {
    let rig = shared_rig();
    let (ns, image) = namespace_with_busybox(&rig);
    let out = in_terminal(
        &rig,
        &ns,
        &format!("run --rm -t --runtime {VOUCH} {image} tty1 sh -c 'tty; echo tty-done; exit 4'"),
    );
    let text = stdout(&out);
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("tty-done"), "{text}");
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert_nothing_left(&rig, &ns);
}

#[test]
fn exec_into_a_running_container_with_and_without_tty() {
    let rig = shared_rig();
    let (ns, image) = namespace_with_busybox(&rig);
    run_detached(&rig, &ns, &image, "execme", &["sleep", "1000"]);

    let script = "echo from-exec; exit 5";
    let plain = rig
        .ctr(
            &ns,
            &[
                "task",
                "exec",
                "--exec-id",
                "plain",
                "execme",
                "sh",
                "-c",
                script,
            ],
        )
        .unwrap();
    assert_eq!(plain.status.code(), Some(5), "{}", stderr(&plain));
    assert_eq!(stdout(&plain).trim(), "from-exec");

    let tty = in_terminal(&rig, &ns, "task exec -t --exec-id withtty execme tty");
    assert!(stdout(&tty).contains("/dev/pts/"), "{}", stdout(&tty));
    assert_eq!(tty.status.code(), Some(0));

    let missing = rig
        .ctr(
            &ns,
            &[
                "task",
                "exec",
                "--exec-id",
                "nope",
                "execme",
                "/no/such/binary",
            ],
        )
        .unwrap();
    assert!(!missing.status.success());
    let err = stderr(&missing);
    assert!(
        err.contains("no such file") || err.contains("not found"),
        "{err}"
    );

    kill_and_remove(&rig, &ns, "execme");
    assert_nothing_left(&rig, &ns);
}

#[test]
fn sigkill_ends_init_with_137_and_sigterm_ends_an_exec_with_143() {
    let rig = shared_rig();
    let (ns, image) = namespace_with_busybox(&rig);
    run_detached(&rig, &ns, &image, "sig", &["sleep", "1000"]);

    // An exec is not PID 1, so SIGTERM's default action ends it: 128 + 15.
    let exec = {
        let (rig, ns) = (rig.clone(), ns.clone());
        thread::spawn(move || {
            rig.ctr(
                &ns,
                &[
                    "task",
                    "exec",
                    "--exec-id",
                    "sleeper",
                    "sig",
                    "sleep",
                    "1000",
                ],
            )
            .unwrap()
        })
    };
    assert!(eventually(Duration::from_secs(10), || {
        stdout(&rig.ctr(&ns, &["task", "ps", "sig"]).unwrap()).contains("sleeper")
    }));
    let term = rig
        .ctr(
            &ns,
            &[
                "task",
                "kill",
                "--exec-id",
                "sleeper",
                "-s",
                "SIGTERM",
                "sig",
            ],
        )
        .unwrap();
    assert!(term.status.success(), "{}", stderr(&term));
    let exec = exec.join().unwrap();
    assert_eq!(exec.status.code(), Some(143), "{}", stderr(&exec));

    let rm = kill_and_remove(&rig, &ns, "sig");
    assert!(stderr(&rm).contains("exit code 137"), "{}", stderr(&rm));
    assert_nothing_left(&rig, &ns);
}

#[test]
fn task_ps_lists_init_and_exec_processes() {
    let rig = shared_rig();
    let (ns, image) = namespace_with_busybox(&rig);
    run_detached(&rig, &ns, &image, "ps1", &["sleep", "1000"]);
    let exec = {
        let (rig, ns) = (rig.clone(), ns.clone());
        thread::spawn(move || {
            rig.ctr(
                &ns,
                &["task", "exec", "--exec-id", "extra", "ps1", "sleep", "30"],
            )
            .unwrap()
        })
    };
    assert!(eventually(Duration::from_secs(10), || {
        let ps = stdout(&rig.ctr(&ns, &["task", "ps", "ps1"]).unwrap());
        ps.lines().count() == 3 && ps.contains("extra")
    }));
    rig.ctr(&ns, &["task", "kill", "-a", "-s", "SIGKILL", "ps1"])
        .unwrap();
    let _ = exec.join();
    assert!(wait_stopped(&rig, &ns, "ps1"));
    rig.ctr(&ns, &["task", "rm", "ps1"]).unwrap();
    rig.ctr(&ns, &["containers", "rm", "ps1"]).unwrap();
    assert_nothing_left(&rig, &ns);
}

#[test]
fn force_delete_of_a_running_task_leaves_nothing() {
    let rig = shared_rig();
    let (ns, image) = namespace_with_busybox(&rig);
    run_detached(&rig, &ns, &image, "force", &["sleep", "1000"]);
    let plain = rig.ctr(&ns, &["task", "rm", "force"]).unwrap();
    assert!(!plain.status.success(), "deleting a running task must fail");
    let forced = rig.ctr(&ns, &["task", "rm", "-f", "force"]).unwrap();
    assert!(forced.status.success(), "{}", stderr(&forced));
    rig.ctr(&ns, &["containers", "rm", "force"]).unwrap();
    assert_nothing_left(&rig, &ns);
}

#[test]
fn pause_resume_and_metrics_of_a_running_task() {
    let rig = shared_rig();
    let (ns, image) = namespace_with_busybox(&rig);
    run_detached(&rig, &ns, &image, "pm", &["sleep", "1000"]);
    let metrics = rig.ctr(&ns, &["task", "metrics", "pm"]).unwrap();
    let text = stdout(&metrics);
    assert!(metrics.status.success(), "{}", stderr(&metrics));
    assert!(text.contains("memory.usage"), "{text}");
    assert!(text.contains("pids.current"), "{text}");

    let status = || stdout(&rig.ctr(&ns, &["task", "ls"]).unwrap());
    assert!(rig
        .ctr(&ns, &["task", "pause", "pm"])
        .unwrap()
        .status
        .success());
    assert!(status().contains("PAUSED"));
    assert!(rig
        .ctr(&ns, &["task", "resume", "pm"])
        .unwrap()
        .status
        .success());
    assert!(status().contains("RUNNING"));

    kill_and_remove(&rig, &ns, "pm");
    assert_nothing_left(&rig, &ns);
}

#[test]
fn ten_containers_started_in_parallel_all_run() {
    let rig = shared_rig();
    let (ns, image) = namespace_with_busybox(&rig);
    let handles: Vec<_> = (0..10)
        .map(|i| {
            let (rig, ns, image) = (rig.clone(), ns.clone(), image.clone());
            thread::spawn(move || {
                let msg = format!("hello-{i}");
                let out = run_rm(&rig, &ns, &[], &image, &format!("par{i}"), &["echo", &msg]);
                (out.status.code(), stdout(&out), stderr(&out), msg)
            })
        })
        .collect();
    for h in handles {
        let (code, out, err, msg) = h.join().unwrap();
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(out.trim(), msg);
    }
    assert_nothing_left(&rig, &ns);
}

#[test]
fn shim_answers_version_flag() {
    let bin = vouch_integration::Rig::shim_binary().unwrap();
    let out = std::process::Command::new(bin).arg("-v").output().unwrap();
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("containerd-shim-vouch-v2"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn killed_shim_is_cleaned_up_through_the_delete_subcommand() {
    let rig = shared_rig();
    let (ns, image) = namespace_with_busybox(&rig);
    run_detached(&rig, &ns, &image, "orphan", &["sleep", "1000"]);
    let shims = shims_in_namespace(&rig, &ns);
    assert_eq!(shims.len(), 1, "{shims:?}");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", shims[0])).unwrap();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let socket = args
        .windows(2)
        .find(|w| w[0] == "-socket")
        .map(|w| w[1].trim_start_matches("unix://").to_string())
        .expect("-socket argument");
    assert!(std::path::Path::new(&socket).exists());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shims[0] as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // containerd sees the shim go, runs `containerd-shim-vouch-v2 delete` in the bundle (runc
    // delete --force, unmount), and forgets the task.
    assert!(
        eventually(Duration::from_secs(15), || {
            stdout(&rig.ctr(&ns, &["task", "ls", "-q"]).unwrap())
                .trim()
                .is_empty()
        }),
        "task still listed after its shim was killed"
    );
    assert!(
        eventually(Duration::from_secs(5), || !std::path::Path::new(&socket)
            .exists()),
        "the dead shim's socket {socket} was left behind"
    );
    rig.ctr(&ns, &["containers", "rm", "orphan"]).unwrap();
    assert_nothing_left(&rig, &ns);
}

#[test]
fn failed_create_reports_runc_error_and_leaves_nothing() {
    let rig = shared_rig();
    let (ns, image) = namespace_with_busybox(&rig);
    let out = run_rm(&rig, &ns, &[], &image, "nobinary", &["/no/such/binary"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("/no/such/binary") && err.contains("no such file or directory"),
        "{err}"
    );
    assert_nothing_left(&rig, &ns);
}

#[test]
fn out_of_memory_kill_is_published_as_a_task_oom_event() {
    let rig = shared_rig();
    let (ns, image) = namespace_with_busybox(&rig);
    let events = {
        let (rig, ns) = (rig.clone(), ns.clone());
        thread::spawn(move || rig.ctr_with_timeout(&ns, &["events"], 8).unwrap())
    };
    thread::sleep(Duration::from_millis(500));
    // `tail` keeps a newline-free stream in memory: far past a 16 MiB limit.
    let hog = ["sh", "-c", "head -c 200000000 /dev/zero | tail"];
    let out = run_rm(
        &rig,
        &ns,
        &["--memory-limit", "16777216"],
        &image,
        "oom",
        &hog,
    );
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&events.join().unwrap());
    assert!(
        text.lines().any(|l| l.contains("/tasks/oom")),
        "no /tasks/oom event in: {text}"
    );
    assert_nothing_left(&rig, &ns);
}

//! Black-box: the io_uring probe of `tsdb start` and `tsdb check` on a host where
//! io_uring is blocked. Only the child is blocked, by a seccomp filter installed
//! between fork and exec that makes `io_uring_setup` fail with EPERM, as Docker's
//! default profile does; no sysctl of the host is touched.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]
#![allow(
    unsafe_code,
    reason = "installing a seccomp filter in the child needs pre_exec and prctl"
)]

mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;

use common::{Server, bare_command, command, run_to_exit};

/// Makes `io_uring_setup` fail with EPERM in the child `cmd` starts.
fn block_io_uring(cmd: &mut Command) {
    fn stmt(code: u32, k: u32) -> libc::sock_filter {
        libc::sock_filter {
            code: code as u16,
            jt: 0,
            jf: 0,
            k,
        }
    }
    // seccomp_data.nr is at offset 0. The architecture is not checked: the child
    // makes only native system calls, and io_uring_setup is 425 on every
    // architecture.
    let filter = [
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_io_uring_setup as u32,
        },
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    // SAFETY: the closure runs in the forked child before exec. It allocates nothing
    // and calls only prctl, which is async-signal-safe; `filter` is a copy owned by
    // the closure and outlives the prctl call that reads it.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr().cast_mut(),
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

const FALLBACK: &str = "io_uring unavailable: using the epoll fallback";

#[test]
fn auto_falls_back_to_epoll_naming_the_reason_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path(), &["--io-driver=auto"]);
    block_io_uring(&mut cmd);
    let server = Server::start_cmd(cmd, dir.path());
    let line = server.wait_log(FALLBACK, std::time::Duration::from_secs(5));
    assert_eq!(line["level"], "warn", "{line}");
    assert_eq!(line["driver"], "epoll", "{line}");
    let reason = line["reason"].as_str().unwrap();
    assert!(reason.contains("Operation not permitted"), "{line}");
    assert!(
        line["advice"].as_str().unwrap().contains("seccomp"),
        "{line}"
    );
    assert!(
        !server.logs().iter().any(|l| l["msg"] == "I/O driver"),
        "one driver line only"
    );

    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let line = format!(
        r#"{{"metric":{{"__name__":"probe_test","job":"a"}},"values":[1.5],"timestamps":[{t}]}}"#
    );
    let (status, body) = server.post("/api/v1/import", "application/x-ndjson", line.as_bytes());
    assert_eq!(status, 204, "{body}");
    let data = server.api("/api/v1/query?query=probe_test");
    assert_eq!(data["result"][0]["value"][1], "1.5", "{data}");
    server.assert_no_unexpected_warnings(&[]);
    let (status, out) = server.terminate();
    assert!(status.success(), "{out}");
}

#[test]
fn io_uring_required_refuses_to_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path(), &["--io-driver=io-uring"]);
    block_io_uring(&mut cmd);
    let (code, out) = run_to_exit(cmd);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("io_uring is unavailable and --io-driver=io-uring requires it"),
        "{out}"
    );
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(!out.contains("\"listening\""), "{out}");
}

/// Needs a host that allows io_uring: on one that does not, the server refuses to
/// start and the harness prints its error line with the reason.
#[test]
fn io_uring_available_is_logged_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--io-driver=io-uring", "--shards=2"]);
    let line = server.wait_log("I/O driver", std::time::Duration::from_secs(5));
    assert_eq!(line["driver"], "io_uring", "{line}");
    let n = server
        .logs()
        .iter()
        .filter(|l| l["msg"] == "I/O driver")
        .count();
    assert_eq!(n, 1);
    server.assert_no_unexpected_warnings(&[]);
}

#[test]
fn check_reports_a_blocked_io_uring_as_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = bare_command();
    cmd.arg("check")
        .arg(format!("--data-dir={}", dir.path().display()))
        .arg("--json");
    block_io_uring(&mut cmd);
    let out = cmd.output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let io = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "io_uring")
        .unwrap()
        .clone();
    assert_eq!(io["status"], "warn", "{report}");
    assert!(
        io["detail"]
            .as_str()
            .unwrap()
            .contains("Operation not permitted"),
        "{io}"
    );
}

//! Black-box: the operator's tools run as a script would run them — `tsdb inspect`
//! on real blocks (intact, damaged, not a block; never changing a byte), `tsdb check`
//! on this host, and `tsdb snapshot`, `export` and `import` against running servers,
//! checking every exit status the help text promises.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]
#![allow(
    unsafe_code,
    reason = "lowering the child's open files limit needs pre_exec"
)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::{Server, bare_command, now_ms};

/// `tsdb <args>` run to exit: (status, stdout, stderr).
fn tsdb(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = bare_command();
    cmd.args(args).envs(env.iter().copied());
    output(cmd)
}

fn output(mut cmd: Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// JSON lines of `n` series `cli_test{i="…"}` with three samples each.
fn json_lines(n: usize, t0: i64) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"metric\":{{\"__name__\":\"cli_test\",\"i\":\"{i}\",\"job\":\"j{}\"}},\"values\":[{i},1.5,{}],\"timestamps\":[{t0},{},{}]}}\n",
                i % 3,
                i * 2,
                t0 + 1000,
                t0 + 2000
            )
        })
        .collect()
}

fn block_dirs(data: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(data.join("blocks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// Every file under `dir` with its bytes and modification time.
fn snapshot_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>, std::time::SystemTime)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let m = std::fs::metadata(&p).unwrap();
            (p.clone(), std::fs::read(&p).unwrap(), m.modified().unwrap())
        })
        .collect();
    out.sort();
    out
}

/// A server with 20 series flushed into one block, stopped; returns the data dir.
fn data_dir_with_a_block() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards=1"]);
    let (status, body) = server.post(
        "/api/v1/import",
        "application/x-ndjson",
        json_lines(20, now_ms() - 60_000).as_bytes(),
    );
    assert_eq!(status, 204, "{body}");
    server.flush();
    server.assert_no_unexpected_warnings(&[]);
    let (status, out) = server.terminate();
    assert!(status.success(), "{out}");
    dir
}

#[test]
fn inspect_reports_an_intact_block_and_changes_nothing() {
    let dir = data_dir_with_a_block();
    let blocks = block_dirs(dir.path());
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    let block = &blocks[0];
    let before = snapshot_files(block);

    let (code, out, err) = tsdb(&["inspect", block.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let ulid = block.file_name().unwrap().to_str().unwrap();
    assert!(out.contains(&format!("ulid: {ulid}")), "{out}");
    assert!(out.contains("series: 20  samples: 60  chunks: 20"), "{out}");
    assert!(out.contains("Z ("), "RFC 3339 and ms: {out}");
    assert!(out.contains("    i  20\n"), "{out}");
    assert!(
        out.ends_with("intact: every chunk and the index verified\n"),
        "{out}"
    );

    let (code, out, err) = tsdb(&["inspect", block.to_str().unwrap(), "--json"], &[]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["intact"], true);
    assert_eq!(v["meta"]["ulid"], ulid);
    assert_eq!(v["meta"]["level"], 1);
    assert_eq!(v["verified"]["num_samples"], 60);
    assert_eq!(v["top_label_names"][0]["series"], 20);
    assert_eq!(v["files"].as_array().unwrap().len(), 3);
    assert!(v["damage"].is_null());

    assert_eq!(snapshot_files(block), before, "inspect changed the block");
}

#[test]
fn inspect_damaged_block_exits_1_and_not_a_block_exits_2() {
    let dir = data_dir_with_a_block();
    let block = block_dirs(dir.path()).remove(0);
    let chunks = block.join("chunks");
    let mut bytes = std::fs::read(&chunks).unwrap();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x5a;
    std::fs::write(&chunks, &bytes).unwrap();
    let before = snapshot_files(&block);

    let (code, out, err) = tsdb(&["inspect", block.to_str().unwrap()], &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("DAMAGE "), "{out}");
    assert!(out.contains("chunks"), "{out}");
    assert!(out.ends_with("damaged\n"), "{out}");
    let (code, out, _) = tsdb(&["inspect", "--json", block.to_str().unwrap()], &[]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["intact"], false);
    assert!(v["damage"].as_str().unwrap().contains("chunks"), "{v}");
    assert_eq!(snapshot_files(&block), before, "inspect changed the block");

    let (code, out, err) = tsdb(&["inspect", dir.path().to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.starts_with("tsdb inspect: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let missing = dir.path().join("nope");
    let (code, _, err) = tsdb(&["inspect", missing.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = tsdb(&["inspect"], &[]);
    assert_eq!(code, 2, "usage error");
}

fn check_json(args: &[&str], cmd_setup: impl FnOnce(&mut Command)) -> (i32, serde_json::Value) {
    let mut cmd = bare_command();
    cmd.arg("check").arg("--json").args(args);
    cmd_setup(&mut cmd);
    let (code, out, err) = output(cmd);
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    (code, v)
}

fn finding<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

#[test]
fn check_reports_every_finding_of_this_host() {
    let dir = tempfile::tempdir().unwrap();
    let d = format!("--data-dir={}", dir.path().display());
    let (code, report) = check_json(&[&d], |_| {});
    let failures = report["failures"].as_u64().unwrap();
    assert_eq!(code, i32::from(failures > 0), "{report}");
    for name in [
        "kernel",
        "io_uring",
        "memlock",
        "nofile",
        "cpus",
        "data_dir",
        "filesystem",
        "free_space",
        "inodes",
        "o_direct",
        "scheduler",
        "thp",
    ] {
        let f = finding(&report, name);
        assert!(
            ["ok", "warn", "fail"].contains(&f["status"].as_str().unwrap()),
            "{f}"
        );
        assert!(!f["detail"].as_str().unwrap().is_empty(), "{f}");
    }
    assert_eq!(finding(&report, "data_dir")["status"], "ok");
    // The O_DIRECT probe leaves nothing behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    // Text: one `status name: detail` line per finding, then the totals.
    let (code2, out, _) = tsdb(&["check", &d], &[]);
    assert_eq!(code2, code);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), report["checks"].as_array().unwrap().len() + 1);
    for l in &lines[..lines.len() - 1] {
        let status = l.split(' ').next().unwrap();
        assert!(["ok", "warn", "fail"].contains(&status), "{l}");
    }
    assert!(lines.last().unwrap().ends_with("warning(s)"), "{out}");
}

#[test]
fn check_warns_about_more_shards_than_cpus() {
    let dir = tempfile::tempdir().unwrap();
    let d = format!("--data-dir={}", dir.path().display());
    let (_, report) = check_json(&[&d, "--shards=64"], |_| {});
    let cpus = finding(&report, "cpus");
    assert_eq!(cpus["status"], "warn", "{cpus}");
    assert!(
        cpus["detail"].as_str().unwrap().contains("--shards 64"),
        "{cpus}"
    );
    let (_, report) = check_json(&[&d, "--shards=1"], |_| {});
    assert_eq!(finding(&report, "cpus")["status"], "ok");
}

#[test]
fn check_warns_about_a_low_open_files_limit() {
    let dir = tempfile::tempdir().unwrap();
    let d = format!("--data-dir={}", dir.path().display());
    let (_, report) = check_json(&[&d], |cmd| {
        // SAFETY: runs in the forked child before exec and only calls setrlimit,
        // which is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, 512, 512)
                    .map_err(std::io::Error::from)
            });
        }
    });
    let nofile = finding(&report, "nofile");
    assert_eq!(nofile["status"], "warn", "{nofile}");
    assert!(
        nofile["detail"].as_str().unwrap().contains("hard 512"),
        "{nofile}"
    );
    assert!(
        nofile["advice"].as_str().unwrap().contains("LimitNOFILE"),
        "{nofile}"
    );
}

#[test]
fn check_of_a_missing_data_dir_warns_and_checks_its_parent() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("a/b");
    let d = format!("--data-dir={}", missing.display());
    let (_, report) = check_json(&[&d], |_| {});
    let f = finding(&report, "data_dir");
    assert_eq!(f["status"], "warn", "{f}");
    assert!(
        f["detail"]
            .as_str()
            .unwrap()
            .contains(&dir.path().display().to_string()),
        "{f}"
    );
    // Still the file-system checks, on the parent, and nothing created.
    finding(&report, "filesystem");
    assert!(!dir.path().join("a").exists());

    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let (code, report) = check_json(&[&format!("--data-dir={}", file.display())], |_| {});
    assert_eq!(code, 1, "{report}");
    assert_eq!(finding(&report, "data_dir")["status"], "fail");
}

/// A stand-in server that records each request's head and answers a snapshot.
fn fake_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let body = if head.starts_with("POST /api/v1/admin/snapshot?skip_head=true ") {
                r#"{"status":"success","data":{"name":"20261123T170000Z-00112233aabbccdd"}}"#
            } else if head.starts_with("GET /api/v1/status/flags ") {
                r#"{"status":"success","data":{"data-dir":"/srv/tsdb/data"}}"#
            } else {
                r#"{"status":"error","errorType":"not_found","error":"unexpected"}"#
            };
            log.lock().unwrap().push(head);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (format!("http://{addr}"), seen)
}

#[test]
fn snapshot_sends_the_token_and_prints_name_and_path() {
    let (url, seen) = fake_server();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret\n").unwrap();
    let (code, out, err) = tsdb(
        &[
            "snapshot",
            "--skip-head",
            &format!("--url={url}/"),
            &format!("--token-file={}", token_file.display()),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out,
        "snapshot 20261123T170000Z-00112233aabbccdd\npath /srv/tsdb/data/snapshots/20261123T170000Z-00112233aabbccdd\n"
    );
    let heads = seen.lock().unwrap().clone();
    assert!(
        heads[0].starts_with("POST /api/v1/admin/snapshot?skip_head=true "),
        "{heads:?}"
    );
    for h in &heads {
        assert!(
            h.to_ascii_lowercase()
                .contains("authorization: bearer s3cret\r\n"),
            "{h}"
        );
    }

    // TSDB_URL and TSDB_TOKEN, and --json prints the server's answer.
    let (code, out, err) = tsdb(
        &["snapshot", "--skip-head", "--json"],
        &[("TSDB_URL", &url), ("TSDB_TOKEN", "envtoken")],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["data"]["name"], "20261123T170000Z-00112233aabbccdd");
    let last = seen.lock().unwrap().last().unwrap().clone();
    assert!(
        last.to_ascii_lowercase()
            .contains("authorization: bearer envtoken\r\n"),
        "{last}"
    );
}

#[test]
fn snapshot_refused_exits_1_and_unreachable_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards=1"]);
    let url = format!("--url={}", server.url(""));
    // Without the snapshot route the server answers 404; with it, the empty data dir's
    // snapshot succeeds. Either way the exit status says which.
    let (code, out, err) = tsdb(&["snapshot", &url], &[]);
    if code == 1 {
        assert!(out.is_empty(), "{out}");
        assert!(
            err.starts_with("tsdb snapshot: the server answered 404: not_found"),
            "{err}"
        );
    } else {
        assert_eq!(code, 0, "{out}{err}");
    }
    drop(server);

    let (code, out, err) = tsdb(&["snapshot", "--url=http://127.0.0.1:1"], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.starts_with("tsdb snapshot: POST http://127.0.0.1:1/api/v1/admin/snapshot"),
        "{err}"
    );
    let (code, _, err) = tsdb(&["snapshot", "--url=ftp://x"], &[]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = tsdb(&["snapshot"], &[("TSDB_TOKEN", "")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("TSDB_TOKEN is empty"), "{err}");
}

/// The snapshot route of the shared contract (`POST /api/v1/admin/snapshot`), built
/// on another branch: this passes once it is merged.
#[test]
fn snapshot_of_a_running_server_names_a_directory_of_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards=1"]);
    let (status, body) = server.post(
        "/api/v1/import",
        "application/x-ndjson",
        json_lines(5, now_ms() - 60_000).as_bytes(),
    );
    assert_eq!(status, 204, "{body}");
    let (code, out, err) = tsdb(&["snapshot", &format!("--url={}", server.url(""))], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let path = out.lines().nth(1).unwrap().strip_prefix("path ").unwrap();
    let snap = PathBuf::from(path);
    assert!(
        snap.starts_with(dir.path().canonicalize().unwrap()) || snap.starts_with(dir.path()),
        "{out}"
    );
    assert!(snap.is_dir(), "{out}");
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_owned).collect();
    v.sort();
    v
}

#[test]
fn export_import_round_trip_in_batches() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let one = Server::start(d1.path(), &["--shards=2"]);
    let two = Server::start(d2.path(), &["--shards=1"]);
    // More series than one import batch holds.
    let n = 10_050;
    let (status, body) = one.post(
        "/api/v1/import",
        "application/x-ndjson",
        json_lines(n, now_ms() - 60_000).as_bytes(),
    );
    assert_eq!(status, 204, "{body}");

    let export_file = d1.path().join("export.jsonl");
    let (code, out, err) = tsdb(
        &[
            "export",
            &format!("--url={}", one.url("")),
            "--match=cli_test",
            &format!("--output={}", export_file.display()),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let exported = std::fs::read_to_string(&export_file).unwrap();
    assert_eq!(exported.lines().count(), n);

    let (code, out, err) = tsdb(
        &[
            "import",
            &format!("--url={}", two.url("")),
            export_file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with(&format!("imported {n} lines in 2 requests")),
        "{out}"
    );

    // Export again, from server 2, to stdout: the same lines.
    let (code, again, err) = tsdb(&["export", &format!("--url={}", two.url(""))], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sorted_lines(&again), sorted_lines(&exported));

    // A time range and a selector narrow the export.
    let (code, some, err) = tsdb(
        &[
            "export",
            &format!("--url={}", one.url("")),
            "--match=cli_test{i=\"7\"}",
            "--match=cli_test{i=\"8\"}",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(some.lines().count(), 2, "{some}");

    // A bad selector: the server's 400, exit 1, one line on stderr.
    let (code, out, err) = tsdb(
        &["export", &format!("--url={}", one.url("")), "--match={"],
        &[],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.starts_with("tsdb export: the server answered 400: bad_data"),
        "{err}"
    );
    one.assert_no_unexpected_warnings(&[]);
    two.assert_no_unexpected_warnings(&[]);
}

#[test]
fn import_stops_at_a_refused_batch_and_names_the_lines() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards=1"]);
    let mut input = json_lines(10_001, now_ms() - 60_000);
    input.push_str("{\"metric\":{\"__name__\":\"broken\"}\n");
    input.push_str(&json_lines(1, now_ms()));
    let mut cmd = bare_command();
    cmd.args(["import", &format!("--url={}", server.url("")), "-"])
        .stdin(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with(
            "tsdb import: lines 10001-10003 were not imported (refused: the server answered 400"
        ),
        "{err}"
    );
    assert!(
        err.trim_end().ends_with("lines 1-10000 were imported"),
        "{err}"
    );
    let data = server.api("/api/v1/query?query=count(cli_test)");
    assert_eq!(data["result"][0]["value"][1], "10000", "{data}");

    let (code, _, err) = tsdb(
        &[
            "import",
            &format!("--url={}", server.url("")),
            "/nonexistent/file",
        ],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("tsdb import: open /nonexistent/file: "),
        "{err}"
    );
}

#[test]
fn compact_merges_a_stopped_servers_blocks_and_refuses_a_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_owned();
    let args = ["--shards=1", "--compaction-enabled=false"];
    let server = Server::start(dir.path(), &args);
    let t0 = now_ms() - 60_000;
    // Three flushes of overlapping samples: three blocks the plan must merge.
    for i in 0..3 {
        let (status, body) = server.post(
            "/api/v1/import",
            "application/x-ndjson",
            json_lines(20, t0 + i * 10).as_bytes(),
        );
        assert_eq!(status, 204, "{body}");
        server.flush();
    }
    let before = sorted_lines(&server.get("/api/v1/export").1);
    assert_eq!(before.len(), 20);

    let (code, out, err) = tsdb(&["compact", "--data-dir", &d], &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("is in use by another tsdb process"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    server.assert_no_unexpected_warnings(&[]);
    let (status, out) = server.terminate();
    assert!(status.success(), "{out}");
    assert_eq!(block_dirs(dir.path()).len(), 3);

    let (code, out, err) = tsdb(&["compact", "--data-dir", &d], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("blocks: 3 -> 1\n"), "{out}");
    assert!(out.contains("wrote merged block: "), "{out}");
    let blocks = block_dirs(dir.path());
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    let (code, out, err) = tsdb(&["inspect", blocks[0].to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("level: 2"), "{out}");

    // Nothing left to do, and the data reads back the same.
    let (code, out, _) = tsdb(&["compact", "--data-dir", &d, "--retention=30d"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to do"), "{out}");
    let server = Server::start(dir.path(), &args);
    assert_eq!(sorted_lines(&server.get("/api/v1/export").1), before);
    server.assert_no_unexpected_warnings(&[]);
    drop(server);

    let missing = dir.path().join("nope");
    let (code, _, err) = tsdb(&["compact", "--data-dir", missing.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = tsdb(&["compact", "--data-dir", &d, "--retention=soon"], &[]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn export_of_a_stopped_data_dir_reads_blocks_and_wal() {
    let dir = tempfile::tempdir().unwrap();
    let d = format!("--data-dir={}", dir.path().display());
    let server = Server::start(dir.path(), &["--shards=2"]);
    let t0 = now_ms() - 60_000;
    let post = |body: String| {
        let (status, text) = server.post("/api/v1/import", "application/x-ndjson", body.as_bytes());
        assert_eq!(status, 204, "{text}");
    };
    // Some samples in blocks, later ones (and one overwritten value) only in the WAL.
    post(json_lines(30, t0));
    server.flush();
    post(json_lines(30, t0 + 5));
    post("{\"metric\":{\"__name__\":\"cli_test\",\"i\":\"0\",\"job\":\"j0\"},\"values\":[42],\"timestamps\":[".to_owned() + &t0.to_string() + "]}\n");
    let online = sorted_lines(&server.get("/api/v1/export").1);
    assert_eq!(online.len(), 30);
    let (code, _, err) = tsdb(&["export", &d], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is in use by another tsdb process"), "{err}");
    server.kill9();

    let (code, offline, err) = tsdb(&["export", &d], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sorted_lines(&offline), online);
    let (code, some, err) = tsdb(
        &[
            "export",
            &d,
            "--match=cli_test{i=\"0\"}",
            "--end",
            &format!("{}", (t0 + 1000) / 1000),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(some.lines().count(), 1, "{some}");
    assert!(some.contains("\"values\":[42"), "{some}");
    let (code, _, err) = tsdb(&["export", &d, "--url=http://x"], &[]);
    assert_eq!(code, 2, "{err}");
}

/// Runs `openssl` (Debian's openssl package; `.ci/run` installs it).
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("openssl is needed for this test (.ci/run installs it): {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Kills the child on drop, so a failed assertion leaves no server behind.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ca_cert_makes_a_private_ca_trusted_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let days = "2";
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            days,
            "-subj",
            "/CN=tsdb test CA",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(d.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            days,
            "-extfile",
            "ext.cnf",
        ],
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // `s_server -www` answers any GET with a status page: enough to prove the TLS
    // handshake and the CA's trust.
    let server = Kill(
        Command::new("openssl")
            .current_dir(d)
            .args([
                "s_server",
                "-accept",
                &format!("127.0.0.1:{port}"),
                "-cert",
                "srv.pem",
                "-key",
                "srv.key",
                "-www",
                "-quiet",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "openssl s_server did not listen"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let url = format!("--url=https://127.0.0.1:{port}");
    let ca = format!("--ca-cert={}", d.join("ca.pem").display());

    let (code, out, err) = tsdb(&["export", &url, &ca], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("s_server"), "{out}");
    let (code, _, err) = tsdb(&["export", &url], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("UnknownIssuer"), "{err}");
    // --ca-cert only with https://, and only a PEM certificate.
    let (code, _, err) = tsdb(&["export", "--url=http://127.0.0.1:1", &ca], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--ca-cert needs an https:// URL"), "{err}");
    let key = format!("--ca-cert={}", d.join("ext.cnf").display());
    let (code, _, err) = tsdb(&["export", &url, &key], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no PEM certificate"), "{err}");
    drop(server);
}

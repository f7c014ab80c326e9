//! Black-box: TLS (`--tls-cert`/`--tls-key`, reloaded on SIGHUP), authentication and
//! roles (`--auth-file`, reloaded on SIGHUP), the audit log, and the per-client rate
//! limit (`--rate-limit`), against the real binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]

mod common;

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::Duration;

use common::metrics::Scrape;
use common::tls::{self_signed, trusting};
use common::{Server, now_ms, run_to_exit};

fn sighup(s: &Server) {
    let pid = nix::unistd::Pid::from_raw(s.pid() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
}

/// One request with optional `Authorization` header: (status, headers, body).
fn call(
    agent: &ureq::Agent,
    url: &str,
    method: &str,
    auth: Option<&str>,
    body: &[u8],
) -> (u16, Vec<(String, String)>, String) {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let sent = if method == "GET" {
        agent.run(req.body(()).unwrap())
    } else {
        agent.run(req.body(body.to_vec()).unwrap())
    };
    let mut r = sent.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let status = r.status().as_u16();
    (status, headers, r.body_mut().read_to_string().unwrap())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

fn scrape(agent: &ureq::Agent, s: &Server, auth: Option<&str>) -> Scrape {
    let (status, _, body) = call(agent, &s.url("/metrics"), "GET", auth, b"");
    assert_eq!(status, 200, "{body}");
    Scrape::parse(&body)
}

fn write_files(dir: &Path, cert: &str, key: &str) {
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
}

#[test]
fn tls_serves_https_refuses_plain_http_and_reloads_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_a, key_a) = self_signed("tsdb-a");
    write_files(dir.path(), &cert_a, &key_a);
    let cert_flag = format!("--tls-cert={}", dir.path().join("cert.pem").display());
    let key_flag = format!("--tls-key={}", dir.path().join("key.pem").display());
    let cmd = common::command(&dir.path().join("data"), &[&cert_flag, &key_flag]);
    let s = Server::start_with(cmd, &dir.path().join("data"), trusting(&cert_a), "https");
    assert!(s.url("/").starts_with("https://"));

    // Writes and queries over TLS.
    let a = trusting(&cert_a);
    let text = format!("tls_test{{k=\"v\"}} 42 {}\n", now_ms());
    let (status, _, body) = call(
        &a,
        &s.url("/api/v1/import/prometheus"),
        "POST",
        None,
        text.as_bytes(),
    );
    assert_eq!(status, 204, "{body}");
    let (status, _, body) = call(
        &a,
        &s.url("/api/v1/export?match[]=tls_test"),
        "GET",
        None,
        b"",
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"tls_test\"") && body.contains("42"),
        "{body}"
    );

    // Plain HTTP to the TLS port gets no HTTP answer, and breaks nothing.
    let mut plain = std::net::TcpStream::connect(&s.addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP answered: {:?}",
        String::from_utf8_lossy(&answer)
    );
    let (status, _, _) = call(&a, &s.url("/-/healthy"), "GET", None, b"");
    assert_eq!(status, 200);
    let m = scrape(&a, &s, None);
    assert!(m.value("tsdb_tls_handshake_errors_total", &[]) >= 1.0);

    // SIGHUP with a new certificate: new connections get it.
    let (cert_b, key_b) = self_signed("tsdb-b");
    write_files(dir.path(), &cert_b, &key_b);
    sighup(&s);
    s.wait_log("TLS certificate reloaded", Duration::from_secs(10));
    let b = trusting(&cert_b);
    let (status, _, _) = call(&b, &s.url("/-/healthy"), "GET", None, b"");
    assert_eq!(status, 200);
    let old = trusting(&cert_a);
    let refused = old.get(&s.url("/-/healthy")).call();
    assert!(
        refused.is_err(),
        "a client trusting only the old certificate still connects"
    );

    // SIGHUP with a broken certificate: the last good one stays.
    std::fs::write(
        dir.path().join("cert.pem"),
        "-----BEGIN CERTIFICATE-----\ngarbage\n",
    )
    .unwrap();
    sighup(&s);
    let line = s.wait_log(
        "TLS certificate reload failed: keeping the previous certificate",
        Duration::from_secs(10),
    );
    assert_eq!(line["level"], "error", "{line}");
    assert!(
        line["error"].as_str().unwrap().contains("cert.pem"),
        "{line}"
    );
    let fresh = trusting(&cert_b);
    let (status, _, _) = call(&fresh, &s.url("/-/healthy"), "GET", None, b"");
    assert_eq!(status, 200);

    let (status, out) = s.terminate();
    assert!(status.success(), "{out}");
}

#[test]
fn tls_handshake_is_bounded_by_the_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed("tsdb");
    write_files(dir.path(), &cert, &key);
    let cert_flag = format!("--tls-cert={}", dir.path().join("cert.pem").display());
    let key_flag = format!("--tls-key={}", dir.path().join("key.pem").display());
    let cmd = common::command(
        &dir.path().join("data"),
        &[&cert_flag, &key_flag, "--read-timeout=1s"],
    );
    let s = Server::start_with(cmd, &dir.path().join("data"), trusting(&cert), "https");

    // A client that connects and never says hello is dropped after the read timeout.
    let mut silent = std::net::TcpStream::connect(&s.addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let n = silent.read(&mut buf).unwrap_or(0);
    let took = started.elapsed();
    assert_eq!(n, 0, "the server sent something to a silent client");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "closed after {took:?}"
    );
    let m = scrape(&trusting(&cert), &s, None);
    assert_eq!(m.value("tsdb_tls_handshake_errors_total", &[]), 1.0);
    // (Idle keep-alive connections of the agents may be counted there too.)
    assert!(m.limit_hits("header_read_timeout") >= 1.0);

    let (status, out) = s.terminate();
    assert!(status.success(), "{out}");
}

#[test]
fn tls_start_refuses_missing_bad_or_half_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (cert, key) = self_signed("tsdb");
    write_files(dir.path(), &cert, &key);
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "nothing here\n").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![format!("--tls-cert={}", cert_path.display())],
            "--tls-cert is set but --tls-key is not",
        ),
        (
            vec![format!("--tls-key={}", key_path.display())],
            "--tls-key is set but --tls-cert is not",
        ),
        (
            vec![
                format!("--tls-cert={}", dir.path().join("missing.pem").display()),
                format!("--tls-key={}", key_path.display()),
            ],
            "missing.pem: cannot read",
        ),
        (
            vec![
                format!("--tls-cert={}", garbage.display()),
                format!("--tls-key={}", key_path.display()),
            ],
            "garbage.pem: no certificate",
        ),
        (
            vec![
                format!("--tls-cert={}", cert_path.display()),
                format!("--tls-key={}", garbage.display()),
            ],
            "garbage.pem: no PEM private key",
        ),
    ];
    for (args, want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out) = run_to_exit(common::command(&data, &args));
        assert_eq!(code, Some(1), "{args:?}: {out}");
        assert!(out.contains(want), "{args:?}: want {want:?} in {out}");
    }
}

fn sha256_hex(secret: &str) -> String {
    use std::process::Command;
    // The documented recipe: `printf %s "$SECRET" | sha256sum`.
    let out = Command::new("sh")
        .arg("-c")
        .arg("printf %s \"$SECRET\" | sha256sum")
        .env("SECRET", secret)
        .output()
        .expect("sh and sha256sum (coreutils) must be installed");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

fn auth_yaml(extra_token: Option<(&str, &str, &str)>) -> String {
    let mut text = format!(
        "tokens:\n  - name: grafana\n    role: read\n    hash: sha256:{}\n  \
         - name: prometheus\n    role: write\n    hash: sha256:{}\n  \
         - name: ops\n    role: admin\n    hash: sha256:{}\n",
        sha256_hex("read-secret"),
        sha256_hex("write-secret"),
        sha256_hex("admin-secret"),
    );
    if let Some((name, role, secret)) = extra_token {
        text.push_str(&format!(
            "  - name: {name}\n    role: {role}\n    hash: sha256:{}\n",
            sha256_hex(secret)
        ));
    }
    text.push_str(&format!(
        "users:\n  - name: bob\n    role: read\n    hash: sha256:{}\n",
        sha256_hex("bobs password")
    ));
    text
}

#[test]
fn auth_roles_audit_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let auth_file = dir.path().join("auth.yaml");
    std::fs::write(&auth_file, auth_yaml(None)).unwrap();
    let flag = format!("--auth-file={}", auth_file.display());
    let s = Server::start(&dir.path().join("data"), &[&flag]);
    let agent = common::agent();
    let query = s.url("/api/v1/query?query=1");
    let write = s.url("/api/v1/import/prometheus");
    let flush = s.url("/api/v1/admin/flush?why=test");
    let sample = format!("auth_test 1 {}\n", now_ms());
    let (read, writer, admin) = (
        "Bearer read-secret",
        "Bearer write-secret",
        "Bearer admin-secret",
    );

    // No credentials: 401 with a challenge, as a Prometheus JSON error.
    let (status, headers, body) = call(&agent, &query, "GET", None, b"");
    assert_eq!(status, 401, "{body}");
    let www = header(&headers, "www-authenticate");
    assert!(www.iter().any(|v| v.starts_with("Bearer")), "{headers:?}");
    assert!(www.iter().any(|v| v.starts_with("Basic")), "{headers:?}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "error", "{body}");
    let (status, _, _) = call(&agent, &query, "GET", Some("Bearer wrong"), b"");
    assert_eq!(status, 401);

    // Probes are open.
    for p in ["/-/healthy", "/-/ready"] {
        let (status, _, _) = call(&agent, &s.url(p), "GET", None, b"");
        assert_eq!(status, 200, "{p}");
    }

    // read: queries, not writes nor admin.
    assert_eq!(call(&agent, &query, "GET", Some(read), b"").0, 200);
    let (status, _, body) = call(&agent, &write, "POST", Some(read), sample.as_bytes());
    assert_eq!(status, 403, "{body}");
    assert_eq!(call(&agent, &flush, "POST", Some(read), b"").0, 403);
    // write: writes, not queries.
    let (status, _, body) = call(&agent, &write, "POST", Some(writer), sample.as_bytes());
    assert_eq!(status, 204, "{body}");
    assert_eq!(call(&agent, &query, "GET", Some(writer), b"").0, 403);
    assert_eq!(call(&agent, &flush, "POST", Some(writer), b"").0, 403);
    // admin: everything.
    assert_eq!(call(&agent, &query, "GET", Some(admin), b"").0, 200);
    let (status, _, body) = call(&agent, &write, "POST", Some(admin), sample.as_bytes());
    assert_eq!(status, 204, "{body}");
    let (status, _, body) = call(&agent, &flush, "POST", Some(admin), b"");
    assert_eq!(status, 204, "{body}");
    // Basic auth: base64("bob:bobs password").
    let bob = "Basic Ym9iOmJvYnMgcGFzc3dvcmQ=";
    assert_eq!(call(&agent, &query, "GET", Some(bob), b"").0, 200);
    assert_eq!(
        call(&agent, &query, "GET", Some("Basic Ym9iOndyb25n"), b"").0,
        401
    );

    let m = scrape(&agent, &s, Some(read));
    assert_eq!(
        m.value("tsdb_auth_failures_total", &[("reason", "missing")]),
        1.0
    );
    assert_eq!(
        m.value("tsdb_auth_failures_total", &[("reason", "invalid")]),
        2.0
    );
    assert_eq!(
        m.value("tsdb_auth_failures_total", &[("reason", "forbidden")]),
        4.0
    );

    // The audit trail: the admin action with who, what, where and the outcome...
    let audit: Vec<serde_json::Value> = s
        .logs()
        .into_iter()
        .filter(|l| l["audit"] == true)
        .collect();
    let flushed = audit
        .iter()
        .find(|l| l["path"] == "/api/v1/admin/flush" && l["status"] == 204)
        .unwrap_or_else(|| panic!("no audit line of the flush in {audit:#?}"));
    assert_eq!(flushed["user"], "ops", "{flushed}");
    assert_eq!(flushed["method"], "POST", "{flushed}");
    assert_eq!(flushed["query"], "why=test", "{flushed}");
    assert!(
        flushed["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{flushed}"
    );
    // ...the refused admin attempt, and every auth failure.
    assert!(
        audit.iter().any(|l| l["path"] == "/api/v1/admin/flush"
            && l["user"] == "grafana"
            && l["status"] == 403),
        "{audit:#?}"
    );
    let anonymous = audit
        .iter()
        .find(|l| l["user"] == "anonymous" && l["status"] == 401)
        .unwrap_or_else(|| panic!("no audit line of the 401 in {audit:#?}"));
    assert_eq!(anonymous["path"], "/api/v1/query", "{anonymous}");
    assert_eq!(anonymous["auth_failure"], "missing", "{anonymous}");
    // A plain query is not an admin action: no audit line for it.
    assert!(
        !audit
            .iter()
            .any(|l| l["path"] == "/api/v1/query" && l["status"] == 200),
        "{audit:#?}"
    );

    // SIGHUP adds a token.
    let newcomer = "Bearer new-secret";
    assert_eq!(call(&agent, &query, "GET", Some(newcomer), b"").0, 401);
    std::fs::write(
        &auth_file,
        auth_yaml(Some(("newcomer", "read", "new-secret"))),
    )
    .unwrap();
    sighup(&s);
    let line = s.wait_log("auth file reloaded", Duration::from_secs(10));
    assert_eq!(line["tokens"], 4, "{line}");
    assert_eq!(call(&agent, &query, "GET", Some(newcomer), b"").0, 200);

    // SIGHUP with a broken file keeps the credentials in force.
    std::fs::write(&auth_file, "tokens: [oops\n").unwrap();
    sighup(&s);
    let line = s.wait_log(
        "auth file reload failed: keeping the previous credentials",
        Duration::from_secs(10),
    );
    assert_eq!(line["level"], "error", "{line}");
    assert_eq!(call(&agent, &query, "GET", Some(newcomer), b"").0, 200);
    assert_eq!(call(&agent, &query, "GET", None, b"").0, 401);

    s.assert_no_unexpected_warnings(&["auth file reload failed"]);
    let (status, out) = s.terminate();
    assert!(status.success(), "{out}");
}

#[test]
fn auth_start_refuses_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cases = [
        ("missing.yaml", None, "missing.yaml: cannot read"),
        (
            "plain.yaml",
            Some("tokens:\n  - {name: a, role: read, hash: hunter2}\n"),
            "tokens[0] (a): hash: expected sha256:",
        ),
        ("unknown.yaml", Some("tokens: []\ngroups: []\n"), "groups"),
        (
            "role.yaml",
            Some(
                "users:\n  - {name: a, role: superuser, hash: sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad}\n",
            ),
            "superuser",
        ),
    ];
    for (name, text, want) in cases {
        let path = dir.path().join(name);
        if let Some(text) = text {
            std::fs::write(&path, text).unwrap();
        }
        let flag = format!("--auth-file={}", path.display());
        let (code, out) = run_to_exit(common::command(&data, &[&flag]));
        assert_eq!(code, Some(1), "{name}: {out}");
        assert!(out.contains(want), "{name}: want {want:?} in {out}");
    }
}

#[test]
fn rate_limit_throttles_each_client_alone() {
    let dir = tempfile::tempdir().unwrap();
    let auth_file = dir.path().join("auth.yaml");
    std::fs::write(
        &auth_file,
        auth_yaml(Some(("other", "read", "other-secret"))),
    )
    .unwrap();
    let flag = format!("--auth-file={}", auth_file.display());
    // One request per second after a burst of 3: a fast client is refused on its 4th.
    let s = Server::start(
        &dir.path().join("data"),
        &[&flag, "--rate-limit=1", "--rate-limit-burst=3"],
    );
    let agent = common::agent();
    let query = s.url("/api/v1/query?query=1");
    let busy = "Bearer read-secret";
    let mut statuses = Vec::new();
    let mut throttled = None;
    for _ in 0..6 {
        let (status, headers, body) = call(&agent, &query, "GET", Some(busy), b"");
        statuses.push(status);
        if status == 429 {
            throttled = Some((headers, body));
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].iter().all(|&st| st == 429), "{statuses:?}");
    let (headers, body) = throttled.unwrap();
    let retry: u64 = header(&headers, "retry-after")[0].parse().unwrap();
    assert!((1..=4).contains(&retry), "Retry-After {retry}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "error", "{body}");

    // Another client is unaffected, and the probes are exempt.
    assert_eq!(
        call(&agent, &query, "GET", Some("Bearer other-secret"), b"").0,
        200
    );
    for _ in 0..10 {
        assert_eq!(call(&agent, &s.url("/-/healthy"), "GET", None, b"").0, 200);
    }

    let m = scrape(&agent, &s, Some("Bearer admin-secret"));
    assert_eq!(m.limit_hits("client_rate"), 3.0);

    // Once the client has waited, it is served again.
    std::thread::sleep(Duration::from_secs(retry));
    assert_eq!(call(&agent, &query, "GET", Some(busy), b"").0, 200);

    let (status, out) = s.terminate();
    assert!(status.success(), "{out}");
}

#[test]
fn rate_limit_without_auth_keys_on_the_peer_ip() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        &dir.path().join("data"),
        &["--rate-limit=1", "--rate-limit-burst=2"],
    );
    let agent = common::agent();
    let query = s.url("/api/v1/query?query=1");
    let statuses: Vec<u16> = (0..4)
        .map(|_| call(&agent, &query, "GET", None, b"").0)
        .collect();
    assert_eq!(statuses, [200, 200, 429, 429]);
    assert_eq!(call(&agent, &s.url("/-/ready"), "GET", None, b"").0, 200);
    let (status, out) = s.terminate();
    assert!(status.success(), "{out}");
}

//! Black-box: the files under `deploy/` work with the real binary. Every YAML parses;
//! the Kubernetes objects, the docker-compose file and the systemd unit use only flags
//! `tsdb start --help` lists, and the config, probes, ports and paths they name are
//! what a running tsdb accepts and serves; promtool accepts the Prometheus config and
//! rules, and every metric the rules use is in a live scrape; `systemd-analyze verify`
//! accepts the unit without a warning; the Grafana dashboard's expressions parse and
//! use only metrics a live scrape has. The Kubernetes objects' schema (API types, unknown
//! keys, selectors, references) is checked offline by `tests/k8s_schema.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use common::{BIN, Server};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every document of a YAML file.
fn yaml_docs(path: &Path) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(&read(path))
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// Every `.yaml`/`.yml` file under `dir`, sorted by path.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(yaml_files(&path));
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The long flags `tsdb start --help` lists.
fn start_flags() -> BTreeSet<String> {
    let out = Command::new(BIN)
        .args(["start", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let flags: BTreeSet<String> = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| {
            w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_string()
        })
        .collect();
    assert!(
        flags.contains("--data-dir") && flags.contains("--config"),
        "{flags:?}"
    );
    flags
}

/// Asserts every argument after `start` is a flag `tsdb start` has, and returns them
/// as flag → value (`None` for a bare flag).
fn check_start_args(what: &str, args: &[String]) -> BTreeMap<String, Option<String>> {
    assert_eq!(
        args.first().map(String::as_str),
        Some("start"),
        "{what}: {args:?}"
    );
    let flags = start_flags();
    let mut out = BTreeMap::new();
    for arg in &args[1..] {
        let (flag, value) = match arg.split_once('=') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (arg.as_str(), None),
        };
        assert!(
            flags.contains(flag),
            "{what}: `{flag}` is not a `tsdb start` flag"
        );
        out.insert(flag.to_string(), value);
    }
    out
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The port of a listen address such as `:8080`.
fn port_of(listen: &str) -> u64 {
    listen.rsplit(':').next().unwrap().parse().unwrap()
}

/// Starts tsdb with `args` (flags after `start`) on a temp data dir and a free
/// loopback port, which replace any `--listen`/`--data-dir` in `args`.
fn start_with(data: &Path, args: &BTreeMap<String, Option<String>>) -> Server {
    let args: Vec<String> = args
        .iter()
        .filter(|(f, _)| *f != "--listen" && *f != "--data-dir")
        .map(|(f, v)| match v {
            Some(v) => format!("{f}={v}"),
            None => f.clone(),
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(data, &args)
}

#[test]
fn every_yaml_under_deploy_parses() {
    let files = yaml_files(&repo().join("deploy"));
    assert!(files.len() >= 7, "{files:?}");
    for file in files {
        assert!(!yaml_docs(&file).is_empty(), "{} is empty", file.display());
    }
}

#[test]
fn kubernetes_objects_fit_the_binary() {
    let files = yaml_files(&repo().join("deploy/kubernetes"));
    let mut objects: Vec<(PathBuf, Value)> = Vec::new();
    for file in &files {
        for doc in yaml_docs(file) {
            objects.push((file.clone(), doc));
        }
    }
    let of_kind = |kind: &str| -> Vec<&Value> {
        objects
            .iter()
            .filter(|(_, o)| o["kind"] == kind)
            .map(|(_, o)| o)
            .collect()
    };
    for kind in ["Namespace", "ConfigMap", "StatefulSet", "Service"] {
        assert!(!of_kind(kind).is_empty(), "no {kind} in deploy/kubernetes");
    }
    for (file, o) in &objects {
        let api = match o["kind"].as_str() {
            Some("Namespace" | "ConfigMap" | "Service") => "v1",
            Some("StatefulSet") => "apps/v1",
            kind => panic!("{}: unexpected kind {kind:?}", file.display()),
        };
        assert_eq!(o["apiVersion"], api, "{}", file.display());
        assert!(o["metadata"]["name"].is_string(), "{}", file.display());
    }
    // `kubectl apply -f deploy/kubernetes/` applies files in name order: the Namespace
    // must come first, and everything else must be in it (the guide's `-n tsdb`).
    assert_eq!(
        objects[0].1["kind"],
        "Namespace",
        "{}",
        objects[0].0.display()
    );
    let ns = objects[0].1["metadata"]["name"].as_str().unwrap();
    assert_eq!(ns, "tsdb");
    for (file, o) in &objects[1..] {
        assert_eq!(o["metadata"]["namespace"], ns, "{}", file.display());
    }

    let [sts] = of_kind("StatefulSet")[..] else {
        panic!("one StatefulSet expected");
    };
    let pod = &sts["spec"]["template"];
    let pod_labels = pod["metadata"]["labels"].as_object().unwrap();
    assert_eq!(pod_labels["app"], "tsdb");
    for (k, v) in sts["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&pod_labels[k], v, "selector label {k}");
    }
    let [container] = &pod["spec"]["containers"].as_array().unwrap()[..] else {
        panic!("one container expected");
    };

    // Non-root, with the uid the image's Dockerfile creates.
    let sc = &pod["spec"]["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    let uid = sc["runAsUser"].as_u64().unwrap();
    assert_ne!(uid, 0);
    let dockerfile = read(&repo().join("deploy/docker/Dockerfile"));
    assert!(
        dockerfile.contains(&format!("--uid {uid} "))
            && dockerfile.contains(&format!("USER {uid}")),
        "the Dockerfile's user is not uid {uid}"
    );
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    for k in ["requests", "limits"] {
        for r in ["cpu", "memory"] {
            assert!(
                container["resources"][k][r].is_string(),
                "resources.{k}.{r}"
            );
        }
    }

    // The args: only real flags, and the config file comes from the ConfigMap.
    let args = check_start_args("statefulset args", &strings(&container["args"]));
    let config_path = PathBuf::from(args["--config"].clone().expect("--config=PATH"));
    let mounts = container["volumeMounts"].as_array().unwrap();
    let mount_of = |dir: &Path| -> &Value {
        mounts
            .iter()
            .filter(|m| dir.starts_with(m["mountPath"].as_str().unwrap()))
            .max_by_key(|m| m["mountPath"].as_str().unwrap().len())
            .unwrap_or_else(|| panic!("{} is on no volume", dir.display()))
    };
    let config_mount = mount_of(&config_path);
    let volume = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == config_mount["name"])
        .unwrap();
    let cm_name = volume["configMap"]["name"].as_str().unwrap();
    let cm = of_kind("ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"] == cm_name)
        .unwrap_or_else(|| panic!("no ConfigMap {cm_name}"));
    let file_name = config_path.file_name().unwrap().to_str().unwrap();
    let config_text = cm["data"][file_name].as_str().unwrap();
    let config: Value = serde_saphyr::from_str(config_text).unwrap();

    // The data dir is on the volumeClaimTemplate's volume.
    let data_dir = match &args.get("--data-dir") {
        Some(Some(d)) => d.clone(),
        _ => config["storage"]["data_dir"].as_str().unwrap().to_string(),
    };
    let data_mount = mount_of(Path::new(&data_dir));
    let claims = sts["spec"]["volumeClaimTemplates"].as_array().unwrap();
    assert!(
        claims
            .iter()
            .any(|c| c["metadata"]["name"] == data_mount["name"]),
        "the data dir {data_dir} is not on a volumeClaimTemplate"
    );

    // Ports and probes: what the configured listen address serves.
    let listen = args
        .get("--listen")
        .cloned()
        .flatten()
        .or_else(|| config["server"]["listen"].as_str().map(String::from))
        .unwrap_or_else(|| ":8080".into());
    let port = port_of(&listen);
    let [cport] = &container["ports"].as_array().unwrap()[..] else {
        panic!("one container port expected");
    };
    assert_eq!(cport["containerPort"].as_u64(), Some(port));
    let resolves_to_port = |p: &Value| p.as_u64() == Some(port) || *p == cport["name"];
    let liveness = &container["livenessProbe"]["httpGet"];
    let readiness = &container["readinessProbe"]["httpGet"];
    assert_eq!(liveness["path"], "/-/healthy");
    assert_eq!(readiness["path"], "/-/ready");
    assert!(resolves_to_port(&liveness["port"]), "{liveness}");
    assert!(resolves_to_port(&readiness["port"]), "{readiness}");

    // Services select the pod and reach its port; the StatefulSet's governing one is headless.
    let services = of_kind("Service");
    for svc in &services {
        for (k, v) in svc["spec"]["selector"].as_object().unwrap() {
            assert_eq!(&pod_labels[k], v, "Service selector {k}");
        }
        for p in svc["spec"]["ports"].as_array().unwrap() {
            assert!(resolves_to_port(&p["targetPort"]), "{p}");
        }
    }
    let governing = services
        .iter()
        .find(|s| s["metadata"]["name"] == sts["spec"]["serviceName"])
        .expect("the StatefulSet's serviceName is a Service");
    assert_eq!(governing["spec"]["clusterIP"], "None");
    assert!(
        services.iter().any(|s| s["metadata"]["name"] == "tsdb"
            && s["spec"]["ports"][0]["port"].as_u64() == Some(port))
    );

    // The real binary starts with the container's args and the ConfigMap's file, and
    // serves the probes and the configured metrics path.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(file_name);
    std::fs::write(&file, config_text).unwrap();
    let mut args = args;
    args.insert("--config".into(), Some(file.display().to_string()));
    let server = start_with(&dir.path().join("data"), &args);
    assert_eq!(server.get("/-/healthy").0, 200);
    assert_eq!(server.get("/-/ready").0, 200);
    let metrics_path = config["metrics"]["path"].as_str().unwrap_or("/metrics");
    assert_eq!(server.get(metrics_path).0, 200);
    // The file was read (an unknown key or bad value would have stopped start): its
    // retention is the one the server reports.
    let started = server.wait_log("starting TSDB server", std::time::Duration::from_secs(5));
    assert_eq!(
        started["retention"], config["storage"]["retention"],
        "{started}"
    );
    server.assert_no_unexpected_warnings(&[]);
    let (status, out) = server.terminate();
    assert!(status.success(), "{out}");
}

/// The metric names a PromQL expression selects: identifiers outside label matchers,
/// ranges, strings and `by (...)`-style lists that are not function calls, keywords
/// or numbers.
fn metric_names(expr: &str) -> BTreeSet<String> {
    #[rustfmt::skip]
    const KEYWORDS: &[&str] = &[
        "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
        "group_left", "group_right", "inf", "nan",
        // Aggregations, which may be followed by `by (...)` rather than `(`.
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
        "bottomk", "topk", "quantile",
    ];
    const LISTS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let b = expr.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let skip_to = |i: usize, close: u8| -> usize {
        let mut j = i;
        while j < b.len() && b[j] != close {
            if b[j] == b'"' {
                j += 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
            }
            j += 1;
        }
        j + 1
    };
    while i < b.len() {
        let c = b[i];
        if c == b'{' {
            i = skip_to(i + 1, b'}');
        } else if c == b'[' {
            i = skip_to(i + 1, b']');
        } else if c == b'"' {
            i = skip_to(i + 1, b'"');
        } else if c.is_ascii_digit() || c == b'.' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                i += 1;
            }
            let word = &expr[start..i];
            let mut j = i;
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            let call = j < b.len() && b[j] == b'(';
            if LISTS.contains(&word) && call {
                i = skip_to(j + 1, b')');
            } else if !call && !KEYWORDS.contains(&word.to_ascii_lowercase().as_str()) {
                names.insert(word.to_string());
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Exact `name="value"` matchers in an expression, per metric: (metric, label, value).
fn exact_matchers(expr: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(open) = rest.find('{') {
        let before = &rest[..open];
        let metric: String = before
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let close = rest[open..].find('}').unwrap() + open;
        for m in rest[open + 1..close].split(',') {
            if let Some((label, value)) = m.split_once('=')
                && !label.ends_with('!')
                && !value.starts_with('~')
            {
                let value = value.trim().trim_matches('"').to_string();
                out.push((metric.clone(), label.trim().to_string(), value));
            }
        }
        rest = &rest[close + 1..];
    }
    out
}

#[test]
fn metric_names_finds_selectors_only() {
    let expr = r#"sum by (instance, limit) (rate(tsdb_a_total{limit="x"}[5m])) > 1.5 * max without(shard) (b offset 1h) and on(job) up == 0"#;
    let want: BTreeSet<String> = ["tsdb_a_total", "b", "up"].map(String::from).into();
    assert_eq!(metric_names(expr), want);
    assert_eq!(
        exact_matchers(r#"up{job="tsdb", x!="y"} + c{r=~"a|b"}"#),
        vec![("up".into(), "job".into(), "tsdb".into())]
    );
}

fn run_promtool(args: &[&str]) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool is needed (apt-get install prometheus; .ci/test installs it): {e}")
        });
    assert!(
        out.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn prometheus_config_and_alerts_use_what_tsdb_serves() {
    run_promtool(&["check", "config", "deploy/prometheus/prometheus.yml"]);
    run_promtool(&["check", "rules", "deploy/prometheus/alerts.yml"]);

    let prom = &yaml_docs(&repo().join("deploy/prometheus/prometheus.yml"))[0];
    let [job] = &prom["scrape_configs"].as_array().unwrap()[..] else {
        panic!("one scrape job expected");
    };
    let job_name = job["job_name"].as_str().unwrap();
    let target = job["static_configs"][0]["targets"][0].as_str().unwrap();
    assert_eq!(job["metrics_path"], "/metrics");
    let url_path = |section: &str| -> String {
        let url = prom[section][0]["url"].as_str().unwrap();
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        assert_eq!(host, target, "{section} goes to the scraped tsdb");
        format!("/{path}")
    };
    assert_eq!(url_path("remote_write"), "/api/v1/write");
    assert_eq!(url_path("remote_read"), "/api/v1/read");

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--shards=2"]);
    // Both remote endpoints exist (an empty body is a bad request, not "no route").
    for path in ["/api/v1/write", "/api/v1/read"] {
        let (status, body) = server.post(path, "application/x-protobuf", b"");
        assert_eq!(status, 400, "POST {path}: {body}");
    }
    let scrape = server.metrics();
    let exported: BTreeSet<&str> = scrape.samples.iter().map(|s| s.name.as_str()).collect();

    let rules = &yaml_docs(&repo().join("deploy/prometheus/alerts.yml"))[0];
    let mut alerts = 0;
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let expr = rule["expr"].as_str().unwrap();
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{expr}");
            for name in &names {
                // `up` is Prometheus's own series for each scrape target.
                assert!(
                    name == "up" || exported.contains(name.as_str()),
                    "alert {}: {name} is not in tsdb's /metrics:\n{}",
                    rule["alert"],
                    scrape.text
                );
            }
            for (metric, label, value) in exact_matchers(expr) {
                if metric == "up" {
                    assert_eq!(
                        (label.as_str(), value.as_str()),
                        ("job", job_name),
                        "{expr}"
                    );
                } else {
                    assert!(
                        scrape.samples.iter().any(|s| s.name == metric
                            && s.labels.iter().any(|(l, v)| *l == label && *v == value)),
                        "{expr}: no {metric}{{{label}=\"{value}\"}} in /metrics"
                    );
                }
            }
            alerts += 1;
        }
    }
    assert!(alerts >= 5, "{alerts} alert rules");
    let (status, out) = server.terminate();
    assert!(status.success(), "{out}");
}

/// A systemd unit's `[Service]` settings, continuation lines joined, in order.
fn unit_settings(text: &str) -> Vec<(String, String)> {
    let joined = text.replace("\\\n", " ");
    let mut section = "";
    let mut out = Vec::new();
    for line in joined.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[Service]"
            && !line.starts_with('#')
            && let Some((k, v)) = line.split_once('=')
        {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// `systemd-analyze verify` on `unit` (written as `tsdb.service` in a temp dir):
/// whether it succeeded, and everything it printed.
fn systemd_verify(unit: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tsdb.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!("systemd-analyze is needed (apt-get install systemd; .ci/run installs it): {e}")
        });
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed)
}

#[test]
fn systemd_unit_verifies_and_its_exec_start_runs() {
    let text = read(&repo().join("deploy/systemd/tsdb.service"));
    let settings = unit_settings(&text);
    let get = |key: &str| -> Vec<&str> {
        settings
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let [exec] = get("ExecStart")[..] else {
        panic!("one ExecStart expected");
    };
    let words: Vec<String> = exec.split_whitespace().map(String::from).collect();
    assert_eq!(words[0], "/usr/local/bin/tsdb", "the guide's binary path");
    let args = check_start_args("ExecStart", &words[1..]);

    // The hardening the issue asks for.
    let user = get("User");
    assert!(matches!(user[..], [u] if u != "root"), "User={user:?}");
    assert_eq!(
        get("LimitMEMLOCK"),
        ["infinity"],
        "io_uring needs locked memory"
    );
    let nofile: u64 = get("LimitNOFILE")[0].parse().unwrap();
    assert!(nofile >= 65536, "LimitNOFILE={nofile}");
    assert_eq!(get("ProtectSystem"), ["strict"]);
    assert_eq!(get("NoNewPrivileges"), ["true"]);
    assert!(matches!(get("Restart")[..], ["always" | "on-failure"]));
    let data_dir = args["--data-dir"].clone().unwrap();
    let writable: Vec<&str> = get("ReadWritePaths")
        .iter()
        .flat_map(|v| v.split_whitespace())
        .collect();
    assert!(
        writable.iter().any(|w| Path::new(&data_dir).starts_with(w)),
        "--data-dir={data_dir} is not in ReadWritePaths={writable:?}"
    );

    // systemd accepts the unit without a single warning, with ExecStart pointing at the
    // binary under test; and it does warn about a mistyped setting here, so silence
    // means something.
    let unit = text.replace("/usr/local/bin/tsdb", BIN);
    let (ok, printed) = systemd_verify(&unit);
    assert!(
        ok && printed.trim().is_empty(),
        "systemd-analyze verify:\n{printed}"
    );
    let (_, printed) = systemd_verify(&unit.replace("LimitNOFILE=", "LimitNOFLE="));
    assert!(
        printed.contains("LimitNOFLE"),
        "a typo went unnoticed: {printed:?}"
    );

    // The ExecStart's flags start the real binary (on a temp dir and a free port).
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(&dir.path().join("data"), &args);
    assert_eq!(server.get("/-/healthy").0, 200);
    server.assert_no_unexpected_warnings(&[]);
    let (status, out) = server.terminate();
    assert!(status.success(), "{out}");
}

#[test]
fn docker_compose_builds_the_dockerfile_and_checks_health_on_what_tsdb_serves() {
    let compose_dir = repo().join("deploy/docker");
    let compose = &yaml_docs(&compose_dir.join("docker-compose.yml"))[0];
    let tsdb = &compose["services"]["tsdb"];

    // It builds the Dockerfile that is in the repository, from the repository root.
    let context = compose_dir.join(tsdb["build"]["context"].as_str().unwrap());
    let dockerfile = context.join(tsdb["build"]["dockerfile"].as_str().unwrap());
    assert_eq!(
        dockerfile.canonicalize().unwrap(),
        compose_dir.join("Dockerfile").canonicalize().unwrap()
    );
    assert!(context.join("Cargo.toml").exists(), "{}", context.display());
    let dockerfile_text = read(&dockerfile);
    let cmd_line = dockerfile_text
        .lines()
        .find(|l| l.starts_with("CMD "))
        .unwrap();
    let cmd: Value = serde_json::from_str(&cmd_line["CMD ".len()..]).unwrap();
    check_start_args("Dockerfile CMD", &strings(&cmd));

    // Its command, data volume and port are what tsdb takes and serves.
    let args = check_start_args("compose command", &strings(&tsdb["command"]));
    let data_dir = args["--data-dir"].clone().unwrap();
    let volumes = strings(&tsdb["volumes"]);
    let [volume] = &volumes[..] else {
        panic!("one volume expected: {volumes:?}");
    };
    let (name, target) = volume.split_once(':').unwrap();
    assert_eq!(target, data_dir, "the volume holds the data dir");
    assert!(compose["volumes"][name].is_null() && compose["volumes"].get(name).is_some());
    let port = port_of(args["--listen"].as_deref().unwrap());
    assert!(dockerfile_text.contains(&format!("EXPOSE {port}")));
    let ports = strings(&tsdb["ports"]);
    assert!(
        ports.iter().any(|p| p.ends_with(&format!(":{port}"))),
        "{ports:?}"
    );

    // Prometheus mounts the config this repository has, and scrapes this service.
    let prom = &compose["services"]["prometheus"];
    assert_eq!(prom["depends_on"]["tsdb"]["condition"], "service_healthy");
    for v in strings(&prom["volumes"]) {
        let host = v.split(':').next().unwrap();
        assert!(compose_dir.join(host).is_file(), "{v}");
    }
    let prom_config = read(&repo().join("deploy/prometheus/prometheus.yml"));
    assert!(prom_config.contains(&format!("\"tsdb:{port}\"")));

    // The healthcheck, run against a live tsdb (its port for the container's), says
    // healthy; pointed at a path tsdb does not serve, it says unhealthy.
    let test = strings(&tsdb["healthcheck"]["test"]);
    assert_eq!(test[..3], ["CMD", "bash", "-c"], "{test:?}");
    let script = &test[3];
    assert!(script.contains("/-/healthy"), "{script}");
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(&dir.path().join("data"), &args);
    let live_port = server.addr.rsplit(':').next().unwrap();
    let run = |script: &str| {
        Command::new("bash")
            .arg("-c")
            .arg(script.replace(&format!("/{port}"), &format!("/{live_port}")))
            .status()
            .unwrap()
            .success()
    };
    assert!(run(script), "healthcheck failed: {script}");
    assert!(!run(&script.replace("/-/healthy", "/-/nothing")));
    let (status, out) = server.terminate();
    assert!(status.success(), "{out}");
}

/// The Grafana dashboard: valid JSON of a recent schema with a Prometheus data source
/// variable and `job`/`instance` variables; every panel expression parses as PromQL
/// once Grafana's variables are put in, and every metric it names is in a live scrape
/// of tsdb.
#[test]
fn grafana_dashboard_uses_what_tsdb_serves() {
    let path = repo().join("deploy/grafana/tsdb-dashboard.json");
    let dash: Value = serde_json::from_str(&read(&path)).unwrap();
    assert!(dash["schemaVersion"].as_u64().unwrap() >= 36);
    let vars: BTreeMap<&str, &Value> = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    assert_eq!(vars["DS_PROMETHEUS"]["type"], "datasource");
    assert_eq!(vars["DS_PROMETHEUS"]["query"], "prometheus");
    for name in ["job", "instance"] {
        assert_eq!(vars[name]["type"], "query", "{name}");
    }

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--shards=2"]);
    let scrape = server.metrics();
    let exported: BTreeSet<&str> = scrape.samples.iter().map(|s| s.name.as_str()).collect();
    let mut panels = 0;
    let mut titles = BTreeSet::new();
    for panel in dash["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        let title = panel["title"].as_str().unwrap();
        assert!(titles.insert(title), "two panels titled {title}");
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title} has no query");
        for t in targets {
            let expr = t["expr"].as_str().unwrap();
            assert!(
                expr.contains(r#"job=~"$job""#) && expr.contains(r#"instance=~"$instance""#),
                "{title}: {expr} ignores the job/instance variables"
            );
            let concrete = expr
                .replace("$__rate_interval", "1m")
                .replace("$job", ".*")
                .replace("$instance", ".*");
            if let Err(e) = tsdb_engine::promql::parse(&concrete) {
                panic!("{title}: {expr} does not parse: {e}");
            }
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{title}: {expr}");
            for name in &names {
                assert!(
                    exported.contains(name.as_str()),
                    "panel {title}: {name} is not in tsdb's /metrics:\n{}",
                    scrape.text
                );
            }
        }
        panels += 1;
    }
    // The operations guide's key metrics, each on some panel.
    let text = serde_json::to_string(&dash["panels"]).unwrap();
    for metric in [
        "tsdb_samples_ingested_total",
        "tsdb_insert_duration_seconds_bucket",
        "tsdb_insert_errors_total",
        "tsdb_head_series",
        "tsdb_blocks_total",
        "tsdb_wal_size_bytes",
        "tsdb_queries_total",
        "tsdb_query_duration_seconds_bucket",
        "tsdb_query_errors_total",
        "tsdb_limit_hits_total",
        "tsdb_shard_read_only",
        "tsdb_wal_fsync_duration_seconds_bucket",
        "tsdb_compactions_total",
        "tsdb_memory_alloc_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "tsdb_goroutines",
    ] {
        assert!(text.contains(metric), "no panel shows {metric}");
    }
    assert!(panels >= 15, "{panels} panels");
    let (status, out) = server.terminate();
    assert!(status.success(), "{out}");
}

//! Black-box: every ingest format writes what it says, export and the series/label
//! routes read back exactly that, and bad input is refused whole.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]

mod common;

use common::{Server, points, remote_write_body, urlencode};

const T0: i64 = 1_700_000_000_000;

#[test]
fn remote_write_round_trips_through_export_series_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let samples: Vec<(i64, f64)> = (0..50).map(|i| (T0 + i * 10_000, i as f64 * 1.5)).collect();
    let body = remote_write_body(&[
        (
            vec![
                ("__name__", "node_cpu_seconds_total"),
                ("cpu", "0"),
                ("mode", "idle"),
            ],
            samples.clone(),
        ),
        (
            vec![
                ("__name__", "node_cpu_seconds_total"),
                ("cpu", "1"),
                ("mode", "idle"),
            ],
            samples.clone(),
        ),
        (vec![("__name__", "up"), ("job", "node")], vec![(T0, 1.0)]),
    ]);
    let (status, resp) = s.post("/api/v1/write", "application/x-protobuf", &body);
    assert_eq!(status, 204, "{resp}");

    let lines = s.export(r#"node_cpu_seconds_total{cpu="1"}"#);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["metric"]["mode"], "idle");
    assert_eq!(points(&lines[0]), samples);

    let series = s.api("/api/v1/series?match[]=node_cpu_seconds_total");
    assert_eq!(series.as_array().unwrap().len(), 2);
    assert_eq!(
        s.api("/api/v1/labels"),
        serde_json::json!(["__name__", "cpu", "job", "mode"])
    );
    assert_eq!(
        s.api("/api/v1/label/__name__/values"),
        serde_json::json!(["node_cpu_seconds_total", "up"])
    );
    assert_eq!(
        s.api("/api/v1/label/job/values?match[]=up"),
        serde_json::json!(["node"])
    );
    // Time bounds apply to export and series alike.
    let start = (T0 + 100_000) as f64 / 1000.0;
    let lines = s.export("up");
    assert_eq!(lines.len(), 1);
    let (_, body) = s.get(&format!("/api/v1/export?match[]=up&start={start}"));
    assert_eq!(body, "");
    let series = s.api(&format!("/api/v1/series?match[]=up&start={start}"));
    assert_eq!(series, serde_json::json!([]));
    s.assert_no_unexpected_warnings(&[]);
}

#[test]
fn influx_json_and_text_formats_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let influx = format!(
        "cpu,host=a,region=eu value=0.5 {}\ncpu,host=a,region=eu usage_user=12i,usage_idle=80.25 {}\n",
        T0 / 1000,
        T0 / 1000 + 10
    );
    let (status, resp) = s.post("/write?precision=s", "text/plain", influx.as_bytes());
    assert_eq!(status, 204, "{resp}");
    let (status, resp) = s.post(
        "/api/v2/write?precision=ms",
        "text/plain",
        format!("mem,host=b free=7 {T0}\n").as_bytes(),
    );
    assert_eq!(status, 204, "{resp}");
    let json = format!(
        "{{\"metric\":{{\"__name__\":\"temp\",\"room\":\"k\"}},\"values\":[20.5,21,\"NaN\"],\"timestamps\":[{},{},{}]}}\n",
        T0,
        T0 + 1000,
        T0 + 2000
    );
    let (status, resp) = s.post("/api/v1/import", "application/json", json.as_bytes());
    assert_eq!(status, 204, "{resp}");
    let text = format!(
        "# HELP http_requests_total x\n# TYPE http_requests_total counter\nhttp_requests_total{{code=\"200\",path=\"/a b\"}} 1027 {T0}\n"
    );
    let (status, resp) = s.post("/api/v1/import/prometheus", "text/plain", text.as_bytes());
    assert_eq!(status, 204, "{resp}");

    let cpu = s.export("cpu");
    assert_eq!(cpu.len(), 1);
    assert_eq!(points(&cpu[0]), vec![(T0, 0.5)]);
    assert_eq!(cpu[0]["metric"]["host"], "a");
    assert_eq!(
        points(&s.export("cpu_usage_user")[0]),
        vec![(T0 + 10_000, 12.0)]
    );
    assert_eq!(
        points(&s.export("cpu_usage_idle")[0]),
        vec![(T0 + 10_000, 80.25)]
    );
    assert_eq!(points(&s.export("mem_free")[0]), vec![(T0, 7.0)]);
    let temp = s.export("temp");
    assert_eq!(temp[0]["values"][0], 20.5);
    assert_eq!(temp[0]["values"][1].as_f64(), Some(21.0));
    assert_eq!(temp[0]["values"][2], "NaN");
    let http = s.export("http_requests_total");
    assert_eq!(http[0]["metric"]["path"], "/a b");
    assert_eq!(points(&http[0]), vec![(T0, 1027.0)]);

    // What export gives back imports again, unchanged.
    let everything = format!(
        "/api/v1/export?match[]={}",
        urlencode(r#"{__name__=~".+"}"#)
    );
    let (_, all) = s.get(&everything);
    let dir2 = tempfile::tempdir().unwrap();
    let s2 = Server::start(dir2.path(), &[]);
    let (status, resp) = s2.post("/api/v1/import", "application/json", all.as_bytes());
    assert_eq!(status, 204, "{resp}");
    let (_, again) = s2.get(&everything);
    assert_eq!(again, all);
    s.assert_no_unexpected_warnings(&[]);
}

#[test]
fn bad_input_is_refused_whole_with_prometheus_error_shape() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &["--max-labels-per-series=4", "--max-body-size=100000"],
    );
    let bad: Vec<(&str, &str, Vec<u8>)> = vec![
        ("/api/v1/write", "application/x-protobuf", b"not snappy".to_vec()),
        ("/write", "text/plain", format!("ok value=1 {T0}000000\nbroken value= 1\n").into_bytes()),
        ("/api/v1/import", "application/json", format!("{{\"metric\":{{\"__name__\":\"ok\"}},\"values\":[1],\"timestamps\":[{T0}]}}\n{{\"metric\":{{}}").into_bytes()),
        ("/api/v1/import/prometheus", "text/plain", format!("ok 1 {T0}\nbad{{ 2\n").into_bytes()),
        ("/api/v1/import/prometheus", "text/plain", format!("ok{{a=\"1\",b=\"2\",c=\"3\",d=\"4\"}} 1 {T0}\n").into_bytes()),
        ("/api/v1/import/prometheus", "text/plain", vec![b'#'; 200_000]),
    ];
    for (path, ct, body) in bad {
        let (status, resp) = s.post(path, ct, &body);
        assert!((400..500).contains(&status), "{path}: {status} {resp}");
        let v: serde_json::Value = serde_json::from_str(&resp).unwrap();
        assert_eq!(v["status"], "error", "{resp}");
        assert_eq!(v["errorType"], "bad_data", "{resp}");
        assert!(!v["error"].as_str().unwrap().is_empty());
    }
    // Nothing of any refused request was written.
    let all = format!(
        "/api/v1/series?match[]={}",
        urlencode(r#"{__name__=~".+"}"#)
    );
    assert_eq!(s.api(&all), serde_json::json!([]));
    let (status, resp) = s.get("/api/v1/series");
    assert_eq!(status, 400, "{resp}");
    let (status, _) = s.get(&format!(
        "/api/v1/series?match[]={}",
        urlencode("rate(x[5m])")
    ));
    assert_eq!(status, 400);
    let (status, _) = s.get("/nope");
    assert_eq!(status, 404);
    s.assert_no_unexpected_warnings(&[]);
}

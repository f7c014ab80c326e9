//! `/api/v1/status/buildinfo`, `runtimeinfo`, `flags`, `config` and `tsdb`:
//! Prometheus' field names and order, with tsdb's own values where it has them.
//!
//! Go-specific fields keep their names so clients that read them (Grafana's settings
//! page, promtool) find them, and get the closest honest value: the shard count for
//! `GOMAXPROCS` and `goroutineCount` (one pinned executor per shard), empty `GOGC`.

use hyper::Response;
use tsdb_engine::cardinality::Stat;
use tsdb_engine::mesh::ShardStatus;

use crate::http::{ApiError, Body, success_json};
use crate::render::{self, object, rfc3339_ms, string};
use crate::server::Ctx;

/// Build facts a release build can stamp through the environment of `cargo build`;
/// "unknown" otherwise, as Prometheus' own unstamped builds leave them empty.
const REVISION: &str = match option_env!("TSDB_BUILD_REVISION") {
    Some(v) => v,
    None => "unknown",
};
const BRANCH: &str = match option_env!("TSDB_BUILD_BRANCH") {
    Some(v) => v,
    None => "unknown",
};
const BUILD_USER: &str = match option_env!("TSDB_BUILD_USER") {
    Some(v) => v,
    None => "unknown",
};
const BUILD_DATE: &str = match option_env!("TSDB_BUILD_DATE") {
    Some(v) => v,
    None => "unknown",
};
/// `goVersion` names the toolchain; ours is Rust, at least the crate's MSRV.
const TOOLCHAIN: &str = concat!("rust ", env!("CARGO_PKG_RUST_VERSION"));

pub fn buildinfo() -> Result<Response<Body>, ApiError> {
    let data = object(&[
        ("version", string(env!("CARGO_PKG_VERSION"))),
        ("revision", string(REVISION)),
        ("branch", string(BRANCH)),
        ("buildUser", string(BUILD_USER)),
        ("buildDate", string(BUILD_DATE)),
        ("goVersion", string(TOOLCHAIN)),
    ]);
    Ok(success_json(&data, &[]))
}

pub fn runtimeinfo(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let info = &ctx.info;
    let shards = ctx.mesh.shards().to_string();
    let started = string(&rfc3339_ms(info.start_time_ms));
    let data = object(&[
        ("startTime", started.clone()),
        ("CWD", string(&info.cwd)),
        ("reloadConfigSuccess", "true".into()),
        ("lastConfigTime", started),
        ("corruptionCount", "0".into()),
        ("goroutineCount", shards.clone()),
        ("GOMAXPROCS", shards),
        ("GOGC", string("")),
        ("GODEBUG", string("")),
        ("storageRetention", string(&info.retention.current())),
    ]);
    Ok(success_json(&data, &[]))
}

/// Entries of each cardinality list, as Prometheus 2.42 reports them (it has no
/// `limit` parameter before 2.44).
const CARDINALITY_TOP: usize = 10;

/// `/api/v1/status/tsdb`: Prometheus' head stats and cardinality lists over every
/// shard's head, then tsdb's own `shards`: each shard's state, including whether it
/// refuses writes and why.
pub async fn tsdb(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let c = ctx.mesh.cardinality(CARDINALITY_TOP).await?;
    let shards = ctx.mesh.status().await?;
    let head = object(&[
        ("numSeries", c.num_series.to_string()),
        ("numLabelPairs", c.num_label_pairs.to_string()),
        ("chunkCount", c.chunk_count.to_string()),
        ("minTime", c.min_time_ms.to_string()),
        ("maxTime", c.max_time_ms.to_string()),
    ]);
    let shards: Vec<String> = shards.iter().map(shard_json).collect();
    let data = object(&[
        ("headStats", head),
        (
            "seriesCountByMetricName",
            stats_json(&c.series_count_by_metric_name),
        ),
        (
            "labelValueCountByLabelName",
            stats_json(&c.label_value_count_by_label_name),
        ),
        (
            "memoryInBytesByLabelName",
            stats_json(&c.memory_in_bytes_by_label_name),
        ),
        (
            "seriesCountByLabelValuePair",
            stats_json(&c.series_count_by_label_value_pair),
        ),
        ("shards", format!("[{}]", shards.join(","))),
    ]);
    Ok(success_json(&data, &[]))
}

fn stats_json(stats: &[Stat]) -> String {
    let items: Vec<String> = stats
        .iter()
        .map(|s| object(&[("name", string(&s.name)), ("value", s.value.to_string())]))
        .collect();
    format!("[{}]", items.join(","))
}

fn shard_json(s: &ShardStatus) -> String {
    let or_null = |v: Option<&str>| v.map_or_else(|| "null".to_string(), string);
    object(&[
        ("shard", s.shard.to_string()),
        ("readOnly", s.read_only_cause.is_some().to_string()),
        ("cause", or_null(s.read_only_cause.map(|c| c.as_str()))),
        ("readOnlyPersisted", s.read_only_persisted.to_string()),
        ("reason", or_null(s.read_only.as_deref())),
        ("headSeries", s.head_series.to_string()),
        ("headSamples", s.head_samples.to_string()),
        ("headChunks", s.head_chunks.to_string()),
        ("blocks", s.blocks.to_string()),
        ("blockBytes", s.block_bytes.to_string()),
        ("walBytes", s.wal_bytes.to_string()),
        ("walWriteErrors", s.wal_write_errors.to_string()),
        ("walFsyncErrors", s.wal_fsync_errors.to_string()),
    ])
}

/// The flag and the YAML key of the one option an admin route changes live.
const RETENTION_FLAG: &str = "retention";
const RETENTION_KEY: &str = "storage.retention";

/// `settings` with `key`'s value replaced by the retention in force.
fn live(ctx: &Ctx, settings: &[(String, String)], key: &str) -> Vec<(String, String)> {
    settings
        .iter()
        .map(|(k, v)| {
            let v = if k == key {
                ctx.info.retention.current()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

/// Every option and its effective value, as strings; keys sorted, as Go writes a map.
/// The retention is the one in force (`POST /api/v1/admin/retention` changes it).
pub fn flags(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let map: serde_json::Map<String, serde_json::Value> =
        live(ctx, &ctx.info.flags, RETENTION_FLAG)
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
    Ok(success_json(
        &render::json_value(&serde_json::Value::Object(map)),
        &[],
    ))
}

/// `{"yaml": …}`: the effective configuration as a YAML file that `--config` reads.
pub fn config(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let settings = live(ctx, &ctx.info.config, RETENTION_KEY);
    let data = object(&[("yaml", string(&config_yaml(&settings)))]);
    Ok(success_json(&data, &[]))
}

/// Renders `section.key` → value pairs as YAML, one mapping per section in the order
/// sections first appear. Values that YAML would read as something else are quoted.
pub fn config_yaml(settings: &[(String, String)]) -> String {
    let mut sections: Vec<(&str, Vec<(&str, &str)>)> = Vec::new();
    for (key, value) in settings {
        let (section, name) = key.split_once('.').unwrap_or(("", key.as_str()));
        match sections.iter_mut().find(|(s, _)| *s == section) {
            Some((_, entries)) => entries.push((name, value)),
            None => sections.push((section, vec![(name, value)])),
        }
    }
    let mut out = String::new();
    for (section, entries) in sections {
        let indent = if section.is_empty() {
            ""
        } else {
            out.push_str(section);
            out.push_str(":\n");
            "  "
        };
        for (name, value) in entries {
            out.push_str(indent);
            out.push_str(name);
            out.push_str(": ");
            out.push_str(&yaml_scalar(value));
            out.push('\n');
        }
    }
    out
}

/// A plain YAML scalar when it is unambiguous (words, numbers, durations, sizes,
/// paths), else a double-quoted one (JSON escapes are valid YAML escapes).
fn yaml_scalar(v: &str) -> String {
    let plain = v
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '/' || c == '.' || c == '_')
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'));
    if plain { v.to_string() } else { string(v) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_renders_as_sectioned_yaml() {
        let settings: Vec<(String, String)> = [
            ("server.listen", ":8080"),
            ("server.shards", "4"),
            ("storage.data_dir", "/var/lib/tsdb"),
            ("storage.retention", "30d"),
            ("wal.enabled", "true"),
            ("server.read_timeout", "30s"),
            ("logging.output", "a \"b\""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            config_yaml(&settings),
            "server:\n  listen: \":8080\"\n  shards: 4\n  read_timeout: 30s\n\
             storage:\n  data_dir: /var/lib/tsdb\n  retention: 30d\n\
             wal:\n  enabled: true\n\
             logging:\n  output: \"a \\\"b\\\"\"\n"
        );
        assert_eq!(yaml_scalar(""), "\"\"");
        assert_eq!(yaml_scalar("-x"), "\"-x\"");
    }
}

//! The YAML configuration file (`tsdb start --config=/etc/tsdb/tsdb.yaml`).
//!
//! The file is read in two steps. serde-saphyr turns the text into a `serde_json::Value`
//! tree, reporting syntax errors and duplicate keys with line and column. Then each level
//! is decoded into a struct with `deny_unknown_fields`, one level at a time, so that an
//! unknown key can be reported with its full path (`wal.foo`), which serde alone does
//! not give. The leaves stay `Value`s: `super` parses them with the same functions as
//! flags and environment variables, naming the key in any error.
//!
//! Relative paths in the file are kept as written, i.e. relative to the working
//! directory, the same as the equivalent flag.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ConfigError, Origin};

/// A configuration file larger than this is surely not one; refusing it early bounds
/// the memory a mistaken `--config=/var/log/huge.log` can take.
const FILE_BYTES_MAX: u64 = 1 << 20;

/// A loaded configuration file: where it came from and its settings.
#[derive(Debug)]
pub(super) struct File {
    pub path: PathBuf,
    pub sections: Sections,
}

/// The top level of the file: only the section names, each kept undecoded until its
/// own struct decodes it under its own name.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TopLevel {
    server: Option<Value>,
    storage: Option<Value>,
    wal: Option<Value>,
    compaction: Option<Value>,
    logging: Option<Value>,
    metrics: Option<Value>,
    limits: Option<Value>,
    query: Option<Value>,
    auth: Option<Value>,
}

/// Every section of the file; an absent section is all `None`.
#[derive(Debug, Default)]
pub(super) struct Sections {
    pub server: ServerSection,
    pub storage: StorageSection,
    pub wal: WalSection,
    pub compaction: CompactionSection,
    pub logging: LoggingSection,
    pub metrics: MetricsSection,
    pub limits: LimitsSection,
    pub query: QuerySection,
    pub auth: AuthSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct ServerSection {
    pub listen: Option<Value>,
    pub read_timeout: Option<Value>,
    pub write_timeout: Option<Value>,
    pub max_connections: Option<Value>,
    pub shards: Option<Value>,
    pub io_driver: Option<Value>,
    pub tls_cert: Option<Value>,
    pub tls_key: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct StorageSection {
    pub data_dir: Option<Value>,
    pub retention: Option<Value>,
    pub memtable_size: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct WalSection {
    pub enabled: Option<Value>,
    pub dir: Option<Value>,
    pub segment_size: Option<Value>,
    pub sync: Option<Value>,
    pub sync_interval: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct CompactionSection {
    pub enabled: Option<Value>,
    pub interval: Option<Value>,
    pub concurrency: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct LoggingSection {
    pub level: Option<Value>,
    pub format: Option<Value>,
    pub output: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct MetricsSection {
    pub enabled: Option<Value>,
    pub path: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct LimitsSection {
    pub max_body_size: Option<Value>,
    pub max_series_per_request: Option<Value>,
    pub max_labels_per_series: Option<Value>,
    pub max_label_name_length: Option<Value>,
    pub max_label_value_length: Option<Value>,
    pub max_series: Option<Value>,
    pub max_inflight_body_size: Option<Value>,
    pub rate_limit: Option<Value>,
    pub rate_limit_burst: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct QuerySection {
    pub timeout: Option<Value>,
    pub max_samples: Option<Value>,
    pub max_regex_matchers: Option<Value>,
    pub lookback_delta: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct AuthSection {
    pub file: Option<Value>,
}

/// Reads and decodes the file at `path`.
pub(super) fn load(path: &Path) -> Result<File, ConfigError> {
    let file_error = |reason: String| ConfigError::File {
        file: path.to_owned(),
        reason,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(FILE_BYTES_MAX + 1).read_to_string(&mut text))
        .map_err(|e| file_error(format!("cannot read: {e}")))?;
    if text.len() as u64 > FILE_BYTES_MAX {
        return Err(file_error(format!(
            "larger than {} bytes; is this the configuration file?",
            FILE_BYTES_MAX
        )));
    }
    let sections = parse(path, &text)?;
    Ok(File {
        path: path.to_owned(),
        sections,
    })
}

/// Decodes the text of a configuration file; `path` is only used in errors.
pub(super) fn parse(path: &Path, text: &str) -> Result<Sections, ConfigError> {
    let tree: Value = serde_saphyr::from_str(text).map_err(|e| {
        // One line with line and column, because errors go to a log or a terminal
        // where a multi-line source snippet would be split or interleaved.
        let formatter = serde_saphyr::UserMessageFormatter;
        let mut options = serde_saphyr::RenderOptions::new(&formatter);
        options.snippets = serde_saphyr::SnippetMode::Off;
        ConfigError::File {
            file: path.to_owned(),
            reason: e.render_with_options(options),
        }
    })?;
    let top: TopLevel = match tree {
        // An empty file, or one with only comments, sets nothing.
        Value::Null => return Ok(Sections::default()),
        // serde would happily decode a sequence into a struct by position; refuse it.
        Value::Object(_) => decode(path, "", tree)?,
        _ => {
            return Err(ConfigError::File {
                file: path.to_owned(),
                reason: "expected a mapping of sections (server, storage, wal, …) \
                         at the top level"
                    .to_owned(),
            });
        }
    };
    Ok(Sections {
        server: section(path, "server", top.server)?,
        storage: section(path, "storage", top.storage)?,
        wal: section(path, "wal", top.wal)?,
        compaction: section(path, "compaction", top.compaction)?,
        logging: section(path, "logging", top.logging)?,
        metrics: section(path, "metrics", top.metrics)?,
        limits: section(path, "limits", top.limits)?,
        query: section(path, "query", top.query)?,
        auth: section(path, "auth", top.auth)?,
    })
}

fn section<T: DeserializeOwned + Default>(
    path: &Path,
    name: &str,
    value: Option<Value>,
) -> Result<T, ConfigError> {
    match value {
        // `wal:` with nothing under it is null: the section is present but sets nothing.
        None | Some(Value::Null) => Ok(T::default()),
        Some(value @ Value::Object(_)) => decode(path, &format!("{name}."), value),
        Some(other) => Err(ConfigError::InvalidValue {
            origin: Origin::File {
                file: path.to_owned(),
                key: name.to_owned(),
            },
            value: display_value(&other),
            reason: "expected a mapping of keys".to_owned(),
        }),
    }
}

/// Decodes one mapping, turning serde's "unknown field" into an unknown key with its
/// full path (`prefix` is `""` at the top level, `"wal."` inside `wal`).
fn decode<T: DeserializeOwned>(path: &Path, prefix: &str, value: Value) -> Result<T, ConfigError> {
    serde_json::from_value(value).map_err(|e| {
        let message = e.to_string();
        // serde's `de::Error::unknown_field` message, stable across serde 1.x:
        // "unknown field `foo`, expected one of `a`, `b`".
        let unknown = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once("`, "));
        match unknown {
            Some((key, expected)) => ConfigError::UnknownKey {
                file: path.to_owned(),
                key: format!("{prefix}{key}"),
                expected: expected.to_owned(),
            },
            None => ConfigError::File {
                file: path.to_owned(),
                reason: format!("{prefix}{message}"),
            },
        }
    })
}

/// A YAML value as it would appear in an error message: strings quoted, the rest as
/// JSON (numbers bare, `true`, `[1,2]`).
pub(super) fn display_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Sections, ConfigError> {
        parse(Path::new("/etc/tsdb.yaml"), text)
    }

    #[test]
    fn empty_and_comment_only_files_set_nothing() {
        for text in ["", "# nothing\n", "---\n"] {
            let s = parse_str(text).unwrap();
            assert!(s.server.listen.is_none());
            assert!(s.wal.enabled.is_none());
        }
    }

    #[test]
    fn unknown_keys_are_named_with_their_path() {
        let cases = [
            (
                "wal:\n  foo: 1\n",
                "/etc/tsdb.yaml: unknown key wal.foo; expected one of",
            ),
            (
                "foo:\n  bar: 1\n",
                "/etc/tsdb.yaml: unknown key foo; expected one of",
            ),
            (
                "server:\n  listen: :1\n  tls_certificate: x\n",
                "unknown key server.tls_certificate;",
            ),
            ("logging:\n  levle: info\n", "unknown key logging.levle;"),
            ("limits:\n  max_body: 1\n", "unknown key limits.max_body;"),
        ];
        for (text, want) in cases {
            let err = parse_str(text).unwrap_err().to_string();
            assert!(
                err.starts_with(want) || err.contains(want),
                "{text:?}: {err}"
            );
        }
        let err = parse_str("metrics:\n  pth: /x\n").unwrap_err().to_string();
        assert!(err.contains("`enabled` or `path`"), "{err}");
    }

    #[test]
    fn sections_must_be_mappings() {
        let err = parse_str("wal: true\n").unwrap_err().to_string();
        assert_eq!(
            err,
            "/etc/tsdb.yaml: invalid value for wal: true: expected a mapping of keys"
        );
        let err = parse_str("wal: [true, /x]\n").unwrap_err().to_string();
        assert!(err.contains("invalid value for wal:"), "{err}");
        let err = parse_str("- server\n").unwrap_err().to_string();
        assert!(err.contains("expected a mapping of sections"), "{err}");
        let err = parse_str("just text\n").unwrap_err().to_string();
        assert!(err.contains("expected a mapping of sections"), "{err}");
    }

    #[test]
    fn syntax_errors_and_duplicates_name_the_file_and_line() {
        let err = parse_str("wal:\n  enabled: [true\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/etc/tsdb.yaml: "), "{err}");
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
        let err = parse_str("wal:\n  enabled: true\n  enabled: false\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn null_sections_and_keys_are_unset() {
        let s = parse_str("wal:\nstorage:\n  retention:\n").unwrap();
        assert!(s.wal.enabled.is_none());
        assert!(s.storage.retention.is_none());
    }

    #[test]
    fn missing_file_is_named() {
        let err = load(Path::new("/nonexistent/tsdb.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/nonexistent/tsdb.yaml: cannot read: "),
            "{err}"
        );
    }

    #[test]
    fn oversized_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.yaml");
        let text = format!(
            "# {}\n",
            "x".repeat(usize::try_from(FILE_BYTES_MAX).unwrap())
        );
        std::fs::write(&path, text).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("larger than"), "{err}");
    }
}

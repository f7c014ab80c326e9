//! `tsdb snapshot`, `tsdb export` and `tsdb import`: a running server's snapshot,
//! export and import routes, driven from the command line through [`Client`].
//!
//! Exit statuses: 0 = done, 1 = the server refused (its error is printed), 2 = usage,
//! I/O or connection error. Errors are one line on stderr.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::ExitCode;

use crate::client::{Client, ClientError, encode_query_value};
use crate::config::tools::{ExportArgs, ImportArgs, SnapshotArgs};
use crate::{EXIT_BAD, EXIT_ERROR};

/// An import request holds at most this many lines and bytes (unless one line alone is
/// larger): well under the server's default body limit (64 MiB, `--max-body-size`),
/// and a refused batch names a range small enough to look at.
pub const IMPORT_BATCH_LINES: usize = 10_000;
pub const IMPORT_BATCH_BYTES: usize = 4 << 20;

fn client_or_exit(cmd: &str, args: &crate::config::tools::ServerArgs) -> Result<Client, ExitCode> {
    Client::new(args).map_err(|e| {
        eprintln!("tsdb {cmd}: {e}");
        ExitCode::from(EXIT_ERROR)
    })
}

fn fail(cmd: &str, e: &ClientError) -> ExitCode {
    eprintln!("tsdb {cmd}: {e}");
    ExitCode::from(e.exit_code())
}

fn print(cmd: &str, text: &str) -> ExitCode {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tsdb {cmd}: write to stdout: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// `tsdb snapshot [--skip-head] [--json]`.
pub fn snapshot(args: &SnapshotArgs) -> ExitCode {
    let client = match client_or_exit("snapshot", &args.server) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let path = format!("/api/v1/admin/snapshot?skip_head={}", args.skip_head);
    let body = match client.post(&path, "application/x-www-form-urlencoded", b"") {
        Ok(b) => b,
        Err(e) => return fail("snapshot", &e),
    };
    if args.json {
        let mut text = String::from_utf8_lossy(&body).trim_end().to_owned();
        text.push('\n');
        return print("snapshot", &text);
    }
    let answer: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("tsdb snapshot: the server's answer is not JSON: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let Some(name) = answer["data"]["name"].as_str() else {
        eprintln!("tsdb snapshot: the server's answer names no snapshot: {answer}");
        return ExitCode::from(EXIT_ERROR);
    };
    let dir = snapshot_dir(&client, name);
    print("snapshot", &format!("snapshot {name}\npath {dir}\n"))
}

/// `<data-dir>/snapshots/<name>` with the server's data dir (made absolute with its
/// working directory), or `snapshots/<name>` when the server does not say.
fn snapshot_dir(client: &Client, name: &str) -> String {
    let relative = Path::new(tsdb_engine::layout::SNAPSHOTS_DIR).join(name);
    let data_dir = client
        .get_data("/api/v1/status/flags")
        .ok()
        .and_then(|d| d["data-dir"].as_str().map(std::path::PathBuf::from));
    let Some(data_dir) = data_dir else {
        return relative.display().to_string();
    };
    let absolute = if data_dir.is_absolute() {
        data_dir
    } else {
        match client
            .get_data("/api/v1/status/runtimeinfo")
            .ok()
            .and_then(|d| d["CWD"].as_str().map(std::path::PathBuf::from))
        {
            Some(cwd) => cwd.join(data_dir),
            None => data_dir,
        }
    };
    absolute.join(relative).display().to_string()
}

/// `tsdb export [--match S]... [--start T] [--end T] [--output FILE]`.
pub fn export(args: &ExportArgs) -> ExitCode {
    if let Some(data_dir) = &args.data_dir {
        return match export_offline(args, data_dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err((code, message)) => {
                eprintln!("tsdb export: {message}");
                ExitCode::from(code)
            }
        };
    }
    let client = match client_or_exit("export", &args.server) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut query: Vec<String> = args
        .matches
        .iter()
        .map(|m| format!("match[]={}", encode_query_value(m)))
        .collect();
    if let Some(s) = &args.start {
        query.push(format!("start={}", encode_query_value(s)));
    }
    if let Some(e) = &args.end {
        query.push(format!("end={}", encode_query_value(e)));
    }
    let path = if query.is_empty() {
        "/api/v1/export".to_owned()
    } else {
        format!("/api/v1/export?{}", query.join("&"))
    };
    let mut body = match client.get(&path) {
        Ok(b) => b,
        Err(e) => return fail("export", &e),
    };
    let copied = match &args.output {
        None => std::io::copy(&mut body, &mut std::io::stdout().lock()).map_err(|e| e.to_string()),
        Some(file) => copy_to_file(&mut body, file),
    };
    match copied {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tsdb export: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Streams into `path`, removing it again when the stream fails, so a file left behind
/// is always a whole export.
fn copy_to_file(body: &mut impl std::io::Read, path: &Path) -> Result<u64, String> {
    let result = std::fs::File::create(path)
        .map_err(|e| format!("create {}: {e}", path.display()))
        .and_then(|file| {
            let mut out = std::io::BufWriter::new(file);
            let n = std::io::copy(body, &mut out)
                .map_err(|e| format!("export to {}: {e}", path.display()))?;
            let file = out
                .into_inner()
                .map_err(|e| format!("write {}: {}", path.display(), e.error()))?;
            file.sync_all()
                .map_err(|e| format!("sync {}: {e}", path.display()))?;
            Ok(n)
        });
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// `tsdb import [FILE|-]`.
pub fn import(args: &ImportArgs) -> ExitCode {
    let client = match client_or_exit("import", &args.server) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let input: Box<dyn BufRead> = if args.file.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        match std::fs::File::open(&args.file) {
            Ok(f) => Box::new(BufReader::new(f)),
            Err(e) => {
                eprintln!("tsdb import: open {}: {e}", args.file.display());
                return ExitCode::from(EXIT_ERROR);
            }
        }
    };
    match import_lines(&client, input) {
        Ok(s) => print(
            "import",
            &format!(
                "imported {} lines in {} requests to {}\n",
                s.lines,
                s.batches,
                client.url()
            ),
        ),
        Err((code, message)) => {
            eprintln!("tsdb import: {message}");
            ExitCode::from(code)
        }
    }
}

/// What an import sent.
#[derive(Debug, Default)]
struct Sent {
    lines: usize,
    batches: usize,
}

/// A batch of whole lines and the (1-based, inclusive) line numbers it spans.
struct Batch {
    body: Vec<u8>,
    first_line: usize,
    last_line: usize,
    lines: usize,
}

fn import_lines(client: &Client, mut input: Box<dyn BufRead>) -> Result<Sent, (u8, String)> {
    let mut sent = Sent::default();
    let mut batch = Batch {
        body: Vec::new(),
        first_line: 1,
        last_line: 0,
        lines: 0,
    };
    let mut line = Vec::new();
    let mut line_no = 0usize;
    loop {
        line.clear();
        let n = input.read_until(b'\n', &mut line).map_err(|e| {
            (
                EXIT_ERROR,
                format!(
                    "reading line {}: {e}; {}",
                    line_no + 1,
                    imported_before(batch.first_line)
                ),
            )
        })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        let full = batch.lines >= IMPORT_BATCH_LINES
            || (batch.lines > 0 && batch.body.len() + line.len() > IMPORT_BATCH_BYTES);
        if full {
            send(client, &batch, &mut sent)?;
            batch.body.clear();
            batch.lines = 0;
        }
        if batch.lines == 0 {
            batch.first_line = line_no;
        }
        batch.body.extend_from_slice(&line);
        batch.lines += 1;
        batch.last_line = line_no;
    }
    if batch.lines > 0 {
        send(client, &batch, &mut sent)?;
    }
    Ok(sent)
}

fn imported_before(first_line: usize) -> String {
    if first_line <= 1 {
        "nothing was imported".to_owned()
    } else {
        format!("lines 1-{} were imported", first_line - 1)
    }
}

fn send(client: &Client, batch: &Batch, sent: &mut Sent) -> Result<(), (u8, String)> {
    match client.post("/api/v1/import", "application/x-ndjson", &batch.body) {
        Ok(_) => {
            sent.lines += batch.lines;
            sent.batches += 1;
            Ok(())
        }
        Err(e) => {
            let code = e.exit_code();
            let verb = if code == EXIT_BAD {
                "refused"
            } else {
                "failed"
            };
            Err((
                code,
                format!(
                    "lines {}-{} were not imported ({verb}: {e}); {}",
                    batch.first_line,
                    batch.last_line,
                    imported_before(batch.first_line)
                ),
            ))
        }
    }
}

/// `tsdb export --data-dir DIR`: the engine's offline read, rendered as the export
/// route renders it.
fn export_offline(args: &ExportArgs, data_dir: &Path) -> Result<(), (u8, String)> {
    use tsdb_net::params::{MAX_TIME_MS, MIN_TIME_MS, parse_selector, parse_time};
    let usage = |m: String| (EXIT_ERROR, m);
    let mut sets = Vec::new();
    for m in &args.matches {
        sets.extend(parse_selector(m).map_err(|e| usage(format!("--match {m:?}: {e}")))?);
    }
    if sets.is_empty() {
        let all =
            tsdb_engine::Matcher::new("__name__", "=~", ".+").map_err(|e| usage(e.to_string()))?;
        sets.push(vec![all]);
    }
    let time = |t: &Option<String>, flag: &str, default: i64| match t {
        Some(t) => parse_time(t).map_err(|e| usage(format!("--{flag}: {e}"))),
        None => Ok(default),
    };
    let start = time(&args.start, "start", MIN_TIME_MS)?;
    let end = time(&args.end, "end", MAX_TIME_MS)?;
    if !data_dir.is_dir() {
        return Err(usage(format!(
            "--data-dir {}: not a directory",
            data_dir.display()
        )));
    }
    let _lock = crate::run::lock_data_dir(data_dir).map_err(|e| match e {
        crate::run::LockError::InUse(m) => (
            EXIT_BAD,
            format!("{m}; export from the running server with --url instead"),
        ),
        crate::run::LockError::Io(m) => (EXIT_ERROR, m),
    })?;
    let wal_root = args
        .wal_dir
        .clone()
        .unwrap_or_else(|| data_dir.join(tsdb_engine::layout::WAL_DIR));
    let read = tsdb_engine::offline_read::read_offline(
        &tsdb_engine::storage::DiskStorage,
        data_dir,
        &wal_root,
        &sets,
        start,
        end,
    )
    .map_err(|e| match e {
        tsdb_engine::Error::Io { .. } => (EXIT_ERROR, e.to_string()),
        _ => (EXIT_BAD, e.to_string()),
    })?;
    let mut out = Vec::new();
    for s in &read.series {
        tsdb_net::wire::json_lines::write_series(&mut out, &s.labels, &s.samples);
    }
    match &args.output {
        None => std::io::stdout()
            .lock()
            .write_all(&out)
            .map_err(|e| (EXIT_ERROR, format!("write to stdout: {e}")))?,
        Some(file) => {
            copy_to_file(&mut out.as_slice(), file).map_err(|e| (EXIT_ERROR, e))?;
        }
    }
    for (shard, d) in &read.wal_damage {
        eprintln!(
            "tsdb export: WAL damage shard={shard} segment={} offset={} bytes_dropped={} reason={}",
            d.segment, d.offset, d.bytes_dropped, d.reason
        );
    }
    match read.wal_damage.len() {
        0 => Ok(()),
        n => Err((
            EXIT_BAD,
            format!(
                "{n} WAL damage(s): everything readable was exported, the records behind each damage were not (tsdb inspect-wal {} says more)",
                wal_root.display()
            ),
        )),
    }
}

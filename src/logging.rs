//! Log lines of the `tsdb` binary: a `tracing` layer that writes one line per event, as
//! JSON (the default, for `jq` and log shippers) or as human-readable text.
//!
//! JSON: `{"level":"info","ts":"2025-01-15T10:30:45.123Z","msg":"starting TSDB server",
//! "listen_addr":":8080"}`: the level in lowercase, the time in RFC 3339 UTC with
//! milliseconds, the event's message, then each field under its own name: integers,
//! floats and booleans as JSON numbers and booleans, everything else as a string.
//!
//! Text: `2025-01-15T10:30:45.123Z INFO  starting TSDB server listen_addr=:8080`, with a
//! field's value quoted only when it would otherwise be ambiguous (empty, or containing a
//! space, a quote, `=` or a control character).
//!
//! Written by hand rather than with tracing-subscriber's `fmt`/`json` features because
//! their JSON nests fields under `"fields"` and names keys differently from the
//! operations guide, and the timestamp needs no date crate: [`format_timestamp`] converts
//! days to a civil date itself. Span fields are not logged; tsdb logs with events only.

use std::fmt;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

use crate::config::{LogFormat, LogLevel, LogOutput};

/// Installs the process-wide subscriber. Events below `level` are dropped at their call
/// site: the level filter tells `tracing` the maximum level, so a disabled `debug!`
/// costs one comparison.
///
/// A second call leaves the first subscriber in place and says so on stderr; it is a
/// wiring mistake, but not one worth refusing to serve over.
pub fn init(level: LogLevel, format: LogFormat, output: LogOutput) {
    let registry = tracing_subscriber::registry().with(level_filter(level));
    let installed = match output {
        LogOutput::Stdout => tracing::subscriber::set_global_default(
            registry.with(LineLayer::new(format, StdoutLines, SystemTime::now)),
        ),
        LogOutput::Stderr => tracing::subscriber::set_global_default(
            registry.with(LineLayer::new(format, StderrLines, SystemTime::now)),
        ),
    };
    if let Err(e) = installed {
        let line = format!("tsdb: logging was already set up, keeping the first setup: {e}\n");
        StderrLines.write_line(line.as_bytes());
    }
}

/// The `tracing` filter for a configured level.
pub fn level_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Error => LevelFilter::ERROR,
    }
}

/// Where finished lines go. Each call gets one whole line, newline included, and must
/// write it in one piece so lines from different threads never interleave.
pub trait LineWriter: Send + Sync + 'static {
    fn write_line(&self, line: &[u8]);
}

/// Standard output. Its lock is held for the one `write_all`; stdout is line-buffered,
/// so a whole line goes out in one `write(2)`.
#[derive(Debug, Clone, Copy)]
pub struct StdoutLines;

impl LineWriter for StdoutLines {
    fn write_line(&self, line: &[u8]) {
        // A logger has nowhere to report its own failure, and a closed stdout (EPIPE
        // from a dead pipe reader) must not take the server down with it.
        let _ = std::io::stdout().lock().write_all(line);
    }
}

/// Standard error, unbuffered: `write_all` of the whole line is one `write(2)`.
#[derive(Debug, Clone, Copy)]
pub struct StderrLines;

impl LineWriter for StderrLines {
    fn write_line(&self, line: &[u8]) {
        // As for stdout: a failed log write is dropped, not escalated.
        let _ = std::io::stderr().lock().write_all(line);
    }
}

/// The layer: formats each event as one line and hands it to `W`.
pub struct LineLayer<W> {
    format: LogFormat,
    writer: W,
    /// The time source, a parameter so tests get fixed timestamps.
    clock: fn() -> SystemTime,
}

impl<W: LineWriter> LineLayer<W> {
    pub fn new(format: LogFormat, writer: W, clock: fn() -> SystemTime) -> Self {
        LineLayer {
            format,
            writer,
            clock,
        }
    }
}

impl<S: Subscriber, W: LineWriter> Layer<S> for LineLayer<W> {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = EventFields::default();
        event.record(&mut fields);
        let level = *event.metadata().level();
        let ts = (self.clock)();
        let line = match self.format {
            LogFormat::Json => format_json_line(level, ts, &fields),
            LogFormat::Text => format_text_line(level, ts, &fields),
        };
        self.writer.write_line(line.as_bytes());
    }
}

/// A field value, keeping the distinction JSON makes between numbers, booleans and
/// strings.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Str(String),
    I64(i64),
    U64(u64),
    I128(i128),
    U128(u128),
    F64(f64),
    Bool(bool),
}

/// The fields of one event: its `message` and the others in the order written.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EventFields {
    pub message: String,
    pub fields: Vec<(&'static str, FieldValue)>,
}

impl EventFields {
    fn push(&mut self, field: &Field, value: FieldValue) {
        if field.name() == "message" {
            // `message = 5` is odd but legal; keep it as the message all the same.
            self.message = match value {
                FieldValue::Str(s) => s,
                other => value_text(&other),
            };
        } else {
            self.fields.push((field.name(), value));
        }
    }
}

impl Visit for EventFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // The message arrives as `fmt::Arguments`, whose Debug is the formatted text;
        // `%x` fields arrive as Display wrappers whose Debug is their Display.
        self.push(field, FieldValue::Str(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, FieldValue::Str(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, FieldValue::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, FieldValue::U64(value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.push(field, FieldValue::I128(value));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.push(field, FieldValue::U128(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, FieldValue::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, FieldValue::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, FieldValue::Str(value.to_string()));
    }
}

/// The keys the JSON line always has. A field with one of these names is written as
/// `field.<name>`: a second `"level"` key would make `jq 'select(.level == "error")'`
/// read the field instead of the level, since jq keeps the last duplicate.
const RESERVED_KEYS: [&str; 3] = ["level", "ts", "msg"];

/// One JSON line, newline included.
pub fn format_json_line(level: Level, ts: SystemTime, fields: &EventFields) -> String {
    let mut out = String::with_capacity(128 + fields.message.len() + 32 * fields.fields.len());
    out.push_str("{\"level\":\"");
    out.push_str(level_lowercase(level));
    out.push_str("\",\"ts\":\"");
    out.push_str(&format_timestamp(ts));
    out.push_str("\",\"msg\":");
    push_json_string(&mut out, &fields.message);
    for (name, value) in &fields.fields {
        out.push(',');
        if RESERVED_KEYS.contains(name) {
            push_json_string(&mut out, &format!("field.{name}"));
        } else {
            push_json_string(&mut out, name);
        }
        out.push(':');
        match value {
            FieldValue::Str(s) => push_json_string(&mut out, s),
            FieldValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            // JSON has no NaN or infinities; they go out as strings rather than as an
            // invalid line.
            FieldValue::F64(f) if !f.is_finite() => push_json_string(&mut out, &value_text(value)),
            other => out.push_str(&value_text(other)),
        }
    }
    out.push_str("}\n");
    out
}

/// One text line, newline included.
pub fn format_text_line(level: Level, ts: SystemTime, fields: &EventFields) -> String {
    let mut out = String::with_capacity(64 + fields.message.len() + 32 * fields.fields.len());
    out.push_str(&format_timestamp(ts));
    out.push(' ');
    // Padded to the longest level name so messages line up.
    out.push_str(&format!("{:<5}", level.as_str()));
    if !fields.message.is_empty() {
        out.push(' ');
        // Unquoted, but escaped: a newline in a message must not start a fake line.
        push_escaped(&mut out, &fields.message);
    }
    for (name, value) in &fields.fields {
        out.push(' ');
        out.push_str(name);
        out.push('=');
        match value {
            FieldValue::Str(s) if needs_quotes(s) => {
                out.push('"');
                push_escaped(&mut out, s);
                out.push('"');
            }
            FieldValue::Str(s) => out.push_str(s),
            other => out.push_str(&value_text(other)),
        }
    }
    out.push('\n');
    out
}

fn level_lowercase(level: Level) -> &'static str {
    match level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// A non-string value as text: `42`, `1.5`, `true`, `NaN`.
fn value_text(value: &FieldValue) -> String {
    match value {
        FieldValue::Str(s) => s.clone(),
        FieldValue::I64(n) => n.to_string(),
        FieldValue::U64(n) => n.to_string(),
        FieldValue::I128(n) => n.to_string(),
        FieldValue::U128(n) => n.to_string(),
        // Debug keeps a float a float (`2.0`, `1e-7`), and both forms are valid JSON.
        FieldValue::F64(f) => format!("{f:?}"),
        FieldValue::Bool(b) => b.to_string(),
    }
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Escapes what would break a text line or its quoting: quotes, backslashes and
/// control characters.
fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
}

fn needs_quotes(s: &str) -> bool {
    s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '=' || c.is_control())
}

/// `2025-01-15T10:30:45.123Z`: RFC 3339, UTC, milliseconds. Times before 1970 (a clock
/// set wrong) print as the epoch rather than failing.
pub fn format_timestamp(t: SystemTime) -> String {
    let since_epoch = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let secs_of_day = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60,
        since_epoch.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
/// Howard Hinnant's `civil_from_days`, restricted to dates from 1970 on so the
/// arithmetic stays unsigned: it counts from 0000-03-01 so the leap day ends the year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097; // day of the 400-year era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1st
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// 2025-01-15T10:30:45.123Z, the guide's example time.
    fn fixed_clock() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_736_937_045_123)
    }

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl LineWriter for Capture {
        fn write_line(&self, line: &[u8]) {
            self.0.lock().unwrap().extend_from_slice(line);
        }
    }

    /// Runs `f` under a subscriber built like `init`'s, returning what it logged.
    fn capture(level: LogLevel, format: LogFormat, f: impl FnOnce()) -> String {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry()
            .with(level_filter(level))
            .with(LineLayer::new(format, capture.clone(), fixed_clock));
        tracing::subscriber::with_default(subscriber, f);
        let bytes = capture.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn json_line() {
        let out = capture(LogLevel::Info, LogFormat::Json, || {
            tracing::info!(
                listen_addr = ":8080",
                data_dir = %"/var/lib/tsdb/data",
                shards = 4u64,
                offset = -3i64,
                ratio = 0.5,
                ready = true,
                took = ?Duration::from_millis(1500),
                "starting TSDB server"
            );
        });
        assert_eq!(
            out,
            "{\"level\":\"info\",\"ts\":\"2025-01-15T10:30:45.123Z\",\"msg\":\"starting TSDB server\",\
             \"listen_addr\":\":8080\",\"data_dir\":\"/var/lib/tsdb/data\",\"shards\":4,\"offset\":-3,\
             \"ratio\":0.5,\"ready\":true,\"took\":\"1.5s\"}\n"
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["level"], "info");
        assert_eq!(v["ts"], "2025-01-15T10:30:45.123Z");
        assert_eq!(v["msg"], "starting TSDB server");
        assert_eq!(v["listen_addr"], ":8080");
        assert!(v["shards"].is_u64());
        assert!(v["offset"].is_i64());
        assert!(v["ratio"].is_f64());
        assert!(v["ready"].is_boolean());
        assert_eq!(v["took"], "1.5s");
    }

    #[test]
    fn json_escapes_and_odd_values_stay_valid() {
        let out = capture(LogLevel::Debug, LogFormat::Json, || {
            tracing::warn!(
                path = "a \"b\"\\c\nd\u{1}",
                level = 3,
                nan = f64::NAN,
                big = u128::MAX,
                "line one\nline two {}",
                42
            );
        });
        assert_eq!(out.matches('\n').count(), 1, "one line: {out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["level"], "warn");
        assert_eq!(v["msg"], "line one\nline two 42");
        assert_eq!(v["path"], "a \"b\"\\c\nd\u{1}");
        assert_eq!(v["field.level"], 3);
        assert_eq!(v["nan"], "NaN");
        assert!(out.contains(&format!("\"big\":{}", u128::MAX)), "{out}");
    }

    #[test]
    fn json_error_fields_and_empty_message() {
        let err = std::io::Error::other("disk on fire");
        let out = capture(LogLevel::Info, LogFormat::Json, || {
            tracing::error!(error = &err as &(dyn std::error::Error + 'static));
        });
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "");
        assert_eq!(v["error"], "disk on fire");
    }

    #[test]
    fn text_line() {
        let out = capture(LogLevel::Info, LogFormat::Text, || {
            tracing::info!(
                listen_addr = ":8080",
                data_dir = "/var/lib/my data",
                n = 3,
                ok = false,
                "starting TSDB server"
            );
            tracing::warn!(note = "", quote = "say \"hi\"", eq = "a=b", "torn\ntail");
            tracing::error!("bad");
        });
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            [
                "2025-01-15T10:30:45.123Z INFO  starting TSDB server listen_addr=:8080 \
                 data_dir=\"/var/lib/my data\" n=3 ok=false",
                "2025-01-15T10:30:45.123Z WARN  torn\\ntail note=\"\" quote=\"say \\\"hi\\\"\" eq=\"a=b\"",
                "2025-01-15T10:30:45.123Z ERROR bad",
            ]
        );
    }

    #[test]
    fn levels_filter() {
        let log_all = || {
            tracing::debug!("d");
            tracing::info!("i");
            tracing::warn!("w");
            tracing::error!("e");
        };
        let msgs = |level| {
            capture(level, LogFormat::Json, log_all)
                .lines()
                .map(|line| {
                    let v: serde_json::Value = serde_json::from_str(line).unwrap();
                    v["msg"].as_str().unwrap().to_owned()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(msgs(LogLevel::Debug), ["d", "i", "w", "e"]);
        assert_eq!(msgs(LogLevel::Info), ["i", "w", "e"]);
        assert_eq!(msgs(LogLevel::Warn), ["w", "e"]);
        assert_eq!(msgs(LogLevel::Error), ["e"]);
        let trace = capture(LogLevel::Debug, LogFormat::Text, || tracing::trace!("t"));
        assert_eq!(trace, "");
    }

    #[test]
    fn timestamps() {
        let at = |ms: u64| format_timestamp(UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(1_736_937_045_123), "2025-01-15T10:30:45.123Z");
        assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(951_868_799_999), "2000-02-29T23:59:59.999Z");
        assert_eq!(at(1_709_164_800_000), "2024-02-29T00:00:00.000Z");
        assert_eq!(at(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(at(253_402_300_799_000), "9999-12-31T23:59:59.000Z");
        let before_epoch = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(format_timestamp(before_epoch), "1970-01-01T00:00:00.000Z");
    }

    /// `civil_from_days` against counting days one by one, over 600 years.
    #[test]
    fn civil_dates_match_day_counting() {
        let leap =
            |y: u64| y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
        let (mut year, mut month, mut day) = (1970, 1, 1);
        for days in 0..(600 * 366) {
            assert_eq!(civil_from_days(days), (year, month, day), "day {days}");
            let month_len = match month {
                2 if leap(year) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            day += 1;
            if day > month_len {
                day = 1;
                month += 1;
                if month > 12 {
                    month = 1;
                    year += 1;
                }
            }
        }
    }

    #[test]
    fn json_line_of_fake_event() {
        let fields = EventFields {
            message: "replaying WAL".to_owned(),
            fields: vec![
                ("entries", FieldValue::U64(1234)),
                ("duration_ms", FieldValue::I64(567)),
                ("ts", FieldValue::Str("x".to_owned())),
                ("inf", FieldValue::F64(f64::INFINITY)),
            ],
        };
        assert_eq!(
            format_json_line(Level::INFO, fixed_clock(), &fields),
            "{\"level\":\"info\",\"ts\":\"2025-01-15T10:30:45.123Z\",\"msg\":\"replaying WAL\",\
             \"entries\":1234,\"duration_ms\":567,\"field.ts\":\"x\",\"inf\":\"inf\"}\n"
        );
        assert_eq!(
            format_text_line(Level::DEBUG, fixed_clock(), &fields),
            "2025-01-15T10:30:45.123Z DEBUG replaying WAL entries=1234 duration_ms=567 ts=x inf=inf\n"
        );
    }
}

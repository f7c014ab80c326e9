//! Parsing and printing of the two unit-bearing value kinds in the configuration:
//! durations (`30d`, `1h30m`, `500ms`) and byte sizes (`256MB`, `128MiB`, `1024`).
//!
//! Durations follow Prometheus' syntax so operators can paste values between the two:
//! whole numbers with units `y` (365 days), `w`, `d`, `h`, `m`, `s`, `ms`, largest unit
//! first, each unit at most once. A bare number is refused because `30` could mean
//! seconds, minutes or days depending on who wrote it.
//!
//! Sizes use *binary* multiples for every spelling: `KB` = `KiB` = 1024 bytes, `MB` =
//! `MiB` = 1024² bytes, and so on. The operations guide documents `memtable_size:
//! 268435456  # 256 MB`, i.e. it treats "MB" as 1024², and a configuration where
//! `--memtable-size=256MB` and the YAML value 268435456 disagreed would be a trap.

use std::time::Duration;

/// Duration units, largest first; the order is the order they must appear in.
const DURATION_UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

const DURATION_EXAMPLES: &str = "e.g. 30d, 720h, 1h30m or 500ms";

/// Parses a Prometheus-style duration such as `30d`, `720h`, `1h30m`, `500ms` or `1y`.
///
/// The error is a reason without the input, for the caller to put after the name of the
/// flag, variable or key that held it.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s.is_empty() {
        return Err(format!("empty duration; {DURATION_EXAMPLES}"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "a bare number has no unit; add one ({}), {DURATION_EXAMPLES}",
            unit_list()
        ));
    }
    let mut rest = s;
    let mut total_ms: u64 = 0;
    // Index into DURATION_UNITS of the previous unit; the next one must come after it.
    let mut previous: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "expected a whole number followed by a unit ({}), {DURATION_EXAMPLES}",
                unit_list()
            ));
        }
        let (number, after) = rest.split_at(digits);
        let letters = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(letters);
        if unit.is_empty() {
            let next = after.chars().next().map_or(String::new(), String::from);
            return Err(if next == "." {
                "fractions are not supported; combine units instead, e.g. 1h30m".to_owned()
            } else {
                format!("missing unit after {number}; {DURATION_EXAMPLES}")
            });
        }
        let Some(index) = DURATION_UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(format!(
                "unknown unit \"{unit}\"; expected one of {}",
                unit_list()
            ));
        };
        if previous.is_some_and(|p| p >= index) {
            return Err(
                "units must go from largest to smallest, each at most once, e.g. 1h30m".to_owned(),
            );
        }
        previous = Some(index);
        let value: u64 = number.parse().map_err(|_| "number too large".to_owned())?;
        let unit_ms = DURATION_UNITS[index].1;
        total_ms = value
            .checked_mul(unit_ms)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| "duration too large".to_owned())?;
        rest = after;
    }
    Ok(Duration::from_millis(total_ms))
}

fn unit_list() -> String {
    let names: Vec<&str> = DURATION_UNITS.iter().rev().map(|(name, _)| *name).collect();
    names.join(", ")
}

/// Prints a duration the way [`parse_duration`] reads it, Prometheus style: `30d`,
/// `1h30m`, `2w`, `0s`. Years and weeks are used only when they divide the duration
/// exactly, so 30 days prints as `30d`, not `4w2d`. Sub-millisecond parts are dropped;
/// no configured duration has them.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (name, unit_ms) in DURATION_UNITS {
        let unit_ms = u128::from(unit_ms);
        let exact_only = name == "y" || name == "w";
        if exact_only && !ms.is_multiple_of(unit_ms) {
            continue;
        }
        let count = ms / unit_ms;
        if count > 0 {
            out.push_str(&count.to_string());
            out.push_str(name);
            ms -= count * unit_ms;
        }
    }
    out
}

/// Size units by their lowercase spelling; every spelling is binary, see the module doc.
const SIZE_UNITS: [(&str, u64); 14] = [
    ("", 1),
    ("b", 1),
    ("k", 1 << 10),
    ("kb", 1 << 10),
    ("kib", 1 << 10),
    ("m", 1 << 20),
    ("mb", 1 << 20),
    ("mib", 1 << 20),
    ("g", 1 << 30),
    ("gb", 1 << 30),
    ("gib", 1 << 30),
    ("t", 1 << 40),
    ("tb", 1 << 40),
    ("tib", 1 << 40),
];

/// Parses a byte size: plain bytes (`1024`) or a whole number with a unit (`512KB`,
/// `256MB`, `128MiB`, `1GB`, case-insensitive, optional space before the unit). All
/// units are binary: `256MB` = 268435456 bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = s.split_at(digits);
    if number.is_empty() {
        return Err("expected a whole number of bytes with an optional unit, \
                    e.g. 1024, 512KB, 256MB, 128MiB or 1GB"
            .to_owned());
    }
    if unit.starts_with('.') {
        return Err("fractions are not supported; use a smaller unit, e.g. 1536MB".to_owned());
    }
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let Some((_, multiplier)) = SIZE_UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(format!(
            "unknown size unit \"{unit}\"; expected B, KB, MB, GB, TB \
             (or KiB, MiB, GiB, TiB; all are multiples of 1024)"
        ));
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(*multiplier))
        .ok_or_else(|| "size too large".to_owned())
}

/// Prints a byte size with the largest binary unit that divides it exactly (`1MiB`,
/// `256MiB`, `1000B`), for messages such as "must be at least 1MiB".
pub fn format_size(bytes: u64) -> String {
    for (name, unit) in [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ] {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{}{name}", bytes / unit);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1000;
    const M: u64 = 60 * S;
    const H: u64 = 60 * M;
    const D: u64 = 24 * H;

    #[test]
    fn durations_parse() {
        let cases: &[(&str, u64)] = &[
            ("30d", 30 * D),
            ("720h", 720 * H),
            ("5m", 5 * M),
            ("1h30m", H + 30 * M),
            ("500ms", 500),
            ("1s", S),
            ("30s", 30 * S),
            ("2w", 14 * D),
            ("1y", 365 * D),
            (
                "1y2w3d4h5m6s7ms",
                365 * D + 14 * D + 3 * D + 4 * H + 5 * M + 6 * S + 7,
            ),
            ("0s", 0),
            ("90s", 90 * S),
        ];
        for (input, ms) in cases {
            assert_eq!(
                parse_duration(input),
                Ok(Duration::from_millis(*ms)),
                "{input}"
            );
        }
    }

    #[test]
    fn durations_refused() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("30", "bare number has no unit"),
            ("0", "bare number has no unit"),
            ("abc", "whole number followed by a unit"),
            ("-1s", "whole number followed by a unit"),
            ("1.5h", "fractions"),
            ("30x", "unknown unit \"x\""),
            ("30S", "unknown unit \"S\""),
            ("30m1h", "largest to smallest"),
            ("1h1h", "largest to smallest"),
            ("1h ", "whole number followed by a unit"),
            (" 1h", "whole number followed by a unit"),
            ("99999999999999999999s", "too large"),
            ("600000000y", "too large"),
        ];
        for (input, reason) in cases {
            let err = parse_duration(input).unwrap_err();
            assert!(err.contains(reason), "{input:?}: {err}");
        }
    }

    #[test]
    fn durations_print() {
        let cases: &[(u64, &str)] = &[
            (0, "0s"),
            (500, "500ms"),
            (S, "1s"),
            (90 * S, "1m30s"),
            (5 * M, "5m"),
            (H + 30 * M, "1h30m"),
            (720 * H, "30d"),
            (14 * D, "2w"),
            (15 * D, "15d"),
            (365 * D, "1y"),
            (366 * D, "366d"),
            (D + 1, "1d1ms"),
        ];
        for (ms, text) in cases {
            let d = Duration::from_millis(*ms);
            assert_eq!(format_duration(d), *text);
            assert_eq!(parse_duration(text), Ok(d), "round trip {text}");
        }
    }

    #[test]
    fn sizes_parse() {
        let cases: &[(&str, u64)] = &[
            ("1024", 1024),
            ("0", 0),
            ("512KB", 512 << 10),
            ("256MB", 268_435_456),
            ("128MiB", 134_217_728),
            ("128MB", 134_217_728),
            ("1GB", 1 << 30),
            ("1GiB", 1 << 30),
            ("2TB", 2 << 40),
            ("64mb", 64 << 20),
            ("256 MB", 268_435_456),
            ("10B", 10),
            ("4k", 4096),
        ];
        for (input, bytes) in cases {
            assert_eq!(parse_size(input), Ok(*bytes), "{input}");
        }
    }

    #[test]
    fn sizes_refused() {
        let cases: &[(&str, &str)] = &[
            ("", "whole number of bytes"),
            ("MB", "whole number of bytes"),
            ("-1", "whole number of bytes"),
            ("1.5GB", "fractions"),
            ("12XB", "unknown size unit"),
            ("12  MB", "unknown size unit"),
            ("99999999999999999999", "too large"),
            ("99999999999TB", "too large"),
        ];
        for (input, reason) in cases {
            let err = parse_size(input).unwrap_err();
            assert!(err.contains(reason), "{input:?}: {err}");
        }
    }

    #[test]
    fn sizes_print() {
        assert_eq!(format_size(1 << 20), "1MiB");
        assert_eq!(format_size(268_435_456), "256MiB");
        assert_eq!(format_size(1536 << 20), "1536MiB");
        assert_eq!(format_size(1 << 30), "1GiB");
        assert_eq!(format_size(1000), "1000B");
        assert_eq!(format_size(0), "0B");
    }
}

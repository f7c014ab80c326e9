//! Tidy: the architecture's boundaries and the code's hygiene, checked on the source.
//!
//! - `engine` depends on no HTTP, protobuf or compression crate (it knows nothing of
//!   the network); `net` depends on `engine`, never the reverse; `bench` is not a
//!   dependency of anything the server uses.
//! - `net` never opens a file; the engine touches files and clocks only through
//!   `engine/src/storage` (the query evaluator's deadlines aside).
//! - Every Rust file starts with a `//!` comment; no `#[ignore]`, `#[should_panic]` or
//!   `dbg!`; `unsafe` only with a `// SAFETY:` comment.
//! - Every fuzz harness has a cargo-fuzz target and a seeded test, and PromQL text
//!   reaches promql-parser only through the engine's checked `promql::parse`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a tidy check fails loudly on an unreadable tree"
)]

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn all_rust_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["src", "engine", "net", "bench", "tests", "fuzz"] {
        rust_files(&root().join(dir), &mut out);
    }
    out
}

/// The `[dependencies]` table of a crate's manifest, as text.
fn dependencies(krate: &str) -> String {
    let manifest = std::fs::read_to_string(root().join(krate).join("Cargo.toml")).unwrap();
    let start = manifest
        .find("[dependencies]")
        .expect("a [dependencies] table");
    let rest = &manifest[start + "[dependencies]".len()..];
    rest[..rest.find("\n[").unwrap_or(rest.len())].to_string()
}

fn dependency_names(krate: &str) -> Vec<String> {
    dependencies(krate)
        .lines()
        .filter_map(|l| l.split(['=', '.']).next())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty() && !n.starts_with('#'))
        .collect()
}

#[test]
fn engine_knows_nothing_of_the_network() {
    let deps = dependency_names("engine");
    for banned in [
        "hyper",
        "http",
        "http-body-util",
        "prost",
        "snap",
        "monoio-compat",
        "tsdb-net",
        "tsdb-bench",
    ] {
        assert!(
            !deps.iter().any(|d| d == banned),
            "engine depends on {banned}"
        );
    }
}

#[test]
fn net_depends_on_engine_and_never_on_bench() {
    let deps = dependency_names("net");
    assert!(deps.iter().any(|d| d == "tsdb-engine"));
    assert!(!deps.iter().any(|d| d == "tsdb-bench"));
    let root_deps = dependency_names(".");
    assert!(
        !root_deps.iter().any(|d| d == "tsdb-bench"),
        "the server must not use bench"
    );
}

#[test]
fn net_never_opens_a_file() {
    let mut files = Vec::new();
    rust_files(&root().join("net/src"), &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for banned in ["std::fs", "File::open", "File::create", "monoio::fs"] {
            assert!(!text.contains(banned), "{} uses {banned}", f.display());
        }
    }
}

/// The part of an engine source file that is not test code: whole test files
/// (`tests.rs`, `*_tests.rs`) have none, and a `#[cfg(test)] mod tests {` ends the rest.
fn non_test_code(path: &Path, text: &str) -> String {
    let name = path.file_name().unwrap().to_string_lossy();
    if name == "tests.rs" || name.ends_with("_tests.rs") {
        return String::new();
    }
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .windows(2)
        .position(|w| w[0].trim() == "#[cfg(test)]" && w[1].trim_start().starts_with("mod tests {"))
        .unwrap_or(lines.len());
    lines[..end].join("\n")
}

#[test]
fn engine_touches_files_only_through_storage() {
    let storage = root().join("engine/src/storage");
    let mut files = Vec::new();
    rust_files(&root().join("engine/src"), &mut files);
    assert!(files.iter().any(|f| f.starts_with(&storage)));
    for f in files.iter().filter(|f| !f.starts_with(&storage)) {
        let text = std::fs::read_to_string(f).unwrap();
        let code = non_test_code(f, &text);
        for banned in [
            "std::fs",
            "monoio::fs",
            "unix::fs",
            "File::open",
            "File::create",
            "OpenOptions",
            "Ulid::new",
        ] {
            assert!(
                !code.contains(banned),
                "{} uses {banned} outside test code; go through engine/src/storage",
                f.display()
            );
        }
        // The query evaluator's deadlines are not storage state; everything else
        // reads time through `Clock` so a simulation controls it.
        if !f.starts_with(root().join("engine/src/promql")) {
            for banned in ["SystemTime::now", "Instant::now"] {
                assert!(
                    !code.contains(banned),
                    "{} reads the clock ({banned}); use storage::Clock",
                    f.display()
                );
            }
        }
    }
}

#[test]
fn every_file_opens_with_a_doc_comment_and_stays_clean() {
    let tidy = root().join("tests/tidy.rs");
    for f in all_rust_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} does not open with a //! comment",
            f.display()
        );
        if f == tidy {
            continue;
        }
        for banned in ["#[ignore", "#[should_panic", "dbg!("] {
            assert!(!text.contains(banned), "{} contains {banned}", f.display());
        }
        for (i, line) in text.lines().enumerate() {
            if line.contains("unsafe {") || line.contains("unsafe impl") {
                let before: Vec<&str> = text.lines().take(i).collect();
                let documented = before.iter().rev().take(4).any(|l| l.contains("SAFETY:"));
                assert!(
                    documented,
                    "{}:{}: unsafe without a // SAFETY: comment",
                    f.display(),
                    i + 1
                );
            }
        }
    }
}

#[test]
fn files_stay_a_readable_size() {
    for f in all_rust_files() {
        let lines = std::fs::read_to_string(&f).unwrap().lines().count();
        assert!(lines <= 1200, "{} has {lines} lines; split it", f.display());
    }
}

/// The harnesses of a fuzz module: its `pub fn name(data: &[u8])`.
fn fuzz_harnesses(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("pub fn "))
        .filter_map(|l| l.strip_suffix("(data: &[u8]) {"))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_fuzz_harness_has_a_target_and_a_seeded_test() {
    let manifest = std::fs::read_to_string(root().join("fuzz/Cargo.toml")).unwrap();
    let mut all = Vec::new();
    for (krate, harness_file, test_file) in [
        ("tsdb_engine", "engine/src/fuzz.rs", "engine/tests/fuzz.rs"),
        ("tsdb_net", "net/src/fuzz.rs", "net/tests/fuzz.rs"),
    ] {
        let harnesses = fuzz_harnesses(harness_file);
        assert!(!harnesses.is_empty(), "no harness in {harness_file}");
        let tests = std::fs::read_to_string(root().join(test_file)).unwrap();
        for name in harnesses {
            let target = root().join(format!("fuzz/fuzz_targets/{name}.rs"));
            let text = std::fs::read_to_string(&target)
                .unwrap_or_else(|e| panic!("{krate}::fuzz::{name} has no cargo-fuzz target: {e}"));
            assert!(
                text.contains(&format!("{krate}::fuzz::{name}(data)")),
                "{} does not call {krate}::fuzz::{name}",
                target.display()
            );
            assert!(
                manifest.contains(&format!(
                    "name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\""
                )),
                "fuzz/Cargo.toml has no [[bin]] for {name}"
            );
            assert!(
                tests.contains(&format!("name: \"{name}\",\n        run: fuzz::{name},")),
                "{test_file} does not run {name} in a seeded loop"
            );
            all.push(name);
        }
    }
    // The model-based target drives a whole shard on the simulated disk; its seeded
    // loop is in the simulation's tests, not the codec loops.
    let model = std::fs::read_to_string(root().join("fuzz/fuzz_targets/engine_model.rs")).unwrap();
    assert!(model.contains("tsdb_engine::storage::sim::run_ops(data)"));
    assert!(manifest.contains("name = \"engine_model\"\npath = \"fuzz_targets/engine_model.rs\""));
    let sim_tests = std::fs::read_to_string(root().join("engine/tests/sim.rs")).unwrap();
    assert!(
        sim_tests.contains("run_ops"),
        "engine/tests/sim.rs does not run run_ops"
    );
    all.push("engine_model".to_string());
    for entry in std::fs::read_dir(root().join("fuzz/fuzz_targets")).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(all.contains(&stem), "{} calls no harness", path.display());
    }
    assert_eq!(
        manifest.matches("[[bin]]").count(),
        all.len(),
        "fuzz/Cargo.toml has targets without a harness"
    );
}

#[test]
fn promql_text_is_parsed_only_through_the_checked_entry_point() {
    let allowed = root().join("engine/src/promql/parse.rs");
    for f in all_rust_files() {
        if f == allowed || f == root().join("tests/tidy.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            !text.contains("promql_parser::parser::parse("),
            "{} parses PromQL without tsdb_engine::promql::parse",
            f.display()
        );
    }
}

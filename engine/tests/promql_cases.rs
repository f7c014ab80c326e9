//! Runs every PromQL case file under `tests/promql/` (and, when `TSDB_PROMQL_CASES`
//! names a directory, the `*.test` files there too) through the evaluator.

use std::path::{Path, PathBuf};

fn case_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
                .path()
        })
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    files
}

fn run_dir(dir: &Path) -> (usize, usize) {
    let files = case_files(dir);
    let mut evals = 0;
    for f in &files {
        let text =
            std::fs::read_to_string(f).unwrap_or_else(|e| panic!("read {}: {e}", f.display()));
        evals += tsdb_engine::promql::cases::check(&f.display().to_string(), &text);
    }
    (files.len(), evals)
}

#[test]
fn promql_case_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/promql");
    let (files, evals) = run_dir(&dir);
    assert!(files > 0, "no case files in {}", dir.display());
    assert!(evals > 0, "no eval commands in {}", dir.display());
    if let Some(extra) = std::env::var_os("TSDB_PROMQL_CASES") {
        run_dir(Path::new(&extra));
    }
}

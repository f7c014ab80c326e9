//! Head cardinality as Prometheus 2.42's `/api/v1/status/tsdb` reports it: head stats
//! and the ten largest entries of four lists, computed over the postings of every
//! shard's head (`MemPostings.Stats` in Prometheus' `tsdb/index/postings.go`).
//!
//! Shards own disjoint series, so series counts add up; but one label value may occur
//! in several shards, so the shards send their postings sizes and the lists are
//! computed over the union.

use std::collections::HashMap;

/// One shard's head: its postings sizes and head stats.
#[derive(Clone, Debug, Default)]
pub struct HeadPostings {
    pub num_series: u64,
    pub chunks: u64,
    /// `i64::MAX` for an empty head, as Prometheus reports it.
    pub min_time_ms: i64,
    /// `i64::MIN` for an empty head.
    pub max_time_ms: i64,
    /// Label name → (value, series having it).
    pub labels: Vec<(String, Vec<(String, u64)>)>,
}

/// One entry of a list: a name and its count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    pub name: String,
    pub value: u64,
}

/// The merged answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cardinality {
    pub num_series: u64,
    /// Distinct label name/value pairs.
    pub num_label_pairs: u64,
    pub chunk_count: u64,
    pub min_time_ms: i64,
    pub max_time_ms: i64,
    /// `__name__` value → series.
    pub series_count_by_metric_name: Vec<Stat>,
    /// Label name → distinct values.
    pub label_value_count_by_label_name: Vec<Stat>,
    /// Label name → bytes of its values summed over the series having them.
    pub memory_in_bytes_by_label_name: Vec<Stat>,
    /// `name=value` → series.
    pub series_count_by_label_value_pair: Vec<Stat>,
}

impl Cardinality {
    /// Merges every shard's postings and keeps the `top` largest entries of each list,
    /// largest first (ties by name, so the answer is stable).
    pub fn merge(parts: Vec<HeadPostings>, top: usize) -> Cardinality {
        let mut num_series = 0u64;
        let mut chunk_count = 0u64;
        let mut min_time_ms = i64::MAX;
        let mut max_time_ms = i64::MIN;
        let mut by_name: HashMap<String, HashMap<String, u64>> = HashMap::new();
        for p in parts {
            num_series += p.num_series;
            chunk_count += p.chunks;
            min_time_ms = min_time_ms.min(p.min_time_ms);
            max_time_ms = max_time_ms.max(p.max_time_ms);
            for (name, values) in p.labels {
                let merged = by_name.entry(name).or_default();
                for (value, series) in values {
                    *merged.entry(value).or_default() += series;
                }
            }
        }
        let mut metrics = Vec::new();
        let mut value_counts = Vec::new();
        let mut memory = Vec::new();
        let mut pairs = Vec::new();
        let mut num_label_pairs = 0u64;
        for (name, values) in &by_name {
            if name.is_empty() {
                continue;
            }
            num_label_pairs += values.len() as u64;
            value_counts.push(stat(name, values.len() as u64));
            let mut bytes = 0u64;
            for (value, &series) in values {
                if name == crate::model::METRIC_NAME {
                    metrics.push(stat(value, series));
                }
                pairs.push(stat(&format!("{name}={value}"), series));
                bytes = bytes.saturating_add((value.len() as u64).saturating_mul(series));
            }
            memory.push(stat(name, bytes));
        }
        Cardinality {
            num_series,
            num_label_pairs,
            chunk_count,
            min_time_ms,
            max_time_ms,
            series_count_by_metric_name: largest(metrics, top),
            label_value_count_by_label_name: largest(value_counts, top),
            memory_in_bytes_by_label_name: largest(memory, top),
            series_count_by_label_value_pair: largest(pairs, top),
        }
    }
}

fn stat(name: &str, value: u64) -> Stat {
    Stat {
        name: name.to_string(),
        value,
    }
}

fn largest(mut stats: Vec<Stat>, top: usize) -> Vec<Stat> {
    stats.sort_by(|a, b| b.value.cmp(&a.value).then_with(|| a.name.cmp(&b.name)));
    stats.truncate(top);
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(labels: &[(&str, &[(&str, u64)])], series: u64, min: i64, max: i64) -> HeadPostings {
        HeadPostings {
            num_series: series,
            chunks: series,
            min_time_ms: min,
            max_time_ms: max,
            labels: labels
                .iter()
                .map(|(n, vs)| {
                    (
                        n.to_string(),
                        vs.iter().map(|(v, c)| (v.to_string(), *c)).collect(),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn merges_shards_and_counts_shared_values_once() {
        let a = part(
            &[
                ("__name__", &[("up", 2)]),
                ("job", &[("node", 1), ("db", 1)]),
            ],
            2,
            10,
            20,
        );
        let b = part(
            &[
                ("__name__", &[("up", 1), ("x", 1)]),
                ("job", &[("node", 2)]),
            ],
            2,
            5,
            15,
        );
        let empty = part(&[], 0, i64::MAX, i64::MIN);
        let c = Cardinality::merge(vec![a, b, empty], 10);
        assert_eq!((c.num_series, c.chunk_count), (4, 4));
        assert_eq!((c.min_time_ms, c.max_time_ms), (5, 20));
        // up, x, node, db.
        assert_eq!(c.num_label_pairs, 4);
        assert_eq!(
            c.series_count_by_metric_name,
            vec![stat("up", 3), stat("x", 1)]
        );
        assert_eq!(
            c.label_value_count_by_label_name,
            vec![stat("__name__", 2), stat("job", 2)]
        );
        // __name__: 3 series × "up" (2 bytes) + 1 × "x"; job: 3 × "node" + 1 × "db".
        assert_eq!(
            c.memory_in_bytes_by_label_name,
            vec![stat("job", 14), stat("__name__", 7)]
        );
        assert_eq!(
            c.series_count_by_label_value_pair,
            vec![
                stat("__name__=up", 3),
                stat("job=node", 3),
                stat("__name__=x", 1),
                stat("job=db", 1)
            ]
        );
        let top1 = Cardinality::merge(vec![part(&[("a", &[("1", 1), ("2", 5)])], 6, 0, 0)], 1);
        assert_eq!(top1.series_count_by_label_value_pair, vec![stat("a=2", 5)]);
    }
}

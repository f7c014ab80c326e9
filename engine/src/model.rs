//! The data model: label sets, samples and series matchers, as Prometheus defines them.
//!
//! A [`Labels`] is sorted by name, has unique names and no empty values by
//! construction: [`Labels::new`] is its one validating constructor, called once at the
//! network boundary.

use std::fmt;
use std::sync::Arc;

/// The label that carries a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// The bit pattern Prometheus uses for a staleness marker (a NaN that is not the
/// default NaN).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Whether `v` is Prometheus' staleness marker.
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One label pair.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    pub name: LabelStr,
    pub value: LabelStr,
}

/// A label name or value: an immutable shared string. Most series share most of
/// their names and values (`job`, `instance`, `__name__`), so the head (its postings'
/// keys) and a block's index (its symbol table) each keep one copy of a string and
/// every label set there refers to it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LabelStr(Arc<str>);

impl LabelStr {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for LabelStr {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for LabelStr {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<[u8]> for LabelStr {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::borrow::Borrow<str> for LabelStr {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LabelStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for LabelStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl From<String> for LabelStr {
    fn from(s: String) -> Self {
        LabelStr(s.into())
    }
}

impl From<&str> for LabelStr {
    fn from(s: &str) -> Self {
        LabelStr(s.into())
    }
}

impl From<&String> for LabelStr {
    fn from(s: &String) -> Self {
        LabelStr(s.as_str().into())
    }
}

impl From<LabelStr> for String {
    fn from(s: LabelStr) -> Self {
        s.0.to_string()
    }
}

impl PartialEq<str> for LabelStr {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for LabelStr {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for LabelStr {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<LabelStr> for str {
    fn eq(&self, other: &LabelStr) -> bool {
        self == &*other.0
    }
}

impl PartialEq<LabelStr> for &str {
    fn eq(&self, other: &LabelStr) -> bool {
        *self == &*other.0
    }
}

impl PartialEq<LabelStr> for String {
    fn eq(&self, other: &LabelStr) -> bool {
        **self == *other.0
    }
}

impl Label {
    pub fn new(name: impl Into<LabelStr>, value: impl Into<LabelStr>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Why a label set was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelsError {
    Empty,
    InvalidName(String),
    InvalidMetricName(String),
    DuplicateName(String),
}

impl fmt::Display for LabelsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelsError::Empty => write!(f, "series has no labels"),
            LabelsError::InvalidName(n) => write!(f, "invalid label name {n:?}"),
            LabelsError::InvalidMetricName(n) => write!(f, "invalid metric name {n:?}"),
            LabelsError::DuplicateName(n) => write!(f, "duplicate label name {n:?}"),
        }
    }
}

impl std::error::Error for LabelsError {}

/// [`Labels::stable_hash`] of a label set given as sorted `(name, value)` pairs, owned
/// or borrowed (`ingest::IngestBatch` hashes its borrowed labels with it).
pub fn stable_hash_of<'a>(labels: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone) -> u64 {
    // One-shot over `name 0xff value 0xff …`: the same digest as feeding the pieces
    // to a streaming hasher, at a fraction of the cost for short label sets.
    const STACK_BYTES: usize = 512;
    let len: usize = labels.clone().map(|(n, v)| n.len() + v.len() + 2).sum();
    let mut stack = [0u8; STACK_BYTES];
    let mut heap = Vec::new();
    let buf: &mut [u8] = if len <= STACK_BYTES {
        &mut stack
    } else {
        heap.resize(len, 0);
        &mut heap
    };
    let mut at = 0;
    for (name, value) in labels {
        for part in [name, value] {
            if let Some(dst) = buf.get_mut(at..at + part.len()) {
                dst.copy_from_slice(part);
            }
            at += part.len();
            if let Some(b) = buf.get_mut(at) {
                *b = 0xff;
            }
            at += 1;
        }
    }
    xxhash_rust::xxh3::xxh3_64(buf.get(..len).unwrap_or_default())
}

/// A sorted, deduplicated label set without empty values.
///
/// Shared, not copied: a query hands one series' labels from the block or head
/// through the shard merge, the mesh and every evaluator step, so a clone is a
/// reference count, not a string copy per label.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Labels(Arc<[Label]>);

/// Whether `name` is a valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `name` is a valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

impl Labels {
    /// Validates and normalises a label set: drops empty values, sorts by name,
    /// refuses invalid or duplicate names and an empty result.
    pub fn new(mut labels: Vec<Label>) -> Result<Labels, LabelsError> {
        labels.retain(|l| !l.value.is_empty());
        if labels.is_empty() {
            return Err(LabelsError::Empty);
        }
        labels.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        for pair in labels.windows(2) {
            if let [a, b] = pair
                && a.name == b.name
            {
                return Err(LabelsError::DuplicateName(a.name.to_string()));
            }
        }
        for l in &labels {
            if l.name == METRIC_NAME {
                if !is_valid_metric_name(&l.value) {
                    return Err(LabelsError::InvalidMetricName(l.value.to_string()));
                }
            } else if !is_valid_label_name(&l.name) {
                return Err(LabelsError::InvalidName(l.name.to_string()));
            }
        }
        Ok(Labels(labels.into()))
    }

    /// `labels` with its strings replaced by `shared`, equal pairs in the same order
    /// that refer to an interned copy of each string. Anything else (a bug) keeps
    /// `labels`.
    pub(crate) fn from_shared(shared: Vec<Label>, labels: &Labels) -> Labels {
        if shared.as_slice() == &*labels.0 {
            Labels(shared.into())
        } else {
            tracing::error!(?labels, "BUG: interned labels differ from the originals");
            labels.clone()
        }
    }

    /// Builds a label set from pairs already known to be valid and sorted (read back
    /// from our own WAL or blocks, which were validated when written). Still checked,
    /// cheaply, because disk bytes can rot.
    pub fn from_sorted(labels: Vec<Label>) -> Result<Labels, LabelsError> {
        for pair in labels.windows(2) {
            if let [a, b] = pair
                && a.name >= b.name
            {
                return Err(LabelsError::DuplicateName(b.name.to_string()));
            }
        }
        if labels.is_empty() {
            return Err(LabelsError::Empty);
        }
        Ok(Labels(labels.into()))
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<Label> {
        self.0.to_vec()
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .and_then(|i| self.0.get(i))
            .map(|l| l.value.as_str())
    }

    /// The metric name, if the series has one.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// A stable 64-bit hash of the label set; it picks the owning shard, so it must
    /// never change between versions for data already on disk to stay where it is.
    pub fn stable_hash(&self) -> u64 {
        stable_hash_of(
            self.0
                .iter()
                .map(|l| (l.name.as_bytes(), l.value.as_bytes())),
        )
    }

    /// Bytes the label set takes in memory, for memtable accounting.
    pub fn mem_bytes(&self) -> usize {
        self.0
            .iter()
            .map(|l| l.name.len() + l.value.len() + 2 * std::mem::size_of::<String>())
            .sum::<usize>()
            + std::mem::size_of::<Vec<Label>>()
    }
}

impl fmt::Display for Labels {
    /// Prometheus' notation: `name{a="b", c="d"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.metric_name() {
            f.write_str(name)?;
        }
        f.write_str("{")?;
        let mut first = true;
        for l in self.0.iter().filter(|l| l.name != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

/// One sample of a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub timestamp_ms: i64,
    pub value: f64,
}

impl Sample {
    pub fn new(timestamp_ms: i64, value: f64) -> Self {
        Sample {
            timestamp_ms,
            value,
        }
    }
}

/// A series and samples of it: the unit of ingest.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesSamples {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// The four label-matcher kinds of PromQL.
#[derive(Clone, Debug)]
pub enum MatchOp {
    Equal,
    NotEqual,
    /// The regex is anchored (`^(?:…)$`), as Prometheus anchors it.
    Regex(regex::Regex),
    NotRegex(regex::Regex),
}

/// A label matcher. A missing label matches as the empty string, as in Prometheus.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
}

impl Matcher {
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
        }
    }

    /// Builds a matcher; regex kinds are compiled anchored.
    pub fn new(name: &str, kind: &str, value: &str) -> Result<Self, regex::Error> {
        let op = match kind {
            "=" => MatchOp::Equal,
            "!=" => MatchOp::NotEqual,
            "=~" => MatchOp::Regex(anchored(value)?),
            "!~" => MatchOp::NotRegex(anchored(value)?),
            other => return Err(regex::Error::Syntax(format!("unknown match kind {other}"))),
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
        })
    }

    /// Whether the label value `v` (empty when the label is absent) matches.
    pub fn matches(&self, v: &str) -> bool {
        match &self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Regex(re) => re.is_match(v),
            MatchOp::NotRegex(re) => !re.is_match(v),
        }
    }

    /// Whether the matcher matches the empty string (so it also matches series that
    /// lack the label).
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// Whether a series with these labels is selected.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }
}

fn anchored(re: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?s:{re})$"))
}

/// How many of `matchers` are regex matchers (`=~`, `!~`).
pub fn regex_matchers(matchers: &[Matcher]) -> usize {
    matchers
        .iter()
        .filter(|m| matches!(m.op, MatchOp::Regex(_) | MatchOp::NotRegex(_)))
        .count()
}

/// Whether all matchers select `labels`.
pub fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches_labels(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_sorted_and_empty_values_dropped() {
        let l = Labels::new(vec![
            Label::new("b", "2"),
            Label::new("__name__", "up"),
            Label::new("a", ""),
        ])
        .unwrap();
        let names: Vec<_> = l.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "b"]);
        assert_eq!(l.to_string(), "up{b=\"2\"}");
    }

    #[test]
    fn labels_refuse_bad_input() {
        assert_eq!(
            Labels::new(vec![Label::new("a", "1"), Label::new("a", "2")]),
            Err(LabelsError::DuplicateName("a".into()))
        );
        assert_eq!(
            Labels::new(vec![Label::new("1a", "1")]),
            Err(LabelsError::InvalidName("1a".into()))
        );
        assert_eq!(
            Labels::new(vec![Label::new("__name__", "a-b")]),
            Err(LabelsError::InvalidMetricName("a-b".into()))
        );
        assert_eq!(Labels::new(vec![]), Err(LabelsError::Empty));
    }

    #[test]
    fn stable_hash_never_changes() {
        // Shards are chosen by this hash and data on disk stays where it was written:
        // the digest of a given label set must never change between versions.
        let l = Labels::new(vec![Label::new("__name__", "up"), Label::new("job", "api")]).unwrap();
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for part in ["__name__", "up", "job", "api"] {
            h.update(part.as_bytes());
            h.update(&[0xff]);
        }
        assert_eq!(l.stable_hash(), h.digest());
        let long = Labels::new(vec![Label::new("a", "x".repeat(2000))]).unwrap();
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(b"a\xff");
        h.update("x".repeat(2000).as_bytes());
        h.update(&[0xff]);
        assert_eq!(long.stable_hash(), h.digest());
    }

    #[test]
    fn matchers_anchor_regexes_and_treat_missing_as_empty() {
        let l = Labels::new(vec![Label::new("job", "api")]).unwrap();
        assert!(Matcher::new("job", "=~", "a.*").unwrap().matches_labels(&l));
        assert!(!Matcher::new("job", "=~", "p").unwrap().matches_labels(&l));
        assert!(Matcher::new("env", "=", "").unwrap().matches_labels(&l));
        assert!(Matcher::new("env", "!~", ".+").unwrap().matches_labels(&l));
    }
}

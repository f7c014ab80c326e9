//! The bounds of the HTTP side: the name of every limit as `tsdb_limit_hits_total`
//! counts it, the server's own constants, and the per-core budget of request bytes in
//! flight.
//!
//! Each limit is enforced in one place and counted in one place: limits that refuse a
//! request produce an [`crate::http::ApiError`] naming the limit, which
//! `server::handle` counts; limits on connections are counted by the accept loop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Every limit, by the name `tsdb_limit_hits_total{limit=…}` gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// A request body over `limits.max_body_size` (413).
    BodySize,
    /// A snappy or gzip body that decompresses past the decoded limit (413).
    DecodedBodySize,
    /// `limits.max_series_per_request` (400).
    SeriesPerRequest,
    /// `limits.max_labels_per_series` (400).
    LabelsPerSeries,
    /// `limits.max_label_name_length` (400).
    LabelNameLength,
    /// `limits.max_label_value_length` (400).
    LabelValueLength,
    /// `limits.max_series`: new series beyond the heads' bound (429).
    SeriesCardinality,
    /// `server.max_connections`: a connection beyond it is answered 503 and closed.
    Connections,
    /// `limits.max_inflight_body_size`: body bytes a core holds at once (503).
    InflightBytes,
    /// [`INFLIGHT_REQUESTS_PER_CORE_MAX`] (503).
    InflightRequests,
    /// A request head not received within `server.read_timeout`; hyper closes the
    /// connection (this includes keep-alive connections left idle that long).
    HeaderReadTimeout,
    /// A request body not received within `server.read_timeout` (408).
    BodyReadTimeout,
    /// `query.max_samples` (422).
    QuerySamples,
    /// `query.timeout` (503).
    QueryTimeout,
    /// Prometheus' 11,000 points per series of a range query (400).
    QueryRangePoints,
    /// `query.max_samples` applied to a remote read (400).
    RemoteReadSamples,
    /// `limits.rate_limit`: a client's requests per second beyond its burst (429).
    ClientRate,
    /// `query.max_regex_matchers`: regex matchers of one query or `match[]` (400).
    RegexMatchers,
}

impl Limit {
    pub const ALL: [Limit; 18] = [
        Limit::BodySize,
        Limit::DecodedBodySize,
        Limit::SeriesPerRequest,
        Limit::LabelsPerSeries,
        Limit::LabelNameLength,
        Limit::LabelValueLength,
        Limit::SeriesCardinality,
        Limit::Connections,
        Limit::InflightBytes,
        Limit::InflightRequests,
        Limit::HeaderReadTimeout,
        Limit::BodyReadTimeout,
        Limit::QuerySamples,
        Limit::QueryTimeout,
        Limit::QueryRangePoints,
        Limit::RemoteReadSamples,
        Limit::ClientRate,
        Limit::RegexMatchers,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Limit::BodySize => "body_size",
            Limit::DecodedBodySize => "decoded_body_size",
            Limit::SeriesPerRequest => "series_per_request",
            Limit::LabelsPerSeries => "labels_per_series",
            Limit::LabelNameLength => "label_name_length",
            Limit::LabelValueLength => "label_value_length",
            Limit::SeriesCardinality => "series_cardinality",
            Limit::Connections => "connections",
            Limit::InflightBytes => "inflight_bytes",
            Limit::InflightRequests => "inflight_requests",
            Limit::HeaderReadTimeout => "header_read_timeout",
            Limit::BodyReadTimeout => "body_read_timeout",
            Limit::QuerySamples => "query_samples",
            Limit::QueryTimeout => "query_timeout",
            Limit::QueryRangePoints => "query_range_points",
            Limit::RemoteReadSamples => "remote_read_samples",
            Limit::ClientRate => "client_rate",
            Limit::RegexMatchers => "regex_matchers",
        }
    }

    /// The limit a name (as carried by `WireError::Limit` and `ApiError::limit`) means.
    pub fn from_name(name: &str) -> Option<Limit> {
        Limit::ALL.into_iter().find(|l| l.as_str() == name)
    }

    /// Its position in [`Limit::ALL`], for per-limit counters.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Requests one core handles at once, across all its connections; more are answered
/// 503 with `Retry-After`. Each holds a task, its parsed request and, for queries,
/// their working set; the byte budget bounds bodies, this bounds everything else.
/// `/-/healthy`, `/-/ready` and the metrics route are not counted, so probes and
/// scrapes still answer under overload.
pub const INFLIGHT_REQUESTS_PER_CORE_MAX: u64 = 4096;

/// How long a connection refused for `server.max_connections` is kept after its 503 is
/// written, reading (and discarding) what the client sends until it closes: closing a
/// socket with unread data makes the kernel reset it, and the client would see the
/// reset instead of the 503.
pub const REFUSED_CONNECTION_LINGER: Duration = Duration::from_secs(1);

/// `Retry-After` of a 503 that sheds load: a second is long enough for the requests in
/// flight to finish and short enough not to idle a client needlessly.
pub const SHED_RETRY_AFTER_SECONDS: u32 = 1;

/// Bytes of request bodies charged to this core's budget, held by one request and
/// given back when it is dropped (after the answer is built). Raw bodies are charged
/// as they are read, decompressed bodies once decoded.
///
/// A request may always take bytes when no other request on the core holds any, so
/// one request as large as the body limits allow still gets through on an idle core:
/// a core holds at most its budget, or one request, whichever is larger.
#[derive(Debug)]
pub struct Charge<'a> {
    held: &'a AtomicU64,
    budget: u64,
    bytes: u64,
}

impl<'a> Charge<'a> {
    /// A charge of nothing against `held`, the core's bytes in flight.
    pub(crate) fn new(held: &'a AtomicU64, budget: u64) -> Self {
        Charge {
            held,
            budget,
            bytes: 0,
        }
    }

    /// Takes `n` more bytes if the budget allows; false (and nothing taken) if not.
    /// Only the owning core changes `held`, so the check and the add cannot race.
    pub fn try_add(&mut self, n: usize) -> bool {
        let n = n as u64;
        let held = self.held.load(Ordering::Relaxed);
        let others = held.saturating_sub(self.bytes);
        if others > 0 && held.saturating_add(n) > self.budget {
            return false;
        }
        self.held.fetch_add(n, Ordering::Relaxed);
        self.bytes += n;
        true
    }

    /// Gives back everything this charge holds.
    pub fn release(&mut self) {
        self.held.fetch_sub(self.bytes, Ordering::Relaxed);
        self.bytes = 0;
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Charge<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_the_index() {
        for (i, l) in Limit::ALL.into_iter().enumerate() {
            assert_eq!(Limit::from_name(l.as_str()), Some(l));
            assert_eq!(l.index(), i);
        }
        assert_eq!(Limit::from_name("nope"), None);
    }

    #[test]
    fn a_charge_fits_the_budget_unless_it_is_alone() {
        let held = AtomicU64::new(0);
        let mut a = Charge::new(&held, 100);
        // Alone on the core: allowed past the budget.
        assert!(a.try_add(150));
        let mut b = Charge::new(&held, 100);
        assert!(!b.try_add(1));
        a.release();
        assert!(b.try_add(60));
        let mut c = Charge::new(&held, 100);
        assert!(c.try_add(40));
        assert!(!c.try_add(1));
        assert_eq!(held.load(Ordering::Relaxed), 100);
        drop(b);
        drop(c);
        assert_eq!(held.load(Ordering::Relaxed), 0);
    }
}

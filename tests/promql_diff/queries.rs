//! The differential queries: a hand-written list for the corners (modifiers,
//! subqueries, joins, errors) and templates × metric sets for breadth. Everything is
//! generated from the data set's start time, so `@` literals land inside the data.
//! Seeded random compositions of the same pieces reach the nestings no list does.

use crate::data::Rng;

/// Counter selectors, each kind of matcher at least once.
const COUNTERS: [&str; 6] = [
    "http_requests_total",
    r#"http_requests_total{job="api"}"#,
    r#"http_requests_total{code=~"5.."}"#,
    r#"http_requests_total{method!="get",job!~"b.*"}"#,
    r#"process_cpu_seconds_total{instance!~"host-a.*"}"#,
    "request_duration_seconds_count",
];

/// Gauge selectors: fractional/negative, integer, NaN/±Inf, gaps, early end, stale.
const GAUGES: [&str; 8] = [
    "node_temperature_celsius",
    r#"node_temperature_celsius{sensor="cpu"}"#,
    "queue_length",
    "odd_values",
    "gappy",
    "short_lived",
    "stale_marked",
    r#"up{job=~"api|web"}"#,
];

const RANGES: [&str; 4] = ["1m", "5m", "90s", "10m"];

const COUNTER_FUNCS: [&str; 6] = ["rate", "irate", "increase", "resets", "changes", "delta"];

const GAUGE_FUNCS: [&str; 19] = [
    "delta",
    "idelta",
    "deriv",
    "changes",
    "resets",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "last_over_time",
    "present_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "absent_over_time",
    "quantile_over_time(0.5, ",
    "quantile_over_time(0.9, ",
    "predict_linear(, 600)",
    "holt_winters(, 0.5, 0.3)",
];

const INSTANT_FUNCS: [&str; 22] = [
    "abs",
    "ceil",
    "floor",
    "round",
    "sqrt",
    "exp",
    "ln",
    "log2",
    "log10",
    "sgn",
    "-",
    "timestamp",
    "sort",
    "sort_desc",
    "absent",
    "clamp_min(, 0)",
    "clamp_max(, 1.5)",
    "clamp(, -1, 3)",
    "round(, 0.3)",
    "sin",
    "atanh",
    "deg",
];

const AGGREGATIONS: [&str; 13] = [
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "stddev",
    "stdvar",
    "group",
    "topk(2, ",
    "bottomk(1, ",
    "quantile(0.75, ",
    "quantile(0, ",
    r#"count_values("v", "#,
];

const GROUPINGS: [&str; 5] = [
    "",
    " by (job)",
    " without (instance)",
    " by (job, instance)",
    " without (__name__, job)",
];

const BINARY_OPS: [&str; 16] = [
    "+", "-", "*", "/", "%", "^", "==", "!=", ">", "<", ">=", "<=", "== bool", "!= bool", "> bool",
    "<= bool",
];

/// Applies a function template: `f` alone wraps (`f(x)`); with `, ` at the end it
/// takes `x` last (`f(a, x)`); with `(, ` inside, `x` goes first (`f(x, a)`).
fn apply(f: &str, x: &str) -> String {
    if f == "-" {
        return format!("-{x}");
    }
    if let Some((name, rest)) = f.split_once("(, ") {
        return format!("{name}({x}, {rest}");
    }
    if f.ends_with(", ") {
        return format!("{f}{x})");
    }
    format!("{f}({x})")
}

fn aggregate(agg: &str, grouping: &str, x: &str) -> String {
    if let Some(head) = agg.strip_suffix(", ") {
        // `topk(2, x) by (job)` is spelled `topk by (job) (2, x)` too; use the suffix form.
        return format!("{head}, {x}){grouping}");
    }
    format!("{agg}{grouping}({x})")
}

/// The hand list: corners the templates do not reach. `at` is a timestamp in seconds
/// inside the data, for `@` literals.
pub fn hand_list(at: i64) -> Vec<String> {
    let mut q: Vec<String> = [
        // Selectors, offset and @.
        r#"{__name__=~"node_.*|queue_length", job!="batch"}"#,
        r#"{job="gaps"}"#,
        r#"http_requests_total{code="200", method=~"post|put"}"#,
        r#"http_requests_total{job=~".*", instance=~"host-[ab].*"} offset 5m"#,
        "queue_length offset 1h",
        "queue_length offset -10m",
        "rate(http_requests_total[5m] offset 30m)",
        "queue_length @ start()",
        "queue_length @ end()",
        "rate(http_requests_total[5m] @ end())",
        "max_over_time(queue_length[10m] @ start() offset -5m)",
        "sum(rate(http_requests_total[5m] @ start()))",
        "queue_length @ start() - queue_length",
        "gappy",
        "gappy[6m]",
        "short_lived",
        "stale_marked",
        "last_over_time(stale_marked[10m])",
        "count_over_time(stale_marked[30m])",
        "odd_values",
        "up == 0",
        // Magnitudes, irregular timestamps, NaN in a counter, escaped labels.
        "huge_values",
        "sum(huge_values)",
        "avg(huge_values)",
        "avg by (kind) (huge_values)",
        "stddev(huge_values)",
        "stdvar by (kind) (huge_values)",
        "avg_over_time(huge_values[10m])",
        "sum_over_time(huge_values[5m])",
        "stddev_over_time(huge_values[10m])",
        "quantile(0.5, huge_values)",
        "huge_values * 10",
        "huge_values / 1e300",
        "deriv(huge_values[10m])",
        "predict_linear(huge_values[10m], 3600)",
        "holt_winters(huge_values[10m], 0.1, 0.9)",
        r#"huge_values{kind="tiny"} * -1"#,
        r#"count_values("v", huge_values)"#,
        "irregular_gauge",
        "rate(irregular_gauge[5m])",
        "irate(irregular_gauge[5m])",
        "increase(irregular_gauge[90s])",
        "delta(irregular_gauge[2m])",
        "idelta(irregular_gauge[3m])",
        "deriv(irregular_gauge[10m])",
        "changes(irregular_gauge[10m])",
        "count_over_time(irregular_gauge[1m])",
        "rate(nan_counter_total[5m])",
        "increase(nan_counter_total[10m])",
        "resets(nan_counter_total[10m])",
        "changes(nan_counter_total[10m])",
        "irate(nan_counter_total[1m])",
        "deriv(nan_counter_total[5m])",
        "max_over_time(nan_counter_total[5m])",
        "min_over_time(nan_counter_total[5m])",
        "quantile_over_time(0.5, nan_counter_total[5m])",
        "weird_labels",
        r#"weird_labels{path=~".*\\.*"}"#,
        r#"weird_labels{path="a.b*c"}"#,
        r#"weird_labels{path=~"ü.*"}"#,
        r#"label_replace(weird_labels, "p2", "[$1]", "path", "(.)(.*)")"#,
        r#"count by (path) (weird_labels)"#,
        // NaN/±Inf and stale markers through functions.
        r#"count_values("v", odd_values)"#,
        "changes(odd_values[10m])",
        "resets(odd_values[10m])",
        "stdvar_over_time(odd_values[10m])",
        "quantile_over_time(0.5, odd_values[10m])",
        "min_over_time(odd_values[10m])",
        "max_over_time(odd_values[10m])",
        "rate(odd_values[5m])",
        "deriv(odd_values[5m])",
        "holt_winters(odd_values[10m], 0.5, 0.5)",
        "topk(2, odd_values) by (kind)",
        "sort_desc(odd_values * -1)",
        "clamp(odd_values, -0.5, 0.5)",
        "odd_values > bool 0",
        "last_over_time(stale_marked[1m])",
        "present_over_time(stale_marked[1m])",
        "absent_over_time(stale_marked[1m])",
        "irate(stale_marked[2m])",
        "changes(stale_marked[20m])",
        "timestamp(stale_marked)",
        // Windows, steps and modifiers at their edges.
        "count_over_time(queue_length[1s])",
        "count_over_time(queue_length[15s])",
        "rate(http_requests_total[30s])",
        "increase(http_requests_total[16s])",
        "queue_length @ 0",
        "queue_length offset 3d",
        "sum_over_time(queue_length[1m:1s])",
        "min_over_time(time()[5m:1m])",
        "max_over_time(vector(time())[10m:3m])",
        "timestamp(queue_length offset 10m)",
        "timestamp(last_over_time(queue_length[10m]))",
        "predict_linear(queue_length[10m], -600)",
        "holt_winters(queue_length[10m], 1, 0.5)",
        "holt_winters(queue_length[10m], 0.5, 0)",
        "topk(NaN, queue_length)",
        "quantile(NaN, queue_length)",
        "topk(-1, queue_length)",
        "topk(2.9, queue_length)",
        // Matching corners.
        "queue_length + on () group_left sum(up)",
        "queue_length / ignoring (__name__) up",
        "up == on (job, instance) queue_length > 3",
        "sum(up) by (job) * on (job) group_right (queue_length)",
        "queue_length * on (instance) group_left (version, job) build_info",
        r#"label_replace(queue_length, "__name__", "renamed", "job", "(.*)")"#,
        r#"label_replace(queue_length, "job", "$1$1", "job", "(a).*")"#,
        "1 > bool 2 == bool 0",
        "queue_length > 5 unless queue_length > 15",
        "(up or queue_length) and on (instance) build_info",
        // Histograms.
        "histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
        "histogram_quantile(0.5, sum by (job, le) (rate(request_duration_seconds_bucket[5m])))",
        "histogram_quantile(0.99, rate(request_duration_seconds_bucket[10m]))",
        "histogram_quantile(0, sum by (le) (increase(request_duration_seconds_bucket[5m])))",
        "histogram_quantile(1, sum by (le) (increase(request_duration_seconds_bucket[5m])))",
        "histogram_quantile(1.5, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
        "histogram_quantile(-0.5, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
        "histogram_quantile(0.9, request_duration_seconds_bucket)",
        r#"histogram_quantile(0.9, request_duration_seconds_bucket{le!="+Inf"})"#,
        r#"histogram_quantile(0.75, sum without (instance) (rate(request_duration_seconds_bucket{le=~"0.1|0.5|\\+Inf"}[5m])))"#,
        "rate(request_duration_seconds_sum[5m]) / rate(request_duration_seconds_count[5m])",
        // Labels.
        r#"label_replace(up, "host", "$1", "instance", "(.*):.*")"#,
        r#"label_replace(up, "port", "p-$2", "instance", "(.*):(\\d+)")"#,
        r#"label_replace(up, "job", "", "job", "api")"#,
        r#"label_replace(up, "x", "$1", "nonexistent", "(.*)")"#,
        r#"label_replace(up, "instance", "new", "instance", "nomatch")"#,
        r#"label_join(up, "combo", "/", "job", "instance")"#,
        r#"label_join(up, "job", "-", "instance", "job", "missing")"#,
        r#"label_join(queue_length, "empty", ",")"#,
        // Time and date.
        "time()",
        "timestamp(queue_length)",
        "timestamp(http_requests_total{job=\"api\"})",
        "minute()",
        "hour()",
        "day_of_week()",
        "day_of_month()",
        "day_of_year()",
        "days_in_month()",
        "month()",
        "year()",
        "hour(timestamp(queue_length))",
        "minute(queue_length * 1000000)",
        "year(vector(0))",
        "month(vector(1700000000))",
        "day_of_week(vector(-86400))",
        "vector(1)",
        "vector(time())",
        "scalar(queue_length)",
        r#"scalar(queue_length{instance="host-a:9100"})"#,
        r#"queue_length - scalar(queue_length{instance="host-a:9100"})"#,
        "scalar(vector(3.5)) * 2",
        // absent.
        "absent(nonexistent_metric)",
        r#"absent(nonexistent_metric{job="x", instance=~"y"})"#,
        r#"absent(up{job="api"})"#,
        "absent(short_lived)",
        r#"absent_over_time(nonexistent_metric{a="b"}[5m])"#,
        "absent_over_time(short_lived[5m])",
        "absent(sum(nonexistent_metric))",
        // Sorting.
        "sort(queue_length)",
        "sort_desc(queue_length)",
        "sort(odd_values)",
        "sort_desc(odd_values)",
        "sort_desc(rate(http_requests_total[5m]))",
        "sort(sum by (job) (queue_length))",
        // Aggregations.
        "topk(3, http_requests_total)",
        "bottomk(2, queue_length) by (job)",
        "topk by (job) (1, node_temperature_celsius)",
        "topk(1, odd_values)",
        "bottomk(1, odd_values)",
        "topk(0, queue_length)",
        "topk(100, queue_length)",
        "topk(scalar(vector(2)), queue_length)",
        "quantile(0.5, odd_values)",
        "quantile(2, queue_length)",
        "quantile(-1, queue_length)",
        "quantile by (job) (0.25, queue_length)",
        r#"count_values("value", queue_length)"#,
        r#"count_values by (job) ("v", up)"#,
        r#"count_values("job", queue_length)"#,
        "sum(odd_values)",
        "avg(odd_values)",
        "max(odd_values)",
        "min(odd_values)",
        "stddev(odd_values)",
        "sum by (job) (http_requests_total) / ignoring (job) group_left sum(http_requests_total)",
        "avg without (sensor) (node_temperature_celsius)",
        "count by (nonexistent) (up)",
        "sum by (__name__) ({job=\"api\"})",
        // Binary operators and matching.
        "http_requests_total / on (job, instance) group_left process_cpu_seconds_total",
        "process_cpu_seconds_total * on (job, instance) group_right http_requests_total",
        "up * on (instance) group_left (version) build_info",
        "build_info * on (instance) group_left up",
        "queue_length + ignoring (sensor) group_right node_temperature_celsius",
        "node_temperature_celsius > on (job, instance) group_left queue_length",
        "queue_length > bool on (job) group_left sum by (job) (queue_length) / 3",
        "sum by (job) (rate(http_requests_total[5m])) / on (job) sum by (job) (up)",
        "up and queue_length > 5",
        "queue_length and on (job) (up == 0)",
        "queue_length or node_temperature_celsius",
        "queue_length > 10 or queue_length < 3",
        "queue_length unless queue_length > 10",
        "queue_length unless on (job) (up == 0)",
        "up or on (job) queue_length",
        "(queue_length > 15) or vector(0)",
        "queue_length > 5 and bool 1",
        "queue_length > 5 > 8",
        "1 - queue_length / 20",
        "2 ^ 3 ^ 2",
        "-2 ^ 2",
        "5 % -3",
        "-5 % 3",
        "1 / 0",
        "-1 / 0",
        "0 / 0",
        "1 > bool 2",
        "1 == bool 1",
        "vector(1) + vector(2)",
        "queue_length * 0 / 0",
        "queue_length % 3 == bool 1",
        "odd_values * 2",
        "odd_values > 0",
        "odd_values == bool odd_values",
        "odd_values != odd_values",
        "queue_length == queue_length offset 1m",
        "queue_length - queue_length offset 5m",
        "time() - timestamp(up)",
        // Subqueries.
        "max_over_time(rate(http_requests_total[1m])[10m:1m])",
        "avg_over_time(queue_length[30m:])",
        "rate(http_requests_total[5m])[20m:2m]",
        "min_over_time(deriv(node_temperature_celsius[5m])[15m:30s])",
        "sum_over_time(sum by (job) (queue_length)[10m:45s] offset 2m)",
        "max_over_time((queue_length > 10)[1h:5m])",
        "count_over_time(gappy[30m:1m])",
        "last_over_time(stale_marked[1h:10m])",
        "quantile_over_time(0.5, rate(process_cpu_seconds_total[2m])[30m:1m])",
        "rate(sum(http_requests_total)[5m:30s])",
        "deriv(queue_length[10m:])",
        "max_over_time(queue_length[5m:1m] @ end())",
        "avg_over_time(max_over_time(queue_length[2m:20s])[10m:1m])",
        // Scalars and literals.
        "1",
        "-1.5e3",
        "0x1F",
        "Inf",
        "-Inf",
        "NaN",
        r#""a string""#,
        "pi()",
        "1 + 2 * 3",
        "(1 + 2) * 3",
        "time() % 3600",
        "scalar(sum(up))",
        // Errors: compared on HTTP status and errorType only.
        "http_requests_total + process_cpu_seconds_total * on () group_left up",
        "http_requests_total * on (job) up",
        "up * on (job) group_left http_requests_total",
        "queue_length + on (job) group_left queue_length",
        "sum(",
        "rate(queue_length)",
        "rate(queue_length[5m]",
        "unknown_function(up)",
        "up[5m] + 1",
        "topk(queue_length, up)",
        r#"{job=~".*"}"#,
        r#"{__name__=~""}"#,
        "queue_length[5m:1m:1m]",
        "label_replace(up, \"1bad\", \"x\", \"job\", \".*\")",
        "label_replace(up, \"x\", \"x\", \"job\", \"(\")",
        "up @ foo()",
        "histogram_quantile(0.5)",
        r#"count_values("1bad", up)"#,
        "quantile_over_time(\"x\", up[5m])",
        "up offset",
        "1 and 2",
        "\"a\" + 1",
        "sum without(job) by (instance) (up)",
        "-",
        "up{",
        "1 +",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    q.push(format!("queue_length @ {at}"));
    q.push(format!("rate(http_requests_total[5m] @ {at}.5)"));
    q.push(format!("sum_over_time(queue_length[10m] @ {})", at - 1800));
    q.push(format!("avg_over_time(queue_length[10m:1m] @ {at})"));
    q.push(format!("queue_length @ {at} offset 10m"));
    q.push(format!("timestamp(queue_length @ {at})"));
    q.push(format!("vector({at}) - time()"));
    q
}

/// Every generated query, hand list first; `at` as for [`hand_list`].
pub fn all(at: i64) -> Vec<String> {
    let mut out = hand_list(at);
    for (i, sel) in COUNTERS.iter().enumerate() {
        for (j, f) in COUNTER_FUNCS.iter().enumerate() {
            // Two of the four ranges per pair, rotating, keeps the count in hand.
            for r in [RANGES[(i + j) % 4], RANGES[(i + j + 1) % 4]] {
                out.push(apply(f, &format!("{sel}[{r}]")));
            }
        }
    }
    for (i, sel) in GAUGES.iter().enumerate() {
        for (j, f) in GAUGE_FUNCS.iter().enumerate() {
            out.push(apply(f, &format!("{sel}[{}]", RANGES[(i + j) % 4])));
        }
    }
    for (i, sel) in GAUGES.iter().enumerate() {
        for (j, f) in INSTANT_FUNCS.iter().enumerate() {
            if (i + j) % 2 == 0 {
                out.push(apply(f, sel));
            }
        }
    }
    let inner = [
        "queue_length",
        "rate(http_requests_total[5m])",
        "node_temperature_celsius",
        "odd_values",
        "up",
    ];
    for (i, x) in inner.iter().enumerate() {
        for (j, agg) in AGGREGATIONS.iter().enumerate() {
            for (k, g) in GROUPINGS.iter().enumerate() {
                if (i + j + k) % 2 == 0 {
                    out.push(aggregate(agg, g, x));
                }
            }
        }
    }
    let operands = [
        ("queue_length", "up"),
        ("node_temperature_celsius", "2"),
        ("3", "queue_length"),
        ("queue_length", "queue_length offset 2m"),
        ("odd_values", "1"),
        (
            "sum by (job) (queue_length)",
            "ignoring (instance) group_left queue_length",
        ),
        ("rate(http_requests_total[5m])", "0.5"),
        ("2", "-1"),
    ];
    for (i, (a, b)) in operands.iter().enumerate() {
        for (j, op) in BINARY_OPS.iter().enumerate() {
            if (i + j) % 2 == 0 {
                out.push(format!("{a} {op} {b}"));
            }
        }
    }
    for op in ["and", "or", "unless"] {
        for (a, b) in [
            ("queue_length", "up == 1"),
            ("node_temperature_celsius", "queue_length > 8"),
            ("up", r#"queue_length{job="web"}"#),
        ] {
            out.push(format!("{a} {op} {b}"));
            out.push(format!("{a} {op} on (job) {b}"));
            out.push(format!("{a} {op} ignoring (instance) {b}"));
        }
    }
    out
}

/// Metric names for random selectors, each with matchers that select some of it.
const METRICS: [(&str, &[&str]); 9] = [
    (
        "http_requests_total",
        &[
            r#"job="api""#,
            r#"method="post""#,
            r#"code=~"2..""#,
            r#"job!~"b.*""#,
        ],
    ),
    (
        "process_cpu_seconds_total",
        &[r#"job!="web""#, r#"instance=~"host-[a-c].*""#],
    ),
    (
        "queue_length",
        &[r#"job=~"api|batch""#, r#"instance!="host-a:9100""#],
    ),
    (
        "node_temperature_celsius",
        &[r#"sensor=~".+""#, r#"sensor!="cpu""#, r#"job="web""#],
    ),
    ("up", &[r#"job!="web""#, r#"instance=~".*:9.*""#]),
    ("odd_values", &[r#"kind!="nan""#, r#"kind=~"inf|mixed""#]),
    ("gappy", &[r#"instance="g2""#]),
    ("huge_values", &[r#"kind!~"m.*""#, r#"kind=~"max|min""#]),
    ("irregular_gauge", &[r#"job="batch""#]),
];
const SUBQUERY_RANGES: [&str; 4] = ["[10m:1m]", "[5m:]", "[15m:45s]", "[30m:5m]"];

fn pick<'a>(rng: &mut Rng, list: &[&'a str]) -> &'a str {
    list[rng.below(list.len() as u64) as usize]
}

fn random_selector(rng: &mut Rng) -> String {
    let (name, choices) = METRICS[rng.below(METRICS.len() as u64) as usize];
    let mut matchers = Vec::new();
    for _ in 0..rng.below(3) {
        let m = pick(rng, choices);
        if !matchers.contains(&m) {
            matchers.push(m);
        }
    }
    let mut s = if matchers.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", matchers.join(", "))
    };
    match rng.below(10) {
        0 => s.push_str(" offset 3m"),
        1 => s.push_str(" @ end()"),
        2 => s.push_str(" offset -90s"),
        _ => {}
    }
    s
}

/// A range-vector argument: a selector with a range, or a subquery.
fn random_range(rng: &mut Rng, depth: u32) -> String {
    if depth > 0 && rng.below(3) == 0 {
        let inner = random_vector(rng, depth - 1);
        return format!("({inner}){}", pick(rng, &SUBQUERY_RANGES));
    }
    let sel = random_selector(rng);
    random_range_of(&sel, pick(rng, &RANGES))
}

fn random_scalar(rng: &mut Rng) -> String {
    pick(
        rng,
        // Compound ones in parentheses: `x ^ time() % 97` would take a remainder of
        // a huge power, where the last bit of the power decides every digit.
        &[
            "2",
            "0.5",
            "-1",
            "0",
            "1e3",
            "scalar(sum(up))",
            "(time() % 97)",
            "NaN",
        ],
    )
    .to_string()
}

/// A random instant-vector expression of nesting at most `depth`.
fn random_vector(rng: &mut Rng, depth: u32) -> String {
    if depth == 0 || rng.below(5) == 0 {
        return random_selector(rng);
    }
    match rng.below(7) {
        0 | 1 => {
            let f = pick(
                rng,
                &[COUNTER_FUNCS.as_slice(), GAUGE_FUNCS.as_slice()].concat(),
            );
            apply(f, &random_range(rng, depth - 1))
        }
        2 => {
            // Not `sin` of any expression: `sin(1e3 ^ x)` turns the last bit of a
            // power (libm-dependent) into the first digit.
            let f = pick(rng, &INSTANT_FUNCS);
            let f = if f == "sin" { "sgn" } else { f };
            apply(f, &random_vector(rng, depth - 1))
        }
        3 => aggregate(
            pick(rng, &AGGREGATIONS),
            pick(rng, &GROUPINGS),
            &random_vector(rng, depth - 1),
        ),
        4 => {
            let a = random_vector(rng, depth - 1);
            let op = random_op(rng);
            let s = random_scalar(rng);
            if rng.below(2) == 0 {
                format!("{a} {op} {s}")
            } else {
                format!("{s} {op} ({a})")
            }
        }
        5 => {
            // One side aggregated by job, joined many-to-one.
            let a = random_vector(rng, depth - 1);
            let b = random_vector(rng, depth - 1);
            let op = pick(rng, &["+", "/", "> bool", "<", "and", "unless", "or"]);
            let set = matches!(op, "and" | "unless" | "or");
            let card = if set { "" } else { " group_left" };
            format!("{a} {op} on (job){card} sum by (job) ({b})")
        }
        _ => {
            // Same series on both sides: one-to-one matches.
            let sel = random_selector(rng);
            let f = pick(rng, &["rate", "avg_over_time", "max_over_time", "deriv"]);
            let op = random_op(rng);
            format!(
                "{f}({}) {op} {sel}",
                random_range_of(&sel, pick(rng, &RANGES))
            )
        }
    }
}

/// A binary operator for random expressions: not `^` or `%`, which are ill-conditioned
/// (the templates and the hand list use them on chosen operands). Go's `math.Pow` and
/// libm's `pow` differ in the last bit, and `x % 0.5` of an x near 1e4 turns the last
/// bits of x (which depend on the order Prometheus sums in, Go map order in range
/// queries) into leading digits.
fn random_op(rng: &mut Rng) -> &'static str {
    loop {
        let op = pick(rng, &BINARY_OPS);
        if op != "^" && op != "%" {
            return op;
        }
    }
}

/// `sel` with a range, which goes before its offset/@ modifiers.
fn random_range_of(sel: &str, range: &str) -> String {
    match sel.find(" offset").or_else(|| sel.find(" @")) {
        Some(i) => format!("{}[{range}]{}", &sel[..i], &sel[i..]),
        None => format!("{sel}[{range}]"),
    }
}

/// `n` seeded random expressions of nesting up to three. A rank selection (topk,
/// bottomk) only at the top: among equal values Prometheus keeps whichever series its
/// Go map order put first, so a nested one may join or group other labels, run to run.
pub fn random(seed: u64, n: usize) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let q = random_vector(&mut rng, 3);
        let ranks = q.matches("topk").count() + q.matches("bottomk").count();
        if ranks == 0 || (ranks == 1 && (q.starts_with("topk") || q.starts_with("bottomk"))) {
            out.push(q);
        }
    }
    out
}

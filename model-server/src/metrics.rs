//! `/metrics` in the Prometheus text format: requests by route and status, an inference latency
//! histogram, rows predicted, capture counters, and the model version served.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_ns: AtomicU64,
    pub rows: AtomicU64,
    pub captured_rows: AtomicU64,
    pub capture_dropped_rows: AtomicU64,
    pub capture_failures: AtomicU64,
}

impl Metrics {
    pub fn request(&self, route: &'static str, status: u16) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route, status)).or_default() += 1;
        }
    }

    pub fn latency(&self, seconds: f64) {
        for (b, bound) in self.buckets.iter().zip(BUCKETS) {
            if seconds <= bound {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_ns
            .fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self, model: &str, version: &str, ready: bool) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP medallion_serve_model_info The model version served.\n# TYPE medallion_serve_model_info gauge"
        );
        let _ = writeln!(
            s,
            "medallion_serve_model_info{{model=\"{model}\",version=\"{version}\"}} 1"
        );
        let _ = writeln!(
            s,
            "# HELP medallion_serve_ready Whether the model is loaded.\n# TYPE medallion_serve_ready gauge\nmedallion_serve_ready {}",
            u8::from(ready)
        );
        let _ = writeln!(
            s,
            "# HELP medallion_serve_requests_total HTTP requests by route and status.\n# TYPE medallion_serve_requests_total counter"
        );
        if let Ok(m) = self.requests.lock() {
            for ((route, status), n) in m.iter() {
                let _ = writeln!(
                    s,
                    "medallion_serve_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            s,
            "# HELP medallion_serve_inference_duration_seconds Time to answer an inference request.\n# TYPE medallion_serve_inference_duration_seconds histogram"
        );
        for (b, bound) in self.buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                s,
                "medallion_serve_inference_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                b.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "medallion_serve_inference_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            s,
            "medallion_serve_inference_duration_seconds_sum {}",
            self.latency_sum_ns.load(Ordering::Relaxed) as f64 / 1e9
        );
        let _ = writeln!(
            s,
            "medallion_serve_inference_duration_seconds_count {count}"
        );
        for (name, help, v) in [
            ("medallion_serve_rows_total", "Rows predicted.", &self.rows),
            (
                "medallion_serve_captured_rows_total",
                "Rows written to the request capture.",
                &self.captured_rows,
            ),
            (
                "medallion_serve_capture_dropped_rows_total",
                "Sampled rows dropped because the capture queue was full.",
                &self.capture_dropped_rows,
            ),
            (
                "medallion_serve_capture_failures_total",
                "Capture batches that could not be written.",
                &self.capture_failures,
            ),
        ] {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        s
    }
}

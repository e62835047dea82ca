//! Prometheus metrics: request counts and latencies by route and status,
//! uploads accepted and rejected by reason, bytes stored, variant job
//! durations and the job queue by state. Always counted (a few atomic
//! adds); exposed at `/metrics` only when `metrics.enabled`.

use std::borrow::Cow;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

// Borrowed labels: counting a request allocates nothing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: Cow<'static, str>,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: Cow<'static, str>,
    pub method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

/// Where an accepted upload's sizes were made: `inline` (within the
/// upload) or `job` (handed to the resize queue).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SizesPathLabels {
    pub path: &'static str,
}

/// Why the edge refused or closed a connection.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EdgeLabels {
    pub reason: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.1 ms to ~3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

fn job_histogram() -> Histogram {
    // 5 ms to ~80 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

pub struct Metrics {
    registry: Mutex<Registry>,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: HistogramFamily<RouteLabels>,
    pub uploads_accepted: Counter,
    pub uploads_rejected: Family<ReasonLabels, Counter>,
    pub stored_bytes: Gauge,
    pub variant_jobs_seconds: Histogram,
    pub variant_jobs: Family<StateLabels, Gauge>,
    pub upload_sizes: Family<SizesPathLabels, Counter>,
    pub edge_connections: Gauge,
    pub edge_drops: Family<EdgeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("kitteh");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let uploads_accepted = Counter::default();
        let uploads_rejected = Family::<ReasonLabels, Counter>::default();
        let stored_bytes = Gauge::default();
        let variant_jobs_seconds = job_histogram();
        let variant_jobs = Family::<StateLabels, Gauge>::default();
        let upload_sizes = Family::<SizesPathLabels, Counter>::default();
        let edge_connections = Gauge::default();
        let edge_drops = Family::<EdgeLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests, by route and method",
            latency.clone(),
        );
        registry.register(
            "uploads_accepted",
            "Uploads stored",
            uploads_accepted.clone(),
        );
        registry.register(
            "uploads_rejected",
            "Uploads refused, by reason",
            uploads_rejected.clone(),
        );
        registry.register(
            "stored_bytes",
            "Bytes of originals and variants recorded in the database",
            stored_bytes.clone(),
        );
        registry.register(
            "variant_job_duration_seconds",
            "Time to make all sizes of one image",
            variant_jobs_seconds.clone(),
        );
        registry.register(
            "variant_jobs",
            "Variant jobs by state",
            variant_jobs.clone(),
        );
        registry.register(
            "upload_sizes",
            "Accepted uploads by where their sizes were made: inline or job",
            upload_sizes.clone(),
        );
        registry.register(
            "edge_connections",
            "Client connections open at the edge",
            edge_connections.clone(),
        );
        registry.register(
            "edge_connections_dropped",
            "Connections the edge refused (max_connections, max_connections_per_client) or closed (header_timeout, idle_timeout, body_timeout)",
            edge_drops.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            requests,
            latency,
            uploads_accepted,
            uploads_rejected,
            stored_bytes,
            variant_jobs_seconds,
            variant_jobs,
            upload_sizes,
            edge_connections,
            edge_drops,
        }
    }
}

impl Metrics {
    pub fn record_request(
        &self,
        route: Cow<'static, str>,
        method: &'static str,
        status: u16,
        seconds: f64,
    ) {
        self.latency
            .get_or_create(&RouteLabels {
                route: route.clone(),
                method,
            })
            .observe(seconds);
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status,
            })
            .inc();
    }

    pub fn record_upload(&self, outcome: Result<(), &str>) {
        match outcome {
            Ok(()) => {
                self.uploads_accepted.inc();
            }
            Err(reason) => {
                self.uploads_rejected
                    .get_or_create(&ReasonLabels {
                        reason: reason.to_string(),
                    })
                    .inc();
            }
        }
    }

    /// Counts a connection the edge refused or closed.
    pub fn record_edge_drop(&self, reason: &'static str) {
        self.edge_drops.get_or_create(&EdgeLabels { reason }).inc();
    }

    /// Counts where an accepted upload's sizes were made.
    pub fn record_sizes_path(&self, inline: bool) {
        let path = if inline { "inline" } else { "job" };
        self.upload_sizes
            .get_or_create(&SizesPathLabels { path })
            .inc();
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = match self.registry.lock() {
            Ok(r) => r,
            // A panic while encoding cannot leave the registry inconsistent:
            // it is only read.
            Err(poisoned) => poisoned.into_inner(),
        };
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

//! Figures an operator watches, in the Prometheus text format at `GET /metrics` (the `metrics`
//! facade with its Prometheus exporter). Labels are bounded: routes are the matched templates
//! (`/scim/v2/Users/{id}`, never a raw path), and organizations are labelled by slug for the
//! first `ORG_LABELS` organizations this process sees, `other` after that.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `scimd_http_requests_total` | counter | `method`, `route`, `status` |
//! | `scimd_http_request_duration_seconds` | histogram | `method`, `route` |
//! | `scimd_scim_errors_total` | counter | `status`, `scim_type` |
//! | `scimd_provisioning_total` | counter | `org`, `kind`, `op` |
//! | `scimd_rate_limited_total` | counter | `org` |
//! | `scimd_sign_ins_total` | counter | `outcome` |
//! | `scimd_outbox_deliveries_total` | counter | `outcome` (`sent`, `retry`, `failed`) |
//! | `scimd_outbox_pending` | gauge | |
//! | `scimd_db_connections` | gauge | `pool`, `state` (`in_use`, `open`, `max`) |
//! | `scimd_request_log_written_total` | counter | |
//! | `scimd_request_log_dropped_total` | counter | |

use crate::store::DynStore;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

/// Organizations that get a label of their own; the rest are `other`.
pub const ORG_LABELS: usize = 100;

/// Latency buckets, in seconds: a lookup takes a millisecond, a large page or bulk seconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls return the same handle).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let built = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("scimd_http_request_duration_seconds".into()),
                    BUCKETS,
                )
                .and_then(|b| b.install_recorder());
            match built {
                Ok(h) => {
                    // Histogram samples wait in buckets until upkeep folds them in: without it
                    // they would pile up between scrapes.
                    let upkeep = h.clone();
                    let _ = std::thread::Builder::new()
                        .name("scimd-metrics-upkeep".into())
                        .spawn(move || loop {
                            std::thread::sleep(std::time::Duration::from_secs(5));
                            upkeep.run_upkeep();
                        });
                    Some(h)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// The exposition text, with the gauges read now (pools, outbox).
pub async fn render(store: &DynStore) -> String {
    for p in store.pool_stats().await {
        for (state, v) in [("in_use", p.in_use), ("open", p.open), ("max", p.max)] {
            metrics::gauge!("scimd_db_connections", "pool" => p.name, "state" => state)
                .set(v as f64);
        }
    }
    match store.outbox_pending().await {
        Ok(n) => metrics::gauge!("scimd_outbox_pending").set(n as f64),
        Err(e) => tracing::warn!(error = %e, "metrics: outbox depth unknown"),
    }
    handle().map(PrometheusHandle::render).unwrap_or_default()
}

/// One answered HTTP request.
pub fn request(method: &str, route: &str, status: u16, seconds: f64) {
    let (method, route) = (method.to_owned(), route.to_owned());
    metrics::counter!("scimd_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("scimd_http_request_duration_seconds", "method" => method, "route" => route)
        .record(seconds);
}

/// One SCIM error answered (RFC 7644 §3.12).
pub fn scim_error(status: u16, scim_type: Option<&'static str>) {
    metrics::counter!("scimd_scim_errors_total", "status" => status.to_string(), "scim_type" => scim_type.unwrap_or("none"))
        .increment(1);
}

/// The label an organization gets: its slug while fewer than `ORG_LABELS` have been seen.
fn org_label(slug: &str) -> String {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let Ok(mut seen) = SEEN.get_or_init(Mutex::default).lock() else {
        return "other".into();
    };
    if seen.contains(slug) || (seen.len() < ORG_LABELS && seen.insert(slug.to_owned())) {
        slug.to_owned()
    } else {
        "other".into()
    }
}

/// A provisioning change by an identity provider (`op`: create, replace, patch, delete).
pub fn provisioned(org_slug: &str, kind: &'static str, op: &'static str) {
    metrics::counter!("scimd_provisioning_total", "org" => org_label(org_slug), "kind" => kind, "op" => op)
        .increment(1);
}

/// A request refused by a provisioning token's rate limit.
pub fn rate_limited(org_slug: &str) {
    metrics::counter!("scimd_rate_limited_total", "org" => org_label(org_slug)).increment(1);
}

/// How a sign-in ended: `success`, `wrong` (credentials), `limited` (too many attempts),
/// `invalid` (a malformed request) or `error`. Sign-in code calls this once per attempt.
pub fn sign_in(outcome: &'static str) {
    metrics::counter!("scimd_sign_ins_total", "outcome" => outcome).increment(1);
}

/// One email delivery attempt: `sent`, `retry` or `failed` (given up).
pub fn outbox_delivery(outcome: &'static str) {
    metrics::counter!("scimd_outbox_deliveries_total", "outcome" => outcome).increment(1);
}

/// Request-log entries dropped (queue full, or a batch the database refused).
pub fn request_log_dropped(n: u64) {
    metrics::counter!("scimd_request_log_dropped_total").increment(n);
}

/// Request-log entries written.
pub fn request_log_written(n: u64) {
    metrics::counter!("scimd_request_log_written_total").increment(n);
}

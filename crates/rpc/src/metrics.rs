//! What an HTTP service counts for `/debug/metrics/prometheus`: requests by command and status,
//! time to the response headers, and bytes in and out per command. The RPC API labels by
//! command; the node uses a second set for the gateway, labelled by path kind. Labels are
//! bounded: a command name the server does not know counts as `unknown`.

use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    command: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabel {
    command: &'static str,
}

type HistogramFamily = Family<CommandLabel, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 100 µs to about 13 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

/// The API's counters; clones share them.
#[derive(Clone, Debug)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    bytes_in: Family<CommandLabel, Counter>,
    bytes_out: Family<CommandLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            bytes_in: Family::default(),
            bytes_out: Family::default(),
        }
    }
}

impl Metrics {
    /// Adds these metrics to `registry` (which should carry the `ipfs_kit_rpc` prefix).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "requests",
            "RPC requests by command and HTTP status",
            self.requests.clone(),
        );
        registry.register_with_unit(
            "response_headers",
            "Time from a request's arrival to its response headers",
            Unit::Seconds,
            self.latency.clone(),
        );
        registry.register_with_unit(
            "received",
            "Request body bytes received, by command",
            Unit::Bytes,
            self.bytes_in.clone(),
        );
        registry.register_with_unit(
            "sent",
            "Response body bytes sent, by command",
            Unit::Bytes,
            self.bytes_out.clone(),
        );
    }

    /// Counts one answered request and the time to its headers.
    pub fn observe(&self, command: &'static str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels { command, status })
            .inc();
        self.latency
            .get_or_create(&CommandLabel { command })
            .observe(took.as_secs_f64());
    }

    /// Counts the body bytes of `resp` for `command` as they are sent. A body of known length
    /// is counted at once and left alone, keeping its Content-Length.
    pub fn count_sent(&self, command: &'static str, resp: Response) -> Response {
        let sent = self
            .bytes_out
            .get_or_create(&CommandLabel { command })
            .clone();
        if let Some(n) = HttpBody::size_hint(resp.body()).exact() {
            sent.inc_by(n);
            return resp;
        }
        // Frame by frame, so trailers (`X-Stream-Error`) pass through.
        resp.map(|body| {
            Body::new(http_body_util::BodyExt::map_frame(body, move |frame| {
                if let Some(data) = frame.data_ref() {
                    sent.inc_by(data.len() as u64);
                }
                frame
            }))
        })
    }

    pub(crate) fn bytes_in(&self, command: &'static str) -> Counter {
        self.bytes_in
            .get_or_create(&CommandLabel { command })
            .clone()
    }
}

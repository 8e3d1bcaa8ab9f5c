//! Prometheus metrics served at `/metrics`. Label sets are bounded: source, adapter (the
//! configured names), outcome and reason (a closed set); never a credential or a tenant.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::verify::{Decision, Source};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerificationLabels {
    /// `native`, `legacy` or `none` when no verifier recognised the credential.
    pub source: String,
    /// The adapter name, or empty for native credentials.
    pub adapter: String,
    pub outcome: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdapterLabels {
    pub adapter: String,
}

/// Key freshness of one adapter with fetched keys, read when metrics are scraped.
#[derive(Clone, Debug)]
pub struct AdapterKeyHealth {
    pub adapter: String,
    /// Seconds since the last successful fetch; `None` before the first one.
    pub age_seconds: Option<i64>,
    pub fetch_failures: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

/// The daemon's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    verifications: Family<VerificationLabels, Counter>,
    verify_seconds: Family<SourceLabels, Histogram>,
    token_issues: Family<OutcomeLabels, Counter>,
    exchanges: Family<OutcomeLabels, Counter>,
    audit_queue_depth: Gauge,
    key_set_age: Family<AdapterLabels, Gauge>,
    key_fetch_failures: Family<AdapterLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("authbridge");
        let verifications = Family::<VerificationLabels, Counter>::default();
        registry.register(
            "verifications",
            "Credentials verified, by source, adapter, outcome and reason",
            verifications.clone(),
        );
        // Buckets from 50 µs to about 1.6 s, doubling.
        let verify_seconds = Family::<SourceLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
        });
        registry.register(
            "verify_duration_seconds",
            "Time to verify one credential, by source",
            verify_seconds.clone(),
        );
        let token_issues = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "token_issues",
            "client_credentials token requests, by outcome",
            token_issues.clone(),
        );
        let exchanges = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "token_exchanges",
            "RFC 8693 token exchanges, by outcome",
            exchanges.clone(),
        );
        let audit_queue_depth = Gauge::default();
        registry.register(
            "audit_queue_depth",
            "Audit events waiting to be written",
            audit_queue_depth.clone(),
        );
        let key_set_age = Family::<AdapterLabels, Gauge>::default();
        registry.register(
            "legacy_key_set_age_seconds",
            "Seconds since an adapter last fetched its keys (JWKS, discovery or certificates)",
            key_set_age.clone(),
        );
        let key_fetch_failures = Family::<AdapterLabels, Gauge>::default();
        registry.register(
            "legacy_key_fetch_failures",
            "Failed key set fetches of an adapter since start",
            key_fetch_failures.clone(),
        );
        Self {
            registry,
            verifications,
            verify_seconds,
            token_issues,
            exchanges,
            audit_queue_depth,
            key_set_age,
            key_fetch_failures,
        }
    }

    /// Counts one verification decision and its duration.
    pub fn observe_verification(&self, decision: &Decision, seconds: f64) {
        let (source, adapter) = match decision.identity.as_ref().map(|i| &i.source) {
            Some(Source::Native) => ("native", String::new()),
            Some(Source::Legacy(name)) => ("legacy", name.clone()),
            None => ("none", String::new()),
        };
        let labels = VerificationLabels {
            source: source.to_owned(),
            adapter,
            outcome: if decision.is_valid() {
                "valid"
            } else {
                "invalid"
            }
            .to_owned(),
            reason: decision.reason.as_str().to_owned(),
        };
        self.verifications.get_or_create(&labels).inc();
        self.verify_seconds
            .get_or_create(&SourceLabels {
                source: source.to_owned(),
            })
            .observe(seconds);
    }

    pub fn count_token_issue(&self, outcome: &str) {
        self.token_issues
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn count_exchange(&self, outcome: &str) {
        self.exchanges
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Renders the OpenMetrics text, with the current audit queue depth and key freshness.
    pub fn render(&self, audit_queue_depth: usize, key_health: &[AdapterKeyHealth]) -> String {
        self.audit_queue_depth
            .set(i64::try_from(audit_queue_depth).unwrap_or(i64::MAX));
        for health in key_health {
            let labels = AdapterLabels {
                adapter: health.adapter.clone(),
            };
            if let Some(age) = health.age_seconds {
                self.key_set_age.get_or_create(&labels).set(age);
            }
            self.key_fetch_failures
                .get_or_create(&labels)
                .set(i64::try_from(health.fetch_failures).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        if let Err(error) = encode(&mut text, &self.registry) {
            tracing::error!(%error, "encoding metrics failed");
        }
        text
    }
}

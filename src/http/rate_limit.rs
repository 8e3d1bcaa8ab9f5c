//! Limiting repeated failed credential checks per client address: an address that fails more
//! than `rate_limit.failures_per_window` times within `rate_limit.window_seconds` gets 429 with
//! `Retry-After` for the rest of that window, before any verification work. Addresses without
//! failures cost one cache lookup and are never delayed.
//!
//! One counter per address serves every endpoint that checks a presented credential, so guessing
//! on one endpoint spends the budget of all of them. These are `/v1/verify`, `/v1/forward-auth`,
//! client authentication at `/oauth/token`, `/oauth/introspect` and `/oauth/revoke`, the subject
//! and actor tokens of a token exchange, the admin API and the dashboard.
//!
//! The window is fixed: it starts at an address's first failure. Counters are held in a bounded
//! cache of [`MAX_TRACKED_ADDRESSES`] entries, so a flood of addresses evicts entries rather
//! than growing memory.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use ipnet::IpNet;

use super::RequestInfo;
use crate::clock::SharedClock;

/// Maximum number of client addresses with a failure counter. Filled by 400,000 failing
/// addresses, the counters took about 44 MiB of resident memory (measured once on x86-64 Linux).
pub const MAX_TRACKED_ADDRESSES: u64 = 100_000;

struct Window {
    started_at: i64,
    failures: AtomicU32,
}

/// Failure counters per client address.
pub struct FailureLimiter {
    windows: moka::sync::Cache<IpAddr, Arc<Window>>,
    limit: u32,
    window_seconds: i64,
    trusted_proxies: Vec<IpNet>,
    clock: SharedClock,
}

impl std::fmt::Debug for FailureLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailureLimiter")
            .field("limit", &self.limit)
            .field("window_seconds", &self.window_seconds)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish_non_exhaustive()
    }
}

impl FailureLimiter {
    /// Creates a limiter that allows `limit` failures per `window_seconds`. A limit of 0 turns
    /// it off. `X-Forwarded-For` is read only from peers within `trusted_proxies`.
    pub fn new(
        limit: u32,
        window_seconds: u64,
        trusted_proxies: Vec<IpNet>,
        clock: SharedClock,
    ) -> Self {
        Self::with_capacity(
            limit,
            window_seconds,
            trusted_proxies,
            clock,
            MAX_TRACKED_ADDRESSES,
        )
    }

    fn with_capacity(
        limit: u32,
        window_seconds: u64,
        trusted_proxies: Vec<IpNet>,
        clock: SharedClock,
        capacity: u64,
    ) -> Self {
        let window_seconds = window_seconds.max(1);
        Self {
            windows: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(Duration::from_secs(window_seconds))
                .build(),
            limit,
            window_seconds: i64::try_from(window_seconds).unwrap_or(i64::MAX),
            trusted_proxies,
            clock,
        }
    }

    /// Returns the address that the failures of a request count under: the TCP peer, or the
    /// client named in `X-Forwarded-For` when the peer is a trusted proxy. An IPv6 address
    /// counts as its /64 network, because one host is commonly assigned a whole /64.
    pub fn address_of(&self, info: &RequestInfo, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = info.client_address.as_deref()?.parse::<IpAddr>().ok()?;
        let client = if self.is_trusted(peer) {
            self.forwarded_client(peer, headers)
        } else {
            peer
        };
        Some(counting_key(client))
    }

    fn is_trusted(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.trusted_proxies
            .iter()
            .any(|network| network.contains(&address))
    }

    /// Walks `X-Forwarded-For` from the right, past the trusted proxies, to the first address
    /// that a trusted proxy received the request from. Entries left of it are the client's own
    /// and can be forged, so they are not read. An entry that is not an IP address stops the
    /// walk at the last trusted hop.
    fn forwarded_client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for entry in entries.iter().rev() {
            let Ok(address) = entry.parse::<IpAddr>() else {
                break;
            };
            client = address;
            if !self.is_trusted(address) {
                break;
            }
        }
        client
    }

    /// Returns the seconds to wait when `address` is over its limit.
    pub fn blocked_for(&self, address: Option<IpAddr>) -> Option<i64> {
        if self.limit == 0 {
            return None;
        }
        let window = self.windows.get(&address?)?;
        let remaining = window.started_at + self.window_seconds - self.clock.now();
        (window.failures.load(Ordering::Relaxed) >= self.limit && remaining > 0)
            .then_some(remaining)
    }

    /// Counts one failed credential check of `address`.
    pub fn record_failure(&self, address: Option<IpAddr>) {
        let Some(address) = address.filter(|_| self.limit > 0) else {
            return;
        };
        let now = self.clock.now();
        let window = self.windows.get_with(address, || {
            Arc::new(Window {
                started_at: now,
                failures: AtomicU32::new(0),
            })
        });
        if now >= window.started_at + self.window_seconds {
            self.windows.insert(
                address,
                Arc::new(Window {
                    started_at: now,
                    failures: AtomicU32::new(1),
                }),
            );
            return;
        }
        let count = window.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if count == self.limit {
            tracing::warn!(client.address = %address, failures = count, "client address reached the failed verification limit");
        }
    }

    /// Returns the number of addresses with a counter, after pending evictions ran.
    pub fn tracked_addresses(&self) -> u64 {
        self.windows.run_pending_tasks();
        self.windows.entry_count()
    }
}

/// Maps an address to the key its failures count under: IPv4 (also IPv4-mapped IPv6) as it is,
/// other IPv6 addresses as their /64 network.
fn counting_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(network))
        }
    }
}

/// Verifies `credential` for a request unless its client address is blocked, and counts a
/// credential that does not verify (401) as a failure of that address. Used by every endpoint
/// whose caller presents the credential under check in a header.
pub async fn verify_limited(
    app: &crate::app::App,
    info: &RequestInfo,
    headers: &HeaderMap,
    credential: &str,
    requirements: &crate::verify::Requirements,
) -> Result<crate::verify::Decision, super::ApiError> {
    let address = app.failure_limiter.address_of(info, headers);
    if let Some(seconds) = app.failure_limiter.blocked_for(address) {
        return Err(super::ApiError::TooManyRequests(seconds));
    }
    let decision = app.verifier.verify(credential, requirements).await;
    if decision.http_status() == 401 {
        app.failure_limiter.record_failure(address);
    }
    Ok(decision)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn info(peer: &str) -> RequestInfo {
        RequestInfo {
            client_address: Some(peer.to_owned()),
            request_id: None,
        }
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().unwrap());
        headers
    }

    fn limiter(trusted: &[&str]) -> FailureLimiter {
        let networks = trusted.iter().map(|t| t.parse().unwrap()).collect();
        FailureLimiter::new(3, 60, networks, ManualClock::new(0))
    }

    #[test]
    fn blocks_after_limit_until_window_ends() {
        let clock = ManualClock::new(1000);
        let limiter = FailureLimiter::new(3, 60, Vec::new(), clock.clone());
        let address: Option<IpAddr> = "192.0.2.7".parse().ok();
        let other: Option<IpAddr> = "192.0.2.8".parse().ok();
        for _ in 0..2 {
            limiter.record_failure(address);
        }
        assert_eq!(limiter.blocked_for(address), None, "below the limit");
        limiter.record_failure(address);
        assert_eq!(limiter.blocked_for(address), Some(60), "at the limit");
        assert_eq!(
            limiter.blocked_for(other),
            None,
            "other addresses are not affected"
        );
        clock.advance(60);
        assert_eq!(limiter.blocked_for(address), None, "the window ended");
    }

    #[test]
    fn zero_limit_turns_it_off() {
        let clock = ManualClock::new(0);
        let limiter = FailureLimiter::new(0, 60, Vec::new(), clock);
        let address: Option<IpAddr> = "192.0.2.7".parse().ok();
        limiter.record_failure(address);
        assert_eq!(limiter.blocked_for(address), None);
    }

    #[test]
    fn memory_is_bounded_under_address_flood() {
        let capacity = 1000;
        let limiter =
            FailureLimiter::with_capacity(3, 60, Vec::new(), ManualClock::new(0), capacity);
        for index in 0..20 * capacity as u32 {
            let address = IpAddr::V4(std::net::Ipv4Addr::from(0x0A00_0000 + index));
            limiter.record_failure(Some(address));
        }
        let tracked = limiter.tracked_addresses();
        assert!(tracked > 0, "some addresses are tracked");
        assert!(
            tracked <= capacity,
            "{tracked} addresses tracked, more than the capacity {capacity}"
        );
    }

    #[test]
    fn peer_address_counts_without_trusted_proxies() {
        let limiter = limiter(&[]);
        let address = limiter.address_of(&info("192.0.2.7"), &forwarded("198.51.100.1"));
        assert_eq!(address, "192.0.2.7".parse().ok());
    }

    #[test]
    fn trusted_proxy_hands_on_forwarded_client() {
        let limiter = limiter(&["10.0.0.0/8"]);
        let headers = forwarded("203.0.113.9, 198.51.100.1, 10.1.2.3");
        let address = limiter.address_of(&info("10.0.0.5"), &headers);
        assert_eq!(
            address,
            "198.51.100.1".parse().ok(),
            "the rightmost untrusted entry counts, not the forgeable leftmost one"
        );
    }

    #[test]
    fn untrusted_peer_cannot_forge_forwarded_address() {
        let limiter = limiter(&["10.0.0.0/8"]);
        let address = limiter.address_of(&info("192.0.2.7"), &forwarded("198.51.100.1"));
        assert_eq!(address, "192.0.2.7".parse().ok());
    }

    #[test]
    fn invalid_forwarded_entry_stops_at_last_trusted_hop() {
        let limiter = limiter(&["10.0.0.0/8"]);
        let headers = forwarded("198.51.100.1, unknown, 10.1.2.3");
        let address = limiter.address_of(&info("10.0.0.5"), &headers);
        assert_eq!(address, "10.1.2.3".parse().ok());
    }

    #[test]
    fn trusted_proxy_without_header_counts_itself() {
        let limiter = limiter(&["10.0.0.0/8"]);
        let address = limiter.address_of(&info("10.0.0.5"), &HeaderMap::new());
        assert_eq!(address, "10.0.0.5".parse().ok());
    }

    #[test]
    fn ipv6_addresses_count_per_64_network() {
        let limiter = limiter(&[]);
        let first = limiter.address_of(&info("2001:db8:1:2::1"), &HeaderMap::new());
        let second = limiter.address_of(&info("2001:db8:1:2:ffff::9"), &HeaderMap::new());
        let other_network = limiter.address_of(&info("2001:db8:1:3::1"), &HeaderMap::new());
        assert_eq!(first, "2001:db8:1:2::".parse().ok());
        assert_eq!(first, second, "one /64 shares a counter");
        assert_ne!(first, other_network, "another /64 has its own counter");
    }

    #[test]
    fn ipv4_mapped_address_counts_as_ipv4() {
        let limiter = limiter(&[]);
        let address = limiter.address_of(&info("::ffff:192.0.2.7"), &HeaderMap::new());
        assert_eq!(address, "192.0.2.7".parse().ok());
    }
}

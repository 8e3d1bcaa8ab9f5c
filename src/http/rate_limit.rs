//! Limiting repeated failed verifications per client address: an address that fails more than
//! `rate_limit.failures_per_window` times within `rate_limit.window_seconds` gets 429 with
//! `Retry-After` for the rest of that window, before any verification work. Addresses without
//! failures cost one cache lookup and are never delayed.
//!
//! The window is fixed: it starts at an address's first failure. Counters are held in a bounded
//! cache, so a flood of addresses evicts old entries rather than growing memory.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::SharedClock;

struct Window {
    started_at: i64,
    failures: AtomicU32,
}

/// Failure counters per client address.
pub struct FailureLimiter {
    windows: moka::sync::Cache<IpAddr, Arc<Window>>,
    limit: u32,
    window_seconds: i64,
    clock: SharedClock,
}

impl std::fmt::Debug for FailureLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailureLimiter")
            .field("limit", &self.limit)
            .field("window_seconds", &self.window_seconds)
            .finish_non_exhaustive()
    }
}

impl FailureLimiter {
    /// Creates a limiter that allows `limit` failures per `window_seconds`. A limit of 0 turns
    /// it off.
    pub fn new(limit: u32, window_seconds: u64, clock: SharedClock) -> Self {
        let window_seconds = window_seconds.max(1);
        Self {
            windows: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(window_seconds))
                .build(),
            limit,
            window_seconds: i64::try_from(window_seconds).unwrap_or(i64::MAX),
            clock,
        }
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

    /// Counts one failed verification of `address`.
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn blocks_after_limit_until_window_ends() {
        let clock = ManualClock::new(1000);
        let limiter = FailureLimiter::new(3, 60, clock.clone());
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
        let limiter = FailureLimiter::new(0, 60, clock);
        let address: Option<IpAddr> = "192.0.2.7".parse().ok();
        limiter.record_failure(address);
        assert_eq!(limiter.blocked_for(address), None);
    }
}

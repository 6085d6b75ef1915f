//! The login rate limit: attempts per client address and per username within a window
//! (`settings.auth_login_*`). Memory is bounded: at most [`MAX_TRACKED`] keys, each forgotten
//! once its window has passed.

use super::{Error, setting};
use crate::config::Settings;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most addresses and usernames tracked at once (each map); a key beyond it is refused until
/// the oldest window ends, so flooding new names cannot reset anyone's count.
pub const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    attempts: u32,
}

/// Attempts counted per key in fixed windows.
struct Counter {
    limit: u32,
    windows: HashMap<String, Window>,
}

impl Counter {
    fn new(limit: u32) -> Counter {
        Counter {
            limit,
            windows: HashMap::new(),
        }
    }

    /// `Err(seconds)` when `key` may not try again yet.
    fn check(&mut self, key: &str, now: Instant, window: Duration, cap: usize) -> Result<(), u64> {
        let wait = |started: Instant| retry_after(started + window, now);
        match self.windows.get(key) {
            Some(w) if now < w.started + window => {
                return if w.attempts >= self.limit {
                    Err(wait(w.started))
                } else {
                    Ok(())
                };
            }
            Some(_) => return Ok(()),
            None => {}
        }
        if self.windows.len() >= cap {
            self.windows.retain(|_, w| now < w.started + window);
        }
        if self.windows.len() >= cap {
            let oldest = self.windows.values().map(|w| w.started).min();
            return Err(oldest.map_or(1, wait));
        }
        Ok(())
    }

    fn record(&mut self, key: &str, now: Instant, window: Duration) {
        let entry = self.windows.entry(key.to_string()).or_insert(Window {
            started: now,
            attempts: 0,
        });
        if now >= entry.started + window {
            *entry = Window {
                started: now,
                attempts: 0,
            };
        }
        entry.attempts = entry.attempts.saturating_add(1);
    }
}

/// Whole seconds until `until`, at least 1 (a `Retry-After` of 0 invites a busy loop).
fn retry_after(until: Instant, now: Instant) -> u64 {
    let left = until.saturating_duration_since(now);
    (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1)
}

/// Login attempts per client address and per username.
pub struct LoginThrottle {
    window: Duration,
    cap: usize,
    counters: Mutex<(Counter, Counter)>,
}

impl LoginThrottle {
    pub fn new(per_address: u32, per_username: u32, window: Duration, cap: usize) -> LoginThrottle {
        LoginThrottle {
            window,
            cap,
            counters: Mutex::new((Counter::new(per_address), Counter::new(per_username))),
        }
    }

    pub(super) fn from_settings(settings: &Settings) -> Result<LoginThrottle, Error> {
        for (key, value) in [
            (
                "auth_login_max_attempts_per_address",
                u64::from(settings.auth_login_max_attempts_per_address),
            ),
            (
                "auth_login_max_attempts_per_username",
                u64::from(settings.auth_login_max_attempts_per_username),
            ),
            (
                "auth_login_window_seconds",
                settings.auth_login_window_seconds,
            ),
        ] {
            if value == 0 {
                return Err(setting(key, "must be at least 1"));
            }
        }
        Ok(LoginThrottle::new(
            settings.auth_login_max_attempts_per_address,
            settings.auth_login_max_attempts_per_username,
            Duration::from_secs(settings.auth_login_window_seconds),
            MAX_TRACKED,
        ))
    }

    /// Counts one attempt of `username` from `address` (unknown without connection info),
    /// or refuses it with [`Error::TooManyAttempts`] without counting it.
    pub fn attempt(&self, address: Option<IpAddr>, username: &str) -> Result<(), Error> {
        self.attempt_at(address, username, Instant::now())
    }

    fn attempt_at(
        &self,
        address: Option<IpAddr>,
        username: &str,
        now: Instant,
    ) -> Result<(), Error> {
        // Usernames compare as the directory usually does: trimmed, any case.
        let username = username.trim().to_lowercase();
        let address = address.map(|a| a.to_string());
        let mut guard = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (by_address, by_username) = &mut *guard;
        let refused = |retry_after| Error::TooManyAttempts { retry_after };
        if let Some(address) = &address {
            by_address
                .check(address, now, self.window, self.cap)
                .map_err(refused)?;
        }
        by_username
            .check(&username, now, self.window, self.cap)
            .map_err(refused)?;
        if let Some(address) = &address {
            by_address.record(address, now, self.window);
        }
        by_username.record(&username, now, self.window);
        Ok(())
    }

    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        let guard = self.counters.lock().unwrap();
        (guard.0.windows.len(), guard.1.windows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(error: Error) -> u64 {
        match error {
            Error::TooManyAttempts { retry_after } => retry_after,
            other => panic!("expected TooManyAttempts, got {other}"),
        }
    }

    #[test]
    fn a_window_ends_and_the_attempts_start_over() {
        let throttle = LoginThrottle::new(5, 2, Duration::from_secs(60), 100);
        let start = Instant::now();
        let ip: IpAddr = "10.1.1.1".parse().unwrap();
        throttle.attempt_at(Some(ip), "Alice", start).unwrap();
        throttle.attempt_at(Some(ip), " alice", start).unwrap();
        let wait = seconds(
            throttle
                .attempt_at(Some(ip), "ALICE", start + Duration::from_millis(10_500))
                .unwrap_err(),
        );
        assert_eq!(wait, 50, "the rest of the window, rounded up");
        throttle
            .attempt_at(Some(ip), "alice", start + Duration::from_secs(60))
            .unwrap();
    }

    #[test]
    fn tracked_keys_are_capped_and_expired_ones_make_room() {
        let throttle = LoginThrottle::new(100, 100, Duration::from_secs(60), 3);
        let start = Instant::now();
        for name in ["a", "b", "c"] {
            throttle.attempt_at(None, name, start).unwrap();
        }
        assert_eq!(throttle.tracked(), (0, 3));
        let later = start + Duration::from_secs(20);
        assert_eq!(
            seconds(throttle.attempt_at(None, "d", later).unwrap_err()),
            40
        );
        throttle.attempt_at(None, "a", later).unwrap();
        throttle
            .attempt_at(None, "d", start + Duration::from_secs(61))
            .unwrap();
        assert_eq!(throttle.tracked(), (0, 1), "the expired keys were dropped");
    }
}

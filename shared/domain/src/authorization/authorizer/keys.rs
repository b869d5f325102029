//! The operator token keys the authorizer verifies with, kept fresh when they come from a URL.
//!
//! A JWKS from a file or an environment variable is fixed for the life of the instance. A JWKS from
//! a URL is fetched once at cold start (an instance that cannot get keys never starts, so it
//! never allows), reused across invocations, and refetched when it is older than its TTL or when a
//! token names a `kid` we do not hold (the IdP rotated keys) — at most once per
//! [`KeyRing::MIN_REFETCH`] so garbage `kid`s cannot turn the authorizer into a load generator
//! against the IdP. A failed refetch keeps the keys we have for a while: they were valid, and a
//! short IdP outage must not lock every operator out; unknown kids stay denied.
//!
//! But not forever. An IdP removes a key because it leaked, and a refresh that keeps failing
//! (IdP down, network or DNS broken, or an attacker blocking the fetch) must not keep that key
//! trusted. So fetched keys have a max age ([`KeyRing::with_max_age`], default
//! [`KeyRing::DEFAULT_MAX_AGE`], at most [`KeyRing::MAX_MAX_AGE`]) counted from the last
//! successful fetch: once it has passed and a refetch (still rate-limited) fails,
//! [`KeyRing::for_decision`] fails closed with [`Reason::KeysStale`] and every operator token is
//! refused until a refresh succeeds. Fixed keys are never stale.

use super::jwt::Jwks;
use crate::model::Reason;
use crate::{Error, Result};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use time::{Duration, OffsetDateTime};

/// Where a JWKS document comes from (the port; the HTTP adapter is
/// `adapters::jwks::HttpJwks`). Object-safe: fetches are rare, a boxed future is fine.
pub trait KeySource: Send + Sync {
    /// The JWKS document text. Names where it came from in errors, never anything secret.
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<String>> + Send + '_>>;
}

struct State {
    jwks: Arc<Jwks>,
    loaded_at: OffsetDateTime,
    last_attempt: OffsetDateTime,
}

/// The current JWKS and, when it has one, its source.
pub struct KeyRing {
    source: Option<Arc<dyn KeySource>>,
    ttl: Duration,
    /// Fetched keys are refused this long after the last successful fetch.
    max_age: Duration,
    state: Mutex<State>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("jwks", &self.current())
            .field("refreshing", &self.source.is_some())
            .field("ttl", &self.ttl)
            .field("max_age", &self.max_age)
            .finish()
    }
}

/// Why keys were refetched (for the log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefetchCause {
    Expired,
    UnknownKid,
}

impl KeyRing {
    /// Least time between two fetches, whatever the cause.
    pub const MIN_REFETCH: Duration = Duration::seconds(60);

    /// How long fetched keys are trusted without a successful refresh, unless set otherwise.
    pub const DEFAULT_MAX_AGE: Duration = Duration::hours(24);

    /// The longest max age accepted from configuration.
    pub const MAX_MAX_AGE: Duration = Duration::days(7);

    /// Fixed keys (file or inline JWKS).
    pub fn fixed(jwks: Jwks) -> Self {
        let epoch = OffsetDateTime::UNIX_EPOCH;
        Self {
            source: None,
            ttl: Duration::ZERO,
            max_age: Duration::MAX,
            state: Mutex::new(State {
                jwks: Arc::new(jwks),
                loaded_at: epoch,
                last_attempt: epoch,
            }),
        }
    }

    /// Keys fetched from `source` now; fails when the first fetch or parse fails (fail closed).
    /// They are trusted for [`Self::DEFAULT_MAX_AGE`] without a successful refresh (see
    /// [`Self::with_max_age`]).
    pub async fn fetched(
        source: Arc<dyn KeySource>,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> Result<Self> {
        let jwks = Jwks::from_json(&source.fetch().await?)?;
        Ok(Self {
            source: Some(source),
            ttl,
            max_age: Self::DEFAULT_MAX_AGE,
            state: Mutex::new(State {
                jwks: Arc::new(jwks),
                loaded_at: now,
                last_attempt: now,
            }),
        })
    }

    /// The same keys, trusted for `max_age` after each successful fetch (no effect on fixed keys).
    /// Configuration checks it first with [`Self::check_max_age`].
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        if self.source.is_some() {
            self.max_age = max_age;
        }
        self
    }

    /// A max age is at least the TTL (keys are refreshed before they go stale) and at most
    /// [`Self::MAX_MAX_AGE`].
    pub fn check_max_age(ttl: Duration, max_age: Duration) -> Result<()> {
        if max_age < ttl || max_age > Self::MAX_MAX_AGE {
            return Err(Error::Config(format!(
                "JWKS max age (FLEETGUARD_JWKS_MAX_AGE_SECONDS) must be at least the JWKS TTL ({} s) \
                 and at most {} s, not {} s",
                ttl.whole_seconds(),
                Self::MAX_MAX_AGE.whole_seconds(),
                max_age.whole_seconds()
            )));
        }
        Ok(())
    }

    /// Whether fetched keys are past their max age at `now` (never for fixed keys).
    pub fn is_stale(&self, now: OffsetDateTime) -> bool {
        self.source.is_some() && self.stale_since(self.lock().loaded_at, now)
    }

    fn stale_since(&self, loaded_at: OffsetDateTime, now: OffsetDateTime) -> bool {
        loaded_at
            .checked_add(self.max_age)
            .is_some_and(|limit| now >= limit)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The keys in use.
    pub fn current(&self) -> Arc<Jwks> {
        self.lock().jwks.clone()
    }

    /// The keys to verify with at `now`, refetched first when they are past their TTL (or max
    /// age). Fetched keys past their max age whose refetch did not succeed (failed, or not
    /// attempted within [`Self::MIN_REFETCH`] of the last attempt) are refused:
    /// [`Reason::KeysStale`].
    pub async fn for_decision(
        &self,
        now: OffsetDateTime,
    ) -> std::result::Result<Arc<Jwks>, Reason> {
        if self.source.is_none() {
            return Ok(self.current());
        }
        let expired = {
            let s = self.lock();
            now >= s.loaded_at + self.ttl || self.stale_since(s.loaded_at, now)
        };
        if expired {
            self.refetch(now, RefetchCause::Expired).await;
        }
        let s = self.lock();
        if self.stale_since(s.loaded_at, now) {
            return Err(Reason::KeysStale);
        }
        Ok(s.jwks.clone())
    }

    /// Refetches when a source exists and the last attempt is at least [`Self::MIN_REFETCH`]
    /// old. Returns the new keys when they changed, else `None`.
    pub async fn refetch(&self, now: OffsetDateTime, cause: RefetchCause) -> Option<Arc<Jwks>> {
        let source = self.source.as_ref()?;
        {
            let mut s = self.lock();
            // A clock that went backwards allows a retry rather than a stall.
            if now >= s.last_attempt && now < s.last_attempt + Self::MIN_REFETCH {
                return None;
            }
            s.last_attempt = now;
        }
        match source.fetch().await.and_then(|text| Jwks::from_json(&text)) {
            Ok(jwks) => {
                tracing::info!(cause = ?cause, keys = jwks.len(), "JWKS refreshed");
                let jwks = Arc::new(jwks);
                let mut s = self.lock();
                s.jwks = jwks.clone();
                s.loaded_at = now;
                Some(jwks)
            }
            Err(e) => {
                // Keep the keys we have until their max age; the next attempt waits MIN_REFETCH.
                // One line per failed attempt; the error names the source, never key material.
                if self.is_stale(now) {
                    tracing::warn!(
                        cause = ?cause,
                        error = %e,
                        max_age_secs = self.max_age.whole_seconds(),
                        "JWKS refresh failed and the keys are past their max age; refusing operator tokens"
                    );
                } else {
                    tracing::warn!(cause = ?cause, error = %e, "JWKS refresh failed; keeping the current keys");
                }
                None
            }
        }
    }
}

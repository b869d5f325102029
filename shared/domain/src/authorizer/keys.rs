//! The operator token keys the authorizer verifies with, kept fresh when they come from a URL.
//!
//! A JWKS from a file or an environment variable is fixed for the life of the instance. A JWKS from
//! a URL is fetched once at cold start (an instance that cannot get keys never starts, so it
//! never allows), reused across invocations, and refetched when it is older than its TTL or when a
//! token names a `kid` we do not hold (the IdP rotated keys) — at most once per
//! [`KeyRing::MIN_REFETCH`] so garbage `kid`s cannot turn the authorizer into a load generator
//! against the IdP. A failed refetch keeps the keys we have: they were valid, and an IdP outage
//! must not lock every operator out; unknown kids stay denied.

use super::jwt::Jwks;
use crate::Result;
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
    state: Mutex<State>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("jwks", &self.current())
            .field("refreshing", &self.source.is_some())
            .field("ttl", &self.ttl)
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

    /// Fixed keys (file or inline JWKS).
    pub fn fixed(jwks: Jwks) -> Self {
        let epoch = OffsetDateTime::UNIX_EPOCH;
        Self {
            source: None,
            ttl: Duration::ZERO,
            state: Mutex::new(State {
                jwks: Arc::new(jwks),
                loaded_at: epoch,
                last_attempt: epoch,
            }),
        }
    }

    /// Keys fetched from `source` now; fails when the first fetch or parse fails (fail closed).
    pub async fn fetched(
        source: Arc<dyn KeySource>,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> Result<Self> {
        let jwks = Jwks::from_json(&source.fetch().await?)?;
        Ok(Self {
            source: Some(source),
            ttl,
            state: Mutex::new(State {
                jwks: Arc::new(jwks),
                loaded_at: now,
                last_attempt: now,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The keys in use.
    pub fn current(&self) -> Arc<Jwks> {
        self.lock().jwks.clone()
    }

    /// The keys to verify with at `now`, refetched first when they are past their TTL.
    pub async fn for_decision(&self, now: OffsetDateTime) -> Arc<Jwks> {
        let expired = {
            let s = self.lock();
            self.source.is_some() && now >= s.loaded_at + self.ttl
        };
        if expired {
            self.refetch(now, RefetchCause::Expired).await;
        }
        self.current()
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
                // Keep the keys we have; the next attempt waits MIN_REFETCH.
                tracing::warn!(cause = ?cause, error = %e, "JWKS refresh failed; keeping the current keys");
                None
            }
        }
    }
}

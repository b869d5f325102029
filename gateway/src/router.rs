//! Live sessions by client id, their subscriptions, and delivery with the Receive check.

use crate::topics;
use bytes::Bytes;
use iot_policy::{ConnectionContext, PolicySet, Request};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A message for a session to deliver.
#[derive(Debug, Clone)]
pub enum Outbound {
    Publish { topic: String, payload: Bytes },
}

/// A connected session as the router sees it.
pub struct Session {
    pub id: u64,
    pub tx: mpsc::Sender<Outbound>,
    /// Closes the session (DeleteConnection, a newer session with the same client id): apart from
    /// the deliveries, so a close never waits behind them or is lost when they are full.
    pub close: tokio::sync::watch::Sender<Option<&'static str>>,
    pub subscriptions: Vec<String>,
    pub policies: Arc<PolicySet>,
    pub context: ConnectionContext,
}

/// Whether `policies` allow `action` on `target` for `ctx` (fail closed on any error).
pub fn allowed(policies: &PolicySet, ctx: &ConnectionContext, action: &str, target: &str) -> bool {
    Request::for_target(action, target, ctx)
        .and_then(|r| policies.evaluate(&r, ctx))
        .map(|d| d.is_allowed())
        .unwrap_or(false)
}

#[derive(Default, Clone)]
pub struct Router {
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    /// Per client id: the last accepted CONNECT (the 1-per-second quota) and the lifecycle events'
    /// `versionNumber`.
    clients: Arc<Mutex<HashMap<String, (Instant, u64)>>>,
}

/// AWS IoT Core's quota: subscriptions per connection.
pub const MAX_SUBSCRIPTIONS: usize = 50;

/// AWS IoT Core's quota: one CONNECT per second per client id.
pub const CONNECT_INTERVAL: Duration = Duration::from_secs(1);

impl Router {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a CONNECT of `client_id` against the quota: the session's lifecycle `versionNumber`,
    /// or `None` (throttled) if the client id's last accepted CONNECT was under a second ago.
    pub fn admit(&self, client_id: &str, now: Instant) -> Option<u64> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if clients.len() > 100_000 {
            // Bounded: AWS starts a client id's versionNumber again after about an hour away.
            clients.retain(|_, (at, _)| now.duration_since(*at) < Duration::from_secs(3600));
        }
        match clients.get_mut(client_id) {
            Some((at, _)) if now.duration_since(*at) < CONNECT_INTERVAL => None,
            Some((at, version)) => {
                *at = now;
                *version += 1;
                Some(*version)
            }
            None => {
                clients.insert(client_id.to_owned(), (now, 0));
                Some(0)
            }
        }
    }

    /// Replaces a session's policies (the custom authorizer's refresh).
    pub fn set_policies(&self, client_id: &str, id: u64, policies: Arc<PolicySet>) {
        if let Some(s) = self.lock().get_mut(client_id).filter(|s| s.id == id) {
            s.policies = policies;
        }
    }

    /// As [`Self::set_policies`], with the connection's policy context (its thing may have changed).
    pub fn set_grant(
        &self,
        client_id: &str,
        id: u64,
        policies: Arc<PolicySet>,
        context: ConnectionContext,
    ) {
        if let Some(s) = self.lock().get_mut(client_id).filter(|s| s.id == id) {
            s.policies = policies;
            s.context = context;
        }
    }

    /// How many sessions are live.
    pub fn sessions(&self) -> usize {
        self.lock().len()
    }

    /// Registers a session; an older one with the same client id is closed (as AWS IoT does).
    pub fn connect(&self, client_id: &str, session: Session) {
        if let Some(old) = self.lock().insert(client_id.to_owned(), session) {
            let _ = old.close.send(Some("DUPLICATE_CLIENTID"));
        }
    }

    /// Forgets the session `id` of `client_id` (not a newer one that took the client id over).
    pub fn disconnect(&self, client_id: &str, id: u64) {
        let mut sessions = self.lock();
        if sessions.get(client_id).is_some_and(|s| s.id == id) {
            sessions.remove(client_id);
        }
    }

    /// Adds a subscription; false beyond AWS IoT's 50 per connection.
    pub fn subscribe(&self, client_id: &str, id: u64, filter: &str) -> bool {
        match self.lock().get_mut(client_id).filter(|s| s.id == id) {
            Some(s) if s.subscriptions.iter().any(|f| f == filter) => true,
            Some(s) if s.subscriptions.len() < MAX_SUBSCRIPTIONS => {
                s.subscriptions.push(filter.to_owned());
                true
            }
            _ => false,
        }
    }

    pub fn unsubscribe(&self, client_id: &str, id: u64, filter: &str) {
        if let Some(s) = self.lock().get_mut(client_id).filter(|s| s.id == id) {
            s.subscriptions.retain(|f| f != filter);
        }
    }

    /// Delivers to every session subscribed to `topic` whose policies allow `iot:Receive` on it.
    /// Returns how many sessions it was delivered to.
    pub fn publish(&self, topic: &str, payload: Bytes) -> usize {
        let mut delivered = 0;
        for s in self.lock().values() {
            if s.subscriptions.iter().any(|f| topics::matches(f, topic))
                && allowed(&s.policies, &s.context, "iot:Receive", topic)
            {
                let message = Outbound::Publish {
                    topic: topic.to_owned(),
                    payload: payload.clone(),
                };
                if s.tx.try_send(message).is_ok() {
                    delivered += 1;
                }
            }
        }
        delivered
    }

    /// Delivers to session `id` of `client_id` alone, if subscribed to `topic` and allowed to
    /// receive it (an answer AWS IoT sends on the requesting connection only).
    pub fn reply(&self, client_id: &str, id: u64, topic: &str, payload: Bytes) -> bool {
        match self.lock().get(client_id).filter(|s| s.id == id) {
            Some(s)
                if s.subscriptions.iter().any(|f| topics::matches(f, topic))
                    && allowed(&s.policies, &s.context, "iot:Receive", topic) =>
            {
                let message = Outbound::Publish {
                    topic: topic.to_owned(),
                    payload,
                };
                s.tx.try_send(message).is_ok()
            }
            _ => false,
        }
    }

    /// Closes the session of `client_id` (the data plane's DeleteConnection). False if none.
    pub fn close(&self, client_id: &str) -> bool {
        match self.lock().remove(client_id) {
            Some(s) => {
                let _ = s.close.send(Some("API_INITIATED_DISCONNECT"));
                true
            }
            None => false,
        }
    }

    pub fn connected(&self, client_id: &str) -> bool {
        self.lock().contains_key(client_id)
    }
}

//! In-memory identity store of the custom authorizer.

use fleetguard_domain::authorization::authorizer::{Identity, IdentityStore, PrincipalId};
use fleetguard_domain::model::Timestamp;
use fleetguard_domain::{Error, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// In-memory [`IdentityStore`] with call counters, for tests.
#[derive(Default)]
pub struct InMemoryIdentityStore {
    items: Mutex<HashMap<PrincipalId, Identity>>,
    /// Number of `get_identity` calls.
    pub reads: AtomicUsize,
    /// Number of `count_failure` calls.
    pub failures_counted: AtomicUsize,
    /// When set, every call fails (simulates DynamoDB being unreachable).
    pub fail: std::sync::atomic::AtomicBool,
    /// When set, every read first sleeps this long (simulates a slow store).
    pub delay: Mutex<Option<std::time::Duration>>,
    /// Certificate registry entries (X.509 custom authentication).
    pub certificates: Mutex<
        HashMap<
            fleetguard_domain::model::CertificateId,
            fleetguard_domain::model::CertificateRecord,
        >,
    >,
}

impl InMemoryIdentityStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<PrincipalId, Identity>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn put(&self, identity: Identity) {
        self.map().insert(identity.principal_id.clone(), identity);
    }

    pub fn get(&self, p: &PrincipalId) -> Option<Identity> {
        self.map().get(p).cloned()
    }

    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    fn check(&self, operation: &'static str) -> Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            Err(Error::aws(
                operation,
                fleetguard_domain::error::AwsErrorKind::Other,
                "store unavailable (fake)",
            ))
        } else {
            Ok(())
        }
    }
}

impl IdentityStore for InMemoryIdentityStore {
    async fn get_identity(&self, principal_id: &PrincipalId) -> Result<Option<Identity>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let delay = *self.delay.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        self.check("GetItem")?;
        Ok(self.get(principal_id))
    }

    async fn count_failure(
        &self,
        principal_id: &PrincipalId,
        now: &Timestamp,
        cutoff: &Timestamp,
    ) -> Result<Option<u32>> {
        self.failures_counted.fetch_add(1, Ordering::SeqCst);
        self.check("UpdateItem")?;
        let mut map = self.map();
        let Some(item) = map.get_mut(principal_id) else {
            return Ok(None);
        };
        // As DynamoDB compares the stored text: it sorts as time.
        match item.failures_since.as_ref() {
            Some(since) if since.as_str() > cutoff.as_str() => {
                item.failed_attempts = item.failed_attempts.saturating_add(1);
            }
            _ => {
                item.failed_attempts = 1;
                item.failures_since = Some(now.clone());
            }
        }
        Ok(Some(item.failed_attempts))
    }

    async fn put_identity(&self, identity: &Identity) -> Result<()> {
        self.check("PutItem")?;
        self.put(identity.clone());
        Ok(())
    }

    async fn put_identity_unless_inactive(&self, identity: &Identity) -> Result<bool> {
        use fleetguard_domain::authorization::authorizer::{IdentityKind, OperatorStatus};
        self.check("PutItem")?;
        let current = self.get_identity(&identity.principal_id).await?;
        let inactive = current.is_some_and(|c| match c.kind {
            IdentityKind::Operator { status, .. } => status != OperatorStatus::Active,
            IdentityKind::Device { status, .. } => {
                status != fleetguard_domain::model::DeviceStatus::Active
            }
        });
        if inactive {
            return Ok(false);
        }
        self.put(identity.clone());
        Ok(true)
    }

    /// The fake has no devices: it stores the identity as given.
    async fn put_device_identity(
        &self,
        identity: &Identity,
        _: fleetguard_domain::model::DeviceStatus,
    ) -> Result<bool> {
        self.put_identity(identity).await.map(|()| true)
    }

    async fn get_certificate(
        &self,
        id: &fleetguard_domain::model::CertificateId,
    ) -> Result<Option<fleetguard_domain::model::CertificateRecord>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.check("GetItem")?;
        Ok(self
            .certificates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned())
    }
}

//! The plugins' `lookup-identity` import, served from the identity map
//! (`grito_identities`).

use std::sync::Arc;

use uuid::Uuid;

use crate::plugins::IdentityLookup;
use crate::store::Store;

/// Looks identities up in the store. Plugin calls run on Tokio's blocking
/// threads, so the look-up blocks on the runtime handle there.
pub struct StoreIdentities {
    store: Arc<dyn Store>,
    runtime: tokio::runtime::Handle,
}

impl StoreIdentities {
    /// Must be called inside a Tokio runtime, whose handle the look-ups use.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, runtime: tokio::runtime::Handle::current() }
    }
}

impl IdentityLookup for StoreIdentities {
    fn lookup(&self, source: &str, external_id: &str) -> Option<Uuid> {
        match self.runtime.block_on(self.store.lookup_identity(source, external_id)) {
            Ok(user_id) => user_id,
            Err(error) => {
                // The host resolves the identity again before storing, so a
                // failed look-up here only means the plugin gets no user.
                tracing::warn!(source, external_id, error = format!("{error:#}"), "identity look-up for a plugin failed");
                None
            }
        }
    }
}

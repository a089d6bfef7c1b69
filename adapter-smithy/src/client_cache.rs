//! A cache of AWS SDK clients: building one is costly (endpoint resolver,
//! runtime plugins, HTTP client), asking for the same one again should not
//! be.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use aws_smithy_runtime_api::client::identity::{IdentityCachePartition, ResolveIdentity};
use aws_types::SdkConfig;
use refresh_session_tokio::ConfigError;

/// Which client goes when the cache is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// The least recently used.
    Lru,
    /// The least frequently used (the least recently used among equals).
    Lfu,
}

/// What makes two clients interchangeable: their type and what in the
/// config shapes them. Clones of one `SdkConfig` give equal keys; so do
/// configs built alike with the same credentials provider.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    client: TypeId,
    region: Option<String>,
    endpoint_url: Option<String>,
    /// The credentials provider's identity (clones share it).
    credentials: Option<IdentityCachePartition>,
    /// Retry, timeout, behavior version, FIPS, dual-stack, app name.
    settings: String,
}

impl ClientKey {
    fn of<C: 'static>(config: &SdkConfig) -> Self {
        Self {
            client: TypeId::of::<C>(),
            region: config.region().map(|r| r.to_string()),
            endpoint_url: config.endpoint_url().map(str::to_owned),
            credentials: config
                .credentials_provider()
                .and_then(|p| p.cache_partition()),
            settings: format!(
                "{:?}",
                (
                    config.retry_config(),
                    config.timeout_config(),
                    config.behavior_version(),
                    config.use_fips(),
                    config.use_dual_stack(),
                    config.app_name(),
                )
            ),
        }
    }
}

type Slot = Arc<OnceLock<Box<dyn Any + Send + Sync>>>;

struct Entry {
    client: Slot,
    last_used: u64,
    uses: u64,
}

struct Inner {
    entries: HashMap<ClientKey, Entry>,
    max_size: usize,
    clock: u64,
}

/// SDK clients by type and config, at most `max_size` of them (default
/// 10), evicted by [`Eviction`] policy. Thread-safe; concurrent misses for
/// one key build one client. The session's own STS calls never go through
/// it.
///
/// ```no_run
/// # fn demo(config: &aws_types::SdkConfig, s3_client: fn(&aws_types::SdkConfig) -> String) {
/// use refresh_session_smithy::{ClientCache, Eviction};
///
/// let cache = ClientCache::new(Eviction::Lru, 10).expect("a size above 0");
/// // With aws-sdk-s3: `cache.get(config, aws_sdk_s3::Client::new)`.
/// let client = cache.get(config, s3_client);
/// # }
/// ```
pub struct ClientCache {
    eviction: Eviction,
    inner: Mutex<Inner>,
}

impl ClientCache {
    /// A cache holding at most `max_size` clients.
    pub fn new(eviction: Eviction, max_size: usize) -> Result<Self, ConfigError> {
        check_size(max_size)?;
        Ok(Self::sized(eviction, max_size))
    }

    fn sized(eviction: Eviction, max_size: usize) -> Self {
        Self {
            eviction,
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                max_size,
                clock: 0,
            }),
        }
    }

    /// The client of type `C` for `config`: the cached one, else
    /// `new(config)`, cached.
    pub fn get<C, F>(&self, config: &SdkConfig, new: F) -> C
    where
        C: Clone + Send + Sync + 'static,
        F: FnOnce(&SdkConfig) -> C,
    {
        let slot = self.slot(ClientKey::of::<C>(config));
        // Built outside the lock: other keys stay available meanwhile, and
        // concurrent callers of this key wait for this one build.
        let client = slot.get_or_init(|| Box::new(new(config)));
        match client.downcast_ref::<C>() {
            Some(client) => client.clone(),
            // The key holds the type id: a slot only ever holds a `C`.
            None => unreachable!("a client cache slot holds another type"),
        }
    }

    /// Changes the capacity, evicting clients if it shrinks.
    pub fn resize(&self, max_size: usize) -> Result<(), ConfigError> {
        check_size(max_size)?;
        let mut inner = self.lock();
        inner.max_size = max_size;
        while inner.entries.len() > max_size {
            self.evict(&mut inner);
        }
        Ok(())
    }

    /// How many clients are cached.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no client is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every cached client.
    pub fn clear(&self) {
        self.lock().entries.clear();
    }

    fn slot(&self, key: ClientKey) -> Slot {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        if !inner.entries.contains_key(&key) && inner.entries.len() >= inner.max_size {
            self.evict(&mut inner);
        }
        let entry = inner.entries.entry(key).or_insert_with(|| Entry {
            client: Slot::default(),
            last_used: now,
            uses: 0,
        });
        entry.last_used = now;
        entry.uses += 1;
        Arc::clone(&entry.client)
    }

    fn evict(&self, inner: &mut Inner) {
        let victim = inner
            .entries
            .iter()
            .min_by_key(|(_, e)| match self.eviction {
                Eviction::Lru => (0, e.last_used),
                Eviction::Lfu => (e.uses, e.last_used),
            })
            .map(|(key, _)| key.clone());
        if let Some(key) = victim {
            inner.entries.remove(&key);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic in a client constructor runs outside the lock: the map
        // is never left half-updated.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for ClientCache {
    /// LRU, ten clients, as boto3-refresh-session's default.
    fn default() -> Self {
        Self::sized(Eviction::Lru, 10)
    }
}

impl fmt::Debug for ClientCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("ClientCache")
            .field("eviction", &self.eviction)
            .field("len", &inner.entries.len())
            .field("max_size", &inner.max_size)
            .finish()
    }
}

fn check_size(max_size: usize) -> Result<(), ConfigError> {
    if max_size == 0 {
        return Err(ConfigError::new("max_size", "must be at least 1 client"));
    }
    Ok(())
}

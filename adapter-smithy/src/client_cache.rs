//! A cache of AWS SDK clients: building one is costly (endpoint resolver,
//! runtime plugins, HTTP client), asking for the same one again should not
//! be.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_smithy_runtime_api::client::identity::{IdentityCachePartition, ResolveIdentity};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::SdkConfig;
use aws_types::app_name::AppName;
use aws_types::region::Region;
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
struct ClientKey {
    client: TypeId,
    region: Option<Region>,
    endpoint_url: Option<String>,
    /// The credentials provider's identity (clones share it).
    credentials: Option<IdentityCachePartition>,
    retry: Option<RetryConfig>,
    timeout: Option<TimeoutConfig>,
    behavior_version: Option<BehaviorVersion>,
    use_fips: Option<bool>,
    use_dual_stack: Option<bool>,
    app_name: Option<AppName>,
}

impl ClientKey {
    fn of<C: 'static>(config: &SdkConfig) -> Self {
        Self {
            client: TypeId::of::<C>(),
            region: config.region().cloned(),
            endpoint_url: config.endpoint_url().map(str::to_owned),
            credentials: partition(config),
            retry: config.retry_config().cloned(),
            timeout: config.timeout_config().cloned(),
            behavior_version: config.behavior_version(),
            use_fips: config.use_fips(),
            use_dual_stack: config.use_dual_stack(),
            app_name: config.app_name().cloned(),
        }
    }

    /// Whether a `C` for `config` has this key, compared in place: a hit
    /// copies nothing out of the config.
    fn matches<C: 'static>(&self, config: &SdkConfig) -> bool {
        self.client == TypeId::of::<C>()
            && self.region.as_ref() == config.region()
            && self.endpoint_url.as_deref() == config.endpoint_url()
            && self.credentials == partition(config)
            && self.retry.as_ref() == config.retry_config()
            && self.timeout.as_ref() == config.timeout_config()
            && self.behavior_version == config.behavior_version()
            && self.use_fips == config.use_fips()
            && self.use_dual_stack == config.use_dual_stack()
            && self.app_name.as_ref() == config.app_name()
    }
}

/// The hash of a `C` for `config`'s key, from the parts that hash (the
/// settings are compared, not hashed).
fn key_hash<C: 'static>(hasher: &RandomState, config: &SdkConfig) -> u64 {
    hasher.hash_one((
        TypeId::of::<C>(),
        config.region().map(Region::as_ref),
        config.endpoint_url(),
        partition(config),
    ))
}

fn partition(config: &SdkConfig) -> Option<IdentityCachePartition> {
    config
        .credentials_provider()
        .and_then(|p| p.cache_partition())
}

type Slot = Arc<OnceLock<Box<dyn Any + Send + Sync>>>;

struct Entry {
    key: ClientKey,
    client: Slot,
    last_used: u64,
    uses: u64,
}

struct Inner {
    /// Entries by their key's hash; equal hashes are rare, so most lists
    /// hold one.
    entries: HashMap<u64, Vec<Entry>>,
    len: usize,
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
    hasher: RandomState,
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
            hasher: RandomState::new(),
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                len: 0,
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
        let slot = self.slot::<C>(config);
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
        while inner.len > max_size {
            self.evict(&mut inner);
        }
        Ok(())
    }

    /// How many clients are cached.
    pub fn len(&self) -> usize {
        self.lock().len
    }

    /// Whether no client is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every cached client.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.len = 0;
    }

    fn slot<C: 'static>(&self, config: &SdkConfig) -> Slot {
        let hash = key_hash::<C>(&self.hasher, config);
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let found = inner
            .entries
            .get_mut(&hash)
            .and_then(|entries| entries.iter_mut().find(|e| e.key.matches::<C>(config)));
        if let Some(entry) = found {
            entry.last_used = now;
            entry.uses += 1;
            return Arc::clone(&entry.client);
        }
        if inner.len >= inner.max_size {
            self.evict(&mut inner);
        }
        let client = Slot::default();
        inner.entries.entry(hash).or_default().push(Entry {
            key: ClientKey::of::<C>(config),
            client: Arc::clone(&client),
            last_used: now,
            uses: 1,
        });
        inner.len += 1;
        client
    }

    fn evict(&self, inner: &mut Inner) {
        let victim = inner
            .entries
            .iter()
            .flat_map(|(hash, entries)| entries.iter().enumerate().map(move |(i, e)| (*hash, i, e)))
            .min_by_key(|(_, _, e)| match self.eviction {
                Eviction::Lru => (0, e.last_used),
                Eviction::Lfu => (e.uses, e.last_used),
            })
            .map(|(hash, i, _)| (hash, i));
        let Some((hash, i)) = victim else { return };
        if let Some(entries) = inner.entries.get_mut(&hash) {
            entries.swap_remove(i);
            if entries.is_empty() {
                inner.entries.remove(&hash);
            }
            inner.len -= 1;
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
            .field("len", &inner.len)
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

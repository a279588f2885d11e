//! The caches of the scans this extension provides, one [`CacheScope`] per host session,
//! and the SQL table functions that show them (`wb_metadata_cache()`,
//! `wb_statistics_cache()`, `wb_list_files_cache()`, see [`functions`]).
//!
//! Why the extension owns them: an FFI component never reaches the host session's runtime.
//! datafusion-ffi 55.2 gives a provider's `scan` and a table function's call a foreign
//! session built with `runtime_env: Default::default()` (`src/session/mod.rs`,
//! `ForeignSession::try_from`), and an FFI plan's `execute` a task context built with
//! `RuntimeEnv::default()` (`src/execution/task_ctx.rs`, `From<FFI_TaskContext>`): a fresh
//! runtime with empty caches at every call. Only the session id and the configuration
//! cross. Left alone, every query would read every Parquet footer again, and nothing the
//! host's `CacheManager` holds can be read from here.
//!
//! Scope: per host session, named by the id of its Python `SessionContext`, which the
//! capsules of the providers and functions registered there are handed (the id of the
//! session *state* that crosses FFI is no name: `SET datafusion.runtime.*` rebuilds the
//! state with a new one). Per session, not per process, because the limits are the
//! session's profile (`CachePolicy`) and a session's functions should show its own tables.
//! A scope lives while something of its session holds it (the cache table functions and
//! the Delta providers registered there); the registry here holds it weakly, so a dropped
//! session frees its footers.
//!
//! What is cached, and what is only counted:
//! - metadata ([`metadata`]): Parquet footers (with their page index when the file has
//!   one) of the files Delta scans open, in DataFusion's own `DefaultCache` behind a
//!   counting wrapper; the scans are planned and executed with a runtime whose
//!   `CacheManager` holds it. Checked against the file's size and modification time on
//!   every read.
//! - statistics ([`tables`]): the Delta snapshot each provider holds (the log's file
//!   actions with their statistics: the file index pruning reads). Reused by every scan
//!   that finds no new commit; loaded again when one lands.
//! - list files ([`tables`]): no listing is kept, only counted. Every scan of an unpinned
//!   table lists `_delta_log` once (non-recursively), to learn whether a commit landed and
//!   whether the held version's commit file is unchanged; only when a commit landed does
//!   deltalake's incremental update list again (from the held version on) to read it. A
//!   listing is avoided for a pinned table, and within the profile's listing TTL when it
//!   sets one (a hit; the scan then reads the snapshot held, however old).

pub mod functions;
pub mod metadata;
pub mod tables;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::Duration;

use deltalake_core::datafusion::common::Result as DfResult;
use deltalake_core::datafusion::execution::TaskContext;
use deltalake_core::datafusion::execution::cache::cache_manager::{
    CacheManagerConfig, DEFAULT_METADATA_CACHE_LIMIT, FileMetadataCache,
};
use deltalake_core::datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use pyo3::prelude::*;

use metadata::MetadataCache;
use tables::CachedTable;

/// How a session's caches are limited (from its profile's `CachePolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Bytes of Parquet metadata kept; 0 keeps none.
    pub metadata_limit_bytes: usize,
    /// How long a Delta log listing stands for the next scans (`None`: every scan lists).
    pub listing_ttl: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            // DataFusion's own default, as the profile's `None` means.
            metadata_limit_bytes: DEFAULT_METADATA_CACHE_LIMIT,
            listing_ttl: None,
        }
    }
}

/// The caches of one host session.
pub struct CacheScope {
    session_id: String,
    metadata: Arc<MetadataCache>,
    listing_ttl: RwLock<Option<Duration>>,
    tables: Mutex<Vec<Weak<dyn CachedTable>>>,
}

impl fmt::Debug for CacheScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheScope")
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl CacheScope {
    fn new(session_id: &str, settings: Settings) -> Self {
        Self {
            session_id: session_id.to_string(),
            metadata: Arc::new(MetadataCache::new(settings.metadata_limit_bytes)),
            listing_ttl: RwLock::new(settings.listing_ttl),
            tables: Mutex::new(Vec::new()),
        }
    }

    /// The host session's id.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    pub fn metadata(&self) -> &MetadataCache {
        &self.metadata
    }

    pub fn listing_ttl(&self) -> Option<Duration> {
        *self
            .listing_ttl
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn apply(&self, settings: Settings) {
        self.metadata.set_limit(settings.metadata_limit_bytes);
        *self
            .listing_ttl
            .write()
            .unwrap_or_else(PoisonError::into_inner) = settings.listing_ttl;
    }

    /// Show `table` in this session's statistics and list-files caches while it lives.
    pub fn track(&self, table: Weak<dyn CachedTable>) {
        let mut tables = lock(&self.tables);
        tables.retain(|t| t.strong_count() > 0);
        if !tables.iter().any(|t| Weak::ptr_eq(t, &table)) {
            tables.push(table);
        }
    }

    /// The tables tracked and still alive, in registration order.
    pub fn tables(&self) -> Vec<Arc<dyn CachedTable>> {
        lock(&self.tables)
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// `base` with this scope's cache manager: its memory pool, disk manager and object
    /// stores stay. DataFusion's statistics and listing caches are off in it: Delta scans
    /// take statistics from the log and never list a directory.
    pub fn runtime_over(&self, base: &RuntimeEnv) -> DfResult<Arc<RuntimeEnv>> {
        let metadata: Arc<FileMetadataCache> = Arc::clone(&self.metadata) as _;
        let caches = CacheManagerConfig::default()
            .with_file_metadata_cache(Some(metadata))
            .with_metadata_cache_limit(self.metadata.limit())
            .with_file_statistics_cache_limit(0)
            .with_list_files_cache_limit(0);
        RuntimeEnvBuilder::from_runtime_env(base)
            .with_cache_manager(caches)
            .build_arc()
    }

    /// `context` running with [`Self::runtime_over`] its runtime.
    pub fn task_context(&self, context: Arc<TaskContext>) -> DfResult<Arc<TaskContext>> {
        let runtime = self.runtime_over(&context.runtime_env())?;
        Ok(Arc::new(TaskContext::new(
            context.task_id(),
            context.session_id(),
            context.session_config().clone(),
            context.scalar_functions().clone(),
            context.higher_order_functions().clone(),
            context.aggregate_functions().clone(),
            context.window_functions().clone(),
            runtime,
        )))
    }
}

/// A session's settings and its scope, if one is alive.
struct Slot {
    settings: Settings,
    scope: Option<Weak<CacheScope>>,
}

static SCOPES: LazyLock<Mutex<HashMap<String, Slot>>> = LazyLock::new(Default::default);

/// The caches of the session `session_id`, created (with its settings) if none is alive.
pub fn scope(session_id: &str) -> Arc<CacheScope> {
    let mut scopes = lock(&SCOPES);
    // Sessions whose scope was created and is gone: nothing of theirs is left to show.
    scopes.retain(|id, slot| {
        id == session_id || slot.scope.as_ref().is_none_or(|s| s.strong_count() > 0)
    });
    let slot = scopes.entry(session_id.to_string()).or_insert(Slot {
        settings: Settings::default(),
        scope: None,
    });
    if let Some(live) = slot.scope.as_ref().and_then(Weak::upgrade) {
        return live;
    }
    let created = Arc::new(CacheScope::new(session_id, slot.settings));
    slot.scope = Some(Arc::downgrade(&created));
    created
}

/// Set the session's limits, now if its scope is alive, else for when it is created.
pub fn configure(session_id: &str, settings: Settings) {
    let mut scopes = lock(&SCOPES);
    let slot = scopes.entry(session_id.to_string()).or_insert(Slot {
        settings,
        scope: None,
    });
    slot.settings = settings;
    if let Some(live) = slot.scope.as_ref().and_then(Weak::upgrade) {
        live.apply(settings);
    }
}

/// The id of the Python `SessionContext` an FFI capsule is asked for ("" for a codec
/// capsule, which names no session).
pub fn session_id_of(session: &Bound<'_, PyAny>) -> PyResult<String> {
    if session.hasattr("session_id")? {
        session.call_method0("session_id")?.extract()
    } else {
        Ok(String::new())
    }
}

/// Set the caches' limits of the session `session_id` (Python:
/// `workbench._ext.configure_caches`). `metadata_limit_bytes=None` keeps DataFusion's
/// default (50 MiB); `listing_ttl_s=None` lists the Delta log at every scan.
#[pyfunction]
#[pyo3(signature = (session_id, *, metadata_limit_bytes=None, listing_ttl_s=None))]
pub fn configure_caches(
    session_id: &str,
    metadata_limit_bytes: Option<usize>,
    listing_ttl_s: Option<f64>,
) -> PyResult<()> {
    let listing_ttl = listing_ttl_s
        .map(Duration::try_from_secs_f64)
        .transpose()
        .map_err(|e| {
            pyo3::exceptions::PyValueError::new_err(format!(
                "listing_ttl_s must be a non-negative number of seconds: {e}"
            ))
        })?;
    configure(
        session_id,
        Settings {
            metadata_limit_bytes: metadata_limit_bytes.unwrap_or(DEFAULT_METADATA_CACHE_LIMIT),
            listing_ttl,
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unique(name: &str) -> String {
        format!("test-{name}-{}", std::process::id())
    }

    #[test]
    fn one_scope_per_session_while_it_is_held() {
        let (a, b) = (unique("a"), unique("b"));
        let first = scope(&a);
        assert!(Arc::ptr_eq(&first, &scope(&a)));
        assert!(!Arc::ptr_eq(&first, &scope(&b)));
        drop(first);
        // Nothing held it: the next one is new (and empty).
        let again = scope(&a);
        assert_eq!(again.metadata().rows().len(), 0);
    }

    #[test]
    fn settings_apply_to_a_live_scope_and_to_one_created_later() {
        let id = unique("settings");
        configure(
            &id,
            Settings {
                metadata_limit_bytes: 7,
                listing_ttl: Some(Duration::from_secs(3)),
            },
        );
        let created = scope(&id);
        assert_eq!(created.metadata().limit(), 7);
        assert_eq!(created.listing_ttl(), Some(Duration::from_secs(3)));
        configure(&id, Settings::default());
        assert_eq!(created.metadata().limit(), DEFAULT_METADATA_CACHE_LIMIT);
        assert_eq!(created.listing_ttl(), None);
    }

    #[test]
    fn the_runtime_of_a_scope_keeps_its_metadata_cache_and_limit() {
        let id = unique("runtime");
        configure(
            &id,
            Settings {
                metadata_limit_bytes: 1234,
                listing_ttl: None,
            },
        );
        let scope = scope(&id);
        let runtime = scope.runtime_over(&RuntimeEnv::default()).unwrap();
        assert_eq!(runtime.cache_manager.get_metadata_cache_limit(), 1234);
        assert!(runtime.cache_manager.get_list_files_cache().is_none());
        assert!(runtime.cache_manager.get_file_statistic_cache().is_none());
        let task = scope
            .task_context(Arc::new(TaskContext::default()))
            .unwrap();
        assert_eq!(
            task.runtime_env().cache_manager.get_metadata_cache_limit(),
            1234
        );
    }
}

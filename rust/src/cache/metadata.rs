//! The Parquet metadata cache of a session's Delta scans: DataFusion's `DefaultCache`
//! (LRU, bounded by bytes) behind a wrapper that counts, per file, the lookups it served
//! (hits) and the ones that sent the reader to storage (misses).
//!
//! DataFusion's Parquet reader looks a file up by its object store path, then checks the
//! entry against the file's size and modification time; a stale entry is read again and
//! put back. The wrapper sees that as a put replacing an entry of another size or time, and
//! counts the lookup as a miss, not a hit. A file looked up stays in the bookkeeping after
//! its footer is evicted (or was never kept: larger than the limit), so misses under a small
//! limit show; at most [`KEPT_UNCACHED`] such files are remembered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use deltalake_core::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use deltalake_core::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake_core::datafusion::common::{
    HashMap as DfHashMap, Result as DfResult, TableReference,
};
use deltalake_core::datafusion::execution::cache::cache_manager::CachedFileMetadataEntry;
use deltalake_core::datafusion::execution::cache::default_cache::DefaultCache;
use deltalake_core::datafusion::execution::cache::{Cache, CacheEntryInfo};
use object_store::path::Path;

use super::lock;

/// Files no longer (or never) cached whose counts are still shown.
pub const KEPT_UNCACHED: usize = 1024;

/// What the wrapper knows of one file.
#[derive(Debug, Clone, Copy, Default)]
struct Record {
    hits: u64,
    misses: u64,
    /// When its footer was last put in the cache.
    cached_at: Option<SystemTime>,
    last_lookup: Option<SystemTime>,
}

/// One row of `wb_metadata_cache()`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataRow {
    pub path: String,
    pub cached: bool,
    /// Memory the cached footer takes (0 when not cached).
    pub size_bytes: usize,
    pub file_size_bytes: Option<u64>,
    pub file_modified: Option<SystemTime>,
    pub page_index: Option<bool>,
    pub hits: u64,
    pub misses: u64,
    pub cached_at: Option<SystemTime>,
}

/// A byte-bounded LRU of Parquet metadata that counts hits and misses per file.
pub struct MetadataCache {
    inner: DefaultCache<Path, CachedFileMetadataEntry>,
    records: Mutex<HashMap<Path, Record>>,
}

impl MetadataCache {
    pub fn new(limit_bytes: usize) -> Self {
        Self {
            inner: DefaultCache::new(limit_bytes).with_name("WorkbenchFileMetadataCache"),
            records: Mutex::new(HashMap::new()),
        }
    }

    pub fn limit(&self) -> usize {
        self.inner.cache_limit()
    }

    /// A new limit, evicting least recently used footers down to it.
    pub fn set_limit(&self, limit_bytes: usize) {
        self.inner.update_cache_limit(limit_bytes);
    }

    /// Every file cached or remembered, by path.
    pub fn rows(&self) -> Vec<MetadataRow> {
        let entries = self.inner.list_entries();
        let mut records = lock(&self.records);
        forget_uncached(&mut records, &entries);
        let mut rows: Vec<MetadataRow> = records
            .iter()
            .map(|(path, record)| {
                let entry = entries.get(path);
                let meta = entry.map(|e| &e.value.meta);
                MetadataRow {
                    path: path.to_string(),
                    cached: entry.is_some(),
                    size_bytes: entry.map_or(0, |e| e.size_bytes),
                    file_size_bytes: meta.map(|m| m.size),
                    file_modified: meta.map(|m| m.last_modified.into()),
                    page_index: entry.map(|e| {
                        e.value
                            .file_metadata
                            .extra_info()
                            .get("page_index")
                            .is_some_and(|v| v == "true")
                    }),
                    hits: record.hits,
                    misses: record.misses,
                    cached_at: entry.and(record.cached_at),
                }
            })
            .collect();
        // A footer put by a reader that did not look it up first has no record yet.
        for (path, entry) in &entries {
            if !records.contains_key(path) {
                rows.push(MetadataRow {
                    path: path.to_string(),
                    cached: true,
                    size_bytes: entry.size_bytes,
                    file_size_bytes: Some(entry.value.meta.size),
                    file_modified: Some(entry.value.meta.last_modified.into()),
                    page_index: None,
                    hits: 0,
                    misses: 0,
                    cached_at: None,
                });
            }
        }
        rows.sort_by(|a, b| a.path.cmp(&b.path));
        rows
    }
}

/// Keep the records of cached files and of the [`KEPT_UNCACHED`] most recently looked-up
/// others.
fn forget_uncached(
    records: &mut HashMap<Path, Record>,
    cached: &DfHashMap<Path, CacheEntryInfo<CachedFileMetadataEntry>>,
) {
    let mut uncached: Vec<(Option<SystemTime>, Path)> = records
        .iter()
        .filter(|(path, _)| !cached.contains_key(*path))
        .map(|(path, record)| (record.last_lookup, path.clone()))
        .collect();
    if uncached.len() <= KEPT_UNCACHED {
        return;
    }
    uncached.sort();
    for (_, path) in &uncached[..uncached.len() - KEPT_UNCACHED] {
        records.remove(path);
    }
}

impl Cache<Path, CachedFileMetadataEntry> for MetadataCache {
    fn get(&self, key: &Path) -> Option<CachedFileMetadataEntry> {
        let found = self.inner.get(key);
        let mut records = lock(&self.records);
        let record = records.entry(key.clone()).or_default();
        record.last_lookup = Some(SystemTime::now());
        if found.is_some() {
            record.hits += 1;
        } else {
            record.misses += 1;
        }
        if records.len() > 2 * KEPT_UNCACHED {
            let entries = self.inner.list_entries();
            forget_uncached(&mut records, &entries);
        }
        found
    }

    fn put(&self, key: &Path, value: CachedFileMetadataEntry) -> Option<CachedFileMetadataEntry> {
        let meta = value.meta.clone();
        let previous = self.inner.put(key, value);
        let kept = self.inner.contains_key(key);
        let mut records = lock(&self.records);
        let record = records.entry(key.clone()).or_default();
        if let Some(previous) = &previous
            && !previous.is_valid_for(&meta)
            && record.hits > 0
        {
            // The lookup found a footer of an older version of the file: it was read again.
            record.hits -= 1;
            record.misses += 1;
        }
        if kept {
            record.cached_at = Some(SystemTime::now());
        }
        previous
    }

    fn remove(&self, k: &Path) -> Option<CachedFileMetadataEntry> {
        self.inner.remove(k)
    }

    fn contains_key(&self, k: &Path) -> bool {
        self.inner.contains_key(k)
    }

    fn len(&self) -> usize {
        self.inner.len()
    }

    fn clear(&self) {
        self.inner.clear();
        lock(&self.records).clear();
    }

    fn name(&self) -> String {
        self.inner.name()
    }

    fn cache_limit(&self) -> usize {
        self.inner.cache_limit()
    }

    fn update_cache_limit(&self, limit: usize) {
        self.inner.update_cache_limit(limit);
    }

    fn cache_ttl(&self) -> Option<Duration> {
        self.inner.cache_ttl()
    }

    fn update_cache_ttl(&self, ttl: Option<Duration>) {
        self.inner.update_cache_ttl(ttl);
    }

    fn drop_table_entries(&self, table_ref: &TableReference) -> DfResult<()> {
        self.inner.drop_table_entries(table_ref)
    }

    fn list_entries(&self) -> DfHashMap<Path, CacheEntryInfo<CachedFileMetadataEntry>> {
        self.inner.list_entries()
    }
}

/// Microseconds since the epoch (0 before it).
pub(crate) fn micros(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Seconds from `at` to `now` (0 if `at` is later).
pub(crate) fn age_s(at: SystemTime, now: SystemTime) -> f64 {
    now.duration_since(at).map_or(0.0, |d| d.as_secs_f64())
}

pub(crate) fn timestamp_field(name: &str) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        true,
    )
}

pub(crate) fn timestamps(values: impl Iterator<Item = Option<SystemTime>>) -> ArrayRef {
    Arc::new(
        TimestampMicrosecondArray::from(values.map(|v| v.map(micros)).collect::<Vec<_>>())
            .with_timezone("UTC"),
    )
}

pub(crate) fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A Utf8 column of `rows`, one value each.
pub(crate) fn strings<T>(rows: &[T], value: impl Fn(&T) -> &str) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(rows.iter().map(value)))
}

/// An Int64 column of `rows` (counts and sizes, saturating at `i64::MAX`).
pub(crate) fn ints<T>(rows: &[T], value: impl Fn(&T) -> u64) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(
        rows.iter().map(|r| int(value(r))),
    ))
}

/// The columns of `wb_metadata_cache()`.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("path", DataType::Utf8, false),
        Field::new("cached", DataType::Boolean, false),
        Field::new("size_bytes", DataType::Int64, false),
        Field::new("hits", DataType::Int64, false),
        Field::new("misses", DataType::Int64, false),
        Field::new("file_size_bytes", DataType::Int64, true),
        timestamp_field("file_modified"),
        Field::new("page_index", DataType::Boolean, true),
        timestamp_field("cached_at"),
        Field::new("age_s", DataType::Float64, true),
    ]))
}

/// `rows` as of `now`, in [`schema`].
pub fn batch(rows: &[MetadataRow], now: SystemTime) -> DfResult<RecordBatch> {
    let columns: Vec<ArrayRef> = vec![
        strings(rows, |r| r.path.as_str()),
        Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.cached)))),
        ints(rows, |r| r.size_bytes as u64),
        ints(rows, |r| r.hits),
        ints(rows, |r| r.misses),
        Arc::new(Int64Array::from_iter(
            rows.iter().map(|r| r.file_size_bytes.map(int)),
        )),
        timestamps(rows.iter().map(|r| r.file_modified)),
        Arc::new(BooleanArray::from_iter(rows.iter().map(|r| r.page_index))),
        timestamps(rows.iter().map(|r| r.cached_at)),
        Arc::new(Float64Array::from_iter(
            rows.iter().map(|r| r.cached_at.map(|at| age_s(at, now))),
        )),
    ];
    Ok(RecordBatch::try_new(schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake_core::datafusion::execution::cache::cache_manager::FileMetadata;
    use object_store::ObjectMeta;
    use std::any::Any;

    struct Footer(usize);

    impl FileMetadata for Footer {
        fn as_any(&self) -> &dyn Any {
            self
        }
        fn memory_size(&self) -> usize {
            self.0
        }
        fn extra_info(&self) -> DfHashMap<String, String> {
            DfHashMap::from([("page_index".to_owned(), "true".to_owned())])
        }
    }

    fn entry(path: &str, file_size: u64, footer: usize) -> CachedFileMetadataEntry {
        let meta = ObjectMeta {
            location: Path::from(path),
            last_modified: chrono::DateTime::from_timestamp(1_764_000_000, 0).unwrap(),
            size: file_size,
            e_tag: None,
            version: None,
        };
        CachedFileMetadataEntry::new(meta, Arc::new(Footer(footer)))
    }

    /// A reader's lookup as DataFusion's Parquet reader does it: get, check, read and put.
    fn read(cache: &MetadataCache, path: &str, file_size: u64, footer: usize) {
        let key = Path::from(path);
        let fresh = entry(path, file_size, footer);
        let valid = cache
            .get(&key)
            .is_some_and(|cached| cached.is_valid_for(&fresh.meta));
        if !valid {
            cache.put(&key, fresh);
        }
    }

    fn row<'a>(rows: &'a [MetadataRow], path: &str) -> &'a MetadataRow {
        rows.iter().find(|r| r.path == path).expect("a row")
    }

    #[test]
    fn a_footer_is_read_once_then_served_from_the_cache() {
        let cache = MetadataCache::new(1 << 20);
        read(&cache, "t/a.parquet", 100, 500);
        read(&cache, "t/a.parquet", 100, 500);
        read(&cache, "t/a.parquet", 100, 500);
        read(&cache, "t/b.parquet", 200, 700);
        let rows = cache.rows();
        assert_eq!(rows.len(), 2);
        let a = row(&rows, "t/a.parquet");
        assert_eq!((a.cached, a.hits, a.misses), (true, 2, 1));
        assert_eq!(a.size_bytes, 500);
        assert_eq!(a.file_size_bytes, Some(100));
        assert_eq!(a.page_index, Some(true));
        assert!(a.cached_at.is_some());
        assert_eq!(row(&rows, "t/b.parquet").misses, 1);
    }

    #[test]
    fn a_rewritten_file_counts_as_a_miss_and_is_cached_again() {
        let cache = MetadataCache::new(1 << 20);
        read(&cache, "t/a.parquet", 100, 500);
        read(&cache, "t/a.parquet", 120, 520); // same path, another size: stale
        let rows = cache.rows();
        let a = row(&rows, "t/a.parquet");
        assert_eq!((a.hits, a.misses), (0, 2));
        assert_eq!(a.file_size_bytes, Some(120));
    }

    #[test]
    fn under_a_tiny_limit_nothing_is_kept_and_every_lookup_misses() {
        let cache = MetadataCache::new(10);
        read(&cache, "t/a.parquet", 100, 500);
        read(&cache, "t/a.parquet", 100, 500);
        let rows = cache.rows();
        let a = row(&rows, "t/a.parquet");
        assert_eq!((a.cached, a.size_bytes, a.hits, a.misses), (false, 0, 0, 2));
        assert_eq!(a.cached_at, None);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn lowering_the_limit_evicts_and_the_counts_stay() {
        let cache = MetadataCache::new(1 << 20);
        read(&cache, "t/a.parquet", 100, 500);
        read(&cache, "t/a.parquet", 100, 500);
        cache.set_limit(0);
        let rows = cache.rows();
        let a = row(&rows, "t/a.parquet");
        assert_eq!((a.cached, a.hits, a.misses), (false, 1, 1));
    }

    #[test]
    fn only_so_many_uncached_files_are_remembered() {
        let cache = MetadataCache::new(0);
        for n in 0..(KEPT_UNCACHED + 10) {
            read(&cache, &format!("t/{n:05}.parquet"), 100, 500);
        }
        let rows = cache.rows();
        assert_eq!(rows.len(), KEPT_UNCACHED);
    }

    #[test]
    fn the_batch_has_one_row_per_file_in_the_schema() {
        let cache = MetadataCache::new(1 << 20);
        read(&cache, "t/a.parquet", 100, 500);
        let now = SystemTime::now() + Duration::from_secs(2);
        let batch = batch(&cache.rows(), now).unwrap();
        assert_eq!(batch.schema(), schema());
        assert_eq!(batch.num_rows(), 1);
        let age = batch
            .column_by_name("age_s")
            .unwrap()
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .value(0);
        assert!((1.5..10.0).contains(&age), "{age}");
    }
}

//! What a session's tables hold and do: the snapshot each provider keeps (the statistics
//! cache) and the log listings its refreshes make (the list-files cache).
//!
//! A provider reports through [`CachedTable`] and counts with [`TableCounters`]; this
//! module knows nothing of Delta beyond the words in its column docs.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use deltalake_core::arrow::array::{ArrayRef, BooleanArray, Float64Array, RecordBatch};
use deltalake_core::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake_core::datafusion::common::Result as DfResult;

use super::lock;
use super::metadata::{age_s, ints, strings, timestamp_field, timestamps};

/// A table whose caches a session shows.
pub trait CachedTable: Send + Sync {
    fn statistics_row(&self) -> StatisticsRow;
    fn listing_row(&self) -> ListingRow;
}

/// One row of `wb_statistics_cache()`: the snapshot a table's provider holds.
#[derive(Debug, Clone, PartialEq)]
pub struct StatisticsRow {
    pub table: String,
    pub location: String,
    pub version: u64,
    /// Data files in the snapshot.
    pub entries: usize,
    /// Their statistics as the log writes them (JSON text).
    pub size_bytes: usize,
    /// Scans (and refreshes) that reused the snapshot held.
    pub hits: u64,
    /// Snapshots read from the log: at registration and for every new version.
    pub misses: u64,
    pub pinned: bool,
    /// When the snapshot held was read.
    pub cached_at: SystemTime,
}

/// One row of `wb_list_files_cache()`: the log listings of a table's refreshes.
#[derive(Debug, Clone, PartialEq)]
pub struct ListingRow {
    pub table: String,
    /// What is listed (the table's `_delta_log`).
    pub location: String,
    /// Objects the last listing returned.
    pub entries: usize,
    /// Commits newer than the snapshot held that the last listing found.
    pub new_commits: usize,
    /// Listings avoided: a pinned table, or a listing still within the TTL.
    pub hits: u64,
    /// Listings made.
    pub misses: u64,
    pub listed_at: Option<SystemTime>,
}

/// The last listing of a table's log.
#[derive(Debug, Clone, Copy)]
struct Listing {
    at: SystemTime,
    instant: Instant,
    entries: usize,
    new_commits: usize,
}

/// A provider's counts of snapshot loads and reuses, and of log listings.
#[derive(Debug, Default)]
pub struct TableCounters {
    counts: Mutex<Counts>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    loads: u64,
    reuses: u64,
    listings: u64,
    avoided: u64,
    last: Option<Listing>,
}

impl TableCounters {
    /// A snapshot read from the log.
    pub fn loaded(&self) {
        lock(&self.counts).loads += 1;
    }

    /// The snapshot held served a scan.
    pub fn reused(&self) {
        lock(&self.counts).reuses += 1;
    }

    /// A listing of the log returned `entries` objects, `new_commits` of them commits
    /// newer than the snapshot held.
    pub fn listed(&self, entries: usize, new_commits: usize) {
        let mut counts = lock(&self.counts);
        counts.listings += 1;
        counts.last = Some(Listing {
            at: SystemTime::now(),
            instant: Instant::now(),
            entries,
            new_commits,
        });
    }

    /// A listing was not needed.
    pub fn avoided(&self) {
        lock(&self.counts).avoided += 1;
    }

    /// Whether the last listing is younger than `ttl` (never, without a TTL).
    pub fn listed_within(&self, ttl: Option<Duration>) -> bool {
        let last = lock(&self.counts).last;
        ttl.zip(last)
            .is_some_and(|(ttl, last)| last.instant.elapsed() < ttl)
    }

    /// (loads, reuses) of snapshots.
    pub fn snapshots(&self) -> (u64, u64) {
        let counts = lock(&self.counts);
        (counts.loads, counts.reuses)
    }

    /// `table`'s row of the list-files cache, for its log at `location`.
    pub fn listing(&self, table: &str, location: &str) -> ListingRow {
        let counts = *lock(&self.counts);
        ListingRow {
            table: table.to_string(),
            location: location.to_string(),
            entries: counts.last.map_or(0, |l| l.entries),
            new_commits: counts.last.map_or(0, |l| l.new_commits),
            hits: counts.avoided,
            misses: counts.listings,
            listed_at: counts.last.map(|l| l.at),
        }
    }
}

/// The columns of `wb_statistics_cache()`.
pub fn statistics_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("table", DataType::Utf8, false),
        Field::new("location", DataType::Utf8, false),
        Field::new("version", DataType::Int64, false),
        Field::new("entries", DataType::Int64, false),
        Field::new("size_bytes", DataType::Int64, false),
        Field::new("hits", DataType::Int64, false),
        Field::new("misses", DataType::Int64, false),
        Field::new("pinned", DataType::Boolean, false),
        timestamp_field("cached_at"),
        Field::new("age_s", DataType::Float64, true),
    ]))
}

/// `rows` as of `now`, in [`statistics_schema`].
pub fn statistics_batch(rows: &[StatisticsRow], now: SystemTime) -> DfResult<RecordBatch> {
    let columns: Vec<ArrayRef> = vec![
        strings(rows, |r| r.table.as_str()),
        strings(rows, |r| r.location.as_str()),
        ints(rows, |r| r.version),
        ints(rows, |r| r.entries as u64),
        ints(rows, |r| r.size_bytes as u64),
        ints(rows, |r| r.hits),
        ints(rows, |r| r.misses),
        Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.pinned)))),
        timestamps(rows.iter().map(|r| Some(r.cached_at))),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| age_s(r.cached_at, now)),
        )),
    ];
    Ok(RecordBatch::try_new(statistics_schema(), columns)?)
}

/// The columns of `wb_list_files_cache()`.
pub fn listing_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("table", DataType::Utf8, false),
        Field::new("location", DataType::Utf8, false),
        Field::new("entries", DataType::Int64, false),
        Field::new("new_commits", DataType::Int64, false),
        Field::new("hits", DataType::Int64, false),
        Field::new("misses", DataType::Int64, false),
        timestamp_field("listed_at"),
        Field::new("age_s", DataType::Float64, true),
    ]))
}

/// `rows` as of `now`, in [`listing_schema`].
pub fn listing_batch(rows: &[ListingRow], now: SystemTime) -> DfResult<RecordBatch> {
    let columns: Vec<ArrayRef> = vec![
        strings(rows, |r| r.table.as_str()),
        strings(rows, |r| r.location.as_str()),
        ints(rows, |r| r.entries as u64),
        ints(rows, |r| r.new_commits as u64),
        ints(rows, |r| r.hits),
        ints(rows, |r| r.misses),
        timestamps(rows.iter().map(|r| r.listed_at)),
        Arc::new(Float64Array::from_iter(
            rows.iter().map(|r| r.listed_at.map(|at| age_s(at, now))),
        )),
    ];
    Ok(RecordBatch::try_new(listing_schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_and_reuses_are_counted() {
        let counters = TableCounters::default();
        counters.loaded();
        counters.listed(4, 0);
        counters.reused();
        counters.listed(6, 1);
        counters.loaded();
        counters.avoided();
        assert_eq!(counters.snapshots(), (2, 1));
        let row = counters.listing("events", "/t/_delta_log");
        assert_eq!(
            (row.entries, row.new_commits, row.hits, row.misses),
            (6, 1, 1, 2)
        );
        assert!(row.listed_at.is_some());
    }

    #[test]
    fn a_listing_stands_only_within_a_ttl() {
        let counters = TableCounters::default();
        assert!(!counters.listed_within(Some(Duration::from_secs(60))));
        counters.listed(1, 0);
        assert!(counters.listed_within(Some(Duration::from_secs(60))));
        assert!(!counters.listed_within(Some(Duration::ZERO)));
        assert!(!counters.listed_within(None));
    }

    #[test]
    fn batches_follow_their_schemas() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let statistics = StatisticsRow {
            table: "events".into(),
            location: "/t".into(),
            version: 3,
            entries: 5,
            size_bytes: 640,
            hits: 2,
            misses: 1,
            pinned: false,
            cached_at: at,
        };
        let batch = statistics_batch(&[statistics], at + Duration::from_secs(5)).unwrap();
        assert_eq!(batch.schema(), statistics_schema());
        let age = batch
            .column_by_name("age_s")
            .unwrap()
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .value(0);
        assert!((age - 5.0).abs() < 1e-9);
        let listing = TableCounters::default().listing("events", "/t/_delta_log");
        let batch = listing_batch(&[listing], at).unwrap();
        assert_eq!(batch.schema(), listing_schema());
        // Never listed: no time, no age.
        assert!(batch.column_by_name("listed_at").unwrap().is_null(0));
    }
}

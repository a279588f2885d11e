//! `DeltaProvider`: a Delta table at one version, as an FFI table provider and a file index.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use datafusion_ffi::proto::logical_extension_codec::FFI_LogicalExtensionCodec;
use datafusion_ffi::table_provider::FFI_TableProvider;
use datafusion_ffi::udtf::FFI_TableFunction;
use deltalake_core::arrow::array::{Array, ArrayRef, RecordBatchReader, StringArray};
use deltalake_core::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use deltalake_core::arrow::ffi_stream::FFI_ArrowArrayStream;
use deltalake_core::arrow::record_batch::{RecordBatch, RecordBatchIterator};
use deltalake_core::datafusion::catalog::{Session, TableFunctionImpl, TableProvider};
use deltalake_core::datafusion::common::tree_node::TreeNode;
use deltalake_core::datafusion::common::{
    ColumnStatistics, DataFusionError, Result as DfResult, ScalarValue, Statistics, TableReference,
    plan_err,
};
use deltalake_core::datafusion::datasource::TableType;
use deltalake_core::datafusion::datasource::physical_plan::FileScanConfig;
use deltalake_core::datafusion::datasource::source::DataSourceExec;
use deltalake_core::datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use deltalake_core::datafusion::logical_expr::Operator;
use deltalake_core::datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use deltalake_core::datafusion::physical_expr::PhysicalExpr;
use deltalake_core::datafusion::physical_expr::expressions::{
    BinaryExpr, CaseExpr, Column as PhysicalColumn, Literal,
};
use deltalake_core::datafusion::physical_plan::ExecutionPlan;
use deltalake_core::datafusion::physical_plan::projection::ProjectionExec;
use deltalake_core::datafusion::prelude::SessionContext;
use deltalake_core::delta_datafusion::{DataFusionMixins, DeltaScanConfig, DeltaScanNext};
use deltalake_core::kernel::EagerSnapshot;
use deltalake_core::table::builder::parse_table_uri;
use deltalake_core::{DeltaTable, DeltaTableBuilder};
use object_store::ObjectStoreExt as _;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use url::Url;

use super::exec::{DeltaTableExec, ScanFacts};
use super::prune::{Pruning, file_index, plan_conjuncts, prune, verdicts_batch};
use super::runtime::{InRuntime, runtime};
use crate::cache::tables::{CachedTable, ListingRow, StatisticsRow, TableCounters};
use crate::cache::{CacheScope, scope as cache_scope, session_id_of};

create_exception!(
    _ext,
    DeltaError,
    PyException,
    "A Delta table could not be opened or read."
);

/// Where a registered table is read from and how: fixed at registration.
#[derive(Debug, Clone)]
struct Source {
    uri: String,
    /// The registered name (plan metrics carry it).
    name: String,
    config: DeltaScanConfig,
    files: Option<Vec<String>>,
    storage_options: HashMap<String, String>,
    /// A pinned table (version, timestamp or file restriction) is never refreshed.
    pinned: bool,
}

/// One version of a table: its log state and the deltalake scan over it.
pub struct TableVersion {
    table: DeltaTable,
    /// Modification time and size of this version's commit file, when it could be read: a
    /// refresh that finds it gone or rewritten knows the table was deleted or created anew.
    commit: Option<(DateTime<Utc>, u64)>,
    pub version: u64,
    pub snapshot: EagerSnapshot,
    pub partition_columns: Vec<String>,
    /// String partition columns with an empty value in some file: the Delta protocol reads
    /// `""` as NULL, deltalake-core as `""` (see [`blank_partitions`]).
    blank_partitions: Vec<String>,
    scan: DeltaScanNext,
    facts: ScanFacts,
    /// When this version was read from the log.
    loaded_at: SystemTime,
    /// Bytes of the files' statistics, counted when first asked.
    stats_bytes: OnceLock<usize>,
}

impl fmt::Debug for TableVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableVersion")
            .field("version", &self.version)
            .field("facts", &self.facts)
            .finish_non_exhaustive()
    }
}

impl TableVersion {
    async fn load(table: DeltaTable, source: &Source) -> Result<Self, String> {
        let mut version = Self::new(table, source)?;
        version.commit = commit_identity(&version.table, version.version).await;
        Ok(version)
    }

    fn new(table: DeltaTable, source: &Source) -> Result<Self, String> {
        let uri = &source.uri;
        let state = table.snapshot().map_err(|e| format!("{uri}: {e}"))?;
        let snapshot = state.snapshot().clone();
        let version = state.version();
        let mut scan =
            DeltaScanNext::new(snapshot.clone(), source.config.clone()).map_err(|e| {
                format!("{uri} (version {version}) cannot be read by this workbench: {e}")
            })?;
        if let Some(files) = &source.files {
            scan = scan.with_file_paths(files.clone());
        }
        let facts = ScanFacts {
            table: source.name.clone(),
            version,
            files_total: snapshot.log_data().num_files(),
        };
        let partition_columns = state.metadata().partition_columns().to_vec();
        Ok(Self {
            blank_partitions: blank_partitions(&snapshot, &partition_columns),
            partition_columns,
            table,
            commit: None,
            version,
            snapshot,
            scan,
            facts,
            loaded_at: SystemTime::now(),
            stats_bytes: OnceLock::new(),
        })
    }

    /// Bytes of the statistics of this version's files, as the log writes them (JSON).
    pub fn stats_bytes(&self) -> usize {
        *self.stats_bytes.get_or_init(|| {
            self.snapshot
                .log_data()
                .iter()
                .map(|file| file.stats().map_or(0, |s| s.len()))
                .sum()
        })
    }
}

/// A registered Delta table as a DataFusion provider: `DeltaScan` over the newest
/// version, refreshed at every `scan` (unless pinned), polled inside the extension's
/// runtime (see the module docs), its plans wrapped in a [`DeltaTableExec`] that reports
/// the table's file counts.
///
/// Refreshing in `scan` (physical planning, when a query runs) rather than at
/// registration means everything that reaches this provider, a view or a DataFrame held
/// by the user included, reads the newest version. A refresh that changes the schema fails
/// the scan (the query was planned against the old columns); the next statement planned
/// sees the new schema.
#[derive(Debug)]
pub struct WorkbenchDeltaScan {
    source: Source,
    current: RwLock<Arc<TableVersion>>,
    /// The version and data files (see [`scan_files`]) of the latest `scan`: `%prune` plans
    /// its predicate in the host session and reads the files that scan chose here.
    last_scan: Mutex<Option<LastScan>>,
    /// Snapshot loads and reuses, log listings (the session's cache functions show them).
    counters: TableCounters,
    /// The caches of the session the table is registered in (see [`crate::cache`]).
    scope: RwLock<Option<Arc<CacheScope>>>,
}

/// What one `scan` read: the version, and its files (`None` for a plan that opens no
/// Parquet, e.g. one answered from the log).
type LastScan = (Arc<TableVersion>, Option<HashSet<String>>);

impl WorkbenchDeltaScan {
    /// Where the table is (a path or URL, as registered).
    pub fn uri(&self) -> &str {
        &self.source.uri
    }

    /// The version the next scan reads unless a commit lands first.
    pub fn current(&self) -> Arc<TableVersion> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The newest version in the log (the current one if pinned or unchanged).
    ///
    /// One listing of `_delta_log` tells whether a commit landed since the current version
    /// (then the table is updated incrementally) and whether the current version's commit
    /// file is still the one it was read from; if not, the table was deleted or created
    /// anew at its location (an incremental update would lay the new log's commits over the
    /// old files), so it is read from scratch, and a location without a Delta log any more
    /// is an error saying so. A pinned table is never listed, nor one listed within the
    /// session's listing TTL (see [`crate::cache`]).
    pub async fn refresh(&self) -> Result<Arc<TableVersion>, String> {
        let current = self.current();
        let ttl = self.scope().and_then(|s| s.listing_ttl());
        if self.source.pinned || self.counters.listed_within(ttl) {
            self.counters.avoided();
            self.counters.reused();
            return Ok(current);
        }
        let (name, uri) = (&self.source.name, &self.source.uri);
        // A listing that fails reads as an empty log: the table is then read again, and
        // that says what is wrong.
        let listing = list_log(&current.table, current.version).await.ok();
        self.counters.listed(
            listing.as_ref().map_or(0, |l| l.entries),
            listing.as_ref().map_or(0, |l| l.newer_commits),
        );
        let same = match current.commit {
            Some(read) => listing.as_ref().and_then(|l| l.current_commit) == Some(read),
            None => true, // a log cleaned up to a checkpoint: nothing to compare with
        };
        let table = if same {
            if listing.as_ref().is_some_and(|l| l.newer_commits == 0) {
                self.counters.reused();
                return Ok(current);
            }
            let mut table = current.table.clone();
            table
                .update_incremental(None)
                .await
                .map_err(|e| format!("Delta table {name} ({uri}): {e}"))?;
            if table.version() == Some(current.version) {
                self.counters.reused();
                return Ok(current);
            }
            table
        } else {
            let gone =
                !uri.contains("://") && !std::path::Path::new(uri).join("_delta_log").is_dir();
            if gone {
                return Err(format!(
                    "Delta table {name}: {uri} holds no Delta table any more (its _delta_log \
                     is gone); register the table again where it now is, or DROP TABLE {name}"
                ));
            }
            load_latest(&self.source)
                .await
                .map_err(|e| format!("Delta table {name} ({uri}) could not be read again: {e}"))?
        };
        let next = Arc::new(TableVersion::load(table, &self.source).await?);
        self.counters.loaded();
        let mut slot = self.current.write().unwrap_or_else(|e| e.into_inner());
        if !same || next.version > slot.version {
            *slot = Arc::clone(&next);
        }
        Ok(Arc::clone(&slot))
    }

    /// The caches of the session the table is registered in, if it is.
    pub fn scope(&self) -> Option<Arc<CacheScope>> {
        self.scope.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Use (and show the table in) `scope`'s caches: the session it is registered in.
    /// Registered in several sessions, the table uses the last one's.
    pub fn bind(self: &Arc<Self>, scope: Arc<CacheScope>) {
        let shown: Arc<dyn CachedTable> = Arc::clone(self) as _;
        scope.track(Arc::downgrade(&shown));
        *self.scope.write().unwrap_or_else(|e| e.into_inner()) = Some(scope);
    }

    /// The scope scans use: the bound one, else that of the session planning the scan
    /// (kept from then on; a table planned outside any workbench session, in tests).
    fn scope_for(&self, session: &dyn Session) -> Arc<CacheScope> {
        if let Some(scope) = self.scope() {
            return scope;
        }
        let scope = cache_scope(session.session_id());
        *self.scope.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&scope));
        scope
    }

    /// Clear the record of the latest scan (see [`Self::take_last_scan`]).
    pub fn forget_last_scan(&self) {
        self.last_scan
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    /// The same version, pinned: what `%prune` plans against.
    fn pinned_at(&self, version: Arc<TableVersion>) -> Self {
        Self {
            source: Source {
                pinned: true,
                ..self.source.clone()
            },
            current: RwLock::new(version),
            last_scan: Mutex::new(None),
            counters: TableCounters::default(),
            scope: RwLock::new(self.scope()),
        }
    }

    /// The version and files of the latest scan planned, if any since the last call.
    pub fn take_last_scan(&self) -> Option<LastScan> {
        self.last_scan
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

/// A session of this library built from the host's configuration and runtime environment:
/// through the FFI session, physical expressions would be created by the host and come
/// back opaque to this side.
pub fn local_state(session: &dyn Session) -> SessionState {
    SessionStateBuilder::new()
        .with_config(session.config().clone())
        .with_runtime_env(Arc::clone(session.runtime_env()))
        .with_default_features()
        .build()
}

/// [`local_state`] running with `scope`'s caches: Parquet footers read by one query are
/// there for the next (the host's runtime, with its own caches, never crosses FFI).
pub fn local_state_in(session: &dyn Session, scope: &CacheScope) -> DfResult<SessionState> {
    Ok(SessionStateBuilder::new()
        .with_config(session.config().clone())
        .with_runtime_env(scope.runtime_over(session.runtime_env())?)
        .with_default_features()
        .build())
}

/// Whether `expr` reads a floating-point column.
///
/// Neither statistics nor partition values order floats as DataFusion's comparisons do:
/// deltalake-core compares partition values in IEEE total order, where `-0.0 < 0.0`, so a
/// partition `-0.0` was pruned for `pf = 0`; and Parquet and Delta statistics leave NaN
/// out of min/max while DataFusion orders NaN above every number, so a file whose max is
/// 2.5 was pruned for `f > 2.5` although its NaN rows match. Both were wrong rows, so
/// filters on float columns stay above the scan.
fn reads_float(expr: &Expr, schema: &Schema) -> bool {
    expr.column_refs().iter().any(|column| {
        schema.field_with_name(&column.name).is_ok_and(|f| {
            matches!(
                f.data_type(),
                DataType::Float16 | DataType::Float32 | DataType::Float64
            )
        })
    })
}

/// Whether `expr` reads one of `columns`.
fn reads_any(expr: &Expr, columns: &[String]) -> bool {
    !columns.is_empty() && expr.column_refs().iter().any(|c| columns.contains(&c.name))
}

/// The string partition columns of `snapshot` with an empty value in some file.
///
/// The Delta protocol reads an empty partition value as NULL for every type; deltalake-core
/// 1.1.3 returns `""` for a string column, and evaluates partition filters on `""` too.
/// For such a column filters stay above the scan, the scan's output maps `""` to NULL
/// ([`blank_to_null`]), and its statistics are dropped.
fn blank_partitions(snapshot: &EagerSnapshot, partitions: &[String]) -> Vec<String> {
    let schema = snapshot.input_schema();
    let strings: Vec<&String> = partitions
        .iter()
        .filter(|c| {
            schema.field_with_name(c).is_ok_and(|f| {
                matches!(
                    f.data_type(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                )
            })
        })
        .collect();
    if strings.is_empty() {
        return Vec::new();
    }
    // The raw values as the log writes them (the parsed ones already read "" as NULL),
    // keyed by physical name under column mapping.
    let key = |column: &str| -> String {
        schema
            .field_with_name(column)
            .ok()
            .and_then(|f| {
                f.metadata()
                    .get("delta.columnMapping.physicalName")
                    .cloned()
            })
            .unwrap_or_else(|| column.to_string())
    };
    let keys: Vec<(String, String)> = strings.iter().map(|c| ((*c).clone(), key(c))).collect();
    let mut blank: Vec<String> = Vec::new();
    for file in snapshot.log_data().iter() {
        let values = file.partition_values_map();
        for (column, key) in &keys {
            if !blank.contains(column) && values.get(key).is_some_and(|v| v.as_deref() == Some(""))
            {
                blank.push(column.clone());
            }
        }
        if blank.len() == keys.len() {
            break;
        }
    }
    blank
}

/// `plan` with every column of `columns` in its output NULL where it is `""`.
fn blank_to_null(
    plan: Arc<dyn ExecutionPlan>,
    columns: &[String],
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let schema = plan.schema();
    if !schema.fields().iter().any(|f| columns.contains(f.name())) {
        return Ok(plan);
    }
    let mut exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = Vec::new();
    for (at, field) in schema.fields().iter().enumerate() {
        let column: Arc<dyn PhysicalExpr> = Arc::new(PhysicalColumn::new(field.name(), at));
        if !columns.contains(field.name()) {
            exprs.push((column, field.name().clone()));
            continue;
        }
        let blank = ScalarValue::Utf8(Some(String::new())).cast_to(field.data_type())?;
        let null = ScalarValue::try_from(field.data_type())?;
        let is_blank: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            Arc::clone(&column),
            Operator::Eq,
            Arc::new(Literal::new(blank)),
        ));
        let case = CaseExpr::try_new(
            None,
            vec![(is_blank, Arc::new(Literal::new(null)))],
            Some(column),
        )?;
        exprs.push((Arc::new(case), field.name().clone()));
    }
    Ok(Arc::new(ProjectionExec::try_new(exprs, plan)?))
}

/// Whether `expr` calls a function.
fn calls_function(expr: &Expr) -> bool {
    expr.exists(|e| Ok(matches!(e, Expr::ScalarFunction(_))))
        .unwrap_or(true)
}

/// How each filter reaches a scan of `version`: deltalake's answer, except that filters on
/// a float column (see [`reads_float`]) and filters calling a function
/// stay above the scan. Functions arrive from the host as foreign UDFs that the local
/// planner cannot simplify with literal arguments, and a function cannot be swapped for a
/// local one by name: a user's UDF may be called `upper`.
fn pushdown(
    version: &TableVersion,
    filters: &[&Expr],
) -> DfResult<Vec<TableProviderFilterPushDown>> {
    let schema = version.scan.schema();
    let inner = version.scan.supports_filters_pushdown(filters)?;
    Ok(filters
        .iter()
        .zip(inner)
        .map(|(filter, answer)| {
            if reads_float(filter, &schema)
                || reads_any(filter, &version.blank_partitions)
                || calls_function(filter)
            {
                TableProviderFilterPushDown::Unsupported
            } else {
                answer
            }
        })
        .collect())
}

/// Whether a query planned against `planned` may scan `now` (a newer version): the same
/// columns (names, types, nullability; metadata such as comments may differ) and the same
/// answer for every filter it pushed down.
fn still_fits(planned: &TableVersion, now: &TableVersion, filters: &[Expr]) -> DfResult<bool> {
    let shape = |v: &TableVersion| -> Vec<(String, DataType, bool)> {
        v.scan
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable()))
            .collect()
    };
    let borrowed: Vec<&Expr> = filters.iter().collect();
    Ok(shape(planned) == shape(now) && pushdown(planned, &borrowed)? == pushdown(now, &borrowed)?)
}

#[async_trait]
impl TableProvider for WorkbenchDeltaScan {
    fn schema(&self) -> SchemaRef {
        self.current().scan.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        session: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        // Plan against a local session built from the host's configuration: through the
        // FFI session, physical expressions would be created by the host and come back
        // opaque, so pruning could not read them and the Parquet row filter would fail.
        let scope = self.scope_for(session);
        let local = local_state_in(session, &scope)?;
        let planned = self.current();
        let plan: Arc<dyn ExecutionPlan> = InRuntime {
            handle: runtime().handle().clone(),
            future: Box::pin(async {
                let version = self.refresh().await.map_err(DataFusionError::Execution)?;
                if !Arc::ptr_eq(&version, &planned) && !still_fits(&planned, &version, filters)? {
                    return plan_err!(
                        "Delta table {} changed at version {} in a way this query's plan \
                         depends on (its columns, or which filters reach the scan; the query \
                         was planned against version {}); run it again, and create views over \
                         the table again",
                        self.source.name,
                        version.version,
                        planned.version
                    );
                }
                let plan = version
                    .scan
                    .scan(&local, projection, filters, limit)
                    .await?;
                let files = data_files(&plan);
                let plan = blank_to_null(plan, &version.blank_partitions)?;
                *self.last_scan.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((Arc::clone(&version), files));
                Ok(
                    Arc::new(DeltaTableExec::new(plan, version.facts.clone()).in_scope(scope))
                        as Arc<dyn ExecutionPlan>,
                )
            }),
        }
        .await?;
        Ok(plan)
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        pushdown(&self.current(), filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        let current = self.current();
        let mut statistics = current.scan.statistics()?;
        let schema = current.scan.schema();
        for column in &current.blank_partitions {
            if let Ok(at) = schema.index_of(column)
                && let Some(stats) = statistics.column_statistics.get_mut(at)
            {
                *stats = ColumnStatistics::new_unknown();
            }
        }
        Some(statistics)
    }
    // No insert_into: a workbench Delta table is read-only from SQL.
}

/// How to open a table: which version and which scan knobs.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// The name the table is registered under (plan metrics carry it); the URI when absent.
    pub name: Option<String>,
    pub version: Option<u64>,
    pub timestamp: Option<String>,
    pub storage_options: HashMap<String, String>,
    pub file_column_name: Option<String>,
    pub wrap_partition_values: bool,
    pub enable_parquet_pushdown: bool,
    pub schema_force_view_types: bool,
    pub files: Option<Vec<String>>,
}

/// A registered table: where it is and the provider reading it.
pub struct OpenedTable {
    pub uri: String,
    pub provider: Arc<WorkbenchDeltaScan>,
}

/// Open `uri` (a path or URL) at the version `options` name, refusing unreadable features.
pub async fn open(uri: &str, options: &OpenOptions) -> Result<OpenedTable, String> {
    if options.version.is_some() && options.timestamp.is_some() {
        return Err("give version or timestamp, not both".to_string());
    }
    let url = parse_table_uri(uri).map_err(|e| format!("{uri} is not a Delta table: {e}"))?;
    let mut builder = DeltaTableBuilder::from_url(url)
        .map_err(|e| format!("{uri}: {e}"))?
        .with_storage_options(options.storage_options.clone());
    if let Some(version) = options.version {
        // Loading walks the log up to the version: a version past the newest would list
        // for a very long time before failing, so it is checked first.
        let latest = latest_version(uri, &options.storage_options).await?;
        if version > latest {
            return Err(format!(
                "{uri} has no version {version}: its newest version is {latest}"
            ));
        }
        builder = builder.with_version(version);
    }
    let mut moment = None;
    if let Some(timestamp) = &options.timestamp {
        let parsed = DateTime::parse_from_rfc3339(timestamp).map_err(|e| {
            format!("timestamp {timestamp:?}: {e}; use RFC 3339, e.g. 2026-11-25T10:00:00Z")
        })?;
        moment = Some(parsed.with_timezone(&Utc));
        builder = builder.with_timestamp(parsed.with_timezone(&Utc));
    }
    let table = builder.load().await.map_err(|e| format!("{uri}: {e}"))?;
    if let (Some(moment), Some(version)) = (moment, table.version()) {
        let committed = commit_time(&table, version).await?;
        // In milliseconds, as deltalake's search compares: it opened the oldest version
        // when even that one is later than the moment.
        if committed.timestamp_millis() > moment.timestamp_millis() {
            return Err(format!(
                "{uri} did not exist at {}: its first version ({version}) was committed at {}",
                moment.to_rfc3339(),
                committed.to_rfc3339()
            ));
        }
    }
    if let Some(column) = &options.file_column_name {
        let schema = table
            .snapshot()
            .map_err(|e| format!("{uri}: {e}"))?
            .snapshot()
            .input_schema();
        if schema.field_with_name(column).is_ok() {
            return Err(format!(
                "file_column_name {column:?} is already a column of {uri}; choose another \
                 name for the column of file paths"
            ));
        }
    }
    let source = Source {
        uri: uri.to_string(),
        name: options.name.clone().unwrap_or_else(|| uri.to_string()),
        config: DeltaScanConfig {
            file_column_name: options.file_column_name.clone(),
            wrap_partition_values: options.wrap_partition_values,
            enable_parquet_pushdown: options.enable_parquet_pushdown,
            schema_force_view_types: options.schema_force_view_types,
            schema: None,
        },
        files: options.files.clone(),
        storage_options: options.storage_options.clone(),
        pinned: options.version.is_some() || options.timestamp.is_some() || options.files.is_some(),
    };
    let version = TableVersion::load(table, &source).await?;
    let counters = TableCounters::default();
    counters.loaded();
    Ok(OpenedTable {
        uri: uri.to_string(),
        provider: Arc::new(WorkbenchDeltaScan {
            source,
            current: RwLock::new(Arc::new(version)),
            last_scan: Mutex::new(None),
            counters,
            scope: RwLock::new(None),
        }),
    })
}

/// What one listing of a table's `_delta_log` found.
#[derive(Debug, Clone, PartialEq)]
struct LogListing {
    /// Objects listed (commits, checkpoints, checksums, `_last_checkpoint`).
    entries: usize,
    /// Commit files of versions after the one held.
    newer_commits: usize,
    /// Modification time and size of the held version's commit file, if listed.
    current_commit: Option<(DateTime<Utc>, u64)>,
}

/// The version of a commit file's name (`00000000000000000012.json`), if it is one.
fn commit_version(file_name: &str) -> Option<u64> {
    let digits = file_name.strip_suffix(".json")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One listing of `table`'s log, read against version `held`.
async fn list_log(table: &DeltaTable, held: u64) -> Result<LogListing, String> {
    let store = table.log_store();
    let listed = store
        .object_store(None)
        .list_with_delimiter(Some(store.log_path()))
        .await
        .map_err(|e| e.to_string())?;
    Ok(read_listing(
        listed.objects.iter().map(|o| {
            (
                o.location.filename().unwrap_or_default(),
                o.last_modified,
                o.size,
            )
        }),
        held,
    ))
}

fn read_listing<'a>(
    objects: impl Iterator<Item = (&'a str, DateTime<Utc>, u64)>,
    held: u64,
) -> LogListing {
    let mut listing = LogListing {
        entries: 0,
        newer_commits: 0,
        current_commit: None,
    };
    for (name, modified, size) in objects {
        listing.entries += 1;
        match commit_version(name) {
            Some(v) if v > held => listing.newer_commits += 1,
            Some(v) if v == held => listing.current_commit = Some((modified, size)),
            _ => {}
        }
    }
    listing
}

impl CachedTable for WorkbenchDeltaScan {
    fn statistics_row(&self) -> StatisticsRow {
        let current = self.current();
        let (loads, reuses) = self.counters.snapshots();
        StatisticsRow {
            table: self.source.name.clone(),
            location: self.source.uri.clone(),
            version: current.version,
            entries: current.facts.files_total,
            size_bytes: current.stats_bytes(),
            hits: reuses,
            misses: loads,
            pinned: self.source.pinned,
            cached_at: current.loaded_at,
        }
    }

    fn listing_row(&self) -> ListingRow {
        let log = format!("{}/_delta_log", self.source.uri.trim_end_matches('/'));
        self.counters.listing(&self.source.name, &log)
    }
}

/// The newest version of `source`'s table, read from scratch.
async fn load_latest(source: &Source) -> Result<DeltaTable, String> {
    let url = parse_table_uri(&source.uri).map_err(|e| e.to_string())?;
    DeltaTableBuilder::from_url(url)
        .map_err(|e| e.to_string())?
        .with_storage_options(source.storage_options.clone())
        .load()
        .await
        .map_err(|e| e.to_string())
}

/// Modification time and size of `version`'s commit file (`None` if it cannot be read).
async fn commit_identity(table: &DeltaTable, version: u64) -> Option<(DateTime<Utc>, u64)> {
    let store = table.log_store();
    let path = store.log_path().clone().join(format!("{version:020}.json"));
    let meta = store.object_store(None).head(&path).await.ok()?;
    Some((meta.last_modified, meta.size))
}

/// When `version` was committed, as time travel by timestamp reads it (the commit file's
/// modification time, which is what deltalake's timestamp search compares).
pub async fn commit_time(table: &DeltaTable, version: u64) -> Result<DateTime<Utc>, String> {
    let store = table.log_store();
    let path = store.log_path().clone().join(format!("{version:020}.json"));
    let meta = store
        .object_store(None)
        .head(&path)
        .await
        .map_err(|e| format!("{}: commit {version}: {e}", table.table_url()))?;
    Ok(meta.last_modified)
}

/// The newest version of the table at `uri`, reading only the log's listing.
pub async fn latest_version(
    uri: &str,
    storage_options: &HashMap<String, String>,
) -> Result<u64, String> {
    let url = parse_table_uri(uri).map_err(|e| format!("{uri}: {e}"))?;
    let table = DeltaTableBuilder::from_url(url)
        .map_err(|e| format!("{uri}: {e}"))?
        .with_storage_options(storage_options.clone())
        .build()
        .map_err(|e| format!("{uri}: {e}"))?;
    let store = table.log_store();
    let version = store
        .get_latest_version(0)
        .await
        .map_err(|e| format!("{uri}: {e}"))?;
    Ok(version)
}

/// The data files (paths relative to the table, as the log names them, percent-decoded)
/// that a scan of `provider`'s `version` filtered by `predicate` reads, planned in a local
/// session. `%prune` uses the files of the host's own scan (see [`WorkbenchDeltaScan`]);
/// this is for a plan that opens no Parquet, and for tests.
pub async fn scan_files(
    provider: &WorkbenchDeltaScan,
    version: Arc<TableVersion>,
    predicate: &str,
) -> Result<HashSet<String>, String> {
    let pinned: Arc<dyn TableProvider> = Arc::new(provider.pinned_at(Arc::clone(&version)));
    let ctx = SessionContext::new();
    let name = &provider.source.name;
    ctx.register_table(TableReference::bare(name.as_str()), pinned)
        .map_err(|e| e.to_string())?;
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    let df = ctx
        .sql(&format!("SELECT * FROM {quoted} WHERE {predicate}"))
        .await
        .map_err(|e| e.to_string())?;
    let plan = df.create_physical_plan().await.map_err(|e| e.to_string())?;
    Ok(data_files(&plan).unwrap_or_default())
}

/// `%prune` of `predicate` at `version`: `scanned` is what the user's own query of the
/// predicate read (`Read::Files`), that its plan has no scan of the table
/// (`Read::Nothing`), or unknown (`Read::Unknown`: a scan is planned here).
/// `lenient`: the user's session planned the predicate, so a term this side cannot plan (a
/// session UDF) is undecidable rather than an error.
pub async fn prune_version(
    provider: &WorkbenchDeltaScan,
    version: Arc<TableVersion>,
    scanned: Read,
    predicate: &str,
    lenient: bool,
) -> Result<Pruning, String> {
    let conjuncts = plan_conjuncts(&version.snapshot, predicate, lenient)?;
    let scanned = match scanned {
        Read::Files(files) => Some(files),
        Read::Nothing => None,
        Read::Unknown => Some(scan_files(provider, Arc::clone(&version), predicate).await?),
    };
    prune(
        &version.snapshot,
        conjuncts,
        &|path| location_of(version.table.table_url(), path),
        scanned.as_ref(),
        provider.source.files.as_deref(),
    )
}

/// The object store location a scan reads for `path` (a log path, relative to `root` or a
/// URL), computed as deltalake's scan computes it, so it compares with [`data_files`].
fn location_of(root: &Url, path: &str) -> String {
    Url::parse(path)
        .or_else(|_| root.join(path))
        .ok()
        .and_then(|url| object_store::path::Path::from_url_path(url.path()).ok())
        .map_or_else(|| path.to_string(), |p| p.to_string())
}

/// Which files a query read (see [`prune_version`]).
pub enum Read {
    Files(HashSet<String>),
    Nothing,
    Unknown,
}

/// The object store locations of the data files a scan plan reads (`None` if it opens
/// none); [`location_of`] gives a log path's.
fn data_files(plan: &Arc<dyn ExecutionPlan>) -> Option<HashSet<String>> {
    let mut files = HashSet::new();
    collect_files(plan, &mut files).then_some(files)
}

/// Adds the files of every `DataSourceExec` under `plan`; whether there was one.
fn collect_files(plan: &Arc<dyn ExecutionPlan>, out: &mut HashSet<String>) -> bool {
    let mut found = false;
    if let Some(source) = plan.downcast_ref::<DataSourceExec>()
        && let Some(config) = source.data_source().downcast_ref::<FileScanConfig>()
    {
        found = true;
        for group in &config.file_groups {
            out.extend(group.iter().map(|f| f.object_meta.location.to_string()));
        }
    }
    for child in plan.children() {
        found |= collect_files(child, out);
    }
    found
}

/// Arrow batches handed to Python through the Arrow C stream protocol.
#[pyclass(module = "workbench._ext")]
pub struct ArrowBatches {
    batches: Option<(SchemaRef, Vec<RecordBatch>)>,
}

impl ArrowBatches {
    /// `batches` (all of `schema`), to be read once.
    pub fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        Self {
            batches: Some((schema, batches)),
        }
    }
}

#[pymethods]
impl ArrowBatches {
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &mut self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema; // the schema is the file index's own
        let (schema, batches) = self
            .batches
            .take()
            .ok_or_else(|| DeltaError::new_err("these batches were already read"))?;
        let reader: Box<dyn RecordBatchReader + Send> = Box::new(RecordBatchIterator::new(
            batches.into_iter().map(Ok),
            schema,
        ));
        PyCapsule::new_with_value(py, FFI_ArrowArrayStream::new(reader), c"arrow_array_stream")
    }
}

/// A Delta table opened at one version (Python: `workbench._ext.DeltaProvider`).
#[pyclass(name = "DeltaProvider", module = "workbench._ext", frozen)]
pub struct PyDeltaProvider {
    table: OpenedTable,
}

/// `index` with `file_url` after `path`: the file's URL exactly as a scan's
/// `file_column_name` column shows it (the table's URL joined with the log's path), so the
/// two join.
fn with_file_urls(index: &RecordBatch, root: &str) -> Result<RecordBatch, String> {
    let paths = index
        .column_by_name("path")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or("the file index has no path column")?;
    let root = root.trim_end_matches('/');
    let urls: StringArray = paths
        .iter()
        .map(|path| {
            path.map(|p| {
                if p.contains("://") {
                    p.to_string()
                } else {
                    format!("{root}/{p}")
                }
            })
        })
        .collect();
    let schema = index.schema();
    let at = schema.index_of("path").map_err(|e| e.to_string())? + 1;
    let mut fields: Vec<FieldRef> = schema.fields().iter().cloned().collect();
    let mut columns: Vec<ArrayRef> = index.columns().to_vec();
    fields.insert(at, Arc::new(Field::new("file_url", DataType::Utf8, true)));
    columns.insert(at, Arc::new(urls));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())
}

impl PyDeltaProvider {
    /// The provider itself (for the table functions that read the same table).
    pub fn scan(&self) -> Arc<WorkbenchDeltaScan> {
        Arc::clone(&self.table.provider)
    }
}

fn delta_error(message: String) -> PyErr {
    DeltaError::new_err(message)
}

#[pymethods]
impl PyDeltaProvider {
    /// Open `uri` at the latest version, or `version`, or the one current at `timestamp`.
    #[staticmethod]
    #[pyo3(signature = (
        uri, *, name=None, version=None, timestamp=None, storage_options=None,
        file_column_name=None, wrap_partition_values=true, enable_parquet_pushdown=true,
        schema_force_view_types=true, files=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn open(
        py: Python<'_>,
        uri: String,
        name: Option<String>,
        version: Option<u64>,
        timestamp: Option<String>,
        storage_options: Option<HashMap<String, String>>,
        file_column_name: Option<String>,
        wrap_partition_values: bool,
        enable_parquet_pushdown: bool,
        schema_force_view_types: bool,
        files: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let options = OpenOptions {
            name,
            version,
            timestamp,
            storage_options: storage_options.unwrap_or_default(),
            file_column_name,
            wrap_partition_values,
            enable_parquet_pushdown,
            schema_force_view_types,
            files,
        };
        let table = py
            .detach(|| runtime().block_on(open(&uri, &options)))
            .map_err(delta_error)?;
        Ok(Self { table })
    }

    #[getter]
    fn version(&self) -> u64 {
        self.table.provider.current().version
    }

    #[getter]
    fn uri(&self) -> String {
        self.table.uri.clone()
    }

    #[getter]
    fn partition_columns(&self) -> Vec<String> {
        self.table.provider.current().partition_columns.clone()
    }

    /// Read the newest version from the log (unless pinned); the version now current.
    fn refresh(&self, py: Python<'_>) -> PyResult<u64> {
        let provider = &self.table.provider;
        py.detach(|| runtime().block_on(provider.refresh()))
            .map(|v| v.version)
            .map_err(delta_error)
    }

    /// Forget the latest scan's files: `Session.prune` calls it before planning its query,
    /// so a plan without a scan of the table is seen as one.
    fn forget_last_scan(&self) {
        self.table.provider.forget_last_scan();
    }

    /// One row per file of the current version: path, size, records, partition values,
    /// statistics, deletion vector.
    fn file_index(&self) -> PyResult<ArrowBatches> {
        let version = self.table.provider.current();
        let batch = file_index(&version.snapshot)
            .and_then(|index| with_file_urls(&index, version.table.table_url().as_str()))
            .map_err(|e| delta_error(format!("{}: {e}", self.table.uri)))?;
        Ok(ArrowBatches {
            batches: Some((batch.schema(), vec![batch])),
        })
    }

    /// Which files `predicate` (SQL over the table's columns) skips: one row per file
    /// (path, size_bytes, num_records, kept, reason), the predicate's `AND` terms as (SQL,
    /// decidable from statistics), and the version. Kept means the scan reads the file:
    /// the files of the latest scan planned (the caller plans `SELECT * ... WHERE
    /// predicate` in the host session first), else of a scan planned here at the current
    /// version. The reasons come from the log's statistics.
    /// `planned=False` says the caller's query failed to plan: the scan is planned here,
    /// and a predicate at fault gets an error naming the term.
    #[allow(clippy::type_complexity)]
    #[pyo3(signature = (predicate, planned=true))]
    fn prune(
        &self,
        py: Python<'_>,
        predicate: String,
        planned: bool,
    ) -> PyResult<(ArrowBatches, Vec<(String, bool)>, u64)> {
        let provider = &self.table.provider;
        let (version, scanned) = match (planned, provider.take_last_scan()) {
            (true, Some((version, Some(files)))) => (version, Read::Files(files)),
            (true, Some((version, None))) => (version, Read::Unknown), // opened no Parquet
            (true, None) => (provider.current(), Read::Nothing),
            (false, _) => (provider.current(), Read::Unknown),
        };
        let at = version.version;
        let pruning = py
            .detach(|| {
                runtime().block_on(prune_version(
                    provider, version, scanned, &predicate, planned,
                ))
            })
            .map_err(delta_error)?;
        let batch = verdicts_batch(&pruning.files);
        let terms = pruning
            .conjuncts
            .into_iter()
            .map(|c| (c.text, c.decidable))
            .collect();
        Ok((
            ArrowBatches {
                batches: Some((batch.schema(), vec![batch])),
            },
            terms,
            at,
        ))
    }

    fn __datafusion_table_provider__<'py>(
        &self,
        py: Python<'py>,
        session: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        self.table
            .provider
            .bind(cache_scope(&session_id_of(&session)?));
        let codec = logical_codec(session)?;
        let provider: Arc<dyn TableProvider> = self.table.provider.clone();
        let ffi = FFI_TableProvider::new_with_ffi_codec(
            provider,
            true,
            Some(runtime().handle().clone()),
            codec,
        );
        PyCapsule::new_with_value(py, ffi, c"datafusion_table_provider")
    }
}

/// `function` as the capsule Python's `datafusion.udtf` takes, with the host's codec.
///
/// Every table function the extension exports goes through here because each must carry
/// the extension's tokio runtime handle: without one, datafusion-ffi 55 crashed the process
/// on about 3 in 4 zero-argument calls (docs/decisions.md).
pub fn table_function_capsule<'py>(
    py: Python<'py>,
    session: Bound<'py, PyAny>,
    function: Arc<dyn TableFunctionImpl>,
) -> PyResult<Bound<'py, PyCapsule>> {
    let codec = logical_codec(session)?;
    let ffi =
        FFI_TableFunction::new_with_ffi_codec(function, Some(runtime().handle().clone()), codec);
    PyCapsule::new_with_value(py, ffi, c"datafusion_table_function")
}

/// The host's logical codec: from a SessionContext, or the codec capsule itself.
pub fn logical_codec(session: Bound<'_, PyAny>) -> PyResult<FFI_LogicalExtensionCodec> {
    let attribute = "__datafusion_logical_extension_codec__";
    let capsule = if session.hasattr(attribute)? {
        session.getattr(attribute)?.call0()?
    } else {
        session
    };
    let capsule = capsule.cast::<PyCapsule>()?;
    let pointer = capsule.pointer_checked(Some(c"datafusion_logical_extension_codec"))?;
    // SAFETY: the capsule's name guarantees it holds an FFI_LogicalExtensionCodec, owned
    // by the host for as long as the capsule lives; we clone it before returning.
    let codec = unsafe { pointer.cast::<FFI_LogicalExtensionCodec>().as_ref() };
    Ok(codec.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::testing::{TestFile, write_table};
    use deltalake_core::datafusion::physical_plan::collect;

    #[test]
    fn only_commit_files_of_twenty_digits_have_a_version() {
        assert_eq!(commit_version("00000000000000000012.json"), Some(12));
        assert_eq!(
            commit_version("00000000000000000012.checkpoint.parquet"),
            None
        );
        assert_eq!(commit_version("00000000000000000012.crc"), None);
        assert_eq!(commit_version("_last_checkpoint"), None);
        assert_eq!(commit_version("12.json"), None);
    }

    #[test]
    fn a_listing_counts_newer_commits_and_finds_the_held_one() {
        let at = DateTime::from_timestamp(1_764_000_000, 0).unwrap();
        let objects = [
            ("00000000000000000000.json", at, 10),
            ("00000000000000000001.json", at, 11),
            ("00000000000000000001.checkpoint.parquet", at, 99),
            ("00000000000000000002.json", at, 12),
            ("_last_checkpoint", at, 5),
        ];
        let listing = read_listing(objects.into_iter(), 1);
        assert_eq!(
            listing,
            LogListing {
                entries: 5,
                newer_commits: 1,
                current_commit: Some((at, 11)),
            }
        );
    }

    fn commit_removing(dir: &std::path::Path, version: u64, path: &str) {
        let line = format!(
            r#"{{"remove":{{"path":"{path}","deletionTimestamp":1764000000001,"dataChange":true}}}}"#
        );
        std::fs::write(
            dir.join("_delta_log").join(format!("{version:020}.json")),
            line + "\n",
        )
        .unwrap();
    }

    fn scan_and_run(provider: &WorkbenchDeltaScan, state: &SessionState) -> usize {
        runtime().block_on(async {
            let plan = provider.scan(state, None, &[], None).await.unwrap();
            collect(plan, state.task_ctx())
                .await
                .unwrap()
                .iter()
                .map(RecordBatch::num_rows)
                .sum()
        })
    }

    #[test]
    fn scans_reuse_footers_and_the_snapshot_until_a_commit_lands() {
        let table = write_table(&[
            TestFile::range(1, 10),
            TestFile::range(11, 10),
            TestFile::range(21, 10),
        ]);
        let opened = runtime()
            .block_on(open(&table.uri(), &OpenOptions::default()))
            .unwrap();
        let provider = opened.provider;
        let state = SessionStateBuilder::new().with_default_features().build();
        let scope = cache_scope(state.session_id());
        provider.bind(Arc::clone(&scope));

        assert_eq!(scan_and_run(&provider, &state), 30);
        let first = scope.metadata().rows();
        assert_eq!(first.len(), 3);
        assert!(
            first
                .iter()
                .all(|r| r.cached && r.size_bytes > 0 && r.misses == 1)
        );
        assert!(first.iter().all(|r| r.path.ends_with(".parquet")));

        assert_eq!(scan_and_run(&provider, &state), 30);
        let second = scope.metadata().rows();
        assert!(
            second.iter().all(|r| r.hits == 1 && r.misses == 1),
            "{second:?}"
        );
        let statistics = provider.statistics_row();
        assert_eq!((statistics.version, statistics.entries), (0, 3));
        assert_eq!((statistics.misses, statistics.hits), (1, 2));
        assert!(statistics.size_bytes > 0);
        let listing = provider.listing_row();
        assert_eq!(
            (listing.misses, listing.hits, listing.new_commits),
            (2, 0, 0)
        );
        assert_eq!(listing.entries, 1);

        commit_removing(&table.dir, 1, "part-00000.parquet");
        assert_eq!(scan_and_run(&provider, &state), 20);
        let statistics = provider.statistics_row();
        assert_eq!((statistics.version, statistics.entries), (1, 2));
        assert_eq!((statistics.misses, statistics.hits), (2, 2));
        let listing = provider.listing_row();
        assert_eq!(
            (listing.misses, listing.entries, listing.new_commits),
            (3, 2, 1)
        );
        let shown: Vec<String> = scope
            .tables()
            .iter()
            .map(|t| t.statistics_row().table)
            .collect();
        assert_eq!(shown, [table.uri()]);
    }

    #[test]
    fn a_listing_within_the_ttl_stands_and_a_pinned_table_never_lists() {
        let table = write_table(&[TestFile::range(1, 10)]);
        let opened = runtime()
            .block_on(open(&table.uri(), &OpenOptions::default()))
            .unwrap();
        let provider = opened.provider;
        let id = format!("ttl-{}", std::process::id());
        crate::cache::configure(
            &id,
            crate::cache::Settings {
                listing_ttl: Some(std::time::Duration::from_secs(3600)),
                ..crate::cache::Settings::default()
            },
        );
        provider.bind(cache_scope(&id));
        runtime().block_on(provider.refresh()).unwrap();
        commit_removing(&table.dir, 1, "part-00000.parquet");
        let version = runtime().block_on(provider.refresh()).unwrap().version;
        assert_eq!(version, 0, "the listing stands for an hour");
        let listing = provider.listing_row();
        assert_eq!((listing.misses, listing.hits), (1, 1));

        let pinned = runtime()
            .block_on(open(
                &table.uri(),
                &OpenOptions {
                    version: Some(0),
                    ..OpenOptions::default()
                },
            ))
            .unwrap()
            .provider;
        runtime().block_on(pinned.refresh()).unwrap();
        let listing = pinned.listing_row();
        assert_eq!((listing.misses, listing.hits), (0, 1));
    }
}

//! `table_changes(table, start [, end])`: a Delta table's change data feed in SQL.
//!
//! As Databricks users know it: `table` names a Delta table registered in the session (or is
//! the path or URL of one), `start` and `end` (inclusive; the newest version when absent) are
//! versions or timestamps. The rows are the table's columns plus `_change_type` (`insert`,
//! `delete`, `update_preimage`, `update_postimage`), `_commit_version` and
//! `_commit_timestamp`, read by deltalake-core's change data feed scan as a stream.
//!
//! Two things FFI changes. The function is called while the host plans, outside this
//! library's tokio runtime, so the log is read with `block_on` on the extension's runtime.
//! And deltalake's scan reads the data files through an object store it names with its own
//! URL (`delta-rs://...`), which must be registered in the runtime environment the plan
//! executes with; across FFI that environment is a fresh one on this side, so
//! [`ChangesExec`] registers the store when a partition is executed.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deltalake_core::ObjectStore;
use deltalake_core::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use deltalake_core::datafusion::catalog::{
    Session, TableFunctionArgs, TableFunctionImpl, TableProvider,
};
use deltalake_core::datafusion::common::tree_node::TreeNodeRecursion;
use deltalake_core::datafusion::common::{
    DataFusionError, Result as DfResult, ScalarValue, plan_datafusion_err, plan_err,
};
use deltalake_core::datafusion::datasource::TableType;
use deltalake_core::datafusion::execution::object_store::ObjectStoreUrl;
use deltalake_core::datafusion::execution::{SendableRecordBatchStream, TaskContext};
use deltalake_core::datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use deltalake_core::datafusion::physical_expr::PhysicalExpr;
use deltalake_core::datafusion::physical_plan::execution_plan::{
    ChildrenPropertiesMode, ReplaceChildrenOptions,
};
use deltalake_core::datafusion::physical_plan::metrics::MetricsSet;
use deltalake_core::datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties,
};
use deltalake_core::delta_datafusion::DeltaCdfTableProvider;
use deltalake_core::table::builder::parse_table_uri;
use deltalake_core::table::config::TablePropertiesExt as _;
use deltalake_core::{DeltaTable, DeltaTableBuilder};
use object_store::ObjectStoreExt as _;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use super::provider::{
    PyDeltaProvider, WorkbenchDeltaScan, commit_time, local_state, table_function_capsule,
};
use super::runtime::{InRuntime, runtime};

/// Where a change range starts or ends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Edge {
    Version(u64),
    Time(DateTime<Utc>),
}

impl fmt::Display for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Edge::Version(v) => write!(f, "{v}"),
            Edge::Time(t) => write!(f, "'{}'", t.to_rfc3339()),
        }
    }
}

type Tables = Arc<Mutex<HashMap<String, Arc<WorkbenchDeltaScan>>>>;

/// The `table_changes` table function of one session (Python:
/// `workbench._ext.TableChanges`); the session tells it its Delta tables by name.
#[pyclass(name = "TableChanges", module = "workbench._ext", frozen)]
pub struct PyTableChanges {
    tables: Tables,
}

#[pymethods]
impl PyTableChanges {
    #[new]
    fn new() -> Self {
        Self {
            tables: Arc::default(),
        }
    }

    /// `table_changes('name', ...)` reads the table `provider` reads.
    fn register(&self, name: String, provider: PyRef<'_, PyDeltaProvider>) {
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        tables.insert(name, provider.scan());
    }

    /// `name` is no Delta table any more.
    fn forget(&self, name: &str) {
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        tables.remove(name);
    }

    fn __datafusion_table_function__<'py>(
        &self,
        py: Python<'py>,
        session: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let function = TableChangesFn {
            tables: Arc::clone(&self.tables),
        };
        table_function_capsule(py, session, Arc::new(function))
    }
}

#[derive(Debug)]
struct TableChangesFn {
    tables: Tables,
}

const USAGE: &str = "table_changes('table', start [, end]): the name of a Delta table of this \
                     session (or its path), and versions (0, 1, ...) or timestamps \
                     ('2026-11-25T10:00:00Z')";

/// The constant an argument is, if it is one.
fn constant(expr: &Expr) -> Option<ScalarValue> {
    match expr {
        Expr::Literal(value, _) => Some(value.clone()),
        Expr::Cast(cast) => constant(&cast.expr)?.cast_to(cast.field.data_type()).ok(),
        Expr::Negative(inner) => constant(inner)?.arithmetic_negate().ok(),
        _ => None,
    }
}

fn edge(expr: &Expr, which: &str) -> DfResult<Edge> {
    let value = constant(expr)
        .filter(|v| !v.is_null())
        .ok_or_else(|| plan_datafusion_err!("the {which} of {USAGE} is a constant; got {expr}"))?;
    if value.data_type().is_floating() || matches!(value.data_type(), DataType::Decimal128(..)) {
        return plan_err!("the {which} version {value} is not a whole number; {USAGE}");
    }
    if value.data_type().is_integer() {
        let version = value.cast_to(&DataType::Int64)?;
        return match version {
            ScalarValue::Int64(Some(v)) if v >= 0 => Ok(Edge::Version(v as u64)),
            _ => plan_err!("the {which} version {value} is negative; versions start at 0"),
        };
    }
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
    match value.cast_to(&utc) {
        Ok(ScalarValue::TimestampMicrosecond(Some(micros), _)) => {
            DateTime::from_timestamp_micros(micros)
                .map(Edge::Time)
                .ok_or_else(|| plan_datafusion_err!("the {which} {value} is out of range"))
        }
        _ => plan_err!("the {which} {value} is neither a version nor a timestamp; {USAGE}"),
    }
}

impl TableFunctionImpl for TableChangesFn {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if !(2..=3).contains(&exprs.len()) {
            return plan_err!("{USAGE}; got {} arguments", exprs.len());
        }
        let target = match constant(&exprs[0]) {
            Some(ScalarValue::Utf8(Some(t)) | ScalarValue::Utf8View(Some(t))) => t,
            _ => return plan_err!("the table of {USAGE} is a string; got {}", exprs[0]),
        };
        let start = edge(&exprs[1], "start")?;
        let end = exprs.get(2).map(|e| edge(e, "end")).transpose()?;
        let registered = {
            let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
            tables.get(&target).cloned()
        };
        let uri = match &registered {
            Some(scan) => scan.uri().to_string(),
            None if target.contains('/') || target.contains("://") => target.clone(),
            None => {
                let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
                let mut known: Vec<&String> = tables.keys().collect();
                known.sort();
                return plan_err!(
                    "table_changes: no Delta table named '{target}' in this session \
                     (Delta tables: {}); register it, or give its path",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known
                            .iter()
                            .map(|k| k.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                );
            }
        };
        let call = format!(
            "table_changes('{target}', {start}{})",
            end.map(|e| format!(", {e}")).unwrap_or_default()
        );
        let provider = runtime()
            .block_on(open_changes(&uri, start, end))
            .map_err(|e| DataFusionError::Plan(format!("{call}: {e}")))?;
        Ok(Arc::new(provider))
    }
}

/// The change data feed of the table at `uri` from `start` to `end`, checked first.
async fn open_changes(
    uri: &str,
    start: Edge,
    end: Option<Edge>,
) -> Result<ChangesProvider, String> {
    let url = parse_table_uri(uri).map_err(|e| format!("{uri} is not a Delta table: {e}"))?;
    let table = DeltaTableBuilder::from_url(url)
        .map_err(|e| format!("{uri}: {e}"))?
        .load()
        .await
        .map_err(|e| format!("{uri}: {e}"))?;
    let latest = table.version().unwrap_or(0);
    for (which, edge) in [("start", Some(start)), ("end", end)] {
        if let Some(Edge::Version(v)) = edge
            && v > latest
        {
            return Err(format!(
                "the {which} version {v} is past the newest version of the table, {latest}"
            ));
        }
    }
    if let (Edge::Version(s), Some(Edge::Version(e))) = (start, end)
        && s > e
    {
        return Err(format!(
            "the start version {s} is after the end version {e}"
        ));
    }
    if let (Edge::Time(s), Some(Edge::Time(e))) = (start, end)
        && s > e
    {
        return Err(format!(
            "the start {} is after the end {}",
            s.to_rfc3339(),
            e.to_rfc3339()
        ));
    }
    // Timestamps against the commits' times. A commit's file time and the timestamp in its
    // commitInfo differ by milliseconds, either way, so these checks allow a second: they
    // are for ranges clearly out of order; deltalake decides the edge itself.
    let time_of = |v: u64| commit_time(&table, v);
    let ms = |t: DateTime<Utc>| t.timestamp_millis() - 1000;
    if let Edge::Time(t) = start {
        let newest = time_of(latest).await?;
        if ms(t) > newest.timestamp_millis() {
            return Err(format!(
                "the start {} is after the newest commit (version {latest}, at {})",
                t.to_rfc3339(),
                newest.to_rfc3339()
            ));
        }
    }
    match (start, end) {
        (Edge::Version(s), Some(Edge::Time(e))) if ms(time_of(s).await?) > e.timestamp_millis() => {
            return Err(format!(
                "the start version {s} was committed after the end {}",
                e.to_rfc3339()
            ));
        }
        (Edge::Time(s), Some(Edge::Version(e))) if ms(s) > time_of(e).await?.timestamp_millis() => {
            return Err(format!(
                "the start {} is after the end version {e} was committed",
                s.to_rfc3339()
            ));
        }
        _ => {}
    }
    let enabled = table
        .snapshot()
        .map_err(|e| format!("{uri}: {e}"))?
        .table_config()
        .enable_change_data_feed();
    if !enabled {
        return Err(format!(
            "change data feed is not enabled on {uri} at its newest version {latest}; turn it \
             on with the table property delta.enableChangeDataFeed = true (deltalake: \
             DeltaTable(uri).alter.set_table_properties({{'delta.enableChangeDataFeed': \
             'true'}})), and read the changes committed after that"
        ));
    }
    let store = table.log_store();
    let (url, object_store) = (store.object_store_url(), store.object_store(None));
    let mut builder = table.clone().scan_cdf();
    builder = match start {
        Edge::Version(v) => builder.with_starting_version(v),
        Edge::Time(t) => builder.with_starting_timestamp(t),
    };
    builder = match end {
        Some(Edge::Version(v)) => builder.with_ending_version(v),
        Some(Edge::Time(t)) => builder.with_ending_timestamp(t),
        None => builder,
    };
    let inner = DeltaCdfTableProvider::try_new(builder).map_err(|e| e.to_string())?;
    Ok(ChangesProvider {
        inner,
        url,
        store: object_store,
        table,
    })
}

/// The first version of the newest run of commits with the change data feed on (read from
/// the commit files' metaData actions), for an error that says where to start.
async fn enabled_since(table: &DeltaTable) -> Option<u64> {
    let latest = table.version()?;
    let store = table.log_store();
    let objects = store.object_store(None);
    let mut since = None;
    for version in 0..=latest {
        let path = store.log_path().clone().join(format!("{version:020}.json"));
        let Ok(found) = objects.get(&path).await else {
            continue;
        };
        let Ok(bytes) = found.bytes().await else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        for line in text.lines().filter(|l| l.contains("\"metaData\"")) {
            let on = line.contains("\"delta.enableChangeDataFeed\":\"true\"");
            since = match (on, since) {
                (true, None) => Some(version),
                (true, kept) => kept,
                (false, _) => None,
            };
        }
    }
    since
}

/// deltalake's change data feed provider, planned in the extension's runtime against a
/// session that has its object store.
struct ChangesProvider {
    inner: DeltaCdfTableProvider,
    url: ObjectStoreUrl,
    store: Arc<dyn ObjectStore>,
    table: DeltaTable,
}

impl fmt::Debug for ChangesProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangesProvider")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TableProvider for ChangesProvider {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
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
        let local = local_state(session);
        local
            .runtime_env()
            .register_object_store(self.url.as_ref(), Arc::clone(&self.store));
        let plan = InRuntime {
            handle: runtime().handle().clone(),
            future: Box::pin(async {
                match self.inner.scan(&local, projection, filters, limit).await {
                    Err(e)
                        if e.to_string()
                            .contains("greater than latest commit timestamp") =>
                    {
                        Err(DataFusionError::Plan(format!(
                            "the range starts after the newest commit of the table ({e})"
                        )))
                    }
                    Err(e) if e.to_string().contains("does not have change data enabled") => {
                        let since = enabled_since(&self.table).await;
                        Err(DataFusionError::Plan(match since {
                            Some(v) => format!(
                                "the change data feed of this table was turned on at version \
                                 {v}: start at {v} or later ({e})"
                            ),
                            None => format!("the range reads versions without change data ({e})"),
                        }))
                    }
                    other => other,
                }
            }),
        }
        .await?;
        Ok(Arc::new(ChangesExec {
            input: plan,
            url: self.url.clone(),
            store: Arc::clone(&self.store),
        }))
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Filters run above the scan (FFI table functions do not push them down anyway).
        Ok(vec![
            TableProviderFilterPushDown::Unsupported;
            filters.len()
        ])
    }
}

/// The root of a change data feed plan: registers deltalake's object store in the
/// runtime environment a partition executes with, then runs the plan below, which the host
/// does not see (its metrics are the plan's root's).
#[derive(Debug, Clone)]
pub struct ChangesExec {
    input: Arc<dyn ExecutionPlan>,
    url: ObjectStoreUrl,
    store: Arc<dyn ObjectStore>,
}

impl DisplayAs for ChangesExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeltaChangesExec")
    }
}

impl ExecutionPlan for ChangesExec {
    fn name(&self) -> &str {
        "DeltaChangesExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    // A leaf to the host: its optimizer rewrites children through FFI, and a child run
    // through FFI would get a fresh runtime environment without the store again.
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if !children.is_empty() {
            return plan_err!("DeltaChangesExec has no children, got {}", children.len());
        }
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        context
            .runtime_env()
            .register_object_store(self.url.as_ref(), Arc::clone(&self.store));
        self.input.execute(partition, context)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        self.input.metrics()
    }
}

//! `DeltaProvider`: a Delta table at one version, as an FFI table provider and a file index.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion_ffi::proto::logical_extension_codec::FFI_LogicalExtensionCodec;
use datafusion_ffi::table_provider::FFI_TableProvider;
use deltalake_core::DeltaTableBuilder;
use deltalake_core::arrow::array::RecordBatchReader;
use deltalake_core::arrow::datatypes::SchemaRef;
use deltalake_core::arrow::ffi_stream::FFI_ArrowArrayStream;
use deltalake_core::arrow::record_batch::{RecordBatch, RecordBatchIterator};
use deltalake_core::datafusion::catalog::{Session, TableProvider};
use deltalake_core::datafusion::common::{Result as DfResult, Statistics};
use deltalake_core::datafusion::datasource::TableType;
use deltalake_core::datafusion::execution::session_state::SessionStateBuilder;
use deltalake_core::datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use deltalake_core::datafusion::physical_plan::ExecutionPlan;
use deltalake_core::delta_datafusion::{DeltaScanConfig, DeltaScanNext};
use deltalake_core::kernel::EagerSnapshot;
use deltalake_core::table::builder::parse_table_uri;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use super::exec::{DeltaTableExec, ScanFacts};
use super::prune::{prune, verdicts_batch};
use super::runtime::{InRuntime, runtime};

create_exception!(
    _ext,
    DeltaError,
    PyException,
    "A Delta table could not be opened or read."
);

/// `DeltaScan`, with `scan` polled inside the extension's runtime (see the module docs);
/// its plans are wrapped in a [`DeltaTableExec`] that reports the table's file counts.
#[derive(Debug)]
pub struct WorkbenchDeltaScan {
    inner: DeltaScanNext,
    facts: ScanFacts,
}

#[async_trait]
impl TableProvider for WorkbenchDeltaScan {
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
        // Plan against a local session built from the host's configuration: through the
        // FFI session, physical expressions would be created by the host and come back
        // opaque, so pruning could not read them and the Parquet row filter would fail.
        let local = SessionStateBuilder::new()
            .with_config(session.config().clone())
            .with_runtime_env(Arc::clone(session.runtime_env()))
            .with_default_features()
            .build();
        let plan: Arc<dyn ExecutionPlan> = InRuntime {
            handle: runtime().handle().clone(),
            future: self.inner.scan(&local, projection, filters, limit),
        }
        .await?;
        Ok(Arc::new(DeltaTableExec::new(plan, self.facts.clone())))
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.inner.statistics()
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

/// A table opened at one version: its snapshot and the provider over it.
pub struct OpenedTable {
    pub uri: String,
    pub version: u64,
    pub snapshot: EagerSnapshot,
    pub partition_columns: Vec<String>,
    pub provider: Arc<WorkbenchDeltaScan>,
}

/// Open `uri` (a path or URL) at the version `options` name, refusing unreadable features.
pub async fn open(uri: &str, options: &OpenOptions) -> Result<OpenedTable, String> {
    let url = parse_table_uri(uri).map_err(|e| format!("{uri} is not a Delta table: {e}"))?;
    let mut builder = DeltaTableBuilder::from_url(url)
        .map_err(|e| format!("{uri}: {e}"))?
        .with_storage_options(options.storage_options.clone());
    if let Some(version) = options.version {
        builder = builder.with_version(version);
    }
    if let Some(timestamp) = &options.timestamp {
        builder = builder.with_datestring(timestamp).map_err(|e| {
            format!("timestamp {timestamp:?}: {e}; use RFC 3339, e.g. 2026-11-25T10:00:00Z")
        })?;
    }
    let table = builder.load().await.map_err(|e| format!("{uri}: {e}"))?;
    let state = table.snapshot().map_err(|e| format!("{uri}: {e}"))?;
    let snapshot = state.snapshot().clone();
    let config = DeltaScanConfig {
        file_column_name: options.file_column_name.clone(),
        wrap_partition_values: options.wrap_partition_values,
        enable_parquet_pushdown: options.enable_parquet_pushdown,
        schema_force_view_types: options.schema_force_view_types,
        schema: None,
    };
    let mut scan = DeltaScanNext::new(snapshot.clone(), config).map_err(|e| {
        format!(
            "{uri} (version {}) cannot be read by this workbench: {e}",
            state.version()
        )
    })?;
    if let Some(files) = &options.files {
        scan = scan.with_file_paths(files.clone());
    }
    let facts = ScanFacts {
        table: options.name.clone().unwrap_or_else(|| uri.to_string()),
        version: state.version(),
        files_total: snapshot.log_data().num_files(),
    };
    Ok(OpenedTable {
        uri: uri.to_string(),
        version: state.version(),
        partition_columns: state.metadata().partition_columns().to_vec(),
        snapshot,
        provider: Arc::new(WorkbenchDeltaScan { inner: scan, facts }),
    })
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

/// Arrow batches handed to Python through the Arrow C stream protocol.
#[pyclass(module = "workbench._ext")]
pub struct ArrowBatches {
    batches: Option<(SchemaRef, Vec<RecordBatch>)>,
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

    /// The newest version of the table at `uri` (lists the log, reads no data).
    #[staticmethod]
    #[pyo3(signature = (uri, storage_options=None))]
    fn latest_version(
        py: Python<'_>,
        uri: String,
        storage_options: Option<HashMap<String, String>>,
    ) -> PyResult<u64> {
        let options = storage_options.unwrap_or_default();
        py.detach(|| runtime().block_on(latest_version(&uri, &options)))
            .map_err(delta_error)
    }

    #[getter]
    fn version(&self) -> u64 {
        self.table.version
    }

    #[getter]
    fn uri(&self) -> String {
        self.table.uri.clone()
    }

    #[getter]
    fn partition_columns(&self) -> Vec<String> {
        self.table.partition_columns.clone()
    }

    /// One row per file of this version: path, size, records, partition values, statistics.
    fn file_index(&self) -> PyResult<ArrowBatches> {
        let batch = self
            .table
            .snapshot
            .add_actions_table(true)
            .map_err(|e| delta_error(format!("{}: {e}", self.table.uri)))?;
        Ok(ArrowBatches {
            batches: Some((batch.schema(), vec![batch])),
        })
    }

    /// Which files `predicate` (SQL over the table's columns) skips, reading only the log:
    /// one row per file (path, size_bytes, num_records, kept, reason) and the predicate's
    /// `AND` terms as (SQL, decidable from statistics).
    fn prune(
        &self,
        py: Python<'_>,
        predicate: String,
    ) -> PyResult<(ArrowBatches, Vec<(String, bool)>)> {
        let pruning = py
            .detach(|| prune(&self.table.snapshot, &predicate))
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
        ))
    }

    fn __datafusion_table_provider__<'py>(
        &self,
        py: Python<'py>,
        session: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
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

/// The host's logical codec: from a SessionContext, or the codec capsule itself.
fn logical_codec(session: Bound<'_, PyAny>) -> PyResult<FFI_LogicalExtensionCodec> {
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

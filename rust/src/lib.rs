//! `workbench._ext`: DataFusion FFI components for DataFusion Workbench.
//!
//! Every component crosses into the Python `datafusion` package as an FFI
//! capsule. The ABI is only stable within one DataFusion major version, so the
//! module exports the major it was built against (`DATAFUSION_MAJOR`) and the
//! Python side refuses to register anything on a mismatch.
//!
//! The functions of `udf/` climb the UDF ladder: scalar (`stable_id`, `prefixed_hash64`),
//! aggregate (`stable_id_agg`), window (`sessionize`) and table (`wb_parquet_metadata`).
//!
//! `DeltaProvider` (`delta/`) is a Delta table opened at one version by `deltalake-core`,
//! handed to DataFusion as an FFI table provider with filter pushdown on.
//!
//! `cache/` holds the caches of the scans the extension provides (Parquet footers, Delta
//! snapshots, log listings), one scope per host session, and the table functions showing
//! them: `wb_metadata_cache()`, `wb_statistics_cache()`, `wb_list_files_cache()`.
//!
//! `engine/` runs queries on an Apache Ballista 55 cluster: a client that ships a logical
//! plan made by the Python session, an in-process standalone cluster, and the scheduler and
//! executor processes of `python -m workbench.cluster`, all knowing the functions of `udf/`.
//!
//! `content_hash` (`hashing.rs`) is a plain function, not an FFI component: it
//! reads an Arrow C stream, which is stable across DataFusion versions.

use pyo3::prelude::*;

pub mod cache;
pub mod canonical;
#[cfg(test)]
mod canonical_golden;
pub mod delta;
pub mod engine;
pub mod hashing;
pub mod udf;

/// Names of the scalar UDFs this build provides, in registration order.
pub const SCALAR_UDFS: [&str; 2] = [udf::stable_id::NAME, udf::prefixed_hash64::NAME];
/// Names of the aggregate UDFs this build provides.
pub const AGGREGATE_UDFS: [&str; 1] = [udf::stable_id_agg::NAME];
/// Names of the window UDFs this build provides.
pub const WINDOW_UDFS: [&str; 1] = [udf::sessionize::NAME];
/// Names of the table functions every session gets from this build.
pub const TABLE_FUNCTIONS: [&str; 4] = [
    udf::parquet_metadata::NAME,
    cache::functions::METADATA,
    cache::functions::STATISTICS,
    cache::functions::LIST_FILES,
];

#[pymodule]
fn _ext(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("DATAFUSION_MAJOR", datafusion_ffi::version())?;
    m.add("EXTENSION_VERSION", env!("CARGO_PKG_VERSION"))?;
    m.add("BALLISTA_VERSION", engine::BALLISTA_VERSION)?;
    m.add("SCALAR_UDFS", SCALAR_UDFS.to_vec())?;
    m.add("AGGREGATE_UDFS", AGGREGATE_UDFS.to_vec())?;
    m.add("WINDOW_UDFS", WINDOW_UDFS.to_vec())?;
    m.add("TABLE_FUNCTIONS", TABLE_FUNCTIONS.to_vec())?;
    m.add_class::<udf::stable_id::StableId>()?;
    m.add_class::<udf::prefixed_hash64::PrefixedHash64>()?;
    m.add_class::<udf::stable_id_agg::StableIdAgg>()?;
    m.add_class::<udf::sessionize::Sessionize>()?;
    m.add_class::<udf::parquet_metadata::ParquetMetadata>()?;
    m.add_class::<cache::functions::PyMetadataCache>()?;
    m.add_class::<cache::functions::PyStatisticsCache>()?;
    m.add_class::<cache::functions::PyListFilesCache>()?;
    m.add_function(wrap_pyfunction!(cache::configure_caches, m)?)?;
    m.add_function(wrap_pyfunction!(hashing::content_hash, m)?)?;
    m.add_class::<delta::provider::PyDeltaProvider>()?;
    m.add_class::<delta::provider::ArrowBatches>()?;
    m.add_class::<delta::cdf::PyTableChanges>()?;
    m.add_class::<engine::client::ClusterClient>()?;
    m.add_class::<engine::client::ClusterQuery>()?;
    m.add_function(wrap_pyfunction!(engine::process::run_scheduler, m)?)?;
    m.add_function(wrap_pyfunction!(engine::process::run_executor, m)?)?;
    m.add("ClusterError", m.py().get_type::<engine::ClusterError>())?;
    m.add(
        "DeltaError",
        m.py().get_type::<delta::provider::DeltaError>(),
    )?;
    Ok(())
}

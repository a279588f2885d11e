//! `wb_metadata_cache()`, `wb_statistics_cache()`, `wb_list_files_cache()`: a session's
//! caches as tables, read when the query is planned.
//!
//! Each function shows, and keeps alive, the scope of the session it was registered in:
//! the one named by the id of the Python `SessionContext` handed to its capsule. Not the id
//! of the session state that crosses FFI at call time: `SET datafusion.runtime.*` rebuilds
//! the host's state (`SessionContext::set_runtime_variable` in DataFusion 55), and the
//! rebuilt state has a new id while the context keeps its own.

use std::sync::Arc;
use std::time::SystemTime;

use datafusion_common::{Result, plan_err};
use deltalake_core::arrow::record_batch::RecordBatch;
use deltalake_core::datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use deltalake_core::datafusion::datasource::MemTable;
use pyo3::types::PyCapsule;
use pyo3::{Bound, PyAny, PyResult, Python, pyclass, pymethods};

use super::{CacheScope, metadata, scope, session_id_of, tables};
use crate::delta::provider::table_function_capsule;

pub const METADATA: &str = "wb_metadata_cache";
pub const STATISTICS: &str = "wb_statistics_cache";
pub const LIST_FILES: &str = "wb_list_files_cache";

/// Which cache a function shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Metadata,
    Statistics,
    ListFiles,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Metadata => METADATA,
            Self::Statistics => STATISTICS,
            Self::ListFiles => LIST_FILES,
        }
    }

    /// The cache's rows in `scope`, now.
    pub fn batch(self, scope: &CacheScope) -> Result<RecordBatch> {
        let now = SystemTime::now();
        match self {
            Self::Metadata => metadata::batch(&scope.metadata().rows(), now),
            Self::Statistics => {
                let rows: Vec<_> = scope.tables().iter().map(|t| t.statistics_row()).collect();
                tables::statistics_batch(&rows, now)
            }
            Self::ListFiles => {
                let rows: Vec<_> = scope.tables().iter().map(|t| t.listing_row()).collect();
                tables::listing_batch(&rows, now)
            }
        }
    }
}

#[derive(Debug)]
pub struct CacheFunction {
    kind: Kind,
    /// The scope of the session the function was registered in.
    scope: Arc<CacheScope>,
}

impl CacheFunction {
    pub fn new(kind: Kind, scope: Arc<CacheScope>) -> Self {
        Self { kind, scope }
    }
}

impl TableFunctionImpl for CacheFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let name = self.kind.name();
        if !args.exprs().is_empty() {
            return plan_err!("{name}() takes no arguments, got {}", args.exprs().len());
        }
        let batch = self.kind.batch(&self.scope)?;
        Ok(Arc::new(MemTable::try_new(
            batch.schema(),
            vec![vec![batch]],
        )?))
    }
}

fn capsule<'py>(
    py: Python<'py>,
    kind: Kind,
    session: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyCapsule>> {
    let scope = scope(&session_id_of(&session)?);
    table_function_capsule(py, session, Arc::new(CacheFunction::new(kind, scope)))
}

/// A `#[pyclass]` whose capsule is the table function over one of the caches.
macro_rules! cache_function {
    ($rust:ident, $python:literal, $kind:expr, $doc:literal) => {
        #[doc = $doc]
        #[pyclass(name = $python, module = "workbench._ext", frozen)]
        #[derive(Default)]
        pub struct $rust;

        #[pymethods]
        impl $rust {
            #[new]
            fn new() -> Self {
                Self
            }

            fn __datafusion_table_function__<'py>(
                &self,
                py: Python<'py>,
                session: Bound<'py, PyAny>,
            ) -> PyResult<Bound<'py, PyCapsule>> {
                capsule(py, $kind, session)
            }
        }
    };
}

cache_function!(
    PyMetadataCache,
    "MetadataCache",
    Kind::Metadata,
    "Python handle: `datafusion.udtf(MetadataCache(), \"wb_metadata_cache\")`."
);
cache_function!(
    PyStatisticsCache,
    "StatisticsCache",
    Kind::Statistics,
    "Python handle: `datafusion.udtf(StatisticsCache(), \"wb_statistics_cache\")`."
);
cache_function!(
    PyListFilesCache,
    "ListFilesCache",
    Kind::ListFiles,
    "Python handle: `datafusion.udtf(ListFilesCache(), \"wb_list_files_cache\")`."
);

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake_core::datafusion::logical_expr::lit;
    use deltalake_core::datafusion::prelude::SessionContext;

    #[test]
    fn a_function_reads_the_scope_it_was_registered_with() {
        let ctx = SessionContext::new();
        let state = ctx.state();
        let registered = scope("registered-with");
        let function = CacheFunction::new(Kind::Metadata, Arc::clone(&registered));
        let provider = function
            .call_with_args(TableFunctionArgs::new(&[], &state))
            .unwrap();
        assert_eq!(provider.schema(), metadata::schema());
        assert_ne!(state.session_id(), registered.session_id());
    }

    #[test]
    fn the_functions_take_no_arguments() {
        let ctx = SessionContext::new();
        let state = ctx.state();
        let function = CacheFunction::new(Kind::Statistics, scope(state.session_id()));
        let err = function
            .call_with_args(TableFunctionArgs::new(&[lit(1)], &state))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("wb_statistics_cache() takes no arguments"),
            "{err}"
        );
    }

    #[test]
    fn each_kind_has_its_schema() {
        let scope = scope("schemas");
        assert_eq!(
            Kind::Metadata.batch(&scope).unwrap().schema(),
            metadata::schema()
        );
        assert_eq!(
            Kind::Statistics.batch(&scope).unwrap().schema(),
            tables::statistics_schema()
        );
        assert_eq!(
            Kind::ListFiles.batch(&scope).unwrap().schema(),
            tables::listing_schema()
        );
    }
}

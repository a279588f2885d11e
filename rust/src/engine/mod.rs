//! Scale-out on Apache Ballista 55 (issue 17).
//!
//! The Python session stays the catalog: it plans each query and hands its logical plan
//! as protobuf bytes to a [`client::ClusterClient`], which decodes it (table scans travel
//! inside the plan, functions by name) and submits it to a Ballista scheduler as a job.
//! The scheduler and executors are started from this library ([`process`], or in process
//! for `ballista:standalone`), so they know the workbench's Rust functions.

pub mod client;
pub mod process;

use std::sync::Arc;

use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::utils::default_session_builder;
use deltalake_core::datafusion::execution::FunctionRegistry;
use deltalake_core::datafusion::execution::session_state::SessionState;
use deltalake_core::datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};
use deltalake_core::datafusion::prelude::SessionConfig;
use pyo3::create_exception;
use pyo3::exceptions::PyException;

use crate::udf::{prefixed_hash64, sessionize, stable_id, stable_id_agg};

/// The Ballista version this build speaks (the scheduler's major must be the same).
pub const BALLISTA_VERSION: &str = ballista_core::BALLISTA_VERSION;

create_exception!(
    _ext,
    ClusterError,
    PyException,
    "A Ballista cluster could not be reached, or refused or failed a query."
);

/// Ballista's session for `config` with the workbench's scalar, aggregate and window
/// functions, under the names the Python session registers them by. Schedulers plan with
/// it; executors and clients take their function registry from it.
pub fn workbench_session_state(
    config: SessionConfig,
) -> deltalake_core::datafusion::common::Result<SessionState> {
    let mut state = default_session_builder(config)?;
    state.register_udf(Arc::new(ScalarUDF::from(stable_id::StableIdUdf::default())))?;
    state.register_udf(Arc::new(ScalarUDF::from(
        prefixed_hash64::PrefixedHash64Udf::default(),
    )))?;
    state.register_udaf(Arc::new(AggregateUDF::from(
        stable_id_agg::StableIdAggUdaf::default(),
    )))?;
    state.register_udwf(Arc::new(WindowUDF::from(
        sessionize::SessionizeUdwf::default(),
    )))?;
    Ok(state)
}

/// The functions an executor runs tasks with: DataFusion's and the workbench's.
pub fn workbench_functions() -> deltalake_core::datafusion::common::Result<BallistaFunctionRegistry>
{
    use ballista_core::extension::SessionConfigExt;
    let state = workbench_session_state(SessionConfig::new_with_ballista())?;
    Ok(BallistaFunctionRegistry::from(&state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballista_core::extension::SessionConfigExt;

    #[test]
    fn the_session_knows_the_workbench_functions_and_datafusions() {
        let state = workbench_session_state(SessionConfig::new_with_ballista()).unwrap();
        for name in crate::SCALAR_UDFS.iter().chain(["lower", "concat"].iter()) {
            assert!(state.scalar_functions().contains_key(*name), "{name}");
        }
        for name in crate::AGGREGATE_UDFS.iter().chain(["sum"].iter()) {
            assert!(state.aggregate_functions().contains_key(*name), "{name}");
        }
        for name in crate::WINDOW_UDFS.iter().chain(["row_number"].iter()) {
            assert!(state.window_functions().contains_key(*name), "{name}");
        }
        let registry = workbench_functions().unwrap();
        assert!(registry.scalar_functions.contains_key("stable_id"));
        assert!(registry.window_functions.contains_key("sessionize"));
    }
}

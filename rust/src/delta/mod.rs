//! Delta Lake tables for the Python `datafusion` SessionContext, over FFI.
//!
//! `deltalake-core`'s `DeltaScan` is the table provider: it plans from a snapshot of the
//! Delta log, so only the files of that version are read (never a directory listing), and
//! partition and file-statistics pruning happen before any Parquet is opened; Parquet
//! row-group and page pruning follow in DataFusion's scan. The provider crosses into Python
//! with filter pushdown on (deltalake's own Python binding turns it off).
//!
//! Two things FFI changes, both handled by [`provider::WorkbenchDeltaScan`]: a provider's
//! `scan` is called outside any tokio runtime of this library, while `DeltaScan::scan`
//! needs one (it is polled inside the runtime this module owns); and the session it gets
//! is the host's, seen through FFI, whose physical expressions are opaque to this side
//! (pruning and Parquet row filters need to read them), so planning uses a local session
//! built from the host's configuration.
//!
//! Across FFI the host sees an extension operator only by its name and its metrics, so every
//! scan plan is wrapped in [`exec::DeltaTableExec`], whose metrics name the table and its file
//! counts. [`prune`] answers which files a predicate skips from the log alone (`%prune`).

pub mod cdf;
pub mod exec;
pub mod provider;
pub mod prune;
pub mod runtime;
#[cfg(test)]
mod testing;

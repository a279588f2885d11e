//! `DeltaTableExec`: the root of every Delta scan, reporting which table and how many files.
//!
//! Across FFI the host sees an extension operator only as its name and its `metrics()`, so
//! the facts the plan views need travel as metrics: `delta_files_total` (files in the
//! snapshot) and `delta_files_scanned` (the scan's own `count_files_scanned`, read from the
//! child at every call, so a runtime filter that skips planned files shows), both labelled
//! `table=<registered name>` and `version=<n>` (datafusion-ffi carries labels across).
//! Everything else (properties, execution, statistics, filter pushdown) is the child's,
//! except that the child executes with the session's caches (see [`crate::cache`]): across
//! FFI the task context brings a fresh default runtime.

use std::fmt;
use std::sync::Arc;

use deltalake_core::datafusion::common::tree_node::TreeNodeRecursion;
use deltalake_core::datafusion::common::{Result as DfResult, Statistics, plan_err};
use deltalake_core::datafusion::config::ConfigOptions;
use deltalake_core::datafusion::execution::{SendableRecordBatchStream, TaskContext};
use deltalake_core::datafusion::physical_expr::PhysicalExpr;
use deltalake_core::datafusion::physical_plan::execution_plan::{
    CardinalityEffect, ChildrenPropertiesMode, ReplaceChildrenOptions,
};
use deltalake_core::datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterDescription, FilterPushdownPhase, FilterPushdownPropagation,
};
use deltalake_core::datafusion::physical_plan::metrics::{
    Count, Label, Metric, MetricValue, MetricsSet,
};
use deltalake_core::datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use deltalake_core::datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties,
};

use crate::cache::CacheScope;

/// Metric names (Python's plan model reads them by these names).
pub const FILES_TOTAL: &str = "delta_files_total";
pub const FILES_SCANNED: &str = "delta_files_scanned";
/// The metric of deltalake's `DeltaScanExec`/`DeltaScanMetaExec` counting files it reads.
const SCAN_FILES: &str = "count_files_scanned";

/// Which Delta table a scan reads: registered name, version, files in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanFacts {
    pub table: String,
    pub version: u64,
    pub files_total: usize,
}

/// A transparent parent of a Delta scan plan that reports [`ScanFacts`] as metrics.
#[derive(Debug, Clone)]
pub struct DeltaTableExec {
    input: Arc<dyn ExecutionPlan>,
    facts: Arc<ScanFacts>,
    /// The caches the scan runs with (`None`: the task context's own).
    scope: Option<Arc<CacheScope>>,
}

impl DeltaTableExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, facts: ScanFacts) -> Self {
        Self {
            input,
            facts: Arc::new(facts),
            scope: None,
        }
    }

    /// Execute the scan with `scope`'s caches.
    pub fn in_scope(mut self, scope: Arc<CacheScope>) -> Self {
        self.scope = Some(scope);
        self
    }

    pub fn facts(&self) -> &ScanFacts {
        &self.facts
    }

    /// Files the scan below reads: the first `count_files_scanned` found in the subtree
    /// (0 when the scan is empty because every file was pruned).
    pub fn files_scanned(&self) -> usize {
        files_scanned(&self.input).unwrap_or(0)
    }
}

fn files_scanned(plan: &Arc<dyn ExecutionPlan>) -> Option<usize> {
    if let Some(value) = plan.metrics().and_then(|m| m.sum_by_name(SCAN_FILES)) {
        return Some(value.as_usize());
    }
    let found: Vec<usize> = plan
        .children()
        .into_iter()
        .filter_map(files_scanned)
        .collect();
    (!found.is_empty()).then(|| found.iter().sum())
}

/// The output rows of the first node under the table that counts them (a metadata-only
/// scan sits below a `CooperativeExec`, which does not).
fn output_rows(plan: &Arc<dyn ExecutionPlan>) -> Option<usize> {
    plan.metrics()
        .and_then(|m| m.output_rows())
        .or_else(|| plan.children().into_iter().find_map(output_rows))
}

fn count(name: &'static str, value: usize, labels: &[Label]) -> Arc<Metric> {
    let count = Count::new();
    count.add(value);
    Arc::new(Metric::new_with_labels(
        MetricValue::Count {
            name: name.into(),
            count,
        },
        None,
        labels.to_vec(),
    ))
}

impl DisplayAs for DeltaTableExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DeltaTableExec: table={}, version={}, files_total={}",
            self.facts.table, self.facts.version, self.facts.files_total
        )
    }
}

impl ExecutionPlan for DeltaTableExec {
    fn name(&self) -> &str {
        "DeltaTableExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        // Repartitioning belongs above the table, not between it and its scan.
        vec![false]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return plan_err!("DeltaTableExec takes one child, got {}", children.len());
        }
        // Properties are the child's, so both modes mean the same here.
        Ok(Arc::new(Self {
            input: children.swap_remove(0),
            facts: Arc::clone(&self.facts),
            scope: self.scope.clone(),
        }))
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

    fn repartitioned(
        &self,
        target_partitions: usize,
        config: &ConfigOptions,
    ) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
        Ok(self
            .input
            .repartitioned(target_partitions, config)?
            .map(|input| {
                Arc::new(Self {
                    input,
                    facts: Arc::clone(&self.facts),
                    scope: self.scope.clone(),
                }) as Arc<dyn ExecutionPlan>
            }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let context = match &self.scope {
            Some(scope) => scope.task_context(context)?,
            None => context,
        };
        self.input.execute(partition, context)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        let labels = [
            Label::new("table", self.facts.table.clone()),
            Label::new("version", self.facts.version.to_string()),
        ];
        let mut set = MetricsSet::new();
        set.push(count(FILES_TOTAL, self.facts.files_total, &labels));
        set.push(count(FILES_SCANNED, self.files_scanned(), &labels));
        // The rows this table produced are its scan's: shown on this node too, since the
        // plan views show the operator the host sees, and that is this one.
        if let Some(rows) = output_rows(&self.input) {
            let output = Count::new();
            output.add(rows);
            set.push(Arc::new(Metric::new(MetricValue::OutputRows(output), None)));
        }
        Some(set)
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> DfResult<Arc<Statistics>> {
        Ok(Arc::clone(&input_stats[0]))
    }

    fn supports_limit_pushdown(&self) -> bool {
        self.input.supports_limit_pushdown()
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        CardinalityEffect::Equal
    }

    fn gather_filters_for_pushdown(
        &self,
        _phase: FilterPushdownPhase,
        parent_filters: Vec<Arc<dyn PhysicalExpr>>,
        _config: &ConfigOptions,
    ) -> DfResult<FilterDescription> {
        FilterDescription::from_children(parent_filters, &self.children())
    }

    fn handle_child_pushdown_result(
        &self,
        _phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> DfResult<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        Ok(FilterPushdownPropagation::if_all(child_pushdown_result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::provider::{OpenOptions, open};
    use crate::delta::runtime::runtime;
    use crate::delta::testing::{TestFile, write_table};
    use deltalake_core::arrow::record_batch::RecordBatch;
    use deltalake_core::datafusion::catalog::TableProvider;
    use deltalake_core::datafusion::execution::session_state::SessionStateBuilder;
    use deltalake_core::datafusion::logical_expr::{col, lit};
    use deltalake_core::datafusion::physical_plan::collect;

    fn metric(plan: &Arc<dyn ExecutionPlan>, name: &str) -> (usize, Vec<(String, String)>) {
        let metrics = plan.metrics().expect("metrics");
        let found = metrics
            .iter()
            .find(|m| m.value().name() == name)
            .expect("the metric");
        let labels = found
            .labels()
            .iter()
            .map(|l| (l.name().to_string(), l.value().to_string()))
            .collect();
        (found.value().as_usize(), labels)
    }

    #[test]
    fn a_delta_scan_reports_its_table_and_file_counts_as_labelled_metrics() {
        let table = write_table(&[
            TestFile::range(1, 10),
            TestFile::range(11, 10),
            TestFile::range(21, 10),
        ]);
        let options = OpenOptions {
            name: Some("events".to_string()),
            ..OpenOptions::default()
        };
        runtime().block_on(async {
            let opened = open(&table.uri(), &options).await.expect("opens");
            let state = SessionStateBuilder::new().with_default_features().build();
            let plan = opened
                .provider
                .scan(&state, None, &[col("id").gt(lit(15_i64))], None)
                .await
                .expect("plans");
            assert_eq!(plan.name(), "DeltaTableExec");
            let labels = vec![
                ("table".to_string(), "events".to_string()),
                ("version".to_string(), "0".to_string()),
            ];
            assert_eq!(metric(&plan, FILES_TOTAL), (3, labels.clone()));
            assert_eq!(metric(&plan, FILES_SCANNED), (2, labels));
            let batches = collect(Arc::clone(&plan), state.task_ctx())
                .await
                .expect("runs");
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            // Files are pruned, rows are not filtered here (the filter is Inexact).
            assert_eq!(rows, 20);
            assert_eq!(metric(&plan, FILES_SCANNED).0, 2);
            // The host sees this node, so it carries the scan's output rows.
            assert_eq!(plan.metrics().and_then(|m| m.output_rows()), Some(20));
        });
    }
}

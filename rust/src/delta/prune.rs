//! Which files of a Delta snapshot a predicate skips, and why, reading no data.
//!
//! The predicate is planned by DataFusion's SQL planner against the table's logical schema
//! (deltalake's `parse_predicate_expression` panics on a subquery: its context provider has
//! no tables), split into its top-level `AND` terms, and each term becomes a DataFusion
//! `PruningPredicate` evaluated on the snapshot itself: `EagerSnapshot` implements
//! `PruningStatistics` from the log's per-file min/max/null counts, with partition values
//! as min = max, one container per file in log order. A file is pruned when any term is
//! false for it, which is what the conjunction's own pruning predicate decides.
//!
//! deltalake-core 1.1.3 answers no null or row counts through `PruningStatistics` (its
//! evaluators return `None`), so a column NULL in every row, or `x IS NULL`, could not
//! prune; [`FileStatistics`] takes min/max and partition values from the snapshot and the
//! counts from the file index, which has them.
//!
//! Reasons are read from the file index (`add_actions_table(flatten=true)`, the same rows
//! in the same order): a pruned file names the first term that excluded it and the bound
//! that did it; a kept file says whether its statistics overlap or are missing.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use deltalake_core::arrow::array::{
    Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, StructArray, UInt64Array,
    make_array,
};
use deltalake_core::arrow::buffer::NullBuffer;
use deltalake_core::arrow::compute::cast;
use deltalake_core::arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema};
use deltalake_core::arrow::util::display::array_value_to_string;
use deltalake_core::datafusion::common::{Column, DFSchema, ScalarValue};
use deltalake_core::datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use deltalake_core::datafusion::logical_expr::expr::InList;
use deltalake_core::datafusion::logical_expr::simplify::SimplifyContext;
use deltalake_core::datafusion::logical_expr::{
    Between, BinaryExpr, Expr, ExprSchemable, Operator, lit,
};
use deltalake_core::datafusion::optimizer::simplify_expressions::ExprSimplifier;
use deltalake_core::datafusion::physical_optimizer::pruning::{
    PruningPredicate, PruningPredicateBuilder, PruningStatistics,
};
use deltalake_core::datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr as SqlExpr, ExprWithAlias,
};
use deltalake_core::delta_datafusion::DataFusionMixins;
use deltalake_core::kernel::EagerSnapshot;

/// The field metadata key naming a column's physical name under column mapping.
const PHYSICAL_NAME: &str = "delta.columnMapping.physicalName";

/// One top-level `AND` term of the predicate.
#[derive(Debug, Clone)]
pub struct Conjunct {
    /// The term as SQL (sqlparser's rendering of what the user wrote).
    pub text: String,
    /// Columns it references.
    pub columns: Vec<String>,
    /// Whether file statistics can decide it (DataFusion's pruning predicate is not
    /// trivially true); an undecidable term keeps every file.
    pub decidable: bool,
    expr: Expr,
}

/// The verdict on one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileVerdict {
    pub path: String,
    pub size_bytes: i64,
    pub num_records: Option<i64>,
    pub kept: bool,
    pub reason: String,
}

/// What `prune` found: the predicate's terms and one verdict per file, in log order.
#[derive(Debug, Clone)]
pub struct Pruning {
    pub conjuncts: Vec<Conjunct>,
    pub files: Vec<FileVerdict>,
}

fn planning_state() -> &'static SessionState {
    static STATE: OnceLock<SessionState> = OnceLock::new();
    STATE.get_or_init(|| SessionStateBuilder::new().with_default_features().build())
}

/// Split `a AND (b AND c)` into `[a, b, c]`; anything else is one term.
fn split_conjuncts(expr: SqlExpr, out: &mut Vec<SqlExpr>) {
    match expr {
        SqlExpr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            split_conjuncts(*left, out);
            split_conjuncts(*right, out);
        }
        SqlExpr::Nested(inner)
            if matches!(
                *inner,
                SqlExpr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            split_conjuncts(*inner, out)
        }
        other => out.push(other),
    }
}

/// Plan `predicate` against `snapshot`'s logical schema, one [`Conjunct`] per `AND` term.
///
/// `lenient`: a term that cannot be planned here (a function registered only in the user's
/// session) is kept as undecidable instead of failing the whole predicate; the caller
/// knows the predicate is valid because the user's session planned it.
pub fn plan_conjuncts(
    snapshot: &EagerSnapshot,
    predicate: &str,
    lenient: bool,
) -> Result<Vec<(Conjunct, PruningPredicate)>, String> {
    let state = planning_state();
    let schema = snapshot.input_schema();
    let df_schema = DFSchema::try_from(schema.as_ref().clone()).map_err(|e| e.to_string())?;
    let dialect = state.config().options().sql_parser.dialect;
    let parsed = state
        .sql_to_expr_with_alias(predicate, &dialect)
        .map_err(|e| format!("cannot parse the predicate: {e}"))?;
    let mut terms = Vec::new();
    split_conjuncts(parsed.expr, &mut terms);
    let simplifier = ExprSimplifier::new(
        SimplifyContext::builder()
            .with_schema(Arc::new(df_schema.clone()))
            .build(),
    );
    let mut out = Vec::with_capacity(terms.len());
    for term in terms {
        let text = term.to_string();
        let plan = |term: SqlExpr| -> Result<(Expr, PruningPredicate), String> {
            let logical = state
                .create_logical_expr_from_sql_expr(
                    ExprWithAlias {
                        expr: term,
                        alias: None,
                    },
                    &df_schema,
                )
                .map_err(|e| e.to_string())?;
            let coerced = simplifier
                .coerce(logical, &df_schema)
                .map_err(|e| e.to_string())?;
            let data_type = coerced.get_type(&df_schema).map_err(|e| e.to_string())?;
            if !matches!(data_type, DataType::Boolean | DataType::Null) {
                return Err(format!("it is {data_type}, not a condition"));
            }
            let simplified = simplifier.simplify(coerced).map_err(|e| e.to_string())?;
            let physical = state
                .create_physical_expr(simplified.clone(), &df_schema)
                .map_err(|e| e.to_string())?;
            let predicate = PruningPredicateBuilder::new()
                .with_file_schema(Arc::clone(&schema))
                .try_build(physical)
                .map_err(|e| e.to_string())?;
            Ok((simplified, predicate))
        };
        let (expr, pruner) = match plan(term) {
            Ok(planned) => planned,
            Err(_) if lenient => {
                let always = state
                    .create_physical_expr(lit(true), &df_schema)
                    .and_then(|p| {
                        PruningPredicateBuilder::new()
                            .with_file_schema(Arc::clone(&schema))
                            .try_build(p)
                    })
                    .map_err(|e| e.to_string())?;
                (lit(true), always)
            }
            Err(e) => return Err(format!("{text}: {e}")),
        };
        let mut columns: Vec<String> = expr
            .column_refs()
            .into_iter()
            .map(|c| c.name.clone())
            .collect();
        columns.sort();
        columns.dedup();
        out.push((
            Conjunct {
                text,
                columns,
                decidable: !pruner.always_true(),
                expr,
            },
            pruner,
        ));
    }
    Ok(out)
}

/// The file index rows `prune` explains with.
struct FileIndex {
    batch: RecordBatch,
    partition_columns: HashSet<String>,
}

/// What the index says about one column of one file.
struct Bounds {
    min: Option<ScalarValue>,
    max: Option<ScalarValue>,
    null_count: Option<i64>,
    rows: Option<i64>,
    partition: bool,
}

impl Bounds {
    fn all_null(&self) -> bool {
        matches!((self.null_count, self.rows), (Some(n), Some(r)) if r > 0 && n == r)
    }

    fn missing(&self) -> bool {
        !self.partition && (self.min.is_none() || self.max.is_none()) && !self.all_null()
    }
}

impl FileIndex {
    fn column(&self, name: &str) -> Option<ArrayRef> {
        self.batch.column_by_name(name).cloned()
    }

    fn value(&self, column: &str, row: usize) -> Option<ScalarValue> {
        let array = self.batch.column_by_name(column)?;
        let value = ScalarValue::try_from_array(array.as_ref(), row).ok()?;
        (!value.is_null()).then_some(value)
    }

    fn int(&self, column: &str, row: usize) -> Option<i64> {
        match self.value(column, row)?.cast_to(&DataType::Int64).ok()? {
            ScalarValue::Int64(value) => value,
            _ => None,
        }
    }

    fn text(&self, column: &str, row: usize) -> String {
        self.batch
            .column_by_name(column)
            .and_then(|array| array_value_to_string(array.as_ref(), row).ok())
            .unwrap_or_default()
    }

    fn bounds(&self, column: &str, row: usize) -> Bounds {
        let rows = self.int("num_records", row);
        if self.partition_columns.contains(column) {
            let value = self.value(&format!("partition.{column}"), row);
            return Bounds {
                null_count: Some(if value.is_none() {
                    rows.unwrap_or(0)
                } else {
                    0
                }),
                min: value.clone(),
                max: value,
                rows,
                partition: true,
            };
        }
        Bounds {
            min: self.value(&format!("min.{column}"), row),
            max: self.value(&format!("max.{column}"), row),
            null_count: self.int(&format!("null_count.{column}"), row),
            rows,
            partition: false,
        }
    }

    fn partition_value(&self, column: &str, row: usize) -> String {
        self.value(&format!("partition.{column}"), row)
            .map(|v| show(&v))
            .unwrap_or_else(|| "NULL".to_string())
    }
}

/// The statistics pruning reads: the snapshot's min/max and partition values, the file
/// index's null and row counts (see the module docs).
struct FileStatistics<'a> {
    snapshot: &'a EagerSnapshot,
    index: &'a FileIndex,
}

impl FileStatistics<'_> {
    fn counts(&self, column: &str) -> Option<ArrayRef> {
        let array = self.index.batch.column_by_name(column)?;
        cast(array.as_ref(), &DataType::UInt64).ok()
    }
}

impl PruningStatistics for FileStatistics<'_> {
    // The snapshot answers by the log's column names, which under column mapping are the
    // physical ones; the file index has them by the table's names (see `file_index`).
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.snapshot
            .min_values(column)
            .or_else(|| self.index.column(&format!("min.{}", column.name)))
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.snapshot
            .max_values(column)
            .or_else(|| self.index.column(&format!("max.{}", column.name)))
    }

    fn num_containers(&self) -> usize {
        self.index.batch.num_rows()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        if !self.index.partition_columns.contains(&column.name) {
            return self.counts(&format!("null_count.{}", column.name));
        }
        let values = self
            .index
            .batch
            .column_by_name(&format!("partition.{}", column.name))?;
        let rows = self.row_counts()?;
        let rows = rows.as_any().downcast_ref::<UInt64Array>()?;
        Some(Arc::new(UInt64Array::from_iter((0..values.len()).map(
            |i| Some(if values.is_null(i) { rows.value(i) } else { 0 }),
        ))))
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        self.counts("num_records")
    }

    fn contained(&self, column: &Column, values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        self.snapshot.contained(column, values)
    }
}

/// A value as the report shows it: strings quoted as in SQL, dates and numbers as Arrow prints them.
fn show(value: &ScalarValue) -> String {
    if value.is_null() {
        return "NULL".to_string();
    }
    match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => {
            format!("'{}'", s.replace('\'', "''"))
        }
        ScalarValue::Dictionary(_, inner) => show(inner),
        other => other
            .to_array()
            .ok()
            .and_then(|array| array_value_to_string(array.as_ref(), 0).ok())
            .unwrap_or_else(|| other.to_string()),
    }
}

fn column_of(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Column(column) => Some(column.name.as_str()),
        Expr::Cast(cast) => column_of(&cast.expr),
        Expr::TryCast(cast) => column_of(&cast.expr),
        _ => None,
    }
}

fn literal_of(expr: &Expr) -> Option<&ScalarValue> {
    match expr {
        Expr::Literal(value, _) => Some(value),
        _ => None,
    }
}

/// `value` in the type of the statistics it is compared with.
fn as_stats_type(value: &ScalarValue, stats: &ScalarValue) -> Option<ScalarValue> {
    let target = stats.data_type();
    if value.data_type() == target {
        return Some(value.clone());
    }
    value.cast_to(&target).ok()
}

fn cmp(a: &ScalarValue, b: &ScalarValue) -> Option<Ordering> {
    a.partial_cmp(b)
}

/// Why `column op value` is false for every row of the file, if its bounds show it.
fn explain_comparison(
    column: &str,
    op: Operator,
    value: &ScalarValue,
    bounds: &Bounds,
) -> Option<String> {
    if bounds.partition {
        let shown = bounds
            .min
            .as_ref()
            .map(show)
            .unwrap_or_else(|| "NULL".into());
        return Some(format!("file has {column} = {shown}"));
    }
    if bounds.all_null() {
        return Some(format!("{column} is NULL in every row"));
    }
    let (min, max) = (bounds.min.as_ref()?, bounds.max.as_ref()?);
    let v = as_stats_type(value, min)?;
    let shown = show(&v);
    let (min_v, max_v) = (cmp(min, &v)?, cmp(max, &v)?);
    let min_text = format!("{column} min {}", show(min));
    let max_text = format!("{column} max {}", show(max));
    match op {
        Operator::Eq if min_v == Ordering::Greater => Some(format!("{min_text} > {shown}")),
        Operator::Eq if max_v == Ordering::Less => Some(format!("{max_text} < {shown}")),
        Operator::Lt if min_v != Ordering::Less => Some(format!("{min_text} >= {shown}")),
        Operator::LtEq if min_v == Ordering::Greater => Some(format!("{min_text} > {shown}")),
        Operator::Gt if max_v != Ordering::Greater => Some(format!("{max_text} <= {shown}")),
        Operator::GtEq if max_v == Ordering::Less => Some(format!("{max_text} < {shown}")),
        Operator::NotEq if min_v == Ordering::Equal && max_v == Ordering::Equal => {
            Some(format!("{column} is {shown} in every row (min = max)"))
        }
        _ => None,
    }
}

fn explain_in_list(column: &str, values: &[&ScalarValue], bounds: &Bounds) -> Option<String> {
    if bounds.partition || bounds.all_null() {
        // Every member excludes the file for the same reason.
        return explain_comparison(column, Operator::Eq, values.first()?, bounds);
    }
    let (min, max) = (bounds.min.as_ref()?, bounds.max.as_ref()?);
    let mut shown = Vec::with_capacity(values.len());
    for value in values {
        let v = as_stats_type(value, min)?;
        let outside = cmp(&v, min)? == Ordering::Less || cmp(&v, max)? == Ordering::Greater;
        if !outside {
            return None;
        }
        shown.push(show(&v));
    }
    Some(format!(
        "{column} range [{}, {}] holds none of ({})",
        show(min),
        show(max),
        shown.join(", ")
    ))
}

/// `a = 1 OR a = 2 OR ...` (how DataFusion simplifies a short IN list) as (a, [1, 2, ...]).
fn equality_disjunction(expr: &Expr) -> Option<(&str, Vec<&ScalarValue>)> {
    match expr {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => {
            let (a, mut left_values) = equality_disjunction(left)?;
            let (b, right_values) = equality_disjunction(right)?;
            (a == b).then(|| {
                left_values.extend(right_values);
                (a, left_values)
            })
        }
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) => match (
            column_of(left),
            literal_of(right),
            column_of(right),
            literal_of(left),
        ) {
            (Some(c), Some(v), _, _) | (_, _, Some(c), Some(v)) => Some((c, vec![v])),
            _ => None,
        },
        _ => None,
    }
}

/// Why `expr` is false for every row of file `row`, when the file's bounds show it.
fn explain(expr: &Expr, index: &FileIndex, row: usize) -> Option<String> {
    match expr {
        Expr::Literal(value, _)
            if matches!(value, ScalarValue::Boolean(Some(false))) || value.is_null() =>
        {
            Some("never true".to_string())
        }
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::And,
            right,
        }) => explain(left, index, row).or_else(|| explain(right, index, row)),
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => {
            if let Some((column, values)) = equality_disjunction(expr) {
                return explain_in_list(column, &values, &index.bounds(column, row));
            }
            let (a, b) = (explain(left, index, row)?, explain(right, index, row)?);
            Some(format!("{a}; {b}"))
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (column, op, value) = match (column_of(left), literal_of(right)) {
                (Some(c), Some(v)) => (c, *op, v),
                _ => (column_of(right)?, op.swap()?, literal_of(left)?),
            };
            explain_comparison(column, op, value, &index.bounds(column, row))
        }
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) => {
            let column = column_of(expr)?;
            let bounds = index.bounds(column, row);
            explain_comparison(column, Operator::GtEq, literal_of(low)?, &bounds)
                .or_else(|| explain_comparison(column, Operator::LtEq, literal_of(high)?, &bounds))
        }
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) => {
            let column = column_of(expr)?;
            let values: Option<Vec<&ScalarValue>> = list.iter().map(literal_of).collect();
            explain_in_list(column, &values?, &index.bounds(column, row))
        }
        Expr::IsNull(inner) => {
            let column = column_of(inner)?;
            let bounds = index.bounds(column, row);
            if bounds.partition {
                return Some(format!(
                    "file has {column} = {}",
                    index.partition_value(column, row)
                ));
            }
            (bounds.null_count == Some(0)).then(|| format!("{column} has no NULLs"))
        }
        Expr::IsNotNull(inner) => {
            let column = column_of(inner)?;
            index
                .bounds(column, row)
                .all_null()
                .then(|| format!("{column} is NULL in every row"))
        }
        Expr::Column(column) => explain_comparison(
            &column.name,
            Operator::Eq,
            &ScalarValue::Boolean(Some(true)),
            &index.bounds(&column.name, row),
        ),
        _ => None,
    }
}

/// The reason a file was pruned by `conjunct`.
fn pruned_reason(conjunct: &Conjunct, index: &FileIndex, row: usize) -> String {
    let columns = &conjunct.columns;
    if !columns.is_empty() && columns.iter().all(|c| index.partition_columns.contains(c)) {
        let has: Vec<String> = columns
            .iter()
            .map(|c| format!("{c} = {}", index.partition_value(c, row)))
            .collect();
        return format!("partition {} (file has {})", conjunct.text, has.join(", "));
    }
    if let Some(why) = explain(&conjunct.expr, index, row) {
        return if why == "never true" {
            format!("{} is never true", conjunct.text)
        } else {
            why
        };
    }
    // A bound the explanations above do not cover (an expression of columns, a LIKE...):
    // name the term and the statistics it was decided on.
    let mut text = format!("statistics exclude {}", conjunct.text);
    let mut shown = Vec::new();
    for column in columns {
        let bounds = index.bounds(column, row);
        shown.push(match (&bounds.min, &bounds.max) {
            _ if bounds.all_null() => format!("{column} all NULL"),
            (Some(min), Some(max)) => format!("{column} in [{}, {}]", show(min), show(max)),
            _ => format!("{column} without statistics"),
        });
    }
    if !shown.is_empty() {
        let _ = write!(text, " ({})", shown.join(", "));
    }
    text
}

/// The reason a file was kept.
fn kept_reason(conjuncts: &[Conjunct], index: &FileIndex, row: usize) -> String {
    let decidable: Vec<&Conjunct> = conjuncts.iter().filter(|c| c.decidable).collect();
    if decidable.is_empty() {
        let texts: Vec<&str> = conjuncts.iter().map(|c| c.text.as_str()).collect();
        return format!("statistics cannot decide {}", texts.join(" AND "));
    }
    let mut missing: Vec<&str> = Vec::new();
    for conjunct in &decidable {
        for column in &conjunct.columns {
            if !missing.contains(&column.as_str()) && index.bounds(column, row).missing() {
                missing.push(column);
            }
        }
    }
    if !missing.is_empty() {
        return format!("missing statistics for {}", missing.join(", "));
    }
    let partitions_only = decidable.iter().all(|c| {
        !c.columns.is_empty()
            && c.columns
                .iter()
                .all(|col| index.partition_columns.contains(col))
    });
    if partitions_only {
        "partition values match".to_string()
    } else {
        "statistics overlap".to_string()
    }
}

/// The file index of `snapshot`: deltalake's add actions table, flattened here.
///
/// deltalake-core's own flattening keeps a child's non-nullable flag under a nullable
/// parent, so a table where only some files have a deletion vector fails to flatten
/// (`deletion_vector.storageType` is declared non-null and is null for the others). Here a
/// child of a nullable struct is nullable, and NULL wherever its parent is.
///
/// With column mapping the log keys statistics and partition values by physical column
/// names (`col-5f2a...`); the index names them by the table's (logical) column names.
pub fn file_index(snapshot: &EagerSnapshot) -> Result<RecordBatch, String> {
    let nested = snapshot
        .add_actions_table(false)
        .map_err(|e| e.to_string())?;
    let mut logical = HashMap::new();
    logical_names(snapshot.input_schema().fields(), &mut logical);
    let mut fields: Vec<FieldRef> = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in nested.schema().fields().iter().zip(nested.columns()) {
        flatten(field, column, None, "", &logical, &mut fields, &mut columns);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())
}

/// Physical column name -> logical name, for every (nested) field that has one.
fn logical_names(fields: &Fields, out: &mut HashMap<String, String>) {
    for field in fields {
        if let Some(physical) = field.metadata().get(PHYSICAL_NAME) {
            out.insert(physical.clone(), field.name().clone());
        }
        if let DataType::Struct(children) = field.data_type() {
            logical_names(children, out);
        }
    }
}

fn flatten(
    field: &FieldRef,
    column: &ArrayRef,
    parent_nulls: Option<&NullBuffer>,
    prefix: &str,
    logical: &HashMap<String, String>,
    fields: &mut Vec<FieldRef>,
    columns: &mut Vec<ArrayRef>,
) {
    let shown = logical.get(field.name()).unwrap_or(field.name());
    let name = format!("{prefix}{shown}");
    let nulls = NullBuffer::union(parent_nulls, column.logical_nulls().as_ref());
    if let Some(parent) = column.as_any().downcast_ref::<StructArray>() {
        let DataType::Struct(children) = field.data_type() else {
            unreachable!("a StructArray has a struct type")
        };
        for (child, array) in children.iter().zip(parent.columns()) {
            flatten(
                child,
                array,
                nulls.as_ref(),
                &format!("{name}."),
                logical,
                fields,
                columns,
            );
        }
        return;
    }
    let nullable = field.is_nullable() || parent_nulls.is_some();
    let array = if parent_nulls.is_some() && nulls.as_ref() != column.nulls() {
        let data = column.to_data().into_builder().nulls(nulls).build();
        make_array(data.expect("the same array with more NULLs is valid"))
    } else {
        Arc::clone(column)
    };
    fields.push(Arc::new(
        Field::new(name, field.data_type().clone(), nullable)
            .with_metadata(field.metadata().clone()),
    ));
    columns.push(array);
}

/// Evaluate `predicate` on `snapshot`'s file statistics and partition values, for the files
/// `scanned` (the object store locations a scan of `WHERE predicate` reads; `location`
/// gives a log path's).
///
/// A file is kept exactly when the scan reads it. The reason for a pruned file is the term
/// that excluded it on the log's statistics; when the scan skipped a file that statistics
/// pruning alone would keep (a partition filter deltalake evaluates itself), or a file is
/// outside the registration's `files` restriction, the reason says so.
///
/// `scanned` is `None` when the query's plan has no scan of the table at all (DataFusion
/// found the predicate never true): no file is read.
pub fn prune(
    snapshot: &EagerSnapshot,
    planned: Vec<(Conjunct, PruningPredicate)>,
    location: &dyn Fn(&str) -> String,
    scanned: Option<&HashSet<String>>,
    restriction: Option<&[String]>,
) -> Result<Pruning, String> {
    let restricted: Option<HashSet<String>> =
        restriction.map(|files| files.iter().map(|f| location(f)).collect());
    let batch = file_index(snapshot)?;
    let index = FileIndex {
        batch,
        partition_columns: snapshot
            .metadata()
            .partition_columns()
            .iter()
            .cloned()
            .collect(),
    };
    let files = index.batch.num_rows();
    if files != snapshot.log_data().num_files() {
        return Err(format!(
            "the file index has {files} rows but the log {} files",
            snapshot.log_data().num_files()
        ));
    }
    let statistics = FileStatistics {
        snapshot,
        index: &index,
    };
    let mut masks = Vec::with_capacity(planned.len());
    for (conjunct, pruner) in &planned {
        if !conjunct.decidable {
            masks.push(None);
            continue;
        }
        let mask = pruner
            .prune(&statistics)
            .map_err(|e| format!("{}: {e}", conjunct.text))?;
        if mask.len() != files {
            return Err(format!(
                "the log lists {files} files but pruning saw {}",
                mask.len()
            ));
        }
        masks.push(Some(mask));
    }
    let conjuncts: Vec<Conjunct> = planned.into_iter().map(|(c, _)| c).collect();
    let verdicts = (0..files)
        .map(|row| {
            let excluded = masks
                .iter()
                .position(|mask| mask.as_ref().is_some_and(|m| !m[row]));
            let path = index.text("path", row);
            let at = location(&path);
            let restricted = restricted
                .as_ref()
                .is_some_and(|files| !files.contains(&at));
            let read = scanned.is_some_and(|files| files.contains(&at));
            let (kept, reason) = match (read, excluded) {
                (false, _) if scanned.is_none() => (
                    false,
                    "the query reads no file: DataFusion found the predicate never true"
                        .to_string(),
                ),
                (false, _) if restricted => (
                    false,
                    "outside the table's file restriction (files=)".to_string(),
                ),
                (false, Some(at)) => (false, pruned_reason(&conjuncts[at], &index, row)),
                (false, None) => (
                    false,
                    "skipped by the Delta scan's own file filter (partition values)".to_string(),
                ),
                (true, None) => (true, kept_reason(&conjuncts, &index, row)),
                (true, Some(at)) => (
                    true,
                    format!(
                        "the scan reads it although statistics exclude it ({}): the scan's \
                         filter cannot use that term",
                        pruned_reason(&conjuncts[at], &index, row)
                    ),
                ),
            };
            FileVerdict {
                path,
                size_bytes: index.int("size_bytes", row).unwrap_or(0),
                num_records: index.int("num_records", row),
                kept,
                reason,
            }
        })
        .collect();
    Ok(Pruning {
        conjuncts,
        files: verdicts,
    })
}

/// The verdicts as one Arrow batch: path, size_bytes, num_records, kept, reason.
pub fn verdicts_batch(files: &[FileVerdict]) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("path", DataType::Utf8, false),
        Field::new("size_bytes", DataType::Int64, false),
        Field::new("num_records", DataType::Int64, true),
        Field::new("kept", DataType::Boolean, false),
        Field::new("reason", DataType::Utf8, false),
    ]);
    let columns: Vec<Arc<dyn Array>> = vec![
        Arc::new(StringArray::from_iter_values(
            files.iter().map(|f| f.path.as_str()),
        )),
        Arc::new(Int64Array::from_iter_values(
            files.iter().map(|f| f.size_bytes),
        )),
        Arc::new(Int64Array::from_iter(files.iter().map(|f| f.num_records))),
        Arc::new(BooleanArray::from_iter(files.iter().map(|f| Some(f.kept)))),
        Arc::new(StringArray::from_iter_values(
            files.iter().map(|f| f.reason.as_str()),
        )),
    ];
    RecordBatch::try_new(Arc::new(schema), columns).expect("the verdict columns match their schema")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::provider::{OpenOptions, Read, open, prune_version};
    use crate::delta::runtime::runtime;
    use crate::delta::testing::{TestFile, TestTable, write_table};

    fn snapshot(table: &TestTable) -> EagerSnapshot {
        runtime()
            .block_on(open(&table.uri(), &OpenOptions::default()))
            .expect("the test table opens")
            .provider
            .current()
            .snapshot
            .clone()
    }

    fn prune_at(table: &TestTable, predicate: &str) -> Result<Pruning, String> {
        runtime().block_on(async {
            let opened = open(&table.uri(), &OpenOptions::default()).await?;
            let version = opened.provider.current();
            prune_version(&opened.provider, version, Read::Unknown, predicate, false).await
        })
    }

    fn verdicts(table: &TestTable, predicate: &str) -> Vec<(bool, String)> {
        let pruning = prune_at(table, predicate).expect("the predicate prunes");
        pruning
            .files
            .into_iter()
            .map(|f| (f.kept, f.reason))
            .collect()
    }

    fn three_ranges() -> TestTable {
        write_table(&[
            TestFile::range(1, 10),
            TestFile::range(11, 10),
            TestFile::range(21, 10),
        ])
    }

    #[test]
    fn a_partition_term_names_the_partition_value_of_a_pruned_file() {
        let table = write_table(&[
            TestFile::range(1, 3).in_partition("a"),
            TestFile::range(4, 3).in_partition("b"),
        ]);
        assert_eq!(
            verdicts(&table, "p = 'a'"),
            vec![
                (true, "partition values match".to_string()),
                (false, "partition p = 'a' (file has p = 'b')".to_string()),
            ]
        );
    }

    #[test]
    fn a_statistics_term_names_the_bound_that_excluded_the_file() {
        let table = three_ranges();
        assert_eq!(
            verdicts(&table, "id > 15"),
            vec![
                (false, "id max 10 <= 15".to_string()),
                (true, "statistics overlap".to_string()),
                (true, "statistics overlap".to_string()),
            ]
        );
        // A string literal compared with a date column is read as a date.
        let days = verdicts(&table, "day <= '2020-01-05'");
        assert_eq!(days[0], (true, "statistics overlap".to_string()));
        assert_eq!(
            days[1],
            (false, "day min 2020-01-12 > 2020-01-05".to_string())
        );
        let between = verdicts(&table, "id BETWEEN 12 AND 14");
        assert_eq!(between[0], (false, "id max 10 < 12".to_string()));
        assert_eq!(between[2], (false, "id min 21 > 14".to_string()));
        let listed = verdicts(&table, "id IN (50, 60, 70, 80)");
        assert_eq!(
            listed[0],
            (
                false,
                "id range [1, 10] holds none of (50, 60, 70, 80)".to_string()
            )
        );
    }

    #[test]
    fn the_first_excluding_term_is_the_reason() {
        let table = write_table(&[
            TestFile::range(1, 10).in_partition("a"),
            TestFile::range(11, 10).in_partition("b"),
        ]);
        // Nested ANDs are split too: the terms are id >= 5, p = 'a', id < 3.
        let found = verdicts(&table, "id >= 5 AND (p = 'a' AND id < 3)");
        assert_eq!(found[0], (true, "statistics overlap".to_string()));
        // Both p = 'a' and id < 3 exclude the second file; the first of them is named.
        assert_eq!(
            found[1],
            (false, "partition p = 'a' (file has p = 'b')".to_string())
        );
        let reversed = verdicts(&table, "id < 3 AND p = 'a'");
        assert_eq!(reversed[1], (false, "id min 11 >= 3".to_string()));
    }

    #[test]
    fn a_file_without_statistics_is_kept_and_says_so() {
        let table = write_table(&[
            TestFile::range(1, 10),
            TestFile::range(11, 10).without_stats(),
        ]);
        assert_eq!(
            verdicts(&table, "id > 100"),
            vec![
                (false, "id max 10 <= 100".to_string()),
                (true, "missing statistics for id".to_string()),
            ]
        );
    }

    #[test]
    fn a_column_null_in_every_row_is_named() {
        let table = write_table(&[
            TestFile::range(1, 2).with_names(vec![None, None]),
            TestFile::range(3, 2),
        ]);
        let found = verdicts(&table, "name = 'n'");
        assert_eq!(found[0], (false, "name is NULL in every row".to_string()));
        assert_eq!(found[1], (true, "statistics overlap".to_string()));
        let nulls = verdicts(&table, "name IS NULL");
        assert_eq!(nulls[0], (true, "statistics overlap".to_string()));
        assert_eq!(nulls[1], (false, "name has no NULLs".to_string()));
    }

    #[test]
    fn terms_statistics_cannot_decide_keep_every_file() {
        let table = three_ranges();
        let pruning = prune_at(&table, "upper(name) = 'N' AND id > 25").expect("prunes");
        let terms: Vec<(&str, bool)> = pruning
            .conjuncts
            .iter()
            .map(|c| (c.text.as_str(), c.decidable))
            .collect();
        assert_eq!(terms, vec![("upper(name) = 'N'", false), ("id > 25", true)]);
        let kept: Vec<bool> = pruning.files.iter().map(|f| f.kept).collect();
        assert_eq!(kept, vec![false, false, true]);
        let alone = verdicts(&table, "upper(name) = 'N'");
        assert!(
            alone
                .iter()
                .all(|(kept, reason)| *kept
                    && reason == "statistics cannot decide upper(name) = 'N'")
        );
    }

    #[test]
    fn the_verdicts_follow_the_file_index_row_by_row() {
        let table = three_ranges();
        let index = snapshot(&table).add_actions_table(true).expect("an index");
        let pruning = prune_at(&table, "id = 12").expect("prunes");
        let batch = verdicts_batch(&pruning.files);
        for name in ["path", "size_bytes", "num_records"] {
            assert_eq!(
                batch.column_by_name(name).map(|c| c.to_data()),
                index.column_by_name(name).map(|c| c.to_data()),
                "{name}"
            );
        }
        let kept: Vec<bool> = pruning.files.iter().map(|f| f.kept).collect();
        assert_eq!(kept, vec![false, true, false]);
    }

    #[test]
    fn a_predicate_that_is_not_a_condition_is_an_error_naming_the_term() {
        let table = three_ranges();
        let unknown = prune_at(&table, "nope > 1").expect_err("unknown column");
        assert!(unknown.contains("nope"), "{unknown}");
        let syntax = prune_at(&table, "id >").expect_err("syntax");
        assert!(syntax.starts_with("cannot parse the predicate"), "{syntax}");
        let number = prune_at(&table, "id > 1 AND id + 1").expect_err("not boolean");
        assert!(
            number.starts_with("id + 1: it is Int64, not a condition"),
            "{number}"
        );
    }
}

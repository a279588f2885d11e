//! `wb_parquet_metadata('path')`: a Parquet file's footer as a table.
//!
//! One row per column chunk (row group × leaf column), in file order, each carrying the
//! file's own facts too (size, writer, row and row-group counts), so one query can group or
//! filter at either level. Only the footer is read, when the query is planned; every query
//! reads it again, so a rewritten file is never seen stale. A file without row groups has no
//! rows.
//!
//! `stats_min` and `stats_max` are the column chunk's statistics as text, rendered from the
//! column's Arrow type as DataFusion displays values (dates as dates, decimals with their
//! scale, timestamps in ISO 8601, binary as hex); a leaf whose type Arrow cannot read shows
//! its physical value. `stats_null_count` and `stats_distinct_count` are NULL when the
//! writer did not record them.
//!
//! The path is a local file (relative to the process's working directory, or a `file://`
//! URL): the function runs where the extension does, with no access to the session's object
//! stores. A missing file, a directory or a file that is not Parquet is a planning error
//! that names the path it resolved to.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Int64Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion_common::{Result, ScalarValue, plan_datafusion_err, plan_err};
use datafusion_expr::Expr;
use deltalake_core::datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use deltalake_core::datafusion::datasource::MemTable;
use deltalake_core::parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use deltalake_core::parquet::arrow::{ProjectionMask, parquet_to_arrow_schema_by_columns};
use deltalake_core::parquet::file::metadata::{
    ColumnChunkMetaData, ParquetMetaData, ParquetMetaDataReader, RowGroupMetaData,
};
use deltalake_core::parquet::file::statistics::Statistics;
use pyo3::types::PyCapsule;
use pyo3::{Bound, PyAny, PyResult, Python, pyclass, pymethods};

use crate::delta::provider::table_function_capsule;

pub const NAME: &str = "wb_parquet_metadata";
const USAGE: &str = "wb_parquet_metadata('path/to/file.parquet')";

/// The columns of the result, in order.
pub fn schema() -> SchemaRef {
    let int = |name: &str, nullable: bool| Field::new(name, DataType::Int64, nullable);
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("filename", false),
        int("file_size_bytes", false),
        text("created_by", true),
        int("format_version", false),
        int("num_row_groups", false),
        int("file_num_rows", false),
        int("row_group_id", false),
        int("row_group_num_rows", false),
        int("row_group_num_columns", false),
        int("row_group_bytes", false),
        int("row_group_compressed_bytes", false),
        int("column_id", false),
        text("path_in_schema", false),
        text("physical_type", false),
        text("compression", false),
        Field::new(
            "encodings",
            DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            false,
        ),
        int("num_values", false),
        text("stats_min", true),
        text("stats_max", true),
        int("stats_null_count", true),
        int("stats_distinct_count", true),
        int("data_page_offset", false),
        int("dictionary_page_offset", true),
        int("total_compressed_size", false),
        int("total_uncompressed_size", false),
    ]))
}

/// The local file `written` names, checked to be a file; errors name what it resolved to.
fn resolve(written: &str) -> Result<(PathBuf, u64)> {
    let local = match written.strip_prefix("file://") {
        Some(rest) => rest,
        None if written.contains("://") => {
            return plan_err!(
                "{NAME}('{written}'): only local files can be read (the function runs in the \
                 extension, without the session's object stores); copy the file locally"
            );
        }
        None => written,
    };
    let path = std::path::absolute(local).unwrap_or_else(|_| PathBuf::from(local));
    let shown = path.display();
    let metadata = match fs::metadata(&path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return plan_err!("{NAME}('{written}'): no such file: {shown}");
        }
        Err(e) => return plan_err!("{NAME}('{written}'): cannot read {shown}: {e}"),
    };
    if metadata.is_dir() {
        let examples = parquet_files_in(&path);
        let hint = if examples.is_empty() {
            "it holds no .parquet file".to_owned()
        } else {
            format!("its Parquet files include {}", examples.join(", "))
        };
        return plan_err!(
            "{NAME}('{written}'): {shown} is a directory; pass one Parquet file ({hint})"
        );
    }
    Ok((path, metadata.len()))
}

/// Up to three `.parquet` file names directly in `dir`, sorted.
fn parquet_files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.ends_with(".parquet"))
        .collect();
    names.sort();
    names.truncate(3);
    names
}

/// The footer of the Parquet file at `path`.
fn read_footer(written: &str, path: &Path) -> Result<ParquetMetaData> {
    let shown = path.display();
    let file = File::open(path)
        .map_err(|e| plan_datafusion_err!("{NAME}('{written}'): cannot open {shown}: {e}"))?;
    ParquetMetaDataReader::new()
        .parse_and_finish(&file)
        .map_err(|e| {
            plan_datafusion_err!(
                "{NAME}('{written}'): {shown} is not a readable Parquet file ({e})"
            )
        })
}

/// `i64` of a count or offset; Parquet's own are `i64` already, ours fit.
fn int(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The physical value of a statistic, for leaves whose Arrow type is unknown.
fn physical_text(statistics: &Statistics, max: bool) -> Option<String> {
    fn pick<T: ToString>(min: Option<&T>, max_value: Option<&T>, max: bool) -> Option<String> {
        if max { max_value } else { min }.map(ToString::to_string)
    }
    match statistics {
        Statistics::Boolean(s) => pick(s.min_opt(), s.max_opt(), max),
        Statistics::Int32(s) => pick(s.min_opt(), s.max_opt(), max),
        Statistics::Int64(s) => pick(s.min_opt(), s.max_opt(), max),
        Statistics::Float(s) => pick(s.min_opt(), s.max_opt(), max),
        Statistics::Double(s) => pick(s.min_opt(), s.max_opt(), max),
        Statistics::Int96(_) | Statistics::ByteArray(_) | Statistics::FixedLenByteArray(_) => {
            let bytes = if max {
                statistics.max_bytes_opt()
            } else {
                statistics.min_bytes_opt()
            }?;
            Some(match std::str::from_utf8(bytes) {
                Ok(text) if !matches!(statistics, Statistics::Int96(_)) => text.to_owned(),
                _ => bytes.iter().map(|b| format!("{b:02x}")).collect(),
            })
        }
    }
}

/// The min and max of leaf column `column` in every row group, as text (see the module docs).
fn min_max_texts(metadata: &ParquetMetaData, column: usize) -> [Vec<Option<String>>; 2] {
    let file = metadata.file_metadata();
    let schema = file.schema_descr();
    let row_groups = metadata.row_groups();
    let arrow_schema = parquet_to_arrow_schema_by_columns(
        schema,
        ProjectionMask::leaves(schema, [column]),
        file.key_value_metadata(),
    )
    .ok();
    let converter = arrow_schema
        .as_ref()
        .and_then(|arrow| leaf_field(arrow.fields().first()?))
        .and_then(|leaf| StatisticsConverter::from_column_index(column, leaf, schema).ok());
    [false, true].map(|max| {
        let arrow = converter.as_ref().and_then(|converter| {
            let values = if max {
                converter.row_group_maxes(row_groups)
            } else {
                converter.row_group_mins(row_groups)
            };
            values.ok()
        });
        let formatter = arrow
            .as_ref()
            .and_then(|a| ArrayFormatter::try_new(a.as_ref(), &FormatOptions::default()).ok());
        row_groups
            .iter()
            .enumerate()
            .map(|(g, rg)| {
                // The converter gives NULL for what it cannot read as the Arrow type.
                let logical = arrow
                    .as_ref()
                    .zip(formatter.as_ref())
                    .filter(|(a, _)| a.is_valid(g))
                    .map(|(_, f)| f.value(g).to_string());
                logical.or_else(|| {
                    let statistics = rg.column(column).statistics()?;
                    physical_text(statistics, max)
                })
            })
            .collect()
    })
}

/// The primitive field at the end of a one-leaf projection (through structs, lists, maps).
fn leaf_field(field: &Field) -> Option<&Field> {
    match field.data_type() {
        DataType::Struct(children) => leaf_field(children.first()?),
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::FixedSizeList(item, _)
        | DataType::ListView(item)
        | DataType::LargeListView(item)
        | DataType::Map(item, _) => leaf_field(item),
        _ => Some(field),
    }
}

/// One column chunk: its row group's index and metadata, its leaf column's index and metadata.
type Chunk<'a> = (usize, &'a RowGroupMetaData, usize, &'a ColumnChunkMetaData);

/// The footer of the Parquet file `written` names, one row per column chunk.
pub fn parquet_metadata(written: &str) -> Result<RecordBatch> {
    let (path, file_size) = resolve(written)?;
    let metadata = read_footer(written, &path)?;
    let file = metadata.file_metadata();
    let chunks: Vec<Chunk> = metadata
        .row_groups()
        .iter()
        .enumerate()
        .flat_map(|(g, rg)| {
            rg.columns()
                .iter()
                .enumerate()
                .map(move |(c, col)| (g, rg, c, col))
        })
        .collect();
    let min_max: Vec<_> = (0..file.schema_descr().num_columns())
        .map(|column| min_max_texts(&metadata, column))
        .collect();

    let ints = |value: &dyn Fn(&Chunk) -> Option<i64>| -> ArrayRef {
        Arc::new(chunks.iter().map(value).collect::<Int64Array>())
    };
    let texts = |value: &dyn Fn(&Chunk) -> Option<String>| -> ArrayRef {
        Arc::new(chunks.iter().map(value).collect::<StringArray>())
    };
    let file_size = i64::try_from(file_size).ok();
    let num_row_groups = int(metadata.num_row_groups());
    let mut encodings = ListBuilder::new(StringBuilder::new());
    for (_, _, _, chunk) in &chunks {
        for encoding in chunk.encodings() {
            encodings.values().append_value(encoding.to_string());
        }
        encodings.append(true);
    }
    let count = |count: Option<u64>| count.and_then(|c| i64::try_from(c).ok());
    let columns: Vec<ArrayRef> = vec![
        texts(&|_| Some(written.to_owned())),
        ints(&|_| file_size),
        texts(&|_| file.created_by().map(str::to_owned)),
        ints(&|_| Some(i64::from(file.version()))),
        ints(&|_| Some(num_row_groups)),
        ints(&|_| Some(file.num_rows())),
        ints(&|(g, ..)| Some(int(*g))),
        ints(&|(_, rg, ..)| Some(rg.num_rows())),
        ints(&|(_, rg, ..)| Some(int(rg.num_columns()))),
        ints(&|(_, rg, ..)| Some(rg.total_byte_size())),
        ints(&|(_, rg, ..)| Some(rg.compressed_size())),
        ints(&|(_, _, c, _)| Some(int(*c))),
        texts(&|(.., col)| Some(col.column_path().string())),
        texts(&|(.., col)| Some(col.column_type().to_string())),
        texts(&|(.., col)| Some(col.compression_codec().to_string())),
        Arc::new(encodings.finish()),
        ints(&|(.., col)| Some(col.num_values())),
        texts(&|(g, _, c, _)| min_max[*c][0][*g].clone()),
        texts(&|(g, _, c, _)| min_max[*c][1][*g].clone()),
        ints(&|(.., col)| count(col.statistics().and_then(Statistics::null_count_opt))),
        ints(&|(.., col)| count(col.statistics().and_then(Statistics::distinct_count_opt))),
        ints(&|(.., col)| Some(col.data_page_offset())),
        ints(&|(.., col)| col.dictionary_page_offset()),
        ints(&|(.., col)| Some(col.compressed_size())),
        ints(&|(.., col)| Some(col.uncompressed_size())),
    ];
    Ok(RecordBatch::try_new(schema(), columns)?)
}

/// The path argument: one constant string.
fn path_argument(exprs: &[Expr]) -> Result<String> {
    let [expr] = exprs else {
        return plan_err!("{USAGE}: takes one argument, got {}", exprs.len());
    };
    match expr {
        Expr::Literal(
            ScalarValue::Utf8(Some(path))
            | ScalarValue::LargeUtf8(Some(path))
            | ScalarValue::Utf8View(Some(path)),
            _,
        ) => Ok(path.clone()),
        other => plan_err!("{USAGE}: the path is a string constant; got {other}"),
    }
}

#[derive(Debug, Default)]
pub struct ParquetMetadataFn;

impl TableFunctionImpl for ParquetMetadataFn {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let written = path_argument(args.exprs())?;
        let batch = parquet_metadata(&written)?;
        Ok(Arc::new(MemTable::try_new(
            batch.schema(),
            vec![vec![batch]],
        )?))
    }
}

/// Python handle: `datafusion.udtf(ParquetMetadata(), "wb_parquet_metadata")`.
#[pyclass(name = "ParquetMetadata", module = "workbench._ext", frozen)]
#[derive(Default)]
pub struct ParquetMetadata;

#[pymethods]
impl ParquetMetadata {
    #[new]
    fn new() -> Self {
        Self
    }

    fn __datafusion_table_function__<'py>(
        &self,
        py: Python<'py>,
        session: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        table_function_capsule(py, session, Arc::new(ParquetMetadataFn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Date32Array, Int32Array};
    use arrow::datatypes::Int64Type;
    use deltalake_core::parquet::arrow::ArrowWriter;
    use deltalake_core::parquet::file::properties::WriterProperties;

    /// A fresh directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("wb-parquet-meta-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Five rows of (id INT, name STRING, day DATE) in row groups of two.
    fn write_sample(path: &Path) {
        let batch = RecordBatch::try_from_iter([
            (
                "id",
                Arc::new(Int32Array::from(vec![5, 1, 9, 3, 7])) as ArrayRef,
            ),
            (
                "name",
                Arc::new(StringArray::from(vec![
                    Some("b"),
                    None,
                    Some("a"),
                    Some("d"),
                    None,
                ])),
            ),
            (
                "day",
                Arc::new(Date32Array::from(vec![
                    19_000, 19_001, 19_002, 19_003, 19_004,
                ])),
            ),
        ])
        .unwrap();
        let properties = WriterProperties::builder()
            .set_max_row_group_row_count(Some(2))
            .build();
        let mut writer = ArrowWriter::try_new(
            File::create(path).unwrap(),
            batch.schema(),
            Some(properties),
        )
        .unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    fn ints(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
        batch
            .column_by_name(name)
            .unwrap()
            .as_primitive::<Int64Type>()
            .iter()
            .collect()
    }

    fn texts(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
        let column = batch.column_by_name(name).unwrap().as_string::<i32>();
        column.iter().map(|v| v.map(str::to_owned)).collect()
    }

    #[test]
    fn one_row_per_column_chunk_with_statistics() {
        let dir = scratch("sample");
        let path = dir.join("sample.parquet");
        write_sample(&path);
        let written = path.to_str().unwrap();
        let batch = parquet_metadata(written).unwrap();
        assert_eq!(batch.schema(), schema());
        assert_eq!(batch.num_rows(), 9);
        assert_eq!(
            ints(&batch, "row_group_id"),
            [0, 0, 0, 1, 1, 1, 2, 2, 2].map(Some)
        );
        assert_eq!(
            ints(&batch, "row_group_num_rows"),
            [2, 2, 2, 2, 2, 2, 1, 1, 1].map(Some)
        );
        assert_eq!(ints(&batch, "num_row_groups"), vec![Some(3); 9]);
        assert_eq!(ints(&batch, "file_num_rows"), vec![Some(5); 9]);
        let size = i64::try_from(fs::metadata(&path).unwrap().len()).unwrap();
        assert_eq!(ints(&batch, "file_size_bytes"), vec![Some(size); 9]);
        assert_eq!(
            texts(&batch, "path_in_schema")[..3],
            ["id", "name", "day"].map(|s| Some(s.to_owned()))
        );
        let mins = texts(&batch, "stats_min");
        let maxes = texts(&batch, "stats_max");
        assert_eq!(mins[0].as_deref(), Some("1"));
        assert_eq!(maxes[0].as_deref(), Some("5"));
        assert_eq!(mins[1].as_deref(), Some("b"));
        assert_eq!(mins[2].as_deref(), Some("2022-01-08"));
        assert_eq!(maxes[8].as_deref(), Some("2022-01-12"));
        // The last row group's name is NULL only: no min or max.
        assert_eq!((mins[7].as_deref(), maxes[7].as_deref()), (None, None));
        assert_eq!(ints(&batch, "stats_null_count")[1], Some(1));
        assert!(
            texts(&batch, "created_by")[0]
                .as_deref()
                .unwrap()
                .contains("parquet-rs")
        );
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn path_errors_are_planning_errors_naming_the_path() {
        let dir = scratch("errors");
        let missing = dir.join("missing.parquet");
        let err = parquet_metadata(missing.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no such file") && err.contains("missing.parquet"),
            "{err}"
        );

        write_sample(&dir.join("part-0.parquet"));
        let err = parquet_metadata(dir.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is a directory") && err.contains("part-0.parquet"),
            "{err}"
        );

        let text = dir.join("notes.csv");
        fs::write(&text, "a,b\n1,2\n").unwrap();
        let err = parquet_metadata(text.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a readable Parquet file"), "{err}");

        let err = parquet_metadata("s3://bucket/x.parquet")
            .unwrap_err()
            .to_string();
        assert!(err.contains("only local files"), "{err}");
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn the_argument_is_one_string_constant() {
        let path = Expr::Literal(ScalarValue::Utf8(Some("x.parquet".into())), None);
        assert_eq!(
            path_argument(std::slice::from_ref(&path)).unwrap(),
            "x.parquet"
        );
        assert!(
            path_argument(&[])
                .unwrap_err()
                .to_string()
                .contains("one argument")
        );
        let number = Expr::Literal(ScalarValue::Int64(Some(1)), None);
        assert!(
            path_argument(&[number])
                .unwrap_err()
                .to_string()
                .contains("string constant")
        );
    }
}

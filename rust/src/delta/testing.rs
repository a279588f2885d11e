//! Small Delta tables for unit tests: real Parquet files and a hand-written JSON log, so a
//! test controls every file's statistics (including a file that has none).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use deltalake_core::arrow::array::{Array, Date32Array, Int64Array, RecordBatch, StringArray};
use deltalake_core::arrow::datatypes::{DataType, Field, Schema};
use deltalake_core::arrow::util::display::array_value_to_string;
use deltalake_core::parquet::arrow::ArrowWriter;
use serde_json::{Value, json};

/// One data file: its rows, its partition value, and whether the log has its statistics.
pub struct TestFile {
    pub partition: Option<&'static str>,
    pub ids: Vec<i64>,
    /// Days since 1970-01-01.
    pub days: Vec<i32>,
    pub names: Vec<Option<&'static str>>,
    pub stats: bool,
}

impl TestFile {
    /// `n` rows with ids `first..first + n`, days `first..`, names "n<id>".
    pub fn range(first: i64, n: i64) -> Self {
        let ids: Vec<i64> = (first..first + n).collect();
        Self {
            partition: None,
            days: ids.iter().map(|&i| 18_262 + i as i32).collect(), // 2020-01-01 + id
            names: ids.iter().map(|_| Some("n")).collect(),
            ids,
            stats: true,
        }
    }

    pub fn in_partition(mut self, value: &'static str) -> Self {
        self.partition = Some(value);
        self
    }

    pub fn without_stats(mut self) -> Self {
        self.stats = false;
        self
    }

    pub fn with_names(mut self, names: Vec<Option<&'static str>>) -> Self {
        self.names = names;
        self
    }
}

/// A table in a fresh temporary folder, removed when dropped.
pub struct TestTable {
    pub dir: PathBuf,
}

impl TestTable {
    pub fn uri(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }
}

impl Drop for TestTable {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn data_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("day", DataType::Date32, true),
        Field::new("name", DataType::Utf8, true),
    ]))
}

fn column_stats(array: &dyn Array) -> (Option<Value>, Option<Value>, usize) {
    let mut shown: Vec<(String, Value)> = Vec::new();
    for row in 0..array.len() {
        if array.is_null(row) {
            continue;
        }
        let text = array_value_to_string(array, row).expect("a printable value");
        let value = match array.data_type() {
            DataType::Int64 => json!(text.parse::<i64>().expect("an integer")),
            _ => json!(text),
        };
        shown.push((text, value));
    }
    let nulls = array.null_count();
    let key = |v: &Value| match v {
        Value::Number(n) => format!("{:020}", n.as_i64().unwrap_or(0)),
        other => other.as_str().unwrap_or_default().to_string(),
    };
    shown.sort_by_key(|(_, v)| key(v));
    let min = shown.first().map(|(_, v)| v.clone());
    let max = shown.last().map(|(_, v)| v.clone());
    (min, max, nulls)
}

fn write_file(dir: &Path, relative: &str, file: &TestFile) -> (u64, Value) {
    let batch = RecordBatch::try_new(
        data_schema(),
        vec![
            Arc::new(Int64Array::from(file.ids.clone())),
            Arc::new(Date32Array::from(file.days.clone())),
            Arc::new(StringArray::from(file.names.clone())),
        ],
    )
    .expect("a test batch");
    let path = dir.join(relative);
    fs::create_dir_all(path.parent().expect("a parent")).expect("a data folder");
    let mut writer = ArrowWriter::try_new(
        fs::File::create(&path).expect("a data file"),
        data_schema(),
        None,
    )
    .expect("a Parquet writer");
    writer.write(&batch).expect("rows written");
    writer.close().expect("a closed Parquet file");
    let (mut mins, mut maxs, mut nulls) = (json!({}), json!({}), json!({}));
    for (field, array) in data_schema().fields().iter().zip(batch.columns()) {
        let (min, max, null_count) = column_stats(array.as_ref());
        if let (Some(min), Some(max)) = (min, max) {
            mins[field.name()] = min;
            maxs[field.name()] = max;
        }
        nulls[field.name()] = json!(null_count);
    }
    let stats = json!({
        "numRecords": batch.num_rows(),
        "minValues": mins,
        "maxValues": maxs,
        "nullCount": nulls,
    });
    (fs::metadata(&path).expect("written").len(), stats)
}

/// Write `files` as version 0 of a table (partitioned by `p` when any file has a partition).
pub fn write_table(files: &[TestFile]) -> TestTable {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "workbench-delta-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("_delta_log")).expect("a log folder");
    let partitioned = files.iter().any(|f| f.partition.is_some());
    let mut fields = vec![
        json!({"name": "id", "type": "long", "nullable": true, "metadata": {}}),
        json!({"name": "day", "type": "date", "nullable": true, "metadata": {}}),
        json!({"name": "name", "type": "string", "nullable": true, "metadata": {}}),
    ];
    if partitioned {
        fields.push(json!({"name": "p", "type": "string", "nullable": true, "metadata": {}}));
    }
    let schema = json!({"type": "struct", "fields": fields});
    let mut lines = vec![
        json!({"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}),
        json!({"metaData": {
            "id": "00000000-0000-0000-0000-000000000013",
            "format": {"provider": "parquet", "options": {}},
            "schemaString": schema.to_string(),
            "partitionColumns": if partitioned { vec!["p"] } else { vec![] },
            "configuration": {},
            "createdTime": 1_764_000_000_000_i64,
        }}),
    ];
    for (number, file) in files.iter().enumerate() {
        let name = format!("part-{number:05}.parquet");
        let (relative, partition_values) = match file.partition {
            Some(value) => (format!("p={value}/{name}"), json!({"p": value})),
            None => (name, json!({})),
        };
        let (size, stats) = write_file(&dir, &relative, file);
        let mut add = json!({
            "path": relative,
            "partitionValues": partition_values,
            "size": size,
            "modificationTime": 1_764_000_000_000_i64,
            "dataChange": true,
        });
        if file.stats {
            add["stats"] = json!(stats.to_string());
        }
        lines.push(json!({ "add": add }));
    }
    let log: Vec<String> = lines.iter().map(Value::to_string).collect();
    fs::write(
        dir.join("_delta_log").join("00000000000000000000.json"),
        log.join("\n") + "\n",
    )
    .expect("a commit");
    TestTable { dir }
}

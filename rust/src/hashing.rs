//! Content hashes of query results: one digest for a multiset of rows.
//!
//! A row is encoded as the canonical encoding (`crate::canonical`) of a struct
//! whose fields are the row's columns: tag 0x0C, u64 column count, then per
//! column in bytewise order of the names (stable among equal names): u64 name
//! length, UTF-8 name, the value's encoding. Values of types without a
//! canonical encoding (intervals, maps, unions, Decimal256) use the display
//! fallback (tag 0xFF), so any result can be hashed.
//!
//! Each row hashes to SHA-256("workbench.row.v1\0" || row encoding), read as a
//! 256-bit big-endian integer, and the row hashes are summed modulo 2^256. The
//! digest is SHA-256("workbench.content.v1\0" || u64 row count || the sum as
//! 32 bytes), big-endian. So row order, batch boundaries, column order, string
//! and binary layouts and integer widths do not change it; duplicates do; an
//! empty result has one digest whatever its columns.
//!
//! `content_hash` reads any Arrow C stream (`__arrow_c_stream__`) with the GIL
//! released, one batch at a time: memory follows the batch size, not the result.
//! A large batch's rows are hashed on every core (the sum does not care which
//! thread added a row).

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StructArray};
use arrow::error::ArrowError;
use arrow::ffi_stream::{ArrowArrayStreamReader, FFI_ArrowArrayStream};
use datafusion_common::Result;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyCapsuleMethods};
use sha2::{Digest, Sha256};

use crate::canonical::{Encoder, Unsupported};

pub const ROW_DOMAIN: &[u8] = b"workbench.row.v1\0";
pub const CONTENT_DOMAIN: &[u8] = b"workbench.content.v1\0";
/// Below this many rows per thread, spawning costs more than it saves.
const MIN_ROWS_PER_THREAD: usize = 2048;

/// The running state of a content hash: rows seen and the sum of their hashes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ContentHasher {
    /// The sum modulo 2^256 as two big-endian halves.
    high: u128,
    low: u128,
    rows: u64,
}

impl ContentHasher {
    /// Adds every row of `batch`; large batches are split across the cores.
    pub fn update(&mut self, batch: &RecordBatch) -> Result<()> {
        let rows: ArrayRef = Arc::new(StructArray::from(batch.clone()));
        let encoder = Encoder::new(&rows, Unsupported::Display)?;
        let count = batch.num_rows();
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(count / MIN_ROWS_PER_THREAD)
            .max(1);
        let chunk = count.div_ceil(threads);
        let partials: Vec<Self> = if threads == 1 {
            vec![Self::of_rows(&encoder, 0..count)]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..count)
                    .step_by(chunk)
                    .map(|start| {
                        let encoder = &encoder;
                        scope.spawn(move || Self::of_rows(encoder, start..count.min(start + chunk)))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|handle| handle.join().expect("a hashing thread panicked"))
                    .collect()
            })
        };
        for partial in partials {
            self.merge(&partial);
        }
        Ok(())
    }

    /// The hash state of `rows` of one batch, on its own.
    fn of_rows(encoder: &Encoder, rows: std::ops::Range<usize>) -> Self {
        let prefix = Sha256::new_with_prefix(ROW_DOMAIN);
        let mut state = Self::default();
        let mut encoding = Vec::with_capacity(256);
        for row in rows {
            encoding.clear();
            encoder.encode(row, &mut encoding);
            let digest: [u8; 32] = prefix.clone().chain_update(&encoding).finalize().into();
            state.add(&digest);
            state.rows += 1;
        }
        state
    }

    /// Adds `other`'s rows: the sum is order-free, so partial states combine.
    fn merge(&mut self, other: &Self) {
        let mut bytes = [0_u8; 32];
        bytes[..16].copy_from_slice(&other.high.to_be_bytes());
        bytes[16..].copy_from_slice(&other.low.to_be_bytes());
        self.add(&bytes);
        self.rows += other.rows;
    }

    fn add(&mut self, digest: &[u8; 32]) {
        let (high, low) = digest.split_at(16);
        let high = u128::from_be_bytes(high.try_into().expect("16 bytes"));
        let low = u128::from_be_bytes(low.try_into().expect("16 bytes"));
        let (sum, carry) = self.low.overflowing_add(low);
        self.low = sum;
        self.high = self.high.wrapping_add(high).wrapping_add(u128::from(carry));
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The digest of the rows added so far.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::new_with_prefix(CONTENT_DOMAIN)
            .chain_update(self.rows.to_be_bytes())
            .chain_update(self.high.to_be_bytes())
            .chain_update(self.low.to_be_bytes())
            .finalize()
            .into()
    }
}

/// The digest (lowercase hex) and row count of a stream of batches.
pub fn hash_batches(
    batches: impl IntoIterator<Item = std::result::Result<RecordBatch, ArrowError>>,
) -> Result<(String, u64)> {
    let mut hasher = ContentHasher::default();
    for batch in batches {
        hasher.update(&batch?)?;
    }
    let hex = hasher
        .digest()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Ok((hex, hasher.rows()))
}

/// `content_hash(source) -> (digest hex, rows)` for any object with
/// `__arrow_c_stream__`; the stream is consumed with the GIL released.
#[pyfunction]
pub fn content_hash(py: Python<'_>, source: &Bound<'_, PyAny>) -> PyResult<(String, u64)> {
    if !source.hasattr("__arrow_c_stream__")? {
        let kind = source.get_type().name()?;
        return Err(PyTypeError::new_err(format!(
            "content_hash reads an Arrow C stream; {kind} has no __arrow_c_stream__"
        )));
    }
    let capsule = source.call_method0("__arrow_c_stream__")?;
    let capsule = capsule.cast::<PyCapsule>()?;
    let pointer = capsule.pointer_checked(Some(c"arrow_array_stream"))?;
    // SAFETY: the capsule named "arrow_array_stream" holds an FFI_ArrowArrayStream
    // (the Arrow PyCapsule protocol); `from_raw` moves it out and leaves a released
    // stream behind, so the capsule's destructor does not release it twice.
    let reader = unsafe {
        ArrowArrayStreamReader::from_raw(pointer.as_ptr().cast::<FFI_ArrowArrayStream>())
    }
    .map_err(|err| PyRuntimeError::new_err(format!("not a readable Arrow stream: {err}")))?;
    py.detach(move || hash_batches(reader))
        .map_err(|err| PyRuntimeError::new_err(format!("content hash failed: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, Int64Array, LargeStringArray, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).unwrap()
    }

    fn digest_of(batches: Vec<RecordBatch>) -> (String, u64) {
        hash_batches(batches.into_iter().map(Ok)).unwrap()
    }

    fn sha256(parts: &[&[u8]]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        hasher.finalize().into()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn one_row_digest_follows_the_documented_encoding() {
        // {"k": 1}: struct tag, 1 field, name "k", int tag, i128 1.
        let mut row = vec![
            0x0c, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, b'k', 0x02,
        ];
        row.extend_from_slice(&1_i128.to_be_bytes());
        let row_hash = sha256(&[ROW_DOMAIN, &row]);
        let expected = sha256(&[CONTENT_DOMAIN, &1_u64.to_be_bytes(), &row_hash]);
        let one: ArrayRef = Arc::new(Int64Array::from(vec![1]));
        assert_eq!(
            digest_of(vec![batch(vec![("k", one)])]),
            (hex(&expected), 1)
        );
    }

    #[test]
    fn row_order_batches_widths_and_layouts_do_not_matter() {
        let a = batch(vec![
            ("n", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
            ("s", Arc::new(StringArray::from(vec!["x", "y", "z"]))),
        ]);
        let first = batch(vec![
            ("s", Arc::new(LargeStringArray::from(vec!["z"])) as ArrayRef),
            ("n", Arc::new(Int32Array::from(vec![3]))),
        ]);
        let rest = batch(vec![
            (
                "s",
                Arc::new(LargeStringArray::from(vec!["y", "x"])) as ArrayRef,
            ),
            ("n", Arc::new(Int32Array::from(vec![2, 1]))),
        ]);
        assert_eq!(digest_of(vec![a]), digest_of(vec![first, rest]));
    }

    #[test]
    fn duplicates_count() {
        let one = batch(vec![("n", Arc::new(Int64Array::from(vec![7])) as ArrayRef)]);
        let two = batch(vec![(
            "n",
            Arc::new(Int64Array::from(vec![7, 7])) as ArrayRef,
        )]);
        assert_ne!(digest_of(vec![one.clone()]), digest_of(vec![two.clone()]));
        assert_eq!(digest_of(vec![one.clone(), one]), digest_of(vec![two]));
    }

    #[test]
    fn a_batch_split_across_threads_hashes_like_small_batches() {
        let values: Vec<i64> = (0..20_000).collect();
        let whole = batch(vec![(
            "n",
            Arc::new(Int64Array::from(values.clone())) as ArrayRef,
        )]);
        let small: Vec<RecordBatch> = values
            .chunks(100)
            .map(|chunk| {
                batch(vec![(
                    "n",
                    Arc::new(Int64Array::from(chunk.to_vec())) as ArrayRef,
                )])
            })
            .collect();
        assert_eq!(digest_of(vec![whole]), digest_of(small));
    }

    #[test]
    fn sum_carries_across_the_halves_and_wraps_at_2_pow_256() {
        let mut hasher = ContentHasher::default();
        let mut max = [0xff_u8; 32];
        hasher.add(&max);
        max = [0; 32];
        max[31] = 1;
        hasher.add(&max);
        assert_eq!((hasher.high, hasher.low), (0, 0));
        let mut low_max = [0_u8; 32];
        low_max[16..].fill(0xff);
        hasher.add(&low_max);
        hasher.add(&max);
        assert_eq!((hasher.high, hasher.low), (1, 0));
    }

    #[test]
    fn empty_result_digest_ignores_columns() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, true)]));
        let empty = RecordBatch::new_empty(schema);
        let expected = sha256(&[CONTENT_DOMAIN, &0_u64.to_be_bytes(), &[0; 32]]);
        assert_eq!(digest_of(vec![empty]), (hex(&expected), 0));
        assert_eq!(digest_of(vec![]), (hex(&expected), 0));
    }
}

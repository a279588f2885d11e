//! `stable_id(VARIADIC any) -> Utf8`: 32 hex digits (128 bits) of
//! SHA-256("workbench.stable_id.v1\0" || canonical encoding of all arguments).

use std::sync::Arc;

use arrow::array::{ArrayRef, StringBuilder};
use arrow::datatypes::DataType;
use datafusion_common::Result;
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion_ffi::udf::FFI_ScalarUDF;
use pyo3::types::PyCapsule;
use pyo3::{Bound, PyResult, Python, pyclass, pymethods};

use super::{digest, push_hex};
use crate::canonical::{Encoder, Unsupported, check_supported};

pub const NAME: &str = "stable_id";
const DOMAIN: &[u8] = b"workbench.stable_id.v1\0";
pub(crate) const ID_BYTES: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StableIdUdf {
    signature: Signature,
}

impl Default for StableIdUdf {
    fn default() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

/// One encoder per argument column; a type without a canonical encoding is refused.
pub(crate) fn encoders(columns: &[ArrayRef]) -> Result<Vec<Encoder>> {
    columns
        .iter()
        .map(|column| Encoder::new(column, Unsupported::Refuse))
        .collect()
}

/// The id of row `row` as bytes (`stable_id` prints them as hex); `encoding` is scratch.
pub(crate) fn row_id(encoders: &[Encoder], row: usize, encoding: &mut Vec<u8>) -> [u8; ID_BYTES] {
    encoding.clear();
    for encoder in encoders {
        encoder.encode(row, encoding);
    }
    let mut id = [0; ID_BYTES];
    id.copy_from_slice(&digest(DOMAIN, encoding)[..ID_BYTES]);
    id
}

/// The id of each row of `columns` (all of one length).
pub fn stable_ids(columns: &[ArrayRef], rows: usize) -> Result<ArrayRef> {
    let encoders = encoders(columns)?;
    let mut builder = StringBuilder::with_capacity(rows, rows * ID_BYTES * 2);
    let mut encoding = Vec::with_capacity(64);
    let mut text = String::with_capacity(ID_BYTES * 2);
    for row in 0..rows {
        text.clear();
        push_hex(&mut text, &row_id(&encoders, row, &mut encoding));
        builder.append_value(&text);
    }
    Ok(Arc::new(builder.finish()))
}

impl ScalarUDFImpl for StableIdUdf {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        for (index, data_type) in arg_types.iter().enumerate() {
            check_supported(NAME, index + 1, data_type)?;
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let columns = ColumnarValue::values_to_arrays(&args.args)?;
        Ok(ColumnarValue::Array(stable_ids(
            &columns,
            args.number_rows,
        )?))
    }
}

/// Python handle: `datafusion.udf(StableId())` or `ctx.register_udf(...)`.
#[pyclass(name = "StableId", module = "workbench._ext", frozen)]
#[derive(Default)]
pub struct StableId;

#[pymethods]
impl StableId {
    #[new]
    fn new() -> Self {
        Self
    }

    fn __datafusion_scalar_udf__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let udf = Arc::new(ScalarUDF::from(StableIdUdf::default()));
        PyCapsule::new_with_value(py, FFI_ScalarUDF::from(udf), c"datafusion_scalar_udf")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int64Array, StringArray};

    #[test]
    fn ids_are_32_hex_digits_and_null_aware() {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![Some("a"), Some("a")])),
            Arc::new(Int64Array::from(vec![None, Some(0)])),
        ];
        let ids = stable_ids(&columns, 2).unwrap();
        let ids = ids
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        assert_eq!(ids.value(0).len(), 32);
        assert!(ids.value(0).bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(ids.value(0), ids.value(1));
    }

    #[test]
    fn argument_boundaries_matter() {
        let split = |a: &str, b: &str| {
            let columns: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from(vec![a])),
                Arc::new(StringArray::from(vec![b])),
            ];
            let ids = stable_ids(&columns, 1).unwrap();
            ids.as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .value(0)
                .to_owned()
        };
        assert_ne!(split("ab", "c"), split("a", "bc"));
    }

    #[test]
    fn known_vector_matches_documented_algorithm() {
        // stable_id('a', 1, NULL): the Python reference in workbench/canonical.py
        // computes the same digest; tests/test_udfs.py checks it end to end.
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["a"])),
            Arc::new(Int64Array::from(vec![1])),
            Arc::new(arrow::array::NullArray::new(1)),
        ];
        let ids = stable_ids(&columns, 1).unwrap();
        let id = ids
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .value(0)
            .to_owned();
        let mut encoding = vec![0x04, 0, 0, 0, 0, 0, 0, 0, 1, b'a', 0x02];
        encoding.extend_from_slice(&1_i128.to_be_bytes());
        encoding.push(0x00);
        let mut expected = String::new();
        push_hex(&mut expected, &digest(DOMAIN, &encoding)[..ID_BYTES]);
        assert_eq!(id, expected);
    }
}

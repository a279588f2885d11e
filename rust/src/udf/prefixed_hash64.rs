//! `prefixed_hash64(prefix Utf8, value any) -> Utf8`: `prefix:` followed by 16
//! hex digits, the first 8 bytes of SHA-256("workbench.hash64.v1\0" ||
//! canonical encoding of value). A NULL prefix gives NULL; a NULL value hashes
//! as the NULL tag.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion_common::{Result, plan_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion_ffi::udf::FFI_ScalarUDF;
use pyo3::types::PyCapsule;
use pyo3::{Bound, PyResult, Python, pyclass, pymethods};

use super::{digest, push_hex};
use crate::canonical::{Encoder, Unsupported, check_supported};

pub const NAME: &str = "prefixed_hash64";
const DOMAIN: &[u8] = b"workbench.hash64.v1\0";
const HASH_BYTES: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PrefixedHash64Udf {
    signature: Signature,
}

impl Default for PrefixedHash64Udf {
    fn default() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

/// `prefix:hash` for each row; `prefixes` must be a string array.
pub fn prefixed_hashes(prefixes: &ArrayRef, values: &ArrayRef, rows: usize) -> Result<ArrayRef> {
    let prefixes = cast(prefixes, &DataType::Utf8)?;
    let prefixes = prefixes.as_string::<i32>();
    let encoder = Encoder::new(values, Unsupported::Refuse)?;
    let mut builder = StringBuilder::with_capacity(rows, rows * (HASH_BYTES * 2 + 8));
    let mut encoding = Vec::with_capacity(32);
    let mut text = String::with_capacity(64);
    for row in 0..rows {
        if prefixes.is_null(row) {
            builder.append_null();
            continue;
        }
        encoding.clear();
        encoder.encode(row, &mut encoding);
        text.clear();
        text.push_str(prefixes.value(row));
        text.push(':');
        push_hex(&mut text, &digest(DOMAIN, &encoding)[..HASH_BYTES]);
        builder.append_value(&text);
    }
    Ok(Arc::new(builder.finish()))
}

impl ScalarUDFImpl for PrefixedHash64Udf {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match &arg_types[0] {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {}
            other => {
                return plan_err!(
                    "{NAME}: the prefix (argument 1) must be a string, got {other}; \
                     write it as a quoted literal such as 'file'"
                );
            }
        }
        check_supported(NAME, 2, &arg_types[1])?;
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let columns = ColumnarValue::values_to_arrays(&args.args)?;
        let hashes = prefixed_hashes(&columns[0], &columns[1], args.number_rows)?;
        Ok(ColumnarValue::Array(hashes))
    }
}

/// Python handle: `datafusion.udf(PrefixedHash64())` or `ctx.register_udf(...)`.
#[pyclass(name = "PrefixedHash64", module = "workbench._ext", frozen)]
#[derive(Default)]
pub struct PrefixedHash64;

#[pymethods]
impl PrefixedHash64 {
    #[new]
    fn new() -> Self {
        Self
    }

    fn __datafusion_scalar_udf__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let udf = Arc::new(ScalarUDF::from(PrefixedHash64Udf::default()));
        PyCapsule::new_with_value(py, FFI_ScalarUDF::from(udf), c"datafusion_scalar_udf")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    #[test]
    fn output_is_prefix_colon_16_hex_and_null_prefix_is_null() {
        let prefixes: ArrayRef = Arc::new(StringArray::from(vec![Some("file"), None]));
        let values: ArrayRef = Arc::new(Int64Array::from(vec![42, 42]));
        let out = prefixed_hashes(&prefixes, &values, 2).unwrap();
        let out = out.as_string::<i32>();
        let (prefix, hash) = out.value(0).split_once(':').unwrap();
        assert_eq!(prefix, "file");
        assert_eq!(hash.len(), 16);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(out.is_null(1));
    }

    #[test]
    fn non_string_prefix_is_refused_at_planning() {
        let err = PrefixedHash64Udf::default()
            .return_type(&[DataType::Int64, DataType::Int64])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("prefix (argument 1) must be a string"),
            "{err}"
        );
    }
}

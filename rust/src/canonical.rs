//! Canonical encoding of SQL values, version 1.
//!
//! Both hash UDFs hash this byte string, so their outputs depend only on the
//! values, never on the process, platform, Arrow layout or workbench version.
//! Each value is a one-byte type-family tag followed by a fixed payload:
//!
//! | family    | tag  | payload                                                        |
//! |-----------|------|----------------------------------------------------------------|
//! | NULL      | 0x00 | none                                                           |
//! | boolean   | 0x01 | 0x00 or 0x01                                                   |
//! | integer   | 0x02 | i128 big-endian (every signed and unsigned width)             |
//! | float     | 0x03 | f64 bits big-endian; -0.0 as +0.0, every NaN as 0x7ff8..00     |
//! | string    | 0x04 | u64 big-endian byte length, then UTF-8 bytes (all string types)|
//! | binary    | 0x05 | u64 big-endian byte length, then bytes (all binary types)      |
//! | decimal   | 0x06 | scale as i8, then unscaled i128 big-endian, trailing zeros     |
//! |           |      | stripped while scale > 0 (so 1.50 and 1.5 encode alike)        |
//! | date      | 0x07 | days since 1970-01-01 as i64 big-endian (date32 and date64)    |
//! | timestamp | 0x08 | nanoseconds since the epoch, UTC, as i128 big-endian           |
//!
//! Dictionary arrays encode as their values. Widths and string layouts share a
//! family on purpose: widening a column from INT to BIGINT, or reading strings
//! as `Utf8View`, must not change the ids derived from it.
//! `workbench/canonical.py` is the reference implementation in Python.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal128Type, Float16Type, Float32Type, Float64Type,
    Int8Type, Int16Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use datafusion_common::{DataFusionError, Result, plan_err};

pub const TAG_NULL: u8 = 0x00;
pub const TAG_BOOL: u8 = 0x01;
pub const TAG_INT: u8 = 0x02;
pub const TAG_FLOAT: u8 = 0x03;
pub const TAG_STRING: u8 = 0x04;
pub const TAG_BINARY: u8 = 0x05;
pub const TAG_DECIMAL: u8 = 0x06;
pub const TAG_DATE: u8 = 0x07;
pub const TAG_TIMESTAMP: u8 = 0x08;

const MILLIS_PER_DAY: i64 = 86_400_000;

/// Whether `data_type` has a canonical encoding; the error names the type and the fix.
pub fn check_supported(function: &str, position: usize, data_type: &DataType) -> Result<()> {
    let inner = match data_type {
        DataType::Dictionary(_, value) => value.as_ref(),
        other => other,
    };
    match inner {
        DataType::Null
        | DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_)
        | DataType::Decimal128(_, _)
        | DataType::Date32
        | DataType::Date64
        | DataType::Timestamp(_, _) => Ok(()),
        other => plan_err!(
            "{function}: argument {position} has type {other}, which has no canonical encoding; \
             cast it to VARCHAR (or a supported type: integers, floats, booleans, strings, \
             binary, DECIMAL(p,s) up to 38 digits, dates, timestamps)"
        ),
    }
}

/// Appends the canonical encoding of `array[row]` to `out`.
pub struct Encoder {
    array: ArrayRef,
}

impl Encoder {
    pub fn new(array: &ArrayRef) -> Result<Self> {
        let array = match array.data_type() {
            DataType::Dictionary(_, value) => cast(array, value).map_err(DataFusionError::from)?,
            _ => Arc::clone(array),
        };
        check_supported("canonical encoding", 1, array.data_type())?;
        Ok(Self { array })
    }

    pub fn encode(&self, row: usize, out: &mut Vec<u8>) {
        let a = &self.array;
        if a.is_null(row) {
            out.push(TAG_NULL);
            return;
        }
        match a.data_type() {
            DataType::Null => out.push(TAG_NULL),
            DataType::Boolean => {
                out.push(TAG_BOOL);
                out.push(u8::from(a.as_boolean().value(row)));
            }
            DataType::Int8 => int(out, a.as_primitive::<Int8Type>().value(row).into()),
            DataType::Int16 => int(out, a.as_primitive::<Int16Type>().value(row).into()),
            DataType::Int32 => int(out, a.as_primitive::<Int32Type>().value(row).into()),
            DataType::Int64 => int(out, a.as_primitive::<Int64Type>().value(row).into()),
            DataType::UInt8 => int(out, a.as_primitive::<UInt8Type>().value(row).into()),
            DataType::UInt16 => int(out, a.as_primitive::<UInt16Type>().value(row).into()),
            DataType::UInt32 => int(out, a.as_primitive::<UInt32Type>().value(row).into()),
            DataType::UInt64 => int(out, a.as_primitive::<UInt64Type>().value(row).into()),
            DataType::Float16 => float(out, a.as_primitive::<Float16Type>().value(row).to_f64()),
            DataType::Float32 => float(out, a.as_primitive::<Float32Type>().value(row).into()),
            DataType::Float64 => float(out, a.as_primitive::<Float64Type>().value(row)),
            DataType::Utf8 => bytes(out, TAG_STRING, a.as_string::<i32>().value(row).as_bytes()),
            DataType::LargeUtf8 => {
                bytes(out, TAG_STRING, a.as_string::<i64>().value(row).as_bytes());
            }
            DataType::Utf8View => bytes(out, TAG_STRING, a.as_string_view().value(row).as_bytes()),
            DataType::Binary => bytes(out, TAG_BINARY, a.as_binary::<i32>().value(row)),
            DataType::LargeBinary => bytes(out, TAG_BINARY, a.as_binary::<i64>().value(row)),
            DataType::BinaryView => bytes(out, TAG_BINARY, a.as_binary_view().value(row)),
            DataType::FixedSizeBinary(_) => {
                bytes(out, TAG_BINARY, a.as_fixed_size_binary().value(row));
            }
            DataType::Decimal128(_, scale) => {
                decimal(out, a.as_primitive::<Decimal128Type>().value(row), *scale);
            }
            DataType::Date32 => {
                date(out, i64::from(a.as_primitive::<Date32Type>().value(row)));
            }
            DataType::Date64 => {
                let millis = a.as_primitive::<Date64Type>().value(row);
                date(out, millis.div_euclid(MILLIS_PER_DAY));
            }
            DataType::Timestamp(unit, _) => {
                let (value, nanos_per_unit) = match unit {
                    TimeUnit::Second => (
                        a.as_primitive::<TimestampSecondType>().value(row),
                        1_000_000_000,
                    ),
                    TimeUnit::Millisecond => (
                        a.as_primitive::<TimestampMillisecondType>().value(row),
                        1_000_000,
                    ),
                    TimeUnit::Microsecond => (
                        a.as_primitive::<TimestampMicrosecondType>().value(row),
                        1_000,
                    ),
                    TimeUnit::Nanosecond => {
                        (a.as_primitive::<TimestampNanosecondType>().value(row), 1)
                    }
                };
                out.push(TAG_TIMESTAMP);
                out.extend_from_slice(&(i128::from(value) * nanos_per_unit).to_be_bytes());
            }
            // `Encoder::new` refused every other type.
            _ => unreachable!("unsupported type passed check_supported"),
        }
    }
}

fn int(out: &mut Vec<u8>, value: i128) {
    out.push(TAG_INT);
    out.extend_from_slice(&value.to_be_bytes());
}

fn float(out: &mut Vec<u8>, value: f64) {
    let bits = if value.is_nan() {
        0x7ff8_0000_0000_0000_u64
    } else if value == 0.0 {
        0
    } else {
        value.to_bits()
    };
    out.push(TAG_FLOAT);
    out.extend_from_slice(&bits.to_be_bytes());
}

fn bytes(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(value.len() as u64).to_be_bytes());
    out.extend_from_slice(value);
}

fn decimal(out: &mut Vec<u8>, mut unscaled: i128, mut scale: i8) {
    while scale > 0 && unscaled % 10 == 0 {
        unscaled /= 10;
        scale -= 1;
    }
    if unscaled == 0 {
        scale = 0;
    }
    out.push(TAG_DECIMAL);
    out.push(scale.to_be_bytes()[0]);
    out.extend_from_slice(&unscaled.to_be_bytes());
}

fn date(out: &mut Vec<u8>, days: i64) {
    out.push(TAG_DATE);
    out.extend_from_slice(&days.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        Decimal128Array, Float64Array, Int32Array, Int64Array, StringArray, StringViewArray,
    };

    fn encode_one(array: ArrayRef) -> Vec<u8> {
        let mut out = Vec::new();
        Encoder::new(&array).unwrap().encode(0, &mut out);
        out
    }

    #[test]
    fn integer_widths_share_one_encoding() {
        let narrow = encode_one(Arc::new(Int32Array::from(vec![-7])));
        let wide = encode_one(Arc::new(Int64Array::from(vec![-7])));
        assert_eq!(narrow, wide);
        assert_eq!(narrow[0], TAG_INT);
        assert_eq!(&narrow[1..], &(-7_i128).to_be_bytes());
    }

    #[test]
    fn string_layouts_share_one_encoding_with_length_prefix() {
        let utf8 = encode_one(Arc::new(StringArray::from(vec!["ab"])));
        let view = encode_one(Arc::new(StringViewArray::from(vec!["ab"])));
        assert_eq!(utf8, view);
        assert_eq!(utf8, [TAG_STRING, 0, 0, 0, 0, 0, 0, 0, 2, b'a', b'b']);
    }

    #[test]
    fn null_is_a_tag_of_its_own() {
        let array: ArrayRef = Arc::new(Int64Array::from(vec![None, Some(0)]));
        let encoder = Encoder::new(&array).unwrap();
        let (mut null, mut zero) = (Vec::new(), Vec::new());
        encoder.encode(0, &mut null);
        encoder.encode(1, &mut zero);
        assert_eq!(null, [TAG_NULL]);
        assert_ne!(null, zero);
    }

    #[test]
    fn float_zero_signs_and_nans_are_canonical() {
        let values = Float64Array::from(vec![0.0, -0.0, f64::NAN, -f64::NAN]);
        let array: ArrayRef = Arc::new(values);
        let encoder = Encoder::new(&array).unwrap();
        let encoded: Vec<Vec<u8>> = (0..4)
            .map(|row| {
                let mut out = Vec::new();
                encoder.encode(row, &mut out);
                out
            })
            .collect();
        assert_eq!(encoded[0], encoded[1]);
        assert_eq!(encoded[2], encoded[3]);
        assert_ne!(encoded[0], encoded[2]);
    }

    #[test]
    fn decimal_trailing_zeros_do_not_matter() {
        let a = Decimal128Array::from(vec![150])
            .with_precision_and_scale(10, 2)
            .unwrap();
        let b = Decimal128Array::from(vec![15])
            .with_precision_and_scale(10, 1)
            .unwrap();
        assert_eq!(encode_one(Arc::new(a)), encode_one(Arc::new(b)));
    }

    #[test]
    fn unsupported_types_name_the_argument_and_the_fix() {
        let err = check_supported("stable_id", 2, &DataType::Time32(TimeUnit::Second))
            .unwrap_err()
            .to_string();
        assert!(err.contains("argument 2"), "{err}");
        assert!(err.contains("cast it to VARCHAR"), "{err}");
    }
}

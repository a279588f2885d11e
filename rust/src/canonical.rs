//! Canonical encoding of SQL values, version 1.
//!
//! Both hash UDFs and the content hash (`crate::hashing`) hash this byte
//! string, so their outputs depend only on the values, never on the process,
//! platform, Arrow layout or workbench version. Each value is a one-byte
//! type-family tag followed by a payload, big-endian throughout:
//!
//! | family      | tag  | payload                                                      |
//! |-------------|------|--------------------------------------------------------------|
//! | NULL        | 0x00 | none                                                         |
//! | boolean     | 0x01 | 0x00 or 0x01                                                 |
//! | integer     | 0x02 | i128 (every signed and unsigned width)                       |
//! | float       | 0x03 | f64 bits; -0.0 as +0.0, every NaN as 0x7ff8000000000000      |
//! | string      | 0x04 | u64 byte length, UTF-8 bytes (Utf8, LargeUtf8, Utf8View)     |
//! | binary      | 0x05 | u64 byte length, bytes (all binary layouts)                  |
//! | decimal     | 0x06 | i8 scale, i128 unscaled, normalised (see below)              |
//! | date        | 0x07 | i64 days since 1970-01-01 (Date64: floor of ms / 86400000)   |
//! | timestamp   | 0x08 | i128 nanoseconds since the epoch; the time zone is ignored   |
//! | time of day | 0x09 | i128 nanoseconds since midnight (Time32, Time64)             |
//! | duration    | 0x0A | i128 nanoseconds (Duration of any unit)                      |
//! | list        | 0x0B | u64 element count, then each element's encoding              |
//! | struct      | 0x0C | u64 field count, then per field sorted by name (bytewise):   |
//! |             |      | u64 name length, UTF-8 name, the value's encoding            |
//!
//! Decimals (Decimal32/64/128) are normalised before encoding: a negative
//! scale is brought to 0 by multiplying the unscaled value (unscaled 123 at
//! scale -2 is 12300 at scale 0); then trailing zeros are stripped while the
//! scale is above 0 (1.50 is 1.5); zero has scale 0. A decimal type whose
//! normalised values could pass 38 digits (precision - scale > 38) is refused.
//!
//! Dictionary and run-end encoded arrays encode as their values. Widths and
//! layouts share a family on purpose: widening a column from INT to BIGINT,
//! or reading strings as `Utf8View`, must not change the ids derived from it.
//! Every encoding is self-delimiting, so concatenations (several arguments,
//! list elements, struct fields) are unambiguous.
//!
//! Types outside this table (intervals, maps, unions, Decimal256) are refused
//! by [`check_supported`] with the fix. Content hashes must cover any result,
//! so [`Unsupported::Display`] encodes such values as tag 0xFF, u64 length,
//! and Arrow's display string of the value: deterministic for one Arrow
//! version, and never used by the UDFs.
//!
//! `workbench/canonical.py` is the reference implementation in Python;
//! `tests/fixtures/canonical_v1.json` pins the encoding with golden vectors.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, ArrowPrimitiveType, AsArray, OffsetSizeTrait};
use arrow::buffer::NullBuffer;
use arrow::compute::{cast, take};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal32Type, Decimal64Type, Decimal128Type,
    DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType, DurationSecondType,
    Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    Time32MillisecondType, Time32SecondType, Time64MicrosecondType, Time64NanosecondType, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion_common::{DataFusionError, Result, exec_err, plan_err};

pub const TAG_NULL: u8 = 0x00;
pub const TAG_BOOL: u8 = 0x01;
pub const TAG_INT: u8 = 0x02;
pub const TAG_FLOAT: u8 = 0x03;
pub const TAG_STRING: u8 = 0x04;
pub const TAG_BINARY: u8 = 0x05;
pub const TAG_DECIMAL: u8 = 0x06;
pub const TAG_DATE: u8 = 0x07;
pub const TAG_TIMESTAMP: u8 = 0x08;
pub const TAG_TIME: u8 = 0x09;
pub const TAG_DURATION: u8 = 0x0A;
pub const TAG_LIST: u8 = 0x0B;
pub const TAG_STRUCT: u8 = 0x0C;
/// Not part of the canonical encoding: content hashes only (see the module docs).
pub const TAG_DISPLAY: u8 = 0xFF;

const MILLIS_PER_DAY: i64 = 86_400_000;
/// Digits an i128 always holds: every normalised decimal must fit.
const MAX_DECIMAL_DIGITS: i16 = 38;

/// What an [`Encoder`] does with a type that has no canonical encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsupported {
    /// Fail: the UDFs, whose arguments [`check_supported`] already checked at planning.
    Refuse,
    /// Encode Arrow's display string of the value under [`TAG_DISPLAY`]: content hashes.
    Display,
}

/// The innermost part of `data_type` that has no canonical encoding, and the fix.
fn unsupported(data_type: &DataType) -> Option<(&DataType, &'static str)> {
    match data_type {
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
        | DataType::Date32
        | DataType::Date64
        | DataType::Timestamp(_, _)
        | DataType::Time32(TimeUnit::Second | TimeUnit::Millisecond)
        | DataType::Time64(TimeUnit::Microsecond | TimeUnit::Nanosecond)
        | DataType::Duration(_) => None,
        DataType::Decimal32(precision, scale)
        | DataType::Decimal64(precision, scale)
        | DataType::Decimal128(precision, scale) => {
            let digits = i16::from(*precision) - i16::from(*scale);
            (digits > MAX_DECIMAL_DIGITS).then_some((
                data_type,
                "its values can pass 38 digits at scale 0; cast it to DECIMAL(38, 0) \
                 if they fit, or to VARCHAR",
            ))
        }
        DataType::Dictionary(_, value) => unsupported(value),
        DataType::RunEndEncoded(_, value)
        | DataType::List(value)
        | DataType::LargeList(value)
        | DataType::ListView(value)
        | DataType::LargeListView(value)
        | DataType::FixedSizeList(value, _) => unsupported(value.data_type()),
        DataType::Struct(fields) => fields.iter().find_map(|f| unsupported(f.data_type())),
        DataType::Map(_, _) => Some((
            data_type,
            "hash map_entries(...) instead (a list of key/value structs)",
        )),
        DataType::Decimal256(_, _) => Some((
            data_type,
            "cast it to DECIMAL(38, s) if its values fit, or to VARCHAR",
        )),
        _ => Some((data_type, "cast it to VARCHAR")),
    }
}

/// Whether `data_type` has a canonical encoding; the error names the argument,
/// the type (and the part of it at fault) and the fix.
pub fn check_supported(function: &str, position: usize, data_type: &DataType) -> Result<()> {
    match unsupported(data_type) {
        None => Ok(()),
        Some((part, fix)) if part == data_type => plan_err!(
            "{function}: argument {position} has type {data_type}, which has no canonical \
             encoding; {fix}"
        ),
        Some((part, fix)) => plan_err!(
            "{function}: argument {position} has type {data_type}, whose part {part} has no \
             canonical encoding; {fix}"
        ),
    }
}

/// Appends the encoding of one valid (non-NULL) value, by row index.
type EncodeValue = Box<dyn Fn(usize, &mut Vec<u8>) + Send + Sync>;

/// Appends the canonical encoding of `array[row]` to a buffer.
///
/// Built once per array (a batch's column): the type is resolved here, so
/// encoding a row is one indirect call per value, plus one per nested value.
pub struct Encoder {
    nulls: Option<NullBuffer>,
    value: EncodeValue,
}

impl Encoder {
    pub fn new(array: &ArrayRef, unsupported_types: Unsupported) -> Result<Self> {
        let array = match array.data_type() {
            DataType::Dictionary(_, _) => {
                let dictionary = array.as_any_dictionary();
                take(dictionary.values().as_ref(), dictionary.keys(), None)?
            }
            DataType::RunEndEncoded(_, value) => cast(array, value.data_type())?,
            _ => Arc::clone(array),
        };
        let value = match (value_encoder(&array, unsupported_types)?, unsupported_types) {
            (Some(value), _) => value,
            (None, Unsupported::Display) => display(&array)?,
            (None, Unsupported::Refuse) => {
                check_supported("canonical encoding", 1, array.data_type())?;
                return exec_err!("no canonical encoding for {}", array.data_type());
            }
        };
        Ok(Self {
            nulls: array.logical_nulls(),
            value,
        })
    }

    pub fn encode(&self, row: usize, out: &mut Vec<u8>) {
        if self.nulls.as_ref().is_some_and(|nulls| nulls.is_null(row)) {
            out.push(TAG_NULL);
        } else {
            (self.value)(row, out);
        }
    }
}

/// The encoder of `array`'s valid values, or None if its type has no canonical encoding.
fn value_encoder(array: &ArrayRef, unsupported_types: Unsupported) -> Result<Option<EncodeValue>> {
    let a = array;
    let encoder: EncodeValue = match a.data_type() {
        DataType::Null => Box::new(|_, out| out.push(TAG_NULL)),
        DataType::Boolean => {
            let values = a.as_boolean().clone();
            Box::new(move |row, out| {
                out.push(TAG_BOOL);
                out.push(u8::from(values.value(row)));
            })
        }
        DataType::Int8 => primitive::<Int8Type>(a, |v, out| int(out, v.into())),
        DataType::Int16 => primitive::<Int16Type>(a, |v, out| int(out, v.into())),
        DataType::Int32 => primitive::<Int32Type>(a, |v, out| int(out, v.into())),
        DataType::Int64 => primitive::<Int64Type>(a, |v, out| int(out, v.into())),
        DataType::UInt8 => primitive::<UInt8Type>(a, |v, out| int(out, v.into())),
        DataType::UInt16 => primitive::<UInt16Type>(a, |v, out| int(out, v.into())),
        DataType::UInt32 => primitive::<UInt32Type>(a, |v, out| int(out, v.into())),
        DataType::UInt64 => primitive::<UInt64Type>(a, |v, out| int(out, v.into())),
        DataType::Float16 => primitive::<Float16Type>(a, |v, out| float(out, v.to_f64())),
        DataType::Float32 => primitive::<Float32Type>(a, |v, out| float(out, v.into())),
        DataType::Float64 => primitive::<Float64Type>(a, |v, out| float(out, v)),
        DataType::Utf8 => {
            let values = a.as_string::<i32>().clone();
            Box::new(move |row, out| bytes(out, TAG_STRING, values.value(row).as_bytes()))
        }
        DataType::LargeUtf8 => {
            let values = a.as_string::<i64>().clone();
            Box::new(move |row, out| bytes(out, TAG_STRING, values.value(row).as_bytes()))
        }
        DataType::Utf8View => {
            let values = a.as_string_view().clone();
            Box::new(move |row, out| bytes(out, TAG_STRING, values.value(row).as_bytes()))
        }
        DataType::Binary => {
            let values = a.as_binary::<i32>().clone();
            Box::new(move |row, out| bytes(out, TAG_BINARY, values.value(row)))
        }
        DataType::LargeBinary => {
            let values = a.as_binary::<i64>().clone();
            Box::new(move |row, out| bytes(out, TAG_BINARY, values.value(row)))
        }
        DataType::BinaryView => {
            let values = a.as_binary_view().clone();
            Box::new(move |row, out| bytes(out, TAG_BINARY, values.value(row)))
        }
        DataType::FixedSizeBinary(_) => {
            let values = a.as_fixed_size_binary().clone();
            Box::new(move |row, out| bytes(out, TAG_BINARY, values.value(row)))
        }
        DataType::Decimal32(_, scale)
        | DataType::Decimal64(_, scale)
        | DataType::Decimal128(_, scale)
            if unsupported(a.data_type()).is_none() =>
        {
            decimal_encoder(a, *scale)?
        }
        DataType::Date32 => primitive::<Date32Type>(a, |v, out| date(out, v.into())),
        DataType::Date64 => {
            primitive::<Date64Type>(a, |v, out| date(out, v.div_euclid(MILLIS_PER_DAY)))
        }
        DataType::Timestamp(unit, _) => match unit {
            TimeUnit::Second => nanos::<TimestampSecondType>(a, TAG_TIMESTAMP, 1_000_000_000),
            TimeUnit::Millisecond => nanos::<TimestampMillisecondType>(a, TAG_TIMESTAMP, 1_000_000),
            TimeUnit::Microsecond => nanos::<TimestampMicrosecondType>(a, TAG_TIMESTAMP, 1_000),
            TimeUnit::Nanosecond => nanos::<TimestampNanosecondType>(a, TAG_TIMESTAMP, 1),
        },
        DataType::Time32(TimeUnit::Second) => nanos::<Time32SecondType>(a, TAG_TIME, 1_000_000_000),
        DataType::Time32(TimeUnit::Millisecond) => {
            nanos::<Time32MillisecondType>(a, TAG_TIME, 1_000_000)
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            nanos::<Time64MicrosecondType>(a, TAG_TIME, 1_000)
        }
        DataType::Time64(TimeUnit::Nanosecond) => nanos::<Time64NanosecondType>(a, TAG_TIME, 1),
        DataType::Duration(unit) => match unit {
            TimeUnit::Second => nanos::<DurationSecondType>(a, TAG_DURATION, 1_000_000_000),
            TimeUnit::Millisecond => nanos::<DurationMillisecondType>(a, TAG_DURATION, 1_000_000),
            TimeUnit::Microsecond => nanos::<DurationMicrosecondType>(a, TAG_DURATION, 1_000),
            TimeUnit::Nanosecond => nanos::<DurationNanosecondType>(a, TAG_DURATION, 1),
        },
        DataType::List(_) => list::<i32>(a, unsupported_types)?,
        DataType::LargeList(_) => list::<i64>(a, unsupported_types)?,
        DataType::ListView(_) => list_view::<i32>(a, unsupported_types)?,
        DataType::LargeListView(_) => list_view::<i64>(a, unsupported_types)?,
        DataType::FixedSizeList(_, _) => {
            let lists = a.as_fixed_size_list();
            let length = lists.value_length() as usize;
            let child = Encoder::new(lists.values(), unsupported_types)?;
            Box::new(move |row, out| {
                let start = row * length;
                elements(out, &child, start..start + length);
            })
        }
        DataType::Struct(_) => struct_encoder(a, unsupported_types)?,
        _ => return Ok(None),
    };
    Ok(Some(encoder))
}

fn primitive<T: ArrowPrimitiveType>(
    array: &ArrayRef,
    encode: impl Fn(T::Native, &mut Vec<u8>) + Send + Sync + 'static,
) -> EncodeValue {
    let values = array.as_primitive::<T>().clone();
    Box::new(move |row, out| encode(values.value(row), out))
}

/// A time quantity in `T`'s unit, encoded as i128 nanoseconds under `tag`.
fn nanos<T>(array: &ArrayRef, tag: u8, nanos_per_unit: i128) -> EncodeValue
where
    T: ArrowPrimitiveType,
    T::Native: Into<i128>,
{
    primitive::<T>(array, move |v, out| {
        out.push(tag);
        out.extend_from_slice(&(v.into() * nanos_per_unit).to_be_bytes());
    })
}

fn decimal_encoder(array: &ArrayRef, scale: i8) -> Result<EncodeValue> {
    let unscaled: Vec<Option<i128>> = match array.data_type() {
        DataType::Decimal32(_, _) => array
            .as_primitive::<Decimal32Type>()
            .iter()
            .map(|v| v.map(i128::from))
            .collect(),
        DataType::Decimal64(_, _) => array
            .as_primitive::<Decimal64Type>()
            .iter()
            .map(|v| v.map(i128::from))
            .collect(),
        // The common case reads the array in place.
        _ if scale >= 0 => {
            return Ok(primitive::<Decimal128Type>(array, move |v, out| {
                decimal(out, v, scale);
            }));
        }
        _ => array.as_primitive::<Decimal128Type>().iter().collect(),
    };
    // A negative scale multiplies. The type's precision bounds the product, but
    // Arrow does not enforce precision, so each value is checked once here.
    let factor = 10_i128.pow(u32::from(scale.min(0).unsigned_abs()));
    let values = unscaled
        .into_iter()
        .map(|value| match value {
            None => Ok(0), // never read: the encoder writes the NULL tag
            Some(value) => value.checked_mul(factor).ok_or_else(|| {
                DataFusionError::Execution(format!(
                    "the {} value {value} does not fit its precision",
                    array.data_type()
                ))
            }),
        })
        .collect::<Result<Vec<i128>>>()?;
    let scale = scale.max(0);
    Ok(Box::new(move |row, out| decimal(out, values[row], scale)))
}

fn list<O: OffsetSizeTrait>(
    array: &ArrayRef,
    unsupported_types: Unsupported,
) -> Result<EncodeValue> {
    let lists = array.as_list::<O>().clone();
    let child = Encoder::new(lists.values(), unsupported_types)?;
    Ok(Box::new(move |row, out| {
        let offsets = lists.value_offsets();
        elements(
            out,
            &child,
            offsets[row].as_usize()..offsets[row + 1].as_usize(),
        );
    }))
}

fn list_view<O: OffsetSizeTrait>(
    array: &ArrayRef,
    unsupported_types: Unsupported,
) -> Result<EncodeValue> {
    let lists = array.as_list_view::<O>().clone();
    let child = Encoder::new(lists.values(), unsupported_types)?;
    Ok(Box::new(move |row, out| {
        let start = lists.value_offset(row).as_usize();
        elements(out, &child, start..start + lists.value_size(row).as_usize());
    }))
}

fn elements(out: &mut Vec<u8>, child: &Encoder, range: std::ops::Range<usize>) {
    out.push(TAG_LIST);
    out.extend_from_slice(&(range.len() as u64).to_be_bytes());
    for index in range {
        child.encode(index, out);
    }
}

fn struct_encoder(array: &ArrayRef, unsupported_types: Unsupported) -> Result<EncodeValue> {
    let structs = array.as_struct();
    let mut fields = structs
        .fields()
        .iter()
        .zip(structs.columns())
        .map(|(field, column)| {
            let name = field.name().as_bytes();
            let mut header = (name.len() as u64).to_be_bytes().to_vec();
            header.extend_from_slice(name);
            Ok((header, Encoder::new(column, unsupported_types)?))
        })
        .collect::<Result<Vec<_>>>()?;
    // Names compare bytewise after their 8-byte length prefix, so sort on the names.
    fields.sort_by(|(a, _), (b, _)| a[8..].cmp(&b[8..]));
    let count = (fields.len() as u64).to_be_bytes();
    Ok(Box::new(move |row, out| {
        out.push(TAG_STRUCT);
        out.extend_from_slice(&count);
        for (header, encoder) in &fields {
            out.extend_from_slice(header);
            encoder.encode(row, out);
        }
    }))
}

/// The fallback for types without a canonical encoding (content hashes only).
fn display(array: &ArrayRef) -> Result<EncodeValue> {
    let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
    let texts: Vec<String> = (0..array.len())
        .map(|row| formatter.value(row).to_string())
        .collect();
    Ok(Box::new(move |row, out| {
        bytes(out, TAG_DISPLAY, texts[row].as_bytes());
    }))
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

/// `unscaled` at a scale >= 0, normalised: trailing zeros stripped, zero at scale 0.
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
        Decimal128Array, Float64Array, Int32Array, Int64Array, IntervalMonthDayNanoArray,
        StringArray, StringViewArray,
    };
    use arrow::datatypes::{Field, IntervalMonthDayNano, IntervalUnit};

    fn encode_all(array: ArrayRef, unsupported_types: Unsupported) -> Vec<Vec<u8>> {
        let encoder = Encoder::new(&array, unsupported_types).unwrap();
        (0..array.len())
            .map(|row| {
                let mut out = Vec::new();
                encoder.encode(row, &mut out);
                out
            })
            .collect()
    }

    fn encode_one(array: ArrayRef) -> Vec<u8> {
        encode_all(array, Unsupported::Refuse).remove(0)
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
        let encoded = encode_all(
            Arc::new(Int64Array::from(vec![None, Some(0)])),
            Unsupported::Refuse,
        );
        assert_eq!(encoded[0], [TAG_NULL]);
        assert_ne!(encoded[0], encoded[1]);
    }

    #[test]
    fn float_zero_signs_and_nans_are_canonical() {
        let values = Float64Array::from(vec![0.0, -0.0, f64::NAN, -f64::NAN]);
        let encoded = encode_all(Arc::new(values), Unsupported::Refuse);
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
    fn negative_scale_is_multiplied_out_to_scale_zero() {
        let negative = Decimal128Array::from(vec![123])
            .with_precision_and_scale(5, -2)
            .unwrap();
        let mut expected = vec![TAG_DECIMAL, 0];
        expected.extend_from_slice(&12_300_i128.to_be_bytes());
        assert_eq!(encode_one(Arc::new(negative)), expected);
    }

    #[test]
    fn negative_scale_value_past_its_precision_is_an_error_not_a_wrap() {
        // Arrow does not enforce precision; 10^37 at scale -2 would overflow i128.
        let array = Decimal128Array::from(vec![10_i128.pow(37)])
            .with_precision_and_scale(5, -2)
            .unwrap();
        let array: ArrayRef = Arc::new(array);
        let err = Encoder::new(&array, Unsupported::Refuse).err().unwrap();
        assert!(
            err.to_string().contains("does not fit its precision"),
            "{err}"
        );
    }

    #[test]
    fn unsupported_types_name_the_argument_and_the_fix() {
        let interval = DataType::Interval(IntervalUnit::MonthDayNano);
        let err = check_supported("stable_id", 2, &interval)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("argument 2 has type Interval(MonthDayNano)"),
            "{err}"
        );
        assert!(err.contains("cast it to VARCHAR"), "{err}");
        let nested = DataType::List(Arc::new(Field::new("item", interval, true)));
        let err = check_supported("stable_id", 1, &nested)
            .unwrap_err()
            .to_string();
        assert!(err.contains("whose part Interval(MonthDayNano)"), "{err}");
    }

    #[test]
    fn display_fallback_encodes_what_has_no_canonical_encoding() {
        let intervals =
            IntervalMonthDayNanoArray::from(vec![Some(IntervalMonthDayNano::new(1, 2, 3)), None]);
        let encoded = encode_all(Arc::new(intervals), Unsupported::Display);
        let text = b"1 mons 2 days 0.000000003 secs";
        let mut expected = vec![TAG_DISPLAY];
        expected.extend_from_slice(&(text.len() as u64).to_be_bytes());
        expected.extend_from_slice(text);
        assert_eq!(encoded, [expected, vec![TAG_NULL]]);
    }

    #[test]
    fn refusing_encoder_refuses_unsupported_types() {
        let intervals: ArrayRef = Arc::new(IntervalMonthDayNanoArray::from(vec![
            IntervalMonthDayNano::new(1, 2, 3),
        ]));
        assert!(Encoder::new(&intervals, Unsupported::Refuse).is_err());
    }
}

//! The golden vectors of canonical encoding v1, `tests/fixtures/canonical_v1.json`
//! (also read by `tests/test_udfs.py`): every case's typed Arrow arrays are built
//! from the file's type and value, then encoded and hashed by the UDF functions.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Date64Array, Decimal128Array,
    DictionaryArray, FixedSizeListArray, Float64Array, Int32Array, Int64Array, LargeListArray,
    LargeListViewArray, ListArray, ListViewArray, NullArray, StringArray, StructArray, UInt64Array,
};
use arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Int32Type, IntervalUnit, TimeUnit};
use datafusion_expr::ScalarUDFImpl;
use serde_json::Value;

use crate::canonical::{Encoder, Unsupported};
use crate::udf::prefixed_hash64::prefixed_hashes;
use crate::udf::stable_id::{StableIdUdf, stable_ids};

const FIXTURE: &str = include_str!("../../tests/fixtures/canonical_v1.json");

fn unit(text: &str) -> TimeUnit {
    match text {
        "s" => TimeUnit::Second,
        "ms" => TimeUnit::Millisecond,
        "us" => TimeUnit::Microsecond,
        "ns" => TimeUnit::Nanosecond,
        other => panic!("unknown time unit {other}"),
    }
}

fn item(data_type: DataType) -> FieldRef {
    Arc::new(Field::new("item", data_type, true))
}

/// The Arrow type a fixture type names (see the fixture's "about").
fn data_type(spec: &Value) -> DataType {
    if let Some(text) = spec.as_str() {
        return scalar_type(text);
    }
    let object = spec.as_object().expect("a type is a string or an object");
    let (kind, inner) = object.iter().next().expect("a nested type has a kind");
    match kind.as_str() {
        "list" => DataType::List(item(data_type(inner))),
        "large_list" => DataType::LargeList(item(data_type(inner))),
        "list_view" => DataType::ListView(item(data_type(inner))),
        "large_list_view" => DataType::LargeListView(item(data_type(inner))),
        "fixed_size_list" => {
            let size = object["size"].as_i64().expect("size") as i32;
            DataType::FixedSizeList(item(data_type(inner)), size)
        }
        "struct" => DataType::Struct(struct_fields(inner)),
        "dictionary" => DataType::Dictionary(Box::new(DataType::Int32), Box::new(data_type(inner))),
        "run_end_encoded" => DataType::RunEndEncoded(
            Arc::new(Field::new("run_ends", DataType::Int32, false)),
            Arc::new(Field::new("values", data_type(inner), true)),
        ),
        "map" => {
            let entries = Fields::from(vec![
                Field::new("key", data_type(&inner[0]), false),
                Field::new("value", data_type(&inner[1]), true),
            ]);
            let entries = Field::new("entries", DataType::Struct(entries), false);
            DataType::Map(Arc::new(entries), false)
        }
        other => panic!("unknown nested type {other}"),
    }
}

fn struct_fields(spec: &Value) -> Fields {
    spec.as_array()
        .expect("struct fields are [name, type] pairs")
        .iter()
        .map(|pair| Field::new(pair[0].as_str().expect("name"), data_type(&pair[1]), true))
        .collect()
}

fn scalar_type(text: &str) -> DataType {
    let (name, args) = match text.split_once('(') {
        Some((name, rest)) => (name, rest.trim_end_matches(')').split(',').collect()),
        None => (text, Vec::new()),
    };
    let number = |index: usize| args[index].trim().parse::<i64>().expect("a number");
    match name {
        "null" => DataType::Null,
        "bool" => DataType::Boolean,
        "int8" => DataType::Int8,
        "int16" => DataType::Int16,
        "int32" => DataType::Int32,
        "int64" => DataType::Int64,
        "uint8" => DataType::UInt8,
        "uint16" => DataType::UInt16,
        "uint32" => DataType::UInt32,
        "uint64" => DataType::UInt64,
        "float16" => DataType::Float16,
        "float32" => DataType::Float32,
        "float64" => DataType::Float64,
        "utf8" => DataType::Utf8,
        "large_utf8" => DataType::LargeUtf8,
        "utf8_view" => DataType::Utf8View,
        "binary" => DataType::Binary,
        "large_binary" => DataType::LargeBinary,
        "binary_view" => DataType::BinaryView,
        "fixed_size_binary" => DataType::FixedSizeBinary(number(0) as i32),
        "decimal32" => DataType::Decimal32(number(0) as u8, number(1) as i8),
        "decimal64" => DataType::Decimal64(number(0) as u8, number(1) as i8),
        "decimal128" => DataType::Decimal128(number(0) as u8, number(1) as i8),
        "decimal256" => DataType::Decimal256(number(0) as u8, number(1) as i8),
        "date32" => DataType::Date32,
        "date64" => DataType::Date64,
        "timestamp" => DataType::Timestamp(unit(args[0]), args.get(1).map(|tz| (*tz).into())),
        "time32" => DataType::Time32(unit(args[0])),
        "time64" => DataType::Time64(unit(args[0])),
        "duration" => DataType::Duration(unit(args[0])),
        "interval" if args == ["month_day_nano"] => DataType::Interval(IntervalUnit::MonthDayNano),
        other => panic!("unknown type {other}"),
    }
}

fn validity(values: &[&Value]) -> Option<NullBuffer> {
    Some(NullBuffer::from_iter(values.iter().map(|v| !v.is_null())))
}

fn float(value: &Value) -> f64 {
    match value {
        Value::String(text) => match text.strip_prefix("bits:") {
            Some(bits) => f64::from_bits(u64::from_str_radix(bits, 16).expect("hex bits")),
            None => text.parse().expect("a float"),
        },
        other => other.as_f64().expect("a float"),
    }
}

fn cast_to(array: ArrayRef, data_type: &DataType) -> ArrayRef {
    cast(&array, data_type).expect("the fixture's value fits its type")
}

/// A column of `data_type` holding `values`.
fn column(data_type: &DataType, values: &[&Value]) -> ArrayRef {
    let ints = || values.iter().map(|v| v.as_i64()).collect::<Vec<_>>();
    let strings = || values.iter().map(|v| v.as_str()).collect::<Vec<_>>();
    match data_type {
        DataType::Null => Arc::new(NullArray::new(values.len())),
        DataType::Boolean => Arc::new(values.iter().map(|v| v.as_bool()).collect::<BooleanArray>()),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            cast_to(Arc::new(Int64Array::from(ints())), data_type)
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            let unsigned: Vec<_> = values.iter().map(|v| v.as_u64()).collect();
            cast_to(Arc::new(UInt64Array::from(unsigned)), data_type)
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            let floats: Vec<_> = values
                .iter()
                .map(|v| (!v.is_null()).then(|| float(v)))
                .collect();
            cast_to(Arc::new(Float64Array::from(floats)), data_type)
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            cast_to(Arc::new(StringArray::from(strings())), data_type)
        }
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => {
            let bytes: Vec<Option<Vec<u8>>> = strings()
                .into_iter()
                .map(|hex| hex.map(decode_hex))
                .collect();
            let binary = BinaryArray::from_iter(bytes);
            cast_to(Arc::new(binary), data_type)
        }
        DataType::Decimal32(_, scale)
        | DataType::Decimal64(_, scale)
        | DataType::Decimal128(_, scale) => {
            let unscaled: Vec<Option<i128>> = strings()
                .into_iter()
                .map(|text| text.map(|t| t.parse().expect("an unscaled integer")))
                .collect();
            let decimals = Decimal128Array::from(unscaled)
                .with_precision_and_scale(38, *scale)
                .expect("a valid decimal type");
            cast_to(Arc::new(decimals), data_type)
        }
        DataType::Date32 | DataType::Time32(_) => {
            let narrow: Vec<Option<i32>> = ints()
                .into_iter()
                .map(|v| v.map(|v| i32::try_from(v).expect("an i32")))
                .collect();
            match data_type {
                DataType::Date32 => Arc::new(Date32Array::from(narrow)),
                _ => cast_to(Arc::new(Int32Array::from(narrow)), data_type),
            }
        }
        DataType::Date64 => Arc::new(Date64Array::from(ints())),
        DataType::Timestamp(_, _) | DataType::Time64(_) | DataType::Duration(_) => {
            cast_to(Arc::new(Int64Array::from(ints())), data_type)
        }
        DataType::List(field) => {
            let (lengths, child) = children(field, values, None);
            Arc::new(ListArray::new(
                Arc::clone(field),
                OffsetBuffer::<i32>::from_lengths(lengths),
                child,
                validity(values),
            ))
        }
        DataType::LargeList(field) => {
            let (lengths, child) = children(field, values, None);
            Arc::new(LargeListArray::new(
                Arc::clone(field),
                OffsetBuffer::<i64>::from_lengths(lengths),
                child,
                validity(values),
            ))
        }
        DataType::ListView(field) => {
            let (lengths, child) = children(field, values, None);
            let (offsets, sizes) = views::<i32>(&lengths);
            Arc::new(ListViewArray::new(
                Arc::clone(field),
                offsets,
                sizes,
                child,
                validity(values),
            ))
        }
        DataType::LargeListView(field) => {
            let (lengths, child) = children(field, values, None);
            let (offsets, sizes) = views::<i64>(&lengths);
            Arc::new(LargeListViewArray::new(
                Arc::clone(field),
                offsets,
                sizes,
                child,
                validity(values),
            ))
        }
        DataType::FixedSizeList(field, size) => {
            let (_, child) = children(field, values, Some(*size as usize));
            Arc::new(FixedSizeListArray::new(
                Arc::clone(field),
                *size,
                child,
                validity(values),
            ))
        }
        DataType::Struct(fields) => {
            let columns = fields
                .iter()
                .map(|field| {
                    let member: Vec<&Value> = values
                        .iter()
                        .map(|v| v.get(field.name()).unwrap_or(&Value::Null))
                        .collect();
                    column(field.data_type(), &member)
                })
                .collect();
            Arc::new(StructArray::new(fields.clone(), columns, validity(values)))
        }
        DataType::Dictionary(_, value_type) => {
            let keys: Int32Array = (0..values.len() as i32)
                .map(|key| (!values[key as usize].is_null()).then_some(key))
                .collect();
            let dictionary = column(value_type, values);
            Arc::new(DictionaryArray::<Int32Type>::new(keys, dictionary))
        }
        DataType::RunEndEncoded(_, value_field) => {
            cast_to(column(value_field.data_type(), values), data_type)
        }
        other => panic!("the fixture builds no arrays of type {other}"),
    }
}

/// Each list's length and the flattened child column; a NULL list of a fixed
/// size still takes `fixed` (NULL) child slots.
fn children(field: &FieldRef, values: &[&Value], fixed: Option<usize>) -> (Vec<usize>, ArrayRef) {
    let mut lengths = Vec::new();
    let mut elements: Vec<&Value> = Vec::new();
    for value in values {
        match value.as_array() {
            Some(items) => {
                lengths.push(items.len());
                elements.extend(items);
            }
            None => {
                let slots = fixed.unwrap_or(0);
                lengths.push(slots);
                elements.extend(std::iter::repeat_n(&Value::Null, slots));
            }
        }
    }
    (lengths, column(field.data_type(), &elements))
}

fn views<O: arrow::array::OffsetSizeTrait>(
    lengths: &[usize],
) -> (ScalarBuffer<O>, ScalarBuffer<O>) {
    let mut start = 0;
    let mut offsets = Vec::new();
    let mut sizes = Vec::new();
    for length in lengths {
        offsets.push(O::usize_as(start));
        sizes.push(O::usize_as(*length));
        start += length;
    }
    (offsets.into(), sizes.into())
}

fn decode_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One case's argument columns: the value alone, and the value at row 1 of three
/// (a slice, so offsets into shared buffers are exercised too).
fn argument_columns(args: &[Value]) -> (Vec<DataType>, Vec<ArrayRef>, Vec<ArrayRef>) {
    let mut types = Vec::new();
    let (mut alone, mut sliced) = (Vec::new(), Vec::new());
    for arg in args {
        let data_type = data_type(&arg["type"]);
        let value = &arg["value"];
        alone.push(column(&data_type, &[value]));
        sliced.push(column(&data_type, &[value, value, value]).slice(1, 1));
        types.push(data_type);
    }
    (types, alone, sliced)
}

fn check_case(case: &Value, prefix: &str) -> Result<(), String> {
    let args = case["args"].as_array().expect("args");
    let types: Vec<DataType> = args.iter().map(|arg| data_type(&arg["type"])).collect();
    let planned = StableIdUdf::default().return_type(&types);
    if let Some(refused) = case.get("refused") {
        let message = match planned {
            Ok(_) => return Err("was accepted at planning".into()),
            Err(err) => err.to_string(),
        };
        for part in refused.as_array().expect("refused is a list") {
            let part = part.as_str().expect("a substring");
            if !message.contains(part) {
                return Err(format!("refusal {message:?} lacks {part:?}"));
            }
        }
        return Ok(());
    }
    planned.map_err(|err| format!("refused at planning: {err}"))?;
    let (_, alone, sliced) = argument_columns(args);
    let expected = case["encoding"]
        .as_str()
        .expect("encoding")
        .replace(' ', "");
    for (layout, columns) in [("alone", &alone), ("sliced", &sliced)] {
        let mut encoding = Vec::new();
        for column in columns {
            let encoder = Encoder::new(column, Unsupported::Refuse).map_err(|e| e.to_string())?;
            encoder.encode(0, &mut encoding);
        }
        if encode_hex(&encoding) != expected {
            return Err(format!(
                "{layout}: encoding {} != {expected}",
                encode_hex(&encoding)
            ));
        }
        let ids = stable_ids(columns, 1).map_err(|e| e.to_string())?;
        let id = ids.as_string::<i32>().value(0);
        if id != case["stable_id"].as_str().expect("stable_id") {
            return Err(format!("{layout}: stable_id {id} != {}", case["stable_id"]));
        }
        if let Some(hash) = case.get("hash64").and_then(Value::as_str) {
            let prefixes: ArrayRef = Arc::new(StringArray::from(vec![prefix]));
            let out = prefixed_hashes(&prefixes, &columns[0], 1).map_err(|e| e.to_string())?;
            let expected_hash = format!("{prefix}:{hash}");
            if out.as_string::<i32>().value(0) != expected_hash {
                return Err(format!(
                    "{layout}: prefixed_hash64 {} != {expected_hash}",
                    out.as_string::<i32>().value(0)
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn every_golden_vector_of_v1_holds() {
    let fixture: Value = serde_json::from_str(FIXTURE).expect("the fixture is JSON");
    let prefix = fixture["prefix"].as_str().expect("prefix");
    let cases = fixture["cases"].as_array().expect("cases");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            check_case(case, prefix)
                .err()
                .map(|why| format!("{}: {why}", case["name"]))
        })
        .collect();
    assert!(cases.len() > 100, "only {} cases", cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_fixture_array_has_the_type_it_names() {
    // Guards the builder above: a golden case must exercise the layout it names.
    let fixture: Value = serde_json::from_str(FIXTURE).expect("the fixture is JSON");
    for case in fixture["cases"].as_array().expect("cases") {
        if case.get("refused").is_some() {
            continue;
        }
        let (types, alone, _) = argument_columns(case["args"].as_array().expect("args"));
        for (data_type, column) in types.iter().zip(&alone) {
            assert_eq!(column.data_type(), data_type, "{}", case["name"]);
            assert_eq!(column.len(), 1);
        }
    }
}

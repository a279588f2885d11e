//! `stable_id_agg(VARIADIC any) -> Utf8`: an order-independent fingerprint of a group's rows.
//!
//! Each row's id is the 128-bit number whose hex `stable_id` prints for the same arguments.
//! The group's state is its row count and the sum of its rows' ids modulo 2^128 (a multiset
//! hash: the order of rows, batches and partitions cannot change it, duplicates count, and
//! partial states merge by addition). The result is 32 hex digits (128 bits) of
//! SHA-256("workbench.stable_id_agg.v1\0" || count as u64 || sum as u128), big-endian; a
//! group with no rows gives NULL.
//!
//! Unlike most aggregates it counts rows whose values are NULL: a fingerprint of `{1, NULL}`
//! must differ from one of `{1}`. `FILTER (WHERE x IS NOT NULL)` leaves them out. The sum can
//! be taken back out, so the function also runs over sliding window frames.
//! `stable_id_agg(DISTINCT ...)` fingerprints the set of distinct rows (a NULL row once), as
//! the same function over `SELECT DISTINCT` would; its state is the set of row ids.

use std::collections::HashSet;
use std::mem::size_of;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, FixedSizeBinaryArray, StringBuilder, UInt64Array,
};
use arrow::datatypes::{DataType, Field, FieldRef, UInt64Type};
use datafusion_common::utils::SingleRowListArrayBuilder;
use datafusion_common::{Result, ScalarValue, exec_err};
use datafusion_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion_expr::utils::AggregateOrderSensitivity;
use datafusion_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};
use datafusion_ffi::udaf::FFI_AggregateUDF;
use pyo3::types::PyCapsule;
use pyo3::{Bound, PyResult, Python, pyclass, pymethods};

use super::stable_id::{encoders, row_id};
use super::{digest, push_hex};
use crate::canonical::check_supported;

pub const NAME: &str = "stable_id_agg";
const DOMAIN: &[u8] = b"workbench.stable_id_agg.v1\0";
const FINGERPRINT_BYTES: usize = 16;
/// A row id's width in the DISTINCT state (`FixedSizeBinary` widths are `i32`).
const ID_WIDTH: i32 = 16;

/// The state of one group: how many rows, and the sum of their ids modulo 2^128.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fingerprint {
    pub rows: u64,
    pub sum: u128,
}

impl Fingerprint {
    fn add(&mut self, id: u128) {
        self.rows = self.rows.wrapping_add(1);
        self.sum = self.sum.wrapping_add(id);
    }

    fn remove(&mut self, id: u128) {
        self.rows = self.rows.wrapping_sub(1);
        self.sum = self.sum.wrapping_sub(id);
    }

    fn merge(&mut self, other: Fingerprint) {
        self.rows = self.rows.wrapping_add(other.rows);
        self.sum = self.sum.wrapping_add(other.sum);
    }

    /// The 32 hex digits of the group, or None for a group without rows.
    pub fn finish(&self) -> Option<String> {
        if self.rows == 0 {
            return None;
        }
        let mut payload = [0; 24];
        payload[..8].copy_from_slice(&self.rows.to_be_bytes());
        payload[8..].copy_from_slice(&self.sum.to_be_bytes());
        let mut text = String::with_capacity(FINGERPRINT_BYTES * 2);
        push_hex(&mut text, &digest(DOMAIN, &payload)[..FINGERPRINT_BYTES]);
        Some(text)
    }
}

/// The id of every row of `columns` (the argument columns of one batch), as numbers.
pub fn row_ids(columns: &[ArrayRef]) -> Result<Vec<u128>> {
    let rows = columns.first().map_or(0, |column| column.len());
    let encoders = encoders(columns)?;
    let mut encoding = Vec::with_capacity(64);
    Ok((0..rows)
        .map(|row| u128::from_be_bytes(row_id(&encoders, row, &mut encoding)))
        .collect())
}

/// The state columns: rows, then the sum's high and low 64 bits (all UInt64).
fn state_fields(name: &str) -> Vec<FieldRef> {
    ["rows", "sum_high", "sum_low"]
        .into_iter()
        .map(|part| {
            Arc::new(Field::new(
                format!("{name}[{part}]"),
                DataType::UInt64,
                true,
            ))
        })
        .collect()
}

/// The fingerprints a state batch holds (its three columns, as [`state_fields`] names them).
fn states(columns: &[ArrayRef]) -> Result<impl Iterator<Item = Option<Fingerprint>> + '_> {
    let [rows, high, low] = columns else {
        return exec_err!("{NAME}: expected 3 state columns, got {}", columns.len());
    };
    let (rows, high, low) = (
        rows.as_primitive::<UInt64Type>(),
        high.as_primitive::<UInt64Type>(),
        low.as_primitive::<UInt64Type>(),
    );
    Ok((0..rows.len()).map(move |i| {
        rows.is_valid(i).then(|| Fingerprint {
            rows: rows.value(i),
            sum: (u128::from(high.value(i)) << 64) | u128::from(low.value(i)),
        })
    }))
}

fn state_arrays(groups: &[Fingerprint]) -> Vec<ArrayRef> {
    let rows: UInt64Array = groups.iter().map(|g| Some(g.rows)).collect();
    // Truncation is the point: the sum is split into its two 64-bit halves.
    let (high, low): (UInt64Array, UInt64Array) = (
        groups.iter().map(|g| Some((g.sum >> 64) as u64)).collect(),
        groups.iter().map(|g| Some(g.sum as u64)).collect(),
    );
    vec![Arc::new(rows), Arc::new(high), Arc::new(low)]
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StableIdAggUdaf {
    signature: Signature,
}

impl Default for StableIdAggUdaf {
    fn default() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for StableIdAggUdaf {
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

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if args.is_distinct {
            return Ok(Box::new(DistinctStableIdAccumulator::default()));
        }
        Ok(Box::new(StableIdAccumulator::default()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        if args.is_distinct {
            return Ok(vec![distinct_state_field(args.name)]);
        }
        Ok(state_fields(args.name))
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        !args.is_distinct
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(StableIdGroups::default()))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }
}

/// One group (an aggregate without GROUP BY, or a window frame).
#[derive(Debug, Default)]
pub struct StableIdAccumulator {
    group: Fingerprint,
}

impl Accumulator for StableIdAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for id in row_ids(values)? {
            self.group.add(id);
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for id in row_ids(values)? {
            self.group.remove(id);
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for state in self::states(states)?.flatten() {
            self.group.merge(state);
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        state_arrays(&[self.group])
            .iter()
            .map(|array| ScalarValue::try_from_array(array, 0))
            .collect()
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Utf8(self.group.finish()))
    }

    fn size(&self) -> usize {
        size_of::<Self>()
    }
}

/// The DISTINCT state: the row ids seen, as 16-byte big-endian values (a list per group).
fn distinct_state_field(name: &str) -> FieldRef {
    let id = Field::new_list_field(DataType::FixedSizeBinary(ID_WIDTH), true);
    Arc::new(Field::new(
        format!("{name}[distinct_ids]"),
        DataType::List(Arc::new(id)),
        true,
    ))
}

/// One group of `stable_id_agg(DISTINCT ...)`: the set of its rows' ids.
#[derive(Debug, Default)]
pub struct DistinctStableIdAccumulator {
    ids: HashSet<u128>,
}

impl Accumulator for DistinctStableIdAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.ids.extend(row_ids(values)?);
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [lists] = states else {
            return exec_err!(
                "{NAME}: expected 1 DISTINCT state column, got {}",
                states.len()
            );
        };
        for list in lists.as_list::<i32>().iter().flatten() {
            let ids = list.as_fixed_size_binary();
            for id in ids.iter().flatten() {
                let bytes: [u8; 16] = id.try_into().map_err(|_| {
                    datafusion_common::exec_datafusion_err!("{NAME}: a row id is not 16 bytes")
                })?;
                self.ids.insert(u128::from_be_bytes(bytes));
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let ids = FixedSizeBinaryArray::try_from_sparse_iter_with_size(
            self.ids.iter().map(|id| Some(id.to_be_bytes())),
            ID_WIDTH,
        )?;
        Ok(vec![
            SingleRowListArrayBuilder::new(Arc::new(ids)).build_list_scalar(),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut group = Fingerprint::default();
        for &id in &self.ids {
            group.add(id);
        }
        Ok(ScalarValue::Utf8(group.finish()))
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.ids.capacity() * size_of::<u128>()
    }
}

/// Whether `row` passes the aggregate's FILTER; NULL leaves it out, as WHERE NULL does.
fn passes(filter: Option<&BooleanArray>, row: usize) -> bool {
    filter.is_none_or(|f| f.is_valid(row) && f.value(row))
}

/// Every group of a GROUP BY at once, indexed by DataFusion's group index.
#[derive(Debug, Default)]
pub struct StableIdGroups {
    groups: Vec<Fingerprint>,
}

impl GroupsAccumulator for StableIdGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize(total_num_groups, Fingerprint::default());
        let ids = row_ids(values)?;
        for (row, (&group, id)) in group_indices.iter().zip(ids).enumerate() {
            if passes(opt_filter, row) {
                self.groups[group].add(id);
            }
        }
        Ok(())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize(total_num_groups, Fingerprint::default());
        for (&group, state) in group_indices.iter().zip(states(values)?) {
            if let Some(state) = state {
                self.groups[group].merge(state);
            }
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let states: Vec<Fingerprint> = row_ids(values)?
            .into_iter()
            .enumerate()
            .map(|(row, id)| {
                let mut state = Fingerprint::default();
                if passes(opt_filter, row) {
                    state.add(id);
                }
                state
            })
            .collect();
        Ok(state_arrays(&states))
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let groups = emit_to.take_needed(&mut self.groups);
        let mut builder =
            StringBuilder::with_capacity(groups.len(), groups.len() * FINGERPRINT_BYTES * 2);
        for group in &groups {
            builder.append_option(group.finish());
        }
        Ok(Arc::new(builder.finish()))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(state_arrays(&emit_to.take_needed(&mut self.groups)))
    }

    fn size(&self) -> usize {
        self.groups.capacity() * size_of::<Fingerprint>()
    }
}

/// Python handle: `datafusion.udaf(StableIdAgg())` or `ctx.register_udaf(...)`.
#[pyclass(name = "StableIdAgg", module = "workbench._ext", frozen)]
#[derive(Default)]
pub struct StableIdAgg;

#[pymethods]
impl StableIdAgg {
    #[new]
    fn new() -> Self {
        Self
    }

    fn __datafusion_aggregate_udf__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let udaf = Arc::new(AggregateUDF::from(StableIdAggUdaf::default()));
        PyCapsule::new_with_value(
            py,
            FFI_AggregateUDF::from(udaf),
            c"datafusion_aggregate_udf",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    fn ints(values: &[Option<i64>]) -> ArrayRef {
        Arc::new(Int64Array::from(values.to_vec()))
    }

    fn fingerprint(batches: &[&[Option<i64>]]) -> Option<String> {
        let mut accumulator = StableIdAccumulator::default();
        for batch in batches {
            accumulator.update_batch(&[ints(batch)]).unwrap();
        }
        match accumulator.evaluate().unwrap() {
            ScalarValue::Utf8(value) => value,
            other => panic!("not a string: {other:?}"),
        }
    }

    #[test]
    fn row_order_and_batching_do_not_matter() {
        let one = fingerprint(&[&[Some(1), Some(2), None, Some(3)]]);
        let other = fingerprint(&[&[Some(3)], &[None, Some(1)], &[], &[Some(2)]]);
        assert_eq!(one, other);
        assert_eq!(one.as_ref().map(String::len), Some(32));
    }

    #[test]
    fn nulls_and_duplicates_count() {
        assert_ne!(fingerprint(&[&[Some(1), None]]), fingerprint(&[&[Some(1)]]));
        assert_ne!(
            fingerprint(&[&[Some(1), Some(1)]]),
            fingerprint(&[&[Some(1)]])
        );
    }

    #[test]
    fn no_rows_is_null() {
        assert_eq!(fingerprint(&[]), None);
        assert_eq!(fingerprint(&[&[]]), None);
    }

    #[test]
    fn row_ids_are_the_stable_ids() {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["a", "b"])),
            ints(&[Some(1), None]),
        ];
        let ids = super::super::stable_id::stable_ids(&columns, 2).unwrap();
        let ids = ids.as_string::<i32>();
        for (row, id) in row_ids(&columns).unwrap().into_iter().enumerate() {
            assert_eq!(format!("{id:032x}"), ids.value(row));
        }
    }

    #[test]
    fn documented_formula() {
        let id = row_ids(&[ints(&[Some(7)])]).unwrap()[0];
        let mut payload = 2_u64.to_be_bytes().to_vec();
        payload.extend_from_slice(&id.wrapping_mul(2).to_be_bytes());
        let mut expected = String::new();
        push_hex(
            &mut expected,
            &digest(DOMAIN, &payload)[..FINGERPRINT_BYTES],
        );
        assert_eq!(fingerprint(&[&[Some(7), Some(7)]]), Some(expected));
    }

    #[test]
    fn merged_partial_states_equal_one_pass() {
        let mut left = StableIdAccumulator::default();
        let mut right = StableIdAccumulator::default();
        left.update_batch(&[ints(&[Some(1), None])]).unwrap();
        right.update_batch(&[ints(&[Some(2)])]).unwrap();
        let state: Vec<ArrayRef> = right
            .state()
            .unwrap()
            .iter()
            .map(|value| value.to_array().unwrap())
            .collect();
        left.merge_batch(&state).unwrap();
        assert_eq!(
            left.evaluate().unwrap(),
            ScalarValue::Utf8(fingerprint(&[&[Some(2), None, Some(1)]]))
        );
    }

    #[test]
    fn retract_undoes_update() {
        let mut sliding = StableIdAccumulator::default();
        sliding.update_batch(&[ints(&[Some(1), Some(2)])]).unwrap();
        sliding.update_batch(&[ints(&[Some(3)])]).unwrap();
        sliding.retract_batch(&[ints(&[Some(1)])]).unwrap();
        assert_eq!(
            sliding.evaluate().unwrap(),
            ScalarValue::Utf8(fingerprint(&[&[Some(2), Some(3)]]))
        );
        sliding.retract_batch(&[ints(&[Some(2), Some(3)])]).unwrap();
        assert_eq!(sliding.evaluate().unwrap(), ScalarValue::Utf8(None));
    }

    #[test]
    fn groups_filter_emit_and_merge() {
        let mut partial = StableIdGroups::default();
        let values = [ints(&[Some(1), Some(2), Some(3), Some(4)])];
        let filter = BooleanArray::from(vec![Some(true), Some(true), None, Some(false)]);
        partial
            .update_batch(&values, &[0, 1, 0, 2], Some(&filter), 3)
            .unwrap();
        let state = partial.state(EmitTo::All).unwrap();
        let mut merged = StableIdGroups::default();
        // Partial group i lands in final group 2 - i.
        merged.merge_batch(&state, &[2, 1, 0], 3).unwrap();
        let first = merged.evaluate(EmitTo::First(1)).unwrap();
        assert!(first.as_string::<i32>().is_null(0));
        let rest = merged.evaluate(EmitTo::All).unwrap();
        let rest = rest.as_string::<i32>();
        assert_eq!(Some(rest.value(0).to_owned()), fingerprint(&[&[Some(2)]]));
        assert_eq!(Some(rest.value(1).to_owned()), fingerprint(&[&[Some(1)]]));
    }

    #[test]
    fn rows_converted_to_states_merge_like_updates() {
        let values = [ints(&[Some(1), None, Some(3)])];
        let filter = BooleanArray::from(vec![true, true, false]);
        let states = StableIdGroups::default()
            .convert_to_state(&values, Some(&filter))
            .unwrap();
        let mut merged = StableIdGroups::default();
        merged.merge_batch(&states, &[0, 0, 0], 1).unwrap();
        let out = merged.evaluate(EmitTo::All).unwrap();
        assert_eq!(
            Some(out.as_string::<i32>().value(0).to_owned()),
            fingerprint(&[&[None, Some(1)]])
        );
    }

    #[test]
    fn distinct_fingerprints_the_set_of_rows_across_merges() {
        let mut left = DistinctStableIdAccumulator::default();
        let mut right = DistinctStableIdAccumulator::default();
        left.update_batch(&[ints(&[Some(1), Some(1), None])])
            .unwrap();
        right
            .update_batch(&[ints(&[None, Some(2), Some(1)])])
            .unwrap();
        let state: Vec<ArrayRef> = right
            .state()
            .unwrap()
            .iter()
            .map(|value| value.to_array().unwrap())
            .collect();
        left.merge_batch(&state).unwrap();
        assert_eq!(
            left.evaluate().unwrap(),
            ScalarValue::Utf8(fingerprint(&[&[Some(1), None, Some(2)]]))
        );
        let empty = DistinctStableIdAccumulator::default().state().unwrap();
        assert_eq!(empty.len(), 1);
        assert_eq!(
            DistinctStableIdAccumulator::default().evaluate().unwrap(),
            ScalarValue::Utf8(None)
        );
    }

    #[test]
    fn unsupported_types_are_refused_at_planning() {
        let udaf = StableIdAggUdaf::default();
        let refused = udaf
            .return_type(&[
                DataType::Int64,
                DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano),
            ])
            .unwrap_err()
            .to_string();
        assert!(refused.contains("argument 2"), "{refused}");
        assert_eq!(udaf.return_type(&[DataType::Utf8]).unwrap(), DataType::Utf8);
    }
}

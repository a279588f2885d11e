//! `sessionize(ts, gap) OVER (PARTITION BY ... ORDER BY ts) -> Int64`: the session number of
//! each row in its window partition.
//!
//! The first row with a timestamp is in session 1; a row starts the next session when its
//! timestamp is more than `gap` after the previous row's (equal timestamps, and a gap of
//! exactly `gap`, stay in one session). A row whose `ts` is NULL (or NaN) gets NULL and does
//! not move the clock.
//!
//! `ts` is a timestamp (any unit and time zone), a date or a number. `gap` is seconds (any
//! number, fractions allowed), an INTERVAL without months (`INTERVAL '30 minutes'`) or a
//! duration; when `ts` is a plain number, `gap` is a number in the same units. `gap` may vary
//! per row (it is the threshold for the row it is read on), but must not be NULL or negative.
//!
//! A window function sees its arguments in the window's order but not the ORDER BY itself, so
//! the order cannot be checked at planning: a partition whose `ts` goes backwards is an error
//! that says how to write the window.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Builder};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType,
    DurationSecondType, Field, FieldRef, Float64Type, Int64Type, IntervalMonthDayNanoType,
    IntervalUnit, TimeUnit,
};
use datafusion_common::{Result, exec_err, plan_err};
use datafusion_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion_expr::{PartitionEvaluator, Signature, Volatility, WindowUDF, WindowUDFImpl};
use datafusion_ffi::udwf::FFI_WindowUDF;
use pyo3::types::PyCapsule;
use pyo3::{Bound, PyResult, Python, pyclass, pymethods};

pub const NAME: &str = "sessionize";
const USAGE: &str = "sessionize(ts, gap) OVER (PARTITION BY ... ORDER BY ts), with ts a \
                     timestamp, date or number and gap in seconds, an INTERVAL or a duration";
const NANOS_PER_DAY: i128 = 86_400 * 1_000_000_000;

fn nanos_per(unit: TimeUnit) -> i128 {
    match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

/// The argument types `sessionize` runs on, or the planning error that says what to pass.
pub fn coerce(arg_types: &[DataType]) -> Result<Vec<DataType>> {
    let [ts, gap] = arg_types else {
        return plan_err!("{USAGE}; got {} arguments", arg_types.len());
    };
    let ts = match ts {
        DataType::Timestamp(..) => ts.clone(),
        DataType::Date32 => DataType::Timestamp(TimeUnit::Second, None),
        DataType::Date64 => DataType::Timestamp(TimeUnit::Millisecond, None),
        DataType::Null => DataType::Int64,
        t if t.is_integer() => DataType::Int64,
        t if t.is_numeric() => DataType::Float64,
        other => return plan_err!("{NAME}: ts (argument 1) has type {other}; {USAGE}"),
    };
    let timestamps = matches!(ts, DataType::Timestamp(..));
    let gap = match gap {
        DataType::Null => DataType::Float64,
        t if t.is_numeric() => DataType::Float64,
        DataType::Interval(IntervalUnit::YearMonth) => {
            return plan_err!(
                "{NAME}: gap (argument 2) {gap} counts months, which have no fixed length; \
                 give it in days, hours, minutes or seconds"
            );
        }
        DataType::Interval(_) | DataType::Duration(_) if !timestamps => {
            return plan_err!(
                "{NAME}: gap (argument 2) is a {gap} but ts is a plain number; give the gap \
                 as a number in the units of ts"
            );
        }
        DataType::Interval(_) => DataType::Interval(IntervalUnit::MonthDayNano),
        DataType::Duration(_) => gap.clone(),
        other => return plan_err!("{NAME}: gap (argument 2) has type {other}; {USAGE}"),
    };
    Ok(vec![ts, gap])
}

/// `nanos` in whole units of `per_unit` nanoseconds, rounded down: differences of
/// timestamps are whole units, so exceeding the rounded-down gap is exceeding the gap.
fn whole_units(nanos: i128, per_unit: i128) -> i128 {
    nanos.div_euclid(per_unit)
}

/// `seconds` in whole units (`per_second` of them to a second): the largest whole number a
/// difference of timestamps may reach and stay in the session. A product within rounding
/// error of a whole number is that number (0.7 s is 700 ms, not 699.99...).
fn seconds_to_units(seconds: f64, per_second: f64) -> i128 {
    let units = seconds * per_second;
    let nearest = units.round();
    let whole = if (units - nearest).abs() <= 1e-9 * nearest.abs().max(1.0) {
        nearest
    } else {
        units.floor()
    };
    // `as` saturates beyond i128: no two timestamps are that far apart.
    whole as i128
}

/// The gap argument, read as a threshold in the units of `ts`.
enum Gap<'a> {
    Seconds(&'a arrow::array::Float64Array),
    Interval(&'a arrow::array::IntervalMonthDayNanoArray),
    Duration { nanos: Vec<Option<i128>> },
}

impl<'a> Gap<'a> {
    fn new(gap: &'a ArrayRef) -> Result<Self> {
        Ok(match gap.data_type() {
            DataType::Float64 => Gap::Seconds(gap.as_primitive::<Float64Type>()),
            DataType::Interval(IntervalUnit::MonthDayNano) => {
                Gap::Interval(gap.as_primitive::<IntervalMonthDayNanoType>())
            }
            DataType::Duration(unit) => {
                let per = nanos_per(*unit);
                let nanos = match unit {
                    TimeUnit::Second => durations::<DurationSecondType>(gap, per),
                    TimeUnit::Millisecond => durations::<DurationMillisecondType>(gap, per),
                    TimeUnit::Microsecond => durations::<DurationMicrosecondType>(gap, per),
                    TimeUnit::Nanosecond => durations::<DurationNanosecondType>(gap, per),
                };
                Gap::Duration { nanos }
            }
            other => return exec_err!("{NAME}: gap of type {other} was not coerced"),
        })
    }

    fn is_null(&self, row: usize) -> bool {
        match self {
            Gap::Seconds(a) => a.is_null(row),
            Gap::Interval(a) => a.is_null(row),
            Gap::Duration { nanos } => nanos[row].is_none(),
        }
    }

    /// An error for a NULL, negative, infinite or month-long gap at `row`.
    fn check(&self, row: usize) -> Result<()> {
        if self.is_null(row) {
            return exec_err!(
                "{NAME}: gap is NULL (row {} of the partition); {USAGE}",
                row + 1
            );
        }
        let negative = match self {
            Gap::Seconds(a) => !(a.value(row) >= 0.0 && a.value(row).is_finite()),
            Gap::Interval(a) => {
                let v = a.value(row);
                if v.months != 0 {
                    return exec_err!(
                        "{NAME}: gap has {} months, which have no fixed length; give it in \
                         days, hours, minutes or seconds",
                        v.months
                    );
                }
                interval_nanos(a, row) < 0
            }
            Gap::Duration { nanos } => nanos[row].is_some_and(|n| n < 0),
        };
        if negative {
            return exec_err!("{NAME}: gap must be a finite, non-negative length of time");
        }
        Ok(())
    }

    /// The threshold at `row` in units of `per_unit` nanoseconds (timestamps) or, for plain
    /// numbers (`per_unit` None), in the numbers' own units.
    fn units(&self, row: usize, per_unit: Option<i128>) -> Result<i128> {
        self.check(row)?;
        Ok(match (self, per_unit) {
            (Gap::Seconds(a), Some(per)) => {
                // Timestamp units per second: 1, 1e3, 1e6 or 1e9, exact in f64.
                let per_second = (1_000_000_000 / per) as f64;
                seconds_to_units(a.value(row), per_second)
            }
            (Gap::Seconds(a), None) => seconds_to_units(a.value(row), 1.0),
            (Gap::Interval(a), Some(per)) => whole_units(interval_nanos(a, row), per),
            (Gap::Duration { nanos }, Some(per)) => {
                whole_units(nanos[row].unwrap_or_default(), per)
            }
            (_, None) => return exec_err!("{NAME}: an interval gap needs timestamps"),
        })
    }

    fn seconds(&self, row: usize) -> Result<f64> {
        self.check(row)?;
        match self {
            Gap::Seconds(a) => Ok(a.value(row)),
            _ => exec_err!("{NAME}: an interval gap needs timestamps"),
        }
    }
}

fn interval_nanos(a: &arrow::array::IntervalMonthDayNanoArray, row: usize) -> i128 {
    let v = a.value(row);
    i128::from(v.days) * NANOS_PER_DAY + i128::from(v.nanoseconds)
}

fn durations<T>(gap: &ArrayRef, per: i128) -> Vec<Option<i128>>
where
    T: arrow::datatypes::ArrowPrimitiveType<Native = i64>,
{
    gap.as_primitive::<T>()
        .iter()
        .map(|v| v.map(|v| i128::from(v) * per))
        .collect()
}

fn out_of_order(row: usize) -> Result<ArrayRef> {
    exec_err!(
        "{NAME}: ts goes backwards at row {} of its window partition; order the window by \
         it: {USAGE}",
        row + 1
    )
}

/// The session number of every row of one window partition (`ts` and `gap` as coerced).
pub fn sessions(ts: &ArrayRef, gap: &ArrayRef) -> Result<ArrayRef> {
    let gaps = Gap::new(gap)?;
    let mut out = Int64Builder::with_capacity(ts.len());
    let mut session = 0_i64;
    match ts.data_type() {
        DataType::Float64 => {
            let ts = ts.as_primitive::<Float64Type>();
            let mut previous: Option<f64> = None;
            for row in 0..ts.len() {
                let now = ts.value(row);
                if ts.is_null(row) || now.is_nan() {
                    out.append_null();
                    continue;
                }
                match previous {
                    Some(before) if now < before => return out_of_order(row),
                    Some(before) if now - before > gaps.seconds(row)? => session += 1,
                    Some(_) => {}
                    None => session = 1,
                }
                previous = Some(now);
                out.append_value(session);
            }
        }
        data_type => {
            let per_unit = match data_type {
                DataType::Timestamp(unit, _) => Some(nanos_per(*unit)),
                DataType::Int64 => None,
                other => return exec_err!("{NAME}: ts of type {other} was not coerced"),
            };
            let ts = cast(ts, &DataType::Int64)?;
            let ts = ts.as_primitive::<Int64Type>();
            let mut previous: Option<i64> = None;
            for row in 0..ts.len() {
                if ts.is_null(row) {
                    out.append_null();
                    continue;
                }
                let now = ts.value(row);
                match previous {
                    Some(before) if now < before => return out_of_order(row),
                    Some(before) => {
                        if i128::from(now) - i128::from(before) > gaps.units(row, per_unit)? {
                            session += 1;
                        }
                    }
                    None => session = 1,
                }
                previous = Some(now);
                out.append_value(session);
            }
        }
    }
    Ok(Arc::new(out.finish()))
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionizeUdwf {
    signature: Signature,
}

impl Default for SessionizeUdwf {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl WindowUDFImpl for SessionizeUdwf {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce(arg_types)
    }

    fn partition_evaluator(
        &self,
        _args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(SessionEvaluator))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Int64,
            true,
        )))
    }
}

/// Evaluates a whole partition at once: a session number depends on every earlier row.
#[derive(Debug)]
struct SessionEvaluator;

impl PartitionEvaluator for SessionEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], _num_rows: usize) -> Result<ArrayRef> {
        let [ts, gap] = values else {
            return exec_err!("{USAGE}; got {} arguments", values.len());
        };
        sessions(ts, gap)
    }
}

/// Python handle: `datafusion.udwf(Sessionize())` or `ctx.register_udwf(...)`.
#[pyclass(name = "Sessionize", module = "workbench._ext", frozen)]
#[derive(Default)]
pub struct Sessionize;

#[pymethods]
impl Sessionize {
    #[new]
    fn new() -> Self {
        Self
    }

    fn __datafusion_window_udf__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let udwf = Arc::new(WindowUDF::from(SessionizeUdwf::default()));
        PyCapsule::new_with_value(py, FFI_WindowUDF::from(udwf), c"datafusion_window_udf")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        DurationMillisecondArray, Float64Array, Int64Array, IntervalMonthDayNanoArray,
        TimestampMillisecondArray, TimestampSecondArray,
    };
    use arrow::datatypes::IntervalMonthDayNano;

    fn seconds_gap(gap: f64, rows: usize) -> ArrayRef {
        Arc::new(Float64Array::from(vec![gap; rows]))
    }

    fn run(ts: ArrayRef, gap: ArrayRef) -> Result<Vec<Option<i64>>> {
        let out = sessions(&ts, &gap)?;
        Ok(out.as_primitive::<Int64Type>().iter().collect())
    }

    #[test]
    fn a_gap_over_the_threshold_starts_a_session() {
        let ts: ArrayRef = Arc::new(TimestampSecondArray::from(vec![0, 10, 20, 51, 60, 200]));
        let got = run(ts, seconds_gap(30.0, 6)).unwrap();
        assert_eq!(got, [1, 1, 1, 2, 2, 3].map(Some));
    }

    #[test]
    fn equal_timestamps_and_a_gap_of_exactly_the_threshold_stay() {
        let ts: ArrayRef = Arc::new(TimestampSecondArray::from(vec![5, 5, 35, 35, 66]));
        let got = run(ts, seconds_gap(30.0, 5)).unwrap();
        assert_eq!(got, [1, 1, 1, 1, 2].map(Some));
    }

    #[test]
    fn null_timestamps_get_null_and_do_not_move_the_clock() {
        let ts: ArrayRef = Arc::new(TimestampSecondArray::from(vec![
            None,
            Some(0),
            None,
            Some(20),
            Some(100),
            None,
        ]));
        let got = run(ts, seconds_gap(30.0, 6)).unwrap();
        assert_eq!(got, [None, Some(1), None, Some(1), Some(2), None]);
    }

    #[test]
    fn fractional_seconds_in_finer_units() {
        let ts: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![0, 700, 1401, 2101]));
        let got = run(ts, seconds_gap(0.7, 4)).unwrap();
        assert_eq!(got, [1, 1, 2, 2].map(Some));
    }

    #[test]
    fn intervals_and_durations_are_gaps() {
        let ts: ArrayRef = Arc::new(TimestampSecondArray::from(vec![0, 1800, 3601]));
        let half_hour = IntervalMonthDayNano::new(0, 0, 1_800_000_000_000);
        let interval: ArrayRef = Arc::new(IntervalMonthDayNanoArray::from(vec![half_hour; 3]));
        assert_eq!(run(ts.clone(), interval).unwrap(), [1, 1, 2].map(Some));
        let duration: ArrayRef = Arc::new(DurationMillisecondArray::from(vec![1_800_000; 3]));
        assert_eq!(run(ts, duration).unwrap(), [1, 1, 2].map(Some));
    }

    #[test]
    fn plain_numbers_use_their_own_units() {
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 5, 6]));
        assert_eq!(
            run(ints, seconds_gap(2.0, 4)).unwrap(),
            [1, 1, 2, 2].map(Some)
        );
        let floats: ArrayRef = Arc::new(Float64Array::from(vec![0.5, 1.0, f64::NAN, 1.75]));
        assert_eq!(
            run(floats, seconds_gap(0.5, 4)).unwrap(),
            [Some(1), Some(1), None, Some(2)]
        );
    }

    #[test]
    fn backwards_time_says_how_to_order_the_window() {
        let ts: ArrayRef = Arc::new(TimestampSecondArray::from(vec![10, 5]));
        let err = run(ts, seconds_gap(1.0, 2)).unwrap_err().to_string();
        assert!(err.contains("goes backwards at row 2"), "{err}");
        assert!(err.contains("ORDER BY ts"), "{err}");
    }

    #[test]
    fn bad_gaps_are_errors() {
        let ts: ArrayRef = Arc::new(TimestampSecondArray::from(vec![0, 1]));
        let null: ArrayRef = Arc::new(Float64Array::from(vec![None, None]));
        assert!(
            run(ts.clone(), null)
                .unwrap_err()
                .to_string()
                .contains("NULL")
        );
        assert!(
            run(ts.clone(), seconds_gap(-1.0, 2))
                .unwrap_err()
                .to_string()
                .contains("non-negative")
        );
        let month = IntervalMonthDayNano::new(1, 0, 0);
        let months: ArrayRef = Arc::new(IntervalMonthDayNanoArray::from(vec![month; 2]));
        assert!(run(ts, months).unwrap_err().to_string().contains("months"));
    }

    #[test]
    fn coercion_accepts_the_documented_types_only() {
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        assert_eq!(
            coerce(&[ts.clone(), DataType::Int32]).unwrap(),
            [ts.clone(), DataType::Float64]
        );
        assert_eq!(
            coerce(&[DataType::Date32, DataType::Interval(IntervalUnit::DayTime)]).unwrap(),
            [
                DataType::Timestamp(TimeUnit::Second, None),
                DataType::Interval(IntervalUnit::MonthDayNano)
            ]
        );
        assert_eq!(
            coerce(&[DataType::Int32, DataType::Int8]).unwrap(),
            [DataType::Int64, DataType::Float64]
        );
        for refused in [
            vec![DataType::Utf8, DataType::Int64],
            vec![ts.clone(), DataType::Utf8],
            vec![
                DataType::Int64,
                DataType::Interval(IntervalUnit::MonthDayNano),
            ],
            vec![ts.clone(), DataType::Interval(IntervalUnit::YearMonth)],
            vec![ts],
        ] {
            assert!(coerce(&refused).is_err(), "{refused:?}");
        }
    }
}

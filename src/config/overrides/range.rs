//! `range(stop)`, `range(start,stop)`, `range(start,stop,step)` (or named `start=`,
//! `stop=`, `step=`): Python's range, stop exclusive, as Hydra reads it. Integers give
//! integers; any decimal makes every value a decimal, each computed as start + i·step (never
//! by adding the step up, which drifts) and rounded to the decimals written, so
//! `range(0,1,0.1)` gives 0.9, not 0.9000000000000001.

use figment::value::Value;

use super::values::{too_many, Refusal};
use super::MAX_TRIALS;

const FIX: &str = "write range(stop), range(start,stop) or range(start,stop,step) with numbers, \
                   stop exclusive, e.g. range(0,5) or range(0,1,0.25)";

#[derive(Clone, Copy)]
enum Number {
    Int(i64),
    Float(f64, u32),
}

impl Number {
    fn float(self) -> f64 {
        match self {
            Number::Int(n) => n as f64,
            Number::Float(x, _) => x,
        }
    }

    fn decimals(self) -> u32 {
        match self {
            Number::Int(_) => 0,
            Number::Float(_, d) => d,
        }
    }
}

/// Decimal places a number is written with (`2.5e-3` has 4), at most 17.
fn decimals_written(text: &str) -> u32 {
    let lower = text.to_ascii_lowercase();
    let (mantissa, exponent) = match lower.split_once('e') {
        Some((m, e)) => (m, e.parse::<i64>().unwrap_or(0)),
        None => (lower.as_str(), 0),
    };
    let fraction = mantissa.split_once('.').map_or(0, |(_, f)| f.len() as i64);
    (fraction - exponent).clamp(0, 17) as u32
}

fn number(raw: &str, text: &str) -> Result<Number, Refusal> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i64>() {
        return Ok(Number::Int(n));
    }
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Number::Float(x, decimals_written(text))),
        _ => Err(Refusal::new(
            format!("cannot read `{raw}` as a range: `{text}` is not a finite number"),
            FIX,
        )),
    }
}

pub fn range(raw: &str, args: &[&str]) -> Result<Vec<Value>, Refusal> {
    let mut positional = Vec::new();
    let (mut start, mut stop, mut step) = (None, None, None);
    for arg in args {
        let named = arg
            .split_once('=')
            .map(|(n, v)| (n.trim(), v))
            .filter(|(n, _)| n.chars().all(|c| c.is_ascii_alphabetic()));
        match named {
            Some(("start", v)) => start = Some(number(raw, v)?),
            Some(("stop", v)) => stop = Some(number(raw, v)?),
            Some(("step", v)) => step = Some(number(raw, v)?),
            Some((other, _)) => {
                return Err(Refusal::new(
                    format!("cannot read `{raw}` as a range: it has no argument `{other}` (start, stop, step)"),
                    FIX,
                ))
            }
            None => positional.push(number(raw, arg)?),
        }
    }
    let (start, stop, step) = match (positional.as_slice(), start, stop, step) {
        ([stop], None, None, step) => (Number::Int(0), *stop, step),
        ([a, b], None, None, step) => (*a, *b, step),
        ([a, b, c], None, None, None) => (*a, *b, Some(*c)),
        ([], Some(a), Some(b), step) => (a, b, step),
        ([], None, Some(b), step) => (Number::Int(0), b, step),
        ([a], None, Some(b), step) => (*a, b, step),
        _ => {
            return Err(Refusal::new(
                format!(
                    "cannot read `{raw}` as a range: give a stop, and at most a start and a step"
                ),
                FIX,
            ))
        }
    };
    let step = step.unwrap_or(Number::Int(1));
    if step.float() == 0.0 {
        return Err(Refusal::new("range step is 0", "give a non-zero step"));
    }
    let values = match (start, stop, step) {
        (Number::Int(a), Number::Int(b), Number::Int(s)) => int_range(raw, a, b, s)?,
        _ => float_range(raw, start, stop, step)?,
    };
    if values.is_empty() {
        return Err(Refusal::new(
            "the range is empty",
            "make stop larger than start (or smaller, with a negative step); stop is exclusive",
        ));
    }
    Ok(values)
}

/// Integer ranges, counted in i128 so that no bound or step overflows.
fn int_range(raw: &str, start: i64, stop: i64, step: i64) -> Result<Vec<Value>, Refusal> {
    let (start, stop, step) = (start as i128, stop as i128, step as i128);
    let count = if step > 0 {
        (stop - start + step - 1).div_euclid(step).max(0)
    } else {
        (start - stop - step - 1).div_euclid(-step).max(0)
    };
    if count > MAX_TRIALS as i128 {
        return Err(too_many(raw, count));
    }
    Ok((0..count)
        .map(|i| Value::from((start + i * step) as i64))
        .collect())
}

/// Decimal ranges: value i is start + i·step rounded to the decimals written; the values
/// are those strictly before stop.
fn float_range(
    raw: &str,
    start: Number,
    stop: Number,
    step: Number,
) -> Result<Vec<Value>, Refusal> {
    let decimals = start.decimals().max(step.decimals());
    let (a, b, s) = (start.float(), stop.float(), step.float());
    let value = |i: usize| {
        let x = a + i as f64 * s;
        format!("{x:.*}", decimals as usize)
            .parse::<f64>()
            .unwrap_or(x)
    };
    let inside = |x: f64| if s > 0.0 { x < b } else { x > b };
    let span = ((b - a) / s).ceil();
    if !span.is_finite() || span > MAX_TRIALS as f64 + 1.0 {
        return Err(too_many(raw, super::super::number(span.max(0.0))));
    }
    let mut count = span.max(0.0) as usize;
    while count > 0 && !inside(value(count - 1)) {
        count -= 1;
    }
    while inside(value(count)) {
        count += 1;
        if count > MAX_TRIALS {
            return Err(too_many(raw, format!("more than {MAX_TRIALS}")));
        }
    }
    Ok((0..count).map(|i| Value::from(value(i))).collect())
}

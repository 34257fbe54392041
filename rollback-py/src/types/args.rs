//! Arguments as Python gives them: durations ([`Seconds`]: seconds or a `timedelta`) and
//! integers of any size ([`Int`]), checked where the target is known so that a bad value
//! is an `InvalidInputError` naming the target and the parameter.

use std::time::Duration;

use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDelta, PyDeltaAccess, PyInt};

use crate::errors::invalid;

/// The longest duration an argument may give: longer is a mistake (and would overflow the
/// clocks the library adds it to).
pub(crate) const MAX_SECONDS: f64 = 366.0 * 86_400.0;

/// A duration argument: seconds (int or float, of any size) or a `datetime.timedelta`.
/// [`Seconds::get`] checks it where the target is known: zero or more, at most
/// [`MAX_SECONDS`], else `InvalidInputError` naming the target and the parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seconds(f64);

impl Seconds {
    /// A default value.
    pub(crate) const fn of(secs: u64) -> Self {
        Seconds(secs as f64)
    }

    /// The duration, or `InvalidInputError` about `target` naming the parameter `what`.
    pub(crate) fn get(self, target: &str, what: &str) -> PyResult<Duration> {
        let secs = self.0;
        if secs.is_nan() || secs < 0.0 {
            return Err(invalid(
                target,
                format!("{what}={secs} is not a duration; give zero or more seconds"),
            ));
        }
        if secs > MAX_SECONDS {
            let shown = if secs.is_finite() {
                format!("{secs:e}")
            } else {
                "an endless".into()
            };
            return Err(invalid(
                target,
                format!(
                    "{what}={shown} seconds is too long; give at most {MAX_SECONDS} (366 days)"
                ),
            ));
        }
        Ok(Duration::from_secs_f64(secs))
    }

    /// [`Seconds::get`] for an optional argument.
    pub(crate) fn get_opt(
        value: Option<Self>,
        target: &str,
        what: &str,
    ) -> PyResult<Option<Duration>> {
        value.map(|v| v.get(target, what)).transpose()
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for Seconds {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(Seconds(if let Ok(delta) = obj.cast::<PyDelta>() {
            delta.get_days() as f64 * 86_400.0
                + delta.get_seconds() as f64
                + delta.get_microseconds() as f64 / 1e6
        } else if obj.is_instance_of::<pyo3::types::PyBool>() {
            return Err(PyTypeError::new_err(
                "a duration is seconds (int or float) or a datetime.timedelta, not a bool",
            ));
        } else if obj.is_instance_of::<PyInt>() {
            // An int too large for a float is too large for a duration, of either sign.
            match obj.extract::<f64>() {
                Ok(secs) => secs,
                Err(_) if obj.gt(0)? => f64::INFINITY,
                Err(_) => f64::NEG_INFINITY,
            }
        } else {
            obj.extract::<f64>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "a duration is seconds (int or float) or a datetime.timedelta, not {}",
                    obj.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?
        }))
    }
}

/// An integer argument of any size, as Python gives it. [`Int::get`] turns it into the type
/// the library takes or raises `InvalidInputError` naming the target and the range, so that
/// a number too large for the Rust side says so instead of raising `OverflowError`. Every
/// integer parameter of the API goes through it.
#[derive(Debug, Clone)]
pub(crate) enum Int {
    /// Fits in an `i64`.
    Fits(i64),
    /// Beyond `i64`, above (true) or below zero, as Python shows it (shortened).
    Huge { positive: bool, shown: String },
}

/// The Rust integer types [`Int::get`] converts to.
pub(crate) trait Bounded: Copy + TryFrom<i64> {
    /// The type's largest value, as an `i64` (capped there).
    const MAX: i64;
}

impl Bounded for u16 {
    const MAX: i64 = u16::MAX as i64;
}
impl Bounded for i32 {
    const MAX: i64 = i32::MAX as i64;
}
impl Bounded for u32 {
    const MAX: i64 = u32::MAX as i64;
}
impl Bounded for usize {
    const MAX: i64 = if usize::BITS >= 64 {
        i64::MAX
    } else {
        usize::MAX as i64
    };
}
impl Bounded for i64 {
    const MAX: i64 = i64::MAX;
}

impl<'a, 'py> FromPyObject<'a, 'py> for Int {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if obj.is_instance_of::<pyo3::types::PyBool>() {
            return Err(PyTypeError::new_err("expected an int, not a bool"));
        }
        match obj.extract::<i64>() {
            Ok(n) => Ok(Int::Fits(n)),
            Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
                let text = obj.str()?.to_string();
                let shown = if text.len() > 24 {
                    let digits = text.trim_start_matches('-').len();
                    format!("{}... ({digits} digits)", &text[..12])
                } else {
                    text
                };
                Ok(Int::Huge {
                    positive: obj.gt(0)?,
                    shown,
                })
            }
            Err(e) => Err(e),
        }
    }
}

impl Int {
    /// The value as `T`, at least `min` and at most `T`'s largest; otherwise an
    /// `InvalidInputError` about `target` whose message shows `what` with `{}` replaced by
    /// the value (`"StepsBack({})"`, `"attempts={}"`).
    pub(crate) fn get<T: Bounded>(&self, target: &str, what: &str, min: i64) -> PyResult<T> {
        self.within(target, what, min, T::MAX)
    }

    /// [`Int::get`] with a largest value of its own (`max` at most `T`'s largest).
    pub(crate) fn within<T: Bounded>(
        &self,
        target: &str,
        what: &str,
        min: i64,
        max: i64,
    ) -> PyResult<T> {
        let max = max.min(T::MAX);
        let (shown, low) = match self {
            Int::Fits(n) if (min..=max).contains(n) => {
                if let Ok(v) = T::try_from(*n) {
                    return Ok(v);
                }
                (n.to_string(), false)
            }
            Int::Fits(n) => (n.to_string(), *n < min),
            Int::Huge { positive, shown } => (shown.clone(), !positive),
        };
        let what = what.replace("{}", &shown);
        Err(invalid(
            target,
            if low {
                format!("{what} is too small; give {min} or more")
            } else {
                format!("{what} is too large; give at most {max}")
            },
        ))
    }
}

/// The Python type name of `obj`, for error messages.
pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".into())
}

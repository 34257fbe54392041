//! Rust `tracing` into Python `logging`, so what the library logs (needs attention, retries,
//! lease take-overs, torn journal lines) is seen, filtered and tested like any Python log.
//!
//! - Installed once when the module is imported, as the process's global `tracing`
//!   subscriber unless the host already set one (that one stays).
//! - Events go to the logger `rollback`, or a child named by the Rust target
//!   (`rollback_core::transaction::engine` logs to `rollback.core.transaction.engine`,
//!   `aws_smithy_runtime::client` to `rollback.aws_smithy_runtime.client`). Levels:
//!   ERROR 40, WARN 30, INFO 20, DEBUG 10, TRACE 5 (named `TRACE` unless 5 has a name).
//!   The message is the event's message, its fields (`key=value`) and the spans it is in;
//!   the record's `rust_target`, `rust_fields` (a dict of str) and `rust_spans` hold them too.
//! - `RUST_LOG` (tracing's filter syntax) chooses which Rust events are candidates; without
//!   it, the library's own crates at every level and other crates at WARN. Python's levels
//!   and handlers decide the rest.
//! - Events come from tokio's worker threads. The GIL is taken only for an event at a level
//!   some `rollback` logger is enabled for: the lowest such level is read (with the GIL)
//!   whenever Python calls into the library, so a level changed during a run counts from the
//!   next call. Never after the interpreter began to exit (an `atexit` hook stops the bridge),
//!   never re-entered from a handler; a blocking call has released the GIL, so waiting for
//!   it cannot deadlock.

use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer};

/// The logger every record goes to (or a child of it).
const LOGGER: &str = "rollback";

/// Which Rust events are candidates without `RUST_LOG`: the library's crates (`rollback_*`,
/// this module's `_rollback`) at every level, anything else at WARN.
const DEFAULT_FILTER: &str = "rollback=trace,_rollback=trace,warn";

/// Python's number for TRACE (below DEBUG).
const TRACE: u32 = 5;

/// The lowest level some `rollback` logger is enabled for, as last read with the GIL.
/// WARNING is Python's default.
static THRESHOLD: AtomicU32 = AtomicU32::new(30);

/// Set when the interpreter begins to exit: no event takes the GIL after that.
static STOPPED: AtomicBool = AtomicBool::new(false);

static LOGGING: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

thread_local! {
    /// Whether this thread is inside a Python handler called by the bridge (an event its
    /// code causes is dropped rather than logged recursively).
    static IN_HANDLER: Cell<bool> = const { Cell::new(false) };
}

fn py_level(level: &Level) -> u32 {
    match *level {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG => 10,
        _ => TRACE,
    }
}

fn logging(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    LOGGING
        .get_or_try_init(py, || py.import("logging").map(Bound::unbind))
        .map(|m| m.bind(py))
}

/// The logger for a Rust target: `rollback_core::lock` -> `rollback.core.lock`, anything
/// else under `rollback.`.
fn logger_name(target: &str) -> String {
    let dotted = target.replace("::", ".");
    if dotted == LOGGER || dotted.starts_with("rollback.") {
        dotted
    } else if let Some(rest) = dotted.strip_prefix("rollback_") {
        format!("{LOGGER}.{rest}")
    } else {
        format!("{LOGGER}.{dotted}")
    }
}

/// The lowest level `rollback` or any logger under it is enabled for.
fn lowest_enabled(py: Python<'_>) -> PyResult<u32> {
    let logging = logging(py)?;
    let logger_class = logging.getattr("Logger")?;
    let root = logging.call_method1("getLogger", (LOGGER,))?;
    let mut lowest: u32 = root.call_method0("getEffectiveLevel")?.extract()?;
    let manager = root.getattr("manager")?;
    // A copy: another thread may add loggers meanwhile.
    let loggers = manager
        .getattr("loggerDict")?
        .cast_into::<PyDict>()?
        .copy()?;
    for (name, logger) in loggers.iter() {
        let Ok(name) = name.extract::<String>() else {
            continue;
        };
        if name.starts_with("rollback.") && logger.is_instance(&logger_class)? {
            lowest = lowest.min(logger.call_method0("getEffectiveLevel")?.extract()?);
        }
    }
    // `logging.disable(n)` turns off n and below.
    let disabled: u32 = manager.getattr("disable")?.extract().unwrap_or(0);
    Ok(if disabled > 0 {
        lowest.max(disabled + 1)
    } else {
        lowest
    })
}

/// Reads the levels of the `rollback` loggers again; called whenever Python calls into
/// the library (it holds the GIL then).
pub(crate) fn refresh(py: Python<'_>) {
    if let Ok(level) = lowest_enabled(py) {
        THRESHOLD.store(level, Ordering::Relaxed);
    }
}

/// An event's or span's fields, as `key=value` text and as pairs.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    pairs: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_string());
        } else {
            self.pairs.push((field.name(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = Some(format!("{value:?}"));
        } else {
            self.pairs.push((field.name(), format!("{value:?}")));
        }
    }
}

impl Fields {
    /// Writes the pairs not `shown` yet (an outer span's `transaction=...` is not repeated
    /// by every inner span and event) and adds them to it.
    fn write_new_pairs(&self, out: &mut String, shown: &mut Vec<(&'static str, String)>) {
        let mut first = true;
        for pair in &self.pairs {
            if shown.contains(pair) {
                continue;
            }
            if !first {
                out.push(' ');
            }
            first = false;
            let _ = write!(out, "{}={}", pair.0, pair.1);
            shown.push(pair.clone());
        }
    }
}

/// The `tracing` layer that hands events to Python.
struct PythonLogging;

impl<S> Layer<S> for PythonLogging
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    // Python's levels change at run time: never let tracing cache "disabled".
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn enabled(&self, meta: &Metadata<'_>, _: Context<'_, S>) -> bool {
        meta.is_span() || py_level(meta.level()) >= THRESHOLD.load(Ordering::Relaxed)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<Fields>() {
                values.record(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = py_level(meta.level());
        if level < THRESHOLD.load(Ordering::Relaxed)
            || STOPPED.load(Ordering::Relaxed)
            || IN_HANDLER.with(Cell::get)
        {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut spans = Vec::new();
        let mut shown = Vec::new();
        let mut message = String::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                message.push_str(span.name());
                if let Some(f) = span.extensions().get::<Fields>() {
                    let mut pairs = String::new();
                    f.write_new_pairs(&mut pairs, &mut shown);
                    if !pairs.is_empty() {
                        let _ = write!(message, "{{{pairs}}}");
                    }
                }
                message.push_str(": ");
                spans.push(span.name());
            }
        }
        message.push_str(fields.message.as_deref().unwrap_or(""));
        let mut pairs = String::new();
        fields.write_new_pairs(&mut pairs, &mut shown);
        if !pairs.is_empty() {
            message.push(' ');
            message.push_str(&pairs);
        }
        let message = guarded(meta.target(), message);
        let record = LogRecord {
            name: logger_name(meta.target()),
            level,
            file: meta.file().unwrap_or("<rust>"),
            line: meta.line().unwrap_or(0),
            target: meta.target(),
            message,
            fields: fields.pairs,
            spans,
        };
        let _ = Python::try_attach(|py| {
            IN_HANDLER.with(|h| h.set(true));
            if let Err(e) = record.emit(py) {
                e.write_unraisable(py, None);
            }
            IN_HANDLER.with(|h| h.set(false));
        });
    }
}

/// The longest message of another crate's event that reaches Python.
const FOREIGN_CHARS: usize = 500;

/// Our crates never log secret values; other crates may (kube-client logs a response body it
/// cannot parse at WARN), so their messages pass through [`rollback_core::redact::excerpt`]:
/// secret-looking values and tokens taken out, at most [`FOREIGN_CHARS`] characters.
fn guarded(target: &str, message: String) -> String {
    let ours = target == "_rollback" || target.starts_with("rollback");
    if ours {
        message
    } else {
        rollback_core::redact::excerpt(&message, FOREIGN_CHARS)
    }
}

/// What a Python `LogRecord` is made of.
struct LogRecord<'a> {
    name: String,
    level: u32,
    file: &'a str,
    line: u32,
    target: &'a str,
    message: String,
    fields: Vec<(&'static str, String)>,
    spans: Vec<&'static str>,
}

impl LogRecord<'_> {
    fn emit(self, py: Python<'_>) -> PyResult<()> {
        let logger = logging(py)?.call_method1("getLogger", (&self.name,))?;
        if !logger
            .call_method1("isEnabledFor", (self.level,))?
            .is_truthy()?
        {
            return Ok(());
        }
        let extra = PyDict::new(py);
        extra.set_item("rust_target", self.target)?;
        let fields = PyDict::new(py);
        for (k, v) in &self.fields {
            fields.set_item(k, v)?;
        }
        extra.set_item("rust_fields", fields)?;
        extra.set_item("rust_spans", PyList::new(py, &self.spans)?)?;
        let none = py.None();
        let record = logger.call_method1(
            "makeRecord",
            (
                &self.name,
                self.level,
                self.file,
                self.line,
                self.message,
                pyo3::types::PyTuple::empty(py),
                &none,
                &none,
                extra,
            ),
        )?;
        logger.call_method1("handle", (record,))?;
        Ok(())
    }
}

/// Stops the bridge at interpreter exit (an `atexit` hook).
#[pyfunction]
fn stop_logging() {
    STOPPED.store(true, Ordering::Relaxed);
}

/// Installs the bridge (at import): the global `tracing` subscriber unless one is set.
pub(crate) fn install(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(PythonLogging);
    if tracing::subscriber::set_global_default(subscriber).is_err() {
        return Ok(()); // the host's subscriber stays
    }
    let logging = logging(py)?;
    let name: String = logging
        .call_method1("getLevelName", (TRACE,))?
        .extract()
        .unwrap_or_default();
    if name == format!("Level {TRACE}") {
        logging.call_method1("addLevelName", (TRACE, "TRACE"))?;
    }
    py.import("atexit")?
        .call_method1("register", (wrap_pyfunction!(stop_logging, m)?,))?;
    refresh(py);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::guarded;

    #[test]
    fn other_crates_messages_are_excerpted_and_secret_free() {
        let body = format!(
            "Unsuccessful data error parse: {{\"token\": \"s3cr3t-t0ken-value\"}} {}",
            "x ".repeat(600)
        );
        let shown = guarded("kube_client::client", body.clone());
        assert!(!shown.contains("s3cr3t-t0ken-value"), "{shown}");
        assert!(shown.chars().count() <= 500, "{}", shown.len());
        assert_eq!(guarded("rollback_core::engine", body.clone()), body);
    }
}

//! Errors: failures are values that name the task they came from.

use crate::key::Key;
use std::fmt;

/// A task's own error, boxed: what a fallible `#[delayed]` function may
/// return and what [`Error::source`](std::error::Error::source) gives back. A
/// computation's error is [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result<T, rdask::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, without the details (match on this, read the rest from
/// `Display`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A task returned `Err`; `source()` is that error.
    Task,
    /// A task panicked; the message is kept.
    Panic,
    /// A raw graph refers to a key it does not hold.
    MissingKey,
    /// A raw graph's dependencies form a cycle.
    Cycle,
    /// A value had another type than the function or caller expected.
    Type,
    /// A value had to be copied for two consumers but its type is not `Clone`.
    NotClone,
    /// A scheduler could not be chosen or started (bad name, bad setting).
    Scheduler,
    /// A worker process died (or stopped, and was killed) while running
    /// the task, and so did the fresh one it was retried on.
    WorkerLost,
    /// A callback panicked.
    Callback,
    /// A diagnostics file could not be written, or a helper program
    /// (Graphviz `dot`) could not be run.
    Io,
}

/// A failed computation: which task (if any), what kind of failure, and why.
///
/// One word wide, so that the engine's `Result`s stay small on the path
/// where nothing fails.
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    key: Option<Key>,
    message: String,
    source: Option<BoxError>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, key: Option<Key>, message: impl Into<String>) -> Error {
        Error(Box::new(Inner {
            kind,
            key,
            message: message.into(),
            source: None,
        }))
    }

    /// A task's own `Err`, kept as the `source()`.
    pub(crate) fn task(key: Key, source: BoxError) -> Error {
        Error(Box::new(Inner {
            kind: ErrorKind::Task,
            message: format!("task `{key}` failed: {source}"),
            key: Some(key),
            source: Some(source),
        }))
    }

    pub(crate) fn panic(key: Key, payload: &(dyn std::any::Any + Send)) -> Error {
        let msg = panic_message(payload);
        Error::new(
            ErrorKind::Panic,
            Some(key.clone()),
            format!("task `{key}` panicked: {msg}"),
        )
    }

    /// A panic in the user's code that the engine ran on the value of
    /// `key` outside its task (`what`: copying or reading an output).
    pub(crate) fn panic_in(what: &str, key: &Key, payload: &(dyn std::any::Any + Send)) -> Error {
        let msg = panic_message(payload);
        Error::new(
            ErrorKind::Panic,
            Some(key.clone()),
            format!("{what} `{key}` panicked: {msg}"),
        )
    }

    pub(crate) fn missing(key: &Key, needed_by: Option<&Key>) -> Error {
        let message = match needed_by {
            Some(by) => format!("key `{key}` (needed by `{by}`) is not in the graph"),
            None => format!("key `{key}` is not in the graph"),
        };
        Error::new(ErrorKind::MissingKey, Some(key.clone()), message)
    }

    pub(crate) fn type_mismatch(key: &Key, what: &str, expected: &str, found: &str) -> Error {
        Error::new(
            ErrorKind::Type,
            Some(key.clone()),
            format!("task `{key}`: {what} expected a value of type `{expected}`, found `{found}`"),
        )
    }

    /// A value a worker process sent that does not decode as `expected`,
    /// met where `what` (an output, a parameter) needed it.
    pub(crate) fn undecodable(key: &Key, what: &str, expected: &str, why: &str) -> Error {
        Error::new(
            ErrorKind::Type,
            Some(key.clone()),
            format!("{what}: the `{expected}` a worker process sent does not decode: {why}"),
        )
    }

    /// Puts `context` in front of the message.
    pub(crate) fn prefix(&mut self, context: &str) {
        self.0.message.insert_str(0, context);
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The key of the task that failed, when one did.
    pub fn key(&self) -> Option<&Key> {
        self.0.key.as_ref()
    }
}

/// The message of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.0.kind);
        if let Some(k) = &self.0.key {
            d.field("key", &format_args!("{k}"));
        }
        d.field("message", &self.0.message);
        if let Some(s) = &self.0.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

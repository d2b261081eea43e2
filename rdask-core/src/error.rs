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
///
/// ```
/// use rdask::ErrorKind;
/// let mut g = rdask::Graph::new();
/// g.insert_alias("b", "a");
/// let e = rdask::get::<i64>(&g, "b").unwrap_err();
/// assert_eq!(e.kind(), ErrorKind::MissingKey);
/// ```
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
    /// A task ran longer than its `timeout_ms`.
    Timeout,
    /// The computation was cancelled (a [`CancelToken`](crate::CancelToken),
    /// Ctrl-C).
    Cancelled,
}

/// A failed computation: which task (if any), what kind of failure, and why.
///
/// One word wide, so that the engine's `Result`s stay small on the path
/// where nothing fails.
///
/// ```
/// use rdask::prelude::*;
///
/// #[delayed]
/// fn parse(s: String) -> Result<i64, std::num::ParseIntError> {
///     s.parse()
/// }
///
/// let e = parse("x1".to_string()).compute().unwrap_err();
/// assert_eq!(e.kind(), rdask::ErrorKind::Task);
/// assert!(e.key().unwrap().to_string().starts_with("parse-"));
/// assert!(e.to_string().contains("invalid digit"));
/// // The task's own error is the source.
/// let cause = std::error::Error::source(&e).unwrap();
/// assert!(cause.downcast_ref::<std::num::ParseIntError>().is_some());
/// ```
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

    /// The same error without its source (for a failure that several
    /// readers report).
    pub(crate) fn duplicate(&self) -> Error {
        Error::new(self.0.kind, self.0.key.clone(), self.0.message.clone())
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
        let (expected, found) = (short_type(expected), short_type(found));
        let hint = literal_hint(&expected, &found);
        Error::new(
            ErrorKind::Type,
            Some(key.clone()),
            format!(
                "task `{key}`: {what} expected a value of type `{expected}`, found `{found}`{hint}"
            ),
        )
    }

    /// A value a worker process sent that does not decode as `expected`,
    /// met where `what` (an output, a parameter) needed it.
    pub(crate) fn undecodable(key: &Key, what: &str, expected: &str, why: &str) -> Error {
        let expected = short_type(expected);
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

    /// Adds `note` at the end of the message.
    pub(crate) fn suffix(&mut self, note: &str) {
        self.0.message.push_str(note);
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

/// `{:?}` is what `main` prints for an `Err`: the kind, the message and
/// the task's own error, for people. `{:#?}` is the struct.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !f.alternate() {
            write!(f, "{:?}: {}", self.0.kind, self.0.message)?;
            // The message already shows the task's error: its causes follow.
            let mut cause = self.0.source.as_deref().and_then(|s| s.source());
            if cause.is_some() {
                f.write_str("\n\nCaused by:")?;
            }
            while let Some(c) = cause {
                write!(f, "\n    {c}")?;
                cause = c.source();
            }
            return Ok(());
        }
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

/// A type's name as a user writes it: each path cut to its last segment
/// (`alloc::vec::Vec<alloc::string::String>` is `Vec<String>`), for error
/// messages.
pub(crate) fn short_type(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    // Where the path being written started in `out`.
    let mut path = 0;
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            out.truncate(path);
        } else {
            if !(c.is_alphanumeric() || c == '_') {
                path = out.len() + c.len_utf8();
            }
            out.push(c);
        }
    }
    out
}

/// For two numbers of different types (a raw graph's unsuffixed literal is
/// an `i32` or `f64`), how to write the one expected.
fn literal_hint(expected: &str, found: &str) -> String {
    const NUMBERS: [&str; 14] = [
        "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize",
        "f32", "f64",
    ];
    match NUMBERS.contains(&expected) && NUMBERS.contains(&found) {
        true => format!(" (an unsuffixed literal is an `{found}`: write `1_{expected}`)"),
        false => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_cut_to_what_a_user_writes() {
        assert_eq!(short_type("alloc::string::String"), "String");
        assert_eq!(
            short_type("alloc::vec::Vec<alloc::string::String>"),
            "Vec<String>"
        );
        assert_eq!(
            short_type("core::option::Option<(i64, &my_crate::m::Model)>"),
            "Option<(i64, &Model)>"
        );
        assert_eq!(short_type("[u8; 4]"), "[u8; 4]");
        assert_eq!(short_type("dyn core::any::Any + Send"), "dyn Any + Send");
    }

    #[test]
    fn a_number_of_another_type_gets_a_literal_hint() {
        let e = Error::type_mismatch(&Key::from("y"), "parameter 1", "i64", "i32");
        assert!(e.to_string().contains("write `1_i64`"), "{e}");
        let e = Error::type_mismatch(
            &Key::from("y"),
            "parameter 1",
            "i64",
            "alloc::string::String",
        );
        assert!(e.to_string().ends_with("found `String`"), "{e}");
    }

    #[test]
    fn debug_is_for_people_and_alternate_debug_is_the_struct() {
        let cause: BoxError = "bad digit".into();
        let e = Error::task(Key::from("parse-1"), cause);
        assert_eq!(format!("{e:?}"), "Task: task `parse-1` failed: bad digit");
        assert!(format!("{e:#?}").starts_with("Error {"));
    }
}

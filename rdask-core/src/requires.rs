//! The bounds the code `rdask-macros` generates must meet, in functions
//! whose paths read as what they require: a compile error's "required by a
//! bound in `rdask::requires::value_type`" says what is wrong. Not public
//! API (hidden from the docs); names and signatures change without notice.

pub use crate::task::remote::{remote_fns, ParamTuple};

use crate::args::IntoArg;
use crate::error::BoxError;
use crate::value::{CloneFn, CloneProbe, Value};
use crate::Delayed;

/// Asserts at compile time that `T` can be a task's value.
pub fn value_type<T: Send + Sync + 'static>() {}

/// Asserts at compile time that `E` can be a fallible task's error.
pub fn error_type<E: TaskError>() {}

/// An error type a fallible `#[delayed]` function may return.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the error of a #[delayed] function",
    label = "this error type does not convert into `Box<dyn Error + Send + Sync>`",
    note = "a task's error crosses threads: use `Box<dyn std::error::Error + Send + Sync>` \
            (or `anyhow::Error`, or an error type that is `Send + Sync`)"
)]
pub trait TaskError {
    /// The error, boxed for the computation's `Error::source`.
    fn into_box(self) -> BoxError;
}

impl<E: Into<BoxError>> TaskError for E {
    #[inline]
    fn into_box(self) -> BoxError {
        self.into()
    }
}

/// A fallible task's result as a value; its `Err` fails the computation.
#[inline]
pub fn fallible_result<R, E>(r: Result<R, E>) -> Result<Value, BoxError>
where
    R: Send + Sync + 'static,
    E: TaskError,
{
    match r {
        Ok(v) => Ok(Value::new(v)),
        Err(e) => Err(e.into_box()),
    }
}

macro_rules! delay_fns {
    ($($f:ident ($($P:ident $a:ident $i:tt),*);)+) => {$(
        /// `delay!` with this many arguments.
        #[allow(clippy::too_many_arguments)]
        pub fn $f<F, R, $($P),*>(
            f: F,
            name: &'static &'static str,
            $($a: impl IntoArg<$P>,)*
            clone: impl FnOnce(CloneProbe<R>) -> Option<CloneFn>,
        ) -> Delayed<R>
        where
            F: Fn($($P),*) -> R + Send + Sync + 'static,
            R: Send + Sync + 'static,
            $($P: Send + Sync + 'static,)*
        {
            let args = [$($a.into_arg(false, None)),*];
            #[allow(unused_variables)]
            Delayed::closure(name, name, args, clone(CloneProbe::new()), move |args| {
                Ok(Value::new(f($(args.take::<$P>($i)?),*)))
            })
        }
    )+};
}

delay_fns! {
    delay0();
    delay1(P0 a0 0);
    delay2(P0 a0 0, P1 a1 1);
    delay3(P0 a0 0, P1 a1 1, P2 a2 2);
    delay4(P0 a0 0, P1 a1 1, P2 a2 2, P3 a3 3);
    delay5(P0 a0 0, P1 a1 1, P2 a2 2, P3 a3 3, P4 a4 4);
    delay6(P0 a0 0, P1 a1 1, P2 a2 2, P3 a3 3, P4 a4 4, P5 a5 5);
    delay7(P0 a0 0, P1 a1 1, P2 a2 2, P3 a3 3, P4 a4 4, P5 a5 5, P6 a6 6);
    delay8(P0 a0 0, P1 a1 1, P2 a2 2, P3 a3 3, P4 a4 4, P5 a5 5, P6 a6 6, P7 a7 7);
}

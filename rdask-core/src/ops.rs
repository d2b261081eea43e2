//! Arithmetic, bit and logic operators on `Delayed` values.
//!
//! `&a + &b`, `a * 2`, `10 - &a`, `-a`, `!flag` each build one lazy task.
//! Operands are copied into the task when still needed elsewhere, so their
//! types must be `Clone`; so must the result, which may be shared.

use crate::delayed::Delayed;
use crate::node::Arg;
use crate::value::{clone_fn_of, Value};
use std::ops::*;

fn operand<T: Clone + Send + Sync + 'static>(d: &Delayed<T>) -> Arg {
    d.arg(false, Some(clone_fn_of::<T>()))
}

fn scalar<T: Clone + Send + Sync + 'static>(x: T) -> Arg {
    Arg::constant(Value::new(x), clone_fn_of::<T>(), false, false)
}

fn binary<A, B, O>(name: &'static &'static str, a: Arg, b: Arg, f: fn(A, B) -> O) -> Delayed<O>
where
    A: Send + Sync + 'static,
    B: Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
{
    Delayed::closure(name, name, [a, b], Some(clone_fn_of::<O>()), move |args| {
        let a = args.take::<A>(0)?;
        let b = args.take::<B>(1)?;
        Ok(Value::new(f(a, b)))
    })
}

fn unary<A, O>(name: &'static &'static str, a: Arg, f: fn(A) -> O) -> Delayed<O>
where
    A: Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
{
    Delayed::closure(name, name, [a], Some(clone_fn_of::<O>()), move |args| {
        Ok(Value::new(f(args.take::<A>(0)?)))
    })
}

macro_rules! delayed_binop {
    ($Trait:ident $method:ident $name:literal, $($L:ty)*) => {
        delayed_binop!(@pair $Trait $method $name, Delayed<T>, Delayed<U>);
        delayed_binop!(@pair $Trait $method $name, &Delayed<T>, Delayed<U>);
        delayed_binop!(@pair $Trait $method $name, Delayed<T>, &Delayed<U>);
        delayed_binop!(@pair $Trait $method $name, &Delayed<T>, &Delayed<U>);
        delayed_binop!(@scalar $Trait $method $name: $($L)*);
    };
    // A scalar on either side: one impl per scalar type, with the same type
    // inside the `Delayed`. Concrete impls let `&d + 1` infer the literal's
    // type at once (and a generic `impl<T> Add<Delayed<T>> for i64 where
    // i64: Add<T>` would send the compiler into a loop on plain `usize + 1`).
    (@scalar $Trait:ident $method:ident $name:literal: $($P:ty)*) => {$(
        impl $Trait<$P> for Delayed<$P> {
            type Output = Delayed<<$P as $Trait>::Output>;
            fn $method(self, rhs: $P) -> Self::Output {
                binary(&$name, operand(&self), scalar(rhs), |a: $P, b: $P| a.$method(b))
            }
        }
        impl $Trait<$P> for &Delayed<$P> {
            type Output = Delayed<<$P as $Trait>::Output>;
            fn $method(self, rhs: $P) -> Self::Output {
                binary(&$name, operand(self), scalar(rhs), |a: $P, b: $P| a.$method(b))
            }
        }
        impl $Trait<Delayed<$P>> for $P {
            type Output = Delayed<<$P as $Trait>::Output>;
            fn $method(self, rhs: Delayed<$P>) -> Self::Output {
                binary(&$name, scalar(self), operand(&rhs), |a: $P, b: $P| a.$method(b))
            }
        }
        impl $Trait<&Delayed<$P>> for $P {
            type Output = Delayed<<$P as $Trait>::Output>;
            fn $method(self, rhs: &Delayed<$P>) -> Self::Output {
                binary(&$name, scalar(self), operand(rhs), |a: $P, b: $P| a.$method(b))
            }
        }
    )*};
    (@pair $Trait:ident $method:ident $name:literal, $L:ty, $R:ty) => {
        impl<T, U> $Trait<$R> for $L
        where
            T: $Trait<U> + Clone + Send + Sync + 'static,
            U: Clone + Send + Sync + 'static,
            T::Output: Clone + Send + Sync + 'static,
        {
            type Output = Delayed<T::Output>;
            fn $method(self, rhs: $R) -> Self::Output {
                binary(&$name, operand(&self), operand(&rhs), |a: T, b: U| a.$method(b))
            }
        }
    };
}

delayed_binop!(Add add "add", i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize f32 f64);
delayed_binop!(Sub sub "sub", i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize f32 f64);
delayed_binop!(Mul mul "mul", i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize f32 f64);
delayed_binop!(Div div "truediv", i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize f32 f64);
delayed_binop!(Rem rem "mod", i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize f32 f64);
delayed_binop!(BitAnd bitand "and", i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize bool);
delayed_binop!(BitOr bitor "or", i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize bool);
delayed_binop!(BitXor bitxor "xor", i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize bool);
delayed_binop!(Shl shl "lshift", i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize);
delayed_binop!(Shr shr "rshift", i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize);

macro_rules! delayed_unop {
    ($Trait:ident $method:ident $name:literal) => {
        impl<T> $Trait for Delayed<T>
        where
            T: $Trait + Clone + Send + Sync + 'static,
            T::Output: Clone + Send + Sync + 'static,
        {
            type Output = Delayed<T::Output>;
            fn $method(self) -> Self::Output {
                unary(&$name, operand(&self), |a: T| a.$method())
            }
        }
        impl<T> $Trait for &Delayed<T>
        where
            T: $Trait + Clone + Send + Sync + 'static,
            T::Output: Clone + Send + Sync + 'static,
        {
            type Output = Delayed<T::Output>;
            fn $method(self) -> Self::Output {
                unary(&$name, operand(self), |a: T| a.$method())
            }
        }
    };
}

delayed_unop!(Neg neg "neg");
delayed_unop!(Not not "invert");

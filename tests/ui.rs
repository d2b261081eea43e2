//! Compile-time behaviour of the macros: what must be refused, with an error
//! on the user's token that says what to do (`tests/ui/fail`), and what must
//! build and run (`tests/ui/pass`, each a `main` that computes and asserts).
//!
//! The `.stderr` files are rustc's output, so they follow the toolchain (and,
//! for trait errors, the impls of `IntoArg` that rustc lists). After a
//! deliberate change to a message, regenerate them with
//! `TRYBUILD=overwrite cargo test --test ui` and read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}

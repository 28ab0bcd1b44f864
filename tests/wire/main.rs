//! The wire protocol codec (`pie::wire`) on its own: the specification's byte-exact vectors and
//! a fuzz-style robustness run of the decoders.

mod fuzz;
mod support;
mod vectors;

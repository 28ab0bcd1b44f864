//! The C ABI from real C programs (tests/c), compiled against include/pie.h and the library
//! cargo built for this run.

mod programs;
mod reliability_kill;
#[path = "../ship/scratch.rs"]
mod scratch;
mod v05;

//! Reliability (docs/RELIABILITY.md): the server going away, server defects and hostile input,
//! a slow host, through the Rust core and through the C ABI called from Rust.

mod capi;
mod disconnect;
mod event_fd;
mod faults;
mod ffi;
mod overflow;
mod regressions;
mod support;

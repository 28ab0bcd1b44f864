//! What users get: the examples (built and run), the installed package (pkg-config, CMake,
//! static linking) and a header that is current.

mod examples;
mod header_current;
mod packaging;
mod scratch;
mod support;

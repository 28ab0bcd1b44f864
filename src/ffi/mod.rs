//! The C ABI of libpie: a thin layer over the Rust core. Its doc comments become
//! `include/pie.h` (cbindgen; cbindgen.toml holds the header's overview). The header follows
//! the order of the `mod` lines below: errors, strings, keys, connection options, client,
//! operations, instances, instance lists, events.
//!
//! # One object per file
//!
//! | file | holds |
//! |---|---|
//! | `status.rs` | PieStatus, pie_status_name |
//! | `error.rs` | PieError (+ `Fail`, the Rust side of it) |
//! | `boundary.rs` | the one boundary helper (`boundary`, with `call`/`value` shapes), argument checks, the `timeout_ms` rule |
//! | `string.rs` | pie_string_free, text -> C string |
//! | `hash.rs` | pie_hash_blob |
//! | `key.rs` | PieKey |
//! | `options.rs` | PieConnectOptions |
//! | `client.rs` | PieClient and the client-level network calls |
//! | `op.rs` | PieOp (a leaf: knows no handle type) |
//! | `call.rs` | `Call`: one network call, run blocking or started as a PieOp |
//! | `instance.rs` | PieInstance: launch/attach, its own calls, event delivery |
//! | `instance_list.rs` | PieInstanceList and pie_client_list_instances |
//! | `event.rs` | PieEvent and its accessors |
//! | `callback.rs` | `Callback`, the one carrier of every callback registration |
//! | `dispatch.rs` | `Dispatcher`, the per-client callback thread |
//! | `wake_fd.rs` | `WakeFd`, behind pie_client_event_fd |
//! | `runtime.rs` | `Rt`, the hidden reference-counted tokio runtime |
//!
//! # Imports (an arrow points at what a file uses; there is no cycle)
//!
//! ```text
//! status <- error <- boundary <- string, hash, key, options
//! runtime <- dispatch <- callback
//! {boundary, callback, dispatch, runtime} <- op <- call
//! {call, op, key, options, hash, wake_fd} <- client
//! op <- event          {client, call} <- instance_list
//! {client, event, call, op} <- instance
//! ```
//! `pie_op_take_*` live next to the type they produce (pie_op_take_client in client.rs,
//! pie_op_take_instance in instance.rs, ...), so op.rs depends on no handle type.
//!
//! # Adding a network call
//!
//! In the file of the handle it is called on, three items:
//!
//! ```ignore
//! unsafe fn frobnicate(client: *const PieClient, name: *const c_char)
//!     -> FfiResult<Call<impl Future<Output = FfiResult<Answer>>>> {
//!     let c = client_arg(client)?;                       // check and copy every argument
//!     let name = arg_str(name, "name")?.to_owned();
//!     let core = c.core.clone();
//!     Ok(c.call(async move { Ok(core.frobnicate(&name).await?) }))   // one core future
//! }
//! /// doc comment (it is the manual)
//! #[no_mangle]
//! pub unsafe extern "C" fn pie_client_frobnicate(client, name, out_answer, out_err) -> PieStatus {
//!     call(out_err, || { let out = arg_out(out_answer, "out_answer")?;
//!                        *out = frobnicate(client, name)?.block()?.into_c(); Ok(()) })
//! }
//! /// doc comment
//! #[no_mangle]
//! pub unsafe extern "C" fn pie_client_frobnicate_async(client, name, out_op, out_err) -> PieStatus {
//!     start_async(out_op, out_err, || frobnicate(client, name))
//! }
//! ```
//! The blocking extern drives the future on the caller's thread (no PieOp); the `_async` one
//! wraps the same future in a PieOp, whose value a `pie_op_take_*` (next to the value's type)
//! or `pie_op_result_*` hands out. Every extern body goes through `boundary` (`call` for
//! status-returning functions, `value` for accessors), which catches panics.
//!
//! Safety contract of every `unsafe extern "C"` function: pointer arguments are NULL (checked)
//! or valid for the access the header documents; handles come from libpie and are not yet freed.
//! It is written once, in the header overview and per function, not in `# Safety` sections.
#![allow(clippy::missing_safety_doc)]

// Exported items, in the order of the header (one `mod` per group: rustfmt would sort a group,
// and cbindgen emits items in the order it meets them).
// Errors: status codes.
mod status;
// Errors: error objects.
mod error;
// The drop-callback typedef every registration shares.
mod callback;
// Strings libpie hands out.
mod string;
// Program and blob hashes.
mod hash;
// Keys.
mod key;
// Connection options.
mod options;
// Client.
mod client;
// Operations.
mod op;
// Instances.
mod instance;
// Instance lists.
mod instance_list;
// Events.
mod event;

// Internal machinery.
mod boundary;
mod call;
mod dispatch;
mod runtime;
mod wake_fd;

// Every exported function and type is reachable as `pie::ffi::<name>`, so Rust tests and
// benchmarks call the real exports instead of re-declaring the ABI.
pub use callback::*;
pub use client::*;
pub use error::*;
pub use event::*;
pub use hash::*;
pub use instance::*;
pub use instance_list::*;
pub use key::*;
pub use op::*;
pub use options::*;
pub use status::*;
pub use string::*;

/// Major version of the header (semantic versioning; before 1.0 an incompatible change bumps
/// the minor version).
pub const PIE_VERSION_MAJOR: u32 = 0;
/// Minor version of the header.
pub const PIE_VERSION_MINOR: u32 = 2;
/// Patch version of the header.
pub const PIE_VERSION_PATCH: u32 = 0;
/// PIE_VERSION_MAJOR * 10000 + PIE_VERSION_MINOR * 100 + PIE_VERSION_PATCH, for `#if` checks.
pub const PIE_VERSION_NUMBER: u32 = 200;

/// The library version, e.g. "0.2.0": a static NUL-terminated string, never NULL, never freed.
/// It is the version of the shared library actually loaded, which may differ from the header's
/// PIE_VERSION_* macros the host was compiled with.
#[no_mangle]
pub extern "C" fn pie_version() -> *const std::ffi::c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_constants_match_cargo() {
        let parse = |s: &str| s.parse::<u32>().unwrap();
        assert_eq!(PIE_VERSION_MAJOR, parse(env!("CARGO_PKG_VERSION_MAJOR")));
        assert_eq!(PIE_VERSION_MINOR, parse(env!("CARGO_PKG_VERSION_MINOR")));
        assert_eq!(PIE_VERSION_PATCH, parse(env!("CARGO_PKG_VERSION_PATCH")));
        assert_eq!(
            PIE_VERSION_NUMBER,
            PIE_VERSION_MAJOR * 10000 + PIE_VERSION_MINOR * 100 + PIE_VERSION_PATCH
        );
        let v = unsafe { std::ffi::CStr::from_ptr(pie_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}

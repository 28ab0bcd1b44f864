//! libpie: a client library for the Pie programmable LLM serving system, with a C ABI.
//!
//! Layers, bottom to top: [`wire`] (messages and their encoding), [`client`] (the async Rust
//! client core, mirroring the Pie client: `Client`, `Instance`, `InstanceEvent`), [`keys`]
//! (SSH private keys for authentication), `ffi` (the C ABI, whose doc comments become
//! `include/pie.h`).

pub mod client;
pub mod error;
pub mod ffi;
pub mod keys;
pub mod log;
mod msgpack;
pub mod wire;
pub mod wire05;

pub use client::{
    Client, ClientConfig, Instance, InstanceEvent, InstanceInfo, InstanceStatus, ProcessInfo,
    ProgressFn, Protocol,
};
pub use error::{Error, ErrorKind, Result};
pub use keys::{KeyAlgorithm, PrivateKey};
pub use wire::hash_blob;

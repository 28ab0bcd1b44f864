//! SSH keys: every format the real tools write, the errors for everything else, and
//! authentication with each key type against the simulator.

mod auth_e2e;
mod errors;
mod formats;
mod support;

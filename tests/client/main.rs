//! The async client core (`pie::Client`, `pie::Instance`) against the simulator and a scripted
//! fake server: every call, faults, latency, scale, throughput, TLS.

mod e2e;
mod fake_server;
mod faults;
mod latency;
mod scale;
mod support;
mod throughput;
mod tls;
mod v05;
mod v05_sim;

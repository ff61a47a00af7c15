//! upgate's benchmarks. `benches/micro.rs` times the pure stages with criterion; the
//! `upgate-bench` binary runs upgate and nginx side by side under load (docs/performance.md).

pub mod client;
pub mod files;
pub mod proc_stat;
pub mod report;
pub mod scenarios;
pub mod servers;

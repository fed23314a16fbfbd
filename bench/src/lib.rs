//! The benchmark harness behind `grito-bench` and `cargo bench -p grito-bench`:
//! each module measures one figure next to its floor.

pub mod database;
pub mod dispatch;
pub mod end_to_end;
pub mod fixtures;
pub mod floor;
pub mod grito_process;
pub mod ingest;
pub mod memory;
pub mod plugin_cost;
pub mod receiver;
pub mod report;
pub mod stats;
pub mod wrk;

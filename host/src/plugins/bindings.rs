//! Rust bindings for the three plugin worlds of `wit/grito.wit`.
//!
//! The `condition` bindings generate the shared `types` and `host`
//! interfaces; `action` and `normalizer` reuse them through `with`, so one
//! linker and one `Host` implementation serve every plugin kind.

pub mod condition {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "condition",
    });
}

pub mod action {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "action",
        with: {
            "grito:plugin/types": super::condition::grito::plugin::types,
            "grito:plugin/host": super::condition::grito::plugin::host,
        },
    });
}

pub mod normalizer {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "normalizer",
        with: {
            "grito:plugin/types": super::condition::grito::plugin::types,
            "grito:plugin/host": super::condition::grito::plugin::host,
        },
    });
}

pub use condition::grito::plugin::host::{self as host_interface, LogLevel};
pub use condition::grito::plugin::types;

//! Builds the built-in plugins (`plugins/email`, `plugins/webhook` and
//! `plugins/condition-sql`) for wasm32-wasip2 and writes
//! `builtin_plugins.rs`, which embeds them with `include_bytes!`.
//!
//! The plugins build with their own `--target-dir`, so the nested cargo never
//! waits on the lock of the build that runs this script. All three are
//! required: automations need them, so a failed plugin build fails the host
//! build with cargo's error.

use std::path::{Path, PathBuf};
use std::process::Command;

/// (cargo package, plugin name, required).
const PLUGINS: &[(&str, &str, bool)] = &[
    ("grito-email", "email", true),
    ("grito-webhook", "webhook", true),
    ("grito-condition-sql", "condition-sql", true),
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let plugins_dir = manifest_dir.join("../plugins");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir = plugin_target_dir(&out_dir);

    for watched in ["../wit", "../plugins/Cargo.toml", "../plugins/Cargo.lock", "../plugins/email", "../plugins/webhook", "../plugins/condition-sql"] {
        println!("cargo:rerun-if-changed={watched}");
    }

    let mut embedded = Vec::new();
    for &(package, name, required) in PLUGINS {
        let crate_dir = plugins_dir.join(name);
        if !crate_dir.join("Cargo.toml").is_file() {
            assert!(!required, "built-in plugin crate {} is missing", crate_dir.display());
            continue;
        }
        match build_plugin(&plugins_dir, &target_dir, package) {
            Ok(wasm) => embedded.push((name, wasm)),
            Err(error) if required => panic!("{error}"),
            Err(error) => {
                println!("cargo:warning=built-in plugin `{name}` is not embedded because it did not build: {}", first_line(&error));
            }
        }
    }

    let mut source = String::from("pub const BUILTINS: &[Builtin] = &[\n");
    for (name, wasm) in embedded {
        source.push_str(&format!("    Builtin {{ name: {name:?}, wasm: include_bytes!({:?}) }},\n", wasm.display().to_string()));
    }
    source.push_str("];\n");
    std::fs::write(out_dir.join("builtin_plugins.rs"), source).expect("OUT_DIR is writable");
}

/// `TARGET_ROOT/wasm-plugins`, where TARGET_ROOT is the cargo target folder
/// holding `OUT_DIR` (found by its `CACHEDIR.TAG`), so every profile shares
/// one plugin build; falls back to `OUT_DIR/wasm-plugins`.
fn plugin_target_dir(out_dir: &Path) -> PathBuf {
    let root = out_dir.ancestors().find(|dir| dir.join("CACHEDIR.TAG").is_file()).unwrap_or(out_dir);
    root.join("wasm-plugins")
}

fn build_plugin(plugins_dir: &Path, target_dir: &Path, package: &str) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--locked", "--target", "wasm32-wasip2", "-p", package])
        .arg("--manifest-path")
        .arg(plugins_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    // Cargo's variables for this build script (target, features, flags)
    // would leak into the nested build; keep only where cargo lives.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let cargo_variable = key.starts_with("CARGO_") && key != "CARGO_HOME";
        if cargo_variable || matches!(key.as_ref(), "RUSTFLAGS" | "RUSTC" | "RUSTC_WRAPPER" | "RUSTC_WORKSPACE_WRAPPER" | "RUSTDOC" | "DEBUG" | "OPT_LEVEL" | "PROFILE" | "TARGET" | "HOST" | "NUM_JOBS" | "OUT_DIR") {
            command.env_remove(key.as_ref());
        }
    }

    let output = command.output().map_err(|error| format!("cannot run cargo to build plugin {package}: {error}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("wasm32-wasip2") && (stderr.contains("target may not be installed") || stderr.contains("can't find crate for `core`") || stderr.contains("can't find crate for `std`")) {
            return Err("the wasm32-wasip2 Rust target is not installed, so the built-in plugins cannot be built. \
                        Run `rustup target add wasm32-wasip2` and build again."
                .to_owned());
        }
        return Err(format!("building plugin {package} for wasm32-wasip2 failed:\n{stderr}"));
    }

    let file = format!("{}.wasm", package.replace('-', "_"));
    let wasm = target_dir.join("wasm32-wasip2/release").join(file);
    if !wasm.is_file() {
        return Err(format!("building plugin {package} produced no {}", wasm.display()));
    }
    Ok(wasm)
}

fn first_line(text: &str) -> &str {
    text.lines().rev().find(|line| line.contains("error")).unwrap_or_else(|| text.lines().next().unwrap_or(""))
}

//! Compiled plugin code cached on disk, so a restart skips recompiling.
//!
//! An entry is keyed by the SHA-256 of the `.wasm` bytes and by the engine's
//! compatibility hash (wasmtime version and engine settings). A second file
//! holds the SHA-256 of the compiled bytes; an entry whose bytes do not match
//! it, or that wasmtime rejects, is compiled again and overwritten.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Counts of cache use since start, for tests and `grito plugins list`.
#[derive(Debug, Default)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub compiles: AtomicU64,
}

/// A snapshot of `CacheStats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CacheCounts {
    pub hits: u64,
    pub compiles: u64,
}

impl CacheStats {
    pub fn counts(&self) -> CacheCounts {
        CacheCounts { hits: self.hits.load(Ordering::Relaxed), compiles: self.compiles.load(Ordering::Relaxed) }
    }
}

/// The hex SHA-256 of `bytes`.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Returns the compiled component for `wasm`, from the cache when a valid
/// entry exists, else compiling it and writing a new entry.
pub fn load_component(engine: &Engine, cache_dir: Option<&Path>, wasm: &[u8], stats: &CacheStats) -> anyhow::Result<Component> {
    let Some(cache_dir) = cache_dir else {
        stats.compiles.fetch_add(1, Ordering::Relaxed);
        return Component::new(engine, wasm).map_err(anyhow::Error::from);
    };
    let entry = entry_path(engine, cache_dir, wasm);

    match read_entry(engine, &entry) {
        Ok(Some(component)) => {
            stats.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(component);
        }
        Ok(None) => {}
        Err(error) => tracing::warn!(entry = %entry.display(), error = %format!("{error:#}"), "compiled plugin cache entry is invalid; recompiling"),
    }

    stats.compiles.fetch_add(1, Ordering::Relaxed);
    let component = Component::new(engine, wasm).map_err(anyhow::Error::from)?;
    if let Err(error) = write_entry(&component, &entry) {
        tracing::warn!(entry = %entry.display(), error = %format!("{error:#}"), "cannot write compiled plugin cache entry");
    }
    Ok(component)
}

fn entry_path(engine: &Engine, cache_dir: &Path, wasm: &[u8]) -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let engine_hash = hasher.finish();
    cache_dir.join(format!("{}-{engine_hash:016x}.cwasm", content_hash(wasm)))
}

fn digest_path(entry: &Path) -> PathBuf {
    entry.with_extension("cwasm.sha256")
}

/// `Ok(None)` when there is no entry; an error when the entry is unusable.
fn read_entry(engine: &Engine, entry: &Path) -> anyhow::Result<Option<Component>> {
    let bytes = match std::fs::read(entry) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let expected = std::fs::read_to_string(digest_path(entry)).unwrap_or_default();
    anyhow::ensure!(expected.trim() == content_hash(&bytes), "its digest does not match its contents");

    // SAFETY: `Component::deserialize` trusts its input to be code compiled
    // by this wasmtime. The entry was written by `write_entry` below from
    // `Component::serialize`, its name carries the engine's compatibility
    // hash, and its bytes were just checked against the digest written
    // beside it, so it is exactly what this host serialized.
    let component = unsafe { Component::deserialize(engine, &bytes) }.map_err(anyhow::Error::from)?;
    Ok(Some(component))
}

/// Writes the entry and its digest through temporary files and renames, so a
/// reader never sees a half-written entry.
fn write_entry(component: &Component, entry: &Path) -> anyhow::Result<()> {
    let bytes = component.serialize().map_err(anyhow::Error::from)?;
    let dir = entry.parent().expect("cache entries live in the cache folder");
    std::fs::create_dir_all(dir)?;

    let suffix = format!(".tmp-{}", uuid::Uuid::new_v4().simple());
    let temporary_entry = PathBuf::from(format!("{}{suffix}", entry.display()));
    let temporary_digest = PathBuf::from(format!("{}{suffix}", digest_path(entry).display()));
    std::fs::write(&temporary_entry, &bytes)?;
    std::fs::write(&temporary_digest, content_hash(&bytes))?;
    std::fs::rename(&temporary_digest, digest_path(entry))?;
    std::fs::rename(&temporary_entry, entry)?;
    Ok(())
}

# Longer recipes. The README's two commands (scripts/serve, scripts/test)
# work without `just`.

# Run the server on the embedded default (SQLite, built-in plugins).
serve:
    scripts/serve

# Run every test on SQLite and PostgreSQL.
test *ARGS:
    scripts/test {{ARGS}}

# Build the plugins for wasm32-wasip2 into plugins/target.
plugins:
    scripts/setup
    cargo build --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml --workspace

# Benchmarks against their floors (PostgreSQL at 127.0.0.1:5432/test and
# SQLite); `just bench --quick` is a ~2-minute smoke run. See docs/benchmarks.md.
bench *ARGS:
    command -v wrk >/dev/null || apt-get install -y wrk || sudo apt-get install -y wrk
    cargo build --release -p grito -p grito-bench
    "${CARGO_TARGET_DIR:-target}/release/grito-bench" {{ARGS}}

# Format and lint.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# What CI runs, from this tree.
ci:
    bash .ci/run

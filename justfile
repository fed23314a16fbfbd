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

# Format and lint.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# What CI runs, from this tree.
ci:
    bash .ci/run

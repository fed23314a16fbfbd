//! Criterion micro-benchmarks of the welcome automation's condition and
//! action: through Wasm (`PluginHost`, a fresh instance per call) and the
//! same logic in native Rust. Run with `cargo bench -p grito-bench --bench plugins`.

use criterion::{Criterion, criterion_group, criterion_main};
use grito_bench::{fixtures, plugin_cost};

fn plugins(criterion: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let data_dir = tempfile::tempdir().expect("temporary folder");
    let host = runtime.block_on(plugin_cost::open_host(data_dir.path())).expect("plugin host with built-ins");
    let event = fixtures::stored_event();
    let action = fixtures::email_action();
    let action_text = action.to_string();
    let now = chrono::Utc::now();

    let mut group = criterion.benchmark_group("welcome_automation");
    group.bench_function("wasm_condition", |bencher| {
        bencher.to_async(&runtime).iter(|| async { host.evaluate_condition(&event, fixtures::CONDITION, now).await.expect("condition") })
    });
    group.bench_function("wasm_action", |bencher| {
        bencher.to_async(&runtime).iter(|| async { host.run_action(&event, &action, now).await.expect("action") })
    });
    group.bench_function("wasm_condition_and_action", |bencher| {
        bencher
            .to_async(&runtime)
            .iter(|| async { plugin_cost::wasm_condition_and_action(&host, &event, &action).await.expect("condition and action") })
    });
    group.bench_function("native_condition_and_action", |bencher| {
        bencher.iter(|| plugin_cost::native_condition_and_action(&event, &action_text).expect("condition and action"))
    });
    group.finish();
}

criterion_group!(benches, plugins);
criterion_main!(benches);

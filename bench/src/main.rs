//! `grito-bench`: measures ingest, plugins, dispatch, end-to-end latency and
//! memory of Grito next to their floors and prints one table. See
//! `docs/benchmarks.md` for what each figure means.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use grito_bench::database::Backend;
use grito_bench::report::{self, Row};
use grito_bench::stats::Summary;
use grito_bench::wrk::Load;
use grito_bench::{dispatch, end_to_end, ingest, memory, plugin_cost};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Suite {
    All,
    Ingest,
    Plugins,
    Dispatch,
    EndToEnd,
    Memory,
}

#[derive(Debug, Parser)]
#[command(about = "Benchmarks Grito against its floors and prints one table")]
struct Options {
    /// The figures to measure: all, or one suite.
    #[arg(value_enum, default_value = "all")]
    suite: Suite,
    /// Short smoke run (about 2 minutes): one run each, short loads, fewer plugin calls.
    #[arg(long)]
    quick: bool,
    /// Runs per figure; the table shows their median, min and max [default: 3, or 1 with --quick].
    #[arg(long)]
    runs: Option<usize>,
    /// Base PostgreSQL URL; each run creates and drops its own schema in it.
    #[arg(long, env = "BENCH_DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
    /// Skip SQLite (ingest and dispatch run on both backends by default).
    #[arg(long)]
    postgres_only: bool,
    /// The `grito` binary to serve [default: `grito` beside this program].
    #[arg(long)]
    grito_bin: Option<PathBuf>,
    /// `RUST_LOG` for the served binary.
    #[arg(long, default_value = "warn")]
    server_log: String,
    /// Seconds of `wrk` load per ingest run [default: 10, or 3 with --quick].
    #[arg(long)]
    ingest_seconds: Option<u64>,
    /// Seconds to wait after an ingest load for every delivery and run to finish [default: 60, or 30 with --quick].
    #[arg(long)]
    drain_seconds: Option<u64>,
    /// Open connections of `wrk`.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// Seconds of steady load per end-to-end run [default: 20, or 5 with --quick].
    #[arg(long)]
    e2e_seconds: Option<u64>,
    /// Events per second of the end-to-end steady load.
    #[arg(long, default_value_t = 500)]
    rate: u32,
    /// Deliveries per dispatch run [default: 5000, or 1000 with --quick].
    #[arg(long)]
    deliveries: Option<usize>,
    /// Plugin calls of the memory loop (a condition and an action count as 2) [default: 1000000, or 20000 with --quick].
    #[arg(long)]
    plugin_calls: Option<usize>,
}

struct Plan {
    runs: usize,
    backends: Vec<Backend>,
    grito_bin: PathBuf,
    load: Load,
    e2e_duration: Duration,
    drain_limit: Duration,
    deliveries: usize,
    plugin_calls: usize,
    cost_calls: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let plan = plan(&options)?;
    let started = Instant::now();
    let wants = |suite: Suite| options.suite == Suite::All || options.suite == suite;
    print_machine();

    let mut rows = Vec::new();
    let mut cpu_per_event_us = None;
    if wants(Suite::Ingest) {
        for &backend in &plan.backends {
            let (backend_rows, cpu) = measure_ingest(&options, &plan, backend).await?;
            rows.extend(backend_rows);
            if backend == Backend::Postgres {
                cpu_per_event_us = cpu;
            }
        }
    }
    if wants(Suite::Plugins) || wants(Suite::Memory) {
        let data_dir = tempfile::tempdir()?;
        let host = plugin_cost::open_host(data_dir.path()).await?;
        if wants(Suite::Plugins) {
            rows.extend(measure_plugins(&plan, &host, cpu_per_event_us).await?);
        }
        if wants(Suite::Memory) {
            rows.extend(measure_plugin_memory(&plan, &host).await?);
        }
    }
    if wants(Suite::Dispatch) {
        for &backend in &plan.backends {
            rows.extend(measure_dispatch(&options, &plan, backend).await?);
        }
    }
    if wants(Suite::EndToEnd) || wants(Suite::Memory) {
        rows.extend(measure_end_to_end(&options, &plan).await?);
    }

    println!();
    report::print(&rows);
    println!("\n{} runs per figure; whole run took {:.0} s.", plan.runs, started.elapsed().as_secs_f64());
    Ok(())
}

fn plan(options: &Options) -> anyhow::Result<Plan> {
    let quick = options.quick;
    let grito_bin = match &options.grito_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("grito"),
    };
    let mut backends = vec![Backend::Postgres];
    if !options.postgres_only {
        backends.push(Backend::Sqlite);
    }
    Ok(Plan {
        runs: options.runs.unwrap_or(if quick { 1 } else { 3 }).max(1),
        backends,
        grito_bin,
        load: Load {
            connections: options.connections,
            threads: 2,
            duration: Duration::from_secs(options.ingest_seconds.unwrap_or(if quick { 3 } else { 10 })),
        },
        drain_limit: Duration::from_secs(options.drain_seconds.unwrap_or(if quick { 30 } else { 60 })),
        e2e_duration: Duration::from_secs(options.e2e_seconds.unwrap_or(if quick { 5 } else { 20 })),
        deliveries: options.deliveries.unwrap_or(if quick { 1_000 } else { 5_000 }),
        plugin_calls: options.plugin_calls.unwrap_or(if quick { 20_000 } else { 1_000_000 }),
        cost_calls: if quick { 500 } else { 2_000 },
    })
}

fn print_machine() {
    let cores = std::thread::available_parallelism().map(|cores| cores.get()).unwrap_or(0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let memory = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let total = memory.lines().next().unwrap_or_default();
    println!(
        "grito-bench at {} on {cores} cores, {}; load average {}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        total.split_whitespace().collect::<Vec<_>>().join(" "),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
}

fn summary(values: impl Iterator<Item = f64>) -> Option<Summary> {
    Summary::of(&values.collect::<Vec<_>>())
}

async fn measure_ingest(options: &Options, plan: &Plan, backend: Backend) -> anyhow::Result<(Vec<Row>, Option<f64>)> {
    let ingest_options = ingest::IngestOptions {
        grito_binary: &plan.grito_bin,
        postgres_base: &options.postgres_url,
        load: plan.load,
        drain_limit: plan.drain_limit,
        log_filter: &options.server_log,
    };
    let mut runs = Vec::new();
    for run in 1..=plan.runs {
        let result = ingest::run_once(backend, &ingest_options).await?;
        eprintln!("ingest {} run {run}: {result:?}", backend.label());
        runs.push(result);
    }

    let label = backend.label();
    let is_postgres = backend == Backend::Postgres;
    let connections = plan.load.connections;
    let throughput = Row::new(format!("Ingest POST /events, API only ({connections} conns)"), label, summary(runs.iter().map(|run| run.api_only.requests_per_second)), " req/s")
        .floor(summary(runs.iter().map(|run| run.floor.requests_per_second)))
        .ratio(summary(runs.iter().map(|run| run.ratio)));
    let with_workers = Row::new(format!("Ingest POST /events, workers in process ({connections} conns)"), label, summary(runs.iter().map(|run| run.grito.requests_per_second)), " req/s")
        .floor(summary(runs.iter().map(|run| run.floor.requests_per_second)))
        .ratio(summary(runs.iter().map(|run| run.with_workers_ratio)));
    let pipeline = Row::new("Sustained pipeline (stored → all delivered)", label, summary(runs.iter().map(|run| run.pipeline_events_per_second)), " ev/s");
    // The targets are set for PostgreSQL; SQLite rows are shown for comparison.
    let (throughput, pipeline) = if is_postgres {
        (
            throughput.target("≥ 0.80 of floor", true, |ratio| ratio >= 0.80),
            pipeline.target("≥ 2,100 ev/s", false, |rate| rate >= 2_100.0),
        )
    } else {
        (throughput, pipeline)
    };
    let rows = vec![
        throughput,
        Row::new("Ingest p50 latency, API only", label, summary(runs.iter().map(|run| run.api_only.p50_ms)), " ms")
            .floor(summary(runs.iter().map(|run| run.floor.p50_ms))),
        Row::new("Ingest p99 latency, API only", label, summary(runs.iter().map(|run| run.api_only.p99_ms)), " ms")
            .floor(summary(runs.iter().map(|run| run.floor.p99_ms))),
        with_workers,
        Row::new("Ingest errors (non-2xx + socket)", label, summary(runs.iter().map(|run| (run.api_only.errors + run.grito.errors) as f64)), ""),
        pipeline,
        Row::new("Drain after load stops", label, summary(runs.iter().map(|run| run.drain_seconds)), " s"),
        Row::new("Left undelivered/unprocessed after drain", label, summary(runs.iter().map(|run| run.left_undone as f64)), "")
            .target("0", false, |left| left == 0.0),
        Row::new("Server CPU per event (load + drain)", label, summary(runs.iter().map(|run| run.cpu_per_event_us)), " µs"),
    ];
    let cpu = summary(runs.iter().map(|run| run.cpu_per_event_us)).map(|cpu| cpu.median);
    Ok((rows, cpu))
}

async fn measure_plugins(plan: &Plan, host: &grito::plugins::PluginHost, cpu_per_event_us: Option<f64>) -> anyhow::Result<Vec<Row>> {
    let mut runs = Vec::new();
    for run in 1..=plan.runs {
        let result = plugin_cost::run_once(host, plan.cost_calls).await?;
        eprintln!("plugins run {run}: {result:?}");
        runs.push(result);
    }
    let wasm = summary(runs.iter().map(|run| run.wasm_us));
    let mut rows = vec![
        Row::new("Condition + action per event, Wasm vs native", "-", wasm, " µs")
            .floor(summary(runs.iter().map(|run| run.native_us)))
            .ratio(summary(runs.iter().map(|run| run.wasm_us / run.native_us))),
    ];
    if let (Some(wasm), Some(cpu)) = (wasm, cpu_per_event_us) {
        let share = |value: f64| 100.0 * value / cpu;
        let shares = Summary { median: share(wasm.median), min: share(wasm.min), max: share(wasm.max) };
        rows.push(
            Row::new("Wasm share of server CPU per event", "PostgreSQL", Some(shares), " %").target("< 10 %", false, |share| share < 10.0),
        );
    }
    Ok(rows)
}

async fn measure_plugin_memory(plan: &Plan, host: &grito::plugins::PluginHost) -> anyhow::Result<Vec<Row>> {
    let result = memory::run_once(host, plan.plugin_calls).await?;
    eprintln!("plugin memory: {result:?}");
    let one = |value: f64| Some(Summary { median: value, min: value, max: value });
    let growth = result.rss_after_mib - result.rss_before_mib;
    Ok(vec![
        Row::new(format!("RSS growth over {} plugin calls", result.calls), "-", one(growth), " MiB")
            .target("no growth (< 1 MiB)", false, |growth| growth < 1.0),
        Row::new("RSS before → after (bench process)", "-", one(result.rss_before_mib), " MiB").floor(one(result.rss_after_mib)),
        Row::new(format!("Time for {} plugin calls", result.calls), "-", one(result.seconds), " s"),
    ])
}

async fn measure_dispatch(options: &Options, plan: &Plan, backend: Backend) -> anyhow::Result<Vec<Row>> {
    let mut runs = Vec::new();
    for run in 1..=plan.runs {
        let result = dispatch::run_once(backend, &options.postgres_url, plan.deliveries).await?;
        eprintln!("dispatch {} run {run}: {result:?}", backend.label());
        runs.push(result);
    }
    let concurrency = runs.first().map(|run| run.concurrency).unwrap_or_default();
    Ok(vec![
        Row::new(format!("Dispatch to 200 receiver (concurrency {concurrency})"), backend.label(), summary(runs.iter().map(|run| run.grito_per_second)), " /s")
            .floor(summary(runs.iter().map(|run| run.floor_per_second)))
            .ratio(summary(runs.iter().map(|run| run.ratio))),
    ])
}

async fn measure_end_to_end(options: &Options, plan: &Plan) -> anyhow::Result<Vec<Row>> {
    let e2e_options = end_to_end::EndToEndOptions {
        grito_binary: &plan.grito_bin,
        postgres_base: &options.postgres_url,
        idle_events: 20,
        rate: options.rate,
        duration: plan.e2e_duration,
        log_filter: &options.server_log,
    };
    let mut runs = Vec::new();
    for run in 1..=plan.runs {
        let result = end_to_end::run_once(Backend::Postgres, &e2e_options).await?;
        eprintln!("end to end run {run}: {result:?}");
        runs.push(result);
    }
    let label = Backend::Postgres.label();
    let rate = options.rate;
    Ok(vec![
        Row::new("Idle RSS of grito serve (built-in plugins)", label, summary(runs.iter().map(|run| run.idle_rss_mib)), " MiB")
            .target("< 40 MiB", false, |rss| rss < 40.0),
        Row::new("Single event → webhook, idle, p50", label, summary(runs.iter().map(|run| run.idle_p50_ms)), " ms")
            .target("< 5 ms", false, |latency| latency < 5.0),
        Row::new(format!("Event → webhook p50 at {rate} ev/s"), label, summary(runs.iter().map(|run| run.steady_p50_ms)), " ms"),
        Row::new(format!("Event → webhook p95 at {rate} ev/s"), label, summary(runs.iter().map(|run| run.steady_p95_ms)), " ms")
            .target("< 50 ms", false, |latency| latency < 50.0),
        Row::new(format!("Event → webhook p99 at {rate} ev/s"), label, summary(runs.iter().map(|run| run.steady_p99_ms)), " ms"),
        Row::new("Achieved posting rate", label, summary(runs.iter().map(|run| run.achieved_rate)), " ev/s"),
        Row::new("Posted but not received within 30 s", label, summary(runs.iter().map(|run| run.undelivered as f64)), "")
            .target("0", false, |left| left == 0.0),
    ])
}

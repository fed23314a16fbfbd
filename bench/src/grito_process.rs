//! The real `grito serve` binary as a child process: started on a free
//! loopback port against a fresh database, with its RSS and CPU time read
//! from `/proc`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::fixtures::{ADMIN_API_KEY, EVENTS_API_KEY};

/// A running `grito serve`; killed on drop.
pub struct GritoProcess {
    child: Child,
    pub base_url: String,
    _data_dir: tempfile::TempDir,
}

impl GritoProcess {
    /// Starts `binary serve` on `database_url` and waits until `/health` answers 200.
    pub async fn start(binary: &Path, database_url: &str, log_filter: &str) -> anyhow::Result<Self> {
        Self::start_with(binary, database_url, log_filter, &[]).await
    }

    /// [`GritoProcess::start`] with extra settings, such as `API_ONLY`.
    pub async fn start_with(binary: &Path, database_url: &str, log_filter: &str, settings: &[(&str, &str)]) -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir()?;
        let plugins_dir = data_dir.path().join("plugins");
        std::fs::create_dir_all(&plugins_dir)?;
        let port = free_port()?;
        let log = std::fs::File::create(data_dir.path().join("grito.log"))?;
        let child = Command::new(binary)
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("EVENTS_API_KEY", EVENTS_API_KEY)
            .env("ADMIN_API_KEY", ADMIN_API_KEY)
            .env("ALLOW_PRIVATE_ENDPOINTS", "true")
            .env("DATA_DIR", data_dir.path())
            .env("PLUGINS_DIR", &plugins_dir)
            .env("INACTIVITY_JOB_ENABLED", "false")
            .env("RUST_LOG", log_filter)
            .envs(settings.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|error| anyhow::anyhow!("cannot start {} ({error}); build it with `cargo build --release -p grito`", binary.display()))?;
        let process = Self { child, base_url: format!("http://127.0.0.1:{port}"), _data_dir: data_dir };
        process.wait_healthy(Duration::from_secs(60)).await?;
        Ok(process)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's log file, for reading after a failure.
    pub fn log_path(&self) -> PathBuf {
        self._data_dir.path().join("grito.log")
    }

    async fn wait_healthy(&self, limit: Duration) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(response) = client.get(format!("{}/health", self.base_url)).send().await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        anyhow::bail!("grito serve did not become healthy within {limit:?}; its log:\n{log}")
    }

    /// Resident set size in MiB (`VmRSS` of `/proc/PID/status`).
    pub fn rss_mib(&self) -> anyhow::Result<f64> {
        rss_mib_of(&format!("/proc/{}/status", self.pid()))
    }

    /// User plus system CPU time the process has used so far.
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        // Fields after the parenthesized command name; utime and stime are fields 14 and 15.
        let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        Ok(Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64))
    }
}

impl Drop for GritoProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmRSS` of a `/proc/…/status` file, in MiB.
pub fn rss_mib_of(status_path: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(status_path)?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).ok_or_else(|| anyhow::anyhow!("no VmRSS in {status_path}"))?;
    let kib: f64 = line.split_whitespace().nth(1).unwrap_or_default().parse()?;
    Ok(kib / 1024.0)
}

fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok())
        .unwrap_or(100)
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

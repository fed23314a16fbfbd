//! Runs `wrk` (a separate load-generator process) against a `POST /events`
//! URL and reads throughput and latency percentiles from its report.

use std::process::Command;
use std::time::Duration;

/// What one `wrk` run reports.
#[derive(Debug, Clone, Copy)]
pub struct WrkResult {
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests: u64,
    /// Responses other than 2xx/3xx plus socket errors.
    pub errors: u64,
}

/// Load settings shared by every ingest run.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub connections: u32,
    pub threads: u32,
    pub duration: Duration,
}

/// Posts `body` with `X-Api-Key: api_key` to `url` for `load.duration`.
pub fn run(url: &str, body: &str, api_key: &str, load: Load, work_dir: &std::path::Path) -> anyhow::Result<WrkResult> {
    let script = work_dir.join("post_event.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.body = [[{body}]]\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"X-Api-Key\"] = \"{api_key}\"\n"
        ),
    )?;
    let output = Command::new("wrk")
        .arg(format!("-t{}", load.threads))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.duration.as_secs().max(1)))
        .arg("--latency")
        .arg("-s")
        .arg(&script)
        .arg(url)
        .output()
        .map_err(|error| anyhow::anyhow!("cannot run wrk ({error}); install it with `apt-get install -y wrk`"))?;
    anyhow::ensure!(output.status.success(), "wrk failed: {}", String::from_utf8_lossy(&output.stderr));
    parse(&String::from_utf8_lossy(&output.stdout))
}

/// Parses wrk 4's report (`--latency`).
pub fn parse(report: &str) -> anyhow::Result<WrkResult> {
    let mut result = WrkResult { requests_per_second: f64::NAN, p50_ms: f64::NAN, p99_ms: f64::NAN, requests: 0, errors: 0 };
    for line in report.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", value] => result.p50_ms = duration_ms(value)?,
            ["99%", value] => result.p99_ms = duration_ms(value)?,
            ["Requests/sec:", value] => result.requests_per_second = value.parse()?,
            [count, "requests", "in", ..] => result.requests = count.parse()?,
            ["Non-2xx", "or", "3xx", "responses:", count] => result.errors += count.parse::<u64>()?,
            ["Socket", "errors:", rest @ ..] => {
                result.errors += rest.iter().filter_map(|word| word.trim_end_matches(',').parse::<u64>().ok()).sum::<u64>();
            }
            _ => {}
        }
    }
    anyhow::ensure!(!result.requests_per_second.is_nan(), "wrk printed no Requests/sec line:\n{report}");
    Ok(result)
}

fn duration_ms(text: &str) -> anyhow::Result<f64> {
    let split = text.find(|character: char| character.is_ascii_alphabetic()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse()?;
    Ok(match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        other => anyhow::bail!("unknown wrk duration unit `{other}` in `{text}`"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_of_wrk_4_parses() {
        let report = "Running 5s test @ http://127.0.0.1:1/events
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms    1.00ms  20.00ms   90.00%
  Latency Distribution
     50%  812.00us
     75%    2.00ms
     90%    3.00ms
     99%    1.20s
  10000 requests in 5.00s, 1.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   2000.50
Transfer/sec:    200.00KB
";
        let result = parse(report).unwrap();
        assert_eq!(result.requests_per_second, 2000.5);
        assert_eq!(result.p50_ms, 0.812);
        assert_eq!(result.p99_ms, 1200.0);
        assert_eq!(result.requests, 10000);
        assert_eq!(result.errors, 7);
    }
}

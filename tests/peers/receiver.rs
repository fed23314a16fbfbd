//! Starts `tests/peers/receiver.py` (a loopback webhook receiver that checks
//! signatures with the PyPI `standardwebhooks` package and a plain HMAC) and
//! reads what it recorded.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/peers/receiver.py");

/// A running receiver process, stopped on drop.
pub struct Receiver {
    pub port: u16,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    /// Starts a receiver that checks signatures with `secret` and responds
    /// per `mode` (see the script's documentation).
    pub fn start(secret: &str, mode: &str) -> Self {
        Self::start_with(secret, mode, 30.0)
    }

    pub fn start_with(secret: &str, mode: &str, hang_seconds: f64) -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let log = dir.path().join("requests.jsonl");
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let mut child = Command::new(&python)
            .arg(SCRIPT)
            .args(["--secret", secret, "--mode", mode, "--hang-seconds", &hang_seconds.to_string()])
            .arg("--log")
            .arg(&log)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {python} {SCRIPT}: {error}"));
        let stdout = child.stdout.take().expect("receiver stdout");
        let mut first_line = String::new();
        BufReader::new(stdout).read_line(&mut first_line).expect("receiver prints its port");
        let port = first_line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| {
                panic!("receiver did not start (is `pip install standardwebhooks` done?); it printed `{first_line}`")
            });
        Self { port, child, log, _dir: dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every request recorded so far, oldest first. A last line without its
    /// newline is still being written by the receiver, so it is left for the next read.
    pub fn requests(&self) -> Vec<Value> {
        let Ok(text) = std::fs::read_to_string(&self.log) else { return Vec::new() };
        let complete = match text.rfind('\n') {
            Some(end) => &text[..=end],
            None => "",
        };
        complete.lines().map(|line| serde_json::from_str(line).expect("receiver log is JSONL")).collect()
    }

    /// Waits until at least `count` requests arrived, or panics after `timeout`.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if requests.len() >= count {
                return requests;
            }
            assert!(
                Instant::now() < deadline,
                "receiver got {} requests, expected {count} within {timeout:?}",
                requests.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Changes the mode used for paths outside `/mode/…`.
    pub async fn set_mode(&self, mode: &str) {
        let response = reqwest::Client::new()
            .post(self.url("/_control/mode"))
            .body(mode.to_owned())
            .send()
            .await
            .expect("receiver answers");
        assert!(response.status().is_success());
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("loopback port");
    listener.local_addr().unwrap().port()
}

//! The webhook receiver: answers 200 to every POST, counts requests, and
//! timestamps the first arrival of each event id (the body's `id`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;

#[derive(Default)]
pub struct Arrivals {
    pub count: AtomicU64,
    pub first_seen: Mutex<HashMap<String, Instant>>,
}

/// A running receiver; `url` is its endpoint.
pub struct Receiver {
    pub url: String,
    pub arrivals: Arc<Arrivals>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Binds a loopback port and serves `POST /hook`.
    pub async fn start() -> anyhow::Result<Self> {
        let arrivals = Arc::new(Arrivals::default());
        let app = Router::new().route("/hook", post(receive)).with_state(arrivals.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, arrivals, task })
    }

    pub fn count(&self) -> u64 {
        self.arrivals.count.load(Ordering::Relaxed)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(State(arrivals): State<Arc<Arrivals>>, body: Bytes) -> &'static str {
    let now = Instant::now();
    arrivals.count.fetch_add(1, Ordering::Relaxed);
    if let Some(id) = serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|value| value["id"].as_str().map(str::to_owned)) {
        arrivals.first_seen.lock().expect("receiver lock").entry(id).or_insert(now);
    }
    "ok"
}

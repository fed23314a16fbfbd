//! A plugin's stdout or stderr: kept in memory up to a cap, then discarded.
//!
//! Writes past the cap still succeed, so a chatty plugin never fails (a Rust
//! `println!` panics when stdout reports an error). The host logs what was
//! kept at debug level after each call.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// A capped in-memory output stream, shared with the host through `Arc`.
#[derive(Clone)]
pub struct CappedOutput {
    capacity: usize,
    inner: Arc<Mutex<Captured>>,
}

#[derive(Default)]
struct Captured {
    kept: Vec<u8>,
    discarded: usize,
}

impl CappedOutput {
    pub fn new(capacity: usize) -> Self {
        Self { capacity, inner: Arc::default() }
    }

    /// The kept text (lossy UTF-8) and the number of bytes discarded past the cap.
    pub fn take(&self) -> (String, usize) {
        let mut captured = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let text = String::from_utf8_lossy(&captured.kept).into_owned();
        let discarded = captured.discarded;
        *captured = Captured::default();
        (text, discarded)
    }

    /// The kept text (lossy UTF-8), left in place.
    pub fn peek(&self) -> String {
        let captured = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        String::from_utf8_lossy(&captured.kept).into_owned()
    }

    fn append(&self, bytes: &[u8]) {
        let mut captured = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let room = self.capacity.saturating_sub(captured.kept.len());
        let kept = bytes.len().min(room);
        captured.kept.extend_from_slice(&bytes[..kept]);
        captured.discarded += bytes.len() - kept;
    }
}

#[async_trait::async_trait]
impl OutputStream for CappedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for CappedOutput {
    async fn ready(&mut self) {}
}

impl IsTerminal for CappedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(AsyncCapped(self.clone()))
    }
}

struct AsyncCapped(CappedOutput);

impl tokio::io::AsyncWrite for AsyncCapped {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _context: &mut std::task::Context<'_>,
        buffer: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0.append(buffer);
        std::task::Poll::Ready(Ok(buffer.len()))
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, _context: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: std::pin::Pin<&mut Self>, _context: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_past_capacity_is_counted_not_kept() {
        let output = CappedOutput::new(4);
        output.append(b"abc");
        output.append(b"def");
        assert_eq!(output.take(), ("abcd".to_owned(), 2));
        assert_eq!(output.take(), (String::new(), 0));
    }
}
